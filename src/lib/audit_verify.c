/*
 * audit_verify.c — verify_chain for the audit ledger (see
 * include/daemoneye/audit.h and docs/audit.md): every entry's hashes and
 * links recomputed, the Merkle tree rebuilt from the entries (the pruned
 * prefix from its stored leaves) and compared with the stored subtrees and
 * every stored or given checkpoint; the first bad sequence number and what
 * is wrong with it are reported.
 */
#include "audit_int.h"
#include "daemoneye/base64.h"
#include "daemoneye/blake3.h"
#include "daemoneye/checkpoint.h"
#include "daemoneye/text.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- verification -------------------------------------------------------- */

/* A checkpoint to check the entries against. */
struct cp_check {
	struct de_checkpoint cp;
	char label[48]; /* "stored checkpoint #3", "the given checkpoint" */
	bool given;
};

static int report(struct de_audit_report *rep, enum de_audit_problem p, uint64_t seq,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int report(struct de_audit_report *rep, enum de_audit_problem p, uint64_t seq,
		  const char *fmt, ...)
{
	va_list ap;

	if (rep->problem != DE_AUDIT_INTACT)
		return 1;
	rep->problem = p;
	rep->bad_seq = seq;
	va_start(ap, fmt);
	vsnprintf(rep->detail, sizeof(rep->detail), fmt, ap);
	va_end(ap);
	return 1;
}

/* Parse and (with a key) signature-check one checkpoint note; 1 when it is bad (reported). */
static int load_cp(const char *note, size_t len, const struct de_audit_verify_opts *o,
		   struct cp_check *c, struct de_audit_report *rep)
{
	struct de_signed_checkpoint *sc = malloc(sizeof(*sc));
	struct de_error e = {0};
	int bad = 0;

	if (!sc)
		return -ENOMEM;
	if (de_checkpoint_parse(note, len, sc, &e) < 0 ||
	    (o->pubkey && de_checkpoint_verify(sc, o->pubkey, o->key_name, &e) < 0))
		bad = report(rep, DE_AUDIT_BAD_CHECKPOINT, 0, "%s: %s", c->label, e.message);
	else
		c->cp = sc->cp;
	free(sc);
	return bad;
}

static struct cp_check *cp_push(struct cp_check **v, size_t *n, size_t *cap)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		struct cp_check *nv = realloc(*v, c * sizeof(**v));
		if (!nv)
			return NULL;
		*v = nv;
		*cap = c;
	}
	memset(&(*v)[*n], 0, sizeof(**v));
	return &(*v)[(*n)++];
}

/*
 * Every stored checkpoint, then the given one, parsed and signature-checked;
 * a bad one is reported (and ends the list).
 */
static int collect_checkpoints(struct de_audit *a, const struct de_audit_verify_opts *o,
			       struct cp_check **out, size_t *n, struct de_audit_report *rep,
			       struct de_error *err)
{
	struct cp_check *v = NULL, *c;
	size_t cnt = 0, cap = 0;
	sqlite3_stmt *st;
	int rc = 0, step;

	if (sqlite3_prepare_v2(a->db, "SELECT id, size, root, note FROM checkpoints ORDER BY id",
			       -1, &st, NULL) != SQLITE_OK)
		return audit_db_fail(a, err, "reading the checkpoints");
	while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *note = (const char *)sqlite3_column_text(st, 3);
		if (!(c = cp_push(&v, &cnt, &cap))) {
			rc = de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
			break;
		}
		snprintf(c->label, sizeof(c->label), "stored checkpoint #%lld",
			 (long long)sqlite3_column_int64(st, 0));
		if (!note)
			rc = report(rep, DE_AUDIT_BAD_CHECKPOINT, 0, "%s has no note", c->label);
		else if ((rc = load_cp(note, (size_t)sqlite3_column_bytes(st, 3), o, c, rep)) ==
				 0 &&
			 ((uint64_t)sqlite3_column_int64(st, 1) != c->cp.size ||
			  sqlite3_column_bytes(st, 2) != DE_MERKLE_HASH_LEN ||
			  memcmp(sqlite3_column_blob(st, 2), c->cp.root, DE_MERKLE_HASH_LEN) != 0))
			rc = report(rep, DE_AUDIT_BAD_CHECKPOINT, c->cp.size,
				    "%s: its size or root column differs from its signed note",
				    c->label);
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = audit_db_fail(a, err, "reading the checkpoints");
	sqlite3_finalize(st);
	if (rc == 0 && o->checkpoint) {
		if (!(c = cp_push(&v, &cnt, &cap))) {
			rc = de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
		} else {
			c->given = true;
			snprintf(c->label, sizeof(c->label), "the given checkpoint");
			rc = load_cp(o->checkpoint, o->checkpoint_len, o, c, rep);
		}
	}
	if (rc < 0) {
		free(v);
		return rc;
	}
	*out = v;
	*n = cnt;
	return 0;
}

/* Check one row against what came before; 1 when a problem was reported. */
static int check_row(const struct de_audit_record *r, uint64_t expected, const uint8_t prev[32],
		     struct de_audit_report *rep)
{
	uint8_t h[32];

	if (r->seq != expected)
		return report(rep, DE_AUDIT_GAP, expected,
			      "entry %llu is missing (deleted?): the next entry is %llu",
			      (unsigned long long)expected, (unsigned long long)r->seq);
	de_blake3_hash(r->payload, strlen(r->payload), h);
	if (memcmp(h, r->payload_hash, 32) != 0)
		return report(rep, DE_AUDIT_PAYLOAD, r->seq,
			      "entry %llu: its payload does not match its payload_hash (payload "
			      "edited)",
			      (unsigned long long)r->seq);
	de_audit_entry_hash(r->seq, r->ts_ms, r->actor, r->action, r->payload_hash,
			    r->previous_hash, h);
	if (memcmp(h, r->entry_hash, 32) != 0) {
		for (int d = -1; d <= 1; d += 2) {
			uint64_t other = r->seq + (uint64_t)(int64_t)d;
			de_audit_entry_hash(other, r->ts_ms, r->actor, r->action, r->payload_hash,
					    r->previous_hash, h);
			if (memcmp(h, r->entry_hash, 32) == 0)
				return report(rep, DE_AUDIT_MOVED, r->seq,
					      "entry %llu was written as entry %llu: entries "
					      "swapped, inserted or removed here",
					      (unsigned long long)r->seq,
					      (unsigned long long)other);
		}
		return report(rep, DE_AUDIT_ENTRY_HASH, r->seq,
			      "entry %llu: its fields do not match its entry_hash (entry or hash "
			      "edited)",
			      (unsigned long long)r->seq);
	}
	if (memcmp(r->previous_hash, prev, 32) != 0)
		return report(rep, DE_AUDIT_LINK, r->seq,
			      "entry %llu: its previous_hash is not entry %llu's hash (an entry "
			      "inserted, removed or swapped before it)",
			      (unsigned long long)r->seq, (unsigned long long)r->seq - 1);
	return 0;
}

/* de_merkle_emit_fn: a subtree recomputed from stored leaves is the stored one. */
static int node_check(void *arg, unsigned level, uint64_t index,
		      const uint8_t hash[DE_MERKLE_HASH_LEN], struct de_error *err)
{
	struct de_audit *a = arg;
	uint8_t stored[DE_MERKLE_HASH_LEN];
	int rc;

	if (level == 0)
		return 0; /* the leaf itself, just read */
	if ((rc = audit_node_get(a, level, index, stored, err)) < 0)
		return rc;
	if (memcmp(stored, hash, DE_MERKLE_HASH_LEN) != 0)
		return de_error_set(err, DE_ERR_DATABASE, EBADMSG,
				    "the stored subtree (level %u, index %llu) is not its leaves' "
				    "(subtree hashes edited)",
				    level, (unsigned long long)index);
	return 0;
}

/*
 * A pruned prefix 1..upto (last: entry upto's hash, from its prune record):
 * its subtrees are the stored ones (the entries are gone), taken into *f; the
 * record must name upto's leaf, a stored checkpoint must cover the prefix
 * (the next ones are recomputed through it, so its signature binds the
 * prefix's subtrees), and those within it must be the stored tree's roots.
 * true when all holds; otherwise the problem is in rep.
 */
static bool verify_pruned(struct de_audit *a, uint64_t upto, const uint8_t last[32],
			  const struct cp_check *cps, size_t ncps, size_t *next_cp,
			  struct de_merkle_frontier *f, struct de_audit_report *rep)
{
	struct de_merkle_source src = audit_tree_source(a);
	uint8_t leaf[DE_MERKLE_HASH_LEN], stored[DE_MERKLE_HASH_LEN], root[DE_MERKLE_HASH_LEN];
	struct de_error e = {0};
	bool covered = false;

	for (size_t i = 0; i < ncps; i++)
		covered = covered || (!cps[i].given && cps[i].cp.size >= upto);
	if (!covered) {
		report(rep, DE_AUDIT_MERKLE, upto,
		       "entries 1..%llu were pruned but no checkpoint in the ledger covers them",
		       (unsigned long long)upto);
		return false;
	}
	if (de_merkle_blake3.leaf(last, 32, leaf) < 0 ||
	    audit_node_get(a, 0, upto - 1, stored, &e) < 0 ||
	    memcmp(leaf, stored, sizeof(leaf)) != 0) {
		report(rep, DE_AUDIT_LINK, upto,
		       "entry %llu, the last pruned: its prune record's hash is not its leaf in "
		       "the "
		       "Merkle tree%s%s",
		       (unsigned long long)upto, e.message[0] ? ": " : "", e.message);
		return false;
	}
	/* the prefix's tree rebuilt from its stored leaves, each stored subtree checked */
	for (uint64_t i = 0; i < upto; i++) {
		if (audit_node_get(a, 0, i, stored, &e) < 0 ||
		    de_merkle_frontier_append(&de_merkle_blake3, f, stored, node_check, a, &e) <
			    0) {
			report(rep, DE_AUDIT_MERKLE, i + 1, "the pruned prefix's Merkle tree: %s",
			       e.message);
			return false;
		}
	}
	for (; *next_cp < ncps && cps[*next_cp].cp.size <= upto; (*next_cp)++) {
		if (cps[*next_cp].given)
			continue; /* checked by a consistency proof */
		if (de_merkle_root(&src, cps[*next_cp].cp.size, root, &e) < 0 ||
		    memcmp(root, cps[*next_cp].cp.root, DE_MERKLE_HASH_LEN) != 0) {
			report(rep, DE_AUDIT_REWRITTEN, cps[*next_cp].cp.size,
			       "%s attests a different root for the first %llu (pruned) entries: "
			       "history rewritten",
			       cps[*next_cp].label, (unsigned long long)cps[*next_cp].cp.size);
			return false;
		}
	}
	return true;
}

static int cp_cmp(const void *x, const void *y)
{
	const struct cp_check *a = x, *b = y;
	return a->cp.size < b->cp.size ? -1 : a->cp.size > b->cp.size;
}

int de_audit_verify(struct de_audit *a, const struct de_audit_verify_opts *opts,
		    struct de_audit_report *out, struct de_error *err)
{
	static const struct de_audit_verify_opts none = {0};
	const struct de_audit_verify_opts *o = opts ? opts : &none;
	struct de_audit_report rep = {.signatures_checked = o->pubkey != NULL};
	struct de_merkle_frontier f = {0};
	struct cp_check *cps = NULL;
	size_t ncps = 0, next_cp = 0;
	uint8_t prev[32] = {0}, root[DE_MERKLE_HASH_LEN];
	uint64_t expected = 1;
	sqlite3_stmt *st = NULL;
	int rc, step;

	if ((rc = collect_checkpoints(a, o, &cps, &ncps, &rep, err)) < 0)
		return rc;
	rep.checkpoints = ncps;
	if (rep.problem != DE_AUDIT_INTACT)
		goto done;
	if (ncps > 1)
		qsort(cps, ncps, sizeof(*cps), cp_cmp);
	if (sqlite3_prepare_v2(a->db, "SELECT " ENTRY_COLUMNS " FROM entries ORDER BY seq", -1, &st,
			       NULL) != SQLITE_OK) {
		rc = audit_db_fail(a, err, "reading entries");
		goto out;
	}
	while (next_cp < ncps && cps[next_cp].cp.size == 0)
		next_cp++;
	if ((rc = audit_prune_state(a, &rep.pruned, prev, err)) < 0)
		goto out;
	if (rep.pruned && !verify_pruned(a, rep.pruned, prev, cps, ncps, &next_cp, &f, &rep))
		goto done;
	expected = rep.pruned + 1;
	rep.entries = rep.pruned;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct de_audit_record r;
		uint8_t leaf[DE_MERKLE_HASH_LEN];
		if (!audit_read_row(st, &r)) {
			report(&rep, DE_AUDIT_MALFORMED, expected,
			       "entry %llu: a field is missing, of the wrong type or length",
			       (unsigned long long)expected);
			break;
		}
		if (check_row(&r, expected, prev, &rep))
			break;
		memcpy(prev, r.entry_hash, 32);
		if ((rc = de_merkle_blake3.leaf(r.entry_hash, 32, leaf)) < 0 ||
		    (rc = de_merkle_frontier_append(&de_merkle_blake3, &f, leaf, NULL, NULL, err)) <
			    0)
			goto out;
		rep.entries = expected++;
		/* stored checkpoints: the recomputed root at their size must be theirs */
		for (; next_cp < ncps && cps[next_cp].cp.size == f.size; next_cp++) {
			if (cps[next_cp].given)
				continue; /* checked below, by a consistency proof */
			if ((rc = de_merkle_frontier_root(&de_merkle_blake3, &f, root, err)) < 0)
				goto out;
			if (memcmp(root, cps[next_cp].cp.root, DE_MERKLE_HASH_LEN) != 0) {
				report(&rep, DE_AUDIT_REWRITTEN, f.size,
				       "%s attests a different root for the first %llu entries: "
				       "history rewritten",
				       cps[next_cp].label, (unsigned long long)f.size);
				break;
			}
		}
		if (rep.problem != DE_AUDIT_INTACT)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		rc = audit_db_fail(a, err, "reading entries");
		goto out;
	}
	if (rep.problem != DE_AUDIT_INTACT)
		goto done;
	if ((rc = de_merkle_frontier_root(&de_merkle_blake3, &f, rep.root, err)) < 0)
		goto out;
	/* the stored tree (which proofs come from) must be the entries' tree */
	{
		struct de_merkle_source src = audit_tree_source(a);
		struct de_error e = {0};
		if (de_merkle_root(&src, rep.entries, root, &e) < 0)
			report(&rep, DE_AUDIT_MERKLE, rep.entries, "the stored Merkle tree: %s",
			       e.message);
		else if (memcmp(root, rep.root, DE_MERKLE_HASH_LEN) != 0)
			report(&rep, DE_AUDIT_MERKLE, rep.entries,
			       "the stored Merkle tree's root differs from the entries' (subtree "
			       "hashes edited)");
	}
	/* checkpoints past the end: the tail is gone */
	for (size_t i = 0; i < ncps && rep.problem == DE_AUDIT_INTACT; i++)
		if (cps[i].cp.size > rep.entries)
			report(&rep, DE_AUDIT_TRUNCATED, rep.entries + 1,
			       "%s attests %llu entries but the ledger has %llu: entries %llu.."
			       "%llu were removed (tail truncated)",
			       cps[i].label, (unsigned long long)cps[i].cp.size,
			       (unsigned long long)rep.entries, (unsigned long long)rep.entries + 1,
			       (unsigned long long)cps[i].cp.size);
	/* the given checkpoint: a consistency proof from its tree to ours */
	for (size_t i = 0; i < ncps && rep.problem == DE_AUDIT_INTACT; i++) {
		uint8_t proof[DE_MERKLE_MAX_PROOF][DE_MERKLE_HASH_LEN];
		struct de_merkle_blob pb[DE_MERKLE_MAX_PROOF];
		struct de_error e = {0};
		size_t n = 0;
		if (!cps[i].given || cps[i].cp.size == 0)
			continue;
		struct de_merkle_source src = audit_tree_source(a);
		if (de_merkle_prove_consistency(&src, cps[i].cp.size, rep.entries, proof, &n, &e) <
		    0) {
			report(&rep, DE_AUDIT_MERKLE, cps[i].cp.size, "consistency proof: %s",
			       e.message);
			break;
		}
		de_merkle_proof_blobs(proof[0], n, pb);
		struct de_merkle_blob r1 = {cps[i].cp.root, DE_MERKLE_HASH_LEN};
		struct de_merkle_blob r2 = {rep.root, DE_MERKLE_HASH_LEN};
		if (de_merkle_verify_consistency(&de_merkle_blake3, cps[i].cp.size, rep.entries, pb,
						 n, r1, r2, &e) < 0)
			report(&rep, DE_AUDIT_REWRITTEN, cps[i].cp.size,
			       "%s (%llu entries) is not consistent with the ledger's %llu "
			       "entries: "
			       "history rewritten (%s)",
			       cps[i].label, (unsigned long long)cps[i].cp.size,
			       (unsigned long long)rep.entries, e.message);
	}
done:
	*out = rep;
	rc = 0;
out:
	sqlite3_finalize(st);
	free(cps);
	return rc;
}
