/*
 * test_execwait.c — when the exec path applies the queued events
 * (src/agent/execwait.c): a lone exec on a quiet host at once, the first
 * after a quiet spell at once, under a stream of executions a bounded wait
 * (from the queue's first look, never longer) unless EXECWAIT_PIDS
 * processes are queued; no wait at all when the setting is 0.  The clock is
 * the caller's: these are plain values, no time passes here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "execwait.h"

/* n events: execs with a record (each a process the rules run over) */
static void execs(struct de_process_event *q, size_t n)
{
	memset(q, 0, n * sizeof(*q));
	for (size_t i = 0; i < n; i++) {
		q[i].kind = DE_PROCESS_EXEC;
		q[i].pid = (uint32_t)(100 + i);
		q[i].has_record = true;
	}
}

static void test_empty(void **state)
{
	struct execwait w = {.wait_ms = 4, .last_batch = 1000, .since = 990};

	(void)state;
	assert_int_equal(execwait_due(&w, NULL, 0, 1001), INT64_MAX);
	assert_int_equal(w.since, 0); /* an empty queue starts nothing */
}

static void test_lone_exec_at_once(void **state)
{
	struct de_process_event q[1];
	struct execwait w = {.wait_ms = 4};

	(void)state;
	execs(q, 1);
	/* no batch yet: at once */
	assert_true(execwait_due(&w, q, 1, 5000) <= 5000);
	execwait_applied(&w, 5000);
	/* the next exec long after the last batch: at once, too */
	assert_true(execwait_due(&w, q, 1, 5100) <= 5100);
	/* the first exec just after the window: at once */
	execwait_applied(&w, 5100);
	assert_true(execwait_due(&w, q, 1, 5105) <= 5105);
}

static void test_stream_waits_bounded(void **state)
{
	struct de_process_event q[EXECWAIT_PIDS];
	struct execwait w = {.wait_ms = 4};

	(void)state;
	execs(q, EXECWAIT_PIDS);
	execwait_applied(&w, 1000);
	/* an exec 1 ms after the last batch: it waits at most 4 ms from now */
	assert_int_equal(execwait_due(&w, q, 1, 1001), 1005);
	/* more come; the deadline stays that of the first look */
	assert_int_equal(execwait_due(&w, q, 3, 1003), 1005);
	/* at the deadline: due (the caller applies what is queued) */
	assert_true(execwait_due(&w, q, 3, 1005) <= 1005);
	/* late (a slow loop): still due, never later */
	assert_true(execwait_due(&w, q, 3, 1050) <= 1050);
	execwait_applied(&w, 1050);
	assert_int_equal(w.since, 0);
	/* a full batch of processes goes at once, even inside the window */
	assert_true(execwait_due(&w, q, EXECWAIT_PIDS, 1051) <= 1051);
}

static void test_exits_do_not_fill(void **state)
{
	struct de_process_event q[EXECWAIT_PIDS + 2];
	struct execwait w = {.wait_ms = 4};

	(void)state;
	/* exits (and execs gone without a record) are not processes to evaluate */
	memset(q, 0, sizeof(q));
	for (size_t i = 0; i < EXECWAIT_PIDS + 2; i++) {
		q[i].kind = i % 2 ? DE_PROCESS_EXIT : DE_PROCESS_EXEC;
		q[i].pid = (uint32_t)(200 + i);
	}
	execwait_applied(&w, 1000);
	assert_int_equal(execwait_due(&w, q, EXECWAIT_PIDS + 2, 1002), 1006);
	/* a TCP event is: its process's rules run */
	for (size_t i = 0; i < EXECWAIT_PIDS; i++)
		q[i].kind = DE_PROCESS_TCP;
	assert_true(execwait_due(&w, q, EXECWAIT_PIDS + 2, 1003) <= 1003);
}

static void test_off(void **state)
{
	struct de_process_event q[2];
	struct execwait w = {.wait_ms = 0};

	(void)state;
	execs(q, 2);
	execwait_applied(&w, 1000);
	assert_true(execwait_due(&w, q, 2, 1000) <= 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_lone_exec_at_once),
		cmocka_unit_test(test_stream_waits_bounded),
		cmocka_unit_test(test_exits_do_not_fill),
		cmocka_unit_test(test_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
