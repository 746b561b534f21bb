/*
 * base64.h — standard base64 (RFC 4648 section 4, with '=' padding), as
 * signed notes, checkpoints and proofs carry hashes and signatures.
 * Decoding is strict: only the canonical encoding of some bytes is
 * accepted (no whitespace, no missing or extra padding, no stray bits),
 * so one value has one text.  No allocation: the caller gives the buffers.
 */
#ifndef DAEMONEYE_BASE64_H
#define DAEMONEYE_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Characters de_base64_encode() writes for n bytes, NUL excluded. */
#define DE_BASE64_LEN(n) (((size_t)(n) + 2) / 3 * 4)

/* Encode n bytes into out (DE_BASE64_LEN(n) + 1 bytes, NUL-terminated); returns the length. */
size_t de_base64_encode(const uint8_t *in, size_t n, char *out);
/*
 * Decode len characters into out (at most cap bytes); *n gets the byte
 * count.  0, or -EINVAL for anything but a canonical encoding, -E2BIG when
 * it would not fit; *n and out are then unspecified.
 */
int de_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *n);

#endif
