/*
 * blake3_avx512.c — BLAKE3's "hash many" sixteen inputs at a time in 512-bit
 * registers (compiled with -mavx512f -mavx512vl; blake3.c calls it only
 * when the CPU has both): the body of blake3_simd.h over blake3_vec512.h.
 * Fewer than sixteen inputs left go to the eight-lane AVX-512VL code
 * (blake3_avx512vl.c).
 */
#include "blake3_int.h"

#if defined(__x86_64__) || defined(__i386__)
#include "blake3_vec512.h"

#define HASH_MANY_NAME de_b3_hash_many_avx512
#define TAIL_FN	       de_b3_hash_many_avx512vl
#include "blake3_simd.h"

#endif /* elsewhere blake3.c uses the portable code for this path */
