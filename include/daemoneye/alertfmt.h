/*
 * alertfmt.h — an Alert in the formats people and SIEMs already ingest,
 * one record each, never spanning lines:
 *
 *   human  one line for a person (time, SEVERITY, title, rule, pids, the
 *          first process), severity coloured when asked; everything from a
 *          process escaped (de_escape_text)
 *   json   the Alert model as in the seed (de_alert_to_json), compact
 *   ecs    Elastic Common Schema 8.x: @timestamp, event.kind=alert,
 *          rule.*, process.* with process.parent, host.*, user.id,
 *          observer.*, and daemoneye.* for what ECS has no field for
 *   cef    ArcSight Common Event Format 0: header fields escape '\' and '|'
 *          (line breaks, which the header may not hold, become spaces);
 *          extension values escape '\' and '=', line feeds as \n and
 *          carriage returns as \r; other control characters become
 *          spaces; invalid UTF-8 becomes U+FFFD.  Severity 3/5/8/10
 *   ocsf   OCSF 1.1 Detection Finding (class_uid 2004, category_uid 2):
 *          finding_info with the rule as its analytic, evidences with the
 *          processes, severity_id 2..5, status New (Resolved for kind
 *          "resolved")
 *
 * Process fields come from the alert's context (what the alert manager
 * looked up in the store) and, failing that, from its first row.
 *
 * Ownership: renderers append to a caller's de_buf; nothing is retained.
 */
#ifndef DAEMONEYE_ALERTFMT_H
#define DAEMONEYE_ALERTFMT_H

#include <stdbool.h>
#include <stddef.h>

#include "daemoneye/alert.h"
#include "daemoneye/buf.h"

enum de_alertfmt { DE_FMT_HUMAN = 0, DE_FMT_JSON, DE_FMT_ECS, DE_FMT_CEF, DE_FMT_OCSF, DE_FMT_MAX };

/* "human", "json", "ecs", "cef", "ocsf". */
const char *de_alertfmt_name(enum de_alertfmt f);
/* Parse a format name ("text" is accepted for human).  0 or -EINVAL. */
int de_alertfmt_parse(const char *s, enum de_alertfmt *out);

struct de_alertfmt_opts {
	bool color;	      /* human: ANSI colour on the severity */
	const char *hostname; /* the host the alert is about (NULL: gethostname()) */
	/* json: the alert's JSON values already written (the outbox's), or NULL */
	const struct de_alert_json_text *json;
};

/*
 * Append the alert in format f to out (no trailing newline).  0, -ENOMEM,
 * -E2BIG (the buffer's cap), -EINVAL (an unknown format).
 */
int de_alertfmt_render(enum de_alertfmt f, const struct de_alert *a,
		       const struct de_alertfmt_opts *o, struct de_buf *out);

/* CEF escaping of the n bytes at s, appended to out (see above). 0 or -errno. */
int de_cef_escape_header(struct de_buf *out, const char *s, size_t n);
int de_cef_escape_ext(struct de_buf *out, const char *s, size_t n);
/* CEF severity 0..10 of a severity. */
int de_cef_severity(enum de_severity s);

/* The host name (gethostname, cached after the first call; "localhost" if none). */
const char *de_alertfmt_hostname(void);

#endif
