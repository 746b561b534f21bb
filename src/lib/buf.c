/*
 * buf.c — the capped growable buffer (see buf.h): growth by doubling up to
 * the cap.
 */
#include "daemoneye/buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int de_buf_grow(struct de_buf *b, size_t more)
{
	size_t need, cap;
	char *p;

	if (more > b->max || b->len > b->max - more)
		return -E2BIG;
	need = b->len + more + 1; /* and the NUL */
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (cap > b->max + 1)
		cap = b->max + 1;
	if (!(p = realloc(b->p, cap)))
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

int de_buf_vprintf(struct de_buf *b, const char *fmt, va_list ap)
{
	va_list aq;
	int n, rc;

	va_copy(aq, ap);
	n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, aq);
	va_end(aq);
	if (n < 0)
		return -EINVAL;
	if (b->p && (size_t)n < b->cap - b->len) {
		if ((size_t)n > b->max - b->len) { /* it fitted the allocation, not the cap */
			b->p[b->len] = '\0';
			return -E2BIG;
		}
		b->len += (size_t)n;
		return 0;
	}
	if ((rc = de_buf_reserve(b, (size_t)n)) < 0) {
		if (b->p)
			b->p[b->len] = '\0';
		return rc;
	}
	vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int de_buf_printf(struct de_buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = de_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void de_buf_free(struct de_buf *b)
{
	if (!b)
		return;
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

char *de_buf_steal(struct de_buf *b)
{
	char *p = b->p;

	if (!p)
		return calloc(1, 1);
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}
