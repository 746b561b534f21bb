/*
 * alertcfg.c — AlertManagerConfig (see alertmgr.h): reading the alerting
 * section of the configuration into sinks, exceptions and policies, with
 * errors that name the sink (or exception), the key and FILE:LINE:COL;
 * routing an alert to a sink; the deduplication key; and the one-shot test
 * delivery of `daemoneye-cli alerts test`.
 */
#include "daemoneye/alertmgr.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemoneye/clock.h"
#include "daemoneye/text.h"

/* Keys every sink takes (sink.h lists each type's own). */
static const char *const common_keys[] = {
	"name",		 "type",	 "format",	 "min_severity",  "include_rules",
	"exclude_rules", "include_tags", "exclude_tags", "send_resolved", "timeout_ms",
};

static const char *const dedup_fields[] = {
	"rule_id",	"severity", "process_name", "executable_path",
	"command_line", "user_id",  "parent_name",
};

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void sink_clear(struct de_alert_sink *s)
{
	if (s->ops && s->state)
		s->ops->close(s->state);
	free(s->name);
	free_strv(s->include_rules, s->n_include_rules);
	free_strv(s->exclude_rules, s->n_exclude_rules);
	free_strv(s->include_tags, s->n_include_tags);
	free_strv(s->exclude_tags, s->n_exclude_tags);
	free(s->origin);
	memset(s, 0, sizeof(*s));
}

void de_alertmgr_config_free(struct de_alertmgr_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; cfg->sinks && i < cfg->nsinks; i++)
		sink_clear(&cfg->sinks[i]);
	free(cfg->sinks);
	free_strv(cfg->dedup.key_fields, cfg->dedup.n_key_fields);
	de_exception_set_clear(&cfg->suppress);
	free(cfg);
}

struct de_alert_sink *de_alertmgr_config_sink(const struct de_alertmgr_config *cfg,
					      const char *name)
{
	for (size_t i = 0; cfg && name && i < cfg->nsinks; i++)
		if (strcmp(cfg->sinks[i].name, name) == 0)
			return &cfg->sinks[i];
	return NULL;
}

/* A list of globs at key (absent: none). */
static int glob_list(struct de_sink_conf *c, const char *key, char ***out, size_t *n)
{
	const json_t *v = json_object_get(c->conf, key), *e;
	size_t i;

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_array(v) || json_array_size(v) > 256)
		return de_sink_conf_fail(c, key, "must be a list of at most 256 patterns");
	if (!(*out = calloc(json_array_size(v) + 1, sizeof(char *))))
		return de_error_set(c->err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
	json_array_foreach (v, i, e) {
		if (!json_is_string(e) || json_string_length(e) == 0)
			return de_sink_conf_fail(c, key, "item %zu must be a non-empty string", i);
		if (!((*out)[i] = strdup(json_string_value(e))))
			return de_error_set(c->err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
		(*n)++;
	}
	return 0;
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (; *s; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '-' &&
		    *s != '_')
			return false;
	return true;
}

/* One sink from its mapping at path ("alerting.sinks[2]"). */
static int sink_load(const struct de_config *cfg, const json_t *conf, const char *path,
		     uint64_t default_timeout, struct de_alert_sink *s, struct de_error *err)
{
	struct de_sink_conf c = {
		.conf = conf,
		.name = "?",
		.path = path,
		.origins = de_config_origins(cfg),
		.fallback = "configuration",
		.config = cfg,
		.err = err,
	};
	const char *name, *type, *fmt, *sev, *k;
	const json_t *v;
	char where[512];
	int rc;

	if ((rc = de_sink_conf_str(&c, "name", true, &name)) < 0)
		return rc;
	c.name = name;
	if (!valid_name(name))
		return de_sink_conf_fail(&c, "name", "must be 1-64 of a-z 0-9 - _");
	if ((rc = de_sink_conf_str(&c, "type", true, &type)) < 0)
		return rc;
	if (!(s->ops = de_sink_ops_find(type)))
		return de_sink_conf_fail(&c, "type", "unknown sink type '%s' (known: %s)", type,
					 de_sink_types());
	json_object_foreach ((json_t *)conf, k, v) {
		bool ok = false;
		for (size_t i = 0; i < sizeof(common_keys) / sizeof(common_keys[0]); i++)
			ok |= strcmp(k, common_keys[i]) == 0;
		for (size_t i = 0; s->ops->keys[i]; i++)
			ok |= strcmp(k, s->ops->keys[i]) == 0;
		if (!ok) {
			char known[512] = "";
			size_t o = 0;
			for (size_t i = 0; s->ops->keys[i] && o < sizeof(known); i++)
				o += (size_t)snprintf(known + o, sizeof(known) - o, "%s%s",
						      i ? ", " : "", s->ops->keys[i]);
			return de_sink_conf_fail(
				&c, k,
				"unknown key for a %s sink (its keys: %s%s the "
				"common ones: format, min_severity, include_rules, "
				"exclude_rules, include_tags, exclude_tags, "
				"send_resolved, timeout_ms)",
				type, known, o ? "; and" : "");
		}
	}
	if ((rc = de_sink_conf_str(&c, "format", false, &fmt)) < 0)
		return rc;
	s->format = s->ops->default_format;
	if (s->ops == &de_sink_stdout_ops && (!fmt || strcmp(fmt, "auto") == 0))
		s->format = isatty(STDOUT_FILENO) ? DE_FMT_HUMAN : DE_FMT_JSON;
	else if (fmt && de_alertfmt_parse(fmt, &s->format) < 0)
		return de_sink_conf_fail(&c, "format",
					 "unknown format '%s' (known: human, json, ecs, cef, "
					 "ocsf%s)",
					 fmt, s->ops == &de_sink_stdout_ops ? ", auto" : "");
	if ((rc = de_sink_conf_str(&c, "min_severity", false, &sev)) < 0)
		return rc;
	s->min_severity = DE_SEV_LOW;
	if (sev && de_severity_parse(sev, &s->min_severity, NULL) < 0)
		return de_sink_conf_fail(&c, "min_severity",
					 "'%s' is not low, medium, high or critical", sev);
	if ((rc = glob_list(&c, "include_rules", &s->include_rules, &s->n_include_rules)) < 0 ||
	    (rc = glob_list(&c, "exclude_rules", &s->exclude_rules, &s->n_exclude_rules)) < 0 ||
	    (rc = glob_list(&c, "include_tags", &s->include_tags, &s->n_include_tags)) < 0 ||
	    (rc = glob_list(&c, "exclude_tags", &s->exclude_tags, &s->n_exclude_tags)) < 0 ||
	    (rc = de_sink_conf_bool(&c, "send_resolved", false, &s->send_resolved)) < 0 ||
	    (rc = de_sink_conf_u64(&c, "timeout_ms", 100, 600000, default_timeout,
				   &s->timeout_ms)) < 0)
		return rc;
	if (!(s->name = strdup(name)) ||
	    !(s->origin = strdup(de_sink_conf_where(&c, NULL, where, sizeof(where)))))
		return de_error_set(err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
	c.format = s->format;
	c.timeout_ms = s->timeout_ms;
	if ((rc = s->ops->configure(&c, &s->state)) < 0)
		return rc;
	s->color = c.color;
	return 0;
}

/* The console sink when no sinks are configured (alerting.stdout). */
static int console_sink(const struct de_config *c, struct de_alertmgr_config *cfg,
			struct de_error *err)
{
	json_t *conf;
	const char *fmt;
	bool on;
	int rc;

	if ((rc = de_config_get_bool(c, "alerting.stdout.enabled", &on, err)) < 0 ||
	    (rc = de_config_get_str(c, "alerting.stdout.format", &fmt, err)) < 0)
		return rc;
	if (!on)
		return 0;
	conf = json_pack("{s:s,s:s,s:s}", "name", "stdout", "type", "stdout", "format",
			 strcmp(fmt, "text") == 0 ? "human" : fmt);
	if (!conf || !(cfg->sinks = calloc(1, sizeof(*cfg->sinks)))) {
		json_decref(conf);
		return de_error_set(err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
	}
	rc = sink_load(c, conf, "alerting.stdout", cfg->delivery_timeout_ms, &cfg->sinks[0], err);
	if (rc == 0)
		cfg->nsinks = 1;
	else
		sink_clear(&cfg->sinks[0]);
	json_decref(conf);
	return rc;
}

int de_alertmgr_config_load(const struct de_config *c, struct de_alertmgr_config **out,
			    struct de_error *err)
{
	struct de_alertmgr_config *cfg = calloc(1, sizeof(*cfg));
	const json_t *alerting = json_object_get(de_config_tree(c), "alerting");
	const json_t *sinks = json_object_get(alerting, "sinks");
	const char **kf = NULL;
	uint64_t win, u;
	size_t nkf = 0;
	int rc;

	if (!cfg)
		return de_error_set(err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
	if ((rc = de_config_get_bool(c, "alerting.deduplication.enabled", &cfg->dedup.enabled,
				     err)) < 0 ||
	    (rc = de_config_get_u64(c, "alerting.deduplication.window_minutes", &win, err)) < 0 ||
	    (rc = de_config_get_str_list(c, "alerting.deduplication.key_fields", &kf, &nkf, err)) <
		    0 ||
	    (rc = de_config_get_u64(c, "alerting.max_queue_size", &cfg->max_queue_size, err)) < 0 ||
	    (rc = de_config_get_u64(c, "alerting.delivery_timeout_ms", &cfg->delivery_timeout_ms,
				    err)) < 0 ||
	    (rc = de_config_get_u64(c, "alerting.retry.max_attempts", &u, err)) < 0)
		goto fail;
	cfg->dedup.window_ms = win * 60000;
	cfg->retry.max_attempts = (uint32_t)u;
	if ((rc = de_config_get_u64(c, "alerting.retry.initial_delay_ms",
				    &cfg->retry.initial_delay_ms, err)) < 0 ||
	    (rc = de_config_get_u64(c, "alerting.retry.max_delay_ms", &cfg->retry.max_delay_ms,
				    err)) < 0 ||
	    (rc = de_config_get_u64(c, "alerting.circuit_breaker.failure_threshold", &u, err)) <
		    0 ||
	    (rc = de_config_get_u64(c, "alerting.circuit_breaker.reset_timeout_ms",
				    &cfg->breaker_reset_ms, err)) < 0)
		goto fail;
	cfg->breaker_threshold = (uint32_t)u;
	if (cfg->retry.max_delay_ms < cfg->retry.initial_delay_ms) {
		rc = de_error_set(err, DE_ERR_CONFIGURATION, EINVAL,
				  "%s: 'alerting.retry.max_delay_ms' (%llu) is less than "
				  "initial_delay_ms (%llu)",
				  de_config_origin(c, "alerting.retry.max_delay_ms"),
				  (unsigned long long)cfg->retry.max_delay_ms,
				  (unsigned long long)cfg->retry.initial_delay_ms);
		goto fail;
	}
	if (nkf && !(cfg->dedup.key_fields = calloc(nkf, sizeof(char *)))) {
		rc = de_error_set(err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < nkf; i++) {
		bool ok = false;
		for (size_t k = 0; k < sizeof(dedup_fields) / sizeof(dedup_fields[0]); k++)
			ok |= strcmp(kf[i], dedup_fields[k]) == 0;
		if (!ok) {
			rc = de_error_set(err, DE_ERR_CONFIGURATION, EINVAL,
					  "%s: 'alerting.deduplication.key_fields': unknown field "
					  "'%s' (known: rule_id, severity, process_name, "
					  "executable_path, command_line, user_id, parent_name)",
					  de_config_origin(c, "alerting.deduplication.key_fields"),
					  kf[i]);
			goto fail;
		}
		if (!(cfg->dedup.key_fields[i] = strdup(kf[i]))) {
			rc = de_error_set(err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
			goto fail;
		}
		cfg->dedup.n_key_fields++;
	}
	if ((rc = de_exceptions_parse(json_object_get(alerting, "suppress"), "alerting.suppress",
				      de_config_origins(c), "configuration", "alerting.suppress",
				      true, DE_ERR_CONFIGURATION, &cfg->suppress, err)) < 0)
		goto fail;
	if (json_array_size(sinks) == 0) {
		if ((rc = console_sink(c, cfg, err)) < 0)
			goto fail;
	} else {
		if (json_array_size(sinks) > 64) {
			rc = de_error_set(err, DE_ERR_CONFIGURATION, E2BIG,
					  "%s: 'alerting.sinks': at most 64 sinks",
					  de_config_origin(c, "alerting.sinks"));
			goto fail;
		}
		if (!(cfg->sinks = calloc(json_array_size(sinks), sizeof(*cfg->sinks)))) {
			rc = de_error_set(err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
			goto fail;
		}
		for (size_t i = 0; i < json_array_size(sinks); i++) {
			char path[64];
			snprintf(path, sizeof(path), "alerting.sinks[%zu]", i);
			rc = sink_load(c, json_array_get(sinks, i), path, cfg->delivery_timeout_ms,
				       &cfg->sinks[i], err);
			if (rc < 0) {
				sink_clear(&cfg->sinks[i]);
				goto fail;
			}
			cfg->nsinks++;
			for (size_t k = 0; k < i; k++)
				/* a loaded sink has its name (sink_load fails through
				   de_sink_conf_fail, whose negative result the analyzer
				   cannot see from here) */
				/* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker) */
				if (strcmp(cfg->sinks[k].name, cfg->sinks[i].name) == 0) {
					rc = de_error_set(
						err, DE_ERR_CONFIGURATION, EINVAL,
						"%s: sink '%s' (%s): name: already used by the "
						"sink at %s",
						cfg->sinks[i].origin, cfg->sinks[i].name, path,
						cfg->sinks[k].origin);
					goto fail;
				}
		}
	}
	free(kf);
	*out = cfg;
	return 0;
fail:
	free(kf);
	de_alertmgr_config_free(cfg);
	return rc;
}

/* ---- routing and keys ------------------------------------------------------------ */

static bool any_glob(char *const *pats, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n; i++)
		if (fnmatch(pats[i], s, 0) == 0)
			return true;
	return false;
}

static bool any_tag(char *const *pats, size_t n, const struct de_rule *rule)
{
	for (size_t i = 0; rule && i < rule->tags_len; i++)
		if (any_glob(pats, n, rule->tags[i]))
			return true;
	return false;
}

bool de_alert_sink_routes(const struct de_alert_sink *s, const struct de_alert *a,
			  const struct de_rule *rule)
{
	if (a->kind && strcmp(a->kind, "test") == 0)
		return true;
	if (a->kind && strcmp(a->kind, "resolved") == 0 && !s->send_resolved)
		return false;
	if (a->severity < s->min_severity)
		return false;
	if (s->n_include_rules && !any_glob(s->include_rules, s->n_include_rules, a->rule_id))
		return false;
	if (any_glob(s->exclude_rules, s->n_exclude_rules, a->rule_id))
		return false;
	if (s->n_include_tags && !any_tag(s->include_tags, s->n_include_tags, rule))
		return false;
	if (any_tag(s->exclude_tags, s->n_exclude_tags, rule))
		return false;
	return true;
}

/* A string member of the alert's first process (context, else its first row). */
static const char *first_proc(const struct de_alert *a, const char *key)
{
	const json_t *p = json_array_get(json_object_get(a->context, "processes"), 0);
	const char *v = json_string_value(json_object_get(p, key));

	return v ? v : json_string_value(json_object_get(json_array_get(a->alert_data, 0), key));
}

int de_alertmgr_dedup_key(const struct de_dedup_config *cfg, const struct de_alert *a,
			  const struct de_rule *rule, struct de_buf *out)
{
	int rc = 0;

	de_buf_reset(out);
	if (rule && rule->dedupe_key_fields_len)
		return de_buf_puts(out, a->dedupe_key);
	for (size_t i = 0; i < cfg->n_key_fields && rc == 0; i++) {
		const char *f = cfg->key_fields[i], *v;
		if (!strcmp(f, "rule_id"))
			v = a->rule_id;
		else if (!strcmp(f, "severity"))
			v = de_severity_name(a->severity);
		else if (!strcmp(f, "process_name"))
			v = first_proc(a, "name");
		else
			v = first_proc(a, f);
		if (i)
			rc = de_buf_putc(out, '\x1f'); /* a separator no field holds */
		if (rc == 0 && v)
			rc = de_buf_append(out, v, strnlen(v, 1024));
	}
	if (rc == 0 && !cfg->n_key_fields)
		rc = de_buf_puts(out, a->rule_id);
	return rc;
}

/* ---- alerts test --------------------------------------------------------------- */

int de_alertmgr_test_sink(struct de_alert_sink *s, uint64_t timeout_ms, struct de_sink_result *r,
			  struct de_error *err)
{
	struct de_alert a = {0};
	struct de_buf payload = DE_BUF_INIT(1u << 20);
	struct de_alertfmt_opts fo = {.color = s->color};
	char id[DE_UUID_STR_LEN + 1];
	atomic_bool stop;
	int rc;

	atomic_init(&stop, false);
	memset(r, 0, sizeof(*r));
	if (!s->opened) {
		if (s->ops->open(s->state, err) < 0)
			return de_error_prefix(err, "sink '%s': ", s->name);
		s->opened = true;
	}
	a.alert_time = de_now_ms();
	de_uuid_v7(&a.id, a.alert_time);
	de_uuid_format(&a.id, id);
	a.rule_id = strdup("daemoneye-test");
	a.title = strdup("daemoneye test alert (not a detection)");
	a.description = strdup("A test alert sent by `daemoneye-cli alerts test` to check that "
			       "this sink delivers; nothing was detected.");
	a.severity = DE_SEV_LOW;
	a.alert_data = json_array();
	a.dedupe_key = strdup("daemoneye-test");
	a.kind = strdup("test");
	a.context = json_pack("{s:[{s:i,s:s}]}", "processes", "pid", (int)getpid(), "name",
			      "daemoneye-cli");
	if (!a.rule_id || !a.title || !a.description || !a.alert_data || !a.dedupe_key || !a.kind ||
	    !a.context || de_alertfmt_render(s->format, &a, &fo, &payload) < 0) {
		rc = de_error_set(err, DE_ERR_ALERTING, ENOMEM, "out of memory");
		goto out;
	}
	struct de_sink_msg m = {
		.alert = &a,
		.alert_id = id,
		.payload = payload.p,
		.len = payload.len,
		.attempt = 1,
		.timeout_ms = timeout_ms ? timeout_ms : s->timeout_ms,
		.stop = &stop,
	};
	s->ops->deliver(s->state, &m, r);
	rc = r->outcome == DE_SINK_OK ? 0 : -EIO;
out:
	de_buf_free(&payload);
	de_alert_clear(&a);
	return rc;
}
