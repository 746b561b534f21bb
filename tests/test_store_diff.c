/*
 * test_store_diff.c — a full scan against the snapshot
 * (src/lib/store_diff.c): new, changed (values or identity), exited and
 * reused pids, a pid twice refused with nothing changed, the index rebuilt
 * from the file on reopen, samples at their interval, and a first scan's
 * bulk index rebuild.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define DE_TEST_NAME "store_diff"
#include "testutil.h"
#include "store_fixtures.h"
#include "daemoneye/blake3.h"

static void test_diff_grows_with_churn(void **state)
{
	(void)state;
	char *path = db_path("diff.sqlite");
	struct de_store *s = open_at(path, 3600);
	sqlite3 *db = de_store_db(s);
	struct de_process_record r[100];
	struct de_store_diff d;
	struct de_error e = {0};

	mk_many(r, 100, 10000, 1);
	store_ok(s, r, 100);
	d = de_store_last_diff(s);
	assert_int_equal(d.added, 100);
	/* one row per new process: live instances are their snapshot rows */
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances"), 0);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE first_seen = 10000 AND "
				   "first_scan_id = 1 AND instance_id BETWEEN 1 AND 100"),
			 100);

	/* an unchanged scan writes no process rows */
	int before = sqlite3_total_changes(db);
	retime(r, 100, 20000, 2);
	store_ok(s, r, 100);
	d = de_store_last_diff(s);
	assert_int_equal(d.added + d.changed + d.exited + d.samples + d.history, 0);
	/* only store_state (3 rows) and the scans counts (no scans row 2 here) */
	assert_true(sqlite3_total_changes(db) - before <= 4);
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances"), 0);
	assert_int_equal(count(db, "SELECT value FROM store_state WHERE key='snapshot_time'"),
			 20000);

	/* a changing value: the snapshot row only */
	r[4].cpu_usage = 42.0;
	json_object_set_new(r[4].platform_data, "utime_ticks", json_integer(99));
	retime(r, 100, 30000, 3);
	store_ok(s, r, 100);
	d = de_store_last_diff(s);
	assert_int_equal(d.changed, 1);
	assert_int_equal(d.history, 0);
	assert_int_equal(count(db, "SELECT cpu_usage FROM processes WHERE pid = 5"), 42);
	assert_int_equal(count(db,
			       "SELECT count(*) FROM processes WHERE pid = 5 AND command_line = "
			       "'synthetic --n=5' AND argv_json = '[\"synthetic\",\"--n=5\"]' AND "
			       "platform_data LIKE '%\"utime_ticks\":99%'"),
			 1);
	assert_int_equal(count(db, "SELECT count(*) FROM process_changes"), 0);

	/* an identity change (exec): history keeps the old command line */
	free(r[6].command_line[1]);
	r[6].command_line[1] = strdup("--exec'd");
	retime(r, 100, 40000, 4);
	store_ok(s, r, 100);
	d = de_store_last_diff(s);
	assert_int_equal(d.changed, 1);
	assert_int_equal(d.history, 1);
	assert_int_equal(count(db, "SELECT count(*) FROM process_changes WHERE command_line = "
				   "'synthetic --n=7' AND changed_at = 40000"),
			 1);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE pid = 7 AND "
				   "command_line = 'synthetic --exec''d'"),
			 1);

	/* an exit: out of the snapshot, exited in history */
	retime(r, 100, 50000, 5);
	store_ok(s, r, 99); /* pid 100 is gone */
	d = de_store_last_diff(s);
	assert_int_equal(d.exited, 1);
	assert_int_equal(count(db, "SELECT count(*) FROM processes"), 99);
	assert_int_equal(count(db, "SELECT exited_at FROM process_instances WHERE pid = 100"),
			 50000);
	assert_int_equal(count(db, "SELECT last_seen FROM process_instances WHERE pid = 100"),
			 40000);
	assert_int_equal(count(db, "SELECT exit_scan_id FROM process_instances WHERE pid = 100"),
			 5);
	/* its history row is its last snapshot row */
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances WHERE pid = 100 AND "
				   "first_seen = 10000 AND first_scan_id = 1 AND last_scan_id = 4 "
				   "AND command_line = 'synthetic --n=100' AND id = 100"),
			 1);

	/* a reused pid is a new instance */
	r[9].start_time = 777777;
	retime(r, 100, 60000, 6);
	store_ok(s, r, 99);
	d = de_store_last_diff(s);
	assert_int_equal(d.added, 1);
	assert_int_equal(d.exited, 1);
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances WHERE pid = 10 AND "
				   "exited_at = 60000 AND exit_scan_id = 6 AND last_seen = 50000"),
			 1);
	assert_int_equal(count(db,
			       "SELECT count(*) FROM processes WHERE pid = 10 AND "
			       "start_time = 777777 AND first_seen = 60000 AND instance_id > 100"),
			 1);
	assert_int_equal(count(db, "SELECT count(*) FROM processes"), 99);

	/* a pid twice is refused and nothing changes */
	const char *all = "SELECT (SELECT count(*) FROM process_instances) + "
			  "(SELECT count(*) FROM processes)";
	int64_t inst = count(db, all);
	r[1].pid = r[0].pid;
	r[1].start_time = 5;
	r[2].start_time = 6; /* would be a new instance if the batch were applied */
	assert_true(de_store_processes(s, r[0].scan_id, r, 99, &e) < 0);
	assert_int_equal(e.category, DE_ERR_VALIDATION);
	assert_non_null(strstr(e.message, "appears twice"));
	assert_int_equal(count(db, all), inst);
	/* and the in-memory index was not disturbed: the good batch again is a no-op */
	r[1].pid = 2;
	r[1].start_time = 1001;
	r[2].start_time = 1002;
	store_ok(s, r, 99);
	d = de_store_last_diff(s);
	assert_int_equal(d.added + d.changed + d.exited, 0);
	de_store_close(s);

	/* reopening rebuilds the index from the file: still a no-op */
	s = open_at(path, 3600);
	store_ok(s, r, 99);
	d = de_store_last_diff(s);
	assert_int_equal(d.added + d.changed + d.exited + d.history, 0);
	de_store_close(s);
	clear_many(r, 100);
	free(path);
}

static void test_samples(void **state)
{
	(void)state;
	char *path = db_path("samples.sqlite");
	struct de_store *s = open_at(path, 10);
	sqlite3 *db = de_store_db(s);
	struct de_process_record r[10];
	struct de_store_diff d;

	mk_many(r, 10, 100000, 1);
	store_ok(s, r, 10); /* sample clock starts here; first values live in the instance */
	assert_int_equal(count(db, "SELECT count(*) FROM process_samples"), 0);
	r[0].memory_usage = 8192;
	retime(r, 10, 105000, 2); /* 5 s later: not yet */
	store_ok(s, r, 10);
	d = de_store_last_diff(s);
	assert_int_equal(d.samples, 0);
	assert_int_equal(d.changed, 1);
	assert_int_equal(count(db, "SELECT memory_usage FROM processes WHERE pid = 1"), 8192);
	retime(r, 10, 111000, 3); /* 11 s after the last sampling point */
	store_ok(s, r, 10);
	d = de_store_last_diff(s);
	assert_int_equal(d.samples, 1); /* only the one that changed */
	assert_int_equal(count(db, "SELECT memory_usage FROM process_samples WHERE t = 111000"),
			 8192);
	retime(r, 10, 122000, 4); /* due again, nothing changed since the sample */
	store_ok(s, r, 10);
	assert_int_equal(de_store_last_diff(s).samples, 0);
	de_store_close(s);
	/* after a restart the last sampled value is known: still nothing */
	s = open_at(path, 10);
	retime(r, 10, 133000, 5);
	store_ok(s, r, 10);
	assert_int_equal(de_store_last_diff(s).samples, 0);
	de_store_close(s);
	clear_many(r, 10);
	free(path);
}

/*
 * The batch hash (struct de_store_diff), and the data version beside it: the same batch hashes the
 * same whenever it is stored (only collection times differ), a changed value or identity of one
 * process changes it, and it is BLAKE3 over the documented 32-byte digests (checked for an empty
 * batch: BLAKE3 of nothing).
 */
static void test_batch_hash(void **state)
{
	(void)state;
	char *path = db_path("batch.sqlite");
	struct de_store *s = open_at(path, 3600);
	struct de_process_record r[300]; /* more than one block of digests */
	struct de_store_diff d;
	uint8_t first[32], empty[32];

	mk_many(r, 300, 10000, 1);
	store_ok(s, r, 300);
	d = de_store_last_diff(s);
	assert_true(d.has_batch_hash);
	memcpy(first, d.batch_hash, 32);
	/* the data version: up with the first scan's rows, not with an unchanged scan */
	struct de_store_versions v = de_store_data_versions(s);
	assert_true(v.data > 0 && v.identity > 0);
	retime(r, 300, 20000, 2);
	store_ok(s, r, 300);
	d = de_store_last_diff(s);
	assert_memory_equal(d.batch_hash, first, 32); /* nothing stored changed */
	assert_int_equal(de_store_data_versions(s).data, v.data);
	assert_int_equal(de_store_data_versions(s).identity, v.identity);
	r[299].cpu_usage = 7.0;
	retime(r, 300, 30000, 3);
	store_ok(s, r, 300);
	d = de_store_last_diff(s);
	assert_memory_not_equal(d.batch_hash, first, 32);
	/* a changed value: data, not identity */
	assert_int_equal(de_store_data_versions(s).data, v.data + 1);
	assert_int_equal(de_store_data_versions(s).identity, v.identity);
	memcpy(first, d.batch_hash, 32);
	free(r[0].command_line[1]);
	r[0].command_line[1] = strdup("--other");
	retime(r, 300, 40000, 4);
	store_ok(s, r, 300);
	d = de_store_last_diff(s);
	assert_memory_not_equal(d.batch_hash, first, 32);
	/* an identity change: both */
	assert_int_equal(de_store_data_versions(s).data, v.data + 2);
	assert_int_equal(de_store_data_versions(s).identity, v.identity + 1);
	/* no records: the hash of no digests */
	retime(r, 0, 50000, 5);
	store_ok(s, r, 0);
	d = de_store_last_diff(s);
	de_blake3_hash("", 0, empty);
	assert_true(d.has_batch_hash);
	assert_memory_equal(d.batch_hash, empty, 32);
	de_store_close(s);
	clear_many(r, 300);
	free(path);
}

/* The text columns: platform_data as compact JSON, exact integers, flags. */

/*
 * A scan of many new processes builds the snapshot's indexes after its
 * rows: afterwards they are there, as defined, and used; a bulk scan that
 * fails leaves them (and the snapshot) as they were.
 */
static void test_bulk_first_scan(void **state)
{
	(void)state;
	char *path = db_path("bulk.sqlite");
	struct de_store *s = open_at(path, 3600);
	sqlite3 *db = de_store_db(s);
	enum { N = 3000 };
	struct de_process_record *r = calloc(N, sizeof(*r));
	struct de_error e = {0};
	const char *defs = "SELECT group_concat(sql, ';') FROM (SELECT sql FROM sqlite_master "
			   "WHERE type = 'index' AND tbl_name = 'processes' AND sql IS NOT NULL "
			   "ORDER BY name)";
	char *before = NULL;
	sqlite3_stmt *st;

	assert_int_equal(sqlite3_prepare_v2(db, defs, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	before = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	assert_non_null(strstr(before, "processes_name"));

	/* a failing bulk scan (a pid twice at its end) changes nothing */
	mk_many(r, N, 1000, 1);
	r[N - 1].pid = 5;
	assert_true(de_store_processes(s, r[0].scan_id, r, N, &e) < 0);
	assert_int_equal(count(db, "SELECT count(*) FROM processes"), 0);
	r[N - 1].pid = N;
	store_ok(s, r, N);
	assert_int_equal(de_store_last_diff(s).added, N);
	assert_int_equal(sqlite3_prepare_v2(db, defs, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), before);
	sqlite3_finalize(st);
	/* the rebuilt indexes hold every row and serve lookups */
	assert_int_equal(count(db, "SELECT count(*) FROM processes INDEXED BY processes_name "
				   "WHERE name = 'odd'"),
			 N / 2);
	assert_int_equal(count(db, "SELECT count(*) FROM processes INDEXED BY processes_name "
				   "WHERE name = 'even'"),
			 N / 2);
	assert_integrity(db);
	/* a steady scan after it goes the usual way */
	retime(r, N, 2000, 2);
	store_ok(s, r, N);
	assert_int_equal(de_store_last_diff(s).added + de_store_last_diff(s).changed, 0);
	de_store_close(s);
	clear_many(r, N);
	free(r);
	free(before);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_diff_grows_with_churn),
		cmocka_unit_test(test_samples),
		cmocka_unit_test(test_batch_hash),
		cmocka_unit_test(test_bulk_first_scan),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
