/*
 * test_store_pidtab.c — the snapshot index's table (src/lib/store_pidtab.c
 * and the lookups in store_int.h), directly: pids that share a slot, probe
 * runs that wrap around the end of the table, removal from the middle of a
 * run (no tombstones: every later entry must still be found), growth one
 * pid at a time, the reuse of a spare table's memory, and a long random
 * run of adds and removals checked against a plain array.
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
#include "testrand.h"

/* Every pid in [0, n) is found exactly when in[pid], and len agrees. */
static void assert_holds(const struct snap_tab *t, const bool *in, uint32_t n)
{
	size_t len = 0;

	for (uint32_t pid = 0; pid < n; pid++) {
		const struct snap_ent *e = store_tab_find(t, pid);
		if (in[pid] != (e != NULL))
			fail_msg("pid %u: %s", pid, in[pid] ? "lost" : "found after removal");
		if (e) {
			assert_int_equal(e->pid, pid);
			assert_int_equal(e->inst, (int64_t)pid * 10); /* the entry moved whole */
			len++;
		}
	}
	assert_int_equal(t->len, len);
}

static void add(struct snap_tab *t, bool *in, uint32_t pid)
{
	struct snap_ent *e = store_tab_add(t, pid);

	if (!e) {
		fail_msg("pid %u: not added", pid);
		return;
	}
	e->inst = (int64_t)pid * 10;
	in[pid] = true;
}

static void del(struct snap_tab *t, bool *in, uint32_t pid)
{
	struct snap_ent *e = store_tab_find(t, pid);

	if (!e) {
		fail_msg("pid %u: not found to remove", pid);
		return;
	}
	store_tab_del(t, e);
	in[pid] = false;
}

/* Collisions and wrap-around in a 64-slot table. */
static void test_probe_runs(void **state)
{
	(void)state;
	struct snap_tab t = {0};
	bool in[256] = {0};

	assert_null(store_tab_find(&t, 1)); /* an empty, unallocated table */
	assert_int_equal(store_tab_init(&t, 20), 0);
	assert_int_equal(t.cap, 64);
	/* 1, 65, 129, 193 share slot 1; 63, 127, 191 share slot 63 and wrap to 0, 1, 2 */
	add(&t, in, 1);
	add(&t, in, 63);
	add(&t, in, 127);
	add(&t, in, 65);
	add(&t, in, 191);
	add(&t, in, 129);
	add(&t, in, 2);
	add(&t, in, 193);
	assert_null(store_tab_add(&t, 65)); /* already there */
	assert_holds(&t, in, 256);
	/* the last slot, whose run wraps on (127 and 191 move back across the
	   end), then one moved into it, then a home slot */
	del(&t, in, 63);
	assert_holds(&t, in, 256);
	del(&t, in, 127);
	assert_holds(&t, in, 256);
	del(&t, in, 1);
	assert_holds(&t, in, 256);
	add(&t, in, 63);
	add(&t, in, 1);
	assert_holds(&t, in, 256);
	store_tab_free(&t);
	assert_null(t.e);
	assert_int_equal(t.cap + t.len, 0);
	store_tab_free(&t); /* twice is harmless */
}

/* Growth one pid at a time keeps the table at most half full and whole. */
static void test_reserve(void **state)
{
	(void)state;
	enum { N = 5000 };
	struct snap_tab t = {0};
	bool *in = calloc(N, sizeof(*in));

	for (uint32_t pid = N - 1; pid > 0; pid -= 3) {
		assert_int_equal(store_tab_reserve(&t), 0);
		add(&t, in, pid);
		assert_true(t.len * 2 <= t.cap);
		assert_int_equal(t.cap & (t.cap - 1), 0);
		if (pid < 3)
			break;
	}
	assert_holds(&t, in, N);
	store_tab_free(&t);
	free(in);
}

/* A spare table of the right size is reused, emptied; another size is not. */
static void test_take(void **state)
{
	(void)state;
	struct snap_tab spare = {0}, out = {0};
	bool in[200] = {0};

	assert_int_equal(store_tab_init(&spare, 100), 0);
	add(&spare, in, 7);
	struct snap_ent *mem = spare.e;
	assert_int_equal(store_tab_take(&spare, &out, 100), 0);
	assert_ptr_equal(out.e, mem);
	assert_null(spare.e);
	assert_int_equal(out.len, 0);
	assert_null(store_tab_find(&out, 7));
	/* too small a spare stays where it is */
	assert_int_equal(store_tab_init(&spare, 10), 0);
	store_tab_free(&out);
	assert_int_equal(store_tab_take(&spare, &out, 1000), 0);
	assert_non_null(spare.e);
	assert_true(out.cap >= 2000);
	store_tab_free(&out);
	store_tab_free(&spare);
}

/* Random adds and removals over a small pid range (long probe runs). */
static void test_random(void **state)
{
	(void)state;
	enum { PIDS = 300 };
	struct snap_tab t = {0};
	bool in[PIDS] = {0};

	for (int i = 0; i < 20000; i++) {
		uint32_t pid = rnd(PIDS);
		if (in[pid]) {
			del(&t, in, pid);
		} else {
			assert_int_equal(store_tab_reserve(&t), 0);
			add(&t, in, pid);
		}
		if (i % 97 == 0)
			assert_holds(&t, in, PIDS);
	}
	assert_holds(&t, in, PIDS);
	store_tab_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe_runs),
		cmocka_unit_test(test_reserve),
		cmocka_unit_test(test_take),
		cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
