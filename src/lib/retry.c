/*
 * retry.c — backoff with full jitter and the circuit breaker (see retry.h).
 */
#include "daemoneye/retry.h"

uint64_t de_retry_ceiling(const struct de_retry_policy *p, uint32_t failed)
{
	uint64_t c = p->initial_delay_ms;

	for (uint32_t i = 1; i < failed && c < p->max_delay_ms; i++)
		c = c > UINT64_MAX / 2 ? UINT64_MAX : c * 2;
	return c < p->max_delay_ms ? c : p->max_delay_ms;
}

uint64_t de_retry_delay(const struct de_retry_policy *p, uint32_t failed, uint64_t rnd)
{
	uint64_t c = de_retry_ceiling(p, failed);

	return c == UINT64_MAX ? rnd : rnd % (c + 1);
}

bool de_retry_exhausted(const struct de_retry_policy *p, uint32_t failed)
{
	return failed >= (p->max_attempts ? p->max_attempts : 1);
}

void de_breaker_init(struct de_breaker *b, uint32_t threshold, uint64_t reset_ms)
{
	*b = (struct de_breaker){.threshold = threshold ? threshold : 1, .reset_ms = reset_ms};
}

bool de_breaker_allow(struct de_breaker *b, int64_t now_ms)
{
	switch (b->state) {
	case DE_BREAKER_CLOSED:
		return true;
	case DE_BREAKER_OPEN:
		if (now_ms - b->opened_at < (int64_t)b->reset_ms)
			return false;
		b->state = DE_BREAKER_HALF_OPEN;
		b->probe_out = false;
		/* fall through */
	case DE_BREAKER_HALF_OPEN:
		if (b->probe_out)
			return false;
		b->probe_out = true;
		return true;
	default:
		return false;
	}
}

int64_t de_breaker_next_probe(const struct de_breaker *b)
{
	return b->opened_at + (int64_t)b->reset_ms;
}

void de_breaker_success(struct de_breaker *b)
{
	b->state = DE_BREAKER_CLOSED;
	b->failures = 0;
	b->probe_out = false;
}

void de_breaker_failure(struct de_breaker *b, int64_t now_ms)
{
	if (b->failures < UINT32_MAX)
		b->failures++;
	if (b->state == DE_BREAKER_HALF_OPEN || b->failures >= b->threshold) {
		b->state = DE_BREAKER_OPEN;
		b->opened_at = now_ms;
		b->probe_out = false;
	}
}

const char *de_breaker_state_name(enum de_breaker_state s)
{
	static const char *const n[DE_BREAKER_MAX] = {"closed", "open", "half-open"};
	return (int)s >= 0 && s < DE_BREAKER_MAX ? n[s] : "?";
}
