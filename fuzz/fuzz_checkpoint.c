/*
 * fuzz_checkpoint.c — arbitrary bytes as a checkpoint body alone (the
 * parser a privileged signer runs before signing: what parses must be what
 * we would write) and as a signed checkpoint note: the strict parser, then
 * (when it parses) signature verification against a fixed public key and a
 * round trip (the body we would write for the parsed checkpoint must be
 * the body that was parsed).  A broken round trip aborts; nothing may
 * crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The public key of the seed corpus's signed notes (fuzz/corpus/checkpoint/). */
static const uint8_t fixed_pub[DE_ED25519_PUB_LEN] = {
	0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe,
	0xd3, 0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6,
	0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct de_signed_checkpoint *sc = malloc(sizeof(*sc));
	struct de_ckpt_key *pub = NULL;
	struct de_error err = {0};
	char body[DE_CHECKPOINT_BODY_MAX + 1];
	size_t len;

	if (!sc)
		return 0;
	/* the body parser a privileged signer runs before signing */
	struct de_checkpoint cp;
	if (de_checkpoint_body_parse((const char *)data, size, &cp, &err) == 0 &&
	    (de_checkpoint_body(&cp, body, sizeof(body), &len, &err) != 0 || len != size ||
	     memcmp(body, data, size) != 0))
		abort();
	if (de_checkpoint_parse((const char *)data, size, sc, &err) == 0) {
		if (de_checkpoint_body(&sc->cp, body, sizeof(body), &len, &err) != 0 ||
		    len != sc->body_len || memcmp(body, sc->body, len) != 0)
			abort(); /* what parses must be what we write */
		if (de_checkpoint_key_from_raw(fixed_pub, &pub, &err) == 0) {
			de_checkpoint_verify(sc, pub, NULL, &err);
			de_checkpoint_verify(sc, pub, "another-name", &err);
		}
		de_checkpoint_key_free(pub);
	}
	free(sc);
	return 0;
}
