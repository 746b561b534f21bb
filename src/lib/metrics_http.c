/*
 * metrics_http.c — the opt-in loopback HTTP listener for the metrics (see
 * metrics.h): libmicrohttpd with its own polling thread, bound to a
 * loopback address only, serving whatever text was last published.
 *
 * The listener never touches the registry (not thread-safe): the owner
 * renders and publishes a copy, which the handler copies again into each
 * response under the lock.  Connections are few and short (a Prometheus
 * scrape), so limits are small: 8 connections, 10 s idle timeout.
 */
#include "daemoneye/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct de_metrics_server {
	struct MHD_Daemon *d;
	pthread_mutex_t lock;
	char *text; /* owned; NULL until the first publish */
	size_t len;
	uint16_t port;
};

int de_metrics_listen_parse(const char *listen, void *sa, unsigned *salen, struct de_error *err)
{
	struct sockaddr_storage ss;
	char host[64];
	const char *colon;
	char *end;
	unsigned long port;
	size_t hl;

	memset(&ss, 0, sizeof(ss));
	colon = listen ? strrchr(listen, ':') : NULL;
	if (!colon || colon == listen || (hl = (size_t)(colon - listen)) >= sizeof(host))
		goto bad;
	memcpy(host, listen, hl);
	host[hl] = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || port > 65535)
		goto bad;
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	if (host[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		if (hl < 3 || host[hl - 1] != ']')
			goto bad;
		host[hl - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1 ||
		    !IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
			goto notloop;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*salen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			goto notloop;
		if ((ntohl(s4->sin_addr.s_addr) >> 24) != 127)
			goto notloop;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*salen = sizeof(*s4);
	}
	memcpy(sa, &ss, sizeof(ss));
	return 0;
bad:
	return de_error_set(err, DE_ERR_CONFIGURATION, EINVAL,
			    "metrics.listen: '%s' is not HOST:PORT (e.g. 127.0.0.1:9469)",
			    listen ? listen : "");
notloop:
	return de_error_set(err, DE_ERR_CONFIGURATION, EINVAL,
			    "metrics.listen: '%s' is not a loopback address; the listener only "
			    "binds 127.0.0.0/8, [::1] or localhost (export the textfile, or put "
			    "a proxy in front, to expose the metrics further)",
			    listen);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body,
			     size_t len, const char *type)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body,
								 MHD_RESPMEM_MUST_COPY);
	enum MHD_Result rc;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	struct de_metrics_server *s = cls;
	enum MHD_Result rc;

	(void)version;
	(void)upload;
	(void)con_cls;
	if (*upload_size) /* no body is expected: drop it */
		*upload_size = 0;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", 19,
			     "text/plain; charset=utf-8");
	if (strcmp(url, "/metrics") != 0)
		return reply(c, MHD_HTTP_NOT_FOUND, "not found: try /metrics\n", 24,
			     "text/plain; charset=utf-8");
	pthread_mutex_lock(&s->lock);
	if (s->text)
		rc = reply(c, MHD_HTTP_OK, s->text, s->len,
			   "text/plain; version=0.0.4; charset=utf-8");
	else
		rc = reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, "no metrics yet\n", 15,
			   "text/plain; charset=utf-8");
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int de_metrics_server_start(const char *listen, struct de_metrics_server **out,
			    struct de_error *err)
{
	struct sockaddr_storage ss;
	struct de_metrics_server *s;
	const union MHD_DaemonInfo *info;
	unsigned salen;
	int rc;

	if ((rc = de_metrics_listen_parse(listen, &ss, &salen, err)) < 0)
		return rc;
	if (!(s = calloc(1, sizeof(*s))))
		return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	pthread_mutex_init(&s->lock, NULL);
	s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
					(ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
				0, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR,
				(struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, 8u,
				MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	if (!s->d) {
		pthread_mutex_destroy(&s->lock);
		free(s);
		return de_error_set(err, DE_ERR_IO, EADDRINUSE,
				    "cannot listen on %s for metrics (in use, or not allowed)",
				    listen);
	}
	info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : 0;
	*out = s;
	return 0;
}

uint16_t de_metrics_server_port(const struct de_metrics_server *s)
{
	return s->port;
}

int de_metrics_server_publish(struct de_metrics_server *s, const char *text, size_t len)
{
	char *copy = malloc(len + 1);

	if (!copy)
		return -ENOMEM;
	memcpy(copy, text, len);
	copy[len] = '\0';
	pthread_mutex_lock(&s->lock);
	free(s->text);
	s->text = copy;
	s->len = len;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

void de_metrics_server_stop(struct de_metrics_server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->d);
	pthread_mutex_destroy(&s->lock);
	free(s->text);
	free(s);
}
