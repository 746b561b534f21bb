/*
 * sqltok.c — the shape of a plain filter rule (see sqltok.h).
 *
 * The tokenizer follows SQLite's tokenize.c where structure is concerned:
 * whitespace is 0x09-0x0d and space; an identifier starts with a letter,
 * '_' or a byte >= 0x80 and goes on with those, digits and '$'; a number
 * takes every identifier character and '.' after its first digit (what it
 * means does not matter here).  Quotes and comments must be terminated:
 * SQLite runs an unterminated block comment to the end of the text, and a
 * rule's expression copied into a larger statement must not swallow what
 * follows it, so such text is never a filter.
 */
#include "daemoneye/sqltok.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

enum tok_kind {
	TOK_END,    /* the end of the text */
	TOK_WORD,   /* a bare identifier or keyword */
	TOK_QUOTED, /* "...", `...` or [...] */
	TOK_STRING, /* '...' */
	TOK_NUMBER,
	TOK_VAR,   /* ?, ?N, :name, @name, $name, #name */
	TOK_PUNCT, /* one character: ( ) ; . , operators */
	TOK_BAD,   /* an unterminated comment or quote */
};

struct tok {
	enum tok_kind kind;
	size_t off, len; /* in the text */
};

static bool is_space(unsigned char c)
{
	return c == ' ' || (c >= 0x09 && c <= 0x0d);
}

static bool id_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool id_char(unsigned char c)
{
	return id_start(c) || (c >= '0' && c <= '9') || c == '$';
}

/* The token at *pos (comments and whitespace skipped); *pos moves past it. */
static struct tok next_tok(const char *s, size_t n, size_t *pos)
{
	size_t i = *pos;
	struct tok t = {TOK_END, n, 0};

	for (;;) {
		while (i < n && is_space((unsigned char)s[i]))
			i++;
		if (i + 1 < n && s[i] == '-' && s[i + 1] == '-') {
			while (i < n && s[i] != '\n')
				i++;
		} else if (i + 1 < n && s[i] == '/' && s[i + 1] == '*') {
			const char *end = NULL;
			for (size_t k = i + 2; k + 1 < n && !end; k++)
				if (s[k] == '*' && s[k + 1] == '/')
					end = s + k;
			if (!end) {
				t.kind = TOK_BAD;
				*pos = n;
				return t;
			}
			i = (size_t)(end - s) + 2;
		} else {
			break;
		}
	}
	t.off = i;
	if (i >= n) {
		*pos = n;
		return t;
	}
	unsigned char c = (unsigned char)s[i];
	if (c == '\'' || c == '"' || c == '`' || c == '[') {
		char close = c == '[' ? ']' : (char)c;
		bool done = false;
		for (i++; i < n && !done; i++) {
			if (s[i] != close)
				continue;
			if (close != ']' && i + 1 < n && s[i + 1] == close)
				i++; /* a doubled quote stands for itself */
			else
				done = true;
		}
		t.kind = !done ? TOK_BAD : c == '\'' ? TOK_STRING : TOK_QUOTED;
	} else if (id_start(c)) {
		while (i < n && id_char((unsigned char)s[i]))
			i++;
		t.kind = TOK_WORD;
	} else if ((c >= '0' && c <= '9') ||
		   (c == '.' && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '9')) {
		while (i < n && (id_char((unsigned char)s[i]) || s[i] == '.'))
			i++;
		t.kind = TOK_NUMBER;
	} else if (c == '?' || c == ':' || c == '@' || c == '$' || c == '#') {
		for (i++; i < n && id_char((unsigned char)s[i]);)
			i++;
		t.kind = TOK_VAR;
	} else {
		i++;
		t.kind = TOK_PUNCT;
	}
	t.len = i - t.off;
	*pos = i;
	return t;
}

static bool is_word(const char *s, struct tok t, const char *w)
{
	return t.kind == TOK_WORD && t.len == strlen(w) && strncasecmp(s + t.off, w, t.len) == 0;
}

static bool is_punct(const char *s, struct tok t, char ch)
{
	return t.kind == TOK_PUNCT && s[t.off] == ch;
}

/* A bare or quoted identifier naming w (quotes hold no doubled quote here). */
static bool names(const char *s, struct tok t, const char *w)
{
	size_t l = strlen(w);

	if (t.kind == TOK_QUOTED)
		return t.len == l + 2 && strncasecmp(s + t.off + 1, w, l) == 0;
	return is_word(s, t, w);
}

static bool in_list(const char *s, struct tok t, const char *const *list)
{
	for (size_t i = 0; list[i]; i++)
		if (is_word(s, t, list[i]))
			return true;
	return false;
}

/* Keywords that end the WHERE clause or start another statement part. */
static const char *const clause_words[] = {
	"select", "from",  "where",	"group",  "having", "order",  "limit", "offset",
	"window", "union", "intersect", "except", "with",   "values", NULL,
};

/* Keywords an opening parenthesis may follow inside an expression. */
static const char *const paren_words[] = {
	"in",	    "exists", "and",	"or",	   "not",	"when",	  "then",   "else",
	"case",	    "is",     "like",	"glob",	   "regexp",	"match",  "escape", "between",
	"select",   "from",   "where",	"on",	   "as",	"join",	  "using",  "all",
	"distinct", "by",     "having", "union",   "intersect", "except", "values", "cast",
	"limit",    "offset", "filter", "collate", NULL,
};

/* Functions whose value depends on their arguments alone (SQLite's and the
   validator's regexp): the same rows give the same answer in any statement. */
static const char *const pure_functions[] = {
	"count",	"sum",		"avg",
	"min",		"max",		"total",
	"group_concat", "length",	"octet_length",
	"substr",	"substring",	"instr",
	"upper",	"lower",	"trim",
	"ltrim",	"rtrim",	"replace",
	"coalesce",	"ifnull",	"iif",
	"nullif",	"hex",		"unhex",
	"abs",		"round",	"sign",
	"typeof",	"quote",	"printf",
	"format",	"char",		"unicode",
	"likely",	"unlikely",	"likelihood",
	"like",		"glob",		"regexp",
	"json",		"json_extract", "json_array_length",
	"json_type",	"json_valid",	"json_quote",
	"json_object",	"json_array",	NULL,
};

/* Words that read the clock: a value that moves between two statements. */
static const char *const clock_words[] = {
	"current_time",
	"current_date",
	"current_timestamp",
	NULL,
};

/*
 * Read a FROM clause (from: up to its WHERE, which is consumed) or a WHERE
 * expression (to the end, or to a ';' followed by nothing) from *pos; the
 * span from its first to its last token in *off, *len.  0, or -EINVAL if
 * it is empty, unbalanced, holds a variable, a clock word, a call of a
 * function not known to be pure or (at the top level) a clause keyword.
 */
static int read_part(const char *sql, size_t n, size_t *pos, bool from, size_t *off, size_t *len)
{
	struct tok t, prev = {TOK_END, 0, 0};
	int depth = 0;
	bool after_distinct = false;

	*len = 0;
	for (t = next_tok(sql, n, pos);; prev = t, t = next_tok(sql, n, pos)) {
		if (t.kind == TOK_END) {
			if (from)
				return -EINVAL;
			break;
		}
		if (t.kind == TOK_BAD || t.kind == TOK_VAR)
			return -EINVAL;
		if (depth == 0 && is_punct(sql, t, ';')) {
			if (from || next_tok(sql, n, pos).kind != TOK_END)
				return -EINVAL;
			break;
		}
		if (from && depth == 0 && is_word(sql, t, "where"))
			break;
		if (!*len)
			*off = t.off;
		*len = t.off + t.len - *off;
		if (in_list(sql, t, clock_words))
			return -EINVAL;
		if (is_punct(sql, t, '(')) {
			depth++;
			/* a call: only of a function known to be pure */
			if (prev.kind == TOK_QUOTED ||
			    (prev.kind == TOK_WORD && !in_list(sql, prev, paren_words) &&
			     !in_list(sql, prev, pure_functions)))
				return -EINVAL;
		} else if (is_punct(sql, t, ')') && --depth < 0) {
			return -EINVAL;
		}
		/* `a IS [NOT] DISTINCT FROM b` is an expression, not the clause */
		if (depth == 0 && in_list(sql, t, clause_words) &&
		    !(is_word(sql, t, "from") && after_distinct))
			return -EINVAL;
		after_distinct = is_word(sql, t, "distinct");
	}
	return depth != 0 || !*len ? -EINVAL : 0;
}

/* An identifier token: a bare word or a quoted name. */
static bool ident(struct tok t)
{
	return t.kind == TOK_WORD || t.kind == TOK_QUOTED;
}

/* Whether the FROM clause sql[off..off+len) is `[main.]processes [[AS]
   alias]`; the alias's span in *f. */
static bool simple_from(const char *sql, size_t off, size_t len, struct de_sql_filter *f)
{
	size_t pos = off, n = off + len;
	struct tok t = next_tok(sql, n, &pos);

	if (names(sql, t, "main")) {
		if (!is_punct(sql, next_tok(sql, n, &pos), '.'))
			return false; /* a table called main: not processes */
		t = next_tok(sql, n, &pos);
	}
	if (!names(sql, t, "processes"))
		return false;
	t = next_tok(sql, n, &pos);
	bool as = is_word(sql, t, "as");
	if (as)
		t = next_tok(sql, n, &pos);
	if (ident(t)) {
		f->alias_off = t.off;
		f->alias_len = t.len;
		t = next_tok(sql, n, &pos);
	} else if (as) {
		return false;
	}
	return t.kind == TOK_END;
}

/*
 * One item of the select list, its tokens' count and its first five: is
 * it * or x.*, and is it a column reference named pid, `[x.]pid` or
 * `[x.]col AS pid` (then the reference's span in *off, *len)?
 */
static void select_item(const char *sql, size_t count, const struct tok *tk, bool *star, bool *pid,
			size_t *off, size_t *len)
{
	size_t ref = count; /* the reference's tokens: col, or x . col */

	*star = (count == 1 && is_punct(sql, tk[0], '*')) ||
		(count == 3 && is_punct(sql, tk[1], '.') && is_punct(sql, tk[2], '*'));
	*pid = false;
	if ((count == 3 || count == 5) && is_word(sql, tk[count - 2], "as")) {
		if (!names(sql, tk[count - 1], "pid"))
			return;
		ref = count - 2;
	} else if (count > 5 || !names(sql, tk[count - 1], "pid")) {
		return;
	}
	if (ref == 1 ? !ident(tk[0])
		     : ref != 3 || !ident(tk[0]) || !is_punct(sql, tk[1], '.') || !ident(tk[2]))
		return;
	*pid = true;
	*off = tk[0].off;
	*len = tk[ref - 1].off + tk[ref - 1].len - tk[0].off;
}

int de_sqltok_filter(const char *sql, size_t n, struct de_sql_filter *out)
{
	struct de_sql_filter f = {.pid_item = -1};
	size_t pos = 0, count = 0;
	struct tok t, tk[5];
	int depth = 0, item = 0;
	bool after_distinct = false, star = false;

	if (!sql)
		return -EINVAL;
	/* SELECT [ALL] <list> FROM */
	if (!is_word(sql, next_tok(sql, n, &pos), "select"))
		return -EINVAL;
	t = next_tok(sql, n, &pos);
	if (is_word(sql, t, "distinct"))
		return -EINVAL;
	if (is_word(sql, t, "all"))
		t = next_tok(sql, n, &pos);
	for (;; t = next_tok(sql, n, &pos)) {
		if (t.kind == TOK_END || t.kind == TOK_BAD || t.kind == TOK_VAR)
			return -EINVAL;
		if (is_punct(sql, t, '('))
			depth++;
		else if (is_punct(sql, t, ')'))
			depth--;
		if (depth < 0 || (depth == 0 && is_punct(sql, t, ';')))
			return -EINVAL;
		/* `a IS [NOT] DISTINCT FROM b` is an expression, not the clause */
		bool from = depth == 0 && is_word(sql, t, "from") && !after_distinct;
		if (from || (depth == 0 && is_punct(sql, t, ','))) {
			bool is_star, is_pid;
			size_t off = 0, len = 0;
			if (!count)
				return -EINVAL;
			select_item(sql, count, tk, &is_star, &is_pid, &off, &len);
			star = star || is_star;
			if (is_pid && f.pid_item < 0) {
				f.pid_item = item;
				f.pid_off = off;
				f.pid_len = len;
			}
			item++;
			count = 0;
			if (from)
				break;
			continue;
		}
		if (depth == 0 && !is_word(sql, t, "from") && in_list(sql, t, clause_words))
			return -EINVAL;
		after_distinct = is_word(sql, t, "distinct");
		if (count < 5)
			tk[count] = t;
		count++;
	}
	f.items = star ? -1 : item;
	if (read_part(sql, n, &pos, true, &f.from_off, &f.from_len) < 0 ||
	    read_part(sql, n, &pos, false, &f.expr_off, &f.expr_len) < 0)
		return -EINVAL;
	f.simple = simple_from(sql, f.from_off, f.from_len, &f);
	if (!f.simple)
		f.alias_off = f.alias_len = 0;
	*out = f;
	return 0;
}

/* One element of a literal list at *pos: [+|-] string or number, then ','
   or ')'; the element's span in *el, the token after it returned. */
static struct tok list_element(const char *s, size_t n, size_t *pos, struct tok *el, bool *ok)
{
	struct tok t = next_tok(s, n, pos);
	size_t start = t.off;

	*ok = false;
	if (is_punct(s, t, '-') || is_punct(s, t, '+')) {
		t = next_tok(s, n, pos);
		if (t.kind != TOK_NUMBER)
			return t;
	}
	if (t.kind != TOK_STRING && t.kind != TOK_NUMBER)
		return t;
	el->off = start;
	el->len = t.off + t.len - start;
	t = next_tok(s, n, pos);
	*ok = is_punct(s, t, ',') || is_punct(s, t, ')');
	return t;
}

size_t de_sqltok_in_lists(const char *sql, size_t n, struct de_sql_inlist *out, size_t max)
{
	size_t pos = 0, found = 0;
	struct tok t;

	if (!sql)
		return 0;
	for (t = next_tok(sql, n, &pos); t.kind != TOK_END; t = next_tok(sql, n, &pos)) {
		if (t.kind == TOK_BAD || is_word(sql, t, "select"))
			return 0;
		if (!is_word(sql, t, "in"))
			continue;
		size_t save = pos;
		if (!is_punct(sql, next_tok(sql, n, &pos), '(')) {
			pos = save;
			continue;
		}
		struct tok first = {TOK_END, 0, 0}, el, end;
		size_t count = 0;
		bool ok;
		do {
			end = list_element(sql, n, &pos, &el, &ok);
			if (ok && count++ == 0)
				first = el;
		} while (ok && is_punct(sql, end, ','));
		if (!ok) { /* not a literal list: read on from its first token */
			pos = save;
			continue;
		}
		if (count < 3)
			continue;
		if (found < max)
			out[found] = (struct de_sql_inlist){first.off, first.len, end.off};
		found++;
	}
	return found;
}
