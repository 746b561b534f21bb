/*
 * daemoneye-agent — the orchestrator.
 *
 * Each cycle: ask procmond (spawned over a socketpair, procmond_client.c) for a
 * scan of every process, replace the event store's snapshot,
 * run every enabled detection rule over it, and hand the alerts to the alert
 * manager (alertmgr.h), which records them with one delivery per sink
 * before its sink workers deliver them.  `--once` runs one cycle, waits
 * until each of its alerts is delivered or dead-lettered on every sink,
 * and exits; otherwise a cycle runs every app.scan_interval_ms until SIGINT
 * or SIGTERM.  SIGHUP makes the file sinks reopen their files (logrotate).
 *
 * Between cycles, when procmond has the kernel's process events (root,
 * collection.events), each exec and exit it forwards is applied to the
 * store at once as an "event" scan, and the rules that concern one process
 * run over each process that exec'd, so an alert does not wait for the
 * next cycle.  The full scan each cycle reconciles anything missed.
 *
 * Exit status (sysexits): 0 ok, 64 usage, 78 configuration, 74 I/O or
 * database, 73 cannot create the state directory.
 */
#include <errno.h>
#include <jansson.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "daemoneye/alert.h"
#include "daemoneye/alertmgr.h"
#include "agent.h"
#include "fleet_wiring.h"
#include "procmond_client.h"
#include "privdrop.h"
#include "daemoneye/collect.h"
#include "daemoneye/config.h"
#include "daemoneye/detect.h"
#include "daemoneye/fileio.h"
#include "daemoneye/log.h"
#include "daemoneye/rules.h"
#include "daemoneye/store.h"
#include "daemoneye/term.h"
#include "daemoneye/clock.h"

static volatile sig_atomic_t stop_requested, reopen_requested;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		reopen_requested = 1;
	else
		stop_requested = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: daemoneye-agent [-c FILE] [--set KEY=VALUE]... [--rules FILE]... [--once]\n"
		"                       [--check-config]\n"
		"\n"
		"  -c, --config FILE    read FILE instead of /etc/daemoneye/config.yaml and\n"
		"                       ~/.config/daemoneye/config.yaml\n"
		"  -s, --set KEY=VALUE  override one setting (repeatable), e.g.\n"
		"                       --set app.scan_interval_ms=15000\n"
		"  -r, --rules FILE     also load the detection rules of FILE (repeatable)\n"
		"  -1, --once           run one collection and detection cycle, then exit\n"
		"  -n, --check-config   validate the configuration and exit\n"
		"  -h, --help           show this help\n"
		"  -V, --version        show the version\n"
		"\n"
		"Environment: DAEMONEYE_SECTION__KEY=VALUE overrides a setting, e.g.\n"
		"DAEMONEYE_APP__SCAN_INTERVAL_MS=15000.  See daemoneye-agent(8).\n");
}

/*
 * Started as root with no app.state_dir, the state directory is root's
 * default (/var/lib/daemoneye); after the drop to app.run_as_user the same
 * question would answer that user's ~/.local/state.  Reload the
 * configuration with the directory chosen now pinned as a last --set, so
 * that everything read after the drop (rules imported with the CLI, their
 * enable/disable state) comes from the one directory.
 */
static int pin_state_dir(struct agent *ag, const char *state, struct de_error *err)
{
	struct de_config_sources src = *ag->src;
	const char **sets = calloc(src.nsets + 1, sizeof(char *));
	json_t *js = json_string(state);
	char *quoted = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL; /* YAML reads JSON */
	char *assign = NULL;
	struct de_config *cfg = NULL;
	int rc;

	json_decref(js);
	if (!sets || !quoted || asprintf(&assign, "app.state_dir=%s", quoted) < 0) {
		assign = NULL;
		rc = de_error_set(err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < src.nsets; i++)
		sets[i] = src.sets[i];
	sets[src.nsets++] = assign;
	src.sets = sets;
	if ((rc = de_config_load(&src, &cfg, err)) < 0)
		goto out;
	de_config_free(ag->cfg);
	ag->cfg = cfg;
out:
	free(assign);
	free(quoted);
	free(sets);
	return rc;
}

static int setup(struct agent *ag, struct de_error *err)
{
	struct de_store_config sc = {0};
	char *state = NULL, *path = NULL;
	uint64_t u;
	int rc;

	if ((rc = de_config_state_dir(ag->cfg, &state, err)) < 0)
		return rc;
	if (geteuid() == 0 && (rc = pin_state_dir(ag, state, err)) < 0)
		goto out;
	/* procmond first: it is the privileged half, started before we drop */
	if ((rc = agent_procmond_start(ag->src, &ag->pm, err)) < 0)
		goto out;
	if ((rc = de_make_dirs(state, 0750)) < 0) {
		rc = de_error_set(err, DE_ERR_IO, -rc,
				  "cannot create state directory %s: %s "
				  "(set app.state_dir to a writable directory)",
				  state, strerror(-rc));
		goto out;
	}
	if ((rc = de_config_store_path(ag->cfg, &path, err)) < 0)
		goto out;
	sc.path = path;
	if (geteuid() == 0) {
		/* procmond holds the privilege; we need none of it */
		const char *user;
		if ((rc = de_config_get_str(ag->cfg, "app.run_as_user", &user, err)) < 0 ||
		    (rc = agent_drop_privileges(user, state, path, err)) < 0)
			goto out;
	}
	if ((rc = de_config_get_u64(ag->cfg, "database.max_size_mb", &sc.max_size_mb, err)) < 0 ||
	    (rc = de_config_get_bool(ag->cfg, "database.wal_mode", &sc.wal_mode, err)) < 0 ||
	    (rc = de_config_get_u64(ag->cfg, "database.max_connections", &u, err)) < 0 ||
	    (rc = de_config_get_u64(ag->cfg, "database.sample_interval_s", &sc.sample_interval_s,
				    err)) < 0 ||
	    (rc = de_config_get_u64(ag->cfg, "database.retention_days", &ag->retention_days, err)) <
		    0)
		goto out;
	sc.max_connections = (uint32_t)u;
	if ((rc = de_config_get_bool(ag->cfg, "collection.connections", &ag->want_conns, err)) <
		    0 ||
	    (rc = de_config_get_u64(ag->cfg, "collection.full_refresh_every", &ag->conn_every,
				    err)) < 0)
		goto out;
	/* user and group names of processes: a few dozen on any host */
	if (de_idcache_new(4096, 300000, &ag->names) < 0) {
		rc = de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = de_store_open(&sc, &ag->store, err)) < 0)
		goto out;
	/* the exec path commits all the time: its WAL is folded on a thread of
	   the store's, never in an event batch's commit */
	if ((rc = de_store_background_checkpoints(ag->store, AGENT_WAL_CHECKPOINT_BYTES, err)) < 0)
		goto out;
	de_log_info("event store %s", path);

	struct de_rule_problems problems = {0};
	if ((rc = de_validator_from_config(ag->cfg, &ag->validator, err)) < 0 ||
	    (rc = de_rules_load_config(ag->cfg, ag->validator, &ag->rules, &problems, err)) < 0)
		goto out;
	for (size_t i = 0; i < ag->nrule_files; i++)
		if ((rc = de_rules_load_file(ag->rule_files[i], DE_RULE_FILE, ag->validator,
					     &ag->rules, &problems, err)) < 0) {
			de_rule_problems_clear(&problems);
			goto out;
		}
	/* a bad rule is reported and skipped; the others run */
	for (size_t i = 0; i < problems.len; i++)
		de_log_warnx("rule skipped: %s", problems.items[i]);
	de_rule_problems_clear(&problems);
	if (!(ag->results = calloc(ag->rules.len + 1, sizeof(*ag->results)))) {
		rc = de_error_set(err, DE_ERR_DETECTION, ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = de_engine_open(path, ag->validator, &ag->engine, err)) < 0)
		goto out;
	de_log_info("%zu detection rules loaded", ag->rules.len);

	/* the sinks open now, as the user the agent runs as */
	if ((rc = de_alertmgr_open(ag->alerting, ag->store, &ag->rules, &ag->alerts, err)) < 0) {
		ag->alerting = NULL; /* the manager took it */
		goto out;
	}
	ag->alerting = NULL;
	if ((rc = agent_fleet_start(ag, err)) < 0)
		goto out;
out:
	free(state);
	free(path);
	return rc;
}

void agent_alerts(struct agent *ag, struct de_alert_list *alerts, bool full)
{
	struct de_alertmgr_counts c = {0};
	struct de_error err = {0};
	size_t n = alerts->len;

	if (!n && !full)
		return;
	if (de_alertmgr_submit(ag->alerts, alerts, full, ag->results, ag->rules.len, &c, &err) <
	    0) {
		/* nothing was recorded: the next run raises them again */
		de_log_err(&err);
		de_alert_list_clear(alerts);
		return;
	}
	if (n || c.resolved || c.summaries)
		de_log_debug("alerts: %zu from the rules, %zu raised, %zu repeats, %zu suppressed, "
			     "%zu folded, %zu resolved, %zu summaries, %zu deliveries queued",
			     n, c.raised, c.repeats, c.suppressed, c.folded, c.resolved,
			     c.summaries, c.deliveries);
	if (de_alertmgr_poll(ag->alerts, &err) < 0)
		de_log_err(&err);
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
	struct de_collect_stats stats;
	int64_t scan_id, t0 = de_now_ms();
	/* connections: the first cycle, every full refresh, and after lost events */
	bool conns = ag->want_conns && (ag->cycles == 0 || ag->pm.reconcile ||
					(ag->conn_every && ag->cycles % ag->conn_every == 0));
	int rc;

	ag->cycles++;
	ag->pm.reconcile = false;
	/* a failed scan leaves the store as it was; the next cycle retries */
	if ((rc = de_store_scan_begin(ag->store, t0, "poll", &scan_id, err)) < 0)
		return de_error_prefix(err, "scan failed: ");
	if (ag->pm.fd < 0) {
		de_log_warnx("procmond is not running: starting it again");
		rc = agent_procmond_start(ag->src, &ag->pm, err);
	}
	if (rc < 0 ||
	    (rc = agent_procmond_scan_conns(&ag->pm, scan_id, conns, &procs, &stats, err)) < 0 ||
	    (rc = resolve_all(ag, &procs)) < 0 ||
	    (rc = de_store_processes(ag->store, scan_id, procs.items, procs.len, err)) < 0 ||
	    (rc = de_store_scan_end(ag->store, scan_id, de_now_ms(), procs.len, err)) < 0) {
		de_store_scan_fail(ag->store, scan_id, de_now_ms(), err->message, NULL);
		de_error_prefix(err, "scan %lld failed: ", (long long)scan_id);
		goto out;
	}
	if (conns &&
	    (rc = de_store_connections(ag->store, ag->pm.conns, ag->pm.nconns, t0, err)) < 0) {
		/* the processes are stored: the rules still run; the next cycle retries */
		de_log_err(err);
		de_error_clear(err);
		rc = 0;
	}
	struct de_store_diff diff = de_store_last_diff(ag->store);
	de_log_debug("scan %lld: %zu processes (%zu vanished, %zu inaccessible) in %lld ms; "
		     "stored %zu new, %zu changed, %zu exited, %zu samples",
		     (long long)scan_id, stats.recorded, stats.vanished, stats.inaccessible,
		     (long long)(de_now_ms() - t0), diff.added, diff.changed, diff.exited,
		     diff.samples);

	/* every enabled rule with its own timeout; one failing never stops the others */
	de_engine_run(ag->engine, ag->rules.items, ag->rules.len, scan_id, &alerts, ag->results);
	for (size_t i = 0; i < ag->rules.len; i++)
		if (ag->results[i].ran && ag->results[i].status < 0)
			de_log_err(&ag->results[i].error);
	size_t nalerts = alerts.len;
	agent_alerts(ag, &alerts, true);
	/* retention: a few short transactions between scans, never inside one */
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
	}
	de_log_info("scan %lld: %zu processes, %zu alerts", (long long)scan_id, procs.len, nalerts);
	agent_fleet_cycle(ag, scan_id, t0, procs.len, &diff, nalerts);
out:
	de_process_list_clear(&procs);
	de_alert_list_clear(&alerts);
	return rc;
}

/*
 * Wait ms milliseconds for the next cycle unless a stop is requested,
 * applying process events as they arrive (with events off, a plain wait).
 */
static void wait_next(struct agent *ag, uint64_t ms)
{
	int64_t until = de_now_ms() + (int64_t)ms;

	agent_execpath_run(ag); /* those that came during the scan */
	while (!stop_requested && !ag->pm.reconcile) {
		int64_t left = until - de_now_ms();
		struct de_error err = {0};
		if (left <= 0)
			break;
		if (ag->pm.fd < 0) {
			struct timespec ts = {(time_t)(left / 1000),
					      (long)(left % 1000) * 1000000L};
			nanosleep(&ts, NULL);
			continue;
		}
		if (reopen_requested) {
			reopen_requested = 0;
			de_alertmgr_reopen(ag->alerts);
			de_log_info("SIGHUP: alert files reopen at their next write");
		}
		if (de_alertmgr_poll(ag->alerts, &err) < 0) {
			de_log_err(&err);
			de_error_clear(&err);
		}
		/* held-back exits (execpath.c) go with the next batch, or alone
		   in a moment when no other event comes */
		int wait_ms = agent_execpath_pending(ag) ? 2 : left > 1000 ? 1000 : (int)left;
		if (agent_procmond_wait(&ag->pm, wait_ms, &err) < 0) {
			/* the next cycle starts procmond again */
			de_log_err(&err);
			continue;
		}
		agent_execpath_run(ag);
		agent_fleet_flush(ag);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'}, {"set", required_argument, NULL, 's'},
		{"rules", required_argument, NULL, 'r'},  {"once", no_argument, NULL, '1'},
		{"check-config", no_argument, NULL, 'n'}, {"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},	  {NULL, 0, NULL, 0},
	};
	struct de_config_sources src = {0};
	const char **sets = calloc((size_t)argc + 1, sizeof(char *));
	const char **rule_files = calloc((size_t)argc + 1, sizeof(char *));
	struct agent ag = {.rule_files = rule_files};
	struct de_error err = {0};
	bool once = false, check = false;
	const char *s;
	uint64_t interval;
	int c, status = 0;

	if (!sets || !rule_files) {
		free(sets);
		free(rule_files);
		return EX_OSERR;
	}
	while ((c = getopt_long(argc, argv, "c:s:r:1nhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			src.file = optarg;
			break;
		case 's':
			sets[src.nsets++] = optarg;
			break;
		case 'r':
			rule_files[ag.nrule_files++] = optarg;
			break;
		case '1':
			once = true;
			break;
		case 'n':
			check = true;
			break;
		case 'h':
			usage(stdout);
			free(sets);
			free(rule_files);
			return 0;
		case 'V':
			printf("daemoneye-agent %s\n", DE_VERSION);
			free(sets);
			free(rule_files);
			return 0;
		default:
			usage(stderr);
			free(sets);
			free(rule_files);
			return EX_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "daemoneye-agent: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		free(sets);
		free(rule_files);
		return EX_USAGE;
	}
	src.sets = sets;
	de_log_init("daemoneye-agent", DE_LOG_INFO, DE_LOG_TEXT, NULL);
	ag.src = &src;
	ag.pm.fd = -1;
	if (de_config_load(&src, &ag.cfg, &err) < 0) {
		fprintf(stderr, "daemoneye-agent: %s\n", err.message);
		free(sets);
		free(rule_files);
		return de_error_exit_code(&err);
	}
	if (de_config_get_str(ag.cfg, "logging.level", &s, &err) == 0)
		de_log_set_level((enum de_log_level)de_log_level_parse(s));
	if (de_config_get_str(ag.cfg, "logging.format", &s, &err) == 0)
		de_log_set_format((enum de_log_format)de_log_format_parse(s));
	/* the sinks and exceptions too: a bad one stops the agent here (78) */
	if (de_alertmgr_config_load(ag.cfg, &ag.alerting, &err) < 0 ||
	    agent_fleet_check(ag.cfg, &err) < 0) {
		fprintf(stderr, "daemoneye-agent: %s\n", err.message);
		status = de_error_exit_code(&err);
		goto done;
	}
	if (check) {
		printf("configuration OK\n");
		goto done;
	}
	if (de_config_get_u64(ag.cfg, "app.scan_interval_ms", &interval, &err) < 0 ||
	    setup(&ag, &err) < 0) {
		de_log_err(&err);
		status = de_error_exit_code(&err);
		goto done;
	}

	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	(void)signal(SIGPIPE, SIG_IGN); /* cannot fail for a valid signal */

	de_log_info("daemoneye-agent %s started%s (scan every %llu ms)", DE_VERSION,
		    once ? " for one cycle" : "", (unsigned long long)interval);
	while (!stop_requested) {
		de_error_clear(&err);
		if (cycle(&ag, &err) < 0) {
			de_log_err(&err);
			if (once) {
				status = de_error_exit_code(&err);
				break;
			}
		}
		if (once) {
			/* every alert of this run delivered or dead-lettered, on every sink */
			de_error_clear(&err);
			if (de_alertmgr_drain(ag.alerts, (const volatile int *)&stop_requested,
					      &err) < 0)
				de_log_err(&err);
			break;
		}
		wait_next(&ag, interval);
	}
	if (!once)
		de_log_info("stopping");
done:
	agent_fleet_stop(&ag);
	agent_procmond_stop(&ag.pm);
	de_alertmgr_close(ag.alerts); /* before the store: it records into it */
	de_alertmgr_config_free(ag.alerting);
	de_store_close(ag.store);
	de_engine_close(ag.engine);
	de_rule_set_clear(&ag.rules);
	free(ag.results);
	de_validator_free(ag.validator);
	de_idcache_free(ag.names);
	de_config_free(ag.cfg);
	free(sets);
	free(rule_files);
	return status;
}
