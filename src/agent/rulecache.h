/*
 * rulecache.h — which rules the full cycle may leave out because their
 * result cannot have changed (rulecache.c).
 *
 * A rule whose SQL reads only the snapshot and history tables the store
 * counts changes of (de_store_data_versions: processes, process_instances,
 * process_changes, process_samples), calls no function whose value
 * changes by itself (the time, random) and binds no parameter returns what
 * it returned last time when none of those tables changed since its last
 * successful run; and one that reads none of the values a process changes
 * by running (cpu_usage, memory_usage, platform_data, ...) only when no
 * instance came, went or changed its identity.  Leaving it out is then
 * exact: it is reported as not run (de_rule_result.ran false), so the
 * alert manager neither raises nor resolves anything of it, and its open
 * alerts stay open as they would.
 *
 * Ownership: a struct rulecache is the caller's, sized for a rule set and
 * emptied with rulecache_free (a new rule set starts a new cache).
 */
#ifndef AGENT_RULECACHE_H
#define AGENT_RULECACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemoneye/store.h"

/* What a rule's result depends on. */
enum rulecache_kind {
	RULECACHE_ALWAYS,   /* anything else: it runs every cycle */
	RULECACHE_DATA,	    /* the counted tables, values included */
	RULECACHE_IDENTITY, /* the counted tables' identities only */
};

struct rulecache {
	size_t n;
	uint8_t *kind; /* per rule: rulecache_classify(its SQL) */
	uint64_t
		*ran_at; /* per rule: the version (of its kind) + 1 at its last good run, 0: none */
};

enum rulecache_kind rulecache_classify(const char *sql);
/* Size c for the n rules of sqls[] (each rule's SQL).  0 or -ENOMEM. */
int rulecache_init(struct rulecache *c, const char *const *sqls, size_t n);
void rulecache_free(struct rulecache *c);
/* true when rule i need not run at versions v. */
bool rulecache_fresh(const struct rulecache *c, size_t i, struct de_store_versions v);
/* Rule i ran at versions v: ok (it succeeded) or not. */
void rulecache_ran(struct rulecache *c, size_t i, struct de_store_versions v, bool ok);
/* Rule i did not run (disabled): it runs when it can again. */
void rulecache_forget(struct rulecache *c, size_t i);

#endif
