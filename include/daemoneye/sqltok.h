/*
 * sqltok.h — a small SQL tokenizer for the one thing the detection engine
 * reads in a rule's text: whether it is, syntactically, a plain filter of
 * the processes table, and where its alias and WHERE expression are, so
 * that the exec path can test many such rules in one statement (detect.c).
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

#include <stddef.h>

/* Where the parts of a plain filter rule are in its text. */
struct de_sql_filter {
	size_t alias_off, alias_len; /* the table's alias token; alias_len 0: none */
	size_t expr_off, expr_len;   /* the WHERE expression, first to last token */
};

/*
 * 0 if sql[0..n) is `SELECT <list> FROM [main.]processes [[AS] alias] WHERE
 * <expr> [;]` with nothing else at the top level (no WITH, DISTINCT, GROUP
 * BY, HAVING, ORDER BY, LIMIT, WINDOW, compound or second statement), <expr>
 * calls only functions whose result depends on their arguments alone (no
 * date/time function: 'now' moves between two runs) and holds no bound
 * variable; *out then says where its parts are.  -EINVAL (and *out
 * untouched) otherwise.
 */
int de_sqltok_filter(const char *sql, size_t n, struct de_sql_filter *out);

#endif
