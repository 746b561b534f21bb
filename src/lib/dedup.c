/*
 * dedup.c — deduplication windows (see dedup.h): a chained hash table of
 * windows by key, threaded on a list in opening order.
 */
#include "daemoneye/dedup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ent {
	struct de_dedup_window w;
	char *key; /* owned; w.key points here */
	uint64_t hash;
	struct ent *chain;	 /* next in the bucket */
	struct ent *prev, *next; /* opening order */
};

struct de_dedup {
	uint64_t window_ms;
	size_t max_keys;
	de_dedup_close_cb cb;
	void *arg;
	struct ent **buckets; /* nbuckets, a power of two */
	size_t nbuckets;
	size_t len;
	struct ent *head, *tail; /* oldest first */
};

static uint64_t hash_key(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h ^ (h >> 29);
}

int de_dedup_new(uint64_t window_ms, size_t max_keys, de_dedup_close_cb cb, void *arg,
		 struct de_dedup **out)
{
	struct de_dedup *d = calloc(1, sizeof(*d));

	if (!d || !(d->buckets = calloc(64, sizeof(struct ent *)))) {
		free(d);
		return -ENOMEM;
	}
	d->nbuckets = 64;
	d->window_ms = window_ms ? window_ms : 1;
	d->max_keys = max_keys ? max_keys : 1000000;
	d->cb = cb;
	d->arg = arg;
	*out = d;
	return 0;
}

void de_dedup_free(struct de_dedup *d)
{
	if (!d)
		return;
	for (struct ent *e = d->head, *n; e; e = n) {
		n = e->next;
		free(e->key);
		free(e);
	}
	free(d->buckets);
	free(d);
}

static struct ent **slot(struct de_dedup *d, const char *key, uint64_t h)
{
	struct ent **p = &d->buckets[h & (d->nbuckets - 1)];

	while (*p && ((*p)->hash != h || strcmp((*p)->key, key) != 0))
		p = &(*p)->chain;
	return p;
}

static void grow(struct de_dedup *d)
{
	size_t nb = d->nbuckets * 2;
	struct ent **b = calloc(nb, sizeof(struct ent *));

	if (!b)
		return; /* longer chains, still correct */
	for (struct ent *e = d->head; e; e = e->next) {
		struct ent **p = &b[e->hash & (nb - 1)];
		e->chain = *p;
		*p = e;
	}
	free(d->buckets);
	d->buckets = b;
	d->nbuckets = nb;
}

/* Unlink e (from its bucket and the list), tell the owner, free it. */
static void close_ent(struct de_dedup *d, struct ent *e)
{
	struct ent **p = slot(d, e->key, e->hash);

	*p = e->chain;
	if (e->prev)
		e->prev->next = e->next;
	else
		d->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		d->tail = e->prev;
	d->len--;
	if (e->w.folded && d->cb)
		d->cb(&e->w, d->arg);
	free(e->key);
	free(e);
}

size_t de_dedup_expire(struct de_dedup *d, int64_t now_ms)
{
	size_t n = 0;

	while (d->head && d->head->w.end_ms <= now_ms) {
		close_ent(d, d->head);
		n++;
	}
	return n;
}

/* Insert a window at the back of the list. */
static int insert(struct de_dedup *d, const char *key, uint64_t h, const struct de_dedup_window *w)
{
	struct ent *e = calloc(1, sizeof(*e));
	struct ent **p;

	if (!e || !(e->key = strdup(key))) {
		free(e);
		return -ENOMEM;
	}
	while (d->len >= d->max_keys && d->head)
		/* the head has no prev (the list's invariant), so closing it
		   moves d->head on; the analyzer assumes it may have one */
		/* NOLINTNEXTLINE(clang-analyzer-unix.Malloc) */
		close_ent(d, d->head); /* the cap: the oldest closes early */
	if (d->len + 1 > d->nbuckets)
		grow(d);
	e->w = *w;
	e->w.key = e->key;
	e->hash = h;
	p = &d->buckets[h & (d->nbuckets - 1)];
	e->chain = *p;
	*p = e;
	e->prev = d->tail;
	if (d->tail)
		d->tail->next = e;
	else
		d->head = e;
	d->tail = e;
	d->len++;
	return 0;
}

int de_dedup_check(struct de_dedup *d, const char *key, int64_t now_ms, const char *alert_id,
		   enum de_dedup_verdict *verdict, struct de_dedup_window *w)
{
	uint64_t h = hash_key(key);
	struct ent *e;

	de_dedup_expire(d, now_ms);
	e = *slot(d, key, h);
	if (e) {
		e->w.folded++;
		e->w.last_ms = now_ms;
		*verdict = DE_DEDUP_FOLD;
		if (w)
			*w = e->w;
		return 0;
	}
	struct de_dedup_window nw = {.start_ms = now_ms, .end_ms = now_ms + (int64_t)d->window_ms};
	snprintf(nw.alert_id, sizeof(nw.alert_id), "%s", alert_id ? alert_id : "");
	int rc = insert(d, key, h, &nw);
	if (rc < 0)
		return rc;
	*verdict = DE_DEDUP_NEW;
	if (w)
		*w = d->tail->w;
	return 0;
}

int de_dedup_restore(struct de_dedup *d, const struct de_dedup_window *w)
{
	uint64_t h = hash_key(w->key);
	struct ent *e = *slot(d, w->key, h);

	if (e) { /* replaced: unlinked without a callback */
		e->w.folded = 0;
		close_ent(d, e);
	}
	return insert(d, w->key, h, w);
}

size_t de_dedup_len(const struct de_dedup *d)
{
	return d->len;
}
