/*
 * test_uuid.c — UUID v4 and v7: version and variant bits, randomness, v7's
 * time order, the canonical text form and its parser.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemoneye/uuid.h"

static void test_uuid(void **state)
{
	(void)state;
	struct de_uuid a, b, c;
	char s[DE_UUID_STR_LEN + 1];

	assert_int_equal(de_uuid_v4(&a), 0);
	assert_int_equal(de_uuid_v4(&b), 0);
	assert_memory_not_equal(a.bytes, b.bytes, 16);
	assert_int_equal(a.bytes[6] >> 4, 4);	   /* version 4 */
	assert_int_equal(a.bytes[8] & 0xc0, 0x80); /* RFC variant */
	de_uuid_format(&a, s);
	assert_int_equal(strlen(s), 36);
	assert_int_equal(s[14], '4');
	assert_int_equal(de_uuid_parse(s, &c), 0);
	assert_memory_equal(a.bytes, c.bytes, 16);
	assert_int_equal(de_uuid_parse("0B8F3A52-3C1E-4A8E-9F3C-2D1B7C9E4A10", &c), 0);
	assert_int_equal(de_uuid_parse("0b8f3a52-3c1e-4a8e-9f3c-2d1b7c9e4a1", &c), -EINVAL);
	assert_int_equal(de_uuid_parse("0b8f3a52x3c1e-4a8e-9f3c-2d1b7c9e4a10", &c), -EINVAL);
	assert_int_equal(de_uuid_parse("0b8f3a52-3c1e-4a8e-9f3c-2d1b7c9e4a1g", &c), -EINVAL);
	assert_int_equal(de_uuid_parse(NULL, &c), -EINVAL);
}

/* Version 7: the RFC 9562 test vector's timestamp layout, order by time, random bits. */
static void test_uuid_v7(void **state)
{
	(void)state;
	struct de_uuid a, b;
	char s[DE_UUID_STR_LEN + 1], t[DE_UUID_STR_LEN + 1];

	/* RFC 9562 appendix A.6: 0x017F22E279B0 ms is Tue Feb 22 19:22:22 2022 UTC */
	assert_int_equal(de_uuid_v7(&a, 0x017F22E279B0LL), 0);
	de_uuid_format(&a, s);
	assert_memory_equal(s, "017f22e2-79b0-7", 15);
	assert_int_equal(a.bytes[8] & 0xc0, 0x80); /* RFC variant */
	assert_int_equal(de_uuid_v7(&b, 0x017F22E279B0LL), 0);
	assert_memory_not_equal(a.bytes + 6, b.bytes + 6, 10); /* random after the time */
	/* a later millisecond sorts after, as text too */
	assert_int_equal(de_uuid_v7(&b, 0x017F22E279B1LL), 0);
	de_uuid_format(&b, t);
	assert_true(strcmp(s, t) < 0);
	assert_int_equal(de_uuid_v7(&b, -5), 0); /* clamped */
	de_uuid_format(&b, t);
	assert_memory_equal(t, "00000000-0000-7", 15);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uuid),
		cmocka_unit_test(test_uuid_v7),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
