/*
 * test_rules.c — rule files: the builtin library loads whole and valid;
 * the three file shapes; every kind of bad rule is a problem naming
 * file:line:column while the file's other rules load; duplicate ids name
 * both places; directories; enable/disable overrides; YAML export that
 * loads back equal.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "daemoneye/rules.h"

#define DE_TEST_NAME "rules"
#include "testutil.h"
static struct de_validator *val;

static int setup(void **state)
{
	(void)state;
	val = de_validator_new();
	return tmpdir_make() == 0 && val ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	de_validator_free(val);
	return tmpdir_remove();
}

static void write_file(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static bool has_problem(const struct de_rule_problems *p, const char *a, const char *b)
{
	for (size_t i = 0; i < p->len; i++)
		if (strstr(p->items[i], a) && (!b || strstr(p->items[i], b)))
			return true;
	return false;
}

static void dump(const struct de_rule_problems *p)
{
	for (size_t i = 0; i < p->len; i++)
		fprintf(stderr, "problem: %s\n", p->items[i]);
}

static void test_builtin_library(void **state)
{
	(void)state;
	struct de_rule_set set = {0};
	struct de_rule_problems pr = {0};
	struct de_error e = {0};

	assert_int_equal(de_rules_load_builtin(val, &set, &pr, &e), 0);
	dump(&pr);
	assert_int_equal(pr.len, 0);
	assert_true(set.len >= 20);
	for (size_t i = 0; i < set.len; i++) {
		const struct de_rule *r = &set.items[i];
		assert_int_equal(r->source_type, DE_RULE_BUILTIN);
		assert_null(r->source_path);
		assert_true(r->enabled);
		assert_non_null(r->description);
		assert_non_null(r->category);
		assert_true(r->tags_len >= 1);
		assert_int_equal(strncmp(r->tags[0], "attack.t", 8), 0);
		assert_non_null(strstr(set.origins[i], "builtin:rules/builtin.yaml:"));
	}
	assert_non_null(de_rule_set_find(&set, "deleted-executable"));
	assert_non_null(de_rule_set_find(&set, "webserver-spawns-shell"));
	de_rule_set_clear(&set);
	de_rule_problems_clear(&pr);
}

static void test_shapes(void **state)
{
	(void)state;
	struct de_rule_set set = {0};
	struct de_rule_problems pr = {0};
	struct de_error e = {0};
	const char *one = "id: one\nname: One\nseverity: low\nsql: SELECT pid FROM processes\n";
	const char *list = "- id: two\n  name: Two\n  severity: medium\n  sql: SELECT 1 AS pid\n"
			   "- id: three\n  name: Three\n  severity: high\n  sql: SELECT 2 AS pid\n"
			   "  enabled: false\n  version: 4\n  tags: [attack.t1059.004, custom]\n"
			   "  author: me\n  description: d\n  category: execution\n"
			   "  dedupe_key_fields: [pid]\n";
	const char *wrapped = "rules:\n  - id: four\n    name: Four\n    severity: critical\n"
			      "    sql: SELECT 3 AS pid\n";

	assert_int_equal(
		de_rules_parse(one, strlen(one), "one.yaml", DE_RULE_FILE, 5, val, &set, &pr, &e),
		0);
	assert_int_equal(de_rules_parse(list, strlen(list), "list.yaml", DE_RULE_FILE, 6, val, &set,
					&pr, &e),
			 0);
	assert_int_equal(de_rules_parse(wrapped, strlen(wrapped), "w.yaml", DE_RULE_USER, 7, val,
					&set, &pr, &e),
			 0);
	dump(&pr);
	assert_int_equal(pr.len, 0);
	assert_int_equal(set.len, 4);
	struct de_rule *r = de_rule_set_find(&set, "three");
	assert_non_null(r);
	assert_false(r->enabled);
	assert_int_equal(r->version, 4);
	assert_int_equal(r->severity, DE_SEV_HIGH);
	assert_int_equal(r->tags_len, 2);
	assert_string_equal(r->author, "me");
	assert_string_equal(r->source_path, "list.yaml");
	assert_int_equal(r->created_at, 6);
	assert_int_equal(r->updated_at, 6);
	assert_int_equal(r->dedupe_key_fields_len, 1);
	assert_string_equal(set.origins[2], "list.yaml:5:7");
	assert_int_equal(de_rule_set_find(&set, "four")->source_type, DE_RULE_USER);
	assert_int_equal(de_rule_set_find(&set, "one")->version, 1);
	assert_true(de_rule_set_find(&set, "one")->enabled);
	de_rule_set_clear(&set);
	de_rule_problems_clear(&pr);
}

static void test_bad_rules(void **state)
{
	(void)state;
	struct de_rule_set set = {0};
	struct de_rule_problems pr = {0};
	struct de_error e = {0};
	const char *text =
		"rules:\n"
		"  - id: good\n    name: Good\n    severity: low\n"
		"    sql: SELECT pid FROM processes\n"				/* 5 */
		"  - id: nosql\n    name: No SQL\n    severity: low\n"		/* 6-8 */
		"  - id: badsev\n    name: B\n    severity: urgent\n"		/* 9-11 */
		"    sql: SELECT 1\n"						/* 12 */
		"  - id: writes\n    name: W\n    severity: low\n"		/* 13-15 */
		"    sql: DELETE FROM processes\n"				/* 16 */
		"  - id: badtag\n    name: T\n    severity: low\n"		/* 17-19 */
		"    sql: SELECT 1\n    tags: [attack.t10]\n"			/* 20-21 */
		"  - id: extra\n    name: E\n    severity: low\n"		/* 22-24 */
		"    sql: SELECT 1\n    colour: red\n"				/* 25-26 */
		"  - id: Bad Id\n    name: E\n    severity: low\n"		/* 27-29 */
		"    sql: SELECT 1\n"						/* 30 */
		"  - id: dedupe\n    name: D\n    severity: low\n"		/* 31-33 */
		"    sql: SELECT pid FROM processes\n"				/* 34 */
		"    dedupe_key_fields: [name]\n"				/* 35 */
		"  - id: good\n    name: Again\n    severity: low\n"		/* 36-38 */
		"    sql: SELECT 1\n"						/* 39 */
		"  - just a string\n"						/* 40 */
		"  - id: func\n    name: F\n    severity: low\n"		/* 41-43 */
		"    sql: SELECT randomblob(9)\n"				/* 44 */
		"  - id: ver\n    name: V\n    severity: low\n    version: 0\n" /* 45-48 */
		"    sql: SELECT 1\n";

	assert_int_equal(
		de_rules_parse(text, strlen(text), "bad.yaml", DE_RULE_FILE, 1, val, &set, &pr, &e),
		0);
	dump(&pr);
	assert_int_equal(set.len, 1);
	assert_string_equal(set.items[0].id, "good");
	assert_true(has_problem(&pr, "bad.yaml:6:5: rule lacks the required field 'sql'", NULL));
	assert_true(has_problem(&pr, "bad.yaml:11:15:", "severity 'urgent'"));
	assert_true(has_problem(&pr, "bad.yaml:16:10:", "DELETE on processes is not allowed"));
	assert_true(has_problem(&pr, "bad.yaml:21:12:", "attack.t10"));
	assert_true(has_problem(&pr, "bad.yaml:26:13:", "unknown rule field 'colour'"));
	assert_true(has_problem(&pr, "bad.yaml:27:9:", "rule id 'Bad Id'"));
	assert_true(has_problem(&pr, "bad.yaml:35:24:", "dedupe key field 'name'"));
	assert_true(has_problem(&pr, "bad.yaml:36:9:",
				"duplicate rule id 'good' (already defined "
				"at bad.yaml:2:9)"));
	assert_true(has_problem(&pr, "bad.yaml:40:5:", "a rule must be a mapping"));
	assert_true(has_problem(&pr, "bad.yaml:44:10:", "function randomblob()"));
	assert_true(has_problem(&pr, "bad.yaml:48:14:", "version must be a positive integer"));
	assert_int_equal(pr.len, 11);
	de_rule_problems_clear(&pr);

	/* files that are not rule files at all fail as a whole */
	static const char *const whole[] = {"", "42\n", "rules: 7\n", "a: [\n", "- &x a\n- *x\n"};
	for (size_t i = 0; i < sizeof(whole) / sizeof(whole[0]); i++) {
		e = (struct de_error){0};
		assert_true(de_rules_parse(whole[i], strlen(whole[i]), "w.yaml", DE_RULE_FILE, 1,
					   val, &set, &pr, &e) < 0);
		assert_int_equal(e.category, DE_ERR_VALIDATION);
		assert_non_null(strstr(e.message, "w.yaml"));
	}
	de_rule_set_clear(&set);
	de_rule_problems_clear(&pr);
}

static void test_dirs_and_duplicates(void **state)
{
	(void)state;
	struct de_rule_set set = {0};
	struct de_rule_problems pr = {0};
	struct de_error e = {0};
	char dir[256], path[300];

	snprintf(dir, sizeof(dir), "%s/rules.d", tmpdir);
	assert_int_equal(mkdir(dir, 0755), 0);
	write_file("rules.d/a.yaml", "id: alpha\nname: A\nseverity: low\nsql: SELECT 1 AS pid\n");
	write_file("rules.d/b.yml", "id: alpha\nname: A2\nseverity: low\nsql: SELECT 1 AS pid\n");
	write_file("rules.d/c.yaml", "id: [broken\n");
	write_file("rules.d/notes.txt", "ignored");
	write_file("rules.d/.hidden.yaml", "ignored: true");
	assert_int_equal(de_rules_load_dir(dir, DE_RULE_FILE, val, &set, &pr, &e), 0);
	dump(&pr);
	assert_int_equal(set.len, 1);
	snprintf(path, sizeof(path), "%s/a.yaml:1:5", dir);
	assert_string_equal(set.origins[0], path);
	/* the duplicate names both files */
	assert_true(has_problem(&pr, "b.yml:1:5: duplicate rule id 'alpha'", path));
	assert_true(has_problem(&pr, "c.yaml:", "invalid YAML"));
	assert_int_equal(pr.len, 2);
	/* a missing directory is nothing to load */
	assert_int_equal(
		de_rules_load_dir("/nonexistent/rules.d", DE_RULE_FILE, val, &set, &pr, &e), 0);
	assert_true(de_rules_load_file("/nonexistent/x.yaml", DE_RULE_FILE, val, &set, &pr, &e) <
		    0);
	assert_non_null(strstr(e.message, "/nonexistent/x.yaml"));
	de_rule_set_clear(&set);
	de_rule_problems_clear(&pr);
}

static void test_state_and_export(void **state)
{
	(void)state;
	struct de_rule_set set = {0}, back = {0};
	struct de_rule_problems pr = {0};
	struct de_error e = {0};
	char spath[256], ypath[256];

	assert_int_equal(de_rules_load_builtin(val, &set, &pr, &e), 0);
	snprintf(spath, sizeof(spath), "%s/rules-state.json", tmpdir);
	/* no file: no overrides */
	assert_int_equal(de_rules_state_apply(spath, &set, &e), 0);
	assert_true(de_rule_set_find(&set, "exec-from-tmp")->enabled);
	assert_int_equal(de_rules_state_set(spath, "exec-from-tmp", false, &e), 0);
	assert_int_equal(de_rules_state_set(spath, "long-command-line", false, &e), 0);
	assert_int_equal(de_rules_state_set(spath, "long-command-line", true, &e), 0);
	assert_int_equal(de_rules_state_apply(spath, &set, &e), 0);
	assert_false(de_rule_set_find(&set, "exec-from-tmp")->enabled);
	assert_true(de_rule_set_find(&set, "long-command-line")->enabled);
	write_file("bad-state.json", "[1,2]");
	snprintf(spath, sizeof(spath), "%s/bad-state.json", tmpdir);
	assert_true(de_rules_state_apply(spath, &set, &e) < 0);
	assert_non_null(strstr(e.message, "not a rule state file"));

	/* export everything, load it back: equal but for source and timestamps */
	const struct de_rule **all = calloc(set.len, sizeof(*all));
	assert_non_null(all);
	for (size_t i = 0; i < set.len; i++)
		all[i] = &set.items[i];
	snprintf(ypath, sizeof(ypath), "%s/export.yaml", tmpdir);
	FILE *f = fopen(ypath, "w");
	assert_non_null(f);
	assert_int_equal(de_rules_write_yaml(f, all, set.len, &e), 0);
	fclose(f);
	free(all);
	assert_int_equal(de_rules_load_file(ypath, DE_RULE_USER, val, &back, &pr, &e), 0);
	dump(&pr);
	assert_int_equal(pr.len, 0);
	assert_int_equal(back.len, set.len);
	for (size_t i = 0; i < set.len; i++) {
		struct de_rule *a = &set.items[i], *b = &back.items[i];
		assert_string_equal(a->id, b->id);
		assert_string_equal(a->name, b->name);
		assert_string_equal(a->description, b->description);
		assert_string_equal(a->sql_query, b->sql_query);
		assert_int_equal(a->severity, b->severity);
		assert_int_equal(a->enabled, b->enabled);
		assert_int_equal(a->tags_len, b->tags_len);
		for (size_t t = 0; t < a->tags_len; t++)
			assert_string_equal(a->tags[t], b->tags[t]);
		assert_string_equal(a->category, b->category);
		assert_string_equal(a->author, b->author);
	}
	de_rule_set_clear(&set);
	de_rule_set_clear(&back);
	de_rule_problems_clear(&pr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtin_library),	 cmocka_unit_test(test_shapes),
		cmocka_unit_test(test_bad_rules),	 cmocka_unit_test(test_dirs_and_duplicates),
		cmocka_unit_test(test_state_and_export),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
