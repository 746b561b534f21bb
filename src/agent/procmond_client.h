/*
 * procmond_client.h — the worker's end of procmond (DESIGN.md decision 6):
 * the channel the privileged parent hands over (a socketpair end passed
 * over the control channel), procmond's HELLO, scans, and the queue of the
 * exec/exit events it forwards.
 *
 * procmond is the parent's child, not ours: we never signal it.  When it
 * does not answer in time or breaks the protocol, the channel is closed
 * and the caller asks the parent for a new procmond (RESTART_PROCMOND).
 * Every wait here ends at app.scan_timeout_ms, or AGENT_DRAIN_MS after
 * *stop is set (SIGTERM), so the worker never hangs on a stopped procmond.
 *
 * The event queue belongs to the worker, not to one procmond: it survives
 * a channel being replaced, so no event is dropped by a restart.
 */
#ifndef AGENT_PROCMOND_CLIENT_H
#define AGENT_PROCMOND_CLIENT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemoneye/buf.h"
#include "daemoneye/collect.h"
#include "daemoneye/config.h"
#include "daemoneye/ipc.h"

/* After a stop request, what is in flight may take this much longer at most. */
#define AGENT_DRAIN_MS 1000

/* The events waiting for the agent hold at most detection.event_queue_mb
 * (this many MiB when not set): the queue's array, each event's record and
 * its strings as the allocator counts them.  More are counted and dropped
 * (the next full scan reconciles what they would have said). */
#define AGENT_EVENT_QUEUE_MB 8
/* At most this many of them decoded (what the exec path sees: queue). */
#define AGENT_EVENTS_READY 512

struct procmond_chan {
	pid_t pid;			   /* procmond's pid, 0 when no channel */
	uint32_t gen;			   /* its generation (for RESTART_PROCMOND) */
	int64_t started_ms;		   /* when the parent started it (wall clock) */
	int fd;				   /* our end of the socketpair, -1 when closed */
	struct de_ipc_reader *rd;	   /* owned */
	bool events;			   /* procmond reported real-time events */
	char caps[128];			   /* capabilities procmond kept */
	uint64_t timeout_ms;		   /* app.scan_timeout_ms */
	const volatile sig_atomic_t *stop; /* when set, waits end early (-EINTR) */
	uint64_t events_seen;		   /* EVENT frames received (all procmonds) */
	uint64_t events_dropped;	   /* received while the queue was full */
	uint64_t events_lost;		   /* the kernel's overruns, as the last SCAN_DONE said */
	uint64_t event_restarts;	   /* procmond's event reader restarts, likewise */
	uint64_t hash_hits;		   /* the last scan's hashes served by the cache */
	uint64_t lost_before;		   /* events_lost of the procmonds before this one */
	uint64_t restarts_before;	   /* event_restarts likewise */
	/* health: the event source procmond uses ("ebpf", "netlink", "none";
	   "" before the first HELLO) and why it is not eBPF ("" when it is) */
	char event_source[16];
	char event_reason[768];
	bool reconcile;		     /* events were lost: run a full scan now */
	struct de_connection *conns; /* owned: the last scan's connections */
	size_t nconns, capconns;
	/* conns holds a finished connection scan the store has not taken yet
	   (the worker clears it once stored): the next scan asks for
	   connections again, since it drops what conns held */
	bool conns_unstored;
	struct de_process_event *queue; /* owned: events not yet committed, oldest first */
	size_t nqueue, capqueue;
	/* of the queue's head, events applied in event batches the store holds
	   open (de_store_hold_batches): dropped once committed, applied again
	   if rolled back (execpath.c) */
	size_t applied;
	size_t queue_heap; /* the heap bytes of the queued events' records */
	size_t queue_max;  /* the bound of capqueue events and queue_heap, bytes (0: default) */
	size_t queue_peak; /* the most the queue held since the heap was last trimmed */
	bool dropping;	   /* events are being dropped: the queue has not drained since */
	bool held;	   /* the worker left frames in the socket while a batch waits (main.c) */
	uint64_t dropped_now; /* of events_dropped, those since dropping began */
	/* past the first AGENT_EVENTS_READY events (the ones in queue), events
	   wait as the frames procmond sent, a fraction of their decoded size,
	   and are decoded again as the queue empties (agent_events_shift) */
	struct de_buf backlog; /* owned: whole frames, oldest first */
	size_t backlog_off;    /* of backlog.len, the bytes already taken */
	size_t nbacklog;       /* frames in it */
};

/*
 * Take fd (the worker's end of a new procmond's socketpair; owned from
 * now, closed on failure) as the channel, closing the old one, and wait up
 * to timeout_ms for procmond's HELLO.  0, or an IoError (ETIMEDOUT, EPIPE,
 * EPROTO...) with the channel closed.
 */
int agent_procmond_attach(struct procmond_chan *ch, int fd, pid_t pid, uint32_t gen,
			  int64_t started_ms, struct de_error *err);

/*
 * One full scan through procmond: records are appended to *out.  Any
 * malformed or unexpected frame, EOF or no SCAN_DONE within timeout_ms
 * closes the channel with err naming the reason (err->code ETIMEDOUT,
 * EPIPE, EPROTO/EBADMSG...); a stop request leaves the scan AGENT_DRAIN_MS
 * to finish, then ends it with -EINTR.
 */
int agent_procmond_scan(struct procmond_chan *ch, int64_t scan_id, struct de_process_list *out,
			struct de_collect_stats *stats, struct de_error *err);

/*
 * The same, asking for every process's TCP connections too: they are left
 * in ch->conns (replacing the previous scan's).
 */
int agent_procmond_scan_conns(struct procmond_chan *ch, int64_t scan_id, bool connections,
			      struct de_process_list *out, struct de_collect_stats *stats,
			      struct de_error *err);

/*
 * Between scans: wait up to timeout_ms for EVENT frames and queue what
 * arrives (at most a batch: whatever is readable now, taken with as few
 * reads as it needs, never blocking once something came; the start of a
 * frame not yet whole stays buffered for the next call).  0 (also on
 * timeout or a signal), or an error after which the channel is closed, as
 * in agent_procmond_scan.
 */
int agent_procmond_wait(struct procmond_chan *ch, int timeout_ms, struct de_error *err);

/* Close the channel (procmond sees EOF and exits); the queue stays. */
void agent_procmond_close(struct procmond_chan *ch);

/* The bytes the queue holds now: its array, its records and its backlog of
   frames (what queue_max bounds). */
size_t agent_events_bytes(const struct procmond_chan *ch);
/* The bound of agent_events_bytes: queue_max, or AGENT_EVENT_QUEUE_MB when 0. */
size_t agent_events_max(const struct procmond_chan *ch);
/* The events waiting: decoded (nqueue) and in the backlog. */
size_t agent_events_count(const struct procmond_chan *ch);
/* Forget the first n queued events (freeing their records), keeping the rest
   in order; an emptied queue gives its array and the heap it grew back. */
void agent_events_shift(struct procmond_chan *ch, size_t n);
/* Free the queue. */
void agent_events_free(struct procmond_chan *ch);

#endif
