/*
 * fuzz_proof.c — the Merkle proof verifiers on arbitrary bytes, and the
 * prover checked against them.
 *
 * Input: a mode byte (bit 0: SHA-256 or BLAKE3; bit 1: inclusion or
 * consistency), two big-endian u64 (index/size or size1/size2), then items
 * of (length byte, bytes): the leaf or old root, the root or new root, and
 * up to 70 proof hashes, each of any length.  Verification must never
 * crash, read out of bounds or leak.  Then, as an oracle, a tree of up to
 * 64 leaves made from the input proves inclusion and consistency for sizes
 * taken from the two numbers, and every such proof must verify (abort if
 * not).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/merkle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void oracle(const struct de_merkle_hasher *h, uint64_t a, uint64_t b, const uint8_t *data,
		   size_t size)
{
	struct de_merkle_mem *m = de_merkle_mem_new(h);
	uint8_t proof[DE_MERKLE_MAX_PROOF][DE_MERKLE_HASH_LEN], leaf[32], r1[32], r2[32];
	struct de_merkle_blob pb[DE_MERKLE_MAX_PROOF];
	struct de_error err = {0};
	uint64_t n = 1 + b % 64, old = 1 + a % n;
	size_t np;

	if (!m)
		return;
	for (uint64_t i = 0; i < n; i++) {
		size_t off = size ? (size_t)(i * 7 % size) : 0;
		size_t len = size - off < 5 ? size - off : 5;
		if (de_merkle_mem_append(m, data + off, len, &err) < 0)
			abort();
	}
	struct de_merkle_source src = de_merkle_mem_source(m);
	if (de_merkle_root(&src, n, r2, &err) < 0 || de_merkle_root(&src, old, r1, &err) < 0 ||
	    de_merkle_prove_inclusion(&src, old - 1, n, proof, &np, &err) < 0 ||
	    src.get(src.arg, 0, old - 1, leaf, &err) < 0)
		abort();
	de_merkle_proof_blobs(proof[0], np, pb);
	if (de_merkle_verify_inclusion(h, old - 1, n, (struct de_merkle_blob){leaf, 32}, pb, np,
				       (struct de_merkle_blob){r2, 32}, &err) != 0)
		abort();
	if (de_merkle_prove_consistency(&src, old, n, proof, &np, &err) < 0)
		abort();
	de_merkle_proof_blobs(proof[0], np, pb);
	if (de_merkle_verify_consistency(h, old, n, pb, np, (struct de_merkle_blob){r1, 32},
					 (struct de_merkle_blob){r2, 32}, &err) != 0)
		abort();
	de_merkle_mem_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct de_merkle_blob items[72];
	struct de_error err = {0};
	size_t n = 0, off = 17;

	if (size < 17)
		return 0;
	const struct de_merkle_hasher *h = data[0] & 1 ? &de_merkle_blake3 : &de_merkle_sha256;
	uint64_t a = be64(data + 1), b = be64(data + 9);
	while (off < size && n < 72) {
		size_t len = data[off++];
		if (len > size - off)
			len = size - off;
		items[n].data = data + off;
		items[n].len = len;
		off += len;
		n++;
	}
	while (n < 2) {
		items[n].data = data;
		items[n].len = 0;
		n++;
	}
	if (data[0] & 2)
		de_merkle_verify_consistency(h, a, b, items + 2, n - 2, items[0], items[1], &err);
	else
		de_merkle_verify_inclusion(h, a, b, items[0], items + 2, n - 2, items[1], &err);
	oracle(h, a, b, data + 17, size - 17);
	return 0;
}
