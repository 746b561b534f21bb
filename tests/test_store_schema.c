/*
 * test_store_schema.c — the schema (src/lib/store_schema.c): the migrated
 * file against the one description, both ways (every described column
 * exists with its declared type, every table and column of the file is
 * described), from a new file and from files of schema 1, 2, 8 and 9, whose
 * migrations must keep what they hold; readers refuse an older file,
 * everyone a newer one.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemoneye/outbox.h"
#include "daemoneye/validator.h"
#include "store_int.h"

#define DE_TEST_NAME "store_schema"
#include "testutil.h"
#include "store_fixtures.h"

/* ---- the description against the file ------------------------------------ */

/* "name TYPE, ..." of a table's columns in the file, in order (a new string). */
static char *file_columns(sqlite3 *db, const char *table)
{
	sqlite3_stmt *st;
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(f);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT name, type FROM pragma_table_info(?1) "
					    "ORDER BY cid",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	for (int i = 0; sqlite3_step(st) == SQLITE_ROW; i++)
		fprintf(f, "%s%s %s", i ? ", " : "", sqlite3_column_text(st, 0),
			sqlite3_column_text(st, 1));
	sqlite3_finalize(st);
	fclose(f);
	return out;
}

/* The same as the description gives it. */
static char *described_columns(const struct de_relation *r)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(f);
	for (size_t c = 0; c < r->ncolumns; c++)
		fprintf(f, "%s%s %s", c ? ", " : "", r->columns[c].name, r->columns[c].type);
	fclose(f);
	return out;
}

static const struct de_relation *described(const char *table)
{
	size_t nv, np;
	const struct de_relation *v = de_relations(&nv), *p = store_schema_private(&np);

	for (size_t i = 0; i < nv; i++)
		if (strcmp(v[i].name, table) == 0)
			return &v[i];
	for (size_t i = 0; i < np; i++)
		if (strcmp(p[i].name, table) == 0)
			return &p[i];
	return NULL;
}

/*
 * The file's schema is the description, both ways: every described table
 * and column exists, with its declared type, in its place; every table of
 * the file and every column of it is described.
 */
static void assert_schema_described(sqlite3 *db)
{
	size_t nv, np, tables = 0;
	const struct de_relation *v = de_relations(&nv), *p = store_schema_private(&np);
	sqlite3_stmt *st;

	for (size_t i = 0; i < nv + np; i++) {
		const struct de_relation *r = i < nv ? &v[i] : &p[i - nv];
		char *want = described_columns(r), *got = file_columns(db, r->name);
		assert_true(r->ncolumns > 0);
		for (size_t c = 0; c < r->ncolumns; c++)
			assert_true(r->columns[c].description && *r->columns[c].description);
		if (strcmp(want, got) != 0)
			fail_msg("table %s is described as (%s) but the migrations make (%s)",
				 r->name, want, got);
		free(want);
		free(got);
	}
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT name FROM sqlite_schema WHERE type = 'table' "
					    "AND name NOT LIKE 'sqlite_%'",
					    -1, &st, NULL),
			 SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		if (!described(name))
			fail_msg("table %s of the migrated file is not described", name);
		tables++;
	}
	sqlite3_finalize(st);
	assert_int_equal(tables, nv + np);
	/* a table is rule-visible or not, never both */
	for (size_t i = 0; i < np; i++)
		for (size_t j = 0; j < nv; j++)
			assert_string_not_equal(p[i].name, v[j].name);
}

/* A new file, migrated from nothing, is what the description says. */
static void test_schema_described(void **state)
{
	(void)state;
	char *path = db_path("new.sqlite");
	struct de_store *s = open_at(path, 0);

	assert_int_equal(count(de_store_db(s), "PRAGMA user_version"), DE_STORE_SCHEMA_VERSION);
	assert_schema_described(de_store_db(s));
	de_store_close(s);
	free(path);
}

/*
 * The rules' sandbox admits exactly the rule-visible description: every
 * described column of a rule-visible table, on the store file and on the
 * schema-only database; no table that is not rule-visible.
 */
static void test_rule_visible(void **state)
{
	(void)state;
	char *path = db_path("visible.sqlite");
	struct de_store *s = open_at(path, 0);
	struct de_validator *v = de_validator_new();
	struct de_error e = {0};
	size_t nv, np;
	const struct de_relation *vis = de_relations(&nv), *priv = store_schema_private(&np);
	char sql[256];

	de_store_close(s);
	assert_non_null(v);
	assert_string_equal(vis[0].name, "processes");
	for (int k = 0; k < 2; k++) {
		sqlite3 *db = NULL;
		sqlite3_stmt *st = NULL;
		assert_int_equal(de_validator_open_db(v, k ? NULL : path, &db, &e), 0);
		for (size_t i = 0; i < nv; i++)
			for (size_t c = 0; c < vis[i].ncolumns; c++) {
				snprintf(sql, sizeof(sql), "SELECT %s FROM %s",
					 vis[i].columns[c].name, vis[i].name);
				if (de_validator_prepare(v, db, sql, &st, &e) < 0)
					fail_msg("%s: %s", sql, e.message);
				sqlite3_finalize(st);
			}
		for (size_t i = 0; i < np; i++) {
			snprintf(sql, sizeof(sql), "SELECT %s FROM %s", priv[i].columns[0].name,
				 priv[i].name);
			st = NULL;
			assert_true(de_validator_prepare(v, db, sql, &st, &e) < 0);
			assert_null(st);
			assert_true(strstr(e.message, "not visible to rules") ||
				    strstr(e.message, "no such table"));
		}
		sqlite3_close(db);
	}
	de_validator_free(v);
	free(path);
}

/* ---- migrations ----------------------------------------------------------- */

/* process_instances as schema 10 left it (schema 11 added how it ended). */
#define V10_INSTANCES                                                                              \
	"ALTER TABLE process_instances DROP COLUMN exit_code;"                                     \
	"ALTER TABLE process_instances DROP COLUMN exit_signal;"

static void test_migrates_v1(void **state)
{
	(void)state;
	char *path = db_path("v1.sqlite");
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(
			db,
			"CREATE TABLE scans (id INTEGER PRIMARY KEY, started_at INTEGER NOT "
			"NULL, ended_at INTEGER, process_count INTEGER, duration_ms INTEGER, "
			"source TEXT NOT NULL);"
			"CREATE TABLE processes (pid INTEGER PRIMARY KEY, id TEXT NOT NULL, "
			"scan_id INTEGER NOT NULL, collection_time INTEGER NOT NULL, ppid "
			"INTEGER, name TEXT NOT NULL, executable_path TEXT, command_line TEXT "
			"NOT NULL, argv_json TEXT NOT NULL, start_time INTEGER, cpu_usage REAL, "
			"memory_usage INTEGER, executable_hash TEXT, hash_algorithm TEXT, "
			"user_id TEXT, accessible INTEGER NOT NULL, file_exists INTEGER NOT "
			"NULL, exe_deleted INTEGER NOT NULL DEFAULT 0, exe_replaced INTEGER NOT "
			"NULL DEFAULT 0, platform_data TEXT);"
			"CREATE INDEX processes_ppid ON processes(ppid);"
			"CREATE TABLE alerts (id TEXT PRIMARY KEY, alert_time INTEGER NOT NULL, "
			"rule_id TEXT NOT NULL, title TEXT NOT NULL, description TEXT NOT NULL, "
			"severity TEXT NOT NULL, scan_id INTEGER, affected_processes TEXT NOT "
			"NULL, process_count INTEGER NOT NULL, alert_data TEXT NOT NULL, "
			"rule_execution_time_ms INTEGER, dedupe_key TEXT NOT NULL);"
			"CREATE INDEX alerts_time ON alerts(alert_time);"
			"INSERT INTO scans VALUES(1, 10, 20, 1, 10, 'poll');"
			"INSERT INTO scans VALUES(2, 30, NULL, NULL, NULL, 'poll');"
			"INSERT INTO processes(pid, id, scan_id, collection_time, name, "
			"command_line, argv_json, start_time, accessible, file_exists) "
			"VALUES(1, 'x', 1, 15, 'init', 'init', '[\"init\"]', 1000, 1, 1);"
			"PRAGMA user_version=1;",
			NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);

	struct de_store *s = open_at(path, 0);
	db = de_store_db(s);
	assert_int_equal(count(db, "PRAGMA user_version"), DE_STORE_SCHEMA_VERSION);
	assert_schema_described(db);
	/* live: its snapshot row carries what its instance row held */
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE pid = 1 AND "
				   "first_seen = 15 AND first_scan_id = 1 AND instance_id = 1"),
			 1);
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances"), 0);
	assert_int_equal(count(db, "SELECT count(*) FROM scans WHERE status = 'failed'"), 1);
	/* the migrated row is the same instance: rewritten, not a new one */
	struct de_process_record r;
	mk(&r, 1, 1000, 40, 3);
	store_ok(s, &r, 1);
	assert_int_equal(de_store_last_diff(s).added, 0);
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances"), 0);
	assert_int_equal(count(db, "SELECT count(*) FROM process_changes"), 0);
	de_process_record_clear(&r);
	de_store_close(s);
	free(path);
}

/*
 * A version-2 file (before alerts carried `incomplete`, when live instances
 * had history rows too) moves to version 4.
 */
static void test_migrates_v2(void **state)
{
	(void)state;
	char *path = db_path("v2.sqlite");
	struct de_store *s = open_at(path, 0);
	sqlite3 *db = de_store_db(s);
	struct de_process_record r[3];
	struct de_error e = {0};

	mk_many(r, 3, 1000, 1);
	store_ok(s, r, 3);
	retime(r, 3, 1500, 2);
	store_ok(s, r, 2); /* the third exits */
	de_store_close(s);
	/* take the file back to what schema 2 wrote: live instances had
	   process_instances rows too (with their first cpu/memory), the
	   snapshot had no first_seen */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	/* first what schemas 11 and 6 added */
	assert_int_equal(sqlite3_exec(db,
				      V10_INSTANCES "DROP TABLE network_connections;"
				      "ALTER TABLE processes DROP COLUMN user_name;"
				      "ALTER TABLE processes DROP COLUMN group_name;"
				      "ALTER TABLE processes DROP COLUMN cwd;"
				      "ALTER TABLE process_instances DROP COLUMN user_name;"
				      "ALTER TABLE process_instances DROP COLUMN group_name;"
				      "ALTER TABLE process_instances DROP COLUMN cwd;"
				      "ALTER TABLE process_changes DROP COLUMN user_name;"
				      "ALTER TABLE process_changes DROP COLUMN group_name;"
				      "ALTER TABLE process_changes DROP COLUMN cwd;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(db,
			     "INSERT INTO process_instances(id, pid, start_time, ppid, name,"
			     " executable_path, command_line, argv_json, executable_hash,"
			     " hash_algorithm, user_id, accessible, file_exists, exe_deleted,"
			     " exe_replaced, platform_data, cpu_usage, memory_usage, first_seen,"
			     " last_seen, first_scan_id, last_scan_id) SELECT instance_id, pid,"
			     " start_time, ppid, name, executable_path, command_line, argv_json,"
			     " executable_hash, hash_algorithm, user_id, accessible, file_exists,"
			     " exe_deleted, exe_replaced, platform_data, cpu_usage, memory_usage,"
			     " first_seen, first_seen, first_scan_id, first_scan_id FROM processes;"
			     "ALTER TABLE processes DROP COLUMN first_seen;"
			     "ALTER TABLE processes DROP COLUMN first_scan_id;"
			     "CREATE INDEX processes_ppid ON processes(ppid);"
			     "UPDATE process_instances SET cpu_usage = 1.5 WHERE pid = 3;"
			     "INSERT INTO process_samples(instance_id, t, scan_id, cpu_usage,"
			     " memory_usage) SELECT id, 1200, 1, 7.5, 4096 FROM process_instances"
			     " WHERE pid = 3;"
			     "ALTER TABLE alerts DROP COLUMN incomplete;"
			     /* and what schema 5 added */
			     "ALTER TABLE alerts DROP COLUMN kind;"
			     "ALTER TABLE alerts DROP COLUMN context;"
			     "DROP TABLE alert_state; DROP TABLE alert_suppressed;"
			     "DROP TABLE dedup_windows;"
			     "DROP INDEX alert_deliveries_due; DROP INDEX alert_deliveries_dead;"
			     "ALTER TABLE alert_deliveries DROP COLUMN next_attempt_at;"
			     /* and what schema 6 added */
			     "DROP TABLE fleet_spool;"
			     "INSERT INTO alerts(id, alert_time, rule_id, title, description,"
			     " severity, affected_processes, process_count, alert_data,"
			     " dedupe_key) VALUES('old', 1, 'r', 't', 'd', 'low', '[]', 0,"
			     " 'null', 'k');"
			     "PRAGMA user_version=2;",
			     NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);
	/* a reader asks for the agent to migrate first */
	struct de_store_config ro = {.path = path, .read_only = true};
	assert_true(de_store_open(&ro, &s, &e) < 0);
	assert_non_null(strstr(e.message, "schema version 2 is older"));

	s = open_at(path, 0);
	db = de_store_db(s);
	assert_int_equal(count(db, "PRAGMA user_version"), DE_STORE_SCHEMA_VERSION);
	assert_schema_described(db);
	assert_int_equal(count(db, "SELECT count(*) FROM alerts WHERE id = 'old' AND "
				   "incomplete = 0"),
			 1);
	/* schema 4: live instances moved into their snapshot rows, the exited
	   one keeps its row with its last sampled values */
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE first_seen = 1000 AND "
				   "first_scan_id = 1"),
			 2);
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances"), 1);
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances WHERE pid = 3 AND "
				   "cpu_usage = 7.5 AND exited_at = 1500"),
			 1);
	assert_int_equal(count(db, "SELECT count(*) FROM sqlite_master WHERE name = "
				   "'processes_name'"),
			 1);
	assert_int_equal(count(db, "SELECT count(*) FROM sqlite_master WHERE name = "
				   "'processes_ppid'"),
			 0);
	/* history and snapshot survive: the same scan again writes nothing */
	retime(r, 3, 2000, 2);
	store_ok(s, r, 2);
	struct de_store_diff d = de_store_last_diff(s);
	assert_int_equal(d.added + d.changed + d.exited + d.history, 0);
	/* alerts cut short say so */
	struct de_alert a = {0};
	de_uuid_v4(&a.id);
	a.alert_time = 5;
	a.rule_id = strdup("r");
	a.title = strdup("t");
	a.description = strdup("d");
	a.alert_data = json_null();
	a.dedupe_key = strdup("k2");
	a.incomplete = true;
	assert_int_equal(de_store_alert(s, &a, &e), 0);
	assert_int_equal(count(db, "SELECT incomplete FROM alerts WHERE dedupe_key = 'k2'"), 1);
	de_alert_clear(&a);
	assert_integrity(db);
	de_store_close(s);

	/* a file from a newer daemoneye is still refused, untouched */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	char sql[64], want[64];
	snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", DE_STORE_SCHEMA_VERSION + 1);
	snprintf(want, sizeof(want), "schema version %d is newer", DE_STORE_SCHEMA_VERSION + 1);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	struct de_store_config cfg = {.path = path, .wal_mode = true};
	s = NULL;
	assert_true(de_store_open(&cfg, &s, &e) < 0);
	assert_null(s);
	assert_int_equal(e.category, DE_ERR_DATABASE);
	assert_non_null(strstr(e.message, want));
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(count(db, "PRAGMA user_version"), DE_STORE_SCHEMA_VERSION + 1);
	sqlite3_close(db);
	clear_many(r, 3);
	free(path);
}

/* The state's indexes as schema 9 left them (schema 10 changed both). */
#define V9_STATE_INDEXES                                                                           \
	"DROP INDEX alert_state_alert;"                                                            \
	"CREATE INDEX alert_state_alert ON alert_state(alert_id);"                                 \
	"CREATE UNIQUE INDEX alert_state_open ON alert_state(rule_id, subject)"                    \
	" WHERE status = 'open';"

/* A new file (its path, a new string) made older by sql, which sets its version. */
static char *old_file(const char *name, const char *sql)
{
	char *path = db_path(name);
	sqlite3 *db;

	de_store_close(open_at(path, 0));
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	return path;
}

/* ids[0] counts the ids that follow it. */
static void push_id(int64_t *ids, int64_t id)
{
	ids[ids[0]++ + 1] = id;
}

static int due_row(const struct de_delivery_row *r, void *arg)
{
	push_id(arg, r->id);
	return 0;
}

/*
 * A version-8 file with deliveries pending (due, and waiting for a retry)
 * moves to version 9 with them intact and still found by de_outbox_due:
 * the due index now leaves out rows in a worker's hands (NULL due time),
 * which schema 8 never wrote.
 */
static void test_migrates_v8(void **state)
{
	(void)state;
	char *path =
		old_file("v8.sqlite",
			 "DROP INDEX alert_deliveries_due;"
			 "CREATE INDEX alert_deliveries_due ON alert_deliveries(sink,"
			 " next_attempt_at) WHERE status = 'pending';" V9_STATE_INDEXES V10_INSTANCES
			 "INSERT INTO alerts(id, alert_time, rule_id, title, description,"
			 " severity, affected_processes, process_count, alert_data,"
			 " dedupe_key) VALUES('a1', 1, 'r', 't', 'd', 'low', '[]', 0,"
			 " 'null', 'k');"
			 "INSERT INTO alert_deliveries(id, alert_id, sink, status, attempts,"
			 " next_attempt_at) VALUES(1, 'a1', 'f', 'delivered', 1, NULL),"
			 " (2, 'a1', 'g', 'pending', 0, 1000), (3, 'a1', 'h', 'pending', 2, 5000);"
			 "PRAGMA user_version=8;");
	struct de_store *s;
	sqlite3 *db;
	struct de_outbox *ob = NULL;
	struct de_error e = {0};
	int64_t ids[8] = {0}, next = 0;

	s = open_at(path, 0);
	db = de_store_db(s);
	assert_int_equal(count(db, "PRAGMA user_version"), DE_STORE_SCHEMA_VERSION);
	assert_schema_described(db);
	assert_int_equal(count(db, "SELECT count(*) FROM sqlite_master WHERE name ="
				   " 'alert_deliveries_due' AND sql LIKE '%IS NOT NULL%'"),
			 1);
	assert_int_equal(count(db, "SELECT count(*) FROM alert_deliveries WHERE"
				   " status = 'pending' AND next_attempt_at IS NOT NULL"),
			 2);
	assert_int_equal(de_outbox_open(s, &ob, &e), 0);
	/* the due one is due; the one waiting for its retry says when */
	assert_int_equal(de_outbox_due(ob, "g", 2000, 10, NULL, due_row, ids, &next, &e), 0);
	assert_int_equal(ids[0], 1);
	assert_int_equal(ids[1], 2);
	ids[0] = 0;
	assert_int_equal(de_outbox_due(ob, "h", 2000, 10, NULL, due_row, ids, &next, &e), 0);
	assert_int_equal(ids[0], 0);
	assert_int_equal(next, 5000);
	size_t n = 0;
	assert_int_equal(de_outbox_pending(ob, "h", &n, &e), 0);
	assert_int_equal(n, 1);
	/* nothing of schema 8 was in a worker's hands: nothing to recover */
	assert_int_equal(de_outbox_recover(ob, 2000, &n, &e), 0);
	assert_int_equal(n, 0);
	de_outbox_close(ob);
	assert_integrity(db);
	de_store_close(s);
	free(path);
}

/* Each listed alert's id and status, "id=status;" in list order. */
static int list_row(const struct de_alert *a, const char *status, void *arg)
{
	char id[DE_UUID_STR_LEN + 1], *out = arg;
	size_t len = strlen(out);

	de_uuid_format(&a->id, id);
	/* the last character tells them apart */
	snprintf(out + len, 256 - len, "%c=%s;", id[DE_UUID_STR_LEN - 1], status);
	return 0;
}

static int state_id_row(const struct de_state_row *r, void *arg)
{
	push_id(arg, r->id);
	return 0;
}

/*
 * A version-9 file (alert_state indexed by alert id whatever its status,
 * and its open states by key) moves to version 10 with its alerts, states
 * and deliveries intact: the index by alert id holds resolved states only,
 * the open states are found without an index, an alert's status is the
 * same as before, a delivery a killed run had in hand is recovered and
 * due, one waiting for its retry still waits.
 */
static void test_migrates_v9(void **state)
{
	(void)state;
	char *path =
		old_file("v9.sqlite", V9_STATE_INDEXES V10_INSTANCES
			 "INSERT INTO alerts(id, alert_time, rule_id, title, description,"
			 " severity, affected_processes, process_count, alert_data,"
			 " dedupe_key) VALUES"
			 " ('00000000-0000-7000-8000-000000000001', 1, 'r', 't', 'd', 'low',"
			 "  '[1]', 1, '[]', 'k'),"
			 " ('00000000-0000-7000-8000-000000000002', 2, 'r', 't', 'd', 'low',"
			 "  '[2]', 1, '[]', 'k'),"
			 " ('00000000-0000-7000-8000-000000000003', 3, 'r', 't', 'd', 'low',"
			 "  '[]', 0, '[]', 'k');"
			 "INSERT INTO alert_state(id, rule_id, subject, pid, alert_id, status,"
			 " opened_at, last_seen, resolved_at, resolution) VALUES"
			 " (1, 'r', 'p:1', 1, '00000000-0000-7000-8000-000000000001', 'open',"
			 "  1, 1, NULL, NULL),"
			 " (2, 'r', 'p:2', 2, '00000000-0000-7000-8000-000000000002', 'resolved',"
			 "  2, 2, 5, 'exited');"
			 "INSERT INTO alert_deliveries(id, alert_id, sink, status, attempts,"
			 " next_attempt_at) VALUES"
			 " (1, '00000000-0000-7000-8000-000000000001', 'f', 'pending', 0, NULL),"
			 " (2, '00000000-0000-7000-8000-000000000002', 'f', 'pending', 1, 9000),"
			 " (3, '00000000-0000-7000-8000-000000000003', 'f', 'delivered', 1, NULL);"
			 "PRAGMA user_version=9;");
	struct de_store *s;
	sqlite3 *db;
	struct de_outbox *ob = NULL;
	struct de_error e = {0};
	struct de_alert_filter f = {0};
	int64_t ids[8] = {0}, next = 0;
	char got[256] = "";

	s = open_at(path, 0);
	db = de_store_db(s);
	assert_int_equal(count(db, "PRAGMA user_version"), DE_STORE_SCHEMA_VERSION);
	assert_schema_described(db);
	assert_int_equal(count(db,
			       "SELECT count(*) FROM sqlite_master WHERE name ="
			       " 'alert_state_alert' AND sql LIKE '%WHERE status = ''resolved''%'"),
			 1);
	/* the open states have no index: the outbox keeps them in memory */
	assert_int_equal(count(db, "SELECT count(*) FROM sqlite_master WHERE name ="
				   " 'alert_state_open'"),
			 0);
	assert_int_equal(count(db, "SELECT count(*) FROM alerts"), 3);
	assert_int_equal(count(db, "SELECT count(*) FROM alert_state"), 2);
	assert_int_equal(de_outbox_open(s, &ob, &e), 0);
	/* the open state is found by its key, and by its rule */
	int64_t sid = 0, sids[4] = {0};
	assert_int_equal(de_outbox_state_open_id(ob, "r", "p:1", &sid, &e), 0);
	assert_int_equal(sid, 1);
	assert_int_equal(de_outbox_states_open(ob, "r", state_id_row, sids, &e), 0);
	assert_int_equal(sids[0], 1);
	assert_int_equal(sids[1], 1);
	/* statuses as schema 9 gave them: open, resolved, none */
	assert_int_equal(de_outbox_alerts_list(ob, &f, list_row, got, &e), 0);
	assert_string_equal(got, "3=;2=resolved;1=open;");
	/* the delivery in a killed run's hands is due again; the retry still waits */
	size_t n = 0;
	assert_int_equal(de_outbox_recover(ob, 1000, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_int_equal(de_outbox_due(ob, "f", 2000, 10, NULL, due_row, ids, &next, &e), 0);
	assert_int_equal(ids[0], 1);
	assert_int_equal(ids[1], 1);
	assert_int_equal(next, 9000);
	assert_int_equal(de_outbox_pending(ob, "f", &n, &e), 0);
	assert_int_equal(n, 2);
	/* a state resolved now is found by its alert through the partial index */
	assert_int_equal(de_outbox_tx_begin(ob, &e), 0);
	assert_int_equal(de_outbox_state_resolve(ob, 1, 6, "exited", &e), 0);
	assert_int_equal(de_outbox_tx_commit(ob, &e), 0);
	got[0] = '\0';
	assert_int_equal(de_outbox_alerts_list(ob, &f, list_row, got, &e), 0);
	assert_string_equal(got, "3=;2=resolved;1=resolved;");
	f.status = "resolved";
	got[0] = '\0';
	assert_int_equal(de_outbox_alerts_list(ob, &f, list_row, got, &e), 0);
	assert_string_equal(got, "2=resolved;1=resolved;");
	de_outbox_close(ob);
	assert_integrity(db);
	de_store_close(s);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schema_described), cmocka_unit_test(test_rule_visible),
		cmocka_unit_test(test_migrates_v1),	 cmocka_unit_test(test_migrates_v2),
		cmocka_unit_test(test_migrates_v8),	 cmocka_unit_test(test_migrates_v9),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
