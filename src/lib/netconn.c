/*
 * netconn.c — every process's TCP connections from /proc (see netconn.h).
 *
 * One pass: the socket tables of our network namespace are read first
 * (inode -> socket, in an open-addressing table); then each process's
 * descriptors are listed and each "socket:[N]" link looked up.  A socket
 * not in the tables read so far may belong to another namespace: that
 * process's namespace is read through /proc/PID/net/tcp{,6} once (the set
 * of namespaces read is remembered by their inode) and the lookup tried
 * again.  The start time of a process with a connection is read from its
 * stat, so each row names the process instance, as the collector does.
 */
#include "daemoneye/netconn.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemoneye/buf.h"
#include "daemoneye/clock.h"

#define TABLE_MAX  (64u << 20) /* bytes of one /proc/net/tcp read */
#define MAX_NS	   256	       /* network namespaces read per scan */
#define TCP_EST	   0x01
#define TCP_LISTEN 0x0A

/* ---- parsing /proc/net/tcp ------------------------------------------------ */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* "HHHHHHHH:PPPP" (8 or 32 hex digits): the kernel prints each 32-bit
   word of the address as a host-order integer. */
static const char *parse_endpoint(const char *p, const char *end, int family, uint8_t *addr,
				  uint16_t *port)
{
	size_t words = family == 6 ? 4 : 1;
	uint32_t port_v = 0;

	for (size_t w = 0; w < words; w++) {
		uint32_t v = 0;
		for (int i = 0; i < 8; i++, p++) {
			int h = p < end ? hexval(*p) : -1;
			if (h < 0)
				return NULL;
			v = v << 4 | (uint32_t)h;
		}
		memcpy(addr + 4 * w, &v, 4);
	}
	if (p >= end || *p++ != ':')
		return NULL;
	for (int i = 0; i < 4; i++, p++) {
		int h = p < end ? hexval(*p) : -1;
		if (h < 0)
			return NULL;
		port_v = port_v << 4 | (uint32_t)h;
	}
	*port = (uint16_t)port_v;
	return p;
}

static const char *skip_spaces(const char *p, const char *end)
{
	while (p < end && *p == ' ')
		p++;
	return p;
}

static const char *skip_field(const char *p, const char *end)
{
	p = skip_spaces(p, end);
	while (p < end && *p != ' ' && *p != '\n')
		p++;
	return p;
}

int de_netconn_parse_table(const char *text, size_t n, int family,
			   int (*row)(void *ctx, const struct de_connection *c, bool listen),
			   void *ctx)
{
	const char *p = text, *end = text + n;
	int rc;

	/* the first line is the header */
	p = memchr(p, '\n', n);
	while (p && p < end) {
		const char *line = p + 1, *eol = memchr(line, '\n', (size_t)(end - line));
		const char *q = line, *lim = eol ? eol : end;
		struct de_connection c = {.family = (uint8_t)family};
		unsigned long long inode = 0;
		int st_hi, st_lo;

		p = eol;
		q = skip_field(q, lim); /* "sl:" */
		q = skip_spaces(q, lim);
		if (!(q = parse_endpoint(q, lim, family, c.laddr, &c.lport)))
			continue;
		q = skip_spaces(q, lim);
		if (!(q = parse_endpoint(q, lim, family, c.raddr, &c.rport)))
			continue;
		q = skip_spaces(q, lim);
		if (lim - q < 2 || (st_hi = hexval(q[0])) < 0 || (st_lo = hexval(q[1])) < 0)
			continue;
		q += 2;
		/* tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode */
		for (int i = 0; i < 5; i++)
			q = skip_field(q, lim);
		q = skip_spaces(q, lim);
		if (q >= lim || *q < '0' || *q > '9')
			continue;
		while (q < lim && *q >= '0' && *q <= '9' && inode < ULLONG_MAX / 10)
			inode = inode * 10 + (unsigned long long)(*q++ - '0');
		c.inode = inode;
		int state = st_hi << 4 | st_lo;
		if (inode == 0 || (state != TCP_EST && state != TCP_LISTEN))
			continue;
		if ((rc = row(ctx, &c, state == TCP_LISTEN)) != 0)
			return rc;
	}
	return 0;
}

const char *de_netconn_addr_text(int family, const uint8_t *addr, char *buf, size_t size)
{
	if (!inet_ntop(family == 6 ? AF_INET6 : AF_INET, addr, buf, (socklen_t)size))
		snprintf(buf, size, "?");
	return buf;
}

/* ---- the socket tables ------------------------------------------------------ */

struct sock {
	struct de_connection c; /* kind, addresses, ports, inode */
	uint32_t ns;		/* the namespace's inode */
};

struct scan {
	struct sock *v; /* open addressing by inode; inode 0 = empty */
	size_t cap, used;
	uint32_t ns_read[MAX_NS];
	size_t nns;
	uint32_t cur_ns; /* the namespace being read */
	struct de_buf text;
	int procfd;
	size_t sockets;
};

static size_t slot_of(uint64_t inode, size_t cap)
{
	return (size_t)((inode * 0x9E3779B97F4A7C15ull) >> 20) & (cap - 1);
}

static struct sock *sock_find(const struct scan *s, uint64_t inode)
{
	if (!s->cap)
		return NULL;
	for (size_t i = slot_of(inode, s->cap);; i = (i + 1) & (s->cap - 1)) {
		if (s->v[i].c.inode == inode)
			return &s->v[i];
		if (s->v[i].c.inode == 0)
			return NULL;
	}
}

static int sock_add(void *ctx, const struct de_connection *c, bool listen)
{
	struct scan *s = ctx;
	struct sock *e;

	if ((s->used + 1) * 2 > s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 1024;
		struct sock *nv = calloc(nc, sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		for (size_t i = 0; i < s->cap; i++) {
			if (!s->v[i].c.inode)
				continue;
			size_t j = slot_of(s->v[i].c.inode, nc);
			while (nv[j].c.inode)
				j = (j + 1) & (nc - 1);
			nv[j] = s->v[i];
		}
		free(s->v);
		s->v = nv;
		s->cap = nc;
	}
	if (sock_find(s, c->inode))
		return 0; /* the same socket in both tables */
	size_t j = slot_of(c->inode, s->cap);
	while (s->v[j].c.inode)
		j = (j + 1) & (s->cap - 1);
	e = &s->v[j];
	e->c = *c;
	e->c.kind = listen ? DE_CONN_LISTEN : DE_CONN_CONNECT;
	e->ns = s->cur_ns;
	s->used++;
	s->sockets++;
	return 0;
}

/* Read dir/net/tcp and tcp6 (dir: "net" of /proc, or "PID/net") as namespace ns. */
static int read_tables(struct scan *s, const char *dir, uint32_t ns)
{
	static const struct {
		const char *name;
		int family;
	} t[2] = {{"tcp", 4}, {"tcp6", 6}};
	char path[64];
	int rc;

	if (s->nns == MAX_NS)
		return 0;
	s->ns_read[s->nns++] = ns;
	s->cur_ns = ns;
	for (int i = 0; i < 2; i++) {
		int fd;
		snprintf(path, sizeof(path), "%s/%s", dir, t[i].name);
		if ((fd = openat(s->procfd, path, O_RDONLY | O_CLOEXEC)) < 0)
			continue; /* no IPv6, or the process is gone */
		de_buf_reset(&s->text);
		for (;;) {
			ssize_t r;
			/* at the cap (or out of memory): what was read is parsed */
			if (de_buf_reserve(&s->text, 65536) < 0)
				break;
			r = read(fd, s->text.p + s->text.len, s->text.cap - 1 - s->text.len);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			s->text.len += (size_t)r;
			s->text.p[s->text.len] = '\0';
		}
		close(fd);
		if (s->text.len && (rc = de_netconn_parse_table(s->text.p, s->text.len, t[i].family,
								sock_add, s)) < 0)
			return rc;
	}
	return 0;
}

static uint32_t net_ns_of(int procfd, const char *pid)
{
	char path[64], link[64], *b;
	ssize_t l;

	snprintf(path, sizeof(path), "%s/ns/net", pid);
	if ((l = readlinkat(procfd, path, link, sizeof(link) - 1)) <= 0)
		return 0;
	link[l] = '\0';
	return (b = strchr(link, '[')) ? (uint32_t)strtoul(b + 1, NULL, 10) : 0;
}

static bool ns_known(const struct scan *s, uint32_t ns)
{
	for (size_t i = 0; i < s->nns; i++)
		if (s->ns_read[i] == ns)
			return true;
	return false;
}

/* Does namespace ns listen on port (any address of the family)? */
static bool listens(const struct scan *s, uint32_t ns, int family, uint16_t port)
{
	for (size_t i = 0; i < s->cap; i++) {
		const struct sock *e = &s->v[i];
		if (e->c.inode && e->ns == ns && e->c.kind == DE_CONN_LISTEN &&
		    e->c.lport == port && (e->c.family == family || e->c.family == 6))
			return true;
	}
	return false;
}

/* The start of process pid, ms since the epoch, as the collector computes it; 0 if gone. */
static int64_t start_ms(int procfd, const char *pid, int64_t btime_ms, long hz)
{
	char path[64], buf[1024], *close_paren;
	unsigned long long start = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/stat", pid);
	if ((fd = openat(procfd, path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (!(close_paren = strrchr(buf, ')')))
		return 0;
	/* starttime is field 22: after the 20th space that follows the comm */
	char *p = close_paren + 1;
	for (int f = 0; f < 19 && p; f++)
		p = strchr(p + 1, ' ');
	char *end;
	if (!p)
		return 0;
	errno = 0;
	start = strtoull(p + 1, &end, 10);
	if (end == p + 1 || errno)
		return 0;
	return btime_ms + (int64_t)(start * 1000 / (unsigned long long)hz);
}

int de_netconn_scan(const char *proc_root, int64_t now_ms,
		    int (*fn)(void *ctx, const struct de_connection *c), void *ctx,
		    struct de_netconn_stats *stats, struct de_error *err)
{
	struct scan s = {.text = DE_BUF_INIT(TABLE_MAX)};
	struct de_netconn_stats st = {0};
	const char *root = proc_root ? proc_root : "/proc";
	int64_t btime_ms = 0;
	long hz = sysconf(_SC_CLK_TCK);
	uint32_t self_ns;
	struct dirent *de;
	DIR *d = NULL;
	int rc = 0, dfd;

	if (hz <= 0)
		hz = 100;
	if ((s.procfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return de_error_set(err, DE_ERR_IO, errno, "cannot open %s: %s", root,
				    strerror(errno));
	btime_ms = de_boot_time_ms(s.procfd);
	self_ns = net_ns_of(s.procfd, "self");
	if ((rc = read_tables(&s, "net", self_ns)) < 0)
		goto out;
	if ((dfd = openat(s.procfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    !(d = fdopendir(dfd))) {
		rc = de_error_set(err, DE_ERR_IO, errno, "cannot list %s: %s", root,
				  strerror(errno));
		if (dfd >= 0)
			close(dfd);
		goto out;
	}
	while (rc == 0 && (de = readdir(d))) {
		char fdpath[64];
		const char *pid = de->d_name;
		int64_t start = -1;
		uint32_t ns = 0;
		DIR *fds;
		int ffd;

		if (pid[0] < '1' || pid[0] > '9')
			continue;
		snprintf(fdpath, sizeof(fdpath), "%s/fd", pid);
		if ((ffd = openat(s.procfd, fdpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
			continue;
		if (!(fds = fdopendir(ffd))) {
			close(ffd);
			continue;
		}
		st.processes++;
		struct dirent *fe;
		while (rc == 0 && (fe = readdir(fds))) {
			char link[64];
			unsigned long long inode;
			struct sock *e;
			ssize_t l;

			if (fe->d_name[0] < '0' || fe->d_name[0] > '9')
				continue;
			l = readlinkat(ffd, fe->d_name, link, sizeof(link) - 1);
			if (l < 9 || memcmp(link, "socket:[", 8) != 0)
				continue;
			link[l] = '\0';
			inode = strtoull(link + 8, NULL, 10);
			if (!(e = sock_find(&s, inode))) {
				/* another namespace's socket, or not TCP */
				if (!ns)
					ns = net_ns_of(s.procfd, pid);
				if (!ns || ns_known(&s, ns))
					continue;
				char netdir[64];
				snprintf(netdir, sizeof(netdir), "%s/net", pid);
				if ((rc = read_tables(&s, netdir, ns)) < 0)
					break;
				st.namespaces++;
				if (!(e = sock_find(&s, inode)))
					continue;
			}
			struct de_connection c = e->c;
			if (c.kind == DE_CONN_CONNECT && listens(&s, e->ns, c.family, c.lport))
				c.kind = DE_CONN_ACCEPT;
			if (start < 0)
				start = start_ms(s.procfd, pid, btime_ms, hz);
			c.pid = (uint32_t)strtoul(pid, NULL, 10);
			c.start_time = start;
			c.time_ms = now_ms;
			c.from_scan = true;
			st.connections++;
			if ((rc = fn(ctx, &c)) < 0)
				break;
		}
		closedir(fds);
	}
	if (rc == -ENOMEM)
		rc = de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
out:
	if (d)
		closedir(d);
	close(s.procfd);
	free(s.v);
	de_buf_free(&s.text);
	st.namespaces += 1;
	st.sockets = s.sockets;
	if (stats)
		*stats = st;
	return rc;
}
