/*
 * test_validator.c — the SQL sandbox against a real event store file:
 * ordinary rule SQL is accepted; hostile SQL of every kind is rejected with
 * a message naming the construct, or stopped by its limit; and no byte of
 * the store file changes (hashed before and after).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "daemoneye/store.h"
#include "daemoneye/validator.h"

#define DE_TEST_NAME "validator"
#include "testutil.h"
static char *dbpath;
static struct de_validator *val;
static sqlite3 *sandbox;

static void file_hash(const char *path, unsigned char out[32])
{
	FILE *f = fopen(path, "rb");
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned char buf[8192];
	size_t n;

	assert_non_null(f);
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		EVP_DigestUpdate(c, buf, n);
	EVP_DigestFinal_ex(c, out, NULL);
	EVP_MD_CTX_free(c);
	fclose(f);
}

static unsigned char before[32];

static int setup(void **state)
{
	(void)state;
	struct de_error e = {0};
	struct de_store *store;
	struct de_process_record recs[3];
	int64_t scan;

	if (tmpdir_make() < 0 || asprintf(&dbpath, "%s/events.sqlite", tmpdir) < 0)
		return -1;
	struct de_store_config cfg = {.path = dbpath, .wal_mode = true};
	if (de_store_open(&cfg, &store, &e) < 0)
		return -1;
	de_store_scan_begin(store, 1000, "poll", &scan, &e);
	for (int i = 0; i < 3; i++) {
		memset(&recs[i], 0, sizeof(recs[i]));
		de_uuid_v4(&recs[i].id);
		recs[i].pid = (uint32_t)(100 + i);
		recs[i].has_ppid = true;
		recs[i].ppid = 1;
		recs[i].scan_id = scan;
		recs[i].name = strdup(i == 0 ? "sshd" : "bash");
		recs[i].executable_path = strdup("/usr/bin/x");
		recs[i].command_line = calloc(2, sizeof(char *));
		recs[i].command_line[0] = strdup("x");
		recs[i].command_line_len = 1;
		recs[i].accessible = true;
		recs[i].file_exists = true;
		recs[i].platform_data = json_pack("{s:i}", "euid", i);
	}
	int rc = de_store_processes(store, recs[0].scan_id, recs, 3, &e);
	for (int i = 0; i < 3; i++)
		de_process_record_clear(&recs[i]);
	de_store_scan_end(store, scan, 2000, 3, &e);
	de_store_close(store);
	if (rc < 0)
		return -1;
	file_hash(dbpath, before);
	val = de_validator_new();
	if (!val)
		return -1;
	de_validator_with_timeout(val, 300);
	return de_validator_open_db(val, dbpath, &sandbox, &e);
}

static int teardown(void **state)
{
	(void)state;
	unsigned char after[32];

	sqlite3_close(sandbox);
	de_validator_free(val);
	file_hash(dbpath, after);
	/* the whole point: nothing a query did changed the store */
	if (memcmp(before, after, 32) != 0) {
		fprintf(stderr, "the store file changed\n");
		return -1;
	}
	free(dbpath);
	return tmpdir_remove();
}

/* Prepare and run sql in the sandbox; 0 with *rows, or the error. */
static int run(const char *sql, int *rows, struct de_error *e)
{
	sqlite3_stmt *st = NULL;
	struct de_guard g;
	int rc, n = 0;

	if ((rc = de_validator_prepare(val, sandbox, sql, &st, e)) < 0)
		return rc;
	de_validator_arm(val, sandbox, &g);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		n++;
	de_validator_disarm(sandbox, &g);
	rc = rc == SQLITE_DONE ? 0 : de_validator_step_error(sandbox, &g, rc, e);
	sqlite3_finalize(st);
	if (rows)
		*rows = n;
	return rc;
}

static void expect_ok(const char *sql, int rows)
{
	struct de_error e = {0};
	int n = -1;

	if (run(sql, &n, &e) < 0)
		fail_msg("'%s' refused: %s", sql, e.message);
	if (rows >= 0 && n != rows)
		fail_msg("'%s': %d rows, expected %d", sql, n, rows);
	/* the seed's validate_query agrees (schema only, no store) */
	if (de_validator_validate_query(val, sql, &e) < 0)
		fail_msg("validate_query('%s'): %s", sql, e.message);
}

static void expect_refused(const char *sql, const char *needle)
{
	struct de_error e = {0};

	if (run(sql, NULL, &e) == 0)
		fail_msg("'%.200s' was accepted", sql);
	assert_int_equal(e.category, DE_ERR_DETECTION);
	if (!strstr(e.message, needle))
		fail_msg("'%.200s' -> '%s' lacks '%s'", sql, e.message, needle);
}

static void test_accepts_rules(void **state)
{
	(void)state;
	expect_ok("SELECT count(*) FROM processes", 1);
	expect_ok("SELECT pid, name FROM processes WHERE name LIKE 'ba%'", 2);
	expect_ok("select p.pid, c.pid FROM processes p JOIN processes c ON c.ppid = p.pid", 0);
	expect_ok("WITH x AS (SELECT pid FROM processes) SELECT * FROM x", 3);
	expect_ok("SELECT json_extract(platform_data, '$.euid') AS euid FROM processes", 3);
	expect_ok("SELECT * FROM processes WHERE pid IN (SELECT pid FROM processes WHERE pid IN "
		  "(SELECT max(pid) FROM processes))",
		  1);
	expect_ok("SELECT 1;", 1);
	expect_ok("SELECT 1; -- trailing comment\n  ;", 1);
	expect_ok("SELECT ';(SELECT (SELECT (SELECT' AS s, \"name\" FROM processes /* ( select */",
		  3);
	expect_ok("SELECT id, source, started_at FROM scans", 1);
	expect_ok("SELECT upper(name), lower(name), substr(name, 1, 2), instr(name, 's'), "
		  "coalesce(ppid, 0), ifnull(user_id, '?'), datetime(start_time / 1000, "
		  "'unixepoch') FROM processes",
		  3);
}

static void test_rejects_writes_and_schema(void **state)
{
	(void)state;
	expect_refused("INSERT INTO processes(pid) VALUES(1)",
		       "INSERT on processes is not allowed");
	expect_refused("UPDATE processes SET name = 'x'", "UPDATE on processes is not allowed");
	expect_refused("DELETE FROM processes", "DELETE on processes is not allowed");
	expect_refused("REPLACE INTO scans(id) VALUES(9)", "INSERT on scans is not allowed");
	expect_refused("DROP TABLE processes", "changing the schema");
	expect_refused("CREATE TABLE x(a)", "changing the schema");
	expect_refused("CREATE TEMP VIEW v AS SELECT 1", "changing the schema");
	expect_refused("CREATE INDEX i ON processes(name)", "changing the schema");
	expect_refused("ALTER TABLE processes ADD COLUMN z", "ALTER TABLE is not allowed");
	expect_refused("CREATE TRIGGER t AFTER INSERT ON scans BEGIN DELETE FROM processes; END",
		       "not allowed");
	expect_refused("ATTACH DATABASE '/tmp/de-evil.db' AS evil", "ATTACH is not allowed");
	expect_refused("DETACH main", "not allowed");
	expect_refused("PRAGMA writable_schema=1", "PRAGMA is not allowed");
	expect_refused("PRAGMA journal_mode=DELETE", "PRAGMA is not allowed");
	expect_refused("PRAGMA table_info(processes)", "PRAGMA is not allowed");
	expect_refused("SELECT * FROM pragma_table_info('processes')", "table-valued functions");
	expect_refused("SELECT name FROM sqlite_master", "is not visible to rules");
	expect_refused("SELECT * FROM sqlite_schema", "is not visible to rules");
	expect_refused("SELECT * FROM sqlite_temp_master", "is not visible");
	expect_refused("SELECT count(*) FROM sqlite_schema", "is not visible");
	expect_refused("SELECT count(*) FROM alerts", "table 'alerts' is not visible");
	expect_ok("WITH c(x) AS (SELECT 1) SELECT count(*) FROM c", 1);
	expect_refused("BEGIN", "transaction");
	expect_refused("COMMIT", "transaction");
	expect_refused("ROLLBACK", "transaction");
	expect_refused("SAVEPOINT a", "SAVEPOINT is not allowed");
	expect_refused("RELEASE a", "SAVEPOINT is not allowed");
	expect_refused("VACUUM", "only SELECT");
	expect_refused("VACUUM INTO '/tmp/de-test-vacuum-into.db'", "");
	assert_int_equal(access("/tmp/de-test-vacuum-into.db", F_OK), -1);
	expect_refused("REINDEX", "REINDEX is not allowed");
	expect_refused("ANALYZE", "not allowed");
	expect_refused("EXPLAIN SELECT 1", "EXPLAIN is not allowed");
	expect_refused("EXPLAIN QUERY PLAN SELECT 1", "EXPLAIN is not allowed");
	expect_refused("CREATE VIRTUAL TABLE f USING fts5(a)", "not allowed");
	expect_refused("SELECT 1; DELETE FROM processes", "only one SQL statement");
	expect_refused("SELECT 1; SELECT 2", "only one SQL statement");
	expect_refused("SELECT 1; garbage", "only one SQL statement");
	expect_refused("", "empty");
	expect_refused("  ; -- nothing", "empty");
	expect_refused("SELEKT 1", "syntax error");
	expect_ok("VALUES(1)", 1); /* a SELECT in another spelling */
}

static void test_rejects_functions(void **state)
{
	(void)state;
	expect_refused("SELECT load_extension('/tmp/evil.so')", "function load_extension()");
	expect_refused("SELECT readfile('/etc/shadow')", "no such function: readfile");
	expect_refused("SELECT writefile('/tmp/x', 'y')", "no such function");
	expect_refused("SELECT randomblob(1000000000)", "function randomblob()");
	expect_refused("SELECT zeroblob(1000000000)", "function zeroblob()");
	expect_refused("SELECT printf('%.*c', 1000000000, 'x')", "function printf()");
	expect_refused("SELECT abs(-1)", "function abs() is not allowed");
	expect_refused("SELECT name FROM processes WHERE name GLOB 's*'", "function glob()");
	/* regexp() is allowed: PCRE2 under match limits (regexp.h, test_regexp.c) */
	expect_ok("SELECT name FROM processes WHERE name REGEXP 's.*'", -1);
	expect_refused("SELECT name FROM processes WHERE name MATCH 's'", "");
	expect_refused("SELECT sqlite_version()", "function sqlite_version()");
	expect_refused("SELECT * FROM json_each('[1,2]')", "table-valued functions");
	expect_refused("SELECT fts3_tokenizer('simple')", "");
	expect_refused("SELECT nope FROM processes", "available: processes(pid, id");
	expect_refused("SELECT * FROM nope", "no such table: nope");
	expect_refused("SELECT * FROM nope", "rules can read: processes, scans");
	/* with the allowlist changed, glob comes in and count goes */
	static const char *const only[] = {"GLOB"};
	assert_int_equal(de_validator_with_allowed_functions(val, only, 1, NULL), 0);
	expect_ok("SELECT name FROM processes WHERE name GLOB 's*'", 1);
	expect_refused("SELECT count(*) FROM processes", "function count()");
	expect_refused("SELECT name FROM processes WHERE name REGEXP 's'", "function regexp()");
	de_validator_free(val);
	val = de_validator_new();
	de_validator_with_timeout(val, 300);
	struct de_error e = {0};
	assert_int_equal(de_validator_with_read_only_mode(val, true, &e), 0);
	assert_true(de_validator_with_read_only_mode(val, false, &e) < 0);
}

static char *repeat(const char *head, const char *unit, size_t n, const char *mid,
		    const char *unit2, size_t n2, const char *tail)
{
	size_t len = strlen(head) + strlen(unit) * n + strlen(mid) + strlen(unit2) * n2 +
		     strlen(tail) + 1;
	char *s = malloc(len), *p = s;

	assert_non_null(s);
	p = stpcpy(p, head);
	for (size_t i = 0; i < n; i++)
		p = stpcpy(p, unit);
	p = stpcpy(p, mid);
	for (size_t i = 0; i < n2; i++)
		p = stpcpy(p, unit2);
	stpcpy(p, tail);
	return s;
}

static void test_limits(void **state)
{
	(void)state;
	char *s;

	/* nesting: 3 levels pass, 4 do not */
	expect_ok("SELECT (SELECT (SELECT 1))", 1);
	expect_refused("SELECT (SELECT (SELECT (SELECT 1)))", "subqueries nest 4 deep");
	expect_refused("SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM processes)))",
		       "at most 3 levels");
	de_validator_with_max_nesting(val, 5);
	expect_ok("SELECT (SELECT (SELECT (SELECT 1)))", 1);
	de_validator_with_max_nesting(val, 3);
	/* deep expressions and the parser stack */
	s = repeat("SELECT ", "(", 5000, "1", ")", 5000, "");
	expect_refused(s, "");
	free(s);
	s = repeat("SELECT 1", " + 1", 3000, "", "", 0, "");
	expect_refused(s, "");
	free(s);
	/* an enormous literal and an enormous statement */
	s = repeat("SELECT '", "a", 200000, "'", "", 0, "");
	expect_refused(s, "at most 100000 are allowed");
	free(s);
	s = repeat("SELECT x'", "00", 40000, "'", "", 0, "");
	expect_ok(s, 1); /* 40 KB of blob literal is fine: below every limit */
	free(s);
	/* compound selects */
	s = repeat("SELECT 1", " UNION SELECT 1", 20, "", "", 0, "");
	expect_refused(s, "too many terms in compound SELECT");
	free(s);
	/* LIKE pattern length */
	s = repeat("SELECT 1 WHERE 'a' LIKE '", "%", 5000, "'", "", 0, "");
	expect_refused(s, "LIKE or GLOB pattern too complex");
	free(s);
	/* too many variables */
	expect_refused("SELECT ?1, ?99", "variable number must be between");
	/* a join of the snapshot with itself many times is allowed; its cost is bounded below */
	expect_ok("SELECT count(*) FROM processes a, processes b, processes c", 1);
}

static void test_timeout_and_memory(void **state)
{
	(void)state;
	struct de_error e = {0};

	/* a recursive CTE that never ends is stopped by the timeout */
	assert_true(run("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
			"SELECT count(*) FROM c",
			NULL, &e) < 0);
	if (e.code != ETIMEDOUT)
		fail_msg("expected a timeout: %s", e.message);
	assert_non_null(strstr(e.message, "timeout of 300 ms"));
	/* a cartesian product of itself, grown by recursion, too */
	assert_true(run("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
			"SELECT count(*) FROM c, processes a, processes b",
			NULL, &e) < 0);
	assert_int_equal(e.code, ETIMEDOUT);
	/* memory: DISTINCT over ever more rows hits the heap limit, not the host */
	sqlite3_close(sandbox);
	de_validator_with_memory_limit(val, 4u << 20);
	de_validator_with_timeout(val, 600000);
	assert_int_equal(de_validator_open_db(val, dbpath, &sandbox, &e), 0);
	int rc = run("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
		     "SELECT count(DISTINCT x) FROM c",
		     NULL, &e);
	assert_true(rc < 0);
	if (e.code != ENOMEM)
		fail_msg("expected ENOMEM: %s", e.message);
	assert_non_null(strstr(e.message, "memory limit of 4 MiB"));
	/* the limit is the run's, not the process's: SQLite work outside a run
	   (the store's writer) may take far more than 4 MiB, and the sandbox
	   connection itself still works afterwards */
	sqlite3 *other;
	assert_int_equal(sqlite3_open(":memory:", &other), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other,
				      "CREATE TABLE t(b); WITH RECURSIVE c(x) AS (SELECT 1 UNION "
				      "ALL SELECT x + 1 FROM c WHERE x < 64) "
				      "INSERT INTO t SELECT zeroblob(1 << 20) FROM c;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(other);
	int n = 0;
	assert_int_equal(run("SELECT count(*) FROM processes", &n, &e), 0);
	assert_int_equal(n, 1);
	sqlite3_close(sandbox);
	de_validator_with_memory_limit(val, 0);
	de_validator_with_timeout(val, 300);
	assert_int_equal(de_validator_open_db(val, dbpath, &sandbox, &e), 0);
	expect_ok("SELECT count(*) FROM processes", 1);
}

static void test_relations(void **state)
{
	(void)state;
	size_t n;
	const struct de_relation *r = de_relations(&n);

	assert_true(n >= 2);
	assert_string_equal(r[0].name, "processes");
	assert_true(r[0].ncolumns >= 20);
	/* every listed column is real in the store */
	for (size_t i = 0; i < n; i++)
		for (size_t c = 0; c < r[i].ncolumns; c++) {
			char sql[256];
			snprintf(sql, sizeof(sql), "SELECT %s FROM %s", r[i].columns[c].name,
				 r[i].name);
			expect_ok(sql, -1);
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepts_rules),
		cmocka_unit_test(test_rejects_writes_and_schema),
		cmocka_unit_test(test_rejects_functions),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_timeout_and_memory),
		cmocka_unit_test(test_relations),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
