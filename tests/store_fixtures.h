/*
 * store_fixtures.h — what the event store's test programs share
 * (tests/test_store*.c): store files in the test's tmpdir, synthetic
 * records, counting rows, events, a query collector and alerts.
 *
 * Include testutil.h (with DE_TEST_NAME defined) first.  Header-only: each
 * test program is one translation unit, and uses what it needs.
 */
#ifndef DAEMONEYE_STORE_FIXTURES_H
#define DAEMONEYE_STORE_FIXTURES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/store.h"

/* A path in tmpdir (a new string). */
__attribute__((unused)) static char *db_path(const char *name)
{
	char *p;
	assert_true(asprintf(&p, "%s/%s", tmpdir, name) > 0);
	return p;
}

/* The first column of sql's first row as an integer (-1 when no row). */
__attribute__((unused)) static int64_t count(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	int64_t n = -1;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* PRAGMA integrity_check says ok. */
__attribute__((unused)) static void assert_integrity(sqlite3 *db)
{
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
}

/*
 * A synthetic process: pid, start time, collection time and scan; name
 * "odd" or "even" by pid, arguments "synthetic --n=<pid>", platform_data as
 * JSON with a volatile (utime_ticks) and an identity (euid) member.
 */
__attribute__((unused)) static void mk(struct de_process_record *r, uint32_t pid, int64_t start,
				       int64_t t, int64_t scan)
{
	char arg[32];
	memset(r, 0, sizeof(*r));
	de_uuid_v4(&r->id);
	r->pid = pid;
	r->scan_id = scan;
	r->collection_time = t;
	r->has_ppid = true;
	r->ppid = pid > 1 ? 1 : 0;
	r->name = strdup(pid % 2 ? "odd" : "even");
	r->executable_path = strdup("/usr/bin/synthetic");
	r->command_line = calloc(2, sizeof(char *));
	r->command_line[0] = strdup("synthetic");
	snprintf(arg, sizeof(arg), "--n=%u", pid);
	r->command_line[1] = strdup(arg);
	r->command_line_len = 2;
	r->has_start_time = true;
	r->start_time = start;
	r->has_cpu_usage = true;
	r->cpu_usage = 0.5;
	r->has_memory_usage = true;
	r->memory_usage = 4096;
	r->user_id = strdup("0");
	r->accessible = true;
	r->file_exists = true;
	r->platform_data = json_pack("{s:s,s:i,s:i}", "state", "S", "utime_ticks", 1, "euid", 0);
}

__attribute__((unused)) static void mk_many(struct de_process_record *r, size_t n, int64_t t,
					    int64_t scan)
{
	for (size_t i = 0; i < n; i++)
		mk(&r[i], (uint32_t)(i + 1), 1000 + (int64_t)i, t, scan);
}

__attribute__((unused)) static void retime(struct de_process_record *r, size_t n, int64_t t,
					   int64_t scan)
{
	for (size_t i = 0; i < n; i++) {
		r[i].collection_time = t;
		r[i].scan_id = scan;
	}
}

__attribute__((unused)) static void clear_many(struct de_process_record *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		de_process_record_clear(&r[i]);
}

/* shared: the writer's cache shared (de_store_config.shared_cache), as the agent's. */
__attribute__((unused)) static struct de_store *open_with(const char *path, uint64_t sample_s,
							  bool shared)
{
	struct de_store_config cfg = {.path = path,
				      .max_size_mb = 100,
				      .wal_mode = true,
				      .max_connections = 1,
				      .sample_interval_s = sample_s,
				      .shared_cache = shared};
	struct de_store *s = NULL;
	struct de_error e = {0};
	if (de_store_open(&cfg, &s, &e) < 0)
		fail_msg("open %s: %s", path, e.message);
	return s;
}

__attribute__((unused)) static struct de_store *open_at(const char *path, uint64_t sample_s)
{
	return open_with(path, sample_s, false);
}

__attribute__((unused)) static void store_ok(struct de_store *s, struct de_process_record *r,
					     size_t n)
{
	struct de_error e = {0};
	if (de_store_processes(s, r[0].scan_id, r, n, &e) < 0)
		fail_msg("store: %s", e.message);
}

/* ---- events ------------------------------------------------------------- */

/* An exec of pid at t carrying r (a shallow copy: the event does not own
   it, never clear the event); NULL: the process was gone before it was read. */
__attribute__((unused)) static struct de_process_event exec_ev(uint32_t pid, int64_t t,
							       const struct de_process_record *r)
{
	struct de_process_event e = {.kind = DE_PROCESS_EXEC, .pid = pid, .time_ms = t};

	if (r) {
		e.has_record = true;
		e.record = *r;
	}
	return e;
}

__attribute__((unused)) static struct de_process_event exit_ev(uint32_t pid, int64_t t)
{
	return (struct de_process_event){.kind = DE_PROCESS_EXIT,
					 .pid = pid,
					 .time_ms = t,
					 .has_exit_code = true,
					 .exit_code = 0};
}

/* ---- queries ------------------------------------------------------------ */

/* The pids (and whether alive) a query streamed, up to 64. */
struct collected {
	uint32_t pids[64];
	size_t n;
	bool alive[64];
	int stop_after;
};

__attribute__((unused)) static int collect_cb(const struct de_process_row *row, void *arg)
{
	struct collected *c = arg;
	if (c->n < 64) {
		c->alive[c->n] = row->alive;
		c->pids[c->n++] = row->pid;
	}
	return c->stop_after && (int)c->n >= c->stop_after ? 7 : 0;
}

__attribute__((unused)) static size_t query(struct de_store *s, const struct de_process_query *q,
					    struct collected *c)
{
	struct de_error e = {0};
	memset(c->pids, 0, sizeof(c->pids));
	c->n = 0;
	int rc = de_store_query_processes(s, q, collect_cb, c, &e);
	if (rc < 0)
		fail_msg("query: %s", e.message);
	return c->n;
}

/* ---- alerts ------------------------------------------------------------- */

/* An alert at t, and a delivery record unless delivery is "none". */
__attribute__((unused)) static void add_alert(struct de_store *s, int64_t t, const char *delivery)
{
	struct de_alert a = {0};
	struct de_error e = {0};
	char id[DE_UUID_STR_LEN + 1];
	de_uuid_v4(&a.id);
	a.alert_time = t;
	a.rule_id = strdup("r");
	a.title = strdup("t");
	a.description = strdup("d");
	a.alert_data = json_null();
	a.dedupe_key = strdup("k");
	assert_int_equal(de_store_alert(s, &a, &e), 0);
	de_uuid_format(&a.id, id);
	if (strcmp(delivery, "none") != 0)
		assert_int_equal(de_store_alert_delivery(s, id, "stdout",
							 strcmp(delivery, "delivered") == 0
								 ? DE_DELIVERY_DELIVERED
								 : DE_DELIVERY_FAILED,
							 t, NULL, &e),
				 0);
	de_alert_clear(&a);
}

#endif
