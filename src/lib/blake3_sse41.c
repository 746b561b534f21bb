/*
 * blake3_sse41.c — BLAKE3's "hash many" four inputs at a time in SSE4.1
 * registers (compiled with -msse4.1; blake3.c calls it only when the CPU
 * has SSE4.1).  The body is blake3_simd.h; this file gives it 128-bit
 * vector operations.  Fewer than four inputs left go to the portable code.
 */
#include "blake3_int.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define VEC    __m128i
#define DEGREE 4

static inline VEC v_add(VEC a, VEC b)
{
	return _mm_add_epi32(a, b);
}
static inline VEC v_xor(VEC a, VEC b)
{
	return _mm_xor_si128(a, b);
}
static inline VEC v_set1(uint32_t x)
{
	return _mm_set1_epi32((int)x);
}
static inline VEC v_loadu(const void *p)
{
	return _mm_loadu_si128((const VEC *)p);
}
static inline void v_storeu(void *p, VEC x)
{
	_mm_storeu_si128((VEC *)p, x);
}
/* Rotations right by 16 and 8 move whole bytes: one shuffle each. */
static inline VEC v_rot16(VEC x)
{
	return _mm_shuffle_epi8(
		x, _mm_setr_epi8(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13));
}
static inline VEC v_rot8(VEC x)
{
	return _mm_shuffle_epi8(
		x, _mm_setr_epi8(1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12));
}
static inline VEC v_rot12(VEC x)
{
	return _mm_or_si128(_mm_srli_epi32(x, 12), _mm_slli_epi32(x, 20));
}
static inline VEC v_rot7(VEC x)
{
	return _mm_or_si128(_mm_srli_epi32(x, 7), _mm_slli_epi32(x, 25));
}

/* 4x4 transpose of 32-bit words. */
static inline void v_transpose(VEC r[4])
{
	VEC ab01 = _mm_unpacklo_epi32(r[0], r[1]);
	VEC ab23 = _mm_unpackhi_epi32(r[0], r[1]);
	VEC cd01 = _mm_unpacklo_epi32(r[2], r[3]);
	VEC cd23 = _mm_unpackhi_epi32(r[2], r[3]);
	r[0] = _mm_unpacklo_epi64(ab01, cd01);
	r[1] = _mm_unpackhi_epi64(ab01, cd01);
	r[2] = _mm_unpacklo_epi64(ab23, cd23);
	r[3] = _mm_unpackhi_epi64(ab23, cd23);
}

#define HASH_MANY_NAME de_b3_hash_many_sse41
#define TAIL_FN	       de_b3_hash_many_portable
#include "blake3_simd.h"

#endif /* elsewhere blake3.c uses the portable code for this path */
