/*
 * store.h — the event store: SQLite (WAL) holding the current process
 * snapshot, the history of process instances, sampled resource use, the
 * scans, the alerts and their delivery records.  The seed's EventStore.
 *
 * Relations (schema version 4; src/lib/store_schema.c holds the migrations
 * and a description of every column, which `daemoneye-cli rules schema`
 * prints for the tables rules may read):
 *
 *   processes          the current snapshot, one row per live process, with
 *                      every ProcessRecord column (command_line as one text
 *                      column of the arguments joined by spaces, argv as a
 *                      JSON array in `argv_json`), the derived exe_deleted and
 *                      exe_replaced, `instance_id` (the id its history row
 *                      gets), and `first_seen`/`first_scan_id`.
 *                      This is what detection rules see.  A row is written
 *                      only when its process appears or something in it
 *                      changes, so its `scan_id`, `collection_time` and `id`
 *                      name the scan that last wrote it; the newest scan is
 *                      `SELECT max(id) FROM scans WHERE status = 'ok'`.
 *   process_instances  history: one row per process instance (pid,
 *                      start_time) that has left the snapshot (exited, or
 *                      its pid reused): its last snapshot row with
 *                      first_seen, last_seen, exited_at and the scans that
 *                      first and last saw it and saw it gone.  Live
 *                      instances are their processes rows only, so a new
 *                      process costs one row; de_store_query_processes()
 *                      reads both.
 *   process_changes    when an instance's identity fields change while it
 *                      lives (exec, reparenting, its file deleted), the
 *                      previous values, so history is never overwritten.
 *   process_samples    cpu_usage and memory_usage of live instances, written
 *                      at most every sample_interval_s and only for the
 *                      instances whose values changed since their last sample.
 *   scans              id, started_at, ended_at, process_count, duration_ms,
 *                      source ('poll' or 'event'), status ('running', 'ok',
 *                      'failed') and the counts of new/changed/exited.
 *   alerts, alert_deliveries   alerts (with `incomplete`: the rule was cut
 *                      short) and one row per (alert, sink) delivery.
 *   store_state        key/value bookkeeping (time of the last snapshot).
 *   network_connections TCP connect/listen/accept per process instance
 *                      (pid, start_time): reported by the eBPF sensor as
 *                      they happen (de_store_apply_events) and found open by
 *                      full scans (de_store_connections), which also mark
 *                      closed what they no longer find.
 *
 * The snapshot is brought up to date by full scans (de_store_processes) and,
 * between them, by procmond's real-time exec/exit events
 * (de_store_apply_events); both diff against the same in-memory index, so
 * a full scan after events writes only what the events missed.
 *
 * Storage grows with process churn, not with scans x processes: a scan of an
 * unchanged host writes its scans row and one store_state row.
 *
 * One writer: a read-write open takes an exclusive flock(2) on "<path>.lock"
 * and a second writer is refused with the holder's pid.  Readers (the CLI)
 * open read-only, take no lock and read while the agent writes (WAL).
 *
 * Ownership: the store is opaque; de_store_close() accepts NULL.  Rows given
 * to a query callback borrow the statement's memory and are valid only
 * during the call.
 */
#ifndef DAEMONEYE_STORE_H
#define DAEMONEYE_STORE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemoneye/error.h"
#include "daemoneye/alert.h"
#include "daemoneye/record.h"

/* The seed's EventStoreConfig. */
struct de_store_config {
	const char *path;	    /* database file */
	uint64_t max_size_mb;	    /* size cap enforced by de_store_prune (0: none) */
	bool wal_mode;		    /* journal_mode=WAL (else a rollback journal) */
	uint32_t max_connections;   /* accepted from the seed; the agent uses one */
	bool read_only;		    /* open for reading only (the CLI): no lock, no writes */
	uint64_t sample_interval_s; /* cpu/memory into history at most this often (0: 300) */
	int busy_timeout_ms;	    /* wait for a lock this long (0: 5000) */
	/*
	 * The free-disk watermark (0: none): below it de_store_prune prunes the
	 * oldest history until the file system has this much free again, and
	 * when no history is left to prune the store stops writing history
	 * (exited instances, identity changes, samples) until free space is
	 * back above 1.5 times it.  The snapshot, scans and alerts are always
	 * written.
	 */
	uint64_t min_free_bytes;
	/* Free bytes for unprivileged users where path is (NULL: statvfs; tests inject theirs). */
	uint64_t (*free_bytes)(const char *path);
	/*
	 * Open the writer's connection in SQLite's shared-cache mode, so that
	 * a connection of this process opened on the same cache
	 * (de_store_shared_vfs, de_engine_open_shared) with read_uncommitted
	 * reads what this one has not committed yet: the rules over event
	 * batches a transaction holds open (de_store_hold_batches).
	 */
	bool shared_cache;
};

struct de_store;

#define DE_STORE_SCHEMA_VERSION 11

/*
 * Open (and, unless read_only, lock, create and migrate) the store.  A file
 * that is not a SQLite database, or carries a newer schema version, is
 * refused with a DatabaseError; it is never overwritten.  A store already
 * open for writing by another process is refused (EBUSY) naming its pid.
 * A read-only open of a missing file fails with ENOENT and creates nothing.
 */
int de_store_open(const struct de_store_config *cfg, struct de_store **out, struct de_error *err);
void de_store_close(struct de_store *s);

/*
 * Record the start of a scan; *scan_id receives its id.  source is "poll"
 * or "event" (anything else is a ValidationError).
 */
int de_store_scan_begin(struct de_store *s, int64_t started_ms, const char *source,
			int64_t *scan_id, struct de_error *err);
/* Record its successful end and the number of processes seen. */
int de_store_scan_end(struct de_store *s, int64_t scan_id, int64_t ended_ms, size_t count,
		      struct de_error *err);
/*
 * Mark a scan failed with a reason (best effort: on a full or read-only disk
 * this fails too, and the scan row stays 'running').
 */
int de_store_scan_fail(struct de_store *s, int64_t scan_id, int64_t ended_ms, const char *why,
		       struct de_error *err);

/* What one de_store_processes() call wrote. */
struct de_store_diff {
	size_t added;		 /* new instances (also new snapshot rows) */
	size_t changed;		 /* snapshot rows rewritten (identity or changing values) */
	size_t history;		 /* identity changes recorded in process_changes */
	size_t exited;		 /* instances marked exited and dropped from the snapshot */
	size_t samples;		 /* rows written to process_samples */
	size_t identity_changed; /* of `changed`, rows rewritten for their identity */
	/* a full scan's batch (de_store_processes; zero after events): BLAKE3 over
	   each record's 32-byte digest, in the batch's order: little-endian u64
	   pid, start time (ms; -1 unknown), identity hash and changing-values
	   hash, the store's own 64-bit hashes of what it stores of the record
	   (store_hash.c).  Any stored field of any process changes it; it is no
	   stronger than those 64-bit hashes against a process crafted to collide */
	bool has_batch_hash;
	uint8_t batch_hash[32];
};

/*
 * Bring the snapshot to recs (a full scan: every live process once; a pid
 * twice is a ValidationError) in one transaction, under scan_id (a scan
 * begun with de_store_scan_begin; the records' own scan_id is not read):
 * insert new instances, rewrite only the rows that changed, mark the
 * missing ones exited, sample cpu/memory when the sample interval has
 * passed.  The batch's time is the largest collection_time in recs.  On
 * any failure (disk full, read-only file system) the transaction is rolled
 * back, the store is as before, and the next call starts afresh.
 * de_store_last_diff() says what it wrote.
 */
int de_store_processes(struct de_store *s, int64_t scan_id, const struct de_process_record *recs,
		       size_t n, struct de_error *err);
/* What the last successful de_store_processes() or de_store_apply_events() wrote. */
struct de_store_diff de_store_last_diff(const struct de_store *s);
/*
 * Numbers that grow with the commits through s that changed rows of
 * processes, process_instances, process_changes or process_samples (a
 * scan's or events' batch with anything in its diff, retention that
 * removed rows): while they stay, a rule reading only those tables reads
 * what it read before (the agent's rule cache, src/agent/rulecache.h).
 * `data` counts every such commit; `identity` only those that added,
 * ended, or changed the identity of an instance, or removed history: a
 * change of values alone (cpu_usage, memory_usage, platform_data,
 * collection_time, scan_id, id, cwd, value_hash, process_samples) leaves
 * it.  Other tables (scans, connections, alerting) are not counted.  Both
 * 0 at open.
 */
struct de_store_versions {
	uint64_t data, identity;
};
struct de_store_versions de_store_data_versions(const struct de_store *s);

/*
 * Apply real-time events, in order, in one transaction, under scan_id (a scan
 * begun with source "event"). exec with a record: the instance (pid,
 * start_time) enters the snapshot and history as de_store_processes would add
 * it; a previous live instance of the same pid with another start_time is
 * marked exited (exited_at = time_ms) and leaves the snapshot; the same
 * instance with changed identity (exec keeps pid and start_time but changes
 * name, executable, argv) is rewritten with the old values kept in
 * process_changes. exec without a record: nothing is written. exit: the live
 * instance of pid is marked exited_at = time_ms and leaves the snapshot
 * (unknown pid: nothing). The next de_store_processes() (a full scan) must
 * treat these as already known (no double insert, no false exit). On failure
 * everything is rolled back as in de_store_processes. de_store_last_diff()
 * then says what it wrote.
 *
 * Details: the record's own scan_id is ignored (scan_id is used); an
 * instance that ends by an event has last_seen = exited_at = time_ms and
 * last_scan_id = exit_scan_id = scan_id; the exit code is not stored.  An
 * exec's record whose pid differs from the event's, or an unknown kind, is
 * a ValidationError (the whole batch is rolled back).  Events older than
 * the live instance of their pid are ignored (applied after a full scan
 * that already saw the pid reused): an exec whose start_time is earlier
 * than the live instance's, an exit whose time_ms is.  The snapshot time
 * (store_state) becomes the newest event's time and the snapshot scan
 * scan_id: the events keep the snapshot current.  The scan's new, changed
 * and exited counts add up over the batches applied under it.
 */
int de_store_apply_events(struct de_store *s, int64_t scan_id, const struct de_process_event *ev,
			  size_t n, struct de_error *err);

/*
 * Group commit of event batches.  With ms > 0, a batch of
 * de_store_event_scan or de_store_apply_events does not commit: its
 * transaction stays open ("held") for the batches after it, and the batch
 * that comes ms or more after the first of them commits them all.  Any
 * other write of this store (a full scan, retention, the outbox, a
 * checkpoint, closing) commits what is held first; the fleet spool's
 * additions and removals join it (de_store_spool_add).  Until then
 * only this connection, and connections sharing its cache with
 * read_uncommitted, see the held rows; another process sees them at the
 * commit.  A failure of a later batch, or of the commit, rolls them all
 * back: de_store_held_take then says so once, and the caller applies
 * them again.  0 (the default): every batch commits.
 */
void de_store_hold_batches(struct de_store *s, int64_t ms);

/* When the held batches are due for their commit (monotonic ms; INT64_MAX: none held). */
int64_t de_store_held_due(const struct de_store *s);

/* Commit the held batches now, if any (0 if none).  On failure they are rolled back. */
int de_store_commit_held(struct de_store *s, struct de_error *err);

enum de_store_held {
	DE_STORE_HELD_NONE, /* nothing held: every batch applied is committed */
	DE_STORE_HELD_OPEN, /* batches are held, not yet committed */
	DE_STORE_HELD_LOST, /* held batches were rolled back since the last call */
};

/* What became of the held batches; LOST is said once, then NONE or OPEN. */
enum de_store_held de_store_held_take(struct de_store *s);

/*
 * The VFS name the writer was opened with when its cache is shared
 * (de_store_config.shared_cache): a connection opened on the store's path
 * with it and SQLITE_OPEN_SHAREDCACHE shares the cache.  NULL when not shared.
 */
const char *de_store_shared_vfs(const struct de_store *s);

/*
 * The event path's batch in one transaction: a finished scan of source
 * "event" (its process_count the execs that carry a record) and
 * de_store_apply_events over it, committed together (or held:
 * de_store_hold_batches); its id in *scan_id.  0, or an error after which
 * nothing of it (nor of the batches held with it) is in the file.
 */
int de_store_event_scan(struct de_store *s, int64_t now_ms, const struct de_process_event *ev,
			size_t n, int64_t *scan_id, struct de_error *err);

/* Insert an alert (with its `incomplete` flag). */
int de_store_alert(struct de_store *s, const struct de_alert *a, struct de_error *err);

/* FAILED is recorded as 'dead' (the dead-letter state, outbox.h). */
/* FAILED is recorded as 'dead' (the dead-letter state, outbox.h). */
enum de_delivery_status { DE_DELIVERY_PENDING = 0, DE_DELIVERY_DELIVERED, DE_DELIVERY_FAILED };

/*
 * Record (or update) the delivery of alert alert_id to sink: status, the
 * time and an optional error text.  Attempts are counted.  Retention only
 * prunes an alert whose every delivery is DELIVERED.
 */
int de_store_alert_delivery(struct de_store *s, const char *alert_id, const char *sink,
			    enum de_delivery_status status, int64_t when_ms, const char *error,
			    struct de_error *err);

/* ---- queries (the seed's ProcessQuery) ---------------------------------- */

struct de_process_query {
	bool has_pid;
	uint32_t pid;
	const char *name;	  /* exact name, or NULL */
	const char *name_pattern; /* GLOB pattern (* ? [..]), or NULL */
	bool has_since;		  /* alive at or after since_ms */
	int64_t since_ms;
	bool has_until; /* first seen at or before until_ms */
	int64_t until_ms;
	bool has_scan_id; /* alive during this scan */
	int64_t scan_id;
	bool current_only; /* only instances in the current snapshot */
	uint64_t limit;	   /* 0: no limit */
	uint64_t offset;
};

/*
 * One process instance.  Strings are borrowed (valid during the callback);
 * optional numbers have has_ flags.  For a live instance last_seen is the
 * time of the newest snapshot and cpu/memory are current; for an exited one
 * they are the values last stored for it.
 */
struct de_process_row {
	int64_t instance_id;
	uint32_t pid;
	bool has_ppid;
	uint32_t ppid;
	const char *name;
	const char *executable_path; /* NULL when unknown */
	const char *command_line;    /* arguments joined by spaces */
	const char *argv_json;	     /* JSON array */
	bool has_start_time;
	int64_t start_time;
	int64_t first_seen, last_seen;
	bool has_exited_at;
	int64_t exited_at;
	int64_t first_scan_id, last_scan_id; /* 0: unknown */
	bool has_cpu_usage;
	double cpu_usage;
	bool has_memory_usage;
	uint64_t memory_usage;
	const char *executable_hash;
	const char *user_id;
	bool accessible, file_exists, exe_deleted, exe_replaced;
	bool alive;		/* in the current snapshot */
	const char *user_name;	/* the user_id's name, NULL when it has none */
	const char *group_name; /* the effective group's name, NULL when unknown */
	const char *cwd;	/* working directory, NULL when unknown */
	/* how it ended, when an exit event said so: its exit status, or the
	   signal that killed it */
	bool has_exit_code, has_exit_signal;
	int exit_code, exit_signal;
};

/* Return 0 to continue, anything else to stop (de_store_query_processes returns it). */
typedef int (*de_process_row_cb)(const struct de_process_row *row, void *arg);

/*
 * Stream the instances matching q, oldest first (by instance id: exited
 * and live instances merged), to cb, in memory that does not grow with
 * history.
 * Returns 0, the callback's nonzero value, or a negative error.
 */
int de_store_query_processes(struct de_store *s, const struct de_process_query *q,
			     de_process_row_cb cb, void *arg, struct de_error *err);

/*
 * Fold the write-ahead log into the file on a thread of the store's own
 * (its own connection; PASSIVE, so neither the writer nor readers wait),
 * whenever it holds min_wal_bytes or more: a writer that commits all the
 * time (the agent's exec path) then never pays for a checkpoint, and its
 * fsyncs, on the way from an exec to its alert, and the WAL stays small.
 * Stopped by de_store_close.  0, or an error (no thread).
 */
int de_store_background_checkpoints(struct de_store *s, uint64_t min_wal_bytes,
				    struct de_error *err);

/* ---- TCP connections ------------------------------------------------------ */

/*
 * Record connections found by a full scan (de_netconn_scan), in one
 * transaction: each is inserted, or its row (same instance and endpoints)
 * seen again.  Then every row still open whose last sighting is before
 * scan_start_ms was not found by the scan: it is marked closed at
 * scan_start_ms.  0 or a DatabaseError (nothing written).
 */
int de_store_connections(struct de_store *s, const struct de_connection *c, size_t n,
			 int64_t scan_start_ms, struct de_error *err);

struct de_connection_query {
	bool has_pid;
	uint32_t pid;
	bool has_since; /* seen at or after since_ms */
	int64_t since_ms;
	bool open_only; /* not known to be closed */
	uint64_t limit; /* 0: no limit */
};

/* One connection row with its process's name (strings borrowed for the callback). */
struct de_connection_row {
	int64_t id;
	uint32_t pid;
	int64_t start_time; /* 0: not known */
	const char *kind;   /* "connect", "accept", "listen", "connect_failed" */
	int family;	    /* 4 or 6 */
	const char *local_address;
	int local_port;
	const char *remote_address;
	int remote_port;
	int64_t inode; /* 0: not known */
	int64_t first_seen, last_seen;
	bool has_closed_at;
	int64_t closed_at;
	const char *source;	  /* "ebpf" or "scan" */
	const char *process_name; /* the instance's name, NULL when not stored */
	const char *user_name;	  /* its user's name, NULL when not known */
};

typedef int (*de_connection_row_cb)(const struct de_connection_row *row, void *arg);

/* Stream the connections matching q, oldest first.  0, cb's nonzero value, or an error. */
int de_store_query_connections(struct de_store *s, const struct de_connection_query *q,
			       de_connection_row_cb cb, void *arg, struct de_error *err);

/* ---- retention ---------------------------------------------------------- */

struct de_prune_stats {
	size_t rows;	     /* rows deleted by this call */
	bool more;	     /* stopped at the batch budget; call again */
	bool over_cap;	     /* still above max_size_mb with nothing left to prune */
	uint64_t used_bytes; /* pages in use after pruning */
	uint64_t free_bytes; /* free space where the store is, after pruning */
	bool low_disk;	     /* below the free-disk watermark (history was pruned for it) */
	bool history_off;    /* and history is no longer written (see min_free_bytes) */
};

/*
 * Prune history older than retention_days (0: no age limit) and, while the
 * pages in use exceed max_size_mb, the oldest history: exited instances with
 * their samples and changes, then samples, changes, finished scans and fully
 * delivered alerts.  Never the current snapshot, the instances in it, an
 * undelivered alert, or anything outside this file (the audit ledger).
 * Below the free-disk watermark (de_store_config.min_free_bytes) it prunes
 * the oldest process history (instances, samples, changes, scans; not
 * alerts) until the free space is back, and stops writing history when
 * there is none left to prune (de_prune_stats says so).
 * Works in short transactions of `batch` rows (0: 500), at most
 * `max_batches` (0: 20) per call, so a scan is never held up for long.
 * Then checkpoints the write-ahead log (PASSIVE, never waiting for
 * readers): call it between scans, so that scans only append to the WAL.
 */
int de_store_prune(struct de_store *s, int64_t now_ms, uint64_t retention_days, size_t batch,
		   size_t max_batches, struct de_prune_stats *out, struct de_error *err);

/* New max_size_mb and min_free_bytes (a reload); de_store_prune applies them. */
void de_store_set_limits(struct de_store *s, uint64_t max_size_mb, uint64_t min_free_bytes);

/*
 * Fold the write-ahead log into the file (a PASSIVE checkpoint: readers are
 * never waited for) when it holds at least min_wal_bytes, so that a store
 * written by many small transactions (the exec path) between full scans
 * keeps a small WAL.  Call it between batches, never inside one.  0 (also
 * when there was nothing to do), or a DatabaseError.
 */
int de_store_checkpoint(struct de_store *s, uint64_t min_wal_bytes, struct de_error *err);

/* ---- the fleet's spool (store_spool.c) ----------------------------------- */

/*
 * Messages for the fleet's stream (fleet.h) that wait in the store while
 * the cluster is unreachable: process events and scan summaries, published
 * in the order they were added.  The spool is bounded: past max_rows new
 * messages are dropped and counted (the count survives restarts).
 */
struct de_spool_msg {
	int64_t id;	    /* order (set by the store) */
	const char *kind;   /* "events" or "scans" */
	const char *msg_id; /* Nats-Msg-Id */
	const char *payload;
	int64_t created_at; /* ms since the epoch */
};
/*
 * Add msgs[0..n) in one transaction; those beyond max_rows rows are dropped
 * and counted, their number added to *dropped (may be NULL).  A
 * DatabaseError leaves the spool as it was.  While event batches are held
 * (de_store_hold_batches) the messages join their transaction: they are
 * committed with the events they describe, and a failure rolls those back
 * too (de_store_held_take reports it; the caller applies and spools them
 * again).  de_store_spool_remove joins it too: a removal rolled back with
 * them publishes those messages again, under the same Nats-Msg-Id.
 */
int de_store_spool_add(struct de_store *s, const struct de_spool_msg *msgs, size_t n,
		       uint64_t max_rows, size_t *dropped, struct de_error *err);
/* Called per message in order; its strings live until it returns.  Non-zero stops. */
typedef int (*de_spool_fn)(const struct de_spool_msg *m, void *arg);
/* The oldest `limit` messages, in order. */
int de_store_spool_peek(struct de_store *s, size_t limit, de_spool_fn fn, void *arg,
			struct de_error *err);
/* Remove every message up to and including id (published). */
int de_store_spool_remove(struct de_store *s, int64_t upto_id, struct de_error *err);
struct de_spool_stats {
	uint64_t rows;	   /* waiting */
	uint64_t dropped;  /* dropped by the bound since the store was made */
	int64_t oldest_ms; /* the oldest waiting message's time (0: none) */
};
int de_store_spool_stats(struct de_store *s, struct de_spool_stats *out, struct de_error *err);

/* ---- statistics --------------------------------------------------------- */

struct de_store_stats {
	int64_t processes, instances, live_instances, changes, samples, scans, failed_scans, alerts,
		deliveries;
	int64_t oldest_ms, newest_ms; /* first scan start, last scan end (0: none) */
	int64_t last_scan_id;
	uint64_t file_bytes, wal_bytes, used_bytes;
	int schema_version;
};

int de_store_stats(struct de_store *s, struct de_store_stats *out, struct de_error *err);

/* The underlying connection (borrowed), for the detection engine. */
sqlite3 *de_store_db(struct de_store *s);

#endif
