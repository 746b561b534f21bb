/*
 * store.c — the SQLite event store (see store.h).
 *
 * Opening checks that an existing file is a SQLite database of a schema
 * version we know before touching it: a corrupt or foreign file is an error,
 * never silently recreated.  Migrations run forward inside one transaction,
 * keyed by PRAGMA user_version.
 */
#include "daemoneye/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct de_store {
	sqlite3 *db;
	char path[4096];
	sqlite3_stmt *ins_proc; /* cached INSERT into processes */
};

static int db_err(struct de_store *s, struct de_error *err, const char *what)
{
	return de_error_set(err, DE_ERR_DATABASE, EIO, "%s: %s: %s", s->path, what,
			    s->db ? sqlite3_errmsg(s->db) : "no connection");
}

static const char *const migrations[] = {
	/* 1: the foundation schema */
	"CREATE TABLE scans ("
	"  id INTEGER PRIMARY KEY,"
	"  started_at INTEGER NOT NULL,"
	"  ended_at INTEGER,"
	"  process_count INTEGER,"
	"  duration_ms INTEGER,"
	"  source TEXT NOT NULL);"
	"CREATE TABLE processes ("
	"  pid INTEGER PRIMARY KEY,"
	"  id TEXT NOT NULL,"
	"  scan_id INTEGER NOT NULL,"
	"  collection_time INTEGER NOT NULL,"
	"  ppid INTEGER,"
	"  name TEXT NOT NULL,"
	"  executable_path TEXT,"
	"  command_line TEXT NOT NULL,"
	"  argv_json TEXT NOT NULL,"
	"  start_time INTEGER,"
	"  cpu_usage REAL,"
	"  memory_usage INTEGER,"
	"  executable_hash TEXT,"
	"  hash_algorithm TEXT,"
	"  user_id TEXT,"
	"  accessible INTEGER NOT NULL,"
	"  file_exists INTEGER NOT NULL,"
	"  exe_deleted INTEGER NOT NULL DEFAULT 0,"
	"  exe_replaced INTEGER NOT NULL DEFAULT 0,"
	"  platform_data TEXT);"
	"CREATE INDEX processes_ppid ON processes(ppid);"
	"CREATE TABLE alerts ("
	"  id TEXT PRIMARY KEY,"
	"  alert_time INTEGER NOT NULL,"
	"  rule_id TEXT NOT NULL,"
	"  title TEXT NOT NULL,"
	"  description TEXT NOT NULL,"
	"  severity TEXT NOT NULL,"
	"  scan_id INTEGER,"
	"  affected_processes TEXT NOT NULL,"
	"  process_count INTEGER NOT NULL,"
	"  alert_data TEXT NOT NULL,"
	"  rule_execution_time_ms INTEGER,"
	"  dedupe_key TEXT NOT NULL);"
	"CREATE INDEX alerts_time ON alerts(alert_time);",
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

static int migrate(struct de_store *s, struct de_error *err)
{
	sqlite3_stmt *st;
	int version = 0, rc;

	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return db_err(s, err, "not a daemoneye event store (cannot read its version)");
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	rc = sqlite3_finalize(st);
	if (rc != SQLITE_OK)
		return db_err(s, err, "not a daemoneye event store (cannot read its version)");
	if (version > NMIGRATIONS)
		return de_error_set(
			err, DE_ERR_DATABASE, EPROTO,
			"%s: schema version %d is newer than this daemoneye understands "
			"(%d); upgrade daemoneye or point database.path elsewhere",
			s->path, version, NMIGRATIONS);
	if (version == NMIGRATIONS)
		return 0;
	if (version == 0) {
		/* a version-0 file must be empty: anything else is not ours */
		if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM sqlite_schema", -1, &st,
				       NULL) != SQLITE_OK)
			return db_err(s, err, "not a SQLite database");
		int tables = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
		sqlite3_finalize(st);
		if (tables != 0)
			return de_error_set(err, DE_ERR_DATABASE, EPROTO,
					    "%s: is a SQLite database but not a daemoneye event "
					    "store; refusing to modify it",
					    s->path);
	}
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return db_err(s, err, "cannot start migration");
	for (int v = version; v < NMIGRATIONS; v++) {
		char pragma[64];
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%d", v + 1);
		if (sqlite3_exec(s->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(s->db, pragma, NULL, NULL, NULL) != SQLITE_OK) {
			rc = db_err(s, err, "migration failed");
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
			return rc;
		}
	}
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		return db_err(s, err, "cannot commit migration");
	return 0;
}

int de_store_open(const struct de_store_config *cfg, struct de_store **out, struct de_error *err)
{
	struct de_store *s = calloc(1, sizeof(*s));
	int flags, rc;

	if (!s)
		return de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
	snprintf(s->path, sizeof(s->path), "%s", cfg->path);
	flags = cfg->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	flags |= SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
	if (sqlite3_open_v2(cfg->path, &s->db, flags, NULL) != SQLITE_OK) {
		rc = de_error_set(
			err, DE_ERR_DATABASE,
			cfg->read_only && sqlite3_errcode(s->db) == SQLITE_CANTOPEN ? ENOENT : EIO,
			"%s: cannot open event store: %s", cfg->path,
			s->db ? sqlite3_errmsg(s->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
	if (!cfg->read_only) {
		if ((rc = migrate(s, err)) < 0)
			goto fail;
		if (sqlite3_exec(s->db,
				 cfg->wal_mode ? "PRAGMA journal_mode=WAL"
					       : "PRAGMA journal_mode=DELETE",
				 NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(s->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) !=
			    SQLITE_OK) {
			rc = db_err(s, err, "cannot set journal mode");
			goto fail;
		}
	} else {
		sqlite3_stmt *st;
		int version = -1;
		if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
			if (sqlite3_step(st) == SQLITE_ROW)
				version = sqlite3_column_int(st, 0);
			sqlite3_finalize(st);
		}
		if (version < 1 || version > NMIGRATIONS) {
			rc = de_error_set(err, DE_ERR_DATABASE, EPROTO,
					  "%s: not a daemoneye event store of a known version",
					  cfg->path);
			goto fail;
		}
	}
	*out = s;
	return 0;
fail:
	de_store_close(s);
	return rc;
}

void de_store_close(struct de_store *s)
{
	if (!s)
		return;
	sqlite3_finalize(s->ins_proc);
	sqlite3_close(s->db);
	free(s);
}

sqlite3 *de_store_db(struct de_store *s)
{
	return s->db;
}

int de_store_scan_begin(struct de_store *s, int64_t started_ms, const char *source,
			int64_t *scan_id, struct de_error *err)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(s->db, "INSERT INTO scans(started_at, source) VALUES(?, ?)", -1, &st,
			       NULL) != SQLITE_OK)
		return db_err(s, err, "cannot record scan");
	sqlite3_bind_int64(st, 1, started_ms);
	sqlite3_bind_text(st, 2, source, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_err(s, err, "cannot record scan");
	*scan_id = sqlite3_last_insert_rowid(s->db);
	return 0;
}

int de_store_scan_end(struct de_store *s, int64_t scan_id, int64_t ended_ms, size_t count,
		      struct de_error *err)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(s->db,
			       "UPDATE scans SET ended_at = ?1, process_count = ?2,"
			       " duration_ms = ?1 - started_at WHERE id = ?3",
			       -1, &st, NULL) != SQLITE_OK)
		return db_err(s, err, "cannot finish scan");
	sqlite3_bind_int64(st, 1, ended_ms);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)count);
	sqlite3_bind_int64(st, 3, scan_id);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : db_err(s, err, "cannot finish scan");
}

/* Arguments joined by single spaces (exact bytes). */
static char *join_argv(char *const *argv, size_t n)
{
	size_t len = 1;
	char *out, *p;

	for (size_t i = 0; i < n; i++)
		len += strlen(argv[i]) + 1;
	out = malloc(len);
	if (!out)
		return NULL;
	p = out;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(argv[i]);
		if (i)
			*p++ = ' ';
		memcpy(p, argv[i], l);
		p += l;
	}
	*p = '\0';
	return out;
}

static bool pd_bool(const json_t *pd, const char *k)
{
	return json_is_true(json_object_get(pd, k));
}

static int bind_record(sqlite3_stmt *st, const struct de_process_record *r)
{
	char uuid[DE_UUID_STR_LEN + 1];
	char *cmd = join_argv(r->command_line, r->command_line_len);
	json_t *j = de_process_record_to_json(r);
	char *argv = NULL, *pd = NULL;
	int rc = -ENOMEM;

	if (!cmd || !j)
		goto out;
	argv = json_dumps(json_object_get(j, "command_line"), JSON_COMPACT);
	pd = r->platform_data ? json_dumps(r->platform_data, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	if (!argv || (r->platform_data && !pd))
		goto out;
	de_uuid_format(&r->id, uuid);
	sqlite3_bind_int64(st, 1, r->pid);
	sqlite3_bind_text(st, 2, uuid, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, r->scan_id);
	sqlite3_bind_int64(st, 4, r->collection_time);
	if (r->has_ppid)
		sqlite3_bind_int64(st, 5, r->ppid);
	else
		sqlite3_bind_null(st, 5);
	sqlite3_bind_text(st, 6, r->name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 7, r->executable_path, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 8, cmd, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 9, argv, -1, SQLITE_TRANSIENT);
	if (r->has_start_time)
		sqlite3_bind_int64(st, 10, r->start_time);
	else
		sqlite3_bind_null(st, 10);
	if (r->has_cpu_usage)
		sqlite3_bind_double(st, 11, r->cpu_usage);
	else
		sqlite3_bind_null(st, 11);
	if (r->has_memory_usage)
		sqlite3_bind_int64(st, 12, (sqlite3_int64)r->memory_usage);
	else
		sqlite3_bind_null(st, 12);
	sqlite3_bind_text(st, 13, r->executable_hash, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 14, r->hash_algorithm, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 15, r->user_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 16, r->accessible);
	sqlite3_bind_int(st, 17, r->file_exists);
	sqlite3_bind_int(st, 18, pd_bool(r->platform_data, "exe_deleted"));
	sqlite3_bind_int(st, 19, pd_bool(r->platform_data, "exe_replaced"));
	sqlite3_bind_text(st, 20, pd, -1, SQLITE_TRANSIENT);
	rc = 0;
out:
	free(cmd);
	free(argv);
	free(pd);
	json_decref(j);
	return rc;
}

int de_store_processes(struct de_store *s, const struct de_process_record *recs, size_t n,
		       struct de_error *err)
{
	int rc = 0;

	if (!s->ins_proc &&
	    sqlite3_prepare_v3(s->db,
			       "INSERT OR REPLACE INTO processes(pid, id, scan_id, collection_time,"
			       " ppid, name, executable_path, command_line, argv_json, start_time,"
			       " cpu_usage, memory_usage, executable_hash, hash_algorithm, user_id,"
			       " accessible, file_exists, exe_deleted, exe_replaced, platform_data)"
			       " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,"
			       "?18,?19,?20)",
			       -1, SQLITE_PREPARE_PERSISTENT, &s->ins_proc, NULL) != SQLITE_OK)
		return db_err(s, err, "cannot prepare snapshot insert");
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return db_err(s, err, "cannot start snapshot transaction");
	if (sqlite3_exec(s->db, "DELETE FROM processes", NULL, NULL, NULL) != SQLITE_OK) {
		rc = db_err(s, err, "cannot clear snapshot");
		goto rollback;
	}
	for (size_t i = 0; i < n; i++) {
		if (bind_record(s->ins_proc, &recs[i]) < 0) {
			rc = de_error_set(err, DE_ERR_DATABASE, ENOMEM, "out of memory");
			goto rollback;
		}
		if (sqlite3_step(s->ins_proc) != SQLITE_DONE) {
			rc = db_err(s, err, "cannot store process");
			goto rollback;
		}
		sqlite3_reset(s->ins_proc);
		sqlite3_clear_bindings(s->ins_proc);
	}
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		rc = db_err(s, err, "cannot commit snapshot");
		goto rollback;
	}
	return 0;
rollback:
	sqlite3_reset(s->ins_proc);
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

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
			       " rule_execution_time_ms, dedupe_key)"
			       " VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = db_err(s, err, "cannot prepare alert insert");
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
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_err(s, err, "cannot store alert");
out:
	sqlite3_finalize(st);
	free(affected);
	free(data);
	json_decref(j);
	return rc;
}
