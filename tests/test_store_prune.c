/*
 * test_store_prune.c — retention (src/lib/store_prune.c) by age and by
 * size: oldest history first, never the snapshot nor an undelivered alert,
 * a batch budget that stops early and says so, the file shrinking.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define DE_TEST_NAME "store_prune"
#include "testutil.h"
#include "store_fixtures.h"

static void test_retention(void **state)
{
	(void)state;
	char *path = db_path("retention.sqlite");
	struct de_store *s = open_at(path, 1);
	sqlite3 *db = de_store_db(s);
	struct de_process_record r[200];
	struct de_prune_stats ps;
	struct de_error e = {0};
	const int64_t day = 86400000;
	int64_t scan;

	/* 200 processes 10 days ago, 150 of which exit then; 50 still live */
	mk_many(r, 200, 1 * day, 1);
	assert_int_equal(de_store_scan_begin(s, 1 * day, "poll", &scan, &e), 0);
	store_ok(s, r, 200);
	assert_int_equal(de_store_scan_end(s, scan, 1 * day + 5, 200, &e), 0);
	r[0].cpu_usage = 9;
	retime(r, 200, 2 * day, 2);
	store_ok(s, r, 50); /* pid 1 sampled; 150 exit at day 2 */
	retime(r, 200, 10 * day, 3);
	assert_int_equal(de_store_scan_begin(s, 10 * day, "poll", &scan, &e), 0);
	store_ok(s, r, 50);
	assert_int_equal(de_store_scan_end(s, scan, 10 * day + 5, 50, &e), 0);
	add_alert(s, 1 * day, "delivered");
	add_alert(s, 1 * day, "failed");
	add_alert(s, 1 * day, "none");
	add_alert(s, 10 * day, "delivered");
	assert_int_equal(count(db, "SELECT count(*) FROM process_samples"), 1);

	/* keep 5 days, in batches of 40 rows */
	assert_int_equal(de_store_prune(s, 11 * day, 5, 40, 100, &ps, &e), 0);
	assert_false(ps.more);
	/* the exited went; the live are their snapshot rows, never pruned */
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances"), 0);
	assert_int_equal(count(db, "SELECT count(*) FROM processes"), 50);	/* never */
	assert_int_equal(count(db, "SELECT count(*) FROM process_samples"), 0); /* old history */
	assert_int_equal(count(db, "SELECT count(*) FROM alerts"), 3); /* undelivered stay */
	assert_int_equal(count(db, "SELECT count(*) FROM alerts a WHERE NOT EXISTS (SELECT 1 "
				   "FROM alert_deliveries d WHERE d.alert_id = a.id AND "
				   "d.status = 'delivered')"),
			 2);
	assert_int_equal(count(db, "SELECT count(*) FROM scans"), 1); /* the newest stays */

	/* a small batch budget stops early and says so */
	retime(r, 200, 12 * day, 4);
	store_ok(s, r, 200); /* 150 new instances */
	retime(r, 200, 13 * day, 5);
	store_ok(s, r, 50); /* and they exit */
	assert_int_equal(de_store_prune(s, 30 * day, 5, 40, 1, &ps, &e), 0);
	assert_true(ps.more);
	assert_int_equal(ps.rows, 40);
	de_store_close(s);
	clear_many(r, 200);
	free(path);
}

static void test_retention_by_size(void **state)
{
	(void)state;
	char *path = db_path("size.sqlite");
	struct de_store_config cfg = {.path = path, .max_size_mb = 1, .wal_mode = true};
	struct de_store *s;
	struct de_error e = {0};
	struct de_prune_stats ps;
	enum { N = 400 };
	struct de_process_record *r = calloc(N, sizeof(*r));
	char big[2048];

	assert_int_equal(de_store_open(&cfg, &s, &e), 0);
	sqlite3 *db = de_store_db(s);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	/* generations of 400 fat processes that all exit: ~3 MB of history */
	for (int g = 0; g < 4; g++) {
		mk_many(r, N, 1000 + g, g + 1);
		for (size_t i = 0; i < N; i++) {
			r[i].start_time = g * 100000 + (int64_t)i;
			free(r[i].command_line[1]);
			r[i].command_line[1] = strdup(big);
		}
		store_ok(s, r, N);
		clear_many(r, N);
	}
	mk(&r[0], 1, 424242, 9000, 9); /* the live snapshot: one process */
	store_ok(s, r, 1);
	assert_true(count(db, "SELECT count(*) FROM process_instances") > 1000);
	assert_int_equal(de_store_prune(s, 10000, 0, 100, 1000, &ps, &e), 0);
	assert_false(ps.over_cap);
	assert_true(ps.used_bytes <= 1024 * 1024);
	assert_true(ps.rows > 0);
	/* oldest first: what is left is the newest generation, and the snapshot */
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances WHERE start_time < "
				   "100000 AND exited_at IS NOT NULL"),
			 0);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE start_time = 424242"), 1);
	assert_integrity(db);
	/* the file shrank too (auto_vacuum=INCREMENTAL on new files) */
	struct de_store_stats st;
	assert_int_equal(
		sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL),
		SQLITE_OK);
	assert_int_equal(de_store_stats(s, &st, &e), 0);
	assert_true(st.file_bytes <= 2 * 1024 * 1024);
	de_process_record_clear(&r[0]);
	free(r);
	de_store_close(s);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retention),
		cmocka_unit_test(test_retention_by_size),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
