/*
 * procmond.h — what the files of procmond share: the IPC service loop
 * (serve.c), the kernel event source (source.c: the eBPF sensor of
 * src/lib/bpfevents.c or the netlink connector of src/lib/procevents.c),
 * --events (watch.c) and privilege dropping (privsep.c).
 */
#ifndef PROCMOND_H
#define PROCMOND_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "daemoneye/collect.h"
#include "daemoneye/config.h"

/* Set by SIGINT/SIGTERM. */
extern volatile sig_atomic_t procmond_stop;

struct de_procevents;
struct de_bpfevents;
struct de_process_event;

/* The kernel event source in use (source.c). */
struct procmond_source {
	const char *name;	  /* "ebpf", "netlink" or "none" (static) */
	char reason[768];	  /* why not eBPF ("" when eBPF is in use) */
	struct de_bpfevents *bpf; /* the eBPF sensor, or NULL */
	struct de_procevents *nl; /* the netlink connector, or NULL */
	bool fixed_gap;		  /* collection.ebpf_wake_gap_ms: the gap stays */
};

/*
 * Open the source collection.events and collection.event_source ask for,
 * falling back as they allow, saying in the log which one and why.  Never
 * fails for want of a source (s->name is then "none"); only a bad setting
 * is an error.
 */
int procmond_source_open(const struct de_config *cfg, struct procmond_source *s,
			 struct de_error *err);
/*
 * Stop: procmond_stop set, and procmond_follow_events woken at once (its
 * reader otherwise waits out its poll, up to 200 ms on a quiet host, and a
 * stopping procmond with it).  Every stop goes through it: the signal
 * handler, the server's and the watcher's ends.  Async-signal-safe.
 */
void procmond_request_stop(void);
void procmond_source_close(struct procmond_source *s);
/* Whether a real-time source is open. */
bool procmond_source_on(const struct procmond_source *s);
/* Events the kernel could not deliver since open (ring buffer full, netlink overrun). */
uint64_t procmond_source_lost(const struct procmond_source *s);

/*
 * Read the source until procmond_stop, calling fn for each event as it
 * arrives, and flush (when not NULL) after each read's events (the event
 * threads of --events and of --ipc-fd).  Returns 0 when stopped, fn's or
 * flush's negative value, or a read error.
 */
int procmond_follow_events(struct procmond_source *s,
			   int (*fn)(void *ctx, struct de_process_event *e),
			   int (*flush)(void *ctx), void *ctx);

/*
 * Answer the agent on fd until it closes the channel or a signal arrives:
 * HELLO first (with the source's name and reason), then a full scan for
 * each SCAN_REQUEST; with a source also an EVENT frame for each event as
 * it happens.  caps names the retained capabilities for HELLO.  Returns a
 * sysexits status.
 */
int procmond_serve(struct de_collector *col, struct procmond_source *src, int fd, const char *caps);

/*
 * procmond --events: print events as JSON lines until a signal; without a
 * source, poll (a full scan each interval).  A sysexits status.
 */
int procmond_watch(struct de_collector *col, struct procmond_source *src,
		   unsigned long interval_ms);

/*
 * procmond --once --connections: print every process's TCP connections as
 * JSON lines.  A sysexits status.
 */
int procmond_print_connections(struct de_collector *col);

/*
 * privsep.c: drop to CAP_SYS_PTRACE + CAP_DAC_READ_SEARCH, keeping what
 * loading the event sources needs (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN)
 * when keep_event_caps.
 */
int procmond_drop_caps(bool keep_event_caps);
/* Drop what loading the event sources needed, once they are loaded. */
int procmond_drop_event_caps(void);
/* The effective capabilities as text ("" for none). */
void procmond_caps_text(char *buf, size_t size);
/* no_new_privs + the seccomp allowlist.  0 or -errno. */
int procmond_sandbox(void);

#endif
