/*
 * detect.c — the DetectionEngine (see detect.h).
 *
 * Safety is the validator's job (validator.c): every rule is prepared with
 * de_validator_prepare() on the engine's sandbox connection and stepped
 * under de_validator_arm().  This file turns rows into alerts: it groups
 * rows by dedupe key, collects distinct pids, keeps the first
 * DE_DETECT_MAX_ROWS rows as JSON, caps the number of alerts per rule, and
 * marks alerts incomplete when their rule did not finish.
 *
 * Prepared statements are cached per engine, keyed by the rule's SQL text
 * and the mode (whole snapshot, or restricted to the exec path's pids),
 * because parsing dominated the cost: the exec path runs every
 * single-process rule for each batch of execs.  A cached statement passed
 * the validator when it was prepared.  SQLite re-prepares statements
 * behind our back, without the authorizer: after any
 * sqlite3_set_authorizer() on the connection (which every validation does:
 * it expires all statements) and after a schema change.  The first only
 * recompiles the same text against the same schema, so the verdict stands;
 * the second could change what a name refers to, so every run first
 * compares the schema cookie with the one the cache was built under and,
 * if it moved, empties the cache and validates afresh.
 *
 * A pid run restricts a rule to the batch's processes by wrapping it:
 * `SELECT * FROM (rule) AS de_exec_rule WHERE pid IN (SELECT pid FROM
 * temp.de_exec_pids)`.  de_exec_pids is the engine's own rowid table on
 * the connection's in-memory temp schema, filled once per batch; SQLite
 * searches it by rowid, so one run covers the whole batch and builds
 * nothing per run (an IN list of bound pids costs an ephemeral b-tree
 * every run).  The wrapper is prepared with
 * de_validator_prepare_for_pids(), which lets it, and only it, read that
 * table; the rule itself was validated alone first.  This needs SQLite to
 * flatten the rule into the wrapper, so that the IN term reaches the
 * rule's own tables (a primary-key search per pid): SQLite never pushes a
 * subquery term down into a rule it keeps apart (an aggregate, DISTINCT,
 * LIMIT...).  When EXPLAIN QUERY PLAN still names de_exec_rule, the rule
 * takes the parameter form, `pid IN (?1, ..., ?8)`, which SQLite does push
 * down, eight pids per run.
 *
 * The prefilter.  Most pid runs return nothing, and each statement run has
 * a fixed cost (starting the VDBE, opening cursors, the read transaction's
 * b-tree, halting) besides the rule's own work.  So before a batch's rules
 * run, the rules that are plain filters of processes are tested together:
 * a rule whose text is `SELECT <list> FROM [main.]processes [[AS] a] WHERE
 * <expr>` with nothing after the expression (sqltok.c says so, knowing
 * strings, quoted identifiers, comments and parentheses), whose pid form
 * SQLite flattened (by_table: no aggregate, DISTINCT, LIMIT, window) and
 * whose pid column is processes.pid itself (SQLite's column metadata) has
 * rows for a pid iff <expr> holds on that pid's row of processes.  The
 * engine writes one statement per alias (the FROM must be the rules'),
 *   SELECT CASE WHEN (<expr1>\n) THEN 1 ELSE 0 END, ..., CASE WHEN
 *   (<exprK>\n) THEN 1 ELSE 0 END FROM main.processes [AS a]
 *   WHERE pid IN (SELECT pid FROM temp.de_exec_pids)
 * Rules over other FROM clauses (the joins of a process with its parent,
 * or with its connections) are filters too when their select list has no
 * * and its first item named pid is a column reference, `[x.]pid` or
 * `[x.]col AS pid`, that is the statement's column pid: such a rule has
 * rows for a pid iff <expr> holds on some row of its FROM whose reference
 * has that value.  They share one statement per FROM clause and reference
 * (the same text), which copies both: `SELECT CASE ... FROM <from> WHERE
 * <ref> IN (SELECT pid FROM temp.de_exec_pids)` (sqltok.c checks the FROM
 * clause as it checks the expression).
 * (The newline would end a -- comment; a rule with an unterminated block
 * comment or quote, a bound variable or unbalanced parentheses is never a
 * filter, so no rule's text can change the statement's structure), validated like the pid wrapper
 * (de_validator_prepare_for_pids is what lets it read the pid table) and stepped under the
 * validator's guard.  A rule whose column is 0 for every row is reported as ran with no rows and no
 * alerts, elapsed_us its share of the statement's time, and is not run; the others run as above, so
 * their alerts are exactly those of their own runs.  A statement that fails (an error on one
 * process's values, the timeout, the memory limit, an interrupt) or runs
 * DE_DETECT_PREFILTER_SLOW_US or longer (its recompilation aside) proves
 * nothing: all of its rules run alone, so that a hostile process cannot
 * blind a rule and a slow rule's own time reaches the agent's watchdog.
 * Each list of three or more literals after IN gets one more element, a
 * copy of its first that names the row's pid (`coalesce('a', pid)`): the
 * same values, but SQLite then tests the list by comparisons rather than
 * building an ephemeral b-tree of it on every run, which was most of the
 * prefilter's cost (sqltok.h, pf_expr).
 * Only functions whose value depends on their arguments may appear in a
 * filter's expression (no date/time function reading 'now'), so that the
 * two statements agree.  The statements are built when the list of filter
 * rules (their cache entries) changes, once they are all in the cache; they
 * go when the cache empties (check_schema, the cap).  A rule whose
 * expression does not stand outside its statement (it names a result
 * column's alias) is found by preparing each rule alone when a statement
 * will not prepare, and stops being a filter.
 */
#include "daemoneye/detect.h"
#include "daemoneye/text.h"
#include "daemoneye/buf.h"
#include "daemoneye/clock.h"
#include "daemoneye/sqltok.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* One cached statement. */
struct cached_stmt {
	uint64_t hash;	  /* of sql and the mode */
	char *sql;	  /* the rule's text, owned */
	uintptr_t seen;	  /* where the caller's text was when last found (only
			     compared, then the texts are) */
	bool for_pid;	  /* the pid-restricted form */
	bool by_table;	  /* for_pid: reads the batch from de_exec_pids (else ?1..?8) */
	sqlite3_stmt *st; /* owned; NULL: the rule has no pid column (for_pid) */
	/* its columns pid, name and executable_path (-1: none), looked up once */
	int pidcol, namecol, execol;
	/* by_table: a plain filter of processes whose pid column is
	   processes.pid, so the prefilter may test it (see the top) */
	bool filter;
	struct de_sql_filter shape; /* where its alias and WHERE are in sql */
};

#define ENGINE_MAX_CACHED 512 /* statements; beyond, the cache starts over */

/* The prefilter (see the top): statements testing many rules' WHERE at once. */
#define PF_MAX_RULES 64 /* rules one statement tests (SQLITE_LIMIT_COLUMN is 200) */
#define PF_MAX_TEXT                                                                                \
	((size_t)48 * 1024) /* bytes of their expressions (the SQL limit is 100,000)               \
			     */
#define PF_NONE	     SIZE_MAX
#define PF_MAX_LISTS 32 /* literal IN lists of a rule made non-constant (pf_expr) */

struct pf_group {
	sqlite3_stmt *st; /* owned: one CASE column per member */
	size_t *pos;	  /* owned: the members' positions in the set's key, by column */
	size_t n;
};

/* The prefilter's statements, for one list of rules (their cache entries). */
struct pf_set {
	bool built;
	uint64_t gen;		 /* the statement cache's generation they were built under */
	size_t *key, nkey;	 /* owned: the members' cache indices, in rule order */
	struct pf_group *groups; /* owned */
	size_t ngroups;
};

struct de_engine {
	sqlite3 *db;		   /* sandbox connection, owned */
	struct de_validator *v;	   /* borrowed */
	struct cached_stmt *cache; /* owned */
	size_t ncache, capcache;
	int64_t schema;		 /* schema cookie the cache was validated under */
	sqlite3_stmt *schema_st; /* PRAGMA schema_version, owned */
	/* the batch's pids in temp.de_exec_pids: see the top; all owned */
	sqlite3_stmt *set_clear, *set_add;
	bool set_filled;	      /* the table holds the pids of the run under way */
	sqlite3_stmt *begin, *commit; /* a batch's read transaction, owned */
	uint64_t gen;		      /* bumped when the cache empties: indices go stale */
	bool prefilter;		      /* on (de_engine_with_prefilter) */
	int64_t pf_slow_us;	      /* a run this slow is inconclusive (< 0: never) */
	struct pf_set pf;
	/* a batch's scratch, for its rules (all owned, cap entries each) */
	size_t *sc_key, *sc_rule; /* eligible rules: cache index, rule index */
	bool *sc_run, *sc_hit;	  /* per rule: run it; per key position: some pid matched */
	int64_t *sc_share;	  /* per rule: its share of the prefilter's time */
	size_t sc_cap;
	struct de_engine_stats stats;
};

#define PIDSET	   DE_VALIDATOR_PID_TABLE /* the engine's table of the batch's pids */
#define RULE_ALIAS "de_exec_rule"	  /* the rule inside its pid wrapper */

static void pf_clear(struct pf_set *pf)
{
	for (size_t g = 0; g < pf->ngroups; g++) {
		sqlite3_finalize(pf->groups[g].st);
		free(pf->groups[g].pos);
	}
	free(pf->groups);
	free(pf->key);
	memset(pf, 0, sizeof(*pf));
}

static void cache_clear(struct de_engine *e)
{
	for (size_t i = 0; i < e->ncache; i++) {
		sqlite3_finalize(e->cache[i].st);
		free(e->cache[i].sql);
	}
	e->ncache = 0;
	e->gen++;
	pf_clear(&e->pf); /* built from entries that are gone */
}

static int engine_open(const char *db_path, const char *vfs, struct de_validator *v,
		       struct de_engine **out, struct de_error *err);

int de_engine_open(const char *db_path, struct de_validator *v, struct de_engine **out,
		   struct de_error *err)
{
	return engine_open(db_path, NULL, v, out, err);
}

int de_engine_open_shared(const char *db_path, const char *vfs, struct de_validator *v,
			  struct de_engine **out, struct de_error *err)
{
	return engine_open(db_path, vfs, v, out, err);
}

static int engine_open(const char *db_path, const char *vfs, struct de_validator *v,
		       struct de_engine **out, struct de_error *err)
{
	struct de_engine *e = calloc(1, sizeof(*e));
	int rc;

	if (!e)
		return de_error_set(err, DE_ERR_DETECTION, ENOMEM, "out of memory");
	e->v = v;
	e->prefilter = true;
	e->pf_slow_us = DE_DETECT_PREFILTER_SLOW_US;
	if ((rc = vfs ? de_validator_open_db_shared(v, db_path, vfs, &e->db, err)
		      : de_validator_open_db(v, db_path, &e->db, err)) < 0) {
		free(e);
		return rc;
	}
	/* the pid table, on the temp schema (in memory).  Writing it needs
	   query_only off, for good: toggling that pragma expires every prepared
	   statement, and re-preparing the rules each batch would cost more than
	   the table saves.  Nothing validated writes anyway: the authorizer
	   refuses every statement but a SELECT, every temp table and every
	   CREATE (validator.c), and the main database is opened read-only
	   (unless on the writer's shared cache: de_validator_open_db_shared). */
	if (sqlite3_exec(e->db,
			 "PRAGMA query_only=0; CREATE TEMP TABLE " PIDSET
			 "(pid INTEGER PRIMARY KEY)",
			 NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(e->db, "DELETE FROM temp." PIDSET, -1, SQLITE_PREPARE_PERSISTENT,
			       &e->set_clear, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(e->db, "INSERT OR IGNORE INTO temp." PIDSET " VALUES (?1)", -1,
			       SQLITE_PREPARE_PERSISTENT, &e->set_add, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(e->db, "BEGIN", -1, SQLITE_PREPARE_PERSISTENT, &e->begin, NULL) !=
		    SQLITE_OK ||
	    sqlite3_prepare_v3(e->db, "COMMIT", -1, SQLITE_PREPARE_PERSISTENT, &e->commit, NULL) !=
		    SQLITE_OK) {
		rc = de_error_set(err, DE_ERR_DATABASE, EIO,
				  "%s: cannot set up the rules' pid table: %s",
				  db_path ? db_path : "schema", sqlite3_errmsg(e->db));
		de_engine_close(e);
		return rc;
	}
	*out = e;
	return 0;
}

void de_engine_close(struct de_engine *e)
{
	if (!e)
		return;
	cache_clear(e);
	free(e->cache);
	free(e->sc_key);
	free(e->sc_rule);
	free(e->sc_run);
	free(e->sc_hit);
	free(e->sc_share);
	sqlite3_finalize(e->schema_st);
	sqlite3_finalize(e->set_clear);
	sqlite3_finalize(e->set_add);
	sqlite3_finalize(e->begin);
	sqlite3_finalize(e->commit);
	sqlite3_close(e->db);
	free(e);
}

sqlite3 *de_engine_db(struct de_engine *e)
{
	return e->db;
}

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- rows to alerts ------------------------------------------------------------ */

json_t *de_row_json(sqlite3_stmt *st)
{
	json_t *o = json_object();
	int n = sqlite3_column_count(st);

	for (int i = 0; o && i < n; i++) {
		const char *name = sqlite3_column_name(st, i);
		json_t *v;
		switch (sqlite3_column_type(st, i)) {
		case SQLITE_INTEGER:
			v = json_integer(sqlite3_column_int64(st, i));
			break;
		case SQLITE_FLOAT:
			v = json_real(sqlite3_column_double(st, i));
			break;
		case SQLITE_NULL:
			v = json_null();
			break;
		default: {
			const char *t = (const char *)sqlite3_column_text(st, i);
			size_t l = (size_t)sqlite3_column_bytes(st, i);
			v = t && de_utf8_valid(t, l) ? json_stringn(t, l) : NULL;
			if (!v) { /* not UTF-8: keep it readable and unambiguous */
				char *esc = t ? de_escape_text(t, l) : NULL;
				v = json_string(esc ? esc : "");
				free(esc);
			}
		}
		}
		if (json_object_set_new(o, name ? name : "?", v) < 0) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

static int col_index(sqlite3_stmt *st, const char *col)
{
	for (int i = 0; i < sqlite3_column_count(st); i++)
		if (strcmp(sqlite3_column_name(st, i), col) == 0)
			return i;
	return -1;
}

/* Growable string for dedupe keys. */
#define MAX_KEY_PART 1024		  /* bytes of one value used in a dedupe key */
#define MAX_KEY	     ((size_t)256 * 1024) /* a whole dedupe key: the rule id and its parts */

static int make_key(struct de_buf *b, const struct de_rule *rule, sqlite3_stmt *st, const int *cols,
		    size_t ncols)
{
	de_buf_reset(b);
	if (de_buf_puts(b, rule->id) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < ncols; i++) {
		const char *t =
			cols[i] >= 0 ? (const char *)sqlite3_column_text(st, cols[i]) : NULL;
		size_t n = t ? (size_t)sqlite3_column_bytes(st, cols[i]) : 0;
		if (de_buf_putc(b, '|') < 0 ||
		    de_buf_append(b, t ? t : "", n > MAX_KEY_PART ? MAX_KEY_PART : n) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* The alert for key among alerts[first..] (with pid >= 0: the one of that
   process, as a run for one process would have made it), or NULL. */
static struct de_alert *alert_find(struct de_alert_list *l, size_t first, const char *key,
				   int64_t pid)
{
	for (size_t i = l->len; i > first; i--) {
		struct de_alert *a = &l->items[i - 1];
		if (strcmp(a->dedupe_key, key) == 0 &&
		    (pid < 0 || (a->affected_processes_len && a->affected_processes[0] == pid)))
			return a;
	}
	return NULL;
}

/* Find the alert for key (and pid, see alert_find) among alerts[first..], or
   create it (NULL on ENOMEM). */
static struct de_alert *alert_for(struct de_alert_list *l, size_t first, const char *key,
				  int64_t pid, const struct de_rule *rule, int64_t scan_id,
				  bool *created)
{
	struct de_alert *a;

	*created = false;
	if ((a = alert_find(l, first, key, pid)))
		return a;
	if (l->len == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 8;
		struct de_alert *ni = realloc(l->items, nc * sizeof(*ni));
		if (!ni)
			return NULL;
		l->items = ni;
		l->cap = nc;
	}
	a = &l->items[l->len];
	memset(a, 0, sizeof(*a));
	a->alert_time = de_now_ms();
	de_uuid_v7(&a->id, a->alert_time);
	a->rule_id = strdup(rule->id);
	a->title = strdup(rule->name);
	a->description = strdup(rule->description ? rule->description : rule->name);
	a->severity = rule->severity;
	a->has_scan_id = scan_id > 0;
	a->scan_id = scan_id;
	a->alert_data = json_array();
	a->dedupe_key = strdup(key);
	if (!a->rule_id || !a->title || !a->description || !a->alert_data || !a->dedupe_key) {
		de_alert_clear(a);
		return NULL;
	}
	l->len++;
	*created = true;
	return a;
}

static int add_pid(struct de_alert *a, uint32_t pid)
{
	uint32_t *np;

	for (size_t i = a->affected_processes_len; i > 0; i--)
		if (a->affected_processes[i - 1] == pid)
			return 0;
	np = realloc(a->affected_processes, (a->affected_processes_len + 1) * sizeof(uint32_t));
	if (!np)
		return -ENOMEM;
	a->affected_processes = np;
	np[a->affected_processes_len++] = pid;
	return 0;
}

/* ---- running a rule ------------------------------------------------------------ */

/* Processes one run of a rule in the parameter form takes (a rule SQLite
   cannot flatten, see the top): a batch runs it once per PID_SET of them (a
   shorter set repeats its first). */
#define PID_SET 8

/* The rule's text without its ';' restricted to the batch: "SELECT * FROM
   (<rule>\n) AS de_exec_rule WHERE pid IN (SELECT pid FROM
   temp.de_exec_pids)" (by_table), or "... IN (?1, ..., ?8)". */
static char *wrap_for_pid(const char *sql, bool by_table)
{
	size_t n = strlen(sql);
	char *out = NULL;

	while (n > 0 && (sql[n - 1] == ';' || sql[n - 1] == ' ' || sql[n - 1] == '\t' ||
			 sql[n - 1] == '\n' || sql[n - 1] == '\r'))
		n--;
	if (asprintf(&out, "SELECT * FROM (%.*s\n) AS " RULE_ALIAS " WHERE pid IN (%s)", (int)n,
		     sql,
		     by_table ? "SELECT pid FROM temp." PIDSET : "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8") <
	    0)
		return NULL;
	return out;
}

/* Whether SQLite flattened the rule into wrapped, its pid wrapper: its
   plan no longer names the rule's alias.  Only planned, never run. */
static bool flattened(sqlite3 *db, const char *wrapped)
{
	sqlite3_stmt *st = NULL;
	char *q = NULL;
	bool flat = false;
	int rc;

	if (asprintf(&q, "EXPLAIN QUERY PLAN %s", wrapped) < 0)
		return false;
	if (sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK && st) {
		flat = true;
		while (flat && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			const char *d = (const char *)sqlite3_column_text(st, 3);
			flat = d && !strstr(d, RULE_ALIAS);
		}
		flat = flat && rc == SQLITE_DONE;
	}
	sqlite3_finalize(st);
	free(q);
	return flat;
}

static uint64_t fnv1a(const char *s, bool for_pid)
{
	uint64_t h = for_pid ? 0x84222325cbf29ce4ULL : 0xcbf29ce484222325ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

/* Validate and prepare sql (for_pid: its pid-restricted form, or NULL in *out
 * when its rows carry no pid; *by_table says which form, see the top). */
static int prepare_rule(struct de_engine *e, const char *sql, bool for_pid, sqlite3_stmt **out,
			bool *by_table, struct de_error *err)
{
	sqlite3_stmt *st = NULL;
	struct de_error terr = {0};
	unsigned depth;
	char *w;
	int rc;

	*out = NULL;
	*by_table = false;
	/* the rule alone first: it must pass without any help */
	if ((rc = de_validator_prepare(e->v, e->db, sql, &st, err)) < 0 || !for_pid) {
		*out = st;
		return rc;
	}
	/* only rules whose rows carry a pid concern single processes */
	int pidcol = col_index(st, "pid");
	sqlite3_finalize(st);
	if (pidcol < 0)
		return 0;
	/* the restricted query nests one level deeper than the rule itself */
	depth = de_validator_max_nesting(e->v);
	de_validator_with_max_nesting(e->v, depth + 1);
	if (!(w = wrap_for_pid(sql, true))) {
		rc = de_error_set(err, DE_ERR_DETECTION, ENOMEM, "out of memory");
		goto out;
	}
	if (de_validator_prepare_for_pids(e->v, e->db, w, out, &terr) == 0 && flattened(e->db, w)) {
		*by_table = true;
		rc = 0;
		goto out;
	}
	/* not flattened (or refused: the older form says why, if it fails too) */
	sqlite3_finalize(*out);
	*out = NULL;
	free(w);
	if (!(w = wrap_for_pid(sql, false))) {
		rc = de_error_set(err, DE_ERR_DETECTION, ENOMEM, "out of memory");
		goto out;
	}
	rc = de_validator_prepare(e->v, e->db, w, out, err);
out:
	de_validator_with_max_nesting(e->v, depth);
	free(w);
	return rc;
}

/*
 * The statement for sql in the mode asked, from the cache or validated and
 * prepared now (and cached), with its column indices.  (*out)->st NULL: a
 * pid run of a rule without a pid column.  The statement stays the cache's:
 * reset it after its run.
 */
/* The cache entry of sql in the mode asked, or NULL; *h its hash when it
   had to be computed (else left alone). */
static struct cached_stmt *cache_find(struct de_engine *e, const char *sql, bool for_pid,
				      uint64_t *h)
{
	struct cached_stmt *c;
	uint64_t hh;

	/* a rule set runs again and again with the same texts: found by the
	   caller's pointer (and the text compared), its hash is not needed;
	   hashing the whole text on every run was 6% of a per-process run */
	for (size_t i = 0; i < e->ncache; i++) {
		c = &e->cache[i];
		if (c->seen == (uintptr_t)sql && c->for_pid == for_pid && strcmp(c->sql, sql) == 0)
			return c;
	}
	hh = fnv1a(sql, for_pid);
	if (h)
		*h = hh;
	for (size_t i = 0; i < e->ncache; i++) {
		c = &e->cache[i];
		if (c->hash == hh && c->for_pid == for_pid && strcmp(c->sql, sql) == 0) {
			c->seen = (uintptr_t)sql;
			return c;
		}
	}
	return NULL;
}

/* Whether column col of st is processes.pid itself (needs SQLite's column
   metadata, which Debian's build has). */
static bool is_processes_pid(sqlite3_stmt *st, int col)
{
	const char *db = sqlite3_column_database_name(st, col);
	const char *tab = sqlite3_column_table_name(st, col);
	const char *name = sqlite3_column_origin_name(st, col);

	return db && tab && name && strcmp(db, "main") == 0 && strcasecmp(tab, "processes") == 0 &&
	       strcasecmp(name, "pid") == 0;
}

/*
 * Whether the filter shape sqltok found in c's text is one the prefilter
 * can test (see the top).  A plain filter's row is a row of processes, its
 * pid the row's: it has rows for a pid iff its WHERE holds on that pid's
 * row.  A filter over any FROM clause has rows for a pid iff its WHERE
 * holds on some row of that FROM whose pid column's reference has that
 * value: the prefilter restricts by the same reference, which must be
 * the statement's column pid (the select list has no *, so its items are
 * the statement's columns).
 */
static bool is_filter(const struct cached_stmt *c)
{
	if (c->shape.simple)
		return is_processes_pid(c->st, c->pidcol);
	return c->shape.pid_item == c->pidcol && c->shape.items == sqlite3_column_count(c->st);
}

static int get_stmt(struct de_engine *e, const char *sql, bool for_pid,
		    const struct cached_stmt **out, struct de_error *err)
{
	uint64_t h = 0;
	struct cached_stmt *c;
	sqlite3_stmt *st;
	bool by_table;
	int rc;

	if ((c = cache_find(e, sql, for_pid, &h))) {
		*out = c;
		return 0;
	}
	if ((rc = prepare_rule(e, sql, for_pid, &st, &by_table, err)) < 0)
		return rc;
	if (e->ncache >= ENGINE_MAX_CACHED)
		cache_clear(e); /* a caller with ever new rules: start over */
	if (e->ncache == e->capcache) {
		size_t nc = e->capcache ? e->capcache * 2 : 64;
		struct cached_stmt *n = realloc(e->cache, nc * sizeof(*n));
		if (!n) {
			sqlite3_finalize(st);
			return de_error_set(err, DE_ERR_DETECTION, ENOMEM, "out of memory");
		}
		e->cache = n;
		e->capcache = nc;
	}
	c = &e->cache[e->ncache];
	if (!(c->sql = strdup(sql))) {
		sqlite3_finalize(st);
		return de_error_set(err, DE_ERR_DETECTION, ENOMEM, "out of memory");
	}
	c->hash = h;
	c->seen = (uintptr_t)sql;
	c->for_pid = for_pid;
	c->by_table = by_table;
	c->st = st;
	c->pidcol = st ? col_index(st, "pid") : -1;
	c->namecol = st ? col_index(st, "name") : -1;
	c->execol = st ? col_index(st, "executable_path") : -1;
	c->filter = for_pid && by_table && st && c->pidcol >= 0 &&
		    de_sqltok_filter(sql, strlen(sql), &c->shape) == 0 && is_filter(c);
	e->ncache++;
	*out = c;
	return 0;
}

/* Step one of the engine's own statements once and reset it: its result. */
static int step_once(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc;
}

/*
 * Put pids[0..n) (duplicates allowed) in temp.de_exec_pids for the pid runs
 * that follow, or leave the table marked unfilled (those runs then fail).
 */
static void pidset_fill(struct de_engine *e, const uint32_t *pids, size_t n)
{
	int rc = step_once(e->set_clear);

	for (size_t i = 0; rc == SQLITE_DONE && i < n; i++) {
		if (sqlite3_bind_int64(e->set_add, 1, pids[i]) != SQLITE_OK)
			rc = SQLITE_ERROR;
		else
			rc = step_once(e->set_add);
	}
	e->set_filled = rc == SQLITE_DONE;
}

/* Empty the cache if the schema changed since it was filled (see the top). */
static void check_schema(struct de_engine *e)
{
	int64_t v = -1;

	if (!e->schema_st && sqlite3_prepare_v2(e->db, "PRAGMA schema_version", -1, &e->schema_st,
						NULL) != SQLITE_OK)
		e->schema_st = NULL;
	if (e->schema_st && sqlite3_step(e->schema_st) == SQLITE_ROW)
		v = sqlite3_column_int64(e->schema_st, 0);
	if (e->schema_st)
		sqlite3_reset(e->schema_st);
	if (v < 0 || v != e->schema) /* unknown counts as changed */
		cache_clear(e);
	e->schema = v;
}

static int fail(struct de_rule_result *res, const struct de_rule *rule, int code, const char *msg)
{
	de_error_set(&res->error, DE_ERR_DETECTION, code, "rule %s: %s", rule->id, msg);
	res->status = -(code ? code : EINVAL);
	return res->status;
}

/*
 * de_engine_run_rule over the whole snapshot (pids NULL) or restricted to
 * pids[0..npids) (each process's alerts apart, as one run per process
 * would make them), the schema already checked by the caller when checked
 * is set (once for a whole run of rules).
 */
static int run_rule(struct de_engine *e, const struct de_rule *rule, int64_t scan_id,
		    const uint32_t *pids, size_t npids, struct de_alert_list *alerts,
		    struct de_rule_result *res, bool checked)
{
	const struct cached_stmt *cs = NULL;
	sqlite3_stmt *st = NULL;
	struct de_guard g = {0};
	struct de_error perr = {0};
	struct de_buf key = DE_BUF_INIT(MAX_KEY);
	size_t first = alerts->len, nkey;
	int keycols[32], pidcol, step = SQLITE_DONE;
	int64_t t0 = mono_us();
	bool stopped = false, params;

	memset(res, 0, sizeof(*res));
	res->rule_id = rule->id;
	res->ran = true;
	if (!checked)
		check_schema(e);
	if (get_stmt(e, rule->sql_query, pids != NULL, &cs, &perr) < 0 || !cs)
		return fail(res, rule, perr.code ? perr.code : ENOMEM, perr.message);
	if (!(st = cs->st)) { /* no pid column: not a single-process rule */
		res->ran = false;
		return 0;
	}
	if (cs->by_table && !e->set_filled)
		return fail(res, rule, EIO, "the batch's pid table could not be written");
	params = pids && !cs->by_table;
	pidcol = cs->pidcol;
	if (rule->dedupe_key_fields_len) {
		nkey = rule->dedupe_key_fields_len < 32 ? rule->dedupe_key_fields_len : 32;
		for (size_t i = 0; i < nkey; i++)
			keycols[i] = col_index(st, rule->dedupe_key_fields[i]);
	} else {
		nkey = 2;
		keycols[0] = cs->namecol;
		keycols[1] = cs->execol;
	}
	/* one run over the whole batch (or snapshot), or one per PID_SET pids */
	for (size_t at = 0; !stopped && res->status == 0 && (params ? at < npids : at == 0);
	     at += PID_SET) {
		for (int k = 0; params && k < PID_SET; k++) {
			size_t i = at + (size_t)k < npids ? at + (size_t)k : at;
			if (sqlite3_bind_int64(st, k + 1, pids[i]) != SQLITE_OK) {
				sqlite3_reset(st);
				de_buf_free(&key);
				return fail(res, rule, EIO, "cannot bind the pid");
			}
		}
		de_validator_arm(e->v, e->db, &g);
		e->stats.statements++;
		while ((step = sqlite3_step(st)) == SQLITE_ROW) {
			struct de_alert *a;
			int64_t rowpid = -1;
			bool created;

			res->rows++;
			if (pidcol >= 0 && sqlite3_column_type(st, pidcol) == SQLITE_INTEGER)
				rowpid = sqlite3_column_int64(st, pidcol);
			if (make_key(&key, rule, st, keycols, nkey) < 0) {
				fail(res, rule, ENOMEM, "out of memory");
				break;
			}
			if (alerts->len - first >= DE_DETECT_MAX_ALERTS &&
			    !alert_find(alerts, first, key.p, pids ? rowpid : -1)) {
				/* only rows of existing alerts may still be counted */
				char m[128];
				snprintf(m, sizeof(m),
					 "stopped: more than %d distinct alerts in one run; make "
					 "the rule more specific",
					 DE_DETECT_MAX_ALERTS);
				fail(res, rule, E2BIG, m);
				stopped = true;
				break;
			}
			a = alert_for(alerts, first, key.p, pids ? rowpid : -1, rule, scan_id,
				      &created);
			if (!a) {
				fail(res, rule, ENOMEM, "out of memory");
				break;
			}
			if (rowpid >= 0 && rowpid <= UINT32_MAX) {
				if (add_pid(a, (uint32_t)rowpid) < 0) {
					fail(res, rule, ENOMEM, "out of memory");
					break;
				}
				a->process_count = (int32_t)a->affected_processes_len;
			} else if (pidcol < 0 && a->process_count < INT32_MAX) {
				a->process_count++; /* no pid column: count rows */
			}
			if (json_array_size(a->alert_data) < DE_DETECT_MAX_ROWS) {
				json_t *row = de_row_json(st);
				if (!row || json_array_append_new(a->alert_data, row) < 0) {
					fail(res, rule, ENOMEM, "out of memory");
					break;
				}
			}
		}
		de_validator_disarm(e->db, &g);
		if (res->status == 0 && step != SQLITE_DONE) {
			de_validator_step_error(e->db, &g, step, &perr);
			fail(res, rule, perr.code, perr.message);
			stopped = true;
		}
		sqlite3_reset(st);
	}
	de_buf_free(&key);
	res->elapsed_us = mono_us() - t0;
	for (size_t i = first; i < alerts->len; i++) {
		struct de_alert *a = &alerts->items[i];
		a->has_rule_execution_time_ms = true;
		a->rule_execution_time_ms = res->elapsed_us / 1000;
		if (res->status < 0) {
			/* cut short: keep what was found, say it is partial */
			char *d = NULL;
			a->incomplete = true;
			if (asprintf(&d, "%s [incomplete: %s; more processes may match]",
				     a->description, res->error.message) >= 0) {
				free(a->description);
				a->description = d;
			}
		}
	}
	if (res->status < 0 && !stopped) {
		/* out of memory mid-way: drop the partial alerts of this rule */
		for (size_t i = first; i < alerts->len; i++)
			de_alert_clear(&alerts->items[i]);
		alerts->len = first;
	}
	res->alerts = alerts->len - first;
	return res->status;
}

int de_engine_run_rule(struct de_engine *e, const struct de_rule *rule, int64_t scan_id,
		       const uint32_t *pid, struct de_alert_list *alerts,
		       struct de_rule_result *res)
{
	int rc;

	if (pid)
		pidset_fill(e, pid, 1);
	rc = run_rule(e, rule, scan_id, pid, pid ? 1 : 0, alerts, res, false);
	e->set_filled = false;
	return rc;
}

/* ---- the prefilter (see the top) ---------------------------------------------- */

/* *p reallocated to n elements of size bytes: false (and *p as it was) on ENOMEM. */
static bool grow(void *p, size_t n, size_t size)
{
	void *np = realloc(*(void **)p, n * size);

	if (np)
		*(void **)p = np;
	return np != NULL;
}

/* The batch's scratch arrays for n rules: 0 or -ENOMEM. */
static int scratch_reserve(struct de_engine *e, size_t n)
{
	if (n <= e->sc_cap)
		return 0;
	if (!grow(&e->sc_key, n, sizeof(*e->sc_key)) ||
	    !grow(&e->sc_rule, n, sizeof(*e->sc_rule)) ||
	    !grow(&e->sc_run, n, sizeof(*e->sc_run)) || !grow(&e->sc_hit, n, sizeof(*e->sc_hit)) ||
	    !grow(&e->sc_share, n, sizeof(*e->sc_share)))
		return -ENOMEM; /* the grown ones stay, sc_cap as it was */
	e->sc_cap = n;
	return 0;
}

/* The enabled rules the prefilter may test, already in the cache (a rule
   seen for the first time runs alone once): their cache indices in
   sc_key, their rule indices in sc_rule; how many. */
static size_t pf_members(struct de_engine *e, const struct de_rule *rules, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		const struct cached_stmt *c;
		if (!rules[i].enabled || !rules[i].sql_query ||
		    !(c = cache_find(e, rules[i].sql_query, true, NULL)) || !c->filter)
			continue;
		e->sc_key[k] = (size_t)(c - e->cache);
		e->sc_rule[k++] = i;
	}
	return k;
}

/*
 * Append a rule's WHERE expression e[0..n) to b, each list of literals
 * after IN given one more element, a copy of its first that names the
 * row's pid: `x IN ('a', 'b', 'c', coalesce('a', pid))`.  Its value is
 * the first element's whatever the row, so the IN means what it meant,
 * but the list is no longer constant, and SQLite tests it by comparisons
 * instead of building an ephemeral b-tree of it every run (sqltok.h).
 * 0, or -ENOMEM / -E2BIG from the buffer.
 */
static int pf_expr(struct de_buf *b, const char *e, size_t n, const char *pid, size_t pidlen)
{
	struct de_sql_inlist in[PF_MAX_LISTS];
	size_t k = de_sqltok_in_lists(e, n, in, PF_MAX_LISTS), at = 0;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < k && i < PF_MAX_LISTS; i++) {
		rc = de_buf_append(b, e + at, in[i].close_off - at);
		if (rc == 0)
			rc = de_buf_puts(b, ", coalesce(");
		if (rc == 0)
			rc = de_buf_append(b, e + in[i].first_off, in[i].first_len);
		if (rc == 0)
			rc = de_buf_puts(b, ", ");
		if (rc == 0)
			rc = de_buf_append(b, pid, pidlen);
		if (rc == 0)
			rc = de_buf_puts(b, ")");
		at = in[i].close_off;
	}
	return rc ? rc : de_buf_append(b, e + at, n - at);
}

/* The text of one prefilter statement over the members at positions
   pos[0..m) of key (same FROM, same_from): one CASE column per member, each rule's
   expression in parentheses and followed by a newline (it may end in a --
   comment), over the batch's pids.  NULL on ENOMEM or E2BIG. */
static char *pf_text(struct de_engine *e, const size_t *key, const size_t *pos, size_t m)
{
	struct de_buf b = DE_BUF_INIT(DE_VALIDATOR_MAX_SQL);
	const struct cached_stmt *c0 = &e->cache[key[pos[0]]];
	/* the rows' pid: processes.pid, or the members' own reference */
	const char *pid = c0->shape.simple ? "pid" : c0->sql + c0->shape.pid_off;
	size_t pidlen = c0->shape.simple ? 3 : c0->shape.pid_len;
	int rc = de_buf_puts(&b, "SELECT ");

	for (size_t j = 0; rc == 0 && j < m; j++) {
		const struct cached_stmt *c = &e->cache[key[pos[j]]];
		rc = de_buf_puts(&b, j ? ", CASE WHEN (" : "CASE WHEN (");
		if (rc == 0)
			rc = pf_expr(&b, c->sql + c->shape.expr_off, c->shape.expr_len, pid,
				     pidlen);
		if (rc == 0)
			rc = de_buf_puts(&b, "\n) THEN 1 ELSE 0 END");
	}
	if (rc == 0 && c0->shape.simple) {
		rc = de_buf_puts(&b, " FROM main.processes");
		if (rc == 0 && c0->shape.alias_len && (rc = de_buf_puts(&b, " AS ")) == 0)
			rc = de_buf_append(&b, c0->sql + c0->shape.alias_off, c0->shape.alias_len);
	} else if (rc == 0) {
		rc = de_buf_puts(&b, " FROM ");
		if (rc == 0)
			rc = de_buf_append(&b, c0->sql + c0->shape.from_off, c0->shape.from_len);
	}
	if (rc == 0)
		rc = de_buf_puts(&b, "\n WHERE ");
	if (rc == 0)
		rc = de_buf_append(&b, pid, pidlen);
	if (rc == 0)
		rc = de_buf_puts(&b, " IN (SELECT pid FROM temp." PIDSET ")");
	if (rc < 0) {
		de_buf_free(&b);
		return NULL;
	}
	return b.p;
}

static bool same_text(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

/* Whether a and b can share a statement: plain filters with the same
   alias, or filters with the same FROM clause and pid reference. */
static bool same_from(const struct cached_stmt *a, const struct cached_stmt *b)
{
	const struct de_sql_filter *x = &a->shape, *y = &b->shape;

	if (x->simple != y->simple)
		return false;
	if (x->simple)
		return same_text(a->sql + x->alias_off, x->alias_len, b->sql + y->alias_off,
				 y->alias_len);
	return same_text(a->sql + x->from_off, x->from_len, b->sql + y->from_off, y->from_len) &&
	       same_text(a->sql + x->pid_off, x->pid_len, b->sql + y->pid_off, y->pid_len);
}

/* The prefilter statement for the members at pos[0..m) of pf's key,
   validated (NULL: it will not prepare). */
static sqlite3_stmt *pf_prepare(struct de_engine *e, const size_t *pos, size_t m)
{
	struct de_error perr = {0};
	sqlite3_stmt *st = NULL;
	char *sql = pf_text(e, e->pf.key, pos, m);

	if (sql) {
		/* the pid subquery nests one level below the rules' own text */
		unsigned depth = de_validator_max_nesting(e->v);
		de_validator_with_max_nesting(e->v, depth + 1);
		if (de_validator_prepare_for_pids(e->v, e->db, sql, &st, &perr) < 0)
			st = NULL;
		de_validator_with_max_nesting(e->v, depth);
		free(sql);
	}
	return st;
}

/*
 * Prepare the statement for the members at pos[0..m) of pf's key and add it
 * as a group.  If it will not prepare, each member is tried alone (probe),
 * and those that fail alone leave the set: their expression does not stand
 * outside their statement (it names a result column's alias...), and
 * their cache entries stop being filters.  If the others still fail
 * together (too big a statement), they are split in halves.  -ENOMEM when
 * memory runs out (the set is then unusable).
 */
static int pf_group_add(struct de_engine *e, size_t *pos, size_t m, bool probe)
{
	struct pf_set *pf = &e->pf;
	sqlite3_stmt *st;
	size_t good = 0;
	int rc;

	if (!m)
		return 0;
	if ((st = pf_prepare(e, pos, m))) {
		struct pf_group *ng = realloc(pf->groups, (pf->ngroups + 1) * sizeof(*ng));
		size_t *p = malloc(m * sizeof(*p));
		if (ng)
			pf->groups = ng;
		if (!ng || !p) {
			sqlite3_finalize(st);
			free(p);
			return -ENOMEM;
		}
		memcpy(p, pos, m * sizeof(*p));
		pf->groups[pf->ngroups++] = (struct pf_group){st, p, m};
		return 0;
	}
	if (m == 1) {
		e->cache[pf->key[pos[0]]].filter = false;
		return 0;
	}
	if (probe) {
		for (size_t j = 0; j < m; j++) {
			if ((st = pf_prepare(e, &pos[j], 1)))
				pos[good++] = pos[j];
			else
				e->cache[pf->key[pos[j]]].filter = false;
			sqlite3_finalize(st);
		}
		if (good < m)
			return pf_group_add(e, pos, good, false);
	}
	if ((rc = pf_group_add(e, pos, m / 2, false)) < 0)
		return rc;
	return pf_group_add(e, pos + m / 2, m - m / 2, false);
}

/*
 * Build the prefilter for the members key[0..k) (cache indices): one
 * statement per alias, PF_MAX_RULES rules and PF_MAX_TEXT bytes of
 * expressions at most each.  Members that did not fit in any statement
 * are left out of the set's key (and are no longer filters), so the next
 * batch finds the set as built.
 */
static void pf_build(struct de_engine *e, const size_t *key, size_t k)
{
	struct pf_set *pf = &e->pf;
	size_t *pos = malloc(k * sizeof(*pos)), nk = 0;
	bool *taken = calloc(k, sizeof(*taken));
	int rc = 0;

	pf_clear(pf);
	e->stats.prefilter_builds++;
	if (!pos || !taken || !(pf->key = malloc(k * sizeof(*pf->key)))) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(pf->key, key, k * sizeof(*key));
	pf->nkey = k;
	for (size_t p = 0; rc == 0 && p < k; p++) {
		const struct cached_stmt *c = &e->cache[key[p]];
		size_t m = 0, text = 0;
		if (taken[p])
			continue;
		for (size_t q = p; q < k && m < PF_MAX_RULES; q++) {
			const struct cached_stmt *d = &e->cache[key[q]];
			if (taken[q] || !same_from(c, d))
				continue;
			if (m && text + d->shape.expr_len > PF_MAX_TEXT)
				break;
			text += d->shape.expr_len;
			taken[q] = true;
			pos[m++] = q;
		}
		rc = pf_group_add(e, pos, m, true);
	}
	if (rc < 0)
		goto out;
	/* drop the members no statement took: renumber the groups' positions */
	for (size_t p = 0; p < k; p++) {
		if (!e->cache[key[p]].filter)
			continue;
		for (size_t g = 0; g < pf->ngroups; g++)
			for (size_t j = 0; j < pf->groups[g].n; j++)
				if (pf->groups[g].pos[j] == p)
					pf->groups[g].pos[j] = nk;
		pf->key[nk++] = key[p];
	}
	pf->nkey = nk;
	pf->gen = e->gen;
	pf->built = true;
out:
	if (rc < 0)
		pf_clear(pf);
	free(pos);
	free(taken);
}

/*
 * Run the prefilter over the batch (the pid table filled): sc_run[i] says
 * whether rule i must still run, sc_share[i] its share of the prefilter's
 * time.  A rule whose every CASE was 0 has no row for any pid of the
 * batch; every rule of a statement that failed (an error, the time or
 * memory guard, an interrupt) or was slow runs alone.
 */
static void pf_run(struct de_engine *e, const struct de_rule *rules, size_t n)
{
	struct pf_set *pf = &e->pf;
	size_t k;

	for (size_t i = 0; i < n; i++) {
		e->sc_run[i] = true;
		e->sc_share[i] = 0;
	}
	if (!(k = pf_members(e, rules, n)))
		return;
	if (!pf->built || pf->gen != e->gen || pf->nkey != k ||
	    memcmp(pf->key, e->sc_key, k * sizeof(*e->sc_key)) != 0) {
		/* a new rule set (or a first batch, or the cache started over) */
		pf_build(e, e->sc_key, k);
		k = pf_members(e, rules, n); /* without those that fit nowhere */
		if (!pf->built || pf->nkey != k ||
		    memcmp(pf->key, e->sc_key, k * sizeof(*e->sc_key)) != 0)
			return;
	}
	for (size_t g = 0; g < pf->ngroups; g++) {
		const struct pf_group *gr = &pf->groups[g];
		struct de_guard guard = {0};
		int64_t t0 = mono_us(), t;
		int step;

		for (size_t j = 0; j < gr->n; j++)
			e->sc_hit[j] = false;
		/* (a run that recompiled the statement, expired by a validation
		   since, is slow for that reason: not judged by its time) */
		sqlite3_stmt_status(gr->st, SQLITE_STMTSTATUS_REPREPARE, 1);
		de_validator_arm(e->v, e->db, &guard);
		while ((step = sqlite3_step(gr->st)) == SQLITE_ROW)
			for (size_t j = 0; j < gr->n; j++)
				if (!e->sc_hit[j] && sqlite3_column_int(gr->st, (int)j))
					e->sc_hit[j] = true;
		de_validator_disarm(e->db, &guard);
		sqlite3_reset(gr->st);
		t = mono_us() - t0;
		e->stats.statements++;
		e->stats.prefilter_runs++;
		bool ok = step == SQLITE_DONE &&
			  (e->pf_slow_us < 0 || t < e->pf_slow_us ||
			   sqlite3_stmt_status(gr->st, SQLITE_STMTSTATUS_REPREPARE, 0) > 0);
		if (!ok)
			e->stats.prefilter_fallbacks++;
		for (size_t j = 0; j < gr->n; j++) {
			size_t i = e->sc_rule[gr->pos[j]];
			/* an inconclusive run is nobody's time: the rules' own runs
			   are measured alone, as without the prefilter */
			e->sc_share[i] = ok ? t / (int64_t)gr->n : 0;
			e->sc_run[i] = !ok || e->sc_hit[j];
			if (!e->sc_run[i])
				e->stats.prefilter_skipped++;
		}
	}
}

static int run_all(struct de_engine *e, const struct de_rule *rules, size_t n, int64_t scan_id,
		   const uint32_t *pids, size_t npids, struct de_alert_list *alerts,
		   struct de_rule_result *results)
{
	int failed = 0;
	bool pre;

	check_schema(e);
	if (pids)
		pidset_fill(e, pids, npids);
	pre = pids && e->set_filled && e->prefilter && scratch_reserve(e, n) == 0;
	if (pre)
		pf_run(e, rules, n);
	for (size_t i = 0; i < n; i++) {
		struct de_rule_result local, *res = results ? &results[i] : &local;
		memset(res, 0, sizeof(*res));
		res->rule_id = rules[i].id;
		if (!rules[i].enabled)
			continue;
		if (pre && !e->sc_run[i]) { /* no row for any pid of the batch */
			res->ran = true;
			res->elapsed_us = e->sc_share[i];
			continue;
		}
		if (run_rule(e, &rules[i], scan_id, pids, npids, alerts, res, true) < 0)
			failed++;
		if (pre)
			res->elapsed_us += e->sc_share[i];
	}
	e->set_filled = false;
	return failed;
}

void de_engine_with_prefilter(struct de_engine *e, bool on)
{
	e->prefilter = on;
}

void de_engine_with_prefilter_slow(struct de_engine *e, int64_t slow_us)
{
	e->pf_slow_us = slow_us;
}

void de_engine_get_stats(const struct de_engine *e, struct de_engine_stats *out)
{
	*out = e->stats;
}

const char *de_engine_prefilter_sql(const struct de_engine *e, size_t i)
{
	if (!e->pf.built || i >= e->pf.ngroups)
		return NULL;
	return sqlite3_sql(e->pf.groups[i].st);
}

int de_engine_run(struct de_engine *e, const struct de_rule *rules, size_t n, int64_t scan_id,
		  struct de_alert_list *alerts, struct de_rule_result *results)
{
	return run_all(e, rules, n, scan_id, NULL, 0, alerts, results);
}

int de_engine_begin_batch(struct de_engine *e, struct de_error *err)
{
	/* prepared at open, outside any validation: no authorizer applies */
	if (step_once(e->begin) != SQLITE_DONE)
		return de_error_set(err, DE_ERR_DETECTION, EIO, "cannot begin a read: %s",
				    sqlite3_errmsg(e->db));
	return 0;
}

void de_engine_end_batch(struct de_engine *e)
{
	if (!sqlite3_get_autocommit(e->db))
		step_once(e->commit);
}

int de_engine_run_pid(struct de_engine *e, const struct de_rule *rules, size_t n, uint32_t pid,
		      int64_t scan_id, struct de_alert_list *alerts, struct de_rule_result *results)
{
	return run_all(e, rules, n, scan_id, &pid, 1, alerts, results);
}

int de_engine_run_pids(struct de_engine *e, const struct de_rule *rules, size_t n,
		       const uint32_t *pids, size_t npids, int64_t scan_id,
		       struct de_alert_list *alerts, struct de_rule_result *results)
{
	if (!npids) {
		for (size_t i = 0; results && i < n; i++) {
			memset(&results[i], 0, sizeof(results[i]));
			results[i].rule_id = rules[i].id;
		}
		return 0;
	}
	return run_all(e, rules, n, scan_id, pids, npids, alerts, results);
}
