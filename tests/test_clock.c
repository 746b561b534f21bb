/*
 * test_clock.c — the times operators type (RFC 3339 with fractions and
 * offsets, dates, "now", relative times) and what is refused; the
 * monotonic clock never goes back.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "daemoneye/clock.h"

static void test_parse(void **state)
{
	(void)state;
	const int64_t now = 1764060360123; /* 2025-11-25T08:46:00.123Z */
	static const struct {
		const char *s;
		int64_t want;
	} ok[] = {
		{"now", now},
		{"2025-11-25T08:46:00Z", 1764060360000},
		{"2025-11-25t08:46:00z", 1764060360000},
		{"2025-11-25 08:46:00Z", 1764060360000},
		{"2025-11-25T08:46:00.5Z", 1764060360500},
		{"2025-11-25T08:46:00.123456Z", 1764060360123},
		{"2025-11-25T10:46:00+02:00", 1764060360000},
		{"2025-11-25T03:16:00-05:30", 1764060360000},
		{"2025-11-25", 1764028800000},
		{"-90s", now - 90000},
		{"15m", now - 900000},
		{"-1h", now - 3600000},
		{"-2d", now - 2 * 86400000LL},
		{"-1w", now - 7 * 86400000LL},
	};
	static const char *const bad[] = {
		"",
		"yesterday",
		"-1y",
		"-h",
		"1hh",
		"2025-11-25T08:46Z",
		"2025-13-01",
		"2025-02-31",
		"2025-11-25T24:00:00Z",
		"2025-11-25T08:46:00",
		"2025-11-25T08:46:00.Z",
		"2025-11-25T08:46:00+2:00",
		"2025-11-25T08:46:00Zjunk",
		"-99999999999999999999s",
		/* digits where digits go (sscanf's %2d took " 1" and "+1") */
		"2025- 1-05",
		"2025-+1-05",
		"-202-11-25",
		"2025-11-25T 8:46:00Z",
		"2025-11-25T08:46:00+ 2:00",
		"2025-11-2",
	};
	int64_t t;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		t = 0;
		assert_int_equal(de_time_parse(ok[i].s, now, &t), 0);
		assert_int_equal(t, ok[i].want);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t = 42;
		assert_int_equal(de_time_parse(bad[i], now, &t), -EINVAL);
		assert_int_equal(t, 42); /* untouched */
	}
}

static void test_clocks(void **state)
{
	(void)state;
	int64_t a = de_mono_ms(), w = de_now_ms();

	assert_true(a > 0);
	assert_true(w > 1764000000000); /* after this code was written */
	for (int i = 0; i < 1000; i++) {
		int64_t b = de_mono_ms();
		assert_true(b >= a);
		a = b;
	}
	/* microseconds: the same clock, finer */
	int64_t u = de_mono_us(), m = de_mono_ms();
	assert_true(u / 1000 <= m && m - u / 1000 <= 1000);
	for (int i = 0; i < 1000; i++) {
		int64_t v = de_mono_us();
		assert_true(v >= u);
		u = v;
	}
}

/* A monotonic condition variable waits until its monotonic deadline: on
   CLOCK_REALTIME the same deadline (hours after boot) is decades past and
   the wait would end at once. */
static void test_cond_mono(void **state)
{
	(void)state;
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv;
	struct timespec before, until, after;

	assert_int_equal(de_cond_init_mono(&cv), 0);
	clock_gettime(CLOCK_MONOTONIC, &before);
	de_cond_deadline(&until, 60);
	int64_t b = (int64_t)before.tv_sec * 1000000000 + before.tv_nsec;
	int64_t u = (int64_t)until.tv_sec * 1000000000 + until.tv_nsec;
	assert_true(u >= b + 60000000);
	assert_true(until.tv_nsec >= 0 && until.tv_nsec < 1000000000L);
	pthread_mutex_lock(&mu);
	int rc;
	while ((rc = pthread_cond_timedwait(&cv, &mu, &until)) == 0) {
	}
	pthread_mutex_unlock(&mu);
	assert_int_equal(rc, ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &after);
	assert_true((int64_t)after.tv_sec * 1000000000 + after.tv_nsec >= u);
	/* a negative wait is now, and normalised */
	de_cond_deadline(&until, -5);
	assert_true(until.tv_nsec >= 0 && until.tv_nsec < 1000000000L);
	pthread_cond_destroy(&cv);
}

static void test_duration_format(void **state)
{
	(void)state;
	char b[32];
	static const struct {
		int64_t ms;
		const char *want;
	} cases[] = {
		{-5, "0 s"},	   {0, "0 s"},		{999, "0 s"},
		{119999, "119 s"}, {120000, "2 min"},	{7199999, "119 min"},
		{7200000, "2 h"},  {172799999, "47 h"}, {172800000, "2 d"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		de_duration_format(b, sizeof(b), cases[i].ms);
		assert_string_equal(b, cases[i].want);
	}
	de_duration_format(b, 3, 7200000); /* cut, NUL-terminated */
	assert_string_equal(b, "2 ");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_clocks),
		cmocka_unit_test(test_cond_mono),
		cmocka_unit_test(test_duration_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
