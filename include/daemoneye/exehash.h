/*
 * exehash.h — SHA-256 of executables and the cache that makes a warm rescan
 * hash nothing.
 *
 * A file's identity for the cache is (device, inode, size, mtime, ctime):
 * any write or metadata change moves ctime, so a cached digest is reused
 * only for the same bytes.  File times tick with the kernel's coarse clock,
 * though, and a file rewritten within one tick keeps its times: a key whose
 * mtime or ctime is that recent (within two ticks of CLOCK_REALTIME_COARSE,
 * two seconds more for a time on a whole second) is not remembered, so such
 * a file is hashed afresh at every lookup until its times have settled.  A
 * file that could not be hashed is cached too, with the reason, so an
 * unreadable executable costs one attempt.  The digest is computed from an
 * open descriptor (procmond opens /proc/PID/exe, which reaches the running
 * image even when its path was deleted), with OpenSSL EVP (SHA-NI where the
 * CPU has it).
 *
 * Ownership: the cache owns its entries; lookups copy into caller buffers.
 * Not thread-safe: one cache per thread.
 */
#ifndef DAEMONEYE_EXEHASH_H
#define DAEMONEYE_EXEHASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "daemoneye/error.h"

#define DE_SHA256_HEX_LEN     64 /* without the NUL */
#define DE_EXEHASH_REASON_MAX 64

/* Most entries the cache keeps; beyond it the cache starts over. */
#define DE_EXEHASH_CACHE_MAX 65536

struct de_exehash_key {
	uint64_t dev;
	uint64_t ino;
	int64_t size;
	int64_t mtime_ns;
	int64_t ctime_ns;
};

struct de_exehash_cache;

/* Key of the file described by st. */
void de_exehash_key_from_stat(const struct stat *st, struct de_exehash_key *out);
bool de_exehash_key_equal(const struct de_exehash_key *a, const struct de_exehash_key *b);
/* A well-mixed 64-bit hash of k, for tables keyed by file identity. */
uint64_t de_exehash_key_hash(const struct de_exehash_key *k);

/*
 * A new cache.  Files larger than max_size bytes are not hashed (reason
 * "larger than the size limit"); 0 means no limit.
 */
int de_exehash_cache_new(uint64_t max_size, struct de_exehash_cache **out, struct de_error *err);
void de_exehash_cache_free(struct de_exehash_cache *c);

/*
 * Look the key up.  Returns true on a hit: hex (DE_SHA256_HEX_LEN + 1) gets
 * the lower-case digest, or "" when the file could not be hashed and then
 * reason (DE_EXEHASH_REASON_MAX) says why.
 */
bool de_exehash_lookup(struct de_exehash_cache *c, const struct de_exehash_key *k, char *hex,
		       char *reason);

/*
 * Hash the file open at fd (read from offset 0 with pread) and remember the
 * result under the key from fstat(fd), unless the key is too recent (above).
 * On return hex/reason are filled as for a hit and *key_out (may be NULL) is
 * the key used.  Returns 0, or -ENOMEM; a file that cannot be read is not an
 * error (reason is set).
 */
int de_exehash_fd(struct de_exehash_cache *c, int fd, char *hex, char *reason,
		  struct de_exehash_key *key_out);

/* Remember that the file with key k could not be hashed, and why (unless
   the key is too recent, above: then nothing is remembered).  0 or -ENOMEM. */
int de_exehash_remember_failure(struct de_exehash_cache *c, const struct de_exehash_key *k,
				const char *reason);

/* Bytes and files actually hashed since the cache was made. */
uint64_t de_exehash_bytes_hashed(const struct de_exehash_cache *c);
uint64_t de_exehash_files_hashed(const struct de_exehash_cache *c);

/*
 * SHA-256 of everything readable at fd (from offset 0).  Returns 0 with hex
 * filled and *bytes the length, or a negative errno (-EFBIG beyond
 * max_size when max_size > 0).  No cache.
 */
int de_sha256_fd(int fd, uint64_t max_size, char hex[DE_SHA256_HEX_LEN + 1], uint64_t *bytes);

#endif
