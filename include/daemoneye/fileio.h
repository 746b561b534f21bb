/*
 * fileio.h — files read and written whole: a reader with a size cap (every
 * file an input can point us at is capped), directories made as needed,
 * and an atomic replace (write a temporary beside, fsync, rename).
 *
 * These return 0 or a negative errno and never fill a de_error: the caller
 * knows what the file is for and says so in its message (a rule file, the
 * configuration...).
 */
#ifndef DAEMONEYE_FILEIO_H
#define DAEMONEYE_FILEIO_H

#include <stddef.h>
#include <sys/stat.h>

/*
 * Read the regular file at path, at most max bytes, into a new buffer with
 * a NUL after the bytes (*out, the caller frees; *len its length).  st
 * (may be NULL) receives its fstat.  -ENOENT, -EACCES..., -EISDIR when it
 * is not a regular file, -EFBIG when larger than max, -ENOMEM, -EIO; *out
 * untouched on failure.
 */
int de_read_file(const char *path, size_t max, char **out, size_t *len, struct stat *st);
/*
 * The same from an open descriptor (a file another process opened for us),
 * read from offset 0 whatever its position; fd stays open.
 */
int de_read_fd(int fd, size_t max, char **out, size_t *len, struct stat *st);

/*
 * mkdir -p: create `path` and its missing parents (parents 0755, the last
 * component `mode`); existing directories are fine, a file where a
 * directory should be is -ENOTDIR.  0 or -errno.
 */
int de_make_dirs(const char *path, unsigned int mode);

/*
 * Replace the file at path with the len bytes at data, atomically: written
 * to "<path>.tmp.<pid>" with `mode`, fsync'd, renamed over path.  On
 * failure the temporary is removed and path is as before.  0 or -errno.
 */
int de_write_file_atomic(const char *path, const void *data, size_t len, unsigned int mode);

#endif
