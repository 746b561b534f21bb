/*
 * regexp_set.c — regexp()'s fast path (regexp_int.h) for the patterns the
 * Sigma compiler writes: a set of alternatives, each a literal found
 * anywhere, at the start, at the end or as the whole value, or a glob of
 * fixed parts separated by gaps.  Their meaning is PCRE2's; only the time
 * differs: PCRE2 tries every alternative at every position that can start
 * one, and counts the steps of lazy gaps against its match limit, which a
 * long command line would reach; here literals are found in one pass and
 * globs in time linear in the value, with no limit to reach.
 *
 * The pattern text taken (anything else goes to PCRE2):
 *
 *   pattern := flags? alts | flags? "(?:" alts ")"    flags := "(?" [si]+ ")"
 *   alts    := alt ("|" alt)*
 *   alt     := "\A"? part* "\z"?  (not empty)
 *   part    := fixed                        at the start of the alternative
 *            | "(?>" gap "*?" fixed ")"     the leftmost place for fixed
 *            | gap "*" fixed "\z"           the end, last
 *   gap     := "." (any byte; needs the s flag) | "(?:" DE_REGEXP_CHAR ")"
 *   fixed   := (byte | DE_REGEXP_CHAR)+
 *   byte    := any but \ ^ $ . | ? * + ( ) [ ] { }, or "\" + punctuation,
 *              or "\x" + two hex digits
 *
 * An alternative with gaps or DE_REGEXP_CHAR must start with \A.  Why the
 * verdict is PCRE2's: a lazy gap inside an atomic group takes the leftmost
 * place where its fixed part matches, and never another; the parts before
 * it are fixed or atomic too, so when what follows fails, PCRE2 fails the
 * alternative at that start, which \A makes the only one — exactly the
 * loop below.  A greedy gap before the last part and \z may end at any
 * place a gap can reach; the loop tries each.  A byte gap reaches every
 * byte position, a character gap every boundary of the value decoded one
 * DE_REGEXP_CHAR at a time (a valid UTF-8 sequence, else one byte), and
 * DE_REGEXP_CHAR itself consumes what de_utf8_seq_len() says (the same
 * strict UTF-8).  (?i) folds ASCII letters, as PCRE2 without UTF does.
 * tests/test_regexp.c compares both on random sets, globs and values.
 */
#include "regexp_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/regexp.h"
#include "daemoneye/text.h"

enum alt_kind { K_ANY, K_START, K_END, K_EXACT, K_GLOB };
enum gap { G_NONE, G_LAZY, G_GREEDY };

struct part {
	enum gap gap;
	bool char_gap; /* the gap is made of characters, not bytes */
	size_t off, n; /* the fixed part: units[off..off+n) */
};

struct alt {
	enum alt_kind kind;
	size_t off, n;	    /* the units: a literal's bytes (K_ANY...K_EXACT) */
	uint16_t gram;	    /* first two bytes (K_ANY, n >= 2) */
	struct part *parts; /* K_GLOB, owned */
	size_t nparts;
	bool end; /* K_GLOB: ends with \z */
};

#define ALT_MAX	 4096 /* alternatives of one pattern */
#define RARE_MAX 3    /* literals found one by one by their rarest byte */

struct re_set {
	unsigned char fold[256]; /* ASCII letters lowered under (?i), else identity */
	unsigned char *bytes;	 /* every unit's byte, folded */
	bool *one;		 /* per unit: DE_REGEXP_CHAR rather than a byte */
	struct alt *alts;	 /* K_ANY of n >= 2 first, by gram; then the others */
	size_t n, nany2;
	bool has_other;	     /* alternatives other than K_ANY */
	bool has_glob;	     /* K_GLOB alternatives */
	bool last[256];	     /* (folded) last bytes of K_END and K_EXACT literals */
	bool first[256];     /* (folded) first bytes of K_START literals */
	bool empty_exact;    /* an empty K_EXACT */
	uint64_t gram[1024]; /* 65536-bit filter: grams that start a K_ANY literal */
	bool one_byte[256];  /* first bytes of one-byte K_ANY literals */
	bool has_one_byte;
	bool stop[256];	 /* bytes (unfolded) that may start a K_ANY literal */
	char stops[256]; /* the same, NUL-ended, for strcspn() */
	size_t nstops;
	/* when every K_ANY literal has 3 bytes or more: Wu and Manber's shift
	 * table over pairs of (folded) bytes, and the shortest length */
	uint8_t *shift; /* 65536 entries, owned; NULL when not used */
	size_t minlen;
	/* a few K_ANY literals: each found by memchr() of its rarest byte (in
	 * both cases when folded), at rare[i] within it */
	bool by_rare;
	size_t rare[RARE_MAX];
	bool rare_ci[RARE_MAX]; /* a letter, searched for in both cases */
};

void re_set_free(struct re_set *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n; i++)
		free(set->alts[i].parts);
	free(set->alts);
	free(set->bytes);
	free(set->one);
	free(set->shift);
	free(set);
}

/* ---- parsing --------------------------------------------------------------------- */

#define CHAR_GAP "(?:" DE_REGEXP_CHAR ")"

struct parser {
	const unsigned char *p;
	size_t n, i;
	struct re_set *set;
	size_t nunits;
	bool dotall;
};

static bool at(const struct parser *ps, const char *tok)
{
	size_t l = strlen(tok);
	return ps->n - ps->i >= l && memcmp(ps->p + ps->i, tok, l) == 0;
}

/* One fixed part's units, appended; how many (0: none there; -1: not our grammar). */
static long fixed(struct parser *ps)
{
	size_t start = ps->nunits;

	while (ps->i < ps->n) {
		const unsigned char *p = ps->p;
		size_t i = ps->i;
		unsigned char c = p[i];
		if (at(ps, DE_REGEXP_CHAR)) {
			ps->set->one[ps->nunits] = true;
			ps->set->bytes[ps->nunits++] = 0;
			ps->i += strlen(DE_REGEXP_CHAR);
			continue;
		}
		if (c == '\\' && i + 1 < ps->n) {
			unsigned char d = p[i + 1];
			if (d == 'z' || d == 'A')
				break;
			if (d == 'x' && i + 3 < ps->n && de_hex_digit(p[i + 2]) >= 0 &&
			    de_hex_digit(p[i + 3]) >= 0) {
				ps->set->bytes[ps->nunits++] =
					ps->set->fold[de_hex_digit(p[i + 2]) * 16 +
						      de_hex_digit(p[i + 3])];
				ps->i += 4;
				continue;
			}
			if (d > 0x20 && d < 0x7f && !isalnum(d)) {
				ps->set->bytes[ps->nunits++] = ps->set->fold[d];
				ps->i += 2;
				continue;
			}
			return -1;
		}
		if (c == '(' || c == '|' || c == ')' || c == '.')
			break; /* a gap, the next alternative, the end of the group */
		if (c == '\\' || strchr("^$?*+[]{}", c) || !c)
			return -1;
		ps->set->bytes[ps->nunits++] = ps->set->fold[c];
		ps->i++;
	}
	return (long)(ps->nunits - start);
}

static int add_part(struct alt *a, enum gap gap, bool char_gap, size_t off, size_t n)
{
	struct part *np = realloc(a->parts, (a->nparts + 1) * sizeof(*np));

	if (!np)
		return -ENOMEM;
	a->parts = np;
	np[a->nparts++] = (struct part){gap, char_gap, off, n};
	return 0;
}

/* One alternative into ps->set->alts[n]; 0, or -1 when it is not our grammar. */
static int alternative(struct parser *ps, bool group)
{
	struct re_set *set = ps->set;
	struct alt *a = &set->alts[set->n];
	bool start = false, any_one = false;
	long k;

	memset(a, 0, sizeof(*a));
	set->n++; /* so that re_set_free() frees its parts */
	if (at(ps, "\\A")) {
		start = true;
		ps->i += 2;
	}
	for (;;) {
		size_t off = ps->nunits;
		if (at(ps, "\\z")) {
			ps->i += 2;
			a->end = true;
			break;
		}
		if (ps->i == ps->n || ps->p[ps->i] == '|' || (group && ps->p[ps->i] == ')'))
			break;
		if (at(ps, "(?>") && !at(ps, DE_REGEXP_CHAR)) { /* a lazy gap, then fixed */
			bool cg;
			ps->i += 3;
			if (at(ps, ".*?") && ps->dotall) {
				cg = false;
				ps->i += 3;
			} else if (at(ps, CHAR_GAP "*?")) {
				cg = true;
				ps->i += strlen(CHAR_GAP "*?");
			} else {
				return -1;
			}
			if ((k = fixed(ps)) <= 0 || !at(ps, ")"))
				return -1;
			ps->i++;
			if (add_part(a, G_LAZY, cg, off, (size_t)k) < 0)
				return -1;
			continue;
		}
		if ((at(ps, ".*") && ps->dotall) || at(ps, CHAR_GAP "*")) { /* greedy, last */
			bool cg = !at(ps, ".*");
			ps->i += cg ? strlen(CHAR_GAP "*") : 2;
			if (at(ps, "?") || (k = fixed(ps)) <= 0 || !at(ps, "\\z"))
				return -1;
			if (add_part(a, G_GREEDY, cg, off, (size_t)k) < 0)
				return -1;
			continue; /* \z next */
		}
		if (a->nparts || (k = fixed(ps)) <= 0)
			return -1; /* fixed parts follow nothing but the start */
		if (add_part(a, G_NONE, false, off, (size_t)k) < 0)
			return -1;
	}
	for (size_t i = 0; i < a->nparts; i++)
		for (size_t u = 0; u < a->parts[i].n; u++)
			any_one |= set->one[a->parts[i].off + u];
	if (a->nparts == 0) {
		if (!start)
			return -1; /* empty */
		a->kind = a->end ? K_EXACT : K_GLOB;
		return 0;
	}
	if (a->nparts == 1 && a->parts[0].gap == G_NONE && !any_one) {
		a->off = a->parts[0].off;
		a->n = a->parts[0].n;
		a->kind = start && a->end ? K_EXACT : start ? K_START : a->end ? K_END : K_ANY;
		free(a->parts);
		a->parts = NULL;
		a->nparts = 0;
		return 0;
	}
	if (!start)
		return -1;
	a->kind = K_GLOB;
	return 0;
}

/*
 * How common a byte is in command lines and paths (higher: more common):
 * space, '/', '-', then letters by their frequency in English, '=' and '.',
 * digits and a little punctuation; anything else is rare.  A letter
 * searched for in both cases counts double.
 */
static int byte_rank(unsigned char c, bool both_cases)
{
	static const char freq[] = "zqxjkvbpygfwmucldrhsnioate"; /* rarest first */
	const char *f;

	if (c == ' ')
		return 40;
	if (c == '/' || c == '-')
		return 36;
	if (isalpha(c) && (f = strchr(freq, tolower(c))))
		return (int)(f - freq) / 2 + 8 + (both_cases ? 6 : 0);
	if (c == '=' || c == '.')
		return 12;
	if (isdigit(c) || c == '_' || c == ':' || c == ',')
		return 10;
	return 1;
}

static int cmp_alt(const void *x, const void *y)
{
	const struct alt *a = x, *b = y;
	int ka = a->kind == K_ANY && a->n >= 2 ? 0 : 1, kb = b->kind == K_ANY && b->n >= 2 ? 0 : 1;

	if (ka != kb)
		return ka - kb;
	return (a->gram > b->gram) - (a->gram < b->gram);
}

struct re_set *re_set_parse(const char *pat, size_t n)
{
	struct parser ps = {.p = (const unsigned char *)pat, .n = n};
	struct re_set *set = calloc(1, sizeof(*set));
	bool ci = false, group = false;

	if (!set || !(set->bytes = malloc(n + 1)) || !(set->one = calloc(n + 1, sizeof(bool))) ||
	    !(set->alts = calloc(n / 2 + 1, sizeof(*set->alts))))
		goto no;
	ps.set = set;
	if (n >= 3 && ps.p[0] == '(' && ps.p[1] == '?' && (ps.p[2] == 's' || ps.p[2] == 'i')) {
		for (ps.i = 2; ps.i < n && (ps.p[ps.i] == 's' || ps.p[ps.i] == 'i'); ps.i++) {
			ci |= ps.p[ps.i] == 'i';
			ps.dotall |= ps.p[ps.i] == 's';
		}
		if (ps.i >= n || ps.p[ps.i] != ')')
			goto no;
		ps.i++;
	}
	for (int c = 0; c < 256; c++)
		set->fold[c] = (unsigned char)(ci && c >= 'A' && c <= 'Z' ? c + 32 : c);
	if (at(&ps, "(?:") && !at(&ps, CHAR_GAP)) {
		group = true;
		ps.i += 3;
	}
	for (;;) {
		if (set->n >= ALT_MAX || alternative(&ps, group) < 0)
			goto no;
		if (at(&ps, "|")) {
			ps.i++;
			continue;
		}
		if (group && at(&ps, ")")) {
			ps.i++;
			group = false;
		}
		if (ps.i == n && !group)
			break;
		goto no;
	}
	/* the literals found anywhere: their grams, first bytes and stop bytes */
	for (size_t i = 0; i < set->n; i++) {
		struct alt *a = &set->alts[i];
		if (a->kind != K_ANY) {
			set->has_other = true;
			set->has_glob |= a->kind == K_GLOB;
			if (a->kind == K_START)
				set->first[set->bytes[a->off]] = true;
			else if ((a->kind == K_END || a->kind == K_EXACT) && a->n)
				set->last[set->bytes[a->off + a->n - 1]] = true;
			set->empty_exact |= a->kind == K_EXACT && !a->n;
		} else if (a->n == 1) {
			set->one_byte[set->bytes[a->off]] = true;
			set->has_one_byte = true;
		} else {
			a->gram = (uint16_t)(set->bytes[a->off] << 8 | set->bytes[a->off + 1]);
			set->gram[a->gram >> 6] |= 1ull << (a->gram & 63);
			set->nany2++;
		}
	}
	qsort(set->alts, set->n, sizeof(*set->alts), cmp_alt);
	for (int c = 1; c < 256; c++) {
		bool starts = set->one_byte[set->fold[c]];
		for (size_t i = 0; !starts && i < set->nany2; i++)
			starts = set->bytes[set->alts[i].off] == set->fold[c];
		set->stop[c] = starts;
		if (starts)
			set->stops[set->nstops++] = (char)c;
	}
	/*
	 * Wu-Manber: slide a window of the shortest literal's length; the pair
	 * of bytes at its end says how far the nearest literal that could end
	 * there is (0: one could); only then are literals compared, those whose
	 * first pair is the window's.  Worth it when the window is at least 3
	 * and many bytes can start a literal (with few, strcspn() finds them
	 * faster).
	 */
	/*
	 * A few literals are found fastest by memchr() of one byte of each that
	 * the text has seldom (byte_rank()).
	 */
	if (set->nany2 && set->nany2 <= RARE_MAX && !set->has_one_byte) {
		set->by_rare = true;
		for (size_t i = 0; i < set->nany2; i++) {
			const struct alt *a = &set->alts[i];
			int best_rank = 999;
			for (size_t k = 0; k < a->n; k++) {
				unsigned char c = set->bytes[a->off + k];
				bool both = ci && isalpha(c);
				int r = byte_rank(c, both);
				if (r < best_rank) {
					best_rank = r;
					set->rare[i] = k;
					set->rare_ci[i] = both;
				}
			}
		}
	}
	set->minlen = SIZE_MAX;
	for (size_t i = 0; i < set->nany2; i++)
		set->minlen = set->alts[i].n < set->minlen ? set->alts[i].n : set->minlen;
	if (set->nany2 && !set->has_one_byte && set->minlen >= 3 && set->minlen <= 255 &&
	    set->nstops > 4 && (set->shift = malloc(65536))) {
		size_t m = set->minlen;
		memset(set->shift, (int)(m - 1), 65536);
		for (size_t i = 0; i < set->nany2; i++) {
			const unsigned char *b = set->bytes + set->alts[i].off;
			for (size_t q = 1; q < m; q++) {
				uint16_t blk = (uint16_t)(b[q - 1] << 8 | b[q]);
				if (set->shift[blk] > m - 1 - q)
					set->shift[blk] = (uint8_t)(m - 1 - q);
			}
		}
	}
	return set;
no:
	re_set_free(set);
	return NULL;
}

/* ---- matching ---------------------------------------------------------------------- */

/* One DE_REGEXP_CHAR at s[0..n), n > 0: its length. */
static size_t char_len(const unsigned char *s, size_t n)
{
	size_t l = de_utf8_seq_len((const char *)s, n);
	return l ? l : 1;
}

static bool lit_at(const struct re_set *set, const struct alt *a, const unsigned char *s)
{
	for (size_t i = 0; i < a->n; i++)
		if (set->fold[s[i]] != set->bytes[a->off + i])
			return false;
	return true;
}

/* The fixed part pt at s[q..n): true with *end after it. */
static bool fixed_at(const struct re_set *set, const struct part *pt, const unsigned char *s,
		     size_t n, size_t q, size_t *end)
{
	for (size_t u = pt->off; u < pt->off + pt->n; u++) {
		if (q >= n)
			return false;
		if (set->one[u])
			q += char_len(s + q, n - q);
		else if (set->fold[s[q++]] != set->bytes[u])
			return false;
	}
	*end = q;
	return true;
}

static bool glob_match(const struct re_set *set, const struct alt *a, const unsigned char *s,
		       size_t n)
{
	size_t pos = 0, end;

	for (size_t k = 0; k < a->nparts; k++) {
		const struct part *pt = &a->parts[k];
		size_t q = pos;
		switch (pt->gap) {
		case G_NONE:
			if (!fixed_at(set, pt, s, n, pos, &end))
				return false;
			pos = end;
			break;
		case G_LAZY:
		case G_GREEDY:
			for (;;) {
				if (fixed_at(set, pt, s, n, q, &end) &&
				    (pt->gap == G_LAZY || end == n))
					break;
				if (q >= n)
					return false;
				q += pt->char_gap ? char_len(s + q, n - q) : 1;
			}
			pos = end;
			break;
		}
	}
	return !a->end || pos == n;
}

/* Does a K_ANY literal with the pair of bytes at s[i] start there? */
static bool any_at(const struct re_set *set, const unsigned char *s, size_t n, size_t i)
{
	uint16_t g = (uint16_t)(set->fold[s[i]] << 8 | set->fold[s[i + 1]]);
	size_t lo = 0, hi = set->nany2;

	if (!(set->gram[g >> 6] & (1ull << (g & 63))))
		return false;
	while (lo < hi) { /* the literals with this pair */
		size_t mid = (lo + hi) / 2;
		if (set->alts[mid].gram < g)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < set->nany2 && set->alts[lo].gram == g; lo++)
		if (set->alts[lo].n <= n - i && lit_at(set, &set->alts[lo], s + i))
			return true;
	return false;
}

/* Where the next upper-case twin of a searched letter is, between calls. */
struct twin {
	const unsigned char *at; /* its place, or NULL */
	bool searched;		 /* at is known for the range from `from` on */
};

/*
 * The first of c (or, when both, of its upper case too) in p[0..n), or
 * NULL; calls for one range come with p increasing and its end fixed.
 */
static const unsigned char *find_byte(const unsigned char *p, size_t n, unsigned char c, bool both,
				      struct twin *up)
{
	const unsigned char *lo = memchr(p, c, n);

	if (!both)
		return lo;
	if (!up->searched || (up->at && up->at < p)) {
		up->at = memchr(p, toupper(c), n);
		up->searched = true;
	}
	if (!lo || (up->at && up->at < lo))
		return up->at;
	return lo;
}

static bool by_rare(const struct re_set *set, const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < set->nany2; i++) {
		const struct alt *a = &set->alts[i];
		size_t k = set->rare[i];
		unsigned char c = set->bytes[a->off + k];
		struct twin upper = {0};
		if (a->n > n)
			continue;
		for (const unsigned char *p = s + k, *last = s + n - a->n + k; p <= last; p++) {
			if (!(p = find_byte(p, (size_t)(last - p) + 1, c, set->rare_ci[i], &upper)))
				break;
			if (lit_at(set, a, p - k))
				return true;
		}
	}
	return false;
}

static bool wu_manber(const struct re_set *set, const unsigned char *s, size_t n)
{
	size_t m = set->minlen;

	for (size_t end = m - 1; end < n;) {
		uint8_t sh = set->shift[set->fold[s[end - 1]] << 8 | set->fold[s[end]]];
		if (sh) {
			end += sh;
			continue;
		}
		if (any_at(set, s, n, end + 1 - m))
			return true;
		end++;
	}
	return false;
}

bool re_set_match(const struct re_set *set, const unsigned char *s, size_t n)
{
	/* the anchored literals are looked at only when the value's first or
	 * last byte is one of theirs */
	bool ends = n ? set->last[set->fold[s[n - 1]]] : set->empty_exact;
	bool starts = n && set->first[set->fold[s[0]]];
	if (set->has_glob || ends || starts) {
		for (size_t i = set->nany2; i < set->n; i++) {
			const struct alt *a = &set->alts[i];
			switch (a->kind) {
			case K_ANY:
				break;
			case K_START:
				if (a->n <= n && lit_at(set, a, s))
					return true;
				break;
			case K_END:
				if (a->n <= n && lit_at(set, a, s + n - a->n))
					return true;
				break;
			case K_EXACT:
				if (a->n == n && lit_at(set, a, s))
					return true;
				break;
			case K_GLOB:
				if (glob_match(set, a, s, n))
					return true;
				break;
			}
		}
	}
	if (!set->nany2 && !set->has_one_byte)
		return false;
	if (set->by_rare)
		return by_rare(set, s, n);
	if (set->shift)
		return wu_manber(set, s, n);
	/* s is NUL-terminated (sqlite3_value_text): strcspn() may skip ahead to
	 * the next byte that can start a literal; a NUL inside s stops it too */
	for (size_t i = 0; i < n; i++) {
		/* few stop bytes: strcspn's vector scan; many: a table is cheaper
		 * than a call per stop */
		if (set->nstops <= 4) {
			i += strcspn((const char *)s + i, set->stops);
			if (i >= n)
				break;
			if (!s[i])
				continue;
		} else {
			while (i < n && !set->stop[s[i]])
				i++;
			if (i >= n)
				break;
		}
		if (set->has_one_byte && set->one_byte[set->fold[s[i]]])
			return true;
		if (i + 1 < n && set->nany2 && any_at(set, s, n, i))
			return true;
	}
	return false;
}
