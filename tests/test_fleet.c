/*
 * test_fleet.c — the fleet's settings, host id, subjects and message ids
 * (src/lib/fleet.c), and off-host anchoring (src/lib/fleet_verify.c)
 * against real ledgers: one intact, one whose history was rewritten and
 * re-signed, one truncated; signed queries (src/lib/fleet_query.c): the
 * operator's signature over every field, freshness, replays.  The cluster itself is tested by
 * tests/integration_fleet.sh against a real nats-server.
 *
 * The expected host id was computed independently with
 *   printf %s 0123456789abcdef0123456789abcdef |
 *     openssl dgst -sha256 -mac HMAC -macopt key:"daemoneye fleet host id"
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#define DE_TEST_NAME "fleet"
#include "testutil.h"

#include "daemoneye/fleet.h"

#define MACHINE_ID "0123456789abcdef0123456789abcdef"
#define HOST_ID	   "c98c3ded0effddb1eaf2308b2100c128"

static void write_file(const char *name, const char *text, char *path, size_t n)
{
	FILE *f;

	snprintf(path, n, "%s/%s", tmpdir, name);
	assert_non_null(f = fopen(path, "w"));
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* The fleet settings of the defaults plus yaml; the machine-id is ours. */
static int load(const char *yaml, struct de_fleet_settings *s, struct de_error *e)
{
	struct de_config_builder *b = de_config_builder_new();
	struct de_config *c = NULL;
	char mid[600];
	int rc;

	write_file("machine-id", MACHINE_ID "\n", mid, sizeof(mid));
	assert_int_equal(de_config_builder_add_embedded_defaults(b, e), 0);
	if (yaml)
		assert_int_equal(de_config_builder_add_yaml(b, yaml, strlen(yaml), "t.yaml", e), 0);
	rc = de_config_build(b, &c, e);
	if (rc == 0)
		rc = de_fleet_settings_load(c, mid, false, s, e);
	de_config_builder_free(b);
	de_config_free(c);
	return rc;
}

static void test_kinds_and_subjects(void **state)
{
	(void)state;
	enum de_fleet_kind k;
	char buf[DE_FLEET_SUBJECT_MAX], host[DE_FLEET_TOKEN_MAX + 1];

	for (int i = 0; i < DE_FLEET_KIND_MAX; i++) {
		assert_int_equal(de_fleet_kind_parse(de_fleet_kind_name((enum de_fleet_kind)i), &k),
				 0);
		assert_int_equal(k, i);
	}
	assert_int_equal(de_fleet_kind_parse("alert", &k), -EINVAL);
	assert_string_equal(de_fleet_kind_name(DE_FLEET_KIND_MAX), "?");

	assert_true(de_fleet_token_valid("web-01_A"));
	assert_false(de_fleet_token_valid(""));
	assert_false(de_fleet_token_valid("a.b"));
	assert_false(de_fleet_token_valid("a*"));
	assert_false(de_fleet_token_valid(">"));
	assert_false(de_fleet_token_valid("a b"));
	char long_tok[DE_FLEET_TOKEN_MAX + 2];
	memset(long_tok, 'a', sizeof(long_tok) - 1);
	long_tok[DE_FLEET_TOKEN_MAX + 1] = '\0';
	assert_false(de_fleet_token_valid(long_tok));
	long_tok[DE_FLEET_TOKEN_MAX] = '\0';
	assert_true(de_fleet_token_valid(long_tok));

	assert_int_equal(de_fleet_subject("daemoneye", "h1", DE_FLEET_EVENTS, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "daemoneye.h1.events");
	assert_int_equal(de_fleet_subject("daemoneye", "h.1", DE_FLEET_EVENTS, buf, sizeof(buf)),
			 -EINVAL);
	assert_int_equal(de_fleet_subject("de", "h1", DE_FLEET_KIND_MAX, buf, sizeof(buf)),
			 -EINVAL);
	assert_int_equal(de_fleet_subject("daemoneye", "h1", DE_FLEET_ALERTS, buf, 10),
			 -ENAMETOOLONG);

	assert_int_equal(de_fleet_subject_parse("daemoneye.h1.checkpoints", "daemoneye", host, &k),
			 0);
	assert_string_equal(host, "h1");
	assert_int_equal(k, DE_FLEET_CHECKPOINTS);
	assert_int_equal(de_fleet_subject_parse("daemoneyeX.h1.alerts", "daemoneye", host, &k),
			 -EINVAL);
	assert_int_equal(de_fleet_subject_parse("daemoneye.h1.alerts.x", "daemoneye", host, &k),
			 -EINVAL);
	assert_int_equal(de_fleet_subject_parse("daemoneye..alerts", "daemoneye", host, &k),
			 -EINVAL);
	assert_int_equal(de_fleet_subject_parse("daemoneye.h*.alerts", "daemoneye", host, &k),
			 -EINVAL);
	assert_int_equal(de_fleet_subject_parse("daemoneye.h1", "daemoneye", host, &k), -EINVAL);
}

static void test_host_id(void **state)
{
	(void)state;
	struct de_error e = {0};
	char path[600], id[DE_FLEET_HOST_ID_LEN + 1];

	write_file("mid1", MACHINE_ID "\n", path, sizeof(path));
	assert_int_equal(de_fleet_host_id_derive(path, id, &e), 0);
	assert_string_equal(id, HOST_ID);
	/* the same machine written in capitals with blanks around: the same id */
	write_file("mid2", "  0123456789ABCDEF0123456789ABCDEF \n", path, sizeof(path));
	assert_int_equal(de_fleet_host_id_derive(path, id, &e), 0);
	assert_string_equal(id, HOST_ID);
	/* the raw machine id is not in it */
	assert_null(strstr(id, "0123456789abcdef"));
	/* another machine: another id */
	write_file("mid3", "0123456789abcdef0123456789abcdee\n", path, sizeof(path));
	assert_int_equal(de_fleet_host_id_derive(path, id, &e), 0);
	assert_string_not_equal(id, HOST_ID);

	write_file("bad1", "0123456789abcdef\n", path, sizeof(path));
	assert_int_equal(de_fleet_host_id_derive(path, id, &e), -EBADMSG);
	assert_non_null(strstr(e.message, "fleet.host_id"));
	write_file("bad2", MACHINE_ID "00\n", path, sizeof(path));
	assert_int_equal(de_fleet_host_id_derive(path, id, &e), -EBADMSG);
	write_file("bad3", "0123456789abcdef0123456789abcdeg\n", path, sizeof(path));
	assert_int_equal(de_fleet_host_id_derive(path, id, &e), -EBADMSG);
	write_file("bad4", "", path, sizeof(path));
	assert_int_equal(de_fleet_host_id_derive(path, id, &e), -EBADMSG);
	snprintf(path, sizeof(path), "%s/none", tmpdir);
	assert_int_equal(de_fleet_host_id_derive(path, id, &e), -ENOENT);
	assert_non_null(strstr(e.message, path));
}

static void test_settings(void **state)
{
	(void)state;
	struct de_fleet_settings s;
	struct de_error e = {0};
	char ca[600], yaml[1600];

	/* the defaults: off, documented values, no host id needed */
	assert_int_equal(load(NULL, &s, &e), 0);
	assert_false(s.enabled);
	assert_int_equal(s.nservers, 0);
	assert_string_equal(s.subject_prefix, "daemoneye");
	assert_string_equal(s.stream, "DAEMONEYE");
	assert_true(s.create_stream);
	assert_true(s.publish_events);
	assert_int_equal(s.stream_replicas, 1);
	assert_int_equal(s.duplicate_window_s, 86400);
	assert_int_equal(s.spool_max_rows, 100000);
	assert_string_equal(s.host_id, "");
	assert_null(s.ca_file);
	de_fleet_settings_clear(&s);

	/* enabled: the host id derived from the machine-id */
	assert_int_equal(load("fleet: { enabled: true, servers: [\"nats://127.0.0.1:4222\", "
			      "\"tls://n2:4222\"] }\n",
			      &s, &e),
			 0);
	assert_int_equal(s.nservers, 2);
	assert_string_equal(s.servers[1], "tls://n2:4222");
	assert_string_equal(s.host_id, HOST_ID);
	assert_true(s.host_id_derived);
	de_fleet_settings_clear(&s);

	/* an override wins */
	assert_int_equal(load("fleet: { enabled: true, servers: [\"nats://a:1\"], host_id: web-01 "
			      "}\n",
			      &s, &e),
			 0);
	assert_string_equal(s.host_id, "web-01");
	assert_false(s.host_id_derived);
	de_fleet_settings_clear(&s);

	/* errors name the key and where it was written */
	assert_int_equal(load("fleet:\n  enabled: true\n", &s, &e), -EINVAL);
	assert_int_equal(e.category, DE_ERR_CONFIGURATION);
	assert_non_null(strstr(e.message, "fleet.servers"));
	assert_int_equal(load("fleet:\n  host_id: a.b\n", &s, &e), -EINVAL);
	assert_non_null(strstr(e.message, "t.yaml:2:"));
	assert_non_null(strstr(e.message, "fleet.host_id"));
	assert_int_equal(load("fleet:\n  subject_prefix: \"de>\"\n", &s, &e), -EINVAL);
	assert_non_null(strstr(e.message, "fleet.subject_prefix"));
	assert_int_equal(load("fleet:\n  servers: [\"http://x:1\"]\n", &s, &e), -EINVAL);
	assert_non_null(strstr(e.message, "fleet.servers"));
	assert_non_null(strstr(e.message, "http://x:1"));
	assert_int_equal(load("fleet:\n  stream_replicas: 7\n", &s, &e), -ERANGE);

	/* TLS: files must be readable; a certificate needs its key */
	snprintf(yaml, sizeof(yaml), "fleet:\n  tls:\n    ca_file: %s/missing.pem\n", tmpdir);
	assert_int_equal(load(yaml, &s, &e), -EINVAL);
	assert_non_null(strstr(e.message, "t.yaml:3:"));
	assert_non_null(strstr(e.message, "fleet.tls.ca_file: cannot read"));
	assert_non_null(strstr(e.message, "missing.pem"));
	write_file("ca.pem", "not really\n", ca, sizeof(ca));
	snprintf(yaml, sizeof(yaml), "fleet:\n  tls:\n    cert_file: %s\n", ca);
	assert_int_equal(load(yaml, &s, &e), -EINVAL);
	assert_non_null(strstr(e.message, "fleet.tls.key_file"));
	snprintf(yaml, sizeof(yaml), "fleet:\n  tls:\n    ca_file: %s\n", ca);
	assert_int_equal(load(yaml, &s, &e), 0);
	assert_string_equal(s.ca_file, ca);
	de_fleet_settings_clear(&s);
	de_fleet_settings_clear(NULL);
}

static void test_messages(void **state)
{
	(void)state;
	struct de_error e = {0};
	struct de_process_event ev = {.kind = DE_PROCESS_EXIT,
				      .pid = 42,
				      .time_ms = 1700000000123,
				      .timestamp_ns = 987654321,
				      .has_exit_code = true,
				      .exit_code = 256};
	char id[DE_FLEET_MSGID_MAX], id2[DE_FLEET_MSGID_MAX], *json = NULL;

	assert_int_equal(de_fleet_event_msg("h1", &ev, &json, id, &e), 0);
	assert_string_equal(id, "ev-h1-exit-42-987654321");
	assert_string_equal(json, "{\"host\":\"h1\",\"kind\":\"exit\",\"pid\":42,\"time_ms\":"
				  "1700000000123,\"exit_code\":256}");
	free(json);
	/* deterministic: the same event, the same id (a re-send is a duplicate) */
	assert_int_equal(de_fleet_event_msg("h1", &ev, &json, id2, &e), 0);
	assert_string_equal(id, id2);
	free(json);
	ev.timestamp_ns = 0; /* no kernel time: the wall clock's */
	assert_int_equal(de_fleet_event_msg("h1", &ev, &json, id, &e), 0);
	assert_string_equal(id, "ev-h1-exit-42-1700000000123");
	free(json);

	struct de_fleet_scan sc = {.scan_id = 7,
				   .started_ms = 1000,
				   .ended_ms = 1500,
				   .processes = 300,
				   .spool_dropped = 4};
	assert_int_equal(de_fleet_scan_msg("h1", &sc, &json, id, &e), 0);
	assert_string_equal(id, "scan-h1-7-1000");
	assert_non_null(strstr(json, "\"spool_dropped\":4"));
	assert_non_null(strstr(json, "\"processes\":300"));
	free(json);

	assert_int_equal(de_fleet_checkpoint_msg_id("h1", "no note", 7, id, &e), -EBADMSG);
	assert_int_equal(e.category, DE_ERR_VALIDATION);
}

/* ---- off-host anchoring ------------------------------------------------------ */

/* A ledger at dir/name with n entries ("tag" in each payload), signed by key. */
static struct de_audit *ledger(const char *name, const char *key, int n, const char *tag)
{
	struct de_audit_config c = {.origin = "test.host/daemoneye/audit"};
	struct de_audit *a = NULL;
	struct de_error e = {0};
	char path[600], payload[64];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	c.path = path;
	c.chain.enable_signatures = true;
	c.chain.private_key_path = key;
	assert_int_equal(de_audit_open(&c, &a, &e), 0);
	for (int i = 1; i <= n; i++) {
		/* fixed times: two ledgers with the same entries have the same tree */
		struct de_audit_entry en = {
			.ts_ms = 1000 + i, .actor = "agent", .action = "scan", .payload = payload};
		snprintf(payload, sizeof(payload), "{\"i\":%d,\"t\":\"%s\"}", i, tag);
		assert_int_equal(de_audit_append(a, &en, NULL, &e), 0);
	}
	assert_int_equal(de_audit_flush(a, &e), 0);
	return a;
}

static char *checkpoint(struct de_audit *a)
{
	struct de_error e = {0};
	char *note = NULL;

	assert_int_equal(de_audit_checkpoint(a, &note, &e), 0);
	return note;
}

static void test_verify(void **state)
{
	(void)state;
	struct de_error e = {0};
	struct de_fleet_verify_report r;
	struct de_ckpt_key *pub = NULL, *other = NULL;
	char keydir[600], key[700], pubpath[700], otherdir[600], otherpub[700];

	snprintf(keydir, sizeof(keydir), "%s/keys", tmpdir);
	snprintf(otherdir, sizeof(otherdir), "%s/otherkeys", tmpdir);
	assert_int_equal(mkdir(keydir, 0700), 0);
	assert_int_equal(mkdir(otherdir, 0700), 0);
	assert_int_equal(de_checkpoint_keygen(keydir, &e), 0);
	assert_int_equal(de_checkpoint_keygen(otherdir, &e), 0);
	snprintf(key, sizeof(key), "%s/audit.key", keydir);
	snprintf(pubpath, sizeof(pubpath), "%s/audit.pub", keydir);
	snprintf(otherpub, sizeof(otherpub), "%s/audit.pub", otherdir);
	assert_int_equal(de_checkpoint_key_load_public(pubpath, &pub, &e), 0);
	assert_int_equal(de_checkpoint_key_load_public(otherpub, &other, &e), 0);

	/* the host's ledger: checkpoints at 10 and 25 entries were published */
	struct de_audit *a = ledger("host.sqlite", key, 10, "real");
	char *n1 = checkpoint(a);
	struct de_audit_entry en = {.actor = "agent", .action = "scan", .payload = "{\"i\":11}"};
	for (int i = 0; i < 15; i++)
		assert_int_equal(de_audit_append(a, &en, NULL, &e), 0);
	assert_int_equal(de_audit_flush(a, &e), 0);
	char *n2 = checkpoint(a);
	const char *notes[] = {n1, n2, "garbage"};
	size_t lens[] = {strlen(n1), strlen(n2), 7};

	assert_int_equal(de_fleet_verify_ledger(a, notes, lens, 3, pub, &r, &e), 0);
	assert_int_equal(r.problem, DE_AUDIT_INTACT);
	assert_int_equal(r.checkpoints, 3);
	assert_int_equal(r.matched, 2);
	assert_int_equal(r.malformed, 1);
	assert_int_equal(r.ledger.entries, 25);
	/* signed by another key: not evidence */
	assert_int_equal(de_fleet_verify_ledger(a, notes, lens, 2, other, &r, &e), 0);
	assert_int_equal(r.matched, 0);
	assert_int_equal(r.malformed, 2);

	/* a root attacker rewrote the whole history with the host's own key:
	   the ledger agrees with itself, not with what was published */
	struct de_audit *b = ledger("rewritten.sqlite", key, 25, "forged");
	free(checkpoint(b));
	assert_int_equal(de_fleet_verify_ledger(b, notes, lens, 2, pub, &r, &e), 0);
	assert_int_equal(r.problem, DE_AUDIT_REWRITTEN);
	assert_int_equal(r.bad_size, 10);
	assert_int_equal(r.matched, 0);
	assert_non_null(strstr(r.detail, "rewritten"));
	/* and without a key to check signatures with, the same */
	assert_int_equal(de_fleet_verify_ledger(b, notes, lens, 2, NULL, &r, &e), 0);
	assert_int_equal(r.problem, DE_AUDIT_REWRITTEN);

	/* the first 10 entries kept, the rest dropped: truncated */
	struct de_audit *c = ledger("truncated.sqlite", key, 10, "real");
	assert_int_equal(de_fleet_verify_ledger(c, notes, lens, 2, pub, &r, &e), 0);
	assert_int_equal(r.problem, DE_AUDIT_TRUNCATED);
	assert_int_equal(r.bad_size, 25);
	assert_int_equal(r.matched, 1);

	free(n1);
	free(n2);
	assert_int_equal(de_audit_close(a, &e), 0);
	assert_int_equal(de_audit_close(b, &e), 0);
	assert_int_equal(de_audit_close(c, &e), 0);
	de_checkpoint_key_free(pub);
	de_checkpoint_key_free(other);
}

/* ---- signed queries ----------------------------------------------------------- */

static void keys(const char *name, struct de_ckpt_key **priv, struct de_ckpt_key **pub)
{
	struct de_error e = {0};
	char dir[600], path[700];

	snprintf(dir, sizeof(dir), "%s/%s", tmpdir, name);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(de_checkpoint_keygen(dir, &e), 0);
	snprintf(path, sizeof(path), "%s/audit.key", dir);
	assert_int_equal(de_checkpoint_key_load_private(path, priv, &e), 0);
	snprintf(path, sizeof(path), "%s/audit.pub", dir);
	assert_int_equal(de_checkpoint_key_load_public(path, pub, &e), 0);
}

/* Replace the first `from` in text by `to` (a new string). */
static char *edit(const char *text, const char *from, const char *to)
{
	const char *p = strstr(text, from);
	char *out;

	assert_non_null(p);
	assert_true(asprintf(&out, "%.*s%s%s", (int)(p - text), text, to, p + strlen(from)) > 0);
	return out;
}

static void test_query(void **state)
{
	(void)state;
	struct de_ckpt_key *op = NULL, *op_pub = NULL, *other = NULL, *other_pub = NULL;
	struct de_error e = {0};
	char *hosts[] = {"web-01", "db-02"};
	struct de_fleet_query q = {.id = "7f0c2f53-58a4-4b8c-9d0e-0123456789ab",
				   .issued_ms = 1700000000000,
				   .expires_ms = 1700000030000,
				   .reply = "_INBOX.daemoneye.x1",
				   .hosts = hosts,
				   .nhosts = 2,
				   .sql = "SELECT pid, name FROM processes\nWHERE name = 'sshd'"};
	struct de_fleet_query got = {0};
	const int64_t now = 1700000001000;
	char *msg = NULL, *bad, subj[DE_FLEET_SUBJECT_MAX];
	size_t len = 0;

	keys("op", &op, &op_pub);
	keys("other", &other, &other_pub);
	assert_int_equal(de_fleet_query_subject("daemoneye", NULL, subj, sizeof(subj)), 0);
	assert_string_equal(subj, "daemoneye.query");
	assert_int_equal(de_fleet_query_subject("daemoneye", "web-01", subj, sizeof(subj)), 0);
	assert_string_equal(subj, "daemoneye.web-01.query");

	assert_int_equal(de_fleet_query_sign(&q, op, &msg, &len, &e), 0);
	assert_int_equal(len, strlen(msg));
	assert_int_equal(de_fleet_query_open(msg, len, op_pub, now, &got, &e), 0);
	assert_string_equal(got.id, q.id);
	assert_string_equal(got.sql, q.sql);
	assert_string_equal(got.reply, q.reply);
	assert_int_equal(got.nhosts, 2);
	assert_true(de_fleet_query_for(&got, "db-02"));
	assert_false(de_fleet_query_for(&got, "web-03"));
	de_fleet_query_clear(&got);

	/* another key: refused as a crypto failure */
	assert_int_equal(de_fleet_query_open(msg, len, other_pub, now, &got, &e), -EBADMSG);
	assert_int_equal(e.category, DE_ERR_CRYPTO);
	assert_non_null(strstr(e.message, "not signed by the operator's key"));
	/* every signed field altered: refused */
	const char *const alter[][2] = {
		{"sshd", "cron"},
		{"web-01", "web-09"},
		{"_INBOX.daemoneye.x1", "_INBOX.evil.x1"},
		{"1700000030000", "1700000031000"},
		{"7f0c2f53", "7f0c2f54"},
	};
	for (size_t i = 0; i < sizeof(alter) / sizeof(alter[0]); i++) {
		bad = edit(msg, alter[i][0], alter[i][1]);
		assert_int_equal(de_fleet_query_open(bad, strlen(bad), op_pub, now, &got, &e),
				 -EBADMSG);
		assert_int_equal(e.category, DE_ERR_CRYPTO);
		free(bad);
	}
	/* unsigned: the signature removed, or not base64 of 64 bytes */
	bad = edit(msg, "\"sig\":\"", "\"gis\":\"");
	assert_int_equal(de_fleet_query_open(bad, strlen(bad), op_pub, now, &got, &e), -EBADMSG);
	assert_int_equal(e.category, DE_ERR_VALIDATION);
	free(bad);
	bad = edit(msg, "\"sig\":\"", "\"sig\":\"AAAA");
	assert_int_equal(de_fleet_query_open(bad, strlen(bad), op_pub, now, &got, &e), -EBADMSG);
	assert_int_equal(e.category, DE_ERR_CRYPTO);
	free(bad);
	/* an extra member, a version we do not know, not JSON */
	bad = edit(msg, "{", "{\"x\":1,");
	assert_int_equal(de_fleet_query_open(bad, strlen(bad), op_pub, now, &got, &e), -EBADMSG);
	free(bad);
	bad = edit(msg, "\"v\":1", "\"v\":2");
	assert_int_equal(de_fleet_query_open(bad, strlen(bad), op_pub, now, &got, &e), -EBADMSG);
	free(bad);
	assert_int_equal(de_fleet_query_open("[1]", 3, op_pub, now, &got, &e), -EBADMSG);
	/* too large before anything is parsed */
	assert_int_equal(de_fleet_query_open(msg, DE_FLEET_QUERY_MAX + 1, op_pub, now, &got, &e),
			 -E2BIG);
	/* freshness: too early, expired */
	assert_int_equal(de_fleet_query_open(msg, len, op_pub, q.issued_ms - 6 * 60000, &got, &e),
			 -ETIME);
	assert_int_equal(de_fleet_query_open(msg, len, op_pub, q.expires_ms + 1, &got, &e), -ETIME);
	free(msg);
	/* a query may not live for more than ten minutes, nor name a wildcard reply */
	q.expires_ms = q.issued_ms + DE_FLEET_QUERY_TTL_MAX_MS + 1;
	assert_int_equal(de_fleet_query_sign(&q, op, &msg, &len, &e), -ETIME);
	q.expires_ms = q.issued_ms + 1000;
	snprintf(q.reply, sizeof(q.reply), "_INBOX.>");
	assert_int_equal(de_fleet_query_sign(&q, op, &msg, &len, &e), -EBADMSG);
	/* a public key cannot sign */
	snprintf(q.reply, sizeof(q.reply), "r");
	assert_int_equal(de_fleet_query_sign(&q, op_pub, &msg, &len, &e), -EINVAL);

	de_checkpoint_key_free(op);
	de_checkpoint_key_free(op_pub);
	de_checkpoint_key_free(other);
	de_checkpoint_key_free(other_pub);
}

static void test_seen(void **state)
{
	(void)state;
	struct de_fleet_seen *s = de_fleet_seen_new(2);

	assert_non_null(s);
	assert_int_equal(de_fleet_seen_add(s, "a", 1000, 0), 0);
	assert_int_equal(de_fleet_seen_add(s, "a", 1000, 10), -EALREADY);
	assert_int_equal(de_fleet_seen_add(s, "b", 2000, 10), 0);
	assert_int_equal(de_fleet_seen_add(s, "c", 2000, 10), -ENOSPC);
	/* once "a" expired its place is free (a replay of it is refused as expired) */
	assert_int_equal(de_fleet_seen_add(s, "c", 2000, 1001), 0);
	assert_int_equal(de_fleet_seen_add(s, "b", 2000, 1001), -EALREADY);
	de_fleet_seen_free(s);
	de_fleet_seen_free(NULL);
}

/* ---- signed rule bundles ------------------------------------------------------- */

#define RULE_OK                                                                                    \
	"rules:\n"                                                                                 \
	"  - id: bundle-ok\n"                                                                      \
	"    name: bundle ok\n"                                                                    \
	"    description: a rule of a bundle\n"                                                    \
	"    severity: low\n"                                                                      \
	"    category: execution\n"                                                                \
	"    sql: SELECT pid FROM processes WHERE name = 'x'\n"

static void test_bundle(void **state)
{
	(void)state;
	struct de_ckpt_key *op = NULL, *op_pub = NULL, *other = NULL, *other_pub = NULL;
	struct de_fleet_bundle b = {.version = 7, .issued_ms = 1700000000000}, got = {0};
	struct de_validator *v = de_validator_new();
	struct de_rule_problems pr = {0};
	struct de_rule_set rules = {0};
	struct de_error e = {0};
	char dir[600], path[700], *msg = NULL, *bad, *line = NULL;
	uint64_t ver = 99;
	size_t len = 0, n = 0;
	FILE *f;

	assert_non_null(v);
	keys("bop", &op, &op_pub);
	keys("bother", &other, &other_pub);
	/* names: base names of rule files only, once each */
	assert_int_equal(de_fleet_bundle_add(&b, "/some/dir/a.yaml", RULE_OK, strlen(RULE_OK)), 0);
	assert_string_equal(b.files[0].name, "a.yaml");
	assert_int_equal(de_fleet_bundle_add(&b, "a.yaml", RULE_OK, strlen(RULE_OK)), -EINVAL);
	assert_int_equal(de_fleet_bundle_add(&b, ".hidden.yaml", "x", 1), -EINVAL);
	assert_int_equal(de_fleet_bundle_add(&b, "notes.txt", "x", 1), -EINVAL);
	assert_int_equal(de_fleet_bundle_sign(&b, op, &msg, &len, &e), 0);

	/* the operator's signature opens */
	assert_int_equal(de_fleet_bundle_open(msg, len, op_pub, &got, &e), 0);
	assert_int_equal(got.version, 7);
	assert_int_equal(got.nfiles, 1);
	assert_string_equal(got.files[0].text, RULE_OK);
	de_fleet_bundle_clear(&got);
	/* another key's public half refuses it */
	assert_int_equal(de_fleet_bundle_open(msg, len, other_pub, &got, &e), -EBADMSG);
	assert_int_equal(e.category, DE_ERR_CRYPTO);
	/* a rule changed after signing: refused */
	bad = edit(msg, "name = 'x'", "name = 'y'");
	assert_int_equal(de_fleet_bundle_open(bad, strlen(bad), op_pub, &got, &e), -EBADMSG);
	assert_int_equal(e.category, DE_ERR_CRYPTO);
	free(bad);
	/* the version raised after signing: refused */
	bad = edit(msg, "\"version\":7", "\"version\":8");
	assert_int_equal(de_fleet_bundle_open(bad, strlen(bad), op_pub, &got, &e), -EBADMSG);
	assert_int_equal(e.category, DE_ERR_CRYPTO);
	free(bad);
	/* unsigned: refused as such */
	bad = edit(msg, ",\"sig\":", ",\"nosig\":");
	assert_int_equal(de_fleet_bundle_open(bad, strlen(bad), op_pub, &got, &e), -EBADMSG);
	free(bad);
	{
		static const char unsigned_msg[] =
			"{\"v\":1,\"version\":1,\"issued_ms\":1,\"files\":"
			"[{\"name\":\"a.yaml\",\"text\":\"x\"}]}";
		assert_int_equal(
			de_fleet_bundle_open(unsigned_msg, strlen(unsigned_msg), op_pub, &got, &e),
			-EBADMSG);
	}
	assert_int_equal(e.category, DE_ERR_CRYPTO);
	assert_non_null(strstr(e.message, "not signed"));
	/* malformed and oversized */
	assert_int_equal(de_fleet_bundle_open("[]", 2, op_pub, &got, &e), -EBADMSG);
	assert_int_equal(e.category, DE_ERR_VALIDATION);
	assert_int_equal(de_fleet_bundle_open(msg, DE_FLEET_BUNDLE_MAX + 1, op_pub, &got, &e),
			 -E2BIG);

	/* install: a new version goes in as one file, its version first */
	snprintf(dir, sizeof(dir), "%s/rules.d", tmpdir);
	assert_int_equal(de_fleet_bundle_installed(dir, &ver, &e), 0);
	assert_int_equal(ver, 0);
	assert_int_equal(de_fleet_bundle_install(&b, v, dir, &rules, &pr, &e), 0);
	assert_int_equal(rules.len, 1);
	assert_string_equal(rules.items[0].id, "bundle-ok");
	de_rule_set_clear(&rules);
	assert_int_equal(de_fleet_bundle_installed(dir, &ver, &e), 0);
	assert_int_equal(ver, 7);
	snprintf(path, sizeof(path), "%s/%s", dir, DE_FLEET_BUNDLE_FILE);
	assert_int_equal(de_rules_load_file(path, DE_RULE_USER, v, &rules, &pr, &e), 0);
	assert_int_equal(rules.len, 1);
	assert_int_equal(pr.len, 0);
	de_rule_set_clear(&rules);
	/* the same version again, or an older one: stale */
	assert_int_equal(de_fleet_bundle_install(&b, v, dir, NULL, &pr, &e), -ESTALE);
	b.version = 6;
	assert_int_equal(de_fleet_bundle_install(&b, v, dir, NULL, &pr, &e), -ESTALE);
	/* a newer one with a rule the validator refuses: nothing written */
	de_fleet_bundle_clear(&b);
	b.version = 8;
	bad = edit(RULE_OK, "SELECT pid FROM processes WHERE name = 'x'", "DELETE FROM processes");
	assert_int_equal(de_fleet_bundle_add(&b, "bad.yaml", bad, strlen(bad)), 0);
	free(bad);
	assert_int_equal(de_fleet_bundle_install(&b, v, dir, NULL, &pr, &e), -EBADMSG);
	assert_int_equal(pr.len, 1);
	assert_non_null(strstr(pr.items[0], "bundle:bad.yaml"));
	assert_int_equal(de_fleet_bundle_installed(dir, &ver, &e), 0);
	assert_int_equal(ver, 7);
	assert_non_null(f = fopen(path, "r"));
	assert_true(getline(&line, &n, f) > 0);
	assert_non_null(strstr(line, "version 7 "));
	fclose(f);
	free(line);

	de_rule_problems_clear(&pr);
	de_fleet_bundle_clear(&b);
	de_validator_free(v);
	free(msg);
	de_checkpoint_key_free(op);
	de_checkpoint_key_free(op_pub);
	de_checkpoint_key_free(other);
	de_checkpoint_key_free(other_pub);
}

/*
 * Pipelined publishing with no server answering: nothing is sent, the call
 * says why, and every message is left to retry (-EAGAIN), none reported
 * stored.  (With a server: integration_fleet.sh, section 4b.)
 */
static void test_publish_many_unreachable(void **state)
{
	(void)state;
	char *servers[] = {"nats://127.0.0.1:1"};
	struct de_fleet_settings s = {
		.servers = servers,
		.nservers = 1,
		.host_id = "h",
		.subject_prefix = "p",
		.stream = "S",
		.stream_replicas = 1,
		.duplicate_window_s = 60,
		.publish_timeout_ms = 200,
		.connect_timeout_ms = 200,
		.publish_max_pending = 4,
	};
	struct de_fleet_pub p[3] = {
		{.msg_id = "a", .data = "{}", .len = 2, .rc = 0},
		{.msg_id = "b", .data = "{}", .len = 2, .rc = 0},
		{.msg_id = "c", .data = "{}", .len = 2, .rc = 0},
	};
	struct de_fleet *f = NULL;
	struct de_error e = {0};

	/* not waiting: an unreachable cluster is not an error at connect */
	assert_int_equal(de_fleet_connect(&s, false, &f, &e), 0);
	assert_false(de_fleet_connected(f));
	assert_int_equal(de_fleet_publish_many(f, DE_FLEET_ALERTS, p, 3, 0, &e), -EAGAIN);
	assert_int_equal(e.code, EAGAIN);
	assert_non_null(strstr(e.message, "not connected"));
	for (int i = 0; i < 3; i++) {
		assert_int_equal(p[i].rc, -EAGAIN);
		assert_false(p[i].duplicate);
	}
	assert_int_equal(de_fleet_publish_many(f, DE_FLEET_ALERTS, p, 0, 0, &e), 0);
	de_fleet_close(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kinds_and_subjects),
		cmocka_unit_test(test_host_id),
		cmocka_unit_test(test_settings),
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_verify),
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_seen),
		cmocka_unit_test(test_publish_many_unreachable),
		cmocka_unit_test(test_bundle),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
