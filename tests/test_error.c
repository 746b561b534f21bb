/* test_error.c — the error type: categories, messages, exit codes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sysexits.h>

#include <cmocka.h>

#include "daemoneye/error.h"

static void test_categories(void **state)
{
	(void)state;
	static const char *const names[] = {
		"None",		 "ConfigurationError", "DatabaseError",	  "DetectionError",
		"AlertingError", "CryptoError",	       "ValidationError", "IoError"};
	for (int i = 0; i < DE_ERR_CATEGORY_MAX; i++)
		assert_string_equal(de_error_category_name((enum de_error_category)i), names[i]);
	assert_string_equal(de_error_category_name(DE_ERR_CATEGORY_MAX), "UnknownError");
}

static void test_set_and_prefix(void **state)
{
	(void)state;
	struct de_error e = {0};
	assert_int_equal(de_error_set(&e, DE_ERR_IO, ENOENT, "cannot open %s", "x"), -ENOENT);
	assert_int_equal(e.category, DE_ERR_IO);
	assert_int_equal(e.code, ENOENT);
	assert_string_equal(e.message, "cannot open x");
	assert_int_equal(de_error_prefix(&e, "loading %d: ", 3), -ENOENT);
	assert_string_equal(e.message, "loading 3: cannot open x");
	/* code 0 never means success */
	assert_int_equal(de_error_set(&e, DE_ERR_VALIDATION, 0, "bad"), -EINVAL);
	/* NULL error is allowed */
	assert_int_equal(de_error_set(NULL, DE_ERR_IO, EIO, "x"), -EIO);
	de_error_clear(&e);
	assert_int_equal(e.category, DE_ERR_NONE);
	assert_string_equal(e.message, "");
	de_error_clear(NULL);
}

static void test_exit_codes(void **state)
{
	(void)state;
	struct de_error e = {0};
	assert_int_equal(de_error_exit_code(&e), 0);
	assert_int_equal(de_error_exit_code(NULL), 0);
	de_error_set(&e, DE_ERR_CONFIGURATION, EINVAL, "x");
	assert_int_equal(de_error_exit_code(&e), EX_CONFIG);
	de_error_set(&e, DE_ERR_VALIDATION, EINVAL, "x");
	assert_int_equal(de_error_exit_code(&e), EX_DATAERR);
	de_error_set(&e, DE_ERR_IO, ENOENT, "x");
	assert_int_equal(de_error_exit_code(&e), EX_NOINPUT);
	de_error_set(&e, DE_ERR_IO, EACCES, "x");
	assert_int_equal(de_error_exit_code(&e), EX_NOPERM);
	de_error_set(&e, DE_ERR_DATABASE, EIO, "x");
	assert_int_equal(de_error_exit_code(&e), EX_IOERR);
	de_error_set(&e, DE_ERR_ALERTING, EIO, "x");
	assert_int_equal(de_error_exit_code(&e), EX_UNAVAILABLE);
	de_error_set(&e, DE_ERR_DETECTION, EIO, "x");
	assert_int_equal(de_error_exit_code(&e), EX_DATAERR);
	de_error_set(&e, DE_ERR_CRYPTO, EIO, "x");
	assert_int_equal(de_error_exit_code(&e), EX_DATAERR);
}

static void test_message_truncation(void **state)
{
	(void)state;
	struct de_error e = {0};
	char big[4000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	de_error_set(&e, DE_ERR_IO, EIO, "%s", big);
	assert_int_equal(strlen(e.message), DE_ERROR_MSG_MAX - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_categories),
		cmocka_unit_test(test_set_and_prefix),
		cmocka_unit_test(test_exit_codes),
		cmocka_unit_test(test_message_truncation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
