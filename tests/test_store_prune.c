/*
 * test_store_prune.c — retention (src/lib/store_prune.c) by age and by
 * size: oldest history first, never the snapshot nor an undelivered alert,
 * a batch budget that stops early and says so, the file shrinking; the
 * free-disk watermark (pruning for space, then no history written), and the
 * alerting tables (resolved states, suppressed matches, closed windows).
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

#define DE_TEST_NAME "store_prune"
#include "testutil.h"
#include "store_fixtures.h"
#include "store_int.h" /* the size cap, set directly */

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

enum { N = 400 };

/*
 * A store at cfg with four generations of N fat processes that all exited
 * (start times g * 100000 + i: ~3 MB of history), and a snapshot of one
 * live process (pid 1, start 424242) left in r[0].
 */
static struct de_store *fat_history(const struct de_store_config *cfg, struct de_process_record *r)
{
	struct de_store *s;
	struct de_error e = {0};
	char big[2048];

	assert_int_equal(de_store_open(cfg, &s, &e), 0);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
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
	mk(&r[0], 1, 424242, 9000, 9);
	store_ok(s, r, 1);
	assert_true(count(de_store_db(s), "SELECT count(*) FROM process_instances") > 1000);
	return s;
}

static void test_retention_by_size(void **state)
{
	(void)state;
	char *path = db_path("size.sqlite");
	struct de_store_config cfg = {.path = path, .max_size_mb = 1, .wal_mode = true};
	struct de_error e = {0};
	struct de_prune_stats ps;
	struct de_process_record *r = calloc(N, sizeof(*r));

	assert_non_null(r);
	struct de_store *s = fat_history(&cfg, r);
	sqlite3 *db = de_store_db(s);
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

/* The file system as the free-disk test sees it: fake_base minus the store file. */
static uint64_t fake_base;

static uint64_t fake_free(const char *path)
{
	struct stat st;
	uint64_t used = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
	return used < fake_base ? fake_base - used : 0;
}

static void test_free_disk_watermark(void **state)
{
	(void)state;
	char *path = db_path("disk.sqlite");
	struct de_store_config cfg = {.path = path, .free_bytes = fake_free};
	struct de_error e = {0};
	struct de_prune_stats ps;
	struct de_process_record *r = calloc(N, sizeof(*r));
	int64_t scan;

	assert_non_null(r);
	fake_base = UINT64_MAX / 2;
	struct de_store *s = fat_history(&cfg, r);
	sqlite3 *db = de_store_db(s);
	int64_t before = count(db, "SELECT count(*) FROM process_instances");

	/* no watermark: nothing happens, whatever the free space */
	fake_base = 1;
	assert_int_equal(de_store_prune(s, 10000, 0, 100, 1000, &ps, &e), 0);
	assert_false(ps.low_disk);
	assert_false(ps.history_off);
	assert_int_equal(ps.rows, 0);

	/* 1 MiB short of the watermark: the oldest history goes until it is back */
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	fake_base = (uint64_t)sb.st_size + 1024 * 1024;
	de_store_set_limits(s, 0, 2 * 1024 * 1024);
	assert_int_equal(de_store_prune(s, 10000, 0, 100, 1000, &ps, &e), 0);
	assert_true(ps.low_disk);
	assert_false(ps.history_off);
	assert_true(ps.rows > 0);
	assert_true(ps.free_bytes >= 2 * 1024 * 1024);
	assert_true(ps.free_bytes == fake_free(path));
	int64_t left = count(db, "SELECT count(*) FROM process_instances");
	assert_true(left > 0 && left < before);
	/* oldest first, and no more than needed: the newer generations are all there */
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances WHERE start_time >= "
				   "200000"),
			 2 * N);
	assert_integrity(db);
	/* room again: nothing more goes */
	assert_int_equal(de_store_prune(s, 10000, 0, 100, 1000, &ps, &e), 0);
	assert_false(ps.low_disk);
	assert_int_equal(ps.rows, 0);

	/* a watermark no pruning can reach: all history goes, then it is not written */
	de_store_set_limits(s, 0, UINT64_MAX / 4);
	assert_int_equal(de_store_prune(s, 10000, 0, 100, 1000, &ps, &e), 0);
	assert_true(ps.low_disk);
	assert_true(ps.history_off);
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances"), 0);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE start_time = 424242"), 1);
	/* new processes go into the snapshot; their exits leave no history */
	de_process_record_clear(&r[0]);
	mk_many(r, 20, 20000, 20);
	assert_int_equal(de_store_scan_begin(s, 20000, "poll", &scan, &e), 0);
	store_ok(s, r, 20);
	assert_int_equal(de_store_scan_end(s, scan, 20005, 20, &e), 0);
	assert_int_equal(count(db, "SELECT count(*) FROM processes"), 20);
	retime(r, 20, 21000, 21);
	store_ok(s, r, 5); /* 15 exit */
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances"), 0);
	assert_int_equal(count(db, "SELECT count(*) FROM processes"), 5);
	add_alert(s, 21000, "none"); /* alerts still are written */
	add_alert(s, 21000, "delivered");
	assert_int_equal(count(db, "SELECT count(*) FROM alerts"), 2);
	assert_int_equal(de_store_prune(s, 30000, 0, 100, 1000, &ps, &e), 0);
	assert_true(ps.history_off);
	assert_int_equal(count(db, "SELECT count(*) FROM alerts"), 2); /* and kept */
	/* it stays off until 1.5 times the watermark is free */
	de_store_set_limits(s, 0, 1024 * 1024);
	{
		struct stat now;
		assert_int_equal(stat(path, &now), 0);
		fake_base = (uint64_t)now.st_size + 1024 * 1024 + 256 * 1024; /* 1.25x */
	}
	assert_int_equal(de_store_prune(s, 10000, 0, 100, 1000, &ps, &e), 0);
	assert_false(ps.low_disk);
	assert_true(ps.history_off);
	{
		struct stat now;
		assert_int_equal(stat(path, &now), 0);
		fake_base = (uint64_t)now.st_size + 2 * 1024 * 1024; /* 2x */
	}
	assert_int_equal(de_store_prune(s, 10000, 0, 100, 1000, &ps, &e), 0);
	assert_false(ps.low_disk);
	assert_false(ps.history_off);
	retime(r, 20, 22000, 22);
	store_ok(s, r, 1); /* 4 exit: history again */
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances"), 4);
	assert_integrity(db);
	clear_many(r, 20);
	free(r);
	de_store_close(s);
	free(path);
}

/* Retention of the alerting tables: resolved states, suppressed and folded
   matches, closed windows, never what an undelivered alert names, never an
   open state.  The rows are written here in SQL, not by the alert manager. */
static void test_retention_alerting(void **state)
{
	(void)state;
	char *path = db_path("alerting.sqlite");
	struct de_store *s = open_at(path, 1);
	sqlite3 *db = de_store_db(s);
	struct de_prune_stats ps;
	struct de_error e = {0};
	const int64_t day = 86400000;
	char sql[4096];

	snprintf(sql, sizeof(sql),
		 "INSERT INTO alerts(id, alert_time, rule_id, title, description, severity,"
		 " affected_processes, process_count, alert_data, dedupe_key) VALUES"
		 " ('A1', %lld, 'r', 't', 'd', 'low', '[]', 0, 'null', 'k'),"
		 " ('A2', %lld, 'r', 't', 'd', 'low', '[]', 0, 'null', 'k'),"
		 " ('A3', %lld, 'r', 't', 'd', 'low', '[]', 0, 'null', 'k');"
		 "INSERT INTO alert_deliveries(alert_id, sink, status, attempts, last_attempt_at)"
		 " VALUES ('A1', 'f', 'delivered', 1, %lld), ('A2', 'f', 'dead', 5, %lld),"
		 " ('A3', 'f', 'pending', 0, NULL);"
		 "INSERT INTO alert_state(id, rule_id, subject, alert_id, status, opened_at,"
		 " last_seen, resolved_at) VALUES"
		 " (1, 'r', 'i:1', 'A1', 'resolved', %lld, %lld, %lld),"
		 " (2, 'r', 'i:2', 'A2', 'resolved', %lld, %lld, %lld),"
		 " (3, 'r', 'i:3', NULL, 'resolved', %lld, %lld, %lld),"
		 " (4, 'r', 'i:4', 'A1', 'open', %lld, %lld, NULL),"
		 " (5, 'r', 'i:5', 'A1', 'resolved', %lld, %lld, %lld),"
		 " (6, 'r', 'i:6', 'A3', 'resolved', %lld, %lld, %lld);"
		 "INSERT INTO alert_suppressed(id, t, rule_id, kind, folded_into) VALUES"
		 " (1, %lld, 'r', 'exception', NULL), (2, %lld, 'r', 'folded', 'A3'),"
		 " (3, %lld, 'r', 'folded', 'A1'), (4, %lld, 'r', 'exception', NULL);"
		 "INSERT INTO dedup_windows(key, alert_id, start_ms, end_ms, folded) VALUES"
		 " ('w1', 'A1', %lld, %lld, 2), ('w2', 'A3', %lld, %lld, 2),"
		 " ('w3', 'A1', %lld, %lld, 1), ('w4', NULL, %lld, %lld, 0);",
		 (long long)day, (long long)day, (long long)day, (long long)day, (long long)day,
		 /* states: 1, 2, 3 resolved at day 1; 4 open; 5 resolved at day 9; 6 day 1 */
		 (long long)day, (long long)day, (long long)day, (long long)day, (long long)day,
		 (long long)day, (long long)day, (long long)day, (long long)day, (long long)day,
		 (long long)day, (long long)day, (long long)(9 * day), (long long)(9 * day),
		 (long long)day, (long long)day, (long long)day,
		 /* suppressed: 1, 2, 3 at day 1, 4 at day 9 */
		 (long long)day, (long long)day, (long long)day, (long long)(9 * day),
		 /* windows: w1, w2 closed at day 2; w3 open until day 12; w4 closed at day 2 */
		 (long long)day, (long long)(2 * day), (long long)day, (long long)(2 * day),
		 (long long)(10 * day), (long long)(12 * day), (long long)day,
		 (long long)(2 * day));
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);

	/* no age to go by: nothing goes */
	assert_int_equal(de_store_prune(s, 11 * day, 0, 40, 100, &ps, &e), 0);
	assert_int_equal(ps.rows, 0);
	/* keep 5 days */
	assert_int_equal(de_store_prune(s, 11 * day, 5, 40, 100, &ps, &e), 0);
	assert_false(ps.more);
	/* A1 was delivered: it goes, and what names it; A2 (dead) and A3 (pending) stay */
	assert_int_equal(count(db, "SELECT count(*) FROM alerts WHERE id IN ('A2', 'A3')"), 2);
	assert_int_equal(count(db, "SELECT count(*) FROM alerts"), 2);
	/* states: the open one and the recent one stay, as do those of A2 and A3 */
	assert_int_equal(count(db, "SELECT count(*) FROM alert_state"), 4);
	assert_int_equal(count(db, "SELECT count(*) FROM alert_state WHERE id IN (2, 4, 5, 6)"), 4);
	/* matches: the one folded into A3 and the recent one stay */
	assert_int_equal(count(db, "SELECT count(*) FROM alert_suppressed"), 2);
	assert_int_equal(count(db, "SELECT count(*) FROM alert_suppressed WHERE id IN (2, 4)"), 2);
	/* windows: the one still open, and A3's */
	assert_int_equal(count(db, "SELECT count(*) FROM dedup_windows"), 2);
	assert_int_equal(count(db, "SELECT count(*) FROM dedup_windows WHERE key IN ('w2', 'w3')"),
			 2);
	/* over a size cap, whatever their age: every resolved state and match that
	   no undelivered alert names goes; windows still go by age alone (none
	   here), open states never */
	s->max_size_bytes = 1;
	assert_int_equal(de_store_prune(s, 11 * day, 0, 40, 100, &ps, &e), 0);
	assert_true(ps.over_cap);
	assert_int_equal(count(db, "SELECT count(*) FROM alert_state"), 3);
	assert_int_equal(count(db, "SELECT count(*) FROM alert_state WHERE id IN (2, 4, 6)"), 3);
	assert_int_equal(count(db, "SELECT count(*) FROM alert_suppressed"), 1);
	assert_int_equal(count(db, "SELECT count(*) FROM dedup_windows"), 2);
	assert_integrity(db);
	de_store_close(s);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retention),
		cmocka_unit_test(test_retention_by_size),
		cmocka_unit_test(test_free_disk_watermark),
		cmocka_unit_test(test_retention_alerting),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
