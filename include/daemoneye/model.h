/*
 * model.h — the seed's core data models: ProcessRecord, Alert (with
 * AlertSeverity) and DetectionRule (with RuleSourceType), their JSON form,
 * and UUID v4.
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
 * Ownership: every struct owns all its pointers (malloc'd strings, jansson
 * references).  The _free functions release what the struct owns and accept
 * NULL; the _clear variants reset a struct that lives on the stack.
 */
#ifndef DAEMONEYE_MODEL_H
#define DAEMONEYE_MODEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemoneye/error.h"

/* ---- UUID v4 ----------------------------------------------------------- */

struct de_uuid {
	uint8_t bytes[16];
};

#define DE_UUID_STR_LEN 36 /* without the NUL */

/* A random (version 4, RFC 9562 variant) UUID from getrandom(2). */
int de_uuid_v4(struct de_uuid *out);
/* Lower-case canonical form into buf (at least 37 bytes). */
void de_uuid_format(const struct de_uuid *u, char buf[DE_UUID_STR_LEN + 1]);
/* Parse the canonical 8-4-4-4-12 hex form (either case). 0 or -EINVAL. */
int de_uuid_parse(const char *s, struct de_uuid *out);

/* ---- AlertSeverity ------------------------------------------------------ */

enum de_severity { DE_SEV_LOW = 0, DE_SEV_MEDIUM, DE_SEV_HIGH, DE_SEV_CRITICAL, DE_SEV_MAX };

/* "low", "medium", "high", "critical"; NULL for an invalid value. */
const char *de_severity_name(enum de_severity s);
/* Case-insensitive parse of the four names. 0, or a ValidationError. */
int de_severity_parse(const char *s, enum de_severity *out, struct de_error *err);

/* ---- RuleSourceType ----------------------------------------------------- */

enum de_rule_source { DE_RULE_BUILTIN = 0, DE_RULE_FILE, DE_RULE_USER, DE_RULE_SOURCE_MAX };

const char *de_rule_source_name(enum de_rule_source s); /* "builtin", ... */
int de_rule_source_parse(const char *s, enum de_rule_source *out, struct de_error *err);

/* ---- ProcessRecord ------------------------------------------------------ */

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
	json_t *platform_data; /* Linux facts (object), or NULL */
};

void de_process_record_clear(struct de_process_record *r);
void de_process_record_free(struct de_process_record *r);
/* Field-by-field equality (strings by bytes, JSON by json_equal). */
bool de_process_record_equal(const struct de_process_record *a, const struct de_process_record *b);
/* Serialise to a new JSON object (caller owns the reference), NULL on ENOMEM. */
json_t *de_process_record_to_json(const struct de_process_record *r);
/*
 * Parse a JSON object into *out (which must be zeroed or cleared).  Missing
 * required members, wrong types and out-of-range numbers are ValidationErrors
 * naming the member; *out is left cleared on failure.
 */
int de_process_record_from_json(const json_t *j, struct de_process_record *out,
				struct de_error *err);

/* ---- Alert -------------------------------------------------------------- */

struct de_alert {
	struct de_uuid id;
	int64_t alert_time; /* ms since the Unix epoch */
	char *rule_id;
	char *title;
	char *description;
	enum de_severity severity;
	bool has_scan_id;
	int64_t scan_id;
	uint32_t *affected_processes; /* pids */
	size_t affected_processes_len;
	int32_t process_count;
	json_t *alert_data; /* any JSON value, never NULL once built (json null ok) */
	bool has_rule_execution_time_ms;
	int64_t rule_execution_time_ms;
	char *dedupe_key;
	/* Not in the seed: true when the rule was cut short (timeout, memory)
	 * after producing these rows, so more processes may match.  "No alert"
	 * and "could not finish" are never confused.  JSON "incomplete". */
	bool incomplete;
};

void de_alert_clear(struct de_alert *a);
void de_alert_free(struct de_alert *a);
bool de_alert_equal(const struct de_alert *a, const struct de_alert *b);
json_t *de_alert_to_json(const struct de_alert *a);
int de_alert_from_json(const json_t *j, struct de_alert *out, struct de_error *err);

/* ---- DetectionRule ------------------------------------------------------ */

struct de_rule {
	char *id;
	char *name;
	char *description; /* NULL when absent */
	int32_t version;
	char *sql_query;
	bool enabled;
	enum de_severity severity;
	char *category; /* NULL when absent */
	char **tags;
	size_t tags_len;
	char *author;	    /* NULL when absent */
	int64_t created_at; /* ms since the Unix epoch */
	int64_t updated_at;
	enum de_rule_source source_type;
	char *source_path; /* NULL when absent */
	/* Not in the seed: result columns whose values (after the rule id) form
	 * each alert's dedupe key; none means name + executable_path. */
	char **dedupe_key_fields;
	size_t dedupe_key_fields_len;
};

void de_rule_clear(struct de_rule *r);
void de_rule_free(struct de_rule *r);
bool de_rule_equal(const struct de_rule *a, const struct de_rule *b);
json_t *de_rule_to_json(const struct de_rule *r);
int de_rule_from_json(const json_t *j, struct de_rule *out, struct de_error *err);

/* ---- helpers shared by the modules ------------------------------------- */

/* True when the n bytes at s are valid UTF-8 (no overlongs, no surrogates). */
bool de_utf8_valid(const char *s, size_t n);
/*
 * Render bytes for a human on a terminal: control characters, DEL, backslash
 * and invalid UTF-8 become C-style escapes (\n, \t, \x1b, \\).  Returns a
 * new string the caller frees, NULL on ENOMEM.
 */
char *de_escape_text(const char *s, size_t n);
/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t de_now_ms(void);

#endif
