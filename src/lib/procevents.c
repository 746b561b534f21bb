/*
 * procevents.c — the netlink process connector (see procevents.h).
 *
 * One datagram socket bound to the CN_IDX_PROC multicast group; a
 * PROC_CN_MCAST_LISTEN message turns the stream on.  The receive buffer is
 * raised to 8 MiB (SO_RCVBUFFORCE, which CAP_NET_ADMIN allows) so that
 * bursts of execs are not dropped.  Messages are parsed with the kernel's
 * own structures and every length is checked before use.
 */
#include "daemoneye/procevents.h"

#include "daemoneye/clock.h"

#include <errno.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct de_procevents {
	int fd;
	uint64_t overruns;
	/* one receive buffer, aligned for nlmsghdr */
	union {
		struct nlmsghdr h;
		char b[65536];
	} buf;
};

int de_procevents_open(struct de_procevents **out, struct de_error *err)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC};
	struct {
		struct nlmsghdr h;
		struct cn_msg cn;
		enum proc_cn_mcast_op op;
	} __attribute__((packed)) req;
	struct de_procevents *ev = calloc(1, sizeof(*ev));
	int rc, size = 8 << 20;

	if (!ev)
		return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	ev->fd = socket(PF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_CONNECTOR);
	if (ev->fd < 0) {
		rc = de_error_set(err, DE_ERR_IO, errno, "process connector socket: %s",
				  strerror(errno));
		free(ev);
		return rc;
	}
	sa.nl_pid = 0;
	if (bind(ev->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto fail;
	if (setsockopt(ev->fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		(void)setsockopt(ev->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	memset(&req, 0, sizeof(req));
	req.h.nlmsg_len = sizeof(req);
	req.h.nlmsg_type = NLMSG_DONE;
	req.h.nlmsg_pid = (uint32_t)getpid();
	req.cn.id.idx = CN_IDX_PROC;
	req.cn.id.val = CN_VAL_PROC;
	req.cn.len = sizeof(enum proc_cn_mcast_op);
	req.op = PROC_CN_MCAST_LISTEN;
	if (send(ev->fd, &req, sizeof(req), 0) < 0)
		goto fail;
	*out = ev;
	return 0;
fail:
	rc = errno;
	close(ev->fd);
	free(ev);
	if (rc == EPERM || rc == EACCES)
		return de_error_set(err, DE_ERR_IO, rc,
				    "process events need CAP_NET_ADMIN (run as root): %s",
				    strerror(rc));
	return de_error_set(err, DE_ERR_IO, rc, "process connector: %s", strerror(rc));
}

void de_procevents_close(struct de_procevents *ev)
{
	if (!ev)
		return;
	close(ev->fd);
	free(ev);
}

int de_procevents_fd(const struct de_procevents *ev)
{
	return ev->fd;
}

uint64_t de_procevents_overruns(const struct de_procevents *ev)
{
	return ev ? ev->overruns : 0;
}

/* Parse one datagram of len bytes; append what matters to out. */
static void parse(struct de_procevents *ev, size_t len, struct de_process_event *out, size_t max,
		  size_t *n)
{
	struct nlmsghdr *h = &ev->buf.h;
	int left = (int)len;

	for (; NLMSG_OK(h, (unsigned)left) && *n < max; h = NLMSG_NEXT(h, left)) {
		struct cn_msg *cn;
		struct proc_event copy, *pe = &copy;

		if (h->nlmsg_type == NLMSG_NOOP)
			continue;
		if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_OVERRUN) {
			ev->overruns++;
			continue;
		}
		if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct cn_msg)))
			continue;
		cn = NLMSG_DATA(h);
		if (cn->id.idx != CN_IDX_PROC || cn->id.val != CN_VAL_PROC ||
		    cn->len < offsetof(struct proc_event, event_data) ||
		    NLMSG_LENGTH(sizeof(struct cn_msg) + cn->len) > h->nlmsg_len)
			continue;
		/* cn->data is not aligned for proc_event: copy it out */
		memset(&copy, 0, sizeof(copy));
		memcpy(&copy, cn->data, cn->len < sizeof(copy) ? cn->len : sizeof(copy));
		if (pe->what == PROC_EVENT_EXEC &&
		    cn->len >=
			    offsetof(struct proc_event, event_data) + sizeof(pe->event_data.exec)) {
			if (pe->event_data.exec.process_pid != pe->event_data.exec.process_tgid)
				continue;
			out[*n] = (struct de_process_event){
				.kind = DE_PROCESS_EXEC,
				.pid = (uint32_t)pe->event_data.exec.process_tgid,
				.time_ms = de_now_ms(),
				.timestamp_ns = pe->timestamp_ns,
			};
			(*n)++;
		} else if (pe->what == PROC_EVENT_EXIT &&
			   cn->len >= offsetof(struct proc_event, event_data) +
					      sizeof(pe->event_data.exit)) {
			if (pe->event_data.exit.process_pid != pe->event_data.exit.process_tgid)
				continue; /* a thread, not the process */
			out[*n] = (struct de_process_event){
				.kind = DE_PROCESS_EXIT,
				.pid = (uint32_t)pe->event_data.exit.process_tgid,
				.time_ms = de_now_ms(),
				.timestamp_ns = pe->timestamp_ns,
				.has_exit_code = true,
				.exit_code = (int32_t)pe->event_data.exit.exit_code,
			};
			(*n)++;
		}
	}
}

int de_procevents_read(struct de_procevents *ev, struct de_process_event *out, size_t max,
		       size_t *n, struct de_error *err)
{
	*n = 0;
	while (*n < max) {
		struct sockaddr_nl from = {0};
		socklen_t fl = sizeof(from);
		ssize_t r = recvfrom(ev->fd, ev->buf.b, sizeof(ev->buf.b), 0,
				     (struct sockaddr *)&from, &fl);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == ENOBUFS) {
				ev->overruns++;
				continue;
			}
			return de_error_set(err, DE_ERR_IO, errno, "process connector: %s",
					    strerror(errno));
		}
		if (fl < sizeof(from) || from.nl_pid != 0)
			continue; /* only the kernel speaks here (and says so) */
		parse(ev, (size_t)r, out, max, n);
	}
	return 0;
}
