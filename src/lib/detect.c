/*
 * detect.c — rule execution (see detect.h).
 *
 * Safety here rests on SQLite, never on matching SQL text: the statement is
 * prepared under an authorizer that permits only SELECT, column reads and
 * function calls; sqlite3_stmt_readonly() must agree; a progress handler
 * stops a rule that runs past its deadline.
 */
#include "daemoneye/detect.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- builtin rules ----------------------------------------------------- */

struct builtin {
	const char *id, *name, *description, *severity, *category, *tags, *sql;
};

static const struct builtin builtins[] = {
	{
		"deleted-executable",
		"Process running a deleted executable",
		"The file this process was started from has been deleted while the process "
		"runs: a common way to hide a dropped payload (ATT&CK T1070.004, indicator "
		"removal: file deletion).",
		"high",
		"defense_evasion",
		"attack.t1070.004",
		"SELECT pid, ppid, name, executable_path, command_line, user_id, start_time"
		" FROM processes WHERE exe_deleted = 1",
	},
};

#define NBUILTINS (sizeof(builtins) / sizeof(builtins[0]))

void de_rule_array_free(struct de_rule *rules, size_t n)
{
	for (size_t i = 0; rules && i < n; i++)
		de_rule_clear(&rules[i]);
	free(rules);
}

int de_detect_builtin_rules(struct de_rule **out, size_t *n, struct de_error *err)
{
	struct de_rule *rules = calloc(NBUILTINS, sizeof(*rules));

	if (!rules)
		return de_error_set(err, DE_ERR_DETECTION, ENOMEM, "out of memory");
	for (size_t i = 0; i < NBUILTINS; i++) {
		const struct builtin *b = &builtins[i];
		struct de_rule *r = &rules[i];
		r->id = strdup(b->id);
		r->name = strdup(b->name);
		r->description = strdup(b->description);
		r->version = 1;
		r->sql_query = strdup(b->sql);
		r->enabled = true;
		de_severity_parse(b->severity, &r->severity, NULL);
		r->category = strdup(b->category);
		r->tags = calloc(1, sizeof(char *));
		if (r->tags && (r->tags[0] = strdup(b->tags)))
			r->tags_len = 1;
		r->source_type = DE_RULE_BUILTIN;
		if (!r->id || !r->name || !r->description || !r->sql_query || !r->category ||
		    !r->tags_len) {
			de_rule_array_free(rules, NBUILTINS);
			return de_error_set(err, DE_ERR_DETECTION, ENOMEM, "out of memory");
		}
	}
	*out = rules;
	*n = NBUILTINS;
	return 0;
}

/* ---- execution ------------------------------------------------------------ */

void de_alert_list_clear(struct de_alert_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->len; i++)
		de_alert_clear(&l->items[i]);
	free(l->items);
	memset(l, 0, sizeof(*l));
}

static int authorize(void *ud, int action, const char *a, const char *b, const char *c,
		     const char *d)
{
	(void)ud;
	(void)a;
	(void)b;
	(void)c;
	(void)d;
	switch (action) {
	case SQLITE_SELECT:
	case SQLITE_READ:
	case SQLITE_FUNCTION:
	case SQLITE_RECURSIVE: /* bounded by the deadline below */
		return SQLITE_OK;
	default:
		return SQLITE_DENY;
	}
}

struct deadline {
	struct timespec end;
	int expired;
};

static int check_deadline(void *ud)
{
	struct deadline *dl = ud;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec > dl->end.tv_sec ||
	    (now.tv_sec == dl->end.tv_sec && now.tv_nsec >= dl->end.tv_nsec)) {
		dl->expired = 1;
		return 1;
	}
	return 0;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One row as a JSON object of column name -> value. */
static json_t *row_json(sqlite3_stmt *st)
{
	json_t *o = json_object();
	int n = sqlite3_column_count(st);

	for (int i = 0; o && i < n; i++) {
		const char *name = sqlite3_column_name(st, i);
		json_t *v;
		switch (sqlite3_column_type(st, i)) {
		case SQLITE_INTEGER:
			v = json_integer(sqlite3_column_int64(st, i));
			break;
		case SQLITE_FLOAT:
			v = json_real(sqlite3_column_double(st, i));
			break;
		case SQLITE_NULL:
			v = json_null();
			break;
		default: {
			const char *t = (const char *)sqlite3_column_text(st, i);
			size_t l = (size_t)sqlite3_column_bytes(st, i);
			v = de_utf8_valid(t, l) ? json_stringn(t, l) : NULL;
			if (!v) { /* not UTF-8: keep it readable and unambiguous */
				char *esc = de_escape_text(t, l);
				v = json_string(esc ? esc : "");
				free(esc);
			}
		}
		}
		json_object_set_new(o, name ? name : "?", v);
	}
	return o;
}

static const char *col_text(sqlite3_stmt *st, const char *col)
{
	for (int i = 0; i < sqlite3_column_count(st); i++)
		if (strcmp(sqlite3_column_name(st, i), col) == 0)
			return (const char *)sqlite3_column_text(st, i);
	return NULL;
}

static int col_index(sqlite3_stmt *st, const char *col)
{
	for (int i = 0; i < sqlite3_column_count(st); i++)
		if (strcmp(sqlite3_column_name(st, i), col) == 0)
			return i;
	return -1;
}

/* Find or create the alert for dedupe key `key` among alerts[first..]. */
static struct de_alert *alert_for(struct de_alert_list *l, size_t first, const char *key,
				  const struct de_rule *rule, int64_t scan_id)
{
	struct de_alert *a;

	for (size_t i = first; i < l->len; i++)
		if (strcmp(l->items[i].dedupe_key, key) == 0)
			return &l->items[i];
	if (l->len == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 8;
		struct de_alert *ni = realloc(l->items, nc * sizeof(*ni));
		if (!ni)
			return NULL;
		l->items = ni;
		l->cap = nc;
	}
	a = &l->items[l->len];
	memset(a, 0, sizeof(*a));
	de_uuid_v4(&a->id);
	a->alert_time = de_now_ms();
	a->rule_id = strdup(rule->id);
	a->title = strdup(rule->name);
	a->description = strdup(rule->description ? rule->description : rule->name);
	a->severity = rule->severity;
	a->has_scan_id = scan_id > 0;
	a->scan_id = scan_id;
	a->alert_data = json_array();
	a->dedupe_key = strdup(key);
	if (!a->rule_id || !a->title || !a->description || !a->alert_data || !a->dedupe_key) {
		de_alert_clear(a);
		return NULL;
	}
	l->len++;
	return a;
}

int de_detect_run_rule(sqlite3 *db, const struct de_rule *rule, int64_t scan_id,
		       uint64_t timeout_ms, struct de_alert_list *alerts, struct de_error *err)
{
	sqlite3_stmt *st = NULL;
	struct deadline dl = {0};
	const char *tail = NULL;
	size_t first = alerts->len;
	int64_t t0 = mono_ms();
	int rc = 0, step;

	sqlite3_set_authorizer(db, authorize, NULL);
	step = sqlite3_prepare_v2(db, rule->sql_query, -1, &st, &tail);
	sqlite3_set_authorizer(db, NULL, NULL);
	if (step != SQLITE_OK || !st) {
		rc = de_error_set(err, DE_ERR_DETECTION, EINVAL, "rule %s: %s", rule->id,
				  st		      ? sqlite3_errmsg(db)
				  : step == SQLITE_OK ? "empty query"
						      : sqlite3_errmsg(db));
		goto out;
	}
	if (tail && tail[strspn(tail, " \t\r\n;")] != '\0') {
		rc = de_error_set(err, DE_ERR_DETECTION, EINVAL,
				  "rule %s: only one SQL statement is allowed", rule->id);
		goto out;
	}
	if (!sqlite3_stmt_readonly(st)) {
		rc = de_error_set(err, DE_ERR_DETECTION, EPERM,
				  "rule %s: the query is not read-only", rule->id);
		goto out;
	}
	if (timeout_ms) {
		clock_gettime(CLOCK_MONOTONIC, &dl.end);
		dl.end.tv_sec += (time_t)(timeout_ms / 1000);
		dl.end.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (dl.end.tv_nsec >= 1000000000L) {
			dl.end.tv_sec++;
			dl.end.tv_nsec -= 1000000000L;
		}
		sqlite3_progress_handler(db, 1000, check_deadline, &dl);
	}
	int pidcol = col_index(st, "pid");
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = col_text(st, "name"), *exe = col_text(st, "executable_path");
		char *key = NULL;
		struct de_alert *a;

		if (asprintf(&key, "%s|%s|%s", rule->id, name ? name : "", exe ? exe : "") < 0) {
			rc = de_error_set(err, DE_ERR_DETECTION, ENOMEM, "out of memory");
			break;
		}
		a = alert_for(alerts, first, key, rule, scan_id);
		free(key);
		if (!a) {
			rc = de_error_set(err, DE_ERR_DETECTION, ENOMEM, "out of memory");
			break;
		}
		if (pidcol >= 0 && sqlite3_column_type(st, pidcol) == SQLITE_INTEGER) {
			uint32_t *np = realloc(a->affected_processes,
					       (a->affected_processes_len + 1) * sizeof(uint32_t));
			if (!np) {
				rc = de_error_set(err, DE_ERR_DETECTION, ENOMEM, "out of memory");
				break;
			}
			a->affected_processes = np;
			np[a->affected_processes_len++] =
				(uint32_t)sqlite3_column_int64(st, pidcol);
		}
		a->process_count++;
		if (json_array_size(a->alert_data) < DE_DETECT_MAX_ROWS)
			json_array_append_new(a->alert_data, row_json(st));
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = de_error_set(err, DE_ERR_DETECTION, dl.expired ? ETIMEDOUT : EIO,
				  "rule %s: %s", rule->id,
				  dl.expired ? "stopped: ran longer than its timeout"
					     : sqlite3_errmsg(db));
	for (size_t i = first; rc == 0 && i < alerts->len; i++) {
		alerts->items[i].has_rule_execution_time_ms = true;
		alerts->items[i].rule_execution_time_ms = mono_ms() - t0;
	}
out:
	sqlite3_progress_handler(db, 0, NULL, NULL);
	sqlite3_finalize(st);
	if (rc < 0) {
		for (size_t i = first; i < alerts->len; i++)
			de_alert_clear(&alerts->items[i]);
		alerts->len = first;
	}
	return rc;
}
