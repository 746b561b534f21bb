/*
 * testrand.h — a fixed-seed xorshift generator for the cmocka programs
 * that test with many random values (the same values every run, so a
 * failure can be reproduced): integers with their edges, and text with the
 * bytes that break escaping (controls, quotes, backslashes, DEL, valid and
 * invalid UTF-8).  Header-only; include after <cmocka.h>.
 */
#ifndef DAEMONEYE_TESTRAND_H
#define DAEMONEYE_TESTRAND_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rnd_state = 0x2545F4914F6CDD1Dull;

__attribute__((unused)) static uint32_t rnd(uint32_t n)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return (uint32_t)(rnd_state % n);
}

__attribute__((unused)) static int64_t rnd_i64(void)
{
	static const int64_t edges[] = {0, 1, -1, 42, INT64_MAX, INT64_MIN, 4294967295LL, -20};
	if (rnd(3) == 0)
		return edges[rnd(8)];
	return (int64_t)((uint64_t)rnd(0xffffffffu) << 32 | rnd(0xffffffffu)) >> rnd(64);
}

/* Random bytes without NUL: controls, quotes, backslashes, DEL, valid and
   invalid UTF-8. */
__attribute__((unused)) static char *rnd_text(void)
{
	static const char *const pieces[] = {"/user.slice",
					     "\"",
					     "\\",
					     "\b",
					     "\f",
					     "\n",
					     "\r",
					     "\t",
					     "\x01",
					     "\x1f",
					     "\x7f",
					     "\xc3\xa9",
					     "\xe2\x82\xac",
					     "\xf0\x9f\x98\x80",
					     "\xff",
					     "\xc0\xaf",
					     "\xed\xa0\x80",
					     "\xe2\x82",
					     "a",
					     " ",
					     "/",
					     "%",
					     "{}",
					     "\x1b[0m"};
	size_t n = rnd(8), len = 0;
	char *s = calloc(1, 128);

	assert_non_null(s);
	for (size_t i = 0; i < n; i++) {
		const char *p = pieces[rnd(sizeof(pieces) / sizeof(pieces[0]))];
		memcpy(s + len, p, strlen(p));
		len += strlen(p);
	}
	return s;
}

#endif
