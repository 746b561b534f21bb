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
 * Reading commands open the store read-only.  `dlq retry` and `dlq purge`
 * change delivery rows beside a running agent: one UPDATE or DELETE that
 * SQLite's own locking serialises with the agent's writes; the agent picks
 * retried rows up at its next scan (or its next start).
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "cli.h"
#include "daemoneye/alertmgr.h"
#include "daemoneye/audit.h"
#include "daemoneye/clock.h"
#include "daemoneye/outbox.h"
#include "daemoneye/text.h"

#include <time.h>

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
		cli_errorf("no sink named '%s' in alerting.sinks (configured:%s)", name,
			   ac->nsinks ? " " : " none");
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

static void iso(int64_t ms, char out[32])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (!ms) {
		snprintf(out, 32, "-");
		return;
	}
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void put_esc(const char *s, int width)
{
	char *e = s ? de_escape_text(s, strlen(s)) : NULL;
	printf("%-*s", width, e ? e : "-");
	free(e);
}

enum fmt { F_TABLE, F_JSON, F_NDJSON, F_CSV };

struct list_ctx {
	enum fmt f;
	json_t *arr; /* F_JSON */
	size_t n;
	bool color;
};

/* One JSON row (consumed): into the array, or printed as a line. */
static void emit_json(struct list_ctx *c, json_t *j)
{
	if (c->f == F_JSON) {
		json_array_append_new(c->arr, j);
		return;
	}
	char *line = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	printf("%s\n", line ? line : "{}");
	free(line);
	json_decref(j);
}

static int list_alert(const struct de_alert *a, const char *status, void *arg)
{
	struct list_ctx *c = arg;
	char ts[32], id[DE_UUID_STR_LEN + 1], pids[128] = "";
	size_t o = 0;

	c->n++;
	de_uuid_format(&a->id, id);
	iso(a->alert_time, ts);
	for (size_t i = 0; i < a->affected_processes_len && o + 12 < sizeof(pids); i++)
		o += (size_t)snprintf(pids + o, sizeof(pids) - o, "%s%u", i ? "," : "",
				      a->affected_processes[i]);
	if (c->f == F_JSON || c->f == F_NDJSON) {
		json_t *j = de_alert_to_json(a);
		json_object_set_new(j, "status", json_string(status));
		emit_json(c, j);
		return 0;
	}
	if (c->f == F_CSV) {
		de_csv_field(stdout, id);
		putchar(',');
		de_csv_field(stdout, ts);
		putchar(',');
		de_csv_field(stdout, de_severity_name(a->severity));
		putchar(',');
		de_csv_field(stdout, status);
		putchar(',');
		de_csv_field(stdout, de_alert_kind(a));
		putchar(',');
		de_csv_field(stdout, a->rule_id);
		putchar(',');
		de_csv_field(stdout, pids);
		putchar(',');
		de_csv_field(stdout, a->title);
		putchar('\n');
		return 0;
	}
	printf("%-36s %-20s %-8s %-8s %-8s ", id, ts, de_severity_name(a->severity),
	       *status ? status : "-", de_alert_kind(a));
	put_esc(a->rule_id, 26);
	printf(" %-12s ", pids[0] ? pids : "-");
	put_esc(a->title, 0);
	putchar('\n');
	return 0;
}

static int list_suppressed(const struct de_suppressed_row *r, void *arg)
{
	struct list_ctx *c = arg;
	char ts[32], why[512];

	c->n++;
	iso(r->t, ts);
	if (!strcmp(r->kind, "folded"))
		snprintf(why, sizeof(why), "folded into alert %s",
			 r->folded_into ? r->folded_into : "?");
	else
		snprintf(why, sizeof(why), "%s at %s%s%s", r->exception ? r->exception : "?",
			 r->origin ? r->origin : "?", r->reason ? ": " : "",
			 r->reason ? r->reason : "");
	if (c->f == F_JSON || c->f == F_NDJSON) {
		json_t *j = json_pack("{s:I,s:I,s:s,s:s,s:I}", "id", (json_int_t)r->id, "time",
				      (json_int_t)r->t, "rule_id", r->rule_id, "kind", r->kind,
				      "pid", (json_int_t)r->pid);
		if (!j)
			return -ENOMEM;
		if (r->exception)
			json_object_set_new(j, "exception", json_string(r->exception));
		if (r->origin)
			json_object_set_new(j, "exception_origin", json_string(r->origin));
		if (r->reason)
			json_object_set_new(j, "reason", json_string(r->reason));
		if (r->folded_into)
			json_object_set_new(j, "folded_into", json_string(r->folded_into));
		char *n = r->process_name ? de_utf8_lossy_dup(r->process_name,
							      strlen(r->process_name), NULL)
					  : NULL;
		if (n)
			json_object_set_new(j, "process_name", json_string(n));
		free(n);
		emit_json(c, j);
		return 0;
	}
	if (c->f == F_CSV) {
		char pid[16];
		snprintf(pid, sizeof(pid), "%u", r->pid);
		de_csv_field(stdout, ts);
		putchar(',');
		de_csv_field(stdout, r->rule_id);
		putchar(',');
		de_csv_field(stdout, r->kind);
		putchar(',');
		de_csv_field(stdout, pid);
		putchar(',');
		de_csv_field(stdout, r->process_name);
		putchar(',');
		de_csv_field(stdout, why);
		putchar('\n');
		return 0;
	}
	printf("%-20s ", ts);
	put_esc(r->rule_id, 26);
	printf(" %-9s %-7u ", r->kind, r->pid);
	put_esc(r->process_name, 16);
	putchar(' ');
	put_esc(why, 0);
	putchar('\n');
	return 0;
}

struct opts {
	struct de_alert_filter f;
	bool suppressed, all;
	const char *format;
	const char *sink;
	uint64_t timeout;
	bool has_before;
	int64_t before;
};

static int open_outbox(struct cli_ctx *ctx, struct de_store **st, struct de_outbox **ob)
{
	struct de_error err = {0};
	int rc = cli_open_store(ctx, st);

	if (rc)
		return rc;
	if (de_outbox_open(*st, ob, &err) < 0) {
		de_store_close(*st);
		return cli_fail(&err);
	}
	return 0;
}

static int do_list(struct cli_ctx *ctx, struct opts *o)
{
	struct de_store *st = NULL;
	struct de_outbox *ob = NULL;
	struct de_error err = {0};
	struct list_ctx c = {.f = F_TABLE, .color = ctx->color};
	int rc;

	if (o->format) {
		if (!strcmp(o->format, "json"))
			c.f = F_JSON;
		else if (!strcmp(o->format, "ndjson"))
			c.f = F_NDJSON;
		else if (!strcmp(o->format, "csv"))
			c.f = F_CSV;
		else if (strcmp(o->format, "table") != 0) {
			cli_errorf("unknown format '%s' (table, json, ndjson or csv)", o->format);
			return EX_USAGE;
		}
	}
	if ((rc = open_outbox(ctx, &st, &ob)))
		return rc;
	if (c.f == F_JSON && !(c.arr = json_array())) {
		rc = EX_OSERR;
		goto out;
	}
	if (c.f == F_TABLE) {
		if (ctx->color)
			fputs("\033[1m", stdout);
		if (o->suppressed)
			printf("%-20s %-26s %-9s %-7s %-16s %s", "TIME", "RULE", "KIND", "PID",
			       "PROCESS", "WHY");
		else
			printf("%-36s %-20s %-8s %-8s %-8s %-26s %-12s %s", "ID", "TIME",
			       "SEVERITY", "STATUS", "KIND", "RULE", "PIDS", "TITLE");
		if (ctx->color)
			fputs("\033[0m", stdout);
		putchar('\n');
	} else if (c.f == F_CSV) {
		printf(o->suppressed ? "time,rule_id,kind,pid,process_name,why\n"
				     : "id,time,severity,status,kind,rule_id,pids,title\n");
	}
	if (o->suppressed)
		rc = de_outbox_suppressed_list(ob, &o->f, list_suppressed, &c, &err);
	else
		rc = de_outbox_alerts_list(ob, &o->f, list_alert, &c, &err);
	if (rc < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	if (c.f == F_JSON) {
		char *s = json_dumps(c.arr, JSON_INDENT(2) | JSON_ENSURE_ASCII);
		printf("%s\n", s ? s : "[]");
		free(s);
	}
	rc = 0;
out:
	json_decref(c.arr);
	de_outbox_close(ob);
	de_store_close(st);
	return rc;
}

static int show_delivery(const struct de_delivery_row *r, void *arg)
{
	char la[32], da[32], na[32];
	(void)arg;

	iso(r->last_attempt_at, la);
	iso(r->delivered_at, da);
	iso(r->status == DE_OUTBOX_PENDING ? r->next_attempt_at : 0, na);
	printf("  %-16s %-9s attempts %-3u last %-20s delivered %-20s%s%s", r->sink,
	       de_outbox_status_name(r->status), r->attempts, la, da,
	       r->status == DE_OUTBOX_PENDING ? " next " : "",
	       r->status == DE_OUTBOX_PENDING ? na : "");
	if (r->error) {
		fputs(" error: ", stdout);
		put_esc(r->error, 0);
	}
	putchar('\n');
	return 0;
}

static int do_show(struct cli_ctx *ctx, const char *id)
{
	struct de_store *st = NULL;
	struct de_outbox *ob = NULL;
	struct de_error err = {0};
	struct de_alert a = {0};
	struct de_uuid u;
	int rc;

	if (de_uuid_parse(id, &u) < 0) {
		cli_errorf("'%s' is not an alert id (a UUID, see alerts list)", id);
		return EX_USAGE;
	}
	if ((rc = open_outbox(ctx, &st, &ob)))
		return rc;
	if (de_outbox_alert_load(ob, id, &a, &err) < 0) {
		rc = err.code == ENOENT ? (cli_errorf("no alert %s", id), EX_NOINPUT)
					: cli_fail(&err);
		goto out;
	}
	json_t *j = de_alert_to_json(&a);
	char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_ENSURE_ASCII) : NULL;
	printf("%s\ndeliveries:\n", s ? s : "{}");
	free(s);
	json_decref(j);
	if (de_outbox_deliveries(ob, id, false, show_delivery, NULL, &err) < 0)
		rc = cli_fail(&err);
out:
	de_alert_clear(&a);
	de_outbox_close(ob);
	de_store_close(st);
	return rc;
}

static int dlq_row(const struct de_delivery_row *r, void *arg)
{
	char la[32];
	size_t *n = arg;

	(*n)++;
	iso(r->last_attempt_at, la);
	printf("%-8lld %-36s %-16s %-8u %-20s ", (long long)r->id, r->alert_id, r->sink,
	       r->attempts, la);
	put_esc(r->error, 0);
	putchar('\n');
	return 0;
}

static int do_dlq(struct cli_ctx *ctx, int nargs, char **args, struct opts *o)
{
	struct de_error err = {0};
	const char *what = nargs ? args[0] : "";
	size_t n = 0;
	int rc;

	if (!strcmp(what, "list") && nargs == 1) {
		struct de_store *st = NULL;
		struct de_outbox *ob = NULL;
		if ((rc = open_outbox(ctx, &st, &ob)))
			return rc;
		printf("%-8s %-36s %-16s %-8s %-20s %s\n", "ID", "ALERT", "SINK", "ATTEMPTS",
		       "LAST ATTEMPT", "ERROR");
		rc = de_outbox_deliveries(ob, NULL, true, dlq_row, &n, &err) < 0 ? cli_fail(&err)
										 : 0;
		de_outbox_close(ob);
		de_store_close(st);
		return rc;
	}
	bool retry = !strcmp(what, "retry");
	if ((!retry && strcmp(what, "purge") != 0) ||
	    (retry && (o->all ? nargs != 1 : nargs != 2)) || (!retry && nargs != 1)) {
		cli_errorf("alerts dlq: expected list, retry ID|--all or purge [--before T]");
		return EX_USAGE;
	}
	char *path = NULL;
	struct de_audit *audit = NULL;
	if (de_config_store_path(ctx->cfg, &path, &err) < 0)
		return cli_fail(&err);
	if ((rc = cli_audit_open(ctx, &audit))) {
		free(path);
		return rc;
	}
	if (retry)
		rc = de_outbox_dlq_retry_file(path, o->all ? NULL : args[1], de_now_ms(), &n, &err);
	else
		rc = de_outbox_dlq_purge_file(path, o->has_before ? o->before : 0, &n, &err);
	free(path);
	if (rc < 0) {
		cli_audit_abandon(audit);
		return cli_fail(&err);
	}
	json_t *p = json_pack("{s:I}", "deliveries", (json_int_t)n);
	if (p && retry)
		json_object_set_new(p, "delivery_id", o->all ? json_null() : json_string(args[1]));
	if (p && !retry && o->has_before)
		json_object_set_new(p, "before_ms", json_integer(o->before));
	/* nothing changed: nothing to record */
	if (!n) {
		json_decref(p);
		cli_audit_abandon(audit);
	} else if ((rc = cli_audit_record(audit, retry ? "alert.dlq.retry" : "alert.dlq.purge",
					  p))) {
		return rc;
	}
	if (retry)
		printf("%zu dead deliver%s pending again (the agent delivers them at its next "
		       "scan)\n",
		       n, n == 1 ? "y is" : "ies are");
	else
		printf("%zu dead deliver%s purged\n", n, n == 1 ? "y" : "ies");
	return retry && !o->all && n == 0 ? EX_NOINPUT : 0;
}

int cmd_alerts(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"since", required_argument, NULL, 'S'},
		{"severity", required_argument, NULL, 'v'},
		{"rule", required_argument, NULL, 'r'},
		{"status", required_argument, NULL, 't'},
		{"suppressed", no_argument, NULL, 'x'},
		{"limit", required_argument, NULL, 'l'},
		{"format", required_argument, NULL, 'f'},
		{"all", no_argument, NULL, 'a'},
		{"before", required_argument, NULL, 'b'},
		{"sink", required_argument, NULL, 'k'},
		{"timeout", required_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct opts o = {0};
	int64_t now = de_now_ms();
	char *end;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'S':
			if (de_time_parse(optarg, now, &o.f.since_ms) < 0) {
				cli_errorf("--since: cannot read '%s' as a time", optarg);
				return EX_USAGE;
			}
			o.f.has_since = true;
			break;
		case 'b':
			if (de_time_parse(optarg, now, &o.before) < 0) {
				cli_errorf("--before: cannot read '%s' as a time", optarg);
				return EX_USAGE;
			}
			o.has_before = true;
			break;
		case 'v':
			if (de_severity_parse(optarg, &o.f.severity, NULL) < 0) {
				cli_errorf("--severity: expected low, medium, high or critical");
				return EX_USAGE;
			}
			o.f.has_severity = true;
			break;
		case 'r':
			o.f.rule_id = optarg;
			break;
		case 't':
			if (strcmp(optarg, "open") != 0 && strcmp(optarg, "resolved") != 0) {
				cli_errorf("--status: expected open or resolved");
				return EX_USAGE;
			}
			o.f.status = optarg;
			break;
		case 'x':
			o.suppressed = true;
			break;
		case 'l':
			o.f.limit = strtoull(optarg, &end, 10);
			if (*end || !o.f.limit) {
				cli_errorf("--limit: expected a positive number");
				return EX_USAGE;
			}
			break;
		case 'f':
			o.format = optarg;
			break;
		case 'a':
			o.all = true;
			break;
		case 'k':
			o.sink = optarg;
			break;
		case 'T':
			o.timeout = strtoull(optarg, &end, 10);
			if (*end || !o.timeout) {
				cli_errorf("--timeout: expected milliseconds, got '%s'", optarg);
				return EX_USAGE;
			}
			break;
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
	int nargs = argc - optind - 1;
	char **args = argv + optind + 1;
	if (!strcmp(sub, "test")) {
		if (!o.sink || nargs) {
			cli_errorf("alerts test: expected --sink NAME");
			return EX_USAGE;
		}
		return do_test(ctx, o.sink, o.timeout);
	}
	if (!strcmp(sub, "list")) {
		if (nargs) {
			cli_errorf("alerts list: unexpected argument '%s'", args[0]);
			return EX_USAGE;
		}
		return do_list(ctx, &o);
	}
	if (!strcmp(sub, "show")) {
		if (nargs != 1) {
			cli_errorf("alerts show: expected an alert id");
			return EX_USAGE;
		}
		return do_show(ctx, args[0]);
	}
	if (!strcmp(sub, "dlq"))
		return do_dlq(ctx, nargs, args, &o);
	cli_errorf("alerts: unknown subcommand '%s'", sub);
	usage(stderr);
	return EX_USAGE;
}
