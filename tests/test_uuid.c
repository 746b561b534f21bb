/*
 * test_uuid.c — UUID v4: version and variant bits, randomness, the
 * canonical text form and its parser.
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uuid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
