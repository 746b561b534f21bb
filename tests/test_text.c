/*
 * test_text.c — UTF-8 validity and lossy repair, terminal escaping, JSON
 * string literals (plain and ASCII-only) against jansson and CSV fields (RFC 4180).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "testrand.h"

#include "daemoneye/text.h"

static void test_utf8_and_escape(void **state)
{
	(void)state;
	assert_true(de_utf8_valid("caf\xc3\xa9", 5));
	assert_true(de_utf8_valid("\xf0\x9f\x98\x80", 4));
	assert_false(de_utf8_valid("\xc0\xaf", 2));	    /* overlong */
	assert_false(de_utf8_valid("\xed\xa0\x80", 3));	    /* surrogate */
	assert_false(de_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(de_utf8_valid("\xe2\x82", 2));	    /* truncated */
	/* ASCII only: every position of a non-ASCII byte, past the 8-byte runs */
	char buf[24];
	memset(buf, 'a', sizeof(buf));
	assert_true(de_ascii_only(buf, sizeof(buf)));
	assert_true(de_ascii_only(buf, 0));
	for (size_t i = 0; i < sizeof(buf); i++) {
		buf[i] = (char)0x80;
		assert_false(de_ascii_only(buf, sizeof(buf)));
		assert_true(de_ascii_only(buf, i));
		buf[i] = 0x7f;
	}
	char *s = de_escape_text("a\nb\x1b[0m\\\xff\xc3\xa9", 11);
	assert_string_equal(s, "a\\nb\\x1b[0m\\\\\\xff\xc3\xa9");
	free(s);
}

static void test_hex_digit(void **state)
{
	(void)state;
	assert_int_equal(de_hex_digit('0'), 0);
	assert_int_equal(de_hex_digit('9'), 9);
	assert_int_equal(de_hex_digit('a'), 10);
	assert_int_equal(de_hex_digit('F'), 15);
	assert_int_equal(de_hex_digit('g'), -1);
	assert_int_equal(de_hex_digit('/'), -1);
	assert_int_equal(de_hex_digit(0xff), -1);
}

/*
 * enc writes what jansson's json_dumps writes with flags: every byte below
 * 0x80 alone, and random UTF-8 text.
 */
static void agrees_with_jansson(size_t (*enc)(char *, const char *, size_t), int flags)
{
	char s[2], out[DE_JSON_STR_MAX(128)];

	for (int c = 0; c < 0x80; c++) {
		s[0] = (char)c;
		json_t *j = json_stringn(s, 1);
		char *want = json_dumps(j, flags);
		size_t n = enc(out, s, 1);
		assert_int_equal(n, strlen(want));
		assert_int_equal(enc(NULL, s, 1), n);
		assert_memory_equal(out, want, n);
		free(want);
		json_decref(j);
	}
	for (int i = 0; i < 2000; i++) {
		char *t = rnd_text();
		size_t l = strlen(t);
		if (de_utf8_valid(t, l)) {
			json_t *j = json_stringn(t, l);
			char *want = json_dumps(j, flags);
			size_t n = enc(out, t, l);
			assert_true(n <= DE_JSON_STR_MAX(l));
			assert_int_equal(n, strlen(want));
			assert_memory_equal(out, want, n);
			free(want);
			json_decref(j);
		}
		free(t);
	}
}

/* de_json_str escapes exactly as jansson: every byte alone and mixed. */
static void test_json_str(void **state)
{
	(void)state;
	agrees_with_jansson(de_json_str, JSON_ENCODE_ANY | JSON_COMPACT);
}

/* de_json_str_ascii escapes exactly as jansson's JSON_ENSURE_ASCII. */
static void test_json_str_ascii(void **state)
{
	(void)state;
	char out[DE_JSON_STR_MAX(128)];

	agrees_with_jansson(de_json_str_ascii, JSON_ENCODE_ANY | JSON_COMPACT | JSON_ENSURE_ASCII);
	/* two, three and four bytes: the BMP and a surrogate pair */
	{
		const char *t =
			"caf\xc3\xa9 \xe2\x82\xac \xef\xbf\xbf \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf";
		size_t n = de_json_str_ascii(out, t, strlen(t));
		out[n] = '\0';
		assert_string_equal(out,
				    "\"caf\\u00E9 \\u20AC \\uFFFF \\uD83D\\uDE00 \\uDBFF\\uDFFF\"");
	}
	/* a byte that is not UTF-8 (jansson refuses those) is U+FFFD, one each */
	assert_int_equal(de_json_str_ascii(out, "a\xff\xc0", 3), 15);
	assert_memory_equal(out, "\"a\\uFFFD\\uFFFD\"", 15);
}

static void test_lossy(void **state)
{
	(void)state;
	size_t n;
	char *s = de_utf8_lossy_dup("a\xff"
				    "b\xc3\xa9\xe2\x82",
				    7, &n);

	/* each bad byte is one U+FFFD; a valid sequence is kept */
	assert_string_equal(s, "a\xef\xbf\xbd"
			       "b\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd");
	assert_int_equal(n, strlen(s));
	assert_true(de_utf8_valid(s, n));
	free(s);
	assert_int_equal(de_utf8_seq_len("\xc3\xa9", 2), 2);
	assert_int_equal(de_utf8_seq_len("\xc3", 1), 0);
	assert_int_equal(de_utf8_seq_len("", 0), 0);
}

static void test_csv(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	de_csv_field(f, "plain");
	fputc('|', f);
	de_csv_field(f, "a,b");
	fputc('|', f);
	de_csv_field(f, "say \"hi\"");
	fputc('|', f);
	de_csv_field(f, "two\nlines\r");
	fputc('|', f);
	de_csv_field(f, NULL);
	fputc('|', f);
	de_csv_field(f, "\xff"
			"raw");
	fclose(f);
	assert_string_equal(buf, "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"two\nlines\r\"||\xff"
				 "raw");
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8_and_escape), cmocka_unit_test(test_hex_digit),
		cmocka_unit_test(test_json_str),	cmocka_unit_test(test_json_str_ascii),
		cmocka_unit_test(test_lossy),		cmocka_unit_test(test_csv),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
