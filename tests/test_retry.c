/*
 * test_retry.c — backoff ceilings (doubling, capped), full jitter covering
 * [0, ceiling], exhaustion, and the circuit breaker's states: closed to open
 * at the threshold, no attempts while open, one half-open probe, closed on
 * its success, open again on its failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemoneye/retry.h"

static void test_backoff(void **state)
{
	(void)state;
	struct de_retry_policy p = {
		.max_attempts = 5, .initial_delay_ms = 1000, .max_delay_ms = 60000};

	assert_int_equal(de_retry_ceiling(&p, 1), 1000);
	assert_int_equal(de_retry_ceiling(&p, 2), 2000);
	assert_int_equal(de_retry_ceiling(&p, 3), 4000);
	assert_int_equal(de_retry_ceiling(&p, 7), 60000); /* 64000 capped */
	assert_int_equal(de_retry_ceiling(&p, 200), 60000);
	/* full jitter: rnd reduced into [0, ceiling], both ends reachable */
	assert_int_equal(de_retry_delay(&p, 1, 0), 0);
	assert_int_equal(de_retry_delay(&p, 1, 1000), 1000);
	assert_int_equal(de_retry_delay(&p, 1, 1001), 0);
	assert_int_equal(de_retry_delay(&p, 3, 123456789), 123456789 % 4001);
	for (uint64_t r = 0; r < 100000; r += 7919)
		assert_true(de_retry_delay(&p, 7, r * 2654435761u) <= 60000);
	assert_false(de_retry_exhausted(&p, 4));
	assert_true(de_retry_exhausted(&p, 5));
	p.max_attempts = 1;
	assert_true(de_retry_exhausted(&p, 1));
}

static void test_breaker(void **state)
{
	(void)state;
	struct de_breaker b;

	de_breaker_init(&b, 3, 1000);
	assert_true(de_breaker_allow(&b, 0));
	de_breaker_failure(&b, 10);
	de_breaker_failure(&b, 20);
	assert_int_equal(b.state, DE_BREAKER_CLOSED);
	de_breaker_success(&b); /* a success resets the count */
	de_breaker_failure(&b, 30);
	de_breaker_failure(&b, 40);
	assert_int_equal(b.state, DE_BREAKER_CLOSED);
	de_breaker_failure(&b, 50);
	assert_int_equal(b.state, DE_BREAKER_OPEN);
	assert_string_equal(de_breaker_state_name(b.state), "open");
	assert_false(de_breaker_allow(&b, 51));
	assert_false(de_breaker_allow(&b, 1049));
	assert_int_equal(de_breaker_next_probe(&b), 1050);
	/* half-open: one probe, nothing else until its outcome */
	assert_true(de_breaker_allow(&b, 1050));
	assert_int_equal(b.state, DE_BREAKER_HALF_OPEN);
	assert_false(de_breaker_allow(&b, 1051));
	de_breaker_failure(&b, 1100); /* the probe failed: open again */
	assert_int_equal(b.state, DE_BREAKER_OPEN);
	assert_false(de_breaker_allow(&b, 2099));
	assert_true(de_breaker_allow(&b, 2100));
	de_breaker_success(&b);
	assert_int_equal(b.state, DE_BREAKER_CLOSED);
	assert_true(de_breaker_allow(&b, 2101));
	assert_true(de_breaker_allow(&b, 2102));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_breaker),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
