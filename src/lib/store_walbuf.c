/*
 * store_walbuf.c — the writer's VFS (store_walbuf_vfs): the default VFS
 * with the write-ahead log's writes of one commit gathered into one.
 *
 * SQLite writes each WAL frame with two pwrite(2)s, its 24-byte header and
 * then its page; at 1,000 execs/s the exec path commits ~240 batches a
 * second of ~6 frames each, and every write went through the kernel's
 * buffered-write path on its own (the syscall, the inode lock, the page
 * cache folios it touches: a header shares its folio with a page's tail).
 * This VFS opens every file of the default VFS as that VFS does, but hands
 * the WAL file a buffer: writes that follow one another are copied into it
 * and written as one when the commit's last frame is complete (its header
 * carries the commit mark: the database size, non-zero), before SQLite
 * publishes the commit in the WAL index, so a reader never sees a frame the
 * file lacks.  A write elsewhere, a full buffer, and every read, sync,
 * truncate, size query or file control write the buffer out first, so the
 * file is what SQLite wrote whenever anything looks at it; an error of the
 * gathered write is the error of the write that completed the commit (the
 * commit fails, as it did when one of its writes failed).  Nothing waits
 * in the buffer after a commit returns: durability is the default VFS's.
 *
 * Ownership: the VFS is registered once per process (not as the default)
 * and never unregistered; each WAL file owns its buffer (freed at close).
 */
#include "store_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* the WAL's frame header and file header (SQLite's file format) */
#define WAL_FRAME_HDR 24
#define WAL_FILE_HDR  32
/* the most a WAL file gathers before it writes (a batch's commit is ~6 frames
   of 16 KiB; a full scan's larger commit goes in several writes) */
#define WALBUF_CAP ((size_t)512 * 1024)
/* the most one write of the default VFS takes: unix's seekAndWrite keeps
   the low 17 bits of the length (a write of 128 KiB writes nothing) */
#define WALBUF_CHUNK ((size_t)120 * 1024)

struct walbuf_file {
	sqlite3_file base;   /* pMethods: walbuf_io */
	sqlite3_file *real;  /* the default VFS's file, in the memory after this */
	unsigned char *buf;  /* writes gathered, from off on; NULL until the first */
	size_t len;	     /* bytes gathered */
	sqlite3_int64 off;   /* the file offset of buf[0] */
	bool commit_pending; /* a commit frame's header is gathered: write after its page */
};

/* Round up to 8 bytes: the default VFS's file follows ours in one allocation. */
#define WALBUF_HEAD ((sizeof(struct walbuf_file) + 7) & ~(size_t)7)

static uint64_t walbuf_writes; /* gathered writes made (atomic; store_walbuf_writes) */

static sqlite3_vfs *real_vfs(sqlite3_vfs *vfs)
{
	return vfs->pAppData;
}

/* Write what is gathered; SQLITE_OK when nothing is. */
static int walbuf_flush(struct walbuf_file *w)
{
	int rc;

	w->commit_pending = false;
	if (!w->len)
		return SQLITE_OK;
	rc = SQLITE_OK;
	for (size_t o = 0; o < w->len && rc == SQLITE_OK; o += WALBUF_CHUNK) {
		size_t n = w->len - o < WALBUF_CHUNK ? w->len - o : WALBUF_CHUNK;
		rc = w->real->pMethods->xWrite(w->real, w->buf + o, (int)n,
					       w->off + (sqlite3_int64)o);
		__atomic_add_fetch(&walbuf_writes, 1, __ATOMIC_RELAXED);
	}
	w->len = 0;
	return rc;
}

static int walbuf_close(sqlite3_file *f)
{
	struct walbuf_file *w = (struct walbuf_file *)f;
	int rc = walbuf_flush(w), rc2 = w->real->pMethods->xClose(w->real);

	free(w->buf);
	w->buf = NULL;
	return rc != SQLITE_OK ? rc : rc2;
}

static int walbuf_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
	struct walbuf_file *w = (struct walbuf_file *)f;
	int rc = walbuf_flush(w);

	return rc != SQLITE_OK ? rc : w->real->pMethods->xRead(w->real, p, n, off);
}

static int walbuf_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
	struct walbuf_file *w = (struct walbuf_file *)f;
	int rc;

	if (w->len && (off != w->off + (sqlite3_int64)w->len || w->len + (size_t)n > WALBUF_CAP) &&
	    (rc = walbuf_flush(w)) != SQLITE_OK)
		return rc;
	if (n <= 0 || (size_t)n > WALBUF_CHUNK)
		return w->real->pMethods->xWrite(w->real, p, n, off);
	if (!w->buf && !(w->buf = malloc(WALBUF_CAP)))
		return w->real->pMethods->xWrite(w->real, p, n, off);
	if (!w->len)
		w->off = off;
	memcpy(w->buf + w->len, p, (size_t)n);
	w->len += (size_t)n;
	if (n == WAL_FRAME_HDR) {
		/* a frame's header: bytes 4..7 are the database size after a
		   commit, 0 in every other frame */
		const unsigned char *h = p;
		w->commit_pending = (h[4] | h[5] | h[6] | h[7]) != 0;
		return SQLITE_OK;
	}
	/* a frame's page (or the file's header): the commit is complete */
	return w->commit_pending || n == WAL_FILE_HDR ? walbuf_flush(w) : SQLITE_OK;
}

static int walbuf_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	struct walbuf_file *w = (struct walbuf_file *)f;
	int rc = walbuf_flush(w);

	return rc != SQLITE_OK ? rc : w->real->pMethods->xTruncate(w->real, size);
}

static int walbuf_sync(sqlite3_file *f, int flags)
{
	struct walbuf_file *w = (struct walbuf_file *)f;
	int rc = walbuf_flush(w);

	return rc != SQLITE_OK ? rc : w->real->pMethods->xSync(w->real, flags);
}

static int walbuf_size(sqlite3_file *f, sqlite3_int64 *size)
{
	struct walbuf_file *w = (struct walbuf_file *)f;
	int rc = walbuf_flush(w);

	return rc != SQLITE_OK ? rc : w->real->pMethods->xFileSize(w->real, size);
}

static int walbuf_lock(sqlite3_file *f, int level)
{
	struct walbuf_file *w = (struct walbuf_file *)f;
	return w->real->pMethods->xLock(w->real, level);
}

static int walbuf_unlock(sqlite3_file *f, int level)
{
	struct walbuf_file *w = (struct walbuf_file *)f;
	return w->real->pMethods->xUnlock(w->real, level);
}

static int walbuf_reserved(sqlite3_file *f, int *out)
{
	struct walbuf_file *w = (struct walbuf_file *)f;
	return w->real->pMethods->xCheckReservedLock(w->real, out);
}

static int walbuf_fcntl(sqlite3_file *f, int op, void *arg)
{
	struct walbuf_file *w = (struct walbuf_file *)f;
	int rc = walbuf_flush(w);

	return rc != SQLITE_OK ? rc : w->real->pMethods->xFileControl(w->real, op, arg);
}

static int walbuf_sector(sqlite3_file *f)
{
	struct walbuf_file *w = (struct walbuf_file *)f;
	return w->real->pMethods->xSectorSize(w->real);
}

static int walbuf_device(sqlite3_file *f)
{
	struct walbuf_file *w = (struct walbuf_file *)f;
	return w->real->pMethods->xDeviceCharacteristics(w->real);
}

/* A WAL file has no shared memory or mapping of its own: version 1 methods. */
static const sqlite3_io_methods walbuf_io = {
	.iVersion = 1,
	.xClose = walbuf_close,
	.xRead = walbuf_read,
	.xWrite = walbuf_write,
	.xTruncate = walbuf_truncate,
	.xSync = walbuf_sync,
	.xFileSize = walbuf_size,
	.xLock = walbuf_lock,
	.xUnlock = walbuf_unlock,
	.xCheckReservedLock = walbuf_reserved,
	.xFileControl = walbuf_fcntl,
	.xSectorSize = walbuf_sector,
	.xDeviceCharacteristics = walbuf_device,
};

static int walbuf_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags,
		       int *out)
{
	sqlite3_vfs *real = real_vfs(vfs);
	struct walbuf_file *w = (struct walbuf_file *)f;
	int rc;

	/* every other file is the default VFS's own, in the same memory */
	if (!(flags & SQLITE_OPEN_WAL))
		return real->xOpen(real, name, f, flags, out);
	memset(w, 0, sizeof(*w));
	w->real = (sqlite3_file *)((char *)f + WALBUF_HEAD);
	rc = real->xOpen(real, name, w->real, flags, out);
	if (rc != SQLITE_OK) {
		if (w->real->pMethods)
			w->real->pMethods->xClose(w->real);
		w->base.pMethods = NULL; /* SQLite closes nothing more */
		return rc;
	}
	w->base.pMethods = &walbuf_io;
	return SQLITE_OK;
}

static int walbuf_delete(sqlite3_vfs *vfs, const char *name, int sync)
{
	return real_vfs(vfs)->xDelete(real_vfs(vfs), name, sync);
}

static int walbuf_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	return real_vfs(vfs)->xAccess(real_vfs(vfs), name, flags, out);
}

static int walbuf_fullpath(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	return real_vfs(vfs)->xFullPathname(real_vfs(vfs), name, n, out);
}

static int walbuf_random(sqlite3_vfs *vfs, int n, char *out)
{
	return real_vfs(vfs)->xRandomness(real_vfs(vfs), n, out);
}

static int walbuf_sleep(sqlite3_vfs *vfs, int us)
{
	return real_vfs(vfs)->xSleep(real_vfs(vfs), us);
}

static int walbuf_time(sqlite3_vfs *vfs, double *out)
{
	return real_vfs(vfs)->xCurrentTime(real_vfs(vfs), out);
}

static int walbuf_lasterr(sqlite3_vfs *vfs, int n, char *out)
{
	return real_vfs(vfs)->xGetLastError(real_vfs(vfs), n, out);
}

static int walbuf_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	return real_vfs(vfs)->xCurrentTimeInt64(real_vfs(vfs), out);
}

static sqlite3_vfs walbuf_vfs = {
	.iVersion = 2,
	.zName = STORE_WALBUF_VFS,
	.xOpen = walbuf_open,
	.xDelete = walbuf_delete,
	.xAccess = walbuf_access,
	.xFullPathname = walbuf_fullpath,
	.xRandomness = walbuf_random,
	.xSleep = walbuf_sleep,
	.xCurrentTime = walbuf_time,
	.xGetLastError = walbuf_lasterr,
	.xCurrentTimeInt64 = walbuf_time64,
};

static pthread_once_t walbuf_once = PTHREAD_ONCE_INIT;
static int walbuf_rc = SQLITE_ERROR;

static void walbuf_register(void)
{
	sqlite3_vfs *real = sqlite3_vfs_find(NULL);

	if (!real || real->iVersion < 2 || !real->xCurrentTimeInt64)
		return;
	walbuf_vfs.pAppData = real;
	walbuf_vfs.szOsFile = (int)WALBUF_HEAD + real->szOsFile;
	walbuf_vfs.mxPathname = real->mxPathname;
	walbuf_rc = sqlite3_vfs_register(&walbuf_vfs, 0);
}

const char *store_walbuf_vfs(void)
{
	pthread_once(&walbuf_once, walbuf_register);
	return walbuf_rc == SQLITE_OK ? STORE_WALBUF_VFS : NULL;
}

uint64_t store_walbuf_writes(void)
{
	return __atomic_load_n(&walbuf_writes, __ATOMIC_RELAXED);
}
