/*
 * test_blake3.c — BLAKE3 against the official test vectors
 * (tests/data/blake3_test_vectors.json, a copy of
 * shared/testdata/blake3_test_vectors.json): every case in every mode (hash,
 * keyed_hash, derive_key), the whole extended output and its first 32
 * bytes, one-shot and streamed with awkward splits, from offsets (seek),
 * under every implementation this CPU has.  The file missing is a failure.
 * The b3sum comparison on files is tests/integration_blake3.sh.
 */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemoneye/blake3.h"

static json_t *vectors;

static int load_vectors(void **state)
{
	const char *src = getenv("DE_SOURCE_DIR");
	char path[4096];
	json_error_t jerr;

	(void)state;
	snprintf(path, sizeof(path), "%s/tests/data/blake3_test_vectors.json", src ? src : ".");
	vectors = json_load_file(path, 0, &jerr);
	if (!vectors) {
		fprintf(stderr, "cannot read %s: %s (set DE_SOURCE_DIR)\n", path, jerr.text);
		return -1;
	}
	return 0;
}

static int free_vectors(void **state)
{
	(void)state;
	json_decref(vectors);
	return 0;
}

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex) / 2;
	assert_true(n <= cap);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

enum mode { M_HASH, M_KEYED, M_DERIVE };

static void start(struct de_blake3_hasher *h, enum mode m)
{
	const char *key = json_string_value(json_object_get(vectors, "key"));
	const char *ctx = json_string_value(json_object_get(vectors, "context_string"));

	assert_non_null(key);
	assert_non_null(ctx);
	assert_int_equal(strlen(key), DE_BLAKE3_KEY_LEN);
	switch (m) {
	case M_HASH:
		de_blake3_init(h);
		break;
	case M_KEYED:
		de_blake3_init_keyed(h, (const uint8_t *)key);
		break;
	case M_DERIVE:
		de_blake3_init_derive_key(h, ctx, strlen(ctx));
		break;
	}
}

/* Every split pattern: one update, then pieces of each of these sizes in turn. */
static const size_t splits[][4] = {
	{0, 0, 0, 0},	    {1, 0, 0, 0},	{63, 1, 0, 0},	       {64, 0, 0, 0},
	{65, 0, 0, 0},	    {1023, 1, 1025, 0}, {1024, 0, 0, 0},       {1025, 0, 0, 0},
	{3, 1021, 2048, 7}, {4096, 0, 0, 0},	{1024, 2048, 4096, 1}, {8192, 31, 0, 0},
	{65536, 1, 0, 0},   {2047, 0, 0, 0},
};

static void feed(struct de_blake3_hasher *h, const uint8_t *in, size_t len, const size_t *split)
{
	size_t k = 0;

	if (split[0] == 0) {
		de_blake3_update(h, in, len);
		return;
	}
	while (len > 0) {
		size_t step = split[k];
		if (!step) {
			k = 0;
			step = split[0];
		}
		if (step > len)
			step = len;
		de_blake3_update(h, in, step);
		in += step;
		len -= step;
		k = (k + 1) % 4;
	}
}

static void check_case(const json_t *c, enum mode m)
{
	static const char *const names[] = {"hash", "keyed_hash", "derive_key"};
	size_t len = (size_t)json_integer_value(json_object_get(c, "input_len"));
	const char *hex = json_string_value(json_object_get(c, names[m]));
	uint8_t want[1024], got[1024];
	uint8_t *in = malloc(len ? len : 1);
	size_t olen;

	assert_non_null(in);
	assert_non_null(hex);
	for (size_t i = 0; i < len; i++)
		in[i] = (uint8_t)(i % 251);
	olen = unhex(hex, want, sizeof(want));
	assert_true(olen > DE_BLAKE3_OUT_LEN);

	for (size_t s = 0; s < sizeof(splits) / sizeof(splits[0]); s++) {
		struct de_blake3_hasher h;
		start(&h, m);
		feed(&h, in, len, splits[s]);
		memset(got, 0, sizeof(got));
		de_blake3_finalize(&h, got, olen);
		if (memcmp(got, want, olen) != 0)
			fail_msg("%s, input_len %zu, split %zu, impl %s: extended output differs",
				 names[m], len, s, de_blake3_impl_name(de_blake3_impl_active()));
		/* the default length is the prefix */
		de_blake3_finalize(&h, got, DE_BLAKE3_OUT_LEN);
		assert_memory_equal(got, want, DE_BLAKE3_OUT_LEN);
		/* from any offset */
		for (uint64_t seek = 1; seek < olen; seek += 37) {
			de_blake3_finalize_seek(&h, seek, got, olen - seek);
			assert_memory_equal(got, want + seek, olen - seek);
		}
		de_blake3_hasher_clear(&h);
	}
	/* one-shot forms */
	if (m == M_HASH) {
		de_blake3_hash(in, len, got);
	} else if (m == M_KEYED) {
		de_blake3_keyed_hash(
			(const uint8_t *)json_string_value(json_object_get(vectors, "key")), in,
			len, got);
	} else {
		de_blake3_derive_key(json_string_value(json_object_get(vectors, "context_string")),
				     in, len, got, olen);
		assert_memory_equal(got, want, olen);
	}
	assert_memory_equal(got, want, DE_BLAKE3_OUT_LEN);
	free(in);
}

static void run_all_modes(enum de_blake3_impl impl)
{
	const json_t *cases = json_object_get(vectors, "cases");
	size_t i, n = json_array_size(cases);

	if (!de_blake3_impl_supported(impl)) {
		assert_int_equal(de_blake3_force_impl(impl), -ENOTSUP);
		printf("# %s: not on this CPU, skipped\n", de_blake3_impl_name(impl));
		return;
	}
	assert_int_equal(de_blake3_force_impl(impl), 0);
	assert_int_equal(de_blake3_impl_active(), impl);
	assert_true(n >= 30); /* the official file has 35 cases */
	for (i = 0; i < n; i++)
		for (int m = M_HASH; m <= M_DERIVE; m++)
			check_case(json_array_get(cases, i), (enum mode)m);
	assert_int_equal(de_blake3_force_impl(DE_BLAKE3_AUTO), 0);
}

/* Every vector under the implementation *state points to (skipped when the CPU lacks it). */
static void test_impl(void **state)
{
	run_all_modes(*(const enum de_blake3_impl *)*state);
}

/* Implementations agree on large, odd inputs (many subtree shapes) too. */
static void test_impls_agree(void **state)
{
	size_t len = (1 << 20) + 12345;
	uint8_t *in = malloc(len), ref[64], got[64];
	uint32_t x = 12345;

	(void)state;
	assert_non_null(in);
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245 + 12345;
		in[i] = (uint8_t)(x >> 24);
	}
	for (size_t cut = 0; cut < len; cut += 99991) {
		struct de_blake3_hasher h;
		assert_int_equal(de_blake3_force_impl(DE_BLAKE3_PORTABLE), 0);
		de_blake3_init(&h);
		de_blake3_update(&h, in, cut);
		de_blake3_update(&h, in + cut, len - cut);
		de_blake3_finalize(&h, ref, sizeof(ref));
		for (int impl = DE_BLAKE3_SSE41; impl < DE_BLAKE3_IMPL_MAX; impl++) {
			if (de_blake3_force_impl((enum de_blake3_impl)impl) < 0)
				continue;
			de_blake3_init(&h);
			de_blake3_update(&h, in, cut);
			de_blake3_update(&h, in + cut, len - cut);
			de_blake3_finalize(&h, got, sizeof(got));
			assert_memory_equal(got, ref, sizeof(ref));
		}
	}
	assert_int_equal(de_blake3_force_impl(DE_BLAKE3_AUTO), 0);
	free(in);
}

static void test_force_and_names(void **state)
{
	(void)state;
	assert_int_equal(de_blake3_force_impl(DE_BLAKE3_IMPL_MAX), -EINVAL);
	assert_int_equal(de_blake3_force_impl((enum de_blake3_impl) - 1), -EINVAL);
	assert_int_equal(de_blake3_force_impl(DE_BLAKE3_PORTABLE), 0);
	assert_int_equal(de_blake3_impl_active(), DE_BLAKE3_PORTABLE);
	assert_int_equal(de_blake3_force_impl(DE_BLAKE3_AUTO), 0);
	assert_int_not_equal(de_blake3_impl_active(), DE_BLAKE3_AUTO);
	assert_string_equal(de_blake3_impl_name(DE_BLAKE3_AVX2), "avx2");
	assert_string_equal(de_blake3_impl_name(DE_BLAKE3_IMPL_MAX), "?");
}

int main(void)
{
	static enum de_blake3_impl impls[] = {DE_BLAKE3_PORTABLE, DE_BLAKE3_SSE41, DE_BLAKE3_AVX2,
					      DE_BLAKE3_AVX512};
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_prestate(test_impl, &impls[0]),
		cmocka_unit_test_prestate(test_impl, &impls[1]),
		cmocka_unit_test_prestate(test_impl, &impls[2]),
		cmocka_unit_test_prestate(test_impl, &impls[3]),
		cmocka_unit_test(test_impls_agree),
		cmocka_unit_test(test_force_and_names),
	};
	return cmocka_run_group_tests(tests, load_vectors, free_vectors);
}
