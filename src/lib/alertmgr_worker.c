/*
 * alertmgr_worker.c — the AlertManager's deliveries (see alertmgr_int.h
 * and alertmgr.c's purpose paragraph for the threads and the bookkeeping).
 *
 * Each sink has a worker thread that takes what its queue holds, renders
 * each alert in the sink's format, asks its circuit breaker and makes one
 * attempt per delivery (all of them in one deliver_batch call for a sink
 * that has it, while the circuit is closed), then hands the outcomes back
 * to the agent's thread, which records them in the outbox
 * (alertmgr_record_all) and refills the queues from the store's due rows
 * (alertmgr_refill).  The agent's thread stages deliveries per worker and
 * publishes a commit's worth under one lock and one wake-up.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alertmgr_int.h"
#include "daemoneye/clock.h"

void alertmgr_sa_unref(struct shared_alert *sa)
{
	if (sa && atomic_fetch_sub(&sa->refs, 1) == 1) {
		de_alert_clear(&sa->a);
		free(sa->json);
		free(sa);
	}
}

/* The format options of a delivery of sa through s. */
static struct de_alertfmt_opts fmt_opts(const struct de_alert_sink *s,
					const struct shared_alert *sa)
{
	return (struct de_alertfmt_opts){.color = s->color, .json = sa->json ? &sa->jt : NULL};
}

static size_t id_slot(int64_t id, size_t cap)
{
	uint64_t h = (uint64_t)id * 0x9e3779b97f4a7c15ULL;
	return (size_t)(h >> 20) & (cap - 1);
}

bool alertmgr_idset_has(const struct idset *s, int64_t id)
{
	if (!s->cap)
		return false;
	for (size_t i = id_slot(id, s->cap);; i = (i + 1) & (s->cap - 1)) {
		if (s->v[i] == 0)
			return false;
		if (s->v[i] == id)
			return true;
	}
}

int alertmgr_idset_add(struct idset *s, int64_t id)
{
	if ((s->used + 1) * 2 > s->cap) { /* rehash: bigger, and without tombstones */
		size_t nc = 64;
		while ((s->len + 1) * 4 > nc)
			nc *= 2;
		int64_t *nv = calloc(nc, sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		for (size_t i = 0; i < s->cap; i++)
			if (s->v[i] > 0)
				for (size_t k = id_slot(s->v[i], nc);; k = (k + 1) & (nc - 1))
					if (!nv[k]) {
						nv[k] = s->v[i];
						break;
					}
		free(s->v);
		s->v = nv;
		s->cap = nc;
		s->used = s->len;
	}
	for (size_t i = id_slot(id, s->cap);; i = (i + 1) & (s->cap - 1)) {
		if (s->v[i] == id)
			return 0;
		if (s->v[i] == 0) {
			s->v[i] = id;
			s->len++;
			s->used++;
			return 0;
		}
	}
}

bool alertmgr_idset_del(struct idset *s, int64_t id)
{
	if (!s->cap)
		return false;
	for (size_t i = id_slot(id, s->cap);; i = (i + 1) & (s->cap - 1)) {
		if (s->v[i] == 0)
			return false;
		if (s->v[i] == id) {
			s->v[i] = -1;
			s->len--;
			return true;
		}
	}
}

void alertmgr_idset_free(struct idset *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ULL;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* ---- workers ---------------------------------------------------------------------- */

/* The outcome of one attempt in r, for the item and the circuit breaker. */
static void outcome(struct worker *w, struct item *it, const struct de_sink_result *r)
{
	it->outcome = r->outcome;
	if (r->outcome == DE_SINK_OK)
		it->error[0] = '\0';
	else
		snprintf(it->error, sizeof(it->error), "%s", r->error);
	/* a sink that answered (even "no") is up; only transient failures trip it */
	if (r->outcome == DE_SINK_TRANSIENT)
		de_breaker_failure(&w->br, de_mono_ms());
	else
		de_breaker_success(&w->br);
}

static void attempt(struct worker *w, struct item *it)
{
	struct de_alert_sink *s = w->sink;
	struct de_alertfmt_opts fo = fmt_opts(s, it->sa);
	struct de_sink_result r = {0};
	int64_t now = de_mono_ms();
	int rc;

	it->attempts++;
	de_buf_reset(&w->payload);
	if ((rc = de_alertfmt_render(s->format, &it->sa->a, &fo, &w->payload)) < 0) {
		it->outcome = DE_SINK_PERMANENT;
		snprintf(it->error, sizeof(it->error), "cannot render the alert as %s: %s",
			 de_alertfmt_name(s->format), strerror(-rc));
		return;
	}
	if (!de_breaker_allow(&w->br, now)) {
		it->outcome = DE_SINK_TRANSIENT;
		it->circuit = true;
		snprintf(it->error, sizeof(it->error),
			 "circuit open after %u consecutive failures; next probe in %lld ms",
			 w->br.failures, (long long)(de_breaker_next_probe(&w->br) - now));
		return;
	}
	struct de_sink_msg msg = {
		.alert = &it->sa->a,
		.alert_id = it->sa->id,
		.payload = w->payload.p,
		.len = w->payload.len,
		.attempt = it->attempts,
		.timeout_ms = s->timeout_ms,
		.stop = &w->m->stop,
	};
	s->ops->deliver(s->state, &msg, &r);
	outcome(w, it, &r);
}

/*
 * Attempts at items[0..n) through the sink's deliver_batch, rendered one
 * after the other into the worker's payload (a record that cannot be
 * rendered fails alone), in as many batches as BATCH_BYTES makes.
 */
static void attempt_batch(struct worker *w, struct item **items, size_t n)
{
	struct de_alert_sink *s = w->sink;
	struct batch *b = w->batch;

	for (size_t i = 0; i < n;) {
		size_t k = 0;
		de_buf_reset(&w->payload);
		while (i < n && k < BATCH_MAX && w->payload.len < BATCH_BYTES) {
			struct item *it = items[i++];
			size_t off = w->payload.len;
			struct de_alertfmt_opts fo = fmt_opts(s, it->sa);
			int rc = de_alertfmt_render(s->format, &it->sa->a, &fo, &w->payload);
			it->attempts++;
			if (rc < 0) {
				w->payload.len = off; /* drop what it wrote */
				if (w->payload.p)
					w->payload.p[off] = '\0';
				it->outcome = DE_SINK_PERMANENT;
				snprintf(it->error, sizeof(it->error),
					 "cannot render the alert as %s: %s",
					 de_alertfmt_name(s->format), strerror(-rc));
				continue;
			}
			b->items[k] = it;
			b->off[k] = off;
			b->len[k++] = w->payload.len - off;
		}
		for (size_t j = 0; j < k; j++) {
			b->msgs[j] = (struct de_sink_msg){
				.alert = &b->items[j]->sa->a,
				.alert_id = b->items[j]->sa->id,
				.payload = w->payload.p + b->off[j],
				.len = b->len[j],
				.attempt = b->items[j]->attempts,
				.timeout_ms = s->timeout_ms,
				.stop = &w->m->stop,
			};
			b->results[j] = (struct de_sink_result){0};
		}
		if (k)
			s->ops->deliver_batch(s->state, b->msgs, k, b->results);
		for (size_t j = 0; j < k; j++)
			outcome(w, b->items[j], &b->results[j]);
	}
}

/*
 * Not tried: an earlier delivery to the same sink failed (why), and this one
 * must not overtake it.  It fails at once and counts as an attempt, as when
 * the circuit is open, so that it is retried (and given up) as it would have
 * been had it been tried.
 */
static void defer(struct item *it, const char *why)
{
	it->attempts++;
	it->outcome = DE_SINK_TRANSIENT;
	snprintf(it->error, sizeof(it->error), "not tried after an earlier failure: %.400s", why);
}

void *alertmgr_worker_main(void *arg)
{
	struct worker *w = arg;
	struct de_alertmgr *m = w->m;
	struct item *items[BATCH_MAX];

	for (;;) {
		size_t n = 0;
		pthread_mutex_lock(&m->mu);
		while (!atomic_load(&m->stop) && !w->head)
			pthread_cond_wait(&w->cv, &m->mu);
		if (atomic_load(&m->stop) || !w->head) { /* (no head: stopping) */
			pthread_mutex_unlock(&m->mu);
			break;
		}
		/* one at a time unless the sink takes batches and its circuit is closed */
		do {
			items[n++] = w->head;
			w->head = w->head->next;
		} while (w->head && w->batch && n < BATCH_MAX);
		if (!w->head)
			w->tail = NULL;
		w->qlen -= n;
		bool blocked = w->blocked;
		pthread_mutex_unlock(&m->mu);
		const char *why = "a delivery waits for its retry";

		/* in order: nothing is attempted after a transient failure (it
		 * would overtake the failed one); the agent's thread records those
		 * as deferred and they come back, in order, once the retry is due */
		if (!blocked && n > 1 && w->br.state == DE_BREAKER_CLOSED) {
			attempt_batch(w, items, n);
			for (size_t i = 0; i < n; i++)
				blocked |= items[i]->outcome == DE_SINK_TRANSIENT;
		} else {
			for (size_t i = 0; i < n; i++) {
				if (blocked) {
					defer(items[i], why);
					continue;
				}
				attempt(w, items[i]);
				blocked = items[i]->outcome == DE_SINK_TRANSIENT;
				why = items[i]->error;
			}
		}
		/* the outcome no longer needs the alert (a retry reloads it from the
		 * store): let it go while it is still in this core's cache */
		for (size_t i = 0; i < n; i++) {
			if (items[i]->sa)
				memcpy(items[i]->alert_id, items[i]->sa->id,
				       sizeof(items[i]->alert_id));
			alertmgr_sa_unref(items[i]->sa);
			items[i]->sa = NULL;
		}

		pthread_mutex_lock(&m->mu);
		w->circuit = w->br.state;
		w->blocked |= blocked;
		for (size_t i = 0; i < n; i++) {
			items[i]->next = m->results;
			m->results = items[i];
		}
		pthread_cond_signal(&m->res_cv);
		pthread_mutex_unlock(&m->mu);
	}
	return NULL;
}

/* Stage delivery id of sa for w (the agent's thread; alertmgr_publish() hands it over). */
int alertmgr_enqueue(struct worker *w, int64_t id, uint32_t attempts, struct shared_alert *sa)
{
	struct item *it = calloc(1, sizeof(*it));

	if (!it || alertmgr_idset_add(&w->held, id) < 0) {
		free(it);
		w->more = true; /* it waits in the store */
		return -ENOMEM;
	}
	it->w = w;
	it->delivery_id = id;
	it->attempts = attempts;
	it->sa = sa;
	atomic_fetch_add(&sa->refs, 1);
	if (w->stage_tail)
		w->stage_tail->next = it;
	else
		w->stage = it;
	w->stage_tail = it;
	w->nstage++;
	return 0;
}

/*
 * Hand every worker what was staged for it: one lock and one wake-up for a
 * whole commit's deliveries, so a worker finds them together (one write
 * for the file sink) instead of racing the agent's thread for each.
 */
void alertmgr_publish(struct de_alertmgr *m)
{
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < m->cfg->nsinks; i++) {
		struct worker *w = &m->workers[i];
		if (!w->stage)
			continue;
		if (w->tail)
			w->tail->next = w->stage;
		else
			w->head = w->stage;
		w->tail = w->stage_tail;
		w->qlen += w->nstage;
		w->stage = w->stage_tail = NULL;
		w->nstage = 0;
		pthread_cond_signal(&w->cv);
	}
	pthread_mutex_unlock(&m->mu);
}

bool alertmgr_has_room(const struct worker *w)
{
	return w->held.len < w->m->cfg->max_queue_size;
}

void alertmgr_free_items(struct item *it)
{
	while (it) {
		struct item *n = it->next;
		alertmgr_sa_unref(it->sa);
		free(it);
		it = n;
	}
}

/* ---- outcomes and refills ----------------------------------------------------------- */

/* Record one outcome; *final when the delivery is done (delivered or dead). */
static int record(struct de_alertmgr *m, struct item *it, int64_t now, bool *final,
		  struct de_error *err)
{
	enum de_outbox_status st = DE_OUTBOX_PENDING;
	int64_t next = 0;
	char msg[640];

	*final = true;
	snprintf(msg, sizeof(msg), "%s", it->error);
	if (it->outcome == DE_SINK_OK) {
		st = DE_OUTBOX_DELIVERED;
		m->st.delivered++;
		it->w->delivered++;
	} else if (it->outcome == DE_SINK_PERMANENT) {
		st = DE_OUTBOX_DEAD;
		m->st.attempts_failed++;
		m->st.dead++;
		it->w->failed++;
		it->w->dead++;
	} else if (de_retry_exhausted(&m->cfg->retry, it->attempts)) {
		st = DE_OUTBOX_DEAD;
		m->st.attempts_failed++;
		m->st.dead++;
		it->w->failed++;
		it->w->dead++;
		snprintf(msg, sizeof(msg), "gave up after %u attempts: %s", it->attempts,
			 it->error);
	} else {
		*final = false;
		m->st.attempts_failed++;
		it->w->failed++;
		next = now +
		       (int64_t)de_retry_delay(&m->cfg->retry, it->attempts, xorshift(&m->rng));
		if (!it->w->next_due || next < it->w->next_due)
			it->w->next_due = next;
	}
	return de_outbox_record(m->ob, it->delivery_id, st, it->attempts, now, next,
				st == DE_OUTBOX_DELIVERED ? NULL : msg, err);
}

/* Record the outcomes res (a list): the deliveries together, each failure alone. */
int alertmgr_record_all(struct de_alertmgr *m, struct item *res, int64_t now, struct de_error *err)
{
	size_t n = 0, k = 0;
	int64_t *ids;
	uint32_t *att;
	int rc = 0;

	for (struct item *it = res; it; it = it->next)
		n += it->outcome == DE_SINK_OK;
	if (n > m->rec_cap) { /* kept from poll to poll */
		int64_t *ni = realloc(m->rec_ids, n * sizeof(*ni));
		if (ni)
			m->rec_ids = ni;
		uint32_t *na = ni ? realloc(m->rec_att, n * sizeof(*na)) : NULL;
		if (!na)
			return de_error_set(err, DE_ERR_ALERTING, ENOMEM, "out of memory");
		m->rec_att = na;
		m->rec_cap = n;
	}
	ids = m->rec_ids;
	att = m->rec_att;
	for (size_t i = 0; i < m->cfg->nsinks; i++)
		m->workers[i].had_retries = m->workers[i].next_due != 0;
	for (struct item *it = res; it && rc == 0; it = it->next) {
		bool final = true;
		if (it->outcome == DE_SINK_OK) {
			ids[k] = it->delivery_id;
			att[k++] = it->attempts;
			m->st.delivered++;
			it->w->delivered++;
			/* it answers again: what waits for a retry goes now, in order */
			if (it->w->had_retries) {
				it->w->had_retries = false;
				if ((rc = de_outbox_resume(m->ob, it->w->sink->name, now, err)) ==
				    0)
					it->w->next_due = now;
			}
		} else {
			rc = record(m, it, now, &final, err);
		}
		it->final = final;
	}
	if (rc == 0 && k)
		rc = de_outbox_record_delivered(m->ob, ids, att, k, now, err);
	return rc;
}

struct refill_ctx {
	struct de_alertmgr *m;
	struct worker *w;
	struct shared_alert *last; /* consecutive rows of one alert share it */
	int rc;
	struct de_error *err;
};

static bool is_held(int64_t id, void *arg)
{
	return alertmgr_idset_has(&((struct refill_ctx *)arg)->w->held, id);
}

static int refill_row(const struct de_delivery_row *r, void *arg)
{
	struct refill_ctx *x = arg;
	struct shared_alert *sa = x->last;

	if (!sa || strcmp(sa->id, r->alert_id) != 0) {
		if (!(sa = calloc(1, sizeof(*sa))))
			return -ENOMEM;
		atomic_init(&sa->refs, 1);
		if (de_outbox_alert_load(x->m->ob, r->alert_id, &sa->a, x->err) < 0) {
			free(sa);
			return 0; /* its alert is gone: nothing to deliver (recorded below) */
		}
		snprintf(sa->id, sizeof(sa->id), "%s", r->alert_id);
		alertmgr_sa_unref(x->last);
		x->last = sa;
	}
	if (alertmgr_enqueue(x->w, r->id, r->attempts, sa) < 0)
		return -ENOMEM;
	return 0;
}

int alertmgr_refill(struct de_alertmgr *m, struct worker *w, int64_t now, struct de_error *err)
{
	size_t room =
		m->cfg->max_queue_size > w->held.len ? m->cfg->max_queue_size - w->held.len : 0;
	struct refill_ctx x = {.m = m, .w = w, .err = err};
	int64_t next = 0;
	int rc;

	if (w->undue_from) { /* new rows the worker did not take: due now, in order */
		if ((rc = de_outbox_make_due(m->ob, w->sink->name, w->undue_from, now, err)) < 0)
			return rc;
		w->undue_from = 0;
		w->more = true;
	}
	if (!w->held.len) { /* every outcome recorded: the order is the store's again */
		pthread_mutex_lock(&m->mu);
		w->blocked = false;
		pthread_mutex_unlock(&m->mu);
	}
	if (!room || (!w->more && (!w->next_due || w->next_due > now)))
		return 0;
	rc = de_outbox_due(m->ob, w->sink->name, now, room, is_held, refill_row, &x, &next, err);
	alertmgr_publish(m);
	alertmgr_sa_unref(x.last);
	if (rc < 0)
		return rc;
	w->more = w->held.len >= m->cfg->max_queue_size; /* full: more may wait */
	w->next_due = next;
	return 0;
}
