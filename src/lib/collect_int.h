/*
 * collect_int.h — what the collector's files share (see collect.h for the
 * public API), private to src/lib/collect*.c, as store_int.h is to the
 * store's.  The files:
 *
 *   collect.c        the collector's life (open, configure, close), the
 *                    instance table, a record made from an instance, and
 *                    the scan that ties the passes together
 *   collect_facts.c  reading one process from /proc: stat, cmdline, ids,
 *                    cgroup (and the per-scan cgroup map), cwd, namespaces,
 *                    the captured environment
 *   collect_exec.c   executables: the image behind /proc/PID/exe and
 *                    whether its path still holds it, hashing beside
 *                    enumeration, and the kernel sensor's exec events
 *   collect_par.c    pass 1 in several threads (options.threads): reader
 *                    threads read distinct entries of the table into
 *                    their own buffers; the scan's thread alone checks
 *                    paths, offers images to the hasher and keeps pid order
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
 *
 * Internal functions are named collect_<verb> and have hidden visibility:
 * libdaemoneye is a static library and nothing outside these files calls
 * them.
 */
#ifndef DAEMONEYE_COLLECT_INT_H
#define DAEMONEYE_COLLECT_INT_H

#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "daemoneye/collect.h"
#include "daemoneye/identity.h"

#pragma GCC visibility push(hidden)

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

/* One live process instance, as last read (members grouped by size, so
   that a table of 10,000 wastes little on padding). */
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
	double cpu;	 /* valid when has_cpu */
	/* cgroup v2 path ("0::" line of /proc/PID/cgroup), NULL when none;
	 * read on first sight, exec and full refresh only */
	char *cgroup;
	/* identity read with the cgroup (first sight, exec, full refresh) */
	char *cwd;	     /* working directory, NULL when unknown */
	const char *runtime; /* container runtime (static), NULL when none */
	char *env;	     /* captured variables (identity.h), NULL when none */
	/* cmdline (masked) */
	char **argv;
	size_t argc;
	/* executable */
	char *exe;		     /* path (suffix removed when deleted), NULL when unknown */
	struct de_exehash_key image; /* valid when has_image */
	/* ids: the owner of /proc/PID, i.e. the effective uid and gid */
	uint32_t euid, egid;
	/* real ids from status, read only for a set-id image */
	uint32_t ruid, rgid;
	uint32_t ns[4];	     /* pid, mnt, net, user namespace inodes */
	int masked;	     /* values masked in argv */
	unsigned image_mode; /* st_mode of the image (set-id bits) */
	bool has_cpu;
	bool no_rss; /* made from the kernel's exec record: its RSS was not read */
	bool has_ids;
	bool has_real_ids;
	bool accessible;
	bool has_ns; /* ns above are known */
	bool env_truncated;
	bool path_truncated; /* the kernel sensor cut exe or cwd */
	bool cmd_truncated;
	bool has_image; /* image stat above is valid */
	bool deleted, replaced, file_exists;
	bool hash_done;
	/* 1 + where the container id (DE_CONTAINER_ID_LEN characters) starts
	   in cgroup, 0 when none: the id is always a verbatim part of the
	   path, and a table of 10,000 instances saves 0.6 MB against a copy */
	uint32_t container_at;
	char hex[DE_SHA256_HEX_LEN + 1];
	char *hash_err; /* why the image has no hash, NULL when none (rare) */
};

/* A read buffer grown on demand (cmdline, environ, cgroup files). */
struct collect_buf {
	char *p;
	size_t cap;
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

struct collect_pool; /* collect_par.c */

struct de_collector {
	int procfd; /* directory descriptor of proc_root */
	char root[PATH_MAX];
	int64_t btime_ms; /* boot time, ms since the epoch */
	long clk_tck;	  /* clock ticks per second */
	long page_size;
	unsigned ncpu; /* CPUs we may run on, counted at open (auto threads) */
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
	char uid_text[16];			      /* the user_id a borrowed record points to */
	char container_text[DE_CONTAINER_ID_LEN + 1]; /* and its container id */
	size_t rnd_left;
	/* path cache, cleared per scan */
	struct pathent *paths;
	size_t npaths, pused;
	/* read buffer for cmdline and cgroup, grown on demand, kept (each
	   reader thread of the pool has its own) */
	struct collect_buf rb;
	/* the reader threads of a parallel scan (collect_par.c), NULL until
	   the first scan that uses them */
	struct collect_pool *pool;
	/* the hashing worker of one scan (see the top of the file) */
	struct hasher *hasher;
	/* cgroups: per-scan map from the cgroup2 mount (see cg_build) */
	bool in_scan;	 /* inside de_collector_scan_each */
	size_t cg_reads; /* /proc/PID/cgroup reads in this scan (atomic adds) */
	struct cgmap cg;
	/* procmond's own mount namespace (/proc/self/ns/mnt), read once for
	   the kernel's exec events; 0 when unknown */
	uint32_t self_mnt_ns;
	bool self_mnt_read;
};

/* ---- collect.c: the instance table and records ---------------------------- */
/* Free an argv of n strings (NULL-safe). */
void collect_free_argv(char **v, size_t n);

/* Free what e owns and zero it. */
void collect_inst_clear(struct inst *e);

/* The first index slot to probe for pid (mask: slots - 1). */
size_t collect_pid_slot(uint32_t pid, size_t mask);

/* pid's entry in the instance table, NULL when absent. */
struct inst *collect_table_find(struct de_collector *c, uint32_t pid);

/* A new zeroed entry for pid, indexed.  NULL on ENOMEM. */
struct inst *collect_table_add(struct de_collector *c, uint32_t pid);

/*
 * e as a record whose strings are borrowed from e (and the collector's
 * user-id buffer): valid until the collector reads again.  Nothing is
 * allocated, so nothing can fail and nothing is to be cleared;
 * de_process_record_copy() makes an owned one.
 */
void collect_view_record(struct de_collector *c, struct inst *e, int64_t scan_id,
			 struct de_process_record *r);

/* The pid a /proc entry names (a positive decimal int, nothing else). */
bool collect_dirent_pid(const struct dirent *de, uint32_t *pid);

/* ---- collect_facts.c: reading one process from /proc ----------------------- */
/* buf := decimal pid + suffix (buf holds at least 11 + strlen(suffix)). */
void collect_pid_path(char *buf, uint32_t pid, const char *suffix);

/* An owned NUL-terminated copy of s[0..n), NULL on ENOMEM. */
char *collect_dupn(const char *s, size_t n);

/* Split a NUL-separated cmdline into argv (exact bytes). */
int collect_split_cmdline(const char *buf, size_t n, char ***argv, size_t *argc);

/* Empty the scan's cgroup map (its memory freed). */
void collect_cg_reset(struct cgmap *m);

/* The container of e's cgroup path (none when it has no cgroup or names none). */
void collect_inst_container(struct inst *e);

/*
 * Read pid into its table entry: stat always; everything else when the
 * instance is new, has exec'd, or full is set.  Returns the entry, or NULL
 * with *rc = -ESRCH (gone) or -ENOMEM.
 */
struct inst *collect_read_pid(struct de_collector *c, uint32_t pid, bool full, bool memo,
			      bool *reused, int *rc);

/*
 * The same for an entry already in the table (e->pid set; a new one
 * zeroed), safe to call from reader threads on distinct entries while the
 * table does not move: files go through b, the cgroup comes from the
 * scan's map when it is built (never built here), and the executable's
 * path is not checked (the caller runs collect_check_exe on the entry).
 * 0 (*reused: refreshed from stat alone), -ESRCH (gone: e->gen left 0) or
 * -ENOMEM.
 */
int collect_read_entry(struct de_collector *c, struct collect_buf *b, struct inst *e, bool full,
		       bool *reused);

/* Free what b holds. */
void collect_buf_free(struct collect_buf *b);

/*
 * Build the scan's cgroup map now (from the cgroup2 tree), so that reader
 * threads only look in it; empty (and not tried again in this scan) when
 * there is no cgroup2 mount.
 */
void collect_cg_build(struct de_collector *c);

/* ---- collect_par.c: reading /proc in several threads ---------------------- */
/* The threads a scan reads with: options.threads, or for 0 (auto)
   de_collect_auto_threads() of the CPUs counted at open and the proc
   root's loadavg now. */
unsigned collect_threads_wanted(const struct de_collector *c);

/*
 * Pass 1 in `threads` threads (the caller's and threads - 1 readers):
 * every pid of d read into the table, then in pid (/proc) order checked
 * (collect_check_exe), offered to the hasher and appended to *order
 * (indices into c->v).  *st counts seen, vanished and reused.  0 or
 * -ENOMEM.
 */
int collect_par_enumerate(struct de_collector *c, DIR *d, bool full, unsigned threads,
			  uint32_t **order, size_t *norder, struct de_collect_stats *st);

/* End the reader threads (NULL-safe). */
void collect_pool_free(struct collect_pool *p);

/*
 * Complete e, made of what the kernel said at an exec (k), with what the
 * event lacks, from /proc while k->pid still runs the image the kernel
 * reported (its stat into *img): the command line, cwd (*cwd_read set),
 * cgroup and namespaces only where the kernel cut them or had none, and
 * the captured environment where the kernel did not search it to its end.
 * 0, -ESRCH when the process is gone or runs another image, -ENOMEM.
 */
int collect_exec_live(struct de_collector *c, const struct de_kernel_exec *k, struct inst *e,
		      struct stat *img, bool *cwd_read);

/* ---- collect_exec.c: executables, hashing, the kernel's exec events ------- */
/*
 * Read the executable link and the image behind it into e.  Returns 0,
 * -EACCES when not permitted, -ESRCH when gone or without an image (a
 * zombie or kernel thread), -ENOMEM.
 */
int collect_read_exe(struct de_collector *c, uint32_t pid, struct inst *e);

/*
 * Does the path still hold the running image?  Stat'ing each distinct path
 * once per scan answers for every process of that executable; only when it
 * does not is the process's own image looked at again.
 */
int collect_check_exe(struct de_collector *c, bool memo, struct inst *e);

/*
 * Offer e's image to the worker, starting it on the first offer of a scan.
 * Any failure (memory, no thread) only means pass 3 hashes it instead.
 */
void collect_hasher_offer(struct de_collector *c, const struct inst *e);

/* Let the worker finish what it was offered and end it (NULL-safe). */
void collect_hasher_join(struct de_collector *c);

/* Hash the image of e (through /proc/PID/exe, so a deleted file too). */
int collect_hash_exe(struct de_collector *c, struct inst *e, struct de_collect_stats *st);

#pragma GCC visibility pop

#endif /* DAEMONEYE_COLLECT_INT_H */
