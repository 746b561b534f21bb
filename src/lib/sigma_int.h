/*
 * sigma_int.h — private to the Sigma compiler (sigma.c, sigma_value.c,
 * sigma_cond.c, sigma_field.c, sigma_sql.c).  sigma.h says what the
 * compiler does; this header holds the pieces its files share:
 *
 *   sigma_value.c  a Sigma string value: escapes and wildcards (sg_pat),
 *                  the value modifiers that transform values (base64,
 *                  base64offset, windash, utf16*, contains/startswith/
 *                  endswith) and cidr's expansion into address prefixes;
 *   sigma_cond.c   the condition: tokenizer and precedence parser into a
 *                  tree over the detection's search identifiers;
 *   sigma_field.c  the logsources and their field maps, and one field test
 *                  as SQL (its modifiers and values);
 *   sigma_sql.c    a selection, the condition and the whole SELECT, with
 *                  what makes them fast (ordering, tests before an OR);
 *   sigma.c        the public API: YAML, metadata, the rule, the rule file.
 *
 * Errors: every refusal goes through sg_fail(), which names FILE:LINE:COL
 * of the YAML node it concerns (paths as de_yaml_parse records them:
 * "detection.selection.CommandLine|contains[2]").
 */
#ifndef DAEMONEYE_SIGMA_INT_H
#define DAEMONEYE_SIGMA_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemoneye/buf.h"
#include "daemoneye/error.h"

/* ---- context and errors ------------------------------------------------------ */

struct sg_logsource;

struct sg_ctx {
	const char *origin;    /* file name for messages */
	const json_t *origins; /* YAML path -> "ORIGIN:LINE:COL" */
	struct de_error *err;  /* where refusals go */
	const struct sg_logsource *ls;
	bool uses_parent; /* some test reads the parent's columns */
	bool failed;	  /* sg_fail() has reported why */
};

/* "ORIGIN:LINE:COL" where path was written (the nearest written ancestor), or the origin. */
const char *sg_where(const struct sg_ctx *c, const char *path);
/*
 * Refuse: a ValidationError "WHERE: message" with code `code` (EINVAL for
 * input that is not valid Sigma, ENOTSUP for Sigma that daemoneye cannot
 * run, ENOMEM).  Returns -code.
 */
int sg_fail(struct sg_ctx *c, const char *path, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
#if defined(__clang_analyzer__)
/* for the static analyzer only, as error.h does for de_error_set: sg_fail
   returns a negative value (it reads one file at a time) */
#define sg_fail(...) de_error_negative_((sg_fail)(__VA_ARGS__))
#endif

/* ---- values ------------------------------------------------------------------- */

enum sg_kind { SG_LIT = 0, SG_STAR, SG_ONE };

struct sg_unit {
	unsigned char c;    /* the byte, for SG_LIT */
	unsigned char kind; /* enum sg_kind */
};

/* A value as a pattern: literal bytes and wildcards (`*` any bytes, `?` one character). */
struct sg_pat {
	struct sg_unit *u; /* owned */
	size_t n;
};

/* Alternatives from one value of the rule (ORed): windash and base64offset make several. */
struct sg_alts {
	struct sg_pat *v; /* owned */
	size_t n;
};

#define SG_MAX_ALTS	 1024	  /* alternatives one field test may expand to */
#define SG_MAX_VALUE_LEN 65536	  /* bytes of one value */
#define SG_MAX_SQL	 (100000) /* = DE_VALIDATOR_MAX_SQL */

void sg_pat_clear(struct sg_pat *p);
void sg_alts_clear(struct sg_alts *a);
/*
 * Append deep copies of src's alternatives that *dst does not have yet:
 * 0, -E2BIG past SG_MAX_ALTS, -ENOMEM.
 */
int sg_alts_append(struct sg_alts *dst, const struct sg_alts *src);
/* A Sigma string: `*` and `?` are wildcards, `\` escapes `*`, `?` and `\`. */
int sg_pat_parse(const char *s, size_t n, struct sg_pat *out);
/* A pattern of literal bytes only. */
int sg_pat_literal(const void *s, size_t n, struct sg_pat *out);
bool sg_pat_has_wildcards(const struct sg_pat *p);
/* True when every unit is SG_STAR (matches any value, an empty pattern does not). */
bool sg_pat_all_stars(const struct sg_pat *p);

/* The transforming modifiers, applied to every alternative in rule order. */
enum sg_transform {
	SG_T_CONTAINS,
	SG_T_STARTSWITH,
	SG_T_ENDSWITH,
	SG_T_BASE64,
	SG_T_BASE64OFFSET,
	SG_T_WINDASH,
	SG_T_UTF16LE,
	SG_T_UTF16BE,
	SG_T_UTF16,
};

/*
 * Apply t to every alternative of *a (in place).  0; -EINVAL when the
 * transform cannot apply (base64 of a value with wildcards, UTF-16 of
 * bytes that are not UTF-8: *why says which); -E2BIG past SG_MAX_ALTS;
 * -ENOMEM.
 */
int sg_transform(struct sg_alts *a, enum sg_transform t, const char **why);

/*
 * The patterns a CIDR range matches as the text daemoneye stores: for IPv4
 * "a.b.c.d/n", exact dotted-decimal addresses or "prefix*" patterns; for
 * IPv6, a whole address's canonical text or, for a range within the first
 * group (fe80::/10), "xxxx:*" patterns.  Appended to *out.  0, -EINVAL (not
 * a range, or an IPv6 range without a fixed text form; *why says why),
 * -E2BIG, -ENOMEM.
 */
int sg_cidr_patterns(const char *s, struct sg_alts *out, const char **why);

/* ---- the condition -------------------------------------------------------------- */

enum sg_op { SG_N_SEL, SG_N_AND, SG_N_OR, SG_N_NOT };

struct sg_node {
	enum sg_op op;
	size_t sel;	       /* SG_N_SEL: index into the search identifiers */
	struct sg_node **kids; /* SG_N_AND/OR: 1+, SG_N_NOT: 1; owned */
	size_t nkids;
};

#define SG_MAX_COND_LEN	  4096 /* bytes of one condition */
#define SG_MAX_COND_DEPTH 32   /* nesting of parentheses and not */

void sg_node_free(struct sg_node *n);
/*
 * Parse condition text s over the search identifiers names[0..n) into
 * *out.  Errors are refusals naming `path` and the character where the
 * problem is.
 */
int sg_cond_parse(struct sg_ctx *c, const char *path, const char *s, const char *const *names,
		  size_t n, struct sg_node **out);

/* ---- fields (sigma_field.c) ------------------------------------------------------ */

enum sg_ftype { SG_F_TEXT, SG_F_INT, SG_F_ADDR };

/* One Sigma field of a logsource. */
struct sg_field {
	const char *sigma;  /* the Sigma (Sysmon) field name */
	const char *column; /* SQL expression; NULL: not available, see why */
	enum sg_ftype type;
	bool parent;	 /* reads the parent's row (the join) */
	int cost;	 /* relative cost of a test of it: cheaper ones run first */
	const char *why; /* why a field without a column is refused */
};

/* A logsource daemoneye knows, and the relation its rules read. */
struct sg_logsource {
	const char *product, *category;
	const char *unavailable;   /* why it cannot run yet; NULL when it can */
	const char *select;	   /* result columns (pid, name, executable_path at least) */
	const char *parent_select; /* added when the parent is read */
	const char *from;
	const char *parent_join; /* added to from when the parent is read */
	const char *where;	 /* ANDed before the rule's condition, or NULL */
	const struct sg_field *fields;
	size_t nfields;
};

/* ---- SQL ------------------------------------------------------------------------ */

/* One SQL test of several to be ANDed or ORed (sigma_sql.c). */
struct sg_term {
	char *sql; /* owned */
	int cost;
	bool parent;	    /* reads the parent's row */
	size_t order;	    /* when it was added (sorting keeps ties in it) */
	int field;	    /* what it implies: field index, -1 for nothing */
	struct sg_alts imp; /* owned: that field matches one of these */
	bool ci;	    /* case-folded */
};

struct sg_terms {
	struct sg_term *v;
	size_t n, cap;
};

void sg_terms_clear(struct sg_terms *t);
/* Move b's text into a new term of that cost (b is then empty). 0, -ENOMEM. */
int sg_terms_add(struct sg_terms *t, struct de_buf *b, int cost);
/* The last term added implies field fi matches one of *a (moved in). */
void sg_terms_imply(struct sg_terms *t, int fi, struct sg_alts *a, bool ci);
/* t->v[lo..hi) joined with op (AND, OR), balanced so that the depth stays log n. */
int sg_join(struct de_buf *b, const struct sg_terms *t, size_t lo, size_t hi, const char *op);

/* regexp('<pattern>', col) matching any of a's alternatives (case-folded when ci). */
int sg_put_regexp_alts(struct de_buf *b, const char *col, const struct sg_alts *a, bool ci);
/*
 * Compile "Field|mods: value(s)" (key and val, written at path) into terms
 * of *out, to be ANDed by the caller.  A refusal names path.
 */
int sg_field_test(struct sg_ctx *c, const char *path, const char *key, const json_t *val,
		  struct sg_terms *out);

#define SG_MAX_FIELDS 32 /* fields of one logsource */

/*
 * What is known of a compiled selection, or part of the condition, for
 * speed (sigma_sql.c): what it implies — for each field it has, the field
 * matches one of the alternatives (case-folded when ci), a necessary
 * condition tested cheaply before an OR of many tests — what it costs on a
 * row it does not match (relative units: the field costs of the map), and
 * whether it reads the parent's row.
 */
struct sg_facts {
	struct sg_alts a[SG_MAX_FIELDS];
	bool has[SG_MAX_FIELDS];
	bool ci[SG_MAX_FIELDS];
	int cost;
	bool parent;
};

void sg_facts_clear(struct sg_facts *m);

/* Find the logsource for product/category/service (any may be NULL); refusal otherwise. */
int sg_logsource_find(struct sg_ctx *c, const char *path, const char *product, const char *category,
		      const char *service, bool planned);

/*
 * The SQL expression of one selection (the JSON value of a search
 * identifier named `name`) appended to *out.
 */
int sg_sql_selection(struct sg_ctx *c, const char *name, const json_t *sel, struct de_buf *out,
		     struct sg_facts *imp);

/*
 * The whole SELECT: the condition tree over the selections' expressions
 * sels[0..n) and what each implies, imps[0..n) (NULL and empty for
 * identifiers the condition does not use).  *out is a new string.
 */
int sg_sql_query(struct sg_ctx *c, const struct sg_node *cond, char *const *sels,
		 const struct sg_facts *imps, size_t n, char **out);

#endif
