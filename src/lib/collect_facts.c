/*
 * collect_facts.c — reading one process from /proc for the collector
 * (collect_int.h): stat parsed around its last ')', the command line split
 * and masked, the effective ids from the owner of /proc/PID (status only
 * for a set-id image), the cgroup v2 path (from a per-scan map built from
 * the cgroup2 mount's cgroup.procs files once a scan has read enough
 * /proc/PID/cgroup files), cwd, namespace inodes and the captured
 * environment.  A process that vanishes part-way is reported as gone.
 */
#include "collect_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemoneye/clock.h"
#include "daemoneye/identity.h"
#include "daemoneye/mask.h"

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* buf := decimal pid + suffix (buf holds at least 11 + strlen(suffix)). */
void collect_pid_path(char *buf, uint32_t pid, const char *suffix)
{
	char digits[10];
	size_t n = 0;

	do {
		digits[n++] = (char)('0' + pid % 10);
		pid /= 10;
	} while (pid);
	while (n)
		*buf++ = digits[--n];
	memcpy(buf, suffix, strlen(suffix) + 1);
}

/* Read a small file into a caller buffer (NUL added); bytes read or -errno. */
static ssize_t read_small(int dirfd, const char *path, char *buf, size_t size, bool seqfile)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	size_t n = 0;

	buf[0] = '\0'; /* what a failed read leaves */
	if (fd < 0)
		return -errno;
	while (n + 1 < size) {
		ssize_t r = read(fd, buf + n, size - 1 - n);
		if (r < 0) {
			int e = errno;
			if (e == EINTR)
				continue;
			close(fd);
			return -e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		/* stat and status are seq_files: a read with room to spare
		 * returns the whole text, so the read that would return 0 is
		 * saved (a third of the syscalls of a rescan) */
		if (seqfile && n + 1 < size)
			break;
	}
	close(fd);
	buf[n] = '\0';
	return (ssize_t)n;
}

/*
 * Read dirfd/path whole into b (NUL added), at most cap bytes; *len ==
 * cap means the file was cut.  cmdline and the one-record seq_files (stat,
 * status, /proc/PID/cgroup) return all there is to a read with room to
 * spare, so with `short_eof` a short read ends the file without the read
 * that would return 0.  Multi-record seq_files (mountinfo, cgroup.procs)
 * return about a page per read and are read until 0.
 */
static int read_buf(struct collect_buf *b, int dirfd, const char *path, size_t cap, bool short_eof,
		    size_t *len)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	size_t n = 0;

	*len = 0; /* what a failed read leaves */
	if (fd < 0)
		return -errno;
	for (;;) {
		size_t want;
		ssize_t r;
		if (n + 1 >= b->cap) {
			size_t ns = b->cap ? b->cap * 2 : 64u << 10;
			char *nb;
			if (b->cap >= cap + 1)
				break; /* cap reached */
			if (ns > cap + 1)
				ns = cap + 1;
			if (!(nb = realloc(b->p, ns))) {
				close(fd);
				return -ENOMEM;
			}
			b->p = nb;
			b->cap = ns;
		}
		want = b->cap - 1 - n;
		r = read(fd, b->p + n, want);
		if (r < 0) {
			int e = errno;
			if (e == EINTR)
				continue;
			close(fd);
			return -e;
		}
		n += (size_t)r;
		if (r == 0 || (short_eof && (size_t)r < want))
			break;
	}
	close(fd);
	b->p[n] = '\0';
	*len = n;
	return 0;
}

/* Free what b holds. */
void collect_buf_free(struct collect_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->cap = 0;
}

/* A buffer grown past 1 MiB by a huge command line is not kept. */
static void buf_trim(struct collect_buf *b)
{
	if (b->cap > (1u << 20))
		collect_buf_free(b);
}

/* ---- parsing --------------------------------------------------------------- */

/* The next space-separated decimal (a '-' sets *neg) after *p. */
static bool next_num(const char **p, const char *end, unsigned long long *v, bool *neg)
{
	const char *q = *p;
	unsigned long long x = 0;

	while (q < end && *q == ' ')
		q++;
	*neg = q < end && *q == '-';
	if (*neg)
		q++;
	if (q >= end || *q < '0' || *q > '9')
		return false;
	while (q < end && *q >= '0' && *q <= '9')
		x = x * 10 + (unsigned)(*q++ - '0');
	*v = x;
	*p = q;
	return true;
}

/* As signed; negated in unsigned arithmetic, so no value overflows. */
static long long sval(unsigned long long x, bool neg)
{
	return (long long)(neg ? 0ULL - x : x);
}

/*
 * Parse stat; comm and comm_len point into buf.  -EINVAL if malformed.
 * Hand-written rather than sscanf: it is most of a rescan's own CPU.
 */
static int parse_stat(char *buf, size_t len, const char **comm, size_t *comm_len, struct pstat *ps)
{
	/* after the comm: state, then (1-based) ppid pgrp session tty_nr tpgid
	 * flags minflt cminflt majflt cmajflt utime stime cutime cstime
	 * priority nice num_threads itrealvalue starttime vsize rss rsslim
	 * startcode endcode startstack */
	enum {
		PPID = 1,
		PGRP,
		SESSION,
		TTY,
		FLAGS = 6,
		UTIME = 11,
		STIME,
		NICE = 16,
		THREADS,
		START = 19,
		RSS = 21,
		SCODE = 23,
		SSTACK = 25,
		NF
	};
	/* the comm may itself hold ')': the last one ends it */
	char *open = memchr(buf, '(', len), *close = memrchr(buf, ')', len);
	const char *p, *end = buf + len;
	unsigned long long f[NF] = {0};
	bool neg[NF] = {0};
	size_t k;

	if (!open || !close || close < open)
		return -EINVAL;
	*comm = open + 1;
	*comm_len = (size_t)(close - open - 1);
	p = close + 1;
	while (p < end && *p == ' ')
		p++;
	if (p >= end)
		return -EINVAL;
	ps->state = *p++;
	for (k = 1; k < NF; k++)
		if (!next_num(&p, end, &f[k], &neg[k]))
			break;
	if (k <= RSS)
		return -EINVAL;
	ps->ppid = (int)sval(f[PPID], neg[PPID]);
	ps->pgrp = (int)sval(f[PGRP], neg[PGRP]);
	ps->session = (int)sval(f[SESSION], neg[SESSION]);
	ps->tty_nr = (int)sval(f[TTY], neg[TTY]);
	ps->flags = (unsigned)f[FLAGS];
	ps->utime = f[UTIME];
	ps->stime = f[STIME];
	ps->nice = (long)sval(f[NICE], neg[NICE]);
	ps->num_threads = (long)sval(f[THREADS], neg[THREADS]);
	ps->starttime = f[START];
	ps->rss = (long)sval(f[RSS], neg[RSS]);
	/* hidden (0) without ptrace access; absent on old kernels */
	ps->startcode = k > SSTACK ? f[SCODE] : 0;
	ps->startstack = k > SSTACK ? f[SSTACK] : 0;
	return 0;
}

char *collect_dupn(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* Split a NUL-separated cmdline into argv (exact bytes). */
int collect_split_cmdline(const char *buf, size_t n, char ***argv, size_t *argc)
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
		v[k] = collect_dupn(buf + start, l);
		if (!v[k]) {
			collect_free_argv(v, k);
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

/* The first id of a status "Uid:"/"Gid:" line's value (tab-separated). */
static bool status_id(const char *s, uint32_t *out)
{
	uint64_t v = 0;

	while (*s == '\t' || *s == ' ')
		s++;
	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++)
		if ((v = v * 10 + (uint64_t)(*s - '0')) > UINT32_MAX)
			return false;
	*out = (uint32_t)v;
	return true;
}

static bool gone(int e)
{
	return e == -ENOENT || e == -ESRCH;
}

/* ---- cgroups ----------------------------------------------------------------- */

#define CG_MAX_CGROUPS 65536 /* a bigger tree is not walked */
#define CG_MAX_DEPTH   64

void collect_cg_reset(struct cgmap *m)
{
	for (size_t i = 0; i < m->npaths; i++)
		free(m->paths[i]);
	free(m->paths);
	free(m->pid);
	free(m->path);
	memset(m, 0, sizeof(*m));
}

static int cg_grow(struct cgmap *m)
{
	size_t nn = m->nslots ? m->nslots * 2 : 4096;
	uint32_t *np = calloc(nn, sizeof(*np)), *nq = calloc(nn, sizeof(*nq));

	if (!np || !nq) {
		free(np);
		free(nq);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->nslots; i++) {
		size_t j;
		if (!m->pid[i])
			continue;
		for (j = collect_pid_slot(m->pid[i], nn - 1); np[j]; j = (j + 1) & (nn - 1))
			;
		np[j] = m->pid[i];
		nq[j] = m->path[i];
	}
	free(m->pid);
	free(m->path);
	m->pid = np;
	m->path = nq;
	m->nslots = nn;
	return 0;
}

/* pid is in cgroup paths[path]; listed twice (moved during the walk, or a
 * threaded subtree) it is ambiguous.  0 or -ENOMEM. */
static int cg_put(struct cgmap *m, uint32_t pid, uint32_t path)
{
	size_t j;

	if ((m->used + 1) * 2 > m->nslots && cg_grow(m) < 0)
		return -ENOMEM;
	for (j = collect_pid_slot(pid, m->nslots - 1); m->pid[j]; j = (j + 1) & (m->nslots - 1))
		if (m->pid[j] == pid) {
			m->path[j] = CG_AMBIGUOUS;
			return 0;
		}
	m->pid[j] = pid;
	m->path[j] = path;
	m->used++;
	return 0;
}

/* The path the walk found for pid, NULL when absent or ambiguous. */
static const char *cg_get(const struct cgmap *m, uint32_t pid)
{
	if (!m->nslots)
		return NULL;
	for (size_t j = collect_pid_slot(pid, m->nslots - 1); m->pid[j];
	     j = (j + 1) & (m->nslots - 1))
		if (m->pid[j] == pid)
			return m->path[j] == CG_AMBIGUOUS ? NULL : m->paths[m->path[j]];
	return NULL;
}

/*
 * Record the processes of the cgroup directory open at dfd (rel is its
 * path, "" for the root of the mount), then walk its children.  0,
 * -ENOMEM, or -E2BIG for a tree too big or too deep.
 */
static int cg_walk(struct de_collector *c, int dfd, char *rel, size_t rl, int depth)
{
	struct cgmap *m = &c->cg;
	uint32_t idx = CG_AMBIGUOUS;
	struct dirent *de;
	size_t n;
	DIR *d;
	int rc, sub;

	if (++m->ncgroups > CG_MAX_CGROUPS || depth > CG_MAX_DEPTH)
		return -E2BIG;
	/* a "domain threaded" cgroup lists every process of its threaded
	 * subtree, though /proc/PID/cgroup may name a threaded child: those
	 * are marked ambiguous and read one by one */
	if (rl == 0 || read_buf(&c->rb, dfd, "cgroup.type", 64, false, &n) < 0 ||
	    strncmp(c->rb.p, "domain threaded", 15) != 0) {
		if (m->npaths == m->cappaths) {
			size_t nc = m->cappaths ? m->cappaths * 2 : 64;
			char **np = realloc(m->paths, nc * sizeof(*np));
			if (!np)
				return -ENOMEM;
			m->paths = np;
			m->cappaths = nc;
		}
		if (!(m->paths[m->npaths] = strdup(rl ? rel : "/")))
			return -ENOMEM;
		idx = (uint32_t)m->npaths++;
	}
	/* a threaded cgroup refuses (EOPNOTSUPP), a removed one is gone:
	 * whoever is not listed is read one by one */
	rc = read_buf(&c->rb, dfd, "cgroup.procs", 64u << 20, false, &n);
	if (rc == -ENOMEM)
		return rc;
	if (rc == 0 && n >= (64u << 20))
		return -E2BIG;
	for (size_t at = 0; rc == 0 && at < n;) {
		char *end;
		unsigned long pid = strtoul(c->rb.p + at, &end, 10);
		if (end == c->rb.p + at)
			break;
		if (pid > 0 && pid <= UINT32_MAX && cg_put(m, (uint32_t)pid, idx) < 0)
			return -ENOMEM;
		at = (size_t)(end - c->rb.p) + 1;
	}

	/* openat ".", not dup: procmond's seccomp allowlist has no dup */
	if ((sub = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return 0; /* children unknown: their processes are read one by one */
	if (!(d = fdopendir(sub))) {
		close(sub);
		return 0;
	}
	rc = 0;
	while (rc == 0 && (de = readdir(d))) {
		size_t nl = strlen(de->d_name);
		int cfd;
		if (de->d_type != DT_DIR || strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0 || rl + 1 + nl >= PATH_MAX)
			continue;
		if ((cfd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
			continue;
		rel[rl] = '/';
		memcpy(rel + rl + 1, de->d_name, nl + 1);
		rc = cg_walk(c, cfd, rel, rl + 1 + nl, depth + 1);
		rel[rl] = '\0';
		close(cfd);
	}
	closedir(d);
	return rc;
}

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void unescape_octal(char *s)
{
	char *o = s;
	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/*
 * The mount point of a cgroup2 mount whose root is our cgroup namespace's
 * root (mountinfo shows "/" then), so that paths below it are the ones
 * /proc/PID/cgroup prints.  0, or -ENOENT.
 */
static int cg_mount(struct de_collector *c, char *out, size_t size)
{
	size_t n;

	if (read_buf(&c->rb, c->procfd, "self/mountinfo", 16u << 20, false, &n) < 0)
		return -ENOENT;
	for (char *line = c->rb.p, *next; line && *line; line = next) {
		char *f[5], *sep, *save = NULL;
		int k = 0;
		if ((next = strchr(line, '\n')))
			*next++ = '\0';
		/* "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - TYPE ..." */
		if (!(sep = strstr(line, " - ")) || strncmp(sep + 3, "cgroup2 ", 8) != 0)
			continue;
		*sep = '\0';
		for (char *t = strtok_r(line, " ", &save); t && k < 5;
		     t = strtok_r(NULL, " ", &save))
			f[k++] = t;
		if (k < 5 || strcmp(f[3], "/") != 0)
			continue;
		unescape_octal(f[4]);
		if (strlen(f[4]) >= size)
			continue;
		memcpy(out, f[4], strlen(f[4]) + 1);
		return 0;
	}
	return -ENOENT;
}

/* Build the scan's map (once); on any failure it stays empty. */
static void cg_build(struct de_collector *c)
{
	struct cgmap *m = &c->cg;
	char mnt[PATH_MAX], rel[PATH_MAX] = "";
	unsigned long long hz = (unsigned long long)c->clk_tck;
	struct timespec ts;
	int dfd, rc;

	m->built = true;
	if (c->clk_tck <= 0 || cg_mount(c, mnt, sizeof(mnt)) < 0)
		return;
	/* a process that started in this clock tick or later may hold a pid
	 * the walk saw with another process: it is read one by one */
	clock_gettime(CLOCK_BOOTTIME, &ts);
	m->before_ticks = (unsigned long long)ts.tv_sec * hz +
			  (unsigned long long)ts.tv_nsec * hz / 1000000000ULL;
	if ((dfd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return;
	rc = cg_walk(c, dfd, rel, 0, 0);
	close(dfd);
	buf_trim(&c->rb);
	if (rc < 0) {
		collect_cg_reset(m);
		m->built = true;
	}
}

/*
 * Read /proc/PID/cgroup for the path of its cgroup v2 line ("0::PATH",
 * exact bytes; the kernel refuses '\n' in cgroup names, so lines split
 * exactly).  v1 hierarchies' lines are not kept.  0, -ENOMEM, or the
 * read's -errno.
 */
static int read_cgroup(struct de_collector *c, struct collect_buf *b, uint32_t pid, struct inst *e)
{
	char path[64];
	size_t n;
	int rc;

	collect_pid_path(path, pid, "/cgroup");
	if ((rc = read_buf(b, c->procfd, path, 1u << 20, true, &n)) < 0)
		return rc;
	for (size_t at = 0; at < n;) {
		const char *l = b->p + at, *nl = memchr(l, '\n', n - at);
		size_t ll = nl ? (size_t)(nl - l) : n - at;
		at += ll + 1;
		if (ll >= 3 && memcmp(l, "0::", 3) == 0)
			return (e->cgroup = collect_dupn(l + 3, ll - 3)) ? 0 : -ENOMEM;
	}
	return 0;
}

/*
 * e->cgroup of a process read in full.  Within a scan, after
 * opt.cgroup_walk_after processes were read one by one, the cgroup2 tree
 * is walked once and the rest come from it when it lists them exactly once
 * and they started before the walk; anything else reads /proc/PID/cgroup.
 * 0, -ENOMEM or the read's -errno.
 */
static int cgroup_of(struct de_collector *c, struct collect_buf *b, uint32_t pid, struct inst *e)
{
	free(e->cgroup);
	e->cgroup = NULL;
	/* (reader threads run only after the map was built or declared
	   empty for the scan: they never get here with built false) */
	if (c->in_scan && !c->cg.built && c->cg_reads >= c->opt.cgroup_walk_after)
		cg_build(c);
	if (c->cg.built && e->ps.starttime < c->cg.before_ticks) {
		const char *p = cg_get(&c->cg, pid);
		if (p)
			return (e->cgroup = strdup(p)) ? 0 : -ENOMEM;
	}
	__atomic_fetch_add(&c->cg_reads, 1, __ATOMIC_RELAXED);
	return read_cgroup(c, b, pid, e);
}

void collect_cg_build(struct de_collector *c)
{
	if (!c->cg.built)
		cg_build(c);
}

/* ---- reading one process ------------------------------------------------------ */

static void take_stat(struct de_collector *c, struct inst *e, const struct pstat *ps, int64_t now)
{
	unsigned long long ticks = ps->utime + ps->stime;

	e->has_cpu = false;
	if (e->prev_ns && now > e->prev_ns && ticks >= e->prev_ticks && c->clk_tck > 0) {
		double secs = (double)(now - e->prev_ns) / 1e9;
		e->cpu = (double)(ticks - e->prev_ticks) / (double)c->clk_tck / secs * 100.0;
		e->has_cpu = true;
	}
	e->prev_ticks = ticks;
	e->prev_ns = now;
	e->ps = *ps;
	e->collection_time = de_now_ms();
}

/* Real uid and gid from status ("Uid:" and "Gid:", first column). */
static int read_real_ids(struct de_collector *c, uint32_t pid, struct inst *e)
{
	char path[64], status[4096];
	uint32_t uid, gid;
	const char *u, *g;
	ssize_t sn;

	collect_pid_path(path, pid, "/status");
	sn = read_small(c->procfd, path, status, sizeof(status), true);
	if (sn < 0)
		return (int)sn;
	u = status_field(status, "Uid");
	g = status_field(status, "Gid");
	if (u && g && status_id(u, &uid) && status_id(g, &gid)) {
		e->ruid = uid;
		e->rgid = gid;
		e->has_real_ids = true;
	}
	return 0;
}

/* A /proc/PID/ns/NAME link's inode ("mnt:[4026531840]"), 0 when unreadable. */
static uint32_t ns_inode(struct de_collector *c, uint32_t pid, const char *which)
{
	char path[64], link[64], *b;
	ssize_t l;

	collect_pid_path(path, pid, which);
	l = readlinkat(c->procfd, path, link, sizeof(link) - 1);
	if (l <= 0)
		return 0;
	link[l] = '\0';
	b = strchr(link, '[');
	return b ? (uint32_t)strtoul(b + 1, NULL, 10) : 0;
}

/* The namespace inodes of pid into e (has_ns when all four were read). */
static void read_ns(struct de_collector *c, uint32_t pid, struct inst *e)
{
	static const char *const ns[4] = {"/ns/pid", "/ns/mnt", "/ns/net", "/ns/user"};

	e->has_ns = true;
	for (int i = 0; i < 4; i++)
		e->has_ns &= (e->ns[i] = ns_inode(c, pid, ns[i])) != 0;
}

/* pid's working directory into e->cwd (NULL when unreadable).  0, -ENOMEM,
   or -ESRCH when the process is gone. */
static int read_cwd(struct de_collector *c, uint32_t pid, struct inst *e)
{
	char path[64], target[PATH_MAX + 1];
	ssize_t l;

	free(e->cwd);
	e->cwd = NULL;
	collect_pid_path(path, pid, "/cwd");
	l = readlinkat(c->procfd, path, target, sizeof(target) - 1);
	if (l >= 0) {
		target[l] = '\0';
		return (e->cwd = strdup(target)) ? 0 : -ENOMEM;
	}
	return gone(-errno) ? -ESRCH : 0;
}

/*
 * The variables options.env_names names from pid's environment into e->env
 * (replacing it), masked.  0 (also when unreadable), -ENOMEM, or -ESRCH when
 * the process is gone.
 */
static int read_env(struct de_collector *c, struct collect_buf *b, uint32_t pid, struct inst *e)
{
	char path[64];
	size_t n;
	int rc;

	free(e->env);
	e->env = NULL;
	e->env_truncated = false;
	if (!c->opt.nenv_names)
		return 0;
	collect_pid_path(path, pid, "/environ");
	if ((rc = read_buf(b, c->procfd, path, DE_COLLECT_MAX_CMDLINE, true, &n)) < 0)
		return rc == -ENOMEM || gone(rc) ? rc : 0;
	rc = de_identity_env(b->p, n, c->opt.env_names, c->opt.nenv_names, c->opt.mask,
			     c->opt.mask_flags, c->opt.mask_flags ? c->opt.nmask_flags : 0, &e->env,
			     &e->env_truncated);
	buf_trim(b);
	return rc;
}

/*
 * pid's command line into e (exact bytes, split, masked), replacing what e
 * had.  0, -ENOMEM, or the read's -errno (e's argv then empty).
 */
static int read_cmdline(struct de_collector *c, struct collect_buf *b, uint32_t pid, struct inst *e)
{
	char path[64];
	size_t n = 0;
	int rc;

	collect_free_argv(e->argv, e->argc);
	e->argv = NULL;
	e->argc = 0;
	e->cmd_truncated = false;
	e->masked = 0;
	collect_pid_path(path, pid, "/cmdline");
	if ((rc = read_buf(b, c->procfd, path, DE_COLLECT_MAX_CMDLINE, true, &n)) < 0)
		return rc;
	e->cmd_truncated = n >= DE_COLLECT_MAX_CMDLINE;
	rc = collect_split_cmdline(b->p, n, &e->argv, &e->argc);
	buf_trim(b);
	if (rc < 0)
		return rc;
	if (c->opt.mask) {
		size_t nf = c->opt.mask_flags ? c->opt.nmask_flags : 0;
		if ((rc = de_mask_argv(e->argv, e->argc, c->opt.mask_flags, nf)) < 0)
			return rc;
		e->masked = rc;
	}
	return 0;
}

/*
 * cwd, the namespaces and (with options.env_names) the captured
 * environment of pid into e.  What may not be read stays unknown.  0,
 * -ENOMEM, or -ESRCH when the process is gone.
 */
static int read_more(struct de_collector *c, struct collect_buf *b, uint32_t pid, struct inst *e)
{
	int rc;

	e->path_truncated = false;
	if ((rc = read_cwd(c, pid, e)) < 0)
		return rc;
	read_ns(c, pid, e);
	return read_env(c, b, pid, e);
}

/* The container of e's cgroup path (none when it has no cgroup or names none). */
void collect_inst_container(struct inst *e)
{
	char id[DE_CONTAINER_ID_LEN + 1];
	const char *rt = NULL;

	e->runtime = NULL;
	e->container_at = 0;
	if (e->cgroup && de_identity_container(e->cgroup, id, &rt)) {
		const char *at = strstr(e->cgroup, id);
		if (at && at - e->cgroup < UINT32_MAX) {
			e->container_at = (uint32_t)(at - e->cgroup) + 1;
			e->runtime = rt;
		}
	}
}

/*
 * Read the ids, cmdline, exe and cgroup of pid into e (whose stat is
 * fresh).  status is not read (it costs more than stat, cmdline and exe
 * together): the effective ids are the owner of /proc/PID, and only a
 * set-id image, whose real ids differ from the effective ones by design,
 * has status read for them.  -ESRCH when the process vanished, -ENOMEM.
 */
static int read_rest(struct de_collector *c, struct collect_buf *b, uint32_t pid, struct inst *e,
		     bool memo, bool check)
{
	char path[64];
	bool vanished = false, denied = false;
	struct stat st;
	int rc;

	/* /proc/PID is owned by the effective uid and gid, also for a
	 * non-dumpable process (only the files inside turn to root) */
	collect_pid_path(path, pid, "");
	if (fstatat(c->procfd, path, &st, 0) < 0)
		return -ESRCH;
	e->has_ids = true;
	e->euid = (uint32_t)st.st_uid;
	e->egid = (uint32_t)st.st_gid;
	e->has_real_ids = false;

	/* cmdline: argv exactly, NUL-separated */
	rc = read_cmdline(c, b, pid, e);
	if (rc == -ENOMEM)
		return rc;
	if (gone(rc))
		vanished = true;
	else if (rc == -EACCES || rc == -EPERM)
		denied = true;

	/* exe: the running image, and whether it is still on disk */
	free(e->exe);
	e->exe = NULL;
	e->has_image = e->deleted = e->replaced = e->file_exists = false;
	if (!(e->ps.flags & PF_KTHREAD)) {
		rc = collect_read_exe(c, pid, e);
		if (rc == -ENOMEM)
			return rc;
		if (rc == -EACCES)
			denied = true;
		else if (rc == -ESRCH && e->ps.state != 'Z')
			vanished = true; /* a zombie has no exe */
		if (rc == 0 && check && (rc = collect_check_exe(c, memo, e)) < 0)
			return rc;
	}
	if (e->has_image && (e->image_mode & (S_ISUID | S_ISGID)) && gone(read_real_ids(c, pid, e)))
		vanished = true;

	/* cgroup: on first sight, exec and full refresh; never on a rescan */
	rc = cgroup_of(c, b, pid, e);
	if (rc == -ENOMEM)
		return rc;
	if (gone(rc))
		vanished = true;
	collect_inst_container(e);
	/* the same for cwd, the namespaces and the captured environment */
	if ((rc = read_more(c, b, pid, e)) == -ENOMEM)
		return rc;
	if (gone(rc))
		vanished = true;

	collect_pid_path(path, pid, "");
	if (vanished && fstatat(c->procfd, path, &st, 0) < 0)
		return -ESRCH;
	e->accessible = !denied;
	return 0;
}

/*
 * Read pid into e (NULL: its table entry, found or added here): stat
 * always; everything else when the instance is new, has exec'd, or full is
 * set, through b, the executable's path checked when check is set.
 * Returns the entry, or NULL with *rc = -ESRCH (gone) or -ENOMEM.
 */
static struct inst *read_one(struct de_collector *c, struct collect_buf *b, struct inst *e,
			     uint32_t pid, bool full, bool memo, bool check, bool *reused, int *rc)
{
	char path[64], buf[1024];
	const char *comm;
	size_t comm_len;
	struct pstat ps = {0};
	ssize_t n;
	int64_t now;

	*reused = false;
	collect_pid_path(path, pid, "/stat");
	n = read_small(c->procfd, path, buf, sizeof(buf), true);
	now = mono_ns();
	if (n < 0) {
		*rc = n == -ENOMEM ? -ENOMEM : -ESRCH;
		return NULL;
	}
	if (parse_stat(buf, (size_t)n, &comm, &comm_len, &ps) < 0) {
		*rc = -ESRCH; /* truncated read of a dying process */
		return NULL;
	}
	if (!e)
		e = collect_table_find(c, pid);
	if (e && e->ps.starttime == ps.starttime && e->name && e->name_len == comm_len &&
	    memcmp(e->name, comm, comm_len) == 0 && e->ps.startcode == ps.startcode &&
	    e->ps.startstack == ps.startstack && !full) {
		take_stat(c, e, &ps, now);
		e->gen = c->gen;
		*reused = true;
		*rc = 0;
		return e;
	}
	if (e && e->ps.starttime != ps.starttime) {
		/* a new instance with a reused pid */
		uint32_t keep = e->pid;
		collect_inst_clear(e);
		e->pid = keep;
	}
	if (!e && !(e = collect_table_add(c, pid))) {
		*rc = -ENOMEM;
		return NULL;
	}
	free(e->name);
	e->name_len = comm_len;
	if (!(e->name = collect_dupn(comm, comm_len))) {
		*rc = -ENOMEM;
		return NULL;
	}
	take_stat(c, e, &ps, now);
	e->gen = c->gen;
	*rc = read_rest(c, b, pid, e, memo, check);
	if (*rc < 0) {
		e->gen = 0; /* not seen: pruned by the next scan */
		return NULL;
	}
	return e;
}

struct inst *collect_read_pid(struct de_collector *c, uint32_t pid, bool full, bool memo,
			      bool *reused, int *rc)
{
	return read_one(c, &c->rb, NULL, pid, full, memo, true, reused, rc);
}

int collect_read_entry(struct de_collector *c, struct collect_buf *b, struct inst *e, bool full,
		       bool *reused)
{
	int rc;

	e->gen = 0; /* what a failed read leaves: pruned */
	if (!read_one(c, b, e, e->pid, full, false, false, reused, &rc))
		return rc;
	return 0;
}

/* *dst := src (owned) when a read found one; true when replaced. */
static bool take_str(char **dst, char *src)
{
	if (!src)
		return false;
	free(*dst);
	*dst = src;
	return true;
}

/*
 * Complete e, made of what the kernel said at an exec (k), with what the
 * event lacks, from /proc while k->pid still runs the image the kernel
 * reported (the inode behind /proc/PID/exe, whose stat goes to *img): the
 * command line when the kernel cut it, cwd (*cwd_read set) and the cgroup
 * when the kernel cut them or had none, the namespaces it did not have,
 * and the captured environment.  The executable's path is the caller's;
 * stat is not read (the kernel's figures are those of the exec).  What
 * cannot be read stays as the kernel said.  0 when the process ran that
 * image at the first look (even if it exited during the rest), -ESRCH when
 * it is gone, runs another image or cannot be looked at, -ENOMEM.
 */
int collect_exec_live(struct de_collector *c, const struct de_kernel_exec *k, struct inst *e,
		      struct stat *img, bool *cwd_read)
{
	char path[64];
	int rc;

	collect_pid_path(path, k->pid, "/exe");
	if (!k->exe_ino)
		return -ESRCH; /* no image to know the instance by */
	if (fstatat(c->procfd, path, img, 0) < 0)
		return errno == ENOMEM ? -ENOMEM : -ESRCH;
	if ((uint64_t)img->st_ino != k->exe_ino || (uint64_t)img->st_dev != k->exe_dev)
		return -ESRCH; /* exec'd again since: its own event tells */
	/* each read into t first: what the process no longer shows (it may
	   exit meanwhile) does not replace what the kernel said */
	if (k->argv_cut) {
		struct inst t = {0};
		if ((rc = read_cmdline(c, &c->rb, k->pid, &t)) == -ENOMEM)
			return rc;
		if (rc == 0 && t.argc > 0) {
			collect_free_argv(e->argv, e->argc);
			e->argv = t.argv;
			e->argc = t.argc;
			e->cmd_truncated = t.cmd_truncated;
			e->masked = t.masked;
		} else {
			collect_free_argv(t.argv, t.argc);
		}
	}
	if (k->cwd_cut || !k->cwd) {
		struct inst t = {0};
		if (read_cwd(c, k->pid, &t) == -ENOMEM)
			return -ENOMEM;
		*cwd_read = take_str(&e->cwd, t.cwd);
	}
	if (k->cgroup_cut || !k->cgroup) {
		struct inst t = {0};
		if (cgroup_of(c, &c->rb, k->pid, &t) == -ENOMEM)
			return -ENOMEM;
		if (take_str(&e->cgroup, t.cgroup))
			collect_inst_container(e);
	}
	if (!e->has_ns) {
		struct inst t = {0};
		read_ns(c, k->pid, &t);
		if (t.has_ns) {
			e->has_ns = true;
			memcpy(e->ns, t.ns, sizeof(e->ns));
		}
	}
	if (k->has_env && !k->env_cut)
		return 0; /* the kernel's search (kernel_inst) is whole */
	rc = read_env(c, &c->rb, k->pid, e);
	return rc == -ENOMEM ? rc : 0;
}
