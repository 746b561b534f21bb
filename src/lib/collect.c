/*
 * collect.c — /proc enumeration (see collect.h).
 *
 * Files are opened relative to a directory descriptor of /proc with
 * O_CLOEXEC and read whole; stat is parsed around the *last* ')' because
 * comm may itself contain ')' or spaces or newlines.  An executable is
 * "deleted" when the inode behind /proc/PID/exe has no links left; only then
 * is the kernel's " (deleted)" suffix removed from the path, so a file that
 * really is named "x (deleted)" keeps its name.
 *
 * Every live instance has an entry in a table (a vector plus an
 * open-addressing index by pid, rebuilt after each scan when exited
 * instances are dropped).  A scan runs in three passes:
 *   1. enumerate: read stat for each pid; a known instance is refreshed from
 *      stat alone, a new one (or one that exec'd) is read completely;
 *   2. check executables: each distinct path is stat'ed once per scan; a
 *      process whose image no longer matches its path is looked at closely
 *      (deleted? replaced? renamed?);
 *   3. hash what the cache does not know, then hand out the records.
 * Hashing starts during pass 1: each image the cache may not know is
 * offered (once per scan) to a worker thread that hashes it on the other
 * core while enumeration goes on, so pass 3 mostly finds the cache warm and
 * a first scan does not wait for hashing on top of reading /proc.  The
 * worker alone touches the hash cache until it is joined after pass 1.
 */
#include "daemoneye/collect.h"

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

#define PF_KTHREAD 0x00200000u

/* Fields of /proc/PID/stat that we use (see proc(5)). */
struct pstat {
	char state;
	int ppid, pgrp, session, tty_nr;
	unsigned flags;
	unsigned long long utime, stime;
	long nice, num_threads;
	unsigned long long starttime;
	long rss;
	unsigned long long startcode, startstack; /* change on exec (0 if hidden) */
};

/* One live process instance, as last read. */
struct inst {
	uint32_t pid;
	uint32_t gen; /* scan generation in which it was last seen */
	struct pstat ps;
	char *name; /* comm, exact bytes */
	size_t name_len;
	int64_t collection_time;
	/* cpu */
	unsigned long long prev_ticks;
	int64_t prev_ns; /* CLOCK_MONOTONIC of prev_ticks; 0 = none */
	bool has_cpu;
	double cpu;
	/* ids: the owner of /proc/PID, i.e. the effective uid and gid */
	bool has_ids;
	uint32_t euid, egid;
	/* real ids from status, read only for a set-id image */
	bool has_real_ids;
	uint32_t ruid, rgid;
	bool accessible;
	/* cgroup v2 path ("0::" line of /proc/PID/cgroup), NULL when none;
	 * read on first sight, exec and full refresh only */
	char *cgroup;
	/* identity read with the cgroup (first sight, exec, full refresh) */
	char *cwd;				    /* working directory, NULL when unknown */
	bool has_ns;				    /* ns below are known */
	uint32_t ns[4];				    /* pid, mnt, net, user namespace inodes */
	char container_id[DE_CONTAINER_ID_LEN + 1]; /* "" when none */
	const char *runtime;			    /* its runtime (static), NULL when none */
	char *env; /* captured variables (identity.h), NULL when none */
	bool env_truncated;
	bool path_truncated; /* the kernel sensor cut exe or cwd */
	/* cmdline (masked) */
	char **argv;
	size_t argc;
	bool cmd_truncated;
	int masked;
	/* executable */
	char *exe;	/* path (suffix removed when deleted), NULL when unknown */
	bool has_image; /* image stat below is valid */
	struct de_exehash_key image;
	unsigned image_mode; /* st_mode of the image (set-id bits) */
	bool deleted, replaced, file_exists;
	/* hash */
	bool hash_done;
	char hex[DE_SHA256_HEX_LEN + 1];
	char hash_err[DE_EXEHASH_REASON_MAX];
};

/* Per-scan cache of stat(path) for executable paths. */
struct pathent {
	char *path; /* NULL: empty slot */
	bool exists;
	struct de_exehash_key key;
};

/*
 * pid -> cgroup v2 path for the processes of one scan, from the cgroup.procs
 * files of the cgroup2 mount: one read per cgroup instead of one
 * /proc/PID/cgroup read per process (which walks every v1 hierarchy too).
 */
#define CG_AMBIGUOUS UINT32_MAX
struct cgmap {
	bool built;			 /* tried in this scan (maybe empty) */
	unsigned long long before_ticks; /* trust entries of processes started earlier */
	uint32_t *pid;			 /* open addressing by pid; 0 = empty */
	uint32_t *path;			 /* index into paths, or CG_AMBIGUOUS */
	size_t nslots, used;		 /* nslots a power of two */
	char **paths;			 /* cgroup paths, owned */
	size_t npaths, cappaths;
	size_t ncgroups; /* directories walked */
};

struct de_collector {
	int procfd; /* directory descriptor of proc_root */
	char root[PATH_MAX];
	int64_t btime_ms; /* boot time, ms since the epoch */
	long clk_tck;	  /* clock ticks per second */
	long page_size;
	struct de_collect_options opt;
	char **mask_flags; /* owned copy */
	char **env_names;  /* owned copy */
	struct de_exehash_cache *hashes;
	/* instance table */
	struct inst *v;
	size_t n, cap;
	/* slot -> pid and index + 1 (0: empty); the pid beside the index, so
	   that probing touches this array only, not the entries */
	struct islot {
		uint32_t pid, ix;
	} * idx;
	size_t nidx; /* power of two */
	uint32_t gen;
	uint64_t scans;
	/* random bytes for record ids, refilled 4 KiB at a time */
	uint8_t rnd[4096];
	char uid_text[16]; /* the user_id a borrowed record points to */
	size_t rnd_left;
	/* path cache, cleared per scan */
	struct pathent *paths;
	size_t npaths, pused;
	/* read buffer for cmdline and cgroup, grown on demand, kept */
	char *buf;
	size_t bufcap;
	/* the hashing worker of one scan (see the top of the file) */
	struct hasher *hasher;
	/* cgroups: per-scan map from the cgroup2 mount (see cg_build) */
	bool in_scan;	 /* inside de_collector_scan_each */
	size_t cg_reads; /* /proc/PID/cgroup reads in this scan */
	struct cgmap cg;
};

static void cg_reset(struct cgmap *m);

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* buf := decimal pid + suffix (buf holds at least 11 + strlen(suffix)). */
static void pid_path(char *buf, uint32_t pid, const char *suffix)
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
 * Read dirfd/path whole into c->buf (NUL added), at most cap bytes; *len ==
 * cap means the file was cut.  cmdline and the one-record seq_files (stat,
 * status, /proc/PID/cgroup) return all there is to a read with room to
 * spare, so with `short_eof` a short read ends the file without the read
 * that would return 0.  Multi-record seq_files (mountinfo, cgroup.procs)
 * return about a page per read and are read until 0.
 */
static int read_buf(struct de_collector *c, int dirfd, const char *path, size_t cap, bool short_eof,
		    size_t *len)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	size_t n = 0;

	if (fd < 0)
		return -errno;
	for (;;) {
		size_t want;
		ssize_t r;
		if (n + 1 >= c->bufcap) {
			size_t ns = c->bufcap ? c->bufcap * 2 : 64u << 10;
			char *nb;
			if (c->bufcap >= cap + 1)
				break; /* cap reached */
			if (ns > cap + 1)
				ns = cap + 1;
			if (!(nb = realloc(c->buf, ns))) {
				close(fd);
				return -ENOMEM;
			}
			c->buf = nb;
			c->bufcap = ns;
		}
		want = c->bufcap - 1 - n;
		r = read(fd, c->buf + n, want);
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
	c->buf[n] = '\0';
	*len = n;
	return 0;
}

/* A buffer grown past 1 MiB by a huge command line is not kept. */
static void buf_trim(struct de_collector *c)
{
	if (c->bufcap > (1u << 20)) {
		free(c->buf);
		c->buf = NULL;
		c->bufcap = 0;
	}
}

void de_collect_options_default(struct de_collect_options *o)
{
	memset(o, 0, sizeof(*o));
	o->hash = true;
	o->max_hash_size = 256u << 20;
	o->mask = true;
	o->full_refresh_every = 10;
	o->cgroup_walk_after = 128;
}

int de_collector_open(const char *proc_root, struct de_collector **out, struct de_error *err)
{
	struct de_collector *c = calloc(1, sizeof(*c));
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
	c->btime_ms = de_boot_time_ms(c->procfd);
	de_collect_options_default(&c->opt);
	if ((rc = de_exehash_cache_new(c->opt.max_hash_size, &c->hashes, err)) < 0) {
		close(c->procfd);
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

static void free_argv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void inst_clear(struct inst *e)
{
	free(e->name);
	free_argv(e->argv, e->argc);
	free(e->exe);
	free(e->cgroup);
	free(e->cwd);
	free(e->env);
	memset(e, 0, sizeof(*e));
}

static void free_list(char **v)
{
	if (v)
		for (size_t i = 0; v[i]; i++)
			free(v[i]);
	free(v);
}

static void free_flags(struct de_collector *c)
{
	free_list(c->mask_flags);
	c->mask_flags = NULL;
	free_list(c->env_names);
	c->env_names = NULL;
}

/* A NULL-terminated owned copy of v[0..n) (NULL v: NULL). 0 or -ENOMEM. */
static int copy_list(const char *const *v, size_t n, char ***out)
{
	char **d;

	*out = NULL;
	if (!v)
		return 0;
	if (!(d = calloc(n + 1, sizeof(char *))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (!(d[i] = strdup(v[i]))) {
			free_list(d);
			return -ENOMEM;
		}
	*out = d;
	return 0;
}

static void paths_reset(struct de_collector *c)
{
	for (size_t i = 0; i < c->npaths; i++) {
		free(c->paths[i].path);
		c->paths[i].path = NULL;
	}
	c->pused = 0;
}

void de_collector_close(struct de_collector *c)
{
	if (!c)
		return;
	if (c->procfd >= 0)
		close(c->procfd);
	for (size_t i = 0; i < c->n; i++)
		inst_clear(&c->v[i]);
	free(c->v);
	free(c->idx);
	paths_reset(c);
	free(c->paths);
	free(c->buf);
	cg_reset(&c->cg);
	free_flags(c);
	de_exehash_cache_free(c->hashes);
	free(c);
}

int de_collector_configure(struct de_collector *c, const struct de_collect_options *o,
			   struct de_error *err)
{
	struct de_exehash_cache *h = NULL;
	char **flags = NULL, **env = NULL;
	int rc;

	if (copy_list(o->mask_flags, o->nmask_flags, &flags) < 0 ||
	    copy_list(o->env_names, o->nenv_names, &env) < 0) {
		free_list(flags);
		return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	}
	if (o->max_hash_size != c->opt.max_hash_size) {
		if ((rc = de_exehash_cache_new(o->max_hash_size, &h, err)) < 0) {
			free_list(flags);
			free_list(env);
			return rc;
		}
		de_exehash_cache_free(c->hashes);
		c->hashes = h;
	}
	free_flags(c);
	c->mask_flags = flags;
	c->env_names = env;
	c->opt = *o;
	c->opt.mask_flags = (const char *const *)c->mask_flags;
	c->opt.env_names = (const char *const *)c->env_names;
	if (!c->env_names)
		c->opt.nenv_names = 0;
	return 0;
}

const struct de_collect_options *de_collector_options(const struct de_collector *c)
{
	return &c->opt;
}

uint64_t de_collector_hashed_bytes(const struct de_collector *c)
{
	return de_exehash_bytes_hashed(c->hashes);
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
			free_argv(v, k);
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

/* ---- the instance table ---------------------------------------------------- */

static size_t pid_slot(uint32_t pid, size_t mask)
{
	return (size_t)(uint32_t)(pid * 2654435761u) & mask; /* 32-bit multiplicative hash */
}

static struct inst *table_find(struct de_collector *c, uint32_t pid)
{
	if (!c->nidx)
		return NULL;
	for (size_t i = pid_slot(pid, c->nidx - 1); c->idx[i].ix; i = (i + 1) & (c->nidx - 1))
		if (c->idx[i].pid == pid)
			return &c->v[c->idx[i].ix - 1];
	return NULL;
}

static int index_rebuild(struct de_collector *c, size_t want)
{
	size_t n = 1024;
	struct islot *idx;

	while (n < want * 2)
		n *= 2;
	if (!(idx = calloc(n, sizeof(*idx))))
		return -ENOMEM;
	free(c->idx);
	c->idx = idx;
	c->nidx = n;
	for (size_t k = 0; k < c->n; k++) {
		size_t i = pid_slot(c->v[k].pid, n - 1);
		while (idx[i].ix)
			i = (i + 1) & (n - 1);
		idx[i] = (struct islot){c->v[k].pid, (uint32_t)(k + 1)};
	}
	return 0;
}

/* A new zeroed entry for pid, indexed.  NULL on ENOMEM. */
static struct inst *table_add(struct de_collector *c, uint32_t pid)
{
	if (c->n == c->cap || !c->v) { /* (v is NULL only while cap is 0) */
		size_t nc = c->cap ? c->cap * 2 : 1024;
		struct inst *nv = realloc(c->v, nc * sizeof(*nv));
		if (!nv)
			return NULL;
		c->v = nv;
		c->cap = nc;
	}
	if ((c->n + 1) * 2 > c->nidx) {
		c->n++; /* so that the rebuild sizes for it */
		memset(&c->v[c->n - 1], 0, sizeof(c->v[0]));
		c->v[c->n - 1].pid = pid;
		if (index_rebuild(c, c->n) < 0) {
			c->n--;
			return NULL;
		}
		return &c->v[c->n - 1];
	}
	memset(&c->v[c->n], 0, sizeof(c->v[0]));
	c->v[c->n].pid = pid;
	size_t i = pid_slot(pid, c->nidx - 1);
	while (c->idx[i].ix)
		i = (i + 1) & (c->nidx - 1);
	c->idx[i] = (struct islot){pid, (uint32_t)(c->n + 1)};
	return &c->v[c->n++];
}

/* Drop the entries not seen in generation gen. */
static int table_prune(struct de_collector *c, uint32_t gen)
{
	size_t k = 0;

	for (size_t i = 0; i < c->n; i++) {
		if (c->v[i].gen != gen) {
			inst_clear(&c->v[i]);
			continue;
		}
		if (k != i)
			c->v[k] = c->v[i];
		k++;
	}
	c->n = k;
	return index_rebuild(c, c->n);
}

/* ---- executables ------------------------------------------------------------ */

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* stat(path), remembered for the rest of the scan (NULL cache: no memo). */
static int path_stat(struct de_collector *c, bool memo, const char *path, bool *exists,
		     struct de_exehash_key *key)
{
	struct stat st;
	struct pathent *p = NULL;

	if (memo) {
		if ((c->pused + 1) * 2 > c->npaths) {
			size_t nn = c->npaths ? c->npaths * 2 : 256;
			struct pathent *np = calloc(nn, sizeof(*np));
			if (!np)
				return -ENOMEM;
			for (size_t i = 0; i < c->npaths; i++) {
				if (!c->paths[i].path)
					continue;
				size_t j = (size_t)str_hash(c->paths[i].path) & (nn - 1);
				while (np[j].path)
					j = (j + 1) & (nn - 1);
				np[j] = c->paths[i];
			}
			free(c->paths);
			c->paths = np;
			c->npaths = nn;
		}
		size_t j = (size_t)str_hash(path) & (c->npaths - 1);
		while (c->paths[j].path && strcmp(c->paths[j].path, path) != 0)
			j = (j + 1) & (c->npaths - 1);
		p = &c->paths[j];
		if (p->path) {
			*exists = p->exists;
			*key = p->key;
			return 0;
		}
	}
	*exists = stat(path, &st) == 0;
	memset(key, 0, sizeof(*key));
	if (*exists)
		de_exehash_key_from_stat(&st, key);
	if (p) {
		if (!(p->path = strdup(path)))
			return -ENOMEM;
		p->exists = *exists;
		p->key = *key;
		c->pused++;
	}
	return 0;
}

/*
 * Read the executable link and the image behind it into e.  Returns 0,
 * -EACCES when not permitted, -ESRCH when gone or without an image (a
 * zombie or kernel thread), -ENOMEM.
 */
static int read_exe(struct de_collector *c, uint32_t pid, struct inst *e)
{
	static const char suffix[] = " (deleted)";
	const size_t sl = sizeof(suffix) - 1;
	char path[64], target[PATH_MAX + 1];
	struct stat img;
	ssize_t l;

	pid_path(path, pid, "/exe");
	l = readlinkat(c->procfd, path, target, sizeof(target) - 1);
	if (l < 0)
		return errno == EACCES || errno == EPERM ? -EACCES : -ESRCH;
	target[l] = '\0';
	free(e->exe);
	e->exe = NULL;
	e->has_image = false;
	e->deleted = false;
	if (fstatat(c->procfd, path, &img, 0) == 0) {
		struct de_exehash_key k;
		de_exehash_key_from_stat(&img, &k);
		if (!de_exehash_key_equal(&k, &e->image))
			e->hash_done = false;
		e->image = k;
		e->image_mode = (unsigned)img.st_mode;
		e->has_image = true;
		e->deleted = img.st_nlink == 0;
	}
	if (e->deleted && (size_t)l > sl && strcmp(target + l - sl, suffix) == 0)
		target[l - (ssize_t)sl] = '\0';
	if (!(e->exe = strdup(target)))
		return -ENOMEM;
	return 0;
}

/*
 * Does the path still hold the running image?  Stat'ing each distinct path
 * once per scan answers for every process of that executable; only when it
 * does not is the process's own image looked at again.
 */
static int check_exe(struct de_collector *c, bool memo, struct inst *e)
{
	struct de_exehash_key k;
	bool exists;
	int rc;

	if (!e->exe)
		return 0;
	if ((rc = path_stat(c, memo, e->exe, &exists, &k)) < 0)
		return rc;
	if (exists && e->has_image && k.dev == e->image.dev && k.ino == e->image.ino) {
		if (!de_exehash_key_equal(&k, &e->image)) {
			e->image = k; /* modified in place: hash again */
			e->hash_done = false;
		}
		e->file_exists = true;
		e->deleted = e->replaced = false;
		return 0;
	}
	/* deleted, replaced, renamed, or another mount namespace */
	if ((rc = read_exe(c, e->pid, e)) < 0)
		return rc == -ENOMEM ? rc : 0;
	if ((rc = path_stat(c, memo, e->exe, &exists, &k)) < 0)
		return rc;
	e->file_exists = exists;
	e->replaced = exists && e->has_image && (k.dev != e->image.dev || k.ino != e->image.ino);
	return 0;
}

/* ---- hashing beside enumeration ------------------------------------------ */

struct hash_job {
	uint32_t pid;
	struct de_exehash_key key;
};

struct hasher {
	struct de_collector *c;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct hash_job *q; /* FIFO, guarded by mu */
	size_t head, len, cap;
	bool closing;
	/* images offered in this scan (main thread only): open addressing */
	struct de_exehash_key *seen;
	bool *used;
	size_t nslots, nseen;
};

static void *hasher_main(void *arg)
{
	struct hasher *h = arg;
	char path[64], hex[DE_SHA256_HEX_LEN + 1], why[DE_EXEHASH_REASON_MAX];

	for (;;) {
		struct hash_job j;
		pthread_mutex_lock(&h->mu);
		while (h->head == h->len && !h->closing)
			pthread_cond_wait(&h->cv, &h->mu);
		if (h->head == h->len) {
			pthread_mutex_unlock(&h->mu);
			return NULL;
		}
		j = h->q[h->head++];
		pthread_mutex_unlock(&h->mu);
		if (de_exehash_lookup(h->c->hashes, &j.key, hex, why))
			continue;
		/* warm the cache only; pass 3 records failures and reasons */
		pid_path(path, j.pid, "/exe");
		int fd = openat(h->c->procfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			continue;
		struct stat sb;
		struct de_exehash_key k;
		if (fstat(fd, &sb) == 0) {
			de_exehash_key_from_stat(&sb, &k);
			if (de_exehash_key_equal(&k, &j.key))
				de_exehash_fd(h->c->hashes, fd, hex, why, NULL);
		}
		close(fd);
	}
}

/* Remember k as offered in this scan; false if it was already. */
static bool hasher_first_offer(struct hasher *h, const struct de_exehash_key *k)
{
	if (2 * (h->nseen + 1) > h->nslots) {
		size_t nn = h->nslots ? h->nslots * 2 : 256;
		struct de_exehash_key *ns = calloc(nn, sizeof(*ns));
		bool *nu = calloc(nn, sizeof(*nu));
		if (!ns || !nu) {
			free(ns);
			free(nu);
			return true; /* offering twice is harmless */
		}
		for (size_t i = 0; i < h->nslots; i++) {
			if (!h->used[i])
				continue;
			size_t j = (size_t)de_exehash_key_hash(&h->seen[i]) & (nn - 1);
			while (nu[j])
				j = (j + 1) & (nn - 1);
			nu[j] = true;
			ns[j] = h->seen[i];
		}
		free(h->seen);
		free(h->used);
		h->seen = ns;
		h->used = nu;
		h->nslots = nn;
	}
	size_t j = (size_t)de_exehash_key_hash(k) & (h->nslots - 1);
	while (h->used[j]) {
		if (de_exehash_key_equal(&h->seen[j], k))
			return false;
		j = (j + 1) & (h->nslots - 1);
	}
	h->used[j] = true;
	h->seen[j] = *k;
	h->nseen++;
	return true;
}

/*
 * Offer e's image to the worker, starting it on the first offer of a scan.
 * Any failure (memory, no thread) only means pass 3 hashes it instead.
 */
static void hasher_offer(struct de_collector *c, const struct inst *e)
{
	struct hasher *h = c->hasher;

	if (!c->opt.hash || e->hash_done || !e->exe || !e->has_image)
		return;
	if (!h) {
		if (!(h = calloc(1, sizeof(*h))))
			return;
		h->c = c;
		pthread_mutex_init(&h->mu, NULL);
		pthread_cond_init(&h->cv, NULL);
		if (pthread_create(&h->th, NULL, hasher_main, h) != 0) {
			pthread_cond_destroy(&h->cv);
			pthread_mutex_destroy(&h->mu);
			free(h);
			return;
		}
		c->hasher = h;
	}
	if (!hasher_first_offer(h, &e->image))
		return;
	pthread_mutex_lock(&h->mu);
	if (h->len == h->cap) {
		size_t nc = h->cap ? h->cap * 2 : 64;
		struct hash_job *nq = realloc(h->q, nc * sizeof(*nq));
		if (!nq) {
			pthread_mutex_unlock(&h->mu);
			return;
		}
		h->q = nq;
		h->cap = nc;
	}
	h->q[h->len++] = (struct hash_job){e->pid, e->image};
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

/* Let the worker finish what it was offered and end it (NULL-safe). */
static void hasher_join(struct de_collector *c)
{
	struct hasher *h = c->hasher;

	if (!h)
		return;
	pthread_mutex_lock(&h->mu);
	h->closing = true;
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->th, NULL);
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	free(h->q);
	free(h->seen);
	free(h->used);
	free(h);
	c->hasher = NULL;
}

/* Hash the image of e (through /proc/PID/exe, so a deleted file too). */
static int hash_exe(struct de_collector *c, struct inst *e, struct de_collect_stats *st)
{
	char path[64];
	int fd, rc;

	if (e->hash_done || !e->exe)
		return 0;
	e->hash_done = true;
	e->hex[0] = e->hash_err[0] = '\0';
	if (!e->has_image) {
		snprintf(e->hash_err, sizeof(e->hash_err), "executable not accessible");
		return 0;
	}
	if (de_exehash_lookup(c->hashes, &e->image, e->hex, e->hash_err))
		return 0;
	pid_path(path, e->pid, "/exe");
	fd = openat(c->procfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int er = errno;
		if (er == ENOENT || er == ESRCH) {
			/* exited since: not a property of the file, do not cache */
			snprintf(e->hash_err, sizeof(e->hash_err), "process exited before hashing");
			return 0;
		}
		snprintf(e->hash_err, sizeof(e->hash_err), "cannot open: %s", strerror(er));
		return de_exehash_remember_failure(c->hashes, &e->image, e->hash_err);
	}
	uint64_t before = de_exehash_bytes_hashed(c->hashes),
		 files = de_exehash_files_hashed(c->hashes);
	struct de_exehash_key k;
	rc = de_exehash_fd(c->hashes, fd, e->hex, e->hash_err, &k);
	close(fd);
	if (st) {
		st->hashed_bytes += de_exehash_bytes_hashed(c->hashes) - before;
		st->hashed_files += de_exehash_files_hashed(c->hashes) - files;
	}
	if (rc == 0 && !de_exehash_key_equal(&k, &e->image))
		e->image = k;
	return rc;
}

/* ---- cgroups ----------------------------------------------------------------- */

#define CG_MAX_CGROUPS 65536 /* a bigger tree is not walked */
#define CG_MAX_DEPTH   64

static void cg_reset(struct cgmap *m)
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
		for (j = pid_slot(m->pid[i], nn - 1); np[j]; j = (j + 1) & (nn - 1))
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
	for (j = pid_slot(pid, m->nslots - 1); m->pid[j]; j = (j + 1) & (m->nslots - 1))
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
	for (size_t j = pid_slot(pid, m->nslots - 1); m->pid[j]; j = (j + 1) & (m->nslots - 1))
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
	if (rl == 0 || read_buf(c, dfd, "cgroup.type", 64, false, &n) < 0 ||
	    strncmp(c->buf, "domain threaded", 15) != 0) {
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
	rc = read_buf(c, dfd, "cgroup.procs", 64u << 20, false, &n);
	if (rc == -ENOMEM)
		return rc;
	if (rc == 0 && n >= (64u << 20))
		return -E2BIG;
	for (size_t at = 0; rc == 0 && at < n;) {
		char *end;
		unsigned long pid = strtoul(c->buf + at, &end, 10);
		if (end == c->buf + at)
			break;
		if (pid > 0 && pid <= UINT32_MAX && cg_put(m, (uint32_t)pid, idx) < 0)
			return -ENOMEM;
		at = (size_t)(end - c->buf) + 1;
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

	if (read_buf(c, c->procfd, "self/mountinfo", 16u << 20, false, &n) < 0)
		return -ENOENT;
	for (char *line = c->buf, *next; line && *line; line = next) {
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
	buf_trim(c);
	if (rc < 0) {
		cg_reset(m);
		m->built = true;
	}
}

/*
 * Read /proc/PID/cgroup for the path of its cgroup v2 line ("0::PATH",
 * exact bytes; the kernel refuses '\n' in cgroup names, so lines split
 * exactly).  v1 hierarchies' lines are not kept.  0, -ENOMEM, or the
 * read's -errno.
 */
static int read_cgroup(struct de_collector *c, uint32_t pid, struct inst *e)
{
	char path[64];
	size_t n;
	int rc;

	pid_path(path, pid, "/cgroup");
	if ((rc = read_buf(c, c->procfd, path, 1u << 20, true, &n)) < 0)
		return rc;
	for (size_t at = 0; at < n;) {
		const char *l = c->buf + at, *nl = memchr(l, '\n', n - at);
		size_t ll = nl ? (size_t)(nl - l) : n - at;
		at += ll + 1;
		if (ll >= 3 && memcmp(l, "0::", 3) == 0)
			return (e->cgroup = dupn(l + 3, ll - 3)) ? 0 : -ENOMEM;
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
static int cgroup_of(struct de_collector *c, uint32_t pid, struct inst *e)
{
	free(e->cgroup);
	e->cgroup = NULL;
	if (c->in_scan && !c->cg.built && c->cg_reads >= c->opt.cgroup_walk_after)
		cg_build(c);
	if (c->cg.built && e->ps.starttime < c->cg.before_ticks) {
		const char *p = cg_get(&c->cg, pid);
		if (p)
			return (e->cgroup = strdup(p)) ? 0 : -ENOMEM;
	}
	c->cg_reads++;
	return read_cgroup(c, pid, e);
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

	pid_path(path, pid, "/status");
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

	pid_path(path, pid, which);
	l = readlinkat(c->procfd, path, link, sizeof(link) - 1);
	if (l <= 0)
		return 0;
	link[l] = '\0';
	b = strchr(link, '[');
	return b ? (uint32_t)strtoul(b + 1, NULL, 10) : 0;
}

/*
 * cwd, the namespaces and (with options.env_names) the captured
 * environment of pid into e.  What may not be read stays unknown.  0,
 * -ENOMEM, or -ESRCH when the process is gone.
 */
static int read_more(struct de_collector *c, uint32_t pid, struct inst *e)
{
	static const char *const ns[4] = {"/ns/pid", "/ns/mnt", "/ns/net", "/ns/user"};
	char path[64], target[PATH_MAX + 1];
	size_t n;
	ssize_t l;
	int rc;

	free(e->cwd);
	e->cwd = NULL;
	free(e->env);
	e->env = NULL;
	e->env_truncated = e->path_truncated = false;
	pid_path(path, pid, "/cwd");
	l = readlinkat(c->procfd, path, target, sizeof(target) - 1);
	if (l >= 0) {
		target[l] = '\0';
		if (!(e->cwd = strdup(target)))
			return -ENOMEM;
	} else if (gone(-errno)) {
		return -ESRCH;
	}
	e->has_ns = true;
	for (int i = 0; i < 4; i++)
		e->has_ns &= (e->ns[i] = ns_inode(c, pid, ns[i])) != 0;
	if (!c->opt.nenv_names)
		return 0;
	pid_path(path, pid, "/environ");
	if ((rc = read_buf(c, c->procfd, path, DE_COLLECT_MAX_CMDLINE, true, &n)) < 0)
		return rc == -ENOMEM || gone(rc) ? rc : 0;
	rc = de_identity_env(c->buf, n, c->opt.env_names, c->opt.nenv_names, c->opt.mask,
			     c->opt.mask_flags, c->opt.mask_flags ? c->opt.nmask_flags : 0, &e->env,
			     &e->env_truncated);
	buf_trim(c);
	return rc;
}

/* The container of e's cgroup path (none when it has no cgroup or names none). */
static void inst_container(struct inst *e)
{
	char id[DE_CONTAINER_ID_LEN + 1];
	const char *rt = NULL;

	e->runtime = NULL;
	e->container_id[0] = '\0';
	if (e->cgroup && de_identity_container(e->cgroup, id, &rt)) {
		memcpy(e->container_id, id, sizeof(id));
		e->runtime = rt;
	}
}

/*
 * Read the ids, cmdline, exe and cgroup of pid into e (whose stat is
 * fresh).  status is not read (it costs more than stat, cmdline and exe
 * together): the effective ids are the owner of /proc/PID, and only a
 * set-id image, whose real ids differ from the effective ones by design,
 * has status read for them.  -ESRCH when the process vanished, -ENOMEM.
 */
static int read_rest(struct de_collector *c, uint32_t pid, struct inst *e, bool memo)
{
	char path[64];
	bool vanished = false, denied = false;
	struct stat st;
	size_t n = 0;
	int rc;

	/* /proc/PID is owned by the effective uid and gid, also for a
	 * non-dumpable process (only the files inside turn to root) */
	pid_path(path, pid, "");
	if (fstatat(c->procfd, path, &st, 0) < 0)
		return -ESRCH;
	e->has_ids = true;
	e->euid = (uint32_t)st.st_uid;
	e->egid = (uint32_t)st.st_gid;
	e->has_real_ids = false;

	/* cmdline: argv exactly, NUL-separated */
	free_argv(e->argv, e->argc);
	e->argv = NULL;
	e->argc = 0;
	e->cmd_truncated = false;
	e->masked = 0;
	pid_path(path, pid, "/cmdline");
	rc = read_buf(c, c->procfd, path, DE_COLLECT_MAX_CMDLINE, true, &n);
	if (rc == 0) {
		e->cmd_truncated = n >= DE_COLLECT_MAX_CMDLINE;
		rc = split_cmdline(c->buf, n, &e->argv, &e->argc);
		buf_trim(c);
		if (rc < 0)
			return rc;
		if (c->opt.mask) {
			size_t nf = c->opt.mask_flags ? c->opt.nmask_flags : 0;
			rc = de_mask_argv(e->argv, e->argc, c->opt.mask_flags, nf);
			if (rc < 0)
				return rc;
			e->masked = rc;
		}
	} else if (rc == -ENOMEM) {
		return rc;
	} else if (gone(rc)) {
		vanished = true;
	} else if (rc == -EACCES || rc == -EPERM) {
		denied = true;
	}

	/* exe: the running image, and whether it is still on disk */
	free(e->exe);
	e->exe = NULL;
	e->has_image = e->deleted = e->replaced = e->file_exists = false;
	if (!(e->ps.flags & PF_KTHREAD)) {
		rc = read_exe(c, pid, e);
		if (rc == -ENOMEM)
			return rc;
		if (rc == -EACCES)
			denied = true;
		else if (rc == -ESRCH && e->ps.state != 'Z')
			vanished = true; /* a zombie has no exe */
		if (rc == 0 && (rc = check_exe(c, memo, e)) < 0)
			return rc;
	}
	if (e->has_image && (e->image_mode & (S_ISUID | S_ISGID)) && gone(read_real_ids(c, pid, e)))
		vanished = true;

	/* cgroup: on first sight, exec and full refresh; never on a rescan */
	rc = cgroup_of(c, pid, e);
	if (rc == -ENOMEM)
		return rc;
	if (gone(rc))
		vanished = true;
	inst_container(e);
	/* the same for cwd, the namespaces and the captured environment */
	if ((rc = read_more(c, pid, e)) == -ENOMEM)
		return rc;
	if (gone(rc))
		vanished = true;

	pid_path(path, pid, "");
	if (vanished && fstatat(c->procfd, path, &st, 0) < 0)
		return -ESRCH;
	e->accessible = !denied;
	return 0;
}

/*
 * Read pid into its table entry: stat always; everything else when the
 * instance is new, has exec'd, or full is set.  Returns the entry, or NULL
 * with *rc = -ESRCH (gone) or -ENOMEM.
 */
static struct inst *read_pid(struct de_collector *c, uint32_t pid, bool full, bool memo,
			     bool *reused, int *rc)
{
	char path[64], buf[1024];
	const char *comm;
	size_t comm_len;
	struct pstat ps = {0};
	struct inst *e;
	ssize_t n;
	int64_t now;

	*reused = false;
	pid_path(path, pid, "/stat");
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
	e = table_find(c, pid);
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
		inst_clear(e);
		e->pid = keep;
	}
	if (!e && !(e = table_add(c, pid))) {
		*rc = -ENOMEM;
		return NULL;
	}
	free(e->name);
	e->name_len = comm_len;
	if (!(e->name = dupn(comm, comm_len))) {
		*rc = -ENOMEM;
		return NULL;
	}
	take_stat(c, e, &ps, now);
	e->gen = c->gen;
	*rc = read_rest(c, pid, e, memo);
	if (*rc < 0) {
		e->gen = 0; /* not seen: pruned by the next scan */
		return NULL;
	}
	return e;
}

/* ---- records ------------------------------------------------------------------- */

/*
 * e as a record whose strings are borrowed from e (and the collector's
 * user-id buffer): valid until the collector reads again.  Nothing is
 * allocated, so nothing can fail and nothing is to be cleared;
 * de_process_record_copy() makes an owned one.
 */
static void view_record(struct de_collector *c, struct inst *e, int64_t scan_id,
			struct de_process_record *r)
{
	const struct pstat *ps = &e->ps;
	struct de_linux_facts *f = &r->facts;

	memset(r, 0, sizeof(*r));
	r->pid = e->pid;
	r->scan_id = scan_id;
	r->collection_time = e->collection_time;
	/* a version 4 UUID from a pool: one getrandom per 256 records */
	if (c->rnd_left < 16 && getrandom(c->rnd, sizeof(c->rnd), 0) == (ssize_t)sizeof(c->rnd))
		c->rnd_left = sizeof(c->rnd);
	if (c->rnd_left >= 16) {
		memcpy(r->id.bytes, c->rnd + sizeof(c->rnd) - c->rnd_left, 16);
		c->rnd_left -= 16;
		r->id.bytes[6] = (uint8_t)((r->id.bytes[6] & 0x0f) | 0x40);
		r->id.bytes[8] = (uint8_t)((r->id.bytes[8] & 0x3f) | 0x80);
	} else if (de_uuid_v4(&r->id) < 0) {
		memset(&r->id, 0, sizeof(r->id));
	}
	r->name = (char *)de_identity_full_name(e->name, e->exe, e->argv, e->argc);
	f->comm = e->name;
	r->has_ppid = ps->ppid > 0 || e->pid == 1;
	r->ppid = (uint32_t)(ps->ppid > 0 ? ps->ppid : 0);
	r->has_start_time = c->clk_tck > 0;
	if (r->has_start_time)
		r->start_time = c->btime_ms +
				(int64_t)(ps->starttime * 1000 / (unsigned long long)c->clk_tck);
	r->has_cpu_usage = e->has_cpu;
	r->cpu_usage = e->cpu;
	r->has_memory_usage = true;
	r->memory_usage = (uint64_t)(ps->rss > 0 ? ps->rss : 0) * (uint64_t)c->page_size;
	r->accessible = e->accessible;
	r->file_exists = e->file_exists;
	f->present = true;
	if (e->has_ids) {
		/* the effective uid, as ps's uid column shows it */
		pid_path(c->uid_text, e->euid, ""); /* any uint32_t, in decimal */
		r->user_id = c->uid_text;
		f->has_ids = true;
		f->euid = e->euid;
		f->egid = e->egid;
	}
	if (e->has_real_ids) {
		f->has_real_ids = true;
		f->uid = e->ruid;
		f->gid = e->rgid;
	}
	f->cgroup = e->cgroup;
	r->command_line = e->argv;
	r->command_line_len = e->argc;
	if (e->exe) {
		r->executable_path = e->exe;
		f->has_exe = true;
		f->exe_deleted = e->deleted;
		f->exe_replaced = e->replaced;
		if (e->has_image) {
			f->has_image = true;
			f->exe_inode = (int64_t)e->image.ino;
			f->exe_device = (int64_t)e->image.dev;
			f->exe_size = e->image.size;
		}
		if (e->hex[0]) {
			r->executable_hash = e->hex;
			r->hash_algorithm = (char *)"sha256";
		} else if (e->hash_err[0]) {
			f->hash_error = e->hash_err;
		}
	}
	f->state = ps->state;
	f->threads = ps->num_threads;
	f->pgrp = ps->pgrp;
	f->session = ps->session;
	f->tty_nr = ps->tty_nr;
	f->nice = ps->nice;
	f->kernel_thread = (ps->flags & PF_KTHREAD) != 0;
	f->utime_ticks = (int64_t)ps->utime;
	f->stime_ticks = (int64_t)ps->stime;
	f->start_ticks = (int64_t)ps->starttime;
	f->cmdline_truncated = e->cmd_truncated;
	f->cmdline_masked = e->masked;
	f->cwd = e->cwd;
	if (e->has_ns) {
		f->has_ns = true;
		f->pid_ns = e->ns[0];
		f->mnt_ns = e->ns[1];
		f->net_ns = e->ns[2];
		f->user_ns = e->ns[3];
	}
	if (e->container_id[0]) {
		f->container_id = e->container_id;
		f->container_runtime = (char *)e->runtime;
	}
	f->env = e->env;
	f->env_truncated = e->env_truncated;
	f->path_truncated = e->path_truncated;
}

int de_collector_read(struct de_collector *c, pid_t pid, int64_t scan_id,
		      struct de_process_record *out, struct de_error *err)
{
	struct inst *e;
	bool reused;
	int rc;

	if (pid <= 0)
		return -ESRCH;
	e = read_pid(c, (uint32_t)pid, true, false, &reused, &rc);
	if (!e) {
		if (rc == -ENOMEM)
			return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
		return rc;
	}
	if (c->opt.hash && (rc = hash_exe(c, e, NULL)) < 0)
		return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	{
		struct de_process_record view;
		view_record(c, e, scan_id, &view);
		if (de_process_record_copy(&view, out) < 0)
			return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	}
	return 0;
}

/* The kernel's argv of k, split and masked into e (replacing what e had). */
static int take_kernel_argv(struct de_collector *c, const struct de_kernel_exec *k, struct inst *e)
{
	char **v;
	size_t n;
	int rc;

	if ((rc = split_cmdline(k->argv, k->argv_len, &v, &n)) < 0)
		return rc;
	if (c->opt.mask) {
		size_t nf = c->opt.mask_flags ? c->opt.nmask_flags : 0;
		if ((rc = de_mask_argv(v, n, c->opt.mask_flags, nf)) < 0) {
			free_argv(v, n);
			return rc;
		}
	}
	free_argv(e->argv, e->argc);
	e->argv = v;
	e->argc = n;
	e->masked = c->opt.mask ? rc : 0;
	e->cmd_truncated = k->argv_cut;
	return 0;
}

/*
 * Hash e's image through its path (the process is gone, so not through
 * /proc/PID/exe) when the path still names the file the kernel executed.
 */
static int hash_by_path(struct de_collector *c, struct inst *e)
{
	struct de_exehash_key k;
	struct stat sb;
	int fd, rc;

	e->hash_done = true;
	if (de_exehash_lookup(c->hashes, &e->image, e->hex, e->hash_err))
		return 0;
	fd = open(e->exe, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		snprintf(e->hash_err, sizeof(e->hash_err), "process exited before hashing");
		if (fd >= 0)
			close(fd);
		return 0;
	}
	de_exehash_key_from_stat(&sb, &k);
	if (!de_exehash_key_equal(&k, &e->image)) {
		close(fd);
		snprintf(e->hash_err, sizeof(e->hash_err), "process exited before hashing");
		return 0;
	}
	rc = de_exehash_fd(c->hashes, fd, e->hex, e->hash_err, NULL);
	close(fd);
	return rc;
}

/* An instance made of what the kernel said alone (not in the table). */
static int kernel_inst(struct de_collector *c, const struct de_kernel_exec *k, struct inst *e)
{
	struct stat sb;
	int rc;

	memset(e, 0, sizeof(*e));
	e->pid = k->pid;
	e->ps.state = 'R';
	e->ps.ppid = (int)k->ppid;
	e->ps.pgrp = (int)k->pgrp;
	e->ps.session = (int)k->session;
	e->ps.tty_nr = (int)k->tty_nr;
	e->ps.nice = k->nice;
	e->ps.num_threads = k->threads ? (long)k->threads : 1;
	e->ps.starttime = (unsigned long long)k->start_ticks;
	e->ps.utime = (unsigned long long)k->utime_ticks;
	e->ps.stime = (unsigned long long)k->stime_ticks;
	e->collection_time = de_now_ms();
	e->accessible = true;
	e->has_ids = true;
	e->euid = k->euid;
	e->egid = k->egid;
	if (k->uid != k->euid || k->gid != k->egid) {
		e->has_real_ids = true;
		e->ruid = k->uid;
		e->rgid = k->gid;
	}
	e->name_len = strnlen(k->comm, sizeof(k->comm));
	if (!(e->name = dupn(k->comm, e->name_len)))
		return -ENOMEM;
	if ((rc = take_kernel_argv(c, k, e)) < 0)
		return rc;
	if (k->exe) {
		if (!(e->exe = strdup(k->exe)))
			return -ENOMEM;
		/* the image is what the kernel ran when the path still names it */
		if (stat(k->exe, &sb) == 0 && sb.st_ino == k->exe_ino && sb.st_dev == k->exe_dev) {
			de_exehash_key_from_stat(&sb, &e->image);
			e->image_mode = (unsigned)sb.st_mode;
			e->has_image = e->file_exists = true;
		} else {
			e->image.ino = k->exe_ino;
			e->image.dev = k->exe_dev;
			e->has_image = true;
			e->file_exists = false;
			e->replaced = stat(k->exe, &sb) == 0;
			e->deleted = !e->replaced;
		}
	}
	if (k->cwd && !(e->cwd = strdup(k->cwd)))
		return -ENOMEM;
	if (k->cgroup && !(e->cgroup = strdup(k->cgroup)))
		return -ENOMEM;
	inst_container(e);
	e->has_ns = k->pid_ns && k->mnt_ns && k->net_ns && k->user_ns;
	e->ns[0] = k->pid_ns;
	e->ns[1] = k->mnt_ns;
	e->ns[2] = k->net_ns;
	e->ns[3] = k->user_ns;
	e->path_truncated = k->exe_cut || k->cwd_cut;
	if (c->opt.hash && e->exe && e->file_exists)
		return hash_by_path(c, e);
	if (e->exe && !e->file_exists)
		snprintf(e->hash_err, sizeof(e->hash_err), "process exited before hashing");
	e->hash_done = true;
	return 0;
}

int de_collector_exec(struct de_collector *c, const struct de_kernel_exec *k, int64_t scan_id,
		      struct de_process_record *out, struct de_error *err)
{
	struct de_process_record view;
	struct inst *e, tmp;
	bool reused;
	int rc = 0;

	e = k->pid > 0 ? read_pid(c, k->pid, true, false, &reused, &rc) : NULL;
	if (!e && rc == -ENOMEM)
		goto nomem;
	/* still the instance that exec'd, with the image the kernel ran? */
	if (e && (long long)e->ps.starttime == k->start_ticks &&
	    (!k->exe ||
	     (e->has_image && e->image.ino == k->exe_ino && e->image.dev == k->exe_dev))) {
		if (k->argv_len && !k->argv_cut && (rc = take_kernel_argv(c, k, e)) < 0)
			goto nomem;
		if (c->opt.hash && (rc = hash_exe(c, e, NULL)) < 0)
			goto nomem;
		view_record(c, e, scan_id, &view);
		if (de_process_record_copy(&view, out) < 0)
			goto nomem;
		return 0;
	}
	/* gone, or exec'd again since: the kernel's account */
	rc = kernel_inst(c, k, &tmp);
	if (rc == 0) {
		view_record(c, &tmp, scan_id, &view);
		rc = de_process_record_copy(&view, out);
	}
	inst_clear(&tmp);
	if (rc < 0)
		goto nomem;
	return 0;
nomem:
	return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
}

/* ---- scanning -------------------------------------------------------------------- */

int de_collector_scan_each(struct de_collector *c, int64_t scan_id,
			   int (*fn)(void *ctx, struct de_process_record *r), void *ctx,
			   struct de_collect_stats *stats, struct de_error *err)
{
	struct de_collect_stats st = {0};
	struct dirent *de;
	uint32_t *order = NULL; /* indices into c->v, in /proc order */
	size_t norder = 0, corder = 0;
	bool fn_failed = false;
	int prc;
	bool full;
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
	uint64_t hashed0 = de_exehash_bytes_hashed(c->hashes);
	uint64_t files0 = de_exehash_files_hashed(c->hashes);
	c->gen++;
	c->scans++;
	c->in_scan = true;
	c->cg_reads = 0;
	cg_reset(&c->cg);
	full = c->opt.full_refresh_every && c->scans % c->opt.full_refresh_every == 0;
	paths_reset(c);

	/* 1. enumerate */
	while ((de = readdir(d))) {
		struct inst *e;
		bool reused;
		char *end;
		long pid;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0 || pid > INT_MAX)
			continue;
		st.seen++;
		e = read_pid(c, (uint32_t)pid, full, true, &reused, &rc);
		if (!e) {
			if (rc == -ENOMEM)
				break;
			st.vanished++;
			rc = 0;
			continue;
		}
		if (reused) {
			st.reused++;
			/* 2. the executable check, one stat per distinct path */
			if ((rc = check_exe(c, true, e)) < 0)
				break;
		}
		hasher_offer(c, e);
		if (norder == corder) {
			size_t nc = corder ? corder * 2 : 1024;
			uint32_t *no = realloc(order, nc * sizeof(*no));
			if (!no) {
				rc = -ENOMEM;
				break;
			}
			order = no;
			corder = nc;
		}
		order[norder++] = (uint32_t)(e - c->v);
	}
	closedir(d);
	c->in_scan = false;
	st.cgroup_reads = c->cg_reads;
	cg_reset(&c->cg);

	/* 3. hash (mostly cache hits now that the worker is done), then hand
	 * out; order holds indices into c->v, valid until the prune below */
	hasher_join(c);
	for (size_t i = 0; rc == 0 && c->opt.hash && i < norder; i++)
		rc = hash_exe(c, &c->v[order[i]], NULL);
	st.hashed_bytes = de_exehash_bytes_hashed(c->hashes) - hashed0;
	st.hashed_files = (size_t)(de_exehash_files_hashed(c->hashes) - files0);
	for (size_t i = 0; rc == 0 && i < norder; i++) {
		struct de_process_record r;
		struct inst *e = &c->v[order[i]];
		view_record(c, e, scan_id, &r);
		if (!e->accessible)
			st.inaccessible++;
		st.recorded++;
		rc = fn(ctx, &r); /* borrowed: nothing to clear */
		if (rc < 0) {
			fn_failed = true;
			break;
		}
	}
	free(order);
	paths_reset(c);
	/* drop the instances not seen in this scan */
	prc = table_prune(c, c->gen);
	if (rc == 0)
		rc = prc;
	if (rc == -ENOMEM && !fn_failed)
		rc = de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	if (stats)
		*stats = st;
	return rc;
}

static int push_cb(void *ctx, struct de_process_record *r)
{
	struct de_process_record own;

	if (de_process_record_copy(r, &own) < 0)
		return -ENOMEM;
	if (de_process_list_push(ctx, &own) < 0) {
		de_process_record_clear(&own);
		return -ENOMEM;
	}
	return 0;
}

int de_collector_scan(struct de_collector *c, int64_t scan_id, struct de_process_list *out,
		      struct de_collect_stats *stats, struct de_error *err)
{
	int rc = de_collector_scan_each(c, scan_id, push_cb, out, stats, err);
	if (rc == -ENOMEM)
		rc = de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	return rc;
}
