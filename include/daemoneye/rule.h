/*
 * rule.h — the seed's DetectionRule and RuleSourceType: the model
 * (lifetime, equality, JSON).  Loading rules from files and the rule set
 * are in rules.h; running them is detect.h.
 *
 * Ownership: a rule owns its strings and vectors; de_rule_free and
 * de_rule_clear release them and accept NULL.
 */
#ifndef DAEMONEYE_RULE_H
#define DAEMONEYE_RULE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemoneye/alert.h" /* enum de_severity */
#include "daemoneye/error.h"

/* ---- RuleSourceType ----------------------------------------------------- */

enum de_rule_source { DE_RULE_BUILTIN = 0, DE_RULE_FILE, DE_RULE_USER, DE_RULE_SOURCE_MAX };

const char *de_rule_source_name(enum de_rule_source s); /* "builtin", ... */
int de_rule_source_parse(const char *s, enum de_rule_source *out, struct de_error *err);

/* ---- DetectionRule ------------------------------------------------------ */

struct de_rule {
	char *id;
	char *name;
	char *description; /* NULL when absent */
	int32_t version;
	char *sql_query;
	bool enabled;
	enum de_severity severity;
	char *category; /* NULL when absent */
	char **tags;
	size_t tags_len;
	char *author;	    /* NULL when absent */
	int64_t created_at; /* ms since the Unix epoch */
	int64_t updated_at;
	enum de_rule_source source_type;
	char *source_path; /* NULL when absent */
	/* Not in the seed: result columns whose values (after the rule id) form
	 * each alert's dedupe key; none means name + executable_path. */
	char **dedupe_key_fields;
	size_t dedupe_key_fields_len;
	/* Not in the seed: the rule's own exceptions, a JSON array of mappings
	 * checked by de_exceptions_parse() (exception.h) when the rule is
	 * loaded; NULL when it has none.  JSON "exceptions" only when set. */
	json_t *exceptions;
};

void de_rule_clear(struct de_rule *r);
void de_rule_free(struct de_rule *r);
bool de_rule_equal(const struct de_rule *a, const struct de_rule *b);
json_t *de_rule_to_json(const struct de_rule *r);
int de_rule_from_json(const json_t *j, struct de_rule *out, struct de_error *err);

#endif
