/*
 * record.c — ProcessRecord (see record.h): its field table, the Linux
 * facts' JSON object and text (two writers that must agree byte for byte),
 * copy and equality.
 */
#include "daemoneye/record.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/base64.h"
#include "daemoneye/buf.h"
#include "daemoneye/text.h"
#include "fields.h"

#define PR struct de_process_record
static const struct de_field process_fields[] = {
	F_REQ(PR, id, F_UUID),
	F_REQ(PR, scan_id, F_I64),
	F_REQ(PR, collection_time, F_I64),
	F_REQ(PR, pid, F_U32),
	F_OPTN(PR, ppid, F_U32),
	F_REQ(PR, name, F_STR),
	F_OPT(PR, executable_path, F_STR),
	F_VEC(PR, command_line, F_STRV),
	F_OPTN(PR, start_time, F_I64),
	F_OPTN(PR, cpu_usage, F_F64),
	F_OPTN(PR, memory_usage, F_U64),
	F_OPT(PR, executable_hash, F_STR),
	F_OPT(PR, hash_algorithm, F_STR),
	F_OPT(PR, user_id, F_STR),
	F_REQ(PR, accessible, F_BOOL),
	F_REQ(PR, file_exists, F_BOOL),
	F_OPT(PR, platform_data, F_JSON),
};
#undef PR

/* ---- Linux facts --------------------------------------------------------- */

/*
 * The facts have two writers that must agree byte for byte: fact_to_json()
 * (jansson, for to_json) and de_linux_facts_json() (text, for the store
 * and anything else that wants no jansson on its path).  Both are visitors
 * of the one walk of the facts list (facts.h), so they follow its order.
 */

/* Text that is not valid UTF-8, as de_escape_text writes it (a new json
   string; NULL on ENOMEM). */
static json_t *escaped_string(const char *s, size_t n)
{
	char *esc = de_escape_text(s, n);
	json_t *j = esc ? json_string(esc) : NULL;

	free(esc);
	return j;
}

/* A fact as a member of the object ctx: text escaped when not valid
   UTF-8, and with raw the exact bytes in key_raw.  0, or -1 on ENOMEM. */
static int fact_to_json(const struct de_fact *m, void *ctx)
{
	json_t *o = ctx;
	char rawname[32];

	switch (m->kind) {
	case DE_FACT_INT:
		return de_json_set_new(o, m->key, json_integer(m->i));
	case DE_FACT_BOOL:
		return de_json_set_new(o, m->key, json_boolean(m->b));
	case DE_FACT_TEXT:
		break;
	}
	if (de_utf8_valid(m->s, m->n))
		return de_json_set_new(o, m->key, json_stringn(m->s, m->n));
	if (de_json_set_new(o, m->key, escaped_string(m->s, m->n)) < 0)
		return -1;
	if (!m->raw)
		return 0;
	snprintf(rawname, sizeof(rawname), "%s_raw", m->key);
	return de_json_set_new(o, rawname, de_json_base64(m->s, m->n));
}

json_t *de_process_record_platform_json(const struct de_process_record *r)
{
	json_t *o;
	const char *k;
	json_t *v;

	if (!r->facts.present)
		return r->platform_data ? json_incref(r->platform_data) : json_null();
	if (!(o = json_object()))
		return NULL;
	if (de_linux_facts_each_inline(&r->facts, fact_to_json, o) != 0)
		goto fail;
	if (json_is_object(r->platform_data))
		json_object_foreach (r->platform_data, k, v)
			if (json_object_set(o, k, v) < 0)
				goto fail;
	return o;
fail:
	json_decref(o);
	return NULL;
}

/* An snprintf-like writer: counts everything, stores what fits. */
struct out {
	char *p;
	size_t cap, len;
};

static void out_put(struct out *o, const char *s, size_t n)
{
	if (o->len + n <= o->cap)
		memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void out_str(struct out *o, const char *s, size_t n)
{
	size_t m;

	if (o->len + DE_JSON_STR_MAX(n) <= o->cap) {
		o->len += de_json_str(o->p + o->len, s, n);
		return;
	}
	m = de_json_str(NULL, s, n); /* near the end of the room: exactly */
	if (o->len + m <= o->cap)
		de_json_str(o->p + o->len, s, n);
	o->len += m;
}

/* ,"key": (or {"key": for the first member) */
static void out_key(struct out *o, const char *key, size_t n)
{
	out_put(o, o->len ? ",\"" : "{\"", 2);
	out_put(o, key, n);
	out_put(o, "\":", 2);
}

/* A fact as text, as fact_to_json() makes it.  0 or -ENOMEM. */
static int fact_to_text(const struct de_fact *m, void *ctx)
{
	struct out *o = ctx;
	char buf[DE_I64_TEXT_MAX], *p, *esc;
	size_t len;

	out_key(o, m->key, m->key_len);
	switch (m->kind) {
	case DE_FACT_INT:
		p = de_i64_text(m->i, buf + sizeof(buf));
		out_put(o, p, (size_t)(buf + sizeof(buf) - p));
		return 0;
	case DE_FACT_BOOL:
		out_put(o, m->b ? "true" : "false", m->b ? 4 : 5);
		return 0;
	case DE_FACT_TEXT:
		break;
	}
	if (de_utf8_valid(m->s, m->n)) {
		out_str(o, m->s, m->n);
		return 0;
	}
	if (!(esc = malloc(4 * m->n + 1)))
		return -ENOMEM;
	len = de_escape_text_into(esc, m->s, m->n);
	out_str(o, esc, len);
	free(esc);
	if (!m->raw)
		return 0;
	out_put(o, ",\"", 2);
	out_put(o, m->key, m->key_len);
	out_put(o, "_raw\":\"", 7);
	len = 4 * ((m->n + 2) / 3); /* base64 never needs escaping */
	if (o->len + len + 1 <= o->cap)
		de_base64_encode((const uint8_t *)m->s, m->n, o->p + o->len);
	o->len += len;
	out_put(o, "\"", 1);
	return 0;
}

long de_linux_facts_json(const struct de_process_record *r, char *buf, size_t cap)
{
	struct out o = {buf, cap, 0};

	if (!r->facts.present)
		return -EINVAL;
	if (de_linux_facts_each_inline(&r->facts, fact_to_text, &o) != 0)
		return -ENOMEM;
	out_put(&o, "}", 1);
	if (o.len < cap)
		buf[o.len] = '\0';
	return (long)o.len;
}

/* ---- ProcessRecord with facts ---------------------------------------------- */

/* process_fields without its last entry, platform_data (compared and
   written here, beside the facts). */
#define NPROC_PLAIN (F_COUNT(process_fields) - 1)

void de_process_record_clear(struct de_process_record *r)
{
	if (!r)
		return;
	de_linux_facts_clear(&r->facts);
	de_fields_clear(r, process_fields, F_COUNT(process_fields), sizeof(*r));
}

void de_process_record_free(struct de_process_record *r)
{
	de_process_record_clear(r);
	free(r);
}

/* A copy of s (NULL stays NULL); false on ENOMEM. */
static bool dup_or_null(char **dst, const char *s)
{
	*dst = s ? strdup(s) : NULL;
	return !s || *dst;
}

/* The address of fact i's text in f (i must be a text fact). */
static char **fact_text(struct de_linux_facts *f, int i)
{
	return (char **)(void *)((char *)f + de_linux_fact_info[i].offset);
}

static bool fact_is_text(int i)
{
	return de_linux_fact_info[i].type == DE_FACT_T_TEXT ||
	       de_linux_fact_info[i].type == DE_FACT_T_TEXT_RAW;
}

int de_process_record_copy(const struct de_process_record *src, struct de_process_record *out)
{
	struct de_process_record r = *src;
	bool ok;

	/* nothing of src's is owned by r until copied (so a failure frees
	   only what was copied) */
	r.name = r.executable_path = r.executable_hash = r.hash_algorithm = r.user_id = NULL;
	r.command_line = NULL;
	r.command_line_len = 0;
	r.platform_data = NULL;
	for (int i = 0; i < DE_FACT_COUNT_MAX; i++)
		if (fact_is_text(i))
			*fact_text(&r.facts, i) = NULL;
	ok = dup_or_null(&r.name, src->name) &&
	     dup_or_null(&r.executable_path, src->executable_path) &&
	     dup_or_null(&r.executable_hash, src->executable_hash) &&
	     dup_or_null(&r.hash_algorithm, src->hash_algorithm) &&
	     dup_or_null(&r.user_id, src->user_id);
	for (int i = 0; ok && i < DE_FACT_COUNT_MAX; i++)
		if (fact_is_text(i))
			ok = dup_or_null(fact_text(&r.facts, i),
					 *fact_text((struct de_linux_facts *)&src->facts, i));
	ok = ok && (r.command_line = calloc(src->command_line_len ? src->command_line_len : 1,
					    sizeof(char *))) != NULL;
	for (size_t i = 0; ok && i < src->command_line_len; i++) {
		ok = dup_or_null(&r.command_line[i], src->command_line[i]);
		r.command_line_len += ok;
	}
	if (!ok) {
		de_process_record_clear(&r);
		return -ENOMEM;
	}
	r.platform_data = src->platform_data ? json_incref(src->platform_data) : NULL;
	*out = r;
	return 0;
}

/* What malloc(n) takes on a 64-bit glibc heap: a chunk of n plus its
   8-byte header, in 16-byte steps, 32 at least. */
static size_t chunk_bytes(size_t n)
{
	size_t c = (n + 8 + 15) & ~(size_t)15;

	return c < 32 ? 32 : c;
}

static size_t text_bytes(const char *s)
{
	return s ? chunk_bytes(strlen(s) + 1) : 0;
}

size_t de_process_record_heap_bytes(const struct de_process_record *r)
{
	size_t n = text_bytes(r->name) + text_bytes(r->executable_path) +
		   text_bytes(r->executable_hash) + text_bytes(r->hash_algorithm) +
		   text_bytes(r->user_id);

	if (r->command_line) {
		n += chunk_bytes((r->command_line_len ? r->command_line_len : 1) * sizeof(char *));
		for (size_t i = 0; i < r->command_line_len; i++)
			n += text_bytes(r->command_line[i]);
	}
	for (int i = 0; i < DE_FACT_COUNT_MAX; i++)
		if (fact_is_text(i))
			n += text_bytes(*fact_text((struct de_linux_facts *)&r->facts, i));
	/* jansson's nodes take about twice their compact text */
	if (r->platform_data)
		n += 2 * chunk_bytes(json_dumpb(r->platform_data, NULL, 0, JSON_COMPACT));
	return n;
}

bool de_process_record_equal(const struct de_process_record *a, const struct de_process_record *b)
{
	json_t *ja, *jb;
	bool eq;

	if (!de_fields_equal(a, b, process_fields, NPROC_PLAIN))
		return false;
	if (a->facts.present == b->facts.present) {
		if (a->facts.present && !de_linux_facts_equal(&a->facts, &b->facts))
			return false;
		if (!a->platform_data || !b->platform_data)
			return a->platform_data == b->platform_data;
		return json_equal(a->platform_data, b->platform_data);
	}
	/* one with facts, one with JSON: compare their JSON forms */
	ja = de_process_record_platform_json(a);
	jb = de_process_record_platform_json(b);
	eq = ja && jb && json_equal(ja, jb);
	json_decref(ja);
	json_decref(jb);
	return eq;
}

json_t *de_process_record_to_json(const struct de_process_record *r)
{
	json_t *o = de_fields_to_json(r, process_fields, F_COUNT(process_fields)), *pd;

	if (!o || !r->facts.present)
		return o;
	/* replaces the value in place: platform_data keeps its position */
	if (!(pd = de_process_record_platform_json(r)) ||
	    json_object_set_new(o, "platform_data", pd) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* ---- the record's JSON text without jansson ---------------------------- */

/* A string member's value: a JSON literal, or false when it is not valid UTF-8. */
static bool put_str(struct de_buf *b, const char *s, int *rc)
{
	size_t n;

	if (!s) {
		*rc = *rc ? *rc : de_buf_append(b, "null", 4);
		return true;
	}
	n = strlen(s);
	if (!de_utf8_valid(s, n))
		return false;
	if (!*rc && !(*rc = de_buf_reserve(b, DE_JSON_STR_MAX(n))))
		b->len += de_json_str(b->p + b->len, s, n);
	return true;
}

static void put_i64(struct de_buf *b, bool has, int64_t v, int *rc)
{
	char buf[24], *p = buf + sizeof(buf);
	uint64_t u = v < 0 ? 0ull - (uint64_t)v : (uint64_t)v;

	if (*rc)
		return;
	if (!has) {
		*rc = de_buf_append(b, "null", 4);
		return;
	}
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	*rc = de_buf_append(b, p, (size_t)(buf + sizeof(buf) - p));
}

static void put_lit(struct de_buf *b, const char *s, int *rc)
{
	if (!*rc)
		*rc = de_buf_puts(b, s);
}

/*
 * The record's JSON form written straight into b; false (b as it was)
 * when the record needs what only the jansson path writes: text that is
 * not valid UTF-8 (U+FFFD and "_raw" twins), platform_data beside the
 * facts, a memory figure JSON integers cannot hold.
 */
static bool record_json_fast(const struct de_process_record *r, struct de_buf *b, int *rc)
{
	size_t start = b->len;
	char uuid[DE_UUID_STR_LEN + 1];
	long n;

	if (r->platform_data || (r->has_memory_usage && r->memory_usage > (uint64_t)INT64_MAX))
		return false;
	de_uuid_format(&r->id, uuid);
	put_lit(b, "{\"id\":\"", rc);
	put_lit(b, uuid, rc);
	put_lit(b, "\",\"scan_id\":", rc);
	put_i64(b, true, r->scan_id, rc);
	put_lit(b, ",\"collection_time\":", rc);
	put_i64(b, true, r->collection_time, rc);
	put_lit(b, ",\"pid\":", rc);
	put_i64(b, true, r->pid, rc);
	put_lit(b, ",\"ppid\":", rc);
	put_i64(b, r->has_ppid, r->ppid, rc);
	put_lit(b, ",\"name\":", rc);
	if (!put_str(b, r->name ? r->name : "", rc))
		goto slow;
	put_lit(b, ",\"executable_path\":", rc);
	if (!put_str(b, r->executable_path, rc))
		goto slow;
	put_lit(b, ",\"command_line\":[", rc);
	for (size_t i = 0; i < r->command_line_len; i++) {
		if (i)
			put_lit(b, ",", rc);
		if (!put_str(b, r->command_line[i], rc))
			goto slow;
	}
	put_lit(b, "],\"start_time\":", rc);
	put_i64(b, r->has_start_time, r->start_time, rc);
	put_lit(b, ",\"cpu_usage\":", rc);
	if (!r->has_cpu_usage || !isfinite(r->cpu_usage)) {
		put_lit(b, "null", rc);
	} else {
		/* jansson's own formatting of a real */
		json_t *j = json_real(r->cpu_usage);
		char *t = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
		if (!t)
			*rc = *rc ? *rc : -ENOMEM;
		else
			put_lit(b, t, rc);
		free(t);
		json_decref(j);
	}
	put_lit(b, ",\"memory_usage\":", rc);
	put_i64(b, r->has_memory_usage, (int64_t)r->memory_usage, rc);
	put_lit(b, ",\"executable_hash\":", rc);
	if (!put_str(b, r->executable_hash, rc))
		goto slow;
	put_lit(b, ",\"hash_algorithm\":", rc);
	if (!put_str(b, r->hash_algorithm, rc))
		goto slow;
	put_lit(b, ",\"user_id\":", rc);
	if (!put_str(b, r->user_id, rc))
		goto slow;
	put_lit(b, r->accessible ? ",\"accessible\":true" : ",\"accessible\":false", rc);
	put_lit(b, r->file_exists ? ",\"file_exists\":true" : ",\"file_exists\":false", rc);
	put_lit(b, ",\"platform_data\":", rc);
	if (!r->facts.present) {
		put_lit(b, "null", rc);
	} else if (!*rc) {
		n = de_linux_facts_json(r, b->p + b->len, b->cap - b->len);
		if (n >= 0 && (size_t)n >= b->cap - b->len) {
			if (!(*rc = de_buf_reserve(b, (size_t)n)))
				n = de_linux_facts_json(r, b->p + b->len, b->cap - b->len);
		}
		if (n < 0)
			*rc = *rc ? *rc : (int)n;
		else if (!*rc)
			b->len += (size_t)n;
	}
	put_lit(b, "}", rc);
	if (!*rc)
		b->p[b->len] = '\0';
	return true;
slow:
	b->len = start;
	if (b->p)
		b->p[start] = '\0';
	return false;
}

int de_process_record_json_buf(const struct de_process_record *r, struct de_buf *b)
{
	int rc = 0;
	json_t *j;
	char *t;

	if (record_json_fast(r, b, &rc))
		return rc;
	if (!(j = de_process_record_to_json(r)) || !(t = json_dumps(j, JSON_COMPACT))) {
		json_decref(j);
		return -ENOMEM;
	}
	rc = de_buf_puts(b, t);
	free(t);
	json_decref(j);
	return rc;
}

int de_process_record_from_json(const json_t *j, struct de_process_record *out,
				struct de_error *err)
{
	return de_fields_from_json(j, out, sizeof(*out), process_fields, F_COUNT(process_fields),
				   "ProcessRecord", err);
}

void de_process_event_clear(struct de_process_event *e)
{
	if (!e)
		return;
	if (e->has_record)
		de_process_record_clear(&e->record);
	memset(e, 0, sizeof(*e));
}

const char *de_process_event_kind_name(enum de_process_event_kind k)
{
	static const char *const names[DE_PROCESS_EVENT_KIND_MAX] = {
		[DE_PROCESS_EXEC] = "exec", [DE_PROCESS_EXIT] = "exit", [DE_PROCESS_FORK] = "fork",
		[DE_PROCESS_TCP] = "tcp",   [DE_PROCESS_LOST] = "lost",
	};
	return (int)k > 0 && k < DE_PROCESS_EVENT_KIND_MAX ? names[k] : NULL;
}

const char *de_conn_kind_name(enum de_conn_kind k)
{
	static const char *const names[DE_CONN_KIND_MAX] = {
		[DE_CONN_CONNECT] = "connect",
		[DE_CONN_CONNECT_FAILED] = "connect_failed",
		[DE_CONN_LISTEN] = "listen",
		[DE_CONN_ACCEPT] = "accept",
	};
	return (int)k > 0 && k < DE_CONN_KIND_MAX ? names[k] : NULL;
}
