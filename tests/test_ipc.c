/*
 * test_ipc.c — frames: every message kind round-trips (a hostile record
 * exactly), and the decoder rejects every malformed kind: truncated,
 * oversized, bad CRC, not protobuf, unknown body, and invalid contents;
 * the reader over a real socketpair, a peer closing mid-frame included.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "daemoneye/clock.h"
#include "daemoneye/ipc.h"
#include "daemoneye_ipc.pb-c.h"

static void make_record(struct de_process_record *r)
{
	static const char *const argv[] = {"a\nb", "quote\"back\\slash", "\x01\x1b[31m",
					   "\xff\xfe bad", ""};
	memset(r, 0, sizeof(*r));
	assert_int_equal(de_uuid_v4(&r->id), 0);
	r->scan_id = 9;
	r->collection_time = 1700000000123;
	r->pid = 4242;
	r->has_ppid = true;
	r->ppid = 1;
	r->name = strdup("we)ird\nname");
	r->executable_path = strdup("/tmp/my prog (deleted)");
	r->command_line = calloc(5, sizeof(char *));
	for (int i = 0; i < 5; i++)
		r->command_line[i] = strdup(argv[i]);
	r->command_line_len = 5;
	r->has_start_time = true;
	r->start_time = 1699999999000;
	r->has_cpu_usage = true;
	r->cpu_usage = 12.5;
	r->has_memory_usage = true;
	r->memory_usage = 123456789;
	r->executable_hash =
		strdup("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	r->hash_algorithm = strdup("sha256");
	r->user_id = strdup("1000");
	r->accessible = true;
	r->file_exists = false;
	r->platform_data =
		json_pack("{s:s, s:b, s:i}", "state", "S", "exe_deleted", 1, "threads", 3);
}

/* The facts procmond sends, with hostile text in cgroup and hash_error. */
static void make_facts(struct de_process_record *r)
{
	struct de_linux_facts *f = &r->facts;

	json_decref(r->platform_data);
	r->platform_data = NULL;
	f->present = true;
	f->has_ids = true;
	f->euid = 1000;
	f->egid = 4294967295u;
	f->has_real_ids = true;
	f->uid = 0;
	f->gid = 0;
	f->cgroup = strdup("/user.slice/\xff\"q\\\x01\x7f");
	f->has_exe = true;
	f->exe_deleted = true;
	f->has_image = true;
	f->exe_inode = 1234567;
	f->exe_device = -5;
	f->exe_size = INT64_MAX;
	f->hash_error = strdup("cannot open: \xc3\xa9\n");
	f->state = 'S';
	f->threads = 3;
	f->pgrp = 4242;
	f->session = 1;
	f->tty_nr = 34817;
	f->nice = -20;
	f->kernel_thread = false;
	f->utime_ticks = 5;
	f->stime_ticks = 6;
	f->start_ticks = 1234567890123;
	f->cmdline_truncated = true;
	f->cmdline_masked = 2;
	/* every other group known, every other text fact set */
	f->has_ns = true;
	f->pid_ns = 4026531836;
	f->mnt_ns = 4026531840;
	f->net_ns = 4026531992;
	f->user_ns = 4026531837;
	f->env_truncated = f->path_truncated = true;
	for (int i = 0; i < DE_FACT_COUNT_MAX; i++) {
		char **t = (char **)(void *)((char *)f + de_linux_fact_info[i].offset);
		if ((de_linux_fact_info[i].type == DE_FACT_T_TEXT ||
		     de_linux_fact_info[i].type == DE_FACT_T_TEXT_RAW) &&
		    !*t)
			assert_true(asprintf(t, "%s \xfe value", de_linux_fact_info[i].name) > 0);
	}
}

static void roundtrip(const struct de_ipc_msg *m, struct de_ipc_msg *back)
{
	uint8_t *buf;
	size_t len, used = 0;
	struct de_error e = {0};

	assert_int_equal(de_ipc_encode(m, &buf, &len, &e), 0);
	/* every prefix is "need more", never an error */
	for (size_t i = 0; i < len; i++)
		assert_int_equal(de_ipc_decode(buf, i, &used, back, &e), -EAGAIN);
	assert_int_equal(de_ipc_decode(buf, len, &used, back, &e), 0);
	assert_int_equal(used, len);
	assert_int_equal(back->kind, m->kind);
	free(buf);
}

static void test_roundtrip_every_kind(void **state)
{
	(void)state;
	struct de_ipc_msg m = {0}, b = {0};

	m.kind = DE_IPC_HELLO;
	m.version = DE_IPC_VERSION;
	m.pid = 77;
	m.capabilities = strdup("sys_ptrace,dac_read_search");
	m.events = true;
	roundtrip(&m, &b);
	assert_int_equal(b.version, DE_IPC_VERSION);
	assert_int_equal(b.pid, 77);
	assert_string_equal(b.capabilities, m.capabilities);
	assert_true(b.events);
	de_ipc_msg_clear(&m);
	de_ipc_msg_clear(&b);

	m.kind = DE_IPC_SCAN_REQUEST;
	m.scan_id = 123456789012LL;
	roundtrip(&m, &b);
	assert_int_equal(b.scan_id, 123456789012LL);
	de_ipc_msg_clear(&b);

	m.kind = DE_IPC_SCAN_DONE;
	m.scan_id = 5;
	m.stats.seen = 10;
	m.stats.recorded = 9;
	m.stats.vanished = 1;
	m.stats.inaccessible = 2;
	m.stats.hashed_bytes = 1u << 30;
	m.events_lost = 3;
	m.stats.hashed_files = 4;
	m.hash_hits = 5;
	m.event_restarts = 6;
	roundtrip(&m, &b);
	assert_int_equal(b.stats.hashed_files, 4);
	assert_int_equal(b.hash_hits, 5);
	assert_int_equal(b.event_restarts, 6);
	assert_int_equal(b.stats.recorded, 9);
	assert_int_equal(b.stats.vanished, 1);
	assert_int_equal(b.stats.hashed_bytes, 1u << 30);
	assert_int_equal(b.events_lost, 3);
	de_ipc_msg_clear(&b);
	memset(&m, 0, sizeof(m));

	m.kind = DE_IPC_PROCESS;
	m.has_record = true;
	make_record(&m.record);
	roundtrip(&m, &b);
	assert_true(de_process_record_equal(&m.record, &b.record));
	de_ipc_msg_clear(&b);

	/* an exec event carries the process read at once (moved into it) */
	m.kind = DE_IPC_EVENT;
	m.event.kind = DE_PROCESS_EXEC;
	m.event.pid = 4242;
	m.event.time_ms = 1700000000999;
	m.event.has_record = true;
	m.event.record = m.record;
	memset(&m.record, 0, sizeof(m.record));
	m.has_record = false;
	roundtrip(&m, &b);
	assert_int_equal(b.event.kind, DE_PROCESS_EXEC);
	assert_int_equal(b.event.pid, 4242);
	assert_int_equal(b.event.time_ms, 1700000000999);
	assert_true(b.event.has_record);
	assert_false(b.has_record);
	assert_true(de_process_record_equal(&m.event.record, &b.event.record));
	de_ipc_msg_clear(&b);
	de_ipc_msg_clear(&m);

	m.kind = DE_IPC_EVENT;
	m.event.kind = DE_PROCESS_EXIT;
	m.event.pid = 4243;
	m.event.has_exit_code = true;
	m.event.exit_code = 256;
	roundtrip(&m, &b);
	assert_int_equal(b.event.kind, DE_PROCESS_EXIT);
	assert_int_equal(b.event.pid, 4243);
	assert_false(b.event.has_record);
	assert_true(b.event.has_exit_code);
	assert_int_equal(b.event.exit_code, 256);
	de_ipc_msg_clear(&b);

	/* an event of no known kind is refused, not sent as an exec */
	struct de_error e = {0};
	uint8_t *f;
	size_t flen;
	m.kind = DE_IPC_EVENT;
	m.event.kind = (enum de_process_event_kind)9;
	assert_int_equal(de_ipc_encode(&m, &f, &flen, &e), -EINVAL);
}

/* A frame around an arbitrary payload, with a right CRC. */
static uint8_t *frame(const uint8_t *payload, size_t n, size_t *len)
{
	uint8_t *b = malloc(8 + n + 1);
	uint32_t c = (uint32_t)crc32(crc32(0L, Z_NULL, 0), payload, (uInt)n);
	b[0] = (uint8_t)(n >> 24);
	b[1] = (uint8_t)(n >> 16);
	b[2] = (uint8_t)(n >> 8);
	b[3] = (uint8_t)n;
	b[4] = (uint8_t)(c >> 24);
	b[5] = (uint8_t)(c >> 16);
	b[6] = (uint8_t)(c >> 8);
	b[7] = (uint8_t)c;
	if (n)
		memcpy(b + 8, payload, n);
	*len = 8 + n;
	return b;
}

static void expect_reject(const uint8_t *b, size_t len, int want, const char *msg)
{
	struct de_ipc_msg m;
	struct de_error e = {0};
	size_t used = 0;
	assert_int_equal(de_ipc_decode(b, len, &used, &m, &e), want);
	assert_int_equal(e.category, DE_ERR_VALIDATION);
	assert_non_null(strstr(e.message, msg));
}

/* Records with facts travel as protobuf fields: equal after the trip, the
   same JSON text, and extra platform_data members beside them. */
static void test_roundtrip_facts(void **state)
{
	(void)state;
	struct de_ipc_msg m = {0}, b = {0};
	char t1[2048], t2[2048];

	m.kind = DE_IPC_PROCESS;
	m.has_record = true;
	make_record(&m.record);
	make_facts(&m.record);
	roundtrip(&m, &b);
	assert_true(b.record.facts.present);
	assert_null(b.record.platform_data);
	assert_true(de_process_record_equal(&m.record, &b.record));
	assert_string_equal(b.record.facts.cgroup, m.record.facts.cgroup);
	assert_true(de_linux_facts_json(&m.record, t1, sizeof(t1)) > 0);
	assert_true(de_linux_facts_json(&b.record, t2, sizeof(t2)) > 0);
	assert_string_equal(t1, t2);
	de_ipc_msg_clear(&b);

	/* the facts that may be absent, absent */
	struct de_linux_facts *f = &m.record.facts;
	free(f->cgroup);
	free(f->hash_error);
	f->cgroup = f->hash_error = NULL;
	f->has_ids = f->has_real_ids = f->has_exe = f->has_image = false;
	f->cmdline_truncated = false;
	f->cmdline_masked = 0;
	f->kernel_thread = true;
	f->state = 'I';
	roundtrip(&m, &b);
	assert_true(de_process_record_equal(&m.record, &b.record));
	assert_false(b.record.facts.has_ids);
	assert_false(b.record.facts.has_exe);
	assert_null(b.record.facts.cgroup);
	de_ipc_msg_clear(&b);

	/* extra members: platform_data_json beside the facts, in an event */
	m.kind = DE_IPC_EVENT;
	m.event.kind = DE_PROCESS_EXEC;
	m.event.pid = m.record.pid;
	m.event.has_record = true;
	m.event.record = m.record;
	memset(&m.record, 0, sizeof(m.record));
	m.has_record = false;
	m.event.record.platform_data = json_pack("{s:s,s:i}", "zone", "global", "rss", 12);
	roundtrip(&m, &b);
	assert_true(b.event.record.facts.present);
	assert_true(json_equal(b.event.record.platform_data, m.event.record.platform_data));
	assert_true(de_process_record_equal(&m.event.record, &b.event.record));
	de_ipc_msg_clear(&b);
	de_ipc_msg_clear(&m);
}

/* ---- hand-made protobuf: facts frames the encoder would never write ---- */

struct pb {
	uint8_t b[512];
	size_t n;
};

static void pb_varint(struct pb *p, uint64_t v)
{
	do {
		p->b[p->n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
}

static void pb_int(struct pb *p, unsigned field, uint64_t v)
{
	pb_varint(p, field << 3);
	pb_varint(p, v);
}

static void pb_bytes(struct pb *p, unsigned field, const void *d, size_t n)
{
	pb_varint(p, field << 3 | 2);
	pb_varint(p, n);
	memcpy(p->b + p->n, d, n);
	p->n += n;
}

/* A PROCESS frame whose Facts are the required ones (state as given, NULL:
   missing) plus the `extra` encoded fields. */
static uint8_t *facts_frame(const char *state, size_t state_len, const struct pb *extra,
			    size_t *len)
{
	struct pb facts = {.n = 0}, proc = {.n = 0}, fr = {.n = 0};
	uint8_t id[16] = {1};

	if (state)
		pb_bytes(&facts, 12, state, state_len);
	for (unsigned f = 13; f <= 21; f++)
		pb_int(&facts, f, f == 17 ? 3 /* sint64 -2 */ : 1);
	memcpy(facts.b + facts.n, extra->b, extra->n);
	facts.n += extra->n;
	pb_bytes(&proc, 1, id, sizeof(id));
	pb_int(&proc, 2, 1);
	pb_int(&proc, 3, 2);
	pb_int(&proc, 4, 3);
	pb_bytes(&proc, 6, "x", 1);
	pb_int(&proc, 15, 1);
	pb_int(&proc, 16, 0);
	pb_bytes(&proc, 18, facts.b, facts.n);
	pb_bytes(&fr, 3, proc.b, proc.n);
	return frame(fr.b, fr.n, len);
}

static void test_rejects_bad_facts(void **state)
{
	(void)state;
	struct de_ipc_msg m = {0};
	struct de_error e = {0};
	struct pb x = {.n = 0};
	uint8_t *b;
	size_t len, used;

	/* the helper's own frame is good */
	b = facts_frame("R", 1, &x, &len);
	assert_int_equal(de_ipc_decode(b, len, &used, &m, &e), 0);
	assert_true(m.record.facts.present);
	assert_int_equal(m.record.facts.state, 'R');
	assert_int_equal(m.record.facts.nice, -2);
	de_ipc_msg_clear(&m);
	free(b);

	static const struct {
		const char *state;
		size_t state_len;
		unsigned f1, f2;     /* varint fields to add (0: none) */
		int64_t v;	     /* their value */
		const char *text;    /* a bytes field 5 (cgroup) or 11 (hash_error) */
		unsigned text_field; /* 0: none */
		size_t text_len;
		const char *why;
	} cases[] = {
		{"R", 1, 1, 0, 0, NULL, 0, 0, "uid without its gid"},
		{"R", 1, 3, 0, 0, NULL, 0, 0, "uid without its gid"},
		{"R", 1, 6, 0, 0, NULL, 0, 0, "exe_deleted without exe_replaced"},
		{"R", 1, 8, 9, 0, NULL, 0, 0, "incomplete executable image"},
		{"R", 1, 0, 0, 0, "no such file", 11, 12, "without an executable"},
		{"R", 1, 0, 0, 0, "/a\0b", 5, 4, "NUL"},
		{"RS", 2, 0, 0, 0, NULL, 0, 0, "state is not one letter"},
		{"", 0, 0, 0, 0, NULL, 0, 0, "state is not one letter"},
		{"1", 1, 0, 0, 0, NULL, 0, 0, "state is not one letter"},
		{"\xc3", 1, 0, 0, 0, NULL, 0, 0, "state is not one letter"},
		{NULL, 0, 0, 0, 0, NULL, 0, 0, "not a valid Frame"},
		{"R", 1, 23, 0, 0, NULL, 0, 0, "cmdline_masked is not positive"},
		{"R", 1, 23, 0, -1, NULL, 0, 0, "cmdline_masked is not positive"},
		{"R", 1, 22, 0, 0, NULL, 0, 0, "cmdline_truncated sent as false"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		x.n = 0;
		if (cases[i].f1)
			pb_int(&x, cases[i].f1, (uint64_t)cases[i].v);
		if (cases[i].f2)
			pb_int(&x, cases[i].f2, (uint64_t)cases[i].v);
		if (cases[i].text_field)
			pb_bytes(&x, cases[i].text_field, cases[i].text, cases[i].text_len);
		b = facts_frame(cases[i].state, cases[i].state_len, &x, &len);
		expect_reject(b, len, -EBADMSG, cases[i].why);
		free(b);
	}
	/* a negative count, and extra JSON that repeats a fact */
	m.kind = DE_IPC_PROCESS;
	make_record(&m.record);
	make_facts(&m.record);
	m.record.facts.threads = -1;
	assert_int_equal(de_ipc_encode(&m, &b, &len, &e), 0);
	expect_reject(b, len, -EBADMSG, "negative count");
	free(b);
	m.record.facts.threads = 1;
	m.record.platform_data = json_pack("{s:i}", "euid", 0);
	assert_int_equal(de_ipc_encode(&m, &b, &len, &e), 0);
	expect_reject(b, len, -EBADMSG, "repeats a fact");
	free(b);
	de_ipc_msg_clear(&m);
}

static void test_rejects_malformed(void **state)
{
	(void)state;
	struct de_ipc_msg m = {.kind = DE_IPC_SCAN_REQUEST, .scan_id = 7};
	struct de_error e = {0};
	uint8_t *b;
	size_t len;

	/* oversized: judged from the header alone */
	uint8_t big[8] = {0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0};
	expect_reject(big, sizeof(big), -EMSGSIZE, "oversized");
	/* bad CRC */
	assert_int_equal(de_ipc_encode(&m, &b, &len, &e), 0);
	b[len - 1] ^= 1;
	expect_reject(b, len, -EBADMSG, "CRC32");
	free(b);
	/* not protobuf (right CRC) */
	static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
	b = frame(junk, sizeof(junk), &len);
	expect_reject(b, len, -EBADMSG, "not a valid Frame");
	free(b);
	/* a Frame with no known body: unknown kind (field 15) or empty */
	static const uint8_t unknown[] = {0x7a, 0x00};
	b = frame(unknown, sizeof(unknown), &len);
	expect_reject(b, len, -EBADMSG, "unknown IPC frame");
	free(b);
	b = frame(NULL, 0, &len);
	expect_reject(b, len, -EBADMSG, "unknown IPC frame");
	free(b);
	/* a ScanRequest missing its required scan_id */
	static const uint8_t missing[] = {0x12, 0x00};
	b = frame(missing, sizeof(missing), &len);
	expect_reject(b, len, -EBADMSG, "not a valid Frame");
	free(b);
}

static void test_rejects_bad_contents(void **state)
{
	(void)state;
	struct de_ipc_msg m = {0};
	struct de_error e = {0};
	uint8_t *b;
	size_t len;

	m.kind = DE_IPC_PROCESS;
	make_record(&m.record);
	free(m.record.executable_hash);
	m.record.executable_hash = strdup("not-a-hash");
	assert_int_equal(de_ipc_encode(&m, &b, &len, &e), 0);
	expect_reject(b, len, -EBADMSG, "executable_hash");
	free(b);
	free(m.record.executable_hash);
	m.record.executable_hash = NULL;
	assert_int_equal(de_ipc_encode(&m, &b, &len, &e), 0);
	expect_reject(b, len, -EBADMSG, "hash_algorithm without a hash");
	free(b);
	free(m.record.hash_algorithm);
	m.record.hash_algorithm = NULL;
	free(m.record.user_id);
	m.record.user_id = strdup("root");
	assert_int_equal(de_ipc_encode(&m, &b, &len, &e), 0);
	expect_reject(b, len, -EBADMSG, "user_id");
	free(b);
	de_ipc_msg_clear(&m);
}

static void test_reader_socketpair(void **state)
{
	(void)state;
	int sv[2];
	struct de_ipc_reader *r;
	struct de_ipc_msg m = {0}, b = {0};
	struct de_error e = {0};
	uint8_t *buf;
	size_t len;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(de_ipc_reader_new(sv[0], &r, &e), 0);
	m.kind = DE_IPC_PROCESS;
	make_record(&m.record);
	/* a big command line: 1 MiB, more than one socket buffer */
	char *huge = malloc(1u << 20);
	memset(huge, 'x', (1u << 20) - 1);
	huge[(1u << 20) - 1] = '\0';
	free(m.record.command_line[0]);
	m.record.command_line[0] = huge;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		int rc = de_ipc_send(sv[1], &m, &e);
		struct de_ipc_msg s = {.kind = DE_IPC_SCAN_DONE, .scan_id = 3};
		rc |= de_ipc_send(sv[1], &s, &e);
		/* then half a frame, and close */
		assert_int_equal(de_ipc_encode(&s, &buf, &len, &e), 0);
		rc |= (int)write(sv[1], buf, len / 2) < 0;
		_exit(rc ? 1 : 0);
	}
	close(sv[1]);
	assert_int_equal(de_ipc_recv(r, &b, &e), 0);
	assert_int_equal(b.kind, DE_IPC_PROCESS);
	assert_true(de_process_record_equal(&m.record, &b.record));
	de_ipc_msg_clear(&b);
	assert_int_equal(de_ipc_recv(r, &b, &e), 0);
	assert_int_equal(b.kind, DE_IPC_SCAN_DONE);
	assert_int_equal(b.scan_id, 3);
	assert_int_equal(de_ipc_recv(r, &b, &e), -EPROTO);
	assert_non_null(strstr(e.message, "truncated"));
	int st;
	waitpid(pid, &st, 0);
	assert_int_equal(st, 0);
	de_ipc_reader_free(r);
	close(sv[0]);
	de_ipc_msg_clear(&m);
}

/* The Facts message is the facts list: every fact a field of its name,
   number and type, required exactly when the list says it always comes,
   and no field the list does not have. */
static void test_facts_message_is_the_list(void **state)
{
	(void)state;
	const ProtobufCMessageDescriptor *d = &daemoneye__ipc__facts__descriptor;

	assert_int_equal(d->n_fields, DE_FACT_COUNT_MAX);
	for (int i = 0; i < DE_FACT_COUNT_MAX; i++) {
		const struct de_fact_info *in = &de_linux_fact_info[i];
		const ProtobufCFieldDescriptor *fd =
			protobuf_c_message_descriptor_get_field_by_name(d, in->name);
		ProtobufCType want;
		bool required = strcmp(in->group, "always") == 0;

		if (!fd)
			fail_msg("the Facts message has no field %s", in->name);
		assert_int_equal(fd->id, in->proto_field);
		switch (in->type) {
		case DE_FACT_T_U32:
			want = PROTOBUF_C_TYPE_UINT32;
			break;
		case DE_FACT_T_SI64:
			want = PROTOBUF_C_TYPE_SINT64;
			break;
		case DE_FACT_T_BOOL:
			want = PROTOBUF_C_TYPE_BOOL;
			break;
		case DE_FACT_T_FLAG:
			want = PROTOBUF_C_TYPE_BOOL;
			required = false;
			break;
		case DE_FACT_T_CHAR:
			want = PROTOBUF_C_TYPE_BYTES;
			break;
		case DE_FACT_T_TEXT:
		case DE_FACT_T_TEXT_RAW:
			want = PROTOBUF_C_TYPE_BYTES;
			required = false;
			break;
		case DE_FACT_T_COUNT:
			want = PROTOBUF_C_TYPE_INT64;
			required = false;
			break;
		default:
			want = PROTOBUF_C_TYPE_INT64;
		}
		if (fd->type != want)
			fail_msg("Facts.%s has protobuf type %d, the list says %d", in->name,
				 (int)fd->type, (int)want);
		if ((fd->label == PROTOBUF_C_LABEL_REQUIRED) != required)
			fail_msg("Facts.%s is %s, the list says %s", in->name,
				 fd->label == PROTOBUF_C_LABEL_REQUIRED ? "required" : "optional",
				 required ? "required" : "optional");
	}
}

/* Each fact alone changed survives the trip (a field the mapping forgot
   would come back as its old value or zero). */
static void test_each_fact_travels(void **state)
{
	(void)state;
	for (int i = 0; i < DE_FACT_COUNT_MAX; i++) {
		struct de_ipc_msg m = {0}, b = {0};
		char *p;

		m.kind = DE_IPC_PROCESS;
		m.has_record = true;
		make_record(&m.record);
		make_facts(&m.record);
		p = (char *)&m.record.facts + de_linux_fact_info[i].offset;
		switch (de_linux_fact_info[i].type) {
		case DE_FACT_T_U32:
			*(uint32_t *)(void *)p ^= 0x5a5a;
			break;
		case DE_FACT_T_BOOL:
			*(bool *)(void *)p = !*(bool *)(void *)p;
			break;
		case DE_FACT_T_FLAG:
			*(bool *)(void *)p = false;
			break;
		case DE_FACT_T_CHAR:
			*p = 'D';
			break;
		case DE_FACT_T_TEXT:
		case DE_FACT_T_TEXT_RAW:
			(*(char **)(void *)p)[0] = '#';
			break;
		default:
			*(int64_t *)(void *)p = *(int64_t *)(void *)p > 1 ? 1 : 77;
		}
		roundtrip(&m, &b);
		if (!de_linux_facts_equal(&m.record.facts, &b.record.facts))
			fail_msg("the fact %s changed on the way", de_linux_fact_info[i].name);
		de_ipc_msg_clear(&b);
		de_ipc_msg_clear(&m);
	}
}

/* A deadline ends the wait for a silent (stopped) peer, a half frame stays buffered. */
static void test_recv_until(void **state)
{
	(void)state;
	int sv[2];
	struct de_ipc_reader *r;
	struct de_ipc_msg s = {.kind = DE_IPC_SCAN_DONE, .scan_id = 9}, b = {0};
	struct de_error e = {0};
	uint8_t *buf;
	size_t len;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(de_ipc_reader_new(sv[0], &r, &e), 0);
	assert_int_equal(de_ipc_recv_until(r, &b, de_mono_ms() + 20, &e), -ETIMEDOUT);
	assert_int_equal(e.code, ETIMEDOUT);
	assert_int_equal(de_ipc_encode(&s, &buf, &len, &e), 0);
	assert_int_equal(write(sv[1], buf, 3), 3);
	assert_int_equal(de_ipc_recv_until(r, &b, de_mono_ms() + 20, &e), -ETIMEDOUT);
	assert_int_equal(write(sv[1], buf + 3, len - 3), (ssize_t)(len - 3));
	assert_int_equal(write(sv[1], buf, len), (ssize_t)len); /* and a second one */
	assert_int_equal(de_ipc_recv_until(r, &b, de_mono_ms() + 60000, &e), 0);
	assert_int_equal(b.scan_id, 9);
	/* a frame already buffered is returned even past the deadline */
	assert_int_equal(de_ipc_recv_until(r, &b, 0, &e), 0);
	assert_int_equal(b.kind, DE_IPC_SCAN_DONE);
	free(buf);
	de_ipc_reader_free(r);
	close(sv[0]);
	close(sv[1]);
}

/* A batch read at once: one fill takes every frame that is there, each is
   handed out without another read, a frame cut short waits for the rest,
   and an empty socket ends the batch (drained) without blocking. */
static void test_reader_fill(void **state)
{
	(void)state;
	int sv[2];
	struct de_ipc_reader *r;
	struct de_ipc_msg s = {.kind = DE_IPC_SCAN_DONE}, b = {0};
	struct de_error e = {0};
	uint8_t *buf;
	size_t len;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(de_ipc_reader_new(sv[0], &r, &e), 0);
	assert_int_equal(de_ipc_reader_fill(r, &e), 0); /* nothing there: no wait */
	assert_true(de_ipc_reader_drained(r));
	for (int i = 1; i <= 3; i++) {
		s.scan_id = i;
		assert_int_equal(de_ipc_encode(&s, &buf, &len, &e), 0);
		assert_int_equal(write(sv[1], buf, i < 3 ? len : 5), (ssize_t)(i < 3 ? len : 5));
		if (i < 3)
			free(buf);
	}
	assert_int_equal(de_ipc_reader_fill(r, &e), (int)(2 * len + 5));
	for (int i = 1; i <= 2; i++) {
		assert_true(de_ipc_reader_pending(r));
		assert_false(de_ipc_reader_drained(r));
		/* a deadline already past: the frame is buffered, nothing is read */
		assert_int_equal(de_ipc_recv_until(r, &b, 0, &e), 0);
		assert_int_equal(b.scan_id, i);
	}
	assert_false(de_ipc_reader_pending(r));
	assert_true(de_ipc_reader_drained(r)); /* the socket was empty */
	assert_int_equal(write(sv[1], buf + 5, len - 5), (ssize_t)(len - 5));
	assert_int_equal(de_ipc_reader_fill(r, &e), (int)(len - 5));
	assert_true(de_ipc_reader_pending(r));
	assert_int_equal(de_ipc_recv_until(r, &b, 0, &e), 0);
	assert_int_equal(b.scan_id, 3);
	/* the peer closing inside a frame */
	assert_int_equal(write(sv[1], buf, 5), 5);
	close(sv[1]);
	assert_int_equal(de_ipc_reader_fill(r, &e), 5);
	assert_int_equal(de_ipc_reader_fill(r, &e), -EPROTO);
	assert_non_null(strstr(e.message, "truncated"));
	free(buf);
	de_ipc_reader_free(r);
	close(sv[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_every_kind),
		cmocka_unit_test(test_roundtrip_facts),
		cmocka_unit_test(test_facts_message_is_the_list),
		cmocka_unit_test(test_each_fact_travels),
		cmocka_unit_test(test_rejects_bad_facts),
		cmocka_unit_test(test_rejects_malformed),
		cmocka_unit_test(test_rejects_bad_contents),
		cmocka_unit_test(test_reader_socketpair),
		cmocka_unit_test(test_recv_until),
		cmocka_unit_test(test_reader_fill),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
