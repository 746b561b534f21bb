/*
 * buf.h — the growable byte buffer, with a cap: every buffer that input can
 * grow (a frame being assembled, a table line, the store's row text) has a
 * most it may hold, and going past it is an error (-E2BIG), never an
 * unbounded allocation.  The bytes are always followed by a NUL once
 * anything was written, so text can be used as a C string.
 *
 * Ownership: the buffer owns p; de_buf_free releases it (NULL accepted);
 * de_buf_steal hands it to the caller.  A failed append leaves the buffer
 * as it was.
 */
#ifndef DAEMONEYE_BUF_H
#define DAEMONEYE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <string.h>

struct de_buf {
	char *p;    /* the bytes (owned), NULL until the first write */
	size_t len; /* bytes held (the NUL after them not counted) */
	size_t cap; /* bytes allocated */
	size_t max; /* the most len may become */
};

#define DE_BUF_INIT(maxbytes)                                                                      \
	{                                                                                          \
		NULL, 0, 0, (maxbytes)                                                             \
	}

/* Room for `more` bytes after len (and the NUL): 0, -E2BIG beyond max, -ENOMEM. */
int de_buf_grow(struct de_buf *b, size_t more);

static inline int de_buf_reserve(struct de_buf *b, size_t more)
{
	return b->cap - b->len > more ? 0 : de_buf_grow(b, more);
}

/* Append n bytes.  0, -E2BIG, -ENOMEM (the buffer unchanged). */
static inline int de_buf_append(struct de_buf *b, const void *s, size_t n)
{
	int rc = de_buf_reserve(b, n);

	if (rc < 0)
		return rc;
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static inline int de_buf_puts(struct de_buf *b, const char *s)
{
	return de_buf_append(b, s, strlen(s));
}

static inline int de_buf_putc(struct de_buf *b, char c)
{
	return de_buf_append(b, &c, 1);
}

/* Append printf-formatted text.  0, -E2BIG, -ENOMEM, -EINVAL (bad format). */
int de_buf_printf(struct de_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int de_buf_vprintf(struct de_buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/* Forget the bytes, keep the allocation. */
static inline void de_buf_reset(struct de_buf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = '\0';
}

/* Release the allocation; the buffer is empty (max kept). */
void de_buf_free(struct de_buf *b);

/*
 * The bytes as a NUL-terminated string the caller frees (an empty string
 * when nothing was written; NULL on ENOMEM); the buffer is then empty.
 */
char *de_buf_steal(struct de_buf *b);

#endif
