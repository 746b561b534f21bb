/*
 * test_netconn.c — /proc/net/tcp{,6} parsing (the kernel's own text, and
 * lines that must be skipped), and a scan of the real /proc that finds the
 * listener, the outbound and the accepted connection this test opens on
 * loopback, IPv4 and IPv6, with our pid and start time.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemoneye/netconn.h"

struct rows {
	struct de_connection v[16];
	bool listen[16];
	int n;
};

static int keep(void *ctx, const struct de_connection *c, bool listen)
{
	struct rows *r = ctx;
	if (r->n < 16) {
		r->v[r->n] = *c;
		r->listen[r->n++] = listen;
	}
	return 0;
}

static void test_parse_tables(void **state)
{
	(void)state;
	/* as the kernel writes them (x86: each word of the address in host order) */
	static const char tcp4[] = "  sl  local_address rem_address   st tx_queue rx_queue tr "
				   "tm->when retrnsmt   uid  "
				   "timeout inode\n"
				   "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 "
				   "00:00000000 00000000     0  "
				   "      0 4242 1 0000000000000000 100 0 0 10 0\n"
				   "   1: 0100007F:9C40 0100007F:1F90 01 00000000:00000000 "
				   "00:00000000 00000000  1000  "
				   "      0 4343 1 0000000000000000 20 4 30 10 -1\n"
				   "   2: 0100007F:9C41 0100007F:1F90 06 00000000:00000000 "
				   "03:00001000 00000000     0  "
				   "      0 0 3 0000000000000000\n" /* TIME_WAIT: skipped */
				   "   3: garbage\n"
				   "   4: 0100007F:1F9G 00000000:0000 0A 00000000:00000000 "
				   "00:00000000 00000000     0  "
				   "      0 77 1\n"; /* not hex: skipped */
	static const char tcp6[] = "  sl  local_address                         remote_address     "
				   "                   st "
				   "tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
				   "   0: 00000000000000000000000001000000:0016 "
				   "00000000000000000000000000000000:0000 0A "
				   "00000000:00000000 00:00000000 00000000     0        0 5555 1 "
				   "0000000000000000 100 0 0 "
				   "10 0\n";
	struct rows r = {.n = 0};
	char buf[64];

	assert_int_equal(de_netconn_parse_table(tcp4, sizeof(tcp4) - 1, 4, keep, &r), 0);
	assert_int_equal(r.n, 2);
	assert_true(r.listen[0]);
	assert_string_equal(de_netconn_addr_text(4, r.v[0].laddr, buf, sizeof(buf)), "127.0.0.1");
	assert_int_equal(r.v[0].lport, 8080);
	assert_int_equal(r.v[0].inode, 4242);
	assert_false(r.listen[1]);
	assert_int_equal(r.v[1].lport, 40000);
	assert_int_equal(r.v[1].rport, 8080);
	assert_int_equal(r.v[1].inode, 4343);
	r.n = 0;
	assert_int_equal(de_netconn_parse_table(tcp6, sizeof(tcp6) - 1, 6, keep, &r), 0);
	assert_int_equal(r.n, 1);
	assert_string_equal(de_netconn_addr_text(6, r.v[0].laddr, buf, sizeof(buf)), "::1");
	assert_int_equal(r.v[0].lport, 22);
	/* nothing but a header, or nothing at all */
	r.n = 0;
	assert_int_equal(de_netconn_parse_table("header only", 11, 4, keep, &r), 0);
	assert_int_equal(de_netconn_parse_table("", 0, 4, keep, &r), 0);
	assert_int_equal(r.n, 0);
}

struct found {
	int family;
	uint16_t port; /* the listener's */
	bool listen, connect, accept;
	int64_t start;
};

static int seen(void *ctx, const struct de_connection *c)
{
	struct found *f = ctx;

	if (c->pid != (uint32_t)getpid() || c->family != f->family)
		return 0;
	assert_true(c->from_scan);
	assert_true(c->inode != 0);
	if (c->kind == DE_CONN_LISTEN && c->lport == f->port)
		f->listen = true;
	else if (c->kind == DE_CONN_CONNECT && c->rport == f->port)
		f->connect = true;
	else if (c->kind == DE_CONN_ACCEPT && c->lport == f->port)
		f->accept = true;
	f->start = c->start_time;
	return 0;
}

/* Our own start time as the collector computes it (stat field 22 + btime). */
static int64_t own_start_ms(void)
{
	char buf[2048];
	FILE *f = fopen("/proc/self/stat", "r");
	unsigned long long st = 0, btime = 0;
	char *p;

	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	p = strrchr(buf, ')');
	for (int i = 0; i < 20; i++)
		p = strchr(p + 1, ' ');
	sscanf(p, "%llu", &st);
	f = fopen("/proc/stat", "r");
	while (fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "btime %llu", &btime) == 1)
			break;
	fclose(f);
	return (int64_t)(btime * 1000 + st * 1000 / (unsigned long long)sysconf(_SC_CLK_TCK));
}

static void scan_family(int family)
{
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	int l, c, a;
	struct found f = {.family = family};
	struct de_error err = {0};

	if (family == 4) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sl = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_addr = in6addr_loopback;
		sl = sizeof(*in6);
	}
	l = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&ss, sl) < 0) {
		if (l >= 0)
			close(l);
		printf("# no IPv%d loopback here: skipped\n", family);
		return;
	}
	assert_int_equal(listen(l, 4), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&ss, &sl), 0);
	f.port = ntohs(family == 4 ? ((struct sockaddr_in *)&ss)->sin_port
				   : ((struct sockaddr_in6 *)&ss)->sin6_port);
	c = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&ss, sl), 0);
	a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	assert_true(a >= 0);

	assert_int_equal(de_netconn_scan(NULL, 1234, seen, &f, NULL, &err), 0);
	assert_true(f.listen);
	assert_true(f.connect);
	assert_true(f.accept);
	assert_int_equal(f.start, own_start_ms());
	close(a);
	close(c);
	close(l);
}

static void test_scan_finds_our_sockets(void **state)
{
	(void)state;
	scan_family(4);
	scan_family(6);
}

static void test_scan_bad_root(void **state)
{
	(void)state;
	struct de_error err = {0};
	struct found f = {0};

	assert_true(de_netconn_scan("/nonexistent-proc", 0, seen, &f, NULL, &err) < 0);
	assert_non_null(strstr(err.message, "/nonexistent-proc"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_tables),
		cmocka_unit_test(test_scan_finds_our_sockets),
		cmocka_unit_test(test_scan_bad_root),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
