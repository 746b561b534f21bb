/*
 * anchor.c — DESIGN.md's "SQLite 10,000-row insert in one transaction"
 * (19 ms on the project's machine), one definition for every benchmark
 * that scales a figure by it (bench_store, bench_alerting), and the
 * synthetic host whose rows it inserts (see anchor.h).
 *
 * DESIGN.md measured a plain 10,000-row insert in one transaction at 19 ms
 * on the project's machine and set the ingest budgets there (300,000
 * records/s, i.e. 33 ms for 10,000; steady write <= 10 ms).  This machine's
 * speed for the same thing is measured beside every figure: a fresh file
 * with the store's settings (16 KiB pages, WAL, synchronous=NORMAL, 16 MiB
 * cache), one table of the ProcessRecord columns with no secondary index,
 * the rows' text built beforehand, one prepared single-row INSERT per
 * record.  Budgets are judged on figures scaled by 19 ms / this anchor.
 */
#include "anchor.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "daemoneye/uuid.h"

static void anchor_die(const char *what)
{
	fprintf(stderr, "bench anchor: %s: %s\n", what, strerror(errno));
	exit(1);
}

double bench_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double bench_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *const names[] = {"bash",  "sshd", "nginx", "postgres", "python3",
				    "java",  "node", "cron",  "systemd",  "containerd-shim",
				    "sleep", "redis"};

/* One synthetic record shaped like the collector's. */
void bench_synth(struct de_process_record *r, uint32_t pid, int64_t t, int64_t scan, uint32_t seed)
{
	char buf[128];
	const char *name = names[seed % (sizeof(names) / sizeof(names[0]))];

	memset(r, 0, sizeof(*r));
	de_uuid_v4(&r->id);
	r->pid = pid;
	r->scan_id = scan;
	r->collection_time = t;
	r->has_ppid = true;
	r->ppid = pid <= 100 ? 1 : 100 + (seed * 2654435761u) % (pid - 100);
	r->name = strdup(name);
	snprintf(buf, sizeof(buf), "/usr/bin/%s", name);
	r->executable_path = strdup(buf);
	r->command_line_len = 4;
	r->command_line = calloc(4, sizeof(char *));
	r->command_line[0] = strdup(buf);
	snprintf(buf, sizeof(buf), "--config=/etc/%s/worker-%u.conf", name, seed % 97);
	r->command_line[1] = strdup(buf);
	r->command_line[2] = strdup("--log-level=info");
	snprintf(buf, sizeof(buf), "--id=%08x-%04x", seed * 2654435761u, pid);
	r->command_line[3] = strdup(buf);
	r->has_start_time = true;
	r->start_time = 1700000000000LL + pid * 10LL;
	r->has_cpu_usage = true;
	r->cpu_usage = 0.0;
	r->has_memory_usage = true;
	r->memory_usage = 4096ULL * (1000 + seed % 5000);
	r->executable_hash =
		strdup("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
	r->hash_algorithm = strdup("sha256");
	snprintf(buf, sizeof(buf), "%u", seed % 3 ? 1000 : 0);
	r->user_id = strdup(buf);
	r->accessible = true;
	r->file_exists = true;
	/* the facts as the collector fills them (record.facts, no jansson) */
	r->facts = (struct de_linux_facts){
		.present = true,
		.has_ids = true,
		.euid = seed % 3 ? 1000 : 0,
		.egid = 1000,
		.has_exe = true,
		.has_image = true,
		.exe_inode = 100000 + seed % 12,
		.exe_device = 2049,
		.exe_size = 1 << 20,
		.state = 'S',
		.threads = 1 + seed % 8,
		.pgrp = pid,
		.session = pid,
		.utime_ticks = seed % 50,
		.stime_ticks = seed % 20,
		.start_ticks = pid * 10,
	};
	snprintf(buf, sizeof(buf), "/system.slice/%s.service", name);
	r->facts.cgroup = strdup(buf);
}

void bench_synth_all(struct de_process_record *r, size_t n, int64_t t, int64_t scan)
{
	for (size_t i = 0; i < n; i++)
		bench_synth(&r[i], (uint32_t)(i + 2), t, scan, (uint32_t)i);
}

void bench_clear_all(struct de_process_record *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		de_process_record_clear(&r[i]);
}

void bench_rm_db(const char *path)
{
	char p[4200];
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s.lock", path);
	unlink(p);
}

/* The text columns of n records, built once (bench_texts_free). */
struct bench_text *bench_texts(const struct de_process_record *r, size_t n)
{
	struct bench_text *f = calloc(n, sizeof(*f));

	if (!f)
		anchor_die("calloc");
	for (size_t i = 0; i < n; i++) {
		json_t *j = de_process_record_to_json(&r[i]);
		size_t o = 0, len = 1;
		for (size_t k = 0; k < r[i].command_line_len; k++)
			len += strlen(r[i].command_line[k]) + 1;
		f[i].cmd = malloc(len);
		for (size_t k = 0; k < r[i].command_line_len; k++)
			o += (size_t)snprintf(f[i].cmd + o, len - o, "%s%s", k ? " " : "",
					      r[i].command_line[k]);
		f[i].argv = json_dumps(json_object_get(j, "command_line"), JSON_COMPACT);
		f[i].pd = json_dumps(json_object_get(j, "platform_data"), JSON_COMPACT);
		de_uuid_format(&r[i].id, f[i].uuid);
		json_decref(j);
	}
	return f;
}

void bench_texts_free(struct bench_text *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(f[i].cmd);
		free(f[i].argv);
		free(f[i].pd);
	}
	free(f);
}

void bench_bind(sqlite3_stmt *st, int o, const struct de_process_record *r,
		const struct bench_text *f, int64_t inst)
{
	sqlite3_bind_int64(st, o + 1, r->pid);
	sqlite3_bind_text(st, o + 2, f->uuid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, o + 3, r->scan_id);
	sqlite3_bind_int64(st, o + 4, r->collection_time);
	sqlite3_bind_int64(st, o + 5, r->ppid);
	sqlite3_bind_text(st, o + 6, r->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, o + 7, r->executable_path, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, o + 8, f->cmd, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, o + 9, f->argv, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, o + 10, r->start_time);
	sqlite3_bind_double(st, o + 11, r->cpu_usage);
	sqlite3_bind_int64(st, o + 12, (sqlite3_int64)r->memory_usage);
	sqlite3_bind_text(st, o + 13, r->executable_hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, o + 14, r->hash_algorithm, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, o + 15, r->user_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, o + 16, r->accessible);
	sqlite3_bind_int(st, o + 17, r->file_exists);
	sqlite3_bind_int(st, o + 18, 0);
	sqlite3_bind_int(st, o + 19, 0);
	sqlite3_bind_text(st, o + 20, f->pd, -1, SQLITE_STATIC);
	if (inst > 0) {
		sqlite3_bind_int64(st, o + 21, inst);
		sqlite3_bind_int64(st, o + 22, inst * 7919);
		sqlite3_bind_int64(st, o + 23, inst * 104729);
	}
}

double bench_anchor_ms(const char *path, const struct de_process_record *r,
		       const struct bench_text *f, size_t n, bool cpu)
{
	sqlite3 *db;
	sqlite3_stmt *st;

	bench_rm_db(path);
	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db,
			 "PRAGMA page_size=16384; PRAGMA journal_mode=WAL;"
			 " PRAGMA synchronous=NORMAL; PRAGMA cache_size=-16384;"
			 "CREATE TABLE processes (pid INTEGER PRIMARY KEY, id TEXT NOT NULL,"
			 " scan_id INTEGER NOT NULL, collection_time INTEGER NOT NULL,"
			 " ppid INTEGER, name TEXT NOT NULL, executable_path TEXT,"
			 " command_line TEXT NOT NULL, argv_json TEXT NOT NULL,"
			 " start_time INTEGER, cpu_usage REAL, memory_usage INTEGER,"
			 " executable_hash TEXT, hash_algorithm TEXT, user_id TEXT,"
			 " accessible INTEGER NOT NULL, file_exists INTEGER NOT NULL,"
			 " exe_deleted INTEGER NOT NULL, exe_replaced INTEGER NOT NULL,"
			 " platform_data TEXT);",
			 NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "INSERT INTO processes VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,"
			       "?12,?13,?14,?15,?16,?17,?18,?19,?20)",
			       -1, &st, NULL) != SQLITE_OK)
		anchor_die("open");
	double t = cpu ? bench_cpu_s() : bench_now_s();
	sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	for (size_t i = 0; i < n; i++) {
		bench_bind(st, 0, &r[i], &f[i], 0);
		if (sqlite3_step(st) != SQLITE_DONE)
			anchor_die("insert");
		sqlite3_reset(st);
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		anchor_die("commit");
	t = (cpu ? bench_cpu_s() : bench_now_s()) - t;
	sqlite3_finalize(st);
	sqlite3_close(db);
	bench_rm_db(path);
	return t * 1000;
}
