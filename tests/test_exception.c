/*
 * test_exception.c — exceptions: each field and their AND, globs crossing
 * '/', user by name and uid, command-line substring, a subject lacking a
 * field, and parse errors naming FILE:LINE:COL (unknown field, empty
 * exception, unknown user, `rule` where it is not allowed).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemoneye/exception.h"
#include "daemoneye/yaml.h"

static int parse(const char *yaml, bool allow_rule, struct de_exception_set *set,
		 struct de_error *e)
{
	json_t *origins = json_object(), *tree = NULL;
	int rc = de_yaml_parse(yaml, strlen(yaml), "ex.yaml", origins, DE_ERR_CONFIGURATION, &tree,
			       e);
	assert_int_equal(rc, 0);
	rc = de_exceptions_parse(json_object_get(tree, "suppress"), "suppress", origins, "ex.yaml",
				 "suppress", allow_rule, DE_ERR_CONFIGURATION, set, e);
	json_decref(tree);
	json_decref(origins);
	return rc;
}

static void test_match(void **state)
{
	(void)state;
	struct de_exception_set set = {0};
	struct de_error e = {0};
	const struct de_exception *x;

	assert_int_equal(
		parse("suppress:\n"
		      "  - { rule: memfd-*, executable_path: \"/memfd:*\", reason: runc }\n"
		      "  - { process_name: backup.sh, user: root, parent_name: cron }\n"
		      "  - { command_line_contains: \"--i-know\", user: \"1000\" }\n",
		      true, &set, &e),
		0);
	assert_int_equal(set.len, 3);
	assert_string_equal(set.items[0].label, "suppress[0]");
	assert_string_equal(set.items[0].origin, "ex.yaml:2:5");
	assert_string_equal(set.items[0].reason, "runc");
	struct de_subject p = {.pid = 1,
			       .name = "runc",
			       .executable_path = "/memfd:runc (deleted)",
			       .user_id = "0"};
	x = de_exceptions_match(&set, "memfd-executable", &p);
	assert_ptr_equal(x, &set.items[0]);
	assert_null(de_exceptions_match(&set, "exec-from-tmp", &p)); /* rule must match too */
	/* user by name (root is uid 0), parent and name all needed */
	struct de_subject q = {.name = "backup.sh", .user_id = "0", .parent_name = "cron"};
	assert_ptr_equal(de_exceptions_match(&set, "any", &q), &set.items[1]);
	q.parent_name = NULL; /* the subject lacks a field the exception names */
	assert_null(de_exceptions_match(&set, "any", &q));
	q.parent_name = "cron";
	q.user_id = "1";
	assert_null(de_exceptions_match(&set, "any", &q));
	/* '*' crosses '/' */
	struct de_subject r = {.name = "x", .executable_path = "/memfd:a/b/c"};
	assert_ptr_equal(de_exceptions_match(&set, "memfd-executable", &r), &set.items[0]);
	struct de_subject s = {.command_line = "tool --i-know --yes", .user_id = "1000"};
	assert_ptr_equal(de_exceptions_match(&set, "any", &s), &set.items[2]);
	s.command_line = "tool --i-kno";
	assert_null(de_exceptions_match(&set, "any", &s));
	de_exception_set_clear(&set);
}

static void test_errors(void **state)
{
	(void)state;
	struct de_exception_set set = {0};
	struct de_error e = {0};

	assert_int_equal(parse("suppress:\n  - { process_name: a, colour: red }\n", true, &set, &e),
			 -EINVAL);
	assert_int_equal(e.category, DE_ERR_CONFIGURATION);
	assert_non_null(strstr(e.message, "ex.yaml:2:"));
	assert_non_null(strstr(e.message, "exception suppress[0]: unknown field 'colour'"));
	de_exception_set_clear(&set);

	assert_int_equal(parse("suppress:\n  - { reason: everything }\n", true, &set, &e), -EINVAL);
	assert_non_null(strstr(e.message, "names nothing to match"));
	de_exception_set_clear(&set);

	assert_int_equal(parse("suppress:\n  - { user: no-such-user-here-xyz }\n", true, &set, &e),
			 -EINVAL);
	assert_non_null(strstr(e.message, "ex.yaml:2:"));
	assert_non_null(strstr(e.message, "no-such-user-here-xyz"));
	de_exception_set_clear(&set);

	assert_int_equal(parse("suppress:\n  - { rule: x, process_name: y }\n", false, &set, &e),
			 -EINVAL);
	assert_non_null(strstr(e.message, "unknown field 'rule'"));
	de_exception_set_clear(&set);

	assert_int_equal(parse("suppress:\n  - just-a-string\n", true, &set, &e), -EINVAL);
	assert_non_null(strstr(e.message, "must be a mapping"));
	de_exception_set_clear(&set);

	assert_int_equal(parse("suppress: {process_name: x}\n", true, &set, &e), -EINVAL);
	assert_non_null(strstr(e.message, "must be a list"));
	de_exception_set_clear(&set);
	assert_int_equal(parse("other: 1\n", true, &set, &e), 0); /* none */
	assert_int_equal(set.len, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
