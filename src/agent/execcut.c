/*
 * execcut.c — the exec path's cut of its queue into the next batch and
 * what waits (execcut.h): exits of processes exec'd in the same batch wait
 * a batch, and exits are deferred for up to EXECCUT_DEFER_MS so that their
 * history is written many at a time.
 *
 * The queue is short (a few ms of events; its cap when the store stalls),
 * so each look is a plain scan of it, quadratic in the worst case as the
 * partition always was.
 */
#include "execcut.h"

#include <string.h>

/* Whether an event of pid comes in q[from..n). */
static bool later_of(const struct de_process_event *q, size_t from, size_t n, uint32_t pid)
{
	for (size_t k = from; k < n; k++)
		if (q[k].pid == pid)
			return true;
	return false;
}

void execcut_count(const struct de_process_event *q, size_t n, struct execcut_count *c)
{
	*c = (struct execcut_count){0};
	for (size_t i = 0; i < n; i++) {
		if (q[i].kind == DE_PROCESS_EXIT && !later_of(q, i + 1, n, q[i].pid))
			c->deferred++;
		else
			c->active++;
	}
}

bool execcut_release(const struct execcut_count *c, int64_t since, int64_t now, bool force)
{
	if (!c->deferred)
		return false;
	return force || c->deferred >= EXECCUT_DEFER_MAX ||
	       (since && now - since >= EXECCUT_DEFER_MS);
}

int64_t execcut_due(const struct execcut_count *c, int64_t since, int64_t now)
{
	if (!c->deferred)
		return INT64_MAX;
	if (c->deferred >= EXECCUT_DEFER_MAX)
		return now;
	return (since ? since : now) + EXECCUT_DEFER_MS;
}

size_t execcut_cut(struct de_process_event *q, size_t n, bool release_exits)
{
	size_t now = 0;

	/* what goes now first (q[0..now)), what waits after it (q[now..i)),
	   each in its order; an event that goes now past waiting ones is
	   rotated down to q[now] */
	for (size_t i = 0; i < n; i++) {
		bool hold = false;
		/* the exit of a process exec'd in this batch */
		for (size_t k = 0; k < now && !hold && q[i].kind == DE_PROCESS_EXIT; k++)
			hold = q[k].kind == DE_PROCESS_EXEC && q[k].pid == q[i].pid;
		/* after a waiting event, its pid's later events wait too (order kept) */
		for (size_t k = now; k < i && !hold; k++)
			hold = q[k].pid == q[i].pid;
		/* a deferred exit: nothing of its pid comes after it */
		if (!hold && !release_exits && q[i].kind == DE_PROCESS_EXIT)
			hold = !later_of(q, i + 1, n, q[i].pid);
		if (hold)
			continue;
		if (i > now) {
			struct de_process_event s = q[i];
			memmove(q + now + 1, q + now, (i - now) * sizeof(*q));
			q[now] = s;
		}
		now++;
	}
	return now;
}
