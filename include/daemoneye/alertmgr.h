/*
 * alertmgr.h — the seed's AlertManager, AlertManagerConfig and
 * DeduplicationConfig: what happens to the alerts the detection engine
 * raises, from "is this new?" to "did every sink get it?".
 *
 * For each alert of a rule run (de_alertmgr_submit), in order:
 *
 *  1. Subjects.  Each affected pid is looked up in the store's snapshot:
 *     the process instance (pid, start_time, instance id), its name,
 *     executable, command line, user and parent.
 *  2. Exceptions.  alerting.suppress and the rule's own exceptions are
 *     matched per subject; a suppressed subject is stored with the
 *     exception that matched and counted (`alerts list --suppressed`).
 *  3. One alert per real event.  A (rule, instance) already alerted on and
 *     still open is a repeat: not raised again, in this run or after a
 *     restart (the state is in the store).  When a full run of a rule that
 *     finished no longer matches an open instance, or the instance has left
 *     the snapshot, its state is resolved (and, for sinks with
 *     send_resolved, a "resolved" alert is delivered).
 *  4. Deduplication.  What is left is keyed by key_fields (or the rule's
 *     dedupe_key_fields); a key seen within window_minutes folds into the
 *     window's first alert and is counted; when the window closes with
 *     folds, a "summary" alert says "N more in M minutes, last at T".
 *  5. Outbox.  The alert and one delivery row per sink that routes it
 *     (min_severity, include/exclude rules and tags) are committed to the
 *     store in the same transaction as the steps above, before any sink is
 *     tried.
 *  6. Delivery.  Each sink has its own worker thread and a bounded queue
 *     (max_queue_size); what does not fit waits in the store and is loaded
 *     as room frees.  Transient failures are retried with backoff and full
 *     jitter up to max_attempts; permanent ones, and exhausted retries, go
 *     to the dead-letter state with the reason.  A circuit breaker per sink
 *     opens after failure_threshold consecutive failures: while open,
 *     attempts fail at once ("circuit open") without touching the sink, and
 *     after reset_timeout_ms one probe goes through.
 *
 * Threads: every call here is made from one thread (the agent's); the
 * workers touch no store and no state of this thread except through the
 * manager's locked queues.  The detection path never waits on a sink.
 *
 * Ownership: de_alertmgr_open() takes the config; the store and rules are
 * borrowed and must outlive the manager.  Submitted alerts are read, not
 * kept (the manager copies what it queues).
 */
#ifndef DAEMONEYE_ALERTMGR_H
#define DAEMONEYE_ALERTMGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemoneye/alert.h"
#include "daemoneye/alertfmt.h"
#include "daemoneye/config.h"
#include "daemoneye/detect.h"
#include "daemoneye/error.h"
#include "daemoneye/exception.h"
#include "daemoneye/outbox.h"
#include "daemoneye/retry.h"
#include "daemoneye/rules.h"
#include "daemoneye/sink.h"

/* ---- AlertManagerConfig -------------------------------------------------------- */

/* One configured sink (alerting.sinks[i]). */
struct de_alert_sink {
	char *name;
	const struct de_sink_ops *ops;
	void *state; /* the sink's own (configured, then opened) */
	enum de_alertfmt format;
	bool color;		       /* its format may use colour */
	enum de_severity min_severity; /* routes alerts at least this severe */
	char **include_rules;	       /* globs over rule ids; none: every rule */
	size_t n_include_rules;
	char **exclude_rules;
	size_t n_exclude_rules;
	char **include_tags; /* globs over the rule's tags; none: any */
	size_t n_include_tags;
	char **exclude_tags;
	size_t n_exclude_tags;
	bool send_resolved;  /* also deliver "resolved" alerts */
	uint64_t timeout_ms; /* each attempt's budget */
	char *origin;	     /* "FILE:LINE:COL" of its definition */
	bool opened;
};

/* The seed's DeduplicationConfig. */
struct de_dedup_config {
	bool enabled;
	uint64_t window_ms;
	char **key_fields; /* rule_id, severity, process_name, executable_path, ... */
	size_t n_key_fields;
};

struct de_alertmgr_config {
	struct de_dedup_config dedup;
	uint64_t max_queue_size;      /* deliveries held in memory per sink */
	uint64_t delivery_timeout_ms; /* one attempt's budget (a sink's timeout_ms wins) */
	struct de_retry_policy retry;
	uint32_t breaker_threshold;
	uint64_t breaker_reset_ms;
	struct de_exception_set suppress; /* alerting.suppress */
	struct de_alert_sink *sinks;	  /* owned */
	size_t nsinks;
};

/*
 * Read and check the alerting section of c: every sink configured (not
 * opened), every exception parsed.  With no sinks, the console sink of
 * alerting.stdout (when enabled): human text on a terminal, JSON lines
 * otherwise.  Errors are ConfigurationErrors naming the sink or exception,
 * the key and FILE:LINE:COL.
 */
int de_alertmgr_config_load(const struct de_config *c, struct de_alertmgr_config **out,
			    struct de_error *err);
void de_alertmgr_config_free(struct de_alertmgr_config *cfg);
/* The sink named name, or NULL (borrowed). */
struct de_alert_sink *de_alertmgr_config_sink(const struct de_alertmgr_config *cfg,
					      const char *name);

/*
 * Does sink s take alert a (raised by rule, NULL when unknown: then only
 * severity and rule id are checked)?  Resolved alerts only when
 * send_resolved; test alerts always.
 */
bool de_alert_sink_routes(const struct de_alert_sink *s, const struct de_alert *a,
			  const struct de_rule *rule);

/*
 * The deduplication key of alert a under cfg into out: the rule's
 * dedupe_key_fields when it has them (the alert's dedupe_key), else the
 * values of key_fields read from the alert and its first process.
 */
int de_alertmgr_dedup_key(const struct de_dedup_config *cfg, const struct de_alert *a,
			  const struct de_rule *rule, struct de_buf *out);

/*
 * `daemoneye-cli alerts test`: open sink s, deliver one clearly marked test
 * alert (kind "test", rule "daemoneye-test") in one attempt, close it.  No
 * store is touched.  *r says how it went; returns 0 when it was delivered,
 * else -EIO (r holds the reason) or an error opening the sink.
 */
int de_alertmgr_test_sink(struct de_alert_sink *s, uint64_t timeout_ms, struct de_sink_result *r,
			  struct de_error *err);

/* ---- AlertManager ----------------------------------------------------------------- */

struct de_store;
struct de_alertmgr;

/*
 * Start the manager on an open, writable store: take cfg (freed by
 * de_alertmgr_close, or here on failure), compile the rules' exceptions,
 * load the deduplication windows, open every sink and start its worker.
 * Deliveries left pending by an earlier run are picked up by poll().
 */
int de_alertmgr_open(struct de_alertmgr_config *cfg, struct de_store *store,
		     const struct de_rule_set *rules, struct de_alertmgr **out,
		     struct de_error *err);

/* What one submit did (also summed into the stats). */
struct de_alertmgr_counts {
	size_t raised;	   /* alerts committed to the outbox */
	size_t repeats;	   /* alerts whose every instance was already open */
	size_t suppressed; /* subjects matched by an exception */
	size_t folded;	   /* alerts folded into a deduplication window */
	size_t resolved;   /* open (rule, instance) states resolved */
	size_t summaries;  /* summaries of closed windows */
	size_t deliveries; /* delivery rows written */
};

/*
 * Take the alerts of one engine run.  full: a run of every rule over the
 * whole snapshot (then results[0..nrules) say which rules finished, and
 * open states they no longer match are resolved); false: a single-process
 * run (the exec path), which resolves nothing.  One transaction; on error
 * nothing is committed and the alerts are not lost from the engine's next
 * run (they are raised again, since no state was recorded).
 */
int de_alertmgr_submit(struct de_alertmgr *m, const struct de_alert_list *alerts, bool full,
		       const struct de_rule_result *results, size_t nrules,
		       struct de_alertmgr_counts *counts, struct de_error *err);

/*
 * Housekeeping, never blocking on a sink: record the workers' outcomes in
 * the store (delivered, retry at T, dead), close expired deduplication
 * windows (summaries), and move due deliveries from the store into the
 * workers' queues as room allows.  Call it often (the agent does between
 * events and scans).
 */
int de_alertmgr_poll(struct de_alertmgr *m, struct de_error *err);

/*
 * Poll until no delivery to a configured sink is pending: every one this
 * process created, and any an earlier run left (a crash, `alerts dlq
 * retry`), delivered or dead (`daemoneye-agent --once`); or until *stop
 * becomes true.  Bounded by the retry policy and the attempts' timeouts.
 */
int de_alertmgr_drain(struct de_alertmgr *m, const volatile int *stop, struct de_error *err);

/*
 * Who wants to know what the manager committed (the agent's audit ledger).
 * Both callbacks run on the manager's (the caller's) thread, inside
 * de_alertmgr_submit, _poll or _drain, after the transaction that made the
 * thing durable has committed: never for what was rolled back.  They must
 * not call back into the manager.  Either may be NULL.
 */
struct de_alertmgr_observer {
	/* an alert (kind NULL, "resolved" or "summary") committed to the
	   outbox, with the sinks it was routed to */
	void (*raised)(void *arg, const struct de_alert *a, size_t nsinks);
	/* a delivery attempt's outcome recorded: status DELIVERED, DEAD, or
	   PENDING (it failed and will be retried); error NULL when delivered */
	void (*delivery)(void *arg, const char *alert_id, const char *sink,
			 enum de_outbox_status status, uint32_t attempts, const char *error);
	void *arg;
};
/* Set (copied) or clear (NULL) the observer. */
void de_alertmgr_set_observer(struct de_alertmgr *m, const struct de_alertmgr_observer *o);

/* SIGHUP: the sinks that keep files reopen them before their next write. */
void de_alertmgr_reopen(struct de_alertmgr *m);

struct de_alertmgr_stats {
	struct de_alertmgr_counts total;	   /* summed over every submit and poll */
	uint64_t delivered, attempts_failed, dead; /* delivery outcomes recorded */
	size_t dedup_windows;			   /* live deduplication windows */
	size_t outstanding;			   /* this process's deliveries not final yet */
};
void de_alertmgr_get_stats(const struct de_alertmgr *m, struct de_alertmgr_stats *out);

/* One sink as health and metrics show it. */
struct de_alertmgr_sink_status {
	const char *name;		  /* borrowed from the manager's configuration */
	enum de_breaker_state circuit;	  /* its circuit breaker after the last attempt */
	size_t queued;			  /* deliveries in its worker's memory queue */
	size_t pending;			  /* pending deliveries in the store (queued or not) */
	size_t dead_letters;		  /* dead deliveries in the store (`alerts dlq`) */
	uint64_t delivered, failed, dead; /* outcomes recorded since the manager opened */
};
/* Sinks the manager has (0 for NULL). */
size_t de_alertmgr_nsinks(const struct de_alertmgr *m);
/* Sink i (0 .. nsinks-1): its state, queue, outbox counts and outcomes.  0 or -errno. */
int de_alertmgr_sink_status(struct de_alertmgr *m, size_t i, struct de_alertmgr_sink_status *out,
			    struct de_error *err);

/*
 * Stop the workers (an attempt in progress is abandoned; its row stays
 * pending and is delivered by the next run), close the sinks, free
 * everything.  NULL accepted.
 */
void de_alertmgr_close(struct de_alertmgr *m);

#endif
