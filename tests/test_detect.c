/*
 * test_detect.c — rule execution over a real store: the builtin rule
 * raises an alert for a deleted executable with every Alert field filled;
 * a rule that writes, runs two statements or never ends is refused or
 * stopped, and the store is unchanged.
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
#include "daemoneye/store.h"

static char tmpdir[] = "/tmp/de-test-detect-XXXXXX";
static struct de_store *store;

static void record(struct de_process_record *r, uint32_t pid, const char *name, bool deleted)
{
	memset(r, 0, sizeof(*r));
	de_uuid_v4(&r->id);
	r->pid = pid;
	r->name = strdup(name);
	r->executable_path = strdup(deleted ? "/tmp/payload" : "/usr/bin/ok");
	r->command_line = calloc(1, sizeof(char *));
	r->accessible = true;
	r->file_exists = !deleted;
	r->platform_data = json_pack("{s:b}", "exe_deleted", deleted);
}

static int setup(void **state)
{
	(void)state;
	char *path;
	struct de_error e = {0};
	struct de_process_record recs[4];

	if (!mkdtemp(tmpdir) || asprintf(&path, "%s/events.sqlite", tmpdir) < 0)
		return -1;
	struct de_store_config cfg = {.path = path, .wal_mode = true};
	if (de_store_open(&cfg, &store, &e) < 0)
		return -1;
	free(path);
	record(&recs[0], 10, "payload", true);
	record(&recs[1], 11, "payload", true);
	record(&recs[2], 12, "other", true);
	record(&recs[3], 13, "fine", false);
	int rc = de_store_processes(store, recs, 4, &e);
	for (int i = 0; i < 4; i++)
		de_process_record_clear(&recs[i]);
	return rc;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	de_store_close(store);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_builtin_rules(void **state)
{
	(void)state;
	struct de_rule *rules;
	size_t n;
	struct de_error e = {0};

	assert_int_equal(de_detect_builtin_rules(&rules, &n, &e), 0);
	assert_true(n >= 1);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(rules[i].id);
		assert_non_null(rules[i].sql_query);
		assert_int_equal(rules[i].source_type, DE_RULE_BUILTIN);
		assert_true(rules[i].enabled);
		assert_true(rules[i].tags_len >= 1);
		assert_int_equal(strncmp(rules[i].tags[0], "attack.t", 8), 0);
	}
	assert_string_equal(rules[0].id, "deleted-executable");

	struct de_alert_list alerts = {0};
	assert_int_equal(de_detect_run_rule(de_store_db(store), &rules[0], 77, 1000, &alerts, &e),
			 0);
	/* two dedupe keys: payload (pids 10, 11) and other (12) */
	assert_int_equal(alerts.len, 2);
	struct de_alert *a = &alerts.items[0];
	assert_string_equal(a->rule_id, "deleted-executable");
	assert_string_equal(a->title, rules[0].name);
	assert_string_equal(a->description, rules[0].description);
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
	assert_string_equal(a->dedupe_key, "deleted-executable|payload|/tmp/payload");
	assert_int_equal(json_array_size(a->alert_data), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(a->alert_data, 0),
							      "executable_path")),
			    "/tmp/payload");
	assert_int_equal(alerts.items[1].affected_processes[0], 12);
	de_alert_list_clear(&alerts);
	de_rule_array_free(rules, n);
}

static void expect_refused(const char *sql, const char *needle)
{
	struct de_rule r = {.id = "bad", .name = "bad", .sql_query = (char *)sql, .enabled = true};
	struct de_alert_list alerts = {0};
	struct de_error e = {0};
	sqlite3 *db = de_store_db(store);

	assert_true(de_detect_run_rule(db, &r, 1, 200, &alerts, &e) < 0);
	assert_int_equal(e.category, DE_ERR_DETECTION);
	if (!strstr(e.message, needle))
		fail_msg("'%s' -> '%s' lacks '%s'", sql, e.message, needle);
	assert_int_equal(alerts.len, 0);
	free(alerts.items);
	/* the store is untouched */
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM processes", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 4);
	sqlite3_finalize(st);
}

static void test_hostile_rules(void **state)
{
	(void)state;
	expect_refused("DELETE FROM processes", "not authorized");
	expect_refused("UPDATE processes SET name = 'x'", "not authorized");
	expect_refused("SELECT 1; DELETE FROM processes", "only one SQL statement");
	expect_refused("ATTACH DATABASE '/tmp/x.db' AS x", "not authorized");
	expect_refused("PRAGMA writable_schema=1", "not authorized");
	expect_refused("DROP TABLE processes", "not authorized");
	expect_refused("SELEKT 1", "syntax error");
	expect_refused("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
		       "SELECT count(*) FROM c",
		       "timeout");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtin_rules),
		cmocka_unit_test(test_hostile_rules),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
