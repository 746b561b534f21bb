/*
 * serve.c — procmond's side of the socketpair (see ipc.h for the frames).
 *
 * The agent asks, procmond answers: one HELLO at start, then for each
 * SCAN_REQUEST every record as a PROCESS frame and a closing SCAN_DONE.
 * Anything else from the agent is a protocol violation: procmond logs the
 * reason and exits (EX_PROTOCOL) rather than guess.
 *
 * With an event source (source.c) an event thread sends an EVENT frame for
 * each event as it happens.  An exec from the eBPF sensor carries what the
 * kernel read at the exec (de_collector_exec completes it from /proc when
 * the process is still there); one from the netlink connector is read
 * from /proc at once by the thread's own collector (so a process that
 * lives 10 ms still arrives with its command line, mostly).  EVENT frames
 * may fall between any two frames of a scan: one mutex makes every frame
 * whole on the wire.  If the agent is slow the event thread blocks in
 * send, the kernel drops what it cannot queue, a LOST event and SCAN_DONE
 * report it, and the agent reconciles with a full scan.  A scan the agent
 * asks connections of is followed by a CONNECTION frame per TCP
 * connection of every process (netconn.h).
 * A scan's frames are gathered into writes of about 64 KiB (one write per
 * record made a 10,000-process scan 10,000 system calls on both sides);
 * events are written at once.
 *
 * The event reader never dies silently: when it stops on an error it says
 * so, is counted (SCAN_DONE's event_restarts, the agent's metrics and
 * health) and starts again a second later.  After EVENT_RESTARTS_MAX quick
 * failures in a row procmond gives up and exits with EX_IOERR, so that the
 * privileged parent starts a fresh one (a new subscription needs
 * CAP_NET_ADMIN, which we dropped).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <unistd.h>

#include "daemoneye/ipc.h"
#include "daemoneye/netconn.h"
#include "daemoneye/log.h"
#include "daemoneye/buf.h"
#include "daemoneye/clock.h"
#include "procmond.h"

struct server {
	int fd;
	pthread_mutex_t send_lock; /* one frame at a time on fd */
	struct de_collector *ecol; /* the event thread's collector */
	struct procmond_source *src;
	struct de_buf events;	     /* the event thread's frames of one read, written together */
	int event_rc;		     /* why the event thread stopped (0: asked to) */
	bool event_failed;	     /* it gave up: procmond exits so it is restarted */
	atomic_ulong event_restarts; /* times the reader died and started again */
};
/* Quick failures in a row (none lasting a minute) before the reader gives up. */
#define EVENT_RESTARTS_MAX 5

#define SCAN_WRITE_SIZE ((size_t)64 * 1024)

/* The scan thread's gathered frames. */
struct send_ctx {
	struct server *s;
	struct de_error *err;
	struct de_buf out;  /* frames waiting: at most a flush's worth and one frame */
	uint64_t with_hash; /* records of this scan carrying a hash */
};

/* Write what is gathered, whole, under the lock. */
static int flush_frames(struct send_ctx *sc)
{
	int rc = 0;

	if (sc->out.len) {
		pthread_mutex_lock(&sc->s->send_lock);
		rc = de_ipc_write_all(sc->s->fd, (const uint8_t *)sc->out.p, sc->out.len, sc->err);
		pthread_mutex_unlock(&sc->s->send_lock);
	}
	de_buf_reset(&sc->out);
	return rc;
}

/* Gather one message's frame; write when about SCAN_WRITE_SIZE is waiting. */
static int gather(struct send_ctx *sc, const struct de_ipc_msg *m)
{
	uint8_t *f;
	size_t n;
	int rc;

	if ((rc = de_ipc_encode(m, &f, &n, sc->err)) < 0)
		return rc;
	/* a frame is at most DE_IPC_HEADER + DE_IPC_MAX_FRAME bytes (encode checks) */
	rc = de_buf_append(&sc->out, f, n);
	free(f);
	if (rc < 0)
		return de_error_set(sc->err, DE_ERR_IO, -rc, "cannot gather a frame: %s",
				    strerror(-rc));
	return sc->out.len >= SCAN_WRITE_SIZE ? flush_frames(sc) : 0;
}

static int send_record(void *ctx, struct de_process_record *r)
{
	struct send_ctx *sc = ctx;
	struct de_ipc_msg m = {.kind = DE_IPC_PROCESS, .has_record = true};
	int rc;

	m.record = *r; /* borrowed for the send */
	sc->with_hash += r->executable_hash != NULL;
	rc = gather(sc, &m);
	return rc < 0 ? rc : 0;
}

static int send_conn(void *ctx, const struct de_connection *c)
{
	struct send_ctx *sc = ctx;
	struct de_ipc_msg m = {.kind = DE_IPC_CONNECTION, .conn = *c};

	return gather(sc, &m);
}

/* The frames of one read of the source, in one write, whole, under the lock. */
static int flush_events(void *ctx)
{
	struct server *s = ctx;
	struct de_error err = {0};
	int rc = 0;

	if (s->events.len) {
		pthread_mutex_lock(&s->send_lock);
		rc = de_ipc_write_all(s->fd, (const uint8_t *)s->events.p, s->events.len, &err);
		pthread_mutex_unlock(&s->send_lock);
	}
	de_buf_reset(&s->events);
	if (rc < 0 && rc != -EPIPE && rc != -ECONNRESET)
		de_log_err(&err);
	return rc;
}

/* One event as a frame, gathered: an exec carries the process (as the
   kernel saw it, or as read now).  A fork is not sent: the agent stores a
   process by its exec or its next scan. */
static int send_event(struct server *s, const struct de_process_event *e, struct de_error *err)
{
	struct de_ipc_msg m = {.kind = DE_IPC_EVENT, .event = *e};
	uint8_t *f;
	size_t n;
	int rc;

	if (e->kind == DE_PROCESS_FORK)
		return 0;
	m.event.has_record = false;
	m.event.kexec = NULL;
	if (e->kind == DE_PROCESS_EXEC) {
		if (e->kexec)
			rc = de_collector_exec(s->ecol, e->kexec, 0, &m.event.record, err);
		else
			rc = de_collector_read(s->ecol, (pid_t)e->pid, 0, &m.event.record, err);
		if (rc == 0)
			m.event.has_record = true;
		else if (rc != -ESRCH) /* gone already: still an exec, without a record */
			return rc;
		de_error_clear(err);
	}
	rc = de_ipc_encode(&m, &f, &n, err);
	de_process_event_clear(&m.event);
	if (rc < 0)
		return rc;
	rc = de_buf_append(&s->events, f, n);
	free(f);
	if (rc < 0)
		return de_error_set(err, DE_ERR_IO, -rc, "cannot gather an event: %s",
				    strerror(-rc));
	return s->events.len >= SCAN_WRITE_SIZE ? flush_events(s) : 0;
}

/* One event for the agent; the agent gone is not worth a log line. */
static int serve_event(void *ctx, struct de_process_event *e)
{
	struct server *s = ctx;
	struct de_error err = {0};
	int rc = send_event(s, e, &err);

	if (rc < 0 && rc != -EPIPE && rc != -ECONNRESET)
		de_log_err(&err);
	return rc;
}

/* The event thread: read the source, forward each read's events at once; restart
   the reader if it dies. */
static void *event_thread(void *arg)
{
	struct server *s = arg;
	unsigned quick = 0;

	for (;;) {
		int64_t t0 = de_mono_ms();
		int rc = procmond_follow_events(s->src, serve_event, flush_events, s);

		s->event_rc = rc;
		if (procmond_stop || rc == 0 || rc == -EPIPE || rc == -ECONNRESET)
			break;
		atomic_fetch_add(&s->event_restarts, 1);
		if (de_mono_ms() - t0 >= 60000)
			quick = 0;
		if (++quick > EVENT_RESTARTS_MAX) {
			de_log_errorx("the event reader failed %u times in a row (%s): procmond "
				      "exits so that a fresh one is started",
				      quick, strerror(-rc));
			s->event_failed = true;
			procmond_stop = 1;
			shutdown(s->fd, SHUT_RD); /* wakes the main loop's read */
			break;
		}
		de_log_warnx("the event reader stopped (%s): starting it again", strerror(-rc));
		struct timespec ts = {1, 0};
		while (!procmond_stop && nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		if (procmond_stop)
			break;
	}
	return NULL;
}

int procmond_serve(struct de_collector *col, struct procmond_source *src, int fd, const char *caps)
{
	bool ev = procmond_source_on(src);
	struct de_ipc_msg hello = {.kind = DE_IPC_HELLO, .version = DE_IPC_VERSION};
	struct server s = {.fd = fd, .src = src, .events = DE_BUF_INIT(256u << 20)};
	struct de_ipc_reader *rd = NULL;
	struct de_error err = {0};
	struct send_ctx sc = {
		.s = &s,
		.err = &err,
		.out = DE_BUF_INIT(SCAN_WRITE_SIZE + DE_IPC_HEADER + DE_IPC_MAX_FRAME)};
	pthread_t th;
	bool threaded = false;
	int status = 0, rc;

	pthread_mutex_init(&s.send_lock, NULL);
	hello.pid = (uint32_t)getpid();
	hello.capabilities = (char *)caps;
	hello.events = ev;
	hello.event_source = (char *)src->name;
	hello.event_reason = src->reason[0] ? src->reason : NULL;
	if (ev && (de_collector_open(NULL, &s.ecol, &err) < 0 ||
		   de_collector_configure(s.ecol, de_collector_options(col), &err) < 0)) {
		de_log_err(&err);
		status = EX_OSERR;
		goto out;
	}
	if (de_ipc_send(fd, &hello, &err) < 0 || de_ipc_reader_new(fd, &rd, &err) < 0) {
		de_log_err(&err);
		status = EX_IOERR;
		goto out;
	}
	if (ev) {
		if ((rc = pthread_create(&th, NULL, event_thread, &s)) != 0) {
			de_log_errorx("cannot start the event thread: error %d", rc);
			status = EX_OSERR;
			goto out;
		}
		threaded = true;
	}
	while (!procmond_stop) {
		struct de_ipc_msg req = {0}, done = {.kind = DE_IPC_SCAN_DONE};

		de_error_clear(&err);
		/* wait in poll for POLLIN alone: a read blocked on the socket
		   is also woken each time the agent drains what the event
		   thread wrote (the kernel's write-space wake-up), hundreds of
		   times a second at 1,000 execs/s, for nothing */
		if (!de_ipc_reader_pending(rd)) {
			/* EINTR: procmond_stop may be set; another failure: the
			   read below says what it is */
			struct pollfd p = {fd, POLLIN, 0};
			if (poll(&p, 1, -1) < 0 && errno == EINTR)
				continue;
		}
		rc = de_ipc_recv(rd, &req, &err);
		if (rc == -EINTR)
			continue;
		if (rc < 0) {
			if (err.code == EPIPE || err.code == ECONNRESET)
				break; /* the agent is gone (maybe with frames unread): so are we */
			de_log_errorx("closing the channel: %s", err.message);
			status = EX_PROTOCOL;
			break;
		}
		if (req.kind != DE_IPC_SCAN_REQUEST) {
			de_log_errorx(
				"closing the channel: unexpected message kind %d from the agent",
				(int)req.kind);
			de_ipc_msg_clear(&req);
			status = EX_PROTOCOL;
			break;
		}
		de_buf_reset(&sc.out);
		sc.with_hash = 0;
		rc = de_collector_scan_each(col, req.scan_id, send_record, &sc, &done.stats, &err);
		if (rc < 0) {
			if (rc == -EPIPE || rc == -ECONNRESET)
				break;
			de_log_err(&err);
			status = err.code == ENOMEM ? EX_OSERR : EX_IOERR;
			break;
		}
		if (req.connections &&
		    (rc = de_netconn_scan(NULL, de_now_ms(), send_conn, &sc, NULL, &err)) < 0) {
			if (rc == -EPIPE || rc == -ECONNRESET)
				break;
			de_log_err(&err);
			status = err.code == ENOMEM ? EX_OSERR : EX_IOERR;
			break;
		}
		done.scan_id = req.scan_id;
		done.events_lost = procmond_source_lost(src);
		done.hash_hits = sc.with_hash > done.stats.hashed_files
					 ? sc.with_hash - done.stats.hashed_files
					 : 0;
		done.event_restarts = atomic_load(&s.event_restarts);
		if (gather(&sc, &done) < 0 || flush_frames(&sc) < 0) {
			if (err.code == EPIPE || err.code == ECONNRESET)
				break;
			de_log_err(&err);
			status = EX_IOERR;
			break;
		}
	}
out:
	procmond_request_stop(); /* ends the event thread too, at once */
	if (threaded) {
		/* a blocked send ends when the agent closes its end */
		shutdown(fd, SHUT_WR);
		pthread_join(th, NULL);
		if (s.event_failed && status == 0)
			status = EX_IOERR;
	}
	de_ipc_reader_free(rd);
	de_buf_free(&sc.out);
	de_collector_close(s.ecol);
	de_buf_free(&s.events);
	pthread_mutex_destroy(&s.send_lock);
	return status;
}
