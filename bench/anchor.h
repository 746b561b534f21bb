/*
 * anchor.h — the benchmarks' common anchor (anchor.c): DESIGN.md's "SQLite
 * 10,000-row insert in one transaction", 19 ms on the project's machine,
 * and the synthetic host whose rows it inserts.  Benchmark code only.
 */
#ifndef DAEMONEYE_BENCH_ANCHOR_H
#define DAEMONEYE_BENCH_ANCHOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "daemoneye/record.h"

/* Seconds of CLOCK_MONOTONIC; of this thread's CPU time (CLOCK_THREAD_CPUTIME_ID). */
double bench_now_s(void);
double bench_cpu_s(void);

/* DESIGN.md's figure for the anchor on the project's machine. */
#define ANCHOR_DESIGN_MS 19.0

/* One synthetic record shaped like the collector's (bench_clear_all frees). */
void bench_synth(struct de_process_record *r, uint32_t pid, int64_t t, int64_t scan, uint32_t seed);
/* n of them, pids 2..n+1, all of scan `scan` at time t. */
void bench_synth_all(struct de_process_record *r, size_t n, int64_t t, int64_t scan);
void bench_clear_all(struct de_process_record *r, size_t n);
/* Remove a database file and its -wal, -shm and .lock companions. */
void bench_rm_db(const char *path);

/* A record's text columns, built once so that inserting them costs SQLite only. */
struct bench_text {
	char uuid[DE_UUID_STR_LEN + 1];
	char *cmd, *argv, *pd;
};
struct bench_text *bench_texts(const struct de_process_record *r, size_t n);
void bench_texts_free(struct bench_text *f, size_t n);
/* Bind the 20 ProcessRecord columns (and with inst > 0 three more) at offset o. */
void bench_bind(sqlite3_stmt *st, int o, const struct de_process_record *r,
		const struct bench_text *f, int64_t inst);

/*
 * The anchor: the n rows r (texts f) inserted into a fresh file at path, in
 * one transaction; its time in ms, on the wall clock or (cpu) in this
 * thread's CPU time.  The file is removed afterwards.  Exits on an error.
 */
double bench_anchor_ms(const char *path, const struct de_process_record *r,
		       const struct bench_text *f, size_t n, bool cpu);

#endif
