/*
 * test_rule.c — the DetectionRule model: every seed field, JSON that
 * round-trips, malformed rules, and the rule source type names.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemoneye/rule.h"

static char *xstrdup(const char *s)
{
	char *d = strdup(s);
	assert_non_null(d);
	return d;
}

static void test_rule_source(void **state)
{
	(void)state;
	enum de_rule_source s;
	struct de_error e = {0};
	assert_string_equal(de_rule_source_name(DE_RULE_BUILTIN), "builtin");
	assert_string_equal(de_rule_source_name(DE_RULE_FILE), "file");
	assert_string_equal(de_rule_source_name(DE_RULE_USER), "user");
	assert_int_equal(de_rule_source_parse("File", &s, &e), 0);
	assert_int_equal(s, DE_RULE_FILE);
	assert_int_equal(de_rule_source_parse("Builtin", &s, &e), 0);
	assert_int_equal(s, DE_RULE_BUILTIN);
	assert_int_equal(de_rule_source_parse("remote", &s, &e), -EINVAL);
	assert_non_null(strstr(e.message, "remote"));
}

static void test_rule_every_field(void **state)
{
	(void)state;
	struct de_rule r = {0}, back;
	struct de_error e = {0};
	r.id = xstrdup("reverse-shell");
	r.name = xstrdup("Reverse shell");
	r.description = xstrdup("bash -i >& /dev/tcp");
	r.version = 3;
	r.sql_query = xstrdup("SELECT pid FROM processes WHERE command_line LIKE '%/dev/tcp/%'");
	r.enabled = true;
	r.severity = DE_SEV_HIGH;
	r.category = xstrdup("execution");
	r.tags = calloc(2, sizeof(char *));
	r.tags[0] = xstrdup("attack.t1059.004");
	r.tags[1] = xstrdup("linux");
	r.tags_len = 2;
	r.author = xstrdup("daemoneye");
	r.created_at = 1;
	r.updated_at = 2;
	r.source_type = DE_RULE_FILE;
	r.source_path = xstrdup("/etc/daemoneye/rules.d/shell.yaml");

	json_t *j = de_rule_to_json(&r);
	assert_int_equal(json_object_size(j), 14);
	assert_string_equal(json_string_value(json_object_get(j, "severity")), "high");
	assert_string_equal(json_string_value(json_object_get(j, "source_type")), "file");
	assert_int_equal(json_integer_value(json_object_get(j, "version")), 3);
	assert_true(json_is_true(json_object_get(j, "enabled")));
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "tags"), 0)),
			    "attack.t1059.004");
	assert_string_equal(json_string_value(json_object_get(j, "source_path")),
			    "/etc/daemoneye/rules.d/shell.yaml");
	assert_string_equal(json_string_value(json_object_get(j, "author")), "daemoneye");
	assert_string_equal(json_string_value(json_object_get(j, "category")), "execution");
	assert_int_equal(json_integer_value(json_object_get(j, "created_at")), 1);
	assert_int_equal(json_integer_value(json_object_get(j, "updated_at")), 2);
	assert_int_equal(de_rule_from_json(j, &back, &e), 0);
	assert_true(de_rule_equal(&r, &back));
	de_rule_clear(&back);

	/* optional strings absent */
	free(r.description);
	free(r.category);
	free(r.author);
	free(r.source_path);
	r.description = r.category = r.author = r.source_path = NULL;
	r.source_type = DE_RULE_BUILTIN;
	json_decref(j);
	j = de_rule_to_json(&r);
	assert_true(json_is_null(json_object_get(j, "description")));
	assert_true(json_is_null(json_object_get(j, "source_path")));
	assert_int_equal(de_rule_from_json(j, &back, &e), 0);
	assert_true(de_rule_equal(&r, &back));
	assert_null(back.author);
	de_rule_clear(&back);

	json_object_set_new(j, "source_type", json_string("remote"));
	assert_true(de_rule_from_json(j, &back, &e) < 0);
	assert_non_null(strstr(e.message, "source_type"));
	json_object_set_new(j, "source_type", json_string("User"));
	json_object_set_new(j, "version", json_string("1"));
	assert_true(de_rule_from_json(j, &back, &e) < 0);
	assert_non_null(strstr(e.message, "'version' must be an integer"));
	json_decref(j);
	de_rule_clear(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rule_source),
		cmocka_unit_test(test_rule_every_field),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
