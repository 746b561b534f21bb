/*
 * health.c — the health report's model, writer and reader (see health.h).
 */
#include "daemoneye/health.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/clock.h"
#include "daemoneye/fileio.h"

static const char *const names[DE_HEALTH_STATUS_MAX] = {"ok", "warning", "critical"};

const char *de_health_status_name(enum de_health_status s)
{
	return (unsigned)s < DE_HEALTH_STATUS_MAX ? names[s] : NULL;
}

int de_health_status_parse(const char *s, enum de_health_status *out)
{
	for (int i = 0; s && i < DE_HEALTH_STATUS_MAX; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = (enum de_health_status)i;
			return 0;
		}
	return -EINVAL;
}

json_t *de_health_new(int64_t updated_ms, int64_t stale_after_ms)
{
	return json_pack("{s:i, s:I, s:I, s:s, s:[]}", "version", DE_HEALTH_VERSION, "updated_at",
			 (json_int_t)updated_ms, "stale_after_ms", (json_int_t)stale_after_ms,
			 "status", names[DE_HEALTH_OK], "components");
}

static enum de_health_status status_of(const json_t *o)
{
	enum de_health_status s = DE_HEALTH_CRITICAL; /* unreadable counts as the worst */

	(void)de_health_status_parse(json_string_value(json_object_get(o, "status")), &s);
	return s;
}

enum de_health_status de_health_worst(const json_t *doc)
{
	return status_of(doc);
}

/* Recompute the report's status from its components. */
static int restatus(json_t *doc)
{
	enum de_health_status worst = DE_HEALTH_OK;
	const json_t *c;
	size_t i;

	json_array_foreach (json_object_get(doc, "components"), i, c) {
		enum de_health_status s = status_of(c);
		if (s > worst)
			worst = s;
	}
	return json_object_set_new(doc, "status", json_string(names[worst])) == 0 ? 0 : -ENOMEM;
}

/* A component object; details stolen.  NULL on ENOMEM. */
static json_t *component(const char *name, enum de_health_status status, const char *summary,
			 json_t *details)
{
	json_t *c = json_pack("{s:s, s:s, s:s}", "name", name, "status", names[status], "summary",
			      summary ? summary : "");

	if (!c || json_object_set_new(c, "details", details ? details : json_object()) < 0) {
		json_decref(c);
		return NULL;
	}
	return c;
}

int de_health_add(json_t *doc, const char *name, enum de_health_status status, const char *summary,
		  json_t *details)
{
	json_t *arr = json_object_get(doc, "components"), *c;

	if ((unsigned)status >= DE_HEALTH_STATUS_MAX)
		status = DE_HEALTH_CRITICAL;
	if (json_array_size(arr) >= DE_HEALTH_MAX_COMPONENTS) {
		json_decref(details);
		return -E2BIG;
	}
	if (!(c = component(name, status, summary, details)) || json_array_append_new(arr, c) < 0)
		return -ENOMEM;
	return restatus(doc);
}

int de_health_write(const char *path, const json_t *doc, struct de_error *err)
{
	char *text = json_dumps(doc, JSON_COMPACT);
	int rc;

	if (!text)
		return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	rc = de_write_file_atomic(path, text, strlen(text), 0644);
	free(text);
	if (rc < 0)
		return de_error_set(err, DE_ERR_IO, -rc, "cannot write the health report %s: %s",
				    path, strerror(-rc));
	return 0;
}

int de_health_read(const char *path, int64_t now_ms, json_t **out, struct de_error *err)
{
	char *text = NULL;
	size_t len;
	json_t *doc, *comps, *c;
	json_error_t je;
	int rc = de_read_file(path, DE_HEALTH_MAX_FILE, &text, &len, NULL);
	size_t i;

	if (rc < 0)
		return de_error_set(err, DE_ERR_IO, -rc, "cannot read the health report %s: %s",
				    path, strerror(-rc));
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	free(text);
	if (!doc || !json_is_object(doc))
		goto bad;
	comps = json_object_get(doc, "components");
	if (json_integer_value(json_object_get(doc, "version")) != DE_HEALTH_VERSION ||
	    !json_is_integer(json_object_get(doc, "updated_at")) ||
	    !json_is_integer(json_object_get(doc, "stale_after_ms")) || !json_is_array(comps) ||
	    json_array_size(comps) > DE_HEALTH_MAX_COMPONENTS)
		goto bad;
	json_array_foreach (comps, i, c) {
		enum de_health_status s;
		if (!json_is_object(c) || !json_is_string(json_object_get(c, "name")) ||
		    !json_is_string(json_object_get(c, "summary")) ||
		    de_health_status_parse(json_string_value(json_object_get(c, "status")), &s) < 0)
			goto bad;
	}
	int64_t updated = json_integer_value(json_object_get(doc, "updated_at"));
	int64_t stale = json_integer_value(json_object_get(doc, "stale_after_ms"));
	if (stale > 0 && now_ms - updated > stale) {
		char ago[32], msg[160];
		de_duration_format(ago, sizeof(ago), now_ms - updated);
		snprintf(msg, sizeof(msg), "not reporting: the report was last updated %s ago",
			 ago);
		json_t *a = component("agent", DE_HEALTH_CRITICAL, msg,
				      json_pack("{s:I}", "age_ms", (json_int_t)(now_ms - updated)));
		if (!a || json_array_insert_new(comps, 0, a) < 0) {
			json_decref(doc);
			return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
		}
	}
	if (restatus(doc) < 0) {
		json_decref(doc);
		return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	}
	*out = doc;
	return 0;
bad:
	json_decref(doc);
	return de_error_set(err, DE_ERR_VALIDATION, EBADMSG,
			    "%s is not a daemoneye health report (version %d)", path,
			    DE_HEALTH_VERSION);
}
