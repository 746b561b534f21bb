/*
 * testutil.h — what the cmocka test programs share: one private temporary
 * directory per test program, made at group setup and removed (with
 * everything in it) at group teardown.
 *
 * Define DE_TEST_NAME before including; the directory is
 * $TMPDIR/de-test-<name>-<random> (TMPDIR defaults to /tmp).  Header-only:
 * each test program is one translation unit.
 */
#ifndef DAEMONEYE_TESTUTIL_H
#define DAEMONEYE_TESTUTIL_H

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef DE_TEST_NAME
#error "define DE_TEST_NAME before including testutil.h"
#endif

/* The test program's private directory, valid between setup and teardown. */
static char tmpdir[PATH_MAX];

/* Create tmpdir.  0, or -1 with errno. */
__attribute__((unused)) static int tmpdir_make(void)
{
	const char *base = getenv("TMPDIR");
	char random_part[7];

	/* mkdtemp(3) replaces the last six characters, which must be 'X' */
	memset(random_part, 'X', 6);
	random_part[6] = '\0';
	snprintf(tmpdir, sizeof(tmpdir), "%s/de-test-%s-%s", base && *base ? base : "/tmp",
		 DE_TEST_NAME, random_part);
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (type == FTW_DP ? rmdir(path) : unlink(path)) < 0 ? -1 : 0;
}

/* Remove tmpdir and everything below it (never following symlinks). */
__attribute__((unused)) static int tmpdir_remove(void)
{
	if (!tmpdir[0])
		return 0;
	return nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

/* cmocka group setup/teardown for programs that need nothing else. */
__attribute__((unused)) static int tmpdir_setup(void **state)
{
	(void)state;
	return tmpdir_make();
}

__attribute__((unused)) static int tmpdir_teardown(void **state)
{
	(void)state;
	return tmpdir_remove();
}

#endif
