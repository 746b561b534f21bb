/*
 * sink.h — alert sinks: where alerts go (stdout, a file, syslog, a webhook,
 * email, the fleet's NATS JetStream stream), one file each
 * (src/lib/sink_<type>.c) behind one small ops struct, after curl's
 * backends.  The alert manager (alertmgr.h) owns the queue, the retries,
 * the circuit breaker and the bookkeeping; a sink only knows how to read
 * its own configuration keys and how to make one delivery attempt.
 *
 * Life of a sink: configure() at load (checks every key it owns, names
 * the sink, the key and FILE:LINE:COL on error, touches nothing outside
 * except to check that files it names are readable), open() when the agent
 * starts delivering (after it dropped privileges), deliver() for each
 * attempt on the sink's own worker thread, health() for `alerts test` and
 * the logs, reopen() on SIGHUP (files, for logrotate), close() at the end
 * (wipes secrets with explicit_bzero and frees the state).
 *
 * deliver() (or deliver_batch(), for several at once) is called from one
 * thread at a time per sink, with the alert already rendered in the sink's
 * format.  It classifies its failure:
 * transient (connection refused, DNS, timeouts, HTTP 408/429/5xx, SMTP 4xx)
 * is retried with backoff; permanent (HTTP 4xx, SMTP 5xx, TLS verification)
 * goes straight to the dead-letter state.  Error texts never hold a secret
 * (header values, passwords, the path and query of a URL).  A sink must
 * return within its timeout_ms, and sooner once *m->stop is set.
 *
 * Ownership: the state a sink allocates in configure() is its own until
 * close().  Messages are borrowed for the call.
 */
#ifndef DAEMONEYE_SINK_H
#define DAEMONEYE_SINK_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemoneye/alert.h"
#include "daemoneye/alertfmt.h"
#include "daemoneye/buf.h"
#include "daemoneye/config.h"
#include "daemoneye/error.h"

enum de_sink_outcome { DE_SINK_OK = 0, DE_SINK_TRANSIENT, DE_SINK_PERMANENT, DE_SINK_OUTCOME_MAX };

/* "delivered", "transient", "permanent". */
const char *de_sink_outcome_name(enum de_sink_outcome o);

struct de_sink_result {
	enum de_sink_outcome outcome;
	char error[512]; /* why it failed, for the delivery row and the logs; no secrets */
};

/* Record a failure in r (printf-style); returns nothing. */
void de_sink_fail(struct de_sink_result *r, enum de_sink_outcome o, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* One delivery attempt. */
struct de_sink_msg {
	const struct de_alert *alert;
	const char *alert_id; /* canonical UUID: the idempotency key */
	const char *payload;  /* the alert in the sink's format, one record, no newline */
	size_t len;
	uint32_t attempt;	 /* 1 for the first */
	uint64_t timeout_ms;	 /* this attempt's budget */
	const atomic_bool *stop; /* set when the agent stops: give up at once */
};

/* What configure() reads its keys through. */
struct de_sink_conf {
	const json_t *conf;	 /* the sink's mapping (borrowed) */
	const char *name;	 /* its name */
	const char *path;	 /* "alerting.sinks[2]" */
	const json_t *origins;	 /* config path -> "FILE:LINE:COL" (may be NULL) */
	const char *fallback;	 /* the origin when a path has none */
	enum de_alertfmt format; /* the format chosen for it */
	uint64_t timeout_ms;	 /* its per-attempt timeout */
	bool color;		 /* out: configure() sets it when the format may be coloured */
	struct de_error *err;
	/* the whole configuration, for sinks configured by other sections
	   (nats: fleet.*); borrowed, may be NULL */
	const struct de_config *config;
};

/*
 * Fail configuration of c's sink at `key` (NULL: the sink as a whole):
 * a ConfigurationError "ORIGIN: sink 'NAME' (alerting.sinks[2]): KEY: msg".
 * Returns -EINVAL (or the code given in errno style when code > 0).
 */
int de_sink_conf_fail(struct de_sink_conf *c, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Where c's key was written ("FILE:LINE:COL", or the nearest parent's). */
const char *de_sink_conf_where(const struct de_sink_conf *c, const char *key, char *buf, size_t n);
/* A string key (NULL in *out when absent and not required). */
int de_sink_conf_str(struct de_sink_conf *c, const char *key, bool required, const char **out);
/* An integer key in [min, max], def when absent. */
int de_sink_conf_u64(struct de_sink_conf *c, const char *key, uint64_t min, uint64_t max,
		     uint64_t def, uint64_t *out);
int de_sink_conf_bool(struct de_sink_conf *c, const char *key, bool def, bool *out);
/* One of the space-separated words of `choices`, def when absent. */
int de_sink_conf_enum(struct de_sink_conf *c, const char *key, const char *choices, const char *def,
		      const char **out);
/*
 * Expand ${NAME} references from the environment in s (a secret's text):
 * a new string in *out the caller wipes with de_secret_free().  An unset
 * variable fails at `key`, naming the variable, never the value.
 */
int de_sink_conf_expand(struct de_sink_conf *c, const char *key, const char *s, char **out);
/*
 * Check url (a key's value, secrets already expanded): a URL whose scheme
 * is one of schemes (NULL-terminated); `expect` shows the form in errors.
 * *display receives scheme://host:port, safe to show (no path, no query,
 * no user info); the caller frees it.
 */
int de_sink_conf_url(struct de_sink_conf *c, const char *key, const char *url,
		     const char *const *schemes, const char *expect, char **display);
/* A readable file named by key (a CA bundle): fails naming the file and why. */
int de_sink_conf_readable(struct de_sink_conf *c, const char *key, const char *path);

/* explicit_bzero and free a secret string (NULL accepted). */
void de_secret_free(char *s);

struct de_sink_ops {
	const char *type;	 /* the `type:` word */
	const char *const *keys; /* its own keys (NULL-terminated), beyond the common ones */
	enum de_alertfmt default_format;
	int (*configure)(struct de_sink_conf *c, void **state);
	int (*open)(void *state, struct de_error *err);
	void (*deliver)(void *state, const struct de_sink_msg *m, struct de_sink_result *r);
	/*
	 * May be NULL.  Attempts at msgs[0..n) together (the file sink: one
	 * write(2), one sync), each outcome in results[i], as if deliver() had
	 * been called on each in order.  The manager uses it while the sink's
	 * circuit is closed, for what its queue holds at once.
	 */
	void (*deliver_batch)(void *state, const struct de_sink_msg *msgs, size_t n,
			      struct de_sink_result *results);
	/* One line on its state ("writing /var/log/x", "udp 127.0.0.1:514"); false if unhealthy. */
	bool (*health)(void *state, char *buf, size_t n);
	void (*reopen)(void *state); /* may be NULL */
	void (*close)(void *state);
};

extern const struct de_sink_ops de_sink_stdout_ops;
extern const struct de_sink_ops de_sink_file_ops;
extern const struct de_sink_ops de_sink_syslog_ops;
extern const struct de_sink_ops de_sink_webhook_ops;
extern const struct de_sink_ops de_sink_email_ops;
extern const struct de_sink_ops de_sink_nats_ops;

/* The ops of a sink type, or NULL. */
const struct de_sink_ops *de_sink_ops_find(const char *type);
/* "stdout, file, syslog, webhook, email". */
const char *de_sink_types(void);

/* ---- helpers the sinks share, exposed for their tests ---------------------------- */

/*
 * What the curl sinks (webhook, email) share: the endpoint and the libcurl
 * handle kept between deliveries.  Owned by the sink's state and released
 * by de_sink_curl_free (the url wiped: it may hold a secret).
 */
struct de_sink_curl {
	char *url;     /* expanded from ${ENV}; may hold a secret */
	char *display; /* scheme://host:port, for messages and health */
	bool tls_verify;
	char *ca_file;
	void *curl; /* CURL *, from de_sink_curl_open */
};

/*
 * Read k's keys from c: url_key (required, ${ENV} expanded, one of schemes,
 * `example` shown when it is not), tls_verify (default true) and ca_file
 * (readable).  0 or -errno with c->err set; k is then freed by its owner.
 */
int de_sink_curl_configure(struct de_sink_conf *c, const char *url_key, const char *const *schemes,
			   const char *example, struct de_sink_curl *k);
/* Make k's libcurl handle (the sink's open).  0 or -ENOMEM. */
int de_sink_curl_open(struct de_sink_curl *k, struct de_error *err);
/*
 * Reset k's handle for a new transfer and set its url; returns the handle
 * (a CURL *) for the sink's own options.
 */
void *de_sink_curl_begin(struct de_sink_curl *k);
/*
 * Perform the transfer on k's handle with the options every attempt sets
 * (no signals, m's timeout, connecting in at most 10 s of it, TLS
 * verification and CA file, an abort as soon as *m->stop is set).  Returns
 * the CURLcode; *code the server's response code (0: none); on failure
 * `reason` (n bytes) says why: "stopped", libcurl's message naming the
 * host (never the path or a header), or the code's text.
 */
int de_sink_curl_perform(struct de_sink_curl *k, const struct de_sink_msg *m, long *code,
			 char *reason, size_t n);
/* Whether a CURLcode is a permanent failure (TLS verification, login, ...). */
bool de_sink_curl_permanent(int code);
/* Free what k holds (not k). */
void de_sink_curl_free(struct de_sink_curl *k);

/* RFC 5424 SD-PARAM value escaping ('"', '\' and ']' get a backslash;
 * invalid UTF-8 becomes U+FFFD; other control characters a space). */
int de_syslog_sd_escape(struct de_buf *out, const char *s, size_t n);

struct de_syslog_hdr {
	int facility;	      /* 0..23 */
	int severity;	      /* 0..7 */
	int64_t time_ms;      /* the alert's time */
	const char *hostname; /* PRINTUSASCII, <= 255 */
	const char *app_name; /* <= 48 */
	long procid;	      /* the agent's pid */
	const char *msgid;    /* <= 32 */
	const char *alert_id; /* goes into the structured data */
	const char *rule_id;
	const char *severity_name;
	const char *kind;
};
/* An RFC 5424 message: header, [daemoneye@32473 ...] structured data, MSG. */
int de_syslog_5424(struct de_buf *out, const struct de_syslog_hdr *h, const char *msg, size_t len);
/* syslog severity (0..7) of an alert severity: critical 2, high 3, medium 4, low 5. */
int de_syslog_severity(enum de_severity s);

#endif
