/*
 * fleet_int.h — what fleet_query.c and fleet_bundle.c share (not
 * installed): the operator's Ed25519 signature over canonical bytes, as the
 * base64 text a message carries, and the strict reading of a message's
 * JSON members.  Errors as fleet.h says for queries and bundles.
 */
#ifndef DAEMONEYE_FLEET_INT_H
#define DAEMONEYE_FLEET_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "daemoneye/base64.h"
#include "daemoneye/checkpoint.h"
#include "daemoneye/error.h"

#define FLEET_SIG64_LEN (DE_BASE64_LEN(DE_ED25519_SIG_LEN) + 8) /* room for a bad one */

/* Sign bytes[0..len) with key into sig64 (base64 of 64 bytes, NUL-terminated). */
int fleet_sig_make(const struct de_ckpt_key *key, const void *bytes, size_t len,
		   char sig64[FLEET_SIG64_LEN], struct de_error *err);
/*
 * Whether sig64 is pub's signature over bytes[0..len): 0, or a CryptoError
 * EBADMSG naming `what` ("fleet query X", "rule bundle version N"):
 * not 64 bytes of base64, or not signed by the operator's key.
 */
int fleet_sig_check(const struct de_ckpt_key *pub, const void *bytes, size_t len, const char *sig64,
		    const char *what, struct de_error *err);
/*
 * Parse a message of len bytes (at most max) that must be a JSON object
 * with no member but keys[0..n) and none twice: 0 with *out (the caller
 * decrefs), or a ValidationError "WHAT of N bytes refused" (E2BIG) or
 * "malformed WHAT: ..." (EBADMSG).
 */
int fleet_json_open(const char *msg, size_t len, size_t max, const char *const *keys, size_t n,
		    const char *what, json_t **out, struct de_error *err);
/* Whether every member of o is one of keys[0..n). */
bool fleet_json_only(const json_t *o, const char *const *keys, size_t n);
/* The string member key of o into buf (cap bytes with the NUL): 0, or -1 (absent, too long, a NUL).
 */
int fleet_json_str(const json_t *o, const char *key, char *buf, size_t cap);

#endif
