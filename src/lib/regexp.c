/*
 * regexp.c — the sandbox's REGEXP function over PCRE2 (see regexp.h).
 *
 * One cache per connection holds the compiled patterns, the match context
 * with its limits, one JIT stack and one match-data block (we only ask
 * whether there is a match, so a single ovector pair is enough: PCRE2 then
 * returns 0 for "matched, ovector too small", which counts as a match).
 * A constant pattern's cache entry is also handed to SQLite as auxiliary
 * data of the statement, so most calls skip the lookup.  Entries are never
 * evicted while the connection lives, because a statement may hold one as
 * auxiliary data; once the cache is full, a new pattern is compiled for the
 * statement alone and handed over to SQLite, which frees it.
 *
 * The patterns the Sigma compiler writes (sets of literals and globs) are
 * matched by a fast path instead (regexp_set.c): the same verdict, in time
 * linear in the value and without PCRE2's limits.  Every pattern is also
 * compiled by PCRE2, which checks it.
 */
#include "daemoneye/regexp.h"
#include "regexp_int.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <pcre2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The compile options of every pattern: bytes, not UTF (see regexp.h). */
#define COMPILE_OPTIONS (PCRE2_NEVER_UTF | PCRE2_NEVER_UCP)

struct re_entry {
	uint64_t hash;	    /* of the pattern bytes */
	char *pattern;	    /* owned copy */
	size_t len;	    /* its length */
	pcre2_code *code;   /* owned */
	struct re_set *set; /* owned; the fast path, NULL when PCRE2 matches */
	bool owned_by_aux;  /* not in the cache: SQLite frees it with the statement */
	struct re_cache *c; /* the cache whose contexts it uses */
};

struct re_cache {
	struct re_entry **entries; /* owned */
	size_t n, cap;
	pcre2_compile_context *cctx;
	pcre2_match_context *mctx;
	pcre2_jit_stack *jstack; /* NULL: the JIT's default stack */
	pcre2_match_data *md;
};

static uint64_t hash_bytes(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
	return h;
}

static void entry_free(void *p)
{
	struct re_entry *e = p;

	if (!e)
		return;
	re_set_free(e->set);
	pcre2_code_free(e->code);
	free(e->pattern);
	free(e);
}

static void cache_free(void *p)
{
	struct re_cache *c = p;

	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		entry_free(c->entries[i]);
	free(c->entries);
	pcre2_match_data_free(c->md);
	pcre2_jit_stack_free(c->jstack);
	pcre2_match_context_free(c->mctx);
	pcre2_compile_context_free(c->cctx);
	free(c);
}

static pcre2_compile_context *compile_context(void)
{
	pcre2_compile_context *cctx = pcre2_compile_context_create(NULL);

	if (cctx) {
		pcre2_set_newline(cctx, PCRE2_NEWLINE_LF);
		pcre2_set_max_pattern_length(cctx, DE_REGEXP_MAX_PATTERN);
	}
	return cctx;
}

static struct re_cache *cache_new(void)
{
	struct re_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->cctx = compile_context();
	c->mctx = pcre2_match_context_create(NULL);
	c->md = pcre2_match_data_create(1, NULL);
	if (!c->cctx || !c->mctx || !c->md) {
		cache_free(c);
		return NULL;
	}
	pcre2_set_match_limit(c->mctx, DE_REGEXP_MATCH_LIMIT);
	pcre2_set_depth_limit(c->mctx, DE_REGEXP_DEPTH_LIMIT);
	pcre2_set_heap_limit(c->mctx, DE_REGEXP_HEAP_LIMIT);
	/* without a JIT (other platforms) the interpreter runs under the same limits */
	c->jstack = pcre2_jit_stack_create((PCRE2_SIZE)32 * 1024, DE_REGEXP_JIT_STACK, NULL);
	if (c->jstack)
		pcre2_jit_stack_assign(c->mctx, NULL, c->jstack);
	return c;
}

/* Compile pattern[0..len): the code, or NULL with why[] and *offset filled. */
static pcre2_code *compile(pcre2_compile_context *cctx, const char *pattern, size_t len, bool jit,
			   char *why, size_t whylen, size_t *offset)
{
	int ec = 0;
	PCRE2_SIZE off = 0;
	pcre2_code *code =
		pcre2_compile((PCRE2_SPTR)pattern, len, COMPILE_OPTIONS, &ec, &off, cctx);

	if (!code) {
		if (pcre2_get_error_message(ec, (PCRE2_UCHAR *)why, whylen) < 0)
			snprintf(why, whylen, "PCRE2 error %d", ec);
		*offset = off;
		return NULL;
	}
	/* the JIT is an optimisation: without it the interpreter does the same */
	if (jit)
		pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
	return code;
}

static struct re_entry *lookup(struct re_cache *c, const char *p, size_t n, uint64_t h)
{
	for (size_t i = 0; i < c->n; i++) {
		struct re_entry *e = c->entries[i];
		if (e->hash == h && e->len == n && memcmp(e->pattern, p, n) == 0)
			return e;
	}
	return NULL;
}

/* A new entry for p (cached unless the cache is full), or NULL with the SQL error set. */
static struct re_entry *entry_new(sqlite3_context *ctx, struct re_cache *c, const char *p, size_t n,
				  uint64_t h)
{
	char why[256];
	size_t off = 0;
	struct re_entry *e;

	if (n > DE_REGEXP_MAX_PATTERN) {
		char msg[128];
		snprintf(msg, sizeof(msg),
			 "regexp: the pattern is %zu bytes long; at most %zu are allowed", n,
			 DE_REGEXP_MAX_PATTERN);
		sqlite3_result_error(ctx, msg, -1);
		return NULL;
	}
	if (!(e = calloc(1, sizeof(*e))) || !(e->pattern = malloc(n + 1))) {
		free(e);
		sqlite3_result_error_nomem(ctx);
		return NULL;
	}
	memcpy(e->pattern, p, n);
	e->pattern[n] = '\0';
	e->len = n;
	e->hash = h;
	e->c = c;
	if (!(e->code = compile(c->cctx, p, n, true, why, sizeof(why), &off))) {
		char msg[400];
		snprintf(msg, sizeof(msg), "regexp: PCRE2 rejects the pattern at offset %zu: %s",
			 off, why);
		sqlite3_result_error(ctx, msg, -1);
		entry_free(e);
		return NULL;
	}
	e->set = re_set_parse(p, n);
	if (c->n < DE_REGEXP_MAX_CACHED) {
		if (c->n == c->cap) {
			size_t nc = c->cap ? c->cap * 2 : 16;
			struct re_entry **ne = realloc(c->entries, nc * sizeof(struct re_entry *));
			if (!ne) {
				entry_free(e);
				sqlite3_result_error_nomem(ctx);
				return NULL;
			}
			c->entries = ne;
			c->cap = nc;
		}
		c->entries[c->n++] = e;
	} else {
		e->owned_by_aux = true;
	}
	return e;
}

static const char *limit_name(int rc)
{
	switch (rc) {
	case PCRE2_ERROR_MATCHLIMIT:
		return "match limit";
	case PCRE2_ERROR_DEPTHLIMIT:
		return "depth limit";
	case PCRE2_ERROR_HEAPLIMIT:
		return "heap limit";
	case PCRE2_ERROR_JIT_STACKLIMIT:
		return "JIT stack limit";
	default:
		return NULL;
	}
}

static void regexp_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	struct re_cache *c = sqlite3_user_data(ctx);
	struct re_entry *e = sqlite3_get_auxdata(ctx, 0);
	bool kept = e != NULL; /* by the statement already */
	const char *v;
	int rc, vn;

	(void)argc;
	if (sqlite3_value_type(argv[0]) == SQLITE_NULL ||
	    sqlite3_value_type(argv[1]) == SQLITE_NULL)
		return; /* NULL */
	if (!e) {
		const char *p = (const char *)sqlite3_value_text(argv[0]);
		size_t n = (size_t)sqlite3_value_bytes(argv[0]);
		uint64_t h;
		if (!p) {
			sqlite3_result_error_nomem(ctx);
			return;
		}
		h = hash_bytes(p, n);
		if (!(e = lookup(c, p, n, h)) && !(e = entry_new(ctx, c, p, n, h)))
			return;
	}
	v = (const char *)sqlite3_value_text(argv[1]);
	vn = sqlite3_value_bytes(argv[1]);
	if (!v) {
		sqlite3_result_error_nomem(ctx);
		goto keep;
	}
	if (e->set) {
		sqlite3_result_int(ctx, re_set_match(e->set, (const unsigned char *)v, (size_t)vn));
		goto keep;
	}
	rc = pcre2_match(e->code, (PCRE2_SPTR)v, (PCRE2_SIZE)vn, 0, 0, c->md, c->mctx);
	if (rc >= 0) {
		sqlite3_result_int(ctx, 1);
	} else if (rc == PCRE2_ERROR_NOMATCH) {
		sqlite3_result_int(ctx, 0);
	} else {
		char msg[512], why[160];
		const char *lim = limit_name(rc);
		if (lim) {
			snprintf(
				msg, sizeof(msg),
				"regexp: stopped at PCRE2's %s on a value of %d bytes (the pattern "
				"backtracks too much)",
				lim, vn);
		} else {
			if (pcre2_get_error_message(rc, (PCRE2_UCHAR *)why, sizeof(why)) < 0)
				snprintf(why, sizeof(why), "PCRE2 error %d", rc);
			snprintf(msg, sizeof(msg), "regexp: matching failed: %s", why);
		}
		sqlite3_result_error(ctx, msg, -1);
	}
keep:
	/* last: SQLite may free an entry it owns at once */
	if (!kept)
		sqlite3_set_auxdata(ctx, 0, e, e->owned_by_aux ? entry_free : NULL);
}

int de_regexp_register(sqlite3 *db, struct de_error *err)
{
	struct re_cache *c = cache_new();
	int rc;

	if (!c)
		return de_error_set(err, DE_ERR_DETECTION, ENOMEM, "out of memory");
	/* on failure SQLite calls cache_free itself */
	rc = sqlite3_create_function_v2(db, "regexp", 2,
					SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, c,
					regexp_fn, NULL, NULL, cache_free);
	if (rc != SQLITE_OK)
		return de_error_set(err, DE_ERR_DETECTION, rc == SQLITE_NOMEM ? ENOMEM : EIO,
				    "cannot register regexp(): %s", sqlite3_errmsg(db));
	return 0;
}

int de_regexp_check(const char *pattern, size_t len, struct de_error *err)
{
	pcre2_compile_context *cctx;
	pcre2_code *code;
	char why[256];
	size_t off = 0;

	if (len > DE_REGEXP_MAX_PATTERN)
		return de_error_set(
			err, DE_ERR_VALIDATION, E2BIG,
			"the regular expression is %zu bytes long; at most %zu are allowed", len,
			DE_REGEXP_MAX_PATTERN);
	if (!(cctx = compile_context()))
		return de_error_set(err, DE_ERR_VALIDATION, ENOMEM, "out of memory");
	code = compile(cctx, pattern, len, false, why, sizeof(why), &off);
	pcre2_compile_context_free(cctx);
	if (!code)
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "PCRE2 rejects the pattern at offset %zu: %s", off, why);
	pcre2_code_free(code);
	return 0;
}

bool de_regexp_fast(const char *pattern, size_t len)
{
	struct re_set *set = re_set_parse(pattern, len);
	bool yes = set != NULL;

	re_set_free(set);
	return yes;
}
