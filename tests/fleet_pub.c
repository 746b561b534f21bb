/*
 * fleet_pub.c — test helper (not installed): pipelined publishing
 * (de_fleet_publish_many) against the real nats-server that
 * tests/integration_fleet.sh starts.
 *
 *   fleet_pub URL[,URL...] PREFIX STREAM HOST TAG N BATCH MAX_PENDING CREATE [RETRY]
 *
 * Publishes N alert-sized messages with ids TAG-0 .. TAG-(N-1) on
 * PREFIX.HOST.alerts, BATCH per call, at most MAX_PENDING awaiting their
 * acks; CREATE 1 makes the stream STREAM when it is missing, 0 does not.
 * With RETRY (a number of rounds) what was not acknowledged is published
 * again with the same ids, as the outbox does, until every one was or the
 * rounds are spent (replicas 3 then: the cluster test).
 * With DE_FLEET_PUB_PAUSE_AT=K in the environment it prints "PAUSE" once K
 * messages were published and reads a line from stdin before going on (the
 * cluster test kills a node there, mid-burst).
 * Prints one line: "acked A duplicate D failed F" and, when F > 0, the
 * first failure's text on the next.  Exit 0 when every message was
 * accounted for (A + F == N), 1 otherwise or on a usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemoneye/fleet.h"

int main(int argc, char **argv)
{
	struct de_fleet_settings s = {0};
	struct de_fleet *f = NULL;
	struct de_error err = {0};
	struct de_fleet_pub *p;
	char *servers[8], (*ids)[64], body[512], first[256] = "", *save = NULL;
	long n, batch, acked = 0, dups = 0, failed = 0, rounds, pause_at;
	const char *pause_env = getenv("DE_FLEET_PUB_PAUSE_AT");
	unsigned char *done;

	if ((argc != 10 && argc != 11) || (n = atol(argv[6])) <= 0 ||
	    (batch = atol(argv[7])) <= 0 || batch > 100000) {
		fprintf(stderr, "usage: fleet_pub URL PREFIX STREAM HOST TAG N BATCH MAX_PENDING "
				"CREATE\n");
		return 1;
	}
	for (char *u = strtok_r(argv[1], ",", &save); u && s.nservers < 8;
	     u = strtok_r(NULL, ",", &save))
		servers[s.nservers++] = u;
	s.servers = servers;
	rounds = argc == 11 ? atol(argv[10]) : 0;
	pause_at = pause_env ? atol(pause_env) : -1;
	snprintf(s.subject_prefix, sizeof(s.subject_prefix), "%s", argv[2]);
	snprintf(s.stream, sizeof(s.stream), "%s", argv[3]);
	snprintf(s.host_id, sizeof(s.host_id), "%s", argv[4]);
	s.create_stream = strcmp(argv[9], "1") == 0;
	s.stream_replicas = rounds ? 3 : 1;
	s.duplicate_window_s = 3600;
	s.publish_timeout_ms = 5000;
	s.connect_timeout_ms = 5000;
	s.publish_max_pending = (uint64_t)atol(argv[8]);
	memset(body, 'x', sizeof(body) - 1); /* {"pad":"xxx...x"} */
	body[sizeof(body) - 1] = '\0';
	memcpy(body, "{\"pad\":\"", 8);
	memcpy(body + sizeof(body) - 3, "\"}", 2);
	if (!(p = calloc((size_t)batch, sizeof(*p))) || !(ids = calloc((size_t)batch, 64)) ||
	    !(done = calloc((size_t)n, 1))) {
		fprintf(stderr, "fleet_pub: out of memory\n");
		return 1;
	}
	if (de_fleet_connect(&s, true, &f, &err) < 0) {
		fprintf(stderr, "fleet_pub: %s\n", err.message);
		return 1;
	}
	for (long round = 0; round <= rounds; round++) {
		failed = 0;
		*first = '\0';
		for (long i = 0; i < n;) {
			long k = 0, idx[1024];
			for (; k < batch && k < 1024 && i < n; i++) {
				if (done[i])
					continue;
				snprintf(ids[k], 64, "%s-%ld", argv[5], i);
				p[k] = (struct de_fleet_pub){
					.msg_id = ids[k], .data = body, .len = strlen(body)};
				idx[k++] = i;
			}
			if (!k)
				break;
			if (pause_at >= 0 && i >= pause_at) {
				char line[16];
				pause_at = -1;
				printf("PAUSE\n");
				(void)fflush(stdout);
				if (!fgets(line, sizeof(line), stdin))
					return 1;
			}
			if (de_fleet_publish_many(f, DE_FLEET_ALERTS, p, (size_t)k, 0, &err) < 0 &&
			    !*first)
				snprintf(first, sizeof(first), "%s", err.message);
			for (long j = 0; j < k; j++) {
				if (p[j].rc == 0) {
					acked++;
					dups += p[j].duplicate;
					done[idx[j]] = 1;
				} else {
					failed++;
					if (!*first)
						snprintf(first, sizeof(first), "%s", p[j].error);
				}
			}
		}
		if (!failed)
			break;
		if (round < rounds && !de_fleet_connected(f)) /* reconnecting: a moment */
			(void)nanosleep(&(struct timespec){.tv_nsec = 100000000}, NULL);
	}
	de_fleet_close(f);
	free(p);
	free(ids);
	free(done);
	printf("acked %ld duplicate %ld failed %ld\n", acked, dups, failed);
	if (failed)
		printf("%s\n", first);
	return acked + failed == n ? 0 : 1;
}
