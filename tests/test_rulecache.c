/*
 * test_rulecache.c — the rules the full cycle may leave out
 * (src/agent/rulecache.c): which SQL is cacheable (only the counted tables,
 * no function that changes by itself, no parameter) and on which version
 * (identities alone, or values too), and when a rule may be left out
 * (after a successful run at the same version of its kind; never after a
 * failure, a change, or being disabled); the builtin rules classified.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemoneye/rules.h"
#include "daemoneye/validator.h"
#include "rulecache.h"

static void test_cacheable(void **state)
{
	static const char *const identity[] = {
		"SELECT pid, name FROM processes WHERE name = 'nc'",
		"SELECT p.pid FROM processes p JOIN processes q ON q.pid = p.ppid "
		"WHERE q.start_time < p.start_time",
		"SELECT pid FROM process_instances WHERE exit_time IS NOT NULL",
		"SELECT pid, user_id, instance_id FROM processes WHERE executable_path LIKE "
		"'/tmp/%'",
	};
	static const char *const data[] = {
		"SELECT pid FROM processes WHERE cpu_usage > 90 AND memory_usage > 1000",
		"SELECT pid FROM processes WHERE json_extract(platform_data, '$.x') > 1",
		"SELECT * FROM processes WHERE name = 'nc'",
		"SELECT id, pid FROM processes",
		"SELECT pid FROM processes WHERE cwd = '/tmp'",
		"SELECT pid FROM process_samples",
	};
	static const char *const no[] = {
		"SELECT pid FROM processes, scans WHERE scans.id = 1",
		"SELECT pid FROM network_connections",
		"SELECT pid FROM processes WHERE start_time > strftime('%s', 'now') * 1000 - 60000",
		"SELECT pid FROM processes WHERE julianday('now') > 0",
		"SELECT pid FROM processes WHERE start_time > (unixepoch() - 60) * 1000",
		"SELECT pid FROM processes ORDER BY RANDOM() LIMIT 1",
		"SELECT pid FROM processes WHERE start_time > CURRENT_TIMESTAMP",
		"SELECT pid FROM processes WHERE DateTime (start_time) > 0",
		"SELECT pid FROM processes WHERE pid = ?",
		"SELECT pid FROM processes WHERE pid = :pid",
		"SELECT name FROM sqlite_master",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(identity) / sizeof(identity[0]); i++)
		if (rulecache_classify(identity[i]) != RULECACHE_IDENTITY)
			fail_msg("not identity-only: %s", identity[i]);
	for (size_t i = 0; i < sizeof(data) / sizeof(data[0]); i++)
		if (rulecache_classify(data[i]) != RULECACHE_DATA)
			fail_msg("not values-dependent: %s", data[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (rulecache_classify(no[i]) != RULECACHE_ALWAYS)
			fail_msg("cacheable: %s", no[i]);
}

static void test_fresh(void **state)
{
	const char *sqls[] = {"SELECT pid FROM processes",
			      "SELECT pid FROM processes WHERE "
			      "cpu_usage > 1",
			      "SELECT pid FROM scans"};
	struct de_store_versions v0 = {0, 0}, vals = {1, 0}, ident = {2, 1};
	struct rulecache c;

	(void)state;
	assert_int_equal(rulecache_init(&c, sqls, 3), 0);
	assert_false(rulecache_fresh(&c, 0, v0)); /* never ran */
	rulecache_ran(&c, 0, v0, true);
	rulecache_ran(&c, 1, v0, true);
	assert_true(rulecache_fresh(&c, 0, v0));
	assert_true(rulecache_fresh(&c, 1, v0));
	/* values changed: the identity rule is still fresh, the cpu one is not */
	assert_true(rulecache_fresh(&c, 0, vals));
	assert_false(rulecache_fresh(&c, 1, vals));
	assert_false(rulecache_fresh(&c, 0, ident)); /* an instance came or went */
	rulecache_ran(&c, 0, ident, false);	     /* it failed: runs again */
	assert_false(rulecache_fresh(&c, 0, ident));
	rulecache_ran(&c, 0, ident, true);
	assert_true(rulecache_fresh(&c, 0, ident));
	rulecache_forget(&c, 0); /* disabled, then enabled again */
	assert_false(rulecache_fresh(&c, 0, ident));
	rulecache_ran(&c, 2, ident, true); /* reads scans: never left out */
	assert_false(rulecache_fresh(&c, 2, ident));
	assert_false(rulecache_fresh(&c, 7, ident)); /* out of range */
	rulecache_free(&c);
}

/* The builtin rules load and each is classified; say how many are cacheable. */
static void test_builtin(void **state)
{
	struct de_validator *v = de_validator_new();
	struct de_rule_set rules = {0};
	struct de_rule_problems problems = {0};
	struct de_error err = {0};
	size_t n = 0;

	(void)state;
	assert_non_null(v);
	assert_int_equal(de_rules_load_builtin(v, &rules, &problems, &err), 0);
	assert_true(rules.len > 0);
	size_t id = 0;
	for (size_t i = 0; i < rules.len; i++) {
		enum rulecache_kind k = rulecache_classify(rules.items[i].sql_query);
		n += k != RULECACHE_ALWAYS;
		id += k == RULECACHE_IDENTITY;
	}
	printf("# %zu of %zu builtin rules are cacheable, %zu of them on identities alone\n", n,
	       rules.len, id);
	de_rule_set_clear(&rules);
	de_rule_problems_clear(&problems);
	de_validator_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cacheable),
		cmocka_unit_test(test_fresh),
		cmocka_unit_test(test_builtin),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
