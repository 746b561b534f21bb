/*
 * test_mask_alloc.c — command-line masking under allocation failure
 * (tests/failalloc.h).  Each masked value is a new allocation; when one
 * fails de_mask_argv returns -ENOMEM and argv must still be a valid vector
 * (each entry the original or its masked form, as the header allows), and
 * nothing leaks.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemoneye/mask.h"
#include "failalloc.h"

/* Every form: --flag VALUE, --flag=VALUE, key=VALUE, and mysql's -pVALUE. */
static const char *const orig[] = {"mysql",	  "-pS3cret",	 "--password", "hunter2",
				   "--token=abc", "API_KEY=xyz", "plain",      "--user=me",
				   "--secret",	  "s2"};
static const char *const masked[] = {
	"mysql", "-p********", "--password", "********", "--token=********", "API_KEY=********",
	"plain", "--user=me",  "--secret",   "********"};
#define ARGC (sizeof(orig) / sizeof(orig[0]))

struct mask_ctx {
	char *argv[ARGC];
};

static void mask_setup(void *p)
{
	struct mask_ctx *x = p;

	for (size_t i = 0; i < ARGC; i++)
		assert_non_null(x->argv[i] = strdup(orig[i]));
}

static int mask_run(void *p, struct de_error *err)
{
	struct mask_ctx *x = p;
	int n;

	(void)err;
	n = de_mask_argv(x->argv, ARGC, NULL, 0);
	return n < 0 ? n : 0;
}

static void mask_check(void *p, int rc, const struct de_error *err)
{
	struct mask_ctx *x = p;

	(void)err;
	for (size_t i = 0; i < ARGC; i++) {
		assert_non_null(x->argv[i]);
		if (rc == 0)
			assert_string_equal(x->argv[i], masked[i]);
		else if (strcmp(x->argv[i], orig[i]) != 0)
			assert_string_equal(x->argv[i], masked[i]);
		free(x->argv[i]);
	}
}

static void test_mask(void **state)
{
	(void)state;
	struct mask_ctx x;
	struct fa_case c = {
		"de_mask_argv: 5 values", &x, mask_setup, mask_run, mask_check, false, 0};
	struct fa_stats st = fa_run(&c);

	assert_int_equal(st.allocs, 5);
	assert_int_equal(st.errors, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mask),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
