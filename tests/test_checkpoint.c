/*
 * test_checkpoint.c — signed checkpoints: strict base64, key generation
 * (modes, no overwrite), key loading refusals (loose modes, symlinks,
 * another owner as root, not a key), sign -> parse -> verify, another key,
 * a note altered after signing, and every malformation the parser names.
 * That openssl alone verifies our notes is tests/integration_audit.sh.
 */
#define DE_TEST_NAME "checkpoint"
#include <errno.h>
#include <openssl/evp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemoneye/base64.h"
#include "daemoneye/checkpoint.h"
#include "testutil.h"

static void test_base64(void **state)
{
	uint8_t out[16];
	char enc[32];
	size_t n;

	(void)state;
	assert_int_equal(de_base64_encode((const uint8_t *)"foob", 4, enc), 8);
	assert_string_equal(enc, "Zm9vYg==");
	assert_int_equal(de_base64_decode("Zm9vYg==", 8, out, sizeof(out), &n), 0);
	assert_int_equal(n, 4);
	assert_memory_equal(out, "foob", 4);
	assert_int_equal(de_base64_decode("", 0, out, sizeof(out), &n), 0);
	assert_int_equal(n, 0);
	/* not canonical, or not base64 */
	assert_int_equal(de_base64_decode("Zm9vYh==", 8, out, sizeof(out), &n), -EINVAL);
	assert_int_equal(de_base64_decode("Zm9vYg=", 7, out, sizeof(out), &n), -EINVAL);
	assert_int_equal(de_base64_decode("Zm9v Yg=", 8, out, sizeof(out), &n), -EINVAL);
	assert_int_equal(de_base64_decode("Zg==Zg==", 8, out, sizeof(out), &n), -EINVAL);
	assert_int_equal(de_base64_decode("=Zg=", 4, out, sizeof(out), &n), -EINVAL);
	assert_int_equal(de_base64_decode("Zm9vYmFy", 8, out, 5, &n), -E2BIG);
}

static char key_path[PATH_MAX], pub_path[PATH_MAX], dir2[PATH_MAX];

static int setup(void **state)
{
	struct de_error err = {0};

	if (tmpdir_setup(state) < 0)
		return -1;
	snprintf(key_path, sizeof(key_path), "%s/audit.key", tmpdir);
	snprintf(pub_path, sizeof(pub_path), "%s/audit.pub", tmpdir);
	snprintf(dir2, sizeof(dir2), "%s/other", tmpdir);
	if (mkdir(dir2, 0700) < 0 || de_checkpoint_keygen(tmpdir, &err) < 0 ||
	    de_checkpoint_keygen(dir2, &err) < 0) {
		fprintf(stderr, "setup: %s\n", err.message);
		return -1;
	}
	return 0;
}

static void test_keygen(void **state)
{
	struct de_error err = {0};
	struct stat st;

	(void)state;
	assert_int_equal(stat(key_path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(stat(pub_path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	/* never overwritten */
	assert_int_equal(de_checkpoint_keygen(tmpdir, &err), -EEXIST);
	assert_int_equal(err.category, DE_ERR_IO);
	/* PEM as promised: PKCS#8 private, SPKI public */
	char buf[512];
	FILE *f = fopen(key_path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "-----BEGIN PRIVATE KEY-----\n");
	f = fopen(pub_path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "-----BEGIN PUBLIC KEY-----\n");
}

static void test_key_refusals(void **state)
{
	struct de_ckpt_key *k = NULL;
	struct de_error err = {0};
	char link[PATH_MAX];

	(void)state;
	assert_int_equal(chmod(key_path, 0640), 0);
	assert_int_equal(de_checkpoint_key_load_private(key_path, &k, &err), -EPERM);
	assert_int_equal(err.category, DE_ERR_CRYPTO);
	assert_non_null(strstr(err.message, "looser than 0600"));
	assert_int_equal(chmod(key_path, 0604), 0);
	assert_int_equal(de_checkpoint_key_load_private(key_path, &k, &err), -EPERM);
	assert_int_equal(chmod(key_path, 0400), 0);
	assert_int_equal(de_checkpoint_key_load_private(key_path, &k, &err), 0);
	de_checkpoint_key_free(k);
	assert_int_equal(chmod(key_path, 0600), 0);
	snprintf(link, sizeof(link), "%s/link.key", tmpdir);
	assert_int_equal(symlink(key_path, link), 0);
	assert_int_not_equal(de_checkpoint_key_load_private(link, &k, &err), 0);
	assert_int_equal(err.category, DE_ERR_CRYPTO);
	/* a public key is no private key; a missing file is an IoError */
	assert_int_equal(chmod(pub_path, 0600), 0);
	assert_int_equal(de_checkpoint_key_load_private(pub_path, &k, &err), -EINVAL);
	assert_int_equal(err.category, DE_ERR_CRYPTO);
	assert_int_equal(chmod(pub_path, 0644), 0);
	assert_int_equal(de_checkpoint_key_load_public("/nonexistent/k.pub", &k, &err), -ENOENT);
	assert_int_equal(err.category, DE_ERR_IO);
	if (geteuid() == 0) {
		/* owned by someone else: refused even at 0600 */
		assert_int_equal(chown(key_path, 65534, 65534), 0);
		assert_int_equal(de_checkpoint_key_load_private(key_path, &k, &err), -EPERM);
		assert_non_null(strstr(err.message, "owned by uid 65534"));
		assert_int_equal(chown(key_path, 0, 0), 0);
	} else {
		printf("# not root: the foreign-owner refusal is not tested\n");
	}
}

static char *sign_note(const char *key, const char *origin, uint64_t size)
{
	struct de_checkpoint cp = {.size = size};
	struct de_checkpoint_signer s;
	struct de_ckpt_key *k = NULL;
	struct de_error err = {0};
	char *note = NULL;
	size_t len;

	snprintf(cp.origin, sizeof(cp.origin), "%s", origin);
	for (int i = 0; i < 32; i++)
		cp.root[i] = (uint8_t)(i * 7);
	assert_int_equal(de_checkpoint_key_load_private(key, &k, &err), 0);
	assert_int_equal(de_checkpoint_signer_from_key(k, origin, &s, &err), 0);
	assert_int_equal(de_checkpoint_sign(&cp, &s, &note, &len, &err), 0);
	assert_int_equal(strlen(note), len);
	de_checkpoint_key_free(k);
	return note;
}

static void test_sign_parse_verify(void **state)
{
	struct de_signed_checkpoint sc;
	struct de_ckpt_key *pub = NULL, *other = NULL;
	struct de_error err = {0};
	char other_pub[PATH_MAX], other_key[PATH_MAX];
	char *note = sign_note(key_path, "host.example/daemoneye/audit", 12345);

	(void)state;
	snprintf(other_pub, sizeof(other_pub), "%s/audit.pub", dir2);
	snprintf(other_key, sizeof(other_key), "%s/audit.key", dir2);
	assert_int_equal(strncmp(note, "host.example/daemoneye/audit\n12345\n", 35), 0);
	assert_non_null(strstr(note, "\n\n\xE2\x80\x94 host.example/daemoneye/audit "));
	assert_int_equal(de_checkpoint_parse(note, strlen(note), &sc, &err), 0);
	assert_string_equal(sc.cp.origin, "host.example/daemoneye/audit");
	assert_int_equal(sc.cp.size, 12345);
	assert_int_equal(sc.cp.root[1], 7);
	assert_int_equal(sc.nsigs, 1);
	assert_int_equal(sc.sigs[0].sig_len, DE_ED25519_SIG_LEN);
	assert_int_equal(de_checkpoint_key_load_public(pub_path, &pub, &err), 0);
	assert_int_equal(de_checkpoint_key_load_public(other_pub, &other, &err), 0);
	/* the key id is what signed-note says */
	uint8_t raw[32], d[32];
	unsigned dn;
	assert_int_equal(de_checkpoint_key_public_raw(pub, raw, &err), 0);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, "host.example/daemoneye/audit\n\x01", 30);
	EVP_DigestUpdate(ctx, raw, 32);
	EVP_DigestFinal_ex(ctx, d, &dn);
	EVP_MD_CTX_free(ctx);
	assert_int_equal(sc.sigs[0].key_id,
			 (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3]);
	assert_int_equal(de_checkpoint_verify(&sc, pub, NULL, &err), 0);
	/* the public half of the private key file will do as well */
	struct de_ckpt_key *half = NULL;
	assert_int_equal(de_checkpoint_key_load_public(key_path, &half, &err), 0);
	assert_int_equal(de_checkpoint_verify(&sc, half, NULL, &err), 0);
	de_checkpoint_key_free(half);
	/* another key: no signature by it */
	assert_int_equal(de_checkpoint_verify(&sc, other, NULL, &err), -EBADMSG);
	assert_int_equal(err.category, DE_ERR_CRYPTO);
	assert_non_null(strstr(err.message, "another key"));
	/* signed by the other key under our name: does not verify with ours */
	char *forged = sign_note(other_key, "host.example/daemoneye/audit", 12345);
	assert_int_equal(de_checkpoint_parse(forged, strlen(forged), &sc, &err), 0);
	assert_int_equal(de_checkpoint_verify(&sc, pub, NULL, &err), -EBADMSG);
	free(forged);
	/* altered after signing: same key id, the signature fails */
	char *altered = strdup(note);
	altered[29] = '9'; /* 12345 -> 92345 */
	assert_int_equal(de_checkpoint_parse(altered, strlen(altered), &sc, &err), 0);
	assert_int_equal(sc.cp.size, 92345);
	assert_int_equal(de_checkpoint_verify(&sc, pub, NULL, &err), -EBADMSG);
	assert_non_null(strstr(err.message, "altered after signing"));
	free(altered);
	/* a public key cannot sign */
	uint8_t sig[64];
	assert_int_equal(de_checkpoint_key_sign(pub, "x", 1, sig, &err), -EINVAL);
	de_checkpoint_key_free(pub);
	de_checkpoint_key_free(other);
	free(note);
}

static void test_parse_malformed(void **state)
{
	static const char root[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
	static const char sig[] = "\xE2\x80\x94 o AAAAAQE=\n";
	static const struct {
		const char *body; /* %s: root; the note is body + sig unless noted */
		const char *sig;
		const char *want;
	} cases[] = {
		{"o\n1\n%s\n\n", "", "no signature"},
		{"o\n1\n%s\n", "", "ends before its signatures"},
		{"o\n1\n%s", "", "newline"},
		{"\n1\n%s\n\n", NULL, "line 1: empty origin"},
		{" o\n1\n%s\n\n", NULL, "line 1: the origin"},
		{"o\n01\n%s\n\n", NULL, "line 2: the tree size"},
		{"o\n-1\n%s\n\n", NULL, "line 2"},
		{"o\n18446744073709551616\n%s\n\n", NULL, "line 2"},
		{"o\n1\nAAAA\n\n", NULL, "line 3: the root hash"},
		{"o\n1\n\n\n", NULL, "line 3"},
		{"o\n1\n%s\next\n\n", NULL, "extension lines"},
		{"o\n1\n%s\n\n", "- o AAAAAQE=\n", "not a signature line"},
		{"o\n1\n%s\n\n", "\xE2\x80\x94 o+x AAAAAQE=\n", "key name"},
		{"o\n1\n%s\n\n", "\xE2\x80\x94 o AAAA\n", "signature is not base64"},
		{"o\n1\n%s\n\n", "\xE2\x80\x94 o AAAAAQE\n", "signature is not base64"},
		{"o\n1\n%s\n\n", "\xE2\x80\x94 o AAAAAQE=\n\n", "not a signature line"},
		{"o\r\n1\n%s\n\n", NULL, "carriage return"},
	};
	struct de_signed_checkpoint sc;
	struct de_error err = {0};
	char text[1024];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *b = cases[i].body, *at = strstr(b, "%s");
		if (at)
			snprintf(text, sizeof(text), "%.*s%s%s%s", (int)(at - b), b, root, at + 2,
				 cases[i].sig ? cases[i].sig : sig);
		else
			snprintf(text, sizeof(text), "%s%s", b, cases[i].sig ? cases[i].sig : sig);
		if (de_checkpoint_parse(text, strlen(text), &sc, &err) != -EBADMSG)
			fail_msg("case %zu parsed", i);
		assert_int_equal(err.category, DE_ERR_VALIDATION);
		if (!strstr(err.message, cases[i].want))
			fail_msg("case %zu: '%s' does not say '%s'", i, err.message, cases[i].want);
	}
	/* well-formed: a minimal one parses; 16 signatures at most; the size cap */
	snprintf(text, sizeof(text), "o\n0\n%s\n\n%s", root, sig);
	assert_int_equal(de_checkpoint_parse(text, strlen(text), &sc, &err), 0);
	assert_int_equal(sc.cp.size, 0);
	assert_int_equal(sc.sigs[0].key_id, 1);
	size_t n = strlen(text);
	for (int i = 1; i < 17; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s", sig);
	assert_int_equal(de_checkpoint_parse(text, strlen(text), &sc, &err), -EBADMSG);
	assert_non_null(strstr(err.message, "more than 16"));
	char *big = malloc(DE_CHECKPOINT_TEXT_MAX + 2);
	memset(big, 'a', DE_CHECKPOINT_TEXT_MAX + 1);
	big[DE_CHECKPOINT_TEXT_MAX + 1] = '\0';
	assert_int_equal(de_checkpoint_parse(big, DE_CHECKPOINT_TEXT_MAX + 1, &sc, &err), -EFBIG);
	free(big);
	/* a body alone, as a signer serving the sign callback checks it */
	struct de_checkpoint bc = {.origin = "host/daemoneye/audit", .size = 77}, got;
	char b[DE_CHECKPOINT_BODY_MAX + 1];
	size_t bl;
	bc.root[5] = 5;
	assert_int_equal(de_checkpoint_body(&bc, b, sizeof(b), &bl, &err), 0);
	assert_int_equal(de_checkpoint_body_parse(b, bl, &got, &err), 0);
	assert_memory_equal(&got, &bc, sizeof(got));
	snprintf(text, sizeof(text), "%sx\n", b);
	assert_int_equal(de_checkpoint_body_parse(text, strlen(text), &got, &err), -EBADMSG);
	assert_non_null(strstr(err.message, "extension lines"));
	assert_int_equal(de_checkpoint_body_parse("o\n1\n", 5, &got, &err), -EBADMSG);
	assert_int_equal(de_checkpoint_body_parse("random bytes to sign", 20, &got, &err),
			 -EBADMSG);
	/* an origin we would never write is refused when signing */
	struct de_checkpoint cp = {.origin = "bad\norigin"};
	char body[DE_CHECKPOINT_BODY_MAX + 1];
	assert_int_equal(de_checkpoint_body(&cp, body, sizeof(body), &n, &err), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64),		cmocka_unit_test(test_keygen),
		cmocka_unit_test(test_key_refusals),	cmocka_unit_test(test_sign_parse_verify),
		cmocka_unit_test(test_parse_malformed),
	};
	return cmocka_run_group_tests(tests, setup, tmpdir_teardown);
}
