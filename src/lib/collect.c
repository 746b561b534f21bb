/*
 * collect.c — /proc enumeration (see collect.h).
 *
 * Files are opened relative to a directory descriptor of /proc with
 * O_CLOEXEC and read whole; stat is parsed around the *last* ')' because
 * comm may itself contain ')' or spaces or newlines.  An executable is
 * "deleted" when the inode behind /proc/PID/exe has no links left; only then
 * is the kernel's " (deleted)" suffix removed from the path, so a file that
 * really is named "x (deleted)" keeps its name.
 */
#include "daemoneye/collect.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PF_KTHREAD 0x00200000u

struct de_collector {
	int procfd; /* directory descriptor of proc_root */
	char root[PATH_MAX];
	int64_t btime_ms; /* boot time, ms since the epoch */
	long clk_tck;	  /* clock ticks per second */
	long page_size;
};

/* Read a whole file at dirfd/path into a growing buffer (NUL added). */
static int read_file(int dirfd, const char *path, char **buf, size_t *len, size_t cap)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	size_t size = 4096, n = 0;
	char *b;

	if (fd < 0)
		return -errno;
	b = malloc(size);
	if (!b) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		ssize_t r;
		if (n + 1 >= size) {
			size_t ns = size * 2;
			char *nb;
			if (size >= cap + 1)
				break; /* cap reached: caller sees n == cap */
			if (ns > cap + 1)
				ns = cap + 1;
			nb = realloc(b, ns);
			if (!nb) {
				free(b);
				close(fd);
				return -ENOMEM;
			}
			b = nb;
			size = ns;
		}
		r = read(fd, b + n, size - 1 - n);
		if (r < 0) {
			int e = errno;
			if (e == EINTR)
				continue;
			free(b);
			close(fd);
			return -e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
}

int de_collector_open(const char *proc_root, struct de_collector **out, struct de_error *err)
{
	struct de_collector *c = calloc(1, sizeof(*c));
	char *statbuf = NULL, *p;
	size_t n;
	int rc;

	if (!c)
		return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	snprintf(c->root, sizeof(c->root), "%s", proc_root ? proc_root : "/proc");
	c->procfd = open(c->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->procfd < 0) {
		rc = de_error_set(err, DE_ERR_IO, errno, "cannot open %s: %s", c->root,
				  strerror(errno));
		free(c);
		return rc;
	}
	c->clk_tck = sysconf(_SC_CLK_TCK);
	c->page_size = sysconf(_SC_PAGESIZE);
	if (read_file(c->procfd, "stat", &statbuf, &n, 1u << 20) == 0) {
		p = strstr(statbuf, "\nbtime ");
		if (p)
			c->btime_ms = strtoll(p + 7, NULL, 10) * 1000;
		free(statbuf);
	}
	*out = c;
	return 0;
}

void de_collector_close(struct de_collector *c)
{
	if (!c)
		return;
	if (c->procfd >= 0)
		close(c->procfd);
	free(c);
}

void de_process_list_clear(struct de_process_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->len; i++)
		de_process_record_clear(&l->items[i]);
	free(l->items);
	memset(l, 0, sizeof(*l));
}

int de_process_list_push(struct de_process_list *l, struct de_process_record *r)
{
	if (l->len == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 256;
		struct de_process_record *ni = realloc(l->items, nc * sizeof(*ni));
		if (!ni)
			return -ENOMEM;
		l->items = ni;
		l->cap = nc;
	}
	l->items[l->len++] = *r;
	memset(r, 0, sizeof(*r));
	return 0;
}

/* Fields of /proc/PID/stat that we use (see proc(5)). */
struct pstat {
	char state;
	int ppid, pgrp, session, tty_nr;
	unsigned flags;
	unsigned long long utime, stime;
	long nice, num_threads;
	unsigned long long starttime;
	long rss;
};

/* Parse stat; comm and comm_len point into buf.  -EINVAL if malformed. */
static int parse_stat(char *buf, size_t len, const char **comm, size_t *comm_len, struct pstat *ps)
{
	char *open = memchr(buf, '(', len), *close = NULL;
	char *p;

	for (char *q = buf + len; q > buf; q--)
		if (q[-1] == ')') {
			close = q - 1;
			break;
		}
	if (!open || !close || close < open)
		return -EINVAL;
	*comm = open + 1;
	*comm_len = (size_t)(close - open - 1);
	p = close + 1;
	/* state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
	 * cmajflt utime stime cutime cstime priority nice num_threads
	 * itrealvalue starttime vsize rss */
	int n = sscanf(p,
		       " %c %d %d %d %d %*d %u %*u %*u %*u %*u %llu %llu %*d %*d %*d %ld %ld "
		       "%*d %llu %*u %ld",
		       &ps->state, &ps->ppid, &ps->pgrp, &ps->session, &ps->tty_nr, &ps->flags,
		       &ps->utime, &ps->stime, &ps->nice, &ps->num_threads, &ps->starttime,
		       &ps->rss);
	return n == 12 ? 0 : -EINVAL;
}

static char *dupn(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* Split a NUL-separated cmdline into argv (exact bytes). */
static int split_cmdline(const char *buf, size_t n, char ***argv, size_t *argc)
{
	size_t count = 0, k = 0;
	char **v;

	for (size_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			count++;
	if (n > 0 && buf[n - 1] != '\0')
		count++; /* last argument rewritten without its NUL */
	v = calloc(count ? count : 1, sizeof(char *));
	if (!v)
		return -ENOMEM;
	for (size_t start = 0; start < n && k < count;) {
		size_t l = strnlen(buf + start, n - start);
		v[k] = dupn(buf + start, l);
		if (!v[k]) {
			for (size_t j = 0; j < k; j++)
				free(v[j]);
			free(v);
			return -ENOMEM;
		}
		k++;
		start += l + 1;
	}
	*argv = v;
	*argc = k;
	return 0;
}

/* Value of "Key:\t..." line in status text, or NULL. */
static const char *status_field(const char *status, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = status; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, key, kl) == 0 && p[kl] == ':')
			return p + kl + 1;
	return NULL;
}

static bool gone(int e)
{
	return e == -ENOENT || e == -ESRCH;
}

int de_collector_read(struct de_collector *c, pid_t pid, int64_t scan_id,
		      struct de_process_record *out, struct de_error *err)
{
	struct de_process_record r = {0};
	struct pstat ps = {0};
	char path[64], *statbuf = NULL, *status = NULL, *cmd = NULL;
	const char *comm;
	size_t n, comm_len;
	bool vanished = false, denied = false;
	json_t *pd = NULL;
	int rc;

	snprintf(path, sizeof(path), "%d/stat", (int)pid);
	rc = read_file(c->procfd, path, &statbuf, &n, 1u << 16);
	if (rc < 0) {
		if (rc == -ENOMEM)
			return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
		return -ESRCH;
	}
	if (parse_stat(statbuf, n, &comm, &comm_len, &ps) < 0) {
		free(statbuf);
		return -ESRCH; /* truncated read of a dying process */
	}
	r.pid = (uint32_t)pid;
	r.scan_id = scan_id;
	r.collection_time = de_now_ms();
	if (de_uuid_v4(&r.id) < 0)
		memset(&r.id, 0, sizeof(r.id));
	r.name = dupn(comm, comm_len);
	r.has_ppid = ps.ppid > 0 || pid == 1;
	r.ppid = (uint32_t)(ps.ppid > 0 ? ps.ppid : 0);
	r.has_start_time = c->clk_tck > 0;
	r.start_time =
		c->btime_ms + (int64_t)(ps.starttime * 1000 / (unsigned long long)c->clk_tck);
	r.has_memory_usage = true;
	r.memory_usage = (uint64_t)(ps.rss > 0 ? ps.rss : 0) * (uint64_t)c->page_size;
	r.accessible = true;
	pd = json_object();
	if (!r.name || !pd)
		goto nomem;

	/* status: uid and gid sets */
	snprintf(path, sizeof(path), "%d/status", (int)pid);
	rc = read_file(c->procfd, path, &status, &n, 1u << 16);
	if (rc == 0) {
		const char *uid = status_field(status, "Uid"), *gid = status_field(status, "Gid");
		unsigned long ru, eu, rg, eg;
		if (uid && sscanf(uid, "%lu %lu", &ru, &eu) == 2) {
			char b[24];
			snprintf(b, sizeof(b), "%lu", ru);
			r.user_id = strdup(b);
			json_object_set_new(pd, "euid", json_integer((json_int_t)eu));
		}
		if (gid && sscanf(gid, "%lu %lu", &rg, &eg) == 2) {
			json_object_set_new(pd, "gid", json_integer((json_int_t)rg));
			json_object_set_new(pd, "egid", json_integer((json_int_t)eg));
		}
	} else if (gone(rc)) {
		vanished = true;
	} else if (rc == -EACCES || rc == -EPERM) {
		denied = true;
	}

	/* cmdline: argv exactly, NUL-separated */
	snprintf(path, sizeof(path), "%d/cmdline", (int)pid);
	rc = read_file(c->procfd, path, &cmd, &n, DE_COLLECT_MAX_CMDLINE);
	if (rc == 0) {
		if (n >= DE_COLLECT_MAX_CMDLINE)
			json_object_set_new(pd, "cmdline_truncated", json_true());
		if (split_cmdline(cmd, n, &r.command_line, &r.command_line_len) < 0)
			goto nomem;
	} else if (gone(rc)) {
		vanished = true;
	} else if (rc == -EACCES || rc == -EPERM) {
		denied = true;
	}
	if (!r.command_line && !(r.command_line = calloc(1, sizeof(char *))))
		goto nomem;

	/* exe: the running image, and whether it is still on disk */
	if (!(ps.flags & PF_KTHREAD)) {
		char target[PATH_MAX + 1];
		ssize_t l;
		struct stat img = {0}, disk;

		snprintf(path, sizeof(path), "%d/exe", (int)pid);
		l = readlinkat(c->procfd, path, target, sizeof(target) - 1);
		if (l >= 0) {
			bool deleted = false;
			target[l] = '\0';
			if (fstatat(c->procfd, path, &img, 0) == 0) {
				deleted = img.st_nlink == 0;
				json_object_set_new(pd, "exe_inode",
						    json_integer((json_int_t)img.st_ino));
				json_object_set_new(pd, "exe_device",
						    json_integer((json_int_t)img.st_dev));
			}
			static const char suffix[] = " (deleted)";
			size_t sl = sizeof(suffix) - 1;
			if (deleted && (size_t)l > sl && strcmp(target + l - sl, suffix) == 0)
				target[l - (ssize_t)sl] = '\0';
			r.executable_path = strdup(target);
			if (!r.executable_path)
				goto nomem;
			/* file_exists reflects the path; "replaced" means the path
			 * now names another file than the running image */
			r.file_exists = stat(target, &disk) == 0;
			json_object_set_new(pd, "exe_deleted", json_boolean(deleted));
			json_object_set_new(
				pd, "exe_replaced",
				json_boolean(r.file_exists && (disk.st_ino != img.st_ino ||
							       disk.st_dev != img.st_dev)));
		} else if (errno == EACCES || errno == EPERM) {
			denied = true;
		} else if (errno == ENOENT || errno == ESRCH) {
			/* a zombie has no exe; a vanished process neither */
			if (ps.state != 'Z')
				vanished = true;
		}
	}
	if (vanished) {
		struct stat st;
		snprintf(path, sizeof(path), "%d", (int)pid);
		if (fstatat(c->procfd, path, &st, 0) < 0)
			goto dropped;
	}
	r.accessible = !denied;

	{
		char st[2] = {ps.state, '\0'};
		json_object_set_new(pd, "state", json_string(st));
	}
	json_object_set_new(pd, "threads", json_integer(ps.num_threads));
	json_object_set_new(pd, "pgrp", json_integer(ps.pgrp));
	json_object_set_new(pd, "session", json_integer(ps.session));
	json_object_set_new(pd, "tty_nr", json_integer(ps.tty_nr));
	json_object_set_new(pd, "nice", json_integer(ps.nice));
	json_object_set_new(pd, "kernel_thread", json_boolean(ps.flags & PF_KTHREAD));
	json_object_set_new(pd, "utime_ticks", json_integer((json_int_t)ps.utime));
	json_object_set_new(pd, "stime_ticks", json_integer((json_int_t)ps.stime));
	r.platform_data = pd;
	free(statbuf);
	free(status);
	free(cmd);
	*out = r;
	return 0;
dropped:
	rc = -ESRCH;
	goto fail;
nomem:
	rc = de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
fail:
	json_decref(pd);
	de_process_record_clear(&r);
	free(statbuf);
	free(status);
	free(cmd);
	return rc;
}

int de_collector_scan(struct de_collector *c, int64_t scan_id, struct de_process_list *out,
		      struct de_collect_stats *stats, struct de_error *err)
{
	struct de_collect_stats st = {0};
	struct dirent *de;
	DIR *d;
	int dfd, rc = 0;

	dfd = openat(c->procfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || !(d = fdopendir(dfd))) {
		rc = de_error_set(err, DE_ERR_IO, errno, "cannot list %s: %s", c->root,
				  strerror(errno));
		if (dfd >= 0)
			close(dfd);
		return rc;
	}
	while ((de = readdir(d))) {
		struct de_process_record r;
		char *end;
		long pid;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0 || pid > INT_MAX)
			continue;
		st.seen++;
		rc = de_collector_read(c, (pid_t)pid, scan_id, &r, err);
		if (rc == -ESRCH) {
			st.vanished++;
			rc = 0;
			continue;
		}
		if (rc < 0)
			break;
		if (!r.accessible)
			st.inaccessible++;
		if (de_process_list_push(out, &r) < 0) {
			de_process_record_clear(&r);
			rc = de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
			break;
		}
		st.recorded++;
	}
	closedir(d);
	if (stats)
		*stats = st;
	return rc;
}
