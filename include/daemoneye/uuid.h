/*
 * uuid.h — UUID version 4 (RFC 9562): the ids of process records and
 * alerts.  Values, no allocation.
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
/* Lower-case canonical form into buf (at least 37 bytes). */
void de_uuid_format(const struct de_uuid *u, char buf[DE_UUID_STR_LEN + 1]);
/* Parse the canonical 8-4-4-4-12 hex form (either case). 0 or -EINVAL, *out untouched. */
int de_uuid_parse(const char *s, struct de_uuid *out);

#endif
