/*
 * fuzz_fleet_bundle.c — a rule bundle from the bus or a file (fleet.h):
 * the strict parser and the signature check an agent or `rules import
 * --bundle` runs before anything else.  Each input is fed twice: as a
 * message, as it is; and as the text of the one file of a bundle signed by
 * a key made once per run, which must then open to the same text (else
 * abort).  Nothing may crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/fleet.h"
#include "fuzz_keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct de_ckpt_key *priv, *pub;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct de_fleet_bundle b = {.version = 1 + size, .issued_ms = 1700000000000}, got = {0};
	struct de_error err = {0};
	char *msg = NULL;
	size_t len = 0;

	if (!priv)
		fuzz_make_keys(&priv, &pub);
	if (de_fleet_bundle_open((const char *)data, size, pub, &got, &err) == 0)
		de_fleet_bundle_clear(&got);
	if (de_fleet_bundle_add(&b, "f.yaml", (const char *)data, size) == 0 &&
	    de_fleet_bundle_sign(&b, priv, &msg, &len, &err) == 0) {
		if (de_fleet_bundle_open(msg, len, pub, &got, &err) != 0 || got.nfiles != 1 ||
		    got.version != b.version || got.files[0].len != size ||
		    memcmp(got.files[0].text, data, size) != 0)
			abort(); /* what we sign must open as signed */
		de_fleet_bundle_clear(&got);
	}
	free(msg);
	de_fleet_bundle_clear(&b);
	return 0;
}
