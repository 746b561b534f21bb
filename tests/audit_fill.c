/*
 * audit_fill.c — test helper (not installed): append entries to an audit
 * ledger the way the agent will, so that tests/integration_audit.sh has a
 * real ledger for the CLI to verify and the sqlite3 tool to tamper with.
 *
 *   audit_fill LEDGER COUNT [PRIVATE_KEY [EVERY]]
 *
 * COUNT entries in batches of 100 (flushed each), payload {"i":N}; with a
 * key, signed checkpoints every EVERY entries (default 10) and one at the
 * end.  Origin "test.host/daemoneye/audit".  Exit 0, or 1 with the error.
 */
#include <stdio.h>
#include <stdlib.h>

#include "daemoneye/audit.h"

int main(int argc, char **argv)
{
	struct de_audit_config c = {.origin = "test.host/daemoneye/audit"};
	struct de_audit *a = NULL;
	struct de_error err = {0};
	char payload[64];

	if (argc < 3 || argc > 5) {
		fprintf(stderr, "usage: audit_fill LEDGER COUNT [PRIVATE_KEY [EVERY]]\n");
		return 1;
	}
	c.path = argv[1];
	long count = atol(argv[2]);
	if (argc >= 4) {
		c.chain.enable_signatures = true;
		c.chain.private_key_path = argv[3];
		c.checkpoint_every_entries = argc == 5 ? (uint64_t)atol(argv[4]) : 10;
	}
	if (de_audit_open(&c, &a, &err) < 0)
		goto fail;
	for (long i = 1; i <= count; i++) {
		struct de_audit_entry e = {.actor = i % 5 ? "agent" : "cli:uid=0",
					   .action = i % 2 ? "scan" : "rule.enable",
					   .payload = payload};
		snprintf(payload, sizeof(payload), "{\"i\":%ld}", i);
		if (de_audit_append(a, &e, NULL, &err) < 0 ||
		    (i % 100 == 0 && de_audit_flush(a, &err) < 0))
			goto fail;
	}
	if (de_audit_flush(a, &err) < 0 ||
	    (c.chain.enable_signatures && de_audit_checkpoint(a, NULL, &err) < 0))
		goto fail;
	return de_audit_close(a, &err) < 0 ? 1 : 0;
fail:
	fprintf(stderr, "audit_fill: %s\n", err.message);
	de_audit_close(a, NULL);
	return 1;
}
