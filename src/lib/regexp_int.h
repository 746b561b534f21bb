/*
 * regexp_int.h — private to regexp.c and regexp_set.c: the fast path of
 * regexp() for the patterns the Sigma compiler writes (regexp_set.c says
 * which).
 */
#ifndef DAEMONEYE_REGEXP_INT_H
#define DAEMONEYE_REGEXP_INT_H

#include <stdbool.h>
#include <stddef.h>

struct re_set;

/* The fast form of pattern p[0..n), or NULL when PCRE2 must match it (or ENOMEM). */
struct re_set *re_set_parse(const char *p, size_t n);
/* PCRE2's verdict for the pattern on s[0..n); s[n] must be NUL. */
bool re_set_match(const struct re_set *set, const unsigned char *s, size_t n);
void re_set_free(struct re_set *set);

#endif
