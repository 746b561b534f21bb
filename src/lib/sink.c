/*
 * sink.c — what every sink shares (see sink.h): the table of sink types,
 * reading a sink's configuration keys with errors that name the sink, the
 * key and where it was written, ${ENV} expansion for secrets, wiping
 * secrets, and the libcurl endpoint the webhook and email sinks share
 * (configure, open, one transfer with the common options, free).
 */
#include "daemoneye/sink.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemoneye/buf.h"

#include <curl/curl.h>
#include <pthread.h>

static const struct de_sink_ops *const all_ops[] = {
	&de_sink_stdout_ops,  &de_sink_file_ops,  &de_sink_syslog_ops,
	&de_sink_webhook_ops, &de_sink_email_ops, &de_sink_nats_ops,
};

const struct de_sink_ops *de_sink_ops_find(const char *type)
{
	for (size_t i = 0; type && i < sizeof(all_ops) / sizeof(all_ops[0]); i++)
		if (strcmp(all_ops[i]->type, type) == 0)
			return all_ops[i];
	return NULL;
}

/* libcurl's progress callback: a nonzero return aborts the transfer. */
static int curl_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	const atomic_bool *stop = arg;
	(void)a;
	(void)b;
	(void)c;
	(void)d;
	return stop && atomic_load(stop) ? 1 : 0;
}

int de_sink_curl_configure(struct de_sink_conf *c, const char *url_key, const char *const *schemes,
			   const char *example, struct de_sink_curl *k)
{
	const char *url = NULL, *ca = NULL;
	int rc;

	if ((rc = de_sink_conf_str(c, url_key, true, &url)) < 0 ||
	    (rc = de_sink_conf_bool(c, "tls_verify", true, &k->tls_verify)) < 0 ||
	    (rc = de_sink_conf_str(c, "ca_file", false, &ca)) < 0)
		return rc;
	if (!url) /* required: de_sink_conf_str said so already */
		return de_sink_conf_fail(c, url_key, "missing");
	if ((rc = de_sink_conf_expand(c, url_key, url, &k->url)) < 0 ||
	    (rc = de_sink_conf_url(c, url_key, k->url, schemes, example, &k->display)) < 0)
		return rc;
	if (ca && (rc = de_sink_conf_readable(c, "ca_file", ca)) < 0)
		return rc;
	if (ca && !(k->ca_file = strdup(ca)))
		return de_error_set(c->err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
	return 0;
}

/*
 * libcurl's process-wide setup, once, when the first webhook or email sink
 * opens (a reload may add one while the alert workers run: this libcurl's
 * global init is thread-safe, and the once makes it one call).  Not at
 * start: with neither sink configured the worker never starts libcurl's TLS
 * and name-resolution machinery, 2-3 MB of its resident memory.
 */
static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int de_sink_curl_open(struct de_sink_curl *k, struct de_error *err)
{
	pthread_once(&global_once, global_init);
	if (!k->curl && !(k->curl = curl_easy_init()))
		return de_error_set(err, DE_ERR_ALERTING, ENOMEM, "cannot start libcurl");
	return 0;
}

void *de_sink_curl_begin(struct de_sink_curl *k)
{
	curl_easy_reset(k->curl);
	curl_easy_setopt(k->curl, CURLOPT_URL, k->url);
	return k->curl;
}

int de_sink_curl_perform(struct de_sink_curl *k, const struct de_sink_msg *m, long *code,
			 char *reason, size_t n)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	CURL *c = k->curl;
	CURLcode rc;

	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)m->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(m->timeout_ms < 10000 ? m->timeout_ms : 10000));
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, k->tls_verify ? 1L : 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, k->tls_verify ? 2L : 0L);
	if (k->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, k->ca_file);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, curl_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)m->stop);
	rc = curl_easy_perform(c);
	*code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, code);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL); /* errbuf is ours */
	if (rc != CURLE_OK)
		snprintf(reason, n, "%s",
			 rc == CURLE_ABORTED_BY_CALLBACK ? "stopped"
			 : errbuf[0]			 ? errbuf
							 : curl_easy_strerror(rc));
	else if (n)
		reason[0] = '\0';
	return (int)rc;
}

void de_sink_curl_free(struct de_sink_curl *k)
{
	if (k->curl)
		curl_easy_cleanup(k->curl);
	de_secret_free(k->url);
	free(k->display);
	free(k->ca_file);
	memset(k, 0, sizeof(*k));
}

bool de_sink_curl_permanent(int code)
{
	CURLcode c = (CURLcode)code;
	return c == CURLE_PEER_FAILED_VERIFICATION || c == CURLE_SSL_CACERT_BADFILE ||
	       c == CURLE_SSL_CERTPROBLEM || c == CURLE_SSL_ISSUER_ERROR ||
	       c == CURLE_SSL_PINNEDPUBKEYNOTMATCH || c == CURLE_UNSUPPORTED_PROTOCOL ||
	       c == CURLE_URL_MALFORMAT || c == CURLE_LOGIN_DENIED || c == CURLE_USE_SSL_FAILED;
}

const char *de_sink_types(void)
{
	return "stdout, file, syslog, webhook, email, nats";
}

const char *de_sink_outcome_name(enum de_sink_outcome o)
{
	static const char *const n[DE_SINK_OUTCOME_MAX] = {"delivered", "transient", "permanent"};
	return (int)o >= 0 && o < DE_SINK_OUTCOME_MAX ? n[o] : "?";
}

void de_sink_fail(struct de_sink_result *r, enum de_sink_outcome o, const char *fmt, ...)
{
	va_list ap;

	r->outcome = o;
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
}

void de_secret_free(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

/* ---- configuration --------------------------------------------------------------- */

const char *de_sink_conf_where(const struct de_sink_conf *c, const char *key, char *buf, size_t n)
{
	if (key)
		snprintf(buf, n, "%s.%s", c->path, key);
	else
		snprintf(buf, n, "%s", c->path);
	while (c->origins && *buf) {
		const char *o = json_string_value(json_object_get(c->origins, buf));
		char *cut = strrchr(buf, '['), *dot = strrchr(buf, '.');
		if (o)
			return o;
		if (dot && (!cut || dot > cut))
			cut = dot;
		if (!cut)
			break;
		*cut = '\0';
	}
	return c->fallback ? c->fallback : "configuration";
}

int de_sink_conf_fail(struct de_sink_conf *c, const char *key, const char *fmt, ...)
{
	char msg[DE_ERROR_MSG_MAX / 2], where[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return de_error_set(c->err, DE_ERR_CONFIGURATION, EINVAL, "%s: sink '%s' (%s): %s%s%s",
			    de_sink_conf_where(c, key, where, sizeof(where)), c->name, c->path,
			    key ? key : "", key ? ": " : "", msg);
}

int de_sink_conf_str(struct de_sink_conf *c, const char *key, bool required, const char **out)
{
	const json_t *v = json_object_get(c->conf, key);

	if (!v || json_is_null(v)) {
		if (required)
			return de_sink_conf_fail(
				c, key, "missing (a %s sink needs it)",
				json_string_value(json_object_get(c->conf, "type")));
		*out = NULL;
		return 0;
	}
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    strlen(json_string_value(v)) != json_string_length(v) || json_string_length(v) > 8192)
		return de_sink_conf_fail(c, key, "must be a non-empty string");
	*out = json_string_value(v);
	return 0;
}

int de_sink_conf_u64(struct de_sink_conf *c, const char *key, uint64_t min, uint64_t max,
		     uint64_t def, uint64_t *out)
{
	const json_t *v = json_object_get(c->conf, key);

	if (!v || json_is_null(v)) {
		*out = def;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) < min || (uint64_t)json_integer_value(v) > max)
		return de_sink_conf_fail(c, key, "must be an integer from %llu to %llu",
					 (unsigned long long)min, (unsigned long long)max);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

int de_sink_conf_bool(struct de_sink_conf *c, const char *key, bool def, bool *out)
{
	const json_t *v = json_object_get(c->conf, key);

	if (!v || json_is_null(v)) {
		*out = def;
		return 0;
	}
	if (!json_is_boolean(v))
		return de_sink_conf_fail(c, key, "must be true or false");
	*out = json_is_true(v);
	return 0;
}

int de_sink_conf_enum(struct de_sink_conf *c, const char *key, const char *choices, const char *def,
		      const char **out)
{
	const char *s = NULL, *p;
	int rc = de_sink_conf_str(c, key, false, &s);

	if (rc < 0)
		return rc;
	if (!s) {
		*out = def;
		return 0;
	}
	for (p = choices; *p;) {
		size_t l = strcspn(p, " ");
		if (strlen(s) == l && strncmp(s, p, l) == 0) {
			*out = s;
			return 0;
		}
		p += l;
		while (*p == ' ')
			p++;
	}
	return de_sink_conf_fail(c, key, "'%s' is not one of: %s", s, choices);
}

int de_sink_conf_expand(struct de_sink_conf *c, const char *key, const char *s, char **out)
{
	struct de_buf b = DE_BUF_INIT((size_t)64 * 1024);
	int rc = 0;

	for (const char *p = s; *p && rc == 0;) {
		if (p[0] == '$' && p[1] == '{') {
			const char *end = strchr(p + 2, '}');
			char name[128];
			size_t l = end ? (size_t)(end - p - 2) : 0;
			bool ok = end && l > 0 && l < sizeof(name);
			for (size_t i = 0; ok && i < l; i++)
				ok = isalnum((unsigned char)p[2 + i]) || p[2 + i] == '_';
			if (!ok) {
				rc = de_sink_conf_fail(c, key,
						       "'${' must start a variable reference "
						       "${NAME} (letters, digits, _)");
				break;
			}
			memcpy(name, p + 2, l);
			name[l] = '\0';
			const char *v = getenv(name);
			if (!v) {
				rc = de_sink_conf_fail(c, key, "environment variable %s is not set",
						       name);
				break;
			}
			rc = de_buf_puts(&b, v);
			p = end + 1;
		} else {
			rc = de_buf_putc(&b, *p++);
		}
		if (rc == -E2BIG || rc == -ENOMEM) {
			rc = de_sink_conf_fail(c, key, "value too long once expanded");
			break;
		}
	}
	if (rc < 0) {
		if (b.p)
			explicit_bzero(b.p, b.len);
		de_buf_free(&b);
		return rc;
	}
	if (!(*out = de_buf_steal(&b)))
		return de_error_set(c->err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
	return 0;
}

int de_sink_conf_url(struct de_sink_conf *c, const char *key, const char *url,
		     const char *const *schemes, const char *expect, char **display)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL;
	bool known = false;
	int rc = 0;

	if (!u)
		return de_error_set(c->err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		rc = de_sink_conf_fail(c, key, "not a valid URL (expected %s)", expect);
		goto out;
	}
	for (size_t i = 0; schemes[i]; i++)
		known |= strcmp(scheme, schemes[i]) == 0;
	if (!known) {
		rc = de_sink_conf_fail(c, key, "scheme '%s' is not supported (expected %s)", scheme,
				       expect);
		goto out;
	}
	curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
	if (asprintf(display, "%s://%s:%s", scheme, host, port ? port : "?") < 0) {
		*display = NULL;
		rc = de_error_set(c->err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
	}
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

int de_sink_conf_readable(struct de_sink_conf *c, const char *key, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return de_sink_conf_fail(c, key, "cannot read %s: %s", path, strerror(errno));
	close(fd);
	return 0;
}
