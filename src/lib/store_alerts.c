/*
 * store_alerts.c — alerts and their delivery records: one alerts row per
 * alert (its affected processes and data as JSON text), one
 * alert_deliveries row per (alert, sink), updated in place as attempts are
 * made.  Retention (store_prune.c) keeps an alert until every delivery of
 * it is 'delivered'.
 */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>

int de_store_alert(struct de_store *s, const struct de_alert *a, struct de_error *err)
{
	json_t *j = de_alert_to_json(a);
	char *affected = NULL, *data = NULL;
	sqlite3_stmt *st = NULL;
	int rc;

	if (!j)
		return de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
	affected = json_dumps(json_object_get(j, "affected_processes"), JSON_COMPACT);
	data = json_dumps(json_object_get(j, "alert_data"), JSON_COMPACT | JSON_ENCODE_ANY);
	if (!affected || !data) {
		rc = de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
		goto out;
	}
	if (sqlite3_prepare_v2(s->db,
			       "INSERT INTO alerts(id, alert_time, rule_id, title, description,"
			       " severity, scan_id, affected_processes, process_count, alert_data,"
			       " rule_execution_time_ms, dedupe_key, incomplete)"
			       " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = store_db_err(s, err, "cannot prepare alert insert");
		goto out;
	}
	sqlite3_bind_text(st, 1, json_string_value(json_object_get(j, "id")), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, a->alert_time);
	sqlite3_bind_text(st, 3, a->rule_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, a->title, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, a->description, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, de_severity_name(a->severity), -1, SQLITE_STATIC);
	if (a->has_scan_id)
		sqlite3_bind_int64(st, 7, a->scan_id);
	sqlite3_bind_text(st, 8, affected, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 9, a->process_count);
	sqlite3_bind_text(st, 10, data, -1, SQLITE_STATIC);
	if (a->has_rule_execution_time_ms)
		sqlite3_bind_int64(st, 11, a->rule_execution_time_ms);
	sqlite3_bind_text(st, 12, a->dedupe_key, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 13, a->incomplete);
	rc = store_step(s, st, err, "cannot store alert");
out:
	sqlite3_finalize(st);
	free(affected);
	free(data);
	json_decref(j);
	return rc;
}

int de_store_alert_delivery(struct de_store *s, const char *alert_id, const char *sink,
			    enum de_delivery_status status, int64_t when_ms, const char *error,
			    struct de_error *err)
{
	static const char *const names[] = {"pending", "delivered", "dead"};
	sqlite3_stmt *st;
	int rc;

	if (!alert_id || !sink || (unsigned)status > DE_DELIVERY_FAILED)
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "alert delivery needs an alert id, a sink and a valid status");
	if (sqlite3_prepare_v2(
		    s->db,
		    "INSERT INTO alert_deliveries(alert_id, sink, status, attempts,"
		    " last_attempt_at, delivered_at, error)"
		    " VALUES(?1, ?2, ?3, ?3 != 'pending', ?4,"
		    "  CASE WHEN ?3 = 'delivered' THEN ?4 END, ?5)"
		    " ON CONFLICT(alert_id, sink) DO UPDATE SET status = excluded.status,"
		    " attempts = attempts + (excluded.status != 'pending'),"
		    " last_attempt_at = excluded.last_attempt_at,"
		    " delivered_at = coalesce(excluded.delivered_at, delivered_at),"
		    " error = excluded.error",
		    -1, &st, NULL) != SQLITE_OK)
		return store_db_err(s, err, "cannot record alert delivery");
	sqlite3_bind_text(st, 1, alert_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, sink, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, names[status], -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, when_ms);
	sqlite3_bind_text(st, 5, error, -1, SQLITE_STATIC);
	rc = store_step(s, st, err, "cannot record alert delivery");
	sqlite3_finalize(st);
	return rc;
}
