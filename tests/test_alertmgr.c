/*
 * test_alertmgr.c — the AlertManager over a real event store and real
 * sinks (a file; a webhook at a port nothing listens on):
 *   - one alert per (rule, instance): a repeat raises nothing, after a
 *     restart of the manager too; a full run that no longer matches
 *     resolves ("no longer matches" for a live instance, "exited" else);
 *   - exceptions (alerting.suppress and a rule's own) stored once per
 *     instance with the exception's label;
 *   - deduplication folds a second instance of the same thing, counted,
 *     and its window's summary says so;
 *   - persist before delivery: the alert and its delivery rows are in the
 *     store when submit returns; a manager closed before delivering leaves
 *     them pending and the next one delivers them;
 *   - a bounded queue (max_queue_size 2) still delivers 20 alerts;
 *   - transient failures retried up to max_attempts then dead, the circuit
 *     breaker failing fast once open, and the dead-letter retry;
 *   - after an outage a sink gets its alerts in the order raised;
 *   - the observer told of each committed alert and each delivery outcome;
 *   - kill -9 after submit, before an outcome is recorded: the next run
 *     delivers every alert;
 *   - the open states, kept in memory only, found by any key and by rule.
 */
#define DE_TEST_NAME "alertmgr"
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemoneye/alertmgr.h"
#include "daemoneye/clock.h"
#include "daemoneye/outbox.h"
#include "daemoneye/store.h"
#include "testutil.h"

static int n_test; /* each test its own files */

static struct de_store *open_store(char *path, size_t n)
{
	struct de_store_config sc = {
		.path = path, .max_size_mb = 100, .wal_mode = true, .max_connections = 1};
	struct de_store *s = NULL;
	struct de_error e = {0};

	snprintf(path, n, "%s/events-%d.sqlite", tmpdir, ++n_test);
	if (de_store_open(&sc, &s, &e) < 0)
		fail_msg("open: %s", e.message);
	return s;
}

static void proc(struct de_process_record *r, uint32_t pid, int64_t start, const char *name)
{
	memset(r, 0, sizeof(*r));
	de_uuid_v4(&r->id);
	r->pid = pid;
	r->collection_time = de_now_ms();
	r->has_ppid = true;
	r->ppid = 1;
	r->name = strdup(name);
	r->executable_path = strdup("/tmp/x");
	r->command_line = calloc(2, sizeof(char *));
	r->command_line[0] = strdup(name);
	r->command_line[1] = strdup("--run");
	r->command_line_len = 2;
	r->has_start_time = true;
	r->start_time = start;
	r->user_id = strdup("0");
	r->accessible = true;
	r->file_exists = true;
}

/* Replace the snapshot with these processes (pid 1 "init" is always there). */
static void snapshot(struct de_store *s, const uint32_t *pids, const char *const *names, size_t n)
{
	struct de_process_record r[16];
	struct de_error e = {0};
	int64_t scan;

	assert_true(n < 15);
	proc(&r[0], 1, 1, "init");
	for (size_t i = 0; i < n; i++)
		proc(&r[i + 1], pids[i], 1000 + pids[i], names[i]);
	assert_int_equal(de_store_scan_begin(s, de_now_ms(), "poll", &scan, &e), 0);
	if (de_store_processes(s, scan, r, n + 1, &e) < 0)
		fail_msg("processes: %s", e.message);
	assert_int_equal(de_store_scan_end(s, scan, de_now_ms(), n + 1, &e), 0);
	for (size_t i = 0; i < n + 1; i++)
		de_process_record_clear(&r[i]);
}

static struct de_alertmgr_config *config(const char *yaml)
{
	struct de_config_builder *b = de_config_builder_new();
	struct de_config *c = NULL;
	struct de_alertmgr_config *ac = NULL;
	struct de_error e = {0};

	assert_int_equal(de_config_builder_add_embedded_defaults(b, &e), 0);
	assert_int_equal(de_config_builder_add_yaml(b, yaml, strlen(yaml), "t.yaml", &e), 0);
	if (de_config_build(b, &c, &e) < 0 || de_alertmgr_config_load(c, &ac, &e) < 0)
		fail_msg("config: %s", e.message);
	de_config_builder_free(b);
	de_config_free(c);
	return ac;
}

static void add_alert(struct de_alert_list *l, const char *rule, uint32_t pid, const char *name)
{
	if (l->len == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->items = realloc(l->items, l->cap * sizeof(*l->items));
		assert_non_null(l->items);
	}
	struct de_alert *a = &l->items[l->len++];
	memset(a, 0, sizeof(*a));
	de_uuid_v4(&a->id);
	a->alert_time = de_now_ms();
	a->rule_id = strdup(rule);
	a->title = strdup("title");
	a->description = strdup("description");
	a->severity = DE_SEV_HIGH;
	a->affected_processes = calloc(1, sizeof(uint32_t));
	a->affected_processes[0] = pid;
	a->affected_processes_len = 1;
	a->process_count = 1;
	a->alert_data = json_pack("[{s:i,s:s}]", "pid", (int)pid, "name", name);
	a->dedupe_key = strdup(rule);
}

static int64_t count(struct de_store *s, const char *sql)
{
	sqlite3_stmt *st;
	int64_t n = -1;

	assert_int_equal(sqlite3_prepare_v2(de_store_db(s), sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* Distinct "id" values of the JSON lines in path (at-least-once: repeats allowed). */
static size_t distinct_ids(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[8192], seen[64][40];
	size_t n = 0;

	while (f && fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "{\"id\":\"");
		bool dup = false;
		if (!p)
			continue;
		p += 7;
		for (size_t i = 0; i < n; i++)
			dup |= strncmp(seen[i], p, 36) == 0;
		if (!dup && n < 64)
			snprintf(seen[n++], 40, "%.36s", p);
	}
	if (f)
		fclose(f);
	return n;
}

static size_t lines(const char *path)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;
	int c;

	if (!f)
		return 0;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/* Two rules: r-tmp with its own exception, r-miner. */
static void rules(struct de_rule_set *set)
{
	static char *origins[2] = {"t.yaml:1:1", "t.yaml:9:1"};
	set->items = calloc(2, sizeof(*set->items));
	set->origins = origins;
	set->len = set->cap = 2;
	set->items[0].id = "r-tmp";
	set->items[0].exceptions =
		json_pack("[{s:s,s:s}]", "process_name", "allowed", "reason", "our own tool");
	set->items[1].id = "r-miner";
}

static void rules_free(struct de_rule_set *set)
{
	json_decref(set->items[0].exceptions);
	free(set->items);
}

/* What each test of the manager starts from: its own store and file sink path. */
struct fx {
	char path[600], out[700], yaml[1200];
	struct de_store *s;
	struct de_alertmgr *m;
	struct de_alertmgr_counts c;
	struct de_alert_list l;
	struct de_error e;
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->s = open_store(f->path, sizeof(f->path));
	snprintf(f->out, sizeof(f->out), "%s/alerts-%d.jsonl", tmpdir, n_test);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	de_alertmgr_close(f->m);
	de_alert_list_clear(&f->l);
	de_store_close(f->s);
	free(f);
	return 0;
}

/* Close the fixture's manager (its deliveries not recorded stay pending). */
static void fx_close(struct fx *f)
{
	de_alertmgr_close(f->m);
	f->m = NULL;
}

/* (Re)open the fixture's manager on yaml (a closed one first). */
static void fx_open(struct fx *f, const char *yaml, const struct de_rule_set *rules)
{
	fx_close(f);
	if (de_alertmgr_open(config(yaml), f->s, rules, &f->m, &f->e) < 0)
		fail_msg("open: %s", f->e.message);
}

/* Submit the fixture's alert list (moved into the manager); its counts in f->c. */
static void fx_submit(struct fx *f, bool full, const struct de_rule_result *res, size_t nrules)
{
	if (de_alertmgr_submit(f->m, &f->l, full, res, nrules, &f->c, &f->e) < 0)
		fail_msg("submit: %s", f->e.message);
}

static void test_state_exceptions_dedup(void **state)
{
	struct fx *f = *state;
	struct de_store *s = f->s;
	struct de_rule_set set = {0};
	struct de_rule_result res[2] = {{.ran = true}, {.ran = true}};
	static const uint32_t pids[] = {10, 11, 12, 13};
	static const char *const names[] = {"xmrig", "allowed", "xmrig", "backup"};

	rules(&set);
	snapshot(s, pids, names, 4);
	snprintf(f->yaml, sizeof(f->yaml),
		 "alerting:\n"
		 "  suppress: [{ rule: \"r-m*\", process_name: backup, reason: nightly }]\n"
		 "  sinks: [{ name: f, type: file, path: \"%s\", format: json, fsync: never,"
		 " send_resolved: true }]\n",
		 f->out);
	fx_open(f, f->yaml, &set);
	add_alert(&f->l, "r-miner", 10, "xmrig");
	add_alert(&f->l, "r-tmp", 11, "allowed");  /* the rule's own exception */
	add_alert(&f->l, "r-miner", 12, "xmrig");  /* a second instance: folded */
	add_alert(&f->l, "r-miner", 13, "backup"); /* alerting.suppress */
	fx_submit(f, false, NULL, 0);
	assert_int_equal(f->l.len, 0); /* moved into the manager */
	assert_int_equal(f->c.raised, 1);
	assert_int_equal(f->c.suppressed, 2);
	assert_int_equal(f->c.folded, 1);
	assert_int_equal(f->c.deliveries, 1);
	/* persisted before delivery */
	assert_int_equal(count(s, "SELECT count(*) FROM alerts"), 1);
	assert_int_equal(count(s, "SELECT count(*) FROM alert_deliveries WHERE sink = 'f'"), 1);
	assert_int_equal(count(s, "SELECT count(*) FROM alert_state WHERE status = 'open'"), 4);
	assert_int_equal(count(s, "SELECT count(*) FROM alert_suppressed WHERE kind = 'exception'"
				  " AND exception = 'rule r-tmp exceptions[0]' AND pid = 11"),
			 1);
	assert_int_equal(count(s, "SELECT count(*) FROM alert_suppressed WHERE kind = 'exception'"
				  " AND exception = 'alerting.suppress[0]' AND reason = 'nightly'"
				  " AND exception_origin LIKE 't.yaml:2:%'"),
			 1);
	assert_int_equal(count(s, "SELECT count(*) FROM alert_suppressed WHERE kind = 'folded'"
				  " AND pid = 12 AND folded_into = (SELECT id FROM alerts)"),
			 1);
	assert_int_equal(count(s, "SELECT folded FROM dedup_windows"), 1);
	assert_int_equal(de_alertmgr_drain(f->m, NULL, &f->e), 0);
	assert_int_equal(lines(f->out), 1);
	assert_int_equal(count(s, "SELECT count(*) FROM alert_deliveries WHERE status ="
				  " 'delivered' AND attempts = 1 AND delivered_at > 0"),
			 1);

	/* the same matches again, in a restarted manager: nothing new */
	fx_close(f);
	fx_open(f, f->yaml, &set);
	add_alert(&f->l, "r-miner", 10, "xmrig");
	add_alert(&f->l, "r-tmp", 11, "allowed");
	add_alert(&f->l, "r-miner", 12, "xmrig");
	add_alert(&f->l, "r-miner", 13, "backup");
	fx_submit(f, true, res, 2);
	assert_int_equal(f->c.raised, 0);
	assert_int_equal(f->c.repeats, 4);
	assert_int_equal(f->c.resolved, 0);
	assert_int_equal(count(s, "SELECT count(*) FROM alert_suppressed"), 3);

	/* pid 10 stops matching (still alive), pid 12 exits; r-tmp did not finish */
	snapshot(s, (const uint32_t[]){10, 11, 13},
		 (const char *const[]){"xmrig", "allowed", "backup"}, 3);
	res[0].status = -ETIMEDOUT;
	add_alert(&f->l, "r-miner", 13, "backup");
	fx_submit(f, true, res, 2);
	assert_int_equal(f->c.resolved, 2);
	assert_int_equal(count(s, "SELECT count(*) FROM alert_state WHERE status = 'resolved'"
				  " AND pid = 10 AND resolution = 'no longer matches'"),
			 1);
	assert_int_equal(count(s, "SELECT count(*) FROM alert_state WHERE status = 'resolved'"
				  " AND pid = 12 AND resolution = 'exited'"),
			 1);
	assert_int_equal(count(s, "SELECT count(*) FROM alert_state WHERE status = 'open'"), 2);
	/* the sink takes resolved alerts: one for pid 10's alert (12's was folded) */
	assert_int_equal(count(s, "SELECT count(*) FROM alerts WHERE kind = 'resolved'"), 1);
	assert_int_equal(de_alertmgr_drain(f->m, NULL, &f->e), 0);
	assert_int_equal(lines(f->out), 2);
	/* pid 10 matches again: its state was resolved, so this is a new match
	   (folded into the window of its first alert), not a repeat */
	add_alert(&f->l, "r-miner", 10, "xmrig");
	fx_submit(f, false, NULL, 0);
	assert_int_equal(f->c.repeats, 0);
	assert_int_equal(f->c.folded, 1);
	assert_int_equal(count(s, "SELECT count(*) FROM alert_state WHERE status = 'open'"), 3);
	/* and again: now a repeat of the open state */
	add_alert(&f->l, "r-miner", 10, "xmrig");
	fx_submit(f, false, NULL, 0);
	assert_int_equal(f->c.repeats, 1);
	fx_close(f); /* it holds the rule set */
	rules_free(&set);
}

static void test_summary(void **state)
{
	struct fx *f = *state;
	struct de_store *s = f->s;

	snprintf(f->yaml, sizeof(f->yaml),
		 "alerting:\n  sinks: [{ name: f, type: file, path: \"%s\", format: json }]\n",
		 f->out);
	fx_open(f, f->yaml, NULL);
	for (uint32_t p = 20; p < 25; p++)
		add_alert(&f->l, "miner", p, "xmrig");
	fx_submit(f, false, NULL, 0);
	assert_int_equal(f->c.raised, 1);
	assert_int_equal(f->c.folded, 4);
	/* close the window as if an hour went by */
	assert_int_equal(sqlite3_exec(de_store_db(s), "UPDATE dedup_windows SET end_ms = 0", NULL,
				      NULL, NULL),
			 SQLITE_OK);
	fx_close(f);
	fx_open(f, f->yaml, NULL);
	assert_int_equal(de_alertmgr_poll(f->m, &f->e), 0);
	assert_int_equal(count(s, "SELECT count(*) FROM dedup_windows"), 0);
	assert_int_equal(count(s, "SELECT count(*) FROM alerts WHERE kind = 'summary'"
				  " AND title LIKE '%(4 more in 60 minutes)'"
				  " AND description LIKE '4 more in 60 minutes, last at %'"),
			 1);
}

static void test_restart_and_bound(void **state)
{
	struct fx *f = *state;
	struct de_store *s = f->s;

	snprintf(f->yaml, sizeof(f->yaml),
		 "alerting:\n  max_queue_size: 2\n  deduplication: { enabled: false }\n"
		 "  sinks: [{ name: f, type: file, path: \"%s\" }]\n",
		 f->out);
	/* a manager whose sink cannot write yet (the path is a directory) gives up on nothing:
	 * closed at once, its deliveries stay pending in the store */
	fx_open(f, f->yaml, NULL);
	for (uint32_t p = 100; p < 120; p++)
		add_alert(&f->l, "r", p, "x");
	fx_submit(f, false, NULL, 0);
	assert_int_equal(f->c.raised, 20);
	fx_close(f); /* may have delivered some; the rest stay pending */
	int64_t pending =
		count(s, "SELECT count(*) FROM alert_deliveries WHERE status = 'pending'");
	int64_t done = count(s, "SELECT count(*) FROM alert_deliveries WHERE status = 'delivered'");
	assert_int_equal(pending + done, 20);
	/* written but not yet recorded when it closed: at most what was in flight */
	assert_true((int64_t)lines(f->out) >= done && (int64_t)lines(f->out) <= done + 2);
	/* the next manager delivers what was left, through a queue of two */
	fx_open(f, f->yaml, NULL);
	for (int i = 0; i < 2000 && count(s, "SELECT count(*) FROM alert_deliveries WHERE"
					     " status != 'delivered'") > 0;
	     i++) {
		struct timespec ts = {0, 5000000};
		assert_int_equal(de_alertmgr_poll(f->m, &f->e), 0);
		nanosleep(&ts, NULL);
	}
	assert_int_equal(count(s, "SELECT count(*) FROM alert_deliveries WHERE status ="
				  " 'delivered'"),
			 20);
	assert_int_equal(distinct_ids(f->out), 20); /* every one, at least once */
	assert_true(lines(f->out) <= 22);	    /* repeats: only what was in flight */
}

static void test_retry_dead_circuit(void **state)
{
	struct fx *f = *state;
	struct de_store *s = f->s;
	struct de_outbox *ob = NULL;
	size_t n = 0;

	/* port 9 on loopback: nothing listens (connection refused, transient) */
	const char *yaml = "alerting:\n  deduplication: { enabled: false }\n"
			   "  retry: { max_attempts: 3, initial_delay_ms: 1, max_delay_ms: 4 }\n"
			   "  circuit_breaker: { failure_threshold: 2, reset_timeout_ms: 600000 }\n"
			   "  sinks: [{ name: h, type: webhook, url: \"http://127.0.0.1:9/x\" }]\n";
	fx_open(f, yaml, NULL);
	for (uint32_t p = 200; p < 203; p++)
		add_alert(&f->l, "r", p, "x");
	fx_submit(f, false, NULL, 0);
	assert_int_equal(de_alertmgr_drain(f->m, NULL, &f->e), 0);
	assert_int_equal(count(s, "SELECT count(*) FROM alert_deliveries WHERE status = 'dead'"
				  " AND attempts = 3 AND error LIKE 'gave up after 3 attempts: %'"),
			 3);
	/* two real failures (of the oldest: the others wait behind it, failing at once) opened
	 * the circuit; its last attempt failed fast */
	assert_true(count(s,
			  "SELECT count(*) FROM alert_deliveries WHERE error LIKE"
			  " '%: circuit open after 2 consecutive failures; next probe in %'") >= 1);
	struct de_alertmgr_stats st;
	de_alertmgr_get_stats(f->m, &st);
	assert_int_equal(st.dead, 3);
	assert_int_equal(st.attempts_failed, 9);
	assert_int_equal(st.outstanding, 0);
	/* the dead-letter queue: retry puts them back as pending, due now */
	assert_int_equal(de_outbox_open(s, &ob, &f->e), 0);
	assert_int_equal(de_outbox_dlq_retry(ob, NULL, de_now_ms(), &n, &f->e), 0);
	assert_int_equal(n, 3);
	assert_int_equal(count(s, "SELECT count(*) FROM alert_deliveries WHERE status ="
				  " 'pending' AND attempts = 0"),
			 3);
	assert_int_equal(de_outbox_dlq_purge(ob, 0, &n, &f->e), 0);
	assert_int_equal(n, 0); /* nothing dead now */
	de_outbox_close(ob);
}

/* The "id" values of the JSON lines in path, in order, into ids (at most max); their number. */
static size_t ids_in_order(const char *path, char (*ids)[40], size_t max)
{
	FILE *f = fopen(path, "r");
	char line[8192];
	size_t n = 0;

	while (f && n < max && fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "{\"id\":\"");
		if (p)
			snprintf(ids[n++], 40, "%.36s", p + 7);
	}
	if (f)
		fclose(f);
	return n;
}

/*
 * After an outage a sink gets its alerts in the order they were raised,
 * oldest first, not in the order their retries fell due: the file sink's
 * path is a directory for a while (every write fails, a transient
 * failure), alerts keep coming, and each failed delivery would be retried
 * after its own (jittered) delay; then the path can be written again.
 */
static void test_order_after_outage(void **state)
{
	struct fx *f = *state;
	struct de_store *s = f->s;
	enum { N = 30 };
	char want[N][40], got[N + 8][40];
	sqlite3_stmt *st;
	size_t n = 0;

	snprintf(f->yaml, sizeof(f->yaml),
		 "alerting:\n  deduplication: { enabled: false }\n"
		 "  retry: { max_attempts: 100, initial_delay_ms: 1, max_delay_ms: 20 }\n"
		 "  circuit_breaker: { failure_threshold: 1000 }\n"
		 "  sinks: [{ name: f, type: file, path: \"%s\", format: json, fsync: never }]\n",
		 f->out);
	fx_open(f, f->yaml, NULL);
	/* the outage: the path is a directory, reopened as after a SIGHUP */
	assert_int_equal(unlink(f->out), 0);
	assert_int_equal(mkdir(f->out, 0700), 0);
	de_alertmgr_reopen(f->m);
	for (uint32_t p = 600; p < 600 + N; p++) {
		add_alert(&f->l, "r", p, "x");
		fx_submit(f, false, NULL, 0);
		assert_int_equal(de_alertmgr_poll(f->m, &f->e), 0);
	}
	/* until the first has been tried a few times (the others retried too, or waiting) */
	for (int i = 0; i < 20000 && count(s, "SELECT max(attempts) FROM alert_deliveries") < 5;
	     i++) {
		struct timespec ts = {0, 1000000};
		assert_int_equal(de_alertmgr_poll(f->m, &f->e), 0);
		nanosleep(&ts, NULL);
	}
	assert_true(count(s, "SELECT max(attempts) FROM alert_deliveries") >= 5);
	assert_int_equal(count(s, "SELECT count(*) FROM alert_deliveries WHERE status ="
				  " 'delivered'"),
			 0);
	/* the sink is back */
	assert_int_equal(rmdir(f->out), 0);
	de_alertmgr_reopen(f->m);
	assert_int_equal(de_alertmgr_drain(f->m, NULL, &f->e), 0);
	assert_int_equal(count(s, "SELECT count(*) FROM alert_deliveries WHERE status ="
				  " 'delivered'"),
			 N);
	/* every alert once, in the order raised */
	assert_int_equal(sqlite3_prepare_v2(de_store_db(s), "SELECT id FROM alerts ORDER BY rowid",
					    -1, &st, NULL),
			 SQLITE_OK);
	while (n < N && sqlite3_step(st) == SQLITE_ROW)
		snprintf(want[n++], 40, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	assert_int_equal(n, N);
	assert_int_equal(ids_in_order(f->out, got, N + 8), N);
	for (size_t i = 0; i < N; i++)
		if (strcmp(want[i], got[i]) != 0)
			fail_msg("line %zu of the sink's file is alert %s; raised as number %zu "
				 "was %s",
				 i + 1, got[i], i + 1, want[i]);
}

/* What the observer saw. */
struct seen {
	struct de_store *s;
	size_t raised, committed_when_raised, sinks;
	size_t retry, dead, delivered;
	uint32_t last_attempts;
};

static void seen_raised(void *arg, const struct de_alert *a, size_t nsinks)
{
	struct seen *x = arg;
	char id[DE_UUID_STR_LEN + 1], sql[200];

	de_uuid_format(&a->id, id);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM alerts WHERE id = '%s'", id);
	x->raised++;
	x->committed_when_raised += count(x->s, sql) == 1;
	x->sinks += nsinks;
}

static void seen_delivery(void *arg, const char *alert_id, const char *sink,
			  enum de_outbox_status st, uint32_t attempts, const char *error)
{
	struct seen *x = arg;

	assert_string_equal(sink, "h");
	assert_int_equal(strlen(alert_id), DE_UUID_STR_LEN);
	assert_true(st == DE_OUTBOX_DELIVERED ? error == NULL : error != NULL);
	x->retry += st == DE_OUTBOX_PENDING;
	x->dead += st == DE_OUTBOX_DEAD;
	x->delivered += st == DE_OUTBOX_DELIVERED;
	x->last_attempts = attempts;
}

/*
 * The observer (the agent's audit ledger): told of each alert committed,
 * after its commit, never of a repeat; and of each delivery outcome
 * recorded, the failures that will be retried too.
 */
static void test_observer(void **state)
{
	struct fx *f = *state;
	struct de_store *s = f->s;
	struct seen x = {.s = s};
	struct de_alertmgr_observer o = {seen_raised, seen_delivery, &x};
	const uint32_t pids[] = {300, 301};
	const char *const names[] = {"a", "b"};

	snapshot(s, pids, names, 2);
	const char *yaml = "alerting:\n  deduplication: { enabled: false }\n"
			   "  retry: { max_attempts: 2, initial_delay_ms: 1, max_delay_ms: 2 }\n"
			   "  circuit_breaker: { failure_threshold: 100 }\n"
			   "  sinks: [{ name: h, type: webhook, url: \"http://127.0.0.1:9/x\" }]\n";
	fx_open(f, yaml, NULL);
	de_alertmgr_set_observer(f->m, &o);
	add_alert(&f->l, "r", 300, "a");
	add_alert(&f->l, "r", 301, "b");
	fx_submit(f, false, NULL, 0);
	assert_int_equal(f->c.raised, 2);
	assert_int_equal(x.raised, 2);
	assert_int_equal(x.committed_when_raised, 2); /* in the store when told */
	assert_int_equal(x.sinks, 2);
	/* the same instances again: repeats, nothing raised, nothing told */
	add_alert(&f->l, "r", 300, "a");
	fx_submit(f, false, NULL, 0);
	assert_int_equal(f->c.repeats, 1);
	assert_int_equal(x.raised, 2);
	/* nothing listens: each delivery fails once (retry), then is dead */
	assert_int_equal(de_alertmgr_drain(f->m, NULL, &f->e), 0);
	assert_int_equal(x.retry, 2);
	assert_int_equal(x.dead, 2);
	assert_int_equal(x.delivered, 0);
	assert_int_equal(x.last_attempts, 2);
	/* cleared: told nothing more */
	de_alertmgr_set_observer(f->m, NULL);
	add_alert(&f->l, "r2", 300, "a");
	fx_submit(f, false, NULL, 0);
	assert_int_equal(f->c.raised, 1);
	assert_int_equal(x.raised, 2);
}

/*
 * kill -9 after submit, before any outcome is recorded: the deliveries are
 * committed in a worker's hands (not due in the store), and the next run
 * finds them at its start and delivers every one (repeats: only what the
 * killed worker had written).
 */
static void test_killed_before_delivery(void **state)
{
	struct fx *f = *state;
	struct de_store_config sc = {
		.path = f->path, .max_size_mb = 100, .wal_mode = true, .max_connections = 1};
	struct de_store *s;
	struct de_error e = {0};
	int fd[2];
	char ok = 0;

	snprintf(f->yaml, sizeof(f->yaml),
		 "alerting:\n  deduplication: { enabled: false }\n"
		 "  sinks: [{ name: f, type: file, path: \"%s\", fsync: never }]\n",
		 f->out);
	de_store_close(f->s); /* the killed run holds the store's lock */
	f->s = NULL;
	assert_int_equal(pipe2(fd, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) { /* the run that is killed */
		struct de_store *cs = NULL;
		struct de_alertmgr *m = NULL;
		struct de_alert_list l = {0};
		close(fd[0]);
		for (uint32_t p = 200; p < 205; p++)
			add_alert(&l, "r", p, "x");
		if (de_store_open(&sc, &cs, &e) < 0 ||
		    de_alertmgr_open(config(f->yaml), cs, NULL, &m, &e) < 0 ||
		    de_alertmgr_submit(m, &l, false, NULL, 0, NULL, &e) < 0) {
			fprintf(stderr, "the run to kill: %s\n", e.message);
			_exit(1);
		}
		ok = 1;
		if (write(fd[1], &ok, 1) != 1)
			_exit(1);
		for (;;)
			pause(); /* killed here, its outcomes never recorded */
	}
	close(fd[1]);
	assert_int_equal(read(fd[0], &ok, 1), 1); /* submit returned: committed */
	close(fd[0]);
	assert_int_equal(kill(pid, SIGKILL), 0);
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	if (de_store_open(&sc, &f->s, &e) < 0)
		fail_msg("open: %s", e.message);
	s = f->s;
	/* every delivery committed, none recorded, none in the due index yet */
	assert_int_equal(count(s, "SELECT count(*) FROM alert_deliveries WHERE status ="
				  " 'pending' AND attempts = 0 AND next_attempt_at IS NULL"),
			 5);
	assert_int_equal(count(s, "SELECT count(*) FROM alerts"), 5);
	/* the next run: found at its start and delivered */
	fx_open(f, f->yaml, NULL);
	assert_int_equal(count(s, "SELECT count(*) FROM alert_deliveries WHERE"
				  " next_attempt_at IS NULL AND status = 'pending'"),
			 0);
	assert_int_equal(de_alertmgr_drain(f->m, NULL, &f->e), 0);
	assert_int_equal(count(s, "SELECT count(*) FROM alert_deliveries WHERE status ="
				  " 'delivered' AND attempts = 1 AND delivered_at IS NOT NULL"),
			 5);
	assert_int_equal(distinct_ids(f->out), 5);
	assert_true(lines(f->out) <= 10);
}

/* Deliveries recorded together: each its own attempts, in statements of a few hundred. */
static void test_record_delivered(void **state)
{
	struct de_store *s = ((struct fx *)*state)->s;
	struct de_outbox *ob = NULL;
	struct de_error e = {0};
	const char *sinks[] = {"a", "b"};
	enum { N = 700 };
	int64_t ids[2 * N];
	uint32_t att[2 * N];

	assert_int_equal(de_outbox_open(s, &ob, &e), 0);
	assert_int_equal(de_outbox_tx_begin(ob, &e), 0);
	for (int i = 0; i < N; i++) {
		struct de_alert a = {.alert_time = 1000 + i, .severity = DE_SEV_LOW};
		de_uuid_v7(&a.id, a.alert_time);
		a.rule_id = "r";
		a.title = "t";
		a.description = "d";
		a.dedupe_key = "k";
		a.alert_data = json_array();
		assert_int_equal(de_outbox_add(ob, &a, sinks, 2, ids + 2 * i, &e), 0);
		json_decref(a.alert_data);
	}
	/* one failed earlier: its error goes when it is delivered */
	assert_int_equal(
		de_outbox_record(ob, ids[4], DE_OUTBOX_PENDING, 1, 1100, 1200, "refused", &e), 0);
	for (int i = 0; i < 2 * N; i++)
		att[i] = (uint32_t)(i % 3 + 1);
	/* every sink a's, and none of sink b's */
	int64_t a_ids[N];
	uint32_t a_att[N];
	for (int i = 0; i < N; i++) {
		a_ids[i] = ids[2 * i];
		a_att[i] = att[2 * i];
	}
	assert_int_equal(de_outbox_record_delivered(ob, a_ids, a_att, N, 5000, &e), 0);
	assert_int_equal(de_outbox_tx_commit(ob, &e), 0);
	assert_int_equal(count(s, "SELECT count(*) FROM alert_deliveries WHERE sink = 'a' AND"
				  " status = 'delivered' AND delivered_at = 5000 AND"
				  " last_attempt_at = 5000 AND error IS NULL AND"
				  " next_attempt_at IS NULL"),
			 N);
	assert_int_equal(count(s, "SELECT count(*) FROM alert_deliveries WHERE sink = 'a' AND"
				  " attempts = (id - 1) % 3 + 1"),
			 N);
	assert_int_equal(count(s, "SELECT count(*) FROM alert_deliveries WHERE sink = 'b' AND"
				  " status = 'pending' AND attempts = 0 AND delivered_at IS NULL"),
			 N);
	de_outbox_close(ob);
}

static int collect_ids(const struct de_state_row *r, void *arg)
{
	int64_t *ids = arg;
	ids[ids[0]++ + 1] = r->id;
	return 0;
}

/*
 * The open states live in memory only (schema 10 has no index of them):
 * a key of any length is found, in the transaction that opened it and
 * after the outbox is opened again (loaded from the store); a rule's open
 * states are its own (not those of a rule whose id it begins), in id
 * order; resolving a state already resolved does not forget a newer open
 * state of the same key.
 */
static void test_open_states_in_memory(void **state)
{
	struct de_store *s = ((struct fx *)*state)->s;
	struct de_outbox *ob = NULL;
	struct de_error e = {0};
	struct de_subject p = {.pid = 7};
	char *longrule = malloc(3000);
	int64_t id = 0, ids[8] = {0};

	memset(longrule, 'x', 2999);
	longrule[2999] = '\0';
	assert_int_equal(de_outbox_open(s, &ob, &e), 0);
	assert_int_equal(de_outbox_tx_begin(ob, &e), 0);
	assert_int_equal(de_outbox_state_open(ob, "r2", "p:7", &p, NULL, 10, &e), 0);	  /* 1 */
	assert_int_equal(de_outbox_state_open(ob, "r", "p:7", &p, "a1", 10, &e), 0);	  /* 2 */
	assert_int_equal(de_outbox_state_open(ob, longrule, "p:7", &p, NULL, 10, &e), 0); /* 3 */
	assert_int_equal(de_outbox_state_open(ob, "r", "p:8", &p, "a2", 10, &e), 0);	  /* 4 */
	assert_int_equal(de_outbox_state_open_id(ob, longrule, "p:7", &id, &e), 0);
	assert_int_equal(id, 3);
	assert_int_equal(de_outbox_tx_commit(ob, &e), 0);
	de_outbox_close(ob);

	assert_int_equal(de_outbox_open(s, &ob, &e), 0);
	assert_int_equal(de_outbox_state_open_id(ob, longrule, "p:7", &id, &e), 0);
	assert_int_equal(id, 3);
	assert_int_equal(de_outbox_state_open_id(ob, "r", "p:9", &id, &e), 0);
	assert_int_equal(id, 0);
	assert_int_equal(de_outbox_states_open(ob, "r", collect_ids, ids, &e), 0);
	assert_int_equal(ids[0], 2);
	assert_int_equal(ids[1], 2);
	assert_int_equal(ids[2], 4);
	/* state 2 resolved, a new one of its key opened, then 2 resolved again */
	assert_int_equal(de_outbox_tx_begin(ob, &e), 0);
	assert_int_equal(de_outbox_state_resolve(ob, 2, 20, "exited", &e), 0);
	assert_int_equal(de_outbox_state_open_id(ob, "r", "p:7", &id, &e), 0);
	assert_int_equal(id, 0);
	assert_int_equal(de_outbox_state_open(ob, "r", "p:7", &p, "a3", 30, &e), 0); /* 5 */
	assert_int_equal(de_outbox_state_resolve(ob, 2, 40, "exited", &e), 0);
	assert_int_equal(de_outbox_state_open_id(ob, "r", "p:7", &id, &e), 0);
	assert_int_equal(id, 5);
	assert_int_equal(de_outbox_tx_commit(ob, &e), 0);
	assert_int_equal(count(s, "SELECT resolved_at FROM alert_state WHERE id = 2"), 20);
	ids[0] = 0;
	assert_int_equal(de_outbox_states_open(ob, "r", collect_ids, ids, &e), 0);
	assert_int_equal(ids[0], 2);
	assert_int_equal(ids[1], 4);
	assert_int_equal(ids[2], 5);
	de_outbox_close(ob);
	free(longrule);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_state_exceptions_dedup, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_summary, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_restart_and_bound, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_retry_dead_circuit, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_order_after_outage, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_observer, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_record_delivered, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_open_states_in_memory, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_killed_before_delivery, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
