/*
 * collect.h — reading processes from /proc into ProcessRecords.
 *
 * Nothing a process can put in /proc fails a scan: names and arguments are
 * kept as exact bytes (newlines, control characters, invalid UTF-8 and all),
 * a process we may not inspect is recorded with accessible=false and what
 * could be read, and a process that exits while it is read is dropped
 * quietly.  The identity of a process instance is (pid, start_time).
 *
 * platform_data carries the Linux facts (see docs/collection.md): state,
 * threads, ppid-independent ids (euid, gid, egid), session, pgrp, tty_nr,
 * nice, kernel_thread, exe_deleted, exe_inode/exe_device, utime/stime ticks,
 * cmdline_truncated.
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
#include "daemoneye/model.h"

/* Longest command line kept (bytes); longer ones are cut and flagged. */
#define DE_COLLECT_MAX_CMDLINE (4u << 20)

struct de_process_list {
	struct de_process_record *items; /* owned */
	size_t len;
	size_t cap;
};

struct de_collect_stats {
	size_t seen;	     /* numeric entries found in /proc */
	size_t recorded;     /* records produced */
	size_t vanished;     /* exited while being read */
	size_t inaccessible; /* recorded with accessible=false */
};

struct de_collector;

/* Open a collector on proc_root (NULL: "/proc"). */
int de_collector_open(const char *proc_root, struct de_collector **out, struct de_error *err);
void de_collector_close(struct de_collector *c);

/*
 * Read every process into *out (appended).  Fails only if proc_root itself
 * cannot be listed; individual processes never fail the scan.
 */
int de_collector_scan(struct de_collector *c, int64_t scan_id, struct de_process_list *out,
		      struct de_collect_stats *stats, struct de_error *err);

/*
 * Read one process.  Returns 0 with *out filled, -ESRCH if the process does
 * not exist (or exited while being read), another negative errno on ENOMEM.
 */
int de_collector_read(struct de_collector *c, pid_t pid, int64_t scan_id,
		      struct de_process_record *out, struct de_error *err);

void de_process_list_clear(struct de_process_list *l);
/* Append a record (moved in: *r is zeroed). */
int de_process_list_push(struct de_process_list *l, struct de_process_record *r);

#endif
