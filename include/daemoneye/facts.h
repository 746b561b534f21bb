/*
 * facts.h — the Linux facts the collector reads for each process, written
 * down once.  DE_LINUX_FACTS below is the one description: every fact's
 * name, type, group, whether it is identity or volatile, and its protobuf
 * field number.  From it come the struct (struct de_linux_facts), the visit
 * list (de_linux_facts_each: the order of the JSON form, which the JSON
 * object, its text and the store's hashes are made from), equality, the
 * IPC mapping (ipc.c, checked field by field against the .proto by
 * test_ipc), the store's split into identity and volatile values, and the
 * table de_linux_fact_info[] that tests iterate.  Adding a fact is one line
 * here, the .proto field, where the collector reads it, and its paragraph
 * in docs/collection.md (a test checks that each fact has one).
 *
 * The JSON form of the facts is the record's platform_data object: one
 * member per fact present, in list order, numbers as JSON integers,
 * booleans as JSON booleans.  Types:
 *
 *   U32       uint32_t
 *   I64       int64_t, any value
 *   NN64      int64_t, never negative (a count)
 *   SI64      int64_t, small and signed (protobuf sint64)
 *   BOOL      bool
 *   CHAR      char: one ASCII letter, a one-character JSON string
 *   TEXT      char *, owned bytes without NUL, absent when NULL; not valid
 *             UTF-8 is written escaped as de_escape_text() does
 *   TEXT_RAW  as TEXT, and then "<name>_raw" carries the exact bytes (base64)
 *   FLAG      bool, a member only when true
 *   COUNT     int64_t, a member only when > 0
 *
 * Groups: a fact in a group other than `always` is known only when its
 * group is (the struct's has_<group> flag; `image` also needs `exe`).
 * Within a group TEXT, FLAG and COUNT facts may still be absent.
 *
 * Identity facts say what the process is: a change is history (the store
 * keeps the old values).  Volatile facts change while it runs (state, CPU
 * time): a change only updates the snapshot row.
 *
 * (No field is named `linux`: that is a predefined macro in GNU C.)
 */
#ifndef DAEMONEYE_FACTS_H
#define DAEMONEYE_FACTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* X(name, type, group, identity or volatile, protobuf field number, what it is) */
#define DE_LINUX_FACTS(X)                                                                          \
	X(euid, U32, ids, IDENTITY, 1, "effective uid: the owner of /proc/PID")                    \
	X(egid, U32, ids, IDENTITY, 2, "effective gid: the group of /proc/PID")                    \
	X(uid, U32, real_ids, IDENTITY, 3, "real uid (read from status for set-id images)")        \
	X(gid, U32, real_ids, IDENTITY, 4, "real gid (with uid)")                                  \
	X(cgroup, TEXT_RAW, always, IDENTITY, 5, "the cgroup v2 path, exact bytes")                \
	X(exe_deleted, BOOL, exe, IDENTITY, 6, "the running image was unlinked")                   \
	X(exe_replaced, BOOL, exe, IDENTITY, 7, "the path now names another file than the image")  \
	X(exe_inode, I64, image, IDENTITY, 8, "the image's inode number")                          \
	X(exe_device, I64, image, IDENTITY, 9, "the image's device number")                        \
	X(exe_size, I64, image, IDENTITY, 10, "the image's size in bytes")                         \
	X(hash_error, TEXT, exe, IDENTITY, 11, "why the image was not hashed")                     \
	X(state, CHAR, always, VOLATILE, 12, "the state letter of /proc/PID/stat")                 \
	X(threads, NN64, always, VOLATILE, 13, "number of threads")                                \
	X(pgrp, I64, always, IDENTITY, 14, "process group id")                                     \
	X(session, I64, always, IDENTITY, 15, "session id")                                        \
	X(tty_nr, I64, always, IDENTITY, 16, "controlling terminal (device number, 0: none)")      \
	X(nice, SI64, always, VOLATILE, 17, "nice value")                                          \
	X(kernel_thread, BOOL, always, IDENTITY, 18, "a kernel thread (PF_KTHREAD)")               \
	X(utime_ticks, NN64, always, VOLATILE, 19, "user CPU time in clock ticks")                 \
	X(stime_ticks, NN64, always, VOLATILE, 20, "system CPU time in clock ticks")               \
	X(start_ticks, NN64, always, IDENTITY, 21, "start time in clock ticks after boot")         \
	X(cmdline_truncated, FLAG, always, IDENTITY, 22, "the command line was cut at its cap")    \
	X(cmdline_masked, COUNT, always, IDENTITY, 23, "arguments masked as secrets")              \
	X(comm, TEXT_RAW, always, IDENTITY, 24, "the kernel's command name (at most 15 bytes)")    \
	X(cwd, TEXT_RAW, always, VOLATILE, 25, "the working directory")                            \
	X(pid_ns, I64, ns, IDENTITY, 26, "pid namespace (inode of /proc/PID/ns/pid)")              \
	X(mnt_ns, I64, ns, IDENTITY, 27, "mount namespace (inode of /proc/PID/ns/mnt)")            \
	X(net_ns, I64, ns, IDENTITY, 28, "network namespace (inode of /proc/PID/ns/net)")          \
	X(user_ns, I64, ns, IDENTITY, 29, "user namespace (inode of /proc/PID/ns/user)")           \
	X(container_id, TEXT, always, IDENTITY, 30, "container id (64 hex digits, from cgroup)")   \
	X(container_runtime, TEXT, always, IDENTITY, 31, "docker, containerd, cri-o or podman")    \
	X(env, TEXT_RAW, always, IDENTITY, 32, "captured variables: NAME=VALUE lines, masked")     \
	X(env_truncated, FLAG, always, IDENTITY, 33, "a captured value was cut at 4096 bytes")     \
	X(path_truncated, FLAG, always, IDENTITY, 34, "the sensor cut the image's or cwd's path")  \
	X(user_name, TEXT, always, IDENTITY, 35, "name of euid (the agent resolves it)")           \
	X(group_name, TEXT, always, IDENTITY, 36, "name of egid (the agent resolves it)")

/* The groups: X(name, the group it needs, what it is, what a part of it sent alone is) */
#define DE_LINUX_FACT_GROUPS(X)                                                                    \
	X(ids, always, "the effective ids", "a uid without its gid")                               \
	X(real_ids, always, "the real ids", "a uid without its gid")                               \
	X(exe, always, "an executable", "exe_deleted without exe_replaced")                        \
	X(image, exe, "an executable image", "an incomplete executable image")                     \
	X(ns, always, "the namespaces", "some namespaces without the others")

/* The C type of each fact type. */
#define DE_FACT_CTYPE_U32      uint32_t
#define DE_FACT_CTYPE_I64      int64_t
#define DE_FACT_CTYPE_NN64     int64_t
#define DE_FACT_CTYPE_SI64     int64_t
#define DE_FACT_CTYPE_BOOL     bool
#define DE_FACT_CTYPE_CHAR     char
#define DE_FACT_CTYPE_TEXT     char *
#define DE_FACT_CTYPE_TEXT_RAW char *
#define DE_FACT_CTYPE_FLAG     bool
#define DE_FACT_CTYPE_COUNT    int64_t

struct de_linux_facts {
	bool present; /* the record carries collector facts (else all below is unset) */
#define DE_FACT_GROUP_FLAG_(g, parent, doc, part)                                                  \
	bool has_##g; /* the facts of group g are known                                            \
		       */
	DE_LINUX_FACT_GROUPS(DE_FACT_GROUP_FLAG_)
#undef DE_FACT_GROUP_FLAG_
#define DE_FACT_FIELD_(name, type, group, kind, no, doc) DE_FACT_CTYPE_##type name;
	DE_LINUX_FACTS(DE_FACT_FIELD_)
#undef DE_FACT_FIELD_
};

/* Release the strings the facts own and zero them (NULL accepted). */
void de_linux_facts_clear(struct de_linux_facts *f);
/* Fact by fact equality (strings by bytes; facts of an unknown group are not compared). */
bool de_linux_facts_equal(const struct de_linux_facts *a, const struct de_linux_facts *b);

/* ---- describing and visiting the facts ---------------------------------- */

enum de_fact_type {
	DE_FACT_T_U32,
	DE_FACT_T_I64,
	DE_FACT_T_NN64,
	DE_FACT_T_SI64,
	DE_FACT_T_BOOL,
	DE_FACT_T_CHAR,
	DE_FACT_T_TEXT,
	DE_FACT_T_TEXT_RAW,
	DE_FACT_T_FLAG,
	DE_FACT_T_COUNT,
	DE_FACT_T_MAX
};

/* Fact indexes in list order: DE_FACT_euid, ... */
enum de_fact_index {
#define DE_FACT_INDEX_(name, type, group, kind, no, doc) DE_FACT_##name,
	DE_LINUX_FACTS(DE_FACT_INDEX_)
#undef DE_FACT_INDEX_
		DE_FACT_COUNT_MAX
};

/* One fact as described by the list. */
struct de_fact_info {
	const char *name;	/* the JSON member and protobuf field name */
	enum de_fact_type type; /* one of the types above */
	const char *group;	/* "always", "ids", ... */
	bool is_volatile;	/* changes while the process runs */
	unsigned proto_field;	/* number of the field in the IPC Facts message */
	const char *doc;	/* what it is, for docs and `rules schema` */
	size_t offset;		/* offsetof(struct de_linux_facts, name) */
};

/* The list as a table, DE_FACT_COUNT_MAX entries in list order. */
extern const struct de_fact_info de_linux_fact_info[DE_FACT_COUNT_MAX];

/* The fact named by the n bytes at key, or -1 (also for its "_raw" twin: see de_fact_raw_of). */
int de_fact_lookup(const char *key, size_t n);
/* When key names a fact's "_raw" twin ("cgroup_raw"), that fact's index, else -1. */
int de_fact_raw_of(const char *key, size_t n);

/* One member the facts give platform_data, as de_linux_facts_each() visits it. */
enum de_fact_kind { DE_FACT_INT, DE_FACT_BOOL, DE_FACT_TEXT };

struct de_fact {
	const char *key;	/* the JSON member name */
	size_t key_len;		/* its length */
	enum de_fact_index idx; /* which fact */
	enum de_fact_kind kind; /* how its value is held */
	bool is_volatile;	/* from the list */
	int64_t i;		/* DE_FACT_INT */
	bool b;			/* DE_FACT_BOOL */
	const char *s;		/* DE_FACT_TEXT: bytes, not always UTF-8 (borrowed) */
	size_t n;		/* their length */
	bool raw;		/* DE_FACT_TEXT: not valid UTF-8 goes escaped plus
				   "<key>_raw" (base64); else escaped alone */
};

/*
 * Call fn for every member the facts put in platform_data, in list order
 * (the order of the JSON form): the one walk the JSON object, its text and
 * the store's hashes are made from.  Stops at and returns fn's first
 * nonzero value; 0 after the last member.
 */
int de_linux_facts_each(const struct de_linux_facts *f,
			int (*fn)(const struct de_fact *m, void *ctx), void *ctx);

/*
 * The same walk as an inline function, for the library's hot paths (the
 * store sums the facts of every record of every scan): inlined with a known
 * visitor, the visits are direct calls the compiler can fold.
 */
#define DE_FACT_IN_always(f)   true
#define DE_FACT_IN_ids(f)      ((f)->has_ids)
#define DE_FACT_IN_real_ids(f) ((f)->has_real_ids)
#define DE_FACT_IN_exe(f)      ((f)->has_exe)
#define DE_FACT_IN_image(f)    ((f)->has_exe && (f)->has_image)
#define DE_FACT_IN_ns(f)       ((f)->has_ns)

/* Per type: is the value there (within a known group), and how it is visited. */
#define DE_FACT_HAS_U32(v)	true
#define DE_FACT_HAS_I64(v)	true
#define DE_FACT_HAS_NN64(v)	true
#define DE_FACT_HAS_SI64(v)	true
#define DE_FACT_HAS_BOOL(v)	true
#define DE_FACT_HAS_CHAR(v)	true
#define DE_FACT_HAS_TEXT(v)	((v) != NULL)
#define DE_FACT_HAS_TEXT_RAW(v) ((v) != NULL)
#define DE_FACT_HAS_FLAG(v)	(v)
#define DE_FACT_HAS_COUNT(v)	((v) > 0)

#define DE_FACT_SET_INT_(m, v)	((m).kind = DE_FACT_INT, (m).i = (int64_t)(v))
#define DE_FACT_SET_U32(m, v)	DE_FACT_SET_INT_(m, v)
#define DE_FACT_SET_I64(m, v)	DE_FACT_SET_INT_(m, v)
#define DE_FACT_SET_NN64(m, v)	DE_FACT_SET_INT_(m, v)
#define DE_FACT_SET_SI64(m, v)	DE_FACT_SET_INT_(m, v)
#define DE_FACT_SET_COUNT(m, v) DE_FACT_SET_INT_(m, v)
#define DE_FACT_SET_BOOL(m, v)	((m).kind = DE_FACT_BOOL, (m).b = (v))
#define DE_FACT_SET_FLAG(m, v)	((m).kind = DE_FACT_BOOL, (m).b = (v))
#define DE_FACT_SET_CHAR(m, v)                                                                     \
	((m).kind = DE_FACT_TEXT, (m).s = &(v), (m).n = (v) ? 1 : 0, (m).raw = false)
#define DE_FACT_SET_TEXT(m, v)                                                                     \
	((m).kind = DE_FACT_TEXT, (m).s = (v), (m).n = strlen(v), (m).raw = false)
#define DE_FACT_SET_TEXT_RAW(m, v)                                                                 \
	((m).kind = DE_FACT_TEXT, (m).s = (v), (m).n = strlen(v), (m).raw = true)

#define DE_FACT_VOL_IDENTITY false
#define DE_FACT_VOL_VOLATILE true

static inline __attribute__((always_inline)) int
de_linux_facts_each_inline(const struct de_linux_facts *f,
			   int (*fn)(const struct de_fact *m, void *ctx), void *ctx)
{
	struct de_fact m;
	int rc;

#define DE_FACT_VISIT_(name, type, group, kind, no, doc)                                           \
	if (DE_FACT_IN_##group(f) && DE_FACT_HAS_##type(f->name)) {                                \
		m = (struct de_fact){.key = #name,                                                 \
				     .key_len = sizeof(#name) - 1,                                 \
				     .idx = DE_FACT_##name,                                        \
				     .is_volatile = DE_FACT_VOL_##kind};                           \
		DE_FACT_SET_##type(m, f->name);                                                    \
		if ((rc = fn(&m, ctx)) != 0)                                                       \
			return rc;                                                                 \
	}
	DE_LINUX_FACTS(DE_FACT_VISIT_)
#undef DE_FACT_VISIT_
	return 0;
}

#endif
