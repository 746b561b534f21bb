/*
 * cmd_query.c — `daemoneye-cli query`: operator SQL through the same
 * sandbox as the rules (validator.h), over a read-only connection to the
 * event store.  Values given with --param are bound as parameters, never
 * spliced into the SQL.  Rows are streamed as they come (json, ndjson,
 * csv); the table format holds at most TABLE_MAX_ROWS rows to size its
 * columns, fitted to the terminal's width.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli.h"
#include "daemoneye/audit.h"
#include "daemoneye/detect.h"
#include "daemoneye/store.h"
#include "daemoneye/validator.h"
#include "daemoneye/term.h"
#include "daemoneye/text.h"

#define TABLE_MAX_ROWS 10000
#define MAX_PARAMS     32

/* ---- output ------------------------------------------------------------------ */

enum fmt { F_TABLE, F_JSON, F_NDJSON, F_CSV };

/* A cell as text for people: escaped, NULL as empty. */
static char *cell_text(sqlite3_stmt *st, int i)
{
	const char *t;

	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return strdup("");
	t = (const char *)sqlite3_column_text(st, i);
	return de_escape_text(t ? t : "", t ? (size_t)sqlite3_column_bytes(st, i) : 0);
}

/* Display width: code points of (escaped, hence valid) UTF-8. */
static size_t width_of(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

/* Print s in exactly w columns, cut with '~' when longer. */
static void put_cell(const char *s, size_t w, bool last)
{
	size_t cols = 0;
	const char *p = s;

	while (*p && cols < w) {
		const char *q = p + 1;
		while (((unsigned char)*q & 0xc0) == 0x80)
			q++;
		if (cols == w - 1 && width_of(p) > 1) {
			fputc('~', stdout);
			cols++;
			break;
		}
		fwrite(p, 1, (size_t)(q - p), stdout);
		p = q;
		cols++;
	}
	if (!last)
		for (; cols < w + 2; cols++)
			fputc(' ', stdout);
}

struct table {
	int ncols;
	char ***rows; /* rows[r][c], owned */
	size_t nrows;
	size_t *w; /* natural widths */
};

static void table_print(struct table *t, sqlite3_stmt *st, bool color)
{
	size_t tw = de_term_width(STDOUT_FILENO), total = 0;

	for (int c = 0; c < t->ncols; c++)
		total += t->w[c] + (c ? 2 : 0);
	/* too wide: shrink the widest column until it fits (at least 4 each) */
	while (tw && total > tw) {
		int widest = 0;
		for (int c = 1; c < t->ncols; c++)
			if (t->w[c] > t->w[widest])
				widest = c;
		if (t->w[widest] <= 4)
			break;
		t->w[widest]--;
		total--;
	}
	if (color)
		fputs("\033[1m", stdout);
	for (int c = 0; c < t->ncols; c++) {
		char *h = de_escape_text(sqlite3_column_name(st, c),
					 strlen(sqlite3_column_name(st, c)));
		put_cell(h ? h : "?", t->w[c], c == t->ncols - 1);
		free(h);
	}
	if (color)
		fputs("\033[0m", stdout);
	fputc('\n', stdout);
	for (size_t r = 0; r < t->nrows; r++) {
		for (int c = 0; c < t->ncols; c++)
			put_cell(t->rows[r][c], t->w[c], c == t->ncols - 1);
		fputc('\n', stdout);
	}
}

static void table_free(struct table *t)
{
	for (size_t r = 0; r < t->nrows; r++) {
		for (int c = 0; c < t->ncols; c++)
			free(t->rows[r][c]);
		free(t->rows[r]);
	}
	free(t->rows);
	free(t->w);
}

/* ---- parameters ------------------------------------------------------------------ */

static bool is_int(const char *s)
{
	const char *p = s + (*s == '-');
	if (!*p || strlen(p) > 18)
		return false;
	for (; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

/* The NAME of NAME=VALUE (which ends at eq) as a parameter number 1..max, else 0. */
static int param_number(const char *assignment, const char *eq, int max)
{
	long v = 0;

	if (eq == assignment || eq - assignment > 9)
		return 0;
	for (const char *p = assignment; p < eq; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		v = v * 10 + (*p - '0');
	}
	return v >= 1 && v <= max ? (int)v : 0;
}

/* Bind NAME=VALUE to :NAME, @NAME, $NAME or ?NAME (a number). 0 or EX_USAGE. */
static int bind_param(sqlite3_stmt *st, const char *assignment)
{
	const char *eq = strchr(assignment, '=');
	char name[80];
	int idx = 0;

	if (!eq || eq == assignment || (size_t)(eq - assignment) > 64) {
		cli_errorf("--param takes NAME=VALUE, not '%s'", assignment);
		return EX_USAGE;
	}
	static const char prefixes[] = ":@$?";
	for (const char *p = prefixes; *p && !idx; p++) {
		snprintf(name, sizeof(name), "%c%.*s", *p, (int)(eq - assignment), assignment);
		idx = sqlite3_bind_parameter_index(st, name);
	}
	if (!idx) /* N for ?N or the Nth ? */
		idx = param_number(assignment, eq, sqlite3_bind_parameter_count(st));
	if (!idx) {
		cli_errorf("the query has no parameter named '%.*s' (write :%.*s in the SQL)",
			   (int)(eq - assignment), assignment, (int)(eq - assignment), assignment);
		return EX_USAGE;
	}
	/* integers bind as integers (so json_extract(...) = :n works), the rest as text */
	if (is_int(eq + 1))
		sqlite3_bind_int64(st, idx, strtoll(eq + 1, NULL, 10));
	else
		sqlite3_bind_text(st, idx, eq + 1, -1, SQLITE_TRANSIENT);
	return 0;
}

/* ---- the command ------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f, "usage: daemoneye-cli query [--format table|json|ndjson|csv] [--param "
		   "NAME=VALUE]...\n"
		   "                          [--limit N] [--timeout MS] SQL\n");
}

/* The SQL of a query.refused entry: its hash, and its text up to this. */
#define REFUSED_SQL_MAX 256

/* A statement the sandbox refused (stage "prepare") or stopped ("run"), in
   the audit ledger when it can be written (docs/audit.md). */
static void note_refused(struct cli_ctx *ctx, const char *sql, const char *stage,
			 const struct de_error *err)
{
	size_t len = strlen(sql);
	char h[DE_AUDIT_HASH_TEXT_LEN + 1];
	char *text = de_utf8_lossy_dup(sql, len < REFUSED_SQL_MAX ? len : REFUSED_SQL_MAX, NULL);
	char *why = de_utf8_lossy_dup(err->message, strlen(err->message), NULL);

	de_audit_hash_text(sql, len, h);
	cli_audit_note(ctx, "query.refused",
		       json_pack("{s:s, s:s?, s:b, s:s, s:s?}", "sql_blake3", h, "sql", text,
				 "sql_truncated", len > REFUSED_SQL_MAX, "stage", stage, "error",
				 why));
	free(text);
	free(why);
}

int cmd_query(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"format", required_argument, NULL, 'f'}, {"param", required_argument, NULL, 'p'},
		{"limit", required_argument, NULL, 'l'},  {"timeout", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},	  {NULL, 0, NULL, 0},
	};
	const char *params[MAX_PARAMS];
	size_t nparams = 0, rows = 0;
	unsigned long long limit = 0, timeout = 0;
	bool have_timeout = false;
	enum fmt fmt = F_TABLE;
	struct de_validator *v = NULL;
	struct de_engine *eng = NULL;
	struct de_error err = {0};
	struct table t = {0};
	sqlite3_stmt *st = NULL;
	struct de_guard g = {0};
	int c, status = 0, step;
	char *end;

	optind = 0; /* re-initialise getopt: options may follow the SQL ("--" ends them) */
	while ((c = getopt_long(argc, argv, "f:p:l:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (!strcmp(optarg, "table"))
				fmt = F_TABLE;
			else if (!strcmp(optarg, "json"))
				fmt = F_JSON;
			else if (!strcmp(optarg, "ndjson"))
				fmt = F_NDJSON;
			else if (!strcmp(optarg, "csv"))
				fmt = F_CSV;
			else {
				cli_errorf("unknown format '%s' (table, json, ndjson or csv)",
					   optarg);
				return EX_USAGE;
			}
			break;
		case 'p':
			if (nparams == MAX_PARAMS) {
				cli_errorf("at most %d --param", MAX_PARAMS);
				return EX_USAGE;
			}
			params[nparams++] = optarg;
			break;
		case 'l':
		case 't':
			errno = 0;
			unsigned long long n = strtoull(optarg, &end, 10);
			if (errno || *end || !*optarg || optarg[0] == '-' ||
			    n > (c == 'l' ? 1000000000ull : 3600000ull)) {
				cli_errorf("--%s takes a number, not '%s'",
					   c == 'l' ? "limit" : "timeout", optarg);
				return EX_USAGE;
			}
			if (c == 'l')
				limit = n;
			else {
				timeout = n;
				have_timeout = true;
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
	if (optind != argc - 1) {
		cli_errorf(optind >= argc ? "query: the SQL is missing"
					  : "query: give the SQL as one argument (quote it)");
		usage(stderr);
		return EX_USAGE;
	}
	const char *sql = argv[optind];

	if (de_validator_from_config(ctx->cfg, &v, &err) < 0)
		return cli_fail(&err);
	if (have_timeout)
		de_validator_with_timeout(v, timeout);
	if (cli_open_engine(ctx, v, &eng, &err) < 0) {
		status = cli_fail(&err);
		goto out;
	}
	sqlite3 *db = de_engine_db(eng);
	if (de_validator_prepare(v, db, sql, &st, &err) < 0) {
		de_error_prefix(&err, "query rejected: ");
		status = cli_fail(&err); /* 65 */
		note_refused(ctx, sql, "prepare", &err);
		goto out;
	}
	for (size_t i = 0; i < nparams; i++)
		if ((status = bind_param(st, params[i])) != 0)
			goto out;
	for (int i = 1; i <= sqlite3_bind_parameter_count(st); i++) {
		const char *name = sqlite3_bind_parameter_name(st, i);
		bool bound = false;
		for (size_t k = 0; k < nparams && !bound; k++) {
			const char *eq = strchr(params[k], '=');
			bound = name ? strlen(name + 1) == (size_t)(eq - params[k]) &&
						!strncmp(name + 1, params[k],
							 (size_t)(eq - params[k]))
				     : param_number(params[k], eq, i) == i;
		}
		if (!bound) {
			cli_errorf("parameter %s has no value (give --param %s=VALUE)",
				   name ? name : "?", name ? name + 1 : "N");
			status = EX_USAGE;
			goto out;
		}
	}
	int ncols = sqlite3_column_count(st);
	if (fmt == F_TABLE && !(t.w = calloc((size_t)ncols, sizeof(size_t)))) {
		cli_errorf("out of memory");
		status = EX_OSERR;
		goto out;
	}
	t.ncols = ncols;
	for (int i = 0; fmt == F_TABLE && i < ncols; i++)
		t.w[i] = width_of(sqlite3_column_name(st, i));
	if (fmt == F_CSV) {
		for (int i = 0; i < ncols; i++) {
			char *h = de_escape_text(sqlite3_column_name(st, i),
						 strlen(sqlite3_column_name(st, i)));
			if (i)
				fputc(',', stdout);
			de_csv_field(stdout, h ? h : "");
			free(h);
		}
		fputc('\n', stdout);
	}
	if (fmt == F_JSON)
		fputs("[", stdout);
	de_validator_arm(v, db, &g);
	while ((!limit || rows < limit) && (step = sqlite3_step(st)) == SQLITE_ROW) {
		if (fmt == F_JSON || fmt == F_NDJSON) {
			json_t *o = de_row_json(st);
			char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
			if (fmt == F_JSON)
				fputs(rows ? ",\n" : "\n", stdout);
			fputs(s ? s : "null", stdout);
			if (fmt == F_NDJSON)
				fputc('\n', stdout);
			free(s);
			json_decref(o);
		} else if (fmt == F_CSV) {
			for (int i = 0; i < ncols; i++) {
				char *s = cell_text(st, i);
				if (i)
					fputc(',', stdout);
				de_csv_field(stdout, s ? s : "");
				free(s);
			}
			fputc('\n', stdout);
		} else {
			if (t.nrows == TABLE_MAX_ROWS) {
				cli_errorf("table output stops at %d rows; use --limit or --format "
					   "ndjson for more",
					   TABLE_MAX_ROWS);
				break;
			}
			char **row = calloc((size_t)ncols, sizeof(char *));
			char ***nr = realloc(t.rows, (t.nrows + 1) * sizeof(char **));
			if (!row || !nr) {
				free(row);
				if (nr)
					t.rows = nr;
				status = EX_OSERR;
				break;
			}
			t.rows = nr;
			t.rows[t.nrows++] = row;
			for (int i = 0; i < ncols && !status; i++) {
				size_t w;
				if (!(row[i] = cell_text(st, i))) {
					status = EX_OSERR;
					break;
				}
				if ((w = width_of(row[i])) > t.w[i])
					t.w[i] = w;
			}
			if (status)
				break;
		}
		rows++;
	}
	if (status == EX_OSERR)
		cli_errorf("out of memory");
	de_validator_disarm(db, &g);
	if (!status && (!limit || rows < limit) && step != SQLITE_DONE && step != SQLITE_ROW) {
		de_validator_step_error(db, &g, step, &err);
		de_error_prefix(&err, "query (after %zu rows): ", rows);
		status = cli_fail(&err);
		if (err.code == ETIMEDOUT || err.code == ENOMEM || err.code == E2BIG)
			note_refused(ctx, sql, "run", &err);
	}
	if (fmt == F_JSON)
		fputs(rows ? "\n]\n" : "]\n", stdout);
	if (fmt == F_TABLE && !status)
		table_print(&t, st, ctx->color);
	if (fflush(stdout) != 0 && !status) {
		cli_errorf("cannot write the results: %s", strerror(errno));
		status = EX_IOERR;
	}
out:
	table_free(&t);
	sqlite3_finalize(st);
	de_engine_close(eng);
	de_validator_free(v);
	return status;
}
