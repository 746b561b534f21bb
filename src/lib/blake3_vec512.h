/*
 * blake3_vec512.h — 512-bit vector operations (sixteen 32-bit lanes) for
 * blake3_simd.h, used by blake3_avx512.c: AVX-512F adds, xors and one-
 * instruction rotations, and a 16x16 transpose of 32-bit words.
 */
#include <immintrin.h>

#define VEC    __m512i
#define DEGREE 16

static inline VEC v_add(VEC a, VEC b)
{
	return _mm512_add_epi32(a, b);
}
static inline VEC v_xor(VEC a, VEC b)
{
	return _mm512_xor_si512(a, b);
}
static inline VEC v_set1(uint32_t x)
{
	return _mm512_set1_epi32((int)x);
}
static inline VEC v_loadu(const void *p)
{
	return _mm512_loadu_si512(p);
}
static inline void v_storeu(void *p, VEC x)
{
	_mm512_storeu_si512(p, x);
}
static inline VEC v_rot16(VEC x)
{
	return _mm512_ror_epi32(x, 16);
}
static inline VEC v_rot12(VEC x)
{
	return _mm512_ror_epi32(x, 12);
}
static inline VEC v_rot8(VEC x)
{
	return _mm512_ror_epi32(x, 8);
}
static inline VEC v_rot7(VEC x)
{
	return _mm512_ror_epi32(x, 7);
}
/* A chaining value (the first eight words of x) to 32 bytes at p. */
static inline void v_store_cv(void *p, VEC x)
{
	_mm256_storeu_si256((__m256i *)p, _mm512_castsi512_si256(x));
}

/*
 * 16x16 transpose of 32-bit words: within each 128-bit lane, each group
 * of four rows is transposed 4x4 (words, then pairs of words interleaved);
 * then the 128-bit lanes of rows m, m+4, m+8 and m+12 are transposed 4x4.
 */
static inline void v_transpose(VEC r[16])
{
	VEC t[16], u[16];

	for (int i = 0; i < 8; i++) {
		t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
		t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
	}
	/* u[4k + m], lane L: word 4L + m of rows 4k .. 4k + 3 */
	for (int k = 0; k < 4; k++) {
		u[4 * k + 0] = _mm512_unpacklo_epi64(t[4 * k], t[4 * k + 2]);
		u[4 * k + 1] = _mm512_unpackhi_epi64(t[4 * k], t[4 * k + 2]);
		u[4 * k + 2] = _mm512_unpacklo_epi64(t[4 * k + 1], t[4 * k + 3]);
		u[4 * k + 3] = _mm512_unpackhi_epi64(t[4 * k + 1], t[4 * k + 3]);
	}
	/* row 4L + m, lane K: u[4K + m]'s lane L */
	for (int m = 0; m < 4; m++) {
		VEC x0 = _mm512_shuffle_i32x4(u[m], u[4 + m], 0x44);	  /* a0 a1 b0 b1 */
		VEC x1 = _mm512_shuffle_i32x4(u[m], u[4 + m], 0xEE);	  /* a2 a3 b2 b3 */
		VEC x2 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0x44); /* c0 c1 d0 d1 */
		VEC x3 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0xEE); /* c2 c3 d2 d3 */
		r[m] = _mm512_shuffle_i32x4(x0, x2, 0x88);		  /* a0 b0 c0 d0 */
		r[4 + m] = _mm512_shuffle_i32x4(x0, x2, 0xDD);		  /* a1 b1 c1 d1 */
		r[8 + m] = _mm512_shuffle_i32x4(x1, x3, 0x88);		  /* a2 b2 c2 d2 */
		r[12 + m] = _mm512_shuffle_i32x4(x1, x3, 0xDD);		  /* a3 b3 c3 d3 */
	}
}
