/*
 * record.h — the seed's ProcessRecord: one process as the collector saw it,
 * with the Linux facts it read (flat, see docs/collection.md), their JSON
 * form (the seed's platform_data), and lifetime, copy and equality.
 *
 * Optional seed fields (Option<T>) are either a NULL pointer (strings,
 * JSON) or a value plus a `has_` flag (numbers).  JSON uses the seed's field
 * names; an absent optional is written as null and read back from null or a
 * missing member.  Strings that come from /proc are bytes, not always UTF-8:
 * such a string is written as valid JSON with U+FFFD in place of each invalid
 * byte, and its exact bytes go beside it in "<field>_raw" (base64; for
 * command_line an array of base64 strings), so records round-trip exactly and
 * every consumer still gets valid JSON.
 *
 * Ownership: a record owns all its pointers (malloc'd strings, jansson
 * references).  de_process_record_free releases what it owns and the
 * struct; de_process_record_clear resets one that lives on the stack; both
 * accept NULL.
 */
#ifndef DAEMONEYE_RECORD_H
#define DAEMONEYE_RECORD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemoneye/error.h"
#include "daemoneye/facts.h"
#include "daemoneye/uuid.h"

struct de_process_record {
	struct de_uuid id;	 /* unique identifier of this record */
	int64_t scan_id;	 /* scan this record belongs to */
	int64_t collection_time; /* ms since the Unix epoch */
	uint32_t pid;		 /* process ID */
	bool has_ppid;		 /* ppid is Option<u32> */
	uint32_t ppid;		 /* parent process ID */
	char *name;		 /* process name (comm); never NULL */
	char *executable_path;	 /* NULL when unknown */
	char **command_line;	 /* argv, exactly as the kernel holds it */
	size_t command_line_len; /* number of entries in command_line */
	bool has_start_time;
	int64_t start_time; /* ms since the Unix epoch */
	bool has_cpu_usage;
	double cpu_usage; /* percent of one core since the last sample */
	bool has_memory_usage;
	uint64_t memory_usage; /* resident bytes */
	char *executable_hash; /* lowercase hex SHA-256, or NULL */
	char *hash_algorithm;  /* "sha256" when hashed, else NULL */
	char *user_id;	       /* effective uid (as ps shows it), decimal, or NULL */
	bool accessible;       /* could we read the process's details */
	bool file_exists;      /* does executable_path exist on disk */
	/* Collector facts (facts.present).  The seed's platform_data is their
	 * JSON form followed by the members of platform_data below. */
	struct de_linux_facts facts;
	/* Without facts: the whole platform_data value (any JSON, NULL = None),
	 * as records parsed from JSON carry it.  With facts: NULL, or an object
	 * of extra members written after the facts' own. */
	json_t *platform_data;
};

void de_process_record_clear(struct de_process_record *r);
void de_process_record_free(struct de_process_record *r);
/*
 * An owned deep copy of src into *out (strings, argv, facts' text; the
 * platform_data JSON is shared by reference).  0, or -ENOMEM with *out
 * untouched.
 */
int de_process_record_copy(const struct de_process_record *src, struct de_process_record *out);
/*
 * The heap bytes r holds beyond its struct, as the allocator counts them
 * (each string, argv and its strings, the facts' text, the platform_data
 * JSON estimated from its compact text): what a queue of records charges
 * against a memory bound.
 */
size_t de_process_record_heap_bytes(const struct de_process_record *r);
/*
 * Field-by-field equality (strings by bytes, JSON by json_equal).  Facts
 * compare field by field with facts; a record with facts and one with a
 * JSON platform_data compare by their platform_data JSON.
 */
bool de_process_record_equal(const struct de_process_record *a, const struct de_process_record *b);
struct de_buf;
/*
 * Append the record's compact JSON text to b, byte for byte what
 * json_dumps(de_process_record_to_json(r), JSON_COMPACT) writes, without
 * building the jansson object when the record allows it (every text valid
 * UTF-8, no platform_data beside the facts): procmond --once --output json
 * writes a scan this way.  0, or -ENOMEM/-E2BIG from the buffer.
 */
int de_process_record_json_buf(const struct de_process_record *r, struct de_buf *b);

/* Serialise to a new JSON object (caller owns the reference), NULL on ENOMEM.
 * platform_data is the facts' JSON (see de_process_record_platform_json). */
json_t *de_process_record_to_json(const struct de_process_record *r);
/*
 * The seed's platform_data of r as a JSON value: the facts as an object
 * (then the members of r->platform_data), or r->platform_data itself
 * without facts.  A new reference the caller owns (json_null() when r has
 * neither); NULL on ENOMEM.
 */
json_t *de_process_record_platform_json(const struct de_process_record *r);
/*
 * Parse a JSON object into *out (which must be zeroed or cleared).  Missing
 * required members, wrong types and out-of-range numbers are ValidationErrors
 * naming the member; *out is left cleared on failure.  platform_data is kept
 * as JSON (facts.present stays false).
 */
int de_process_record_from_json(const json_t *j, struct de_process_record *out,
				struct de_error *err);

/*
 * The facts of r as compact JSON text, byte for byte what
 * json_dumps(..., JSON_COMPACT) writes for them (the facts' members only,
 * not r->platform_data's extras).  Like snprintf: writes at most cap bytes
 * to buf (NUL-terminated when the result is shorter than cap) and returns
 * the length of the whole text; -ENOMEM (only for facts text that is not
 * valid UTF-8, which needs a scratch buffer), -EINVAL when r has no facts.
 */
long de_linux_facts_json(const struct de_process_record *r, char *buf, size_t cap);
/* ---- a TCP connection --------------------------------------------------- */

/* What a connection row says a process did. */
enum de_conn_kind {
	DE_CONN_CONNECT = 1,	/* an outbound connection (established) */
	DE_CONN_CONNECT_FAILED, /* an outbound attempt that never was established */
	DE_CONN_LISTEN,		/* a listening socket */
	DE_CONN_ACCEPT,		/* an inbound connection */
	DE_CONN_KIND_MAX
};

/* Its name in the store and the CLI ("connect", ...); NULL when out of range. */
const char *de_conn_kind_name(enum de_conn_kind k);

/*
 * One TCP connection of one process instance, as the kernel sensor
 * reported it or a scan found it (the process's socket descriptors joined
 * with /proc/net/tcp{,6}).
 */
struct de_connection {
	uint32_t pid;		/* the process */
	int64_t start_time;	/* its start, ms since the epoch (0: unknown) */
	enum de_conn_kind kind; /* what it did */
	uint8_t family;		/* 4 or 6 */
	uint8_t laddr[16];	/* local address (IPv4: the first 4 bytes), network order */
	uint8_t raddr[16];	/* remote address (unspecified for a listener) */
	uint16_t lport, rport;	/* host order */
	uint64_t inode;		/* the socket's inode (0: not known) */
	int64_t time_ms;	/* when it was seen, ms since the epoch */
	bool from_scan;		/* found by a scan, not reported by the kernel */
};

/* ---- the kernel's account of an exec ------------------------------------- */

/*
 * What the kernel sensor (bpfevents.h) read at an exec, before user space
 * could look: borrowed views (strings NUL-terminated, not always UTF-8).
 * de_collector_exec() turns it into a record.
 */
struct de_kernel_exec {
	uint32_t pid, ppid;
	uint32_t uid, gid, euid, egid; /* real and effective ids */
	uint32_t pgrp, session, tty_nr;
	int32_t nice;
	uint32_t threads;
	int64_t start_ticks; /* start in clock ticks after boot, as /proc/PID/stat */
	int64_t utime_ticks, stime_ticks;
	uint64_t exe_ino; /* the image's inode and device (user space's dev_t) */
	uint64_t exe_dev;
	uint32_t pid_ns, mnt_ns, net_ns, user_ns; /* namespace inodes */
	char comm[16];				  /* the kernel's comm (at most 15 bytes) */
	const char *exe;			  /* the image's path, NULL when it has none */
	const char *cwd;			  /* the working directory, NULL when unknown */
	const char *cgroup;			  /* the cgroup v2 path, NULL when unknown */
	const char *argv;			  /* argv, NUL-separated, argv_len bytes */
	size_t argv_len;
	bool exe_cut, cwd_cut, cgroup_cut, argv_cut; /* cut at the sensor's bounds */
	/* the image's inode as stat(2) of /proc/PID/exe would say (has_exe_stat) */
	bool has_exe_stat;
	bool exe_unlinked; /* its path may not name it in the process's mount namespace
			      (unlinked, a memfd, a mount of another namespace) */
	uint32_t exe_mode, exe_nlink;
	int64_t exe_size, exe_mtime_ns, exe_ctime_ns;
	/* the environment strings named in collection.env_capture, in the
	   image's order, each NUL-ended (env_len bytes), when the kernel
	   searched it (has_env); env_cut: not to its end */
	bool has_env, env_cut;
	const char *env;
	size_t env_len;
};

/* ---- the process event ------------------------------------------------- */

/*
 * One event, as one type from the kernel to the store: the kernel source
 * (bpfevents.h, or procevents.h's netlink connector) fills what it says,
 * procmond adds the process read at once, the IPC carries it, the agent
 * queues it and the store applies it (de_store_apply_events).
 */
enum de_process_event_kind {
	DE_PROCESS_EXEC = 1, /* a process exec'd (record: the new image) */
	DE_PROCESS_EXIT,     /* a process ended (exit_code) */
	DE_PROCESS_FORK,     /* a new process (ppid, start_time); threads are not reported */
	DE_PROCESS_TCP,	     /* a TCP connect, listen or accept (conn) */
	DE_PROCESS_LOST,     /* the kernel could not deliver `lost` events: reconcile */
	DE_PROCESS_EVENT_KIND_MAX
};

/* Its name ("exec", ...); NULL when out of range. */
const char *de_process_event_kind_name(enum de_process_event_kind k);

struct de_process_event {
	enum de_process_event_kind kind;
	uint32_t pid;	       /* the process (thread-group id) */
	int64_t time_ms;       /* when it was seen, ms since the epoch */
	uint64_t timestamp_ns; /* the kernel's time of it (0: unknown) */
	bool has_exit_code;    /* exit: */
	int32_t exit_code;     /* its wait(2) status */
	uint32_t ppid;	       /* fork: the parent (0: not said) */
	int64_t start_time;    /* fork, exit: the instance's start, ms (0: not said) */
	uint64_t lost;	       /* lost: how many */
	bool has_record;       /* exec: the process (else gone before anything was known) */
	struct de_process_record record; /* owned when has_record */
	bool has_conn;			 /* tcp: */
	struct de_connection conn;	 /* the connection */
	/* exec from the kernel sensor: what it read (borrowed, valid during the
	   callback that hands the event out; never sent or stored) */
	const struct de_kernel_exec *kexec;
};

/* Release the event's record (NULL accepted); the event is zeroed. */
void de_process_event_clear(struct de_process_event *e);

#endif
