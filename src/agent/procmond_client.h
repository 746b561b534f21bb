/*
 * procmond_client.h — the agent's end of procmond: spawn it over a socketpair,
 * ask it for scans, receive the records (DESIGN.md decision 6).
 */
#ifndef AGENT_PROCMOND_CLIENT_H
#define AGENT_PROCMOND_CLIENT_H

#include <stdbool.h>
#include <sys/types.h>

#include "daemoneye/collect.h"
#include "daemoneye/config.h"
#include "daemoneye/ipc.h"

/* At most this many events wait for the agent; more are counted and dropped
 * (the next full scan reconciles what they would have said). */
#define AGENT_MAX_QUEUED_EVENTS 65536

struct procmond_chan {
	pid_t pid;		  /* procmond's pid, 0 when not running */
	int fd;			  /* our end of the socketpair, -1 when closed */
	struct de_ipc_reader *rd; /* owned */
	bool events;		  /* procmond reported real-time events */
	char caps[128];		  /* capabilities procmond kept */
	/* health: the event source procmond uses ("ebpf", "netlink", "none";
	   "" before the first HELLO) and why it is not eBPF ("" when it is) */
	char event_source[16];
	char event_reason[768];
	uint64_t events_seen;	     /* EVENT frames received */
	uint64_t events_dropped;     /* received while the queue was full */
	uint64_t events_lost;	     /* the kernel could not deliver (LOST events) */
	bool reconcile;		     /* events were lost: run a full scan now */
	struct de_connection *conns; /* owned: the last scan's connections */
	size_t nconns, capconns;
	struct de_process_event *queue; /* owned: events not yet applied, oldest first */
	size_t nqueue, capqueue;
};

/*
 * Start `procmond --ipc-fd 3` from the agent's own directory, passing the
 * configuration sources on, and wait for its HELLO.  0, or an IoError.
 */
int agent_procmond_start(const struct de_config_sources *src, struct procmond_chan *ch,
			 struct de_error *err);

/*
 * One full scan through procmond: records are appended to *out.  Any
 * malformed or unexpected frame closes the channel (and stops procmond)
 * with err naming the reason.
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
 * arrives (at most a batch: whatever is readable now, never blocking once
 * something came).  0 (also on timeout or a signal), or an error after which
 * the channel is closed, as in agent_procmond_scan.  EVENT frames that come
 * during a scan are queued by agent_procmond_scan the same way.
 */
int agent_procmond_wait(struct procmond_chan *ch, int timeout_ms, struct de_error *err);

/* Forget the queued events (freeing their records). */
void agent_events_clear(struct procmond_chan *ch);

/* Close the channel, stop procmond (SIGTERM to its pid) and reap it. */
void agent_procmond_stop(struct procmond_chan *ch);

#endif
