/*
 * audit_int.h — what audit.c and audit_verify.c share (private to the
 * library): the ledger's handle and the helpers verification reads the
 * file and the stored tree with.
 */
#ifndef DE_AUDIT_INT_H
#define DE_AUDIT_INT_H

#include "daemoneye/audit.h"
#include "daemoneye/merkle.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#define BUSY_TIMEOUT_MS 5000
#define FORMAT_NAME	"daemoneye-audit"

/* One queued entry: the record and the strings it points to (owned). */
struct queued {
	struct de_audit_record r;
	char *actor, *action, *payload;
};

struct de_audit {
	sqlite3 *db;
	bool read_only;
	char *path;
	char *origin;
	int64_t (*now_ms)(void);
	uint64_t every, interval_s;
	bool has_signer;
	struct de_checkpoint_signer signer;
	struct de_ckpt_key *own_key; /* loaded from chain.private_key_path */

	/* committed state */
	uint64_t size;			/* entries committed */
	uint8_t last_hash[32];		/* entry_hash of entry `size` */
	struct de_merkle_frontier tree; /* the tree's right edge (writers) */
	uint64_t last_cp_size;		/* size at the last checkpoint */
	int64_t last_cp_ms;		/* when it was made (or open time) */

	/* the queue */
	struct queued *q;
	size_t nq, capq;
	uint8_t q_last_hash[32]; /* entry_hash of the last queued (or committed) entry */

	sqlite3_stmt *get_node, *ins_entry, *ins_node, *ins_cp;
};

/* Report the database's error as "<what>: <sqlite message>" (DE_ERR_DATABASE). */
int audit_db_fail(struct de_audit *a, struct de_error *err, const char *what);
/* The stored subtree (level, index) into out: 0, or -ENOENT when not stored (de_merkle_source). */
int audit_node_get(void *arg, unsigned level, uint64_t index, uint8_t out[DE_MERKLE_HASH_LEN],
		   struct de_error *err);
/* The tree over a's stored subtrees. */
struct de_merkle_source audit_tree_source(struct de_audit *a);
/* The pruned prefix: *upto entries removed (0: none) and the last one's entry_hash. */
int audit_prune_state(struct de_audit *a, uint64_t *upto, uint8_t last[32], struct de_error *err);
/* The columns audit_read_row reads, in its order. */
#define ENTRY_COLUMNS "seq, ts_ms, actor, action, payload, payload_hash, previous_hash, entry_hash"
/* Fill r from a row of (seq, ts_ms, actor, action, payload, payload_hash, previous_hash,
 * entry_hash); false if malformed. */
bool audit_read_row(sqlite3_stmt *st, struct de_audit_record *r);

#endif
