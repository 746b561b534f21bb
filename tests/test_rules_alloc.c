/*
 * test_rules_alloc.c — rule files under allocation failure
 * (tests/failalloc.h): de_rules_parse with and without the validator (so
 * SQLite's allocations fail too), a file with problems, the file and
 * directory loaders, the enable/disable state file, and the YAML export.
 * A failed load must return "out of memory" and leave the set and the
 * problems exactly as they were (all of a file or none of it); a load
 * that recovers must give the same rules.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemoneye/rules.h"
#include "failalloc.h"

#define DE_TEST_NAME "rules-alloc"
#include "testutil.h"

/* Every field of a rule, in the three shapes a file may take. */
static const char good_yaml[] =
	"rules:\n"
	"  - id: full-rule\n"
	"    name: Every field\n"
	"    description: >-\n"
	"      A rule with all the optional fields.\n"
	"    version: 3\n"
	"    severity: critical\n"
	"    category: execution\n"
	"    tags: [attack.t1059.004, attack.t1070, linux]\n"
	"    author: tests\n"
	"    enabled: false\n"
	"    dedupe_key_fields: [pid, name]\n"
	"    exceptions:\n"
	"      - {process_name: \"nc*\", user: \"0\", reason: lab}\n"
	"      - {executable_path: /opt/*, command_line_contains: --safe}\n"
	"    sql: |\n"
	"      SELECT pid, name, executable_path FROM processes WHERE name = 'x'\n"
	"  - id: minimal\n"
	"    name: Only what is required\n"
	"    severity: low\n"
	"    sql: SELECT pid, name, executable_path FROM processes\n";

/* One rule checked by the validator: its SQL is prepared by SQLite. */
static const char sql_yaml[] =
	"id: with-sql\n"
	"name: Checked SQL\n"
	"severity: high\n"
	"dedupe_key_fields: [name]\n"
	"sql: >-\n"
	"  SELECT p.pid, p.name, p.executable_path FROM processes p\n"
	"  WHERE p.name LIKE 'nc%' AND p.ppid IN (SELECT pid FROM processes)\n";

/* Good rules beside bad ones: each bad one is a problem, not an error. */
static const char problems_yaml[] = "- id: ok-one\n"
				    "  name: Fine\n"
				    "  severity: medium\n"
				    "  sql: SELECT pid, name, executable_path FROM processes\n"
				    "- id: Bad_Id\n"
				    "  name: Bad id and tag\n"
				    "  severity: urgent\n"
				    "  tags: [attack.t12]\n"
				    "  colour: red\n"
				    "  sql: SELECT 1\n"
				    "- id: preexisting\n"
				    "  name: Duplicate of the rule already in the set\n"
				    "  severity: low\n"
				    "  sql: SELECT pid, name, executable_path FROM processes\n"
				    "- just a string\n";

static const char pre_yaml[] = "id: preexisting\n"
			       "name: Loaded before\n"
			       "severity: low\n"
			       "sql: SELECT pid, name, executable_path FROM processes\n";

static char dir_path[PATH_MAX], file_path[PATH_MAX], state_path[PATH_MAX];

/* ---- sets that must come back unchanged -------------------------------------- */

/* A set holding one rule and a problem list holding one message. */
static void preloaded(struct de_rule_set *s, struct de_rule_problems *p)
{
	memset(s, 0, sizeof(*s));
	memset(p, 0, sizeof(*p));
	assert_int_equal(de_rules_parse(pre_yaml, strlen(pre_yaml), "pre.yaml", DE_RULE_FILE, 7,
					NULL, s, p, NULL),
			 0);
	assert_int_equal(s->len, 1);
	p->items = calloc(1, sizeof(char *));
	assert_non_null(p->items);
	p->items[0] = strdup("an earlier problem");
	assert_non_null(p->items[0]);
	p->len = 1;
}

static void assert_sets_equal(const struct de_rule_set *a, const struct de_rule_set *b)
{
	assert_int_equal(a->len, b->len);
	for (size_t i = 0; i < a->len; i++) {
		if (!de_rule_equal(&a->items[i], &b->items[i]))
			fail_msg("rule %zu (%s) differs", i, a->items[i].id);
		assert_string_equal(a->origins[i], b->origins[i]);
	}
}

static void assert_problems_equal(const struct de_rule_problems *a,
				  const struct de_rule_problems *b)
{
	assert_int_equal(a->len, b->len);
	for (size_t i = 0; i < a->len; i++)
		assert_string_equal(a->items[i], b->items[i]);
}

/* ---- one loader, run on a preloaded set -------------------------------------------- */

struct load_ctx {
	int (*load)(struct load_ctx *x, struct de_error *err);
	const char *text; /* for parse */
	struct de_validator *v;
	struct de_rule_set set, ref, before;
	struct de_rule_problems pr, ref_pr, before_pr;
};

static int load_parse(struct load_ctx *x, struct de_error *err)
{
	return de_rules_parse(x->text, strlen(x->text), "test.yaml", DE_RULE_USER, 1000, x->v,
			      &x->set, &x->pr, err);
}

static int load_file(struct load_ctx *x, struct de_error *err)
{
	return de_rules_load_file(file_path, DE_RULE_FILE, x->v, &x->set, &x->pr, err);
}

static int load_dir(struct load_ctx *x, struct de_error *err)
{
	return de_rules_load_dir(dir_path, DE_RULE_FILE, x->v, &x->set, &x->pr, err);
}

static void load_setup(void *p)
{
	struct load_ctx *x = p;

	preloaded(&x->set, &x->pr);
}

static int load_run(void *p, struct de_error *err)
{
	struct load_ctx *x = p;

	return x->load(x, err);
}

static void load_check(void *p, int rc, const struct de_error *err)
{
	struct load_ctx *x = p;

	(void)err;
	assert_sets_equal(&x->set, rc < 0 ? &x->before : &x->ref);
	assert_problems_equal(&x->pr, rc < 0 ? &x->before_pr : &x->ref_pr);
	de_rule_set_clear(&x->set);
	de_rule_problems_clear(&x->pr);
}

static void run_load(const char *name, int (*load)(struct load_ctx *, struct de_error *),
		     const char *text, bool validate, size_t want_added, size_t want_problems)
{
	struct load_ctx x = {.load = load, .text = text};
	struct de_error e = {0};

	if (validate)
		assert_non_null(x.v = de_validator_new());
	preloaded(&x.before, &x.before_pr);
	preloaded(&x.ref, &x.ref_pr);
	x.set = x.ref;
	x.pr = x.ref_pr;
	if (load(&x, &e) < 0)
		fail_msg("%s: %s", name, e.message);
	x.ref = x.set;
	x.ref_pr = x.pr;
	assert_int_equal(x.ref.len, x.before.len + want_added);
	assert_int_equal(x.ref_pr.len, x.before_pr.len + want_problems);

	struct fa_case c = {name, &x, load_setup, load_run, load_check, true, 0};
	struct fa_stats st = fa_run(&c);
	assert_true(fa_some_errors(st));

	de_rule_set_clear(&x.ref);
	de_rule_set_clear(&x.before);
	de_rule_problems_clear(&x.ref_pr);
	de_rule_problems_clear(&x.before_pr);
	de_validator_free(x.v);
}

static void test_parse(void **state)
{
	(void)state;
	run_load("de_rules_parse: 2 rules, every field", load_parse, good_yaml, false, 2, 0);
}

static void test_parse_validated(void **state)
{
	(void)state;
	run_load("de_rules_parse: 1 rule through the validator", load_parse, sql_yaml, true, 1, 0);
}

static void test_parse_problems(void **state)
{
	(void)state;
	/* Bad_Id: id, severity, tag and unknown key; the duplicate; the string */
	run_load("de_rules_parse: 1 good rule, 3 bad ones", load_parse, problems_yaml, false, 1, 6);
}

static void test_load_file(void **state)
{
	(void)state;
	run_load("de_rules_load_file", load_file, NULL, false, 2, 0);
}

static void test_load_dir(void **state)
{
	(void)state;
	/* a-good.yaml's two rules, then b-problems.yml's as above */
	run_load("de_rules_load_dir: 2 files", load_dir, NULL, false, 3, 6);
}

/* ---- the enable/disable state file --------------------------------------------- */

struct state_ctx {
	int which;
	struct de_rule_set set;
};

/* 0: apply; 1: set in a file with overrides; 2: in "{}"; 3: no file yet */
static void state_setup(void *p)
{
	struct state_ctx *x = p;
	struct de_rule_problems pr;
	FILE *f;

	preloaded(&x->set, &pr);
	de_rule_problems_clear(&pr);
	/* the file as the last successful run left it */
	unlink(state_path);
	if (x->which == 3)
		return;
	f = fopen(state_path, "w");
	assert_non_null(f);
	fputs(x->which == 2 ? "{}\n" : "{\"enabled\": {\"preexisting\": false, \"other\": true}}\n",
	      f);
	assert_int_equal(fclose(f), 0);
}

static int state_run(void *p, struct de_error *err)
{
	struct state_ctx *x = p;

	if (x->which == 0)
		return de_rules_state_apply(state_path, &x->set, err);
	return de_rules_state_set(state_path, "another", true, err);
}

static void state_check(void *p, int rc, const struct de_error *err)
{
	struct state_ctx *x = p;
	json_error_t je;
	json_t *j, *en;

	(void)err;
	if (x->which == 0) {
		/* applied, or not at all */
		assert_int_equal(x->set.items[0].enabled, rc < 0);
		de_rule_set_clear(&x->set);
		return;
	}
	de_rule_set_clear(&x->set);
	/* the file is the old one or the new one, never something else */
	j = json_load_file(state_path, 0, &je);
	if (x->which == 3 && rc < 0) {
		assert_null(j);
		return;
	}
	assert_non_null(j);
	en = json_object_get(j, "enabled");
	if (x->which == 1) {
		assert_true(json_is_false(json_object_get(en, "preexisting")));
		assert_true(json_is_true(json_object_get(en, "other")));
	}
	if (rc == 0)
		assert_true(json_is_true(json_object_get(en, "another")));
	else
		assert_null(json_object_get(en, "another"));
	json_decref(j);
}

static void test_state(void **state)
{
	(void)state;
	static const char *const names[] = {"de_rules_state_apply", "de_rules_state_set",
					    "de_rules_state_set: no overrides yet",
					    "de_rules_state_set: no file yet"};

	for (int i = 0; i < 4; i++) {
		struct state_ctx x = {.which = i};
		struct fa_case c = {names[i], &x, state_setup, state_run, state_check, true, 0};
		fa_run(&c);
	}
}

/* ---- where the operator's rules live ----------------------------------------- */

struct paths_ctx {
	struct de_config *c;
	char *user, *state;
};

static char sentinel_path[] = "untouched";

static int paths_run(void *p, struct de_error *err)
{
	struct paths_ctx *x = p;

	x->user = x->state = sentinel_path;
	return de_rules_paths(x->c, &x->user, &x->state, err);
}

static void paths_check(void *p, int rc, const struct de_error *err)
{
	struct paths_ctx *x = p;

	(void)err;
	if (rc < 0) {
		assert_ptr_equal(x->user, sentinel_path);
		assert_ptr_equal(x->state, sentinel_path);
		return;
	}
	assert_string_equal(x->user, "/var/x/rules.d");
	assert_string_equal(x->state, "/var/x/rules-state.json");
	free(x->user);
	free(x->state);
}

static void test_paths(void **state)
{
	(void)state;
	static const char *const sets[] = {"app.state_dir=/var/x"};
	struct de_config_sources src = {.system_file = "",
					.user_file = "",
					.envp = (char *[]){NULL},
					.sets = sets,
					.nsets = 1};
	struct paths_ctx x = {0};

	assert_int_equal(de_config_load(&src, &x.c, NULL), 0);
	struct fa_case c = {"de_rules_paths", &x, NULL, paths_run, paths_check, true, 0};
	fa_run(&c);
	de_config_free(x.c);
}

/* ---- export ----------------------------------------------------------------- */

/* Written into a fixed buffer through a caller-supplied stdio buffer, so
   that the only allocations are de_rules_write_yaml's and libyaml's. */
static char out_buf[16384], io_buf[4096];

struct export_ctx {
	const struct de_rule *all[2];
	FILE *f;
	char *want;
};

static void export_setup(void *p)
{
	struct export_ctx *x = p;

	memset(out_buf, 0, sizeof(out_buf));
	x->f = fmemopen(out_buf, sizeof(out_buf) - 1, "w");
	assert_non_null(x->f);
	assert_int_equal(setvbuf(x->f, io_buf, _IOFBF, sizeof(io_buf)), 0);
}

static int export_run(void *p, struct de_error *err)
{
	struct export_ctx *x = p;

	return de_rules_write_yaml(x->f, x->all, 2, err);
}

static void export_check(void *p, int rc, const struct de_error *err)
{
	struct export_ctx *x = p;

	(void)err;
	assert_int_equal(fclose(x->f), 0);
	if (rc == 0)
		assert_string_equal(out_buf, x->want);
}

static void test_export(void **state)
{
	(void)state;
	struct de_rule_set set = {0};
	struct de_rule_problems pr = {0};
	struct export_ctx x = {0};

	assert_int_equal(de_rules_parse(good_yaml, strlen(good_yaml), "g.yaml", DE_RULE_FILE, 0,
					NULL, &set, &pr, NULL),
			 0);
	x.all[0] = &set.items[0];
	x.all[1] = &set.items[1];
	export_setup(&x);
	assert_int_equal(export_run(&x, NULL), 0);
	assert_int_equal(fclose(x.f), 0);
	x.want = strdup(out_buf);
	assert_non_null(x.want);
	assert_non_null(strstr(x.want, "full-rule"));

	struct fa_case c = {"de_rules_write_yaml: 2 rules",
			    &x,
			    export_setup,
			    export_run,
			    export_check,
			    true,
			    0};
	fa_run(&c);
	free(x.want);
	de_rule_set_clear(&set);
	de_rule_problems_clear(&pr);
}

/* ---- setup --------------------------------------------------------------------- */

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
	char p[PATH_MAX + 32];

	(void)state;
	if (tmpdir_make() < 0)
		return -1;
	snprintf(file_path, sizeof(file_path), "%s/one.yaml", tmpdir);
	write_file(file_path, good_yaml);
	snprintf(state_path, sizeof(state_path), "%s/state.json", tmpdir);
	snprintf(dir_path, sizeof(dir_path), "%s/rules.d", tmpdir);
	if (mkdir(dir_path, 0755) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/a-good.yaml", dir_path);
	write_file(p, good_yaml);
	snprintf(p, sizeof(p), "%s/b-problems.yml", dir_path);
	write_file(p, problems_yaml);
	snprintf(p, sizeof(p), "%s/ignored.txt", dir_path);
	write_file(p, "not a rule file");
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),	       cmocka_unit_test(test_parse_validated),
		cmocka_unit_test(test_parse_problems), cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_load_dir),       cmocka_unit_test(test_state),
		cmocka_unit_test(test_paths),	       cmocka_unit_test(test_export),
	};
	return cmocka_run_group_tests(tests, setup, tmpdir_teardown);
}
