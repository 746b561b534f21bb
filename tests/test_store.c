/*
 * test_store.c — the event store on real SQLite files: schema, the snapshot
 * diff (new, changed, exited, reused pids), history and samples, queries,
 * the single-writer lock, the v1 -> v2 migration, retention by age and
 * size, scans, alerts and deliveries, exact bytes, refusal to touch a
 * corrupt, foreign or newer-version file, and (as root) a real full disk
 * and a real read-only bind mount.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemoneye/store.h"

#define DE_TEST_NAME "store"
#include "testutil.h"

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	/* a failed fault test may leave its mounts behind */
	snprintf(cmd, sizeof(cmd), "%s/full", tmpdir);
	umount2(cmd, MNT_DETACH);
	snprintf(cmd, sizeof(cmd), "%s/ro", tmpdir);
	umount2(cmd, MNT_DETACH);
	return tmpdir_remove();
}

static char *db_path(const char *name)
{
	char *p;
	assert_true(asprintf(&p, "%s/%s", tmpdir, name) > 0);
	return p;
}

static void record(struct de_process_record *r, uint32_t pid, const char *name)
{
	memset(r, 0, sizeof(*r));
	de_uuid_v4(&r->id);
	r->pid = pid;
	r->has_ppid = true;
	r->ppid = 1;
	r->name = strdup(name);
	r->executable_path = strdup("/usr/bin/x");
	r->command_line = calloc(2, sizeof(char *));
	r->command_line[0] = strdup("x");
	r->command_line[1] = strdup("--flag=\xff\n");
	r->command_line_len = 2;
	r->accessible = true;
	r->file_exists = true;
	r->platform_data = json_pack("{s:b}", "exe_deleted", pid == 3);
}

static int64_t count(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	int64_t n = -1;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static void test_snapshot_and_scans(void **state)
{
	(void)state;
	char *path = db_path("events.sqlite");
	struct de_store_config cfg = {
		.path = path, .max_size_mb = 10, .wal_mode = true, .max_connections = 2};
	struct de_store *s;
	struct de_error e = {0};
	struct de_process_record recs[3];
	int64_t scan;

	assert_int_equal(de_store_open(&cfg, &s, &e), 0);
	assert_int_equal(de_store_scan_begin(s, 1000, "poll", &scan, &e), 0);
	assert_int_equal(scan, 1);
	for (int i = 0; i < 3; i++)
		record(&recs[i], (uint32_t)(i + 1), "proc");
	assert_int_equal(de_store_processes(s, recs, 3, &e), 0);
	assert_int_equal(de_store_scan_end(s, scan, 1250, 3, &e), 0);
	sqlite3 *db = de_store_db(s);
	assert_int_equal(count(db, "SELECT count(*) FROM processes"), 3);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE exe_deleted = 1"), 1);
	assert_int_equal(count(db, "SELECT duration_ms FROM scans WHERE id = 1"), 250);
	assert_int_equal(count(db, "SELECT process_count FROM scans WHERE id = 1"), 3);
	/* exact bytes in the text column */
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE command_line = "
				   "CAST(X'78202D2D666C61673DFF0A' AS TEXT)"),
			 3);
	assert_string_equal(
		(count(db, "PRAGMA user_version") == DE_STORE_SCHEMA_VERSION) ? "ok" : "bad", "ok");

	/* a scan source is poll or event; a failed scan keeps its reason */
	assert_int_equal(de_store_scan_begin(s, 2000, "bogus", &scan, &e), -EINVAL);
	assert_int_equal(e.category, DE_ERR_VALIDATION);
	assert_int_equal(de_store_scan_begin(s, 2000, "event", &scan, &e), 0);
	assert_int_equal(count(db, "SELECT count(*) FROM scans WHERE status = 'running'"), 1);
	assert_int_equal(de_store_scan_fail(s, scan, 2100, "disk full", &e), 0);
	assert_int_equal(count(db,
			       "SELECT count(*) FROM scans WHERE status = 'failed' AND "
			       "error = 'disk full' AND source = 'event' AND duration_ms = 100"),
			 1);

	/* the next snapshot replaces the previous one */
	assert_int_equal(de_store_processes(s, recs, 1, &e), 0);
	assert_int_equal(count(db, "SELECT count(*) FROM processes"), 1);

	/* alerts */
	struct de_alert a = {0};
	de_uuid_v4(&a.id);
	a.alert_time = 5;
	a.rule_id = strdup("r");
	a.title = strdup("t");
	a.description = strdup("d");
	a.severity = DE_SEV_CRITICAL;
	a.alert_data = json_array();
	a.dedupe_key = strdup("k");
	assert_int_equal(de_store_alert(s, &a, &e), 0);
	assert_int_equal(count(db, "SELECT count(*) FROM alerts WHERE severity = 'critical' AND "
				   "incomplete = 0"),
			 1);
	/* delivery records: one per (alert, sink), attempts counted */
	char aid[DE_UUID_STR_LEN + 1];
	de_uuid_format(&a.id, aid);
	assert_int_equal(
		de_store_alert_delivery(s, aid, "webhook", DE_DELIVERY_PENDING, 6, NULL, &e), 0);
	assert_int_equal(
		de_store_alert_delivery(s, aid, "webhook", DE_DELIVERY_FAILED, 7, "timeout", &e),
		0);
	assert_int_equal(
		de_store_alert_delivery(s, aid, "webhook", DE_DELIVERY_DELIVERED, 8, NULL, &e), 0);
	assert_int_equal(count(db, "SELECT count(*) FROM alert_deliveries WHERE sink = 'webhook' "
				   "AND status = 'delivered' AND attempts = 2 AND delivered_at = 8 "
				   "AND last_attempt_at = 8"),
			 1);
	assert_int_equal(count(db, "SELECT count(*) FROM alert_deliveries"), 1);
	de_alert_clear(&a);
	for (int i = 0; i < 3; i++)
		de_process_record_clear(&recs[i]);
	de_store_close(s);

	/* reopen read-only: data still there */
	cfg.read_only = true;
	assert_int_equal(de_store_open(&cfg, &s, &e), 0);
	assert_int_equal(count(de_store_db(s), "SELECT count(*) FROM scans"), 2);
	de_store_close(s);
	free(path);
}

static void write_bytes(const char *path, const char *bytes, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(bytes, 1, n, f), n);
	fclose(f);
}

static void test_refuses_foreign_files(void **state)
{
	(void)state;
	struct de_store *s = NULL;
	struct de_error e = {0};
	struct stat before, after;

	/* garbage */
	char *bad = db_path("garbage.sqlite");
	char junk[8192];
	memset(junk, 'Z', sizeof(junk));
	write_bytes(bad, junk, sizeof(junk));
	stat(bad, &before);
	struct de_store_config cfg = {.path = bad, .wal_mode = true};
	assert_true(de_store_open(&cfg, &s, &e) < 0);
	assert_int_equal(e.category, DE_ERR_DATABASE);
	assert_non_null(strstr(e.message, "garbage.sqlite"));
	stat(bad, &after);
	assert_int_equal(before.st_size, after.st_size);
	FILE *f = fopen(bad, "rb");
	char back[16];
	assert_int_equal(fread(back, 1, 16, f), 16);
	fclose(f);
	assert_memory_equal(back, junk, 16);

	/* another application's SQLite database */
	char *foreign = db_path("foreign.sqlite");
	sqlite3 *db;
	assert_int_equal(sqlite3_open(foreign, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	cfg.path = foreign;
	assert_true(de_store_open(&cfg, &s, &e) < 0);
	assert_non_null(strstr(e.message, "not a daemoneye event store"));

	/* a newer schema version */
	char *newer = db_path("newer.sqlite");
	assert_int_equal(sqlite3_open(newer, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	cfg.path = newer;
	assert_true(de_store_open(&cfg, &s, &e) < 0);
	assert_non_null(strstr(e.message, "schema version 99 is newer"));

	/* read-only open of a store that does not exist */
	char *absent = db_path("absent.sqlite");
	cfg.path = absent;
	cfg.read_only = true;
	assert_true(de_store_open(&cfg, &s, &e) < 0);
	struct stat st;
	assert_int_equal(stat(absent, &st), -1); /* not created */
	free(bad);
	free(foreign);
	free(newer);
	free(absent);
}

/* ---- the snapshot diff -------------------------------------------------- */

static void assert_integrity(sqlite3 *db)
{
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
}

static void mk(struct de_process_record *r, uint32_t pid, int64_t start, int64_t t, int64_t scan)
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

static void mk_many(struct de_process_record *r, size_t n, int64_t t, int64_t scan)
{
	for (size_t i = 0; i < n; i++)
		mk(&r[i], (uint32_t)(i + 1), 1000 + (int64_t)i, t, scan);
}

static void retime(struct de_process_record *r, size_t n, int64_t t, int64_t scan)
{
	for (size_t i = 0; i < n; i++) {
		r[i].collection_time = t;
		r[i].scan_id = scan;
	}
}

static void clear_many(struct de_process_record *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		de_process_record_clear(&r[i]);
}

static struct de_store *open_at(const char *path, uint64_t sample_s)
{
	struct de_store_config cfg = {.path = path,
				      .max_size_mb = 100,
				      .wal_mode = true,
				      .max_connections = 1,
				      .sample_interval_s = sample_s};
	struct de_store *s = NULL;
	struct de_error e = {0};
	if (de_store_open(&cfg, &s, &e) < 0)
		fail_msg("open %s: %s", path, e.message);
	return s;
}

static void store_ok(struct de_store *s, struct de_process_record *r, size_t n)
{
	struct de_error e = {0};
	if (de_store_processes(s, r, n, &e) < 0)
		fail_msg("store: %s", e.message);
}

static void test_diff_grows_with_churn(void **state)
{
	(void)state;
	char *path = db_path("diff.sqlite");
	struct de_store *s = open_at(path, 3600);
	sqlite3 *db = de_store_db(s);
	struct de_process_record r[100];
	struct de_store_diff d;
	struct de_error e = {0};

	mk_many(r, 100, 10000, 1);
	store_ok(s, r, 100);
	d = de_store_last_diff(s);
	assert_int_equal(d.added, 100);
	/* one row per new process: live instances are their snapshot rows */
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances"), 0);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE first_seen = 10000 AND "
				   "first_scan_id = 1 AND instance_id BETWEEN 1 AND 100"),
			 100);

	/* an unchanged scan writes no process rows */
	int before = sqlite3_total_changes(db);
	retime(r, 100, 20000, 2);
	store_ok(s, r, 100);
	d = de_store_last_diff(s);
	assert_int_equal(d.added + d.changed + d.exited + d.samples + d.history, 0);
	/* only store_state (3 rows) and the scans counts (no scans row 2 here) */
	assert_true(sqlite3_total_changes(db) - before <= 4);
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances"), 0);
	assert_int_equal(count(db, "SELECT value FROM store_state WHERE key='snapshot_time'"),
			 20000);

	/* a changing value: the snapshot row only */
	r[4].cpu_usage = 42.0;
	json_object_set_new(r[4].platform_data, "utime_ticks", json_integer(99));
	retime(r, 100, 30000, 3);
	store_ok(s, r, 100);
	d = de_store_last_diff(s);
	assert_int_equal(d.changed, 1);
	assert_int_equal(d.history, 0);
	assert_int_equal(count(db, "SELECT cpu_usage FROM processes WHERE pid = 5"), 42);
	assert_int_equal(count(db,
			       "SELECT count(*) FROM processes WHERE pid = 5 AND command_line = "
			       "'synthetic --n=5' AND argv_json = '[\"synthetic\",\"--n=5\"]' AND "
			       "platform_data LIKE '%\"utime_ticks\":99%'"),
			 1);
	assert_int_equal(count(db, "SELECT count(*) FROM process_changes"), 0);

	/* an identity change (exec): history keeps the old command line */
	free(r[6].command_line[1]);
	r[6].command_line[1] = strdup("--exec'd");
	retime(r, 100, 40000, 4);
	store_ok(s, r, 100);
	d = de_store_last_diff(s);
	assert_int_equal(d.changed, 1);
	assert_int_equal(d.history, 1);
	assert_int_equal(count(db, "SELECT count(*) FROM process_changes WHERE command_line = "
				   "'synthetic --n=7' AND changed_at = 40000"),
			 1);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE pid = 7 AND "
				   "command_line = 'synthetic --exec''d'"),
			 1);

	/* an exit: out of the snapshot, exited in history */
	retime(r, 100, 50000, 5);
	store_ok(s, r, 99); /* pid 100 is gone */
	d = de_store_last_diff(s);
	assert_int_equal(d.exited, 1);
	assert_int_equal(count(db, "SELECT count(*) FROM processes"), 99);
	assert_int_equal(count(db, "SELECT exited_at FROM process_instances WHERE pid = 100"),
			 50000);
	assert_int_equal(count(db, "SELECT last_seen FROM process_instances WHERE pid = 100"),
			 40000);
	assert_int_equal(count(db, "SELECT exit_scan_id FROM process_instances WHERE pid = 100"),
			 5);
	/* its history row is its last snapshot row */
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances WHERE pid = 100 AND "
				   "first_seen = 10000 AND first_scan_id = 1 AND last_scan_id = 4 "
				   "AND command_line = 'synthetic --n=100' AND id = 100"),
			 1);

	/* a reused pid is a new instance */
	r[9].start_time = 777777;
	retime(r, 100, 60000, 6);
	store_ok(s, r, 99);
	d = de_store_last_diff(s);
	assert_int_equal(d.added, 1);
	assert_int_equal(d.exited, 1);
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances WHERE pid = 10 AND "
				   "exited_at = 60000 AND exit_scan_id = 6 AND last_seen = 50000"),
			 1);
	assert_int_equal(count(db,
			       "SELECT count(*) FROM processes WHERE pid = 10 AND "
			       "start_time = 777777 AND first_seen = 60000 AND instance_id > 100"),
			 1);
	assert_int_equal(count(db, "SELECT count(*) FROM processes"), 99);

	/* a pid twice is refused and nothing changes */
	const char *all = "SELECT (SELECT count(*) FROM process_instances) + "
			  "(SELECT count(*) FROM processes)";
	int64_t inst = count(db, all);
	r[1].pid = r[0].pid;
	r[1].start_time = 5;
	r[2].start_time = 6; /* would be a new instance if the batch were applied */
	assert_true(de_store_processes(s, r, 99, &e) < 0);
	assert_int_equal(e.category, DE_ERR_VALIDATION);
	assert_non_null(strstr(e.message, "appears twice"));
	assert_int_equal(count(db, all), inst);
	/* and the in-memory index was not disturbed: the good batch again is a no-op */
	r[1].pid = 2;
	r[1].start_time = 1001;
	r[2].start_time = 1002;
	store_ok(s, r, 99);
	d = de_store_last_diff(s);
	assert_int_equal(d.added + d.changed + d.exited, 0);
	de_store_close(s);

	/* reopening rebuilds the index from the file: still a no-op */
	s = open_at(path, 3600);
	store_ok(s, r, 99);
	d = de_store_last_diff(s);
	assert_int_equal(d.added + d.changed + d.exited + d.history, 0);
	de_store_close(s);
	clear_many(r, 100);
	free(path);
}

static void test_samples(void **state)
{
	(void)state;
	char *path = db_path("samples.sqlite");
	struct de_store *s = open_at(path, 10);
	sqlite3 *db = de_store_db(s);
	struct de_process_record r[10];
	struct de_store_diff d;

	mk_many(r, 10, 100000, 1);
	store_ok(s, r, 10); /* sample clock starts here; first values live in the instance */
	assert_int_equal(count(db, "SELECT count(*) FROM process_samples"), 0);
	r[0].memory_usage = 8192;
	retime(r, 10, 105000, 2); /* 5 s later: not yet */
	store_ok(s, r, 10);
	d = de_store_last_diff(s);
	assert_int_equal(d.samples, 0);
	assert_int_equal(d.changed, 1);
	assert_int_equal(count(db, "SELECT memory_usage FROM processes WHERE pid = 1"), 8192);
	retime(r, 10, 111000, 3); /* 11 s after the last sampling point */
	store_ok(s, r, 10);
	d = de_store_last_diff(s);
	assert_int_equal(d.samples, 1); /* only the one that changed */
	assert_int_equal(count(db, "SELECT memory_usage FROM process_samples WHERE t = 111000"),
			 8192);
	retime(r, 10, 122000, 4); /* due again, nothing changed since the sample */
	store_ok(s, r, 10);
	assert_int_equal(de_store_last_diff(s).samples, 0);
	de_store_close(s);
	/* after a restart the last sampled value is known: still nothing */
	s = open_at(path, 10);
	retime(r, 10, 133000, 5);
	store_ok(s, r, 10);
	assert_int_equal(de_store_last_diff(s).samples, 0);
	de_store_close(s);
	clear_many(r, 10);
	free(path);
}

/* The text columns: platform_data as compact JSON, exact integers, flags. */
static void test_text_columns(void **state)
{
	(void)state;
	char *path = db_path("text.sqlite");
	struct de_store *s = open_at(path, 3600);
	sqlite3 *db = de_store_db(s);
	struct de_process_record r[2];

	mk_many(r, 2, 1000, 1);
	json_decref(r[0].platform_data);
	r[0].platform_data =
		json_pack("{s:I,s:I,s:I,s:s,s:b,s:b,s:n}", "nice", (json_int_t)-5, "lo",
			  (json_int_t)INT64_MIN, "hi", (json_int_t)INT64_MAX, "state", "R\"\\\x01",
			  "exe_deleted", 1, "exe_replaced", 1, "none");
	json_decref(r[1].platform_data);
	r[1].platform_data = NULL;
	store_ok(s, r, 2);
	assert_int_equal(count(db,
			       "SELECT count(*) FROM processes WHERE pid = 1 AND platform_data = "
			       "'{\"nice\":-5,\"lo\":-9223372036854775808,"
			       "\"hi\":9223372036854775807,\"state\":\"R\\\"\\\\\\u0001\","
			       "\"exe_deleted\":true,\"exe_replaced\":true,\"none\":null}'"
			       " AND exe_deleted = 1 AND exe_replaced = 1"),
			 1);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE pid = 2 AND "
				   "platform_data IS NULL AND exe_deleted = 0"),
			 1);
	/* an empty command line is an empty text and an empty array */
	for (size_t i = 0; i < r[1].command_line_len; i++)
		free(r[1].command_line[i]);
	r[1].command_line_len = 0;
	retime(r, 2, 2000, 2);
	store_ok(s, r, 2);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE pid = 2 AND "
				   "command_line = '' AND argv_json = '[]'"),
			 1);
	assert_int_equal(de_store_last_diff(s).history, 1);
	de_store_close(s);
	clear_many(r, 2);
	free(path);
}

/* mk()'s records with collector facts instead of JSON (what procmond sends):
   hostile text in some cgroups and hash errors, exe_deleted on pid 3. */
static void mk_facts(struct de_process_record *r, size_t n, int64_t t, int64_t scan)
{
	static const char *const cgroups[] = {"/system.slice/sshd.service",
					      "/user.slice/\xff\x01\"\\", "/a\x7f\b\f\x1f\xc3\xa9",
					      NULL};

	mk_many(r, n, t, scan);
	for (size_t i = 0; i < n; i++) {
		struct de_linux_facts *f = &r[i].facts;
		json_decref(r[i].platform_data);
		r[i].platform_data = NULL;
		f->present = true;
		f->has_ids = true;
		f->euid = (uint32_t)i % 3 ? 1000 : 0;
		f->egid = f->euid;
		f->has_real_ids = i % 5 == 0;
		f->uid = 1000;
		f->gid = 1000;
		f->cgroup = cgroups[i % 4] ? strdup(cgroups[i % 4]) : NULL;
		f->has_exe = i % 7 != 6;
		f->exe_deleted = r[i].pid == 3;
		f->exe_replaced = i % 11 == 1;
		f->has_image = f->has_exe;
		f->exe_inode = 1000 + (int64_t)i;
		f->exe_device = 2049;
		f->exe_size = 1 << 20;
		f->hash_error =
			i % 4 == 2 ? strdup(i % 8 == 2 ? "cannot open: \xff" : "too big") : NULL;
		f->state = i % 2 ? 'S' : 'R';
		f->threads = 1 + (int64_t)i % 4;
		f->pgrp = r[i].pid;
		f->session = 1;
		f->tty_nr = 0;
		f->nice = (int64_t)(i % 3) - 1;
		f->kernel_thread = false;
		f->utime_ticks = (int64_t)i;
		f->stime_ticks = 2;
		f->start_ticks = 1000 + (int64_t)i;
		f->cmdline_truncated = i == 4;
		f->cmdline_masked = i == 5 ? 2 : 0;
	}
}

/* A text column of one row (a new string), NULL when NULL. */
static char *text_of(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	char *t = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		t = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return t;
}

/*
 * Records with facts: the same platform_data text as their JSON form gives
 * (and as json_dumps writes), the same hashes (a store written from JSON
 * records sees no change when the facts arrive), exe_deleted in its column;
 * a volatile fact changes the row only, an identity fact makes history.
 */
static void test_facts_rows(void **state)
{
	(void)state;
	enum { N = 24 };
	char *pa = db_path("facts.sqlite"), *pb = db_path("facts_json.sqlite");
	struct de_store *sa = open_at(pa, 3600), *sb = open_at(pb, 3600);
	sqlite3 *da = de_store_db(sa), *dbj = de_store_db(sb);
	struct de_process_record f[N], j[N];
	struct de_store_diff d;
	char sql[160];

	mk_facts(f, N, 1000, 1);
	mk_facts(j, N, 1000, 1);
	for (size_t i = 0; i < N; i++) {
		json_t *pd = de_process_record_platform_json(&j[i]);
		de_linux_facts_clear(&j[i].facts);
		j[i].platform_data = pd;
	}
	store_ok(sa, f, N);
	store_ok(sb, j, N);
	for (size_t i = 0; i < N; i++) {
		snprintf(sql, sizeof(sql), "SELECT platform_data FROM processes WHERE pid = %u",
			 f[i].pid);
		char *ta = text_of(da, sql), *tb = text_of(dbj, sql);
		char *want = json_dumps(j[i].platform_data, JSON_COMPACT);
		assert_non_null(ta);
		assert_string_equal(ta, tb);
		assert_string_equal(ta, want);
		free(ta);
		free(tb);
		free(want);
		snprintf(sql, sizeof(sql),
			 "SELECT identity_hash || '/' || value_hash || '/' || exe_deleted || "
			 "exe_replaced FROM processes WHERE pid = %u",
			 f[i].pid);
		ta = text_of(da, sql);
		tb = text_of(dbj, sql);
		assert_string_equal(ta, tb);
		free(ta);
		free(tb);
	}
	assert_int_equal(count(da, "SELECT count(*) FROM processes WHERE exe_deleted = 1"), 1);
	assert_int_equal(count(da, "SELECT pid FROM processes WHERE exe_deleted = 1"), 3);
	assert_int_equal(count(da, "SELECT count(*) FROM processes WHERE exe_replaced = 1"), 3);
	assert_int_equal(count(da, "SELECT count(*) FROM processes WHERE "
				   "json_extract(platform_data, '$.euid') = 0"),
			 8);

	/* the JSON store now gets the records with facts: nothing changed */
	retime(f, N, 2000, 2);
	store_ok(sb, f, N);
	d = de_store_last_diff(sb);
	assert_int_equal(d.added + d.changed + d.exited + d.history, 0);

	/* a volatile fact (cpu time, state, threads, nice): the row only */
	f[4].facts.utime_ticks += 100;
	f[4].facts.state = 'D';
	f[4].facts.threads = 9;
	f[4].facts.nice = 10;
	retime(f, N, 3000, 3);
	store_ok(sa, f, N);
	d = de_store_last_diff(sa);
	assert_int_equal(d.changed, 1);
	assert_int_equal(d.history, 0);
	assert_int_equal(count(da, "SELECT count(*) FROM processes WHERE pid = 5 AND "
				   "json_extract(platform_data, '$.utime_ticks') = 104 AND "
				   "json_extract(platform_data, '$.state') = 'D' AND "
				   "json_extract(platform_data, '$.threads') = 9"),
			 1);
	assert_int_equal(count(da, "SELECT count(*) FROM process_changes"), 0);

	/* an identity fact (the effective uid, a deleted image): history */
	f[6].facts.euid = 4242;
	f[7].facts.exe_deleted = true;
	retime(f, N, 4000, 4);
	store_ok(sa, f, N);
	d = de_store_last_diff(sa);
	assert_int_equal(d.changed, 2);
	assert_int_equal(d.history, 2);
	assert_int_equal(count(da,
			       "SELECT count(*) FROM process_changes WHERE "
			       "json_extract(platform_data, '$.euid') = 0 AND changed_at = 4000"),
			 1);
	assert_int_equal(count(da, "SELECT count(*) FROM processes WHERE pid = 7 AND "
				   "json_extract(platform_data, '$.euid') = 4242"),
			 1);
	assert_int_equal(count(da, "SELECT count(*) FROM processes WHERE exe_deleted = 1"), 2);

	/* extra members after the facts */
	f[0].platform_data = json_pack("{s:s}", "zone", "global");
	retime(f, N, 5000, 5);
	store_ok(sa, f, N);
	d = de_store_last_diff(sa);
	assert_int_equal(d.history, 1);
	json_t *pd = de_process_record_platform_json(&f[0]);
	char *want = json_dumps(pd, JSON_COMPACT);
	char *got = text_of(da, "SELECT platform_data FROM processes WHERE pid = 1");
	assert_string_equal(got, want);
	assert_non_null(strstr(got, ",\"zone\":\"global\"}"));
	free(want);
	free(got);
	json_decref(pd);

	/* reopened, the index from the file agrees: no change */
	de_store_close(sa);
	sa = open_at(pa, 3600);
	retime(f, N, 6000, 6);
	store_ok(sa, f, N);
	d = de_store_last_diff(sa);
	assert_int_equal(d.added + d.changed + d.exited + d.history, 0);
	de_store_close(sa);
	de_store_close(sb);
	clear_many(f, N);
	clear_many(j, N);
	free(pa);
	free(pb);
}

/* ---- real-time events ---------------------------------------------------- */

static struct de_store_event exec_ev(uint32_t pid, int64_t t, const struct de_process_record *r)
{
	return (struct de_store_event){
		.kind = DE_STORE_EVENT_EXEC, .pid = pid, .time_ms = t, .record = r};
}

static struct de_store_event exit_ev(uint32_t pid, int64_t t)
{
	return (struct de_store_event){.kind = DE_STORE_EVENT_EXIT,
				       .pid = pid,
				       .time_ms = t,
				       .has_exit_code = true,
				       .exit_code = 0};
}

static void events_ok(struct de_store *s, int64_t scan, const struct de_store_event *ev, size_t n)
{
	struct de_error e = {0};
	if (de_store_apply_events(s, scan, ev, n, &e) < 0)
		fail_msg("events: %s", e.message);
}

/* The base host: pids 1..10 and two pids that share pid 1's index slot. */
#define EV_BASE 12
static void ev_base(struct de_process_record *r, int64_t t, int64_t scan)
{
	mk_many(r, 10, t, scan);
	mk(&r[10], 65, 1065, t, scan);
	mk(&r[11], 129, 1129, t, scan);
}

static void test_events(void **state)
{
	(void)state;
	char *path = db_path("realtime.sqlite");
	struct de_store *s = open_at(path, 3600);
	sqlite3 *db = de_store_db(s);
	struct de_process_record base[EV_BASE], x[4], full[EV_BASE + 1];
	struct de_store_event ev[8];
	struct de_store_diff d;
	struct de_error e = {0};
	int64_t scan;

	assert_int_equal(de_store_scan_begin(s, 10000, "poll", &scan, &e), 0);
	ev_base(base, 10000, scan);
	store_ok(s, base, EV_BASE);
	assert_int_equal(de_store_scan_begin(s, 15000, "event", &scan, &e), 0);
	assert_int_equal(scan, 2);
	mk(&x[0], 50, 14000, 15001, 0); /* a new process */
	mk(&x[1], 3, 1002, 15002, 0);	/* pid 3 exec'd in place */
	free(x[1].command_line[1]);
	x[1].command_line[1] = strdup("--exec'd");
	mk(&x[2], 5, 14500, 15003, 0);	/* pid 5 reused */
	mk(&x[3], 60, 14600, 15006, 0); /* never used: exec without a record */
	ev[0] = exec_ev(50, 15001, &x[0]);
	ev[1] = exec_ev(3, 15002, &x[1]);
	ev[2] = exec_ev(5, 15003, &x[2]);
	ev[3] = exit_ev(7, 15004);
	ev[4] = exit_ev(4242, 15005); /* never seen */
	ev[5] = exec_ev(60, 15006, NULL);
	ev[6] = exit_ev(1, 15007); /* pid 1: 65 and 129 probe past its slot */
	events_ok(s, scan, ev, 7);
	d = de_store_last_diff(s);
	assert_int_equal(d.added, 2);
	assert_int_equal(d.changed, 1);
	assert_int_equal(d.history, 1);
	assert_int_equal(d.exited, 3);
	assert_int_equal(d.samples, 0);
	assert_int_equal(count(db, "SELECT count(*) FROM processes"), EV_BASE + 1 - 2);
	/* history: the three instances that left (pid 5's first, 7 and 1) */
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances"), 3);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE pid IN (1, 7, 60)"), 0);
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances WHERE pid = 60"), 0);
	/* exec in place: the old arguments kept, the new ones current */
	assert_int_equal(count(db, "SELECT count(*) FROM process_changes WHERE command_line = "
				   "'synthetic --n=3' AND changed_at = 15002"),
			 1);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE pid = 3 AND "
				   "command_line = 'synthetic --exec''d'"),
			 1);
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances WHERE pid = 3"), 0);
	/* pid reuse: the old instance ended when the new one appeared */
	assert_int_equal(count(db, "SELECT exited_at FROM process_instances WHERE pid = 5 AND "
				   "start_time = 1004"),
			 15003);
	assert_int_equal(count(db,
			       "SELECT count(*) FROM processes WHERE pid = 5 AND "
			       "start_time = 14500 AND first_scan_id = 2 AND first_seen = 15003"),
			 1);
	/* exit: time and scan of the event */
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances WHERE pid = 7 AND "
				   "exited_at = 15004 AND last_seen = 15004 AND exit_scan_id = 2"),
			 1);
	assert_int_equal(count(db, "SELECT new_count * 100 + changed_count * 10 + exited_count "
				   "FROM scans WHERE id = 2"),
			 213);
	assert_int_equal(count(db, "SELECT value FROM store_state WHERE key = 'snapshot_time'"),
			 15007);
	assert_int_equal(de_store_scan_end(s, scan, 15010, 7, &e), 0);

	/* a full scan of the same host agrees: nothing new, changed or gone */
	size_t nf = 0;
	for (size_t i = 0; i < EV_BASE; i++) {
		uint32_t pid = base[i].pid;
		if (pid == 1 || pid == 7)
			continue;
		if (pid == 3)
			mk(&full[nf], 3, 1002, 0, 0);
		else if (pid == 5)
			mk(&full[nf], 5, 14500, 0, 0);
		else
			mk(&full[nf], pid, base[i].start_time, 0, 0);
		if (pid == 3) {
			free(full[nf].command_line[1]);
			full[nf].command_line[1] = strdup("--exec'd");
		}
		nf++;
	}
	mk(&full[nf++], 50, 14000, 0, 0);
	retime(full, nf, 20000, 3);
	store_ok(s, full, nf);
	d = de_store_last_diff(s);
	assert_int_equal(d.added + d.changed + d.exited + d.history + d.samples, 0);
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances"), 3);

	/* events older than the live instance (queued while a full scan saw the
	   pid reused) change nothing: pid 5 has lived since 14500 */
	struct de_process_record stale;
	mk(&stale, 5, 1004, 20001, 0); /* the instance that ended at 15003 */
	ev[0] = exec_ev(5, 20001, &stale);
	ev[1] = exit_ev(5, 14400);
	events_ok(s, 3, ev, 2);
	d = de_store_last_diff(s);
	assert_int_equal(d.added + d.changed + d.exited + d.history, 0);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE pid = 5 AND "
				   "start_time = 14500"),
			 1);
	de_process_record_clear(&stale);

	/* many new pids grow the index; a full scan still agrees */
	struct de_process_record many[100];
	struct de_store_event mev[100];
	for (size_t i = 0; i < 100; i++) {
		mk(&many[i], 1000 + (uint32_t)i, 30000 + (int64_t)i, 30000, 0);
		mev[i] = exec_ev(1000 + (uint32_t)i, 30000, &many[i]);
	}
	events_ok(s, 3, mev, 100);
	assert_int_equal(de_store_last_diff(s).added, 100);
	struct de_process_record *all = calloc(nf + 100, sizeof(*all));
	memcpy(all, full, nf * sizeof(*all));
	memcpy(all + nf, many, 100 * sizeof(*all));
	retime(all, nf + 100, 40000, 4);
	store_ok(s, all, nf + 100);
	d = de_store_last_diff(s);
	assert_int_equal(d.added + d.changed + d.exited + d.history, 0);
	free(all);

	/* a bad event rolls the whole batch back, memory and file alike */
	const char *every = "SELECT (SELECT count(*) FROM process_instances) + "
			    "(SELECT count(*) FROM processes)";
	int64_t inst = count(db, every);
	struct de_process_record y;
	mk(&y, 70, 41000, 41000, 0);
	ev[0] = exec_ev(70, 41000, &y);
	ev[1] = exit_ev(2, 41001);
	ev[2] = exec_ev(71, 41002, &y); /* the record is pid 70's */
	assert_int_equal(de_store_apply_events(s, 4, ev, 3, &e), -EINVAL);
	assert_int_equal(e.category, DE_ERR_VALIDATION);
	assert_non_null(strstr(e.message, "pid 71"));
	ev[2] = (struct de_store_event){.kind = (enum de_store_event_kind)99, .pid = 8};
	assert_int_equal(de_store_apply_events(s, 4, ev, 3, &e), -EINVAL);
	assert_non_null(strstr(e.message, "unknown process event kind"));
	assert_int_equal(count(db, every), inst);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE pid = 2"), 1);
	retime(full, nf, 50000, 5);
	store_ok(s, full, nf); /* the 100 are gone now; pid 2 is not, pid 70 never came */
	d = de_store_last_diff(s);
	assert_int_equal(d.exited, 100);
	assert_int_equal(d.added + d.changed + d.history, 0);
	de_store_close(s);

	/* after a restart the index comes from the file: events still apply */
	s = open_at(path, 3600);
	db = de_store_db(s);
	ev[0] = exit_ev(50, 60000);
	ev[1] = exec_ev(70, 60001, &y);
	events_ok(s, 5, ev, 2);
	d = de_store_last_diff(s);
	assert_int_equal(d.exited, 1);
	assert_int_equal(d.added, 1);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE pid = 50"), 0);
	events_ok(s, 5, NULL, 0);
	assert_int_equal(de_store_last_diff(s).added, 0);
	assert_integrity(db);
	de_store_close(s);

	/* read-only stores refuse */
	struct de_store_config ro = {.path = path, .read_only = true};
	assert_int_equal(de_store_open(&ro, &s, &e), 0);
	assert_int_equal(de_store_apply_events(s, 5, ev, 1, &e), -EROFS);
	de_store_close(s);
	de_process_record_clear(&y);
	clear_many(base, EV_BASE);
	clear_many(x, 4);
	clear_many(full, nf);
	clear_many(many, 100);
	free(path);
}

/*
 * A first scan inserts new processes many rows to a statement: an absent
 * optional (ppid, start_time, cpu, memory) in any row of a batch is NULL in
 * that row, and only there.
 */
static void test_batch_absent_values(void **state)
{
	(void)state;
	char *path = db_path("nulls.sqlite");
	struct de_store *s = open_at(path, 3600);
	sqlite3 *db = de_store_db(s);
	enum { N = 40 };
	struct de_process_record r[N];

	mk_many(r, N, 1000, 1);
	for (size_t i = 0; i < N; i++) {
		r[i].ppid = 7;
		if (i % 4 == 1) {
			r[i].has_ppid = false;
			r[i].has_start_time = false;
			r[i].has_cpu_usage = false;
			r[i].has_memory_usage = false;
		}
	}
	store_ok(s, r, N);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE ppid IS NULL AND "
				   "start_time IS NULL AND cpu_usage IS NULL AND memory_usage IS "
				   "NULL AND pid % 4 = 2"),
			 N / 4);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE ppid = 7 AND "
				   "start_time = 999 + pid AND cpu_usage = 0.5 AND memory_usage = "
				   "4096 AND pid % 4 != 2"),
			 N - N / 4);
	de_store_close(s);
	clear_many(r, N);
	free(path);
}

/*
 * A scan of many new processes builds the snapshot's indexes after its
 * rows: afterwards they are there, as defined, and used; a bulk scan that
 * fails leaves them (and the snapshot) as they were.
 */
static void test_bulk_first_scan(void **state)
{
	(void)state;
	char *path = db_path("bulk.sqlite");
	struct de_store *s = open_at(path, 3600);
	sqlite3 *db = de_store_db(s);
	enum { N = 3000 };
	struct de_process_record *r = calloc(N, sizeof(*r));
	struct de_error e = {0};
	const char *defs = "SELECT group_concat(sql, ';') FROM (SELECT sql FROM sqlite_master "
			   "WHERE type = 'index' AND tbl_name = 'processes' AND sql IS NOT NULL "
			   "ORDER BY name)";
	char *before = NULL;
	sqlite3_stmt *st;

	assert_int_equal(sqlite3_prepare_v2(db, defs, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	before = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	assert_non_null(strstr(before, "processes_name"));

	/* a failing bulk scan (a pid twice at its end) changes nothing */
	mk_many(r, N, 1000, 1);
	r[N - 1].pid = 5;
	assert_true(de_store_processes(s, r, N, &e) < 0);
	assert_int_equal(count(db, "SELECT count(*) FROM processes"), 0);
	r[N - 1].pid = N;
	store_ok(s, r, N);
	assert_int_equal(de_store_last_diff(s).added, N);
	assert_int_equal(sqlite3_prepare_v2(db, defs, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), before);
	sqlite3_finalize(st);
	/* the rebuilt indexes hold every row and serve lookups */
	assert_int_equal(count(db, "SELECT count(*) FROM processes INDEXED BY processes_name "
				   "WHERE name = 'odd'"),
			 N / 2);
	assert_int_equal(count(db, "SELECT count(*) FROM processes INDEXED BY processes_name "
				   "WHERE name = 'even'"),
			 N / 2);
	assert_integrity(db);
	/* a steady scan after it goes the usual way */
	retime(r, N, 2000, 2);
	store_ok(s, r, N);
	assert_int_equal(de_store_last_diff(s).added + de_store_last_diff(s).changed, 0);
	de_store_close(s);
	clear_many(r, N);
	free(r);
	free(before);
	free(path);
}

/* ---- queries ------------------------------------------------------------ */

struct collected {
	uint32_t pids[64];
	size_t n;
	bool alive[64];
	int stop_after;
};

static int collect_cb(const struct de_process_row *row, void *arg)
{
	struct collected *c = arg;
	if (c->n < 64) {
		c->alive[c->n] = row->alive;
		c->pids[c->n++] = row->pid;
	}
	return c->stop_after && (int)c->n >= c->stop_after ? 7 : 0;
}

static size_t query(struct de_store *s, const struct de_process_query *q, struct collected *c)
{
	struct de_error e = {0};
	memset(c->pids, 0, sizeof(c->pids));
	c->n = 0;
	int rc = de_store_query_processes(s, q, collect_cb, c, &e);
	if (rc < 0)
		fail_msg("query: %s", e.message);
	return c->n;
}

static void test_query(void **state)
{
	(void)state;
	char *path = db_path("query.sqlite");
	struct de_store *s = open_at(path, 3600);
	struct de_process_record r[20];
	struct collected c = {0};

	mk_many(r, 20, 1000, 1);
	store_ok(s, r, 20);
	retime(r, 20, 2000, 2);
	store_ok(s, r, 10); /* 11..20 exit at 2000 */
	retime(r, 20, 3000, 3);
	r[0].start_time = 5; /* pid 1 reused at 3000 */
	store_ok(s, r, 10);

	struct de_process_query q = {.has_pid = true, .pid = 1};
	assert_int_equal(query(s, &q, &c), 2);
	assert_false(c.alive[0]);
	assert_true(c.alive[1]);
	q = (struct de_process_query){.name = "odd"};
	assert_int_equal(query(s, &q, &c), 11); /* 10 odd pids, pid 1 twice */
	q = (struct de_process_query){.name_pattern = "ev*"};
	assert_int_equal(query(s, &q, &c), 10);
	q = (struct de_process_query){.current_only = true};
	assert_int_equal(query(s, &q, &c), 10);
	q = (struct de_process_query){.has_since = true, .since_ms = 2500};
	assert_int_equal(query(s, &q, &c),
			 11); /* 11..20 gone by then; the first pid 1 exits at 3000 */
	q = (struct de_process_query){.has_until = true, .until_ms = 1500};
	assert_int_equal(query(s, &q, &c), 20); /* the reused pid 1 appeared later */
	q = (struct de_process_query){.has_scan_id = true, .scan_id = 1};
	assert_int_equal(query(s, &q, &c), 20);
	q = (struct de_process_query){.has_scan_id = true, .scan_id = 3};
	assert_int_equal(query(s, &q, &c), 10);
	q = (struct de_process_query){.limit = 5, .offset = 3};
	assert_int_equal(query(s, &q, &c), 5);
	assert_int_equal(c.pids[0], 4);
	/* exited and live instances come merged, oldest (lowest id) first:
	   pid 1's first instance exited, 2..10 live, 11..20 exited, then the
	   second pid 1; offset and limit count across both */
	q = (struct de_process_query){0};
	assert_int_equal(query(s, &q, &c), 21);
	for (size_t i = 0; i < 21; i++) {
		assert_int_equal(c.pids[i], i == 20 ? 1 : i + 1);
		assert_int_equal(c.alive[i], (i >= 1 && i <= 9) || i == 20);
	}
	q = (struct de_process_query){.limit = 4, .offset = 8};
	assert_int_equal(query(s, &q, &c), 4);
	assert_int_equal(c.pids[0], 9);
	assert_true(c.alive[1]);
	assert_int_equal(c.pids[2], 11);
	assert_false(c.alive[2]);
	/* the callback stops the stream and its value comes back */
	struct de_error e = {0};
	c.n = 0;
	c.stop_after = 2;
	q = (struct de_process_query){0};
	assert_int_equal(de_store_query_processes(s, &q, collect_cb, &c, &e), 7);
	assert_int_equal(c.n, 2);
	c.stop_after = 0;
	de_store_close(s);

	/* the same through a read-only connection */
	struct de_store_config ro = {.path = path, .read_only = true};
	assert_int_equal(de_store_open(&ro, &s, &e), 0);
	q = (struct de_process_query){.has_pid = true, .pid = 1};
	assert_int_equal(query(s, &q, &c), 2);
	assert_true(de_store_processes(s, r, 1, &e) < 0);
	de_store_close(s);
	clear_many(r, 20);
	free(path);
}

/* Rows are streamed: the heap does not grow with the number of rows. */
struct heapwatch {
	size_t rows;
	size_t max; /* most heap in use seen during the stream */
};

static int heap_cb(const struct de_process_row *row, void *arg)
{
	struct heapwatch *h = arg;
	(void)row;
	h->rows++;
	if (mallinfo2().uordblks > h->max)
		h->max = mallinfo2().uordblks;
	return 0;
}

static void test_query_streams(void **state)
{
	(void)state;
	char *path = db_path("stream.sqlite");
	struct de_store *s = open_at(path, 3600);
	sqlite3 *db = de_store_db(s);
	struct de_error e = {0};
	enum { ROWS = 20000 };

	/* 20,000 exited instances with fat command lines, written directly */
	assert_int_equal(
		sqlite3_exec(db,
			     "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
			     "FROM n WHERE i < 20000) "
			     "INSERT INTO process_instances(pid, start_time, name, "
			     "command_line, argv_json, accessible, file_exists, first_seen, "
			     "last_seen, exited_at) SELECT i, i, 'n' || i, "
			     "printf('%.2000c', 'x'), '[]', 1, 1, i, i, i + 1 FROM n",
			     NULL, NULL, NULL),
		SQLITE_OK);
	struct heapwatch h = {0};
	struct de_process_query q = {0};
	size_t before = mallinfo2().uordblks;
	assert_int_equal(de_store_query_processes(s, &q, heap_cb, &h, &e), 0);
	assert_int_equal(h.rows, ROWS);
	/* 20,000 x 2 KB held in memory would be 40 MB; the stream stays small
	   (valgrind's malloc reports 0 here, which passes trivially) */
	assert_true(h.max < before + 8 * 1024 * 1024);
	q.has_since = true;
	q.since_ms = ROWS - 9; /* exited_at = i + 1 >= ROWS - 9 */
	h = (struct heapwatch){0};
	assert_int_equal(de_store_query_processes(s, &q, heap_cb, &h, &e), 0);
	assert_int_equal(h.rows, 11);
	de_store_close(s);
	free(path);
}

/* ---- one writer --------------------------------------------------------- */

static void test_single_writer(void **state)
{
	(void)state;
	char *path = db_path("lock.sqlite");
	struct de_store *w = open_at(path, 0), *w2 = NULL, *rd = NULL;
	struct de_store_config cfg = {.path = path, .wal_mode = true};
	struct de_error e = {0};
	char pid[32];

	assert_int_equal(de_store_open(&cfg, &w2, &e), -EBUSY);
	assert_null(w2);
	assert_non_null(strstr(e.message, "already open for writing"));
	snprintf(pid, sizeof(pid), "pid %ld", (long)getpid());
	assert_non_null(strstr(e.message, pid));
	cfg.read_only = true;
	assert_int_equal(de_store_open(&cfg, &rd, &e), 0); /* readers need no lock */
	de_store_close(rd);
	de_store_close(w);
	cfg.read_only = false;
	assert_int_equal(de_store_open(&cfg, &w2, &e), 0); /* released on close */
	de_store_close(w2);
	free(path);
}

/* ---- migration ---------------------------------------------------------- */

static void test_migrates_v1(void **state)
{
	(void)state;
	char *path = db_path("v1.sqlite");
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(
			db,
			"CREATE TABLE scans (id INTEGER PRIMARY KEY, started_at INTEGER NOT "
			"NULL, ended_at INTEGER, process_count INTEGER, duration_ms INTEGER, "
			"source TEXT NOT NULL);"
			"CREATE TABLE processes (pid INTEGER PRIMARY KEY, id TEXT NOT NULL, "
			"scan_id INTEGER NOT NULL, collection_time INTEGER NOT NULL, ppid "
			"INTEGER, name TEXT NOT NULL, executable_path TEXT, command_line TEXT "
			"NOT NULL, argv_json TEXT NOT NULL, start_time INTEGER, cpu_usage REAL, "
			"memory_usage INTEGER, executable_hash TEXT, hash_algorithm TEXT, "
			"user_id TEXT, accessible INTEGER NOT NULL, file_exists INTEGER NOT "
			"NULL, exe_deleted INTEGER NOT NULL DEFAULT 0, exe_replaced INTEGER NOT "
			"NULL DEFAULT 0, platform_data TEXT);"
			"CREATE INDEX processes_ppid ON processes(ppid);"
			"CREATE TABLE alerts (id TEXT PRIMARY KEY, alert_time INTEGER NOT NULL, "
			"rule_id TEXT NOT NULL, title TEXT NOT NULL, description TEXT NOT NULL, "
			"severity TEXT NOT NULL, scan_id INTEGER, affected_processes TEXT NOT "
			"NULL, process_count INTEGER NOT NULL, alert_data TEXT NOT NULL, "
			"rule_execution_time_ms INTEGER, dedupe_key TEXT NOT NULL);"
			"CREATE INDEX alerts_time ON alerts(alert_time);"
			"INSERT INTO scans VALUES(1, 10, 20, 1, 10, 'poll');"
			"INSERT INTO scans VALUES(2, 30, NULL, NULL, NULL, 'poll');"
			"INSERT INTO processes(pid, id, scan_id, collection_time, name, "
			"command_line, argv_json, start_time, accessible, file_exists) "
			"VALUES(1, 'x', 1, 15, 'init', 'init', '[\"init\"]', 1000, 1, 1);"
			"PRAGMA user_version=1;",
			NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);

	struct de_store *s = open_at(path, 0);
	db = de_store_db(s);
	assert_int_equal(count(db, "PRAGMA user_version"), DE_STORE_SCHEMA_VERSION);
	/* live: its snapshot row carries what its instance row held */
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE pid = 1 AND "
				   "first_seen = 15 AND first_scan_id = 1 AND instance_id = 1"),
			 1);
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances"), 0);
	assert_int_equal(count(db, "SELECT count(*) FROM scans WHERE status = 'failed'"), 1);
	/* the migrated row is the same instance: rewritten, not a new one */
	struct de_process_record r;
	mk(&r, 1, 1000, 40, 3);
	store_ok(s, &r, 1);
	assert_int_equal(de_store_last_diff(s).added, 0);
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances"), 0);
	assert_int_equal(count(db, "SELECT count(*) FROM process_changes"), 0);
	de_process_record_clear(&r);
	de_store_close(s);
	free(path);
}

/*
 * A version-2 file (before alerts carried `incomplete`, when live instances
 * had history rows too) moves to version 4.
 */
static void test_migrates_v2(void **state)
{
	(void)state;
	char *path = db_path("v2.sqlite");
	struct de_store *s = open_at(path, 0);
	sqlite3 *db = de_store_db(s);
	struct de_process_record r[3];
	struct de_error e = {0};

	mk_many(r, 3, 1000, 1);
	store_ok(s, r, 3);
	retime(r, 3, 1500, 2);
	store_ok(s, r, 2); /* the third exits */
	de_store_close(s);
	/* take the file back to what schema 2 wrote: live instances had
	   process_instances rows too (with their first cpu/memory), the
	   snapshot had no first_seen */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(db,
			     "INSERT INTO process_instances(id, pid, start_time, ppid, name,"
			     " executable_path, command_line, argv_json, executable_hash,"
			     " hash_algorithm, user_id, accessible, file_exists, exe_deleted,"
			     " exe_replaced, platform_data, cpu_usage, memory_usage, first_seen,"
			     " last_seen, first_scan_id, last_scan_id) SELECT instance_id, pid,"
			     " start_time, ppid, name, executable_path, command_line, argv_json,"
			     " executable_hash, hash_algorithm, user_id, accessible, file_exists,"
			     " exe_deleted, exe_replaced, platform_data, cpu_usage, memory_usage,"
			     " first_seen, first_seen, first_scan_id, first_scan_id FROM processes;"
			     "ALTER TABLE processes DROP COLUMN first_seen;"
			     "ALTER TABLE processes DROP COLUMN first_scan_id;"
			     "CREATE INDEX processes_ppid ON processes(ppid);"
			     "UPDATE process_instances SET cpu_usage = 1.5 WHERE pid = 3;"
			     "INSERT INTO process_samples(instance_id, t, scan_id, cpu_usage,"
			     " memory_usage) SELECT id, 1200, 1, 7.5, 4096 FROM process_instances"
			     " WHERE pid = 3;"
			     "ALTER TABLE alerts DROP COLUMN incomplete;"
			     /* and what schema 5 added */
			     "ALTER TABLE alerts DROP COLUMN kind;"
			     "ALTER TABLE alerts DROP COLUMN context;"
			     "DROP TABLE alert_state; DROP TABLE alert_suppressed;"
			     "DROP TABLE dedup_windows;"
			     "INSERT INTO alerts(id, alert_time, rule_id, title, description,"
			     " severity, affected_processes, process_count, alert_data,"
			     " dedupe_key) VALUES('old', 1, 'r', 't', 'd', 'low', '[]', 0,"
			     " 'null', 'k');"
			     "PRAGMA user_version=2;",
			     NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);
	/* a reader asks for the agent to migrate first */
	struct de_store_config ro = {.path = path, .read_only = true};
	assert_true(de_store_open(&ro, &s, &e) < 0);
	assert_non_null(strstr(e.message, "schema version 2 is older"));

	s = open_at(path, 0);
	db = de_store_db(s);
	assert_int_equal(count(db, "PRAGMA user_version"), DE_STORE_SCHEMA_VERSION);
	assert_int_equal(count(db, "SELECT count(*) FROM alerts WHERE id = 'old' AND "
				   "incomplete = 0"),
			 1);
	/* schema 4: live instances moved into their snapshot rows, the exited
	   one keeps its row with its last sampled values */
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE first_seen = 1000 AND "
				   "first_scan_id = 1"),
			 2);
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances"), 1);
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances WHERE pid = 3 AND "
				   "cpu_usage = 7.5 AND exited_at = 1500"),
			 1);
	assert_int_equal(count(db, "SELECT count(*) FROM sqlite_master WHERE name = "
				   "'processes_name'"),
			 1);
	assert_int_equal(count(db, "SELECT count(*) FROM sqlite_master WHERE name = "
				   "'processes_ppid'"),
			 0);
	/* history and snapshot survive: the same scan again writes nothing */
	retime(r, 3, 2000, 2);
	store_ok(s, r, 2);
	struct de_store_diff d = de_store_last_diff(s);
	assert_int_equal(d.added + d.changed + d.exited + d.history, 0);
	/* alerts cut short say so */
	struct de_alert a = {0};
	de_uuid_v4(&a.id);
	a.alert_time = 5;
	a.rule_id = strdup("r");
	a.title = strdup("t");
	a.description = strdup("d");
	a.alert_data = json_null();
	a.dedupe_key = strdup("k2");
	a.incomplete = true;
	assert_int_equal(de_store_alert(s, &a, &e), 0);
	assert_int_equal(count(db, "SELECT incomplete FROM alerts WHERE dedupe_key = 'k2'"), 1);
	de_alert_clear(&a);
	assert_integrity(db);
	de_store_close(s);

	/* a file from a newer daemoneye is still refused, untouched */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=6", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	struct de_store_config cfg = {.path = path, .wal_mode = true};
	s = NULL;
	assert_true(de_store_open(&cfg, &s, &e) < 0);
	assert_null(s);
	assert_int_equal(e.category, DE_ERR_DATABASE);
	assert_non_null(strstr(e.message, "schema version 6 is newer"));
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(count(db, "PRAGMA user_version"), 6);
	sqlite3_close(db);
	clear_many(r, 3);
	free(path);
}

/* ---- retention ---------------------------------------------------------- */

static void add_alert(struct de_store *s, int64_t t, const char *delivery)
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

static void test_retention(void **state)
{
	(void)state;
	char *path = db_path("retention.sqlite");
	struct de_store *s = open_at(path, 1);
	sqlite3 *db = de_store_db(s);
	struct de_process_record r[200];
	struct de_prune_stats ps;
	struct de_error e = {0};
	const int64_t day = 86400000;
	int64_t scan;

	/* 200 processes 10 days ago, 150 of which exit then; 50 still live */
	mk_many(r, 200, 1 * day, 1);
	assert_int_equal(de_store_scan_begin(s, 1 * day, "poll", &scan, &e), 0);
	store_ok(s, r, 200);
	assert_int_equal(de_store_scan_end(s, scan, 1 * day + 5, 200, &e), 0);
	r[0].cpu_usage = 9;
	retime(r, 200, 2 * day, 2);
	store_ok(s, r, 50); /* pid 1 sampled; 150 exit at day 2 */
	retime(r, 200, 10 * day, 3);
	assert_int_equal(de_store_scan_begin(s, 10 * day, "poll", &scan, &e), 0);
	store_ok(s, r, 50);
	assert_int_equal(de_store_scan_end(s, scan, 10 * day + 5, 50, &e), 0);
	add_alert(s, 1 * day, "delivered");
	add_alert(s, 1 * day, "failed");
	add_alert(s, 1 * day, "none");
	add_alert(s, 10 * day, "delivered");
	assert_int_equal(count(db, "SELECT count(*) FROM process_samples"), 1);

	/* keep 5 days, in batches of 40 rows */
	assert_int_equal(de_store_prune(s, 11 * day, 5, 40, 100, &ps, &e), 0);
	assert_false(ps.more);
	/* the exited went; the live are their snapshot rows, never pruned */
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances"), 0);
	assert_int_equal(count(db, "SELECT count(*) FROM processes"), 50);	/* never */
	assert_int_equal(count(db, "SELECT count(*) FROM process_samples"), 0); /* old history */
	assert_int_equal(count(db, "SELECT count(*) FROM alerts"), 3); /* undelivered stay */
	assert_int_equal(count(db, "SELECT count(*) FROM alerts a WHERE NOT EXISTS (SELECT 1 "
				   "FROM alert_deliveries d WHERE d.alert_id = a.id AND "
				   "d.status = 'delivered')"),
			 2);
	assert_int_equal(count(db, "SELECT count(*) FROM scans"), 1); /* the newest stays */

	/* a small batch budget stops early and says so */
	retime(r, 200, 12 * day, 4);
	store_ok(s, r, 200); /* 150 new instances */
	retime(r, 200, 13 * day, 5);
	store_ok(s, r, 50); /* and they exit */
	assert_int_equal(de_store_prune(s, 30 * day, 5, 40, 1, &ps, &e), 0);
	assert_true(ps.more);
	assert_int_equal(ps.rows, 40);
	de_store_close(s);
	clear_many(r, 200);
	free(path);
}

static void test_retention_by_size(void **state)
{
	(void)state;
	char *path = db_path("size.sqlite");
	struct de_store_config cfg = {.path = path, .max_size_mb = 1, .wal_mode = true};
	struct de_store *s;
	struct de_error e = {0};
	struct de_prune_stats ps;
	enum { N = 400 };
	struct de_process_record *r = calloc(N, sizeof(*r));
	char big[2048];

	assert_int_equal(de_store_open(&cfg, &s, &e), 0);
	sqlite3 *db = de_store_db(s);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	/* generations of 400 fat processes that all exit: ~3 MB of history */
	for (int g = 0; g < 4; g++) {
		mk_many(r, N, 1000 + g, g + 1);
		for (size_t i = 0; i < N; i++) {
			r[i].start_time = g * 100000 + (int64_t)i;
			free(r[i].command_line[1]);
			r[i].command_line[1] = strdup(big);
		}
		store_ok(s, r, N);
		clear_many(r, N);
	}
	mk(&r[0], 1, 424242, 9000, 9); /* the live snapshot: one process */
	store_ok(s, r, 1);
	assert_true(count(db, "SELECT count(*) FROM process_instances") > 1000);
	assert_int_equal(de_store_prune(s, 10000, 0, 100, 1000, &ps, &e), 0);
	assert_false(ps.over_cap);
	assert_true(ps.used_bytes <= 1024 * 1024);
	assert_true(ps.rows > 0);
	/* oldest first: what is left is the newest generation, and the snapshot */
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances WHERE start_time < "
				   "100000 AND exited_at IS NOT NULL"),
			 0);
	assert_int_equal(count(db, "SELECT count(*) FROM processes WHERE start_time = 424242"), 1);
	assert_integrity(db);
	/* the file shrank too (auto_vacuum=INCREMENTAL on new files) */
	struct de_store_stats st;
	assert_int_equal(
		sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL),
		SQLITE_OK);
	assert_int_equal(de_store_stats(s, &st, &e), 0);
	assert_true(st.file_bytes <= 2 * 1024 * 1024);
	de_process_record_clear(&r[0]);
	free(r);
	de_store_close(s);
	free(path);
}

/* ---- faults on real file systems (root only) ----------------------------- */

static bool need_root(const char *what)
{
	if (geteuid() == 0)
		return true;
	printf("# skipped %s: needs root to mount a file system\n", what);
	return false;
}

static void fat_batch(struct de_process_record *r, size_t n, uint32_t base, int64_t t)
{
	char big[1024];
	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (size_t i = 0; i < n; i++) {
		mk(&r[i], base + (uint32_t)i, t + (int64_t)i, t, t);
		free(r[i].command_line[1]);
		r[i].command_line[1] = strdup(big);
	}
}

static void test_disk_full(void **state)
{
	(void)state;
	if (!need_root("disk full"))
		return;
	char *dir = db_path("full");
	char *path = db_path("full/events.sqlite");
	struct de_error e = {0};
	enum { N = 2000 };
	struct de_process_record *r = calloc(N, sizeof(*r));

	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(mount("tmpfs", dir, "tmpfs", 0, "size=600k"), 0);
	struct de_store *s = open_at(path, 0);
	sqlite3 *db = de_store_db(s);
	fat_batch(r, 20, 1, 1000);
	store_ok(s, r, 20);
	clear_many(r, 20);
	/* 2000 records of 1 KiB arguments cannot fit in 600 KiB */
	fat_batch(r, N, 1, 2000);
	int rc = de_store_processes(s, r, N, &e);
	assert_int_equal(rc, -ENOSPC);
	assert_int_equal(e.category, DE_ERR_DATABASE);
	printf("# disk full reported as: %s\n", e.message);
	/* earlier data intact */
	assert_int_equal(count(db, "SELECT count(*) FROM processes"), 20);
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances"), 0);
	assert_int_equal(count(db, "SELECT value FROM store_state WHERE key='snapshot_time'"),
			 1000);
	/* the same processes as real-time events fail alike and change nothing */
	struct de_store_event *ev = calloc(N, sizeof(*ev));
	for (size_t i = 0; i < N; i++)
		ev[i] = exec_ev(r[i].pid, 2000, &r[i]);
	assert_int_equal(de_store_apply_events(s, 0, ev, N, &e), -ENOSPC);
	assert_int_equal(e.category, DE_ERR_DATABASE);
	assert_int_equal(count(db, "SELECT count(*) FROM processes"), 20);
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances"), 0);
	free(ev);
	/* room again: the same batch goes through on retry */
	assert_int_equal(mount("tmpfs", dir, "tmpfs", MS_REMOUNT, "size=64m"), 0);
	store_ok(s, r, N);
	assert_int_equal(count(db, "SELECT count(*) FROM processes"), N);
	assert_int_equal(de_store_last_diff(s).exited, 20); /* new start times: new instances */
	assert_int_equal(count(db, "SELECT count(*) FROM process_instances"), 20);
	clear_many(r, N);
	de_store_close(s);
	/* and the file is sound */
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_integrity(db);
	sqlite3_close(db);
	assert_int_equal(umount2(dir, MNT_DETACH), 0);
	free(r);
	free(dir);
	free(path);
}

static void test_read_only_bind(void **state)
{
	(void)state;
	if (!need_root("read-only bind mount"))
		return;
	char *dir = db_path("ro");
	char *path = db_path("ro/events.sqlite");
	struct de_process_record r[3];
	struct de_error e = {0};

	assert_int_equal(mkdir(dir, 0700), 0);
	struct de_store *s = open_at(path, 0);
	mk_many(r, 3, 1000, 1);
	store_ok(s, r, 3);
	de_store_close(s);
	assert_int_equal(mount(dir, dir, "none", MS_BIND, NULL), 0);
	assert_int_equal(mount("none", dir, "none", MS_REMOUNT | MS_BIND | MS_RDONLY, NULL), 0);
	/* a writer is refused with a clear reason, the file untouched */
	struct de_store_config cfg = {.path = path, .wal_mode = true};
	s = NULL;
	assert_true(de_store_open(&cfg, &s, &e) < 0);
	assert_null(s);
	assert_int_equal(e.code, EROFS);
	assert_non_null(strstr(e.message, "Read-only file system"));
	/* readers still read */
	cfg.read_only = true;
	assert_int_equal(de_store_open(&cfg, &s, &e), 0);
	struct collected c = {0};
	struct de_process_query q = {0};
	assert_int_equal(query(s, &q, &c), 3);
	de_store_close(s);
	assert_int_equal(umount2(dir, MNT_DETACH), 0);
	clear_many(r, 3);
	free(dir);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshot_and_scans),
		cmocka_unit_test(test_refuses_foreign_files),
		cmocka_unit_test(test_diff_grows_with_churn),
		cmocka_unit_test(test_samples),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_text_columns),
		cmocka_unit_test(test_batch_absent_values),
		cmocka_unit_test(test_bulk_first_scan),
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_query_streams),
		cmocka_unit_test(test_facts_rows),
		cmocka_unit_test(test_single_writer),
		cmocka_unit_test(test_migrates_v1),
		cmocka_unit_test(test_migrates_v2),
		cmocka_unit_test(test_retention),
		cmocka_unit_test(test_retention_by_size),
		cmocka_unit_test(test_disk_full),
		cmocka_unit_test(test_read_only_bind),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, teardown);
}
