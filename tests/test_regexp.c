/*
 * test_regexp.c — regexp() in the sandbox: PCRE2 over bytes (a byte is a
 * character, (?i) folds ASCII only, (*UTF) refused), NULLs, invalid
 * patterns as SQL errors with the offset, a catastrophic pattern stopped by
 * the match limit (and a rule using one reported as not finished, its
 * alerts marked incomplete), long subjects that legit patterns handle, the
 * cache beyond its size, non-constant patterns, de_regexp_check(), and
 * values that end where readable memory ends.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "daemoneye/detect.h"
#include "daemoneye/regexp.h"
#include "daemoneye/store.h"
#include "daemoneye/validator.h"

#define DE_TEST_NAME "regexp"
#include "testutil.h"

static struct de_validator *val;
static sqlite3 *db;

static int setup(void **state)
{
	(void)state;
	if (tmpdir_make() < 0 || !(val = de_validator_new()))
		return -1;
	return de_validator_open_db(val, NULL, &db, NULL);
}

static int teardown(void **state)
{
	(void)state;
	sqlite3_close(db);
	de_validator_free(val);
	return tmpdir_remove();
}

/* regexp(p, v) with v given as n bytes: 1, 0, -1 for NULL, -2 for an error (msg copied). */
static int rx(const char *p, const char *v, int n, char *msg, size_t msglen)
{
	sqlite3_stmt *st;
	int r;

	assert_int_equal(
		sqlite3_prepare_v2(db, "SELECT regexp(?1, CAST(?2 AS TEXT))", -1, &st, NULL),
		SQLITE_OK);
	if (p)
		sqlite3_bind_text(st, 1, p, -1, SQLITE_STATIC);
	if (v)
		sqlite3_bind_blob(st, 2, v, n < 0 ? (int)strlen(v) : n, SQLITE_STATIC);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		r = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 0);
	else
		r = -2;
	if (msg)
		snprintf(msg, msglen, "%s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return r;
}

static void test_matches_bytes(void **state)
{
	(void)state;
	assert_int_equal(rx("b.d", "abcde", -1, NULL, 0), 1);
	assert_int_equal(rx("^bcd", "abcde", -1, NULL, 0), 0);
	assert_int_equal(rx("x", NULL, 0, NULL, 0), -1);
	assert_int_equal(rx(NULL, "x", -1, NULL, 0), -1);
	/* a byte is a character: é is two */
	assert_int_equal(rx("^.$", "\xc3\xa9", -1, NULL, 0), 0);
	assert_int_equal(rx("^..$", "\xc3\xa9", -1, NULL, 0), 1);
	/* invalid UTF-8 is bytes like any */
	assert_int_equal(rx("a\\xffb",
			    "a\xff"
			    "b",
			    -1, NULL, 0),
			 1);
	assert_int_equal(rx("^a.b$",
			    "a\xc3"
			    "b",
			    -1, NULL, 0),
			 1);
	/* (?i) folds ASCII letters only */
	assert_int_equal(rx("(?i)abc", "xABCx", -1, NULL, 0), 1);
	assert_int_equal(rx("(?i)\xc3\xa9", "\xc3\x89", -1, NULL, 0), 0);
	/* \s is ASCII whitespace, $ before a final newline, \z at the end */
	assert_int_equal(rx("a\\sb", "a\tb", -1, NULL, 0), 1);
	assert_int_equal(rx("a$", "a\n", -1, NULL, 0), 1);
	assert_int_equal(rx("a\\z", "a\n", -1, NULL, 0), 0);
	/* the operator form is the same function */
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT 'abc' REGEXP 'b'", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 1);
	sqlite3_finalize(st);
}

static void test_bad_patterns(void **state)
{
	char msg[512];
	struct de_error e = {0};

	(void)state;
	assert_int_equal(rx("a(b", "ab", -1, msg, sizeof(msg)), -2);
	assert_non_null(strstr(msg, "PCRE2 rejects the pattern at offset 3"));
	assert_int_equal(rx("(*UTF)a", "a", -1, msg, sizeof(msg)), -2);
	assert_non_null(strstr(msg, "UTF is disabled"));
	char *big = malloc(DE_REGEXP_MAX_PATTERN + 2);
	memset(big, 'a', DE_REGEXP_MAX_PATTERN + 1);
	big[DE_REGEXP_MAX_PATTERN + 1] = '\0';
	assert_int_equal(rx(big, "a", -1, msg, sizeof(msg)), -2);
	assert_non_null(strstr(msg, "at most"));
	assert_true(de_regexp_check(big, strlen(big), &e) == -E2BIG);
	free(big);
	assert_int_equal(de_regexp_check("a[b", 3, &e), -EINVAL);
	assert_int_equal(e.category, DE_ERR_VALIDATION);
	assert_non_null(strstr(e.message, "offset 3"));
	assert_int_equal(de_regexp_check("(?:\\s-[^-\\s]{0,20}i|\\s--inode\\s)", 32, &e), 0);
}

static void test_limits(void **state)
{
	char msg[512], subject[64];
	(void)state;

	/* nested unbounded repeats on a near miss: stopped, not hung */
	memset(subject, 'a', 40);
	strcpy(subject + 40, "!");
	assert_int_equal(rx("^(a+)+$", subject, -1, msg, sizeof(msg)), -2);
	assert_non_null(strstr(msg, "regexp: stopped at PCRE2's"));
	assert_int_equal(rx("^(a|aa)+$", subject, -1, msg, sizeof(msg)), -2);
	/* a legit pattern over a long command line (1 MiB; 4 is the cap) finishes */
	size_t n = 1u << 20;
	char *big = malloc(n + 1);
	for (size_t i = 0; i < n; i++)
		big[i] = " -abcdefghjk"[i % 12];
	big[n] = '\0';
	assert_int_equal(rx("(?:\\s-[^-\\s]{0,20}z|\\s--inode\\s)", big, (int)n, msg, sizeof(msg)),
			 0);
	assert_int_equal(rx("\\s-[FTd]\\s", big, (int)n, msg, sizeof(msg)), 0);
	assert_int_equal(rx("(?si)(?: --cpu-priority=|--donate-level=0| -o pool\\.)", big, (int)n,
			    msg, sizeof(msg)),
			 0);
	free(big);
}

static void test_cache(void **state)
{
	sqlite3_stmt *st;
	(void)state;

	/* more distinct patterns than the cache keeps: each still right */
	for (int i = 0; i < DE_REGEXP_MAX_CACHED + 40; i++) {
		char p[32], v[32];
		snprintf(p, sizeof(p), "^p%d$", i);
		snprintf(v, sizeof(v), "p%d", i);
		assert_int_equal(rx(p, v, -1, NULL, 0), 1);
		assert_int_equal(rx(p, "p", -1, NULL, 0), 0);
	}
	/* patterns from a column (not constant): looked up per row */
	assert_int_equal(sqlite3_prepare_v2(db,
					    "WITH t(p, v) AS (VALUES ('^a', 'abc'), ('c$', 'abc'), "
					    "('^b', 'abc'), ('(', 'x')) SELECT regexp(p, v) FROM t",
					    -1, &st, NULL),
			 SQLITE_OK);
	int want[] = {1, 1, 0};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(st, 0), want[i]);
	}
	assert_int_equal(sqlite3_step(st), SQLITE_ERROR);
	sqlite3_finalize(st);
}

/* PCRE2's own verdict, for comparison: compile p once, then ask per value. */
static pcre2_code *pcre2_of(const char *p)
{
	int ec;
	PCRE2_SIZE off;
	pcre2_code *code = pcre2_compile((PCRE2_SPTR)p, PCRE2_ZERO_TERMINATED,
					 PCRE2_NEVER_UTF | PCRE2_NEVER_UCP, &ec, &off, NULL);
	assert_non_null(code);
	return code;
}

static int pcre2_says(pcre2_code *code, const char *v, size_t vn)
{
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
	int rc = md ? pcre2_match(code, (PCRE2_SPTR)v, vn, 0, 0, md, NULL) : -999;

	pcre2_match_data_free(md);
	assert_true(rc >= 0 || rc == PCRE2_ERROR_NOMATCH);
	return rc >= 0;
}

/* The literal-set path gives PCRE2's verdict: random sets, random values. */
static void test_literal_sets(void **state)
{
	static const char *const units[] = {"a",    "A",	  "b",	   "B", "-",   " ",   "\\.",
					    "\\\\", "\\xc3\\xa9", "\\xff", "/", "\\|", "\\(", "z"};
	static const char *const bytes[] = {"a",  "A",	      "b",    "B", "-", " ", ".",
					    "\\", "\xc3\xa9", "\xff", "/", "|", "(", "z"};
	unsigned seed = 15;
	size_t fast = 0;
	(void)state;

#define LITSET(p) de_regexp_fast(p, strlen(p))
	assert_true(LITSET("(?si)(?:/nc\\z|/ncat\\z| -e |\\Ax\\z)"));
	assert_true(LITSET("--donate-level=0"));
	assert_false(LITSET("(?si)(?:a.b)"));
	assert_false(LITSET("(?m)a"));
	assert_false(LITSET("(?:a|)"));
	assert_false(LITSET("a\\sb"));
	for (int round = 0; round < 1500; round++) {
		char pat[512], text[128];
		size_t o = 0, tn = 0;
		int nlit = 1 + rand_r(&seed) % 5;
		bool group = nlit > 1 || rand_r(&seed) % 2;
		o += (size_t)snprintf(pat + o, sizeof(pat) - o, "%s%s",
				      rand_r(&seed) % 2	  ? "(?si)"
				      : rand_r(&seed) % 2 ? "(?s)"
							  : "",
				      group ? "(?:" : "");
		for (int i = 0; i < nlit; i++) {
			/* half the sets have literals of 3 or more: the Wu-Manber scan */
			int len = round % 2 ? 1 + rand_r(&seed) % 3 : 3 + rand_r(&seed) % 4;
			int at = rand_r(&seed) % 4;
			o += (size_t)snprintf(pat + o, sizeof(pat) - o, "%s%s", i ? "|" : "",
					      at & 1 ? "\\A" : "");
			for (int k = 0; k < len; k++)
				o += (size_t)snprintf(pat + o, sizeof(pat) - o, "%s",
						      units[rand_r(&seed) % 14]);
			if (at & 2)
				o += (size_t)snprintf(pat + o, sizeof(pat) - o, "\\z");
		}
		if (group)
			o += (size_t)snprintf(pat + o, sizeof(pat) - o, ")");
		fast += de_regexp_fast(pat, o);
		pcre2_code *code = pcre2_of(pat);
		for (int t = 0; t < 8; t++) {
			tn = 0;
			int len = rand_r(&seed) % 12;
			for (int k = 0; k < len; k++) {
				const char *b = bytes[rand_r(&seed) % 14];
				memcpy(text + tn, b, strlen(b));
				tn += strlen(b);
			}
			int want = pcre2_says(code, text, tn);
			if (rx(pat, text, (int)tn, NULL, 0) != want)
				fail_msg("regexp('%s') on %d bytes: %d, PCRE2 says %d", pat,
					 (int)tn, !want, want);
		}
		pcre2_code_free(code);
	}
	assert_true(fast > 1250); /* the path under test was taken */
}

/* Globs in the Sigma compiler's syntax: the fast path gives PCRE2's verdict. */
static void test_globs(void **state)
{
	static const char *const units[] = {"a",	  "B",	   "\\.",	  " ",
					    "\\xc3\\xa9", "\\xff", DE_REGEXP_CHAR};
	static const char *const bytes[] = {
		"a",	"b",	"B",	    ".",    " ", "\xc3\xa9", "\xe2\x82\xac",
		"\xff", "\xc3", "\xe2\x82", "\x80", "\n"};
	unsigned seed = 4;
	size_t fast = 0, matched = 0;
	(void)state;

	for (int round = 0; round < 1500; round++) {
		char pat[4096], text[64];
		size_t o = 0, tn;
		int nalt = 1 + rand_r(&seed) % 3;
		bool chargap = rand_r(&seed) % 2;
		const char *lazy = chargap ? "(?:" DE_REGEXP_CHAR ")*?" : ".*?";
		const char *greedy = chargap ? "(?:" DE_REGEXP_CHAR ")*" : ".*";
#define P(...) (o += (size_t)snprintf(pat + o, sizeof(pat) - o, __VA_ARGS__))
		P("(?s%s)%s", rand_r(&seed) % 2 ? "i" : "", nalt > 1 ? "(?:" : "");
		for (int a = 0; a < nalt; a++) {
			int nparts = rand_r(&seed) % 4;
			bool lead = rand_r(&seed) % 2, end = rand_r(&seed) % 2;
			P("%s\\A", a ? "|" : "");
			for (int k = 0; k < nparts; k++) {
				bool last = k == nparts - 1;
				bool gap = k > 0 || lead;
				int len = 1 + rand_r(&seed) % 3;
				if (last && end && gap)
					P("%s", greedy);
				else if (gap)
					P("(?>%s", lazy);
				for (int u = 0; u < len; u++)
					P("%s", units[rand_r(&seed) % 7]);
				if (gap && !(last && end))
					P(")");
			}
			if (end)
				P("\\z");
		}
		if (nalt > 1)
			P(")");
#undef P
		fast += de_regexp_fast(pat, o);
		pcre2_code *code = pcre2_of(pat);
		for (int t = 0; t < 10; t++) {
			int len = rand_r(&seed) % 8;
			tn = 0;
			for (int k = 0; k < len; k++) {
				const char *b = bytes[rand_r(&seed) % 12];
				memcpy(text + tn, b, strlen(b));
				tn += strlen(b);
			}
			int want = pcre2_says(code, text, tn);
			matched += want;
			if (rx(pat, text, (int)tn, NULL, 0) != want)
				fail_msg("regexp('%s') on %d bytes: %d, PCRE2 says %d", pat,
					 (int)tn, !want, want);
		}
		pcre2_code_free(code);
	}
	assert_int_equal(fast, 1500);
	assert_true(matched > 1500 && matched < 13500); /* both verdicts, often */
}

/* A rule whose pattern backtracks catastrophically on one process: the run
 * stops with the reason, and the alerts it had found are marked incomplete. */
static void test_rule_stopped(void **state)
{
	char path[512];
	struct de_store *store;
	struct de_engine *eng;
	struct de_error e = {0};
	struct de_process_record recs[3];
	const char *cmds[3] = {"aaaa", "zzzz", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"};
	(void)state;

	snprintf(path, sizeof(path), "%s/events.sqlite", tmpdir);
	struct de_store_config cfg = {.path = path, .wal_mode = true};
	assert_int_equal(de_store_open(&cfg, &store, &e), 0);
	for (int i = 0; i < 3; i++) {
		memset(&recs[i], 0, sizeof(recs[i]));
		de_uuid_v4(&recs[i].id);
		recs[i].pid = (uint32_t)(100 + i);
		recs[i].name = strdup("x");
		recs[i].executable_path = strdup("/usr/bin/x");
		recs[i].command_line = calloc(2, sizeof(char *));
		recs[i].command_line[0] = strdup(cmds[i]);
		recs[i].command_line_len = 1;
		recs[i].accessible = true;
	}
	assert_int_equal(de_store_processes(store, 1, recs, 3, &e), 0);
	for (int i = 0; i < 3; i++)
		de_process_record_clear(&recs[i]);
	de_store_close(store);
	assert_int_equal(de_engine_open(path, val, &eng, &e), 0);
	struct de_rule rule = {
		.id = "catastrophic",
		.name = "catastrophic",
		.sql_query = "SELECT pid, name, executable_path FROM processes "
			     "WHERE regexp('^(a+)+$', command_line) OR command_line = 'aaaa' "
			     "ORDER BY pid",
		.enabled = true,
	};
	struct de_alert_list alerts = {0};
	struct de_rule_result res;
	de_engine_run_rule(eng, &rule, 1, NULL, &alerts, &res);
	assert_true(res.status < 0);
	assert_non_null(strstr(res.error.message, "stopped at PCRE2's"));
	assert_int_equal(alerts.len, 1);
	assert_true(alerts.items[0].incomplete);
	assert_non_null(strstr(alerts.items[0].description, "incomplete"));
	de_alert_list_clear(&alerts);
	/* the process it stops on, alone (the exec path): reported, no alert */
	uint32_t pid = 102;
	de_engine_run_rule(eng, &rule, 1, &pid, &alerts, &res);
	assert_true(res.status < 0);
	assert_int_equal(alerts.len, 0);
	de_alert_list_clear(&alerts);
	de_engine_close(eng);
}

/*
 * A value whose last byte is the last readable byte of the process: PCRE2's
 * JIT scans ahead with vector loads, and upstream fixed (PR #985, 2026) a
 * start-bits scan that loaded past a subject ending on a page boundary.
 * What regexp() hands PCRE2 is SQLite's text, always NUL-terminated, so
 * its end is readable; this runs the upstream report's patterns (and the
 * other JIT fast paths: a character pair, a class, a literal) over every
 * value length up to 64 placed right before an unmapped page, with their
 * verdicts.  A fault here kills the worker and blinds the rules.
 */
static void test_value_at_page_end(void **state)
{
	static const struct {
		const char *pattern, *value;
		int want;
	} cases[] = {
		{"[a-c](?=\\d)", "zzzzzzza", 0},
		{"^[a-z\\x80-\\xff]{3,}[a-h]|x", "ab\xd8\x80ijklm", 0},
		{"[\\xc4][\\x85-\\x89]", "\xc4\x80", 0},
		{"(bash|sh)\\s+-i", "zzsh -i", 1},
		{"nc\\s", "zzzzz", 0},
		{"[^#]", "####", 0},
		{"q$", "zzzq", 1},
	};
	long pg = sysconf(_SC_PAGESIZE);
	char *m = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	sqlite3_stmt *st;
	(void)state;

	assert_true(m != MAP_FAILED);
	assert_int_equal(mprotect(m + pg, (size_t)pg, PROT_NONE), 0);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT regexp(?1, ?2)", -1, &st, NULL), SQLITE_OK);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t vn = strlen(cases[i].value);
		for (size_t pad = 0; pad + vn <= 64; pad++) {
			/* pad bytes of #, the value, its NUL as the page's last byte */
			char *v = m + pg - (long)(pad + vn + 1);
			memset(v, '#', pad);
			memcpy(v + pad, cases[i].value, vn + 1);
			sqlite3_bind_text(st, 1, cases[i].pattern, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, v, -1, SQLITE_STATIC);
			assert_int_equal(sqlite3_step(st), SQLITE_ROW);
			int got = sqlite3_column_int(st, 0);
			if (got != cases[i].want)
				fail_msg("regexp(%s) over %zu bytes: %d, want %d", cases[i].pattern,
					 pad + vn, got, cases[i].want);
			sqlite3_reset(st);
		}
	}
	sqlite3_finalize(st);
	munmap(m, (size_t)pg * 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matches_bytes), cmocka_unit_test(test_bad_patterns),
		cmocka_unit_test(test_limits),	      cmocka_unit_test(test_cache),
		cmocka_unit_test(test_literal_sets),  cmocka_unit_test(test_globs),
		cmocka_unit_test(test_rule_stopped),  cmocka_unit_test(test_value_at_page_end),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
