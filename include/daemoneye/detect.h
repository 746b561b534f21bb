/*
 * detect.h — the DetectionEngine: runs rules over the event store's
 * snapshot inside the SQL sandbox (validator.h) and turns their rows into
 * Alerts.
 *
 * The engine owns a sandbox connection to the store file, separate from the
 * store's own (read-write) connection.  Each rule runs with its own timeout;
 * a failing rule never stops the others and is reported in its
 * de_rule_result.  Each distinct dedupe key among a rule's rows (rule id +
 * the values of its dedupe_key_fields, by default name + executable_path)
 * becomes one Alert: affected_processes are the distinct pids of its rows,
 * process_count their number, alert_data the rows as JSON objects (at most
 * DE_DETECT_MAX_ROWS), rule_execution_time_ms the rule's run time, scan_id
 * the scan.  A rule cut short (timeout, memory, too many alerts) after
 * producing rows keeps its alerts marked incomplete, so "no match" and
 * "could not finish" are never confused.
 *
 * Single-process runs (de_engine_run_pid, de_engine_run_pids) are for exec
 * events: every rule whose result has a `pid` column runs restricted to
 * the batch's pids, the rule's SELECT wrapped as a subquery whose pid must
 * be in the engine's own table of them (temp.de_exec_pids, filled once per
 * batch, unreadable by rules: validator.h), so one run of a rule covers a
 * whole batch at a primary-key search per pid.  A rule SQLite cannot
 * flatten into that wrapper (an aggregate, DISTINCT, LIMIT) takes the pids
 * bound as parameters instead, eight per run, as an IN list.  The rules
 * that are plain filters of processes are first tested together, one
 * statement per batch (the prefilter, below); those that hold for no pid
 * of the batch are not run.
 *
 * Ownership: alerts are appended to a caller-owned de_alert_list, cleared
 * with de_alert_list_clear().  The engine borrows its validator, which must
 * outlive it.  Results borrow rule ids from the rules passed in.
 */
#ifndef DAEMONEYE_DETECT_H
#define DAEMONEYE_DETECT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemoneye/error.h"
#include "daemoneye/alert.h"
#include "daemoneye/rule.h"
#include "daemoneye/validator.h"

#define DE_DETECT_MAX_ROWS   100  /* rows kept in one alert's alert_data */
#define DE_DETECT_MAX_ALERTS 1000 /* distinct alerts one rule may raise per run */

/*
 * The current row of st as a new JSON object {column: value} (caller owns
 * the reference; NULL on ENOMEM).  Text that is not UTF-8 is escaped with
 * de_escape_text(); blobs are read as text the same way.
 */
json_t *de_row_json(sqlite3_stmt *st);

/* What happened to one rule in a run. */
struct de_rule_result {
	const char *rule_id;   /* borrowed from the rule */
	bool ran;	       /* false: disabled, or not a single-process rule */
	int status;	       /* 0, or -errno: ETIMEDOUT, ENOMEM, E2BIG, EPERM, EIO... */
	size_t rows;	       /* rows the rule returned (before it stopped, if it did) */
	size_t alerts;	       /* alerts it raised */
	int64_t elapsed_us;    /* its run time */
	struct de_error error; /* why it failed (status < 0) */
};

struct de_engine;

/* Open an engine on the event store file db_path (read-only sandbox). */
int de_engine_open(const char *db_path, struct de_validator *v, struct de_engine **out,
		   struct de_error *err);
/*
 * Open an engine on the shared cache of the store writing db_path in this
 * process (vfs: de_store_shared_vfs; NULL opens as de_engine_open does):
 * its rules read the event batches the writer holds uncommitted
 * (de_store_hold_batches).  See de_validator_open_db_shared.
 */
int de_engine_open_shared(const char *db_path, const char *vfs, struct de_validator *v,
			  struct de_engine **out, struct de_error *err);
void de_engine_close(struct de_engine *e);
/* The sandbox connection (borrowed), e.g. for `daemoneye-cli query`. */
sqlite3 *de_engine_db(struct de_engine *e);

/*
 * Run one rule (enabled or not) over the snapshot, or over one process
 * when pid is non-NULL.  Alerts are appended to *alerts; *result says how
 * it went.  Returns result->status.
 */
int de_engine_run_rule(struct de_engine *e, const struct de_rule *rule, int64_t scan_id,
		       const uint32_t *pid, struct de_alert_list *alerts,
		       struct de_rule_result *result);

/*
 * Run every enabled rule of rules[0..n).  results (n entries) may be NULL.
 * Returns the number of rules that failed (>= 0); a failure is never fatal
 * to the others.
 */
int de_engine_run(struct de_engine *e, const struct de_rule *rules, size_t n, int64_t scan_id,
		  struct de_alert_list *alerts, struct de_rule_result *results);

/*
 * Run what follows (until de_engine_end_batch) in one read transaction of
 * the store: the exec path runs every rule for each process of a batch,
 * and one snapshot for all of them saves a transaction (and its locks) per
 * statement.  0, or an error (the runs then go on one by one).
 */
int de_engine_begin_batch(struct de_engine *e, struct de_error *err);
void de_engine_end_batch(struct de_engine *e);

/* The same restricted to one process (the exec path); see above. */
int de_engine_run_pid(struct de_engine *e, const struct de_rule *rules, size_t n, uint32_t pid,
		      int64_t scan_id, struct de_alert_list *alerts,
		      struct de_rule_result *results);

/*
 * The same restricted to each of pids[0..npids) (the exec path's batch):
 * each rule runs once over all of them (once per eight for a rule in the
 * parameter form, see above), and its alerts are those that
 * de_engine_run_pid would make for each pid in turn (a process's rows
 * never join another's alert), grouped by rule rather than by pid.
 * results[i] sums rule i over the batch.  The number of failed rules.
 */
int de_engine_run_pids(struct de_engine *e, const struct de_rule *rules, size_t n,
		       const uint32_t *pids, size_t npids, int64_t scan_id,
		       struct de_alert_list *alerts, struct de_rule_result *results);

/*
 * The exec path's prefilter (detect.c): before a batch's rules run, the
 * rules that are plain filters of processes (SELECT ... FROM processes
 * [AS a] WHERE <expr>) are tested together, their WHERE expressions as the
 * columns of one statement per alias over the batch's pids; a rule whose
 * expression held for none of them is reported as ran with no rows
 * (elapsed_us: its share of that statement's time) and not run.  On by
 * default; off, every rule runs alone (as a baseline for tests and
 * benchmarks).
 */
void de_engine_with_prefilter(struct de_engine *e, bool on);

/*
 * A prefilter statement's run that takes slow_us or longer (its
 * recompilation aside) is inconclusive: its rules run alone, so that a rule
 * that makes it slow has its own time measured (the agent's rule
 * watchdog), as without the prefilter.  DE_DETECT_PREFILTER_SLOW_US by
 * default; < 0: never (tests, whose speed must not matter).
 */
#define DE_DETECT_PREFILTER_SLOW_US 1000
void de_engine_with_prefilter_slow(struct de_engine *e, int64_t slow_us);

/* What the engine did since it was opened (for tests and benchmarks). */
struct de_engine_stats {
	uint64_t statements;	      /* statement runs: each rule's, each prefilter's */
	uint64_t prefilter_runs;      /* runs of prefilter statements */
	uint64_t prefilter_fallbacks; /* of those, failed or slow: their rules all ran */
	uint64_t prefilter_skipped;   /* rule runs the prefilter made unnecessary */
	uint64_t prefilter_builds;    /* times the prefilter was (re)built for a rule set */
};
void de_engine_get_stats(const struct de_engine *e, struct de_engine_stats *out);

/*
 * The text of prefilter statement i (0-based) as the engine built it for
 * its last batch, NULL past the last one or before any was built (for
 * tests and diagnostics; owned by the engine, valid until its next run).
 */
const char *de_engine_prefilter_sql(const struct de_engine *e, size_t i);

#endif
