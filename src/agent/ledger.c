/*
 * ledger.c — what the worker records in the audit ledger (audit.h,
 * docs/audit.md "What is recorded"): opened when audit.enabled, its
 * checkpoints signed by the privileged parent over the control channel
 * (the worker never reads the key: the signer asks the parent, which
 * checks the note body before it signs), closed at exit with a last
 * checkpoint over what the run recorded.
 *
 * Entries (actor "agent"): start and stop, the configuration's hash at
 * start and on reload, each rule set put in use (every rule's id, SQL hash
 * and enabled flag) and each rule refused at load, each full scan (id,
 * counts and the batch's hash, store.h), each alert the alert manager committed and each delivery
 * outcome it recorded (through its observer), each component's privileges
 * once it has dropped what it does not keep (the parent and the worker at
 * the worker's start, each procmond after its first scan: ids,
 * capabilities, no_new_privs, seccomp, from /proc/PID/status), each rule
 * the sandbox stopped at run time (timeout, memory or length limit).
 * Command lines (an alert's subjects) are masked with the collector's
 * policy.  The CLI records operators'
 * state changes itself (src/cli/common.c, cli_audit_*).
 *
 * Off the hot path: an entry is queued in memory (de_audit_append: two
 * BLAKE3 hashes, no I/O) and the queue is committed in one transaction at
 * the end of each cycle and, between cycles, at most once a second
 * (agent_ledger_tick).  Between cycles the exec path runs, so there the
 * queue is only committed (no fsync in WAL mode); a checkpoint that is due
 * (a round trip to the parent for its signature, an fsync) is made at the
 * end of the next cycle.  The time the ledger takes in a cycle is measured
 * (ag->ledger_cycle_us, the metric daemoneye_audit_scan_cost_seconds).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "daemoneye/base64.h"
#include "daemoneye/clock.h"
#include "daemoneye/log.h"
#include "daemoneye/mask.h"
#include "daemoneye/text.h"

/* A rules.load entry's payload stays well under DE_AUDIT_PAYLOAD_MAX. */
#define LEDGER_RULES_CHUNK ((size_t)48 * 1024)
/* Subjects listed in an alert.raised entry (the count is always given). */
#define LEDGER_MAX_SUBJECTS 16
/* Retention removes at most this many entries a cycle. */
#define LEDGER_PRUNE_BATCH 10000
/* Between cycles, the queue is committed at most this often. */
#define LEDGER_TICK_MS 1000

/* de_checkpoint_signer's callback: the parent signs. */
static int parent_signs(void *arg, const void *msg, size_t len, uint8_t sig[DE_ED25519_SIG_LEN],
			struct de_error *err)
{
	return agent_ctl_sign(arg, msg, len, sig, err);
}

/* s as a JSON string, bytes that are not UTF-8 as U+FFFD; NULL on ENOMEM. */
static json_t *json_text(const char *s)
{
	char *t = de_utf8_lossy_dup(s, strlen(s), NULL);
	json_t *j = t ? json_string(t) : NULL;

	free(t);
	return j;
}

void agent_ledger_json(struct agent *ag, const char *action, json_t *p)
{
	int64_t t0 = de_mono_us();
	char *text = p ? json_dumps(p, JSON_COMPACT) : NULL;

	json_decref(p);
	if (!text) {
		de_log_errorx("audit ledger: out of memory: %s not recorded", action);
		return;
	}
	agent_ledger_record(ag, action, text);
	free(text);
	ag->ledger_us += de_mono_us() - t0;
}

/* ---- the alert manager's observer ---------------------------------------------------- */

/*
 * A command line as the ledger keeps it: masked again with the collector's
 * policy (collection.mask_command_line, collection.mask_flags), word by
 * word, whatever masked it before (the store's text is the collector's
 * masked argv joined by spaces; a policy widened since is applied too).
 * NULL when masking fails: the command line is then left out.
 */
static json_t *masked_command_line(const struct agent *ag, const json_t *cl)
{
	const char *text = json_string_value(cl);
	const char **flags = NULL;
	char **argv = NULL, *copy = NULL, *save = NULL, *joined = NULL;
	size_t argc = 0, nflags = 0, len;
	bool mask = true;
	json_t *out = NULL;

	if (!text || !ag->cfg)
		return NULL;
	if (de_config_get_bool(ag->cfg, "collection.mask_command_line", &mask, NULL) < 0)
		mask = true;
	if (!mask)
		return json_text(text);
	len = strlen(text);
	if (de_config_get_str_list(ag->cfg, "collection.mask_flags", &flags, &nflags, NULL) < 0 ||
	    !(copy = strdup(text)) || !(argv = calloc(len / 2 + 2, sizeof(*argv))))
		goto out;
	for (char *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save))
		if (!(argv[argc++] = strdup(w)))
			goto out;
	if (de_mask_argv(argv, argc, flags, nflags) < 0)
		goto out;
	len = 1;
	for (size_t i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	if (!(joined = malloc(len)))
		goto out;
	joined[0] = '\0';
	for (size_t i = 0, at = 0; i < argc; i++)
		at += (size_t)sprintf(joined + at, "%s%s", i ? " " : "", argv[i]);
	out = json_text(joined);
out:
	for (size_t i = 0; argv && i < argc; i++)
		free(argv[i]);
	free(argv);
	free(copy);
	free(joined);
	free((void *)flags);
	return out;
}

static json_t *subjects(const struct agent *ag, const struct de_alert *a)
{
	json_t *arr = json_array();
	json_t *procs = json_object_get(a->context, "processes");
	size_t i;
	json_t *p;

	if (!arr)
		return NULL;
	if (json_is_array(procs) && json_array_size(procs)) {
		json_array_foreach (procs, i, p) {
			if (i >= LEDGER_MAX_SUBJECTS)
				break;
			json_t *s = json_pack("{s:O?, s:O?, s:O?, s:O?}", "pid",
					      json_object_get(p, "pid"), "start_time",
					      json_object_get(p, "start_time"), "name",
					      json_object_get(p, "name"), "executable_path",
					      json_object_get(p, "executable_path"));
			json_t *cl = masked_command_line(ag, json_object_get(p, "command_line"));
			if (s && cl)
				json_object_set_new(s, "command_line", cl);
			else
				json_decref(cl);
			json_array_append_new(arr, s);
		}
		return arr;
	}
	for (size_t k = 0; k < a->affected_processes_len && k < LEDGER_MAX_SUBJECTS; k++)
		json_array_append_new(
			arr, json_pack("{s:I}", "pid", (json_int_t)a->affected_processes[k]));
	return arr;
}

static void on_raised(void *arg, const struct de_alert *a, size_t nsinks)
{
	struct agent *ag = arg;
	char id[DE_UUID_STR_LEN + 1];
	json_t *p;

	de_uuid_format(&a->id, id);
	p = json_pack("{s:s, s:s, s:s, s:s, s:o, s:I, s:I}", "id", id, "kind", de_alert_kind(a),
		      "rule_id", a->rule_id ? a->rule_id : "", "severity",
		      de_severity_name(a->severity), "subjects", subjects(ag, a), "processes",
		      (json_int_t)a->affected_processes_len, "sinks", (json_int_t)nsinks);
	if (p && a->has_scan_id)
		json_object_set_new(p, "scan_id", json_integer(a->scan_id));
	agent_ledger_json(ag, "alert.raised", p);
}

static void on_delivery(void *arg, const char *alert_id, const char *sink,
			enum de_outbox_status status, uint32_t attempts, const char *error)
{
	struct agent *ag = arg;

	agent_ledger_json(ag, "alert.delivery",
			  json_pack("{s:s, s:s, s:s, s:I, s:s?}", "alert_id", alert_id, "sink",
				    sink, "outcome",
				    status == DE_OUTBOX_DELIVERED ? "delivered"
				    : status == DE_OUTBOX_DEAD	  ? "dead"
								  : "retry",
				    "attempts", (json_int_t)attempts, "error", error));
}

void agent_ledger_observe(struct agent *ag)
{
	struct de_alertmgr_observer o = {on_raised, on_delivery, ag};

	if (ag->alerts)
		de_alertmgr_set_observer(ag->alerts, ag->audit ? &o : NULL);
}

/* ---- open, record, flush, close -------------------------------------------------------- */

int agent_ledger_open(struct agent *ag, struct de_error *err)
{
	struct de_audit_config acfg;
	int rc;

	if ((rc = de_audit_settings_load(ag->cfg, &ag->audit_set, err)) < 0)
		return rc;
	if (!ag->audit_set.enabled)
		return 0;
	de_audit_settings_config(&ag->audit_set, false, &acfg);
	if (ag->audit_set.enable_signatures) {
		uint8_t pub[DE_CTL_PUBKEY_LEN];
		if (agent_ctl_public_key(ag, pub, err) < 0)
			return de_error_prefix(err, "audit.enable_signatures: ");
		snprintf(ag->signer.key_name, sizeof(ag->signer.key_name), "%s",
			 ag->audit_set.origin);
		ag->signer.key_id = de_checkpoint_key_id(ag->audit_set.origin, pub);
		ag->signer.sign = parent_signs;
		ag->signer.arg = ag;
		acfg.signer = &ag->signer;
	}
	if ((rc = de_audit_open(&acfg, &ag->audit, err)) < 0)
		return rc;
	de_log_info("audit ledger %s (%llu entries; checkpoints %s)", ag->audit_set.path,
		    (unsigned long long)de_audit_size(ag->audit),
		    ag->audit_set.enable_signatures ? "signed by the parent" : "not signed");
	return 0;
}

void agent_ledger_record(struct agent *ag, const char *action, const char *payload)
{
	struct de_audit_entry e = {.actor = "agent", .action = action, .payload = payload};
	struct de_error err = {0};

	if (ag->audit && de_audit_append(ag->audit, &e, NULL, &err) < 0)
		de_log_err(&err);
}

void agent_ledger_config(struct agent *ag, const char *action, json_t *payload)
{
	char *text = NULL;
	char h[DE_AUDIT_HASH_TEXT_LEN + 1];

	if (!ag->audit) {
		json_decref(payload);
		return;
	}
	/* the configuration in effect, keys sorted: the same settings hash the same */
	if (payload && ag->cfg &&
	    (text = json_dumps(de_config_tree(ag->cfg), JSON_COMPACT | JSON_SORT_KEYS))) {
		de_audit_hash_text(text, strlen(text), h);
		json_object_set_new(payload, "config_blake3", json_string(h));
	}
	free(text);
	agent_ledger_json(ag, action, payload);
}

void agent_ledger_rules(struct agent *ag, const char *reason)
{
	const struct agent_detection *d = &ag->det;
	json_t *rules = NULL;
	size_t bytes = 0, part = 0;

	if (!ag->audit)
		return;
	for (size_t i = 0; i < d->refused.len; i++)
		agent_ledger_json(ag, "rule.refused",
				  json_pack("{s:s, s:o}", "reason", reason, "problem",
					    json_text(d->refused.items[i])));
	for (size_t i = 0; i <= d->rules.len; i++) {
		/* one entry per chunk of rules, so that no payload nears the cap */
		if (rules && (i == d->rules.len || bytes >= LEDGER_RULES_CHUNK)) {
			agent_ledger_json(ag, "rules.load",
					  json_pack("{s:s, s:I, s:I, s:I, s:o}", "reason", reason,
						    "part", (json_int_t)++part, "rules_total",
						    (json_int_t)d->rules.len, "refused",
						    (json_int_t)d->refused.len, "rules", rules));
			rules = NULL;
			bytes = 0;
		}
		if (i == d->rules.len)
			break;
		const struct de_rule *r = &d->rules.items[i];
		char h[DE_AUDIT_HASH_TEXT_LEN + 1];
		de_audit_hash_text(r->sql_query, strlen(r->sql_query), h);
		if (!rules && !(rules = json_array()))
			break;
		json_array_append_new(rules, json_pack("{s:o, s:s, s:b}", "id", json_text(r->id),
						       "sql_blake3", h, "enabled", r->enabled));
		bytes += strlen(r->id) + sizeof(h) + 48;
	}
	if (!d->rules.len)
		agent_ledger_json(ag, "rules.load",
				  json_pack("{s:s, s:I, s:I, s:I, s:[]}", "reason", reason, "part",
					    (json_int_t)1, "rules_total", (json_int_t)0, "refused",
					    (json_int_t)d->refused.len, "rules"));
}

void agent_ledger_scan(struct agent *ag, int64_t scan_id, const struct de_collect_stats *st,
		       const struct de_store_diff *diff, size_t alerts, const char *error)
{
	json_t *p;

	if (!ag->audit)
		return;
	p = json_pack("{s:I, s:b, s:I, s:I, s:I, s:I, s:I}", "scan_id", (json_int_t)scan_id, "ok",
		      !error, "processes", (json_int_t)st->recorded, "vanished",
		      (json_int_t)st->vanished, "inaccessible", (json_int_t)st->inaccessible,
		      "hashed_files", (json_int_t)st->hashed_files, "alerts", (json_int_t)alerts);
	if (p && diff && diff->has_batch_hash) {
		char b64[DE_AUDIT_HASH_TEXT_LEN + 1];
		de_base64_encode(diff->batch_hash, sizeof(diff->batch_hash), b64);
		json_object_set_new(p, "batch_blake3", json_string(b64));
	}
	if (p && diff)
		json_object_set_new(
			p, "stored",
			json_pack("{s:I, s:I, s:I, s:I}", "added", (json_int_t)diff->added,
				  "changed", (json_int_t)diff->changed, "history",
				  (json_int_t)diff->history, "exited", (json_int_t)diff->exited));
	if (p && error)
		json_object_set_new(p, "error", json_text(error));
	agent_ledger_json(ag, "scan", p);
}

/* The 16 hex digits after "Key:" in a /proc/PID/status text, or NULL. */
static json_t *status_field(const char *status, const char *key, bool hex)
{
	char pat[32];
	const char *at;

	snprintf(pat, sizeof(pat), "\n%s:", key);
	if (!(at = strstr(status, pat)))
		return NULL;
	at += strlen(pat);
	while (*at == ' ' || *at == '\t')
		at++;
	if (hex) {
		char v[24];
		size_t n = strspn(at, "0123456789abcdef");
		if (n == 0 || n >= sizeof(v))
			return NULL;
		snprintf(v, sizeof(v), "%.*s", (int)n, at);
		return json_string(v);
	}
	return json_integer(strtoll(at, NULL, 10)); /* the first of Uid's four: the real id */
}

void agent_ledger_privileges(struct agent *ag, const char *component, pid_t pid)
{
	static const struct {
		const char *key, *name;
		bool hex;
	} fields[] = {
		{"Uid", "uid", false},
		{"Gid", "gid", false},
		{"CapEff", "cap_effective", true},
		{"CapPrm", "cap_permitted", true},
		{"CapBnd", "cap_bounding", true},
		{"CapAmb", "cap_ambient", true},
		{"NoNewPrivs", "no_new_privs", false},
		{"Seccomp", "seccomp", false},
	};
	char path[64], status[8192];
	json_t *p;
	FILE *f;
	size_t n;

	if (!ag->audit || pid <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	status[0] = '\n';
	if (!(f = fopen(path, "re"))) {
		agent_ledger_json(ag, "privileges",
				  json_pack("{s:s, s:I, s:s}", "component", component, "pid",
					    (json_int_t)pid, "error", strerror(errno)));
		return;
	}
	n = fread(status + 1, 1, sizeof(status) - 2, f);
	(void)fclose(f); /* read only: nothing to lose */
	status[n + 1] = '\0';
	p = json_pack("{s:s, s:I}", "component", component, "pid", (json_int_t)pid);
	for (size_t i = 0; p && i < sizeof(fields) / sizeof(fields[0]); i++) {
		json_t *v = status_field(status, fields[i].key, fields[i].hex);
		if (v)
			json_object_set_new(p, fields[i].name, v);
	}
	agent_ledger_json(ag, "privileges", p);
}

void agent_ledger_rule_stopped(struct agent *ag, const char *rule_id, int64_t scan_id,
			       const struct de_error *e)
{
	const char *by = e->code == ETIMEDOUT ? "timeout"
			 : e->code == ENOMEM  ? "memory_limit"
			 : e->code == E2BIG   ? "length_limit"
					      : NULL;

	if (!ag->audit || !by)
		return; /* not the sandbox's refusal (an I/O error, a stop) */
	agent_ledger_json(ag, "rule.sql_refused",
			  json_pack("{s:o, s:I, s:s, s:o}", "rule_id", json_text(rule_id),
				    "scan_id", (json_int_t)scan_id, "by", by, "error",
				    json_text(e->message)));
}

void agent_ledger_flush(struct agent *ag)
{
	struct de_error err = {0};
	int64_t t0 = de_mono_us();

	/* every cycle, even with nothing queued: a checkpoint may be due by time */
	if (ag->audit && de_audit_flush(ag->audit, &err) < 0)
		de_log_err(&err);
	ag->ledger_us += de_mono_us() - t0;
	ag->ledger_next_flush = de_mono_ms() + LEDGER_TICK_MS;
}

void agent_ledger_tick(struct agent *ag)
{
	struct de_error err = {0};

	/* the exec path runs here: commit only; a checkpoint (a signature
	   from the parent, an fsync) waits for the end of the cycle */
	if (!ag->audit || !de_audit_pending(ag->audit) || de_mono_ms() < ag->ledger_next_flush)
		return;
	if (de_audit_commit(ag->audit, &err) < 0)
		de_log_err(&err);
	ag->ledger_next_flush = de_mono_ms() + LEDGER_TICK_MS;
}

void agent_ledger_retention(struct agent *ag)
{
	struct de_audit_prune pr;
	struct de_error err = {0};
	uint64_t days = ag->audit_set.retention_days;

	if (!ag->audit || !days)
		return;
	if (de_audit_prune(ag->audit, de_now_ms() - (int64_t)days * 86400000, LEDGER_PRUNE_BATCH,
			   &pr, &err) < 0)
		de_log_err(&err);
	else if (pr.removed)
		de_log_debug("audit ledger: pruned entries up to %llu (older than %llu days)",
			     (unsigned long long)pr.upto, (unsigned long long)days);
}

void agent_ledger_close(struct agent *ag)
{
	struct de_error err = {0};

	if (ag->alerts)
		de_alertmgr_set_observer(ag->alerts, NULL);
	/* a last checkpoint attests everything this run recorded (--once too) */
	if (ag->audit && ag->audit_set.enable_signatures &&
	    (de_audit_flush(ag->audit, &err) < 0 ||
	     (de_audit_unattested(ag->audit) && de_audit_checkpoint(ag->audit, NULL, &err) < 0))) {
		de_log_err(&err);
		de_error_clear(&err);
	}
	if (ag->audit && de_audit_close(ag->audit, &err) < 0)
		de_log_err(&err);
	ag->audit = NULL;
	de_audit_settings_clear(&ag->audit_set);
}
