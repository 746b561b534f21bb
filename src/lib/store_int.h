/*
 * store_int.h — what the event store's files share (see store.h for the
 * public API), private to src/lib/store*.c, the way SQLite's files share
 * sqliteInt.h.  The files:
 *
 *   store.c         open, the single-writer lock, pragmas, close; the
 *                   prepared statement table; scans; errors and steps
 *   store_schema.c  the schema: its one description (tables, columns, which
 *                   rules may read) and the migrations that produce it
 *   store_pidtab.c  the in-memory index of the committed snapshot, by pid
 *   store_hash.c    a record's identity and changing-values hashes
 *   store_text.c    a record as a row: its text columns and its parameters
 *   store_diff.c    a full scan against the index: new, same, exited
 *   store_events.c  procmond's exec/exit events against the same index
 *   store_alerts.c  alerts and their delivery records
 *   store_query.c   the process history query (the seed's ProcessQuery)
 *   store_prune.c   retention by age and size, the WAL checkpoint
 *   store_stats.c   counts and sizes
 *   store_spool.c   the fleet's spool of messages waiting for the stream
 *   store_walbuf.c  the writer's VFS: a commit's WAL frames in one write
 *
 * Why the snapshot diff lives in memory: comparing a 10,000-process scan
 * against the rows in SQLite would read the whole snapshot each scan.  The
 * store instead keeps, per live pid, the instance key (start_time), its
 * instance id and two 64-bit hashes — one over the identity fields (name,
 * paths, argv, ppid, hash, user, the non-volatile platform_data keys), one
 * over the changing values (cpu, memory, the volatile platform_data keys).
 * A scan then writes only the rows whose hashes differ.  For a full scan the
 * index is rebuilt and swapped in only after COMMIT, so a failed transaction
 * leaves memory and file consistent with each other.  Real-time events edit
 * the index in place instead; when their transaction fails the index is
 * dropped and reloaded from the file before the next batch.  The hashes are
 * stored in the processes rows (so a restart needs no rewrite): changing how
 * they are computed needs a migration that sets them NULL.
 *
 * A live instance is its snapshot row alone; when it exits, or its pid is
 * reused, that row is copied into process_instances with its exit time, in
 * the same transaction that deletes it.  So a new process costs one row.
 *
 * Internal functions are named store_<verb> and have hidden visibility:
 * libdaemoneye is a static library, and nothing outside it calls them but
 * the store's own tests.
 */
#ifndef DAEMONEYE_STORE_INT_H
#define DAEMONEYE_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "daemoneye/buf.h"
#include "daemoneye/store.h"
#include "daemoneye/uuid.h"
#include "daemoneye/validator.h"

#pragma GCC visibility push(hidden)

/* ---- the snapshot index (store_pidtab.c) -------------------------------- */

struct snap_ent {
	uint32_t pid;
	bool used;
	bool has_start;
	bool known;    /* hashes valid (false for rows migrated from v1) */
	uint32_t seen; /* the generation (scan) that last saw it */
	int64_t start;
	int64_t inst; /* processes.instance_id */
	uint64_t idh; /* identity hash */
	uint64_t vh;  /* changing-values hash */
	/* the values last recorded into history (instance row or a sample) */
	bool s_has_cpu, s_has_mem;
	double s_cpu;
	uint64_t s_mem;
};

/* An open-addressing table of snap_ent by pid, at most half full. */
struct snap_tab {
	struct snap_ent *e;
	size_t cap; /* power of two, or 0 */
	size_t len;
};

/*
 * The pid itself, not a hash of it: scans list pids in ascending order, so
 * consecutive records touch consecutive slots instead of a cache line each.
 * Linear probing absorbs the collisions.  The lookups are inline here: the
 * diff makes two per record.
 */
static inline size_t store_pid_slot(uint32_t pid, size_t cap)
{
	return (size_t)pid & (cap - 1);
}

/* pid's entry, or NULL. */
static inline struct snap_ent *store_tab_find(const struct snap_tab *t, uint32_t pid)
{
	if (!t->cap)
		return NULL;
	for (size_t i = store_pid_slot(pid, t->cap);; i = (i + 1) & (t->cap - 1)) {
		if (!t->e[i].used)
			return NULL;
		if (t->e[i].pid == pid)
			return &t->e[i];
	}
}

/* Insert pid (the table must have room for it); NULL when pid is already there. */
static inline struct snap_ent *store_tab_add(struct snap_tab *t, uint32_t pid)
{
	for (size_t i = store_pid_slot(pid, t->cap);; i = (i + 1) & (t->cap - 1)) {
		if (!t->e[i].used) {
			t->e[i].used = true;
			t->e[i].pid = pid;
			t->len++;
			return &t->e[i];
		}
		if (t->e[i].pid == pid)
			return NULL;
	}
}

/* An empty table with room for n entries.  0 or -ENOMEM. */
int store_tab_init(struct snap_tab *t, size_t n);
/* Release the table's memory; it is then empty. */
void store_tab_free(struct snap_tab *t);
/* Room for one more entry.  0 or -ENOMEM (the table unchanged). */
int store_tab_reserve(struct snap_tab *t);
/*
 * An empty table for n entries into *out, made from spare's memory when it
 * is the right size (spare is then left empty), else newly allocated.
 */
int store_tab_take(struct snap_tab *spare, struct snap_tab *out, size_t n);
/* Remove e, an entry of t. */
void store_tab_del(struct snap_tab *t, struct snap_ent *e);

struct de_store;
/* Build s->snap from the snapshot rows and set s->next_inst. */
int store_load_snapshot(struct de_store *s, struct de_error *err);

/* ---- the statement table (store.c) -------------------------------------- */

/* The statements every write path uses, prepared once at open. */
enum store_stmt {
	ST_INS_SNAP,	/* a new instance's snapshot row */
	ST_UPD_SNAP,	/* rewrite a snapshot row (identity changed) */
	ST_UPD_VALS,	/* rewrite its changing values */
	ST_SAVE_CHANGE, /* the snapshot row's identity into process_changes */
	ST_EXIT_INST,	/* the snapshot row into process_instances, as exited */
	ST_DEL_SNAP,	/* and out of the snapshot */
	ST_INS_SAMPLE,	/* a cpu/memory sample */
	ST_SET_STATE,	/* the snapshot's time and scan, the last sample time (its rows exist) */
	ST_INIT_STATE,	/* the same, making the rows (a file's first snapshot) */
	ST_SCAN_COUNTS, /* a scan's new/changed/exited counts */
	ST_CONN_UPSERT, /* a TCP connection, new or seen again (store_conns.c) */
	ST_EVENT_SCAN,	/* the row of a batch of events' scan (store_events.c) */
	ST_BEGIN,	/* BEGIN IMMEDIATE (store_begin_write) */
	ST_COMMIT,	/* COMMIT (store_finish_batch) */
	ST_MAX
};

/*
 * Every statement that writes a record numbers its parameters alike,
 * STORE_NPARAM per row (store_bind_record()); the multi-row insert of new
 * instances holds STORE_BATCH_ROWS rows.
 */
#define STORE_NPARAM	 26
#define STORE_BATCH_ROWS 16
/* WAL frames after which a commit checkpoints by itself (a backstop: the
   agent checkpoints between scans) */
#define STORE_WAL_BACKSTOP_PAGES 4096
/* passes at most of the background checkpointer over frames committed
   while it checkpointed (store_fold_wal) */
#define STORE_CKPT_PASSES 8

/* ---- row hashing (store_hash.c) ----------------------------------------- */

/* What one pass over a record's platform_data yields. */
struct pd_sum {
	uint64_t id, vol; /* member hashes summed: identity members, volatile ones */
	bool object;	  /* platform_data is an object (else hashed whole) */
	bool exe_deleted, exe_replaced;
};

/* A record's two hashes and the platform_data facts that have columns. */
struct rec_sum {
	uint64_t idh; /* identity: what makes history */
	uint64_t vh;  /* changing values: what only updates the snapshot row */
	bool exe_deleted, exe_replaced;
};

/* The platform_data sums of recs[0..n) into out[0..n); -ENOMEM (out partly written). */
int store_pd_sums(const struct de_process_record *recs, size_t n, struct pd_sum *out);
/* The hashes of r, whose platform_data sums are *ps. */
void store_record_hashes(const struct de_process_record *r, const struct pd_sum *ps,
			 struct rec_sum *out);

/* ---- a record as a row (store_text.c) ----------------------------------- */

/*
 * A text column of the row being built: a capped buffer reused record after
 * record.  err is the first failure since the buffer was last emptied:
 * once a piece could not be added, nothing after it is, so a failed column
 * is never stored with a piece missing.
 */
struct textbuf {
	struct de_buf b;
	int err; /* 0, -ENOMEM, or -E2BIG past b.max */
};

/* The text columns of the record being written. */
struct textbufs {
	struct textbuf cmd, argv, pd;
};

/*
 * The text forms of a record, built once and bound to several statements.
 * The strings live in the store's reusable buffers (struct textbufs): valid
 * until the next store_bound_make() into the same slot.
 */
struct bound {
	char uuid[DE_UUID_STR_LEN + 1];
	const char *cmd, *argv, *pd; /* pd NULL when the record has none */
};

/*
 * The text forms of r in s->text[slot] (slot <= STORE_BATCH_ROWS), pointed
 * to by *b; with values_only just platform_data (what a change of values
 * rewrites).  0, -ENOMEM, or -E2BIG (a ValidationError) for a column longer
 * than the buffers' cap.
 */
int store_bound_make(struct de_store *s, size_t slot, struct bound *b,
		     const struct de_process_record *r, bool values_only, struct de_error *err);
/* Bind r, written by scan, as the row whose parameters start after off (0, STORE_NPARAM, ...). */
void store_bind_record(sqlite3_stmt *st, int off, const struct de_process_record *r, int64_t scan,
		       const struct bound *b, int64_t inst, const struct rec_sum *h);
/* Empty buffers that will hold at most max bytes each. */
void store_text_init(struct textbufs *t, size_t max);
/* Release the buffers' memory (their cap is kept). */
void store_text_free(struct textbufs *t);

/* ---- the store ---------------------------------------------------------- */

struct store_pending; /* a queued new instance (store_diff.c) */

/* The fleet spool's statements (store_spool.c's SP_MAX). */
#define STORE_SPOOL_STMTS 6

struct de_store {
	sqlite3 *db;
	/* event batches held open for one commit (de_store_hold_batches) */
	int64_t hold_ms;    /* how long after the first (0: every batch commits) */
	bool held;	    /* a transaction of batches is open on db */
	bool held_lost;	    /* ... and was rolled back since de_store_held_take asked */
	int64_t held_since; /* monotonic ms of its first batch */
	bool shared;	    /* db's page cache is shared (de_store_config.shared_cache) */
	char path[4096];
	int lock_fd; /* -1 when read-only */
	bool read_only;
	bool wal;
	uint64_t max_size_bytes;
	uint64_t min_free_bytes;		  /* the free-disk watermark (0: none) */
	uint64_t (*free_bytes)(const char *path); /* statvfs, or a test's */
	bool history_off;			  /* below the watermark with nothing to prune */
	int64_t sample_interval_ms;
	sqlite3_stmt *st[ST_MAX];
	struct snap_tab snap;  /* the committed snapshot, by pid */
	struct snap_tab spare; /* the previous index's memory, reused by the next scan */
	uint32_t gen;	       /* counts full scans: snap_ent.seen */
	struct pd_sum *pd;     /* per-record platform_data sums of the scan in hand */
	size_t pd_cap;
	/* store_bound_make's buffers: one per queued row, and one for single rows */
	struct textbufs text[STORE_BATCH_ROWS + 1];
	sqlite3_stmt *multi_snap; /* the insert of STORE_BATCH_ROWS new instances */
	sqlite3_stmt *spool_st[STORE_SPOOL_STMTS]; /* the fleet spool's, prepared at first use */
	struct store_pending *queue;		   /* STORE_BATCH_ROWS new instances to insert */
	size_t queued;
	bool batching;	   /* queue new instances (a full scan) */
	int64_t next_inst; /* id for the next instance (set by store_load_snapshot) */
	bool snap_loaded;
	int64_t snap_time, snap_scan, sample_time; /* from store_state */
	struct de_store_diff last_diff;		   /* of the last successful batch */
	struct de_store_versions versions;	   /* de_store_data_versions */
	int step_errno;				   /* errno after the last failed step */
	int64_t wal_pages;	 /* frames in the WAL after the last commit (atomic: the
				    background checkpointer reads it) */
	int64_t page_bytes;	 /* the file's page size */
	struct store_ckpt *ckpt; /* the background checkpointer, or NULL */
	/* event batches write store_state only every STORE_STATE_LAG_MS of
	   snapshot time (store_finish_batch): when it was last written, and
	   whether snap_time/snap_scan are newer than the file's */
	int64_t state_written;
	bool state_dirty;
};

/* ---- the writer's VFS (store_walbuf.c) ------------------------------------ */

#define STORE_WALBUF_VFS "daemoneye-walbuf"

/*
 * The name of the VFS the writer opens its file with (registered on the
 * first call, over the default VFS of that moment), or NULL when it cannot
 * be registered (the writer then opens with the default VFS).
 */
const char *store_walbuf_vfs(void);
/* How many gathered writes the WAL files of that VFS made, process-wide. */
uint64_t store_walbuf_writes(void);

/* ---- errors, steps, transactions (store.c) ------------------------------ */

/*
 * A DatabaseError for what failed on s->db: ENOSPC, EROFS, EBUSY, ENOMEM or
 * EIO, with the OS reason when there is one.  Returns the negative code.
 */
int store_db_err(struct de_store *s, struct de_error *err, const char *what);
/* Step st (its parameters bound) to completion, then reset it.  0 or store_db_err(). */
int store_step(struct de_store *s, sqlite3_stmt *st, struct de_error *err, const char *what);
/* BEGIN IMMEDIATE (instance ids come from s->next_inst: one writer). */
int store_begin_write(struct de_store *s, struct de_error *err, const char *what);
/* Finalize the fleet spool's statements (before the connection closes). */
void store_spool_close(struct de_store *s);
/* Whether the held event batches' transaction is open; one that ended
   behind the store's back (nothing open on db) is forgotten. */
static inline bool store_held_open(struct de_store *s)
{
	if (s->held && sqlite3_get_autocommit(s->db))
		s->held = false;
	return s->held;
}
/* Reset every statement and the insert queue, and roll back any open transaction. */
void store_rollback(struct de_store *s);

/*
 * Fold the WAL into the file with PASSIVE checkpoints on db (the background
 * checkpointer's connection), passing again while a pass copies frames
 * committed meanwhile, at most passes times; between(arg), when not NULL,
 * runs after each pass that copied something.  Returns the passes made.
 */
int store_fold_wal(sqlite3 *db, int passes, void (*between)(void *), void *arg);

/* ---- the schema (store_schema.c) ---------------------------------------- */

/* PRAGMA user_version of db into *out.  0, or -1 when it cannot be read. */
int store_read_version(sqlite3 *db, int *out);
/*
 * Bring s->db to DE_STORE_SCHEMA_VERSION in one transaction; a new file gets
 * its page size and auto_vacuum first.  A foreign or newer file is refused
 * untouched.
 */
int store_migrate(struct de_store *s, struct de_error *err);

/* Write one connection (reported by the kernel, or found by a scan) inside
   the caller's transaction (store_conns.c). */
int store_write_conn(struct de_store *s, const struct de_connection *c, struct de_error *err);
/*
 * The tables of the current schema that rules may not read, described as
 * de_relations() describes those they may.  Static; *n entries.
 */
const struct de_relation *store_schema_private(size_t *n);

/* ---- applying a scan, shared with events (store_diff.c) ----------------- */

/* Whether the index entry e and the record r are one instance (pid and start). */
static inline bool store_same_instance(const struct snap_ent *e, const struct de_process_record *r)
{
	return e->has_start == r->has_start_time &&
	       (!r->has_start_time || e->start == r->start_time);
}

/* A new instance of r, seen by scan: its snapshot row; *ne, its index entry, is filled. */
int store_write_new(struct de_store *s, const struct de_process_record *r, int64_t scan,
		    struct snap_ent *ne, const struct rec_sum *h, struct de_store_diff *d,
		    struct de_error *err);
/*
 * The instance of old seen again as r (ne: its new index entry, may be old
 * itself): what changed is written, dated t and scan; with sampling a
 * changed cpu/memory becomes a sample.
 */
int store_write_same(struct de_store *s, const struct de_process_record *r,
		     const struct snap_ent *old, struct snap_ent *ne, const struct rec_sum *h,
		     int64_t t, int64_t scan, bool sampling, struct de_store_diff *d,
		     struct de_error *err);
/*
 * Instance e has exited (seen gone at t by scan; alive last at last_seen, scan
 * last_scan): its snapshot row becomes its process_instances row, with how
 * it ended from status, the wait(2) status an exit event carried
 * (STORE_NO_STATUS: unknown, as when a scan found it gone).
 */
#define STORE_NO_STATUS (-1)
int store_write_exit(struct de_store *s, const struct snap_ent *e, int64_t t, int64_t scan,
		     int64_t last_seen, int64_t last_scan, int32_t status, struct de_store_diff *d,
		     struct de_error *err);
/*
 * An event batch leaves store_state (one page of the WAL) unwritten while
 * the file's snapshot time is less than this much older than the batch's:
 * a reader sees the live snapshot's time up to this stale (docs/perf.md,
 * "store_state every 50 ms"); closing the store writes it, and a store
 * reopened after a crash takes the newest event scan (store.c).
 */
#define STORE_STATE_LAG_MS 50
/*
 * The snapshot's time, scan and sample time (always, or with lazy only
 * every STORE_STATE_LAG_MS: an event batch), the scan's counts, then
 * COMMIT.
 */
int store_finish_batch(struct de_store *s, int64_t t, int64_t scan, int64_t sample_time, bool lazy,
		       const struct de_store_diff *d, struct de_error *err);
/* Write store_state if an event batch left it behind (at close); 0/-errno. */
int store_flush_state(struct de_store *s, struct de_error *err);

/* ---- sizes (store_stats.c) ---------------------------------------------- */

/* The first column of sql's first row as an integer; -1 on any failure. */
int64_t store_scalar(struct de_store *s, const char *sql);
/* Bytes of the pages in use (not on the freelist); 0 when unknown. */
uint64_t store_used_bytes(struct de_store *s);

#pragma GCC visibility pop

#endif
