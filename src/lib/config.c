/*
 * config.c — the layered configuration (see include/daemoneye/config.h).
 *
 * Each layer is parsed into a jansson tree plus an "origins" object that maps
 * every dotted key to where its value was written ("FILE:LINE:COL",
 * "environment NAME", "--set").  Building merges the layers in order and
 * validates the result against `schema` below, which is the one list of keys
 * daemoneye understands: to add a setting, add it here and to defaults.yaml.
 *
 * YAML is read by de_yaml_parse() (yaml.c), which records where each key
 * was written and reports errors with file:line:column.
 */
#include "daemoneye/config.h"
#include "daemoneye/fileio.h"
#include "daemoneye/yaml.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

extern const char *const de_defaults_yaml;
extern const size_t de_defaults_yaml_len;

#define MAX_LAYERS 64
#define MAX_KEY	   256

/* ---- schema ------------------------------------------------------------- */

enum vtype { V_U64, V_BOOL, V_STR, V_STR_LIST, V_ENUM, V_DOUBLE, V_ANY, V_MAP_LIST };

struct key_spec {
	const char *key; /* dotted path */
	enum vtype type;
	bool nullable;	     /* may be null (meaning "use the built-in choice") */
	int64_t min, max;    /* for V_U64 */
	const char *choices; /* for V_ENUM: space-separated allowed values */
};

static const struct key_spec schema[] = {
	{"app.scan_interval_ms", V_U64, false, 1000, 86400000, NULL},
	{"app.state_dir", V_STR, true, 0, 0, NULL},
	{"app.run_as_user", V_STR, false, 0, 0, NULL},
	{"app.scan_timeout_ms", V_U64, false, 1000, 3600000, NULL},
	{"app.priority_boost", V_U64, false, 0, 20, NULL},
	{"app.scheduler_slice_us", V_U64, false, 0, 100000, NULL},
	{"collection.hash_executables", V_BOOL, false, 0, 0, NULL},
	{"collection.max_hash_size_mb", V_U64, false, 0, 1048576, NULL},
	{"collection.mask_command_line", V_BOOL, false, 0, 0, NULL},
	{"collection.mask_flags", V_STR_LIST, false, 0, 0, NULL},
	{"collection.full_refresh_every", V_U64, false, 0, 1000000, NULL},
	{"collection.events", V_BOOL, false, 0, 0, NULL},
	{"collection.event_source", V_ENUM, false, 0, 0, "auto ebpf netlink"},
	{"collection.ebpf_argv_max", V_U64, false, 256, 65536, NULL},
	{"collection.ebpf_ringbuf_kb", V_U64, false, 4, 1048576, NULL},
	{"collection.ebpf_wake_gap_ms", V_U64, false, 0, 100, NULL},
	{"collection.ebpf_tcp", V_BOOL, false, 0, 0, NULL},
	{"collection.ebpf_object", V_STR, true, 0, 0, NULL},
	{"collection.ebpf_btf", V_STR, true, 0, 0, NULL},
	{"collection.env_capture", V_STR_LIST, false, 0, 0, NULL},
	{"collection.connections", V_BOOL, false, 0, 0, NULL},
	{"collection.scan_threads", V_U64, false, 0, 16, NULL},
	{"logging.level", V_ENUM, false, 0, 0, "debug info warn error"},
	{"logging.format", V_ENUM, false, 0, 0, "text json"},
	{"logging.file", V_STR, true, 0, 0, NULL},
	{"database.path", V_STR, true, 0, 0, NULL},
	{"database.max_size_mb", V_U64, false, 1, 16777216, NULL},
	{"database.min_free_disk_mb", V_U64, false, 0, 16777216, NULL},
	{"database.wal_mode", V_BOOL, false, 0, 0, NULL},
	{"database.max_connections", V_U64, false, 1, 1024, NULL},
	{"database.retention_days", V_U64, false, 1, 36500, NULL},
	{"database.sample_interval_s", V_U64, false, 1, 86400, NULL},
	{"detection.rule_timeout_ms", V_U64, false, 1, 3600000, NULL},
	{"detection.rules_dirs", V_STR_LIST, false, 0, 0, NULL},
	{"detection.builtin_rules", V_BOOL, false, 0, 0, NULL},
	{"detection.max_subquery_depth", V_U64, false, 1, 16, NULL},
	{"detection.memory_limit_mb", V_U64, false, 0, 65536, NULL},
	{"detection.rule_budget_ms", V_U64, false, 0, 3600000, NULL},
	{"detection.rule_budget_strikes", V_U64, false, 1, 1000, NULL},
	{"detection.exec_batch_wait_ms", V_U64, false, 0, 100, NULL},
	{"detection.event_queue_mb", V_U64, false, 1, 4096, NULL},
	{"alerting.stdout.enabled", V_BOOL, false, 0, 0, NULL},
	{"alerting.stdout.format", V_ENUM, false, 0, 0, "auto text human json ecs cef ocsf"},
	{"alerting.deduplication.enabled", V_BOOL, false, 0, 0, NULL},
	{"alerting.deduplication.window_minutes", V_U64, false, 1, 10080, NULL},
	{"alerting.deduplication.key_fields", V_STR_LIST, false, 0, 0, NULL},
	{"alerting.max_queue_size", V_U64, false, 1, 10000000, NULL},
	{"alerting.delivery_timeout_ms", V_U64, false, 100, 600000, NULL},
	{"alerting.retry.max_attempts", V_U64, false, 1, 100, NULL},
	{"alerting.retry.initial_delay_ms", V_U64, false, 1, 3600000, NULL},
	{"alerting.retry.max_delay_ms", V_U64, false, 1, 86400000, NULL},
	{"alerting.circuit_breaker.failure_threshold", V_U64, false, 1, 1000, NULL},
	{"alerting.circuit_breaker.reset_timeout_ms", V_U64, false, 100, 86400000, NULL},
	/* lists of mappings: alertcfg.c checks their members (names, keys, origins) */
	{"alerting.suppress", V_MAP_LIST, false, 0, 0, NULL},
	{"alerting.sinks", V_MAP_LIST, false, 0, 0, NULL},
	/* the audit ledger (audit.h) */
	{"audit.enabled", V_BOOL, false, 0, 0, NULL},
	{"audit.path", V_STR, true, 0, 0, NULL},
	{"audit.algorithm", V_ENUM, false, 0, 0, "blake3"},
	{"audit.enable_signatures", V_BOOL, false, 0, 0, NULL},
	{"audit.private_key_path", V_STR, true, 0, 0, NULL},
	{"audit.public_key_path", V_STR, true, 0, 0, NULL},
	{"audit.origin", V_STR, true, 0, 0, NULL},
	{"audit.checkpoint_every_entries", V_U64, false, 0, 1000000000, NULL},
	{"audit.checkpoint_interval_s", V_U64, false, 0, 31536000, NULL},
	{"audit.retention_days", V_U64, false, 0, 36500, NULL},
	{"watchdog.enabled", V_BOOL, false, 0, 0, NULL},
	{"watchdog.interval_ms", V_U64, false, 100, 3600000, NULL},
	{"watchdog.strikes", V_U64, false, 1, 1000, NULL},
	{"watchdog.worker_cpu_percent", V_U64, false, 0, 100000, NULL},
	{"watchdog.worker_memory_mb", V_U64, false, 0, 1048576, NULL},
	{"watchdog.procmond_cpu_percent", V_U64, false, 0, 100000, NULL},
	{"watchdog.procmond_memory_mb", V_U64, false, 0, 1048576, NULL},
	{"watchdog.worker_timeout_ms", V_U64, false, 1000, 86400000, NULL},
	{"watchdog.restart_delay_ms", V_U64, false, 0, 3600000, NULL},
	{"watchdog.restart_delay_max_ms", V_U64, false, 0, 86400000, NULL},
	{"metrics.textfile", V_STR, true, 0, 0, NULL},
	{"metrics.listen", V_STR, true, 0, 0, NULL},
	/* the fleet on NATS JetStream (fleet.h) */
	{"fleet.enabled", V_BOOL, false, 0, 0, NULL},
	{"fleet.servers", V_STR_LIST, false, 0, 0, NULL},
	{"fleet.tls.ca_file", V_STR, true, 0, 0, NULL},
	{"fleet.tls.cert_file", V_STR, true, 0, 0, NULL},
	{"fleet.tls.key_file", V_STR, true, 0, 0, NULL},
	{"fleet.credentials_file", V_STR, true, 0, 0, NULL},
	{"fleet.host_id", V_STR, true, 0, 0, NULL},
	{"fleet.subject_prefix", V_STR, false, 0, 0, NULL},
	{"fleet.stream", V_STR, false, 0, 0, NULL},
	{"fleet.create_stream", V_BOOL, false, 0, 0, NULL},
	{"fleet.stream_replicas", V_U64, false, 1, 5, NULL},
	{"fleet.stream_max_age_days", V_U64, false, 0, 36500, NULL},
	{"fleet.stream_max_bytes_mb", V_U64, false, 0, 16777216, NULL},
	{"fleet.duplicate_window_s", V_U64, false, 1, 604800, NULL},
	{"fleet.publish_events", V_BOOL, false, 0, 0, NULL},
	{"fleet.spool_max_rows", V_U64, false, 1, 100000000, NULL},
	{"fleet.publish_timeout_ms", V_U64, false, 100, 600000, NULL},
	{"fleet.connect_timeout_ms", V_U64, false, 100, 600000, NULL},
	{"fleet.operator_public_key", V_STR, true, 0, 0, NULL},
	{"fleet.publish_max_pending", V_U64, false, 1, 65536, NULL},
};

#define NSCHEMA (sizeof(schema) / sizeof(schema[0]))

/* ---- types -------------------------------------------------------------- */

struct layer {
	json_t *tree;	 /* object */
	json_t *origins; /* object: dotted key -> string */
};

struct de_config_builder {
	struct layer layers[MAX_LAYERS];
	size_t nlayers;
};

struct de_config {
	json_t *tree;
	json_t *origins;
};

/* ---- builder ------------------------------------------------------------- */

struct de_config_builder *de_config_builder_new(void)
{
	return calloc(1, sizeof(struct de_config_builder));
}

void de_config_builder_free(struct de_config_builder *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->nlayers; i++) {
		json_decref(b->layers[i].tree);
		json_decref(b->layers[i].origins);
	}
	free(b);
}

static int push_layer(struct de_config_builder *b, json_t *tree, json_t *origins,
		      struct de_error *err)
{
	if (b->nlayers >= MAX_LAYERS) {
		json_decref(tree);
		json_decref(origins);
		return de_error_set(err, DE_ERR_CONFIGURATION, E2BIG,
				    "too many configuration layers (at most %d)", MAX_LAYERS);
	}
	b->layers[b->nlayers].tree = tree;
	b->layers[b->nlayers].origins = origins;
	b->nlayers++;
	return 0;
}

int de_config_builder_add_yaml(struct de_config_builder *b, const char *text, size_t len,
			       const char *origin, struct de_error *err)
{
	json_t *origins = json_object(), *tree = NULL;
	int rc;

	if (!origins)
		return de_error_set(err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
	rc = de_yaml_parse(text, len, origin, origins, DE_ERR_CONFIGURATION, &tree, err);
	if (rc < 0) {
		json_decref(origins);
		return rc;
	}
	if (json_is_null(tree)) {
		json_decref(tree);
		tree = json_object(); /* an empty file sets nothing */
	} else if (!json_is_object(tree)) {
		json_decref(tree);
		json_decref(origins);
		return de_error_set(err, DE_ERR_CONFIGURATION, EINVAL,
				    "%s: the top level must be a mapping of sections (app:, "
				    "logging:, ...)",
				    origin);
	}
	return push_layer(b, tree, origins, err);
}

int de_config_builder_add_embedded_defaults(struct de_config_builder *b, struct de_error *err)
{
	return de_config_builder_add_yaml(b, de_defaults_yaml, de_defaults_yaml_len, "defaults",
					  err);
}

int de_expand_home(const char *path, char **out, struct de_error *err)
{
	const char *home;
	char *s = NULL;

	if (strncmp(path, "~/", 2) != 0) {
		s = strdup(path);
		goto done;
	}
	home = getenv("HOME");
	if (!home || !*home) {
		struct passwd *pw = getpwuid(getuid());
		home = pw ? pw->pw_dir : NULL;
	}
	if (!home)
		return de_error_set(err, DE_ERR_CONFIGURATION, ENOENT,
				    "cannot expand '%s': no home directory ($HOME unset)", path);
	if (asprintf(&s, "%s/%s", home, path + 2) < 0)
		s = NULL;
done:
	if (!s)
		return de_error_set(err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
	*out = s;
	return 0;
}

int de_config_builder_add_file(struct de_config_builder *b, const char *path, bool optional,
			       struct de_error *err)
{
	char *full = NULL, *buf = NULL;
	size_t len = 0;
	int rc;

	if ((rc = de_expand_home(path, &full, err)) < 0)
		return rc;
	rc = de_read_file(full, DE_CONFIG_MAX_FILE, &buf, &len, NULL);
	if (rc == -ENOENT && optional)
		rc = 0;
	else if (rc == -EISDIR)
		rc = de_error_set(err, DE_ERR_CONFIGURATION, EISDIR,
				  "configuration file %s is not a regular file", full);
	else if (rc == -EFBIG)
		rc = de_error_set(err, DE_ERR_CONFIGURATION, EFBIG,
				  "configuration file %s is larger than %u bytes", full,
				  DE_CONFIG_MAX_FILE);
	else if (rc < 0)
		rc = de_error_set(err, DE_ERR_CONFIGURATION, -rc,
				  "cannot read configuration file %s: %s", full, strerror(-rc));
	else
		rc = de_config_builder_add_yaml(b, buf, len, full, err);
	free(buf);
	free(full);
	return rc;
}

/* Set tree[path] = val (consumed), creating mappings along the dotted path. */
static int set_path(json_t *tree, const char *path, json_t *val)
{
	char buf[MAX_KEY * 4];
	char *seg, *next;
	json_t *cur = tree;

	snprintf(buf, sizeof(buf), "%s", path);
	seg = buf;
	while ((next = strchr(seg, '.'))) {
		json_t *child;
		*next = '\0';
		child = json_object_get(cur, seg);
		if (!json_is_object(child)) {
			child = json_object();
			if (json_object_set_new(cur, seg, child) < 0) {
				json_decref(val);
				return -1;
			}
		}
		cur = child;
		seg = next + 1;
	}
	return json_object_set_new(cur, seg, val);
}

static bool valid_key(const char *k)
{
	size_t n = strlen(k);

	if (n == 0 || n >= MAX_KEY || k[0] == '.' || k[n - 1] == '.' || strstr(k, ".."))
		return false;
	for (; *k; k++)
		if (!islower((unsigned char)*k) && !isdigit((unsigned char)*k) && *k != '_' &&
		    *k != '.')
			return false;
	return true;
}

/* One key=value from the environment or --set, value read as YAML. */
static int add_assignment(struct de_config_builder *b, const char *key, const char *value,
			  const char *origin, struct de_error *err)
{
	json_t *tree, *origins, *val = NULL;
	int rc;

	if (!valid_key(key))
		return de_error_set(err, DE_ERR_CONFIGURATION, EINVAL,
				    "%s: invalid configuration key '%s' (expected dotted "
				    "lower-case names such as app.scan_interval_ms)",
				    origin, key);
	if (strlen(value) > DE_CONFIG_MAX_FILE)
		return de_error_set(err, DE_ERR_CONFIGURATION, EFBIG, "%s: value too large",
				    origin);
	rc = de_yaml_parse(value, strlen(value), origin, NULL, DE_ERR_CONFIGURATION, &val, err);
	if (rc < 0)
		return rc;
	tree = json_object();
	origins = json_object();
	if (!tree || !origins) {
		json_decref(val);
		val = NULL;
	}
	if (!val || set_path(tree, key, val) < 0 ||
	    json_object_set_new(origins, key, json_string(origin)) < 0) {
		json_decref(tree);
		json_decref(origins);
		return de_error_set(err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
	}
	return push_layer(b, tree, origins, err);
}

/* Drop the layers pushed after the first n (a failed add leaves no half). */
static void pop_layers(struct de_config_builder *b, size_t n)
{
	while (b->nlayers > n) {
		b->nlayers--;
		json_decref(b->layers[b->nlayers].tree);
		json_decref(b->layers[b->nlayers].origins);
	}
}

int de_config_builder_add_environment(struct de_config_builder *b, const char *prefix,
				      char *const *envp, struct de_error *err)
{
	size_t plen, before = b->nlayers;

	if (!prefix)
		prefix = DE_CONFIG_ENV_PREFIX;
	if (!envp)
		envp = environ;
	plen = strlen(prefix);
	for (size_t i = 0; envp[i]; i++) {
		const char *e = envp[i], *eq = strchr(e, '=');
		char key[MAX_KEY], origin[MAX_KEY + 32];
		size_t k = 0;
		int rc;

		if (!eq || (size_t)(eq - e) <= plen || strncasecmp(e, prefix, plen) != 0)
			continue;
		snprintf(origin, sizeof(origin), "environment %.*s", (int)(eq - e), e);
		for (const char *p = e + plen; p < eq && k + 1 < sizeof(key); p++) {
			if (p[0] == '_' && p + 1 < eq && p[1] == '_') {
				key[k++] = '.';
				p++;
			} else {
				key[k++] = (char)tolower((unsigned char)*p);
			}
		}
		key[k] = '\0';
		if ((rc = add_assignment(b, key, eq + 1, origin, err)) < 0) {
			pop_layers(b, before);
			return rc;
		}
	}
	return 0;
}

int de_config_builder_add_set(struct de_config_builder *b, const char *assignment,
			      struct de_error *err)
{
	const char *eq = strchr(assignment, '=');
	char key[MAX_KEY], origin[MAX_KEY + 16];

	if (!eq || eq == assignment || (size_t)(eq - assignment) >= sizeof(key))
		return de_error_set(err, DE_ERR_CONFIGURATION, EINVAL,
				    "--set %s: expected key=value (for example "
				    "--set app.scan_interval_ms=15000)",
				    assignment);
	memcpy(key, assignment, (size_t)(eq - assignment));
	key[eq - assignment] = '\0';
	snprintf(origin, sizeof(origin), "--set %s", key);
	return add_assignment(b, key, eq + 1, origin, err);
}

/* ---- merging and validation ---------------------------------------------- */

/* Drop origins of `path` and everything below it. */
static void drop_origins(json_t *origins, const char *path)
{
	size_t n = strlen(path);
	const char *k;
	json_t *v;
	void *tmp;

	json_object_foreach_safe (origins, tmp, k, v) {
		if (strncmp(k, path, n) == 0 && (k[n] == '\0' || k[n] == '.' || k[n] == '['))
			json_object_del(origins, k);
	}
}

static int copy_origins(json_t *dst, const json_t *src, const char *path)
{
	size_t n = strlen(path);
	const char *k;
	json_t *v;

	json_object_foreach ((json_t *)src, k, v) {
		if (strncmp(k, path, n) == 0 && (k[n] == '\0' || k[n] == '.' || k[n] == '[') &&
		    json_object_set(dst, k, v) < 0)
			return -1;
	}
	return 0;
}

static int merge(json_t *dst, json_t *dst_orig, const json_t *src, const json_t *src_orig,
		 const char *path)
{
	const char *k;
	json_t *v;

	json_object_foreach ((json_t *)src, k, v) {
		char sub[MAX_KEY * 4];
		json_t *cur = json_object_get(dst, k);

		snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", k);
		if (json_is_object(cur) && json_is_object(v)) {
			json_t *o = json_object_get(src_orig, sub);
			if (o && json_object_set(dst_orig, sub, o) < 0)
				return -1;
			if (merge(cur, dst_orig, v, src_orig, sub) < 0)
				return -1;
			continue;
		}
		drop_origins(dst_orig, sub);
		if (json_object_set_new(dst, k, json_deep_copy(v)) < 0 ||
		    copy_origins(dst_orig, src_orig, sub) < 0)
			return -1;
	}
	return 0;
}

static const char *origin_of(const json_t *origins, const char *key)
{
	const char *o = json_string_value(json_object_get(origins, key));
	return o ? o : "defaults";
}

static const struct key_spec *spec_for(const char *key)
{
	for (size_t i = 0; i < NSCHEMA; i++)
		if (strcmp(schema[i].key, key) == 0)
			return &schema[i];
	return NULL;
}

static bool is_section(const char *key)
{
	size_t n = strlen(key);
	for (size_t i = 0; i < NSCHEMA; i++)
		if (strncmp(schema[i].key, key, n) == 0 && schema[i].key[n] == '.')
			return true;
	return false;
}

static const char *json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "a mapping";
	case JSON_ARRAY:
		return "a list";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

static int check_value(const struct key_spec *s, const json_t *v, const json_t *origins,
		       struct de_error *err)
{
	const char *o = origin_of(origins, s->key);

	if (json_is_null(v)) {
		if (s->nullable)
			return 0;
		return de_error_set(err, DE_ERR_CONFIGURATION, EINVAL, "%s: '%s' must not be null",
				    o, s->key);
	}
	switch (s->type) {
	case V_U64:
		if (!json_is_integer(v))
			break;
		if (json_integer_value(v) < s->min || json_integer_value(v) > s->max)
			return de_error_set(err, DE_ERR_CONFIGURATION, ERANGE,
					    "%s: '%s' is %lld, out of range %lld..%lld", o, s->key,
					    (long long)json_integer_value(v), (long long)s->min,
					    (long long)s->max);
		return 0;
	case V_BOOL:
		if (json_is_boolean(v))
			return 0;
		break;
	case V_STR:
		if (json_is_string(v))
			return 0;
		break;
	case V_DOUBLE:
		if (json_is_number(v))
			return 0;
		break;
	case V_STR_LIST: {
		size_t i;
		json_t *e;
		if (!json_is_array(v))
			break;
		json_array_foreach (v, i, e)
			if (!json_is_string(e))
				return de_error_set(
					err, DE_ERR_CONFIGURATION, EINVAL,
					"%s: '%s' must be a list of strings; item %zu is %s", o,
					s->key, i, json_kind(e));
		return 0;
	}
	case V_ENUM: {
		char word[64];
		const char *p = s->choices;
		if (!json_is_string(v))
			break;
		while (*p) {
			size_t l = strcspn(p, " ");
			snprintf(word, sizeof(word), "%.*s", (int)l, p);
			if (strcmp(word, json_string_value(v)) == 0)
				return 0;
			p += l;
			while (*p == ' ')
				p++;
		}
		return de_error_set(err, DE_ERR_CONFIGURATION, EINVAL,
				    "%s: '%s' is '%s'; expected one of: %s", o, s->key,
				    json_string_value(v), s->choices);
	}
	case V_MAP_LIST: {
		size_t i;
		json_t *e;
		if (!json_is_array(v))
			break;
		json_array_foreach (v, i, e)
			if (!json_is_object(e))
				return de_error_set(
					err, DE_ERR_CONFIGURATION, EINVAL,
					"%s: '%s' must be a list of mappings; item %zu is %s", o,
					s->key, i, json_kind(e));
		return 0;
	}
	case V_ANY:
		return 0;
	}
	static const char *const want[] = {
		[V_U64] = "a non-negative integer",
		[V_BOOL] = "true or false",
		[V_STR] = "a string",
		[V_STR_LIST] = "a list of strings",
		[V_ENUM] = "a string",
		[V_DOUBLE] = "a number",
		[V_ANY] = "anything",
		[V_MAP_LIST] = "a list of mappings",
	};
	return de_error_set(err, DE_ERR_CONFIGURATION, EINVAL, "%s: '%s' must be %s, not %s", o,
			    s->key, want[s->type], json_kind(v));
}

static int validate(const json_t *tree, const json_t *origins, const char *path,
		    struct de_error *err)
{
	const char *k;
	json_t *v;

	json_object_foreach ((json_t *)tree, k, v) {
		char sub[MAX_KEY * 4];
		const struct key_spec *s;
		int rc;

		snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", k);
		s = spec_for(sub);
		if (s) {
			if ((rc = check_value(s, v, origins, err)) < 0)
				return rc;
		} else if (is_section(sub)) {
			if (!json_is_object(v))
				return de_error_set(err, DE_ERR_CONFIGURATION, EINVAL,
						    "%s: '%s' is a section and must be a mapping, "
						    "not %s",
						    origin_of(origins, sub), sub, json_kind(v));
			if ((rc = validate(v, origins, sub, err)) < 0)
				return rc;
		} else {
			return de_error_set(
				err, DE_ERR_CONFIGURATION, EINVAL,
				"%s: unknown configuration key '%s' (see `daemoneye-cli "
				"config show` for the known keys)",
				origin_of(origins, sub), sub);
		}
	}
	return 0;
}

int de_config_build(struct de_config_builder *b, struct de_config **out, struct de_error *err)
{
	struct de_config *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return de_error_set(err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
	c->tree = json_object();
	c->origins = json_object();
	if (!c->tree || !c->origins) {
		rc = de_error_set(err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < b->nlayers; i++) {
		if (merge(c->tree, c->origins, b->layers[i].tree, b->layers[i].origins, "") < 0) {
			rc = de_error_set(err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
			goto fail;
		}
	}
	if ((rc = validate(c->tree, c->origins, "", err)) < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	de_config_free(c);
	return rc;
}

int de_config_files(const struct de_config_sources *src, char *paths[2], bool optional[2],
		    size_t *n, struct de_error *err)
{
	const char *want[2];
	bool opt[2];
	size_t k = 0;

	if (src->file) {
		want[k] = src->file;
		opt[k++] = false;
	} else {
		const char *sys = src->system_file ? src->system_file : DE_CONFIG_SYSTEM_FILE;
		const char *usr = src->user_file ? src->user_file : DE_CONFIG_USER_FILE;
		if (*sys) {
			want[k] = sys;
			opt[k++] = true;
		}
		if (*usr) {
			want[k] = usr;
			opt[k++] = true;
		}
	}
	for (size_t i = 0; i < k; i++) {
		int rc = de_expand_home(want[i], &paths[i], err);
		if (rc < 0) {
			while (i-- > 0)
				free(paths[i]);
			return rc;
		}
		optional[i] = opt[i];
	}
	*n = k;
	return 0;
}

int de_config_load(const struct de_config_sources *src, struct de_config **out,
		   struct de_error *err)
{
	struct de_config_builder *b = de_config_builder_new();
	char *paths[2] = {NULL, NULL};
	bool optional[2];
	size_t n = 0;
	int rc;

	if (!b)
		return de_error_set(err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
	if ((rc = de_config_builder_add_embedded_defaults(b, err)) < 0)
		goto out;
	if (src->texts) {
		for (size_t i = 0; rc == 0 && i < src->ntexts; i++)
			rc = de_config_builder_add_yaml(b, src->texts[i].text, src->texts[i].len,
							src->texts[i].origin, err);
	} else if ((rc = de_config_files(src, paths, optional, &n, err)) == 0) {
		for (size_t i = 0; rc == 0 && i < n; i++)
			rc = de_config_builder_add_file(b, paths[i], optional[i], err);
	}
	if (rc < 0)
		goto out;
	if ((rc = de_config_builder_add_environment(b, NULL, src->envp, err)) < 0)
		goto out;
	for (size_t i = 0; i < src->nsets; i++)
		if ((rc = de_config_builder_add_set(b, src->sets[i], err)) < 0)
			goto out;
	rc = de_config_build(b, out, err);
out:
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	de_config_builder_free(b);
	return rc;
}

void de_config_free(struct de_config *c)
{
	if (!c)
		return;
	json_decref(c->tree);
	json_decref(c->origins);
	free(c);
}

/* ---- getters ------------------------------------------------------------- */

static const json_t *lookup(const struct de_config *c, const char *key)
{
	char buf[MAX_KEY * 4];
	char *seg, *next;
	const json_t *cur = c->tree;

	if (strlen(key) >= sizeof(buf))
		return NULL;
	snprintf(buf, sizeof(buf), "%s", key);
	seg = buf;
	while ((next = strchr(seg, '.'))) {
		*next = '\0';
		cur = json_object_get(cur, seg);
		if (!json_is_object(cur))
			return NULL;
		seg = next + 1;
	}
	return json_object_get(cur, seg);
}

static int get_checked(const struct de_config *c, const char *key, const json_t **v,
		       struct de_error *err)
{
	*v = lookup(c, key);
	if (!*v)
		return de_error_set(err, DE_ERR_CONFIGURATION, ENOENT,
				    "missing configuration key '%s'", key);
	return 0;
}

static int wrong_type(const struct de_config *c, const char *key, const json_t *v, const char *want,
		      struct de_error *err)
{
	return de_error_set(err, DE_ERR_CONFIGURATION, EINVAL, "%s: '%s' must be %s, not %s",
			    origin_of(c->origins, key), key, want, json_kind(v));
}

int de_config_get_u64(const struct de_config *c, const char *key, uint64_t *out,
		      struct de_error *err)
{
	const json_t *v;
	int rc = get_checked(c, key, &v, err);

	if (rc < 0)
		return rc;
	if (!json_is_integer(v))
		return wrong_type(c, key, v, "a non-negative integer", err);
	if (json_integer_value(v) < 0)
		return de_error_set(err, DE_ERR_CONFIGURATION, ERANGE,
				    "%s: '%s' is %lld; it must not be negative",
				    origin_of(c->origins, key), key,
				    (long long)json_integer_value(v));
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

int de_config_get_i64(const struct de_config *c, const char *key, int64_t *out,
		      struct de_error *err)
{
	const json_t *v;
	int rc = get_checked(c, key, &v, err);

	if (rc < 0)
		return rc;
	if (!json_is_integer(v))
		return wrong_type(c, key, v, "an integer", err);
	*out = json_integer_value(v);
	return 0;
}

int de_config_get_double(const struct de_config *c, const char *key, double *out,
			 struct de_error *err)
{
	const json_t *v;
	int rc = get_checked(c, key, &v, err);

	if (rc < 0)
		return rc;
	if (!json_is_number(v))
		return wrong_type(c, key, v, "a number", err);
	*out = json_number_value(v);
	return 0;
}

int de_config_get_bool(const struct de_config *c, const char *key, bool *out, struct de_error *err)
{
	const json_t *v;
	int rc = get_checked(c, key, &v, err);

	if (rc < 0)
		return rc;
	if (!json_is_boolean(v))
		return wrong_type(c, key, v, "true or false", err);
	*out = json_is_true(v);
	return 0;
}

int de_config_get_str(const struct de_config *c, const char *key, const char **out,
		      struct de_error *err)
{
	const json_t *v;
	int rc = get_checked(c, key, &v, err);

	if (rc < 0)
		return rc;
	if (json_is_null(v)) {
		*out = NULL;
		return 0;
	}
	if (!json_is_string(v))
		return wrong_type(c, key, v, "a string", err);
	*out = json_string_value(v);
	return 0;
}

int de_config_get_str_list(const struct de_config *c, const char *key, const char ***out, size_t *n,
			   struct de_error *err)
{
	const json_t *v;
	const char **arr;
	int rc = get_checked(c, key, &v, err);

	if (rc < 0)
		return rc;
	if (!json_is_array(v))
		return wrong_type(c, key, v, "a list of strings", err);
	for (size_t i = 0; i < json_array_size(v); i++)
		if (!json_is_string(json_array_get(v, i)))
			return wrong_type(c, key, v, "a list of strings", err);
	arr = calloc(json_array_size(v) + 1, sizeof(char *));
	if (!arr)
		return de_error_set(err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
	for (size_t i = 0; i < json_array_size(v); i++)
		arr[i] = json_string_value(json_array_get(v, i));
	*out = arr;
	*n = json_array_size(v);
	return 0;
}

const char *de_config_origin(const struct de_config *c, const char *key)
{
	if (!lookup(c, key))
		return NULL;
	return origin_of(c->origins, key);
}

const json_t *de_config_tree(const struct de_config *c)
{
	return c->tree;
}

const json_t *de_config_origins(const struct de_config *c)
{
	return c->origins;
}

int de_config_state_dir(const struct de_config *c, char **out, struct de_error *err)
{
	const char *dir = NULL, *xdg;
	char *s = NULL;
	int rc = de_config_get_str(c, "app.state_dir", &dir, err);

	if (rc < 0)
		return rc;
	if (dir && *dir)
		return de_expand_home(dir, out, err);
	if (geteuid() == 0) {
		s = strdup("/var/lib/daemoneye");
	} else if ((xdg = getenv("XDG_STATE_HOME")) && xdg[0] == '/') {
		if (asprintf(&s, "%s/daemoneye", xdg) < 0)
			s = NULL;
	} else {
		return de_expand_home("~/.local/state/daemoneye", out, err);
	}
	if (!s)
		return de_error_set(err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
	*out = s;
	return 0;
}

int de_config_store_path(const struct de_config *c, char **out, struct de_error *err)
{
	const char *dbpath;
	char *state = NULL, *s;
	int rc;

	if ((rc = de_config_get_str(c, "database.path", &dbpath, err)) < 0)
		return rc;
	if (dbpath && *dbpath)
		return de_expand_home(dbpath, out, err);
	if ((rc = de_config_state_dir(c, &state, err)) < 0)
		return rc;
	if (asprintf(&s, "%s/events.sqlite", state) < 0)
		rc = de_error_set(err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
	else
		*out = s;
	free(state);
	return rc;
}
