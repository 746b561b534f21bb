/*
 * execpath.c — the agent's exec path (DESIGN.md decision 7): between full
 * scans, the exec and exit events procmond forwards are applied to the
 * event store in batches, as scans of source "event" (at once on a quiet
 * host; while executions keep coming, after a bounded wait for a fuller
 * batch: execwait.h), and the rules that concern one process run over
 * each process that exec'd, so an alert does not wait for the next cycle.
 * The next full scan reconciles anything an event missed.
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

size_t agent_execpath_run(struct agent *ag)
{
	struct procmond_chan *ch = &ag->pm;
	struct de_process_event *q = ch->queue;
	size_t n = ch->nqueue, now = 0;
	int64_t t = de_mono_ms();
	struct de_error err = {0};

	if (!n)
		return 0;
	if (ag->events_failing_since && t < ag->events_next_try)
		return n;
	/* under a stream of executions, a few ms for a fuller batch */
	if (!ag->events_failing_since && !agent_stop && execwait_due(&ag->exec_wait, q, n, t) > t)
		return n;
	/* stable partition in place: what goes now first (q[0..now)), what
	   waits after it (q[now..i)), each in its order; an event that goes
	   now past held ones is rotated down to q[now] */
	for (size_t i = 0; i < n; i++) {
		bool hold = false;
		/* the exit of a process exec'd in this batch */
		for (size_t k = 0; k < now && !hold && q[i].kind == DE_PROCESS_EXIT; k++)
			hold = q[k].kind == DE_PROCESS_EXEC && q[k].pid == q[i].pid;
		/* after a held event, its pid's later events wait too (order kept) */
		for (size_t k = now; k < i && !hold; k++)
			hold = q[k].pid == q[i].pid;
		if (hold)
			continue;
		if (i > now) {
			struct de_process_event s = q[i];
			memmove(q + now + 1, q + now, (i - now) * sizeof(*q));
			q[now] = s;
		}
		now++;
	}
	if (now && apply_events(ag, q, now, &err) < 0) {
		/* a batch the store refuses stays queued, with everything after it */
		if (!ag->events_failing_since) {
			de_log_err(&err);
			de_log_warnx("%zu process events wait for the store (tried again every "
				     "second)",
				     n);
			ag->events_failing_since = t;
		}
		ag->events_next_try = t + EXEC_RETRY_MS;
		if (t - ag->events_failing_since < EXEC_GIVE_UP_MS)
			return n;
		de_log_err(&err);
		de_log_warnx("giving up on %zu process events the store refused for %d s: the "
			     "next full scan reconciles them",
			     now, EXEC_GIVE_UP_MS / 1000);
		ch->events_dropped += now;
	} else if (now && ag->events_failing_since) {
		de_log_info("the store takes process events again (after %lld ms)",
			    (long long)(t - ag->events_failing_since));
	}
	if (now) {
		ag->events_failing_since = 0;
		execwait_applied(&ag->exec_wait, de_mono_ms());
	}
	agent_events_shift(ch, now);
	return ch->nqueue;
}

int64_t agent_execpath_due(struct agent *ag, int64_t now)
{
	if (!ag->pm.nqueue)
		return INT64_MAX;
	if (ag->events_failing_since)
		return ag->events_next_try; /* a refused batch is tried again */
	if (agent_stop)
		return now;
	return execwait_due(&ag->exec_wait, ag->pm.queue, ag->pm.nqueue, now);
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
