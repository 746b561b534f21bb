/*
 * execcut.h — how the exec path cuts its queue (execcut.c): the events
 * that go in the next batch, and those that wait, order per pid kept.
 *
 * Two kinds wait.  The exit of a process exec'd earlier in the same batch
 * waits for the next one, so that the rules see that process committed and
 * live.  And an exit is deferred: held in the queue until EXECCUT_DEFER_MS
 * after the first exit was deferred, or until EXECCUT_DEFER_MAX exits are,
 * so that the history a set of exits writes (a process_instances row and
 * its indexes each, the processes row gone) costs one batch's commit in
 * many rather than pages in every batch (docs/perf.md, "Deferred exits").
 * A deferred exit never delays anything else: a later event of the same
 * pid (an exec of a reused pid) releases it at once, in order before it,
 * and the caller releases them all before a full scan, at a stop and while
 * the store refuses batches (execpath.c).
 *
 * Ownership: plain functions over the caller's arrays; nothing allocated.
 */
#ifndef AGENT_EXECCUT_H
#define AGENT_EXECCUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemoneye/record.h"

/* the longest an exit is deferred (ms, from the first deferred exit) */
#define EXECCUT_DEFER_MS 50
/* this many deferred exits go at once (about 50 ms at 1,000 execs/s) */
#define EXECCUT_DEFER_MAX 64

/* What a queue holds, for when it goes. */
struct execcut_count {
	size_t active;	 /* events that go with the next batch (not deferred) */
	size_t deferred; /* exits that may wait: no later event of their pid */
};

/*
 * Count q[0..n): a deferred exit is one with no later event of its pid in
 * q; every other event is active.
 */
void execcut_count(const struct de_process_event *q, size_t n, struct execcut_count *c);

/*
 * Whether the deferred exits go now: force (a scan, a stop, a refused
 * store), EXECCUT_DEFER_MAX of them, or EXECCUT_DEFER_MS passed since
 * since (the monotonic ms the first of them was deferred; 0: none yet).
 */
bool execcut_release(const struct execcut_count *c, int64_t since, int64_t now, bool force);

/*
 * When the deferred exits must go at the latest (monotonic ms; INT64_MAX
 * when there is none): since + EXECCUT_DEFER_MS, or now + EXECCUT_DEFER_MS
 * when since is 0.
 */
int64_t execcut_due(const struct execcut_count *c, int64_t since, int64_t now);

/*
 * Stable partition of q[0..n) in place: what goes in the next batch first,
 * q[0..returned), what waits after it, each in its order.  Waits: the exit
 * of a process exec'd earlier in the batch, every event after a waiting
 * one of its pid, and unless release_exits the deferred exits (those with
 * no later event of their pid).
 */
size_t execcut_cut(struct de_process_event *q, size_t n, bool release_exits);

#endif
