/*
 * rules.c — DetectionRule files (see rules.h).
 *
 * A file is parsed with de_yaml_parse(), which records where every node
 * was written; each rule is then checked field by field, so every problem
 * names FILE:LINE:COL of the offending key.  Checks: required fields and
 * their types, unknown keys, the id's spelling, ATT&CK tag spelling, the
 * SQL through the validator, dedupe_key_fields against the query's result
 * columns, and duplicate ids across everything loaded so far.
 */
#include "daemoneye/rules.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "daemoneye/exception.h"
#include "daemoneye/fileio.h"
#include "daemoneye/yaml.h"
#include "fields.h"

extern const char *const de_builtin_rules_yaml;
extern const size_t de_builtin_rules_yaml_len;

/* ---- sets and problems ------------------------------------------------------ */

void de_rule_set_clear(struct de_rule_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->len; i++) {
		de_rule_clear(&s->items[i]);
		free(s->origins[i]);
	}
	free(s->items);
	free(s->origins);
	memset(s, 0, sizeof(*s));
}

void de_rule_problems_clear(struct de_rule_problems *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->len; i++)
		free(p->items[i]);
	free(p->items);
	memset(p, 0, sizeof(*p));
}

struct de_rule *de_rule_set_find(const struct de_rule_set *s, const char *id)
{
	for (size_t i = 0; id && i < s->len; i++)
		if (strcmp(s->items[i].id, id) == 0)
			return &s->items[i];
	return NULL;
}

static int problem(struct de_rule_problems *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int problem(struct de_rule_problems *p, const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL, **n;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0 || !(n = realloc(p->items, (p->len + 1) * sizeof(char *)))) {
		free(r < 0 ? NULL : msg);
		return -ENOMEM;
	}
	p->items = n;
	p->items[p->len++] = msg;
	return 0;
}

/* Drop what was added to s and p after their first n entries. */
static void set_truncate(struct de_rule_set *s, size_t n)
{
	while (s->len > n) {
		s->len--;
		de_rule_clear(&s->items[s->len]);
		free(s->origins[s->len]);
	}
}

static void problems_truncate(struct de_rule_problems *p, size_t n)
{
	while (p->len > n)
		free(p->items[--p->len]);
}

/* Move *r into the set (zeroing *r). */
static int set_add(struct de_rule_set *s, struct de_rule *r, const char *origin)
{
	if (s->len == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 32;
		struct de_rule *ni = realloc(s->items, nc * sizeof(*ni));
		if (!ni)
			return -ENOMEM;
		s->items = ni;
		char **no = realloc(s->origins, nc * sizeof(*no));
		if (!no)
			return -ENOMEM;
		s->origins = no;
		s->cap = nc;
	}
	if (!(s->origins[s->len] = strdup(origin)))
		return -ENOMEM;
	s->items[s->len++] = *r;
	memset(r, 0, sizeof(*r));
	return 0;
}

/* ---- checking one rule --------------------------------------------------------- */

struct pctx {
	const char *origin;
	const json_t *origins; /* path -> "ORIGIN:LINE:COL" */
	struct de_rule_problems *problems;
	bool failed; /* this rule has a problem */
	bool nomem;
};

/* Where path was written, or the file name. */
static const char *where(const struct pctx *c, const char *path)
{
	const char *w = json_string_value(json_object_get(c->origins, path));
	return w ? w : c->origin;
}

static void bad(struct pctx *c, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void bad(struct pctx *c, const char *path, const char *fmt, ...)
{
	va_list ap;
	char msg[DE_ERROR_MSG_MAX];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (problem(c->problems, "%s: %s", where(c, path), msg) < 0)
		c->nomem = true;
	c->failed = true;
}

static bool valid_id(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64 || !isalnum((unsigned char)s[0]))
		return false;
	for (; *s; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '-' &&
		    *s != '_' && *s != '.')
			return false;
	return true;
}

/* attack.tNNNN or attack.tNNNN.NNN; other tags are free-form words */
static bool valid_tag(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (const char *p = s; *p; p++)
		if (!isgraph((unsigned char)*p))
			return false;
	if (strncmp(s, "attack.t", 8) != 0 || !isdigit((unsigned char)s[8]))
		return true;
	if (n != 12 && n != 16) /* "attack.t" + 4 digits [+ "." + 3 digits] */
		return false;
	for (size_t i = 8; i < n; i++)
		if (i == 12 ? s[i] != '.' : !isdigit((unsigned char)s[i]))
			return false;
	return true;
}

static char *get_str(struct pctx *c, const json_t *rule, const char *base, const char *key,
		     bool required, size_t max)
{
	const json_t *v = json_object_get(rule, key);
	char path[128];
	char *s;

	snprintf(path, sizeof(path), "%s%s%s", base, *base ? "." : "", key);
	if (!v || json_is_null(v)) {
		if (required)
			bad(c, *base ? base : key, "rule lacks the required field '%s'", key);
		return NULL;
	}
	if (!json_is_string(v) || (required && json_string_length(v) == 0)) {
		bad(c, path, "'%s' must be a non-empty string", key);
		return NULL;
	}
	if (json_string_length(v) > max || strlen(json_string_value(v)) != json_string_length(v)) {
		bad(c, path, "'%s' is longer than %zu bytes or holds a NUL", key, max);
		return NULL;
	}
	if (!(s = strdup(json_string_value(v))))
		c->nomem = true;
	return s;
}

static int get_strv(struct pctx *c, const json_t *rule, const char *base, const char *key,
		    char ***out, size_t *n, bool tags)
{
	const json_t *v = json_object_get(rule, key), *e;
	char path[128];
	size_t i;

	snprintf(path, sizeof(path), "%s%s%s", base, *base ? "." : "", key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_array(v) || json_array_size(v) > 64) {
		bad(c, path, "'%s' must be a list of at most 64 strings", key);
		return -1;
	}
	if (!(*out = calloc(json_array_size(v) + 1, sizeof(char *)))) {
		c->nomem = true;
		return -1;
	}
	json_array_foreach (v, i, e) {
		char ipath[160];
		snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
		if (!json_is_string(e) || json_string_length(e) == 0 ||
		    json_string_length(e) > 64 ||
		    strlen(json_string_value(e)) != json_string_length(e)) {
			bad(c, ipath, "'%s' entries must be short non-empty strings", key);
			return -1;
		}
		if (tags && !valid_tag(json_string_value(e))) {
			bad(c, ipath,
			    "tag '%s' is not a valid ATT&CK technique id (attack.tNNNN or "
			    "attack.tNNNN.NNN)",
			    json_string_value(e));
			return -1;
		}
		if (!((*out)[i] = strdup(json_string_value(e)))) {
			c->nomem = true;
			return -1;
		}
		(*n)++;
	}
	return 0;
}

static const char *const known_keys[] = {
	"id",	"name",	  "description", "version", "severity",		 "category",
	"tags", "author", "enabled",	 "sql",	    "dedupe_key_fields", "exceptions",
};

/* Check dedupe_key_fields against the columns the query returns. */
static void check_sql(struct pctx *c, struct de_validator *v, const char *base,
		      const struct de_rule *r)
{
	struct de_error e = {0};
	char path[128];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	snprintf(path, sizeof(path), "%s%ssql", base, *base ? "." : "");
	if (de_validator_open_db(v, NULL, &db, &e) < 0 ||
	    de_validator_prepare(v, db, r->sql_query, &st, &e) < 0) {
		if (e.code == ENOMEM) /* not the rule's fault: the load fails */
			c->nomem = true;
		else
			bad(c, path, "rule '%s': %s", r->id, e.message);
		goto out;
	}
	for (size_t i = 0; i < r->dedupe_key_fields_len; i++) {
		bool found = false;
		for (int k = 0; k < sqlite3_column_count(st); k++)
			found |= strcmp(sqlite3_column_name(st, k), r->dedupe_key_fields[i]) == 0;
		if (!found) {
			snprintf(path, sizeof(path), "%s%sdedupe_key_fields", base,
				 *base ? "." : "");
			bad(c, path,
			    "rule '%s': dedupe key field '%s' is not a column the query "
			    "returns",
			    r->id, r->dedupe_key_fields[i]);
			break;
		}
	}
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/*
 * The rule's own exceptions: checked as alerting.suppress entries are (no
 * `rule` field: they belong to this rule) and kept as JSON on the rule.
 */
static void get_exceptions(struct pctx *c, const json_t *j, const char *base, struct de_rule *r)
{
	const json_t *v = json_object_get(j, "exceptions");
	struct de_exception_set set = {0};
	struct de_error e = {0};
	char path[160], label[160];

	if (!v || json_is_null(v))
		return;
	snprintf(path, sizeof(path), "%s%sexceptions", base, *base ? "." : "");
	snprintf(label, sizeof(label), "rule %s exceptions", r->id ? r->id : "?");
	if (de_exceptions_parse(v, path, c->origins, c->origin, label, false, DE_ERR_VALIDATION,
				&set, &e) < 0) {
		if (e.code == ENOMEM || problem(c->problems, "%s", e.message) < 0)
			c->nomem = true;
		c->failed = true;
	} else if (!(r->exceptions = json_deep_copy(v))) {
		c->nomem = true;
	}
	de_exception_set_clear(&set);
}

/* Build a rule from one JSON object; on any problem c->failed is set. */
static void parse_rule(struct pctx *c, const json_t *j, const char *base, enum de_rule_source src,
		       int64_t mtime_ms, struct de_validator *v, struct de_rule *r)
{
	const char *k;
	const json_t *val;

	if (!json_is_object(j)) {
		bad(c, base, "a rule must be a mapping (id:, name:, sql:, ...)");
		return;
	}
	json_object_foreach ((json_t *)j, k, val) {
		bool known = false;
		for (size_t i = 0; i < sizeof(known_keys) / sizeof(known_keys[0]); i++)
			known |= strcmp(k, known_keys[i]) == 0;
		if (!known) {
			char path[160];
			snprintf(path, sizeof(path), "%s%s%s", base, *base ? "." : "", k);
			bad(c, path, "unknown rule field '%s'", k);
		}
	}
	r->id = get_str(c, j, base, "id", true, 64);
	if (r->id && !valid_id(r->id)) {
		char path[128];
		snprintf(path, sizeof(path), "%s%sid", base, *base ? "." : "");
		bad(c, path, "rule id '%s' must be 1-64 of a-z 0-9 . _ - starting alphanumeric",
		    r->id);
	}
	r->name = get_str(c, j, base, "name", true, 256);
	r->description = get_str(c, j, base, "description", false, 4096);
	r->category = get_str(c, j, base, "category", false, 64);
	r->author = get_str(c, j, base, "author", false, 256);
	r->sql_query = get_str(c, j, base, "sql", true, DE_VALIDATOR_MAX_SQL);
	char *sev = get_str(c, j, base, "severity", true, 16);
	if (sev && de_severity_parse(sev, &r->severity, NULL) < 0) {
		char path[128];
		snprintf(path, sizeof(path), "%s%sseverity", base, *base ? "." : "");
		bad(c, path, "severity '%s' must be low, medium, high or critical", sev);
	}
	free(sev);
	val = json_object_get(j, "version");
	r->version = 1;
	if (val && !json_is_null(val)) {
		if (!json_is_integer(val) || json_integer_value(val) < 1 ||
		    json_integer_value(val) > INT32_MAX) {
			char path[128];
			snprintf(path, sizeof(path), "%s%sversion", base, *base ? "." : "");
			bad(c, path, "version must be a positive integer");
		} else {
			r->version = (int32_t)json_integer_value(val);
		}
	}
	val = json_object_get(j, "enabled");
	r->enabled = true;
	if (val && !json_is_null(val)) {
		if (!json_is_boolean(val)) {
			char path[128];
			snprintf(path, sizeof(path), "%s%senabled", base, *base ? "." : "");
			bad(c, path, "enabled must be true or false");
		} else {
			r->enabled = json_is_true(val);
		}
	}
	get_strv(c, j, base, "tags", &r->tags, &r->tags_len, true);
	get_strv(c, j, base, "dedupe_key_fields", &r->dedupe_key_fields, &r->dedupe_key_fields_len,
		 false);
	get_exceptions(c, j, base, r);
	r->created_at = r->updated_at = mtime_ms;
	r->source_type = src;
	if (src != DE_RULE_BUILTIN && !(r->source_path = strdup(c->origin)))
		c->nomem = true;
	if (!c->failed && !c->nomem && v)
		check_sql(c, v, base, r);
}

int de_rules_parse(const char *text, size_t len, const char *origin, enum de_rule_source src,
		   int64_t mtime_ms, struct de_validator *v, struct de_rule_set *set,
		   struct de_rule_problems *problems, struct de_error *err)
{
	json_t *origins = json_object(), *root = NULL;
	const json_t *list;
	const char *prefix;
	size_t set0 = set->len, problems0 = problems->len;
	int rc;

	if (!origins)
		return de_error_set(err, DE_ERR_VALIDATION, ENOMEM, "out of memory");
	if ((rc = de_yaml_parse(text, len, origin, origins, DE_ERR_VALIDATION, &root, err)) < 0)
		goto out;
	/* three shapes: one rule, a list of rules, or {rules: [...]} */
	if (json_is_object(root) && json_object_get(root, "rules") && json_object_size(root) == 1) {
		list = json_object_get(root, "rules");
		prefix = "rules";
	} else {
		list = root;
		prefix = "";
	}
	if (json_is_null(root) || (!json_is_array(list) && !json_is_object(list))) {
		rc = de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				  "%s: expected a rule (id:, name:, sql:, ...), a list of rules or "
				  "'rules:' with a list",
				  origin);
		goto out;
	}
	size_t n = json_is_array(list) ? json_array_size(list) : 1;
	for (size_t i = 0; i < n; i++) {
		struct pctx c = {.origin = origin, .origins = origins, .problems = problems};
		struct de_rule r = {0};
		char base[64];
		const json_t *j = json_is_array(list) ? json_array_get(list, i) : list;

		if (json_is_array(list))
			snprintf(base, sizeof(base), "%s[%zu]", prefix, i);
		else
			base[0] = '\0';
		parse_rule(&c, j, base, src, mtime_ms, v, &r);
		if (!c.failed && !c.nomem) {
			char idpath[96];
			snprintf(idpath, sizeof(idpath), "%s%sid", base, *base ? "." : "");
			struct de_rule *dup = de_rule_set_find(set, r.id);
			if (dup) {
				size_t d = (size_t)(dup - set->items);
				bad(&c, idpath, "duplicate rule id '%s' (already defined at %s)",
				    r.id, set->origins[d]);
			} else if (set->len >= DE_RULES_MAX_RULES) {
				bad(&c, idpath, "too many rules (at most %d)", DE_RULES_MAX_RULES);
			} else if (set_add(set, &r, where(&c, idpath)) < 0) {
				c.nomem = true;
			}
		}
		de_rule_clear(&r);
		if (c.nomem) {
			rc = de_error_set(err, DE_ERR_VALIDATION, ENOMEM, "out of memory");
			goto out;
		}
	}
	rc = 0;
out:
	if (rc < 0) { /* all of the file or none of it */
		set_truncate(set, set0);
		problems_truncate(problems, problems0);
	}
	json_decref(root);
	json_decref(origins);
	return rc;
}

/* ---- sources ------------------------------------------------------------------ */

int de_rules_load_builtin(struct de_validator *v, struct de_rule_set *set,
			  struct de_rule_problems *problems, struct de_error *err)
{
	/* builtins have no file of their own: created_at = updated_at = 0
	 * (a build time would make builds irreproducible) */
	return de_rules_parse(de_builtin_rules_yaml, de_builtin_rules_yaml_len,
			      "builtin:rules/builtin.yaml", DE_RULE_BUILTIN, 0, v, set, problems,
			      err);
}

/* A rule file's text and modification time, with errors that name it. */
static int read_file(const char *path, size_t max, char **out, size_t *len, int64_t *mtime_ms,
		     struct de_error *err)
{
	struct stat st;
	int rc = de_read_file(path, max, out, len, &st);

	if (rc == -EISDIR)
		return de_error_set(err, DE_ERR_IO, EISDIR, "rule file %s is not a regular file",
				    path);
	if (rc == -EFBIG)
		return de_error_set(err, DE_ERR_VALIDATION, EFBIG,
				    "rule file %s is larger than %zu bytes", path, max);
	if (rc < 0)
		return de_error_set(err, DE_ERR_IO, -rc, "cannot read rule file %s: %s", path,
				    strerror(-rc));
	*mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
	return 0;
}

int de_rules_load_file(const char *path, enum de_rule_source src, struct de_validator *v,
		       struct de_rule_set *set, struct de_rule_problems *problems,
		       struct de_error *err)
{
	char *text = NULL;
	size_t len;
	int64_t mtime;
	int rc;

	if ((rc = read_file(path, DE_RULES_MAX_FILE, &text, &len, &mtime, err)) < 0)
		return rc;
	rc = de_rules_parse(text, len, path, src, mtime, v, set, problems, err);
	free(text);
	return rc;
}

static int yaml_name(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	if (d->d_name[0] == '.')
		return 0;
	return (n > 5 && strcmp(d->d_name + n - 5, ".yaml") == 0) ||
	       (n > 4 && strcmp(d->d_name + n - 4, ".yml") == 0);
}

int de_rules_load_dir(const char *dir, enum de_rule_source src, struct de_validator *v,
		      struct de_rule_set *set, struct de_rule_problems *problems,
		      struct de_error *err)
{
	struct dirent **names = NULL;
	size_t set0 = set->len, problems0 = problems->len;
	int n = scandir(dir, &names, yaml_name, alphasort), rc = 0;

	if (n < 0) {
		if (errno == ENOENT)
			return 0;
		return de_error_set(err, DE_ERR_IO, errno, "cannot read rules directory %s: %s",
				    dir, strerror(errno));
	}
	for (int i = 0; i < n; i++) {
		char *path = NULL;
		struct de_error fe = {0};
		if (rc == 0 && asprintf(&path, "%s/%s", dir, names[i]->d_name) < 0)
			rc = de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
		/* a file that fails whole is a problem; running out of memory
		   (or of room for the problem) fails the load */
		if (rc == 0 && de_rules_load_file(path, src, v, set, problems, &fe) < 0 &&
		    (fe.code == ENOMEM || problem(problems, "%s", fe.message) < 0))
			rc = de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
		free(path);
		free(names[i]);
	}
	free(names);
	if (rc < 0) {
		set_truncate(set, set0);
		problems_truncate(problems, problems0);
	}
	return rc;
}

/* ---- enable/disable overrides ----------------------------------------------------- */

static int state_read(const char *path, json_t **out, struct de_error *err)
{
	char *text = NULL;
	size_t len;
	int64_t mtime;
	struct de_error fe = {0};
	json_error_t je;
	json_t *j = NULL;
	int rc;

	if ((rc = read_file(path, 1u << 20, &text, &len, &mtime, &fe)) < 0) {
		if (fe.code != ENOENT) {
			if (err)
				*err = fe;
			return rc;
		}
		if (!(j = json_object())) /* no file yet: no overrides */
			return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
		*out = j;
		return 0;
	}
	rc = de_json_loadb(text, len, 0, &j, &je);
	free(text);
	if (rc == -ENOMEM)
		return de_error_set(err, DE_ERR_IO, ENOMEM, "%s: out of memory", path);
	if (!json_is_object(j) ||
	    (json_object_get(j, "enabled") && !json_is_object(json_object_get(j, "enabled")))) {
		json_decref(j);
		return de_error_set(err, DE_ERR_CONFIGURATION, EINVAL,
				    "%s:%d: not a rule state file ({\"enabled\": {\"ID\": bool}})",
				    path, je.line);
	}
	*out = j;
	return 0;
}

int de_rules_state_apply(const char *path, struct de_rule_set *set, struct de_error *err)
{
	json_t *j, *v;
	const char *id;
	int rc;

	if ((rc = state_read(path, &j, err)) < 0)
		return rc;
	json_object_foreach (json_object_get(j, "enabled"), id, v) {
		struct de_rule *r = de_rule_set_find(set, id);
		if (r && json_is_boolean(v))
			r->enabled = json_is_true(v);
	}
	json_decref(j);
	return 0;
}

int de_rules_state_set(const char *path, const char *id, bool enabled, struct de_error *err)
{
	json_t *j, *en;
	char *tmp = NULL;
	int rc, fd = -1;

	if ((rc = state_read(path, &j, err)) < 0)
		return rc;
	en = json_object_get(j, "enabled");
	if (!en && json_object_set_new(j, "enabled", json_object()) == 0)
		en = json_object_get(j, "enabled"); /* (a failed set frees the new object) */
	if (!en || json_object_set_new(en, id, json_boolean(enabled)) < 0 ||
	    asprintf(&tmp, "%s.tmp", path) < 0) {
		tmp = NULL;
		rc = de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0 || json_dumpfd(j, fd, JSON_INDENT(2) | JSON_SORT_KEYS) < 0 ||
	    write(fd, "\n", 1) != 1 || fsync(fd) < 0 || close(fd) < 0) {
		rc = de_error_set(err, DE_ERR_IO, errno ? errno : EIO, "cannot write %s: %s", tmp,
				  strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		goto out;
	}
	if (rename(tmp, path) < 0) {
		rc = de_error_set(err, DE_ERR_IO, errno, "cannot replace %s: %s", path,
				  strerror(errno));
		unlink(tmp);
		goto out;
	}
	rc = 0;
out:
	free(tmp);
	json_decref(j);
	return rc;
}

/* ---- the configured set ---------------------------------------------------------- */

int de_rules_paths(const struct de_config *c, char **user_dir, char **state_file,
		   struct de_error *err)
{
	char *state = NULL, *u, *f;
	int rc;

	if ((rc = de_config_state_dir(c, &state, err)) < 0)
		return rc;
	if (asprintf(&u, "%s/rules.d", state) < 0) {
		rc = de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	} else if (asprintf(&f, "%s/rules-state.json", state) < 0) {
		free(u);
		rc = de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	} else {
		*user_dir = u;
		*state_file = f;
	}
	free(state);
	return rc;
}

int de_rules_load_config(const struct de_config *c, struct de_validator *v, struct de_rule_set *set,
			 struct de_rule_problems *problems, struct de_error *err)
{
	const char **dirs;
	char *user = NULL, *state = NULL;
	size_t n, set0 = set->len, problems0 = problems->len;
	bool builtin;
	int rc;

	if ((rc = de_config_get_bool(c, "detection.builtin_rules", &builtin, err)) < 0 ||
	    (rc = de_config_get_str_list(c, "detection.rules_dirs", &dirs, &n, err)) < 0)
		return rc;
	if (builtin && (rc = de_rules_load_builtin(v, set, problems, err)) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		char *dir = NULL;
		if ((rc = de_expand_home(dirs[i], &dir, err)) < 0)
			goto out;
		rc = de_rules_load_dir(dir, DE_RULE_FILE, v, set, problems, err);
		free(dir);
		if (rc < 0)
			goto out;
	}
	if ((rc = de_rules_paths(c, &user, &state, err)) < 0 ||
	    (rc = de_rules_load_dir(user, DE_RULE_USER, v, set, problems, err)) < 0 ||
	    (rc = de_rules_state_apply(state, set, err)) < 0)
		goto out;
out:
	if (rc < 0) {
		set_truncate(set, set0);
		problems_truncate(problems, problems0);
	}
	free(dirs);
	free(user);
	free(state);
	return rc;
}

/* ---- export --------------------------------------------------------------------- */

/*
 * Emit the event that its yaml_*_event_initialize() call made; `made` is
 * that call's result, 0 when it could not copy its strings (ENOMEM).  0,
 * -ENOMEM, or -EIO when the emitter failed (em->error says why).
 */
static int emit(yaml_emitter_t *em, yaml_event_t *ev, int made)
{
	if (!made)
		return -ENOMEM;
	return yaml_emitter_emit(em, ev) ? 0 : -EIO;
}

static int emit_scalar(yaml_emitter_t *em, const char *s, yaml_scalar_style_t style)
{
	yaml_event_t ev;

	return emit(em, &ev,
		    yaml_scalar_event_initialize(&ev, NULL, (yaml_char_t *)YAML_STR_TAG,
						 (yaml_char_t *)s, (int)strlen(s), 1, 1, style));
}

/* key: value, a plain scalar typed by YAML (numbers, booleans) */
static int emit_typed(yaml_emitter_t *em, const char *k, const char *v)
{
	yaml_event_t ev;
	int rc = emit_scalar(em, k, YAML_PLAIN_SCALAR_STYLE);

	if (rc < 0)
		return rc;
	return emit(em, &ev,
		    yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)v, (int)strlen(v),
						 1, 0, YAML_PLAIN_SCALAR_STYLE));
}

static int emit_kv(yaml_emitter_t *em, const char *k, const char *v, yaml_scalar_style_t style)
{
	int rc;

	if (!v)
		return 0;
	if ((rc = emit_scalar(em, k, YAML_PLAIN_SCALAR_STYLE)) < 0)
		return rc;
	return emit_scalar(em, v, style);
}

static int emit_list(yaml_emitter_t *em, const char *k, char **v, size_t n)
{
	yaml_event_t ev;
	int rc;

	if (!n)
		return 0;
	if ((rc = emit_scalar(em, k, YAML_PLAIN_SCALAR_STYLE)) < 0 ||
	    (rc = emit(em, &ev,
		       yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
							    YAML_FLOW_SEQUENCE_STYLE))) < 0)
		return rc;
	for (size_t i = 0; i < n; i++)
		if ((rc = emit_scalar(em, v[i], YAML_ANY_SCALAR_STYLE)) < 0)
			return rc;
	return emit(em, &ev, yaml_sequence_end_event_initialize(&ev));
}

/* exceptions: a list of flow mappings of string fields */
static int emit_exceptions(yaml_emitter_t *em, const json_t *list)
{
	yaml_event_t ev;
	size_t i;
	const json_t *x;
	int rc;

	if (!json_array_size(list))
		return 0;
	if ((rc = emit_scalar(em, "exceptions", YAML_PLAIN_SCALAR_STYLE)) < 0 ||
	    (rc = emit(em, &ev,
		       yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
							    YAML_BLOCK_SEQUENCE_STYLE))) < 0)
		return rc;
	json_array_foreach (list, i, x) {
		const char *k;
		const json_t *v;
		if ((rc = emit(em, &ev,
			       yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
								   YAML_FLOW_MAPPING_STYLE))) < 0)
			return rc;
		json_object_foreach ((json_t *)x, k, v)
			if (json_is_string(v) &&
			    (rc = emit_kv(em, k, json_string_value(v),
					  YAML_DOUBLE_QUOTED_SCALAR_STYLE)) < 0)
				return rc;
		if ((rc = emit(em, &ev, yaml_mapping_end_event_initialize(&ev))) < 0)
			return rc;
	}
	return emit(em, &ev, yaml_sequence_end_event_initialize(&ev));
}

static int write_handler(void *data, unsigned char *buf, size_t size)
{
	return fwrite(buf, 1, size, (FILE *)data) == size;
}

int de_rules_write_yaml(FILE *f, const struct de_rule *const *rules, size_t n, struct de_error *err)
{
	yaml_emitter_t em;
	yaml_event_t ev;
	int rc;
	char num[32];

	if (!yaml_emitter_initialize(&em))
		return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	yaml_emitter_set_output(&em, write_handler, f);
	yaml_emitter_set_unicode(&em, 1);
	yaml_emitter_set_width(&em, 100);
	if ((rc = emit(&em, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING))) <
		    0 ||
	    (rc = emit(&em, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1))) <
		    0 ||
	    (rc = emit(&em, &ev,
		       yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
							   YAML_BLOCK_MAPPING_STYLE))) < 0 ||
	    (rc = emit_scalar(&em, "rules", YAML_PLAIN_SCALAR_STYLE)) < 0 ||
	    (rc = emit(&em, &ev,
		       yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
							    YAML_BLOCK_SEQUENCE_STYLE))) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const struct de_rule *r = rules[i];
		snprintf(num, sizeof(num), "%d", (int)r->version);
		if ((rc = emit(&em, &ev,
			       yaml_mapping_start_event_initialize(
				       &ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE))) < 0 ||
		    (rc = emit_kv(&em, "id", r->id, YAML_ANY_SCALAR_STYLE)) < 0 ||
		    (rc = emit_kv(&em, "name", r->name, YAML_ANY_SCALAR_STYLE)) < 0 ||
		    (rc = emit_kv(&em, "description", r->description, YAML_ANY_SCALAR_STYLE)) < 0 ||
		    (rc = emit_typed(&em, "version", num)) < 0 ||
		    (rc = emit_kv(&em, "severity", de_severity_name(r->severity),
				  YAML_PLAIN_SCALAR_STYLE)) < 0 ||
		    (rc = emit_kv(&em, "category", r->category, YAML_ANY_SCALAR_STYLE)) < 0 ||
		    (rc = emit_list(&em, "tags", r->tags, r->tags_len)) < 0 ||
		    (rc = emit_kv(&em, "author", r->author, YAML_ANY_SCALAR_STYLE)) < 0 ||
		    (rc = emit_typed(&em, "enabled", r->enabled ? "true" : "false")) < 0 ||
		    (rc = emit_list(&em, "dedupe_key_fields", r->dedupe_key_fields,
				    r->dedupe_key_fields_len)) < 0 ||
		    (rc = emit_exceptions(&em, r->exceptions)) < 0 ||
		    (rc = emit_kv(&em, "sql", r->sql_query, YAML_LITERAL_SCALAR_STYLE)) < 0 ||
		    (rc = emit(&em, &ev, yaml_mapping_end_event_initialize(&ev))) < 0)
			goto out;
	}
	if ((rc = emit(&em, &ev, yaml_sequence_end_event_initialize(&ev))) < 0 ||
	    (rc = emit(&em, &ev, yaml_mapping_end_event_initialize(&ev))) < 0 ||
	    (rc = emit(&em, &ev, yaml_document_end_event_initialize(&ev, 1))) < 0)
		goto out;
	rc = emit(&em, &ev, yaml_stream_end_event_initialize(&ev));
out:
	if (rc == -ENOMEM || (rc < 0 && em.error == YAML_MEMORY_ERROR))
		rc = de_error_set(err, DE_ERR_IO, ENOMEM,
				  "cannot write rules as YAML: out of memory");
	else if (rc < 0)
		rc = de_error_set(err, DE_ERR_IO, EIO, "cannot write rules as YAML: %s",
				  em.problem ? em.problem : strerror(errno));
	yaml_emitter_delete(&em);
	return rc;
}
