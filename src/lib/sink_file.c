/*
 * sink_file.c — alerts appended to a file, one record per line (JSON lines
 * in the machine formats).
 *
 * The file is opened O_APPEND (each record, or each batch of records the
 * manager hands over at once, goes out in one write(2), so records from
 * another writer never interleave inside ours), created 0640
 * with its directory (0750) when missing, never followed through a
 * symbolic link.  SIGHUP (reopen) makes the next delivery reopen the path,
 * so logrotate can move the file away.  fsync: "always" after every write,
 * before any of its records is reported delivered (a delivered alert
 * survives a power cut), "interval" at most every fsync_interval_ms and at
 * close, "never" leaves it to the kernel.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemoneye/clock.h"
#include "daemoneye/fileio.h"
#include "daemoneye/sink.h"

enum fsync_policy { FS_NEVER, FS_INTERVAL, FS_ALWAYS };

struct file_sink {
	char *path;
	int fd; /* -1 when closed */
	enum fsync_policy fsync;
	uint64_t fsync_interval_ms;
	int64_t last_sync;  /* monotonic ms */
	bool dirty;	    /* written since the last fsync */
	bool partial;	    /* the last write stopped inside a record */
	atomic_bool reopen; /* set by SIGHUP's handler path, read by the worker */
	struct de_buf line; /* payload + '\n', reused */
};

static const char *const keys[] = {"path", "fsync", "fsync_interval_ms", NULL};

static int fi_configure(struct de_sink_conf *c, void **state)
{
	struct file_sink *s;
	const char *path, *fs;
	uint64_t iv;
	int rc;

	if ((rc = de_sink_conf_str(c, "path", true, &path)) < 0 ||
	    (rc = de_sink_conf_enum(c, "fsync", "never interval always", "interval", &fs)) < 0 ||
	    (rc = de_sink_conf_u64(c, "fsync_interval_ms", 1, 3600000, 1000, &iv)) < 0)
		return rc;
	if (path[0] != '/')
		return de_sink_conf_fail(c, "path", "'%s' must be an absolute path", path);
	if (!(s = calloc(1, sizeof(*s))) || !(s->path = strdup(path))) {
		free(s);
		return de_error_set(c->err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
	}
	s->fd = -1;
	s->fsync = !strcmp(fs, "always")  ? FS_ALWAYS
		   : !strcmp(fs, "never") ? FS_NEVER
					  : FS_INTERVAL;
	s->fsync_interval_ms = iv;
	s->line = (struct de_buf)DE_BUF_INIT(64u << 20);
	atomic_init(&s->reopen, false);
	*state = s;
	return 0;
}

/* Open (creating 0640, and the directory 0750) the path.  0 or -errno. */
static int open_path(struct file_sink *s)
{
	int fd = open(s->path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);

	if (fd < 0 && errno == ENOENT) {
		char *dir = strdup(s->path);
		int rc = dir ? de_make_dirs(dirname(dir), 0750) : -ENOMEM;
		free(dir);
		if (rc < 0)
			return rc;
		fd = open(s->path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			  0640);
		if (fd >= 0 && fchmod(fd, 0640) < 0) {
			int e = errno;
			close(fd);
			return -e;
		}
		if (fd < 0 && errno == EEXIST) /* created meanwhile by another writer */
			fd = open(s->path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	}
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	if (s->fd >= 0)
		close(s->fd);
	s->fd = fd;
	return 0;
}

static int fi_open(void *state, struct de_error *err)
{
	struct file_sink *s = state;
	int rc = open_path(s);

	if (rc < 0)
		return de_error_set(err, DE_ERR_ALERTING, -rc, "cannot open alert file %s: %s",
				    s->path, rc == -EINVAL ? "not a regular file" : strerror(-rc));
	s->last_sync = de_mono_ms();
	return 0;
}

static void sync_now(struct file_sink *s)
{
	if (s->fd >= 0 && s->dirty && fdatasync(s->fd) == 0) {
		s->dirty = false;
		s->last_sync = de_mono_ms();
	}
}

/* Every one of results[from..n) failed the same way. */
static void fail_rest(struct de_sink_result *results, size_t from, size_t n, enum de_sink_outcome o,
		      const char *why)
{
	for (size_t i = from; i < n; i++)
		de_sink_fail(&results[i], o, "%s", why);
}

static void fi_deliver(void *state, const struct de_sink_msg *m, struct de_sink_result *r);

static void fi_deliver_batch(void *state, const struct de_sink_msg *msgs, size_t n,
			     struct de_sink_result *results)
{
	struct file_sink *s = state;
	size_t off = 0, lead, done, pos;
	char why[512];
	int rc, e = 0;

	if (atomic_exchange(&s->reopen, false) || s->fd < 0) {
		sync_now(s);
		if ((rc = open_path(s)) < 0) {
			/* nothing more into the file that is no longer at the path (it
			 * may be deleted): every write fails, and is retried, until the
			 * path can be opened */
			if (s->fd >= 0)
				close(s->fd);
			s->fd = -1;
			snprintf(why, sizeof(why), "cannot open %s: %s", s->path,
				 rc == -EINVAL ? "not a regular file" : strerror(-rc));
			fail_rest(results, 0, n, DE_SINK_TRANSIENT, why);
			return;
		}
	}
	/* the records, each ended by a newline, after one that ends a record
	 * a failed write left unfinished */
	de_buf_reset(&s->line);
	lead = s->partial ? 1 : 0;
	rc = s->partial ? de_buf_putc(&s->line, '\n') : 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		if ((rc = de_buf_append(&s->line, msgs[i].payload, msgs[i].len)) == 0)
			rc = de_buf_putc(&s->line, '\n');
	if (rc < 0) {
		if (n == 1) {
			de_sink_fail(&results[0], DE_SINK_PERMANENT,
				     "record of %zu bytes is too large", msgs[0].len);
			return;
		}
		for (size_t i = 0; i < n; i++) /* too much at once: one by one */
			fi_deliver(state, &msgs[i], &results[i]);
		return;
	}
	while (off < s->line.len) {
		ssize_t w = write(s->fd, s->line.p + off, s->line.len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			e = w < 0 ? errno : EIO;
			break;
		}
		off += (size_t)w;
	}
	/* the records wholly written are delivered; a record partly written is
	 * ended before the next one starts */
	for (done = 0, pos = lead; done < n && pos + msgs[done].len + 1 <= off; done++)
		pos += msgs[done].len + 1;
	for (size_t i = 0; i < done; i++)
		results[i].outcome = DE_SINK_OK;
	if (off >= lead)
		s->partial = off > pos;
	if (done > 0)
		s->dirty = true;
	if (done < n) {
		snprintf(why, sizeof(why), "cannot write %s: %s", s->path, strerror(e ? e : EIO));
		fail_rest(results, done, n, DE_SINK_TRANSIENT, why);
		if (done == 0)
			return;
	}
	if (s->fsync == FS_ALWAYS ||
	    (s->fsync == FS_INTERVAL &&
	     de_mono_ms() - s->last_sync >= (int64_t)s->fsync_interval_ms)) {
		if (fdatasync(s->fd) < 0) {
			snprintf(why, sizeof(why), "cannot sync %s: %s", s->path, strerror(errno));
			fail_rest(results, 0, done, DE_SINK_TRANSIENT, why);
			return;
		}
		s->dirty = false;
		s->last_sync = de_mono_ms();
	}
}

static void fi_deliver(void *state, const struct de_sink_msg *m, struct de_sink_result *r)
{
	fi_deliver_batch(state, m, 1, r);
}

static bool fi_health(void *state, char *buf, size_t n)
{
	struct file_sink *s = state;
	struct stat st;
	bool ok = s->fd >= 0 && fstat(s->fd, &st) == 0 && st.st_nlink > 0;

	snprintf(buf, n, "%s %s", ok ? "appending to" : "not open:", s->path);
	return ok;
}

static void fi_reopen(void *state)
{
	struct file_sink *s = state;
	atomic_store(&s->reopen, true);
}

static void fi_close(void *state)
{
	struct file_sink *s = state;

	if (!s)
		return;
	sync_now(s);
	if (s->fd >= 0)
		close(s->fd);
	de_buf_free(&s->line);
	free(s->path);
	free(s);
}

const struct de_sink_ops de_sink_file_ops = {
	.type = "file",
	.keys = keys,
	.default_format = DE_FMT_JSON,
	.configure = fi_configure,
	.open = fi_open,
	.deliver = fi_deliver,
	.deliver_batch = fi_deliver_batch,
	.health = fi_health,
	.reopen = fi_reopen,
	.close = fi_close,
};
