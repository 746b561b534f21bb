/*
 * sigma_sql.c — a Sigma detection's selections and condition as one SQL
 * query (see sigma_int.h, sigma.h); the field tests come from
 * sigma_field.c.
 *
 * Speed (each rule has 3 ms for 10,000 processes): ANDed tests are ordered
 * cheapest first (numbers, the executable path, the parent's path, the
 * command line, the parent's), so SQLite's short-circuit skips the costly
 * ones on most rows; the tests from the first one on the parent on are
 * kept together after the parent's lookup (put_and); and an OR of several
 * tests is preceded by one test of what all of them need (put_or), which
 * most rows fail.
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

void sg_terms_clear(struct sg_terms *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].sql);
		sg_alts_clear(&t->v[i].imp);
	}
	free(t->v);
	memset(t, 0, sizeof(*t));
}

/* The last term added implies field fi matches one of *a (moved in). */
void sg_terms_imply(struct sg_terms *t, int fi, struct sg_alts *a, bool ci)
{
	struct sg_term *last = &t->v[t->n - 1];

	for (size_t i = 0; i < a->n; i++)
		if (sg_pat_all_stars(&a->v[i]))
			return; /* "any value": nothing worth testing first */
	sg_alts_clear(&last->imp);
	last->field = fi;
	last->imp = *a;
	last->ci = ci;
	memset(a, 0, sizeof(*a));
}

/* Move the buffer's text into a new term. */
int sg_terms_add(struct sg_terms *t, struct de_buf *b, int cost)
{
	if (t->n == t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 8;
		struct sg_term *nv = realloc(t->v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		t->v = nv;
		t->cap = nc;
	}
	memset(&t->v[t->n], 0, sizeof(t->v[t->n]));
	if (!(t->v[t->n].sql = de_buf_steal(b)))
		return -ENOMEM;
	t->v[t->n].field = -1;
	t->v[t->n].order = t->n;
	t->v[t->n++].cost = cost;
	return 0;
}

/* Balanced join of t->v[lo..hi) with op, so that SQLite's expression depth stays log n. */
int sg_join(struct de_buf *b, const struct sg_terms *t, size_t lo, size_t hi, const char *op)
{
	int rc;

	if (hi - lo == 1)
		return de_buf_puts(b, t->v[lo].sql);
	size_t mid = lo + (hi - lo) / 2;
	if ((rc = de_buf_putc(b, '(')) < 0 || (rc = sg_join(b, t, lo, mid, op)) < 0 ||
	    (rc = de_buf_printf(b, " %s ", op)) < 0 || (rc = sg_join(b, t, mid, hi, op)) < 0)
		return rc;
	return de_buf_putc(b, ')');
}

static int cmp_cost(const void *a, const void *b)
{
	const struct sg_term *x = a, *y = b;

	if (x->cost != y->cost)
		return (x->cost > y->cost) - (x->cost < y->cost);
	return (x->order > y->order) - (x->order < y->order);
}

/*
 * t's terms ANDed, cheapest first.  SQLite runs a test of the row alone
 * before the parent's lookup wherever it stands; so the terms from the
 * first one reading the parent on are kept together, "(...) IS TRUE", and
 * run in this order after the lookup: a cheap test of the row first, then
 * the parent's lookup and short path, then the row's long command line.
 */
static int put_and(struct de_buf *out, struct sg_terms *t)
{
	size_t k = 0;
	int rc;

	if (t->n > 1)
		qsort(t->v, t->n, sizeof(*t->v), cmp_cost);
	while (k < t->n && !t->v[k].parent)
		k++;
	if (k == t->n || t->n == 1)
		return sg_join(out, t, 0, t->n, "AND");
	if (k > 0 && ((rc = de_buf_puts(out, "(")) < 0 || (rc = sg_join(out, t, 0, k, "AND")) < 0 ||
		      (rc = de_buf_puts(out, " AND ")) < 0))
		return rc;
	if ((rc = de_buf_puts(out, "(")) < 0 || (rc = sg_join(out, t, k, t->n, "AND")) < 0 ||
	    (rc = de_buf_puts(out, ") IS TRUE")) < 0)
		return rc;
	return k > 0 ? de_buf_puts(out, ")") : 0;
}

/* ---- what parts imply, and testing it first ------------------------------------------ */

void sg_facts_clear(struct sg_facts *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < SG_MAX_FIELDS; i++)
		sg_alts_clear(&m->a[i]);
	memset(m, 0, sizeof(*m));
}

/* Clear v[0..n) and free v. */
static void facts_free(struct sg_facts *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		sg_facts_clear(&v[i]);
	free(v);
}

/* *dst AND src: for each field, the narrower of the two. */
static int imp_and(struct sg_facts *dst, const struct sg_facts *src)
{
	for (size_t f = 0; f < SG_MAX_FIELDS; f++) {
		if (!src->has[f] || (dst->has[f] && dst->a[f].n <= src->a[f].n))
			continue;
		sg_alts_clear(&dst->a[f]);
		dst->has[f] = false;
		if (sg_alts_append(&dst->a[f], &src->a[f]) < 0) {
			sg_alts_clear(&dst->a[f]);
			return -ENOMEM;
		}
		dst->has[f] = true;
		dst->ci[f] = src->ci[f];
	}
	return 0;
}

/* *dst OR src: the fields both imply, their alternatives together (folded if either is). */
static void imp_or(struct sg_facts *dst, const struct sg_facts *src)
{
	for (size_t f = 0; f < SG_MAX_FIELDS; f++) {
		if (dst->has[f] && src->has[f] && sg_alts_append(&dst->a[f], &src->a[f]) == 0) {
			dst->ci[f] |= src->ci[f];
			continue;
		}
		sg_alts_clear(&dst->a[f]);
		dst->has[f] = false;
	}
}

static int imp_copy(struct sg_facts *dst, const struct sg_facts *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->cost = src->cost;
	dst->parent = src->parent;
	return imp_and(dst, src);
}

/* The cheapest field imp says something of, or -1. */
static int imp_best(const struct sg_ctx *c, const struct sg_facts *imp)
{
	int best = -1;

	for (size_t f = 0; f < c->ls->nfields && f < SG_MAX_FIELDS; f++)
		if (imp->has[f] && (best < 0 || c->ls->fields[f].cost < c->ls->fields[best].cost))
			best = (int)f;
	return best;
}

/*
 * An OR of several tests, or_sql, over kids whose implications are
 * kimps[0..nk), to out.  Most rows match none of the tests; one cheap test
 * of what they need rejects those first:
 *   - when every kid implies something of one field, the union of that:
 *     "(regexp(<union>, col) AND (or_sql))";
 *   - else when every kid implies something of some field and fewer fields
 *     than kids are involved, each kid's cheapest field, united per field:
 *     "((regexp(<u1>, col1) OR regexp(<u2>, col2)) AND (or_sql))";
 *   - else or_sql alone.
 * Each is implied by or_sql, so the result means the same.
 */
static int put_or(struct sg_ctx *c, struct de_buf *out, const char *or_sql,
		  const struct sg_facts *kimps, size_t nk, int *cost)
{
	struct sg_facts cover = {0}, all = {0};
	struct de_buf pre = DE_BUF_INIT(SG_MAX_SQL);
	size_t nfields = 0;
	int rc = 0, best;

	*cost = 0;
	for (size_t k = 0; k < nk; k++)
		*cost += kimps[k].cost; /* a row matching none pays every test */

	/* what every kid implies */
	for (size_t k = 0; k < nk && rc == 0; k++) {
		if (k == 0)
			rc = imp_copy(&all, &kimps[0]);
		else
			imp_or(&all, &kimps[k]);
	}
	if (rc == 0 && (best = imp_best(c, &all)) >= 0) {
		rc = sg_put_regexp_alts(&pre, c->ls->fields[best].column, &all.a[best],
					all.ci[best]);
		*cost = c->ls->fields[best].cost + 4;
		goto emit;
	}
	/* else a cover: each kid by its cheapest field */
	for (size_t k = 0; k < nk && rc == 0; k++) {
		int f = imp_best(c, &kimps[k]);
		if (f < 0)
			goto plain;
		if (!cover.has[f])
			nfields++;
		if (sg_alts_append(&cover.a[f], &kimps[k].a[f]) < 0)
			goto plain;
		cover.has[f] = true;
		cover.ci[f] |= kimps[k].ci[f];
	}
	if (rc < 0 || nfields == 0 || nfields >= nk)
		goto plain;
	rc = de_buf_putc(&pre, '(');
	*cost = 0;
	for (size_t f = 0, done = 0; f < SG_MAX_FIELDS && rc == 0; f++) {
		if (!cover.has[f])
			continue;
		*cost += c->ls->fields[f].cost + 4;
		if (done++)
			rc = de_buf_puts(&pre, " OR ");
		if (rc == 0)
			rc = sg_put_regexp_alts(&pre, c->ls->fields[f].column, &cover.a[f],
						cover.ci[f]);
	}
	if (rc == 0)
		rc = de_buf_putc(&pre, ')');
emit:
	if (rc == 0)
		rc = de_buf_printf(out, "(%s AND %s)", pre.p, or_sql);
	goto out;
plain:
	rc = de_buf_puts(out, or_sql);
out:
	de_buf_free(&pre);
	sg_facts_clear(&cover);
	sg_facts_clear(&all);
	return rc;
}

/*
 * The OR of t's terms, whose facts are kimps[0..t->n), to out (with a test
 * first, put_or()); *imp what the OR implies, costs and reads.
 */
static int put_any(struct sg_ctx *c, struct de_buf *out, const struct sg_terms *t,
		   const struct sg_facts *kimps, struct sg_facts *imp)
{
	struct de_buf ors = DE_BUF_INIT(SG_MAX_SQL);
	int rc = 0;

	memset(imp, 0, sizeof(*imp));
	for (size_t i = 0; i < t->n && rc == 0; i++) {
		if (i == 0)
			rc = imp_copy(imp, &kimps[0]);
		else
			imp_or(imp, &kimps[i]);
		imp->parent |= kimps[i].parent;
	}
	if (rc == 0 && (rc = sg_join(&ors, t, 0, t->n, "OR")) == 0)
		rc = t->n > 1 ? put_or(c, out, ors.p, kimps, t->n, &imp->cost)
			      : de_buf_puts(out, ors.p);
	de_buf_free(&ors);
	return rc;
}

/* ---- selections and the query ---------------------------------------------------------- */

/* A map of field tests, ANDed, cheapest first; *imp what it implies. */
static int map_sql(struct sg_ctx *c, const char *path, const json_t *map, struct de_buf *out,
		   struct sg_facts *imp)
{
	struct sg_terms t = {0};
	const char *key;
	const json_t *val;
	int rc = 0;

	memset(imp, 0, sizeof(*imp));
	if (json_object_size(map) == 0)
		return sg_fail(c, path, EINVAL, "an empty selection matches nothing");
	json_object_foreach ((json_t *)map, key, val) {
		char kp[600];
		snprintf(kp, sizeof(kp), "%s.%s", path, key);
		if ((rc = sg_field_test(c, kp, key, val, &t)) < 0)
			break;
	}
	if (rc == 0) {
		if (t.n > 1)
			qsort(t.v, t.n, sizeof(*t.v), cmp_cost);
		imp->cost = t.n ? t.v[0].cost : 0;
		for (size_t i = 0; i < t.n; i++) {
			int f = t.v[i].field;
			imp->parent |= t.v[i].parent;
			if (f < 0 || f >= SG_MAX_FIELDS ||
			    (imp->has[f] && imp->a[f].n <= t.v[i].imp.n))
				continue;
			sg_alts_clear(&imp->a[f]);
			imp->a[f] = t.v[i].imp;
			memset(&t.v[i].imp, 0, sizeof(t.v[i].imp));
			imp->has[f] = true;
			imp->ci[f] = t.v[i].ci;
		}
		if ((rc = put_and(out, &t)) < 0)
			rc = sg_fail(c, path, -rc, "the selection makes too long an SQL query");
	}
	sg_terms_clear(&t);
	if (rc < 0)
		sg_facts_clear(imp);
	return rc;
}

int sg_sql_selection(struct sg_ctx *c, const char *name, const json_t *sel, struct de_buf *out,
		     struct sg_facts *imp)
{
	char path[400];
	int rc = 0;

	memset(imp, 0, sizeof(*imp));
	snprintf(path, sizeof(path), "detection.%s", name);
	if (json_is_object(sel))
		return map_sql(c, path, sel, out, imp);
	if (!json_is_array(sel) || json_array_size(sel) == 0)
		return sg_fail(c, path, json_is_array(sel) ? EINVAL : ENOTSUP,
			       json_is_array(sel)
				       ? "an empty selection matches nothing"
				       : "selection '%s' is a keyword search (values without a "
					 "field), which needs the whole event's text; daemoneye "
					 "does not keep it: name a field",
			       name);
	/* a list of maps: any of them */
	struct sg_terms t = {0};
	size_t nm = json_array_size(sel);
	struct sg_facts *kimps = calloc(nm, sizeof(*kimps));
	if (!kimps)
		return sg_fail(c, path, ENOMEM, "out of memory");
	for (size_t i = 0; i < nm && rc == 0; i++) {
		const json_t *m = json_array_get(sel, i);
		char ip[420];
		struct de_buf b = DE_BUF_INIT(SG_MAX_SQL);
		snprintf(ip, sizeof(ip), "%s[%zu]", path, i);
		if (!json_is_object(m)) {
			rc = sg_fail(c, ip, ENOTSUP,
				     "selection '%s' lists keywords (values without a field), "
				     "which need the whole event's text; daemoneye does not keep "
				     "it: name a field",
				     name);
			break;
		}
		if ((rc = map_sql(c, ip, m, &b, &kimps[i])) == 0 &&
		    (rc = sg_terms_add(&t, &b, 0)) < 0)
			rc = sg_fail(c, ip, ENOMEM, "out of memory");
		de_buf_free(&b);
	}
	if (rc == 0)
		rc = put_any(c, out, &t, kimps, imp);
	if (rc < 0 && !c->failed)
		rc = sg_fail(c, path, -rc, "the selection makes too long an SQL query");
	facts_free(kimps, nm);
	sg_terms_clear(&t);
	if (rc < 0)
		sg_facts_clear(imp);
	return rc;
}

/* The condition below n into b, and what is known of it into *imp. */
static int cond_sql(struct sg_ctx *c, const struct sg_node *n, char *const *sels,
		    const struct sg_facts *imps, struct de_buf *b, struct sg_facts *imp)
{
	int rc = 0;

	memset(imp, 0, sizeof(*imp));
	switch (n->op) {
	case SG_N_SEL:
		if ((rc = de_buf_putc(b, '(')) == 0 && (rc = de_buf_puts(b, sels[n->sel])) == 0)
			rc = de_buf_putc(b, ')');
		return rc < 0 ? rc : imp_copy(imp, &imps[n->sel]);
	case SG_N_NOT: {
		struct sg_facts kid = {0}; /* (cond_sql not reached: nothing to clear) */
		if ((rc = de_buf_putc(b, '(')) == 0 &&
		    (rc = cond_sql(c, n->kids[0], sels, imps, b, &kid)) == 0)
			rc = de_buf_puts(b, ") IS NOT TRUE");
		/* implies nothing; and is true of most rows, so in an AND it
		 * goes after the tests that reject them */
		imp->cost = kid.cost + 1000;
		imp->parent = kid.parent;
		sg_facts_clear(&kid);
		return rc;
	}
	case SG_N_AND:
	case SG_N_OR:
		break;
	}
	struct sg_terms t = {0};
	struct sg_facts *kimps = calloc(n->nkids, sizeof(*kimps));
	if (!kimps)
		return -ENOMEM;
	for (size_t i = 0; i < n->nkids && rc == 0; i++) {
		struct de_buf kb = DE_BUF_INIT(SG_MAX_SQL);
		if ((rc = cond_sql(c, n->kids[i], sels, imps, &kb, &kimps[i])) == 0 &&
		    (rc = sg_terms_add(&t, &kb, kimps[i].cost)) == 0)
			t.v[t.n - 1].parent = kimps[i].parent;
		de_buf_free(&kb);
	}
	if (rc == 0 && n->op == SG_N_OR) {
		rc = put_any(c, b, &t, kimps, imp);
	} else if (rc == 0) { /* AND: each kid's facts hold */
		for (size_t i = 0; i < n->nkids && rc == 0; i++) {
			rc = i == 0 ? imp_copy(imp, &kimps[0]) : imp_and(imp, &kimps[i]);
			imp->parent |= kimps[i].parent;
		}
		if (rc == 0)
			rc = put_and(b, &t);
		imp->cost = t.n ? t.v[0].cost : 0; /* the first after sorting */
	}
	facts_free(kimps, n->nkids);
	sg_terms_clear(&t);
	if (rc < 0)
		sg_facts_clear(imp);
	return rc;
}

int sg_sql_query(struct sg_ctx *c, const struct sg_node *cond, char *const *sels,
		 const struct sg_facts *imps, size_t n, char **out)
{
	struct de_buf b = DE_BUF_INIT(SG_MAX_SQL);
	const struct sg_logsource *l = c->ls;
	struct sg_facts imp;
	int rc;

	(void)n;
	rc = de_buf_printf(&b, "SELECT %s%s\nFROM %s%s%s\nWHERE %s%s", l->select,
			   c->uses_parent ? l->parent_select : "", l->from,
			   c->uses_parent && *l->parent_join ? "\n  " : "",
			   c->uses_parent ? l->parent_join : "", l->where ? l->where : "",
			   l->where ? " AND (" : "");
	if (rc == 0 && (rc = cond_sql(c, cond, sels, imps, &b, &imp)) == 0) {
		sg_facts_clear(&imp);
		if (l->where)
			rc = de_buf_putc(&b, ')');
	}
	if (rc < 0) {
		de_buf_free(&b);
		return sg_fail(c, "detection.condition", -rc,
			       rc == -E2BIG ? "the rule makes an SQL query longer than %d bytes"
					    : "out of memory (%d)",
			       SG_MAX_SQL);
	}
	if (!(*out = de_buf_steal(&b)))
		return sg_fail(c, "detection.condition", ENOMEM, "out of memory");
	return 0;
}
