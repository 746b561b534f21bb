/*
 * serve.c — procmond's side of the socketpair (see ipc.h for the frames).
 *
 * The agent asks, procmond answers: one HELLO at start, then for each
 * SCAN_REQUEST every record as a PROCESS frame and a closing SCAN_DONE.
 * Anything else from the agent is a protocol violation: procmond logs the
 * reason and exits (EX_PROTOCOL) rather than guess.
 *
 * With the netlink process connector (ev non-NULL) an event thread sends an
 * EVENT frame for each exec, read from /proc at once by its own collector
 * (so a process that lives 10 ms still arrives with its command line), and
 * for each exit.  EVENT frames may fall between any two frames of a scan:
 * one mutex makes every frame whole on the wire.  If the agent is slow the
 * event thread blocks in send, the kernel drops what it cannot queue, and
 * SCAN_DONE reports the overruns; the agent's next full scan reconciles.
 * A scan's frames are gathered into writes of about 64 KiB (one write per
 * record made a 10,000-process scan 10,000 system calls on both sides);
 * events are written at once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <unistd.h>

#include "daemoneye/procevents.h"
#include "daemoneye/ipc.h"
#include "daemoneye/log.h"
#include "daemoneye/buf.h"
#include "daemoneye/clock.h"
#include "procmond.h"

struct server {
	int fd;
	pthread_mutex_t send_lock; /* one frame at a time on fd */
	struct de_collector *ecol; /* the event thread's collector */
	struct de_procevents *ev;
	int event_rc; /* why the event thread stopped (0: asked to) */
};

/* Send one whole frame under the lock. */
static int send_locked(struct server *s, const struct de_ipc_msg *m, struct de_error *err)
{
	int rc;

	pthread_mutex_lock(&s->send_lock);
	rc = de_ipc_send(s->fd, m, err);
	pthread_mutex_unlock(&s->send_lock);
	return rc;
}

#define SCAN_WRITE_SIZE ((size_t)64 * 1024)

/* The scan thread's gathered frames. */
struct send_ctx {
	struct server *s;
	struct de_error *err;
	struct de_buf out; /* frames waiting: at most a flush's worth and one frame */
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
	rc = gather(sc, &m);
	return rc < 0 ? rc : 0;
}

/* One event as a frame: an exec carries the process as read now. */
static int send_event(struct server *s, const struct de_process_event *e, struct de_error *err)
{
	struct de_ipc_msg m = {.kind = DE_IPC_EVENT, .event = *e};
	int rc;

	m.event.has_record = false;
	if (e->kind == DE_PROCESS_EXEC) {
		rc = de_collector_read(s->ecol, (pid_t)e->pid, 0, &m.event.record, err);
		if (rc == 0)
			m.event.has_record = true;
		else if (rc != -ESRCH) /* gone already: still an exec, without a record */
			return rc;
		de_error_clear(err);
	}
	rc = send_locked(s, &m, err);
	de_process_event_clear(&m.event);
	return rc;
}

/* One event for the agent; the agent gone is not worth a log line. */
static int serve_event(void *ctx, const struct de_process_event *e)
{
	struct server *s = ctx;
	struct de_error err = {0};
	int rc = send_event(s, e, &err);

	if (rc < 0 && rc != -EPIPE && rc != -ECONNRESET)
		de_log_err(&err);
	return rc;
}

/* The event thread: read the connector, forward at once. */
static void *event_thread(void *arg)
{
	struct server *s = arg;

	s->event_rc = procmond_follow_events(s->ev, serve_event, s);
	return NULL;
}

int procmond_serve(struct de_collector *col, struct de_procevents *ev, int fd, const char *caps)
{
	struct de_ipc_msg hello = {.kind = DE_IPC_HELLO, .version = DE_IPC_VERSION};
	struct server s = {.fd = fd, .ev = ev};
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
	hello.events = ev != NULL;
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
		rc = de_collector_scan_each(col, req.scan_id, send_record, &sc, &done.stats, &err);
		if (rc < 0) {
			if (rc == -EPIPE || rc == -ECONNRESET)
				break;
			de_log_err(&err);
			status = err.code == ENOMEM ? EX_OSERR : EX_IOERR;
			break;
		}
		done.scan_id = req.scan_id;
		done.events_lost = ev ? de_procevents_overruns(ev) : 0;
		if (gather(&sc, &done) < 0 || flush_frames(&sc) < 0) {
			if (err.code == EPIPE || err.code == ECONNRESET)
				break;
			de_log_err(&err);
			status = EX_IOERR;
			break;
		}
	}
out:
	procmond_stop = 1; /* ends the event thread too */
	if (threaded) {
		/* a blocked send ends when the agent closes its end */
		shutdown(fd, SHUT_WR);
		pthread_join(th, NULL);
		if (s.event_rc < 0 && s.event_rc != -EPIPE && s.event_rc != -ECONNRESET &&
		    status == 0)
			status = EX_IOERR;
	}
	de_ipc_reader_free(rd);
	de_buf_free(&sc.out);
	de_collector_close(s.ecol);
	pthread_mutex_destroy(&s.send_lock);
	return status;
}
