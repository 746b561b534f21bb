/*
 * test_validator_alloc.c — the SQL sandbox under allocation failure
 * (tests/failalloc.h), SQLite's own allocations included: making a
 * validator and its allowlist, opening the schema-only and a file
 * connection, preparing an accepted and a denied query, validate_query on a
 * fresh validator, and the validator from the configuration.  A failed run
 * must say "out of memory" (never that the query is wrong), leave its
 * outputs untouched, and leak nothing; a denied query must still be denied
 * for the same reason when it recovers.
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

#include "daemoneye/validator.h"
#include "failalloc.h"

#define DE_TEST_NAME "validator-alloc"
#include "testutil.h"

static char db_path[PATH_MAX];

/* Addresses no function under test can return. */
static char sentinel_bytes[2];
#define SENTINEL_DB   ((sqlite3 *)(void *)&sentinel_bytes[0])
#define SENTINEL_STMT ((sqlite3_stmt *)(void *)&sentinel_bytes[1])

/* A join, a subquery, a CTE, functions from the allowlist. */
static const char good_sql[] =
	"WITH kids AS (SELECT ppid, count(*) AS n FROM processes GROUP BY ppid) "
	"SELECT p.pid, p.name, p.executable_path, coalesce(k.n, 0) AS children, "
	"json_extract(p.platform_data, '$.state') AS state FROM processes p "
	"LEFT JOIN kids k ON k.ppid = p.pid WHERE p.name LIKE 'ba%' AND p.pid IN "
	"(SELECT pid FROM process_instances WHERE exited_at > unixepoch() - 60)";

/* Denied by the authorizer: the message names the function. */
static const char denied_sql[] = "SELECT pid, name, load_extension('x') FROM processes";

/* ---- de_validator_new and the allowlist ----------------------------------- */

struct new_ctx {
	struct de_validator *v;
};

static int new_run(void *p, struct de_error *err)
{
	struct new_ctx *x = p;

	(void)err;
	x->v = de_validator_new();
	return x->v ? 0 : -ENOMEM;
}

/* The default allowlist, taken once before any allocation is failed: its
 * length and last name, which a recovered or untouched validator must show. */
static size_t default_n;
static char default_last[64];

static void take_defaults(void)
{
	struct de_validator *v = de_validator_new();
	const char *const *f;

	assert_non_null(v);
	f = de_validator_functions(v, &default_n);
	assert_true(default_n > 20);
	snprintf(default_last, sizeof(default_last), "%s", f[default_n - 1]);
	de_validator_free(v);
}

static void new_check(void *p, int rc, const struct de_error *err)
{
	struct new_ctx *x = p;
	size_t n = 0;

	(void)err;
	if (rc == 0) {
		const char *const *f = de_validator_functions(x->v, &n);
		assert_int_equal(n, default_n);
		assert_string_equal(f[n - 1], default_last);
	}
	de_validator_free(x->v);
}

static void test_new(void **state)
{
	(void)state;
	struct new_ctx x = {0};
	struct fa_case c = {"de_validator_new", &x, NULL, new_run, new_check, false, 0};

	take_defaults();
	fa_run(&c);
}

struct allow_ctx {
	struct de_validator *v;
};

static void allow_setup(void *p)
{
	struct allow_ctx *x = p;

	x->v = de_validator_new();
	assert_non_null(x->v);
}

static int allow_run(void *p, struct de_error *err)
{
	static const char *const names[] = {"COUNT", "Max", "lower", "json_extract"};
	struct allow_ctx *x = p;

	return de_validator_with_allowed_functions(x->v, names, 4, err);
}

static void allow_check(void *p, int rc, const struct de_error *err)
{
	struct allow_ctx *x = p;
	size_t n = 0;
	const char *const *f = de_validator_functions(x->v, &n);

	(void)err;
	if (rc == 0) {
		assert_int_equal(n, 4);
		assert_string_equal(f[0], "count");
		assert_string_equal(f[1], "max");
	} else { /* the defaults, untouched */
		assert_int_equal(n, default_n);
		assert_string_equal(f[0], "count");
		assert_string_equal(f[n - 1], default_last);
	}
	de_validator_free(x->v);
}

static void test_allowlist(void **state)
{
	(void)state;
	struct allow_ctx x = {0};
	struct fa_case c = {"de_validator_with_allowed_functions",
			    &x,
			    allow_setup,
			    allow_run,
			    allow_check,
			    true,
			    0};

	take_defaults();
	fa_run(&c);
}

/* ---- connections ---------------------------------------------------------- */

struct open_ctx {
	struct de_validator *v;
	const char *path;
	sqlite3 *db;
};

static int open_run(void *p, struct de_error *err)
{
	struct open_ctx *x = p;

	x->db = SENTINEL_DB;
	return de_validator_open_db(x->v, x->path, &x->db, err);
}

static void open_check(void *p, int rc, const struct de_error *err)
{
	struct open_ctx *x = p;
	sqlite3_stmt *st = NULL;

	(void)err;
	if (rc < 0) {
		assert_ptr_equal(x->db, SENTINEL_DB);
		return;
	}
	/* a working sandbox: the relations are there, writing is not allowed */
	assert_int_equal(sqlite3_prepare_v2(x->db, "SELECT count(*) FROM processes", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	sqlite3_finalize(st);
	assert_int_not_equal(
		sqlite3_exec(x->db, "INSERT INTO processes(pid) VALUES (1)", NULL, NULL, NULL),
		SQLITE_OK);
	assert_int_equal(sqlite3_close(x->db), SQLITE_OK);
}

static void test_open(void **state)
{
	(void)state;
	struct open_ctx x = {0};

	assert_non_null(x.v = de_validator_new());
	struct fa_case c = {
		"de_validator_open_db: schema only", &x, NULL, open_run, open_check, true, 0};
	struct fa_stats st = fa_run(&c);
	assert_true(fa_some_errors(st));

	x.path = db_path;
	struct fa_case f = {
		"de_validator_open_db: a file", &x, NULL, open_run, open_check, true, 0};
	st = fa_run(&f);
	assert_true(fa_some_errors(st));
	de_validator_free(x.v);
}

/* ---- prepare -------------------------------------------------------------- */

struct prep_ctx {
	struct de_validator *v;
	sqlite3 *db;
	const char *sql;
	sqlite3_stmt *st;
	bool denied; /* the query must be refused (EPERM, naming the function) */
};

static int prep_run(void *p, struct de_error *err)
{
	struct prep_ctx *x = p;
	int rc;

	x->st = SENTINEL_STMT;
	rc = de_validator_prepare(x->v, x->db, x->sql, &x->st, err);
	/* the expected refusal counts as this case's success */
	if (x->denied && rc == -EPERM)
		return 0;
	if (x->denied && rc == 0)
		fail_msg("'%s' was accepted", x->sql);
	return rc;
}

static void prep_check(void *p, int rc, const struct de_error *err)
{
	struct prep_ctx *x = p;

	if (rc < 0 || x->denied) {
		assert_ptr_equal(x->st, SENTINEL_STMT);
		if (rc == 0)
			assert_non_null(strstr(err->message, "load_extension() is not allowed"));
	} else {
		assert_int_equal(sqlite3_column_count(x->st), 5);
		assert_string_equal(sqlite3_column_name(x->st, 3), "children");
		sqlite3_finalize(x->st);
	}
	/* prep_setup opens the next run's connection */
	sqlite3_close(x->db);
	x->db = NULL;
}

/* A fresh connection for each run: SQLite keeps what one prepare parsed (the
 * schema, lookaside), so that runs on one connection would not be alike. */
static void prep_setup(void *p)
{
	struct prep_ctx *x = p;

	assert_int_equal(de_validator_open_db(x->v, NULL, &x->db, NULL), 0);
}

static void test_prepare(void **state)
{
	(void)state;
	struct prep_ctx x = {.sql = good_sql};

	assert_non_null(x.v = de_validator_new());
	struct fa_case c = {"de_validator_prepare: CTE, join, subquery",
			    &x,
			    prep_setup,
			    prep_run,
			    prep_check,
			    true,
			    0};
	struct fa_stats st = fa_run(&c);
	assert_true(fa_some_errors(st));

	x.sql = denied_sql;
	x.denied = true;
	struct fa_case d = {"de_validator_prepare: a denied function",
			    &x,
			    prep_setup,
			    prep_run,
			    prep_check,
			    true,
			    0};
	fa_run(&d);
	sqlite3_close(x.db);
	de_validator_free(x.v);
}

/* validate_query on a fresh validator: opens its schema connection too. */
struct vq_ctx {
	struct de_validator *v;
};

static void vq_setup(void *p)
{
	struct vq_ctx *x = p;

	x->v = de_validator_new();
	assert_non_null(x->v);
}

static int vq_run(void *p, struct de_error *err)
{
	struct vq_ctx *x = p;

	return de_validator_validate_query(x->v, good_sql, err);
}

static void vq_check(void *p, int rc, const struct de_error *err)
{
	struct vq_ctx *x = p;

	(void)err;
	/* a failed run leaves the validator usable */
	if (rc < 0)
		assert_int_equal(de_validator_validate_query(x->v, good_sql, NULL), 0);
	de_validator_free(x->v);
}

static void test_validate_query(void **state)
{
	(void)state;
	struct vq_ctx x = {0};
	struct fa_case c = {
		"de_validator_validate_query (first use)", &x, vq_setup, vq_run, vq_check, true, 0};
	struct fa_stats st = fa_run(&c);

	assert_true(fa_some_errors(st));
}

/* ---- from the configuration ------------------------------------------------- */

struct cfg_ctx {
	struct de_config *c;
	struct de_validator *v;
};

static struct de_validator *const SENTINEL_V = (struct de_validator *)(void *)&sentinel_bytes[0];

static int cfg_run(void *p, struct de_error *err)
{
	struct cfg_ctx *x = p;

	x->v = SENTINEL_V;
	return de_validator_from_config(x->c, &x->v, err);
}

static void cfg_check(void *p, int rc, const struct de_error *err)
{
	struct cfg_ctx *x = p;

	(void)err;
	if (rc < 0) {
		assert_ptr_equal(x->v, SENTINEL_V);
		return;
	}
	assert_int_equal(de_validator_timeout(x->v), 1234);
	assert_int_equal(de_validator_max_nesting(x->v), 5);
	de_validator_free(x->v);
}

static void test_from_config(void **state)
{
	(void)state;
	static const char *const sets[] = {"detection.rule_timeout_ms=1234",
					   "detection.max_subquery_depth=5"};
	struct de_config_sources src = {.system_file = "",
					.user_file = "",
					.envp = (char *[]){NULL},
					.sets = sets,
					.nsets = 2};
	struct cfg_ctx x = {0};

	assert_int_equal(de_config_load(&src, &x.c, NULL), 0);
	struct fa_case c = {"de_validator_from_config", &x, NULL, cfg_run, cfg_check, true, 0};
	fa_run(&c);
	de_config_free(x.c);
}

/* ---- setup ------------------------------------------------------------------ */

static int setup(void **state)
{
	sqlite3 *db = NULL;
	int rc;

	(void)state;
	if (tmpdir_make() < 0)
		return -1;
	snprintf(db_path, sizeof(db_path), "%s/events.sqlite", tmpdir);
	/* a database file with the rule-visible processes table, made
	   without the store (whose own tests cover it) */
	rc = sqlite3_open(db_path, &db);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(
			db,
			"CREATE TABLE processes(pid INTEGER, name TEXT, ppid INTEGER,"
			" executable_path TEXT, platform_data TEXT);"
			"INSERT INTO processes VALUES (1, 'init', 0, '/sbin/init', '{}');",
			NULL, NULL, NULL);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new),
		cmocka_unit_test(test_allowlist),
		cmocka_unit_test(test_open),
		cmocka_unit_test(test_prepare),
		cmocka_unit_test(test_validate_query),
		cmocka_unit_test(test_from_config),
	};
	return cmocka_run_group_tests(tests, setup, tmpdir_teardown);
}
