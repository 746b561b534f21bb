/*
 * alert.h — rendering alerts for delivery.  The stdout sink lives here;
 * other sinks (file, syslog, webhook, email) join it behind the same
 * rendering functions.
 *
 * Ownership: render functions return new strings the caller frees.
 */
#ifndef DAEMONEYE_ALERT_H
#define DAEMONEYE_ALERT_H

#include <stdbool.h>
#include <stdio.h>

#include "daemoneye/model.h"

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

/* Whether colour may be used on `f`: a terminal, NO_COLOR unset, TERM not dumb. */
bool de_use_color(FILE *f);

/* Write one alert line to f in the given format. 0 or -errno. */
int de_alert_write(FILE *f, const struct de_alert *a, enum de_alert_format fmt, bool color);

#endif
