/*
 * yaml.c — YAML text to a jansson tree, for the configuration and rule files
 * (see yaml.h).
 *
 * YAML is read with libyaml's event parser.  We accept the JSON-compatible
 * core of YAML 1.2: mappings with scalar keys, sequences, and scalars whose
 * plain forms null/~, true/false, integers and floats are typed; anything
 * quoted is a string.  Aliases (the billion-laughs vector), duplicate keys,
 * keys containing '.', several documents and nesting deeper than
 * MAX_DEPTH are errors, each with file:line:column.
 */
#include "daemoneye/yaml.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_DEPTH 32
#define MAX_KEY	  256

struct yctx {
	yaml_parser_t parser;
	const char *origin; /* file name or description */
	json_t *origins;    /* where to record key origins */
	struct de_error *err;
	enum de_error_category cat; /* category of the errors we report */
	bool text;		    /* plain scalars other than null stay strings */
};

static int yerr_at(struct yctx *y, const yaml_mark_t *m, const char *fmt, const char *detail)
{
	return de_error_set(y->err, y->cat, EINVAL, "%s:%zu:%zu: %s%s", y->origin, m->line + 1,
			    m->column + 1, fmt, detail ? detail : "");
}

static int nomem(struct yctx *y)
{
	return de_error_set(y->err, y->cat, ENOMEM, "%s: out of memory", y->origin);
}

static int yparse(struct yctx *y, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&y->parser, ev)) {
		const yaml_mark_t *m = &y->parser.problem_mark;
		if (y->parser.error == YAML_MEMORY_ERROR)
			return nomem(y);
		return de_error_set(
			y->err, y->cat, EINVAL, "%s:%zu:%zu: invalid YAML: %s%s%s", y->origin,
			m->line + 1, m->column + 1, y->parser.problem ? y->parser.problem : "error",
			y->parser.context ? " " : "", y->parser.context ? y->parser.context : "");
	}
	return 0;
}

static int record_origin(struct yctx *y, const char *path, const yaml_mark_t *m)
{
	char buf[PATH_MAX + 64];
	json_t *s;

	if (!y->origins || !*path)
		return 0;
	snprintf(buf, sizeof(buf), "%s:%zu:%zu", y->origin, m->line + 1, m->column + 1);
	if (!(s = json_string(buf)) || json_object_set_new(y->origins, path, s) < 0)
		return nomem(y);
	return 0;
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/* Type a scalar the YAML 1.2 core-schema way; quoted scalars are strings. */
static int scalar_value(struct yctx *y, const yaml_event_t *ev, json_t **out)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t n = ev->data.scalar.length;
	const char *tag = (const char *)ev->data.scalar.tag;

	if (strlen(s) != n)
		return yerr_at(y, &ev->start_mark, "NUL character in scalar", NULL);
	if (tag && strcmp(tag, YAML_STR_TAG) != 0 && strcmp(tag, "!") != 0)
		return yerr_at(y, &ev->start_mark, "unsupported YAML tag ", tag);
	bool is_null = n == 0 || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
		       !strcmp(s, "NULL");
	/* quoted or tagged, or kept as written (y->text): a string, but for null */
	if (tag || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || (y->text && !is_null)) {
		*out = json_stringn(s, n);
		goto done;
	}
	if (is_null) {
		*out = json_null();
	} else if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
		*out = json_true();
	} else if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
		*out = json_false();
	} else if (((s[0] == '-' || s[0] == '+') && all_digits(s + 1)) || all_digits(s)) {
		char *end;
		errno = 0;
		long long v = strtoll(s, &end, 10);
		if (errno == ERANGE)
			return yerr_at(y, &ev->start_mark, "integer out of range: ", s);
		*out = json_integer(v);
	} else if (strspn(s, "0123456789.eE+-") == n && strpbrk(s, "0123456789") &&
		   strchr(s, '.')) {
		char *end;
		double v = strtod(s, &end);
		if (*end || !isfinite(v))
			*out = json_stringn(s, n);
		else
			*out = json_real(v);
	} else {
		*out = json_stringn(s, n);
	}
done:
	if (!*out)
		return nomem(y);
	return 0;
}

static int parse_node(struct yctx *y, yaml_event_t *ev, const char *path, int depth, json_t **out);

static int parse_mapping(struct yctx *y, const char *path, int depth, json_t **out)
{
	json_t *obj = json_object();
	json_t *marks = json_object(); /* key -> line of first occurrence */
	int rc = 0;

	if (!obj || !marks) {
		rc = nomem(y);
		goto out;
	}
	for (;;) {
		yaml_event_t kev, vev;
		char sub[MAX_KEY * 2];
		json_t *val = NULL;
		const char *k;

		if ((rc = yparse(y, &kev)) < 0)
			goto out;
		if (kev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&kev);
			break;
		}
		if (kev.type != YAML_SCALAR_EVENT) {
			rc = yerr_at(y, &kev.start_mark, "mapping keys must be plain scalars",
				     NULL);
			yaml_event_delete(&kev);
			goto out;
		}
		k = (const char *)kev.data.scalar.value;
		if (kev.data.scalar.length == 0 || strlen(k) != kev.data.scalar.length ||
		    (strchr(k, '.') && !y->text) || kev.data.scalar.length >= MAX_KEY) {
			rc = yerr_at(y, &kev.start_mark,
				     "invalid key (empty, too long, or containing '.'): ", k);
			yaml_event_delete(&kev);
			goto out;
		}
		if (json_object_get(marks, k)) {
			char detail[MAX_KEY + 64];
			snprintf(detail, sizeof(detail), "'%s' (first at line %lld)", k,
				 (long long)json_integer_value(json_object_get(marks, k)));
			rc = yerr_at(y, &kev.start_mark, "duplicate key ", detail);
			yaml_event_delete(&kev);
			goto out;
		}
		if (json_object_set_new(marks, k,
					json_integer((json_int_t)kev.start_mark.line + 1)) < 0) {
			rc = nomem(y);
			yaml_event_delete(&kev);
			goto out;
		}
		snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", k);
		if ((rc = yparse(y, &vev)) < 0) {
			yaml_event_delete(&kev);
			goto out;
		}
		rc = parse_node(y, &vev, sub, depth + 1, &val);
		yaml_event_delete(&vev);
		if (rc == 0 && json_object_set_new(obj, k, val) < 0)
			rc = nomem(y);
		yaml_event_delete(&kev);
		if (rc < 0)
			goto out;
	}
out:
	json_decref(marks);
	if (rc < 0)
		json_decref(obj);
	else
		*out = obj;
	return rc;
}

static int parse_sequence(struct yctx *y, const char *path, int depth, json_t **out)
{
	json_t *arr = json_array();
	int rc = 0;
	size_t i = 0;

	if (!arr)
		return nomem(y);
	for (;; i++) {
		yaml_event_t ev;
		char sub[MAX_KEY * 2];
		json_t *val = NULL;

		if ((rc = yparse(y, &ev)) < 0)
			break;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
		rc = parse_node(y, &ev, sub, depth + 1, &val);
		yaml_event_delete(&ev);
		if (rc < 0)
			break;
		if (json_array_append_new(arr, val) < 0) {
			rc = nomem(y);
			break;
		}
	}
	if (rc < 0)
		json_decref(arr);
	else
		*out = arr;
	return rc;
}

static int parse_node(struct yctx *y, yaml_event_t *ev, const char *path, int depth, json_t **out)
{
	if (depth > MAX_DEPTH)
		return yerr_at(y, &ev->start_mark, "nesting too deep", NULL);
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		if (record_origin(y, path, &ev->start_mark) < 0)
			return -ENOMEM;
		return scalar_value(y, ev, out);
	case YAML_MAPPING_START_EVENT:
		if (record_origin(y, path, &ev->start_mark) < 0)
			return -ENOMEM;
		return parse_mapping(y, path, depth, out);
	case YAML_SEQUENCE_START_EVENT:
		if (record_origin(y, path, &ev->start_mark) < 0)
			return -ENOMEM;
		return parse_sequence(y, path, depth, out);
	case YAML_ALIAS_EVENT:
		return yerr_at(y, &ev->start_mark, "YAML aliases are not supported", NULL);
	default:
		return yerr_at(y, &ev->start_mark, "unexpected YAML structure", NULL);
	}
}

static int parse_doc(const char *text, size_t len, const char *origin, json_t *origins,
		     enum de_error_category cat, bool as_text, json_t **out, struct de_error *err)
{
	struct yctx y = {
		.origin = origin, .origins = origins, .err = err, .cat = cat, .text = as_text};
	yaml_event_t ev;
	json_t *root = NULL;
	int rc;

	if (!yaml_parser_initialize(&y.parser))
		return de_error_set(err, cat, ENOMEM, "%s: out of memory", origin);
	yaml_parser_set_input_string(&y.parser, (const unsigned char *)text, len);
	if ((rc = yparse(&y, &ev)) < 0) /* STREAM-START */
		goto out;
	yaml_event_delete(&ev);
	if ((rc = yparse(&y, &ev)) < 0)
		goto out;
	if (ev.type == YAML_STREAM_END_EVENT) {
		yaml_event_delete(&ev);
		root = json_null();
		goto out;
	}
	yaml_event_delete(&ev); /* DOCUMENT-START */
	if ((rc = yparse(&y, &ev)) < 0)
		goto out;
	rc = parse_node(&y, &ev, "", 0, &root);
	yaml_event_delete(&ev);
	if (rc < 0)
		goto out;
	if ((rc = yparse(&y, &ev)) < 0) /* DOCUMENT-END */
		goto out;
	yaml_event_delete(&ev);
	if ((rc = yparse(&y, &ev)) < 0)
		goto out;
	if (ev.type != YAML_STREAM_END_EVENT)
		rc = yerr_at(&y, &ev.start_mark,
			     "several YAML documents in one input; daemoneye reads one", NULL);
	yaml_event_delete(&ev);
out:
	yaml_parser_delete(&y.parser);
	if (rc < 0) {
		json_decref(root);
		return rc;
	}
	*out = root;
	return 0;
}

int de_yaml_parse(const char *text, size_t len, const char *origin, json_t *origins,
		  enum de_error_category cat, json_t **out, struct de_error *err)
{
	return parse_doc(text, len, origin, origins, cat, false, out, err);
}

int de_yaml_parse_text(const char *text, size_t len, const char *origin, json_t *origins,
		       enum de_error_category cat, json_t **out, struct de_error *err)
{
	return parse_doc(text, len, origin, origins, cat, true, out, err);
}
