/*
 * clock.c — wall-clock and monotonic milliseconds, and parsing the times
 * operators type (see clock.h).
 */
#include "daemoneye/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemoneye/buf.h"

int64_t de_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t de_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t de_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int de_cond_init_mono(pthread_cond_t *cv)
{
	pthread_condattr_t ca;
	int rc;

	if ((rc = pthread_condattr_init(&ca)) != 0)
		return rc;
	if ((rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)) == 0)
		rc = pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
	return rc;
}

void de_cond_deadline(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	if (ms < 0)
		ms = 0;
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int64_t de_boot_time_ms(int procfd)
{
	struct de_buf b = DE_BUF_INIT(1u << 20); /* /proc/stat grows with the CPUs */
	char chunk[4096];
	int64_t ms = 0;
	ssize_t n;
	int fd = procfd >= 0 ? openat(procfd, "stat", O_RDONLY | O_CLOEXEC)
			     : open("/proc/stat", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0 && de_buf_append(&b, chunk, (size_t)n) == 0)
		;
	close(fd);
	const char *p = b.p ? strstr(b.p, "\nbtime ") : NULL;
	if (p)
		ms = strtoll(p + 7, NULL, 10) * 1000;
	de_buf_free(&b);
	return ms;
}

/* The n decimal digits at s as a number; -1 when one of them is not a
   digit (reading stops there, so a short string is safe). */
static int digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int de_time_parse(const char *s, int64_t now_ms, int64_t *out)
{
	int y, mo, d, h = 0, mi = 0, sec = 0;
	int64_t frac_ms = 0;

	if (strcmp(s, "now") == 0) {
		*out = now_ms;
		return 0;
	}
	const char *p = s[0] == '-' ? s + 1 : s;
	if (*p >= '0' && *p <= '9') {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(p, &end, 10);
		int64_t unit = 0;
		if (end[0] && !end[1]) {
			switch (end[0]) {
			case 's':
				unit = 1000;
				break;
			case 'm':
				unit = 60000;
				break;
			case 'h':
				unit = 3600000;
				break;
			case 'd':
				unit = 86400000;
				break;
			case 'w':
				unit = 7 * 86400000LL;
				break;
			}
		}
		if (unit && errno == 0 && end != p && v <= (unsigned long long)(INT64_MAX / unit)) {
			*out = now_ms - (int64_t)v * unit;
			return 0;
		}
	}
	/* exactly YYYY-MM-DD[Thh:mm:ss[.fff](Z|+hh:mm)]: digits where digits go */
	if ((y = digits(s, 4)) < 0 || s[4] != '-' || (mo = digits(s + 5, 2)) < 0 || s[7] != '-' ||
	    (d = digits(s + 8, 2)) < 0)
		return -EINVAL;
	p = s + 10;
	int tz = 0; /* minutes east of UTC */
	if (*p) {
		if ((*p != 'T' && *p != 't' && *p != ' ') || (h = digits(p + 1, 2)) < 0 ||
		    p[3] != ':' || (mi = digits(p + 4, 2)) < 0 || p[6] != ':' ||
		    (sec = digits(p + 7, 2)) < 0)
			return -EINVAL;
		p += 9;
		if (*p == '.') {
			int digits = 0;
			for (p++; *p >= '0' && *p <= '9'; p++, digits++)
				if (digits < 3)
					frac_ms = frac_ms * 10 + (*p - '0');
			if (!digits)
				return -EINVAL;
			for (; digits < 3; digits++)
				frac_ms *= 10;
		}
		if (*p == 'Z' || *p == 'z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			int th, tm;
			if ((th = digits(p + 1, 2)) < 0 || p[3] != ':' ||
			    (tm = digits(p + 4, 2)) < 0 || th > 23 || tm > 59)
				return -EINVAL;
			tz = (th * 60 + tm) * (*p == '-' ? -1 : 1);
			p += 6;
		} else {
			return -EINVAL;
		}
		if (*p)
			return -EINVAL;
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	struct tm tmv = {.tm_year = y - 1900,
			 .tm_mon = mo - 1,
			 .tm_mday = d,
			 .tm_hour = h,
			 .tm_min = mi,
			 .tm_sec = sec};
	time_t t = timegm(&tmv);
	if (tmv.tm_mday != d) /* 2026-02-31 */
		return -EINVAL;
	*out = ((int64_t)t - (int64_t)tz * 60) * 1000 + frac_ms;
	return 0;
}

void de_duration_format(char *buf, size_t n, int64_t ms)
{
	int64_t s = ms > 0 ? ms / 1000 : 0;

	if (s < 120)
		snprintf(buf, n, "%lld s", (long long)s);
	else if (s < 7200)
		snprintf(buf, n, "%lld min", (long long)(s / 60));
	else if (s < 172800)
		snprintf(buf, n, "%lld h", (long long)(s / 3600));
	else
		snprintf(buf, n, "%lld d", (long long)(s / 86400));
}
