/*
 * rulecache.c — the rules a full cycle may leave out (see rulecache.h).
 *
 * Whether a rule's SQL reads anything else is decided from its text,
 * erring towards running it: lowercased and with its string literals
 * blanked (a LIKE pattern or a JSON path is data), it must not contain the name of
 * any other rule-visible relation (de_relations(): scans, which gains a row
 * every cycle, network_connections, the alerting tables...), a call of a
 * function whose value changes by itself (the date and time functions,
 * random), the CURRENT_ keywords, SQLite's own tables, or a parameter.  It
 * follows only the identity version unless it names a value a running
 * process changes (cpu, memory, platform_data, collection_time, scan_id,
 * id, cwd, value_hash, process_samples, or '*').  A false match (a string
 * that contains "scans", "cpu" or ':') only costs a run.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/validator.h"
#include "rulecache.h"

/* The tables de_store_data_versions counts changes of. */
static const char *const counted[] = {"processes", "process_instances", "process_changes",
				      "process_samples"};

/* Functions whose value changes by itself (called: the name, then '('). */
static const char *const volatile_calls[] = {
	"date",	  "time",	"datetime", "julianday",     "strftime",	  "unixepoch",
	"random", "randomblob", "changes",  "total_changes", "last_insert_rowid",
};
/* Anywhere: the time keywords, SQLite's own tables and functions, parameters. */
static const char *const volatile_text[] = {
	"current_", "sqlite_", "pragma", "?", ":", "@", "$",
};

/* Does low call fn: fn at a word's start, then blanks and '('? */
static bool calls(const char *low, const char *fn)
{
	size_t n = strlen(fn);

	for (const char *p = strstr(low, fn); p; p = strstr(p + 1, fn)) {
		if (p > low && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))
			continue;
		const char *q = p + n;
		while (isspace((unsigned char)*q))
			q++;
		if (*q == '(')
			return true;
	}
	return false;
}

/* Columns and tables a change of values alone rewrites (store.c ST_UPD_VALS). */
static const char *const value_text[] = {
	"cpu",	   "memory", "platform_data", "collection_time",
	"scan_id", "cwd",    "value_hash",    "process_samples",
	"*",
};

static bool is_counted(const char *name)
{
	for (size_t i = 0; i < sizeof(counted) / sizeof(counted[0]); i++)
		if (strcmp(name, counted[i]) == 0)
			return true;
	return false;
}

/* Is w in low as a word of its own (not part of pid, user_id...)? */
static bool has_word(const char *low, const char *w)
{
	size_t n = strlen(w);

	for (const char *p = strstr(low, w); p; p = strstr(p + 1, w))
		if ((p == low || !(isalnum((unsigned char)p[-1]) || p[-1] == '_')) &&
		    !(isalnum((unsigned char)p[n]) || p[n] == '_'))
			return true;
	return false;
}

enum rulecache_kind rulecache_classify(const char *sql)
{
	size_t len = strlen(sql), n = 0;
	const struct de_relation *rel = de_relations(&n);
	char *low = malloc(len + 1);
	enum rulecache_kind k = RULECACHE_IDENTITY;

	if (!low)
		return RULECACHE_ALWAYS;
	/* lowercased, string literals blanked: what is left is SQL, not data */
	bool quoted = false;
	for (size_t i = 0; i <= len; i++) {
		if (sql[i] == '\'')
			quoted = !quoted; /* '' inside a literal toggles twice */
		low[i] = quoted && sql[i] != '\'' ? ' ' : (char)tolower((unsigned char)sql[i]);
	}
	for (size_t i = 0; k && i < n; i++)
		if (!is_counted(rel[i].name) && strstr(low, rel[i].name))
			k = RULECACHE_ALWAYS;
	for (size_t i = 0; k && i < sizeof(volatile_calls) / sizeof(volatile_calls[0]); i++)
		if (calls(low, volatile_calls[i]))
			k = RULECACHE_ALWAYS;
	for (size_t i = 0; k && i < sizeof(volatile_text) / sizeof(volatile_text[0]); i++)
		if (strstr(low, volatile_text[i]))
			k = RULECACHE_ALWAYS;
	for (size_t i = 0;
	     k == RULECACHE_IDENTITY && i < sizeof(value_text) / sizeof(value_text[0]); i++)
		if (strstr(low, value_text[i]))
			k = RULECACHE_DATA;
	if (k == RULECACHE_IDENTITY && has_word(low, "id"))
		k = RULECACHE_DATA;
	free(low);
	return k;
}

int rulecache_init(struct rulecache *c, const char *const *sqls, size_t n)
{
	memset(c, 0, sizeof(*c));
	c->kind = calloc(n + 1, sizeof(*c->kind));
	c->ran_at = calloc(n + 1, sizeof(*c->ran_at));
	if (!c->kind || !c->ran_at) {
		rulecache_free(c);
		return -ENOMEM;
	}
	c->n = n;
	for (size_t i = 0; i < n; i++)
		c->kind[i] = (uint8_t)(sqls[i] ? rulecache_classify(sqls[i]) : RULECACHE_ALWAYS);
	return 0;
}

void rulecache_free(struct rulecache *c)
{
	free(c->kind);
	free(c->ran_at);
	memset(c, 0, sizeof(*c));
}

/* The version rule i's result follows; 0 for one that always runs. */
static uint64_t version_of(const struct rulecache *c, size_t i, struct de_store_versions v)
{
	return c->kind[i] == RULECACHE_IDENTITY ? v.identity + 1
	       : c->kind[i] == RULECACHE_DATA	? v.data + 1
						: 0;
}

bool rulecache_fresh(const struct rulecache *c, size_t i, struct de_store_versions v)
{
	return i < c->n && c->kind[i] != RULECACHE_ALWAYS && c->ran_at[i] == version_of(c, i, v);
}

void rulecache_ran(struct rulecache *c, size_t i, struct de_store_versions v, bool ok)
{
	if (i < c->n)
		c->ran_at[i] = ok ? version_of(c, i, v) : 0;
}

void rulecache_forget(struct rulecache *c, size_t i)
{
	if (i < c->n)
		c->ran_at[i] = 0;
}
