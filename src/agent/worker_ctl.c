/*
 * worker_ctl.c — the worker's end of the control channel (ctl.h,
 * docs/process-model.md): the configuration files the parent opened for us
 * (at start and on every SIGHUP: an atomic reload, or the old configuration
 * kept with the reason in the log and in health), the channel of each new
 * procmond, the parent's view of the supervision, and what we tell the
 * parent: READY, heartbeats with a status line, requests for a new
 * procmond, and (for the audit ledger) checkpoint signatures.
 *
 * Anything the parent sends that the dispatch table does not allow here is
 * a broken protocol: the worker stops (the parent starts another).
 */
#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "daemoneye/clock.h"
#include "daemoneye/fileio.h"
#include "daemoneye/log.h"

/* How often the worker tells the parent it is alive (watchdog.worker_timeout_ms is far longer). */
#define HEARTBEAT_MS 2000

/* The channel is unusable: say so once and stop (the parent decides what follows). */
static void ctl_lost(struct agent *ag, const char *why)
{
	if (ag->ctl < 0)
		return;
	de_log_warnx("control channel: %s: stopping", why);
	close(ag->ctl);
	ag->ctl = -1;
	agent_stop = 1;
}

static void send_parent(struct agent *ag, const struct de_ctl_msg *m)
{
	struct de_error err = {0};
	int rc;

	if (ag->ctl < 0)
		return;
	/* blocking: the parent always reads, and our messages are few and small */
	rc = de_ctl_send(ag->ctl, m, false, &err);
	if (rc == -EPIPE || rc == -ECONNRESET)
		ctl_lost(ag, "the parent is gone");
	else if (rc < 0)
		de_log_err(&err);
}

/* The configuration a CONFIG message carries, loaded from its descriptors. */
static int config_from(struct agent *ag, const struct de_ctl_msg *m, struct de_config **out,
		       struct de_error *err)
{
	struct de_config_text texts[DE_CTL_MAX_FDS];
	char *bufs[DE_CTL_MAX_FDS] = {NULL, NULL};
	struct de_config_sources src = ag->src;
	int rc = 0;

	if (m->text_len)
		return de_error_set(err, DE_ERR_CONFIGURATION, EINVAL, "%s", m->text);
	for (size_t i = 0; i < m->nfiles && rc == 0; i++) {
		size_t len = 0;
		rc = de_read_fd(m->fds[i], DE_CONFIG_MAX_FILE, &bufs[i], &len, NULL);
		if (rc == -EFBIG)
			rc = de_error_set(err, DE_ERR_CONFIGURATION, EFBIG,
					  "configuration file %s is larger than %u bytes",
					  m->paths[i], DE_CONFIG_MAX_FILE);
		else if (rc < 0)
			rc = de_error_set(err, DE_ERR_CONFIGURATION, -rc,
					  "cannot read configuration file %s: %s", m->paths[i],
					  strerror(-rc));
		texts[i] = (struct de_config_text){m->paths[i], bufs[i], len};
	}
	if (rc == 0) {
		/* an empty list still means "these files, none of them there" */
		src.texts = texts;
		src.ntexts = m->nfiles;
		rc = de_config_load(&src, out, err);
	}
	for (size_t i = 0; i < DE_CTL_MAX_FDS; i++)
		free(bufs[i]);
	return rc;
}

/* Keys that name where things are or who we are: only a restart changes them. */
static int immutable_changed(const struct de_config *a, const struct de_config *b,
			     struct de_error *err)
{
	static const char *const keys[] = {"app.state_dir", "database.path", "app.run_as_user"};

	/* the ledger and its signer are set up once, at start */
	if (!json_equal(json_object_get(de_config_tree(a), "audit"),
			json_object_get(de_config_tree(b), "audit")))
		return de_error_set(err, DE_ERR_CONFIGURATION, EINVAL,
				    "audit.* cannot change on reload: restart the service");
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *x = NULL, *y = NULL;
		(void)de_config_get_str(a, keys[i], &x, NULL);
		(void)de_config_get_str(b, keys[i], &y, NULL);
		if ((x == NULL) != (y == NULL) || (x && strcmp(x, y) != 0))
			return de_error_set(err, DE_ERR_CONFIGURATION, EINVAL,
					    "%s cannot change on reload: restart the service",
					    keys[i]);
	}
	return 0;
}

/* SIGHUP, through the parent: everything new, or nothing. */
static void reload(struct agent *ag, const struct de_ctl_msg *m)
{
	struct de_config *cfg = NULL;
	struct agent_detection det = {0};
	struct de_alertmgr_config *acfg = NULL;
	struct de_error err = {0};
	struct de_ctl_msg r;
	bool collection_changed = false;

	/* all of it aside first; the swap (which reopens the alert manager over
	   the new rules and sinks) keeps the old when the new cannot start */
	int rc = config_from(ag, m, &cfg, &err);
	if (rc == 0)
		rc = immutable_changed(ag->cfg, cfg, &err);
	if (rc == 0)
		rc = agent_detection_load(ag, cfg, &det, &err);
	if (rc == 0)
		rc = de_alertmgr_config_load(cfg, &acfg, &err);
	if (rc == 0)
		rc = telemetry_configure(ag, cfg, &err);
	if (rc == 0) {
		rc = agent_detection_swap(ag, &det, acfg, &err);
		acfg = NULL; /* taken, whatever happened */
	}
	if (rc == 0)
		rc = agent_settings_apply(ag, cfg, &err); /* cannot fail on a checked config */
	if (rc < 0) {
		agent_detection_clear(&det);
		de_alertmgr_config_free(acfg);
		de_config_free(cfg);
		ag->reload_ok = false;
		snprintf(ag->reload_error, sizeof(ag->reload_error), "%s", err.message);
		de_log_warnx("reload refused, still running on the previous configuration: %s",
			     err.message);
	} else {
		collection_changed =
			!json_equal(json_object_get(de_config_tree(ag->cfg), "collection"),
				    json_object_get(de_config_tree(cfg), "collection"));
		de_config_free(ag->cfg);
		ag->cfg = cfg;
		ag->reload_ok = true;
		ag->reload_error[0] = '\0';
		ag->reload_ms = de_now_ms();
		de_log_info("configuration reloaded: %zu detection rules", ag->det.rules.len);
	}
	/* the hash of the configuration in use after it: the new one, or the old kept */
	agent_ledger_config(
		ag, "config.reload",
		json_pack("{s:b, s:s}", "ok", ag->reload_ok, "error", ag->reload_error));
	if (ag->reload_ok)
		agent_ledger_rules(ag, "reload");
	de_ctl_msg_init(&r, DE_CTL_RELOAD_DONE);
	r.generation = m->generation;
	r.ok = ag->reload_ok;
	r.text_len = (size_t)snprintf(r.text, sizeof(r.text), "%s", ag->reload_error);
	if (r.text_len >= sizeof(r.text))
		r.text_len = sizeof(r.text) - 1;
	send_parent(ag, &r);
	/* procmond reads collection.* when it starts: a new one reads the new settings */
	if (collection_changed && ag->pm.fd >= 0)
		agent_ctl_restart_procmond(ag, DE_CTL_REASON_RELOAD);
	telemetry_publish(ag, true);
}

static void on_procmond(struct agent *ag, struct de_ctl_msg *m)
{
	struct de_error err = {0};
	int fd = m->fds[0];

	m->fds[0] = -1; /* ours now */
	m->nfds = 0;
	if (agent_procmond_attach(&ag->pm, fd, (pid_t)m->pid, m->generation, m->time_ms, &err) <
	    0) {
		de_log_err(&err);
		ag->pm.gen = m->generation;
		agent_ctl_restart_procmond(ag, err.code == ETIMEDOUT || err.code == EPIPE
						       ? DE_CTL_REASON_CRASH
						       : DE_CTL_REASON_PROTOCOL);
		return;
	}
	ag->scan_now = true; /* reconcile what happened while there was none */
}

/* Handle one message (fds are closed by the caller unless taken). */
static void dispatch(struct agent *ag, struct de_ctl_msg *m)
{
	switch (m->type) {
	case DE_CTL_CONFIG:
		reload(ag, m);
		break;
	case DE_CTL_PROCMOND:
		on_procmond(ag, m);
		break;
	case DE_CTL_SUPERVISOR:
		ag->sup = m->sup;
		ag->have_sup = true;
		break;
	case DE_CTL_KEY_REPLY:
	case DE_CTL_SIGN_REPLY:
		/* only awaited inside a signing request; a late one is dropped */
		de_log_debug("control channel: a late %s", de_ctl_type_name(m->type));
		break;
	default:
		break;
	}
}

/* Receive one message: 0, -EAGAIN (nothing), or the channel is gone (ag->ctl < 0). */
static int receive(struct agent *ag, struct de_ctl_msg *m)
{
	struct de_error err = {0};
	int rc;

	if (ag->ctl < 0)
		return -EPIPE;
	rc = de_ctl_recv(ag->ctl, DE_CTL_TO_WORKER, m, &err);
	if (rc == -EAGAIN)
		return rc;
	if (rc == -EPIPE || rc == -ECONNRESET) {
		ctl_lost(ag, "the parent is gone");
		return rc;
	}
	if (rc == 0 && !de_ctl_allowed(m->type, ag->cstate)) {
		de_ctl_msg_close_fds(m);
		rc = de_error_set(&err, DE_ERR_VALIDATION, EBADMSG, "%s is not allowed now",
				  de_ctl_type_name(m->type));
	}
	if (rc < 0) {
		ctl_lost(ag, err.message);
		return rc;
	}
	return 0;
}

void agent_ctl_read(struct agent *ag)
{
	for (int i = 0; i < 64; i++) {
		struct de_ctl_msg m;
		if (receive(ag, &m) < 0)
			return;
		dispatch(ag, &m);
		de_ctl_msg_close_fds(&m);
	}
}

int agent_ctl_first_config(struct agent *ag, uint64_t timeout_ms, struct de_error *err)
{
	int64_t deadline = de_mono_ms() + (int64_t)timeout_ms;
	struct de_ctl_msg m;
	int rc;

	ag->cstate = DE_CTL_STARTING;
	for (;;) {
		struct pollfd p = {ag->ctl, POLLIN, 0};
		int64_t left = deadline - de_mono_ms();
		if (agent_stop)
			return de_error_set(err, DE_ERR_IO, EINTR, "stopped while starting");
		if (left <= 0)
			return de_error_set(err, DE_ERR_IO, ETIMEDOUT,
					    "no configuration from the parent");
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		rc = receive(ag, &m);
		if (rc == -EAGAIN)
			continue;
		if (rc < 0)
			return de_error_set(err, DE_ERR_IO, EPIPE,
					    "the control channel failed before the configuration "
					    "came");
		break;
	}
	/* STARTING allows CONFIG alone */
	rc = config_from(ag, &m, &ag->cfg, err);
	de_ctl_msg_close_fds(&m);
	if (rc < 0)
		return rc;
	ag->cstate = DE_CTL_RUNNING;
	ag->reload_ms = de_now_ms();
	return 0;
}

void agent_ctl_ready(struct agent *ag)
{
	struct de_ctl_msg m;
	struct passwd *pw = getpwuid(geteuid());

	de_log_info("worker running as user %s (uid %u)", pw ? pw->pw_name : "?",
		    (unsigned)geteuid());
	de_ctl_msg_init(&m, DE_CTL_READY);
	m.pid = (uint32_t)getpid();
	send_parent(ag, &m);
	ag->next_heartbeat = de_mono_ms() + HEARTBEAT_MS;
}

void agent_ctl_heartbeat(struct agent *ag)
{
	struct de_ctl_msg m;
	int n;

	de_ctl_msg_init(&m, DE_CTL_HEARTBEAT);
	m.scan_id = ag->last_scan_id;
	if (!ag->last_scan_ms)
		n = snprintf(m.text, sizeof(m.text), "starting: waiting for the first scan");
	else if (ag->last_scan_ok)
		n = snprintf(
			m.text, sizeof(m.text), "scan %lld: %zu processes; %zu rules; procmond %s",
			(long long)ag->last_scan_id, ag->last_processes, ag->det.rules.len,
			ag->pm.fd >= 0 ? (ag->pm.events ? "events on" : "polling") : "restarting");
	else
		n = snprintf(m.text, sizeof(m.text), "scan %lld failed (%u in a row): %s",
			     (long long)ag->last_scan_id, ag->scan_failures, ag->last_scan_error);
	m.text_len = n < 0 ? 0 : (size_t)n > DE_CTL_STATUS_MAX ? DE_CTL_STATUS_MAX : (size_t)n;
	m.text[m.text_len] = '\0';
	send_parent(ag, &m);
	ag->next_heartbeat = de_mono_ms() + HEARTBEAT_MS;
}

void agent_ctl_restart_procmond(struct agent *ag, enum de_ctl_reason why)
{
	struct de_ctl_msg m;

	/* the request before the close: procmond exits on EOF, and the parent
	   should know why before it sees that */
	de_ctl_msg_init(&m, DE_CTL_RESTART_PROCMOND);
	m.generation = ag->pm.gen;
	m.reason = why;
	send_parent(ag, &m);
	agent_procmond_close(&ag->pm);
}

/*
 * Send req and wait (SIGN_WAIT_MS at most) for a reply of type want (and,
 * for signatures, the same id), handling whatever else comes meanwhile.
 */
#define SIGN_WAIT_MS 5000

static int ask(struct agent *ag, const struct de_ctl_msg *req, enum de_ctl_type want,
	       struct de_ctl_msg *reply, struct de_error *err)
{
	int64_t deadline = de_mono_ms() + SIGN_WAIT_MS;

	send_parent(ag, req);
	while (ag->ctl >= 0) {
		struct pollfd p = {ag->ctl, POLLIN, 0};
		int64_t left = deadline - de_mono_ms();
		if (left <= 0)
			break;
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		while (receive(ag, reply) == 0) {
			if (reply->type == want &&
			    (want != DE_CTL_SIGN_REPLY || reply->id == req->id))
				return 0;
			dispatch(ag, reply);
			de_ctl_msg_close_fds(reply);
		}
	}
	return de_error_set(err, DE_ERR_CRYPTO, ETIMEDOUT,
			    "the privileged parent did not answer "
			    "a %s",
			    de_ctl_type_name(req->type));
}

int agent_ctl_public_key(struct agent *ag, uint8_t pub[DE_CTL_PUBKEY_LEN], struct de_error *err)
{
	struct de_ctl_msg req, r;
	int rc;

	de_ctl_msg_init(&req, DE_CTL_KEY_REQUEST);
	if ((rc = ask(ag, &req, DE_CTL_KEY_REPLY, &r, err)) < 0)
		return rc;
	if (!r.has_key)
		return de_error_set(err, DE_ERR_CRYPTO, -r.status,
				    "the privileged parent holds no checkpoint signing key "
				    "(audit.enable_signatures, audit.private_key_path)");
	memcpy(pub, r.key, DE_CTL_PUBKEY_LEN);
	return 0;
}

int agent_ctl_sign(struct agent *ag, const void *body, size_t len, uint8_t sig[DE_CTL_SIG_LEN],
		   struct de_error *err)
{
	static uint32_t next_id;
	struct de_ctl_msg req, r;
	int rc;

	if (len > DE_CTL_NOTE_BODY_MAX)
		return de_error_set(err, DE_ERR_CRYPTO, EMSGSIZE, "a checkpoint body of %zu bytes",
				    len);
	de_ctl_msg_init(&req, DE_CTL_SIGN_REQUEST);
	req.id = ++next_id;
	memcpy(req.text, body, len);
	req.text[len] = '\0';
	req.text_len = len;
	if ((rc = ask(ag, &req, DE_CTL_SIGN_REPLY, &r, err)) < 0)
		return rc;
	if (r.status < 0)
		return de_error_set(err, DE_ERR_CRYPTO, -r.status,
				    "the privileged parent refused to sign the checkpoint: %s",
				    strerror(-r.status));
	memcpy(sig, r.sig, DE_CTL_SIG_LEN);
	return 0;
}
