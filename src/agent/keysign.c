/*
 * keysign.c — the checkpoint signing key in the privileged parent (see
 * keysign.h).
 *
 * libcrypto is loaded (dlopen) when a key is, not linked: its relocations
 * alone make 1.4 MB of the parent resident, more than a third of the
 * parent's 4 MB budget, and most installations sign nothing.  The few
 * functions used are looked up by name, each with the type of its
 * declaration in the OpenSSL headers.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "daemoneye/ctl.h"
#include "daemoneye/fileio.h"
#include "keysign.h"

/* ---- libcrypto, loaded on first use ---------------------------------------------- */

#define CRYPTO_FUNCS(X)                                                                            \
	X(BIO_new_mem_buf)                                                                         \
	X(BIO_free)                                                                                \
	X(PEM_read_bio_PrivateKey)                                                                 \
	X(EVP_PKEY_get_id)                                                                         \
	X(EVP_PKEY_get_raw_public_key)                                                             \
	X(EVP_PKEY_free)                                                                           \
	X(EVP_MD_CTX_new)                                                                          \
	X(EVP_MD_CTX_free)                                                                         \
	X(EVP_DigestSignInit)                                                                      \
	X(EVP_DigestSign)

static struct {
/* a declarator, not an expression: f cannot be parenthesised */
/* NOLINTNEXTLINE(bugprone-macro-parentheses) */
#define DECLARE(f) __typeof__(&f) f;
	CRYPTO_FUNCS(DECLARE)
#undef DECLARE
} crypto;
static bool crypto_ok;

static void crypto_load(void)
{
	void *h = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);

	if (!h)
		return;
#define LOOKUP(f)                                                                                  \
	if (!(*(void **)&crypto.f = dlsym(h, #f)))                                                 \
		return;
	CRYPTO_FUNCS(LOOKUP)
#undef LOOKUP
	crypto_ok = true; /* the handle stays: the functions are used until exit */
}

static int crypto_init(struct de_error *err)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, crypto_load);
	if (!crypto_ok)
		return de_error_set(err, DE_ERR_CRYPTO, ENOSYS,
				    "cannot load OpenSSL's libcrypto.so.3 for checkpoint signing");
	return 0;
}

/* ---- the key ------------------------------------------------------------------------ */

struct agent_key {
	EVP_PKEY *pkey;
	uint8_t pub[32];
	bool signed_any; /* the last note signed: a ledger only grows */
	uint64_t last_size;
	uint8_t last_root[32];
};

int agent_key_load(const char *path, struct agent_key **out, struct de_error *err)
{
	struct agent_key *k = NULL;
	struct stat st;
	char *buf = NULL;
	size_t len = 0, publen = 32;
	BIO *bio = NULL;
	int fd, rc;

	if ((rc = crypto_init(err)) < 0)
		return rc;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return de_error_set(err, DE_ERR_CRYPTO, errno, "cannot open the signing key %s: %s",
				    path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & 07177) != 0) {
		close(fd);
		return de_error_set(err, DE_ERR_CRYPTO, EPERM,
				    "signing key %s must be a regular file owned by root (or by "
				    "us) with mode 0600 or stricter",
				    path);
	}
	rc = de_read_fd(fd, AGENT_KEY_MAX_FILE, &buf, &len, NULL);
	close(fd);
	if (rc < 0)
		return de_error_set(err, DE_ERR_CRYPTO, -rc, "cannot read the signing key %s: %s",
				    path, strerror(-rc));
	if (!(k = calloc(1, sizeof(*k))) || !(bio = crypto.BIO_new_mem_buf(buf, (int)len))) {
		rc = de_error_set(err, DE_ERR_CRYPTO, ENOMEM, "out of memory");
		goto out;
	}
	k->pkey = crypto.PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	if (!k->pkey || crypto.EVP_PKEY_get_id(k->pkey) != EVP_PKEY_ED25519 ||
	    crypto.EVP_PKEY_get_raw_public_key(k->pkey, k->pub, &publen) != 1 || publen != 32) {
		rc = de_error_set(err, DE_ERR_CRYPTO, EINVAL,
				  "signing key %s is not a PKCS#8 PEM Ed25519 private key "
				  "(daemoneye-cli keygen makes one)",
				  path);
		goto out;
	}
	*out = k;
	k = NULL;
	rc = 0;
out:
	crypto.BIO_free(bio);
	explicit_bzero(buf, len);
	free(buf);
	agent_key_free(k);
	return rc;
}

void agent_key_public(const struct agent_key *k, uint8_t pub[32])
{
	memcpy(pub, k->pub, 32);
}

int agent_key_sign(const struct agent_key *k, const void *msg, size_t len, uint8_t sig[64],
		   struct de_error *err)
{
	EVP_MD_CTX *ctx = crypto.EVP_MD_CTX_new();
	size_t siglen = 64;
	int ok = ctx && crypto.EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
		 crypto.EVP_DigestSign(ctx, sig, &siglen, msg, len) == 1 && siglen == 64;

	crypto.EVP_MD_CTX_free(ctx);
	if (!ok)
		return de_error_set(err, DE_ERR_CRYPTO, EIO, "Ed25519 signing failed");
	return 0;
}

int agent_key_sign_note(struct agent_key *k, const char *body, size_t len, uint8_t sig[64],
			struct de_error *err)
{
	struct de_ctl_note note;
	int rc;

	if ((rc = de_ctl_check_note_body(body, len, &note, err)) < 0)
		return rc;
	if (k->signed_any &&
	    (note.size < k->last_size ||
	     (note.size == k->last_size && memcmp(note.root, k->last_root, 32) != 0)))
		return de_error_set(err, DE_ERR_CRYPTO, EPERM,
				    "a checkpoint of size %llu after one of size %llu%s: a ledger "
				    "only grows",
				    (unsigned long long)note.size, (unsigned long long)k->last_size,
				    note.size == k->last_size ? " with another root" : "");
	if ((rc = agent_key_sign(k, body, len, sig, err)) < 0)
		return rc;
	k->signed_any = true;
	k->last_size = note.size;
	memcpy(k->last_root, note.root, 32);
	return 0;
}

void agent_key_free(struct agent_key *k)
{
	if (!k)
		return;
	crypto.EVP_PKEY_free(k->pkey);
	free(k);
}
