/*
 * sink_syslog.c — alerts to syslog.
 *
 * transport: local  the host's syslog socket (/dev/log, or `socket`), in the
 *                   format syslog(3) writes ("<PRI>Mmm dd hh:mm:ss
 *                   daemoneye[PID]: MSG").  We write the socket ourselves
 *                   rather than call syslog(3) because syslog(3) drops a
 *                   message without telling anyone when the socket is
 *                   missing, and a delivery must know whether it happened.
 *            udp    RFC 5424 over UDP (RFC 5426), one datagram per alert.
 *            tcp    RFC 5424 over TCP with octet counting (RFC 6587:
 *                   "LEN SP MSG"), so a record can never be split or merged
 *                   by what it holds.
 *            tls    the same over TLS (RFC 5425) with OpenSSL; the server's
 *                   certificate is verified against ca_file (or the system's
 *                   store) and the host name or IP address, unless
 *                   tls_verify is false.  A verification failure is
 *                   permanent.
 *
 * The RFC 5424 header carries APP-NAME daemoneye, PROCID the agent's pid,
 * MSGID "alert" (or the alert's kind) and structured data
 * [daemoneye@32473 alert_id="..." rule_id="..." severity="..." kind="..."]:
 * the alert id is the idempotency key a receiver can deduplicate on.
 * (32473 is the enterprise number RFC 5612 reserves for documentation;
 * daemoneye has none of its own.)  MSG is the alert in the sink's format.
 *
 * A stream connection is kept between deliveries; before each send it is
 * checked for a close by the peer (receivers never send), so a message is
 * not written into a connection the receiver has already given up.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "daemoneye/clock.h"
#include "daemoneye/sink.h"
#include "daemoneye/text.h"

enum transport { T_LOCAL, T_UDP, T_TCP, T_TLS };

struct syslog_sink {
	enum transport t;
	char *host; /* udp/tcp/tls */
	char port[8];
	char *socket_path; /* local */
	int facility;
	char *app_name;
	bool tls_verify;
	char *ca_file;
	char *server_name; /* the name the certificate must carry (default: host) */
	uint64_t max_message;
	int fd;	    /* -1: not connected */
	bool dgram; /* fd is a datagram socket */
	SSL_CTX *ctx;
	SSL *ssl;
	struct de_buf msg; /* reused */
	char hostname[256];
};

static const char *const keys[] = {"transport",	      "host",	     "port",	   "socket",
				   "facility",	      "app_name",    "tls_verify", "ca_file",
				   "tls_server_name", "max_message", NULL};

static const char *const facilities[] = {
	"kern",	  "user",   "mail",	"daemon", "auth",   "syslog",	"lpr",	   "news",
	"uucp",	  "cron",   "authpriv", "ftp",	  "ntp",    "security", "console", "solaris-cron",
	"local0", "local1", "local2",	"local3", "local4", "local5",	"local6",  "local7",
};

/* ---- formatting (exposed for tests) ------------------------------------------------ */

int de_syslog_severity(enum de_severity s)
{
	static const int v[DE_SEV_MAX] = {5, 4, 3, 2};
	return (int)s >= 0 && s < DE_SEV_MAX ? v[s] : 5;
}

int de_syslog_sd_escape(struct de_buf *out, const char *s, size_t n)
{
	for (size_t i = 0; s && i < n;) {
		unsigned char c = (unsigned char)s[i];
		size_t l = de_utf8_seq_len(s + i, n - i);
		int rc;

		if (l == 0) {
			rc = de_buf_puts(out, "\xef\xbf\xbd");
			i++;
		} else if (l > 1) {
			rc = de_buf_append(out, s + i, l);
			i += l;
		} else {
			if (c == '"' || c == '\\' || c == ']')
				rc = de_buf_putc(out, '\\') < 0 ? -ENOMEM
								: de_buf_putc(out, (char)c);
			else if (c < 0x20 || c == 0x7f)
				rc = de_buf_putc(out, ' ');
			else
				rc = de_buf_putc(out, (char)c);
			i++;
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* A header field: PRINTUSASCII (33..126) of at most max bytes, "-" when empty. */
static int header_field(struct de_buf *out, const char *s, size_t max)
{
	size_t n = 0;
	int rc;

	for (; s && s[n] && n < max; n++)
		if ((rc = de_buf_putc(out, s[n] > 32 && s[n] < 127 ? s[n] : '_')) < 0)
			return rc;
	return n ? 0 : de_buf_putc(out, '-');
}

static int sd_param(struct de_buf *out, const char *name, const char *v)
{
	int rc;

	if (!v)
		return 0;
	if ((rc = de_buf_printf(out, " %s=\"", name)) < 0 ||
	    (rc = de_syslog_sd_escape(out, v, strlen(v))) < 0)
		return rc;
	return de_buf_putc(out, '"');
}

int de_syslog_5424(struct de_buf *out, const struct de_syslog_hdr *h, const char *msg, size_t len)
{
	char ts[40], base[24];
	time_t t = (time_t)(h->time_ms / 1000);
	struct tm tm;
	int rc;

	gmtime_r(&t, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts, sizeof(ts), "%s.%03dZ", base, (int)(h->time_ms % 1000));
	if ((rc = de_buf_printf(out, "<%d>1 %s ", h->facility * 8 + h->severity, ts)) < 0 ||
	    (rc = header_field(out, h->hostname, 255)) < 0 || (rc = de_buf_putc(out, ' ')) < 0 ||
	    (rc = header_field(out, h->app_name, 48)) < 0 ||
	    (rc = de_buf_printf(out, " %ld ", h->procid)) < 0 ||
	    (rc = header_field(out, h->msgid, 32)) < 0 ||
	    (rc = de_buf_puts(out, " [daemoneye@32473")) < 0 ||
	    (rc = sd_param(out, "alert_id", h->alert_id)) < 0 ||
	    (rc = sd_param(out, "rule_id", h->rule_id)) < 0 ||
	    (rc = sd_param(out, "severity", h->severity_name)) < 0 ||
	    (rc = sd_param(out, "kind", h->kind)) < 0 || (rc = de_buf_puts(out, "] ")) < 0)
		return rc;
	return de_buf_append(out, msg, len);
}

/* The local socket's format, as syslog(3) writes it. */
static int local_format(struct de_buf *out, int pri, const char *app, const char *msg, size_t len)
{
	char ts[32];
	time_t now = time(NULL);
	struct tm tm;
	int rc;

	localtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%b %e %H:%M:%S", &tm);
	if ((rc = de_buf_printf(out, "<%d>%s ", pri, ts)) < 0 ||
	    (rc = header_field(out, app, 48)) < 0 ||
	    (rc = de_buf_printf(out, "[%ld]: ", (long)getpid())) < 0)
		return rc;
	return de_buf_append(out, msg, len);
}

/* ---- configuration ----------------------------------------------------------------- */

static void sy_free(struct syslog_sink *s)
{
	if (!s)
		return;
	if (s->ssl)
		SSL_free(s->ssl);
	if (s->fd >= 0)
		close(s->fd);
	SSL_CTX_free(s->ctx);
	free(s->host);
	free(s->socket_path);
	free(s->app_name);
	free(s->ca_file);
	free(s->server_name);
	de_buf_free(&s->msg);
	free(s);
}

static int sy_configure(struct de_sink_conf *c, void **state)
{
	struct syslog_sink *s = calloc(1, sizeof(*s));
	const char *t, *host, *sock, *fac, *app, *ca, *sn;
	uint64_t port;
	int rc;

	if (!s)
		return de_error_set(c->err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
	s->fd = -1;
	s->msg = (struct de_buf)DE_BUF_INIT(16u << 20);
	if ((rc = de_sink_conf_enum(c, "transport", "local udp tcp tls", "local", &t)) < 0)
		goto fail;
	s->t = !strcmp(t, "udp")   ? T_UDP
	       : !strcmp(t, "tcp") ? T_TCP
	       : !strcmp(t, "tls") ? T_TLS
				   : T_LOCAL;
	if ((rc = de_sink_conf_str(c, "host", s->t != T_LOCAL, &host)) < 0 ||
	    (rc = de_sink_conf_u64(c, "port", 1, 65535, s->t == T_TLS ? 6514 : 514, &port)) < 0 ||
	    (rc = de_sink_conf_str(c, "socket", false, &sock)) < 0 ||
	    (rc = de_sink_conf_str(c, "facility", false, &fac)) < 0 ||
	    (rc = de_sink_conf_str(c, "app_name", false, &app)) < 0 ||
	    (rc = de_sink_conf_bool(c, "tls_verify", true, &s->tls_verify)) < 0 ||
	    (rc = de_sink_conf_str(c, "ca_file", false, &ca)) < 0 ||
	    (rc = de_sink_conf_str(c, "tls_server_name", false, &sn)) < 0 ||
	    (rc = de_sink_conf_u64(c, "max_message", 480, 1u << 20, 65000, &s->max_message)) < 0)
		goto fail;
	if (s->t == T_LOCAL && host) {
		rc = de_sink_conf_fail(c, "host",
				       "the local transport takes no host (set "
				       "transport: udp, tcp or tls)");
		goto fail;
	}
	if (s->t != T_LOCAL && sock) {
		rc = de_sink_conf_fail(c, "socket", "only the local transport uses a socket");
		goto fail;
	}
	if (s->t != T_TLS && (ca || sn || !s->tls_verify)) {
		rc = de_sink_conf_fail(c,
				       ca   ? "ca_file"
				       : sn ? "tls_server_name"
					    : "tls_verify",
				       "only the tls transport uses TLS settings");
		goto fail;
	}
	s->facility = 16; /* local0 */
	if (fac) {
		s->facility = -1;
		for (int i = 0; i < 24; i++)
			if (!strcmp(fac, facilities[i]))
				s->facility = i;
		if (s->facility < 0) {
			rc = de_sink_conf_fail(c, "facility",
					       "'%s' is not a syslog facility (auth, authpriv, "
					       "daemon, local0..local7, user, ...)",
					       fac);
			goto fail;
		}
	}
	if (ca && (rc = de_sink_conf_readable(c, "ca_file", ca)) < 0)
		goto fail;
	snprintf(s->port, sizeof(s->port), "%llu", (unsigned long long)port);
	if ((host && !(s->host = strdup(host))) ||
	    !(s->socket_path = strdup(sock ? sock : "/dev/log")) ||
	    !(s->app_name = strdup(app ? app : "daemoneye")) ||
	    (ca && !(s->ca_file = strdup(ca))) || (sn && !(s->server_name = strdup(sn)))) {
		rc = de_error_set(c->err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
		goto fail;
	}
	if (s->t == T_LOCAL &&
	    strlen(s->socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		rc = de_sink_conf_fail(c, "socket", "path too long for a unix socket");
		goto fail;
	}
	*state = s;
	return 0;
fail:
	sy_free(s);
	return rc;
}

static int sy_open(void *state, struct de_error *err)
{
	struct syslog_sink *s = state;

	snprintf(s->hostname, sizeof(s->hostname), "%s", de_alertfmt_hostname());
	if (s->t != T_TLS)
		return 0;
	if (!(s->ctx = SSL_CTX_new(TLS_client_method())))
		return de_error_set(err, DE_ERR_ALERTING, ENOMEM, "cannot create a TLS context");
	SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(s->ctx, s->tls_verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	if (s->ca_file ? SSL_CTX_load_verify_locations(s->ctx, s->ca_file, NULL) != 1
		       : SSL_CTX_set_default_verify_paths(s->ctx) != 1) {
		unsigned long e = ERR_get_error();
		char b[256];
		ERR_error_string_n(e, b, sizeof(b));
		return de_error_set(err, DE_ERR_CONFIGURATION, EINVAL,
				    "cannot load the CA certificates %s: %s",
				    s->ca_file ? s->ca_file : "(system default)", b);
	}
	return 0;
}

/* ---- connections ------------------------------------------------------------------- */

static void disconnect(struct syslog_sink *s)
{
	if (s->ssl) {
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
}

static void set_timeouts(int fd, uint64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* A connect bounded by ms (non-blocking connect + poll).  0 or -errno. */
static int connect_timed(int fd, const struct sockaddr *sa, socklen_t len, uint64_t ms)
{
	int fl = fcntl(fd, F_GETFL), e = 0;
	socklen_t el = sizeof(e);
	struct pollfd p = {fd, POLLOUT, 0};

	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	if (connect(fd, sa, len) < 0) {
		if (errno != EINPROGRESS)
			return -errno;
		int r = poll(&p, 1, (int)(ms > 600000 ? 600000 : ms));
		if (r == 0)
			return -ETIMEDOUT;
		if (r < 0)
			return -errno;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
			return -errno;
		if (e)
			return -e;
	}
	fcntl(fd, F_SETFL, fl);
	return 0;
}

static bool is_ip(const char *h)
{
	unsigned char b[16];
	return inet_pton(AF_INET, h, b) == 1 || inet_pton(AF_INET6, h, b) == 1;
}

static void tls_reason(struct syslog_sink *s, char *buf, size_t n)
{
	long v = s->ssl ? SSL_get_verify_result(s->ssl) : X509_V_OK;
	unsigned long e = ERR_peek_last_error();

	if (v != X509_V_OK)
		snprintf(buf, n, "certificate verification failed: %s",
			 X509_verify_cert_error_string(v));
	else if (e)
		ERR_error_string_n(e, buf, n);
	else
		snprintf(buf, n, "handshake failed");
	ERR_clear_error();
}

/* The local syslog socket: a datagram socket, else a stream one (as syslog(3)). */
static int local_connect(const char *path, int *out, bool *dgram)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	static const int types[2] = {SOCK_DGRAM, SOCK_STREAM};
	int e = 0;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	for (int i = 0; i < 2; i++) {
		int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			*out = fd;
			*dgram = types[i] == SOCK_DGRAM;
			return 0;
		}
		e = errno;
		close(fd);
		if (e != EPROTOTYPE)
			break;
	}
	return -e;
}

/* Connect (if not connected, or the peer closed).  false with r filled on failure. */
static bool ensure_connected(struct syslog_sink *s, const struct de_sink_msg *m,
			     struct de_sink_result *r)
{
	struct addrinfo hints = {0}, *ai = NULL;
	int rc, fd = -1;

	if (s->fd >= 0 && s->t != T_UDP && s->t != T_LOCAL) {
		struct pollfd p = {s->fd, POLLIN, 0};
		char c;
		if (poll(&p, 1, 0) == 0 ||
		    (!(p.revents & (POLLHUP | POLLERR)) && s->ssl && SSL_pending(s->ssl) > 0))
			return true;
		/* readable: the receiver closed (or sent something we do not expect) */
		if (!(p.revents & (POLLHUP | POLLERR)) &&
		    recv(s->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0)
			return true;
		disconnect(s);
	}
	if (s->fd >= 0)
		return true;
	if (s->t == T_LOCAL) {
		if ((rc = local_connect(s->socket_path, &fd, &s->dgram)) < 0) {
			de_sink_fail(r, DE_SINK_TRANSIENT, "cannot connect to %s: %s",
				     s->socket_path, strerror(-rc));
			return false;
		}
		set_timeouts(fd, m->timeout_ms);
		s->fd = fd;
		return true;
	}
	s->dgram = s->t == T_UDP;
	hints.ai_socktype = s->t == T_UDP ? SOCK_DGRAM : SOCK_STREAM;
	if ((rc = getaddrinfo(s->host, s->port, &hints, &ai)) != 0) {
		de_sink_fail(r, DE_SINK_TRANSIENT, "cannot resolve %s: %s", s->host,
			     gai_strerror(rc));
		return false;
	}
	rc = -ECONNREFUSED;
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0) {
			rc = -errno;
			continue;
		}
		if ((rc = connect_timed(fd, a->ai_addr, a->ai_addrlen, m->timeout_ms)) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0) {
		de_sink_fail(r, DE_SINK_TRANSIENT, "cannot connect to %s port %s: %s", s->host,
			     s->port, strerror(-rc));
		return false;
	}
	set_timeouts(fd, m->timeout_ms);
	s->fd = fd;
	if (s->t != T_TLS)
		return true;
	const char *name = s->server_name ? s->server_name : s->host;
	if (!(s->ssl = SSL_new(s->ctx)) || SSL_set_fd(s->ssl, fd) != 1) {
		de_sink_fail(r, DE_SINK_TRANSIENT, "cannot start TLS: out of memory");
		disconnect(s);
		return false;
	}
	if (s->tls_verify) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(s->ssl);
		if (is_ip(name))
			X509_VERIFY_PARAM_set1_ip_asc(vp, name);
		else
			SSL_set1_host(s->ssl, name);
	}
	if (!is_ip(name))
		SSL_set_tlsext_host_name(s->ssl, name);
	if (SSL_connect(s->ssl) != 1) {
		char why[256];
		long v = SSL_get_verify_result(s->ssl);
		tls_reason(s, why, sizeof(why));
		de_sink_fail(r, v != X509_V_OK ? DE_SINK_PERMANENT : DE_SINK_TRANSIENT,
			     "TLS with %s port %s: %s", s->host, s->port, why);
		disconnect(s);
		return false;
	}
	return true;
}

/* Send all of buf on the connection.  0 or -errno. */
static int send_all(struct syslog_sink *s, const char *buf, size_t n)
{
	size_t off = 0;

	if (s->dgram)
		return send(s->fd, buf, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -errno;
	while (off < n) {
		ssize_t w;
		if (s->ssl) {
			int k = SSL_write(s->ssl, buf + off,
					  (int)(n - off > (1u << 30) ? (1u << 30) : n - off));
			if (k <= 0) {
				ERR_clear_error();
				return errno ? -errno : -EIO;
			}
			w = k;
		} else {
			w = send(s->fd, buf + off, n - off, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		off += (size_t)w;
	}
	return 0;
}

static void sy_deliver(void *state, const struct de_sink_msg *m, struct de_sink_result *r)
{
	struct syslog_sink *s = state;
	const struct de_alert *a = m->alert;
	int pri = s->facility * 8 + de_syslog_severity(a->severity);
	char len[24];
	int rc;

	de_buf_reset(&s->msg);
	if (s->t == T_LOCAL) {
		rc = local_format(&s->msg, pri, s->app_name, m->payload, m->len);
	} else {
		struct de_syslog_hdr h = {
			.facility = s->facility,
			.severity = de_syslog_severity(a->severity),
			.time_ms = a->alert_time,
			.hostname = s->hostname,
			.app_name = s->app_name,
			.procid = (long)getpid(),
			.msgid = de_alert_kind(a),
			.alert_id = m->alert_id,
			.rule_id = a->rule_id,
			.severity_name = de_severity_name(a->severity),
			.kind = de_alert_kind(a),
		};
		rc = de_syslog_5424(&s->msg, &h, m->payload, m->len);
	}
	if (rc < 0 || (s->t == T_UDP && s->msg.len > s->max_message)) {
		de_sink_fail(r, DE_SINK_PERMANENT,
			     "message of %zu bytes is larger than max_message (%llu)%s", s->msg.len,
			     (unsigned long long)s->max_message,
			     s->t == T_UDP ? "; use the tcp transport for large alerts" : "");
		return;
	}
	if (!ensure_connected(s, m, r))
		return;
	if (s->t == T_TCP || s->t == T_TLS) {
		snprintf(len, sizeof(len), "%zu ", s->msg.len);
		/* one send: prefix the count in front of the message */
		struct de_buf framed = DE_BUF_INIT(s->msg.max + 32);
		if (de_buf_puts(&framed, len) < 0 ||
		    de_buf_append(&framed, s->msg.p, s->msg.len) < 0) {
			de_buf_free(&framed);
			de_sink_fail(r, DE_SINK_TRANSIENT, "out of memory");
			return;
		}
		rc = send_all(s, framed.p, framed.len);
		de_buf_free(&framed);
	} else {
		/* a stream to the local socket ends each message with a NUL, as syslog(3) */
		rc = send_all(s, s->msg.p, s->msg.len + (s->t == T_LOCAL && !s->dgram));
	}
	if (rc < 0) {
		disconnect(s);
		de_sink_fail(r, rc == -EMSGSIZE ? DE_SINK_PERMANENT : DE_SINK_TRANSIENT,
			     "cannot send to %s%s%s: %s",
			     s->t == T_LOCAL ? s->socket_path : s->host,
			     s->t == T_LOCAL ? "" : " port ", s->t == T_LOCAL ? "" : s->port,
			     strerror(-rc));
		return;
	}
	r->outcome = DE_SINK_OK;
}

static bool sy_health(void *state, char *buf, size_t n)
{
	struct syslog_sink *s = state;
	static const char *const tn[] = {"local", "udp", "tcp", "tls"};

	if (s->t == T_LOCAL)
		snprintf(buf, n, "local syslog socket %s%s", s->socket_path,
			 s->fd >= 0 ? " (connected)" : "");
	else
		snprintf(buf, n, "syslog over %s to %s port %s%s", tn[s->t], s->host, s->port,
			 s->fd >= 0 ? " (connected)" : "");
	return true;
}

static void sy_close(void *state)
{
	sy_free(state);
}

const struct de_sink_ops de_sink_syslog_ops = {
	.type = "syslog",
	.keys = keys,
	.default_format = DE_FMT_CEF,
	.configure = sy_configure,
	.open = sy_open,
	.deliver = sy_deliver,
	.health = sy_health,
	.reopen = NULL,
	.close = sy_close,
};
