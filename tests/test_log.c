/* test_log.c — text and JSON log lines, levels, escaping of hostile text. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemoneye/log.h"

static char *capture(enum de_log_level level, enum de_log_format fmt, void (*fn)(void))
{
	FILE *f = tmpfile();
	char *buf = calloc(1, 65536);
	assert_non_null(f);
	assert_non_null(buf);
	de_log_init("test", level, fmt, f);
	fn();
	de_log_init("test", DE_LOG_INFO, DE_LOG_TEXT, NULL);
	rewind(f);
	size_t n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void emit_levels(void)
{
	de_log_debug("d %d", 1);
	de_log_info("i %d", 2);
	de_log_warnx("w %d", 3);
	de_log_errorx("e %d", 4);
}

static void test_levels(void **state)
{
	(void)state;
	char *out = capture(DE_LOG_WARN, DE_LOG_TEXT, emit_levels);
	assert_null(strstr(out, " d 1"));
	assert_null(strstr(out, " i 2"));
	assert_non_null(strstr(out, "test["));
	assert_non_null(strstr(out, "] warn: w 3\n"));
	assert_non_null(strstr(out, "] error: e 4\n"));
	free(out);
	out = capture(DE_LOG_DEBUG, DE_LOG_TEXT, emit_levels);
	assert_non_null(strstr(out, "debug: d 1"));
	free(out);
}

static void emit_hostile(void)
{
	de_log_info("process %s started", "evil\nFAKE LINE\x1b[2J\xff");
}

static void test_escaping(void **state)
{
	(void)state;
	char *out = capture(DE_LOG_INFO, DE_LOG_TEXT, emit_hostile);
	/* exactly one line, with the newline and escape made visible */
	assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out));
	assert_non_null(strstr(out, "evil\\nFAKE LINE\\x1b[2J\\xff"));
	free(out);
	out = capture(DE_LOG_INFO, DE_LOG_JSON, emit_hostile);
	json_t *j = json_loads(out, 0, NULL);
	assert_non_null(j);
	assert_non_null(strstr(json_string_value(json_object_get(j, "msg")), "evil\\nFAKE"));
	json_decref(j);
	free(out);
}

static void emit_json(void)
{
	json_t *f = json_pack("{s:i,s:s}", "scan_id", 7, "source", "poll");
	de_log_fields(DE_LOG_INFO, f, "scan %s", "done");
	json_decref(f);
	errno = ENOENT;
	de_log_warn("open %s", "/x");
}

static void test_json(void **state)
{
	(void)state;
	char *out = capture(DE_LOG_INFO, DE_LOG_JSON, emit_json);
	char *nl = strchr(out, '\n');
	assert_non_null(nl);
	*nl = '\0';
	json_t *j = json_loads(out, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "level")), "info");
	assert_string_equal(json_string_value(json_object_get(j, "component")), "test");
	assert_string_equal(json_string_value(json_object_get(j, "msg")), "scan done");
	assert_int_equal(json_integer_value(json_object_get(j, "scan_id")), 7);
	assert_true(json_is_integer(json_object_get(j, "pid")));
	assert_non_null(json_string_value(json_object_get(j, "ts")));
	json_decref(j);
	j = json_loads(nl + 1, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "msg")),
			    "open /x: No such file or directory");
	assert_string_equal(json_string_value(json_object_get(j, "level")), "warn");
	json_decref(j);
	free(out);
}

static void test_parse(void **state)
{
	(void)state;
	assert_int_equal(de_log_level_parse("debug"), DE_LOG_DEBUG);
	assert_int_equal(de_log_level_parse("WARN"), DE_LOG_WARN);
	assert_int_equal(de_log_level_parse("warning"), DE_LOG_WARN);
	assert_int_equal(de_log_level_parse("error"), DE_LOG_ERROR);
	assert_int_equal(de_log_level_parse("loud"), -1);
	assert_int_equal(de_log_format_parse("json"), DE_LOG_JSON);
	assert_int_equal(de_log_format_parse("text"), DE_LOG_TEXT);
	assert_int_equal(de_log_format_parse("xml"), -1);
	assert_string_equal(de_log_level_name(DE_LOG_ERROR), "error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
