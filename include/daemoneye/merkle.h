/*
 * merkle.h — RFC 9162 (RFC 6962) Merkle tree hashing, proofs and their
 * verification, with a pluggable hash.
 *
 * The tree over leaves D[0:n]: MTH({}) = HASH(), MTH({d}) = HASH(0x00 || d),
 * and for n > 1, with k the largest power of two below n,
 * MTH(D[0:n]) = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n])).  Every tree is
 * thus made of "perfect" subtrees: the one at (level L, index i) covers
 * leaves [i * 2^L, (i + 1) * 2^L); level 0 are the leaf hashes.  Once a
 * perfect subtree is complete its hash never changes, so a growing log
 * stores each one once (de_merkle_frontier_append() says which and when)
 * and any root or proof needs O(log n) of them, fetched through a
 * callback (struct de_merkle_source): the audit ledger keeps them in
 * SQLite, tests and small tools in memory (struct de_merkle_mem).
 *
 * Hashes are DE_MERKLE_HASH_LEN (32) bytes for both hashers here (SHA-256
 * through OpenSSL EVP, BLAKE3 through blake3.h).  Proofs are arrays of
 * hashes in the RFC's order.  Verification takes outside input as
 * (pointer, length) blobs and rejects any hash of the wrong length.
 *
 * Errors: proofs that do not verify are DE_ERR_VALIDATION (EBADMSG, the
 * message says which check failed); impossible requests (index past the
 * tree) DE_ERR_VALIDATION (EINVAL); the source's own errors pass through.
 * Nothing here allocates except struct de_merkle_mem.
 */
#ifndef DAEMONEYE_MERKLE_H
#define DAEMONEYE_MERKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemoneye/error.h"

#define DE_MERKLE_HASH_LEN 32
/* Longest proof for a tree of up to 2^64 - 1 leaves (consistency: 64 + 1). */
#define DE_MERKLE_MAX_PROOF 65

/* A hash function for the tree: a small ops struct (one per hash). */
struct de_merkle_hasher {
	const char *name; /* "sha256", "blake3" */
	/* out = HASH(0x00 || data).  0 or -errno (allocation failure). */
	int (*leaf)(const void *data, size_t len, uint8_t out[DE_MERKLE_HASH_LEN]);
	/* out = HASH(0x01 || left || right); out may alias left or right. */
	int (*node)(const uint8_t left[DE_MERKLE_HASH_LEN], const uint8_t right[DE_MERKLE_HASH_LEN],
		    uint8_t out[DE_MERKLE_HASH_LEN]);
	/* out = HASH() (the empty tree's root). */
	int (*empty)(uint8_t out[DE_MERKLE_HASH_LEN]);
};

extern const struct de_merkle_hasher de_merkle_sha256;
extern const struct de_merkle_hasher de_merkle_blake3;

/*
 * Fetch the hash of the complete perfect subtree at (level, index) into
 * out.  Called only for subtrees inside the size asked about.  0 or -errno
 * with *err filled.
 */
typedef int (*de_merkle_get_fn)(void *arg, unsigned level, uint64_t index,
				uint8_t out[DE_MERKLE_HASH_LEN], struct de_error *err);

/* Where the perfect subtrees of a tree come from. */
struct de_merkle_source {
	const struct de_merkle_hasher *hasher;
	de_merkle_get_fn get;
	void *arg;
};

/* MTH(D[0:size]) into out (size 0: HASH()). */
int de_merkle_root(const struct de_merkle_source *src, uint64_t size,
		   uint8_t out[DE_MERKLE_HASH_LEN], struct de_error *err);
/*
 * RFC 9162 2.1.3.1: the inclusion proof of leaf `index` in the tree of
 * `size` leaves into proof[0..*n).  index < size, else EINVAL.
 */
int de_merkle_prove_inclusion(const struct de_merkle_source *src, uint64_t index, uint64_t size,
			      uint8_t proof[DE_MERKLE_MAX_PROOF][DE_MERKLE_HASH_LEN], size_t *n,
			      struct de_error *err);
/*
 * RFC 9162 2.1.4.1: the consistency proof from size1 to size2
 * (0 < size1 <= size2, else EINVAL) into proof[0..*n).
 */
int de_merkle_prove_consistency(const struct de_merkle_source *src, uint64_t size1, uint64_t size2,
				uint8_t proof[DE_MERKLE_MAX_PROOF][DE_MERKLE_HASH_LEN], size_t *n,
				struct de_error *err);

/* Bytes from outside (a proof element, a root): length checked at use. */
struct de_merkle_blob {
	const uint8_t *data;
	size_t len;
};

/*
 * A generated proof (n hashes, contiguous from `proof`) as the verifiers
 * take it: out[i] = the i-th hash.
 */
void de_merkle_proof_blobs(const uint8_t *proof, size_t n, struct de_merkle_blob *out);

/*
 * RFC 9162 2.1.3.2: 0 when `proof` proves leaf hash `leaf` at `index` in
 * the tree of `size` leaves whose root is `root`; else -EBADMSG
 * (DE_ERR_VALIDATION) saying why.
 */
int de_merkle_verify_inclusion(const struct de_merkle_hasher *h, uint64_t index, uint64_t size,
			       struct de_merkle_blob leaf, const struct de_merkle_blob *proof,
			       size_t nproof, struct de_merkle_blob root, struct de_error *err);
/*
 * RFC 9162 2.1.4.2: 0 when `proof` proves the tree of size2 leaves with
 * root2 extends the tree of size1 leaves with root1; else -EBADMSG.
 * size1 must be > 0 (every tree extends the empty one: nothing to prove);
 * equal sizes need an empty proof and equal roots.
 */
int de_merkle_verify_consistency(const struct de_merkle_hasher *h, uint64_t size1, uint64_t size2,
				 const struct de_merkle_blob *proof, size_t nproof,
				 struct de_merkle_blob root1, struct de_merkle_blob root2,
				 struct de_error *err);

/* ---- building: the right edge of a growing tree -------------------------- */

/*
 * The perfect subtrees that make up a tree of `size` leaves, one per 1-bit
 * of size, largest (leftmost) first.  Plain struct; zero it for size 0.
 */
struct de_merkle_frontier {
	uint64_t size;			      /* leaves appended */
	unsigned n;			      /* entries in hash[] */
	uint8_t hash[64][DE_MERKLE_HASH_LEN]; /* their hashes */
};

/* Called for each perfect subtree completed by an append. */
typedef int (*de_merkle_emit_fn)(void *arg, unsigned level, uint64_t index,
				 const uint8_t hash[DE_MERKLE_HASH_LEN], struct de_error *err);

/*
 * Append one leaf hash: emit (if non-NULL) is called for the leaf (level 0)
 * and each subtree it completes, lowest first.  On failure *f is unchanged.
 */
int de_merkle_frontier_append(const struct de_merkle_hasher *h, struct de_merkle_frontier *f,
			      const uint8_t leaf_hash[DE_MERKLE_HASH_LEN], de_merkle_emit_fn emit,
			      void *arg, struct de_error *err);
/* The root of the frontier's tree. */
int de_merkle_frontier_root(const struct de_merkle_hasher *h, const struct de_merkle_frontier *f,
			    uint8_t out[DE_MERKLE_HASH_LEN], struct de_error *err);
/* Load the frontier of a tree of `size` leaves from a source. */
int de_merkle_frontier_load(const struct de_merkle_source *src, uint64_t size,
			    struct de_merkle_frontier *out, struct de_error *err);

/* ---- an in-memory tree --------------------------------------------------- */

/*
 * Every perfect subtree hash in one array (about 2n hashes for n leaves),
 * for tests and tools.  de_merkle_mem_source() gives its source.
 */
struct de_merkle_mem;

/* A new empty tree using hasher h (not copied: must outlive it).  NULL when out of memory. */
struct de_merkle_mem *de_merkle_mem_new(const struct de_merkle_hasher *h);
/* Append a leaf's data (hashed as a leaf).  0 or -ENOMEM. */
int de_merkle_mem_append(struct de_merkle_mem *m, const void *data, size_t len,
			 struct de_error *err);
/* Append an already computed leaf hash. */
int de_merkle_mem_append_hash(struct de_merkle_mem *m, const uint8_t leaf_hash[DE_MERKLE_HASH_LEN],
			      struct de_error *err);
uint64_t de_merkle_mem_size(const struct de_merkle_mem *m);
/* A source reading this tree (valid while m lives). */
struct de_merkle_source de_merkle_mem_source(struct de_merkle_mem *m);
void de_merkle_mem_free(struct de_merkle_mem *m);

/* The in-order position of perfect subtree (level, index): a unique integer key for storage. */
static inline uint64_t de_merkle_node_key(unsigned level, uint64_t index)
{
	return (index << (level + 1)) + ((uint64_t)1 << level) - 1;
}

#endif
