/*
 * keysign.c — the checkpoint signing key in the privileged parent (see
 * keysign.h).
 *
 * The parent never maps libcrypto: mapped, with its relocations and the
 * provider and configuration it initialises, it made the parent's resident
 * memory 6.9 MB against a budget of 4 MB.  Each use of OpenSSL runs in a
 * child forked for it, which loads libcrypto (dlopen), does the one thing
 * (parse the PEM key; sign one message), writes the result to a pipe and
 * exits, as agent_user_resolve runs NSS in a child (privdrop.c).  The
 * parent keeps only the raw 32-byte Ed25519 private key (wiped when freed;
 * the parent is not dumpable) and the public key.  A checkpoint costs a
 * fork and a dlopen, a few milliseconds, a few times an hour.  The few
 * libcrypto functions used are looked up by name, each with the type of
 * its declaration in the OpenSSL headers.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "daemoneye/ctl.h"
#include "daemoneye/fileio.h"
#include "keysign.h"

/* ---- libcrypto, in a child -------------------------------------------------------- */

#define CRYPTO_FUNCS(X)                                                                            \
	X(BIO_new_mem_buf)                                                                         \
	X(PEM_read_bio_PrivateKey)                                                                 \
	X(EVP_PKEY_get_id)                                                                         \
	X(EVP_PKEY_get_raw_public_key)                                                             \
	X(EVP_PKEY_get_raw_private_key)                                                            \
	X(EVP_PKEY_new_raw_private_key)                                                            \
	X(EVP_MD_CTX_new)                                                                          \
	X(EVP_DigestSignInit)                                                                      \
	X(EVP_DigestSign)

/* Set in a child only (each its own copy), by crypto_load. */
static struct crypto {
/* a declarator, not an expression: f cannot be parenthesised */
/* NOLINTNEXTLINE(bugprone-macro-parentheses) */
#define DECLARE(f) __typeof__(&f) f;
	CRYPTO_FUNCS(DECLARE)
#undef DECLARE
} crypto;

/* In the child: 0 with every function in `crypto`, or a CryptoError. */
static int crypto_load(struct de_error *err)
{
	void *h = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);

	if (!h)
		return de_error_set(err, DE_ERR_CRYPTO, ENOSYS,
				    "cannot load OpenSSL's libcrypto.so.3 for checkpoint signing");
#define LOOKUP(f)                                                                                  \
	if (!(*(void **)&crypto.f = dlsym(h, #f)))                                                 \
		return de_error_set(err, DE_ERR_CRYPTO, ENOSYS, "libcrypto.so.3 has no %s", #f);
	CRYPTO_FUNCS(LOOKUP)
#undef LOOKUP
	return 0; /* the child exits: nothing is freed */
}

/* What a child sends back. */
struct answer {
	int rc;
	struct de_error err;
	uint8_t priv[32], pub[32]; /* a key's */
	uint8_t sig[64];	   /* a signature */
};

/*
 * Run job(arg, &answer) in a forked child and return its answer in *a (a
 * is wiped first; the caller wipes it after use).  The child only runs
 * job and _exit: nothing of ours is flushed or freed twice.
 */
static int in_child(int (*job)(const void *arg, struct answer *a), const void *arg,
		    struct answer *a, struct de_error *err)
{
	int fd[2], st = 0;
	ssize_t n;
	pid_t pid;

	explicit_bzero(a, sizeof(*a));
	if (pipe2(fd, O_CLOEXEC) < 0)
		return de_error_set(err, DE_ERR_CRYPTO, errno, "pipe: %s", strerror(errno));
	if ((pid = fork()) < 0) {
		close(fd[0]);
		close(fd[1]);
		return de_error_set(err, DE_ERR_CRYPTO, errno, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		close(fd[0]);
		a->rc = job(arg, a);
		n = write(fd[1], a, sizeof(*a));
		explicit_bzero(a, sizeof(*a));
		_exit(n == (ssize_t)sizeof(*a) ? 0 : 1);
	}
	close(fd[1]);
	while ((n = read(fd[0], a, sizeof(*a))) < 0 && errno == EINTR)
		;
	close(fd[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(*a)) {
		explicit_bzero(a, sizeof(*a));
		return de_error_set(err, DE_ERR_CRYPTO, EIO,
				    "the signing helper died (wait status %d)", st);
	}
	if (a->rc < 0) {
		if (err)
			*err = a->err;
		return a->rc;
	}
	return 0;
}

/* ---- the key ------------------------------------------------------------------------ */

struct agent_key {
	uint8_t priv[32]; /* the raw Ed25519 private key */
	uint8_t pub[32];
	bool signed_any; /* the last note signed: a ledger only grows */
	uint64_t last_size;
	uint8_t last_root[32];
};

struct pem {
	const char *path;
	const char *buf;
	size_t len;
};

/* In the child: the PEM's raw private and public keys. */
static int parse_pem(const void *arg, struct answer *a)
{
	const struct pem *p = arg;
	size_t plen = 32, publen = 32;
	EVP_PKEY *pkey;
	BIO *bio;
	int rc;

	if ((rc = crypto_load(&a->err)) < 0)
		return rc;
	if (!(bio = crypto.BIO_new_mem_buf(p->buf, (int)p->len)))
		return de_error_set(&a->err, DE_ERR_CRYPTO, ENOMEM, "out of memory");
	pkey = crypto.PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	if (!pkey || crypto.EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519 ||
	    crypto.EVP_PKEY_get_raw_private_key(pkey, a->priv, &plen) != 1 || plen != 32 ||
	    crypto.EVP_PKEY_get_raw_public_key(pkey, a->pub, &publen) != 1 || publen != 32)
		return de_error_set(&a->err, DE_ERR_CRYPTO, EINVAL,
				    "signing key %s is not a PKCS#8 PEM Ed25519 private key "
				    "(daemoneye-cli keygen makes one)",
				    p->path);
	return 0;
}

int agent_key_load(const char *path, struct agent_key **out, struct de_error *err)
{
	struct agent_key *k = NULL;
	struct answer a;
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int fd, rc;

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
	if (!(k = calloc(1, sizeof(*k)))) {
		rc = de_error_set(err, DE_ERR_CRYPTO, ENOMEM, "out of memory");
	} else if ((rc = in_child(parse_pem, &(struct pem){path, buf, len}, &a, err)) == 0) {
		memcpy(k->priv, a.priv, 32);
		memcpy(k->pub, a.pub, 32);
		*out = k;
		k = NULL;
	}
	explicit_bzero(&a, sizeof(a));
	explicit_bzero(buf, len);
	free(buf);
	agent_key_free(k);
	return rc;
}

void agent_key_public(const struct agent_key *k, uint8_t pub[32])
{
	memcpy(pub, k->pub, 32);
}

struct to_sign {
	const struct agent_key *k;
	const void *msg;
	size_t len;
};

/* In the child: the Ed25519 signature. */
static int sign_msg(const void *arg, struct answer *a)
{
	const struct to_sign *t = arg;
	size_t siglen = 64;
	EVP_PKEY *pkey;
	EVP_MD_CTX *ctx;
	int rc;

	if ((rc = crypto_load(&a->err)) < 0)
		return rc;
	pkey = crypto.EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, t->k->priv, 32);
	ctx = crypto.EVP_MD_CTX_new();
	if (!pkey || !ctx || crypto.EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey) != 1 ||
	    crypto.EVP_DigestSign(ctx, a->sig, &siglen, t->msg, t->len) != 1 || siglen != 64)
		return de_error_set(&a->err, DE_ERR_CRYPTO, EIO, "Ed25519 signing failed");
	return 0;
}

int agent_key_sign(const struct agent_key *k, const void *msg, size_t len, uint8_t sig[64],
		   struct de_error *err)
{
	struct answer a;
	int rc = in_child(sign_msg, &(struct to_sign){k, msg, len}, &a, err);

	if (rc == 0)
		memcpy(sig, a.sig, 64);
	explicit_bzero(&a, sizeof(a));
	return rc;
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
	explicit_bzero(k, sizeof(*k));
	free(k);
}
