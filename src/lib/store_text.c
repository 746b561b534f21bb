/*
 * store_text.c — a record as a row: its text columns and its parameters.
 * command_line is the arguments joined by single spaces (exact bytes);
 * argv_json a JSON array of them (arguments that are not valid UTF-8 carry
 * U+FFFD there, the exact bytes stay in command_line); platform_data the
 * compact JSON text of the record's facts and extra members, byte for byte
 * what jansson's json_dumps would write.  The text is built in buffers the
 * store keeps from record to record (one per row of a multi-row insert),
 * so a new process costs no allocation, and bound to the statements
 * without a copy (SQLITE_STATIC).
 */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/text.h"

/* Room for n more bytes and a NUL in b (false: out of memory). */
static bool sb_room(struct sbuf *b, size_t n)
{
	if (b->oom)
		return false;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *np = realloc(b->p, cap);
		if (!np) {
			b->oom = true;
			return false;
		}
		b->p = np;
		b->cap = cap;
	}
	return true;
}

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (!sb_room(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* Empty the buffer for reuse, keeping its memory; false if it ran out. */
static bool sb_reset(struct sbuf *b)
{
	bool ok = !b->oom;

	b->len = 0;
	b->oom = false;
	sb_put(b, "", 0); /* "" rather than NULL even when nothing is added */
	return ok;
}

/* A JSON string literal of valid UTF-8, as jansson writes it (de_json_str). */
static void sb_json_str(struct sbuf *b, const char *s, size_t n)
{
	/* the worst case for short strings, the exact length for long ones
	   (a 4 MiB argument would keep a 24 MiB buffer) */
	if (!sb_room(b, n <= 4096 ? DE_JSON_STR_MAX(n) : de_json_str(NULL, s, n)))
		return;
	b->len += de_json_str(b->p + b->len, s, n);
	b->p[b->len] = '\0';
}

/* Decimal text of v, as "%" JSON_INTEGER_FORMAT writes it, without
   snprintf's format parsing (it runs for every integer of every new row). */
static void sb_int(struct sbuf *b, json_int_t v)
{
	char buf[24], *p = buf + sizeof(buf);
	unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	sb_put(b, p, (size_t)(buf + sizeof(buf) - p));
}

/*
 * Compact JSON text of a value.  Flat objects of strings, integers and
 * booleans (what platform_data read from JSON is) are written here,
 * straight into the reused buffer; the rest through jansson, whose
 * json_dumps allocates and builds its own string each call.
 */
static void sb_json(struct sbuf *b, const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_STRING:
		sb_json_str(b, json_string_value(j), json_string_length(j));
		return;
	case JSON_INTEGER:
		sb_int(b, json_integer_value(j));
		return;
	case JSON_TRUE:
		sb_put(b, "true", 4);
		return;
	case JSON_FALSE:
		sb_put(b, "false", 5);
		return;
	case JSON_NULL:
		sb_put(b, "null", 4);
		return;
	case JSON_OBJECT: {
		bool first = true;
		sb_put(b, "{", 1);
		for (void *it = json_object_iter((json_t *)j); it;
		     it = json_object_iter_next((json_t *)j, it)) {
			if (!first)
				sb_put(b, ",", 1);
			first = false;
			sb_json_str(b, json_object_iter_key(it), json_object_iter_key_len(it));
			sb_put(b, ":", 1);
			sb_json(b, json_object_iter_value(it));
		}
		sb_put(b, "}", 1);
		return;
	}
	default: {
		char *t = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!t) {
			b->oom = true;
			return;
		}
		sb_put(b, t, strlen(t));
		free(t);
	}
	}
}

/* The platform_data text of a record with collector facts. */
static void sb_facts(struct sbuf *b, const struct de_process_record *r)
{
	long n;

	if (r->platform_data) {
		/* extra members beside the facts: rare, through jansson */
		json_t *j = de_process_record_platform_json(r);
		if (!j)
			b->oom = true;
		else
			sb_json(b, j);
		json_decref(j);
		return;
	}
	n = de_linux_facts_json(r, b->p + b->len, b->cap - b->len);
	if (n >= 0 && (size_t)n >= b->cap - b->len) {
		if (!sb_room(b, (size_t)n))
			return;
		n = de_linux_facts_json(r, b->p + b->len, b->cap - b->len);
	}
	if (n < 0) {
		b->oom = true;
		return;
	}
	b->len += (size_t)n;
}

/*
 * The text forms of a record: command_line (arguments joined by single
 * spaces, exact bytes), argv_json (a JSON array; arguments that are not
 * valid UTF-8 carry U+FFFD there, the exact bytes stay in command_line) and
 * platform_data's JSON text.  With values_only just platform_data (what a
 * change of values rewrites; the other two are then empty).
 */
int store_bound_make(struct de_store *s, size_t slot, struct bound *b,
		     const struct de_process_record *r, bool values_only)
{
	struct textbufs *t = &s->text[slot];
	bool utf8_ok = true, ok;

	sb_reset(&t->cmd);
	sb_reset(&t->argv);
	sb_reset(&t->pd);
	for (size_t i = 0; i < r->command_line_len && !values_only; i++) {
		size_t l = strlen(r->command_line[i]);
		if (i)
			sb_put(&t->cmd, " ", 1);
		sb_put(&t->cmd, r->command_line[i], l);
		if (utf8_ok)
			utf8_ok = de_utf8_valid(r->command_line[i], l);
	}
	if (values_only) {
		/* argv_json and command_line are not rewritten */
	} else if (utf8_ok) {
		sb_put(&t->argv, "[", 1);
		for (size_t i = 0; i < r->command_line_len; i++) {
			if (i)
				sb_put(&t->argv, ",", 1);
			sb_json_str(&t->argv, r->command_line[i], strlen(r->command_line[i]));
		}
		sb_put(&t->argv, "]", 1);
	} else {
		json_t *full = de_process_record_to_json(r);
		char *txt = full ? json_dumps(json_object_get(full, "command_line"), JSON_COMPACT)
				 : NULL;
		if (txt)
			sb_put(&t->argv, txt, strlen(txt));
		else
			t->argv.oom = true;
		free(txt);
		json_decref(full);
	}
	if (r->facts.present)
		sb_facts(&t->pd, r);
	else if (r->platform_data)
		sb_json(&t->pd, r->platform_data);
	ok = !t->cmd.oom && !t->argv.oom && !t->pd.oom;
	if (!ok) {
		/* leave the buffers usable for the next record */
		sb_reset(&t->cmd);
		sb_reset(&t->argv);
		sb_reset(&t->pd);
		return -ENOMEM;
	}
	b->cmd = t->cmd.p;
	b->argv = t->argv.p;
	b->pd = r->platform_data || r->facts.present ? t->pd.p : NULL;
	de_uuid_format(&r->id, b->uuid);
	return 0;
}

/*
 * Parameter numbers are shared by every statement of store.c's table; a
 * multi-row insert numbers row k's from k * STORE_NPARAM + 1.
 */
void store_bind_record(sqlite3_stmt *st, int off, const struct de_process_record *r,
		       const struct bound *b, int64_t inst, const struct rec_sum *h)
{
	sqlite3_bind_int64(st, off + 1, r->pid);
	sqlite3_bind_text(st, off + 2, b->uuid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, off + 3, r->scan_id);
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
}

/* Step a statement whose parameters are bound, then reset it. */

void store_text_free(struct textbufs *t)
{
	free(t->cmd.p);
	free(t->argv.p);
	free(t->pd.p);
	*t = (struct textbufs){0};
}
