/*
 * store_query.c — the process history query (the seed's ProcessQuery,
 * de_store_query_processes): every instance matching the query, exited
 * (process_instances) and live (the snapshot) merged by instance id, streamed
 * to a callback straight from the statements.
 */
#include "store_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/*
 * The two halves of the process history, column for column alike: exited
 * instances (process_instances) and live ones (the snapshot, whose last
 * sighting is the snapshot's time).  Each is ordered by instance id, so
 * merging them gives every instance oldest first without sorting history.
 */
#define QUERY_COLS                                                                                 \
	" pid, ppid, name, executable_path, command_line, argv_json, start_time, first_seen,"      \
	" %s, %s, first_scan_id, %s, cpu_usage, memory_usage, executable_hash, user_id,"           \
	" accessible, file_exists, exe_deleted, exe_replaced, %d, user_name, group_name, cwd,"      \
	" %s"

static int prepare_query(struct de_store *s, const struct de_process_query *q, bool live,
			 sqlite3_stmt **out, struct de_error *err)
{
	char sql[2048];
	size_t len;

	if (live)
		len = (size_t)snprintf(sql, sizeof(sql),
				       "SELECT instance_id," QUERY_COLS
				       " FROM processes, (SELECT (SELECT value FROM store_state"
				       " WHERE key = 'snapshot_time') AS t, (SELECT value FROM"
				       " store_state WHERE key = 'snapshot_scan') AS scan) ss"
				       " WHERE 1",
				       /* store_state may lag an event batch's rows
					  (STORE_STATE_LAG_MS): never seen last
					  before first */
				       "max(ss.t, first_seen)", "NULL",
				       "max(ss.scan, first_scan_id)", 1, "NULL, NULL");
	else
		len = (size_t)snprintf(sql, sizeof(sql),
				       "SELECT id," QUERY_COLS " FROM process_instances WHERE 1",
				       "last_seen", "exited_at", "last_scan_id", 0,
				       "exit_code, exit_signal");
#define ADD(clause) len += (size_t)snprintf(sql + len, sizeof(sql) - len, "%s", clause)
	if (q->has_pid)
		ADD(" AND pid = :pid");
	if (q->name)
		ADD(" AND name = :name");
	if (q->name_pattern)
		ADD(" AND name GLOB :pattern");
	if (q->has_since && !live)
		ADD(" AND exited_at >= :since");
	if (q->has_until)
		ADD(" AND first_seen <= :until");
	if (q->has_scan_id)
		ADD(live ? " AND first_scan_id <= :scan"
			 : " AND first_scan_id <= :scan AND (exit_scan_id IS NULL OR exit_scan_id "
			   "> "
			   ":scan)");
	ADD(live ? " ORDER BY instance_id" : " ORDER BY id");
#undef ADD
	if (len >= sizeof(sql))
		return de_error_set(err, DE_ERR_DATABASE, E2BIG, "query too long");
	if (sqlite3_prepare_v2(s->db, sql, -1, out, NULL) != SQLITE_OK)
		return store_db_err(s, err, "cannot prepare the process query");
#define BIDX(n) sqlite3_bind_parameter_index(*out, n)
	if (q->has_pid)
		sqlite3_bind_int64(*out, BIDX(":pid"), q->pid);
	if (q->name)
		sqlite3_bind_text(*out, BIDX(":name"), q->name, -1, SQLITE_STATIC);
	if (q->name_pattern)
		sqlite3_bind_text(*out, BIDX(":pattern"), q->name_pattern, -1, SQLITE_STATIC);
	if (q->has_since && !live)
		sqlite3_bind_int64(*out, BIDX(":since"), q->since_ms);
	if (q->has_until)
		sqlite3_bind_int64(*out, BIDX(":until"), q->until_ms);
	if (q->has_scan_id)
		sqlite3_bind_int64(*out, BIDX(":scan"), q->scan_id);
#undef BIDX
	return 0;
}

/* The current row of a query statement (strings borrowed from it). */
static void query_row(sqlite3_stmt *st, struct de_process_row *r)
{
	memset(r, 0, sizeof(*r));
	r->instance_id = sqlite3_column_int64(st, 0);
	r->pid = (uint32_t)sqlite3_column_int64(st, 1);
	r->has_ppid = sqlite3_column_type(st, 2) != SQLITE_NULL;
	r->ppid = (uint32_t)sqlite3_column_int64(st, 2);
	r->name = (const char *)sqlite3_column_text(st, 3);
	r->executable_path = (const char *)sqlite3_column_text(st, 4);
	r->command_line = (const char *)sqlite3_column_text(st, 5);
	r->argv_json = (const char *)sqlite3_column_text(st, 6);
	r->has_start_time = sqlite3_column_type(st, 7) != SQLITE_NULL;
	r->start_time = sqlite3_column_int64(st, 7);
	r->first_seen = sqlite3_column_int64(st, 8);
	r->last_seen = sqlite3_column_int64(st, 9);
	r->has_exited_at = sqlite3_column_type(st, 10) != SQLITE_NULL;
	r->exited_at = sqlite3_column_int64(st, 10);
	r->first_scan_id = sqlite3_column_int64(st, 11);
	r->last_scan_id = sqlite3_column_int64(st, 12);
	r->has_cpu_usage = sqlite3_column_type(st, 13) != SQLITE_NULL;
	r->cpu_usage = sqlite3_column_double(st, 13);
	r->has_memory_usage = sqlite3_column_type(st, 14) != SQLITE_NULL;
	r->memory_usage = (uint64_t)sqlite3_column_int64(st, 14);
	r->executable_hash = (const char *)sqlite3_column_text(st, 15);
	r->user_id = (const char *)sqlite3_column_text(st, 16);
	r->accessible = sqlite3_column_int(st, 17);
	r->file_exists = sqlite3_column_int(st, 18);
	r->exe_deleted = sqlite3_column_int(st, 19);
	r->exe_replaced = sqlite3_column_int(st, 20);
	r->alive = sqlite3_column_int(st, 21);
	r->user_name = (const char *)sqlite3_column_text(st, 22);
	r->group_name = (const char *)sqlite3_column_text(st, 23);
	r->cwd = (const char *)sqlite3_column_text(st, 24);
	r->has_exit_code = sqlite3_column_type(st, 25) != SQLITE_NULL;
	r->exit_code = sqlite3_column_int(st, 25);
	r->has_exit_signal = sqlite3_column_type(st, 26) != SQLITE_NULL;
	r->exit_signal = sqlite3_column_int(st, 26);
	if (!r->name)
		r->name = "";
	if (!r->command_line)
		r->command_line = "";
	if (!r->argv_json)
		r->argv_json = "[]";
}

int de_store_query_processes(struct de_store *s, const struct de_process_query *q,
			     de_process_row_cb cb, void *arg, struct de_error *err)
{
	sqlite3_stmt *st[2] = {NULL, NULL}; /* exited, live */
	int step[2] = {SQLITE_DONE, SQLITE_DONE}, rc;
	uint64_t skip = q->offset, left = q->limit ? q->limit : UINT64_MAX;

	if ((!q->current_only && (rc = prepare_query(s, q, false, &st[0], err)) < 0) ||
	    (rc = prepare_query(s, q, true, &st[1], err)) < 0)
		goto out;
		/* a failed step is reported at once: the database's error is that
		   statement's only until the other one is stepped */
#define STEP_FAILED(k) (step[k] != SQLITE_ROW && step[k] != SQLITE_DONE)
	for (int k = 0; k < 2; k++) {
		if (!st[k])
			continue;
		step[k] = sqlite3_step(st[k]);
		if (STEP_FAILED(k))
			goto failed;
	}
	rc = 0;
	while (left > 0 && (step[0] == SQLITE_ROW || step[1] == SQLITE_ROW)) {
		/* the lower instance id of the two heads */
		int k = step[0] != SQLITE_ROW						  ? 1
			: step[1] != SQLITE_ROW						  ? 0
			: sqlite3_column_int64(st[1], 0) < sqlite3_column_int64(st[0], 0) ? 1
											  : 0;
		if (skip > 0) {
			skip--;
		} else {
			struct de_process_row r;
			query_row(st[k], &r);
			if ((rc = cb(&r, arg)) != 0)
				goto out;
			left--;
		}
		step[k] = sqlite3_step(st[k]);
		if (STEP_FAILED(k))
			goto failed;
	}
	goto out;
failed:
	rc = store_db_err(s, err, "process query failed");
out:
#undef STEP_FAILED
	sqlite3_finalize(st[0]);
	sqlite3_finalize(st[1]);
	return rc;
}
