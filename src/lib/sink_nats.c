/*
 * sink_nats.c — alerts published to the fleet's NATS JetStream stream
 * (fleet.h, docs/fleet.md) on <prefix>.<host-id>.alerts.
 *
 * The connection, the TLS and credentials, the host id and the subject
 * come from the fleet.* settings; the sink has no keys of its own beyond
 * the common ones.  Each attempt is one JetStream publish that waits for
 * the stream's acknowledgement, with the alert id as Nats-Msg-Id: a
 * re-send (an agent killed between the ack and recording the delivery, a
 * lost ack) falls inside the stream's duplicate window and is stored once.
 * While the cluster is unreachable attempts fail at once as transient, so
 * the outbox keeps the alerts, retries with backoff and its circuit
 * breaker, and delivers them in order when the cluster is back.
 *
 * What the alert manager's queue holds at once goes through deliver_batch:
 * every alert published without waiting (de_fleet_publish_many, at most
 * fleet.publish_max_pending in flight), then each one's outcome from its
 * own ack, so an alert is recorded delivered only when the stream
 * acknowledged it, and one whose ack failed or never came is retried by
 * the outbox like any transient failure.
 *
 * Outcomes: acknowledged (or acknowledged as a duplicate) delivered; a
 * message larger than the stream accepts permanent; everything else
 * (not connected, timeout, no stream yet, permissions an operator may
 * fix) transient.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/fleet.h"
#include "daemoneye/sink.h"

struct nats_sink {
	struct de_fleet_settings set;
	struct de_fleet *f;
	char subject[DE_FLEET_SUBJECT_MAX];
};

static const char *const keys[] = {NULL};

static void ns_free(struct nats_sink *s)
{
	if (!s)
		return;
	de_fleet_close(s->f);
	de_fleet_settings_clear(&s->set);
	free(s);
}

static int ns_configure(struct de_sink_conf *c, void **state)
{
	struct nats_sink *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return de_error_set(c->err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
	if (!c->config) {
		rc = de_sink_conf_fail(c, NULL, "needs the fleet settings");
		goto fail;
	}
	if ((rc = de_fleet_settings_load(c->config, NULL, true, &s->set, c->err)) < 0) {
		de_error_prefix(c->err, "sink '%s' (%s): ", c->name, c->path);
		goto fail;
	}
	if (!s->set.nservers) {
		rc = de_sink_conf_fail(c, NULL, "a nats sink needs fleet.servers");
		goto fail;
	}
	if (de_fleet_subject(s->set.subject_prefix, s->set.host_id, DE_FLEET_ALERTS, s->subject,
			     sizeof(s->subject)) < 0) {
		rc = de_sink_conf_fail(c, NULL, "bad fleet.subject_prefix or fleet.host_id");
		goto fail;
	}
	*state = s;
	return 0;
fail:
	ns_free(s);
	return rc;
}

static int ns_open(void *state, struct de_error *err)
{
	struct nats_sink *s = state;

	/* an unreachable cluster is not an error: attempts wait in the outbox */
	return de_fleet_connect(&s->set, false, &s->f, err);
}

static void ns_deliver(void *state, const struct de_sink_msg *m, struct de_sink_result *r)
{
	struct nats_sink *s = state;
	struct de_error err = {0};

	if (de_fleet_publish(s->f, DE_FLEET_ALERTS, m->alert_id, m->payload, m->len, m->timeout_ms,
			     NULL, &err) == 0) {
		r->outcome = DE_SINK_OK;
		return;
	}
	de_sink_fail(r, err.code == EINVAL ? DE_SINK_PERMANENT : DE_SINK_TRANSIENT, "%s: %s",
		     s->subject, err.message);
}

static void ns_deliver_batch(void *state, const struct de_sink_msg *msgs, size_t n,
			     struct de_sink_result *results)
{
	struct nats_sink *s = state;
	struct de_error err = {0};
	struct de_fleet_pub *p = calloc(n, sizeof(*p));
	int rc;

	if (!p) {
		for (size_t i = 0; i < n; i++)
			de_sink_fail(&results[i], DE_SINK_TRANSIENT, "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++)
		p[i] = (struct de_fleet_pub){
			.msg_id = msgs[i].alert_id, .data = msgs[i].payload, .len = msgs[i].len};
	rc = de_fleet_publish_many(s->f, DE_FLEET_ALERTS, p, n, n ? msgs[0].timeout_ms : 0, &err);
	for (size_t i = 0; i < n; i++) {
		if (p[i].rc == 0)
			results[i].outcome = DE_SINK_OK;
		else
			de_sink_fail(&results[i],
				     p[i].rc == -EINVAL ? DE_SINK_PERMANENT : DE_SINK_TRANSIENT,
				     "%s: %s", s->subject, rc < 0 ? err.message : p[i].error);
	}
	free(p);
}

static bool ns_health(void *state, char *buf, size_t n)
{
	struct nats_sink *s = state;
	bool up = de_fleet_connected(s->f);

	snprintf(buf, n, "JetStream %s on %s via %s%s: %s", s->set.stream, s->subject,
		 s->set.servers[0], s->set.nservers > 1 ? " and others" : "",
		 up ? "connected" : "not connected");
	return up;
}

static void ns_close(void *state)
{
	ns_free(state);
}

const struct de_sink_ops de_sink_nats_ops = {
	.type = "nats",
	.keys = keys,
	.default_format = DE_FMT_JSON,
	.configure = ns_configure,
	.open = ns_open,
	.deliver = ns_deliver,
	.deliver_batch = ns_deliver_batch,
	.health = ns_health,
	.reopen = NULL,
	.close = ns_close,
};
