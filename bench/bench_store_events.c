/*
 * bench_store_events.c — the exec path's share of the event store: batches
 * of real-time events (de_store_event_scan) as the agent applies them at
 * 1,000 execs per second, on a small live host.
 *
 *   bench_store_events DIR [BATCHES]   (DIR: a scratch directory)
 *
 * The host: 70 live processes from one full scan (bench_synth, shaped like
 * the collector's records).  Each batch then holds the execs of 8 new
 * processes and exits, in two schedules: the exits of the previous batch's
 * 8 processes in each batch (a process's exec and exit never share a
 * batch: the rules see it committed first), and the exits deferred as the
 * exec path does (src/agent/execcut.h): every DEFER batches (48 ms), those
 * of all the processes exec'd since.  Measured, for each:
 *   cpu per exec   the process's CPU time (the store's checkpointer thread
 *                  included, as in the agent) over BATCHES batches (750:
 *                  6 s), one every 8 ms (1,000 execs per second: when the
 *                  writer pauses matters to the checkpointer), per exec (an
 *                  exec's row and, later, its exit), the median of
 *                  3 runs on fresh files; and the largest the WAL file grew
 *                  (CKPT_MIB=N in the
 *                  environment: the checkpointer's threshold, 4 MiB as in
 *                  the agent)
 *   wal frames     pages each commit appends to the write-ahead log, and
 *                  the b-trees they belong to (a run without the
 *                  checkpointer; the log is then read back frame by frame
 *                  and each page named through SQLite's dbstat table)
 * No process is spawned (pids are numbers only).  No budget is judged here:
 * issue 14's budget is the whole agent's CPU per 1,000 execs
 * (bench_sensor.py --cpu-only); this isolates the store's part of it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "daemoneye/store.h"

#include "anchor.h"

#define LIVE  70 /* the live host */
#define BATCH 8	 /* processes per batch (EXECWAIT_PIDS) */
#define RUNS  3
/* deferred exits: applied every DEFER batches (48 ms at a batch every 8 ms:
   EXECCUT_DEFER_MS, 50, in src/agent/execcut.h) */
#define DEFER 6
/* a batch every 8 ms: 1,000 execs per second */
#define PACE_NS (8L * 1000 * 1000)

static void die(const char *what, const struct de_error *e)
{
	fprintf(stderr, "bench_store_events: %s: %s\n", what, e ? e->message : strerror(errno));
	exit(1);
}

static double proc_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The size of path's WAL file (0 when there is none). */
static long long wal_bytes(const char *path)
{
	char wal[4200];
	struct stat st;

	snprintf(wal, sizeof(wal), "%s-wal", path);
	return stat(wal, &st) == 0 ? (long long)st.st_size : 0;
}

/* ---- the host and its batches ------------------------------------------- */

static unsigned ckpt_mib = 4;
static char db_file[4096]; /* the store's file */
static long long wal_peak; /* the largest the WAL file was seen */
static double main_cpu_s;  /* the CPU time of the batches' own thread */

static struct de_store *fresh(const char *path, bool ckpt)
{
	struct de_store_config cfg = {.path = path,
				      .max_size_mb = 1000,
				      .wal_mode = true,
				      .max_connections = 1,
				      .sample_interval_s = 300};
	struct de_process_record r[LIVE];
	struct de_error e = {0};
	struct de_store *s = NULL;
	int64_t scan;

	bench_rm_db(path);
	if (de_store_open(&cfg, &s, &e) < 0)
		die("open", &e);
	if (de_store_scan_begin(s, 1800000000000LL, "poll", &scan, &e) < 0)
		die("scan", &e);
	bench_synth_all(r, LIVE, 1800000000000LL, scan);
	if (de_store_processes(s, scan, r, LIVE, &e) < 0 ||
	    de_store_scan_end(s, scan, 1800000000000LL, LIVE, &e) < 0)
		die("first scan", &e);
	bench_clear_all(r, LIVE);
	/* as the agent does (AGENT_WAL_CHECKPOINT_BYTES) */
	if (ckpt && de_store_background_checkpoints(s, (uint64_t)ckpt_mib << 20, &e) < 0)
		die("checkpointer", &e);
	return s;
}

/*
 * Apply n batches, one every pace_ns (0: back to back); the exits of the
 * processes exec'd are applied every defer batches, all of those exec'd
 * since the last such batch (1: each batch carries the previous batch's
 * exits, as before exits were deferred; DEFER: as the exec path defers
 * them, src/agent/execcut.h).  Returns the process CPU seconds they took.
 */
static double run_batches(struct de_store *s, int n, long pace_ns, int defer)
{
	struct timespec due;
	struct de_process_record r[BATCH];
	static struct de_process_event ev[DEFER * BATCH + BATCH];
	static uint32_t gone[DEFER * BATCH]; /* exec'd, their exits not applied yet */
	size_t ngone = 0;
	struct de_error e = {0};
	uint32_t pid = 1000;
	int64_t t = 1800000001000LL, scan;
	double c = proc_cpu_s(), m = bench_cpu_s();

	clock_gettime(CLOCK_MONOTONIC, &due);

	for (int b = 0; b < n; b++) {
		size_t k = 0, keep = 0;
		/* the exits due: with defer 1 the previous batch's processes;
		   otherwise every defer-th batch, all those exec'd before it */
		if (b % defer == 0) {
			for (size_t i = 0; i < ngone; i++)
				ev[k++] = (struct de_process_event){.kind = DE_PROCESS_EXIT,
								    .pid = gone[i],
								    .time_ms = t,
								    .has_exit_code = true};
		} else {
			keep = ngone;
		}
		ngone = keep;
		for (int i = 0; i < BATCH; i++) {
			if (++pid >= 30000)
				pid = 1000;
			bench_synth(&r[i], pid, t, 0, pid);
			r[i].start_time = t;
			ev[k++] = (struct de_process_event){.kind = DE_PROCESS_EXEC,
							    .pid = pid,
							    .time_ms = t,
							    .has_record = true,
							    .record = r[i]};
			gone[ngone++] = pid;
		}
		if (de_store_event_scan(s, t, ev, k, &scan, &e) < 0)
			die("batch", &e);
		bench_clear_all(r, BATCH);
		t += BATCH;
		if (b % 16 == 0) {
			long long w = wal_bytes(db_file);
			if (w > wal_peak)
				wal_peak = w;
		}
		if (pace_ns) {
			due.tv_nsec += pace_ns;
			due.tv_sec += due.tv_nsec / 1000000000L;
			due.tv_nsec %= 1000000000L;
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL);
		}
	}
	c = proc_cpu_s() - c;
	main_cpu_s = bench_cpu_s() - m;
	return c;
}

/* ---- the write-ahead log, frame by frame -------------------------------- */

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Count the frames of path's WAL by b-tree name (through dbstat). */
static void wal_frames(const char *path, int batches)
{
	char wal[4200];
	unsigned char hdr[32], fh[24];
	static uint32_t pages[200000];
	size_t nf = 0, commits = 0;
	sqlite3 *db;
	sqlite3_stmt *st;
	int fd;

	snprintf(wal, sizeof(wal), "%s-wal", path);
	if ((fd = open(wal, O_RDONLY | O_CLOEXEC)) < 0 || read(fd, hdr, 32) != 32)
		die("read the WAL", NULL);
	uint32_t psz = be32(hdr + 8);
	unsigned char *page = malloc(psz);
	if (!page)
		die("malloc", NULL);
	while (nf < sizeof(pages) / sizeof(pages[0]) && read(fd, fh, 24) == 24 &&
	       read(fd, page, psz) == (ssize_t)psz) {
		pages[nf++] = be32(fh);
		commits += be32(fh + 4) != 0;
	}
	close(fd);
	free(page);
	if (!commits)
		die("no commit in the WAL", NULL);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		die("open for dbstat", NULL);
	printf("WAL: %zu frames of %u bytes in %zu commits (%d batches): %.1f frames per "
	       "commit, %.2f per exec\n",
	       nf, psz, commits, batches, (double)nf / (double)commits,
	       (double)nf / (double)commits / BATCH);
	/* each page's b-tree (pages dbstat does not list: pointer map, freelist) */
	struct {
		char name[64];
		size_t n;
	} by[64];
	size_t nb = 0;
	if (sqlite3_prepare_v2(db, "SELECT name FROM dbstat WHERE pageno = ?", -1, &st, NULL) !=
	    SQLITE_OK)
		die("dbstat", NULL);
	for (size_t i = 0; i < nf; i++) {
		char name[64] = "(pointer map or free)";
		sqlite3_bind_int64(st, 1, pages[i]);
		if (sqlite3_step(st) == SQLITE_ROW)
			snprintf(name, sizeof(name), "%s", sqlite3_column_text(st, 0));
		if (pages[i] == 1)
			snprintf(name, sizeof(name), "page 1 (header, sqlite_schema)");
		sqlite3_reset(st);
		size_t j;
		for (j = 0; j < nb; j++)
			if (strcmp(by[j].name, name) == 0)
				break;
		if (j == nb && nb < 64) {
			snprintf(by[nb].name, sizeof(by[nb].name), "%s", name);
			by[nb++].n = 0;
		}
		if (j < nb)
			by[j].n++;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	for (size_t j = 0; j < nb; j++)
		printf("  %-36s %6.2f frames per commit\n", by[j].name,
		       (double)by[j].n / (double)commits);
}

/* One schedule: the CPU per exec over RUNS paced runs, then the WAL's frames. */
static void schedule(const char *path, int batches, int defer)
{
	double cpu[RUNS], mcpu[RUNS];
	struct de_store *s;

	wal_peak = 0;
	for (int k = 0; k < RUNS; k++) {
		s = fresh(path, true);
		cpu[k] = run_batches(s, batches, PACE_NS, defer) / (batches * BATCH) * 1e6;
		mcpu[k] = main_cpu_s / (batches * BATCH) * 1e6;
		de_store_close(s);
	}
	qsort(cpu, RUNS, sizeof(cpu[0]), cmp_d);
	qsort(mcpu, RUNS, sizeof(mcpu[0]), cmp_d);
	printf("cpu per exec (its row, and its exit): median %.1f us (min %.1f, max %.1f) over %d "
	       "batches x %d runs\n",
	       cpu[RUNS / 2], cpu[0], cpu[RUNS - 1], batches, RUNS);
	printf("  of which the batches' own thread (the rest: the checkpointer): median %.1f us\n",
	       mcpu[RUNS / 2]);
	printf("the WAL file grew to %.1f MiB at most\n", (double)wal_peak / (1 << 20));
	/* one run without the checkpointer: the WAL then holds every frame */
	s = fresh(path, false);
	int n = 96; /* a multiple of DEFER */
	/* the frames the first scan wrote are not counted: checkpoint them */
	struct de_error e = {0};
	if (de_store_checkpoint(s, 0, &e) < 0)
		die("checkpoint", &e);
	sqlite3_wal_checkpoint_v2(de_store_db(s), NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	run_batches(s, n, 0, defer);
	wal_frames(path, n);
	de_store_close(s);
	bench_rm_db(path);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/tmp";
	int batches = argc > 2 ? atoi(argv[2]) : 750;

	if (getenv("CKPT_MIB"))
		ckpt_mib = (unsigned)atoi(getenv("CKPT_MIB"));
	snprintf(db_file, sizeof(db_file), "%s/bench-events.sqlite", dir);
	printf("event batches: %d live processes, batches of %d execs + the previous batch's "
	       "%d exits (exits not deferred)\n",
	       LIVE, BATCH, BATCH);
	schedule(db_file, batches, 1);
	printf("\nevent batches: %d live processes, batches of %d execs; the exits deferred: "
	       "every %d batches, those of the %d processes exec'd since (as the exec path)\n",
	       LIVE, BATCH, DEFER, DEFER * BATCH);
	schedule(db_file, batches, DEFER);
	return 0;
}
