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

#endif /* elsewhere blake3.c uses the portable code for this path */
