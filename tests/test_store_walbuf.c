/*
 * test_store_walbuf.c — the writer's VFS (src/lib/store_walbuf.c): a
 * commit's WAL frames reach the file in one write, before the commit is
 * visible; a reader on another connection sees every committed batch; a
 * failed write fails the commit and nothing of it is visible; a commit
 * larger than the buffer is written whole.
 *
 * Beneath it, as the default VFS, a counting VFS over the system's: it
 * counts the writes each WAL file receives, and can fail the next one
 * (SQLITE_FULL, as a full disk).  It is registered before the store first
 * opens, so the store's VFS is built over it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#define DE_TEST_NAME "store_walbuf"
#include "testutil.h"
#include "store_fixtures.h"
#include "store_int.h" /* store_walbuf_writes */

/* ---- the counting VFS ---------------------------------------------------- */

static sqlite3_vfs *sys_vfs;
static int wal_writes; /* writes the WAL files received */
static int wal_bytes;  /* bytes they wrote */
static bool fail_next; /* fail the next WAL write with SQLITE_FULL */

struct count_file {
	sqlite3_file base;
	sqlite3_file *real;
};
#define COUNT_HEAD ((sizeof(struct count_file) + 7) & ~(size_t)7)

static int c_close(sqlite3_file *f)
{
	struct count_file *c = (struct count_file *)f;
	return c->real->pMethods->xClose(c->real);
}
static int c_read(sqlite3_file *f, void *p, int n, sqlite3_int64 o)
{
	struct count_file *c = (struct count_file *)f;
	return c->real->pMethods->xRead(c->real, p, n, o);
}
static int c_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 o)
{
	struct count_file *c = (struct count_file *)f;
	if (fail_next) {
		fail_next = false;
		return SQLITE_FULL;
	}
	wal_writes++;
	wal_bytes += n;
	return c->real->pMethods->xWrite(c->real, p, n, o);
}
static int c_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	struct count_file *c = (struct count_file *)f;
	return c->real->pMethods->xTruncate(c->real, size);
}
static int c_sync(sqlite3_file *f, int flags)
{
	struct count_file *c = (struct count_file *)f;
	return c->real->pMethods->xSync(c->real, flags);
}
static int c_size(sqlite3_file *f, sqlite3_int64 *size)
{
	struct count_file *c = (struct count_file *)f;
	return c->real->pMethods->xFileSize(c->real, size);
}
static int c_lock(sqlite3_file *f, int l)
{
	struct count_file *c = (struct count_file *)f;
	return c->real->pMethods->xLock(c->real, l);
}
static int c_unlock(sqlite3_file *f, int l)
{
	struct count_file *c = (struct count_file *)f;
	return c->real->pMethods->xUnlock(c->real, l);
}
static int c_reserved(sqlite3_file *f, int *out)
{
	struct count_file *c = (struct count_file *)f;
	return c->real->pMethods->xCheckReservedLock(c->real, out);
}
static int c_fcntl(sqlite3_file *f, int op, void *arg)
{
	struct count_file *c = (struct count_file *)f;
	return c->real->pMethods->xFileControl(c->real, op, arg);
}
static int c_sector(sqlite3_file *f)
{
	struct count_file *c = (struct count_file *)f;
	return c->real->pMethods->xSectorSize(c->real);
}
static int c_device(sqlite3_file *f)
{
	struct count_file *c = (struct count_file *)f;
	return c->real->pMethods->xDeviceCharacteristics(c->real);
}

static const sqlite3_io_methods count_io = {
	.iVersion = 1,
	.xClose = c_close,
	.xRead = c_read,
	.xWrite = c_write,
	.xTruncate = c_truncate,
	.xSync = c_sync,
	.xFileSize = c_size,
	.xLock = c_lock,
	.xUnlock = c_unlock,
	.xCheckReservedLock = c_reserved,
	.xFileControl = c_fcntl,
	.xSectorSize = c_sector,
	.xDeviceCharacteristics = c_device,
};

static int c_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags, int *out)
{
	struct count_file *c = (struct count_file *)f;
	int rc;

	(void)vfs;
	if (!(flags & SQLITE_OPEN_WAL))
		return sys_vfs->xOpen(sys_vfs, name, f, flags, out);
	memset(c, 0, sizeof(*c));
	c->real = (sqlite3_file *)((char *)f + COUNT_HEAD);
	if ((rc = sys_vfs->xOpen(sys_vfs, name, c->real, flags, out)) != SQLITE_OK) {
		if (c->real->pMethods)
			c->real->pMethods->xClose(c->real);
		return rc;
	}
	c->base.pMethods = &count_io;
	return SQLITE_OK;
}
static int c_delete(sqlite3_vfs *v, const char *n, int s)
{
	(void)v;
	return sys_vfs->xDelete(sys_vfs, n, s);
}
static int c_access(sqlite3_vfs *v, const char *n, int f, int *o)
{
	(void)v;
	return sys_vfs->xAccess(sys_vfs, n, f, o);
}
static int c_full(sqlite3_vfs *v, const char *n, int l, char *o)
{
	(void)v;
	return sys_vfs->xFullPathname(sys_vfs, n, l, o);
}
static int c_random(sqlite3_vfs *v, int n, char *o)
{
	(void)v;
	return sys_vfs->xRandomness(sys_vfs, n, o);
}
static int c_sleep(sqlite3_vfs *v, int us)
{
	(void)v;
	return sys_vfs->xSleep(sys_vfs, us);
}
static int c_time(sqlite3_vfs *v, double *o)
{
	(void)v;
	return sys_vfs->xCurrentTime(sys_vfs, o);
}
static int c_lasterr(sqlite3_vfs *v, int n, char *o)
{
	(void)v;
	return sys_vfs->xGetLastError(sys_vfs, n, o);
}
static int c_time64(sqlite3_vfs *v, sqlite3_int64 *o)
{
	(void)v;
	return sys_vfs->xCurrentTimeInt64(sys_vfs, o);
}

static sqlite3_vfs count_vfs = {
	.iVersion = 2,
	.zName = "test-count",
	.xOpen = c_open,
	.xDelete = c_delete,
	.xAccess = c_access,
	.xFullPathname = c_full,
	.xRandomness = c_random,
	.xSleep = c_sleep,
	.xCurrentTime = c_time,
	.xGetLastError = c_lasterr,
	.xCurrentTimeInt64 = c_time64,
};

/* ---- helpers ------------------------------------------------------------- */

/* A batch of n execs of new pids from pid on, at t; their records in r. */
static int exec_batch(struct de_store *s, struct de_process_record *r, uint32_t pid, size_t n,
		      int64_t t)
{
	struct de_process_event ev[16];
	struct de_error e = {0};
	int64_t scan;

	assert_true(n <= 16);
	for (size_t i = 0; i < n; i++) {
		mk(&r[i], pid + (uint32_t)i, t, t, 0);
		ev[i] = exec_ev(pid + (uint32_t)i, t, &r[i]);
	}
	return de_store_event_scan(s, t, ev, n, &scan, &e);
}

/* The live rows another connection sees for pids [pid, pid + n). */
static int64_t seen(sqlite3 *db, uint32_t pid, size_t n)
{
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM processes WHERE pid BETWEEN %u AND %u",
		 pid, pid + (uint32_t)n - 1);
	return count(db, sql);
}

/* ---- tests ----------------------------------------------------------------- */

/*
 * Each event batch's commit is one write to the WAL (it was two per frame:
 * a header and a page), and a reader on another connection sees the batch
 * as soon as the call returns.
 */
static void test_commit_one_write(void **state)
{
	(void)state;
	char *path = db_path("one_write.sqlite");
	struct de_store *s = open_at(path, 3600);
	struct de_process_record base[10], r[4];
	sqlite3 *rd;

	assert_non_null(store_walbuf_vfs());
	mk_many(base, 10, 1000, 1);
	store_ok(s, base, 10);
	clear_many(base, 10);
	assert_int_equal(sqlite3_open_v2(path, &rd, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	for (int b = 0; b < 20; b++) {
		uint32_t pid = 100 + 4 * (uint32_t)b;
		int w0 = wal_writes, b0 = wal_bytes;
		uint64_t g0 = store_walbuf_writes();

		assert_int_equal(exec_batch(s, r, pid, 4, 2000 + b), 0);
		clear_many(r, 4);
		/* a commit of two frames at least (the scan's row, the rows):
		   one write of all of it */
		assert_true(wal_bytes - b0 >= 2 * (16384 + 24));
		assert_int_equal(wal_writes - w0, 1);
		assert_int_equal(store_walbuf_writes() - g0, 1);
		assert_int_equal(seen(rd, pid, 4), 4);
	}
	sqlite3_close(rd);
	de_store_close(s);
	free(path);
}

/*
 * A failed write fails the batch: nothing of it is visible, the store takes
 * the next batch, and the file is intact after a reopen.
 */
static void test_failed_write(void **state)
{
	(void)state;
	char *path = db_path("failed_write.sqlite");
	struct de_store *s = open_at(path, 3600);
	struct de_process_record base[10], r[4];
	sqlite3 *rd;

	mk_many(base, 10, 1000, 1);
	store_ok(s, base, 10);
	clear_many(base, 10);
	assert_int_equal(exec_batch(s, r, 100, 4, 2000), 0);
	clear_many(r, 4);
	fail_next = true;
	assert_int_equal(exec_batch(s, r, 200, 4, 2001), -ENOSPC);
	clear_many(r, 4);
	assert_false(fail_next);
	assert_int_equal(sqlite3_open_v2(path, &rd, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(seen(rd, 200, 4), 0);
	assert_int_equal(count(rd, "SELECT count(*) FROM scans WHERE started_at = 2001"), 0);
	/* the same events again, and more */
	assert_int_equal(exec_batch(s, r, 200, 4, 2002), 0);
	clear_many(r, 4);
	assert_int_equal(exec_batch(s, r, 300, 4, 2003), 0);
	clear_many(r, 4);
	assert_int_equal(seen(rd, 200, 4), 4);
	assert_int_equal(seen(rd, 300, 4), 4);
	sqlite3_close(rd);
	de_store_close(s);
	assert_int_equal(sqlite3_open_v2(path, &rd, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_integrity(rd);
	assert_int_equal(count(rd, "SELECT count(*) FROM processes"), 22);
	sqlite3_close(rd);
	free(path);
}

/* A commit far larger than the buffer (a first scan of 3,000 processes) is
   written whole, in several writes. */
static void test_large_commit(void **state)
{
	(void)state;
	enum { N = 3000 };
	char *path = db_path("large.sqlite");
	struct de_store *s = open_at(path, 3600);
	struct de_process_record *r = calloc(N, sizeof(*r));
	sqlite3 *rd;
	int w0 = wal_writes;

	assert_non_null(r);
	mk_many(r, N, 1000, 1);
	store_ok(s, r, N);
	clear_many(r, N);
	free(r);
	assert_true(wal_writes - w0 > 1);
	assert_int_equal(sqlite3_open_v2(path, &rd, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(count(rd, "SELECT count(*) FROM processes"), N);
	sqlite3_close(rd);
	de_store_close(s);
	assert_int_equal(sqlite3_open_v2(path, &rd, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_integrity(rd);
	assert_int_equal(count(rd, "SELECT count(*) FROM processes"), N);
	sqlite3_close(rd);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commit_one_write),
		cmocka_unit_test(test_failed_write),
		cmocka_unit_test(test_large_commit),
	};

	/* beneath the store's VFS: registered as the default before the store opens */
	sys_vfs = sqlite3_vfs_find(NULL);
	if (!sys_vfs)
		return 1;
	count_vfs.szOsFile = (int)COUNT_HEAD + sys_vfs->szOsFile;
	count_vfs.mxPathname = sys_vfs->mxPathname;
	if (sqlite3_vfs_register(&count_vfs, 1) != SQLITE_OK)
		return 1;
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
