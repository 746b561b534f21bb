/*
 * audit.c — the audit ledger (see include/daemoneye/audit.h and
 * docs/audit.md): its SQLite file and schema, the hash chain, batched
 * appends with the Merkle subtrees each entry completes, checkpoints, the
 * proofs, retention and reading for `audit log`; verify_chain is in
 * audit_verify.c (audit_int.h holds what they share).
 *
 * The Merkle tree's perfect subtrees live in `merkle_nodes`, keyed by
 * de_merkle_node_key(); the in-memory frontier (the right edge) is loaded
 * from them at open, so the root is O(log n) hashes and a proof O(log n)
 * primary-key lookups.  Verification never trusts them: it recomputes the
 * tree from the entries and compares.
 */
#include "daemoneye/audit.h"
#include "daemoneye/base64.h"
#include "daemoneye/blake3.h"
#include "daemoneye/clock.h"
#include "daemoneye/text.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit_int.h"

static const char *const problem_names[DE_AUDIT_PROBLEM_MAX] = {
	[DE_AUDIT_INTACT] = "intact",
	[DE_AUDIT_MALFORMED] = "malformed",
	[DE_AUDIT_GAP] = "gap",
	[DE_AUDIT_PAYLOAD] = "payload",
	[DE_AUDIT_MOVED] = "moved",
	[DE_AUDIT_ENTRY_HASH] = "entry_hash",
	[DE_AUDIT_LINK] = "link",
	[DE_AUDIT_MERKLE] = "merkle",
	[DE_AUDIT_TRUNCATED] = "truncated",
	[DE_AUDIT_REWRITTEN] = "rewritten",
	[DE_AUDIT_BAD_CHECKPOINT] = "bad_checkpoint",
};

const char *de_audit_problem_name(enum de_audit_problem p)
{
	if ((int)p < 0 || p >= DE_AUDIT_PROBLEM_MAX)
		return "?";
	return problem_names[p];
}

int audit_db_fail(struct de_audit *a, struct de_error *err, const char *what)
{
	int code = sqlite3_errcode(a->db);
	int e = code == SQLITE_NOTADB || code == SQLITE_CORRUPT ? EBADMSG
		: code == SQLITE_READONLY			? EROFS
		: code == SQLITE_FULL				? ENOSPC
		: code == SQLITE_BUSY || code == SQLITE_LOCKED	? EBUSY
		: code == SQLITE_CANTOPEN			? ENOENT
								: EIO;
	return de_error_set(err, DE_ERR_DATABASE, e, "audit ledger %s: %s: %s", a->path, what,
			    sqlite3_errmsg(a->db));
}

static int exec_sql(struct de_audit *a, const char *sql, struct de_error *err)
{
	if (sqlite3_exec(a->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return audit_db_fail(a, err, "SQL failed");
	return 0;
}

/* ---- the canonical encoding ---------------------------------------------- */

static void put_be(struct de_blake3_hasher *h, uint64_t v, int bytes)
{
	uint8_t b[8];
	for (int i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
	de_blake3_update(h, b, (size_t)bytes);
}

static void put_str(struct de_blake3_hasher *h, const char *s)
{
	size_t n = strlen(s);
	put_be(h, n, 4);
	de_blake3_update(h, s, n);
}

void de_audit_entry_hash(uint64_t seq, int64_t ts_ms, const char *actor, const char *action,
			 const uint8_t payload_hash[32], const uint8_t previous_hash[32],
			 uint8_t out[32])
{
	struct de_blake3_hasher h;
	uint8_t version = DE_AUDIT_FORMAT_VERSION;

	de_blake3_init(&h);
	de_blake3_update(&h, &version, 1);
	put_be(&h, seq, 8);
	put_be(&h, (uint64_t)ts_ms, 8);
	put_str(&h, actor);
	put_str(&h, action);
	de_blake3_update(&h, payload_hash, 32);
	de_blake3_update(&h, previous_hash, 32);
	de_blake3_finalize(&h, out, 32);
}

/* ---- the Merkle tree in SQLite ------------------------------------------- */

int audit_node_get(void *arg, unsigned level, uint64_t index, uint8_t out[DE_MERKLE_HASH_LEN],
		   struct de_error *err)
{
	struct de_audit *a = arg;
	sqlite3_stmt *st = a->get_node;
	int rc;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)de_merkle_node_key(level, index));
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_BLOB &&
	    sqlite3_column_bytes(st, 0) == DE_MERKLE_HASH_LEN) {
		memcpy(out, sqlite3_column_blob(st, 0), DE_MERKLE_HASH_LEN);
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return audit_db_fail(a, err, "reading the Merkle tree");
	return de_error_set(err, DE_ERR_DATABASE, EBADMSG,
			    "audit ledger %s: Merkle subtree (level %u, index %llu) is %s (run "
			    "daemoneye-cli audit verify)",
			    a->path, level, (unsigned long long)index,
			    rc == SQLITE_ROW ? "malformed" : "missing");
}

struct de_merkle_source audit_tree_source(struct de_audit *a)
{
	struct de_merkle_source s = {&de_merkle_blake3, audit_node_get, a};
	return s;
}

static int node_put(void *arg, unsigned level, uint64_t index,
		    const uint8_t hash[DE_MERKLE_HASH_LEN], struct de_error *err)
{
	struct de_audit *a = arg;
	sqlite3_stmt *st = a->ins_node;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)de_merkle_node_key(level, index));
	sqlite3_bind_blob(st, 2, hash, DE_MERKLE_HASH_LEN, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : audit_db_fail(a, err, "storing a Merkle subtree");
}

/* ---- settings ------------------------------------------------------------ */

static int dup_opt(const struct de_config *c, const char *key, char **out, struct de_error *err)
{
	const char *v;
	int rc = de_config_get_str(c, key, &v, err);

	if (rc < 0)
		return rc;
	*out = NULL;
	if (v && *v)
		return de_expand_home(v, out, err);
	return 0;
}

int de_audit_settings_load(const struct de_config *c, struct de_audit_settings *out,
			   struct de_error *err)
{
	struct de_audit_settings s = {0};
	const char *origin;
	char *state = NULL;
	int rc;

	if ((rc = de_config_get_bool(c, "audit.enabled", &s.enabled, err)) < 0 ||
	    (rc = de_config_get_bool(c, "audit.enable_signatures", &s.enable_signatures, err)) <
		    0 ||
	    (rc = de_config_get_u64(c, "audit.checkpoint_every_entries",
				    &s.checkpoint_every_entries, err)) < 0 ||
	    (rc = de_config_get_u64(c, "audit.checkpoint_interval_s", &s.checkpoint_interval_s,
				    err)) < 0 ||
	    (rc = de_config_get_u64(c, "audit.retention_days", &s.retention_days, err)) < 0 ||
	    (rc = dup_opt(c, "audit.path", &s.path, err)) < 0 ||
	    (rc = dup_opt(c, "audit.private_key_path", &s.private_key_path, err)) < 0 ||
	    (rc = dup_opt(c, "audit.public_key_path", &s.public_key_path, err)) < 0 ||
	    (rc = de_config_get_str(c, "audit.origin", &origin, err)) < 0)
		goto fail;
	if (!s.path) {
		if ((rc = de_config_state_dir(c, &state, err)) < 0)
			goto fail;
		if (asprintf(&s.path, "%s/audit.sqlite", state) < 0) {
			s.path = NULL;
			rc = de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
			goto fail;
		}
	}
	if (origin && *origin) {
		s.origin = strdup(origin);
	} else {
		char host[HOST_NAME_MAX + 1] = "localhost";
		gethostname(host, sizeof(host) - 1);
		host[HOST_NAME_MAX] = '\0';
		if (asprintf(&s.origin, "%s/daemoneye/audit", host) < 0)
			s.origin = NULL;
	}
	if (!s.origin) {
		rc = de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
		goto fail;
	}
	free(state);
	*out = s;
	return 0;
fail:
	free(state);
	de_audit_settings_clear(&s);
	return rc;
}

void de_audit_settings_clear(struct de_audit_settings *s)
{
	if (!s)
		return;
	free(s->path);
	free(s->origin);
	free(s->private_key_path);
	free(s->public_key_path);
	memset(s, 0, sizeof(*s));
}

void de_audit_settings_config(const struct de_audit_settings *s, bool read_only,
			      struct de_audit_config *out)
{
	struct de_audit_config c = {
		.path = s->path,
		.read_only = read_only,
		.chain = {DE_AUDIT_BLAKE3, s->enable_signatures, s->private_key_path},
		.origin = s->origin,
		.checkpoint_every_entries = s->checkpoint_every_entries,
		.checkpoint_interval_s = s->checkpoint_interval_s,
	};
	*out = c;
}

/* ---- open and close ------------------------------------------------------ */

static const char schema_sql[] =
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE entries("
	" seq INTEGER PRIMARY KEY CHECK (seq >= 1),"
	" ts_ms INTEGER NOT NULL,"
	" actor TEXT NOT NULL,"
	" action TEXT NOT NULL,"
	" payload TEXT NOT NULL,"
	" payload_hash BLOB NOT NULL,"
	" previous_hash BLOB NOT NULL,"
	" entry_hash BLOB NOT NULL);"
	"CREATE TABLE merkle_nodes(key INTEGER PRIMARY KEY, hash BLOB NOT NULL);"
	"CREATE TABLE checkpoints(id INTEGER PRIMARY KEY, size INTEGER NOT NULL,"
	" root BLOB NOT NULL, ts_ms INTEGER NOT NULL, note TEXT NOT NULL);"
	/* append-only: nothing is ever updated or deleted, entries come in order */
	"CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries"
	" BEGIN SELECT RAISE(ABORT, 'audit ledger is append-only: UPDATE refused'); END;"
	"CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries"
	" BEGIN SELECT RAISE(ABORT, 'audit ledger is append-only: DELETE refused'); END;"
	"CREATE TRIGGER entries_in_sequence BEFORE INSERT ON entries"
	" WHEN NEW.seq IS NOT (SELECT IFNULL(MAX(seq), 0) + 1 FROM entries)"
	" BEGIN SELECT RAISE(ABORT, 'audit entries are appended in sequence'); END;"
	"CREATE TRIGGER merkle_nodes_no_update BEFORE UPDATE ON merkle_nodes"
	" BEGIN SELECT RAISE(ABORT, 'audit ledger is append-only: UPDATE refused'); END;"
	"CREATE TRIGGER merkle_nodes_no_delete BEFORE DELETE ON merkle_nodes"
	" BEGIN SELECT RAISE(ABORT, 'audit ledger is append-only: DELETE refused'); END;"
	"CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints"
	" BEGIN SELECT RAISE(ABORT, 'audit ledger is append-only: UPDATE refused'); END;"
	"CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints"
	" BEGIN SELECT RAISE(ABORT, 'audit ledger is append-only: DELETE refused'); END;"
	"CREATE TRIGGER meta_no_update BEFORE UPDATE ON meta"
	" BEGIN SELECT RAISE(ABORT, 'audit ledger is append-only: UPDATE refused'); END;"
	"CREATE TRIGGER meta_no_delete BEFORE DELETE ON meta"
	" BEGIN SELECT RAISE(ABORT, 'audit ledger is append-only: DELETE refused'); END;"
	"INSERT INTO meta VALUES('format', '" FORMAT_NAME "'), ('hash', 'blake3'),"
	" ('entry_format', '1');"
	"PRAGMA user_version = 1;";

/*
 * Schema 2: retention.  A prune removes the entries of a prefix that a
 * signed checkpoint covers; their leaves stay in merkle_nodes (so roots and
 * proofs are as before) and `prunes` records each prune with the last
 * removed entry's hash, which the first kept entry links to.  Deleting
 * entries is refused but for a recorded pruned prefix.
 */
static const char migrate_2_sql[] =
	"CREATE TABLE prunes(id INTEGER PRIMARY KEY, upto INTEGER NOT NULL,"
	" last_hash BLOB NOT NULL, covered_by INTEGER NOT NULL, ts_ms INTEGER NOT NULL);"
	"CREATE TRIGGER prunes_no_update BEFORE UPDATE ON prunes"
	" BEGIN SELECT RAISE(ABORT, 'audit ledger is append-only: UPDATE refused'); END;"
	"CREATE TRIGGER prunes_no_delete BEFORE DELETE ON prunes"
	" BEGIN SELECT RAISE(ABORT, 'audit ledger is append-only: DELETE refused'); END;"
	"CREATE TRIGGER prunes_forward BEFORE INSERT ON prunes"
	" WHEN NEW.upto <= (SELECT IFNULL(MAX(upto), 0) FROM prunes)"
	" OR NEW.upto > (SELECT IFNULL(MAX(size), 0) FROM checkpoints)"
	" BEGIN SELECT RAISE(ABORT, 'a prune goes forward, within a checkpoint'); END;"
	"DROP TRIGGER entries_no_delete;"
	"CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries"
	" WHEN OLD.seq > (SELECT IFNULL(MAX(upto), 0) FROM prunes)"
	" BEGIN SELECT RAISE(ABORT, 'audit ledger is append-only: DELETE refused'); END;"
	"PRAGMA user_version = 2;";

static int prepare(struct de_audit *a, const char *sql, sqlite3_stmt **st, struct de_error *err)
{
	if (sqlite3_prepare_v3(a->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
		return audit_db_fail(a, err, "preparing a statement");
	return 0;
}

/* One integer from a query (0 when it returns no row or NULL). */
static int query_i64(struct de_audit *a, const char *sql, int64_t *out, struct de_error *err)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK)
		return audit_db_fail(a, err, "reading the ledger");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		*out = 0;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return audit_db_fail(a, err, "reading the ledger");
	return 0;
}

/* Is this our file, at a version we know?  Creates the schema in an empty writable one. */
static int check_schema(struct de_audit *a, struct de_error *err)
{
	int64_t version = 0, tables = 0;
	int rc;

	if (query_i64(a, "PRAGMA user_version", &version, err) < 0 ||
	    query_i64(a, "SELECT count(*) FROM sqlite_master", &tables, err) < 0)
		return de_error_prefix(err, "not an SQLite database or corrupt (left untouched): ");
	if (version == 0 && tables == 0) {
		if (a->read_only)
			return de_error_set(err, DE_ERR_DATABASE, ENOENT,
					    "audit ledger %s is empty (nothing recorded yet)",
					    a->path);
		if ((rc = exec_sql(a, "PRAGMA journal_mode=WAL", err)) < 0 ||
		    (rc = exec_sql(a, "BEGIN IMMEDIATE", err)) < 0)
			return rc;
		if ((rc = exec_sql(a, schema_sql, err)) < 0 ||
		    (rc = exec_sql(a, migrate_2_sql, err)) < 0) {
			sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
			return rc;
		}
		return exec_sql(a, "COMMIT", err);
	}
	if (version > DE_AUDIT_SCHEMA_VERSION)
		return de_error_set(err, DE_ERR_DATABASE, EPROTO,
				    "audit ledger %s has schema version %lld, newer than this "
				    "daemoneye knows (%d): refused, left untouched",
				    a->path, (long long)version, DE_AUDIT_SCHEMA_VERSION);
	sqlite3_stmt *st = NULL;
	bool ours = false;
	if (version >= 1 &&
	    sqlite3_prepare_v2(a->db, "SELECT value FROM meta WHERE key = 'format'", -1, &st,
			       NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		ours = strcmp((const char *)sqlite3_column_text(st, 0), FORMAT_NAME) == 0;
	sqlite3_finalize(st);
	if (!ours)
		return de_error_set(err, DE_ERR_DATABASE, EPROTO,
				    "%s is an SQLite database but not a daemoneye audit ledger: "
				    "refused, left untouched",
				    a->path);
	if (version < 2 && !a->read_only) {
		/* schema 1 (no retention): migrated in place, atomically */
		if ((rc = exec_sql(a, "BEGIN IMMEDIATE", err)) < 0)
			return rc;
		if (exec_sql(a, migrate_2_sql, err) < 0) {
			sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
			return de_error_prefix(err, "cannot migrate the ledger to schema 2: ");
		}
		return exec_sql(a, "COMMIT", err);
	}
	return 0;
}

/*
 * The ledger's pruned prefix: *upto (0: nothing pruned) and the hash of
 * entry *upto (last, when upto > 0).  A schema-1 ledger has none.
 */
int audit_prune_state(struct de_audit *a, uint64_t *upto, uint8_t last[32], struct de_error *err)
{
	sqlite3_stmt *st;
	int64_t has = 0;
	int rc;

	*upto = 0;
	if ((rc = query_i64(a,
			    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = "
			    "'prunes'",
			    &has, err)) < 0 ||
	    !has)
		return rc;
	if (sqlite3_prepare_v2(a->db,
			       "SELECT upto, last_hash FROM prunes ORDER BY upto DESC LIMIT 1", -1,
			       &st, NULL) != SQLITE_OK)
		return audit_db_fail(a, err, "reading the prunes");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0 &&
	    sqlite3_column_bytes(st, 1) == 32) {
		*upto = (uint64_t)sqlite3_column_int64(st, 0);
		memcpy(last, sqlite3_column_blob(st, 1), 32);
	} else if (rc == SQLITE_ROW) {
		sqlite3_finalize(st);
		return de_error_set(err, DE_ERR_DATABASE, EBADMSG,
				    "audit ledger %s: a prune record is malformed", a->path);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return audit_db_fail(a, err, "reading the prunes");
	return 0;
}

/* Create the file 0600 when it does not exist; refuse one others may write. */
static int prepare_file(const char *path, bool read_only, struct de_error *err)
{
	struct stat st;
	int fd;

	if (!read_only) {
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0) {
			int rc = fchmod(fd, 0600);
			close(fd);
			if (rc < 0)
				return de_error_set(err, DE_ERR_IO, errno, "cannot chmod %s: %s",
						    path, strerror(errno));
			return 0;
		}
		if (errno != EEXIST)
			return de_error_set(err, DE_ERR_IO, errno,
					    "cannot create the audit ledger %s: %s", path,
					    strerror(errno));
	}
	if (lstat(path, &st) < 0)
		return de_error_set(err, DE_ERR_IO, errno, "no audit ledger at %s: %s", path,
				    strerror(errno));
	if (!S_ISREG(st.st_mode))
		return de_error_set(err, DE_ERR_DATABASE, EPERM,
				    "audit ledger %s is not a regular file: refused", path);
	if (faccessat(AT_FDCWD, path, read_only ? R_OK : R_OK | W_OK, AT_EACCESS) < 0)
		return de_error_set(err, DE_ERR_IO, errno, "cannot %s the audit ledger %s: %s",
				    read_only ? "read" : "write", path, strerror(errno));
	if (!read_only && (st.st_mode & 022))
		return de_error_set(err, DE_ERR_DATABASE, EPERM,
				    "audit ledger %s is writable by others (mode %04o): refused "
				    "(chmod 600 %s)",
				    path, (unsigned)(st.st_mode & 07777), path);
	return 0;
}

/* The committed size, the last entry hash, the tree's edge and the last checkpoint. */
static int load_state(struct de_audit *a, struct de_error *err)
{
	sqlite3_stmt *st;
	int64_t size = 0;
	int rc;

	if ((rc = query_i64(a, "SELECT IFNULL(MAX(seq), 0) FROM entries", &size, err)) < 0)
		return rc;
	a->size = (uint64_t)size;
	memset(a->last_hash, 0, sizeof(a->last_hash));
	if (size > 0) {
		if (sqlite3_prepare_v2(a->db, "SELECT entry_hash FROM entries WHERE seq = ?", -1,
				       &st, NULL) != SQLITE_OK)
			return audit_db_fail(a, err, "reading the ledger");
		sqlite3_bind_int64(st, 1, size);
		rc = sqlite3_step(st);
		bool ok = rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32;
		if (ok)
			memcpy(a->last_hash, sqlite3_column_blob(st, 0), 32);
		sqlite3_finalize(st);
		if (!ok)
			return de_error_set(err, DE_ERR_DATABASE, EBADMSG,
					    "audit ledger %s: the last entry's hash is unreadable "
					    "(run daemoneye-cli audit verify)",
					    a->path);
	}
	memcpy(a->q_last_hash, a->last_hash, 32);
	a->last_cp_ms = a->now_ms();
	if (sqlite3_prepare_v2(a->db,
			       "SELECT size, ts_ms FROM checkpoints ORDER BY id DESC LIMIT 1", -1,
			       &st, NULL) != SQLITE_OK)
		return audit_db_fail(a, err, "reading the checkpoints");
	if (sqlite3_step(st) == SQLITE_ROW) {
		a->last_cp_size = (uint64_t)sqlite3_column_int64(st, 0);
		a->last_cp_ms = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (a->read_only)
		return 0;
	struct de_merkle_source src = audit_tree_source(a);
	return de_merkle_frontier_load(&src, a->size, &a->tree, err);
}

static int64_t real_now_ms(void)
{
	return de_now_ms();
}

int de_audit_open(const struct de_audit_config *cfg, struct de_audit **out, struct de_error *err)
{
	struct de_audit *a;
	int rc;

	if (!cfg->path || !*cfg->path)
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL, "no audit ledger path");
	if (cfg->chain.algorithm != DE_AUDIT_BLAKE3)
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "audit hash algorithm %d is not supported (blake3 only)",
				    (int)cfg->chain.algorithm);
	if (!(a = calloc(1, sizeof(*a))))
		return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	a->read_only = cfg->read_only;
	a->now_ms = cfg->now_ms ? cfg->now_ms : real_now_ms;
	a->every = cfg->checkpoint_every_entries;
	a->interval_s = cfg->checkpoint_interval_s;
	a->path = strdup(cfg->path);
	if (cfg->origin) {
		a->origin = strdup(cfg->origin);
	} else {
		char host[HOST_NAME_MAX + 1] = "localhost";
		gethostname(host, sizeof(host) - 1);
		host[HOST_NAME_MAX] = '\0';
		if (asprintf(&a->origin, "%s/daemoneye/audit", host) < 0)
			a->origin = NULL;
	}
	if (!a->path || !a->origin) {
		rc = de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
		goto fail;
	}
	/* the key first: a bad key leaves no trace in the ledger */
	if (!a->read_only && cfg->signer) {
		a->signer = *cfg->signer;
		a->has_signer = true;
	} else if (!a->read_only && cfg->chain.enable_signatures) {
		if (!cfg->chain.private_key_path) {
			rc = de_error_set(err, DE_ERR_CRYPTO, ENOKEY,
					  "audit signatures are enabled but no private key is "
					  "configured (audit.private_key_path)");
			goto fail;
		}
		if ((rc = de_checkpoint_key_load_private(cfg->chain.private_key_path, &a->own_key,
							 err)) < 0 ||
		    (rc = de_checkpoint_signer_from_key(a->own_key, a->origin, &a->signer, err)) <
			    0)
			goto fail;
		a->has_signer = true;
	}
	if ((rc = prepare_file(a->path, a->read_only, err)) < 0)
		goto fail;
	int flags = (a->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
		    SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_EXRESCODE;
	if (sqlite3_open_v2(a->path, &a->db, flags, NULL) != SQLITE_OK) {
		rc = audit_db_fail(a, err, "cannot open");
		goto fail;
	}
	sqlite3_busy_timeout(a->db, BUSY_TIMEOUT_MS);
	sqlite3_db_config(a->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(a->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	if ((rc = check_schema(a, err)) < 0)
		goto fail;
	if (a->read_only) {
		if ((rc = exec_sql(a, "PRAGMA query_only=1", err)) < 0)
			goto fail;
	} else if ((rc = exec_sql(a, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL", err)) <
		   0) {
		goto fail;
	}
	if ((rc = prepare(a, "SELECT hash FROM merkle_nodes WHERE key = ?", &a->get_node, err)) < 0)
		goto fail;
	if (!a->read_only &&
	    ((rc = prepare(a,
			   "INSERT INTO entries(seq, ts_ms, actor, action, payload, payload_hash,"
			   " previous_hash, entry_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			   &a->ins_entry, err)) < 0 ||
	     (rc = prepare(a, "INSERT INTO merkle_nodes(key, hash) VALUES (?, ?)", &a->ins_node,
			   err)) < 0 ||
	     (rc = prepare(a,
			   "INSERT INTO checkpoints(size, root, ts_ms, note) VALUES (?, ?, ?, ?)",
			   &a->ins_cp, err)) < 0))
		goto fail;
	if ((rc = load_state(a, err)) < 0)
		goto fail;
	*out = a;
	return 0;
fail:
	a->nq = 0;
	de_audit_close(a, NULL);
	return rc;
}

static void queue_clear(struct de_audit *a)
{
	for (size_t i = 0; i < a->nq; i++) {
		free(a->q[i].actor);
		free(a->q[i].action);
		free(a->q[i].payload);
	}
	a->nq = 0;
}

int de_audit_close(struct de_audit *a, struct de_error *err)
{
	int rc = 0;

	if (!a)
		return 0;
	if (a->nq && a->db)
		rc = de_audit_flush(a, err);
	queue_clear(a);
	free(a->q);
	sqlite3_finalize(a->get_node);
	sqlite3_finalize(a->ins_entry);
	sqlite3_finalize(a->ins_node);
	sqlite3_finalize(a->ins_cp);
	sqlite3_close(a->db);
	de_checkpoint_key_free(a->own_key);
	explicit_bzero(&a->signer, sizeof(a->signer));
	free(a->path);
	free(a->origin);
	free(a);
	return rc;
}

/* ---- appending ----------------------------------------------------------- */

static int check_name(const char *what, const char *s, struct de_error *err)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > DE_AUDIT_NAME_MAX)
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "audit entry %s must be 1..%d bytes", what, DE_AUDIT_NAME_MAX);
	if (!de_utf8_valid(s, n))
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "audit entry %s is not valid UTF-8", what);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F)
			return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
					    "audit entry %s holds a control character", what);
	return 0;
}

int de_audit_append(struct de_audit *a, const struct de_audit_entry *e, uint64_t *seq,
		    struct de_error *err)
{
	const char *payload = e->payload ? e->payload : "{}";
	size_t plen = strlen(payload);
	json_error_t jerr;
	json_t *j;
	int rc;

	if (a->read_only)
		return de_error_set(err, DE_ERR_DATABASE, EROFS,
				    "audit ledger %s is open read-only", a->path);
	if ((rc = check_name("actor", e->actor, err)) < 0 ||
	    (rc = check_name("action", e->action, err)) < 0)
		return rc;
	if (plen > (size_t)DE_AUDIT_PAYLOAD_MAX)
		return de_error_set(err, DE_ERR_VALIDATION, EFBIG,
				    "audit payload is %zu bytes, more than %d", plen,
				    DE_AUDIT_PAYLOAD_MAX);
	if (!(j = json_loadb(payload, plen, JSON_DECODE_ANY, &jerr)))
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "audit payload is not JSON: %s (column %d)", jerr.text,
				    jerr.column);
	json_decref(j);
	if (a->nq >= DE_AUDIT_QUEUE_MAX && (rc = de_audit_flush(a, err)) < 0)
		return rc;
	if (a->nq == a->capq) {
		size_t cap = a->capq ? a->capq * 2 : 64;
		struct queued *q = realloc(a->q, cap * sizeof(*q));
		if (!q)
			return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
		a->q = q;
		a->capq = cap;
	}
	struct queued *q = &a->q[a->nq];
	memset(q, 0, sizeof(*q));
	q->actor = strdup(e->actor);
	q->action = strdup(e->action);
	q->payload = strdup(payload);
	if (!q->actor || !q->action || !q->payload) {
		free(q->actor);
		free(q->action);
		free(q->payload);
		return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	}
	q->r.seq = a->size + a->nq + 1;
	q->r.ts_ms = e->ts_ms ? e->ts_ms : a->now_ms();
	q->r.actor = q->actor;
	q->r.action = q->action;
	q->r.payload = q->payload;
	de_blake3_hash(payload, plen, q->r.payload_hash);
	memcpy(q->r.previous_hash, a->q_last_hash, 32);
	de_audit_entry_hash(q->r.seq, q->r.ts_ms, q->actor, q->action, q->r.payload_hash,
			    q->r.previous_hash, q->r.entry_hash);
	memcpy(a->q_last_hash, q->r.entry_hash, 32);
	a->nq++;
	if (seq)
		*seq = q->r.seq;
	return 0;
}

static int insert_entry(struct de_audit *a, const struct de_audit_record *r, struct de_error *err)
{
	sqlite3_stmt *st = a->ins_entry;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)r->seq);
	sqlite3_bind_int64(st, 2, r->ts_ms);
	sqlite3_bind_text(st, 3, r->actor, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, r->action, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, r->payload, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 6, r->payload_hash, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 7, r->previous_hash, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 8, r->entry_hash, 32, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : audit_db_fail(a, err, "appending an entry");
}

static bool checkpoint_due(const struct de_audit *a)
{
	if (!a->has_signer || a->size == a->last_cp_size)
		return false;
	if (a->every && a->size - a->last_cp_size >= a->every)
		return true;
	return a->interval_s && a->now_ms() - a->last_cp_ms >= (int64_t)a->interval_s * 1000;
}

/*
 * Another process may have appended since this handle last looked (the CLI
 * recording an operator's action while the agent runs): inside the write
 * transaction, catch up with the file, then chain the queue after its end.
 * On failure the handle is as it was.
 */
static int catch_up(struct de_audit *a, struct de_error *err)
{
	struct de_merkle_frontier tree = a->tree;
	uint64_t size = a->size, cp_size = a->last_cp_size;
	int64_t max, cp_ms = a->last_cp_ms;
	uint8_t last[32], prev[32];
	int rc;

	if ((rc = query_i64(a, "SELECT IFNULL(MAX(seq), 0) FROM entries", &max, err)) < 0)
		return rc;
	if ((uint64_t)max == a->size)
		return 0;
	memcpy(last, a->last_hash, 32);
	if ((rc = load_state(a, err)) < 0) {
		a->tree = tree;
		a->size = size;
		a->last_cp_size = cp_size;
		a->last_cp_ms = cp_ms;
		memcpy(a->last_hash, last, 32);
		return rc;
	}
	memcpy(prev, a->last_hash, 32);
	for (size_t i = 0; i < a->nq; i++) {
		struct de_audit_record *r = &a->q[i].r;
		r->seq = a->size + i + 1;
		memcpy(r->previous_hash, prev, 32);
		de_audit_entry_hash(r->seq, r->ts_ms, r->actor, r->action, r->payload_hash,
				    r->previous_hash, r->entry_hash);
		memcpy(prev, r->entry_hash, 32);
	}
	memcpy(a->q_last_hash, prev, 32);
	return 0;
}

int de_audit_flush(struct de_audit *a, struct de_error *err)
{
	int rc = de_audit_commit(a, err);

	if (rc == 0 && checkpoint_due(a) && de_audit_checkpoint(a, NULL, err) < 0)
		return de_error_prefix(err, "entries committed, but the checkpoint failed: ");
	return rc;
}

int de_audit_commit(struct de_audit *a, struct de_error *err)
{
	struct de_merkle_frontier tree;
	int rc;

	if (a->read_only)
		return de_error_set(err, DE_ERR_DATABASE, EROFS,
				    "audit ledger %s is open read-only", a->path);
	if (a->nq) {
		if ((rc = exec_sql(a, "BEGIN IMMEDIATE", err)) < 0)
			return rc;
		if ((rc = catch_up(a, err)) < 0) {
			sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
			return rc;
		}
		tree = a->tree;
		for (size_t i = 0; i < a->nq; i++) {
			uint8_t leaf[DE_MERKLE_HASH_LEN];
			if ((rc = insert_entry(a, &a->q[i].r, err)) < 0 ||
			    (rc = de_merkle_blake3.leaf(a->q[i].r.entry_hash, 32, leaf)) < 0 ||
			    (rc = de_merkle_frontier_append(&de_merkle_blake3, &tree, leaf,
							    node_put, a, err)) < 0)
				break;
		}
		if (rc == 0)
			rc = exec_sql(a, "COMMIT", err);
		if (rc < 0) {
			sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
			return rc;
		}
		a->tree = tree;
		a->size += a->nq;
		memcpy(a->last_hash, a->q[a->nq - 1].r.entry_hash, 32);
		queue_clear(a);
	}
	return 0;
}

int de_audit_prune(struct de_audit *a, int64_t before_ms, uint64_t max_entries,
		   struct de_audit_prune *out, struct de_error *err)
{
	struct de_audit_prune r = {0};
	uint8_t last[32];
	int64_t cover = 0, young = 0;
	uint64_t limit;
	sqlite3_stmt *st = NULL;
	int rc;

	if (a->read_only)
		return de_error_set(err, DE_ERR_DATABASE, EROFS,
				    "audit ledger %s is open read-only", a->path);
	if ((rc = audit_prune_state(a, &r.upto, last, err)) < 0 ||
	    (rc = query_i64(a, "SELECT IFNULL(MAX(size), 0) FROM checkpoints", &cover, err)) < 0)
		return rc;
	r.covered_by = (uint64_t)cover;
	/* within the latest (signed) checkpoint, never the last entry, a batch at most */
	limit = (uint64_t)cover;
	if (a->size > 0 && limit > a->size - 1)
		limit = a->size - 1;
	if (max_entries && limit > r.upto + max_entries)
		limit = r.upto + max_entries;
	if (limit <= r.upto)
		goto done;
	/* a prefix: up to the first entry that is not old enough */
	if (sqlite3_prepare_v2(a->db,
			       "SELECT IFNULL(MIN(seq), ?2 + 1) FROM entries WHERE seq > ?1 AND"
			       " seq <= ?2 AND ts_ms >= ?3",
			       -1, &st, NULL) != SQLITE_OK)
		return audit_db_fail(a, err, "reading the ledger");
	sqlite3_bind_int64(st, 1, (sqlite3_int64)r.upto);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
	sqlite3_bind_int64(st, 3, before_ms);
	if (sqlite3_step(st) == SQLITE_ROW)
		young = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (young <= 0 || (uint64_t)young - 1 <= r.upto)
		goto done;
	uint64_t upto = (uint64_t)young - 1;
	if (sqlite3_prepare_v2(a->db, "SELECT entry_hash FROM entries WHERE seq = ?", -1, &st,
			       NULL) != SQLITE_OK)
		return audit_db_fail(a, err, "reading the ledger");
	sqlite3_bind_int64(st, 1, (sqlite3_int64)upto);
	bool ok = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32;
	if (ok)
		memcpy(last, sqlite3_column_blob(st, 0), 32);
	sqlite3_finalize(st);
	if (!ok)
		return de_error_set(err, DE_ERR_DATABASE, EBADMSG,
				    "audit ledger %s: entry %llu is unreadable (run daemoneye-cli "
				    "audit verify)",
				    a->path, (unsigned long long)upto);
	if ((rc = exec_sql(a, "BEGIN IMMEDIATE", err)) < 0)
		return rc;
	if (sqlite3_prepare_v2(
		    a->db,
		    "INSERT INTO prunes(upto, last_hash, covered_by, ts_ms) VALUES (?, ?, "
		    "?, ?)",
		    -1, &st, NULL) != SQLITE_OK) {
		rc = audit_db_fail(a, err, "recording a prune");
		goto fail;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)upto);
	sqlite3_bind_blob(st, 2, last, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, cover);
	sqlite3_bind_int64(st, 4, a->now_ms());
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		rc = audit_db_fail(a, err, "recording a prune");
		goto fail;
	}
	if (sqlite3_prepare_v2(a->db, "DELETE FROM entries WHERE seq > ? AND seq <= ?", -1, &st,
			       NULL) != SQLITE_OK) {
		rc = audit_db_fail(a, err, "pruning entries");
		goto fail;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)r.upto);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)upto);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		rc = audit_db_fail(a, err, "pruning entries");
		goto fail;
	}
	if ((rc = exec_sql(a, "COMMIT", err)) < 0)
		goto fail;
	r.removed = upto - r.upto;
	r.upto = upto;
done:
	if (out)
		*out = r;
	return 0;
fail:
	sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

uint64_t de_audit_size(const struct de_audit *a)
{
	return a->size;
}

int64_t de_audit_last_checkpoint_ms(const struct de_audit *a)
{
	/* a checkpoint covers at least one entry: size 0 means none yet */
	return a->last_cp_size ? a->last_cp_ms : 0;
}

uint64_t de_audit_unattested(const struct de_audit *a)
{
	return a->size - a->last_cp_size;
}

size_t de_audit_pending(const struct de_audit *a)
{
	return a->nq;
}

/* ---- roots, proofs and checkpoints --------------------------------------- */

/* A tree size we can speak of: at most the committed entries. */
static int check_size(const struct de_audit *a, uint64_t size, struct de_error *err)
{
	if (size > a->size)
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "the ledger has %llu entries, not %llu",
				    (unsigned long long)a->size, (unsigned long long)size);
	return 0;
}

int de_audit_root(struct de_audit *a, uint64_t size, uint8_t out[DE_MERKLE_HASH_LEN],
		  struct de_error *err)
{
	struct de_merkle_source src = audit_tree_source(a);
	int rc;

	if ((rc = check_size(a, size, err)) < 0)
		return rc;
	if (!a->read_only && size == a->size)
		return de_merkle_frontier_root(&de_merkle_blake3, &a->tree, out, err);
	return de_merkle_root(&src, size, out, err);
}

int de_audit_prove_inclusion(struct de_audit *a, uint64_t seq, uint64_t size,
			     uint8_t proof[DE_MERKLE_MAX_PROOF][DE_MERKLE_HASH_LEN], size_t *n,
			     uint8_t leaf_hash[DE_MERKLE_HASH_LEN], struct de_error *err)
{
	struct de_merkle_source src = audit_tree_source(a);
	int rc;

	if (seq == 0 || seq > size || size > a->size)
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "no entry %llu in a tree of %llu entries (the ledger has %llu)",
				    (unsigned long long)seq, (unsigned long long)size,
				    (unsigned long long)a->size);
	if (leaf_hash && (rc = audit_node_get(a, 0, seq - 1, leaf_hash, err)) < 0)
		return rc;
	return de_merkle_prove_inclusion(&src, seq - 1, size, proof, n, err);
}

int de_audit_prove_consistency(struct de_audit *a, uint64_t old, uint64_t new_size,
			       uint8_t proof[DE_MERKLE_MAX_PROOF][DE_MERKLE_HASH_LEN], size_t *n,
			       struct de_error *err)
{
	struct de_merkle_source src = audit_tree_source(a);
	int rc;

	if ((rc = check_size(a, new_size, err)) < 0)
		return rc;
	return de_merkle_prove_consistency(&src, old, new_size, proof, n, err);
}

int de_audit_checkpoint(struct de_audit *a, char **note, struct de_error *err)
{
	struct de_checkpoint cp = {.size = a->size};
	char *text = NULL;
	size_t len;
	int64_t now = a->now_ms();
	int rc;

	if (a->read_only)
		return de_error_set(err, DE_ERR_DATABASE, EROFS,
				    "audit ledger %s is open read-only", a->path);
	if (!a->has_signer)
		return de_error_set(err, DE_ERR_CRYPTO, ENOKEY,
				    "no checkpoint signer (enable audit.enable_signatures and set "
				    "audit.private_key_path)");
	snprintf(cp.origin, sizeof(cp.origin), "%s", a->origin);
	if ((rc = de_merkle_frontier_root(&de_merkle_blake3, &a->tree, cp.root, err)) < 0 ||
	    (rc = de_checkpoint_sign(&cp, &a->signer, &text, &len, err)) < 0)
		return rc;
	/*
	 * Entries commit with synchronous=NORMAL (WAL: a crash may lose the
	 * last commits, never corrupt).  A checkpoint is meant to leave the
	 * host, so its commit syncs the WAL, and with it every entry it covers:
	 * power loss must not make an exported checkpoint look like truncation.
	 */
	if ((rc = exec_sql(a, "PRAGMA synchronous=FULL", err)) < 0) {
		free(text);
		return rc;
	}
	sqlite3_stmt *st = a->ins_cp;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)cp.size);
	sqlite3_bind_blob(st, 2, cp.root, DE_MERKLE_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now);
	sqlite3_bind_text(st, 4, text, (int)len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		rc = audit_db_fail(a, err, "storing a checkpoint");
		sqlite3_exec(a->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
		free(text);
		return rc;
	}
	sqlite3_exec(a->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
	a->last_cp_size = cp.size;
	a->last_cp_ms = now;
	if (note)
		*note = text;
	else
		free(text);
	return 0;
}

int de_audit_latest_checkpoint(struct de_audit *a, char **note, struct de_error *err)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(a->db, "SELECT note FROM checkpoints ORDER BY id DESC LIMIT 1", -1,
			       &st, NULL) != SQLITE_OK)
		return audit_db_fail(a, err, "reading the checkpoints");
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		if (rc == SQLITE_DONE)
			return de_error_set(err, DE_ERR_DATABASE, ENOENT,
					    "audit ledger %s has no checkpoint yet", a->path);
		return audit_db_fail(a, err, "reading the checkpoints");
	}
	const char *t = (const char *)sqlite3_column_text(st, 0);
	char *copy = t ? strdup(t) : NULL;
	sqlite3_finalize(st);
	if (!copy)
		return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	*note = copy;
	return 0;
}

/* ---- reading ------------------------------------------------------------- */

/* Fill r from a row of (seq, ts_ms, actor, action, payload, payload_hash, previous_hash,
 * entry_hash); false if malformed. */
bool audit_read_row(sqlite3_stmt *st, struct de_audit_record *r)
{
	static const int text_cols[] = {2, 3, 4};

	memset(r, 0, sizeof(*r));
	if (sqlite3_column_type(st, 0) != SQLITE_INTEGER ||
	    sqlite3_column_type(st, 1) != SQLITE_INTEGER)
		return false;
	r->seq = (uint64_t)sqlite3_column_int64(st, 0);
	r->ts_ms = sqlite3_column_int64(st, 1);
	for (int i = 0; i < 3; i++)
		if (sqlite3_column_type(st, text_cols[i]) != SQLITE_TEXT)
			return false;
	r->actor = (const char *)sqlite3_column_text(st, 2);
	r->action = (const char *)sqlite3_column_text(st, 3);
	r->payload = (const char *)sqlite3_column_text(st, 4);
	uint8_t *dst[3] = {r->payload_hash, r->previous_hash, r->entry_hash};
	for (int i = 0; i < 3; i++) {
		if (sqlite3_column_type(st, 5 + i) != SQLITE_BLOB ||
		    sqlite3_column_bytes(st, 5 + i) != 32)
			return false;
		memcpy(dst[i], sqlite3_column_blob(st, 5 + i), 32);
	}
	return r->actor && r->action && r->payload;
}

int de_audit_query(struct de_audit *a, const struct de_audit_filter *f, de_audit_record_fn fn,
		   void *arg, struct de_error *err)
{
	char sql[512];
	sqlite3_stmt *st;
	int rc, i = 1;

	snprintf(sql, sizeof(sql),
		 "SELECT " ENTRY_COLUMNS " FROM entries WHERE 1%s%s%s ORDER BY seq%s",
		 f->has_since ? " AND ts_ms >= ?" : "", f->actor ? " AND actor = ?" : "",
		 f->action ? " AND action = ?" : "", f->limit ? " LIMIT ?" : "");
	if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK)
		return audit_db_fail(a, err, "reading entries");
	if (f->has_since)
		sqlite3_bind_int64(st, i++, f->since_ms);
	if (f->actor)
		sqlite3_bind_text(st, i++, f->actor, -1, SQLITE_STATIC);
	if (f->action)
		sqlite3_bind_text(st, i++, f->action, -1, SQLITE_STATIC);
	if (f->limit)
		sqlite3_bind_int64(st, i++, (sqlite3_int64)f->limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct de_audit_record r;
		if (!audit_read_row(st, &r)) {
			sqlite3_finalize(st);
			return de_error_set(err, DE_ERR_DATABASE, EBADMSG,
					    "audit ledger %s: a malformed entry (run daemoneye-cli "
					    "audit verify)",
					    a->path);
		}
		if ((rc = fn(&r, arg)) != 0) {
			sqlite3_finalize(st);
			return rc < 0 ? rc : 0;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : audit_db_fail(a, err, "reading entries");
}

void de_audit_hash_text(const void *p, size_t n, char out[DE_AUDIT_HASH_TEXT_LEN + 1])
{
	uint8_t h[DE_BLAKE3_OUT_LEN];

	_Static_assert(DE_BASE64_LEN(DE_BLAKE3_OUT_LEN) == DE_AUDIT_HASH_TEXT_LEN,
		       "base64 of a BLAKE3 hash");
	de_blake3_hash(p, n, h);
	out[de_base64_encode(h, sizeof(h), out)] = '\0';
}
