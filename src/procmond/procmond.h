/*
 * procmond.h — what the files of procmond share: the IPC service loop
 * (serve.c), real-time events (events in src/lib/events.c, used by
 * serve.c and main.c) and privilege dropping (privsep.c).
 */
#ifndef PROCMOND_H
#define PROCMOND_H

#include <signal.h>
#include <stdbool.h>

#include "daemoneye/collect.h"

/* Set by SIGINT/SIGTERM. */
extern volatile sig_atomic_t procmond_stop;

/*
 * Answer the agent on fd until it closes the channel or a signal arrives:
 * HELLO first, then a full scan for each SCAN_REQUEST.  caps names the
 * retained capabilities for HELLO.  Returns a sysexits status.
 */
int procmond_serve(struct de_collector *col, int fd, const char *caps);

#endif
