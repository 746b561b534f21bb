/*
 * yaml.h — one YAML document to a jansson tree, shared by the configuration
 * (config.c) and the rule files (rules.c).
 *
 * The accepted subset is the JSON-compatible core of YAML 1.2 (see yaml.c):
 * aliases, duplicate keys, keys containing '.', several documents and
 * nesting deeper than 32 are errors naming origin:line:column.
 *
 * Ownership: *out is a new jansson reference the caller releases.
 */
#ifndef DAEMONEYE_YAML_H
#define DAEMONEYE_YAML_H

#include <jansson.h>
#include <stddef.h>

#include "daemoneye/error.h"

/*
 * Parse text[0..len) into *out (any node type; an empty stream is JSON
 * null).  `origin` names the input in messages.  When `origins` is a JSON
 * object, every node's path ("a.b", "rules[2].sql") is recorded in it as
 * "ORIGIN:LINE:COL".  Errors carry category `cat`.
 */
int de_yaml_parse(const char *text, size_t len, const char *origin, json_t *origins,
		  enum de_error_category cat, json_t **out, struct de_error *err);

/*
 * The same, for formats whose values are all text (Sigma rules): a plain
 * scalar other than null (~, null, empty) stays a string exactly as
 * written ("0777", "true", "1.50"); only null is typed.  Keys may contain
 * '.' (Sigma's search identifiers do), which makes the paths in `origins`
 * ambiguous for such keys: they only serve messages.
 */
int de_yaml_parse_text(const char *text, size_t len, const char *origin, json_t *origins,
		       enum de_error_category cat, json_t **out, struct de_error *err);

#endif
