/*
 * test_config.c — every layer of the configuration, each overriding the one
 * before (defaults < system file < user file < environment < --set), the
 * typed getters and their errors, and malformed input with file:line:col.
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

#include "daemoneye/config.h"

#define DE_TEST_NAME "config"
#include "testutil.h"

static char *write_file(const char *name, const char *text)
{
	char *path;
	FILE *f;
	assert_true(asprintf(&path, "%s/%s", tmpdir, name) > 0);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static struct de_config *load(const struct de_config_sources *src, struct de_error *e)
{
	struct de_config *c = NULL;
	int rc = de_config_load(src, &c, e);
	if (rc < 0)
		fail_msg("config load failed: %s", e->message);
	return c;
}

static uint64_t interval(const struct de_config *c)
{
	uint64_t v = 0;
	assert_int_equal(de_config_get_u64(c, "app.scan_interval_ms", &v, NULL), 0);
	return v;
}

static void test_defaults(void **state)
{
	(void)state;
	struct de_config_sources src = {
		.system_file = "", .user_file = "", .envp = (char *[]){NULL}};
	struct de_error e = {0};
	struct de_config *c = load(&src, &e);
	bool b;
	const char *s;
	const char **list;
	size_t n;

	assert_int_equal(interval(c), 30000);
	assert_int_equal(de_config_get_bool(c, "database.wal_mode", &b, &e), 0);
	assert_true(b);
	assert_int_equal(de_config_get_str(c, "logging.level", &s, &e), 0);
	assert_string_equal(s, "info");
	assert_int_equal(de_config_get_str(c, "app.state_dir", &s, &e), 0);
	assert_null(s);
	assert_int_equal(de_config_get_str_list(c, "detection.rules_dirs", &list, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_string_equal(list[0], "/etc/daemoneye/rules.d");
	assert_null(list[1]);
	free(list);
	assert_string_equal(de_config_origin(c, "app.scan_interval_ms"), "defaults:11:21");
	de_config_free(c);
}

/* Each layer overrides the one before, and its origin is recorded. */
static void test_layers_override_in_order(void **state)
{
	(void)state;
	char *sys =
		write_file("sys.yaml", "app:\n  scan_interval_ms: 11000\n"
				       "logging:\n  level: debug\n  format: json\n"
				       "database:\n  retention_days: 7\n  max_connections: 3\n");
	char *usr =
		write_file("usr.yaml", "app:\n  scan_interval_ms: 12000\n"
				       "database:\n  retention_days: 8\n  max_connections: 4\n");
	char *env[] = {"DAEMONEYE_APP__SCAN_INTERVAL_MS=13000",
		       "DAEMONEYE_DATABASE__MAX_CONNECTIONS=5", "UNRELATED=1",
		       "DAEMONEYE_ALERTING__STDOUT__FORMAT=json", NULL};
	const char *sets[] = {"app.scan_interval_ms=14000"};
	struct de_config_sources src = {.system_file = sys, .user_file = usr, .envp = env};
	struct de_error e = {0};
	struct de_config *c;
	const char *s;
	uint64_t u;

	/* defaults only */
	src.system_file = src.user_file = "";
	src.envp = (char *[]){NULL};
	c = load(&src, &e);
	assert_int_equal(interval(c), 30000);
	de_config_free(c);

	/* + system file */
	src.system_file = sys;
	c = load(&src, &e);
	assert_int_equal(interval(c), 11000);
	assert_non_null(strstr(de_config_origin(c, "app.scan_interval_ms"), "sys.yaml:2:21"));
	de_config_free(c);

	/* + user file */
	src.user_file = usr;
	c = load(&src, &e);
	assert_int_equal(interval(c), 12000);
	assert_non_null(strstr(de_config_origin(c, "app.scan_interval_ms"), "usr.yaml:2:21"));
	/* keys the user file leaves alone keep the system file's value */
	assert_int_equal(de_config_get_str(c, "logging.level", &s, &e), 0);
	assert_string_equal(s, "debug");
	assert_int_equal(de_config_get_u64(c, "database.retention_days", &u, &e), 0);
	assert_int_equal(u, 8);
	de_config_free(c);

	/* + environment */
	src.envp = env;
	c = load(&src, &e);
	assert_int_equal(interval(c), 13000);
	assert_string_equal(de_config_origin(c, "app.scan_interval_ms"),
			    "environment DAEMONEYE_APP__SCAN_INTERVAL_MS");
	assert_int_equal(de_config_get_u64(c, "database.max_connections", &u, &e), 0);
	assert_int_equal(u, 5);
	assert_int_equal(de_config_get_str(c, "alerting.stdout.format", &s, &e), 0);
	assert_string_equal(s, "json");
	assert_int_equal(de_config_get_u64(c, "database.retention_days", &u, &e), 0);
	assert_int_equal(u, 8);
	de_config_free(c);

	/* + --set */
	src.sets = sets;
	src.nsets = 1;
	c = load(&src, &e);
	assert_int_equal(interval(c), 14000);
	assert_string_equal(de_config_origin(c, "app.scan_interval_ms"),
			    "--set app.scan_interval_ms");
	assert_int_equal(de_config_get_u64(c, "database.max_connections", &u, &e), 0);
	assert_int_equal(u, 5);
	de_config_free(c);

	/* -c FILE replaces both standard files */
	src.file = sys;
	src.envp = (char *[]){NULL};
	src.nsets = 0;
	c = load(&src, &e);
	assert_int_equal(interval(c), 11000);
	assert_int_equal(de_config_get_u64(c, "database.retention_days", &u, &e), 0);
	assert_int_equal(u, 7);
	de_config_free(c);
	free(sys);
	free(usr);
}

static void test_environment_prefix_and_lists(void **state)
{
	(void)state;
	struct de_config_builder *b = de_config_builder_new();
	struct de_config *c = NULL;
	struct de_error e = {0};
	char *env[] = {"daemoneye_app__scan_interval_ms=2000",
		       "DaemonEye_DETECTION__RULES_DIRS=[/a, \"/b c\"]",
		       "DaemonEye_APP__STATE_DIR=~/state", NULL};
	const char **list;
	size_t n;
	const char *s;

	assert_int_equal(de_config_builder_add_embedded_defaults(b, &e), 0);
	assert_int_equal(de_config_builder_add_environment(b, "DaemonEye_", env, &e), 0);
	assert_int_equal(de_config_build(b, &c, &e), 0);
	assert_int_equal(interval(c), 2000);
	assert_int_equal(de_config_get_str_list(c, "detection.rules_dirs", &list, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0], "/a");
	assert_string_equal(list[1], "/b c");
	free(list);
	assert_int_equal(de_config_get_str(c, "app.state_dir", &s, &e), 0);
	assert_string_equal(s, "~/state");
	de_config_free(c);
	de_config_builder_free(b);
}

static void test_getter_errors(void **state)
{
	(void)state;
	struct de_config_sources src = {
		.system_file = "", .user_file = "", .envp = (char *[]){NULL}};
	struct de_error e = {0};
	struct de_config *c = load(&src, &e);
	uint64_t u = 77;
	int64_t i;
	double d;
	bool b;
	const char *s;
	const char **l;
	size_t n;

	assert_int_equal(de_config_get_u64(c, "app.nope", &u, &e), -ENOENT);
	assert_int_equal(e.category, DE_ERR_CONFIGURATION);
	assert_non_null(strstr(e.message, "missing configuration key 'app.nope'"));
	assert_int_equal(u, 77); /* untouched on failure */
	assert_int_equal(de_config_get_bool(c, "app.scan_interval_ms", &b, &e), -EINVAL);
	assert_non_null(
		strstr(e.message, "'app.scan_interval_ms' must be true or false, not an integer"));
	assert_non_null(strstr(e.message, "defaults:11:21"));
	assert_int_equal(de_config_get_u64(c, "logging.level", &u, &e), -EINVAL);
	assert_non_null(strstr(e.message, "not a string"));
	assert_int_equal(de_config_get_str(c, "app", &s, &e), -EINVAL);
	assert_non_null(strstr(e.message, "not a mapping"));
	assert_int_equal(de_config_get_str_list(c, "logging.level", &l, &n, &e), -EINVAL);
	assert_int_equal(de_config_get_i64(c, "app.scan_interval_ms", &i, &e), 0);
	assert_int_equal(i, 30000);
	assert_int_equal(de_config_get_double(c, "app.scan_interval_ms", &d, &e), 0);
	assert_true(d == 30000.0);
	assert_int_equal(de_config_get_double(c, "logging.level", &d, &e), -EINVAL);
	assert_int_equal(de_config_get_i64(c, "logging.level", &i, &e), -EINVAL);
	de_config_free(c);
}

/* Build defaults + one YAML text and expect failure mentioning needles. */
static void expect_yaml_error(const char *yaml, const char *needle1, const char *needle2)
{
	struct de_config_builder *b = de_config_builder_new();
	struct de_config *c = NULL;
	struct de_error e = {0};
	int rc;

	assert_int_equal(de_config_builder_add_embedded_defaults(b, &e), 0);
	rc = de_config_builder_add_yaml(b, yaml, strlen(yaml), "t.yaml", &e);
	if (rc == 0)
		rc = de_config_build(b, &c, &e);
	if (rc == 0)
		fail_msg("expected an error for: %s", yaml);
	assert_int_equal(e.category, DE_ERR_CONFIGURATION);
	if (!strstr(e.message, needle1) || (needle2 && !strstr(e.message, needle2)))
		fail_msg("error '%s' lacks '%s'/'%s'", e.message, needle1, needle2 ? needle2 : "");
	de_config_builder_free(b);
}

static void test_bad_yaml(void **state)
{
	(void)state;
	expect_yaml_error("app:\n  scan_interval_ms: [1, 2\n", "t.yaml:", "invalid YAML");
	expect_yaml_error("app:\n  scan_interval_ms: \"fast\"\n", "t.yaml:2:21",
			  "'app.scan_interval_ms' must be a non-negative integer, not a string");
	expect_yaml_error("app:\n  scan_interval_ms: 5\n", "t.yaml:2:21",
			  "out of range 1000..86400000");
	expect_yaml_error("app:\n  scheduler_slice_us: 100001\n", "t.yaml:2:23",
			  "out of range 0..100000");
	expect_yaml_error("collection:\n  ebpf_wake_gap_ms: 101\n", "t.yaml:2:21",
			  "out of range 0..100");
	expect_yaml_error("app:\n  scan_intervl_ms: 5000\n", "t.yaml:2:20",
			  "unknown configuration key 'app.scan_intervl_ms'");
	expect_yaml_error("database:\n  wal_mode: yes\n", "t.yaml:2:13", "true or false");
	expect_yaml_error("logging:\n  level: loud\n", "'logging.level' is 'loud'",
			  "debug info warn error");
	expect_yaml_error("detection:\n  rules_dirs: [/a, 3]\n", "list of strings", "item 1");
	expect_yaml_error("app: 5\n", "'app' is a section and must be a mapping", "t.yaml:1:6");
	expect_yaml_error("app: null\n", "'app' is a section", NULL);
	expect_yaml_error("- a\n- b\n", "top level must be a mapping", NULL);
	expect_yaml_error("app: &x\n  scan_interval_ms: 2000\nlogging: *x\n",
			  "aliases are not supported", "t.yaml:3:10");
	expect_yaml_error("app:\n  scan_interval_ms: 2000\n  scan_interval_ms: 3000\n",
			  "duplicate key 'scan_interval_ms' (first at line 2)", "t.yaml:3:3");
	expect_yaml_error("a: 1\n---\nb: 2\n", "several YAML documents", NULL);
	expect_yaml_error("app:\n  a.b: 1\n", "containing '.'", NULL);
	expect_yaml_error("app:\n  scan_interval_ms: 99999999999999999999999\n",
			  "integer out of range", NULL);
	expect_yaml_error("app:\n  scan_interval_ms: !!float 5\n", "unsupported YAML tag", NULL);
	expect_yaml_error("app:\n  state_dir: \"a\\0b\"\n", "NUL character", NULL);
	expect_yaml_error("app:\n  state_dir: 12\n", "'app.state_dir' must be a string", NULL);
	expect_yaml_error("database:\n  wal_mode: null\n", "'database.wal_mode' must not be null",
			  NULL);
	expect_yaml_error("? [a]\n: 1\n", "mapping keys must be plain scalars", NULL);
	/* deep nesting is refused, not recursed into */
	char deep[1200];
	size_t o = 0;
	for (int i = 0; i < 200; i++)
		deep[o++] = '[';
	deep[o] = '\0';
	strcat(deep, "\n");
	char *wrapped;
	assert_true(asprintf(&wrapped, "app:\n  x: %s", deep) > 0);
	expect_yaml_error(wrapped, "t.yaml", NULL);
	free(wrapped);
}

static void test_good_yaml_types(void **state)
{
	(void)state;
	struct de_config_builder *b = de_config_builder_new();
	struct de_config *c = NULL;
	struct de_error e = {0};
	const char *yaml = "# comment\n"
			   "app:\n  scan_interval_ms: +15000\n  state_dir: '/var/lib/x'\n"
			   "database:\n  wal_mode: False\n  path: ~\n"
			   "detection:\n  rules_dirs: []\n";
	bool wal = true;
	const char *s = "x";
	const char **l;
	size_t n = 9;

	assert_int_equal(de_config_builder_add_embedded_defaults(b, &e), 0);
	assert_int_equal(de_config_builder_add_yaml(b, yaml, strlen(yaml), "g.yaml", &e), 0);
	assert_int_equal(de_config_build(b, &c, &e), 0);
	assert_int_equal(interval(c), 15000);
	assert_int_equal(de_config_get_bool(c, "database.wal_mode", &wal, &e), 0);
	assert_false(wal);
	assert_int_equal(de_config_get_str(c, "database.path", &s, &e), 0);
	assert_null(s);
	assert_int_equal(de_config_get_str(c, "app.state_dir", &s, &e), 0);
	assert_string_equal(s, "/var/lib/x");
	assert_int_equal(de_config_get_str_list(c, "detection.rules_dirs", &l, &n, &e), 0);
	assert_int_equal(n, 0);
	free(l);
	de_config_free(c);
	de_config_builder_free(b);

	/* an empty file sets nothing */
	b = de_config_builder_new();
	assert_int_equal(de_config_builder_add_embedded_defaults(b, &e), 0);
	assert_int_equal(de_config_builder_add_yaml(b, "", 0, "empty.yaml", &e), 0);
	assert_int_equal(de_config_builder_add_yaml(b, "# only a comment\n", 17, "c.yaml", &e), 0);
	assert_int_equal(de_config_build(b, &c, &e), 0);
	assert_int_equal(interval(c), 30000);
	de_config_free(c);
	de_config_builder_free(b);
}

static void test_files(void **state)
{
	(void)state;
	struct de_config_builder *b = de_config_builder_new();
	struct de_error e = {0};
	char *missing, *dir;

	assert_true(asprintf(&missing, "%s/absent.yaml", tmpdir) > 0);
	/* a missing optional file is skipped; a missing required one is an error */
	assert_int_equal(de_config_builder_add_file(b, missing, true, &e), 0);
	assert_int_equal(de_config_builder_add_file(b, missing, false, &e), -ENOENT);
	assert_non_null(strstr(e.message, "absent.yaml"));
	assert_int_equal(e.category, DE_ERR_CONFIGURATION);
	/* an unreadable one (a directory) is an error even when optional */
	assert_true(asprintf(&dir, "%s/dir.yaml", tmpdir) > 0);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_true(de_config_builder_add_file(b, dir, true, &e) < 0);
	assert_non_null(strstr(e.message, "dir.yaml"));
	/* a malformed optional file is an error with file:line:column */
	char *bad = write_file("bad.yaml", "app:\n  scan_interval_ms: 1\n    x: [\n");
	assert_true(de_config_builder_add_file(b, bad, true, &e) < 0);
	assert_non_null(strstr(e.message, "bad.yaml:3:"));
	/* unreadable by permission, when not root (root reads anything) */
	if (geteuid() != 0) {
		char *locked = write_file("locked.yaml", "app: {}\n");
		chmod(locked, 0);
		assert_int_equal(de_config_builder_add_file(b, locked, true, &e), -EACCES);
		free(locked);
	}
	/* ~ expands to $HOME */
	char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
	setenv("HOME", tmpdir, 1);
	free(write_file("home.yaml", "app:\n  scan_interval_ms: 4000\n"));
	assert_int_equal(de_config_builder_add_file(b, "~/home.yaml", false, &e), 0);
	if (home)
		setenv("HOME", home, 1);
	else
		unsetenv("HOME");
	free(home);
	free(bad);
	free(missing);
	free(dir);
	de_config_builder_free(b);
}

static void test_set_errors(void **state)
{
	(void)state;
	struct de_config_builder *b = de_config_builder_new();
	struct de_config *c = NULL;
	struct de_error e = {0};

	assert_int_equal(de_config_builder_add_set(b, "app.scan_interval_ms", &e), -EINVAL);
	assert_non_null(strstr(e.message, "expected key=value"));
	assert_int_equal(de_config_builder_add_set(b, "=5", &e), -EINVAL);
	assert_int_equal(de_config_builder_add_set(b, "App.X=5", &e), -EINVAL);
	assert_non_null(strstr(e.message, "invalid configuration key"));
	assert_int_equal(de_config_builder_add_set(b, "app..x=5", &e), -EINVAL);
	assert_int_equal(de_config_builder_add_set(b, "app.x=[1,", &e), -EINVAL);
	assert_non_null(strstr(e.message, "--set app.x"));

	assert_int_equal(de_config_builder_add_embedded_defaults(b, &e), 0);
	assert_int_equal(de_config_builder_add_set(b, "app.scan_interval_ms=fast", &e), 0);
	assert_true(de_config_build(b, &c, &e) < 0);
	assert_non_null(
		strstr(e.message, "--set app.scan_interval_ms: 'app.scan_interval_ms' must be"));
	de_config_builder_free(b);

	/* an environment variable with a bad value names the variable */
	b = de_config_builder_new();
	char *env[] = {"DAEMONEYE_DATABASE__WAL_MODE=maybe", NULL};
	assert_int_equal(de_config_builder_add_embedded_defaults(b, &e), 0);
	assert_int_equal(de_config_builder_add_environment(b, NULL, env, &e), 0);
	assert_true(de_config_build(b, &c, &e) < 0);
	assert_non_null(strstr(e.message, "environment DAEMONEYE_DATABASE__WAL_MODE"));
	de_config_builder_free(b);

	/* an unknown key from the environment */
	b = de_config_builder_new();
	char *env2[] = {"DAEMONEYE_APP__COLOUR=red", NULL};
	assert_int_equal(de_config_builder_add_embedded_defaults(b, &e), 0);
	assert_int_equal(de_config_builder_add_environment(b, NULL, env2, &e), 0);
	assert_true(de_config_build(b, &c, &e) < 0);
	assert_non_null(strstr(e.message, "unknown configuration key 'app.colour'"));
	de_config_builder_free(b);

	/* --set may replace a whole list, and a later layer wins over a list */
	b = de_config_builder_new();
	const char **l;
	size_t n;
	assert_int_equal(de_config_builder_add_embedded_defaults(b, &e), 0);
	assert_int_equal(de_config_builder_add_set(b, "detection.rules_dirs=[/x, /y]", &e), 0);
	assert_int_equal(de_config_builder_add_set(b, "detection.rules_dirs=[/z]", &e), 0);
	assert_int_equal(de_config_build(b, &c, &e), 0);
	assert_int_equal(de_config_get_str_list(c, "detection.rules_dirs", &l, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_string_equal(l[0], "/z");
	free(l);
	de_config_free(c);
	de_config_builder_free(b);
}

static void test_state_dir(void **state)
{
	(void)state;
	struct de_config_builder *b = de_config_builder_new();
	struct de_config *c = NULL;
	struct de_error e = {0};
	char *dir = NULL;

	assert_int_equal(de_config_builder_add_embedded_defaults(b, &e), 0);
	assert_int_equal(de_config_build(b, &c, &e), 0);
	assert_int_equal(de_config_state_dir(c, &dir, &e), 0);
	if (geteuid() == 0) {
		assert_string_equal(dir, "/var/lib/daemoneye");
	} else {
		const char *x = getenv("XDG_STATE_HOME");
		char *want;
		if (x && x[0] == '/')
			assert_true(asprintf(&want, "%s/daemoneye", x) > 0);
		else
			assert_true(asprintf(&want, "%s/.local/state/daemoneye", getenv("HOME")) >
				    0);
		assert_string_equal(dir, want);
		free(want);
	}
	free(dir);
	de_config_free(c);
	de_config_builder_free(b);

	b = de_config_builder_new();
	assert_int_equal(de_config_builder_add_embedded_defaults(b, &e), 0);
	assert_int_equal(de_config_builder_add_set(b, "app.state_dir=/srv/de", &e), 0);
	assert_int_equal(de_config_build(b, &c, &e), 0);
	assert_int_equal(de_config_state_dir(c, &dir, &e), 0);
	assert_string_equal(dir, "/srv/de");
	free(dir);
	de_config_free(c);
	de_config_builder_free(b);
}

/* The files the parent opens for the worker, and the worker's load from their bytes. */
static void test_files_and_texts(void **state)
{
	(void)state;
	struct de_config_sources src = {.envp = (char *[]){NULL}};
	struct de_error e = {0};
	char *paths[2] = {NULL, NULL};
	bool opt[2];
	size_t n = 9;

	src.file = "/x/given.yaml";
	assert_int_equal(de_config_files(&src, paths, opt, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_string_equal(paths[0], "/x/given.yaml");
	assert_false(opt[0]);
	free(paths[0]);
	src.file = NULL;
	char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
	setenv("HOME", "/home/op", 1);
	assert_int_equal(de_config_files(&src, paths, opt, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_string_equal(paths[0], DE_CONFIG_SYSTEM_FILE);
	assert_string_equal(paths[1], "/home/op/.config/daemoneye/config.yaml");
	assert_true(opt[0] && opt[1]);
	free(paths[0]);
	free(paths[1]);
	src.system_file = "";
	assert_int_equal(de_config_files(&src, paths, opt, &n, &e), 0);
	assert_int_equal(n, 1);
	free(paths[0]);
	if (home)
		setenv("HOME", home, 1);
	else
		unsetenv("HOME");
	free(home);

	/* texts replace the files; errors name the text's origin */
	const char *t1 = "app:\n  scan_interval_ms: 5000\n", *t2 = "app: {scan_interval_ms: 6000}";
	struct de_config_text texts[2] = {{"/etc/a.yaml", t1, strlen(t1)},
					  {"/etc/b.yaml", t2, strlen(t2)}};
	struct de_config_sources ts = {.file = "/does/not/exist.yaml",
				       .envp = (char *[]){NULL},
				       .texts = texts,
				       .ntexts = 1};
	struct de_config *c = load(&ts, &e);
	assert_int_equal(interval(c), 5000);
	assert_non_null(strstr(de_config_origin(c, "app.scan_interval_ms"), "/etc/a.yaml:2:"));
	de_config_free(c);
	ts.ntexts = 2;
	c = load(&ts, &e);
	assert_int_equal(interval(c), 6000);
	de_config_free(c);
	const char *bad = "app:\n  scan_interval_ms: [\n";
	texts[0] = (struct de_config_text){"/etc/broken.yaml", bad, strlen(bad)};
	ts.ntexts = 1;
	assert_true(de_config_load(&ts, &c, &e) < 0);
	assert_non_null(strstr(e.message, "/etc/broken.yaml:"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_layers_override_in_order),
		cmocka_unit_test(test_environment_prefix_and_lists),
		cmocka_unit_test(test_getter_errors),
		cmocka_unit_test(test_bad_yaml),
		cmocka_unit_test(test_good_yaml_types),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_set_errors),
		cmocka_unit_test(test_state_dir),
		cmocka_unit_test(test_files_and_texts),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
