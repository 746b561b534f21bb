/*
 * outbox.h — the event store's side of alerting (src/lib/store_outbox.c):
 * the relations the alert manager keeps its state in, so that a restart or
 * a kill -9 loses nothing, and what the CLI reads of them.
 *
 *   alert_state        one row per (rule, subject) an alert was raised for:
 *                      subject "i:<instance id>" for a process instance,
 *                      "k:<dedupe key>" for rows without a pid; status open
 *                      or resolved (resolved_at, resolution "exited" or "no
 *                      longer matches"), the alert raised (NULL when the
 *                      match was folded into a deduplication window).
 *   alert_suppressed   every match that raised nothing: kind "exception"
 *                      (the exception's label, origin and reason) or
 *                      "folded" (the window's alert), with the process.
 *   dedup_windows      the live deduplication windows and their counts.
 *   alert_deliveries   the outbox: one row per (alert, sink) with status
 *                      pending / delivered / dead, attempts, next_attempt_at,
 *                      last_attempt_at, delivered_at and the last error.
 *   alerts             gains kind and context (alert.h).
 *
 * The tables are made by the store's migrations 5 and 6 (store_schema.c);
 * migration 9 keeps deliveries in the caller's hands out of the due index.
 *
 * Writes happen inside de_outbox_tx_begin()/de_outbox_tx_commit() (one
 * transaction per submit or poll: alert, state and delivery rows commit
 * together or not at all).  Ownership: rows given to callbacks borrow the
 * statement's memory for the call; de_outbox_alert_load() fills a
 * caller-owned alert.
 */
#ifndef DAEMONEYE_OUTBOX_H
#define DAEMONEYE_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemoneye/alert.h"
#include "daemoneye/error.h"
#include "daemoneye/exception.h"

struct de_store;
struct de_outbox;

/*
 * The outbox on an open store's connection: its prepared statements.  Close
 * it before the store.  A read-only store gives a read-only outbox (the
 * CLI's listings).
 */
int de_outbox_open(struct de_store *s, struct de_outbox **out, struct de_error *err);
void de_outbox_close(struct de_outbox *o);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK on the store's connection. */
int de_outbox_tx_begin(struct de_outbox *o, struct de_error *err);
int de_outbox_tx_commit(struct de_outbox *o, struct de_error *err);
void de_outbox_tx_rollback(struct de_outbox *o);

/*
 * The subject of pid in the current snapshot (with its parent's name and
 * executable), strings valid until the next call; 0 and *found false when
 * the pid is not in the snapshot.
 */
int de_outbox_subject(struct de_outbox *o, uint32_t pid, struct de_subject *out, bool *found,
		      struct de_error *err);

/* ---- alert state --------------------------------------------------------------- */

/* The open state of (rule_id, subject): *id (0: none). */
int de_outbox_state_open_id(struct de_outbox *o, const char *rule_id, const char *subject,
			    int64_t *id, struct de_error *err);
/* Mark state id seen at now (a repeat). */
int de_outbox_state_touch(struct de_outbox *o, int64_t id, int64_t now, struct de_error *err);
/* A new open state; alert_id NULL when folded. */
int de_outbox_state_open(struct de_outbox *o, const char *rule_id, const char *subject,
			 const struct de_subject *p, const char *alert_id, int64_t now,
			 struct de_error *err);

struct de_state_row {
	int64_t id;
	const char *rule_id, *subject, *alert_id; /* alert_id may be NULL */
	uint32_t pid;
	int64_t instance_id; /* 0: none */
	int64_t last_seen;
};
typedef int (*de_state_cb)(const struct de_state_row *r, void *arg);
/* Every open state of rule_id (NULL: of every rule). */
int de_outbox_states_open(struct de_outbox *o, const char *rule_id, de_state_cb cb, void *arg,
			  struct de_error *err);
/* Resolve state id ("exited", "no longer matches"). */
int de_outbox_state_resolve(struct de_outbox *o, int64_t id, int64_t now, const char *resolution,
			    struct de_error *err);
/* Whether instance_id is still in the snapshot. */
int de_outbox_instance_live(struct de_outbox *o, int64_t instance_id, bool *live,
			    struct de_error *err);

/* ---- suppressed and folded matches -------------------------------------------------- */

/* A match that raised nothing: by exception x, or folded into alert folded_into. */
int de_outbox_suppressed_add(struct de_outbox *o, int64_t now, const char *rule_id,
			     const struct de_subject *p, const struct de_exception *x,
			     const char *folded_into, struct de_error *err);

/* ---- deduplication windows ---------------------------------------------------------- */

int de_outbox_window_put(struct de_outbox *o, const char *key, const char *alert_id,
			 int64_t start_ms, int64_t end_ms, uint64_t folded, int64_t last_ms,
			 struct de_error *err);
int de_outbox_window_del(struct de_outbox *o, const char *key, struct de_error *err);
typedef int (*de_window_cb)(const char *key, const char *alert_id, int64_t start_ms, int64_t end_ms,
			    uint64_t folded, int64_t last_ms, void *arg);
/* Every saved window, oldest first. */
int de_outbox_windows(struct de_outbox *o, de_window_cb cb, void *arg, struct de_error *err);

/* ---- the outbox ------------------------------------------------------------------- */

enum de_outbox_status {
	DE_OUTBOX_PENDING = 0,
	DE_OUTBOX_DELIVERED,
	DE_OUTBOX_DEAD,
	DE_OUTBOX_STATUS_MAX
};
const char *de_outbox_status_name(enum de_outbox_status s);

/*
 * The alert (with kind and context) and one pending delivery per sink
 * (sinks[0..n)); ids[i] receives each delivery's row id.  A new delivery is
 * in the caller's hands (next_attempt_at NULL, not in the due index, not
 * returned by de_outbox_due): the caller hands it to its sink's worker
 * once committed, or makes it due with de_outbox_make_due; a run that ends
 * before recording its outcome leaves it for de_outbox_recover.
 */
int de_outbox_add(struct de_outbox *o, const struct de_alert *a, const char *const *sinks, size_t n,
		  int64_t *ids, struct de_error *err);
/*
 * The alert_data and context JSON text the last de_outbox_add stored
 * (compact, non-ASCII as is), borrowed until the outbox's next call; a
 * NULL context when the alert had none.
 */
void de_outbox_added_json(const struct de_outbox *o, struct de_alert_json_text *out);

/* One delivery row (strings borrowed for the callback). */
struct de_delivery_row {
	int64_t id;
	const char *alert_id, *sink;
	enum de_outbox_status status;
	uint32_t attempts;
	int64_t next_attempt_at, last_attempt_at, delivered_at; /* 0: none */
	const char *error;					/* NULL: none */
};
typedef int (*de_delivery_cb)(const struct de_delivery_row *r, void *arg);

/*
 * Pending deliveries to sink due at or before now, in the order they were
 * added (the alerts' order), none at or after the first pending row that is
 * not due yet (so that no alert overtakes an older one waiting for its
 * retry), at most limit, skipping the ids for which skip(id, arg) is true
 * (already queued).  *next_due receives the earliest next_attempt_at of
 * the pending rows after now (0: none).
 */
int de_outbox_due(struct de_outbox *o, const char *sink, int64_t now, size_t limit,
		  bool (*skip)(int64_t id, void *arg), de_delivery_cb cb, void *arg,
		  int64_t *next_due, struct de_error *err);

/*
 * Pending deliveries to sink that wait in the store (due, or waiting for a
 * retry) into *n; not those in the caller's hands (de_outbox_add).
 */
int de_outbox_pending(struct de_outbox *o, const char *sink, size_t *n, struct de_error *err);

/* Record an attempt's outcome: the new status, attempts so far, when to try again. */
int de_outbox_record(struct de_outbox *o, int64_t id, enum de_outbox_status st, uint32_t attempts,
		     int64_t now, int64_t next_attempt_at, const char *error, struct de_error *err);
/*
 * Deliveries ids[0..n) delivered at now, after attempts[i] attempts each:
 * what n calls of de_outbox_record(DE_OUTBOX_DELIVERED) record, in a few
 * statements instead of n.
 */
int de_outbox_record_delivered(struct de_outbox *o, const int64_t *ids, const uint32_t *attempts,
			       size_t n, int64_t now, struct de_error *err);

/* Sink answers again: its pending deliveries waiting for a retry are due at now. */
int de_outbox_resume(struct de_outbox *o, const char *sink, int64_t now, struct de_error *err);

/*
 * The caller's new deliveries to sink with ids from from_id on that it did
 * not hand to a worker (de_outbox_add) wait in the store from now: due at
 * now, returned by de_outbox_due in their order.
 */
int de_outbox_make_due(struct de_outbox *o, const char *sink, int64_t from_id, int64_t now,
		       struct de_error *err);
/*
 * At the start of a run: every delivery an earlier run had in its hands
 * and did not record (killed, or closed before the outcome came) is due
 * at now; *n receives how many.  One scan of the outbox.
 */
int de_outbox_recover(struct de_outbox *o, int64_t now, size_t *n, struct de_error *err);

/* The stored alert alert_id into *out (ENOENT when there is none). */
int de_outbox_alert_load(struct de_outbox *o, const char *alert_id, struct de_alert *out,
			 struct de_error *err);

/* ---- what the CLI reads and does --------------------------------------------------- */

struct de_alert_filter {
	bool has_since;
	int64_t since_ms;
	bool has_severity; /* at least this severe */
	enum de_severity severity;
	const char *rule_id;
	const char *status; /* "open" or "resolved": alerts whose states are so */
	uint64_t limit;	    /* 0: none */
};
typedef int (*de_alert_row_cb)(const struct de_alert *a, const char *status, void *arg);
/* Alerts matching f, newest first; status "open", "resolved" or "" (no state). */
int de_outbox_alerts_list(struct de_outbox *o, const struct de_alert_filter *f, de_alert_row_cb cb,
			  void *arg, struct de_error *err);

struct de_suppressed_row {
	int64_t id, t;
	const char *rule_id, *kind, *exception, *origin, *reason, *folded_into;
	uint32_t pid;
	const char *process_name, *executable_path;
};
typedef int (*de_suppressed_cb)(const struct de_suppressed_row *r, void *arg);
int de_outbox_suppressed_list(struct de_outbox *o, const struct de_alert_filter *f,
			      de_suppressed_cb cb, void *arg, struct de_error *err);

/* The deliveries of one alert, or (alert_id NULL) every dead one. */
int de_outbox_deliveries(struct de_outbox *o, const char *alert_id, bool dead_only,
			 de_delivery_cb cb, void *arg, struct de_error *err);
/* Dead deliveries back to pending (attempts 0, due now): one alert's, or all.  *n how many. */
int de_outbox_dlq_retry(struct de_outbox *o, const char *alert_id, int64_t now, size_t *n,
			struct de_error *err);
/* Forget dead deliveries whose last attempt was before before_ms (0: all).  *n how many. */
int de_outbox_dlq_purge(struct de_outbox *o, int64_t before_ms, size_t *n, struct de_error *err);

/*
 * The same two beside a running agent, on the store file at path: a
 * connection of their own that SQLite's locking serialises with the
 * agent's (waiting up to 5 s for it), not the store's writer lock.
 */
int de_outbox_dlq_retry_file(const char *path, const char *alert_id, int64_t now, size_t *n,
			     struct de_error *err);
int de_outbox_dlq_purge_file(const char *path, int64_t before_ms, size_t *n, struct de_error *err);

#endif
