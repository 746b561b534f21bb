/*
 * test_alertfmt.c — the alert formats: CEF's two escapers byte for byte
 * (the CEF spec's rules: header '\' and '|', extension '\' '=' \n \r),
 * invalid UTF-8 and control characters, one line per record in every
 * format whatever a process name holds, the ECS and OCSF shapes, the
 * human line's kind marker and colour; the JSON-shaped formats byte for byte
 * what jansson writes, over random trees.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testrand.h"

#include "daemoneye/alertfmt.h"
#include "daemoneye/text.h"

/* what a hostile process may be called */
static const char hostile[] = "ev|l=na\\me\"]\nline2\r\x1b[31m\xff\xfe|end";

static char *esc(int (*fn)(struct de_buf *, const char *, size_t), const char *s, size_t n)
{
	struct de_buf b = DE_BUF_INIT(4096);
	assert_int_equal(fn(&b, s, n), 0);
	return de_buf_steal(&b);
}

static void test_cef_escaping(void **state)
{
	(void)state;
	char *h = esc(de_cef_escape_header, hostile, sizeof(hostile) - 1);
	char *x = esc(de_cef_escape_ext, hostile, sizeof(hostile) - 1);

	/* header: \ and | escaped, = as is, line breaks and controls as spaces */
	assert_string_equal(h, "ev\\|l=na\\\\me\"] line2  [31m\xef\xbf\xbd\xef\xbf\xbd\\|end");
	/* extension: \ and = escaped, | as is, \n and \r as escapes */
	assert_string_equal(x, "ev|l\\=na\\\\me\"]\\nline2\\r [31m\xef\xbf\xbd\xef\xbf\xbd|end");
	assert_true(de_utf8_valid(h, strlen(h)));
	assert_true(de_utf8_valid(x, strlen(x)));
	free(h);
	free(x);
	/* valid multi-byte UTF-8 passes through */
	x = esc(de_cef_escape_ext, "caf\xc3\xa9=1", 7);
	assert_string_equal(x, "caf\xc3\xa9\\=1");
	free(x);
	assert_int_equal(de_cef_severity(DE_SEV_LOW), 3);
	assert_int_equal(de_cef_severity(DE_SEV_MEDIUM), 5);
	assert_int_equal(de_cef_severity(DE_SEV_HIGH), 8);
	assert_int_equal(de_cef_severity(DE_SEV_CRITICAL), 10);
}

static void make_alert(struct de_alert *a)
{
	memset(a, 0, sizeof(*a));
	assert_int_equal(de_uuid_parse("0b8f7a52-6a3c-4d2e-9a55-3f1d2c4b5a69", &a->id), 0);
	a->alert_time = 1764060360123;
	a->rule_id = strdup("exec-from-tmp");
	a->title = strdup("Exec | from = tmp");
	a->description = strdup("desc with \\ and\nnewline");
	a->severity = DE_SEV_HIGH;
	a->affected_processes = calloc(1, sizeof(uint32_t));
	a->affected_processes[0] = 4242;
	a->affected_processes_len = 1;
	a->process_count = 1;
	a->alert_data = json_array();
	json_array_append_new(a->alert_data, json_pack("{s:i}", "pid", 4242));
	a->dedupe_key = strdup("exec-from-tmp|x");
	/* the context holds what the store had: bytes made valid as the manager does */
	char *name = de_utf8_lossy_dup(hostile, sizeof(hostile) - 1, NULL);
	a->context =
		json_pack("{s:[{s:i,s:I,s:s,s:s,s:s,s:s,s:i,s:s}],s:{s:s}}", "processes", "pid",
			  4242, "start_time", (json_int_t)1764060000000, "name", name,
			  "executable_path", "/tmp/x y", "command_line", name, "user_id", "1000",
			  "ppid", 1, "parent_name", "systemd", "rule", "category", "execution");
	free(name);
	assert_non_null(a->context);
}

static char *render(enum de_alertfmt f, const struct de_alert *a)
{
	struct de_buf b = DE_BUF_INIT(1u << 20);
	struct de_alertfmt_opts o = {.hostname = "host-1"};
	assert_int_equal(de_alertfmt_render(f, a, &o, &b), 0);
	return de_buf_steal(&b);
}

static void test_one_line_each(void **state)
{
	(void)state;
	struct de_alert a;

	make_alert(&a);
	for (int f = 0; f < DE_FMT_MAX; f++) {
		char *s = render((enum de_alertfmt)f, &a);
		assert_null(strchr(s, '\n'));
		assert_null(strchr(s, '\r'));
		assert_null(strchr(s, '\x1b'));
		assert_true(de_utf8_valid(s, strlen(s)));
		free(s);
	}
	de_alert_clear(&a);
}

static void test_cef_record(void **state)
{
	(void)state;
	struct de_alert a;
	char *s;

	make_alert(&a);
	s = render(DE_FMT_CEF, &a);
	assert_non_null(strstr(s, "CEF:0|DaemonEye|daemoneye|" DE_VERSION
				  "|exec-from-tmp|Exec \\| from = tmp|8|rt=1764060360123 "));
	assert_non_null(strstr(s, " externalId=0b8f7a52-6a3c-4d2e-9a55-3f1d2c4b5a69"));
	assert_non_null(strstr(s, " msg=desc with \\\\ and\\nnewline"));
	assert_non_null(strstr(s, " dproc=ev|l\\=na\\\\me\"]\\nline2\\r [31m"));
	assert_non_null(strstr(s, " filePath=/tmp/x y"));
	assert_non_null(strstr(s, " dpid=4242"));
	assert_non_null(strstr(s, " dvchost=host-1"));
	free(s);
	de_alert_clear(&a);
}

static void test_ecs_ocsf(void **state)
{
	(void)state;
	struct de_alert a;
	json_error_t je;
	char *s;
	json_t *j;

	make_alert(&a);
	s = render(DE_FMT_ECS, &a);
	j = json_loads(s, 0, &je);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "@timestamp")),
			    "2025-11-25T08:46:00.123Z");
	json_t *ev = json_object_get(j, "event");
	assert_string_equal(json_string_value(json_object_get(ev, "kind")), "alert");
	assert_int_equal(json_integer_value(json_object_get(ev, "severity")), 73);
	assert_string_equal(json_string_value(json_object_get(ev, "id")),
			    "0b8f7a52-6a3c-4d2e-9a55-3f1d2c4b5a69");
	json_t *rule = json_object_get(j, "rule");
	assert_string_equal(json_string_value(json_object_get(rule, "id")), "exec-from-tmp");
	assert_string_equal(json_string_value(json_object_get(rule, "category")), "execution");
	json_t *p = json_object_get(j, "process");
	assert_int_equal(json_integer_value(json_object_get(p, "pid")), 4242);
	assert_string_equal(json_string_value(json_object_get(p, "executable")), "/tmp/x y");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(p, "parent"), "name")),
		"systemd");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(j, "host"), "hostname")),
		"host-1");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "user"), "id")),
			    "1000");
	json_decref(j);
	free(s);

	s = render(DE_FMT_OCSF, &a);
	j = json_loads(s, 0, &je);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "class_uid")), 2004);
	assert_int_equal(json_integer_value(json_object_get(j, "category_uid")), 2);
	assert_int_equal(json_integer_value(json_object_get(j, "type_uid")), 200401);
	assert_int_equal(json_integer_value(json_object_get(j, "severity_id")), 4);
	assert_int_equal(json_integer_value(json_object_get(j, "status_id")), 1);
	json_t *fi = json_object_get(j, "finding_info");
	assert_string_equal(json_string_value(json_object_get(fi, "uid")),
			    "0b8f7a52-6a3c-4d2e-9a55-3f1d2c4b5a69");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(fi, "analytic"), "uid")),
		"exec-from-tmp");
	json_t *evp =
		json_object_get(json_array_get(json_object_get(j, "evidences"), 0), "process");
	assert_int_equal(json_integer_value(json_object_get(evp, "pid")), 4242);
	json_decref(j);
	free(s);

	/* a resolved alert closes the finding */
	a.kind = strdup("resolved");
	s = render(DE_FMT_OCSF, &a);
	j = json_loads(s, 0, &je);
	assert_int_equal(json_integer_value(json_object_get(j, "activity_id")), 3);
	assert_int_equal(json_integer_value(json_object_get(j, "status_id")), 4);
	json_decref(j);
	free(s);
	de_alert_clear(&a);
}

static void test_human_and_json(void **state)
{
	(void)state;
	struct de_alert a, back = {0};
	struct de_buf b = DE_BUF_INIT(1u << 20);
	struct de_alertfmt_opts o = {.color = true};
	enum de_alertfmt f;
	json_error_t je;
	char *s;

	make_alert(&a);
	s = render(DE_FMT_JSON, &a);
	json_t *j = json_loads(s, 0, &je);
	assert_int_equal(de_alert_from_json(j, &back, NULL), 0);
	assert_true(de_alert_equal(&a, &back));
	json_decref(j);
	free(s);
	de_alert_clear(&back);

	a.kind = strdup("summary");
	assert_int_equal(de_alertfmt_render(DE_FMT_HUMAN, &a, &o, &b), 0);
	assert_true(strncmp(b.p, "[summary] 2025-11-25T08:46:00Z \033[31mHIGH", 40) == 0);
	de_buf_free(&b);
	de_alert_clear(&a);

	assert_int_equal(de_alertfmt_parse("text", &f), 0);
	assert_int_equal(f, DE_FMT_HUMAN);
	assert_int_equal(de_alertfmt_parse("ocsf", &f), 0);
	assert_int_equal(f, DE_FMT_OCSF);
	assert_int_equal(de_alertfmt_parse("xml", &f), -EINVAL);
}

/* A random JSON tree of at most depth levels, with the text that breaks escaping. */
static json_t *rnd_json(int depth)
{
	switch (rnd(depth > 0 ? 9 : 6)) {
	case 0:
		return json_null();
	case 1:
		return json_boolean(rnd(2));
	case 2:
		return json_integer(rnd_i64());
	case 3:
		return json_real((double)rnd_i64() / 7.0);
	case 4:
	case 5: {
		char *t = rnd_text();
		json_t *j = de_utf8_valid(t, strlen(t)) ? json_string(t) : json_string("x");
		free(t);
		return j;
	}
	case 6:
	case 7: {
		json_t *o = json_object();
		for (uint32_t i = rnd(5); i > 0; i--) {
			char *k = rnd_text();
			if (de_utf8_valid(k, strlen(k)))
				json_object_set_new(o, k, rnd_json(depth - 1));
			free(k);
		}
		return o;
	}
	default: {
		json_t *a = json_array();
		for (uint32_t i = rnd(5); i > 0; i--)
			json_array_append_new(a, rnd_json(depth - 1));
		return a;
	}
	}
}

/* The JSON-shaped formats are exactly what jansson's json_dumps would write. */
static void test_json_bytes(void **state)
{
	(void)state;
	struct de_alert a;
	struct de_buf b = DE_BUF_INIT(1u << 20);

	for (int i = 0; i < 1000; i++) {
		make_alert(&a);
		json_decref(a.alert_data);
		a.alert_data = rnd_json(4);
		if (rnd(4)) {
			json_decref(a.context);
			a.context = json_pack("{s:o,s:o}", "host", rnd_json(2), "processes",
					      rnd_json(3));
		}
		/* text that is not always UTF-8 (a "_raw" twin), optional members */
		char **strs[] = {&a.rule_id, &a.title, &a.description, &a.dedupe_key, &a.kind};
		for (size_t k = 0; k < sizeof(strs) / sizeof(strs[0]); k++) {
			free(*strs[k]);
			*strs[k] = rnd(5) || k < 4 ? rnd_text() : NULL;
		}
		a.has_scan_id = rnd(2);
		a.scan_id = rnd_i64();
		a.has_rule_execution_time_ms = rnd(2);
		a.rule_execution_time_ms = rnd_i64();
		a.incomplete = rnd(2);
		a.alert_time = rnd_i64();
		a.process_count = (int32_t)rnd_i64();
		de_buf_reset(&b);
		assert_int_equal(de_alertfmt_render(DE_FMT_JSON, &a, NULL, &b), 0);
		json_t *j = de_alert_to_json(&a);
		char *want = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
		assert_string_equal(b.p, want);
		char *line = de_alert_render_json(&a);
		assert_string_equal(line, want);
		free(line);
		/* the same with the values as the outbox stored them (not ASCII-only) */
		char *data = json_dumps(a.alert_data, JSON_COMPACT | JSON_ENCODE_ANY);
		char *ctx =
			a.context ? json_dumps(a.context, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
		struct de_alert_json_text t = {data, ctx, strlen(data), ctx ? strlen(ctx) : 0};
		struct de_alertfmt_opts o = {.json = &t};
		de_buf_reset(&b);
		assert_int_equal(de_alertfmt_render(DE_FMT_JSON, &a, &o, &b), 0);
		assert_string_equal(b.p, want);
		free(data);
		free(ctx);
		free(want);
		json_decref(j);
		de_alert_clear(&a);
	}
	de_buf_free(&b);
}

/* The json format copies the values' text it is given when it is ASCII, and
   dumps the values again when it is not (the output is ASCII throughout). */
static void test_json_pre_written(void **state)
{
	(void)state;
	struct de_alert a;
	struct de_buf b = DE_BUF_INIT(1u << 20);
	struct de_alert_json_text t = {.alert_data = "[\"given\"]", .alert_data_len = 9};
	struct de_alertfmt_opts o = {.json = &t};

	make_alert(&a);
	assert_int_equal(de_alertfmt_render(DE_FMT_JSON, &a, &o, &b), 0);
	assert_non_null(strstr(b.p, "\"alert_data\":[\"given\"],"));
	t = (struct de_alert_json_text){.alert_data = "[\"zqx\xc3\xa9\"]", .alert_data_len = 10};
	de_buf_reset(&b);
	assert_int_equal(de_alertfmt_render(DE_FMT_JSON, &a, &o, &b), 0);
	char *want = de_alert_render_json(&a);
	assert_string_equal(b.p, want);
	assert_null(strstr(b.p, "zqx"));
	free(want);
	de_alert_clear(&a);
	de_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cef_escaping),	 cmocka_unit_test(test_one_line_each),
		cmocka_unit_test(test_cef_record),	 cmocka_unit_test(test_ecs_ocsf),
		cmocka_unit_test(test_human_and_json),	 cmocka_unit_test(test_json_bytes),
		cmocka_unit_test(test_json_pre_written),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
