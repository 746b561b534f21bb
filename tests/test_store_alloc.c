/*
 * test_store_alloc.c — the event store under allocation failure
 * (tests/failalloc.h), SQLite's allocations included, through the public
 * store.h API only: opening (creating and migrating a new file, an existing
 * one, read-only), a scan's writes, real-time events, alerts and their
 * deliveries, queries, statistics and pruning.  A failed call must return
 * an error with a message, leave its outputs untouched, leak nothing, and
 * leave the store as it was: the same call made again without a failure
 * must then do exactly what it would have done the first time.
 *
 * Each run starts from a copy of one prepared file (a store holding one
 * scan), so that every run makes the same allocations.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemoneye/store.h"
#include "failalloc.h"
#include "testrecord.h"

#define DE_TEST_NAME "store-alloc"
#include "testutil.h"

static char pristine[PATH_MAX], work[PATH_MAX];

/* Addresses no function under test can return. */
static char sentinel_byte;
#define SENTINEL_STORE ((struct de_store *)(void *)&sentinel_byte)

/* The records of the prepared store's scan, and of the next scan. */
#define NREC 3
static struct de_process_record first[NREC], second[NREC];

static void remove_store(const char *path)
{
	char p[PATH_MAX + 16];
	static const char *const ext[] = {"", "-wal", "-shm", "-journal", ".lock"};

	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", path, ext[i]);
		unlink(p);
	}
}

static void copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ssize_t n;

	assert_true(in >= 0 && out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	assert_int_equal(n, 0);
	close(in);
	assert_int_equal(close(out), 0);
}

static struct de_store_config config(const char *path, bool read_only)
{
	struct de_store_config c = {
		.path = path, .max_size_mb = 10, .wal_mode = true, .read_only = read_only};
	return c;
}

/* A fresh copy of the prepared store, opened (not counted). */
static struct de_store *open_copy(void)
{
	struct de_store_config c = config(work, false);
	struct de_store *s = NULL;
	struct de_error e = {0};

	remove_store(work);
	copy_file(pristine, work);
	if (de_store_open(&c, &s, &e) < 0)
		fail_msg("open %s: %s", work, e.message);
	return s;
}

static void make_records(void)
{
	for (int i = 0; i < NREC; i++) {
		assert_int_equal(testrecord_make(&first[i], i != 1), 0);
		first[i].pid = (uint32_t)(100 + i);
		first[i].scan_id = 1;
		assert_int_equal(de_process_record_copy(&first[i], &second[i]), 0);
		second[i].scan_id = 2;
		second[i].collection_time += 30000;
	}
	/* next scan: pid 100 the same, 101 changed its name, 102 gone, 103 new */
	free(second[1].name);
	assert_non_null(second[1].name = strdup("renamed"));
	second[2].pid = 103;
	second[2].start_time += 5;
}

/* ---- open --------------------------------------------------------------------- */

struct open_ctx {
	int which; /* 0: create a new file, 1: existing, 2: read-only */
	struct de_store *s;
};

static void open_setup(void *p)
{
	struct open_ctx *x = p;

	remove_store(work);
	if (x->which)
		copy_file(pristine, work);
}

static int open_run(void *p, struct de_error *err)
{
	struct open_ctx *x = p;
	struct de_store_config c = config(work, x->which == 2);

	x->s = SENTINEL_STORE;
	return de_store_open(&c, &x->s, err);
}

static void open_check(void *p, int rc, const struct de_error *err)
{
	struct open_ctx *x = p;
	struct de_store_stats st;
	struct de_store_config c = config(work, x->which == 2);

	(void)err;
	if (rc < 0) {
		assert_ptr_equal(x->s, SENTINEL_STORE);
		/* the file is as good as before: it opens now */
		if (de_store_open(&c, &x->s, NULL) < 0)
			fail_msg("the store no longer opens after a failed open");
	}
	assert_int_equal(de_store_stats(x->s, &st, NULL), 0);
	assert_int_equal(st.schema_version, DE_STORE_SCHEMA_VERSION);
	assert_int_equal(st.processes, x->which ? NREC : 0);
	de_store_close(x->s);
}

static void test_open(void **state)
{
	(void)state;
	static const char *const names[] = {"de_store_open: create and migrate",
					    "de_store_open: existing file",
					    "de_store_open: read-only"};

	for (int i = 0; i < 3; i++) {
		struct open_ctx x = {.which = i};
		struct fa_case c = {names[i], &x, open_setup, open_run, open_check, true, 0};
		struct fa_stats st = fa_run(&c);
		assert_true(fa_some_errors(st));
	}
}

/* ---- writes ------------------------------------------------------------------ */

enum { W_SCAN, W_EVENTS, W_ALERT, W_DELIVERY, W_PRUNE, W_MAX };

struct write_ctx {
	int which;
	struct de_store *s;
	int64_t scan;
	struct de_store_diff ref;
	struct de_store_stats ref_stats;
	struct de_alert alert;
	struct de_prune_stats prune;
};

static void write_setup(void *p)
{
	struct write_ctx *x = p;

	x->s = open_copy();
	assert_int_equal(de_store_scan_begin(x->s, first[0].collection_time + 30000,
					     x->which == W_EVENTS ? "event" : "poll", &x->scan,
					     NULL),
			 0);
	if (x->which == W_DELIVERY)
		assert_int_equal(de_store_alert(x->s, &x->alert, NULL), 0);
}

static int write_do(struct write_ctx *x, struct de_error *err)
{
	/* the events borrow the records (shallow copies, never cleared) */
	struct de_process_event ev[3] = {
		{.kind = DE_PROCESS_EXEC, .pid = 103, .has_record = true, .record = second[2]},
		{.kind = DE_PROCESS_EXIT, .pid = 102},
		{.kind = DE_PROCESS_EXEC, .pid = 101, .has_record = true, .record = second[1]},
	};
	switch (x->which) {
	case W_SCAN:
		return de_store_processes(x->s, x->scan, second, NREC, err);
	case W_EVENTS:
		ev[0].time_ms = ev[1].time_ms = ev[2].time_ms = second[0].collection_time;
		return de_store_apply_events(x->s, x->scan, ev, 3, err);
	case W_ALERT:
		return de_store_alert(x->s, &x->alert, err);
	case W_DELIVERY:
		return de_store_alert_delivery(x->s, "7d6f1c2e-1111-4a8e-9f3c-2d1b7c9e4a10",
					       "stdout", DE_DELIVERY_DELIVERED, 5, NULL, err);
	default:
		memset(&x->prune, 0xa5, sizeof(x->prune));
		return de_store_prune(x->s, second[0].collection_time + 86400000LL * 400, 1, 0, 0,
				      &x->prune, err);
	}
}

static int write_run(void *p, struct de_error *err)
{
	return write_do(p, err);
}

static void write_check(void *p, int rc, const struct de_error *err)
{
	struct write_ctx *x = p;
	struct de_store_stats st;
	struct de_store_diff d;

	(void)err;
	if (rc < 0) {
		if (x->which == W_PRUNE) {
			struct de_prune_stats untouched;
			memset(&untouched, 0xa5, sizeof(untouched));
			assert_memory_equal(&x->prune, &untouched, sizeof(untouched));
		}
		/* the store is as before: the same call now does all of it */
		struct de_error e = {0};
		if (write_do(x, &e) < 0)
			fail_msg("after a failed call, the retry fails: %s", e.message);
	}
	if (x->which == W_SCAN || x->which == W_EVENTS) {
		d = de_store_last_diff(x->s);
		assert_memory_equal(&d, &x->ref, sizeof(d));
	}
	assert_int_equal(de_store_stats(x->s, &st, NULL), 0);
	assert_int_equal(st.processes, x->ref_stats.processes);
	assert_int_equal(st.instances, x->ref_stats.instances);
	assert_int_equal(st.changes, x->ref_stats.changes);
	assert_int_equal(st.alerts, x->ref_stats.alerts);
	assert_int_equal(st.deliveries, x->ref_stats.deliveries);
	assert_int_equal(st.scans, x->ref_stats.scans);
	de_store_close(x->s);
}

static void test_writes(void **state)
{
	(void)state;
	static const char *const names[W_MAX] = {
		"de_store_processes: 1 new, 1 changed, 1 exited", "de_store_apply_events: 3 events",
		"de_store_alert", "de_store_alert_delivery", "de_store_prune"};
	json_t *j =
		json_loads("{\"id\": \"7d6f1c2e-1111-4a8e-9f3c-2d1b7c9e4a10\","
			   " \"alert_time\": 1764060360000, \"rule_id\": \"r\", \"title\": \"t\","
			   " \"description\": \"d\", \"severity\": \"high\", \"scan_id\": 1,"
			   " \"affected_processes\": [100], \"process_count\": 1,"
			   " \"alert_data\": [{\"pid\": 100}], \"dedupe_key\": \"k\"}",
			   0, NULL);

	for (int i = 0; i < W_MAX; i++) {
		struct write_ctx x = {.which = i};
		assert_non_null(j);
		assert_int_equal(de_alert_from_json(j, &x.alert, NULL), 0);
		write_setup(&x);
		assert_int_equal(write_do(&x, NULL), 0);
		x.ref = de_store_last_diff(x.s);
		assert_int_equal(de_store_stats(x.s, &x.ref_stats, NULL), 0);
		de_store_close(x.s);
		struct fa_case c = {names[i], &x, write_setup, write_run, write_check, true, 0};
		struct fa_stats st = fa_run(&c);
		assert_true(fa_some_errors(st));
		de_alert_clear(&x.alert);
	}
	json_decref(j);
}

/* ---- reads ------------------------------------------------------------------- */

struct read_ctx {
	int which; /* 0: query, 1: stats */
	struct de_store *s;
	size_t rows;
	char names[NREC][32];
	struct de_store_stats st, ref;
};

static int row_cb(const struct de_process_row *row, void *arg)
{
	struct read_ctx *x = arg;

	if (x->rows < NREC)
		snprintf(x->names[x->rows], sizeof(x->names[0]), "%s", row->name);
	x->rows++;
	return 0;
}

static void read_setup(void *p)
{
	struct read_ctx *x = p;

	x->s = open_copy();
	x->rows = 0;
	memset(x->names, 0, sizeof(x->names));
}

static int read_run(void *p, struct de_error *err)
{
	struct read_ctx *x = p;
	struct de_process_query q = {.name_pattern = "*", .current_only = false};

	if (x->which == 0)
		return de_store_query_processes(x->s, &q, row_cb, x, err);
	memset(&x->st, 0xa5, sizeof(x->st));
	return de_store_stats(x->s, &x->st, err);
}

static void read_check(void *p, int rc, const struct de_error *err)
{
	struct read_ctx *x = p;
	struct de_store_stats untouched;

	(void)err;
	if (x->which == 0 && rc == 0) {
		assert_int_equal(x->rows, NREC);
		assert_string_equal(x->names[0], first[0].name);
	} else if (x->which == 1 && rc == 0) {
		/* field by field: the padding is whatever the copy left; the
		   sizes (file, WAL, used) may move */
#define SAME(f) assert_int_equal(x->st.f, x->ref.f)
		SAME(processes), SAME(instances), SAME(live_instances), SAME(changes);
		SAME(samples), SAME(scans), SAME(failed_scans), SAME(alerts), SAME(deliveries);
		SAME(oldest_ms), SAME(newest_ms), SAME(last_scan_id), SAME(schema_version);
#undef SAME
	} else if (x->which == 1) {
		memset(&untouched, 0xa5, sizeof(untouched));
		assert_memory_equal(&x->st, &untouched, sizeof(untouched));
	}
	de_store_close(x->s);
}

static void test_reads(void **state)
{
	(void)state;
	struct read_ctx q = {.which = 0}, s = {.which = 1};

	read_setup(&s);
	assert_int_equal(de_store_stats(s.s, &s.ref, NULL), 0);
	de_store_close(s.s);
	struct fa_case cq = {
		"de_store_query_processes", &q, read_setup, read_run, read_check, true, 0};
	struct fa_case cs = {"de_store_stats", &s, read_setup, read_run, read_check, true, 0};
	fa_run(&cq);
	fa_run(&cs);
}

/* ---- setup ------------------------------------------------------------------- */

static int setup(void **state)
{
	struct de_store *s = NULL;
	struct de_store_config c;
	int64_t scan;

	(void)state;
	if (tmpdir_make() < 0)
		return -1;
	snprintf(pristine, sizeof(pristine), "%s/pristine.sqlite", tmpdir);
	snprintf(work, sizeof(work), "%s/events.sqlite", tmpdir);
	make_records();
	c = config(pristine, false);
	if (de_store_open(&c, &s, NULL) < 0 ||
	    de_store_scan_begin(s, first[0].collection_time, "poll", &scan, NULL) < 0 ||
	    de_store_processes(s, scan, first, NREC, NULL) < 0 ||
	    de_store_scan_end(s, scan, first[0].collection_time + 5, NREC, NULL) < 0)
		return -1;
	de_store_close(s); /* checkpoints: the file alone is the store */
	return 0;
}

static int teardown(void **state)
{
	for (int i = 0; i < NREC; i++) {
		de_process_record_clear(&first[i]);
		de_process_record_clear(&second[i]);
	}
	return tmpdir_teardown(state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open),
		cmocka_unit_test(test_writes),
		cmocka_unit_test(test_reads),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
