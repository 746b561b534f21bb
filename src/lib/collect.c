/*
 * collect.c — /proc enumeration (see collect.h): the collector's life, its
 * table of live instances (a vector plus an open-addressing index by pid),
 * a record made from an instance, and the scan's three passes (see
 * collect_int.h for how the work is shared with collect_facts.c and
 * collect_exec.c).
 */
#include "daemoneye/collect.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
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

#include "collect_int.h"

void de_collect_options_default(struct de_collect_options *o)
{
	memset(o, 0, sizeof(*o));
	o->hash = true;
	o->max_hash_size = 256u << 20;
	o->mask = true;
	o->full_refresh_every = 10;
	o->cgroup_walk_after = 128;
}

/* The CPUs this process may run on (counted before any seccomp filter:
   procmond's does not allow sched_getaffinity). */
static unsigned count_cpus(void)
{
	cpu_set_t set;
	long n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return (unsigned)CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
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
	c->ncpu = count_cpus();
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

void collect_free_argv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void collect_inst_clear(struct inst *e)
{
	free(e->name);
	collect_free_argv(e->argv, e->argc);
	free(e->exe);
	free(e->cgroup);
	free(e->cwd);
	free(e->env);
	free(e->hash_err);
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
		collect_inst_clear(&c->v[i]);
	free(c->v);
	free(c->idx);
	paths_reset(c);
	free(c->paths);
	collect_pool_free(c->pool);
	collect_buf_free(&c->rb);
	collect_cg_reset(&c->cg);
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

/* ---- the instance table ---------------------------------------------------- */

size_t collect_pid_slot(uint32_t pid, size_t mask)
{
	return (size_t)(uint32_t)(pid * 2654435761u) & mask; /* 32-bit multiplicative hash */
}

struct inst *collect_table_find(struct de_collector *c, uint32_t pid)
{
	if (!c->nidx)
		return NULL;
	for (size_t i = collect_pid_slot(pid, c->nidx - 1); c->idx[i].ix;
	     i = (i + 1) & (c->nidx - 1))
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
		size_t i = collect_pid_slot(c->v[k].pid, n - 1);
		while (idx[i].ix)
			i = (i + 1) & (n - 1);
		idx[i] = (struct islot){c->v[k].pid, (uint32_t)(k + 1)};
	}
	return 0;
}

/* A new zeroed entry for pid, indexed.  NULL on ENOMEM. */
struct inst *collect_table_add(struct de_collector *c, uint32_t pid)
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
	size_t i = collect_pid_slot(pid, c->nidx - 1);
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
			collect_inst_clear(&c->v[i]);
			continue;
		}
		if (k != i)
			c->v[k] = c->v[i];
		k++;
	}
	if (k == c->n)
		return 0; /* nothing dropped, nothing moved: the index holds */
	c->n = k;
	return index_rebuild(c, c->n);
}

/* ---- records ------------------------------------------------------------------- */

/*
 * e as a record whose strings are borrowed from e (and the collector's
 * user-id buffer): valid until the collector reads again.  Nothing is
 * allocated, so nothing can fail and nothing is to be cleared;
 * de_process_record_copy() makes an owned one.
 */
void collect_view_record(struct de_collector *c, struct inst *e, int64_t scan_id,
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
	r->has_memory_usage = !e->no_rss;
	r->memory_usage =
		e->no_rss ? 0 : (uint64_t)(ps->rss > 0 ? ps->rss : 0) * (uint64_t)c->page_size;
	r->accessible = e->accessible;
	r->file_exists = e->file_exists;
	f->present = true;
	if (e->has_ids) {
		/* the effective uid, as ps's uid column shows it */
		collect_pid_path(c->uid_text, e->euid, ""); /* any uint32_t, in decimal */
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
		} else if (e->hash_err) {
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
	if (e->container_at && e->cgroup) {
		memcpy(c->container_text, e->cgroup + e->container_at - 1, DE_CONTAINER_ID_LEN);
		c->container_text[DE_CONTAINER_ID_LEN] = '\0';
		f->container_id = c->container_text;
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
	e = collect_read_pid(c, (uint32_t)pid, true, false, &reused, &rc);
	if (!e) {
		if (rc == -ENOMEM)
			return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
		return rc;
	}
	if (c->opt.hash && (rc = collect_hash_exe(c, e, NULL)) < 0)
		return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	{
		struct de_process_record view;
		collect_view_record(c, e, scan_id, &view);
		if (de_process_record_copy(&view, out) < 0)
			return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	}
	return 0;
}

/* ---- scanning -------------------------------------------------------------------- */

bool collect_dirent_pid(const struct dirent *de, uint32_t *pid)
{
	char *end;
	long v;

	if (de->d_name[0] < '1' || de->d_name[0] > '9')
		return false;
	v = strtol(de->d_name, &end, 10);
	if (*end || v <= 0 || v > INT_MAX)
		return false;
	*pid = (uint32_t)v;
	return true;
}

int de_collector_scan_each(struct de_collector *c, int64_t scan_id,
			   int (*fn)(void *ctx, struct de_process_record *r), void *ctx,
			   struct de_collect_stats *stats, struct de_error *err)
{
	struct de_collect_stats st = {0};
	struct dirent *de;
	uint32_t *order = NULL; /* indices into c->v, in /proc order */
	size_t norder = 0, corder = 0;
	bool fn_failed = false;
	unsigned threads;
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
	collect_cg_reset(&c->cg);
	full = c->opt.full_refresh_every && c->scans % c->opt.full_refresh_every == 0;
	paths_reset(c);

	/* 1. enumerate (in several threads: collect_par.c) */
	if ((threads = collect_threads_wanted(c)) > 1) {
		rc = collect_par_enumerate(c, d, full, threads, &order, &norder, &st);
		goto enumerated;
	}
	while ((de = readdir(d))) {
		struct inst *e;
		bool reused;
		uint32_t pid;

		if (!collect_dirent_pid(de, &pid))
			continue;
		st.seen++;
		e = collect_read_pid(c, pid, full, true, &reused, &rc);
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
			if ((rc = collect_check_exe(c, true, e)) < 0)
				break;
		}
		collect_hasher_offer(c, e);
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
enumerated:
	closedir(d);
	c->in_scan = false;
	st.cgroup_reads = c->cg_reads;
	collect_cg_reset(&c->cg);

	/* 3. hash (mostly cache hits now that the worker is done), then hand
	 * out; order holds indices into c->v, valid until the prune below */
	collect_hasher_join(c);
	for (size_t i = 0; rc == 0 && c->opt.hash && i < norder; i++)
		rc = collect_hash_exe(c, &c->v[order[i]], NULL);
	st.hashed_bytes = de_exehash_bytes_hashed(c->hashes) - hashed0;
	st.hashed_files = (size_t)(de_exehash_files_hashed(c->hashes) - files0);
	for (size_t i = 0; rc == 0 && i < norder; i++) {
		struct de_process_record r;
		struct inst *e = &c->v[order[i]];
		collect_view_record(c, e, scan_id, &r);
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
