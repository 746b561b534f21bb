/*
 * model.c — ProcessRecord, Alert and DetectionRule: lifetime, equality and
 * JSON, all driven by one field table per struct so that the seed's field
 * list is written down once (the tables below) and every operation follows
 * it.  Also UUID v4, the severity and source enums, and the byte-string
 * helpers (UTF-8 check, terminal escaping) that anything touching /proc
 * data needs.
 */
#include "daemoneye/model.h"

#include <errno.h>
#include <math.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "facts.h"

/* ---- small helpers ------------------------------------------------------ */

int64_t de_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

bool de_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		/* ASCII, eight bytes at a time: most of what /proc holds */
		while (i + 8 <= n) {
			uint64_t w;
			memcpy(&w, p + i, 8);
			if (w & 0x8080808080808080ULL)
				break;
			i += 8;
		}
		if (i >= n)
			break;
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		size_t l = utf8_seq_len(p + i, n - i);
		if (l == 0)
			return false;
		i += l;
	}
	return true;
}

/* de_escape_text's text of s into out (room for 4n bytes); its length. */
static size_t escape_text_into(char *out, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;

	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		size_t l = utf8_seq_len(p + i, n - i);

		if (c == '\\') {
			out[o++] = '\\';
			out[o++] = '\\';
		} else if (c == '\n' || c == '\t' || c == '\r') {
			out[o++] = '\\';
			out[o++] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
		} else if (c < 0x20 || c == 0x7f || l == 0) {
			o += (size_t)snprintf(out + o, 5, "\\x%02x", c);
		} else {
			memcpy(out + o, p + i, l);
			o += l;
			i += l;
			continue;
		}
		i++;
	}
	return o;
}

char *de_escape_text(const char *s, size_t n)
{
	/* Worst case every byte becomes \xNN. */
	char *out = malloc(n * 4 + 1);

	if (!out)
		return NULL;
	out[escape_text_into(out, s, n)] = '\0';
	return out;
}

size_t de_json_str(char *dst, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 1, run = 0;

	if (dst)
		dst[0] = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6];
		size_t el = 2;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		esc[0] = '\\';
		if (dst)
			memcpy(dst + o, s + run, i - run);
		o += i - run;
		run = i + 1;
		switch (c) {
		case '"':
		case '\\':
			esc[1] = (char)c;
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			el = 6;
		}
		if (dst)
			memcpy(dst + o, esc, el);
		o += el;
	}
	if (dst) {
		memcpy(dst + o, s + run, n - run);
		dst[o + n - run] = '"';
	}
	return o + n - run + 1;
}

/* ---- UUID --------------------------------------------------------------- */

int de_uuid_v4(struct de_uuid *out)
{
	size_t got = 0;

	while (got < sizeof(out->bytes)) {
		ssize_t r = getrandom(out->bytes + got, sizeof(out->bytes) - got, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)r;
	}
	out->bytes[6] = (uint8_t)((out->bytes[6] & 0x0f) | 0x40);
	out->bytes[8] = (uint8_t)((out->bytes[8] & 0x3f) | 0x80);
	return 0;
}

void de_uuid_format(const struct de_uuid *u, char buf[DE_UUID_STR_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			buf[o++] = '-';
		buf[o++] = hex[u->bytes[i] >> 4];
		buf[o++] = hex[u->bytes[i] & 0x0f];
	}
	buf[o] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int de_uuid_parse(const char *s, struct de_uuid *out)
{
	struct de_uuid u;
	size_t b = 0;

	if (!s || strlen(s) != DE_UUID_STR_LEN)
		return -EINVAL;
	for (size_t i = 0; i < DE_UUID_STR_LEN;) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -EINVAL;
			i++;
			continue;
		}
		int hi = hexval(s[i]), lo = hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		u.bytes[b++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	*out = u;
	return 0;
}

/* ---- enums -------------------------------------------------------------- */

static const char *const severity_names[DE_SEV_MAX] = {"low", "medium", "high", "critical"};
static const char *const source_names[DE_RULE_SOURCE_MAX] = {"builtin", "file", "user"};

const char *de_severity_name(enum de_severity s)
{
	return (int)s >= 0 && s < DE_SEV_MAX ? severity_names[s] : NULL;
}

int de_severity_parse(const char *s, enum de_severity *out, struct de_error *err)
{
	for (int i = 0; s && i < DE_SEV_MAX; i++) {
		if (strcasecmp(s, severity_names[i]) == 0) {
			*out = (enum de_severity)i;
			return 0;
		}
	}
	return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
			    "unknown severity '%s' (expected low, medium, high or critical)",
			    s ? s : "(null)");
}

const char *de_rule_source_name(enum de_rule_source s)
{
	return (int)s >= 0 && s < DE_RULE_SOURCE_MAX ? source_names[s] : NULL;
}

int de_rule_source_parse(const char *s, enum de_rule_source *out, struct de_error *err)
{
	for (int i = 0; s && i < DE_RULE_SOURCE_MAX; i++) {
		if (strcasecmp(s, source_names[i]) == 0) {
			*out = (enum de_rule_source)i;
			return 0;
		}
	}
	return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
			    "unknown rule source type '%s' (expected builtin, file or user)",
			    s ? s : "(null)");
}

/* ---- field tables ------------------------------------------------------- */

enum ftype {
	F_UUID, /* struct de_uuid */
	F_I64,	/* int64_t */
	F_I32,	/* int32_t */
	F_U32,	/* uint32_t */
	F_U64,	/* uint64_t */
	F_F64,	/* double */
	F_BOOL, /* bool */
	F_STR,	/* char *, bytes; NULL = None when optional */
	F_STRV, /* char ** + size_t count at len_off */
	F_U32V, /* uint32_t * + size_t count at len_off */
	F_JSON, /* json_t *; NULL = None when optional */
	F_SEV,	/* enum de_severity */
	F_SRC,	/* enum de_rule_source */
};

#define NO_OFF ((size_t)-1)

struct field {
	const char *name; /* JSON member, the seed's field name */
	enum ftype type;
	size_t off;	/* offset of the value */
	size_t has_off; /* offset of the bool has_ flag for optional numbers */
	size_t len_off; /* offset of the count for vectors */
	bool optional;	/* Option<T> in the seed */
};

#define REQ(s, f, t)                                                                               \
	{                                                                                          \
#f, t, offsetof(s, f), NO_OFF, NO_OFF, false                                       \
	}
#define OPT(s, f, t)                                                                               \
	{                                                                                          \
#f, t, offsetof(s, f), NO_OFF, NO_OFF, true                                        \
	}
#define OPTN(s, f, t)                                                                              \
	{                                                                                          \
#f, t, offsetof(s, f), offsetof(s, has_##f), NO_OFF, true                          \
	}
#define VEC(s, f, t)                                                                               \
	{                                                                                          \
#f, t, offsetof(s, f), NO_OFF, offsetof(s, f##_len), false                         \
	}

#define PR struct de_process_record
static const struct field process_fields[] = {
	REQ(PR, id, F_UUID),
	REQ(PR, scan_id, F_I64),
	REQ(PR, collection_time, F_I64),
	REQ(PR, pid, F_U32),
	OPTN(PR, ppid, F_U32),
	REQ(PR, name, F_STR),
	OPT(PR, executable_path, F_STR),
	VEC(PR, command_line, F_STRV),
	OPTN(PR, start_time, F_I64),
	OPTN(PR, cpu_usage, F_F64),
	OPTN(PR, memory_usage, F_U64),
	OPT(PR, executable_hash, F_STR),
	OPT(PR, hash_algorithm, F_STR),
	OPT(PR, user_id, F_STR),
	REQ(PR, accessible, F_BOOL),
	REQ(PR, file_exists, F_BOOL),
	OPT(PR, platform_data, F_JSON),
};
#undef PR

#define AL struct de_alert
static const struct field alert_fields[] = {
	REQ(AL, id, F_UUID),
	REQ(AL, alert_time, F_I64),
	REQ(AL, rule_id, F_STR),
	REQ(AL, title, F_STR),
	REQ(AL, description, F_STR),
	REQ(AL, severity, F_SEV),
	OPTN(AL, scan_id, F_I64),
	VEC(AL, affected_processes, F_U32V),
	REQ(AL, process_count, F_I32),
	REQ(AL, alert_data, F_JSON),
	OPTN(AL, rule_execution_time_ms, F_I64),
	REQ(AL, dedupe_key, F_STR),
	{"incomplete", F_BOOL, offsetof(AL, incomplete), NO_OFF, NO_OFF, true},
};
#undef AL

#define RU struct de_rule
static const struct field rule_fields[] = {
	REQ(RU, id, F_STR),
	REQ(RU, name, F_STR),
	OPT(RU, description, F_STR),
	REQ(RU, version, F_I32),
	REQ(RU, sql_query, F_STR),
	REQ(RU, enabled, F_BOOL),
	REQ(RU, severity, F_SEV),
	OPT(RU, category, F_STR),
	VEC(RU, tags, F_STRV),
	OPT(RU, author, F_STR),
	REQ(RU, created_at, F_I64),
	REQ(RU, updated_at, F_I64),
	REQ(RU, source_type, F_SRC),
	OPT(RU, source_path, F_STR),
	{"dedupe_key_fields", F_STRV, offsetof(RU, dedupe_key_fields), NO_OFF,
	 offsetof(RU, dedupe_key_fields_len), true},
};
#undef RU

#define NFIELDS(t) (sizeof(t) / sizeof((t)[0]))

#define AT(base, off, type)  ((type *)(void *)((char *)(base) + (off)))
#define CAT(base, off, type) ((type const *)(const void *)((const char *)(base) + (off)))

/* ---- generic clear / equal ---------------------------------------------- */

static void fields_clear(void *obj, const struct field *fs, size_t nf, size_t size)
{
	for (size_t i = 0; i < nf; i++) {
		const struct field *f = &fs[i];
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

static bool fields_equal(const void *a, const void *b, const struct field *fs, size_t nf)
{
	for (size_t i = 0; i < nf; i++) {
		const struct field *f = &fs[i];
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
	const unsigned char *p = (const unsigned char *)s;
	char *buf = malloc(n * 3 + 1);
	size_t o = 0;
	json_t *j;

	if (!buf)
		return NULL;
	for (size_t i = 0; i < n;) {
		size_t l = utf8_seq_len(p + i, n - i);
		if (l == 0) {
			memcpy(buf + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		} else {
			memcpy(buf + o, p + i, l);
			o += l;
			i += l;
		}
	}
	j = json_stringn(buf, o);
	free(buf);
	return j;
}

static json_t *b64_string(const char *s, size_t n)
{
	size_t cap = 4 * ((n + 2) / 3) + 1;
	unsigned char *buf = malloc(cap);
	json_t *j;

	if (!buf)
		return NULL;
	int len = EVP_EncodeBlock(buf, (const unsigned char *)s, (int)n);
	j = json_stringn((const char *)buf, (size_t)len);
	free(buf);
	return j;
}

/* Decode base64 into a new NUL-terminated string; embedded NULs rejected. */
static char *b64_decode(const char *s, size_t n)
{
	size_t pad = 0;
	unsigned char *buf;

	if (n % 4 != 0)
		return NULL;
	buf = malloc(n / 4 * 3 + 1);
	if (!buf)
		return NULL;
	int len = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)n);
	if (len < 0) {
		free(buf);
		return NULL;
	}
	if (n >= 1 && s[n - 1] == '=')
		pad++;
	if (n >= 2 && s[n - 2] == '=')
		pad++;
	len -= (int)pad;
	if (memchr(buf, '\0', (size_t)len)) {
		free(buf);
		return NULL;
	}
	buf[len] = '\0';
	return (char *)buf;
}

static int set_new(json_t *o, const char *k, json_t *v)
{
	return v ? json_object_set_new(o, k, v) : -1;
}

/* Member `name` := s, plus `name_raw` when s is not valid UTF-8. */
static int put_bytes(json_t *o, const char *name, const char *s)
{
	char raw[64];
	size_t n;

	if (!s)
		return json_object_set_new(o, name, json_null());
	n = strlen(s);
	if (de_utf8_valid(s, n))
		return set_new(o, name, json_stringn(s, n));
	snprintf(raw, sizeof(raw), "%s_raw", name);
	if (set_new(o, name, lossy_string(s, n)) < 0)
		return -1;
	return set_new(o, raw, b64_string(s, n));
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
			if (json_array_append_new(raw, b64_string(v[i], strlen(v[i]))) < 0)
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

static json_t *fields_to_json(const void *obj, const struct field *fs, size_t nf)
{
	json_t *o = json_object();
	char ubuf[DE_UUID_STR_LEN + 1];

	if (!o)
		return NULL;
	for (size_t i = 0; i < nf; i++) {
		const struct field *f = &fs[i];
		int rc = 0;

		if (f->has_off != NO_OFF && !*CAT(obj, f->has_off, bool)) {
			rc = json_object_set_new(o, f->name, json_null());
			if (rc < 0)
				goto fail;
			continue;
		}
		/* daemoneye's own optional additions (no seed field is an optional
		 * bool or vector) appear only when set, keeping the seed's shape */
		if (f->optional && ((f->type == F_BOOL && !*CAT(obj, f->off, bool)) ||
				    (f->type == F_STRV && !*CAT(obj, f->len_off, size_t))))
			continue;
		switch (f->type) {
		case F_UUID:
			de_uuid_format(CAT(obj, f->off, struct de_uuid), ubuf);
			rc = set_new(o, f->name, json_string(ubuf));
			break;
		case F_I64:
			rc = set_new(o, f->name, json_integer(*CAT(obj, f->off, int64_t)));
			break;
		case F_I32:
			rc = set_new(o, f->name, json_integer(*CAT(obj, f->off, int32_t)));
			break;
		case F_U32:
			rc = set_new(o, f->name, json_integer(*CAT(obj, f->off, uint32_t)));
			break;
		case F_U64: {
			uint64_t v = *CAT(obj, f->off, uint64_t);
			if (v > (uint64_t)INT64_MAX)
				goto fail; /* not representable in JSON integers we parse */
			rc = set_new(o, f->name, json_integer((json_int_t)v));
			break;
		}
		case F_F64: {
			double v = *CAT(obj, f->off, double);
			rc = set_new(o, f->name, isfinite(v) ? json_real(v) : json_null());
			break;
		}
		case F_BOOL:
			rc = set_new(o, f->name, json_boolean(*CAT(obj, f->off, bool)));
			break;
		case F_STR:
			rc = put_bytes(o, f->name, *CAT(obj, f->off, char *));
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
			rc = set_new(o, f->name, arr);
			break;
		}
		case F_JSON: {
			json_t *v = *CAT(obj, f->off, json_t *);
			rc = json_object_set(o, f->name, v ? v : json_null());
			break;
		}
		case F_SEV:
			rc = set_new(
				o, f->name,
				json_string(de_severity_name(*CAT(obj, f->off, enum de_severity))
						    ?: "low"));
			break;
		case F_SRC:
			rc = set_new(o, f->name,
				     json_string(de_rule_source_name(
							 *CAT(obj, f->off, enum de_rule_source))
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
		*out = b64_decode(json_string_value(raw), json_string_length(raw));
		if (!*out)
			return bad(err, what, rawname, "is not valid base64 of a NUL-free string");
		return 0;
	}
	if (!json_is_string(v))
		return bad(err, what, name, "must be a string");
	if (strlen(json_string_value(v)) != json_string_length(v))
		return bad(err, what, name, "contains a NUL character");
	*out = strdup(json_string_value(v));
	return *out ? 0 : de_error_set(err, DE_ERR_VALIDATION, ENOMEM, "out of memory");
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
		return de_error_set(err, DE_ERR_VALIDATION, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const json_t *e = json_array_get(src, i);
		if (!json_is_string(e) || !json_is_string(json_array_get(v, i)))
			goto badelem;
		if (raw)
			vec[i] = b64_decode(json_string_value(e), json_string_length(e));
		else if (strlen(json_string_value(e)) == json_string_length(e))
			vec[i] = strdup(json_string_value(e));
		if (!vec[i])
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

static bool known_member(const struct field *fs, size_t nf, const char *key)
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

static int fields_from_json(const json_t *o, void *obj, size_t size, const struct field *fs,
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
		const struct field *f = &fs[i];
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
				rc = de_error_set(err, DE_ERR_VALIDATION, ENOMEM, "out of memory");
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
				rc = de_error_set(err, DE_ERR_VALIDATION, ENOMEM, "out of memory");
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
		fields_clear(obj, fs, nf, size);
	return rc;
}

/* ---- public per-model wrappers ------------------------------------------ */

#define MODEL_API(prefix, type, table, what)                                                       \
	void prefix##_clear(type *x)                                                               \
	{                                                                                          \
		if (x)                                                                             \
			fields_clear(x, table, NFIELDS(table), sizeof(*x));                        \
	}                                                                                          \
	void prefix##_free(type *x)                                                                \
	{                                                                                          \
		prefix##_clear(x);                                                                 \
		free(x);                                                                           \
	}                                                                                          \
	bool prefix##_equal(const type *a, const type *b)                                          \
	{                                                                                          \
		return fields_equal(a, b, table, NFIELDS(table));                                  \
	}                                                                                          \
	json_t *prefix##_to_json(const type *x)                                                    \
	{                                                                                          \
		return fields_to_json(x, table, NFIELDS(table));                                   \
	}                                                                                          \
	int prefix##_from_json(const json_t *j, type *out, struct de_error *err)                   \
	{                                                                                          \
		return fields_from_json(j, out, sizeof(*out), table, NFIELDS(table), what, err);   \
	}

/* ---- Linux facts --------------------------------------------------------- */

/*
 * The facts have two writers that must agree byte for byte: facts_to_json()
 * (jansson, for to_json) and de_linux_facts_json() (text, for the store
 * and anything else that wants no jansson on its path).  Both follow the
 * same order, the order build_record() in collect.c always used.
 */

void de_linux_facts_clear(struct de_linux_facts *f)
{
	if (!f)
		return;
	free(f->cgroup);
	free(f->hash_error);
	memset(f, 0, sizeof(*f));
}

static bool facts_equal(const struct de_linux_facts *a, const struct de_linux_facts *b)
{
	return a->has_ids == b->has_ids &&
	       (!a->has_ids || (a->euid == b->euid && a->egid == b->egid)) &&
	       a->has_real_ids == b->has_real_ids &&
	       (!a->has_real_ids || (a->uid == b->uid && a->gid == b->gid)) &&
	       !a->cgroup == !b->cgroup && (!a->cgroup || strcmp(a->cgroup, b->cgroup) == 0) &&
	       a->has_exe == b->has_exe &&
	       (!a->has_exe ||
		(a->exe_deleted == b->exe_deleted && a->exe_replaced == b->exe_replaced &&
		 a->has_image == b->has_image &&
		 (!a->has_image ||
		  (a->exe_inode == b->exe_inode && a->exe_device == b->exe_device &&
		   a->exe_size == b->exe_size)) &&
		 !a->hash_error == !b->hash_error &&
		 (!a->hash_error || strcmp(a->hash_error, b->hash_error) == 0))) &&
	       a->state == b->state && a->threads == b->threads && a->pgrp == b->pgrp &&
	       a->session == b->session && a->tty_nr == b->tty_nr && a->nice == b->nice &&
	       a->kernel_thread == b->kernel_thread && a->utime_ticks == b->utime_ticks &&
	       a->stime_ticks == b->stime_ticks && a->start_ticks == b->start_ticks &&
	       a->cmdline_truncated == b->cmdline_truncated &&
	       (a->cmdline_masked > 0 ? a->cmdline_masked : 0) ==
		       (b->cmdline_masked > 0 ? b->cmdline_masked : 0);
}

/* Text that is not valid UTF-8, as de_escape_text writes it (a new json
   string; NULL on ENOMEM). */
static json_t *escaped_string(const char *s, size_t n)
{
	char *esc = de_escape_text(s, n);
	json_t *j = esc ? json_string(esc) : NULL;

	free(esc);
	return j;
}

int de_linux_facts_each(const struct de_linux_facts *f,
			int (*fn)(const struct de_fact *m, void *ctx), void *ctx)
{
	return facts_each(f, fn, ctx);
}

/* A fact as a member of the object ctx: text escaped when not valid
   UTF-8, and with raw the exact bytes in key_raw.  0, or -1 on ENOMEM. */
static int fact_to_json(const struct de_fact *m, void *ctx)
{
	json_t *o = ctx;
	char rawname[32];

	switch (m->kind) {
	case DE_FACT_INT:
		return set_new(o, m->key, json_integer(m->i));
	case DE_FACT_BOOL:
		return set_new(o, m->key, json_boolean(m->b));
	case DE_FACT_TEXT:
		break;
	}
	if (de_utf8_valid(m->s, m->n))
		return set_new(o, m->key, json_stringn(m->s, m->n));
	if (set_new(o, m->key, escaped_string(m->s, m->n)) < 0)
		return -1;
	if (!m->raw)
		return 0;
	snprintf(rawname, sizeof(rawname), "%s_raw", m->key);
	return set_new(o, rawname, b64_string(m->s, m->n));
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
	if (facts_each(&r->facts, fact_to_json, o) != 0)
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
	char buf[24], *p = buf + sizeof(buf), *esc;
	size_t len;

	out_key(o, m->key, m->key_len);
	switch (m->kind) {
	case DE_FACT_INT: {
		uint64_t u = m->i < 0 ? 0ull - (uint64_t)m->i : (uint64_t)m->i;
		do {
			*--p = (char)('0' + u % 10);
			u /= 10;
		} while (u);
		if (m->i < 0)
			*--p = '-';
		out_put(o, p, (size_t)(buf + sizeof(buf) - p));
		return 0;
	}
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
	len = escape_text_into(esc, m->s, m->n);
	out_str(o, esc, len);
	free(esc);
	if (!m->raw)
		return 0;
	out_put(o, ",\"", 2);
	out_put(o, m->key, m->key_len);
	out_put(o, "_raw\":\"", 7);
	len = 4 * ((m->n + 2) / 3); /* base64 never needs escaping */
	if (o->len + len + 1 <= o->cap)
		EVP_EncodeBlock((unsigned char *)o->p + o->len, (const unsigned char *)m->s,
				(int)m->n);
	o->len += len;
	out_put(o, "\"", 1);
	return 0;
}

long de_linux_facts_json(const struct de_process_record *r, char *buf, size_t cap)
{
	struct out o = {buf, cap, 0};

	if (!r->facts.present)
		return -EINVAL;
	if (facts_each(&r->facts, fact_to_text, &o) != 0)
		return -ENOMEM;
	out_put(&o, "}", 1);
	if (o.len < cap)
		buf[o.len] = '\0';
	return (long)o.len;
}

/* ---- ProcessRecord with facts ---------------------------------------------- */

/* process_fields without its last entry, platform_data (compared and
   written here, beside the facts). */
#define NPROC_PLAIN (NFIELDS(process_fields) - 1)

void de_process_record_clear(struct de_process_record *r)
{
	if (!r)
		return;
	de_linux_facts_clear(&r->facts);
	fields_clear(r, process_fields, NFIELDS(process_fields), sizeof(*r));
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
	r.facts.cgroup = r.facts.hash_error = NULL;
	ok = dup_or_null(&r.name, src->name) &&
	     dup_or_null(&r.executable_path, src->executable_path) &&
	     dup_or_null(&r.executable_hash, src->executable_hash) &&
	     dup_or_null(&r.hash_algorithm, src->hash_algorithm) &&
	     dup_or_null(&r.user_id, src->user_id) &&
	     dup_or_null(&r.facts.cgroup, src->facts.cgroup) &&
	     dup_or_null(&r.facts.hash_error, src->facts.hash_error) &&
	     (r.command_line = calloc(src->command_line_len ? src->command_line_len : 1,
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

bool de_process_record_equal(const struct de_process_record *a, const struct de_process_record *b)
{
	json_t *ja, *jb;
	bool eq;

	if (!fields_equal(a, b, process_fields, NPROC_PLAIN))
		return false;
	if (a->facts.present == b->facts.present) {
		if (a->facts.present && !facts_equal(&a->facts, &b->facts))
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
	json_t *o = fields_to_json(r, process_fields, NFIELDS(process_fields)), *pd;

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

int de_process_record_from_json(const json_t *j, struct de_process_record *out,
				struct de_error *err)
{
	return fields_from_json(j, out, sizeof(*out), process_fields, NFIELDS(process_fields),
				"ProcessRecord", err);
}

MODEL_API(de_alert, struct de_alert, alert_fields, "Alert")
MODEL_API(de_rule, struct de_rule, rule_fields, "DetectionRule")
