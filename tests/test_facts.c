/*
 * test_facts.c — everything made from the list of Linux facts (facts.h),
 * checked by iterating the list, so a fact added to it is tested without a
 * line here: each fact is visited with its name, kind and volatility; its
 * JSON member and the text writer agree; equality sees a change in it and
 * only in it; lookups find it; clearing frees its text; and
 * docs/collection.md describes it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemoneye/facts.h"
#include "daemoneye/fileio.h"
#include "daemoneye/record.h"

/* A pointer to fact i's value in f. */
static void *at(struct de_linux_facts *f, int i)
{
	return (char *)f + de_linux_fact_info[i].offset;
}

/* Every group known, every fact given a value that differs by `salt`. */
static void fill(struct de_linux_facts *f, int salt)
{
	memset(f, 0, sizeof(*f));
	f->present = true;
	f->has_ids = f->has_real_ids = f->has_exe = f->has_image = f->has_ns = true;
	for (int i = 0; i < DE_FACT_COUNT_MAX; i++) {
		void *p = at(f, i);
		switch (de_linux_fact_info[i].type) {
		case DE_FACT_T_U32:
			*(uint32_t *)p = (uint32_t)(1000 + i + salt);
			break;
		case DE_FACT_T_I64:
		case DE_FACT_T_NN64:
		case DE_FACT_T_COUNT:
			*(int64_t *)p = 100000 + i + salt;
			break;
		case DE_FACT_T_SI64:
			*(int64_t *)p = -(i + salt);
			break;
		case DE_FACT_T_BOOL:
		case DE_FACT_T_FLAG:
			*(bool *)p = true;
			break;
		case DE_FACT_T_CHAR:
			*(char *)p = (char)('A' + salt);
			break;
		case DE_FACT_T_TEXT:
		case DE_FACT_T_TEXT_RAW:
			assert_true(asprintf((char **)p, "/text/%d/%d", i, salt) > 0);
			break;
		case DE_FACT_T_MAX:
			fail();
		}
	}
}

/* Change fact i of f so that its JSON form differs. */
static void change(struct de_linux_facts *f, int i)
{
	void *p = at(f, i);
	switch (de_linux_fact_info[i].type) {
	case DE_FACT_T_U32:
		*(uint32_t *)p += 7;
		break;
	case DE_FACT_T_I64:
	case DE_FACT_T_NN64:
	case DE_FACT_T_COUNT:
	case DE_FACT_T_SI64:
		*(int64_t *)p += 7;
		break;
	case DE_FACT_T_BOOL:
	case DE_FACT_T_FLAG:
		*(bool *)p = !*(bool *)p;
		break;
	case DE_FACT_T_CHAR:
		*(char *)p = 'z';
		break;
	case DE_FACT_T_TEXT:
	case DE_FACT_T_TEXT_RAW:
		((char *)*(char **)p)[1] = 'X';
		break;
	case DE_FACT_T_MAX:
		fail();
	}
}

struct seen {
	int order[DE_FACT_COUNT_MAX];
	int n;
};

static int note(const struct de_fact *m, void *ctx)
{
	struct seen *s = ctx;
	const struct de_fact_info *in = &de_linux_fact_info[m->idx];

	assert_string_equal(m->key, in->name);
	assert_int_equal(m->key_len, strlen(in->name));
	assert_int_equal(m->is_volatile, in->is_volatile);
	switch (in->type) {
	case DE_FACT_T_BOOL:
	case DE_FACT_T_FLAG:
		assert_int_equal(m->kind, DE_FACT_BOOL);
		break;
	case DE_FACT_T_CHAR:
	case DE_FACT_T_TEXT:
		assert_int_equal(m->kind, DE_FACT_TEXT);
		assert_false(m->raw);
		break;
	case DE_FACT_T_TEXT_RAW:
		assert_int_equal(m->kind, DE_FACT_TEXT);
		assert_true(m->raw);
		break;
	default:
		assert_int_equal(m->kind, DE_FACT_INT);
	}
	s->order[s->n++] = m->idx;
	return 0;
}

/* Every fact of a full set is visited, once, in list order. */
static void test_visit_all(void **state)
{
	(void)state;
	struct de_linux_facts f;
	struct seen s = {.n = 0};

	fill(&f, 0);
	assert_int_equal(de_linux_facts_each(&f, note, &s), 0);
	assert_int_equal(s.n, DE_FACT_COUNT_MAX);
	for (int i = 0; i < DE_FACT_COUNT_MAX; i++)
		assert_int_equal(s.order[i], i);
	de_linux_facts_clear(&f);
	assert_false(f.present);
}

/* Each fact: its JSON member is there with its value, the text writer
   agrees with jansson, and equality sees a change in it. */
static void test_each_fact(void **state)
{
	(void)state;
	for (int i = 0; i < DE_FACT_COUNT_MAX; i++) {
		const struct de_fact_info *in = &de_linux_fact_info[i];
		struct de_process_record a = {0}, b = {0};
		char text[4096];

		fill(&a.facts, 0);
		fill(&b.facts, 0);
		a.name = b.name = (char *)"x";
		assert_true(de_linux_facts_equal(&a.facts, &b.facts));
		change(&b.facts, i);
		assert_false(de_linux_facts_equal(&a.facts, &b.facts));

		json_t *ja = de_process_record_platform_json(&a);
		json_t *jb = de_process_record_platform_json(&b);
		assert_non_null(json_object_get(ja, in->name));
		assert_false(
			json_equal(json_object_get(ja, in->name), json_object_get(jb, in->name)));
		assert_int_equal(json_object_size(ja), DE_FACT_COUNT_MAX);
		char *want = json_dumps(jb, JSON_COMPACT);
		assert_int_equal(de_linux_facts_json(&b, text, sizeof(text)), (long)strlen(want));
		assert_string_equal(text, want);
		free(want);
		json_decref(ja);
		json_decref(jb);

		/* lookups by name */
		assert_int_equal(de_fact_lookup(in->name, strlen(in->name)), i);
		char raw[64];
		snprintf(raw, sizeof(raw), "%s_raw", in->name);
		assert_int_equal(de_fact_raw_of(raw, strlen(raw)),
				 in->type == DE_FACT_T_TEXT_RAW ? i : -1);
		a.name = b.name = NULL;
		de_process_record_clear(&a); /* frees the facts' text: valgrind */
		de_process_record_clear(&b);
	}
	assert_int_equal(de_fact_lookup("rss", 3), -1);
	assert_int_equal(de_fact_raw_of("state_raw", 9), -1);
}

/* A fact of a group that is not known is neither visited nor compared. */
static void test_groups(void **state)
{
	(void)state;
	struct de_linux_facts a, b;
	struct seen s = {.n = 0};

	fill(&a, 0);
	fill(&b, 0);
	a.has_ids = a.has_real_ids = a.has_exe = a.has_image = a.has_ns = false;
	b.has_ids = b.has_real_ids = b.has_exe = b.has_image = b.has_ns = false;
	assert_int_equal(de_linux_facts_each(&a, note, &s), 0);
	assert_true(s.n > 0);
	for (int k = 0; k < s.n; k++)
		assert_string_equal(de_linux_fact_info[s.order[k]].group, "always");
	/* the groups' facts differ, but they are not known: still equal */
	for (int i = 0; i < DE_FACT_COUNT_MAX; i++)
		if (strcmp(de_linux_fact_info[i].group, "always") != 0)
			change(&b, i);
	assert_true(de_linux_facts_equal(&a, &b));
	/* a group known on one side only is a difference */
	b.has_ids = true;
	assert_false(de_linux_facts_equal(&a, &b));
	b.has_ids = false;
	/* the image needs the executable: known image without it is not known */
	a.has_image = true;
	assert_true(de_linux_facts_equal(&a, &b));
	de_linux_facts_clear(&a);
	de_linux_facts_clear(&b);
}

/* docs/collection.md has a line for every fact. */
static void test_documented(void **state)
{
	(void)state;
	const char *src = getenv("DE_SOURCE_DIR");
	char path[4096], *doc;
	size_t len;

	assert_non_null(src);
	snprintf(path, sizeof(path), "%s/docs/collection.md", src);
	assert_int_equal(de_read_file(path, 1 << 20, &doc, &len, NULL), 0);
	for (int i = 0; i < DE_FACT_COUNT_MAX; i++) {
		char want[64];
		snprintf(want, sizeof(want), "`%s`", de_linux_fact_info[i].name);
		if (!strstr(doc, want))
			fail_msg("docs/collection.md does not describe the fact %s",
				 de_linux_fact_info[i].name);
	}
	/* its line of volatile facts names exactly the list's */
	char *vol = strstr(doc, "Volatile facts:"), *end;
	assert_non_null(vol);
	assert_non_null(end = strchr(vol, '.'));
	*end = '\0';
	for (int i = 0; i < DE_FACT_COUNT_MAX; i++) {
		char want[64];
		snprintf(want, sizeof(want), "`%s`", de_linux_fact_info[i].name);
		if (!strstr(vol, want) != !de_linux_fact_info[i].is_volatile)
			fail_msg("docs/collection.md's volatile facts and the list disagree on %s",
				 de_linux_fact_info[i].name);
	}
	free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_visit_all),
		cmocka_unit_test(test_each_fact),
		cmocka_unit_test(test_groups),
		cmocka_unit_test(test_documented),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
