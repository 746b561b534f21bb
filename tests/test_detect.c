/*
 * test_detect.c — the DetectionEngine over a real store: alerts carry every
 * seed field; dedupe keys (default and from dedupe_key_fields) group rows;
 * pids are distinct; a failing or slow rule never stops the others and is
 * reported; a rule cut short keeps its alerts marked incomplete; the alert
 * count per rule is capped; single-process runs (the exec path) see only
 * that pid and skip rules without a pid column.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemoneye/detect.h"
#include "daemoneye/rules.h"
#include "daemoneye/store.h"

#define DE_TEST_NAME "detect"
#include "testutil.h"
#include "detect_fixtures.h"

static void record(struct de_process_record *r, uint32_t pid, uint32_t ppid, const char *name,
		   bool deleted)
{
	fixture_record(r, pid, ppid, name, deleted ? "/tmp/payload" : "/usr/bin/ok", name, NULL,
		       deleted);
}

static int setup(void **state)
{
	(void)state;
	struct de_store *store;
	struct de_error e = {0};
	struct de_process_record recs[5];

	if (tmpdir_make() < 0 || asprintf(&dbpath, "%s/events.sqlite", tmpdir) < 0)
		return -1;
	struct de_store_config cfg = {.path = dbpath, .wal_mode = true};
	if (de_store_open(&cfg, &store, &e) < 0)
		return -1;
	record(&recs[0], 10, 1, "payload", true);
	record(&recs[1], 11, 1, "payload", true);
	record(&recs[2], 12, 10, "other", true);
	record(&recs[3], 13, 1, "fine", false);
	record(&recs[4], 14, 13, "fine", false);
	int rc = de_store_processes(store, recs[0].scan_id, recs, 5, &e);
	for (int i = 0; i < 5; i++)
		de_process_record_clear(&recs[i]);
	de_store_close(store);
	if (rc < 0 || !(val = de_validator_new()))
		return -1;
	de_validator_with_timeout(val, 200);
	return de_engine_open(dbpath, val, &eng, &e);
}

static void test_builtin_deleted_executable(void **state)
{
	(void)state;
	struct de_rule_set set = {0};
	struct de_rule_problems pr = {0};
	struct de_alert_list alerts = {0};
	struct de_rule_result res;
	struct de_error e = {0};

	assert_int_equal(de_rules_load_builtin(val, &set, &pr, &e), 0);
	const struct de_rule *rule = de_rule_set_find(&set, "deleted-executable");
	assert_non_null(rule);
	assert_int_equal(de_engine_run_rule(eng, rule, 77, NULL, &alerts, &res), 0);
	assert_true(res.ran);
	assert_int_equal(res.rows, 3);
	assert_int_equal(res.alerts, 2);
	/* two dedupe keys: payload (pids 10, 11) and other (12) */
	assert_int_equal(alerts.len, 2);
	struct de_alert *a = &alerts.items[0];
	assert_string_equal(a->rule_id, "deleted-executable");
	assert_string_equal(a->title, rule->name);
	assert_string_equal(a->description, rule->description);
	assert_int_equal(a->severity, DE_SEV_HIGH);
	assert_true(a->has_scan_id);
	assert_int_equal(a->scan_id, 77);
	assert_int_equal(a->process_count, 2);
	assert_int_equal(a->affected_processes_len, 2);
	assert_int_equal(a->affected_processes[0], 10);
	assert_int_equal(a->affected_processes[1], 11);
	assert_true(a->has_rule_execution_time_ms);
	assert_true(a->rule_execution_time_ms >= 0);
	assert_true(a->alert_time > 0);
	assert_false(a->incomplete);
	assert_string_equal(a->dedupe_key, "deleted-executable|payload|/tmp/payload");
	assert_int_equal(json_array_size(a->alert_data), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(a->alert_data, 0),
							      "executable_path")),
			    "/tmp/payload");
	assert_int_equal(alerts.items[1].affected_processes[0], 12);
	/* the JSON form has the seed's fields and no "incomplete" when complete */
	json_t *j = de_alert_to_json(a);
	assert_int_equal(json_object_size(j), 12);
	json_decref(j);
	de_alert_list_clear(&alerts);
	de_rule_set_clear(&set);
}

static void test_dedupe_and_distinct_pids(void **state)
{
	(void)state;
	struct de_alert_list alerts = {0};
	struct de_rule_result res;
	char *fields[] = {"ppid"};
	/* a join that returns pid 10 twice (once per matching child row) */
	struct de_rule r = mkrule("by-ppid", "SELECT p.pid, p.ppid, p.name FROM processes p, "
					     "processes q WHERE p.name = 'payload' "
					     "ORDER BY p.pid");
	r.dedupe_key_fields = fields;
	r.dedupe_key_fields_len = 1;
	assert_int_equal(de_engine_run_rule(eng, &r, 5, NULL, &alerts, &res), 0);
	assert_int_equal(res.rows, 10); /* 2 x 5 */
	assert_int_equal(alerts.len, 1);
	assert_string_equal(alerts.items[0].dedupe_key, "by-ppid|1");
	assert_int_equal(alerts.items[0].affected_processes_len, 2);
	assert_int_equal(alerts.items[0].process_count, 2);
	assert_int_equal(json_array_size(alerts.items[0].alert_data), 10);
	de_alert_list_clear(&alerts);

	/* no pid column: process_count counts rows, no pids */
	r = mkrule("count", "SELECT name, count(*) AS n FROM processes GROUP BY name");
	assert_int_equal(de_engine_run_rule(eng, &r, 5, NULL, &alerts, &res), 0);
	assert_int_equal(alerts.len, 3);
	assert_int_equal(alerts.items[0].affected_processes_len, 0);
	assert_int_equal(alerts.items[0].process_count, 1);
	de_alert_list_clear(&alerts);
}

static void test_failures_are_isolated(void **state)
{
	(void)state;
	struct de_alert_list alerts = {0};
	struct de_rule_result res[5];
	struct de_rule rules[5] = {
		mkrule("broken", "SELEKT pid FROM processes"),
		mkrule("writer", "DELETE FROM processes"),
		mkrule("endless", "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
				  "SELECT count(*) AS pid FROM c"),
		mkrule("off", "SELECT pid, name FROM processes"),
		mkrule("good", "SELECT pid, name, executable_path FROM processes WHERE pid = 13"),
	};
	rules[3].enabled = false;

	assert_int_equal(de_engine_run(eng, rules, 5, 9, &alerts, res), 3);
	assert_int_equal(res[0].status, -EINVAL);
	assert_non_null(strstr(res[0].error.message, "rule broken: near \"SELEKT\": syntax error"));
	assert_int_equal(res[1].status, -EPERM);
	assert_non_null(strstr(res[1].error.message, "DELETE on processes is not allowed"));
	assert_int_equal(res[2].status, -ETIMEDOUT);
	assert_non_null(strstr(res[2].error.message, "rule endless: stopped: ran longer than its "
						     "timeout of 200 ms"));
	assert_false(res[3].ran);
	assert_int_equal(res[4].status, 0);
	assert_true(res[4].ran);
	assert_int_equal(res[4].alerts, 1);
	assert_int_equal(alerts.len, 1);
	assert_string_equal(alerts.items[0].rule_id, "good");
	de_alert_list_clear(&alerts);
}

/* One row at once (pid 13), then an endless search (pid 14): cut short by
   the timeout. */
static const char slow_on_14[] = "SELECT pid, name, executable_path FROM processes WHERE pid = 13 "
				 "OR (pid = 14 AND (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
				 "SELECT x + 1 FROM c) SELECT count(*) FROM c) > 0)";

static void test_incomplete_marker(void **state)
{
	(void)state;
	struct de_alert_list alerts = {0};
	struct de_rule_result res;
	struct de_rule r = mkrule("partial", slow_on_14);

	/* generous: the first row must come well before the deadline, even under valgrind */
	de_validator_with_timeout(val, 2000);
	assert_int_equal(de_engine_run_rule(eng, &r, 3, NULL, &alerts, &res), -ETIMEDOUT);
	assert_int_equal(res.rows, 1);
	assert_int_equal(alerts.len, 1);
	assert_true(alerts.items[0].incomplete);
	assert_non_null(strstr(alerts.items[0].description, "[incomplete: rule partial: stopped"));
	json_t *j = de_alert_to_json(&alerts.items[0]);
	assert_true(json_is_true(json_object_get(j, "incomplete")));
	json_decref(j);
	de_alert_list_clear(&alerts);

	/* too many distinct alerts: capped, the rest reported as incomplete */
	r = mkrule("flood", "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
			    "LIMIT 1500) SELECT x AS pid, x AS name FROM c");
	de_validator_with_timeout(val, 0); /* the cap, not the clock, must stop it */
	assert_int_equal(de_engine_run_rule(eng, &r, 3, NULL, &alerts, &res), -E2BIG);
	de_validator_with_timeout(val, 200);
	assert_int_equal(alerts.len, DE_DETECT_MAX_ALERTS);
	assert_true(alerts.items[0].incomplete);
	assert_non_null(strstr(res.error.message, "more than 1000 distinct alerts"));
	de_alert_list_clear(&alerts);
}

/* A rule on one process, one without a pid column, one that joins. */
static void single_process_rules(struct de_rule rules[3])
{
	rules[0] = mkrule("deleted", "SELECT pid, name, executable_path FROM processes "
				     "WHERE exe_deleted = 1;  ");
	rules[1] = mkrule("no-pid", "SELECT name FROM processes -- trailing comment");
	rules[2] =
		mkrule("children", "SELECT c.pid, c.name, p.name AS parent FROM processes c "
				   "JOIN processes p ON p.pid = c.ppid WHERE p.name = 'payload'");
}

static void test_single_process_runs(void **state)
{
	(void)state;
	struct de_alert_list alerts = {0};
	struct de_rule_result res[3];
	struct de_rule rules[3];
	single_process_rules(rules);

	assert_int_equal(de_engine_run_pid(eng, rules, 3, 11, 4, &alerts, res), 0);
	assert_true(res[0].ran);
	assert_false(res[1].ran); /* not a single-process rule */
	assert_true(res[2].ran);
	assert_int_equal(alerts.len, 1);
	assert_int_equal(alerts.items[0].affected_processes_len, 1);
	assert_int_equal(alerts.items[0].affected_processes[0], 11);
	de_alert_list_clear(&alerts);

	assert_int_equal(de_engine_run_pid(eng, rules, 3, 12, 4, &alerts, res), 0);
	assert_int_equal(alerts.len, 2); /* deleted, and a child of payload */
	assert_string_equal(alerts.items[1].rule_id, "children");
	assert_int_equal(alerts.items[1].affected_processes[0], 12);
	de_alert_list_clear(&alerts);

	assert_int_equal(de_engine_run_pid(eng, rules, 3, 13, 4, &alerts, res), 0);
	assert_int_equal(alerts.len, 0);
	assert_int_equal(de_engine_run_pid(eng, rules, 3, 99999, 4, &alerts, res), 0);
	assert_int_equal(alerts.len, 0);

	/* the statements are cached per mode: a whole-snapshot run of the same
	 * rules after the pid runs sees every process again, twice alike */
	for (int round = 0; round < 2; round++) {
		assert_int_equal(de_engine_run(eng, rules, 3, 5, &alerts, res), 0);
		assert_true(res[1].ran);
		assert_string_equal(alerts.items[0].rule_id, "deleted");
		assert_int_equal(alerts.items[0].affected_processes_len, 2); /* 11 and 12 */
		de_alert_list_clear(&alerts);
	}
	assert_int_equal(de_engine_run_pid(eng, rules, 3, 12, 4, &alerts, res), 0);
	assert_int_equal(alerts.len, 2);
	de_alert_list_clear(&alerts);
}

/*
 * A batch of pids (the exec path) makes the alerts that one run per pid
 * makes, each with its own process, also across the sets of eight that a
 * statement run takes, and with a pid twice or absent.
 */
static void test_batch_runs(void **state)
{
	(void)state;
	struct de_alert_list alerts = {0};
	struct de_rule_result res[3];
	struct de_rule rules[3];
	single_process_rules(rules);
	uint32_t few[] = {13, 12, 99999, 11};
	uint32_t many[20];

	assert_int_equal(de_engine_run_pids(eng, rules, 3, few, 4, 4, &alerts, res), 0);
	assert_true(res[0].ran);
	assert_false(res[1].ran);
	assert_int_equal(res[0].rows, 2);
	assert_int_equal(res[0].alerts, 2); /* 11 and 12 apart, as one run each */
	assert_int_equal(alerts.len, 3);
	for (size_t i = 0; i < alerts.len; i++)
		assert_int_equal(alerts.items[i].affected_processes_len, 1);
	/* grouped by rule; within a rule in the order SQLite yields the rows */
	assert_string_equal(alerts.items[0].rule_id, "deleted");
	assert_string_equal(alerts.items[1].rule_id, "deleted");
	assert_int_equal(alerts.items[0].affected_processes[0] +
				 alerts.items[1].affected_processes[0],
			 11 + 12);
	assert_int_not_equal(alerts.items[0].affected_processes[0],
			     alerts.items[1].affected_processes[0]);
	assert_string_equal(alerts.items[2].rule_id, "children");
	assert_int_equal(alerts.items[2].affected_processes[0], 12);
	de_alert_list_clear(&alerts);

	/* 11 and 12 in different sets of eight, 12 twice */
	for (uint32_t i = 0; i < 20; i++)
		many[i] = 1000 + i;
	many[3] = 11;
	many[12] = 12;
	many[19] = 12;
	assert_int_equal(de_engine_run_pids(eng, rules, 3, many, 20, 4, &alerts, res), 0);
	assert_int_equal(alerts.len, 3);
	assert_int_equal(alerts.items[0].affected_processes[0], 11); /* the first set */
	assert_int_equal(alerts.items[1].affected_processes[0], 12); /* the second */
	assert_int_equal(alerts.items[1].affected_processes_len, 1);
	assert_int_equal(alerts.items[1].process_count, 1);
	assert_string_equal(alerts.items[2].rule_id, "children");
	assert_int_equal(alerts.items[2].affected_processes[0], 12);
	de_alert_list_clear(&alerts);

	assert_int_equal(de_engine_run_pids(eng, rules, 3, many, 0, 4, &alerts, res), 0);
	assert_int_equal(alerts.len, 0);
	assert_false(res[0].ran);
}

/*
 * One run covers a whole batch (the engine's pid table): every process of
 * a batch larger than any set size is evaluated, each alert holds one
 * process even when several share a dedupe key (a whole-snapshot run
 * groups them), and a rule SQLite cannot flatten into the restriction (an
 * aggregate: the parameter form) agrees with one that it can.
 */
static void test_batch_covers_every_pid(void **state)
{
	(void)state;
	struct de_alert_list alerts = {0};
	struct de_rule_result res[3];
	struct de_rule rules[3];
	uint32_t batch[40];

	rules[0] = mkrule("flat", "SELECT pid, name, executable_path FROM processes "
				  "WHERE exe_deleted = 1");
	rules[1] = mkrule("grouped", "SELECT pid, name, executable_path, count(*) AS n "
				     "FROM processes WHERE exe_deleted = 1 GROUP BY pid");
	rules[2] = mkrule("by-name", "SELECT pid, name FROM processes WHERE exe_deleted = 1");
	rules[2].dedupe_key_fields = (char *[]){(char *)"name"};
	rules[2].dedupe_key_fields_len = 1;
	/* the deleted ones (10, 11, 12) far apart in a batch of 40, 11 twice */
	for (uint32_t i = 0; i < 40; i++)
		batch[i] = 2000 + i;
	batch[0] = 12;
	batch[17] = 11;
	batch[23] = 11;
	batch[39] = 10;
	assert_int_equal(de_engine_run_pids(eng, rules, 3, batch, 40, 4, &alerts, res), 0);
	for (int r = 0; r < 3; r++) {
		uint32_t seen = 0;
		assert_true(res[r].ran);
		assert_int_equal(res[r].rows, 3);
		assert_int_equal(res[r].alerts, 3); /* 10 and 11 share a name: still apart */
		for (size_t i = 0; i < alerts.len; i++) {
			struct de_alert *a = &alerts.items[i];
			if (strcmp(a->rule_id, rules[r].id) != 0)
				continue;
			assert_int_equal(a->affected_processes_len, 1);
			assert_int_equal(a->process_count, 1);
			assert_int_equal(json_array_size(a->alert_data), 1);
			/* the row is the alert's own process's */
			assert_int_equal(json_integer_value(json_object_get(
						 json_array_get(a->alert_data, 0), "pid")),
					 a->affected_processes[0]);
			seen |= 1u << (a->affected_processes[0] - 10);
		}
		assert_int_equal(seen, 7); /* 10, 11 and 12 */
	}
	de_alert_list_clear(&alerts);

	/* the snapshot run of the dedupe-by-name rule groups 10 and 11 */
	assert_int_equal(de_engine_run_rule(eng, &rules[2], 4, NULL, &alerts, res), 0);
	assert_int_equal(alerts.len, 2);
	de_alert_list_clear(&alerts);

	/* a later, smaller batch sees only its own pids, not the last one's,
	   also inside the exec path's read transaction, twice (the first was
	   committed) */
	uint32_t one = 13;
	for (int round = 0; round < 2; round++) {
		assert_int_equal(de_engine_begin_batch(eng, NULL), 0);
		assert_int_equal(sqlite3_get_autocommit(de_engine_db(eng)), 0);
		assert_int_equal(de_engine_run_pids(eng, rules, 3, &one, 1, 4, &alerts, res), 0);
		assert_int_equal(alerts.len, 0);
		assert_int_equal(res[0].rows, 0);
		assert_int_equal(de_engine_run_pids(eng, rules, 3, batch, 40, 4, &alerts, res), 0);
		assert_int_equal(res[0].rows, 3);
		de_engine_end_batch(eng);
		assert_int_not_equal(sqlite3_get_autocommit(de_engine_db(eng)), 0);
		de_alert_list_clear(&alerts);
	}
}

/* A pid run still stops at the rule's timeout, keeping what it found. */
static void test_batch_timeout(void **state)
{
	(void)state;
	struct de_alert_list alerts = {0};
	struct de_rule_result res;
	struct de_rule r = mkrule("slow", slow_on_14);
	uint32_t pids[] = {13, 14};

	de_validator_with_timeout(val, 2000);
	assert_int_equal(de_engine_run_pids(eng, &r, 1, pids, 2, 5, &alerts, &res), 1);
	de_validator_with_timeout(val, 200);
	assert_int_equal(res.status, -ETIMEDOUT);
	assert_int_equal(alerts.len, 1);
	assert_int_equal(alerts.items[0].affected_processes[0], 13);
	assert_true(alerts.items[0].incomplete);
	de_alert_list_clear(&alerts);
}

/*
 * The engine's pid table is its own: a rule (or a query on the engine's
 * connection) that names it is refused, read with columns or without, by
 * itself or inside a rule, or written; a wrapper may reference it once only.
 */
static void test_pid_table_unreachable(void **state)
{
	(void)state;
	static const char *const sneaky[] = {
		"SELECT pid FROM de_exec_pids",
		"SELECT pid FROM temp.de_exec_pids",
		"SELECT count(*) AS pid FROM de_exec_pids",
		"SELECT pid, name FROM processes WHERE EXISTS (SELECT 1 FROM de_exec_pids)",
		"SELECT pid, name FROM processes WHERE pid IN (SELECT pid FROM de_exec_pids)",
		"SELECT pid, name FROM processes WHERE pid IN de_exec_pids",
		"SELECT rowid AS pid FROM temp.de_exec_pids",
		"SELECT name AS pid FROM sqlite_temp_schema",
	};
	struct de_alert_list alerts = {0};
	struct de_rule_result res;
	uint32_t pids[] = {10, 11};
	sqlite3 *db = de_engine_db(eng);
	sqlite3_stmt *st = NULL;
	struct de_error err = {0};

	for (size_t i = 0; i < sizeof(sneaky) / sizeof(sneaky[0]); i++) {
		struct de_rule r = mkrule("sneaky", sneaky[i]);
		/* the pid table holds 10 and 11 while the rule is prepared */
		assert_int_equal(de_engine_run_pids(eng, &r, 1, pids, 2, 5, &alerts, &res), 1);
		assert_int_equal(res.status, -EPERM);
		assert_int_equal(de_engine_run_rule(eng, &r, 5, NULL, &alerts, &res), -EPERM);
		assert_int_equal(alerts.len, 0);
		assert_int_equal(de_validator_prepare(val, db, sneaky[i], &st, &err), -EPERM);
		assert_null(st);
	}
	/* the wrapper's one reference passes; a second one does not */
	assert_int_equal(de_validator_prepare_for_pids(
				 val, db,
				 "SELECT * FROM (SELECT pid FROM processes) WHERE pid IN "
				 "(SELECT pid FROM temp.de_exec_pids)",
				 &st, &err),
			 0);
	sqlite3_finalize(st);
	st = NULL;
	assert_int_equal(de_validator_prepare_for_pids(
				 val, db,
				 "SELECT * FROM (SELECT pid FROM temp.de_exec_pids) WHERE pid IN "
				 "(SELECT pid FROM temp.de_exec_pids)",
				 &st, &err),
			 -EPERM);
	assert_null(st);
	/* nothing validated writes the table, or makes another, or writes the store */
	static const char *const writes[] = {
		"INSERT INTO temp.de_exec_pids VALUES (77)",
		"DELETE FROM de_exec_pids",
		"CREATE TEMP TABLE t(pid)",
		"CREATE TEMP VIEW v AS SELECT 1 AS pid",
	};
	for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
		assert_int_equal(de_validator_prepare(val, db, writes[i], &st, &err), -EPERM);
		assert_null(st);
	}
	assert_int_not_equal(sqlite3_exec(db, "DELETE FROM processes", NULL, NULL, NULL),
			     SQLITE_OK);
}

/*
 * A cached statement must not outlive a schema change: here `processes`
 * becomes a view over another table calling a function off the allowlist.
 * SQLite would silently recompile the cached statement (without the
 * authorizer); the engine must notice and validate again, and refuse.
 */
/* The statement cache finds a rule again by where its text is; a new text
   written where an old one was is the new rule, not the old one's cached
   statement. */
static void test_cache_same_address_new_text(void **state)
{
	(void)state;
	struct de_alert_list alerts = {0};
	struct de_rule_result res;
	char sql[160];
	struct de_rule r;

	snprintf(sql, sizeof(sql), "%s",
		 "SELECT pid, name, executable_path FROM processes WHERE name = 'payload'");
	r = mkrule("text", sql);
	for (int i = 0; i < 2; i++) { /* prepared, then found in the cache */
		assert_int_equal(de_engine_run_pid(eng, &r, 1, 10, 6, &alerts, &res), 0);
		assert_int_equal(alerts.len, 1);
		de_alert_list_clear(&alerts);
	}
	snprintf(sql, sizeof(sql), "%s",
		 "SELECT pid, name, executable_path FROM processes WHERE name = 'fine'");
	assert_int_equal(de_engine_run_pid(eng, &r, 1, 10, 7, &alerts, &res), 0);
	assert_int_equal(alerts.len, 0);
	assert_int_equal(de_engine_run_pid(eng, &r, 1, 13, 7, &alerts, &res), 0);
	assert_int_equal(alerts.len, 1);
	assert_int_equal(alerts.items[0].affected_processes[0], 13);
	de_alert_list_clear(&alerts);
	/* and the whole-snapshot form of the same buffer likewise */
	assert_int_equal(de_engine_run_rule(eng, &r, 8, NULL, &alerts, &res), 0);
	assert_int_equal(alerts.len, 1);
	assert_int_equal(alerts.items[0].affected_processes_len, 2); /* 13 and 14 */
	de_alert_list_clear(&alerts);
}

static void test_schema_change_revalidates(void **state)
{
	(void)state;
	struct de_alert_list alerts = {0};
	struct de_rule_result res;
	struct de_rule rule = mkrule(
		"snap", "SELECT pid, name, executable_path FROM processes WHERE exe_deleted");
	sqlite3 *w;

	assert_int_equal(de_engine_run_rule(eng, &rule, 1, NULL, &alerts, &res), 0);
	assert_true(alerts.len > 0);
	de_alert_list_clear(&alerts);
	assert_int_equal(sqlite3_open(dbpath, &w), SQLITE_OK);
	assert_int_equal(sqlite3_exec(w,
				      "ALTER TABLE processes RENAME TO processes_real;"
				      "CREATE VIEW processes AS SELECT pid, name, executable_path,"
				      " exe_deleted, random() AS r FROM processes_real;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(w);
	assert_true(de_engine_run_rule(eng, &rule, 2, NULL, &alerts, &res) < 0);
	assert_int_equal(alerts.len, 0);
	assert_true(strstr(res.error.message, "random") ||
		    strstr(res.error.message, "processes_real"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtin_deleted_executable),
		cmocka_unit_test(test_dedupe_and_distinct_pids),
		cmocka_unit_test(test_failures_are_isolated),
		cmocka_unit_test(test_incomplete_marker),
		cmocka_unit_test(test_single_process_runs),
		cmocka_unit_test(test_batch_runs),
		cmocka_unit_test(test_batch_covers_every_pid),
		cmocka_unit_test(test_batch_timeout),
		cmocka_unit_test(test_pid_table_unreachable),
		cmocka_unit_test(test_cache_same_address_new_text),
		cmocka_unit_test(test_schema_change_revalidates), /* last: changes the schema */
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
