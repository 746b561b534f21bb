/*
 * uuid.c — UUID versions 4 (random) and 7 (time-ordered) from getrandom(2),
 * their canonical text form and parsing (see uuid.h).
 */
#include "daemoneye/uuid.h"
#include "daemoneye/text.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>

/* n random bytes into p.  0 or -errno. */
static int random_bytes(uint8_t *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = getrandom(p + got, n - got, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)r;
	}
	return 0;
}

int de_uuid_v4(struct de_uuid *out)
{
	int rc = random_bytes(out->bytes, sizeof(out->bytes));

	if (rc < 0)
		return rc;
	out->bytes[6] = (uint8_t)((out->bytes[6] & 0x0f) | 0x40);
	out->bytes[8] = (uint8_t)((out->bytes[8] & 0x3f) | 0x80);
	return 0;
}

int de_uuid_v7(struct de_uuid *out, int64_t unix_ms)
{
	uint64_t ms = unix_ms > 0 ? (uint64_t)unix_ms : 0;
	int rc = random_bytes(out->bytes + 6, sizeof(out->bytes) - 6);

	if (rc < 0)
		return rc;
	for (int i = 0; i < 6; i++) /* unix_ts_ms, 48 bits big-endian */
		out->bytes[i] = (uint8_t)(ms >> (40 - 8 * i));
	out->bytes[6] = (uint8_t)((out->bytes[6] & 0x0f) | 0x70);
	out->bytes[8] = (uint8_t)((out->bytes[8] & 0x3f) | 0x80);
	return 0;
}

void de_uuid_format(const struct de_uuid *u, char buf[DE_UUID_STR_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			buf[o++] = '-';
		buf[o++] = hex[u->bytes[i] >> 4];
		buf[o++] = hex[u->bytes[i] & 0x0f];
	}
	buf[o] = '\0';
}

int de_uuid_parse(const char *s, struct de_uuid *out)
{
	struct de_uuid u;
	size_t b = 0;

	if (!s || strlen(s) != DE_UUID_STR_LEN)
		return -EINVAL;
	for (size_t i = 0; i < DE_UUID_STR_LEN;) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -EINVAL;
			i++;
			continue;
		}
		int hi = de_hex_digit((unsigned char)s[i]),
		    lo = de_hex_digit((unsigned char)s[i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		u.bytes[b++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	*out = u;
	return 0;
}
