/*
 * blake3_avx2.c — BLAKE3's "hash many" eight inputs at a time in AVX2
 * registers (compiled with -mavx2; blake3.c calls it only when the CPU has
 * AVX2).  The body is blake3_simd.h; this file gives it 256-bit vector
 * operations.  Fewer than eight inputs left go to the SSE4.1 code (every
 * AVX2 CPU has SSE4.1).
 */
#include "blake3_int.h"

#if defined(__x86_64__) || defined(__i386__)
#include "blake3_vec256.h"

#define HASH_MANY_NAME de_b3_hash_many_avx2
#define TAIL_FN	       de_b3_hash_many_sse41
#include "blake3_simd.h"

#else
void de_b3_hash_many_avx2(const uint8_t *const *inputs, size_t n, size_t blocks,
			  const uint32_t key[8], uint64_t counter, bool inc_counter, uint8_t flags,
			  uint8_t flag_start, uint8_t flag_end, uint8_t *out)
{
	de_b3_hash_many_portable(inputs, n, blocks, key, counter, inc_counter, flags, flag_start,
				 flag_end, out);
}
#endif
