/*
 * test_buf.c — the capped growable buffer: appends and growth, the cap
 * (exactly at it fits, one past it is -E2BIG and changes nothing), printf
 * across growth, reset, steal, and free of an empty buffer.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemoneye/buf.h"

static void test_append_and_cap(void **state)
{
	(void)state;
	struct de_buf b = DE_BUF_INIT(10);

	assert_int_equal(de_buf_puts(&b, "hello"), 0);
	assert_int_equal(de_buf_putc(&b, ' '), 0);
	assert_string_equal(b.p, "hello ");
	assert_int_equal(de_buf_append(&b, "worlds", 5), -E2BIG); /* 11 > 10 */
	assert_string_equal(b.p, "hello ");			  /* unchanged */
	assert_int_equal(b.len, 6);
	assert_int_equal(de_buf_append(&b, "worl", 4), 0); /* exactly 10 */
	assert_string_equal(b.p, "hello worl");
	assert_int_equal(de_buf_putc(&b, 'd'), -E2BIG);
	de_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.p, "");
	assert_int_equal(de_buf_append(&b, "", 0), 0);
	de_buf_free(&b);
	assert_null(b.p);
	de_buf_free(&b);
	de_buf_free(NULL);
}

static void test_growth(void **state)
{
	(void)state;
	struct de_buf b = DE_BUF_INIT(1 << 20);
	char *s;

	for (int i = 0; i < 10000; i++)
		assert_int_equal(de_buf_printf(&b, "%d,", i % 10), 0);
	assert_int_equal(b.len, 20000);
	for (size_t i = 0; i < b.len; i += 2)
		assert_int_equal(b.p[i], '0' + (int)(i / 2 % 10));
	/* a printf that needs to grow, and one past the cap */
	assert_int_equal(de_buf_printf(&b, "%0500d", 7), 0);
	assert_int_equal(b.len, 20500);
	struct de_buf small = DE_BUF_INIT(8);
	assert_int_equal(de_buf_printf(&small, "%s", "1234567"), 0);
	assert_int_equal(de_buf_printf(&small, "%s", "89"), -E2BIG);
	assert_string_equal(small.p, "1234567");
	s = de_buf_steal(&small);
	assert_string_equal(s, "1234567");
	assert_null(small.p);
	free(s);
	s = de_buf_steal(&small); /* empty: an empty string */
	assert_string_equal(s, "");
	free(s);
	de_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_and_cap),
		cmocka_unit_test(test_growth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
