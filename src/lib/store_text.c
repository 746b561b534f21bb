/*
 * store_text.c — a record as a row: its text columns and its parameters.
 * command_line is the arguments joined by single spaces (exact bytes);
 * argv_json a JSON array of them (arguments that are not valid UTF-8 carry
 * U+FFFD there, the exact bytes stay in command_line); platform_data the
 * compact JSON text of the record's facts and extra members, byte for byte
 * what jansson's json_dumps would write.  The text is built in buffers the
 * store keeps from record to record (one per row of a multi-row insert),
 * so a new process costs no allocation, and bound to the statements
 * without a copy (SQLITE_STATIC).  Each buffer is capped at SQLite's
 * length limit for a value: longer text could not be stored anyway.
 */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/buf.h"
#include "daemoneye/collect.h"
#include "daemoneye/text.h"
#include "daemoneye/validator.h"

/* a collected command line, even all control bytes, fits a rule's value */
_Static_assert(DE_JSON_STR_MAX(DE_COLLECT_MAX_CMDLINE) + 2 < DE_VALIDATOR_MAX_VALUE / 1,
	       "argv_json of the longest command line must stay within the rule sandbox");

/* Room for n more bytes and a NUL in t; false once anything failed since the reset. */
static bool tb_room(struct textbuf *t, size_t n)
{
	int rc;

	if (t->err)
		return false;
	if ((rc = de_buf_reserve(&t->b, n)) < 0) {
		t->err = rc;
		return false;
	}
	return true;
}

static void tb_put(struct textbuf *t, const char *s, size_t n)
{
	int rc;

	if (!t->err && (rc = de_buf_append(&t->b, s, n)) < 0)
		t->err = rc;
}

/* Empty the buffer for reuse, keeping its memory and forgetting any failure. */
static void tb_reset(struct textbuf *t)
{
	t->err = 0;
	t->b.len = 0;
	if (tb_room(t, 0)) /* "" rather than NULL even when nothing is added */
		t->b.p[0] = '\0';
}

/* A JSON string literal of valid UTF-8, as jansson writes it (de_json_str). */
static void tb_json_str(struct textbuf *t, const char *s, size_t n)
{
	/* room for the worst case of a short string, the exact length of a
	   long one (a 1 MiB argument would keep a 6 MiB buffer) or of one
	   whose worst case would pass the cap */
	size_t need = n <= 4096 && DE_JSON_STR_MAX(n) <= t->b.max - t->b.len
			      ? DE_JSON_STR_MAX(n)
			      : de_json_str(NULL, s, n);

	if (!tb_room(t, need))
		return;
	t->b.len += de_json_str(t->b.p + t->b.len, s, n);
	t->b.p[t->b.len] = '\0';
}

/* Decimal text of v, as "%" JSON_INTEGER_FORMAT writes it, without
   snprintf's format parsing (it runs for every integer of every new row). */
static void tb_int(struct textbuf *t, json_int_t v)
{
	char buf[DE_I64_TEXT_MAX], *p = de_i64_text(v, buf + sizeof(buf));

	tb_put(t, p, (size_t)(buf + sizeof(buf) - p));
}

/*
 * Compact JSON text of a value.  Flat objects of strings, integers and
 * booleans (what platform_data read from JSON is) are written here,
 * straight into the reused buffer; the rest through jansson, whose
 * json_dumps allocates and builds its own string each call.
 */
static void tb_json(struct textbuf *t, const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_STRING:
		tb_json_str(t, json_string_value(j), json_string_length(j));
		return;
	case JSON_INTEGER:
		tb_int(t, json_integer_value(j));
		return;
	case JSON_TRUE:
		tb_put(t, "true", 4);
		return;
	case JSON_FALSE:
		tb_put(t, "false", 5);
		return;
	case JSON_NULL:
		tb_put(t, "null", 4);
		return;
	case JSON_OBJECT: {
		bool first = true;
		tb_put(t, "{", 1);
		for (void *it = json_object_iter((json_t *)j); it;
		     it = json_object_iter_next((json_t *)j, it)) {
			if (!first)
				tb_put(t, ",", 1);
			first = false;
			tb_json_str(t, json_object_iter_key(it), json_object_iter_key_len(it));
			tb_put(t, ":", 1);
			tb_json(t, json_object_iter_value(it));
		}
		tb_put(t, "}", 1);
		return;
	}
	default: {
		char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!text) {
			t->err = t->err ? t->err : -ENOMEM;
			return;
		}
		tb_put(t, text, strlen(text));
		free(text);
	}
	}
}

/* The platform_data text of a record with collector facts. */
static void tb_facts(struct textbuf *t, const struct de_process_record *r)
{
	long n;

	if (r->platform_data) {
		/* extra members beside the facts: rare, through jansson */
		json_t *j = de_process_record_platform_json(r);
		if (!j && !t->err)
			t->err = -ENOMEM;
		else if (j)
			tb_json(t, j);
		json_decref(j);
		return;
	}
	if (!tb_room(t, 0))
		return;
	n = de_linux_facts_json(r, t->b.p + t->b.len, t->b.cap - t->b.len);
	if (n >= 0 && (size_t)n >= t->b.cap - t->b.len) {
		if (!tb_room(t, (size_t)n))
			return;
		n = de_linux_facts_json(r, t->b.p + t->b.len, t->b.cap - t->b.len);
	}
	if (n < 0) {
		t->err = -ENOMEM;
		return;
	}
	t->b.len += (size_t)n;
}

/*
 * The text forms of a record: command_line (arguments joined by single
 * spaces, exact bytes), argv_json (a JSON array; arguments that are not
 * valid UTF-8 carry U+FFFD there, the exact bytes stay in command_line) and
 * platform_data's JSON text.  With values_only just platform_data (what a
 * change of values rewrites; the other two are then empty).
 */
int store_bound_make(struct de_store *s, size_t slot, struct bound *b,
		     const struct de_process_record *r, bool values_only, struct de_error *err)
{
	struct textbufs *t = &s->text[slot];
	bool utf8_ok = true;
	int rc;

	tb_reset(&t->cmd);
	tb_reset(&t->argv);
	tb_reset(&t->pd);
	for (size_t i = 0; i < r->command_line_len && !values_only; i++) {
		size_t l = strlen(r->command_line[i]);
		if (i)
			tb_put(&t->cmd, " ", 1);
		tb_put(&t->cmd, r->command_line[i], l);
		if (utf8_ok)
			utf8_ok = de_utf8_valid(r->command_line[i], l);
	}
	if (values_only) {
		/* argv_json and command_line are not rewritten */
	} else if (utf8_ok) {
		tb_put(&t->argv, "[", 1);
		for (size_t i = 0; i < r->command_line_len; i++) {
			if (i)
				tb_put(&t->argv, ",", 1);
			tb_json_str(&t->argv, r->command_line[i], strlen(r->command_line[i]));
		}
		tb_put(&t->argv, "]", 1);
	} else {
		json_t *full = de_process_record_to_json(r);
		char *txt = full ? json_dumps(json_object_get(full, "command_line"), JSON_COMPACT)
				 : NULL;
		if (txt)
			tb_put(&t->argv, txt, strlen(txt));
		else if (!t->argv.err)
			t->argv.err = -ENOMEM;
		free(txt);
		json_decref(full);
	}
	if (r->facts.present)
		tb_facts(&t->pd, r);
	else if (r->platform_data)
		tb_json(&t->pd, r->platform_data);
	rc = t->cmd.err ? t->cmd.err : t->argv.err ? t->argv.err : t->pd.err;
	if (rc < 0) {
		/* leave the buffers usable for the next record */
		tb_reset(&t->cmd);
		tb_reset(&t->argv);
		tb_reset(&t->pd);
		if (rc == -E2BIG)
			return de_error_set(err, DE_ERR_VALIDATION, E2BIG,
					    "%s: pid %u: a text column would be longer than the "
					    "store's limit (%zu bytes); the batch is refused",
					    s->path, r->pid, t->cmd.b.max);
		return de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
	}
	b->cmd = t->cmd.b.p;
	b->argv = t->argv.b.p;
	b->pd = r->platform_data || r->facts.present ? t->pd.b.p : NULL;
	de_uuid_format(&r->id, b->uuid);
	return 0;
}

/*
 * Parameter numbers are shared by every statement of store.c's table; a
 * multi-row insert numbers row k's from k * STORE_NPARAM + 1.
 */
void store_bind_record(sqlite3_stmt *st, int off, const struct de_process_record *r, int64_t scan,
		       const struct bound *b, int64_t inst, const struct rec_sum *h)
{
	sqlite3_bind_int64(st, off + 1, r->pid);
	sqlite3_bind_text(st, off + 2, b->uuid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, off + 3, scan);
	sqlite3_bind_int64(st, off + 4, r->collection_time);
	if (r->has_ppid)
		sqlite3_bind_int64(st, off + 5, r->ppid);
	else
		sqlite3_bind_null(st, off + 5);
	sqlite3_bind_text(st, off + 6, r->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, off + 7, r->executable_path, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, off + 8, b->cmd, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, off + 9, b->argv, -1, SQLITE_STATIC);
	if (r->has_start_time)
		sqlite3_bind_int64(st, off + 10, r->start_time);
	else
		sqlite3_bind_null(st, off + 10);
	if (r->has_cpu_usage)
		sqlite3_bind_double(st, off + 11, r->cpu_usage);
	else
		sqlite3_bind_null(st, off + 11);
	if (r->has_memory_usage)
		sqlite3_bind_int64(st, off + 12, (sqlite3_int64)r->memory_usage);
	else
		sqlite3_bind_null(st, off + 12);
	sqlite3_bind_text(st, off + 13, r->executable_hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, off + 14, r->hash_algorithm, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, off + 15, r->user_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, off + 16, r->accessible);
	sqlite3_bind_int(st, off + 17, r->file_exists);
	sqlite3_bind_int(st, off + 18, h->exe_deleted);
	sqlite3_bind_int(st, off + 19, h->exe_replaced);
	sqlite3_bind_text(st, off + 20, b->pd, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, off + 21, inst);
	sqlite3_bind_int64(st, off + 22, (sqlite3_int64)h->idh);
	sqlite3_bind_int64(st, off + 23, (sqlite3_int64)h->vh);
	/* the full identity's columns (schema 6) come from the facts */
	sqlite3_bind_text(st, off + 24, r->facts.user_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, off + 25, r->facts.group_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, off + 26, r->facts.cwd, -1, SQLITE_STATIC);
}

/* Step a statement whose parameters are bound, then reset it. */

void store_text_init(struct textbufs *t, size_t max)
{
	*t = (struct textbufs){
		.cmd.b = DE_BUF_INIT(max), .argv.b = DE_BUF_INIT(max), .pd.b = DE_BUF_INIT(max)};
}

void store_text_free(struct textbufs *t)
{
	de_buf_free(&t->cmd.b);
	de_buf_free(&t->argv.b);
	de_buf_free(&t->pd.b);
}
