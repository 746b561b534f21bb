/*
 * test_store.c — the event store on real SQLite files: schema, snapshot
 * replacement, scans, alerts, exact bytes, and refusal to touch a corrupt,
 * foreign or newer-version file.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "daemoneye/store.h"

static char tmpdir[] = "/tmp/de-test-store-XXXXXX";

static int setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static char *db_path(const char *name)
{
	char *p;
	assert_true(asprintf(&p, "%s/%s", tmpdir, name) > 0);
	return p;
}

static void record(struct de_process_record *r, uint32_t pid, const char *name)
{
	memset(r, 0, sizeof(*r));
	de_uuid_v4(&r->id);
	r->pid = pid;
	r->has_ppid = true;
	r->ppid = 1;
	r->name = strdup(name);
	r->executable_path = strdup("/usr/bin/x");
	r->command_line = calloc(2, sizeof(char *));
	r->command_line[0] = strdup("x");
	r->command_line[1] = strdup("--flag=\xff\n");
	r->command_line_len = 2;
	r->accessible = true;
	r->file_exists = true;
	r->platform_data = json_pack("{s:b}", "exe_deleted", pid == 3);
}

static int64_t count(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	int64_t n = -1;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static void test_snapshot_and_scans(void **state)
{
	(void)state;
	char *path = db_path("events.sqlite");
	struct de_store_config cfg = {
		.path = path, .max_size_mb = 10, .wal_mode = true, .max_connections = 2};
	struct de_store *s;
	struct de_error e = {0};
	struct de_process_record recs[3];
	int64_t scan;

	assert_int_equal(de_store_open(&cfg, &s, &e), 0);
	assert_int_equal(de_store_scan_begin(s, 1000, "poll", &scan, &e), 0);
	assert_int_equal(scan, 1);
	for (int i = 0; i < 3; i++)
		record(&recs[i], (uint32_t)(i + 1), "proc");
	assert_int_equal(de_store_processes(s, recs, 3, &e), 0);
	assert_int_equal(de_store_scan_end(s, scan, 1250, 3, &e), 0);
	sqlite3 *db = de_store_db(s);
	assert_int_equal(count(db, "SELECT count(*) FROM processes"), 3);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE exe_deleted = 1"), 1);
	assert_int_equal(count(db, "SELECT duration_ms FROM scans WHERE id = 1"), 250);
	assert_int_equal(count(db, "SELECT process_count FROM scans WHERE id = 1"), 3);
	/* exact bytes in the text column */
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE command_line = "
				   "CAST(X'78202D2D666C61673DFF0A' AS TEXT)"),
			 3);
	assert_string_equal(
		(count(db, "PRAGMA user_version") == DE_STORE_SCHEMA_VERSION) ? "ok" : "bad", "ok");

	/* the next snapshot replaces the previous one */
	assert_int_equal(de_store_processes(s, recs, 1, &e), 0);
	assert_int_equal(count(db, "SELECT count(*) FROM processes"), 1);

	/* alerts */
	struct de_alert a = {0};
	de_uuid_v4(&a.id);
	a.alert_time = 5;
	a.rule_id = strdup("r");
	a.title = strdup("t");
	a.description = strdup("d");
	a.severity = DE_SEV_CRITICAL;
	a.alert_data = json_array();
	a.dedupe_key = strdup("k");
	assert_int_equal(de_store_alert(s, &a, &e), 0);
	assert_int_equal(count(db, "SELECT count(*) FROM alerts WHERE severity = 'critical'"), 1);
	de_alert_clear(&a);
	for (int i = 0; i < 3; i++)
		de_process_record_clear(&recs[i]);
	de_store_close(s);

	/* reopen read-only: data still there */
	cfg.read_only = true;
	assert_int_equal(de_store_open(&cfg, &s, &e), 0);
	assert_int_equal(count(de_store_db(s), "SELECT count(*) FROM scans"), 1);
	de_store_close(s);
	free(path);
}

static void write_bytes(const char *path, const char *bytes, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(bytes, 1, n, f), n);
	fclose(f);
}

static void test_refuses_foreign_files(void **state)
{
	(void)state;
	struct de_store *s = NULL;
	struct de_error e = {0};
	struct stat before, after;

	/* garbage */
	char *bad = db_path("garbage.sqlite");
	char junk[8192];
	memset(junk, 'Z', sizeof(junk));
	write_bytes(bad, junk, sizeof(junk));
	stat(bad, &before);
	struct de_store_config cfg = {.path = bad, .wal_mode = true};
	assert_true(de_store_open(&cfg, &s, &e) < 0);
	assert_int_equal(e.category, DE_ERR_DATABASE);
	assert_non_null(strstr(e.message, "garbage.sqlite"));
	stat(bad, &after);
	assert_int_equal(before.st_size, after.st_size);
	FILE *f = fopen(bad, "rb");
	char back[16];
	assert_int_equal(fread(back, 1, 16, f), 16);
	fclose(f);
	assert_memory_equal(back, junk, 16);

	/* another application's SQLite database */
	char *foreign = db_path("foreign.sqlite");
	sqlite3 *db;
	assert_int_equal(sqlite3_open(foreign, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	cfg.path = foreign;
	assert_true(de_store_open(&cfg, &s, &e) < 0);
	assert_non_null(strstr(e.message, "not a daemoneye event store"));

	/* a newer schema version */
	char *newer = db_path("newer.sqlite");
	assert_int_equal(sqlite3_open(newer, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	cfg.path = newer;
	assert_true(de_store_open(&cfg, &s, &e) < 0);
	assert_non_null(strstr(e.message, "schema version 99 is newer"));

	/* read-only open of a store that does not exist */
	char *absent = db_path("absent.sqlite");
	cfg.path = absent;
	cfg.read_only = true;
	assert_true(de_store_open(&cfg, &s, &e) < 0);
	struct stat st;
	assert_int_equal(stat(absent, &st), -1); /* not created */
	free(bad);
	free(foreign);
	free(newer);
	free(absent);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshot_and_scans),
		cmocka_unit_test(test_refuses_foreign_files),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
