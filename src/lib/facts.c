/*
 * facts.c — what is made from the list of Linux facts (see facts.h):
 * clearing, equality, the descriptive table and lookups by name.  The
 * JSON object and text of the facts are the record's platform_data and
 * live in record.c; the IPC mapping is in ipc.c; all are expanded from
 * DE_LINUX_FACTS.
 */
#include "daemoneye/facts.h"

#include <stdlib.h>
#include <string.h>

#define TYPE_(t) DE_FACT_T_##t

const struct de_fact_info de_linux_fact_info[DE_FACT_COUNT_MAX] = {
#define INFO_(name, type, group, kind, no, doc)                                                    \
	[DE_FACT_##name] = {#name,                                                                 \
			    TYPE_(type),                                                           \
			    #group,                                                                \
			    DE_FACT_VOL_##kind,                                                    \
			    no,                                                                    \
			    doc,                                                                   \
			    offsetof(struct de_linux_facts, name)},
	DE_LINUX_FACTS(INFO_)
#undef INFO_
};

/* Free a fact's value when it owns memory (the text types). */
#define FREE_U32(v)
#define FREE_I64(v)
#define FREE_NN64(v)
#define FREE_SI64(v)
#define FREE_BOOL(v)
#define FREE_CHAR(v)
#define FREE_FLAG(v)
#define FREE_COUNT(v)
#define FREE_TEXT(v)	 free(v)
#define FREE_TEXT_RAW(v) free(v)

void de_linux_facts_clear(struct de_linux_facts *f)
{
	if (!f)
		return;
#define CLEAR_(name, type, group, kind, no, doc) FREE_##type(f->name);
	DE_LINUX_FACTS(CLEAR_)
#undef CLEAR_
	memset(f, 0, sizeof(*f));
}

static bool text_eq(const char *a, const char *b)
{
	return !a == !b && (!a || strcmp(a, b) == 0);
}

/* Equality of two values of a type, as the JSON form would compare them. */
#define EQ_U32(a, b)	  ((a) == (b))
#define EQ_I64(a, b)	  ((a) == (b))
#define EQ_NN64(a, b)	  ((a) == (b))
#define EQ_SI64(a, b)	  ((a) == (b))
#define EQ_BOOL(a, b)	  ((a) == (b))
#define EQ_CHAR(a, b)	  ((a) == (b))
#define EQ_FLAG(a, b)	  ((a) == (b))
#define EQ_COUNT(a, b)	  (((a) > 0 ? (a) : 0) == ((b) > 0 ? (b) : 0))
#define EQ_TEXT(a, b)	  text_eq(a, b)
#define EQ_TEXT_RAW(a, b) text_eq(a, b)

bool de_linux_facts_equal(const struct de_linux_facts *a, const struct de_linux_facts *b)
{
	if (a->present != b->present)
		return false;
#define GROUP_EQ_(g, parent, doc, part)                                                            \
	if (DE_FACT_IN_##g(a) != DE_FACT_IN_##g(b))                                                \
		return false;
	DE_LINUX_FACT_GROUPS(GROUP_EQ_)
#undef GROUP_EQ_
#define FACT_EQ_(name, type, group, kind, no, doc)                                                 \
	if (DE_FACT_IN_##group(a) && !EQ_##type(a->name, b->name))                                 \
		return false;
	DE_LINUX_FACTS(FACT_EQ_)
#undef FACT_EQ_
	return true;
}

int de_linux_facts_each(const struct de_linux_facts *f,
			int (*fn)(const struct de_fact *m, void *ctx), void *ctx)
{
	return de_linux_facts_each_inline(f, fn, ctx);
}

int de_fact_lookup(const char *key, size_t n)
{
	for (int i = 0; i < DE_FACT_COUNT_MAX; i++)
		if (strlen(de_linux_fact_info[i].name) == n &&
		    memcmp(de_linux_fact_info[i].name, key, n) == 0)
			return i;
	return -1;
}

int de_fact_raw_of(const char *key, size_t n)
{
	int i;

	if (n <= 4 || memcmp(key + n - 4, "_raw", 4) != 0 || (i = de_fact_lookup(key, n - 4)) < 0)
		return -1;
	return de_linux_fact_info[i].type == DE_FACT_T_TEXT_RAW ? i : -1;
}
