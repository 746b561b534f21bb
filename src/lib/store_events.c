/*
 * store_events.c — procmond's real-time events against the committed
 * snapshot (de_store_apply_events), between full scans: exec and exit
 * change the snapshot, a TCP connect/listen/accept becomes a
 * network_connections row (store_conns.c), fork and lost are not stored
 * (a forked process is stored by its exec or the next full scan; a loss is
 * the agent's cue to scan).  They use
 * the diff's writes (store_diff.c) against the same index, which they edit
 * in place rather than rebuild: a batch is a handful of pids.  When a
 * batch's transaction fails the index no longer matches the file, so it is
 * dropped and reloaded before the next write; the next full scan then never
 * double-inserts or falsely exits what events wrote.
 */
#include "store_int.h"

#include <errno.h>

/* One event against the committed snapshot index, which it updates in place. */
static int apply_event(struct de_store *s, int64_t scan, const struct de_process_event *ev,
		       struct de_store_diff *d, struct de_error *err)
{
	struct snap_ent *e = store_tab_find(&s->snap, ev->pid);
	struct de_process_record r;
	struct pd_sum ps;
	struct rec_sum h;
	int rc;

	switch (ev->kind) {
	case DE_PROCESS_EXIT:
		if (!e)
			return 0; /* never stored, or already gone */
		if (e->has_start && ev->time_ms < e->start)
			return 0; /* the exit of an earlier process with this pid */
		if (e->has_start && ev->start_time && ev->start_time != e->start)
			return 0; /* the kernel says which instance: not this one */
		if ((rc = store_write_exit(s, e, ev->time_ms, scan, ev->time_ms, scan,
					   ev->has_exit_code ? ev->exit_code : STORE_NO_STATUS, d,
					   err)) < 0)
			return rc;
		store_tab_del(&s->snap, e);
		return 0;
	case DE_PROCESS_EXEC:
		break;
	case DE_PROCESS_TCP:
		if (!ev->has_conn)
			return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
					    "%s: a tcp event of pid %u without its connection; the "
					    "batch is refused",
					    s->path, ev->pid);
		return store_write_conn(s, &ev->conn, err);
	case DE_PROCESS_FORK:
	case DE_PROCESS_LOST:
		return 0;
	default:
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "%s: unknown process event kind %d; the batch is refused",
				    s->path, (int)ev->kind);
	}
	if (!ev->has_record)
		return 0; /* gone before it could be read: nothing known to store */
	if (ev->record.pid != ev->pid)
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "%s: exec event of pid %u carries a record of pid %u; the "
				    "batch is refused",
				    s->path, ev->pid, ev->record.pid);
	r = ev->record; /* shallow */
	if (store_pd_sums(&r, 1, &ps) < 0)
		return de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
	store_record_hashes(&r, &ps, &h);
	if (e && store_same_instance(e, &r)) /* exec in place: same pid and start */
		return store_write_same(s, &r, e, e, &h, ev->time_ms, scan, false, d, err);
	if (e && e->has_start && r.has_start_time && r.start_time < e->start)
		return 0; /* an earlier process with this pid: a newer one is already known */
	if (e) {
		/* the pid was reused: the old instance is over */
		if ((rc = store_write_exit(s, e, ev->time_ms, scan, ev->time_ms, scan,
					   STORE_NO_STATUS, d, err)) < 0)
			return rc;
		*e = (struct snap_ent){.used = true, .pid = ev->pid};
	} else {
		if (store_tab_reserve(&s->snap) < 0)
			return de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
		e = store_tab_add(&s->snap, ev->pid);
	}
	return store_write_new(s, &r, scan, e, &h, d, err); /* an exit deleted any row */
}

/*
 * Apply ev[0..n) in one write transaction.  With scan_out the event scan's
 * row is made inside it (finished: ok at now_ms, execs processes) and its
 * id returned there, so a batch costs one commit, not three.
 */
static int apply_batch(struct de_store *s, int64_t scan_id, const struct de_process_event *ev,
		       size_t n, int64_t now_ms, size_t execs, int64_t *scan_out,
		       struct de_error *err)
{
	struct de_store_diff d = {0};
	int64_t t = s->snap_time;
	int rc;

	if (s->read_only)
		return de_error_set(err, DE_ERR_DATABASE, EROFS, "%s: store opened read-only",
				    s->path);
	if (n && !ev)
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL, "no events given");
	if (!s->snap_loaded && (rc = store_load_snapshot(s, err)) < 0)
		return rc;
	/* the transaction of held batches (de_store_hold_batches), or a new one */
	if (!store_held_open(s) &&
	    (rc = store_begin_write(s, err, "cannot start the event transaction")) < 0)
		goto fail;
	if (scan_out) {
		sqlite3_stmt *st = s->st[ST_EVENT_SCAN];
		sqlite3_bind_int64(st, 1, now_ms);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)execs);
		if ((rc = store_step(s, st, err, "cannot record the event scan")) < 0)
			goto fail;
		scan_id = sqlite3_last_insert_rowid(s->db);
	}
	for (size_t i = 0; i < n; i++) {
		if ((rc = apply_event(s, scan_id, &ev[i], &d, err)) < 0)
			goto fail;
		if (ev[i].time_ms > t)
			t = ev[i].time_ms;
	}
	/* the events keep the snapshot current up to the newest of them */
	if ((rc = store_finish_batch(s, t, scan_id, s->sample_time, true, &d, err)) < 0)
		goto fail;
	s->snap_time = t;
	s->snap_scan = scan_id;
	s->last_diff = d;
	if (scan_out)
		*scan_out = scan_id;
	return 0;
fail:
	store_rollback(s);
	/* the index was edited in place: rebuild it from the file next time */
	s->snap_loaded = false;
	return rc;
}

int de_store_apply_events(struct de_store *s, int64_t scan_id, const struct de_process_event *ev,
			  size_t n, struct de_error *err)
{
	return apply_batch(s, scan_id, ev, n, 0, 0, NULL, err);
}

int de_store_event_scan(struct de_store *s, int64_t now_ms, const struct de_process_event *ev,
			size_t n, int64_t *scan_id, struct de_error *err)
{
	size_t execs = 0;

	for (size_t i = 0; i < n; i++)
		execs += ev[i].has_record;
	int64_t id = 0;
	int rc = apply_batch(s, 0, ev, n, now_ms, execs, &id, err);

	if (rc == 0)
		*scan_id = id;
	return rc;
}
