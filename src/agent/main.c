/*
 * daemoneye-worker — the unprivileged half of daemoneye-agent
 * (docs/process-model.md): started by the privileged parent (parent.c) as
 * app.run_as_user with the control channel on descriptor 3, never by hand.
 *
 * The worker's cycle: ask procmond (over the channel the parent hands it,
 * procmond_client.c) for a scan of every process, replace the event
 * store's snapshot, run every enabled detection rule over it, and deliver
 * the alerts (stdout now; more sinks later).  `--once` runs one cycle and
 * everyone exits; otherwise a cycle starts every app.scan_interval_ms
 * (CLOCK_MONOTONIC: a clock stepped back delays nothing) until SIGTERM.
 *
 * Between cycles, when procmond has the kernel's process events (root,
 * collection.events), each exec and exit it forwards is applied to the
 * store at once as an "event" scan, and the rules that concern one process
 * run over each process that exec'd, so an alert does not wait for the
 * next cycle.  The full scan each cycle reconciles anything missed.
 *
 * SIGTERM: the cycle in flight may finish within a second (a rule still
 * running is interrupted then), queued events are applied, the stores
 * close, and the worker exits; the parent stops procmond after it.
 *
 * Exit status (sysexits): 0 ok, 64 usage, 78 configuration, 74 I/O or
 * database, 73 cannot create the state directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "daemoneye/alert.h"
#include "daemoneye/clock.h"
#include "fleet_wiring.h"
#include "daemoneye/collect.h"
#include "daemoneye/config.h"
#include "daemoneye/detect.h"
#include "daemoneye/fileio.h"
#include "daemoneye/log.h"
#include "daemoneye/rules.h"
#include "daemoneye/store.h"
#include "daemoneye/term.h"
#include "parent.h"

volatile sig_atomic_t agent_stop;
/* the drain time after SIGTERM is over: no further rule starts */
static volatile sig_atomic_t drain_over;
/* the engine's connection, interrupted when the drain time is over (SIGALRM) */
static sqlite3 *volatile interrupt_db;

/* the thread that runs the cycle: the one whose waits a signal must interrupt */
static pid_t main_tid;

/*
 * A signal sent to the process goes to any thread that does not block it,
 * and libnats's, the sinks' and the store's threads do not: handled there,
 * it would set the flag but leave the main thread asleep in poll or read
 * until its timeout (SIGTERM took over 3 s with a stopped NATS server).
 * So a handler on another thread hands the signal on to the main thread.
 */
static bool on_main_thread(int sig)
{
	int e;

	if (gettid() == main_tid)
		return true;
	e = errno;
	(void)syscall(SYS_tgkill, getpid(), main_tid, sig);
	errno = e;
	return false;
}

static void on_stop(int sig)
{
	if (!on_main_thread(sig))
		return;
	if (!agent_stop)
		alarm((AGENT_DRAIN_MS + 999) / 1000);
	agent_stop = 1;
}

static void on_alarm(int sig)
{
	if (!on_main_thread(sig))
		return;
	drain_over = 1;
	if (interrupt_db)
		sqlite3_interrupt(interrupt_db); /* sets a flag: fine in a handler */
}

/* ---- detection and settings (also on reload) --------------------------------------- */

/* A file's modification time in ns (0: none). */
static int64_t file_mtime(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec
				    : 0;
}

/* A new rule set's cache: nothing known yet, every rule runs at the first cycle. */
static int rules_cache_init(struct agent_detection *d)
{
	const char **sqls = calloc(d->rules.len + 1, sizeof(*sqls));
	int rc;

	if (!sqls)
		return -ENOMEM;
	for (size_t i = 0; i < d->rules.len; i++)
		sqls[i] = d->rules.items[i].sql_query;
	rc = rulecache_init(&d->cache, sqls, d->rules.len);
	free(sqls);
	return rc;
}

void agent_detection_clear(struct agent_detection *det)
{
	de_engine_close(det->engine);
	de_rule_set_clear(&det->rules);
	de_rule_problems_clear(&det->refused);
	free(det->results);
	rulecache_free(&det->cache);
	de_validator_free(det->validator);
	memset(det, 0, sizeof(*det));
}

int agent_detection_load(struct agent *ag, const struct de_config *cfg, struct agent_detection *det,
			 struct de_error *err)
{
	struct agent_detection d = {0};
	struct de_rule_problems problems = {0};
	char *user_dir = NULL, *state_file = NULL;
	int rc;

	if ((rc = de_validator_from_config(cfg, &d.validator, err)) < 0 ||
	    (rc = de_rules_load_config(cfg, d.validator, &d.rules, &problems, err)) < 0)
		goto out;
	for (size_t i = 0; i < ag->opts->nrule_files; i++)
		if ((rc = de_rules_load_file(ag->opts->rule_files[i], DE_RULE_FILE, d.validator,
					     &d.rules, &problems, err)) < 0)
			goto out;
	/* the overrides (rules enable/disable, the watchdog's) cover --rules files too;
	   their time now, so that a change after this load is seen (rules_state_watch) */
	if ((rc = de_rules_paths(cfg, &user_dir, &state_file, err)) < 0)
		goto out;
	d.state_mtime = file_mtime(state_file);
	if ((rc = de_rules_state_apply(state_file, &d.rules, err)) < 0)
		goto out;
	/* a bad rule is reported and skipped; the others run */
	for (size_t i = 0; i < problems.len; i++)
		de_log_warnx("rule skipped: %s", problems.items[i]);
	d.problems = problems.len;
	d.refused = problems;
	memset(&problems, 0, sizeof(problems));
	if (!(d.results = calloc(d.rules.len + 1, sizeof(*d.results))) ||
	    rules_cache_init(&d) < 0) {
		rc = de_error_set(err, DE_ERR_DETECTION, ENOMEM, "out of memory");
		goto out;
	}
	/* on the store's cache: the rules read the batches it holds uncommitted */
	if ((rc = de_engine_open_shared(ag->store_path, de_store_shared_vfs(ag->store), d.validator,
					&d.engine, err)) < 0)
		goto out;
	*det = d;
	memset(&d, 0, sizeof(d));
out:
	de_rule_problems_clear(&problems);
	agent_detection_clear(&d);
	free(user_dir);
	free(state_file);
	return rc;
}

int agent_settings_apply(struct agent *ag, const struct de_config *cfg, struct de_error *err)
{
	const char *s;
	uint64_t timeout, max_mb, free_mb, queue_mb;
	int rc;

	if ((rc = de_config_get_u64(cfg, "database.retention_days", &ag->retention_days, err)) <
		    0 ||
	    (rc = de_config_get_u64(cfg, "app.scan_interval_ms", &ag->scan_interval_ms, err)) < 0 ||
	    (rc = de_config_get_u64(cfg, "app.scan_timeout_ms", &timeout, err)) < 0 ||
	    (rc = de_config_get_u64(cfg, "detection.rule_budget_ms", &ag->rule_budget_ms, err)) <
		    0 ||
	    (rc = de_config_get_u64(cfg, "detection.rule_budget_strikes", &ag->rule_strikes, err)) <
		    0 ||
	    (rc = de_config_get_u64(cfg, "detection.exec_batch_wait_ms", &ag->exec_wait.wait_ms,
				    err)) < 0 ||
	    (rc = de_config_get_u64(cfg, "detection.event_queue_mb", &queue_mb, err)) < 0 ||
	    (rc = de_config_get_u64(cfg, "database.max_size_mb", &max_mb, err)) < 0 ||
	    (rc = de_config_get_u64(cfg, "database.min_free_disk_mb", &free_mb, err)) < 0)
		return rc;
	ag->pm.timeout_ms = timeout;
	ag->pm.queue_max = (size_t)queue_mb << 20;
	ag->min_free_bytes = free_mb * 1024 * 1024;
	if (ag->store)
		de_store_set_limits(ag->store, max_mb, ag->min_free_bytes);
	if (de_config_get_str(cfg, "logging.level", &s, NULL) == 0)
		de_log_set_level((enum de_log_level)de_log_level_parse(s));
	if (de_config_get_str(cfg, "logging.format", &s, NULL) == 0)
		de_log_set_format((enum de_log_format)de_log_format_parse(s));
	return 0;
}

/* Resize the per-rule strike counters to the rule set (after a load). */
static int reset_strikes(struct agent *ag)
{
	free(ag->strikes);
	ag->strikes = calloc(ag->det.rules.len + 1, sizeof(*ag->strikes));
	return ag->strikes ? 0 : -ENOMEM;
}

static void slow_refresh(struct agent *ag);

int agent_detection_swap(struct agent *ag, struct agent_detection *det,
			 struct de_alertmgr_config *acfg, struct de_error *err)
{
	struct agent_detection old = ag->det;
	struct de_alertmgr_config *back = NULL;
	int rc;

	/* the manager compiled the old rules' exceptions: it goes with them */
	interrupt_db = NULL;
	de_alertmgr_close(ag->alerts);
	ag->alerts = NULL;
	ag->det = *det;
	if ((rc = de_alertmgr_open(acfg, ag->store, &ag->det.rules, &ag->alerts, err)) < 0) {
		/* back to what ran: the old rules, a manager on the old configuration */
		struct de_error e2 = {0};
		ag->det = old;
		if (de_alertmgr_config_load(ag->cfg, &back, &e2) < 0 ||
		    de_alertmgr_open(back, ag->store, &ag->det.rules, &ag->alerts, &e2) < 0)
			de_log_errorx("alerting is off until the next reload: %s", e2.message);
		agent_ledger_observe(ag);
		interrupt_db = de_engine_db(ag->det.engine);
		return rc;
	}
	agent_detection_clear(&old);
	memset(det, 0, sizeof(*det));
	agent_ledger_observe(ag);
	interrupt_db = de_engine_db(ag->det.engine);
	ag->rules_state_mtime = ag->det.state_mtime;
	/* the new set read rules-state.json: a rule `rules enable` turned back on
	   since the last cycle is no longer the watchdog's */
	slow_refresh(ag);
	if (reset_strikes(ag) < 0)
		de_log_warnx("out of memory: the rule watchdog is off until the next reload");
	return 0;
}

static int setup(struct agent *ag, struct de_error *err)
{
	struct de_store_config sc = {0};
	uint64_t u;
	int rc;

	if ((rc = de_config_state_dir(ag->cfg, &ag->state_dir, err)) < 0 ||
	    (rc = de_config_store_path(ag->cfg, &ag->store_path, err)) < 0)
		return rc;
	/* the parent made it (and gave it to us) */
	if (access(ag->state_dir, W_OK | X_OK) < 0) {
		struct passwd *pw = getpwuid(geteuid());
		return de_error_set(err, DE_ERR_IO, EACCES,
				    "state directory %s is not writable by %s (uid %u; its parents "
				    "must be searchable by that user; or set app.state_dir or "
				    "app.run_as_user)",
				    ag->state_dir, pw ? pw->pw_name : "us", (unsigned)geteuid());
	}
	sc.path = ag->store_path;
	if ((rc = de_config_get_u64(ag->cfg, "database.max_size_mb", &sc.max_size_mb, err)) < 0 ||
	    (rc = de_config_get_bool(ag->cfg, "database.wal_mode", &sc.wal_mode, err)) < 0 ||
	    (rc = de_config_get_u64(ag->cfg, "database.max_connections", &u, err)) < 0 ||
	    (rc = de_config_get_u64(ag->cfg, "database.sample_interval_s", &sc.sample_interval_s,
				    err)) < 0)
		return rc;
	sc.max_connections = (uint32_t)u;
	sc.shared_cache = true; /* the rules' connection reads held batches (below) */
	if ((rc = de_config_get_bool(ag->cfg, "collection.connections", &ag->want_conns, err)) <
		    0 ||
	    (rc = de_config_get_u64(ag->cfg, "collection.full_refresh_every", &ag->conn_every,
				    err)) < 0)
		return rc;
	/* user and group names of processes: a few dozen on any host */
	if (de_idcache_new(4096, 300000, &ag->names) < 0)
		return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	if ((rc = de_store_open(&sc, &ag->store, err)) < 0)
		return rc;
	/* the exec path commits all the time: its WAL is folded on a thread of
	   the store's, never in an event batch's commit */
	if ((rc = de_store_background_checkpoints(ag->store, AGENT_WAL_CHECKPOINT_BYTES, err)) < 0)
		return rc;
	de_store_hold_batches(ag->store, AGENT_BATCH_COMMIT_MS);
	de_log_info("event store %s", ag->store_path);
	if ((rc = agent_detection_load(ag, ag->cfg, &ag->det, err)) < 0)
		return rc;
	interrupt_db = de_engine_db(ag->det.engine);
	ag->rules_state_mtime = ag->det.state_mtime;
	de_log_info("%zu detection rules loaded", ag->det.rules.len);
	/* the sinks and exceptions (a bad one stops the worker here: 78), opened as our user */
	struct de_alertmgr_config *acfg = NULL;
	if ((rc = agent_fleet_check(ag->cfg, err)) < 0 ||
	    (rc = de_alertmgr_config_load(ag->cfg, &acfg, err)) < 0 ||
	    (rc = de_alertmgr_open(acfg, ag->store, &ag->det.rules, &ag->alerts, err)) < 0)
		return rc;
	if ((rc = agent_settings_apply(ag, ag->cfg, err)) < 0 ||
	    (rc = telemetry_open(ag, err)) < 0 || (rc = agent_ledger_open(ag, err)) < 0)
		return rc;
	agent_ledger_observe(ag);
	if (reset_strikes(ag) < 0)
		return de_error_set(err, DE_ERR_DETECTION, ENOMEM, "out of memory");
	if ((rc = agent_fleet_start(ag, err)) < 0)
		return rc;
	return 0;
}

/* ---- delivering alerts --------------------------------------------------------------- */

void agent_alerts(struct agent *ag, struct de_alert_list *alerts, bool full)
{
	struct de_alertmgr_counts c = {0};
	struct de_error err = {0};
	size_t n = alerts->len;

	if (!n && !full)
		return;
	telemetry_alerts(ag, alerts);
	if (de_alertmgr_submit(ag->alerts, alerts, full, ag->det.results, ag->det.rules.len, &c,
			       &err) < 0) {
		/* nothing was recorded: the next run raises them again */
		de_log_err(&err);
		de_alert_list_clear(alerts);
		return;
	}
	telemetry_alert_counts(ag, &c);
	if (n || c.resolved || c.summaries)
		de_log_debug("alerts: %zu from the rules, %zu raised, %zu repeats, %zu suppressed, "
			     "%zu folded, %zu resolved, %zu summaries, %zu deliveries queued",
			     n, c.raised, c.repeats, c.suppressed, c.folded, c.resolved,
			     c.summaries, c.deliveries);
	if (de_alertmgr_poll(ag->alerts, &err) < 0)
		de_log_err(&err);
}

/* ---- the rule watchdog ------------------------------------------------------------------ */

/*
 * An alert about the service itself (rule_id "daemoneye-<what>"), raised
 * like a rule's.  Takes description and data (either may be NULL: nothing
 * is raised).
 */
static void self_alert(struct agent *ag, const char *what, enum de_severity sev, const char *title,
		       char *description, const char *key, json_t *data)
{
	struct de_alert_list l = {0};
	struct de_alert *a;

	if (!(l.items = calloc(1, sizeof(*l.items)))) {
		free(description);
		json_decref(data);
		return;
	}
	l.len = l.cap = 1;
	a = &l.items[0];
	a->description = description;
	a->alert_data = data;
	if (de_uuid_v4(&a->id) < 0)
		goto out;
	a->alert_time = de_now_ms();
	a->severity = sev;
	if (asprintf(&a->rule_id, "daemoneye-%s", what) < 0)
		a->rule_id = NULL;
	a->title = strdup(title);
	if (asprintf(&a->dedupe_key, "daemoneye-%s:%s", what, key) < 0)
		a->dedupe_key = NULL;
	if (a->rule_id && a->title && a->description && a->dedupe_key && a->alert_data)
		agent_alerts(ag, &l, false);
out:
	de_alert_list_clear(&l);
}

/* An alert saying the watchdog disabled a rule (severity medium). */
static void alert_rule_disabled(struct agent *ag, const struct de_rule *r, int64_t last_us)
{
	char *d = NULL;

	if (asprintf(&d,
		     "Rule %s ran longer than detection.rule_budget_ms (%llu ms) %llu times in a "
		     "row (last run %lld ms) and is disabled until `daemoneye-cli rules enable "
		     "%s`.",
		     r->id, (unsigned long long)ag->rule_budget_ms,
		     (unsigned long long)ag->rule_strikes, (long long)(last_us / 1000), r->id) < 0)
		d = NULL;
	self_alert(ag, "rule-watchdog", DE_SEV_MEDIUM,
		   "Detection rule disabled: it keeps exceeding its time budget", d, r->id,
		   json_pack("{s:s, s:I, s:I, s:I}", "rule_id", r->id, "budget_ms",
			     (json_int_t)ag->rule_budget_ms, "last_run_ms",
			     (json_int_t)(last_us / 1000), "strikes",
			     (json_int_t)ag->rule_strikes));
}

/*
 * The store's free-disk watermark: say it (log and one alert, severity
 * high) when the store starts pruning for space or stops writing history,
 * and say when it is back.  Health shows it from ag->low_disk/history_off.
 */
static void store_disk_state(struct agent *ag, const struct de_prune_stats *ps)
{
	char *d = NULL;
	bool was_low = ag->low_disk, was_off = ag->history_off;

	ag->low_disk = ps->low_disk;
	ag->history_off = ps->history_off;
	if ((ps->low_disk && !was_low) || (ps->history_off && !was_off)) {
		de_log_warnx(
			"event store: %.1f MiB free, below database.min_free_disk_mb (%llu): %s",
			(double)ps->free_bytes / 1048576.0,
			(unsigned long long)(ag->min_free_bytes / 1048576),
			ps->history_off ? "no history left to prune, history is no longer "
					  "written (the snapshot and alerts still are)"
					: "pruning the oldest history");
		if (asprintf(&d,
			     "The file system of the event store %s has %.1f MiB free, below "
			     "database.min_free_disk_mb (%llu MiB). %s",
			     ag->store_path, (double)ps->free_bytes / 1048576.0,
			     (unsigned long long)(ag->min_free_bytes / 1048576),
			     ps->history_off
				     ? "No history is left to prune: process history is no longer "
				       "written until free space is back above 1.5 times the "
				       "watermark; the snapshot and alerts still are."
				     : "The oldest history is being pruned whatever its age.") < 0)
			d = NULL;
		self_alert(ag, "store-disk", DE_SEV_HIGH,
			   ps->history_off ? "Event store out of disk: history is no longer written"
					   : "Event store low on disk: pruning history",
			   d, ps->history_off ? "history_off" : "low_disk",
			   json_pack("{s:s, s:I, s:I, s:b}", "path", ag->store_path, "free_bytes",
				     (json_int_t)ps->free_bytes, "min_free_bytes",
				     (json_int_t)ag->min_free_bytes, "history_off",
				     ps->history_off));
	} else if (!ps->low_disk && !ps->history_off && (was_low || was_off)) {
		de_log_info("event store: %.1f MiB free again, history is written",
			    (double)ps->free_bytes / 1048576.0);
	}
}

/* Where the watchdog keeps the rules it disabled (shown in health until re-enabled). */
static char *slow_path(const struct agent *ag)
{
	char *p = NULL;
	return asprintf(&p, "%s/rules-watchdog.json", ag->state_dir) < 0 ? NULL : p;
}

static void slow_save(struct agent *ag)
{
	json_t *arr = json_array();
	char *path = slow_path(ag), *text = NULL;

	for (size_t i = 0; arr && i < ag->nslow; i++)
		json_array_append_new(arr, json_pack("{s:s, s:I, s:I}", "id", ag->slow[i].id, "at",
						     (json_int_t)ag->slow[i].at_ms, "last_us",
						     (json_int_t)ag->slow[i].last_us));
	if (path && arr && (text = json_dumps(arr, JSON_COMPACT)) &&
	    de_write_file_atomic(path, text, strlen(text), 0644) < 0)
		de_log_warn("cannot write %s", path);
	free(text);
	free(path);
	json_decref(arr);
}

static void slow_clear(struct agent *ag)
{
	for (size_t i = 0; i < ag->nslow; i++)
		free(ag->slow[i].id);
	free(ag->slow);
	ag->slow = NULL;
	ag->nslow = 0;
}

static void slow_add(struct agent *ag, const char *id, int64_t at, int64_t last_us)
{
	struct agent_slow_rule *n = realloc(ag->slow, (ag->nslow + 1) * sizeof(*n));

	if (!n)
		return;
	ag->slow = n;
	if ((n[ag->nslow].id = strdup(id))) {
		n[ag->nslow].at_ms = at;
		n[ag->nslow].last_us = last_us;
		ag->nslow++;
	}
}

/*
 * Keep the list to rules still disabled: `daemoneye-cli rules enable`
 * re-enables one (rules-state.json, read again when it changes), and a
 * rule gone from the set is gone from the list.
 */
static void slow_refresh(struct agent *ag)
{
	size_t k = 0;
	bool changed = false;

	for (size_t i = 0; i < ag->nslow; i++) {
		const struct de_rule *r = de_rule_set_find(&ag->det.rules, ag->slow[i].id);
		if (r && !r->enabled) {
			ag->slow[k++] = ag->slow[i];
		} else {
			de_log_info("rule %s is %s: the watchdog forgets it", ag->slow[i].id,
				    r ? "enabled again" : "no longer loaded");
			free(ag->slow[i].id);
			changed = true;
		}
	}
	ag->nslow = k;
	if (changed)
		slow_save(ag);
}

static void slow_load(struct agent *ag)
{
	char *path = slow_path(ag), *text = NULL;
	size_t len;
	json_t *arr = NULL, *e;
	size_t i;

	if (path && de_read_file(path, 1u << 20, &text, &len, NULL) == 0 &&
	    (arr = json_loadb(text, len, 0, NULL)) && json_is_array(arr))
		json_array_foreach (arr, i, e) {
			const char *id = json_string_value(json_object_get(e, "id"));
			if (id)
				slow_add(ag, id, json_integer_value(json_object_get(e, "at")),
					 json_integer_value(json_object_get(e, "last_us")));
		}
	json_decref(arr);
	free(text);
	free(path);
	slow_refresh(ag);
}

/* rules-state.json changed (`daemoneye-cli rules enable|disable`): apply it now. */
static void rules_state_watch(struct agent *ag)
{
	char *user = NULL, *state = NULL;
	struct de_error err = {0};

	if (de_rules_paths(ag->cfg, &user, &state, &err) < 0)
		return;
	int64_t mtime = file_mtime(state);
	if (mtime != ag->rules_state_mtime) {
		if (de_rules_state_apply(state, &ag->det.rules, &err) < 0)
			de_log_err(&err);
		ag->rules_state_mtime = mtime;
		slow_refresh(ag);
	}
	free(user);
	free(state);
}

/* After a run: a rule over its budget `rule_strikes` runs in a row is disabled. */
void agent_rule_watchdog(struct agent *ag, bool full)
{
	char *user = NULL, *state = NULL;
	struct de_error err = {0};

	if (!ag->rule_budget_ms || !ag->strikes)
		return;
	for (size_t i = 0; i < ag->det.rules.len; i++) {
		struct de_rule *r = &ag->det.rules.items[i];
		const struct de_rule_result *res = &ag->det.results[i];
		if (!res->ran)
			continue;
		if (res->elapsed_us <= (int64_t)ag->rule_budget_ms * 1000) {
			if (full) /* a quick run on one process clears nothing */
				ag->strikes[i] = 0;
			continue;
		}
		if (++ag->strikes[i] < ag->rule_strikes)
			continue;
		de_log_warnx("rule %s ran over its budget of %llu ms %u times in a row (last %lld "
			     "ms): disabling it (daemoneye-cli rules enable %s turns it back on)",
			     r->id, (unsigned long long)ag->rule_budget_ms, ag->strikes[i],
			     (long long)(res->elapsed_us / 1000), r->id);
		r->enabled = false;
		ag->strikes[i] = 0;
		if (!state && de_rules_paths(ag->cfg, &user, &state, &err) < 0)
			de_log_err(&err);
		if (state && de_rules_state_set(state, r->id, false, &err) < 0)
			de_log_err(&err);
		agent_ledger_json(ag, "rule.disable",
				  json_pack("{s:s, s:s, s:I}", "rule_id", r->id, "by", "watchdog",
					    "last_run_ms", (json_int_t)(res->elapsed_us / 1000)));
		slow_add(ag, r->id, de_now_ms(), res->elapsed_us);
		slow_save(ag);
		alert_rule_disabled(ag, r, res->elapsed_us);
	}
	if (state) /* our own write is not news */
		ag->rules_state_mtime = file_mtime(state);
	free(user);
	free(state);
}

/* ---- the cycle ------------------------------------------------------------------------ */

/*
 * Every enabled rule, one at a time, telling the parent we are alive in
 * between; but a rule whose result cannot have changed since its last run
 * (rulecache.h: it reads only the tables the store counts changes of, and
 * none changed) is left out, reported as not run.
 */
static void run_rules(struct agent *ag, int64_t scan_id, struct de_alert_list *alerts)
{
	struct agent_detection *d = &ag->det;
	struct de_store_versions version = de_store_data_versions(ag->store);

	d->cached = 0;
	for (size_t i = 0; i < d->rules.len; i++) {
		struct de_rule_result *res = &d->results[i];
		memset(res, 0, sizeof(*res));
		res->rule_id = d->rules.items[i].id;
		if (!d->rules.items[i].enabled || drain_over) {
			rulecache_forget(&d->cache, i); /* enabled again: it runs */
			continue;
		}
		if (rulecache_fresh(&d->cache, i, version)) {
			/* its last full run was within budget and would be again: for
			   the watchdog, a quick full run (the exec path's strikes end) */
			if (ag->strikes)
				ag->strikes[i] = 0;
			d->cached++;
			continue;
		}
		de_engine_run_rule(d->engine, &d->rules.items[i], scan_id, NULL, alerts, res);
		/* a rule over its time budget runs again: the watchdog counts its runs */
		rulecache_ran(&d->cache, i, version,
			      res->ran && res->status == 0 &&
				      (!ag->rule_budget_ms ||
				       res->elapsed_us <= (int64_t)ag->rule_budget_ms * 1000));
		if (res->ran && res->status < 0 && drain_over)
			de_log_warnx("rule %s: interrupted: the service is stopping", res->rule_id);
		else if (res->ran && res->status < 0) {
			de_log_err(&res->error);
			agent_ledger_rule_stopped(ag, res->rule_id, scan_id, &res->error);
		}
		if (de_mono_ms() >= ag->next_heartbeat)
			agent_ctl_heartbeat(ag);
	}
	telemetry_rules(ag, d->results, d->rules.len, true);
}

/* What a failed scan tells the parent about procmond. */
static void scan_failed(struct agent *ag, const struct de_error *err)
{
	if (agent_stop || ag->pm.fd >= 0 || !ag->pm.gen)
		return;
	agent_ctl_restart_procmond(ag, err->code == ETIMEDOUT ? DE_CTL_REASON_SCAN_TIMEOUT
				       : err->code == EPIPE   ? DE_CTL_REASON_CRASH
							      : DE_CTL_REASON_PROTOCOL);
}

/* User and group names of a scan's records (procmond sends ids only). */
static int resolve_all(struct agent *ag, struct de_process_list *procs)
{
	for (size_t i = 0; i < procs->len; i++)
		agent_resolve_names(ag, &procs->items[i]);
	return 0;
}

/* One full cycle: collect, store, detect, deliver. */
static int cycle(struct agent *ag, struct de_error *err)
{
	struct de_process_list procs = {0};
	struct de_alert_list alerts = {0};
	struct de_collect_stats stats = {0};
	int64_t scan_id, t0 = de_mono_ms(), wall0 = de_now_ms(), w0;
	/* connections: the first cycle, every full refresh, after lost events, and
	   again after a list the store refused */
	bool conns =
		ag->want_conns && (ag->cycles == 0 || ag->pm.reconcile || ag->pm.conns_unstored ||
				   (ag->conn_every && ag->cycles % ag->conn_every == 0));
	int rc;

	ag->ledger_us = 0;
	ag->cycles++;
	ag->pm.reconcile = false;
	/* a failed scan leaves the store as it was; the next cycle retries */
	if (de_store_scan_begin(ag->store, de_now_ms(), "poll", &scan_id, err) < 0)
		return de_error_prefix(err, "scan failed: ");
	ag->last_scan_id = scan_id;
	if (ag->pm.fd < 0)
		rc = de_error_set(err, DE_ERR_IO, EPIPE,
				  "procmond is not running (the parent is starting a new one)");
	else
		rc = agent_procmond_scan_conns(&ag->pm, scan_id, conns, &procs, &stats, err);
	w0 = de_mono_us();
	if (rc < 0 || (rc = resolve_all(ag, &procs)) < 0 ||
	    (rc = de_store_processes(ag->store, scan_id, procs.items, procs.len, err)) < 0 ||
	    (rc = de_store_scan_end(ag->store, scan_id, de_now_ms(), procs.len, err)) < 0) {
		de_store_scan_fail(ag->store, scan_id, de_now_ms(), err->message, NULL);
		scan_failed(ag, err);
		de_error_prefix(err, "scan %lld failed: ", (long long)scan_id);
		agent_ledger_scan(ag, scan_id, &stats, NULL, 0, err->message);
		goto out;
	}
	telemetry_store_write(ag, (double)(de_mono_us() - w0) / 1e6);
	if (ag->pm.gen != ag->ledger_pm_gen) {
		/* a new procmond has answered: it has dropped what it does not keep */
		agent_ledger_privileges(ag, "procmond", ag->pm.pid);
		ag->ledger_pm_gen = ag->pm.gen;
	}
	if (conns &&
	    (rc = de_store_connections(ag->store, ag->pm.conns, ag->pm.nconns, wall0, err)) < 0) {
		/* the processes are stored: the rules still run; the next cycle retries */
		de_log_err(err);
		de_error_clear(err);
		rc = 0;
	} else if (conns) {
		ag->pm.conns_unstored = false;
	}
	struct de_store_diff diff = de_store_last_diff(ag->store);
	de_log_debug("scan %lld: %zu processes (%zu vanished, %zu inaccessible) in %lld ms; "
		     "stored %zu new, %zu changed, %zu exited, %zu samples",
		     (long long)scan_id, stats.recorded, stats.vanished, stats.inaccessible,
		     (long long)(de_mono_ms() - t0), diff.added, diff.changed, diff.exited,
		     diff.samples);

	/* every enabled rule with its own timeout; one failing never stops the others */
	rules_state_watch(ag);
	run_rules(ag, scan_id, &alerts);
	if (ag->det.cached)
		de_log_debug("scan %lld: %zu rules left out, their tables unchanged since they ran",
			     (long long)scan_id, ag->det.cached);
	size_t nalerts = alerts.len;
	agent_alerts(ag, &alerts, true);
	agent_rule_watchdog(ag, true);
	agent_ledger_scan(ag, scan_id, &stats, &diff, nalerts, NULL);
	agent_ledger_flush(ag);
	ag->ledger_cycle_us = ag->ledger_us;
	/* retention: a few short transactions between scans, never inside one */
	agent_ledger_retention(ag);
	struct de_prune_stats ps;
	struct de_error perr = {0};
	if (de_store_prune(ag->store, de_now_ms(), ag->retention_days, 0, 0, &ps, &perr) < 0) {
		de_log_err(&perr);
	} else {
		if (ps.rows)
			de_log_debug("retention: pruned %zu rows%s", ps.rows,
				     ps.more ? " (more next cycle)" : "");
		if (ps.over_cap && !ag->warned_over_cap)
			de_log_warnx("event store uses %llu bytes, above database.max_size_mb, "
				     "with no history left to prune",
				     (unsigned long long)ps.used_bytes);
		ag->warned_over_cap = ps.over_cap;
		store_disk_state(ag, &ps);
	}
	de_log_info("scan %lld: %zu processes, %zu alerts", (long long)scan_id, procs.len, nalerts);
	agent_fleet_cycle(ag, scan_id, wall0, procs.len, &diff, nalerts);
out:
	ag->last_scan_ok = rc == 0;
	ag->last_scan_ms = de_now_ms();
	ag->last_scan_dur_ms = (uint64_t)(de_mono_ms() - t0);
	ag->scan_failures = rc == 0 ? 0 : ag->scan_failures + 1;
	snprintf(ag->last_scan_error, sizeof(ag->last_scan_error), "%s",
		 rc == 0 ? "" : err->message);
	if (rc == 0)
		ag->last_processes = procs.len;
	telemetry_scan(ag, rc == 0, (double)ag->last_scan_dur_ms / 1000.0, procs.len, &stats);
	de_process_list_clear(&procs);
	de_alert_list_clear(&alerts);
	return rc;
}

/*
 * Until a stop: a cycle every app.scan_interval_ms on the monotonic clock
 * (at once when a new procmond arrives, so that what happened while it was
 * away is reconciled), and in between the exec path, the control channel
 * and the heartbeat.
 */
/* the longest exec-path wait during which procmond's frames are left in the socket */
#define WORKER_HOLD_MS 20

static int worker_loop(struct agent *ag)
{
	int64_t next_scan = de_mono_ms();
	int status = 0;

	while (!agent_stop && ag->ctl >= 0) {
		int64_t now = de_mono_ms();
		bool due = now >= next_scan || ag->scan_now || ag->pm.reconcile;
		/* no procmond yet: wait for one, up to a scan's timeout */
		if (due && (ag->pm.fd >= 0 || now - next_scan >= (int64_t)ag->pm.timeout_ms)) {
			struct de_error err = {0};
			ag->scan_now = false;
			agent_execpath_flush(ag); /* deferred exits before the scan (execcut.h) */
			if (cycle(ag, &err) < 0) {
				de_log_err(&err);
				status = de_error_exit_code(&err);
			} else {
				status = 0;
			}
			/* on the monotonic clock from this cycle's start; never a burst to catch up
			 */
			next_scan = now + (int64_t)ag->scan_interval_ms;
			if (next_scan < de_mono_ms())
				next_scan = de_mono_ms();
			agent_ctl_heartbeat(ag);
			telemetry_publish(ag, true);
			if (ag->opts->once)
				return status;
			continue;
		}
		if (ag->pm.held && ag->pm.fd >= 0 && now >= agent_execpath_due(ag, now, NULL)) {
			/* the batch is due: first what procmond sent while it waited */
			struct de_error err = {0};
			ag->pm.held = false;
			if (agent_procmond_wait(&ag->pm, 0, &err) < 0) {
				de_log_err(&err);
				scan_failed(ag, &err);
			}
		}
		agent_execpath_run(ag); /* those that came during the scan, or were retried */
		/* the batches held since AGENT_BATCH_COMMIT_MS */
		if (de_mono_ms() >= de_store_held_due(ag->store))
			agent_execpath_commit(ag);
		struct de_error perr = {0};
		if (de_alertmgr_poll(ag->alerts, &perr) < 0) /* the sinks' outcomes, due retries */
			de_log_err(&perr);
		if (now >= ag->next_heartbeat)
			agent_ctl_heartbeat(ag);
		agent_ledger_tick(ag); /* the exec path's alerts, the sinks' outcomes */
		telemetry_publish(ag, false);
		int64_t until = due ? now + 100 : next_scan;
		if (until > ag->next_heartbeat)
			until = ag->next_heartbeat;
		if (until > now + 1000)
			until = now +
				1000; /* the sinks' outcomes are recorded at least each second */
		bool batching;
		/* queued events: at once, or */
		int64_t ev_due = agent_execpath_due(ag, now, &batching);
		if (until > ev_due) /* after a short wait for more, or a refused batch's retry */
			until = ev_due;
		if (until > de_store_held_due(ag->store)) /* the held batches' commit */
			until = de_store_held_due(ag->store);
		/*
		 * While the exec path waits a few ms for a fuller batch
		 * (execwait.h), procmond's frames wait in the socket: one wake-up
		 * per batch, not one per read procmond sends (every few ms
		 * under load); they are read when the batch is due (above).  Not
		 * while the store refuses batches (retried each second: the
		 * socket would fill and hold procmond up), nor for a long wait,
		 * nor while only deferred exits wait (execcut.h: up to 50 ms; a
		 * new exec must not wait that long to be read).
		 */
		ag->pm.held = ev_due > now && ev_due - now <= WORKER_HOLD_MS && batching;
		/* the control channel, procmond (or -1: ignored by poll), fleet queries */
		struct pollfd fds[4] = {{ag->ctl, POLLIN, 0},
					{ag->pm.held ? -1 : ag->pm.fd, POLLIN, 0}};
		int qfd[2], nq = agent_fleet_wake_fds(ag, qfd, 2);
		for (int i = 0; i < nq; i++)
			fds[2 + i] = (struct pollfd){qfd[i], POLLIN, 0};
		int wait = until > now ? (int)(until - now) : 0;
		if (poll(fds, 2 + (nfds_t)nq, wait) < 0)
			continue; /* EINTR: a signal; the loop looks at agent_stop */
		if (fds[0].revents)
			agent_ctl_read(ag);
		if (ag->pm.fd >= 0 && fds[1].fd == ag->pm.fd && fds[1].revents) {
			struct de_error err = {0};
			if (agent_procmond_wait(&ag->pm, 0, &err) < 0) {
				de_log_err(&err);
				scan_failed(ag, &err);
			}
		}
		agent_fleet_flush(ag);
	}
	if (ag->ctl < 0 && !agent_stop)
		de_log_warnx("the parent is gone: stopping");
	return agent_stop ? 0 : status;
}

int worker_main(const struct agent_opts *o)
{
	struct agent ag = {
		.opts = o, .ctl = AGENT_CTL_FD, .reload_ok = true, .ledger_cycle_us = -1};
	struct de_error err = {0};
	struct sigaction sa = {0};
	int status = 0;

	de_log_init("daemoneye-worker", DE_LOG_INFO, DE_LOG_TEXT, NULL);
	ag.pm.fd = -1;
	ag.pm.stop = &agent_stop;
	ag.src = o->src;
	ag.started_ms = de_now_ms();
	main_tid = gettid();
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	(void)signal(SIGHUP, SIG_IGN); /* the parent reloads us; cannot fail for a valid signal */
	(void)signal(SIGPIPE, SIG_IGN);
	if (fcntl(AGENT_CTL_FD, F_SETFD, FD_CLOEXEC) < 0)
		return EX_USAGE; /* no control channel: not started by daemoneye-agent */
	if (agent_ctl_first_config(&ag, 30000, &err) < 0 || setup(&ag, &err) < 0) {
		de_log_err(&err);
		status = de_error_exit_code(&err);
		goto done;
	}
	slow_load(&ag);
	agent_ctl_ready(&ag);
	{
		/* after READY: the parent signs for RUNNING workers only */
		agent_ledger_config(&ag, "start",
				    json_pack("{s:s, s:i, s:I}", "version", DE_VERSION, "pid",
					      (int)getpid(), "uid", (json_int_t)geteuid()));
		agent_ledger_rules(&ag, "start");
		/* the parent dropped its capabilities before it started us; we
		   became our user before we were executed */
		agent_ledger_privileges(&ag, "parent", getppid());
		agent_ledger_privileges(&ag, "worker", getpid());
		agent_ledger_flush(&ag);
	}
	status = worker_loop(&ag);
	if (o->once) {
		/* every alert of this run delivered or dead-lettered, on every sink */
		if (de_alertmgr_drain(ag.alerts, (const volatile int *)&agent_stop, &err) < 0)
			de_log_err(&err);
	} else {
		/* stopping: persist what the events said, and give the sinks what is
		   left of the drain second (SIGALRM ends it); the rest stays pending
		   in the store for the next run */
		while (agent_execpath_pending(&ag) && !drain_over && !ag.events_failing_since)
			agent_execpath_run(&ag);
		agent_execpath_commit(&ag); /* each run commits when stopping: the rest */
		if (agent_events_count(&ag.pm))
			de_log_warnx("%zu process events not stored: the next full scan reconciles",
				     agent_events_count(&ag.pm));
		de_error_clear(&err);
		if (de_alertmgr_drain(ag.alerts, (const volatile int *)&drain_over, &err) < 0)
			de_log_err(&err);
	}
done:
	/* after a SIGTERM the parent's grace (1.5 s) less the drain second is
	   what is left for the fleet's last flush and for closing */
	agent_fleet_stop(&ag, agent_stop ? 250 : 1000);
	interrupt_db = NULL;
	ag.final_publish = true;
	telemetry_publish(&ag, true);
	telemetry_close(&ag);
	/* procmond's channel closes when we exit, not before: procmond leaving
	   while we still run would read to the parent as a crash */
	de_ipc_reader_free(ag.pm.rd);
	ag.pm.rd = NULL;
	agent_events_free(&ag.pm);
	de_alertmgr_close(ag.alerts); /* before the store: it records into it */
	ag.alerts = NULL;
	if (ag.audit && status == 0)
		agent_ledger_record(&ag, "stop", ag.opts->once ? "{\"once\":true}" : "{}");
	agent_ledger_close(&ag); /* a last checkpoint may be signed: the parent waits for us */
	de_store_close(ag.store);
	agent_detection_clear(&ag.det);
	slow_clear(&ag);
	free(ag.strikes);
	free(ag.state_dir);
	free(ag.store_path);
	de_idcache_free(ag.names);
	de_config_free(ag.cfg);
	if (ag.ctl >= 0)
		close(ag.ctl);
	return status;
}

/* ---- the command line --------------------------------------------------------------------- */

/*
 * daemoneye-agent --check-config: what the worker alone reads, the alerting
 * section (sinks, exceptions) and the fleet's (its TLS files), from the
 * files themselves.  The parent has
 * checked the rest and prints the verdict.
 */
static int check_config(const struct agent_opts *o)
{
	struct de_config *cfg = NULL;
	struct de_alertmgr_config *acfg = NULL;
	struct de_error err = {0};
	int status = 0;

	if (de_config_load(&o->src, &cfg, &err) < 0 ||
	    de_alertmgr_config_load(cfg, &acfg, &err) < 0 || agent_fleet_check(cfg, &err) < 0) {
		fprintf(stderr, "daemoneye-agent: %s\n", err.message);
		status = de_error_exit_code(&err);
	}
	de_alertmgr_config_free(acfg);
	de_config_free(cfg);
	return status;
}

/*
 * daemoneye-worker is started by daemoneye-agent alone: its control channel
 * on descriptor 3, the parent's --set and --rules arguments (and the state
 * directory pinned with a last --set), --once when the parent runs once.
 */
int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"set", required_argument, NULL, 's'},
		{"rules", required_argument, NULL, 'r'},
		{"once", no_argument, NULL, '1'},
		{"config", required_argument, NULL, 'c'}, /* --check-config only */
		{"check-config", no_argument, NULL, 'n'},
		{NULL, 0, NULL, 0},
	};
	const char **sets = calloc((size_t)argc + 1, sizeof(char *));
	const char **rule_files = calloc((size_t)argc + 1, sizeof(char *));
	struct agent_opts o = {.rule_files = rule_files};
	bool check = false;
	int c, status = EX_USAGE;

	if (!sets || !rule_files)
		goto done;
	while ((c = getopt_long(argc, argv, "s:r:1c:n", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o.src.file = optarg;
			break;
		case 'n':
			check = true;
			break;
		case 's':
			sets[o.src.nsets++] = optarg;
			break;
		case 'r':
			rule_files[o.nrule_files++] = optarg;
			break;
		case '1':
			o.once = true;
			break;
		default:
			goto done;
		}
	}
	if (optind < argc)
		goto done;
	o.src.sets = sets;
	status = check ? check_config(&o) : worker_main(&o);
done:
	if (status == EX_USAGE)
		fprintf(stderr, "usage: daemoneye-worker is started by daemoneye-agent(8), not by "
				"hand\n");
	free(sets);
	free(rule_files);
	return status;
}
