/*
 * test_sink_file.c — the file sink: created 0640 with its directory, one
 * line per record appended, reopened after logrotate moved it (SIGHUP's
 * reopen), a symbolic link refused, records handed over together (and,
 * as root, a full disk part-way through them), and a configuration
 * without a path or with a relative one refused naming the key.
 */
#define DE_TEST_NAME "sink_file"
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemoneye/alertmgr.h"
#include "testutil.h"

static struct de_alertmgr_config *load(const char *yaml, struct de_error *e, int *rc)
{
	struct de_config_builder *b = de_config_builder_new();
	struct de_config *c = NULL;
	struct de_alertmgr_config *ac = NULL;

	assert_int_equal(de_config_builder_add_embedded_defaults(b, e), 0);
	assert_int_equal(de_config_builder_add_yaml(b, yaml, strlen(yaml), "t.yaml", e), 0);
	assert_int_equal(de_config_build(b, &c, e), 0);
	*rc = de_alertmgr_config_load(c, &ac, e);
	de_config_builder_free(b);
	de_config_free(c);
	return ac;
}

/* The configuration of one file sink "f" at path, fsync always (not opened yet). */
static struct de_alertmgr_config *file_sink(const char *path, struct de_alert_sink **s)
{
	struct de_error e = {0};
	char yaml[1024];
	int rc;

	snprintf(
		yaml, sizeof(yaml),
		"alerting:\n  sinks:\n    - { name: f, type: file, path: \"%s\", fsync: always }\n",
		path);
	struct de_alertmgr_config *ac = load(yaml, &e, &rc);
	assert_int_equal(rc, 0);
	*s = de_alertmgr_config_sink(ac, "f");
	assert_non_null(*s);
	return ac;
}

static void deliver(struct de_alert_sink *s, const char *text, enum de_sink_outcome want)
{
	struct de_alert a = {0};
	struct de_sink_result r = {0};
	atomic_bool stop;
	atomic_init(&stop, false);
	struct de_sink_msg m = {.alert = &a,
				.alert_id = "id",
				.payload = text,
				.len = strlen(text),
				.attempt = 1,
				.timeout_ms = 1000,
				.stop = &stop};
	s->ops->deliver(s->state, &m, &r);
	assert_int_equal(r.outcome, want);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	static char buf[65536];
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void test_file(void **state)
{
	(void)state;
	struct de_error e = {0};
	char path[600], moved[640];
	struct stat st;

	snprintf(path, sizeof(path), "%s/log/sub/alerts.jsonl", tmpdir);
	struct de_alert_sink *s;
	struct de_alertmgr_config *ac = file_sink(path, &s);
	assert_int_equal(s->format, DE_FMT_JSON);
	assert_int_equal(s->ops->open(s->state, &e), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	deliver(s, "{\"a\":1}", DE_SINK_OK);
	deliver(s, "{\"a\":2}", DE_SINK_OK);
	assert_string_equal(slurp(path), "{\"a\":1}\n{\"a\":2}\n");
	/* logrotate moves the file; SIGHUP reopens the path */
	snprintf(moved, sizeof(moved), "%s.1", path);
	assert_int_equal(rename(path, moved), 0);
	deliver(s, "{\"a\":3}", DE_SINK_OK); /* still the open file until told */
	s->ops->reopen(s->state);
	deliver(s, "{\"a\":4}", DE_SINK_OK);
	assert_string_equal(slurp(moved), "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n");
	assert_string_equal(slurp(path), "{\"a\":4}\n");
	/* a symbolic link in its place is refused, and the failure is transient */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink(moved, path), 0);
	s->ops->reopen(s->state);
	deliver(s, "{\"a\":5}", DE_SINK_TRANSIENT);
	/* and stays so until the path can be opened: nothing goes on into the
	   file it had open (for all it knows, deleted) */
	deliver(s, "{\"a\":6}", DE_SINK_TRANSIENT);
	assert_string_equal(slurp(moved), "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n");
	char health[256];
	assert_false(s->ops->health(s->state, health, sizeof(health)));
	assert_int_equal(unlink(path), 0); /* the link goes: a new file at the path */
	deliver(s, "{\"a\":7}", DE_SINK_OK);
	assert_string_equal(slurp(path), "{\"a\":7}\n");
	de_alertmgr_config_free(ac);
}

/* Records handed over together: one line each; on a full disk the records
   wholly written are delivered, the rest fail (transient), and the record
   cut short is ended before the next one. */
static void test_batch(void **state)
{
	(void)state;
	struct de_error e = {0};
	char dir[600], path[640], big[3][3001];
	struct de_sink_msg m[3];
	struct de_sink_result r[3];
	struct de_alert a = {0};
	atomic_bool stop;

	atomic_init(&stop, false);
	snprintf(dir, sizeof(dir), "%s/full", tmpdir);
	snprintf(path, sizeof(path), "%s/alerts.jsonl", dir);
	struct de_alert_sink *s;
	struct de_alertmgr_config *ac = file_sink(path, &s);
	assert_non_null(s->ops->deliver_batch);
	bool root = geteuid() == 0;
	assert_int_equal(mkdir(dir, 0700), 0);
	if (root)
		assert_int_equal(mount("tmpfs", dir, "tmpfs", 0, "size=8k"), 0);
	else
		printf("# the full disk part is skipped: it needs root to mount a tmpfs\n");
	assert_int_equal(s->ops->open(s->state, &e), 0);
	for (int i = 0; i < 3; i++) {
		memset(big[i], 'a' + i, 3000);
		big[i][3000] = '\0';
		m[i] = (struct de_sink_msg){.alert = &a,
					    .alert_id = "id",
					    .payload = root ? big[i]
							    : (const char[]){'x', (char)('0' + i)},
					    .len = root ? 3000 : 2,
					    .attempt = 1,
					    .timeout_ms = 1000,
					    .stop = &stop};
	}
	memset(r, 0, sizeof(r));
	s->ops->deliver_batch(s->state, m, 3, r);
	if (!root) {
		for (int i = 0; i < 3; i++)
			assert_int_equal(r[i].outcome, DE_SINK_OK);
		assert_string_equal(slurp(path), "x0\nx1\nx2\n");
		de_alertmgr_config_free(ac);
		return;
	}
	/* 8 KiB: two records and part of the third */
	assert_int_equal(r[0].outcome, DE_SINK_OK);
	assert_int_equal(r[1].outcome, DE_SINK_OK);
	assert_int_equal(r[2].outcome, DE_SINK_TRANSIENT);
	assert_non_null(strstr(r[2].error, "cannot write"));
	assert_int_equal(mount("tmpfs", dir, "tmpfs", MS_REMOUNT, "size=64k"), 0);
	deliver(s, "{\"a\":9}", DE_SINK_OK);
	char *text = slurp(path);
	assert_int_equal(strncmp(text, big[0], 3000), 0);
	assert_int_equal(text[3000], '\n');
	assert_int_equal(strncmp(text + 3001, big[1], 3000), 0);
	assert_int_equal(text[6001], '\n');
	size_t len = strlen(text);
	assert_true(len > 6002 + 9);
	assert_string_equal(text + len - 9, "\n{\"a\":9}\n"); /* on a line of its own */
	for (size_t i = 6002; i < len - 9; i++)		      /* after the cut record's bytes */
		assert_int_equal(text[i], 'c');
	de_alertmgr_config_free(ac);
	assert_int_equal(umount2(dir, MNT_DETACH), 0);
}

static void test_config(void **state)
{
	(void)state;
	struct de_error e = {0};
	int rc;

	assert_null(load("alerting:\n  sinks:\n    - { name: f, type: file }\n", &e, &rc));
	assert_int_equal(rc, -EINVAL);
	assert_int_equal(e.category, DE_ERR_CONFIGURATION);
	assert_non_null(
		strstr(e.message, "t.yaml:3:7: sink 'f' (alerting.sinks[0]): path: missing"));
	assert_null(
		load("alerting:\n  sinks:\n    - { name: f, type: file, path: rel/x }\n", &e, &rc));
	assert_non_null(strstr(e.message, "path: 'rel/x' must be an absolute path"));
	assert_null(
		load("alerting:\n  sinks:\n    - { name: f, type: file, path: /x, fsync: often }\n",
		     &e, &rc));
	assert_non_null(strstr(e.message, "fsync: 'often' is not one of: never interval always"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_batch),
		cmocka_unit_test(test_config),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
