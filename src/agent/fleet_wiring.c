/*
 * fleet_wiring.c — the agent's side of the fleet (see fleet_wiring.h).
 *
 * Process events and scan summaries are written to the store's spool in
 * the transaction's wake (so a crash or an outage loses none of what the
 * spool holds), then published from it oldest first, each with a
 * deterministic Nats-Msg-Id, and removed once the stream acknowledged
 * them: publishing resumes in order after an outage, and a re-send after a
 * crash is stored once.  The spool is bounded (fleet.spool_max_rows); what
 * the bound drops is counted in the store and reported in each scan
 * summary.  The ledger's latest signed checkpoint is published whenever it
 * changes, at the start of each flush, ahead of what the spool holds (the
 * ledger is read, never written, here).
 *
 * With fleet.operator_public_key set, the agent also answers signed fleet
 * queries (fleet.h): it listens on <prefix>.query and
 * <prefix>.<host-id>.query, runs only what the operator's key signed,
 * fresh, once, meant for this host, in the rules' SQL sandbox over its
 * read-only engine connection, and answers on the query's reply subject.
 * Every query run or refused is logged with its id; each signed query run
 * or refused as a replay is recorded in the audit ledger (fleet.query,
 * fleet.query_refused: id, SQL, rows, error).  Messages that fail the
 * signature check are only logged: anyone on the bus can send them, and
 * recording each would let them grow the ledger without bound.
 *
 * With the same key the agent takes signed rule bundles (fleet.h) from the
 * key-value bucket DE_FLEET_BUNDLE_BUCKET, looking every BUNDLE_POLL_MS: a
 * new revision is checked (signature, a version newer than the installed
 * bundle, every rule through the validator in use), installed as one
 * file and put in use as a reload would (the previous rules keep running
 * when anything fails); each install or refusal is logged and recorded in
 * the audit ledger, once per revision.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "agent.h"
#include "daemoneye/alertmgr.h"
#include "daemoneye/audit.h"
#include "daemoneye/clock.h"
#include "daemoneye/fleet.h"
#include "daemoneye/health.h"
#include "daemoneye/log.h"
#include "daemoneye/rules.h"
#include "fleet_wiring.h"

#define FLUSH_BATCH	256  /* spool rows read at a time */
#define FLUSH_BUDGET_MS 1000 /* the most one flush spends publishing */
/* in an outage: a flush tries again this often, and waits this long at most
   (a server that stopped answering must not hold the worker's loop, and so
   the exec path, a second in every turn, nor its stop) */
#define FLUSH_RETRY_MS	 2000
#define FLUSH_PROBE_MS	 250
#define DROP_WARN_EVERY	 10000
#define QUERIES_PER_PASS 16   /* queries served per flush */
#define SEEN_MAX	 4096 /* query ids remembered (each until it expires) */
#define BUNDLE_POLL_MS	 2000 /* how often the rule bundle's revision is looked at */

struct agent_fleet {
	struct de_fleet_settings set;
	struct de_fleet *f;
	struct de_audit_settings audit;	     /* where the ledger is */
	struct de_audit *ledger;	     /* read-only, once it exists */
	bool ledger_warned;		     /* said once that it cannot be read */
	char last_ckpt[DE_FLEET_MSGID_MAX];  /* id of the checkpoint last published */
	bool down;			     /* in an outage (said once) */
	int64_t retry_at;		     /* down: when a flush tries again (monotonic ms) */
	uint64_t dropped_run;		     /* dropped by the bound in this run */
	uint64_t dropped_warned;	     /* dropped_run when last said */
	uint64_t published;		     /* messages published in this run */
	struct de_ckpt_key *operator;	     /* fleet.operator_public_key; NULL: no queries */
	struct de_fleet_sub *q_all, *q_host; /* <prefix>.query, <prefix>.<host>.query */
	struct de_fleet_seen *seen;	     /* query ids already run */
	uint64_t q_dropped;		     /* queries dropped unread, as last logged */
	uint64_t bundle_rev;		     /* the bundle revision last handled */
	int64_t bundle_next_ms;		     /* when to look again (monotonic) */
	/* a flush's rows and their publishes (flush_ctx), kept between flushes:
	   the loop flushes at every turn */
	struct flush_msg *msgs;
	struct de_fleet_pub *pub;
	size_t cap; /* of msgs and pub */
};

int agent_fleet_check(const struct de_config *cfg, struct de_error *err)
{
	struct de_fleet_settings s = {0};
	int rc = de_fleet_settings_load(cfg, NULL, false, &s, err);

	de_fleet_settings_clear(&s);
	return rc;
}

/* Close and free everything fl holds but the ledger (closed by agent_fleet_stop). */
static void fleet_free(struct agent_fleet *fl)
{
	de_fleet_sub_free(fl->q_all);
	de_fleet_sub_free(fl->q_host);
	de_fleet_seen_free(fl->seen);
	de_checkpoint_key_free(fl->operator);
	de_fleet_close(fl->f);
	de_audit_settings_clear(&fl->audit);
	de_fleet_settings_clear(&fl->set);
	free(fl->msgs);
	free(fl->pub);
	free(fl);
}

/* Load the operator's key and listen for queries. */
static int listen_queries(struct agent_fleet *fl, struct de_error *err)
{
	char subj[DE_FLEET_SUBJECT_MAX];
	int rc;

	if ((rc = de_checkpoint_key_load_public(fl->set.operator_public_key, &fl->operator, err)) <
	    0)
		return de_error_prefix(err, "fleet.operator_public_key: ");
	if (!(fl->seen = de_fleet_seen_new(SEEN_MAX)))
		return de_error_set(err, DE_ERR_ALERTING, ENOMEM, "out of memory");
	if (de_fleet_query_subject(fl->set.subject_prefix, NULL, subj, sizeof(subj)) < 0 ||
	    (rc = de_fleet_subscribe(fl->f, subj, &fl->q_all, err)) < 0 ||
	    de_fleet_query_subject(fl->set.subject_prefix, fl->set.host_id, subj, sizeof(subj)) <
		    0 ||
	    (rc = de_fleet_subscribe(fl->f, subj, &fl->q_host, err)) < 0)
		return rc < 0 ? rc
			      : de_error_set(err, DE_ERR_CONFIGURATION, EINVAL,
					     "fleet: no query subject for host %s",
					     fl->set.host_id);
	de_log_info("fleet: answering queries signed by %s", fl->set.operator_public_key);
	return 0;
}

int agent_fleet_start(struct agent *ag, struct de_error *err)
{
	struct agent_fleet *fl = calloc(1, sizeof(*fl));
	int rc;

	if (!fl)
		return de_error_set(err, DE_ERR_ALERTING, ENOMEM, "out of memory");
	if ((rc = de_fleet_settings_load(ag->cfg, NULL, false, &fl->set, err)) < 0 ||
	    !fl->set.enabled)
		goto fail;
	if ((rc = de_audit_settings_load(ag->cfg, &fl->audit, err)) < 0 ||
	    (rc = de_fleet_connect(&fl->set, false, &fl->f, err)) < 0)
		goto fail;
	if (fl->set.operator_public_key && (rc = listen_queries(fl, err)) < 0)
		goto fail;
	de_log_info("fleet: publishing to stream %s as %s.%s.* (host id %s%s), %s", fl->set.stream,
		    fl->set.subject_prefix, fl->set.host_id, fl->set.host_id_derived ? "from " : "",
		    fl->set.host_id_derived ? DE_FLEET_MACHINE_ID : "set",
		    de_fleet_connected(fl->f) ? "connected" : "not connected yet");
	ag->fleet = fl;
	return 0;
fail:
	fleet_free(fl);
	return rc;
}

/* Add msgs to the spool, counting and reporting what the bound dropped. */
static void spool(struct agent *ag, const struct de_spool_msg *msgs, size_t n)
{
	struct agent_fleet *fl = ag->fleet;
	struct de_error err = {0};
	size_t dropped = 0;

	if (de_store_spool_add(ag->store, msgs, n, fl->set.spool_max_rows, &dropped, &err) < 0) {
		de_log_err(&err);
		return;
	}
	fl->dropped_run += dropped;
	if (dropped &&
	    (fl->dropped_warned == 0 || fl->dropped_run - fl->dropped_warned >= DROP_WARN_EVERY)) {
		de_log_warnx("fleet: the spool is full (fleet.spool_max_rows %" PRIu64 "): %" PRIu64
			     " events dropped in this run",
			     fl->set.spool_max_rows, fl->dropped_run);
		fl->dropped_warned = fl->dropped_run;
	}
}

void agent_fleet_events(struct agent *ag, const struct de_process_event *ev, size_t n)
{
	struct agent_fleet *fl = ag->fleet;
	struct de_spool_msg *msgs;
	char(*ids)[DE_FLEET_MSGID_MAX];
	char **bodies;
	size_t k = 0;

	if (!fl || !fl->set.publish_events || n == 0)
		return;
	msgs = calloc(n, sizeof(*msgs));
	ids = calloc(n, sizeof(*ids));
	bodies = calloc(n, sizeof(*bodies));
	if (!msgs || !ids || !bodies) {
		de_log_warnx("fleet: out of memory spooling %zu events", n);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct de_error err = {0};
		if (ev[i].kind != DE_PROCESS_EXEC && ev[i].kind != DE_PROCESS_EXIT)
			continue;
		if (de_fleet_event_msg(fl->set.host_id, &ev[i], &bodies[k], ids[k], &err) < 0) {
			de_log_err(&err);
			continue;
		}
		msgs[k] = (struct de_spool_msg){.kind = "events",
						.msg_id = ids[k],
						.payload = bodies[k],
						.created_at = ev[i].time_ms};
		k++;
	}
	spool(ag, msgs, k);
out:
	for (size_t i = 0; bodies && i < k; i++)
		free(bodies[i]);
	free(bodies);
	free(ids);
	free(msgs);
}

/*
 * The health report the agent last wrote (telemetry.c): its status into
 * *status, and its components that are not ok as "NAME: summary; ..." into
 * buf.  False when there is none (yet).
 */
static bool health_summary(struct agent *ag, const char **status, char *buf, size_t n)
{
	struct de_error err = {0};
	json_t *doc = NULL, *c;
	char path[4096];
	size_t i, w = 0;

	buf[0] = '\0';
	if (!ag->state_dir ||
	    snprintf(path, sizeof(path), "%s/%s", ag->state_dir, DE_HEALTH_FILE) >=
		    (int)sizeof(path) ||
	    de_health_read(path, de_now_ms(), &doc, &err) < 0)
		return false;
	*status = de_health_status_name(de_health_worst(doc));
	json_array_foreach (json_object_get(doc, "components"), i, c) {
		const char *st = json_string_value(json_object_get(c, "status"));
		int k;
		if (!st || strcmp(st, "ok") == 0 || w >= n)
			continue;
		k = snprintf(buf + w, n - w, "%s%s: %s", w ? "; " : "",
			     json_string_value(json_object_get(c, "name")),
			     json_string_value(json_object_get(c, "summary")));
		w = k < 0 ? n : w + (size_t)k;
	}
	json_decref(doc);
	return true;
}

void agent_fleet_cycle(struct agent *ag, int64_t scan_id, int64_t started_ms, size_t processes,
		       const struct de_store_diff *diff, size_t alerts)
{
	struct agent_fleet *fl = ag->fleet;
	struct de_spool_stats st = {0};
	struct de_error err = {0};
	char id[DE_FLEET_MSGID_MAX], *body = NULL, hsum[400];

	if (!fl)
		return;
	agent_fleet_flush(ag); /* room in the spool first */
	if (fl->set.publish_events) {
		struct de_fleet_scan s = {
			.scan_id = scan_id,
			.started_ms = started_ms,
			.ended_ms = de_now_ms(),
			.processes = processes,
			.added = diff->added,
			.changed = diff->changed,
			.exited = diff->exited,
			.alerts = alerts,
		};
		if (de_store_spool_stats(ag->store, &st, &err) < 0)
			de_log_err(&err);
		s.spool_rows = st.rows;
		s.spool_dropped = st.dropped;
		s.version = DE_VERSION;
		if (health_summary(ag, &s.health, hsum, sizeof(hsum)))
			s.health_summary = hsum;
		if (de_fleet_scan_msg(fl->set.host_id, &s, &body, id, &err) < 0) {
			de_log_err(&err);
		} else {
			struct de_spool_msg m = {.kind = "scans",
						 .msg_id = id,
						 .payload = body,
						 .created_at = s.ended_ms};
			spool(ag, &m, 1);
		}
		free(body);
	}
	agent_fleet_flush(ag);
}

/* A spool row read for publishing (its strings copied: the store's are borrowed). */
struct flush_msg {
	int64_t id;
	bool known; /* a kind we publish (others are skipped) */
	enum de_fleet_kind kind;
	char *msg_id, *payload;
};

struct flush_ctx {
	struct agent_fleet *fl;
	struct flush_msg *msgs;	  /* this batch's rows, in order (fl's) */
	struct de_fleet_pub *pub; /* one run of msgs, as published (fl's) */
	size_t cap;		  /* the most read at a time */
	int64_t last_id;	  /* the last published */
	size_t n;		  /* published in this batch */
	size_t seen;		  /* rows read in this batch */
	int64_t deadline;	  /* monotonic ms */
	bool last;		  /* the flush at stop: not cut short by the stop request */
	struct de_error err;
};

/*
 * The wait for one publish's ack: what is left of the flush's budget, so
 * that a server that stopped answering (but keeps its connection open)
 * holds a flush, and a SIGTERM behind it, no longer than the budget.
 * 0 when the budget is spent, or a stop was asked for and this is not the
 * last flush (which has a budget of its own).
 */
static uint64_t publish_wait(const struct agent_fleet *fl, int64_t deadline, bool last)
{
	int64_t left = deadline - de_mono_ms();

	if (left <= 0 || (agent_stop && !last))
		return 0;
	return (uint64_t)left < fl->set.publish_timeout_ms ? (uint64_t)left
							   : fl->set.publish_timeout_ms;
}

static void flush_msgs_clear(struct flush_ctx *c)
{
	for (size_t i = 0; i < c->seen; i++) {
		free(c->msgs[i].msg_id);
		free(c->msgs[i].payload);
	}
	c->seen = 0;
}

/* de_store_spool_peek's callback: a copy of each row (3: out of memory). */
static int collect_one(const struct de_spool_msg *m, void *arg)
{
	struct flush_ctx *c = arg;
	struct flush_msg *f = &c->msgs[c->seen];

	f->id = m->id;
	f->known = de_fleet_kind_parse(m->kind, &f->kind) == 0;
	f->msg_id = strdup(m->msg_id);
	f->payload = strdup(m->payload);
	c->seen++;
	return f->msg_id && f->payload ? 0 : 3;
}

/*
 * Publish what collect_one read, in order, each run of one kind pipelined
 * (de_fleet_publish_many: one wait for the run's acks, not one per
 * message); c->last_id and c->n advance over the acknowledged prefix.
 * 0: all of it; 1: one failed (c->err, the rest waits); 2: the budget is
 * spent.  A run acknowledged in part after a failure of its own is sent
 * again from the failure on, the duplicate window keeping those stored
 * once (in the rare such case an event can then land after later ones).
 */
static int publish_collected(struct flush_ctx *c)
{
	for (size_t i = 0; i < c->seen;) {
		size_t j = i, k;
		uint64_t wait;

		if (!c->msgs[i].known) {
			c->last_id = c->msgs[i++].id; /* not ours to publish: skip it */
			continue;
		}
		while (j < c->seen && c->msgs[j].known && c->msgs[j].kind == c->msgs[i].kind)
			j++;
		if (!(wait = publish_wait(c->fl, c->deadline, c->last)))
			return 2;
		for (k = i; k < j; k++)
			c->pub[k - i] = (struct de_fleet_pub){.msg_id = c->msgs[k].msg_id,
							      .data = c->msgs[k].payload,
							      .len = strlen(c->msgs[k].payload)};
		de_error_clear(&c->err);
		if (de_fleet_publish_many(c->fl->f, c->msgs[i].kind, c->pub, j - i, wait, &c->err) <
		    0)
			return 1; /* nothing sent: c->err says why */
		for (k = i; k < j && c->pub[k - i].rc == 0; k++) {
			c->last_id = c->msgs[k].id;
			c->n++;
		}
		if (k < j) { /* c->err: how many were not stored, and why the first */
			de_error_prefix(&c->err, "publish: ");
			return 1;
		}
		if (de_mono_ms() >= c->deadline)
			return 2;
		i = j;
	}
	return 0;
}

/* Publish the ledger's latest checkpoint when it is not the one last published. */
static int publish_checkpoint(struct agent_fleet *fl, int64_t deadline, bool last,
			      struct de_error *err)
{
	char id[DE_FLEET_MSGID_MAX], *note = NULL;
	struct de_audit_config ac;
	uint64_t wait = publish_wait(fl, deadline, last);
	int rc;

	if (!fl->audit.enabled || !wait)
		return 0; /* no budget left: the next flush publishes it */
	if (!fl->ledger) {
		if (access(fl->audit.path, F_OK) != 0)
			return 0; /* no ledger yet */
		de_audit_settings_config(&fl->audit, true, &ac);
		if (de_audit_open(&ac, &fl->ledger, err) < 0) {
			if (fl->ledger_warned)
				return 0;
			fl->ledger_warned = true;
			return de_error_prefix(err, "fleet: checkpoints not published: ");
		}
	}
	if ((rc = de_audit_latest_checkpoint(fl->ledger, &note, err)) < 0)
		return rc == -ENOENT ? 0 : rc;
	if ((rc = de_fleet_checkpoint_msg_id(fl->set.host_id, note, strlen(note), id, err)) == 0 &&
	    strcmp(id, fl->last_ckpt) != 0 &&
	    (rc = de_fleet_publish(fl->f, DE_FLEET_CHECKPOINTS, id, note, strlen(note), wait, NULL,
				   err)) == 0) {
		snprintf(fl->last_ckpt, sizeof(fl->last_ckpt), "%s", id);
		fl->published++;
	}
	free(note);
	return rc;
}

/* ---- queries ------------------------------------------------------------------- */

/* Run q in the sandbox; its answer as JSON text (the caller frees). */
static char *run_query(struct agent *ag, const struct de_fleet_query *q, size_t *nrows,
		       struct de_error *err)
{
	struct agent_fleet *fl = ag->fleet;
	sqlite3 *db = de_engine_db(ag->det.engine);
	sqlite3_stmt *st = NULL;
	struct de_guard g;
	json_t *ans, *rows = json_array();
	size_t bytes = 0;
	bool truncated = false;
	char *text = NULL;
	int step = SQLITE_DONE;

	*nrows = 0;
	ans = json_pack("{s:s,s:s}", "host", fl->set.host_id, "id", q->id);
	if (!ans || !rows)
		goto out;
	if (de_validator_prepare(ag->det.validator, db, q->sql, &st, err) == 0) {
		de_validator_arm(ag->det.validator, db, &g);
		while ((step = sqlite3_step(st)) == SQLITE_ROW) {
			json_t *row = de_row_json(st);
			char *t = row ? json_dumps(row, JSON_COMPACT) : NULL;
			size_t n = t ? strlen(t) : 0;
			free(t);
			if (!row || *nrows >= DE_FLEET_ANSWER_ROWS_MAX ||
			    bytes + n + 1 > DE_FLEET_ANSWER_MAX - 4096) {
				json_decref(row);
				truncated = true;
				break;
			}
			json_array_append_new(rows, row);
			bytes += n + 1;
			(*nrows)++;
		}
		de_validator_disarm(db, &g);
		if (!truncated && step != SQLITE_DONE)
			de_validator_step_error(db, &g, step, err);
	}
	if (err->message[0]) {
		json_object_set_new(ans, "ok", json_false());
		json_object_set_new(ans, "error", json_string(err->message));
	} else {
		json_object_set_new(ans, "ok", json_true());
		json_object_set_new(ans, "rows", json_incref(rows));
		json_object_set_new(ans, "truncated", json_boolean(truncated));
	}
	text = json_dumps(ans, JSON_COMPACT);
out:
	sqlite3_finalize(st);
	json_decref(rows);
	json_decref(ans);
	return text;
}

/* Check, run and answer one query message. */
static void serve_query(struct agent *ag, const char *msg, size_t len)
{
	struct agent_fleet *fl = ag->fleet;
	struct de_fleet_query q = {0};
	struct de_error err = {0};
	int64_t now = de_now_ms();
	size_t nrows = 0;
	char *answer;
	int rc;

	if (de_fleet_query_open(msg, len, fl->operator, now, &q, &err) < 0) {
		de_log_warnx("fleet: query refused: %s", err.message);
		return;
	}
	if (!de_fleet_query_for(&q, fl->set.host_id))
		goto out; /* meant for other hosts */
	if ((rc = de_fleet_seen_add(fl->seen, q.id, q.expires_ms, now)) < 0) {
		const char *why =
			rc == -EALREADY ? "already run (a replay)" : "too many queries in flight";
		de_log_warnx("fleet: query %s refused: %s", q.id, why);
		agent_ledger_json(
			ag, "fleet.query_refused",
			json_pack("{s:s, s:s, s:s}", "id", q.id, "sql", q.sql, "error", why));
		goto out;
	}
	answer = run_query(ag, &q, &nrows, &err);
	if (!answer) {
		de_log_warnx("fleet: query %s: out of memory", q.id);
		goto out;
	}
	de_log_info("fleet: query %s run (%zu rows%s%s): %.200s", q.id, nrows,
		    err.message[0] ? "; failed: " : "", err.message, q.sql);
	agent_ledger_json(ag, "fleet.query",
			  json_pack("{s:s, s:s, s:I, s:s?}", "id", q.id, "sql", q.sql, "rows",
				    (json_int_t)nrows, "error",
				    err.message[0] ? err.message : NULL));
	de_error_clear(&err);
	if (de_fleet_send(fl->f, q.reply, answer, strlen(answer), &err) < 0)
		de_log_err(&err);
	free(answer);
out:
	de_fleet_query_clear(&q);
}

static void serve_queries(struct agent *ag)
{
	struct agent_fleet *fl = ag->fleet;
	struct de_fleet_sub *subs[2] = {fl->q_all, fl->q_host};

	uint64_t dropped = de_fleet_sub_dropped(fl->q_all) + de_fleet_sub_dropped(fl->q_host);
	if (dropped != fl->q_dropped) {
		de_log_warnx("fleet: %" PRIu64 " queries dropped unread (more than 256 waiting: a "
			     "flood on the bus?)",
			     dropped - fl->q_dropped);
		fl->q_dropped = dropped;
	}
	for (size_t i = 0; i < 2; i++)
		for (int k = 0; subs[i] && k < QUERIES_PER_PASS; k++) {
			struct de_error err = {0};
			char *msg = NULL;
			size_t len = 0;
			int rc =
				de_fleet_sub_next(subs[i], 0, DE_FLEET_QUERY_MAX, &msg, &len, &err);
			if (rc == 0)
				break;
			if (rc < 0) {
				de_log_warnx("fleet: query refused: %s", err.message);
				continue;
			}
			serve_query(ag, msg, len);
			free(msg);
		}
}

/* ---- signed rule bundles ---------------------------------------------------------- */

/* Log and record a bundle refused (revision rev). */
static void bundle_refused(struct agent *ag, uint64_t rev, uint64_t version, const char *why)
{
	de_log_warnx("fleet: rule bundle (revision %" PRIu64 ") refused, the rules in use are "
		     "kept: %s",
		     rev, why);
	agent_ledger_json(ag, "rules.bundle_refused",
			  json_pack("{s:I, s:I, s:s}", "revision", (json_int_t)rev, "version",
				    (json_int_t)version, "error", why));
}

/* Put the rules on disk in use, as a reload does: 0, or the old set is kept. */
static int bundle_use(struct agent *ag, struct de_error *err)
{
	struct agent_detection det = {0};
	struct de_alertmgr_config *acfg = NULL;
	int rc = agent_detection_load(ag, ag->cfg, &det, err);

	if (rc == 0)
		rc = de_alertmgr_config_load(ag->cfg, &acfg, err);
	if (rc == 0) {
		rc = agent_detection_swap(ag, &det, acfg, err);
		acfg = NULL; /* taken, whatever happened */
	}
	agent_detection_clear(&det);
	de_alertmgr_config_free(acfg);
	return rc;
}

static void check_bundle(struct agent *ag)
{
	struct agent_fleet *fl = ag->fleet;
	struct de_fleet_bundle b = {0};
	struct de_rule_set got = {0};
	struct de_rule_problems pr = {0};
	struct de_error err = {0};
	char *msg = NULL, *user = NULL, *state = NULL, hash[DE_AUDIT_HASH_TEXT_LEN + 1];
	uint64_t rev = 0, installed = 0;
	size_t len = 0;
	int64_t now = de_mono_ms();
	int rc;

	if (now < fl->bundle_next_ms)
		return;
	fl->bundle_next_ms = now + BUNDLE_POLL_MS;
	rc = de_fleet_kv_get(fl->f, DE_FLEET_BUNDLE_BUCKET, DE_FLEET_BUNDLE_KEY,
			     DE_FLEET_BUNDLE_MAX, &msg, &len, &rev, &err);
	if (rc == 0 || rev == 0 || rev == fl->bundle_rev) {
		if (rc < 0 && rev == 0 && err.code != EAGAIN)
			de_log_err(&err);
		goto out;
	}
	fl->bundle_rev = rev;
	if (rc < 0 || de_fleet_bundle_open(msg, len, fl->operator, & b, &err) < 0 ||
	    de_rules_paths(ag->cfg, &user, &state, &err) < 0 ||
	    de_fleet_bundle_installed(user, &installed, &err) < 0) {
		bundle_refused(ag, rev, b.version, err.message);
		goto out;
	}
	if (b.version == installed) {
		de_log_info("fleet: rule bundle version %" PRIu64 " is the one installed",
			    b.version);
		goto out;
	}
	if (de_fleet_bundle_install(&b, ag->det.validator, user, &got, &pr, &err) < 0) {
		for (size_t i = 0; i < pr.len; i++)
			de_log_warnx("fleet: rule bundle: %s", pr.items[i]);
		bundle_refused(ag, rev, b.version, err.message);
		goto out;
	}
	de_audit_hash_text(msg, len, hash);
	if (bundle_use(ag, &err) < 0) {
		/* installed, valid, but the manager could not start on it: the
		   old set runs, the next start or reload takes the new one */
		de_log_warnx("fleet: rule bundle version %" PRIu64 " installed but not in use "
			     "yet: %s",
			     b.version, err.message);
	} else {
		de_log_info("fleet: rule bundle version %" PRIu64 " installed and in use (%zu "
			    "rules of it; %zu detection rules)",
			    b.version, got.len, ag->det.rules.len);
	}
	agent_ledger_json(ag, "rules.bundle",
			  json_pack("{s:I, s:I, s:I, s:s, s:I, s:b}", "revision", (json_int_t)rev,
				    "version", (json_int_t)b.version, "issued_ms",
				    (json_int_t)b.issued_ms, "bundle_blake3", hash, "rules",
				    (json_int_t)got.len, "in_use", err.message[0] == '\0'));
	agent_ledger_rules(ag, "fleet rule bundle");
out:
	free(msg);
	free(user);
	free(state);
	de_fleet_bundle_clear(&b);
	de_rule_set_clear(&got);
	de_rule_problems_clear(&pr);
}

int agent_fleet_wake_fds(const struct agent *ag, int *fds, int max)
{
	const struct agent_fleet *fl = ag->fleet;
	int n = 0;

	if (!fl || !fl->operator)
		return 0;
	if (n < max && de_fleet_sub_fd(fl->q_all) >= 0)
		fds[n++] = de_fleet_sub_fd(fl->q_all);
	if (n < max && de_fleet_sub_fd(fl->q_host) >= 0)
		fds[n++] = de_fleet_sub_fd(fl->q_host);
	return n;
}

/* The flush found the server not answering: in an outage, the next try
   FLUSH_RETRY_MS after the first failure. */
static void went_down(struct agent_fleet *fl)
{
	if (!fl->down)
		fl->retry_at = de_mono_ms() + FLUSH_RETRY_MS;
	fl->down = true;
}

/* fl's flush buffers for cap rows (kept, grown when cap is larger); -ENOMEM. */
static int flush_buffers(struct agent_fleet *fl, size_t cap)
{
	struct flush_msg *m;
	struct de_fleet_pub *p;

	if (fl->cap >= cap)
		return 0;
	if (!(m = calloc(cap, sizeof(*m))) || !(p = calloc(cap, sizeof(*p)))) {
		free(m);
		return -ENOMEM;
	}
	free(fl->msgs);
	free(fl->pub);
	fl->msgs = m;
	fl->pub = p;
	fl->cap = cap;
	return 0;
}

/* agent_fleet_flush within budget_ms; the last one (at stop) serves no queries. */
static void flush(struct agent *ag, int64_t budget_ms, bool last)
{
	struct agent_fleet *fl = ag->fleet;
	struct flush_ctx c = {0};
	struct de_error err = {0};
	int rc = 0;

	if (!fl)
		return;
	if (!de_fleet_connected(fl->f)) {
		if (!fl->down)
			de_log_warnx("fleet: not connected to %s%s: events wait in the spool, "
				     "alerts in the outbox",
				     fl->set.servers[0],
				     fl->set.nservers > 1 ? " or the others" : "");
		fl->down = true;
		return;
	}
	if (!last && fl->operator) {
		serve_queries(ag);
		check_bundle(ag);
	}
	if (!last && fl->down) {
		if (de_mono_ms() < fl->retry_at)
			return;
		fl->retry_at = de_mono_ms() + FLUSH_RETRY_MS;
		if (budget_ms > FLUSH_PROBE_MS)
			budget_ms = FLUSH_PROBE_MS;
	}
	c.fl = fl;
	c.deadline = de_mono_ms() + budget_ms;
	c.last = last;
	/* the checkpoint first: it anchors the ledger off the host, and a
	   backlog of events in the spool must not hold it back */
	if (publish_checkpoint(fl, c.deadline, last, &err) < 0) {
		if (!fl->down)
			de_log_err(&err);
		if (err.code == EAGAIN) {
			went_down(fl);
			return;
		}
		de_error_clear(&err); /* the ledger's trouble: the spool goes on */
	}
	/* at most as many at once as may await their acks (no stall in libnats) */
	c.cap = fl->set.publish_max_pending && fl->set.publish_max_pending < FLUSH_BATCH
			? (size_t)fl->set.publish_max_pending
			: FLUSH_BATCH;
	if ((rc = flush_buffers(fl, c.cap)) < 0)
		goto out;
	c.msgs = fl->msgs;
	c.pub = fl->pub;
	do {
		size_t read;
		c.n = 0;
		c.last_id = -1;
		rc = de_store_spool_peek(ag->store, c.cap, collect_one, &c, &err);
		read = c.seen;
		if (rc == 0)
			rc = publish_collected(&c);
		else if (rc == 3)
			rc = -ENOMEM;
		flush_msgs_clear(&c);
		if (c.last_id >= 0 && de_store_spool_remove(ag->store, c.last_id, &err) < 0)
			rc = -EIO;
		fl->published += c.n;
		if (rc == 0 && read < c.cap)
			break; /* the spool is empty */
	} while (rc == 0);
out:
	if (rc == -ENOMEM) {
		de_log_warnx("fleet: out of memory publishing the spool");
		return;
	}
	if (rc < 0) {
		de_log_err(&err);
		return;
	}
	if (rc == 1) {
		/* the first that failed stops the rest: order is kept */
		if (!fl->down)
			de_log_warnx("fleet: %s; will retry", c.err.message);
		went_down(fl);
		return;
	}
	if (fl->down)
		de_log_info("fleet: publishing again (%" PRIu64 " messages so far in this run)",
			    fl->published);
	fl->down = false;
}

void agent_fleet_flush(struct agent *ag)
{
	flush(ag, FLUSH_BUDGET_MS, false);
}

void agent_fleet_stop(struct agent *ag, int64_t budget_ms)
{
	struct agent_fleet *fl = ag->fleet;
	struct de_error err = {0};

	if (!fl)
		return;
	/* a server that did not answer the last flush gets no second wait after
	   a stop request, and a probe's (a --once run's only chance) otherwise */
	if (!fl->down)
		flush(ag, budget_ms, true);
	else if (!agent_stop)
		flush(ag, budget_ms < FLUSH_PROBE_MS ? budget_ms : FLUSH_PROBE_MS, true);
	de_audit_close(fl->ledger, &err);
	fl->ledger = NULL;
	fleet_free(fl);
	ag->fleet = NULL;
}
