/*
 * test_ipc_alloc.c — procmond's frames under allocation failure
 * (tests/failalloc.h), protobuf-c's and jansson's allocations included:
 * de_ipc_encode and de_ipc_decode of every message kind (records with and
 * without collector facts), and a reader receiving frames from a pipe.  A
 * failed decode must say "out of memory" (never "malformed", which would
 * blame procmond) and leave its outputs untouched; nothing leaks; a run that
 * recovers gives the same message.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemoneye/ipc.h"
#include "failalloc.h"
#include "testrecord.h"

enum { HELLO, SCAN_DONE, PROC_JSON, PROC_FACTS, EVENT_EXEC, EVENT_BIG, NMSG };

static const char *const msg_names[NMSG] = {
	"HELLO",	   "SCAN_DONE",	   "PROCESS (JSON platform_data)",
	"PROCESS (facts)", "EVENT (exec)", "EVENT (exec, 40 KiB of argv)"};

static struct de_ipc_msg msgs[NMSG];

static void make_msgs(void)
{
	memset(msgs, 0, sizeof(msgs));
	msgs[HELLO].kind = DE_IPC_HELLO;
	msgs[HELLO].version = DE_IPC_VERSION;
	msgs[HELLO].pid = 77;
	msgs[HELLO].capabilities = strdup("cap_sys_ptrace,cap_dac_read_search");
	msgs[HELLO].events = true;
	assert_non_null(msgs[HELLO].capabilities);
	msgs[SCAN_DONE].kind = DE_IPC_SCAN_DONE;
	msgs[SCAN_DONE].scan_id = 5;
	msgs[SCAN_DONE].stats.seen = 10;
	msgs[SCAN_DONE].events_lost = 1;
	msgs[PROC_JSON].kind = DE_IPC_PROCESS;
	msgs[PROC_JSON].has_record = true;
	assert_int_equal(testrecord_make(&msgs[PROC_JSON].record, false), 0);
	msgs[PROC_FACTS].kind = DE_IPC_PROCESS;
	msgs[PROC_FACTS].has_record = true;
	assert_int_equal(testrecord_make(&msgs[PROC_FACTS].record, true), 0);
	msgs[EVENT_EXEC].kind = DE_IPC_EVENT;
	msgs[EVENT_EXEC].event.kind = DE_PROCESS_EXEC;
	msgs[EVENT_EXEC].event.pid = 4242;
	msgs[EVENT_EXEC].event.time_ms = 1764060360123;
	msgs[EVENT_EXEC].event.has_record = true;
	assert_int_equal(testrecord_make(&msgs[EVENT_EXEC].event.record, true), 0);
	msgs[EVENT_EXEC].event.record.pid = 4242;
	/* more than the decoder's arena holds on the stack, and more than one
	   of its blocks: protobuf-c's allocations come from malloc'd blocks */
	msgs[EVENT_BIG] = msgs[EVENT_EXEC];
	assert_int_equal(de_process_record_copy(&msgs[EVENT_EXEC].event.record,
						&msgs[EVENT_BIG].event.record),
			 0);
	char **argv = calloc(8, sizeof(char *));
	assert_non_null(argv);
	for (int i = 0; i < 8; i++) {
		assert_non_null(argv[i] = malloc(5000));
		memset(argv[i], 'a' + i, 4999);
		argv[i][4999] = '\0';
	}
	for (size_t i = 0; i < msgs[EVENT_BIG].event.record.command_line_len; i++)
		free(msgs[EVENT_BIG].event.record.command_line[i]);
	free(msgs[EVENT_BIG].event.record.command_line);
	msgs[EVENT_BIG].event.record.command_line = argv;
	msgs[EVENT_BIG].event.record.command_line_len = 8;
}

static void assert_msg_equal(const struct de_ipc_msg *a, const struct de_ipc_msg *b)
{
	assert_int_equal(a->kind, b->kind);
	assert_int_equal(a->pid, b->pid);
	assert_int_equal(a->scan_id, b->scan_id);
	assert_int_equal(a->has_record, b->has_record);
	if (a->capabilities || b->capabilities)
		assert_string_equal(a->capabilities, b->capabilities);
	if (a->has_record)
		assert_true(de_process_record_equal(&a->record, &b->record));
	assert_int_equal(a->event.kind, b->event.kind);
	assert_int_equal(a->event.pid, b->event.pid);
	assert_int_equal(a->event.time_ms, b->event.time_ms);
	assert_int_equal(a->event.has_record, b->event.has_record);
	if (a->event.has_record)
		assert_true(de_process_record_equal(&a->event.record, &b->event.record));
}

/* ---- encode ----------------------------------------------------------------- */

static uint8_t sentinel_byte;
#define SENTINEL_BUF (&sentinel_byte)

struct enc_ctx {
	const struct de_ipc_msg *m;
	uint8_t *ref, *out;
	size_t ref_len, len;
};

static int enc_run(void *p, struct de_error *err)
{
	struct enc_ctx *x = p;

	x->out = SENTINEL_BUF;
	x->len = 12345;
	return de_ipc_encode(x->m, &x->out, &x->len, err);
}

static void enc_check(void *p, int rc, const struct de_error *err)
{
	struct enc_ctx *x = p;

	(void)err;
	if (rc < 0) {
		assert_ptr_equal(x->out, SENTINEL_BUF);
		assert_int_equal(x->len, 12345);
		return;
	}
	assert_int_equal(x->len, x->ref_len);
	assert_memory_equal(x->out, x->ref, x->len);
	free(x->out);
}

static void test_encode(void **state)
{
	(void)state;
	char name[80];

	make_msgs();
	for (int i = 0; i < NMSG; i++) {
		struct enc_ctx x = {.m = &msgs[i]};
		assert_int_equal(de_ipc_encode(x.m, &x.ref, &x.ref_len, NULL), 0);
		snprintf(name, sizeof(name), "de_ipc_encode %s", msg_names[i]);
		struct fa_case c = {name, &x, NULL, enc_run, enc_check, true, 0};
		fa_run(&c);
		free(x.ref);
		de_ipc_msg_clear(&msgs[i]);
	}
}

/* ---- decode ----------------------------------------------------------------- */

struct dec_ctx {
	const struct de_ipc_msg *want;
	uint8_t *frame;
	size_t len, used;
	struct de_ipc_msg out;
};

static int dec_run(void *p, struct de_error *err)
{
	struct dec_ctx *x = p;

	memset(&x->out, 0xa5, sizeof(x->out));
	x->used = 12345;
	return de_ipc_decode(x->frame, x->len, &x->used, &x->out, err);
}

static void dec_check(void *p, int rc, const struct de_error *err)
{
	struct dec_ctx *x = p;
	struct de_ipc_msg untouched;

	(void)err;
	if (rc < 0) {
		memset(&untouched, 0xa5, sizeof(untouched));
		assert_memory_equal(&x->out, &untouched, sizeof(untouched));
		assert_int_equal(x->used, 12345);
		return;
	}
	assert_int_equal(x->used, x->len);
	assert_msg_equal(&x->out, x->want);
	de_ipc_msg_clear(&x->out);
}

static void test_decode(void **state)
{
	(void)state;
	char name[80];

	make_msgs();
	for (int i = 0; i < NMSG; i++) {
		struct dec_ctx x = {.want = &msgs[i]};
		if (i == SCAN_DONE) {
			/* numbers only: protobuf-c's allocations come from the
			   decoder's stack, so it makes none to fail */
			de_ipc_msg_clear(&msgs[i]);
			continue;
		}
		assert_int_equal(de_ipc_encode(x.want, &x.frame, &x.len, NULL), 0);
		snprintf(name, sizeof(name), "de_ipc_decode %s", msg_names[i]);
		struct fa_case c = {name, &x, NULL, dec_run, dec_check, true, 0};
		struct fa_stats st = fa_run(&c);
		assert_true(fa_some_errors(st));
		free(x.frame);
		de_ipc_msg_clear(&msgs[i]);
	}
}

/* ---- a reader on a pipe ----------------------------------------------------------- */

/* Two frames (a HELLO and a PROCESS) written into a new pipe before each run. */
struct recv_ctx {
	uint8_t *frames;
	size_t len;
	int fd[2];
	struct de_ipc_reader *r;
	struct de_ipc_msg got[2];
};

static void recv_setup(void *p)
{
	struct recv_ctx *x = p;

	assert_int_equal(pipe2(x->fd, O_CLOEXEC), 0);
	assert_int_equal(write(x->fd[1], x->frames, x->len), (ssize_t)x->len);
	assert_int_equal(close(x->fd[1]), 0);
	x->r = NULL;
	memset(x->got, 0, sizeof(x->got));
}

static int recv_run(void *p, struct de_error *err)
{
	struct recv_ctx *x = p;
	int rc;

	if ((rc = de_ipc_reader_new(x->fd[0], &x->r, err)) < 0)
		return rc;
	for (int i = 0; i < 2; i++)
		if ((rc = de_ipc_recv(x->r, &x->got[i], err)) < 0)
			return rc;
	return 0;
}

static void recv_check(void *p, int rc, const struct de_error *err)
{
	struct recv_ctx *x = p;

	(void)err;
	if (rc == 0) {
		assert_msg_equal(&x->got[0], &msgs[HELLO]);
		assert_msg_equal(&x->got[1], &msgs[PROC_FACTS]);
	}
	for (int i = 0; i < 2; i++)
		de_ipc_msg_clear(&x->got[i]);
	de_ipc_reader_free(x->r);
	assert_int_equal(close(x->fd[0]), 0);
}

static void test_recv(void **state)
{
	(void)state;
	struct recv_ctx x = {0};
	uint8_t *a, *b;
	size_t la, lb;

	make_msgs();
	assert_int_equal(de_ipc_encode(&msgs[HELLO], &a, &la, NULL), 0);
	assert_int_equal(de_ipc_encode(&msgs[PROC_FACTS], &b, &lb, NULL), 0);
	x.len = la + lb;
	assert_non_null(x.frames = malloc(x.len));
	memcpy(x.frames, a, la);
	memcpy(x.frames + la, b, lb);
	free(a);
	free(b);
	struct fa_case c = {"de_ipc_reader_new + 2 x de_ipc_recv",
			    &x,
			    recv_setup,
			    recv_run,
			    recv_check,
			    true,
			    0};
	fa_run(&c);
	free(x.frames);
	for (int i = 0; i < NMSG; i++)
		de_ipc_msg_clear(&msgs[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode),
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_recv),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
