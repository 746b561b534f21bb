/*
 * test_store_text.c — a record as a row (src/lib/store_text.c): the text
 * columns (compact JSON, exact integers, escapes, empty command lines) and
 * the parameters of a multi-row insert, absent values NULL in their row
 * only; the cap on a column's text.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store_int.h"

#define DE_TEST_NAME "store_text"
#include "testutil.h"
#include "store_fixtures.h"

static void test_text_columns(void **state)
{
	(void)state;
	char *path = db_path("text.sqlite");
	struct de_store *s = open_at(path, 3600);
	sqlite3 *db = de_store_db(s);
	struct de_process_record r[2];

	mk_many(r, 2, 1000, 1);
	json_decref(r[0].platform_data);
	r[0].platform_data =
		json_pack("{s:I,s:I,s:I,s:s,s:b,s:b,s:n}", "nice", (json_int_t)-5, "lo",
			  (json_int_t)INT64_MIN, "hi", (json_int_t)INT64_MAX, "state", "R\"\\\x01",
			  "exe_deleted", 1, "exe_replaced", 1, "none");
	json_decref(r[1].platform_data);
	r[1].platform_data = NULL;
	store_ok(s, r, 2);
	assert_int_equal(count(db,
			       "SELECT count(*) FROM processes WHERE pid = 1 AND platform_data = "
			       "'{\"nice\":-5,\"lo\":-9223372036854775808,"
			       "\"hi\":9223372036854775807,\"state\":\"R\\\"\\\\\\u0001\","
			       "\"exe_deleted\":true,\"exe_replaced\":true,\"none\":null}'"
			       " AND exe_deleted = 1 AND exe_replaced = 1"),
			 1);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE pid = 2 AND "
				   "platform_data IS NULL AND exe_deleted = 0"),
			 1);
	/* an empty command line is an empty text and an empty array */
	for (size_t i = 0; i < r[1].command_line_len; i++)
		free(r[1].command_line[i]);
	r[1].command_line_len = 0;
	retime(r, 2, 2000, 2);
	store_ok(s, r, 2);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE pid = 2 AND "
				   "command_line = '' AND argv_json = '[]'"),
			 1);
	assert_int_equal(de_store_last_diff(s).history, 1);
	de_store_close(s);
	clear_many(r, 2);
	free(path);
}

/* mk()'s records with collector facts instead of JSON (what procmond sends):
   hostile text in some cgroups and hash errors, exe_deleted on pid 3. */

/*
 * A first scan inserts new processes many rows to a statement: an absent
 * optional (ppid, start_time, cpu, memory) in any row of a batch is NULL in
 * that row, and only there.
 */
static void test_batch_absent_values(void **state)
{
	(void)state;
	char *path = db_path("nulls.sqlite");
	struct de_store *s = open_at(path, 3600);
	sqlite3 *db = de_store_db(s);
	enum { N = 40 };
	struct de_process_record r[N];

	mk_many(r, N, 1000, 1);
	for (size_t i = 0; i < N; i++) {
		r[i].ppid = 7;
		if (i % 4 == 1) {
			r[i].has_ppid = false;
			r[i].has_start_time = false;
			r[i].has_cpu_usage = false;
			r[i].has_memory_usage = false;
		}
	}
	store_ok(s, r, N);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE ppid IS NULL AND "
				   "start_time IS NULL AND cpu_usage IS NULL AND memory_usage IS "
				   "NULL AND pid % 4 = 2"),
			 N / 4);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE ppid = 7 AND "
				   "start_time = 999 + pid AND cpu_usage = 0.5 AND memory_usage = "
				   "4096 AND pid % 4 != 2"),
			 N - N / 4);
	de_store_close(s);
	clear_many(r, N);
	free(path);
}

/*
 * Each text column is capped (at SQLite's length limit; here, through the
 * store's internals, at 64 bytes): a longer one refuses the batch as a
 * ValidationError and writes nothing, in a multi-row insert and in an
 * update alike, and the buffers serve the next batch.
 */
static void test_text_cap(void **state)
{
	(void)state;
	char *path = db_path("cap.sqlite");
	struct de_store *s = open_at(path, 3600);
	sqlite3 *db = de_store_db(s);
	enum { N = 20 };
	struct de_process_record r[N];
	struct de_error e = {0};
	char big[101];

	for (size_t i = 0; i <= STORE_BATCH_ROWS; i++)
		store_text_init(&s->text[i], 64);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	mk_many(r, N, 1000, 1);
	free(r[7].command_line[1]);
	r[7].command_line[1] = strdup(big);
	assert_int_equal(de_store_processes(s, r[0].scan_id, r, N, &e), -E2BIG);
	assert_int_equal(e.category, DE_ERR_VALIDATION);
	if (!strstr(e.message, "pid 8"))
		fail_msg("code %d cat %d: %s", e.code, (int)e.category, e.message);
	assert_int_equal(count(db, "SELECT count(*) FROM processes"), 0);
	/* the same batch with a short argument goes through */
	free(r[7].command_line[1]);
	r[7].command_line[1] = strdup("--n=8");
	store_ok(s, r, N);
	assert_int_equal(count(db, "SELECT count(*) FROM processes"), N);
	/* a change of values whose platform_data outgrows the cap */
	json_object_set_new(r[3].platform_data, "state", json_string(big));
	retime(r, N, 2000, 2);
	assert_int_equal(de_store_processes(s, r[0].scan_id, r, N, &e), -E2BIG);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE pid = 4 AND "
				   "collection_time = 1000 AND platform_data LIKE '%\"S\"%'"),
			 1);
	json_object_set_new(r[3].platform_data, "state", json_string("R"));
	store_ok(s, r, N);
	assert_int_equal(de_store_last_diff(s).changed, 1);
	de_store_close(s);
	clear_many(r, N);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_columns),
		cmocka_unit_test(test_batch_absent_values),
		cmocka_unit_test(test_text_cap),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
