/*
 * sqltok.h — a small SQL tokenizer for the one thing the detection engine
 * reads in a rule's text: whether it is, syntactically, a filter (a SELECT
 * with only FROM and WHERE), and where its FROM clause, WHERE expression
 * and pid column are, so that the exec path can test many such rules in
 * one statement (detect.c).
 *
 * It knows what SQLite's tokenizer knows about structure: '...' strings
 * ('' escapes), "..." `...` [...] identifiers, -- and block comments,
 * parentheses and keywords (case-insensitively).  It never judges safety:
 * the validator prepares every statement the engine builds.  Anything it is
 * unsure of (an unterminated comment or quote, a bound variable, an
 * unbalanced parenthesis, a function it does not know to be deterministic)
 * makes the text "not that shape", which only costs speed.
 *
 * Ownership: nothing is allocated; offsets point into the caller's text.
 */
#ifndef DAEMONEYE_SQLTOK_H
#define DAEMONEYE_SQLTOK_H

#include <stdbool.h>
#include <stddef.h>

/* Where the parts of a filter rule are in its text. */
struct de_sql_filter {
	bool simple;		     /* the FROM clause is [main.]processes [[AS] alias] */
	size_t alias_off, alias_len; /* simple: the table's alias token; alias_len 0: none */
	size_t from_off, from_len;   /* the FROM clause, first to last token */
	size_t expr_off, expr_len;   /* the WHERE expression, first to last token */
	/* the select list: how many items (-1: one is * or x.*), and the first
	   item named pid if it is a column reference, `[x.]pid` or `[x.]col AS
	   pid`: its index (-1: none) and where the column reference is */
	int items, pid_item;
	size_t pid_off, pid_len;
};

/*
 * 0 if sql[0..n) is `SELECT <list> FROM <from> WHERE <expr> [;]` with
 * nothing else at the top level (no WITH, DISTINCT, GROUP BY, HAVING,
 * ORDER BY, LIMIT, WINDOW, compound or second statement), <from> and
 * <expr> call only functions whose result depends on their arguments alone
 * (no date/time function: 'now' moves between two runs) and hold no bound
 * variable; *out then says where its parts are.  -EINVAL (and *out
 * untouched) otherwise.
 */
int de_sqltok_filter(const char *sql, size_t n, struct de_sql_filter *out);

/* Where one `IN (<literal>, ...)` list of an expression is. */
struct de_sql_inlist {
	size_t first_off, first_len; /* its first element, a sign included */
	size_t close_off;	     /* its closing parenthesis */
};

/*
 * The lists of three or more literals after IN (or NOT IN) in the
 * expression sql[0..n): each element a string or a number, a sign
 * allowed, nothing else.  SQLite builds an ephemeral b-tree for such a
 * list every time the statement runs (a list of one or two, or one with a
 * non-constant element, is tested by comparisons instead), which is what
 * the exec path's prefilter spends most of its time on; detect.c adds a
 * non-constant copy of the first element, which changes no result.
 * Writes the first max lists to out[] in text order and returns how many
 * there are; 0 (none reported) when the expression holds a subquery (a
 * column named in the list could then belong to the subquery's table) or
 * text the tokenizer cannot read to its end.
 */
size_t de_sqltok_in_lists(const char *sql, size_t n, struct de_sql_inlist *out, size_t max);

#endif
