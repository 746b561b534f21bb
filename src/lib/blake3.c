/*
 * blake3.c — BLAKE3 (see include/daemoneye/blake3.h), written from the
 * specification (O'Connor, Aumasson, Neves, Wilcox-O'Hearn, 2020).
 *
 * The input is split into 1 KiB chunks, each compressed block by block into
 * a chaining value (CV); CVs are paired into parent nodes up a binary tree
 * whose left subtrees are always complete and a power of two chunks wide;
 * the root node is compressed once more with the ROOT flag, as many times
 * as output blocks are wanted (the block counter numbers them).
 *
 * Streaming keeps the CVs of finished complete subtrees on a stack (one per
 * 1-bit of the number of chunks so far).  Nothing is pushed unless more
 * input follows it, so a pushed subtree is never the root and needs no
 * lazy treatment; the last chunk stays in the chunk state until finalize.
 * Whole chunks that arrive together are hashed as aligned subtrees of up
 * to 64 chunks: all their chunks side by side, then each level of parents
 * side by side, through the implementation's "hash many" (blake3_int.h).
 */
#include "daemoneye/blake3.h"
#include "blake3_int.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

/* Largest subtree hashed in one go (its CVs live on the stack: 2 KiB). */
#define MAX_SUBTREE_CHUNKS 64

/* ---- the compression function -------------------------------------------- */

static inline uint32_t rotr32(uint32_t w, unsigned c)
{
	return (w >> c) | (w << (32 - c));
}

/* The quarter-round G, mixing message words x and y into a column or diagonal. */
static inline void g(uint32_t v[16], int a, int b, int c, int d, uint32_t x, uint32_t y)
{
	v[a] = v[a] + v[b] + x;
	v[d] = rotr32(v[d] ^ v[a], 16);
	v[c] = v[c] + v[d];
	v[b] = rotr32(v[b] ^ v[c], 12);
	v[a] = v[a] + v[b] + y;
	v[d] = rotr32(v[d] ^ v[a], 8);
	v[c] = v[c] + v[d];
	v[b] = rotr32(v[b] ^ v[c], 7);
}

void de_b3_compress(const uint32_t cv[8], const uint8_t block[64], uint8_t block_len,
		    uint64_t counter, uint8_t flags, uint32_t out[16])
{
	uint32_t m[16], v[16];

	for (size_t i = 0; i < 16; i++)
		m[i] = b3_load32(block + 4 * i);
	memcpy(v, cv, 32);
	memcpy(v + 8, B3_IV, 16);
	v[12] = (uint32_t)counter;
	v[13] = (uint32_t)(counter >> 32);
	v[14] = block_len;
	v[15] = flags;
	for (int r = 0; r < 7; r++) {
		const uint8_t *s = B3_SCHEDULE[r];
		g(v, 0, 4, 8, 12, m[s[0]], m[s[1]]);
		g(v, 1, 5, 9, 13, m[s[2]], m[s[3]]);
		g(v, 2, 6, 10, 14, m[s[4]], m[s[5]]);
		g(v, 3, 7, 11, 15, m[s[6]], m[s[7]]);
		g(v, 0, 5, 10, 15, m[s[8]], m[s[9]]);
		g(v, 1, 6, 11, 12, m[s[10]], m[s[11]]);
		g(v, 2, 7, 8, 13, m[s[12]], m[s[13]]);
		g(v, 3, 4, 9, 14, m[s[14]], m[s[15]]);
	}
	for (int i = 0; i < 8; i++) {
		out[i] = v[i] ^ v[i + 8];
		out[i + 8] = v[i + 8] ^ cv[i];
	}
}

void de_b3_hash_many_portable(const uint8_t *const *inputs, size_t n, size_t blocks,
			      const uint32_t key[8], uint64_t counter, bool inc_counter,
			      uint8_t flags, uint8_t flag_start, uint8_t flag_end, uint8_t *out)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t cv[8], o[16];
		memcpy(cv, key, 32);
		for (size_t b = 0; b < blocks; b++) {
			uint8_t f = flags;
			if (b == 0)
				f |= flag_start;
			if (b + 1 == blocks)
				f |= flag_end;
			de_b3_compress(cv, inputs[i] + 64 * b, 64, counter, f, o);
			memcpy(cv, o, 32);
		}
		for (size_t w = 0; w < 8; w++)
			b3_store32(out + 32 * i + 4 * w, cv[w]);
		if (inc_counter)
			counter++;
	}
}

/* ---- implementations ----------------------------------------------------- */

/* Off x86 the SIMD files compile to nothing; impl_supported() says no to them. */
static const b3_hash_many_fn impl_fns[DE_BLAKE3_IMPL_MAX] = {
	[DE_BLAKE3_PORTABLE] = de_b3_hash_many_portable,
#if defined(__x86_64__) || defined(__i386__)
	[DE_BLAKE3_SSE41] = de_b3_hash_many_sse41,
	[DE_BLAKE3_AVX2] = de_b3_hash_many_avx2,
	[DE_BLAKE3_AVX512] = de_b3_hash_many_avx512,
#else
	[DE_BLAKE3_SSE41] = de_b3_hash_many_portable,
	[DE_BLAKE3_AVX2] = de_b3_hash_many_portable,
	[DE_BLAKE3_AVX512] = de_b3_hash_many_portable,
#endif
};

static const char *const impl_names[DE_BLAKE3_IMPL_MAX] = {
	[DE_BLAKE3_AUTO] = "auto", [DE_BLAKE3_PORTABLE] = "portable", [DE_BLAKE3_SSE41] = "sse41",
	[DE_BLAKE3_AVX2] = "avx2", [DE_BLAKE3_AVX512] = "avx512",
};

/* The forced implementation, DE_BLAKE3_AUTO when none (atomic accesses). */
static int forced_impl;

bool de_blake3_impl_supported(enum de_blake3_impl impl)
{
	switch (impl) {
	case DE_BLAKE3_AUTO:
	case DE_BLAKE3_PORTABLE:
		return true;
#if defined(__x86_64__) || defined(__i386__)
	case DE_BLAKE3_SSE41:
		__builtin_cpu_init();
		return __builtin_cpu_supports("sse4.1") && __builtin_cpu_supports("ssse3");
	case DE_BLAKE3_AVX2:
		__builtin_cpu_init();
		return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("sse4.1");
	case DE_BLAKE3_AVX512:
		__builtin_cpu_init();
		return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
		       __builtin_cpu_supports("avx2") && __builtin_cpu_supports("sse4.1");
#endif
	default:
		return false;
	}
}

enum de_blake3_impl de_blake3_impl_active(void)
{
	int f = __atomic_load_n(&forced_impl, __ATOMIC_RELAXED);
	static int best; /* detected once; 0 until then */

	if (f != DE_BLAKE3_AUTO)
		return (enum de_blake3_impl)f;
	int b = __atomic_load_n(&best, __ATOMIC_RELAXED);
	if (!b) {
		b = DE_BLAKE3_PORTABLE;
		for (int i = DE_BLAKE3_IMPL_MAX - 1; i > DE_BLAKE3_PORTABLE; i--) {
			if (de_blake3_impl_supported((enum de_blake3_impl)i)) {
				b = i;
				break;
			}
		}
		__atomic_store_n(&best, b, __ATOMIC_RELAXED);
	}
	return (enum de_blake3_impl)b;
}

int de_blake3_force_impl(enum de_blake3_impl impl)
{
	if ((int)impl < 0 || impl >= DE_BLAKE3_IMPL_MAX)
		return -EINVAL;
	if (!de_blake3_impl_supported(impl))
		return -ENOTSUP;
	__atomic_store_n(&forced_impl, (int)impl, __ATOMIC_RELAXED);
	return 0;
}

const char *de_blake3_impl_name(enum de_blake3_impl impl)
{
	if ((int)impl < 0 || impl >= DE_BLAKE3_IMPL_MAX)
		return "?";
	return impl_names[impl];
}

/* ---- nodes and their output ---------------------------------------------- */

/* A node ready to be compressed: as a CV (non-root) or as root output. */
struct node {
	uint32_t cv[8];	   /* input chaining value */
	uint8_t block[64]; /* its last block (zero padded) */
	uint8_t block_len; /* bytes used in block */
	uint64_t counter;  /* chunk index (chunks) or 0 (parents) */
	uint8_t flags;	   /* without ROOT */
};

static void node_cv(const struct node *n, uint8_t out[32])
{
	uint32_t o[16];

	de_b3_compress(n->cv, n->block, n->block_len, n->counter, n->flags, o);
	for (size_t i = 0; i < 8; i++)
		b3_store32(out + 4 * i, o[i]);
}

static void parent_node(const uint8_t left[32], const uint8_t right[32], const uint32_t key[8],
			uint8_t mode, struct node *out)
{
	memcpy(out->cv, key, 32);
	memcpy(out->block, left, 32);
	memcpy(out->block + 32, right, 32);
	out->block_len = 64;
	out->counter = 0;
	out->flags = mode | B3_PARENT;
}

/* Root output bytes [seek, seek + len): output block i is the root compressed with counter i. */
static void node_root_bytes(const struct node *n, uint64_t seek, uint8_t *out, size_t len)
{
	uint64_t blk = seek / 64;
	size_t skip = (size_t)(seek % 64);

	while (len > 0) {
		uint32_t o[16];
		uint8_t bytes[64];
		de_b3_compress(n->cv, n->block, n->block_len, blk, n->flags | B3_ROOT, o);
		for (size_t i = 0; i < 16; i++)
			b3_store32(bytes + 4 * i, o[i]);
		size_t take = 64 - skip < len ? 64 - skip : len;
		memcpy(out, bytes + skip, take);
		out += take;
		len -= take;
		skip = 0;
		blk++;
	}
}

/* ---- the chunk state ----------------------------------------------------- */

/*
 * chunk.cv: the CV after the blocks compressed so far (the key at first);
 * counter: this chunk's index; buf/buf_len: the block not yet compressed
 * (kept until more input shows it is not the chunk's last); flags: the mode.
 */
static void chunk_reset(struct de_blake3_chunk *c, const uint32_t key[8], uint64_t counter,
			uint8_t mode)
{
	memcpy(c->cv, key, 32);
	c->counter = counter;
	memset(c->buf, 0, sizeof(c->buf));
	c->buf_len = 0;
	c->blocks_compressed = 0;
	c->flags = mode;
}

static size_t chunk_len(const struct de_blake3_chunk *c)
{
	return (size_t)c->blocks_compressed * 64 + c->buf_len;
}

static void chunk_update(struct de_blake3_chunk *c, const uint8_t *in, size_t len)
{
	while (len > 0) {
		if (c->buf_len == 64) {
			uint32_t o[16];
			uint8_t f = c->flags | (c->blocks_compressed == 0 ? B3_CHUNK_START : 0);
			de_b3_compress(c->cv, c->buf, 64, c->counter, f, o);
			memcpy(c->cv, o, 32);
			c->blocks_compressed++;
			c->buf_len = 0;
			memset(c->buf, 0, sizeof(c->buf));
		}
		size_t room = 64 - (size_t)c->buf_len;
		size_t take = room < len ? room : len;
		memcpy(c->buf + c->buf_len, in, take);
		c->buf_len = (uint8_t)(c->buf_len + take);
		in += take;
		len -= take;
	}
}

static void chunk_node(const struct de_blake3_chunk *c, struct node *out)
{
	memcpy(out->cv, c->cv, 32);
	memcpy(out->block, c->buf, 64);
	out->block_len = c->buf_len;
	out->counter = c->counter;
	out->flags = c->flags | B3_CHUNK_END | (c->blocks_compressed == 0 ? B3_CHUNK_START : 0);
}

/* ---- the hasher ---------------------------------------------------------- */

static void hasher_start(struct de_blake3_hasher *h, const uint32_t key[8], uint8_t mode)
{
	memcpy(h->key, key, 32);
	chunk_reset(&h->chunk, key, 0, mode);
	h->cv_stack_len = 0;
}

void de_blake3_init(struct de_blake3_hasher *h)
{
	hasher_start(h, B3_IV, 0);
}

void de_blake3_init_keyed(struct de_blake3_hasher *h, const uint8_t key[DE_BLAKE3_KEY_LEN])
{
	uint32_t k[8];

	for (size_t i = 0; i < 8; i++)
		k[i] = b3_load32(key + 4 * i);
	hasher_start(h, k, B3_KEYED_HASH);
	explicit_bzero(k, sizeof(k));
}

void de_blake3_init_derive_key(struct de_blake3_hasher *h, const void *context, size_t context_len)
{
	uint8_t ctx_key[32];
	uint32_t k[8];

	hasher_start(h, B3_IV, B3_DERIVE_KEY_CONTEXT);
	de_blake3_update(h, context, context_len);
	de_blake3_finalize(h, ctx_key, sizeof(ctx_key));
	for (size_t i = 0; i < 8; i++)
		k[i] = b3_load32(ctx_key + 4 * i);
	hasher_start(h, k, B3_DERIVE_KEY_MATERIAL);
	explicit_bzero(ctx_key, sizeof(ctx_key));
	explicit_bzero(k, sizeof(k));
}

static unsigned popcount64(uint64_t x)
{
	return (unsigned)__builtin_popcountll(x);
}

/*
 * Push the CV of a complete subtree that ends after `total` chunks, then
 * merge the stack down to one entry per 1-bit of `total`.  Only called when
 * more input follows, so no merged parent can be the root.
 */
static void push_cv(struct de_blake3_hasher *h, const uint8_t cv[32], uint64_t total)
{
	assert(h->cv_stack_len < DE_BLAKE3_MAX_DEPTH);
	memcpy(h->cv_stack[h->cv_stack_len++], cv, 32);
	while (h->cv_stack_len > popcount64(total)) {
		struct node p;
		parent_node(h->cv_stack[h->cv_stack_len - 2], h->cv_stack[h->cv_stack_len - 1],
			    h->key, h->chunk.flags, &p);
		h->cv_stack_len--;
		node_cv(&p, h->cv_stack[h->cv_stack_len - 1]);
	}
}

/*
 * The CV of the complete subtree of `nchunks` (a power of two, at most
 * MAX_SUBTREE_CHUNKS) whole chunks at `in`, the first being chunk `counter`:
 * every chunk side by side, then each level of parents side by side.
 */
static void hash_subtree(b3_hash_many_fn many, const uint32_t key[8], uint8_t mode,
			 const uint8_t *in, size_t nchunks, uint64_t counter, uint8_t out[32])
{
	uint8_t cvs[MAX_SUBTREE_CHUNKS * 32];
	const uint8_t *ptrs[MAX_SUBTREE_CHUNKS];

	for (size_t i = 0; i < nchunks; i++)
		ptrs[i] = in + i * DE_BLAKE3_CHUNK_LEN;
	many(ptrs, nchunks, DE_BLAKE3_CHUNK_LEN / 64, key, counter, true, mode, B3_CHUNK_START,
	     B3_CHUNK_END, cvs);
	for (size_t n = nchunks / 2; n >= 1; n /= 2) {
		for (size_t i = 0; i < n; i++)
			ptrs[i] = cvs + 64 * i;
		many(ptrs, n, 1, key, 0, false, mode | B3_PARENT, 0, 0, cvs);
	}
	memcpy(out, cvs, 32);
}

void de_blake3_update(struct de_blake3_hasher *h, const void *input, size_t len)
{
	const uint8_t *in = input;
	b3_hash_many_fn many = impl_fns[de_blake3_impl_active()];

	while (len > 0) {
		size_t cl = chunk_len(&h->chunk);
		if (cl == DE_BLAKE3_CHUNK_LEN) {
			/* the full chunk is not the last: finish it */
			struct node n;
			uint8_t cv[32];
			uint64_t next = h->chunk.counter + 1;
			chunk_node(&h->chunk, &n);
			node_cv(&n, cv);
			push_cv(h, cv, next);
			chunk_reset(&h->chunk, h->key, next, h->chunk.flags);
			cl = 0;
		}
		if (cl == 0 && len > DE_BLAKE3_CHUNK_LEN) {
			/*
			 * Whole chunks with input after them: the largest
			 * subtree that is aligned on the chunk count and
			 * leaves at least one byte.
			 */
			uint64_t counter = h->chunk.counter;
			size_t n = MAX_SUBTREE_CHUNKS;
			while (n > 1 && ((uint64_t)n * DE_BLAKE3_CHUNK_LEN >= len ||
					 (counter & (n - 1)) != 0))
				n /= 2;
			uint8_t cv[32];
			hash_subtree(many, h->key, h->chunk.flags, in, n, counter, cv);
			push_cv(h, cv, counter + n);
			h->chunk.counter = counter + n;
			in += n * DE_BLAKE3_CHUNK_LEN;
			len -= n * DE_BLAKE3_CHUNK_LEN;
			continue;
		}
		size_t take = DE_BLAKE3_CHUNK_LEN - cl < len ? DE_BLAKE3_CHUNK_LEN - cl : len;
		chunk_update(&h->chunk, in, take);
		in += take;
		len -= take;
	}
}

void de_blake3_finalize_seek(const struct de_blake3_hasher *h, uint64_t seek, uint8_t *out,
			     size_t out_len)
{
	struct node n;

	/* the right spine: the last chunk, then each stacked subtree to its left */
	chunk_node(&h->chunk, &n);
	for (int i = h->cv_stack_len - 1; i >= 0; i--) {
		uint8_t cv[32];
		node_cv(&n, cv);
		parent_node(h->cv_stack[i], cv, h->key, h->chunk.flags, &n);
	}
	node_root_bytes(&n, seek, out, out_len);
	explicit_bzero(&n, sizeof(n));
}

void de_blake3_finalize(const struct de_blake3_hasher *h, uint8_t *out, size_t out_len)
{
	de_blake3_finalize_seek(h, 0, out, out_len);
}

void de_blake3_hasher_clear(struct de_blake3_hasher *h)
{
	if (h)
		explicit_bzero(h, sizeof(*h));
}

/* ---- one-shot forms ------------------------------------------------------ */

void de_blake3_hash(const void *in, size_t len, uint8_t out[DE_BLAKE3_OUT_LEN])
{
	struct de_blake3_hasher h;

	de_blake3_init(&h);
	de_blake3_update(&h, in, len);
	de_blake3_finalize(&h, out, DE_BLAKE3_OUT_LEN);
}

void de_blake3_keyed_hash(const uint8_t key[DE_BLAKE3_KEY_LEN], const void *in, size_t len,
			  uint8_t out[DE_BLAKE3_OUT_LEN])
{
	struct de_blake3_hasher h;

	de_blake3_init_keyed(&h, key);
	de_blake3_update(&h, in, len);
	de_blake3_finalize(&h, out, DE_BLAKE3_OUT_LEN);
	de_blake3_hasher_clear(&h);
}

void de_blake3_derive_key(const char *context, const void *material, size_t len, uint8_t *out,
			  size_t out_len)
{
	struct de_blake3_hasher h;

	de_blake3_init_derive_key(&h, context, strlen(context));
	de_blake3_update(&h, material, len);
	de_blake3_finalize(&h, out, out_len);
	de_blake3_hasher_clear(&h);
}
