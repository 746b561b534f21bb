/*
 * test_execwait.c — when the exec path applies the queued events
 * (src/agent/execwait.c): a lone exec on a quiet host at once, the first
 * after a quiet spell at once, under a stream of executions a bounded wait
 * (from the queue's first look, never longer) unless EXECWAIT_PIDS
 * processes are queued; no wait at all when the setting is 0; the time
 * procmond held an exec counts.  The monotonic clock is the caller's:
 * these are plain values, no time passes here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "execwait.h"
#include "daemoneye/clock.h"

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

/*
 * procmond held the exec a while before it sent it (the sensor wakes it at
 * most every few ms under load): that wait counts.  The events' times are
 * the wall clock's, so these take it (de_now_ms), with no time passing.
 */
static void test_procmond_wait_counts(void **state)
{
	struct de_process_event q[3];
	struct execwait w = {.wait_ms = 4};

	(void)state;
	execs(q, 3);
	execwait_applied(&w, 1000);
	/* seen 2 ms after the kernel did: 2 ms left of the 4 */
	q[0].time_ms = de_now_ms() - 2;
	int64_t due = execwait_due(&w, q, 1, 1001);
	/* at most 1003 (a slow run only makes the wait look longer, and the
	   batch due sooner), never before the first look */
	assert_true(due >= 1001 && due <= 1003);
	execwait_applied(&w, 1001);
	/* held as long as the wait, or longer: at once */
	q[1].time_ms = de_now_ms() - 10;
	assert_true(execwait_due(&w, q, 2, 1002) <= 1002);
	execwait_applied(&w, 1002);
	/* an exit held over from the batch before is not what waits: only
	   the processes to evaluate count */
	memset(q, 0, sizeof(q));
	q[0].kind = DE_PROCESS_EXIT;
	q[0].pid = 300;
	q[0].time_ms = de_now_ms() - 50;
	q[1].kind = DE_PROCESS_EXEC;
	q[1].pid = 301;
	q[1].has_record = true;
	assert_int_equal(execwait_due(&w, q, 2, 1003), 1007);
	/* a clock stepped back (an event "from the future"): no sooner than
	   the first look's wait, never later */
	execwait_applied(&w, 1003);
	q[1].time_ms = de_now_ms() + 60000;
	assert_int_equal(execwait_due(&w, q, 2, 1004), 1008);
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
		cmocka_unit_test(test_procmond_wait_counts),
		cmocka_unit_test(test_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
