/*
 * uuid.h — UUIDs (RFC 9562): version 4 (random) for process records,
 * version 7 (a millisecond timestamp, then 74 random bits) for alerts, so
 * that the store's indexes on alert ids grow at one end like the alerts
 * themselves instead of being written all over at every commit.  Values,
 * no allocation.
 */
#ifndef DAEMONEYE_UUID_H
#define DAEMONEYE_UUID_H

#include <stdint.h>

struct de_uuid {
	uint8_t bytes[16];
};

#define DE_UUID_STR_LEN 36 /* without the NUL */

/* A random (version 4, RFC 9562 variant) UUID from getrandom(2). 0 or -errno. */
int de_uuid_v4(struct de_uuid *out);
/*
 * A time-ordered (version 7) UUID for unix_ms (ms since the epoch, clamped
 * at 0): the 48-bit timestamp, then random bits from getrandom(2); ids of
 * one millisecond are in random order.  0 or -errno.
 */
int de_uuid_v7(struct de_uuid *out, int64_t unix_ms);
/* Lower-case canonical form into buf (at least 37 bytes). */
void de_uuid_format(const struct de_uuid *u, char buf[DE_UUID_STR_LEN + 1]);
/* Parse the canonical 8-4-4-4-12 hex form (either case). 0 or -EINVAL, *out untouched. */
int de_uuid_parse(const char *s, struct de_uuid *out);

#endif
