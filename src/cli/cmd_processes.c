/*
 * cmd_processes.c — `daemoneye-cli processes`: process instances from the
 * event store (the live snapshot and the history), filtered by pid, name,
 * time range and limit, as a table for people or JSON, NDJSON or CSV for
 * programs.  Rows stream from the store one at a time, so memory stays
 * constant however many match.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "daemoneye/term.h"
#include "daemoneye/text.h"
#include "daemoneye/base64.h"
#include "daemoneye/buf.h"
#include "daemoneye/clock.h"

/* A table line: a 1 MiB command line escaped (room for 4 MiB) (at most 4 bytes per byte) and the
 * columns. */
#define LINE_MAX_BYTES (17u << 20)

/* ---- output ------------------------------------------------------------- */

enum fmt { F_TABLE, F_JSON, F_NDJSON, F_CSV };

struct out {
	enum fmt fmt;
	bool color;
	size_t width; /* terminal columns; 0: unlimited */
	size_t rows;
	struct de_buf line; /* the table line being built */
};

static void fmt_bytes(bool has, uint64_t v, char buf[16])
{
	static const char units[] = "BKMGTP";
	double d = (double)v;
	int u = 0;

	if (!has) {
		snprintf(buf, 16, "-");
		return;
	}
	while (d >= 1024 && u < 5) {
		d /= 1024;
		u++;
	}
	snprintf(buf, 16, u ? "%.1f%c" : "%.0f%c", d, units[u]);
}

/* Append escaped text to the line (a line past the cap is cut there). */
static void put_text(struct out *o, const char *s)
{
	char *e = de_escape_text(s ? s : "", s ? strlen(s) : 0);

	if (e)
		de_buf_puts(&o->line, e);
	free(e);
}

/* Print the line cut to the terminal width (counting UTF-8 characters). */
static void emit_line(struct out *o, const char *pre, const char *post)
{
	const char *line = o->line.p ? o->line.p : "";
	size_t len = o->line.len;
	size_t cols = 0, i = 0;

	for (; i < len; i++) {
		if (((unsigned char)line[i] & 0xC0) != 0x80) {
			if (o->width && cols == o->width)
				break;
			cols++;
		}
	}
	/* trailing spaces are noise */
	while (i > 0 && line[i - 1] == ' ')
		i--;
	printf("%s%.*s%s\n", pre, (int)i, line, post);
}

static void table_header(struct out *o)
{
	de_buf_reset(&o->line);
	put_text(o, "    PID    PPID USER     STARTED (UTC)       EXITED (UTC)        EXIT      "
		    "  CPU%    RSS NAME            COMMAND");
	emit_line(o, o->color ? "\033[1m" : "", o->color ? "\033[0m" : "");
}

/*
 * How a process ended, as a shell says it: its exit code ("0", "7"), or
 * the signal that killed it by name ("SIGKILL"; "SIG34" for one without a
 * name); "-" while it runs or when nobody saw it end (a scan found it gone).
 */
static void fmt_exit(const struct de_process_row *r, char *out, size_t n)
{
	const char *abbrev;

	if (r->has_exit_signal) {
		if ((abbrev = sigabbrev_np((int)r->exit_signal)))
			snprintf(out, n, "SIG%s", abbrev);
		else
			snprintf(out, n, "SIG%d", (int)r->exit_signal);
	} else if (r->has_exit_code)
		snprintf(out, n, "%d", (int)r->exit_code);
	else
		snprintf(out, n, "-");
}

static void table_row(struct out *o, const struct de_process_row *r)
{
	char start[32], exited[32], rss[16], cpu[16], head[160];

	de_buf_reset(&o->line);
	cli_fmt_time(r->has_start_time ? r->start_time : r->first_seen, start);
	if (r->alive)
		snprintf(exited, sizeof(exited), "(running)");
	else
		cli_fmt_time(r->has_exited_at ? r->exited_at : 0, exited);
	fmt_bytes(r->has_memory_usage, r->memory_usage, rss);
	if (r->has_cpu_usage)
		snprintf(cpu, sizeof(cpu), "%.1f", r->cpu_usage);
	else
		snprintf(cpu, sizeof(cpu), "-");
	char ppid[16] = "-";
	if (r->has_ppid)
		snprintf(ppid, sizeof(ppid), "%u", r->ppid);
	snprintf(head, sizeof(head), "%7u %7s ", r->pid, ppid);
	put_text(o, head);
	/* the user's name, the bare id only when it has none */
	char user[16];
	const char *who = r->user_name ? r->user_name : r->user_id ? r->user_id : "-";
	snprintf(user, sizeof(user), "%-8.8s", who);
	put_text(o, user);
	char how[24];
	fmt_exit(r, how, sizeof(how));
	snprintf(head, sizeof(head), " %-19s %-19s %-9s %6s %6s ", start, exited, how, cpu, rss);
	put_text(o, head);
	size_t before = o->line.len;
	put_text(o, r->name);
	while (o->line.len < before + 15)
		put_text(o, " ");
	put_text(o, " ");
	put_text(o, r->command_line);
	bool dim = o->color && !r->alive;
	emit_line(o, dim ? "\033[2m" : "", dim ? "\033[0m" : "");
}

/*
 * A text member: valid UTF-8 as is; otherwise U+FFFD per bad byte and the
 * exact bytes in "<name>_raw" (base64), as the model's JSON does.
 */
static void set_text(json_t *o, const char *name, const char *s)
{
	size_t n;

	if (!s) {
		json_object_set_new(o, name, json_null());
		return;
	}
	n = strlen(s);
	if (de_utf8_valid(s, n)) {
		json_object_set_new(o, name, json_stringn(s, n));
		return;
	}
	size_t k;
	char *fixed = de_utf8_lossy_dup(s, n, &k), *raw = malloc(DE_BASE64_LEN(n) + 1), key[64];
	if (!fixed || !raw)
		goto out;
	json_object_set_new(o, name, json_stringn(fixed, k));
	de_base64_encode((const uint8_t *)s, n, raw);
	snprintf(key, sizeof(key), "%s_raw", name);
	json_object_set_new(o, key, json_string(raw));
out:
	free(fixed);
	free(raw);
}

static json_t *row_json(const struct de_process_row *r)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "instance_id", json_integer(r->instance_id));
	json_object_set_new(o, "pid", json_integer(r->pid));
	json_object_set_new(o, "ppid", r->has_ppid ? json_integer(r->ppid) : json_null());
	set_text(o, "name", r->name);
	set_text(o, "executable_path", r->executable_path);
	set_text(o, "command_line", r->command_line);
	json_t *argv = json_loads(r->argv_json, JSON_DECODE_ANY, NULL);
	json_object_set_new(o, "argv", argv ? argv : json_null());
	json_object_set_new(o, "start_time",
			    r->has_start_time ? json_integer(r->start_time) : json_null());
	json_object_set_new(o, "first_seen", json_integer(r->first_seen));
	json_object_set_new(o, "last_seen", json_integer(r->last_seen));
	json_object_set_new(o, "exited_at",
			    r->has_exited_at ? json_integer(r->exited_at) : json_null());
	json_object_set_new(o, "exit_code",
			    r->has_exit_code ? json_integer(r->exit_code) : json_null());
	json_object_set_new(o, "exit_signal",
			    r->has_exit_signal ? json_integer(r->exit_signal) : json_null());
	json_object_set_new(o, "alive", json_boolean(r->alive));
	json_object_set_new(o, "first_scan_id", json_integer(r->first_scan_id));
	json_object_set_new(o, "last_scan_id", json_integer(r->last_scan_id));
	json_object_set_new(o, "cpu_usage",
			    r->has_cpu_usage ? json_real(r->cpu_usage) : json_null());
	json_object_set_new(o, "memory_usage",
			    r->has_memory_usage ? json_integer((json_int_t)r->memory_usage)
						: json_null());
	set_text(o, "user_id", r->user_id);
	set_text(o, "user_name", r->user_name);
	set_text(o, "group_name", r->group_name);
	set_text(o, "cwd", r->cwd);
	set_text(o, "executable_hash", r->executable_hash);
	json_object_set_new(o, "accessible", json_boolean(r->accessible));
	json_object_set_new(o, "file_exists", json_boolean(r->file_exists));
	json_object_set_new(o, "exe_deleted", json_boolean(r->exe_deleted));
	json_object_set_new(o, "exe_replaced", json_boolean(r->exe_replaced));
	return o;
}

/* One CSV field and its separator (the row ends in CRLF, RFC 4180). */
static void csv_field(const char *s, bool last)
{
	de_csv_field(stdout, s);
	fputs(last ? "\r\n" : ",", stdout);
}

static void csv_num(bool has, long long v, bool last)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%lld", v);
	csv_field(has ? buf : NULL, last);
}

static void csv_row(const struct de_process_row *r)
{
	char cpu[32];
	snprintf(cpu, sizeof(cpu), "%.2f", r->cpu_usage);
	csv_num(true, r->instance_id, false);
	csv_num(true, r->pid, false);
	csv_num(r->has_ppid, r->ppid, false);
	csv_field(r->name, false);
	csv_field(r->executable_path, false);
	csv_field(r->command_line, false);
	csv_num(r->has_start_time, r->start_time, false);
	csv_num(true, r->first_seen, false);
	csv_num(true, r->last_seen, false);
	csv_num(r->has_exited_at, r->exited_at, false);
	csv_num(r->has_exit_code, r->exit_code, false);
	csv_num(r->has_exit_signal, r->exit_signal, false);
	csv_field(r->alive ? "true" : "false", false);
	csv_field(r->has_cpu_usage ? cpu : NULL, false);
	csv_num(r->has_memory_usage, (long long)r->memory_usage, false);
	csv_field(r->user_id, false);
	csv_field(r->user_name, false);
	csv_field(r->executable_hash, false);
	csv_field(r->exe_deleted ? "true" : "false", true);
}

static int print_row(const struct de_process_row *r, void *arg)
{
	struct out *o = arg;
	json_t *j;

	switch (o->fmt) {
	case F_TABLE:
		if (o->rows == 0)
			table_header(o);
		table_row(o, r);
		break;
	case F_CSV:
		if (o->rows == 0)
			fputs("instance_id,pid,ppid,name,executable_path,command_line,start_time,"
			      "first_seen,last_seen,exited_at,exit_code,exit_signal,alive,"
			      "cpu_usage,memory_usage,user_id,user_name,executable_hash,"
			      "exe_deleted\r\n",
			      stdout);
		csv_row(r);
		break;
	case F_JSON:
	case F_NDJSON:
		if (!(j = row_json(r)))
			return -ENOMEM;
		if (o->fmt == F_JSON)
			fputs(o->rows ? ",\n  " : "[\n  ", stdout);
		json_dumpf(j, stdout, JSON_COMPACT);
		if (o->fmt == F_NDJSON)
			putchar('\n');
		json_decref(j);
		break;
	}
	o->rows++;
	return ferror(stdout) ? -EIO : 0;
}

/* ---- the command -------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: daemoneye-cli processes [--pid N] [--name S] [--since T] [--until T]\n"
		"                                 [--scan ID] [--live] [--limit N] [--offset N]\n"
		"                                 [--format table|json|ndjson|csv]\n"
		"\n"
		"  --name S     exact name; with * ? or [ a glob pattern\n"
		"  --since T    alive at or after T; --until T: started by T.  T is RFC 3339\n"
		"               (2026-11-25T09:30:00Z), a date, now, or relative (-90s -15m\n"
		"               -1h -2d -1w)\n"
		"  --scan ID    alive during scan ID;  --live: only the current snapshot\n");
}

static int parse_u64(const char *opt, const char *s, uint64_t max, uint64_t *out)
{
	return cli_u64_arg("processes", opt, s, max, out);
}

int cmd_processes(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"pid", required_argument, NULL, 'p'},
		{"name", required_argument, NULL, 'n'},
		{"since", required_argument, NULL, 's'},
		{"until", required_argument, NULL, 'u'},
		{"limit", required_argument, NULL, 'l'},
		{"offset", required_argument, NULL, 'o'},
		{"format", required_argument, NULL, 'f'},
		{"scan", required_argument, NULL, 'S'},
		{"live", no_argument, NULL, 'L'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct de_process_query q = {0};
	struct out o = {.fmt = F_TABLE, .color = ctx->color, .line = DE_BUF_INIT(LINE_MAX_BYTES)};
	struct de_store *store = NULL;
	struct de_error err = {0};
	int64_t now = de_now_ms();
	uint64_t u;
	int c, rc;

	while ((c = getopt_long(argc, argv, "p:n:s:u:l:o:f:S:Lh", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (parse_u64("--pid", optarg, UINT32_MAX, &u) < 0)
				return EX_USAGE;
			q.has_pid = true;
			q.pid = (uint32_t)u;
			break;
		case 'n':
			if (strpbrk(optarg, "*?["))
				q.name_pattern = optarg;
			else
				q.name = optarg;
			break;
		case 's':
		case 'u': {
			int64_t t;
			if (cli_time_arg("processes", c == 's' ? "--since" : "--until", optarg, now,
					 &t) < 0)
				return EX_USAGE;
			if (c == 's') {
				q.has_since = true;
				q.since_ms = t;
			} else {
				q.has_until = true;
				q.until_ms = t;
			}
			break;
		}
		case 'l':
			if (parse_u64("--limit", optarg, INT64_MAX, &q.limit) < 0)
				return EX_USAGE;
			break;
		case 'o':
			if (parse_u64("--offset", optarg, INT64_MAX, &q.offset) < 0)
				return EX_USAGE;
			break;
		case 'S':
			if (parse_u64("--scan", optarg, INT64_MAX, &u) < 0)
				return EX_USAGE;
			q.has_scan_id = true;
			q.scan_id = (int64_t)u;
			break;
		case 'L':
			q.current_only = true;
			break;
		case 'f': {
			static const char *const fmts[] = {"table", "json", "ndjson", "csv", NULL};
			int f = cli_format_arg("processes", optarg, fmts);
			if (f < 0)
				return EX_USAGE;
			o.fmt = (enum fmt)f;
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
	if ((rc = cli_no_operands("processes", argc, argv)) != 0)
		return rc;
	if (q.has_since && q.has_until && q.since_ms > q.until_ms) {
		cli_errorf("processes: --since is after --until");
		return EX_USAGE;
	}
	if ((rc = cli_open_store(ctx, &store)) != 0)
		return rc;
	if (o.fmt == F_TABLE)
		o.width = de_term_width(STDOUT_FILENO);
	rc = de_store_query_processes(store, &q, print_row, &o, &err);
	if (o.fmt == F_JSON)
		fputs(o.rows ? "\n]\n" : "[]\n", stdout);
	de_buf_free(&o.line);
	de_store_close(store);
	if (rc < 0 && err.category != DE_ERR_NONE)
		return cli_fail(&err);
	if (rc < 0 || fflush(stdout) != 0) {
		cli_errorf("processes: cannot write the output");
		return EX_IOERR;
	}
	if (o.fmt == F_TABLE && o.rows == 0)
		fprintf(stderr, "daemoneye-cli: processes: no process matches\n");
	return 0;
}
