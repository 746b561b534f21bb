/*
 * procevents.h — real-time exec and exit events from the kernel's netlink
 * process connector (NETLINK_CONNECTOR, CN_IDX_PROC).
 *
 * Subscribing needs CAP_NET_ADMIN (root): de_procevents_open() says -EPERM
 * otherwise and the caller polls instead.  Only whole processes are
 * reported: an exec (always by the thread-group leader after it) and the
 * exit of a thread-group leader; thread exits are filtered out.  When the
 * kernel drops messages because we were slow, recv fails with ENOBUFS: that
 * is counted in de_procevents_overruns() and the caller should reconcile with a
 * full scan.
 *
 * Ownership: the handle owns its socket; close it with de_procevents_close().
 */
#ifndef DAEMONEYE_PROCEVENTS_H
#define DAEMONEYE_PROCEVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "daemoneye/error.h"
#include "daemoneye/record.h"

struct de_procevents;

/*
 * Subscribe.  0; -EPERM (or -EACCES) when not permitted, with err saying
 * so; -EPROTONOSUPPORT when the kernel has no process connector.
 */
int de_procevents_open(struct de_procevents **out, struct de_error *err);
void de_procevents_close(struct de_procevents *ev);

/* The socket, for poll(2) (non-blocking, CLOEXEC). */
int de_procevents_fd(const struct de_procevents *ev);

/*
 * Read what is waiting (never blocks): up to max events into out, *n the
 * count.  Each event says its kind, pid, time (time_ms: now; timestamp_ns:
 * the kernel's) and, for an exit, the exit code; none carries a record.  0 (also when nothing was
 * waiting, *n = 0); an overrun is counted and is not an error.  -errno on a real failure.
 */
int de_procevents_read(struct de_procevents *ev, struct de_process_event *out, size_t max,
		       size_t *n, struct de_error *err);

/* Times the kernel reported lost messages (ENOBUFS) since open. */
uint64_t de_procevents_overruns(const struct de_procevents *ev);

#endif
