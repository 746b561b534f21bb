/*
 * agent.h — what the agent's files share: the agent's state, delivering
 * alerts (main.c) and the exec path (execpath.c).
 */
#ifndef AGENT_AGENT_H
#define AGENT_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemoneye/alert.h"
#include "daemoneye/alertmgr.h"
#include "daemoneye/config.h"
#include "daemoneye/detect.h"
#include "daemoneye/rules.h"
#include "daemoneye/store.h"
#include "daemoneye/validator.h"
#include "procmond_client.h"

struct agent {
	struct de_config *cfg;
	struct de_store *store;
	const struct de_config_sources *src; /* passed on to procmond */
	struct procmond_chan pm;
	struct de_validator *validator; /* the SQL sandbox's settings */
	struct de_engine *engine;	/* rules run here, read-only */
	struct de_rule_set rules;	/* builtin + rules_dirs + imported */
	struct de_rule_result *results; /* one per rule, reused each cycle */
	const char **rule_files;	/* --rules FILE..., borrowed from argv */
	size_t nrule_files;
	struct de_alertmgr_config *alerting; /* loaded at start, handed to the manager */
	struct de_alertmgr *alerts;	     /* alerts -> outbox -> sinks */
	uint64_t retention_days;	     /* database.retention_days */
	bool warned_over_cap; /* said once that the snapshot alone exceeds max_size_mb */
};

/* The exec path folds the store's WAL into the file beyond this size. */
#define AGENT_WAL_CHECKPOINT_BYTES (4u << 20)

/*
 * Hand a rule run's alerts to the alert manager (which moves them out of
 * the list): full for a run of every rule over the snapshot, false for the
 * exec path's single-process runs.  Failures are logged; the detection path
 * never waits on a sink.
 */
void agent_alerts(struct agent *ag, struct de_alert_list *alerts, bool full);

/*
 * Apply every event procmond has queued, in order, then forget them.  The
 * queue is cut before an exit of a process exec'd earlier in the same run,
 * so that the rules see a process that lived for 10 ms before its exit
 * takes it out of the snapshot.  A failure is logged and the rest dropped:
 * the next full scan reconciles.
 */
void agent_execpath_run(struct agent *ag);

#endif
