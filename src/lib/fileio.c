/*
 * fileio.c — whole-file reading with a cap, mkdir -p, atomic replace (see
 * fileio.h).
 */
#include "daemoneye/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int de_read_file(const char *path, size_t max, char **out, size_t *len, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY), rc;

	if (fd < 0)
		return -errno;
	rc = de_read_fd(fd, max, out, len, st);
	close(fd);
	return rc;
}

int de_read_fd(int fd, size_t max, char **out, size_t *len, struct stat *st)
{
	struct stat sb;
	char *buf = NULL;
	size_t got = 0;
	int rc;

	if (fstat(fd, &sb) < 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		rc = -EISDIR;
		goto out;
	}
	if ((size_t)sb.st_size > max) {
		rc = -EFBIG;
		goto out;
	}
	if (!(buf = malloc((size_t)sb.st_size + 1))) {
		rc = -ENOMEM;
		goto out;
	}
	/* a file that grows while we read stops at its size when we looked;
	   pread: a descriptor handed to us may be read again from the start */
	while (got < (size_t)sb.st_size) {
		ssize_t r = pread(fd, buf + got, (size_t)sb.st_size - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			goto out;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	buf[got] = '\0';
	*out = buf;
	buf = NULL;
	*len = got;
	if (st)
		*st = sb;
	rc = 0;
out:
	free(buf);
	return rc;
}

int de_make_dirs(const char *path, unsigned int mode)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, (mode_t)mode) < 0) {
		struct stat st;
		if (errno != EEXIST)
			return -errno;
		if (stat(buf, &st) < 0)
			return -errno;
		if (!S_ISDIR(st.st_mode))
			return -ENOTDIR;
	}
	return 0;
}

int de_write_file_atomic(const char *path, const void *data, size_t len, unsigned int mode)
{
	char tmp[PATH_MAX];
	const char *p = data;
	int fd, rc = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, (mode_t)mode);
	if (fd < 0)
		return -errno;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			rc = -errno;
			break;
		}
		p += w;
		len -= (size_t)w;
	}
	if (rc == 0 && fchmod(fd, (mode_t)mode) < 0)
		rc = -errno;
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0)
		unlink(tmp);
	return rc;
}
