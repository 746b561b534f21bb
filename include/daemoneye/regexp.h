/*
 * regexp.h — REGEXP(pattern, value), the one regular-expression function
 * of the SQL sandbox (validator.c registers it on every sandbox
 * connection), matched by PCRE2.  Sigma's `re` modifier compiles to it
 * (sigma.h), and so do Sigma value lists and `?` wildcards, for speed and
 * byte exactness.
 *
 * Meaning: regexp(P, V) is NULL when P or V is NULL, 1 when the PCRE2
 * pattern P matches anywhere in the bytes of V, else 0.  `V REGEXP P` is
 * the same call.  Patterns are compiled without UTF (PCRE2_NEVER_UTF,
 * PCRE2_NEVER_UCP; a pattern asking for (*UTF) is refused): values are
 * bytes, as daemoneye stores them, so `.` is one byte, `\s` `\d` `\w` are
 * ASCII classes, (?i) folds ASCII letters only, and invalid UTF-8 is just
 * bytes.  Newlines are LF.
 *
 * Limits, so that a hostile pattern cannot hang a detection cycle: the
 * pattern is at most DE_REGEXP_MAX_PATTERN bytes; matching runs under
 * PCRE2's match limit (DE_REGEXP_MATCH_LIMIT, which a pattern's own
 * (*LIMIT_MATCH=) can only lower), depth and heap limits, and a bounded
 * JIT stack.  A value that needs more makes the call fail with an SQL
 * error naming the limit, so the statement stops (a rule run is then
 * reported as not finished and its alerts marked incomplete: detect.h),
 * rather than a false "no match".  An invalid pattern is an SQL error too.
 *
 * The patterns the Sigma compiler writes (literal sets and globs: see
 * regexp_set.c) are matched by a faster path with the same verdict, linear
 * in the value.
 *
 * Compiled patterns (JIT where the platform has it) are cached per
 * connection, at most DE_REGEXP_MAX_CACHED of them; a constant pattern is
 * also kept with the statement (sqlite3_set_auxdata), so a rule's pattern
 * is compiled once per connection, not once per row.
 *
 * Ownership: the cache belongs to the connection and is freed when the
 * function is (sqlite3_close()).
 */
#ifndef DAEMONEYE_REGEXP_H
#define DAEMONEYE_REGEXP_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

#include "daemoneye/error.h"

#define DE_REGEXP_MAX_PATTERN ((size_t)32 * 1024) /* bytes of one pattern */
#define DE_REGEXP_MAX_CACHED  512		  /* compiled patterns per connection */
#define DE_REGEXP_MATCH_LIMIT 10000		  /* PCRE2 match limit of one call */
#define DE_REGEXP_DEPTH_LIMIT 10000		  /* PCRE2 depth limit (interpreter) */
#define DE_REGEXP_HEAP_LIMIT  (16u * 1024)	  /* KiB of PCRE2 heap for one call */
#define DE_REGEXP_JIT_STACK   (1u << 20)	  /* bytes of JIT stack at most */

/*
 * Register regexp(pattern, value) on db (deterministic, innocuous).  0, or
 * a DetectionError (ENOMEM, or SQLite's refusal).
 */
int de_regexp_register(sqlite3 *db, struct de_error *err);

/*
 * Whether PCRE2 accepts pattern[0..len) as regexp() would compile it.
 * 0, or a ValidationError "PCRE2 rejects the pattern at offset N: why"
 * (E2BIG for a pattern longer than DE_REGEXP_MAX_PATTERN).
 */
int de_regexp_check(const char *pattern, size_t len, struct de_error *err);

/*
 * Whether regexp() matches pattern[0..len) by its fast path, without PCRE2
 * (for tests; see regexp_set.c for the patterns it takes).
 */
bool de_regexp_fast(const char *pattern, size_t len);

/*
 * One character as the Sigma compiler writes it for `?`: a valid UTF-8
 * sequence, else one byte, atomically (a valid sequence is never split).
 * The fast path recognises this exact text.
 */
#define DE_REGEXP_CHAR                                                                             \
	"(?>[\\x00-\\x7f]|[\\xc2-\\xdf][\\x80-\\xbf]|\\xe0[\\xa0-\\xbf][\\x80-\\xbf]|"             \
	"[\\xe1-\\xec\\xee\\xef][\\x80-\\xbf]{2}|\\xed[\\x80-\\x9f][\\x80-\\xbf]|"                 \
	"\\xf0[\\x90-\\xbf][\\x80-\\xbf]{2}|[\\xf1-\\xf3][\\x80-\\xbf]{3}|"                        \
	"\\xf4[\\x80-\\x8f][\\x80-\\xbf]{2}|.)"

#endif
