/*
 * execpath.c — the agent's exec path (DESIGN.md decision 7): between full
 * scans, the exec and exit events procmond forwards are applied to the
 * event store at once, in batches, as scans of source "event", and the
 * rules that concern one process run over each process that exec'd, so an
 * alert does not wait for the next cycle.  The next full scan reconciles
 * anything an event missed.
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

#include "agent.h"

#define EXEC_SLICE_MS	250
#define EXEC_RETRY_MS	1000
#define EXEC_GIVE_UP_MS 60000
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
	size_t execs = 0;
	int64_t scan_id;
	int rc;

	for (size_t i = 0; i < n; i++)
		execs += ev[i].has_record;
	int64_t w0 = de_mono_us();
	if ((rc = de_store_scan_begin(ag->store, de_now_ms(), "event", &scan_id, err)) < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (ev[i].has_record)
			ev[i].record.scan_id = scan_id;
	if ((rc = de_store_apply_events(ag->store, scan_id, ev, n, err)) < 0 ||
	    (rc = de_store_scan_end(ag->store, scan_id, de_now_ms(), execs, err)) < 0) {
		de_store_scan_fail(ag->store, scan_id, de_now_ms(), err->message, NULL);
		goto out;
	}
	telemetry_store_write(ag, (double)(de_mono_us() - w0) / 1e6);
	/* each exec'd process at once, by the rules that concern one process */
	for (size_t i = 0; i < n; i++) {
		if (!ev[i].has_record)
			continue;
		de_engine_run_pid(ag->det.engine, ag->det.rules.items, ag->det.rules.len, ev[i].pid,
				  scan_id, &alerts, ag->det.results);
		for (size_t k = 0; k < ag->det.rules.len; k++)
			if (ag->det.results[k].ran && ag->det.results[k].status < 0)
				de_log_err(&ag->det.results[k].error);
		telemetry_rules(ag, ag->det.results, ag->det.rules.len, false);
		/* a rule slow on one process is slow: the same budget, the same strikes */
		agent_rule_watchdog(ag, false);
		if (de_mono_ms() >= ag->next_heartbeat)
			agent_ctl_heartbeat(ag);
	}
	size_t raised = alerts.len;
	agent_alerts(ag, &alerts, false);
	/* keep the WAL small between full scans: every batch is a transaction
	   that appends its pages (a busy host writes megabytes a minute) */
	struct de_error cerr = {0};
	if (de_store_checkpoint(ag->store, AGENT_WAL_CHECKPOINT_BYTES, &cerr) < 0)
		de_log_err(&cerr);
	de_log_debug("event scan %lld: %zu events, %zu execs read, %zu alerts", (long long)scan_id,
		     n, execs, raised);
out:
	if (rc < 0)
		de_error_prefix(err, "applying process events: ");
	de_alert_list_clear(&alerts);
	return rc;
}

size_t agent_execpath_run(struct agent *ag)
{
	struct procmond_chan *ch = &ag->pm;
	int64_t now = de_mono_ms();
	size_t start = 0;

	if (ag->events_failing_since && now < ag->events_next_try)
		return ch->nqueue;
	for (size_t i = 0; i <= ch->nqueue; i++) {
		bool cut = i == ch->nqueue;
		if (!cut && ch->queue[i].kind == DE_PROCESS_EXIT)
			for (size_t k = start; k < i && !cut; k++)
				cut = ch->queue[k].kind == DE_PROCESS_EXEC &&
				      ch->queue[k].pid == ch->queue[i].pid;
		if (!cut || i == start)
			continue;
		if (de_mono_ms() - now >= EXEC_SLICE_MS)
			break; /* the rest on the next call */
		struct de_error err = {0};
		if (apply_events(ag, ch->queue + start, i - start, &err) < 0) {
			if (!ag->events_failing_since) {
				de_log_err(&err);
				de_log_warnx("%zu process events wait for the store (tried again "
					     "every second)",
					     ch->nqueue - start);
				ag->events_failing_since = now;
			}
			ag->events_next_try = now + EXEC_RETRY_MS;
			if (now - ag->events_failing_since < EXEC_GIVE_UP_MS)
				break; /* kept, from this batch on, for the next try */
			de_log_err(&err);
			de_log_warnx("giving up on %zu process events the store refused for %d s: "
				     "the next full scan reconciles them",
				     i - start, EXEC_GIVE_UP_MS / 1000);
			ch->events_dropped += i - start;
		} else if (ag->events_failing_since) {
			de_log_info("the store takes process events again (after %lld ms)",
				    (long long)(now - ag->events_failing_since));
		}
		ag->events_failing_since = 0;
		start = i;
	}
	agent_events_shift(ch, start);
	return ch->nqueue;
}
