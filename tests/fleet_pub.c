/*
 * fleet_pub.c — test helper (not installed): pipelined publishing
 * (de_fleet_publish_many) against the real nats-server that
 * tests/integration_fleet.sh starts.
 *
 *   fleet_pub URL PREFIX STREAM HOST TAG N BATCH MAX_PENDING CREATE
 *
 * Publishes N alert-sized messages with ids TAG-0 .. TAG-(N-1) on
 * PREFIX.HOST.alerts, BATCH per call, at most MAX_PENDING awaiting their
 * acks; CREATE 1 makes the stream STREAM when it is missing, 0 does not.
 * Prints one line: "acked A duplicate D failed F" and, when F > 0, the
 * first failure's text on the next.  Exit 0 when every message was
 * accounted for (A + F == N), 1 otherwise or on a usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/fleet.h"

int main(int argc, char **argv)
{
	struct de_fleet_settings s = {0};
	struct de_fleet *f = NULL;
	struct de_error err = {0};
	struct de_fleet_pub *p;
	char *servers[1], (*ids)[64], body[512], first[256] = "";
	long n, batch, acked = 0, dups = 0, failed = 0;

	if (argc != 10 || (n = atol(argv[6])) <= 0 || (batch = atol(argv[7])) <= 0 ||
	    batch > 100000) {
		fprintf(stderr, "usage: fleet_pub URL PREFIX STREAM HOST TAG N BATCH MAX_PENDING "
				"CREATE\n");
		return 1;
	}
	servers[0] = argv[1];
	s.servers = servers;
	s.nservers = 1;
	snprintf(s.subject_prefix, sizeof(s.subject_prefix), "%s", argv[2]);
	snprintf(s.stream, sizeof(s.stream), "%s", argv[3]);
	snprintf(s.host_id, sizeof(s.host_id), "%s", argv[4]);
	s.create_stream = strcmp(argv[9], "1") == 0;
	s.stream_replicas = 1;
	s.duplicate_window_s = 3600;
	s.publish_timeout_ms = 5000;
	s.connect_timeout_ms = 5000;
	s.publish_max_pending = (uint64_t)atol(argv[8]);
	memset(body, 'x', sizeof(body) - 1); /* {"pad":"xxx...x"} */
	body[sizeof(body) - 1] = '\0';
	memcpy(body, "{\"pad\":\"", 8);
	memcpy(body + sizeof(body) - 3, "\"}", 2);
	if (!(p = calloc((size_t)batch, sizeof(*p))) || !(ids = calloc((size_t)batch, 64))) {
		fprintf(stderr, "fleet_pub: out of memory\n");
		return 1;
	}
	if (de_fleet_connect(&s, true, &f, &err) < 0) {
		fprintf(stderr, "fleet_pub: %s\n", err.message);
		return 1;
	}
	for (long i = 0; i < n;) {
		long k = 0;
		for (; k < batch && i < n; k++, i++) {
			snprintf(ids[k], 64, "%s-%ld", argv[5], i);
			p[k] = (struct de_fleet_pub){
				.msg_id = ids[k], .data = body, .len = strlen(body)};
		}
		if (de_fleet_publish_many(f, DE_FLEET_ALERTS, p, (size_t)k, 0, &err) < 0 && !*first)
			snprintf(first, sizeof(first), "%s", err.message);
		for (long j = 0; j < k; j++) {
			if (p[j].rc == 0) {
				acked++;
				dups += p[j].duplicate;
			} else {
				failed++;
				if (!*first)
					snprintf(first, sizeof(first), "%s", p[j].error);
			}
		}
	}
	de_fleet_close(f);
	free(p);
	free(ids);
	printf("acked %ld duplicate %ld failed %ld\n", acked, dups, failed);
	if (failed)
		printf("%s\n", first);
	return acked + failed == n ? 0 : 1;
}
