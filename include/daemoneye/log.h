/*
 * log.h — structured logging to stderr for the daemoneye programs.
 *
 * Two formats: human text ("2026-11-25T08:46:00.123Z procmond[42] warn:
 * message") and JSON lines ({"ts":..,"level":..,"component":..,"pid":..,
 * "msg":..} plus any extra fields).  Messages are escaped: a process name
 * with a newline or an escape sequence cannot forge a log line or drive the
 * operator's terminal.  The library proper never logs (it returns errors);
 * only programs call these.
 *
 * de_log_warn()/de_log_error() append strerror(errno), as OpenBSD's
 * log_warn; the x variants do not.
 */
#ifndef DAEMONEYE_LOG_H
#define DAEMONEYE_LOG_H

#include <jansson.h>
#include <stdio.h>

#include "daemoneye/error.h"

enum de_log_level { DE_LOG_DEBUG = 0, DE_LOG_INFO, DE_LOG_WARN, DE_LOG_ERROR, DE_LOG_LEVEL_MAX };
enum de_log_format { DE_LOG_TEXT = 0, DE_LOG_JSON, DE_LOG_FORMAT_MAX };

/* Set the component name, threshold, format and stream (NULL: stderr). */
void de_log_init(const char *component, enum de_log_level level, enum de_log_format format,
		 FILE *stream);
void de_log_set_level(enum de_log_level level);
void de_log_set_format(enum de_log_format format);
enum de_log_level de_log_get_level(void);

/* "debug", "info", "warn", "error" <-> level; -1 when unknown. */
int de_log_level_parse(const char *s);
const char *de_log_level_name(enum de_log_level level);
int de_log_format_parse(const char *s);

/* Log at `level`; `fields` (may be NULL, borrowed) adds JSON members. */
void de_log_fields(enum de_log_level level, const json_t *fields, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void de_log(enum de_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define de_log_debug(...)  de_log(DE_LOG_DEBUG, __VA_ARGS__)
#define de_log_info(...)   de_log(DE_LOG_INFO, __VA_ARGS__)
#define de_log_warnx(...)  de_log(DE_LOG_WARN, __VA_ARGS__)
#define de_log_errorx(...) de_log(DE_LOG_ERROR, __VA_ARGS__)
/* With ": strerror(errno)" appended. */
void de_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void de_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Log a library error: "<Category>: message" at error level. */
void de_log_err(const struct de_error *err);

#endif
