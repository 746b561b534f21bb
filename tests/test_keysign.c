/*
 * test_keysign.c — the privileged parent's checkpoint signing key
 * (src/agent/keysign.c): keys made by the openssl tool, not by us; a key
 * file looser than 0600, a symlink, or not Ed25519 is refused; signatures
 * verify against the public key openssl derives; the parent signs only a
 * well-formed note body and never one that goes back on an earlier one
 * (smaller tree, other root at the same size).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#define DE_TEST_NAME "keysign"
#include "testutil.h"

#include "keysign.h"

static char keypath[PATH_MAX], pubpath[PATH_MAX];

static int setup(void **state)
{
	char cmd[3 * PATH_MAX];

	(void)state;
	if (tmpdir_make() < 0)
		return -1;
	snprintf(keypath, sizeof(keypath), "%s/audit.key", tmpdir);
	snprintf(pubpath, sizeof(pubpath), "%s/audit.pub", tmpdir);
	snprintf(cmd, sizeof(cmd),
		 "openssl genpkey -algorithm ed25519 -out '%s' && openssl pkey -in '%s' -pubout "
		 "-out '%s'",
		 keypath, keypath, pubpath);
	if (system(cmd) != 0)
		return -1;
	return chmod(keypath, 0600);
}

static int teardown(void **state)
{
	(void)state;
	return tmpdir_remove();
}

/* Verify sig over msg with the public key file openssl wrote. */
static bool verifies(const char *msg, const uint8_t sig[64])
{
	FILE *f = fopen(pubpath, "r");
	EVP_PKEY *pub = f ? PEM_read_PUBKEY(f, NULL, NULL, NULL) : NULL;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = pub && ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pub) == 1 &&
		  EVP_DigestVerify(ctx, sig, 64, (const uint8_t *)msg, strlen(msg)) == 1;

	if (f)
		fclose(f);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pub);
	return ok;
}

static void test_load_refuses(void **state)
{
	(void)state;
	struct agent_key *k = (struct agent_key *)0x1;
	struct de_error e = {0};
	char path[PATH_MAX + 32], cmd[3 * PATH_MAX];

	assert_int_equal(chmod(keypath, 0640), 0);
	assert_int_equal(agent_key_load(keypath, &k, &e), -EPERM);
	assert_non_null(strstr(e.message, "0600"));
	assert_int_equal(chmod(keypath, 0604), 0);
	assert_int_equal(agent_key_load(keypath, &k, &e), -EPERM);
	assert_int_equal(chmod(keypath, 0600), 0);
	/* a symlink to a good key is not the key */
	snprintf(path, sizeof(path), "%s/link.key", tmpdir);
	assert_int_equal(symlink(keypath, path), 0);
	assert_true(agent_key_load(path, &k, &e) < 0);
	/* another algorithm */
	snprintf(path, sizeof(path), "%s/ec.key", tmpdir);
	snprintf(cmd, sizeof(cmd),
		 "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out '%s' && "
		 "chmod 600 '%s'",
		 path, path);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(agent_key_load(path, &k, &e), -EINVAL);
	assert_non_null(strstr(e.message, "Ed25519"));
	/* the public half is not a private key */
	assert_int_equal(chmod(pubpath, 0600), 0);
	assert_int_equal(agent_key_load(pubpath, &k, &e), -EINVAL);
	assert_int_equal(chmod(pubpath, 0644), 0);
	snprintf(path, sizeof(path), "%s/missing.key", tmpdir);
	assert_int_equal(agent_key_load(path, &k, &e), -ENOENT);
	assert_ptr_equal(k, (struct agent_key *)0x1); /* untouched */
	agent_key_free(NULL);
}

static void test_sign_notes(void **state)
{
	(void)state;
	struct agent_key *k = NULL;
	struct de_error e = {0};
	uint8_t sig[64], pub[32];
	const char *root_a = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		   *root_b = "HxscGxoZGBcWFRQTEhEQDw4NDAsKCQgHBgUEAwIBAAA=";
	char n10[256], n10b[256], n9[256], n11[256];

	assert_int_equal(agent_key_load(keypath, &k, &e), 0);
	agent_key_public(k, pub);
	assert_int_equal(agent_key_sign(k, "hello", 5, sig, &e), 0);
	assert_true(verifies("hello", sig));
	sig[0] ^= 1;
	assert_false(verifies("hello", sig));

	snprintf(n10, sizeof(n10), "h/daemoneye/audit\n10\n%s\n", root_a);
	snprintf(n10b, sizeof(n10b), "h/daemoneye/audit\n10\n%s\n", root_b);
	snprintf(n9, sizeof(n9), "h/daemoneye/audit\n9\n%s\n", root_b);
	snprintf(n11, sizeof(n11), "h/daemoneye/audit\n11\n%s\n", root_b);
	/* not a note body: refused, nothing signed */
	assert_int_equal(agent_key_sign_note(k, "rm -rf /\n", 9, sig, &e), -EBADMSG);
	assert_int_equal(agent_key_sign_note(k, n10, strlen(n10), sig, &e), 0);
	assert_true(verifies(n10, sig));
	/* the same checkpoint again is fine; another root at its size, or a smaller tree, is a fork
	 */
	assert_int_equal(agent_key_sign_note(k, n10, strlen(n10), sig, &e), 0);
	assert_int_equal(agent_key_sign_note(k, n10b, strlen(n10b), sig, &e), -EPERM);
	assert_non_null(strstr(e.message, "another root"));
	assert_int_equal(agent_key_sign_note(k, n9, strlen(n9), sig, &e), -EPERM);
	assert_int_equal(agent_key_sign_note(k, n11, strlen(n11), sig, &e), 0);
	assert_true(verifies(n11, sig));
	agent_key_free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_refuses),
		cmocka_unit_test(test_sign_notes),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
