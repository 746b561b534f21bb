/*
 * test_alertcfg.c — AlertManagerConfig: the defaults (one console sink,
 * the documented policies), sinks with their common keys, errors naming
 * the sink, the key and FILE:LINE:COL, routing by severity, rule and tag
 * globs and kind, and the deduplication key.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemoneye/alertmgr.h"

static struct de_alertmgr_config *load(const char *yaml, struct de_error *e, int *rc)
{
	struct de_config_builder *b = de_config_builder_new();
	struct de_config *c = NULL;
	struct de_alertmgr_config *ac = NULL;

	assert_int_equal(de_config_builder_add_embedded_defaults(b, e), 0);
	if (yaml)
		assert_int_equal(de_config_builder_add_yaml(b, yaml, strlen(yaml), "t.yaml", e), 0);
	*rc = de_config_build(b, &c, e);
	if (*rc == 0)
		*rc = de_alertmgr_config_load(c, &ac, e);
	de_config_builder_free(b);
	de_config_free(c);
	return ac;
}

static void test_defaults(void **state)
{
	(void)state;
	struct de_error e = {0};
	int rc;
	struct de_alertmgr_config *ac = load(NULL, &e, &rc);

	assert_int_equal(rc, 0);
	assert_true(ac->dedup.enabled);
	assert_int_equal(ac->dedup.window_ms, 3600000);
	assert_int_equal(ac->dedup.n_key_fields, 2);
	assert_string_equal(ac->dedup.key_fields[0], "rule_id");
	assert_string_equal(ac->dedup.key_fields[1], "process_name");
	assert_int_equal(ac->max_queue_size, 10000);
	assert_int_equal(ac->delivery_timeout_ms, 30000);
	assert_int_equal(ac->retry.max_attempts, 5);
	assert_int_equal(ac->retry.initial_delay_ms, 1000);
	assert_int_equal(ac->retry.max_delay_ms, 60000);
	assert_int_equal(ac->breaker_threshold, 5);
	assert_int_equal(ac->breaker_reset_ms, 60000);
	assert_int_equal(ac->suppress.len, 0);
	/* no sinks: the console sink; not a terminal here, so JSON lines */
	assert_int_equal(ac->nsinks, 1);
	assert_string_equal(ac->sinks[0].name, "stdout");
	assert_ptr_equal(ac->sinks[0].ops, &de_sink_stdout_ops);
	assert_int_equal(ac->sinks[0].format, DE_FMT_JSON);
	de_alertmgr_config_free(ac);

	ac = load("alerting:\n  stdout: { enabled: false }\n", &e, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(ac->nsinks, 0);
	de_alertmgr_config_free(ac);
	ac = load("alerting:\n  stdout: { format: text }\n", &e, &rc);
	assert_int_equal(ac->sinks[0].format, DE_FMT_HUMAN);
	assert_false(ac->sinks[0].color); /* not a terminal */
	de_alertmgr_config_free(ac);
}

static void test_errors(void **state)
{
	(void)state;
	static const struct {
		const char *yaml, *want;
	} cases[] = {
		{"alerting:\n  sinks:\n    - { type: stdout }\n",
		 "t.yaml:3:7: sink '?' (alerting.sinks[0]): name: missing"},
		{"alerting:\n  sinks:\n    - { name: Bad Name, type: stdout }\n",
		 "name: must be 1-64 of a-z 0-9 - _"},
		{"alerting:\n  sinks:\n    - { name: a, type: stdout, min_severity: urgent }\n",
		 "t.yaml:3:46: sink 'a' (alerting.sinks[0]): min_severity: 'urgent' is not"},
		{"alerting:\n  sinks:\n    - { name: a, type: stdout, timeout_ms: 5 }\n",
		 "timeout_ms: must be an integer from 100 to 600000"},
		{"alerting:\n  sinks:\n    - { name: a, type: webhook, url: \"ftp://x/\" }\n",
		 "url: scheme 'ftp' is not supported (expected https://host/path)"},
		{"alerting:\n  sinks:\n    - { name: a, type: syslog, transport: tcp }\n",
		 "host: missing"},
		{"alerting:\n  sinks:\n    - { name: a, type: syslog, facility: local9 }\n",
		 "facility: 'local9' is not a syslog facility"},
		{"alerting:\n  sinks:\n    - { name: a, type: email, smtp_url: \"smtp://h\", from: "
		 "x, "
		 "to: [a@b.c] }\n",
		 "from: 'x' is not an email address"},
		{"alerting:\n  sinks:\n    - { name: a, type: stdout, include_rules: x }\n",
		 "include_rules: must be a list"},
		{"alerting:\n  sinks:\n    - 42\n", "'alerting.sinks' must be a list of mappings"},
		{"alerting:\n  deduplication: { key_fields: [rule_id, colour] }\n",
		 "unknown field 'colour'"},
		{"alerting:\n  retry: { initial_delay_ms: 5000, max_delay_ms: 10 }\n",
		 "less than initial_delay_ms"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct de_error e = {0};
		int rc;
		struct de_alertmgr_config *ac = load(cases[i].yaml, &e, &rc);
		if (!ac && strstr(e.message, cases[i].want) && e.category == DE_ERR_CONFIGURATION)
			continue;
		fail_msg("case %zu: rc %d, wanted '%s' in '%s'", i, rc, cases[i].want, e.message);
	}
}

static void test_routing(void **state)
{
	(void)state;
	struct de_error e = {0};
	int rc;
	struct de_alertmgr_config *ac = load(
		"alerting:\n  sinks:\n"
		"    - { name: all, type: stdout }\n"
		"    - { name: high, type: stdout, min_severity: high, send_resolved: true }\n"
		"    - { name: rules, type: stdout, include_rules: [\"exec-*\"], exclude_rules: "
		"[exec-from-tmp] }\n"
		"    - { name: tags, type: stdout, include_tags: [\"attack.t1059*\"], "
		"exclude_tags: "
		"[noisy] }\n",
		&e, &rc);
	struct de_alert a = {.rule_id = "exec-from-dev-shm", .severity = DE_SEV_MEDIUM};
	char *t1[] = {"attack.t1059.004"}, *t2[] = {"attack.t1059", "noisy"};
	struct de_rule r1 = {.tags = t1, .tags_len = 1}, r2 = {.tags = t2, .tags_len = 2};

	assert_int_equal(rc, 0);
	assert_true(de_alert_sink_routes(&ac->sinks[0], &a, NULL));
	assert_false(de_alert_sink_routes(&ac->sinks[1], &a, NULL));
	a.severity = DE_SEV_CRITICAL;
	assert_true(de_alert_sink_routes(&ac->sinks[1], &a, NULL));
	assert_true(de_alert_sink_routes(&ac->sinks[2], &a, NULL));
	a.rule_id = "exec-from-tmp";
	assert_false(de_alert_sink_routes(&ac->sinks[2], &a, NULL));
	a.rule_id = "other";
	assert_false(de_alert_sink_routes(&ac->sinks[2], &a, NULL));
	assert_true(de_alert_sink_routes(&ac->sinks[3], &a, &r1));
	assert_false(de_alert_sink_routes(&ac->sinks[3], &a, &r2)); /* excluded tag */
	assert_false(de_alert_sink_routes(&ac->sinks[3], &a, NULL));
	a.kind = "resolved";
	assert_false(de_alert_sink_routes(&ac->sinks[0], &a, NULL));
	assert_true(de_alert_sink_routes(&ac->sinks[1], &a, NULL));
	a.kind = "test";
	a.severity = DE_SEV_LOW;
	assert_true(de_alert_sink_routes(&ac->sinks[1], &a, NULL)); /* a test goes everywhere */
	de_alertmgr_config_free(ac);
}

static void test_dedup_key(void **state)
{
	(void)state;
	char *kf[] = {"rule_id", "process_name", "user_id"};
	struct de_dedup_config dc = {.enabled = true, .key_fields = kf, .n_key_fields = 3};
	struct de_buf b = DE_BUF_INIT(4096);
	struct de_alert a = {.rule_id = "miner", .dedupe_key = "miner|xmrig|/tmp/xmrig"};
	char *dk[] = {"name"};
	struct de_rule own = {.dedupe_key_fields = dk, .dedupe_key_fields_len = 1};

	a.context = json_pack("{s:[{s:s,s:s}]}", "processes", "name", "xmrig", "user_id", "1000");
	assert_int_equal(de_alertmgr_dedup_key(&dc, &a, NULL, &b), 0);
	assert_memory_equal(b.p,
			    "miner\x1fxmrig\x1f"
			    "1000",
			    b.len);
	/* the rule's own dedupe_key_fields win */
	assert_int_equal(de_alertmgr_dedup_key(&dc, &a, &own, &b), 0);
	assert_string_equal(b.p, "miner|xmrig|/tmp/xmrig");
	json_decref(a.context);
	de_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_routing),
		cmocka_unit_test(test_dedup_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
