/*
 * sigma_cond.c — a Sigma condition to a tree (see sigma_int.h).
 *
 * The grammar, loosest binding first, as the specification orders it:
 *
 *   or    := and ("or" and)*
 *   and   := not ("and" not)*
 *   not   := "not" not | term
 *   term  := "(" or ")" | QUANT "of" TARGET | IDENT
 *   QUANT := "1" | "any" | "all"        TARGET := "them" | PATTERN
 *
 * Keywords are case-insensitive.  IDENT names a search identifier of the
 * detection exactly; PATTERN may hold `*` (any run of characters) and
 * selects every identifier it matches; `them` selects every identifier not
 * starting with `_`.  "1 of" is the OR and "all of" the AND of what was
 * selected.  A pipe (the old aggregation syntax, `| count() by x`) is
 * refused: daemoneye rules look at one process at a time.
 */
#include "sigma_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void sg_node_free(struct sg_node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		sg_node_free(n->kids[i]);
	free(n->kids);
	free(n);
}

enum tok { T_END, T_LP, T_RP, T_WORD };

struct parser {
	struct sg_ctx *c;
	const char *path;
	const char *s;
	size_t pos;	   /* next byte */
	enum tok tok;	   /* current token */
	size_t tpos, tlen; /* where the current token is */
	int depth;
	const char *const *names;
	size_t nnames;
};

static bool word_char(char ch)
{
	return isalnum((unsigned char)ch) || ch == '_' || ch == '-' || ch == '*' || ch == '.';
}

static int perr(struct parser *p, size_t at, int code, const char *what)
{
	return sg_fail(p->c, p->path, code, "condition '%s', at character %zu: %s", p->s, at + 1,
		       what);
}

static int next(struct parser *p)
{
	const char *s = p->s;

	while (s[p->pos] == ' ' || s[p->pos] == '\t' || s[p->pos] == '\n' || s[p->pos] == '\r')
		p->pos++;
	p->tpos = p->pos;
	p->tlen = 1;
	switch (s[p->pos]) {
	case '\0':
		p->tok = T_END;
		p->tlen = 0;
		return 0;
	case '(':
		p->tok = T_LP;
		p->pos++;
		return 0;
	case ')':
		p->tok = T_RP;
		p->pos++;
		return 0;
	case '|':
		return perr(p, p->pos, ENOTSUP,
			    "aggregations ('| count() by ...') are not supported: a daemoneye "
			    "rule looks at one process at a time");
	}
	if (!word_char(s[p->pos]))
		return perr(p, p->pos, EINVAL, "unexpected character");
	while (word_char(s[p->pos]))
		p->pos++;
	p->tok = T_WORD;
	p->tlen = p->pos - p->tpos;
	return 0;
}

static bool is_kw(const struct parser *p, const char *kw)
{
	return p->tok == T_WORD && p->tlen == strlen(kw) &&
	       strncasecmp(p->s + p->tpos, kw, p->tlen) == 0;
}

static bool reserved(const struct parser *p)
{
	static const char *const kws[] = {"and", "or", "not", "of", "them", "all", "any"};
	for (size_t i = 0; i < sizeof(kws) / sizeof(kws[0]); i++)
		if (is_kw(p, kws[i]))
			return true;
	return false;
}

static struct sg_node *node(enum sg_op op)
{
	struct sg_node *n = calloc(1, sizeof(*n));

	if (n)
		n->op = op;
	return n;
}

static int add_kid(struct sg_node *n, struct sg_node *k)
{
	struct sg_node **nk = realloc(n->kids, (n->nkids + 1) * sizeof(struct sg_node *));

	if (!nk)
		return -ENOMEM;
	n->kids = nk;
	n->kids[n->nkids++] = k;
	return 0;
}

static struct sg_node *sel_node(size_t i)
{
	struct sg_node *n = node(SG_N_SEL);

	if (n)
		n->sel = i;
	return n;
}

/* Does name match the pattern pat[0..plen) with `*` wildcards? */
static bool glob_match(const char *pat, size_t plen, const char *name)
{
	size_t p = 0, n = 0, star = SIZE_MAX, mark = 0, nl = strlen(name);

	while (n < nl) {
		if (p < plen && pat[p] == '*') {
			star = p++;
			mark = n;
		} else if (p < plen && pat[p] == name[n]) {
			p++;
			n++;
		} else if (star != SIZE_MAX) {
			p = star + 1;
			n = ++mark;
		} else {
			return false;
		}
	}
	while (p < plen && pat[p] == '*')
		p++;
	return p == plen;
}

static int parse_or(struct parser *p, struct sg_node **out);

/* The next token after a finished *out; on failure *out is freed. */
static int next_after(struct parser *p, struct sg_node **out)
{
	int rc = next(p);

	if (rc < 0) {
		sg_node_free(*out);
		*out = NULL;
	}
	return rc;
}

/* "1 of X" / "all of X": the current token is the quantifier. */
static int parse_of(struct parser *p, bool all, struct sg_node **out)
{
	size_t qpos = p->tpos;
	struct sg_node *n;
	int rc;

	if ((rc = next(p)) < 0)
		return rc;
	if (!is_kw(p, "of"))
		return perr(p, p->tpos, EINVAL, "expected 'of' after '1', 'any' or 'all'");
	if ((rc = next(p)) < 0)
		return rc;
	if (p->tok != T_WORD || (reserved(p) && !is_kw(p, "them")))
		return perr(p, p->tpos, EINVAL, "expected 'them' or a search identifier pattern");
	if (!(n = node(all ? SG_N_AND : SG_N_OR)))
		return -ENOMEM;
	bool them = is_kw(p, "them");
	for (size_t i = 0; i < p->nnames; i++) {
		bool m = them ? p->names[i][0] != '_'
			      : glob_match(p->s + p->tpos, p->tlen, p->names[i]);
		struct sg_node *k;
		if (!m)
			continue;
		if (!(k = sel_node(i)) || add_kid(n, k) < 0) {
			free(k);
			sg_node_free(n);
			return -ENOMEM;
		}
	}
	if (!n->nkids) {
		sg_node_free(n);
		return perr(p, qpos, EINVAL,
			    them ? "'of them' but the detection has no search identifier"
				 : "the pattern matches no search identifier of the detection");
	}
	*out = n;
	return next_after(p, out);
}

static int parse_term(struct parser *p, struct sg_node **out)
{
	int rc;

	if (p->tok == T_LP) {
		size_t at = p->tpos;
		if (++p->depth > SG_MAX_COND_DEPTH)
			return perr(p, at, E2BIG, "nested too deeply");
		if ((rc = next(p)) < 0 || (rc = parse_or(p, out)) < 0)
			return rc;
		p->depth--;
		if (p->tok != T_RP) {
			sg_node_free(*out);
			*out = NULL;
			return perr(p, at, EINVAL, "this parenthesis is never closed");
		}
		return next_after(p, out);
	}
	if (p->tok != T_WORD)
		return perr(p, p->tpos, EINVAL,
			    p->tok == T_END ? "the condition ends where a search identifier was "
					      "expected"
					    : "expected a search identifier, 'not', '(' or '1 of'");
	if (is_kw(p, "all") || is_kw(p, "any"))
		return parse_of(p, is_kw(p, "all"), out);
	if (p->tlen == 1 && p->s[p->tpos] == '1')
		return parse_of(p, false, out);
	if (reserved(p))
		return perr(p, p->tpos, EINVAL, "a keyword where a search identifier was expected");
	if (isdigit((unsigned char)p->s[p->tpos]) &&
	    strspn(p->s + p->tpos, "0123456789") == p->tlen)
		return perr(p, p->tpos, ENOTSUP, "only '1 of' and 'all of' are supported");
	if (memchr(p->s + p->tpos, '*', p->tlen))
		return perr(p, p->tpos, EINVAL,
			    "a pattern with '*' needs '1 of' or 'all of' before it");
	for (size_t i = 0; i < p->nnames; i++) {
		if (strlen(p->names[i]) == p->tlen &&
		    memcmp(p->names[i], p->s + p->tpos, p->tlen) == 0) {
			if (!(*out = sel_node(i)))
				return -ENOMEM;
			return next_after(p, out);
		}
	}
	char what[300];
	snprintf(what, sizeof(what), "'%.*s' is not a search identifier of the detection",
		 (int)(p->tlen > 200 ? 200 : p->tlen), p->s + p->tpos);
	return perr(p, p->tpos, EINVAL, what);
}

static int parse_not(struct parser *p, struct sg_node **out)
{
	struct sg_node *n, *k = NULL;
	int rc;

	if (!is_kw(p, "not"))
		return parse_term(p, out);
	if (++p->depth > SG_MAX_COND_DEPTH)
		return perr(p, p->tpos, E2BIG, "nested too deeply");
	if ((rc = next(p)) < 0 || (rc = parse_not(p, &k)) < 0)
		return rc;
	p->depth--;
	if (!(n = node(SG_N_NOT)) || add_kid(n, k) < 0) {
		free(n);
		sg_node_free(k);
		return -ENOMEM;
	}
	*out = n;
	return 0;
}

/* A chain of `kw`-joined operands parsed by sub, as one n-ary node (or the operand alone). */
static int parse_chain(struct parser *p, const char *kw, enum sg_op op,
		       int (*sub)(struct parser *, struct sg_node **), struct sg_node **out)
{
	struct sg_node *first = NULL, *n = NULL, *k = NULL;
	int rc;

	if ((rc = sub(p, &first)) < 0)
		return rc;
	while (is_kw(p, kw)) {
		if (!n) {
			if (!(n = node(op)) || add_kid(n, first) < 0) {
				free(n);
				sg_node_free(first);
				return -ENOMEM;
			}
		}
		if ((rc = next(p)) < 0 || (rc = sub(p, &k)) < 0) {
			sg_node_free(n);
			return rc;
		}
		if (add_kid(n, k) < 0) {
			sg_node_free(k);
			sg_node_free(n);
			return -ENOMEM;
		}
	}
	*out = n ? n : first;
	return 0;
}

static int parse_and(struct parser *p, struct sg_node **out)
{
	return parse_chain(p, "and", SG_N_AND, parse_not, out);
}

static int parse_or(struct parser *p, struct sg_node **out)
{
	return parse_chain(p, "or", SG_N_OR, parse_and, out);
}

int sg_cond_parse(struct sg_ctx *c, const char *path, const char *s, const char *const *names,
		  size_t n, struct sg_node **out)
{
	struct parser p = {.c = c, .path = path, .s = s, .names = names, .nnames = n};
	struct sg_node *root = NULL;
	int rc;

	if (strlen(s) > SG_MAX_COND_LEN)
		return sg_fail(c, path, E2BIG, "the condition is longer than %d bytes",
			       SG_MAX_COND_LEN);
	if ((rc = next(&p)) < 0 || (rc = parse_or(&p, &root)) < 0)
		return rc == -ENOMEM ? sg_fail(c, path, ENOMEM, "out of memory") : rc;
	if (p.tok != T_END) {
		sg_node_free(root);
		return perr(&p, p.tpos, EINVAL,
			    p.tok == T_RP ? "')' without a matching '('"
					  : "expected 'and', 'or' or the end of the condition");
	}
	*out = root;
	return 0;
}
