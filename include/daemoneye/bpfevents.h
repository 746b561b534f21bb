/*
 * bpfevents.h — the kernel sensor: process exec, fork and exit and TCP
 * connect, listen and accept from eBPF programs (src/bpf/sensor.bpf.c,
 * libbpf with CO-RE against the running kernel's BTF, raw tracepoints, one
 * BPF ring buffer).  DESIGN.md decision 7.
 *
 * What an exec says comes from the kernel at the moment of the exec: argv
 * read from the new image's memory (up to a bound, with a truncation
 * flag), the image's path, the credentials, parent, start time, cgroup
 * path, working directory and namespace inodes.  So a process that lives
 * a millisecond on a saturated host is still reported whole: nothing has
 * to be read from /proc before it is gone (de_collector_exec() completes
 * the rest from /proc when the process is still there).
 *
 * Loading needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN), the kernel's
 * BTF (/sys/kernel/btf/vmlinux, or options.btf_path) and a verifier that
 * accepts the programs; once loaded and attached nothing needs a
 * privilege or the bpf(2) system call again: the ring buffer and the
 * counters are read through memory maps, so the caller may drop both.
 * When loading fails, de_bpfevents_open() says why in a sentence meant for
 * the log and for health (the kernel's reason, and the last lines of the
 * verifier's log when a program was refused); it never crashes or leaves
 * anything attached.
 *
 * Every record the ring buffer had no room for is counted by the kernel
 * side; de_bpfevents_read() reports new losses as a DE_PROCESS_LOST event,
 * after which the caller reconciles with a full scan.
 *
 * Loading happens in a child process forked for it (libbpf parses the
 * kernel's whole BTF, megabytes, to relocate the programs): the child
 * loads and attaches, hands the maps' and links' descriptors back over a
 * socketpair and exits, and the caller is left with the descriptors and
 * two memory maps, its peak resident size untouched by the parse.  The
 * child is reaped before de_bpfevents_open() returns; it has the caller's
 * privileges and seccomp filter.
 *
 * Ownership: the handle owns the links' and the ring buffer map's
 * descriptors and the maps of the ring buffer and the counters;
 * de_bpfevents_close() detaches and frees them (NULL accepted).
 * Events handed to the callback are borrowed for the call.
 */
#ifndef DAEMONEYE_BPFEVENTS_H
#define DAEMONEYE_BPFEVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemoneye/error.h"
#include "daemoneye/record.h"

struct de_bpfevents_options {
	uint32_t argv_max;	 /* argv bytes read in the kernel, 256 .. 65536 (default 32768) */
	uint32_t ringbuf_kb;	 /* ring buffer size in KiB, a power of two >= 4 (default 1024) */
	uint32_t wake_gap_us;	 /* a record wakes the reader at most this often (default 4000) */
	bool tcp;		 /* also TCP connect, listen and accept (default true) */
	const char *object_path; /* NULL: the programs built into daemoneye; else this object */
	const char *btf_path;	 /* NULL: the running kernel's BTF; else this BTF file */
	/* environment variables an exec's record carries (collection.env_capture,
	   borrowed until open returns): at most DE_BPF_ENV_NAMES of at most 63
	   bytes, else the kernel searches none (the record says so and user
	   space reads /proc/PID/environ) */
	const char *const *env_names;
	size_t nenv_names;
};

/* Fill *o with the defaults above. */
void de_bpfevents_options_default(struct de_bpfevents_options *o);

struct de_bpfevents;

/*
 * Load, verify and attach the programs.  0, or a negative errno with err
 * saying why in one sentence: -ENOTSUP when daemoneye was built without
 * eBPF, -EPERM/-EACCES when the kernel refused (no CAP_BPF, lockdown,
 * seccomp), -ENOENT when there is no BTF, -EINVAL when a program failed
 * verification, another -errno else.
 */
int de_bpfevents_open(const struct de_bpfevents_options *o, struct de_bpfevents **out,
		      struct de_error *err);
void de_bpfevents_close(struct de_bpfevents *ev);

/*
 * A descriptor that polls readable when records wait (CLOEXEC).  While
 * records come fast, not every record makes it readable: one wakes the
 * reader at most every wake gap (de_bpfevents_wake_gap_us; a fork never; a
 * ring buffer a quarter full at once), and the records after it wait for
 * the next.  A reader that has just read records polls at most
 * de_bpfevents_busy_poll_ms (the gap and a millisecond) before reading
 * again, readable or not.
 */
int de_bpfevents_fd(const struct de_bpfevents *ev);
int de_bpfevents_busy_poll_ms(const struct de_bpfevents *ev);

/*
 * The wake gap: every wake-up costs the reader and the agent a batch (a
 * read, a frame, a store transaction, a run of the rules), so at 1,000
 * execs/s a longer gap costs less CPU, and every record may wait the gap
 * on its way to the rules (10 ms from the exec to its detection).  How
 * much of those 10 ms it may take depends on whether the reader and the
 * agent get a core when they wake: DE_BPFEVENTS_WAKE_GAP_IDLE_US while the
 * host's CPUs have idle time, DE_BPFEVENTS_WAKE_GAP_US (also the gap at
 * load) when they are saturated and the wait for a core comes out of the
 * same 10 ms.  The idle gap is the longest that leaves exec -> alert
 * within 10 ms at p99 under a stream of 1,000 execs/s (a record may wait
 * the whole gap before procmond reads it, and the agent's own path needs
 * the rest); the measurements behind both values are in docs/perf.md
 * (stops 28 and 32).  collection.ebpf_wake_gap_ms lets an operator fix
 * the gap (the options' wake_gap_us; procmond then does not follow the
 * CPU).
 */
#define DE_BPFEVENTS_WAKE_GAP_US      4000
#define DE_BPFEVENTS_WAKE_GAP_IDLE_US 6000
/* The host idle at or above this share (per mille) takes the longer gap,
   below the lower one the shorter; between them the gap stays. */
#define DE_BPFEVENTS_IDLE_LONG_PERMILLE	 120
#define DE_BPFEVENTS_IDLE_SHORT_PERMILLE 80

/* Set the wake gap while running (us; 0: the gap set at load). */
void de_bpfevents_set_wake_gap(struct de_bpfevents *ev, uint32_t us);
/* The wake gap in use (us). */
uint32_t de_bpfevents_wake_gap_us(const struct de_bpfevents *ev);

/* The CPU time counters of /proc/stat's first line (clock ticks). */
struct de_cpu_sample {
	uint64_t idle;	/* idle + iowait */
	uint64_t total; /* user + nice + system + idle + iowait + irq + softirq + steal */
};

/* Parse /proc/stat's text (its first line, "cpu  ..."); -EBADMSG when it is not that. */
int de_cpu_sample_parse(const char *text, struct de_cpu_sample *s);
/* Read /proc/stat into *s; -errno or -EBADMSG on failure. */
int de_cpu_sample_read(struct de_cpu_sample *s);

/*
 * The wake gap for the host's CPU between two samples (prev, cur), from
 * the gap in use: DE_BPFEVENTS_WAKE_GAP_IDLE_US when idle was at least
 * DE_BPFEVENTS_IDLE_LONG_PERMILLE of it, DE_BPFEVENTS_WAKE_GAP_US below
 * DE_BPFEVENTS_IDLE_SHORT_PERMILLE, else current_us (also when no time
 * passed between the samples).
 */
uint32_t de_bpfevents_gap_for_cpu(uint32_t current_us, const struct de_cpu_sample *prev,
				  const struct de_cpu_sample *cur);

/*
 * Hand every waiting record to fn as a de_process_event, in the kernel's
 * order (never blocks): EXEC (with kexec set; the caller builds the record,
 * see de_collector_exec), FORK, EXIT (exit code and start time), TCP (the
 * connection), and LOST when records were dropped since the last read.
 * Stops at and returns fn's first negative value; 0 else.
 */
int de_bpfevents_read(struct de_bpfevents *ev, int (*fn)(void *ctx, struct de_process_event *e),
		      void *ctx, struct de_error *err);

/* Records delivered and records dropped (ring buffer full) since open. */
uint64_t de_bpfevents_delivered(const struct de_bpfevents *ev);
uint64_t de_bpfevents_dropped(const struct de_bpfevents *ev);
/* Wake-ups a ring buffer a quarter full made before the wake gap had passed. */
uint64_t de_bpfevents_fill_wakes(const struct de_bpfevents *ev);

/* Whether this build has the sensor (false: de_bpfevents_open says -ENOTSUP). */
bool de_bpfevents_built(void);

/* The clocks a record's kernel times are converted with. */
struct de_bpf_clock {
	int64_t btime_ms;	  /* boot time, ms since the epoch (as /proc/stat's btime) */
	int64_t boot_to_epoch_ns; /* CLOCK_REALTIME - CLOCK_BOOTTIME */
	long clk_tck;		  /* clock ticks per second */
};

/* The clocks of this host, now. */
void de_bpf_clock_now(struct de_bpf_clock *c);

/*
 * Parse one ring-buffer record of n bytes (de_bpfevents_read's parser,
 * exposed for the fuzz target and tests).  On success *e is filled; for an
 * exec, e->kexec points to *k, whose strings point into scratch (cap
 * bytes, at least n + 3 * DE_BPF_PATH_TEXT): all borrowed.  -EBADMSG when
 * the record is malformed (short, an unknown kind, lengths that do not add
 * up), and nothing in it is trusted further than its checked lengths.
 */
#define DE_BPF_PATH_TEXT 4200 /* room for one joined path */
int de_bpfevents_parse(const void *rec, size_t n, const struct de_bpf_clock *clk,
		       struct de_process_event *e, struct de_kernel_exec *k, char *scratch,
		       size_t cap);

#endif
