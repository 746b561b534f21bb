/*
 * fleet_query.c — signed distributed queries (fleet.h): the message an
 * operator signs, the checks an agent makes before running it (shape,
 * Ed25519 signature by the operator's key through checkpoint.h, freshness,
 * replay), and the set of ids already seen.
 *
 * A compromised message bus must not become a way to read every host: an
 * agent runs only what the operator's key signed, once, while it is fresh.
 * The signature covers a canonical byte string rebuilt from the parsed
 * fields (never the JSON text), so JSON's freedoms (spacing, key order,
 * escapes) cannot change what was signed.
 */
#include "daemoneye/fleet.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/base64.h"
#include "daemoneye/buf.h"
#include "fleet_int.h"

#define SIGNED_TAG "daemoneye-fleet-query-v1\n"

int de_fleet_query_subject(const char *prefix, const char *host, char *buf, size_t n)
{
	int w;

	if (!de_fleet_token_valid(prefix) || (host && !de_fleet_token_valid(host)))
		return -EINVAL;
	w = host ? snprintf(buf, n, "%s.%s.query", prefix, host)
		 : snprintf(buf, n, "%s.query", prefix);
	return w < 0 || (size_t)w >= n ? -ENAMETOOLONG : 0;
}

/* A subject we may publish to: dot-separated non-empty tokens, no wildcards. */
static bool reply_valid(const char *s)
{
	size_t n = strlen(s), tok = 0;

	if (n == 0 || n >= DE_FLEET_SUBJECT_MAX)
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '.') {
			if (!tok)
				return false;
			tok = 0;
		} else if (c <= ' ' || c >= 127 || c == '*' || c == '>') {
			return false;
		} else {
			tok++;
		}
	}
	return tok > 0;
}

static bool id_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= sizeof(((struct de_fleet_query *)0)->id))
		return false;
	for (; *s; s++)
		if (!isxdigit((unsigned char)*s) && *s != '-')
			return false;
	return true;
}

/* The bytes the signature covers. */
static int signed_bytes(const struct de_fleet_query *q, struct de_buf *b)
{
	int rc = de_buf_printf(b, SIGNED_TAG "%s\n%" PRId64 "\n%" PRId64 "\n%s\n", q->id,
			       q->issued_ms, q->expires_ms, q->reply);
	for (size_t i = 0; rc == 0 && i < q->nhosts; i++)
		rc = de_buf_printf(b, "%s%s", i ? "," : "", q->hosts[i]);
	if (rc == 0)
		rc = de_buf_putc(b, '\n');
	if (rc == 0)
		rc = de_buf_puts(b, q->sql);
	return rc;
}

static int malformed(struct de_error *err, const char *what)
{
	return de_error_set(err, DE_ERR_VALIDATION, EBADMSG, "malformed fleet query: %s", what);
}

/* The fields of q that sign and open share. */
static int check_fields(const struct de_fleet_query *q, struct de_error *err)
{
	if (!id_valid(q->id))
		return malformed(err, "id is not a UUID");
	if (!reply_valid(q->reply))
		return malformed(err, "reply is not a subject");
	if (!q->sql || !*q->sql || strlen(q->sql) > DE_FLEET_QUERY_SQL_MAX)
		return malformed(err, "sql is empty or too long");
	if (q->nhosts > DE_FLEET_QUERY_HOSTS_MAX)
		return malformed(err, "too many hosts");
	for (size_t i = 0; i < q->nhosts; i++)
		if (!de_fleet_token_valid(q->hosts[i]))
			return malformed(err, "a host is not a host id");
	if (q->expires_ms <= q->issued_ms ||
	    q->expires_ms - q->issued_ms > DE_FLEET_QUERY_TTL_MAX_MS)
		return de_error_set(err, DE_ERR_VALIDATION, ETIME,
				    "fleet query: it must expire after it is issued and within "
				    "%d minutes",
				    DE_FLEET_QUERY_TTL_MAX_MS / 60000);
	return 0;
}

int de_fleet_query_sign(const struct de_fleet_query *q, const struct de_ckpt_key *key, char **json,
			size_t *len, struct de_error *err)
{
	struct de_buf b = DE_BUF_INIT(DE_FLEET_QUERY_MAX);
	char sig64[FLEET_SIG64_LEN];
	json_t *o = NULL, *hosts = NULL;
	char *text = NULL;
	int rc;

	if ((rc = check_fields(q, err)) < 0)
		return rc;
	if (signed_bytes(q, &b) < 0) {
		de_buf_free(&b);
		return de_error_set(err, DE_ERR_VALIDATION, E2BIG, "fleet query too large");
	}
	rc = fleet_sig_make(key, b.p, b.len, sig64, err);
	de_buf_free(&b);
	if (rc < 0)
		return rc;
	if (!(hosts = json_array()))
		goto nomem;
	for (size_t i = 0; i < q->nhosts; i++)
		if (json_array_append_new(hosts, json_string(q->hosts[i])) < 0)
			goto nomem;
	o = json_pack("{s:i,s:s,s:I,s:I,s:s,s:O,s:s,s:s}", "v", 1, "id", q->id, "issued_ms",
		      (json_int_t)q->issued_ms, "expires_ms", (json_int_t)q->expires_ms, "reply",
		      q->reply, "hosts", hosts, "sql", q->sql, "sig", sig64);
	if (!o || !(text = json_dumps(o, JSON_COMPACT)))
		goto nomem;
	json_decref(o);
	json_decref(hosts);
	if (strlen(text) > DE_FLEET_QUERY_MAX) {
		free(text);
		return de_error_set(err, DE_ERR_VALIDATION, E2BIG, "fleet query too large");
	}
	*len = strlen(text);
	*json = text;
	return 0;
nomem:
	json_decref(o);
	json_decref(hosts);
	return de_error_set(err, DE_ERR_VALIDATION, ENOMEM, "out of memory");
}

void de_fleet_query_clear(struct de_fleet_query *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < q->nhosts; i++)
		free(q->hosts[i]);
	free(q->hosts);
	free(q->sql);
	memset(q, 0, sizeof(*q));
}

bool de_fleet_query_for(const struct de_fleet_query *q, const char *host)
{
	if (q->nhosts == 0)
		return true;
	for (size_t i = 0; i < q->nhosts; i++)
		if (strcmp(q->hosts[i], host) == 0)
			return true;
	return false;
}

/* ---- shared with fleet_bundle.c (fleet_int.h) ------------------------------------- */

int fleet_sig_make(const struct de_ckpt_key *key, const void *bytes, size_t len,
		   char sig64[FLEET_SIG64_LEN], struct de_error *err)
{
	uint8_t sig[DE_ED25519_SIG_LEN];
	int rc = de_checkpoint_key_sign(key, bytes, len, sig, err);

	if (rc == 0)
		de_base64_encode(sig, sizeof(sig), sig64);
	return rc;
}

int fleet_sig_check(const struct de_ckpt_key *pub, const void *bytes, size_t len, const char *sig64,
		    const char *what, struct de_error *err)
{
	uint8_t sig[DE_ED25519_SIG_LEN + 3];
	size_t n = 0;
	int rc;

	if (de_base64_decode(sig64, strlen(sig64), sig, sizeof(sig), &n) < 0 ||
	    n != DE_ED25519_SIG_LEN)
		return de_error_set(err, DE_ERR_CRYPTO, EBADMSG,
				    "%s refused: its signature is not 64 bytes of base64", what);
	if ((rc = de_checkpoint_key_verify(pub, bytes, len, sig, err)) == -EBADMSG)
		de_error_set(err, DE_ERR_CRYPTO, EBADMSG,
			     "%s refused: not signed by the operator's key "
			     "(fleet.operator_public_key)",
			     what);
	return rc;
}

int fleet_json_open(const char *msg, size_t len, size_t max, const char *const *keys, size_t n,
		    const char *what, json_t **out, struct de_error *err)
{
	json_t *o;

	if (len > max)
		return de_error_set(err, DE_ERR_VALIDATION, E2BIG,
				    "%s of %zu bytes refused (at most %zu)", what, len, max);
	if (!(o = json_loadb(msg, len, JSON_REJECT_DUPLICATES, NULL)) || !json_is_object(o)) {
		json_decref(o);
		return de_error_set(err, DE_ERR_VALIDATION, EBADMSG,
				    "malformed %s: not a JSON object", what);
	}
	if (!fleet_json_only(o, keys, n)) {
		json_decref(o);
		return de_error_set(err, DE_ERR_VALIDATION, EBADMSG, "malformed %s: unknown member",
				    what);
	}
	*out = o;
	return 0;
}

bool fleet_json_only(const json_t *o, const char *const *keys, size_t n)
{
	const char *k;
	json_t *v;

	json_object_foreach ((json_t *)o, k, v) {
		bool known = false;
		for (size_t i = 0; i < n; i++)
			known |= strcmp(k, keys[i]) == 0;
		if (!known)
			return false;
	}
	return true;
}

int fleet_json_str(const json_t *o, const char *key, char *buf, size_t cap)
{
	const json_t *v = json_object_get(o, key);
	const char *s = json_string_value(v);
	size_t n = s ? json_string_length(v) : 0;

	if (!s || n >= cap || strlen(s) != n)
		return -1;
	memcpy(buf, s, n + 1);
	return 0;
}

int de_fleet_query_open(const char *msg, size_t len, const struct de_ckpt_key *pub, int64_t now_ms,
			struct de_fleet_query *out, struct de_error *err)
{
	static const char *const keys[] = {"v",	    "id",    "issued_ms", "expires_ms",
					   "reply", "hosts", "sql",	  "sig"};
	struct de_fleet_query q = {0};
	struct de_buf b = DE_BUF_INIT(DE_FLEET_QUERY_MAX);
	char sig64[FLEET_SIG64_LEN], what[96];
	json_t *o = NULL;
	const json_t *hosts;
	const char *sql;
	int rc;

	if ((rc = fleet_json_open(msg, len, DE_FLEET_QUERY_MAX, keys,
				  sizeof(keys) / sizeof(keys[0]), "fleet query", &o, err)) < 0)
		goto out;
	hosts = json_object_get(o, "hosts");
	sql = json_string_value(json_object_get(o, "sql"));
	if (json_integer_value(json_object_get(o, "v")) != 1 ||
	    !json_is_integer(json_object_get(o, "issued_ms")) ||
	    !json_is_integer(json_object_get(o, "expires_ms")) || !json_is_array(hosts) || !sql ||
	    fleet_json_str(o, "id", q.id, sizeof(q.id)) < 0 ||
	    fleet_json_str(o, "reply", q.reply, sizeof(q.reply)) < 0 ||
	    fleet_json_str(o, "sig", sig64, sizeof(sig64)) < 0) {
		rc = malformed(err,
			       "a member is missing or of the wrong type (version 1 expected)");
		goto out;
	}
	q.issued_ms = (int64_t)json_integer_value(json_object_get(o, "issued_ms"));
	q.expires_ms = (int64_t)json_integer_value(json_object_get(o, "expires_ms"));
	if (json_array_size(hosts) > DE_FLEET_QUERY_HOSTS_MAX) {
		rc = malformed(err, "too many hosts");
		goto out;
	}
	if (json_array_size(hosts) && !(q.hosts = calloc(json_array_size(hosts), sizeof(char *)))) {
		rc = de_error_set(err, DE_ERR_VALIDATION, ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; q.hosts && i < json_array_size(hosts); i++) {
		const char *h = json_string_value(json_array_get(hosts, i));
		if (!h || !de_fleet_token_valid(h)) {
			rc = malformed(err, "a host is not a host id");
			goto out;
		}
		if (!(q.hosts[q.nhosts] = strdup(h))) {
			rc = de_error_set(err, DE_ERR_VALIDATION, ENOMEM, "out of memory");
			goto out;
		}
		q.nhosts++;
	}
	if (strlen(sql) != json_string_length(json_object_get(o, "sql"))) {
		rc = malformed(err, "sql holds a NUL");
		goto out;
	}
	if (!(q.sql = strdup(sql))) {
		rc = de_error_set(err, DE_ERR_VALIDATION, ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = check_fields(&q, err)) < 0)
		goto out;
	if (signed_bytes(&q, &b) < 0) {
		rc = de_error_set(err, DE_ERR_VALIDATION, E2BIG, "fleet query too large");
		goto out;
	}
	snprintf(what, sizeof(what), "fleet query %s", q.id);
	if ((rc = fleet_sig_check(pub, b.p, b.len, sig64, what, err)) < 0)
		goto out;
	/* signed: now whether it is still meant to run */
	if (q.issued_ms > now_ms + DE_FLEET_QUERY_SKEW_MS ||
	    q.issued_ms < now_ms - DE_FLEET_QUERY_SKEW_MS - DE_FLEET_QUERY_TTL_MAX_MS ||
	    q.expires_ms < now_ms) {
		rc = de_error_set(err, DE_ERR_VALIDATION, ETIME,
				  "fleet query %s refused: issued %" PRId64
				  " ms from our clock, expired %s (clocks apart, or a replay)",
				  q.id, q.issued_ms - now_ms, q.expires_ms < now_ms ? "yes" : "no");
		goto out;
	}
	*out = q;
	memset(&q, 0, sizeof(q));
	rc = 0;
out:
	de_buf_free(&b);
	json_decref(o);
	de_fleet_query_clear(&q);
	return rc;
}

/* ---- ids seen ------------------------------------------------------------------ */

struct seen_ent {
	char id[64];
	int64_t expires_ms;
};

struct de_fleet_seen {
	struct seen_ent *e;
	size_t n, cap;
};

struct de_fleet_seen *de_fleet_seen_new(size_t cap)
{
	struct de_fleet_seen *s = calloc(1, sizeof(*s));

	if (s && !(s->e = calloc(cap ? cap : 1, sizeof(*s->e)))) {
		free(s);
		return NULL;
	}
	if (s)
		s->cap = cap ? cap : 1;
	return s;
}

int de_fleet_seen_add(struct de_fleet_seen *s, const char *id, int64_t expires_ms, int64_t now_ms)
{
	size_t w = 0;

	/* forget the expired (a replay of one is refused as expired anyway) */
	for (size_t i = 0; i < s->n; i++)
		if (s->e[i].expires_ms >= now_ms)
			s->e[w++] = s->e[i];
	s->n = w;
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->e[i].id, id) == 0)
			return -EALREADY;
	if (s->n == s->cap)
		return -ENOSPC;
	snprintf(s->e[s->n].id, sizeof(s->e[s->n].id), "%s", id);
	s->e[s->n].expires_ms = expires_ms;
	s->n++;
	return 0;
}

void de_fleet_seen_free(struct de_fleet_seen *s)
{
	if (!s)
		return;
	free(s->e);
	free(s);
}
