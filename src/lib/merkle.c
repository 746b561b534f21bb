/*
 * merkle.c — RFC 9162 Merkle trees (see include/daemoneye/merkle.h): the
 * two hashers, the tree head and proofs computed from perfect subtrees
 * fetched through a source, the RFC's verification algorithms, the
 * frontier that says which perfect subtrees an append completes, and an
 * in-memory tree.
 *
 * Why a proof costs O(log n) fetches: every range the RFC's recursions
 * visit starts at a multiple of the largest power of two that fits in it,
 * so a range of power-of-two width is one perfect subtree, and the only
 * other ranges are those that end at the tree's right edge, each split
 * into a perfect left half and a smaller right-edge range.
 */
#include "daemoneye/merkle.h"
#include "daemoneye/blake3.h"

#include <assert.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* ---- hashers ------------------------------------------------------------- */

static int sha256_parts(const void *a, size_t alen, const void *b, size_t blen, const void *c,
			size_t clen, uint8_t out[DE_MERKLE_HASH_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n = 0;
	int ok;

	if (!ctx)
		return -ENOMEM;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	     (!alen || EVP_DigestUpdate(ctx, a, alen) == 1) &&
	     (!blen || EVP_DigestUpdate(ctx, b, blen) == 1) &&
	     (!clen || EVP_DigestUpdate(ctx, c, clen) == 1) &&
	     EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == DE_MERKLE_HASH_LEN;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -ENOMEM;
}

static int sha256_leaf(const void *data, size_t len, uint8_t out[DE_MERKLE_HASH_LEN])
{
	static const uint8_t prefix = 0x00;
	return sha256_parts(&prefix, 1, data, len, NULL, 0, out);
}

static int sha256_node(const uint8_t l[DE_MERKLE_HASH_LEN], const uint8_t r[DE_MERKLE_HASH_LEN],
		       uint8_t out[DE_MERKLE_HASH_LEN])
{
	static const uint8_t prefix = 0x01;
	return sha256_parts(&prefix, 1, l, DE_MERKLE_HASH_LEN, r, DE_MERKLE_HASH_LEN, out);
}

static int sha256_empty(uint8_t out[DE_MERKLE_HASH_LEN])
{
	return sha256_parts(NULL, 0, NULL, 0, NULL, 0, out);
}

const struct de_merkle_hasher de_merkle_sha256 = {"sha256", sha256_leaf, sha256_node, sha256_empty};

static int blake3_leaf(const void *data, size_t len, uint8_t out[DE_MERKLE_HASH_LEN])
{
	struct de_blake3_hasher h;
	static const uint8_t prefix = 0x00;

	de_blake3_init(&h);
	de_blake3_update(&h, &prefix, 1);
	de_blake3_update(&h, data, len);
	de_blake3_finalize(&h, out, DE_MERKLE_HASH_LEN);
	return 0;
}

static int blake3_node(const uint8_t l[DE_MERKLE_HASH_LEN], const uint8_t r[DE_MERKLE_HASH_LEN],
		       uint8_t out[DE_MERKLE_HASH_LEN])
{
	uint8_t buf[1 + 2 * DE_MERKLE_HASH_LEN];

	buf[0] = 0x01;
	memcpy(buf + 1, l, DE_MERKLE_HASH_LEN);
	memcpy(buf + 1 + DE_MERKLE_HASH_LEN, r, DE_MERKLE_HASH_LEN);
	de_blake3_hash(buf, sizeof(buf), out);
	return 0;
}

static int blake3_empty(uint8_t out[DE_MERKLE_HASH_LEN])
{
	de_blake3_hash(NULL, 0, out);
	return 0;
}

const struct de_merkle_hasher de_merkle_blake3 = {"blake3", blake3_leaf, blake3_node, blake3_empty};

static int hash_failed(struct de_error *err, int rc)
{
	return de_error_set(err, DE_ERR_CRYPTO, -rc,
			    "hashing a Merkle tree node failed (out of memory)");
}

/* ---- tree heads and proofs from perfect subtrees ------------------------- */

/* Largest power of two strictly below n (n >= 2). */
static uint64_t split_point(uint64_t n)
{
	assert(n >= 2);
	return (uint64_t)1 << (63 - __builtin_clzll(n - 1));
}

static bool is_pow2(uint64_t n)
{
	return n && !(n & (n - 1));
}

/*
 * MTH(D[start:start+len]), len >= 1, where start is a multiple of the
 * largest power of two <= len (true of every range the RFC visits).
 */
static int range_hash(const struct de_merkle_source *src, uint64_t start, uint64_t len,
		      uint8_t out[DE_MERKLE_HASH_LEN], struct de_error *err)
{
	uint8_t left[DE_MERKLE_HASH_LEN];
	int rc;

	assert(len >= 1);
	if (is_pow2(len)) {
		unsigned level = (unsigned)__builtin_ctzll(len);
		assert((start & (len - 1)) == 0);
		return src->get(src->arg, level, start >> level, out, err);
	}
	uint64_t k = split_point(len);
	if ((rc = range_hash(src, start, k, left, err)) < 0 ||
	    (rc = range_hash(src, start + k, len - k, out, err)) < 0)
		return rc;
	if ((rc = src->hasher->node(left, out, out)) < 0)
		return hash_failed(err, rc);
	return 0;
}

int de_merkle_root(const struct de_merkle_source *src, uint64_t size,
		   uint8_t out[DE_MERKLE_HASH_LEN], struct de_error *err)
{
	int rc;

	if (size == 0) {
		if ((rc = src->hasher->empty(out)) < 0)
			return hash_failed(err, rc);
		return 0;
	}
	return range_hash(src, 0, size, out, err);
}

/* Proofs are built leaf-first, which is the RFC's order (its ":" appends). */
struct proof_buf {
	uint8_t (*h)[DE_MERKLE_HASH_LEN];
	size_t n;
};

static int proof_add(const struct de_merkle_source *src, struct proof_buf *p, uint64_t start,
		     uint64_t len, struct de_error *err)
{
	if (p->n >= DE_MERKLE_MAX_PROOF)
		return de_error_set(err, DE_ERR_VALIDATION, E2BIG, "Merkle proof too long");
	int rc = range_hash(src, start, len, p->h[p->n], err);
	if (rc == 0)
		p->n++;
	return rc;
}

/* PATH(m, D[start:start+n]) (RFC 9162 2.1.3.1), appended to p. */
static int path(const struct de_merkle_source *src, uint64_t m, uint64_t start, uint64_t n,
		struct proof_buf *p, struct de_error *err)
{
	int rc;

	if (n <= 1)
		return 0;
	uint64_t k = split_point(n);
	if (m < k) {
		if ((rc = path(src, m, start, k, p, err)) < 0)
			return rc;
		return proof_add(src, p, start + k, n - k, err);
	}
	if ((rc = path(src, m - k, start + k, n - k, p, err)) < 0)
		return rc;
	return proof_add(src, p, start, k, err);
}

int de_merkle_prove_inclusion(const struct de_merkle_source *src, uint64_t index, uint64_t size,
			      uint8_t proof[DE_MERKLE_MAX_PROOF][DE_MERKLE_HASH_LEN], size_t *n,
			      struct de_error *err)
{
	struct proof_buf p = {proof, 0};
	int rc;

	if (index >= size)
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "no entry %llu in a tree of %llu entries",
				    (unsigned long long)index, (unsigned long long)size);
	if ((rc = path(src, index, 0, size, &p, err)) < 0)
		return rc;
	*n = p.n;
	return 0;
}

/* SUBPROOF(m, D[start:start+n], b) (RFC 9162 2.1.4.1), appended to p. */
static int subproof(const struct de_merkle_source *src, uint64_t m, uint64_t start, uint64_t n,
		    bool b, struct proof_buf *p, struct de_error *err)
{
	int rc;

	if (m == n)
		return b ? 0 : proof_add(src, p, start, n, err);
	uint64_t k = split_point(n);
	if (m <= k) {
		if ((rc = subproof(src, m, start, k, b, p, err)) < 0)
			return rc;
		return proof_add(src, p, start + k, n - k, err);
	}
	if ((rc = subproof(src, m - k, start + k, n - k, false, p, err)) < 0)
		return rc;
	return proof_add(src, p, start, k, err);
}

int de_merkle_prove_consistency(const struct de_merkle_source *src, uint64_t size1, uint64_t size2,
				uint8_t proof[DE_MERKLE_MAX_PROOF][DE_MERKLE_HASH_LEN], size_t *n,
				struct de_error *err)
{
	struct proof_buf p = {proof, 0};
	int rc;

	if (size1 == 0 || size1 > size2)
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "no consistency proof from %llu to %llu entries (need 0 < old "
				    "<= new)",
				    (unsigned long long)size1, (unsigned long long)size2);
	if ((rc = subproof(src, size1, 0, size2, true, &p, err)) < 0)
		return rc;
	*n = p.n;
	return 0;
}

/* ---- verification (RFC 9162 2.1.3.2 and 2.1.4.2) ------------------------- */

void de_merkle_proof_blobs(const uint8_t *proof, size_t n, struct de_merkle_blob *out)
{
	for (size_t i = 0; i < n; i++) {
		out[i].data = proof + i * DE_MERKLE_HASH_LEN;
		out[i].len = DE_MERKLE_HASH_LEN;
	}
}

static int bad(struct de_error *err, const char *what)
{
	return de_error_set(err, DE_ERR_VALIDATION, EBADMSG, "Merkle proof does not verify: %s",
			    what);
}

static bool blob_equal(struct de_merkle_blob a, const uint8_t h[DE_MERKLE_HASH_LEN])
{
	return a.len == DE_MERKLE_HASH_LEN && memcmp(a.data, h, DE_MERKLE_HASH_LEN) == 0;
}

static int proof_lengths(const struct de_merkle_blob *proof, size_t nproof, struct de_error *err)
{
	if (nproof > DE_MERKLE_MAX_PROOF)
		return bad(err, "more hashes than any tree needs");
	for (size_t i = 0; i < nproof; i++)
		if (proof[i].len != DE_MERKLE_HASH_LEN)
			return de_error_set(err, DE_ERR_VALIDATION, EBADMSG,
					    "Merkle proof does not verify: hash %zu is %zu bytes, "
					    "not %d",
					    i, proof[i].len, DE_MERKLE_HASH_LEN);
	return 0;
}

int de_merkle_verify_inclusion(const struct de_merkle_hasher *h, uint64_t index, uint64_t size,
			       struct de_merkle_blob leaf, const struct de_merkle_blob *proof,
			       size_t nproof, struct de_merkle_blob root, struct de_error *err)
{
	uint8_t r[DE_MERKLE_HASH_LEN];
	int rc;

	if (index >= size)
		return bad(err, "the entry is past the tree's end");
	if (leaf.len != DE_MERKLE_HASH_LEN)
		return bad(err, "the leaf hash has the wrong length");
	if (root.len != DE_MERKLE_HASH_LEN)
		return bad(err, "the root hash has the wrong length");
	if ((rc = proof_lengths(proof, nproof, err)) < 0)
		return rc;
	uint64_t fn = index, sn = size - 1;
	memcpy(r, leaf.data, DE_MERKLE_HASH_LEN);
	for (size_t i = 0; i < nproof; i++) {
		if (sn == 0)
			return bad(err, "the proof is longer than the path");
		if ((fn & 1) || fn == sn) {
			rc = h->node(proof[i].data, r, r);
			if (!(fn & 1))
				while (fn && !(fn & 1)) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			rc = h->node(r, proof[i].data, r);
		}
		if (rc < 0)
			return hash_failed(err, rc);
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0)
		return bad(err, "the proof is shorter than the path");
	if (!blob_equal(root, r))
		return bad(err, "the computed root differs from the expected root");
	return 0;
}

int de_merkle_verify_consistency(const struct de_merkle_hasher *h, uint64_t size1, uint64_t size2,
				 const struct de_merkle_blob *proof, size_t nproof,
				 struct de_merkle_blob root1, struct de_merkle_blob root2,
				 struct de_error *err)
{
	uint8_t fr[DE_MERKLE_HASH_LEN], sr[DE_MERKLE_HASH_LEN];
	size_t i = 0;
	int rc;

	if (size1 == 0)
		return bad(err, "the old tree is empty (any tree extends it: nothing to prove)");
	if (size1 > size2)
		return bad(err, "the old tree is larger than the new one");
	if (size1 == size2) {
		if (nproof)
			return bad(err, "equal sizes need an empty proof");
		if (root1.len != root2.len || memcmp(root1.data, root2.data, root1.len) != 0)
			return bad(err, "equal sizes but different roots");
		return 0;
	}
	if (nproof == 0)
		return bad(err, "the proof is empty");
	if (root1.len != DE_MERKLE_HASH_LEN || root2.len != DE_MERKLE_HASH_LEN)
		return bad(err, "a root hash has the wrong length");
	if ((rc = proof_lengths(proof, nproof, err)) < 0)
		return rc;
	uint64_t fn = size1 - 1, sn = size2 - 1;
	if (is_pow2(size1)) {
		/* the old root is the first node of the path */
		memcpy(fr, root1.data, DE_MERKLE_HASH_LEN);
	} else {
		memcpy(fr, proof[0].data, DE_MERKLE_HASH_LEN);
		i = 1;
	}
	memcpy(sr, fr, DE_MERKLE_HASH_LEN);
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	for (; i < nproof; i++) {
		if (sn == 0)
			return bad(err, "the proof is longer than the path");
		if ((fn & 1) || fn == sn) {
			if ((rc = h->node(proof[i].data, fr, fr)) < 0 ||
			    (rc = h->node(proof[i].data, sr, sr)) < 0)
				return hash_failed(err, rc);
			if (!(fn & 1))
				while (fn && !(fn & 1)) {
					fn >>= 1;
					sn >>= 1;
				}
		} else if ((rc = h->node(sr, proof[i].data, sr)) < 0) {
			return hash_failed(err, rc);
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0)
		return bad(err, "the proof is shorter than the path");
	if (!blob_equal(root1, fr))
		return bad(err, "the old root does not match (history rewritten?)");
	if (!blob_equal(root2, sr))
		return bad(err, "the new root does not match");
	return 0;
}

/* ---- the frontier -------------------------------------------------------- */

int de_merkle_frontier_append(const struct de_merkle_hasher *h, struct de_merkle_frontier *f,
			      const uint8_t leaf_hash[DE_MERKLE_HASH_LEN], de_merkle_emit_fn emit,
			      void *arg, struct de_error *err)
{
	uint8_t cur[DE_MERKLE_HASH_LEN];
	uint64_t size = f->size + 1;
	unsigned n = f->n, level = 0;
	int rc;

	if (size == 0)
		return de_error_set(err, DE_ERR_VALIDATION, EOVERFLOW, "Merkle tree is full");
	memcpy(cur, leaf_hash, DE_MERKLE_HASH_LEN);
	/* a leaf completes one subtree per trailing 1-bit of the old size */
	for (;;) {
		if (emit && (rc = emit(arg, level, (size >> level) - 1, cur, err)) < 0)
			return rc;
		if (((size >> level) & 1) || n == 0)
			break;
		/* (size >> level) is even: cur is a right child; its sibling tops the stack */
		if ((rc = h->node(f->hash[n - 1], cur, cur)) < 0)
			return hash_failed(err, rc);
		n--;
		level++;
	}
	memcpy(f->hash[n], cur, DE_MERKLE_HASH_LEN);
	f->n = n + 1;
	f->size = size;
	return 0;
}

int de_merkle_frontier_root(const struct de_merkle_hasher *h, const struct de_merkle_frontier *f,
			    uint8_t out[DE_MERKLE_HASH_LEN], struct de_error *err)
{
	int rc;

	if (f->n == 0) {
		if ((rc = h->empty(out)) < 0)
			return hash_failed(err, rc);
		return 0;
	}
	memcpy(out, f->hash[f->n - 1], DE_MERKLE_HASH_LEN);
	for (unsigned i = f->n - 1; i-- > 0;)
		if ((rc = h->node(f->hash[i], out, out)) < 0)
			return hash_failed(err, rc);
	return 0;
}

int de_merkle_frontier_load(const struct de_merkle_source *src, uint64_t size,
			    struct de_merkle_frontier *out, struct de_error *err)
{
	struct de_merkle_frontier f = {.size = size};
	uint64_t start = 0;
	int rc;

	for (int level = 63; level >= 0; level--) {
		if (!((size >> level) & 1))
			continue;
		if ((rc = src->get(src->arg, (unsigned)level, start >> level, f.hash[f.n], err)) <
		    0)
			return rc;
		f.n++;
		start += (uint64_t)1 << level;
	}
	*out = f;
	return 0;
}

/* ---- the in-memory tree -------------------------------------------------- */

struct de_merkle_mem {
	const struct de_merkle_hasher *h;
	struct de_merkle_frontier f;
	uint8_t (*nodes)[DE_MERKLE_HASH_LEN]; /* by de_merkle_node_key() */
	size_t cap;			      /* entries allocated in nodes */
};

struct de_merkle_mem *de_merkle_mem_new(const struct de_merkle_hasher *h)
{
	struct de_merkle_mem *m = calloc(1, sizeof(*m));

	if (m)
		m->h = h;
	return m;
}

static int mem_store(void *arg, unsigned level, uint64_t index,
		     const uint8_t hash[DE_MERKLE_HASH_LEN], struct de_error *err)
{
	struct de_merkle_mem *m = arg;
	uint64_t key = de_merkle_node_key(level, index);

	if (key >= m->cap) {
		size_t cap = m->cap ? m->cap : 64;
		while (cap <= key)
			cap *= 2;
		void *p = realloc(m->nodes, cap * DE_MERKLE_HASH_LEN);
		if (!p)
			return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
		m->nodes = p;
		m->cap = cap;
	}
	memcpy(m->nodes[key], hash, DE_MERKLE_HASH_LEN);
	return 0;
}

int de_merkle_mem_append_hash(struct de_merkle_mem *m, const uint8_t leaf_hash[DE_MERKLE_HASH_LEN],
			      struct de_error *err)
{
	return de_merkle_frontier_append(m->h, &m->f, leaf_hash, mem_store, m, err);
}

int de_merkle_mem_append(struct de_merkle_mem *m, const void *data, size_t len,
			 struct de_error *err)
{
	uint8_t lh[DE_MERKLE_HASH_LEN];
	int rc = m->h->leaf(data, len, lh);

	if (rc < 0)
		return hash_failed(err, rc);
	return de_merkle_mem_append_hash(m, lh, err);
}

uint64_t de_merkle_mem_size(const struct de_merkle_mem *m)
{
	return m->f.size;
}

static int mem_get(void *arg, unsigned level, uint64_t index, uint8_t out[DE_MERKLE_HASH_LEN],
		   struct de_error *err)
{
	struct de_merkle_mem *m = arg;

	if (((index + 1) << level) > m->f.size)
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "no complete subtree at level %u index %llu", level,
				    (unsigned long long)index);
	memcpy(out, m->nodes[de_merkle_node_key(level, index)], DE_MERKLE_HASH_LEN);
	return 0;
}

struct de_merkle_source de_merkle_mem_source(struct de_merkle_mem *m)
{
	struct de_merkle_source s = {m->h, mem_get, m};
	return s;
}

void de_merkle_mem_free(struct de_merkle_mem *m)
{
	if (!m)
		return;
	free(m->nodes);
	free(m);
}
