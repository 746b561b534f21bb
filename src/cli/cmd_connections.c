/*
 * cmd_connections.c — `daemoneye-cli connections`: the TCP connections of
 * process instances from the event store (network_connections: what the
 * eBPF sensor reported as it happened and what full scans found open),
 * filtered by pid and time, as a table for people or JSON/NDJSON for
 * programs.  Rows stream from the store one at a time.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "daemoneye/clock.h"
#include "daemoneye/text.h"

enum fmt { F_TABLE, F_JSON, F_NDJSON };

struct out {
	enum fmt fmt;
	bool color;
	size_t rows;
};

/* "addr:port", IPv6 in brackets. */
static void endpoint(char *buf, size_t size, int family, const char *addr, int port)
{
	snprintf(buf, size, family == 6 ? "[%s]:%d" : "%s:%d", addr, port);
}

/* Text from a process as a JSON string (escaped when not UTF-8), or null. */
static json_t *text_json(const char *s)
{
	char *e;
	json_t *j;

	if (!s)
		return json_null();
	if (de_utf8_valid(s, strlen(s)))
		return json_string(s);
	e = de_escape_text(s, strlen(s));
	j = e ? json_string(e) : NULL;
	free(e);
	return j;
}

static int print_row(const struct de_connection_row *r, void *arg)
{
	struct out *o = arg;
	char seen[32], local[96], remote[96], *name, *user;
	json_t *j;

	switch (o->fmt) {
	case F_TABLE:
		if (o->rows == 0)
			printf("%s%7s %-8s %-14s %-9s %-30s %-30s %-19s %s%s\n",
			       o->color ? "\033[1m" : "", "PID", "USER", "NAME", "KIND", "LOCAL",
			       "REMOTE", "LAST SEEN (UTC)", "STATE", o->color ? "\033[0m" : "");
		cli_fmt_time(r->last_seen, seen);
		endpoint(local, sizeof(local), r->family, r->local_address, r->local_port);
		endpoint(remote, sizeof(remote), r->family, r->remote_address, r->remote_port);
		name = de_escape_text(r->process_name ? r->process_name : "-",
				      r->process_name ? strlen(r->process_name) : 1);
		user = de_escape_text(r->user_name ? r->user_name : "-",
				      r->user_name ? strlen(r->user_name) : 1);
		printf("%7u %-8.8s %-14.14s %-9s %-30s %-30s %-19s %s\n", r->pid, user ? user : "?",
		       name ? name : "?", r->kind, local,
		       strcmp(r->kind, "listen") == 0 ? "-" : remote, seen,
		       r->has_closed_at ? "closed" : "open");
		free(name);
		free(user);
		break;
	case F_JSON:
	case F_NDJSON:
		j = json_pack("{s:I, s:I, s:I, s:s, s:i, s:s, s:i, s:s, s:i, s:I, s:I, s:s}", "id",
			      (json_int_t)r->id, "pid", (json_int_t)r->pid, "start_time",
			      (json_int_t)r->start_time, "kind", r->kind, "family", r->family,
			      "local_address", r->local_address, "local_port", r->local_port,
			      "remote_address", r->remote_address, "remote_port", r->remote_port,
			      "first_seen", (json_int_t)r->first_seen, "last_seen",
			      (json_int_t)r->last_seen, "source", r->source);
		if (!j)
			return -ENOMEM;
		json_object_set_new(j, "inode", r->inode ? json_integer(r->inode) : json_null());
		json_object_set_new(j, "closed_at",
				    r->has_closed_at ? json_integer(r->closed_at) : json_null());
		json_object_set_new(j, "process_name", text_json(r->process_name));
		json_object_set_new(j, "user_name", text_json(r->user_name));
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

static void usage(FILE *f)
{
	fprintf(f, "usage: daemoneye-cli connections [--pid N] [--since T] [--open] [--limit N]\n"
		   "                                   [--format table|json|ndjson]\n"
		   "\n"
		   "  --pid N      the connections of process N (every instance of that pid)\n"
		   "  --since T    reported or found open at or after T: RFC 3339\n"
		   "               (2026-11-25T09:30:00Z), a date, now, or relative (-90s -15m\n"
		   "               -1h -2d -1w)\n"
		   "  --open       only those not known to be closed\n");
}

int cmd_connections(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"pid", required_argument, NULL, 'p'},
		{"since", required_argument, NULL, 's'},
		{"open", no_argument, NULL, 'O'},
		{"limit", required_argument, NULL, 'l'},
		{"format", required_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct de_connection_query q = {0};
	struct out o = {.fmt = F_TABLE, .color = ctx->color};
	struct de_store *store = NULL;
	struct de_error err = {0};
	uint64_t v;
	int c, rc;

	while ((c = getopt_long(argc, argv, "p:s:Ol:f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (cli_u64_arg("connections", "--pid", optarg, UINT32_MAX, &v) < 0)
				return EX_USAGE;
			q.has_pid = true;
			q.pid = (uint32_t)v;
			break;
		case 's':
			if (cli_time_arg("connections", "--since", optarg, de_now_ms(),
					 &q.since_ms) < 0)
				return EX_USAGE;
			q.has_since = true;
			break;
		case 'O':
			q.open_only = true;
			break;
		case 'l':
			if (cli_u64_arg("connections", "--limit", optarg, INT64_MAX, &q.limit) < 0)
				return EX_USAGE;
			break;
		case 'f': {
			static const char *const fmts[] = {"table", "json", "ndjson", NULL};
			int f = cli_format_arg("connections", optarg, fmts);
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
	if ((rc = cli_no_operands("connections", argc, argv)) != 0)
		return rc;
	if ((rc = cli_open_store(ctx, &store)) != 0)
		return rc;
	rc = de_store_query_connections(store, &q, print_row, &o, &err);
	if (o.fmt == F_JSON)
		fputs(o.rows ? "\n]\n" : "[]\n", stdout);
	de_store_close(store);
	if (rc == -EIO || fflush(stdout) != 0) {
		cli_errorf("connections: cannot write to standard output");
		return EX_IOERR;
	}
	if (rc < 0)
		return cli_fail(&err);
	if (o.fmt == F_TABLE && o.rows == 0)
		fprintf(stderr, "no connections match\n");
	return 0;
}
