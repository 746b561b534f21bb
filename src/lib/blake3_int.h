/*
 * blake3_int.h — what blake3.c shares with its SIMD files (blake3_sse41.c,
 * blake3_avx2.c, blake3_avx512vl.c, blake3_avx512.c): the spec's constants
 * and the one operation they speed up, "hash many": N equal-length inputs
 * (whole chunks, or parent blocks) compressed side by side into N chaining
 * values.
 */
#ifndef DAEMONEYE_BLAKE3_INT_H
#define DAEMONEYE_BLAKE3_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Domain flags (spec, table 3). */
enum {
	B3_CHUNK_START = 1 << 0,
	B3_CHUNK_END = 1 << 1,
	B3_PARENT = 1 << 2,
	B3_ROOT = 1 << 3,
	B3_KEYED_HASH = 1 << 4,
	B3_DERIVE_KEY_CONTEXT = 1 << 5,
	B3_DERIVE_KEY_MATERIAL = 1 << 6,
};

/* The IV: SHA-256's first eight words. */
static const uint32_t B3_IV[8] = {0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
				  0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19};

/*
 * Message word order of each of the seven rounds: round 0 takes the block's
 * words in order, each next round applies the spec's permutation
 * (2,6,3,10,7,0,4,13,1,11,12,5,9,14,15,8) to the previous one.
 */
static const uint8_t B3_SCHEDULE[7][16] = {
	{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
	{2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8},
	{3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1},
	{10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6},
	{12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4},
	{9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7},
	{11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13},
};

static inline uint32_t b3_load32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void b3_store32(uint8_t *p, uint32_t w)
{
	p[0] = (uint8_t)w;
	p[1] = (uint8_t)(w >> 8);
	p[2] = (uint8_t)(w >> 16);
	p[3] = (uint8_t)(w >> 24);
}

/*
 * Hash many: for each i < n, compress the `blocks` 64-byte blocks at
 * inputs[i] starting from chaining value `key`, with counter `counter + i`
 * (or `counter` for all when !inc_counter), `flags` on every block,
 * `flag_start` added on the first and `flag_end` on the last, and write the
 * resulting 32-byte chaining value to out + 32 * i.  out may overlap
 * inputs only as the tree's in-place reduction does (out + 32 i at or
 * below inputs[i] = base + 64 i).
 */
#define B3_HASH_MANY_ARGS                                                                          \
	const uint8_t *const *inputs, size_t n, size_t blocks, const uint32_t key[8],              \
		uint64_t counter, bool inc_counter, uint8_t flags, uint8_t flag_start,             \
		uint8_t flag_end, uint8_t *out
typedef void (*b3_hash_many_fn)(B3_HASH_MANY_ARGS);

void de_b3_hash_many_portable(B3_HASH_MANY_ARGS);
void de_b3_hash_many_sse41(B3_HASH_MANY_ARGS);
void de_b3_hash_many_avx2(B3_HASH_MANY_ARGS);
void de_b3_hash_many_avx512vl(B3_HASH_MANY_ARGS);
void de_b3_hash_many_avx512(B3_HASH_MANY_ARGS);

/*
 * The compression function (portable): the 16 output words of compressing
 * `block` (block_len bytes used) into chaining value cv.
 */
void de_b3_compress(const uint32_t cv[8], const uint8_t block[64], uint8_t block_len,
		    uint64_t counter, uint8_t flags, uint32_t out[16]);

#endif
