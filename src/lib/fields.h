/*
 * fields.h — the field tables that drive the data models' lifetime,
 * equality and JSON (record.c, alert.c, rule.c).  Each model writes the
 * seed's field list down once, as a table of struct field, and calls these
 * for clear, equal, to_json and from_json, so a field added to a table is
 * added to every operation.  Private to src/lib.
 *
 * Strings are bytes (from /proc, not always UTF-8): written to JSON as
 * valid UTF-8 with U+FFFD for each invalid byte, and the exact bytes in a
 * "<name>_raw" base64 twin (for string vectors, an array of them); read back
 * from the twin when present.
 */
#ifndef DAEMONEYE_FIELDS_H
#define DAEMONEYE_FIELDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "daemoneye/buf.h"
#include "daemoneye/error.h"

enum de_ftype {
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

struct de_field {
	const char *name; /* JSON member, the seed's field name */
	enum de_ftype type;
	size_t off;	 /* offset of the value */
	size_t has_off;	 /* offset of the bool has_ flag for optional numbers, or NO_OFF */
	size_t len_off;	 /* offset of the count for vectors, or NO_OFF */
	bool optional;	 /* Option<T> in the seed (or one of daemoneye's additions) */
	bool omit_unset; /* daemoneye's addition: left out of JSON when NULL (strings, JSON) */
};

/* Required, optional (pointer), optional number (has_ flag), vector (+ _len). */
#define F_REQ(s, f, t)                                                                             \
	{                                                                                          \
#f, t, offsetof(s, f), NO_OFF, NO_OFF, false, false                                \
	}
#define F_OPT(s, f, t)                                                                             \
	{                                                                                          \
#f, t, offsetof(s, f), NO_OFF, NO_OFF, true, false                                 \
	}
#define F_OPTN(s, f, t)                                                                            \
	{                                                                                          \
#f, t, offsetof(s, f), offsetof(s, has_##f), NO_OFF, true, false                   \
	}
#define F_VEC(s, f, t)                                                                             \
	{                                                                                          \
#f, t, offsetof(s, f), NO_OFF, offsetof(s, f##_len), false, false                  \
	}

/* A daemoneye addition (not in the seed): optional, absent from JSON when unset. */
#define F_EXT(s, f, t)                                                                             \
	{                                                                                          \
#f, t, offsetof(s, f), NO_OFF, NO_OFF, true, true                                  \
	}

#define F_COUNT(t) (sizeof(t) / sizeof((t)[0]))

/* Free what obj owns per the table and zero its size bytes. */
void de_fields_clear(void *obj, const struct de_field *fs, size_t nf, size_t size);
/* Field-by-field equality (strings by bytes, JSON by json_equal, NaN == NaN). */
bool de_fields_equal(const void *a, const void *b, const struct de_field *fs, size_t nf);
/* A new JSON object (caller owns the reference), NULL on ENOMEM. */
json_t *de_fields_to_json(const void *obj, const struct de_field *fs, size_t nf);
/*
 * The same object as compact JSON text appended to out, byte for byte what
 * de_json_dump(de_fields_to_json(obj), ascii) writes, without building the
 * tree (the alert formats write one per delivery).  The two follow the same
 * rules and are checked against each other by tests/test_alertfmt.c.  0,
 * -ENOMEM/-E2BIG from the buffer, -ERANGE for a u64 JSON cannot carry.
 */
struct de_json_text {
	size_t off;    /* an F_JSON field's offset in obj */
	const char *p; /* its value as compact JSON text (de_json_dump, either escaping) */
	size_t len;
};
int de_fields_write_json(const void *obj, const struct de_field *fs, size_t nf, bool ascii,
			 struct de_buf *out);
/*
 * The same, with the F_JSON fields named in pre[0..npre) taken as already
 * written: their text is copied instead of dumping the value again (with
 * ascii, only when the text is ASCII; else the value is dumped).  The
 * caller keeps each text equal to a dump of its field's value.
 */
int de_fields_write_json_pre(const void *obj, const struct de_field *fs, size_t nf, bool ascii,
			     const struct de_json_text *pre, size_t npre, struct de_buf *out);
/*
 * Parse object o into obj (zeroed first).  Unknown, missing, wrong-type and
 * out-of-range members are ValidationErrors naming the member and `what`
 * (the model's name); obj is left cleared on failure.
 */
int de_fields_from_json(const json_t *o, void *obj, size_t size, const struct de_field *fs,
			size_t nf, const char *what, struct de_error *err);

/* json_object_set_new that also fails on a NULL value (ENOMEM upstream): 0 or -1. */
int de_json_set_new(json_t *o, const char *k, json_t *v);
/*
 * o.name := the bytes s as the models write text: valid UTF-8 as is, other
 * bytes as U+FFFD text with the exact bytes in a "<name>_raw" base64 twin
 * (read back by de_fields_from_json); NULL s sets null.  0 or -1 (ENOMEM).
 */
int de_json_put_bytes(json_t *o, const char *name, const char *s);
/* s as a JSON string, bytes that are not UTF-8 as U+FFFD (NULL: null). */
json_t *de_json_lossy(const char *s);
/* The n bytes at s in base64 as a new JSON string; NULL on ENOMEM. */
json_t *de_json_base64(const char *s, size_t n);
/*
 * json_loadb() that tells running out of memory from bad JSON: 0 with *out,
 * -EINVAL (*je says where), or -ENOMEM.  jansson reports some allocation
 * failures as syntax errors ("invalid token") or not at all; a failed
 * allocation always leaves errno ENOMEM, which nothing else on its path
 * sets.
 */
int de_json_loadb(const char *buf, size_t len, size_t flags, json_t **out, json_error_t *je);
/*
 * json_dumps() that never returns damaged text: jansson 2.14 ignores a
 * failed append of an object's key to its growing buffer and goes on, so
 * json_dumps can return `{:1}` when memory runs short (akheron/jansson
 * issue 655).  This measures the text, then dumps it into a buffer of that
 * size, where appending cannot fail.  A new string, or NULL on ENOMEM.
 */
char *de_json_dumps(const json_t *j, size_t flags);

/*
 * Append j to out exactly as json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY,
 * plus JSON_ENSURE_ASCII when ascii) writes it (members in insertion
 * order), without jansson's per-container loop bookkeeping: several times
 * faster on the alert path.  0, or -ENOMEM/-E2BIG from the buffer, -EINVAL
 * for NULL or a tree nested deeper than 2048 (jansson's own parse limit;
 * this also stops a cycle).  On failure out may hold part of the text.
 */
int de_json_dump(const json_t *j, bool ascii, struct de_buf *out);
/* v in decimal appended to out (as jansson writes an integer).  0, -ENOMEM, -E2BIG. */
int de_json_put_int(struct de_buf *out, json_int_t v);

#endif
