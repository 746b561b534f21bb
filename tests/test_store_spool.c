/*
 * test_store_spool.c — the fleet's spool in the event store
 * (src/lib/store_spool.c): messages come out in the order they went in,
 * across batches and a reopen; removal takes a prefix; the bound drops new
 * messages and counts them, and the count survives a reopen; a read-only
 * store refuses writes and still reports.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define DE_TEST_NAME "store_spool"
#include "testutil.h"

#include "store_fixtures.h"
#include "store_int.h"

struct seen {
	int64_t ids[64];
	char msg_ids[64][32];
	size_t n;
	size_t stop_after; /* 0: never */
};

static int collect(const struct de_spool_msg *m, void *arg)
{
	struct seen *s = arg;

	assert_true(s->n < 64);
	s->ids[s->n] = m->id;
	snprintf(s->msg_ids[s->n], sizeof(s->msg_ids[0]), "%s", m->msg_id);
	s->n++;
	return s->stop_after && s->n >= s->stop_after ? 7 : 0;
}

/* n messages "<tag>-<i>" of kind events. */
static void add(struct de_store *s, const char *tag, int n, uint64_t max, size_t *dropped)
{
	struct de_spool_msg m[16];
	char ids[16][32];
	struct de_error e = {0};

	assert_true(n <= 16);
	for (int i = 0; i < n; i++) {
		snprintf(ids[i], sizeof(ids[i]), "%s-%d", tag, i);
		m[i] = (struct de_spool_msg){
			.kind = i % 2 ? "scans" : "events", .msg_id = ids[i], .payload = "{}"};
	}
	assert_int_equal(de_store_spool_add(s, m, (size_t)n, max, dropped, &e), 0);
}

static void test_order_and_remove(void **state)
{
	(void)state;
	char *path = db_path("order.sqlite");
	struct de_store *s = open_at(path, 1);
	struct de_spool_stats st;
	struct de_error e = {0};
	struct seen seen = {0};
	size_t dropped = 0;

	assert_int_equal(de_store_spool_stats(s, &st, &e), 0);
	assert_int_equal(st.rows, 0);
	assert_int_equal(st.dropped, 0);
	add(s, "a", 3, 100, &dropped);
	add(s, "b", 2, 100, &dropped);
	assert_int_equal(dropped, 0);
	assert_int_equal(de_store_spool_peek(s, 100, collect, &seen, &e), 0);
	assert_int_equal(seen.n, 5);
	assert_string_equal(seen.msg_ids[0], "a-0");
	assert_string_equal(seen.msg_ids[2], "a-2");
	assert_string_equal(seen.msg_ids[3], "b-0");
	assert_string_equal(seen.msg_ids[4], "b-1");
	for (size_t i = 1; i < seen.n; i++)
		assert_true(seen.ids[i] > seen.ids[i - 1]);

	/* a callback that stops: its value comes back, nothing is removed */
	struct seen two = {.stop_after = 2};
	assert_int_equal(de_store_spool_peek(s, 100, collect, &two, &e), 7);
	assert_int_equal(two.n, 2);

	/* the first three published */
	assert_int_equal(de_store_spool_remove(s, seen.ids[2], &e), 0);
	assert_int_equal(de_store_spool_stats(s, &st, &e), 0);
	assert_int_equal(st.rows, 2);
	de_store_close(s);

	/* after a reopen the rest, still in order, and new ones after them */
	s = open_at(path, 1);
	add(s, "c", 1, 100, &dropped);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(de_store_spool_peek(s, 2, collect, &seen, &e), 0);
	assert_int_equal(seen.n, 2);
	assert_string_equal(seen.msg_ids[0], "b-0");
	assert_string_equal(seen.msg_ids[1], "b-1");
	assert_int_equal(de_store_spool_stats(s, &st, &e), 0);
	assert_int_equal(st.rows, 3);
	assert_int_equal(count(s->db, "SELECT count(*) FROM fleet_spool"), 3);
	de_store_close(s);
	free(path);
}

static void test_bound(void **state)
{
	(void)state;
	char *path = db_path("bound.sqlite");
	struct de_store *s = open_at(path, 1);
	struct de_store_config ro = {.path = path, .read_only = true};
	struct de_spool_stats st;
	struct de_error e = {0};
	struct seen seen = {0};
	size_t dropped = 0;

	add(s, "a", 3, 4, &dropped); /* 3 of 4 */
	assert_int_equal(dropped, 0);
	add(s, "b", 3, 4, &dropped); /* one fits, two dropped */
	assert_int_equal(dropped, 2);
	add(s, "c", 1, 4, NULL); /* dropped, counted in the store only */
	assert_int_equal(de_store_spool_stats(s, &st, &e), 0);
	assert_int_equal(st.rows, 4);
	assert_int_equal(st.dropped, 3);
	assert_int_equal(de_store_spool_peek(s, 100, collect, &seen, &e), 0);
	assert_int_equal(seen.n, 4);
	assert_string_equal(seen.msg_ids[3], "b-0"); /* the oldest are kept */

	/* once published there is room again; the count stays */
	assert_int_equal(de_store_spool_remove(s, seen.ids[3], &e), 0);
	add(s, "d", 2, 4, &dropped);
	assert_int_equal(dropped, 2);
	de_store_close(s);

	struct de_store *r = NULL;
	assert_int_equal(de_store_open(&ro, &r, &e), 0);
	assert_int_equal(de_store_spool_stats(r, &st, &e), 0);
	assert_int_equal(st.rows, 2);
	assert_int_equal(st.dropped, 3);
	assert_int_equal(de_store_spool_remove(r, 1, &e), -EROFS);
	struct de_spool_msg m = {.kind = "events", .msg_id = "x", .payload = "{}"};
	assert_int_equal(de_store_spool_add(r, &m, 1, 10, NULL, &e), -EROFS);
	de_store_close(r);
	free(path);
}

static void test_bad_kind_refused(void **state)
{
	(void)state;
	char *path = db_path("kind.sqlite");
	struct de_store *s = open_at(path, 1);
	struct de_spool_msg m[2] = {{.kind = "events", .msg_id = "ok", .payload = "{}"},
				    {.kind = "alerts", .msg_id = "no", .payload = "{}"}};
	struct de_spool_stats st;
	struct de_error e = {0};

	/* the schema admits events and scans only; the batch is all or nothing */
	assert_true(de_store_spool_add(s, m, 2, 10, NULL, &e) < 0);
	assert_int_equal(e.category, DE_ERR_DATABASE);
	assert_int_equal(de_store_spool_stats(s, &st, &e), 0);
	assert_int_equal(st.rows, 0);
	de_store_close(s);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_remove),
		cmocka_unit_test(test_bound),
		cmocka_unit_test(test_bad_kind_refused),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
