/*
 * test_execcut.c — the exec path's cut of its queue (src/agent/execcut.c):
 * exits deferred while nothing of their pid follows, released by a later
 * event of the same pid in order before it, all released when forced (a
 * full scan, a stop, a refused store), at EXECCUT_DEFER_MAX of them or
 * EXECCUT_DEFER_MS after the first; the exit of a process exec'd in the
 * same batch waits a batch even then; the order of each pid kept.  The
 * clock is the caller's: these are plain values, no time passes here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "execcut.h"

static struct de_process_event ev(enum de_process_event_kind kind, uint32_t pid)
{
	return (struct de_process_event){
		.kind = kind, .pid = pid, .has_record = kind == DE_PROCESS_EXEC};
}

#define EXEC(p) ev(DE_PROCESS_EXEC, p)
#define EXIT(p) ev(DE_PROCESS_EXIT, p)
#define TCP(p)	ev(DE_PROCESS_TCP, p)

static void assert_queue(const struct de_process_event *q, const struct de_process_event *want,
			 size_t n)
{
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(q[i].kind, want[i].kind);
		assert_int_equal(q[i].pid, want[i].pid);
	}
}

static void test_exits_deferred(void **state)
{
	struct de_process_event q[] = {EXIT(10), EXEC(20), EXIT(11), TCP(21), EXEC(22)};
	struct execcut_count c;

	(void)state;
	execcut_count(q, 5, &c);
	assert_int_equal(c.active, 3);
	assert_int_equal(c.deferred, 2);
	/* the execs and the connection go; the exits wait, in their order */
	assert_int_equal(execcut_cut(q, 5, false), 3);
	assert_queue(
		q, (struct de_process_event[]){EXEC(20), TCP(21), EXEC(22), EXIT(10), EXIT(11)}, 5);
}

static void test_later_event_releases(void **state)
{
	/* pid 10 exited and was reused: its exit goes at once, before the exec */
	struct de_process_event q[] = {EXIT(10), EXIT(11), EXEC(10)};
	struct execcut_count c;

	(void)state;
	execcut_count(q, 3, &c);
	assert_int_equal(c.active, 2);
	assert_int_equal(c.deferred, 1);
	assert_int_equal(execcut_cut(q, 3, false), 2);
	assert_queue(q, (struct de_process_event[]){EXIT(10), EXEC(10), EXIT(11)}, 3);
}

static void test_released_all(void **state)
{
	struct de_process_event q[] = {EXIT(10), EXEC(20), EXIT(11)};

	(void)state;
	assert_int_equal(execcut_cut(q, 3, true), 3);
	assert_queue(q, (struct de_process_event[]){EXIT(10), EXEC(20), EXIT(11)}, 3);
}

static void test_exec_then_exit_waits_a_batch(void **state)
{
	/* released or not, the exit of a process exec'd in the batch waits,
	   and so does the exec of its reused pid after it */
	struct de_process_event q[] = {EXEC(10), EXIT(10), EXEC(10), EXEC(30)};
	struct de_process_event r[4];

	(void)state;
	memcpy(r, q, sizeof(q));
	assert_int_equal(execcut_cut(q, 4, true), 2);
	assert_queue(q, (struct de_process_event[]){EXEC(10), EXEC(30), EXIT(10), EXEC(10)}, 4);
	assert_int_equal(execcut_cut(r, 4, false), 2);
	assert_queue(r, (struct de_process_event[]){EXEC(10), EXEC(30), EXIT(10), EXEC(10)}, 4);
	/* the next batch: the exit goes with the exec after it, in order */
	assert_int_equal(execcut_cut(r + 2, 2, false), 2);
	assert_queue(r + 2, (struct de_process_event[]){EXIT(10), EXEC(10)}, 2);
}

static void test_release_when(void **state)
{
	struct execcut_count none = {.active = 3}, some = {.active = 1, .deferred = 5},
			     full = {.deferred = EXECCUT_DEFER_MAX};

	(void)state;
	/* nothing deferred: nothing to release, no deadline */
	assert_false(execcut_release(&none, 0, 1000, true));
	assert_int_equal(execcut_due(&none, 0, 1000), INT64_MAX);
	/* until the deadline from the first deferred exit */
	assert_false(execcut_release(&some, 1000, 1000 + EXECCUT_DEFER_MS - 1, false));
	assert_true(execcut_release(&some, 1000, 1000 + EXECCUT_DEFER_MS, false));
	assert_int_equal(execcut_due(&some, 1000, 1010), 1000 + EXECCUT_DEFER_MS);
	/* not yet started: the deadline is from now */
	assert_false(execcut_release(&some, 0, 5000, false));
	assert_int_equal(execcut_due(&some, 0, 5000), 5000 + EXECCUT_DEFER_MS);
	/* forced (a scan, a stop, a refused store) */
	assert_true(execcut_release(&some, 1000, 1001, true));
	/* enough of them */
	assert_true(execcut_release(&full, 1000, 1001, false));
	assert_int_equal(execcut_due(&full, 1000, 1001), 1001);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exits_deferred),
		cmocka_unit_test(test_later_event_releases),
		cmocka_unit_test(test_released_all),
		cmocka_unit_test(test_exec_then_exit_waits_a_batch),
		cmocka_unit_test(test_release_when),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
