/*
 * test_merkle.c — the RFC 9162 Merkle tree code.
 *
 *  - every case of tests/data/merkle-rfc6962/ (a copy of
 *    shared/testdata/merkle-rfc6962/: inclusion/ and consistency/, one JSON
 *    file per case with base64 hashes and wantErr), verified with SHA-256:
 *    each must pass or fail as the file says; the directory missing or
 *    holding fewer cases than it does today is a failure;
 *  - BLAKE3 trees of 1..300 leaves against a naive recursive MTH written
 *    here from the RFC's definition: roots, every inclusion proof and every
 *    consistency proof generated and verified, proofs compared with the
 *    naive PATH/SUBPROOF for trees up to 96 leaves, and (a third to a
 *    quarter of them, for valgrind's sake) each proof with one bit flipped,
 *    or checked against the wrong leaf, index or old root, refused;
 *  - the frontier reloaded from its source, and bad requests.
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "daemoneye/merkle.h"

/* ---- the RFC 6962 vectors ------------------------------------------------ */

/* base64 (standard, padded) into out; returns the length. */
static size_t b64dec(const char *s, uint8_t *out, size_t cap)
{
	size_t len = strlen(s);
	assert_true(len % 4 == 0);
	assert_true(len / 4 * 3 <= cap);
	if (!len)
		return 0;
	int n = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len);
	assert_true(n >= 0);
	if (s[len - 1] == '=')
		n--;
	if (s[len - 2] == '=')
		n--;
	return (size_t)n;
}

struct decoded {
	uint8_t bytes[80][64];
	struct de_merkle_blob blob[80];
	size_t n;
};

static struct de_merkle_blob dec1(const json_t *j, uint8_t buf[64])
{
	struct de_merkle_blob b = {buf, b64dec(json_string_value(j), buf, 64)};
	return b;
}

static void dec_proof(const json_t *arr, struct decoded *d)
{
	d->n = json_array_size(arr);
	assert_true(d->n <= 80);
	for (size_t i = 0; i < d->n; i++)
		d->blob[i] = dec1(json_array_get(arr, i), d->bytes[i]);
}

static int cases_run, cases_failing;

/*
 * The numbers of a case as unsigned 64-bit (some are 2^64 - 1, past what
 * jansson reads): each is taken from the text with strtoull and then
 * blanked to 0 so that jansson parses the rest.
 */
static uint64_t take_number(char *text, const char *key)
{
	char quoted[32];
	snprintf(quoted, sizeof(quoted), "\"%s\"", key);
	char *p = strstr(text, quoted);
	if (!p)
		return 0;
	p = strchr(p + strlen(quoted), ':');
	assert_non_null(p);
	p++;
	while (*p == ' ')
		p++;
	char *end;
	errno = 0;
	uint64_t v = strtoull(p, &end, 10);
	assert_int_equal(errno, 0);
	assert_true(end > p);
	*p = '0';
	memset(p + 1, ' ', (size_t)(end - p - 1));
	return v;
}

static void run_case(const char *path)
{
	json_error_t jerr;
	char text[65536];
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t len = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[len] = '\0';
	uint64_t idx = take_number(text, "leafIdx"), tsize = take_number(text, "treeSize");
	uint64_t size1 = take_number(text, "size1"), size2 = take_number(text, "size2");
	json_t *c = json_loads(text, 0, &jerr);
	struct de_error err = {0};
	static struct decoded proof;
	uint8_t b1[64], b2[64];
	int rc;

	if (!c)
		fail_msg("%s: %s", path, jerr.text);
	bool want_err = json_is_true(json_object_get(c, "wantErr"));
	dec_proof(json_object_get(c, "proof"), &proof);
	if (json_object_get(c, "leafIdx")) {
		rc = de_merkle_verify_inclusion(
			&de_merkle_sha256, idx, tsize, dec1(json_object_get(c, "leafHash"), b1),
			proof.blob, proof.n, dec1(json_object_get(c, "root"), b2), &err);
	} else {
		rc = de_merkle_verify_consistency(&de_merkle_sha256, size1, size2, proof.blob,
						  proof.n, dec1(json_object_get(c, "root1"), b1),
						  dec1(json_object_get(c, "root2"), b2), &err);
	}
	if (want_err && rc == 0)
		fail_msg("%s: verified, but must fail", path);
	if (!want_err && rc != 0)
		fail_msg("%s: must verify: %s", path, err.message);
	if (rc != 0) {
		assert_int_equal(rc, -EBADMSG);
		assert_int_equal(err.category, DE_ERR_VALIDATION);
		cases_failing++;
	}
	cases_run++;
	json_decref(c);
}

static void walk(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		fail_msg("cannot open %s", dir);
	while ((e = readdir(d))) {
		char path[4096];
		struct stat st;
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		assert_int_equal(stat(path, &st), 0);
		if (S_ISDIR(st.st_mode))
			walk(path);
		else if (strstr(e->d_name, ".json"))
			run_case(path);
	}
	closedir(d);
}

static void test_rfc6962_vectors(void **state)
{
	const char *src = getenv("DE_SOURCE_DIR");
	char dir[4096];

	(void)state;
	snprintf(dir, sizeof(dir), "%s/tests/data/merkle-rfc6962", src ? src : ".");
	walk(dir);
	printf("# %d RFC 6962 cases, %d of them must fail\n", cases_run, cases_failing);
	assert_int_equal(cases_run, 196);
	assert_true(cases_failing > 150);
}

/* ---- BLAKE3 trees against a naive MTH ------------------------------------ */

#define MAXN 300

static uint8_t leaves[MAXN][DE_MERKLE_HASH_LEN];

/* MTH(D[a:b]) straight from the definition. */
static void naive_mth(uint64_t a, uint64_t b, uint8_t out[DE_MERKLE_HASH_LEN])
{
	uint8_t l[DE_MERKLE_HASH_LEN], r[DE_MERKLE_HASH_LEN];

	if (b - a == 1) {
		memcpy(out, leaves[a], DE_MERKLE_HASH_LEN);
		return;
	}
	uint64_t k = 1;
	while (k * 2 < b - a)
		k *= 2;
	naive_mth(a, a + k, l);
	naive_mth(a + k, b, r);
	assert_int_equal(de_merkle_blake3.node(l, r, out), 0);
}

static void naive_path(uint64_t m, uint64_t a, uint64_t b, uint8_t (*p)[DE_MERKLE_HASH_LEN],
		       size_t *n)
{
	if (b - a <= 1)
		return;
	uint64_t k = 1;
	while (k * 2 < b - a)
		k *= 2;
	if (m < k) {
		naive_path(m, a, a + k, p, n);
		naive_mth(a + k, b, p[(*n)++]);
	} else {
		naive_path(m - k, a + k, b, p, n);
		naive_mth(a, a + k, p[(*n)++]);
	}
}

static void naive_subproof(uint64_t m, uint64_t a, uint64_t b, bool flag,
			   uint8_t (*p)[DE_MERKLE_HASH_LEN], size_t *n)
{
	if (m == b - a) {
		if (!flag)
			naive_mth(a, b, p[(*n)++]);
		return;
	}
	uint64_t k = 1;
	while (k * 2 < b - a)
		k *= 2;
	if (m <= k) {
		naive_subproof(m, a, a + k, flag, p, n);
		naive_mth(a + k, b, p[(*n)++]);
	} else {
		naive_subproof(m - k, a + k, b, false, p, n);
		naive_mth(a, a + k, p[(*n)++]);
	}
}

static struct de_merkle_blob blob(const uint8_t *h)
{
	struct de_merkle_blob b = {h, DE_MERKLE_HASH_LEN};
	return b;
}

static void test_blake3_trees(void **state)
{
	struct de_merkle_mem *m = de_merkle_mem_new(&de_merkle_blake3);
	struct de_merkle_source src;
	struct de_error err = {0};
	static uint8_t roots[MAXN + 1][DE_MERKLE_HASH_LEN];
	uint8_t proof[DE_MERKLE_MAX_PROOF][DE_MERKLE_HASH_LEN], naive[80][DE_MERKLE_HASH_LEN];
	struct de_merkle_blob pb[DE_MERKLE_MAX_PROOF];
	uint8_t got[DE_MERKLE_HASH_LEN];
	size_t n, nn;

	(void)state;
	assert_non_null(m);
	src = de_merkle_mem_source(m);
	assert_int_equal(de_merkle_root(&src, 0, roots[0], &err), 0);
	for (uint64_t size = 1; size <= MAXN; size++) {
		char data[32];
		int len = snprintf(data, sizeof(data), "entry %llu", (unsigned long long)size);
		assert_int_equal(de_merkle_blake3.leaf(data, (size_t)len, leaves[size - 1]), 0);
		assert_int_equal(de_merkle_mem_append(m, data, (size_t)len, &err), 0);
		assert_int_equal(de_merkle_mem_size(m), size);
		naive_mth(0, size, roots[size]);
		assert_int_equal(de_merkle_root(&src, size, got, &err), 0);
		assert_memory_equal(got, roots[size], DE_MERKLE_HASH_LEN);
	}
	for (uint64_t size = 1; size <= MAXN; size++) {
		for (uint64_t i = 0; i < size; i++) {
			assert_int_equal(de_merkle_prove_inclusion(&src, i, size, proof, &n, &err),
					 0);
			if (size <= 96) {
				nn = 0;
				naive_path(i, 0, size, naive, &nn);
				assert_int_equal(n, nn);
				assert_memory_equal(proof, naive, n * DE_MERKLE_HASH_LEN);
			}
			de_merkle_proof_blobs(proof[0], n, pb);
			if (de_merkle_verify_inclusion(&de_merkle_blake3, i, size, blob(leaves[i]),
						       pb, n, blob(roots[size]), &err) != 0)
				fail_msg("inclusion %llu in %llu: %s", (unsigned long long)i,
					 (unsigned long long)size, err.message);
			/* the wrong leaf or index is refused (a sample: valgrind's time) */
			if (size > 1 && (i + size) % 3 == 0)
				assert_int_equal(
					de_merkle_verify_inclusion(&de_merkle_blake3, i, size,
								   blob(leaves[(i + 1) % size]), pb,
								   n, blob(roots[size]), &err),
					-EBADMSG);
			if (size > 1)
				assert_int_equal(de_merkle_verify_inclusion(
							 &de_merkle_blake3, (i + 1) % size, size,
							 blob(leaves[i]), pb, n, blob(roots[size]),
							 &err),
						 -EBADMSG);
			if (n > 0 && (i + size) % 3 == 1) {
				proof[n / 2][i % DE_MERKLE_HASH_LEN] ^= 0x10;
				assert_int_equal(
					de_merkle_verify_inclusion(&de_merkle_blake3, i, size,
								   blob(leaves[i]), pb, n,
								   blob(roots[size]), &err),
					-EBADMSG);
			}
		}
		for (uint64_t old = 1; old <= size; old++) {
			assert_int_equal(
				de_merkle_prove_consistency(&src, old, size, proof, &n, &err), 0);
			if (size <= 96) {
				nn = 0;
				naive_subproof(old, 0, size, true, naive, &nn);
				assert_int_equal(n, nn);
				assert_memory_equal(proof, naive, n * DE_MERKLE_HASH_LEN);
			}
			de_merkle_proof_blobs(proof[0], n, pb);
			if (de_merkle_verify_consistency(&de_merkle_blake3, old, size, pb, n,
							 blob(roots[old]), blob(roots[size]),
							 &err) != 0)
				fail_msg("consistency %llu -> %llu: %s", (unsigned long long)old,
					 (unsigned long long)size, err.message);
			if (old < size && (old + size) % 4 == 0) {
				/* another old root (a rewritten history) is refused (a sample) */
				assert_int_equal(
					de_merkle_verify_consistency(&de_merkle_blake3, old, size,
								     pb, n, blob(roots[old - 1]),
								     blob(roots[size]), &err),
					-EBADMSG);
				proof[0][old % DE_MERKLE_HASH_LEN] ^= 0x01;
				assert_int_equal(de_merkle_verify_consistency(
							 &de_merkle_blake3, old, size, pb, n,
							 blob(roots[old]), blob(roots[size]), &err),
						 -EBADMSG);
			}
		}
	}
	de_merkle_mem_free(m);
}

/* The frontier rebuilt from stored subtrees gives the same root and goes on alike. */
static void test_frontier_load(void **state)
{
	struct de_merkle_mem *m = de_merkle_mem_new(&de_merkle_sha256);
	struct de_merkle_source src;
	struct de_merkle_frontier f;
	struct de_error err = {0};
	uint8_t a[DE_MERKLE_HASH_LEN], b[DE_MERKLE_HASH_LEN];

	(void)state;
	assert_non_null(m);
	src = de_merkle_mem_source(m);
	for (int i = 0; i < 77; i++) {
		assert_int_equal(de_merkle_mem_append(m, &i, sizeof(i), &err), 0);
		assert_int_equal(de_merkle_frontier_load(&src, (uint64_t)i + 1, &f, &err), 0);
		assert_int_equal(f.size, (uint64_t)i + 1);
		assert_int_equal(f.n, (unsigned)__builtin_popcount((unsigned)i + 1));
		assert_int_equal(de_merkle_frontier_root(&de_merkle_sha256, &f, a, &err), 0);
		assert_int_equal(de_merkle_root(&src, (uint64_t)i + 1, b, &err), 0);
		assert_memory_equal(a, b, DE_MERKLE_HASH_LEN);
	}
	de_merkle_mem_free(m);
}

static void test_bad_requests(void **state)
{
	struct de_merkle_mem *m = de_merkle_mem_new(&de_merkle_sha256);
	struct de_merkle_source src;
	struct de_error err = {0};
	uint8_t proof[DE_MERKLE_MAX_PROOF][DE_MERKLE_HASH_LEN], r[DE_MERKLE_HASH_LEN];
	size_t n = 99;

	(void)state;
	assert_non_null(m);
	src = de_merkle_mem_source(m);
	/* the empty tree's root is SHA-256 of nothing */
	assert_int_equal(de_merkle_root(&src, 0, r, &err), 0);
	assert_int_equal(r[0], 0xe3);
	assert_int_equal(r[31], 0x55);
	assert_int_equal(de_merkle_mem_append(m, "x", 1, &err), 0);
	assert_int_equal(de_merkle_prove_inclusion(&src, 1, 1, proof, &n, &err), -EINVAL);
	assert_int_equal(err.category, DE_ERR_VALIDATION);
	assert_int_equal(n, 99); /* untouched on failure */
	assert_int_equal(de_merkle_prove_consistency(&src, 0, 1, proof, &n, &err), -EINVAL);
	assert_int_equal(de_merkle_prove_consistency(&src, 2, 1, proof, &n, &err), -EINVAL);
	assert_int_equal(de_merkle_prove_consistency(&src, 1, 1, proof, &n, &err), 0);
	assert_int_equal(n, 0);
	/* a source asked past its size says so */
	assert_int_equal(de_merkle_root(&src, 2, r, &err), -EINVAL);
	de_merkle_mem_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc6962_vectors),
		cmocka_unit_test(test_blake3_trees),
		cmocka_unit_test(test_frontier_load),
		cmocka_unit_test(test_bad_requests),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
