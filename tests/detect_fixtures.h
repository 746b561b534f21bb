/*
 * detect_fixtures.h — what the detection engine's tests share (one test
 * program each includes it once): the engine on a store file in the test's
 * temporary directory, its validator, the teardown, and a rule made from
 * an id and its SQL.  Needs testutil.h first.
 */
#ifndef DE_TEST_DETECT_FIXTURES_H
#define DE_TEST_DETECT_FIXTURES_H

#include "daemoneye/detect.h"

static char *dbpath;
static struct de_validator *val;
static struct de_engine *eng;

static int teardown(void **state)
{
	(void)state;
	de_engine_close(eng);
	de_validator_free(val);
	free(dbpath);
	return tmpdir_remove();
}

/* An enabled rule of medium severity (the strings borrowed). */
static struct de_rule mkrule(const char *id, const char *sql)
{
	struct de_rule r = {.id = (char *)id,
			    .name = (char *)"Test rule",
			    .description = (char *)"what it means",
			    .sql_query = (char *)sql,
			    .enabled = true,
			    .severity = DE_SEV_MEDIUM};
	return r;
}

#endif
