/*
 * detect_fixtures.h — what the detection engine's tests share (one test
 * program each includes it once): the engine on a store file in the test's
 * temporary directory, its validator, the teardown, a process record, and
 * a rule made from an id and its SQL.  Needs testutil.h first.
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

/* A process record: command line cmd (one string), user uid (may be NULL),
   the image at exe, deleted or not (platform_data says which). */
static void fixture_record(struct de_process_record *r, uint32_t pid, uint32_t ppid,
			   const char *name, const char *exe, const char *cmd, const char *uid,
			   bool deleted)
{
	memset(r, 0, sizeof(*r));
	de_uuid_v4(&r->id);
	r->pid = pid;
	r->has_ppid = true;
	r->ppid = ppid;
	r->name = strdup(name);
	r->executable_path = strdup(exe);
	r->command_line = calloc(2, sizeof(char *));
	r->command_line[0] = strdup(cmd);
	r->command_line_len = 1;
	r->user_id = uid ? strdup(uid) : NULL;
	r->accessible = true;
	r->file_exists = !deleted;
	r->platform_data = json_pack("{s:b}", "exe_deleted", deleted);
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
