/*
 * cmd_health.c — `daemoneye-cli health [--format table|json]`: the health
 * report the agent keeps in <state_dir>/health.json (health.h), one line
 * per component — privileged parent, procmond, worker, event store,
 * rules, each sink, audit ledger, last scan, configuration — with its
 * status in colour (NO_COLOR and non-terminals honoured), then the worst
 * status and how long ago the report was written.  A report nobody has
 * updated for too long adds a critical "agent" line.
 *
 * Exit status: 0 all ok, 1 the worst is a warning, 2 the worst is critical;
 * 69 no report (the agent never ran with this state directory), 77 not
 * allowed to read it, 65 not a report.  Any user who may read the state
 * directory may run it.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli.h"
#include "daemoneye/clock.h"
#include "daemoneye/health.h"
#include "daemoneye/term.h"
#include "daemoneye/text.h"

static const char *const colors[DE_HEALTH_STATUS_MAX] = {"\033[32m", "\033[33m", "\033[1;31m"};

/* The report as a table; now_ms for the report's age, on its last line. */
static void table(const json_t *doc, int64_t now_ms, bool color, size_t width)
{
	const json_t *c;
	size_t i, name_w = 9;
	enum de_health_status worst = de_health_worst(doc);

	json_array_foreach (json_object_get(doc, "components"), i, c) {
		size_t n = strlen(json_string_value(json_object_get(c, "name")));
		if (n > name_w)
			name_w = n;
	}
	printf("%-*s  %-8s  %s\n", (int)name_w, "COMPONENT", "STATUS", "SUMMARY");
	json_array_foreach (json_object_get(doc, "components"), i, c) {
		enum de_health_status s = DE_HEALTH_CRITICAL;
		const char *name = json_string_value(json_object_get(c, "name"));
		const char *sum = json_string_value(json_object_get(c, "summary"));
		char *esc = de_escape_text(sum, strlen(sum)),
		     *ename = de_escape_text(name, strlen(name));
		(void)de_health_status_parse(json_string_value(json_object_get(c, "status")), &s);
		size_t room = width > name_w + 12 ? width - name_w - 12 : 0;
		if (esc && room && strlen(esc) > room && room > 3) {
			memcpy(esc + room - 3, "...", 4); /* room - 3 < strlen(esc) */
		}
		printf("%-*s  %s%-8s%s  %s\n", (int)name_w, ename ? ename : "?",
		       color ? colors[s] : "", de_health_status_name(s), color ? "\033[0m" : "",
		       esc ? esc : "");
		free(esc);
		free(ename);
	}
	printf("%-*s  %s%s%s\n", (int)name_w, "overall", color ? colors[worst] : "",
	       de_health_status_name(worst), color ? "\033[0m" : "");
	/* the summaries are as of the report's writing (the agent rewrites it
	   every few seconds): "up 0 s" read 9 s later is not a restart */
	char ago[32];
	de_duration_format(ago, sizeof(ago),
			   now_ms - json_integer_value(json_object_get(doc, "updated_at")));
	printf("%-*s  written %s ago\n", (int)name_w, "report", ago);
}

int cmd_health(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"format", required_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct de_error err = {0};
	char *state = NULL, *path = NULL;
	json_t *doc = NULL;
	bool json = false;
	int c, rc;

	while ((c = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (cli_table_or_json("health", optarg, &json) != 0)
				return EX_USAGE;
			break;
		case 'h':
			printf("usage: daemoneye-cli health [--format table|json]\n"
			       "\n"
			       "The agent's health: each component's status and summary, as of "
			       "the report's\n"
			       "writing (its age on the last line).  Exit status 0 ok,\n"
			       "1 warning, 2 critical (the worst component's); 69 when the agent "
			       "has published\n"
			       "no report in app.state_dir.\n");
			return 0;
		default:
			return EX_USAGE;
		}
	}
	if (cli_no_operands("health", argc, argv) != 0)
		return EX_USAGE;
	if (de_config_state_dir(ctx->cfg, &state, &err) < 0)
		return cli_fail(&err);
	if (asprintf(&path, "%s/%s", state, DE_HEALTH_FILE) < 0) {
		free(state);
		return EX_OSERR;
	}
	int64_t now = de_now_ms();
	rc = de_health_read(path, now, &doc, &err);
	if (rc == -ENOENT) {
		cli_errorf("no health report at %s: is daemoneye-agent running with this "
			   "app.state_dir (set it with --set app.state_dir=DIR)?",
			   path);
		rc = EX_UNAVAILABLE;
	} else if (rc < 0) {
		rc = cli_fail(&err);
	} else {
		if (json) {
			json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			putchar('\n');
		} else {
			table(doc, now, ctx->color, de_term_width(STDOUT_FILENO));
		}
		rc = fflush(stdout) != 0 ? EX_IOERR : (int)de_health_worst(doc);
	}
	json_decref(doc);
	free(path);
	free(state);
	return rc;
}
