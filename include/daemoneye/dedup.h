/*
 * dedup.h — deduplication windows: repeats of "the same thing" (a key made
 * of the alert's key_fields, e.g. rule id + process name) within
 * window_ms of the first are folded into it and counted, never dropped
 * silently.  When a window closes with folded repeats, the owner is told
 * (a callback) so that it can say "N more in M minutes, last at T".
 *
 * Windows are kept in a hash table by key and in a list in the order they
 * opened; as every window has the same length, that is also the order in
 * which they close, so expiring is a walk from the front.  A window
 * opened by a clock that stepped back simply closes late.
 *
 * The table is capped at max_keys live windows: one more closes the oldest
 * early (with its callback), so memory stays bounded and nothing is lost.
 *
 * Ownership: keys are copied; the struct is opaque, de_dedup_free() accepts
 * NULL.  Windows handed to the callback are borrowed for the call.  Not
 * thread-safe.
 */
#ifndef DAEMONEYE_DEDUP_H
#define DAEMONEYE_DEDUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemoneye/uuid.h"

struct de_dedup_window {
	const char *key;		    /* borrowed */
	int64_t start_ms;		    /* when it opened (the first alert) */
	int64_t end_ms;			    /* start_ms + window */
	uint64_t folded;		    /* repeats folded into it */
	int64_t last_ms;		    /* the last repeat (0: none) */
	char alert_id[DE_UUID_STR_LEN + 1]; /* the alert that opened it */
};

/* Told about each window that closes with folded > 0. */
typedef void (*de_dedup_close_cb)(const struct de_dedup_window *w, void *arg);

struct de_dedup;

/* A new table: window_ms (> 0), at most max_keys live windows (0: 1,000,000). */
int de_dedup_new(uint64_t window_ms, size_t max_keys, de_dedup_close_cb cb, void *arg,
		 struct de_dedup **out);
void de_dedup_free(struct de_dedup *d);

enum de_dedup_verdict { DE_DEDUP_NEW = 0, DE_DEDUP_FOLD };

/*
 * Decide for `key` at now_ms.  Windows that ended at or before now_ms are
 * closed first.  No live window: a new one opens, owned by alert_id, and
 * the verdict is NEW.  A live window: the repeat is counted in it
 * (folded++, last_ms) and the verdict is FOLD; *w (may be NULL) then
 * receives a copy of the window (key borrowed until the next call).
 * 0, or -ENOMEM (nothing changed).
 */
int de_dedup_check(struct de_dedup *d, const char *key, int64_t now_ms, const char *alert_id,
		   enum de_dedup_verdict *verdict, struct de_dedup_window *w);

/* Close every window that ended at or before now_ms.  Returns how many closed. */
size_t de_dedup_expire(struct de_dedup *d, int64_t now_ms);

/* Put back a window saved earlier (at start, from the store); a live key is replaced. */
int de_dedup_restore(struct de_dedup *d, const struct de_dedup_window *w);

/* Live windows. */
size_t de_dedup_len(const struct de_dedup *d);

#endif
