/*
 * fuzz_keys.h — for the fuzz targets that sign and open messages (fleet
 * queries, rule bundles): an Ed25519 key pair made once per run in a
 * temporary directory, loaded, the files removed; abort() when it cannot
 * be made.  Header-only (each target is its own program).
 */
#ifndef DE_FUZZ_KEYS_H
#define DE_FUZZ_KEYS_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "daemoneye/checkpoint.h"

static inline void fuzz_make_keys(struct de_ckpt_key **priv, struct de_ckpt_key **pub)
{
	char dir[] = "/tmp/de-fuzz-keys-XXXXXX", path[64];
	struct de_error err = {0};

	if (!mkdtemp(dir) || de_checkpoint_keygen(dir, &err) < 0)
		abort();
	snprintf(path, sizeof(path), "%s/audit.key", dir);
	if (de_checkpoint_key_load_private(path, priv, &err) < 0)
		abort();
	unlink(path);
	snprintf(path, sizeof(path), "%s/audit.pub", dir);
	if (de_checkpoint_key_load_public(path, pub, &err) < 0)
		abort();
	unlink(path);
	rmdir(dir);
}

#endif
