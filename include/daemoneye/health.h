/*
 * health.h — the agent's health report: what the worker (and, through it,
 * the privileged parent) publishes in the state directory for
 * `daemoneye-cli health`, and what the CLI makes of it.
 *
 * The report is one JSON object written atomically to
 * <state_dir>/health.json (DE_HEALTH_FILE), mode 0644, so that any user
 * who may read the state directory may read it:
 *
 *   {"version": 1, "updated_at": <ms>, "stale_after_ms": <ms>,
 *    "status": "ok"|"warning"|"critical",
 *    "components": [{"name": "procmond", "status": "ok",
 *                    "summary": "pid 42, up 3h, 0 restarts, events: netlink",
 *                    "details": {...}}, ...]}
 *
 * "status" is the worst of the components'.  A report older than
 * stale_after_ms when read means nobody is updating it: de_health_read
 * then adds an "agent" component, critical, saying since when.
 *
 * Ownership: documents are jansson references the caller decrefs.
 */
#ifndef DAEMONEYE_HEALTH_H
#define DAEMONEYE_HEALTH_H

#include <jansson.h>
#include <stdint.h>

#include "daemoneye/error.h"

#define DE_HEALTH_VERSION	 1
#define DE_HEALTH_FILE		 "health.json"
#define DE_HEALTH_MAX_FILE	 (1u << 20)
#define DE_HEALTH_MAX_COMPONENTS 256

enum de_health_status {
	DE_HEALTH_OK = 0,
	DE_HEALTH_WARNING,
	DE_HEALTH_CRITICAL,
	DE_HEALTH_STATUS_MAX
};

/* "ok", "warning", "critical"; NULL for anything else. */
const char *de_health_status_name(enum de_health_status s);
/* The reverse; -EINVAL for an unknown name. */
int de_health_status_parse(const char *s, enum de_health_status *out);

/* A new report (NULL on ENOMEM). */
json_t *de_health_new(int64_t updated_ms, int64_t stale_after_ms);

/*
 * Append a component.  details (may be NULL) is an object, stolen.  The
 * report's status becomes the worst so far.  0 or -ENOMEM/-E2BIG (too many
 * components); details is released either way.
 */
int de_health_add(json_t *doc, const char *name, enum de_health_status status, const char *summary,
		  json_t *details);

/* The report's status (its worst component's). */
enum de_health_status de_health_worst(const json_t *doc);

/* Write doc to path atomically, mode 0644.  0 or -errno (DE_ERR_IO). */
int de_health_write(const char *path, const json_t *doc, struct de_error *err);

/*
 * Read the report at path and check its shape (version, components with a
 * name, a known status and a summary; at most DE_HEALTH_MAX_FILE bytes).
 * When now_ms - updated_at exceeds stale_after_ms an "agent" component,
 * critical, is added first ("not updated for ..."), and the status
 * recomputed.  0 with *out; -ENOENT/-EACCES... (DE_ERR_IO) when it cannot
 * be read; -EBADMSG (DE_ERR_VALIDATION) when it is not a report.
 */
int de_health_read(const char *path, int64_t now_ms, json_t **out, struct de_error *err);

#endif
