/*
 * fleet_nats.c — the fleet's connection to NATS JetStream through libnats
 * (fleet.h): connecting with TLS and credentials, making sure the stream
 * exists, publishing with a message id and waiting for the stream's
 * acknowledgement, and reading a host's messages back in order.
 *
 * The connection reconnects by itself for ever (libnats's reconnect loop);
 * a publish while it is down fails at once with EAGAIN instead of being
 * buffered by libnats, so that what waits, waits in our outbox or spool,
 * where it survives a restart.
 */
#include "daemoneye/fleet.h"
#include "daemoneye/clock.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

struct de_fleet {
	natsConnection *nc;
	jsCtx *js;
	struct de_fleet_settings s; /* a copy without its owned strings */
	bool ensured;		    /* the stream was ensured on this connection */
	/* pipelined publishing (de_fleet_publish_many): a second context whose
	 * acknowledgements libnats hands to on_ack on its own thread; mu guards
	 * what on_ack touches */
	jsCtx *ajs;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct de_fleet_pub *batch; /* the call in progress (NULL: none) */
	natsMsg **sent;		    /* batch[i]'s message while it awaits its ack */
	size_t nbatch, hint;	    /* hint: where the next ack is looked for first */
	size_t outstanding;	    /* messages whose ack or error has not been seen */
	bool lost_stream;	    /* an ack said no stream answered */
};

/* libnats's last error text for st (without its "(file.c:line): " origin), or its status name. */
static const char *nats_text(natsStatus st)
{
	natsStatus last = NATS_OK;
	const char *t = nats_GetLastError(&last), *p;

	if (!t || !*t || last != st)
		return natsStatus_GetText(st);
	if (t[0] == '(' && (p = strstr(t, "): ")) != NULL)
		t = p + 3;
	return t;
}

/* errno-style code of a libnats status: EAGAIN when a retry may succeed. */
static int nats_code(natsStatus st)
{
	switch (st) {
	case NATS_CONNECTION_AUTH_FAILED:
	case NATS_NOT_PERMITTED:
		return EACCES;
	case NATS_SECURE_CONNECTION_REQUIRED:
	case NATS_SSL_ERROR:
		return EPROTO;
	case NATS_INVALID_ARG:
	case NATS_INVALID_SUBJECT:
	case NATS_MAX_PAYLOAD:
		return EINVAL;
	case NATS_NO_MEMORY:
		return ENOMEM;
	default:
		return EAGAIN;
	}
}

static int nats_fail(struct de_error *err, natsStatus st, const char *what)
{
	const char *hint = "";

	if (st == NATS_SECURE_CONNECTION_REQUIRED)
		hint = " (the server requires TLS: use tls:// servers and fleet.tls.ca_file)";
	else if (st == NATS_SSL_ERROR)
		hint = " (check fleet.tls.ca_file, cert_file and key_file against the server's)";
	else if (st == NATS_CONNECTION_AUTH_FAILED)
		hint = " (check fleet.credentials_file)";
	else if (st == NATS_NO_SERVER || st == NATS_NOT_YET_CONNECTED)
		hint = " (no server in fleet.servers answered)";
	return de_error_set(err, DE_ERR_ALERTING, nats_code(st), "%s: %s%s", what, nats_text(st),
			    hint);
}

const struct de_fleet_settings *de_fleet_settings(const struct de_fleet *f)
{
	return &f->s;
}

bool de_fleet_connected(struct de_fleet *f)
{
	return f && f->nc && natsConnection_Status(f->nc) == NATS_CONN_STATUS_CONNECTED;
}

/* Connected once (not called when connect returns at once). */
static void on_connected(natsConnection *nc, void *arg)
{
	(void)nc;
	(void)arg;
}

static natsStatus make_options(const struct de_fleet_settings *s, bool wait, natsOptions **out)
{
	natsOptions *o = NULL;
	char name[128];
	natsStatus st;

	snprintf(name, sizeof(name), "daemoneye %s", s->host_id);
	if ((st = natsOptions_Create(&o)) != NATS_OK)
		return st;
	st = natsOptions_SetServers(o, (const char **)s->servers, (int)s->nservers);
	if (st == NATS_OK)
		st = natsOptions_SetName(o, name);
	if (st == NATS_OK)
		st = natsOptions_SetTimeout(o, (int64_t)s->connect_timeout_ms);
	if (st == NATS_OK)
		st = natsOptions_SetMaxReconnect(o, -1);
	if (st == NATS_OK)
		st = natsOptions_SetReconnectWait(o, 500);
	if (st == NATS_OK && !wait)
		st = natsOptions_SetRetryOnFailedConnect(o, true, on_connected, NULL);
	if (st == NATS_OK && (s->ca_file || s->cert_file))
		st = natsOptions_SetSecure(o, true);
	if (st == NATS_OK && s->ca_file)
		st = natsOptions_LoadCATrustedCertificates(o, s->ca_file);
	if (st == NATS_OK && s->cert_file)
		st = natsOptions_LoadCertificatesChain(o, s->cert_file, s->key_file);
	if (st == NATS_OK && s->credentials_file)
		st = natsOptions_SetUserCredentialsFromFiles(o, s->credentials_file, NULL);
	if (st != NATS_OK) {
		natsOptions_Destroy(o);
		return st;
	}
	*out = o;
	return NATS_OK;
}

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure);

int de_fleet_connect(const struct de_fleet_settings *s, bool wait, struct de_fleet **out,
		     struct de_error *err)
{
	struct de_fleet *f;
	natsOptions *o = NULL;
	jsOptions jo;
	natsStatus st;
	int rc;

	if (!s->nservers)
		return de_error_set(err, DE_ERR_CONFIGURATION, EINVAL,
				    "fleet.servers: no server is listed");
	if (!(f = calloc(1, sizeof(*f))))
		return de_error_set(err, DE_ERR_ALERTING, ENOMEM, "out of memory");
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	f->s = *s;
	f->s.servers = NULL;
	f->s.nservers = 0;
	f->s.ca_file = f->s.cert_file = f->s.key_file = NULL;
	f->s.credentials_file = f->s.operator_public_key = NULL;
	if ((st = make_options(s, wait, &o)) != NATS_OK) {
		/* the files were checked readable at load: this is their content */
		rc = de_error_set(err, DE_ERR_CONFIGURATION, EINVAL,
				  "fleet TLS or credentials: %s (fleet.tls.*, "
				  "fleet.credentials_file)",
				  nats_text(st));
		goto fail;
	}
	st = natsConnection_Connect(&f->nc, o);
	natsOptions_Destroy(o);
	if (st != NATS_OK && !(st == NATS_NOT_YET_CONNECTED && !wait)) {
		rc = nats_fail(err, st, "cannot connect to the fleet's NATS servers");
		goto fail;
	}
	if ((st = natsConnection_JetStream(&f->js, f->nc, NULL)) != NATS_OK) {
		rc = nats_fail(err, st, "cannot start JetStream");
		goto fail;
	}
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = (int64_t)(s->publish_max_pending ? s->publish_max_pending : 1);
	jo.PublishAsync.AckHandler = on_ack;
	jo.PublishAsync.AckHandlerClosure = f;
	jo.PublishAsync.StallWait = (int64_t)s->publish_timeout_ms;
	if ((st = natsConnection_JetStream(&f->ajs, f->nc, &jo)) != NATS_OK) {
		rc = nats_fail(err, st, "cannot start JetStream");
		goto fail;
	}
	*out = f;
	return 0;
fail:
	de_fleet_close(f);
	return rc;
}

void de_fleet_close(struct de_fleet *f)
{
	if (!f)
		return;
	jsCtx_Destroy(f->ajs);
	jsCtx_Destroy(f->js);
	if (f->nc)
		natsConnection_Close(f->nc);
	natsConnection_Destroy(f->nc);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

static void info_fill(struct de_fleet_stream_info *info, const jsStreamInfo *si, bool created)
{
	if (!info)
		return;
	memset(info, 0, sizeof(*info));
	snprintf(info->name, sizeof(info->name), "%s", si->Config->Name);
	info->created = created;
	info->messages = si->State.Msgs;
	info->bytes = si->State.Bytes;
	info->first_seq = si->State.FirstSeq;
	info->last_seq = si->State.LastSeq;
	info->replicas = si->Config->Replicas;
	info->max_age_s = si->Config->MaxAge / 1000000000;
	info->duplicate_window_s = si->Config->Duplicates / 1000000000;
}

/* de_fleet_stream_ensure, each request waiting wait_ms at most (0: the
   JetStream context's own wait, 5 s) */
static int stream_ensure(struct de_fleet *f, bool create, struct de_fleet_stream_info *info,
			 int64_t wait_ms, struct de_error *err)
{
	jsOptions jo;
	jsOptions *o = NULL;
	char subj[DE_FLEET_KIND_MAX][DE_FLEET_SUBJECT_MAX];
	const char *subjects[DE_FLEET_KIND_MAX];
	jsStreamInfo *si = NULL;
	jsStreamConfig c;
	jsErrCode jerr = 0;
	natsStatus st;

	if (!de_fleet_connected(f))
		return de_error_set(err, DE_ERR_ALERTING, EAGAIN,
				    "not connected to the fleet's NATS servers");
	if (wait_ms > 0) {
		jsOptions_Init(&jo);
		jo.Wait = wait_ms;
		o = &jo;
	}
	st = js_GetStreamInfo(&si, f->js, f->s.stream, o, &jerr);
	if (st == NATS_OK) {
		info_fill(info, si, false);
		jsStreamInfo_Destroy(si);
		f->ensured = true;
		return 0;
	}
	if (st != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr)
		return nats_fail(err, st, "cannot read the fleet stream");
	if (!create)
		return de_error_set(err, DE_ERR_ALERTING, ENOENT,
				    "the stream %s does not exist (daemoneye-cli fleet init "
				    "makes it)",
				    f->s.stream);
	/* one subject per kind, any host: never <prefix>.> (queries and replies
	   on other subjects must not be stored) */
	for (int k = 0; k < DE_FLEET_KIND_MAX; k++) {
		snprintf(subj[k], sizeof(subj[k]), "%s.*.%s", f->s.subject_prefix,
			 de_fleet_kind_name((enum de_fleet_kind)k));
		subjects[k] = subj[k];
	}
	jsStreamConfig_Init(&c);
	c.Name = f->s.stream;
	c.Description = "daemoneye fleet: alerts, process events, scans, audit checkpoints";
	c.Subjects = subjects;
	c.SubjectsLen = DE_FLEET_KIND_MAX;
	c.Storage = js_FileStorage;
	c.Retention = js_LimitsPolicy;
	c.Discard = js_DiscardOld;
	c.Replicas = (int64_t)f->s.stream_replicas;
	c.MaxAge = (int64_t)f->s.stream_max_age_days * 86400 * 1000000000;
	c.MaxBytes = f->s.stream_max_bytes_mb ? (int64_t)f->s.stream_max_bytes_mb << 20 : -1;
	c.MaxMsgSize = DE_FLEET_MSG_MAX;
	c.Duplicates = (int64_t)f->s.duplicate_window_s * 1000000000;
	c.DenyDelete = true; /* what was published is evidence */
	jerr = 0;
	if ((st = js_AddStream(&si, f->js, &c, o, &jerr)) != NATS_OK)
		return nats_fail(err, st, "cannot create the fleet stream");
	info_fill(info, si, true);
	jsStreamInfo_Destroy(si);
	f->ensured = true;
	return 0;
}

int de_fleet_stream_ensure(struct de_fleet *f, bool create, struct de_fleet_stream_info *info,
			   struct de_error *err)
{
	return stream_ensure(f, create, info, 0, err);
}

/*
 * Before publishing kind k: its subject for this host into subject
 * (DE_FLEET_SUBJECT_MAX bytes), connected, the stream ensured once per
 * connection when create_stream is set, within the publish's own wait_ms
 * (a server that stopped answering must not hold a flush, or the worker's
 * stop, for the context's 5 s).  0, or errors as de_fleet_publish.
 */
static int publish_prepare(struct de_fleet *f, enum de_fleet_kind k, char *subject, int64_t wait_ms,
			   struct de_error *err)
{
	if (de_fleet_subject(f->s.subject_prefix, f->s.host_id, k, subject, DE_FLEET_SUBJECT_MAX) <
	    0)
		return de_error_set(err, DE_ERR_ALERTING, EINVAL, "bad fleet subject");
	if (!de_fleet_connected(f))
		return de_error_set(err, DE_ERR_ALERTING, EAGAIN,
				    "not connected to the fleet's NATS servers");
	if (!f->ensured && f->s.create_stream)
		return stream_ensure(f, true, NULL, wait_ms, err);
	return 0;
}

int de_fleet_publish(struct de_fleet *f, enum de_fleet_kind k, const char *msg_id, const void *data,
		     size_t len, uint64_t timeout_ms, bool *duplicate, struct de_error *err)
{
	char subject[DE_FLEET_SUBJECT_MAX];
	jsPubOptions po;
	jsPubAck *ack = NULL;
	jsErrCode jerr = 0;
	natsMsg *m = NULL;
	natsStatus st;
	int rc;

	if (len > DE_FLEET_MSG_MAX)
		return de_error_set(err, DE_ERR_ALERTING, EINVAL,
				    "a %s message of %zu bytes is larger than %d",
				    de_fleet_kind_name(k), len, DE_FLEET_MSG_MAX);
	if ((rc = publish_prepare(f, k, subject,
				  (int64_t)(timeout_ms ? timeout_ms : f->s.publish_timeout_ms),
				  err)) < 0)
		return rc;
	if ((st = natsMsg_Create(&m, subject, NULL, data, (int)len)) != NATS_OK)
		return nats_fail(err, st, "cannot make a message");
	jsPubOptions_Init(&po);
	po.MsgId = msg_id;
	po.MaxWait = (int64_t)(timeout_ms ? timeout_ms : f->s.publish_timeout_ms);
	po.ExpectStream = f->s.stream;
	st = js_PublishMsg(&ack, f->js, m, &po, &jerr);
	natsMsg_Destroy(m);
	if (st != NATS_OK) {
		if (st == NATS_NO_RESPONDERS)
			f->ensured = false; /* the stream may be gone: ensure it again */
		return nats_fail(err, st, "publish to the fleet stream");
	}
	if (duplicate)
		*duplicate = ack->Duplicate;
	jsPubAck_Destroy(ack);
	return 0;
}

/* ---- pipelined publishing ------------------------------------------------------ */

/* The index in f->batch of the message m awaiting its ack, or f->nbatch (f->mu held). */
static size_t batch_find(struct de_fleet *f, const natsMsg *m)
{
	/* acks come back in the order of the publishes, nearly always */
	for (size_t k = 0; k < f->nbatch; k++) {
		size_t i = (f->hint + k) % f->nbatch;
		if (f->sent[i] == m) {
			f->hint = i + 1;
			return i;
		}
	}
	return f->nbatch;
}

/* errno-style code of a negative acknowledgement: -EINVAL when a re-send cannot help. */
static int nak_code(const jsPubAckErr *pae)
{
	if (pae->ErrCode == JSStreamMessageExceedsMaximumErr || pae->Err == NATS_MAX_PAYLOAD)
		return -EINVAL;
	return -EAGAIN;
}

/* libnats's thread: msg's ack (pa) or why there is none (pae). */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct de_fleet *f = closure;
	size_t i;

	(void)js;
	pthread_mutex_lock(&f->mu);
	if (f->batch && (i = batch_find(f, msg)) < f->nbatch) {
		struct de_fleet_pub *p = &f->batch[i];
		if (pa) {
			p->rc = 0;
			p->duplicate = pa->Duplicate;
			p->error[0] = '\0';
		} else {
			p->rc = pae ? nak_code(pae) : -EAGAIN;
			snprintf(p->error, sizeof(p->error), "not stored: %s",
				 pae && pae->ErrText && *pae->ErrText
					 ? pae->ErrText
					 : natsStatus_GetText(pae ? pae->Err : NATS_ERR));
			if (pae && pae->Err == NATS_NO_RESPONDERS)
				f->lost_stream = true;
		}
		f->sent[i] = NULL;
		if (--f->outstanding == 0)
			pthread_cond_broadcast(&f->cv);
	}
	pthread_mutex_unlock(&f->mu);
	natsMsg_Destroy(msg);
}

/* Take back what still awaits its ack after the wait: those stay -EAGAIN. */
static void batch_reclaim(struct de_fleet *f)
{
	natsMsgList pending = {0};

	if (js_PublishAsyncGetPendingList(&pending, f->ajs) != NATS_OK)
		return;
	pthread_mutex_lock(&f->mu);
	for (int j = 0; j < pending.Count; j++) {
		size_t i = batch_find(f, pending.Msgs[j]);
		if (i < f->nbatch) {
			f->sent[i] = NULL;
			f->outstanding--;
		}
	}
	pthread_mutex_unlock(&f->mu);
	natsMsgList_Destroy(&pending);
}

int de_fleet_publish_many(struct de_fleet *f, enum de_fleet_kind k, struct de_fleet_pub *msgs,
			  size_t n, uint64_t timeout_ms, struct de_error *err)
{
	char subject[DE_FLEET_SUBJECT_MAX];
	int64_t wait = (int64_t)(timeout_ms ? timeout_ms : f->s.publish_timeout_ms);
	natsMsg **sent;
	jsPubOptions po;
	size_t acked = 0, i;
	natsStatus st = NATS_OK;
	int rc;

	for (i = 0; i < n; i++) {
		msgs[i].rc = -EAGAIN;
		msgs[i].duplicate = false;
		snprintf(msgs[i].error, sizeof(msgs[i].error),
			 "no acknowledgement within %" PRId64 " ms", wait);
	}
	if (!n)
		return 0;
	if ((rc = publish_prepare(f, k, subject, wait, err)) < 0)
		return rc;
	if (!(sent = calloc(n, sizeof(natsMsg *))))
		return de_error_set(err, DE_ERR_ALERTING, ENOMEM, "out of memory");
	pthread_mutex_lock(&f->mu);
	f->batch = msgs;
	f->sent = sent;
	f->nbatch = n;
	f->hint = 0;
	f->outstanding = 0;
	f->lost_stream = false;
	pthread_mutex_unlock(&f->mu);

	for (i = 0; i < n && st == NATS_OK; i++) {
		natsMsg *m = NULL;
		if (msgs[i].len > DE_FLEET_MSG_MAX) {
			msgs[i].rc = -EINVAL;
			snprintf(msgs[i].error, sizeof(msgs[i].error),
				 "a message of %zu bytes is larger than %d", msgs[i].len,
				 DE_FLEET_MSG_MAX);
			continue;
		}
		if ((st = natsMsg_Create(&m, subject, NULL, msgs[i].data, (int)msgs[i].len)) !=
		    NATS_OK)
			break;
		jsPubOptions_Init(&po);
		po.MsgId = msgs[i].msg_id;
		po.ExpectStream = f->s.stream;
		po.MaxWait = wait; /* libnats reports a timeout through on_ack */
		/* registered before it is sent: its ack may come before the call returns */
		pthread_mutex_lock(&f->mu);
		sent[i] = m;
		f->outstanding++;
		pthread_mutex_unlock(&f->mu);
		if ((st = js_PublishMsgAsync(f->ajs, &m, &po)) != NATS_OK) {
			/* not sent, and on_ack will not be called for it: still ours */
			pthread_mutex_lock(&f->mu);
			sent[i] = NULL;
			f->outstanding--;
			pthread_mutex_unlock(&f->mu);
			snprintf(msgs[i].error, sizeof(msgs[i].error), "not sent: %s",
				 nats_text(st));
			natsMsg_Destroy(m);
		}
	}
	/* what was not sent keeps -EAGAIN and says why */
	for (size_t j = i; j < n; j++)
		snprintf(msgs[j].error, sizeof(msgs[j].error), "not sent: %s",
			 natsStatus_GetText(st));

	jsPubOptions_Init(&po);
	po.MaxWait = wait + 1000; /* the per-message timeouts fire first */
	if (js_PublishAsyncComplete(f->ajs, &po) == NATS_TIMEOUT)
		batch_reclaim(f);
	pthread_mutex_lock(&f->mu);
	/* acks being handled right now finish before the batch goes away */
	while (f->outstanding > 0)
		pthread_cond_wait(&f->cv, &f->mu);
	f->batch = NULL;
	f->sent = NULL;
	f->nbatch = 0;
	if (f->lost_stream)
		f->ensured = false; /* the stream may be gone: ensure it again */
	pthread_mutex_unlock(&f->mu);
	free(sent);

	for (i = 0; i < n; i++)
		if (msgs[i].rc == 0)
			acked++;
	if (acked < n) {
		for (i = 0; i < n && msgs[i].rc == 0; i++)
			;
		de_error_set(err, DE_ERR_ALERTING, -msgs[i].rc,
			     "%zu of %zu %s messages not stored; first: %s", n - acked, n,
			     de_fleet_kind_name(k), msgs[i].error);
	}
	return (int)acked;
}

/* Whether the reader asked to stop. */
static bool stopped(const struct de_fleet_read_opts *o)
{
	return o && o->stop && *o->stop;
}

/* Read the stored messages of filter under policy (see de_fleet_read_ex). */
static int read_stream(struct de_fleet *f, const char *filter, jsDeliverPolicy policy, uint64_t max,
		       const struct de_fleet_read_opts *o, de_fleet_msg_fn fn, void *arg,
		       size_t *skipped, struct de_error *err)
{
	natsSubscription *sub = NULL;
	jsStreamInfo *si = NULL;
	jsSubOptions so;
	jsErrCode jerr = 0;
	natsStatus st;
	uint64_t n = 0, last;
	size_t skip = 0;
	bool follow = o && o->follow, durable = o && o->durable;
	int rc = 0;

	/* where the stream ends now: reading stops there (unless following) */
	if ((st = js_GetStreamInfo(&si, f->js, f->s.stream, NULL, &jerr)) != NATS_OK)
		return st == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr
			       ? de_error_set(err, DE_ERR_ALERTING, ENOENT,
					      "the stream %s does not exist", f->s.stream)
			       : nats_fail(err, st, "cannot read the fleet stream");
	last = si->State.LastSeq;
	jsStreamInfo_Destroy(si);
	if (last == 0 && !follow)
		goto out;
	jsSubOptions_Init(&so);
	so.Stream = f->s.stream;
	so.Config.DeliverPolicy = policy;
	if (o && o->since_ms > 0 && policy == js_DeliverAll) {
		so.Config.DeliverPolicy = js_DeliverByStartTime;
		so.Config.OptStartTime = o->since_ms * 1000000;
	}
	if (durable) {
		/* the server keeps where it stopped: each message is acked once handled */
		so.Config.Durable = o->durable;
		so.Config.AckPolicy = js_AckExplicit;
		so.ManualAck = true;
	} else {
		so.Ordered = true;
	}
	if ((st = js_SubscribeSync(&sub, f->js, filter, NULL, &so, &jerr)) != NATS_OK)
		return nats_fail(err, st, "cannot read the fleet stream");
	while (!max || n < max) {
		natsMsg *m = NULL;
		jsMsgMetaData *meta = NULL;
		const char *id = NULL;
		st = natsSubscription_NextMsg(&m, sub,
					      follow ? 250 : (int64_t)f->s.publish_timeout_ms);
		if (stopped(o)) {
			natsMsg_Destroy(m);
			break;
		}
		if (st == NATS_TIMEOUT && follow)
			continue; /* nothing new yet */
		if (st == NATS_TIMEOUT)
			break; /* nothing more for this filter */
		if (st != NATS_OK) {
			rc = nats_fail(err, st, "reading the fleet stream");
			break;
		}
		if (natsMsg_GetMetaData(&meta, m) != NATS_OK) {
			natsMsg_Destroy(m);
			continue; /* a control message */
		}
		struct de_fleet_msg fm = {
			.subject = natsMsg_GetSubject(m),
			.data = natsMsg_GetData(m),
			.len = (size_t)natsMsg_GetDataLength(m),
			.seq = meta->Sequence.Stream,
			.time_ns = meta->Timestamp,
		};
		uint64_t pending = meta->NumPending;
		jsMsgMetaData_Destroy(meta);
		if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) == NATS_OK)
			fm.msg_id = id;
		if (fm.len > DE_FLEET_MSG_MAX)
			skip++;
		else if ((rc = fn(&fm, arg)) != 0) {
			natsMsg_Destroy(m);
			break;
		}
		if (durable)
			(void)natsMsg_Ack(m, NULL);
		natsMsg_Destroy(m);
		n++;
		if (!follow && (pending == 0 || fm.seq >= last))
			break;
	}
	/* a durable consumer stays on the server for the next read */
	if (!durable)
		natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
out:
	if (skipped)
		*skipped = skip;
	return rc;
}

int de_fleet_read(struct de_fleet *f, const char *host, enum de_fleet_kind k, uint64_t max,
		  de_fleet_msg_fn fn, void *arg, size_t *skipped, struct de_error *err)
{
	return de_fleet_read_ex(f, host, k, max, NULL, fn, arg, skipped, err);
}

int de_fleet_read_ex(struct de_fleet *f, const char *host, enum de_fleet_kind k, uint64_t max,
		     const struct de_fleet_read_opts *o, de_fleet_msg_fn fn, void *arg,
		     size_t *skipped, struct de_error *err)
{
	char filter[DE_FLEET_SUBJECT_MAX];

	if (host ? de_fleet_subject(f->s.subject_prefix, host, k, filter, sizeof(filter)) < 0
		 : snprintf(filter, sizeof(filter), "%s.*.%s", f->s.subject_prefix,
			    de_fleet_kind_name(k)) >= (int)sizeof(filter))
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL, "'%s' is not a host id",
				    host ? host : "");
	if (o && o->durable && !de_fleet_token_valid(o->durable))
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "'%s' is not a consumer name (1-64 of A-Z a-z 0-9 _ -)",
				    o->durable);
	return read_stream(f, filter, js_DeliverAll, max, o, fn, arg, skipped, err);
}

int de_fleet_read_latest(struct de_fleet *f, enum de_fleet_kind k, de_fleet_msg_fn fn, void *arg,
			 struct de_error *err)
{
	char filter[DE_FLEET_SUBJECT_MAX];

	if (snprintf(filter, sizeof(filter), "%s.*.%s", f->s.subject_prefix,
		     de_fleet_kind_name(k)) >= (int)sizeof(filter))
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL, "subject prefix too long");
	return read_stream(f, filter, js_DeliverLastPerSubject, 0, NULL, fn, arg, NULL, err);
}

/* ---- the key-value bucket of rule bundles --------------------------------------- */

/*
 * A NUL-terminated copy of src[0..n) into *data (the caller frees) and
 * *len: 0, or a ValidationError `code` (E2BIG, EMSGSIZE) when n > max.
 */
static int copy_capped(const void *src, size_t n, size_t max, int code, char **data, size_t *len,
		       struct de_error *err)
{
	char *copy;

	if (n > max)
		return de_error_set(err, DE_ERR_VALIDATION, code,
				    "a message of %zu bytes dropped (at most %zu)", n, max);
	if (!(copy = malloc(n + 1)))
		return de_error_set(err, DE_ERR_ALERTING, ENOMEM, "out of memory");
	memcpy(copy, src, n);
	copy[n] = '\0';
	*data = copy;
	*len = n;
	return 0;
}

int de_fleet_kv_put(struct de_fleet *f, const char *bucket, const char *key, const void *data,
		    size_t len, uint64_t *revision, struct de_error *err)
{
	kvStore *kv = NULL;
	kvConfig c;
	natsStatus st;
	uint64_t rev = 0;

	if (len > DE_FLEET_MSG_MAX)
		return de_error_set(err, DE_ERR_ALERTING, EINVAL,
				    "a value of %zu bytes is too large", len);
	if (!de_fleet_connected(f))
		return de_error_set(err, DE_ERR_ALERTING, EAGAIN,
				    "not connected to the fleet's NATS servers");
	if ((st = js_KeyValue(&kv, f->js, bucket)) == NATS_NOT_FOUND) {
		kvConfig_Init(&c);
		c.Bucket = bucket;
		c.Description = "daemoneye fleet: signed rule bundles";
		c.History = 5;
		c.Replicas = (int)f->s.stream_replicas;
		c.MaxValueSize = DE_FLEET_MSG_MAX;
		c.StorageType = js_FileStorage;
		st = js_CreateKeyValue(&kv, f->js, &c);
	}
	if (st != NATS_OK)
		return nats_fail(err, st, "cannot open the key-value bucket");
	st = kvStore_Put(&rev, kv, key, data, (int)len);
	kvStore_Destroy(kv);
	if (st != NATS_OK)
		return nats_fail(err, st, "cannot store in the key-value bucket");
	if (revision)
		*revision = rev;
	return 0;
}

int de_fleet_kv_get(struct de_fleet *f, const char *bucket, const char *key, size_t max,
		    char **data, size_t *len, uint64_t *revision, struct de_error *err)
{
	kvStore *kv = NULL;
	kvEntry *e = NULL;
	natsStatus st;
	int rc;

	if (!de_fleet_connected(f))
		return de_error_set(err, DE_ERR_ALERTING, EAGAIN,
				    "not connected to the fleet's NATS servers");
	if ((st = js_KeyValue(&kv, f->js, bucket)) == NATS_NOT_FOUND)
		return 0;
	if (st != NATS_OK)
		return nats_fail(err, st, "cannot open the key-value bucket");
	st = kvStore_Get(&e, kv, key);
	kvStore_Destroy(kv);
	if (st == NATS_NOT_FOUND)
		return 0;
	if (st != NATS_OK)
		return nats_fail(err, st, "cannot read the key-value bucket");
	*revision = kvEntry_Revision(e);
	rc = copy_capped(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), max, E2BIG, data, len, err);
	kvEntry_Destroy(e);
	return rc < 0 ? rc : 1;
}

/* ---- core NATS: queries and answers ------------------------------------------- */

/*
 * A subscription's messages arrive on libnats's thread (on_msg) and wait in
 * a bounded ring for de_fleet_sub_next; the eventfd is readable exactly
 * while the ring holds one (both changed under mu), so a caller's poll
 * wakes when a query comes instead of at its next timer.  A ring that is
 * full drops the newest message and counts it (a flood on the bus must not
 * grow the agent's memory).
 */
#define SUB_RING 256

struct de_fleet_sub {
	natsSubscription *sub;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* signalled when a message is queued (CLOCK_MONOTONIC) */
	natsMsg *ring[SUB_RING];
	size_t head, n;
	uint64_t dropped;
	int wake;    /* eventfd: readable while n > 0 */
	bool closed; /* libnats will call on_msg no more (on_complete ran) */
};

/* Under s->mu: make the eventfd say whether messages wait. */
static void sub_signal(struct de_fleet_sub *s)
{
	uint64_t v = 1;

	if (s->n) {
		if (write(s->wake, &v, sizeof(v)) < 0) { /* EAGAIN: already readable */
		}
	} else if (read(s->wake, &v, sizeof(v)) < 0) { /* EAGAIN: already clear */
	}
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
	struct de_fleet_sub *s = closure;

	(void)nc;
	(void)sub;
	pthread_mutex_lock(&s->mu);
	if (s->n == SUB_RING) {
		s->dropped++;
		pthread_mutex_unlock(&s->mu);
		natsMsg_Destroy(m);
		return;
	}
	s->ring[(s->head + s->n++) % SUB_RING] = m;
	sub_signal(s);
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* libnats's last word on a subscription: on_msg has returned for good. */
static void on_complete(void *closure)
{
	struct de_fleet_sub *s = closure;

	pthread_mutex_lock(&s->mu);
	s->closed = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* How long de_fleet_sub_free waits for libnats's delivery thread to let go. */
#define SUB_CLOSE_WAIT_MS 1000

void de_fleet_sub_free(struct de_fleet_sub *s)
{
	if (!s)
		return;
	if (s->sub) {
		/*
		 * Unsubscribe, not drain: a drain waits for the server's answer,
		 * up to its timeout per subscription when the server is away or
		 * stopped, and that made SIGTERM take over 3 s.  Closing is
		 * local: on_complete runs on libnats's delivery thread once
		 * on_msg has returned for the last time, and only then may s go.
		 */
		struct timespec until;
		bool closed;

		natsSubscription_Unsubscribe(s->sub);
		de_cond_deadline(&until, SUB_CLOSE_WAIT_MS);
		pthread_mutex_lock(&s->mu);
		while (!s->closed && pthread_cond_timedwait(&s->cv, &s->mu, &until) == 0) {
		}
		closed = s->closed;
		pthread_mutex_unlock(&s->mu);
		natsSubscription_Destroy(s->sub);
		if (!closed)
			return; /* never seen: on_msg might still run, so s stays (leaked) */
	}
	for (size_t i = 0; i < s->n; i++)
		natsMsg_Destroy(s->ring[(s->head + i) % SUB_RING]);
	if (s->wake >= 0)
		close(s->wake);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

int de_fleet_subscribe(struct de_fleet *f, const char *subject, struct de_fleet_sub **out,
		       struct de_error *err)
{
	struct de_fleet_sub *s = calloc(1, sizeof(*s));
	natsStatus st;

	if (!s)
		return de_error_set(err, DE_ERR_ALERTING, ENOMEM, "out of memory");
	s->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&s->mu, NULL);
	de_cond_init_mono(&s->cv); /* fails only for a bad clock or attribute */
	if (s->wake < 0) {
		int e = errno;
		de_fleet_sub_free(s);
		return de_error_set(err, DE_ERR_ALERTING, e, "cannot subscribe: eventfd: %s",
				    strerror(e));
	}
	if ((st = natsConnection_Subscribe(&s->sub, f->nc, subject, on_msg, s)) != NATS_OK) {
		s->sub = NULL;
		de_fleet_sub_free(s);
		return nats_fail(err, st, "cannot subscribe");
	}
	if ((st = natsSubscription_SetOnCompleteCB(s->sub, on_complete, s)) != NATS_OK) {
		/*
		 * Only a subscription already closed (its connection gone) gets
		 * here; on_msg may have run and nothing will say when it is done
		 * with s, so s is left allocated rather than risk a late call.
		 */
		natsSubscription_Unsubscribe(s->sub);
		natsSubscription_Destroy(s->sub);
		return nats_fail(err, st, "cannot subscribe");
	}
	*out = s;
	return 0;
}

int de_fleet_sub_fd(const struct de_fleet_sub *s)
{
	return s ? s->wake : -1;
}

uint64_t de_fleet_sub_dropped(struct de_fleet_sub *s)
{
	uint64_t d;

	if (!s)
		return 0;
	pthread_mutex_lock(&s->mu);
	d = s->dropped;
	pthread_mutex_unlock(&s->mu);
	return d;
}

int de_fleet_sub_next(struct de_fleet_sub *s, int64_t timeout_ms, size_t max, char **data,
		      size_t *len, struct de_error *err)
{
	natsMsg *m;
	int rc;

	pthread_mutex_lock(&s->mu);
	if (!s->n && timeout_ms > 0) {
		struct timespec until;
		de_cond_deadline(&until, timeout_ms);
		while (!s->n && pthread_cond_timedwait(&s->cv, &s->mu, &until) == 0) {
		}
	}
	if (!s->n) {
		pthread_mutex_unlock(&s->mu);
		return 0;
	}
	m = s->ring[s->head];
	s->head = (s->head + 1) % SUB_RING;
	s->n--;
	sub_signal(s);
	pthread_mutex_unlock(&s->mu);
	rc = copy_capped(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), max, EMSGSIZE, data,
			 len, err);
	natsMsg_Destroy(m);
	return rc < 0 ? rc : 1;
}

int de_fleet_send(struct de_fleet *f, const char *subject, const void *data, size_t len,
		  struct de_error *err)
{
	natsStatus st;

	if (len > DE_FLEET_MSG_MAX)
		return de_error_set(err, DE_ERR_ALERTING, EINVAL,
				    "a message of %zu bytes is too large", len);
	if ((st = natsConnection_Publish(f->nc, subject, data, (int)len)) != NATS_OK ||
	    (st = natsConnection_FlushTimeout(f->nc, (int64_t)f->s.publish_timeout_ms)) != NATS_OK)
		return nats_fail(err, st, "publish");
	return 0;
}
