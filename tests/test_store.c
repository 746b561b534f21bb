/*
 * test_store.c — the event store's connection (src/lib/store.c) on real
 * SQLite files: open, the schema version, scans, reopening read-only,
 * refusal to touch a corrupt, foreign or newer-version file, the
 * single-writer lock, and (as root) a real full disk and a real read-only
 * bind mount, reported as ENOSPC and EROFS.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define DE_TEST_NAME "store"
#include "testutil.h"
#include "store_fixtures.h"

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	/* a failed fault test may leave its mounts behind */
	snprintf(cmd, sizeof(cmd), "%s/full", tmpdir);
	umount2(cmd, MNT_DETACH);
	snprintf(cmd, sizeof(cmd), "%s/ro", tmpdir);
	umount2(cmd, MNT_DETACH);
	return tmpdir_remove();
}

static void record(struct de_process_record *r, uint32_t pid, const char *name)
{
	memset(r, 0, sizeof(*r));
	de_uuid_v4(&r->id);
	r->pid = pid;
	r->has_ppid = true;
	r->ppid = 1;
	r->name = strdup(name);
	r->executable_path = strdup("/usr/bin/x");
	r->command_line = calloc(2, sizeof(char *));
	r->command_line[0] = strdup("x");
	r->command_line[1] = strdup("--flag=\xff\n");
	r->command_line_len = 2;
	r->accessible = true;
	r->file_exists = true;
	r->platform_data = json_pack("{s:b}", "exe_deleted", pid == 3);
}

static void test_snapshot_and_scans(void **state)
{
	(void)state;
	char *path = db_path("events.sqlite");
	struct de_store_config cfg = {
		.path = path, .max_size_mb = 10, .wal_mode = true, .max_connections = 2};
	struct de_store *s;
	struct de_error e = {0};
	struct de_process_record recs[3];
	int64_t scan;

	assert_int_equal(de_store_open(&cfg, &s, &e), 0);
	assert_int_equal(de_store_scan_begin(s, 1000, "poll", &scan, &e), 0);
	assert_int_equal(scan, 1);
	for (int i = 0; i < 3; i++)
		record(&recs[i], (uint32_t)(i + 1), "proc");
	assert_int_equal(de_store_processes(s, recs[0].scan_id, recs, 3, &e), 0);
	assert_int_equal(de_store_scan_end(s, scan, 1250, 3, &e), 0);
	sqlite3 *db = de_store_db(s);
	assert_int_equal(count(db, "SELECT count(*) FROM processes"), 3);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE exe_deleted = 1"), 1);
	assert_int_equal(count(db, "SELECT duration_ms FROM scans WHERE id = 1"), 250);
	assert_int_equal(count(db, "SELECT process_count FROM scans WHERE id = 1"), 3);
	/* exact bytes in the text column */
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE command_line = "
				   "CAST(X'78202D2D666C61673DFF0A' AS TEXT)"),
			 3);
	assert_string_equal(
		(count(db, "PRAGMA user_version") == DE_STORE_SCHEMA_VERSION) ? "ok" : "bad", "ok");

	/* a scan source is poll or event; a failed scan keeps its reason */
	assert_int_equal(de_store_scan_begin(s, 2000, "bogus", &scan, &e), -EINVAL);
	assert_int_equal(e.category, DE_ERR_VALIDATION);
	assert_int_equal(de_store_scan_begin(s, 2000, "event", &scan, &e), 0);
	assert_int_equal(count(db, "SELECT count(*) FROM scans WHERE status = 'running'"), 1);
	assert_int_equal(de_store_scan_fail(s, scan, 2100, "disk full", &e), 0);
	assert_int_equal(count(db,
			       "SELECT count(*) FROM scans WHERE status = 'failed' AND "
			       "error = 'disk full' AND source = 'event' AND duration_ms = 100"),
			 1);

	/* the next snapshot replaces the previous one */
	assert_int_equal(de_store_processes(s, recs[0].scan_id, recs, 1, &e), 0);
	assert_int_equal(count(db, "SELECT count(*) FROM processes"), 1);

	for (int i = 0; i < 3; i++)
		de_process_record_clear(&recs[i]);
	de_store_close(s);

	/* reopen read-only: data still there */
	cfg.read_only = true;
	assert_int_equal(de_store_open(&cfg, &s, &e), 0);
	assert_int_equal(count(de_store_db(s), "SELECT count(*) FROM scans"), 2);
	de_store_close(s);
	free(path);
}

/*
 * The background checkpointer folds the WAL into the file by itself: the
 * pages a writer commits reach the main file, which grows, without any
 * checkpoint of the writer's (whose backstop waits for 4096 pages).  Waited
 * for without a time limit of its own: ctest's timeout ends a hang.
 */
static void test_background_checkpoints(void **state)
{
	(void)state;
	char *path = db_path("ckpt.sqlite");
	struct de_store *s = open_at(path, 0);
	struct de_error e = {0};
	struct de_process_record recs[500];
	struct stat st0, st;
	int64_t scan;

	assert_int_equal(de_store_background_checkpoints(s, 1, &e), 0);
	assert_int_equal(stat(path, &st0), 0);
	assert_int_equal(de_store_scan_begin(s, 1000, "poll", &scan, &e), 0);
	mk_many(recs, 500, 1000, scan);
	store_ok(s, recs, 500);
	assert_int_equal(de_store_scan_end(s, scan, 1100, 500, &e), 0);
	do {
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
		assert_int_equal(stat(path, &st), 0);
	} while (st.st_size <= st0.st_size);
	clear_many(recs, 500);
	de_store_close(s);
	free(path);
}

static void write_bytes(const char *path, const char *bytes, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(bytes, 1, n, f), n);
	fclose(f);
}

static void test_refuses_foreign_files(void **state)
{
	(void)state;
	struct de_store *s = NULL;
	struct de_error e = {0};
	struct stat before, after;

	/* garbage */
	char *bad = db_path("garbage.sqlite");
	char junk[8192];
	memset(junk, 'Z', sizeof(junk));
	write_bytes(bad, junk, sizeof(junk));
	stat(bad, &before);
	struct de_store_config cfg = {.path = bad, .wal_mode = true};
	assert_true(de_store_open(&cfg, &s, &e) < 0);
	assert_int_equal(e.category, DE_ERR_DATABASE);
	assert_non_null(strstr(e.message, "garbage.sqlite"));
	stat(bad, &after);
	assert_int_equal(before.st_size, after.st_size);
	FILE *f = fopen(bad, "rb");
	char back[16];
	assert_int_equal(fread(back, 1, 16, f), 16);
	fclose(f);
	assert_memory_equal(back, junk, 16);

	/* another application's SQLite database */
	char *foreign = db_path("foreign.sqlite");
	sqlite3 *db;
	assert_int_equal(sqlite3_open(foreign, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	cfg.path = foreign;
	assert_true(de_store_open(&cfg, &s, &e) < 0);
	assert_non_null(strstr(e.message, "not a daemoneye event store"));

	/* a newer schema version */
	char *newer = db_path("newer.sqlite");
	assert_int_equal(sqlite3_open(newer, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	cfg.path = newer;
	assert_true(de_store_open(&cfg, &s, &e) < 0);
	assert_non_null(strstr(e.message, "schema version 99 is newer"));

	/* read-only open of a store that does not exist */
	char *absent = db_path("absent.sqlite");
	cfg.path = absent;
	cfg.read_only = true;
	assert_true(de_store_open(&cfg, &s, &e) < 0);
	struct stat st;
	assert_int_equal(stat(absent, &st), -1); /* not created */
	free(bad);
	free(foreign);
	free(newer);
	free(absent);
}

/* ---- one writer --------------------------------------------------------- */

/*
 * A writer that is still going away when the next opens the store: its lock
 * is waited for.  The child holds the store until told to go, and then takes
 * 300 ms to go, as a worker killed in an fsync does; the open that starts
 * meanwhile succeeds.  (It failed at once before the wait: an agent restarted
 * right after a kill -9 of the last one exited 74.)
 */
static void test_writer_lock_waits(void **state)
{
	(void)state;
	char *path = db_path("lockwait.sqlite");
	struct de_store_config cfg = {.path = path, .wal_mode = true, .busy_timeout_ms = 30000};
	struct de_store *w = NULL;
	struct de_error e = {0};
	int up[2], go[2], st;
	char c = 0;
	pid_t pid;

	assert_int_equal(pipe(up), 0);
	assert_int_equal(pipe(go), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct timespec ts = {0, 300L * 1000 * 1000};

		close(up[0]);
		close(go[1]);
		if (de_store_open(&cfg, &w, &e) < 0)
			_exit(1);
		if (write(up[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(2);
		nanosleep(&ts, NULL);
		_exit(0); /* the lock goes with the process, closed or not */
	}
	close(up[1]);
	close(go[0]);
	assert_int_equal(read(up[0], &c, 1), 1); /* the child holds it */
	assert_int_equal(write(go[1], "g", 1), 1);
	assert_int_equal(de_store_open(&cfg, &w, &e), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	de_store_close(w);
	close(up[0]);
	close(go[1]);
	free(path);
}

static void test_single_writer(void **state)
{
	(void)state;
	char *path = db_path("lock.sqlite");
	struct de_store *w = open_at(path, 0), *w2 = NULL, *rd = NULL;
	/* held: refused once the wait (SQLite's busy timeout) is over */
	struct de_store_config cfg = {.path = path, .wal_mode = true, .busy_timeout_ms = 50};
	struct de_error e = {0};
	char pid[32];

	assert_int_equal(de_store_open(&cfg, &w2, &e), -EBUSY);
	assert_null(w2);
	assert_non_null(strstr(e.message, "already open for writing"));
	snprintf(pid, sizeof(pid), "pid %ld", (long)getpid());
	assert_non_null(strstr(e.message, pid));
	cfg.read_only = true;
	assert_int_equal(de_store_open(&cfg, &rd, &e), 0); /* readers need no lock */
	de_store_close(rd);
	de_store_close(w);
	cfg.read_only = false;
	assert_int_equal(de_store_open(&cfg, &w2, &e), 0); /* released on close */
	de_store_close(w2);
	free(path);
}

/* ---- faults on real file systems (root only) ----------------------------- */

static bool need_root(const char *what)
{
	if (geteuid() == 0)
		return true;
	printf("# skipped %s: needs root to mount a file system\n", what);
	return false;
}

static void fat_batch(struct de_process_record *r, size_t n, uint32_t base, int64_t t)
{
	char big[1024];
	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (size_t i = 0; i < n; i++) {
		mk(&r[i], base + (uint32_t)i, t + (int64_t)i, t, t);
		free(r[i].command_line[1]);
		r[i].command_line[1] = strdup(big);
	}
}

/*
 * The writer's page cache is bounded at 4 MiB: one scan of 10,000
 * processes with 1 KiB command lines (about 14 MB of pages, all dirtied
 * in one transaction) raises SQLite's heap by less than 8 MiB; SQLite
 * writes what does not fit to the WAL.  (At 16 MiB the cache took the
 * whole scan: the worker's peak resident size, DESIGN.md's 40 MB budget.)
 * And the file is not memory-mapped: pages read through a mapping count
 * in the resident size too, beyond the cache's bound.
 */
static void test_writer_cache_bounded(void **state)
{
	(void)state;
	char *path = db_path("cache.sqlite");
	enum { N = 10000 };
	struct de_process_record *r = calloc(N, sizeof(*r));
	sqlite3_int64 cur, hi;

	assert_non_null(r);
	struct de_store *s = open_at(path, 0);
	fat_batch(r, N, 1, 1000);
	assert_int_equal(sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &cur, &hi, 1), SQLITE_OK);
	store_ok(s, r, N);
	assert_int_equal(sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &cur, &hi, 0), SQLITE_OK);
	printf("# SQLite's heap while storing 10,000 records of 1 KiB: %lld KiB at most\n",
	       (long long)(hi >> 10));
	assert_true(hi < (sqlite3_int64)8 << 20);
	assert_int_equal(count(de_store_db(s), "SELECT count(*) FROM processes"), N);
	/* a second scan reads the whole snapshot back */
	clear_many(r, N);
	fat_batch(r, N, 1, 1000);
	for (size_t i = 0; i < N; i++)
		r[i].scan_id = 2;
	store_ok(s, r, N);
	char line[4096];
	size_t mapped = 0;
	FILE *maps = fopen("/proc/self/maps", "re");
	assert_non_null(maps);
	while (fgets(line, sizeof(line), maps))
		mapped += strstr(line, "cache.sqlite") && !strstr(line, "cache.sqlite-shm");
	fclose(maps);
	assert_int_equal(mapped, 0);
	clear_many(r, N);
	de_store_close(s);
	free(r);
	free(path);
}

static void test_disk_full(void **state)
{
	(void)state;
	if (!need_root("disk full"))
		return;
	char *dir = db_path("full");
	char *path = db_path("full/events.sqlite");
	struct de_error e = {0};
	enum { N = 2000 };
	struct de_process_record *r = calloc(N, sizeof(*r));

	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(mount("tmpfs", dir, "tmpfs", 0, "size=1m"), 0);
	struct de_store *s = open_at(path, 0);
	sqlite3 *db = de_store_db(s);
	fat_batch(r, 20, 1, 1000);
	store_ok(s, r, 20);
	clear_many(r, 20);
	/* 2000 records of 1 KiB arguments cannot fit in 1 MiB; the new file, its WAL
	   and 20 records do */
	fat_batch(r, N, 1, 2000);
	int rc = de_store_processes(s, r[0].scan_id, r, N, &e);
	assert_int_equal(rc, -ENOSPC);
	assert_int_equal(e.category, DE_ERR_DATABASE);
	printf("# disk full reported as: %s\n", e.message);
	/* earlier data intact */
	assert_int_equal(count(db, "SELECT count(*) FROM processes"), 20);
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances"), 0);
	assert_int_equal(count(db, "SELECT value FROM store_state WHERE key='snapshot_time'"),
			 1000);
	/* the same processes as real-time events fail alike and change nothing */
	struct de_process_event *ev = calloc(N, sizeof(*ev));
	for (size_t i = 0; i < N; i++)
		ev[i] = exec_ev(r[i].pid, 2000, &r[i]);
	assert_int_equal(de_store_apply_events(s, 0, ev, N, &e), -ENOSPC);
	assert_int_equal(e.category, DE_ERR_DATABASE);
	assert_int_equal(count(db, "SELECT count(*) FROM processes"), 20);
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances"), 0);
	free(ev);
	/* room again: the same batch goes through on retry */
	assert_int_equal(mount("tmpfs", dir, "tmpfs", MS_REMOUNT, "size=64m"), 0);
	store_ok(s, r, N);
	assert_int_equal(count(db, "SELECT count(*) FROM processes"), N);
	assert_int_equal(de_store_last_diff(s).exited, 20); /* new start times: new instances */
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances"), 20);
	clear_many(r, N);
	de_store_close(s);
	/* and the file is sound */
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_integrity(db);
	sqlite3_close(db);
	assert_int_equal(umount2(dir, MNT_DETACH), 0);
	free(r);
	free(dir);
	free(path);
}

static void test_read_only_bind(void **state)
{
	(void)state;
	if (!need_root("read-only bind mount"))
		return;
	char *dir = db_path("ro");
	char *path = db_path("ro/events.sqlite");
	struct de_process_record r[3];
	struct de_error e = {0};

	assert_int_equal(mkdir(dir, 0700), 0);
	struct de_store *s = open_at(path, 0);
	mk_many(r, 3, 1000, 1);
	store_ok(s, r, 3);
	de_store_close(s);
	assert_int_equal(mount(dir, dir, "none", MS_BIND, NULL), 0);
	assert_int_equal(mount("none", dir, "none", MS_REMOUNT | MS_BIND | MS_RDONLY, NULL), 0);
	/* a writer is refused with a clear reason, the file untouched */
	struct de_store_config cfg = {.path = path, .wal_mode = true};
	s = NULL;
	assert_true(de_store_open(&cfg, &s, &e) < 0);
	assert_null(s);
	assert_int_equal(e.code, EROFS);
	assert_non_null(strstr(e.message, "Read-only file system"));
	/* readers still read */
	cfg.read_only = true;
	assert_int_equal(de_store_open(&cfg, &s, &e), 0);
	struct collected c = {0};
	struct de_process_query q = {0};
	assert_int_equal(query(s, &q, &c), 3);
	de_store_close(s);
	assert_int_equal(umount2(dir, MNT_DETACH), 0);
	clear_many(r, 3);
	free(dir);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshot_and_scans),
		cmocka_unit_test(test_refuses_foreign_files),
		cmocka_unit_test(test_single_writer),
		cmocka_unit_test(test_writer_lock_waits),
		cmocka_unit_test(test_disk_full),
		cmocka_unit_test(test_writer_cache_bounded),
		cmocka_unit_test(test_read_only_bind),
		cmocka_unit_test(test_background_checkpoints),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, teardown);
}
