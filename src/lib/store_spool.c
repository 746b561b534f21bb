/*
 * store_spool.c — the fleet's spool (store.h): events and scan summaries
 * waiting for the fleet's stream, in table fleet_spool (schema 6), with the
 * count of those dropped by the bound in store_state ('fleet_spool_dropped').
 *
 * Messages are only ever removed from the front (the oldest, once
 * published), so the number waiting is max(id) - min(id) + 1: two index
 * lookups instead of a count(*) of a table that may hold 100,000 rows.
 * The statements are prepared once per store (a publishing agent spools
 * each exec batch and flushes every turn of its loop), and reset after
 * each use: a statement left on a row would hold the WAL's checkpoint.
 */
#include "store_int.h"

#include <errno.h>
#include <string.h>

#define DROPPED_KEY "fleet_spool_dropped"

enum { SP_ROWS, SP_INS, SP_CNT, SP_PEEK, SP_DEL, SP_STATS, SP_MAX };
static const char *const spool_sql[SP_MAX] = {
	[SP_ROWS] = "SELECT min(id), max(id) FROM fleet_spool",
	[SP_INS] = "INSERT INTO fleet_spool(kind, msg_id, payload, created_at)"
		   " VALUES(?1, ?2, ?3, ?4)",
	[SP_CNT] = "INSERT INTO store_state(key, value) VALUES('" DROPPED_KEY "', ?1)"
		   " ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
	[SP_PEEK] = "SELECT id, kind, msg_id, payload, created_at FROM fleet_spool"
		    " ORDER BY id LIMIT ?1",
	[SP_DEL] = "DELETE FROM fleet_spool WHERE id <= ?1",
	[SP_STATS] = "SELECT (SELECT value FROM store_state WHERE key = '" DROPPED_KEY "'),"
		     " (SELECT created_at FROM fleet_spool WHERE id = ?1)",
};
_Static_assert(SP_MAX == STORE_SPOOL_STMTS, "store_int.h's spool_st holds every statement");

/* Statement i, prepared at its first use; NULL (err set, as what) when it cannot be. */
static sqlite3_stmt *spool_stmt(struct de_store *s, int i, struct de_error *err, const char *what)
{
	if (!s->spool_st[i] &&
	    sqlite3_prepare_v3(s->db, spool_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->spool_st[i],
			       NULL) != SQLITE_OK) {
		sqlite3_finalize(s->spool_st[i]);
		s->spool_st[i] = NULL;
		store_db_err(s, err, what);
		return NULL;
	}
	return s->spool_st[i];
}

/* Done with st: off its row, its bindings cleared. */
static void spool_done(sqlite3_stmt *st)
{
	if (st) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
}

void store_spool_close(struct de_store *s)
{
	for (int i = 0; i < SP_MAX; i++) {
		sqlite3_finalize(s->spool_st[i]);
		s->spool_st[i] = NULL;
	}
}

/* Rows waiting, from the ends of the id range. */
static int spool_rows(struct de_store *s, uint64_t *rows, int64_t *first, struct de_error *err)
{
	sqlite3_stmt *st = spool_stmt(s, SP_ROWS, err, "cannot read the fleet spool");
	int rc;

	if (!st)
		return -EIO;
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = store_db_err(s, err, "cannot read the fleet spool");
		spool_done(st);
		return rc;
	}
	*rows = sqlite3_column_type(st, 0) == SQLITE_NULL
			? 0
			: (uint64_t)(sqlite3_column_int64(st, 1) - sqlite3_column_int64(st, 0) + 1);
	if (first)
		*first = sqlite3_column_int64(st, 0);
	spool_done(st);
	return 0;
}

int de_store_spool_add(struct de_store *s, const struct de_spool_msg *msgs, size_t n,
		       uint64_t max_rows, size_t *dropped, struct de_error *err)
{
	sqlite3_stmt *ins = NULL, *cnt = NULL;
	uint64_t rows = 0;
	size_t lost = 0;
	bool joined;
	int rc;

	if (s->read_only)
		return de_error_set(err, DE_ERR_DATABASE, EROFS, "the event store is read-only");
	if (n == 0)
		return 0;
	/* the messages of held event batches commit with them (or go with them) */
	joined = store_held_open(s);
	if (!joined && (rc = store_begin_write(s, err, "cannot spool fleet messages")) < 0)
		return rc;
	if ((rc = spool_rows(s, &rows, NULL, err)) < 0)
		goto fail;
	if (!(ins = spool_stmt(s, SP_INS, err, "cannot spool fleet messages")) ||
	    !(cnt = spool_stmt(s, SP_CNT, err, "cannot spool fleet messages"))) {
		rc = -EIO;
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		if (rows >= max_rows) {
			lost++;
			continue;
		}
		sqlite3_bind_text(ins, 1, msgs[i].kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 2, msgs[i].msg_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 3, msgs[i].payload, -1, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 4, msgs[i].created_at);
		rc = store_step(s, ins, err, "cannot spool a fleet message");
		sqlite3_clear_bindings(ins);
		if (rc < 0)
			goto fail;
		rows++;
	}
	if (lost) {
		sqlite3_bind_int64(cnt, 1, (sqlite3_int64)lost);
		if ((rc = store_step(s, cnt, err, "cannot count dropped fleet messages")) < 0)
			goto fail;
	}
	spool_done(ins);
	spool_done(cnt);
	ins = cnt = NULL;
	if (!joined && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		rc = store_db_err(s, err, "cannot commit the fleet spool");
		goto fail;
	}
	if (dropped)
		*dropped += lost;
	return 0;
fail:
	spool_done(ins);
	spool_done(cnt);
	if (joined)
		store_rollback(s); /* the held batches too: de_store_held_take says so */
	else if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

int de_store_spool_peek(struct de_store *s, size_t limit, de_spool_fn fn, void *arg,
			struct de_error *err)
{
	sqlite3_stmt *st = spool_stmt(s, SP_PEEK, err, "cannot read the fleet spool");
	int rc = 0, step;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)limit);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct de_spool_msg m = {
			.id = sqlite3_column_int64(st, 0),
			.kind = (const char *)sqlite3_column_text(st, 1),
			.msg_id = (const char *)sqlite3_column_text(st, 2),
			.payload = (const char *)sqlite3_column_text(st, 3),
			.created_at = sqlite3_column_int64(st, 4),
		};
		if (!m.kind || !m.msg_id || !m.payload) {
			step = SQLITE_NOMEM;
			break;
		}
		if ((rc = fn(&m, arg)) != 0)
			break;
	}
	if (rc == 0 && step != SQLITE_DONE && step != SQLITE_ROW)
		rc = store_db_err(s, err, "cannot read the fleet spool");
	spool_done(st);
	return rc;
}

int de_store_spool_remove(struct de_store *s, int64_t upto_id, struct de_error *err)
{
	sqlite3_stmt *st;
	int rc;

	if (s->read_only)
		return de_error_set(err, DE_ERR_DATABASE, EROFS, "the event store is read-only");
	if (!(st = spool_stmt(s, SP_DEL, err, "cannot remove published fleet messages")))
		return -EIO;
	sqlite3_bind_int64(st, 1, upto_id);
	rc = store_step(s, st, err, "cannot remove published fleet messages");
	spool_done(st);
	return rc;
}

int de_store_spool_stats(struct de_store *s, struct de_spool_stats *out, struct de_error *err)
{
	struct de_spool_stats r = {0};
	sqlite3_stmt *st;
	int64_t first = 0;
	int rc;

	if ((rc = spool_rows(s, &r.rows, &first, err)) < 0)
		return rc;
	if (!(st = spool_stmt(s, SP_STATS, err, "cannot read the fleet spool")))
		return -EIO;
	sqlite3_bind_int64(st, 1, first);
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = store_db_err(s, err, "cannot read the fleet spool");
		spool_done(st);
		return rc;
	}
	r.dropped = (uint64_t)sqlite3_column_int64(st, 0);
	r.oldest_ms = sqlite3_column_int64(st, 1);
	spool_done(st);
	*out = r;
	return 0;
}
