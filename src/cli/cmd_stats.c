/*
 * cmd_stats.c — `daemoneye-cli stats`: what the event store holds (rows per
 * relation), how big it is (file, WAL, pages in use), and which time span
 * its scans cover.  Read-only.
 */
#include <getopt.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "cli.h"

static void when(int64_t ms, char buf[40])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tmv;

	if (ms <= 0 || !gmtime_r(&t, &tmv))
		snprintf(buf, 40, "-");
	else
		strftime(buf, 40, "%Y-%m-%dT%H:%M:%SZ", &tmv);
}

int cmd_stats(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"format", required_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct de_store *store = NULL;
	struct de_store_stats st;
	struct de_error err = {0};
	bool json = false;
	int c, rc;

	while ((c = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (cli_table_or_json("stats", optarg, &json) != 0)
				return EX_USAGE;
			break;
		case 'h':
			printf("usage: daemoneye-cli stats [--format table|json]\n");
			return 0;
		default:
			return EX_USAGE;
		}
	}
	if ((rc = cli_no_operands("stats", argc, argv)) != 0)
		return rc;
	if ((rc = cli_open_store(ctx, &store)) != 0)
		return rc;
	rc = de_store_stats(store, &st, &err);
	de_store_close(store);
	if (rc < 0)
		return cli_fail(&err);
	if (json) {
		json_t *o = json_pack(
			"{s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
			"schema_version", st.schema_version, "processes", (json_int_t)st.processes,
			"instances", (json_int_t)st.instances, "live_instances",
			(json_int_t)st.live_instances, "changes", (json_int_t)st.changes, "samples",
			(json_int_t)st.samples, "scans", (json_int_t)st.scans, "failed_scans",
			(json_int_t)st.failed_scans, "alerts", (json_int_t)st.alerts, "deliveries",
			(json_int_t)st.deliveries, "file_bytes", (json_int_t)st.file_bytes,
			"wal_bytes", (json_int_t)st.wal_bytes, "used_bytes",
			(json_int_t)st.used_bytes, "oldest", (json_int_t)st.oldest_ms, "newest",
			(json_int_t)st.newest_ms, "last_scan_id", (json_int_t)st.last_scan_id);
		if (!o)
			return EX_OSERR;
		json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(o);
	} else {
		char a[40], b[40];
		when(st.oldest_ms, a);
		when(st.newest_ms, b);
		printf("schema version     %d\n"
		       "live processes     %lld\n"
		       "process instances  %lld (%lld live)\n"
		       "identity changes   %lld\n"
		       "samples            %lld\n"
		       "scans              %lld (%lld failed, last ok #%lld)\n"
		       "alerts             %lld (%lld delivery records)\n"
		       "file size          %llu bytes (+ WAL %llu), %llu in use\n"
		       "oldest scan        %s\n"
		       "newest scan        %s\n",
		       st.schema_version, (long long)st.processes, (long long)st.instances,
		       (long long)st.live_instances, (long long)st.changes, (long long)st.samples,
		       (long long)st.scans, (long long)st.failed_scans, (long long)st.last_scan_id,
		       (long long)st.alerts, (long long)st.deliveries,
		       (unsigned long long)st.file_bytes, (unsigned long long)st.wal_bytes,
		       (unsigned long long)st.used_bytes, a, b);
	}
	return fflush(stdout) == 0 ? 0 : EX_IOERR;
}
