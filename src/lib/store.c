/*
 * store.c — the SQLite event store (see store.h).
 *
 * Opening checks that an existing file is a SQLite database of a schema
 * version we know before touching it: a corrupt or foreign file is an error,
 * never silently recreated.  Migrations run forward inside one transaction,
 * keyed by PRAGMA user_version.  A writer holds an exclusive flock(2) on
 * "<path>.lock" for as long as the store is open.
 *
 * Why the snapshot diff lives in memory: comparing a 10,000-process scan
 * against the rows in SQLite would read the whole snapshot each scan.  The
 * store instead keeps, per live pid, the instance key (start_time), its row
 * id and two 64-bit hashes — one over the identity fields (name, paths,
 * argv, ppid, hash, user, the non-volatile platform_data keys), one over the
 * changing values (cpu, memory, the volatile platform_data keys).  A scan
 * then writes only the rows whose hashes differ.  For a full scan the table
 * is rebuilt and swapped in only after COMMIT, so a failed transaction
 * leaves memory and file consistent with each other.  Real-time events
 * (de_store_apply_events) edit the table in place instead; when their
 * transaction fails the table is dropped and reloaded from the file before
 * the next batch.  The hashes are stored in the processes rows (so a
 * restart needs no rewrite): changing how they are computed needs a
 * migration that sets them NULL.
 *
 * Where a scan's time goes (bench/bench_store.sh): on a steady host,
 * hashing each record (a collector's record carries its Linux facts flat,
 * hashed straight from the struct; a record whose platform_data is JSON is
 * walked, sixteen side by side so their cache misses overlap, pd_sums());
 * for new processes, SQLite's own inserts, which a full scan issues sixteen
 * rows per statement (flush_queue()).  The record text is built in buffers
 * reused from record to record.
 *
 * Schema history: 1 the foundation; 2 history that grows with churn
 * (instances, changes, samples, scan status, deliveries); 3 alerts.incomplete;
 * 4 an instance's history row written when it leaves the snapshot; 5 alerting
 * (outbox.h).
 *
 * Why 4: a new process used to cost two wide rows (snapshot and instance)
 * and four index entries, which capped a first scan at about a third of
 * DESIGN.md's ingest budget whatever the store did around them.  And a
 * scan that brings many new processes (a first scan) drops the snapshot's
 * indexes and builds them again after its inserts (bulk_indexes()): one
 * sort instead of an index insert per row, which cost as much as the row.  A live
 * instance now is its snapshot row (with first_seen, first_scan_id); when
 * it exits, or its pid is reused, that row is copied into process_instances
 * with its exit time, in the same transaction that deletes it.  Readers
 * that want every instance read both (de_store_query_processes()).
 */
#include "daemoneye/store.h"
#include "daemoneye/outbox.h"
#include "daemoneye/text.h"
#include "daemoneye/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* ---- the in-memory snapshot index --------------------------------------- */

struct snap_ent {
	uint32_t pid;
	bool used;
	bool has_start;
	bool known;    /* hashes valid (false for rows migrated from v1) */
	uint32_t seen; /* the generation (scan) that last saw it */
	int64_t start;
	int64_t inst; /* process_instances.id */
	uint64_t idh; /* identity hash */
	uint64_t vh;  /* changing-values hash */
	/* the values last recorded into history (instance row or a sample) */
	bool s_has_cpu, s_has_mem;
	double s_cpu;
	uint64_t s_mem;
};

struct snap_tab {
	struct snap_ent *e;
	size_t cap; /* power of two, or 0 */
	size_t len;
};

static void tab_free(struct snap_tab *t)
{
	free(t->e);
	t->e = NULL;
	t->cap = t->len = 0;
}

static int tab_init(struct snap_tab *t, size_t n)
{
	size_t cap = 64;

	while (cap < n * 2)
		cap *= 2;
	t->e = calloc(cap, sizeof(*t->e));
	if (!t->e)
		return -ENOMEM;
	t->cap = cap;
	t->len = 0;
	return 0;
}

/*
 * The pid itself, not a hash of it: scans list pids in ascending order, so
 * consecutive records then touch consecutive slots (a scrambled slot cost a
 * cache miss per record).  Linear probing absorbs the collisions.
 */
static size_t pid_slot(uint32_t pid, size_t cap)
{
	return (size_t)pid & (cap - 1);
}

static struct snap_ent *tab_find(const struct snap_tab *t, uint32_t pid)
{
	if (!t->cap)
		return NULL;
	for (size_t i = pid_slot(pid, t->cap);; i = (i + 1) & (t->cap - 1)) {
		if (!t->e[i].used)
			return NULL;
		if (t->e[i].pid == pid)
			return &t->e[i];
	}
}

/* Insert pid (table sized for it); NULL when pid is already there. */
static struct snap_ent *tab_add(struct snap_tab *t, uint32_t pid)
{
	for (size_t i = pid_slot(pid, t->cap);; i = (i + 1) & (t->cap - 1)) {
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

/* Room for one more entry at most half full (events add pids one at a time). */
static int tab_reserve(struct snap_tab *t)
{
	struct snap_tab nt;

	if (t->cap && (t->len + 1) * 2 <= t->cap)
		return 0;
	if (tab_init(&nt, (t->len + 1) * 2) < 0) /* doubles: amortised O(1) */
		return -ENOMEM;
	for (size_t i = 0; i < t->cap; i++) {
		struct snap_ent *e = t->e[i].used ? tab_add(&nt, t->e[i].pid) : NULL;
		if (e)
			*e = t->e[i];
	}
	tab_free(t);
	*t = nt;
	return 0;
}

/*
 * An empty table for n entries into *out, made from spare's memory when it
 * is the right size (spare is then left empty), else newly allocated.
 */
static int tab_take(struct snap_tab *spare, struct snap_tab *out, size_t n)
{
	size_t cap = 64;

	while (cap < n * 2)
		cap *= 2;
	if (spare->cap == cap) {
		memset(spare->e, 0, cap * sizeof(*spare->e));
		spare->len = 0;
		*out = *spare;
		*spare = (struct snap_tab){0};
		return 0;
	}
	return tab_init(out, n);
}

/*
 * Remove an entry: later entries of its probe run move back into the hole
 * (linear probing without tombstones), so lookups stay exact.
 */
static void tab_del(struct snap_tab *t, struct snap_ent *e)
{
	size_t hole = (size_t)(e - t->e), mask = t->cap - 1;

	t->e[hole] = (struct snap_ent){0};
	t->len--;
	for (size_t i = (hole + 1) & mask; t->e[i].used; i = (i + 1) & mask) {
		size_t home = pid_slot(t->e[i].pid, t->cap);
		/* stays if its home lies cyclically in (hole, i] */
		if (hole <= i ? (home > hole && home <= i) : (home > hole || home <= i))
			continue;
		t->e[hole] = t->e[i];
		t->e[i] = (struct snap_ent){0};
		hole = i;
	}
}

/* ---- the store ---------------------------------------------------------- */

enum {
	ST_INS_SNAP,
	ST_UPD_SNAP,
	ST_UPD_VALS,
	ST_SAVE_CHANGE,
	ST_EXIT_INST,
	ST_DEL_SNAP,
	ST_INS_SAMPLE,
	ST_SET_STATE,
	ST_SCAN_COUNTS,
	ST_MAX
};

/*
 * The insert of a new instance (its snapshot row: the instance's history
 * row is written when it leaves the snapshot, ST_EXIT_INST), also prepared
 * for BATCH_ROWS rows at once (prepare_multi()): a first scan of 10,000
 * processes spent about a third of SQLite's time opening, seeking and
 * closing cursors per row.  Every statement numbers its parameters alike
 * (bind_record()), NPARAM per row.  OR FAIL: a multi-row insert that may
 * abort needs a statement journal (a copy of every page it touches); a
 * failed batch is rolled back whole anyway.  Instance ids are given by the
 * store (s->next_inst), not left to SQLite: the row that names an instance
 * is written long before its history row.
 */
#define NPARAM	   23
#define BATCH_ROWS 16
#define INS_SNAP_HEAD                                                                              \
	"INSERT OR FAIL INTO processes(pid, id, scan_id, collection_time, ppid, name,"             \
	" executable_path, command_line, argv_json, start_time, cpu_usage, memory_usage,"          \
	" executable_hash, hash_algorithm, user_id, accessible, file_exists, exe_deleted,"         \
	" exe_replaced, platform_data, instance_id, identity_hash, value_hash, first_seen,"        \
	" first_scan_id) VALUES"
#define INS_SNAP_ROW                                                                               \
	"(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23,?4,?" \
	"3)"

static const char *const stmt_sql[ST_MAX] = {
	/*
	 * Plain INSERT and UPDATE, never INSERT OR REPLACE: a REPLACE may
	 * delete rows, so SQLite keeps a statement journal of every page it
	 * touches, which for a 10,000-process first scan copied (and with big
	 * pages spilled to a temporary file) several pages per record.  The
	 * in-memory index says whether the pid already has a row.
	 */
	[ST_INS_SNAP] = INS_SNAP_HEAD INS_SNAP_ROW,
	[ST_UPD_SNAP] = "UPDATE processes SET id = ?2, scan_id = ?3, collection_time = ?4,"
			" ppid = ?5, name = ?6, executable_path = ?7, command_line = ?8,"
			" argv_json = ?9, start_time = ?10, cpu_usage = ?11, memory_usage = ?12,"
			" executable_hash = ?13, hash_algorithm = ?14, user_id = ?15,"
			" accessible = ?16, file_exists = ?17, exe_deleted = ?18,"
			" exe_replaced = ?19, platform_data = ?20, instance_id = ?21,"
			" identity_hash = ?22, value_hash = ?23 WHERE pid = ?1",
	[ST_UPD_VALS] = "UPDATE processes SET id = ?2, scan_id = ?3, collection_time = ?4,"
			" cpu_usage = ?11, memory_usage = ?12, platform_data = ?20,"
			" value_hash = ?23 WHERE pid = ?1",
	[ST_SAVE_CHANGE] = "INSERT INTO process_changes(instance_id, changed_at, scan_id, ppid,"
			   " name, executable_path, command_line, argv_json, executable_hash,"
			   " hash_algorithm, user_id, accessible, file_exists, exe_deleted,"
			   " exe_replaced, platform_data)"
			   " SELECT instance_id, ?2, ?3, ppid, name, executable_path,"
			   " command_line, argv_json, executable_hash, hash_algorithm, user_id,"
			   " accessible, file_exists, exe_deleted, exe_replaced, platform_data"
			   " FROM processes WHERE pid = ?1",
	/* the snapshot row, as it was last, becomes the instance's history */
	[ST_EXIT_INST] = "INSERT INTO process_instances(id, pid, start_time, ppid, name,"
			 " executable_path, command_line, argv_json, executable_hash,"
			 " hash_algorithm, user_id, accessible, file_exists, exe_deleted,"
			 " exe_replaced, platform_data, cpu_usage, memory_usage, first_seen,"
			 " last_seen, exited_at, first_scan_id, last_scan_id, exit_scan_id)"
			 " SELECT instance_id, pid, start_time, ppid, name, executable_path,"
			 " command_line, argv_json, executable_hash, hash_algorithm, user_id,"
			 " accessible, file_exists, exe_deleted, exe_replaced, platform_data,"
			 " cpu_usage, memory_usage, coalesce(first_seen, collection_time), ?4,"
			 " ?2, first_scan_id, ?5, ?3 FROM processes"
			 " WHERE pid = ?6 AND instance_id = ?1",
	[ST_DEL_SNAP] = "DELETE FROM processes WHERE pid = ?1 AND instance_id = ?2",
	[ST_INS_SAMPLE] = "INSERT INTO process_samples(instance_id, t, scan_id, cpu_usage,"
			  " memory_usage) VALUES(?1, ?2, ?3, ?4, ?5)",
	[ST_SET_STATE] = "INSERT OR REPLACE INTO store_state(key, value) VALUES"
			 "('snapshot_time', ?1), ('snapshot_scan', ?2), ('sample_time', ?3)",
	[ST_SCAN_COUNTS] = "UPDATE scans SET new_count = coalesce(new_count, 0) + ?1,"
			   " changed_count = coalesce(changed_count, 0) + ?2,"
			   " exited_count = coalesce(exited_count, 0) + ?3 WHERE id = ?4",
};

/* A growable string, reused record after record (bound_make). */
struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

/* The text columns of the record being written. */
struct textbufs {
	struct sbuf cmd, argv, pd;
};

struct de_store {
	sqlite3 *db;
	char path[4096];
	int lock_fd; /* -1 when read-only */
	bool read_only;
	bool wal;
	uint64_t max_size_bytes;
	int64_t sample_interval_ms;
	sqlite3_stmt *st[ST_MAX];
	struct snap_tab snap;  /* the committed snapshot, by pid */
	struct snap_tab spare; /* the previous index's memory, reused by the next scan */
	uint32_t gen;	       /* counts full scans: snap_ent.seen */
	struct pd_sum *pd;     /* per-record platform_data sums of the scan in hand */
	/* bound_make's buffers: one per queued row, and one for single rows */
	struct textbufs text[BATCH_ROWS + 1];
	sqlite3_stmt *multi_snap; /* the insert of BATCH_ROWS new instances */
	struct pending *queue;	  /* BATCH_ROWS new instances to insert */
	size_t queued;
	bool batching;	   /* queue new instances (a full scan) */
	int64_t next_inst; /* id for the next instance (set by load_snapshot) */
	size_t pd_cap;
	bool snap_loaded;
	int64_t snap_time, snap_scan, sample_time; /* from store_state */
	struct de_store_diff last_diff;		   /* of the last successful batch */
	int step_errno;				   /* errno after the last failed step */
};

static int db_err(struct de_store *s, struct de_error *err, const char *what)
{
	int ec = s->db ? sqlite3_extended_errcode(s->db) & 0xff : SQLITE_ERROR;
	int sys = s->db ? sqlite3_system_errno(s->db) : 0;

	/* SQLite does not always keep the OS error of a failed write; the
	   errno left by the step (cleared before it) names it */
	if (!sys && (s->step_errno == EROFS || s->step_errno == ENOSPC || s->step_errno == EDQUOT ||
		     s->step_errno == EIO))
		sys = s->step_errno;
	int code = EIO;

	if (ec == SQLITE_FULL || sys == ENOSPC)
		code = ENOSPC;
	else if (ec == SQLITE_READONLY || sys == EROFS)
		code = EROFS;
	else if (ec == SQLITE_BUSY || ec == SQLITE_LOCKED)
		code = EBUSY;
	else if (ec == SQLITE_NOMEM)
		code = ENOMEM;
	/* SQLite reports a write on a read-only mount as a plain I/O error */
	struct statvfs vfs;
	if ((ec == SQLITE_IOERR || ec == SQLITE_READONLY || ec == SQLITE_CANTOPEN) &&
	    statvfs(s->path, &vfs) == 0 && (vfs.f_flag & ST_RDONLY))
		return de_error_set(err, DE_ERR_DATABASE, EROFS, "%s: %s: %s (%s)", s->path, what,
				    sqlite3_errmsg(s->db), strerror(EROFS));
	if (sys && ec != SQLITE_CONSTRAINT && ec != SQLITE_ERROR)
		return de_error_set(err, DE_ERR_DATABASE, code, "%s: %s: %s (%s)", s->path, what,
				    sqlite3_errmsg(s->db), strerror(sys));
	return de_error_set(err, DE_ERR_DATABASE, code, "%s: %s: %s", s->path, what,
			    s->db ? sqlite3_errmsg(s->db) : "no connection");
}

/* ---- schema ------------------------------------------------------------- */

static const char *const migrations[] = {
	/* 1: the foundation schema */
	"CREATE TABLE scans ("
	"  id INTEGER PRIMARY KEY,"
	"  started_at INTEGER NOT NULL,"
	"  ended_at INTEGER,"
	"  process_count INTEGER,"
	"  duration_ms INTEGER,"
	"  source TEXT NOT NULL);"
	"CREATE TABLE processes ("
	"  pid INTEGER PRIMARY KEY,"
	"  id TEXT NOT NULL,"
	"  scan_id INTEGER NOT NULL,"
	"  collection_time INTEGER NOT NULL,"
	"  ppid INTEGER,"
	"  name TEXT NOT NULL,"
	"  executable_path TEXT,"
	"  command_line TEXT NOT NULL,"
	"  argv_json TEXT NOT NULL,"
	"  start_time INTEGER,"
	"  cpu_usage REAL,"
	"  memory_usage INTEGER,"
	"  executable_hash TEXT,"
	"  hash_algorithm TEXT,"
	"  user_id TEXT,"
	"  accessible INTEGER NOT NULL,"
	"  file_exists INTEGER NOT NULL,"
	"  exe_deleted INTEGER NOT NULL DEFAULT 0,"
	"  exe_replaced INTEGER NOT NULL DEFAULT 0,"
	"  platform_data TEXT);"
	"CREATE INDEX processes_ppid ON processes(ppid);"
	"CREATE TABLE alerts ("
	"  id TEXT PRIMARY KEY,"
	"  alert_time INTEGER NOT NULL,"
	"  rule_id TEXT NOT NULL,"
	"  title TEXT NOT NULL,"
	"  description TEXT NOT NULL,"
	"  severity TEXT NOT NULL,"
	"  scan_id INTEGER,"
	"  affected_processes TEXT NOT NULL,"
	"  process_count INTEGER NOT NULL,"
	"  alert_data TEXT NOT NULL,"
	"  rule_execution_time_ms INTEGER,"
	"  dedupe_key TEXT NOT NULL);"
	"CREATE INDEX alerts_time ON alerts(alert_time);",

	/* 2: history that grows with churn, samples, scan status, deliveries */
	"ALTER TABLE processes ADD COLUMN instance_id INTEGER;"
	"ALTER TABLE processes ADD COLUMN identity_hash INTEGER;"
	"ALTER TABLE processes ADD COLUMN value_hash INTEGER;"
	"CREATE INDEX processes_name ON processes(name);"
	"CREATE TABLE process_instances ("
	"  id INTEGER PRIMARY KEY,"
	"  pid INTEGER NOT NULL,"
	"  start_time INTEGER,"
	"  ppid INTEGER,"
	"  name TEXT NOT NULL,"
	"  executable_path TEXT,"
	"  command_line TEXT NOT NULL,"
	"  argv_json TEXT NOT NULL,"
	"  executable_hash TEXT,"
	"  hash_algorithm TEXT,"
	"  user_id TEXT,"
	"  accessible INTEGER NOT NULL,"
	"  file_exists INTEGER NOT NULL,"
	"  exe_deleted INTEGER NOT NULL DEFAULT 0,"
	"  exe_replaced INTEGER NOT NULL DEFAULT 0,"
	"  platform_data TEXT,"
	"  cpu_usage REAL," /* first observed */
	"  memory_usage INTEGER,"
	"  first_seen INTEGER NOT NULL,"
	"  last_seen INTEGER NOT NULL," /* maintained at exit; live: the snapshot time */
	"  exited_at INTEGER,"		/* when the store saw it gone */
	"  first_scan_id INTEGER,"
	"  last_scan_id INTEGER,"
	"  exit_scan_id INTEGER);"
	"CREATE INDEX process_instances_pid ON process_instances(pid, start_time);"
	"CREATE INDEX process_instances_name ON process_instances(name);"
	"CREATE INDEX process_instances_exited ON process_instances(exited_at)"
	"  WHERE exited_at IS NOT NULL;"
	"CREATE TABLE process_changes ("
	"  id INTEGER PRIMARY KEY,"
	"  instance_id INTEGER NOT NULL,"
	"  changed_at INTEGER NOT NULL,"
	"  scan_id INTEGER,"
	"  ppid INTEGER,"
	"  name TEXT NOT NULL,"
	"  executable_path TEXT,"
	"  command_line TEXT NOT NULL,"
	"  argv_json TEXT NOT NULL,"
	"  executable_hash TEXT,"
	"  hash_algorithm TEXT,"
	"  user_id TEXT,"
	"  accessible INTEGER NOT NULL,"
	"  file_exists INTEGER NOT NULL,"
	"  exe_deleted INTEGER NOT NULL,"
	"  exe_replaced INTEGER NOT NULL,"
	"  platform_data TEXT);"
	"CREATE INDEX process_changes_instance ON process_changes(instance_id);"
	"CREATE TABLE process_samples ("
	"  id INTEGER PRIMARY KEY,"
	"  instance_id INTEGER NOT NULL,"
	"  t INTEGER NOT NULL,"
	"  scan_id INTEGER,"
	"  cpu_usage REAL,"
	"  memory_usage INTEGER);"
	"CREATE INDEX process_samples_instance ON process_samples(instance_id);"
	"ALTER TABLE scans ADD COLUMN status TEXT NOT NULL DEFAULT 'ok';"
	"ALTER TABLE scans ADD COLUMN error TEXT;"
	"ALTER TABLE scans ADD COLUMN new_count INTEGER;"
	"ALTER TABLE scans ADD COLUMN changed_count INTEGER;"
	"ALTER TABLE scans ADD COLUMN exited_count INTEGER;"
	"UPDATE scans SET status = 'failed', error = 'unfinished before schema 2'"
	"  WHERE ended_at IS NULL;"
	"CREATE TABLE alert_deliveries ("
	"  id INTEGER PRIMARY KEY,"
	"  alert_id TEXT NOT NULL,"
	"  sink TEXT NOT NULL,"
	"  status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  last_attempt_at INTEGER,"
	"  delivered_at INTEGER,"
	"  error TEXT,"
	"  UNIQUE (alert_id, sink));"
	"CREATE TABLE store_state (key TEXT PRIMARY KEY, value INTEGER) WITHOUT ROWID;"
	/* the v1 snapshot becomes the first instances */
	"INSERT INTO process_instances(pid, start_time, ppid, name, executable_path,"
	"  command_line, argv_json, executable_hash, hash_algorithm, user_id, accessible,"
	"  file_exists, exe_deleted, exe_replaced, platform_data, cpu_usage, memory_usage,"
	"  first_seen, last_seen, first_scan_id, last_scan_id)"
	"  SELECT pid, start_time, ppid, name, executable_path, command_line, argv_json,"
	"  executable_hash, hash_algorithm, user_id, accessible, file_exists, exe_deleted,"
	"  exe_replaced, platform_data, cpu_usage, memory_usage, collection_time,"
	"  collection_time, scan_id, scan_id FROM processes ORDER BY pid;"
	"UPDATE processes SET instance_id ="
	"  (SELECT i.id FROM process_instances i WHERE i.pid = processes.pid);"
	"INSERT INTO store_state(key, value)"
	"  SELECT 'snapshot_time', max(collection_time) FROM processes HAVING count(*) > 0;"
	"INSERT INTO store_state(key, value)"
	"  SELECT 'snapshot_scan', max(scan_id) FROM processes HAVING count(*) > 0;",

	/* 3: alerts cut short (a rule stopped by its time or memory limit) */
	"ALTER TABLE alerts ADD COLUMN incomplete INTEGER NOT NULL DEFAULT 0;",

	/*
	 * 4: a live instance is its snapshot row alone; its process_instances
	 * row is written when it leaves the snapshot (one row per new process,
	 * not two), holding its last values.  processes.ppid loses its index:
	 * parent/child joins go child to parent through the pid (the rowid),
	 * and the builtin rules measured no slower without it, while every new
	 * process paid for its entry.
	 */
	"ALTER TABLE processes ADD COLUMN first_seen INTEGER;"
	"ALTER TABLE processes ADD COLUMN first_scan_id INTEGER;"
	"UPDATE processes SET (first_seen, first_scan_id) = (SELECT i.first_seen,"
	"  i.first_scan_id FROM process_instances i WHERE i.id = processes.instance_id);"
	"UPDATE processes SET first_seen = collection_time WHERE first_seen IS NULL;"
	"UPDATE process_instances SET (cpu_usage, memory_usage) = (SELECT sm.cpu_usage,"
	"  sm.memory_usage FROM process_samples sm WHERE sm.instance_id = process_instances.id"
	"  ORDER BY sm.id DESC LIMIT 1) WHERE exited_at IS NOT NULL AND EXISTS (SELECT 1"
	"  FROM process_samples sm WHERE sm.instance_id = process_instances.id);"
	"DELETE FROM process_instances WHERE exited_at IS NULL"
	"  AND id IN (SELECT instance_id FROM processes);"
	"DROP INDEX processes_ppid;",

	/* 5: alerting: alert state per (rule, instance), suppressed and folded
	 * matches, deduplication windows, the outbox (outbox.h) */
	DE_OUTBOX_MIGRATION,
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

static int read_version(sqlite3 *db, int *out)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int(st, 0);
	rc = sqlite3_finalize(st);
	return rc == SQLITE_OK ? 0 : -1;
}

static int migrate(struct de_store *s, struct de_error *err)
{
	sqlite3_stmt *st;
	int version = 0, rc;

	if (read_version(s->db, &version) < 0)
		return db_err(s, err, "not a daemoneye event store (cannot read its version)");
	if (version > NMIGRATIONS)
		return de_error_set(
			err, DE_ERR_DATABASE, EPROTO,
			"%s: schema version %d is newer than this daemoneye understands "
			"(%d); upgrade daemoneye or point database.path elsewhere",
			s->path, version, NMIGRATIONS);
	if (version == NMIGRATIONS)
		return 0;
	if (version == 0) {
		/* a version-0 file must be empty: anything else is not ours */
		if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM sqlite_schema", -1, &st,
				       NULL) != SQLITE_OK)
			return db_err(s, err, "not a SQLite database");
		int tables = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
		sqlite3_finalize(st);
		if (tables != 0)
			return de_error_set(err, DE_ERR_DATABASE, EPROTO,
					    "%s: is a SQLite database but not a daemoneye event "
					    "store; refusing to modify it",
					    s->path);
		/*
		 * A new file: 16 KiB pages (a first scan of 10,000 processes took
		 * about three times as long with 4 KiB pages: four times as many
		 * pages to allocate, fill, balance and log); let retention hand
		 * freed pages back to the file system.
		 */
		if (sqlite3_exec(s->db, "PRAGMA page_size=16384", NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(s->db, "PRAGMA auto_vacuum=INCREMENTAL", NULL, NULL, NULL) !=
			    SQLITE_OK)
			return db_err(s, err, "cannot set the page size or auto_vacuum");
	}
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return db_err(s, err, "cannot start migration");
	for (int v = version; v < NMIGRATIONS; v++) {
		char pragma[64];
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%d", v + 1);
		if (sqlite3_exec(s->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(s->db, pragma, NULL, NULL, NULL) != SQLITE_OK) {
			char what[64];
			snprintf(what, sizeof(what), "migration to schema version %d failed",
				 v + 1);
			rc = db_err(s, err, what);
			if (!sqlite3_get_autocommit(s->db))
				sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
			return rc;
		}
	}
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		rc = db_err(s, err, "cannot commit migration");
		if (!sqlite3_get_autocommit(s->db))
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	return 0;
}

/* ---- open / close ------------------------------------------------------- */

/* The single-writer lock: an exclusive flock on "<path>.lock" holding our pid. */
static int take_lock(struct de_store *s, struct de_error *err)
{
	char lpath[4200], buf[32];
	int fd;

	snprintf(lpath, sizeof(lpath), "%s.lock", s->path);
	fd = open(lpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return de_error_set(err, DE_ERR_DATABASE, errno, "%s: cannot open lock file %s: %s",
				    s->path, lpath, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		close(fd);
		if (e == EWOULDBLOCK)
			return de_error_set(err, DE_ERR_DATABASE, EBUSY,
					    "%s: the event store is already open for writing by "
					    "another process (pid %s, lock %s); only one "
					    "daemoneye-agent may write to a store",
					    s->path, *buf ? buf : "unknown", lpath);
		return de_error_set(err, DE_ERR_DATABASE, e, "%s: cannot lock %s: %s", s->path,
				    lpath, strerror(e));
	}
	int len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)len, 0) != len) {
		int e = errno;
		close(fd);
		return de_error_set(err, DE_ERR_DATABASE, e, "%s: cannot write lock file %s: %s",
				    s->path, lpath, strerror(e));
	}
	s->lock_fd = fd;
	return 0;
}

static int64_t state_get(struct de_store *s, const char *key)
{
	sqlite3_stmt *st;
	int64_t v = 0;

	if (sqlite3_prepare_v2(s->db, "SELECT value FROM store_state WHERE key = ?", -1, &st,
			       NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/*
 * A reader on a read-only file system cannot create the WAL index (-shm) a
 * WAL-mode file needs; when that is why reading failed, open the file as
 * immutable instead (nothing can write through a read-only mount).
 */
static int reopen_immutable(struct de_store *s, struct de_error *err)
{
	char dir[4096], uri[3 * 4096 + 32], *slash;
	size_t o;

	snprintf(dir, sizeof(dir), "%s", s->path);
	slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	if (access(dir, W_OK) == 0 || errno != EROFS)
		return db_err(s, err, "not a daemoneye event store (cannot read its version)");
	o = (size_t)snprintf(uri, sizeof(uri), "file:");
	for (const unsigned char *p = (const unsigned char *)s->path; *p; p++)
		o += (size_t)snprintf(
			uri + o, sizeof(uri) - o,
			(*p == '%' || *p == '?' || *p == '#' || *p < 0x21) ? "%%%02X" : "%c", *p);
	snprintf(uri + o, sizeof(uri) - o, "?immutable=1");
	sqlite3_close(s->db);
	s->db = NULL;
	if (sqlite3_open_v2(uri, &s->db,
			    SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX |
				    SQLITE_OPEN_EXRESCODE,
			    NULL) != SQLITE_OK)
		return db_err(s, err, "cannot open event store on a read-only file system");
	return 0;
}

/*
 * Prepare head followed by BATCH_ROWS copies of row, the parameters of
 * copy r renumbered by r * NPARAM.
 */
static int prepare_multi(struct de_store *s, const char *head, const char *row, sqlite3_stmt **out,
			 struct de_error *err)
{
	size_t cap = strlen(head) + BATCH_ROWS * (strlen(row) * 2 + 2) + 1, o;
	char *sql = malloc(cap);
	int rc = 0;

	if (!sql)
		return de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
	o = (size_t)snprintf(sql, cap, "%s", head);
	for (int r = 0; r < BATCH_ROWS; r++) {
		if (r)
			sql[o++] = ',';
		for (const char *p = row; *p;) {
			if (*p != '?') {
				sql[o++] = *p++;
				continue;
			}
			char *end;
			long n = strtol(p + 1, &end, 10);
			o += (size_t)snprintf(sql + o, cap - o, "?%ld", n + (long)r * NPARAM);
			p = end;
		}
	}
	sql[o] = '\0';
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL) != SQLITE_OK)
		rc = db_err(s, err, "cannot prepare statements");
	free(sql);
	return rc;
}

int de_store_open(const struct de_store_config *cfg, struct de_store **out, struct de_error *err)
{
	struct de_store *s;
	int flags, rc;

	if (!cfg || !cfg->path || !*cfg->path)
		return de_error_set(err, DE_ERR_CONFIGURATION, EINVAL,
				    "database.path: no event store path given");
	if (strlen(cfg->path) >= sizeof(s->path))
		return de_error_set(err, DE_ERR_CONFIGURATION, ENAMETOOLONG,
				    "database.path: path too long");
	s = calloc(1, sizeof(*s));
	if (!s)
		return de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
	s->lock_fd = -1;
	s->read_only = cfg->read_only;
	s->wal = cfg->wal_mode;
	s->max_size_bytes = cfg->max_size_mb * 1024 * 1024;
	s->sample_interval_ms =
		(int64_t)(cfg->sample_interval_s ? cfg->sample_interval_s : 300) * 1000;
	snprintf(s->path, sizeof(s->path), "%s", cfg->path);
	if (!cfg->read_only && (rc = take_lock(s, err)) < 0)
		goto fail;
	flags = cfg->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	flags |= SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
	if (sqlite3_open_v2(cfg->path, &s->db, flags, NULL) != SQLITE_OK) {
		rc = de_error_set(
			err, DE_ERR_DATABASE,
			cfg->read_only && sqlite3_errcode(s->db) == SQLITE_CANTOPEN ? ENOENT : EIO,
			"%s: cannot open event store: %s", cfg->path,
			s->db ? sqlite3_errmsg(s->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(s->db, cfg->busy_timeout_ms > 0 ? cfg->busy_timeout_ms : 5000);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
	/* reads through a mapping, not a pread copy per page: rules and joins
	   scan the whole snapshot every cycle */
	sqlite3_exec(s->db, "PRAGMA mmap_size=268435456", NULL, NULL, NULL);
	if (!cfg->read_only) {
		if ((rc = migrate(s, err)) < 0)
			goto fail;
		if (sqlite3_exec(s->db,
				 cfg->wal_mode ? "PRAGMA journal_mode=WAL"
					       : "PRAGMA journal_mode=DELETE",
				 NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(s->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) !=
			    SQLITE_OK ||
		    /* checkpoints run between scans, in de_store_prune(); this is the
		       backstop for callers that never call it (64 MiB of WAL) */
		    sqlite3_exec(s->db, "PRAGMA wal_autocheckpoint=16384", NULL, NULL, NULL) !=
			    SQLITE_OK ||
		    sqlite3_exec(s->db, "PRAGMA journal_size_limit=33554432", NULL, NULL, NULL) !=
			    SQLITE_OK ||
		    /* a first scan of 10,000 processes dirties ~12 MB: keep it in memory
		       rather than spill and re-read (the cache grows only as used) */
		    sqlite3_exec(s->db, "PRAGMA cache_size=-16384", NULL, NULL, NULL) !=
			    SQLITE_OK) {
			rc = db_err(s, err, "cannot set journal mode");
			goto fail;
		}
		for (int i = 0; i < ST_MAX; i++)
			if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
					       &s->st[i], NULL) != SQLITE_OK) {
				rc = db_err(s, err, "cannot prepare statements");
				goto fail;
			}
		if ((rc = prepare_multi(s, INS_SNAP_HEAD, INS_SNAP_ROW, &s->multi_snap, err)) < 0)
			goto fail;
	} else {
		int version = -1;
		if (read_version(s->db, &version) < 0 && (rc = reopen_immutable(s, err)) < 0)
			goto fail;
		if ((version < 0 && read_version(s->db, &version) < 0) || version < 1 ||
		    version > NMIGRATIONS) {
			rc = de_error_set(err, DE_ERR_DATABASE, EPROTO,
					  "%s: not a daemoneye event store of a known version",
					  cfg->path);
			goto fail;
		}
		if (version < NMIGRATIONS) {
			rc = de_error_set(err, DE_ERR_DATABASE, EPROTO,
					  "%s: schema version %d is older than %d; run "
					  "daemoneye-agent once to migrate it",
					  cfg->path, version, NMIGRATIONS);
			goto fail;
		}
		sqlite3_exec(s->db, "PRAGMA query_only=1", NULL, NULL, NULL);
	}
	s->snap_time = state_get(s, "snapshot_time");
	s->snap_scan = state_get(s, "snapshot_scan");
	s->sample_time = state_get(s, "sample_time");
	*out = s;
	return 0;
fail:
	de_store_close(s);
	return rc;
}

void de_store_close(struct de_store *s)
{
	if (!s)
		return;
	for (int i = 0; i < ST_MAX; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_finalize(s->multi_snap); /* before the close, which fails while any is open */
	sqlite3_close(s->db);
	tab_free(&s->snap);
	tab_free(&s->spare);
	free(s->pd);
	for (size_t i = 0; i <= BATCH_ROWS; i++) {
		free(s->text[i].cmd.p);
		free(s->text[i].argv.p);
		free(s->text[i].pd.p);
	}
	free(s->queue);
	if (s->lock_fd >= 0)
		close(s->lock_fd); /* releases the flock */
	free(s);
}

struct de_store_diff de_store_last_diff(const struct de_store *s)
{
	return s->last_diff;
}

sqlite3 *de_store_db(struct de_store *s)
{
	return s->db;
}

/* ---- scans -------------------------------------------------------------- */

static int exec_step(struct de_store *s, sqlite3_stmt *st, struct de_error *err, const char *what)
{
	int rc;

	errno = 0;
	rc = sqlite3_step(st);
	s->step_errno = errno;
	rc = rc == SQLITE_DONE ? 0 : db_err(s, err, what);
	sqlite3_reset(st);
	return rc;
}

int de_store_scan_begin(struct de_store *s, int64_t started_ms, const char *source,
			int64_t *scan_id, struct de_error *err)
{
	sqlite3_stmt *st;
	int rc;

	if (!source || (strcmp(source, "poll") != 0 && strcmp(source, "event") != 0))
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "scan source must be 'poll' or 'event', not '%s'",
				    source ? source : "(null)");
	if (sqlite3_prepare_v2(
		    s->db, "INSERT INTO scans(started_at, source, status) VALUES(?, ?, 'running')",
		    -1, &st, NULL) != SQLITE_OK)
		return db_err(s, err, "cannot record scan");
	sqlite3_bind_int64(st, 1, started_ms);
	sqlite3_bind_text(st, 2, source, -1, SQLITE_STATIC);
	rc = exec_step(s, st, err, "cannot record scan");
	sqlite3_finalize(st);
	if (rc < 0)
		return rc;
	*scan_id = sqlite3_last_insert_rowid(s->db);
	return 0;
}

int de_store_scan_end(struct de_store *s, int64_t scan_id, int64_t ended_ms, size_t count,
		      struct de_error *err)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(s->db,
			       "UPDATE scans SET ended_at = ?1, process_count = ?2,"
			       " duration_ms = ?1 - started_at, status = 'ok' WHERE id = ?3",
			       -1, &st, NULL) != SQLITE_OK)
		return db_err(s, err, "cannot finish scan");
	sqlite3_bind_int64(st, 1, ended_ms);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)count);
	sqlite3_bind_int64(st, 3, scan_id);
	rc = exec_step(s, st, err, "cannot finish scan");
	sqlite3_finalize(st);
	return rc;
}

int de_store_scan_fail(struct de_store *s, int64_t scan_id, int64_t ended_ms, const char *why,
		       struct de_error *err)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(s->db,
			       "UPDATE scans SET ended_at = ?1, duration_ms = ?1 - started_at,"
			       " status = 'failed', error = ?2 WHERE id = ?3",
			       -1, &st, NULL) != SQLITE_OK)
		return db_err(s, err, "cannot mark scan failed");
	sqlite3_bind_int64(st, 1, ended_ms);
	sqlite3_bind_text(st, 2, why, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, scan_id);
	rc = exec_step(s, st, err, "cannot mark scan failed");
	sqlite3_finalize(st);
	return rc;
}

/* ---- hashing records ---------------------------------------------------- */

/*
 * platform_data keys whose values change while a process lives (state,
 * threads, utime_ticks, stime_ticks, nice, vsize, rss): they go into the
 * changing-values hash (snapshot update only), not the identity hash (which
 * records history).  Also the two keys whose booleans have columns of their
 * own.  A switch on the length first: this runs for every key of every
 * record.
 */
enum pd_key { PD_IDENTITY, PD_VOLATILE, PD_EXE_DELETED, PD_EXE_REPLACED };

static enum pd_key pd_key_kind(const char *k, size_t n)
{
	switch (n) {
	case 3:
		return memcmp(k, "rss", 3) == 0 ? PD_VOLATILE : PD_IDENTITY;
	case 4:
		return memcmp(k, "nice", 4) == 0 ? PD_VOLATILE : PD_IDENTITY;
	case 5:
		return memcmp(k, "state", 5) == 0 || memcmp(k, "vsize", 5) == 0 ? PD_VOLATILE
										: PD_IDENTITY;
	case 7:
		return memcmp(k, "threads", 7) == 0 ? PD_VOLATILE : PD_IDENTITY;
	case 11:
		if (memcmp(k, "utime_ticks", 11) == 0 || memcmp(k, "stime_ticks", 11) == 0)
			return PD_VOLATILE;
		return memcmp(k, "exe_deleted", 11) == 0 ? PD_EXE_DELETED : PD_IDENTITY;
	case 12:
		return memcmp(k, "exe_replaced", 12) == 0 ? PD_EXE_REPLACED : PD_IDENTITY;
	default:
		return PD_IDENTITY;
	}
}

static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

/*
 * Not a cryptographic hash: change detection within one host's snapshot,
 * one multiply per 8 bytes (this runs over every byte of every record of
 * every scan).  A collision would hide one change until the next one.
 */
#define HK 0x9E3779B97F4A7C15ull

/*
 * The last n < 8 bytes as memcpy into a zeroed word would give them, but
 * put together in registers: the memcpy became byte stores and one wide
 * load of the same stack slot, a store-forwarding stall on every string.
 */
static inline uint64_t tail_bytes(const unsigned char *b, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	uint64_t w = 0;
	unsigned shift = 0;

	if (n & 4) {
		uint32_t x;
		memcpy(&x, b, 4);
		w = x;
		b += 4;
		shift = 32;
	}
	if (n & 2) {
		uint16_t x;
		memcpy(&x, b, 2);
		w |= (uint64_t)x << shift;
		b += 2;
		shift += 16;
	}
	if (n & 1)
		w |= (uint64_t)*b << shift;
	return w;
#else
	uint64_t w = 0;
	memcpy(&w, b, n);
	return w;
#endif
}

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t w;

	h = (h ^ n) * HK;
	while (n >= 8) {
		memcpy(&w, b, 8);
		h = (h ^ w) * HK;
		h ^= h >> 29;
		b += 8;
		n -= 8;
	}
	h = (h ^ tail_bytes(b, n)) * HK;
	return h ^ (h >> 32);
}

static uint64_t hash_u64(uint64_t h, uint64_t v)
{
	h = (h ^ v) * HK;
	return h ^ (h >> 29);
}

static uint64_t hash_str(uint64_t h, const char *s)
{
	return s ? hash_bytes(h, s, strlen(s)) : hash_u64(h, 0x5bd1e995ull);
}

static uint64_t hash_json(uint64_t h, const json_t *j);

/* Object members combined by addition: the order of keys does not matter. */
static uint64_t member_hash(const char *k, size_t kn, const json_t *v)
{
	return mix(hash_bytes(1, k, kn) ^ hash_json(2, v));
}

static uint64_t hash_object(const json_t *o)
{
	uint64_t sum = 0;

	for (void *it = json_object_iter((json_t *)o); it;
	     it = json_object_iter_next((json_t *)o, it))
		sum += member_hash(json_object_iter_key(it), json_object_iter_key_len(it),
				   json_object_iter_value(it));
	return sum;
}

static uint64_t hash_json(uint64_t h, const json_t *j)
{
	if (!j)
		return hash_u64(h, 11);
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		return hash_u64(hash_u64(h, 1), hash_object(j));
	case JSON_ARRAY: {
		h = hash_u64(h, 2);
		for (size_t i = 0; i < json_array_size(j); i++)
			h = hash_json(h, json_array_get(j, i));
		return h;
	}
	case JSON_STRING:
		return hash_bytes(hash_u64(h, 3), json_string_value(j), json_string_length(j));
	case JSON_INTEGER:
		return hash_u64(hash_u64(h, 4), (uint64_t)json_integer_value(j));
	case JSON_REAL: {
		double d = json_real_value(j);
		uint64_t u;
		memcpy(&u, &d, 8);
		return hash_u64(hash_u64(h, 5), u);
	}
	case JSON_TRUE:
		return hash_u64(h, 6);
	case JSON_FALSE:
		return hash_u64(h, 7);
	default:
		return hash_u64(h, 8);
	}
}

/* What one pass over a record's platform_data yields. */
struct pd_sum {
	uint64_t id, vol; /* member hashes summed: identity members, volatile ones */
	bool object;	  /* platform_data is an object (else hashed whole) */
	bool exe_deleted, exe_replaced;
};

static void pd_member(struct pd_sum *ps, void *it)
{
	const char *k = json_object_iter_key(it);
	size_t kn = json_object_iter_key_len(it);
	const json_t *v = json_object_iter_value(it);
	uint64_t m = member_hash(k, kn, v);

	switch (pd_key_kind(k, kn)) {
	case PD_VOLATILE:
		ps->vol += m;
		return;
	case PD_EXE_DELETED:
		ps->exe_deleted = json_is_true(v);
		break;
	case PD_EXE_REPLACED:
		ps->exe_replaced = json_is_true(v);
		break;
	default:
		break;
	}
	ps->id += m;
}

/* One collector fact as pd_member() would count it as a JSON member: vh
   is hash_json(2, value), b the value of a boolean. */
static void fact_add(struct pd_sum *ps, const char *k, size_t kn, uint64_t vh, bool b)
{
	uint64_t m = mix(hash_bytes(1, k, kn) ^ vh);

	switch (pd_key_kind(k, kn)) {
	case PD_VOLATILE:
		ps->vol += m;
		return;
	case PD_EXE_DELETED:
		ps->exe_deleted = b;
		break;
	case PD_EXE_REPLACED:
		ps->exe_replaced = b;
		break;
	default:
		break;
	}
	ps->id += m;
}

/* A fact's member hash, as pd_member() counts the same member from JSON. */
static int fact_sum(const struct de_fact *f, void *ctx)
{
	uint64_t vh;

	switch (f->kind) {
	case DE_FACT_INT:
		vh = hash_u64(hash_u64(2, 4), (uint64_t)f->i);
		break;
	case DE_FACT_BOOL:
		vh = hash_u64(2, f->b ? 6 : 7);
		break;
	default:
		vh = hash_bytes(hash_u64(2, 3), f->s, f->n);
		break;
	}
	fact_add(ctx, f->key, f->key_len, vh, f->b);
	return 0;
}

/*
 * The sums of a record's collector facts, equal to those of its JSON form
 * (so a snapshot written from JSON records, or before the facts were flat,
 * sees no change).  Text that is not valid UTF-8 has another form in JSON
 * (escaped, plus a base64 twin): such a record is summed through its JSON,
 * which is rare (a cgroup name with such bytes).
 */
static void facts_sum(const struct de_process_record *r, struct pd_sum *ps)
{
	const struct de_linux_facts *f = &r->facts;

	if ((f->cgroup && !de_utf8_valid(f->cgroup, strlen(f->cgroup))) ||
	    (f->has_exe && f->hash_error && !de_utf8_valid(f->hash_error, strlen(f->hash_error))) ||
	    (unsigned char)f->state >= 0x80) {
		struct de_process_record tmp = {.facts = *f};
		json_t *j = de_process_record_platform_json(&tmp);
		for (void *it = json_object_iter(j); it; it = json_object_iter_next(j, it))
			pd_member(ps, it);
		if (!j) { /* ENOMEM: the raw bytes, at worst a false change later */
			struct de_fact m = {.key = "cgroup",
					    .key_len = 6,
					    .kind = DE_FACT_TEXT,
					    .s = f->cgroup ? f->cgroup : "",
					    .n = f->cgroup ? strlen(f->cgroup) : 0};
			fact_sum(&m, ps);
		}
		json_decref(j);
		return;
	}
	de_linux_facts_each_inline(f, fact_sum, ps);
}

#define PD_LANES 16

/*
 * The platform_data sums of n records.  Each object is a linked list of
 * members, each member and its value a separate allocation: walked one
 * record at a time, every step waits for memory (this was most of a steady
 * scan's time).  So PD_LANES records are walked side by side, a step of
 * each in turn: a lane asks for its next member and that member's value a
 * round before it reads them, and the lanes' misses overlap.  Records
 * with collector facts (what procmond sends) are summed from the flat
 * facts; only their extra members, if any, are walked.
 */
static void pd_sums(const struct de_process_record *recs, size_t n, struct pd_sum *out)
{
	for (size_t base = 0; base < n; base += PD_LANES) {
		size_t m = n - base < PD_LANES ? n - base : PD_LANES, busy = 0;
		void *next[PD_LANES], *ready[PD_LANES];

		for (size_t j = 0; j < m; j++) {
			const json_t *o = recs[base + j].platform_data;
			struct pd_sum *ps = &out[base + j];
			*ps = (struct pd_sum){.object = json_is_object(o)};
			ready[j] = next[j] = NULL;
			if (recs[base + j].facts.present) {
				facts_sum(&recs[base + j], ps);
				ps->object = true;
			}
			if (ps->object)
				next[j] = json_object_iter((json_t *)o);
			if (next[j]) {
				__builtin_prefetch(next[j]);
				busy++;
			}
			if (base + PD_LANES + j < n)
				__builtin_prefetch(recs[base + PD_LANES + j].platform_data);
		}
		while (busy) {
			for (size_t j = 0; j < m; j++) {
				if (ready[j]) {
					pd_member(&out[base + j], ready[j]);
					ready[j] = NULL;
				}
				if (!next[j])
					continue;
				__builtin_prefetch(json_object_iter_value(next[j]));
				ready[j] = next[j];
				next[j] = json_object_iter_next(
					(json_t *)recs[base + j].platform_data, next[j]);
				if (next[j])
					__builtin_prefetch(next[j]);
				else
					busy--;
			}
		}
		for (size_t j = 0; j < m; j++)
			if (ready[j])
				pd_member(&out[base + j], ready[j]);
	}
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

/* A record's two hashes and the platform_data facts that have columns. */
struct rec_sum {
	uint64_t idh; /* identity: what makes history */
	uint64_t vh;  /* changing values: what only updates the snapshot row */
	bool exe_deleted, exe_replaced;
};

static void record_hashes(const struct de_process_record *r, const struct pd_sum *ps,
			  struct rec_sum *out)
{
	uint64_t h = 0x1234567, v = 0x7654321, u = 0;

	h = hash_u64(h, r->has_ppid ? (uint64_t)r->ppid + 1 : 0);
	h = hash_str(h, r->name);
	h = hash_str(h, r->executable_path);
	h = hash_u64(h, r->command_line_len);
	for (size_t i = 0; i < r->command_line_len; i++)
		h = hash_str(h, r->command_line[i]);
	h = hash_str(h, r->executable_hash);
	h = hash_str(h, r->hash_algorithm);
	h = hash_str(h, r->user_id);
	h = hash_u64(h, (uint64_t)r->accessible << 1 | r->file_exists);
	h = ps->object ? hash_u64(h, ps->id) : hash_json(h, r->platform_data);
	if (r->has_cpu_usage)
		memcpy(&u, &r->cpu_usage, 8);
	v = hash_u64(v, r->has_cpu_usage ? u : 0xfff);
	v = hash_u64(v, r->has_memory_usage ? r->memory_usage : UINT64_MAX);
	v = hash_u64(v, ps->vol);
	out->idh = mix(h);
	out->vh = mix(v);
	out->exe_deleted = ps->exe_deleted;
	out->exe_replaced = ps->exe_replaced;
}

/* ---- binding a record --------------------------------------------------- */

/*
 * The text forms of a record, built once and bound to several statements.
 * Parameter numbers are shared by every statement in stmt_sql[].  The
 * strings live in the store's reusable buffers (struct textbufs): valid
 * until the next bound_make(), so a new process costs no allocation.
 */
struct bound {
	char uuid[DE_UUID_STR_LEN + 1];
	const char *cmd, *argv, *pd; /* pd NULL when the record has none */
};

/* Room for n more bytes and a NUL in b (false: out of memory). */
static bool sb_room(struct sbuf *b, size_t n)
{
	if (b->oom)
		return false;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *np = realloc(b->p, cap);
		if (!np) {
			b->oom = true;
			return false;
		}
		b->p = np;
		b->cap = cap;
	}
	return true;
}

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (!sb_room(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* Empty the buffer for reuse, keeping its memory; false if it ran out. */
static bool sb_reset(struct sbuf *b)
{
	bool ok = !b->oom;

	b->len = 0;
	b->oom = false;
	sb_put(b, "", 0); /* "" rather than NULL even when nothing is added */
	return ok;
}

/* A JSON string literal of valid UTF-8, as jansson writes it (model.c). */
static void sb_json_str(struct sbuf *b, const char *s, size_t n)
{
	/* the worst case for short strings, the exact length for long ones
	   (a 4 MiB argument would keep a 24 MiB buffer) */
	if (!sb_room(b, n <= 4096 ? DE_JSON_STR_MAX(n) : de_json_str(NULL, s, n)))
		return;
	b->len += de_json_str(b->p + b->len, s, n);
	b->p[b->len] = '\0';
}

/* Decimal text of v, as "%" JSON_INTEGER_FORMAT writes it (snprintf was a
   tenth of a new process's cost). */
static void sb_int(struct sbuf *b, json_int_t v)
{
	char buf[24], *p = buf + sizeof(buf);
	unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	sb_put(b, p, (size_t)(buf + sizeof(buf) - p));
}

/*
 * Compact JSON text of a value.  Flat objects of strings, integers and
 * booleans (what the collector's platform_data is) are written here, the
 * rest through jansson: json_dumps dominated the cost of a new process.
 */
static void sb_json(struct sbuf *b, const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_STRING:
		sb_json_str(b, json_string_value(j), json_string_length(j));
		return;
	case JSON_INTEGER:
		sb_int(b, json_integer_value(j));
		return;
	case JSON_TRUE:
		sb_put(b, "true", 4);
		return;
	case JSON_FALSE:
		sb_put(b, "false", 5);
		return;
	case JSON_NULL:
		sb_put(b, "null", 4);
		return;
	case JSON_OBJECT: {
		bool first = true;
		sb_put(b, "{", 1);
		for (void *it = json_object_iter((json_t *)j); it;
		     it = json_object_iter_next((json_t *)j, it)) {
			if (!first)
				sb_put(b, ",", 1);
			first = false;
			sb_json_str(b, json_object_iter_key(it), json_object_iter_key_len(it));
			sb_put(b, ":", 1);
			sb_json(b, json_object_iter_value(it));
		}
		sb_put(b, "}", 1);
		return;
	}
	default: {
		char *t = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!t) {
			b->oom = true;
			return;
		}
		sb_put(b, t, strlen(t));
		free(t);
	}
	}
}

/* The platform_data text of a record with collector facts. */
static void sb_facts(struct sbuf *b, const struct de_process_record *r)
{
	long n;

	if (r->platform_data) {
		/* extra members beside the facts: rare, through jansson */
		json_t *j = de_process_record_platform_json(r);
		if (!j)
			b->oom = true;
		else
			sb_json(b, j);
		json_decref(j);
		return;
	}
	n = de_linux_facts_json(r, b->p + b->len, b->cap - b->len);
	if (n >= 0 && (size_t)n >= b->cap - b->len) {
		if (!sb_room(b, (size_t)n))
			return;
		n = de_linux_facts_json(r, b->p + b->len, b->cap - b->len);
	}
	if (n < 0) {
		b->oom = true;
		return;
	}
	b->len += (size_t)n;
}

/*
 * The text forms of a record: command_line (arguments joined by single
 * spaces, exact bytes), argv_json (a JSON array; arguments that are not
 * valid UTF-8 carry U+FFFD there, the exact bytes stay in command_line) and
 * platform_data's JSON text.  With values_only just platform_data (what a
 * change of values rewrites; the other two are then empty).
 */
static int bound_make(struct de_store *s, size_t slot, struct bound *b,
		      const struct de_process_record *r, bool values_only)
{
	struct textbufs *t = &s->text[slot];
	bool utf8_ok = true, ok;

	sb_reset(&t->cmd);
	sb_reset(&t->argv);
	sb_reset(&t->pd);
	for (size_t i = 0; i < r->command_line_len && !values_only; i++) {
		size_t l = strlen(r->command_line[i]);
		if (i)
			sb_put(&t->cmd, " ", 1);
		sb_put(&t->cmd, r->command_line[i], l);
		if (utf8_ok)
			utf8_ok = de_utf8_valid(r->command_line[i], l);
	}
	if (values_only) {
		/* argv_json and command_line are not rewritten */
	} else if (utf8_ok) {
		sb_put(&t->argv, "[", 1);
		for (size_t i = 0; i < r->command_line_len; i++) {
			if (i)
				sb_put(&t->argv, ",", 1);
			sb_json_str(&t->argv, r->command_line[i], strlen(r->command_line[i]));
		}
		sb_put(&t->argv, "]", 1);
	} else {
		json_t *full = de_process_record_to_json(r);
		char *txt = full ? json_dumps(json_object_get(full, "command_line"), JSON_COMPACT)
				 : NULL;
		if (txt)
			sb_put(&t->argv, txt, strlen(txt));
		else
			t->argv.oom = true;
		free(txt);
		json_decref(full);
	}
	if (r->facts.present)
		sb_facts(&t->pd, r);
	else if (r->platform_data)
		sb_json(&t->pd, r->platform_data);
	ok = !t->cmd.oom && !t->argv.oom && !t->pd.oom;
	if (!ok) {
		/* leave the buffers usable for the next record */
		sb_reset(&t->cmd);
		sb_reset(&t->argv);
		sb_reset(&t->pd);
		return -ENOMEM;
	}
	b->cmd = t->cmd.p;
	b->argv = t->argv.p;
	b->pd = r->platform_data || r->facts.present ? t->pd.p : NULL;
	de_uuid_format(&r->id, b->uuid);
	return 0;
}

/* Bind a record as the row whose parameters start after off (0, NPARAM, ...). */
static void bind_record(sqlite3_stmt *st, int off, const struct de_process_record *r,
			const struct bound *b, int64_t inst, const struct rec_sum *h)
{
	sqlite3_bind_int64(st, off + 1, r->pid);
	sqlite3_bind_text(st, off + 2, b->uuid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, off + 3, r->scan_id);
	sqlite3_bind_int64(st, off + 4, r->collection_time);
	if (r->has_ppid)
		sqlite3_bind_int64(st, off + 5, r->ppid);
	else
		sqlite3_bind_null(st, off + 5);
	sqlite3_bind_text(st, off + 6, r->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, off + 7, r->executable_path, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, off + 8, b->cmd, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, off + 9, b->argv, -1, SQLITE_STATIC);
	if (r->has_start_time)
		sqlite3_bind_int64(st, off + 10, r->start_time);
	else
		sqlite3_bind_null(st, off + 10);
	if (r->has_cpu_usage)
		sqlite3_bind_double(st, off + 11, r->cpu_usage);
	else
		sqlite3_bind_null(st, off + 11);
	if (r->has_memory_usage)
		sqlite3_bind_int64(st, off + 12, (sqlite3_int64)r->memory_usage);
	else
		sqlite3_bind_null(st, off + 12);
	sqlite3_bind_text(st, off + 13, r->executable_hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, off + 14, r->hash_algorithm, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, off + 15, r->user_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, off + 16, r->accessible);
	sqlite3_bind_int(st, off + 17, r->file_exists);
	sqlite3_bind_int(st, off + 18, h->exe_deleted);
	sqlite3_bind_int(st, off + 19, h->exe_replaced);
	sqlite3_bind_text(st, off + 20, b->pd, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, off + 21, inst);
	sqlite3_bind_int64(st, off + 22, (sqlite3_int64)h->idh);
	sqlite3_bind_int64(st, off + 23, (sqlite3_int64)h->vh);
}

/* Step a statement whose parameters are bound, then reset it. */
static int run(struct de_store *s, int which, struct de_error *err, const char *what)
{
	sqlite3_stmt *st = s->st[which];
	int rc;

	errno = 0;
	rc = sqlite3_step(st);
	s->step_errno = errno;

	if (rc != SQLITE_DONE) {
		rc = db_err(s, err, what);
		sqlite3_reset(st);
		return rc;
	}
	sqlite3_reset(st);
	return 0;
}

/* ---- loading the snapshot index ----------------------------------------- */

static int load_snapshot(struct de_store *s, struct de_error *err)
{
	/* the values last sampled, else the current ones (see sample_differs) */
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
		return db_err(s, err, "cannot read the snapshot");
	if (sqlite3_step(st) == SQLITE_ROW) {
		n = sqlite3_column_int64(st, 0);
		next = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (tab_init(&t, (size_t)n) < 0)
		return de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		tab_free(&t);
		return db_err(s, err, "cannot read the snapshot");
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && t.len < (size_t)n) {
		struct snap_ent *e = tab_add(&t, (uint32_t)sqlite3_column_int64(st, 0));
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
		tab_free(&t);
		return db_err(s, err, "cannot read the snapshot");
	}
	tab_free(&s->snap);
	s->snap = t;
	s->next_inst = next;
	s->snap_loaded = true;
	return 0;
}

/* ---- applying a scan ---------------------------------------------------- */

static bool sample_differs(const struct snap_ent *e, const struct de_process_record *r)
{
	if (e->s_has_cpu != r->has_cpu_usage || e->s_has_mem != r->has_memory_usage)
		return true;
	return (r->has_cpu_usage && e->s_cpu != r->cpu_usage) ||
	       (r->has_memory_usage && e->s_mem != r->memory_usage);
}

static void remember_sample(struct snap_ent *e, const struct de_process_record *r)
{
	e->s_has_cpu = r->has_cpu_usage;
	e->s_cpu = r->cpu_usage;
	e->s_has_mem = r->has_memory_usage;
	e->s_mem = r->memory_usage;
}

/* A new instance waiting in s->queue for its rows to be inserted. */
struct pending {
	const struct de_process_record *r; /* borrowed from the batch */
	struct rec_sum h;
	int64_t inst;
	struct bound b; /* in s->text[its place in the queue] */
};

/* Insert the queued instances: BATCH_ROWS at once, or row by row. */
static int flush_queue(struct de_store *s, struct de_error *err)
{
	size_t n = s->queued;
	int rc = 0;

	s->queued = 0;
	if (n == BATCH_ROWS) {
		for (size_t i = 0; i < n; i++) {
			const struct pending *p = &s->queue[i];
			bind_record(s->multi_snap, (int)i * NPARAM, p->r, &p->b, p->inst, &p->h);
		}
		return exec_step(s, s->multi_snap, err, "cannot store a process");
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct pending *p = &s->queue[i];
		bind_record(s->st[ST_INS_SNAP], 0, p->r, &p->b, p->inst, &p->h);
		rc = run(s, ST_INS_SNAP, err, "cannot store a process");
	}
	return rc;
}

/*
 * A new instance of r: its snapshot row (its pid has none: an earlier
 * instance's row has gone with that instance's exit); *ne (the index entry
 * for its pid) is filled.  Its history row is written when it leaves the
 * snapshot (write_exit()), so a new process costs one row.  In a full scan
 * the insert waits in the queue (flush_queue() writes it before anything
 * reads it).
 */
static int write_new(struct de_store *s, const struct de_process_record *r, struct snap_ent *ne,
		     const struct rec_sum *h, struct de_store_diff *d, struct de_error *err)
{
	struct bound b;
	int64_t inst = s->next_inst++;

	ne->inst = inst;
	ne->has_start = r->has_start_time;
	ne->start = r->start_time;
	ne->known = true;
	ne->idh = h->idh;
	ne->vh = h->vh;
	remember_sample(ne, r);
	d->added++;
	if (s->batching) {
		struct pending *p = &s->queue[s->queued];
		if (bound_make(s, s->queued, &p->b, r, false) < 0)
			return de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
		p->r = r;
		p->h = *h;
		p->inst = inst;
		return ++s->queued == BATCH_ROWS ? flush_queue(s, err) : 0;
	}
	if (bound_make(s, BATCH_ROWS, &b, r, false) < 0)
		return de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
	bind_record(s->st[ST_INS_SNAP], 0, r, &b, inst, h);
	return run(s, ST_INS_SNAP, err, "cannot store a process");
}

/*
 * The same instance seen again (old: its committed entry; ne: where its new
 * entry goes, may be old itself): an identity change keeps the previous
 * values (the snapshot row as it was) in process_changes and rewrites the
 * snapshot row, a
 * change of values rewrites the snapshot row only, and when sampling a
 * changed cpu/memory becomes a sample.  t and scan date the writes.
 */
static int write_same(struct de_store *s, const struct de_process_record *r,
		      const struct snap_ent *old, struct snap_ent *ne, const struct rec_sum *h,
		      int64_t t, int64_t scan, bool sampling, struct de_store_diff *d,
		      struct de_error *err)
{
	bool id_changed = !old->known || old->idh != h->idh, vals_changed = old->vh != h->vh;
	bool sample = sampling && sample_differs(old, r);
	int64_t inst = old->inst;
	struct bound b;
	int rc = 0;

	if (!id_changed && !vals_changed && !sample)
		return 0;
	if (bound_make(s, BATCH_ROWS, &b, r, !id_changed) < 0)
		return de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
	if (id_changed) {
		sqlite3_stmt *st = s->st[ST_SAVE_CHANGE];
		if (old->known) {
			sqlite3_bind_int64(st, 1, r->pid);
			sqlite3_bind_int64(st, 2, t);
			sqlite3_bind_int64(st, 3, scan);
			if ((rc = run(s, ST_SAVE_CHANGE, err, "cannot record a change")) < 0)
				goto out;
			d->history++;
		}
		bind_record(s->st[ST_UPD_SNAP], 0, r, &b, inst, h);
		if ((rc = run(s, ST_UPD_SNAP, err, "cannot store a process")) < 0)
			goto out;
		d->changed++;
	} else if (vals_changed) {
		bind_record(s->st[ST_UPD_VALS], 0, r, &b, inst, h);
		if ((rc = run(s, ST_UPD_VALS, err, "cannot update a process")) < 0)
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
		if ((rc = run(s, ST_INS_SAMPLE, err, "cannot record a sample")) < 0)
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
static int write_exit(struct de_store *s, const struct snap_ent *e, int64_t t, int64_t scan,
		      int64_t last_seen, int64_t last_scan, struct de_store_diff *d,
		      struct de_error *err)
{
	sqlite3_stmt *st = s->st[ST_EXIT_INST];
	int rc;

	sqlite3_bind_int64(st, 1, e->inst);
	sqlite3_bind_int64(st, 2, t);
	sqlite3_bind_int64(st, 3, scan);
	sqlite3_bind_int64(st, 4, last_seen);
	sqlite3_bind_int64(st, 5, last_scan);
	sqlite3_bind_int64(st, 6, e->pid);
	if ((rc = run(s, ST_EXIT_INST, err, "cannot record an exited process")) < 0)
		return rc;
	sqlite3_bind_int64(s->st[ST_DEL_SNAP], 1, e->pid);
	sqlite3_bind_int64(s->st[ST_DEL_SNAP], 2, e->inst);
	if ((rc = run(s, ST_DEL_SNAP, err, "cannot remove an exited process")) < 0)
		return rc;
	d->exited++;
	return 0;
}

static bool same_instance(const struct snap_ent *e, const struct de_process_record *r)
{
	return e->has_start == r->has_start_time &&
	       (!r->has_start_time || e->start == r->start_time);
}

/*
 * One record (ps: its platform_data sums) against the committed snapshot;
 * its new index entry goes to nt.  *seen counts the committed entries seen.
 */
static int apply_one(struct de_store *s, const struct de_process_record *r, const struct pd_sum *ps,
		     struct snap_tab *nt, int64_t t, int64_t scan, bool sampling, size_t *seen,
		     struct de_store_diff *d, struct de_error *err)
{
	struct snap_ent *old = tab_find(&s->snap, r->pid);
	struct snap_ent *ne = tab_add(nt, r->pid);
	struct rec_sum h;

	if (!ne)
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "%s: pid %u appears twice in one scan; the scan is refused",
				    s->path, r->pid);
	record_hashes(r, ps, &h);
	if (old && same_instance(old, r)) {
		*ne = *old;
		old->seen = s->gen;
		(*seen)++;
		return write_same(s, r, old, ne, &h, t, scan, sampling, d, err);
	}
	if (old) {
		/* the pid was reused (another start time): the old instance is
		   over, seen gone by this scan */
		int rc = write_exit(s, old, t, scan, s->snap_time ? s->snap_time : t, s->snap_scan,
				    d, err);
		if (rc < 0)
			return rc;
		old->seen = s->gen;
		(*seen)++;
	}
	return write_new(s, r, ne, &h, d, err);
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

/* BEGIN IMMEDIATE (instance ids come from s->next_inst: one writer). */
static int begin_write(struct de_store *s, struct de_error *err, const char *what)
{
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return db_err(s, err, what);
	return 0;
}

static int rollback(struct de_store *s)
{
	s->queued = 0;
	s->batching = false;
	sqlite3_reset(s->multi_snap);
	for (int i = 0; i < ST_MAX; i++)
		sqlite3_reset(s->st[i]);
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return 0;
}

/*
 * The end of a batch inside its transaction: the snapshot's time and scan
 * (and the last sample time) into store_state, the counts into the scan's
 * row; then COMMIT.
 */
static int finish_batch(struct de_store *s, int64_t t, int64_t scan, int64_t sample_time,
			const struct de_store_diff *d, struct de_error *err)
{
	int rc;

	sqlite3_bind_int64(s->st[ST_SET_STATE], 1, t);
	sqlite3_bind_int64(s->st[ST_SET_STATE], 2, scan);
	sqlite3_bind_int64(s->st[ST_SET_STATE], 3, sample_time);
	if ((rc = run(s, ST_SET_STATE, err, "cannot record the snapshot time")) < 0)
		return rc;
	if (scan > 0) {
		sqlite3_stmt *st = s->st[ST_SCAN_COUNTS];
		sqlite3_bind_int64(st, 1, (sqlite3_int64)d->added);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)d->changed);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)d->exited);
		sqlite3_bind_int64(st, 4, scan);
		if ((rc = run(s, ST_SCAN_COUNTS, err, "cannot record scan counts")) < 0)
			return rc;
	}
	errno = 0;
	rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	s->step_errno = errno;
	if (rc != SQLITE_OK)
		return db_err(s, err, "cannot commit the snapshot");
	return 0;
}

/*
 * A scan that inserts at least BULK_MIN new rows, and no fewer than the
 * snapshot already holds, drops the snapshot's indexes first and creates
 * them again before COMMIT: SQLite builds an index from one sort far
 * faster than it inserts 10,000 entries one by one (the name index alone
 * cost half as much as the rows).  The definitions are read back from
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
		return db_err(s, err, "cannot list the snapshot's indexes");
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
			rc = db_err(s, err, "cannot prepare a bulk insert");
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
			rc = db_err(s, err, "cannot index the snapshot");
	bulk_free(b);
	return rc;
}

int de_store_processes(struct de_store *s, const struct de_process_record *recs, size_t n,
		       struct de_error *err)
{
	struct bulk bulk = {0};
	struct de_store_diff d = {0};
	struct snap_tab nt = {0};
	int64_t t = INT64_MIN, scan = 0;
	size_t seen = 0;
	bool sampling;
	int rc;

	if (s->read_only)
		return de_error_set(err, DE_ERR_DATABASE, EROFS, "%s: store opened read-only",
				    s->path);
	if (!s->snap_loaded && (rc = load_snapshot(s, err)) < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (recs[i].collection_time > t)
			t = recs[i].collection_time;
		if (recs[i].scan_id > scan)
			scan = recs[i].scan_id;
	}
	if (n == 0)
		t = de_now_ms();
	sampling = t - s->sample_time >= s->sample_interval_ms;
	if (!s->queue && !(s->queue = calloc(BATCH_ROWS, sizeof(*s->queue))))
		return de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
	/* the new index reuses the previous scan's memory when it fits */
	if ((rc = tab_take(&s->spare, &nt, n)) < 0 || (rc = pd_reserve(s, n)) < 0)
		return de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
	s->gen++;
	pd_sums(recs, n, s->pd);
	if ((rc = begin_write(s, err, "cannot start the snapshot transaction")) < 0)
		goto fail;
	if (n >= BULK_MIN && n >= 2 * s->snap.len && (rc = bulk_begin(s, &bulk, err)) < 0)
		goto fail;
	s->batching = true;
	for (size_t i = 0; i < n; i++) {
		prefetch_record(recs, n, i);
		if ((rc = apply_one(s, &recs[i], &s->pd[i], &nt, t, scan, sampling, &seen, &d,
				    err)) < 0)
			goto fail;
	}
	s->batching = false;
	if ((rc = flush_queue(s, err)) < 0)
		goto fail;
	/* whatever was not seen has exited (on a steady host: nothing to look for) */
	for (size_t i = 0; seen < s->snap.len && i < s->snap.cap; i++) {
		struct snap_ent *e = &s->snap.e[i];
		if (!e->used || e->seen == s->gen)
			continue;
		if ((rc = write_exit(s, e, t, scan, s->snap_time ? s->snap_time : t, s->snap_scan,
				     &d, err)) < 0)
			goto fail;
	}
	if (bulk.n && (rc = bulk_end(s, &bulk, err)) < 0)
		goto fail;
	if ((rc = finish_batch(s, t, scan, sampling ? t : s->sample_time, &d, err)) < 0)
		goto fail;
	tab_free(&s->spare);
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
	rollback(s);
	tab_free(&s->spare);
	s->spare = nt;
	return rc;
}

/* ---- applying real-time events ------------------------------------------ */

/* One event against the committed snapshot index, which it updates in place. */
static int apply_event(struct de_store *s, int64_t scan, const struct de_store_event *ev,
		       struct de_store_diff *d, struct de_error *err)
{
	struct snap_ent *e = tab_find(&s->snap, ev->pid);
	struct de_process_record r;
	struct pd_sum ps;
	struct rec_sum h;
	int rc;

	switch (ev->kind) {
	case DE_STORE_EVENT_EXIT:
		if (!e)
			return 0; /* never stored, or already gone */
		if (e->has_start && ev->time_ms < e->start)
			return 0; /* the exit of an earlier process with this pid */
		if ((rc = write_exit(s, e, ev->time_ms, scan, ev->time_ms, scan, d, err)) < 0)
			return rc;
		tab_del(&s->snap, e);
		return 0;
	case DE_STORE_EVENT_EXEC:
		break;
	default:
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "%s: unknown process event kind %d; the batch is refused",
				    s->path, (int)ev->kind);
	}
	if (!ev->record)
		return 0; /* gone before it could be read: nothing known to store */
	if (ev->record->pid != ev->pid)
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "%s: exec event of pid %u carries a record of pid %u; the "
				    "batch is refused",
				    s->path, ev->pid, ev->record->pid);
	r = *ev->record; /* shallow: only the scan differs */
	r.scan_id = scan;
	pd_sums(&r, 1, &ps);
	record_hashes(&r, &ps, &h);
	if (e && same_instance(e, &r)) /* exec in place: same pid and start */
		return write_same(s, &r, e, e, &h, ev->time_ms, scan, false, d, err);
	if (e && e->has_start && r.has_start_time && r.start_time < e->start)
		return 0; /* an earlier process with this pid: a newer one is already known */
	if (e) {
		/* the pid was reused: the old instance is over */
		if ((rc = write_exit(s, e, ev->time_ms, scan, ev->time_ms, scan, d, err)) < 0)
			return rc;
		*e = (struct snap_ent){.used = true, .pid = ev->pid};
	} else {
		if (tab_reserve(&s->snap) < 0)
			return de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
		e = tab_add(&s->snap, ev->pid);
	}
	return write_new(s, &r, e, &h, d, err); /* an exit deleted any row */
}

int de_store_apply_events(struct de_store *s, int64_t scan_id, const struct de_store_event *ev,
			  size_t n, struct de_error *err)
{
	struct de_store_diff d = {0};
	int64_t t = s->snap_time;
	int rc;

	if (s->read_only)
		return de_error_set(err, DE_ERR_DATABASE, EROFS, "%s: store opened read-only",
				    s->path);
	if (n && !ev)
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL, "no events given");
	if (!s->snap_loaded && (rc = load_snapshot(s, err)) < 0)
		return rc;
	if ((rc = begin_write(s, err, "cannot start the event transaction")) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if ((rc = apply_event(s, scan_id, &ev[i], &d, err)) < 0)
			goto fail;
		if (ev[i].time_ms > t)
			t = ev[i].time_ms;
	}
	/* the events keep the snapshot current up to the newest of them */
	if ((rc = finish_batch(s, t, scan_id, s->sample_time, &d, err)) < 0)
		goto fail;
	s->snap_time = t;
	s->snap_scan = scan_id;
	s->last_diff = d;
	return 0;
fail:
	rollback(s);
	/* the index was edited in place: rebuild it from the file next time */
	s->snap_loaded = false;
	return rc;
}

/* ---- alerts ------------------------------------------------------------- */

int de_store_alert(struct de_store *s, const struct de_alert *a, struct de_error *err)
{
	json_t *j = de_alert_to_json(a);
	char *affected = NULL, *data = NULL;
	sqlite3_stmt *st = NULL;
	int rc;

	if (!j)
		return de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
	affected = json_dumps(json_object_get(j, "affected_processes"), JSON_COMPACT);
	data = json_dumps(json_object_get(j, "alert_data"), JSON_COMPACT | JSON_ENCODE_ANY);
	if (!affected || !data) {
		rc = de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
		goto out;
	}
	if (sqlite3_prepare_v2(s->db,
			       "INSERT INTO alerts(id, alert_time, rule_id, title, description,"
			       " severity, scan_id, affected_processes, process_count, alert_data,"
			       " rule_execution_time_ms, dedupe_key, incomplete)"
			       " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = db_err(s, err, "cannot prepare alert insert");
		goto out;
	}
	sqlite3_bind_text(st, 1, json_string_value(json_object_get(j, "id")), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, a->alert_time);
	sqlite3_bind_text(st, 3, a->rule_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, a->title, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, a->description, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, de_severity_name(a->severity), -1, SQLITE_STATIC);
	if (a->has_scan_id)
		sqlite3_bind_int64(st, 7, a->scan_id);
	sqlite3_bind_text(st, 8, affected, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 9, a->process_count);
	sqlite3_bind_text(st, 10, data, -1, SQLITE_STATIC);
	if (a->has_rule_execution_time_ms)
		sqlite3_bind_int64(st, 11, a->rule_execution_time_ms);
	sqlite3_bind_text(st, 12, a->dedupe_key, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 13, a->incomplete);
	rc = exec_step(s, st, err, "cannot store alert");
out:
	sqlite3_finalize(st);
	free(affected);
	free(data);
	json_decref(j);
	return rc;
}

int de_store_alert_delivery(struct de_store *s, const char *alert_id, const char *sink,
			    enum de_delivery_status status, int64_t when_ms, const char *error,
			    struct de_error *err)
{
	static const char *const names[] = {"pending", "delivered", "dead"};
	sqlite3_stmt *st;
	int rc;

	if (!alert_id || !sink || (unsigned)status > DE_DELIVERY_FAILED)
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "alert delivery needs an alert id, a sink and a valid status");
	if (sqlite3_prepare_v2(
		    s->db,
		    "INSERT INTO alert_deliveries(alert_id, sink, status, attempts,"
		    " last_attempt_at, delivered_at, error)"
		    " VALUES(?1, ?2, ?3, ?3 != 'pending', ?4,"
		    "  CASE WHEN ?3 = 'delivered' THEN ?4 END, ?5)"
		    " ON CONFLICT(alert_id, sink) DO UPDATE SET status = excluded.status,"
		    " attempts = attempts + (excluded.status != 'pending'),"
		    " last_attempt_at = excluded.last_attempt_at,"
		    " delivered_at = coalesce(excluded.delivered_at, delivered_at),"
		    " error = excluded.error",
		    -1, &st, NULL) != SQLITE_OK)
		return db_err(s, err, "cannot record alert delivery");
	sqlite3_bind_text(st, 1, alert_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, sink, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, names[status], -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, when_ms);
	sqlite3_bind_text(st, 5, error, -1, SQLITE_STATIC);
	rc = exec_step(s, st, err, "cannot record alert delivery");
	sqlite3_finalize(st);
	return rc;
}

/* ---- queries ------------------------------------------------------------ */

/*
 * The two halves of the process history, column for column alike: exited
 * instances (process_instances) and live ones (the snapshot, whose last
 * sighting is the snapshot's time).  Each is ordered by instance id, so
 * merging them gives every instance oldest first without sorting history.
 */
#define QUERY_COLS                                                                                 \
	" pid, ppid, name, executable_path, command_line, argv_json, start_time, first_seen,"      \
	" %s, %s, first_scan_id, %s, cpu_usage, memory_usage, executable_hash, user_id,"           \
	" accessible, file_exists, exe_deleted, exe_replaced, %d"

static int prepare_query(struct de_store *s, const struct de_process_query *q, bool live,
			 sqlite3_stmt **out, struct de_error *err)
{
	char sql[2048];
	size_t len;

	if (live)
		len = (size_t)snprintf(sql, sizeof(sql),
				       "SELECT instance_id," QUERY_COLS
				       " FROM processes, (SELECT (SELECT value FROM store_state"
				       " WHERE key = 'snapshot_time') AS t, (SELECT value FROM"
				       " store_state WHERE key = 'snapshot_scan') AS scan) ss"
				       " WHERE 1",
				       "ss.t", "NULL", "ss.scan", 1);
	else
		len = (size_t)snprintf(sql, sizeof(sql),
				       "SELECT id," QUERY_COLS " FROM process_instances WHERE 1",
				       "last_seen", "exited_at", "last_scan_id", 0);
#define ADD(clause) len += (size_t)snprintf(sql + len, sizeof(sql) - len, "%s", clause)
	if (q->has_pid)
		ADD(" AND pid = :pid");
	if (q->name)
		ADD(" AND name = :name");
	if (q->name_pattern)
		ADD(" AND name GLOB :pattern");
	if (q->has_since && !live)
		ADD(" AND exited_at >= :since");
	if (q->has_until)
		ADD(" AND first_seen <= :until");
	if (q->has_scan_id)
		ADD(live ? " AND first_scan_id <= :scan"
			 : " AND first_scan_id <= :scan AND (exit_scan_id IS NULL OR exit_scan_id "
			   "> "
			   ":scan)");
	ADD(live ? " ORDER BY instance_id" : " ORDER BY id");
#undef ADD
	if (len >= sizeof(sql))
		return de_error_set(err, DE_ERR_DATABASE, E2BIG, "query too long");
	if (sqlite3_prepare_v2(s->db, sql, -1, out, NULL) != SQLITE_OK)
		return db_err(s, err, "cannot prepare the process query");
#define BIDX(n) sqlite3_bind_parameter_index(*out, n)
	if (q->has_pid)
		sqlite3_bind_int64(*out, BIDX(":pid"), q->pid);
	if (q->name)
		sqlite3_bind_text(*out, BIDX(":name"), q->name, -1, SQLITE_STATIC);
	if (q->name_pattern)
		sqlite3_bind_text(*out, BIDX(":pattern"), q->name_pattern, -1, SQLITE_STATIC);
	if (q->has_since && !live)
		sqlite3_bind_int64(*out, BIDX(":since"), q->since_ms);
	if (q->has_until)
		sqlite3_bind_int64(*out, BIDX(":until"), q->until_ms);
	if (q->has_scan_id)
		sqlite3_bind_int64(*out, BIDX(":scan"), q->scan_id);
#undef BIDX
	return 0;
}

/* The current row of a query statement (strings borrowed from it). */
static void query_row(sqlite3_stmt *st, struct de_process_row *r)
{
	memset(r, 0, sizeof(*r));
	r->instance_id = sqlite3_column_int64(st, 0);
	r->pid = (uint32_t)sqlite3_column_int64(st, 1);
	r->has_ppid = sqlite3_column_type(st, 2) != SQLITE_NULL;
	r->ppid = (uint32_t)sqlite3_column_int64(st, 2);
	r->name = (const char *)sqlite3_column_text(st, 3);
	r->executable_path = (const char *)sqlite3_column_text(st, 4);
	r->command_line = (const char *)sqlite3_column_text(st, 5);
	r->argv_json = (const char *)sqlite3_column_text(st, 6);
	r->has_start_time = sqlite3_column_type(st, 7) != SQLITE_NULL;
	r->start_time = sqlite3_column_int64(st, 7);
	r->first_seen = sqlite3_column_int64(st, 8);
	r->last_seen = sqlite3_column_int64(st, 9);
	r->has_exited_at = sqlite3_column_type(st, 10) != SQLITE_NULL;
	r->exited_at = sqlite3_column_int64(st, 10);
	r->first_scan_id = sqlite3_column_int64(st, 11);
	r->last_scan_id = sqlite3_column_int64(st, 12);
	r->has_cpu_usage = sqlite3_column_type(st, 13) != SQLITE_NULL;
	r->cpu_usage = sqlite3_column_double(st, 13);
	r->has_memory_usage = sqlite3_column_type(st, 14) != SQLITE_NULL;
	r->memory_usage = (uint64_t)sqlite3_column_int64(st, 14);
	r->executable_hash = (const char *)sqlite3_column_text(st, 15);
	r->user_id = (const char *)sqlite3_column_text(st, 16);
	r->accessible = sqlite3_column_int(st, 17);
	r->file_exists = sqlite3_column_int(st, 18);
	r->exe_deleted = sqlite3_column_int(st, 19);
	r->exe_replaced = sqlite3_column_int(st, 20);
	r->alive = sqlite3_column_int(st, 21);
	if (!r->name)
		r->name = "";
	if (!r->command_line)
		r->command_line = "";
	if (!r->argv_json)
		r->argv_json = "[]";
}

int de_store_query_processes(struct de_store *s, const struct de_process_query *q,
			     de_process_row_cb cb, void *arg, struct de_error *err)
{
	sqlite3_stmt *st[2] = {NULL, NULL}; /* exited, live */
	int step[2] = {SQLITE_DONE, SQLITE_DONE}, rc;
	uint64_t skip = q->offset, left = q->limit ? q->limit : UINT64_MAX;

	if ((!q->current_only && (rc = prepare_query(s, q, false, &st[0], err)) < 0) ||
	    (rc = prepare_query(s, q, true, &st[1], err)) < 0)
		goto out;
	for (int k = 0; k < 2; k++)
		if (st[k])
			step[k] = sqlite3_step(st[k]);
	rc = 0;
	while (left > 0 && (step[0] == SQLITE_ROW || step[1] == SQLITE_ROW)) {
		/* the lower instance id of the two heads */
		int k = step[0] != SQLITE_ROW						  ? 1
			: step[1] != SQLITE_ROW						  ? 0
			: sqlite3_column_int64(st[1], 0) < sqlite3_column_int64(st[0], 0) ? 1
											  : 0;
		if (skip > 0) {
			skip--;
		} else {
			struct de_process_row r;
			query_row(st[k], &r);
			if ((rc = cb(&r, arg)) != 0)
				goto out;
			left--;
		}
		step[k] = sqlite3_step(st[k]);
	}
	for (int k = 0; k < 2; k++)
		if (step[k] != SQLITE_ROW && step[k] != SQLITE_DONE) {
			rc = db_err(s, err, "process query failed");
			goto out;
		}
out:
	sqlite3_finalize(st[0]);
	sqlite3_finalize(st[1]);
	return rc;
}

/* ---- retention ---------------------------------------------------------- */

static int64_t scalar(struct de_store *s, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static uint64_t used_bytes(struct de_store *s)
{
	int64_t pages = scalar(s, "PRAGMA page_count");
	int64_t free_pages = scalar(s, "PRAGMA freelist_count");
	int64_t psize = scalar(s, "PRAGMA page_size");

	if (pages < 0 || free_pages < 0 || psize < 0)
		return 0;
	return (uint64_t)(pages - free_pages) * (uint64_t)psize;
}

/*
 * The history categories, oldest first within each.  ?1 is the cutoff
 * (rows older than it may go), ?2 the batch size.  Exited instances go with
 * their samples and changes; alerts only when every delivery is done.
 */
static const char *const prune_sql[] = {
	"CREATE TEMP TABLE IF NOT EXISTS prune_ids(id INTEGER PRIMARY KEY);"
	"DELETE FROM temp.prune_ids;"
	"INSERT INTO temp.prune_ids SELECT id FROM process_instances"
	" WHERE exited_at IS NOT NULL AND exited_at < ?1 ORDER BY exited_at LIMIT ?2;",
	"DELETE FROM process_samples WHERE id IN (SELECT id FROM process_samples"
	" WHERE t < ?1 ORDER BY id LIMIT ?2)",
	"DELETE FROM process_changes WHERE id IN (SELECT id FROM process_changes"
	" WHERE changed_at < ?1 ORDER BY id LIMIT ?2)",
	"DELETE FROM scans WHERE id IN (SELECT id FROM scans WHERE started_at < ?1"
	" AND status != 'running' AND id < (SELECT max(id) FROM scans) ORDER BY id LIMIT ?2)",
	"CREATE TEMP TABLE IF NOT EXISTS prune_alerts(id TEXT PRIMARY KEY);"
	"DELETE FROM temp.prune_alerts;"
	"INSERT INTO temp.prune_alerts SELECT a.id FROM alerts a WHERE a.alert_time < ?1"
	" AND EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.alert_id = a.id)"
	" AND NOT EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.alert_id = a.id"
	"  AND d.status != 'delivered') ORDER BY a.alert_time LIMIT ?2;",
};

/* Run the (possibly multi-statement) sql with ?1/?2 bound; changes() of the last. */
static int exec_bound(struct de_store *s, const char *sql, int64_t cutoff, int64_t batch,
		      int64_t *changes, struct de_error *err)
{
	const char *tail = sql;
	int rc = 0;

	while (tail && *tail) {
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(s->db, tail, -1, &st, &tail) != SQLITE_OK)
			return db_err(s, err, "cannot prepare retention");
		if (!st)
			break;
		if (sqlite3_bind_parameter_count(st) >= 1)
			sqlite3_bind_int64(st, 1, cutoff);
		if (sqlite3_bind_parameter_count(st) >= 2)
			sqlite3_bind_int64(st, 2, batch);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE && rc != SQLITE_ROW)
			return db_err(s, err, "retention failed");
		*changes = sqlite3_changes64(s->db);
	}
	return 0;
}

/* One batch from the first category with anything older than cutoff. */
static int prune_step(struct de_store *s, int64_t cutoff, int64_t batch, int64_t *deleted,
		      struct de_error *err)
{
	int rc;
	int64_t n = 0;

	*deleted = 0;
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return db_err(s, err, "cannot start retention");
	for (size_t c = 0; c < sizeof(prune_sql) / sizeof(prune_sql[0]); c++) {
		if ((rc = exec_bound(s, prune_sql[c], cutoff, batch, &n, err)) < 0)
			goto fail;
		if (n <= 0)
			continue;
		if (c == 0) {
			static const char *const del[] = {
				"DELETE FROM process_samples WHERE instance_id IN temp.prune_ids",
				"DELETE FROM process_changes WHERE instance_id IN temp.prune_ids",
				"DELETE FROM process_instances WHERE id IN temp.prune_ids",
			};
			for (size_t k = 0; k < 3; k++) {
				int64_t m = 0;
				if ((rc = exec_bound(s, del[k], 0, 0, &m, err)) < 0)
					goto fail;
				*deleted += m;
			}
		} else if (c == 4) {
			int64_t m = 0;
			if ((rc = exec_bound(s,
					     "DELETE FROM alert_deliveries WHERE alert_id IN "
					     "temp.prune_alerts",
					     0, 0, &m, err)) < 0)
				goto fail;
			*deleted += m;
			if ((rc = exec_bound(s, "DELETE FROM alerts WHERE id IN temp.prune_alerts",
					     0, 0, &m, err)) < 0)
				goto fail;
			*deleted += m;
		} else {
			*deleted += n;
		}
		break;
	}
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		rc = db_err(s, err, "cannot commit retention");
		goto fail;
	}
	return 0;
fail:
	rollback(s);
	return rc;
}

int de_store_prune(struct de_store *s, int64_t now_ms, uint64_t retention_days, size_t batch,
		   size_t max_batches, struct de_prune_stats *out, struct de_error *err)
{
	struct de_prune_stats st = {0};
	int64_t b = batch ? (int64_t)batch : 500, del;
	size_t left = max_batches ? max_batches : 20;
	int rc;

	if (s->read_only)
		return de_error_set(err, DE_ERR_DATABASE, EROFS, "%s: store opened read-only",
				    s->path);
	if (retention_days) {
		int64_t cutoff = now_ms - (int64_t)retention_days * 86400000;
		for (; left > 0; left--) {
			if ((rc = prune_step(s, cutoff, b, &del, err)) < 0)
				return rc;
			st.rows += (size_t)del;
			if (del == 0)
				break;
		}
		if (left == 0)
			st.more = true;
	}
	st.used_bytes = used_bytes(s);
	while (s->max_size_bytes && st.used_bytes > s->max_size_bytes) {
		if (left == 0) {
			st.more = true;
			break;
		}
		left--;
		if ((rc = prune_step(s, INT64_MAX, b, &del, err)) < 0)
			return rc;
		st.rows += (size_t)del;
		st.used_bytes = used_bytes(s);
		if (del == 0) {
			st.over_cap = true;
			break;
		}
	}
	/* hand freed pages back (files created with auto_vacuum=INCREMENTAL) */
	if (st.rows > 0)
		sqlite3_exec(s->db, "PRAGMA incremental_vacuum(4096)", NULL, NULL, NULL);
	/*
	 * Fold the WAL into the file here, between scans, so that a scan's
	 * commit never pays for a checkpoint and its fsyncs.  PASSIVE: readers
	 * are never waited for; what they still need stays for next time.
	 */
	if (s->wal &&
	    sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) !=
		    SQLITE_OK &&
	    sqlite3_errcode(s->db) != SQLITE_BUSY)
		return db_err(s, err, "cannot checkpoint the write-ahead log");
	if (out)
		*out = st;
	return 0;
}

/* ---- statistics --------------------------------------------------------- */

int de_store_stats(struct de_store *s, struct de_store_stats *out, struct de_error *err)
{
	struct de_store_stats st = {0};
	struct stat sb;
	char wal[4200];

	st.processes = scalar(s, "SELECT count(*) FROM processes");
	/* history holds the exited instances; the snapshot the live ones */
	st.live_instances = st.processes;
	st.instances = scalar(s, "SELECT count(*) FROM process_instances");
	if (st.instances >= 0 && st.processes >= 0)
		st.instances += st.processes;
	st.changes = scalar(s, "SELECT count(*) FROM process_changes");
	st.samples = scalar(s, "SELECT count(*) FROM process_samples");
	st.scans = scalar(s, "SELECT count(*) FROM scans");
	st.failed_scans = scalar(s, "SELECT count(*) FROM scans WHERE status = 'failed'");
	st.alerts = scalar(s, "SELECT count(*) FROM alerts");
	st.deliveries = scalar(s, "SELECT count(*) FROM alert_deliveries");
	st.oldest_ms = scalar(s, "SELECT coalesce(min(started_at), 0) FROM scans");
	st.newest_ms =
		scalar(s, "SELECT coalesce(max(coalesce(ended_at, started_at)), 0) FROM scans");
	st.last_scan_id = scalar(s, "SELECT coalesce(max(id), 0) FROM scans WHERE status = 'ok'");
	st.schema_version = (int)scalar(s, "PRAGMA user_version");
	if (st.processes < 0 || st.instances < 0 || st.scans < 0 || st.alerts < 0)
		return db_err(s, err, "cannot read statistics");
	st.used_bytes = used_bytes(s);
	if (stat(s->path, &sb) == 0)
		st.file_bytes = (uint64_t)sb.st_size;
	snprintf(wal, sizeof(wal), "%s-wal", s->path);
	if (stat(wal, &sb) == 0)
		st.wal_bytes = (uint64_t)sb.st_size;
	*out = st;
	return 0;
}
