/*
 * keysign.h — the audit checkpoint signing key, which only the privileged
 * parent reads and holds (docs/process-model.md): the worker asks over the
 * control channel and gets a signature, never the key.
 *
 * OpenSSL runs in a short-lived child for each load and each signature, so
 * that the parent never maps libcrypto (its 4 MB budget); the parent holds
 * the raw key.  Each call may fork: the caller reaps its own children by
 * pid, never with waitpid(-1).
 */
#ifndef AGENT_KEYSIGN_H
#define AGENT_KEYSIGN_H

#include <stddef.h>
#include <stdint.h>

#include "daemoneye/error.h"

#define AGENT_KEY_MAX_FILE ((size_t)16 * 1024)

struct agent_key;

/*
 * Load a PKCS#8 PEM Ed25519 private key.  Refused (DE_ERR_CRYPTO, EPERM)
 * unless it is a regular file (not a symlink) owned by root or by us with
 * no permission bit beyond 0600; at most AGENT_KEY_MAX_FILE bytes, wiped
 * after parsing.  *out is the caller's (agent_key_free).
 */
int agent_key_load(const char *path, struct agent_key **out, struct de_error *err);
/* The raw 32-byte public key. */
void agent_key_public(const struct agent_key *k, uint8_t pub[32]);
/* Ed25519 signature of msg[0..len).  0 or DE_ERR_CRYPTO. */
int agent_key_sign(const struct agent_key *k, const void *msg, size_t len, uint8_t sig[64],
		   struct de_error *err);
/*
 * The parent's answer to a SIGN_REQUEST: sign body[0..len) only if it is
 * a well-formed checkpoint note body (de_ctl_check_note_body) that does
 * not go back on what this key signed before — a smaller tree, or another
 * root at the same size, would be a fork of the ledger.  0 with sig; or
 * -EBADMSG (malformed), -EPERM (a fork), DE_ERR_CRYPTO (signing failed),
 * with err saying which.
 */
int agent_key_sign_note(struct agent_key *k, const char *body, size_t len, uint8_t sig[64],
			struct de_error *err);
/* Free (OpenSSL wipes the private key).  Accepts NULL. */
void agent_key_free(struct agent_key *k);

#endif
