/*
 * validator.c — the SQL sandbox (see validator.h).
 *
 * Layers, each enforced by SQLite rather than by reading the SQL:
 *   1. the connection: read-only open, DEFENSIVE, no extensions, untrusted
 *      schema, query_only (lifted by the detection engine on its own
 *      connection, to write its pid table on the temp schema: detect.c;
 *      the authorizer still refuses every write), in-memory temp storage
 *      (so a big sort counts against the run's memory limit instead of
 *      filling /tmp), lowered limits;
 *   2. the authorizer: SELECT, reads of listed relations/columns, listed
 *      functions and recursive CTEs (and, for the engine's pid wrapper
 *      only, one read of its pid table); everything else denied, and the
 *      first denial is remembered so the error names the construct;
 *   3. the prepared statement: exactly one, returns columns, not EXPLAIN,
 *      sqlite3_stmt_readonly(), at least one SELECT authorised;
 *   4. execution: a progress handler enforces the deadline, a memory budget
 *      charged to the run alone (the allocator below) bounds memory,
 *      SQLITE_LIMIT_LENGTH bounds any single value.
 * The one place that reads SQL text is the subquery nesting count, a cost
 * cap applied after SQLite has accepted the statement: it tokenizes quotes,
 * identifiers and comments exactly and counts nested SELECT keywords.
 */
#include "daemoneye/validator.h"
#include "daemoneye/regexp.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the rule-visible relations -------------------------------------------- */

/*
 * The relations and columns rules may read are the event store's, described
 * once with its schema (de_relations(), src/lib/store_schema.c).
 */

#define NCOLS(a) (sizeof(a) / sizeof((a)[0]))

static const struct de_relation *find_relation(const char *name)
{
	size_t n;
	const struct de_relation *relations = de_relations(&n);

	for (size_t i = 0; name && i < n; i++)
		if (strcasecmp(relations[i].name, name) == 0)
			return &relations[i];
	return NULL;
}

static bool has_column(const struct de_relation *r, const char *col)
{
	for (size_t i = 0; i < r->ncolumns; i++)
		if (strcasecmp(r->columns[i].name, col) == 0)
			return true;
	return false;
}

/* ---- the validator ----------------------------------------------------------- */

static const char *const default_functions[] = {
	"count",     "sum",	     "avg",
	"min",	     "max",	     "total",
	"length",    "substr",	     "instr",
	"upper",     "lower",	     "trim",
	"ltrim",     "rtrim",	     "replace",
	"coalesce",  "ifnull",	     "nullif",
	"hex",	     "datetime",     "date",
	"time",	     "strftime",     "unixepoch",
	"julianday", "json_extract", "json_array_length",
	"like",	     "regexp", /* PCRE2 with match limits: regexp.h */
};

struct de_validator {
	char **functions; /* owned, lower-case */
	size_t nfunctions;
	uint64_t timeout_ms;
	unsigned max_nesting;
	uint64_t memory_limit;
	sqlite3 *schema_db; /* lazily opened for validate_query */
};

struct de_validator *de_validator_new(void)
{
	struct de_validator *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->timeout_ms = DE_VALIDATOR_DEFAULT_TIMEOUT_MS;
	v->max_nesting = DE_VALIDATOR_DEFAULT_NESTING;
	v->memory_limit = DE_VALIDATOR_DEFAULT_MEMORY;
	if (de_validator_with_allowed_functions(v, default_functions, NCOLS(default_functions),
						NULL) < 0) {
		free(v);
		return NULL;
	}
	return v;
}

static void free_functions(char **f, size_t n)
{
	for (size_t i = 0; f && i < n; i++)
		free(f[i]);
	free(f);
}

void de_validator_free(struct de_validator *v)
{
	if (!v)
		return;
	free_functions(v->functions, v->nfunctions);
	sqlite3_close(v->schema_db);
	free(v);
}

int de_validator_with_allowed_functions(struct de_validator *v, const char *const *names, size_t n,
					struct de_error *err)
{
	char **f = calloc(n ? n : 1, sizeof(char *));

	if (!f)
		return de_error_set(err, DE_ERR_DETECTION, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (!names[i] || !*names[i] || strlen(names[i]) > 64) {
			free_functions(f, i);
			return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
					    "allowed function #%zu is empty or too long", i + 1);
		}
		if (!(f[i] = strdup(names[i]))) {
			free_functions(f, i);
			return de_error_set(err, DE_ERR_DETECTION, ENOMEM, "out of memory");
		}
		for (char *p = f[i]; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	}
	free_functions(v->functions, v->nfunctions);
	v->functions = f;
	v->nfunctions = n;
	return 0;
}

int de_validator_with_read_only_mode(struct de_validator *v, bool read_only, struct de_error *err)
{
	(void)v;
	if (!read_only)
		return de_error_set(err, DE_ERR_VALIDATION, EPERM,
				    "daemoneye runs rules and queries read-only only");
	return 0;
}

void de_validator_with_timeout(struct de_validator *v, uint64_t timeout_ms)
{
	v->timeout_ms = timeout_ms;
}

void de_validator_with_max_nesting(struct de_validator *v, unsigned depth)
{
	v->max_nesting = depth ? depth : 1;
}

void de_validator_with_memory_limit(struct de_validator *v, uint64_t bytes)
{
	v->memory_limit = bytes;
}

int de_validator_from_config(const struct de_config *c, struct de_validator **out,
			     struct de_error *err)
{
	struct de_validator *v;
	uint64_t timeout, depth, mem;
	int rc;

	if ((rc = de_config_get_u64(c, "detection.rule_timeout_ms", &timeout, err)) < 0 ||
	    (rc = de_config_get_u64(c, "detection.max_subquery_depth", &depth, err)) < 0 ||
	    (rc = de_config_get_u64(c, "detection.memory_limit_mb", &mem, err)) < 0)
		return rc;
	if (!(v = de_validator_new()))
		return de_error_set(err, DE_ERR_DETECTION, ENOMEM, "out of memory");
	de_validator_with_timeout(v, timeout);
	de_validator_with_max_nesting(v, (unsigned)depth);
	de_validator_with_memory_limit(v, mem << 20);
	*out = v;
	return 0;
}

uint64_t de_validator_timeout(const struct de_validator *v)
{
	return v->timeout_ms;
}

unsigned de_validator_max_nesting(const struct de_validator *v)
{
	return v->max_nesting;
}

const char *const *de_validator_functions(const struct de_validator *v, size_t *n)
{
	*n = v->nfunctions;
	return (const char *const *)v->functions;
}

static bool function_allowed(const struct de_validator *v, const char *name)
{
	for (size_t i = 0; name && i < v->nfunctions; i++)
		if (strcasecmp(v->functions[i], name) == 0)
			return true;
	return false;
}

/* ---- connections --------------------------------------------------------------- */

/* The lowered limits.  Values are generous for real rules, tiny for abuse. */
static const struct {
	int id;
	int value;
} limits[] = {
	{SQLITE_LIMIT_LENGTH, DE_VALIDATOR_MAX_VALUE}, /* any one value (see collect.h's caps) */
	{SQLITE_LIMIT_SQL_LENGTH, DE_VALIDATOR_MAX_SQL},
	{SQLITE_LIMIT_COLUMN, 200},
	{SQLITE_LIMIT_EXPR_DEPTH, 100},
	{SQLITE_LIMIT_COMPOUND_SELECT, 8},
	{SQLITE_LIMIT_VDBE_OP, 50000},
	{SQLITE_LIMIT_FUNCTION_ARG, 16},
	{SQLITE_LIMIT_ATTACHED, 0},
	{SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 1000},
	{SQLITE_LIMIT_VARIABLE_NUMBER, 32},
	{SQLITE_LIMIT_TRIGGER_DEPTH, 1},
	{SQLITE_LIMIT_WORKER_THREADS, 0},
};

/* The errno for SQLite's last error on db (NULL: it could not be allocated). */
static int sqlite_errno(sqlite3 *db)
{
	switch (db ? sqlite3_errcode(db) : SQLITE_NOMEM) {
	case SQLITE_NOMEM:
		return ENOMEM;
	case SQLITE_CANTOPEN:
		return ENOENT;
	default:
		return EIO;
	}
}

static int db_fail(sqlite3 *db, const char *path, struct de_error *err, const char *what)
{
	int rc = de_error_set(err, DE_ERR_DATABASE, sqlite_errno(db), "%s: %s: %s",
			      path ? path : "schema", what,
			      db ? sqlite3_errmsg(db) : "out of memory");
	sqlite3_close(db);
	return rc;
}

static int open_db(const char *path, const char *vfs, sqlite3 **out, struct de_error *err);

int de_validator_open_db(const struct de_validator *v, const char *path, sqlite3 **out,
			 struct de_error *err)
{
	(void)v; /* the limits are applied per run (de_validator_arm) */
	return open_db(path, NULL, out, err);
}

int de_validator_open_db_shared(const struct de_validator *v, const char *path, const char *vfs,
				sqlite3 **out, struct de_error *err)
{
	(void)v;
	if (!path || !vfs)
		return de_error_set(err, DE_ERR_DETECTION, EINVAL,
				    "a shared sandbox connection needs the store's file and VFS");
	return open_db(path, vfs, out, err);
}

static int open_db(const char *path, const char *vfs, sqlite3 **out, struct de_error *err)
{
	sqlite3 *db = NULL;
	int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
	int on;

	/* on a shared cache: the writer's (a read-only open of it is not) */
	flags |= vfs	? SQLITE_OPEN_READWRITE | SQLITE_OPEN_SHAREDCACHE
		 : path ? SQLITE_OPEN_READONLY
			: SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY;
	if (sqlite3_open_v2(path ? path : ":memory:", &db, flags, vfs) != SQLITE_OK)
		return db_fail(db, path, err, "cannot open for rules");
	if (sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, &on) != SQLITE_OK || !on ||
	    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, &on) != SQLITE_OK ||
	    on || sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, &on) != SQLITE_OK ||
	    on || sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, &on) != SQLITE_OK || on)
		return db_fail(db, path, err, "cannot lock down the connection");
	sqlite3_busy_timeout(db, 5000);
	if (!path) {
		/* the schema-only database: empty relations with the listed columns */
		size_t nrel;
		const struct de_relation *relations = de_relations(&nrel);
		for (size_t i = 0; i < nrel; i++) {
			char sql[4096];
			size_t o = (size_t)snprintf(sql, sizeof(sql), "CREATE TABLE %s(",
						    relations[i].name);
			for (size_t c = 0; c < relations[i].ncolumns && o < sizeof(sql); c++)
				o += (size_t)snprintf(sql + o, sizeof(sql) - o, "%s%s %s",
						      c ? ", " : "", relations[i].columns[c].name,
						      relations[i].columns[c].type);
			if (o + 2 >= sizeof(sql))
				return db_fail(db, path, err, "schema too long");
			sql[o] = ')';
			sql[o + 1] = '\0';
			if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
				return db_fail(db, path, err, "cannot create the rule schema");
		}
	}
	if (sqlite3_exec(db,
			 /* a shared cache is the writer's, with its size, and its
			    pager's syncs: this connection's setting (FULL by
			    default in WAL mode) would be the pager's too, an
			    fdatasync at every commit of the writer's.  The store
			    writes with NORMAL (store.c) */
			 vfs ? "PRAGMA read_uncommitted=1; PRAGMA synchronous=NORMAL; "
			       "PRAGMA query_only=1; PRAGMA temp_store=MEMORY"
			     : "PRAGMA query_only=1; PRAGMA temp_store=MEMORY; "
			       "PRAGMA cache_size=-16384",
			 NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(db, path, err, "cannot lock down the connection");
	for (size_t i = 0; i < NCOLS(limits); i++)
		sqlite3_limit(db, limits[i].id, limits[i].value);
	/* the one regular-expression function, with PCRE2's limits (regexp.h) */
	int rrc = de_regexp_register(db, err);
	if (rrc < 0) {
		sqlite3_close(db);
		return rrc;
	}
	*out = db;
	return 0;
}

/* ---- the authorizer ------------------------------------------------------------ */

struct authctx {
	const struct de_validator *v;
	bool saw_select;
	bool denied;
	char why[512]; /* the first denial, for the error message */
	char **stored; /* names of the database's own tables and views */
	size_t nstored;
	bool pid_table;		  /* the wrapper may read temp.DE_VALIDATOR_PID_TABLE.pid once */
	unsigned pid_table_reads; /* references of it seen so far */
};

/*
 * A CTE read without columns (count(*) FROM cte) reaches the authorizer as
 * a READ of the CTE's name with no schema: allowed only if no stored table
 * or view has that name (nor an internal sqlite_ one).
 */
static bool is_stored(const struct authctx *ac, const char *name)
{
	/* the engine's pid table (temp schema, not in sqlite_schema) counts too */
	if (!name || strncasecmp(name, "sqlite_", 7) == 0 ||
	    strcasecmp(name, DE_VALIDATOR_PID_TABLE) == 0)
		return true;
	for (size_t i = 0; i < ac->nstored; i++)
		if (strcasecmp(ac->stored[i], name) == 0)
			return true;
	return false;
}

static int load_stored(sqlite3 *db, struct authctx *ac)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, "SELECT name FROM sqlite_schema WHERE type IN ('table', 'view')",
			       -1, &st, NULL) != SQLITE_OK)
		return -sqlite_errno(db);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *n = (const char *)sqlite3_column_text(st, 0);
		char **nn = realloc(ac->stored, (ac->nstored + 1) * sizeof(char *));
		if (!nn || !n || !(nn[ac->nstored] = strdup(n))) {
			if (nn)
				ac->stored = nn;
			sqlite3_finalize(st);
			return -ENOMEM;
		}
		ac->stored = nn;
		ac->nstored++;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -sqlite_errno(db);
}

static const char *action_name(int action)
{
	switch (action) {
	case SQLITE_CREATE_INDEX:
	case SQLITE_CREATE_TEMP_INDEX:
		return "CREATE INDEX";
	case SQLITE_CREATE_TABLE:
	case SQLITE_CREATE_TEMP_TABLE:
		return "CREATE TABLE";
	case SQLITE_CREATE_TRIGGER:
	case SQLITE_CREATE_TEMP_TRIGGER:
		return "CREATE TRIGGER";
	case SQLITE_CREATE_VIEW:
	case SQLITE_CREATE_TEMP_VIEW:
		return "CREATE VIEW";
	case SQLITE_CREATE_VTABLE:
		return "CREATE VIRTUAL TABLE";
	case SQLITE_DELETE:
		return "DELETE";
	case SQLITE_DROP_INDEX:
	case SQLITE_DROP_TEMP_INDEX:
		return "DROP INDEX";
	case SQLITE_DROP_TABLE:
	case SQLITE_DROP_TEMP_TABLE:
		return "DROP TABLE";
	case SQLITE_DROP_TRIGGER:
	case SQLITE_DROP_TEMP_TRIGGER:
		return "DROP TRIGGER";
	case SQLITE_DROP_VIEW:
	case SQLITE_DROP_TEMP_VIEW:
		return "DROP VIEW";
	case SQLITE_DROP_VTABLE:
		return "DROP VIRTUAL TABLE";
	case SQLITE_INSERT:
		return "INSERT";
	case SQLITE_PRAGMA:
		return "PRAGMA";
	case SQLITE_TRANSACTION:
		return "a transaction statement (BEGIN/COMMIT/ROLLBACK)";
	case SQLITE_UPDATE:
		return "UPDATE";
	case SQLITE_ATTACH:
		return "ATTACH";
	case SQLITE_DETACH:
		return "DETACH";
	case SQLITE_ALTER_TABLE:
		return "ALTER TABLE";
	case SQLITE_REINDEX:
		return "REINDEX";
	case SQLITE_ANALYZE:
		return "ANALYZE";
	case SQLITE_SAVEPOINT:
		return "SAVEPOINT";
	case SQLITE_COPY:
		return "COPY";
	default:
		return "this kind of statement";
	}
}

static void relation_list(char *buf, size_t len)
{
	size_t o = 0, n;
	const struct de_relation *relations = de_relations(&n);

	buf[0] = '\0';
	for (size_t i = 0; i < n && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", relations[i].name);
}

static int authorize(void *ud, int action, const char *a, const char *b, const char *c,
		     const char *d)
{
	struct authctx *ac = ud;
	const struct de_relation *rel;
	char avail[256];

	(void)d;
	switch (action) {
	case SQLITE_SELECT:
		ac->saw_select = true;
		return SQLITE_OK;
	case SQLITE_RECURSIVE: /* bounded by the timeout and the memory limit */
		return SQLITE_OK;
	case SQLITE_READ:
		/* the wrapper's one read of the engine's pid table, never a second */
		if (ac->pid_table && a && c && b && strcmp(c, "temp") == 0 &&
		    strcmp(a, DE_VALIDATOR_PID_TABLE) == 0 && strcmp(b, "pid") == 0 &&
		    ac->pid_table_reads++ == 0)
			return SQLITE_OK;
		/* c is the schema ("main"), NULL for a table read without columns */
		rel = (!c || strcmp(c, "main") == 0) ? find_relation(a) : NULL;
		if (!rel && !c && b && !*b && !is_stored(ac, a))
			return SQLITE_OK; /* a CTE, counted without reading columns */
		if (!rel) {
			if (!ac->denied) {
				relation_list(avail, sizeof(avail));
				snprintf(ac->why, sizeof(ac->why),
					 "table '%s' is not visible to rules (they can read: %s)",
					 a ? a : "?", avail);
			}
			break;
		}
		if (b && *b && !has_column(rel, b)) {
			if (!ac->denied)
				snprintf(ac->why, sizeof(ac->why),
					 "column %s.%s is not visible to rules", rel->name, b);
			break;
		}
		return SQLITE_OK;
	case SQLITE_FUNCTION:
		if (function_allowed(ac->v, b))
			return SQLITE_OK;
		if (!ac->denied) {
			size_t o = (size_t)snprintf(
				ac->why, sizeof(ac->why),
				"function %s() is not allowed in rules (allowed:", b ? b : "?");
			for (size_t i = 0; i < ac->v->nfunctions && o < sizeof(ac->why); i++)
				o += (size_t)snprintf(ac->why + o, sizeof(ac->why) - o, " %s",
						      ac->v->functions[i]);
			if (o < sizeof(ac->why))
				snprintf(ac->why + o, sizeof(ac->why) - o, ")");
		}
		break;
	case SQLITE_INSERT:
	case SQLITE_UPDATE:
	case SQLITE_DELETE:
		if (ac->denied)
			break;
		if (a && strncmp(a, "sqlite_", 7) == 0)
			/* SQLite asks this for schema changes and for table-valued
			 * functions (json_each, pragma_*) alike */
			snprintf(ac->why, sizeof(ac->why),
				 "changing the schema (CREATE, DROP, ALTER) and table-valued "
				 "functions (json_each, pragma_...) are not allowed: rules may "
				 "only SELECT");
		else
			snprintf(ac->why, sizeof(ac->why),
				 "%s on %s is not allowed: rules may only SELECT",
				 action_name(action), a ? a : "?");
		break;
	default:
		if (!ac->denied)
			snprintf(ac->why, sizeof(ac->why),
				 "%s is not allowed: rules may only SELECT", action_name(action));
		break;
	}
	ac->denied = true;
	return SQLITE_DENY;
}

/* ---- subquery nesting ------------------------------------------------------------ */

/*
 * Deepest nesting of SELECTs in sql (1 for a plain SELECT).  Each
 * parenthesis opens a frame; a SELECT keyword marks its frame; the depth of
 * a SELECT is the number of marked frames enclosing it.  Quotes, bracketed
 * identifiers and comments are skipped as SQLite's tokenizer would.
 */
#define NEST_MAX 256
static unsigned select_depth(const char *s, size_t n)
{
	bool marked[NEST_MAX + 1] = {false};
	unsigned level = 0, depth = 0, deepest = 0;
	size_t i = 0;

	while (i < n) {
		char ch = s[i];
		if (ch == '\'' || ch == '"' || ch == '`' || ch == '[') {
			char close = ch == '[' ? ']' : ch;
			for (i++; i < n; i++) {
				if (s[i] == close) {
					if (close != ']' && i + 1 < n && s[i + 1] == close) {
						i++; /* doubled quote */
						continue;
					}
					break;
				}
			}
			i++;
		} else if (ch == '-' && i + 1 < n && s[i + 1] == '-') {
			while (i < n && s[i] != '\n')
				i++;
		} else if (ch == '/' && i + 1 < n && s[i + 1] == '*') {
			for (i += 2; i + 1 < n && !(s[i] == '*' && s[i + 1] == '/'); i++)
				;
			i += 2;
		} else if (ch == '(') {
			if (level < NEST_MAX)
				marked[++level] = false;
			else
				return NEST_MAX; /* deeper than anything we accept */
			i++;
		} else if (ch == ')') {
			if (level > 0) {
				if (marked[level])
					depth--;
				level--;
			}
			i++;
		} else if (isalpha((unsigned char)ch) || ch == '_') {
			size_t st = i;
			while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '_' ||
					 s[i] == '$' || (unsigned char)s[i] >= 0x80))
				i++;
			if (i - st == 6 && strncasecmp(s + st, "select", 6) == 0 &&
			    !marked[level]) {
				marked[level] = true;
				depth++;
				if (depth > deepest)
					deepest = depth;
			}
		} else {
			i++;
		}
	}
	return deepest;
}

/* ---- prepare ------------------------------------------------------------------- */

static void column_list(char *buf, size_t len)
{
	size_t o = 0, n;
	const struct de_relation *relations = de_relations(&n);

	buf[0] = '\0';
	for (size_t i = 0; i < n && o < len; i++) {
		o += (size_t)snprintf(buf + o, len - o, "%s%s(", i ? "; " : "", relations[i].name);
		for (size_t c = 0; c < relations[i].ncolumns && o < len; c++)
			o += (size_t)snprintf(buf + o, len - o, "%s%s", c ? ", " : "",
					      relations[i].columns[c].name);
		if (o < len)
			o += (size_t)snprintf(buf + o, len - o, ")");
	}
}

/* SQLite refused to prepare: say why, with what is available when a name is unknown. */
static int prepare_error(sqlite3 *db, const char *sql, struct authctx *ac, struct de_error *err)
{
	const char *msg = sqlite3_errmsg(db);
	int off = sqlite3_error_offset(db);
	char where[48] = "", avail[900];

	if (off >= 0)
		snprintf(where, sizeof(where), " (at offset %d)", off);
	if (sqlite_errno(db) == ENOMEM)
		return de_error_set(err, DE_ERR_DETECTION, ENOMEM, "preparing the query: %s", msg);
	if (ac->denied)
		return de_error_set(err, DE_ERR_DETECTION, EPERM, "%s", ac->why);
	if (strncmp(msg, "no such table", 13) == 0 || strncmp(msg, "no such function", 16) == 0) {
		relation_list(avail, sizeof(avail));
		return de_error_set(err, DE_ERR_DETECTION, EINVAL, "%s%s; rules can read: %s", msg,
				    where, avail);
	}
	if (strncmp(msg, "no such column", 14) == 0) {
		column_list(avail, sizeof(avail));
		return de_error_set(err, DE_ERR_DETECTION, EINVAL, "%s%s; available: %s", msg,
				    where, avail);
	}
	(void)sql;
	return de_error_set(err, DE_ERR_DETECTION,
			    sqlite3_errcode(db) == SQLITE_TOOBIG ? E2BIG : EINVAL, "%s%s", msg,
			    where);
}

static int prepare(const struct de_validator *v, sqlite3 *db, const char *sql, bool pid_table,
		   sqlite3_stmt **out, struct de_error *err)
{
	struct authctx ac = {.v = v, .pid_table = pid_table};
	sqlite3_stmt *st = NULL, *extra = NULL;
	const char *tail = NULL, *tail2 = NULL;
	size_t len = strlen(sql);
	unsigned depth;
	int rc;

	if (len > DE_VALIDATOR_MAX_SQL)
		return de_error_set(err, DE_ERR_DETECTION, E2BIG,
				    "the query is %zu bytes long; at most %d are allowed", len,
				    DE_VALIDATOR_MAX_SQL);
	if ((rc = load_stored(db, &ac)) < 0) {
		rc = de_error_set(err, DE_ERR_DATABASE, -rc, "cannot read the database schema: %s",
				  sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_set_authorizer(db, authorize, &ac);
	rc = sqlite3_prepare_v3(db, sql, (int)len, 0, &st, &tail);
	if (rc != SQLITE_OK) {
		rc = prepare_error(db, sql, &ac, err);
		goto out;
	}
	if (!st) {
		rc = de_error_set(err, DE_ERR_DETECTION, EINVAL, "the query is empty");
		goto out;
	}
	/* exactly one statement: whatever follows must prepare to nothing */
	if (tail && *tail) {
		struct authctx ac2 = {.v = v, .stored = ac.stored, .nstored = ac.nstored};
		/* (what follows the one statement may read nothing) */
		sqlite3_set_authorizer(db, authorize, &ac2);
		int r2 = sqlite3_prepare_v3(db, tail, -1, 0, &extra, &tail2);
		if (r2 == SQLITE_NOMEM) {
			rc = de_error_set(err, DE_ERR_DETECTION, ENOMEM,
					  "preparing the query: out of memory");
			goto out;
		}
		if (r2 != SQLITE_OK || extra) {
			rc = de_error_set(err, DE_ERR_DETECTION, EINVAL,
					  "only one SQL statement is allowed; found more after "
					  "offset %td",
					  tail - sql);
			goto out;
		}
	}
	if (ac.denied) { /* an authorizer IGNORE never happens, but be sure */
		rc = de_error_set(err, DE_ERR_DETECTION, EPERM, "%s", ac.why);
		goto out;
	}
	if (sqlite3_stmt_isexplain(st)) {
		rc = de_error_set(err, DE_ERR_DETECTION, EPERM,
				  "EXPLAIN is not allowed: rules may only SELECT");
		goto out;
	}
	if (!sqlite3_stmt_readonly(st) || !ac.saw_select || sqlite3_column_count(st) == 0) {
		rc = de_error_set(err, DE_ERR_DETECTION, EPERM,
				  "only SELECT statements are allowed (this statement %s)",
				  !sqlite3_stmt_readonly(st) ? "would write"
							     : "is not a query returning rows");
		goto out;
	}
	depth = select_depth(sql, (size_t)(tail ? tail - sql : (ptrdiff_t)len));
	if (depth > v->max_nesting) {
		rc = de_error_set(err, DE_ERR_DETECTION, E2BIG,
				  "subqueries nest %u deep; at most %u levels are allowed "
				  "(detection.max_subquery_depth)",
				  depth, v->max_nesting);
		goto out;
	}
	*out = st;
	st = NULL;
	rc = 0;
out:
	sqlite3_set_authorizer(db, NULL, NULL);
	for (size_t i = 0; i < ac.nstored; i++)
		free(ac.stored[i]);
	free(ac.stored);
	sqlite3_finalize(extra);
	sqlite3_finalize(st);
	return rc;
}

int de_validator_prepare(const struct de_validator *v, sqlite3 *db, const char *sql,
			 sqlite3_stmt **out, struct de_error *err)
{
	return prepare(v, db, sql, false, out, err);
}

int de_validator_prepare_for_pids(const struct de_validator *v, sqlite3 *db, const char *sql,
				  sqlite3_stmt **out, struct de_error *err)
{
	return prepare(v, db, sql, true, out, err);
}

int de_validator_validate_query(struct de_validator *v, const char *sql, struct de_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (!v->schema_db && (rc = de_validator_open_db(v, NULL, &v->schema_db, err)) < 0)
		return rc;
	if ((rc = de_validator_prepare(v, v->schema_db, sql, &st, err)) < 0)
		return rc;
	sqlite3_finalize(st);
	return 0;
}

/* ---- memory: charged to the run, never to the store ---------------------------- */

/*
 * SQLite can only cap the whole process's heap (sqlite3_hard_heap_limit64),
 * which also starves the store's writer.  So SQLite allocates through these
 * wrappers of malloc, and while a sandboxed statement runs on a thread
 * (de_validator_arm .. de_validator_disarm) the bytes it takes net of what
 * it frees (malloc_usable_size on both sides, as SQLite's own allocator
 * counts) are charged to that run; past its limit an allocation fails and
 * SQLite reports SQLITE_NOMEM.  Frees of memory allocated before the run
 * (recycled cache pages) count in its favour: the budget is the run's net
 * growth, which is what a runaway query is.
 */
struct run_budget {
	bool on;
	int64_t used;  /* net bytes since arm */
	int64_t limit; /* bytes */
};
static _Thread_local struct run_budget run_budget;

static bool mem_installed;

static void *mem_malloc(int n)
{
	void *p;

	if (run_budget.on && run_budget.used + n > run_budget.limit)
		return NULL;
	p = malloc((size_t)n);
	if (p && run_budget.on)
		run_budget.used += (int64_t)malloc_usable_size(p);
	return p;
}

static void mem_free(void *p)
{
	if (p && run_budget.on)
		run_budget.used -= (int64_t)malloc_usable_size(p);
	free(p);
}

static void *mem_realloc(void *p, int n)
{
	int64_t old = p ? (int64_t)malloc_usable_size(p) : 0;
	void *q;

	if (run_budget.on && n > old && run_budget.used + (n - old) > run_budget.limit)
		return NULL;
	q = realloc(p, (size_t)n);
	if (q && run_budget.on)
		run_budget.used += (int64_t)malloc_usable_size(q) - old;
	return q;
}

static int mem_size(void *p)
{
	return (int)malloc_usable_size(p);
}

static int mem_roundup(int n)
{
	return (n + 7) & ~7;
}

static int mem_init(void *arg)
{
	(void)arg;
	return SQLITE_OK;
}

static void mem_shutdown(void *arg)
{
	(void)arg;
}

/* Before main: SQLite accepts an allocator only before it initialises. */
__attribute__((constructor)) static void mem_install(void)
{
	static const sqlite3_mem_methods methods = {
		mem_malloc,  mem_free, mem_realloc,  mem_size,
		mem_roundup, mem_init, mem_shutdown, NULL,
	};
	mem_installed = sqlite3_config(SQLITE_CONFIG_MALLOC, &methods) == SQLITE_OK;
}

/* ---- execution ----------------------------------------------------------------- */

static int check_deadline(void *ud)
{
	struct de_guard *g = ud;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec > g->end.tv_sec ||
	    (now.tv_sec == g->end.tv_sec && now.tv_nsec >= g->end.tv_nsec)) {
		g->expired = true;
		return 1;
	}
	return 0;
}

void de_validator_arm(const struct de_validator *v, sqlite3 *db, struct de_guard *g)
{
	memset(g, 0, sizeof(*g));
	g->timeout_ms = v->timeout_ms;
	g->memory_limit = v->memory_limit;
	/* without our allocator (SQLite initialised first) there is nothing to charge */
	assert(mem_installed);
	if (v->memory_limit && mem_installed)
		run_budget = (struct run_budget){true, 0, (int64_t)v->memory_limit};
	if (!v->timeout_ms)
		return;
	clock_gettime(CLOCK_MONOTONIC, &g->end);
	g->end.tv_sec += (time_t)(v->timeout_ms / 1000);
	g->end.tv_nsec += (long)(v->timeout_ms % 1000) * 1000000L;
	if (g->end.tv_nsec >= 1000000000L) {
		g->end.tv_sec++;
		g->end.tv_nsec -= 1000000000L;
	}
	g->armed = true;
	sqlite3_progress_handler(db, 1000, check_deadline, g);
}

void de_validator_disarm(sqlite3 *db, struct de_guard *g)
{
	run_budget.on = false;
	if (g->armed)
		sqlite3_progress_handler(db, 0, NULL, NULL);
	g->armed = false;
}

int de_validator_step_error(sqlite3 *db, const struct de_guard *g, int step_rc,
			    struct de_error *err)
{
	int primary = step_rc & 0xff;

	if (g->expired || primary == SQLITE_INTERRUPT)
		return de_error_set(err, DE_ERR_DETECTION, ETIMEDOUT,
				    "stopped: ran longer than its timeout of %llu ms",
				    (unsigned long long)g->timeout_ms);
	if (primary == SQLITE_NOMEM)
		return de_error_set(err, DE_ERR_DETECTION, ENOMEM,
				    "stopped: needed more than its memory limit of %llu MiB "
				    "(detection.memory_limit_mb)",
				    (unsigned long long)(g->memory_limit >> 20));
	if (primary == SQLITE_TOOBIG)
		return de_error_set(err, DE_ERR_DETECTION, E2BIG,
				    "stopped: a value grew larger than the length limit");
	return de_error_set(err, DE_ERR_DETECTION, EIO, "%s", sqlite3_errmsg(db));
}
