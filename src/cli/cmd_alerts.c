/*
 * cmd_alerts.c — `daemoneye-cli alerts ...`: the alerts the agent raised,
 * their delivery to each sink, the dead-letter queue, and a test delivery
 * through one configured sink.
 *
 *   list [--since T] [--severity S] [--rule ID] [--status open|resolved]
 *        [--suppressed] [--limit N] [--format table|json|ndjson|csv]
 *   show ID                 the alert, its rows, each sink's delivery record
 *   dlq list                dead-lettered deliveries
 *   dlq retry ID|--all      make them pending again (the agent delivers them)
 *   dlq purge [--before T]  forget them
 *   test --sink NAME        one clearly marked test alert through that sink
 *
 * Reading commands open the store read-only; `dlq retry` and `dlq purge`
 * change delivery rows and so open it for writing, which waits for no
 * agent: they refuse while an agent holds the store (the agent's own
 * writer lock), and say so.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "cli.h"
#include "daemoneye/alertmgr.h"
#include "daemoneye/clock.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: daemoneye-cli alerts list [--since T] [--severity S] [--rule ID]\n"
		   "                                 [--status open|resolved] [--suppressed]\n"
		   "                                 [--limit N] [--format table|json|ndjson|csv]\n"
		   "       daemoneye-cli alerts show ID\n"
		   "       daemoneye-cli alerts dlq list | retry ID|--all | purge [--before T]\n"
		   "       daemoneye-cli alerts test --sink NAME [--timeout MS]\n");
}

static int do_test(struct cli_ctx *ctx, const char *name, uint64_t timeout_ms)
{
	struct de_alertmgr_config *ac = NULL;
	struct de_error err = {0};
	struct de_sink_result r;
	struct de_alert_sink *s;
	char health[256] = "";
	int64_t t0;
	int rc;

	if (de_alertmgr_config_load(ctx->cfg, &ac, &err) < 0)
		return cli_fail(&err);
	if (!(s = de_alertmgr_config_sink(ac, name))) {
		cli_errorf("no sink named '%s' in alerting.sinks (configured:%s%s)", name,
			   ac->nsinks ? " " : " none", ac->nsinks ? "" : "");
		for (size_t i = 0; i < ac->nsinks; i++)
			fprintf(stderr, "  %s (%s)\n", ac->sinks[i].name, ac->sinks[i].ops->type);
		de_alertmgr_config_free(ac);
		return EX_CONFIG;
	}
	t0 = de_mono_ms();
	rc = de_alertmgr_test_sink(s, timeout_ms, &r, &err);
	if (s->opened)
		s->ops->health(s->state, health, sizeof(health));
	if (rc == -EIO) {
		printf("sink %s (%s, %s): NOT delivered (%s): %s\n", s->name, s->ops->type,
		       de_alertfmt_name(s->format), de_sink_outcome_name(r.outcome), r.error);
		rc = EX_UNAVAILABLE;
	} else if (rc < 0) {
		rc = cli_fail(&err);
	} else {
		printf("sink %s (%s, %s): test alert delivered in %lld ms (%s)\n", s->name,
		       s->ops->type, de_alertfmt_name(s->format), (long long)(de_mono_ms() - t0),
		       health);
		rc = 0;
	}
	de_alertmgr_config_free(ac);
	return rc;
}

int cmd_alerts(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"sink", required_argument, NULL, 'k'},
		{"timeout", required_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *sink = NULL;
	uint64_t timeout = 0;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			sink = optarg;
			break;
		case 'T': {
			char *end;
			timeout = strtoull(optarg, &end, 10);
			if (*end || !timeout) {
				cli_errorf("--timeout: expected milliseconds, got '%s'", optarg);
				return EX_USAGE;
			}
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EX_USAGE;
	}
	const char *sub = argv[optind];
	if (!strcmp(sub, "test")) {
		if (!sink || optind + 1 != argc) {
			cli_errorf("alerts test: expected --sink NAME");
			return EX_USAGE;
		}
		return do_test(ctx, sink, timeout);
	}
	cli_errorf("alerts: unknown subcommand '%s'", sub);
	usage(stderr);
	return EX_USAGE;
}
