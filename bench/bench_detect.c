/*
 * bench_detect.c — detection benchmarks (make bench, via bench_detect.sh):
 *   - every builtin rule over a synthetic 10,000-process snapshot in a real
 *     event store file: median of 21 runs per rule against the DESIGN.md
 *     budget of 3 ms, with a plain LIKE scan of the same rows as anchor;
 *   - the validator's throughput (validate_query of the builtin SQL) against
 *     SQLite's own sqlite3_prepare_v2 of the same text;
 *   - the exec-to-alert engine path: all rules restricted to one pid
 *     (de_engine_run_pid), p99 against the 100 ms budget, and over batches
 *     of 5 pids as the agent runs them (de_engine_run_pids), each rule
 *     alone and with the prefilter (detect.c), a ratio;
 *   - with a directory of Sigma rules (argv[1]; bench_detect.sh passes
 *     SigmaHQ's Linux rules from tests/sigma): every rule it converts, the
 *     same per-rule median against 3 ms, and the exec path with all builtin
 *     and Sigma rules against issue 15's p99 of 10 ms.
 * Synthetic: no process is spawned.  Prints ratios; exits 0.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemoneye/detect.h"
#include "daemoneye/fileio.h"
#include "daemoneye/rules.h"
#include "daemoneye/sigma.h"
#include "daemoneye/store.h"
#include "daemoneye/clock.h"

#define NPROC 10000
#define RUNS  21

/* CPU time of this thread: the host is shared, wall time would measure the neighbours */
static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static const char *const names[] = {
	"bash", "sshd", "nginx",      "python3",     "sleep",	 "postgres", "systemd",	  "cron",
	"java", "node", "containerd", "kworker/0:1", "rsyslogd", "sh",	     "php-fpm8.2"};

static void synth(struct de_process_record *r, uint32_t pid, int64_t scan)
{
	const char *name = names[pid % (sizeof(names) / sizeof(names[0]))];
	bool kthread = strncmp(name, "kworker", 7) == 0;
	char buf[256];

	memset(r, 0, sizeof(*r));
	de_uuid_v4(&r->id);
	r->scan_id = scan;
	r->collection_time = de_now_ms();
	r->pid = pid;
	r->has_ppid = true;
	r->ppid = pid > 100 ? pid / 2 : 1;
	r->name = strdup(name);
	if (!kthread) {
		snprintf(buf, sizeof(buf), "/usr/bin/%s", name);
		r->executable_path = strdup(buf);
	}
	r->command_line = calloc(4, sizeof(char *));
	r->command_line[0] = strdup(r->executable_path ? r->executable_path : name);
	snprintf(buf, sizeof(buf), "--worker=%u", pid);
	r->command_line[1] = strdup(buf);
	r->command_line[2] = strdup("--config=/etc/service/config.yaml --log-level=info");
	r->command_line_len = kthread ? 0 : 3;
	r->has_start_time = true;
	r->start_time = 1700000000000 + pid;
	r->has_memory_usage = true;
	r->memory_usage = 1u << 20;
	r->user_id = strdup(pid % 3 ? "1000" : "0");
	r->accessible = true;
	r->file_exists = !kthread;
	/* the facts as the collector fills them (record.facts) */
	r->facts = (struct de_linux_facts){.present = true,
					   .has_ids = true,
					   .euid = pid % 3 ? 1000 : 0,
					   .egid = pid % 3 ? 1000 : 0,
					   .has_exe = !kthread,
					   .state = 'S',
					   .threads = 1,
					   .pgrp = pid,
					   .session = pid,
					   .kernel_thread = kthread};
}

/* The anchor of DESIGN.md: a LIKE scan of the 10,000 rows, in ms. */
static double anchor_scan(sqlite3 *db)
{
	sqlite3_stmt *st;
	double t0 = now_ms();

	sqlite3_prepare_v2(db, "SELECT pid FROM processes WHERE command_line LIKE '%/dev/tcp/%'",
			   -1, &st, NULL);
	while (sqlite3_step(st) == SQLITE_ROW)
		;
	sqlite3_finalize(st);
	return now_ms() - t0;
}

/* Convert every *.yml of dir into set (after what is there); how many were refused. */
static size_t load_sigma(const char *dir, struct de_validator *v, struct de_rule_set *set)
{
	struct dirent **ents = NULL;
	int n = scandir(dir, &ents, NULL, alphasort);
	size_t refused = 0;

	for (int i = 0; i < n; i++) {
		char path[4096], *text = NULL;
		size_t len = 0, l = strlen(ents[i]->d_name);
		struct de_sigma_rule r = {0};
		struct de_error e = {0};
		snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name);
		if (l > 4 && !strcmp(ents[i]->d_name + l - 4, ".yml") &&
		    de_read_file(path, DE_SIGMA_MAX_FILE, &text, &len, NULL) == 0) {
			if (de_sigma_convert(text, len, path, NULL, v, &r, &e) == 0 &&
			    set->len < set->cap) {
				set->items[set->len] = r.rule;
				set->origins[set->len++] = strdup(path);
				memset(&r.rule, 0, sizeof(r.rule));
			} else {
				refused++;
			}
			de_sigma_rule_clear(&r);
		}
		free(text);
		free(ents[i]);
	}
	free(ents);
	return refused;
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/de-bench-detect-XXXXXX", path[256];
	struct de_store *store = NULL;
	struct de_error e = {0};
	struct de_process_record *recs = calloc(NPROC, sizeof(*recs));
	struct de_validator *v = de_validator_new();
	struct de_rule_set set = {0};
	struct de_rule_problems pr = {0};
	struct de_engine *eng = NULL;
	int64_t scan;
	int status = 1;

	if (!recs || !v || !mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/events.sqlite", dir);
	struct de_store_config sc = {.path = path, .wal_mode = true};
	if (de_store_open(&sc, &store, &e) < 0 ||
	    de_store_scan_begin(store, 1, "poll", &scan, &e) < 0)
		goto out;
	for (uint32_t i = 0; i < NPROC; i++)
		synth(&recs[i], i + 1, scan);
	if (de_store_processes(store, recs[0].scan_id, recs, NPROC, &e) < 0)
		goto out;
	de_validator_with_timeout(v, 0);
	if (de_rules_load_builtin(v, &set, &pr, &e) < 0 || pr.len ||
	    de_engine_open(path, v, &eng, &e) < 0)
		goto out;
	size_t nbuiltin = set.len, nrefused = 0;
	if (argc > 1) {
		/* room for the Sigma rules after the builtin ones */
		struct de_rule *ni = realloc(set.items, (set.len + 1024) * sizeof(*ni));
		char **no = ni ? realloc(set.origins, (set.len + 1024) * sizeof(*no)) : NULL;
		if (ni)
			set.items = ni;
		if (!no)
			goto out;
		set.origins = no;
		set.cap = set.len + 1024;
		nrefused = load_sigma(argv[1], v, &set);
	}

	sqlite3 *db = de_engine_db(eng);
	double anchor[RUNS];
	for (int r = 0; r < RUNS; r++)
		anchor[r] = anchor_scan(db);
	qsort(anchor, RUNS, sizeof(double), cmp);
	printf("snapshot: %d synthetic processes; anchor LIKE scan median %.2f ms CPU (DESIGN.md: "
	       "2.5 ms)\n",
	       NPROC, anchor[RUNS / 2]);

	/*
	 * every builtin rule, each run followed by an anchor scan so that load
	 * from other processes moves both alike; "normalised" scales a rule to
	 * the machine of DESIGN.md, where the anchor took 2.5 ms
	 */
	double worst = 0, medians[2048], sworst = 0;
	size_t nm = 0, sover = 0;
	printf("%-30s %9s %11s %8s\n", "rule", "median ms", "normalised", "/ 3 ms");
	for (size_t i = 0; i < set.len && nm < 2048; i++) {
		double t[RUNS], a[RUNS];
		for (int r = 0; r < RUNS; r++) {
			struct de_alert_list alerts = {0};
			struct de_rule_result res;
			double t0 = now_ms();
			de_engine_run_rule(eng, &set.items[i], scan, NULL, &alerts, &res);
			t[r] = now_ms() - t0;
			de_alert_list_clear(&alerts);
			if (res.status < 0) {
				fprintf(stderr, "%s\n", res.error.message);
				goto out;
			}
			a[r] = anchor_scan(db);
		}
		qsort(t, RUNS, sizeof(double), cmp);
		qsort(a, RUNS, sizeof(double), cmp);
		double norm = t[RUNS / 2] / a[RUNS / 2] * 2.5;
		medians[nm++] = norm;
		if (norm > worst)
			worst = norm;
		if (i >= nbuiltin) {
			sworst = norm > sworst ? norm : sworst;
			sover += norm > 3.0;
		}
		printf("%-30.30s %9.3f %11.3f %8.2f\n", set.items[i].id, t[RUNS / 2], norm,
		       norm / 3.0);
	}
	if (set.len > nbuiltin) {
		double sm[1024];
		size_t ns = nm - nbuiltin;
		memcpy(sm, medians + nbuiltin, ns * sizeof(double));
		qsort(sm, ns, sizeof(double), cmp);
		printf("sigma: %zu rules of %s converted (%zu refused); over 10,000 processes "
		       "(normalised): median %.3f ms, worst %.3f ms = %.2fx the 3 ms budget, %zu "
		       "over (%s)\n",
		       ns, argv[1], nrefused, sm[ns / 2], sworst, sworst / 3.0, sover,
		       sover ? "OVER" : "within");
	}
	qsort(medians, nm, sizeof(double), cmp);
	printf("rules over 10,000 processes (normalised): median %.3f ms, worst %.3f ms = %.2fx "
	       "the "
	       "3 ms budget (%s)\n",
	       medians[nm / 2], worst, worst / 3.0, worst <= 3.0 ? "within" : "OVER");

	/* validator throughput vs SQLite's own prepare */
	int iters = 200;
	double t0 = now_ms();
	for (int k = 0; k < iters; k++)
		for (size_t i = 0; i < nbuiltin; i++)
			if (de_validator_validate_query(v, set.items[i].sql_query, &e) < 0)
				goto out;
	double tv = now_ms() - t0;
	t0 = now_ms();
	for (int k = 0; k < iters; k++)
		for (size_t i = 0; i < nbuiltin; i++) {
			sqlite3_stmt *st;
			sqlite3_prepare_v2(db, set.items[i].sql_query, -1, &st, NULL);
			sqlite3_finalize(st);
		}
	double tp = now_ms() - t0;
	double n = (double)iters * (double)nbuiltin;
	printf("validator: %.0f validations/s (%.1f us each); raw sqlite3_prepare_v2 %.0f/s; "
	       "overhead %.2fx\n",
	       n / tv * 1e3, tv / n * 1e3, n / tp * 1e3, tv / tp);

	/* exec -> alert engine path: all rules restricted to one pid (builtin
	 * only, then with the Sigma rules too) */
	for (int with_sigma = 0; with_sigma <= (set.len > nbuiltin); with_sigma++) {
		size_t nr = with_sigma ? set.len : nbuiltin;
		double tp99[200];
		for (int k = 0; k < 200; k++) {
			struct de_alert_list alerts = {0};
			uint32_t pid = (uint32_t)(1 + (k * 37) % NPROC);
			double s = now_ms();
			de_engine_run_pid(eng, set.items, nr, pid, scan, &alerts, NULL);
			tp99[k] = now_ms() - s;
			de_alert_list_clear(&alerts);
		}
		qsort(tp99, 200, sizeof(double), cmp);
		if (!with_sigma)
			printf("exec path (all %zu rules on one pid): median %.3f ms, p99 %.3f ms "
			       "= "
			       "%.3fx the 100 ms budget (engine only; event delivery is "
			       "procmond's)\n",
			       nr, tp99[100], tp99[197], tp99[197] / 100.0);
		else
			printf("exec path with the Sigma rules (%zu builtin + %zu Sigma on one "
			       "pid): median %.3f ms, p99 %.3f ms = %.3fx the 10 ms budget "
			       "(%s)\n",
			       nbuiltin, nr - nbuiltin, tp99[100], tp99[197], tp99[197] / 10.0,
			       tp99[197] <= 10.0 ? "within" : "OVER");
	}
	/* the exec path as the agent runs it: a batch of 5 processes (1,000
	 * execs a second, batches closed by detection.exec_batch_wait_ms) in one
	 * read transaction, every builtin rule once over the batch; each rule
	 * alone (the prefilter off) and with the prefilter, alternating, so that
	 * both see the same load: the ratio is the figure */
	{
		double tb[2][200];
		uint64_t stmts[2] = {0, 0};
		for (int k = 0; k < 200; k++) {
			uint32_t pids[5];
			for (int j = 0; j < 5; j++)
				pids[j] = (uint32_t)(1 + (k * 37 + j * 1013) % NPROC);
			for (int pre = 0; pre < 2; pre++) {
				struct de_alert_list alerts = {0};
				struct de_engine_stats s0, s1;
				de_engine_with_prefilter(eng, pre);
				de_engine_get_stats(eng, &s0);
				double s = now_ms();
				int batch = de_engine_begin_batch(eng, NULL) == 0;
				de_engine_run_pids(eng, set.items, nbuiltin, pids, 5, scan, &alerts,
						   NULL);
				if (batch)
					de_engine_end_batch(eng);
				tb[pre][k] = now_ms() - s;
				de_engine_get_stats(eng, &s1);
				stmts[pre] += s1.statements - s0.statements;
				de_alert_list_clear(&alerts);
			}
		}
		de_engine_with_prefilter(eng, true);
		for (int pre = 0; pre < 2; pre++) {
			qsort(tb[pre], 200, sizeof(double), cmp);
			printf("exec path, batches of 5 pids (all %zu rules, %s): median %.1f us a "
			       "batch, %.1f us a pid; p99 %.3f ms; %.1f statements a batch\n",
			       nbuiltin, pre ? "prefilter" : "each rule alone", tb[pre][100] * 1e3,
			       tb[pre][100] * 1e3 / 5, tb[pre][197], (double)stmts[pre] / 200);
		}
		printf("exec path, batches of 5 pids: the prefilter takes %.2fx the time of each "
		       "rule alone (median)\n",
		       tb[1][100] / tb[0][100]);
	}
	status = 0;
out:
	if (status)
		fprintf(stderr, "bench_detect: %s\n", e.message);
	for (uint32_t i = 0; i < NPROC; i++)
		de_process_record_clear(&recs[i]);
	free(recs);
	de_engine_close(eng);
	de_store_close(store);
	de_rule_set_clear(&set);
	de_rule_problems_clear(&pr);
	de_validator_free(v);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		status = 1;
	return status;
}
