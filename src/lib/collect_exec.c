/*
 * collect_exec.c — executables for the collector (collect_int.h): the image
 * behind /proc/PID/exe and whether its path still holds it (one stat per
 * distinct path per scan), hashing images on a worker thread beside
 * enumeration, and the kernel sensor's exec events made into records
 * (de_collector_exec), from the event's own facts when the process is gone.
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
int collect_read_exe(struct de_collector *c, uint32_t pid, struct inst *e)
{
	static const char suffix[] = " (deleted)";
	const size_t sl = sizeof(suffix) - 1;
	char path[64], target[PATH_MAX + 1];
	struct stat img;
	ssize_t l;

	collect_pid_path(path, pid, "/exe");
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
int collect_check_exe(struct de_collector *c, bool memo, struct inst *e)
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
	if ((rc = collect_read_exe(c, e->pid, e)) < 0)
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
		collect_pid_path(path, j.pid, "/exe");
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
void collect_hasher_offer(struct de_collector *c, const struct inst *e)
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
void collect_hasher_join(struct de_collector *c)
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

/* e's reason for having no hash := err ("": none); rc, or -ENOMEM. */
static int keep_reason(struct inst *e, const char *err, int rc)
{
	free(e->hash_err);
	e->hash_err = NULL;
	if (err[0] && !(e->hash_err = strdup(err)))
		return -ENOMEM;
	return rc;
}

/* e has no hash, for the reason why: 0, or -ENOMEM. */
static int hash_fail(struct inst *e, const char *why)
{
	e->hex[0] = '\0';
	return keep_reason(e, why, 0);
}

/* Hash the image of e (through /proc/PID/exe, so a deleted file too). */
int collect_hash_exe(struct de_collector *c, struct inst *e, struct de_collect_stats *st)
{
	char path[64], err[DE_EXEHASH_REASON_MAX] = "";
	int fd, rc;

	if (e->hash_done || !e->exe)
		return 0;
	e->hash_done = true;
	e->hex[0] = '\0';
	if (!e->has_image)
		return keep_reason(e, "executable not accessible", 0);
	if (de_exehash_lookup(c->hashes, &e->image, e->hex, err))
		return keep_reason(e, err, 0);
	collect_pid_path(path, e->pid, "/exe");
	fd = openat(c->procfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int er = errno;
		if (er == ENOENT || er == ESRCH) /* exited since: not the file's, not cached */
			return keep_reason(e, "process exited before hashing", 0);
		snprintf(err, sizeof(err), "cannot open: %s", strerror(er));
		return keep_reason(e, err, de_exehash_remember_failure(c->hashes, &e->image, err));
	}
	uint64_t before = de_exehash_bytes_hashed(c->hashes),
		 files = de_exehash_files_hashed(c->hashes);
	struct de_exehash_key k;
	rc = de_exehash_fd(c->hashes, fd, e->hex, err, &k);
	close(fd);
	if (st) {
		st->hashed_bytes += de_exehash_bytes_hashed(c->hashes) - before;
		st->hashed_files += de_exehash_files_hashed(c->hashes) - files;
	}
	if (rc == 0 && !de_exehash_key_equal(&k, &e->image))
		e->image = k;
	return keep_reason(e, err, rc);
}

/* The kernel's argv of k, split and masked into e (replacing what e had). */
static int take_kernel_argv(struct de_collector *c, const struct de_kernel_exec *k, struct inst *e)
{
	char **v;
	size_t n;
	int rc;

	if ((rc = collect_split_cmdline(k->argv, k->argv_len, &v, &n)) < 0)
		return rc;
	if (c->opt.mask) {
		size_t nf = c->opt.mask_flags ? c->opt.nmask_flags : 0;
		if ((rc = de_mask_argv(v, n, c->opt.mask_flags, nf)) < 0) {
			collect_free_argv(v, n);
			return rc;
		}
	}
	collect_free_argv(e->argv, e->argc);
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
	char err[DE_EXEHASH_REASON_MAX] = "";
	struct de_exehash_key k;
	struct stat sb;
	int fd, rc;

	e->hash_done = true;
	if (de_exehash_lookup(c->hashes, &e->image, e->hex, err))
		return keep_reason(e, err, 0);
	fd = open(e->exe, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		if (fd >= 0)
			close(fd);
		return hash_fail(e, "process exited before hashing");
	}
	de_exehash_key_from_stat(&sb, &k);
	if (!de_exehash_key_equal(&k, &e->image)) {
		close(fd);
		return hash_fail(e, "process exited before hashing");
	}
	rc = de_exehash_fd(c->hashes, fd, e->hex, err, NULL);
	close(fd);
	return keep_reason(e, err, rc);
}

static bool kernel_path_holds(struct de_collector *c, const struct de_kernel_exec *k);

/* An instance made of what the kernel said alone (not in the table; not
   hashed yet). */
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
	e->no_rss = true; /* unknown, not 0: the next scan reads it */
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
	if (!(e->name = collect_dupn(k->comm, e->name_len)))
		return -ENOMEM;
	if ((rc = take_kernel_argv(c, k, e)) < 0)
		return rc;
	if (k->exe) {
		if (!(e->exe = strdup(k->exe)))
			return -ENOMEM;
		/* the image is what the kernel ran when the path still names it:
		   the kernel says so when the image's dentry was linked at the
		   exec and the path is one of our mount namespace; else ask */
		if (kernel_path_holds(c, k)) {
			e->image = (struct de_exehash_key){k->exe_dev, k->exe_ino, k->exe_size,
							   k->exe_mtime_ns, k->exe_ctime_ns};
			e->image_mode = k->exe_mode;
			e->has_image = e->file_exists = true;
		} else if (stat(k->exe, &sb) == 0 && sb.st_ino == k->exe_ino &&
			   sb.st_dev == k->exe_dev) {
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
	collect_inst_container(e);
	e->has_ns = k->pid_ns && k->mnt_ns && k->net_ns && k->user_ns;
	e->ns[0] = k->pid_ns;
	e->ns[1] = k->mnt_ns;
	e->ns[2] = k->net_ns;
	e->ns[3] = k->user_ns;
	e->path_truncated = k->exe_cut || k->cwd_cut;
	/* the environment as the kernel found it (when cut, collect_exec_live
	   reads it whole while the process runs) */
	if (k->has_env && c->opt.nenv_names &&
	    de_identity_env(k->env, k->env_len, c->opt.env_names, c->opt.nenv_names, c->opt.mask,
			    c->opt.mask_flags, c->opt.mask_flags ? c->opt.nmask_flags : 0, &e->env,
			    &e->env_truncated) < 0)
		return -ENOMEM;
	return 0;
}

/* procmond's own mount namespace (0: unknown), read once. */
static uint32_t self_mnt_ns(struct de_collector *c)
{
	char link[64], *b;
	ssize_t l;

	if (!c->self_mnt_read) {
		c->self_mnt_read = true;
		l = readlink("/proc/self/ns/mnt", link, sizeof(link) - 1);
		if (l > 0) {
			link[l] = '\0';
			b = strchr(link, '[');
			c->self_mnt_ns = b ? (uint32_t)strtoul(b + 1, NULL, 10) : 0;
		}
	}
	return c->self_mnt_ns;
}

/*
 * Does k->exe name, in our mount namespace, the file the kernel ran, as
 * far as the kernel could tell at the exec?  Its dentry was linked (not
 * " (deleted)"), the path was walked whole, and the process's mount
 * namespace is ours, so the path is the one /proc/PID/exe shows us and
 * stat(k->exe) would find this inode.  Then the kernel's stat of the
 * image is the record's and nothing needs a system call.
 */
static bool kernel_path_holds(struct de_collector *c, const struct de_kernel_exec *k)
{
	return k->has_exe_stat && !k->exe_unlinked && !k->exe_cut && k->exe_nlink > 0 &&
	       k->mnt_ns && k->mnt_ns == self_mnt_ns(c);
}

/*
 * Whether the kernel's account of k leaves anything that /proc must give
 * (so that an exec it tells whole costs no read of /proc at all): a part
 * it cut or had none of, the environment not searched to its end, or an
 * image whose path no longer names it (hashed through /proc/PID/exe).
 */
static bool kernel_lacks(const struct de_collector *c, const struct de_kernel_exec *k,
			 const struct inst *e)
{
	return k->argv_cut || k->cwd_cut || !k->cwd || k->cgroup_cut || !k->cgroup || !e->has_ns ||
	       (c->opt.nenv_names && (!k->has_env || k->env_cut)) ||
	       (k->exe && (k->exe_cut || !e->file_exists));
}

/*
 * The path of the image a live process runs, from /proc/PID/exe, when the
 * kernel cut it.  0 (a process gone meanwhile keeps the kernel's cut
 * path), or -ENOMEM.
 */
static int live_path(struct de_collector *c, const struct de_kernel_exec *k, struct inst *e,
		     bool *read)
{
	struct inst t = {0};
	int rc = collect_read_exe(c, k->pid, &t);

	if (rc == 0 && t.has_image && t.image.ino == k->exe_ino && t.image.dev == k->exe_dev) {
		free(e->exe);
		e->exe = t.exe;
		t.exe = NULL;
		*read = true;
	}
	free(t.exe);
	return rc == -ENOMEM ? rc : 0;
}

int de_collector_exec(struct de_collector *c, const struct de_kernel_exec *k, int64_t scan_id,
		      struct de_process_record *out, struct de_error *err)
{
	struct de_process_record view;
	bool alive = false, cwd_read = false, exe_read = false;
	struct stat img;
	struct inst e;
	int rc;

	/* the kernel's account first: all that an exec that already exited has */
	rc = kernel_inst(c, k, &e);
	/* then what the event lacks, from /proc while the process still runs
	   the image the kernel reported */
	if (rc == 0 && k->pid > 0 && kernel_lacks(c, k, &e)) {
		rc = collect_exec_live(c, k, &e, &img, &cwd_read);
		alive = rc == 0;
		if (rc == -ESRCH)
			rc = 0;
	}
	if (rc == 0 && alive && k->exe && !e.file_exists) {
		/* its path no longer names the file: the running image as it is */
		de_exehash_key_from_stat(&img, &e.image);
		e.image_mode = (unsigned)img.st_mode;
		e.deleted = img.st_nlink == 0; /* else renamed, or replaced (kernel_inst) */
	}
	/* a cut path, or one that may name nothing here (a memfd, an image
	   of another mount namespace's): the one /proc/PID/exe shows us, and
	   whether that still names the image */
	if (rc == 0 && alive && k->exe && (k->exe_cut || k->exe_unlinked)) {
		rc = live_path(c, k, &e, &exe_read);
		if (rc == 0 && exe_read && k->exe_unlinked) {
			struct stat sb;
			bool there = stat(e.exe, &sb) == 0;
			e.file_exists =
				there && sb.st_ino == e.image.ino && sb.st_dev == e.image.dev;
			e.replaced = there && !e.file_exists;
		}
	}
	e.path_truncated = (k->exe_cut && !exe_read) || (k->cwd_cut && !cwd_read);
	/* the image hashed through its path while that still names the file the
	   kernel ran, else through the process while it runs it */
	if (rc == 0 && e.exe) {
		if (e.file_exists)
			rc = c->opt.hash ? hash_by_path(c, &e) : 0;
		else if (alive)
			rc = c->opt.hash ? collect_hash_exe(c, &e, NULL) : 0;
		else
			rc = hash_fail(&e, "process exited before hashing");
	}
	e.hash_done = true;
	if (rc == 0) {
		collect_view_record(c, &e, scan_id, &view);
		rc = de_process_record_copy(&view, out);
	}
	collect_inst_clear(&e);
	if (rc < 0)
		return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	return 0;
}
