/* test_alert.c — alert rendering: text escaping, JSON round trip, colour. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemoneye/alert.h"

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

static void test_color_policy(void **state)
{
	(void)state;
	FILE *f = tmpfile();
	setenv("TERM", "xterm", 1);
	unsetenv("NO_COLOR");
	assert_false(de_use_color(f)); /* not a terminal */
	setenv("NO_COLOR", "1", 1);
	assert_false(de_use_color(stdout));
	unsetenv("NO_COLOR");
	setenv("TERM", "dumb", 1);
	assert_false(de_use_color(stdout));
	fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_color_policy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
