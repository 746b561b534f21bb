/*
 * ledger.c — the worker's audit ledger (audit.h, docs/audit.md): opened
 * when audit.enabled, its checkpoints signed by the privileged parent over
 * the control channel (the worker never reads the key: the signer asks the
 * parent, which checks the note body before it signs), flushed each cycle,
 * closed at exit.  It records the service's own life here (start, stop,
 * reloads); what else the agent records goes through agent_ledger_record.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "daemoneye/log.h"

/* de_checkpoint_signer's callback: the parent signs. */
static int parent_signs(void *arg, const void *msg, size_t len, uint8_t sig[DE_ED25519_SIG_LEN],
			struct de_error *err)
{
	return agent_ctl_sign(arg, msg, len, sig, err);
}

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
		if ((rc = agent_ctl_public_key(ag, pub, err)) < 0)
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

void agent_ledger_flush(struct agent *ag)
{
	struct de_error err = {0};

	/* every cycle, even with nothing queued: a checkpoint may be due by time */
	if (ag->audit && de_audit_flush(ag->audit, &err) < 0)
		de_log_err(&err);
}

void agent_ledger_close(struct agent *ag)
{
	struct de_error err = {0};

	if (ag->audit && de_audit_close(ag->audit, &err) < 0)
		de_log_err(&err);
	ag->audit = NULL;
	de_audit_settings_clear(&ag->audit_set);
}
