/*
 * alertfmt.c — alert formats (see alertfmt.h): human, json, ecs, cef, ocsf.
 *
 * JSON-shaped formats are built as jansson trees and dumped compact as
 * json_dumps would with JSON_ENSURE_ASCII (de_json_dump, without jansson's
 * per-container bookkeeping), so a record is always one line of ASCII
 * whatever a process name holds.  CEF is written by hand with its two escapers, which
 * are the whole of its injection defence and are tested byte for byte.
 */
#include "daemoneye/alertfmt.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemoneye/text.h"
#include "fields.h"

static const char *const fmt_names[DE_FMT_MAX] = {"human", "json", "ecs", "cef", "ocsf"};

const char *de_alertfmt_name(enum de_alertfmt f)
{
	return (int)f >= 0 && f < DE_FMT_MAX ? fmt_names[f] : NULL;
}

int de_alertfmt_parse(const char *s, enum de_alertfmt *out)
{
	for (int i = 0; s && i < DE_FMT_MAX; i++)
		if (strcmp(s, fmt_names[i]) == 0) {
			*out = (enum de_alertfmt)i;
			return 0;
		}
	if (s && strcmp(s, "text") == 0) {
		*out = DE_FMT_HUMAN;
		return 0;
	}
	return -EINVAL;
}

static char hostname_buf[256];
static pthread_once_t hostname_once = PTHREAD_ONCE_INIT;

static void hostname_init(void)
{
	if (gethostname(hostname_buf, sizeof(hostname_buf) - 1) < 0 || !hostname_buf[0])
		snprintf(hostname_buf, sizeof(hostname_buf), "localhost");
}

const char *de_alertfmt_hostname(void)
{
	pthread_once(&hostname_once, hostname_init);
	return hostname_buf;
}

/* ---- what the formats read ------------------------------------------------ */

/* One process of the alert, from its context or else its rows (borrowed). */
struct pview {
	bool has_pid, has_ppid, has_start;
	json_int_t pid, ppid, start_time;
	const char *name, *exe, *cmdline, *user, *parent_name, *parent_exe;
};

static const char *jget_str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static bool jget_int(const json_t *o, const char *k, json_int_t *v)
{
	const json_t *j = json_object_get(o, k);

	if (!json_is_integer(j))
		return false;
	*v = json_integer_value(j);
	return true;
}

/* Process i of the alert; false when there is none. */
static bool proc_view(const struct de_alert *a, size_t i, struct pview *v)
{
	const json_t *procs = json_object_get(a->context, "processes");
	const json_t *p = json_array_get(procs, i);

	memset(v, 0, sizeof(*v));
	if (!json_is_object(p))
		p = json_array_get(a->alert_data, i);
	if (!json_is_object(p))
		return false;
	v->has_pid = jget_int(p, "pid", &v->pid);
	v->has_ppid = jget_int(p, "ppid", &v->ppid);
	v->has_start = jget_int(p, "start_time", &v->start_time);
	v->name = jget_str(p, "name");
	v->exe = jget_str(p, "executable_path");
	v->cmdline = jget_str(p, "command_line");
	v->user = jget_str(p, "user_id");
	v->parent_name = jget_str(p, "parent_name");
	v->parent_exe = jget_str(p, "parent_executable_path");
	return true;
}

/* The rule's category, when the manager put it in the context. */
static const char *category_of(const struct de_alert *a)
{
	return jget_str(json_object_get(a->context, "rule"), "category");
}

static size_t nprocs(const struct de_alert *a)
{
	size_t n = json_array_size(json_object_get(a->context, "processes"));
	return n ? n : json_array_size(a->alert_data);
}

/* RFC 3339 UTC with milliseconds. */
static void iso_time(int64_t ms, char out[32])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char base[24];

	gmtime_r(&t, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 32, "%s.%03dZ", base, (int)(ms % 1000));
}

/* set o.k = v, skipping NULL strings; -1 on ENOMEM */
static int put(json_t *o, const char *k, json_t *v)
{
	if (!v)
		return -1;
	return json_object_set_new(o, k, v);
}

static int put_s(json_t *o, const char *k, const char *s)
{
	return s ? put(o, k, de_json_lossy(s)) : 0;
}

static int dump(json_t *j, struct de_buf *out)
{
	int rc = j ? de_json_dump(j, true, out) : -ENOMEM;

	json_decref(j);
	return rc;
}

/* ---- human and json --------------------------------------------------------- */

static int render_human(const struct de_alert *a, const struct de_alertfmt_opts *o,
			struct de_buf *out)
{
	char *line = de_alert_render_text(a, o && o->color);
	int rc;

	if (!line)
		return -ENOMEM;
	rc = 0;
	if (a->kind)
		rc = de_buf_printf(out, "[%s] ", a->kind);
	if (rc == 0)
		rc = de_buf_puts(out, line);
	free(line);
	return rc;
}

static int render_json(const struct de_alert *a, const struct de_alertfmt_opts *o,
		       struct de_buf *out)
{
	return de_alert_write_json_pre(a, o ? o->json : NULL, out);
}

/* ---- ECS ------------------------------------------------------------------- */

/* Elastic's detection-rule risk scores for the four severities. */
static int ecs_severity(enum de_severity s)
{
	static const int v[DE_SEV_MAX] = {21, 47, 73, 99};
	return (int)s >= 0 && s < DE_SEV_MAX ? v[s] : 21;
}

static json_t *ecs_process(const struct pview *v)
{
	json_t *p = json_object(), *parent = NULL;
	char ts[32];

	if (!p)
		return NULL;
	if ((v->has_pid && put(p, "pid", json_integer(v->pid)) < 0) ||
	    put_s(p, "name", v->name) < 0 || put_s(p, "executable", v->exe) < 0 ||
	    put_s(p, "command_line", v->cmdline) < 0)
		goto fail;
	if (v->has_start && v->start_time > 0) {
		iso_time(v->start_time, ts);
		if (put(p, "start", json_string(ts)) < 0)
			goto fail;
	}
	if (v->user && put(p, "user", json_pack("{s:s}", "id", v->user)) < 0)
		goto fail;
	if (v->has_ppid || v->parent_name || v->parent_exe) {
		if (!(parent = json_object()) ||
		    (v->has_ppid && put(parent, "pid", json_integer(v->ppid)) < 0) ||
		    put_s(parent, "name", v->parent_name) < 0 ||
		    put_s(parent, "executable", v->parent_exe) < 0 || put(p, "parent", parent) < 0)
			goto fail;
	}
	return p;
fail:
	json_decref(p);
	return NULL;
}

static int render_ecs(const struct de_alert *a, const char *host, struct de_buf *out)
{
	json_t *j = json_object(), *ev = NULL, *rule, *dex, *procs;
	char ts[32], id[DE_UUID_STR_LEN + 1];
	struct pview v;
	int rc = -ENOMEM;

	if (!j)
		return -ENOMEM;
	iso_time(a->alert_time, ts);
	de_uuid_format(&a->id, id);
	ev = json_pack("{s:s,s:[s],s:[s],s:s,s:s,s:i,s:s,s:s,s:s}", "kind", "alert", "category",
		       "process", "type", "info", "id", id, "created", ts, "severity",
		       ecs_severity(a->severity), "module", "daemoneye", "dataset",
		       "daemoneye.alert", "action", de_alert_kind(a));
	rule = json_object();
	if (put(j, "@timestamp", json_string(ts)) < 0 || put(j, "event", ev) < 0 || !rule ||
	    put(j, "rule", rule) < 0 || put_s(rule, "id", a->rule_id) < 0 ||
	    put_s(rule, "name", a->title) < 0 || put_s(rule, "description", a->description) < 0 ||
	    put(rule, "ruleset", json_string("daemoneye")) < 0 ||
	    put_s(rule, "category", category_of(a)) < 0 || put_s(j, "message", a->title) < 0 ||
	    put(j, "host", json_pack("{s:s,s:s}", "hostname", host, "name", host)) < 0 ||
	    put(j, "observer",
		json_pack("{s:s,s:s,s:s,s:s}", "vendor", "DaemonEye", "product", "daemoneye",
			  "type", "host-monitor", "version", DE_VERSION)) < 0 ||
	    put(j, "ecs", json_pack("{s:s}", "version", "8.11.0")) < 0)
		goto out;
	if (proc_view(a, 0, &v)) {
		if (put(j, "process", ecs_process(&v)) < 0 ||
		    (v.user && put(j, "user", json_pack("{s:s}", "id", v.user)) < 0))
			goto out;
	}
	/* what ECS has no field for */
	procs = json_array();
	for (size_t i = 0; procs && i < a->affected_processes_len; i++)
		if (json_array_append_new(procs, json_integer(a->affected_processes[i])) < 0)
			goto out;
	dex = json_object();
	if (!dex || put(j, "daemoneye", dex) < 0 || put(dex, "affected_processes", procs) < 0 ||
	    put(dex, "process_count", json_integer(a->process_count)) < 0 ||
	    put_s(dex, "dedupe_key", a->dedupe_key) < 0 ||
	    put(dex, "kind", json_string(de_alert_kind(a))) < 0 ||
	    (a->incomplete && put(dex, "incomplete", json_true()) < 0) ||
	    (a->has_scan_id && put(dex, "scan_id", json_integer(a->scan_id)) < 0) ||
	    (json_object_get(a->context, "folded") &&
	     put(dex, "folded", json_deep_copy(json_object_get(a->context, "folded"))) < 0) ||
	    (json_object_get(a->context, "resolves") &&
	     put(dex, "resolves", json_deep_copy(json_object_get(a->context, "resolves"))) < 0))
		goto out;
	return dump(j, out);
out:
	json_decref(j);
	return rc;
}

/* ---- OCSF -------------------------------------------------------------------- */

static json_t *ocsf_process(const struct pview *v)
{
	json_t *p = json_object(), *parent;

	if (!p)
		return NULL;
	if ((v->has_pid && put(p, "pid", json_integer(v->pid)) < 0) ||
	    put_s(p, "name", v->name) < 0 || put_s(p, "cmd_line", v->cmdline) < 0 ||
	    (v->exe &&
	     put(p, "file", json_pack("{s:o,s:i}", "path", de_json_lossy(v->exe), "type_id", 1)) <
		     0) ||
	    (v->has_start && put(p, "created_time", json_integer(v->start_time)) < 0) ||
	    (v->user && put(p, "user", json_pack("{s:o}", "uid", de_json_lossy(v->user))) < 0))
		goto fail;
	if (v->has_ppid || v->parent_name) {
		parent = json_object();
		if (!parent || put(p, "parent_process", parent) < 0 ||
		    (v->has_ppid && put(parent, "pid", json_integer(v->ppid)) < 0) ||
		    put_s(parent, "name", v->parent_name) < 0 ||
		    (v->parent_exe &&
		     put(parent, "file",
			 json_pack("{s:o,s:i}", "path", de_json_lossy(v->parent_exe), "type_id",
				   1)) < 0))
			goto fail;
	}
	return p;
fail:
	json_decref(p);
	return NULL;
}

static int render_ocsf(const struct de_alert *a, const char *host, struct de_buf *out)
{
	static const char *const sev_names[DE_SEV_MAX] = {"Low", "Medium", "High", "Critical"};
	bool resolved = a->kind && strcmp(a->kind, "resolved") == 0;
	int activity = resolved ? 3 : 1; /* Create, Close */
	int sev = (int)a->severity + 2;	 /* Low 2 .. Critical 5 */
	json_t *j = json_object(), *fi = NULL, *ev = NULL, *analytic;
	char id[DE_UUID_STR_LEN + 1];
	struct pview v;

	if (!j)
		return -ENOMEM;
	de_uuid_format(&a->id, id);
	analytic = json_pack("{s:o,s:o,s:i,s:s}", "uid", de_json_lossy(a->rule_id), "name",
			     de_json_lossy(a->title), "type_id", 1, "type", "Rule");
	fi = json_pack("{s:s,s:o,s:o,s:I,s:o}", "uid", id, "title", de_json_lossy(a->title), "desc",
		       de_json_lossy(a->description), "created_time", (json_int_t)a->alert_time,
		       "analytic", analytic);
	if (put(j, "class_uid", json_integer(2004)) < 0 ||
	    put(j, "class_name", json_string("Detection Finding")) < 0 ||
	    put(j, "category_uid", json_integer(2)) < 0 ||
	    put(j, "category_name", json_string("Findings")) < 0 ||
	    put(j, "activity_id", json_integer(activity)) < 0 ||
	    put(j, "activity_name", json_string(resolved ? "Close" : "Create")) < 0 ||
	    put(j, "type_uid", json_integer(200400 + activity)) < 0 ||
	    put(j, "time", json_integer(a->alert_time)) < 0 ||
	    put(j, "severity_id", json_integer(sev)) < 0 ||
	    put(j, "severity", json_string(sev_names[a->severity % DE_SEV_MAX])) < 0 ||
	    put(j, "status_id", json_integer(resolved ? 4 : 1)) < 0 ||
	    put(j, "status", json_string(resolved ? "Resolved" : "New")) < 0 ||
	    put_s(j, "message", a->title) < 0 || put(j, "finding_info", fi) < 0 ||
	    put(j, "metadata",
		json_pack("{s:s,s:s,s:{s:s,s:s,s:s}}", "version", "1.1.0", "uid", id, "product",
			  "name", "daemoneye", "vendor_name", "DaemonEye", "version", DE_VERSION)) <
		    0 ||
	    put(j, "device",
		json_pack("{s:s,s:i,s:s}", "hostname", host, "type_id", 0, "type", "Unknown")) < 0)
		goto fail;
	if (category_of(a) && put(fi, "types", json_pack("[o]", de_json_lossy(category_of(a)))) < 0)
		goto fail;
	if (!(ev = json_array()) || put(j, "evidences", ev) < 0)
		goto fail;
	for (size_t i = 0; i < nprocs(a) && i < 100 && proc_view(a, i, &v); i++)
		if (json_array_append_new(ev, json_pack("{s:o}", "process", ocsf_process(&v))) < 0)
			goto fail;
	if (put(j, "unmapped",
		json_pack("{s:s,s:o,s:b}", "kind", de_alert_kind(a), "dedupe_key",
			  de_json_lossy(a->dedupe_key), "incomplete", a->incomplete)) < 0)
		goto fail;
	return dump(j, out);
fail:
	json_decref(j);
	return -ENOMEM;
}

/* ---- CEF --------------------------------------------------------------------- */

/* Append s[0..n) as valid UTF-8, each byte passed through fn first. */
static int cef_escape(struct de_buf *out, const char *s, size_t n, bool header)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		size_t l = de_utf8_seq_len(s + i, n - i);
		int rc;

		if (l == 0) { /* not UTF-8: U+FFFD */
			rc = de_buf_puts(out, "\xef\xbf\xbd");
			i++;
		} else if (l > 1) {
			rc = de_buf_append(out, s + i, l);
			i += l;
		} else {
			if (c == '\\')
				rc = de_buf_puts(out, "\\\\");
			else if (header && c == '|')
				rc = de_buf_puts(out, "\\|");
			else if (!header && c == '=')
				rc = de_buf_puts(out, "\\=");
			else if (!header && c == '\n')
				rc = de_buf_puts(out, "\\n");
			else if (!header && c == '\r')
				rc = de_buf_puts(out, "\\r");
			else if (c < 0x20 || c == 0x7f)
				rc = de_buf_putc(out, ' ');
			else
				rc = de_buf_putc(out, (char)c);
			i++;
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

int de_cef_escape_header(struct de_buf *out, const char *s, size_t n)
{
	return cef_escape(out, s, n, true);
}

int de_cef_escape_ext(struct de_buf *out, const char *s, size_t n)
{
	return cef_escape(out, s, n, false);
}

int de_cef_severity(enum de_severity s)
{
	static const int v[DE_SEV_MAX] = {3, 5, 8, 10};
	return (int)s >= 0 && s < DE_SEV_MAX ? v[s] : 0;
}

/* " key=value" with the value escaped; nothing for a NULL value. */
static int cef_kv(struct de_buf *out, const char *k, const char *v)
{
	int rc;

	if (!v)
		return 0;
	if ((rc = de_buf_printf(out, " %s=", k)) < 0)
		return rc;
	return de_cef_escape_ext(out, v, strlen(v));
}

static int cef_hdr(struct de_buf *out, const char *s)
{
	int rc = de_cef_escape_header(out, s ? s : "", s ? strlen(s) : 0);
	return rc < 0 ? rc : de_buf_putc(out, '|');
}

static int render_cef(const struct de_alert *a, const char *host, struct de_buf *out)
{
	char id[DE_UUID_STR_LEN + 1], num[32], pids[512] = "";
	size_t o = 0;
	struct pview v;
	bool have = proc_view(a, 0, &v);
	int rc;

	de_uuid_format(&a->id, id);
	for (size_t i = 0; i < a->affected_processes_len && o + 16 < sizeof(pids); i++)
		o += (size_t)snprintf(pids + o, sizeof(pids) - o, "%s%u", i ? "," : "",
				      a->affected_processes[i]);
	snprintf(num, sizeof(num), "%d", de_cef_severity(a->severity));
	if ((rc = de_buf_puts(out, "CEF:0|")) < 0 || (rc = cef_hdr(out, "DaemonEye")) < 0 ||
	    (rc = cef_hdr(out, "daemoneye")) < 0 || (rc = cef_hdr(out, DE_VERSION)) < 0 ||
	    (rc = cef_hdr(out, a->rule_id)) < 0 || (rc = cef_hdr(out, a->title)) < 0 ||
	    (rc = cef_hdr(out, num)) < 0)
		return rc;
	snprintf(num, sizeof(num), "%lld", (long long)a->alert_time);
	/* the first pair has no leading space */
	if ((rc = de_buf_printf(out, "rt=%s", num)) < 0 ||
	    (rc = cef_kv(out, "dvchost", host)) < 0 || (rc = cef_kv(out, "externalId", id)) < 0 ||
	    (rc = cef_kv(out, "cat", de_alert_kind(a))) < 0 ||
	    (rc = cef_kv(out, "cs1Label", "ruleId")) < 0 ||
	    (rc = cef_kv(out, "cs1", a->rule_id)) < 0 ||
	    (rc = cef_kv(out, "msg", a->description)) < 0 ||
	    (rc = cef_kv(out, "cs3Label", pids[0] ? "affectedPids" : NULL)) < 0 ||
	    (rc = cef_kv(out, "cs3", pids[0] ? pids : NULL)) < 0 ||
	    (rc = cef_kv(out, "cs4Label", "dedupeKey")) < 0 ||
	    (rc = cef_kv(out, "cs4", a->dedupe_key)) < 0)
		return rc;
	snprintf(num, sizeof(num), "%d", a->process_count);
	if ((rc = cef_kv(out, "cn1Label", "processCount")) < 0 ||
	    (rc = cef_kv(out, "cn1", num)) < 0)
		return rc;
	if (!have)
		return 0;
	if (v.has_pid) {
		snprintf(num, sizeof(num), "%lld", (long long)v.pid);
		if ((rc = cef_kv(out, "dpid", num)) < 0)
			return rc;
	}
	if (v.has_ppid) {
		snprintf(num, sizeof(num), "%lld", (long long)v.ppid);
		if ((rc = cef_kv(out, "cn2Label", "parentPid")) < 0 ||
		    (rc = cef_kv(out, "cn2", num)) < 0)
			return rc;
	}
	if ((rc = cef_kv(out, "dproc", v.name)) < 0 || (rc = cef_kv(out, "filePath", v.exe)) < 0 ||
	    (rc = cef_kv(out, "duid", v.user)) < 0 ||
	    (rc = cef_kv(out, "cs2Label", v.cmdline ? "commandLine" : NULL)) < 0 ||
	    (rc = cef_kv(out, "cs2", v.cmdline)) < 0 ||
	    (rc = cef_kv(out, "cs5Label", v.parent_name ? "parentName" : NULL)) < 0 ||
	    (rc = cef_kv(out, "cs5", v.parent_name)) < 0)
		return rc;
	return 0;
}

/* ---- dispatch ---------------------------------------------------------------- */

int de_alertfmt_render(enum de_alertfmt f, const struct de_alert *a,
		       const struct de_alertfmt_opts *o, struct de_buf *out)
{
	const char *host = o && o->hostname ? o->hostname : de_alertfmt_hostname();

	switch (f) {
	case DE_FMT_HUMAN:
		return render_human(a, o, out);
	case DE_FMT_JSON:
		return render_json(a, o, out);
	case DE_FMT_ECS:
		return render_ecs(a, host, out);
	case DE_FMT_CEF:
		return render_cef(a, host, out);
	case DE_FMT_OCSF:
		return render_ocsf(a, host, out);
	default:
		return -EINVAL;
	}
}
