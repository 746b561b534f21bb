/*
 * serve.c — procmond's side of the socketpair (see ipc.h for the frames).
 *
 * The agent asks, procmond answers: one HELLO at start, then for each
 * SCAN_REQUEST every record as a PROCESS frame and a closing SCAN_DONE.
 * Anything else from the agent is a protocol violation: procmond logs the
 * reason and exits (EX_PROTOCOL) rather than guess.
 */
#include <errno.h>
#include <stdlib.h>
#include <sysexits.h>
#include <unistd.h>

#include "daemoneye/ipc.h"
#include "daemoneye/log.h"
#include "procmond.h"

struct send_ctx {
	int fd;
	struct de_error *err;
};

static int send_record(void *ctx, struct de_process_record *r)
{
	struct send_ctx *s = ctx;
	struct de_ipc_msg m = {.kind = DE_IPC_PROCESS, .has_record = true};
	int rc;

	m.record = *r; /* borrowed for the send */
	rc = de_ipc_send(s->fd, &m, s->err);
	return rc < 0 ? rc : 0;
}

int procmond_serve(struct de_collector *col, int fd, const char *caps)
{
	struct de_ipc_msg hello = {.kind = DE_IPC_HELLO, .version = DE_IPC_VERSION};
	struct de_ipc_reader *rd = NULL;
	struct de_error err = {0};
	int status = 0;

	hello.pid = (uint32_t)getpid();
	hello.capabilities = (char *)caps;
	if (de_ipc_send(fd, &hello, &err) < 0 || de_ipc_reader_new(fd, &rd, &err) < 0) {
		de_log_err(&err);
		return EX_IOERR;
	}
	while (!procmond_stop) {
		struct de_ipc_msg req = {0}, done = {.kind = DE_IPC_SCAN_DONE};
		struct send_ctx sc = {fd, &err};
		int rc;

		de_error_clear(&err);
		rc = de_ipc_recv(rd, &req, &err);
		if (rc == -EINTR)
			continue;
		if (rc < 0) {
			if (err.code == EPIPE)
				break; /* the agent is gone: so are we */
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
		rc = de_collector_scan_each(col, req.scan_id, send_record, &sc, &done.stats, &err);
		if (rc < 0) {
			de_log_err(&err);
			status = err.code == ENOMEM ? EX_OSERR : EX_IOERR;
			break;
		}
		done.scan_id = req.scan_id;
		if (de_ipc_send(fd, &done, &err) < 0) {
			de_log_err(&err);
			status = EX_IOERR;
			break;
		}
	}
	de_ipc_reader_free(rd);
	return status;
}
