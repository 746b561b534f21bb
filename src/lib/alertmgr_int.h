/*
 * alertmgr_int.h — what the AlertManager's two files share, private to
 * src/lib/alertmgr*.c (see alertmgr.h for the public API):
 *
 *   alertmgr.c         open and close, raising alerts (exceptions, state,
 *                      deduplication, the outbox), resolution, summaries,
 *                      submit, poll and drain
 *   alertmgr_worker.c  the deliveries: a worker thread per sink that renders
 *                      and attempts them (in batches for sinks that take
 *                      them), the queues between the agent's thread and the
 *                      workers, recording the outcomes in the outbox and
 *                      refilling the queues from it
 *
 * Internal functions are named alertmgr_<verb> and have hidden visibility.
 */
#ifndef DAEMONEYE_ALERTMGR_INT_H
#define DAEMONEYE_ALERTMGR_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemoneye/alertmgr.h"
#include "daemoneye/buf.h"
#include "daemoneye/dedup.h"
#include "daemoneye/outbox.h"
#include "daemoneye/uuid.h"

#pragma GCC visibility push(hidden)

/* An alert shared by the queues of several sinks. */
struct shared_alert {
	struct de_alert a;
	char id[DE_UUID_STR_LEN + 1];
	atomic_int refs;
	/* a's JSON values as the outbox stored them (in json, owned), so the
	 * json format copies them instead of dumping them again; NULL when not
	 * kept (an alert reloaded for a retry) */
	char *json;
	struct de_alert_json_text jt;
};

/* One delivery, queued, in flight, then its outcome. */
struct item {
	struct item *next;
	struct worker *w;
	int64_t delivery_id;
	uint32_t attempts; /* made so far, this one included once it is made */
	struct shared_alert *sa;
	char alert_id[DE_UUID_STR_LEN + 1]; /* sa's, kept for the observer once sa is let go */
	/* the outcome */
	enum de_sink_outcome outcome;
	bool circuit; /* not tried: the circuit was open */
	bool final;   /* recorded as delivered or dead */
	char error[512];
};

/* A set of positive ids (open addressing; 0 empty, -1 deleted). */
struct idset {
	int64_t *v;
	size_t cap, len, used; /* used: len + tombstones */
};

struct worker {
	struct de_alertmgr *m;
	struct de_alert_sink *sink;
	pthread_t th;
	bool started;
	/* under m->mu */
	struct item *head, *tail;
	size_t qlen;
	pthread_cond_t cv;
	/* the agent's thread only */
	struct item *stage, *stage_tail; /* queued here, handed over by alertmgr_publish() */
	size_t nstage;
	struct idset held; /* delivery ids queued or in flight */
	bool more;	   /* due rows may wait in the store */
	int64_t next_due;  /* the earliest retry known (wall ms, 0: none) */
	/* the first new delivery (de_outbox_add) not handed to the worker: from
	 * it on, this sink's new rows are made due in the store (0: none) */
	int64_t undue_from;
	/* the worker's thread only */
	struct de_breaker br;
	struct de_buf payload;
	/* under m->mu: the breaker's state after the last attempt (for health and metrics) */
	enum de_breaker_state circuit;
	/* under m->mu: a delivery failed and waits for its retry, so the worker
	 * tries nothing newer (each fails at once, counted, as when the circuit
	 * is open) until the agent's thread, with nothing of this sink held any
	 * more, clears it in alertmgr_refill */
	bool blocked;
	/* the agent's thread only: outcomes recorded for this sink */
	uint64_t delivered, failed, dead;
	struct batch *batch; /* what deliver_batch gets (sinks that have it) */
	bool had_retries;    /* the agent's thread: next_due was set when the poll began */
};

/*
 * What a worker takes from its queue at once, and hands to a sink's
 * deliver_batch as one attempt each while the circuit is closed; a batch
 * stops growing at BATCH_BYTES of rendered records.
 */
#define BATCH_MAX   256
#define BATCH_BYTES (1u << 20)
struct batch {
	struct item *items[BATCH_MAX];
	size_t off[BATCH_MAX], len[BATCH_MAX]; /* each record in the worker's payload */
	struct de_sink_msg msgs[BATCH_MAX];
	struct de_sink_result results[BATCH_MAX];
};

/* A window that closed with folds, waiting for its summary. */
struct closed_window {
	struct closed_window *next;
	char *key;
	char alert_id[DE_UUID_STR_LEN + 1];
	int64_t start_ms, last_ms;
	uint64_t folded;
};

/* A compiled rule: its exceptions, by index in the rule set. */
struct rule_ext {
	struct de_exception_set exceptions;
};

struct de_alertmgr {
	struct de_alertmgr_config *cfg;
	struct de_store *store;
	struct de_outbox *ob; /* the store's alerting relations */
	const struct de_rule_set *rules;
	struct rule_ext *ext; /* rules->len */
	struct de_dedup *dedup;
	struct closed_window *closed;
	struct worker *workers; /* cfg->nsinks */
	pthread_mutex_t mu;
	pthread_cond_t res_cv;
	struct item *results; /* outcomes waiting to be recorded (under mu) */
	atomic_bool stop;
	struct idset outstanding; /* this process's deliveries not final yet */
	uint64_t rng;
	struct de_alertmgr_stats st;
	bool any_resolved; /* some sink takes resolved alerts */
	json_t *host;	   /* every context's "host", one object shared (read only) */
	int64_t last_run;  /* the time of the last submit: each one's is later */
	/* recording outcomes failed (a full disk): not again before this
	 * (monotonic ms), waiting longer each time up to 30 s, so a store that
	 * cannot be written is not hammered by the agent's event loop */
	int64_t record_after;
	int64_t record_backoff;
	/* alertmgr_record_all's arrays, kept from poll to poll (rec_cap each) */
	int64_t *rec_ids;
	uint32_t *rec_att;
	size_t rec_cap;
	struct de_alertmgr_observer obs; /* told what was committed (zero: nobody) */
};

/* ---- alertmgr_worker.c ------------------------------------------------------------ */

/* Drop a reference to sa; the last one frees it. */
void alertmgr_sa_unref(struct shared_alert *sa);
/* The id sets: membership, add (-ENOMEM), delete (whether it was there), free. */
bool alertmgr_idset_has(const struct idset *s, int64_t id);
int alertmgr_idset_add(struct idset *s, int64_t id);
bool alertmgr_idset_del(struct idset *s, int64_t id);
void alertmgr_idset_free(struct idset *s);
/* A sink's worker thread (arg: its struct worker), until m->stop. */
void *alertmgr_worker_main(void *arg);
/* Stage delivery id of sa (a reference taken) for w; alertmgr_publish hands it over. -ENOMEM. */
int alertmgr_enqueue(struct worker *w, int64_t id, uint32_t attempts, struct shared_alert *sa);
/* Hand every worker what was staged for it, under one lock. */
void alertmgr_publish(struct de_alertmgr *m);
/* Whether w holds fewer deliveries than max_queue_size. */
bool alertmgr_has_room(const struct worker *w);
/* Free a list of items and their alerts' references. */
void alertmgr_free_items(struct item *it);
/* Record the outcomes res (a list) in the open transaction; it->final set on each. */
int alertmgr_record_all(struct de_alertmgr *m, struct item *res, int64_t now, struct de_error *err);
/* Queue w's due rows from the store, up to its room. */
int alertmgr_refill(struct de_alertmgr *m, struct worker *w, int64_t now, struct de_error *err);

#pragma GCC visibility pop

#endif
