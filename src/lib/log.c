/*
 * log.c — stderr logging in text or JSON lines (see log.h).  Each line is
 * built whole in memory and written with one fputs so that lines from
 * threads do not interleave.
 */
#include "daemoneye/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "daemoneye/text.h"

static struct {
	char component[64];
	enum de_log_level level;
	enum de_log_format format;
	FILE *stream;
} logger = {"daemoneye", DE_LOG_INFO, DE_LOG_TEXT, NULL};

static const char *const level_names[DE_LOG_LEVEL_MAX] = {"debug", "info", "warn", "error"};

void de_log_init(const char *component, enum de_log_level level, enum de_log_format format,
		 FILE *stream)
{
	snprintf(logger.component, sizeof(logger.component), "%s",
		 component ? component : "daemoneye");
	logger.level = level;
	logger.format = format;
	logger.stream = stream;
}

void de_log_set_level(enum de_log_level level)
{
	logger.level = level;
}

void de_log_set_format(enum de_log_format format)
{
	logger.format = format;
}

enum de_log_level de_log_get_level(void)
{
	return logger.level;
}

int de_log_level_parse(const char *s)
{
	for (int i = 0; s && i < DE_LOG_LEVEL_MAX; i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return i;
	if (s && strcasecmp(s, "warning") == 0)
		return DE_LOG_WARN;
	return -1;
}

const char *de_log_level_name(enum de_log_level level)
{
	return (int)level >= 0 && level < DE_LOG_LEVEL_MAX ? level_names[level] : "info";
}

int de_log_format_parse(const char *s)
{
	if (s && strcasecmp(s, "text") == 0)
		return DE_LOG_TEXT;
	if (s && strcasecmp(s, "json") == 0)
		return DE_LOG_JSON;
	return -1;
}

static void timestamp(char *buf, size_t n)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t l = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + l, n - l, ".%03ldZ", ts.tv_nsec / 1000000);
}

static void emit(enum de_log_level level, const json_t *fields, const char *msg)
{
	FILE *out = logger.stream ? logger.stream : stderr;
	char ts[40];

	timestamp(ts, sizeof(ts));
	if (logger.format == DE_LOG_JSON) {
		json_t *o = fields ? json_deep_copy(fields) : json_object();
		char *line;
		if (!o)
			return;
		json_object_set_new(o, "ts", json_string(ts));
		json_object_set_new(o, "level", json_string(level_names[level]));
		json_object_set_new(o, "component", json_string(logger.component));
		json_object_set_new(o, "pid", json_integer(getpid()));
		/* json_string rejects invalid UTF-8: fall back to the escaped form */
		json_t *m = json_string(msg);
		if (!m) {
			char *esc = de_escape_text(msg, strlen(msg));
			m = json_string(esc ? esc : "(unprintable)");
			free(esc);
		}
		json_object_set_new(o, "msg", m);
		line = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
		if (line) {
			fprintf(out, "%s\n", line);
			free(line);
		}
		json_decref(o);
	} else {
		char *esc = de_escape_text(msg, strlen(msg));
		char *extra = NULL;
		if (fields && json_object_size(fields))
			extra = json_dumps(fields,
					   JSON_COMPACT | JSON_ENSURE_ASCII | JSON_SORT_KEYS);
		fprintf(out, "%s %s[%d] %s: %s%s%s\n", ts, logger.component, (int)getpid(),
			level_names[level], esc ? esc : "(out of memory)", extra ? " " : "",
			extra ? extra : "");
		free(esc);
		free(extra);
	}
	(void)fflush(out); /* a log line that cannot be written has nowhere to be reported */
}

static void vlog(enum de_log_level level, const json_t *fields, int errnum, const char *fmt,
		 va_list ap) __attribute__((format(printf, 4, 0)));

static void vlog(enum de_log_level level, const json_t *fields, int errnum, const char *fmt,
		 va_list ap)
{
	char msg[4096];
	int n;

	if (level < logger.level || level >= DE_LOG_LEVEL_MAX)
		return;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (errnum && n >= 0 && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", strerror(errnum));
	emit(level, fields, msg);
}

void de_log_fields(enum de_log_level level, const json_t *fields, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(level, fields, 0, fmt, ap);
	va_end(ap);
}

void de_log(enum de_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(level, NULL, 0, fmt, ap);
	va_end(ap);
}

void de_log_warn(const char *fmt, ...)
{
	int e = errno;
	va_list ap;
	va_start(ap, fmt);
	vlog(DE_LOG_WARN, NULL, e, fmt, ap);
	va_end(ap);
}

void de_log_error(const char *fmt, ...)
{
	int e = errno;
	va_list ap;
	va_start(ap, fmt);
	vlog(DE_LOG_ERROR, NULL, e, fmt, ap);
	va_end(ap);
}

void de_log_err(const struct de_error *err)
{
	if (!err)
		return;
	de_log(DE_LOG_ERROR, "%s: %s", de_error_category_name(err->category), err->message);
}
