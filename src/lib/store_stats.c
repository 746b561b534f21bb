/*
 * store_stats.c — what the store holds and how big it is (de_store_stats,
 * for `daemoneye-cli stats`), and the measure of size that retention's cap
 * is judged by: the pages in use, not the file's length (freed pages stay
 * in the file until a vacuum hands them back).
 */
#include "store_int.h"

#include <stdio.h>
#include <sys/stat.h>

int64_t store_scalar(struct de_store *s, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

uint64_t store_used_bytes(struct de_store *s)
{
	int64_t pages = store_scalar(s, "PRAGMA page_count");
	int64_t free_pages = store_scalar(s, "PRAGMA freelist_count");
	int64_t psize = store_scalar(s, "PRAGMA page_size");

	if (pages < 0 || free_pages < 0 || psize < 0)
		return 0;
	return (uint64_t)(pages - free_pages) * (uint64_t)psize;
}

int de_store_stats(struct de_store *s, struct de_store_stats *out, struct de_error *err)
{
	struct de_store_stats st = {0};
	int64_t version = 0;
	struct stat sb;
	char wal[4200];
	/* every count or none: a failed one fails the call, *out untouched */
	const struct {
		int64_t *v;
		const char *sql;
	} q[] = {
		{&st.processes, "SELECT count(*) FROM processes"},
		{&st.instances, "SELECT count(*) FROM process_instances"},
		{&st.changes, "SELECT count(*) FROM process_changes"},
		{&st.samples, "SELECT count(*) FROM process_samples"},
		{&st.scans, "SELECT count(*) FROM scans"},
		{&st.failed_scans, "SELECT count(*) FROM scans WHERE status = 'failed'"},
		{&st.alerts, "SELECT count(*) FROM alerts"},
		{&st.deliveries, "SELECT count(*) FROM alert_deliveries"},
		{&st.oldest_ms, "SELECT coalesce(min(started_at), 0) FROM scans"},
		{&st.newest_ms,
		 "SELECT coalesce(max(coalesce(ended_at, started_at)), 0) FROM scans"},
		{&st.last_scan_id, "SELECT coalesce(max(id), 0) FROM scans WHERE status = 'ok'"},
		{&version, "PRAGMA user_version"},
	};

	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++)
		if ((*q[i].v = store_scalar(s, q[i].sql)) < 0)
			return store_db_err(s, err, "cannot read statistics");
	/* history holds the exited instances; the snapshot the live ones */
	st.live_instances = st.processes;
	st.instances += st.processes;
	st.schema_version = (int)version;
	st.used_bytes = store_used_bytes(s);
	if (stat(s->path, &sb) == 0)
		st.file_bytes = (uint64_t)sb.st_size;
	snprintf(wal, sizeof(wal), "%s-wal", s->path);
	if (stat(wal, &sb) == 0)
		st.wal_bytes = (uint64_t)sb.st_size;
	*out = st;
	return 0;
}
