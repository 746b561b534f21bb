/*
 * sink_email.c — alerts by email, through libcurl's SMTP.
 *
 * smtp_url is smtp://host[:port] (STARTTLS per `starttls`: "auto" uses it
 * when the server offers it, "required" fails permanently without it,
 * "never") or smtps://host[:port] (TLS from the start).  TLS is verified
 * unless tls_verify is false.  username and password (both may reference
 * the environment as ${NAME}; wiped at close, never logged) log in.
 *
 * The message is plain text a person reads at a glance: the subject says
 * "[daemoneye] SEVERITY: title — process on host", the body one field per
 * line (everything from a process escaped, lines short), then the alert
 * in the sink's format when that is not human text.  Message-ID carries
 * the alert id (a mail system can drop redeliveries on it), as does the
 * X-DaemonEye-Alert-Id header.
 *
 * Outcomes: SMTP 4xx, connection failures and timeouts transient; 5xx,
 * refused logins and TLS failures permanent.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemoneye/base64.h"
#include "daemoneye/sink.h"
#include "daemoneye/text.h"

struct email_sink {
	struct de_sink_curl k; /* the url may hold a secret */
	char *from;
	struct curl_slist *rcpt;
	char *to_header; /* "a@x, b@y" */
	char *username, *password;
	long use_ssl;
	struct de_buf msg; /* the message being sent */
	size_t sent;	   /* bytes of msg handed to curl */
	enum de_alertfmt fmt;
};

static const char *const keys[] = {"smtp_url", "from",	     "to",	"username", "password",
				   "starttls", "tls_verify", "ca_file", NULL};

static void em_free(struct email_sink *s)
{
	if (!s)
		return;
	de_sink_curl_free(&s->k);
	free(s->from);
	curl_slist_free_all(s->rcpt);
	free(s->to_header);
	de_secret_free(s->username);
	de_secret_free(s->password);
	de_buf_free(&s->msg);
	free(s);
}

/* An address we can put in a header and an envelope: no spaces, controls, <>, one @. */
static bool valid_addr(const char *a)
{
	const char *at = strchr(a, '@');

	if (!at || at == a || !at[1] || strchr(at + 1, '@') || strlen(a) > 254)
		return false;
	for (const char *p = a; *p; p++)
		if ((unsigned char)*p <= 32 || *p == 127 || *p == '<' || *p == '>' || *p == ',' ||
		    *p == '"')
			return false;
	return true;
}

static int em_configure(struct de_sink_conf *c, void **state)
{
	struct email_sink *s = calloc(1, sizeof(*s));
	const char *from, *user, *pass, *tls;
	const json_t *to = json_object_get(c->conf, "to"), *v;
	size_t i;
	int rc;

	if (!s)
		return de_error_set(c->err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
	s->msg = (struct de_buf)DE_BUF_INIT(16u << 20);
	s->fmt = c->format;
	if ((rc = de_sink_curl_configure(c, "smtp_url",
					 (const char *const[]){"smtp", "smtps", NULL},
					 "smtp://host[:port] or smtps://host[:port]", &s->k)) < 0 ||
	    (rc = de_sink_conf_str(c, "from", true, &from)) < 0 ||
	    (rc = de_sink_conf_str(c, "username", false, &user)) < 0 ||
	    (rc = de_sink_conf_str(c, "password", false, &pass)) < 0 ||
	    (rc = de_sink_conf_enum(c, "starttls", "auto required never", "auto", &tls)) < 0)
		goto fail;
	if (!valid_addr(from)) {
		rc = de_sink_conf_fail(c, "from", "'%s' is not an email address", from);
		goto fail;
	}
	if (!json_is_array(to) || json_array_size(to) == 0 || json_array_size(to) > 100) {
		rc = de_sink_conf_fail(c, "to", "must be a list of 1 to 100 email addresses");
		goto fail;
	}
	struct de_buf th = DE_BUF_INIT((size_t)64 * 1024);
	json_array_foreach (to, i, v) {
		char key[32];
		snprintf(key, sizeof(key), "to[%zu]", i);
		if (!json_is_string(v) || !valid_addr(json_string_value(v))) {
			de_buf_free(&th);
			rc = de_sink_conf_fail(c, key, "not an email address");
			goto fail;
		}
		struct curl_slist *n = curl_slist_append(s->rcpt, json_string_value(v));
		if (!n || (i && de_buf_puts(&th, ", ") < 0) ||
		    de_buf_puts(&th, json_string_value(v)) < 0) {
			de_buf_free(&th);
			rc = de_error_set(c->err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
			goto fail;
		}
		s->rcpt = n;
	}
	s->to_header = de_buf_steal(&th);
	if ((user && (rc = de_sink_conf_expand(c, "username", user, &s->username)) < 0) ||
	    (pass && (rc = de_sink_conf_expand(c, "password", pass, &s->password)) < 0))
		goto fail;
	if (!(s->from = strdup(from)) || !s->to_header) {
		rc = de_error_set(c->err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
		goto fail;
	}
	s->use_ssl = !strcmp(tls, "required") ? (long)CURLUSESSL_ALL
		     : !strcmp(tls, "never")  ? (long)CURLUSESSL_NONE
					      : (long)CURLUSESSL_TRY;
	*state = s;
	return 0;
fail:
	em_free(s);
	return rc;
}

static int em_open(void *state, struct de_error *err)
{
	return de_sink_curl_open(&((struct email_sink *)state)->k, err);
}

/* Header-safe text: controls become spaces, non-ASCII is RFC 2047 encoded. */
static int header_text(struct de_buf *b, const char *s)
{
	bool ascii = true;
	size_t n = strlen(s);
	char *l = NULL;
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		ascii &= (unsigned char)s[i] < 128;
	if (ascii) {
		for (size_t i = 0; i < n && i < 200 && rc == 0; i++)
			rc = de_buf_putc(b, (unsigned char)s[i] < 32 || s[i] == 127 ? ' ' : s[i]);
		return rc;
	}
	/* =?UTF-8?B?...?= in encoded words of at most 45 input bytes each */
	if (!(l = de_utf8_lossy_dup(s, n, &n)))
		return -ENOMEM;
	for (size_t i = 0; i < n && rc == 0;) {
		size_t k = n - i > 45 ? 45 : n - i;
		char enc[64];
		while (k > 1 && i + k < n && ((unsigned char)l[i + k] & 0xc0) == 0x80)
			k--; /* do not split a character */
		de_base64_encode((const uint8_t *)l + i, k, enc);
		rc = de_buf_printf(b, "%s=?UTF-8?B?%s?=", i ? "\r\n " : "", enc);
		i += k;
	}
	free(l);
	return rc;
}

/* One body line "label: value" (value escaped, cut at 900 bytes). */
static int body_line(struct de_buf *b, const char *label, const char *v)
{
	char *e;
	int rc;

	if (!v)
		return 0;
	if (!(e = de_escape_text(v, strlen(v))))
		return -ENOMEM;
	rc = de_buf_printf(b, "%-14s %.*s%s\r\n", label, 900, e, strlen(e) > 900 ? " [...]" : "");
	free(e);
	return rc;
}

static int compose(struct email_sink *s, const struct de_sink_msg *m)
{
	const struct de_alert *a = m->alert;
	const json_t *p = json_array_get(json_object_get(a->context, "processes"), 0);
	const char *host = de_alertfmt_hostname();
	char date[64], sev[16], ts[32], pid[32] = "";
	time_t now = time(NULL), at = (time_t)(a->alert_time / 1000);
	struct tm tm;
	struct de_buf *b = &s->msg;
	int rc;

	if (!json_is_object(p))
		p = json_array_get(a->alert_data, 0);
	snprintf(sev, sizeof(sev), "%s", de_severity_name(a->severity));
	for (char *q = sev; *q; q++)
		*q = (char)(*q - 32);
	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	gmtime_r(&at, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S UTC", &tm);
	if (json_is_integer(json_object_get(p, "pid")))
		snprintf(pid, sizeof(pid), "%lld",
			 (long long)json_integer_value(json_object_get(p, "pid")));
	const char *name = json_string_value(json_object_get(p, "name"));
	/* what came from a process is escaped: one header line, nothing forged */
	char *ename = name ? de_escape_text(name, strlen(name)) : NULL;
	char *etitle = de_escape_text(a->title, strlen(a->title));
	char subj[512];
	snprintf(subj, sizeof(subj), "[daemoneye]%s%s %s: %s - %s%s%s on %s", a->kind ? " " : "",
		 a->kind ? a->kind : "", sev, etitle ? etitle : "?", ename ? ename : "process",
		 pid[0] ? " pid " : "", pid, host);
	free(ename);
	free(etitle);
	de_buf_reset(b);
	s->sent = 0;
	if ((rc = de_buf_printf(b, "Date: %s\r\nFrom: %s\r\nTo: %s\r\nSubject: ", date, s->from,
				s->to_header)) < 0 ||
	    (rc = header_text(b, subj)) < 0 ||
	    (rc = de_buf_printf(b,
				"\r\nMessage-ID: <%s@daemoneye>\r\nX-DaemonEye-Alert-Id: %s\r\n"
				"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
				"Content-Transfer-Encoding: 8bit\r\n\r\n",
				m->alert_id, m->alert_id)) < 0)
		return rc;
	if ((rc = body_line(b, "Alert:", a->title)) < 0 ||
	    (rc = body_line(b, "Severity:", sev)) < 0 ||
	    (rc = body_line(b, "Kind:", de_alert_kind(a))) < 0 ||
	    (rc = body_line(b, "Rule:", a->rule_id)) < 0 || (rc = body_line(b, "Time:", ts)) < 0 ||
	    (rc = body_line(b, "Host:", host)) < 0 || (rc = body_line(b, "Process:", name)) < 0 ||
	    (rc = body_line(b, "PID:", pid[0] ? pid : NULL)) < 0 ||
	    (rc = body_line(b, "Executable:",
			    json_string_value(json_object_get(p, "executable_path")))) < 0 ||
	    (rc = body_line(b, "Command line:",
			    json_string_value(json_object_get(p, "command_line")))) < 0 ||
	    (rc = body_line(b, "Parent:", json_string_value(json_object_get(p, "parent_name")))) <
		    0 ||
	    (rc = body_line(b, "User id:", json_string_value(json_object_get(p, "user_id")))) < 0 ||
	    (rc = body_line(b, "Alert id:", m->alert_id)) < 0 ||
	    (rc = de_buf_puts(b, "\r\n")) < 0 || (rc = body_line(b, "What:", a->description)) < 0)
		return rc;
	if (a->process_count > 1 &&
	    (rc = de_buf_printf(b, "%-14s %d (this mail shows the first)\r\n",
				"Processes:", a->process_count)) < 0)
		return rc;
	if (s->fmt != DE_FMT_HUMAN) {
		/* the machine record, folded into lines of at most 76 bytes */
		if ((rc = de_buf_printf(b, "\r\n-- %s --\r\n", de_alertfmt_name(s->fmt))) < 0)
			return rc;
		for (size_t i = 0; i < m->len && rc == 0; i += 76)
			rc = de_buf_printf(b, "%.*s\r\n", (int)(m->len - i > 76 ? 76 : m->len - i),
					   m->payload + i);
	}
	return rc;
}

static size_t reader(char *buf, size_t sz, size_t n, void *arg)
{
	struct email_sink *s = arg;
	size_t left = s->msg.len - s->sent, k = sz * n < left ? sz * n : left;

	memcpy(buf, s->msg.p + s->sent, k);
	s->sent += k;
	return k;
}

static void em_deliver(void *state, const struct de_sink_msg *m, struct de_sink_result *r)
{
	struct email_sink *s = state;
	char reason[CURL_ERROR_SIZE];
	long code = 0;
	CURLcode rc;
	CURL *c;

	if (compose(s, m) < 0) {
		de_sink_fail(r, DE_SINK_PERMANENT, "cannot compose the message (too large)");
		return;
	}
	c = de_sink_curl_begin(&s->k);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, s->from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, s->rcpt);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, reader);
	curl_easy_setopt(c, CURLOPT_READDATA, s);
	curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)s->msg.len);
	curl_easy_setopt(c, CURLOPT_USE_SSL, s->use_ssl);
	if (s->username)
		curl_easy_setopt(c, CURLOPT_USERNAME, s->username);
	if (s->password)
		curl_easy_setopt(c, CURLOPT_PASSWORD, s->password);
	rc = (CURLcode)de_sink_curl_perform(&s->k, m, &code, reason, sizeof(reason));
	if (rc == CURLE_OK) {
		r->outcome = DE_SINK_OK;
		return;
	}
	enum de_sink_outcome o = DE_SINK_TRANSIENT;
	if (code >= 500 || de_sink_curl_permanent(rc))
		o = DE_SINK_PERMANENT;
	if (code >= 400 && code < 500)
		o = DE_SINK_TRANSIENT;
	de_sink_fail(r, o, "SMTP to %s: %s%s%.0ld", s->k.display, reason,
		     code ? " (server said " : "", code);
	if (code) {
		size_t l = strlen(r->error);
		snprintf(r->error + l, sizeof(r->error) - l, ")");
	}
}

static bool em_health(void *state, char *buf, size_t n)
{
	struct email_sink *s = state;

	snprintf(buf, n, "SMTP to %s for %s", s->k.display, s->to_header);
	return s->k.curl != NULL;
}

static void em_close(void *state)
{
	em_free(state);
}

const struct de_sink_ops de_sink_email_ops = {
	.type = "email",
	.keys = keys,
	.default_format = DE_FMT_HUMAN,
	.configure = em_configure,
	.open = em_open,
	.deliver = em_deliver,
	.health = em_health,
	.reopen = NULL,
	.close = em_close,
};
