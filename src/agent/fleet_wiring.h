/*
 * fleet_wiring.h — the agent's side of the fleet (fleet.h, docs/fleet.md):
 * what the agent hands to the fleet's stream besides alerts (which go
 * through the `nats` alert sink and the outbox): process events and scan
 * summaries through the store's spool, and the audit ledger's signed
 * checkpoints.  Every function is a no-op when fleet.enabled is false.
 */
#ifndef AGENT_FLEET_WIRING_H
#define AGENT_FLEET_WIRING_H

#include <stddef.h>
#include <stdint.h>

#include "daemoneye/config.h"
#include "daemoneye/error.h"
#include "daemoneye/record.h"
#include "daemoneye/store.h"

struct agent;

/* Check the fleet.* settings (for --check-config and before setup): 0 or a ConfigurationError. */
int agent_fleet_check(const struct de_config *cfg, struct de_error *err);
/* Connect (in the background: an unreachable cluster is no error) after the store is open. */
int agent_fleet_start(struct agent *ag, struct de_error *err);
/* Spool the exec/exit events ev[0..n) the store just applied. */
void agent_fleet_events(struct agent *ag, const struct de_process_event *ev, size_t n);
/* Spool a full scan's summary, then publish what waits (agent_fleet_flush). */
void agent_fleet_cycle(struct agent *ag, int64_t scan_id, int64_t started_ms, size_t processes,
		       const struct de_store_diff *diff, size_t alerts);
/*
 * Answer the queries that came and look for a new rule bundle; publish what
 * waits in the spool, oldest first, and the ledger's latest checkpoint when
 * it is new, within a second in all (each publish waits for its ack at most
 * what is left of that second, and a stop request ends it early).  Failures
 * are logged once per outage; what was not published waits for the next
 * call (or the next run: the spool is in the store).
 */
void agent_fleet_flush(struct agent *ag);
/* A last flush within budget_ms (no queries, no bundles; none when the last
   one failed), then close. */
void agent_fleet_stop(struct agent *ag, int64_t budget_ms);
/*
 * The descriptors the agent's loop also polls so that a fleet query is
 * answered when it comes, not at the loop's next timer: fills fds[0..max)
 * and returns how many (0 without fleet queries).
 */
int agent_fleet_wake_fds(const struct agent *ag, int *fds, int max);

#endif
