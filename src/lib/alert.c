/*
 * alert.c — Alert (see alert.h): severity names, the field table behind
 * the model's lifetime, equality and JSON, the alert list, and rendering
 * for the stdout sink.
 */
#include "daemoneye/alert.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "daemoneye/buf.h"
#include "daemoneye/text.h"
#include "fields.h"

/* ---- enums -------------------------------------------------------------- */

static const char *const severity_names[DE_SEV_MAX] = {"low", "medium", "high", "critical"};

const char *de_severity_name(enum de_severity s)
{
	return (int)s >= 0 && s < DE_SEV_MAX ? severity_names[s] : NULL;
}

int de_severity_parse(const char *s, enum de_severity *out, struct de_error *err)
{
	for (int i = 0; s && i < DE_SEV_MAX; i++) {
		if (strcasecmp(s, severity_names[i]) == 0) {
			*out = (enum de_severity)i;
			return 0;
		}
	}
	return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
			    "unknown severity '%s' (expected low, medium, high or critical)",
			    s ? s : "(null)");
}

#define AL struct de_alert
static const struct de_field alert_fields[] = {
	F_REQ(AL, id, F_UUID),
	F_REQ(AL, alert_time, F_I64),
	F_REQ(AL, rule_id, F_STR),
	F_REQ(AL, title, F_STR),
	F_REQ(AL, description, F_STR),
	F_REQ(AL, severity, F_SEV),
	F_OPTN(AL, scan_id, F_I64),
	F_VEC(AL, affected_processes, F_U32V),
	F_REQ(AL, process_count, F_I32),
	F_REQ(AL, alert_data, F_JSON),
	F_OPTN(AL, rule_execution_time_ms, F_I64),
	F_REQ(AL, dedupe_key, F_STR),
	{"incomplete", F_BOOL, offsetof(AL, incomplete), NO_OFF, NO_OFF, true, false},
	F_EXT(AL, kind, F_STR),
	F_EXT(AL, context, F_JSON),
};
#undef AL

const char *de_alert_kind(const struct de_alert *a)
{
	return a->kind ? a->kind : "alert";
}

void de_alert_clear(struct de_alert *a)
{
	if (a)
		de_fields_clear(a, alert_fields, F_COUNT(alert_fields), sizeof(*a));
}

void de_alert_free(struct de_alert *a)
{
	de_alert_clear(a);
	free(a);
}

bool de_alert_equal(const struct de_alert *a, const struct de_alert *b)
{
	return de_fields_equal(a, b, alert_fields, F_COUNT(alert_fields));
}

json_t *de_alert_to_json(const struct de_alert *a)
{
	return de_fields_to_json(a, alert_fields, F_COUNT(alert_fields));
}

int de_alert_write_json(const struct de_alert *a, struct de_buf *out)
{
	return de_alert_write_json_pre(a, NULL, out);
}

int de_alert_write_json_pre(const struct de_alert *a, const struct de_alert_json_text *pre,
			    struct de_buf *out)
{
	const struct de_json_text t[2] = {
		{offsetof(struct de_alert, alert_data), pre ? pre->alert_data : NULL,
		 pre ? pre->alert_data_len : 0},
		{offsetof(struct de_alert, context), pre ? pre->context : NULL,
		 pre ? pre->context_len : 0},
	};

	return de_fields_write_json_pre(a, alert_fields, F_COUNT(alert_fields), true, t, 2, out);
}

int de_alert_from_json(const json_t *j, struct de_alert *out, struct de_error *err)
{
	return de_fields_from_json(j, out, sizeof(*out), alert_fields, F_COUNT(alert_fields),
				   "Alert", err);
}

void de_alert_list_clear(struct de_alert_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->len; i++)
		de_alert_clear(&l->items[i]);
	free(l->items);
	memset(l, 0, sizeof(*l));
}

/* ---- rendering ---------------------------------------------------------- */

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

/* An escaped copy of a JSON member string of the first alert_data row in
 *out (NULL when there is none); false on ENOMEM. */
static bool first_row_field(const struct de_alert *a, const char *key, char **out)
{
	const json_t *row = json_array_get(a->alert_data, 0);
	const json_t *v = json_object_get(row, key);

	*out = NULL;
	if (!json_is_string(v))
		return true;
	*out = de_escape_text(json_string_value(v), json_string_length(v));
	return *out != NULL;
}

char *de_alert_render_text(const struct de_alert *a, bool color)
{
	char ts[32], pids[256] = "";
	struct tm tm;
	time_t t = (time_t)(a->alert_time / 1000);
	char *title = de_escape_text(a->title, strlen(a->title));
	char *rule = de_escape_text(a->rule_id, strlen(a->rule_id));
	char *name = NULL, *exe = NULL;
	bool rows_ok =
		first_row_field(a, "name", &name) && first_row_field(a, "executable_path", &exe);
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
	if (title && rule && rows_ok &&
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
	struct de_buf b = DE_BUF_INIT(1u << 30);

	if (de_alert_write_json(a, &b) < 0) {
		de_buf_free(&b);
		return NULL;
	}
	return de_buf_steal(&b);
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
