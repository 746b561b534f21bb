/*
 * blake3_vec256.h — 256-bit vector operations (eight 32-bit lanes) for
 * blake3_simd.h, shared by blake3_avx2.c and blake3_avx512vl.c; the latter
 * defines B3_NATIVE_ROTATE for AVX-512VL's one-instruction rotations.
 */
#include <immintrin.h>

#define VEC    __m256i
#define DEGREE 8

static inline VEC v_add(VEC a, VEC b)
{
	return _mm256_add_epi32(a, b);
}
static inline VEC v_xor(VEC a, VEC b)
{
	return _mm256_xor_si256(a, b);
}
static inline VEC v_set1(uint32_t x)
{
	return _mm256_set1_epi32((int)x);
}
static inline VEC v_loadu(const void *p)
{
	return _mm256_loadu_si256((const VEC *)p);
}
static inline void v_storeu(void *p, VEC x)
{
	_mm256_storeu_si256((VEC *)p, x);
}
/* Rotations right by 16 and 8 move whole bytes: one shuffle each (per 128-bit lane). */
static inline VEC v_rot16(VEC x)
{
	return _mm256_shuffle_epi8(x, _mm256_setr_epi8(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15,
						       12, 13, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9,
						       14, 15, 12, 13));
}
static inline VEC v_rot8(VEC x)
{
	return _mm256_shuffle_epi8(x, _mm256_setr_epi8(1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14,
						       15, 12, 1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8,
						       13, 14, 15, 12));
}
#ifdef B3_NATIVE_ROTATE
/* AVX-512VL rotates in one instruction */
static inline VEC v_rot12(VEC x)
{
	return _mm256_ror_epi32(x, 12);
}
static inline VEC v_rot7(VEC x)
{
	return _mm256_ror_epi32(x, 7);
}
#else
static inline VEC v_rot12(VEC x)
{
	return _mm256_or_si256(_mm256_srli_epi32(x, 12), _mm256_slli_epi32(x, 20));
}
static inline VEC v_rot7(VEC x)
{
	return _mm256_or_si256(_mm256_srli_epi32(x, 7), _mm256_slli_epi32(x, 25));
}
#endif

/*
 * 8x8 transpose of 32-bit words: pairs of rows interleaved by word, then
 * by pairs of words, then the 128-bit halves exchanged.
 */
static inline void v_transpose(VEC r[8])
{
	VEC t[8], u[8];

	for (int i = 0; i < 4; i++) {
		t[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
		t[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
	}
	for (int i = 0; i < 2; i++) {
		u[4 * i + 0] = _mm256_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
		u[4 * i + 1] = _mm256_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
		u[4 * i + 2] = _mm256_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
		u[4 * i + 3] = _mm256_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
	}
	for (int i = 0; i < 4; i++) {
		r[i] = _mm256_permute2x128_si256(u[i], u[i + 4], 0x20);
		r[i + 4] = _mm256_permute2x128_si256(u[i], u[i + 4], 0x31);
	}
}
