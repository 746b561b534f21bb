/*
 * alert.c — alert rendering and the stdout sink (see alert.h).
 */
#include "daemoneye/alert.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

bool de_use_color(FILE *f)
{
	const char *term = getenv("TERM");
	const char *nc = getenv("NO_COLOR");

	if (nc && *nc)
		return false;
	if (!term || strcmp(term, "dumb") == 0)
		return false;
	return isatty(fileno(f));
}

static const char *sev_color(enum de_severity s)
{
	switch (s) {
	case DE_SEV_CRITICAL:
		return "\033[1;31m";
	case DE_SEV_HIGH:
		return "\033[31m";
	case DE_SEV_MEDIUM:
		return "\033[33m";
	default:
		return "\033[36m";
	}
}

/* An escaped copy of a JSON member string of the first alert_data row. */
static char *first_row_field(const struct de_alert *a, const char *key)
{
	const json_t *row = json_array_get(a->alert_data, 0);
	const json_t *v = json_object_get(row, key);
	const char *s;

	if (!json_is_string(v))
		return NULL;
	s = json_string_value(v);
	return de_escape_text(s, json_string_length(v));
}

char *de_alert_render_text(const struct de_alert *a, bool color)
{
	char ts[32], pids[256] = "";
	struct tm tm;
	time_t t = (time_t)(a->alert_time / 1000);
	char *title = de_escape_text(a->title, strlen(a->title));
	char *rule = de_escape_text(a->rule_id, strlen(a->rule_id));
	char *name = first_row_field(a, "name");
	char *exe = first_row_field(a, "executable_path");
	char sev[16], *out = NULL;
	size_t o = 0;

	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	for (size_t i = 0; i < a->affected_processes_len && o + 16 < sizeof(pids); i++)
		o += (size_t)snprintf(pids + o, sizeof(pids) - o, "%s%u", i ? "," : "",
				      a->affected_processes[i]);
	if (o + 16 >= sizeof(pids))
		snprintf(pids + o, sizeof(pids) - o, ",...");
	snprintf(sev, sizeof(sev), "%s", de_severity_name(a->severity));
	for (char *p = sev; *p; p++)
		*p = (char)(*p - ('a' - 'A'));
	if (title && rule &&
	    asprintf(&out, "%s %s%-8s%s %s [%s] pid %s%s%s%s%s", ts,
		     color ? sev_color(a->severity) : "", sev, color ? "\033[0m" : "", title, rule,
		     pids[0] ? pids : "-", name ? " " : "", name ? name : "", exe ? " " : "",
		     exe ? exe : "") < 0)
		out = NULL;
	free(title);
	free(rule);
	free(name);
	free(exe);
	return out;
}

char *de_alert_render_json(const struct de_alert *a)
{
	json_t *j = de_alert_to_json(a);
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	json_decref(j);
	return s;
}

int de_alert_write(FILE *f, const struct de_alert *a, enum de_alert_format fmt, bool color)
{
	char *line =
		fmt == DE_ALERT_JSON ? de_alert_render_json(a) : de_alert_render_text(a, color);
	int rc = 0;

	if (!line)
		return -ENOMEM;
	if (fprintf(f, "%s\n", line) < 0 || fflush(f) != 0)
		rc = -(errno ? errno : EIO);
	free(line);
	return rc;
}
