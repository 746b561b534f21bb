/*
 * sigma_field.c — one Sigma field test as SQL (see sigma_int.h, sigma.h):
 * the logsources and their field maps, the modifiers, the values.
 *
 * The logsources and their field maps are the tables below: a field that
 * daemoneye will have later is one entry whose column is NULL and whose
 * reason says what is missing; giving it a column enables it.
 *
 * Matching is over bytes, exactly (docs/sigma.md):
 *   - case-insensitive (the default) folds ASCII letters only, as PCRE2's
 *     (?i) without UTF does;
 *   - `*` is any run of bytes; `?` is one character: a whole valid UTF-8
 *     sequence, else one byte.
 * A field test is `col = 'v'` (one exact value matched with case),
 * `col IS NULL` / `IS NOT NULL` (null, exists, a value of stars only), a
 * number comparison, or one regexp() call (regexp.h) for all its values
 * together, written here: bytes escaped (\xHH outside printable ASCII),
 * anchored with \A and \z, a value's fixed parts between its stars placed
 * by lazy atomic gaps (the leftmost place is the right one for parts of
 * fixed length, so no backtracking), and, when the value has a `?`, gaps
 * that consume whole characters, so that every part starts on a character
 * boundary.  regexp() matches exactly this form without PCRE2, in one pass
 * (regexp_set.c), which made it faster than LIKE or instr().
 *
 * Values are SQL string literals with quotes doubled (control characters
 * as CAST(x'..' AS TEXT)), never text pasted into SQL.  A field absent from
 * a process is NULL; tests on NULL are NULL, and `not` is written
 * `(x) IS NOT TRUE`, so that NULL counts as "no match" under negation too.
 *
 */
#include "sigma_int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemoneye/regexp.h"

/* ---- logsources and field maps ------------------------------------------------------ */

#define PE_RESOURCE                                                                                \
	"it is read from PE version resources, which Linux (ELF) executables do not have"

/*
 * linux/process_creation: one row of the processes snapshot per process,
 * its parent LEFT JOINed by ppid (a pid reused since would be a stranger:
 * the parent's row is the process now holding that pid, as with builtin
 * rules; NULL columns when there is none).
 */
static const struct sg_field process_fields[] = {
	{"ProcessId", "c.pid", SG_F_INT, false, 0, NULL},
	{"ParentProcessId", "c.ppid", SG_F_INT, false, 0, NULL},
	{"Image", "c.executable_path", SG_F_TEXT, false, 10, NULL},
	{"CommandLine", "c.command_line", SG_F_TEXT, false, 20, NULL},
	{"ParentImage", "p.executable_path", SG_F_TEXT, true, 15, NULL},
	{"ParentCommandLine", "p.command_line", SG_F_TEXT, true, 25, NULL},
	/* the effective user's name (NULL when the uid has none), the cwd */
	{"User", "c.user_name", SG_F_TEXT, false, 10, NULL},
	{"ParentUser", "p.user_name", SG_F_TEXT, true, 15, NULL},
	{"CurrentDirectory", "c.cwd", SG_F_TEXT, false, 10, NULL},
	/* without a Linux meaning */
	{"LogonId", NULL, SG_F_TEXT, false, 0,
	 "it is a Windows logon session id, which has no Linux meaning"},
	{"LogonGuid", NULL, SG_F_TEXT, false, 0,
	 "it is a Windows logon session GUID, which has no Linux meaning"},
	{"TerminalSessionId", NULL, SG_F_TEXT, false, 0,
	 "it is a Windows terminal session id, which has no Linux meaning"},
	{"IntegrityLevel", NULL, SG_F_TEXT, false, 0,
	 "Windows integrity levels have no Linux meaning"},
	{"ProcessGuid", NULL, SG_F_TEXT, false, 0,
	 "Sysmon's process GUIDs are not kept: daemoneye names a process by pid and start time"},
	{"ParentProcessGuid", NULL, SG_F_TEXT, false, 0,
	 "Sysmon's process GUIDs are not kept: daemoneye names a process by pid and start time"},
	{"Hashes", NULL, SG_F_TEXT, false, 0,
	 "Sysmon's hash list ('SHA256=...,MD5=...') is not kept: daemoneye stores the SHA-256 "
	 "alone (processes.executable_hash)"},
	{"OriginalFileName", NULL, SG_F_TEXT, false, 0, PE_RESOURCE},
	{"Product", NULL, SG_F_TEXT, false, 0, PE_RESOURCE},
	{"Company", NULL, SG_F_TEXT, false, 0, PE_RESOURCE},
	{"Description", NULL, SG_F_TEXT, false, 0, PE_RESOURCE},
	{"FileVersion", NULL, SG_F_TEXT, false, 0, PE_RESOURCE},
};

/*
 * linux/network_connection: one row per TCP connection a process made
 * (connect) or took (accept) and still holds as far as daemoneye knows
 * (network_connections, the eBPF sensor's and the full scans'), joined to
 * its process instance in the snapshot; listeners are not connections.
 */
static const struct sg_field network_fields[] = {
	{"ProcessId", "n.pid", SG_F_INT, false, 0, NULL},
	{"DestinationPort", "n.remote_port", SG_F_INT, false, 0, NULL},
	{"SourcePort", "n.local_port", SG_F_INT, false, 0, NULL},
	{"DestinationIp", "n.remote_address", SG_F_ADDR, false, 5, NULL},
	{"SourceIp", "n.local_address", SG_F_ADDR, false, 5, NULL},
	/* Sysmon's 'true' for a connection the process opened, 'false' for one
	   it accepted */
	{"Initiated", "(CASE n.kind WHEN 'connect' THEN 'true' ELSE 'false' END)", SG_F_TEXT, false,
	 5, NULL},
	{"Protocol", "'tcp'", SG_F_TEXT, false, 0, NULL},
	{"Image", "c.executable_path", SG_F_TEXT, false, 10, NULL},
	{"CommandLine", "c.command_line", SG_F_TEXT, false, 20, NULL},
	{"User", "c.user_name", SG_F_TEXT, false, 10, NULL},
	{"DestinationHostname", NULL, SG_F_TEXT, false, 0,
	 "daemoneye records addresses, not the host names a process resolved"},
	{"SourceHostname", NULL, SG_F_TEXT, false, 0,
	 "daemoneye records addresses, not host names"},
	{"DestinationIsIpv6", NULL, SG_F_TEXT, false, 0,
	 "not mapped: test DestinationIp with cidr instead"},
	{"SourceIsIpv6", NULL, SG_F_TEXT, false, 0, "not mapped: test SourceIp with cidr instead"},
};

#define NF(a) (sizeof(a) / sizeof((a)[0]))

static const struct sg_logsource logsources[] = {
	{"linux", "process_creation", NULL,
	 "c.pid, c.ppid, c.name, c.executable_path, c.command_line, c.user_id",
	 ",\n       p.executable_path AS parent_executable_path, p.command_line AS "
	 "parent_command_line",
	 "processes c", "LEFT JOIN processes p ON p.pid = c.ppid", NULL, process_fields,
	 NF(process_fields)},
	{"linux", "network_connection", NULL,
	 "n.pid AS pid, c.ppid, c.name, c.executable_path, c.command_line, c.user_id, "
	 "n.remote_address, n.remote_port",
	 "",
	 "network_connections n\n  JOIN processes c ON c.pid = n.pid AND c.start_time = "
	 "n.start_time",
	 "", "n.kind IN ('connect', 'accept') AND n.closed_at IS NULL", network_fields,
	 NF(network_fields)},
};

int sg_logsource_find(struct sg_ctx *c, const char *path, const char *product, const char *category,
		      const char *service, bool planned)
{
	if (service)
		return sg_fail(c, path, ENOTSUP,
			       "logsource service '%s': daemoneye reads processes, not service "
			       "logs (supported: linux/process_creation, linux/network_connection)",
			       service);
	if (product && strcmp(product, "linux") != 0)
		return sg_fail(c, path, ENOTSUP,
			       "logsource product '%s': daemoneye watches Linux processes "
			       "(supported: linux/process_creation, linux/network_connection)",
			       product);
	for (size_t i = 0; category && i < NF(logsources); i++) {
		const struct sg_logsource *l = &logsources[i];
		if (strcmp(l->category, category) != 0)
			continue;
		if (l->unavailable && !planned)
			return sg_fail(c, path, ENOTSUP, "logsource linux/%s: %s", category,
				       l->unavailable);
		c->ls = l;
		return 0;
	}
	return sg_fail(c, path, ENOTSUP,
		       "logsource category '%s': daemoneye has no relation for it (supported: "
		       "linux/process_creation, linux/network_connection)",
		       category ? category : "(none)");
}

static const struct sg_field *field_find(const struct sg_logsource *l, const char *name)
{
	for (size_t i = 0; i < l->nfields; i++)
		if (strcmp(l->fields[i].sigma, name) == 0)
			return &l->fields[i];
	return NULL;
}

/* ---- SQL text --------------------------------------------------------------------- */

/* An SQL string literal of the n bytes at s. */
static int put_sql_str(struct de_buf *b, const unsigned char *s, size_t n)
{
	bool plain = true;
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		plain &= s[i] >= 0x20 && s[i] != 0x7f;
	if (!plain) {
		rc = de_buf_puts(b, "CAST(x'");
		for (size_t i = 0; i < n && rc == 0; i++)
			rc = de_buf_printf(b, "%02x", s[i]);
		return rc ? rc : de_buf_puts(b, "' AS TEXT)");
	}
	rc = de_buf_putc(b, '\'');
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = s[i] == '\'' ? de_buf_puts(b, "''") : de_buf_putc(b, (char)s[i]);
	return rc ? rc : de_buf_putc(b, '\'');
}

static bool pat_has(const struct sg_pat *p, enum sg_kind k)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->u[i].kind == k)
			return true;
	return false;
}

/* The literal bytes of p[from..to) (no wildcards there), ASCII-lowered when lower. */
static unsigned char *lit_bytes(const struct sg_pat *p, size_t from, size_t to, bool lower)
{
	unsigned char *b = malloc(to - from + 1);

	for (size_t i = from; b && i < to; i++) {
		unsigned char ch = p->u[i].c;
		b[i - from] = lower && ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch + 32) : ch;
	}
	return b;
}

/* ---- regular expressions for values ---------------------------------------------------- */

#define RE_CHAR DE_REGEXP_CHAR

static int re_byte(struct de_buf *b, unsigned char ch)
{
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	    ch == ' ')
		return de_buf_putc(b, (char)ch);
	if (ch > 0x20 && ch < 0x7f)
		return strchr("\\^$.|?*+()[]{}#", ch) ? de_buf_printf(b, "\\%c", ch)
						      : de_buf_putc(b, (char)ch);
	return de_buf_printf(b, "\\x%02x", ch);
}

/* p[from..to): literals and `?`. */
static int re_part(struct de_buf *b, const struct sg_pat *p, size_t from, size_t to)
{
	int rc = 0;

	for (size_t i = from; i < to && rc == 0; i++)
		rc = p->u[i].kind == SG_ONE ? de_buf_puts(b, RE_CHAR) : re_byte(b, p->u[i].c);
	return rc;
}

/*
 * One alternative as a regular expression (see the top of the file).  A
 * part with no star around it stays unanchored when it is the whole value
 * between stars (and has no `?`), which lets PCRE2 use its fast scans.
 */
static int re_alt(struct de_buf *b, const struct sg_pat *p)
{
	bool one = pat_has(p, SG_ONE);
	bool lead = p->n && p->u[0].kind == SG_STAR;
	bool trail = p->n && p->u[p->n - 1].kind == SG_STAR;
	const char *gap_lazy = one ? "(?:" RE_CHAR ")*?" : ".*?";
	const char *gap = one ? "(?:" RE_CHAR ")*" : ".*";
	size_t parts = 0, i = 0;
	int rc = 0;

	for (size_t k = 0; k < p->n; k++)
		if (p->u[k].kind != SG_STAR && (k == 0 || p->u[k - 1].kind == SG_STAR))
			parts++;
	if (parts == 1 && lead && !one) { /* *x* or *x */
		size_t s = 0, e;
		while (p->u[s].kind == SG_STAR)
			s++;
		for (e = s; e < p->n && p->u[e].kind != SG_STAR; e++)
			;
		rc = re_part(b, p, s, e);
		return rc ? rc : trail ? 0 : de_buf_puts(b, "\\z");
	}
	rc = de_buf_puts(b, "\\A");
	for (size_t part = 0; part < parts && rc == 0; part++) {
		size_t s, e;
		bool gap_before;
		while (p->u[i].kind == SG_STAR)
			i++;
		s = i;
		while (i < p->n && p->u[i].kind != SG_STAR)
			i++;
		e = i;
		gap_before = part > 0 || lead;
		if (part == parts - 1 && !trail) {
			if (gap_before)
				rc = de_buf_puts(b, gap);
			if (rc == 0)
				rc = re_part(b, p, s, e);
			if (rc == 0)
				rc = de_buf_puts(b, "\\z");
		} else if (gap_before) {
			if ((rc = de_buf_printf(b, "(?>%s", gap_lazy)) == 0 &&
			    (rc = re_part(b, p, s, e)) == 0)
				rc = de_buf_puts(b, ")");
		} else {
			rc = re_part(b, p, s, e);
		}
	}
	if (rc == 0 && parts == 0) /* the empty value */
		rc = de_buf_puts(b, "\\z");
	return rc;
}

/* regexp('<pattern>', col) matching any of the alternatives. */
int sg_put_regexp_alts(struct de_buf *b, const char *col, const struct sg_alts *a, bool ci)
{
	struct de_buf re = DE_BUF_INIT(SG_MAX_SQL);
	int rc = de_buf_puts(&re, ci ? "(?si)" : "(?s)");

	if (rc == 0 && a->n > 1)
		rc = de_buf_puts(&re, "(?:");
	for (size_t i = 0; i < a->n && rc == 0; i++) {
		if (i)
			rc = de_buf_putc(&re, '|');
		if (rc == 0)
			rc = re_alt(&re, &a->v[i]);
	}
	if (rc == 0 && a->n > 1)
		rc = de_buf_puts(&re, ")");
	if (rc == 0 && re.len > DE_REGEXP_MAX_PATTERN)
		rc = -E2BIG;
	if (rc == 0 && (rc = de_buf_puts(b, "regexp(")) == 0 &&
	    (rc = put_sql_str(b, (const unsigned char *)re.p, re.len)) == 0)
		rc = de_buf_printf(b, ", %s)", col);
	de_buf_free(&re);
	return rc;
}

/* ---- one field test ------------------------------------------------------------------ */

/*
 * Text alternatives (ORed) on col: `col IS NOT NULL` when one is only
 * stars, `col = 'v'` for one exact value matched with case, else one
 * regexp() (regexp_set.c matches what re_alt() writes in one pass).
 */
static int put_text_alts(struct de_buf *b, const char *col, const struct sg_alts *a, bool ci)
{
	for (size_t i = 0; i < a->n; i++)
		if (sg_pat_all_stars(&a->v[i]))
			return de_buf_printf(b, "%s IS NOT NULL", col);
	if (a->n == 1 && (a->v[0].n == 0 || (!ci && !sg_pat_has_wildcards(&a->v[0])))) {
		unsigned char *lit = lit_bytes(&a->v[0], 0, a->v[0].n, false);
		int rc = lit ? de_buf_printf(b, "%s = ", col) : -ENOMEM;
		if (rc == 0)
			rc = put_sql_str(b, lit, a->v[0].n);
		free(lit);
		return rc;
	}
	return sg_put_regexp_alts(b, col, a, ci);
}

/* The modifiers of one field test. */
struct mods {
	enum sg_transform t[16]; /* transforms in rule order */
	size_t nt;
	int pos; /* 0, SG_T_CONTAINS, SG_T_STARTSWITH or SG_T_ENDSWITH as given */
	bool all, cased, exists, cidr, re;
	char re_flags[4]; /* i, m, s as given after re */
	const char *cmp;  /* ">", ">=", "<", "<=" or NULL */
};

static int parse_mods(struct sg_ctx *c, const char *path, const char *key, char *mods_text,
		      struct mods *m)
{
	char *save = NULL;

	memset(m, 0, sizeof(*m));
	for (char *w = strtok_r(mods_text, "|", &save); w; w = strtok_r(NULL, "|", &save)) {
		enum sg_transform t = SG_T_CONTAINS;
		bool is_t = false;
		if (!strcmp(w, "contains") || !strcmp(w, "startswith") || !strcmp(w, "endswith")) {
			if (m->pos)
				return sg_fail(
					c, path, EINVAL,
					"'%s': contains, startswith and endswith exclude each "
					"other",
					key);
			t = !strcmp(w, "contains")     ? SG_T_CONTAINS
			    : !strcmp(w, "startswith") ? SG_T_STARTSWITH
						       : SG_T_ENDSWITH;
			m->pos = 1;
			is_t = true;
		} else if (!strcmp(w, "base64")) {
			t = SG_T_BASE64, is_t = true;
		} else if (!strcmp(w, "base64offset")) {
			t = SG_T_BASE64OFFSET, is_t = true;
		} else if (!strcmp(w, "windash")) {
			t = SG_T_WINDASH, is_t = true;
		} else if (!strcmp(w, "utf16le") || !strcmp(w, "wide")) {
			t = SG_T_UTF16LE, is_t = true;
		} else if (!strcmp(w, "utf16be")) {
			t = SG_T_UTF16BE, is_t = true;
		} else if (!strcmp(w, "utf16")) {
			t = SG_T_UTF16, is_t = true;
		} else if (!strcmp(w, "all")) {
			m->all = true;
		} else if (!strcmp(w, "cased")) {
			m->cased = true;
		} else if (!strcmp(w, "exists")) {
			m->exists = true;
		} else if (!strcmp(w, "cidr")) {
			m->cidr = true;
		} else if (!strcmp(w, "re")) {
			m->re = true;
		} else if (m->re && (!strcmp(w, "i") || !strcmp(w, "m") || !strcmp(w, "s"))) {
			if (!strchr(m->re_flags, w[0]) && strlen(m->re_flags) < 3)
				strncat(m->re_flags, w, 1);
		} else if (!strcmp(w, "gt") || !strcmp(w, "gte") || !strcmp(w, "lt") ||
			   !strcmp(w, "lte")) {
			if (m->cmp)
				return sg_fail(c, path, EINVAL, "'%s': more than one comparison",
					       key);
			m->cmp = !strcmp(w, "gt")    ? ">"
				 : !strcmp(w, "gte") ? ">="
				 : !strcmp(w, "lt")  ? "<"
						     : "<=";
		} else if (!strcmp(w, "neq") || !strcmp(w, "expand") || !strcmp(w, "fieldref") ||
			   !strcmp(w, "minute") || !strcmp(w, "hour") || !strcmp(w, "day") ||
			   !strcmp(w, "week") || !strcmp(w, "month") || !strcmp(w, "year")) {
			return sg_fail(
				c, path, ENOTSUP,
				"'%s': the Sigma modifier '%s' is not supported by daemoneye", key,
				w);
		} else {
			return sg_fail(c, path, EINVAL, "'%s': unknown modifier '%s'", key, w);
		}
		if (is_t) {
			if (m->nt == sizeof(m->t) / sizeof(m->t[0]))
				return sg_fail(c, path, E2BIG, "'%s': too many modifiers", key);
			m->t[m->nt++] = t;
		}
	}
	int kinds = (m->re ? 1 : 0) + (m->exists ? 1 : 0) + (m->cidr ? 1 : 0) + (m->cmp ? 1 : 0);
	if (kinds > 1 || (kinds && m->nt))
		return sg_fail(c, path, EINVAL,
			       "'%s': re, exists, cidr and gt/gte/lt/lte do not combine with each "
			       "other or with value modifiers",
			       key);
	return 0;
}

static bool parse_int(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (!*s || isspace((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

/* The values of one field test: a string, null, or a list of them. */
static int values_of(struct sg_ctx *c, const char *path, const char *key, const json_t *val,
		     const json_t **items, size_t *n)
{
	if (json_is_array(val)) {
		*n = json_array_size(val);
		if (*n == 0)
			return sg_fail(c, path, EINVAL, "'%s' has an empty list of values", key);
		if (*n > SG_MAX_ALTS)
			return sg_fail(c, path, E2BIG, "'%s' has more than %d values", key,
				       SG_MAX_ALTS);
		for (size_t i = 0; i < *n; i++) {
			items[i] = json_array_get(val, i);
			if (!json_is_string(items[i]) && !json_is_null(items[i])) {
				char ip[600];
				snprintf(ip, sizeof(ip), "%s[%zu]", path, i);
				return sg_fail(c, ip, EINVAL,
					       "'%s': a value must be a string or null", key);
			}
		}
		return 0;
	}
	if (!json_is_string(val) && !json_is_null(val))
		return sg_fail(c, path, EINVAL,
			       "'%s': the value must be a string, null or a list of them", key);
	items[0] = val;
	*n = 1;
	return 0;
}

/* Compile one "Field|mods: value(s)" into terms (ANDed by the caller). */
/* What one field test is about. */
struct ftest {
	const char *key;	  /* "Field|mods" as written */
	const char *name;	  /* the field */
	const struct sg_field *f; /* its map entry */
	struct mods m;		  /* its modifiers */
};

/*
 * One value s of a field test (written at vpath): a term into *ors (null,
 * re, a number), or its text alternatives into *a.
 */
static int one_value(struct sg_ctx *c, const char *vpath, const struct ftest *ft, const char *s,
		     struct sg_terms *ors, struct sg_alts *a)
{
	const struct sg_field *f = ft->f;
	const struct mods *m = &ft->m;
	struct de_buf b = DE_BUF_INIT(SG_MAX_SQL);
	const char *why = NULL;
	int rc = 0;

	if (!s) { /* null: the field is absent */
		if (m->nt || m->re || m->cidr || m->cmp)
			return sg_fail(
				c, vpath, EINVAL,
				"'%s': null takes no modifiers (it means the field is absent)",
				ft->key);
		if ((rc = de_buf_printf(&b, "%s IS NULL", f->column)) == 0)
			rc = sg_terms_add(ors, &b, f->cost);
		goto out;
	}
	if (strlen(s) > SG_MAX_VALUE_LEN)
		return sg_fail(c, vpath, E2BIG, "'%s': a value longer than %d bytes", ft->key,
			       SG_MAX_VALUE_LEN);
	if (m->re) {
		struct de_error re = {0};
		struct de_buf pat = DE_BUF_INIT(SG_MAX_SQL);
		if (f->type != SG_F_TEXT)
			return sg_fail(c, vpath, ENOTSUP, "'%s': re applies to text fields",
				       ft->key);
		if (m->re_flags[0])
			rc = de_buf_printf(&pat, "(?%s)", m->re_flags);
		if (rc == 0)
			rc = de_buf_puts(&pat, s);
		if (rc == 0 && de_regexp_check(pat.p, pat.len, &re) < 0)
			rc = sg_fail(c, vpath, re.code, "'%s': %s", ft->key, re.message);
		else if (rc == 0 && (rc = de_buf_puts(&b, "regexp(")) == 0 &&
			 (rc = put_sql_str(&b, (const unsigned char *)pat.p, pat.len)) == 0 &&
			 (rc = de_buf_printf(&b, ", %s)", f->column)) == 0)
			rc = sg_terms_add(ors, &b, f->cost + 6);
		de_buf_free(&pat);
		goto out;
	}
	if (m->cmp || f->type == SG_F_INT) {
		int64_t v;
		if (f->type != SG_F_INT)
			return sg_fail(c, vpath, ENOTSUP,
				       "'%s': gt, gte, lt and lte compare numbers; %s is text",
				       ft->key, ft->name);
		if (m->nt || m->cidr || !parse_int(s, &v))
			return sg_fail(c, vpath, ENOTSUP,
				       "'%s': %s holds whole numbers; '%s' (with these modifiers) "
				       "is not one",
				       ft->key, ft->name, s);
		if ((rc = de_buf_printf(&b, "%s %s %" PRId64, f->column, m->cmp ? m->cmp : "=",
					v)) == 0)
			rc = sg_terms_add(ors, &b, f->cost);
		goto out;
	}
	if (m->cidr) {
		if (f->type != SG_F_ADDR)
			return sg_fail(c, vpath, ENOTSUP,
				       "'%s': cidr applies to address fields; %s is not one",
				       ft->key, ft->name);
		if ((rc = sg_cidr_patterns(s, a, &why)) < 0)
			return sg_fail(c, vpath, rc == -EINVAL ? ENOTSUP : -rc, "'%s': '%s': %s",
				       ft->key, s, why ? why : "too many addresses");
		return 0;
	}
	/* text: the value as a pattern, then its modifiers in order */
	if (!(a->v = calloc(1, sizeof(*a->v))) || sg_pat_parse(s, strlen(s), &a->v[0]) < 0)
		return sg_fail(c, vpath, ENOMEM, "out of memory");
	a->n = 1;
	for (size_t t = 0; t < m->nt; t++)
		if ((rc = sg_transform(a, m->t[t], &why)) < 0)
			return sg_fail(c, vpath, rc == -EINVAL ? EINVAL : -rc, "'%s': %s", ft->key,
				       why	      ? why
				       : rc == -E2BIG ? "expands to too many values"
						      : "out of memory");
	for (size_t k = 0; k < a->n; k++)
		for (size_t u = 0; u < a->v[k].n; u++)
			if (a->v[k].u[u].kind == SG_LIT && a->v[k].u[u].c == 0)
				return sg_fail(c, vpath, ENOTSUP,
					       "'%s': the value holds NUL bytes (UTF-16 without "
					       "base64?), which text never does",
					       ft->key);
	return 0;
out:
	de_buf_free(&b);
	return rc;
}

/* `Field|exists: true|false`. */
static int exists_test(struct sg_ctx *c, const char *path, const struct ftest *ft,
		       const json_t *const *items, size_t n, struct sg_terms *out)
{
	const char *s = json_string_value(items[0]);
	struct de_buf b = DE_BUF_INIT(256);
	int rc;

	if (n != 1 || !s || (strcasecmp(s, "true") != 0 && strcasecmp(s, "false") != 0))
		return sg_fail(c, path, EINVAL, "'%s': exists takes true or false", ft->key);
	rc = de_buf_printf(&b, "%s IS %sNULL", ft->f->column, strcasecmp(s, "true") ? "" : "NOT ");
	if (rc == 0)
		rc = sg_terms_add(out, &b, ft->f->cost);
	de_buf_free(&b);
	return rc;
}

/*
 * The values' terms into *out: with `all`, one term per value; otherwise
 * one term, the OR of the null/re/number terms and of one test of all the
 * text alternatives together.
 */
static int values_test(struct sg_ctx *c, const char *path, const struct ftest *ft,
		       const json_t *val, const json_t *const *items, size_t n,
		       struct sg_terms *out)
{
	const struct sg_field *f = ft->f;
	int fidx = (int)(f - c->ls->fields), rc = 0;
	bool ci = !ft->m.cased;
	struct sg_alts all_alts = {0};
	struct sg_terms ors = {0};
	struct de_buf b = DE_BUF_INIT(SG_MAX_SQL);

	for (size_t i = 0; i < n && rc == 0; i++) {
		char vpath[600];
		struct sg_alts a = {0};
		if (json_is_array(val))
			snprintf(vpath, sizeof(vpath), "%s[%zu]", path, i);
		else
			snprintf(vpath, sizeof(vpath), "%s", path);
		rc = one_value(c, vpath, ft, json_string_value(items[i]), &ors, &a);
		if (rc == 0 && a.n && ft->m.all) { /* this value on its own */
			rc = put_text_alts(&b, f->column, &a, ci);
			if (rc == 0 &&
			    (rc = sg_terms_add(out, &b, f->cost + (a.n > 1 ? 4 : 2))) == 0)
				sg_terms_imply(out, fidx, &a, ci);
		} else if (rc == 0 && a.n && (rc = sg_alts_append(&all_alts, &a)) == -E2BIG) {
			rc = sg_fail(c, vpath, E2BIG, "'%s' expands to more than %d values",
				     ft->key, SG_MAX_ALTS);
		}
		sg_alts_clear(&a);
	}
	if (rc == 0 && all_alts.n) {
		rc = put_text_alts(&b, f->column, &all_alts, ci);
		if (rc == 0 &&
		    (rc = sg_terms_add(&ors, &b, f->cost + (all_alts.n > 1 ? 4 : 2))) == 0)
			sg_terms_imply(&ors, fidx, &all_alts, ci);
	}
	if (rc == 0 && ors.n && ft->m.all) { /* every value must hold */
		for (size_t i = 0; i < ors.n && rc == 0; i++)
			if ((rc = de_buf_puts(&b, ors.v[i].sql)) == 0)
				rc = sg_terms_add(out, &b, ors.v[i].cost);
	} else if (rc == 0 && ors.n) { /* any */
		int worst = 0;
		for (size_t i = 0; i < ors.n; i++)
			worst = ors.v[i].cost > worst ? ors.v[i].cost : worst;
		rc = sg_join(&b, &ors, 0, ors.n, "OR");
		if (rc == 0)
			rc = sg_terms_add(out, &b, worst + (ors.n > 1 ? 2 : 0));
		if (rc == 0 && ors.n == 1 && ors.v[0].field >= 0)
			sg_terms_imply(out, fidx, &ors.v[0].imp, ors.v[0].ci);
	}
	sg_alts_clear(&all_alts);
	sg_terms_clear(&ors);
	de_buf_free(&b);
	return rc;
}

int sg_field_test(struct sg_ctx *c, const char *path, const char *key, const json_t *val,
		  struct sg_terms *out)
{
	char name[256], *bar;
	struct ftest ft = {.key = key, .name = name};
	const json_t **items = NULL;
	size_t n = 0, first = out->n;
	int rc;

	snprintf(name, sizeof(name), "%s", key);
	if ((bar = strchr(name, '|')))
		*bar++ = '\0';
	if (!*name)
		return sg_fail(c, path, ENOTSUP,
			       "'%s': a keyword search (values without a field) needs the whole "
			       "event's text, which daemoneye does not keep; name a field",
			       key);
	if ((rc = parse_mods(c, path, key, bar ? bar : (char *)"", &ft.m)) < 0)
		return rc;
	if (!(ft.f = field_find(c->ls, name)))
		return sg_fail(
			c, path, ENOTSUP,
			"field '%s' has no daemoneye equivalent in linux/%s (mapped: %s)", name,
			c->ls->category,
			c->ls == &logsources[0]
				? "Image, CommandLine, ParentImage, ParentCommandLine, "
				  "ProcessId, ParentProcessId, User, ParentUser, "
				  "CurrentDirectory"
				: "ProcessId, DestinationIp, DestinationPort, SourceIp, "
				  "SourcePort, Initiated, Protocol, Image, CommandLine, User");
	if (!ft.f->column)
		return sg_fail(c, path, ENOTSUP, "field '%s' is not available: %s", name,
			       ft.f->why);
	if (!(items = calloc(SG_MAX_ALTS, sizeof(const json_t *))))
		return sg_fail(c, path, ENOMEM, "out of memory");
	if ((rc = values_of(c, path, key, val, items, &n)) == 0) {
		c->uses_parent |= ft.f->parent;
		rc = ft.m.exists ? exists_test(c, path, &ft, items, n, out)
				 : values_test(c, path, &ft, val, items, n, out);
	}
	if (rc == -E2BIG && !c->failed)
		rc = sg_fail(c, path, E2BIG, "'%s' makes an SQL query longer than %d bytes", key,
			     SG_MAX_SQL);
	else if (rc == -ENOMEM && !c->failed)
		rc = sg_fail(c, path, ENOMEM, "out of memory");
	for (size_t i = first; rc == 0 && i < out->n; i++)
		out->v[i].parent = ft.f->parent;
	free(items);
	return rc;
}
