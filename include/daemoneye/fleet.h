/*
 * fleet.h — many hosts on NATS JetStream (docs/fleet.md): what this host
 * publishes, on which subjects, under which host id, and the connection
 * that publishes it with JetStream acknowledgements.
 *
 * Subjects, one per kind of message and host:
 *
 *   <prefix>.<host-id>.alerts       alerts (the `nats` sink, sink_nats.c)
 *   <prefix>.<host-id>.events       process exec and exit events
 *   <prefix>.<host-id>.scans        one summary per full scan
 *   <prefix>.<host-id>.checkpoints  the audit ledger's signed checkpoints
 *
 * all held by one stream (fleet.stream) that `daemoneye-cli fleet init` or
 * the first publish creates when it does not exist.  Every message carries
 * a Nats-Msg-Id (an alert's id; a deterministic id for the others), so the
 * stream's duplicate window makes a re-send after a crash or a lost ack
 * harmless.
 *
 * The host id is stable across reboots and renames: by default the first
 * 128 bits of HMAC-SHA256 keyed with the fixed application key
 * "daemoneye fleet host id" over /etc/machine-id, in hex (the raw
 * machine-id never leaves the host, and the id is not usable as the
 * machine-id elsewhere, as systemd's app-specific ids); fleet.host_id
 * overrides it.
 *
 * fleet.c holds the settings, ids, subjects and message bodies (no I/O but
 * reading the machine-id and checking files); fleet_nats.c the connection
 * (libnats); fleet_verify.c checks a ledger against published checkpoints.
 * Errors: DE_ERR_CONFIGURATION for settings (naming the key), DE_ERR_ALERTING
 * for the cluster (unreachable, refused, no stream; code EAGAIN when a
 * retry may succeed), DE_ERR_VALIDATION for malformed messages.  Ownership
 * is said per function.  A struct de_fleet may be used from one thread at
 * a time (libnats's connection itself is thread-safe; each user opens its
 * own).
 */
#ifndef DAEMONEYE_FLEET_H
#define DAEMONEYE_FLEET_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemoneye/audit.h"
#include "daemoneye/checkpoint.h"
#include "daemoneye/config.h"
#include "daemoneye/error.h"
#include "daemoneye/record.h"
#include "daemoneye/rules.h"
#include "daemoneye/validator.h"

#define DE_FLEET_HOST_ID_LEN 32	       /* hex digits of a derived host id */
#define DE_FLEET_TOKEN_MAX   64	       /* bytes of a host id or a prefix token */
#define DE_FLEET_SUBJECT_MAX 256       /* bytes of a subject */
#define DE_FLEET_MSGID_MAX   160       /* bytes of a message id */
#define DE_FLEET_MSG_MAX     (1 << 20) /* bytes of one message we publish or read */
#define DE_FLEET_MACHINE_ID  "/etc/machine-id"

enum de_fleet_kind {
	DE_FLEET_ALERTS = 0,
	DE_FLEET_EVENTS,
	DE_FLEET_SCANS,
	DE_FLEET_CHECKPOINTS,
	DE_FLEET_KIND_MAX
};

/* "alerts", "events", "scans", "checkpoints" ("?" out of range). */
const char *de_fleet_kind_name(enum de_fleet_kind k);
/* The kind named s: 0, or -EINVAL. */
int de_fleet_kind_parse(const char *s, enum de_fleet_kind *out);

/* The fleet.* settings, resolved.  Strings owned by the struct (de_fleet_settings_clear). */
struct de_fleet_settings {
	bool enabled;	/* fleet.enabled */
	char **servers; /* fleet.servers, nservers of them */
	size_t nservers;
	char *ca_file, *cert_file, *key_file; /* fleet.tls.*; NULL when unset */
	char *credentials_file;		      /* NULL when unset */
	char host_id[DE_FLEET_TOKEN_MAX + 1]; /* fleet.host_id, or derived */
	bool host_id_derived;		      /* from the machine-id */
	char subject_prefix[DE_FLEET_TOKEN_MAX + 1];
	char stream[DE_FLEET_TOKEN_MAX + 1];
	bool create_stream;	      /* make the stream when it does not exist */
	uint64_t stream_replicas;     /* 1..5 */
	uint64_t stream_max_age_days; /* 0: no age limit */
	uint64_t stream_max_bytes_mb; /* 0: no size limit */
	uint64_t duplicate_window_s;  /* JetStream's de-duplication window */
	bool publish_events;	      /* exec/exit events and scan summaries */
	uint64_t spool_max_rows;      /* the store's spool, beyond which events are dropped */
	uint64_t publish_timeout_ms;  /* one publish's wait for its ack */
	uint64_t publish_max_pending; /* pipelined publishes awaiting their acks at once */
	uint64_t connect_timeout_ms;  /* one connection attempt */
	char *operator_public_key;    /* NULL when unset (queries and bundles) */
};

/*
 * Resolve the fleet.* settings of c.  The host id comes from fleet.host_id,
 * else is derived from machine_id_path (NULL: DE_FLEET_MACHINE_ID) — read
 * only when fleet is enabled or `need_host_id`.  TLS: cert_file and
 * key_file go together; every file named must be readable.  Errors are
 * ConfigurationErrors naming the key and where it was written.
 */
int de_fleet_settings_load(const struct de_config *c, const char *machine_id_path,
			   bool need_host_id, struct de_fleet_settings *out, struct de_error *err);
/* Free what s holds; s is then zeroed.  Accepts NULL. */
void de_fleet_settings_clear(struct de_fleet_settings *s);

/*
 * The host id derived from the machine-id file at path (32 hex digits,
 * case-insensitive, surrounding white space allowed): 32 lowercase hex
 * digits into out.  A missing, empty or malformed file is an IoError or a
 * ValidationError naming it.
 */
int de_fleet_host_id_derive(const char *path, char out[DE_FLEET_HOST_ID_LEN + 1],
			    struct de_error *err);
/*
 * Whether s is usable as one subject token (a host id, the prefix, a stream
 * name): 1..DE_FLEET_TOKEN_MAX bytes of [A-Za-z0-9_-].
 */
bool de_fleet_token_valid(const char *s);
/* "<prefix>.<host>.<kind>" into buf (n bytes): 0, or -EINVAL (a bad token), -ENAMETOOLONG. */
int de_fleet_subject(const char *prefix, const char *host, enum de_fleet_kind k, char *buf,
		     size_t n);
/*
 * Split a subject of ours: prefix must match, the host token is copied
 * into host and its kind set.  0, or -EINVAL when it is not ours.
 */
int de_fleet_subject_parse(const char *subject, const char *prefix,
			   char host[DE_FLEET_TOKEN_MAX + 1], enum de_fleet_kind *kind);

/* ---- message bodies -------------------------------------------------------- */

/*
 * One exec or exit event as the JSON published on .events (docs/fleet.md):
 * {"host","kind","pid","time_ms","exit_code"?,"process"?}, with a
 * deterministic message id "ev-<host>-<kind>-<pid>-<kernel ns or ms>".
 * *json is the caller's to free().
 */
int de_fleet_event_msg(const char *host, const struct de_process_event *ev, char **json,
		       char msg_id[DE_FLEET_MSGID_MAX], struct de_error *err);

/* What a full scan's summary states. */
struct de_fleet_scan {
	int64_t scan_id;
	int64_t started_ms, ended_ms;
	uint64_t processes;		 /* recorded */
	uint64_t added, changed, exited; /* the store's diff */
	uint64_t alerts;		 /* raised by the rules */
	uint64_t spool_rows;		 /* events waiting to be published */
	uint64_t spool_dropped;		 /* events dropped since the store was made */
	const char *version;		 /* the agent's version (NULL: not said) */
	const char *health;		 /* "ok", "warning", "critical" (NULL: unknown) */
	const char *health_summary;	 /* its components not ok, "NAME: summary; ..." */
};
/*
 * A scan summary as JSON, message id "scan-<host>-<scan id>-<started ms>";
 * with "version", "health" and "health_summary" when set (what `fleet
 * hosts` shows of each host).
 */
int de_fleet_scan_msg(const char *host, const struct de_fleet_scan *s, char **json,
		      char msg_id[DE_FLEET_MSGID_MAX], struct de_error *err);
/*
 * The message id of a checkpoint note (published as it is, the C2SP note
 * text): "ckpt-<host>-<size>-<first 8 bytes of the root, hex>".  A note that
 * does not parse is a ValidationError.
 */
int de_fleet_checkpoint_msg_id(const char *host, const char *note, size_t len,
			       char msg_id[DE_FLEET_MSGID_MAX], struct de_error *err);

/* ---- the connection (fleet_nats.c) ------------------------------------------ */

struct de_fleet;

/*
 * Connect to s->servers (TLS and credentials as set), retrying in the
 * background when no server answers: with wait false an unreachable
 * cluster is not an error (publishes fail with EAGAIN until it is back);
 * with wait true it is (DE_ERR_ALERTING, EAGAIN), as are bad credentials
 * or TLS failures (EACCES/EPROTO).  s is copied.  *out is the caller's
 * (de_fleet_close).
 */
int de_fleet_connect(const struct de_fleet_settings *s, bool wait, struct de_fleet **out,
		     struct de_error *err);
/* Whether the connection is up now. */
bool de_fleet_connected(struct de_fleet *f);
/* The settings the connection was made with (borrowed). */
const struct de_fleet_settings *de_fleet_settings(const struct de_fleet *f);

/* What the stream holds. */
struct de_fleet_stream_info {
	char name[DE_FLEET_TOKEN_MAX + 1];
	bool created; /* by this call */
	uint64_t messages, bytes, first_seq, last_seq;
	int64_t replicas;
	int64_t max_age_s;
	int64_t duplicate_window_s;
};
/*
 * Make sure the stream exists (created with the settings' retention when
 * it does not and create is true; an existing one is left as it is).
 * info may be NULL.  A missing stream with create false: DE_ERR_ALERTING
 * ENOENT.
 */
int de_fleet_stream_ensure(struct de_fleet *f, bool create, struct de_fleet_stream_info *info,
			   struct de_error *err);
/*
 * Publish len bytes on the subject of kind k for this host with
 * Nats-Msg-Id msg_id, and wait up to timeout_ms (0: the settings') for the
 * stream's acknowledgement.  *duplicate (may be NULL) says the stream had
 * it already.  The stream is ensured first, once per connection, when
 * create_stream is set.  Errors are DE_ERR_ALERTING: EAGAIN when a retry
 * may succeed (not connected, timeout, no stream yet), EACCES or EINVAL
 * when it will not.
 */
int de_fleet_publish(struct de_fleet *f, enum de_fleet_kind k, const char *msg_id, const void *data,
		     size_t len, uint64_t timeout_ms, bool *duplicate, struct de_error *err);

/* One message of a pipelined publish: the caller fills the first three fields. */
struct de_fleet_pub {
	const char *msg_id; /* its Nats-Msg-Id (borrowed) */
	const void *data;   /* its body (borrowed) */
	size_t len;
	int rc;		 /* out: 0 acknowledged; -EAGAIN a re-send may work; -EINVAL never */
	bool duplicate;	 /* out: acknowledged as stored before (the duplicate window) */
	char error[200]; /* out: why, when rc < 0 */
};
/*
 * Publish msgs[0..n) on the subject of kind k for this host, pipelined:
 * every message is sent without waiting (at most fleet.publish_max_pending
 * awaiting their acks at once), then the acknowledgements are collected, each
 * into its own msgs[i] as libnats's thread receives it, for up to
 * timeout_ms (0: the settings') per message.  A message is reported stored
 * (rc 0) only when the stream's ack for it came back; an error ack, a
 * timeout or a send that failed leave it -EAGAIN (or -EINVAL: too large), so
 * the caller retries it with the same id and the duplicate window keeps it
 * once.  Returns how many were acknowledged (err then says why the first
 * other one was not), or a negative errno when nothing could be sent (not
 * connected, no stream: DE_ERR_ALERTING as de_fleet_publish) with every
 * msgs[i].rc -EAGAIN.  msgs is borrowed for the call and written by
 * another thread only while the call lasts.
 */
int de_fleet_publish_many(struct de_fleet *f, enum de_fleet_kind k, struct de_fleet_pub *msgs,
			  size_t n, uint64_t timeout_ms, struct de_error *err);

/* One stored message, borrowed for the callback. */
struct de_fleet_msg {
	const char *subject;
	const char *msg_id; /* NULL when it has none */
	const char *data;   /* NUL-terminated copy of the body */
	size_t len;
	uint64_t seq;	 /* the stream's sequence */
	int64_t time_ns; /* when the stream stored it */
};
/* Non-zero stops the reading (and is returned). */
typedef int (*de_fleet_msg_fn)(const struct de_fleet_msg *m, void *arg);
/*
 * Read, in stream order, the stored messages of host (NULL: every host) and
 * kind, at most max (0: all there are now), through an ephemeral ordered
 * consumer; messages over DE_FLEET_MSG_MAX are skipped and counted in
 * *skipped (may be NULL).
 */
int de_fleet_read(struct de_fleet *f, const char *host, enum de_fleet_kind k, uint64_t max,
		  de_fleet_msg_fn fn, void *arg, size_t *skipped, struct de_error *err);
/* How de_fleet_read_ex reads. */
struct de_fleet_read_opts {
	int64_t since_ms;    /* > 0: only messages stored at or after (ms since the epoch) */
	bool follow;	     /* past the end, wait for new messages until *stop */
	const char *durable; /* a durable consumer of this name (a token): the server
				remembers what was read (acked), the next read resumes there */
	const volatile sig_atomic_t *stop; /* may be NULL; set (a signal handler): return */
};
/*
 * de_fleet_read with options (o may be NULL): from a start time, following
 * the stream (returning 0 once *o->stop is set), through a durable
 * consumer.  A durable consumer's filter and start are fixed when it is
 * made: read it again with the same ones.
 */
int de_fleet_read_ex(struct de_fleet *f, const char *host, enum de_fleet_kind k, uint64_t max,
		     const struct de_fleet_read_opts *o, de_fleet_msg_fn fn, void *arg,
		     size_t *skipped, struct de_error *err);
/* The latest stored message of kind k of every host, through the same callback. */
int de_fleet_read_latest(struct de_fleet *f, enum de_fleet_kind k, de_fleet_msg_fn fn, void *arg,
			 struct de_error *err);
/* Close and free (accepts NULL). */
void de_fleet_close(struct de_fleet *f);

/*
 * Store len bytes under key in the JetStream key-value bucket (made with the
 * stream's replicas when it does not exist); *revision (may be NULL) gets
 * the new revision.  Errors as de_fleet_publish.
 */
int de_fleet_kv_put(struct de_fleet *f, const char *bucket, const char *key, const void *data,
		    size_t len, uint64_t *revision, struct de_error *err);
/*
 * The latest value of key in bucket: 1 with *data (NUL-terminated, the
 * caller frees), *len and *revision; 0 when the bucket or the key does not
 * exist; a value over max bytes is a ValidationError E2BIG (its revision
 * set, so a caller can remember it was refused).
 */
int de_fleet_kv_get(struct de_fleet *f, const char *bucket, const char *key, size_t max,
		    char **data, size_t *len, uint64_t *revision, struct de_error *err);

/* Core NATS (not stored in the stream): queries and their answers. */
struct de_fleet_sub;
/* Subscribe to subject (no wildcards needed by callers).  *out is the caller's. */
int de_fleet_subscribe(struct de_fleet *f, const char *subject, struct de_fleet_sub **out,
		       struct de_error *err);
/*
 * The next message within timeout_ms (0: only one already there): 1 with
 * *data (NUL-terminated, the caller frees) and *len; 0 when none came; a
 * message over max bytes is dropped and reported as -EMSGSIZE (the next
 * call goes on).
 */
int de_fleet_sub_next(struct de_fleet_sub *s, int64_t timeout_ms, size_t max, char **data,
		      size_t *len, struct de_error *err);
void de_fleet_sub_free(struct de_fleet_sub *s);
/*
 * A descriptor that polls readable while messages wait for
 * de_fleet_sub_next (s keeps it; -1 for NULL): a caller's loop wakes when
 * one comes.
 */
int de_fleet_sub_fd(const struct de_fleet_sub *s);
/* Messages dropped because 256 were already waiting (a flood on the bus). */
uint64_t de_fleet_sub_dropped(struct de_fleet_sub *s);
/* Publish on subject without the stream (core NATS, at most once). */
int de_fleet_send(struct de_fleet *f, const char *subject, const void *data, size_t len,
		  struct de_error *err);

/* ---- signed distributed queries (fleet_query.c) ----------------------------- */

/*
 * An operator's query, signed with Ed25519 by the key whose public half
 * agents have as fleet.operator_public_key (keys: checkpoint.h).  It goes
 * to "<prefix>.query" (every host) or "<prefix>.<host>.query", never into
 * the stream; each agent checks the signature, that it is fresh (issued
 * within DE_FLEET_QUERY_SKEW_MS of its clock, not expired, living at most
 * DE_FLEET_QUERY_TTL_MAX_MS) and new (its id not seen before), and that it
 * is meant for it, runs the SQL in its sandbox (the rules' validator,
 * limits and timeout) and answers on the query's reply subject.
 *
 * The signature covers, as bytes:
 *   "daemoneye-fleet-query-v1\n" id "\n" issued_ms "\n" expires_ms "\n"
 *   reply "\n" hosts joined by "," "\n" sql
 * and the message is JSON: {"v":1,"id","issued_ms","expires_ms","reply",
 * "hosts":[...],"sql","sig":base64(64 bytes)}, nothing else.
 */
#define DE_FLEET_QUERY_MAX	  65536	 /* bytes of a query message */
#define DE_FLEET_QUERY_SQL_MAX	  16384	 /* bytes of its SQL */
#define DE_FLEET_QUERY_HOSTS_MAX  256	 /* hosts it names */
#define DE_FLEET_QUERY_SKEW_MS	  300000 /* clocks may differ this much */
#define DE_FLEET_QUERY_TTL_MAX_MS 600000 /* a query lives at most this long */
#define DE_FLEET_ANSWER_MAX	  524288 /* bytes of one answer */
#define DE_FLEET_ANSWER_ROWS_MAX  10000	 /* rows of one answer */

struct de_fleet_query {
	char id[64];			  /* the nonce (a UUID) */
	int64_t issued_ms, expires_ms;	  /* ms since the epoch */
	char reply[DE_FLEET_SUBJECT_MAX]; /* where answers go */
	char **hosts;			  /* the hosts asked (owned); none: every host */
	size_t nhosts;
	char *sql; /* owned */
};

/* The subject a query goes to: host NULL for every host. */
int de_fleet_query_subject(const char *prefix, const char *host, char *buf, size_t n);
/* The signed message of q by private key key; *json (the caller frees) is *len bytes. */
int de_fleet_query_sign(const struct de_fleet_query *q, const struct de_ckpt_key *key, char **json,
			size_t *len, struct de_error *err);
/*
 * Parse and check a query message: strictly shaped, signed by pub, fresh
 * at now_ms.  Refusals are DE_ERR_VALIDATION (EBADMSG malformed, E2BIG
 * too large), DE_ERR_CRYPTO (EBADMSG: unsigned or signed by another key),
 * or DE_ERR_VALIDATION ETIME (stale, expired or living too long).  On
 * success *out is the caller's (de_fleet_query_clear).
 */
int de_fleet_query_open(const char *msg, size_t len, const struct de_ckpt_key *pub, int64_t now_ms,
			struct de_fleet_query *out, struct de_error *err);
/* Whether q asks host. */
bool de_fleet_query_for(const struct de_fleet_query *q, const char *host);
void de_fleet_query_clear(struct de_fleet_query *q);

/* Query ids seen, each kept until its query expires: replays are refused. */
struct de_fleet_seen;
struct de_fleet_seen *de_fleet_seen_new(size_t cap);
/*
 * Remember id until expires_ms: 0 when new, -EALREADY when seen before
 * (a replay), -ENOSPC when cap unexpired ids are held already.
 */
int de_fleet_seen_add(struct de_fleet_seen *s, const char *id, int64_t expires_ms, int64_t now_ms);
void de_fleet_seen_free(struct de_fleet_seen *s);

/* ---- signed rule bundles (fleet_bundle.c) ----------------------------------- */

/*
 * A versioned set of rule files signed by the operator's Ed25519 key (the
 * one that signs queries).  `daemoneye-cli fleet rules push` stores it in
 * the JetStream key-value bucket DE_FLEET_BUNDLE_BUCKET under key
 * DE_FLEET_BUNDLE_KEY; agents with fleet.operator_public_key fetch it,
 * and `daemoneye-cli rules import --bundle FILE` installs one offline.
 * Either way it is installed only when it is signed by that key, newer
 * than the bundle installed (version), and every rule of every file
 * passes the same validator as local rules; then all its rules replace
 * the previous bundle's at once (one file, atomically renamed:
 * DE_FLEET_BUNDLE_FILE in the rules directory of app.state_dir).
 *
 * The signature covers, as bytes:
 *   "daemoneye-rule-bundle-v1\n" version "\n" issued_ms "\n" nfiles "\n"
 *   then for each file: name "\n" length "\n" text "\n"
 * and the message is JSON: {"v":1,"version","issued_ms","files":[{"name",
 * "text"}],"sig":base64(64 bytes)}, nothing else.
 */
#define DE_FLEET_BUNDLE_MAX	  DE_FLEET_MSG_MAX /* bytes of a bundle */
#define DE_FLEET_BUNDLE_FILES_MAX 256		   /* files in one */
#define DE_FLEET_BUNDLE_NAME_MAX  128		   /* bytes of a file's name */
#define DE_FLEET_BUNDLE_BUCKET	  "DAEMONEYE_RULES"
#define DE_FLEET_BUNDLE_KEY	  "bundle"
#define DE_FLEET_BUNDLE_FILE	  "fleet-bundle.yaml"

struct de_fleet_bundle_file {
	char name[DE_FLEET_BUNDLE_NAME_MAX + 1]; /* a base name ending .yaml or .yml */
	char *text;				 /* owned, NUL-terminated */
	size_t len;
};
struct de_fleet_bundle {
	uint64_t version; /* >= 1; an agent takes only a newer one */
	int64_t issued_ms;
	struct de_fleet_bundle_file *files; /* owned */
	size_t nfiles;
};

/* Add a copy of text[0..len) as file `name` (its base name is kept). 0, -EINVAL, -E2BIG, -ENOMEM.
 */
int de_fleet_bundle_add(struct de_fleet_bundle *b, const char *name, const char *text, size_t len);
/* The signed message of b by private key key: *json (the caller frees) is *len bytes. */
int de_fleet_bundle_sign(const struct de_fleet_bundle *b, const struct de_ckpt_key *key,
			 char **json, size_t *len, struct de_error *err);
/*
 * Parse and check a bundle message: strictly shaped (DE_ERR_VALIDATION
 * EBADMSG; E2BIG when too large), signed by pub (DE_ERR_CRYPTO EBADMSG:
 * unsigned or signed by another key).  On success *out is the caller's
 * (de_fleet_bundle_clear).
 */
int de_fleet_bundle_open(const char *msg, size_t len, const struct de_ckpt_key *pub,
			 struct de_fleet_bundle *out, struct de_error *err);
void de_fleet_bundle_clear(struct de_fleet_bundle *b);
/*
 * The version of the bundle installed in rules_dir (0: none), read from
 * the first line of its file.
 */
int de_fleet_bundle_installed(const char *rules_dir, uint64_t *version, struct de_error *err);
/*
 * Install b in rules_dir: refused when its version is not newer than the
 * installed one (DE_ERR_VALIDATION ESTALE), or when a file is not a rule
 * file or a rule fails validator v (DE_ERR_VALIDATION EBADMSG; each
 * problem appended to *problems), or when the rules together exceed a rule
 * file (E2BIG).  Otherwise its rules are written as one rule file and
 * renamed over the previous bundle's: *rules (may be NULL) receives them
 * (the caller clears it), for the audit record.  Nothing is written on a
 * refusal.
 */
int de_fleet_bundle_install(const struct de_fleet_bundle *b, struct de_validator *v,
			    const char *rules_dir, struct de_rule_set *rules,
			    struct de_rule_problems *problems, struct de_error *err);

/* ---- off-host anchoring (fleet_verify.c) ------------------------------------ */

struct de_fleet_verify_report {
	struct de_audit_report ledger; /* the ledger's own verification */
	uint64_t checkpoints;	       /* published checkpoints checked */
	uint64_t matched;	       /* of them, matching the ledger */
	uint64_t malformed;	       /* not a note, or signed by another key */
	/* the first published checkpoint that the ledger contradicts */
	enum de_audit_problem problem; /* DE_AUDIT_INTACT when none */
	uint64_t bad_size;	       /* its tree size */
	char detail[512];
};

/*
 * Check ledger a against published checkpoint notes notes[0..n) (lens[i]
 * bytes each): the ledger's own verification first (de_audit_verify,
 * against the largest published checkpoint, with its consistency proof);
 * then every note: signature by pub (when non-NULL), size no larger than
 * the ledger (else DE_AUDIT_TRUNCATED), and its root equal to the ledger's
 * root at that size (else DE_AUDIT_REWRITTEN).  0 when it could read
 * everything (*out says what holds); -errno when not.
 */
int de_fleet_verify_ledger(struct de_audit *a, const char *const *notes, const size_t *lens,
			   size_t n, const struct de_ckpt_key *pub,
			   struct de_fleet_verify_report *out, struct de_error *err);

#endif
