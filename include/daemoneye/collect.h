/*
 * collect.h — reading processes from /proc into ProcessRecords.
 *
 * Nothing a process can put in /proc fails a scan: names and arguments are
 * kept as exact bytes (newlines, control characters, invalid UTF-8 and all),
 * a process we may not inspect is recorded with accessible=false and what
 * could be read, and a process that exits while it is read is dropped
 * quietly.  The identity of a process instance is (pid, start_time).
 *
 * record.facts (struct de_linux_facts, record.h; platform_data in JSON)
 * carries the Linux facts (see docs/collection.md): state,
 * threads, effective ids (euid, egid; user_id is the euid, as ps shows it),
 * real ids (uid, gid) for set-id images only, cgroup (v2 path, read on
 * first sight; a scan takes most from one walk of the cgroup2 tree),
 * session, pgrp, tty_nr, nice, kernel_thread, exe_deleted, exe_replaced,
 * exe_inode/exe_device, utime/stime ticks, cmdline_truncated,
 * cmdline_masked, hash_error, comm (the record's name is the full name when
 * comm cuts it, identity.h), cwd, the namespaces, container_id and
 * container_runtime (from the cgroup), env (options.env_names); cwd, the
 * namespaces and env are read with the cgroup (first sight, exec, full
 * refresh).
 *
 * The collector remembers every live process instance between scans: that
 * gives cpu_usage (percent of one core since the previous sample of the
 * same (pid, start_time); absent on the first sample) and lets a rescan read
 * only /proc/PID/stat for an instance it already knows (an exec is noticed
 * by comm, start_code and start_stack changing; every
 * full_refresh_every-th scan re-reads everything).  Executables are hashed
 * (SHA-256, exehash.h) by a worker thread while enumeration goes on, and in a
 * pass after it for what the worker could not, so hashing never holds up
 * the listing; command lines are masked (mask.h) when they are read.
 *
 * Ownership: de_process_list owns its records; clear it with
 * de_process_list_clear().
 */
#ifndef DAEMONEYE_COLLECT_H
#define DAEMONEYE_COLLECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemoneye/error.h"
#include "daemoneye/exehash.h"
#include "daemoneye/record.h"

/*
 * Longest command line kept (bytes); longer ones are cut and flagged
 * (cmdline_truncated).  Chosen so that no value rules read can pass the
 * rule sandbox's limit whatever a process puts in its argv: argv_json, the
 * longest form (6 bytes per control byte, \u0001), stays below
 * DE_VALIDATOR_MAX_VALUE with room for a rule to join it to another column;
 * the kernel accepts up to 6 MiB of arguments.
 */
#define DE_COLLECT_MAX_CMDLINE (1u << 20)

struct de_process_list {
	struct de_process_record *items; /* owned */
	size_t len;
	size_t cap;
};

struct de_collect_stats {
	size_t seen;	       /* numeric entries found in /proc */
	size_t recorded;       /* records produced */
	size_t vanished;       /* exited while being read */
	size_t inaccessible;   /* recorded with accessible=false */
	size_t reused;	       /* known instances refreshed from stat alone */
	uint64_t hashed_bytes; /* bytes read for hashing in this scan */
	size_t hashed_files;   /* files hashed in this scan (cache misses) */
	size_t cgroup_reads;   /* /proc/PID/cgroup files read (the rest: cgroup2 tree) */
};

struct de_collect_options {
	bool hash;		       /* SHA-256 of executables (default true) */
	uint64_t max_hash_size;	       /* bytes; 0 = no limit (default 256 MiB) */
	bool mask;		       /* mask secrets in argv (default true) */
	const char *const *mask_flags; /* NULL: de_mask_default_flags; copied */
	size_t nmask_flags;
	unsigned full_refresh_every; /* every Nth scan re-reads all files; 0 never (default 10) */
	/* new processes a scan reads /proc/PID/cgroup for before it walks the
	 * cgroup2 tree for the rest (default 128) */
	unsigned cgroup_walk_after;
	/* environment variables captured into the env fact (identity.h),
	   masked with mask_flags when mask is set; NULL: none; copied */
	const char *const *env_names;
	size_t nenv_names;
	/* threads that read /proc in a scan (the scan's own included): 0 =
	   auto (de_collect_auto_threads, decided at each scan), 1 = the
	   scan's thread alone.  Records come out the same, in the same
	   order, whatever the count (default 0) */
	unsigned threads;
};

/* Most threads a scan reads /proc with (options.threads). */
#define DE_COLLECT_MAX_THREADS 16u
/* Threads options.threads 0 (auto) stands for at most. */
#define DE_COLLECT_AUTO_THREADS 4u

/*
 * The threads options.threads 0 (auto) stands for, from the CPUs this
 * process may run on and the text of /proc/loadavg (NULL or unreadable:
 * none known busy): one per CPU that no other task is running on at the
 * moment (its fourth field counts the running tasks, the caller among
 * them), at least 1, at most DE_COLLECT_AUTO_THREADS.  A reader thread
 * only helps on a free CPU: on a busy one it shares the scan's CPU time
 * and the scan waits for it.
 */
unsigned de_collect_auto_threads(unsigned ncpu, const char *loadavg);

/* Fill *o with the defaults above. */
void de_collect_options_default(struct de_collect_options *o);

struct de_collector;

/* Open a collector on proc_root (NULL: "/proc"). */
int de_collector_open(const char *proc_root, struct de_collector **out, struct de_error *err);
void de_collector_close(struct de_collector *c);

/* Apply options (the collector starts with the defaults).  0 or -ENOMEM. */
int de_collector_configure(struct de_collector *c, const struct de_collect_options *o,
			   struct de_error *err);

/*
 * Read every process and call fn(ctx, record) for each, in /proc order,
 * after the hashing pass.  The record is borrowed: its strings are the
 * collector's own, valid during the call only; fn must not free or change
 * them, and copies what it keeps (de_process_record_copy).  Handing out
 * views, not copies, saves a scan about twenty allocations per process.
 * A callback returning < 0 stops the scan with that value.  Fails only if
 * proc_root cannot be listed, on ENOMEM, or when fn fails.
 */
int de_collector_scan_each(struct de_collector *c, int64_t scan_id,
			   int (*fn)(void *ctx, struct de_process_record *r), void *ctx,
			   struct de_collect_stats *stats, struct de_error *err);

/* The options in effect (borrowed; valid until the next configure/close). */
const struct de_collect_options *de_collector_options(const struct de_collector *c);

/* Bytes hashed since the collector was opened (for the warm-rescan check). */
uint64_t de_collector_hashed_bytes(const struct de_collector *c);

/*
 * Read every process into *out (appended).  Fails only if proc_root itself
 * cannot be listed; individual processes never fail the scan.
 */
int de_collector_scan(struct de_collector *c, int64_t scan_id, struct de_process_list *out,
		      struct de_collect_stats *stats, struct de_error *err);

/*
 * Read one process completely (every file, hashed at once; used for exec
 * events).  Returns 0 with *out filled, -ESRCH if the process does not
 * exist (or exited while being read), another negative errno on ENOMEM.
 * The instance is remembered for the next scan.
 */
int de_collector_read(struct de_collector *c, pid_t pid, int64_t scan_id,
		      struct de_process_record *out, struct de_error *err);

/*
 * The record of an exec the kernel sensor reported (bpfevents.h), made of
 * what the kernel read at the exec (argv, image, cwd, cgroup, ids, parent,
 * start, times, namespaces), completed from /proc with only what the event
 * lacks while the process still runs the image the kernel reported (the
 * inode behind /proc/PID/exe): the captured environment, and argv, paths,
 * cgroup or namespaces where the kernel cut them or had none.  Its stat is
 * not read: state, threads and times are the kernel's at the exec, memory
 * unknown (0).  A process already gone keeps the kernel's account (no
 * environment).  The image is hashed through its path when that still
 * names the file the kernel ran, else through /proc/PID/exe while the
 * process runs it.  argv is masked either way.  The collector's instance
 * table is not touched.  0 with *out filled (owned), or -ENOMEM.
 */
int de_collector_exec(struct de_collector *c, const struct de_kernel_exec *k, int64_t scan_id,
		      struct de_process_record *out, struct de_error *err);

void de_process_list_clear(struct de_process_list *l);
/* Append a record (moved in: *r is zeroed). */
int de_process_list_push(struct de_process_list *l, struct de_process_record *r);

#endif
