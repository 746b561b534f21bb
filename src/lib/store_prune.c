/*
 * store_prune.c — retention (de_store_prune): history older than the
 * retention age, then the oldest history while the pages in use exceed the
 * size cap, in short transactions so a scan is never held up for long;
 * never the snapshot, nor an alert whose deliveries are not all done, nor
 * what such an alert refers to (its state, the matches folded into it,
 * its deduplication window), nor an open alert state.
 * Files are made with auto_vacuum=INCREMENTAL, so pruning also shrinks
 * them.  Between scans it also folds the write-ahead log into the file.
 *
 * The free-disk watermark: while the file system the store is on has less
 * free than min_free_bytes, the oldest process history goes (whatever its
 * age or the size cap; alerts stay, they are few and what the service is
 * for); when none is left the store stops writing history
 * (store_diff.c checks history_off) until the free space is back above
 * 1.5 times the watermark, so it does not flap at the edge.  The snapshot,
 * scans and alerts are still written: they are what the service is for.
 */
#include "store_int.h"

#include <errno.h>
#include <stdint.h>
#include <sys/statvfs.h>

/*
 * The history categories, oldest first within each.  ?1 is the cutoff
 * (rows older than it may go), ?2 the batch size, ?3 the age cutoff alone
 * (deduplication windows go by age only: a window that just closed waits
 * for its summary).  Exited instances go with their samples and changes;
 * alerts only when every delivery is done; resolved alert states,
 * suppressed or folded matches and closed windows only when the alert they
 * name (if any) has every delivery done.
 */
#define DELIVERED(col)                                                                             \
	"(" col " IS NULL OR NOT EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.alert_id = " col \
	" AND d.status != 'delivered'))"

static const char *const prune_sql[] = {
	"CREATE TEMP TABLE IF NOT EXISTS prune_ids(id INTEGER PRIMARY KEY);"
	"DELETE FROM temp.prune_ids;"
	"INSERT INTO temp.prune_ids SELECT id FROM process_instances"
	" WHERE exited_at IS NOT NULL AND exited_at < ?1 ORDER BY exited_at LIMIT ?2;",
	"DELETE FROM process_samples WHERE id IN (SELECT id FROM process_samples"
	" WHERE t < ?1 ORDER BY id LIMIT ?2)",
	"DELETE FROM process_changes WHERE id IN (SELECT id FROM process_changes"
	" WHERE changed_at < ?1 ORDER BY id LIMIT ?2)",
	"DELETE FROM scans WHERE id IN (SELECT id FROM scans WHERE started_at < ?1"
	" AND status != 'running' AND id < (SELECT max(id) FROM scans) ORDER BY id LIMIT ?2)",
	"CREATE TEMP TABLE IF NOT EXISTS prune_alerts(id TEXT PRIMARY KEY);"
	"DELETE FROM temp.prune_alerts;"
	"INSERT INTO temp.prune_alerts SELECT a.id FROM alerts a WHERE a.alert_time < ?1"
	" AND EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.alert_id = a.id)"
	" AND NOT EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.alert_id = a.id"
	"  AND d.status != 'delivered') ORDER BY a.alert_time LIMIT ?2;",
	/* connections last reported or found open before the cutoff (an open
	   one is found again by every connection scan) */
	"DELETE FROM network_connections WHERE id IN (SELECT id FROM network_connections"
	" WHERE last_seen < ?1 ORDER BY last_seen LIMIT ?2)",
	"DELETE FROM alert_state WHERE id IN (SELECT s.id FROM alert_state s"
	" WHERE s.status = 'resolved' AND s.resolved_at < ?1 AND " DELIVERED(
		"s.alert_id") " ORDER BY s.resolved_at LIMIT ?2)",
	"DELETE FROM alert_suppressed WHERE id IN (SELECT x.id FROM alert_suppressed x"
	" WHERE x.t < ?1 AND " DELIVERED("x.folded_into") " ORDER BY x.t LIMIT ?2)",
	"DELETE FROM dedup_windows WHERE key IN (SELECT w.key FROM dedup_windows w"
	" WHERE w.end_ms < ?3 AND " DELIVERED("w.alert_id") " ORDER BY w.end_ms LIMIT ?2)",
};

#define NCAT (sizeof(prune_sql) / sizeof(prune_sql[0]))

/* Run the (possibly multi-statement) sql with ?1/?2/?3 bound; changes() of the last. */
static int exec_bound(struct de_store *s, const char *sql, int64_t cutoff, int64_t batch,
		      int64_t age_cutoff, int64_t *changes, struct de_error *err)
{
	const char *tail = sql;
	int rc = 0;

	while (tail && *tail) {
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(s->db, tail, -1, &st, &tail) != SQLITE_OK)
			return store_db_err(s, err, "cannot prepare retention");
		if (!st)
			break;
		if (sqlite3_bind_parameter_count(st) >= 1)
			sqlite3_bind_int64(st, 1, cutoff);
		if (sqlite3_bind_parameter_count(st) >= 2)
			sqlite3_bind_int64(st, 2, batch);
		if (sqlite3_bind_parameter_count(st) >= 3)
			sqlite3_bind_int64(st, 3, age_cutoff);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE && rc != SQLITE_ROW)
			return store_db_err(s, err, "retention failed");
		*changes = sqlite3_changes64(s->db);
	}
	return 0;
}

/* How many of prune_sql's categories are process history (alerts are not). */
#define PRUNE_PROCESS_HISTORY 4

/* One batch from the first of the first ncat categories with anything older than cutoff
   (windows: age_cutoff). */
static int prune_step(struct de_store *s, int64_t cutoff, int64_t batch, size_t ncat,
		      int64_t age_cutoff, int64_t *deleted, struct de_error *err)
{
	int rc;
	int64_t n = 0;

	*deleted = 0;
	/* (held event batches are committed first) */
	if ((rc = store_begin_write(s, err, "cannot start retention")) < 0)
		return rc;
	for (size_t c = 0; c < ncat; c++) {
		if ((rc = exec_bound(s, prune_sql[c], cutoff, batch, age_cutoff, &n, err)) < 0)
			goto fail;
		if (n <= 0)
			continue;
		if (c == 0) {
			static const char *const del[] = {
				"DELETE FROM process_samples WHERE instance_id IN temp.prune_ids",
				"DELETE FROM process_changes WHERE instance_id IN temp.prune_ids",
				"DELETE FROM process_instances WHERE id IN temp.prune_ids",
			};
			for (size_t k = 0; k < 3; k++) {
				int64_t m = 0;
				if ((rc = exec_bound(s, del[k], 0, 0, 0, &m, err)) < 0)
					goto fail;
				*deleted += m;
			}
		} else if (c == 4) {
			int64_t m = 0;
			if ((rc = exec_bound(s,
					     "DELETE FROM alert_deliveries WHERE alert_id IN "
					     "temp.prune_alerts",
					     0, 0, 0, &m, err)) < 0)
				goto fail;
			*deleted += m;
			if ((rc = exec_bound(s, "DELETE FROM alerts WHERE id IN temp.prune_alerts",
					     0, 0, 0, &m, err)) < 0)
				goto fail;
			*deleted += m;
		} else {
			*deleted += n;
		}
		break;
	}
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		rc = store_db_err(s, err, "cannot commit retention");
		goto fail;
	}
	if (*deleted > 0) { /* history rules read changed */
		s->versions.data++;
		s->versions.identity++;
	}
	return 0;
fail:
	store_rollback(s);
	return rc;
}

void de_store_set_limits(struct de_store *s, uint64_t max_size_mb, uint64_t min_free_bytes)
{
	s->max_size_bytes = max_size_mb * 1024 * 1024;
	s->min_free_bytes = min_free_bytes;
}

/* Free bytes for an unprivileged user where the store is (UINT64_MAX: unknown). */
static uint64_t free_bytes(struct de_store *s)
{
	struct statvfs v;

	if (s->free_bytes)
		return s->free_bytes(s->path);
	if (statvfs(s->path, &v) != 0)
		return UINT64_MAX;
	return (uint64_t)v.f_bavail * (uint64_t)v.f_frsize;
}

/* Below the watermark: prune the oldest history until there is room again. */
static int prune_for_disk(struct de_store *s, int64_t batch, size_t *left,
			  struct de_prune_stats *st, struct de_error *err)
{
	int64_t del;
	int rc;
	bool emptied = false;

	st->free_bytes = free_bytes(s);
	if (!s->min_free_bytes || st->free_bytes >= s->min_free_bytes) {
		if (s->history_off && st->free_bytes >= s->min_free_bytes + s->min_free_bytes / 2)
			s->history_off = false;
		st->history_off = s->history_off;
		return 0;
	}
	st->low_disk = true;
	while (st->free_bytes < s->min_free_bytes) {
		if (*left == 0) {
			st->more = true;
			break;
		}
		(*left)--;
		if ((rc = prune_step(s, INT64_MAX, batch, PRUNE_PROCESS_HISTORY, 0, &del, err)) < 0)
			return rc;
		st->rows += (size_t)del;
		if (del == 0) {
			emptied = true;
			break;
		}
		/* the pages freed only count once they leave the file (in WAL
		   mode, once a checkpoint has copied the shorter file back) */
		sqlite3_exec(s->db, "PRAGMA incremental_vacuum", NULL, NULL, NULL);
		if (s->wal)
			sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL,
						  NULL);
		st->free_bytes = free_bytes(s);
	}
	if (emptied)
		s->history_off = true;
	st->history_off = s->history_off;
	return 0;
}

int de_store_prune(struct de_store *s, int64_t now_ms, uint64_t retention_days, size_t batch,
		   size_t max_batches, struct de_prune_stats *out, struct de_error *err)
{
	struct de_prune_stats st = {0};
	int64_t b = batch ? (int64_t)batch : 500, del;
	size_t left = max_batches ? max_batches : 20;
	int rc;

	if (s->read_only)
		return de_error_set(err, DE_ERR_DATABASE, EROFS, "%s: store opened read-only",
				    s->path);
	/* windows go by age alone: none without an age to go by */
	int64_t age_cutoff =
		retention_days ? now_ms - (int64_t)retention_days * 86400000 : INT64_MIN;
	if (retention_days) {
		int64_t cutoff = age_cutoff;
		for (; left > 0; left--) {
			if ((rc = prune_step(s, cutoff, b, NCAT, age_cutoff, &del, err)) < 0)
				return rc;
			st.rows += (size_t)del;
			if (del == 0)
				break;
		}
		if (left == 0)
			st.more = true;
	}
	st.used_bytes = store_used_bytes(s);
	while (s->max_size_bytes && st.used_bytes > s->max_size_bytes) {
		if (left == 0) {
			st.more = true;
			break;
		}
		left--;
		if ((rc = prune_step(s, INT64_MAX, b, NCAT, age_cutoff, &del, err)) < 0)
			return rc;
		st.rows += (size_t)del;
		st.used_bytes = store_used_bytes(s);
		if (del == 0) {
			st.over_cap = true;
			break;
		}
	}
	if ((rc = prune_for_disk(s, b, &left, &st, err)) < 0)
		return rc;
	if (st.low_disk)
		st.used_bytes = store_used_bytes(s);
	/* hand freed pages back (files created with auto_vacuum=INCREMENTAL) */
	if (st.rows > 0)
		sqlite3_exec(s->db, "PRAGMA incremental_vacuum(4096)", NULL, NULL, NULL);
	/*
	 * Fold the WAL into the file here, between scans, so that a scan's
	 * commit never pays for a checkpoint and its fsyncs.  PASSIVE: readers
	 * are never waited for; what they still need stays for next time.
	 */
	if (s->wal &&
	    sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) !=
		    SQLITE_OK &&
	    sqlite3_errcode(s->db) != SQLITE_BUSY)
		return store_db_err(s, err, "cannot checkpoint the write-ahead log");
	if (out)
		*out = st;
	return 0;
}
