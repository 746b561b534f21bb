/*
 * test_audit.c — the audit ledger on real SQLite files.
 *
 * Appends (single and in batches, checkpoints by count and by time), the
 * file's mode, the triggers, reading back, proofs for every entry checked
 * with merkle.c's verifier, and verify_chain against each tamper an
 * attacker with the sqlite3 library could do to the real file after
 * dropping the triggers: an edited payload, an edited hash, a deleted
 * entry, an inserted entry, two entries swapped, the tail truncated
 * (caught by a stored checkpoint, and by an exported one once the stored
 * ones are deleted too), the whole history rewritten with recomputed
 * hashes and tree (caught by an exported checkpoint's consistency proof),
 * a checkpoint signed by another key, a checkpoint altered after signing.
 * Bad input: a corrupt file, a foreign SQLite file, a newer schema, a key
 * with loose permissions, no key — each a clear error, the file untouched.
 */
#define DE_TEST_NAME "audit"
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemoneye/audit.h"
#include "daemoneye/blake3.h"
#include "testutil.h"

#define N 40 /* entries in the reference ledger; checkpoints every 10 */

static char key_path[PATH_MAX], pub_path[PATH_MAX], other_pub[PATH_MAX], ref_path[PATH_MAX];
static char *exported; /* the reference ledger's last checkpoint note */

static int64_t fake_now = 1700000000000;
static int64_t test_clock(void)
{
	return fake_now;
}

static void path_in(char *out, const char *name)
{
	snprintf(out, PATH_MAX, "%s/%s", tmpdir, name);
}

static struct de_audit *open_rw(const char *path, bool sign, uint64_t every)
{
	struct de_audit_config c = {.path = path,
				    .chain = {DE_AUDIT_BLAKE3, sign, key_path},
				    .origin = "test.host/daemoneye/audit",
				    .checkpoint_every_entries = every,
				    .now_ms = test_clock};
	struct de_audit *a = NULL;
	struct de_error err = {0};

	if (de_audit_open(&c, &a, &err) < 0)
		fail_msg("open %s: %s", path, err.message);
	return a;
}

static struct de_audit *open_ro(const char *path)
{
	struct de_audit_config c = {.path = path, .read_only = true};
	struct de_audit *a = NULL;
	struct de_error err = {0};

	if (de_audit_open(&c, &a, &err) < 0)
		fail_msg("open %s read-only: %s", path, err.message);
	return a;
}

static void append_n(struct de_audit *a, int from, int count)
{
	struct de_error err = {0};
	char payload[128];

	for (int i = from; i < from + count; i++) {
		struct de_audit_entry e = {.actor = i % 3 ? "agent" : "cli:uid=0",
					   .action = i % 2 ? "scan" : "rule.load",
					   .payload = payload};
		uint64_t seq = 0;
		snprintf(payload, sizeof(payload), "{\"i\":%d,\"note\":\"entry %d\"}", i, i);
		fake_now += 1000;
		if (de_audit_append(a, &e, &seq, &err) < 0)
			fail_msg("append %d: %s", i, err.message);
		assert_int_equal(seq, (uint64_t)i);
	}
}

static int setup(void **state)
{
	struct de_error err = {0};
	char other[PATH_MAX];

	if (tmpdir_setup(state) < 0)
		return -1;
	path_in(key_path, "audit.key");
	path_in(pub_path, "audit.pub");
	path_in(other, "other");
	snprintf(other_pub, sizeof(other_pub), "%s/audit.pub", other);
	path_in(ref_path, "ref.sqlite");
	if (mkdir(other, 0700) < 0 || de_checkpoint_keygen(tmpdir, &err) < 0 ||
	    de_checkpoint_keygen(other, &err) < 0) {
		fprintf(stderr, "setup: %s\n", err.message);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	free(exported);
	return tmpdir_teardown(state);
}

static void verify_with(const char *path, const char *pub, const char *note,
			struct de_audit_report *rep)
{
	struct de_audit_verify_opts o = {.checkpoint = note,
					 .checkpoint_len = note ? strlen(note) : 0};
	struct de_ckpt_key *k = NULL;
	struct de_error err = {0};
	struct de_audit *a = open_ro(path);

	if (pub)
		assert_int_equal(de_checkpoint_key_load_public(pub, &k, &err), 0);
	o.pubkey = k;
	if (de_audit_verify(a, &o, rep, &err) < 0)
		fail_msg("verify %s: %s", path, err.message);
	de_checkpoint_key_free(k);
	de_audit_close(a, NULL);
}

static void expect(const struct de_audit_report *rep, enum de_audit_problem p, uint64_t seq)
{
	if (rep->problem != p || rep->bad_seq != seq)
		fail_msg("want %s at %llu, got %s at %llu: %s", de_audit_problem_name(p),
			 (unsigned long long)seq, de_audit_problem_name(rep->problem),
			 (unsigned long long)rep->bad_seq, rep->detail);
	printf("# %s: %s\n", de_audit_problem_name(p), rep->detail);
}

/* The reference ledger: N entries in batches of 7, a signed checkpoint every 10. */
static void test_append_and_verify(void **state)
{
	struct de_audit_report rep;
	struct de_error err = {0};
	struct stat st;
	struct de_audit *a = open_rw(ref_path, true, 10);

	(void)state;
	assert_int_equal(stat(ref_path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	for (int i = 1; i <= N; i += 7) {
		int count = i + 7 > N + 1 ? N + 1 - i : 7;
		append_n(a, i, count);
		assert_int_equal(de_audit_pending(a), (size_t)count);
		assert_int_equal(de_audit_flush(a, &err), 0);
		assert_int_equal(de_audit_size(a), (uint64_t)(i + count - 1));
	}
	assert_int_equal(de_audit_latest_checkpoint(a, &exported, &err), 0);
	assert_non_null(strstr(exported, "test.host/daemoneye/audit\n40\n"));
	assert_int_equal(de_audit_close(a, &err), 0);
	verify_with(ref_path, pub_path, exported, &rep);
	expect(&rep, DE_AUDIT_INTACT, 0);
	assert_int_equal(rep.entries, N);
	/* stored at the flushes that passed 10 new entries (14, 28, 40) + the given one */
	assert_int_equal(rep.checkpoints, 4);
	assert_true(rep.signatures_checked);
	/* the file is not writable by others, the WAL neither */
	assert_int_equal(stat(ref_path, &st), 0);
	assert_int_equal(st.st_mode & 022, 0);
}

/* Every record checked against the documented encoding, its entry hash into a tree. */
struct collect {
	struct de_merkle_mem *m;
	int count;
	uint8_t prev[32];
};

static int cb(const struct de_audit_record *r, void *arg)
{
	struct collect *c = arg;
	uint8_t h[32];

	assert_int_equal(r->seq, (uint64_t)c->count + 1);
	de_blake3_hash(r->payload, strlen(r->payload), h);
	assert_memory_equal(h, r->payload_hash, 32);
	assert_memory_equal(c->prev, r->previous_hash, 32);
	/* version 1 || seq || ts || len actor || actor || len action || action || hashes */
	struct de_blake3_hasher b;
	uint8_t buf[8];
	de_blake3_init(&b);
	de_blake3_update(&b, "\x01", 1);
	for (int i = 0; i < 8; i++)
		buf[i] = (uint8_t)(r->seq >> (56 - 8 * i));
	de_blake3_update(&b, buf, 8);
	for (int i = 0; i < 8; i++)
		buf[i] = (uint8_t)((uint64_t)r->ts_ms >> (56 - 8 * i));
	de_blake3_update(&b, buf, 8);
	const char *s[2] = {r->actor, r->action};
	for (int k = 0; k < 2; k++) {
		uint32_t l = (uint32_t)strlen(s[k]);
		uint8_t lb[4] = {(uint8_t)(l >> 24), (uint8_t)(l >> 16), (uint8_t)(l >> 8),
				 (uint8_t)l};
		de_blake3_update(&b, lb, 4);
		de_blake3_update(&b, s[k], l);
	}
	de_blake3_update(&b, r->payload_hash, 32);
	de_blake3_update(&b, r->previous_hash, 32);
	de_blake3_finalize(&b, h, 32);
	assert_memory_equal(h, r->entry_hash, 32);
	memcpy(c->prev, r->entry_hash, 32);
	assert_int_equal(de_merkle_mem_append(c->m, r->entry_hash, 32, NULL), 0);
	c->count++;
	return 0;
}

static int count_cb(const struct de_audit_record *r, void *arg)
{
	(void)r;
	(*(int *)arg)++;
	return 0;
}

/* Reading back, and the root against an independent in-memory tree. */
static void test_read_and_prove(void **state)
{
	struct de_audit *a = open_ro(ref_path);
	struct de_merkle_mem *m = de_merkle_mem_new(&de_merkle_blake3);
	struct de_error err = {0};
	struct de_audit_filter f = {0};
	uint8_t proof[DE_MERKLE_MAX_PROOF][DE_MERKLE_HASH_LEN], leaf[32], root[32], mroot[32];
	struct de_merkle_blob pb[DE_MERKLE_MAX_PROOF];
	size_t n;

	(void)state;
	assert_non_null(m);
	assert_int_equal(de_audit_size(a), N);
	/* entry hashes recomputed here from the documented encoding */
	struct collect c = {m, 0, {0}};
	assert_int_equal(de_audit_query(a, &f, cb, &c, &err), 0);
	assert_int_equal(c.count, N);
	struct de_merkle_source src = de_merkle_mem_source(m);
	assert_int_equal(de_merkle_root(&src, N, mroot, &err), 0);
	assert_int_equal(de_audit_root(a, N, root, &err), 0);
	assert_memory_equal(root, mroot, 32);
	for (uint64_t size = 1; size <= N; size++) {
		assert_int_equal(de_audit_root(a, size, root, &err), 0);
		assert_int_equal(de_merkle_root(&src, size, mroot, &err), 0);
		assert_memory_equal(root, mroot, 32);
		for (uint64_t seq = 1; seq <= size; seq++) {
			assert_int_equal(
				de_audit_prove_inclusion(a, seq, size, proof, &n, leaf, &err), 0);
			de_merkle_proof_blobs(proof[0], n, pb);
			assert_int_equal(
				de_merkle_verify_inclusion(&de_merkle_blake3, seq - 1, size,
							   (struct de_merkle_blob){leaf, 32}, pb, n,
							   (struct de_merkle_blob){root, 32}, &err),
				0);
		}
		assert_int_equal(de_audit_prove_consistency(a, size, N, proof, &n, &err), 0);
		de_merkle_proof_blobs(proof[0], n, pb);
		assert_int_equal(de_merkle_root(&src, N, mroot, &err), 0);
		assert_int_equal(de_merkle_verify_consistency(&de_merkle_blake3, size, N, pb, n,
							      (struct de_merkle_blob){root, 32},
							      (struct de_merkle_blob){mroot, 32},
							      &err),
				 0);
	}
	assert_int_equal(de_audit_prove_inclusion(a, 0, N, proof, &n, NULL, &err), -EINVAL);
	assert_int_equal(de_audit_prove_inclusion(a, 1, N + 1, proof, &n, NULL, &err), -EINVAL);
	/* filters */
	f.action = "scan";
	f.actor = "agent";
	int hits = 0;
	assert_int_equal(de_audit_query(a, &f, count_cb, &hits, &err), 0);
	assert_int_equal(hits, 13); /* odd i not divisible by 3, 1..40 */
	/* read-only: no appends */
	struct de_audit_entry e = {.actor = "x", .action = "y"};
	assert_int_equal(de_audit_append(a, &e, NULL, &err), -EROFS);
	de_merkle_mem_free(m);
	de_audit_close(a, NULL);
}

/* ---- tampering through SQLite, as an attacker would ---------------------- */

static void copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC), out;
	ssize_t n;

	assert_true(in >= 0);
	unlink(to);
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	close(in);
	close(out);
}

/* A copy of the reference ledger with `sql` run on it after dropping every trigger. */
static void tampered(const char *name, const char *sql, char *path)
{
	static const char drop[] = "DROP TRIGGER entries_no_update; DROP TRIGGER entries_no_delete;"
				   "DROP TRIGGER entries_in_sequence;"
				   "DROP TRIGGER merkle_nodes_no_update;"
				   "DROP TRIGGER merkle_nodes_no_delete;"
				   "DROP TRIGGER checkpoints_no_update;"
				   "DROP TRIGGER checkpoints_no_delete;"
				   "PRAGMA ignore_check_constraints = ON;";
	sqlite3 *db;
	char *msg = NULL;

	path_in(path, name);
	copy_file(ref_path, path);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, drop, NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("tampering %s: %s", name, msg);
	sqlite3_close(db);
}

static void test_triggers_refuse(void **state)
{
	char path[PATH_MAX];
	sqlite3 *db;
	static const char *const sqls[] = {
		"UPDATE entries SET payload = '{}' WHERE seq = 3",
		"DELETE FROM entries WHERE seq = 40",
		"DELETE FROM entries",
		"INSERT INTO entries SELECT seq + 100, ts_ms, actor, action, payload, payload_hash,"
		" previous_hash, entry_hash FROM entries WHERE seq = 1",
		"UPDATE merkle_nodes SET hash = zeroblob(32)",
		"DELETE FROM checkpoints",
		"UPDATE meta SET value = 'x'",
	};

	(void)state;
	path_in(path, "triggers.sqlite");
	copy_file(ref_path, path);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	for (size_t i = 0; i < sizeof(sqls) / sizeof(sqls[0]); i++) {
		char *msg = NULL;
		if (sqlite3_exec(db, sqls[i], NULL, NULL, &msg) == SQLITE_OK)
			fail_msg("'%s' was allowed", sqls[i]);
		sqlite3_free(msg);
	}
	sqlite3_close(db);
	struct de_audit_report rep;
	verify_with(path, pub_path, NULL, &rep);
	expect(&rep, DE_AUDIT_INTACT, 0);
}

static void test_tamper_payload(void **state)
{
	char path[PATH_MAX];
	struct de_audit_report rep;

	(void)state;
	tampered("t-payload.sqlite",
		 "UPDATE entries SET payload = '{\"i\":7,\"note\":\"nothing\"}'"
		 " WHERE seq = 7",
		 path);
	verify_with(path, pub_path, NULL, &rep);
	expect(&rep, DE_AUDIT_PAYLOAD, 7);
	/* with the payload hash recomputed too, the entry hash gives it away */
	tampered("t-payload2.sqlite", "UPDATE entries SET payload = '{}' WHERE seq = 8", path);
	sqlite3 *db;
	uint8_t h[32];
	de_blake3_hash("{}", 2, h);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, "UPDATE entries SET payload_hash = ? WHERE seq = 8",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_blob(st, 1, h, 32, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
	verify_with(path, pub_path, NULL, &rep);
	expect(&rep, DE_AUDIT_ENTRY_HASH, 8);
}

static void test_tamper_hash(void **state)
{
	char path[PATH_MAX];
	struct de_audit_report rep;

	(void)state;
	tampered("t-hash.sqlite", "UPDATE entries SET entry_hash = zeroblob(32) WHERE seq = 9",
		 path);
	verify_with(path, pub_path, NULL, &rep);
	expect(&rep, DE_AUDIT_ENTRY_HASH, 9);
	tampered("t-hash-len.sqlite", "UPDATE entries SET previous_hash = x'00' WHERE seq = 2",
		 path);
	verify_with(path, pub_path, NULL, &rep);
	expect(&rep, DE_AUDIT_MALFORMED, 2);
}

static void test_tamper_deleted(void **state)
{
	char path[PATH_MAX];
	struct de_audit_report rep;

	(void)state;
	tampered("t-deleted.sqlite", "DELETE FROM entries WHERE seq = 5", path);
	verify_with(path, pub_path, NULL, &rep);
	expect(&rep, DE_AUDIT_GAP, 5);
	/* deleted and the rest renumbered: the next entry was written as another */
	tampered(
		"t-deleted2.sqlite",
		"DELETE FROM entries WHERE seq = 5; UPDATE entries SET seq = seq - 1 WHERE seq > 5",
		path);
	verify_with(path, pub_path, NULL, &rep);
	expect(&rep, DE_AUDIT_MOVED, 5);
}

/*
 * Insert entry `seq` with payload {} into the file at path, its hashes
 * right by the documented encoding and chained to entry seq - 1: what an
 * attacker who read docs/audit.md would write.
 */
static void forge_entry(const char *path, uint64_t seq, int64_t ts, const char *action)
{
	uint8_t prev[32], ph[32], eh[32];
	sqlite3_stmt *st;
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT entry_hash FROM entries WHERE seq = ?", -1,
					    &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)seq - 1);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	memcpy(prev, sqlite3_column_blob(st, 0), 32);
	sqlite3_finalize(st);
	de_blake3_hash("{}", 2, ph);
	de_audit_entry_hash(seq, ts, "agent", action, ph, prev, eh);
	assert_int_equal(sqlite3_prepare_v2(
				 db, "INSERT INTO entries VALUES (?, ?, 'agent', ?, '{}', ?, ?, ?)",
				 -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
	sqlite3_bind_int64(st, 2, ts);
	sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, ph, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, prev, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 6, eh, 32, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void test_tamper_inserted(void **state)
{
	char path[PATH_MAX];
	struct de_audit_report rep;

	(void)state;
	/* make room at 12 (negating first: seq is the primary key), forge 12 */
	tampered("t-inserted.sqlite",
		 "UPDATE entries SET seq = -(seq + 1) WHERE seq >= 12;"
		 "UPDATE entries SET seq = -seq WHERE seq < 0",
		 path);
	forge_entry(path, 12, 1700000011500, "rule.disable");
	verify_with(path, pub_path, NULL, &rep);
	expect(&rep, DE_AUDIT_MOVED, 13);
	/* a forged entry appended at the end: the stored tree does not have it */
	tampered("t-appended.sqlite", "SELECT 1", path);
	forge_entry(path, 41, 1700000099000, "scan");
	verify_with(path, pub_path, NULL, &rep);
	expect(&rep, DE_AUDIT_MERKLE, 41);
}

static void test_tamper_swapped(void **state)
{
	char path[PATH_MAX];
	struct de_audit_report rep;

	(void)state;
	tampered("t-swapped.sqlite",
		 "UPDATE entries SET seq = -1 WHERE seq = 20;"
		 "UPDATE entries SET seq = 20 WHERE seq = 21;"
		 "UPDATE entries SET seq = 21 WHERE seq = -1",
		 path);
	verify_with(path, pub_path, NULL, &rep);
	expect(&rep, DE_AUDIT_MOVED, 20);
}

static void test_tamper_truncated(void **state)
{
	char path[PATH_MAX];
	struct de_audit_report rep;

	(void)state;
	/* the stored checkpoint of 40 entries catches it */
	tampered("t-trunc.sqlite", "DELETE FROM entries WHERE seq > 33", path);
	verify_with(path, pub_path, NULL, &rep);
	expect(&rep, DE_AUDIT_TRUNCATED, 34);
	/* stored checkpoints removed too: the exported one catches it */
	tampered("t-trunc2.sqlite",
		 "DELETE FROM entries WHERE seq > 33; DELETE FROM checkpoints WHERE size > 33",
		 path);
	verify_with(path, pub_path, NULL, &rep);
	expect(&rep, DE_AUDIT_INTACT, 0); /* nothing on the host can tell */
	verify_with(path, pub_path, exported, &rep);
	expect(&rep, DE_AUDIT_TRUNCATED, 34);
}

/* The whole history rewritten with every hash and the tree recomputed. */
static void test_tamper_rewritten(void **state)
{
	char path[PATH_MAX];
	struct de_audit_report rep;
	struct de_error err = {0};

	(void)state;
	path_in(path, "t-rewritten.sqlite");
	/* the attacker has our code but not the key: no signed checkpoints */
	struct de_audit *a = open_rw(path, false, 0);
	append_n(a, 1, 2);
	struct de_audit_entry e = {.actor = "agent", .action = "scan", .payload = "{\"i\":3}"};
	assert_int_equal(de_audit_append(a, &e, NULL, &err), 0);
	append_n(a, 4, N - 3);
	assert_int_equal(de_audit_close(a, &err), 0);
	verify_with(path, pub_path, NULL, &rep);
	expect(&rep, DE_AUDIT_INTACT, 0); /* self-consistent */
	verify_with(path, pub_path, exported, &rep);
	expect(&rep, DE_AUDIT_REWRITTEN, N);
	/* the attacker's own stored checkpoints: refused by our key */
	tampered("t-rewritten-cp.sqlite", "SELECT 1", path);
	/* the original's checkpoints copied over a rewritten history */
	char path2[PATH_MAX];
	path_in(path2, "t-rewritten2.sqlite");
	a = open_rw(path2, false, 0);
	append_n(a, 1, 2);
	assert_int_equal(de_audit_append(a, &e, NULL, &err), 0);
	append_n(a, 4, N - 3);
	assert_int_equal(de_audit_close(a, &err), 0);
	sqlite3 *db;
	char sql[PATH_MAX + 128];
	assert_int_equal(sqlite3_open(path2, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql),
		 "ATTACH '%s' AS ref; INSERT INTO checkpoints SELECT * FROM ref.checkpoints;",
		 ref_path);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	verify_with(path2, pub_path, NULL, &rep);
	expect(&rep, DE_AUDIT_REWRITTEN, 14);
}

static void test_tamper_checkpoints(void **state)
{
	struct de_audit_report rep;

	(void)state;
	/* checked with another public key: every signature is "another key's" */
	verify_with(ref_path, other_pub, NULL, &rep);
	expect(&rep, DE_AUDIT_BAD_CHECKPOINT, 0);
	assert_non_null(strstr(rep.detail, "another key"));
	/* an exported note altered after signing: 40 -> 39 */
	char *alt = strdup(exported);
	char *p = strstr(alt, "\n40\n");
	assert_non_null(p);
	p[1] = '3';
	p[2] = '9';
	verify_with(ref_path, pub_path, alt, &rep);
	expect(&rep, DE_AUDIT_BAD_CHECKPOINT, 0);
	assert_non_null(strstr(rep.detail, "altered after signing"));
	/* without the key the signature cannot be checked, but the root still is */
	verify_with(ref_path, NULL, alt, &rep);
	expect(&rep, DE_AUDIT_REWRITTEN, 39);
	free(alt);
	/* a stored note edited in the file */
	char path[PATH_MAX];
	tampered("t-cp.sqlite",
		 "UPDATE checkpoints SET note = replace(note, '\n28\n', '\n27\n')"
		 " WHERE size = 28",
		 path);
	verify_with(path, pub_path, NULL, &rep);
	expect(&rep, DE_AUDIT_BAD_CHECKPOINT, 0);
}

/* ---- bad input ----------------------------------------------------------- */

static void file_bytes(const char *path, char *buf, size_t cap, size_t *n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	ssize_t r = read(fd, buf, cap);
	assert_true(r >= 0);
	*n = (size_t)r;
	close(fd);
}

static void test_bad_files(void **state)
{
	struct de_audit_config c = {.path = NULL, .origin = "o"};
	struct de_audit *a = NULL;
	struct de_error err = {0};
	char path[PATH_MAX], before[8192], after[8192];
	size_t nb, na;
	sqlite3 *db;

	(void)state;
	/* garbage */
	path_in(path, "garbage.sqlite");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(write(fd, "\x5a\xa5", 2), 2);
	close(fd);
	file_bytes(path, before, sizeof(before), &nb);
	c.path = path;
	for (int ro = 0; ro < 2; ro++) {
		c.read_only = ro;
		assert_int_not_equal(de_audit_open(&c, &a, &err), 0);
		assert_int_equal(err.category, DE_ERR_DATABASE);
		printf("# garbage: %s\n", err.message);
	}
	file_bytes(path, after, sizeof(after), &na);
	assert_int_equal(na, nb);
	assert_memory_equal(before, after, nb);
	/* a foreign SQLite file */
	path_in(path, "foreign.sqlite");
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES (1)", NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);
	chmod(path, 0600);
	file_bytes(path, before, sizeof(before), &nb);
	c.read_only = false;
	assert_int_equal(de_audit_open(&c, &a, &err), -EPROTO);
	assert_non_null(strstr(err.message, "not a daemoneye audit ledger"));
	file_bytes(path, after, sizeof(after), &na);
	assert_int_equal(na, nb);
	assert_memory_equal(before, after, nb);
	/* a newer schema */
	char newer[PATH_MAX];
	path_in(newer, "newer.sqlite");
	copy_file(ref_path, newer);
	assert_int_equal(sqlite3_open(newer, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 9", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	c.path = newer;
	assert_int_equal(de_audit_open(&c, &a, &err), -EPROTO);
	assert_non_null(strstr(err.message, "newer"));
	/* missing (read-only) */
	path_in(path, "missing.sqlite");
	c.path = path;
	c.read_only = true;
	assert_int_equal(de_audit_open(&c, &a, &err), -ENOENT);
	assert_int_equal(access(path, F_OK), -1);
	/* writable by others */
	path_in(path, "loose.sqlite");
	copy_file(ref_path, path);
	chmod(path, 0666);
	c.read_only = false;
	assert_int_equal(de_audit_open(&c, &a, &err), -EPERM);
}

static void test_bad_keys(void **state)
{
	char path[PATH_MAX];
	struct de_audit_config c = {.chain = {DE_AUDIT_BLAKE3, true, key_path}, .origin = "o"};
	struct de_audit *a = NULL;
	struct de_error err = {0};

	(void)state;
	path_in(path, "keyless.sqlite");
	c.path = path;
	/* loose permissions: refused, and no ledger is created */
	assert_int_equal(chmod(key_path, 0644), 0);
	assert_int_equal(de_audit_open(&c, &a, &err), -EPERM);
	assert_int_equal(err.category, DE_ERR_CRYPTO);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(chmod(key_path, 0600), 0);
	/* no key configured */
	c.chain.private_key_path = NULL;
	assert_int_equal(de_audit_open(&c, &a, &err), -ENOKEY);
	/* a public key where the private one should be */
	c.chain.private_key_path = pub_path;
	assert_int_equal(chmod(pub_path, 0600), 0);
	assert_int_equal(de_audit_open(&c, &a, &err), -EINVAL);
	assert_int_equal(err.category, DE_ERR_CRYPTO);
	assert_int_equal(chmod(pub_path, 0644), 0);
	assert_int_equal(access(path, F_OK), -1);
	/* no signer at all: explicit checkpoints say why */
	c.chain.enable_signatures = false;
	assert_int_equal(de_audit_open(&c, &a, &err), 0);
	assert_int_equal(de_audit_checkpoint(a, NULL, &err), -ENOKEY);
	de_audit_close(a, NULL);
}

static void test_bad_entries(void **state)
{
	char path[PATH_MAX], big[DE_AUDIT_PAYLOAD_MAX + 16];
	struct de_error err = {0};
	struct de_audit *a;
	static const struct de_audit_entry bad[] = {
		{.actor = "", .action = "a"},
		{.actor = NULL, .action = "a"},
		{.actor = "a", .action = "x\ny"},
		{.actor = "\xff\xfe", .action = "a"},
		{.actor = "a", .action = "a", .payload = "{not json"},
		{.actor = "a", .action = "a", .payload = "{} {}"},
	};

	(void)state;
	path_in(path, "entries.sqlite");
	a = open_rw(path, false, 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_not_equal(de_audit_append(a, &bad[i], NULL, &err), 0);
		assert_int_equal(err.category, DE_ERR_VALIDATION);
	}
	memset(big, ' ', sizeof(big) - 1);
	big[0] = '1';
	big[sizeof(big) - 1] = '\0';
	struct de_audit_entry e = {.actor = "a", .action = "a", .payload = big};
	assert_int_equal(de_audit_append(a, &e, NULL, &err), -EFBIG);
	assert_int_equal(de_audit_pending(a), 0);
	/* a NULL payload is {} and a given timestamp is kept */
	e.payload = NULL;
	e.ts_ms = 42;
	assert_int_equal(de_audit_append(a, &e, NULL, &err), 0);
	assert_int_equal(de_audit_close(a, &err), 0); /* close flushes */
	a = open_ro(path);
	assert_int_equal(de_audit_size(a), 1);
	de_audit_close(a, NULL);
}

/* Checkpoints by time, with the clock injected; many entries in one batch. */
static void test_checkpoint_by_time_and_batches(void **state)
{
	char path[PATH_MAX];
	struct de_audit_config c = {.chain = {DE_AUDIT_BLAKE3, true, key_path},
				    .origin = "t",
				    .checkpoint_interval_s = 60,
				    .now_ms = test_clock};
	struct de_audit *a;
	struct de_error err = {0};
	struct de_audit_report rep;
	char *note = NULL;

	(void)state;
	path_in(path, "time.sqlite");
	c.path = path;
	assert_int_equal(de_audit_open(&c, &a, &err), 0);
	append_n(a, 1, 10); /* 10 s of fake time */
	assert_int_equal(de_audit_flush(a, &err), 0);
	assert_int_equal(de_audit_latest_checkpoint(a, &note, &err), -ENOENT);
	fake_now += 60000;
	append_n(a, 11, 1);
	assert_int_equal(de_audit_flush(a, &err), 0);
	assert_int_equal(de_audit_latest_checkpoint(a, &note, &err), 0);
	assert_non_null(strstr(note, "t\n11\n"));
	free(note);
	/* 10,000 entries in batches of 2,500 */
	for (int b = 0; b < 4; b++) {
		append_n(a, 12 + b * 2500, 2500);
		assert_int_equal(de_audit_flush(a, &err), 0);
	}
	assert_int_equal(de_audit_size(a), 10011);
	assert_int_equal(de_audit_close(a, &err), 0);
	verify_with(path, pub_path, NULL, &rep);
	expect(&rep, DE_AUDIT_INTACT, 0);
	assert_int_equal(rep.entries, 10011);
}

/*
 * de_audit_commit commits without a checkpoint even when one is due (the
 * agent between cycles); the next de_audit_flush makes it, and
 * de_audit_unattested counts what no checkpoint covers meanwhile.
 */
static void test_commit_without_checkpoint(void **state)
{
	char path[PATH_MAX];
	struct de_audit *a;
	struct de_error err = {0};
	char *note = NULL;

	(void)state;
	path_in(path, "commit.sqlite");
	a = open_rw(path, true, 1);
	append_n(a, 1, 3);
	assert_int_equal(de_audit_commit(a, &err), 0);
	assert_int_equal(de_audit_size(a), 3);
	assert_int_equal(de_audit_pending(a), 0);
	assert_int_equal(de_audit_unattested(a), 3);
	assert_int_equal(de_audit_latest_checkpoint(a, &note, &err), -ENOENT);
	assert_int_equal(de_audit_flush(a, &err), 0); /* nothing queued: the checkpoint only */
	assert_int_equal(de_audit_unattested(a), 0);
	assert_int_equal(de_audit_latest_checkpoint(a, &note, &err), 0);
	assert_non_null(strstr(note, "\n3\n"));
	free(note);
	assert_int_equal(de_audit_close(a, &err), 0);
}

/* Two writers on one file (agent and CLI): each flush chains after the other's entries. */
static void test_two_writers(void **state)
{
	char path[PATH_MAX];
	struct de_audit_report rep;
	struct de_error err = {0};
	uint64_t seq;

	(void)state;
	path_in(path, "two.sqlite");
	struct de_audit *a = open_rw(path, true, 0), *b = open_rw(path, false, 0);
	append_n(a, 1, 3);
	assert_int_equal(de_audit_flush(a, &err), 0);
	struct de_audit_entry e = {.actor = "cli:uid=0", .action = "rule.disable"};
	assert_int_equal(de_audit_append(b, &e, &seq, &err), 0);
	assert_int_equal(seq, 1); /* provisional: b has not seen a's entries yet */
	assert_int_equal(de_audit_append(b, &e, &seq, &err), 0);
	assert_int_equal(de_audit_flush(b, &err), 0);
	assert_int_equal(de_audit_size(b), 5);
	append_n(a, 4, 1); /* provisional seq 4 */
	assert_int_equal(de_audit_flush(a, &err), 0);
	assert_int_equal(de_audit_size(a), 6);
	assert_int_equal(de_audit_checkpoint(a, NULL, &err), 0);
	assert_int_equal(de_audit_close(b, &err), 0);
	assert_int_equal(de_audit_close(a, &err), 0);
	verify_with(path, pub_path, NULL, &rep);
	expect(&rep, DE_AUDIT_INTACT, 0);
	assert_int_equal(rep.entries, 6);
	assert_int_equal(rep.checkpoints, 1);
}

/* Run sql on the file at path as an attacker would: every trigger dropped first. */
static void attack(const char *path, const char *sql)
{
	sqlite3 *db;
	char *msg = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db,
			 "DROP TRIGGER entries_no_update; DROP TRIGGER entries_no_delete;"
			 "DROP TRIGGER merkle_nodes_no_update; DROP TRIGGER prunes_no_delete;"
			 "DROP TRIGGER prunes_no_update;",
			 NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("attacking %s: %s", path, msg);
	sqlite3_close(db);
}

/* The ts_ms of entry seq in the file at path. */
static int64_t entry_ts(const char *path, int seq)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t ts;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_prepare_v2(db, "SELECT ts_ms FROM entries WHERE seq = ?", -1, &st, NULL),
		SQLITE_OK);
	sqlite3_bind_int(st, 1, seq);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	ts = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return ts;
}

/*
 * Retention: only what the latest signed checkpoint covers and is old
 * enough, a batch at a time, never the last entry; verify still holds
 * (root, every checkpoint, the exported one) and says what was pruned;
 * proofs of pruned entries still come; deleting beyond the pruned prefix is
 * refused; and an attack on the pruned prefix (a subtree edited, the prune
 * record removed, a kept entry deleted) is caught.  A ledger without a
 * checkpoint prunes nothing.
 */
static void test_retention(void **state)
{
	char path[PATH_MAX], bad[PATH_MAX];
	uint8_t proof[DE_MERKLE_MAX_PROOF][DE_MERKLE_HASH_LEN], leaf[32], ref_root[32];
	struct de_audit_report rep;
	struct de_audit_prune pr;
	struct de_error err = {0};
	struct de_audit *a;
	size_t n;

	(void)state;
	verify_with(ref_path, pub_path, exported, &rep);
	memcpy(ref_root, rep.root, 32);
	path_in(path, "retention.sqlite");
	copy_file(ref_path, path);
	int64_t before = entry_ts(path, 21); /* entries 1..20 are older */
	a = open_rw(path, true, 10);
	assert_int_equal(de_audit_prune(a, before, 5, &pr, &err), 0);
	assert_int_equal(pr.upto, 5);
	assert_int_equal(pr.removed, 5);
	assert_int_equal(pr.covered_by, N);
	assert_int_equal(de_audit_prune(a, before, 0, &pr, &err), 0);
	assert_int_equal(pr.upto, 20);
	assert_int_equal(pr.removed, 15);
	assert_int_equal(de_audit_prune(a, before, 0, &pr, &err), 0);
	assert_int_equal(pr.removed, 0);
	/* a pruned entry's proof still comes from the tree */
	assert_int_equal(de_audit_prove_inclusion(a, 3, N, proof, &n, leaf, &err), 0);
	/* everything old: the checkpoint and the last entry still bound it */
	assert_int_equal(de_audit_prune(a, INT64_MAX, 0, &pr, &err), 0);
	assert_int_equal(pr.upto, N - 1);
	de_audit_close(a, NULL);
	verify_with(path, pub_path, exported, &rep);
	expect(&rep, DE_AUDIT_INTACT, 0);
	assert_int_equal(rep.pruned, N - 1);
	assert_int_equal(rep.entries, N);
	assert_memory_equal(rep.root, ref_root, 32);

	/* the ledger goes on: appends, a checkpoint, a further prune */
	a = open_rw(path, true, 10);
	append_n(a, N + 1, 12);
	assert_int_equal(de_audit_flush(a, &err), 0);
	assert_int_equal(de_audit_prune(a, INT64_MAX, 0, &pr, &err), 0);
	assert_int_equal(pr.upto, N + 12 - 1);
	de_audit_close(a, NULL);
	verify_with(path, pub_path, exported, &rep);
	expect(&rep, DE_AUDIT_INTACT, 0);
	assert_int_equal(rep.entries, N + 12);

	/* the triggers: only the pruned prefix may go */
	{
		sqlite3 *db;
		char *msg = NULL;
		assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
		assert_int_not_equal(sqlite3_exec(db, "DELETE FROM entries", NULL, NULL, &msg),
				     SQLITE_OK);
		sqlite3_free(msg);
		msg = NULL;
		assert_int_not_equal(sqlite3_exec(db, "DELETE FROM prunes", NULL, NULL, &msg),
				     SQLITE_OK);
		sqlite3_free(msg);
		sqlite3_close(db);
	}

	/* attacks on a pruned ledger */
	path_in(path, "retention2.sqlite");
	copy_file(ref_path, path);
	a = open_rw(path, true, 10);
	assert_int_equal(de_audit_prune(a, before, 0, &pr, &err), 0);
	de_audit_close(a, NULL);
	path_in(bad, "retention-leaf.sqlite");
	copy_file(path, bad);
	attack(bad, "UPDATE merkle_nodes SET hash = zeroblob(32) WHERE key = (SELECT MIN(key) FROM "
		    "merkle_nodes)");
	verify_with(bad, pub_path, NULL, &rep);
	assert_int_not_equal(rep.problem, DE_AUDIT_INTACT);
	printf("# a pruned subtree edited: %s\n", rep.detail);
	path_in(bad, "retention-record.sqlite");
	copy_file(path, bad);
	attack(bad, "DELETE FROM prunes");
	verify_with(bad, pub_path, NULL, &rep);
	expect(&rep, DE_AUDIT_GAP, 1);
	path_in(bad, "retention-kept.sqlite");
	copy_file(path, bad);
	attack(bad, "DELETE FROM entries WHERE seq = 21");
	verify_with(bad, pub_path, NULL, &rep);
	expect(&rep, DE_AUDIT_GAP, 21);

	/* a schema-1 ledger (before retention): read as it is, migrated when written */
	path_in(path, "retention-v1.sqlite");
	copy_file(ref_path, path);
	attack(path, "DROP TABLE prunes;"
		     " CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries BEGIN"
		     " SELECT RAISE(ABORT, 'append-only'); END; PRAGMA user_version = 1;");
	verify_with(path, pub_path, exported, &rep);
	expect(&rep, DE_AUDIT_INTACT, 0);
	a = open_rw(path, true, 10);
	assert_int_equal(de_audit_prune(a, before, 0, &pr, &err), 0);
	assert_int_equal(pr.upto, 20);
	de_audit_close(a, NULL);
	verify_with(path, pub_path, exported, &rep);
	expect(&rep, DE_AUDIT_INTACT, 0);
	assert_int_equal(rep.pruned, 20);

	/* no checkpoint: nothing is removed */
	path_in(path, "retention-unsigned.sqlite");
	a = open_rw(path, false, 0);
	append_n(a, 1, 5);
	assert_int_equal(de_audit_flush(a, &err), 0);
	assert_int_equal(de_audit_prune(a, INT64_MAX, 0, &pr, &err), 0);
	assert_int_equal(pr.upto, 0);
	assert_int_equal(pr.covered_by, 0);
	de_audit_close(a, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_and_verify),
		cmocka_unit_test(test_read_and_prove),
		cmocka_unit_test(test_triggers_refuse),
		cmocka_unit_test(test_tamper_payload),
		cmocka_unit_test(test_tamper_hash),
		cmocka_unit_test(test_tamper_deleted),
		cmocka_unit_test(test_tamper_inserted),
		cmocka_unit_test(test_tamper_swapped),
		cmocka_unit_test(test_tamper_truncated),
		cmocka_unit_test(test_tamper_rewritten),
		cmocka_unit_test(test_tamper_checkpoints),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_bad_keys),
		cmocka_unit_test(test_bad_entries),
		cmocka_unit_test(test_checkpoint_by_time_and_batches),
		cmocka_unit_test(test_commit_without_checkpoint),
		cmocka_unit_test(test_two_writers),
		cmocka_unit_test(test_retention),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
