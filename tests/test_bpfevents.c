/*
 * test_bpfevents.c — the kernel sensor.  Everywhere: the record parser
 * against well-formed and malformed records.  As root (where the kernel
 * has BTF and the build the sensor): an exec, fork and exit of a child are
 * reported with the child's argv, image, parent and exit status; a 4 KiB
 * ring buffer overrun by a burst is counted and reported as LOST; the wake
 * gap set while running is the program's (and, everywhere, the gap the
 * host's idle CPU picks); and the
 * faults, each a clear error and nothing attached: no BTF, a program the
 * verifier refuses (a deliberately broken object), no privilege (a child
 * turned into nobody) and a seccomp filter that refuses bpf(2).  Loading
 * (the kernel's BTF parsed for CO-RE) happens in a child: the caller's
 * peak resident size does not carry it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <seccomp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemoneye/bpfevents.h"
#include "daemoneye/clock.h"
#include "daemoneye/collect.h"

#include <linux/types.h>

#include "../src/bpf/sensor.h"

static const struct de_bpf_clock clk = {
	.btime_ms = 1000000, .boot_to_epoch_ns = 5000000000000, .clk_tck = 100};

/* ---- parsing -------------------------------------------------------------- */

/* An exec record with exe /usr/bin/x, cwd /, cgroup /a/b and argv "x\0-y\0". */
static size_t make_exec(unsigned char *buf)
{
	struct de_bpf_exec x = {0};
	static const char data[] = "x\0bin\0usr\0" /* exe, leaf first */
				   ""		   /* cwd: the root */
				   "b\0a\0"	   /* cgroup */
				   "x\0-y";	   /* argv, last NUL cut */
	x.h.kind = DE_BPF_EXEC;
	x.h.pid = 42;
	x.h.ktime_ns = 2000000000;
	x.ppid = 1;
	x.uid = 1000;
	x.euid = 0;
	x.start_ns = 1500000000;
	x.exe_dev = (8u << 20) | 1;
	x.exe_len = 10;
	x.cwd_len = 0;
	x.cg_len = 4;
	x.argv_len = 4;
	x.argv_total = 4;
	memcpy(x.comm, "x", 2);
	memcpy(buf, &x, sizeof(x));
	memcpy(buf + sizeof(x), data, 18);
	return sizeof(x) + 18;
}

static void test_parse(void **state)
{
	(void)state;
	unsigned char rec[512];
	static char scratch[3 * DE_BPF_PATH_TEXT];
	struct de_process_event e;
	struct de_kernel_exec k;
	size_t n = make_exec(rec);

	assert_int_equal(de_bpfevents_parse(rec, n, &clk, &e, &k, scratch, sizeof(scratch)), 0);
	assert_int_equal(e.kind, DE_PROCESS_EXEC);
	assert_ptr_equal(e.kexec, &k);
	assert_int_equal(e.pid, 42);
	assert_int_equal(e.time_ms, 5002000);
	assert_int_equal(k.start_ticks, 150);
	assert_int_equal(e.start_time, 1000000 + 1500);
	assert_string_equal(k.exe, "/usr/bin/x");
	assert_string_equal(k.cwd, "/");
	assert_string_equal(k.cgroup, "/a/b");
	assert_int_equal(k.argv_len, 4);
	assert_memory_equal(k.argv, "x\0-y", 4);
	assert_int_equal(k.exe_dev, 0x801);
	assert_int_equal(k.uid, 1000);
	assert_int_equal(k.euid, 0);
	assert_false(k.argv_cut);

	/* every prefix is refused, never read past */
	for (size_t m = 0; m < n; m++)
		assert_int_equal(de_bpfevents_parse(rec, m, &clk, &e, &k, scratch, sizeof(scratch)),
				 -EBADMSG);
	/* lengths that do not add up */
	struct de_bpf_exec *x = (struct de_bpf_exec *)(void *)rec;
	x->argv_len = 1000;
	assert_int_equal(de_bpfevents_parse(rec, n, &clk, &e, &k, scratch, sizeof(scratch)),
			 -EBADMSG);
	x->argv_len = 4;
	x->exe_len = 0xffffffffu;
	assert_int_equal(de_bpfevents_parse(rec, n, &clk, &e, &k, scratch, sizeof(scratch)),
			 -EBADMSG);
	x->exe_len = 9; /* a component without its NUL */
	assert_int_equal(de_bpfevents_parse(rec, n, &clk, &e, &k, scratch, sizeof(scratch)),
			 -EBADMSG);
	x->exe_len = 10;
	/* an unknown kind */
	x->h.kind = 99;
	assert_int_equal(de_bpfevents_parse(rec, n, &clk, &e, &k, scratch, sizeof(scratch)),
			 -EBADMSG);

	/* an exit: the wait status and the instance */
	struct de_bpf_exit ex = {
		.h = {DE_BPF_EXIT, 7, 3000000000}, .exit_code = 3 << 8, .start_ns = 2000000000};
	assert_int_equal(
		de_bpfevents_parse(&ex, sizeof(ex), &clk, &e, &k, scratch, sizeof(scratch)), 0);
	assert_int_equal(e.kind, DE_PROCESS_EXIT);
	assert_true(e.has_exit_code);
	assert_int_equal(e.exit_code, 768);
	assert_int_equal(e.start_time, 1000000 + 2000);
	assert_null(e.kexec);
	/* a TCP record of an unknown family or operation is refused */
	struct de_bpf_tcp t = {.h = {DE_BPF_TCP, 7, 1},
			       .op = DE_BPF_TCP_CONNECT,
			       .family = 2,
			       .lport = 5,
			       .rport = 6};
	assert_int_equal(de_bpfevents_parse(&t, sizeof(t), &clk, &e, &k, scratch, sizeof(scratch)),
			 0);
	assert_int_equal(e.conn.kind, DE_CONN_CONNECT);
	assert_int_equal(e.conn.family, 4);
	t.family = 1;
	assert_int_equal(de_bpfevents_parse(&t, sizeof(t), &clk, &e, &k, scratch, sizeof(scratch)),
			 -EBADMSG);
	t.family = 10;
	t.op = 9;
	assert_int_equal(de_bpfevents_parse(&t, sizeof(t), &clk, &e, &k, scratch, sizeof(scratch)),
			 -EBADMSG);
}

/* ---- the real sensor (root) ----------------------------------------------- */

static bool can_load(void)
{
	if (!de_bpfevents_built()) {
		printf("# built without the eBPF sensor: the kernel part is skipped\n");
		return false;
	}
	if (geteuid() != 0) {
		printf("# not root: the kernel part needs CAP_BPF and CAP_PERFMON\n");
		return false;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK) < 0) {
		printf("# no kernel BTF: the kernel part is skipped\n");
		return false;
	}
	return true;
}

struct watch {
	pid_t child;
	bool fork_seen, exec_seen, exit_seen;
	uint64_t lost;
	size_t execs;
};

static int on_event(void *ctx, struct de_process_event *e)
{
	struct watch *w = ctx;

	if (e->kind == DE_PROCESS_LOST)
		w->lost += e->lost;
	if (e->kind == DE_PROCESS_EXEC)
		w->execs++;
	if (e->pid != (uint32_t)w->child)
		return 0;
	switch (e->kind) {
	case DE_PROCESS_FORK:
		assert_int_equal(e->ppid, getpid());
		w->fork_seen = true;
		break;
	case DE_PROCESS_EXEC: {
		const struct de_kernel_exec *k = e->kexec;
		static const char argv[] = "/bin/sh\0-c\0exit 7\0de-sensor-marker";
		assert_non_null(k);
		assert_int_equal(k->ppid, getpid());
		assert_string_equal(k->comm, "sh");
		assert_int_equal(k->argv_len, sizeof(argv));
		assert_memory_equal(k->argv, argv, sizeof(argv));
		assert_non_null(k->exe);
		char real[4096];
		assert_non_null(realpath("/bin/sh", real));
		assert_string_equal(k->exe, real);
		assert_false(k->argv_cut);
		w->exec_seen = true;
		break;
	}
	case DE_PROCESS_EXIT:
		assert_true(e->has_exit_code);
		assert_int_equal(e->exit_code, 7 << 8);
		w->exit_seen = true;
		break;
	default:
		break;
	}
	return 0;
}

/* Read until done(w) or about 20 s without it (a bound, not a timing). */
static void read_until(struct de_bpfevents *ev, struct watch *w, bool (*done)(struct watch *))
{
	struct de_error err = {0};

	for (int i = 0; i < 200 && !done(w); i++) {
		struct pollfd p = {de_bpfevents_fd(ev), POLLIN, 0};
		poll(&p, 1, 100);
		assert_int_equal(de_bpfevents_read(ev, on_event, w, &err), 0);
	}
}

static bool child_done(struct watch *w)
{
	return w->fork_seen && w->exec_seen && w->exit_seen;
}

/* The process's peak resident size (VmHWM) in KiB, or -1. */
static long hwm_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/*
 * What the sensor in its default configuration adds to the caller's peak
 * resident size: the ring buffer's mapping (the kernel maps it whole, the
 * data area twice: 2 x 1 MiB and a page) and a little, not the kernel's
 * BTF (megabytes, parsed in the loading child, which is reaped).  Runs
 * before any other test loads the sensor (VmHWM only ever grows).
 */
static void test_load_peak_stays_in_child(void **state)
{
	(void)state;
	struct de_bpfevents_options o;
	struct de_bpfevents *ev;
	struct de_error err = {0};
	struct stat st;
	long before, after;

	if (!can_load())
		return;
	assert_int_equal(stat("/sys/kernel/btf/vmlinux", &st), 0);
	de_bpfevents_options_default(&o);
	before = hwm_kb();
	if (de_bpfevents_open(&o, &ev, &err) < 0)
		fail_msg("the sensor did not load: %s", err.message);
	after = hwm_kb();
	printf("# loading with a %ld KiB BTF: peak resident size %ld -> %ld KiB\n",
	       (long)(st.st_size >> 10), before, after);
	assert_true(before > 0);
	/* the BTF alone is larger than the margin over the ring buffer's
	   mapping; an 8 MiB ring buffer (16 MiB mapped) would not fit either */
	assert_true(st.st_size > (2 << 20));
	assert_true(after - before < 2 * 1024 + 1536);
	/* the loader is gone: no child left to reap */
	errno = 0;
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	de_bpfevents_close(ev);
}

static void test_exec_fork_exit(void **state)
{
	(void)state;
	struct de_bpfevents_options o;
	struct de_bpfevents *ev;
	struct de_error err = {0};
	struct watch w = {0};
	int st;

	if (!can_load())
		return;
	de_bpfevents_options_default(&o);
	if (de_bpfevents_open(&o, &ev, &err) < 0)
		fail_msg("the sensor did not load: %s", err.message);
	w.child = fork();
	if (w.child == 0) {
		execl("/bin/sh", "/bin/sh", "-c", "exit 7", "de-sensor-marker", (char *)NULL);
		_exit(127);
	}
	assert_true(waitpid(w.child, &st, 0) == w.child);
	read_until(ev, &w, child_done);
	assert_true(w.fork_seen);
	assert_true(w.exec_seen);
	assert_true(w.exit_seen);
	assert_true(de_bpfevents_delivered(ev) >= 3);
	de_bpfevents_close(ev);
}

static bool lost_done(struct watch *w)
{
	return w->lost > 0;
}

static void test_overrun_is_counted(void **state)
{
	(void)state;
	struct de_bpfevents_options o;
	struct de_bpfevents *ev;
	struct de_error err = {0};
	struct watch w = {.child = -1};
	pid_t kids[200];

	if (!can_load())
		return;
	de_bpfevents_options_default(&o);
	o.ringbuf_kb = 4; /* one page: a burst cannot fit */
	/* no wake-up for the gap after the first: those that come are the
	   ring buffer's, a quarter full (1 KiB) */
	o.wake_gap_us = 10 * 1000 * 1000;
	if (de_bpfevents_open(&o, &ev, &err) < 0)
		fail_msg("the sensor did not load: %s", err.message);
	for (size_t i = 0; i < sizeof(kids) / sizeof(kids[0]); i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			execl("/bin/true", "/bin/true", "de-overrun", (char *)NULL);
			_exit(127);
		}
	}
	for (size_t i = 0; i < sizeof(kids) / sizeof(kids[0]); i++)
		if (kids[i] > 0)
			waitpid(kids[i], NULL, 0);
	read_until(ev, &w, lost_done);
	assert_true(w.lost > 0);
	assert_int_equal(de_bpfevents_dropped(ev), w.lost);
	assert_true(de_bpfevents_fill_wakes(ev) > 0);
	printf("# 200 execs into a 4 KiB ring buffer: %llu records lost, %zu execs read, %llu "
	       "wake-ups for a quarter-full ring\n",
	       (unsigned long long)w.lost, w.execs,
	       (unsigned long long)de_bpfevents_fill_wakes(ev));
	de_bpfevents_close(ev);
}

/* ---- the wake gap ----------------------------------------------------------- */

/* /proc/stat's first line, and the gap the host's idle share picks. */
static void test_wake_gap_policy(void **state)
{
	(void)state;
	struct de_cpu_sample a, b;

	assert_int_equal(
		de_cpu_sample_parse("cpu  10 1 20 300 5 2 3 4 0 0\ncpu0 1 2 3 4 5 6 7 8\n", &a), 0);
	assert_int_equal(a.idle, 305);
	assert_int_equal(a.total, 345);
	/* older kernels' eight fields, no guest columns */
	assert_int_equal(de_cpu_sample_parse("cpu 1 2 3 4 5 6 7 8", &a), 0);
	assert_int_equal(a.total, 36);
	assert_int_equal(de_cpu_sample_parse("cpu0 1 2 3 4 5 6 7 8", &a), -EBADMSG);
	assert_int_equal(de_cpu_sample_parse("cpu 1 2 3", &a), -EBADMSG);
	assert_int_equal(de_cpu_sample_parse("", &a), -EBADMSG);
	assert_int_equal(de_cpu_sample_parse("cpu 1 2 3 4x 5 6 7 8", &a), -EBADMSG);
	assert_int_equal(de_cpu_sample_parse("cpu 1 2 3 -4 5 6 7 8", &a), -EBADMSG);
	/* this host's */
	assert_int_equal(de_cpu_sample_read(&a), 0);
	assert_true(a.total > 0 && a.idle <= a.total);

	/* 1,000 ticks between the samples: idle 12% and more takes the
	   longer gap, under 8% the shorter, between them the gap stays */
	a = (struct de_cpu_sample){.idle = 500, .total = 10000};
	b = (struct de_cpu_sample){.idle = 620, .total = 11000};
	assert_int_equal(de_bpfevents_gap_for_cpu(DE_BPFEVENTS_WAKE_GAP_US, &a, &b),
			 DE_BPFEVENTS_WAKE_GAP_IDLE_US);
	b.idle = 1500; /* all idle */
	assert_int_equal(de_bpfevents_gap_for_cpu(DE_BPFEVENTS_WAKE_GAP_US, &a, &b),
			 DE_BPFEVENTS_WAKE_GAP_IDLE_US);
	b.idle = 579; /* 7.9%: saturated */
	assert_int_equal(de_bpfevents_gap_for_cpu(DE_BPFEVENTS_WAKE_GAP_IDLE_US, &a, &b),
			 DE_BPFEVENTS_WAKE_GAP_US);
	b.idle = 500; /* none */
	assert_int_equal(de_bpfevents_gap_for_cpu(DE_BPFEVENTS_WAKE_GAP_IDLE_US, &a, &b),
			 DE_BPFEVENTS_WAKE_GAP_US);
	b.idle = 600; /* 10%: either stays */
	assert_int_equal(de_bpfevents_gap_for_cpu(DE_BPFEVENTS_WAKE_GAP_IDLE_US, &a, &b),
			 DE_BPFEVENTS_WAKE_GAP_IDLE_US);
	assert_int_equal(de_bpfevents_gap_for_cpu(DE_BPFEVENTS_WAKE_GAP_US, &a, &b),
			 DE_BPFEVENTS_WAKE_GAP_US);
	/* no time between the samples, or counters that went back: unchanged */
	assert_int_equal(de_bpfevents_gap_for_cpu(1234, &a, &a), 1234);
	b = (struct de_cpu_sample){.idle = 400, .total = 11000};
	assert_int_equal(de_bpfevents_gap_for_cpu(1234, &a, &b), 1234);
	assert_int_equal(de_bpfevents_gap_for_cpu(1234, &b, &a), 1234);
	/* the reader's busy poll follows the gap: none loaded, the default */
	assert_int_equal(de_bpfevents_busy_poll_ms(NULL), DE_BPFEVENTS_WAKE_GAP_US / 1000 + 1);
}

static bool exec_done(struct watch *w)
{
	return w->exec_seen;
}

/* A child that sleeps ms, then runs /bin/sh -c 'exit 7' de-sensor-marker. */
static pid_t exec_later(int ms)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
		execl("/bin/sh", "/bin/sh", "-c", "exit 7", "de-sensor-marker", (char *)NULL);
		_exit(127);
	}
	return pid;
}

/*
 * Read what waits until the descriptor polls not ready: a wake-up already
 * given stays pending in its epoll set (level-triggered) until a poll finds
 * the ring buffer empty, and would make any later record look like one
 * that woke the reader.
 */
static void drain(struct de_bpfevents *ev, struct watch *w)
{
	struct de_error err = {0};
	struct pollfd p = {de_bpfevents_fd(ev), POLLIN, 0};

	for (int i = 0; i < 1000; i++) {
		assert_int_equal(de_bpfevents_read(ev, on_event, w, &err), 0);
		if (poll(&p, 1, 0) == 0)
			return;
	}
	fail_msg("the sensor's descriptor stays ready");
}

/* A new watch of an exec 100 ms from now; poll(2) for the sensor meanwhile. */
static int poll_exec(struct de_bpfevents *ev, struct watch *w, int timeout_ms)
{
	struct pollfd p = {de_bpfevents_fd(ev), POLLIN, 0};
	int pr, st;

	memset(w, 0, sizeof(*w));
	w->child = exec_later(100);
	pr = poll(&p, 1, timeout_ms);
	assert_true(waitpid(w->child, &st, 0) == w->child);
	return pr;
}

/*
 * The gap set while running is the program's: loaded with the default
 * (4 ms), then set to 10 s, an exec 100 ms after the last wake-up wakes
 * nobody (the reader's poll runs out with the records waiting); set to
 * 1 us, the next exec wakes the reader at once.
 */
static void test_wake_gap_while_running(void **state)
{
	(void)state;
	struct de_bpfevents_options o;
	struct de_bpfevents *ev;
	struct de_error err = {0};
	struct watch w = {0};
	int st;

	if (!can_load())
		return;
	de_bpfevents_options_default(&o);
	if (de_bpfevents_open(&o, &ev, &err) < 0)
		fail_msg("the sensor did not load: %s", err.message);
	assert_int_equal(de_bpfevents_wake_gap_us(ev), DE_BPFEVENTS_WAKE_GAP_US);
	de_bpfevents_set_wake_gap(ev, 10 * 1000 * 1000);
	assert_int_equal(de_bpfevents_wake_gap_us(ev), 10 * 1000 * 1000);
	assert_int_equal(de_bpfevents_busy_poll_ms(ev), 10 * 1000 + 1);
	/* a first exec: whatever woke the reader last, read it all */
	w.child = exec_later(0);
	assert_true(waitpid(w.child, &st, 0) == w.child);
	read_until(ev, &w, exec_done);
	assert_true(w.exec_seen);
	drain(ev, &w);
	/* within 10 s of the last wake-up: the next exec's records wait unseen */
	assert_int_equal(poll_exec(ev, &w, 1000), 0);
	assert_int_equal(de_bpfevents_read(ev, on_event, &w, &err), 0);
	assert_true(w.exec_seen); /* they were there */
	/* 1 us: the next wakes the reader (within the bound, not a timing) */
	de_bpfevents_set_wake_gap(ev, 1);
	drain(ev, &w);
	assert_int_equal(poll_exec(ev, &w, 20000), 1);
	read_until(ev, &w, exec_done);
	assert_true(w.exec_seen);
	/* 0: back to the gap set at load */
	de_bpfevents_set_wake_gap(ev, 0);
	assert_int_equal(de_bpfevents_wake_gap_us(ev), DE_BPFEVENTS_WAKE_GAP_US);
	de_bpfevents_close(ev);
}

/* ---- the kernel's facts against /proc -------------------------------------- */

/* What the kernel said of one exec, copied out of the callback. */
struct facts_watch {
	pid_t child;
	bool seen;
	struct de_kernel_exec k; /* its pointers cleared: copies below */
	char env[DE_BPF_ENV_MAX];
	size_t env_len;
	uint64_t lost;
	struct de_collector *col; /* when set: the record de_collector_exec makes */
	struct de_process_record r;
};

static int on_facts(void *ctx, struct de_process_event *e)
{
	struct facts_watch *w = ctx;
	struct de_error err = {0};

	if (e->kind == DE_PROCESS_LOST)
		w->lost += e->lost;
	if (e->kind != DE_PROCESS_EXEC || e->pid != (uint32_t)w->child || w->seen)
		return 0;
	assert_non_null(e->kexec);
	w->k = *e->kexec;
	if (w->col)
		assert_int_equal(de_collector_exec(w->col, e->kexec, 0, &w->r, &err), 0);
	assert_true(w->k.env_len <= sizeof(w->env));
	memcpy(w->env, w->k.env, w->k.env_len);
	w->env_len = w->k.env_len;
	w->k.exe = w->k.cwd = w->k.cgroup = w->k.argv = w->k.env = NULL;
	w->seen = true;
	return 0;
}

/* start_held runs this descriptor's file (fexecve) when >= 0 */
static int held_exec_fd = -1;

/*
 * Start /bin/sh with envp, held alive on a pipe (it reads a line), and read
 * the sensor until its exec.  Returns the pid; *hold is the pipe's write end
 * (closing it lets the child end).
 */
static pid_t start_held(struct de_bpfevents *ev, struct facts_watch *w, char *const envp[],
			int *hold)
{
	struct de_error err = {0};
	int pfd[2];

	assert_int_equal(pipe(pfd), 0);
	w->child = fork();
	if (w->child == 0) {
		char *const argv[] = {"/bin/sh", "-c", "read x", "de-sensor-facts", NULL};
		close(pfd[1]);
		if (dup2(pfd[0], 0) < 0)
			_exit(126);
		if (held_exec_fd >= 0)
			fexecve(held_exec_fd, argv, envp);
		else
			execve("/bin/sh", argv, envp);
		_exit(127);
	}
	close(pfd[0]);
	*hold = pfd[1];
	for (int i = 0; i < 200 && !w->seen; i++) {
		struct pollfd p = {de_bpfevents_fd(ev), POLLIN, 0};
		poll(&p, 1, 100);
		assert_int_equal(de_bpfevents_read(ev, on_facts, w, &err), 0);
	}
	assert_true(w->seen);
	return w->child;
}

static void end_held(pid_t pid, int hold)
{
	int st;

	assert_true(write(hold, "\n", 1) == 1);
	close(hold);
	assert_true(waitpid(pid, &st, 0) == pid);
}

/* The strings of a NUL-separated block (n bytes) whose names are in names. */
static size_t env_select(const char *env, size_t n, const char *const *names, size_t nnames,
			 const char **out, size_t *lens, size_t max)
{
	size_t k = 0;

	for (size_t at = 0; at < n;) {
		const char *s = env + at, *nul = memchr(s, '\0', n - at);
		size_t l = nul ? (size_t)(nul - s) : n - at;
		for (size_t j = 0; j < nnames; j++) {
			size_t nl = strlen(names[j]);
			if (l > nl && s[nl] == '=' && memcmp(s, names[j], nl) == 0 && k < max) {
				out[k] = s;
				lens[k++] = l;
				break;
			}
		}
		at += l + 1;
	}
	return k;
}

/*
 * What the kernel reads at an exec instead of /proc — the image's stat and
 * the environment variables asked for — is what /proc says of the live
 * process: stat(2) of /proc/PID/exe, and /proc/PID/environ filtered by the
 * same names.  The environment mixes what a search could get wrong: a
 * value longer than a chunk before the wanted ones, a wanted value longer
 * than a chunk (kept cut, so that it shows as longer than 4 KiB), a
 * name that only starts with a wanted one, one that ends with it, and a
 * wanted name twice.
 */
static void test_exec_facts_match_proc(void **state)
{
	(void)state;
	static const char *const names[] = {"DE_T_A", "DE_T_LONG", "DE_T_NONE"};
	struct de_bpfevents_options o;
	struct de_bpfevents *ev;
	struct de_error err = {0};
	static struct facts_watch w;
	static char filler[10000 + 8], longv[5000 + 16], proc_env[65536];
	char path[64];
	struct stat st;
	int hold;

	if (!can_load())
		return;
	memset(&w, 0, sizeof(w));
	memcpy(filler, "FILLER=", 7);
	memset(filler + 7, 'x', 10000);
	memcpy(longv, "DE_T_LONG=", 10);
	memset(longv + 10, 'y', 5000);
	char *const envp[] = {filler,	    "DE_T_AX=no", "XDE_T_A=no",		longv,
			      "DE_T_A=one", "DE_T_A=dup", "PATH=/usr/bin:/bin", NULL};
	de_bpfevents_options_default(&o);
	o.env_names = names;
	o.nenv_names = 3;
	if (de_bpfevents_open(&o, &ev, &err) < 0)
		fail_msg("the sensor did not load: %s", err.message);
	pid_t pid = start_held(ev, &w, envp, &hold);

	/* the image: stat(2) through /proc/PID/exe */
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	assert_int_equal(stat(path, &st), 0);
	assert_true(w.k.has_exe_stat);
	assert_false(w.k.exe_unlinked);
	assert_int_equal(w.k.exe_ino, st.st_ino);
	assert_int_equal(w.k.exe_dev, st.st_dev);
	assert_int_equal(w.k.exe_size, st.st_size);
	assert_int_equal(w.k.exe_mode, st.st_mode);
	assert_int_equal(w.k.exe_nlink, st.st_nlink);
	assert_int_equal(w.k.exe_mtime_ns,
			 (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
	assert_int_equal(w.k.exe_ctime_ns,
			 (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec);

	/* the environment: /proc/PID/environ, the same names */
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	FILE *f = fopen(path, "re");
	assert_non_null(f);
	size_t pn = fread(proc_env, 1, sizeof(proc_env), f);
	fclose(f);
	assert_true(pn > 15000 && pn < sizeof(proc_env));
	const char *want[8], *got[8];
	size_t wl[8], gl[8];
	size_t nw = env_select(proc_env, pn, names, 3, want, wl, 8);
	size_t ng = env_select(w.env, w.env_len, names, 3, got, gl, 8);
	assert_true(w.k.has_env);
	assert_false(w.k.env_cut);
	assert_int_equal(nw, 3); /* DE_T_LONG, DE_T_A twice */
	assert_int_equal(ng, nw);
	for (size_t i = 0; i < nw; i++) {
		/* whole, or the first DE_BPF_ENV_CHUNK - 1 bytes of a longer one */
		size_t l = wl[i] < DE_BPF_ENV_CHUNK - 1 ? wl[i] : DE_BPF_ENV_CHUNK - 1;
		assert_int_equal(gl[i], l);
		assert_memory_equal(got[i], want[i], l);
	}
	/* only the wanted strings are carried */
	assert_int_equal(w.env_len, gl[0] + gl[1] + gl[2] + 3);
	end_held(pid, hold);
	assert_int_equal(w.lost, 0);
	de_bpfevents_close(ev);
}

/* More strings than the kernel looks at: the record says its search was
   cut (user space then reads /proc/PID/environ); more names than it
   takes: it does not search at all. */
static void test_exec_env_bounds(void **state)
{
	(void)state;
	static const char *const names[] = {"DE_T_A", "B", "C", "D", "E", "F", "G", "H", "I"};
	struct de_bpfevents_options o;
	struct de_bpfevents *ev;
	struct de_error err = {0};
	static struct facts_watch w;
	static char strs[5000][16];
	static char *envp[5001];
	int hold = -1;

	if (!can_load())
		return;
	for (int i = 0; i < 5000; i++) {
		snprintf(strs[i], sizeof(strs[i]), "V%d=x", i);
		envp[i] = strs[i];
	}
	envp[5000] = NULL;
	de_bpfevents_options_default(&o);
	o.env_names = names;
	o.nenv_names = 1;
	if (de_bpfevents_open(&o, &ev, &err) < 0)
		fail_msg("the sensor did not load: %s", err.message);
	memset(&w, 0, sizeof(w));
	pid_t pid = start_held(ev, &w, envp, &hold);
	end_held(pid, hold);
	assert_true(w.k.has_env);
	assert_true(w.k.env_cut);
	de_bpfevents_close(ev);

	o.nenv_names = 9;
	if (de_bpfevents_open(&o, &ev, &err) < 0)
		fail_msg("the sensor did not load: %s", err.message);
	memset(&w, 0, sizeof(w));
	char *const small[] = {"DE_T_A=1", NULL};
	pid = start_held(ev, &w, small, &hold);
	end_held(pid, hold);
	assert_false(w.k.has_env);
	assert_int_equal(w.env_len, 0);
	de_bpfevents_close(ev);
}

/* A record made by the collector from the kernel's exec, in the callback. */
struct record_watch {
	pid_t child;
	struct de_collector *col;
	bool seen;
	struct de_process_record r;
};

static int on_record(void *ctx, struct de_process_event *e)
{
	struct record_watch *w = ctx;
	struct de_error err = {0};

	if (e->kind != DE_PROCESS_EXEC || e->pid != (uint32_t)w->child || w->seen)
		return 0;
	assert_non_null(e->kexec);
	assert_int_equal(de_collector_exec(w->col, e->kexec, 0, &w->r, &err), 0);
	w->seen = true;
	return 0;
}

/*
 * The sensor and a collector to make records from its execs, both
 * capturing the variables names[0..n) (names NULL: their defaults); the
 * test fails when either cannot open.  Closed by close_sensor().
 */
static struct de_bpfevents *open_sensor(const char *const *names, size_t n,
					struct de_collector **col)
{
	struct de_bpfevents_options o;
	struct de_collect_options co;
	struct de_bpfevents *ev;
	struct de_error err = {0};

	de_bpfevents_options_default(&o);
	de_collect_options_default(&co);
	if (names) {
		o.env_names = co.env_names = names;
		o.nenv_names = co.nenv_names = n;
	}
	if (de_bpfevents_open(&o, &ev, &err) < 0)
		fail_msg("the sensor did not load: %s", err.message);
	assert_int_equal(de_collector_open(NULL, col, &err), 0);
	assert_int_equal(de_collector_configure(*col, &co, &err), 0);
	return ev;
}

static void close_sensor(struct de_bpfevents *ev, struct de_collector *col,
			 struct de_process_record *r)
{
	de_process_record_clear(r);
	de_collector_close(col);
	de_bpfevents_close(ev);
}

/* A memfd named name holding a copy of /bin/sh (flags: memfd_create's). */
static int memfd_sh(const char *name, unsigned flags)
{
	static char buf[1 << 16];
	ssize_t n;
	int in, mfd = memfd_create(name, flags);

	assert_true(mfd >= 0);
	in = open("/bin/sh", O_RDONLY | O_CLOEXEC);
	assert_true(in >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(mfd, buf, (size_t)n), n);
	close(in);
	return mfd;
}

/* Read the sensor until on_record has seen w->child's exec. */
static void read_until_seen(struct de_bpfevents *ev, struct record_watch *w)
{
	struct de_error err = {0};

	for (int i = 0; i < 200 && !w->seen; i++) {
		struct pollfd p = {de_bpfevents_fd(ev), POLLIN, 0};
		poll(&p, 1, 100);
		assert_int_equal(de_bpfevents_read(ev, on_record, w, &err), 0);
	}
	assert_true(w->seen);
}

/*
 * A process gone before user space looks (reaped before the ring buffer
 * is read) still has, in its record, what the kernel read at the exec:
 * the captured environment and the image's identity and size (against
 * stat(2) of the file it ran), hashed through its path.
 */
static void test_exec_record_of_gone_process(void **state)
{
	(void)state;
	static const char *const names[] = {"DE_T_A", "LD_PRELOAD"};
	struct de_bpfevents *ev;
	static struct record_watch w;
	char json[8192], want[128], real[4096];
	struct stat st;
	int wst;

	if (!can_load())
		return;
	memset(&w, 0, sizeof(w));
	ev = open_sensor(names, 2, &w.col);
	w.child = fork();
	if (w.child == 0) {
		char *const argv[] = {"/bin/sh", "-c", "exit 0", "de-sensor-gone", NULL};
		char *const envp[] = {"PATH=/bin", "DE_T_A=from the kernel", NULL};
		execve("/bin/sh", argv, envp);
		_exit(127);
	}
	assert_true(waitpid(w.child, &wst, 0) == w.child);
	read_until_seen(ev, &w);
	assert_true(de_linux_facts_json(&w.r, json, sizeof(json)) > 0);
	printf("# %s\n", json);
	assert_non_null(strstr(json, "\"env\":\"DE_T_A=from the kernel\""));
	assert_non_null(realpath("/bin/sh", real));
	assert_string_equal(w.r.executable_path, real);
	assert_true(w.r.file_exists);
	assert_int_equal(stat(real, &st), 0);
	snprintf(want, sizeof(want), "\"exe_inode\":%llu,", (unsigned long long)st.st_ino);
	assert_non_null(strstr(json, want));
	snprintf(want, sizeof(want), "\"exe_size\":%lld", (long long)st.st_size);
	assert_non_null(strstr(json, want));
	assert_non_null(strstr(json, "\"exe_deleted\":false,\"exe_replaced\":false"));
	assert_non_null(w.r.executable_hash);
	/* the kernel's record has no RSS: unknown until a scan reads it, not 0 */
	assert_false(w.r.has_memory_usage);
	close_sensor(ev, w.col, &w.r);
}

/*
 * An image whose path names nothing in our mount namespace (a memfd run
 * with fexecve: /proc/PID/exe says "/memfd:de-sensor (deleted)"): the
 * kernel says so, and the record of the live process takes the path
 * /proc/PID/exe shows (readlink), with file_exists false, not replaced,
 * and the image's identity that of /proc/PID/exe (stat).
 */
static void test_exec_memfd_image(void **state)
{
	(void)state;
	struct de_bpfevents *ev;
	static struct facts_watch w;
	char path[64], json[8192], want[128];
	struct stat st;
	int hold, mfd;

	if (!can_load())
		return;
	mfd = memfd_sh("de-sensor", 0);
	memset(&w, 0, sizeof(w));
	ev = open_sensor(NULL, 0, &w.col);
	char *const envp[] = {"PATH=/bin", NULL};
	held_exec_fd = mfd;
	pid_t pid = start_held(ev, &w, envp, &hold);
	held_exec_fd = -1;
	close(mfd);
	assert_true(w.k.has_exe_stat);
	assert_true(w.k.exe_unlinked);
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(w.k.exe_ino, st.st_ino);
	assert_false(w.r.file_exists);
	assert_true(de_linux_facts_json(&w.r, json, sizeof(json)) > 0);
	printf("# %s: %s\n", w.r.executable_path, json);
	/* the path /proc/PID/exe shows, not the kernel walk's "/"; nothing
	   there replaced it */
	char link[4096];
	ssize_t ln = readlink(path, link, sizeof(link) - 1);
	assert_true(ln > 0);
	link[ln] = '\0';
	assert_non_null(strstr(link, "/memfd:de-sensor"));
	assert_non_null(w.r.executable_path);
	assert_non_null(strstr(link, w.r.executable_path));
	assert_non_null(strstr(w.r.executable_path, "/memfd:de-sensor"));
	assert_non_null(strstr(json, "\"exe_replaced\":false"));
	snprintf(want, sizeof(want), "\"exe_inode\":%llu,", (unsigned long long)st.st_ino);
	assert_non_null(strstr(json, want));
	end_held(pid, hold);
	close_sensor(ev, w.col, &w.r);
}

/*
 * A memfd image whose process is gone before user space looks (fileless
 * code that runs a moment): the record's path is still the memfd's,
 * "/memfd:NAME" as /proc/PID/exe said while it ran, from the kernel's
 * walk alone (a detached pseudo file is its own root), so a rule on
 * '/memfd:%' sees it.
 */
static void test_exec_memfd_gone(void **state)
{
	(void)state;
	struct de_bpfevents *ev;
	static struct record_watch w;
	int mfd, wst;

	if (!can_load())
		return;
	mfd = memfd_sh("de-sensor-gone", MFD_CLOEXEC);
	memset(&w, 0, sizeof(w));
	ev = open_sensor(NULL, 0, &w.col);
	w.child = fork();
	if (w.child == 0) {
		char *const argv[] = {"sh", "-c", "exit 0", NULL};
		char *const envp[] = {"PATH=/bin", NULL};
		fexecve(mfd, argv, envp);
		_exit(127);
	}
	close(mfd);
	assert_true(waitpid(w.child, &wst, 0) == w.child);
	assert_true(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
	read_until_seen(ev, &w);
	assert_non_null(w.r.executable_path);
	printf("# a gone memfd process: %s\n", w.r.executable_path);
	assert_string_equal(w.r.executable_path, "/memfd:de-sensor-gone");
	assert_false(w.r.file_exists);
	close_sensor(ev, w.col, &w.r);
}

static void test_no_btf(void **state)
{
	(void)state;
	struct de_bpfevents_options o;
	struct de_bpfevents *ev = NULL;
	struct de_error err = {0};

	if (!can_load())
		return;
	de_bpfevents_options_default(&o);
	o.btf_path = "/nonexistent/vmlinux";
	assert_int_equal(de_bpfevents_open(&o, &ev, &err), -ENOENT);
	assert_null(ev);
	assert_non_null(strstr(err.message, "no BTF type information"));
	printf("# %s\n", err.message);
}

static void test_verifier_refuses(void **state)
{
	(void)state;
	const char *broken = getenv("DE_BROKEN_BPF_OBJECT");
	struct de_bpfevents_options o;
	struct de_bpfevents *ev = NULL;
	struct de_error err = {0};

	if (!can_load())
		return;
	assert_non_null(broken);
	de_bpfevents_options_default(&o);
	o.object_path = broken;
	assert_int_equal(de_bpfevents_open(&o, &ev, &err), -EINVAL);
	assert_null(ev);
	assert_non_null(strstr(err.message, "failed the kernel's verification"));
	printf("# %s\n", err.message);
	/* bad settings are refused before anything is loaded */
	de_bpfevents_options_default(&o);
	o.ringbuf_kb = 12;
	assert_int_equal(de_bpfevents_open(&o, &ev, &err), -EINVAL);
	o.ringbuf_kb = 8;
	o.argv_max = 10;
	assert_int_equal(de_bpfevents_open(&o, &ev, &err), -EINVAL);
}

/* In a child: drop to nobody, or refuse bpf(2) by seccomp, then open; the
   exit status is 0 when the open failed with EPERM and a clear message. */
static void refused_in_child(bool seccomp_filter)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		struct de_bpfevents_options o;
		struct de_bpfevents *ev = NULL;
		struct de_error err = {0};
		if (seccomp_filter) {
			scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
			if (!ctx ||
			    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM),
					     seccomp_syscall_resolve_name("bpf"), 0) < 0 ||
			    seccomp_load(ctx) < 0)
				_exit(3);
			seccomp_release(ctx);
		} else if (setgid(65534) < 0 || setuid(65534) < 0) {
			_exit(4);
		}
		de_bpfevents_options_default(&o);
		int rc = de_bpfevents_open(&o, &ev, &err);
		printf("# %s: %s\n", seccomp_filter ? "seccomp" : "nobody", err.message);
		fflush(stdout);
		_exit(rc == -EPERM && !ev && strstr(err.message, "refused to load eBPF") ? 0 : 1);
	}
	assert_true(waitpid(pid, &st, 0) == pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_refused(void **state)
{
	(void)state;
	if (!can_load())
		return;
	refused_in_child(false);
	refused_in_child(true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_load_peak_stays_in_child),
		cmocka_unit_test(test_exec_fork_exit),
		cmocka_unit_test(test_overrun_is_counted),
		cmocka_unit_test(test_wake_gap_policy),
		cmocka_unit_test(test_wake_gap_while_running),
		cmocka_unit_test(test_exec_facts_match_proc),
		cmocka_unit_test(test_exec_env_bounds),
		cmocka_unit_test(test_exec_record_of_gone_process),
		cmocka_unit_test(test_exec_memfd_image),
		cmocka_unit_test(test_exec_memfd_gone),
		cmocka_unit_test(test_no_btf),
		cmocka_unit_test(test_verifier_refuses),
		cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
