/*
 * clock.h — time: wall-clock milliseconds for what is recorded, monotonic
 * milliseconds for what is scheduled or timed (a clock stepped back must not
 * delay a scan), and the time syntax operators type (--since, --until).
 */
#ifndef DAEMONEYE_CLOCK_H
#define DAEMONEYE_CLOCK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Milliseconds since the Unix epoch (CLOCK_REALTIME): for records. */
int64_t de_now_ms(void);
/* Milliseconds of CLOCK_MONOTONIC: for intervals and deadlines. */
int64_t de_mono_ms(void);
/* Microseconds of CLOCK_MONOTONIC: for measuring short things. */
int64_t de_mono_us(void);

/*
 * Condition variables that wait on CLOCK_MONOTONIC (a default one waits on
 * CLOCK_REALTIME: a clock stepped back an hour would stretch a 200 ms wait
 * by that hour).  de_cond_init_mono initialises cv so (0 or an errno);
 * de_cond_deadline sets *ts to ms milliseconds from now on that clock, for
 * pthread_cond_timedwait on such a cv.
 */
int de_cond_init_mono(pthread_cond_t *cv);
void de_cond_deadline(struct timespec *ts, int64_t ms);

/*
 * The boot time in ms since the epoch, as /proc/stat's btime gives it (the
 * base of every process's start time): procfd is an open /proc directory
 * (or -1 for /proc).  0 when it cannot be read.
 */
int64_t de_boot_time_ms(int procfd);

/*
 * Parse a time an operator typed into ms since the epoch: RFC 3339
 * ("2026-11-25T09:30:00Z", "2026-11-25T09:30:00.250+02:00"), a date
 * ("2026-11-25", midnight UTC), "now", or a time before now_ms as
 * "-<n><unit>" or "<n><unit>" with unit s, m, h, d or w ("-90m", "2d").
 * 0 with *out set, or -EINVAL with *out untouched.
 */
int de_time_parse(const char *s, int64_t now_ms, int64_t *out);

/*
 * A duration for people, rounded down to one unit: "45 s", "12 min",
 * "3 h", "2 d" (seconds below 2 min, minutes below 2 h, hours below 2 d).
 * Negative durations are "0 s".  Writes at most n bytes with the NUL.
 */
void de_duration_format(char *buf, size_t n, int64_t ms);

#endif
