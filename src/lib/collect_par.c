/*
 * collect_par.c — pass 1 of a scan in several threads (collect_int.h).
 *
 * About 85% of a first scan is the kernel's work behind /proc (opening,
 * reading and readlink-ing a dozen files per process); one thread leaves
 * the other cores idle.  So the scan lists the pids first (and makes a
 * table entry for each new one, so that the table does not move), then
 * the scan's thread and options.threads - 1 reader threads claim chunks of
 * CHUNK pids and read each into its own entry, each thread into its own
 * buffer.  What is shared stays with the scan's thread: it walks the
 * chunks in pid order as they finish, checks each executable's path
 * (the per-scan path cache), offers the image to the hasher and appends
 * the entry to the order the records go out in, so records come out the
 * same and in the same order as with one thread.  The cgroup map is built
 * (or declared empty) before the readers start, so that they only look in
 * it.
 *
 * The reader threads are started by the first scan that uses them and kept
 * (idle on a condition variable) until the collector is closed; they block
 * every signal, so a signal always reaches a thread that expects it.
 */
#include "collect_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK	32 /* pids a thread claims at a time */
#define PAR_MIN 64 /* fewer pids than this: the scan's thread reads alone */

enum { SLOT_GONE, SLOT_FULL, SLOT_REUSED, SLOT_NOMEM };

struct job {
	struct de_collector *c;
	const uint32_t *ix; /* entry index in c->v of each pid, /proc order */
	uint8_t *res;	    /* SLOT_* of each pid */
	uint8_t *done;	    /* per chunk: all its pids read (release store) */
	size_t n, nchunks;
	size_t next; /* the next chunk to claim (atomic) */
	bool full;
};

struct worker {
	struct collect_pool *p;
	pthread_t th;
	struct collect_buf b;
};

struct collect_pool {
	pthread_mutex_t mu;
	pthread_cond_t wake; /* readers: a job was posted, or closing */
	pthread_cond_t idle; /* the scan's thread: a chunk is done, or a reader left */
	struct job *job;     /* the scan's job, NULL between scans */
	uint64_t seq;	     /* jobs posted */
	unsigned busy;	     /* readers inside the job */
	bool closing;
	unsigned want; /* readers asked for */
	unsigned n;    /* readers started */
	struct worker *w;
};

unsigned de_collect_auto_threads(unsigned ncpu, const char *loadavg)
{
	unsigned long running = 1; /* the caller */
	const char *p = loadavg;
	unsigned busy, t;

	/* "0.52 0.58 0.59 RUNNING/TOTAL LASTPID" */
	for (int field = 0; p && field < 3; field++)
		p = (p = strchr(p, ' ')) ? p + 1 : NULL;
	if (p && *p >= '0' && *p <= '9')
		running = strtoul(p, NULL, 10);
	busy = running > 1 ? (unsigned)(running - 1 < ncpu ? running - 1 : ncpu) : 0;
	t = ncpu - busy;
	if (t < 1)
		t = 1;
	return t < DE_COLLECT_AUTO_THREADS ? t : DE_COLLECT_AUTO_THREADS;
}

unsigned collect_threads_wanted(const struct de_collector *c)
{
	unsigned t = c->opt.threads;

	if (t == 0) {
		char text[128];
		ssize_t n = -1;
		int fd = openat(c->procfd, "loadavg", O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			n = read(fd, text, sizeof(text) - 1);
			close(fd);
		}
		if (n >= 0)
			text[n] = '\0';
		t = de_collect_auto_threads(c->ncpu, n >= 0 ? text : NULL);
	}
	if (t < 1)
		t = 1;
	return t < DE_COLLECT_MAX_THREADS ? t : DE_COLLECT_MAX_THREADS;
}

static bool claim(struct job *j, size_t *k)
{
	*k = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
	return *k < j->nchunks;
}

/* Read the pids of chunk k into their entries through b. */
static void run_chunk(struct job *j, size_t k, struct collect_buf *b)
{
	size_t end = (k + 1) * CHUNK < j->n ? (k + 1) * CHUNK : j->n;

	for (size_t i = k * CHUNK; i < end; i++) {
		bool reused;
		int rc = collect_read_entry(j->c, b, &j->c->v[j->ix[i]], j->full, &reused);
		j->res[i] = rc == 0	    ? (reused ? SLOT_REUSED : SLOT_FULL)
			    : rc == -ENOMEM ? SLOT_NOMEM
					    : SLOT_GONE;
	}
	__atomic_store_n(&j->done[k], 1, __ATOMIC_RELEASE);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct collect_pool *p = w->p;
	uint64_t seen = 0;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->closing && (p->seq == seen || !p->job))
			pthread_cond_wait(&p->wake, &p->mu);
		if (p->closing)
			break;
		seen = p->seq;
		struct job *j = p->job;
		p->busy++;
		pthread_mutex_unlock(&p->mu);
		size_t k;
		while (claim(j, &k)) {
			run_chunk(j, k, &w->b);
			pthread_mutex_lock(&p->mu);
			pthread_cond_signal(&p->idle);
			pthread_mutex_unlock(&p->mu);
		}
		pthread_mutex_lock(&p->mu);
		p->busy--;
		pthread_cond_signal(&p->idle);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

void collect_pool_free(struct collect_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->closing = true;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->n; i++) {
		pthread_join(p->w[i].th, NULL);
		collect_buf_free(&p->w[i].b);
	}
	pthread_cond_destroy(&p->idle);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->mu);
	free(p->w);
	free(p);
}

/* The collector's pool of `want` readers, started now if need be; NULL
   when none could be (the scan's thread then reads alone). */
static struct collect_pool *pool_get(struct de_collector *c, unsigned want)
{
	struct collect_pool *p = c->pool;
	sigset_t all, old;

	if (want == 0)
		return NULL;
	if (p && p->want == want)
		return p->n ? p : NULL;
	collect_pool_free(p);
	c->pool = NULL;
	if (!(p = calloc(1, sizeof(*p))) || !(p->w = calloc(want, sizeof(*p->w)))) {
		free(p);
		return NULL;
	}
	p->want = want;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->wake, NULL);
	pthread_cond_init(&p->idle, NULL);
	/* the readers inherit a mask blocking every signal */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (unsigned i = 0; i < want; i++) {
		p->w[p->n].p = p;
		if (pthread_create(&p->w[p->n].th, NULL, worker_main, &p->w[p->n]) != 0)
			break;
		/* for top -H and the tests (through /proc/self/task/TID/comm,
		   which the seccomp filter allows, not prctl) */
		(void)pthread_setname_np(p->w[p->n].th, "de-reader");
		p->n++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	c->pool = p; /* kept even when empty: not tried again every scan */
	return p->n ? p : NULL;
}

/* Merge chunk k, in pid order: check, offer, append.  0 or -ENOMEM. */
static int merge_chunk(struct de_collector *c, struct job *j, size_t k, uint32_t *order,
		       size_t *norder, struct de_collect_stats *st)
{
	size_t end = (k + 1) * CHUNK < j->n ? (k + 1) * CHUNK : j->n;

	for (size_t i = k * CHUNK; i < end; i++) {
		struct inst *e = &c->v[j->ix[i]];
		int rc;
		if (j->res[i] == SLOT_NOMEM)
			return -ENOMEM;
		if (j->res[i] == SLOT_GONE) {
			st->vanished++;
			continue;
		}
		if (j->res[i] == SLOT_REUSED)
			st->reused++;
		/* the executable check, one stat per distinct path */
		if ((rc = collect_check_exe(c, true, e)) < 0)
			return rc;
		collect_hasher_offer(c, e);
		order[(*norder)++] = j->ix[i];
	}
	return 0;
}

/* The pids of d, each with its table entry (made for a new one): their
   indices into *ix, how many into *n, of which *added new.  0 or -ENOMEM. */
static int list_pids(struct de_collector *c, DIR *d, uint32_t **ix, size_t *n, size_t *added,
		     struct de_collect_stats *st)
{
	struct dirent *de;
	size_t cap = 0;

	*ix = NULL;
	*n = *added = 0;
	while ((de = readdir(d))) {
		struct inst *e;
		uint32_t pid;
		if (!collect_dirent_pid(de, &pid))
			continue;
		st->seen++;
		if (!(e = collect_table_find(c, pid))) {
			if (!(e = collect_table_add(c, pid)))
				return -ENOMEM;
			++*added;
		}
		if (*n == cap) {
			size_t nc = cap ? cap * 2 : 1024;
			uint32_t *nv = realloc(*ix, nc * sizeof(*nv));
			if (!nv)
				return -ENOMEM;
			*ix = nv;
			cap = nc;
		}
		(*ix)[(*n)++] = (uint32_t)(e - c->v);
	}
	return 0;
}

int collect_par_enumerate(struct de_collector *c, DIR *d, bool full, unsigned threads,
			  uint32_t **order, size_t *norder, struct de_collect_stats *st)
{
	struct job j = {.c = c, .full = full};
	struct collect_pool *p = NULL;
	uint32_t *ix = NULL;
	size_t n, added, cursor = 0, k;
	int rc;

	*order = NULL;
	*norder = 0;
	if ((rc = list_pids(c, d, &ix, &n, &added, st)) < 0)
		goto out;
	/* the readers only look in the cgroup map: build it now when the
	   scan reads enough processes in full, else read one by one */
	if ((full ? n : added) > c->opt.cgroup_walk_after)
		collect_cg_build(c);
	else
		c->cg.built = true;
	j.ix = ix;
	j.n = n;
	j.nchunks = (n + CHUNK - 1) / CHUNK;
	j.res = calloc(n ? n : 1, 1);
	j.done = calloc(j.nchunks ? j.nchunks : 1, 1);
	*order = malloc((n ? n : 1) * sizeof(**order));
	if (!j.res || !j.done || !*order) {
		rc = -ENOMEM;
		goto out;
	}
	if (n >= PAR_MIN && (p = pool_get(c, threads - 1))) {
		pthread_mutex_lock(&p->mu);
		p->job = &j;
		p->seq++;
		pthread_cond_broadcast(&p->wake);
		pthread_mutex_unlock(&p->mu);
	}
	while (cursor < j.nchunks) {
		if (__atomic_load_n(&j.done[cursor], __ATOMIC_ACQUIRE)) {
			if ((rc = merge_chunk(c, &j, cursor++, *order, norder, st)) < 0) {
				/* no more claims; the readers finish theirs */
				__atomic_store_n(&j.next, j.nchunks, __ATOMIC_RELAXED);
				break;
			}
			continue;
		}
		if (claim(&j, &k)) {
			run_chunk(&j, k, &c->rb);
			continue;
		}
		/* every chunk is claimed and the next to merge is a reader's
		   (alone, the scan's thread finished each chunk it claimed) */
		if (!p)
			break;
		pthread_mutex_lock(&p->mu);
		while (!__atomic_load_n(&j.done[cursor], __ATOMIC_ACQUIRE))
			pthread_cond_wait(&p->idle, &p->mu);
		pthread_mutex_unlock(&p->mu);
	}
	if (p) {
		/* no reader may touch the table after this returns */
		pthread_mutex_lock(&p->mu);
		p->job = NULL;
		while (p->busy)
			pthread_cond_wait(&p->idle, &p->mu);
		pthread_mutex_unlock(&p->mu);
	}
out:
	free(ix);
	free(j.res);
	free(j.done);
	return rc;
}
