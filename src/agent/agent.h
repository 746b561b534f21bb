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
#include "daemoneye/identity.h"
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
	struct de_idcache *names;	     /* user and group names (identity.h) */
	bool want_conns;		     /* collection.connections */
	uint64_t conn_every;		     /* connections every Nth cycle (full_refresh_every) */
	uint64_t cycles;		     /* full cycles run */
	bool warned_over_cap; /* said once that the snapshot alone exceeds max_size_mb */
	struct agent_fleet *fleet; /* the fleet's publisher (fleet_wiring.c); NULL when off */
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
 * Apply the events procmond has queued as one batch (execpath.c).  An
 * exit of a process exec'd in the same batch stays queued for the next
 * batch, so that the rules see a process that lived for a millisecond
 * before its exit takes it out of the snapshot; agent_execpath_pending()
 * then says to run again soon.  A failure is logged and the batch
 * dropped: the next full scan reconciles.
 */
void agent_execpath_run(struct agent *ag);
bool agent_execpath_pending(const struct agent *ag);

/*
 * Set r's user_name and group_name facts from its effective ids, through
 * the agent's bounded name cache (procmond never resolves names).  A record
 * without ids is left alone; out of memory leaves the names unset.
 */
void agent_resolve_names(struct agent *ag, struct de_process_record *r);

#endif
