/*
 * test_store_query.c — the process history query (src/lib/store_query.c):
 * each filter, exited and live instances merged oldest first, offset and
 * limit across both, the callback's stop, a read-only connection, and rows
 * streamed in memory that does not grow with history.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>

#include <cmocka.h>

#define DE_TEST_NAME "store_query"
#include "testutil.h"
#include "store_fixtures.h"

static void test_query(void **state)
{
	(void)state;
	char *path = db_path("query.sqlite");
	struct de_store *s = open_at(path, 3600);
	struct de_process_record r[20];
	struct collected c = {0};

	mk_many(r, 20, 1000, 1);
	store_ok(s, r, 20);
	retime(r, 20, 2000, 2);
	store_ok(s, r, 10); /* 11..20 exit at 2000 */
	retime(r, 20, 3000, 3);
	r[0].start_time = 5; /* pid 1 reused at 3000 */
	store_ok(s, r, 10);

	struct de_process_query q = {.has_pid = true, .pid = 1};
	assert_int_equal(query(s, &q, &c), 2);
	assert_false(c.alive[0]);
	assert_true(c.alive[1]);
	q = (struct de_process_query){.name = "odd"};
	assert_int_equal(query(s, &q, &c), 11); /* 10 odd pids, pid 1 twice */
	q = (struct de_process_query){.name_pattern = "ev*"};
	assert_int_equal(query(s, &q, &c), 10);
	q = (struct de_process_query){.current_only = true};
	assert_int_equal(query(s, &q, &c), 10);
	q = (struct de_process_query){.has_since = true, .since_ms = 2500};
	assert_int_equal(query(s, &q, &c),
			 11); /* 11..20 gone by then; the first pid 1 exits at 3000 */
	q = (struct de_process_query){.has_until = true, .until_ms = 1500};
	assert_int_equal(query(s, &q, &c), 20); /* the reused pid 1 appeared later */
	q = (struct de_process_query){.has_scan_id = true, .scan_id = 1};
	assert_int_equal(query(s, &q, &c), 20);
	q = (struct de_process_query){.has_scan_id = true, .scan_id = 3};
	assert_int_equal(query(s, &q, &c), 10);
	q = (struct de_process_query){.limit = 5, .offset = 3};
	assert_int_equal(query(s, &q, &c), 5);
	assert_int_equal(c.pids[0], 4);
	/* exited and live instances come merged, oldest (lowest id) first:
	   pid 1's first instance exited, 2..10 live, 11..20 exited, then the
	   second pid 1; offset and limit count across both */
	q = (struct de_process_query){0};
	assert_int_equal(query(s, &q, &c), 21);
	for (size_t i = 0; i < 21; i++) {
		assert_int_equal(c.pids[i], i == 20 ? 1 : i + 1);
		assert_int_equal(c.alive[i], (i >= 1 && i <= 9) || i == 20);
	}
	q = (struct de_process_query){.limit = 4, .offset = 8};
	assert_int_equal(query(s, &q, &c), 4);
	assert_int_equal(c.pids[0], 9);
	assert_true(c.alive[1]);
	assert_int_equal(c.pids[2], 11);
	assert_false(c.alive[2]);
	/* the callback stops the stream and its value comes back */
	struct de_error e = {0};
	c.n = 0;
	c.stop_after = 2;
	q = (struct de_process_query){0};
	assert_int_equal(de_store_query_processes(s, &q, collect_cb, &c, &e), 7);
	assert_int_equal(c.n, 2);
	c.stop_after = 0;
	de_store_close(s);

	/* the same through a read-only connection */
	struct de_store_config ro = {.path = path, .read_only = true};
	assert_int_equal(de_store_open(&ro, &s, &e), 0);
	q = (struct de_process_query){.has_pid = true, .pid = 1};
	assert_int_equal(query(s, &q, &c), 2);
	assert_true(de_store_processes(s, r[0].scan_id, r, 1, &e) < 0);
	de_store_close(s);
	clear_many(r, 20);
	free(path);
}

/* Rows are streamed: the heap does not grow with the number of rows. */
struct heapwatch {
	size_t rows;
	size_t max; /* most heap in use seen during the stream */
};

static int heap_cb(const struct de_process_row *row, void *arg)
{
	struct heapwatch *h = arg;
	(void)row;
	h->rows++;
	if (mallinfo2().uordblks > h->max)
		h->max = mallinfo2().uordblks;
	return 0;
}

static void test_query_streams(void **state)
{
	(void)state;
	char *path = db_path("stream.sqlite");
	struct de_store *s = open_at(path, 3600);
	sqlite3 *db = de_store_db(s);
	struct de_error e = {0};
	enum { ROWS = 20000 };

	/* 20,000 exited instances with fat command lines, written directly */
	assert_int_equal(
		sqlite3_exec(db,
			     "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
			     "FROM n WHERE i < 20000) "
			     "INSERT INTO process_instances(pid, start_time, name, "
			     "command_line, argv_json, accessible, file_exists, first_seen, "
			     "last_seen, exited_at) SELECT i, i, 'n' || i, "
			     "printf('%.2000c', 'x'), '[]', 1, 1, i, i, i + 1 FROM n",
			     NULL, NULL, NULL),
		SQLITE_OK);
	struct heapwatch h = {0};
	struct de_process_query q = {0};
	size_t before = mallinfo2().uordblks;
	assert_int_equal(de_store_query_processes(s, &q, heap_cb, &h, &e), 0);
	assert_int_equal(h.rows, ROWS);
	/* 20,000 x 2 KB held in memory would be 40 MB; the stream stays small
	   (valgrind's malloc reports 0 here, which passes trivially) */
	assert_true(h.max < before + 8 * 1024 * 1024);
	q.has_since = true;
	q.since_ms = ROWS - 9; /* exited_at = i + 1 >= ROWS - 9 */
	h = (struct heapwatch){0};
	assert_int_equal(de_store_query_processes(s, &q, heap_cb, &h, &e), 0);
	assert_int_equal(h.rows, 11);
	de_store_close(s);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_query_streams),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
