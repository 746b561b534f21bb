/*
 * sigma.h — Sigma rules compiled to daemoneye rules: one Sigma rule (YAML)
 * becomes one DetectionRule whose SQL runs in the ordinary sandbox
 * (validator.h), on every cycle and on the exec path like any rule.  The
 * meaning of each construct, the field map and what is refused are in
 * docs/sigma.md.
 *
 * What is read: logsource linux/process_creation over the processes
 * snapshot (the parent joined by ppid); the fields Image, CommandLine,
 * ParentImage, ParentCommandLine, ProcessId, ParentProcessId; values
 * case-insensitive unless `cased`, with `*`/`?` wildcards and `\` escapes
 * as the Sigma specification has them, lists, null; the modifiers
 * contains, startswith, endswith, all, cased, exists, re (PCRE2 through
 * regexp(), with i/m/s), base64, base64offset, windash, utf16le/utf16be/
 * utf16/wide (before base64), cidr (address fields) and gt/gte/lt/lte
 * (number fields); conditions with and, or, not, parentheses, `1 of X*`,
 * `all of X*`, `1 of them`, `all of them`.
 *
 * The rule: id "sigma-" + the Sigma id (lower case; stable across imports,
 * so alerts name the Sigma rule), name = title, description = the rule's
 * description, false positives, references and a credit line (Sigma id,
 * author, license), version = the modified (else created) date as
 * YYYYMMDD, severity = level (informational -> low), category = the first
 * ATT&CK tactic tag, tags = the Sigma tags plus "sigma.status.<status>",
 * author = the Sigma author.  The SQL returns pid, ppid, name,
 * executable_path, command_line and user_id (and the parent's path and
 * command line when the rule reads them), so it also runs per exec.
 *
 * Refusals (anything daemoneye cannot run exactly, or input that is not
 * valid Sigma) are ValidationErrors "FILE:LINE:COL: reason" naming the
 * field, modifier or construct: EINVAL for malformed input, ENOTSUP for
 * Sigma that daemoneye lacks the data or feature for.
 *
 * Ownership: a de_sigma_rule owns everything in it; de_sigma_rule_clear()
 * releases it (NULL accepted).
 */
#ifndef DAEMONEYE_SIGMA_H
#define DAEMONEYE_SIGMA_H

#include <stdbool.h>
#include <stddef.h>

#include "daemoneye/error.h"
#include "daemoneye/rule.h"
#include "daemoneye/validator.h"

#define DE_SIGMA_MAX_FILE (1u << 20) /* bytes of one Sigma rule file */

/* Sigma's rule maturity, least mature first (for --min-status). */
enum de_sigma_status {
	DE_SIGMA_EXPERIMENTAL = 0,
	DE_SIGMA_TEST,
	DE_SIGMA_STABLE,
	DE_SIGMA_STATUS_MAX
};

struct de_sigma_options {
	/*
	 * Also compile logsources daemoneye plans but cannot run yet
	 * (linux/network_connection): for tests and documentation; their SQL
	 * does not validate against today's relations.
	 */
	bool planned_logsources;
};

struct de_sigma_rule {
	struct de_rule rule; /* the converted rule (source User, origin as source_path) */
	char *sigma_id;	     /* the Sigma id as written */
	char *title;	     /* the full title */
	char *status;	     /* NULL when the rule has none */
	char *level;	     /* NULL when the rule has none */
	char *author;	     /* the full credit, NULL when none */
	char *license;	     /* the rule's own license field, NULL when none */
	char **references;   /* owned */
	size_t references_len;
};

void de_sigma_rule_clear(struct de_sigma_rule *r);

/*
 * Convert the Sigma rule text[0..len) named `origin` (a file name, for
 * messages) into *out.  opts may be NULL.  When v is not NULL the SQL is
 * also checked by the sandbox (de_validator_validate_query).  0, or a
 * ValidationError naming FILE:LINE:COL (out untouched).
 */
int de_sigma_convert(const char *text, size_t len, const char *origin,
		     const struct de_sigma_options *opts, struct de_validator *v,
		     struct de_sigma_rule *out, struct de_error *err);

/*
 * The daemoneye rule file for r: a comment crediting the Sigma rule (id,
 * author, references, license) and the rule as de_rules_write_yaml()
 * writes it, which loads back as an equal rule.  *text is a new string
 * (the caller frees it) of *len bytes.
 */
int de_sigma_rule_file(const struct de_sigma_rule *r, char **text, size_t *len,
		       struct de_error *err);

/* "stable", "test" or "experimental" to the enum; a ValidationError otherwise. */
int de_sigma_status_parse(const char *s, enum de_sigma_status *out, struct de_error *err);

/*
 * Whether a rule of Sigma status `status` (NULL: none given, counted as
 * experimental) is at least as mature as min.
 */
bool de_sigma_status_meets(const char *status, enum de_sigma_status min);

#endif
