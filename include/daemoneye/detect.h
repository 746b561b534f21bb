/*
 * detect.h — running SQL detection rules over the event store's snapshot.
 *
 * A rule is a single SQLite SELECT.  It runs on the store's connection under
 * an authorizer that allows reading and calling functions only, so a rule
 * cannot write, attach, or change settings.  Each distinct dedupe key among
 * the matching rows (rule id + process name + executable path) becomes one
 * Alert listing the matching pids, with the rows themselves (capped at
 * DE_DETECT_MAX_ROWS) as alert_data.
 *
 * Ownership: alerts are appended to a caller-owned de_alert_list, cleared
 * with de_alert_list_clear().  Builtin rules are returned as new de_rule
 * structs the caller frees.
 */
#ifndef DAEMONEYE_DETECT_H
#define DAEMONEYE_DETECT_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "daemoneye/error.h"
#include "daemoneye/model.h"

#define DE_DETECT_MAX_ROWS 100

struct de_alert_list {
	struct de_alert *items; /* owned */
	size_t len;
	size_t cap;
};

void de_alert_list_clear(struct de_alert_list *l);

/* The rules compiled into daemoneye, as new structs (caller frees each). */
int de_detect_builtin_rules(struct de_rule **out, size_t *n, struct de_error *err);
void de_rule_array_free(struct de_rule *rules, size_t n);

/*
 * Run one rule over db and append its alerts to *alerts.  timeout_ms bounds
 * its execution (0: no bound).  A rule that fails is a DetectionError naming
 * the rule; nothing is appended then.
 */
int de_detect_run_rule(sqlite3 *db, const struct de_rule *rule, int64_t scan_id,
		       uint64_t timeout_ms, struct de_alert_list *alerts, struct de_error *err);

#endif
