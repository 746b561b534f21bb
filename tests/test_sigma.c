/*
 * test_sigma.c — the Sigma compiler: the rule's metadata (id, title,
 * severity from level, category, tags with the status, version from the
 * date, description with false positives, references and the credit,
 * author), the rule file loading back equal through the sandbox, statuses,
 * the SQL forms (LIKE with ESCAPE, quotes doubled, instr for cased, the
 * parent join only when needed, `not` as IS NOT TRUE), linux/network_connection
 * (connections only, cidr over IPv4 and IPv6, ports, Initiated) and User,
 * ParentUser, CurrentDirectory run on tables of the store's shape, and every refusal
 * naming FILE:LINE:COL and what daemoneye lacks.  What the SQL means on
 * real records is tests/sigma_agree.py's job.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemoneye/buf.h"
#include "daemoneye/regexp.h"
#include "daemoneye/rules.h"
#include "daemoneye/sigma.h"

static struct de_validator *val;

static int setup(void **state)
{
	(void)state;
	val = de_validator_new();
	return val ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	de_validator_free(val);
	return 0;
}

#define HEAD                                                                                       \
	"title: t\n"                                                                               \
	"id: 0B7E1F3A-1111-4a4a-9c9c-000000000001\n"                                               \
	"status: test\n"                                                                           \
	"logsource:\n"                                                                             \
	"    product: linux\n"                                                                     \
	"    category: process_creation\n"                                                         \
	"detection:\n"
/* the detection's first line is line 8 */

static int convert(const char *text, struct de_sigma_rule *r, struct de_error *e)
{
	memset(r, 0, sizeof(*r));
	return de_sigma_convert(text, strlen(text), "t.yml", NULL, val, r, e);
}

/* The SQL of HEAD + detection (asserting it converts). */
static char *sql_of(const char *detection)
{
	struct de_sigma_rule r;
	struct de_error e = {0};
	char *text = NULL, *sql;

	assert_true(asprintf(&text, HEAD "%s", detection) > 0);
	if (convert(text, &r, &e) < 0)
		fail_msg("refused: %s\n%s", e.message, text);
	sql = strdup(r.rule.sql_query);
	de_sigma_rule_clear(&r);
	free(text);
	return sql;
}

static void expect_in(const char *sql, const char *needle)
{
	if (!strstr(sql, needle))
		fail_msg("'%s' not in:\n%s", needle, sql);
}

static const char full_rule[] = "title: Suspicious Thing Via Tool\n"
				"id: 9069EA3C-b213-4c52-be13-86506a227ab1\n"
				"status: test\n"
				"description: |\n"
				"    Detects the thing.\n"
				"references:\n"
				"    - https://example.org/a\n"
				"    - https://example.org/b\n"
				"author: Ada Lovelace (Analytical), Charles Babbage\n"
				"date: 2021-10-26\n"
				"modified: 2022-12-25\n"
				"tags:\n"
				"    - attack.defense-evasion\n"
				"    - attack.t1059.004\n"
				"    - attack.t1059.0041\n"
				"    - cve.2021-44228\n"
				"logsource:\n"
				"    product: linux\n"
				"    category: process_creation\n"
				"detection:\n"
				"    selection:\n"
				"        Image|endswith: '/tool'\n"
				"        CommandLine|contains: ' --thing'\n"
				"    condition: selection\n"
				"falsepositives:\n"
				"    - Admins\n"
				"    - Backups\n"
				"level: informational\n";

static void test_metadata(void **state)
{
	struct de_sigma_rule r;
	struct de_error e = {0};
	(void)state;

	assert_int_equal(convert(full_rule, &r, &e), 0);
	assert_string_equal(r.rule.id, "sigma-9069ea3c-b213-4c52-be13-86506a227ab1");
	assert_string_equal(r.sigma_id, "9069EA3C-b213-4c52-be13-86506a227ab1");
	assert_string_equal(r.rule.name, "Suspicious Thing Via Tool");
	assert_int_equal(r.rule.severity, DE_SEV_LOW); /* informational */
	assert_string_equal(r.level, "informational");
	assert_string_equal(r.status, "test");
	assert_string_equal(r.rule.category, "defense_evasion");
	assert_int_equal(r.rule.version, 20221225);
	assert_true(r.rule.enabled);
	assert_int_equal(r.rule.source_type, DE_RULE_USER);
	assert_string_equal(r.rule.source_path, "t.yml");
	assert_string_equal(r.rule.author, "Ada Lovelace (Analytical), Charles Babbage");
	/* tags: kept, lower case; an invalid ATT&CK id dropped; the status added */
	bool t1 = false, bad = false, st = false, lvl = false, cve = false;
	for (size_t i = 0; i < r.rule.tags_len; i++) {
		t1 |= !strcmp(r.rule.tags[i], "attack.t1059.004");
		bad |= !strcmp(r.rule.tags[i], "attack.t1059.0041");
		st |= !strcmp(r.rule.tags[i], "sigma.status.test");
		lvl |= !strcmp(r.rule.tags[i], "sigma.level.informational");
		cve |= !strcmp(r.rule.tags[i], "cve.2021-44228");
	}
	assert_true(t1 && !bad && st && lvl && cve);
	expect_in(r.rule.description, "Detects the thing.\n\n");
	expect_in(r.rule.description, "False positives: Admins; Backups");
	expect_in(r.rule.description, "References: https://example.org/a https://example.org/b");
	expect_in(r.rule.description,
		  "Sigma rule 9069EA3C-b213-4c52-be13-86506a227ab1 by Ada Lovelace (Analytical), "
		  "Charles Babbage.");
	assert_int_equal(r.references_len, 2);
	/* the result carries the process: pid first, name, executable_path */
	assert_int_equal(
		strncmp(r.rule.sql_query, "SELECT c.pid, c.ppid, c.name, c.executable_path", 47),
		0);
	assert_null(strstr(r.rule.sql_query, "JOIN"));

	/* the rule file: credit in comments, and it loads back equal through the sandbox */
	char *text = NULL;
	size_t len = 0;
	assert_int_equal(de_sigma_rule_file(&r, &text, &len, &e), 0);
	expect_in(text, "# Author: Ada Lovelace (Analytical), Charles Babbage\n");
	expect_in(text, "# Reference: https://example.org/b\n");
	expect_in(text, "Detection Rule\n# License 1.1");
	struct de_rule_set set = {0};
	struct de_rule_problems pr = {0};
	assert_int_equal(de_rules_parse(text, len, "t.yml", DE_RULE_USER, 0, val, &set, &pr, &e),
			 0);
	assert_int_equal(pr.len, 0);
	assert_int_equal(set.len, 1);
	assert_true(de_rule_equal(&set.items[0], &r.rule));
	de_rule_set_clear(&set);
	free(text);
	de_sigma_rule_clear(&r);
}

static void test_status(void **state)
{
	enum de_sigma_status s;
	struct de_error e = {0};
	(void)state;

	assert_int_equal(de_sigma_status_parse("test", &s, &e), 0);
	assert_int_equal(s, DE_SIGMA_TEST);
	assert_true(de_sigma_status_parse("deprecated", &s, &e) < 0);
	assert_non_null(strstr(e.message, "stable, test or experimental"));
	assert_true(de_sigma_status_meets("stable", DE_SIGMA_TEST));
	assert_true(de_sigma_status_meets("test", DE_SIGMA_TEST));
	assert_false(de_sigma_status_meets("experimental", DE_SIGMA_TEST));
	assert_false(de_sigma_status_meets(NULL, DE_SIGMA_TEST));
	assert_true(de_sigma_status_meets(NULL, DE_SIGMA_EXPERIMENTAL));
}

/* A detection and what its SQL must contain (up to three pieces). */
struct form {
	const char *detection;
	const char *want[3];
};

static const struct form forms[] = {
	/* one regexp: bytes escaped where PCRE2 needs it, SQL quotes doubled */
	{"    sel:\n        Image|endswith: '/n_c%\\x'\n    condition: sel\n",
	 {"regexp('(?si)/n_c%\\\\x\\z', c.executable_path)"}},
	{"    sel:\n        CommandLine: \"it's'); DROP TABLE processes; --\"\n    condition: "
	 "sel\n",
	 {"regexp('(?si)\\Ait''s''\\); DROP TABLE processes; --\\z', c.command_line)"}},
	/* control and non-ASCII bytes as \xHH; an exact value with case as = */
	{"    sel:\n        CommandLine|contains: \"a\\tb\xc3\x89\"\n    condition: sel\n",
	 {"regexp('(?si)a\\x09b\\xc3\\x89', c.command_line)"}},
	{"    sel:\n        CommandLine|cased: \"a\\tb\"\n    condition: sel\n",
	 {"c.command_line = CAST(x'610962' AS TEXT)"}},
	{"    sel:\n        CommandLine|contains|cased: 'DoIt'\n    condition: sel\n",
	 {"regexp('(?s)DoIt', c.command_line)"}},
	/* lists: one regexp; `?`: whole characters; stars: atomic lazy gaps */
	{"    sel:\n        Image|endswith:\n            - '/a'\n            - '/b'\n"
	 "    condition: sel\n",
	 {"regexp('(?si)(?:/a\\z|/b\\z)', c.executable_path)"}},
	{"    sel:\n        Image: '/bin/?sh'\n    condition: sel\n",
	 {"regexp('(?si)\\A/bin/(?>[\\x00-\\x7f]|"}},
	{"    sel:\n        Image: '/opt/*/bin/*sh'\n    condition: sel\n",
	 {"regexp('(?si)\\A/opt/(?>.*?/bin/).*sh\\z', c.executable_path)"}},
	/* parent: joined when read, its tests kept after the lookup; not: IS NOT TRUE */
	{"    sel:\n        ParentImage|endswith: '/java'\n        CommandLine|contains: 'x'\n"
	 "        Image|endswith: '/sh'\n    filter:\n        ProcessId|gt: 100\n"
	 "    condition: sel and not filter\n",
	 {"LEFT JOIN processes p ON p.pid = c.ppid",
	  "(regexp('(?si)/sh\\z', c.executable_path) AND ((regexp('(?si)/java\\z', "
	  "p.executable_path) AND regexp('(?si)x', c.command_line))) IS TRUE)",
	  "((c.pid > 100)) IS NOT TRUE"}},
	/* exists and null */
	{"    sel:\n        Image: null\n        ParentImage|exists: true\n    condition: sel\n",
	 {"c.executable_path IS NULL", "p.executable_path IS NOT NULL",
	  "p.executable_path AS parent_executable_path"}},
	/* re with flags, checked by PCRE2 */
	{"    sel:\n        CommandLine|re|i|s: 'a.b'\n    condition: sel\n",
	 {"regexp('(?is)a.b', c.command_line)"}},
	/* base64offset: the three forms */
	{"    sel:\n        CommandLine|base64offset|contains: 'cmd'\n    condition: sel\n",
	 {"(?:Y21k|NtZ|jbW)"}},
	/* an OR of selections: what all need, tested first ... */
	{"    sel_a:\n        Image|endswith: '/a'\n        CommandLine|contains: 'x'\n"
	 "    sel_b:\n        Image|endswith: '/b'\n    condition: 1 of sel_*\n",
	 {"(regexp('(?si)(?:/a\\z|/b\\z)', c.executable_path) AND "}},
	/* ... or what each needs, when fewer fields than tests */
	{"    sel_a:\n        Image|endswith: '/a'\n    sel_b:\n        Image|endswith: '/b'\n"
	 "    sel_c:\n        CommandLine|contains: 'c'\n    condition: 1 of sel_*\n",
	 {"((regexp('(?si)(?:/a\\z|/b\\z)', c.executable_path) OR "
	  "regexp('(?si)c', c.command_line)) AND "}},
};

static void test_sql_forms(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		char *s = sql_of(forms[i].detection);
		for (size_t k = 0; k < 3 && forms[i].want[k]; k++)
			expect_in(s, forms[i].want[k]);
		free(s);
	}
}

/* A cidr value is a.b.c.d or a.b.c.d/n, or an IPv6 address with an optional
 * /n, nothing else (no fifth octet, no octet past 255, no prefix past 32 or
 * 128, nothing trailing). */
static void test_cidr_values(void **state)
{
	static const char *const bad[] = {
		"1.2.3.4.5",   "1.2.3.256", "1.2.3.4/33",  "1.2.3.4/",	 "1.2.3", "1..2.3",
		"1.2.3.4/8/8", "1.2.3.4x",  "1234.1.1.1",  "/8",	 "",	  "fe80::/200",
		"fe80::/",     "fe80::/1x", "fe80::/1234", "fe80:::1/64"};
	static const char *const good[] = {"10.0.0.0/8",	 "1.2.3.4", "0.0.0.0/0",
					   "255.255.255.255/32", "::1/128", "fe80::/10"};
	struct de_sigma_options o = {.planned_logsources = true};
	char rule[512];
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]) + sizeof(good) / sizeof(good[0]); i++) {
		bool is_bad = i < sizeof(bad) / sizeof(bad[0]);
		const char *v = is_bad ? bad[i] : good[i - sizeof(bad) / sizeof(bad[0])];
		struct de_sigma_rule r = {0};
		struct de_error e = {0};
		snprintf(rule, sizeof(rule),
			 "title: n\nid: 11111111-2222-3333-4444-555555555555\n"
			 "logsource:\n    product: linux\n    category: network_connection\n"
			 "detection:\n    sel:\n        DestinationIp|cidr: '%s'\n"
			 "    condition: sel\n",
			 v);
		int rc = de_sigma_convert(rule, strlen(rule), "n.yml", &o, NULL, &r, &e);
		if (is_bad) {
			if (rc == 0)
				fail_msg("cidr '%s' accepted", v);
			assert_non_null(strstr(e.message, "not an IPv"));
		} else {
			if (rc != 0)
				fail_msg("cidr '%s' refused: %s", v, e.message);
			de_sigma_rule_clear(&r);
		}
	}
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* Run sql over db; the first column of its rows, sorted and space-separated, into got. */
static void rows_of(sqlite3 *db, const char *sql, char *got, size_t size)
{
	sqlite3_stmt *st;
	int v[32];
	size_t n = 0;

	got[0] = '\0';
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sqlite3_errmsg(db), sql);
	while (sqlite3_step(st) == SQLITE_ROW && n < 32)
		v[n++] = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	qsort(v, n, sizeof(v[0]), cmp_int);
	for (size_t i = 0; i < n; i++)
		snprintf(got + strlen(got), size - strlen(got), "%d ", v[i]);
}

/* Tables of the store's shape (the columns the Sigma SQL reads), with rows. */
static sqlite3 *net_db(void)
{
	struct de_error e = {0};
	sqlite3 *db;

	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(de_regexp_register(db, &e), 0);
	assert_int_equal(
		sqlite3_exec(
			db,
			"CREATE TABLE processes(pid INTEGER PRIMARY KEY, ppid, name, "
			"executable_path, command_line, user_id, start_time, user_name, cwd);"
			"CREATE TABLE network_connections(id INTEGER PRIMARY KEY, pid, start_time, "
			"kind, family, local_address, local_port, remote_address, remote_port, "
			"closed_at);"
			"INSERT INTO processes VALUES"
			"(1, 0, 'x', '/x', 'x', '0', 5, 'root', '/'),"
			"(2, 1, 'sh', '/bin/sh', 'sh', '33', 5, 'www-data', '/var/www'),"
			"(3, 1, 'y', '/y', 'y', '1000', 5, NULL, NULL);"
			"INSERT INTO network_connections(pid, start_time, kind, remote_address, "
			"remote_port, local_address, local_port, closed_at) VALUES"
			"(1, 5, 'connect', '10.1.2.3', 4444, '10.0.0.2', 40000, NULL),"	   /* 1 */
			"(2, 5, 'connect', '10.1.2.3', 80, '10.0.0.2', 40001, NULL),"	   /* 2 */
			"(3, 5, 'connect', '110.1.2.3', 4444, '10.0.0.2', 40002, NULL),"   /* 3 */
			"(4, 5, 'connect', '192.168.1.200', 22, '10.0.0.2', 40003, NULL)," /* 4: no
											      process
											    */
			"(1, 6, 'connect', '10.9.9.9', 4444, '10.0.0.2', 40004, NULL),"	   /* 5:
											      another
											      instance
											    */
			"(1, 5, 'listen', '0.0.0.0', 0, '0.0.0.0', 4444, NULL),"	   /* 6 */
			"(1, 5, 'connect', '10.7.7.7', 5000, '10.0.0.2', 40005, 99)," /* 7: closed
										       */
			"(2, 5, 'accept', 'fe80::1', 50000, 'fe80::2', 22, NULL),"    /* 8 */
			"(2, 5, 'connect', 'fe7f::1', 4444, '::1', 40006, NULL),"     /* 9 */
			"(3, 5, 'connect', '::1', 4444, '::1', 40007, NULL),"	      /* 10 */
			"(3, 5, 'connect_failed', '10.1.1.1', 4444, '10.0.0.2', 40008, NULL)", /* 11
												*/
			NULL, NULL, NULL),
		SQLITE_OK);
	return db;
}

/* linux/network_connection over network_connections joined to the process
 * instance: connections only (not listeners, failed attempts or closed
 * ones), cidr over IPv4 and IPv6, ports, Initiated, User. */
static void test_network(void **state)
{
	static const char head[] = "title: n\n"
				   "id: 11111111-2222-3333-4444-555555555555\n"
				   "logsource:\n"
				   "    product: linux\n"
				   "    category: network_connection\n"
				   "detection:\n";
	static const struct {
		const char *detection, *want;
	} cases[] = {
		{"    sel:\n        DestinationPort: 4444\n    condition: sel\n", "1 2 3 3 "},
		{"    sel:\n        DestinationIp|cidr:\n            - '10.0.0.0/8'\n"
		 "            - 'fe80::/10'\n    condition: sel\n",
		 "1 2 2 "},
		{"    sel:\n        DestinationIp|cidr: '::1/128'\n    condition: sel\n", "3 "},
		{"    sel:\n        Initiated: 'false'\n    condition: sel\n", "2 "},
		{"    sel:\n        Initiated: 'true'\n        Protocol: tcp\n"
		 "        DestinationPort|gte: 4000\n    condition: sel\n",
		 "1 2 3 3 "},
		{"    sel:\n        User: 'www-*'\n        SourcePort: 22\n    condition: sel\n",
		 "2 "},
		{"    sel:\n        Image|endswith: '/x'\n    filter:\n"
		 "        DestinationIp|cidr: '10.0.0.0/8'\n    condition: sel and not filter\n",
		 ""},
		{"    sel:\n        User: null\n    condition: sel\n", "3 3 "},
	};
	struct de_sigma_rule r = {0};
	struct de_error e = {0};
	char text[1024], got[64];
	sqlite3 *db = net_db();
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "%s%s", head, cases[i].detection);
		if (de_sigma_convert(text, strlen(text), "n.yml", NULL, val, &r, &e) < 0)
			fail_msg("case %zu: %s", i, e.message);
		rows_of(db, r.rule.sql_query, got, sizeof(got));
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("case %zu: rows '%s', want '%s'\n%s", i, got, cases[i].want,
				 r.rule.sql_query);
		de_sigma_rule_clear(&r);
	}
	/* nonsense ranges, and IPv6 ranges without a fixed text form, are refused */
	static const struct {
		const char *range, *why;
	} bad[] = {
		{"'1.2.3.4/33'", "not an IPv4 range"},
		{"'2001:db8::/32'", "of IPv6 ranges, only whole addresses"},
		{"'::/8'", "of IPv6 ranges, only whole addresses"},
		{"'fe80::/129'", "not an IPv6 address or range"},
		{"'fe80:::1/10'", "not an IPv6 address or range"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text),
			 "%s    sel:\n        DestinationIp|cidr: %s\n"
			 "    condition: sel\n",
			 head, bad[i].range);
		assert_true(de_sigma_convert(text, strlen(text), "n.yml", NULL, val, &r, &e) ==
			    -ENOTSUP);
		if (!strstr(e.message, bad[i].why) || !strstr(e.message, "n.yml:8:"))
			fail_msg("range %s: '%s'", bad[i].range, e.message);
	}
	sqlite3_close(db);
}

/* User, ParentUser and CurrentDirectory of linux/process_creation. */
static void test_identity_fields(void **state)
{
	static const char rule[] = "title: u\n"
				   "id: 11111111-2222-3333-4444-555555555556\n"
				   "logsource:\n"
				   "    product: linux\n"
				   "    category: process_creation\n"
				   "detection:\n"
				   "    sel:\n"
				   "        User: 'www-data'\n"
				   "        CurrentDirectory|startswith: '/var/'\n"
				   "    parent:\n"
				   "        ParentUser: root\n"
				   "    condition: sel and parent\n";
	struct de_sigma_rule r = {0};
	struct de_error e = {0};
	char got[64];
	sqlite3 *db = net_db();
	(void)state;

	assert_int_equal(de_sigma_convert(rule, strlen(rule), "u.yml", NULL, val, &r, &e), 0);
	expect_in(r.rule.sql_query, "c.user_name");
	expect_in(r.rule.sql_query, "c.cwd");
	expect_in(r.rule.sql_query, "p.user_name");
	rows_of(db, r.rule.sql_query, got, sizeof(got));
	assert_string_equal(got, "2 ");
	de_sigma_rule_clear(&r);
	sqlite3_close(db);
}

struct refusal {
	const char *detection; /* after HEAD (line 8 on); NULL: `whole` is the text */
	const char *whole;
	int code;
	const char *where; /* "t.yml:L:C: " or "t.yml:L:" */
	const char *why;
};

static const struct refusal refusals[] = {
	{NULL, "title: x\nid: [\n", EINVAL, "t.yml:3:1: ", "invalid YAML"},
	{NULL, "- a\n- b\n", EINVAL, "t.yml: ", "not a Sigma rule"},
	{NULL, "title: x\n---\ntitle: y\n", EINVAL, "t.yml:2:1: ", "several YAML documents"},
	{"    sel:\n        CommandLine|contians: 'x'\n    condition: sel\n", NULL, EINVAL,
	 "t.yml:9:31: ", "unknown modifier 'contians'"},
	{"    sel:\n        CommandLine: 'x'\n    condition: sel and not filter\n", NULL, EINVAL,
	 "t.yml:10:16: ", "at character 13: 'filter' is not a search identifier"},
	{"    sel:\n        CommandLine|re: 'a(b'\n    condition: sel\n", NULL, EINVAL,
	 "t.yml:9:25: ", "PCRE2 rejects the pattern at offset 3"},
	{"    sel:\n        DestinationIp: '1.2.3.4'\n    condition: sel\n", NULL, ENOTSUP,
	 "t.yml:9:", "'DestinationIp' has no daemoneye equivalent in linux/process_creation"},
	{"    sel:\n        LogonId: 0\n    condition: sel\n", NULL, ENOTSUP,
	 "t.yml:9:", "'LogonId' is not available: it is a Windows logon session id"},
	{"    sel:\n        Hashes|contains: 'SHA256='\n    condition: sel\n", NULL, ENOTSUP,
	 "t.yml:9:", "Sysmon's hash list"},
	{"    sel:\n        FooBar: 'x'\n    condition: sel\n", NULL, ENOTSUP,
	 "t.yml:9:", "field 'FooBar' has no daemoneye equivalent in linux/process_creation"},
	{"    keywords:\n        - 'evil'\n        - 'bad'\n    condition: keywords\n", NULL,
	 ENOTSUP, "t.yml:9:", "keyword"},
	{"    sel:\n        '|all':\n            - a\n            - b\n    condition: sel\n", NULL,
	 ENOTSUP, "t.yml:10:", "keyword search"},
	{"    sel:\n        CommandLine: x\n    condition: sel | count() by Image > 3\n", NULL,
	 ENOTSUP, "t.yml:10:", "aggregations"},
	{"    sel:\n        CommandLine: x\n    timeframe: 5m\n    condition: sel\n", NULL, ENOTSUP,
	 "t.yml:10:", "timeframe"},
	{"    sel:\n        CommandLine|contains|base64: 'x'\n    condition: sel\n", NULL, EINVAL,
	 "t.yml:9:", "cannot be encoded"},
	{"    sel:\n        CommandLine|windash: '-a -b -c -d -e'\n    condition: sel\n", NULL,
	 E2BIG, "t.yml:9:", "too many values"},
	{"    sel:\n        CommandLine|utf16le: 'x'\n    condition: sel\n", NULL, ENOTSUP,
	 "t.yml:9:", "NUL bytes"},
	{"    sel:\n        CommandLine: x\n    condition: sel and (sel\n", NULL, EINVAL,
	 "t.yml:10:", "at character 9: this parenthesis is never closed"},
	{"    sel:\n        CommandLine: x\n    condition: sel sel\n", NULL, EINVAL,
	 "t.yml:10:", "at character 5: expected 'and', 'or'"},
	{"    sel:\n        CommandLine: x\n    condition: 1 of nomatch*\n", NULL, EINVAL,
	 "t.yml:10:", "matches no search identifier"},
	{"    sel:\n        CommandLine: x\n    condition: 2 of them\n", NULL, ENOTSUP,
	 "t.yml:10:", "only '1 of' and 'all of'"},
	{"    sel:\n        CommandLine: x\n    condition: sel*\n", NULL, EINVAL,
	 "t.yml:10:", "needs '1 of' or 'all of'"},
	{"    sel:\n        CommandLine: x\n    condition: sel and\n", NULL, EINVAL,
	 "t.yml:10:", "ends where a search identifier was expected"},
	{"    sel: {}\n    condition: sel\n", NULL, EINVAL, "t.yml:8:", "empty selection"},
	{"    sel:\n        Image|exists: maybe\n    condition: sel\n", NULL, EINVAL,
	 "t.yml:9:", "exists takes true or false"},
	{"    sel:\n        CommandLine|gt: 3\n    condition: sel\n", NULL, ENOTSUP,
	 "t.yml:9:", "compare numbers; CommandLine is text"},
	{"    sel:\n        Image|cidr: '10.0.0.0/8'\n    condition: sel\n", NULL, ENOTSUP,
	 "t.yml:9:", "cidr applies to address fields"},
	{"    sel:\n        ProcessId: abc\n    condition: sel\n", NULL, ENOTSUP,
	 "t.yml:9:", "holds whole numbers"},
	{"    sel:\n        Image|contains: null\n    condition: sel\n", NULL, EINVAL,
	 "t.yml:9:", "null takes no modifiers"},
	{"    sel:\n        Image|neq: x\n    condition: sel\n", NULL, ENOTSUP,
	 "t.yml:9:", "modifier 'neq' is not supported"},
	{"    sel:\n        Image|contains|endswith: x\n    condition: sel\n", NULL, EINVAL,
	 "t.yml:9:", "exclude each other"},
	{"    sel:\n        Image: []\n    condition: sel\n", NULL, EINVAL,
	 "t.yml:9:", "empty list"},
	{"    sel:\n        Image:\n            nested: map\n    condition: sel\n", NULL, EINVAL,
	 "t.yml:10:", "must be a string, null or a list"},
	{"    sel:\n        Image: x\n", NULL, EINVAL, "t.yml:8:", "no condition"},
	{"    condition: sel\n", NULL, EINVAL, "t.yml:8:", "no search identifier"},
	{NULL,
	 "title: t\nid: 0b7e1f3a-1111-4a4a-9c9c-000000000001\nstatus: deprecated\nlogsource:\n"
	 "    product: linux\n    category: process_creation\ndetection:\n    sel:\n"
	 "        Image: x\n    condition: sel\n",
	 ENOTSUP, "t.yml:3:9: ", "status deprecated"},
	{NULL,
	 "title: t\nlogsource:\n    product: linux\n    category: process_creation\n"
	 "detection:\n    sel:\n        Image: x\n    condition: sel\n",
	 EINVAL, "t.yml: ", "needs 'id'"},
	{NULL,
	 "title: t\nid: ../../etc/x\nlogsource:\n    product: linux\n"
	 "    category: process_creation\ndetection:\n    sel:\n        Image: x\n"
	 "    condition: sel\n",
	 EINVAL, "t.yml:2:5: ", "cannot name a daemoneye rule"},
	{NULL,
	 "title: t\nid: 0b7e1f3a-1111-4a4a-9c9c-000000000001\nlogsource:\n"
	 "    product: windows\n    category: process_creation\ndetection:\n    sel:\n"
	 "        Image: x\n    condition: sel\n",
	 ENOTSUP, "t.yml:4:5: ", "product 'windows'"},
	{NULL,
	 "title: t\nid: 0b7e1f3a-1111-4a4a-9c9c-000000000001\nlogsource:\n"
	 "    product: linux\n    service: auditd\ndetection:\n    sel:\n"
	 "        Image: x\n    condition: sel\n",
	 ENOTSUP, "t.yml:4:5: ", "service 'auditd'"},
	{NULL,
	 "title: t\nid: 0b7e1f3a-1111-4a4a-9c9c-000000000001\nlogsource:\n"
	 "    product: linux\n    category: network_connection\ndetection:\n    sel:\n"
	 "        DestinationHostname|endswith: '.ngrok.io'\n    condition: sel\n",
	 ENOTSUP,
	 "t.yml:8:", "'DestinationHostname' is not available: daemoneye records addresses"},
	{NULL,
	 "title: t\nid: 0b7e1f3a-1111-4a4a-9c9c-000000000001\nlogsource:\n"
	 "    product: linux\n    category: network_connection\ndetection:\n    sel:\n"
	 "        CurrentDirectory: /tmp\n    condition: sel\n",
	 ENOTSUP,
	 "t.yml:8:", "'CurrentDirectory' has no daemoneye equivalent in linux/network_connection"},
	{NULL,
	 "title: t\nid: 0b7e1f3a-1111-4a4a-9c9c-000000000001\ncorrelation:\n"
	 "    type: event_count\n",
	 ENOTSUP, "t.yml:4:5: ", "correlation rules"},
};

static void test_refusals(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		const struct refusal *f = &refusals[i];
		struct de_sigma_rule r;
		struct de_error e = {0};
		char *text = NULL;
		int rc;

		if (f->detection)
			assert_true(asprintf(&text, HEAD "%s", f->detection) > 0);
		else
			text = strdup(f->whole);
		rc = convert(text, &r, &e);
		if (rc != -f->code || e.category != DE_ERR_VALIDATION ||
		    strncmp(e.message, f->where, strlen(f->where)) != 0 ||
		    !strstr(e.message, f->why))
			fail_msg("case %zu: rc %d (want %d): '%s' (want '%s' ... '%s')\n%s", i, rc,
				 -f->code, e.message, f->where, f->why, text);
		free(text);
	}
}

static void test_limits(void **state)
{
	struct de_sigma_rule r;
	struct de_error e = {0};
	char *text;
	(void)state;

	/* a file larger than a rule may be */
	size_t n = DE_SIGMA_MAX_FILE + 10;
	text = malloc(n + 1);
	memset(text, '#', n);
	text[n] = '\0';
	assert_int_equal(de_sigma_convert(text, n, "big.yml", NULL, val, &r, &e), -EFBIG);
	free(text);
	/* a value longer than 64 KiB */
	char *v = malloc(70000);
	memset(v, 'a', 69999);
	v[69999] = '\0';
	assert_true(asprintf(&text,
			     HEAD "    sel:\n        CommandLine|contains: '%s'\n"
				  "    condition: sel\n",
			     v) > 0);
	assert_int_equal(convert(text, &r, &e), -E2BIG);
	assert_non_null(strstr(e.message, "t.yml:9:"));
	free(text);
	free(v);
	/* values making a pattern past regexp()'s limit, or SQL past the sandbox's */
	struct de_buf b = DE_BUF_INIT(1 << 22);
	de_buf_puts(&b, HEAD "    sel:\n        CommandLine|contains:\n");
	for (int i = 0; i < 400; i++)
		de_buf_printf(&b, "            - '%0200d'\n", i);
	de_buf_puts(&b, "    condition: sel\n");
	assert_int_equal(convert(b.p, &r, &e), -E2BIG);
	if (!strstr(e.message, "t.yml:10:13: 'CommandLine|contains' makes an SQL query longer"))
		fail_msg("%s", e.message);
	de_buf_free(&b);
	/* deep nesting in the condition */
	de_buf_puts(&b, HEAD "    sel:\n        CommandLine: x\n    condition: ");
	for (int i = 0; i < 40; i++)
		de_buf_puts(&b, "(");
	de_buf_puts(&b, "sel");
	for (int i = 0; i < 40; i++)
		de_buf_puts(&b, ")");
	de_buf_puts(&b, "\n");
	assert_int_equal(convert(b.p, &r, &e), -E2BIG);
	assert_non_null(strstr(e.message, "nested too deeply"));
	de_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metadata),	cmocka_unit_test(test_status),
		cmocka_unit_test(test_sql_forms),	cmocka_unit_test(test_network),
		cmocka_unit_test(test_identity_fields), cmocka_unit_test(test_cidr_values),
		cmocka_unit_test(test_refusals),	cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
