/*
 * sink_webhook.c — alerts POSTed to an HTTP(S) endpoint through libcurl.
 *
 * Each alert is one request: the body is the alert in the sink's format
 * (application/json for json, ecs and ocsf; text/plain otherwise), with
 * `Idempotency-Key: <alert id>` (the receiver deduplicates redeliveries on
 * it) and the operator's `headers`, whose values may reference the
 * environment as ${NAME} (secrets are expanded at load, wiped at close and
 * never written to a log or an error: errors name the endpoint as
 * scheme://host:port only, since webhook URLs often carry a token in their
 * path).  TLS is verified unless tls_verify is false; ca_file replaces the
 * system's CA store.  Redirects are not followed.  The connection is kept
 * between deliveries.
 *
 * Outcomes: 2xx delivered; 408, 429 and 5xx, connection failures, DNS and
 * timeouts transient; other statuses (4xx, 3xx) and TLS verification
 * failures permanent.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemoneye/sink.h"

struct webhook_sink {
	struct de_sink_curl k;	    /* the url may hold a secret */
	struct curl_slist *headers; /* values may hold secrets */
	const char *content_type;
};

static const char *const keys[] = {"url", "headers", "tls_verify", "ca_file", NULL};

static void wipe_slist(struct curl_slist *l)
{
	for (struct curl_slist *p = l; p; p = p->next)
		explicit_bzero(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

static void wh_free(struct webhook_sink *s)
{
	if (!s)
		return;
	de_sink_curl_free(&s->k);
	wipe_slist(s->headers);
	free(s);
}

static int wh_configure(struct de_sink_conf *c, void **state)
{
	struct webhook_sink *s = calloc(1, sizeof(*s));
	const json_t *hdrs, *v;
	const char *k;
	int rc;

	if (!s)
		return de_error_set(c->err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
	if ((rc = de_sink_curl_configure(c, "url", (const char *const[]){"https", "http", NULL},
					 "https://host/path", &s->k)) < 0)
		goto fail;
	hdrs = json_object_get(c->conf, "headers");
	if (hdrs && !json_is_null(hdrs) && !json_is_object(hdrs)) {
		rc = de_sink_conf_fail(c, "headers", "must be a mapping of header names to values");
		goto fail;
	}
	json_object_foreach ((json_t *)hdrs, k, v) {
		char key[300], *val = NULL, *line = NULL;
		bool ok = *k && strlen(k) < 256;
		for (const char *p = k; ok && *p; p++)
			ok = *p > 32 && *p < 127 && *p != ':';
		snprintf(key, sizeof(key), "headers.%s", k);
		if (!ok) {
			rc = de_sink_conf_fail(c, key, "not a valid HTTP header name");
			goto fail;
		}
		if (!json_is_string(v)) {
			rc = de_sink_conf_fail(c, key, "must be a string");
			goto fail;
		}
		if (!strcasecmp(k, "content-type") || !strcasecmp(k, "idempotency-key") ||
		    !strcasecmp(k, "content-length")) {
			rc = de_sink_conf_fail(c, key, "is set by daemoneye");
			goto fail;
		}
		if ((rc = de_sink_conf_expand(c, key, json_string_value(v), &val)) < 0)
			goto fail;
		if (strpbrk(val, "\r\n")) {
			de_secret_free(val);
			rc = de_sink_conf_fail(c, key, "the value holds a line break");
			goto fail;
		}
		struct curl_slist *n = NULL;
		if (asprintf(&line, "%s: %s", k, val) < 0 ||
		    !(n = curl_slist_append(s->headers, line))) {
			de_secret_free(val);
			de_secret_free(line);
			rc = de_error_set(c->err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
			goto fail;
		}
		s->headers = n;
		de_secret_free(val);
		de_secret_free(line);
	}
	s->content_type =
		c->format == DE_FMT_JSON || c->format == DE_FMT_ECS || c->format == DE_FMT_OCSF
			? "Content-Type: application/json"
			: "Content-Type: text/plain; charset=utf-8";
	*state = s;
	return 0;
fail:
	wh_free(s);
	return rc;
}

static int wh_open(void *state, struct de_error *err)
{
	return de_sink_curl_open(&((struct webhook_sink *)state)->k, err);
}

/* libcurl's write callback type (curl_write_callback) takes a char * */
/* NOLINTNEXTLINE(readability-non-const-parameter) */
static size_t discard(char *p, size_t sz, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return sz * n;
}

static void wh_deliver(void *state, const struct de_sink_msg *m, struct de_sink_result *r)
{
	struct webhook_sink *s = state;
	struct curl_slist *h = NULL, *all = NULL;
	char idem[80], ua[64], reason[CURL_ERROR_SIZE];
	long status = 0;
	CURLcode rc;
	CURL *c;

	snprintf(idem, sizeof(idem), "Idempotency-Key: %s", m->alert_id);
	snprintf(ua, sizeof(ua), "User-Agent: daemoneye/%s", DE_VERSION);
	/* our headers first, then the operator's (a copy: the list is rebuilt per request) */
	all = curl_slist_append(NULL, s->content_type);
	if (all && (h = curl_slist_append(all, idem)) && (h = curl_slist_append(all, ua)) &&
	    (h = curl_slist_append(all, "Expect:")))
		for (struct curl_slist *p = s->headers; h && p; p = p->next)
			h = curl_slist_append(all, p->data);
	if (!all || !h) {
		wipe_slist(all);
		de_sink_fail(r, DE_SINK_TRANSIENT, "out of memory");
		return;
	}
	c = de_sink_curl_begin(&s->k);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, m->payload);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)m->len);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, all);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	rc = (CURLcode)de_sink_curl_perform(&s->k, m, &status, reason, sizeof(reason));
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	wipe_slist(all);
	if (rc != CURLE_OK) {
		/* curl's own text names the host, never the path or a header */
		de_sink_fail(r, de_sink_curl_permanent(rc) ? DE_SINK_PERMANENT : DE_SINK_TRANSIENT,
			     "POST to %s: %s", s->k.display, reason);
		return;
	}
	if (status >= 200 && status < 300) {
		r->outcome = DE_SINK_OK;
		return;
	}
	de_sink_fail(r,
		     status == 408 || status == 429 || status >= 500 ? DE_SINK_TRANSIENT
								     : DE_SINK_PERMANENT,
		     "POST to %s: HTTP %ld%s", s->k.display, status,
		     status >= 300 && status < 400 ? " (redirects are not followed)" : "");
}

static bool wh_health(void *state, char *buf, size_t n)
{
	struct webhook_sink *s = state;

	snprintf(buf, n, "POST to %s%s", s->k.display,
		 s->k.tls_verify ? "" : " (TLS not verified)");
	return s->k.curl != NULL;
}

static void wh_close(void *state)
{
	wh_free(state);
}

const struct de_sink_ops de_sink_webhook_ops = {
	.type = "webhook",
	.keys = keys,
	.default_format = DE_FMT_JSON,
	.configure = wh_configure,
	.open = wh_open,
	.deliver = wh_deliver,
	.health = wh_health,
	.reopen = NULL,
	.close = wh_close,
};
