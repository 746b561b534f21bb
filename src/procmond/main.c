/*
 * procmond — the process collector.
 *
 * Standalone, for debugging and tests: `procmond --once --output json`
 * prints one ProcessRecord per line and exits; without --once it rescans
 * every --interval milliseconds until SIGINT/SIGTERM.  (Spawned by the agent
 * it will talk over a socketpair; see DESIGN.md.)
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "daemoneye/collect.h"
#include "daemoneye/log.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: procmond [--once] [--output json|text] [--interval MS]\n"
		   "\n"
		   "  -1, --once            one scan, then exit\n"
		   "  -o, --output FORMAT   json (one ProcessRecord per line) or text\n"
		   "  -i, --interval MS     time between scans without --once (default 30000)\n"
		   "  -h, --help            show this help\n"
		   "  -V, --version         show the version\n");
}

static int print_text(const struct de_process_record *r)
{
	char *name = de_escape_text(r->name, strlen(r->name));
	char *exe = r->executable_path
			    ? de_escape_text(r->executable_path, strlen(r->executable_path))
			    : NULL;
	int rc = printf("%u\t%u\t%s\t%s\t%s", r->pid, r->ppid, r->user_id ? r->user_id : "-",
			name ? name : "?", exe ? exe : "-");
	for (size_t i = 0; rc >= 0 && i < r->command_line_len; i++) {
		char *a = de_escape_text(r->command_line[i], strlen(r->command_line[i]));
		rc = printf("%s%s", i ? " " : "\t", a ? a : "?");
		free(a);
	}
	free(name);
	free(exe);
	return rc < 0 ? rc : printf("\n");
}

static int scan_once(struct de_collector *c, bool json, int64_t scan_id)
{
	struct de_process_list procs = {0};
	struct de_error err = {0};
	int rc = de_collector_scan(c, scan_id, &procs, NULL, &err);

	if (rc < 0) {
		de_log_err(&err);
		de_process_list_clear(&procs);
		return de_error_exit_code(&err);
	}
	for (size_t i = 0; i < procs.len; i++) {
		if (json) {
			json_t *j = de_process_record_to_json(&procs.items[i]);
			char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
			if (s)
				rc = printf("%s\n", s);
			free(s);
			json_decref(j);
		} else {
			rc = print_text(&procs.items[i]);
		}
		if (rc < 0)
			break;
	}
	de_process_list_clear(&procs);
	if (rc < 0 || fflush(stdout) != 0) {
		de_log_warn("cannot write to standard output");
		return EX_IOERR;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"once", no_argument, NULL, '1'},
		{"output", required_argument, NULL, 'o'},
		{"interval", required_argument, NULL, 'i'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct de_collector *col = NULL;
	struct de_error err = {0};
	bool once = false, json = true;
	unsigned long interval = 30000;
	int c, status = 0;
	char *end;

	de_log_init("procmond", DE_LOG_INFO, DE_LOG_TEXT, NULL);
	while ((c = getopt_long(argc, argv, "1o:i:hV", opts, NULL)) != -1) {
		switch (c) {
		case '1':
			once = true;
			break;
		case 'o':
			if (strcmp(optarg, "json") == 0)
				json = true;
			else if (strcmp(optarg, "text") == 0)
				json = false;
			else {
				fprintf(stderr,
					"procmond: unknown output format '%s' (json or text)\n",
					optarg);
				return EX_USAGE;
			}
			break;
		case 'i':
			errno = 0;
			interval = strtoul(optarg, &end, 10);
			if (errno || *end || interval < 100 || interval > 86400000) {
				fprintf(stderr, "procmond: --interval must be 100..86400000 ms\n");
				return EX_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("procmond %s\n", DE_VERSION);
			return 0;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "procmond: unexpected argument '%s'\n", argv[optind]);
		return EX_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (de_collector_open(NULL, &col, &err) < 0) {
		de_log_err(&err);
		return de_error_exit_code(&err);
	}
	for (int64_t scan = 1; !stop_requested; scan++) {
		status = scan_once(col, json, scan);
		if (once || status)
			break;
		struct timespec ts = {(time_t)(interval / 1000),
				      (long)(interval % 1000) * 1000000L};
		while (!stop_requested && nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	de_collector_close(col);
	return status;
}
