/*
 * checkpoint.c — Ed25519-signed checkpoints as C2SP signed notes (see
 * include/daemoneye/checkpoint.h for the format and the contracts): keys
 * (load with permission checks, generate), the note body, signing through
 * a callback, the strict parser and verification.
 */
#include "daemoneye/checkpoint.h"
#include "daemoneye/base64.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_FILE_MAX (16 * 1024)
#define EM_DASH	     "\xE2\x80\x94" /* U+2014, which opens a signature line */

struct de_ckpt_key {
	EVP_PKEY *pkey;
	bool has_private;
};

/* ---- keys ---------------------------------------------------------------- */

static int crypto_fail(struct de_error *err, int code, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "";

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return de_error_set(err, DE_ERR_CRYPTO, code, "%s%s%s", what, *buf ? ": " : "", buf);
}

/*
 * Read a key file (at most KEY_FILE_MAX bytes) into buf; with `private`,
 * refuse it unless it is a regular file owned by us or root with no
 * permission bits beyond 0600.
 */
static int read_key_file(const char *path, bool private, char *buf, size_t *len,
			 struct de_error *err)
{
	struct stat st;
	size_t n = 0;
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);

	if (fd < 0)
		return de_error_set(err, errno == ELOOP ? DE_ERR_CRYPTO : DE_ERR_IO, errno,
				    "cannot open key file %s: %s%s", path, strerror(errno),
				    errno == ELOOP ? " (a symbolic link: refused)" : "");
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return de_error_set(err, DE_ERR_IO, e, "cannot stat key file %s: %s", path,
				    strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return de_error_set(err, DE_ERR_CRYPTO, EPERM, "key file %s is not a regular file",
				    path);
	}
	if (private && st.st_uid != geteuid() && st.st_uid != 0) {
		close(fd);
		return de_error_set(err, DE_ERR_CRYPTO, EPERM,
				    "private key %s is owned by uid %u, not by uid %u or root: "
				    "refused",
				    path, (unsigned)st.st_uid, (unsigned)geteuid());
	}
	if (private && (st.st_mode & 07177)) {
		close(fd);
		return de_error_set(
			err, DE_ERR_CRYPTO, EPERM,
			"private key %s has mode %04o, looser than 0600: refused (chmod "
			"600 %s)",
			path, (unsigned)(st.st_mode & 07777), path);
	}
	while ((r = read(fd, buf + n, KEY_FILE_MAX + 1 - n)) > 0) {
		n += (size_t)r;
		if (n > (size_t)KEY_FILE_MAX)
			break;
	}
	int e = errno;
	close(fd);
	if (r < 0)
		return de_error_set(err, DE_ERR_IO, e, "cannot read key file %s: %s", path,
				    strerror(e));
	if (n > (size_t)KEY_FILE_MAX)
		return de_error_set(err, DE_ERR_CRYPTO, EFBIG,
				    "key file %s is larger than %d bytes: not a key", path,
				    KEY_FILE_MAX);
	*len = n;
	return 0;
}

static int load_key(const char *path, bool private, struct de_ckpt_key **out, struct de_error *err)
{
	char *buf = malloc(KEY_FILE_MAX + 1);
	struct de_ckpt_key *k = NULL;
	EVP_PKEY *pkey = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	int rc;

	if (!buf)
		return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	if ((rc = read_key_file(path, private, buf, &len, err)) < 0)
		goto out;
	if (!(bio = BIO_new_mem_buf(buf, (int)len))) {
		rc = de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
		goto out;
	}
	if (private) {
		pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	} else {
		pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
		if (!pkey) {
			/* the public half of a private key file will do */
			ERR_clear_error();
			BIO_free(bio);
			if (!(bio = BIO_new_mem_buf(buf, (int)len))) {
				rc = de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
				goto out;
			}
			pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
		}
	}
	if (!pkey) {
		char what[PATH_MAX + 64];
		snprintf(what, sizeof(what), "%s is not a PEM %s key", path,
			 private ? "PKCS#8 private" : "SPKI public");
		rc = crypto_fail(err, EINVAL, what);
		goto out;
	}
	if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
		rc = de_error_set(err, DE_ERR_CRYPTO, EINVAL, "%s is a %s key, not Ed25519", path,
				  OBJ_nid2sn(EVP_PKEY_get_id(pkey)));
		goto out;
	}
	if (!(k = calloc(1, sizeof(*k)))) {
		rc = de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
		goto out;
	}
	k->pkey = pkey;
	k->has_private = private;
	pkey = NULL;
	*out = k;
	rc = 0;
out:
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	explicit_bzero(buf, KEY_FILE_MAX + 1);
	free(buf);
	return rc;
}

int de_checkpoint_key_load_private(const char *path, struct de_ckpt_key **out, struct de_error *err)
{
	return load_key(path, true, out, err);
}

int de_checkpoint_key_load_public(const char *path, struct de_ckpt_key **out, struct de_error *err)
{
	return load_key(path, false, out, err);
}

int de_checkpoint_key_from_raw(const uint8_t pub[DE_ED25519_PUB_LEN], struct de_ckpt_key **out,
			       struct de_error *err)
{
	EVP_PKEY *pkey =
		EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, DE_ED25519_PUB_LEN);
	struct de_ckpt_key *k;

	if (!pkey)
		return crypto_fail(err, EINVAL, "not an Ed25519 public key");
	if (!(k = calloc(1, sizeof(*k)))) {
		EVP_PKEY_free(pkey);
		return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	}
	k->pkey = pkey;
	*out = k;
	return 0;
}

int de_checkpoint_key_public_raw(const struct de_ckpt_key *k, uint8_t out[DE_ED25519_PUB_LEN],
				 struct de_error *err)
{
	size_t n = DE_ED25519_PUB_LEN;

	if (EVP_PKEY_get_raw_public_key(k->pkey, out, &n) != 1 || n != DE_ED25519_PUB_LEN)
		return crypto_fail(err, EINVAL, "cannot read the raw Ed25519 public key");
	return 0;
}

int de_checkpoint_key_sign(const struct de_ckpt_key *k, const void *msg, size_t len,
			   uint8_t sig[DE_ED25519_SIG_LEN], struct de_error *err)
{
	EVP_MD_CTX *ctx;
	size_t n = DE_ED25519_SIG_LEN;
	int ok;

	if (!k->has_private)
		return de_error_set(err, DE_ERR_CRYPTO, EINVAL, "a public key cannot sign");
	if (!(ctx = EVP_MD_CTX_new()))
		return de_error_set(err, DE_ERR_CRYPTO, ENOMEM, "out of memory");
	ok = EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
	     EVP_DigestSign(ctx, sig, &n, msg, len) == 1 && n == DE_ED25519_SIG_LEN;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : crypto_fail(err, EINVAL, "Ed25519 signing failed");
}

int de_checkpoint_key_verify(const struct de_ckpt_key *k, const void *msg, size_t len,
			     const uint8_t sig[DE_ED25519_SIG_LEN], struct de_error *err)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	if (!ctx)
		return de_error_set(err, DE_ERR_CRYPTO, ENOMEM, "out of memory");
	ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
	     EVP_DigestVerify(ctx, sig, DE_ED25519_SIG_LEN, msg, len) == 1;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return ok ? 0
		  : de_error_set(err, DE_ERR_CRYPTO, EBADMSG,
				 "the Ed25519 signature does not verify");
}

void de_checkpoint_key_free(struct de_ckpt_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

uint32_t de_checkpoint_key_id(const char *name, const uint8_t pub[DE_ED25519_PUB_LEN])
{
	static const uint8_t sep[2] = {'\n', 0x01}; /* newline, then the Ed25519 type byte */
	uint8_t d[EVP_MAX_MD_SIZE];
	unsigned int dn = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, name, strlen(name)) != 1 ||
	    EVP_DigestUpdate(ctx, sep, sizeof(sep)) != 1 ||
	    EVP_DigestUpdate(ctx, pub, DE_ED25519_PUB_LEN) != 1 ||
	    EVP_DigestFinal_ex(ctx, d, &dn) != 1)
		memset(d, 0, 4); /* allocation failure: an id no real key has matters little */
	EVP_MD_CTX_free(ctx);
	return (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
}

/* Write a PEM made by `write` into DIR/NAME, created exclusively with `mode`. */
static int write_pem(const char *dir, const char *name, mode_t mode, EVP_PKEY *pkey, bool private,
		     struct de_error *err)
{
	char path[PATH_MAX];
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL;
	long len = 0;
	int fd = -1, rc = 0;

	if (!bio)
		return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	if ((private ? PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL)
		     : PEM_write_bio_PUBKEY(bio, pkey)) != 1) {
		rc = crypto_fail(err, EINVAL, "cannot encode the key as PEM");
		goto out;
	}
	len = BIO_get_mem_data(bio, &data);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0) {
		rc = de_error_set(
			err, DE_ERR_IO, errno, "cannot create %s: %s%s", path, strerror(errno),
			errno == EEXIST ? " (never overwritten: move it away first)" : "");
		goto out;
	}
	if (fchmod(fd, mode) < 0 || write(fd, data, (size_t)len) != (ssize_t)len || fsync(fd) < 0) {
		rc = de_error_set(err, DE_ERR_IO, errno ? errno : EIO, "cannot write %s: %s", path,
				  strerror(errno));
		close(fd);
		unlink(path);
		goto out;
	}
	if (close(fd) < 0) {
		rc = de_error_set(err, DE_ERR_IO, errno, "cannot write %s: %s", path,
				  strerror(errno));
		unlink(path);
	}
out:
	if (data && len > 0)
		explicit_bzero(data, (size_t)len);
	BIO_free(bio);
	return rc;
}

int de_checkpoint_keygen(const char *dir, struct de_error *err)
{
	EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	char path[PATH_MAX];
	int rc;

	if (!pkey)
		return crypto_fail(err, ENOMEM, "cannot generate an Ed25519 key");
	rc = write_pem(dir, "audit.key", 0600, pkey, true, err);
	if (rc == 0 && (rc = write_pem(dir, "audit.pub", 0644, pkey, false, err)) < 0) {
		snprintf(path, sizeof(path), "%s/audit.key", dir);
		unlink(path); /* half a pair is no use */
	}
	EVP_PKEY_free(pkey);
	return rc;
}

/* ---- signing ------------------------------------------------------------- */

static int key_sign_cb(void *arg, const void *msg, size_t len, uint8_t sig[DE_ED25519_SIG_LEN],
		       struct de_error *err)
{
	return de_checkpoint_key_sign(arg, msg, len, sig, err);
}

/* A name on a note line: 1..255 printable ASCII bytes; spaces only inside with `spaces`. */
static bool name_ok(const char *s, size_t n, bool spaces)
{
	if (n == 0 || n > DE_CHECKPOINT_NAME_MAX || s[0] == ' ' || s[n - 1] == ' ')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c > 0x7E || (c == ' ' && !spaces) || (c == '+' && !spaces))
			return false;
	}
	return true;
}

int de_checkpoint_signer_from_key(const struct de_ckpt_key *k, const char *key_name,
				  struct de_checkpoint_signer *out, struct de_error *err)
{
	uint8_t pub[DE_ED25519_PUB_LEN];
	struct de_checkpoint_signer s = {0};
	int rc;

	if (!name_ok(key_name, strlen(key_name), false))
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "key name '%s' is not 1..255 printable characters without "
				    "spaces or '+'",
				    key_name);
	if (!k->has_private)
		return de_error_set(err, DE_ERR_CRYPTO, EINVAL, "a public key cannot sign");
	if ((rc = de_checkpoint_key_public_raw(k, pub, err)) < 0)
		return rc;
	snprintf(s.key_name, sizeof(s.key_name), "%s", key_name);
	s.key_id = de_checkpoint_key_id(key_name, pub);
	s.sign = key_sign_cb;
	s.arg = (void *)k;
	*out = s;
	return 0;
}

/* ---- notes --------------------------------------------------------------- */

int de_checkpoint_body(const struct de_checkpoint *cp, char *buf, size_t cap, size_t *len,
		       struct de_error *err)
{
	char root[DE_BASE64_LEN(DE_MERKLE_HASH_LEN) + 1];
	size_t olen = strnlen(cp->origin, sizeof(cp->origin));

	if (!name_ok(cp->origin, olen, true) || olen == sizeof(cp->origin))
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
				    "checkpoint origin '%.*s' is not 1..255 printable ASCII "
				    "characters without leading or trailing spaces",
				    (int)olen, cp->origin);
	de_base64_encode(cp->root, DE_MERKLE_HASH_LEN, root);
	int n = snprintf(buf, cap, "%s\n%llu\n%s\n", cp->origin, (unsigned long long)cp->size,
			 root);
	if (n < 0 || (size_t)n >= cap)
		return de_error_set(err, DE_ERR_VALIDATION, ENOSPC, "checkpoint body too long");
	*len = (size_t)n;
	return 0;
}

int de_checkpoint_sign(const struct de_checkpoint *cp, const struct de_checkpoint_signer *s,
		       char **note, size_t *len, struct de_error *err)
{
	char body[DE_CHECKPOINT_BODY_MAX + 1];
	uint8_t blob[4 + DE_ED25519_SIG_LEN];
	char b64[DE_BASE64_LEN(sizeof(blob)) + 1];
	size_t blen;
	char *text;
	int rc;

	if ((rc = de_checkpoint_body(cp, body, sizeof(body), &blen, err)) < 0)
		return rc;
	if (!name_ok(s->key_name, strlen(s->key_name), false))
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL, "bad key name '%s'",
				    s->key_name);
	blob[0] = (uint8_t)(s->key_id >> 24);
	blob[1] = (uint8_t)(s->key_id >> 16);
	blob[2] = (uint8_t)(s->key_id >> 8);
	blob[3] = (uint8_t)s->key_id;
	if ((rc = s->sign(s->arg, body, blen, blob + 4, err)) < 0)
		return rc;
	de_base64_encode(blob, sizeof(blob), b64);
	int n = asprintf(&text, "%s\n" EM_DASH " %s %s\n", body, s->key_name, b64);
	if (n < 0)
		return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	*note = text;
	*len = (size_t)n;
	return 0;
}

static int malformed(struct de_error *err, unsigned line, const char *what)
{
	return de_error_set(err, DE_ERR_VALIDATION, EBADMSG, "malformed checkpoint: line %u: %s",
			    line, what);
}

/* Canonical decimal: digits only, no leading zero (but "0"), fits 64 bits. */
static bool parse_size(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 20 || (s[0] == '0' && n > 1))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

/*
 * The three body lines at the start of text (which ends with a newline and
 * holds no NUL or CR): into *cp, *body_len their length.  With `whole` the
 * text must be just the body; else more must follow.
 */
static int parse_body(const char *text, size_t len, bool whole, struct de_checkpoint *cp,
		      size_t *body_len, struct de_error *err)
{
	const char *p = text, *end = text + len;

	memset(cp, 0, sizeof(*cp));
	for (unsigned line = 1; line <= 3; line++) {
		const char *nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
		size_t n = nl ? (size_t)(nl - p) : 0;
		if (n == 0)
			return malformed(
				err, line,
				line == 1 ? "empty origin"
					  : "the body ends early (need origin, size and root)");
		if (line == 1) {
			if (!name_ok(p, n, true))
				return malformed(err, line,
						 "the origin is not 1..255 printable ASCII "
						 "characters without leading or trailing spaces");
			memcpy(cp->origin, p, n);
		} else if (line == 2) {
			if (!parse_size(p, n, &cp->size))
				return malformed(err, line,
						 "the tree size is not a canonical decimal number "
						 "of at most 64 bits");
		} else {
			size_t got = 0;
			uint8_t tmp[DE_MERKLE_HASH_LEN + 3];
			if (de_base64_decode(p, n, tmp, sizeof(tmp), &got) < 0 ||
			    got != DE_MERKLE_HASH_LEN)
				return malformed(err, line,
						 "the root hash is not the base64 of 32 bytes");
			memcpy(cp->root, tmp, DE_MERKLE_HASH_LEN);
		}
		p = nl + 1;
		if (p == end && !whole)
			return malformed(err, line, "the note ends before its signatures");
	}
	if (whole && p != end)
		return malformed(err, 4, "extension lines are not supported");
	*body_len = (size_t)(p - text);
	if (*body_len > DE_CHECKPOINT_BODY_MAX)
		return malformed(err, 3, "the body is too long");
	return 0;
}

/* Size cap, final newline, no NUL or CR: what every note and body must pass. */
static int check_text(const char *text, size_t len, size_t cap, struct de_error *err)
{
	if (len > cap)
		return de_error_set(
			err, DE_ERR_VALIDATION, EFBIG,
			"malformed checkpoint: %zu bytes, more than the %zu a checkpoint "
			"can have",
			len, cap);
	if (len == 0 || text[len - 1] != '\n')
		return malformed(err, 0, "the note does not end with a newline");
	if (memchr(text, '\0', len) || memchr(text, '\r', len))
		return malformed(err, 0, "NUL or carriage return in the note");
	return 0;
}

int de_checkpoint_body_parse(const char *text, size_t len, struct de_checkpoint *out,
			     struct de_error *err)
{
	struct de_checkpoint cp;
	size_t blen;
	int rc;

	if ((rc = check_text(text, len, DE_CHECKPOINT_BODY_MAX, err)) < 0 ||
	    (rc = parse_body(text, len, true, &cp, &blen, err)) < 0)
		return rc;
	*out = cp;
	return 0;
}

int de_checkpoint_parse(const char *text, size_t len, struct de_signed_checkpoint *out,
			struct de_error *err)
{
	struct de_signed_checkpoint *r = calloc(1, sizeof(*r));
	const char *p, *end = text + len;
	unsigned line = 4;
	int rc = 0;

	if (!r)
		return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	if ((rc = check_text(text, len, DE_CHECKPOINT_TEXT_MAX, err)) < 0 ||
	    (rc = parse_body(text, len, false, &r->cp, &r->body_len, err)) < 0)
		goto out;
	p = text + r->body_len;
	memcpy(r->body, text, r->body_len);
	if (*p != '\n') {
		rc = malformed(err, line,
			       "extension lines are not supported (or the blank line "
			       "before the signatures is missing)");
		goto out;
	}
	p++;
	line++;
	/* signatures */
	for (; p < end; line++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *s = p, *e = nl;
		struct de_note_sig *sig;
		if (r->nsigs == DE_CHECKPOINT_MAX_SIGS) {
			rc = malformed(err, line, "more than 16 signatures");
			goto out;
		}
		sig = &r->sigs[r->nsigs];
		if ((size_t)(e - s) < 4 || memcmp(s, EM_DASH " ", 4) != 0) {
			rc = malformed(err, line,
				       "not a signature line (\"\xE2\x80\x94 NAME SIGNATURE\")");
			goto out;
		}
		s += 4;
		const char *sp = memchr(s, ' ', (size_t)(e - s));
		if (!sp || !name_ok(s, (size_t)(sp - s), false)) {
			rc = malformed(err, line,
				       "the key name is not 1..255 printable characters without "
				       "spaces or '+', followed by one space");
			goto out;
		}
		memcpy(sig->name, s, (size_t)(sp - s));
		uint8_t blob[4 + DE_CHECKPOINT_SIG_MAX];
		size_t got = 0;
		if (de_base64_decode(sp + 1, (size_t)(e - sp - 1), blob, sizeof(blob), &got) < 0 ||
		    got < 5) {
			rc = malformed(err, line,
				       "the signature is not base64 of a key id and a signature");
			goto out;
		}
		sig->key_id = (uint32_t)blob[0] << 24 | (uint32_t)blob[1] << 16 |
			      (uint32_t)blob[2] << 8 | blob[3];
		sig->sig_len = got - 4;
		memcpy(sig->sig, blob + 4, sig->sig_len);
		r->nsigs++;
		p = nl + 1;
	}
	if (r->nsigs == 0) {
		rc = malformed(err, line, "no signature");
		goto out;
	}
	*out = *r;
out:
	free(r);
	return rc;
}

int de_checkpoint_verify(const struct de_signed_checkpoint *n, const struct de_ckpt_key *pub,
			 const char *key_name, struct de_error *err)
{
	uint8_t raw[DE_ED25519_PUB_LEN];
	const char *name = key_name ? key_name : n->cp.origin;
	uint32_t id;
	int rc;

	if ((rc = de_checkpoint_key_public_raw(pub, raw, err)) < 0)
		return rc;
	id = de_checkpoint_key_id(name, raw);
	for (size_t i = 0; i < n->nsigs; i++) {
		const struct de_note_sig *s = &n->sigs[i];
		if (strcmp(s->name, name) != 0 || s->key_id != id)
			continue;
		if (s->sig_len == DE_ED25519_SIG_LEN &&
		    (rc = de_checkpoint_key_verify(pub, n->body, n->body_len, s->sig, err)) !=
			    -EBADMSG)
			return rc; /* verified, or could not try (ENOMEM) */
		return de_error_set(err, DE_ERR_CRYPTO, EBADMSG,
				    "checkpoint signature by %s (key id %08x) does not verify: the "
				    "note was altered after signing",
				    name, id);
	}
	return de_error_set(err, DE_ERR_CRYPTO, EBADMSG,
			    "checkpoint carries no signature by key %s (key id %08x): signed by "
			    "another key?",
			    name, id);
}
