/*
 * bench_fleet.c URL [N] — the fleet's publishing budget (issue 16): alerts
 * per second published to JetStream with the stream's acknowledgement,
 * one at a time (de_fleet_publish: each waits for its ack) and pipelined
 * in batches of 256 (de_fleet_publish_many: what the nats sink's
 * deliver_batch does with what the alert manager's queue holds), the
 * pipelined N again (every one a duplicate the stream drops: what a
 * re-send costs), beside the anchor: N bare round trips to the same server
 * (PING/PONG, the floor any acknowledged one-at-a-time publish pays).
 * Prints figures, ratios and this process's CPU time per phase (the
 * machine is shared: wall time alone says little).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <nats/nats.h>

#include "daemoneye/clock.h"
#include "daemoneye/fleet.h"

/* An alert of a realistic size (about 900 bytes of JSON). */
static void payload(char *buf, size_t n)
{
	int w = snprintf(
		buf, n,
		"{\"id\":\"00000000-0000-4000-8000-000000000000\",\"alert_time\":1700000000000,"
		"\"rule_id\":\"bench-rule\",\"title\":\"benchmark alert\",\"severity\":\"high\","
		"\"affected_processes\":[4242],\"process_count\":1,\"alert_data\":{"
		"\"pid\":4242,\"name\":\"bash\",\"executable_path\":\"/usr/bin/bash\","
		"\"command_line\":\"");
	while (w > 0 && (size_t)w < n - 40)
		buf[w++] = 'x';
	snprintf(buf + w, n - (size_t)w, "\"},\"dedupe_key\":\"k\"}");
}

#define BATCH 256

/* This process's user+system CPU time, ms. */
static int64_t cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

/* Publish ids "<tag>-0".."<tag>-(n-1)" pipelined, BATCH at once: how many were duplicates, or -1.
 */
static long publish_pipelined(struct de_fleet *f, const char *tag, long n, const char *body)
{
	static char ids[BATCH][64];
	static struct de_fleet_pub p[BATCH];
	struct de_error err = {0};
	long dups = 0;

	for (long i = 0; i < n;) {
		size_t k = 0;
		for (; k < BATCH && i < n; k++, i++) {
			snprintf(ids[k], sizeof(ids[k]), "%s-%ld", tag, i);
			p[k] = (struct de_fleet_pub){
				.msg_id = ids[k], .data = body, .len = strlen(body)};
		}
		if (de_fleet_publish_many(f, DE_FLEET_ALERTS, p, k, 0, &err) != (int)k) {
			fprintf(stderr, "bench_fleet: %s\n", err.message);
			return -1;
		}
		for (size_t j = 0; j < k; j++)
			dups += p[j].duplicate;
	}
	return dups;
}

int main(int argc, char **argv)
{
	char *servers[1], stream[64], id[64], body[900];
	struct de_fleet_settings s = {0};
	struct de_fleet *f = NULL;
	struct de_error err = {0};
	natsConnection *nc = NULL;
	long n = argc > 2 ? atol(argv[2]) : 20000;
	int64_t t0, c0, t_pub, t_dup, t_rtt, t_pipe, c_pub, c_pipe, c_dup;
	long dups = 0, pdups;

	if (argc < 2 || n <= 0) {
		fprintf(stderr, "usage: bench_fleet URL [N]\n");
		return 2;
	}
	servers[0] = argv[1];
	snprintf(stream, sizeof(stream), "DEBENCH%ld", (long)getpid());
	s.servers = servers;
	s.nservers = 1;
	snprintf(s.host_id, sizeof(s.host_id), "bench");
	snprintf(s.subject_prefix, sizeof(s.subject_prefix), "debench%ld", (long)getpid());
	snprintf(s.stream, sizeof(s.stream), "%s", stream);
	s.create_stream = true;
	s.stream_replicas = 1;
	s.stream_max_age_days = 1;
	s.duplicate_window_s = 3600;
	s.publish_timeout_ms = 5000;
	s.connect_timeout_ms = 5000;
	s.publish_max_pending = 1024;
	payload(body, sizeof(body));
	if (de_fleet_connect(&s, true, &f, &err) < 0 ||
	    de_fleet_stream_ensure(f, true, NULL, &err) < 0) {
		fprintf(stderr, "bench_fleet: %s\n", err.message);
		return 1;
	}
	t0 = de_mono_ms();
	c0 = cpu_ms();
	for (long i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "bench-%ld", i);
		if (de_fleet_publish(f, DE_FLEET_ALERTS, id, body, strlen(body), 0, NULL, &err) <
		    0) {
			fprintf(stderr, "bench_fleet: %s\n", err.message);
			return 1;
		}
	}
	t_pub = de_mono_ms() - t0;
	c_pub = cpu_ms() - c0;
	t0 = de_mono_ms();
	c0 = cpu_ms();
	pdups = publish_pipelined(f, "pipe", n, body);
	t_pipe = de_mono_ms() - t0;
	c_pipe = cpu_ms() - c0;
	t0 = de_mono_ms();
	c0 = cpu_ms();
	dups = publish_pipelined(f, "pipe", n, body);
	t_dup = de_mono_ms() - t0;
	c_dup = cpu_ms() - c0;
	if (pdups != 0 || dups < 0) {
		fprintf(stderr, "bench_fleet: pipelined: %ld duplicates on first publish\n", pdups);
		return 1;
	}
	/* the anchor: bare round trips to the same server */
	if (natsConnection_ConnectTo(&nc, argv[1]) != NATS_OK) {
		fprintf(stderr, "bench_fleet: cannot connect for the anchor\n");
		return 1;
	}
	t0 = de_mono_ms();
	for (long i = 0; i < n; i++)
		if (natsConnection_FlushTimeout(nc, 5000) != NATS_OK) {
			fprintf(stderr, "bench_fleet: round trip failed\n");
			return 1;
		}
	t_rtt = de_mono_ms() - t0;
	natsConnection_Destroy(nc);
	de_fleet_close(f);
	if (t_pub < 1)
		t_pub = 1;
	if (t_dup < 1)
		t_dup = 1;
	if (t_pipe < 1)
		t_pipe = 1;
	if (t_rtt < 1)
		t_rtt = 1;
	printf("publish with ack, one at a time: %ld alerts (%zu bytes) in %" PRId64
	       " ms (cpu %" PRId64 " ms): %.0f/s\n",
	       n, strlen(body), t_pub, c_pub, (double)n * 1000.0 / (double)t_pub);
	printf("publish with ack, pipelined (batches of %d): %ld alerts in %" PRId64
	       " ms (cpu %" PRId64 " ms): %.0f/s (budget >= 20000/s); %.1fx one at a time\n",
	       BATCH, n, t_pipe, c_pipe, (double)n * 1000.0 / (double)t_pipe,
	       (double)t_pub / (double)t_pipe);
	printf("re-send of the same ids, pipelined: %ld of %ld stored once (duplicates) in %" PRId64
	       " ms (cpu %" PRId64 " ms): %.0f/s\n",
	       dups, n, t_dup, c_dup, (double)n * 1000.0 / (double)t_dup);
	printf("anchor, bare round trips: %ld in %" PRId64 " ms: %.0f/s; one-at-a-time/anchor "
	       "time ratio %.2f, pipelined/anchor %.2f\n",
	       n, t_rtt, (double)n * 1000.0 / (double)t_rtt, (double)t_pub / (double)t_rtt,
	       (double)t_pipe / (double)t_rtt);
	return dups == n ? 0 : 1;
}
