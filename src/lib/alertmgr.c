/*
 * alertmgr.c — the AlertManager (see alertmgr.h for what happens to an
 * alert, in order).
 *
 * Threads.  The agent's thread calls everything here and is the only one
 * that touches the store.  Each sink has a worker thread that takes queued
 * deliveries, renders the alert in the sink's format, asks its circuit
 * breaker, makes one attempt and hands the outcome back; a sink with
 * deliver_batch gets what its queue holds at once (up to BATCH_MAX) in one
 * call while its circuit is closed, one attempt each.  One mutex guards
 * the queues and the list of outcomes; a queued item carries a shared,
 * reference-counted alert that nobody modifies once queued (jansson's
 * reference counts are atomic, and rendering only reads).
 *
 * Bookkeeping.  A delivery is in exactly one place: a row in the store
 * (pending, due at next_attempt_at), or also in memory, queued or in flight
 * ("held" by its worker, so the store is not asked for it twice).  A new
 * delivery handed straight to its worker is committed without a due time
 * (next_attempt_at NULL: outside the store's due index, so neither its
 * insert nor its delivered update touches that index); one its worker
 * could not take is made due in the store at the next poll
 * (de_outbox_make_due), and what a killed run had in hand is made due when
 * the next one opens (de_outbox_recover).  An
 * outcome is recorded in the store before the delivery stops being held;
 * retries go back to the store with their due time and are loaded again
 * when due, so the memory held is bounded by max_queue_size per sink
 * whatever the backlog.  A crash loses only the outcomes not yet recorded:
 * those deliveries are still pending and are made again (at least once).
 *
 * The workers, their queues, recording outcomes and refilling the queues
 * from the store are in alertmgr_worker.c (alertmgr_int.h).
 */
#include "daemoneye/alertmgr.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "daemoneye/clock.h"
#include "daemoneye/dedup.h"
#include "daemoneye/outbox.h"
#include "daemoneye/text.h"
#include "alertmgr_int.h"
#include "fields.h"

/* Keep the JSON text the outbox just stored for sa (none if out of memory: it is dumped again). */
static void sa_keep_json(struct shared_alert *sa, const struct de_outbox *ob)
{
	struct de_alert_json_text t;
	size_t dl, cl;

	de_outbox_added_json(ob, &t);
	dl = t.alert_data ? t.alert_data_len : 0;
	cl = t.context ? t.context_len : 0;
	if (!(sa->json = malloc(dl + cl + 1)))
		return;
	if (dl)
		memcpy(sa->json, t.alert_data, dl);
	if (cl)
		memcpy(sa->json + dl, t.context, cl);
	sa->json[dl + cl] = '\0';
	sa->jt = (struct de_alert_json_text){
		.alert_data = t.alert_data ? sa->json : NULL,
		.alert_data_len = dl,
		.context = t.context ? sa->json + dl : NULL,
		.context_len = cl,
	};
}

static const struct de_rule *rule_find(const struct de_alertmgr *m, const char *id, size_t *idx)
{
	for (size_t i = 0; m->rules && id && i < m->rules->len; i++)
		if (strcmp(m->rules->items[i].id, id) == 0) {
			if (idx)
				*idx = i;
			return &m->rules->items[i];
		}
	return NULL;
}

/* ---- open and close ---------------------------------------------------------------- */

static void on_window_closed(const struct de_dedup_window *win, void *arg)
{
	struct de_alertmgr *m = arg;
	struct closed_window *c = calloc(1, sizeof(*c));

	if (!c || !(c->key = strdup(win->key))) {
		free(c);
		return; /* the window's row stays; the summary is made at the next start */
	}
	snprintf(c->alert_id, sizeof(c->alert_id), "%s", win->alert_id);
	c->start_ms = win->start_ms;
	c->last_ms = win->last_ms;
	c->folded = win->folded;
	c->next = m->closed;
	m->closed = c;
}

static int load_window(const char *key, const char *alert_id, int64_t start_ms, int64_t end_ms,
		       uint64_t folded, int64_t last_ms, void *arg)
{
	struct de_alertmgr *m = arg;
	struct de_dedup_window w = {.key = key,
				    .start_ms = start_ms,
				    .end_ms = end_ms,
				    .folded = folded,
				    .last_ms = last_ms};

	snprintf(w.alert_id, sizeof(w.alert_id), "%s", alert_id ? alert_id : "");
	return de_dedup_restore(m->dedup, &w);
}

/* (Re)build the deduplication windows from the store. */
static int load_windows(struct de_alertmgr *m, struct de_error *err)
{
	de_dedup_free(m->dedup);
	m->dedup = NULL;
	if (!m->cfg->dedup.enabled)
		return 0;
	if (de_dedup_new(m->cfg->dedup.window_ms, 0, on_window_closed, m, &m->dedup) < 0)
		return de_error_set(err, DE_ERR_ALERTING, ENOMEM, "out of memory");
	return de_outbox_windows(m->ob, load_window, m, err);
}

int de_alertmgr_open(struct de_alertmgr_config *cfg, struct de_store *store,
		     const struct de_rule_set *rules, struct de_alertmgr **out,
		     struct de_error *err)
{
	struct de_alertmgr *m = calloc(1, sizeof(*m));
	int rc;

	if (!m) {
		de_alertmgr_config_free(cfg);
		return de_error_set(err, DE_ERR_ALERTING, ENOMEM, "out of memory");
	}
	m->cfg = cfg;
	m->store = store;
	m->rules = rules;
	atomic_init(&m->stop, false);
	pthread_mutex_init(&m->mu, NULL);
	de_cond_init_mono(&m->res_cv);
	if (getrandom(&m->rng, sizeof(m->rng), 0) != sizeof(m->rng))
		m->rng = (uint64_t)de_now_ms();
	if (!(m->host = json_pack("{s:s}", "hostname", de_alertfmt_hostname()))) {
		rc = de_error_set(err, DE_ERR_ALERTING, ENOMEM, "out of memory");
		goto fail;
	}
	if ((rc = de_outbox_open(store, &m->ob, err)) < 0)
		goto fail;
	/* what an earlier run had handed to its workers and not recorded
	 * (killed, or closed first) is due now, before anything new */
	size_t recovered;
	if ((rc = de_outbox_recover(m->ob, de_now_ms(), &recovered, err)) < 0)
		goto fail;
	/* the rules' own exceptions, checked again (they were at load) */
	if (rules && rules->len && !(m->ext = calloc(rules->len, sizeof(*m->ext)))) {
		rc = de_error_set(err, DE_ERR_ALERTING, ENOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0; rules && i < rules->len; i++) {
		char label[128];
		snprintf(label, sizeof(label), "rule %s exceptions", rules->items[i].id);
		if ((rc = de_exceptions_parse(rules->items[i].exceptions, "exceptions", NULL,
					      rules->origins[i], label, false, DE_ERR_ALERTING,
					      &m->ext[i].exceptions, err)) < 0)
			goto fail;
	}
	if ((rc = load_windows(m, err)) < 0)
		goto fail;
	if (cfg->nsinks && !(m->workers = calloc(cfg->nsinks, sizeof(*m->workers)))) {
		rc = de_error_set(err, DE_ERR_ALERTING, ENOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < cfg->nsinks; i++) {
		struct worker *w = &m->workers[i];
		struct de_alert_sink *s = &cfg->sinks[i];
		w->m = m;
		w->sink = s;
		/* pick up what an earlier run left pending (recovered above
		 * included); with nothing left, new alerts go straight to the worker */
		size_t left = 0;
		if ((rc = de_outbox_pending(m->ob, s->name, &left, err)) < 0)
			goto fail;
		w->more = left > 0;
		w->payload = (struct de_buf)DE_BUF_INIT(64u << 20);
		if (s->ops->deliver_batch && !(w->batch = calloc(1, sizeof(*w->batch)))) {
			rc = de_error_set(err, DE_ERR_ALERTING, ENOMEM, "out of memory");
			goto fail;
		}
		pthread_cond_init(&w->cv, NULL);
		de_breaker_init(&w->br, cfg->breaker_threshold, cfg->breaker_reset_ms);
		m->any_resolved |= s->send_resolved;
		if (!s->opened) {
			if ((rc = s->ops->open(s->state, err)) < 0) {
				de_error_prefix(err, "sink '%s' (%s): ", s->name, s->origin);
				goto fail;
			}
			s->opened = true;
		}
		if (pthread_create(&w->th, NULL, alertmgr_worker_main, w) != 0) {
			rc = de_error_set(err, DE_ERR_ALERTING, EAGAIN,
					  "cannot start the worker of sink '%s'", s->name);
			goto fail;
		}
		w->started = true;
	}
	*out = m;
	return 0;
fail:
	de_alertmgr_close(m);
	return rc;
}

void de_alertmgr_close(struct de_alertmgr *m)
{
	if (!m)
		return;
	atomic_store(&m->stop, true);
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; m->workers && i < m->cfg->nsinks; i++)
		pthread_cond_broadcast(&m->workers[i].cv);
	pthread_mutex_unlock(&m->mu);
	for (size_t i = 0; m->workers && i < m->cfg->nsinks; i++) {
		struct worker *w = &m->workers[i];
		if (w->started)
			pthread_join(w->th, NULL);
		alertmgr_free_items(w->head);
		alertmgr_free_items(w->stage);
		pthread_cond_destroy(&w->cv);
		alertmgr_idset_free(&w->held);
		de_buf_free(&w->payload);
		free(w->batch);
	}
	/* outcomes not recorded: their rows stay pending, delivered again next run */
	alertmgr_free_items(m->results);
	free(m->workers);
	for (struct closed_window *c = m->closed, *n; c; c = n) {
		n = c->next;
		free(c->key);
		free(c);
	}
	for (size_t i = 0; m->ext && m->rules && i < m->rules->len; i++)
		de_exception_set_clear(&m->ext[i].exceptions);
	free(m->ext);
	de_dedup_free(m->dedup);
	de_outbox_close(m->ob);
	json_decref(m->host);
	alertmgr_idset_free(&m->outstanding);
	free(m->rec_ids);
	free(m->rec_att);
	pthread_cond_destroy(&m->res_cv);
	pthread_mutex_destroy(&m->mu);
	de_alertmgr_config_free(m->cfg);
	free(m);
}

void de_alertmgr_set_observer(struct de_alertmgr *m, const struct de_alertmgr_observer *o)
{
	struct de_alertmgr_observer none = {0};

	m->obs = o ? *o : none;
}

void de_alertmgr_reopen(struct de_alertmgr *m)
{
	for (size_t i = 0; i < m->cfg->nsinks; i++)
		if (m->cfg->sinks[i].ops->reopen)
			m->cfg->sinks[i].ops->reopen(m->cfg->sinks[i].state);
}

void de_alertmgr_get_stats(const struct de_alertmgr *m, struct de_alertmgr_stats *out)
{
	*out = m->st;
	out->dedup_windows = m->dedup ? de_dedup_len(m->dedup) : 0;
	out->outstanding = m->outstanding.len;
}

size_t de_alertmgr_nsinks(const struct de_alertmgr *m)
{
	return m ? m->cfg->nsinks : 0;
}

struct dead_count {
	const char *sink;
	size_t n;
};

static int count_dead(const struct de_delivery_row *r, void *arg)
{
	struct dead_count *c = arg;
	if (strcmp(r->sink, c->sink) == 0)
		c->n++;
	return 0;
}

int de_alertmgr_sink_status(struct de_alertmgr *m, size_t i, struct de_alertmgr_sink_status *out,
			    struct de_error *err)
{
	struct worker *w;
	struct dead_count dc;
	size_t pending = 0;
	int rc;

	if (!m || i >= m->cfg->nsinks)
		return de_error_set(err, DE_ERR_ALERTING, EINVAL, "no sink %zu", i);
	w = &m->workers[i];
	dc = (struct dead_count){w->sink->name, 0};
	if ((rc = de_outbox_pending(m->ob, w->sink->name, &pending, err)) < 0 ||
	    (rc = de_outbox_deliveries(m->ob, NULL, true, count_dead, &dc, err)) < 0)
		return rc;
	memset(out, 0, sizeof(*out));
	out->name = w->sink->name;
	pthread_mutex_lock(&m->mu);
	out->circuit = w->circuit;
	out->queued = w->qlen;
	pthread_mutex_unlock(&m->mu);
	out->pending = pending;
	out->dead_letters = dc.n;
	out->delivered = w->delivered;
	out->failed = w->failed;
	out->dead = w->dead;
	return 0;
}

/* ---- raising alerts ---------------------------------------------------------------- */

/* A subject with its own copies of the strings. */
struct subj {
	struct de_subject p;
	char *strs[7];
	bool found;
	bool keep;
	char key[96]; /* the state's subject key */
};

static void subj_clear(struct subj *s)
{
	for (int i = 0; i < 7; i++)
		free(s->strs[i]);
	memset(s, 0, sizeof(*s));
}

static int subj_load(struct de_alertmgr *m, uint32_t pid, struct subj *s, struct de_error *err)
{
	struct de_subject p;
	bool found = false;
	int rc = de_outbox_subject(m->ob, pid, &p, &found, err);
	const char **fields[7] = {
		&s->p.name,    &s->p.executable_path, &s->p.command_line,
		&s->p.user_id, &s->p.parent_name,     &s->p.parent_executable_path,
		NULL};

	memset(s, 0, sizeof(*s));
	if (rc < 0)
		return rc;
	s->p = found ? p : (struct de_subject){.pid = pid};
	s->found = found;
	for (int i = 0; fields[i]; i++) {
		if (!*fields[i])
			continue;
		if (!(s->strs[i] = strdup(*fields[i])))
			return de_error_set(err, DE_ERR_ALERTING, ENOMEM, "out of memory");
		*fields[i] = s->strs[i];
	}
	if (s->p.instance_id > 0)
		snprintf(s->key, sizeof(s->key), "i:%lld", (long long)s->p.instance_id);
	else
		snprintf(s->key, sizeof(s->key), "p:%u", pid);
	return 0;
}

/* A subject's process as JSON for the alert's context (valid UTF-8 throughout). */
static json_t *subj_json(const struct subj *s)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "pid", json_integer(s->p.pid));
	if (!s->found)
		return o;
	if (s->p.has_start_time)
		json_object_set_new(o, "start_time", json_integer(s->p.start_time));
	json_object_set_new(o, "instance_id", json_integer(s->p.instance_id));
	json_object_set_new(o, "name", de_json_lossy(s->p.name));
	if (s->p.executable_path)
		json_object_set_new(o, "executable_path", de_json_lossy(s->p.executable_path));
	json_object_set_new(o, "command_line", de_json_lossy(s->p.command_line));
	if (s->p.user_id)
		json_object_set_new(o, "user_id", de_json_lossy(s->p.user_id));
	if (s->p.has_ppid)
		json_object_set_new(o, "ppid", json_integer(s->p.ppid));
	if (s->p.parent_name)
		json_object_set_new(o, "parent_name", de_json_lossy(s->p.parent_name));
	if (s->p.parent_executable_path)
		json_object_set_new(o, "parent_executable_path",
				    de_json_lossy(s->p.parent_executable_path));
	return o;
}

/* Keep only the kept subjects' pids and rows in a. */
static void narrow(struct de_alert *a, const struct subj *ss, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (ss[i].keep)
			a->affected_processes[k++] = ss[i].p.pid;
	a->affected_processes_len = k;
	a->process_count = (int32_t)k;
	for (size_t i = json_array_size(a->alert_data); i > 0; i--) {
		const json_t *pid = json_object_get(json_array_get(a->alert_data, i - 1), "pid");
		bool keep = !json_is_integer(pid);
		for (size_t s = 0; !keep && s < n; s++)
			keep = ss[s].keep && json_integer_value(pid) == ss[s].p.pid;
		if (!keep)
			json_array_remove(a->alert_data, i - 1);
	}
}

/* What a submit will queue once committed. */
struct pending {
	struct pending *next;
	struct shared_alert *sa;
	size_t n;
	int64_t *ids; /* delivery row ids, n of them (after the struct, as widx) */
	size_t *widx; /* their workers */
};

static void pending_free(struct pending *p)
{
	while (p) {
		struct pending *n = p->next;
		alertmgr_sa_unref(p->sa);
		free(p);
		p = n;
	}
}

/*
 * Commit alert a (moved in) to the outbox: a delivery row per sink that
 * routes it.  Added to *pend for queueing after the commit.
 */
static int outbox(struct de_alertmgr *m, struct de_alert *a, const struct de_rule *rule,
		  struct pending **pend, struct de_alertmgr_counts *c, struct de_error *err)
{
	/* at most 64 sinks take one alert; the arrays go with the struct */
	size_t cap = m->cfg->nsinks < 64 ? (m->cfg->nsinks ? m->cfg->nsinks : 1) : 64;
	struct pending *p = malloc(sizeof(*p) + cap * (sizeof(int64_t) + sizeof(size_t)));
	struct shared_alert *sa = calloc(1, sizeof(*sa));
	const char *names[64];
	int rc;

	if (!p || !sa) {
		free(p);
		free(sa);
		de_alert_clear(a);
		return de_error_set(err, DE_ERR_ALERTING, ENOMEM, "out of memory");
	}
	*p = (struct pending){.ids = (int64_t *)(void *)(p + 1)};
	p->widx = (size_t *)(void *)(p->ids + cap);
	sa->a = *a;
	memset(a, 0, sizeof(*a));
	atomic_init(&sa->refs, 1);
	de_uuid_format(&sa->a.id, sa->id);
	p->sa = sa;
	for (size_t i = 0; i < m->cfg->nsinks && p->n < cap; i++)
		if (de_alert_sink_routes(&m->cfg->sinks[i], &sa->a, rule)) {
			p->widx[p->n] = i;
			names[p->n++] = m->cfg->sinks[i].name;
		}
	if ((rc = de_outbox_add(m->ob, &sa->a, names, p->n, p->ids, err)) < 0) {
		pending_free(p);
		return rc;
	}
	sa_keep_json(sa, m->ob);
	c->raised++;
	c->deliveries += p->n;
	p->next = *pend;
	*pend = p;
	return 0;
}

/* The context every raised alert carries: host, rule, processes. */
static json_t *make_context(json_t *host, const struct de_rule *rule, const struct subj *ss,
			    size_t n)
{
	json_t *ctx = json_object(), *procs = json_array(), *r = json_object();

	if (!ctx || !procs || !r) {
		json_decref(ctx);
		json_decref(procs);
		json_decref(r);
		return NULL;
	}
	json_object_set(ctx, "host", host);
	if (rule && rule->category)
		json_object_set_new(r, "category", de_json_lossy(rule->category));
	if (rule && rule->tags_len) {
		json_t *tags = json_array();
		for (size_t i = 0; tags && i < rule->tags_len; i++)
			json_array_append_new(tags, de_json_lossy(rule->tags[i]));
		json_object_set_new(r, "tags", tags);
	}
	json_object_set_new(ctx, "rule", r);
	for (size_t i = 0; i < n && json_array_size(procs) < DE_DETECT_MAX_ROWS; i++)
		if (ss[i].keep)
			json_array_append_new(procs, subj_json(&ss[i]));
	json_object_set_new(ctx, "processes", procs);
	return ctx;
}

/* One alert of a run: exceptions, state, deduplication, outbox. */
static int take_alert(struct de_alertmgr *m, struct de_alert *a, int64_t now, struct pending **pend,
		      struct de_alertmgr_counts *c, struct de_error *err)
{
	size_t idx = 0, n = a->affected_processes_len ? a->affected_processes_len : 1, kept = 0;
	const struct de_rule *rule = rule_find(m, a->rule_id, &idx);
	const struct de_exception_set *own = rule && m->ext ? &m->ext[idx].exceptions : NULL;
	struct subj *ss = calloc(n, sizeof(*ss));
	struct de_buf key = DE_BUF_INIT((size_t)64 * 1024);
	char id[DE_UUID_STR_LEN + 1];
	bool repeat = false;
	int rc = 0;

	if (!ss) {
		de_alert_clear(a);
		return de_error_set(err, DE_ERR_ALERTING, ENOMEM, "out of memory");
	}
	de_uuid_format(&a->id, id);
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct de_exception *x;
		int64_t sid = 0;
		if (a->affected_processes_len) {
			if ((rc = subj_load(m, a->affected_processes[i], &ss[i], err)) < 0)
				break;
		} else { /* rows without pids: the dedupe key is the subject */
			uint64_t h = 0xcbf29ce484222325ULL;
			for (const char *k = a->dedupe_key; k && *k; k++)
				h = (h ^ (unsigned char)*k) * 0x100000001b3ULL;
			snprintf(ss[i].key, sizeof(ss[i].key), "k:%016llx:%.60s",
				 (unsigned long long)h, a->dedupe_key ? a->dedupe_key : "");
		}
		if ((rc = de_outbox_state_open_id(m->ob, a->rule_id, ss[i].key, &sid, err)) < 0)
			break;
		if (sid) { /* the same instance again: one alert (or suppression) per event */
			rc = de_outbox_state_touch(m->ob, sid, now, err);
			repeat = true;
			continue;
		}
		if ((x = de_exceptions_match(&m->cfg->suppress, a->rule_id, &ss[i].p)) ||
		    (own && (x = de_exceptions_match(own, a->rule_id, &ss[i].p)))) {
			/* stored and counted once per instance, as an alert would be */
			if ((rc = de_outbox_state_open(m->ob, a->rule_id, ss[i].key, &ss[i].p, NULL,
						       now, err)) == 0)
				rc = de_outbox_suppressed_add(m->ob, now, a->rule_id, &ss[i].p, x,
							      NULL, err);
			c->suppressed++;
			continue;
		}
		ss[i].keep = true;
		kept++;
	}
	if (rc < 0 || kept == 0) {
		c->repeats += rc == 0 && repeat;
		goto out;
	}
	if (kept < n && a->affected_processes_len)
		narrow(a, ss, n);
	json_decref(a->context);
	if (!(a->context = make_context(m->host, rule, ss, n))) {
		rc = de_error_set(err, DE_ERR_ALERTING, ENOMEM, "out of memory");
		goto out;
	}
	if (m->dedup) {
		enum de_dedup_verdict v;
		struct de_dedup_window w;
		if ((rc = de_alertmgr_dedup_key(&m->cfg->dedup, a, rule, &key)) < 0 ||
		    (rc = de_dedup_check(m->dedup, key.p ? key.p : "", now, id, &v, &w)) < 0) {
			rc = de_error_set(err, DE_ERR_ALERTING, -rc, "out of memory");
			goto out;
		}
		/* a window is stored once it folds something: one without folds that a
		 * restart forgets can only cost an extra alert, never a lost one */
		if (v == DE_DEDUP_FOLD &&
		    (rc = de_outbox_window_put(m->ob, key.p ? key.p : "", w.alert_id, w.start_ms,
					       w.end_ms, w.folded, w.last_ms, err)) < 0)
			goto out;
		if (v == DE_DEDUP_FOLD) {
			for (size_t i = 0; i < n && rc == 0; i++)
				if (ss[i].keep &&
				    (rc = de_outbox_state_open(m->ob, a->rule_id, ss[i].key,
							       &ss[i].p, NULL, now, err)) == 0)
					rc = de_outbox_suppressed_add(m->ob, now, a->rule_id,
								      &ss[i].p, NULL, w.alert_id,
								      err);
			c->folded++;
			goto out;
		}
	}
	for (size_t i = 0; i < n && rc == 0; i++)
		if (ss[i].keep)
			rc = de_outbox_state_open(m->ob, a->rule_id, ss[i].key, &ss[i].p, id, now,
						  err);
	if (rc == 0)
		rc = outbox(m, a, rule, pend, c, err);
out:
	for (size_t i = 0; i < n; i++)
		subj_clear(&ss[i]);
	free(ss);
	de_buf_free(&key);
	de_alert_clear(a);
	return rc;
}

/* A new alert of `kind` made from stored alert orig_id (a summary, a resolution). */
static int derived_alert(struct de_alertmgr *m, const char *orig_id, const char *kind,
			 struct de_alert *out, struct de_error *err)
{
	struct de_alert o = {0};
	int rc = de_outbox_alert_load(m->ob, orig_id, &o, err);

	if (rc < 0)
		return rc;
	*out = o;
	out->alert_time = de_now_ms();
	de_uuid_v7(&out->id, out->alert_time);
	free(out->kind);
	out->kind = strdup(kind);
	if (!out->kind) {
		de_alert_clear(out);
		return de_error_set(err, DE_ERR_ALERTING, ENOMEM, "out of memory");
	}
	return 0;
}

/* Summaries of the windows that closed with folds. */
static int summarize(struct de_alertmgr *m, struct pending **pend, struct de_alertmgr_counts *c,
		     struct de_error *err)
{
	int rc = 0;

	while (m->closed && rc == 0) {
		struct closed_window *cw = m->closed;
		struct de_alert a;
		char ts[32], *t = NULL, *d = NULL;
		time_t lt = (time_t)(cw->last_ms / 1000);
		struct tm tm;
		uint64_t minutes = m->cfg->dedup.window_ms / 60000;

		m->closed = cw->next;
		gmtime_r(&lt, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
		rc = de_outbox_window_del(m->ob, cw->key, err);
		if (rc == 0 && derived_alert(m, cw->alert_id, "summary", &a, err) == 0) {
			if (asprintf(&t, "%s (%llu more in %llu minutes)", a.title,
				     (unsigned long long)cw->folded,
				     (unsigned long long)minutes) < 0)
				t = NULL;
			if (asprintf(&d,
				     "%llu more in %llu minutes, last at %s: repeats of alert %s "
				     "folded by deduplication (daemoneye-cli alerts list "
				     "--suppressed lists them)",
				     (unsigned long long)cw->folded, (unsigned long long)minutes,
				     ts, cw->alert_id) < 0)
				d = NULL;
			free(a.title);
			free(a.description);
			a.title = t;
			a.description = d;
			json_decref(a.context);
			a.context = json_pack(
				"{s:{s:I,s:I,s:I,s:I,s:s,s:s}}", "folded", "count",
				(json_int_t)cw->folded, "window_minutes", (json_int_t)minutes,
				"first", (json_int_t)cw->start_ms, "last", (json_int_t)cw->last_ms,
				"alert_id", cw->alert_id, "key", cw->key);
			free(a.affected_processes);
			a.affected_processes = NULL;
			a.affected_processes_len = 0;
			a.process_count = 0;
			json_array_clear(a.alert_data);
			if (!t || !d || !a.context) {
				de_alert_clear(&a);
				rc = de_error_set(err, DE_ERR_ALERTING, ENOMEM, "out of memory");
			} else {
				rc = outbox(m, &a, rule_find(m, a.rule_id, NULL), pend, c, err);
				c->summaries++;
			}
		}
		free(cw->key);
		free(cw);
	}
	return rc;
}

/* ---- resolution --------------------------------------------------------------------- */

struct open_state {
	int64_t id, instance_id;
	char *alert_id;
	uint32_t pid;
};

struct state_list {
	struct open_state *v;
	size_t n, cap;
	int64_t before; /* states not seen since (this run) */
};

static int collect_state(const struct de_state_row *r, void *arg)
{
	struct state_list *l = arg;

	if (r->last_seen >= l->before)
		return 0;
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 16;
		struct open_state *nv = realloc(l->v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = nc;
	}
	l->v[l->n] = (struct open_state){r->id, r->instance_id,
					 r->alert_id ? strdup(r->alert_id) : NULL, r->pid};
	l->n++;
	return 0;
}

static int resolve_rule(struct de_alertmgr *m, const struct de_rule *rule, int64_t now,
			struct pending **pend, struct de_alertmgr_counts *c, struct de_error *err)
{
	struct state_list l = {.before = now};
	int rc = de_outbox_states_open(m->ob, rule->id, collect_state, &l, err);

	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		bool live = false;
		const char *why;
		if (l.v[i].instance_id > 0 &&
		    (rc = de_outbox_instance_live(m->ob, l.v[i].instance_id, &live, err)) < 0)
			break;
		why = live ? "no longer matches" : "exited";
		if ((rc = de_outbox_state_resolve(m->ob, l.v[i].id, now, why, err)) < 0)
			break;
		c->resolved++;
		if (!m->any_resolved || !l.v[i].alert_id)
			continue;
		struct de_alert a;
		char *t = NULL, *d = NULL;
		if (derived_alert(m, l.v[i].alert_id, "resolved", &a, err) < 0) {
			de_error_clear(err); /* the alert was pruned: resolved all the same */
			continue;
		}
		if (asprintf(&t, "Resolved: %s", a.title) < 0)
			t = NULL;
		if (asprintf(&d, "pid %u %s (alert %s)", l.v[i].pid, why, l.v[i].alert_id) < 0)
			d = NULL;
		free(a.title);
		free(a.description);
		a.title = t;
		a.description = d;
		json_object_set_new(a.context, "resolves", json_string(l.v[i].alert_id));
		json_object_set_new(a.context, "resolution", json_string(why));
		if (!t || !d) {
			de_alert_clear(&a);
			rc = de_error_set(err, DE_ERR_ALERTING, ENOMEM, "out of memory");
			break;
		}
		rc = outbox(m, &a, rule, pend, c, err);
	}
	for (size_t i = 0; i < l.n; i++)
		free(l.v[i].alert_id);
	free(l.v);
	if (rc == -ENOMEM && err && err->category == DE_ERR_NONE)
		rc = de_error_set(err, DE_ERR_ALERTING, ENOMEM, "out of memory");
	return rc;
}

/* ---- submit ----------------------------------------------------------------------- */

static void add_counts(struct de_alertmgr_counts *t, const struct de_alertmgr_counts *c)
{
	t->raised += c->raised;
	t->repeats += c->repeats;
	t->suppressed += c->suppressed;
	t->folded += c->folded;
	t->resolved += c->resolved;
	t->summaries += c->summaries;
	t->deliveries += c->deliveries;
}

/* Queue what was committed (the agent's thread), in the order it was raised. */
static void queue_pending(struct de_alertmgr *m, struct pending *p)
{
	struct pending *rev = NULL;

	while (p) { /* the list was built newest first */
		struct pending *n = p->next;
		p->next = rev;
		rev = p;
		p = n;
	}
	for (p = rev; p; p = p->next)
		for (size_t i = 0; i < p->n; i++) {
			struct worker *w = &m->workers[p->widx[i]];
			if (alertmgr_idset_add(&m->outstanding, p->ids[i]) < 0) {
				/* not counted for --once; still delivered from the store */
			}
			/* straight to the worker only when nothing older of this sink waits
			 * in the store (a retry, or what did not fit): it goes in order */
			if (w->more || w->next_due || !alertmgr_has_room(w) ||
			    alertmgr_enqueue(w, p->ids[i], 0, p->sa) < 0) {
				/* not in the due index yet: alertmgr_refill puts it there */
				if (!w->undue_from)
					w->undue_from = p->ids[i];
				w->more = true;
			}
		}
	alertmgr_publish(m);
}

/* Undo a submit's or a poll's transaction: nothing queued, windows as stored. */
static void abort_tx(struct de_alertmgr *m, struct pending **pend)
{
	struct de_error e2 = {0};

	de_outbox_tx_rollback(m->ob);
	pending_free(*pend);
	*pend = NULL;
	load_windows(m, &e2); /* memory back to what the store holds */
}

/* Commit a submit's or a poll's transaction and queue what it made. */
static int with_tx(struct de_alertmgr *m, struct pending **pend, struct de_error *err)
{
	int rc = de_outbox_tx_commit(m->ob, err);

	if (rc < 0) {
		abort_tx(m, pend);
		return rc;
	}
	if (m->obs.raised)
		for (const struct pending *p = *pend; p; p = p->next)
			m->obs.raised(m->obs.arg, &p->sa->a, p->n);
	/* queue_pending reverses the list in place: free from its new head */
	struct pending *head = *pend;
	while (head && head->next)
		head = head->next;
	queue_pending(m, *pend);
	pending_free(head);
	*pend = NULL;
	return 0;
}

int de_alertmgr_submit(struct de_alertmgr *m, const struct de_alert_list *alerts, bool full,
		       const struct de_rule_result *results, size_t nrules,
		       struct de_alertmgr_counts *counts, struct de_error *err)
{
	struct de_alertmgr_counts c = {0};
	struct pending *pend = NULL;
	int64_t now = de_now_ms();
	int rc;

	/* states seen by this run are last_seen = now; resolution looks for older
	 * ones, so two runs never share a time */
	if (now <= m->last_run)
		now = m->last_run + 1;
	m->last_run = now;
	if ((rc = de_outbox_tx_begin(m->ob, err)) < 0)
		return rc;
	/* the alerts are moved out of the list: the caller's list is then empty */
	for (size_t i = 0; i < alerts->len; i++) {
		if ((rc = take_alert(m, &alerts->items[i], now, &pend, &c, err)) < 0)
			break;
	}
	((struct de_alert_list *)alerts)->len = 0;
	if (rc == 0 && full)
		for (size_t i = 0; i < nrules && m->rules && i < m->rules->len && rc == 0; i++)
			if (results[i].ran && results[i].status == 0)
				rc = resolve_rule(m, &m->rules->items[i], now, &pend, &c, err);
	if (rc == 0)
		rc = summarize(m, &pend, &c, err);
	if (rc < 0) {
		abort_tx(m, &pend);
		return rc;
	}
	if ((rc = with_tx(m, &pend, err)) < 0)
		return rc;
	if (full) /* rows the CLI made pending again (dlq retry) are looked for */
		for (size_t i = 0; i < m->cfg->nsinks; i++)
			m->workers[i].more = true;
	add_counts(&m->st.total, &c);
	if (counts)
		*counts = c;
	return 0;
}

/* The list it reversed (the workers push outcomes newest first). */
static struct item *reverse_items(struct item *it)
{
	struct item *rev = NULL;

	while (it) {
		struct item *n = it->next;
		it->next = rev;
		rev = it;
		it = n;
	}
	return rev;
}

int de_alertmgr_poll(struct de_alertmgr *m, struct de_error *err)
{
	struct item *res, *it;
	struct pending *pend = NULL;
	struct de_alertmgr_counts c = {0};
	int64_t now = de_now_ms();
	int rc = 0;

	pthread_mutex_lock(&m->mu);
	res = m->results;
	m->results = NULL;
	pthread_mutex_unlock(&m->mu);
	/* oldest first: recorded (their ids mostly ascending) and told in the order made */
	res = reverse_items(res);
	if (m->dedup)
		de_dedup_expire(m->dedup, now);
	if ((res || m->closed) && de_mono_ms() < m->record_after)
		goto putback_quiet;
	if (res || m->closed) {
		if ((rc = de_outbox_tx_begin(m->ob, err)) < 0)
			goto putback;
		rc = alertmgr_record_all(m, res, now, err);
		if (rc == 0)
			rc = summarize(m, &pend, &c, err);
		if (rc < 0) {
			abort_tx(m, &pend);
			goto putback;
		}
		if ((rc = with_tx(m, &pend, err)) < 0)
			goto putback;
		add_counts(&m->st.total, &c);
		for (it = res; it; it = it->next) {
			if (m->obs.delivery)
				m->obs.delivery(m->obs.arg, it->alert_id, it->w->sink->name,
						it->outcome == DE_SINK_OK ? DE_OUTBOX_DELIVERED
						: it->final		  ? DE_OUTBOX_DEAD
									  : DE_OUTBOX_PENDING,
						it->attempts,
						it->outcome == DE_SINK_OK ? NULL : it->error);
			alertmgr_idset_del(&it->w->held, it->delivery_id);
			if (it->final)
				alertmgr_idset_del(&m->outstanding, it->delivery_id);
		}
		alertmgr_free_items(res);
		res = NULL;
		m->record_backoff = 0;
	}
	for (size_t i = 0; i < m->cfg->nsinks && rc == 0; i++)
		rc = alertmgr_refill(m, &m->workers[i], now, err);
	return rc;
putback:
	/* not recorded: keep them for a later poll, after a pause */
	m->record_backoff = m->record_backoff ? m->record_backoff * 2 : 250;
	if (m->record_backoff > 30000)
		m->record_backoff = 30000;
	m->record_after = de_mono_ms() + m->record_backoff;
putback_quiet:
	if (res) {
		res = reverse_items(res); /* newest first again, as the workers push them */
		pthread_mutex_lock(&m->mu);
		for (it = res; it->next; it = it->next)
			;
		it->next = m->results;
		m->results = res;
		pthread_mutex_unlock(&m->mu);
	}
	return rc;
}

/* Deliveries still pending in the store for the configured sinks. */
static int pending_total(struct de_alertmgr *m, size_t *n, struct de_error *err)
{
	*n = 0;
	for (size_t i = 0; i < m->cfg->nsinks; i++) {
		size_t k;
		int rc = de_outbox_pending(m->ob, m->cfg->sinks[i].name, &k, err);
		if (rc < 0)
			return rc;
		*n += k;
	}
	return 0;
}

int de_alertmgr_drain(struct de_alertmgr *m, const volatile int *stop, struct de_error *err)
{
	size_t pending = 0;
	int rc;

	/* this process's deliveries, and what an earlier run left pending (a
	 * crash, dlq retry): the outbox empty for every configured sink */
	while ((rc = de_alertmgr_poll(m, err)) == 0 &&
	       (rc = pending_total(m, &pending, err)) == 0 && (m->outstanding.len || pending) &&
	       !(stop && *stop)) {
		/* sleep until an outcome arrives or the earliest retry is due */
		int64_t now = de_now_ms(), until = now + 1000;
		for (size_t i = 0; i < m->cfg->nsinks; i++)
			if (m->workers[i].next_due && m->workers[i].next_due < until)
				until = m->workers[i].next_due;
		pthread_mutex_lock(&m->mu);
		if (!m->results && until > now) {
			/* (next_due is wall-clock ms, a record's time; the wait itself
			   is monotonic and at most a second) */
			struct timespec ts;
			de_cond_deadline(&ts, until - now);
			pthread_cond_timedwait(&m->res_cv, &m->mu, &ts);
		}
		pthread_mutex_unlock(&m->mu);
	}
	return rc;
}
