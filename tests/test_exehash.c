/*
 * test_exehash.c — SHA-256 against sha256sum and known vectors, the cache
 * (a hit reads nothing; a changed file is hashed again, also when it was
 * rewritten within one tick of the kernel's coarse clock and kept its
 * times), the size limit, a zero-length file, and what cannot be hashed.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
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

static int64_t coarse_now_ns(void)
{
	struct timespec ts;
	assert_int_equal(clock_gettime(CLOCK_REALTIME_COARSE, &ts), 0);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Wait (on the coarse clock, 60 s at most) until path's times are older
   than the cache's freshness margin: two coarse ticks, or two seconds and
   two ticks for a time on a whole second. */
static void wait_settled(const char *path)
{
	struct stat st;
	struct timespec res;
	struct de_exehash_key k;

	assert_int_equal(stat(path, &st), 0);
	de_exehash_key_from_stat(&st, &k);
	assert_int_equal(clock_getres(CLOCK_REALTIME_COARSE, &res), 0);
	int64_t margin = 2 * (res.tv_nsec ? res.tv_nsec : 10000000);
	if (k.mtime_ns % 1000000000 == 0 || k.ctime_ns % 1000000000 == 0)
		margin += 2000000000;
	int64_t newest = k.mtime_ns > k.ctime_ns ? k.mtime_ns : k.ctime_ns;
	for (int i = 0; i < 60000 && coarse_now_ns() - margin <= newest; i++)
		usleep(1000);
	assert_true(coarse_now_ns() - margin > newest);
}

static void hash_path(struct de_exehash_cache *c, const char *path, char *hex,
		      struct de_exehash_key *k)
{
	char reason[DE_EXEHASH_REASON_MAX];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(de_exehash_fd(c, fd, hex, reason, k), 0);
	assert_string_equal(reason, "");
	close(fd);
}

/*
 * A file whose times have settled is cached (a second look reads nothing);
 * rewritten later, with the same size, it has a new ctime and is hashed
 * again.
 */
static void test_changed_file_rehashed(void **state)
{
	(void)state;
	struct de_exehash_cache *c;
	char path[256], hex[65], reason[DE_EXEHASH_REASON_MAX], want[65];
	struct de_exehash_key k1, k2;

	snprintf(path, sizeof(path), "%s/changing", tmpdir);
	write_file(path, "one", 3);
	wait_settled(path);
	assert_int_equal(de_exehash_cache_new(0, &c, NULL), 0);
	hash_path(c, path, hex, &k1);
	sha256sum(path, want);
	assert_string_equal(hex, want);
	uint64_t before = de_exehash_bytes_hashed(c);
	assert_true(de_exehash_lookup(c, &k1, hex, reason)); /* remembered */
	hash_path(c, path, hex, &k1);
	assert_int_equal(de_exehash_bytes_hashed(c), before); /* a hit reads nothing */
	write_file(path, "two", 3);			      /* same inode, same size, new ctime */
	hash_path(c, path, hex, &k2);
	sha256sum(path, want);
	assert_string_equal(hex, want);
	assert_false(de_exehash_key_equal(&k1, &k2));
	assert_int_equal(de_exehash_files_hashed(c), 2);
	de_exehash_cache_free(c);
}

/*
 * A directory for files whose times tick with the coarse clock only.  As
 * root: a ramfs in a mount namespace of this test program's own, since
 * tmpfs, ext4, xfs and btrfs give a file whose times were just looked at a
 * fine-grained time at its next change (Linux 6.13 on); Debian 12's 6.1
 * stamps every file system coarsely.  Otherwise tmpdir itself.  True when
 * the ramfs is there.
 */
static bool coarse_dir(char *dir, size_t size)
{
	snprintf(dir, size, "%s/coarse", tmpdir);
	assert_int_equal(mkdir(dir, 0700), 0);
	return geteuid() == 0 && unshare(CLONE_NEWNS) == 0 &&
	       mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) == 0 &&
	       mount("de-test-coarse", dir, "ramfs", 0, "mode=0700") == 0;
}

/*
 * Rewritten twice in quick succession with the same size: the kernel's
 * coarse clock (one jiffy) gives both writes the same mtime and ctime, so
 * the key does not change; the digest must.  Tried until the two writes
 * did fall in one tick three times (at once, nearly always); on a ramfs
 * that must happen.
 */
static void test_rewritten_within_a_tick(void **state)
{
	(void)state;
	struct de_exehash_cache *c;
	char dir[256], path[300], hex[65], one[65], two[65];
	struct de_exehash_key k1, k2;
	int same_key = 0, tries;
	bool ramfs = coarse_dir(dir, sizeof(dir));

	snprintf(path, sizeof(path), "%s/quick", dir);
	write_file(path, "one", 3);
	sha256sum(path, one);
	write_file(path, "two", 3);
	sha256sum(path, two);
	assert_int_equal(de_exehash_cache_new(0, &c, NULL), 0);
	for (tries = 0; tries < 1000 && same_key < 3; tries++) {
		write_file(path, "one", 3);
		hash_path(c, path, hex, &k1);
		assert_string_equal(hex, one);
		write_file(path, "two", 3);
		hash_path(c, path, hex, &k2);
		assert_string_equal(hex, two);
		same_key += de_exehash_key_equal(&k1, &k2);
	}
	/* every look hashed the bytes: nothing fresh was taken from the cache */
	assert_int_equal(de_exehash_files_hashed(c), 2 * (uint64_t)tries);
	print_message("rewritten within a tick: the same times %d times in %d tries (%s)\n",
		      same_key, tries, ramfs ? "ramfs" : dir);
	if (ramfs) {
		assert_true(same_key > 0);
		assert_int_equal(umount2(dir, MNT_DETACH), 0);
	}
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
	/* a remembered failure is a hit (a key with settled times) */
	k.ino ^= 12345;
	k.mtime_ns = k.ctime_ns = 1700000000123456789;
	assert_false(de_exehash_lookup(c, &k, hex, reason));
	assert_int_equal(de_exehash_remember_failure(c, &k, "cannot open: Permission denied"), 0);
	assert_true(de_exehash_lookup(c, &k, hex, reason));
	assert_string_equal(reason, "cannot open: Permission denied");
	/* one whose file changed this very tick is not: its times may not
	   change with its next change */
	k.ino ^= 1;
	k.ctime_ns = coarse_now_ns();
	assert_int_equal(de_exehash_remember_failure(c, &k, "cannot open: Permission denied"), 0);
	assert_false(de_exehash_lookup(c, &k, hex, reason));
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

/* tmpdir's teardown, the ramfs of a failed test_rewritten_within_a_tick
   unmounted first */
static int teardown(void **state)
{
	char dir[PATH_MAX + 16];
	snprintf(dir, sizeof(dir), "%s/coarse", tmpdir);
	umount2(dir, MNT_DETACH); /* EINVAL when nothing is mounted there */
	return tmpdir_teardown(state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_matches_sha256sum_and_cache),
		cmocka_unit_test(test_changed_file_rehashed),
		cmocka_unit_test(test_rewritten_within_a_tick),
		cmocka_unit_test(test_not_hashable),
		cmocka_unit_test(test_many_entries),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, teardown);
}
