/*
 * rule.c — DetectionRule (see rule.h): source type names and the field
 * table behind the model's lifetime, equality and JSON.
 */
#include "daemoneye/rule.h"

#include <errno.h>
#include <stdlib.h>
#include <strings.h>

#include "fields.h"

static const char *const source_names[DE_RULE_SOURCE_MAX] = {"builtin", "file", "user"};

const char *de_rule_source_name(enum de_rule_source s)
{
	return (int)s >= 0 && s < DE_RULE_SOURCE_MAX ? source_names[s] : NULL;
}

int de_rule_source_parse(const char *s, enum de_rule_source *out, struct de_error *err)
{
	for (int i = 0; s && i < DE_RULE_SOURCE_MAX; i++) {
		if (strcasecmp(s, source_names[i]) == 0) {
			*out = (enum de_rule_source)i;
			return 0;
		}
	}
	return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
			    "unknown rule source type '%s' (expected builtin, file or user)",
			    s ? s : "(null)");
}

#define RU struct de_rule
static const struct de_field rule_fields[] = {
	F_REQ(RU, id, F_STR),
	F_REQ(RU, name, F_STR),
	F_OPT(RU, description, F_STR),
	F_REQ(RU, version, F_I32),
	F_REQ(RU, sql_query, F_STR),
	F_REQ(RU, enabled, F_BOOL),
	F_REQ(RU, severity, F_SEV),
	F_OPT(RU, category, F_STR),
	F_VEC(RU, tags, F_STRV),
	F_OPT(RU, author, F_STR),
	F_REQ(RU, created_at, F_I64),
	F_REQ(RU, updated_at, F_I64),
	F_REQ(RU, source_type, F_SRC),
	F_OPT(RU, source_path, F_STR),
	{"dedupe_key_fields", F_STRV, offsetof(RU, dedupe_key_fields), NO_OFF,
	 offsetof(RU, dedupe_key_fields_len), true, false},
	F_EXT(RU, exceptions, F_JSON),
};
#undef RU

void de_rule_clear(struct de_rule *r)
{
	if (r)
		de_fields_clear(r, rule_fields, F_COUNT(rule_fields), sizeof(*r));
}

void de_rule_free(struct de_rule *r)
{
	de_rule_clear(r);
	free(r);
}

bool de_rule_equal(const struct de_rule *a, const struct de_rule *b)
{
	return de_fields_equal(a, b, rule_fields, F_COUNT(rule_fields));
}

json_t *de_rule_to_json(const struct de_rule *r)
{
	return de_fields_to_json(r, rule_fields, F_COUNT(rule_fields));
}

int de_rule_from_json(const json_t *j, struct de_rule *out, struct de_error *err)
{
	return de_fields_from_json(j, out, sizeof(*out), rule_fields, F_COUNT(rule_fields),
				   "DetectionRule", err);
}
