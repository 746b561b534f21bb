/*
 * blake3_simd.h — the body of a SIMD "hash many" (blake3_int.h), written
 * once and included by each SIMD file after it defines its vector type and
 * operations:
 *
 *   VEC, DEGREE (inputs per vector), v_add, v_xor, v_set1, v_loadu,
 *   v_storeu, v_rot16, v_rot12, v_rot8, v_rot7, v_transpose(VEC r[DEGREE])
 *   (r[i] word j <-> r[j] word i), with DEGREE 16 v_store_cv (a vector's
 *   first eight words out), HASH_MANY_NAME (the function defined) and
 *   TAIL_FN (what hashes the last n % DEGREE inputs).
 *
 * Lane i of every vector belongs to input i: word w of the state of all
 * DEGREE inputs sits in one vector, so the spec's G runs on DEGREE inputs
 * with the same instructions.  Blocks are transposed into that layout on
 * load, and the chaining values back on store.
 */
#ifndef HASH_MANY_NAME
#error "define the vector operations before including blake3_simd.h"
#endif

static inline void simd_g(VEC v[16], int a, int b, int c, int d, VEC x, VEC y)
{
	v[a] = v_add(v_add(v[a], v[b]), x);
	v[d] = v_rot16(v_xor(v[d], v[a]));
	v[c] = v_add(v[c], v[d]);
	v[b] = v_rot12(v_xor(v[b], v[c]));
	v[a] = v_add(v_add(v[a], v[b]), y);
	v[d] = v_rot8(v_xor(v[d], v[a]));
	v[c] = v_add(v[c], v[d]);
	v[b] = v_rot7(v_xor(v[b], v[c]));
}

static inline void simd_round(VEC v[16], const VEC m[16], const uint8_t s[16])
{
	simd_g(v, 0, 4, 8, 12, m[s[0]], m[s[1]]);
	simd_g(v, 1, 5, 9, 13, m[s[2]], m[s[3]]);
	simd_g(v, 2, 6, 10, 14, m[s[4]], m[s[5]]);
	simd_g(v, 3, 7, 11, 15, m[s[6]], m[s[7]]);
	simd_g(v, 0, 5, 10, 15, m[s[8]], m[s[9]]);
	simd_g(v, 1, 6, 11, 12, m[s[10]], m[s[11]]);
	simd_g(v, 2, 7, 8, 13, m[s[12]], m[s[13]]);
	simd_g(v, 3, 4, 9, 14, m[s[14]], m[s[15]]);
}

/* Block `off` of each of the DEGREE inputs, as 16 vectors of message words. */
static inline void simd_load_msg(const uint8_t *const *inputs, size_t off, VEC m[16])
{
	for (int q = 0; q < 16 / DEGREE; q++) {
		VEC r[DEGREE];
		for (int i = 0; i < DEGREE; i++)
			r[i] = v_loadu(inputs[i] + off + (size_t)q * DEGREE * 4);
		v_transpose(r);
		for (int j = 0; j < DEGREE; j++)
			m[q * DEGREE + j] = r[j];
	}
}

/* DEGREE inputs of `blocks` blocks each, side by side. */
static void simd_hash_group(const uint8_t *const *inputs, size_t blocks, const uint32_t key[8],
			    uint64_t counter, bool inc_counter, uint8_t flags, uint8_t flag_start,
			    uint8_t flag_end, uint8_t *out)
{
	uint32_t lo[DEGREE], hi[DEGREE];
	VEC h[8], ctr_lo, ctr_hi;

	for (int i = 0; i < DEGREE; i++) {
		uint64_t c = counter + (inc_counter ? (uint64_t)i : 0);
		lo[i] = (uint32_t)c;
		hi[i] = (uint32_t)(c >> 32);
	}
	ctr_lo = v_loadu(lo);
	ctr_hi = v_loadu(hi);
	for (int i = 0; i < 8; i++)
		h[i] = v_set1(key[i]);
	for (size_t b = 0; b < blocks; b++) {
		uint8_t f = flags | (b == 0 ? flag_start : 0) | (b + 1 == blocks ? flag_end : 0);
		VEC m[16], v[16];
		simd_load_msg(inputs, 64 * b, m);
		for (int i = 0; i < 8; i++)
			v[i] = h[i];
		for (int i = 0; i < 4; i++)
			v[8 + i] = v_set1(B3_IV[i]);
		v[12] = ctr_lo;
		v[13] = ctr_hi;
		v[14] = v_set1(64);
		v[15] = v_set1(f);
		for (int r = 0; r < 7; r++)
			simd_round(v, m, B3_SCHEDULE[r]);
		for (int i = 0; i < 8; i++)
			h[i] = v_xor(v[i], v[i + 8]);
	}
#if DEGREE > 8
	/* back to one CV per input: the eight state words as the first rows
	   of a transpose (the rest is not stored), the first eight words of
	   each row out (v_store_cv) */
	{
		VEC r[DEGREE];
		for (int j = 0; j < DEGREE; j++)
			r[j] = h[j % 8];
		v_transpose(r);
		for (int i = 0; i < DEGREE; i++)
			v_store_cv(out + 32 * i, r[i]);
	}
#else
	/* back to one CV per input: words 0..DEGREE-1 first, then the rest */
	for (int q = 0; q < 8 / DEGREE; q++) {
		VEC r[DEGREE];
		for (int j = 0; j < DEGREE; j++)
			r[j] = h[q * DEGREE + j];
		v_transpose(r);
		for (int i = 0; i < DEGREE; i++)
			v_storeu(out + 32 * i + (size_t)q * DEGREE * 4, r[i]);
	}
#endif
}

void HASH_MANY_NAME(const uint8_t *const *inputs, size_t n, size_t blocks, const uint32_t key[8],
		    uint64_t counter, bool inc_counter, uint8_t flags, uint8_t flag_start,
		    uint8_t flag_end, uint8_t *out)
{
	while (n >= DEGREE) {
		simd_hash_group(inputs, blocks, key, counter, inc_counter, flags, flag_start,
				flag_end, out);
		inputs += DEGREE;
		n -= DEGREE;
		out += 32 * DEGREE;
		if (inc_counter)
			counter += DEGREE;
	}
	TAIL_FN(inputs, n, blocks, key, counter, inc_counter, flags, flag_start, flag_end, out);
}
