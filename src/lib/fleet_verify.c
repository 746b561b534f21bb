/*
 * fleet_verify.c — off-host anchoring (fleet.h): a host's audit ledger
 * checked against the signed checkpoints it published to the fleet stream.
 *
 * A root attacker on the host can rewrite the whole ledger and re-sign new
 * checkpoints with the host's key, so the ledger agrees with itself; what
 * they cannot reach is the copy of every checkpoint already in the stream.
 * Each published checkpoint states (size, root): the ledger must hold at
 * least `size` entries and its Merkle root over the first `size` must be
 * that root.  A shorter ledger is truncated; another root is a rewritten
 * history.
 */
#include "daemoneye/fleet.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Record the first contradiction only. */
static void contradict(struct de_fleet_verify_report *r, enum de_audit_problem p, uint64_t size,
		       const char *detail)
{
	if (r->problem != DE_AUDIT_INTACT)
		return;
	r->problem = p;
	r->bad_size = size;
	snprintf(r->detail, sizeof(r->detail), "%s", detail);
}

int de_fleet_verify_ledger(struct de_audit *a, const char *const *notes, const size_t *lens,
			   size_t n, const struct de_ckpt_key *pub,
			   struct de_fleet_verify_report *out, struct de_error *err)
{
	struct de_fleet_verify_report r = {0};
	struct de_signed_checkpoint *sc = malloc(sizeof(*sc));
	struct de_audit_verify_opts vo = {.pubkey = pub};
	uint64_t best = 0;
	size_t best_i = n;
	int rc = 0;

	if (!sc)
		return de_error_set(err, DE_ERR_VALIDATION, ENOMEM, "out of memory");
	/* the largest well-formed checkpoint goes to the ledger's own check,
	   which proves consistency from it to the ledger's end */
	for (size_t i = 0; i < n; i++) {
		struct de_error e = {0};
		if (de_checkpoint_parse(notes[i], lens[i], sc, &e) == 0 && sc->cp.size >= best) {
			best = sc->cp.size;
			best_i = i;
		}
	}
	if (best_i < n) {
		vo.checkpoint = notes[best_i];
		vo.checkpoint_len = lens[best_i];
	}
	if ((rc = de_audit_verify(a, &vo, &r.ledger, err)) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct de_error e = {0};
		uint8_t root[DE_MERKLE_HASH_LEN];
		char why[200];
		r.checkpoints++;
		if (de_checkpoint_parse(notes[i], lens[i], sc, &e) < 0 ||
		    (pub && de_checkpoint_verify(sc, pub, NULL, &e) < 0)) {
			r.malformed++;
			continue;
		}
		if (sc->cp.size > r.ledger.entries) {
			snprintf(why, sizeof(why),
				 "a published checkpoint attests %" PRIu64
				 " entries; the ledger has %" PRIu64,
				 sc->cp.size, r.ledger.entries);
			contradict(&r, DE_AUDIT_TRUNCATED, sc->cp.size, why);
			continue;
		}
		if (sc->cp.size == 0)
			continue; /* the empty tree: nothing to compare */
		if ((rc = de_audit_root(a, sc->cp.size, root, err)) < 0)
			goto out;
		if (memcmp(root, sc->cp.root, sizeof(root)) != 0) {
			snprintf(why, sizeof(why),
				 "the ledger's root over its first %" PRIu64
				 " entries is not the one published: history rewritten",
				 sc->cp.size);
			contradict(&r, DE_AUDIT_REWRITTEN, sc->cp.size, why);
			continue;
		}
		r.matched++;
	}
	/* the ledger's own verification found the published checkpoint contradicted */
	if (r.problem == DE_AUDIT_INTACT && r.ledger.problem != DE_AUDIT_INTACT) {
		r.problem = r.ledger.problem;
		r.bad_size = r.ledger.bad_seq;
		snprintf(r.detail, sizeof(r.detail), "%s", r.ledger.detail);
	}
	*out = r;
out:
	free(sc);
	return rc;
}
