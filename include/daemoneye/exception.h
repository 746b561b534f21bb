/*
 * exception.h — exceptions (suppressions): known-good matches that must not
 * raise an alert, written by operators in `alerting.suppress` (for every
 * rule) or in a rule's own `exceptions:` list.
 *
 * An exception is a mapping whose fields are ANDed; a field left out
 * matches anything, and at least one matching field is required (an
 * exception that matches everything is a disabled rule, said otherwise):
 *
 *   rule                   rule id, a glob (alerting.suppress only)
 *   process_name           the process name, a glob
 *   executable_path        the executable's path, a glob ('*' crosses '/')
 *   user                   a user name or a numeric uid (the effective uid)
 *   parent_name            the parent's process name, a glob
 *   command_line_contains  a substring of the command line
 *   reason                 why (free text, shown with every suppressed match)
 *
 * Globs are fnmatch(3) patterns (* ? [..]) without FNM_PATHNAME.  A user
 * name is resolved to its uid when the exception is parsed; an unknown
 * name is an error.  A suppressed match is not silent: the alert manager
 * stores it with the exception's label and origin and counts it.
 *
 * Ownership: a de_exception_set owns its exceptions and their strings;
 * de_exception_set_clear() releases them (NULL accepted).  Subjects are
 * borrowed views.
 */
#ifndef DAEMONEYE_EXCEPTION_H
#define DAEMONEYE_EXCEPTION_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemoneye/error.h"

#define DE_EXCEPTIONS_MAX 1024 /* exceptions in one list */

struct de_exception {
	char *rule;		     /* glob over rule ids, or NULL */
	char *process_name;	     /* glob, or NULL */
	char *executable_path;	     /* glob, or NULL */
	bool has_uid;		     /* user given */
	uint32_t uid;		     /* its uid */
	char *parent_name;	     /* glob, or NULL */
	char *command_line_contains; /* substring, or NULL */
	char *reason;		     /* free text, or NULL */
	char *label;		     /* "alerting.suppress[0]", "rule X exceptions[1]" */
	char *origin;		     /* "FILE:LINE:COL" where it was written */
};

struct de_exception_set {
	struct de_exception *items; /* owned */
	size_t len;
};

/* The process an alert is about, as exceptions (and formats) see it. */
struct de_subject {
	uint32_t pid;
	bool has_start_time;
	int64_t start_time;  /* ms since the epoch, as the store keeps it */
	int64_t instance_id; /* the store's instance id, 0 when unknown */
	const char *name;    /* borrowed strings, NULL when unknown */
	const char *executable_path;
	const char *command_line;
	const char *user_id; /* decimal effective uid */
	bool has_ppid;
	uint32_t ppid;
	const char *parent_name;
	const char *parent_executable_path;
};

/*
 * Parse `list` (a JSON array of mappings, or NULL/null for none) found at
 * `path` of a document whose node origins are in `origins` (path ->
 * "FILE:LINE:COL", may be NULL; `fallback` names the document otherwise).
 * `label` prefixes each exception's label ("alerting.suppress",
 * "rule ID exceptions"); `allow_rule` permits the `rule` field.  Appends
 * to *out.  Errors are ValidationErrors (category `cat`) whose message
 * starts with the origin of the offending node: "FILE:L:C: exception
 * alerting.suppress[2]: unknown field 'nmae' (known: ...)".
 */
int de_exceptions_parse(const json_t *list, const char *path, const json_t *origins,
			const char *fallback, const char *label, bool allow_rule,
			enum de_error_category cat, struct de_exception_set *out,
			struct de_error *err);

/*
 * The first exception of s that matches rule_id and subject p, or NULL.
 * A field the exception names but the subject lacks (no parent, no
 * executable) does not match.
 */
const struct de_exception *de_exceptions_match(const struct de_exception_set *s,
					       const char *rule_id, const struct de_subject *p);

void de_exception_set_clear(struct de_exception_set *s);

#endif
