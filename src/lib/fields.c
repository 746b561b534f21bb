/*
 * fields.c — the field-table engine behind the data models (see fields.h):
 * clear, equal, to_json and from_json for any struct described by a table
 * of struct de_field.
 */
#include "fields.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/alert.h"
#include "daemoneye/base64.h"
#include "daemoneye/buf.h"
#include "daemoneye/rule.h"
#include "daemoneye/text.h"
#include "daemoneye/uuid.h"

#define AT(base, off, type)  ((type *)(void *)((char *)(base) + (off)))
#define CAT(base, off, type) ((type const *)(const void *)((const char *)(base) + (off)))

/* ---- generic clear / equal ---------------------------------------------- */

void de_fields_clear(void *obj, const struct de_field *fs, size_t nf, size_t size)
{
	for (size_t i = 0; i < nf; i++) {
		const struct de_field *f = &fs[i];
		switch (f->type) {
		case F_STR:
			free(*AT(obj, f->off, char *));
			break;
		case F_STRV: {
			char **v = *AT(obj, f->off, char **);
			size_t n = *AT(obj, f->len_off, size_t);
			for (size_t k = 0; v && k < n; k++)
				free(v[k]);
			free(v);
			break;
		}
		case F_U32V:
			free(*AT(obj, f->off, uint32_t *));
			break;
		case F_JSON:
			json_decref(*AT(obj, f->off, json_t *));
			break;
		default:
			break;
		}
	}
	memset(obj, 0, size);
}

static bool str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

bool de_fields_equal(const void *a, const void *b, const struct de_field *fs, size_t nf)
{
	for (size_t i = 0; i < nf; i++) {
		const struct de_field *f = &fs[i];
		if (f->has_off != NO_OFF) {
			bool ha = *CAT(a, f->has_off, bool), hb = *CAT(b, f->has_off, bool);
			if (ha != hb)
				return false;
			if (!ha)
				continue;
		}
		switch (f->type) {
		case F_UUID:
			if (memcmp(CAT(a, f->off, struct de_uuid), CAT(b, f->off, struct de_uuid),
				   sizeof(struct de_uuid)) != 0)
				return false;
			break;
		case F_I64:
			if (*CAT(a, f->off, int64_t) != *CAT(b, f->off, int64_t))
				return false;
			break;
		case F_I32:
		case F_SEV:
		case F_SRC:
			/* enums are int-sized on every ABI we build for */
			if (*CAT(a, f->off, int32_t) != *CAT(b, f->off, int32_t))
				return false;
			break;
		case F_U32:
			if (*CAT(a, f->off, uint32_t) != *CAT(b, f->off, uint32_t))
				return false;
			break;
		case F_U64:
			if (*CAT(a, f->off, uint64_t) != *CAT(b, f->off, uint64_t))
				return false;
			break;
		case F_F64: {
			double x = *CAT(a, f->off, double), y = *CAT(b, f->off, double);
			if (!(x == y || (isnan(x) && isnan(y))))
				return false;
			break;
		}
		case F_BOOL:
			if (*CAT(a, f->off, bool) != *CAT(b, f->off, bool))
				return false;
			break;
		case F_STR:
			if (!str_eq(*CAT(a, f->off, char *), *CAT(b, f->off, char *)))
				return false;
			break;
		case F_STRV: {
			size_t n = *CAT(a, f->len_off, size_t);
			if (n != *CAT(b, f->len_off, size_t))
				return false;
			for (size_t k = 0; k < n; k++)
				if (!str_eq((*CAT(a, f->off, char **))[k],
					    (*CAT(b, f->off, char **))[k]))
					return false;
			break;
		}
		case F_U32V: {
			size_t n = *CAT(a, f->len_off, size_t);
			if (n != *CAT(b, f->len_off, size_t))
				return false;
			if (n && memcmp(*CAT(a, f->off, uint32_t *), *CAT(b, f->off, uint32_t *),
					n * sizeof(uint32_t)) != 0)
				return false;
			break;
		}
		case F_JSON: {
			const json_t *x = *CAT(a, f->off, json_t *), *y = *CAT(b, f->off, json_t *);
			if (!x || !y) {
				if (x != y)
					return false;
			} else if (!json_equal(x, y)) {
				return false;
			}
			break;
		}
		}
	}
	return true;
}

/* ---- byte strings in JSON ----------------------------------------------- */

/* Valid UTF-8 copy of s with U+FFFD for each invalid byte (new json string). */
static json_t *lossy_string(const char *s, size_t n)
{
	size_t len;
	char *buf = de_utf8_lossy_dup(s, n, &len);
	json_t *j = buf ? json_stringn(buf, len) : NULL;

	free(buf);
	return j;
}

json_t *de_json_base64(const char *s, size_t n)
{
	char *buf = malloc(DE_BASE64_LEN(n) + 1);
	json_t *j;

	if (!buf)
		return NULL;
	j = json_stringn(buf, de_base64_encode((const uint8_t *)s, n, buf));
	free(buf);
	return j;
}

/* Decode base64 into a new NUL-terminated string in *out: 0, -EINVAL (not
   base64, or holding a NUL), -ENOMEM. */
static int b64_decode(const char *s, size_t n, char **out)
{
	uint8_t *buf = malloc(n / 4 * 3 + 1);
	size_t len;

	if (!buf)
		return -ENOMEM;
	if (de_base64_decode(s, n, buf, n / 4 * 3, &len) < 0 || memchr(buf, '\0', len)) {
		free(buf);
		return -EINVAL;
	}
	buf[len] = '\0';
	*out = (char *)buf;
	return 0;
}

static int nomem(struct de_error *err)
{
	return de_error_set(err, DE_ERR_VALIDATION, ENOMEM, "out of memory");
}

int de_json_set_new(json_t *o, const char *k, json_t *v)
{
	return v ? json_object_set_new(o, k, v) : -1;
}

char *de_json_dumps(const json_t *j, size_t flags)
{
	size_t n = json_dumpb(j, NULL, 0, flags);
	char *s;

	if (n == 0 || !(s = malloc(n + 1)))
		return NULL;
	if (json_dumpb(j, s, n, flags) != n) {
		free(s);
		return NULL;
	}
	s[n] = '\0';
	return s;
}

int de_json_loadb(const char *buf, size_t len, size_t flags, json_t **out, json_error_t *je)
{
	json_t *j;

	errno = 0;
	j = json_loadb(buf, len, flags, je);
	if (!j)
		return errno == ENOMEM || json_error_code(je) == json_error_out_of_memory ? -ENOMEM
											  : -EINVAL;
	*out = j;
	return 0;
}

json_t *de_json_lossy(const char *s)
{
	size_t n;

	if (!s)
		return json_null();
	n = strlen(s);
	return de_utf8_valid(s, n) ? json_stringn(s, n) : lossy_string(s, n);
}

static int json_dump_str(const char *s, size_t n, bool ascii, struct de_buf *out)
{
	int rc = de_buf_reserve(out, DE_JSON_STR_MAX(n));

	if (rc < 0)
		return rc;
	out->len += ascii ? de_json_str_ascii(out->p + out->len, s, n)
			  : de_json_str(out->p + out->len, s, n);
	return 0;
}

/* v in decimal, as jansson's "%" JSON_INTEGER_FORMAT writes it. */
int de_json_put_int(struct de_buf *out, json_int_t v)
{
	char tmp[DE_I64_TEXT_MAX], *e = tmp + sizeof(tmp), *p = de_i64_text(v, e);

	return de_buf_append(out, p, (size_t)(e - p));
}

static int json_dump_at(const json_t *j, bool ascii, int depth, struct de_buf *out)
{
	int rc = 0;

	if (!j || depth > 2048)
		return -EINVAL;
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		bool first = true;
		if ((rc = de_buf_putc(out, '{')) < 0)
			return rc;
		for (void *it = json_object_iter((json_t *)j); it && rc == 0;
		     it = json_object_iter_next((json_t *)j, it)) {
			if (!first && (rc = de_buf_putc(out, ',')) < 0)
				break;
			first = false;
			if ((rc = json_dump_str(json_object_iter_key(it),
						json_object_iter_key_len(it), ascii, out)) == 0 &&
			    (rc = de_buf_putc(out, ':')) == 0)
				rc = json_dump_at(json_object_iter_value(it), ascii, depth + 1,
						  out);
		}
		return rc < 0 ? rc : de_buf_putc(out, '}');
	}
	case JSON_ARRAY:
		if ((rc = de_buf_putc(out, '[')) < 0)
			return rc;
		for (size_t i = 0; i < json_array_size(j) && rc == 0; i++)
			if (!i || (rc = de_buf_putc(out, ',')) == 0)
				rc = json_dump_at(json_array_get(j, i), ascii, depth + 1, out);
		return rc < 0 ? rc : de_buf_putc(out, ']');
	case JSON_STRING:
		return json_dump_str(json_string_value(j), json_string_length(j), ascii, out);
	case JSON_INTEGER:
		return de_json_put_int(out, json_integer_value(j));
	case JSON_REAL: { /* rare here: jansson's own shortest round-trip form */
		char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
		rc = s ? de_buf_puts(out, s) : -ENOMEM;
		free(s);
		return rc;
	}
	case JSON_TRUE:
		return de_buf_puts(out, "true");
	case JSON_FALSE:
		return de_buf_puts(out, "false");
	case JSON_NULL:
		return de_buf_puts(out, "null");
	}
	return -EINVAL;
}

int de_json_dump(const json_t *j, bool ascii, struct de_buf *out)
{
	return json_dump_at(j, ascii, 0, out);
}

/* Member `name` := s, plus `name_raw` when s is not valid UTF-8. */
int de_json_put_bytes(json_t *o, const char *name, const char *s)
{
	char raw[64];
	size_t n;

	if (!s)
		return json_object_set_new(o, name, json_null());
	n = strlen(s);
	if (de_utf8_valid(s, n))
		return de_json_set_new(o, name, json_stringn(s, n));
	snprintf(raw, sizeof(raw), "%s_raw", name);
	if (de_json_set_new(o, name, lossy_string(s, n)) < 0)
		return -1;
	return de_json_set_new(o, raw, de_json_base64(s, n));
}

static int put_strv(json_t *o, const char *name, char *const *v, size_t n)
{
	json_t *arr = json_array(), *raw = NULL;
	char rawname[64];
	bool all_valid = true;

	if (!arr)
		return -1;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(v[i]);
		if (!de_utf8_valid(v[i], l)) {
			all_valid = false;
			if (json_array_append_new(arr, lossy_string(v[i], l)) < 0)
				goto fail;
		} else if (json_array_append_new(arr, json_stringn(v[i], l)) < 0) {
			goto fail;
		}
	}
	if (!all_valid) {
		raw = json_array();
		if (!raw)
			goto fail;
		for (size_t i = 0; i < n; i++)
			if (json_array_append_new(raw, de_json_base64(v[i], strlen(v[i]))) < 0)
				goto fail;
		snprintf(rawname, sizeof(rawname), "%s_raw", name);
		if (json_object_set_new(o, rawname, raw) < 0) {
			raw = NULL;
			goto fail;
		}
		raw = NULL;
	}
	return json_object_set_new(o, name, arr);
fail:
	json_decref(arr);
	json_decref(raw);
	return -1;
}

/*
 * Whether field f of obj is left out of its JSON: daemoneye's own optional
 * additions (no seed field is an optional bool or vector) appear only when
 * set, keeping the seed's shape, and so do the strings and JSON values
 * marked omit_unset.
 */
static bool omitted(const void *obj, const struct de_field *f)
{
	if (f->optional && ((f->type == F_BOOL && !*CAT(obj, f->off, bool)) ||
			    (f->type == F_STRV && !*CAT(obj, f->len_off, size_t))))
		return true;
	return f->omit_unset && (f->type == F_STR || f->type == F_JSON) &&
	       !*CAT(obj, f->off, void *);
}

json_t *de_fields_to_json(const void *obj, const struct de_field *fs, size_t nf)
{
	json_t *o = json_object();
	char ubuf[DE_UUID_STR_LEN + 1];

	if (!o)
		return NULL;
	for (size_t i = 0; i < nf; i++) {
		const struct de_field *f = &fs[i];
		int rc = 0;

		if (f->has_off != NO_OFF && !*CAT(obj, f->has_off, bool)) {
			rc = json_object_set_new(o, f->name, json_null());
			if (rc < 0)
				goto fail;
			continue;
		}
		if (omitted(obj, f))
			continue;
		switch (f->type) {
		case F_UUID:
			de_uuid_format(CAT(obj, f->off, struct de_uuid), ubuf);
			rc = de_json_set_new(o, f->name, json_string(ubuf));
			break;
		case F_I64:
			rc = de_json_set_new(o, f->name, json_integer(*CAT(obj, f->off, int64_t)));
			break;
		case F_I32:
			rc = de_json_set_new(o, f->name, json_integer(*CAT(obj, f->off, int32_t)));
			break;
		case F_U32:
			rc = de_json_set_new(o, f->name, json_integer(*CAT(obj, f->off, uint32_t)));
			break;
		case F_U64: {
			uint64_t v = *CAT(obj, f->off, uint64_t);
			if (v > (uint64_t)INT64_MAX)
				goto fail; /* not representable in JSON integers we parse */
			rc = de_json_set_new(o, f->name, json_integer((json_int_t)v));
			break;
		}
		case F_F64: {
			double v = *CAT(obj, f->off, double);
			rc = de_json_set_new(o, f->name, isfinite(v) ? json_real(v) : json_null());
			break;
		}
		case F_BOOL:
			rc = de_json_set_new(o, f->name, json_boolean(*CAT(obj, f->off, bool)));
			break;
		case F_STR:
			rc = de_json_put_bytes(o, f->name, *CAT(obj, f->off, char *));
			break;
		case F_STRV:
			rc = put_strv(o, f->name, *CAT(obj, f->off, char **),
				      *CAT(obj, f->len_off, size_t));
			break;
		case F_U32V: {
			json_t *arr = json_array();
			const uint32_t *v = *CAT(obj, f->off, uint32_t *);
			size_t n = *CAT(obj, f->len_off, size_t);
			for (size_t k = 0; arr && k < n; k++)
				if (json_array_append_new(arr, json_integer(v[k])) < 0) {
					json_decref(arr);
					arr = NULL;
				}
			rc = de_json_set_new(o, f->name, arr);
			break;
		}
		case F_JSON: {
			json_t *v = *CAT(obj, f->off, json_t *);
			rc = json_object_set(o, f->name, v ? v : json_null());
			break;
		}
		case F_SEV:
			rc = de_json_set_new(
				o, f->name,
				json_string(de_severity_name(*CAT(obj, f->off, enum de_severity))
						    ?: "low"));
			break;
		case F_SRC:
			rc = de_json_set_new(o, f->name,
					     json_string(de_rule_source_name(*CAT(
								 obj, f->off, enum de_rule_source))
								 ?: "user"));
			break;
		}
		if (rc < 0)
			goto fail;
	}
	return o;
fail:
	json_decref(o);
	return NULL;
}

/* ---- parsing ------------------------------------------------------------ */

static int bad(struct de_error *err, const char *what, const char *name, const char *why)
{
	return de_error_set(err, DE_ERR_VALIDATION, EINVAL, "%s: member '%s' %s", what, name, why);
}

/* Copy a JSON string member (or its _raw twin) into a new C string. */
static int get_bytes(const json_t *o, const char *what, const char *name, const json_t *v,
		     char **out, struct de_error *err)
{
	char rawname[64];
	const json_t *raw;

	snprintf(rawname, sizeof(rawname), "%s_raw", name);
	raw = json_object_get(o, rawname);
	if (raw) {
		if (!json_is_string(raw) || !json_is_string(v))
			return bad(err, what, rawname, "must be a base64 string beside a string");
		int rc = b64_decode(json_string_value(raw), json_string_length(raw), out);
		if (rc == -ENOMEM)
			return nomem(err);
		if (rc < 0)
			return bad(err, what, rawname, "is not valid base64 of a NUL-free string");
		return 0;
	}
	if (!json_is_string(v))
		return bad(err, what, name, "must be a string");
	if (strlen(json_string_value(v)) != json_string_length(v))
		return bad(err, what, name, "contains a NUL character");
	*out = strdup(json_string_value(v));
	return *out ? 0 : nomem(err);
}

static int get_strv(const json_t *o, const char *what, const char *name, const json_t *v,
		    char ***out, size_t *outn, struct de_error *err)
{
	char rawname[64];
	const json_t *raw, *src;
	size_t n;
	char **vec;

	snprintf(rawname, sizeof(rawname), "%s_raw", name);
	raw = json_object_get(o, rawname);
	if (!json_is_array(v))
		return bad(err, what, name, "must be an array of strings");
	src = raw ? raw : v;
	if (raw && (!json_is_array(raw) || json_array_size(raw) != json_array_size(v)))
		return bad(err, what, rawname, "must be an array as long as its twin");
	n = json_array_size(src);
	vec = calloc(n ? n : 1, sizeof(char *));
	if (!vec)
		return nomem(err);
	for (size_t i = 0; i < n; i++) {
		const json_t *e = json_array_get(src, i);
		int rc = -EINVAL;
		if (!json_is_string(e) || !json_is_string(json_array_get(v, i)))
			goto badelem;
		if (raw)
			rc = b64_decode(json_string_value(e), json_string_length(e), &vec[i]);
		else if (strlen(json_string_value(e)) == json_string_length(e))
			rc = (vec[i] = strdup(json_string_value(e))) ? 0 : -ENOMEM;
		if (rc == -ENOMEM) {
			for (size_t k = 0; k < i; k++)
				free(vec[k]);
			free(vec);
			return nomem(err);
		}
		if (rc < 0)
			goto badelem;
	}
	*out = vec;
	*outn = n;
	return 0;
badelem:
	for (size_t i = 0; i < n; i++)
		free(vec[i]);
	free(vec);
	return bad(err, what, raw ? rawname : name,
		   raw ? "must hold base64 strings without NUL" : "must hold strings without NUL");
}

static int get_int(const char *what, const char *name, const json_t *v, int64_t lo, int64_t hi,
		   int64_t *out, struct de_error *err)
{
	char why[128];

	if (!json_is_integer(v))
		return bad(err, what, name, "must be an integer");
	json_int_t x = json_integer_value(v);
	if (x < lo || x > hi) {
		snprintf(why, sizeof(why), "is out of range (%lld not in %lld..%lld)", (long long)x,
			 (long long)lo, (long long)hi);
		return bad(err, what, name, why);
	}
	*out = x;
	return 0;
}

static bool known_member(const struct de_field *fs, size_t nf, const char *key)
{
	for (size_t i = 0; i < nf; i++) {
		size_t l = strlen(fs[i].name);
		if (strcmp(fs[i].name, key) == 0)
			return true;
		if ((fs[i].type == F_STR || fs[i].type == F_STRV) &&
		    strncmp(fs[i].name, key, l) == 0 && strcmp(key + l, "_raw") == 0)
			return true;
	}
	return false;
}

/* ,"name": (the comma unless first) */
static int wj_key(struct de_buf *out, const char *name, const char *suffix, bool *first)
{
	size_t n = strlen(name), m = strlen(suffix);
	int rc = de_buf_reserve(out, n + m + 4);

	if (rc < 0)
		return rc;
	if (!*first)
		out->p[out->len++] = ',';
	*first = false;
	out->p[out->len++] = '"';
	memcpy(out->p + out->len, name, n);
	memcpy(out->p + out->len + n, suffix, m);
	out->len += n + m;
	out->p[out->len++] = '"';
	out->p[out->len++] = ':';
	out->p[out->len] = '\0';
	return 0;
}

/* The bytes s as de_json_put_bytes stores them: the text, lossy when it is
 * not UTF-8, then (raw) its base64 twin, as a member of its own. */
static int wj_bytes(struct de_buf *out, const char *s, bool ascii, bool raw)
{
	size_t n = strlen(s), len;
	char *lossy;
	int rc;

	if (de_utf8_valid(s, n))
		return json_dump_str(s, n, ascii, out);
	if (raw) {
		if ((rc = de_buf_reserve(out, DE_BASE64_LEN(n) + 2)) < 0)
			return rc;
		out->p[out->len++] = '"';
		out->len += de_base64_encode((const uint8_t *)s, n, out->p + out->len);
		out->p[out->len++] = '"';
		out->p[out->len] = '\0';
		return 0;
	}
	if (!(lossy = de_utf8_lossy_dup(s, n, &len)))
		return -ENOMEM;
	rc = json_dump_str(lossy, len, ascii, out);
	free(lossy);
	return rc;
}

int de_fields_write_json(const void *obj, const struct de_field *fs, size_t nf, bool ascii,
			 struct de_buf *out)
{
	return de_fields_write_json_pre(obj, fs, nf, ascii, NULL, 0, out);
}

/* The text in pre[0..npre) written for the field at off that out may take as is, or NULL. */
static const struct de_json_text *pre_text(const struct de_json_text *pre, size_t npre, size_t off,
					   bool ascii)
{
	for (size_t i = 0; i < npre; i++)
		if (pre[i].off == off && pre[i].p)
			return !ascii || de_ascii_only(pre[i].p, pre[i].len) ? &pre[i] : NULL;
	return NULL;
}

int de_fields_write_json_pre(const void *obj, const struct de_field *fs, size_t nf, bool ascii,
			     const struct de_json_text *pre, size_t npre, struct de_buf *out)
{
	char ubuf[DE_UUID_STR_LEN + 1];
	bool first = true;
	int rc = de_buf_putc(out, '{');

	for (size_t i = 0; i < nf && rc == 0; i++) {
		const struct de_field *f = &fs[i];

		if (f->has_off != NO_OFF && !*CAT(obj, f->has_off, bool)) {
			if ((rc = wj_key(out, f->name, "", &first)) == 0)
				rc = de_buf_puts(out, "null");
			continue;
		}
		if (omitted(obj, f))
			continue;
		if (f->type == F_STRV) { /* put_strv: the base64 twins first, when any */
			char *const *v = *CAT(obj, f->off, char **);
			size_t n = *CAT(obj, f->len_off, size_t);
			bool valid = true;
			for (size_t k = 0; k < n && valid; k++)
				valid = de_utf8_valid(v[k], strlen(v[k]));
			for (int raw = valid ? 0 : 1; raw >= 0 && rc == 0; raw--) {
				if ((rc = wj_key(out, f->name, raw ? "_raw" : "", &first)) == 0)
					rc = de_buf_putc(out, '[');
				for (size_t k = 0; k < n && rc == 0; k++)
					if ((rc = k ? de_buf_putc(out, ',') : 0) == 0)
						rc = wj_bytes(out, v[k], ascii, raw);
				if (rc == 0)
					rc = de_buf_putc(out, ']');
			}
			continue;
		}
		if ((rc = wj_key(out, f->name, "", &first)) < 0)
			break;
		switch (f->type) {
		case F_UUID:
			de_uuid_format(CAT(obj, f->off, struct de_uuid), ubuf);
			rc = json_dump_str(ubuf, DE_UUID_STR_LEN, ascii, out);
			break;
		case F_I64:
			rc = de_json_put_int(out, *CAT(obj, f->off, int64_t));
			break;
		case F_I32:
			rc = de_json_put_int(out, *CAT(obj, f->off, int32_t));
			break;
		case F_U32:
			rc = de_json_put_int(out, *CAT(obj, f->off, uint32_t));
			break;
		case F_U64: {
			uint64_t v = *CAT(obj, f->off, uint64_t);
			rc = v > (uint64_t)INT64_MAX ? -ERANGE
						     : de_json_put_int(out, (json_int_t)v);
			break;
		}
		case F_F64: {
			double v = *CAT(obj, f->off, double);
			json_t *r = isfinite(v) ? json_real(v) : json_null();
			rc = r ? de_json_dump(r, ascii, out) : -ENOMEM;
			json_decref(r);
			break;
		}
		case F_BOOL:
			rc = de_buf_puts(out, *CAT(obj, f->off, bool) ? "true" : "false");
			break;
		case F_STR: {
			const char *v = *CAT(obj, f->off, char *);
			if (!v) {
				rc = de_buf_puts(out, "null");
				break;
			}
			if ((rc = wj_bytes(out, v, ascii, false)) == 0 &&
			    !de_utf8_valid(v, strlen(v)) &&
			    (rc = wj_key(out, f->name, "_raw", &first)) == 0)
				rc = wj_bytes(out, v, ascii, true);
			break;
		}
		case F_U32V: {
			const uint32_t *v = *CAT(obj, f->off, uint32_t *);
			size_t n = *CAT(obj, f->len_off, size_t);
			rc = de_buf_putc(out, '[');
			for (size_t k = 0; k < n && rc == 0; k++)
				if ((rc = k ? de_buf_putc(out, ',') : 0) == 0)
					rc = de_json_put_int(out, v[k]);
			if (rc == 0)
				rc = de_buf_putc(out, ']');
			break;
		}
		case F_JSON: {
			const json_t *v = *CAT(obj, f->off, json_t *);
			const struct de_json_text *t =
				v ? pre_text(pre, npre, f->off, ascii) : NULL;
			rc = t	 ? de_buf_append(out, t->p, t->len)
			     : v ? de_json_dump(v, ascii, out)
				 : de_buf_puts(out, "null");
			break;
		}
		case F_SEV: {
			const char *v = de_severity_name(*CAT(obj, f->off, enum de_severity));
			rc = json_dump_str(v ? v : "low", strlen(v ? v : "low"), ascii, out);
			break;
		}
		case F_SRC: {
			const char *v = de_rule_source_name(*CAT(obj, f->off, enum de_rule_source));
			rc = json_dump_str(v ? v : "user", strlen(v ? v : "user"), ascii, out);
			break;
		}
		case F_STRV:
			break; /* above */
		}
	}
	return rc < 0 ? rc : de_buf_putc(out, '}');
}

int de_fields_from_json(const json_t *o, void *obj, size_t size, const struct de_field *fs,
			size_t nf, const char *what, struct de_error *err)
{
	const char *key;
	const json_t *val;
	int rc = 0;

	memset(obj, 0, size);
	if (!json_is_object(o))
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL, "%s: expected a JSON object",
				    what);
	json_object_foreach ((json_t *)o, key, val) {
		if (!known_member(fs, nf, key))
			return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
					    "%s: unknown member '%s'", what, key);
	}
	for (size_t i = 0; i < nf && rc == 0; i++) {
		const struct de_field *f = &fs[i];
		const json_t *v = json_object_get(o, f->name);
		int64_t x = 0;

		if (!v || (json_is_null(v) && f->type != F_JSON) ||
		    (json_is_null(v) && f->type == F_JSON && f->optional)) {
			if (!f->optional) {
				rc = bad(err, what, f->name, v ? "must not be null" : "is missing");
				break;
			}
			continue; /* None: pointer stays NULL, has_ flag false */
		}
		if (f->has_off != NO_OFF)
			*AT(obj, f->has_off, bool) = true;
		switch (f->type) {
		case F_UUID:
			if (!json_is_string(v) ||
			    de_uuid_parse(json_string_value(v), AT(obj, f->off, struct de_uuid)) <
				    0)
				rc = bad(err, what, f->name, "must be a UUID string");
			break;
		case F_I64:
			rc = get_int(what, f->name, v, INT64_MIN, INT64_MAX, &x, err);
			*AT(obj, f->off, int64_t) = x;
			break;
		case F_I32:
			rc = get_int(what, f->name, v, INT32_MIN, INT32_MAX, &x, err);
			*AT(obj, f->off, int32_t) = (int32_t)x;
			break;
		case F_U32:
			rc = get_int(what, f->name, v, 0, UINT32_MAX, &x, err);
			*AT(obj, f->off, uint32_t) = (uint32_t)x;
			break;
		case F_U64:
			rc = get_int(what, f->name, v, 0, INT64_MAX, &x, err);
			*AT(obj, f->off, uint64_t) = (uint64_t)x;
			break;
		case F_F64:
			if (!json_is_number(v))
				rc = bad(err, what, f->name, "must be a number");
			else
				*AT(obj, f->off, double) = json_number_value(v);
			break;
		case F_BOOL:
			if (!json_is_boolean(v))
				rc = bad(err, what, f->name, "must be true or false");
			else
				*AT(obj, f->off, bool) = json_is_true(v);
			break;
		case F_STR:
			rc = get_bytes(o, what, f->name, v, AT(obj, f->off, char *), err);
			break;
		case F_STRV:
			rc = get_strv(o, what, f->name, v, AT(obj, f->off, char **),
				      AT(obj, f->len_off, size_t), err);
			break;
		case F_U32V: {
			size_t n = json_array_size(v);
			uint32_t *vec;
			if (!json_is_array(v)) {
				rc = bad(err, what, f->name, "must be an array of integers");
				break;
			}
			vec = calloc(n ? n : 1, sizeof(uint32_t));
			if (!vec) {
				rc = nomem(err);
				break;
			}
			*AT(obj, f->off, uint32_t *) = vec;
			*AT(obj, f->len_off, size_t) = n;
			for (size_t k = 0; k < n && rc == 0; k++) {
				rc = get_int(what, f->name, json_array_get(v, k), 0, UINT32_MAX, &x,
					     err);
				vec[k] = (uint32_t)x;
			}
			break;
		}
		case F_JSON:
			*AT(obj, f->off, json_t *) = json_deep_copy(v);
			if (!*AT(obj, f->off, json_t *))
				rc = nomem(err);
			break;
		case F_SEV:
			if (!json_is_string(v))
				rc = bad(err, what, f->name, "must be a severity string");
			else if ((rc = de_severity_parse(json_string_value(v),
							 AT(obj, f->off, enum de_severity), err)) <
				 0)
				de_error_prefix(err, "%s: member '%s': ", what, f->name);
			break;
		case F_SRC:
			if (!json_is_string(v))
				rc = bad(err, what, f->name, "must be a source type string");
			else if ((rc = de_rule_source_parse(json_string_value(v),
							    AT(obj, f->off, enum de_rule_source),
							    err)) < 0)
				de_error_prefix(err, "%s: member '%s': ", what, f->name);
			break;
		}
	}
	if (rc < 0)
		de_fields_clear(obj, fs, nf, size);
	return rc;
}
