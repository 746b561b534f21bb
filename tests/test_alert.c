/*
 * test_alert.c — the Alert model (every seed field, JSON that round-trips,
 * malformed alerts), severity names, the alert list, and rendering (text
 * escaping, JSON round trip).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemoneye/alert.h"

static char *xstrdup(const char *s)
{
	char *d = strdup(s);
	assert_non_null(d);
	return d;
}

static void test_severity(void **state)
{
	(void)state;
	static const char *const names[] = {"low", "medium", "high", "critical"};
	struct de_error e = {0};
	enum de_severity s;

	for (int i = 0; i < DE_SEV_MAX; i++) {
		assert_string_equal(de_severity_name((enum de_severity)i), names[i]);
		assert_int_equal(de_severity_parse(names[i], &s, &e), 0);
		assert_int_equal(s, i);
	}
	assert_int_equal(de_severity_parse("CRITICAL", &s, &e), 0);
	assert_int_equal(s, DE_SEV_CRITICAL);
	assert_int_equal(de_severity_parse("High", &s, &e), 0);
	assert_int_equal(s, DE_SEV_HIGH);
	assert_int_equal(de_severity_parse("urgent", &s, &e), -EINVAL);
	assert_int_equal(e.category, DE_ERR_VALIDATION);
	assert_non_null(strstr(e.message, "urgent"));
	assert_non_null(strstr(e.message, "low, medium, high or critical"));
	assert_null(de_severity_name(DE_SEV_MAX));
}

static void test_alert_every_field(void **state)
{
	(void)state;
	struct de_alert a = {0}, back;
	struct de_error e = {0};
	assert_int_equal(de_uuid_v4(&a.id), 0);
	a.alert_time = 1764060360123;
	a.rule_id = xstrdup("deleted-executable");
	a.title = xstrdup("Process running a deleted executable");
	a.description = xstrdup("desc");
	a.severity = DE_SEV_CRITICAL;
	a.has_scan_id = true;
	a.scan_id = 99;
	a.affected_processes = calloc(2, sizeof(uint32_t));
	a.affected_processes[0] = 10;
	a.affected_processes[1] = 4294967295u;
	a.affected_processes_len = 2;
	a.process_count = 2;
	a.alert_data = json_pack("[{s:i},{s:i}]", "pid", 10, "pid", 11);
	a.has_rule_execution_time_ms = true;
	a.rule_execution_time_ms = 3;
	a.dedupe_key = xstrdup("deleted-executable|sleep|/tmp/x");

	json_t *j = de_alert_to_json(&a);
	assert_int_equal(json_object_size(j), 12);
	assert_string_equal(json_string_value(json_object_get(j, "severity")), "critical");
	assert_int_equal(json_integer_value(json_object_get(j, "scan_id")), 99);
	assert_int_equal(
		json_integer_value(json_array_get(json_object_get(j, "affected_processes"), 1)),
		4294967295);
	assert_int_equal(json_integer_value(json_object_get(j, "process_count")), 2);
	assert_int_equal(json_integer_value(json_object_get(j, "rule_execution_time_ms")), 3);
	assert_int_equal(json_integer_value(json_object_get(j, "alert_time")), 1764060360123);
	assert_string_equal(json_string_value(json_object_get(j, "rule_id")), "deleted-executable");
	assert_string_equal(json_string_value(json_object_get(j, "title")),
			    "Process running a deleted executable");
	assert_string_equal(json_string_value(json_object_get(j, "description")), "desc");
	assert_string_equal(json_string_value(json_object_get(j, "dedupe_key")),
			    "deleted-executable|sleep|/tmp/x");
	assert_int_equal(de_alert_from_json(j, &back, &e), 0);
	assert_true(de_alert_equal(&a, &back));
	de_alert_clear(&back);

	/* optional scan_id and execution time */
	a.has_scan_id = false;
	a.has_rule_execution_time_ms = false;
	json_decref(j);
	j = de_alert_to_json(&a);
	assert_true(json_is_null(json_object_get(j, "scan_id")));
	assert_true(json_is_null(json_object_get(j, "rule_execution_time_ms")));
	assert_int_equal(de_alert_from_json(j, &back, &e), 0);
	assert_true(de_alert_equal(&a, &back));
	assert_false(back.has_scan_id);
	de_alert_clear(&back);

	/* alert_data is required but may be JSON null */
	json_object_set_new(j, "alert_data", json_null());
	assert_int_equal(de_alert_from_json(j, &back, &e), 0);
	assert_true(json_is_null(back.alert_data));
	de_alert_clear(&back);
	json_object_del(j, "alert_data");
	assert_true(de_alert_from_json(j, &back, &e) < 0);
	assert_non_null(strstr(e.message, "'alert_data' is missing"));

	/* unknown severity */
	json_object_set_new(j, "alert_data", json_array());
	json_object_set_new(j, "severity", json_string("urgent"));
	assert_true(de_alert_from_json(j, &back, &e) < 0);
	assert_non_null(strstr(e.message, "unknown severity 'urgent'"));
	json_object_set_new(j, "severity", json_string("Medium"));
	json_object_set_new(j, "process_count", json_integer(2147483648));
	assert_true(de_alert_from_json(j, &back, &e) < 0);
	assert_non_null(strstr(e.message, "'process_count' is out of range"));

	json_decref(j);
	de_alert_clear(&a);
}

static void make_alert(struct de_alert *a);

/* The list frees every alert it holds and is empty after; NULL is fine. */
static void test_list_clear(void **state)
{
	(void)state;
	struct de_alert_list l = {0};

	l.items = calloc(3, sizeof(*l.items));
	l.cap = 3;
	for (size_t i = 0; i < 3; i++) {
		make_alert(&l.items[i]);
		l.len++;
	}
	de_alert_list_clear(&l); /* valgrind: nothing leaks */
	assert_null(l.items);
	assert_int_equal(l.len, 0);
	de_alert_list_clear(&l);
	de_alert_list_clear(NULL);
}

static void make_alert(struct de_alert *a)
{
	memset(a, 0, sizeof(*a));
	de_uuid_v4(&a->id);
	a->alert_time = 1764060360000; /* 2025-11-25T08:46:00Z */
	a->rule_id = strdup("deleted-executable");
	a->title = strdup("Process running a deleted executable");
	a->description = strdup("d");
	a->severity = DE_SEV_HIGH;
	a->affected_processes = calloc(2, sizeof(uint32_t));
	a->affected_processes[0] = 41;
	a->affected_processes[1] = 42;
	a->affected_processes_len = 2;
	a->process_count = 2;
	a->alert_data =
		json_pack("[{s:s,s:s}]", "name", "ev\nil\x1b[0m", "executable_path", "/tmp/x y");
	a->dedupe_key = strdup("k");
}

static void test_text(void **state)
{
	(void)state;
	struct de_alert a;
	make_alert(&a);
	char *s = de_alert_render_text(&a, false);
	assert_non_null(s);
	assert_null(strchr(s, '\n'));
	assert_null(strchr(s, '\x1b'));
	assert_non_null(strstr(s, "2025-11-25T08:46:00Z HIGH"));
	assert_non_null(strstr(s, "[deleted-executable] pid 41,42 ev\\nil\\x1b[0m /tmp/x y"));
	free(s);
	s = de_alert_render_text(&a, true);
	assert_non_null(strstr(s, "\033[31mHIGH"));
	free(s);
	de_alert_clear(&a);
}

static void test_json(void **state)
{
	(void)state;
	struct de_alert a, b;
	make_alert(&a);
	char *s = de_alert_render_json(&a);
	assert_null(strchr(s, '\n'));
	json_t *j = json_loads(s, 0, NULL);
	assert_int_equal(de_alert_from_json(j, &b, NULL), 0);
	assert_true(de_alert_equal(&a, &b));
	json_decref(j);
	free(s);
	de_alert_clear(&a);
	de_alert_clear(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text),	   cmocka_unit_test(test_json),
		cmocka_unit_test(test_severity),   cmocka_unit_test(test_alert_every_field),
		cmocka_unit_test(test_list_clear),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
