/*
 * test_store_alerts.c — alerts and their delivery records
 * (src/lib/store_alerts.c): severity and the incomplete flag stored, one
 * delivery row per (alert, sink) with its attempts counted, optional
 * values NULL, invalid deliveries and a repeated alert id refused.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define DE_TEST_NAME "store_alerts"
#include "testutil.h"
#include "store_fixtures.h"

/* An alert of rule rule_id at t, with severity, data (taken) and dedupe key. */
static struct de_alert alert_of(const char *rule_id, int64_t t, enum de_severity sev, json_t *data,
				const char *key)
{
	struct de_alert a = {0};

	de_uuid_v4(&a.id);
	a.alert_time = t;
	a.rule_id = strdup(rule_id);
	a.title = strdup("t");
	a.description = strdup("d");
	a.severity = sev;
	a.alert_data = data;
	a.dedupe_key = strdup(key);
	return a;
}

static void test_alerts(void **state)
{
	(void)state;
	char *path = db_path("alerts.sqlite");
	struct de_store *s = open_at(path, 3600);
	sqlite3 *db = de_store_db(s);
	struct de_error e = {0};

	/* alerts */
	struct de_alert a = alert_of("r", 5, DE_SEV_CRITICAL, json_array(), "k");
	assert_int_equal(de_store_alert(s, &a, &e), 0);
	assert_int_equal(count(db, "SELECT count(*) FROM alerts WHERE severity = 'critical' AND "
				   "incomplete = 0"),
			 1);
	/* delivery records: one per (alert, sink), attempts counted */
	char aid[DE_UUID_STR_LEN + 1];
	de_uuid_format(&a.id, aid);
	assert_int_equal(
		de_store_alert_delivery(s, aid, "webhook", DE_DELIVERY_PENDING, 6, NULL, &e), 0);
	assert_int_equal(
		de_store_alert_delivery(s, aid, "webhook", DE_DELIVERY_FAILED, 7, "timeout", &e),
		0);
	assert_int_equal(
		de_store_alert_delivery(s, aid, "webhook", DE_DELIVERY_DELIVERED, 8, NULL, &e), 0);
	assert_int_equal(count(db, "SELECT count(*) FROM alert_deliveries WHERE sink = 'webhook' "
				   "AND status = 'delivered' AND attempts = 2 AND delivered_at = 8 "
				   "AND last_attempt_at = 8"),
			 1);
	assert_int_equal(count(db, "SELECT count(*) FROM alert_deliveries"), 1);
	/* no scan and no execution time given: NULL, not 0 */
	assert_int_equal(count(db, "SELECT count(*) FROM alerts WHERE scan_id IS NULL AND "
				   "rule_execution_time_ms IS NULL AND alert_data = '[]'"),
			 1);
	/* a delivery needs an alert, a sink and a known status */
	assert_int_equal(
		de_store_alert_delivery(s, NULL, "webhook", DE_DELIVERY_PENDING, 9, NULL, &e),
		-EINVAL);
	assert_int_equal(e.category, DE_ERR_VALIDATION);
	assert_int_equal(de_store_alert_delivery(s, aid, NULL, DE_DELIVERY_PENDING, 9, NULL, &e),
			 -EINVAL);
	assert_int_equal(
		de_store_alert_delivery(s, aid, "webhook", (enum de_delivery_status)3, 9, NULL, &e),
		-EINVAL);
	assert_int_equal(count(db, "SELECT attempts FROM alert_deliveries"), 2);
	de_alert_clear(&a);

	/* with its scan, its time and cut short */
	a = alert_of("r2", 10, DE_SEV_LOW, json_pack("{s:i}", "rows", 3), "k2");
	a.has_scan_id = true;
	a.scan_id = 42;
	a.has_rule_execution_time_ms = true;
	a.rule_execution_time_ms = 17;
	a.incomplete = true;
	assert_int_equal(de_store_alert(s, &a, &e), 0);
	assert_int_equal(count(db, "SELECT count(*) FROM alerts WHERE rule_id = 'r2' AND "
				   "scan_id = 42 AND rule_execution_time_ms = 17 AND "
				   "incomplete = 1 AND severity = 'low' AND "
				   "alert_data = '{\"rows\":3}' AND alert_time = 10"),
			 1);
	/* the same id twice is refused */
	assert_true(de_store_alert(s, &a, &e) < 0);
	assert_int_equal(e.category, DE_ERR_DATABASE);
	assert_int_equal(count(db, "SELECT count(*) FROM alerts"), 2);
	de_alert_clear(&a);
	de_store_close(s);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alerts),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
