/*
 * execwait.h — when the exec path applies what procmond queued (execwait.c):
 * at once on a quiet host, and under a stream of executions a bounded wait
 * so that one batch (one store transaction, one run of the rules that
 * concern one process) takes several executions instead of one each.
 *
 * Nagle-like: the queue waits only when the batch before it was applied
 * less than detection.exec_batch_wait_ms before its first event came, and
 * then at most that long after it came, or until EXECWAIT_PIDS processes
 * to evaluate are queued.  "Came" is when the kernel saw the oldest
 * process of the queue to evaluate, when the events say (procmond may
 * have held it a few ms: that counts), else the queue's first look.  A lone exec, or the first
 * after a quiet spell, is never held; nothing is ever left out of a batch by waiting.
 *
 * Ownership: a struct execwait is plain data, the caller's.
 */
#ifndef AGENT_EXECWAIT_H
#define AGENT_EXECWAIT_H

#include <stddef.h>
#include <stdint.h>

#include "daemoneye/record.h"

/* A batch of this many processes to evaluate goes at once.  It bounds the
   wait only at high exec rates: at 1,000 a second the wait ends first. */
#define EXECWAIT_PIDS 8

struct execwait {
	uint64_t wait_ms;   /* detection.exec_batch_wait_ms (0: never wait) */
	int64_t last_batch; /* when the last batch was applied (monotonic ms, 0: never) */
	int64_t since;	    /* when the queue was first seen non-empty (0: empty) */
};

/*
 * The monotonic time (ms) at which the queued events q[0..n) should be
 * applied: now or earlier for at once.  Marks the queue's start (w->since)
 * when it is the first look at a non-empty queue.  n == 0 returns
 * INT64_MAX (nothing to apply).
 */
int64_t execwait_due(struct execwait *w, const struct de_process_event *q, size_t n, int64_t now);

/* A batch was applied at now: the queue that is left starts afresh. */
void execwait_applied(struct execwait *w, int64_t now);

#endif
