/*
 * test_procmond_client.c — the worker's end of procmond
 * (src/agent/procmond_client.c) against a fake procmond over a real
 * socketpair: the event queue holds at most its bound in bytes however
 * large the records that come, what does not fit is counted and said once
 * in the log, and once the queue drains it takes events again and gives
 * its memory back; past the decoded window events wait as frames and come
 * out in order.  The fake procmond is a forked child that speaks the
 * real frames (de_ipc_send) and waits for a byte from us before each part,
 * so nothing here depends on timing.
 */
#include <errno.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemoneye/log.h"
#include "procmond_client.h"

#define BIG_ARGS 8
#define BIG_ARG	 (8 * 1024) /* bytes of each argument: ~64 KiB a record */
#define FLOOD	 64	    /* 4 MiB of records against a 1 MiB bound */
#define AFTER	 4

/* An exec event of pid with a large command line. */
static void big_exec(struct de_ipc_msg *m, uint32_t pid)
{
	struct de_process_record *r = &m->event.record;

	memset(m, 0, sizeof(*m));
	m->kind = DE_IPC_EVENT;
	m->event.kind = DE_PROCESS_EXEC;
	m->event.pid = pid;
	m->event.time_ms = 1700000000000;
	m->event.has_record = true;
	assert_int_equal(de_uuid_v4(&r->id), 0);
	r->pid = pid;
	r->name = strdup("big");
	r->executable_path = strdup("/usr/bin/big");
	r->command_line = calloc(BIG_ARGS, sizeof(char *));
	assert_non_null(r->command_line);
	for (int i = 0; i < BIG_ARGS; i++) {
		r->command_line[i] = malloc(BIG_ARG);
		assert_non_null(r->command_line[i]);
		memset(r->command_line[i], 'a' + i, BIG_ARG - 1);
		r->command_line[i][BIG_ARG - 1] = '\0';
	}
	r->command_line_len = BIG_ARGS;
}

/* SMALL events: exits, with an exec (a record) every tenth */
#define SMALL 3000

/* The fake procmond of the backlog test: HELLO, SMALL events, then our leave. */
static int fake_small(int fd)
{
	struct de_ipc_msg m = {.kind = DE_IPC_HELLO, .version = DE_IPC_VERSION, .events = true};
	struct de_error e = {0};
	char go;
	int rc = de_ipc_send(fd, &m, &e);

	for (uint32_t i = 0; i < SMALL && rc == 0; i++) {
		if (i % 10 == 0) {
			big_exec(&m, 1 + i);
			free(m.event.record.command_line[1]);
			m.event.record.command_line[1] = strdup("short");
			m.event.record.command_line_len = 2; /* the rest freed below */
			for (int k = 2; k < BIG_ARGS; k++)
				free(m.event.record.command_line[k]);
			free(m.event.record.command_line[0]);
			m.event.record.command_line[0] = strdup("/bin/true");
		} else {
			m = (struct de_ipc_msg){.kind = DE_IPC_EVENT};
			m.event.kind = DE_PROCESS_EXIT;
			m.event.pid = 1 + i;
			m.event.time_ms = 1700000000000;
		}
		rc = de_ipc_send(fd, &m, &e);
		de_ipc_msg_clear(&m);
	}
	if (read(fd, &go, 1) != 1)
		return 1;
	return rc ? 1 : 0;
}

/* The fake procmond: HELLO, then after each byte from the agent a part. */
static int fake_procmond(int fd)
{
	struct de_ipc_msg m = {.kind = DE_IPC_HELLO, .version = DE_IPC_VERSION, .events = true};
	struct de_error e = {0};
	char go;
	int rc = de_ipc_send(fd, &m, &e);

	/* part 1: the flood; part 2: a few more; then wait for our leave */
	for (int part = 0; part < 2 && rc == 0; part++) {
		if (read(fd, &go, 1) != 1)
			return 1;
		for (int i = 0; i < (part ? AFTER : FLOOD) && rc == 0; i++) {
			big_exec(&m, (uint32_t)(1000 + part * 100 + i));
			rc = de_ipc_send(fd, &m, &e);
			de_ipc_msg_clear(&m);
		}
	}
	if (read(fd, &go, 1) != 1)
		return 1;
	return rc ? 1 : 0;
}

/* Receive until the channel has seen n events (each wait blocks for one batch). */
static void wait_seen(struct procmond_chan *ch, uint64_t n)
{
	struct de_error e = {0};

	while (ch->events_seen < n) {
		int rc = agent_procmond_wait(ch, 10000, &e);
		if (rc < 0)
			fail_msg("agent_procmond_wait: %s", e.message);
	}
}

/* Times the log holds text. */
static int count_in(FILE *log, const char *text)
{
	char line[1024];
	int n = 0;

	fflush(log);
	rewind(log);
	while (fgets(line, sizeof(line), log))
		n += strstr(line, text) != NULL;
	fseek(log, 0, SEEK_END);
	return n;
}

static void test_queue_bound_in_bytes(void **state)
{
	struct procmond_chan ch = {.fd = -1, .timeout_ms = 10000, .queue_max = 1u << 20};
	struct de_error e = {0};
	FILE *log = tmpfile();
	int sv[2], st;
	pid_t pid;

	(void)state;
	assert_non_null(log);
	de_log_init("test", DE_LOG_INFO, DE_LOG_TEXT, log);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		_exit(fake_procmond(sv[1]));
	}
	close(sv[1]);
	assert_int_equal(agent_procmond_attach(&ch, sv[0], pid, 1, 0, &e), 0);
	size_t before = mallinfo2().uordblks;

	/* the flood: far more than the bound */
	assert_int_equal(write(ch.fd, "g", 1), 1);
	wait_seen(&ch, FLOOD);
	assert_true(ch.nqueue > 0);
	assert_true(ch.events_dropped > 0);
	assert_int_equal(agent_events_count(&ch) + ch.events_dropped, FLOOD); /* none unaccounted */
	assert_true(agent_events_bytes(&ch) <= ch.queue_max);
	/* the bound holds for the heap as the allocator sees it too (glibc's
	   count; the sanitizer's and valgrind's allocators leave it still) */
	size_t grown = mallinfo2().uordblks - before;
	assert_true(grown <= ch.queue_max + (512u << 10)); /* and the reader's buffer */
	/* each queued record was charged at least its command line */
	assert_true(ch.queue_heap >= ch.nqueue * (size_t)BIG_ARGS * BIG_ARG);
	assert_int_equal(count_in(log, "queue is full"), 1);
	assert_int_equal(count_in(log, "drained"), 0);
	assert_true(ch.dropping);

	/* drained: the episode is said to be over, the memory comes back */
	uint64_t dropped = ch.events_dropped;
	while (agent_events_count(&ch))
		agent_events_shift(&ch, ch.nqueue);
	assert_int_equal(ch.nqueue, 0);
	assert_int_equal(ch.queue_heap, 0);
	assert_false(ch.dropping);
	assert_true(agent_events_bytes(&ch) <= 256 * sizeof(struct de_process_event));
	assert_int_equal(count_in(log, "drained"), 1);

	/* and the queue takes events again, none dropped */
	assert_int_equal(write(ch.fd, "g", 1), 1);
	wait_seen(&ch, FLOOD + AFTER);
	assert_int_equal(ch.nqueue, AFTER);
	assert_int_equal(ch.events_dropped, dropped);
	assert_int_equal(ch.queue[0].pid, 1100);
	assert_string_equal(ch.queue[AFTER - 1].record.name, "big");
	assert_int_equal(count_in(log, "queue is full"), 1);

	assert_int_equal(write(ch.fd, "g", 1), 1);
	agent_procmond_close(&ch);
	agent_events_free(&ch);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	de_log_init("test", DE_LOG_INFO, DE_LOG_TEXT, NULL);
	fclose(log);
}

/* Past AGENT_EVENTS_READY decoded events the rest wait as frames, within
   the bound, and come out decoded as the queue empties, in their order,
   none lost. */
static void test_backlog_in_order(void **state)
{
	struct procmond_chan ch = {.fd = -1, .timeout_ms = 10000, .queue_max = 1u << 20};
	struct de_error e = {0};
	uint32_t next = 1;
	int sv[2], st;
	pid_t pid;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		_exit(fake_small(sv[1]));
	}
	close(sv[1]);
	assert_int_equal(agent_procmond_attach(&ch, sv[0], pid, 1, 0, &e), 0);
	wait_seen(&ch, SMALL);
	assert_int_equal(ch.events_dropped, 0);
	assert_int_equal(ch.nqueue, AGENT_EVENTS_READY);
	assert_int_equal(agent_events_count(&ch), SMALL);
	assert_true(ch.nbacklog > 0);
	assert_true(agent_events_bytes(&ch) <= ch.queue_max);
	/* taken a few at a time, as the exec path does: every one, in order,
	   decoded as it was sent */
	while (agent_events_count(&ch)) {
		size_t n = ch.nqueue < 7 ? ch.nqueue : 7;
		assert_true(n > 0);
		for (size_t i = 0; i < n; i++, next++) {
			assert_int_equal(ch.queue[i].pid, next);
			assert_int_equal(ch.queue[i].kind,
					 next % 10 == 1 ? DE_PROCESS_EXEC : DE_PROCESS_EXIT);
			if (next % 10 == 1)
				assert_string_equal(ch.queue[i].record.command_line[0],
						    "/bin/true");
		}
		agent_events_shift(&ch, n);
		assert_true(agent_events_bytes(&ch) <= ch.queue_max);
	}
	assert_int_equal(next, SMALL + 1);
	assert_int_equal(ch.nbacklog, 0);
	assert_int_equal(ch.backlog.cap, 0);

	assert_int_equal(write(ch.fd, "g", 1), 1);
	agent_procmond_close(&ch);
	agent_events_free(&ch);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_queue_bound_in_bytes),
		cmocka_unit_test(test_backlog_in_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
