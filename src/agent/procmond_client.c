/*
 * procmond_client.c — spawning procmond and talking to it (see procmond_client.h).
 *
 * procmond is the program next to ours (dirname of /proc/self/exe), so an
 * installed agent uses the installed procmond and a build tree its own.
 * The child gets our end of nothing: the socketpair is CLOEXEC and only its
 * end is dup2'd to descriptor 3.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "procmond_client.h"
#include "daemoneye/clock.h"
#include "daemoneye/log.h"

static int procmond_path(char *buf, size_t size)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n < 0)
		return -errno;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	if ((size_t)snprintf(buf, size, "%s/procmond", self) >= size)
		return -ENAMETOOLONG;
	return 0;
}

int agent_procmond_start(const struct de_config_sources *src, struct procmond_chan *ch,
			 struct de_error *err)
{
	char path[PATH_MAX];
	const char **argv;
	struct de_ipc_msg hello = {0};
	int sv[2], rc;
	size_t k = 0;

	ch->pid = 0;
	ch->fd = -1;
	ch->rd = NULL;
	if ((rc = procmond_path(path, sizeof(path))) < 0)
		return de_error_set(err, DE_ERR_IO, -rc, "cannot locate procmond: %s",
				    strerror(-rc));
	if (access(path, X_OK) < 0)
		return de_error_set(err, DE_ERR_IO, errno, "cannot run %s: %s", path,
				    strerror(errno));
	if (!(argv = calloc(6 + 2 * src->nsets, sizeof(char *))))
		return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	argv[k++] = "procmond";
	argv[k++] = "--ipc-fd";
	argv[k++] = "3";
	if (src->file) {
		argv[k++] = "-c";
		argv[k++] = src->file;
	}
	for (size_t i = 0; i < src->nsets; i++) {
		argv[k++] = "--set";
		argv[k++] = src->sets[i];
	}
	argv[k] = NULL;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		rc = de_error_set(err, DE_ERR_IO, errno, "socketpair: %s", strerror(errno));
		free(argv);
		return rc;
	}
	ch->pid = fork();
	if (ch->pid < 0) {
		rc = de_error_set(err, DE_ERR_IO, errno, "fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		free(argv);
		ch->pid = 0;
		return rc;
	}
	if (ch->pid == 0) {
		/* dup2 clears CLOEXEC on descriptor 3 only */
		if (dup2(sv[1], 3) < 0)
			_exit(127);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	free(argv);
	close(sv[1]);
	ch->fd = sv[0];
	if ((rc = de_ipc_reader_new(ch->fd, &ch->rd, err)) < 0)
		goto fail;
	do
		rc = de_ipc_recv(ch->rd, &hello, err);
	while (rc == -EINTR);
	if (rc < 0) {
		de_error_prefix(err, "procmond did not start: ");
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
	agent_procmond_stop(ch);
	return rc;
}

/* Queue an EVENT message (its record moves into the queue). */
static void queue_event(struct procmond_chan *ch, struct de_ipc_msg *m)
{
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
	if (ch->nqueue == ch->capqueue) {
		size_t nc = ch->capqueue ? ch->capqueue * 2 : 64;
		struct de_process_event *nq;
		if (nc > AGENT_MAX_QUEUED_EVENTS || !(nq = realloc(ch->queue, nc * sizeof(*nq)))) {
			if (ch->events_dropped++ == 0)
				de_log_warnx("more than %zu process events waiting: dropping "
					     "them until the next full scan reconciles",
					     ch->nqueue);
			return;
		}
		ch->queue = nq;
		ch->capqueue = nc;
	}
	ch->queue[ch->nqueue++] = m->event; /* moved, with its record */
	memset(&m->event, 0, sizeof(m->event));
}

void agent_events_clear(struct procmond_chan *ch)
{
	for (size_t i = 0; i < ch->nqueue; i++)
		de_process_event_clear(&ch->queue[i]);
	ch->nqueue = 0;
}

/* After the first frame of a batch, a frame that follows within this many
   ms joins it, up to AGENT_GATHER_MAX_MS in all: on a busy host a batch
   then holds several processes, and each batch costs the store one
   transaction (the WAL writes of its pages) whatever its size. */
#define AGENT_GATHER_MS	    1
#define AGENT_GATHER_MAX_MS 3

int agent_procmond_wait(struct procmond_chan *ch, int timeout_ms, struct de_error *err)
{
	size_t got = 0;
	int64_t first = 0;
	int rc;

	if (ch->fd < 0)
		return de_error_set(err, DE_ERR_IO, EPIPE, "procmond is not running");
	/* a batch: what is readable now and what follows at once, at most 1024 frames */
	while (got < 1024) {
		struct de_ipc_msg m = {0};
		if (!de_ipc_reader_pending(ch->rd)) {
			struct pollfd p = {ch->fd, POLLIN, 0};
			int wait = timeout_ms;
			if (got) {
				int64_t left = first + AGENT_GATHER_MAX_MS - de_mono_ms();
				wait = left <= 0		? 0
				       : left < AGENT_GATHER_MS ? (int)left
								: AGENT_GATHER_MS;
			}
			int pr = poll(&p, 1, wait);
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
		do
			rc = de_ipc_recv(ch->rd, &m, err);
		while (rc == -EINTR);
		if (rc < 0)
			goto fail;
		if (m.kind != DE_IPC_EVENT) {
			de_ipc_msg_clear(&m);
			rc = de_error_set(err, DE_ERR_IO, EPROTO,
					  "unexpected message kind %d from procmond between scans",
					  (int)m.kind);
			goto fail;
		}
		queue_event(ch, &m);
		de_ipc_msg_clear(&m);
		if (!got++)
			first = de_mono_ms();
	}
	return 0;
fail:
	de_error_prefix(err, "closing the procmond channel: ");
	agent_procmond_stop(ch);
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
	int rc;

	ch->nconns = 0;
	if (ch->fd < 0)
		return de_error_set(err, DE_ERR_IO, EPIPE, "procmond is not running");
	if ((rc = de_ipc_send(ch->fd, &req, err)) < 0)
		goto fail;
	for (;;) {
		struct de_ipc_msg m = {0};
		rc = de_ipc_recv(ch->rd, &m, err);
		if (rc == -EINTR)
			continue;
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
		case DE_IPC_EVENT:
			queue_event(ch, &m);
			break;
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
			if (m.events_lost)
				de_log_warnx("procmond lost %llu process events so far",
					     (unsigned long long)m.events_lost);
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
	agent_procmond_stop(ch);
	return rc;
}

void agent_procmond_stop(struct procmond_chan *ch)
{
	agent_events_clear(ch);
	free(ch->conns);
	ch->conns = NULL;
	ch->nconns = ch->capconns = 0;
	free(ch->queue);
	ch->queue = NULL;
	ch->capqueue = 0;
	de_ipc_reader_free(ch->rd);
	ch->rd = NULL;
	if (ch->fd >= 0)
		close(ch->fd);
	ch->fd = -1;
	if (ch->pid > 0) {
		int st;
		/* closing the channel ends procmond; SIGTERM in case it is mid-scan */
		kill(ch->pid, SIGTERM);
		while (waitpid(ch->pid, &st, 0) < 0 && errno == EINTR)
			;
	}
	ch->pid = 0;
}
