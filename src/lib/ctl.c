/*
 * ctl.c — the parent <-> worker control channel (see ctl.h): the message
 * encoder and decoder, the dispatch table, the SOCK_SEQPACKET transport
 * with descriptor passing, and the strict check of a checkpoint note body
 * that the parent applies before it signs anything.
 *
 * The decoder reads through a cursor that refuses to go past the payload
 * (any short field marks the message bad) and must end exactly at its end:
 * a message is either every field of its type, in range, or refused.
 */
#include "daemoneye/ctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemoneye/base64.h"

/* ---- the dispatch table ------------------------------------------------------ */

#define ST(s) (1u << (s))
#define ANY   (ST(DE_CTL_STARTING) | ST(DE_CTL_RUNNING) | ST(DE_CTL_RELOADING) | ST(DE_CTL_STOPPING))
#define LIVE  (ST(DE_CTL_RUNNING) | ST(DE_CTL_RELOADING))

static const struct {
	const char *name;
	enum de_ctl_dir dir;
	unsigned states; /* where the receiver accepts it */
} table[DE_CTL_TYPE_MAX] = {
	[DE_CTL_READY] = {"READY", DE_CTL_TO_PARENT, ST(DE_CTL_STARTING)},
	[DE_CTL_HEARTBEAT] = {"HEARTBEAT", DE_CTL_TO_PARENT, ANY},
	[DE_CTL_RESTART_PROCMOND] = {"RESTART_PROCMOND", DE_CTL_TO_PARENT, LIVE},
	[DE_CTL_RELOAD_DONE] = {"RELOAD_DONE", DE_CTL_TO_PARENT, ST(DE_CTL_RELOADING)},
	[DE_CTL_KEY_REQUEST] = {"KEY_REQUEST", DE_CTL_TO_PARENT, ST(DE_CTL_STARTING) | LIVE},
	/* the ledger may checkpoint once more while it closes */
	[DE_CTL_SIGN_REQUEST] = {"SIGN_REQUEST", DE_CTL_TO_PARENT, LIVE | ST(DE_CTL_STOPPING)},
	/* the worker starts with no configuration: CONFIG comes first */
	[DE_CTL_CONFIG] = {"CONFIG", DE_CTL_TO_WORKER, ST(DE_CTL_STARTING) | LIVE},
	[DE_CTL_PROCMOND] = {"PROCMOND", DE_CTL_TO_WORKER, LIVE},
	[DE_CTL_SUPERVISOR] = {"SUPERVISOR", DE_CTL_TO_WORKER, LIVE | ST(DE_CTL_STOPPING)},
	[DE_CTL_KEY_REPLY] = {"KEY_REPLY", DE_CTL_TO_WORKER, LIVE | ST(DE_CTL_STOPPING)},
	[DE_CTL_SIGN_REPLY] = {"SIGN_REPLY", DE_CTL_TO_WORKER, LIVE | ST(DE_CTL_STOPPING)},
};

static const char *const reason_names[DE_CTL_REASON_MAX] = {
	"crash", "hung", "cpu", "memory", "scan_timeout", "protocol", "reload", "with_worker",
};

const char *de_ctl_type_name(enum de_ctl_type t)
{
	return (unsigned)t < DE_CTL_TYPE_MAX && table[t].name ? table[t].name : "unknown";
}

const char *de_ctl_reason_name(enum de_ctl_reason r)
{
	return (unsigned)r < DE_CTL_REASON_MAX ? reason_names[r] : "unknown";
}

bool de_ctl_allowed(enum de_ctl_type t, enum de_ctl_state s)
{
	return (unsigned)t < DE_CTL_TYPE_MAX && table[t].name && (unsigned)s < DE_CTL_STATE_MAX &&
	       (table[t].states & ST(s));
}

void de_ctl_msg_init(struct de_ctl_msg *m, enum de_ctl_type t)
{
	memset(m, 0, sizeof(*m));
	m->type = t;
	for (size_t i = 0; i < DE_CTL_MAX_FDS; i++)
		m->fds[i] = -1;
}

void de_ctl_msg_close_fds(struct de_ctl_msg *m)
{
	for (size_t i = 0; i < DE_CTL_MAX_FDS; i++) {
		if (m->fds[i] >= 0)
			close(m->fds[i]);
		m->fds[i] = -1;
	}
	m->nfds = 0;
}

/* The most text each kind of message carries. */
static size_t text_max(enum de_ctl_type t)
{
	switch (t) {
	case DE_CTL_HEARTBEAT:
		return DE_CTL_STATUS_MAX;
	case DE_CTL_SIGN_REQUEST:
		return DE_CTL_NOTE_BODY_MAX;
	case DE_CTL_RELOAD_DONE:
	case DE_CTL_CONFIG:
		return DE_CTL_TEXT_MAX;
	default:
		return 0;
	}
}

/* Descriptors that come with a message of this kind. */
static size_t fds_expected(const struct de_ctl_msg *m)
{
	return m->type == DE_CTL_PROCMOND ? 1 : m->type == DE_CTL_CONFIG ? m->nfiles : 0;
}

/* ---- encoding ---------------------------------------------------------------- */

struct wr {
	uint8_t *p;
	size_t cap, len;
	bool over;
};

static void put(struct wr *w, const void *src, size_t n)
{
	if (w->over || w->cap - w->len < n) {
		w->over = true;
		return;
	}
	memcpy(w->p + w->len, src, n);
	w->len += n;
}

static void put_u(struct wr *w, uint64_t v, size_t bytes)
{
	uint8_t b[8];
	for (size_t i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
	put(w, b, bytes);
}

#define put8(w, v)  put_u(w, (uint64_t)(v), 1)
#define put16(w, v) put_u(w, (uint64_t)(v), 2)
#define put32(w, v) put_u(w, (uint64_t)(uint32_t)(v), 4)
#define put64(w, v) put_u(w, (uint64_t)(v), 8)

static void put_text(struct wr *w, const char *s, size_t n)
{
	put16(w, n);
	put(w, s, n);
}

static void put_child(struct wr *w, const struct de_ctl_child *c)
{
	put32(w, c->pid);
	put64(w, c->started_ms);
	for (size_t i = 0; i < DE_CTL_REASON_MAX; i++)
		put32(w, c->restarts[i]);
	put32(w, c->last_exit);
	put64(w, c->last_exit_ms);
	put64(w, c->cpu_ms);
	put64(w, c->rss_bytes);
	put64(w, c->restart_in_ms);
}

/* buf is written through w (clang-tidy does not follow it there) */
/* NOLINTNEXTLINE(readability-non-const-parameter) */
int de_ctl_encode(const struct de_ctl_msg *m, uint8_t *buf, size_t cap, size_t *len,
		  struct de_error *err)
{
	struct wr w = {buf, cap, 0, false};

	if ((unsigned)m->type >= DE_CTL_TYPE_MAX || !table[m->type].name)
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "control message: unknown type %d", (int)m->type);
	if (m->text_len > text_max(m->type) || memchr(m->text, '\0', m->text_len) ||
	    m->nfiles > DE_CTL_MAX_FDS || m->nfds != fds_expected(m) ||
	    (m->type == DE_CTL_RESTART_PROCMOND && (unsigned)m->reason >= DE_CTL_REASON_MAX))
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "control message %s: a field is out of range",
				    de_ctl_type_name(m->type));
	put16(&w, m->type);
	put16(&w, DE_CTL_VERSION);
	put32(&w, 0); /* the payload length, filled below */
	switch (m->type) {
	case DE_CTL_READY:
		put32(&w, m->pid);
		break;
	case DE_CTL_HEARTBEAT:
		put64(&w, m->scan_id);
		put_text(&w, m->text, m->text_len);
		break;
	case DE_CTL_RESTART_PROCMOND:
		put32(&w, m->generation);
		put8(&w, m->reason);
		break;
	case DE_CTL_RELOAD_DONE:
		put32(&w, m->generation);
		put8(&w, m->ok);
		put_text(&w, m->text, m->text_len);
		break;
	case DE_CTL_KEY_REQUEST:
		break;
	case DE_CTL_SIGN_REQUEST:
		put32(&w, m->id);
		put_text(&w, m->text, m->text_len);
		break;
	case DE_CTL_CONFIG:
		put32(&w, m->generation);
		put_text(&w, m->text, m->text_len);
		put8(&w, m->nfiles);
		for (size_t i = 0; i < m->nfiles; i++) {
			size_t n = strnlen(m->paths[i], DE_CTL_PATH_MAX + 1);
			if (n == 0 || n > DE_CTL_PATH_MAX)
				return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
						    "control message CONFIG: file name %zu is "
						    "empty or too long",
						    i + 1);
			put_text(&w, m->paths[i], n);
		}
		break;
	case DE_CTL_PROCMOND:
		put32(&w, m->generation);
		put32(&w, m->pid);
		put64(&w, m->time_ms);
		break;
	case DE_CTL_SUPERVISOR:
		put32(&w, m->sup.pid);
		put64(&w, m->sup.started_ms);
		put64(&w, m->sup.rss_bytes);
		put64(&w, m->sup.cpu_ms);
		put8(&w, (m->sup.privileged ? 1 : 0) | (m->sup.signing ? 2 : 0));
		put_child(&w, &m->sup.procmond);
		put_child(&w, &m->sup.worker);
		break;
	case DE_CTL_KEY_REPLY:
		put32(&w, m->status);
		put8(&w, m->has_key);
		put(&w, m->key, sizeof(m->key));
		break;
	case DE_CTL_SIGN_REPLY:
		put32(&w, m->id);
		put32(&w, m->status);
		put(&w, m->sig, sizeof(m->sig));
		break;
	default:
		break;
	}
	if (w.over || w.len > DE_CTL_MAX_MSG)
		return de_error_set(err, DE_ERR_VALIDATION, EMSGSIZE,
				    "control message %s does not fit in %zu bytes",
				    de_ctl_type_name(m->type), cap);
	size_t payload = w.len - DE_CTL_HEADER;
	w.len = 4;
	put32(&w, payload);
	*len = payload + DE_CTL_HEADER;
	return 0;
}

/* ---- decoding ---------------------------------------------------------------- */

struct rd {
	const uint8_t *p;
	size_t len, off;
	bool bad;
};

static uint64_t get_u(struct rd *r, size_t bytes)
{
	uint64_t v = 0;

	if (r->bad || r->len - r->off < bytes) {
		r->bad = true;
		return 0;
	}
	for (size_t i = 0; i < bytes; i++)
		v = v << 8 | r->p[r->off + i];
	r->off += bytes;
	return v;
}

#define get8(r)	 ((uint8_t)get_u(r, 1))
#define get16(r) ((uint16_t)get_u(r, 2))
#define get32(r) ((uint32_t)get_u(r, 4))
#define get64(r) get_u(r, 8)

static void get_bytes(struct rd *r, void *dst, size_t n)
{
	if (r->bad || r->len - r->off < n) {
		r->bad = true;
		return;
	}
	memcpy(dst, r->p + r->off, n);
	r->off += n;
}

/* Text of at most max bytes, no NUL, into dst (room for max + 1). */
static size_t get_text(struct rd *r, char *dst, size_t max)
{
	size_t n = get16(r);

	if (r->bad || n > max || r->len - r->off < n || memchr(r->p + r->off, '\0', n)) {
		r->bad = true;
		dst[0] = '\0';
		return 0;
	}
	memcpy(dst, r->p + r->off, n);
	dst[n] = '\0';
	r->off += n;
	return n;
}

/* A boolean byte: 0 or 1 only. */
static bool get_bool(struct rd *r)
{
	uint8_t b = get8(r);
	if (b > 1)
		r->bad = true;
	return b == 1;
}

static int64_t get_i64(struct rd *r)
{
	return (int64_t)get64(r);
}

static void get_child(struct rd *r, struct de_ctl_child *c)
{
	c->pid = get32(r);
	c->started_ms = get_i64(r);
	for (size_t i = 0; i < DE_CTL_REASON_MAX; i++)
		c->restarts[i] = get32(r);
	c->last_exit = (int32_t)get32(r);
	c->last_exit_ms = get_i64(r);
	c->cpu_ms = get64(r);
	c->rss_bytes = get64(r);
	c->restart_in_ms = get_i64(r);
	if (c->started_ms < 0 || c->last_exit < -1 || c->last_exit_ms < 0 || c->restart_in_ms < -1)
		r->bad = true;
}

static int bad(struct de_error *err, const char *what)
{
	return de_error_set(err, DE_ERR_VALIDATION, EBADMSG, "control message: %s", what);
}

static int badn(struct de_error *err, const char *name, const char *what)
{
	return de_error_set(err, DE_ERR_VALIDATION, EBADMSG, "control message %s: %s", name, what);
}

static int badnote(struct de_error *err, const char *what)
{
	return de_error_set(err, DE_ERR_VALIDATION, EBADMSG, "checkpoint note: %s", what);
}

int de_ctl_decode(const uint8_t *buf, size_t len, size_t nfds, enum de_ctl_dir dir,
		  struct de_ctl_msg *out, struct de_error *err)
{
	struct de_ctl_msg m;
	struct rd r;
	unsigned type, version;
	uint32_t plen;
	const char *name;

	if (len < DE_CTL_HEADER)
		return bad(err, "shorter than its header");
	if (len > DE_CTL_MAX_MSG)
		return bad(err, "larger than the largest message");
	r = (struct rd){buf, DE_CTL_HEADER, 0, false};
	type = get16(&r);
	version = get16(&r);
	plen = get32(&r);
	if (plen != len - DE_CTL_HEADER)
		return bad(err, "its length field does not match the packet (truncated?)");
	if (version != DE_CTL_VERSION)
		return bad(err, "another protocol version");
	if (type == 0 || type >= DE_CTL_TYPE_MAX || !table[type].name)
		return bad(err, "unknown type");
	name = table[type].name;
	if (table[type].dir != dir)
		return badn(err, name, "sent the wrong way");
	de_ctl_msg_init(&m, (enum de_ctl_type)type);
	r = (struct rd){buf + DE_CTL_HEADER, plen, 0, false};
	switch (m.type) {
	case DE_CTL_READY:
		m.pid = get32(&r);
		if (m.pid == 0)
			r.bad = true;
		break;
	case DE_CTL_HEARTBEAT:
		m.scan_id = get_i64(&r);
		m.text_len = get_text(&r, m.text, DE_CTL_STATUS_MAX);
		break;
	case DE_CTL_RESTART_PROCMOND: {
		m.generation = get32(&r);
		uint8_t why = get8(&r);
		/* what the worker may give as a reason: what it can see */
		if (why != DE_CTL_REASON_CRASH && why != DE_CTL_REASON_SCAN_TIMEOUT &&
		    why != DE_CTL_REASON_PROTOCOL && why != DE_CTL_REASON_RELOAD)
			r.bad = true;
		m.reason = (enum de_ctl_reason)why;
		break;
	}
	case DE_CTL_RELOAD_DONE:
		m.generation = get32(&r);
		m.ok = get_bool(&r);
		m.text_len = get_text(&r, m.text, DE_CTL_TEXT_MAX);
		break;
	case DE_CTL_KEY_REQUEST:
		break;
	case DE_CTL_SIGN_REQUEST:
		m.id = get32(&r);
		m.text_len = get_text(&r, m.text, DE_CTL_NOTE_BODY_MAX);
		break;
	case DE_CTL_CONFIG:
		m.generation = get32(&r);
		m.text_len = get_text(&r, m.text, DE_CTL_TEXT_MAX);
		m.nfiles = get8(&r);
		if (m.nfiles > DE_CTL_MAX_FDS || (m.text_len && m.nfiles)) {
			r.bad = true;
			m.nfiles = 0;
		}
		for (size_t i = 0; i < m.nfiles && !r.bad; i++)
			if (get_text(&r, m.paths[i], DE_CTL_PATH_MAX) == 0)
				r.bad = true;
		break;
	case DE_CTL_PROCMOND:
		m.generation = get32(&r);
		m.pid = get32(&r);
		m.time_ms = get_i64(&r);
		if (m.pid == 0 || m.time_ms < 0)
			r.bad = true;
		break;
	case DE_CTL_SUPERVISOR: {
		m.sup.pid = get32(&r);
		m.sup.started_ms = get_i64(&r);
		m.sup.rss_bytes = get64(&r);
		m.sup.cpu_ms = get64(&r);
		uint8_t flags = get8(&r);
		if (flags & ~3u)
			r.bad = true;
		m.sup.privileged = flags & 1;
		m.sup.signing = flags & 2;
		get_child(&r, &m.sup.procmond);
		get_child(&r, &m.sup.worker);
		if (m.sup.pid == 0 || m.sup.started_ms < 0)
			r.bad = true;
		break;
	}
	case DE_CTL_KEY_REPLY:
		m.status = (int32_t)get32(&r);
		m.has_key = get_bool(&r);
		get_bytes(&r, m.key, sizeof(m.key));
		if (m.status > 0 || m.status < -4095 || (m.status < 0 && m.has_key))
			r.bad = true;
		break;
	case DE_CTL_SIGN_REPLY:
		m.id = get32(&r);
		m.status = (int32_t)get32(&r);
		get_bytes(&r, m.sig, sizeof(m.sig));
		if (m.status > 0 || m.status < -4095)
			r.bad = true;
		break;
	default:
		r.bad = true;
		break;
	}
	if (r.bad)
		return badn(err, name, "a field is short, malformed or out of range");
	if (r.off != r.len)
		return badn(err, name, "bytes after its last field");
	if (nfds != fds_expected(&m))
		return badn(err, name, "not the number of descriptors it carries");
	*out = m;
	return 0;
}

/* ---- transport --------------------------------------------------------------- */

int de_ctl_send(int fd, const struct de_ctl_msg *m, bool nonblock, struct de_error *err)
{
	uint8_t buf[DE_CTL_MAX_MSG];
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * DE_CTL_MAX_FDS)];
	} c;
	struct iovec iov;
	struct msghdr mh = {0};
	size_t len;
	ssize_t n;
	int rc;

	if ((rc = de_ctl_encode(m, buf, sizeof(buf), &len, err)) < 0)
		return rc;
	iov = (struct iovec){buf, len};
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (m->nfds) {
		memset(&c, 0, sizeof(c));
		mh.msg_control = c.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * m->nfds);
		struct cmsghdr *ch = CMSG_FIRSTHDR(&mh);
		if (!ch)
			return de_error_set(err, DE_ERR_IO, EINVAL,
					    "control channel: no room for "
					    "descriptors");
		ch->cmsg_level = SOL_SOCKET;
		ch->cmsg_type = SCM_RIGHTS;
		ch->cmsg_len = CMSG_LEN(sizeof(int) * m->nfds);
		memcpy(CMSG_DATA(ch), m->fds, sizeof(int) * m->nfds);
	}
	do
		n = sendmsg(fd, &mh, MSG_NOSIGNAL | (nonblock ? MSG_DONTWAIT : 0));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return de_error_set(err, DE_ERR_IO, errno, "control channel: sending %s: %s",
				    de_ctl_type_name(m->type), strerror(errno));
	return 0;
}

int de_ctl_recv(int fd, enum de_ctl_dir dir, struct de_ctl_msg *out, struct de_error *err)
{
	uint8_t buf[DE_CTL_MAX_MSG + 1];
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * DE_CTL_MAX_FDS)];
	} c;
	struct iovec iov = {buf, sizeof(buf)};
	struct msghdr mh = {0};
	int fds[DE_CTL_MAX_FDS];
	size_t nfds = 0;
	bool extra = false;
	ssize_t n;
	int rc;

	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = c.b;
	mh.msg_controllen = sizeof(c.b);
	do
		n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -EAGAIN;
		return de_error_set(err, DE_ERR_IO, errno, "control channel: %s", strerror(errno));
	}
	if (n == 0)
		return de_error_set(err, DE_ERR_IO, EPIPE, "control channel: the peer closed it");
	for (struct cmsghdr *ch = CMSG_FIRSTHDR(&mh); ch; ch = CMSG_NXTHDR(&mh, ch)) {
		if (ch->cmsg_level != SOL_SOCKET || ch->cmsg_type != SCM_RIGHTS) {
			extra = true;
			continue;
		}
		size_t k = (ch->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int d;
			memcpy(&d, CMSG_DATA(ch) + i * sizeof(int), sizeof(int));
			if (nfds < DE_CTL_MAX_FDS) {
				fds[nfds++] = d;
			} else {
				close(d);
				extra = true;
			}
		}
	}
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC) || extra)
		rc = de_error_set(err, DE_ERR_VALIDATION, EBADMSG,
				  "control channel: a message that was truncated or carried more "
				  "than it may");
	else
		rc = de_ctl_decode(buf, (size_t)n, nfds, dir, out, err);
	if (rc < 0) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		return rc;
	}
	for (size_t i = 0; i < nfds; i++)
		out->fds[i] = fds[i];
	out->nfds = nfds;
	return 0;
}

/* ---- checkpoint note bodies -------------------------------------------------- */

int de_ctl_check_note_body(const char *body, size_t len, struct de_ctl_note *out,
			   struct de_error *err)
{
	struct de_ctl_note note = {0};
	const char *line[3], *end = body + len, *p = body;
	size_t n[3];
	size_t rawlen = 0;

	if (len > DE_CTL_NOTE_BODY_MAX)
		return badnote(err, "longer than a checkpoint body");
	for (int i = 0; i < 3; i++) {
		const char *nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
		if (!nl)
			return badnote(err, "not three lines each ending in a newline");
		line[i] = p;
		n[i] = (size_t)(nl - p);
		p = nl + 1;
	}
	if (p != end)
		return badnote(err, "more than the three body lines");
	/* origin: printable ASCII, no edge spaces */
	if (n[0] == 0 || n[0] > DE_CTL_ORIGIN_MAX || line[0][0] == ' ' || line[0][n[0] - 1] == ' ')
		return badnote(err, "the origin line is empty, long or padded");
	for (size_t i = 0; i < n[0]; i++)
		if (line[0][i] < 0x20 || line[0][i] > 0x7e)
			return badnote(err, "the origin line is not printable ASCII");
	memcpy(note.origin, line[0], n[0]);
	/* size: canonical decimal that fits in 64 bits */
	if (n[1] == 0 || n[1] > 20 || (n[1] > 1 && line[1][0] == '0'))
		return badnote(err, "the size is not canonical decimal");
	for (size_t i = 0; i < n[1]; i++) {
		unsigned d = (unsigned)(line[1][i] - '0');
		if (d > 9 || note.size > (UINT64_MAX - d) / 10)
			return badnote(err, "the size is not a decimal number below 2^64");
		note.size = note.size * 10 + d;
	}
	/* root: the canonical base64 of exactly 32 bytes (the decoder is strict) */
	if (n[2] != DE_BASE64_LEN(32) ||
	    de_base64_decode(line[2], n[2], note.root, sizeof(note.root), &rawlen) < 0 ||
	    rawlen != 32)
		return badnote(err, "the root is not the canonical base64 of 32 bytes");
	if (out)
		*out = note;
	return 0;
}
