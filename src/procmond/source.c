/*
 * source.c — which kernel event source procmond uses, and reading it.
 *
 * collection.event_source: auto tries the eBPF sensor (bpfevents.h) and
 * falls back to the netlink process connector (procevents.h); ebpf tries
 * the sensor only; netlink the connector only.  Whatever happens is said
 * once in the log, and the source's name and the reason eBPF is not in use
 * go into the HELLO that the agent keeps for health.  A source that cannot
 * be had is never fatal: procmond then serves full scans only.
 *
 * Both sources are read the same way: poll their descriptor, then hand
 * each event to a callback (procmond_follow_events).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemoneye/bpfevents.h"
#include "daemoneye/clock.h"
#include "daemoneye/log.h"
#include "daemoneye/procevents.h"
#include "procmond.h"

/* procmond_request_stop's pipe, made by the first procmond_source_open
   (before the seccomp filter) and polled by the event reader beside its
   source, so that a stop reaches it at once, not at its poll's end (up to
   200 ms on a quiet host); -1: none. */
static int stop_pipe[2] = {-1, -1};
/* The collection.ebpf_* settings and collection.env_capture as sensor
   options (strings borrowed from cfg; o->env_names allocated, the
   caller frees it); *fixed: collection.ebpf_wake_gap_ms sets the gap. */
static int bpf_options(const struct de_config *cfg, struct de_bpfevents_options *o, bool *fixed,
		       struct de_error *err)
{
	uint64_t argv, rb, gap;
	const char *obj = NULL, *btf = NULL, **env = NULL;
	int rc;

	de_bpfevents_options_default(o);
	if ((rc = de_config_get_u64(cfg, "collection.ebpf_argv_max", &argv, err)) < 0 ||
	    (rc = de_config_get_u64(cfg, "collection.ebpf_ringbuf_kb", &rb, err)) < 0 ||
	    (rc = de_config_get_u64(cfg, "collection.ebpf_wake_gap_ms", &gap, err)) < 0 ||
	    (rc = de_config_get_bool(cfg, "collection.ebpf_tcp", &o->tcp, err)) < 0 ||
	    (rc = de_config_get_str_list(cfg, "collection.env_capture", &env, &o->nenv_names,
					 err)) < 0)
		return rc;
	o->env_names = env;
	if (de_config_get_str(cfg, "collection.ebpf_object", &obj, NULL) < 0)
		obj = NULL;
	if (de_config_get_str(cfg, "collection.ebpf_btf", &btf, NULL) < 0)
		btf = NULL;
	o->argv_max = (uint32_t)argv;
	o->ringbuf_kb = (uint32_t)rb;
	*fixed = gap != 0; /* else the default gap, which then follows the host's CPU */
	if (gap)
		o->wake_gap_us = (uint32_t)gap * 1000;
	o->object_path = obj;
	o->btf_path = btf;
	return 0;
}

int procmond_source_open(const struct de_config *cfg, struct procmond_source *s,
			 struct de_error *err)
{
	struct de_bpfevents_options bo;
	struct de_error e = {0};
	const char *want;
	bool events, fixed = false;
	int rc;

	memset(s, 0, sizeof(*s));
	s->name = "none";
	/* made now, before the seccomp filter (which allows read and write) */
	if (stop_pipe[0] < 0 && pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		stop_pipe[0] = stop_pipe[1] = -1; /* the reader then stops at its poll's end */
	if ((rc = de_config_get_bool(cfg, "collection.events", &events, err)) < 0 ||
	    (rc = de_config_get_str(cfg, "collection.event_source", &want, err)) < 0)
		return rc;
	if (!events) {
		snprintf(s->reason, sizeof(s->reason), "collection.events is false");
		return 0;
	}
	if (strcmp(want, "netlink") != 0) {
		if ((rc = bpf_options(cfg, &bo, &fixed, err)) < 0)
			return rc;
		rc = de_bpfevents_open(&bo, &s->bpf, &e);
		free((void *)bo.env_names);
		if (rc == 0) {
			char gap[64] = "following the host's CPU";
			s->name = "ebpf";
			s->fixed_gap = fixed;
			if (fixed)
				snprintf(gap, sizeof(gap), "%u ms, fixed", bo.wake_gap_us / 1000);
			de_log_info("process events: the eBPF sensor (exec with argv, fork, "
				    "exit%s; wake gap %s)",
				    bo.tcp ? ", TCP connect/listen/accept" : "", gap);
			return 0;
		}
		s->bpf = NULL;
		snprintf(s->reason, sizeof(s->reason), "eBPF sensor not loaded: %s", e.message);
		if (strcmp(want, "ebpf") == 0) {
			de_log_errorx("%s; collection.event_source is ebpf: no real-time events, "
				      "full scans only",
				      s->reason);
			return 0;
		}
	} else {
		snprintf(s->reason, sizeof(s->reason), "collection.event_source is netlink");
	}
	de_error_clear(&e);
	if (de_procevents_open(&s->nl, &e) == 0) {
		s->name = "netlink";
		if (strcmp(want, "netlink") == 0)
			de_log_info("process events: the netlink process connector");
		else
			de_log_warnx("%s; falling back to the netlink process connector "
				     "(exec and exit only, read from /proc afterwards)",
				     s->reason);
		return 0;
	}
	s->nl = NULL;
	size_t l = strlen(s->reason);
	snprintf(s->reason + l, sizeof(s->reason) - l, "%snetlink process connector: %s",
		 l ? "; " : "", e.message);
	de_log_warnx("no real-time process events (%s): full scans only", s->reason);
	return 0;
}

void procmond_request_stop(void)
{
	int fd = stop_pipe[1], saved = errno;

	procmond_stop = 1;
	if (fd >= 0)
		(void)!write(fd, "", 1); /* full: a wake-up is waiting already */
	errno = saved;
}

void procmond_source_close(struct procmond_source *s)
{
	for (int i = 0; i < 2; i++) {
		int fd = stop_pipe[i];
		stop_pipe[i] = -1; /* before the close: a signal's write then goes nowhere */
		if (fd >= 0)
			close(fd);
	}
	de_bpfevents_close(s->bpf);
	de_procevents_close(s->nl);
	s->bpf = NULL;
	s->nl = NULL;
}

bool procmond_source_on(const struct procmond_source *s)
{
	return s->bpf || s->nl;
}

uint64_t procmond_source_lost(const struct procmond_source *s)
{
	return s->bpf ? de_bpfevents_dropped(s->bpf) : de_procevents_overruns(s->nl);
}

/* The netlink connector: while events come fast (SOURCE_BUSY_EVENTS or
   more in the last window of SOURCE_WINDOW_MS: about 1,600 a second), a
   read waits SOURCE_GATHER_US after its wake-up so that the events of that
   while are read, encoded and sent together: one wake-up and one write for
   several execs instead of one each.  Slower, an event goes on at once (a
   fork, exec and exit of one short process are only a handful).
   The eBPF sensor gathers in the kernel instead (a record wakes us at most
   every wake gap: sensor.bpf.c), with no sleep here: after a read that
   brought events the next poll waits de_bpfevents_busy_poll_ms at most,
   for the records written since without a wake-up.  Every SOURCE_ADAPT_MS
   while events come, the gap follows the host's idle CPU over that while
   (bpfevents.h: 6 ms with idle time, 4 ms on saturated CPUs); the first
   while of events after a quiet spell is SOURCE_ADAPT_FIRST_MS, so that a
   burst runs at its own gap after a fifth of a second, not a second;
   unless collection.ebpf_wake_gap_ms fixes the gap (s->fixed_gap). */
#define SOURCE_WINDOW_MS      10
#define SOURCE_BUSY_EVENTS    16
#define SOURCE_GATHER_US      1000
#define SOURCE_ADAPT_MS	      1000
#define SOURCE_ADAPT_FIRST_MS 200

/* What waiting for the source's descriptor (source_wait) ended with. */
enum source_woke {
	WOKE_SIGNAL, /* a signal: poll returned early, nothing is known */
	WOKE_IDLE,   /* the time was up, or procmond_request_stop */
	WOKE_READY,  /* the descriptor is readable (or in error) */
};

/* Wait up to ms for fd, and for procmond_request_stop's pipe; -errno on error. */
static int source_wait(int fd, int ms)
{
	struct pollfd p[2] = {{fd, POLLIN, 0}, {stop_pipe[0], POLLIN, 0}};
	int pr = poll(p, 2, ms);

	if (pr < 0)
		return errno == EINTR ? WOKE_SIGNAL : -errno;
	return p[0].revents & (POLLIN | POLLERR | POLLHUP) ? WOKE_READY : WOKE_IDLE;
}

/* fn, counting the events it is given. */
struct counted {
	int (*fn)(void *ctx, struct de_process_event *e);
	void *ctx;
	size_t n;
};

static int count_event(void *ctx, struct de_process_event *e)
{
	struct counted *c = ctx;

	c->n++;
	return c->fn(c->ctx, e);
}

/* The eBPF sensor's records until stopped (see above). */
static int follow_bpf(struct procmond_source *s, struct counted *cnt, int (*flush)(void *ctx),
		      void *ctx)
{
	bool read_some = false;
	struct de_cpu_sample cpu = {0}, now_cpu;
	bool have_cpu = de_cpu_sample_read(&cpu) == 0;
	int64_t cpu_at = de_mono_ms(), next_adapt = cpu_at + SOURCE_ADAPT_MS;
	int rc = 0;

	while (!procmond_stop && rc == 0) {
		struct de_error err = {0};
		size_t before = cnt->n;
		int64_t t = de_mono_ms();
		if (read_some && !s->fixed_gap && t >= next_adapt) {
			/* the wake gap for the host's CPU since the last look (a
			   look older than two whiles, after a quiet spell, is
			   only taken again, and the next comes sooner) */
			uint32_t was = de_bpfevents_wake_gap_us(s->bpf), gap = was;
			bool fresh = have_cpu && t - cpu_at <= 2 * (int64_t)SOURCE_ADAPT_MS;
			if (de_cpu_sample_read(&now_cpu) == 0) {
				if (fresh)
					gap = de_bpfevents_gap_for_cpu(was, &cpu, &now_cpu);
				cpu = now_cpu;
				cpu_at = t;
				have_cpu = true;
			}
			if (gap != was) {
				de_bpfevents_set_wake_gap(s->bpf, gap);
				de_log_debug("eBPF sensor: wake gap %u ms (the host's CPU %s)",
					     gap / 1000,
					     gap > was ? "has idle time" : "is saturated");
			}
			next_adapt = t + (fresh ? SOURCE_ADAPT_MS : SOURCE_ADAPT_FIRST_MS);
		}
		int woke = source_wait(de_bpfevents_fd(s->bpf),
				       read_some ? de_bpfevents_busy_poll_ms(s->bpf) : 200);

		if (woke < 0)
			return woke;
		if (procmond_stop)
			break;
		/* readable or not: records may wait without a wake-up */
		rc = de_bpfevents_read(s->bpf, count_event, cnt, &err);
		if (rc < 0 && err.message[0])
			de_log_err(&err);
		if (woke != WOKE_SIGNAL) /* a signal's early return says nothing */
			read_some = cnt->n != before;
		if (rc == 0 && read_some && flush)
			rc = flush(ctx);
	}
	return rc;
}

/* The netlink connector's events until stopped (see above). */
static int follow_netlink(struct procmond_source *s, struct counted *cnt, int (*flush)(void *ctx),
			  void *ctx)
{
	struct de_process_event buf[256];
	int64_t window = 0;
	bool busy = false;
	int rc = 0;

	while (!procmond_stop && rc == 0) {
		struct de_error err = {0};
		size_t n;
		int woke = source_wait(de_procevents_fd(s->nl), 200);

		if (woke < 0)
			return woke;
		if (procmond_stop)
			break;
		int64_t now = de_mono_ms();
		if (now - window >= SOURCE_WINDOW_MS) {
			busy = cnt->n >= SOURCE_BUSY_EVENTS &&
			       now - window < 2 * (int64_t)SOURCE_WINDOW_MS;
			window = now;
			cnt->n = 0;
		}
		if (woke != WOKE_READY)
			continue;
		if (busy) {
			struct timespec ts = {0, SOURCE_GATHER_US * 1000L};
			nanosleep(&ts, NULL);
		}
		if ((rc = de_procevents_read(s->nl, buf, sizeof(buf) / sizeof(buf[0]), &n, &err)) <
		    0) {
			de_log_err(&err);
			break;
		}
		for (size_t i = 0; i < n && rc == 0; i++)
			rc = count_event(cnt, &buf[i]);
		/* what one read brought goes on together */
		if (rc == 0 && flush)
			rc = flush(ctx);
	}
	return rc;
}

int procmond_follow_events(struct procmond_source *s,
			   int (*fn)(void *ctx, struct de_process_event *e),
			   int (*flush)(void *ctx), void *ctx)
{
	struct counted cnt = {fn, ctx, 0};

	if (!procmond_source_on(s))
		return 0;
	return s->bpf ? follow_bpf(s, &cnt, flush, ctx) : follow_netlink(s, &cnt, flush, ctx);
}
