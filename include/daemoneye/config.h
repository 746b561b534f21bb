/*
 * config.h — layered configuration, the seed's ConfigBuilder.
 *
 * Layers apply in the order they are added, each overriding the one before:
 * embedded defaults (src/lib/defaults.yaml, compiled in), YAML files,
 * environment variables (prefix DAEMONEYE_ by default, "__" for nesting:
 * DAEMONEYE_APP__SCAN_INTERVAL_MS=15000 is app.scan_interval_ms), then
 * command-line `--set key=value`.  Mappings merge key by key; any other
 * value (scalar or list) replaces the earlier one whole.  Values from the
 * environment and --set are read as YAML, so `[a, b]` is a list and `15000`
 * an integer.
 *
 * de_config_build() checks every key against the schema in config.c: an
 * unknown key, a value of the wrong type or out of range is a
 * ConfigurationError that names the key and where the value came from
 * ("/etc/daemoneye/config.yaml:3:20", "environment DAEMONEYE_APP__X",
 * "--set"), so a typo never passes silently.
 *
 * Ownership: builders and configs are opaque and freed with their _free
 * functions (NULL accepted).  Strings returned by getters are borrowed and
 * live as long as the config.
 */
#ifndef DAEMONEYE_CONFIG_H
#define DAEMONEYE_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemoneye/error.h"

struct de_config_builder;
struct de_config;

/* Default prefix of configuration environment variables. */
#define DE_CONFIG_ENV_PREFIX "DAEMONEYE_"
/* System-wide and per-user configuration files. */
#define DE_CONFIG_SYSTEM_FILE "/etc/daemoneye/config.yaml"
#define DE_CONFIG_USER_FILE   "~/.config/daemoneye/config.yaml"
/* Largest configuration file or value we read (bytes). */
#define DE_CONFIG_MAX_FILE (4u << 20)

struct de_config_builder *de_config_builder_new(void);
void de_config_builder_free(struct de_config_builder *b);

/* The compiled-in defaults (always valid). */
int de_config_builder_add_embedded_defaults(struct de_config_builder *b, struct de_error *err);

/*
 * Add a YAML file.  A leading "~/" is the home directory ($HOME, else the
 * passwd entry).  A missing file is skipped when `optional`; a file that
 * exists but cannot be read, or is not valid YAML (error names
 * file:line:column), or whose top level is not a mapping, is an error.
 */
int de_config_builder_add_file(struct de_config_builder *b, const char *path, bool optional,
			       struct de_error *err);

/* Add YAML text (for tests and --config-string); `origin` names it in errors. */
int de_config_builder_add_yaml(struct de_config_builder *b, const char *text, size_t len,
			       const char *origin, struct de_error *err);

/*
 * Add every variable in envp (NULL: the process environment) whose name
 * starts with `prefix` (case-insensitive; NULL: DE_CONFIG_ENV_PREFIX).
 */
int de_config_builder_add_environment(struct de_config_builder *b, const char *prefix,
				      char *const *envp, struct de_error *err);

/* Add one "key=value" assignment (dotted key), as from --set. */
int de_config_builder_add_set(struct de_config_builder *b, const char *assignment,
			      struct de_error *err);

/* Merge the layers, validate against the schema, produce a config. */
int de_config_build(struct de_config_builder *b, struct de_config **out, struct de_error *err);

/*
 * The standard stack used by the programs: defaults; then `file` (required)
 * if non-NULL, else system_file and user_file (both optional; NULL selects
 * DE_CONFIG_SYSTEM_FILE / DE_CONFIG_USER_FILE, "" skips); the environment;
 * then the `nsets` --set assignments.
 */
struct de_config_text {
	const char *origin; /* the file's name, for messages */
	const char *text;   /* its bytes (not NUL-terminated necessarily) */
	size_t len;
};

struct de_config_sources {
	const char *file;	 /* -c FILE, or NULL */
	const char *system_file; /* NULL: default, "": none */
	const char *user_file;	 /* NULL: default, "": none */
	char *const *envp;	 /* NULL: the process environment */
	const char *const *sets; /* --set assignments */
	size_t nsets;
	/*
	 * The files' contents read by someone else (the privileged parent
	 * opens them for the unprivileged worker): when non-NULL these
	 * ntexts layers replace file, system_file and user_file.
	 */
	const struct de_config_text *texts;
	size_t ntexts;
};
int de_config_load(const struct de_config_sources *src, struct de_config **out,
		   struct de_error *err);

/*
 * The files de_config_load reads for src (texts aside), in order: src->file
 * (required), else the system and user files (each optional; "" skips
 * one).  Up to two paths, "~/" expanded, as new strings in paths[] (the
 * caller frees them), optional[] saying which may be missing; *n their
 * number.
 */
int de_config_files(const struct de_config_sources *src, char *paths[2], bool optional[2],
		    size_t *n, struct de_error *err);

void de_config_free(struct de_config *c);

/*
 * Typed getters.  A missing key, a value of another type and a value out of
 * the type's range are ConfigurationErrors naming the key and its origin;
 * *out is untouched on failure.
 */
int de_config_get_u64(const struct de_config *c, const char *key, uint64_t *out,
		      struct de_error *err);
int de_config_get_i64(const struct de_config *c, const char *key, int64_t *out,
		      struct de_error *err);
int de_config_get_double(const struct de_config *c, const char *key, double *out,
			 struct de_error *err);
int de_config_get_bool(const struct de_config *c, const char *key, bool *out, struct de_error *err);
/* A string; a null value yields *out = NULL (the key is set but empty). */
int de_config_get_str(const struct de_config *c, const char *key, const char **out,
		      struct de_error *err);
/*
 * A list of strings: *out is a new NULL-terminated array of borrowed
 * pointers; free the array (not the strings) with free().
 */
int de_config_get_str_list(const struct de_config *c, const char *key, const char ***out, size_t *n,
			   struct de_error *err);

/* Where the value of `key` came from ("defaults", "FILE:L:C", ...), or NULL. */
const char *de_config_origin(const struct de_config *c, const char *key);

/* The merged tree (borrowed), e.g. for `config show`. */
const json_t *de_config_tree(const struct de_config *c);
/*
 * Where every value was written (borrowed): an object from dotted paths,
 * list items included ("alerting.sinks[1].url"), to "FILE:LINE:COL",
 * "environment NAME" or "--set KEY".  Paths from the defaults are absent.
 */
const json_t *de_config_origins(const struct de_config *c);

/*
 * Resolve app.state_dir: the configured value, else /var/lib/daemoneye for
 * root, else $XDG_STATE_HOME/daemoneye, else ~/.local/state/daemoneye.
 * Returns a new string.
 */
int de_config_state_dir(const struct de_config *c, char **out, struct de_error *err);

/*
 * The event store's file: database.path (a leading "~/" expanded) when
 * set, else <app.state_dir>/events.sqlite.  A new string in *out.
 */
int de_config_store_path(const struct de_config *c, char **out, struct de_error *err);

/* Expand a leading "~/" (new string in *out). */
int de_expand_home(const char *path, char **out, struct de_error *err);

#endif
