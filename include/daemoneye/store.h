/*
 * store.h — the event store: SQLite (WAL) holding the current process
 * snapshot, the scans and the alerts.  The seed's EventStore.
 *
 * `processes` is the current snapshot, one row per live process with every
 * ProcessRecord column (command_line as one text column of the arguments
 * joined by spaces, argv as a JSON array in `argv_json`), plus the derived
 * columns exe_deleted and exe_replaced.  This is what detection rules see.
 *
 * Ownership: the store is opaque; de_store_close() accepts NULL.
 */
#ifndef DAEMONEYE_STORE_H
#define DAEMONEYE_STORE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemoneye/error.h"
#include "daemoneye/model.h"

/* The seed's EventStoreConfig. */
struct de_store_config {
	const char *path;     /* database file */
	uint64_t max_size_mb; /* size cap */
	bool wal_mode;	      /* journal_mode=WAL */
	uint32_t max_connections;
	bool read_only; /* open for reading only (the CLI) */
};

struct de_store;

#define DE_STORE_SCHEMA_VERSION 1

/*
 * Open (and, unless read_only, create and migrate) the store.  A file that
 * is not a SQLite database, or carries a newer schema version, is refused
 * with a DatabaseError; it is never overwritten.
 */
int de_store_open(const struct de_store_config *cfg, struct de_store **out, struct de_error *err);
void de_store_close(struct de_store *s);

/* Record the start of a scan; *scan_id receives its id. */
int de_store_scan_begin(struct de_store *s, int64_t started_ms, const char *source,
			int64_t *scan_id, struct de_error *err);
/* Record its end and the number of processes seen. */
int de_store_scan_end(struct de_store *s, int64_t scan_id, int64_t ended_ms, size_t count,
		      struct de_error *err);

/* Replace the current snapshot with recs, in one transaction. */
int de_store_processes(struct de_store *s, const struct de_process_record *recs, size_t n,
		       struct de_error *err);

/* Insert an alert. */
int de_store_alert(struct de_store *s, const struct de_alert *a, struct de_error *err);

/* The underlying connection (borrowed), for the detection engine. */
sqlite3 *de_store_db(struct de_store *s);

#endif
