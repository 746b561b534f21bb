/*
 * blake3_avx512vl.c — BLAKE3's "hash many" eight inputs at a time in 256-bit
 * registers with AVX-512VL's rotate instructions (compiled with -mavx512f
 * -mavx512vl): what blake3_avx512.c leaves when fewer than sixteen inputs
 * are left.  Same body and lanes as blake3_avx2.c; fewer than eight inputs
 * left go to the AVX2 code.
 */
#include "blake3_int.h"

#if defined(__x86_64__) || defined(__i386__)
#define B3_NATIVE_ROTATE
#include "blake3_vec256.h"

#define HASH_MANY_NAME de_b3_hash_many_avx512vl
#define TAIL_FN	       de_b3_hash_many_avx2
#include "blake3_simd.h"

#endif /* elsewhere blake3.c uses the portable code for this path */
