/*
 * store_pidtab.c — the in-memory index of the committed snapshot: per live
 * pid, the instance (start time, instance id), its identity and
 * changing-values hashes and the values last recorded into history, in an
 * open-addressing table keyed by the pid itself (store_int.h has the
 * lookups, inline for the diff).  Loaded from the processes rows when a
 * writer first needs it and after a failed event batch.
 */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- the table ------------------------------------------------------------ */

/* The capacity for n entries: a power of two, at most half full. */
static size_t tab_cap(size_t n)
{
	size_t cap = 64;

	while (cap < n * 2)
		cap *= 2;
	return cap;
}

void store_tab_free(struct snap_tab *t)
{
	free(t->e);
	t->e = NULL;
	t->cap = t->len = 0;
}

int store_tab_init(struct snap_tab *t, size_t n)
{
	size_t cap = tab_cap(n);

	t->e = calloc(cap, sizeof(*t->e));
	if (!t->e)
		return -ENOMEM;
	t->cap = cap;
	t->len = 0;
	return 0;
}

/* Events add pids one at a time: the table doubles when it would be more than half full. */
int store_tab_reserve(struct snap_tab *t)
{
	struct snap_tab nt;

	if (t->cap && (t->len + 1) * 2 <= t->cap)
		return 0;
	if (store_tab_init(&nt, (t->len + 1) * 2) < 0) /* doubles: amortised O(1) */
		return -ENOMEM;
	for (size_t i = 0; i < t->cap; i++) {
		struct snap_ent *e = t->e[i].used ? store_tab_add(&nt, t->e[i].pid) : NULL;
		if (e)
			*e = t->e[i];
	}
	store_tab_free(t);
	*t = nt;
	return 0;
}

int store_tab_take(struct snap_tab *spare, struct snap_tab *out, size_t n)
{
	size_t cap = tab_cap(n);

	if (spare->cap == cap) {
		memset(spare->e, 0, cap * sizeof(*spare->e));
		spare->len = 0;
		*out = *spare;
		*spare = (struct snap_tab){0};
		return 0;
	}
	return store_tab_init(out, n);
}

/*
 * Remove an entry: later entries of its probe run move back into the hole
 * (linear probing without tombstones), so lookups stay exact.
 */
void store_tab_del(struct snap_tab *t, struct snap_ent *e)
{
	size_t hole = (size_t)(e - t->e), mask = t->cap - 1;

	t->e[hole] = (struct snap_ent){0};
	t->len--;
	for (size_t i = (hole + 1) & mask; t->e[i].used; i = (i + 1) & mask) {
		size_t home = store_pid_slot(t->e[i].pid, t->cap);
		/* stays if its home lies cyclically in (hole, i] */
		if (hole <= i ? (home > hole && home <= i) : (home > hole || home <= i))
			continue;
		t->e[hole] = t->e[i];
		t->e[i] = (struct snap_ent){0};
		hole = i;
	}
}

/* ---- loading the index from the file -------------------------------------- */

/*
 * One entry per snapshot row: its hashes as stored with it, and the values
 * last recorded into history for the sampling decision.
 */
int store_load_snapshot(struct de_store *s, struct de_error *err)
{
	/* the values last sampled, else the current ones (store_diff.c: sample_differs) */
	static const char sql[] =
		"SELECT p.pid, p.start_time, p.instance_id, p.identity_hash, p.value_hash,"
		" CASE WHEN sm.id IS NULL THEN p.cpu_usage ELSE sm.cpu_usage END,"
		" CASE WHEN sm.id IS NULL THEN p.memory_usage ELSE sm.memory_usage END"
		" FROM processes p LEFT JOIN process_samples sm ON sm.id ="
		"  (SELECT max(id) FROM process_samples WHERE instance_id = p.instance_id)";
	sqlite3_stmt *st;
	struct snap_tab t;
	int64_t n = 0, next = 1;
	int rc;

	/* instance ids: past the highest in history and in the snapshot */
	if (sqlite3_prepare_v2(
		    s->db,
		    "SELECT count(*), max(coalesce((SELECT max(id) FROM process_instances),"
		    " 0), coalesce(max(instance_id), 0)) + 1 FROM processes",
		    -1, &st, NULL) != SQLITE_OK)
		return store_db_err(s, err, "cannot read the snapshot");
	/* an aggregate always gives one row: anything else is an error (out of
	   memory, I/O), and an index loaded empty would make every live process
	   look new and every later scan fail on processes.pid */
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = store_db_err(s, err, "cannot read the snapshot");
		sqlite3_finalize(st);
		return rc;
	}
	n = sqlite3_column_int64(st, 0);
	next = sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	if (store_tab_init(&t, (size_t)n) < 0)
		return de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		store_tab_free(&t);
		return store_db_err(s, err, "cannot read the snapshot");
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && t.len < (size_t)n) {
		struct snap_ent *e = store_tab_add(&t, (uint32_t)sqlite3_column_int64(st, 0));
		if (!e)
			continue;
		e->has_start = sqlite3_column_type(st, 1) != SQLITE_NULL;
		e->start = sqlite3_column_int64(st, 1);
		e->inst = sqlite3_column_int64(st, 2);
		e->known = sqlite3_column_type(st, 3) != SQLITE_NULL &&
			   sqlite3_column_type(st, 2) != SQLITE_NULL;
		e->idh = (uint64_t)sqlite3_column_int64(st, 3);
		e->vh = (uint64_t)sqlite3_column_int64(st, 4);
		e->s_has_cpu = sqlite3_column_type(st, 5) != SQLITE_NULL;
		e->s_cpu = sqlite3_column_double(st, 5);
		e->s_has_mem = sqlite3_column_type(st, 6) != SQLITE_NULL;
		e->s_mem = (uint64_t)sqlite3_column_int64(st, 6);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		store_tab_free(&t);
		return store_db_err(s, err, "cannot read the snapshot");
	}
	store_tab_free(&s->snap);
	s->snap = t;
	s->next_inst = next;
	s->snap_loaded = true;
	return 0;
}
