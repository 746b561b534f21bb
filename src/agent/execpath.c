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
#include <string.h>

#include "agent.h"
#include "fleet_wiring.h"
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

	for (size_t i = 0; i < n; i++)
		if (ev[i].has_record)
			agent_resolve_names(ag, &ev[i].record);
	/* the scan's row and the events: one transaction */
	if ((rc = de_store_event_scan(ag->store, de_now_ms(), ev, n, &scan_id, err)) < 0)
		goto out;
	agent_fleet_events(ag, ev, n);
	/* each exec'd process at once, and each that made a TCP connection, by
	   the rules that concern one process, all over one read of the store */
	struct de_error berr = {0};
	bool batch = de_engine_begin_batch(ag->engine, &berr) == 0;
	for (size_t i = 0; i < n; i++) {
		if (!ev[i].has_record && ev[i].kind != DE_PROCESS_TCP)
			continue;
		de_engine_run_pid(ag->engine, ag->rules.items, ag->rules.len, ev[i].pid, scan_id,
				  &alerts, ag->results);
		for (size_t k = 0; k < ag->rules.len; k++)
			if (ag->results[k].ran && ag->results[k].status < 0)
				de_log_err(&ag->results[k].error);
	}
	if (batch)
		de_engine_end_batch(ag->engine);
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
 * Apply the queued events as one batch.  An exit of a process exec'd
 * earlier in the same batch is held back for the next batch (still in
 * order after everything else of its pid), so that the rules see a process
 * that lived for a millisecond before its exit takes it out of the
 * snapshot, and a busy host's execs and exits still go in one transaction
 * per batch rather than one per process.  What is held back stays queued:
 * the caller runs again soon (agent_execpath_pending).  A failure is
 * logged and the batch dropped: the next full scan reconciles.
 */
void agent_execpath_run(struct agent *ag)
{
	struct procmond_chan *ch = &ag->pm;
	struct de_process_event *q = ch->queue;
	size_t n = ch->nqueue, now = 0, later = 0;
	struct de_error err = {0};

	if (!n)
		return;
	/* stable partition: what goes now first, what waits after it */
	struct de_process_event *tmp = malloc(n * sizeof(*tmp));
	if (!tmp) {
		de_log_errorx("out of memory applying process events");
		agent_events_clear(ch);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		bool hold = false;
		/* the exit of a process exec'd in this batch */
		for (size_t k = 0; k < now && !hold && q[i].kind == DE_PROCESS_EXIT; k++)
			hold = tmp[k].kind == DE_PROCESS_EXEC && tmp[k].pid == q[i].pid;
		/* after a held event, its pid's later events wait too (order kept) */
		for (size_t k = 0; k < later && !hold; k++)
			hold = tmp[n - 1 - k].pid == q[i].pid;
		if (hold)
			tmp[n - 1 - later++] = q[i];
		else
			tmp[now++] = q[i];
	}
	/* the held ones back in their order */
	for (size_t k = 0; k < later / 2; k++) {
		struct de_process_event t = tmp[now + k];
		tmp[now + k] = tmp[n - 1 - k];
		tmp[n - 1 - k] = t;
	}
	memcpy(q, tmp, n * sizeof(*q));
	free(tmp);
	if (now && apply_events(ag, q, now, &err) < 0)
		de_log_err(&err);
	for (size_t i = 0; i < now; i++)
		de_process_event_clear(&q[i]);
	memmove(q, q + now, later * sizeof(*q));
	ch->nqueue = later;
}

bool agent_execpath_pending(const struct agent *ag)
{
	return ag->pm.nqueue > 0;
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
