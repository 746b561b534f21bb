/*
 * test_store_stats.c — what de_store_stats() reports (src/lib/store_stats.c)
 * against a store whose contents the test made: every count, the time span
 * of the scans, the last good scan, the schema version, the sizes of the
 * file, its write-ahead log and the pages in use; the same through a
 * read-only connection.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define DE_TEST_NAME "store_stats"
#include "testutil.h"
#include "store_fixtures.h"

static void assert_counts(const struct de_store_stats *st)
{
	assert_int_equal(st->processes, 3);
	assert_int_equal(st->live_instances, 3);
	assert_int_equal(st->instances, 5); /* 3 live, 2 exited */
	assert_int_equal(st->changes, 1);
	assert_int_equal(st->samples, 1);
	assert_int_equal(st->scans, 3);
	assert_int_equal(st->failed_scans, 1);
	assert_int_equal(st->alerts, 2);
	assert_int_equal(st->deliveries, 1);
	assert_int_equal(st->oldest_ms, 1000);
	assert_int_equal(st->newest_ms, 3100); /* the failed scan's end */
	assert_int_equal(st->last_scan_id, 2); /* the last that ended well */
	assert_int_equal(st->schema_version, DE_STORE_SCHEMA_VERSION);
	assert_true(st->used_bytes > 0);
	assert_int_equal(st->used_bytes % 16384, 0); /* new files: 16 KiB pages */
}

static void test_stats(void **state)
{
	(void)state;
	char *path = db_path("stats.sqlite");
	struct de_store *s = open_at(path, 1);
	struct de_process_record r[5];
	struct de_store_stats st;
	struct de_error e = {0};
	int64_t scan;

	/* an empty store */
	assert_int_equal(de_store_stats(s, &st, &e), 0);
	assert_int_equal(st.processes + st.instances + st.scans + st.alerts, 0);
	assert_int_equal(st.oldest_ms + st.newest_ms + st.last_scan_id, 0);

	mk_many(r, 5, 1000, 1);
	assert_int_equal(de_store_scan_begin(s, 1000, "poll", &scan, &e), 0);
	store_ok(s, r, 5);
	assert_int_equal(de_store_scan_end(s, scan, 1100, 5, &e), 0);
	r[0].cpu_usage = 9; /* a sample: the interval (1 s) has passed */
	free(r[1].command_line[1]);
	r[1].command_line[1] = strdup("--exec'd"); /* a change */
	retime(r, 5, 2000, 2);
	assert_int_equal(de_store_scan_begin(s, 2000, "poll", &scan, &e), 0);
	store_ok(s, r, 3); /* pids 4 and 5 exit */
	assert_int_equal(de_store_scan_end(s, scan, 2200, 3, &e), 0);
	assert_int_equal(de_store_scan_begin(s, 3000, "poll", &scan, &e), 0);
	assert_int_equal(de_store_scan_fail(s, scan, 3100, "test", &e), 0);
	add_alert(s, 2500, "delivered");
	add_alert(s, 2600, "none");

	assert_int_equal(de_store_stats(s, &st, &e), 0);
	assert_counts(&st);
	assert_true(st.file_bytes > 0);
	assert_true(st.wal_bytes > 0); /* nothing checkpointed yet */
	/* folded into the file, the log is empty and the file holds every page */
	assert_int_equal(sqlite3_wal_checkpoint_v2(de_store_db(s), NULL, SQLITE_CHECKPOINT_TRUNCATE,
						   NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(de_store_stats(s, &st, &e), 0);
	assert_counts(&st);
	assert_int_equal(st.wal_bytes, 0);
	assert_true(st.file_bytes >= st.used_bytes);
	de_store_close(s);

	/* a reader sees the same */
	struct de_store_config ro = {.path = path, .read_only = true};
	assert_int_equal(de_store_open(&ro, &s, &e), 0);
	assert_int_equal(de_store_stats(s, &st, &e), 0);
	assert_counts(&st);
	de_store_close(s);
	clear_many(r, 5);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stats),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
