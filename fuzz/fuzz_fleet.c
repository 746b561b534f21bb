/*
 * fuzz_fleet.c — what the fleet reads from the network (fleet.h): the
 * subject of a message read back from the stream (split into prefix, host
 * and kind), and a published checkpoint note (its message id, which parses
 * it).  The input is "SUBJECT\nBODY".  A subject that parses must be the
 * subject we would build from its parts (else abort); nothing may crash or
 * leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/fleet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nl = memchr(data, '\n', size);
	size_t sl = nl ? (size_t)(nl - (const char *)data) : size;
	char *subject = malloc(sl + 1);
	char host[DE_FLEET_TOKEN_MAX + 1], again[DE_FLEET_SUBJECT_MAX];
	char id[DE_FLEET_MSGID_MAX];
	struct de_error err = {0};
	enum de_fleet_kind k;

	if (!subject)
		return 0;
	memcpy(subject, data, sl);
	subject[sl] = '\0';
	if (de_fleet_subject_parse(subject, "daemoneye", host, &k) == 0 &&
	    (de_fleet_subject("daemoneye", host, k, again, sizeof(again)) != 0 ||
	     strcmp(again, subject) != 0))
		abort(); /* what parses must be what we build */
	if (de_fleet_kind_parse(subject, &k) == 0 && strcmp(de_fleet_kind_name(k), subject) != 0)
		abort();
	if (nl)
		de_fleet_checkpoint_msg_id("host", nl + 1, size - sl - 1, id, &err);
	free(subject);
	return 0;
}
