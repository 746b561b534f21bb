/*
 * test_record_alloc.c — the data models' JSON under allocation failure
 * (tests/failalloc.h): ProcessRecord, Alert and DetectionRule from and to
 * JSON (src/lib/record.c, alert.c, rule.c over fields.c), the record's
 * copy, its platform_data and facts text, and the alert's renderings.  A
 * parse that fails must say "out of memory" (never that the member is
 * malformed) and leave its output cleared; a writer that fails returns
 * NULL; nothing leaks; a run that recovers gives the same value.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemoneye/alert.h"
#include "daemoneye/record.h"
#include "daemoneye/rule.h"
#include "failalloc.h"
#include "testrecord.h"

static const char alert_json[] =
	"{\"id\": \"7d6f1c2e-1111-4a8e-9f3c-2d1b7c9e4a10\", \"alert_time\": 1764060360000,"
	" \"rule_id\": \"deleted-executable\", \"title\": \"Deleted \\u001b[31m executable\","
	" \"description\": \"d\", \"severity\": \"high\", \"scan_id\": 9,"
	" \"affected_processes\": [41, 42, 4294967295], \"process_count\": 3,"
	" \"alert_data\": [{\"pid\": 41, \"name\": \"ev\\nil\", \"executable_path\": \"/tmp/x\"},"
	" {\"pid\": 42, \"name\": \"b\", \"argv\": [\"x\", {\"deep\": null}]}],"
	" \"rule_execution_time_ms\": 3, \"dedupe_key\": \"k\", \"incomplete\": true}";

static const char rule_json[] =
	"{\"id\": \"r-1\", \"name\": \"A rule\", \"description\": \"what it finds\","
	" \"version\": 2, \"sql_query\": \"SELECT pid, name FROM processes\", \"enabled\": true,"
	" \"severity\": \"critical\", \"category\": \"execution\","
	" \"tags\": [\"attack.t1059\", \"linux\"], \"author\": \"me\", \"created_at\": 1,"
	" \"updated_at\": 2, \"source_type\": \"file\", \"source_path\": \"/etc/r.yaml\","
	" \"dedupe_key_fields\": [\"pid\", \"name\"]}";

/* ---- the three models behind one interface --------------------------------- */

struct model {
	const char *name;
	size_t size;
	int (*from)(const json_t *j, void *out, struct de_error *err);
	json_t *(*to)(const void *obj);
	bool (*eq)(const void *a, const void *b);
	void (*clear)(void *obj);
};

static int rec_from(const json_t *j, void *o, struct de_error *e)
{
	return de_process_record_from_json(j, o, e);
}
static json_t *rec_to(const void *o)
{
	return de_process_record_to_json(o);
}
static bool rec_eq(const void *a, const void *b)
{
	return de_process_record_equal(a, b);
}
static void rec_clear(void *o)
{
	de_process_record_clear(o);
}
static int alert_from(const json_t *j, void *o, struct de_error *e)
{
	return de_alert_from_json(j, o, e);
}
static json_t *alert_to(const void *o)
{
	return de_alert_to_json(o);
}
static bool alert_eq(const void *a, const void *b)
{
	return de_alert_equal(a, b);
}
static void alert_clear(void *o)
{
	de_alert_clear(o);
}
static int rule_from(const json_t *j, void *o, struct de_error *e)
{
	return de_rule_from_json(j, o, e);
}
static json_t *rule_to(const void *o)
{
	return de_rule_to_json(o);
}
static bool rule_eq(const void *a, const void *b)
{
	return de_rule_equal(a, b);
}
static void rule_clear(void *o)
{
	de_rule_clear(o);
}

static const struct model models[] = {
	{"ProcessRecord", sizeof(struct de_process_record), rec_from, rec_to, rec_eq, rec_clear},
	{"Alert", sizeof(struct de_alert), alert_from, alert_to, alert_eq, alert_clear},
	{"DetectionRule", sizeof(struct de_rule), rule_from, rule_to, rule_eq, rule_clear},
};
static const char *const texts[] = {testrecord_json, alert_json, rule_json};

/* Big enough for any of the three. */
union any_model {
	struct de_process_record r;
	struct de_alert a;
	struct de_rule u;
};

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* ---- from_json --------------------------------------------------------------- */

struct from_ctx {
	const struct model *m;
	json_t *j;
	union any_model ref, out;
};

static int from_run(void *p, struct de_error *err)
{
	struct from_ctx *x = p;

	memset(&x->out, 0, sizeof(x->out));
	return x->m->from(x->j, &x->out, err);
}

static void from_check(void *p, int rc, const struct de_error *err)
{
	struct from_ctx *x = p;

	(void)err;
	if (rc < 0) {
		assert_true(all_zero(&x->out, x->m->size)); /* "left cleared" */
		return;
	}
	assert_true(x->m->eq(&x->out, &x->ref));
	x->m->clear(&x->out);
}

static void test_from_json(void **state)
{
	(void)state;
	char name[64];

	for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
		struct from_ctx x = {.m = &models[i]};
		struct de_error e = {0};

		assert_non_null(x.j = json_loads(texts[i], 0, NULL));
		if (x.m->from(x.j, &x.ref, &e) < 0)
			fail_msg("%s: %s", x.m->name, e.message);
		snprintf(name, sizeof(name), "%s from JSON", x.m->name);
		struct fa_case c = {name, &x, NULL, from_run, from_check, true, 0};
		struct fa_stats st = fa_run(&c);
		assert_true(fa_some_errors(st));
		x.m->clear(&x.ref);
		json_decref(x.j);
	}
}

/* ---- to_json ----------------------------------------------------------------- */

struct to_ctx {
	const struct model *m;
	const void *obj;
	json_t *ref, *out;
};

static int to_run(void *p, struct de_error *err)
{
	struct to_ctx *x = p;

	(void)err;
	x->out = x->m->to(x->obj);
	return x->out ? 0 : -ENOMEM;
}

static void to_check(void *p, int rc, const struct de_error *err)
{
	struct to_ctx *x = p;

	(void)err;
	if (rc == 0)
		assert_true(json_equal(x->out, x->ref));
	json_decref(x->out);
}

static void run_to(const char *name, const struct model *m, const void *obj)
{
	struct to_ctx x = {.m = m, .obj = obj};

	assert_non_null(x.ref = m->to(obj));
	struct fa_case c = {name, &x, NULL, to_run, to_check, false, 0};
	fa_run(&c);
	json_decref(x.ref);
}

static void test_to_json(void **state)
{
	(void)state;
	union any_model o;
	char name[64];

	for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
		json_t *j = json_loads(texts[i], 0, NULL);
		assert_non_null(j);
		assert_int_equal(models[i].from(j, &o, NULL), 0);
		json_decref(j);
		snprintf(name, sizeof(name), "%s to JSON", models[i].name);
		run_to(name, &models[i], &o);
		models[i].clear(&o);
	}
	/* a record with collector facts: their JSON form, escapes and _raw */
	assert_int_equal(testrecord_make(&o.r, true), 0);
	run_to("ProcessRecord with facts to JSON", &models[0], &o.r);
	de_process_record_clear(&o.r);
}

/* ---- the record's copy, platform_data and facts text -------------------------------- */

struct rec_ctx {
	int which;
	struct de_process_record src, out;
	json_t *ref_pd, *pd;
	char text[1024], ref_text[1024];
	long len;
};

static int rec_run(void *p, struct de_error *err)
{
	struct rec_ctx *x = p;

	(void)err;
	switch (x->which) {
	case 0:
		memset(&x->out, 0xa5, sizeof(x->out));
		return de_process_record_copy(&x->src, &x->out);
	case 1:
		x->pd = de_process_record_platform_json(&x->src);
		return x->pd ? 0 : -ENOMEM;
	default:
		x->len = de_linux_facts_json(&x->src, x->text, sizeof(x->text));
		return x->len < 0 ? (int)x->len : 0;
	}
}

static void rec_check(void *p, int rc, const struct de_error *err)
{
	struct rec_ctx *x = p;
	struct de_process_record untouched;

	(void)err;
	switch (x->which) {
	case 0:
		if (rc < 0) {
			memset(&untouched, 0xa5, sizeof(untouched));
			assert_memory_equal(&x->out, &untouched, sizeof(untouched));
			return;
		}
		assert_true(de_process_record_equal(&x->out, &x->src));
		de_process_record_clear(&x->out);
		return;
	case 1:
		if (rc == 0)
			assert_true(json_equal(x->pd, x->ref_pd));
		json_decref(x->pd);
		return;
	default:
		if (rc == 0) {
			assert_int_equal(x->len, (long)strlen(x->ref_text));
			assert_string_equal(x->text, x->ref_text);
		}
		return;
	}
}

static void test_record_more(void **state)
{
	(void)state;
	static const char *const names[] = {"de_process_record_copy",
					    "de_process_record_platform_json",
					    "de_linux_facts_json (text not UTF-8)"};

	for (int i = 0; i < 3; i++) {
		struct rec_ctx x = {.which = i};
		assert_int_equal(testrecord_make(&x.src, true), 0);
		assert_non_null(x.ref_pd = de_process_record_platform_json(&x.src));
		assert_true(de_linux_facts_json(&x.src, x.ref_text, sizeof(x.ref_text)) > 0);
		assert_non_null(strstr(x.ref_text, "cgroup_raw"));
		struct fa_case c = {names[i], &x, NULL, rec_run, rec_check, false, 0};
		fa_run(&c);
		json_decref(x.ref_pd);
		de_process_record_clear(&x.src);
	}
}

/* ---- the alert's renderings ----------------------------------------------------- */

struct render_ctx {
	bool json;
	struct de_alert a;
	char *ref, *out;
};

static int render_run(void *p, struct de_error *err)
{
	struct render_ctx *x = p;

	(void)err;
	x->out = x->json ? de_alert_render_json(&x->a) : de_alert_render_text(&x->a, true);
	return x->out ? 0 : -ENOMEM;
}

static void render_check(void *p, int rc, const struct de_error *err)
{
	struct render_ctx *x = p;

	(void)err;
	if (rc == 0)
		assert_string_equal(x->out, x->ref);
	free(x->out);
}

static void test_render(void **state)
{
	(void)state;
	for (int i = 0; i < 2; i++) {
		struct render_ctx x = {.json = i == 1};
		json_t *j = json_loads(alert_json, 0, NULL);
		assert_non_null(j);
		assert_int_equal(de_alert_from_json(j, &x.a, NULL), 0);
		json_decref(j);
		render_run(&x, NULL);
		x.ref = x.out;
		assert_non_null(x.ref);
		struct fa_case c = {i ? "de_alert_render_json" : "de_alert_render_text",
				    &x,
				    NULL,
				    render_run,
				    render_check,
				    false,
				    0};
		fa_run(&c);
		free(x.ref);
		de_alert_clear(&x.a);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_from_json),
		cmocka_unit_test(test_to_json),
		cmocka_unit_test(test_record_more),
		cmocka_unit_test(test_render),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
