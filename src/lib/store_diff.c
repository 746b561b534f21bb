/*
 * store_diff.c — a full scan against the committed snapshot
 * (de_store_processes): each record is looked up in the in-memory index
 * (store_pidtab.c) by pid; a new instance gets its snapshot row, the same
 * instance is rewritten only where its hashes (store_hash.c) differ, an
 * instance not seen, or whose pid now has another start time, has exited:
 * its snapshot row becomes its process_instances row.  All in one
 * transaction; the new index is swapped in only after COMMIT.  The writes
 * of one instance are shared with real-time events (store_events.c).
 *
 * New instances are inserted STORE_BATCH_ROWS to a statement; a scan of
 * many new processes (a first scan) also drops the snapshot's indexes and
 * builds them again after its rows.  The batch's hash (store.h, struct
 * de_store_diff) is made from the hashes the diff computes anyway.
 */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/blake3.h"
#include "daemoneye/clock.h"

/* ---- the writes of one instance ------------------------------------------ */

/* Whether r's cpu or memory differs from what e last recorded into history. */
static bool sample_differs(const struct snap_ent *e, const struct de_process_record *r)
{
	if (e->s_has_cpu != r->has_cpu_usage || e->s_has_mem != r->has_memory_usage)
		return true;
	return (r->has_cpu_usage && e->s_cpu != r->cpu_usage) ||
	       (r->has_memory_usage && e->s_mem != r->memory_usage);
}

/* r's cpu and memory are now recorded into history. */
static void remember_sample(struct snap_ent *e, const struct de_process_record *r)
{
	e->s_has_cpu = r->has_cpu_usage;
	e->s_cpu = r->cpu_usage;
	e->s_has_mem = r->has_memory_usage;
	e->s_mem = r->memory_usage;
}

/* A new instance waiting in s->queue for its rows to be inserted. */
struct store_pending {
	const struct de_process_record *r; /* borrowed from the batch */
	int64_t scan;			   /* the scan that saw it */
	struct rec_sum h;
	int64_t inst;
	struct bound b; /* in s->text[its place in the queue] */
};

/* Insert the queued instances: STORE_BATCH_ROWS at once, or row by row. */
static int flush_queue(struct de_store *s, struct de_error *err)
{
	size_t n = s->queued;
	int rc = 0;

	s->queued = 0;
	if (n == STORE_BATCH_ROWS) {
		for (size_t i = 0; i < n; i++) {
			const struct store_pending *p = &s->queue[i];
			store_bind_record(s->multi_snap, (int)i * STORE_NPARAM, p->r, p->scan,
					  &p->b, p->inst, &p->h);
		}
		return store_step(s, s->multi_snap, err, "cannot store a process");
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct store_pending *p = &s->queue[i];
		store_bind_record(s->st[ST_INS_SNAP], 0, p->r, p->scan, &p->b, p->inst, &p->h);
		rc = store_step(s, s->st[ST_INS_SNAP], err, "cannot store a process");
	}
	return rc;
}

/*
 * A new instance of r: its snapshot row (its pid has none: an earlier
 * instance's row has gone with that instance's exit); *ne (the index entry
 * for its pid) is filled.  Its history row is written when it leaves the
 * snapshot (store_write_exit()), so a new process costs one row.  In a full
 * scan the insert waits in the queue (flush_queue() writes it before
 * anything reads it).
 */
int store_write_new(struct de_store *s, const struct de_process_record *r, int64_t scan,
		    struct snap_ent *ne, const struct rec_sum *h, struct de_store_diff *d,
		    struct de_error *err)
{
	struct bound b;
	int64_t inst = s->next_inst++;
	int rc;

	ne->inst = inst;
	ne->has_start = r->has_start_time;
	ne->start = r->start_time;
	ne->known = true;
	ne->idh = h->idh;
	ne->vh = h->vh;
	remember_sample(ne, r);
	d->added++;
	if (s->batching) {
		struct store_pending *p = &s->queue[s->queued];
		if ((rc = store_bound_make(s, s->queued, &p->b, r, false, err)) < 0)
			return rc;
		p->r = r;
		p->scan = scan;
		p->h = *h;
		p->inst = inst;
		return ++s->queued == STORE_BATCH_ROWS ? flush_queue(s, err) : 0;
	}
	if ((rc = store_bound_make(s, STORE_BATCH_ROWS, &b, r, false, err)) < 0)
		return rc;
	store_bind_record(s->st[ST_INS_SNAP], 0, r, scan, &b, inst, h);
	return store_step(s, s->st[ST_INS_SNAP], err, "cannot store a process");
}

/*
 * The same instance seen again (old: its committed entry; ne: where its new
 * entry goes, may be old itself): an identity change keeps the previous
 * values (the snapshot row as it was) in process_changes and rewrites the
 * snapshot row, a change of values rewrites the snapshot row only, and when
 * sampling a changed cpu/memory becomes a sample.  t and scan date the
 * writes.
 */
int store_write_same(struct de_store *s, const struct de_process_record *r,
		     const struct snap_ent *old, struct snap_ent *ne, const struct rec_sum *h,
		     int64_t t, int64_t scan, bool sampling, struct de_store_diff *d,
		     struct de_error *err)
{
	bool id_changed = !old->known || old->idh != h->idh, vals_changed = old->vh != h->vh;
	bool sample = sampling && !s->history_off && sample_differs(old, r);
	int64_t inst = old->inst;
	struct bound b;
	int rc = 0;

	if (!id_changed && !vals_changed && !sample)
		return 0;
	if ((rc = store_bound_make(s, STORE_BATCH_ROWS, &b, r, !id_changed, err)) < 0)
		return rc;
	if (id_changed) {
		sqlite3_stmt *st = s->st[ST_SAVE_CHANGE];
		if (old->known && !s->history_off) {
			sqlite3_bind_int64(st, 1, r->pid);
			sqlite3_bind_int64(st, 2, t);
			sqlite3_bind_int64(st, 3, scan);
			if ((rc = store_step(s, s->st[ST_SAVE_CHANGE], err,
					     "cannot record a change")) < 0)
				goto out;
			d->history++;
		}
		store_bind_record(s->st[ST_UPD_SNAP], 0, r, scan, &b, inst, h);
		if ((rc = store_step(s, s->st[ST_UPD_SNAP], err, "cannot store a process")) < 0)
			goto out;
		d->changed++;
		d->identity_changed++;
	} else if (vals_changed) {
		store_bind_record(s->st[ST_UPD_VALS], 0, r, scan, &b, inst, h);
		if ((rc = store_step(s, s->st[ST_UPD_VALS], err, "cannot update a process")) < 0)
			goto out;
		d->changed++;
	}
	ne->known = true;
	ne->idh = h->idh;
	ne->vh = h->vh;
	if (sample) {
		sqlite3_stmt *st = s->st[ST_INS_SAMPLE];
		sqlite3_bind_int64(st, 1, inst);
		sqlite3_bind_int64(st, 2, t);
		sqlite3_bind_int64(st, 3, scan);
		if (r->has_cpu_usage)
			sqlite3_bind_double(st, 4, r->cpu_usage);
		else
			sqlite3_bind_null(st, 4);
		if (r->has_memory_usage)
			sqlite3_bind_int64(st, 5, (sqlite3_int64)r->memory_usage);
		else
			sqlite3_bind_null(st, 5);
		if ((rc = store_step(s, s->st[ST_INS_SAMPLE], err, "cannot record a sample")) < 0)
			goto out;
		remember_sample(ne, r);
		d->samples++;
	}
out:
	return rc;
}

/*
 * Instance e has exited: exited_at t (seen gone by scan), alive last at
 * last_seen (scan last_scan); its snapshot row, as last written, becomes its
 * process_instances row and leaves the snapshot.
 */
int store_write_exit(struct de_store *s, const struct snap_ent *e, int64_t t, int64_t scan,
		     int64_t last_seen, int64_t last_scan, int32_t status, struct de_store_diff *d,
		     struct de_error *err)
{
	sqlite3_stmt *st = s->st[ST_EXIT_INST];
	int sig = status & 0x7f;
	int rc;

	sqlite3_bind_int64(st, 1, e->inst);
	sqlite3_bind_int64(st, 2, t);
	sqlite3_bind_int64(st, 3, scan);
	sqlite3_bind_int64(st, 4, last_seen);
	sqlite3_bind_int64(st, 5, last_scan);
	sqlite3_bind_int64(st, 6, e->pid);
	/* exited: WEXITSTATUS; killed: WTERMSIG (0x7f would be a stop) */
	if (status >= 0 && sig == 0)
		sqlite3_bind_int(st, 7, (status >> 8) & 0xff);
	else
		sqlite3_bind_null(st, 7);
	if (status >= 0 && sig != 0 && sig != 0x7f)
		sqlite3_bind_int(st, 8, sig);
	else
		sqlite3_bind_null(st, 8);
	/* below the free-disk watermark an exited instance just leaves the snapshot */
	if (!s->history_off &&
	    (rc = store_step(s, s->st[ST_EXIT_INST], err, "cannot record an exited process")) < 0)
		return rc;
	if (s->history_off)
		sqlite3_clear_bindings(st);
	sqlite3_bind_int64(s->st[ST_DEL_SNAP], 1, e->pid);
	sqlite3_bind_int64(s->st[ST_DEL_SNAP], 2, e->inst);
	if ((rc = store_step(s, s->st[ST_DEL_SNAP], err, "cannot remove an exited process")) < 0)
		return rc;
	d->exited++;
	return 0;
}

/* The snapshot's time and scan and the last sample time into store_state. */
static int write_state(struct de_store *s, int64_t t, int64_t scan, int64_t sample_time,
		       struct de_error *err)
{
	int rc;

	for (int i = ST_SET_STATE; i <= ST_INIT_STATE; i++) {
		sqlite3_stmt *st = s->st[i];
		sqlite3_bind_int64(st, 1, t);
		sqlite3_bind_int64(st, 2, scan);
		sqlite3_bind_int64(st, 3, sample_time);
		if ((rc = store_step(s, st, err, "cannot record the snapshot time")) < 0)
			return rc;
		if (sqlite3_changes(s->db) == 3)
			break; /* the rows were there: updated */
	}
	return 0;
}

/*
 * The end of a batch inside its transaction: the snapshot's time and scan
 * (and the last sample time) into store_state, the counts into the scan's
 * row; then COMMIT.  An event batch (lazy) leaves store_state alone while
 * it was written less than STORE_STATE_LAG_MS of snapshot time before: at
 * 1,000 execs/s that is one WAL frame in a dozen batches' instead of one
 * in each.  The in-memory snap_time/snap_scan stay current, and closing
 * the store writes them; a store reopened after a crash takes the newest
 * committed event scan instead (store.c state_catch_up), and the live
 * query never shows a row seen last before it was first seen.
 */
int store_finish_batch(struct de_store *s, int64_t t, int64_t scan, int64_t sample_time, bool lazy,
		       const struct de_store_diff *d, struct de_error *err)
{
	/* an event batch: the page store_state is on every STORE_STATE_LAG_MS
	   of snapshot time, not every batch (a WAL frame each) */
	bool state = !lazy || !s->state_written || t - s->state_written >= STORE_STATE_LAG_MS;
	int rc;

	if (state && (rc = write_state(s, t, scan, sample_time, err)) < 0)
		return rc;
	if (scan > 0) {
		sqlite3_stmt *st = s->st[ST_SCAN_COUNTS];
		sqlite3_bind_int64(st, 1, (sqlite3_int64)d->added);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)d->changed);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)d->exited);
		sqlite3_bind_int64(st, 4, scan);
		if ((rc = store_step(s, s->st[ST_SCAN_COUNTS], err, "cannot record scan counts")) <
		    0)
			return rc;
	}
	if (lazy && s->hold_ms) {
		/* an event batch: left open for the next ones, up to hold_ms
		   after the first (de_store_hold_batches) */
		int64_t now = de_mono_ms();
		if (!s->held) {
			s->held = true;
			s->held_since = now;
		}
		if (now - s->held_since < s->hold_ms)
			goto done;
	}
	/* (a failure leaves held set: store_rollback says the held are lost) */
	if ((rc = store_step(s, s->st[ST_COMMIT], err, "cannot commit the snapshot")) < 0)
		return rc;
	s->held = false;
done:
	if (state)
		s->state_written = t;
	s->state_dirty = !state;
	if (d->added || d->changed || d->history || d->exited || d->samples)
		s->versions.data++;
	if (d->added || d->identity_changed || d->history || d->exited)
		s->versions.identity++;
	return 0;
}

int store_flush_state(struct de_store *s, struct de_error *err)
{
	int rc;

	if (!s->state_dirty || s->read_only)
		return 0;
	if ((rc = store_begin_write(s, err, "cannot start the snapshot time's transaction")) < 0)
		return rc;
	if ((rc = write_state(s, s->snap_time, s->snap_scan, s->sample_time, err)) < 0 ||
	    (rc = store_step(s, s->st[ST_COMMIT], err, "cannot commit the snapshot time")) < 0) {
		store_rollback(s);
		return rc;
	}
	s->state_written = s->snap_time;
	s->state_dirty = false;
	return 0;
}

/* ---- a full scan ----------------------------------------------------------- */

/* A record's part of the batch hash (store.h, struct de_store_diff), and how
   many are hashed at a time (BLAKE3 hashes whole 1 KiB chunks in parallel). */
#define BATCH_DIGEST  32
#define BATCH_DIGESTS 256

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * One record (ps: its platform_data sums) against the committed snapshot;
 * its new index entry goes to nt.  *seen counts the committed entries seen.
 */
static int apply_one(struct de_store *s, const struct de_process_record *r, const struct pd_sum *ps,
		     struct snap_tab *nt, int64_t t, int64_t scan, bool sampling, size_t *seen,
		     uint8_t digest[BATCH_DIGEST], struct de_store_diff *d, struct de_error *err)
{
	struct snap_ent *old = store_tab_find(&s->snap, r->pid);
	struct snap_ent *ne = store_tab_add(nt, r->pid);
	struct rec_sum h;

	if (!ne)
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "%s: pid %u appears twice in one scan; the scan is refused",
				    s->path, r->pid);
	store_record_hashes(r, ps, &h);
	put_le64(digest, r->pid);
	put_le64(digest + 8, r->has_start_time ? (uint64_t)r->start_time : UINT64_MAX);
	put_le64(digest + 16, h.idh);
	put_le64(digest + 24, h.vh);
	if (old && store_same_instance(old, r)) {
		*ne = *old;
		old->seen = s->gen;
		(*seen)++;
		return store_write_same(s, r, old, ne, &h, t, scan, sampling, d, err);
	}
	if (old) {
		/* the pid was reused (another start time): the old instance is
		   over, seen gone by this scan */
		int rc = store_write_exit(s, old, t, scan, s->snap_time ? s->snap_time : t,
					  s->snap_scan, STORE_NO_STATUS, d, err);
		if (rc < 0)
			return rc;
		old->seen = s->gen;
		(*seen)++;
	}
	return store_write_new(s, r, scan, ne, &h, d, err);
}

/*
 * Reading each record costs a cache miss per pointer (names, arguments, the
 * platform_data tree): ask for the next records' memory ahead of time, in
 * two steps, so the misses overlap instead of queueing.
 */
static void prefetch_record(const struct de_process_record *recs, size_t n, size_t i)
{
	if (i + 8 < n) {
		const struct de_process_record *r = &recs[i + 8];
		__builtin_prefetch(r->name);
		__builtin_prefetch(r->executable_path);
		__builtin_prefetch(r->command_line);
		__builtin_prefetch(r->platform_data);
		__builtin_prefetch(r->facts.cgroup);
		__builtin_prefetch(r->executable_hash);
		__builtin_prefetch(r->user_id);
	}
	if (i + 4 < n) {
		const struct de_process_record *r = &recs[i + 4];
		for (size_t k = 0; k < r->command_line_len && k < 8; k++)
			__builtin_prefetch(r->command_line[k]);
		if (json_is_object(r->platform_data))
			__builtin_prefetch(json_object_iter(r->platform_data));
	}
}

/*
 * A scan that inserts at least BULK_MIN new rows, and no fewer than the
 * snapshot already holds, drops the snapshot's indexes first and creates
 * them again before COMMIT: SQLite builds an index from one sort far
 * faster than it inserts 10,000 entries one by one, each of which costs
 * about as much as its row.  The definitions are read back from
 * sqlite_master, so whatever a migration made is what is rebuilt; all of it
 * is inside the scan's transaction, so a failure leaves the indexes as
 * they were.  Readers (rules, the CLI) see the indexes at every commit.
 */
#define BULK_MIN	 1024
#define BULK_MAX_INDEXES 8

struct bulk {
	char *sql[BULK_MAX_INDEXES];  /* CREATE INDEX statements to run again */
	char *drop[BULK_MAX_INDEXES]; /* and the DROP INDEX of each (sqlite3_mprintf) */
	size_t n;
};

static void bulk_free(struct bulk *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->sql[i]);
		sqlite3_free(b->drop[i]);
	}
	b->n = 0;
}

/* Drop the snapshot's indexes, remembering them in *b. */
static int bulk_begin(struct de_store *s, struct bulk *b, struct de_error *err)
{
	sqlite3_stmt *st;
	int rc = 0;

	b->n = 0;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND"
			       " tbl_name = 'processes' AND sql IS NOT NULL",
			       -1, &st, NULL) != SQLITE_OK)
		return store_db_err(s, err, "cannot list the snapshot's indexes");
	while (rc == 0 && sqlite3_step(st) == SQLITE_ROW && b->n < BULK_MAX_INDEXES) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		const char *sql = (const char *)sqlite3_column_text(st, 1);
		if (!name || !sql)
			continue;
		b->sql[b->n] = strdup(sql);
		b->drop[b->n] = sqlite3_mprintf("DROP INDEX \"%w\"", name);
		if (!b->sql[b->n] || !b->drop[b->n]) {
			free(b->sql[b->n]);
			sqlite3_free(b->drop[b->n]);
			rc = de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
			break;
		}
		b->n++;
	}
	sqlite3_finalize(st);
	for (size_t i = 0; rc == 0 && i < b->n; i++)
		if (sqlite3_exec(s->db, b->drop[i], NULL, NULL, NULL) != SQLITE_OK)
			rc = store_db_err(s, err, "cannot prepare a bulk insert");
	if (rc < 0)
		bulk_free(b);
	return rc;
}

/* Create again the indexes bulk_begin() dropped. */
static int bulk_end(struct de_store *s, struct bulk *b, struct de_error *err)
{
	int rc = 0;

	for (size_t i = 0; i < b->n && rc == 0; i++)
		if (sqlite3_exec(s->db, b->sql[i], NULL, NULL, NULL) != SQLITE_OK)
			rc = store_db_err(s, err, "cannot index the snapshot");
	bulk_free(b);
	return rc;
}

/* Room for n records' sums in s->pd. */
static int pd_reserve(struct de_store *s, size_t n)
{
	struct pd_sum *p;

	if (n <= s->pd_cap)
		return 0;
	p = realloc(s->pd, n * sizeof(*p));
	if (!p)
		return -ENOMEM;
	s->pd = p;
	s->pd_cap = n;
	return 0;
}

int de_store_processes(struct de_store *s, int64_t scan_id, const struct de_process_record *recs,
		       size_t n, struct de_error *err)
{
	struct bulk bulk = {0};
	struct de_store_diff d = {0};
	struct snap_tab nt = {0};
	struct de_blake3_hasher bh;
	uint8_t digests[BATCH_DIGESTS][BATCH_DIGEST];
	int64_t t = INT64_MIN, scan = scan_id;
	size_t seen = 0;
	bool sampling;
	int rc;

	if (s->read_only)
		return de_error_set(err, DE_ERR_DATABASE, EROFS, "%s: store opened read-only",
				    s->path);
	if (!s->snap_loaded && (rc = store_load_snapshot(s, err)) < 0)
		return rc;
	for (size_t i = 0; i < n; i++)
		if (recs[i].collection_time > t)
			t = recs[i].collection_time;
	if (n == 0)
		t = de_now_ms();
	sampling = t - s->sample_time >= s->sample_interval_ms;
	if (!s->queue && !(s->queue = calloc(STORE_BATCH_ROWS, sizeof(*s->queue))))
		return de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
	/* the new index reuses the previous scan's memory when it fits */
	if (pd_reserve(s, n) < 0 || store_pd_sums(recs, n, s->pd) < 0 ||
	    store_tab_take(&s->spare, &nt, n) < 0)
		return de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
	s->gen++;
	if ((rc = store_begin_write(s, err, "cannot start the snapshot transaction")) < 0)
		goto fail;
	if (n >= BULK_MIN && n >= 2 * s->snap.len && (rc = bulk_begin(s, &bulk, err)) < 0)
		goto fail;
	s->batching = true;
	de_blake3_init(&bh);
	for (size_t i = 0; i < n; i++) {
		prefetch_record(recs, n, i);
		if ((rc = apply_one(s, &recs[i], &s->pd[i], &nt, t, scan, sampling, &seen,
				    digests[i % BATCH_DIGESTS], &d, err)) < 0)
			goto fail;
		if (i % BATCH_DIGESTS == BATCH_DIGESTS - 1 || i + 1 == n)
			de_blake3_update(&bh, digests, (i % BATCH_DIGESTS + 1) * BATCH_DIGEST);
	}
	de_blake3_finalize(&bh, d.batch_hash, sizeof(d.batch_hash));
	d.has_batch_hash = true;
	s->batching = false;
	if ((rc = flush_queue(s, err)) < 0)
		goto fail;
	/* whatever was not seen has exited (on a steady host: nothing to look for) */
	for (size_t i = 0; seen < s->snap.len && i < s->snap.cap; i++) {
		struct snap_ent *e = &s->snap.e[i];
		if (!e->used || e->seen == s->gen)
			continue;
		if ((rc = store_write_exit(s, e, t, scan, s->snap_time ? s->snap_time : t,
					   s->snap_scan, STORE_NO_STATUS, &d, err)) < 0)
			goto fail;
	}
	if (bulk.n && (rc = bulk_end(s, &bulk, err)) < 0)
		goto fail;
	if ((rc = store_finish_batch(s, t, scan, sampling ? t : s->sample_time, false, &d, err)) <
	    0)
		goto fail;
	store_tab_free(&s->spare);
	s->spare = s->snap;
	s->snap = nt;
	s->snap_time = t;
	s->snap_scan = scan;
	if (sampling)
		s->sample_time = t;
	s->last_diff = d;
	return 0;
fail:
	bulk_free(&bulk);
	store_rollback(s);
	store_tab_free(&s->spare);
	s->spare = nt;
	return rc;
}
