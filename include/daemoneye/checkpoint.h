/*
 * checkpoint.h — signed checkpoints of the audit ledger's Merkle tree in
 * the C2SP tlog-checkpoint format, as a C2SP signed note, signed with
 * Ed25519 (OpenSSL EVP).  The text (see docs/audit.md):
 *
 *   <origin>\n                       names this host's ledger
 *   <tree size, decimal>\n
 *   <root hash, base64>\n
 *   \n
 *   — <key name> <base64(key id (4 bytes, big-endian) || signature (64))>\n
 *
 * The signature covers the three lines before the blank one, their
 * newlines included (the note's body), so anyone can check it with
 * `openssl pkeyutl -verify -rawin` and the public key alone.  The key id
 * is the first four bytes of SHA-256(key name || "\n" || 0x01 || the raw
 * 32-byte public key), as signed-note defines for Ed25519; our key name is
 * the origin.
 *
 * Keys: the private key is a PKCS#8 PEM file, refused unless owned by the
 * caller or root and of mode 0600 or stricter (the agent never reads it:
 * it signs through a de_checkpoint_signer callback that the privileged
 * side can serve); the public key is an SPKI PEM file.
 *
 * Errors: malformed notes are DE_ERR_VALIDATION (EBADMSG) naming what is
 * wrong and where; key and signature problems DE_ERR_CRYPTO; files
 * DE_ERR_IO.  Owned memory is said per function.
 */
#ifndef DAEMONEYE_CHECKPOINT_H
#define DAEMONEYE_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "daemoneye/error.h"
#include "daemoneye/merkle.h"

#define DE_CHECKPOINT_NAME_MAX 255  /* origin and key name, bytes */
#define DE_CHECKPOINT_BODY_MAX 512  /* the three lines */
#define DE_CHECKPOINT_TEXT_MAX 8192 /* a whole note; parse refuses more */
#define DE_CHECKPOINT_MAX_SIGS 16   /* signature lines a note may carry */
#define DE_CHECKPOINT_SIG_MAX  128  /* bytes of one signature (after the key id) */
#define DE_ED25519_SIG_LEN     64
#define DE_ED25519_PUB_LEN     32

/* What a checkpoint states. */
struct de_checkpoint {
	char origin[DE_CHECKPOINT_NAME_MAX + 1]; /* printable ASCII, no edge spaces */
	uint64_t size;				 /* entries in the tree */
	uint8_t root[DE_MERKLE_HASH_LEN];	 /* its Merkle root */
};

/* One signature line of a note. */
struct de_note_sig {
	char name[DE_CHECKPOINT_NAME_MAX + 1]; /* key name */
	uint32_t key_id;		       /* first four bytes */
	size_t sig_len;			       /* bytes in sig (64 for Ed25519) */
	uint8_t sig[DE_CHECKPOINT_SIG_MAX];
};

/* A parsed note: the checkpoint, its exact body and its signatures. */
struct de_signed_checkpoint {
	struct de_checkpoint cp;
	size_t body_len;				 /* bytes of body signed */
	char body[DE_CHECKPOINT_BODY_MAX + 1];		 /* NUL-terminated copy */
	size_t nsigs;					 /* entries in sigs */
	struct de_note_sig sigs[DE_CHECKPOINT_MAX_SIGS]; /* in the note's order */
};

/* ---- keys ---------------------------------------------------------------- */

/* An Ed25519 key: private (can sign) or public only.  Opaque. */
struct de_ckpt_key;

/*
 * Load a PKCS#8 PEM Ed25519 private key.  Refused (DE_ERR_CRYPTO, EPERM)
 * when the file is not a regular file, is not owned by the caller or root,
 * or has any permission bit beyond 0600; at most 16 KiB.  The file's bytes
 * are wiped after parsing.  *out is the caller's (de_checkpoint_key_free).
 */
int de_checkpoint_key_load_private(const char *path, struct de_ckpt_key **out,
				   struct de_error *err);
/* Load an SPKI PEM Ed25519 public key (or the public half of a private PEM). */
int de_checkpoint_key_load_public(const char *path, struct de_ckpt_key **out, struct de_error *err);
/* A public key from its raw 32 bytes (a signed-note verifier key's, say). */
int de_checkpoint_key_from_raw(const uint8_t pub[DE_ED25519_PUB_LEN], struct de_ckpt_key **out,
			       struct de_error *err);
/* The raw 32-byte public key. */
int de_checkpoint_key_public_raw(const struct de_ckpt_key *k, uint8_t out[DE_ED25519_PUB_LEN],
				 struct de_error *err);
/* Ed25519-sign msg.  Needs a private key (else DE_ERR_CRYPTO, EINVAL). */
int de_checkpoint_key_sign(const struct de_ckpt_key *k, const void *msg, size_t len,
			   uint8_t sig[DE_ED25519_SIG_LEN], struct de_error *err);
/*
 * Check an Ed25519 signature of msg by k (public or private).  0, or
 * DE_ERR_CRYPTO EBADMSG when it does not verify.
 */
int de_checkpoint_key_verify(const struct de_ckpt_key *k, const void *msg, size_t len,
			     const uint8_t sig[DE_ED25519_SIG_LEN], struct de_error *err);
/* Free (the private key is freed by OpenSSL, which wipes it).  Accepts NULL. */
void de_checkpoint_key_free(struct de_ckpt_key *k);
/* signed-note key id of an Ed25519 key under `name`. */
uint32_t de_checkpoint_key_id(const char *name, const uint8_t pub[DE_ED25519_PUB_LEN]);
/*
 * Generate a key pair: DIR/audit.key (PKCS#8 PEM, mode 0600) and
 * DIR/audit.pub (SPKI PEM, 0644).  Existing files are never overwritten
 * (EEXIST).  DIR must exist.
 */
int de_checkpoint_keygen(const char *dir, struct de_error *err);

/* ---- signing ------------------------------------------------------------- */

/*
 * Sign `len` bytes of msg with Ed25519 into sig.  0 or -errno with *err
 * filled.  A callback so that the key can live in another process.
 */
typedef int (*de_checkpoint_sign_fn)(void *arg, const void *msg, size_t len,
				     uint8_t sig[DE_ED25519_SIG_LEN], struct de_error *err);

/* Who signs, and how to reach them. */
struct de_checkpoint_signer {
	char key_name[DE_CHECKPOINT_NAME_MAX + 1]; /* the signature line's name */
	uint32_t key_id;			   /* de_checkpoint_key_id(name, public key) */
	de_checkpoint_sign_fn sign;
	void *arg;
};

/*
 * A signer that signs in-process with private key k (k must outlive it)
 * under key_name.
 */
int de_checkpoint_signer_from_key(const struct de_ckpt_key *k, const char *key_name,
				  struct de_checkpoint_signer *out, struct de_error *err);

/* ---- notes --------------------------------------------------------------- */

/*
 * The note body of cp into buf (cap bytes; DE_CHECKPOINT_BODY_MAX + 1
 * always suffices), NUL-terminated; *len without the NUL.  A bad origin is
 * DE_ERR_VALIDATION.
 */
int de_checkpoint_body(const struct de_checkpoint *cp, char *buf, size_t cap, size_t *len,
		       struct de_error *err);
/*
 * The whole signed note of cp, signed by s.  *note (NUL-terminated, *len
 * bytes without the NUL) is the caller's to free().
 */
int de_checkpoint_sign(const struct de_checkpoint *cp, const struct de_checkpoint_signer *s,
		       char **note, size_t *len, struct de_error *err);
/*
 * Parse a note strictly: at most DE_CHECKPOINT_TEXT_MAX bytes, our three
 * body lines (canonical decimal size, canonical base64 of 32 bytes, no
 * extension lines), a blank line, 1..DE_CHECKPOINT_MAX_SIGS well-formed
 * signature lines, nothing else.  Each malformation is DE_ERR_VALIDATION
 * (EBADMSG) naming the line.  Signatures are not checked here.
 */
int de_checkpoint_parse(const char *text, size_t len, struct de_signed_checkpoint *out,
			struct de_error *err);
/*
 * Parse a note body alone (the three lines, nothing else), as strictly as
 * de_checkpoint_parse.  For a signer serving a sign callback over IPC (the
 * privileged parent): sign only what parses, and only for the origin it
 * expects, so that it never signs arbitrary bytes for the unprivileged side.
 */
int de_checkpoint_body_parse(const char *text, size_t len, struct de_checkpoint *out,
			     struct de_error *err);
/*
 * Check that n carries a valid Ed25519 signature by public key pub under
 * key_name (NULL: the checkpoint's origin).  0, or DE_ERR_CRYPTO: EBADMSG
 * when no signature line has that key's name and id ("signed by another
 * key") or the signature does not verify ("altered after signing").
 */
int de_checkpoint_verify(const struct de_signed_checkpoint *n, const struct de_ckpt_key *pub,
			 const char *key_name, struct de_error *err);

#endif
