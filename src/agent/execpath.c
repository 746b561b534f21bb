/*
 * execpath.c — the agent's exec path (DESIGN.md decision 7): between full
 * scans, the exec and exit events procmond forwards are applied to the
 * event store at once, in batches, as scans of source "event", and the
 * rules that concern one process run over each process that exec'd, so an
 * alert does not wait for the next cycle.  The next full scan reconciles
 * anything an event missed.
 */
#include <errno.h>
#include <stdlib.h>

#include "agent.h"
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
	/* each exec'd process at once, by the rules that concern one process */
	for (size_t i = 0; i < n; i++) {
		if (!ev[i].has_record)
			continue;
		de_engine_run_pid(ag->engine, ag->rules.items, ag->rules.len, ev[i].pid, scan_id,
				  &alerts, ag->results);
		for (size_t k = 0; k < ag->rules.len; k++)
			if (ag->results[k].ran && ag->results[k].status < 0)
				de_log_err(&ag->results[k].error);
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

/*
 * Apply every queued event, in order.  The queue is cut before an exit of a
 * process exec'd earlier in the same run, so that the rules see a process
 * that lived for 10 ms before its exit takes it out of the snapshot.  A
 * failure is logged and the rest dropped: the next full scan reconciles.
 */
void agent_execpath_run(struct agent *ag)
{
	struct procmond_chan *ch = &ag->pm;
	size_t start = 0;

	for (size_t i = 0; i <= ch->nqueue; i++) {
		bool cut = i == ch->nqueue;
		if (!cut && ch->queue[i].kind == DE_PROCESS_EXIT)
			for (size_t k = start; k < i && !cut; k++)
				cut = ch->queue[k].kind == DE_PROCESS_EXEC &&
				      ch->queue[k].pid == ch->queue[i].pid;
		if (!cut || i == start)
			continue;
		struct de_error err = {0};
		if (apply_events(ag, ch->queue + start, i - start, &err) < 0) {
			de_log_err(&err);
			break;
		}
		start = i;
	}
	agent_events_clear(ch);
}
