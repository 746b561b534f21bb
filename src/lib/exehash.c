/*
 * exehash.c — SHA-256 of executables with a (dev, ino, size, mtime, ctime)
 * cache (see exehash.h).
 *
 * The cache is an open-addressing table with linear probing; it is rebuilt
 * empty when it would exceed DE_EXEHASH_CACHE_MAX entries, which bounds memory
 * whatever a host runs.  Reads use 256 KiB preads into one buffer and a
 * single EVP context per file; posix_fadvise(SEQUENTIAL) lets the kernel
 * read ahead.
 *
 * Only settled keys are remembered.  The kernel stamps mtime and ctime from
 * its coarse clock (one tick: 4 ms at HZ=250), so a file rewritten within
 * the tick of its last change keeps its (size, mtime, ctime): a digest
 * remembered then would outlive the bytes it was computed from.  A key
 * whose newer time is within two coarse ticks of now (or ahead of it) is
 * hashed every time and never stored; once the clock has moved on, any
 * change gets a later time, so the key is safe to keep.  A time on a whole
 * second may come from a file system that keeps no finer (ext4 with small
 * inodes; FAT keeps two seconds), so such a key waits two seconds more.
 * Executables that processes run are nearly always far older.
 */
#include "daemoneye/exehash.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK ((size_t)256 * 1024)

struct entry {
	bool used;
	struct de_exehash_key key;
	char hex[DE_SHA256_HEX_LEN + 1];    /* "" when failed */
	char reason[DE_EXEHASH_REASON_MAX]; /* why it failed */
};

struct de_exehash_cache {
	struct entry *slots; /* power-of-two table */
	size_t nslots;
	size_t used;
	uint64_t max_size;
	uint64_t bytes; /* hashed so far */
	uint64_t files;
	unsigned char *buf; /* READ_CHUNK bytes */
	int64_t tick_ns;    /* resolution of CLOCK_REALTIME_COARSE */
};

void de_exehash_key_from_stat(const struct stat *st, struct de_exehash_key *out)
{
	out->dev = (uint64_t)st->st_dev;
	out->ino = (uint64_t)st->st_ino;
	out->size = (int64_t)st->st_size;
	out->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	out->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
}

bool de_exehash_key_equal(const struct de_exehash_key *a, const struct de_exehash_key *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

uint64_t de_exehash_key_hash(const struct de_exehash_key *k)
{
	uint64_t h = 1469598103934665603ULL;
	const uint64_t v[5] = {k->dev, k->ino, (uint64_t)k->size, (uint64_t)k->mtime_ns,
			       (uint64_t)k->ctime_ns};
	for (int i = 0; i < 5; i++) {
		h ^= v[i];
		h *= 1099511628211ULL;
		h ^= h >> 29;
	}
	return h;
}

int de_exehash_cache_new(uint64_t max_size, struct de_exehash_cache **out, struct de_error *err)
{
	struct de_exehash_cache *c = calloc(1, sizeof(*c));
	struct timespec res;

	if (!c || !(c->slots = calloc(256, sizeof(struct entry))) ||
	    !(c->buf = malloc(READ_CHUNK))) {
		if (c)
			free(c->slots);
		free(c);
		return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	}
	c->nslots = 256;
	c->max_size = max_size;
	if (clock_getres(CLOCK_REALTIME_COARSE, &res) == 0 && res.tv_sec == 0 && res.tv_nsec > 0)
		c->tick_ns = res.tv_nsec;
	else
		c->tick_ns = 10000000; /* HZ=100, the coarsest Linux has */
	*out = c;
	return 0;
}

void de_exehash_cache_free(struct de_exehash_cache *c)
{
	if (!c)
		return;
	free(c->slots);
	free(c->buf);
	free(c);
}

static struct entry *find(struct de_exehash_cache *c, const struct de_exehash_key *k)
{
	size_t mask = c->nslots - 1, i = (size_t)de_exehash_key_hash(k) & mask;

	while (c->slots[i].used) {
		if (de_exehash_key_equal(&c->slots[i].key, k))
			return &c->slots[i];
		i = (i + 1) & mask;
	}
	return &c->slots[i]; /* the empty slot where k belongs */
}

bool de_exehash_lookup(struct de_exehash_cache *c, const struct de_exehash_key *k, char *hex,
		       char *reason)
{
	struct entry *e = find(c, k);

	if (!e->used)
		return false;
	memcpy(hex, e->hex, sizeof(e->hex));
	memcpy(reason, e->reason, sizeof(e->reason));
	return true;
}

static int grow(struct de_exehash_cache *c)
{
	size_t n = c->nslots * 2;
	struct entry *old = c->slots, *ns;
	size_t on = c->nslots;

	if (c->used + 1 > DE_EXEHASH_CACHE_MAX) {
		/* start over rather than grow without bound */
		memset(c->slots, 0, c->nslots * sizeof(*c->slots));
		c->used = 0;
		return 0;
	}
	if ((c->used + 1) * 10 < c->nslots * 7)
		return 0;
	if (!(ns = calloc(n, sizeof(*ns))))
		return -ENOMEM;
	c->slots = ns;
	c->nslots = n;
	for (size_t i = 0; i < on; i++)
		if (old[i].used)
			*find(c, &old[i].key) = old[i];
	free(old);
	return 0;
}

/* May k be remembered?  (See the top of this file.) */
static bool settled(const struct de_exehash_cache *c, const struct de_exehash_key *k)
{
	const int64_t second = 1000000000;
	int64_t newest = k->mtime_ns > k->ctime_ns ? k->mtime_ns : k->ctime_ns;
	int64_t margin = 2 * c->tick_ns;
	struct timespec now;

	if (k->mtime_ns % second == 0 || k->ctime_ns % second == 0)
		margin += 2 * second;
	if (clock_gettime(CLOCK_REALTIME_COARSE, &now) < 0)
		return false;
	return newest < (int64_t)now.tv_sec * second + now.tv_nsec - margin;
}

static int store(struct de_exehash_cache *c, const struct de_exehash_key *k, const char *hex,
		 const char *reason)
{
	struct entry *e;

	if (!settled(c, k))
		return 0; /* too fresh to trust: the next lookup hashes again */
	if (grow(c) < 0)
		return -ENOMEM;
	e = find(c, k);
	if (!e->used)
		c->used++;
	e->used = true;
	e->key = *k;
	snprintf(e->hex, sizeof(e->hex), "%s", hex);
	snprintf(e->reason, sizeof(e->reason), "%s", reason);
	return 0;
}

int de_exehash_remember_failure(struct de_exehash_cache *c, const struct de_exehash_key *k,
				const char *reason)
{
	return store(c, k, "", reason);
}

static int sha256_buf(int fd, uint64_t max_size, unsigned char *buf, char *hex, uint64_t *bytes)
{
	static const char digits[] = "0123456789abcdef";
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	uint64_t off = 0;
	int rc = 0;

	if (!ctx)
		return -ENOMEM;
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		rc = -EIO;
		goto out;
	}
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	for (;;) {
		ssize_t r = pread(fd, buf, READ_CHUNK, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		if (r == 0)
			break;
		off += (uint64_t)r;
		if (max_size && off > max_size) {
			rc = -EFBIG;
			goto out;
		}
		if (EVP_DigestUpdate(ctx, buf, (size_t)r) != 1) {
			rc = -EIO;
			goto out;
		}
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32) {
		rc = -EIO;
		goto out;
	}
	for (size_t i = 0; i < mdlen; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[2 * (size_t)mdlen] = '\0';
	*bytes = off;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

int de_sha256_fd(int fd, uint64_t max_size, char hex[DE_SHA256_HEX_LEN + 1], uint64_t *bytes)
{
	unsigned char *buf = malloc(READ_CHUNK);
	int rc;

	if (!buf)
		return -ENOMEM;
	rc = sha256_buf(fd, max_size, buf, hex, bytes);
	free(buf);
	return rc;
}

int de_exehash_fd(struct de_exehash_cache *c, int fd, char *hex, char *reason,
		  struct de_exehash_key *key_out)
{
	struct stat st;
	struct de_exehash_key k;
	uint64_t n = 0;
	int rc;

	hex[0] = '\0';
	reason[0] = '\0';
	if (fstat(fd, &st) < 0) {
		snprintf(reason, DE_EXEHASH_REASON_MAX, "fstat: %s", strerror(errno));
		return 0;
	}
	de_exehash_key_from_stat(&st, &k);
	if (key_out)
		*key_out = k;
	if (de_exehash_lookup(c, &k, hex, reason))
		return 0;
	if (!S_ISREG(st.st_mode)) {
		snprintf(reason, DE_EXEHASH_REASON_MAX, "not a regular file");
	} else if (c->max_size && (uint64_t)st.st_size > c->max_size) {
		snprintf(reason, DE_EXEHASH_REASON_MAX, "larger than the size limit");
	} else {
		rc = sha256_buf(fd, c->max_size, c->buf, hex, &n);
		c->bytes += n;
		if (rc == -ENOMEM)
			return rc;
		if (rc == -EFBIG)
			snprintf(reason, DE_EXEHASH_REASON_MAX, "larger than the size limit");
		else if (rc < 0)
			snprintf(reason, DE_EXEHASH_REASON_MAX, "read: %s", strerror(-rc));
		else
			c->files++;
		if (rc < 0)
			hex[0] = '\0';
	}
	return store(c, &k, hex, reason);
}

uint64_t de_exehash_bytes_hashed(const struct de_exehash_cache *c)
{
	return c ? c->bytes : 0;
}

uint64_t de_exehash_files_hashed(const struct de_exehash_cache *c)
{
	return c ? c->files : 0;
}
