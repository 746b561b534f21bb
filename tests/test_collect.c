/*
 * test_collect.c — /proc collection against real child processes: exact
 * argv with hostile bytes, a 128 KiB command line, a deleted executable, an
 * executable whose real name ends in " (deleted)", a process that is gone
 * (also between the listing of /proc and its read), the CPU share of a
 * busy child against bounds measured beside it, and a full scan that sees
 * ourselves.  Every child is started here and reaped by its pid.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdbool.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "daemoneye/collect.h"
#include "daemoneye/mask.h"
#include "daemoneye/text.h"

#define DE_TEST_NAME "collect"
#include "testutil.h"

/*
 * Start `path` with argv and return its pid once exec has happened (the
 * CLOEXEC pipe closes on a successful exec).  With `input`, the child's
 * stdin is a pipe whose write end is returned there, so that `sh -c 'read
 * x'` waits, keeping its argv, until the test closes it.
 */
static pid_t spawn_in(const char *path, char *const argv[], int *input)
{
	int p[2], in[2] = {-1, -1};
	char c;
	pid_t pid;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	if (input)
		assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* gone with a failed test, too */
		if (input)
			dup2(in[0], 0); /* dup2 clears CLOEXEC on fd 0 */
		execv(path, argv);
		_exit(127);
	}
	close(p[1]);
	assert_int_equal(read(p[0], &c, 1), 0);
	close(p[0]);
	/* the exec closed the pipe before it set the new image's arguments up
	   (load_elf_binary: begin_new_exec, then the stack): until then
	   /proc/PID/cmdline is empty */
	char path_cl[64], buf[16];
	snprintf(path_cl, sizeof(path_cl), "/proc/%d/cmdline", (int)pid);
	for (int i = 0; i < 5000; i++) {
		int fd = open(path_cl, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
		if (fd >= 0)
			close(fd);
		if (n != 0)
			break;
		usleep(1000);
	}
	if (input) {
		close(in[0]);
		*input = in[1];
	}
	return pid;
}

static pid_t spawn(const char *path, char *const argv[])
{
	return spawn_in(path, argv, NULL);
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void copy_file(const char *from, const char *to)
{
	char cmd[PATH_MAX * 2 + 16];
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
	assert_int_equal(system(cmd), 0);
}

static void read_pid(pid_t pid, struct de_process_record *r)
{
	struct de_collector *c;
	struct de_error e = {0};
	assert_int_equal(de_collector_open(NULL, &c, &e), 0);
	assert_int_equal(de_collector_read(c, pid, 5, r, &e), 0);
	de_collector_close(c);
}

static void test_hostile_argv(void **state)
{
	(void)state;
	struct de_process_record r;
	pid_t pid;

	/* a shell waiting on stdin keeps its argv as given */
	char *w_argv[] = {"sh",		  "-c",		  "read x", "a\nb", "quote\"back\\slash",
			  "\x01\x1b[31m", "\xff\xfe bad", "",	    NULL};
	int in;
	pid = spawn_in("/bin/sh", w_argv, &in);
	read_pid(pid, &r);
	assert_int_equal(r.command_line_len, 8);
	for (int i = 0; i < 8; i++)
		assert_string_equal(r.command_line[i], w_argv[i]);
	assert_int_equal(r.pid, (uint32_t)pid);
	assert_true(r.has_ppid);
	assert_int_equal(r.ppid, (uint32_t)getpid());
	assert_true(r.accessible);
	assert_true(r.file_exists);
	assert_true(r.has_start_time);
	assert_true(r.start_time > 1600000000000LL);
	assert_true(r.has_memory_usage);
	char uid[16];
	snprintf(uid, sizeof(uid), "%u", getuid());
	assert_string_equal(r.user_id, uid);
	assert_non_null(r.executable_path);
	char real[PATH_MAX];
	assert_non_null(realpath("/bin/sh", real));
	assert_string_equal(r.executable_path, real);
	assert_false(r.facts.exe_deleted);
	assert_false(r.facts.kernel_thread);
	/* the record survives JSON exactly */
	json_t *j = de_process_record_to_json(&r);
	struct de_process_record back;
	assert_int_equal(de_process_record_from_json(j, &back, NULL), 0);
	assert_true(de_process_record_equal(&r, &back));
	de_process_record_clear(&back);
	json_decref(j);
	de_process_record_clear(&r);
	close(in);
	reap(pid);
}

static void test_huge_cmdline(void **state)
{
	(void)state;
	/* 128 KiB of arguments: four of 32 KiB (one argument may not exceed
	 * the kernel's MAX_ARG_STRLEN of 128 KiB including its NUL) */
	enum { PART = 32 * 1024, PARTS = 4 };
	char *parts[PARTS];
	char *argv[PARTS + 4] = {"sh", "-c", "read x", NULL};
	int in;
	struct de_process_record r;
	pid_t pid;

	for (int i = 0; i < PARTS; i++) {
		parts[i] = malloc(PART + 1);
		memset(parts[i], 'a' + i, PART);
		parts[i][PART] = '\0';
		argv[3 + i] = parts[i];
	}
	argv[3 + PARTS] = NULL;
	pid = spawn_in("/bin/sh", argv, &in);
	read_pid(pid, &r);
	assert_int_equal(r.command_line_len, 3 + PARTS);
	for (int i = 0; i < PARTS; i++)
		assert_string_equal(r.command_line[3 + i], parts[i]);
	assert_false(r.facts.cmdline_truncated);
	de_process_record_clear(&r);
	close(in);
	reap(pid);
	for (int i = 0; i < PARTS; i++)
		free(parts[i]);
}

static void test_deleted_executable(void **state)
{
	(void)state;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/victim-sleep", tmpdir);
	copy_file("/bin/sleep", path);
	char *argv[] = {"victim-sleep", "30", NULL};
	pid_t pid = spawn(path, argv);
	struct de_process_record r;

	read_pid(pid, &r);
	assert_string_equal(r.executable_path, path);
	assert_true(r.file_exists);
	assert_false(r.facts.exe_deleted);
	de_process_record_clear(&r);

	assert_int_equal(unlink(path), 0);
	read_pid(pid, &r);
	assert_string_equal(r.executable_path, path); /* suffix removed */
	assert_false(r.file_exists);
	assert_true(r.facts.exe_deleted);
	assert_false(r.facts.exe_replaced);
	de_process_record_clear(&r);

	/* a different file now at the path: replaced */
	copy_file("/bin/true", path);
	read_pid(pid, &r);
	assert_true(r.file_exists);
	assert_true(r.facts.exe_replaced);
	de_process_record_clear(&r);
	unlink(path);
	reap(pid);
}

static void test_name_with_deleted_suffix(void **state)
{
	(void)state;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/my prog (deleted)", tmpdir);
	copy_file("/bin/sleep", path);
	char *argv[] = {"x", "30", NULL};
	pid_t pid = spawn(path, argv);
	struct de_process_record r;

	read_pid(pid, &r);
	assert_string_equal(r.executable_path, path); /* a real name is kept whole */
	assert_true(r.file_exists);
	assert_false(r.facts.exe_deleted);
	/* comm holds 15 bytes; the name is the executable's full name */
	assert_string_equal(r.facts.comm, "my prog (delete");
	assert_string_equal(r.name, "my prog (deleted)");
	de_process_record_clear(&r);
	reap(pid);
	unlink(path);
}

static void test_gone_process(void **state)
{
	(void)state;
	char *argv[] = {"true", NULL};
	pid_t pid = spawn("/bin/true", argv);
	struct de_collector *c;
	struct de_process_record r;
	struct de_error e = {0};

	waitpid(pid, NULL, 0);
	assert_int_equal(de_collector_open(NULL, &c, &e), 0);
	assert_int_equal(de_collector_read(c, pid, 1, &r, &e), -ESRCH);
	de_collector_close(c);
}

static void test_zombie(void **state)
{
	(void)state;
	char *argv[] = {"true", NULL};
	pid_t pid = spawn("/bin/true", argv);
	struct de_process_record r;
	siginfo_t si;

	/* wait for exit without reaping: a zombie */
	assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
	read_pid(pid, &r);
	assert_int_equal(r.facts.state, 'Z');
	assert_null(r.executable_path);
	assert_int_equal(r.command_line_len, 0);
	de_process_record_clear(&r);
	waitpid(pid, NULL, 0);
}

static void sha256sum(const char *path, char out[65])
{
	char cmd[PATH_MAX + 32];
	snprintf(cmd, sizeof(cmd), "sha256sum '%s'", path);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%64s", out), 1);
	pclose(p);
}

static void test_hash_matches_sha256sum(void **state)
{
	(void)state;
	char path[PATH_MAX], want[65];
	snprintf(path, sizeof(path), "%s/hashed-sleep", tmpdir);
	copy_file("/bin/sleep", path);
	sha256sum(path, want);
	char *argv[] = {"hashed-sleep", "30", NULL};
	pid_t pid = spawn(path, argv);
	struct de_collector *c;
	struct de_process_record r;
	struct de_error e = {0};

	assert_int_equal(de_collector_open(NULL, &c, &e), 0);
	assert_int_equal(de_collector_read(c, pid, 1, &r, &e), 0);
	assert_non_null(r.executable_hash);
	assert_string_equal(r.executable_hash, want);
	assert_string_equal(r.hash_algorithm, "sha256");
	assert_null(r.facts.hash_error);
	de_process_record_clear(&r);
	/* warm: the same image again costs no bytes */
	uint64_t before = de_collector_hashed_bytes(c);
	assert_true(before > 0);
	assert_int_equal(de_collector_read(c, pid, 2, &r, &e), 0);
	assert_string_equal(r.executable_hash, want);
	assert_int_equal(de_collector_hashed_bytes(c), before);
	de_process_record_clear(&r);
	/* deleted: the running image is still hashed, through /proc/PID/exe */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(de_collector_read(c, pid, 3, &r, &e), 0);
	assert_true(r.facts.exe_deleted);
	assert_non_null(r.executable_hash);
	assert_string_equal(r.executable_hash, want);
	de_process_record_clear(&r);
	/* a zero-length file now at the path: replaced too; the image keeps its
	 * hash (the new file's would be e3b0c442...) */
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(de_collector_read(c, pid, 4, &r, &e), 0);
	assert_true(r.file_exists);
	assert_true(r.facts.exe_replaced);
	assert_true(r.facts.exe_deleted);
	assert_string_equal(r.executable_hash, want);
	de_process_record_clear(&r);
	de_collector_close(c);
	reap(pid);
	unlink(path);
}

static void test_hash_disabled_and_limited(void **state)
{
	(void)state;
	char *argv[] = {"sleep", "30", NULL};
	pid_t pid = spawn("/bin/sleep", argv);
	struct de_collector *c;
	struct de_collect_options o;
	struct de_process_record r;
	struct de_error e = {0};

	assert_int_equal(de_collector_open(NULL, &c, &e), 0);
	de_collect_options_default(&o);
	o.max_hash_size = 1000; /* smaller than any sleep */
	assert_int_equal(de_collector_configure(c, &o, &e), 0);
	assert_int_equal(de_collector_read(c, pid, 1, &r, &e), 0);
	assert_null(r.executable_hash);
	assert_null(r.hash_algorithm);
	assert_string_equal(r.facts.hash_error, "larger than the size limit");
	de_process_record_clear(&r);
	o.hash = false;
	assert_int_equal(de_collector_configure(c, &o, &e), 0);
	assert_int_equal(de_collector_read(c, pid, 1, &r, &e), 0);
	assert_null(r.executable_hash);
	de_process_record_clear(&r);
	de_collector_close(c);
	reap(pid);
}

/*
 * An executable nobody may read (mode 0111): the process runs, is not
 * dumpable, and a collector running as the same unprivileged user records
 * it with accessible=false and no hash.  As root both sides run as nobody
 * in a child; the verdict comes back as the exit status.
 */
static void test_unreadable_executable(void **state)
{
	(void)state;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/noread", tmpdir);
	copy_file("/bin/sleep", path);
	assert_int_equal(chmod(path, 0111), 0);
	assert_int_equal(chmod(tmpdir, 0755), 0);
	bool root = geteuid() == 0;
	pid_t checker = fork();
	assert_true(checker >= 0);
	if (checker == 0) {
		if (root && (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
			     setresuid(65534, 65534, 65534) < 0))
			_exit(10);
		int p[2];
		char ch;
		if (pipe2(p, O_CLOEXEC) < 0)
			_exit(11);
		pid_t victim = fork();
		if (victim == 0) {
			/* through sh, so that valgrind's own exec check (which
			 * reads the file) is not in the way */
			char cmd[PATH_MAX + 16];
			snprintf(cmd, sizeof(cmd), "exec '%s' 30", path);
			char *argv[] = {"sh", "-c", cmd, NULL};
			execv("/bin/sh", argv);
			_exit(127);
		}
		close(p[1]);
		if (read(p[0], &ch, 1) != 0)
			_exit(12);
		/* wait for sh to exec the victim (comm becomes "noread") */
		char comm_path[64], comm[32] = "";
		snprintf(comm_path, sizeof(comm_path), "/proc/%d/comm", (int)victim);
		for (int i = 0; i < 12000 && strcmp(comm, "noread\n") != 0; i++) {
			FILE *f = fopen(comm_path, "re");
			if (!f || !fgets(comm, sizeof(comm), f))
				comm[0] = '\0';
			if (f)
				fclose(f);
			usleep(5000);
		}
		struct de_collector *c;
		struct de_process_record r;
		struct de_error e = {0};
		int code = 0;
		if (de_collector_open(NULL, &c, &e) < 0 ||
		    de_collector_read(c, victim, 1, &r, &e) < 0)
			code = 13;
		else if (r.accessible || r.executable_hash)
			code = 14;
		else if (strcmp(r.name, "noread") != 0)
			code = 15;
		if (code != 13) {
			de_process_record_clear(&r);
			de_collector_close(c);
		}
		kill(victim, SIGKILL);
		waitpid(victim, NULL, 0);
		_exit(code);
	}
	int st;
	assert_int_equal(waitpid(checker, &st, 0), checker);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	chmod(tmpdir, 0700);
	unlink(path);
}

/* Field n (numbered as in proc(5), n >= 4) of /proc/PID/stat. */
static unsigned long long proc_stat_field(pid_t pid, int n)
{
	char path[64], buf[1024];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	const char *p = strrchr(buf, ')'); /* then " state ppid ...": field 3 on */
	assert_non_null(p);
	p += 2;
	for (int i = 3; i < n; i++) {
		p = strchr(p, ' ');
		assert_non_null(p);
		p++;
	}
	assert_int_equal(sscanf(p, "%llu", &v), 1);
	return v;
}

/* utime + stime of pid, in clock ticks. */
static unsigned long long proc_cpu_ticks(pid_t pid)
{
	return proc_stat_field(pid, 14) + proc_stat_field(pid, 15);
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * cpu_usage of a busy-looping child, between two reads of it, is what the
 * child did: it lies between bounds computed here from the same counters
 * (utime + stime, CLOCK_MONOTONIC) read just before and just after each of
 * the collector's reads, which are at least 20 ticks of the child's work
 * apart.  So it is above 0, and at most what one thread can do (one
 * processor's worth of the wall time, of ncpu) with a tick of rounding.
 */
static void test_cpu_usage(void **state)
{
	(void)state;
	char *argv[] = {"sh", "-c", "while :; do :; done", NULL};
	pid_t pid = spawn("/bin/sh", argv);
	struct de_collector *c;
	struct de_process_record r;
	struct de_error e = {0};
	const double tck = (double)sysconf(_SC_CLK_TCK);
	const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	assert_int_equal(de_collector_open(NULL, &c, &e), 0);
	unsigned long long t0 = proc_cpu_ticks(pid);
	double m0 = mono_s();
	assert_int_equal(de_collector_read(c, pid, 1, &r, &e), 0);
	double m1 = mono_s();
	unsigned long long t1 = proc_cpu_ticks(pid);
	assert_false(r.has_cpu_usage); /* first sample of this instance */
	de_process_record_clear(&r);
	/* the child's own work is the signal to wait for (60 s bound a hang) */
	for (int i = 0; i < 6000 && proc_cpu_ticks(pid) < t1 + 20; i++)
		usleep(10000);
	unsigned long long t2 = proc_cpu_ticks(pid);
	assert_true(t2 >= t1 + 20);
	double m2 = mono_s();
	assert_int_equal(de_collector_read(c, pid, 2, &r, &e), 0);
	double m3 = mono_s();
	unsigned long long t3 = proc_cpu_ticks(pid);
	assert_true(r.has_cpu_usage);
	assert_true(r.cpu_usage >= 0.0);
	assert_true(r.cpu_usage <= 100.0 * 64);
	/* the collector sampled ticks in [t0, t1] then [t2, t3], at times in
	   [m0, m1] then [m2, m3] */
	double lo = (double)(t2 - t1) / tck / (m3 - m0) * 100.0;
	double hi = (double)(t3 - t0) / tck / (m2 - m1) * 100.0;
	print_message("cpu_usage %.2f %% (between %.2f and %.2f; %ld processors)\n", r.cpu_usage,
		      lo, hi, ncpu);
	assert_true(lo > 0.0);
	assert_true(r.cpu_usage >= lo * (1 - 1e-9));
	assert_true(r.cpu_usage <= hi * (1 + 1e-9));
	/* what is possible at all: one thread works at most the wall time
	   between the reads (plus a tick of rounding), on one of ncpu
	   processors */
	double one_thread = 100.0 * ((m3 - m0) * tck + 1.0) / ((m2 - m1) * tck);
	assert_true(ncpu >= 1);
	assert_true(r.cpu_usage <= one_thread);
	assert_true(r.cpu_usage <= one_thread * (double)ncpu);
	de_process_record_clear(&r);
	/* the scan keeps the samples: the instance has cpu_usage there too */
	struct de_process_list l = {0};
	assert_int_equal(de_collector_scan(c, 3, &l, NULL, &e), 0);
	bool found = false;
	for (size_t i = 0; i < l.len; i++)
		if (l.items[i].pid == (uint32_t)pid) {
			found = true;
			assert_true(l.items[i].has_cpu_usage);
		}
	assert_true(found);
	de_process_list_clear(&l);
	de_collector_close(c);
	reap(pid);
}

static void test_masked_command_line(void **state)
{
	(void)state;
	char *argv[] = {"sh",	   "-c",	  "read x",    "--password",
			"hunter2", "--token=abc", "API_KEY=k", NULL};
	int in;
	pid_t pid = spawn_in("/bin/sh", argv, &in);
	struct de_collector *c;
	struct de_collect_options o;
	struct de_process_record r;
	struct de_error e = {0};

	assert_int_equal(de_collector_open(NULL, &c, &e), 0);
	assert_int_equal(de_collector_read(c, pid, 1, &r, &e), 0);
	assert_int_equal(r.command_line_len, 7);
	assert_string_equal(r.command_line[3], "--password");
	assert_string_equal(r.command_line[4], DE_MASK_STRING);
	assert_string_equal(r.command_line[5], "--token=" DE_MASK_STRING);
	assert_string_equal(r.command_line[6], "API_KEY=" DE_MASK_STRING);
	assert_int_equal(r.facts.cmdline_masked, 3);
	de_process_record_clear(&r);
	/* only an explicit setting turns masking off */
	de_collect_options_default(&o);
	o.mask = false;
	assert_int_equal(de_collector_configure(c, &o, &e), 0);
	assert_int_equal(de_collector_read(c, pid, 2, &r, &e), 0);
	assert_string_equal(r.command_line[4], "hunter2");
	de_process_record_clear(&r);
	de_collector_close(c);
	close(in);
	reap(pid);
}

struct reaper {
	const pid_t *kids;
	int n;
};

static void *reap_kids(void *arg)
{
	const struct reaper *r = arg;
	for (int i = 0; i < r->n; i++)
		waitpid(r->kids[i], NULL, 0);
	return NULL;
}

/*
 * Children that exit, and are reaped while the scan reads /proc, are
 * recorded as they were when read or dropped, never a failure: the counts
 * add up.  Once reaped they are gone (a zombie still has its /proc entry; a
 * reaped child has none): the next scan records none of them.
 */
static void test_scan_under_churn(void **state)
{
	(void)state;
	enum { N = 200 };
	pid_t kids[N];
	struct de_collector *c;
	struct de_error e = {0};

	assert_int_equal(de_collector_open(NULL, &c, &e), 0);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < N; i++) {
			kids[i] = fork();
			assert_true(kids[i] >= 0);
			if (kids[i] == 0)
				_exit(0);
		}
		struct reaper rp = {kids, N};
		pthread_t th;
		assert_int_equal(pthread_create(&th, NULL, reap_kids, &rp), 0);
		struct de_process_list l = {0};
		struct de_collect_stats st;
		assert_int_equal(de_collector_scan(c, round, &l, &st, &e), 0);
		assert_int_equal(st.recorded, l.len);
		assert_int_equal(st.seen, st.recorded + st.vanished);
		de_process_list_clear(&l);
		assert_int_equal(pthread_join(th, NULL), 0);

		/* all reaped now: none of them is there */
		assert_int_equal(de_collector_scan(c, 100 + round, &l, &st, &e), 0);
		assert_int_equal(st.seen, st.recorded + st.vanished);
		for (size_t j = 0; j < l.len; j++)
			for (int i = 0; i < N; i++)
				assert_false(l.items[j].pid == (uint32_t)kids[i] &&
					     l.items[j].has_ppid &&
					     l.items[j].ppid == (uint32_t)getpid());
		de_process_list_clear(&l);
	}
	de_collector_close(c);
}

/*
 * A process that /proc lists but that is gone when it is read is dropped
 * and counted as vanished, never a failure.  The listing here is a
 * directory of links to /proc/PID for children of ours: N alive (blocked on
 * a pipe) and N reaped after their links were made, whose /proc entries are
 * gone as after an exit between readdir and read.  Every one of them is
 * counted, the live ones recorded, the reaped ones vanished.
 */
static void test_vanished_while_scanning(void **state)
{
	(void)state;
	enum { N = 5 };
	char root[PATH_MAX], link[PATH_MAX + 32], target[64];
	pid_t live[N], dead[N];
	int hold[2];
	struct de_collector *c;
	struct de_process_list l = {0};
	struct de_collect_stats st;
	struct de_error e = {0};

	snprintf(root, sizeof(root), "%s/vproc", tmpdir);
	assert_int_equal(mkdir(root, 0700), 0);
	snprintf(link, sizeof(link), "%s/stat", root);
	assert_int_equal(symlink("/proc/stat", link), 0);
	assert_int_equal(pipe2(hold, O_CLOEXEC), 0);
	for (int i = 0; i < N; i++) {
		char ch;
		live[i] = fork();
		assert_true(live[i] >= 0);
		if (live[i] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL); /* gone with a failed test */
			close(hold[1]);
			_exit(read(hold[0], &ch, 1) == 0 ? 0 : 1);
		}
		dead[i] = fork();
		assert_true(dead[i] >= 0);
		if (dead[i] == 0)
			_exit(0);
	}
	close(hold[0]);
	for (int i = 0; i < 2 * N; i++) {
		pid_t p = i < N ? live[i] : dead[i - N];
		snprintf(target, sizeof(target), "/proc/%d", (int)p);
		snprintf(link, sizeof(link), "%s/%d", root, (int)p);
		assert_int_equal(symlink(target, link), 0);
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(waitpid(dead[i], NULL, 0), dead[i]);
		snprintf(target, sizeof(target), "/proc/%d", (int)dead[i]);
		assert_int_equal(access(target, F_OK), -1); /* reaped: no entry */
	}

	assert_int_equal(de_collector_open(root, &c, &e), 0);
	assert_int_equal(de_collector_scan(c, 1, &l, &st, &e), 0);
	assert_int_equal(st.seen, 2 * N);
	assert_int_equal(st.vanished, N);
	assert_int_equal(st.recorded, N);
	assert_int_equal(l.len, N);
	for (size_t j = 0; j < l.len; j++) {
		bool is_live = false;
		for (int i = 0; i < N; i++)
			is_live = is_live || l.items[j].pid == (uint32_t)live[i];
		assert_true(is_live);
		assert_int_equal(l.items[j].ppid, (uint32_t)getpid());
	}
	de_process_list_clear(&l);
	/* and one by one: gone is -ESRCH */
	assert_int_equal(de_collector_read(c, dead[0], 2, &(struct de_process_record){0}, &e),
			 -ESRCH);
	de_collector_close(c);
	close(hold[1]);
	for (int i = 0; i < N; i++) {
		int ws;
		assert_int_equal(waitpid(live[i], &ws, 0), live[i]);
		assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	}
}

/* platform_data[key] (the JSON form of the facts) as an integer, -1 when
   absent. */
static long long pd_int(const struct de_process_record *r, const char *key)
{
	json_t *pd = de_process_record_platform_json(r);
	json_t *v = json_object_get(pd, key);
	long long x = json_is_integer(v) ? (long long)json_integer_value(v) : -1;

	json_decref(pd);
	return x;
}

/* Wait until /proc/PID/comm reads `comm` (an exec through sh has happened). */
static void wait_comm(pid_t pid, const char *comm)
{
	char path[64], want[32], got[32] = "";
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	snprintf(want, sizeof(want), "%s\n", comm);
	for (int i = 0; i < 12000 && strcmp(got, want) != 0; i++) {
		FILE *f = fopen(path, "re");
		if (!f || !fgets(got, sizeof(got), f))
			got[0] = '\0';
		if (f)
			fclose(f);
		usleep(5000);
	}
	assert_string_equal(got, want);
}

static void put_file(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* root/PID/stat := text, in a fake /proc. */
static void put_stat(const char *root, int pid, const char *text)
{
	char dir[PATH_MAX + 16];
	snprintf(dir, sizeof(dir), "%s/%d", root, pid);
	assert_int_equal(mkdir(dir, 0700), 0);
	put_file(dir, "stat", text);
}

/*
 * stat is parsed by hand: a comm holding ") " and digits, negative fields,
 * and truncated or garbled lines (dropped, never a crash), read from a
 * made-up proc root.
 */
static void test_stat_parsing(void **state)
{
	(void)state;
	char root[PATH_MAX];
	struct de_collector *c;
	struct de_process_list l = {0};
	struct de_collect_stats st;
	struct de_error e = {0};

	snprintf(root, sizeof(root), "%s/proc", tmpdir);
	assert_int_equal(mkdir(root, 0700), 0);
	put_file(root, "stat", "cpu 1 2 3\nbtime 1700000000\n");
	put_stat(root, 100,
		 "100 (a) S 9 (b) R 1 2 3) T 7 100 101 34817 -1 4194304 0 0 0 0 5 6 0 0 20 -3 2 0 "
		 "12345 1000 77 18446744073709551615 4194304 4200000 140737488351232 0 0 0 0 0 "
		 "0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n");
	put_stat(root, 101, "101 (x) S 1 2 3 4");
	put_stat(root, 102, "102 (x) S 1 2 3 0 -1 abc\n");
	put_stat(root, 103, "103 (no closing paren S 1 2 3\n");
	/* out-of-range numbers wrap, never overflow */
	put_stat(root, 104,
		 "104 (big) R -9223372036854775808 0 0 0 0 0 0 0 0 0 99999999999999999999999 "
		 "18446744073709551615 0 0 0 -9223372036854775808 -18446744073709551615 0 1 0 "
		 "-1\n");

	assert_int_equal(de_collector_open(root, &c, &e), 0);
	assert_int_equal(de_collector_scan(c, 1, &l, &st, &e), 0);
	assert_int_equal(st.seen, 5);
	assert_int_equal(st.recorded, 2);
	assert_int_equal(l.len, 2);
	/* a made-up directory lists in no particular order */
	struct de_process_record *r = &l.items[l.items[0].pid == 100 ? 0 : 1];
	struct de_process_record *big = &l.items[l.items[0].pid == 100 ? 1 : 0];
	assert_int_equal(big->pid, 104);
	assert_string_equal(big->name, "big");
	assert_int_equal(r->pid, 100);
	assert_string_equal(r->name, "a) S 9 (b) R 1 2 3");
	assert_true(r->has_ppid);
	assert_int_equal(r->ppid, 7);
	assert_int_equal(r->facts.state, 'T');
	assert_int_equal(pd_int(r, "pgrp"), 100);
	assert_int_equal(pd_int(r, "session"), 101);
	assert_int_equal(pd_int(r, "tty_nr"), 34817);
	assert_int_equal(pd_int(r, "nice"), -3);
	assert_int_equal(pd_int(r, "threads"), 2);
	assert_int_equal(pd_int(r, "utime_ticks"), 5);
	assert_int_equal(pd_int(r, "stime_ticks"), 6);
	assert_int_equal(pd_int(r, "start_ticks"), 12345);
	assert_false(r->facts.kernel_thread);
	assert_int_equal(r->memory_usage, 77u * (uint64_t)sysconf(_SC_PAGESIZE));
	assert_int_equal(r->start_time, 1700000000000LL + 12345LL * 1000 / sysconf(_SC_CLK_TCK));
	de_process_list_clear(&l);
	de_collector_close(c);
}

/*
 * user_id is the effective uid (the owner of /proc/PID, as ps's uid column);
 * platform_data has euid and egid, and the real uid and gid only for a
 * set-id image.  As root: a process that dropped to nobody without exec
 * (and so is not dumpable) still shows nobody, and a setuid-root image run
 * by nobody shows euid 0 with real uid nobody.
 */
static void test_ids(void **state)
{
	(void)state;
	struct de_process_record r;
	char want[16];
	int in, sync[2];
	char *argv[] = {"sh", "-c", "read x", NULL};
	pid_t pid = spawn_in("/bin/sh", argv, &in);

	read_pid(pid, &r);
	snprintf(want, sizeof(want), "%u", (unsigned)geteuid());
	assert_string_equal(r.user_id, want);
	assert_int_equal(pd_int(&r, "euid"), (long long)geteuid());
	assert_int_equal(pd_int(&r, "egid"), (long long)getegid());
	assert_false(r.facts.has_real_ids);
	assert_int_equal(pd_int(&r, "uid"), -1);
	assert_int_equal(pd_int(&r, "gid"), -1);
	de_process_record_clear(&r);
	close(in);
	reap(pid);
	if (geteuid() != 0)
		return;

	/* dropped to nobody without exec: not dumpable, /proc/PID still says so */
	assert_int_equal(pipe2(sync, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
		    setresuid(65534, 65534, 65534) < 0)
			_exit(1);
		close(sync[1]);
		for (;;)
			pause();
	}
	close(sync[1]);
	char ch;
	assert_int_equal(read(sync[0], &ch, 1), 0);
	close(sync[0]);
	read_pid(pid, &r);
	assert_string_equal(r.user_id, "65534");
	assert_int_equal(pd_int(&r, "euid"), 65534);
	assert_int_equal(pd_int(&r, "egid"), 65534);
	de_process_record_clear(&r);
	reap(pid);

	/* a setuid-root copy of sleep run by nobody: euid 0, real uid 65534 */
	char path[PATH_MAX], cmd[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/suid", tmpdir);
	copy_file("/bin/sleep", path);
	assert_int_equal(chown(path, 0, 0), 0);
	assert_int_equal(chmod(path, 04755), 0);
	assert_int_equal(chmod(tmpdir, 0755), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
		    setresuid(65534, 65534, 65534) < 0)
			_exit(1);
		/* through sh, so that valgrind's exec check is not in the way */
		snprintf(cmd, sizeof(cmd), "exec '%s' 30", path);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	wait_comm(pid, "suid");
	read_pid(pid, &r);
	assert_string_equal(r.user_id, "0");
	assert_int_equal(pd_int(&r, "euid"), 0);
	assert_int_equal(pd_int(&r, "uid"), 65534);
	assert_int_equal(pd_int(&r, "gid"), 65534);
	assert_int_equal(pd_int(&r, "egid"), 65534);
	de_process_record_clear(&r);
	reap(pid);
	chmod(tmpdir, 0700);
	unlink(path);
}

/* CLOCK_BOOTTIME in clock ticks (the unit of a process's start time). */
static unsigned long long boottime_ticks(void)
{
	struct timespec ts;
	unsigned long long hz = (unsigned long long)sysconf(_SC_CLK_TCK);
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (unsigned long long)ts.tv_sec * hz +
	       (unsigned long long)ts.tv_nsec * hz / 1000000000ULL;
}

/* The path of the "0::" line of /proc/PID/cgroup (exact bytes), or "". */
static void proc_cgroup_v2(pid_t pid, char *out, size_t size)
{
	char path[64], line[8192];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	FILE *f = fopen(path, "re");
	assert_non_null(f);
	out[0] = '\0';
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(out, size, "%s", line + 3);
		}
	fclose(f);
}

/* platform_data.cgroup of r is exactly `want` (escaped + _raw if not UTF-8). */
static void assert_cgroup(const struct de_process_record *r, const char *want)
{
	json_t *pd = de_process_record_platform_json(r);
	json_t *v = json_object_get(pd, "cgroup");
	json_t *raw = json_object_get(pd, "cgroup_raw");

	if (!*want) {
		assert_null(v);
		assert_null(r->facts.cgroup);
		json_decref(pd);
		return;
	}
	assert_string_equal(r->facts.cgroup, want);
	assert_true(json_is_string(v));
	if (de_utf8_valid(want, strlen(want))) {
		assert_string_equal(json_string_value(v), want);
		assert_null(raw);
		json_decref(pd);
		return;
	}
	char *esc = de_escape_text(want, strlen(want));
	assert_string_equal(json_string_value(v), esc);
	free(esc);
	assert_true(json_is_string(raw));
	unsigned char dec[8192];
	const char *b64 = json_string_value(raw);
	int n = EVP_DecodeBlock(dec, (const unsigned char *)b64, (int)strlen(b64));
	assert_true(n >= (int)strlen(want));
	assert_memory_equal(dec, want, strlen(want));
	json_decref(pd);
}

/* A cgroup2 mount of our namespace's root ("/" in mountinfo), or "". */
static void cgroup2_mount(char *out, size_t size)
{
	char line[4096], root[4096], mnt[4096];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	out[0] = '\0';
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, " - cgroup2 ") &&
		    sscanf(line, "%*s %*s %*s %4095s %4095s", root, mnt) == 2 &&
		    strcmp(root, "/") == 0 && !strchr(mnt, '\\')) {
			snprintf(out, size, "%s", mnt);
			break;
		}
	if (f)
		fclose(f);
}

/*
 * platform_data.cgroup is the cgroup v2 path /proc/PID/cgroup names, read
 * one by one (de_collector_read, the first processes of a scan) or from the
 * cgroup2 tree (the rest of a scan).  As root, a child moved into a cgroup
 * whose name holds quotes, a backslash, a control byte and invalid UTF-8
 * is recorded exactly both ways.
 */
static void test_cgroup(void **state)
{
	(void)state;
	struct de_process_record r;
	char want[8192], mnt[4096], dir[8192], procs[8300];
	char *argv[] = {"sh", "-c", "read x", NULL};
	int in;
	pid_t pid = spawn_in("/bin/sh", argv, &in);

	read_pid(pid, &r);
	proc_cgroup_v2(pid, want, sizeof(want));
	assert_cgroup(&r, want);
	de_process_record_clear(&r);

	cgroup2_mount(mnt, sizeof(mnt));
	snprintf(dir, sizeof(dir), "%s/de-test \"q\\b\x01\xff %d", mnt, (int)getpid());
	if (geteuid() != 0 || !mnt[0] || mkdir(dir, 0755) < 0) {
		print_message("cgroup: no writable cgroup2 mount, hostile name not tested\n");
		close(in);
		reap(pid);
		return;
	}
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
	FILE *f = fopen(procs, "we");
	assert_non_null(f);
	fprintf(f, "%d\n", (int)pid);
	assert_int_equal(fclose(f), 0);
	proc_cgroup_v2(pid, want, sizeof(want));
	assert_non_null(strstr(want, "de-test \"q\\b\x01\xff"));

	/* one by one */
	read_pid(pid, &r);
	assert_cgroup(&r, want);
	json_t *j = de_process_record_to_json(&r);
	struct de_process_record back;
	assert_int_equal(de_process_record_from_json(j, &back, NULL), 0);
	assert_true(de_process_record_equal(&r, &back));
	de_process_record_clear(&back);
	json_decref(j);
	de_process_record_clear(&r);

	/* from the tree: a scan that walks it after two processes */
	enum { IDLE = 3 };
	pid_t idle[IDLE];
	for (int i = 0; i < IDLE; i++) {
		idle[i] = fork();
		assert_true(idle[i] >= 0);
		if (idle[i] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL); /* gone with a failed test */
			for (;;)
				pause();
		}
	}
	/* the last one, read after pid 1 and 2 (or whatever comes first) */
	f = fopen(procs, "we");
	assert_non_null(f);
	fprintf(f, "%d\n", (int)idle[IDLE - 1]);
	assert_int_equal(fclose(f), 0);
	/* a process started in the walk's clock tick is read one by one: wait
	   until CLOCK_BOOTTIME, in clock ticks as the walk reads it, has left
	   the tick the last child started in */
	unsigned long long started = proc_stat_field(idle[IDLE - 1], 22);
	for (int i = 0; i < 60000 && boottime_ticks() <= started; i++)
		usleep(1000);
	assert_true(boottime_ticks() > started);
	struct de_collector *c;
	struct de_process_list l = {0};
	struct de_collect_stats st;
	struct de_error e = {0};
	struct de_collect_options o;
	assert_int_equal(de_collector_open(NULL, &c, &e), 0);
	de_collect_options_default(&o);
	assert_int_equal(o.cgroup_walk_after, 128);
	o.cgroup_walk_after = 2;
	assert_int_equal(de_collector_configure(c, &o, &e), 0);
	assert_int_equal(de_collector_scan(c, 1, &l, &st, &e), 0);
	assert_true(st.cgroup_reads < st.recorded);
	int checked = 0;
	for (size_t i = 0; i < l.len; i++) {
		bool ours = l.items[i].pid == (uint32_t)pid;
		for (int k = 0; k < IDLE && !ours; k++)
			ours = l.items[i].pid == (uint32_t)idle[k];
		if (!ours)
			continue;
		char now[8192];
		proc_cgroup_v2((pid_t)l.items[i].pid, now, sizeof(now));
		assert_cgroup(&l.items[i], now);
		checked++;
	}
	assert_int_equal(checked, IDLE + 1);
	de_process_list_clear(&l);
	de_collector_close(c);
	for (int i = 0; i < IDLE; i++)
		reap(idle[i]);
	close(in);
	reap(pid);
	assert_int_equal(rmdir(dir), 0);
}

/* Threads of this process named name (/proc/self/task/TID/comm); the
   collector's readers are named "de-reader". */
static int count_tasks(const char *name)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	char path[300], comm[64];
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
		FILE *f = fopen(path, "re");
		if (f && fgets(comm, sizeof(comm), f)) {
			comm[strcspn(comm, "\n")] = '\0';
			n += strcmp(comm, name) == 0;
		}
		if (f)
			fclose(f);
	}
	closedir(d);
	return n;
}

/* Every reader thread blocks SIGINT, SIGTERM and SIGHUP (at least). */
static void assert_readers_block_signals(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	char path[300], line[256];
	int checked = 0;

	assert_non_null(d);
	while ((de = readdir(d))) {
		bool reader = false, found = false;
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", de->d_name);
		FILE *f = fopen(path, "re");
		if (!f)
			continue; /* a hashing thread that just ended */
		while (fgets(line, sizeof(line), f)) {
			if (strcmp(line, "Name:\tde-reader\n") == 0)
				reader = true;
			if (reader && strncmp(line, "SigBlk:", 7) == 0) {
				unsigned long long m = strtoull(line + 7, NULL, 16);
				found = true;
				assert_true((m & (1ULL << (SIGINT - 1))) &&
					    (m & (1ULL << (SIGTERM - 1))) &&
					    (m & (1ULL << (SIGHUP - 1))));
			}
		}
		fclose(f);
		assert_true(found == reader);
		checked += reader;
	}
	closedir(d);
	assert_true(checked > 0);
}

/* l's records, with the pids of kids, in l's order, into out (n each). */
static size_t pick_kids(const struct de_process_list *l, const pid_t *kids, size_t nk,
			const struct de_process_record **out)
{
	size_t m = 0;
	for (size_t i = 0; i < l->len; i++)
		for (size_t k = 0; k < nk; k++)
			if (l->items[i].pid == (uint32_t)kids[k])
				out[m++] = &l->items[i];
	return m;
}

/*
 * A scan in several reader threads gives the records one thread gives, in
 * the same (/proc, ascending pid) order: on the first scan, a rescan
 * (stat alone) and a full refresh, over 300 children of ours (more than
 * the pool's minimum, so the readers are used).  The readers are really
 * there (threads - 1 of them), block signals, and threads = 1 starts none.
 */
static void test_threads_same_records(void **state)
{
	(void)state;
	enum { N = 300, T = 3 };
	static pid_t kids[N];
	static const struct de_process_record *ra[N], *rb[N];
	struct de_collector *one, *par;
	struct de_collect_options o;
	struct de_error e = {0};

	for (int i = 0; i < N; i++) {
		kids[i] = fork();
		assert_true(kids[i] >= 0);
		if (kids[i] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			for (;;)
				pause();
		}
	}
	assert_int_equal(de_collector_open(NULL, &one, &e), 0);
	assert_int_equal(de_collector_open(NULL, &par, &e), 0);
	de_collect_options_default(&o);
	assert_int_equal(o.threads, 0); /* auto by default */
	o.full_refresh_every = 3;	/* the third scan re-reads everything */
	o.threads = 1;
	assert_int_equal(de_collector_configure(one, &o, &e), 0);
	o.threads = T;
	assert_int_equal(de_collector_configure(par, &o, &e), 0);
	for (int scan = 1; scan <= 3; scan++) {
		struct de_process_list la = {0}, lb = {0};
		struct de_collect_stats sa, sb;
		assert_int_equal(de_collector_scan(one, scan, &la, &sa, &e), 0);
		/* threads = 1 starts none (par's are there after its first scan) */
		assert_int_equal(count_tasks("de-reader"), scan == 1 ? 0 : T - 1);
		assert_int_equal(de_collector_scan(par, scan, &lb, &sb, &e), 0);
		assert_int_equal(count_tasks("de-reader"), T - 1);
		assert_readers_block_signals();
		assert_int_equal(sb.recorded, lb.len);
		assert_int_equal(sb.seen, sb.recorded + sb.vanished);
		if (scan == 2)
			assert_true(sb.reused >= N && sa.reused >= N);
		else
			assert_true(sb.reused == 0 && sa.reused == 0);
		/* /proc order: ascending pids, in both */
		for (size_t i = 1; i < lb.len; i++)
			assert_true(lb.items[i - 1].pid < lb.items[i].pid);
		for (size_t i = 1; i < la.len; i++)
			assert_true(la.items[i - 1].pid < la.items[i].pid);
		assert_int_equal(pick_kids(&la, kids, N, ra), N);
		assert_int_equal(pick_kids(&lb, kids, N, rb), N);
		for (int i = 0; i < N; i++) {
			struct de_process_record *b = (struct de_process_record *)rb[i];
			/* what differs by design: the record's id and the time
			   it was read at; cpu_usage is measured over the time
			   between two samples, so only its presence */
			b->id = ra[i]->id;
			b->collection_time = ra[i]->collection_time;
			assert_int_equal(b->has_cpu_usage, ra[i]->has_cpu_usage);
			b->cpu_usage = ra[i]->cpu_usage;
			assert_true(de_process_record_equal(ra[i], b));
		}
		de_process_list_clear(&la);
		de_process_list_clear(&lb);
	}
	de_collector_close(par);
	de_collector_close(one);
	for (int i = 0; i < N; i++)
		reap(kids[i]);
}

/*
 * Auto threads: one per CPU no other task runs on (loadavg's running
 * count includes the caller), at least 1, at most DE_COLLECT_AUTO_THREADS;
 * what cannot be read counts as idle.
 */
static void test_auto_threads(void **state)
{
	(void)state;
	assert_int_equal(de_collect_auto_threads(2, "0.00 0.01 0.05 1/100 123\n"), 2);
	assert_int_equal(de_collect_auto_threads(2, "0.90 0.51 0.25 2/100 123\n"), 1);
	assert_int_equal(de_collect_auto_threads(2, "24.28 32.07 55.09 13/10327 545\n"), 1);
	assert_int_equal(de_collect_auto_threads(8, "0.00 0.01 0.05 1/100 123\n"), 4);
	assert_int_equal(de_collect_auto_threads(8, "2.00 2.00 2.00 3/100 123\n"), 4);
	assert_int_equal(de_collect_auto_threads(8, "6.00 6.00 6.00 7/100 123\n"), 2);
	assert_int_equal(de_collect_auto_threads(1, "0.00 0.01 0.05 1/100 123\n"), 1);
	assert_int_equal(de_collect_auto_threads(3, NULL), 3);
	assert_int_equal(de_collect_auto_threads(3, "garbage"), 3);
	assert_int_equal(de_collect_auto_threads(3, "0.1 0.2 0.3 x/1 1"), 3);
	assert_int_equal(de_collect_auto_threads(0, NULL), 1);
}

static void test_full_scan(void **state)
{
	(void)state;
	struct de_collector *c;
	struct de_process_list l = {0};
	struct de_collect_stats st;
	struct de_error e = {0};
	bool found_self = false;

	assert_int_equal(de_collector_open(NULL, &c, &e), 0);
	assert_int_equal(de_collector_scan(c, 42, &l, &st, &e), 0);
	assert_true(l.len >= 1);
	assert_int_equal(st.recorded, l.len);
	for (size_t i = 0; i < l.len; i++) {
		assert_int_equal(l.items[i].scan_id, 42);
		assert_non_null(l.items[i].name);
		if (l.items[i].pid == (uint32_t)getpid())
			found_self = true;
	}
	assert_true(found_self);
	de_process_list_clear(&l);
	de_collector_close(c);

	/* a proc root that is not there is the only scan failure */
	assert_true(de_collector_open("/nonexistent-proc", &c, &e) < 0);
	assert_int_equal(e.category, DE_ERR_IO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostile_argv),
		cmocka_unit_test(test_huge_cmdline),
		cmocka_unit_test(test_deleted_executable),
		cmocka_unit_test(test_name_with_deleted_suffix),
		cmocka_unit_test(test_gone_process),
		cmocka_unit_test(test_zombie),
		cmocka_unit_test(test_full_scan),
		cmocka_unit_test(test_threads_same_records),
		cmocka_unit_test(test_auto_threads),
		cmocka_unit_test(test_hash_matches_sha256sum),
		cmocka_unit_test(test_hash_disabled_and_limited),
		cmocka_unit_test(test_unreadable_executable),
		cmocka_unit_test(test_cpu_usage),
		cmocka_unit_test(test_masked_command_line),
		cmocka_unit_test(test_scan_under_churn),
		cmocka_unit_test(test_vanished_while_scanning),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_stat_parsing),
		cmocka_unit_test(test_cgroup),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
