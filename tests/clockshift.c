/*
 * clockshift.c — an LD_PRELOAD shim for integration_service.sh: the wall
 * clock (CLOCK_REALTIME and its coarse twin, gettimeofday, time) of the
 * processes it is loaded into runs $DE_CLOCKSHIFT_FILE seconds off (a
 * decimal number, read again at most every 100 ms), so a test can step the
 * clock back an hour without touching the host's.  CLOCK_MONOTONIC is left
 * alone: that is the point of the test.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int clock_gettime(clockid_t id, struct timespec *ts);
int gettimeofday(struct timeval *restrict tv, void *restrict tz);
time_t time(time_t *t);

/* The real clock, by system call: no recursion, no dlsym at odd times. */
static int real_clock(clockid_t id, struct timespec *ts)
{
	return (int)syscall(SYS_clock_gettime, id, ts);
}

static long offset_s(void)
{
	static long cached;
	static long long next_read_ns;
	struct timespec now;
	const char *path = getenv("DE_CLOCKSHIFT_FILE");

	if (!path)
		return 0;
	real_clock(CLOCK_MONOTONIC, &now);
	long long ns = (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
	if (ns >= next_read_ns) {
		char buf[32] = {0};
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			ssize_t n = read(fd, buf, sizeof(buf) - 1);
			close(fd);
			if (n > 0)
				cached = strtol(buf, NULL, 10);
		}
		next_read_ns = ns + 100000000LL;
	}
	return cached;
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
	int rc = real_clock(id, ts);

	if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
		ts->tv_sec += offset_s();
	return rc;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
	struct timespec ts;

	(void)tz;
	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		return -1;
	tv->tv_sec = ts.tv_sec; /* declared nonnull by glibc */
	tv->tv_usec = ts.tv_nsec / 1000;
	return 0;
}

time_t time(time_t *t)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (t)
		*t = ts.tv_sec;
	return ts.tv_sec;
}
