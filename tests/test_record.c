/*
 * test_record.c — ProcessRecord: every seed field, its type and
 * optionality, JSON that round-trips exactly, hostile bytes, the errors for
 * malformed records, and the Linux facts (their JSON object and text, copy
 * and equality).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "testrand.h"

#include "daemoneye/alert.h"
#include "daemoneye/buf.h"
#include "daemoneye/collect.h"
#include "daemoneye/clock.h"
#include "daemoneye/record.h"
#include "daemoneye/rule.h"
#include "daemoneye/text.h"
#include "daemoneye/uuid.h"

static char *xstrdup(const char *s)
{
	char *d = strdup(s);
	assert_non_null(d);
	return d;
}

/* ---- ProcessRecord ------------------------------------------------------ */

static void full_record(struct de_process_record *r)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(de_uuid_parse("0b8f3a52-3c1e-4a8e-9f3c-2d1b7c9e4a10", &r->id), 0);
	r->scan_id = 12345;
	r->collection_time = 1764060360123;
	r->pid = 4294967295u; /* u32 max */
	r->has_ppid = true;
	r->ppid = 1;
	r->name = xstrdup("chrome");
	r->executable_path = xstrdup("/opt/google/chrome/chrome");
	r->command_line = calloc(3, sizeof(char *));
	r->command_line[0] = xstrdup("/opt/google/chrome/chrome");
	r->command_line[1] = xstrdup("--type=renderer");
	r->command_line[2] = xstrdup("");
	r->command_line_len = 3;
	r->has_start_time = true;
	r->start_time = 1764060300000;
	r->has_cpu_usage = true;
	r->cpu_usage = 12.345678901234567;
	r->has_memory_usage = true;
	r->memory_usage = 9007199254740993ull; /* beyond double precision */
	r->executable_hash =
		xstrdup("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	r->hash_algorithm = xstrdup("sha256");
	r->user_id = xstrdup("1000");
	r->accessible = true;
	r->file_exists = true;
	r->platform_data =
		json_pack("{s:s,s:i,s:b}", "state", "S", "threads", 4, "kernel_thread", 0);
}

static void test_record_every_field(void **state)
{
	(void)state;
	struct de_process_record r, back;
	struct de_error e = {0};
	full_record(&r);
	json_t *j = de_process_record_to_json(&r);
	assert_non_null(j);

	assert_string_equal(json_string_value(json_object_get(j, "id")),
			    "0b8f3a52-3c1e-4a8e-9f3c-2d1b7c9e4a10");
	assert_int_equal(json_integer_value(json_object_get(j, "scan_id")), 12345);
	assert_int_equal(json_integer_value(json_object_get(j, "collection_time")), 1764060360123);
	assert_int_equal(json_integer_value(json_object_get(j, "pid")), 4294967295);
	assert_int_equal(json_integer_value(json_object_get(j, "ppid")), 1);
	assert_string_equal(json_string_value(json_object_get(j, "name")), "chrome");
	assert_string_equal(json_string_value(json_object_get(j, "executable_path")),
			    "/opt/google/chrome/chrome");
	assert_int_equal(json_array_size(json_object_get(j, "command_line")), 3);
	assert_string_equal(
		json_string_value(json_array_get(json_object_get(j, "command_line"), 1)),
		"--type=renderer");
	assert_int_equal(json_integer_value(json_object_get(j, "start_time")), 1764060300000);
	assert_true(json_real_value(json_object_get(j, "cpu_usage")) == 12.345678901234567);
	assert_int_equal(json_integer_value(json_object_get(j, "memory_usage")), 9007199254740993);
	assert_int_equal(strlen(json_string_value(json_object_get(j, "executable_hash"))), 64);
	assert_string_equal(json_string_value(json_object_get(j, "hash_algorithm")), "sha256");
	assert_string_equal(json_string_value(json_object_get(j, "user_id")), "1000");
	assert_true(json_is_true(json_object_get(j, "accessible")));
	assert_true(json_is_true(json_object_get(j, "file_exists")));
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(j, "platform_data"), "state")),
		"S");
	assert_int_equal(json_object_size(j), 17); /* exactly the seed's fields */

	/* through text and back: equal struct, identical text */
	char *text = json_dumps(j, JSON_COMPACT);
	json_t *j2 = json_loads(text, 0, NULL);
	assert_int_equal(de_process_record_from_json(j2, &back, &e), 0);
	assert_true(de_process_record_equal(&r, &back));
	json_t *j3 = de_process_record_to_json(&back);
	char *text2 = json_dumps(j3, JSON_COMPACT);
	assert_string_equal(text, text2);

	/* equality notices a changed field */
	back.ppid = 2;
	assert_false(de_process_record_equal(&r, &back));
	back.ppid = 1;
	free(back.command_line[2]);
	back.command_line[2] = xstrdup("x");
	assert_false(de_process_record_equal(&r, &back));

	free(text);
	free(text2);
	json_decref(j);
	json_decref(j2);
	json_decref(j3);
	de_process_record_clear(&back);
	de_process_record_clear(&r);
}

static void test_record_optionals_absent(void **state)
{
	(void)state;
	struct de_process_record r = {0}, back;
	struct de_error e = {0};
	r.pid = 1;
	r.name = xstrdup("init");
	r.command_line = calloc(1, sizeof(char *));
	json_t *j = de_process_record_to_json(&r);
	static const char *const nulls[] = {"ppid",	      "executable_path", "start_time",
					    "cpu_usage",      "memory_usage",	 "executable_hash",
					    "hash_algorithm", "user_id",	 "platform_data"};
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		assert_true(json_is_null(json_object_get(j, nulls[i])));
	assert_true(json_is_false(json_object_get(j, "accessible")));
	assert_int_equal(de_process_record_from_json(j, &back, &e), 0);
	assert_true(de_process_record_equal(&r, &back));
	assert_false(back.has_ppid);
	assert_false(back.has_cpu_usage);
	assert_null(back.executable_path);
	assert_null(back.platform_data);
	de_process_record_clear(&back);

	/* a missing optional member reads as None, too */
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		json_object_del(j, nulls[i]);
	assert_int_equal(de_process_record_from_json(j, &back, &e), 0);
	assert_true(de_process_record_equal(&r, &back));
	de_process_record_clear(&back);
	json_decref(j);
	de_process_record_clear(&r);
}

static void test_record_hostile_bytes(void **state)
{
	(void)state;
	struct de_process_record r = {0}, back;
	struct de_error e = {0};
	r.pid = 7;
	r.name = xstrdup("ev\nil\x1b[31m\xff");
	r.executable_path = xstrdup("/tmp/my prog (deleted)");
	r.command_line = calloc(4, sizeof(char *));
	r.command_line[0] = xstrdup("a\"b\\c");
	r.command_line[1] = xstrdup("\x01\x02\t\r\n");
	r.command_line[2] = xstrdup("\xc3\x28 invalid \xed\xa0\x80 surrogate \xf8");
	r.command_line[3] = xstrdup("caf\xc3\xa9 ok");
	r.command_line_len = 4;
	json_t *j = de_process_record_to_json(&r);
	assert_non_null(j);
	/* valid JSON text, parseable by a strict parser */
	char *text = json_dumps(j, JSON_COMPACT);
	assert_non_null(text);
	json_t *j2 = json_loads(text, 0, NULL);
	assert_non_null(j2);
	assert_non_null(json_object_get(j2, "name_raw"));
	assert_non_null(json_object_get(j2, "command_line_raw"));
	assert_null(json_object_get(j2, "executable_path_raw")); /* valid UTF-8 */
	assert_int_equal(de_process_record_from_json(j2, &back, &e), 0);
	assert_true(de_process_record_equal(&r, &back));
	assert_string_equal(back.name, "ev\nil\x1b[31m\xff");
	assert_string_equal(back.command_line[2], "\xc3\x28 invalid \xed\xa0\x80 surrogate \xf8");
	free(text);
	json_decref(j);
	json_decref(j2);
	de_process_record_clear(&back);
	de_process_record_clear(&r);
}

static void test_record_huge_command_line(void **state)
{
	(void)state;
	struct de_process_record r = {0}, back;
	size_t n = 128 * 1024;
	r.pid = 9;
	r.name = xstrdup("big");
	r.command_line = calloc(1, sizeof(char *));
	r.command_line[0] = malloc(n + 1);
	memset(r.command_line[0], 'A', n);
	r.command_line[0][n] = '\0';
	r.command_line_len = 1;
	json_t *j = de_process_record_to_json(&r);
	assert_int_equal(de_process_record_from_json(j, &back, NULL), 0);
	assert_int_equal(strlen(back.command_line[0]), n);
	assert_true(de_process_record_equal(&r, &back));
	json_decref(j);
	de_process_record_clear(&back);
	de_process_record_clear(&r);
}

/* Parse `text` as a ProcessRecord and expect an error mentioning `needle`. */
static void expect_bad_record(const char *text, const char *needle)
{
	struct de_process_record r;
	struct de_error e = {0};
	json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	assert_non_null(j);
	assert_true(de_process_record_from_json(j, &r, &e) < 0);
	assert_int_equal(e.category, DE_ERR_VALIDATION);
	if (!strstr(e.message, needle))
		fail_msg("error '%s' does not mention '%s'", e.message, needle);
	json_decref(j);
}

#define BASE                                                                                       \
	"\"id\":\"0b8f3a52-3c1e-4a8e-9f3c-2d1b7c9e4a10\",\"scan_id\":1,\"collection_time\":1,"     \
	"\"name\":\"x\",\"command_line\":[],\"accessible\":true,\"file_exists\":true"

static void test_record_malformed(void **state)
{
	(void)state;
	expect_bad_record("[1]", "expected a JSON object");
	expect_bad_record("{" BASE "}", "'pid' is missing");
	expect_bad_record("{" BASE ",\"pid\":-1}", "'pid' is out of range");
	expect_bad_record("{" BASE ",\"pid\":4294967296}", "'pid' is out of range");
	expect_bad_record("{" BASE ",\"pid\":\"12\"}", "'pid' must be an integer");
	expect_bad_record("{" BASE ",\"pid\":1,\"ppid\":1.5}", "'ppid' must be an integer");
	expect_bad_record("{" BASE ",\"pid\":1,\"cpu_usage\":\"hot\"}",
			  "'cpu_usage' must be a number");
	expect_bad_record("{" BASE ",\"pid\":1,\"memory_usage\":-5}",
			  "'memory_usage' is out of range");
	expect_bad_record("{" BASE ",\"pid\":1,\"bogus\":1}", "unknown member 'bogus'");
	expect_bad_record("{" BASE ",\"pid\":1,\"name_raw\":\"!!!\"}", "'name_raw'");
	expect_bad_record("{" BASE ",\"pid\":1,\"command_line_raw\":[\"YQ==\"]}",
			  "'command_line_raw' must be an array as long as its twin");
	expect_bad_record(
		"{\"id\":\"nope\",\"scan_id\":1,\"collection_time\":1,\"pid\":1,"
		"\"name\":\"x\",\"command_line\":[],\"accessible\":true,\"file_exists\":true}",
		"'id' must be a UUID string");
	expect_bad_record("{\"id\":\"0b8f3a52-3c1e-4a8e-9f3c-2d1b7c9e4a10\",\"scan_id\":1,"
			  "\"collection_time\":1,\"pid\":1,\"name\":null,\"command_line\":[],"
			  "\"accessible\":true,\"file_exists\":true}",
			  "'name' must not be null");
	expect_bad_record(
		"{\"id\":\"0b8f3a52-3c1e-4a8e-9f3c-2d1b7c9e4a10\",\"scan_id\":1,"
		"\"collection_time\":1,\"pid\":1,\"name\":\"a\\u0000b\",\"command_line\":[],"
		"\"accessible\":true,\"file_exists\":true}",
		"NUL");
	expect_bad_record("{\"id\":\"0b8f3a52-3c1e-4a8e-9f3c-2d1b7c9e4a10\",\"scan_id\":1,"
			  "\"collection_time\":1,\"pid\":1,\"name\":\"x\",\"command_line\":[1],"
			  "\"accessible\":true,\"file_exists\":true}",
			  "'command_line'");
	expect_bad_record("{\"id\":\"0b8f3a52-3c1e-4a8e-9f3c-2d1b7c9e4a10\",\"scan_id\":1,"
			  "\"collection_time\":1,\"pid\":1,\"name\":\"x\",\"command_line\":[],"
			  "\"accessible\":\"yes\",\"file_exists\":true}",
			  "'accessible' must be true or false");
}

/* ---- Linux facts ------------------------------------------------------------ */

static void rnd_facts(struct de_process_record *r)
{
	struct de_linux_facts *f = &r->facts;
	static const char states[] = "RSDZTtXIKWP";

	memset(r, 0, sizeof(*r));
	f->present = true;
	f->has_ids = rnd(4) != 0;
	f->euid = rnd(70000);
	f->egid = rnd(2) ? 4294967295u : rnd(70000);
	f->has_real_ids = rnd(3) == 0;
	f->uid = rnd(70000);
	f->gid = rnd(70000);
	f->cgroup = rnd(5) ? rnd_text() : NULL;
	f->has_exe = rnd(4) != 0;
	f->exe_deleted = rnd(2);
	f->exe_replaced = rnd(2);
	f->has_image = rnd(3) != 0;
	f->exe_inode = rnd_i64();
	f->exe_device = rnd_i64();
	f->exe_size = rnd_i64();
	f->hash_error = rnd(3) == 0 ? rnd_text() : NULL;
	f->state = states[rnd(sizeof(states) - 1)];
	f->threads = rnd_i64();
	f->pgrp = rnd_i64();
	f->session = rnd_i64();
	f->tty_nr = rnd_i64();
	f->nice = (int64_t)rnd(40) - 20;
	f->kernel_thread = rnd(2);
	f->utime_ticks = rnd_i64();
	f->stime_ticks = rnd_i64();
	f->start_ticks = rnd_i64();
	f->cmdline_truncated = rnd(4) == 0;
	f->cmdline_masked = rnd(3) == 0 ? rnd(5) : 0;
}

/* What build_record() in collect.c wrote into platform_data before the facts
   were flat, written here independently (jansson, in insertion order); the
   one difference: hash_error that is not UTF-8 is escaped (jansson refused
   it, so it was left out). */
static json_t *old_form(const struct de_linux_facts *f)
{
	json_t *pd = json_object();
	char st[2] = {f->state, 0};

#define SET(k, v) assert_int_equal(json_object_set_new(pd, k, v), 0)
	if (f->has_ids) {
		SET("euid", json_integer(f->euid));
		SET("egid", json_integer(f->egid));
	}
	if (f->has_real_ids) {
		SET("uid", json_integer(f->uid));
		SET("gid", json_integer(f->gid));
	}
	if (f->cgroup) {
		size_t n = strlen(f->cgroup);
		if (de_utf8_valid(f->cgroup, n)) {
			SET("cgroup", json_stringn(f->cgroup, n));
		} else {
			unsigned char b64[1024];
			char *esc = de_escape_text(f->cgroup, n);
			SET("cgroup", json_string(esc));
			free(esc);
			int len = EVP_EncodeBlock(b64, (const unsigned char *)f->cgroup, (int)n);
			SET("cgroup_raw", json_stringn((const char *)b64, (size_t)len));
		}
	}
	if (f->has_exe) {
		SET("exe_deleted", json_boolean(f->exe_deleted));
		SET("exe_replaced", json_boolean(f->exe_replaced));
		if (f->has_image) {
			SET("exe_inode", json_integer(f->exe_inode));
			SET("exe_device", json_integer(f->exe_device));
			SET("exe_size", json_integer(f->exe_size));
		}
		if (f->hash_error) {
			char *esc = de_escape_text(f->hash_error, strlen(f->hash_error));
			if (de_utf8_valid(f->hash_error, strlen(f->hash_error)))
				SET("hash_error", json_string(f->hash_error));
			else
				SET("hash_error", json_string(esc));
			free(esc);
		}
	}
	SET("state", json_string(st));
	SET("threads", json_integer(f->threads));
	SET("pgrp", json_integer(f->pgrp));
	SET("session", json_integer(f->session));
	SET("tty_nr", json_integer(f->tty_nr));
	SET("nice", json_integer(f->nice));
	SET("kernel_thread", json_boolean(f->kernel_thread));
	SET("utime_ticks", json_integer(f->utime_ticks));
	SET("stime_ticks", json_integer(f->stime_ticks));
	SET("start_ticks", json_integer(f->start_ticks));
	if (f->cmdline_truncated)
		SET("cmdline_truncated", json_true());
	if (f->cmdline_masked)
		SET("cmdline_masked", json_integer(f->cmdline_masked));
#undef SET
	return pd;
}

/* The facts' JSON (to_json, platform_json) is the old platform_data, member
   for member and in the same order; the text serializer writes exactly what
   json_dumps writes for it. */
static void test_facts_json(void **state)
{
	(void)state;
	char buf[4096];

	for (int i = 0; i < 5000; i++) {
		struct de_process_record r;
		rnd_facts(&r);
		r.name = xstrdup("x");
		json_t *old = old_form(&r.facts);
		json_t *pd = de_process_record_platform_json(&r);
		json_t *full = de_process_record_to_json(&r);
		char *want = json_dumps(old, JSON_COMPACT);
		char *got = json_dumps(pd, JSON_COMPACT);
		char *fromfull = json_dumps(json_object_get(full, "platform_data"), JSON_COMPACT);
		assert_non_null(want);
		assert_string_equal(got, want);
		assert_string_equal(fromfull, want);
		long n = de_linux_facts_json(&r, buf, sizeof(buf));
		assert_int_equal(n, (long)strlen(want));
		assert_string_equal(buf, want);
		/* snprintf-like: the length whatever the room, text only when it fits */
		assert_int_equal(de_linux_facts_json(&r, NULL, 0), n);
		memset(buf, 'Z', sizeof(buf));
		assert_int_equal(de_linux_facts_json(&r, buf, (size_t)n), n);
		assert_int_equal(buf[n], 'Z');
		assert_int_equal(de_linux_facts_json(&r, buf, (size_t)n + 1), n);
		assert_string_equal(buf, want);
		free(want);
		free(got);
		free(fromfull);
		json_decref(old);
		json_decref(pd);
		json_decref(full);
		de_process_record_clear(&r);
	}
	struct de_process_record none = {0};
	assert_int_equal(de_linux_facts_json(&none, buf, sizeof(buf)), -EINVAL);
}

/* Equality: facts with facts directly; facts against the same JSON (what a
   record read back from JSON carries); extras after the facts. */
static void test_facts_equal(void **state)
{
	(void)state;
	struct de_error e = {0};

	for (int i = 0; i < 500; i++) {
		struct de_process_record a, b, back;
		rnd_facts(&a);
		a.name = xstrdup("x");
		a.command_line = calloc(1, sizeof(char *));
		json_t *j = de_process_record_to_json(&a);
		assert_int_equal(de_process_record_from_json(j, &back, &e), 0);
		assert_false(back.facts.present);
		assert_true(de_process_record_equal(&a, &back));
		assert_true(de_process_record_equal(&back, &a));
		/* a copy of the facts */
		b = a;
		b.name = xstrdup("x");
		b.command_line = calloc(1, sizeof(char *));
		b.facts.cgroup = a.facts.cgroup ? xstrdup(a.facts.cgroup) : NULL;
		b.facts.hash_error = a.facts.hash_error ? xstrdup(a.facts.hash_error) : NULL;
		b.platform_data = NULL;
		assert_true(de_process_record_equal(&a, &b));
		b.facts.utime_ticks ^= 1;
		assert_false(de_process_record_equal(&a, &b));
		assert_false(de_process_record_equal(&b, &back));
		b.facts.utime_ticks ^= 1;
		b.facts.has_ids = !b.facts.has_ids;
		assert_false(de_process_record_equal(&a, &b));
		assert_false(de_process_record_equal(&b, &back));
		b.facts.has_ids = !b.facts.has_ids;
		/* extras: written after the facts, compared too */
		b.platform_data = json_pack("{s:s}", "zone", "a");
		assert_false(de_process_record_equal(&a, &b));
		json_t *bj = de_process_record_platform_json(&b);
		const char *last = NULL;
		const char *k;
		json_t *v;
		json_object_foreach (bj, k, v)
			last = k;
		assert_string_equal(last, "zone");
		assert_int_equal(json_object_size(bj),
				 json_object_size(json_object_get(j, "platform_data")) + 1);
		json_decref(bj);
		json_decref(j);
		de_process_record_clear(&back);
		de_process_record_clear(&a);
		de_process_record_clear(&b);
	}
	/* a record without facts or platform_data: null */
	struct de_process_record n = {0};
	json_t *pj = de_process_record_platform_json(&n);
	assert_true(json_is_null(pj));
	json_decref(pj);
	de_linux_facts_clear(NULL);
}

/* ---- byte helpers --------------------------------------------------------- */

/* A copy equals its source and shares no memory with it but the JSON. */
/* de_process_record_json_buf writes what json_dumps of the jansson object writes. */
static void same_text(const struct de_process_record *r)
{
	struct de_buf b = DE_BUF_INIT(64u << 20);
	json_t *j = de_process_record_to_json(r);
	char *want = j ? json_dumps(j, JSON_COMPACT) : NULL;

	assert_non_null(want);
	assert_int_equal(de_process_record_json_buf(r, &b), 0);
	assert_non_null(b.p);
	assert_string_equal(b.p, want);
	free(want);
	json_decref(j);
	de_buf_free(&b);
}

static int scan_same(void *ctx, struct de_process_record *r)
{
	(void)ctx;
	same_text(r);
	return 0;
}

static void test_record_json_text(void **state)
{
	(void)state;
	struct de_process_record r;
	struct de_collector *c;

	/* every field, JSON extras (the jansson path) */
	full_record(&r);
	same_text(&r);
	/* the same with collector facts instead (the direct path), every optional absent */
	json_decref(r.platform_data);
	r.platform_data = NULL;
	r.facts.present = true;
	r.facts.state = 'S';
	r.facts.comm = xstrdup("chrome");
	r.facts.cwd = xstrdup("/home/u \"x\"");
	same_text(&r);
	r.has_cpu_usage = r.has_ppid = r.has_start_time = false;
	r.memory_usage = 4096;
	free(r.executable_path);
	r.executable_path = NULL;
	same_text(&r);
	/* control bytes, quotes, and a name that is not UTF-8 (jansson path) */
	free(r.command_line[1]);
	r.command_line[1] = xstrdup("\x01\x7f\"\\\t\n\xc3\xa9");
	same_text(&r);
	free(r.name);
	r.name = xstrdup("bad\xff");
	same_text(&r);
	de_process_record_clear(&r);
	/* every process of this host, as procmond --once writes them */
	assert_int_equal(de_collector_open(NULL, &c, NULL), 0);
	assert_int_equal(de_collector_scan_each(c, 1, scan_same, NULL, NULL, NULL), 0);
	de_collector_close(c);
}

static void test_record_copy(void **state)
{
	(void)state;
	struct de_process_record a, b, facts;

	rnd_facts(&facts); /* (it zeroes the whole record) */
	full_record(&a);
	a.facts = facts.facts; /* moved: a owns its strings now */
	assert_int_equal(de_process_record_copy(&a, &b), 0);
	assert_true(de_process_record_equal(&a, &b));
	assert_ptr_not_equal(a.name, b.name);
	assert_ptr_not_equal(a.command_line, b.command_line);
	assert_ptr_not_equal(a.command_line[1], b.command_line[1]);
	if (a.facts.cgroup)
		assert_ptr_not_equal(a.facts.cgroup, b.facts.cgroup);
	/* the copy outlives its source */
	de_process_record_clear(&a);
	assert_string_equal(b.command_line[1], "--type=renderer");
	assert_string_equal(b.hash_algorithm, "sha256");
	de_process_record_clear(&b);

	/* absent optionals stay absent */
	memset(&a, 0, sizeof(a));
	a.name = xstrdup("x");
	assert_int_equal(de_process_record_copy(&a, &b), 0);
	assert_null(b.executable_path);
	assert_null(b.platform_data);
	assert_int_equal(b.command_line_len, 0);
	assert_true(de_process_record_equal(&a, &b));
	de_process_record_clear(&a);
	de_process_record_clear(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_copy),
		cmocka_unit_test(test_record_json_text),
		cmocka_unit_test(test_record_every_field),
		cmocka_unit_test(test_record_optionals_absent),
		cmocka_unit_test(test_record_hostile_bytes),
		cmocka_unit_test(test_record_huge_command_line),
		cmocka_unit_test(test_record_malformed),
		cmocka_unit_test(test_facts_json),
		cmocka_unit_test(test_facts_equal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
