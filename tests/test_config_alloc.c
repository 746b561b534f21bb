/*
 * test_config_alloc.c — the configuration loader under allocation failure
 * (tests/failalloc.h): de_config_load over every kind of layer, each
 * builder function, de_config_build, and the getters that allocate.  For
 * every allocation a successful run makes, a run where that allocation
 * fails must return a ConfigurationError "out of memory", leave its outputs
 * (and the builder) as they were, and leak nothing; a run that recovers
 * must give the same configuration, origins included.
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

#include "daemoneye/config.h"
#include "failalloc.h"

#define DE_TEST_NAME "config-alloc"
#include "testutil.h"

static const char sys_yaml[] = "# the system file\n"
			       "app:\n"
			       "  scan_interval_ms: 15000\n"
			       "  state_dir: ~/state\n"
			       "collection:\n"
			       "  mask_flags: [--password, --token, \"--db-pass\"]\n"
			       "  hash_executables: false\n"
			       "logging: {level: debug}\n";

static const char user_yaml[] = "database:\n"
				"  retention_days: 7\n"
				"  path: ~/events.sqlite\n"
				"detection:\n"
				"  rules_dirs:\n"
				"    - /opt/rules\n"
				"    - '~/rules'\n"
				"alerting:\n"
				"  stdout: {enabled: false, format: json}\n";

static char *env[] = {"PATH=/usr/bin", "DAEMONEYE_APP__SCAN_INTERVAL_MS=20000",
		      "daemoneye_logging__format=json",
		      "DAEMONEYE_COLLECTION__MASK_FLAGS=[--secret, --key]", NULL};
static const char *sets[] = {"database.max_size_mb=512", "detection.rules_dirs=[/a, /b]"};

static char sys_path[PATH_MAX], user_path[PATH_MAX];

/* A distinct address that no function under test can return. */
static struct de_config *const SENTINEL = (struct de_config *)(uintptr_t)sys_path;

/* ---- comparing configurations ------------------------------------------- */

/* Every leaf key of tree has the same origin in a and b. */
static void same_origins(const struct de_config *a, const struct de_config *b, const json_t *tree,
			 const char *path)
{
	const char *k;
	json_t *v;

	json_object_foreach ((json_t *)tree, k, v) {
		char sub[512];
		snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", k);
		if (json_is_object(v)) {
			same_origins(a, b, v, sub);
			continue;
		}
		const char *oa = de_config_origin(a, sub), *ob = de_config_origin(b, sub);
		if (!oa || !ob || strcmp(oa, ob) != 0)
			fail_msg("origin of %s: %s, expected %s", sub, oa ? oa : "(none)",
				 ob ? ob : "(none)");
	}
}

static void assert_config_equal(const struct de_config *got, const struct de_config *want)
{
	assert_non_null(got);
	assert_true(json_equal(de_config_tree(got), de_config_tree(want)));
	same_origins(got, want, de_config_tree(want), "");
}

/* ---- de_config_load ------------------------------------------------------ */

static struct de_config_sources full_sources(void)
{
	struct de_config_sources s = {.system_file = sys_path,
				      .user_file = user_path,
				      .envp = env,
				      .sets = sets,
				      .nsets = sizeof(sets) / sizeof(sets[0])};
	return s;
}

/* de_config_load or de_config_build: a config in out, or out untouched. */
struct out_ctx {
	struct de_config_builder *b; /* build: every kind of layer, built again each run */
	struct de_config *ref;	     /* what a successful run gives */
	struct de_config *out;
};

static int load_run(void *p, struct de_error *err)
{
	struct out_ctx *x = p;
	struct de_config_sources s = full_sources();

	x->out = SENTINEL;
	return de_config_load(&s, &x->out, err);
}

static void out_check(void *p, int rc, const struct de_error *err)
{
	struct out_ctx *x = p;

	(void)err;
	if (rc < 0) {
		assert_ptr_equal(x->out, SENTINEL);
		return;
	}
	assert_config_equal(x->out, x->ref);
	de_config_free(x->out);
}

static void test_load(void **state)
{
	(void)state;
	struct de_config_sources s = full_sources();
	struct out_ctx x = {0};
	struct de_error e = {0};

	assert_int_equal(de_config_load(&s, &x.ref, &e), 0);
	struct fa_case c = {"de_config_load: defaults, 2 files, environment, 2 --set",
			    &x,
			    NULL,
			    load_run,
			    out_check,
			    true,
			    0};
	struct fa_stats st = fa_run(&c);
	assert_true(fa_some_errors(st));
	de_config_free(x.ref);
}

/* ---- the builder functions ------------------------------------------------ */

/*
 * Each adds one kind of layer to a builder holding the defaults; after a
 * failure, building it must give the defaults alone (no half layer), after
 * a success the same as the reference.
 */
struct add_ctx {
	int (*add)(struct de_config_builder *b, struct de_error *err);
	struct de_config_builder *b;
	struct de_config *with, *without; /* built with and without the layer */
};

static int add_yaml(struct de_config_builder *b, struct de_error *err)
{
	return de_config_builder_add_yaml(b, sys_yaml, strlen(sys_yaml), "sys.yaml", err);
}

static int add_file(struct de_config_builder *b, struct de_error *err)
{
	return de_config_builder_add_file(b, user_path, false, err);
}

static int add_file_home(struct de_config_builder *b, struct de_error *err)
{
	return de_config_builder_add_file(b, "~/user.yaml", true, err);
}

static int add_env(struct de_config_builder *b, struct de_error *err)
{
	return de_config_builder_add_environment(b, NULL, env, err);
}

static int add_set(struct de_config_builder *b, struct de_error *err)
{
	return de_config_builder_add_set(b, sets[1], err);
}

static struct de_config_builder *defaults_builder(void)
{
	struct de_config_builder *b = de_config_builder_new();

	assert_non_null(b);
	assert_int_equal(de_config_builder_add_embedded_defaults(b, NULL), 0);
	return b;
}

static void add_setup(void *p)
{
	struct add_ctx *x = p;

	x->b = defaults_builder();
}

static int add_run(void *p, struct de_error *err)
{
	struct add_ctx *x = p;

	return x->add(x->b, err);
}

static void add_check(void *p, int rc, const struct de_error *err)
{
	struct add_ctx *x = p;
	struct de_config *c = NULL;

	(void)err;
	assert_int_equal(de_config_build(x->b, &c, NULL), 0);
	assert_config_equal(c, rc < 0 ? x->without : x->with);
	de_config_free(c);
	de_config_builder_free(x->b);
	x->b = NULL;
}

static void run_add(const char *name, int (*add)(struct de_config_builder *, struct de_error *))
{
	struct add_ctx x = {.add = add};
	struct de_config_builder *b = defaults_builder();

	assert_int_equal(de_config_build(b, &x.without, NULL), 0);
	assert_int_equal(add(b, NULL), 0);
	assert_int_equal(de_config_build(b, &x.with, NULL), 0);
	de_config_builder_free(b);
	/* the layer changes something, so that a lost layer is seen */
	assert_false(json_equal(de_config_tree(x.with), de_config_tree(x.without)));

	struct fa_case c = {name, &x, add_setup, add_run, add_check, true, 0};
	struct fa_stats st = fa_run(&c);
	assert_true(fa_some_errors(st));
	de_config_free(x.with);
	de_config_free(x.without);
}

static void test_add_yaml(void **state)
{
	(void)state;
	run_add("de_config_builder_add_yaml", add_yaml);
}

static void test_add_file(void **state)
{
	(void)state;
	run_add("de_config_builder_add_file", add_file);
	run_add("de_config_builder_add_file (~/)", add_file_home);
}

static void test_add_environment(void **state)
{
	(void)state;
	run_add("de_config_builder_add_environment (3 variables)", add_env);
}

static void test_add_set(void **state)
{
	(void)state;
	run_add("de_config_builder_add_set", add_set);
}

/* ---- de_config_build ------------------------------------------------------ */

static int build_run(void *p, struct de_error *err)
{
	struct out_ctx *x = p;

	x->out = SENTINEL;
	return de_config_build(x->b, &x->out, err);
}

static void test_build(void **state)
{
	(void)state;
	struct out_ctx x = {0};

	x.b = defaults_builder();
	assert_int_equal(add_yaml(x.b, NULL), 0);
	assert_int_equal(add_file(x.b, NULL), 0);
	assert_int_equal(add_env(x.b, NULL), 0);
	assert_int_equal(add_set(x.b, NULL), 0);
	assert_int_equal(de_config_build(x.b, &x.ref, NULL), 0);

	struct fa_case c = {"de_config_build: 7 layers", &x, NULL, build_run, out_check, true, 0};
	struct fa_stats st = fa_run(&c);
	assert_true(fa_some_errors(st));
	de_config_free(x.ref);
	de_config_builder_free(x.b);
}

/* ---- getters that allocate ------------------------------------------------ */

struct get_ctx {
	const struct de_config *c;
	int which;
	char *s;
	const char **list;
	size_t n;
	char *const *want;
};

static char *const SSENTINEL = sys_path;

static int get_run(void *p, struct de_error *err)
{
	struct get_ctx *x = p;

	x->s = SSENTINEL;
	x->list = (const char **)(uintptr_t)user_path;
	x->n = 999;
	switch (x->which) {
	case 0:
		return de_config_get_str_list(x->c, "detection.rules_dirs", &x->list, &x->n, err);
	case 1:
		return de_config_state_dir(x->c, &x->s, err);
	case 2: /* database.path set */
	case 3: /* database.path null: under the state directory */
		return de_config_store_path(x->c, &x->s, err);
	default:
		return de_expand_home("~/x/y", &x->s, err);
	}
}

static void get_check(void *p, int rc, const struct de_error *err)
{
	struct get_ctx *x = p;
	char want[PATH_MAX + 32];

	(void)err;
	if (rc < 0) {
		assert_ptr_equal(x->s, SSENTINEL);
		assert_ptr_equal(x->list, user_path);
		assert_int_equal(x->n, 999);
		return;
	}
	switch (x->which) {
	case 0:
		assert_int_equal(x->n, 2);
		assert_string_equal(x->list[0], "/a");
		assert_string_equal(x->list[1], "/b");
		assert_null(x->list[2]);
		free(x->list);
		return;
	case 1:
		snprintf(want, sizeof(want), "%s/state", tmpdir);
		break;
	case 2:
		snprintf(want, sizeof(want), "%s/events.sqlite", tmpdir);
		break;
	case 3:
		snprintf(want, sizeof(want), "%s/state/events.sqlite", tmpdir);
		break;
	default:
		snprintf(want, sizeof(want), "%s/x/y", tmpdir);
		break;
	}
	assert_string_equal(x->s, want);
	free(x->s);
}

static void test_getters(void **state)
{
	(void)state;
	static const char *const names[] = {"de_config_get_str_list", "de_config_state_dir",
					    "de_config_store_path (path set)",
					    "de_config_store_path (state_dir)", "de_expand_home"};
	static const char *const nopath[] = {"database.path=null"};
	struct de_config_sources s = full_sources();
	struct de_config *c = NULL, *c2 = NULL;

	assert_int_equal(de_config_load(&s, &c, NULL), 0);
	s.sets = nopath;
	s.nsets = 1;
	assert_int_equal(de_config_load(&s, &c2, NULL), 0);
	for (int i = 0; i < 5; i++) {
		struct get_ctx x = {.c = i == 3 ? c2 : c, .which = i};
		struct fa_case fc = {names[i], &x, NULL, get_run, get_check, true, 0};
		fa_run(&fc);
	}
	de_config_free(c);
	de_config_free(c2);
}

/* ---- setup ---------------------------------------------------------------- */

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
	(void)state;
	if (tmpdir_make() < 0)
		return -1;
	/* "~/" is the test's own directory: $HOME, never the passwd entry
	   (NSS would load modules under failing allocations) */
	setenv("HOME", tmpdir, 1);
	snprintf(sys_path, sizeof(sys_path), "%s/sys.yaml", tmpdir);
	snprintf(user_path, sizeof(user_path), "%s/user.yaml", tmpdir);
	write_file(sys_path, sys_yaml);
	write_file(user_path, user_yaml);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load),	 cmocka_unit_test(test_add_yaml),
		cmocka_unit_test(test_add_file), cmocka_unit_test(test_add_environment),
		cmocka_unit_test(test_add_set),	 cmocka_unit_test(test_build),
		cmocka_unit_test(test_getters),
	};
	return cmocka_run_group_tests(tests, setup, tmpdir_teardown);
}
