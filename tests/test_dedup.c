/*
 * test_dedup.c — deduplication windows: a new key opens a window, repeats
 * inside it fold and are counted, the window closes at its end (the owner
 * told only when something folded), the cap closes the oldest early, a
 * restored window behaves as one opened here, and 100,000 live keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemoneye/dedup.h"

struct closed {
	char key[64];
	uint64_t folded;
	int64_t start, last;
	char id[40];
	int n;
};

static void on_close(const struct de_dedup_window *w, void *arg)
{
	struct closed *c = arg;
	snprintf(c->key, sizeof(c->key), "%s", w->key);
	c->folded = w->folded;
	c->start = w->start_ms;
	c->last = w->last_ms;
	snprintf(c->id, sizeof(c->id), "%s", w->alert_id);
	c->n++;
}

static void test_windows(void **state)
{
	(void)state;
	struct closed c = {0};
	struct de_dedup *d;
	enum de_dedup_verdict v;
	struct de_dedup_window w;

	assert_int_equal(de_dedup_new(1000, 0, on_close, &c, &d), 0);
	assert_int_equal(de_dedup_check(d, "miner|xmrig", 100, "A", &v, &w), 0);
	assert_int_equal(v, DE_DEDUP_NEW);
	assert_int_equal(w.end_ms, 1100);
	assert_int_equal(de_dedup_check(d, "miner|xmrig", 400, "B", &v, &w), 0);
	assert_int_equal(v, DE_DEDUP_FOLD);
	assert_int_equal(w.folded, 1);
	assert_string_equal(w.alert_id, "A");
	assert_int_equal(de_dedup_check(d, "miner|xmrig", 1099, "C", &v, NULL), 0);
	assert_int_equal(v, DE_DEDUP_FOLD);
	assert_int_equal(de_dedup_check(d, "other", 500, "D", &v, NULL), 0);
	assert_int_equal(v, DE_DEDUP_NEW);
	assert_int_equal(de_dedup_len(d), 2);
	/* at its end the window closes: told, with the count and the last repeat */
	assert_int_equal(de_dedup_expire(d, 1099), 0);
	assert_int_equal(de_dedup_expire(d, 1100), 1);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.key, "miner|xmrig");
	assert_int_equal(c.folded, 2);
	assert_int_equal(c.last, 1099);
	assert_string_equal(c.id, "A");
	/* nothing folded: closes silently */
	assert_int_equal(de_dedup_expire(d, 1500), 1);
	assert_int_equal(c.n, 1);
	assert_int_equal(de_dedup_len(d), 0);
	/* the same key after its window: new again */
	assert_int_equal(de_dedup_check(d, "miner|xmrig", 2000, "E", &v, NULL), 0);
	assert_int_equal(v, DE_DEDUP_NEW);
	de_dedup_free(d);
}

static void test_cap_and_restore(void **state)
{
	(void)state;
	struct closed c = {0};
	struct de_dedup *d;
	enum de_dedup_verdict v;

	assert_int_equal(de_dedup_new(1000, 2, on_close, &c, &d), 0);
	assert_int_equal(de_dedup_check(d, "a", 1, "A", &v, NULL), 0);
	assert_int_equal(de_dedup_check(d, "a", 2, "A2", &v, NULL), 0);
	assert_int_equal(de_dedup_check(d, "b", 3, "B", &v, NULL), 0);
	assert_int_equal(de_dedup_check(d, "c", 4, "C", &v, NULL), 0); /* "a" closes early */
	assert_int_equal(c.n, 1);
	assert_string_equal(c.key, "a");
	assert_int_equal(c.folded, 1);
	assert_int_equal(de_dedup_len(d), 2);
	de_dedup_free(d);

	struct de_dedup_window w = {
		.key = "k", .start_ms = 10, .end_ms = 1010, .folded = 3, .last_ms = 500};
	snprintf(w.alert_id, sizeof(w.alert_id), "X");
	memset(&c, 0, sizeof(c));
	assert_int_equal(de_dedup_new(1000, 0, on_close, &c, &d), 0);
	assert_int_equal(de_dedup_restore(d, &w), 0);
	assert_int_equal(de_dedup_check(d, "k", 600, "Y", &v, NULL), 0);
	assert_int_equal(v, DE_DEDUP_FOLD);
	assert_int_equal(de_dedup_expire(d, 1010), 1);
	assert_int_equal(c.folded, 4);
	assert_string_equal(c.id, "X");
	de_dedup_free(d);
}

static void test_many_keys(void **state)
{
	(void)state;
	struct de_dedup *d;
	enum de_dedup_verdict v;
	char key[32];
	size_t folds = 0;

	assert_int_equal(de_dedup_new(3600000, 0, NULL, NULL, &d), 0);
	for (int i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "rule|proc-%d", i);
		assert_int_equal(de_dedup_check(d, key, i, "id", &v, NULL), 0);
		assert_int_equal(v, DE_DEDUP_NEW);
	}
	for (int i = 0; i < 100000; i += 3) {
		snprintf(key, sizeof(key), "rule|proc-%d", i);
		assert_int_equal(de_dedup_check(d, key, 200000, "id", &v, NULL), 0);
		folds += v == DE_DEDUP_FOLD;
	}
	assert_int_equal(folds, 33334);
	assert_int_equal(de_dedup_len(d), 100000);
	assert_int_equal(de_dedup_expire(d, 3600000 + 49999), 50000);
	assert_int_equal(de_dedup_len(d), 50000);
	de_dedup_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_windows),
		cmocka_unit_test(test_cap_and_restore),
		cmocka_unit_test(test_many_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
