/*
 * store_outbox.c — the event store's side of alerting (see outbox.h): alert
 * state per (rule, subject), suppressed and folded matches, deduplication
 * windows, the outbox of deliveries and the dead-letter queue.
 *
 * It works on the store's own connection (de_store_db) with statements
 * prepared once per outbox, so the alert manager's transaction holds the
 * alert, its state and its delivery rows together.  Nothing here runs on a
 * sink's worker thread.
 */
#include "daemoneye/outbox.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/buf.h"
#include "daemoneye/store.h"
#include "daemoneye/text.h"
#include "fields.h"

enum {
	S_BEGIN,
	S_COMMIT,
	S_ROLLBACK,
	S_SUBJECT,
	S_STATE_TOUCH,
	S_STATE_OPEN,
	S_STATE_NEXT,
	S_DELIV_NEXT,
	S_STATE_GET,
	S_STATES_ALL,
	S_STATE_KEYS,
	S_STATE_RESOLVE,
	S_LIVE,
	S_SUPP_ADD,
	S_WIN_PUT,
	S_WIN_DEL,
	S_WINS,
	S_ALERT_ADD,
	S_DELIV_ADD,
	S_DUE,
	S_NEXT_DUE,
	S_RECORD,
	S_DELIVERED,
	S_RESUME,
	S_PENDING,
	S_MAKE_DUE,
	S_RECOVER,
	S_ALERT_GET,
	S_MAX
};

static const char *const sqls[S_MAX] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_SUBJECT] = "SELECT p.pid, p.start_time, p.instance_id, p.name, p.executable_path,"
		      " p.command_line, p.user_id, p.ppid, pp.name, pp.executable_path"
		      " FROM processes p LEFT JOIN processes pp ON pp.pid = p.ppid"
		      " WHERE p.pid = ?1",
	[S_STATE_TOUCH] = "UPDATE alert_state SET last_seen = ?2 WHERE id = ?1",
	[S_STATE_OPEN] = "INSERT INTO alert_state(id, rule_id, subject, pid, start_time,"
			 " instance_id, alert_id, status, opened_at, last_seen)"
			 " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, 'open', ?8, ?8)",
	[S_STATE_NEXT] = "SELECT coalesce(max(id), 0) + 1 FROM alert_state",
	[S_DELIV_NEXT] = "SELECT coalesce(max(id), 0) + 1 FROM alert_deliveries",
	/* an open state by its id (the open states' ids are in memory: open_cache) */
	[S_STATE_GET] = "SELECT id, rule_id, subject, alert_id, pid, instance_id, last_seen"
			" FROM alert_state WHERE id = ?1 AND status = 'open'",
	[S_STATES_ALL] = "SELECT id, rule_id, subject, alert_id, pid, instance_id, last_seen"
			 " FROM alert_state WHERE status = 'open' ORDER BY id",
	[S_STATE_KEYS] = "SELECT id, rule_id, subject FROM alert_state WHERE status = 'open'",
	[S_STATE_RESOLVE] =
		"UPDATE alert_state SET status = 'resolved', resolved_at = ?2,"
		" resolution = ?3 WHERE id = ?1 AND status = 'open' RETURNING rule_id, subject",
	[S_LIVE] = "SELECT 1 FROM processes WHERE instance_id = ?1",
	[S_SUPP_ADD] = "INSERT INTO alert_suppressed(t, rule_id, kind, exception, exception_origin,"
		       " reason, folded_into, pid, start_time, instance_id, process_name,"
		       " executable_path, command_line)"
		       " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
	[S_WIN_PUT] = "INSERT INTO dedup_windows(key, alert_id, start_ms, end_ms, folded, last_ms)"
		      " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(key) DO UPDATE SET"
		      " alert_id = excluded.alert_id, start_ms = excluded.start_ms,"
		      " end_ms = excluded.end_ms, folded = excluded.folded,"
		      " last_ms = excluded.last_ms",
	[S_WIN_DEL] = "DELETE FROM dedup_windows WHERE key = ?1",
	[S_WINS] = "SELECT key, alert_id, start_ms, end_ms, folded, last_ms FROM dedup_windows"
		   " ORDER BY start_ms",
	[S_ALERT_ADD] = "INSERT INTO alerts(id, alert_time, rule_id, title, description, severity,"
			" scan_id, affected_processes, process_count, alert_data,"
			" rule_execution_time_ms, dedupe_key, incomplete, kind, context)"
			" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
	/* in the caller's hands: not due (NULL), so not in the due index */
	[S_DELIV_ADD] = "INSERT INTO alert_deliveries(id, alert_id, sink, status, attempts,"
			" next_attempt_at) VALUES(?1, ?2, ?3, 'pending', 0, NULL)",
	/* in the alerts' order (ids are given in the order alerts are raised),
	 * and none behind a row that waits for its retry: a sink gets its
	 * alerts oldest first, after an outage too */
	[S_DUE] = "SELECT d.id, d.alert_id, d.sink, d.attempts, d.next_attempt_at,"
		  " d.last_attempt_at, d.error FROM alert_deliveries d"
		  " WHERE d.sink = ?1 AND d.status = 'pending' AND d.next_attempt_at <= ?2"
		  " AND d.id < coalesce((SELECT min(w.id) FROM alert_deliveries w"
		  "  WHERE w.sink = ?1 AND w.status = 'pending' AND w.next_attempt_at > ?2),"
		  "  9223372036854775807)"
		  " ORDER BY d.id",
	[S_NEXT_DUE] = "SELECT min(next_attempt_at) FROM alert_deliveries"
		       " WHERE sink = ?1 AND status = 'pending' AND next_attempt_at > ?2",
	[S_RECORD] = "UPDATE alert_deliveries SET status = ?2, attempts = ?3,"
		     " last_attempt_at = ?4, next_attempt_at = ?5, error = ?6,"
		     " delivered_at = CASE WHEN ?2 = 'delivered' THEN ?4 ELSE delivered_at END"
		     " WHERE id = ?1",
	/* a run of consecutive ids, every one of them delivered (OR FAIL: no
	 * statement journal; a failure fails the transaction) */
	[S_DELIVERED] = "UPDATE OR FAIL alert_deliveries SET status = 'delivered', attempts = ?3,"
			" last_attempt_at = ?4, next_attempt_at = NULL, error = NULL,"
			" delivered_at = ?4 WHERE id BETWEEN ?1 AND ?2",
	/* the sink is back: what waits for a retry is due now, in order */
	[S_RESUME] = "UPDATE alert_deliveries SET next_attempt_at = ?2 WHERE sink = ?1"
		     " AND status = 'pending' AND next_attempt_at > ?2",
	[S_PENDING] = "SELECT count(*) FROM alert_deliveries WHERE sink = ?1 AND"
		      " status = 'pending' AND next_attempt_at IS NOT NULL",
	/* what the caller could not hand to its worker: the newest rows, by rowid */
	[S_MAKE_DUE] = "UPDATE alert_deliveries SET next_attempt_at = ?3 WHERE id >= ?2"
		       " AND sink = ?1 AND status = 'pending' AND next_attempt_at IS NULL",
	/* what an earlier run had in hand and did not record (one scan) */
	[S_RECOVER] = "UPDATE alert_deliveries SET next_attempt_at = ?1"
		      " WHERE status = 'pending' AND next_attempt_at IS NULL",
	[S_ALERT_GET] = "SELECT id, alert_time, rule_id, title, description, severity, scan_id,"
			" affected_processes, process_count, alert_data,"
			" rule_execution_time_ms, dedupe_key, incomplete, kind, context"
			" FROM alerts WHERE id = ?1",
};

/*
 * The open states, (rule_id, subject) -> state id, in memory: the alert
 * manager asks for each subject of each alert, and a hash lookup costs a
 * small fraction of the SELECT.  Loaded from the store on first use, kept
 * in step by state_open and state_resolve (the only writers of open
 * states), dropped on rollback and loaded again.  One entry per open state:
 * as many as the store holds.  It is the only index of the open states
 * (schema 10 dropped alert_state_open, whose entry cost about 3,000
 * instructions per alert): lookups by key and a rule's open states
 * (de_outbox_states_open) go through it, and no two open states of one key
 * are ever written because every one is looked up here first.
 */
struct open_ent {
	char *key; /* rule_id NUL subject (owned); NULL: empty; &tomb: deleted */
	size_t klen;
	int64_t id;
};
struct open_cache {
	struct open_ent *v;
	size_t cap, len, used; /* used: len + tombstones */
	bool loaded;
};

/*
 * Rows inserted in groups.  de_outbox_add and de_outbox_state_open queue
 * their rows (text copied into an arena) with the ids the outbox gives
 * them (one past the table's largest, read once per transaction), and a
 * queue is inserted QROWS rows per statement when full.  Whatever is
 * queued goes in before any other statement on the alerting tables runs,
 * and before COMMIT, so every read sees it and the transaction holds it.
 * OR FAIL: a failure fails the whole transaction anyway, and a statement
 * that may abort half-way would first copy every page it touches into a
 * statement journal (a temporary file).
 */
#define QROWS 16
#define QCOLS 15 /* the most a queued table has (alerts) */
enum { Q_ALERT, Q_DELIV, Q_STATE, Q_MAX };
struct qval {
	enum { QV_NULL = 0, QV_INT, QV_TEXT } type;
	int64_t i;	 /* QV_INT */
	size_t off, len; /* QV_TEXT: in the arena */
};
struct rowq {
	size_t n; /* rows queued */
	struct qval v[QROWS * QCOLS];
};
static const struct {
	int single;	  /* the one-row statement */
	int ncols;	  /* its parameters */
	const char *head; /* the insert, up to VALUES */
	const char *row;  /* one row: '#' the next parameter, '@' the last one again */
} qdefs[Q_MAX] = {
	[Q_ALERT] =
		{S_ALERT_ADD, 15,
		 "INSERT OR FAIL INTO alerts(id, alert_time, rule_id, title, description, severity,"
		 " scan_id, affected_processes, process_count, alert_data,"
		 " rule_execution_time_ms, dedupe_key, incomplete, kind, context) VALUES",
		 "(#,#,#,#,#,#,#,#,#,#,#,#,#,#,#)"},
	[Q_DELIV] = {S_DELIV_ADD, 3,
		     "INSERT OR FAIL INTO alert_deliveries(id, alert_id, sink, status, attempts,"
		     " next_attempt_at) VALUES",
		     "(#,#,#,'pending',0,NULL)"},
	[Q_STATE] = {S_STATE_OPEN, 8,
		     "INSERT OR FAIL INTO alert_state(id, rule_id, subject, pid, start_time, "
		     "instance_id,"
		     " alert_id, status, opened_at, last_seen) VALUES",
		     "(#,#,#,#,#,#,#,'open',#,@)"},
};

struct delivered {
	int64_t id;
	uint32_t attempts;
};

struct de_outbox {
	struct de_store *store;
	sqlite3 *db;
	sqlite3_stmt *st[S_MAX]; /* prepared on first use */
	bool in_tx;
	struct open_cache open;
	struct rowq q[Q_MAX];
	sqlite3_stmt *qst[Q_MAX];	/* the QROWS-row inserts */
	struct de_buf arena;		/* the queued rows' text */
	int64_t next_deliv, next_state; /* the next ids to give (0: not read yet) */
	struct de_buf key;		/* open_key's rule_id NUL subject, reused */
	/* an alert's JSON columns, built in buffers reused from alert to alert */
	struct de_buf affected, data, ctx;
	struct delivered *dv; /* de_outbox_record_delivered's array, kept */
	size_t dv_cap;
};

static const char *const status_names[DE_OUTBOX_STATUS_MAX] = {"pending", "delivered", "dead"};

const char *de_outbox_status_name(enum de_outbox_status s)
{
	return (int)s >= 0 && s < DE_OUTBOX_STATUS_MAX ? status_names[s] : "?";
}

static int status_parse(const char *s)
{
	for (int i = 0; s && i < DE_OUTBOX_STATUS_MAX; i++)
		if (strcmp(s, status_names[i]) == 0)
			return i;
	return DE_OUTBOX_PENDING;
}

static int db_fail(struct de_outbox *o, struct de_error *err, const char *what)
{
	int code = sqlite3_errcode(o->db);
	int e = code == SQLITE_FULL			       ? ENOSPC
		: code == SQLITE_READONLY		       ? EROFS
		: code == SQLITE_BUSY || code == SQLITE_LOCKED ? EBUSY
		: code == SQLITE_NOMEM			       ? ENOMEM
							       : EIO;
	return de_error_set(err, DE_ERR_DATABASE, e, "%s: %s", what, sqlite3_errmsg(o->db));
}

int de_outbox_open(struct de_store *s, struct de_outbox **out, struct de_error *err)
{
	struct de_outbox *o = calloc(1, sizeof(*o));

	if (!o)
		return de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
	o->store = s;
	o->db = de_store_db(s);
	o->affected = (struct de_buf)DE_BUF_INIT(1u << 20);
	o->data = (struct de_buf)DE_BUF_INIT(64u << 20);
	o->ctx = (struct de_buf)DE_BUF_INIT(64u << 20);
	o->arena = (struct de_buf)DE_BUF_INIT(1u << 30);
	o->key = (struct de_buf)DE_BUF_INIT(1u << 20);
	*out = o;
	return 0;
}

static void open_cache_clear(struct open_cache *c);

void de_outbox_close(struct de_outbox *o)
{
	if (!o)
		return;
	open_cache_clear(&o->open);
	for (int i = 0; i < S_MAX; i++)
		sqlite3_finalize(o->st[i]);
	for (int i = 0; i < Q_MAX; i++)
		sqlite3_finalize(o->qst[i]);
	de_buf_free(&o->arena);
	de_buf_free(&o->key);
	de_buf_free(&o->affected);
	de_buf_free(&o->data);
	de_buf_free(&o->ctx);
	free(o->dv);
	free(o);
}

static int q_flush(struct de_outbox *o, struct de_error *err);
static int run(struct de_outbox *o, sqlite3_stmt *st, struct de_error *err, const char *what);

/* Statement i, reset and unbound, ready to bind (nothing queued is flushed). */
static sqlite3_stmt *stmt_raw(struct de_outbox *o, int i, struct de_error *err)
{
	if (!o->st[i] && sqlite3_prepare_v3(o->db, sqls[i], -1, SQLITE_PREPARE_PERSISTENT,
					    &o->st[i], NULL) != SQLITE_OK) {
		db_fail(o, err, "cannot prepare an alerting statement");
		o->st[i] = NULL;
		return NULL;
	}
	sqlite3_reset(o->st[i]);
	sqlite3_clear_bindings(o->st[i]);
	return o->st[i];
}

/*
 * Statement i, ready to bind, after the queued rows went in: every
 * statement but those on the snapshot alone (and ROLLBACK, which drops
 * them) may read or change what is queued.
 */
static sqlite3_stmt *stmt(struct de_outbox *o, int i, struct de_error *err)
{
	sqlite3_stmt *st;

	if (i != S_SUBJECT && i != S_LIVE && i != S_ROLLBACK && q_flush(o, err) < 0)
		return NULL;
	st = stmt_raw(o, i, err);
	/* a write outside a transaction of the outbox's (its BEGIN included)
	   commits held event batches first: it never joins, nor is lost with,
	   them, and an alert's process rows are in the file before the alert
	   (de_store_hold_batches) */
	if (st && !o->in_tx && !sqlite3_stmt_readonly(st) &&
	    de_store_commit_held(o->store, err) < 0)
		return NULL;
	return st;
}

/* ---- rows inserted in groups ----------------------------------------------------------- */

/* Bind row r's values (from v) to st from parameter base + 1 on. */
static void q_bind(struct de_outbox *o, sqlite3_stmt *st, int base, const struct qval *v, int ncols)
{
	for (int c = 0; c < ncols; c++) {
		if (v[c].type == QV_INT)
			sqlite3_bind_int64(st, base + c + 1, v[c].i);
		else if (v[c].type == QV_TEXT)
			sqlite3_bind_text(st, base + c + 1, o->arena.p + v[c].off, (int)v[c].len,
					  SQLITE_STATIC);
	}
}

/* The QROWS-row insert of queue q, prepared on first use. */
static sqlite3_stmt *q_stmt(struct de_outbox *o, int q, struct de_error *err)
{
	struct de_buf sql = DE_BUF_INIT(1u << 16);
	int rc, p = 0;

	if (o->qst[q]) {
		sqlite3_reset(o->qst[q]);
		sqlite3_clear_bindings(o->qst[q]);
		return o->qst[q];
	}
	rc = de_buf_puts(&sql, qdefs[q].head);
	for (int r = 0; r < QROWS && rc == 0; r++) {
		if (r && (rc = de_buf_putc(&sql, ',')) < 0)
			break;
		for (const char *c = qdefs[q].row; *c && rc == 0; c++)
			rc = *c == '#'	 ? de_buf_printf(&sql, "?%d", ++p)
			     : *c == '@' ? de_buf_printf(&sql, "?%d", p)
					 : de_buf_putc(&sql, *c);
	}
	if (rc < 0 || sqlite3_prepare_v3(o->db, sql.p, -1, SQLITE_PREPARE_PERSISTENT, &o->qst[q],
					 NULL) != SQLITE_OK) {
		de_buf_free(&sql);
		o->qst[q] = NULL;
		if (rc < 0) {
			de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
			return NULL;
		}
		db_fail(o, err, "cannot prepare an alerting statement");
		return NULL;
	}
	de_buf_free(&sql);
	return o->qst[q];
}

static const char *const q_what[Q_MAX] = {"cannot store an alert", "cannot store a delivery",
					  "cannot record alert state"};

/* Insert what queue q holds: QROWS at a time, the rest one by one. */
static int q_flush_one(struct de_outbox *o, int q, struct de_error *err)
{
	struct rowq *rq = &o->q[q];
	int nc = qdefs[q].ncols, rc = 0;
	size_t r = 0;
	sqlite3_stmt *st;

	if (rq->n == QROWS) {
		if (!(st = q_stmt(o, q, err)))
			return -EIO;
		for (; r < QROWS; r++)
			q_bind(o, st, (int)r * nc, rq->v + r * QCOLS, nc);
		rc = run(o, st, err, q_what[q]);
	}
	for (; r < rq->n && rc == 0; r++) {
		if (!(st = stmt_raw(o, qdefs[q].single, err)))
			return -EIO;
		q_bind(o, st, 0, rq->v + r * QCOLS, nc);
		rc = run(o, st, err, q_what[q]);
	}
	rq->n = 0;
	return rc;
}

static int q_flush(struct de_outbox *o, struct de_error *err)
{
	int rc = 0;

	for (int q = 0; q < Q_MAX && rc == 0; q++)
		if (o->q[q].n)
			rc = q_flush_one(o, q, err);
	if (rc == 0)
		de_buf_reset(&o->arena);
	return rc;
}

/* The next free row of queue q (its values NULL), after flushing a full queue. */
static struct qval *q_row(struct de_outbox *o, int q, struct de_error *err)
{
	struct rowq *rq = &o->q[q];

	if (rq->n == QROWS && q_flush_one(o, q, err) < 0)
		return NULL;
	memset(rq->v + rq->n * QCOLS, 0, QCOLS * sizeof(struct qval));
	return rq->v + rq->n++ * QCOLS;
}

static void q_int(struct qval *v, int64_t i)
{
	v->type = QV_INT;
	v->i = i;
}

/* s (NULL: SQL NULL) copied into the arena.  0 or -ENOMEM/-E2BIG. */
static int q_text(struct de_outbox *o, struct qval *v, const char *s, size_t n)
{
	int rc;

	if (!s)
		return 0;
	v->off = o->arena.len;
	v->len = n;
	if ((rc = de_buf_append(&o->arena, s, n)) == 0)
		v->type = QV_TEXT;
	return rc;
}

/* The next id of a table (one past its largest, read once a transaction). */
static int next_id(struct de_outbox *o, int64_t *next, int stmt_i, int64_t *out,
		   struct de_error *err)
{
	if (!*next) {
		sqlite3_stmt *st = stmt_raw(o, stmt_i, err);
		if (!st)
			return -EIO;
		int rc = sqlite3_step(st);
		*next = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
		sqlite3_reset(st);
		if (rc != SQLITE_ROW)
			return db_fail(o, err, "cannot read the outbox");
	}
	*out = (*next)++;
	return 0;
}

/* Step a statement that returns no rows. */
static int run(struct de_outbox *o, sqlite3_stmt *st, struct de_error *err, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return db_fail(o, err, what);
	return 0;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

static const char *col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

/*
 * Step st to its end, handing each row to row(st, arg) (which builds the
 * typed row and calls the caller's callback): 0, the callback's nonzero
 * value, or a DatabaseError.  st is reset, or finalized when `own`.
 */
static int each_row(struct de_outbox *o, sqlite3_stmt *st, bool own,
		    int (*row)(sqlite3_stmt *st, void *arg), void *arg, struct de_error *err,
		    const char *what)
{
	int rc, r = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((r = row(st, arg)) != 0)
			break;
	if (own)
		sqlite3_finalize(st);
	else
		sqlite3_reset(st);
	if (r)
		return r;
	if (rc != SQLITE_DONE)
		return db_fail(o, err, what);
	return 0;
}

/* A caller's callback and its argument, for the row adapters below. */
struct cb_ctx {
	void *cb;
	void *arg;
};

/* ---- transactions -------------------------------------------------------------------- */

int de_outbox_tx_begin(struct de_outbox *o, struct de_error *err)
{
	sqlite3_stmt *st = stmt(o, S_BEGIN, err); /* (commits held event batches) */
	int rc;

	if (!st)
		return -EIO;
	if ((rc = run(o, st, err, "cannot begin an alerting transaction")) == 0)
		o->in_tx = true;
	return rc;
}

/* No statement left on a row: a reader that stays open blocks the WAL checkpoint. */
static void reset_all(struct de_outbox *o)
{
	for (int i = 0; i < S_MAX; i++)
		if (o->st[i])
			sqlite3_reset(o->st[i]);
}

int de_outbox_tx_commit(struct de_outbox *o, struct de_error *err)
{
	sqlite3_stmt *st;

	reset_all(o);
	st = stmt(o, S_COMMIT, err);
	int rc;

	if (!st)
		return -EIO;
	if ((rc = run(o, st, err, "cannot commit alerts")) == 0) {
		o->in_tx = false;
		o->next_deliv = o->next_state = 0;
	}
	return rc;
}

void de_outbox_tx_rollback(struct de_outbox *o)
{
	sqlite3_stmt *st;

	reset_all(o);
	st = stmt(o, S_ROLLBACK, NULL);

	if (st && o->in_tx && !sqlite3_get_autocommit(o->db))
		run(o, st, NULL, "rollback");
	o->in_tx = false;
	open_cache_clear(&o->open); /* what the rollback undid: loaded again when asked */
	for (int i = 0; i < Q_MAX; i++)
		o->q[i].n = 0;
	de_buf_reset(&o->arena);
	o->next_deliv = o->next_state = 0;
}

/* ---- subjects and state --------------------------------------------------------------- */

int de_outbox_subject(struct de_outbox *o, uint32_t pid, struct de_subject *out, bool *found,
		      struct de_error *err)
{
	sqlite3_stmt *st = stmt(o, S_SUBJECT, err);
	int rc;

	*found = false;
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, pid);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return db_fail(o, err, "cannot read the process of an alert");
	memset(out, 0, sizeof(*out));
	out->pid = pid;
	out->has_start_time = sqlite3_column_type(st, 1) != SQLITE_NULL;
	out->start_time = sqlite3_column_int64(st, 1);
	out->instance_id = sqlite3_column_int64(st, 2);
	out->name = col_text(st, 3);
	out->executable_path = col_text(st, 4);
	out->command_line = col_text(st, 5);
	out->user_id = col_text(st, 6);
	out->has_ppid = sqlite3_column_type(st, 7) != SQLITE_NULL;
	out->ppid = (uint32_t)sqlite3_column_int64(st, 7);
	out->parent_name = col_text(st, 8);
	out->parent_executable_path = col_text(st, 9);
	*found = true;
	return 0; /* the strings live until the statement is next used */
}

/* ---- the open states in memory ---- */

static char open_tomb;

static void open_cache_clear(struct open_cache *c)
{
	for (size_t i = 0; i < c->cap; i++)
		if (c->v[i].key && c->v[i].key != &open_tomb)
			free(c->v[i].key);
	free(c->v);
	memset(c, 0, sizeof(*c));
}

/* rule_id NUL subject in o->key: its length in *n.  0 or -ENOMEM/-E2BIG. */
static int open_key(struct de_outbox *o, const char *rule_id, const char *subject, size_t *n)
{
	size_t r = strlen(rule_id) + 1, l = strlen(subject);
	int rc;

	de_buf_reset(&o->key);
	if ((rc = de_buf_append(&o->key, rule_id, r)) < 0 ||
	    (rc = de_buf_append(&o->key, subject, l)) < 0)
		return rc;
	*n = r + l;
	return 0;
}

static size_t open_slot(const char *k, size_t n, size_t cap)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)k[i]) * 0x100000001b3ULL;
	return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

/* The entry of key k, or the empty slot where it would go (never a tombstone). */
static struct open_ent *open_find(struct open_cache *c, const char *k, size_t n)
{
	for (size_t i = open_slot(k, n, c->cap);; i = (i + 1) & (c->cap - 1)) {
		struct open_ent *e = &c->v[i];
		if (!e->key || (e->key != &open_tomb && e->klen == n && !memcmp(e->key, k, n)))
			return e;
	}
}

static int open_put(struct open_cache *c, const char *k, size_t n, int64_t id)
{
	if ((c->used + 1) * 2 > c->cap) { /* grow, dropping tombstones */
		struct open_cache g = {.loaded = c->loaded};
		g.cap = 64;
		while ((c->len + 1) * 4 > g.cap)
			g.cap *= 2;
		if (!(g.v = calloc(g.cap, sizeof(*g.v))))
			return -ENOMEM;
		for (size_t i = 0; i < c->cap; i++)
			if (c->v[i].key && c->v[i].key != &open_tomb) {
				*open_find(&g, c->v[i].key, c->v[i].klen) = c->v[i];
				g.len++;
			}
		g.used = g.len;
		free(c->v);
		*c = g;
	}
	struct open_ent *e = open_find(c, k, n);
	if (!e->key) {
		if (!(e->key = malloc(n)))
			return -ENOMEM;
		memcpy(e->key, k, n);
		e->klen = n;
		c->len++;
		c->used++;
	}
	e->id = id;
	return 0;
}

static void open_del(struct open_cache *c, const char *k, size_t n)
{
	struct open_ent *e = c->cap ? open_find(c, k, n) : NULL;

	if (e && e->key) {
		free(e->key);
		e->key = &open_tomb;
		c->len--;
	}
}

/* Load the open states from the store, unless they are loaded. */
static int open_load(struct de_outbox *o, struct de_error *err)
{
	sqlite3_stmt *st;
	int rc, r = 0;
	size_t n;

	if (o->open.loaded)
		return 0;
	if (!(st = stmt(o, S_STATE_KEYS, err)))
		return -EIO;
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((r = open_key(o, col_text(st, 1), col_text(st, 2), &n)) == 0)
			r = open_put(&o->open, o->key.p, n, sqlite3_column_int64(st, 0));
	sqlite3_reset(st);
	if (r < 0) {
		open_cache_clear(&o->open);
		return de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
	}
	if (rc != SQLITE_DONE) {
		open_cache_clear(&o->open);
		return db_fail(o, err, "cannot read alert state");
	}
	o->open.loaded = true;
	return 0;
}

int de_outbox_state_open_id(struct de_outbox *o, const char *rule_id, const char *subject,
			    int64_t *id, struct de_error *err)
{
	size_t n;
	int rc;

	if ((rc = open_load(o, err)) < 0)
		return rc;
	if ((rc = open_key(o, rule_id, subject, &n)) < 0)
		return de_error_set(err, DE_ERR_DATABASE, -rc, "cannot read alert state: %s",
				    "out of memory");
	struct open_ent *e = o->open.cap ? open_find(&o->open, o->key.p, n) : NULL;
	*id = e && e->key ? e->id : 0;
	return 0;
}

int de_outbox_state_touch(struct de_outbox *o, int64_t id, int64_t now, struct de_error *err)
{
	sqlite3_stmt *st = stmt(o, S_STATE_TOUCH, err);

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now);
	return run(o, st, err, "cannot update alert state");
}

int de_outbox_state_open(struct de_outbox *o, const char *rule_id, const char *subject,
			 const struct de_subject *p, const char *alert_id, int64_t now,
			 struct de_error *err)
{
	struct qval *v;
	int64_t id = 0;
	int rc;

	if ((rc = next_id(o, &o->next_state, S_STATE_NEXT, &id, err)) < 0)
		return rc;
	if (!(v = q_row(o, Q_STATE, err)))
		return -EIO;
	q_int(&v[0], id);
	if (p && p->pid)
		q_int(&v[3], p->pid);
	if (p && p->has_start_time)
		q_int(&v[4], p->start_time);
	if (p && p->instance_id)
		q_int(&v[5], p->instance_id);
	q_int(&v[7], now);
	if ((rc = q_text(o, &v[1], rule_id, strlen(rule_id))) < 0 ||
	    (rc = q_text(o, &v[2], subject, strlen(subject))) < 0 ||
	    (alert_id && (rc = q_text(o, &v[6], alert_id, strlen(alert_id))) < 0))
		return de_error_set(err, DE_ERR_DATABASE, -rc, "cannot record alert state: %s",
				    "out of memory");
	size_t n;
	if (o->open.loaded &&
	    (open_key(o, rule_id, subject, &n) < 0 || open_put(&o->open, o->key.p, n, id) < 0))
		open_cache_clear(&o->open); /* loaded again when next asked */
	return 0;
}

static int state_row(sqlite3_stmt *st, void *arg)
{
	const struct cb_ctx *c = arg;
	struct de_state_row row = {
		.id = sqlite3_column_int64(st, 0),
		.rule_id = col_text(st, 1),
		.subject = col_text(st, 2),
		.alert_id = col_text(st, 3),
		.pid = (uint32_t)sqlite3_column_int64(st, 4),
		.instance_id = sqlite3_column_int64(st, 5),
		.last_seen = sqlite3_column_int64(st, 6),
	};
	return ((de_state_cb)c->cb)(&row, c->arg);
}

static int cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/*
 * A rule's open states: their ids from the open states in memory (there
 * is no index by rule), in id order, each row read by its id.
 */
static int states_of_rule(struct de_outbox *o, const char *rule_id, de_state_cb cb, void *arg,
			  struct de_error *err)
{
	size_t rl = strlen(rule_id) + 1, n = 0;
	int64_t *ids = NULL;
	struct cb_ctx c = {(void *)cb, arg};
	int rc;

	if ((rc = open_load(o, err)) < 0)
		return rc;
	if (o->open.len && !(ids = malloc(o->open.len * sizeof(*ids))))
		return de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
	for (size_t i = 0; ids && i < o->open.cap && n < o->open.len; i++) {
		const struct open_ent *e = &o->open.v[i];
		if (e->key && e->key != &open_tomb && e->klen >= rl &&
		    memcmp(e->key, rule_id, rl) == 0)
			ids[n++] = e->id;
	}
	if (n > 1)
		qsort(ids, n, sizeof(*ids), cmp_id);
	rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		sqlite3_stmt *st = stmt(o, S_STATE_GET, err);
		if (!st) {
			rc = -EIO;
			break;
		}
		sqlite3_bind_int64(st, 1, ids[i]);
		rc = each_row(o, st, false, state_row, &c, err, "cannot read alert state");
	}
	free(ids);
	return rc;
}

int de_outbox_states_open(struct de_outbox *o, const char *rule_id, de_state_cb cb, void *arg,
			  struct de_error *err)
{
	sqlite3_stmt *st;
	struct cb_ctx c = {(void *)cb, arg};

	if (rule_id)
		return states_of_rule(o, rule_id, cb, arg, err);
	if (!(st = stmt(o, S_STATES_ALL, err)))
		return -EIO;
	return each_row(o, st, false, state_row, &c, err, "cannot read alert state");
}

int de_outbox_state_resolve(struct de_outbox *o, int64_t id, int64_t now, const char *resolution,
			    struct de_error *err)
{
	sqlite3_stmt *st = stmt(o, S_STATE_RESOLVE, err);

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now);
	bind_text(st, 3, resolution);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && o->open.loaded) {
		size_t n;
		if (open_key(o, col_text(st, 0), col_text(st, 1), &n) == 0)
			open_del(&o->open, o->key.p, n);
		else
			open_cache_clear(&o->open); /* loaded again when next asked */
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(o, err, "cannot resolve alert state");
	return 0;
}

int de_outbox_instance_live(struct de_outbox *o, int64_t instance_id, bool *live,
			    struct de_error *err)
{
	sqlite3_stmt *st = stmt(o, S_LIVE, err);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, instance_id);
	rc = sqlite3_step(st);
	*live = rc == SQLITE_ROW;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(o, err, "cannot read the snapshot");
	return 0;
}

int de_outbox_suppressed_add(struct de_outbox *o, int64_t now, const char *rule_id,
			     const struct de_subject *p, const struct de_exception *x,
			     const char *folded_into, struct de_error *err)
{
	sqlite3_stmt *st = stmt(o, S_SUPP_ADD, err);

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, now);
	bind_text(st, 2, rule_id);
	bind_text(st, 3, x ? "exception" : "folded");
	if (x) {
		bind_text(st, 4, x->label);
		bind_text(st, 5, x->origin);
		bind_text(st, 6, x->reason);
	}
	bind_text(st, 7, folded_into);
	if (p) {
		if (p->pid)
			sqlite3_bind_int64(st, 8, p->pid);
		if (p->has_start_time)
			sqlite3_bind_int64(st, 9, p->start_time);
		if (p->instance_id)
			sqlite3_bind_int64(st, 10, p->instance_id);
		bind_text(st, 11, p->name);
		bind_text(st, 12, p->executable_path);
		bind_text(st, 13, p->command_line);
	}
	return run(o, st, err, "cannot record a suppressed match");
}

/* ---- deduplication windows ------------------------------------------------------------- */

int de_outbox_window_put(struct de_outbox *o, const char *key, const char *alert_id,
			 int64_t start_ms, int64_t end_ms, uint64_t folded, int64_t last_ms,
			 struct de_error *err)
{
	sqlite3_stmt *st = stmt(o, S_WIN_PUT, err);

	if (!st)
		return -EIO;
	bind_text(st, 1, key);
	bind_text(st, 2, alert_id);
	sqlite3_bind_int64(st, 3, start_ms);
	sqlite3_bind_int64(st, 4, end_ms);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)folded);
	if (last_ms)
		sqlite3_bind_int64(st, 6, last_ms);
	return run(o, st, err, "cannot record a deduplication window");
}

int de_outbox_window_del(struct de_outbox *o, const char *key, struct de_error *err)
{
	sqlite3_stmt *st = stmt(o, S_WIN_DEL, err);

	if (!st)
		return -EIO;
	bind_text(st, 1, key);
	return run(o, st, err, "cannot close a deduplication window");
}

int de_outbox_windows(struct de_outbox *o, de_window_cb cb, void *arg, struct de_error *err)
{
	sqlite3_stmt *st = stmt(o, S_WINS, err);
	int rc, r = 0;

	if (!st)
		return -EIO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((r = cb(col_text(st, 0), col_text(st, 1), sqlite3_column_int64(st, 2),
			    sqlite3_column_int64(st, 3), (uint64_t)sqlite3_column_int64(st, 4),
			    sqlite3_column_int64(st, 5), arg)) != 0)
			break;
	sqlite3_reset(st);
	if (r < 0)
		return de_error_set(err, DE_ERR_ALERTING, -r, "cannot load deduplication windows");
	if (rc != SQLITE_DONE && !r)
		return db_fail(o, err, "cannot read deduplication windows");
	return 0;
}

/* ---- the outbox ---------------------------------------------------------------------- */

int de_outbox_add(struct de_outbox *o, const struct de_alert *a, const char *const *sinks, size_t n,
		  int64_t *ids, struct de_error *err)
{
	char id[DE_UUID_STR_LEN + 1];
	const char *sev = de_severity_name(a->severity);
	struct qval *v;
	int rc = 0;

	/* the columns as de_alert_to_json would write them, without building it whole */
	de_uuid_format(&a->id, id);
	de_buf_reset(&o->affected);
	rc = de_buf_putc(&o->affected, '[');
	for (size_t i = 0; rc == 0 && i < a->affected_processes_len; i++)
		if ((rc = i ? de_buf_putc(&o->affected, ',') : 0) == 0)
			rc = de_json_put_int(&o->affected, a->affected_processes[i]);
	if (rc == 0)
		rc = de_buf_putc(&o->affected, ']');
	de_buf_reset(&o->data);
	if (rc == 0)
		rc = de_json_dump(a->alert_data ? a->alert_data : json_null(), false, &o->data);
	de_buf_reset(&o->ctx);
	if (rc == 0 && a->context)
		rc = de_json_dump(a->context, false, &o->ctx);
	if (rc < 0)
		goto fail;
	if (!(v = q_row(o, Q_ALERT, err)))
		return -EIO;
#define QT(col, s) ((s) ? q_text(o, &v[col], (s), strlen(s)) : 0)
	q_int(&v[1], a->alert_time);
	if (a->has_scan_id)
		q_int(&v[6], a->scan_id);
	q_int(&v[8], a->process_count);
	if (a->has_rule_execution_time_ms)
		q_int(&v[10], a->rule_execution_time_ms);
	q_int(&v[12], a->incomplete);
	if ((rc = q_text(o, &v[0], id, DE_UUID_STR_LEN)) < 0 || (rc = QT(2, a->rule_id)) < 0 ||
	    (rc = QT(3, a->title)) < 0 || (rc = QT(4, a->description)) < 0 ||
	    (rc = QT(5, sev)) < 0 || (rc = q_text(o, &v[7], o->affected.p, o->affected.len)) < 0 ||
	    (rc = q_text(o, &v[9], o->data.p, o->data.len)) < 0 ||
	    (rc = QT(11, a->dedupe_key)) < 0 || (rc = QT(13, a->kind)) < 0 ||
	    (a->context && (rc = q_text(o, &v[14], o->ctx.p, o->ctx.len)) < 0))
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if ((rc = next_id(o, &o->next_deliv, S_DELIV_NEXT, &ids[i], err)) < 0)
			return rc;
		if (!(v = q_row(o, Q_DELIV, err)))
			return -EIO;
		q_int(&v[0], ids[i]);
		if ((rc = q_text(o, &v[1], id, DE_UUID_STR_LEN)) < 0 || (rc = QT(2, sinks[i])) < 0)
			goto fail;
	}
#undef QT
	return 0;
fail:
	return de_error_set(err, DE_ERR_DATABASE, -rc, "cannot store an alert: %s",
			    rc == -E2BIG ? "a JSON column is too large" : "out of memory");
}

void de_outbox_added_json(const struct de_outbox *o, struct de_alert_json_text *out)
{
	*out = (struct de_alert_json_text){
		.alert_data = o->data.p,
		.alert_data_len = o->data.len,
		.context = o->ctx.len ? o->ctx.p : NULL,
		.context_len = o->ctx.len,
	};
}

int de_outbox_due(struct de_outbox *o, const char *sink, int64_t now, size_t limit,
		  bool (*skip)(int64_t id, void *arg), de_delivery_cb cb, void *arg,
		  int64_t *next_due, struct de_error *err)
{
	sqlite3_stmt *st = stmt(o, S_DUE, err);
	size_t n = 0;
	int rc, r = 0;

	*next_due = 0;
	if (!st)
		return -EIO;
	bind_text(st, 1, sink);
	sqlite3_bind_int64(st, 2, now);
	while (n < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		if (skip && skip(id, arg))
			continue;
		struct de_delivery_row row = {
			.id = id,
			.alert_id = col_text(st, 1),
			.sink = col_text(st, 2),
			.status = DE_OUTBOX_PENDING,
			.attempts = (uint32_t)sqlite3_column_int64(st, 3),
			.next_attempt_at = sqlite3_column_int64(st, 4),
			.last_attempt_at = sqlite3_column_int64(st, 5),
			.error = col_text(st, 6),
		};
		if ((r = cb(&row, arg)) != 0)
			break;
		n++;
	}
	if (n >= limit)
		rc = SQLITE_DONE;
	sqlite3_reset(st);
	if (r < 0)
		return de_error_set(err, DE_ERR_ALERTING, -r, "cannot queue deliveries");
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return db_fail(o, err, "cannot read the outbox");
	if ((st = stmt(o, S_NEXT_DUE, err))) {
		bind_text(st, 1, sink);
		sqlite3_bind_int64(st, 2, now);
		if (sqlite3_step(st) == SQLITE_ROW)
			*next_due = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
	}
	return 0;
}

int de_outbox_pending(struct de_outbox *o, const char *sink, size_t *n, struct de_error *err)
{
	sqlite3_stmt *st = stmt(o, S_PENDING, err);
	int rc;

	if (!st)
		return -EIO;
	bind_text(st, 1, sink);
	rc = sqlite3_step(st);
	*n = rc == SQLITE_ROW ? (size_t)sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : db_fail(o, err, "cannot count pending deliveries");
}

int de_outbox_record(struct de_outbox *o, int64_t id, enum de_outbox_status s, uint32_t attempts,
		     int64_t now, int64_t next_attempt_at, const char *error, struct de_error *err)
{
	sqlite3_stmt *st = stmt(o, S_RECORD, err);

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	bind_text(st, 2, de_outbox_status_name(s));
	sqlite3_bind_int64(st, 3, attempts);
	sqlite3_bind_int64(st, 4, now);
	if (s == DE_OUTBOX_PENDING)
		sqlite3_bind_int64(st, 5, next_attempt_at);
	bind_text(st, 6, error && *error ? error : NULL);
	return run(o, st, err, "cannot record a delivery");
}

int de_outbox_resume(struct de_outbox *o, const char *sink, int64_t now, struct de_error *err)
{
	sqlite3_stmt *st = stmt(o, S_RESUME, err);

	if (!st)
		return -EIO;
	bind_text(st, 1, sink);
	sqlite3_bind_int64(st, 2, now);
	return run(o, st, err, "cannot record a delivery");
}

int de_outbox_make_due(struct de_outbox *o, const char *sink, int64_t from_id, int64_t now,
		       struct de_error *err)
{
	sqlite3_stmt *st = stmt(o, S_MAKE_DUE, err);

	if (!st)
		return -EIO;
	bind_text(st, 1, sink);
	sqlite3_bind_int64(st, 2, from_id);
	sqlite3_bind_int64(st, 3, now);
	return run(o, st, err, "cannot queue deliveries in the store");
}

int de_outbox_recover(struct de_outbox *o, int64_t now, size_t *n, struct de_error *err)
{
	sqlite3_stmt *st = stmt(o, S_RECOVER, err);
	int rc;

	*n = 0;
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, now);
	if ((rc = run(o, st, err, "cannot recover deliveries in flight")) == 0)
		*n = (size_t)sqlite3_changes(o->db);
	return rc;
}

static int delivered_cmp(const void *a, const void *b)
{
	const struct delivered *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

int de_outbox_record_delivered(struct de_outbox *o, const int64_t *ids, const uint32_t *attempts,
			       size_t n, int64_t now, struct de_error *err)
{
	struct delivered *v;
	bool sorted = true;
	int rc = 0;

	/* the array is kept from call to call: a poll's worth (a few thousand
	 * at most, bounded by max_queue_size per sink) */
	if (n > o->dv_cap) {
		struct delivered *nv = realloc(o->dv, n * sizeof(*nv));
		if (!nv)
			return de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
		o->dv = nv;
		o->dv_cap = n;
	}
	v = o->dv;
	for (size_t i = 0; i < n; i++) {
		v[i] = (struct delivered){ids[i], attempts[i]};
		sorted &= i == 0 || v[i].id > v[i - 1].id;
	}
	if (!sorted) /* they come in the order they were queued: usually sorted already */
		qsort(v, n, sizeof(*v), delivered_cmp);
	/*
	 * One statement per run of consecutive ids with the same attempts: a
	 * range of rowids, no list for SQLite to index first.  Rows of one
	 * alert's sinks and of alerts raised together are consecutive, so a
	 * poll's deliveries are usually a few runs.
	 */
	for (size_t i = 0, j; i < n && rc == 0; i = j) {
		sqlite3_stmt *st = stmt(o, S_DELIVERED, err);
		if (!st) {
			rc = -EIO;
			break;
		}
		for (j = i + 1;
		     j < n && v[j].id == v[j - 1].id + 1 && v[j].attempts == v[i].attempts; j++)
			;
		sqlite3_bind_int64(st, 1, v[i].id);
		sqlite3_bind_int64(st, 2, v[j - 1].id);
		sqlite3_bind_int64(st, 3, v[i].attempts);
		sqlite3_bind_int64(st, 4, now);
		rc = run(o, st, err, "cannot record deliveries");
	}
	return rc;
}

/* An alert from the row st is on (the columns of S_ALERT_GET). */
static int alert_from_row(struct de_outbox *o, sqlite3_stmt *st, struct de_alert *out,
			  struct de_error *err)
{
	json_t *j = json_object();
	json_error_t je;
	int rc;

	if (!j)
		return de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
	json_object_set_new(j, "id", json_string(col_text(st, 0)));
	json_object_set_new(j, "alert_time", json_integer(sqlite3_column_int64(st, 1)));
	de_json_put_bytes(j, "rule_id", col_text(st, 2));
	de_json_put_bytes(j, "title", col_text(st, 3));
	de_json_put_bytes(j, "description", col_text(st, 4));
	json_object_set_new(j, "severity", json_string(col_text(st, 5)));
	json_object_set_new(j, "scan_id",
			    sqlite3_column_type(st, 6) == SQLITE_NULL
				    ? json_null()
				    : json_integer(sqlite3_column_int64(st, 6)));
	json_object_set_new(j, "affected_processes", json_loads(col_text(st, 7), 0, &je));
	json_object_set_new(j, "process_count", json_integer(sqlite3_column_int64(st, 8)));
	json_object_set_new(j, "alert_data",
			    json_loads(col_text(st, 9), JSON_DECODE_ANY, &je) ?: json_null());
	json_object_set_new(j, "rule_execution_time_ms",
			    sqlite3_column_type(st, 10) == SQLITE_NULL
				    ? json_null()
				    : json_integer(sqlite3_column_int64(st, 10)));
	de_json_put_bytes(j, "dedupe_key", col_text(st, 11));
	if (sqlite3_column_int(st, 12))
		json_object_set_new(j, "incomplete", json_true());
	if (col_text(st, 13))
		json_object_set_new(j, "kind", json_string(col_text(st, 13)));
	if (col_text(st, 14))
		json_object_set_new(j, "context", json_loads(col_text(st, 14), 0, &je));
	rc = de_alert_from_json(j, out, err);
	json_decref(j);
	(void)o;
	return rc;
}

int de_outbox_alert_load(struct de_outbox *o, const char *alert_id, struct de_alert *out,
			 struct de_error *err)
{
	sqlite3_stmt *st = stmt(o, S_ALERT_GET, err);
	int rc;

	if (!st)
		return -EIO;
	bind_text(st, 1, alert_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return de_error_set(err, DE_ERR_DATABASE, ENOENT, "no alert %s", alert_id);
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return db_fail(o, err, "cannot read an alert");
	}
	rc = alert_from_row(o, st, out, err);
	sqlite3_reset(st);
	return rc;
}

/* ---- the CLI's reads and the dead-letter queue ------------------------------------------ */

int de_outbox_alerts_list(struct de_outbox *o, const struct de_alert_filter *f, de_alert_row_cb cb,
			  void *arg, struct de_error *err)
{
	char sql[1400];
	sqlite3_stmt *st = NULL;
	int rc, r = 0, i = 1;

	snprintf(sql, sizeof(sql),
		 "SELECT a.id, a.alert_time, a.rule_id, a.title, a.description, a.severity,"
		 " a.scan_id, a.affected_processes, a.process_count, a.alert_data,"
		 " a.rule_execution_time_ms, a.dedupe_key, a.incomplete, a.kind, a.context,"
		 /* the open states' alerts read once (alert_state_open), the
		    resolved ones looked up by alert (schema 10's partial index) */
		 " CASE WHEN a.id IN (SELECT s.alert_id FROM alert_state s"
		 "  WHERE s.status = 'open') THEN 'open'"
		 "  WHEN EXISTS (SELECT 1 FROM alert_state s WHERE s.status = 'resolved'"
		 "  AND s.alert_id = a.id) THEN 'resolved' ELSE '' END AS st"
		 " FROM alerts a WHERE 1 %s %s %s %s ORDER BY a.alert_time DESC, a.rowid DESC %s",
		 f->has_since ? "AND a.alert_time >= ?1" : "",
		 f->has_severity ? "AND (CASE a.severity WHEN 'low' THEN 0 WHEN 'medium' THEN 1"
				   " WHEN 'high' THEN 2 ELSE 3 END) >= ?2"
				 : "",
		 f->rule_id ? "AND a.rule_id = ?3" : "", f->status ? "AND st = ?4" : "",
		 f->limit ? "LIMIT ?5" : "");
	if (sqlite3_prepare_v2(o->db, sql, -1, &st, NULL) != SQLITE_OK)
		return db_fail(o, err, "cannot list alerts");
	if (f->has_since)
		sqlite3_bind_int64(st, 1, f->since_ms);
	if (f->has_severity)
		sqlite3_bind_int(st, 2, (int)f->severity);
	bind_text(st, 3, f->rule_id);
	bind_text(st, 4, f->status);
	if (f->limit)
		sqlite3_bind_int64(st, 5, (sqlite3_int64)f->limit);
	(void)i;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct de_alert a = {0};
		struct de_error e = {0};
		if (alert_from_row(o, st, &a, &e) < 0)
			continue; /* a row we cannot read back is skipped, not fatal */
		r = cb(&a, col_text(st, 15) ? col_text(st, 15) : "", arg);
		de_alert_clear(&a);
		if (r)
			break;
	}
	sqlite3_finalize(st);
	if (r)
		return r;
	if (rc != SQLITE_DONE)
		return db_fail(o, err, "cannot list alerts");
	return 0;
}

static int suppressed_row(sqlite3_stmt *st, void *arg)
{
	const struct cb_ctx *c = arg;
	struct de_suppressed_row row = {
		.id = sqlite3_column_int64(st, 0),
		.t = sqlite3_column_int64(st, 1),
		.rule_id = col_text(st, 2),
		.kind = col_text(st, 3),
		.exception = col_text(st, 4),
		.origin = col_text(st, 5),
		.reason = col_text(st, 6),
		.folded_into = col_text(st, 7),
		.pid = (uint32_t)sqlite3_column_int64(st, 8),
		.process_name = col_text(st, 9),
		.executable_path = col_text(st, 10),
	};
	return ((de_suppressed_cb)c->cb)(&row, c->arg);
}

int de_outbox_suppressed_list(struct de_outbox *o, const struct de_alert_filter *f,
			      de_suppressed_cb cb, void *arg, struct de_error *err)
{
	struct cb_ctx c = {(void *)cb, arg};
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(o->db,
			       "SELECT id, t, rule_id, kind, exception, exception_origin, reason,"
			       " folded_into, pid, process_name, executable_path"
			       " FROM alert_suppressed WHERE (?1 IS NULL OR t >= ?1)"
			       " AND (?2 IS NULL OR rule_id = ?2) ORDER BY t DESC, id DESC"
			       " LIMIT coalesce(?3, -1)",
			       -1, &st, NULL) != SQLITE_OK)
		return db_fail(o, err, "cannot list suppressed matches");
	if (f->has_since)
		sqlite3_bind_int64(st, 1, f->since_ms);
	bind_text(st, 2, f->rule_id);
	if (f->limit)
		sqlite3_bind_int64(st, 3, (sqlite3_int64)f->limit);
	return each_row(o, st, true, suppressed_row, &c, err, "cannot list suppressed matches");
}

static int delivery_row(sqlite3_stmt *st, void *arg)
{
	const struct cb_ctx *c = arg;
	struct de_delivery_row row = {
		.id = sqlite3_column_int64(st, 0),
		.alert_id = col_text(st, 1),
		.sink = col_text(st, 2),
		.status = (enum de_outbox_status)status_parse(col_text(st, 3)),
		.attempts = (uint32_t)sqlite3_column_int64(st, 4),
		.next_attempt_at = sqlite3_column_int64(st, 5),
		.last_attempt_at = sqlite3_column_int64(st, 6),
		.delivered_at = sqlite3_column_int64(st, 7),
		.error = col_text(st, 8),
	};
	return ((de_delivery_cb)c->cb)(&row, c->arg);
}

int de_outbox_deliveries(struct de_outbox *o, const char *alert_id, bool dead_only,
			 de_delivery_cb cb, void *arg, struct de_error *err)
{
	struct cb_ctx c = {(void *)cb, arg};
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(o->db,
			       "SELECT id, alert_id, sink, status, attempts, next_attempt_at,"
			       " last_attempt_at, delivered_at, error FROM alert_deliveries"
			       " WHERE (?1 IS NULL OR alert_id = ?1)"
			       " AND (?2 = 0 OR status = 'dead') ORDER BY id",
			       -1, &st, NULL) != SQLITE_OK)
		return db_fail(o, err, "cannot list deliveries");
	bind_text(st, 1, alert_id);
	sqlite3_bind_int(st, 2, dead_only);
	return each_row(o, st, true, delivery_row, &c, err, "cannot list deliveries");
}

static int exec_count(struct de_outbox *o, const char *sql, const char *text, int64_t num,
		      size_t *n, struct de_error *err, const char *what)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(o->db, sql, -1, &st, NULL) != SQLITE_OK)
		return db_fail(o, err, what);
	bind_text(st, 1, text);
	sqlite3_bind_int64(st, 2, num);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_fail(o, err, what);
	*n = (size_t)sqlite3_changes(o->db);
	return 0;
}

int de_outbox_dlq_retry(struct de_outbox *o, const char *alert_id, int64_t now, size_t *n,
			struct de_error *err)
{
	return exec_count(o,
			  "UPDATE alert_deliveries SET status = 'pending', attempts = 0,"
			  " next_attempt_at = ?2 WHERE status = 'dead'"
			  " AND (?1 IS NULL OR alert_id = ?1)",
			  alert_id, now, n, err, "cannot retry dead deliveries");
}

int de_outbox_dlq_purge(struct de_outbox *o, int64_t before_ms, size_t *n, struct de_error *err)
{
	return exec_count(o,
			  "DELETE FROM alert_deliveries WHERE status = 'dead'"
			  " AND (?1 IS NULL) AND (?2 = 0 OR coalesce(last_attempt_at, 0) < ?2)",
			  NULL, before_ms, n, err, "cannot purge dead deliveries");
}

/* A connection of our own on the store file, for the two DLQ writes. */
static int file_outbox(const char *path, sqlite3 **db, struct de_outbox *o, struct de_error *err)
{
	if (sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL) !=
	    SQLITE_OK) {
		int rc = de_error_set(err, DE_ERR_DATABASE, *db ? EIO : ENOMEM,
				      "cannot open the event store %s: %s", path,
				      *db ? sqlite3_errmsg(*db) : "out of memory");
		sqlite3_close(*db);
		*db = NULL;
		return rc;
	}
	sqlite3_busy_timeout(*db, 5000);
	memset(o, 0, sizeof(*o));
	o->db = *db;
	return 0;
}

int de_outbox_dlq_retry_file(const char *path, const char *alert_id, int64_t now, size_t *n,
			     struct de_error *err)
{
	struct de_outbox o;
	sqlite3 *db = NULL;
	int rc = file_outbox(path, &db, &o, err);

	if (rc == 0)
		rc = de_outbox_dlq_retry(&o, alert_id, now, n, err);
	sqlite3_close(db);
	return rc;
}

int de_outbox_dlq_purge_file(const char *path, int64_t before_ms, size_t *n, struct de_error *err)
{
	struct de_outbox o;
	sqlite3 *db = NULL;
	int rc = file_outbox(path, &db, &o, err);

	if (rc == 0)
		rc = de_outbox_dlq_purge(&o, before_ms, n, err);
	sqlite3_close(db);
	return rc;
}
