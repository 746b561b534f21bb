/*
 * execwait.c — the exec path's bounded wait for a fuller batch (execwait.h).
 *
 * At 1,000 executions a second each one would otherwise be a batch of its
 * own: a store transaction (its commit writes the same few pages of the
 * WAL), a row for the event scan, and every rule that concerns one process
 * run once, whatever the number of processes it runs over.  Those fixed
 * costs are most of the exec path's CPU; holding the queue a few
 * milliseconds while executions keep coming shares them.
 */
#include "execwait.h"

#include "daemoneye/clock.h"

/* A queue this long goes at once, whatever it holds (exits, connections). */
#define EXECWAIT_EVENTS 256

/* The processes of q[0..n) the rules will run over, counted up to cap. */
static size_t rule_pids(const struct de_process_event *q, size_t n, size_t cap)
{
	size_t np = 0;

	for (size_t i = 0; i < n && np < cap; i++)
		np += q[i].has_record || q[i].kind == DE_PROCESS_TCP;
	return np;
}

/*
 * How long the oldest process of q[0..n) to evaluate has waited already
 * (ms, 0..cap): procmond holds a record a few ms before it sends it
 * (bpfevents.h: the sensor wakes it at most every few ms under load), and
 * that wait counts against the batch's.  An event's time is the wall
 * clock's (the kernel's clock mapped to it when the sensor opened; 0:
 * unknown), so a step of the clock moves a batch by at most cap.
 */
static int64_t waited(const struct de_process_event *q, size_t n, int64_t cap)
{
	int64_t wall = de_now_ms(), most = 0;

	for (size_t i = 0; i < n; i++) {
		if (!(q[i].has_record || q[i].kind == DE_PROCESS_TCP) || q[i].time_ms <= 0)
			continue;
		int64_t a = wall - q[i].time_ms;
		if (a > most)
			most = a;
	}
	return most > cap ? cap : most;
}

int64_t execwait_due(struct execwait *w, const struct de_process_event *q, size_t n, int64_t now)
{
	if (!n) {
		w->since = 0;
		return INT64_MAX;
	}
	if (!w->since)
		w->since = now - waited(q, n, (int64_t)w->wait_ms);
	/* quiet: the batch before came long enough before this queue began */
	if (!w->wait_ms || !w->last_batch || w->since - w->last_batch > (int64_t)w->wait_ms)
		return now;
	if (n >= EXECWAIT_EVENTS || rule_pids(q, n, EXECWAIT_PIDS) >= EXECWAIT_PIDS)
		return now;
	return w->since + (int64_t)w->wait_ms;
}

void execwait_applied(struct execwait *w, int64_t now)
{
	w->last_batch = now;
	w->since = 0;
}
