/*
 * sigma.c — one Sigma rule to one daemoneye rule (see sigma.h): the YAML,
 * the metadata, and the rule file that `rules import --sigma` installs.
 * The detection itself is compiled by sigma_value.c, sigma_cond.c and
 * sigma_sql.c (sigma_int.h).
 *
 * The YAML is read with de_yaml_parse_text(): every scalar stays the text
 * it was written as (Sigma values are strings: 0777 is "0777", yes is
 * "yes"), only null is typed, and every node's FILE:LINE:COL is recorded
 * for messages.  Size (DE_SIGMA_MAX_FILE) and nesting (yaml.c) are capped.
 */
#include "daemoneye/sigma.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemoneye/rules.h"
#include "daemoneye/yaml.h"
#include "sigma_int.h"

/* ---- errors ----------------------------------------------------------------------- */

const char *sg_where(const struct sg_ctx *c, const char *path)
{
	char p[1024];

	snprintf(p, sizeof(p), "%s", path);
	for (;;) {
		const char *w = json_string_value(json_object_get(c->origins, p));
		char *dot = strrchr(p, '.'), *br = strrchr(p, '['), *at;
		if (w)
			return w;
		at = !dot ? br : !br ? dot : dot > br ? dot : br;
		if (!at)
			return c->origin;
		*at = '\0';
	}
}

int(sg_fail)(struct sg_ctx *c, const char *path, int code, const char *fmt, ...)
{
	char msg[DE_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->failed = true;
	return de_error_set(c->err, DE_ERR_VALIDATION, code, "%s: %s", sg_where(c, path), msg);
}

/* ---- metadata ---------------------------------------------------------------------- */

void de_sigma_rule_clear(struct de_sigma_rule *r)
{
	if (!r)
		return;
	de_rule_clear(&r->rule);
	free(r->sigma_id);
	free(r->title);
	free(r->status);
	free(r->level);
	free(r->author);
	free(r->license);
	for (size_t i = 0; i < r->references_len; i++)
		free(r->references[i]);
	free(r->references);
	memset(r, 0, sizeof(*r));
}

static const char *const status_names[DE_SIGMA_STATUS_MAX] = {"experimental", "test", "stable"};

int de_sigma_status_parse(const char *s, enum de_sigma_status *out, struct de_error *err)
{
	for (int i = 0; s && i < DE_SIGMA_STATUS_MAX; i++) {
		if (strcmp(s, status_names[i]) == 0) {
			*out = (enum de_sigma_status)i;
			return 0;
		}
	}
	return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
			    "unknown Sigma status '%s' (expected stable, test or experimental)",
			    s ? s : "(null)");
}

bool de_sigma_status_meets(const char *status, enum de_sigma_status min)
{
	enum de_sigma_status s = DE_SIGMA_EXPERIMENTAL;

	if (status)
		de_sigma_status_parse(status, &s, NULL);
	return s >= min;
}

/* A string member (NULL when absent); a refusal when it is not a string. */
static int meta_str(struct sg_ctx *c, const json_t *root, const char *key, bool required,
		    const char **out)
{
	const json_t *v = json_object_get(root, key);

	*out = NULL;
	if (!v || json_is_null(v)) {
		if (required)
			return sg_fail(c, "", EINVAL, "a Sigma rule needs '%s'", key);
		return 0;
	}
	if (!json_is_string(v) || json_string_length(v) == 0)
		return sg_fail(c, key, EINVAL, "'%s' must be a non-empty string", key);
	*out = json_string_value(v);
	return 0;
}

/* A list of strings (a lone string counts as a list of one); *n 0 when absent. */
static int meta_list(struct sg_ctx *c, const json_t *root, const char *key, const json_t **out,
		     size_t *n)
{
	const json_t *v = json_object_get(root, key);

	*out = v;
	*n = 0;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_string(v)) {
		*n = 1;
		return 0;
	}
	if (!json_is_array(v))
		return sg_fail(c, key, EINVAL, "'%s' must be a list of strings", key);
	for (size_t i = 0; i < json_array_size(v); i++) {
		if (!json_is_string(json_array_get(v, i))) {
			char p[64];
			snprintf(p, sizeof(p), "%s[%zu]", key, i);
			return sg_fail(c, p, EINVAL, "'%s' must be a list of strings", key);
		}
	}
	*n = json_array_size(v);
	return 0;
}

static const char *list_item(const json_t *v, size_t i)
{
	return json_is_string(v) ? json_string_value(v) : json_string_value(json_array_get(v, i));
}

/* Copy at most max bytes of s, cut on a UTF-8 boundary, "..." marking a cut. */
static char *dup_capped(const char *s, size_t max)
{
	size_t n = strlen(s);
	char *o;

	if (n <= max)
		return strdup(s);
	n = max - 3;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	if (!(o = malloc(n + 4)))
		return NULL;
	memcpy(o, s, n);
	memcpy(o + n, "...", 4);
	return o;
}

/* YYYY-MM-DD (or YYYY/MM/DD) as YYYYMMDD; 0 when not a date. */
static int32_t date_version(const char *s)
{
	unsigned v[3] = {0, 0, 0};
	static const size_t width[3] = {4, 2, 2};
	char sep = 0;

	if (!s)
		return 0;
	/* exactly four, two and two digits; one separator, the same twice; nothing after */
	for (size_t k = 0; k < 3; k++) {
		size_t i = 0;
		for (; i < width[k] && s[i] >= '0' && s[i] <= '9'; i++)
			v[k] = v[k] * 10 + (unsigned)(s[i] - '0');
		if (i != width[k])
			return 0;
		s += i;
		if (k == 2)
			break;
		if ((*s != '-' && *s != '/') || (sep && *s != sep))
			return 0;
		sep = *s++;
	}
	if (*s || v[0] < 1970 || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31)
		return 0;
	return (int32_t)(v[0] * 10000 + v[1] * 100 + v[2]);
}

/* A Sigma tag as a daemoneye tag: lower case, and only if rules.c would accept it. */
static char *tag_of(const char *t)
{
	size_t n = strlen(t);
	char *o;

	if (n == 0 || n > 64)
		return NULL;
	if (!(o = strdup(t)))
		return NULL;
	for (char *p = o; *p; p++) {
		if (!isgraph((unsigned char)*p)) {
			free(o);
			return NULL;
		}
		*p = (char)tolower((unsigned char)*p);
	}
	if (strncmp(o, "attack.t", 8) == 0 && isdigit((unsigned char)o[8])) {
		bool ok = n == 12 || n == 16;
		for (size_t i = 8; ok && i < n; i++)
			ok = i == 12 ? o[i] == '.' : isdigit((unsigned char)o[i]) != 0;
		if (!ok) {
			free(o);
			return NULL;
		}
	}
	return o;
}

/* ATT&CK tactic of a tag ("attack.defense-evasion" -> "defense_evasion"), or NULL. */
static char *tactic_of(const char *tag)
{
	char *o;

	if (strncasecmp(tag, "attack.", 7) != 0 || strlen(tag) > 7 + 60)
		return NULL;
	tag += 7;
	if (!isalpha((unsigned char)tag[0]) || isdigit((unsigned char)tag[1]) || strchr(tag, '.'))
		return NULL;
	if (!(o = strdup(tag)))
		return NULL;
	for (char *p = o; *p; p++)
		*p = *p == '-' ? '_' : (char)tolower((unsigned char)*p);
	return o;
}

static int add_tag(struct de_rule *r, char *t)
{
	char **nt;

	if (!t)
		return 0;
	for (size_t i = 0; i < r->tags_len; i++) {
		if (strcmp(r->tags[i], t) == 0) {
			free(t);
			return 0;
		}
	}
	if (r->tags_len >= 64) {
		free(t);
		return 0;
	}
	if (!(nt = realloc(r->tags, (r->tags_len + 2) * sizeof(*nt)))) {
		free(t);
		return -ENOMEM;
	}
	r->tags = nt;
	nt[r->tags_len++] = t;
	nt[r->tags_len] = NULL;
	return 0;
}

#define DESC_MAX ((size_t)4096) /* rules.c's limit on a description */

/*
 * The description: the rule's own, its false positives, its references and
 * the credit line.  The credit always fits; references go first when too
 * long, then false positives, then the description is cut.
 */
static char *describe(const char *desc, const json_t *fps, size_t nfp, const json_t *refs,
		      size_t nref, const char *credit)
{
	struct de_buf fp = DE_BUF_INIT(DESC_MAX), rf = DE_BUF_INIT(DESC_MAX);
	struct de_buf out = DE_BUF_INIT(4 * DESC_MAX);
	char *body = NULL, *res = NULL;
	size_t room;

	for (size_t i = 0; i < nfp; i++)
		de_buf_printf(&fp, "%s%s", i ? "; " : "False positives: ", list_item(fps, i));
	for (size_t i = 0; i < nref; i++)
		de_buf_printf(&rf, "%s%s", i ? " " : "References: ", list_item(refs, i));
	room = DESC_MAX - strlen(credit) - 8;
	size_t need = (desc ? strlen(desc) : 0) + fp.len + rf.len + 6;
	if (need > room)
		de_buf_free(&rf);
	need = (desc ? strlen(desc) : 0) + fp.len + rf.len + 6;
	if (need > room)
		de_buf_free(&fp);
	if (desc && (body = dup_capped(desc, room - fp.len - rf.len - 6))) {
		size_t bl = strlen(body);
		while (bl && isspace((unsigned char)body[bl - 1]))
			body[--bl] = '\0';
		de_buf_printf(&out, "%s\n\n", body);
	}
	if (fp.len)
		de_buf_printf(&out, "%s\n", fp.p);
	if (rf.len)
		de_buf_printf(&out, "%s\n", rf.p);
	de_buf_printf(&out, "%s", credit);
	free(body);
	de_buf_free(&fp);
	de_buf_free(&rf);
	res = de_buf_steal(&out);
	if (res && strlen(res) > DESC_MAX) { /* never: the parts were sized */
		free(res);
		res = NULL;
	}
	return res;
}

/* ---- the detection ---------------------------------------------------------------- */

static void mark_used(const struct sg_node *n, bool *used)
{
	if (n->op == SG_N_SEL)
		used[n->sel] = true;
	for (size_t i = 0; i < n->nkids; i++)
		mark_used(n->kids[i], used);
}

/* The detection's SQL into *sql. */
static int detection(struct sg_ctx *c, const json_t *det, char **sql)
{
	const json_t *cond, *v;
	const char *key, **names = NULL;
	char **sels = NULL;
	struct sg_facts *imps = NULL;
	bool *used = NULL;
	struct sg_node *root = NULL;
	size_t n = 0;
	int rc = 0;

	if (!json_is_object(det))
		return sg_fail(c, "detection", EINVAL,
			       "'detection' must be a mapping of search identifiers and a "
			       "condition");
	if (json_object_get(det, "timeframe"))
		return sg_fail(c, "detection.timeframe", ENOTSUP,
			       "timeframe: correlating events over time is not supported (a "
			       "daemoneye rule looks at one process at a time)");
	cond = json_object_get(det, "condition");
	if (!cond)
		return sg_fail(c, "detection", EINVAL, "the detection has no condition");
	names = calloc(json_object_size(det) + 1, sizeof(*names));
	if (!names)
		return sg_fail(c, "detection", ENOMEM, "out of memory");
	json_object_foreach ((json_t *)det, key, v)
		if (strcmp(key, "condition") != 0)
			names[n++] = key;
	if (n == 0) {
		rc = sg_fail(c, "detection", EINVAL, "the detection has no search identifier");
		goto out;
	}
	/* the condition, or a list of them (ORed) */
	if (json_is_string(cond)) {
		rc = sg_cond_parse(c, "detection.condition", json_string_value(cond), names, n,
				   &root);
	} else if (json_is_array(cond) && json_array_size(cond) > 0 &&
		   json_array_size(cond) <= 64) {
		if (!(root = calloc(1, sizeof(*root))) ||
		    !(root->kids = calloc(json_array_size(cond), sizeof(struct sg_node *)))) {
			rc = sg_fail(c, "detection", ENOMEM, "out of memory");
			goto out;
		}
		root->op = SG_N_OR;
		for (size_t i = 0; i < json_array_size(cond) && rc == 0; i++) {
			char p[64];
			snprintf(p, sizeof(p), "detection.condition[%zu]", i);
			if (!json_is_string(json_array_get(cond, i)))
				rc = sg_fail(c, p, EINVAL, "a condition must be a string");
			else if ((rc = sg_cond_parse(c, p,
						     json_string_value(json_array_get(cond, i)),
						     names, n, &root->kids[i])) == 0)
				root->nkids++;
		}
	} else {
		rc = sg_fail(c, "detection.condition", EINVAL,
			     "the condition must be a string (or a short list of them)");
	}
	if (rc < 0)
		goto out;
	if (!(used = calloc(n, sizeof(*used))) || !(sels = calloc(n, sizeof(*sels))) ||
	    !(imps = calloc(n, sizeof(*imps)))) {
		rc = sg_fail(c, "detection", ENOMEM, "out of memory");
		goto out;
	}
	mark_used(root, used);
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct de_buf b = DE_BUF_INIT(SG_MAX_SQL);
		if (!used[i])
			continue;
		if ((rc = sg_sql_selection(c, names[i], json_object_get(det, names[i]), &b,
					   &imps[i])) == 0 &&
		    !(sels[i] = de_buf_steal(&b)))
			rc = sg_fail(c, "detection", ENOMEM, "out of memory");
		de_buf_free(&b);
	}
	if (rc == 0)
		rc = sg_sql_query(c, root, sels, imps, n, sql);
out:
	for (size_t i = 0; sels && i < n; i++)
		free(sels[i]);
	for (size_t i = 0; imps && i < n; i++)
		sg_facts_clear(&imps[i]);
	free(imps);
	free(sels);
	free(used);
	free(names);
	sg_node_free(root);
	return rc;
}

/* ---- the rule --------------------------------------------------------------------- */

static int fill(struct sg_ctx *c, const json_t *root, const struct de_sigma_options *opts,
		struct de_sigma_rule *r)
{
	const char *id, *title, *status, *level, *desc, *license, *date, *modified;
	const json_t *tags, *fps, *refs, *ls, *authors;
	size_t ntags, nfp, nref, nauth;
	char credit[1024], *tactic = NULL;
	int rc;

	if (json_object_get(root, "correlation"))
		return sg_fail(c, "correlation", ENOTSUP,
			       "Sigma correlation rules are not supported (a daemoneye rule looks "
			       "at one process at a time)");
	if (json_object_get(root, "filter") && !json_object_get(root, "detection"))
		return sg_fail(c, "filter", ENOTSUP, "Sigma filters are not supported");
	if (json_object_get(root, "action"))
		return sg_fail(c, "action", ENOTSUP,
			       "rule collections ('action: global') are not supported: one rule "
			       "per file");
	if ((rc = meta_str(c, root, "title", true, &title)) < 0 ||
	    (rc = meta_str(c, root, "id", true, &id)) < 0 ||
	    (rc = meta_str(c, root, "status", false, &status)) < 0 ||
	    (rc = meta_str(c, root, "level", false, &level)) < 0 ||
	    (rc = meta_str(c, root, "description", false, &desc)) < 0 ||
	    (rc = meta_str(c, root, "license", false, &license)) < 0 ||
	    (rc = meta_str(c, root, "date", false, &date)) < 0 ||
	    (rc = meta_str(c, root, "modified", false, &modified)) < 0 ||
	    (rc = meta_list(c, root, "tags", &tags, &ntags)) < 0 ||
	    (rc = meta_list(c, root, "falsepositives", &fps, &nfp)) < 0 ||
	    (rc = meta_list(c, root, "references", &refs, &nref)) < 0 ||
	    (rc = meta_list(c, root, "author", &authors, &nauth)) < 0)
		return rc;
	const char *tax = json_string_value(json_object_get(root, "taxonomy"));
	if (tax && strcmp(tax, "sigma") != 0)
		return sg_fail(c, "taxonomy", ENOTSUP,
			       "taxonomy '%s': daemoneye maps Sigma's own field names only", tax);
	/* the id names the daemoneye rule: a UUID, or close to one */
	size_t idn = strlen(id);
	bool id_ok = idn <= 58 && isalnum((unsigned char)id[0]);
	for (size_t i = 0; id_ok && i < idn; i++)
		id_ok = isalnum((unsigned char)id[i]) || id[i] == '-';
	if (!id_ok)
		return sg_fail(c, "id", EINVAL,
			       "id '%s' cannot name a daemoneye rule (expected a UUID: letters, "
			       "digits and '-', at most 58)",
			       id);
	if (status && (!strcmp(status, "deprecated") || !strcmp(status, "unsupported")))
		return sg_fail(c, "status", ENOTSUP,
			       "status %s: the rule is %s; import its replacement instead", status,
			       !strcmp(status, "deprecated") ? "superseded" : "not meant to run");
	enum de_severity sev = DE_SEV_MEDIUM;
	if (level) {
		if (!strcmp(level, "informational") || !strcmp(level, "low"))
			sev = DE_SEV_LOW;
		else if (!strcmp(level, "medium"))
			sev = DE_SEV_MEDIUM;
		else if (!strcmp(level, "high"))
			sev = DE_SEV_HIGH;
		else if (!strcmp(level, "critical"))
			sev = DE_SEV_CRITICAL;
		else
			return sg_fail(c, "level", EINVAL,
				       "level '%s' (expected informational, low, medium, high or "
				       "critical)",
				       level);
	}
	ls = json_object_get(root, "logsource");
	if (!json_is_object(ls))
		return sg_fail(c, ls ? "logsource" : "", EINVAL,
			       "a Sigma rule needs a 'logsource' mapping");
	const char *lsf[3] = {NULL, NULL, NULL};
	static const char *const lsk[3] = {"product", "category", "service"};
	for (int i = 0; i < 3; i++) {
		const json_t *x = json_object_get(ls, lsk[i]);
		char p[32];
		snprintf(p, sizeof(p), "logsource.%s", lsk[i]);
		if (x && !json_is_null(x) && !json_is_string(x))
			return sg_fail(c, p, EINVAL, "'%s' must be a string", lsk[i]);
		lsf[i] = json_string_value(x);
	}
	if ((rc = sg_logsource_find(c, "logsource", lsf[0], lsf[1], lsf[2],
				    opts && opts->planned_logsources)) < 0)
		return rc;
	if (!json_object_get(root, "detection"))
		return sg_fail(c, "", EINVAL, "a Sigma rule needs 'detection'");
	if ((rc = detection(c, json_object_get(root, "detection"), &r->rule.sql_query)) < 0)
		return rc;

	/* metadata */
	struct de_buf au = DE_BUF_INIT((size_t)16 * 1024);
	for (size_t i = 0; i < nauth; i++)
		de_buf_printf(&au, "%s%s", i ? ", " : "", list_item(authors, i));
	r->author = au.len ? de_buf_steal(&au) : NULL;
	de_buf_free(&au);
	snprintf(credit, sizeof(credit), "Sigma rule %s%s%s%s%s%s.", id, r->author ? " by " : "",
		 r->author ? r->author : "", license ? " (license: " : "", license ? license : "",
		 license ? ")" : "");
	if (!(r->sigma_id = strdup(id)) || !(r->title = strdup(title)) ||
	    (status && !(r->status = strdup(status))) || (level && !(r->level = strdup(level))) ||
	    (license && !(r->license = strdup(license))) ||
	    asprintf(&r->rule.id, "sigma-%s", id) < 0)
		goto nomem;
	for (char *p = r->rule.id; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (nref && !(r->references = calloc(nref, sizeof(char *))))
		goto nomem;
	for (size_t i = 0; i < nref; i++, r->references_len++)
		if (!(r->references[i] = strdup(list_item(refs, i))))
			goto nomem;
	if (!(r->rule.name = dup_capped(title, 256)) ||
	    !(r->rule.description = describe(desc, fps, nfp, refs, nref, credit)) ||
	    (r->author && !(r->rule.author = dup_capped(r->author, 256))))
		goto nomem;
	r->rule.version = date_version(modified) ? date_version(modified) : date_version(date);
	if (r->rule.version <= 0)
		r->rule.version = 1;
	r->rule.enabled = true;
	r->rule.severity = sev;
	r->rule.source_type = DE_RULE_USER;
	if (!(r->rule.source_path = strdup(c->origin)))
		goto nomem;
	for (size_t i = 0; i < ntags; i++) {
		const char *t = list_item(tags, i);
		if (!tactic)
			tactic = tactic_of(t);
		if (add_tag(&r->rule, tag_of(t)) < 0)
			goto nomem;
	}
	char st[64];
	snprintf(st, sizeof(st), "sigma.status.%s", status ? status : "none");
	if (add_tag(&r->rule, tag_of(st)) < 0)
		goto nomem;
	if (level && !strcmp(level, "informational") &&
	    add_tag(&r->rule, strdup("sigma.level.informational")) < 0)
		goto nomem;
	r->rule.category = tactic ? tactic : strdup("sigma");
	tactic = NULL;
	if (!r->rule.category)
		goto nomem;
	return 0;
nomem:
	free(tactic);
	return sg_fail(c, "", ENOMEM, "out of memory");
}

int de_sigma_convert(const char *text, size_t len, const char *origin,
		     const struct de_sigma_options *opts, struct de_validator *v,
		     struct de_sigma_rule *out, struct de_error *err)
{
	json_t *origins = json_object(), *root = NULL;
	struct sg_ctx c = {.origin = origin, .err = err};
	struct de_sigma_rule r = {0};
	int rc;

	if (!origins)
		return de_error_set(err, DE_ERR_VALIDATION, ENOMEM, "out of memory");
	c.origins = origins;
	if (len > DE_SIGMA_MAX_FILE) {
		rc = de_error_set(err, DE_ERR_VALIDATION, EFBIG,
				  "%s: larger than %u bytes; not a Sigma rule", origin,
				  DE_SIGMA_MAX_FILE);
		goto out;
	}
	if ((rc = de_yaml_parse_text(text, len, origin, origins, DE_ERR_VALIDATION, &root, err)) <
	    0)
		goto out;
	if (!json_is_object(root)) {
		rc = de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				  "%s: not a Sigma rule (expected a mapping with title, id, "
				  "logsource, detection)",
				  origin);
		goto out;
	}
	if ((rc = fill(&c, root, opts, &r)) < 0)
		goto out;
	if (v) {
		struct de_error ve = {0};
		if (de_validator_validate_query(v, r.rule.sql_query, &ve) < 0) {
			rc = sg_fail(&c, "detection", ENOTSUP,
				     "the SQL it compiles to is refused by the sandbox: %s",
				     ve.message);
			goto out;
		}
	}
	*out = r;
	memset(&r, 0, sizeof(r));
	rc = 0;
out:
	de_sigma_rule_clear(&r);
	json_decref(root);
	json_decref(origins);
	return rc;
}

/* ---- the rule file ------------------------------------------------------------------ */

/* One comment line's text: control characters become spaces. */
static void comment(FILE *f, const char *prefix, const char *s)
{
	fputs(prefix, f);
	for (; s && *s; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s, f);
	fputc('\n', f);
}

int de_sigma_rule_file(const struct de_sigma_rule *r, char **text, size_t *len,
		       struct de_error *err)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	const struct de_rule *one = &r->rule;
	int rc;

	if (!f)
		return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	comment(f, "# Converted by daemoneye from the Sigma rule ", r->rule.source_path);
	comment(f, "# Sigma id: ", r->sigma_id);
	comment(f, "# Title: ", r->title);
	comment(f, "# Author: ", r->author ? r->author : "(none given)");
	comment(f, "# Status: ", r->status ? r->status : "(none given)");
	if (r->license)
		comment(f, "# License: ", r->license);
	for (size_t i = 0; i < r->references_len; i++)
		comment(f, "# Reference: ", r->references[i]);
	fputs("# Rules from the SigmaHQ repository are released under the Detection Rule\n"
	      "# License 1.1: whatever is derived from them keeps crediting their authors.\n",
	      f);
	rc = de_rules_write_yaml(f, &one, 1, err);
	if (fclose(f) != 0 && rc == 0)
		rc = de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	if (rc < 0) {
		free(buf);
		return rc;
	}
	*text = buf;
	*len = n;
	return 0;
}
