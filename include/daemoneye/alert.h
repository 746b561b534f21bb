/*
 * alert.h — the seed's Alert and AlertSeverity: the model (lifetime,
 * equality, JSON), a growable list of alerts as the detection engine
 * produces them, and their rendering for people (one escaped text line) and
 * machines (one JSON object).  The stdout sink writes these lines.
 *
 * Ownership: an alert owns its strings, its pid vector and its alert_data
 * reference; de_alert_free/de_alert_clear release them and accept NULL.
 * A de_alert_list owns its alerts.  Render functions return new strings
 * the caller frees.
 */
#ifndef DAEMONEYE_ALERT_H
#define DAEMONEYE_ALERT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "daemoneye/error.h"
#include "daemoneye/uuid.h"

/* ---- AlertSeverity ------------------------------------------------------ */

enum de_severity { DE_SEV_LOW = 0, DE_SEV_MEDIUM, DE_SEV_HIGH, DE_SEV_CRITICAL, DE_SEV_MAX };

/* "low", "medium", "high", "critical"; NULL for an invalid value. */
const char *de_severity_name(enum de_severity s);
/* Case-insensitive parse of the four names. 0, or a ValidationError. */
int de_severity_parse(const char *s, enum de_severity *out, struct de_error *err);

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
	/* Not in the seed (JSON members present only when set):
	 * kind: NULL for an alert; "resolved" (the process instance an alert
	 * was raised for exited or stopped matching), "summary" (repeats folded
	 * by deduplication when their window closed) or "test" (`daemoneye-cli
	 * alerts test`).
	 * context: what the alert manager knew when it raised the alert, for
	 * the sinks' formats: {"host": {...}, "processes": [{pid, start_time,
	 * instance_id, name, executable_path, command_line, user_id, ppid,
	 * parent_name, parent_executable_path}], "folded": {...},
	 * "resolves": ID, ...}. */
	char *kind;
	json_t *context;
};

/* The alert's kind as a word: "alert" when kind is NULL. */
const char *de_alert_kind(const struct de_alert *a);

void de_alert_clear(struct de_alert *a);
void de_alert_free(struct de_alert *a);
bool de_alert_equal(const struct de_alert *a, const struct de_alert *b);
json_t *de_alert_to_json(const struct de_alert *a);
/*
 * The same object appended to out as one line of compact ASCII JSON, byte
 * for byte what json_dumps(de_alert_to_json(a), JSON_COMPACT |
 * JSON_ENSURE_ASCII) writes, without building the tree.  0, -ENOMEM,
 * -E2BIG (out's cap).
 */
struct de_buf;
int de_alert_write_json(const struct de_alert *a, struct de_buf *out);
/*
 * An alert's JSON values already written as compact JSON text (as the
 * outbox stores them: de_json_dump, either escaping), each NULL when not;
 * borrowed.  Each must be a dump of the alert's value as it is.
 */
struct de_alert_json_text {
	const char *alert_data, *context;
	size_t alert_data_len, context_len;
};
/* de_alert_write_json copying the texts in pre (may be NULL) instead of dumping again. */
int de_alert_write_json_pre(const struct de_alert *a, const struct de_alert_json_text *pre,
			    struct de_buf *out);
int de_alert_from_json(const json_t *j, struct de_alert *out, struct de_error *err);

struct de_alert_list {
	struct de_alert *items; /* owned */
	size_t len;
	size_t cap;
};

/* Free every alert of the list and the list's array; the list is then empty. */
void de_alert_list_clear(struct de_alert_list *l);

/* ---- rendering ---------------------------------------------------------- */

enum de_alert_format { DE_ALERT_TEXT = 0, DE_ALERT_JSON, DE_ALERT_FORMAT_MAX };

/*
 * One line for a person: time, severity, title, rule id, pids and the first
 * matching process.  Everything that came from a process is escaped, so a
 * hostile name cannot forge lines or send terminal escapes.  `color` adds
 * ANSI colour to the severity.  NULL on ENOMEM.
 */
char *de_alert_render_text(const struct de_alert *a, bool color);
/* One compact JSON object (no newline).  NULL on ENOMEM. */
char *de_alert_render_json(const struct de_alert *a);

/* Write one alert line to f in the given format. 0 or -errno. */
int de_alert_write(FILE *f, const struct de_alert *a, enum de_alert_format fmt, bool color);

#endif
