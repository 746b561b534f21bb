/*
 * retry.h — when to try a delivery again: exponential backoff with full
 * jitter, and a circuit breaker per sink.  Pure logic on numbers the
 * caller gives (times, random values), so the alert manager's workers and
 * the tests share it exactly.
 *
 * Backoff: after n failed attempts (n >= 1) the next one waits a delay
 * drawn uniformly from [0, min(max_delay_ms, initial_delay_ms * 2^(n-1))]
 * ("full jitter"), so that many agents failing at once do not come back in
 * step.  After max_attempts failed attempts the delivery is dead.
 *
 * Circuit breaker: closed, it lets every attempt through and counts
 * consecutive failures; at failure_threshold it opens.  Open, it lets
 * nothing through until reset_timeout_ms have passed; then it is half-open
 * and lets one probe through: success closes it, failure opens it again for
 * another reset_timeout_ms.
 *
 * No allocation; not thread-safe (each sink's breaker belongs to its worker).
 */
#ifndef DAEMONEYE_RETRY_H
#define DAEMONEYE_RETRY_H

#include <stdbool.h>
#include <stdint.h>

struct de_retry_policy {
	uint32_t max_attempts;	   /* attempts in all, >= 1 */
	uint64_t initial_delay_ms; /* the first backoff's ceiling */
	uint64_t max_delay_ms;	   /* no backoff's ceiling exceeds this */
};

/* The ceiling of the backoff after `failed` failed attempts (>= 1). */
uint64_t de_retry_ceiling(const struct de_retry_policy *p, uint32_t failed);
/* The delay after `failed` failed attempts: rnd reduced into [0, ceiling]. */
uint64_t de_retry_delay(const struct de_retry_policy *p, uint32_t failed, uint64_t rnd);
/* True when `failed` failed attempts leave none to make. */
bool de_retry_exhausted(const struct de_retry_policy *p, uint32_t failed);

enum de_breaker_state {
	DE_BREAKER_CLOSED = 0,
	DE_BREAKER_OPEN,
	DE_BREAKER_HALF_OPEN,
	DE_BREAKER_MAX
};

struct de_breaker {
	uint32_t threshold; /* consecutive failures that open it (>= 1) */
	uint64_t reset_ms;  /* how long it stays open before a probe */
	enum de_breaker_state state;
	uint32_t failures; /* consecutive failures */
	int64_t opened_at; /* when it last opened (ms, any clock the caller keeps) */
	bool probe_out;	   /* half-open: the probe has been let through */
};

void de_breaker_init(struct de_breaker *b, uint32_t threshold, uint64_t reset_ms);
/*
 * May an attempt go at now_ms?  Open and reset_ms elapsed: becomes
 * half-open and lets exactly one probe through (until its outcome is
 * reported).
 */
bool de_breaker_allow(struct de_breaker *b, int64_t now_ms);
/* When an open breaker lets the next probe through. */
int64_t de_breaker_next_probe(const struct de_breaker *b);
/* Report an attempt's outcome. */
void de_breaker_success(struct de_breaker *b);
void de_breaker_failure(struct de_breaker *b, int64_t now_ms);
/* "closed", "open", "half-open". */
const char *de_breaker_state_name(enum de_breaker_state s);

#endif
