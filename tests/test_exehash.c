/*
 * test_exehash.c — SHA-256 against sha256sum and known vectors, the cache
 * (a hit reads nothing; a changed file is hashed again), the size limit,
 * a zero-length file, and what cannot be hashed.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemoneye/exehash.h"

#define DE_TEST_NAME "exehash"
#include "testutil.h"

static void write_file(const char *path, const char *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	close(fd);
}

static void sha256sum(const char *path, char out[65])
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "sha256sum '%s'", path);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%64s", out), 1);
	pclose(p);
}

static void test_vectors(void **state)
{
	(void)state;
	char path[256], hex[65];
	uint64_t n;
	snprintf(path, sizeof(path), "%s/empty", tmpdir);
	write_file(path, "", 0);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_int_equal(de_sha256_fd(fd, 0, hex, &n), 0);
	assert_string_equal(hex,
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_int_equal(n, 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/abc", tmpdir);
	write_file(path, "abc", 3);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_int_equal(de_sha256_fd(fd, 0, hex, &n), 0);
	assert_string_equal(hex,
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(de_sha256_fd(fd, 2, hex, &n), -EFBIG);
	close(fd);
}

static void test_matches_sha256sum_and_cache(void **state)
{
	(void)state;
	static const char *const files[] = {"/bin/sh", "/bin/sleep", "/bin/ls"};
	struct de_exehash_cache *c;
	char hex[65], reason[DE_EXEHASH_REASON_MAX], want[65];
	struct de_exehash_key k;

	assert_int_equal(de_exehash_cache_new(0, &c, NULL), 0);
	for (int i = 0; i < 3; i++) {
		int fd = open(files[i], O_RDONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		sha256sum(files[i], want);
		assert_int_equal(de_exehash_fd(c, fd, hex, reason, &k), 0);
		assert_string_equal(hex, want);
		assert_string_equal(reason, "");
		uint64_t before = de_exehash_bytes_hashed(c);
		/* warm: the same file again reads nothing */
		assert_int_equal(de_exehash_fd(c, fd, hex, reason, &k), 0);
		assert_string_equal(hex, want);
		assert_int_equal(de_exehash_bytes_hashed(c), before);
		assert_true(de_exehash_lookup(c, &k, hex, reason));
		close(fd);
	}
	assert_int_equal(de_exehash_files_hashed(c), 3);
	de_exehash_cache_free(c);
}

static void test_changed_file_rehashed(void **state)
{
	(void)state;
	struct de_exehash_cache *c;
	char path[256], hex[65], reason[DE_EXEHASH_REASON_MAX], want[65];
	struct de_exehash_key k1, k2;

	snprintf(path, sizeof(path), "%s/changing", tmpdir);
	write_file(path, "one", 3);
	assert_int_equal(de_exehash_cache_new(0, &c, NULL), 0);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_int_equal(de_exehash_fd(c, fd, hex, reason, &k1), 0);
	close(fd);
	write_file(path, "two", 3); /* same inode, same size, new ctime */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_int_equal(de_exehash_fd(c, fd, hex, reason, &k2), 0);
	close(fd);
	sha256sum(path, want);
	assert_string_equal(hex, want);
	assert_false(de_exehash_key_equal(&k1, &k2));
	assert_int_equal(de_exehash_files_hashed(c), 2);
	de_exehash_cache_free(c);
}

static void test_not_hashable(void **state)
{
	(void)state;
	struct de_exehash_cache *c;
	char path[256], hex[65], reason[DE_EXEHASH_REASON_MAX];
	struct de_exehash_key k;

	assert_int_equal(de_exehash_cache_new(4, &c, NULL), 0);
	snprintf(path, sizeof(path), "%s/big", tmpdir);
	write_file(path, "12345", 5);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_int_equal(de_exehash_fd(c, fd, hex, reason, &k), 0);
	assert_string_equal(hex, "");
	assert_string_equal(reason, "larger than the size limit");
	assert_int_equal(de_exehash_bytes_hashed(c), 0);
	close(fd);
	fd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(de_exehash_fd(c, fd, hex, reason, &k), 0);
	assert_string_equal(reason, "not a regular file");
	close(fd);
	/* a remembered failure is a hit */
	k.ino ^= 12345;
	assert_false(de_exehash_lookup(c, &k, hex, reason));
	assert_int_equal(de_exehash_remember_failure(c, &k, "cannot open: Permission denied"), 0);
	assert_true(de_exehash_lookup(c, &k, hex, reason));
	assert_string_equal(reason, "cannot open: Permission denied");
	de_exehash_cache_free(c);
}

static void test_many_entries(void **state)
{
	(void)state;
	struct de_exehash_cache *c;
	char hex[65], reason[DE_EXEHASH_REASON_MAX];
	struct de_exehash_key k = {1, 0, 0, 0, 0};

	assert_int_equal(de_exehash_cache_new(0, &c, NULL), 0);
	for (uint64_t i = 0; i < 5000; i++) {
		k.ino = i;
		assert_int_equal(de_exehash_remember_failure(c, &k, "x"), 0);
	}
	for (uint64_t i = 0; i < 5000; i++) {
		k.ino = i;
		assert_true(de_exehash_lookup(c, &k, hex, reason));
	}
	de_exehash_cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_matches_sha256sum_and_cache),
		cmocka_unit_test(test_changed_file_rehashed),
		cmocka_unit_test(test_not_hashable),
		cmocka_unit_test(test_many_entries),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
