/*
 * store_conns.c — TCP connections of process instances (the
 * network_connections relation, schema 6): what the eBPF sensor reports as
 * it happens (through de_store_apply_events, store_events.c) and what a
 * full scan finds open (de_store_connections), one row per (instance,
 * endpoints) whose last_seen moves when it is seen again, and the query
 * behind `daemoneye-cli connections`.
 */
#include "store_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "daemoneye/netconn.h"

int store_write_conn(struct de_store *s, const struct de_connection *c, struct de_error *err)
{
	sqlite3_stmt *st = s->st[ST_CONN_UPSERT];
	char la[64], ra[64];
	const char *kind = de_conn_kind_name(c->kind);

	if (!kind || (c->family != 4 && c->family != 6))
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "%s: a connection of pid %u has an unknown kind or family; "
				    "the batch is refused",
				    s->path, c->pid);
	sqlite3_bind_int64(st, 1, c->pid);
	sqlite3_bind_int64(st, 2, c->start_time);
	sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, c->family);
	sqlite3_bind_text(st, 5, de_netconn_addr_text(c->family, c->laddr, la, sizeof(la)), -1,
			  SQLITE_STATIC);
	sqlite3_bind_int(st, 6, c->lport);
	sqlite3_bind_text(st, 7, de_netconn_addr_text(c->family, c->raddr, ra, sizeof(ra)), -1,
			  SQLITE_STATIC);
	sqlite3_bind_int(st, 8, c->rport);
	if (c->inode)
		sqlite3_bind_int64(st, 9, (sqlite3_int64)c->inode);
	else
		sqlite3_bind_null(st, 9);
	sqlite3_bind_int64(st, 10, c->time_ms);
	sqlite3_bind_text(st, 11, c->from_scan ? "scan" : "ebpf", -1, SQLITE_STATIC);
	return store_step(s, st, err, "cannot record a connection");
}

int de_store_connections(struct de_store *s, const struct de_connection *c, size_t n,
			 int64_t scan_start_ms, struct de_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (s->read_only)
		return de_error_set(err, DE_ERR_DATABASE, EROFS, "%s: store opened read-only",
				    s->path);
	if ((rc = store_begin_write(s, err, "cannot record connections")) < 0)
		return rc;
	for (size_t i = 0; i < n; i++)
		if ((rc = store_write_conn(s, &c[i], err)) < 0)
			goto fail;
	/* what the scan did not find is closed (kept as history until retention) */
	if (sqlite3_prepare_v2(
		    s->db,
		    "UPDATE network_connections SET closed_at = ?1 WHERE closed_at IS NULL"
		    " AND last_seen < ?1",
		    -1, &st, NULL) != SQLITE_OK) {
		rc = store_db_err(s, err, "cannot prepare closing connections");
		goto fail;
	}
	sqlite3_bind_int64(st, 1, scan_start_ms);
	rc = store_step(s, st, err, "cannot close connections");
	sqlite3_finalize(st);
	if (rc < 0)
		goto fail;
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		rc = store_db_err(s, err, "cannot commit connections");
		goto fail;
	}
	return 0;
fail:
	store_rollback(s);
	return rc;
}

int de_store_query_connections(struct de_store *s, const struct de_connection_query *q,
			       de_connection_row_cb cb, void *arg, struct de_error *err)
{
	char sql[1536];
	size_t len;
	sqlite3_stmt *st;
	int rc = 0, step;

	len = (size_t)snprintf(
		sql, sizeof(sql),
		"SELECT c.id, c.pid, c.start_time, c.kind, c.family, c.local_address,"
		" c.local_port, c.remote_address, c.remote_port, c.inode, c.first_seen,"
		" c.last_seen, c.closed_at, c.source,"
		" coalesce((SELECT p.name FROM processes p WHERE p.pid = c.pid AND"
		"  p.start_time = c.start_time), (SELECT i.name FROM process_instances i WHERE"
		"  i.pid = c.pid AND i.start_time = c.start_time ORDER BY i.id DESC LIMIT 1)),"
		" coalesce((SELECT p.user_name FROM processes p WHERE p.pid = c.pid AND"
		"  p.start_time = c.start_time), (SELECT i.user_name FROM process_instances i WHERE"
		"  i.pid = c.pid AND i.start_time = c.start_time ORDER BY i.id DESC LIMIT 1))"
		" FROM network_connections c WHERE 1");
	if (q->has_pid)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, " AND c.pid = :pid");
	if (q->has_since)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, " AND c.last_seen >= :since");
	if (q->open_only)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, " AND c.closed_at IS NULL");
	len += (size_t)snprintf(sql + len, sizeof(sql) - len, " ORDER BY c.first_seen, c.id");
	if (q->limit)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, " LIMIT %llu",
					(unsigned long long)q->limit);
	if (len >= sizeof(sql))
		return de_error_set(err, DE_ERR_DATABASE, E2BIG, "query too long");
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return store_db_err(s, err, "cannot prepare the connection query");
	if (q->has_pid)
		sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":pid"), q->pid);
	if (q->has_since)
		sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":since"), q->since_ms);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct de_connection_row r = {
			.id = sqlite3_column_int64(st, 0),
			.pid = (uint32_t)sqlite3_column_int64(st, 1),
			.start_time = sqlite3_column_int64(st, 2),
			.kind = (const char *)sqlite3_column_text(st, 3),
			.family = sqlite3_column_int(st, 4),
			.local_address = (const char *)sqlite3_column_text(st, 5),
			.local_port = sqlite3_column_int(st, 6),
			.remote_address = (const char *)sqlite3_column_text(st, 7),
			.remote_port = sqlite3_column_int(st, 8),
			.inode = sqlite3_column_int64(st, 9),
			.first_seen = sqlite3_column_int64(st, 10),
			.last_seen = sqlite3_column_int64(st, 11),
			.has_closed_at = sqlite3_column_type(st, 12) != SQLITE_NULL,
			.closed_at = sqlite3_column_int64(st, 12),
			.source = (const char *)sqlite3_column_text(st, 13),
			.process_name = (const char *)sqlite3_column_text(st, 14),
			.user_name = (const char *)sqlite3_column_text(st, 15),
		};
		if (!r.kind || !r.local_address || !r.remote_address || !r.source)
			continue; /* NOT NULL columns: never */
		if ((rc = cb(&r, arg)) != 0)
			break;
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = store_db_err(s, err, "connection query failed");
	sqlite3_finalize(st);
	return rc;
}
