/*
 * record.h — the seed's ProcessRecord: one process as the collector saw it,
 * with the Linux facts it read (flat, see docs/collection.md), their JSON
 * form (the seed's platform_data), and lifetime, copy and equality.
 *
 * Optional seed fields (Option<T>) are either a NULL pointer (strings,
 * JSON) or a value plus a `has_` flag (numbers).  JSON uses the seed's field
 * names; an absent optional is written as null and read back from null or a
 * missing member.  Strings that come from /proc are bytes, not always UTF-8:
 * such a string is written as valid JSON with U+FFFD in place of each invalid
 * byte, and its exact bytes go beside it in "<field>_raw" (base64; for
 * command_line an array of base64 strings), so records round-trip exactly and
 * every consumer still gets valid JSON.
 *
 * Ownership: a record owns all its pointers (malloc'd strings, jansson
 * references).  de_process_record_free releases what it owns and the
 * struct; de_process_record_clear resets one that lives on the stack; both
 * accept NULL.
 */
#ifndef DAEMONEYE_RECORD_H
#define DAEMONEYE_RECORD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemoneye/error.h"
#include "daemoneye/facts.h"
#include "daemoneye/uuid.h"

struct de_process_record {
	struct de_uuid id;	 /* unique identifier of this record */
	int64_t scan_id;	 /* scan this record belongs to */
	int64_t collection_time; /* ms since the Unix epoch */
	uint32_t pid;		 /* process ID */
	bool has_ppid;		 /* ppid is Option<u32> */
	uint32_t ppid;		 /* parent process ID */
	char *name;		 /* process name (comm); never NULL */
	char *executable_path;	 /* NULL when unknown */
	char **command_line;	 /* argv, exactly as the kernel holds it */
	size_t command_line_len; /* number of entries in command_line */
	bool has_start_time;
	int64_t start_time; /* ms since the Unix epoch */
	bool has_cpu_usage;
	double cpu_usage; /* percent of one core since the last sample */
	bool has_memory_usage;
	uint64_t memory_usage; /* resident bytes */
	char *executable_hash; /* lowercase hex SHA-256, or NULL */
	char *hash_algorithm;  /* "sha256" when hashed, else NULL */
	char *user_id;	       /* effective uid (as ps shows it), decimal, or NULL */
	bool accessible;       /* could we read the process's details */
	bool file_exists;      /* does executable_path exist on disk */
	/* Collector facts (facts.present).  The seed's platform_data is their
	 * JSON form followed by the members of platform_data below. */
	struct de_linux_facts facts;
	/* Without facts: the whole platform_data value (any JSON, NULL = None),
	 * as records parsed from JSON carry it.  With facts: NULL, or an object
	 * of extra members written after the facts' own. */
	json_t *platform_data;
};

void de_process_record_clear(struct de_process_record *r);
void de_process_record_free(struct de_process_record *r);
/*
 * An owned deep copy of src into *out (strings, argv, facts' text; the
 * platform_data JSON is shared by reference).  0, or -ENOMEM with *out
 * untouched.
 */
int de_process_record_copy(const struct de_process_record *src, struct de_process_record *out);
/*
 * Field-by-field equality (strings by bytes, JSON by json_equal).  Facts
 * compare field by field with facts; a record with facts and one with a
 * JSON platform_data compare by their platform_data JSON.
 */
bool de_process_record_equal(const struct de_process_record *a, const struct de_process_record *b);
/* Serialise to a new JSON object (caller owns the reference), NULL on ENOMEM.
 * platform_data is the facts' JSON (see de_process_record_platform_json). */
json_t *de_process_record_to_json(const struct de_process_record *r);
/*
 * The seed's platform_data of r as a JSON value: the facts as an object
 * (then the members of r->platform_data), or r->platform_data itself
 * without facts.  A new reference the caller owns (json_null() when r has
 * neither); NULL on ENOMEM.
 */
json_t *de_process_record_platform_json(const struct de_process_record *r);
/*
 * Parse a JSON object into *out (which must be zeroed or cleared).  Missing
 * required members, wrong types and out-of-range numbers are ValidationErrors
 * naming the member; *out is left cleared on failure.  platform_data is kept
 * as JSON (facts.present stays false).
 */
int de_process_record_from_json(const json_t *j, struct de_process_record *out,
				struct de_error *err);

/*
 * The facts of r as compact JSON text, byte for byte what
 * json_dumps(..., JSON_COMPACT) writes for them (the facts' members only,
 * not r->platform_data's extras).  Like snprintf: writes at most cap bytes
 * to buf (NUL-terminated when the result is shorter than cap) and returns
 * the length of the whole text; -ENOMEM (only for facts text that is not
 * valid UTF-8, which needs a scratch buffer), -EINVAL when r has no facts.
 */
long de_linux_facts_json(const struct de_process_record *r, char *buf, size_t cap);
/* ---- the process event ------------------------------------------------- */

/*
 * One exec or exit, as one type from the kernel to the store: the kernel
 * source (procevents.h) fills what it says, procmond adds the process read
 * at once, the IPC carries it, the agent queues it and the store applies
 * it (de_store_apply_events).
 */
enum de_process_event_kind { DE_PROCESS_EXEC = 1, DE_PROCESS_EXIT, DE_PROCESS_EVENT_KIND_MAX };

struct de_process_event {
	enum de_process_event_kind kind;
	uint32_t pid;			 /* the process (thread-group id) */
	int64_t time_ms;		 /* when it was seen, ms since the Unix epoch */
	uint64_t timestamp_ns;		 /* the kernel's monotonic time of it (0: unknown) */
	bool has_exit_code;		 /* exit: */
	int32_t exit_code;		 /* its wait(2) status */
	bool has_record;		 /* exec: the process as read at once (else gone already) */
	struct de_process_record record; /* owned when has_record */
};

/* Release the event's record (NULL accepted); the event is zeroed. */
void de_process_event_clear(struct de_process_event *e);

#endif
