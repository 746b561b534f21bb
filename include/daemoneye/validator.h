/*
 * validator.h — the SQL sandbox every rule and every `daemoneye-cli query`
 * runs in: the seed's SqlValidator, built on SQLite's own parser.
 *
 * Safety rests on SQLite, never on matching SQL text.  A sandbox connection
 * is opened read-only with SQLITE_DBCONFIG_DEFENSIVE, extension loading off,
 * an untrusted schema, PRAGMA query_only (which the detection engine lifts
 * on its own connection to write its pid table, see below), and lowered
 * sqlite3_limit() values (SQL length, expression depth, compound selects,
 * LIKE pattern length, VDBE program size, attached databases = 0, bound
 * variables, value length).
 * A statement is prepared under an authorizer that allows only SELECT,
 * column reads of the rule-visible relations (de_relations()) and calls of
 * the allowlisted functions; it must be exactly one statement, a SELECT
 * that returns columns, not EXPLAIN, and sqlite3_stmt_readonly() must
 * agree.  Subqueries may nest at most `max_nesting` deep.  While it runs, a
 * progress handler enforces the timeout, and a memory budget charged to
 * the run alone (see de_validator_with_memory_limit) turns a memory-hungry
 * query into an error instead of an exhausted host.
 *
 * Errors are DetectionErrors naming the offending construct: the function,
 * the table or column (with what is available), or the statement kind.
 *
 * Ownership: a validator is opaque and freed with de_validator_free() (which
 * accepts NULL).  Connections from de_validator_open_db() are closed by the
 * caller with sqlite3_close(); statements from de_validator_prepare() are
 * finalized by the caller.
 */
#ifndef DAEMONEYE_VALIDATOR_H
#define DAEMONEYE_VALIDATOR_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "daemoneye/config.h"
#include "daemoneye/error.h"

/* ---- what rules see ----------------------------------------------------- */

struct de_column {
	const char *name;
	const char *type;	 /* SQLite declared type */
	const char *description; /* one line for `rules schema` */
};

struct de_relation {
	const char *name;
	const char *description;
	const struct de_column *columns;
	size_t ncolumns;
};

/*
 * The one list of relations (and their columns) that rules and queries may
 * read: the rule-visible part of the event store's schema description
 * (defined in src/lib/store_schema.c, beside the migrations; expose another
 * relation there).  Returns a static array of *n entries.
 */
const struct de_relation *de_relations(size_t *n);

/* ---- the validator ------------------------------------------------------ */

#define DE_VALIDATOR_DEFAULT_TIMEOUT_MS 30000
#define DE_VALIDATOR_DEFAULT_NESTING	3
#define DE_VALIDATOR_DEFAULT_MEMORY	(64ull << 20)
#define DE_VALIDATOR_MAX_SQL		100000 /* bytes of SQL text */
/* The longest value a rule may read or make (SQLITE_LIMIT_LENGTH): every
   value the store keeps for rules is bounded below it (collect.h). */
#define DE_VALIDATOR_MAX_VALUE (8u << 20)

struct de_validator;

/*
 * A validator with the defaults: the function allowlist (count, sum,
 * ..., like, and regexp with PCRE2's limits (regexp.h); no glob/match),
 * read-only, a 30 s timeout, subqueries 3 deep, 64 MiB of memory per
 * run.  NULL on ENOMEM.
 */
struct de_validator *de_validator_new(void);
void de_validator_free(struct de_validator *v);

/* Replace the function allowlist (names compared case-insensitively). */
int de_validator_with_allowed_functions(struct de_validator *v, const char *const *names, size_t n,
					struct de_error *err);
/* Read-only is the only mode daemoneye runs SQL in: false is a ValidationError. */
int de_validator_with_read_only_mode(struct de_validator *v, bool read_only, struct de_error *err);
/* Per-statement time limit in ms (0: none). */
void de_validator_with_timeout(struct de_validator *v, uint64_t timeout_ms);
/* Deepest subquery nesting allowed (a plain SELECT is depth 1). */
void de_validator_with_max_nesting(struct de_validator *v, unsigned depth);
/*
 * Memory a rule or query may take while it runs, in bytes (0: no limit).
 * SQLite's allocations go through daemoneye's allocator (installed before
 * SQLite initialises, in every program that links the validator); between
 * de_validator_arm() and de_validator_disarm() the bytes SQLite allocates
 * on that thread, net of what it frees, are charged to the run, and an
 * allocation past the limit fails (SQLITE_NOMEM: the rule stops with
 * ENOMEM).  Nothing else is limited: the store's writer, on the same
 * thread between runs, never is.
 */
void de_validator_with_memory_limit(struct de_validator *v, uint64_t bytes);

/*
 * A validator set up from the configuration: detection.rule_timeout_ms,
 * detection.max_subquery_depth, detection.memory_limit_mb.
 */
int de_validator_from_config(const struct de_config *c, struct de_validator **out,
			     struct de_error *err);

uint64_t de_validator_timeout(const struct de_validator *v);
unsigned de_validator_max_nesting(const struct de_validator *v);
/* The allowlist (borrowed), *n entries. */
const char *const *de_validator_functions(const struct de_validator *v, size_t *n);

/*
 * Open a sandbox connection: on the database file `path` (read-only; the
 * file must exist), or with path NULL on an empty in-memory database holding
 * the rule-visible relations' schema (for validating without a store).
 */
int de_validator_open_db(const struct de_validator *v, const char *path, sqlite3 **out,
			 struct de_error *err);

/*
 * A sandbox connection on the cache of a store opened with
 * de_store_config.shared_cache in this process (path its file, vfs
 * de_store_shared_vfs): with read_uncommitted, so that it reads the rows
 * the store's writer has not committed yet (de_store_hold_batches).  In
 * shared-cache mode SQLite does not honour SQLITE_OPEN_READONLY for a
 * connection that joins a writable cache: what keeps the rules from writing
 * is the authorizer and sqlite3_stmt_readonly() (above), which refuse every
 * statement but a SELECT before it is ever run, and query_only.
 */
int de_validator_open_db_shared(const struct de_validator *v, const char *path, const char *vfs,
				sqlite3 **out, struct de_error *err);

/*
 * Prepare sql on a sandbox connection with every check above.  On success
 * *out is a statement ready to bind and step under de_validator_arm().
 */
int de_validator_prepare(const struct de_validator *v, sqlite3 *db, const char *sql,
			 sqlite3_stmt **out, struct de_error *err);

/*
 * The engine's table of the pids a batch of exec-time runs covers
 * (detect.c), temp.de_exec_pids(pid INTEGER PRIMARY KEY) on its sandbox
 * connection.  Rules never read it: de_validator_prepare() denies it by
 * name, with or without columns.
 */
#define DE_VALIDATOR_PID_TABLE "de_exec_pids"

/*
 * de_validator_prepare() for a statement the engine built around a rule
 * that de_validator_prepare() accepted alone, restricting it to a batch of
 * processes: it may also read column pid of temp.DE_VALIDATOR_PID_TABLE
 * exactly once, the wrapper's one reference; a second one is denied.
 */
int de_validator_prepare_for_pids(const struct de_validator *v, sqlite3 *db, const char *sql,
				  sqlite3_stmt **out, struct de_error *err);

/*
 * The seed's validate_query: 0 if sql would be accepted (checked against
 * the rule-visible schema, without a store), else a DetectionError.
 */
int de_validator_validate_query(struct de_validator *v, const char *sql, struct de_error *err);

/* ---- running under the limits -------------------------------------------- */

struct de_guard {
	struct timespec end; /* CLOCK_MONOTONIC deadline */
	uint64_t timeout_ms;
	uint64_t memory_limit; /* bytes the run may take; 0: none */
	bool armed;
	bool expired; /* set when the progress handler stopped the statement */
};

/*
 * Start the timeout for statements on db and the run's memory budget on
 * this thread (until de_validator_disarm()).  Runs do not nest.
 */
void de_validator_arm(const struct de_validator *v, sqlite3 *db, struct de_guard *g);
void de_validator_disarm(sqlite3 *db, struct de_guard *g);
/*
 * Turn a failed sqlite3_step() result into a DetectionError that says why:
 * stopped by the timeout (ETIMEDOUT), by the memory limit (ENOMEM), a value
 * over the length limit (E2BIG), or SQLite's own message (EIO).
 */
int de_validator_step_error(sqlite3 *db, const struct de_guard *g, int step_rc,
			    struct de_error *err);

#endif
