/*
 * test_fileio.c — the capped whole-file reader (content, cap, not a
 * regular file, missing), mkdir -p, and the atomic replace (mode, content,
 * a failed replace leaves the old file).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define DE_TEST_NAME "fileio"
#include "testutil.h"

#include "daemoneye/fileio.h"

/* Write s to tmpdir/name; returns the path (caller frees). */
static char *write_file(const char *name, const char *s)
{
	char *p;
	FILE *f;

	assert_true(asprintf(&p, "%s/%s", tmpdir, name) > 0);
	assert_non_null(f = fopen(p, "w"));
	fputs(s, f);
	fclose(f);
	return p;
}

static void test_read_file(void **state)
{
	(void)state;
	char *p = write_file("text", "hello\0world"), *buf = (char *)0x1;
	size_t len = 99;
	struct stat st;

	assert_int_equal(de_read_file(p, 100, &buf, &len, &st), 0);
	assert_int_equal(len, 5); /* fputs stops at the NUL */
	assert_string_equal(buf, "hello");
	assert_true(S_ISREG(st.st_mode));
	free(buf);
	/* exactly at the cap is fine, one byte over is not */
	assert_int_equal(de_read_file(p, 5, &buf, &len, NULL), 0);
	free(buf);
	buf = (char *)0x1;
	assert_int_equal(de_read_file(p, 4, &buf, &len, NULL), -EFBIG);
	assert_ptr_equal(buf, (char *)0x1); /* untouched on failure */
	assert_int_equal(de_read_file(tmpdir, 100, &buf, &len, NULL), -EISDIR);
	free(p);
	assert_true(asprintf(&p, "%s/missing", tmpdir) > 0);
	assert_int_equal(de_read_file(p, 100, &buf, &len, NULL), -ENOENT);
	free(p);
	/* an empty file is an empty string */
	p = write_file("empty", "");
	assert_int_equal(de_read_file(p, 0, &buf, &len, NULL), 0);
	assert_int_equal(len, 0);
	assert_string_equal(buf, "");
	free(buf);
	free(p);
}

static void test_make_dirs(void **state)
{
	(void)state;
	char *deep, *file;
	struct stat st;

	assert_true(asprintf(&deep, "%s/a/b/c", tmpdir) > 0);
	assert_int_equal(de_make_dirs(deep, 0700), 0);
	assert_int_equal(stat(deep, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(de_make_dirs(deep, 0700), 0); /* existing is fine */
	/* a file in the way is an error, not silently accepted */
	free(write_file("plain", "x"));
	assert_true(asprintf(&file, "%s/plain/sub", tmpdir) > 0);
	assert_int_equal(de_make_dirs(file, 0755), -ENOTDIR);
	free(file);
	assert_true(asprintf(&file, "%s/plain", tmpdir) > 0);
	assert_int_equal(de_make_dirs(file, 0755), -ENOTDIR);
	assert_int_equal(de_make_dirs("", 0755), -ENAMETOOLONG);
	free(deep);
	free(file);
}

static void test_write_atomic(void **state)
{
	(void)state;
	char *p = write_file("target", "old"), *buf, *dir;
	size_t len;
	struct stat st;

	assert_int_equal(de_write_file_atomic(p, "new bytes", 9, 0640), 0);
	assert_int_equal(de_read_file(p, 100, &buf, &len, &st), 0);
	assert_string_equal(buf, "new bytes");
	assert_int_equal(st.st_mode & 0777, 0640);
	free(buf);
	/* a destination that cannot be replaced: the temporary is gone, nothing else moved */
	assert_true(asprintf(&dir, "%s/adir", tmpdir) > 0);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_true(de_write_file_atomic(dir, "x", 1, 0600) < 0);
	char *tmp;
	assert_true(asprintf(&tmp, "%s.tmp.%ld", dir, (long)getpid()) > 0);
	assert_int_equal(access(tmp, F_OK), -1);
	assert_int_equal(errno, ENOENT);
	free(tmp);
	free(dir);
	free(p);
}

static void test_read_fd(void **state)
{
	(void)state;
	char *p = write_file("fd", "twelve bytes"), *buf = (char *)0x1;
	size_t len = 0;
	int fd = open(p, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(lseek(fd, 5, SEEK_SET), 5); /* read from 0 whatever the offset */
	assert_int_equal(de_read_fd(fd, 100, &buf, &len, NULL), 0);
	assert_string_equal(buf, "twelve bytes");
	free(buf);
	assert_int_equal(de_read_fd(fd, 100, &buf, &len, NULL), 0); /* again: the same */
	assert_int_equal(len, 12);
	free(buf);
	buf = (char *)0x1;
	assert_int_equal(de_read_fd(fd, 11, &buf, &len, NULL), -EFBIG);
	assert_ptr_equal(buf, (char *)0x1);
	assert_true(fcntl(fd, F_GETFD) >= 0); /* still open */
	close(fd);
	fd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(de_read_fd(fd, 100, &buf, &len, NULL), -EISDIR);
	close(fd);
	assert_int_equal(de_read_fd(-1, 100, &buf, &len, NULL), -EBADF);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_file),
		cmocka_unit_test(test_read_fd),
		cmocka_unit_test(test_make_dirs),
		cmocka_unit_test(test_write_atomic),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
