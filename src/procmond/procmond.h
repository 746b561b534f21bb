/*
 * procmond.h — what the files of procmond share: the IPC service loop
 * (serve.c), real-time events (events in src/lib/procevents.c, used by
 * serve.c and main.c) and privilege dropping (privsep.c).
 */
#ifndef PROCMOND_H
#define PROCMOND_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "daemoneye/collect.h"

/* Set by SIGINT/SIGTERM. */
extern volatile sig_atomic_t procmond_stop;

struct de_procevents;

/*
 * Answer the agent on fd until it closes the channel or a signal arrives:
 * HELLO first, then a full scan for each SCAN_REQUEST; with ev (non-NULL)
 * also an EVENT frame for each exec and exit as it happens.  caps names the
 * retained capabilities for HELLO.  Returns a sysexits status.
 */
int procmond_serve(struct de_collector *col, struct de_procevents *ev, int fd, const char *caps);

struct de_process_event;

/*
 * Read the process connector until procmond_stop, calling fn for each exec
 * and exit as it arrives (watch.c; the event threads of --events and of
 * --ipc-fd).  Returns 0 when stopped, fn's negative value, or a read error.
 */
int procmond_follow_events(struct de_procevents *ev,
			   int (*fn)(void *ctx, const struct de_process_event *e), void *ctx);

/*
 * procmond --events: print exec/exit events as JSON lines until a signal;
 * ev NULL means poll (a full scan each interval).  A sysexits status.
 */
int procmond_watch(struct de_collector *col, struct de_procevents *ev, unsigned long interval_ms);

/* privsep.c: drop to CAP_SYS_PTRACE + CAP_DAC_READ_SEARCH (+ NET_ADMIN). */
int procmond_drop_caps(bool keep_net_admin);
/* Drop CAP_NET_ADMIN once the event subscription is made. */
int procmond_drop_net_admin(void);
/* The effective capabilities as text ("" for none). */
void procmond_caps_text(char *buf, size_t size);
/* no_new_privs + the seccomp allowlist.  0 or -errno. */
int procmond_sandbox(void);

#endif
