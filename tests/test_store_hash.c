/*
 * test_store_hash.c — a record's hashes (src/lib/store_hash.c): records
 * with collector facts give the same hashes (and platform_data text) as
 * their JSON form, so a store sees no change across the two; a volatile
 * fact changes the row only, an identity fact makes history.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define DE_TEST_NAME "store_hash"
#include "testutil.h"
#include "store_fixtures.h"

static void mk_facts(struct de_process_record *r, size_t n, int64_t t, int64_t scan)
{
	static const char *const cgroups[] = {"/system.slice/sshd.service",
					      "/user.slice/\xff\x01\"\\", "/a\x7f\b\f\x1f\xc3\xa9",
					      NULL};

	mk_many(r, n, t, scan);
	for (size_t i = 0; i < n; i++) {
		struct de_linux_facts *f = &r[i].facts;
		json_decref(r[i].platform_data);
		r[i].platform_data = NULL;
		f->present = true;
		f->has_ids = true;
		f->euid = (uint32_t)i % 3 ? 1000 : 0;
		f->egid = f->euid;
		f->has_real_ids = i % 5 == 0;
		f->uid = 1000;
		f->gid = 1000;
		f->cgroup = cgroups[i % 4] ? strdup(cgroups[i % 4]) : NULL;
		f->has_exe = i % 7 != 6;
		f->exe_deleted = r[i].pid == 3;
		f->exe_replaced = i % 11 == 1;
		f->has_image = f->has_exe;
		f->exe_inode = 1000 + (int64_t)i;
		f->exe_device = 2049;
		f->exe_size = 1 << 20;
		f->hash_error =
			i % 4 == 2 ? strdup(i % 8 == 2 ? "cannot open: \xff" : "too big") : NULL;
		f->state = i % 2 ? 'S' : 'R';
		f->threads = 1 + (int64_t)i % 4;
		f->pgrp = r[i].pid;
		f->session = 1;
		f->tty_nr = 0;
		f->nice = (int64_t)(i % 3) - 1;
		f->kernel_thread = false;
		f->utime_ticks = (int64_t)i;
		f->stime_ticks = 2;
		f->start_ticks = 1000 + (int64_t)i;
		f->cmdline_truncated = i == 4;
		f->cmdline_masked = i == 5 ? 2 : 0;
	}
}

/* A text column of one row (a new string), NULL when NULL. */
static char *text_of(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	char *t = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		t = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return t;
}

/*
 * Records with facts: the same platform_data text as their JSON form gives
 * (and as json_dumps writes), the same hashes (a store written from JSON
 * records sees no change when the facts arrive), exe_deleted in its column;
 * a volatile fact changes the row only, an identity fact makes history.
 */
static void test_facts_rows(void **state)
{
	(void)state;
	enum { N = 24 };
	char *pa = db_path("facts.sqlite"), *pb = db_path("facts_json.sqlite");
	struct de_store *sa = open_at(pa, 3600), *sb = open_at(pb, 3600);
	sqlite3 *da = de_store_db(sa), *dbj = de_store_db(sb);
	struct de_process_record f[N], j[N];
	struct de_store_diff d;
	char sql[160];

	mk_facts(f, N, 1000, 1);
	mk_facts(j, N, 1000, 1);
	for (size_t i = 0; i < N; i++) {
		json_t *pd = de_process_record_platform_json(&j[i]);
		de_linux_facts_clear(&j[i].facts);
		j[i].platform_data = pd;
	}
	store_ok(sa, f, N);
	store_ok(sb, j, N);
	for (size_t i = 0; i < N; i++) {
		snprintf(sql, sizeof(sql), "SELECT platform_data FROM processes WHERE pid = %u",
			 f[i].pid);
		char *ta = text_of(da, sql), *tb = text_of(dbj, sql);
		char *want = json_dumps(j[i].platform_data, JSON_COMPACT);
		assert_non_null(ta);
		assert_string_equal(ta, tb);
		assert_string_equal(ta, want);
		free(ta);
		free(tb);
		free(want);
		snprintf(sql, sizeof(sql),
			 "SELECT identity_hash || '/' || value_hash || '/' || exe_deleted || "
			 "exe_replaced FROM processes WHERE pid = %u",
			 f[i].pid);
		ta = text_of(da, sql);
		tb = text_of(dbj, sql);
		assert_string_equal(ta, tb);
		free(ta);
		free(tb);
	}
	assert_int_equal(count(da, "SELECT count(*) FROM processes WHERE exe_deleted = 1"), 1);
	assert_int_equal(count(da, "SELECT pid FROM processes WHERE exe_deleted = 1"), 3);
	assert_int_equal(count(da, "SELECT count(*) FROM processes WHERE exe_replaced = 1"), 3);
	assert_int_equal(count(da, "SELECT count(*) FROM processes WHERE "
				   "json_extract(platform_data, '$.euid') = 0"),
			 8);

	/* the JSON store now gets the records with facts: nothing changed */
	retime(f, N, 2000, 2);
	store_ok(sb, f, N);
	d = de_store_last_diff(sb);
	assert_int_equal(d.added + d.changed + d.exited + d.history, 0);

	/* a volatile fact (cpu time, state, threads, nice): the row only */
	f[4].facts.utime_ticks += 100;
	f[4].facts.state = 'D';
	f[4].facts.threads = 9;
	f[4].facts.nice = 10;
	retime(f, N, 3000, 3);
	store_ok(sa, f, N);
	d = de_store_last_diff(sa);
	assert_int_equal(d.changed, 1);
	assert_int_equal(d.history, 0);
	assert_int_equal(count(da, "SELECT count(*) FROM processes WHERE pid = 5 AND "
				   "json_extract(platform_data, '$.utime_ticks') = 104 AND "
				   "json_extract(platform_data, '$.state') = 'D' AND "
				   "json_extract(platform_data, '$.threads') = 9"),
			 1);
	assert_int_equal(count(da, "SELECT count(*) FROM process_changes"), 0);

	/* an identity fact (the effective uid, a deleted image): history */
	f[6].facts.euid = 4242;
	f[7].facts.exe_deleted = true;
	retime(f, N, 4000, 4);
	store_ok(sa, f, N);
	d = de_store_last_diff(sa);
	assert_int_equal(d.changed, 2);
	assert_int_equal(d.history, 2);
	assert_int_equal(count(da,
			       "SELECT count(*) FROM process_changes WHERE "
			       "json_extract(platform_data, '$.euid') = 0 AND changed_at = 4000"),
			 1);
	assert_int_equal(count(da, "SELECT count(*) FROM processes WHERE pid = 7 AND "
				   "json_extract(platform_data, '$.euid') = 4242"),
			 1);
	assert_int_equal(count(da, "SELECT count(*) FROM processes WHERE exe_deleted = 1"), 2);

	/* extra members after the facts */
	f[0].platform_data = json_pack("{s:s}", "zone", "global");
	retime(f, N, 5000, 5);
	store_ok(sa, f, N);
	d = de_store_last_diff(sa);
	assert_int_equal(d.history, 1);
	json_t *pd = de_process_record_platform_json(&f[0]);
	char *want = json_dumps(pd, JSON_COMPACT);
	char *got = text_of(da, "SELECT platform_data FROM processes WHERE pid = 1");
	assert_string_equal(got, want);
	assert_non_null(strstr(got, ",\"zone\":\"global\"}"));
	free(want);
	free(got);
	json_decref(pd);

	/* reopened, the index from the file agrees: no change */
	de_store_close(sa);
	sa = open_at(pa, 3600);
	retime(f, N, 6000, 6);
	store_ok(sa, f, N);
	d = de_store_last_diff(sa);
	assert_int_equal(d.added + d.changed + d.exited + d.history, 0);
	de_store_close(sa);
	de_store_close(sb);
	clear_many(f, N);
	clear_many(j, N);
	free(pa);
	free(pb);
}

/*
 * Every fact of the list, changed alone: a volatile one rewrites the row
 * only, an identity one also makes history (a process_changes row) — the
 * store's split comes from the list and nothing else.
 */
static void test_each_fact_volatility(void **state)
{
	(void)state;
	char *path = db_path("each_fact.sqlite");
	struct de_store *s = open_at(path, 3600);
	struct de_process_record r[1];
	struct de_store_diff d;
	int64_t scan = 1;

	mk_facts(r, 1, 1000, scan);
	r[0].facts.has_real_ids = true;
	r[0].facts.has_exe = r[0].facts.has_image = true;
	free(r[0].facts.cgroup);
	r[0].facts.cgroup = strdup("/a");
	free(r[0].facts.hash_error);
	r[0].facts.hash_error = strdup("x");
	r[0].facts.cmdline_masked = 1;
	r[0].facts.cmdline_truncated = true;
	/* every group known, every text fact set */
	r[0].facts.has_ns = true;
	for (int i = 0; i < DE_FACT_COUNT_MAX; i++) {
		char **t = (char **)(void *)((char *)&r[0].facts + de_linux_fact_info[i].offset);
		if ((de_linux_fact_info[i].type == DE_FACT_T_TEXT ||
		     de_linux_fact_info[i].type == DE_FACT_T_TEXT_RAW) &&
		    !*t)
			assert_true(asprintf(t, "/%s", de_linux_fact_info[i].name) > 0);
	}
	store_ok(s, r, 1);
	for (int i = 0; i < DE_FACT_COUNT_MAX; i++) {
		const struct de_fact_info *in = &de_linux_fact_info[i];
		char *p = (char *)&r[0].facts + in->offset;

		switch (in->type) {
		case DE_FACT_T_U32:
			*(uint32_t *)(void *)p += 1;
			break;
		case DE_FACT_T_BOOL:
		case DE_FACT_T_FLAG:
			*(bool *)(void *)p = !*(bool *)(void *)p;
			break;
		case DE_FACT_T_CHAR:
			*p = *p == 'R' ? 'S' : 'R';
			break;
		case DE_FACT_T_TEXT:
		case DE_FACT_T_TEXT_RAW:
			(*(char **)(void *)p)[0] ^= 1;
			break;
		default:
			*(int64_t *)(void *)p += 1;
		}
		scan++;
		retime(r, 1, 1000 + 10 * scan, scan);
		store_ok(s, r, 1);
		d = de_store_last_diff(s);
		if (d.changed != 1)
			fail_msg("a change of %s did not rewrite the row", in->name);
		if (d.history != (in->is_volatile ? 0u : 1u))
			fail_msg("a change of the %s fact %s wrote %zu history rows",
				 in->is_volatile ? "volatile" : "identity", in->name, d.history);
	}
	de_store_close(s);
	clear_many(r, 1);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_facts_rows),
		cmocka_unit_test(test_each_fact_volatility),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
