/*
 * rules.h — DetectionRule files: parsing, loading from the builtin library,
 * directories and files, the operator's enable/disable overrides, and YAML
 * export.
 *
 * A rule file is YAML holding one rule (a mapping), a list of rules, or a
 * mapping with a `rules:` list.  A rule has id, name, severity and sql, and
 * optionally description, version, category, tags (ATT&CK techniques as
 * `attack.t1059.004`), author, enabled, dedupe_key_fields and exceptions
 * (a list of exceptions as exception.h describes them, without `rule`,
 * checked like the rest: FILE:LINE:COL on a problem).  The loader
 * fills created_at/updated_at (the file's mtime; build time for builtins)
 * and source_type/source_path.  When a validator is given, each rule's SQL
 * is checked with it (and dedupe_key_fields against the query's columns).
 *
 * A bad rule is a "problem" naming file:line:column, and is skipped; the
 * other rules of the file load.  A rule whose id is already in the set is a
 * problem naming both places.  Only a file that cannot be read or parsed as
 * YAML at all fails the whole load.
 *
 * Ownership: a de_rule_set owns its rules and origins; clear it with
 * de_rule_set_clear().  de_rule_problems owns its strings.
 */
#ifndef DAEMONEYE_RULES_H
#define DAEMONEYE_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "daemoneye/config.h"
#include "daemoneye/error.h"
#include "daemoneye/rule.h"
#include "daemoneye/validator.h"

#define DE_RULES_MAX_FILE  (1u << 20) /* bytes per rule file */
#define DE_RULES_MAX_RULES 4096	      /* rules per set */

struct de_rule_set {
	struct de_rule *items; /* owned */
	char **origins;	       /* owned: "FILE:LINE:COL" where each rule was defined */
	size_t len;
	size_t cap;
};

struct de_rule_problems {
	char **items; /* owned messages, "FILE:LINE:COL: what is wrong" */
	size_t len;
};

void de_rule_set_clear(struct de_rule_set *s);
void de_rule_problems_clear(struct de_rule_problems *p);
/* The rule with this id, or NULL (borrowed). */
struct de_rule *de_rule_set_find(const struct de_rule_set *s, const char *id);

/*
 * Parse the rule file text[0..len) named `origin` and add its good rules to
 * *set with source type `src` (source_path = origin unless builtin).
 * `v` may be NULL (SQL not checked).  Returns 0 when the file was read
 * (problems, if any, appended to *problems), or a ValidationError when the
 * text is not YAML of the expected shape (ENOMEM when memory ran out).
 * On an error *set and *problems are as they were: this function and the
 * loaders below add all of what they read or none of it.
 */
int de_rules_parse(const char *text, size_t len, const char *origin, enum de_rule_source src,
		   int64_t mtime_ms, struct de_validator *v, struct de_rule_set *set,
		   struct de_rule_problems *problems, struct de_error *err);

/* The builtin library (rules/builtin.yaml, compiled in). */
int de_rules_load_builtin(struct de_validator *v, struct de_rule_set *set,
			  struct de_rule_problems *problems, struct de_error *err);
/* One file (at most DE_RULES_MAX_FILE bytes). */
int de_rules_load_file(const char *path, enum de_rule_source src, struct de_validator *v,
		       struct de_rule_set *set, struct de_rule_problems *problems,
		       struct de_error *err);
/*
 * Every *.yaml / *.yml file of dir, in name order.  A directory that does
 * not exist is not an error (nothing loaded); one that cannot be read is.
 * A file that fails as a whole is recorded as a problem; the others load.
 */
int de_rules_load_dir(const char *dir, enum de_rule_source src, struct de_validator *v,
		      struct de_rule_set *set, struct de_rule_problems *problems,
		      struct de_error *err);

/*
 * The operator's overrides, a JSON file {"enabled": {"RULE-ID": bool}}
 * (`daemoneye-cli rules enable|disable`).  Apply sets each named rule's
 * enabled flag (ids not in the set are ignored); a missing file is no
 * overrides.  Set records one override atomically (write + rename).
 */
int de_rules_state_apply(const char *path, struct de_rule_set *set, struct de_error *err);
int de_rules_state_set(const char *path, const char *id, bool enabled, struct de_error *err);

/*
 * Where the operator's rules live, under app.state_dir: imported rule files
 * in *user_dir ("STATE/rules.d", loaded as source User) and enable/disable
 * overrides in *state_file ("STATE/rules-state.json").  New strings the
 * caller frees.
 */
int de_rules_paths(const struct de_config *c, char **user_dir, char **state_file,
		   struct de_error *err);

/*
 * Load the configured rule set: the builtin library (if
 * detection.builtin_rules), every directory of detection.rules_dirs
 * (source File), the imported rules (source User), then the overrides.
 */
int de_rules_load_config(const struct de_config *c, struct de_validator *v, struct de_rule_set *set,
			 struct de_rule_problems *problems, struct de_error *err);

/* Write rules as one YAML rule file (a `rules:` list) that loads back equal. */
int de_rules_write_yaml(FILE *f, const struct de_rule *const *rules, size_t n,
			struct de_error *err);

#endif
