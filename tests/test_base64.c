/*
 * test_base64.c — base64 against the RFC 4648 section 10 vectors and
 * random bytes both ways, and the strictness checkpoints rely on: only the
 * canonical text of some bytes decodes (no whitespace, no missing or extra
 * padding, no stray bits after the last byte), and a decode that would
 * overflow its buffer says so.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemoneye/base64.h"

static void test_vectors(void **state)
{
	(void)state;
	static const char *const vec[][2] = {
		{"", ""},
		{"f", "Zg=="},
		{"fo", "Zm8="},
		{"foo", "Zm9v"},
		{"foob", "Zm9vYg=="},
		{"fooba", "Zm9vYmE="},
		{"foobar", "Zm9vYmFy"},
	};
	char out[64];
	uint8_t dec[64];
	size_t n;

	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		size_t len = strlen(vec[i][0]);
		assert_int_equal(de_base64_encode((const uint8_t *)vec[i][0], len, out),
				 strlen(vec[i][1]));
		assert_int_equal(DE_BASE64_LEN(len), strlen(vec[i][1]));
		assert_string_equal(out, vec[i][1]);
		assert_int_equal(
			de_base64_decode(vec[i][1], strlen(vec[i][1]), dec, sizeof(dec), &n), 0);
		assert_int_equal(n, len);
		assert_memory_equal(dec, vec[i][0], len);
	}
}

static void test_roundtrip(void **state)
{
	(void)state;
	uint8_t in[300], dec[300];
	char text[DE_BASE64_LEN(300) + 1];
	size_t n;
	uint32_t x = 2463534242u;

	for (size_t len = 0; len <= sizeof(in); len++) {
		for (size_t i = 0; i < len; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			in[i] = (uint8_t)x;
		}
		size_t tl = de_base64_encode(in, len, text);
		assert_int_equal(tl, DE_BASE64_LEN(len));
		assert_int_equal(de_base64_decode(text, tl, dec, sizeof(dec), &n), 0);
		assert_int_equal(n, len);
		assert_memory_equal(dec, in, len);
	}
}

static void test_strict(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"Zm9",	    /* not a multiple of 4 */
		"Zm9*",	    /* not the alphabet */
		"Zm 9v",    /* whitespace */
		"Zg=",	    /* padding cut */
		"Zh==",	    /* stray bits after the last byte */
		"Zm9=",	    /* ditto, one pad */
		"Zg==Zg==", /* padding in the middle */
		"=Zg=",	    /* padding first */
		"Z===",	    /* three pads */
	};
	uint8_t dec[16];
	size_t n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (de_base64_decode(bad[i], strlen(bad[i]), dec, sizeof(dec), &n) != -EINVAL)
			fail_msg("'%s' decoded", bad[i]);
	/* it fits exactly, or it says it does not */
	assert_int_equal(de_base64_decode("Zm9vYmFy", 8, dec, 6, &n), 0);
	assert_int_equal(de_base64_decode("Zm9vYmFy", 8, dec, 5, &n), -E2BIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_strict),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
