/*
 * agent.h — what the worker's files share: the worker's state, delivering
 * alerts and loading detection (main.c), the exec path (execpath.c), the
 * control channel to the parent (worker_ctl.c), and what the worker
 * publishes: metrics and the health report (telemetry.c).
 */
#ifndef AGENT_AGENT_H
#define AGENT_AGENT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "execwait.h"
#include "rulecache.h"
#include "daemoneye/alert.h"
#include "daemoneye/alertmgr.h"
#include "daemoneye/audit.h"
#include "daemoneye/config.h"
#include "daemoneye/ctl.h"
#include "daemoneye/detect.h"
#include "daemoneye/identity.h"
#include "daemoneye/metrics.h"
#include "daemoneye/rules.h"
#include "daemoneye/store.h"
#include "daemoneye/validator.h"
#include "parent.h"
#include "procmond_client.h"

/* Set by SIGTERM/SIGINT in the worker. */
extern volatile sig_atomic_t agent_stop;

/* What detection runs with; replaced whole on reload. */
struct agent_detection {
	struct de_validator *validator;	 /* the SQL sandbox's settings */
	struct de_engine *engine;	 /* rules run here, read-only */
	struct de_rule_set rules;	 /* builtin + rules_dirs + imported + --rules */
	struct de_rule_result *results;	 /* one per rule, reused each cycle */
	size_t problems;		 /* rules skipped because they are bad */
	struct de_rule_problems refused; /* what was wrong with them (for the ledger) */
	int64_t state_mtime;		 /* rules-state.json's when it was applied (ns, 0: none) */
	struct rulecache cache;		 /* rules the full cycle may leave out (rulecache.h) */
	size_t cached;			 /* rules left out by the last full cycle */
};

/*
 * Group commit: the exec path's batches (one every few ms under a stream of
 * executions) are committed together, at most this long after the first of
 * them (de_store_hold_batches); the rules read them before, through the
 * store's shared cache (de_engine_open_shared).  A tenth of the worker's
 * CPU at 1,000 execs/s (docs/perf.md, stop 30).
 */
#define AGENT_BATCH_COMMIT_MS 48
/* ... and at most this many events of the queue's head (AGENT_EVENTS_READY) */
#define AGENT_HELD_EVENTS_MAX 128

/* The exec path folds the store's WAL into the file beyond this size. */
#define AGENT_WAL_CHECKPOINT_BYTES (4u << 20)

/* A rule the watchdog disabled for running over its time budget. */
struct agent_slow_rule {
	char *id;	 /* owned */
	int64_t at_ms;	 /* when (wall clock) */
	int64_t last_us; /* its last run */
};

/* The metric families the worker keeps (telemetry.c). */
struct agent_metrics {
	struct de_metrics *reg;
	struct de_metric *scans, *scan_seconds, *processes, *events, *events_lost, *hash_hits,
		*hash_misses, *hashed_bytes, *rule_seconds, *rule_matches, *rule_errors,
		*rules_loaded, *rules_disabled, *alerts, *alerts_suppressed, *alerts_folded,
		*deliveries, *queue_depth, *dead_letters, *circuit, *store_bytes, *store_free,
		*store_min_free, *store_history, *store_write_seconds, *audit_entries,
		*audit_checkpoint, *restarts, *cpu, *rss, *build, *reload_ok, *reload_time,
		*scan_time, *up, *audit_cost, *exec_detect_seconds;
	char *textfile; /* metrics.textfile resolved; NULL: none */
	char *listen;	/* metrics.listen; NULL: no listener */
	struct de_metrics_server *http;
	int64_t last_publish; /* monotonic */
};

struct agent {
	const struct agent_opts *opts;
	struct de_config *cfg;
	struct de_config_sources src; /* opts' sets + the texts of the parent's files */
	char *state_dir;
	char *store_path;
	struct de_store *store;
	struct procmond_chan pm;
	struct agent_detection det;
	struct de_alertmgr *alerts; /* alerts -> outbox -> sinks (over det.rules) */
	struct de_audit *audit;	    /* the audit ledger; NULL when not enabled */
	struct de_audit_settings audit_set;
	struct de_checkpoint_signer signer; /* the parent, over the control channel */
	int64_t ledger_us;		    /* time spent on the ledger since the cycle began */
	int64_t ledger_cycle_us;	    /* ... in the last full cycle (-1: none yet) */
	int64_t ledger_next_flush;	    /* between cycles, not before (monotonic ms) */
	uint32_t ledger_pm_gen;		    /* the procmond whose privileges are recorded */
	uint64_t scan_interval_ms;
	uint64_t retention_days;      /* database.retention_days */
	bool warned_over_cap;	      /* said once that the snapshot alone exceeds max_size_mb */
	uint64_t min_free_bytes;      /* database.min_free_disk_mb, in bytes (0: none) */
	bool low_disk;		      /* the last prune found free space below it */
	bool history_off;	      /* and the store no longer writes history */
	uint64_t rule_budget_ms;      /* detection.rule_budget_ms (0: none) */
	uint64_t rule_strikes;	      /* detection.rule_budget_strikes */
	unsigned *strikes;	      /* per rule of det.rules: full runs over budget in a row */
	struct agent_slow_rule *slow; /* rules the watchdog disabled (owned) */
	size_t nslow;
	int64_t rules_state_mtime;    /* of rules-state.json, to see `rules enable` */
	int64_t events_failing_since; /* the store refuses the queue's head since (mono), 0: not */
	int64_t events_next_try;      /* when to try it again (mono) */
	int64_t exits_since;	   /* the first exit deferred since (mono), 0: none (execcut.h) */
	bool events_flush;	   /* agent_execpath_flush: the whole queue goes now */
	struct execwait exec_wait; /* the exec path's wait for a fuller batch */
	/* the control channel */
	int ctl;		  /* AGENT_CTL_FD, -1 when the parent is gone */
	enum de_ctl_state cstate; /* STARTING until the first CONFIG, then RUNNING */
	bool have_sup;
	struct de_ctl_supervisor sup; /* the parent's last view */
	int64_t next_heartbeat;	      /* monotonic */
	bool scan_now;		      /* a new procmond: reconcile at once */
	/* what happened, for health and metrics */
	int64_t started_ms;   /* this worker's start, wall clock */
	int64_t last_scan_ms; /* end of the last full scan attempt, wall clock */
	int64_t last_scan_id;
	bool last_scan_ok;
	unsigned scan_failures; /* full scans failed in a row */
	char last_scan_error[256];
	size_t last_processes;
	uint64_t last_scan_dur_ms;
	bool reload_ok;		/* the last reload worked (true before any) */
	int64_t reload_ms;	/* when the configuration in use was loaded */
	char reload_error[512]; /* why the last reload was refused */
	struct agent_metrics m;
	bool final_publish;	   /* the last report before exiting */
	struct de_idcache *names;  /* user and group names (identity.h) */
	bool want_conns;	   /* collection.connections */
	uint64_t conn_every;	   /* connections every Nth cycle (full_refresh_every) */
	uint64_t cycles;	   /* full cycles run */
	struct agent_fleet *fleet; /* the fleet's publisher (fleet_wiring.c); NULL when off */
};

/* ---- main.c ---------------------------------------------------------------------- */

/*
 * Hand a rule run's alerts to the alert manager (which takes them out of
 * the list): full for a run of every rule over the snapshot (results in
 * det.results), false for the exec path's single-process runs and the
 * watchdog's own alerts.  Failures are logged; detection never waits on a
 * sink.
 */
void agent_alerts(struct agent *ag, struct de_alert_list *alerts, bool full);

/*
 * Build detection from cfg: validator, the rule set (with --rules files and
 * the operator's overrides), an engine on the store.  0 or an error (det
 * untouched).  agent_detection_clear frees one.
 */
int agent_detection_load(struct agent *ag, const struct de_config *cfg, struct agent_detection *det,
			 struct de_error *err);
void agent_detection_clear(struct agent_detection *det);
/*
 * Put det (moved in) and the alerting configuration acfg (taken) in use:
 * the alert manager is opened again over det's rules.  When the new
 * manager cannot open (a sink), everything stays as it was: the old
 * detection, and a manager on the old configuration.  0 or the error.
 */
int agent_detection_swap(struct agent *ag, struct agent_detection *det,
			 struct de_alertmgr_config *acfg, struct de_error *err);

/*
 * After rules ran (a full cycle, or one process when !full): each rule whose
 * run went over detection.rule_budget_ms detection.rule_budget_strikes
 * times in a row is disabled (recorded in rules-state.json), listed in
 * health and announced with an alert.  Only a full run within the budget
 * clears a rule's strikes.
 */
void agent_rule_watchdog(struct agent *ag, bool full);

/* Apply the plain settings of cfg (alert format, retention, budgets...). */
int agent_settings_apply(struct agent *ag, const struct de_config *cfg, struct de_error *err);

/* ---- execpath.c -------------------------------------------------------------------- */

/*
 * Apply every event procmond has queued, in order.  The queue is cut before
 * an exit of a process exec'd earlier in the same run, so that the rules
 * see a process that lived for 10 ms before its exit takes it out of the
 * snapshot, and exits are deferred up to EXECCUT_DEFER_MS (execcut.h) so
 * that their history is written many at a time.  A batch the store refuses
 * stays queued, with everything after it, and is tried again next time: no
 * event is dropped because a write failed.  Returns the number of events
 * still queued.
 */
size_t agent_execpath_run(struct agent *ag);
/*
 * When agent_execpath_run should be called next (monotonic ms; INT64_MAX
 * when nothing is queued): now when the queue goes at once, later while it
 * waits for a fuller batch (execwait.h), for deferred exits' deadline
 * (execcut.h) or for a refused batch's retry.  *batching (when not NULL):
 * whether the queue waits for a fuller batch of processes to evaluate, not
 * yet due at now; false when only deferred exits wait, or nothing, or the
 * queue must go (a refused batch, a stop, a scan).  One count of the queue
 * for both.
 */
int64_t agent_execpath_due(struct agent *ag, int64_t now, bool *batching);
/*
 * Apply everything queued, deferred exits included, before a full scan:
 * the scan's diff then starts from what the events said, and an exit keeps
 * the kernel's time rather than the scan's.  Stops early while the store
 * refuses batches (they are tried again as usual).
 */
void agent_execpath_flush(struct agent *ag);
/* The events queued and not applied yet (those of held batches are applied). */
size_t agent_execpath_pending(const struct agent *ag);
/*
 * Commit the event batches the store holds (AGENT_BATCH_COMMIT_MS) now, and
 * drop their events from the queue; rolled back, they wait for the store
 * as a refused batch does.  The worker's loop calls it at their deadline.
 */
void agent_execpath_commit(struct agent *ag);

/*
 * Set r's user_name and group_name facts from its effective ids, through
 * the agent's bounded name cache (procmond never resolves names).  A record
 * without ids is left alone; out of memory leaves the names unset.
 */
void agent_resolve_names(struct agent *ag, struct de_process_record *r);

/* ---- worker_ctl.c -------------------------------------------------------------------- */

/*
 * Wait (at most timeout_ms) for the parent's first CONFIG and load it into
 * ag->cfg.  0, or an error to exit with.
 */
int agent_ctl_first_config(struct agent *ag, uint64_t timeout_ms, struct de_error *err);
/* Read and handle every message waiting on the control channel (never blocks). */
void agent_ctl_read(struct agent *ag);
/* Tell the parent: READY, a heartbeat with a status line, a new procmond please. */
void agent_ctl_ready(struct agent *ag);
void agent_ctl_heartbeat(struct agent *ag);
void agent_ctl_restart_procmond(struct agent *ag, enum de_ctl_reason why);
/*
 * For the audit ledger's signer: the parent's checkpoint signing key
 * (public half), and a signature over a checkpoint note body, which the
 * parent checks before it signs.  Other messages that arrive while we wait
 * are handled as usual.  0, or a CryptoError (no key, refused, no answer).
 */
int agent_ctl_public_key(struct agent *ag, uint8_t pub[DE_CTL_PUBKEY_LEN], struct de_error *err);
int agent_ctl_sign(struct agent *ag, const void *body, size_t len, uint8_t sig[DE_CTL_SIG_LEN],
		   struct de_error *err);

/* ---- ledger.c ------------------------------------------------------------------------------ */

/*
 * What the worker records in the audit ledger (docs/audit.md "What is
 * recorded").  Every function but open is a no-op while the ledger is off,
 * queues its entries in memory (no I/O) and logs its failures: recording
 * never stops the service.
 */
/* Open the audit ledger (audit.enabled), signing through the parent (audit.enable_signatures). */
int agent_ledger_open(struct agent *ag, struct de_error *err);
/* Tell the alert manager in use to report what it commits (after each open of it). */
void agent_ledger_observe(struct agent *ag);
/* Queue one entry (actor "agent"); payload is JSON text. */
void agent_ledger_record(struct agent *ag, const char *action, const char *payload);
/* Queue one entry whose payload is the JSON object p (taken). */
void agent_ledger_json(struct agent *ag, const char *action, json_t *p);
/* Queue `action` with payload (a JSON object, taken) + the hash of ag->cfg. */
void agent_ledger_config(struct agent *ag, const char *action, json_t *payload);
/* The rule set in use (ids, SQL hashes, enabled) and the rules refused at its load. */
void agent_ledger_rules(struct agent *ag, const char *reason);
/* One full scan: its id and counts (diff NULL and error set when it failed). */
void agent_ledger_scan(struct agent *ag, int64_t scan_id, const struct de_collect_stats *st,
		       const struct de_store_diff *diff, size_t alerts, const char *error);
/* A component's privileges as the kernel reports them (/proc/pid/status). */
void agent_ledger_privileges(struct agent *ag, const char *component, pid_t pid);
/* A rule the sandbox stopped at run time (timeout, memory or length limit in e). */
void agent_ledger_rule_stopped(struct agent *ag, const char *rule_id, int64_t scan_id,
			       const struct de_error *e);
/* audit.retention_days: the entries older, that a checkpoint covers, a batch a cycle. */
void agent_ledger_retention(struct agent *ag);
/* Commit what is queued; a checkpoint when one is due.  Each cycle. */
void agent_ledger_flush(struct agent *ag);
/* Between cycles: commit what is queued, at most once a second. */
void agent_ledger_tick(struct agent *ag);
void agent_ledger_close(struct agent *ag);

/* ---- telemetry.c ----------------------------------------------------------------------- */

int telemetry_open(struct agent *ag, struct de_error *err);
/* (Re)read metrics.textfile and metrics.listen from cfg; the listener moves if it changed. */
int telemetry_configure(struct agent *ag, const struct de_config *cfg, struct de_error *err);
void telemetry_close(struct agent *ag);
void telemetry_scan(struct agent *ag, bool ok, double seconds, size_t processes,
		    const struct de_collect_stats *st);
void telemetry_rules(struct agent *ag, const struct de_rule_result *results, size_t n, bool full);
void telemetry_alerts(struct agent *ag, const struct de_alert_list *alerts);
/* What the alert manager did with a run's alerts (suppressed, folded). */
void telemetry_alert_counts(struct agent *ag, const struct de_alertmgr_counts *c);
void telemetry_store_write(struct agent *ag, double seconds);
/*
 * The execs of ev[0..n) whose rules have just run (those with a record),
 * observed in daemoneye_exec_detection_seconds: now_ms (wall clock) less
 * each one's event time, the kernel's (eBPF) or procmond's reading of it
 * (netlink); a clock step makes one 0, never negative.
 */
void telemetry_exec_detected(struct agent *ag, const struct de_process_event *ev, size_t n,
			     int64_t now_ms);
/* Refresh the gauges and write metrics and health (at most once a second unless force). */
void telemetry_publish(struct agent *ag, bool force);

#endif
