/*
 * procmond_client.c — talking to procmond over the channel the parent
 * handed us (see procmond_client.h).
 */
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemoneye/clock.h"
#include "daemoneye/log.h"
#include "procmond_client.h"

void agent_procmond_close(struct procmond_chan *ch)
{
	de_ipc_reader_free(ch->rd);
	ch->rd = NULL;
	if (ch->fd >= 0)
		close(ch->fd);
	ch->fd = -1;
	ch->pid = 0;
}

/*
 * The next frame before the deadline.  A signal asking us to stop leaves
 * what is in flight AGENT_DRAIN_MS more at most (the cycle may finish).
 */
static int recv_by(struct procmond_chan *ch, struct de_ipc_msg *m, int64_t deadline,
		   struct de_error *err)
{
	int rc;

	while ((rc = de_ipc_recv_until(ch->rd, m, deadline, err)) == -EINTR)
		if (ch->stop && *ch->stop && deadline > de_mono_ms() + AGENT_DRAIN_MS)
			deadline = de_mono_ms() + AGENT_DRAIN_MS;
	if (rc == -ETIMEDOUT && ch->stop && *ch->stop)
		return de_error_set(err, DE_ERR_IO, EINTR,
				    "stopping: procmond did not finish in time");
	return rc;
}

int agent_procmond_attach(struct procmond_chan *ch, int fd, pid_t pid, uint32_t gen,
			  int64_t started_ms, struct de_error *err)
{
	struct de_ipc_msg hello = {0};
	int rc;

	agent_procmond_close(ch);
	/* counters of the last procmond carry on into the totals */
	ch->lost_before += ch->events_lost;
	ch->restarts_before += ch->event_restarts;
	ch->events_lost = ch->event_restarts = 0;
	ch->fd = fd;
	ch->pid = pid;
	ch->gen = gen;
	ch->started_ms = started_ms;
	if ((rc = de_ipc_reader_new(ch->fd, &ch->rd, err)) < 0)
		goto fail;
	if ((rc = recv_by(ch, &hello, de_mono_ms() + (int64_t)ch->timeout_ms, err)) < 0) {
		de_error_prefix(err, "procmond pid %d did not say hello: ", (int)pid);
		goto fail;
	}
	if (hello.kind != DE_IPC_HELLO || hello.version != DE_IPC_VERSION) {
		de_ipc_msg_clear(&hello);
		rc = de_error_set(
			err, DE_ERR_IO, EPROTO,
			"procmond spoke first with something other than a version %d HELLO",
			DE_IPC_VERSION);
		goto fail;
	}
	ch->events = hello.events;
	snprintf(ch->caps, sizeof(ch->caps), "%s", hello.capabilities);
	snprintf(ch->event_source, sizeof(ch->event_source), "%s",
		 hello.event_source ? hello.event_source : (ch->events ? "netlink" : "none"));
	snprintf(ch->event_reason, sizeof(ch->event_reason), "%s",
		 hello.event_reason ? hello.event_reason : "");
	de_log_info("procmond pid %d started (capabilities: %s; events: %s%s%s)", (int)ch->pid,
		    ch->caps[0] ? ch->caps : "none", ch->event_source,
		    ch->event_reason[0] ? ": " : "", ch->event_reason);
	de_ipc_msg_clear(&hello);
	return 0;
fail:
	agent_procmond_close(ch);
	return rc;
}

/* An event's share of the queue's bytes beyond its slot in the array. */
static size_t event_heap(const struct de_process_event *e)
{
	return e->has_record ? de_process_record_heap_bytes(&e->record) : 0;
}

size_t agent_events_bytes(const struct procmond_chan *ch)
{
	return ch->capqueue * sizeof(*ch->queue) + ch->queue_heap + ch->backlog.cap;
}

size_t agent_events_count(const struct procmond_chan *ch)
{
	return ch->nqueue + ch->nbacklog;
}

size_t agent_events_max(const struct procmond_chan *ch)
{
	return ch->queue_max ? ch->queue_max : (size_t)AGENT_EVENT_QUEUE_MB << 20;
}

/*
 * Room in the array for one more event whose record holds heap bytes,
 * with the array, the records and other bytes (the backlog's) within max:
 * growing the array by doubling, or as far as the bound lets it.  False
 * when the event does not fit (or on ENOMEM).
 */
static bool queue_room(struct procmond_chan *ch, size_t heap, size_t other, size_t max)
{
	size_t sz = sizeof(*ch->queue), nc, held = ch->queue_heap + heap + other;
	struct de_process_event *nq;

	if (held > max)
		return false;
	if (ch->nqueue < ch->capqueue)
		return ch->capqueue * sz + held <= max;
	nc = ch->capqueue ? ch->capqueue * 2 : 64;
	if (nc > (max - held) / sz)
		nc = (max - held) / sz;
	if (nc <= ch->nqueue || !(nq = realloc(ch->queue, nc * sz)))
		return false;
	ch->queue = nq;
	ch->capqueue = nc;
	return true;
}

/* Keep frame[0..len) (an EVENT frame) in the backlog, within the bound. */
static bool backlog_push(struct procmond_chan *ch, const uint8_t *frame, size_t len)
{
	size_t ready = ch->capqueue * sizeof(*ch->queue) + ch->queue_heap,
	       max = agent_events_max(ch);
	struct de_buf *b = &ch->backlog;

	if (!len || ready >= max)
		return false;
	if (ch->backlog_off && b->len + len >= b->cap) {
		/* what was taken makes room first */
		memmove(b->p, b->p + ch->backlog_off, b->len - ch->backlog_off);
		b->len -= ch->backlog_off;
		ch->backlog_off = 0;
	}
	b->max = max - ready - 1; /* so that its allocation stays within the bound */
	if (de_buf_append(b, frame, len) < 0)
		return false;
	ch->nbacklog++;
	return true;
}

/* Queue an EVENT message: its record moves into the queue, or its frame
   frame[0..len) into the backlog. */
static void queue_event(struct procmond_chan *ch, struct de_ipc_msg *m, const uint8_t *frame,
			size_t len)
{
	size_t heap;

	ch->events_seen++;
	if (m->event.kind == DE_PROCESS_LOST) {
		/* not queued: the next cycle starts at once and reconciles */
		if (!ch->reconcile)
			de_log_warnx("the kernel lost %llu process events: reconciling with a full "
				     "scan now",
				     (unsigned long long)m->event.lost);
		ch->events_lost += m->event.lost;
		ch->reconcile = true;
		return;
	}
	if (m->event.kind == DE_PROCESS_FORK)
		return; /* a forked process is stored by its exec or the next scan */
	heap = event_heap(&m->event);
	if (!ch->nbacklog && ch->nqueue < AGENT_EVENTS_READY &&
	    queue_room(ch, heap, ch->backlog.cap, agent_events_max(ch))) {
		ch->queue[ch->nqueue++] = m->event; /* moved, with its record */
		ch->queue_heap += heap;
		memset(&m->event, 0, sizeof(m->event));
	} else if (!backlog_push(ch, frame, len)) {
		/* counted (metrics: events lost, source queue) and said once
		   until the queue drains */
		ch->events_dropped++;
		if (ch->dropped_now++ == 0)
			de_log_warnx("the process event queue is full (%zu events, %zu KiB of "
				     "detection.event_queue_mb's %zu KiB): dropping events until "
				     "it drains; the next full scan reconciles them",
				     agent_events_count(ch), agent_events_bytes(ch) >> 10,
				     agent_events_max(ch) >> 10);
		ch->dropping = true;
		return;
	}
	if (agent_events_bytes(ch) > ch->queue_peak)
		ch->queue_peak = agent_events_bytes(ch);
}

/* The whole size of the frame at p (decoded once already: whole). */
static size_t frame_size(const uint8_t *p)
{
	return DE_IPC_HEADER +
	       ((size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | (size_t)p[3]);
}

/* Slack the backlog's allocation may keep beyond its live bytes. */
#define BACKLOG_SLACK ((size_t)64 << 10)

/*
 * Decode backlogged frames into the queue while it has fewer than
 * AGENT_EVENTS_READY events and they fit in the bound beside the backlog's
 * live bytes (one at least into an empty queue, so that it always moves);
 * then the backlog gives back what was taken.
 */
static void backlog_refill(struct procmond_chan *ch)
{
	struct de_buf *b = &ch->backlog;
	size_t live;

	while (ch->nbacklog && ch->nqueue < AGENT_EVENTS_READY) {
		const uint8_t *p = (const uint8_t *)b->p + ch->backlog_off;
		size_t used = 0, n = frame_size(p);
		struct de_ipc_msg m = {0};
		struct de_error err = {0};
		live = b->len - ch->backlog_off - n;
		if (de_ipc_decode(p, n, &used, &m, &err) < 0) {
			/* decoded once already: only memory can fail it */
			ch->events_dropped++;
			de_log_err(&err);
		} else {
			size_t heap = event_heap(&m.event);
			if (!queue_room(ch, heap, live + BACKLOG_SLACK,
					ch->nqueue ? agent_events_max(ch) : SIZE_MAX)) {
				de_ipc_msg_clear(&m);
				break;
			}
			ch->queue[ch->nqueue++] = m.event;
			ch->queue_heap += heap;
			memset(&m.event, 0, sizeof(m.event));
			de_ipc_msg_clear(&m);
		}
		ch->backlog_off += n;
		ch->nbacklog--;
	}
	/* the live bytes to the front, in an allocation that fits them */
	live = b->len - ch->backlog_off;
	if (ch->backlog_off) {
		memmove(b->p, b->p + ch->backlog_off, live);
		b->len = live;
		ch->backlog_off = 0;
	}
	if (!live) {
		de_buf_free(b);
	} else if (b->cap > 2 * live + BACKLOG_SLACK) {
		char *np = realloc(b->p, live + BACKLOG_SLACK);
		if (np) {
			b->p = np;
			b->cap = live + BACKLOG_SLACK;
		}
	}
}

/* An array this long is kept when the queue drains (a few batches' worth). */
#define QUEUE_KEEP 256
/* After the queue held this much, its drain hands the heap's free pages back. */
#define QUEUE_TRIM_BYTES ((size_t)1 << 20)

void agent_events_shift(struct procmond_chan *ch, size_t n)
{
	size_t freed = 0;

	if (n > ch->nqueue)
		n = ch->nqueue;
	for (size_t i = 0; i < n; i++) {
		/* the names the exec path resolved count too: never below 0 */
		freed += event_heap(&ch->queue[i]);
		de_process_event_clear(&ch->queue[i]);
	}
	if (n && ch->nqueue > n)
		memmove(ch->queue, ch->queue + n, (ch->nqueue - n) * sizeof(*ch->queue));
	ch->nqueue -= n;
	ch->applied = ch->applied > n ? ch->applied - n : 0;
	ch->queue_heap = ch->nqueue && ch->queue_heap > freed ? ch->queue_heap - freed : 0;
	if (ch->nbacklog && n)
		backlog_refill(ch);
	if (ch->nqueue)
		return;
	if (ch->dropping) {
		de_log_info("the process event queue drained: %llu events were dropped while it "
			    "was full",
			    (unsigned long long)ch->dropped_now);
		ch->dropping = false;
		ch->dropped_now = 0;
	}
	/* what a burst grew goes back: the array's slack, and the pages
	   its records' freed strings leave in the heap */
	if (ch->capqueue > QUEUE_KEEP) {
		struct de_process_event *nq = realloc(ch->queue, QUEUE_KEEP * sizeof(*nq));
		if (nq) {
			ch->queue = nq;
			ch->capqueue = QUEUE_KEEP;
		}
	}
	if (ch->queue_peak > QUEUE_TRIM_BYTES)
		malloc_trim(0);
	ch->queue_peak = 0;
}

void agent_events_free(struct procmond_chan *ch)
{
	de_buf_free(&ch->backlog); /* first: the shift would decode it */
	ch->backlog_off = ch->nbacklog = 0;
	agent_events_shift(ch, ch->nqueue);
	free(ch->queue);
	ch->queue = NULL;
	ch->capqueue = 0;
	free(ch->conns);
	ch->conns = NULL;
	ch->nconns = ch->capconns = 0;
}

int agent_procmond_wait(struct procmond_chan *ch, int timeout_ms, struct de_error *err)
{
	size_t got = 0, flen;
	const uint8_t *frame;
	int rc;

	if (ch->fd < 0)
		return de_error_set(err, DE_ERR_IO, EPIPE, "procmond is not running");
	/* what is readable now, at most 1024 frames: never blocking once
	   something came (the exec path waits for fuller batches itself,
	   without holding up the worker's loop: execwait.h).  One recv takes
	   every frame that is there (procmond sends a read's worth together);
	   a recv that found the socket empty ends the batch without asking
	   again: the worker's poll says when more comes.  The rest of a frame
	   that started comes with the next batch. */
	while (got < 1024) {
		struct de_ipc_msg m = {0};
		if (!de_ipc_reader_pending(ch->rd)) {
			if (got && de_ipc_reader_drained(ch->rd))
				return 0;
			if (!got && timeout_ms > 0) {
				struct pollfd p = {ch->fd, POLLIN, 0};
				int pr = poll(&p, 1, timeout_ms);
				if (pr < 0 && errno == EINTR)
					return 0;
				if (pr < 0) {
					rc = de_error_set(err, DE_ERR_IO, errno, "poll: %s",
							  strerror(errno));
					goto fail;
				}
				if (pr == 0)
					return 0;
			}
			rc = de_ipc_reader_fill(ch->rd, err);
			if (rc == -EINTR || rc == 0)
				return 0;
			if (rc < 0)
				goto fail;
			continue;
		}
		rc = recv_by(ch, &m, de_mono_ms() + (int64_t)ch->timeout_ms, err);
		if (rc == -EINTR)
			return 0;
		if (rc < 0)
			goto fail;
		if (m.kind != DE_IPC_EVENT) {
			de_ipc_msg_clear(&m);
			rc = de_error_set(err, DE_ERR_IO, EPROTO,
					  "unexpected message kind %d from procmond between scans",
					  (int)m.kind);
			goto fail;
		}
		frame = de_ipc_reader_last(ch->rd, &flen);
		queue_event(ch, &m, frame, flen);
		de_ipc_msg_clear(&m);
		got++;
	}
	return 0;
fail:
	de_error_prefix(err, "closing the procmond channel: ");
	agent_procmond_close(ch);
	return rc;
}

int agent_procmond_scan(struct procmond_chan *ch, int64_t scan_id, struct de_process_list *out,
			struct de_collect_stats *stats, struct de_error *err)
{
	return agent_procmond_scan_conns(ch, scan_id, false, out, stats, err);
}

/* Keep one of the scan's connections. */
static int keep_conn(struct procmond_chan *ch, const struct de_connection *c)
{
	if (ch->nconns == ch->capconns) {
		size_t nc = ch->capconns ? ch->capconns * 2 : 256;
		struct de_connection *nv;
		if (nc > 1u << 22 || !(nv = realloc(ch->conns, nc * sizeof(*nv))))
			return -ENOMEM;
		ch->conns = nv;
		ch->capconns = nc;
	}
	ch->conns[ch->nconns++] = *c;
	return 0;
}

int agent_procmond_scan_conns(struct procmond_chan *ch, int64_t scan_id, bool connections,
			      struct de_process_list *out, struct de_collect_stats *stats,
			      struct de_error *err)
{
	struct de_ipc_msg req = {
		.kind = DE_IPC_SCAN_REQUEST, .scan_id = scan_id, .connections = connections};
	int64_t deadline = de_mono_ms() + (int64_t)ch->timeout_ms;
	int rc;

	/* a new scan replaces the last one's connections (stored or not: a
	   list the store refused is asked for again, see conns_unstored) */
	ch->nconns = 0;
	if (ch->fd < 0)
		return de_error_set(err, DE_ERR_IO, EPIPE, "procmond is not running");
	if ((rc = de_ipc_send(ch->fd, &req, err)) < 0)
		goto fail;
	for (;;) {
		struct de_ipc_msg m = {0};
		rc = recv_by(ch, &m, deadline, err);
		if (rc == -EINTR)
			goto fail; /* stopping, and procmond did not finish in time */
		if (rc == -ETIMEDOUT) {
			de_error_set(err, DE_ERR_IO, ETIMEDOUT,
				     "procmond pid %d did not finish the scan within "
				     "app.scan_timeout_ms (%llu ms)",
				     (int)ch->pid, (unsigned long long)ch->timeout_ms);
			goto fail;
		}
		if (rc < 0)
			goto fail;
		switch (m.kind) {
		case DE_IPC_PROCESS:
			if (m.record.scan_id != scan_id) {
				de_ipc_msg_clear(&m);
				rc = de_error_set(err, DE_ERR_IO, EPROTO,
						  "procmond sent a record of another scan");
				goto fail;
			}
			if (de_process_list_push(out, &m.record) < 0) {
				de_ipc_msg_clear(&m);
				return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
			}
			break;
		case DE_IPC_EVENT: {
			size_t flen;
			const uint8_t *frame = de_ipc_reader_last(ch->rd, &flen);
			queue_event(ch, &m, frame, flen);
			break;
		}
		case DE_IPC_CONNECTION:
			if (!connections) {
				rc = de_error_set(err, DE_ERR_IO, EPROTO,
						  "procmond sent connections nobody asked for");
				goto fail;
			}
			if (keep_conn(ch, &m.conn) < 0)
				return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
			break;
		case DE_IPC_SCAN_DONE:
			if (m.scan_id != scan_id) {
				rc = de_error_set(err, DE_ERR_IO, EPROTO,
						  "procmond finished another scan");
				goto fail;
			}
			if (stats)
				*stats = m.stats;
			if (m.events_lost > ch->events_lost)
				de_log_warnx("procmond lost %llu process events so far",
					     (unsigned long long)m.events_lost);
			if (m.event_restarts > ch->event_restarts)
				de_log_warnx("procmond's event reader was restarted %llu times so "
					     "far",
					     (unsigned long long)m.event_restarts);
			ch->events_lost = m.events_lost;
			ch->event_restarts = m.event_restarts;
			ch->hash_hits = m.hash_hits;
			if (connections)
				ch->conns_unstored = true;
			return 0;
		default:
			de_ipc_msg_clear(&m);
			rc = de_error_set(err, DE_ERR_IO, EPROTO,
					  "unexpected message kind %d from procmond", (int)m.kind);
			goto fail;
		}
		de_ipc_msg_clear(&m);
	}
fail:
	de_error_prefix(err, "closing the procmond channel: ");
	agent_procmond_close(ch);
	return rc;
}
