/*
 * test_health.c — the health report: building it (the status is the worst
 * component's), writing it (atomic, 0644) and reading it back, a stale
 * report turned critical by an "agent" component, and what the reader
 * refuses (not JSON, another version, a component without a known status)
 * or cannot read.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define DE_TEST_NAME "health"
#include "testutil.h"

#include "daemoneye/fileio.h"
#include "daemoneye/health.h"

static char *path_of(const char *name)
{
	char *p;
	assert_true(asprintf(&p, "%s/%s", tmpdir, name) > 0);
	return p;
}

static void test_names(void **state)
{
	(void)state;
	enum de_health_status s = DE_HEALTH_OK;

	assert_string_equal(de_health_status_name(DE_HEALTH_CRITICAL), "critical");
	assert_null(de_health_status_name(DE_HEALTH_STATUS_MAX));
	assert_int_equal(de_health_status_parse("warning", &s), 0);
	assert_int_equal(s, DE_HEALTH_WARNING);
	assert_int_equal(de_health_status_parse("Warning", &s), -EINVAL);
	assert_int_equal(de_health_status_parse(NULL, &s), -EINVAL);
}

static void test_build_write_read(void **state)
{
	(void)state;
	json_t *doc = de_health_new(1000000, 90000), *back;
	char *p = path_of("health.json");
	struct de_error e = {0};
	struct stat st;

	assert_non_null(doc);
	assert_int_equal(de_health_worst(doc), DE_HEALTH_OK);
	assert_int_equal(de_health_add(doc, "procmond", DE_HEALTH_OK, "pid 42",
				       json_pack("{s:i}", "pid", 42)),
			 0);
	assert_int_equal(de_health_add(doc, "rules", DE_HEALTH_WARNING, "1 failing", NULL), 0);
	assert_int_equal(de_health_worst(doc), DE_HEALTH_WARNING);
	assert_int_equal(de_health_add(doc, "store", DE_HEALTH_OK, "fine", NULL), 0);
	assert_int_equal(de_health_worst(doc), DE_HEALTH_WARNING); /* the worst stays */
	assert_int_equal(de_health_write(p, doc, &e), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	/* read back at a time within stale_after_ms: as written */
	assert_int_equal(de_health_read(p, 1000000 + 90000, &back, &e), 0);
	assert_true(json_equal(doc, back));
	json_decref(back);
	/* one ms later it is stale: an "agent" component, critical, comes first */
	assert_int_equal(de_health_read(p, 1000000 + 90001, &back, &e), 0);
	assert_int_equal(de_health_worst(back), DE_HEALTH_CRITICAL);
	json_t *first = json_array_get(json_object_get(back, "components"), 0);
	assert_string_equal(json_string_value(json_object_get(first, "name")), "agent");
	assert_non_null(strstr(json_string_value(json_object_get(first, "summary")), "90 s ago"));
	assert_int_equal(json_array_size(json_object_get(back, "components")), 4);
	json_decref(back);
	json_decref(doc);
	free(p);
}

static void put(const char *path, const char *text)
{
	assert_int_equal(de_write_file_atomic(path, text, strlen(text), 0644), 0);
}

static void test_read_refuses(void **state)
{
	(void)state;
	char *p = path_of("bad.json");
	json_t *doc = (json_t *)0x1;
	struct de_error e = {0};
	static const char *const bad[] = {
		"not json",
		"[]",
		"{\"version\":2,\"updated_at\":1,\"stale_after_ms\":1,\"components\":[]}",
		"{\"version\":1,\"updated_at\":\"x\",\"stale_after_ms\":1,\"components\":[]}",
		"{\"version\":1,\"updated_at\":1,\"stale_after_ms\":1,\"components\":{}}",
		"{\"version\":1,\"updated_at\":1,\"stale_after_ms\":1,\"components\":[{\"name\":"
		"\"x\",\"status\":\"fine\",\"summary\":\"\"}]}",
		"{\"version\":1,\"updated_at\":1,\"stale_after_ms\":1,\"components\":[{\"status\":"
		"\"ok\",\"summary\":\"\"}]}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put(p, bad[i]);
		assert_int_equal(de_health_read(p, 0, &doc, &e), -EBADMSG);
		assert_int_equal(e.category, DE_ERR_VALIDATION);
		assert_ptr_equal(doc, (json_t *)0x1);
	}
	free(p);
	p = path_of("missing.json");
	assert_int_equal(de_health_read(p, 0, &doc, &e), -ENOENT);
	assert_int_equal(e.category, DE_ERR_IO);
	assert_non_null(strstr(e.message, "missing.json"));
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_build_write_read),
		cmocka_unit_test(test_read_refuses),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
