/*
 * test_ctl.c — the parent <-> worker control channel: every message type
 * round-trips over a real SOCK_SEQPACKET socketpair (with descriptors that
 * still work on the other side), the dispatch table, what the decoder
 * refuses (each check of ctl.h's list, byte by byte), what the receiver
 * does with a truncated packet or surplus descriptors (refused, and every
 * descriptor that came is closed), and the checkpoint note body check.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemoneye/ctl.h"

static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

static void set_text(struct de_ctl_msg *m, const char *s)
{
	m->text_len = strlen(s);
	memcpy(m->text, s, m->text_len + 1);
}

/* Send m on sv[0], receive it on sv[1] as travelling in dir. */
static void round_trip(const struct de_ctl_msg *m, enum de_ctl_dir dir, struct de_ctl_msg *out)
{
	int sv[2];
	struct de_error e = {0};

	pair(sv);
	assert_int_equal(de_ctl_send(sv[0], m, true, &e), 0);
	assert_int_equal(de_ctl_recv(sv[1], dir, out, &e), 0);
	assert_int_equal(out->type, m->type);
	assert_int_equal(de_ctl_recv(sv[1], dir, out + 1, &e), -EAGAIN);
	close(sv[0]);
	assert_int_equal(de_ctl_recv(sv[1], dir, out + 1, &e), -EPIPE);
	close(sv[1]);
}

static void test_round_trips(void **state)
{
	(void)state;
	struct de_ctl_msg m, r[2];
	int p[2];
	char buf[8];

	de_ctl_msg_init(&m, DE_CTL_READY);
	m.pid = 42;
	round_trip(&m, DE_CTL_TO_PARENT, r);
	assert_int_equal(r[0].pid, 42);

	de_ctl_msg_init(&m, DE_CTL_HEARTBEAT);
	m.scan_id = -7;
	set_text(&m, "scan 12: 10000 processes");
	round_trip(&m, DE_CTL_TO_PARENT, r);
	assert_int_equal(r[0].scan_id, -7);
	assert_string_equal(r[0].text, "scan 12: 10000 processes");

	de_ctl_msg_init(&m, DE_CTL_RESTART_PROCMOND);
	m.generation = 0xdeadbeef;
	m.reason = DE_CTL_REASON_SCAN_TIMEOUT;
	round_trip(&m, DE_CTL_TO_PARENT, r);
	assert_int_equal(r[0].generation, 0xdeadbeef);
	assert_int_equal(r[0].reason, DE_CTL_REASON_SCAN_TIMEOUT);

	de_ctl_msg_init(&m, DE_CTL_RELOAD_DONE);
	m.generation = 3;
	set_text(&m, "config.yaml:3:1: bad");
	round_trip(&m, DE_CTL_TO_PARENT, r);
	assert_false(r[0].ok);
	assert_int_equal(r[0].text_len, strlen("config.yaml:3:1: bad"));

	de_ctl_msg_init(&m, DE_CTL_SIGN_REQUEST);
	m.id = 9;
	set_text(&m, "host/daemoneye/audit\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n");
	round_trip(&m, DE_CTL_TO_PARENT, r);
	assert_int_equal(r[0].id, 9);
	assert_string_equal(r[0].text, m.text);

	de_ctl_msg_init(&m, DE_CTL_KEY_REPLY);
	m.has_key = true;
	memset(m.key, 0xab, sizeof(m.key));
	round_trip(&m, DE_CTL_TO_WORKER, r);
	assert_true(r[0].has_key);
	assert_memory_equal(r[0].key, m.key, sizeof(m.key));

	de_ctl_msg_init(&m, DE_CTL_SIGN_REPLY);
	m.id = 9;
	m.status = -EPERM;
	round_trip(&m, DE_CTL_TO_WORKER, r);
	assert_int_equal(r[0].status, -EPERM);

	de_ctl_msg_init(&m, DE_CTL_SUPERVISOR);
	m.sup.pid = 1;
	m.sup.started_ms = 1700000000000;
	m.sup.privileged = true;
	m.sup.procmond.pid = 77;
	m.sup.procmond.restarts[DE_CTL_REASON_CRASH] = 3;
	m.sup.procmond.last_exit = 9;
	m.sup.procmond.restart_in_ms = -1;
	m.sup.worker.restart_in_ms = 1500;
	m.sup.worker.last_exit = -1;
	m.sup.worker.rss_bytes = 40u << 20;
	round_trip(&m, DE_CTL_TO_WORKER, r);
	assert_memory_equal(&r[0].sup, &m.sup, sizeof(m.sup));

	/* descriptors: the received one is another handle on the same pipe */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	de_ctl_msg_init(&m, DE_CTL_PROCMOND);
	m.generation = 2;
	m.pid = 1234;
	m.time_ms = 5;
	m.fds[0] = p[1];
	m.nfds = 1;
	round_trip(&m, DE_CTL_TO_WORKER, r);
	assert_int_equal(r[0].nfds, 1);
	assert_true(r[0].fds[0] >= 0 && r[0].fds[0] != p[1]);
	assert_true(fcntl(r[0].fds[0], F_GETFD) & FD_CLOEXEC);
	assert_int_equal(write(r[0].fds[0], "hi", 2), 2);
	assert_int_equal(read(p[0], buf, sizeof(buf)), 2);
	de_ctl_msg_close_fds(&r[0]);
	assert_int_equal(r[0].fds[0], -1);
	close(p[1]);
	assert_int_equal(read(p[0], buf, sizeof(buf)), 0); /* every write end closed */
	close(p[0]);

	de_ctl_msg_init(&m, DE_CTL_CONFIG);
	m.generation = 1;
	m.nfiles = m.nfds = 2;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	m.fds[0] = p[0];
	m.fds[1] = p[1];
	snprintf(m.paths[0], sizeof(m.paths[0]), "/etc/daemoneye/config.yaml");
	snprintf(m.paths[1], sizeof(m.paths[1]), "/root/.config/daemoneye/config.yaml");
	round_trip(&m, DE_CTL_TO_WORKER, r);
	assert_int_equal(r[0].nfiles, 2);
	assert_int_equal(r[0].nfds, 2);
	assert_string_equal(r[0].paths[1], "/root/.config/daemoneye/config.yaml");
	de_ctl_msg_close_fds(&r[0]);
	close(p[0]);
	close(p[1]);
	/* a CONFIG that says why there is none */
	de_ctl_msg_init(&m, DE_CTL_CONFIG);
	set_text(&m, "cannot open /etc/x.yaml: Permission denied");
	round_trip(&m, DE_CTL_TO_WORKER, r);
	assert_int_equal(r[0].nfiles, 0);
	assert_string_equal(r[0].text, m.text);
}

static void test_dispatch_table(void **state)
{
	(void)state;
	assert_true(de_ctl_allowed(DE_CTL_READY, DE_CTL_STARTING));
	assert_false(de_ctl_allowed(DE_CTL_READY, DE_CTL_RUNNING));
	assert_true(de_ctl_allowed(DE_CTL_RELOAD_DONE, DE_CTL_RELOADING));
	assert_false(de_ctl_allowed(DE_CTL_RELOAD_DONE, DE_CTL_RUNNING));
	assert_false(de_ctl_allowed(DE_CTL_RESTART_PROCMOND, DE_CTL_STARTING));
	assert_false(de_ctl_allowed(DE_CTL_RESTART_PROCMOND, DE_CTL_STOPPING));
	assert_true(de_ctl_allowed(DE_CTL_SIGN_REQUEST, DE_CTL_STOPPING));
	assert_false(de_ctl_allowed(DE_CTL_SIGN_REQUEST, DE_CTL_STARTING));
	assert_true(de_ctl_allowed(DE_CTL_HEARTBEAT, DE_CTL_STOPPING));
	assert_true(de_ctl_allowed(DE_CTL_CONFIG, DE_CTL_STARTING));
	assert_false(de_ctl_allowed(DE_CTL_PROCMOND, DE_CTL_STARTING));
	assert_false(de_ctl_allowed((enum de_ctl_type)0, DE_CTL_RUNNING));
	assert_false(de_ctl_allowed(DE_CTL_TYPE_MAX, DE_CTL_RUNNING));
	assert_false(de_ctl_allowed(DE_CTL_READY, DE_CTL_STATE_MAX));
	assert_string_equal(de_ctl_type_name(DE_CTL_SIGN_REPLY), "SIGN_REPLY");
	assert_string_equal(de_ctl_type_name(DE_CTL_TYPE_MAX), "unknown");
	assert_string_equal(de_ctl_reason_name(DE_CTL_REASON_WITH_WORKER), "with_worker");
}

/* Encode m, then let edit change the bytes; decode must refuse. */
static void refused(const struct de_ctl_msg *m, size_t nfds, enum de_ctl_dir dir,
		    void (*edit)(uint8_t *b, size_t *len), const char *why)
{
	uint8_t b[DE_CTL_MAX_MSG + 16];
	size_t len;
	struct de_ctl_msg out;
	struct de_error e = {0};

	assert_int_equal(de_ctl_encode(m, b, sizeof(b), &len, &e), 0);
	if (edit)
		edit(b, &len);
	out.type = (enum de_ctl_type)99;
	assert_int_equal(de_ctl_decode(b, len, nfds, dir, &out, &e), -EBADMSG);
	assert_int_equal(out.type, 99); /* untouched */
	assert_int_equal(e.category, DE_ERR_VALIDATION);
	if (why)
		assert_non_null(strstr(e.message, why));
}

static void drop_last(uint8_t *b, size_t *len)
{
	(void)b;
	(*len)--;
}
static void add_byte(uint8_t *b, size_t *len)
{
	b[*len] = 0;
	(*len)++;
	b[7]++; /* the length field agrees: the payload has a byte too many */
}
static void bad_version(uint8_t *b, size_t *len)
{
	(void)len;
	b[3] = 2;
}
static void bad_type(uint8_t *b, size_t *len)
{
	(void)len;
	b[1] = 0x7f;
}
static void type_zero(uint8_t *b, size_t *len)
{
	(void)len;
	b[1] = 0;
}
static void nul_in_text(uint8_t *b, size_t *len)
{
	b[*len - 3] = 0;
}
static void bool_two(uint8_t *b, size_t *len)
{
	(void)len;
	b[DE_CTL_HEADER + 4] = 2; /* RELOAD_DONE's ok after the generation */
}
static void reason_hung(uint8_t *b, size_t *len)
{
	b[*len - 1] = DE_CTL_REASON_HUNG; /* the parent's own reason, not the worker's */
}
static void reason_huge(uint8_t *b, size_t *len)
{
	b[*len - 1] = 200;
}
static void text_len_long(uint8_t *b, size_t *len)
{
	(void)len;
	b[DE_CTL_HEADER + 8] = 0x10; /* HEARTBEAT's text length: 4096 + ... */
}

static void test_decoder_refuses(void **state)
{
	(void)state;
	struct de_ctl_msg hb, rl, rp, pm, cf;
	struct de_ctl_msg out;
	struct de_error e = {0};
	uint8_t b[16] = {0};

	de_ctl_msg_init(&hb, DE_CTL_HEARTBEAT);
	set_text(&hb, "status line");
	refused(&hb, 0, DE_CTL_TO_PARENT, drop_last, "length field");
	refused(&hb, 0, DE_CTL_TO_PARENT, add_byte, "after its last field");
	refused(&hb, 0, DE_CTL_TO_PARENT, bad_version, "version");
	refused(&hb, 0, DE_CTL_TO_PARENT, bad_type, "unknown type");
	refused(&hb, 0, DE_CTL_TO_PARENT, type_zero, "unknown type");
	refused(&hb, 0, DE_CTL_TO_WORKER, NULL, "wrong way");
	refused(&hb, 1, DE_CTL_TO_PARENT, NULL, "descriptors");
	refused(&hb, 0, DE_CTL_TO_PARENT, nul_in_text, "malformed");
	refused(&hb, 0, DE_CTL_TO_PARENT, text_len_long, "malformed");
	de_ctl_msg_init(&rl, DE_CTL_RELOAD_DONE);
	rl.ok = true;
	refused(&rl, 0, DE_CTL_TO_PARENT, bool_two, "malformed");
	de_ctl_msg_init(&rp, DE_CTL_RESTART_PROCMOND);
	rp.reason = DE_CTL_REASON_RELOAD;
	refused(&rp, 0, DE_CTL_TO_PARENT, reason_hung, NULL);
	refused(&rp, 0, DE_CTL_TO_PARENT, reason_huge, NULL);
	de_ctl_msg_init(&pm, DE_CTL_PROCMOND);
	pm.pid = 5;
	pm.nfds = 1;
	pm.fds[0] = 0;
	refused(&pm, 0, DE_CTL_TO_WORKER, NULL, "descriptors");
	refused(&pm, 2, DE_CTL_TO_WORKER, NULL, "descriptors");
	pm.pid = 0;
	refused(&pm, 1, DE_CTL_TO_WORKER, NULL, "out of range");
	/* CONFIG: an error and files at once is refused */
	de_ctl_msg_init(&cf, DE_CTL_CONFIG);
	cf.nfiles = cf.nfds = 1;
	cf.fds[0] = 0;
	snprintf(cf.paths[0], sizeof(cf.paths[0]), "/x");
	uint8_t enc[DE_CTL_MAX_MSG];
	size_t len;
	assert_int_equal(de_ctl_encode(&cf, enc, sizeof(enc), &len, &e), 0);
	assert_int_equal(de_ctl_decode(enc, len, 1, DE_CTL_TO_WORKER, &out, &e), 0);
	/* a text length of 1 inserted with a byte would shift the rest: build by hand */
	set_text(&cf, "x");
	assert_int_equal(de_ctl_encode(&cf, enc, sizeof(enc), &len, &e), 0);
	assert_int_equal(de_ctl_decode(enc, len, 1, DE_CTL_TO_WORKER, &out, &e), -EBADMSG);
	/* the encoder refuses what the decoder would */
	hb.text_len = DE_CTL_STATUS_MAX + 1;
	assert_int_equal(de_ctl_encode(&hb, enc, sizeof(enc), &len, &e), -EINVAL);
	pm.nfds = 0;
	assert_int_equal(de_ctl_encode(&pm, enc, sizeof(enc), &len, &e), -EINVAL);
	/* short, empty and oversized packets */
	assert_int_equal(de_ctl_decode(b, 7, 0, DE_CTL_TO_PARENT, &out, &e), -EBADMSG);
	assert_int_equal(de_ctl_decode(b, 0, 0, DE_CTL_TO_PARENT, &out, &e), -EBADMSG);
	assert_int_equal(de_ctl_decode(enc, DE_CTL_MAX_MSG + 1, 0, DE_CTL_TO_PARENT, &out, &e),
			 -EBADMSG);
}

/* Raw packets on the socket: truncated, and with more descriptors than any message. */
static void test_recv_refuses(void **state)
{
	(void)state;
	int sv[2], p[2];
	static uint8_t big[DE_CTL_MAX_MSG + 100];
	struct de_ctl_msg m, out;
	struct de_error e = {0};
	uint8_t buf[DE_CTL_MAX_MSG];
	size_t len;
	char c;

	pair(sv);
	memset(big, 1, sizeof(big));
	assert_int_equal(send(sv[0], big, sizeof(big), 0), (ssize_t)sizeof(big));
	assert_int_equal(de_ctl_recv(sv[1], DE_CTL_TO_PARENT, &out, &e), -EBADMSG);

	/* a READY carrying two descriptors: refused, and both copies closed */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	de_ctl_msg_init(&m, DE_CTL_READY);
	m.pid = 1;
	assert_int_equal(de_ctl_encode(&m, buf, sizeof(buf), &len, &e), 0);
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * 2)];
	} cm;
	memset(&cm, 0, sizeof(cm));
	struct iovec iov = {buf, len};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cm.b,
			    .msg_controllen = sizeof(cm.b)};
	struct cmsghdr *ch = CMSG_FIRSTHDR(&mh);
	ch->cmsg_level = SOL_SOCKET;
	ch->cmsg_type = SCM_RIGHTS;
	ch->cmsg_len = CMSG_LEN(sizeof(int) * 2);
	int two[2] = {p[1], p[1]};
	memcpy(CMSG_DATA(ch), two, sizeof(two));
	assert_true(sendmsg(sv[0], &mh, 0) > 0);
	close(p[1]);
	assert_int_equal(de_ctl_recv(sv[1], DE_CTL_TO_PARENT, &out, &e), -EBADMSG);
	assert_non_null(strstr(e.message, "descriptors"));
	assert_int_equal(read(p[0], &c, 1), 0); /* EOF: nothing kept a write end open */
	close(p[0]);
	close(sv[0]);
	close(sv[1]);
}

static void test_note_body(void **state)
{
	(void)state;
	struct de_ctl_note n;
	struct de_error e = {0};
	const char *root = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
	char good[256], s[700];

	snprintf(good, sizeof(good), "host.example/daemoneye/audit\n18446744073709551615\n%s\n",
		 root);
	assert_int_equal(de_ctl_check_note_body(good, strlen(good), &n, &e), 0);
	assert_string_equal(n.origin, "host.example/daemoneye/audit");
	assert_true(n.size == UINT64_MAX);
	assert_int_equal(n.root[31], 31);
	static const char *const bad[] = {
		"",
		"o\n1\n",
		"o\n1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",	  /* no final newline */
		"o\n1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\n", /* a fourth line */
		"\n1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",	  /* empty origin */
		" o\n1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",  /* padded */
		"o\t\n1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", /* control char */
		"o\n01\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",  /* leading zero */
		"o\n18446744073709551616\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
		"o\n-1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
		"o\n\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
		"o\n1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=\n", /* not canonical */
		"o\n1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==\n", /* 31 bytes */
		"o\n1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n",	/* unpadded */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n.size = 42;
		assert_int_equal(de_ctl_check_note_body(bad[i], strlen(bad[i]), &n, &e), -EBADMSG);
		assert_true(n.size == 42); /* untouched */
	}
	/* the origin may be 255 bytes, not 256; the whole body at most 512 */
	memset(s, 'o', 255);
	snprintf(s + 255, sizeof(s) - 255, "\n1\n%s\n", root);
	assert_int_equal(de_ctl_check_note_body(s, strlen(s), NULL, &e), 0);
	memset(s, 'o', 256);
	snprintf(s + 256, sizeof(s) - 256, "\n1\n%s\n", root);
	assert_int_equal(de_ctl_check_note_body(s, strlen(s), NULL, &e), -EBADMSG);
	memset(s, 'o', 600);
	assert_int_equal(de_ctl_check_note_body(s, 600, NULL, &e), -EBADMSG);
	assert_non_null(strstr(e.message, "longer"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trips),	cmocka_unit_test(test_dispatch_table),
		cmocka_unit_test(test_decoder_refuses), cmocka_unit_test(test_recv_refuses),
		cmocka_unit_test(test_note_body),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
