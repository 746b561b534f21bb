/*
 * store.c — the event store's connection (see store.h; store_int.h maps the
 * other files): opening checks that an existing file is a SQLite database
 * of a schema version we know before touching it (a corrupt or foreign file
 * is an error, never silently recreated), a writer migrates it and holds an
 * exclusive flock(2) on "<path>.lock" for as long as the store is open, and
 * sets the pragmas its write path relies on.  Also here: the table of
 * statements every write prepares once, the scans' rows, and what every
 * other file uses to step a statement and report a failure.
 */
#include "store_int.h"
#include "daemoneye/log.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "daemoneye/clock.h"

/* ---- the statement table ------------------------------------------------ */

/*
 * The insert of a new instance (its snapshot row: the instance's history
 * row is written when it leaves the snapshot, ST_EXIT_INST), also prepared
 * for STORE_BATCH_ROWS rows at once (prepare_multi()), so that SQLite opens,
 * seeks and closes its cursors once per batch rather than once per row.
 * Every statement numbers its parameters alike (store_bind_record()),
 * STORE_NPARAM per row.  OR FAIL: a multi-row insert that may abort needs a
 * statement journal (a copy of every page it touches); a failed batch is
 * rolled back whole anyway.  Instance ids are given by the store
 * (s->next_inst), not left to SQLite: the row that names an instance is
 * written long before its history row.
 */
#define INS_SNAP_HEAD                                                                              \
	"INSERT OR FAIL INTO processes(pid, id, scan_id, collection_time, ppid, name,"             \
	" executable_path, command_line, argv_json, start_time, cpu_usage, memory_usage,"          \
	" executable_hash, hash_algorithm, user_id, accessible, file_exists, exe_deleted,"         \
	" exe_replaced, platform_data, instance_id, identity_hash, value_hash, first_seen,"        \
	" first_scan_id, user_name, group_name, cwd) VALUES"
#define INS_SNAP_ROW                                                                               \
	"(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23,?4,?" \
	"3,?24,?25,?26)"

static const char *const stmt_sql[ST_MAX] = {
	/*
	 * Plain INSERT and UPDATE, never INSERT OR REPLACE: a REPLACE may
	 * delete rows, so SQLite keeps a statement journal of every page it
	 * touches, several pages per record (spilled to a temporary file when
	 * pages are big).  The in-memory index says whether the pid already
	 * has a row.
	 */
	[ST_INS_SNAP] = INS_SNAP_HEAD INS_SNAP_ROW,
	[ST_UPD_SNAP] = "UPDATE processes SET id = ?2, scan_id = ?3, collection_time = ?4,"
			" ppid = ?5, name = ?6, executable_path = ?7, command_line = ?8,"
			" argv_json = ?9, start_time = ?10, cpu_usage = ?11, memory_usage = ?12,"
			" executable_hash = ?13, hash_algorithm = ?14, user_id = ?15,"
			" accessible = ?16, file_exists = ?17, exe_deleted = ?18,"
			" exe_replaced = ?19, platform_data = ?20, instance_id = ?21,"
			" identity_hash = ?22, value_hash = ?23, user_name = ?24,"
			" group_name = ?25, cwd = ?26 WHERE pid = ?1",
	[ST_UPD_VALS] = "UPDATE processes SET id = ?2, scan_id = ?3, collection_time = ?4,"
			" cpu_usage = ?11, memory_usage = ?12, platform_data = ?20,"
			" value_hash = ?23, cwd = ?26 WHERE pid = ?1",
	[ST_SAVE_CHANGE] = "INSERT OR FAIL INTO process_changes(instance_id, changed_at, scan_id,"
			   " ppid, name, executable_path, command_line, argv_json, executable_hash,"
			   " hash_algorithm, user_id, accessible, file_exists, exe_deleted,"
			   " exe_replaced, platform_data, user_name, group_name, cwd)"
			   " SELECT instance_id, ?2, ?3, ppid, name, executable_path,"
			   " command_line, argv_json, executable_hash, hash_algorithm, user_id,"
			   " accessible, file_exists, exe_deleted, exe_replaced, platform_data,"
			   " user_name, group_name, cwd FROM processes WHERE pid = ?1",
	/* the snapshot row, as it was last, becomes the instance's history */
	[ST_EXIT_INST] = "INSERT OR FAIL INTO process_instances(id, pid, start_time, ppid, name,"
			 " executable_path, command_line, argv_json, executable_hash,"
			 " hash_algorithm, user_id, accessible, file_exists, exe_deleted,"
			 " exe_replaced, platform_data, cpu_usage, memory_usage, first_seen,"
			 " last_seen, exited_at, first_scan_id, last_scan_id, exit_scan_id,"
			 " user_name, group_name, cwd, exit_code, exit_signal)"
			 " SELECT instance_id, pid, start_time, ppid, name, executable_path,"
			 " command_line, argv_json, executable_hash, hash_algorithm, user_id,"
			 " accessible, file_exists, exe_deleted, exe_replaced, platform_data,"
			 " cpu_usage, memory_usage, coalesce(first_seen, collection_time), ?4,"
			 " ?2, first_scan_id, ?5, ?3, user_name, group_name, cwd, ?7, ?8"
			 " FROM processes WHERE pid = ?6 AND instance_id = ?1",
	[ST_DEL_SNAP] = "DELETE FROM processes WHERE pid = ?1 AND instance_id = ?2",
	[ST_INS_SAMPLE] = "INSERT INTO process_samples(instance_id, t, scan_id, cpu_usage,"
			  " memory_usage) VALUES(?1, ?2, ?3, ?4, ?5)",
	/*
	 * Every batch ends here.  An UPDATE of the three rows in place: the
	 * multi-row INSERT OR REPLACE that makes them (a file's first
	 * snapshot, ST_INIT_STATE) may delete and abort, so SQLite copies the
	 * page into a statement journal before changing it.
	 */
	[ST_SET_STATE] = "UPDATE OR FAIL store_state SET value = CASE key WHEN 'snapshot_time'"
			 " THEN ?1 WHEN 'snapshot_scan' THEN ?2 ELSE ?3 END WHERE key IN"
			 " ('snapshot_time', 'snapshot_scan', 'sample_time')",
	[ST_INIT_STATE] = "INSERT OR REPLACE INTO store_state(key, value) VALUES"
			  "('snapshot_time', ?1), ('snapshot_scan', ?2), ('sample_time', ?3)",
	[ST_SCAN_COUNTS] = "UPDATE scans SET new_count = coalesce(new_count, 0) + ?1,"
			   " changed_count = coalesce(changed_count, 0) + ?2,"
			   " exited_count = coalesce(exited_count, 0) + ?3 WHERE id = ?4",
	/* one row per (instance, endpoints): seen again, it is open again; the
	   kernel's kind (connect or accept) wins over a scan's guess */
	[ST_CONN_UPSERT] = "INSERT INTO network_connections(pid, start_time, kind, family,"
			   " local_address, local_port, remote_address, remote_port, inode,"
			   " first_seen, last_seen, closed_at, source) VALUES(?1, ?2, ?3, ?4,"
			   " ?5, ?6, ?7, ?8, ?9, ?10, ?10, CASE ?3 WHEN 'connect_failed' THEN"
			   " ?10 END, ?11) ON CONFLICT(pid, start_time, family, local_address,"
			   " local_port, remote_address, remote_port) DO UPDATE SET"
			   " last_seen = max(last_seen, excluded.last_seen),"
			   " closed_at = excluded.closed_at,"
			   " inode = coalesce(inode, excluded.inode),"
			   " kind = CASE WHEN source = 'scan' AND excluded.source = 'ebpf' OR"
			   " kind = 'connect_failed' THEN excluded.kind ELSE kind END,"
			   " source = CASE WHEN excluded.source = 'ebpf' THEN 'ebpf' ELSE source"
			   " END",
	[ST_EVENT_SCAN] = "INSERT INTO scans(started_at, ended_at, duration_ms, source, status,"
			  " process_count) VALUES(?1, ?1, 0, 'event', 'ok', ?2)",
	/* prepared once: the exec path begins and commits hundreds of times a
	   second, and sqlite3_exec() would compile them each time */
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
};

/* ---- errors and steps ---------------------------------------------------- */

int store_db_err(struct de_store *s, struct de_error *err, const char *what)
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

int store_step(struct de_store *s, sqlite3_stmt *st, struct de_error *err, const char *what)
{
	int rc;

	errno = 0;
	rc = sqlite3_step(st);
	s->step_errno = errno;
	rc = rc == SQLITE_DONE ? 0 : store_db_err(s, err, what);
	sqlite3_reset(st);
	return rc;
}

/* ---- the WAL ------------------------------------------------------------- */

/* The background checkpointer (de_store_background_checkpoints). */
struct store_ckpt {
	struct de_store *s;
	sqlite3 *db; /* its own connection */
	int64_t min_frames;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
};

/*
 * PASSIVE checkpoints on db (not the writer's connection): each copies
 * what no reader still needs while the writer goes on.  The writer starts
 * the WAL over only at a transaction that finds every frame copied, and at
 * 1,000 execs/s it commits during almost every pass (a pass syncs the WAL
 * and the file): so pass again over what came meanwhile, each pass
 * shorter, until one copies nothing new (all copied, or a reader still
 * needs the rest), at most passes times: else the WAL is never started
 * over, and grows to the writer's backstop, which folds it inside an exec
 * batch's commit (docs/perf.md has the measurements).  between(arg), when
 * given, runs after each pass that copied something (the tests commit
 * there).  Returns the passes made.
 */
int store_fold_wal(sqlite3 *db, int passes, void (*between)(void *), void *arg)
{
	int pass = 0;

	for (int last = -1; pass < passes;) {
		int log = 0, done = 0;
		pass++;
		if (sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done) !=
			    SQLITE_OK ||
		    done <= last)
			break;
		last = done;
		if (between)
			between(arg);
	}
	return pass;
}

static void *ckpt_main(void *arg)
{
	struct store_ckpt *c = arg;
	struct timespec ts;

	pthread_mutex_lock(&c->mu);
	while (!c->stop) {
		de_cond_deadline(&ts, 200); /* monotonic: a clock step does not stretch it */
		pthread_cond_timedwait(&c->cv, &c->mu, &ts);
		if (c->stop || __atomic_load_n(&c->s->wal_pages, __ATOMIC_RELAXED) < c->min_frames)
			continue;
		/* under mu: store_rollback's TRUNCATE on a full disk waits for
		   it rather than finding the WAL busy */
		store_fold_wal(c->db, STORE_CKPT_PASSES, NULL, NULL);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

int de_store_background_checkpoints(struct de_store *s, uint64_t min_wal_bytes,
				    struct de_error *err)
{
	struct store_ckpt *c;
	int64_t frames = s->page_bytes > 0 ? (int64_t)(min_wal_bytes / (uint64_t)s->page_bytes) : 1;

	if (s->read_only || !s->wal || s->ckpt)
		return 0;
	if (!(c = calloc(1, sizeof(*c))))
		return de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
	c->s = s;
	c->min_frames = frames > 0 ? frames : 1;
	if (sqlite3_open_v2(s->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		int rc = de_error_set(err, DE_ERR_DATABASE, EIO,
				      "%s: cannot open the checkpointer's connection: %s", s->path,
				      c->db ? sqlite3_errmsg(c->db) : "out of memory");
		sqlite3_close(c->db);
		free(c);
		return rc;
	}
	sqlite3_busy_timeout(c->db, 100);
	/* a connection that has not read the file yet does not know that it is
	   in WAL mode, and its checkpoints do nothing (SQLite 3.40): the WAL
	   then grew to the writer's backstop, folded in an exec batch's commit */
	if (sqlite3_exec(c->db, "PRAGMA schema_version", NULL, NULL, NULL) != SQLITE_OK) {
		int rc = de_error_set(err, DE_ERR_DATABASE, EIO,
				      "%s: the checkpointer cannot read the store: %s", s->path,
				      sqlite3_errmsg(c->db));
		sqlite3_close(c->db);
		free(c);
		return rc;
	}
	pthread_mutex_init(&c->mu, NULL);
	de_cond_init_mono(&c->cv);
	if (pthread_create(&c->th, NULL, ckpt_main, c) != 0) {
		pthread_cond_destroy(&c->cv);
		pthread_mutex_destroy(&c->mu);
		sqlite3_close(c->db);
		free(c);
		return de_error_set(err, DE_ERR_DATABASE, EAGAIN,
				    "%s: cannot start the checkpointer thread", s->path);
	}
	s->ckpt = c;
	return 0;
}

static void ckpt_stop(struct de_store *s)
{
	struct store_ckpt *c = s->ckpt;

	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->th, NULL);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	sqlite3_close(c->db);
	free(c);
	s->ckpt = NULL;
}

/* ---- open / close ------------------------------------------------------- */

/*
 * The single-writer lock: an exclusive flock on "<path>.lock" holding our pid.
 * A held lock is waited for as long as SQLite's own locks are (wait_ms): an
 * agent restarted right after its predecessor was killed finds the old
 * worker still exiting (SIGKILL does not end a process that sits in an fsync
 * until the fsync returns), and must not fail for that.
 */
static int take_lock(struct de_store *s, int wait_ms, struct de_error *err)
{
	char lpath[4200], buf[32];
	int fd, r;
	int64_t deadline = de_mono_ms() + wait_ms;

	snprintf(lpath, sizeof(lpath), "%s.lock", s->path);
	fd = open(lpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return de_error_set(err, DE_ERR_DATABASE, errno, "%s: cannot open lock file %s: %s",
				    s->path, lpath, strerror(errno));
	while ((r = flock(fd, LOCK_EX | LOCK_NB)) < 0 && (errno == EINTR || errno == EWOULDBLOCK) &&
	       de_mono_ms() < deadline) {
		struct timespec ts = {0, 10L * 1000 * 1000};

		nanosleep(&ts, NULL);
	}
	if (r < 0) {
		int e = errno;
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		close(fd);
		if (e == EWOULDBLOCK)
			return de_error_set(err, DE_ERR_DATABASE, EBUSY,
					    "%s: the event store is already open for writing by "
					    "another process (pid %s, lock %s; waited %d ms); only "
					    "one daemoneye-agent may write to a store",
					    s->path, *buf ? buf : "unknown", lpath, wait_ms);
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
 * Event batches write store_state only every STORE_STATE_LAG_MS (store_diff.c
 * store_finish_batch): after a crash the newest committed event scan may be
 * newer than it.  Its scan and time are then the snapshot's, so that the
 * next full scan gives a process it finds gone a last sighting no earlier
 * than its first.
 */
static void state_catch_up(struct de_store *s)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(
		    s->db,
		    "SELECT id, ended_at FROM scans WHERE id > ?1 AND source = 'event'"
		    " AND status = 'ok' AND ended_at IS NOT NULL ORDER BY id DESC LIMIT 1",
		    -1, &st, NULL) != SQLITE_OK)
		return; /* a file without scans yet: nothing newer */
	sqlite3_bind_int64(st, 1, s->snap_scan);
	if (sqlite3_step(st) == SQLITE_ROW) {
		s->snap_scan = sqlite3_column_int64(st, 0);
		if (sqlite3_column_int64(st, 1) > s->snap_time)
			s->snap_time = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
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
		return store_db_err(s, err,
				    "not a daemoneye event store (cannot read its version)");
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
		return store_db_err(s, err, "cannot open event store on a read-only file system");
	return 0;
}

/*
 * Prepare head followed by STORE_BATCH_ROWS copies of row, the parameters of
 * copy r renumbered by r * STORE_NPARAM.
 */
static int prepare_multi(struct de_store *s, const char *head, const char *row, sqlite3_stmt **out,
			 struct de_error *err)
{
	size_t cap = strlen(head) + STORE_BATCH_ROWS * (strlen(row) * 2 + 2) + 1, o;
	char *sql = malloc(cap);
	int rc = 0;

	if (!sql)
		return de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
	o = (size_t)snprintf(sql, cap, "%s", head);
	for (int r = 0; r < STORE_BATCH_ROWS; r++) {
		if (r)
			sql[o++] = ',';
		for (const char *p = row; *p;) {
			if (*p != '?') {
				sql[o++] = *p++;
				continue;
			}
			char *end;
			long n = strtol(p + 1, &end, 10);
			o += (size_t)snprintf(sql + o, cap - o, "?%ld", n + (long)r * STORE_NPARAM);
			p = end;
		}
	}
	sql[o] = '\0';
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL) != SQLITE_OK)
		rc = store_db_err(s, err, "cannot prepare statements");
	free(sql);
	return rc;
}

/* SQLite calls this after each commit in WAL mode with the WAL's frames. */
static int wal_hook(void *ctx, sqlite3 *db, const char *name, int pages)
{
	struct de_store *s = ctx;

	(void)name;
	__atomic_store_n(&s->wal_pages, pages, __ATOMIC_RELAXED);
	/* the backstop for callers that never checkpoint (de_store_prune,
	   de_store_checkpoint): as wal_autocheckpoint would, which this hook
	   replaces */
	if (pages >= STORE_WAL_BACKSTOP_PAGES &&
	    sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) == SQLITE_OK)
		__atomic_store_n(&s->wal_pages, 0, __ATOMIC_RELAXED);
	return SQLITE_OK;
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
	s->min_free_bytes = cfg->min_free_bytes;
	s->free_bytes = cfg->free_bytes;
	s->sample_interval_ms =
		(int64_t)(cfg->sample_interval_s ? cfg->sample_interval_s : 300) * 1000;
	snprintf(s->path, sizeof(s->path), "%s", cfg->path);
	if (!cfg->read_only &&
	    (rc = take_lock(s, cfg->busy_timeout_ms > 0 ? cfg->busy_timeout_ms : 5000, err)) < 0)
		goto fail;
	flags = cfg->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	flags |= SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
	/* the rules' connection reads the held batches through this cache */
	s->shared = cfg->shared_cache && !cfg->read_only;
	if (s->shared)
		flags |= SQLITE_OPEN_SHAREDCACHE;
	/* the writer's WAL frames of a commit go to the file in one write */
	if (sqlite3_open_v2(cfg->path, &s->db, flags, cfg->read_only ? NULL : store_walbuf_vfs()) !=
	    SQLITE_OK) {
		int ec = s->db ? sqlite3_errcode(s->db) : SQLITE_NOMEM;
		rc = de_error_set(err, DE_ERR_DATABASE,
				  ec == SQLITE_NOMEM			    ? ENOMEM
				  : cfg->read_only && ec == SQLITE_CANTOPEN ? ENOENT
									    : EIO,
				  "%s: cannot open event store: %s", cfg->path,
				  s->db ? sqlite3_errmsg(s->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(s->db, cfg->busy_timeout_ms > 0 ? cfg->busy_timeout_ms : 5000);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
	/* no memory map of the file: every page read through one counts in
	   the worker's resident size, so with the cache below the mapping
	   grew to the snapshot's size (6.6 MB at 10,000 processes) and the
	   worker went over its 40 MB budget; read into the bounded cache,
	   the steady cycle's CPU measured the same (bench_agent).  Rules read
	   on their own connections (validator.c), never this one */
	sqlite3_exec(s->db, "PRAGMA mmap_size=0", NULL, NULL, NULL);
	if (!cfg->read_only) {
		if ((rc = store_migrate(s, err)) < 0)
			goto fail;
		if (sqlite3_exec(s->db,
				 cfg->wal_mode ? "PRAGMA journal_mode=WAL"
					       : "PRAGMA journal_mode=DELETE",
				 NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(s->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) !=
			    SQLITE_OK ||
		    /* checkpoints run between scans (de_store_prune,
		       de_store_checkpoint) and on the background checkpointer
		       when one runs; wal_hook() is the backstop */
		    sqlite3_exec(s->db, "PRAGMA journal_size_limit=33554432", NULL, NULL, NULL) !=
			    SQLITE_OK ||
		    /* 4 MiB of pages: a first scan of 10,000 processes dirties
		       more, and what does not fit goes to the WAL before the
		       commit.  16 MiB held the whole scan: 12 MB more of the
		       worker's peak resident size (its budget is 40 MB).  A
		       shared cache (cfg->shared_cache) is also the rules' (they
		       had 16 MiB of their own): 12 MiB, or every full cycle's
		       rules at 10,000 processes read the snapshot's pages
		       again and again (worker 90 against 70 ms a cycle,
		       bench_agent; peak 33.5 MB against 37.2 with two caches) */
		    sqlite3_exec(s->db,
				 s->shared ? "PRAGMA cache_size=-12288" : "PRAGMA cache_size=-4096",
				 NULL, NULL, NULL) != SQLITE_OK ||
		    /* a statement that may abort halfway inside a transaction keeps
		       a statement journal: in memory, not a temporary file created,
		       written and unlinked per transaction (the exec path commits
		       hundreds of small batches a second) */
		    sqlite3_exec(s->db, "PRAGMA temp_store=MEMORY", NULL, NULL, NULL) !=
			    SQLITE_OK) {
			rc = store_db_err(s, err, "cannot set journal mode");
			goto fail;
		}
		s->page_bytes = store_scalar(s, "PRAGMA page_size");
		if (s->wal)
			sqlite3_wal_hook(s->db, wal_hook, s);
		for (size_t i = 0; i <= STORE_BATCH_ROWS; i++)
			store_text_init(&s->text[i],
					(size_t)sqlite3_limit(s->db, SQLITE_LIMIT_LENGTH, -1));
		for (int i = 0; i < ST_MAX; i++)
			if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
					       &s->st[i], NULL) != SQLITE_OK) {
				rc = store_db_err(s, err, "cannot prepare statements");
				goto fail;
			}
		if ((rc = prepare_multi(s, INS_SNAP_HEAD, INS_SNAP_ROW, &s->multi_snap, err)) < 0)
			goto fail;
	} else {
		int version = -1;
		if (store_read_version(s->db, &version) < 0 && (rc = reopen_immutable(s, err)) < 0)
			goto fail;
		if ((version < 0 && store_read_version(s->db, &version) < 0) || version < 1 ||
		    version > DE_STORE_SCHEMA_VERSION) {
			rc = de_error_set(err, DE_ERR_DATABASE, EPROTO,
					  "%s: not a daemoneye event store of a known version",
					  cfg->path);
			goto fail;
		}
		if (version < DE_STORE_SCHEMA_VERSION) {
			rc = de_error_set(err, DE_ERR_DATABASE, EPROTO,
					  "%s: schema version %d is older than %d; run "
					  "daemoneye-agent once to migrate it",
					  cfg->path, version, DE_STORE_SCHEMA_VERSION);
			goto fail;
		}
		sqlite3_exec(s->db, "PRAGMA query_only=1", NULL, NULL, NULL);
	}
	s->snap_time = state_get(s, "snapshot_time");
	s->snap_scan = state_get(s, "snapshot_scan");
	s->sample_time = state_get(s, "sample_time");
	state_catch_up(s);
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
	/* what event batches left unwritten of the snapshot's time (a failure
	   leaves it as a crash would: up to STORE_STATE_LAG_MS stale) */
	struct de_error err = {0};
	if (de_store_commit_held(s, &err) < 0) /* the held event batches */
		de_log_err(&err);
	(void)store_flush_state(s, &err);
	ckpt_stop(s);
	for (int i = 0; i < ST_MAX; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_finalize(s->multi_snap); /* before the close, which fails while any is open */
	store_spool_close(s);
	sqlite3_close(s->db);
	store_tab_free(&s->snap);
	store_tab_free(&s->spare);
	free(s->pd);
	for (size_t i = 0; i <= STORE_BATCH_ROWS; i++)
		store_text_free(&s->text[i]);
	free(s->queue);
	if (s->lock_fd >= 0)
		close(s->lock_fd); /* releases the flock */
	free(s);
}

struct de_store_diff de_store_last_diff(const struct de_store *s)
{
	return s->last_diff;
}

struct de_store_versions de_store_data_versions(const struct de_store *s)
{
	return s->versions;
}

sqlite3 *de_store_db(struct de_store *s)
{
	return s->db;
}

/* ---- scans -------------------------------------------------------------- */

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
		return store_db_err(s, err, "cannot record scan");
	sqlite3_bind_int64(st, 1, started_ms);
	sqlite3_bind_text(st, 2, source, -1, SQLITE_STATIC);
	rc = store_step(s, st, err, "cannot record scan");
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
		return store_db_err(s, err, "cannot finish scan");
	sqlite3_bind_int64(st, 1, ended_ms);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)count);
	sqlite3_bind_int64(st, 3, scan_id);
	rc = store_step(s, st, err, "cannot finish scan");
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
		return store_db_err(s, err, "cannot mark scan failed");
	sqlite3_bind_int64(st, 1, ended_ms);
	sqlite3_bind_text(st, 2, why, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, scan_id);
	rc = store_step(s, st, err, "cannot mark scan failed");
	sqlite3_finalize(st);
	return rc;
}

/* ---- transactions --------------------------------------------------------- */

int de_store_commit_held(struct de_store *s, struct de_error *err)
{
	int rc;

	if (!store_held_open(s))
		return 0;
	if ((rc = store_step(s, s->st[ST_COMMIT], err, "cannot commit the held event batches")) <
	    0) {
		store_rollback(s); /* the batches are lost: de_store_held_take says so */
		return rc;
	}
	s->held = false;
	return 0;
}

int64_t de_store_held_due(const struct de_store *s)
{
	return s->held ? s->held_since + s->hold_ms : INT64_MAX;
}

void de_store_hold_batches(struct de_store *s, int64_t ms)
{
	s->hold_ms = ms > 0 ? ms : 0;
}

enum de_store_held de_store_held_take(struct de_store *s)
{
	if (s->held_lost) {
		s->held_lost = false;
		return DE_STORE_HELD_LOST;
	}
	return s->held ? DE_STORE_HELD_OPEN : DE_STORE_HELD_NONE;
}

const char *de_store_shared_vfs(const struct de_store *s)
{
	return s->shared ? STORE_WALBUF_VFS : NULL;
}

int store_begin_write(struct de_store *s, struct de_error *err, const char *what)
{
	int rc;

	/* another write after held event batches: they are committed first */
	if ((rc = de_store_commit_held(s, err)) < 0)
		return rc;
	return store_step(s, s->st[ST_BEGIN], err, what);
}

void store_rollback(struct de_store *s)
{
	bool full = s->step_errno == ENOSPC || s->step_errno == EDQUOT ||
		    (sqlite3_extended_errcode(s->db) & 0xff) == SQLITE_FULL;

	s->queued = 0;
	s->batching = false;
	sqlite3_reset(s->multi_snap);
	for (int i = 0; i < ST_MAX; i++)
		sqlite3_reset(s->st[i]);
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	if (s->held) {
		/* held event batches went with it: their rows, and the snapshot's
		   index they edited in place (rebuilt from the file next time) */
		s->held = false;
		s->held_lost = true;
		s->snap_loaded = false;
	}
	/*
	 * A full disk: the WAL may hold many copies of the same few pages
	 * (every event batch commits its own).  Folding them into the file
	 * and truncating the WAL gives that space back, so that the next
	 * batch can commit once a little room appears; otherwise the WAL
	 * alone keeps the disk full.  Best effort: readers may hold it.
	 */
	if (full && s->wal) {
		if (s->ckpt)
			pthread_mutex_lock(&s->ckpt->mu);
		if (sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL,
					      NULL) == SQLITE_OK)
			__atomic_store_n(&s->wal_pages, 0, __ATOMIC_RELAXED);
		if (s->ckpt)
			pthread_mutex_unlock(&s->ckpt->mu);
	}
}

int de_store_checkpoint(struct de_store *s, uint64_t min_wal_bytes, struct de_error *err)
{
	int log = 0, done = 0;

	if (s->read_only || !s->wal)
		return 0;
	if ((uint64_t)__atomic_load_n(&s->wal_pages, __ATOMIC_RELAXED) * (uint64_t)s->page_bytes <
	    min_wal_bytes)
		return 0;
	/* not inside a transaction: held event batches are committed first */
	int rc = de_store_commit_held(s, err);
	if (rc < 0)
		return rc;
	if (sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done) !=
		    SQLITE_OK &&
	    sqlite3_errcode(s->db) != SQLITE_BUSY)
		return store_db_err(s, err, "cannot checkpoint the write-ahead log");
	/* what readers still need stays: counted again at the next commit */
	__atomic_store_n(&s->wal_pages, log > done ? log - done : 0, __ATOMIC_RELAXED);
	return 0;
}
