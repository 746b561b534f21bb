/*
 * fleet.c — the fleet's settings, host id, subjects and message bodies
 * (fleet.h).  No network here: fleet_nats.c connects and publishes.
 *
 * The host id: HMAC-SHA256 keyed with HOST_ID_KEY over the machine-id's 32
 * lowercase hex digits, first 16 bytes in hex.  The machine-id is made once
 * at install and survives reboots and renames; the keyed hash keeps the raw
 * value (which some software treats as a secret) off the bus.
 */
#include "daemoneye/fleet.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "daemoneye/fileio.h"

#define HOST_ID_KEY "daemoneye fleet host id"

static const char *const kind_names[DE_FLEET_KIND_MAX] = {"alerts", "events", "scans",
							  "checkpoints"};

const char *de_fleet_kind_name(enum de_fleet_kind k)
{
	return (int)k >= 0 && k < DE_FLEET_KIND_MAX ? kind_names[k] : "?";
}

int de_fleet_kind_parse(const char *s, enum de_fleet_kind *out)
{
	for (int k = 0; s && k < DE_FLEET_KIND_MAX; k++)
		if (strcmp(s, kind_names[k]) == 0) {
			*out = (enum de_fleet_kind)k;
			return 0;
		}
	return -EINVAL;
}

bool de_fleet_token_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > DE_FLEET_TOKEN_MAX)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
			return false;
	return true;
}

int de_fleet_subject(const char *prefix, const char *host, enum de_fleet_kind k, char *buf,
		     size_t n)
{
	int w;

	if (!de_fleet_token_valid(prefix) || !de_fleet_token_valid(host) || (int)k < 0 ||
	    k >= DE_FLEET_KIND_MAX)
		return -EINVAL;
	w = snprintf(buf, n, "%s.%s.%s", prefix, host, kind_names[k]);
	return w < 0 || (size_t)w >= n ? -ENAMETOOLONG : 0;
}

int de_fleet_subject_parse(const char *subject, const char *prefix,
			   char host[DE_FLEET_TOKEN_MAX + 1], enum de_fleet_kind *kind)
{
	size_t pl = prefix ? strlen(prefix) : 0;
	const char *h, *dot;
	size_t hl;
	char tok[DE_FLEET_TOKEN_MAX + 1];

	if (!subject || !pl || strncmp(subject, prefix, pl) != 0 || subject[pl] != '.')
		return -EINVAL;
	h = subject + pl + 1;
	if (!(dot = strchr(h, '.')) || (hl = (size_t)(dot - h)) == 0 || hl > DE_FLEET_TOKEN_MAX)
		return -EINVAL;
	memcpy(tok, h, hl);
	tok[hl] = '\0';
	if (!de_fleet_token_valid(tok) || de_fleet_kind_parse(dot + 1, kind) < 0)
		return -EINVAL;
	memcpy(host, tok, hl + 1);
	return 0;
}

int de_fleet_host_id_derive(const char *path, char out[DE_FLEET_HOST_ID_LEN + 1],
			    struct de_error *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char *text = NULL, id[33];
	size_t len = 0, n = 0;
	int rc;

	if ((rc = de_read_file(path, 4096, &text, &len, NULL)) < 0)
		return de_error_set(err, DE_ERR_IO, -rc,
				    "cannot read %s for the fleet host id: %s (set fleet.host_id)",
				    path, strerror(-rc));
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		if (isspace(c))
			continue;
		if (!isxdigit(c) || n >= 32) {
			n = 33;
			break;
		}
		id[n++] = (char)tolower(c);
	}
	free(text);
	if (n != 32)
		return de_error_set(err, DE_ERR_VALIDATION, EBADMSG,
				    "%s does not hold a machine id (32 hex digits); set "
				    "fleet.host_id",
				    path);
	id[32] = '\0';
	if (!HMAC(EVP_sha256(), HOST_ID_KEY, (int)strlen(HOST_ID_KEY), (const unsigned char *)id,
		  32, md, &mdlen) ||
	    mdlen < DE_FLEET_HOST_ID_LEN / 2) {
		explicit_bzero(id, sizeof(id));
		return de_error_set(err, DE_ERR_CRYPTO, EIO, "HMAC-SHA256 failed");
	}
	explicit_bzero(id, sizeof(id));
	for (size_t i = 0; i < DE_FLEET_HOST_ID_LEN / 2; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* ---- settings --------------------------------------------------------------- */

static int conf_fail(const struct de_config *c, const char *key, struct de_error *err,
		     const char *what)
{
	const char *o = de_config_origin(c, key);
	return de_error_set(err, DE_ERR_CONFIGURATION, EINVAL, "%s%s%s: %s", o ? o : "",
			    o ? ": " : "", key, what);
}

/* A string setting: NULL when unset or empty; ~ expanded when is_path. */
static int opt_str(const struct de_config *c, const char *key, bool is_path, char **out,
		   struct de_error *err)
{
	const char *v;
	int rc;

	*out = NULL;
	if ((rc = de_config_get_str(c, key, &v, err)) < 0 || !v || !*v)
		return rc;
	if (is_path)
		return de_expand_home(v, out, err);
	if (!(*out = strdup(v)))
		return de_error_set(err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
	return 0;
}

static int readable(const struct de_config *c, const char *key, const char *path,
		    struct de_error *err)
{
	char what[600];

	if (!path || access(path, R_OK) == 0)
		return 0;
	snprintf(what, sizeof(what), "cannot read %s: %s", path, strerror(errno));
	return conf_fail(c, key, err, what);
}

/* A token setting copied into buf (DE_FLEET_TOKEN_MAX + 1 bytes); "" when unset. */
static int token(const struct de_config *c, const char *key, char *buf, struct de_error *err)
{
	const char *v;
	int rc;

	buf[0] = '\0';
	if ((rc = de_config_get_str(c, key, &v, err)) < 0 || !v || !*v)
		return rc;
	if (!de_fleet_token_valid(v))
		return conf_fail(c, key, err,
				 "must be 1-64 of A-Z a-z 0-9 _ - (one NATS subject token)");
	memcpy(buf, v, strlen(v) + 1); /* a valid token fits */
	return 0;
}

int de_fleet_settings_load(const struct de_config *c, const char *machine_id_path,
			   bool need_host_id, struct de_fleet_settings *out, struct de_error *err)
{
	struct de_fleet_settings s = {0};
	const char **servers = NULL;
	size_t n = 0;
	int rc;

	if ((rc = de_config_get_bool(c, "fleet.enabled", &s.enabled, err)) < 0 ||
	    (rc = de_config_get_bool(c, "fleet.create_stream", &s.create_stream, err)) < 0 ||
	    (rc = de_config_get_bool(c, "fleet.publish_events", &s.publish_events, err)) < 0 ||
	    (rc = de_config_get_u64(c, "fleet.stream_replicas", &s.stream_replicas, err)) < 0 ||
	    (rc = de_config_get_u64(c, "fleet.stream_max_age_days", &s.stream_max_age_days, err)) <
		    0 ||
	    (rc = de_config_get_u64(c, "fleet.stream_max_bytes_mb", &s.stream_max_bytes_mb, err)) <
		    0 ||
	    (rc = de_config_get_u64(c, "fleet.duplicate_window_s", &s.duplicate_window_s, err)) <
		    0 ||
	    (rc = de_config_get_u64(c, "fleet.spool_max_rows", &s.spool_max_rows, err)) < 0 ||
	    (rc = de_config_get_u64(c, "fleet.publish_timeout_ms", &s.publish_timeout_ms, err)) <
		    0 ||
	    (rc = de_config_get_u64(c, "fleet.connect_timeout_ms", &s.connect_timeout_ms, err)) <
		    0 ||
	    (rc = de_config_get_u64(c, "fleet.publish_max_pending", &s.publish_max_pending, err)) <
		    0 ||
	    (rc = opt_str(c, "fleet.tls.ca_file", true, &s.ca_file, err)) < 0 ||
	    (rc = opt_str(c, "fleet.tls.cert_file", true, &s.cert_file, err)) < 0 ||
	    (rc = opt_str(c, "fleet.tls.key_file", true, &s.key_file, err)) < 0 ||
	    (rc = opt_str(c, "fleet.credentials_file", true, &s.credentials_file, err)) < 0 ||
	    (rc = opt_str(c, "fleet.operator_public_key", true, &s.operator_public_key, err)) < 0 ||
	    (rc = token(c, "fleet.subject_prefix", s.subject_prefix, err)) < 0 ||
	    (rc = token(c, "fleet.stream", s.stream, err)) < 0 ||
	    (rc = token(c, "fleet.host_id", s.host_id, err)) < 0 ||
	    (rc = de_config_get_str_list(c, "fleet.servers", &servers, &n, err)) < 0)
		goto fail;
	if (!s.subject_prefix[0]) {
		rc = conf_fail(c, "fleet.subject_prefix", err, "must not be empty");
		goto fail;
	}
	if (!s.stream[0]) {
		rc = conf_fail(c, "fleet.stream", err, "must not be empty");
		goto fail;
	}
	if (s.stream_replicas < 1 || s.stream_replicas > 5) {
		rc = conf_fail(c, "fleet.stream_replicas", err, "must be 1 to 5");
		goto fail;
	}
	if (!!s.cert_file != !!s.key_file) {
		rc = conf_fail(c, s.cert_file ? "fleet.tls.key_file" : "fleet.tls.cert_file", err,
			       "a client certificate needs both fleet.tls.cert_file and "
			       "fleet.tls.key_file");
		goto fail;
	}
	if ((rc = readable(c, "fleet.tls.ca_file", s.ca_file, err)) < 0 ||
	    (rc = readable(c, "fleet.tls.cert_file", s.cert_file, err)) < 0 ||
	    (rc = readable(c, "fleet.tls.key_file", s.key_file, err)) < 0 ||
	    (rc = readable(c, "fleet.credentials_file", s.credentials_file, err)) < 0 ||
	    (rc = readable(c, "fleet.operator_public_key", s.operator_public_key, err)) < 0)
		goto fail;
	if (s.enabled && n == 0) {
		rc = conf_fail(c, "fleet.servers", err, "fleet is enabled but no server is listed");
		goto fail;
	}
	if (n && !(s.servers = calloc(n, sizeof(char *)))) {
		rc = de_error_set(err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		const char *u = servers[i];
		if (strncmp(u, "nats://", 7) != 0 && strncmp(u, "tls://", 6) != 0) {
			char what[600];
			snprintf(what, sizeof(what),
				 "'%.400s' is not a nats://host:port or tls://host:port URL", u);
			rc = conf_fail(c, "fleet.servers", err, what);
			goto fail;
		}
		if (!(s.servers[i] = strdup(u))) {
			rc = de_error_set(err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
			goto fail;
		}
		s.nservers++;
	}
	if (!s.host_id[0] && (s.enabled || need_host_id)) {
		if ((rc = de_fleet_host_id_derive(machine_id_path ? machine_id_path
								  : DE_FLEET_MACHINE_ID,
						  s.host_id, err)) < 0)
			goto fail;
		s.host_id_derived = true;
	}
	free(servers);
	*out = s;
	return 0;
fail:
	free(servers);
	de_fleet_settings_clear(&s);
	return rc;
}

void de_fleet_settings_clear(struct de_fleet_settings *s)
{
	if (!s)
		return;
	for (size_t i = 0; s->servers && i < s->nservers; i++)
		free(s->servers[i]);
	free(s->servers);
	free(s->ca_file);
	free(s->cert_file);
	free(s->key_file);
	free(s->credentials_file);
	free(s->operator_public_key);
	memset(s, 0, sizeof(*s));
}

/* ---- message bodies ---------------------------------------------------------- */

/* json (taken) as compact text into *out. */
static int dump(json_t *json, char **out, struct de_error *err)
{
	char *s = json ? json_dumps(json, JSON_COMPACT) : NULL;

	json_decref(json);
	if (!s)
		return de_error_set(err, DE_ERR_VALIDATION, ENOMEM, "out of memory");
	*out = s;
	return 0;
}

int de_fleet_event_msg(const char *host, const struct de_process_event *ev, char **json,
		       char msg_id[DE_FLEET_MSGID_MAX], struct de_error *err)
{
	const char *kind = ev->kind == DE_PROCESS_EXEC ? "exec" : "exit";
	json_t *o = json_object(), *rec = NULL;
	int rc;

	if (!o)
		return de_error_set(err, DE_ERR_VALIDATION, ENOMEM, "out of memory");
	if (ev->has_record && !(rec = de_process_record_to_json(&ev->record))) {
		json_decref(o);
		return de_error_set(err, DE_ERR_VALIDATION, ENOMEM, "out of memory");
	}
	rc = json_object_set_new(o, "host", json_string(host));
	rc |= json_object_set_new(o, "kind", json_string(kind));
	rc |= json_object_set_new(o, "pid", json_integer(ev->pid));
	rc |= json_object_set_new(o, "time_ms", json_integer(ev->time_ms));
	if (ev->has_exit_code)
		rc |= json_object_set_new(o, "exit_code", json_integer(ev->exit_code));
	if (rec)
		rc |= json_object_set_new(o, "process", rec);
	if (rc) {
		json_decref(o);
		return de_error_set(err, DE_ERR_VALIDATION, ENOMEM, "out of memory");
	}
	/* the kernel's timestamp when known: two events of one pid never share it */
	snprintf(msg_id, DE_FLEET_MSGID_MAX, "ev-%s-%s-%" PRIu32 "-%" PRIu64, host, kind, ev->pid,
		 ev->timestamp_ns ? ev->timestamp_ns : (uint64_t)ev->time_ms);
	return dump(o, json, err);
}

int de_fleet_scan_msg(const char *host, const struct de_fleet_scan *s, char **json,
		      char msg_id[DE_FLEET_MSGID_MAX], struct de_error *err)
{
	json_t *o = json_pack(
		"{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "host", host, "scan_id",
		(json_int_t)s->scan_id, "started_ms", (json_int_t)s->started_ms, "ended_ms",
		(json_int_t)s->ended_ms, "processes", (json_int_t)s->processes, "added",
		(json_int_t)s->added, "changed", (json_int_t)s->changed, "exited",
		(json_int_t)s->exited, "alerts", (json_int_t)s->alerts, "spool_rows",
		(json_int_t)s->spool_rows, "spool_dropped", (json_int_t)s->spool_dropped);

	if (o && ((s->version && json_object_set_new(o, "version", json_string(s->version)) < 0) ||
		  (s->health && json_object_set_new(o, "health", json_string(s->health)) < 0) ||
		  (s->health_summary &&
		   json_object_set_new(o, "health_summary", json_string(s->health_summary)) < 0))) {
		json_decref(o);
		o = NULL;
	}

	snprintf(msg_id, DE_FLEET_MSGID_MAX, "scan-%s-%" PRId64 "-%" PRId64, host, s->scan_id,
		 s->started_ms);
	return dump(o, json, err);
}

int de_fleet_checkpoint_msg_id(const char *host, const char *note, size_t len,
			       char msg_id[DE_FLEET_MSGID_MAX], struct de_error *err)
{
	struct de_signed_checkpoint *n = malloc(sizeof(*n));
	char root[17];
	int rc;

	if (!n)
		return de_error_set(err, DE_ERR_VALIDATION, ENOMEM, "out of memory");
	if ((rc = de_checkpoint_parse(note, len, n, err)) == 0) {
		for (size_t i = 0; i < 8; i++)
			snprintf(root + 2 * i, 3, "%02x", n->cp.root[i]);
		snprintf(msg_id, DE_FLEET_MSGID_MAX, "ckpt-%s-%" PRIu64 "-%s", host, n->cp.size,
			 root);
	}
	free(n);
	return rc;
}
