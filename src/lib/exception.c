/*
 * exception.c — parsing and matching exceptions (see exception.h).
 *
 * Parsing is strict in the way the rest of the configuration is: unknown
 * fields, wrong types, empty exceptions and unknown user names are errors
 * that name FILE:LINE:COL of the offending node, so a typo cannot turn an
 * exception into one that silently matches nothing (or everything).
 */
#include "daemoneye/exception.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FIELD 4096 /* bytes of one pattern or reason */

static const char *const known[] = {
	"rule",	       "process_name",		"executable_path", "user",
	"parent_name", "command_line_contains", "reason",
};

/* Where path was written: its own origin, else its nearest parent's. */
static const char *origin_of(const json_t *origins, const char *path, const char *fallback,
			     char *buf, size_t n)
{
	snprintf(buf, n, "%s", path);
	while (origins && *buf) {
		const char *o = json_string_value(json_object_get(origins, buf));
		char *cut;
		if (o)
			return o;
		cut = strrchr(buf, '[');
		char *dot = strrchr(buf, '.');
		if (dot && (!cut || dot > cut))
			cut = dot;
		if (!cut)
			break;
		*cut = '\0';
	}
	return fallback ? fallback : "configuration";
}

struct pctx {
	const json_t *origins;
	const char *fallback;
	enum de_error_category cat;
	struct de_error *err;
};

static int fail(struct pctx *c, const char *path, const char *label, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(struct pctx *c, const char *path, const char *label, const char *fmt, ...)
{
	char msg[DE_ERROR_MSG_MAX / 2], where[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return de_error_set(c->err, c->cat, EINVAL, "%s: exception %s: %s",
			    origin_of(c->origins, path, c->fallback, where, sizeof(where)), label,
			    msg);
}

static int get_field(struct pctx *c, const json_t *e, const char *base, const char *label,
		     const char *key, char **out)
{
	const json_t *v = json_object_get(e, key);
	char path[512];

	if (!v || json_is_null(v))
		return 0;
	snprintf(path, sizeof(path), "%s.%s", base, key);
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > MAX_FIELD ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return fail(c, path, label, "'%s' must be a non-empty string of at most %d bytes",
			    key, MAX_FIELD);
	if (!(*out = strdup(json_string_value(v))))
		return de_error_set(c->err, c->cat, ENOMEM, "out of memory");
	return 0;
}

static int parse_user(struct pctx *c, const json_t *e, const char *base, const char *label,
		      struct de_exception *x)
{
	char *u = NULL, path[512], *end;
	int rc = get_field(c, e, base, label, "user", &u);

	if (rc < 0 || !u)
		return rc;
	snprintf(path, sizeof(path), "%s.user", base);
	errno = 0;
	unsigned long v = strtoul(u, &end, 10);
	if (isdigit((unsigned char)u[0]) && !*end && errno == 0 && v <= UINT32_MAX) {
		x->uid = (uint32_t)v;
	} else {
		struct passwd pw, *res = NULL;
		char buf[4096];
		if (getpwnam_r(u, &pw, buf, sizeof(buf), &res) != 0 || !res) {
			rc = fail(c, path, label,
				  "user '%s' is not a user name known to this host nor a numeric "
				  "uid",
				  u);
			free(u);
			return rc;
		}
		x->uid = (uint32_t)res->pw_uid;
	}
	x->has_uid = true;
	free(u);
	return 0;
}

static void exception_clear(struct de_exception *x)
{
	free(x->rule);
	free(x->process_name);
	free(x->executable_path);
	free(x->parent_name);
	free(x->command_line_contains);
	free(x->reason);
	free(x->label);
	free(x->origin);
	memset(x, 0, sizeof(*x));
}

static int parse_one(struct pctx *c, const json_t *e, const char *base, const char *label,
		     bool allow_rule, struct de_exception *x)
{
	const char *k;
	const json_t *v;
	char where[512];
	int rc;

	if (!json_is_object(e))
		return fail(c, base, label,
			    "must be a mapping of process_name:, executable_path:, user:, "
			    "parent_name:, command_line_contains:, reason:%s",
			    allow_rule ? ", rule:" : "");
	json_object_foreach ((json_t *)e, k, v) {
		bool ok = false;
		char path[512];
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			ok |= strcmp(k, known[i]) == 0;
		if (!allow_rule && strcmp(k, "rule") == 0)
			ok = false;
		snprintf(path, sizeof(path), "%s.%s", base, k);
		if (!ok)
			return fail(c, path, label,
				    "unknown field '%s' (known: %sprocess_name, executable_path, "
				    "user, parent_name, command_line_contains, reason)",
				    k, allow_rule ? "rule, " : "");
	}
	if ((rc = get_field(c, e, base, label, "rule", &x->rule)) < 0 ||
	    (rc = get_field(c, e, base, label, "process_name", &x->process_name)) < 0 ||
	    (rc = get_field(c, e, base, label, "executable_path", &x->executable_path)) < 0 ||
	    (rc = get_field(c, e, base, label, "parent_name", &x->parent_name)) < 0 ||
	    (rc = get_field(c, e, base, label, "command_line_contains",
			    &x->command_line_contains)) < 0 ||
	    (rc = get_field(c, e, base, label, "reason", &x->reason)) < 0 ||
	    (rc = parse_user(c, e, base, label, x)) < 0)
		return rc;
	if (!x->rule && !x->process_name && !x->executable_path && !x->has_uid && !x->parent_name &&
	    !x->command_line_contains)
		return fail(c, base, label,
			    "names nothing to match (give at least one of %sprocess_name, "
			    "executable_path, user, parent_name, command_line_contains)",
			    allow_rule ? "rule, " : "");
	if (!(x->label = strdup(label)) ||
	    !(x->origin = strdup(origin_of(c->origins, base, c->fallback, where, sizeof(where)))))
		return de_error_set(c->err, c->cat, ENOMEM, "out of memory");
	return 0;
}

int de_exceptions_parse(const json_t *list, const char *path, const json_t *origins,
			const char *fallback, const char *label, bool allow_rule,
			enum de_error_category cat, struct de_exception_set *out,
			struct de_error *err)
{
	struct pctx c = {origins, fallback, cat, err};
	struct de_exception *items;
	size_t n, i;
	int rc;

	if (!list || json_is_null(list))
		return 0;
	if (!json_is_array(list))
		return fail(&c, path, label, "must be a list of mappings");
	n = json_array_size(list);
	if (out->len + n > DE_EXCEPTIONS_MAX)
		return fail(&c, path, label, "too many exceptions (at most %d)", DE_EXCEPTIONS_MAX);
	if (!n)
		return 0;
	items = realloc(out->items, (out->len + n) * sizeof(*items));
	if (!items)
		return de_error_set(err, cat, ENOMEM, "out of memory");
	out->items = items;
	for (i = 0; i < n; i++) {
		struct de_exception x = {0};
		char base[512], lab[512];
		snprintf(base, sizeof(base), "%s[%zu]", path, i);
		snprintf(lab, sizeof(lab), "%s[%zu]", label, i);
		if ((rc = parse_one(&c, json_array_get(list, i), base, lab, allow_rule, &x)) < 0) {
			exception_clear(&x);
			return rc;
		}
		out->items[out->len++] = x;
	}
	return 0;
}

static bool glob_ok(const char *pat, const char *s)
{
	return !pat || (s && fnmatch(pat, s, 0) == 0);
}

static bool uid_ok(const struct de_exception *x, const char *user_id)
{
	char *end;
	unsigned long v;

	if (!x->has_uid)
		return true;
	if (!user_id || !isdigit((unsigned char)user_id[0]))
		return false;
	errno = 0;
	v = strtoul(user_id, &end, 10);
	return !*end && errno == 0 && v == x->uid;
}

const struct de_exception *de_exceptions_match(const struct de_exception_set *s,
					       const char *rule_id, const struct de_subject *p)
{
	for (size_t i = 0; s && i < s->len; i++) {
		const struct de_exception *x = &s->items[i];
		if (glob_ok(x->rule, rule_id) && glob_ok(x->process_name, p->name) &&
		    glob_ok(x->executable_path, p->executable_path) && uid_ok(x, p->user_id) &&
		    glob_ok(x->parent_name, p->parent_name) &&
		    (!x->command_line_contains ||
		     (p->command_line && strstr(p->command_line, x->command_line_contains))))
			return x;
	}
	return NULL;
}

void de_exception_set_clear(struct de_exception_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->len; i++)
		exception_clear(&s->items[i]);
	free(s->items);
	s->items = NULL;
	s->len = 0;
}
