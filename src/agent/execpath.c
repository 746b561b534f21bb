/*
 * execpath.c — the agent's exec path (DESIGN.md decision 7): between full
 * scans, the exec and exit events procmond forwards are applied to the
 * event store in batches, as scans of source "event" (at once on a quiet
 * host; while executions keep coming, after a bounded wait for a fuller
 * batch: execwait.h), and the rules that concern one process run over
 * each process that exec'd, so an alert does not wait for the next cycle.
 * The next full scan reconciles anything an event missed.
 *
 * Exits are deferred (execcut.h): held in the queue up to EXECCUT_DEFER_MS
 * (or EXECCUT_DEFER_MAX of them) and applied together, so that the history
 * they write (a process_instances row and its three indexes each, a page
 * of the WAL per b-tree) is committed once for a dozen rather than in every
 * batch.  The live processes table shows an exited process that much
 * longer; its exited_at is the kernel's time all the same.  A later event
 * of the same pid takes its exit along at once, before it; everything is
 * applied before a full scan (agent_execpath_flush), when stopping, and
 * while the store refuses batches.
 *
 * A batch the store refuses (disk full, a busy file) stays at the head of
 * the queue and is applied later, so an exec that came and went is still
 * stored and evaluated once the store takes it; it is tried again each
 * second (the worker's loop wakes for it), said once in the log.  A batch
 * refused for EXEC_GIVE_UP_MS is given up, counted as dropped and left to
 * the next full scan to reconcile, so that one event the store will never
 * take cannot hold up the rest for good; the queue's cap (counted) is the
 * other way one is lost.
 *
 * One call applies batches for EXEC_SLICE_MS at most, so that a flood of
 * executions (or a slow rule) never keeps the worker from its cycle, its
 * heartbeat and the control channel: the loop calls again at once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "execcut.h"
#include "fleet_wiring.h"

#define EXEC_RETRY_MS	1000
#define EXEC_GIVE_UP_MS 60000
/* processes whose rules run together: one run of each rule covers them all
   (detect.h), and the watchdog and the heartbeat are looked at between
   such runs, so a queue that grew during a stall goes in a few */
#define EXEC_RULE_PIDS 64
#include "daemoneye/clock.h"
#include "daemoneye/log.h"
#include "daemoneye/store.h"

/*
 * Apply queued events ev[0..n) (no exit in it of a pid exec'd earlier in
 * it) as one "event" scan, then run the single-process rules over each
 * process that exec'd, and deliver what they raise.
 */
static int apply_events(struct agent *ag, struct de_process_event *ev, size_t n,
			struct de_error *err)
{
	struct de_alert_list alerts = {0};
	int64_t scan_id;
	int rc;

	int64_t w0 = de_mono_us();
	for (size_t i = 0; i < n; i++)
		if (ev[i].has_record)
			agent_resolve_names(ag, &ev[i].record);
	/* the scan's row and the events: one transaction */
	if ((rc = de_store_event_scan(ag->store, de_now_ms(), ev, n, &scan_id, err)) < 0)
		goto out;
	telemetry_store_write(ag, (double)(de_mono_us() - w0) / 1e6);
	agent_fleet_events(ag, ev, n);
	/* each exec'd process at once, and each that made a TCP connection, by
	   the rules that concern one process, all over one read of the store */
	struct de_error berr = {0};
	bool batch = de_engine_begin_batch(ag->det.engine, &berr) == 0;
	uint32_t pids[EXEC_RULE_PIDS];
	size_t np = 0;
	for (size_t i = 0; i <= n; i++) {
		/* the processes of the batch, EXEC_RULE_PIDS at a time, each rule
		   over all of them in one pass (alerts still per process) */
		if (i < n && (ev[i].has_record || ev[i].kind == DE_PROCESS_TCP)) {
			bool dup = false;
			for (size_t k = 0; k < np && !dup; k++)
				dup = pids[k] == ev[i].pid;
			if (!dup)
				pids[np++] = ev[i].pid;
		}
		if (!np || (np < EXEC_RULE_PIDS && i < n))
			continue;
		de_engine_run_pids(ag->det.engine, ag->det.rules.items, ag->det.rules.len, pids, np,
				   scan_id, &alerts, ag->det.results);
		np = 0;
		for (size_t k = 0; k < ag->det.rules.len; k++)
			if (ag->det.results[k].ran && ag->det.results[k].status < 0)
				de_log_err(&ag->det.results[k].error);
		telemetry_rules(ag, ag->det.results, ag->det.rules.len, false);
		/* a rule slow on a few processes is slow: the same budget, the same strikes */
		agent_rule_watchdog(ag, false);
		if (de_mono_ms() >= ag->next_heartbeat)
			agent_ctl_heartbeat(ag);
	}
	if (batch)
		de_engine_end_batch(ag->det.engine);
	/* the exec path's budget, as operators can watch it */
	telemetry_exec_detected(ag, ev, n, de_now_ms());
	size_t raised = alerts.len;
	agent_alerts(ag, &alerts, false);
	/* the WAL every batch appends to is kept small by the store's
	   background checkpointer (main.c starts it): no checkpoint, and its
	   fsyncs, on the way from an exec to its alert */
	de_log_debug("event scan %lld: %zu events, %zu alerts", (long long)scan_id, n, raised);
out:
	if (rc < 0)
		de_error_prefix(err, "applying process events: ");
	de_alert_list_clear(&alerts);
	return rc;
}

/*
 * Whether the deferred exits go with the next batch whatever their age:
 * stopping (agent_stop, or the parent gone), a full scan about to start
 * (agent_execpath_flush), or the store refusing batches (the retry takes
 * the whole queue, as before exits were deferred).
 */
static bool exits_forced(const struct agent *ag)
{
	return agent_stop || ag->ctl < 0 || ag->events_flush || ag->events_failing_since;
}

/*
 * When the queue (counted in c) should go: the bounded wait for a fuller
 * batch when something other than a deferred exit is queued (execwait.h),
 * and the deferred exits' deadline (execcut.h), whichever comes first.
 */
static int64_t queue_due(struct agent *ag, const struct execcut_count *c, int64_t now,
			 int64_t *wait)
{
	int64_t due = execcut_due(c, ag->exits_since, now), w = INT64_MAX;

	if (c->active && (w = execwait_due(&ag->exec_wait, ag->pm.queue + ag->pm.applied,
					   ag->pm.nqueue - ag->pm.applied, now)) < due)
		due = w;
	if (wait)
		*wait = w; /* the fuller batch's wait alone (INT64_MAX: none) */
	return due;
}

/*
 * The events of batches the store holds open (group commit: main.c sets
 * AGENT_BATCH_COMMIT_MS) stay at the queue's head, counted in
 * ch->applied, until the store commits them: then they go.  If it rolled
 * them back (a later batch failed, or the commit: a full disk), they are
 * pending again, the store is treated as refusing batches (retried each
 * second, every batch committed at once), and they go again with the next
 * batch, evaluated again (an alert is state: raised once).  Returns the
 * events pending (queued, not applied); *lost when they were rolled back.
 */
static size_t held_settle(struct agent *ag, bool *lost)
{
	struct procmond_chan *ch = &ag->pm;
	int64_t t;

	if (lost)
		*lost = false;
	switch (de_store_held_take(ag->store)) {
	case DE_STORE_HELD_OPEN:
		break;
	case DE_STORE_HELD_LOST:
		t = de_mono_ms();
		if (!ag->events_failing_since) {
			de_log_warnx("applying process events: %zu of them, in batches not yet "
				     "committed, were rolled back: they wait for the store (tried "
				     "again every second)",
				     ch->applied);
			ag->events_failing_since = t;
		}
		ag->events_next_try = t + EXEC_RETRY_MS;
		ch->applied = 0;
		if (lost)
			*lost = true;
		break;
	case DE_STORE_HELD_NONE:
		agent_events_shift(ch, ch->applied); /* committed */
		break;
	}
	return ch->nqueue - ch->applied;
}

/* Commit the held batches; true when they were rolled back instead. */
static bool commit_held(struct agent *ag)
{
	struct de_error err = {0};
	bool lost;

	if (de_store_commit_held(ag->store, &err) < 0 && !ag->events_failing_since) {
		de_error_prefix(&err, "applying process events: ");
		de_log_err(&err); /* once: then the store refuses batches (held_settle) */
	}
	held_settle(ag, &lost);
	return lost;
}

void agent_execpath_commit(struct agent *ag)
{
	(void)commit_held(ag);
}

size_t agent_execpath_run(struct agent *ag)
{
	struct procmond_chan *ch = &ag->pm;
	size_t n = held_settle(ag, NULL), now;
	struct de_process_event *q = ch->queue + ch->applied;
	int64_t t = de_mono_ms();
	struct de_error err = {0};
	struct execcut_count c;
	bool lost;

	if (!n) {
		ag->exits_since = 0;
		return 0;
	}
	if (ag->events_failing_since && t < ag->events_next_try)
		return n;
	execcut_count(q, n, &c);
	if (!c.deferred)
		ag->exits_since = 0;
	else if (!ag->exits_since)
		ag->exits_since = t; /* the deferred exits' clock starts */
	bool release = execcut_release(&c, ag->exits_since, t, exits_forced(ag));
	/* under a stream of executions, a few ms for a fuller batch; deferred
	   exits alone wait for their deadline; once they go, what is queued
	   goes with them (their deadline cuts the wait short) */
	if (!release && !exits_forced(ag) && queue_due(ag, &c, t, NULL) > t)
		return n;
	if (!(now = execcut_cut(q, n, release)))
		return n;
	if (apply_events(ag, q, now, &err) < 0) {
		/* a batch the store refuses stays queued, with everything after it
		   (and the batches held with it: rolled back, they go again too) */
		if (!ag->events_failing_since) {
			de_log_err(&err);
			de_log_warnx("%zu process events wait for the store (tried again every "
				     "second)",
				     ch->nqueue);
			ag->events_failing_since = t;
		}
		n = held_settle(ag, NULL);
		ag->events_next_try = t + EXEC_RETRY_MS;
		if (t - ag->events_failing_since < EXEC_GIVE_UP_MS)
			return n;
		de_log_err(&err);
		de_log_warnx("giving up on %zu process events the store refused for %d s: the "
			     "next full scan reconciles them",
			     now, EXEC_GIVE_UP_MS / 1000);
		ch->events_dropped += now;
		agent_events_shift(ch, now); /* the head: the batch tried last */
	} else {
		ch->applied += now;
		/* held no longer than the queue's head can spare, nor when
		   stopping, before a full scan or while the store refused
		   batches (exits_forced): committed now */
		if (ch->applied >= AGENT_HELD_EVENTS_MAX || exits_forced(ag))
			lost = commit_held(ag);
		else
			held_settle(ag, &lost);
		if (lost)
			return ch->nqueue - ch->applied; /* rolled back: as a refused batch */
		if (ag->events_failing_since)
			de_log_info("the store takes process events again (after %lld ms)",
				    (long long)(t - ag->events_failing_since));
	}
	ag->events_failing_since = 0;
	execwait_applied(&ag->exec_wait, de_mono_ms());
	if (release)
		ag->exits_since = 0; /* those left start a new deferral */
	/* both paths above settled the held batches */
	return agent_execpath_pending(ag);
}

size_t agent_execpath_pending(const struct agent *ag)
{
	return ag->pm.nqueue - ag->pm.applied;
}

void agent_execpath_flush(struct agent *ag)
{
	ag->events_flush = true;
	/* each run takes at least the queue's head unless the store refuses it;
	   an exit of a process exec'd in a batch goes in the next */
	while (!ag->events_failing_since) {
		size_t before = agent_execpath_pending(ag);
		if (!before || agent_execpath_run(ag) >= before)
			break;
	}
	agent_execpath_commit(ag); /* and what was held before (forced, each run commits) */
	ag->events_flush = false;
}

int64_t agent_execpath_due(struct agent *ag, int64_t now, bool *batching)
{
	struct procmond_chan *ch = &ag->pm;
	struct execcut_count c;
	int64_t due, wait;

	if (batching)
		*batching = false;
	if (!agent_execpath_pending(ag))
		return INT64_MAX;
	if (ag->events_failing_since)
		return ag->events_next_try; /* a refused batch is tried again */
	if (exits_forced(ag))
		return now;
	execcut_count(ch->queue + ch->applied, ch->nqueue - ch->applied, &c);
	due = queue_due(ag, &c, now, &wait);
	if (batching)
		*batching = c.active && wait > now;
	return due;
}

void agent_resolve_names(struct agent *ag, struct de_process_record *r)
{
	struct de_linux_facts *f = &r->facts;
	const char *u, *g;

	if (!ag->names || !f->present || !f->has_ids)
		return;
	u = de_idcache_user(ag->names, f->euid);
	free(f->user_name);
	f->user_name = u ? strdup(u) : NULL;
	g = de_idcache_group(ag->names, f->egid);
	free(f->group_name);
	f->group_name = g ? strdup(g) : NULL;
}
