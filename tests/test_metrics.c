/*
 * test_metrics.c — the metric registry and its exposition: what
 * registration refuses (names, suffixes, labels, buckets, duplicates),
 * counters, gauges and histograms rendered exactly (golden text), label
 * escaping, the series cap, reset, the textfile (mode, content, checked by
 * the real `promtool check metrics`), and the loopback HTTP listener
 * (refuses non-loopback addresses, 503 before the first publish, 200 with
 * the text, 404, 405) talked to over a real socket.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define DE_TEST_NAME "metrics"
#include "testutil.h"

#include "daemoneye/fileio.h"
#include "daemoneye/metrics.h"

static char *render(const struct de_metrics *m)
{
	struct de_buf b = DE_BUF_INIT(1u << 20);

	assert_int_equal(de_metrics_render(m, &b), 0);
	return de_buf_steal(&b);
}

static void test_register_refuses(void **state)
{
	(void)state;
	struct de_metrics *m;
	struct de_error e = {0};
	const char *lab[] = {"rule"}, *bad_lab[] = {"__x"}, *le[] = {"le"}, *dup[] = {"a", "a"};
	const double b_ok[] = {0.1, 1}, b_bad[] = {1, 1}, b_inf[] = {1, INFINITY};

	assert_int_equal(de_metrics_new(&m, &e), 0);
	assert_int_equal(de_metrics_counter(m, "x_events", "h", NULL, 0, NULL, &e), -EINVAL);
	assert_non_null(strstr(e.message, "_total"));
	assert_int_equal(de_metrics_gauge(m, "x_total", "h", NULL, 0, NULL, &e), -EINVAL);
	assert_int_equal(de_metrics_gauge(m, "x_count", "h", NULL, 0, NULL, &e), -EINVAL);
	assert_int_equal(de_metrics_gauge(m, "9lives", "h", NULL, 0, NULL, &e), -EINVAL);
	assert_int_equal(de_metrics_gauge(m, "has-dash", "h", NULL, 0, NULL, &e), -EINVAL);
	assert_int_equal(de_metrics_gauge(m, "", "h", NULL, 0, NULL, &e), -EINVAL);
	assert_int_equal(de_metrics_gauge(m, "no_help", "", NULL, 0, NULL, &e), -EINVAL);
	assert_int_equal(de_metrics_gauge(m, "x", "h", bad_lab, 1, NULL, &e), -EINVAL);
	assert_int_equal(de_metrics_gauge(m, "x", "h", dup, 2, NULL, &e), -EINVAL);
	assert_int_equal(
		de_metrics_add(m, "h_seconds", "h", DE_METRIC_HISTOGRAM, le, 1, b_ok, 2, NULL, &e),
		-EINVAL);
	assert_int_equal(de_metrics_add(m, "h_seconds", "h", DE_METRIC_HISTOGRAM, NULL, 0, b_bad, 2,
					NULL, &e),
			 -EINVAL);
	assert_int_equal(de_metrics_add(m, "h_seconds", "h", DE_METRIC_HISTOGRAM, NULL, 0, b_inf, 2,
					NULL, &e),
			 -EINVAL);
	assert_int_equal(de_metrics_add(m, "h_seconds", "h", DE_METRIC_HISTOGRAM, NULL, 0, NULL, 0,
					NULL, &e),
			 -EINVAL);
	assert_int_equal(de_metrics_add(m, "g", "h", DE_METRIC_GAUGE, NULL, 0, b_ok, 2, NULL, &e),
			 -EINVAL);
	/* nothing above was registered: the registry renders empty */
	char *t = render(m);
	assert_string_equal(t, "");
	free(t);
	assert_int_equal(de_metrics_gauge(m, "fine", "h", lab, 1, NULL, &e), 0);
	assert_int_equal(de_metrics_gauge(m, "fine", "h", lab, 1, NULL, &e), -EEXIST);
	de_metrics_free(m);
	de_metrics_free(NULL);
}

static void test_render_golden(void **state)
{
	(void)state;
	struct de_metrics *m;
	struct de_metric *scans, *procs, *dur, *alerts;
	const char *res[] = {"result"}, *rs[] = {"rule", "severity"};
	const double bk[] = {0.01, 0.1, 1};

	assert_int_equal(de_metrics_new(&m, NULL), 0);
	assert_int_equal(
		de_metrics_counter(m, "de_scans_total", "Scans run.", res, 1, &scans, NULL), 0);
	assert_int_equal(de_metrics_gauge(m, "de_processes", "Processes\nseen \\ last.", NULL, 0,
					  &procs, NULL),
			 0);
	assert_int_equal(de_metrics_add(m, "de_scan_duration_seconds", "Scan time.",
					DE_METRIC_HISTOGRAM, NULL, 0, bk, 3, &dur, NULL),
			 0);
	assert_int_equal(de_metrics_counter(m, "de_alerts_total", "Alerts.", rs, 2, &alerts, NULL),
			 0);
	/* labelled families without series are left out; label-less ones are at 0 */
	char *t = render(m);
	assert_string_equal(t, "# HELP de_processes Processes\\nseen \\\\ last.\n"
			       "# TYPE de_processes gauge\n"
			       "de_processes 0\n"
			       "# HELP de_scan_duration_seconds Scan time.\n"
			       "# TYPE de_scan_duration_seconds histogram\n"
			       "de_scan_duration_seconds_bucket{le=\"0.01\"} 0\n"
			       "de_scan_duration_seconds_bucket{le=\"0.1\"} 0\n"
			       "de_scan_duration_seconds_bucket{le=\"1\"} 0\n"
			       "de_scan_duration_seconds_bucket{le=\"+Inf\"} 0\n"
			       "de_scan_duration_seconds_sum 0\n"
			       "de_scan_duration_seconds_count 0\n");
	free(t);
	assert_int_equal(de_metric_inc(scans, (const char *[]){"ok"}, 1), 0);
	assert_int_equal(de_metric_inc(scans, (const char *[]){"failed"}, 1), 0);
	assert_int_equal(de_metric_inc(scans, (const char *[]){"ok"}, 2), 0);
	assert_int_equal(de_metric_inc(scans, (const char *[]){"ok"}, -1), -EINVAL);
	assert_int_equal(de_metric_inc(scans, (const char *[]){"ok"}, NAN), -EINVAL);
	assert_int_equal(de_metric_observe(scans, (const char *[]){"ok"}, 1), -EINVAL);
	assert_true(de_metric_value(scans, (const char *[]){"ok"}) == 3);
	assert_true(de_metric_value(scans, (const char *[]){"never"}) == 0);
	assert_int_equal(de_metric_set(procs, NULL, 10000), 0);
	assert_int_equal(de_metric_inc(procs, NULL, -1.5), 0); /* gauges go down */
	assert_int_equal(de_metric_observe(dur, NULL, 0.005), 0);
	assert_int_equal(de_metric_observe(dur, NULL, 0.1), 0); /* le is inclusive */
	assert_int_equal(de_metric_observe(dur, NULL, 5), 0);
	assert_int_equal(de_metric_inc(dur, NULL, 1), -EINVAL);
	/* quote, backslash, newline and a byte that is not UTF-8 */
	assert_int_equal(de_metric_inc(alerts, (const char *[]){"a\"b\\c\nd\xff", "high"}, 1), 0);
	assert_int_equal(de_metric_inc(alerts, (const char *[]){"a", NULL}, 1), -EINVAL);
	t = render(m);
	assert_string_equal(
		t, "# HELP de_scans_total Scans run.\n"
		   "# TYPE de_scans_total counter\n"
		   "de_scans_total{result=\"ok\"} 3\n"
		   "de_scans_total{result=\"failed\"} 1\n"
		   "# HELP de_processes Processes\\nseen \\\\ last.\n"
		   "# TYPE de_processes gauge\n"
		   "de_processes 9998.5\n"
		   "# HELP de_scan_duration_seconds Scan time.\n"
		   "# TYPE de_scan_duration_seconds histogram\n"
		   "de_scan_duration_seconds_bucket{le=\"0.01\"} 1\n"
		   "de_scan_duration_seconds_bucket{le=\"0.1\"} 2\n"
		   "de_scan_duration_seconds_bucket{le=\"1\"} 2\n"
		   "de_scan_duration_seconds_bucket{le=\"+Inf\"} 3\n"
		   "de_scan_duration_seconds_sum 5.105\n"
		   "de_scan_duration_seconds_count 3\n"
		   "# HELP de_alerts_total Alerts.\n"
		   "# TYPE de_alerts_total counter\n"
		   "de_alerts_total{rule=\"a\\\"b\\\\c\\nd\xef\xbf\xbd\",severity=\"high\"} "
		   "1\n");
	free(t);
	/* reset: labelled series go, the label-less one is back at 0 */
	de_metric_reset(scans);
	de_metric_reset(procs);
	t = render(m);
	assert_null(strstr(t, "de_scans_total"));
	assert_non_null(strstr(t, "de_processes 0\n"));
	free(t);
	de_metrics_free(m);
}

static void test_series_cap(void **state)
{
	(void)state;
	struct de_metrics *m;
	struct de_metric *g;
	const char *lab[] = {"id"};
	char v[DE_METRIC_MAX_VALUE + 2];

	assert_int_equal(de_metrics_new(&m, NULL), 0);
	assert_int_equal(de_metrics_gauge(m, "g", "h", lab, 1, &g, NULL), 0);
	for (int i = 0; i < DE_METRIC_MAX_SERIES; i++) {
		snprintf(v, sizeof(v), "%d", i);
		assert_int_equal(de_metric_set(g, (const char *[]){v}, i), 0);
	}
	assert_int_equal(de_metric_set(g, (const char *[]){"one more"}, 1), -E2BIG);
	assert_int_equal(de_metric_set(g, (const char *[]){"7"}, 1), 0); /* existing: fine */
	de_metric_reset(g);
	memset(v, 'x', sizeof(v) - 1);
	v[sizeof(v) - 1] = '\0';
	assert_int_equal(de_metric_set(g, (const char *[]){v}, 1), -E2BIG);
	v[DE_METRIC_MAX_VALUE] = '\0';
	assert_int_equal(de_metric_set(g, (const char *[]){v}, 1), 0);
	de_metrics_free(m);
}

/* Run promtool check metrics on the file; its output goes to the test log. */
static int promtool_check(const char *path)
{
	char cmd[PATH_MAX + 64];
	char line[512];
	FILE *p;
	int st, lines = 0;

	snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s' 2>&1", path);
	assert_non_null(p = popen(cmd, "r"));
	while (fgets(line, sizeof(line), p)) {
		fprintf(stderr, "promtool: %s", line);
		lines++;
	}
	st = pclose(p);
	return st == 0 && lines == 0 ? 0 : -1;
}

static void test_textfile_promtool(void **state)
{
	(void)state;
	struct de_metrics *m;
	struct de_metric *c, *h, *b;
	struct de_error e = {0};
	const char *lab[] = {"component", "reason"}, *ver[] = {"version"};
	const double bk[] = {0.001, 0.01, 0.1, 1, 10};
	char path[PATH_MAX], *text;
	size_t len;
	struct stat st;

	if (system("command -v promtool >/dev/null 2>&1") != 0)
		fail_msg("promtool is missing (Debian package prometheus): run make deps");
	assert_int_equal(de_metrics_new(&m, NULL), 0);
	assert_int_equal(de_metrics_counter(m, "daemoneye_restarts_total",
					    "Restarts of a supervised process.", lab, 2, &c, NULL),
			 0);
	assert_int_equal(de_metrics_add(m, "daemoneye_rule_duration_seconds", "Time one rule took.",
					DE_METRIC_HISTOGRAM, NULL, 0, bk, 5, &h, NULL),
			 0);
	assert_int_equal(
		de_metrics_gauge(m, "daemoneye_build_info", "Build information.", ver, 1, &b, NULL),
		0);
	assert_int_equal(de_metric_inc(c, (const char *[]){"procmond", "crash"}, 2), 0);
	assert_int_equal(de_metric_observe(h, NULL, 0.0042), 0);
	assert_int_equal(de_metric_set(b, (const char *[]){"0.1.0"}, 1), 0);
	snprintf(path, sizeof(path), "%s/daemoneye.prom", tmpdir);
	assert_int_equal(de_metrics_write_textfile(m, path, &e), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	assert_int_equal(de_read_file(path, 1 << 20, &text, &len, NULL), 0);
	char *want = render(m);
	assert_string_equal(text, want);
	free(want);
	free(text);
	assert_int_equal(promtool_check(path), 0);
	/* promtool is not a rubber stamp: a counter without _total, written by hand */
	snprintf(path, sizeof(path), "%s/bad.prom", tmpdir);
	const char *bad = "# HELP x_events Events.\n# TYPE x_events counter\nx_events 1\n";
	assert_int_equal(de_write_file_atomic(path, bad, strlen(bad), 0644), 0);
	assert_int_equal(promtool_check(path), -1);
	/* an unwritable place is an IoError naming the file */
	assert_int_equal(de_metrics_write_textfile(m, "/nonexistent/dir/x.prom", &e), -ENOENT);
	assert_non_null(strstr(e.message, "/nonexistent/dir/x.prom"));
	de_metrics_free(m);
}

/* One HTTP/1.0 request to 127.0.0.1:port; the whole response (caller frees). */
static char *http(uint16_t port, const char *method, const char *path)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	char req[256], *out = calloc(1, 65536);
	size_t got = 0;
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_non_null(out);
	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: localhost\r\n\r\n", method, path);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	while ((n = read(fd, out + got, 65535 - got)) > 0)
		got += (size_t)n;
	close(fd);
	return out;
}

static void test_http_listener(void **state)
{
	(void)state;
	struct de_metrics_server *s;
	struct de_error e = {0};
	struct sockaddr_storage ss;
	unsigned salen;
	char *r;
	static const char *const refused[] = {"0.0.0.0:9469",	 "10.1.2.3:9469", "[::]:9469",
					      "example.com:80",	 "127.0.0.1",	  ":9469",
					      "127.0.0.1:70000", "[::1:9469"};

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		assert_int_equal(de_metrics_listen_parse(refused[i], &ss, &salen, &e), -EINVAL);
		assert_int_equal(e.category, DE_ERR_CONFIGURATION);
	}
	assert_int_equal(de_metrics_listen_parse("127.3.4.5:1", &ss, &salen, &e), 0);
	assert_int_equal(de_metrics_listen_parse("localhost:9469", &ss, &salen, &e), 0);
	assert_int_equal(de_metrics_listen_parse("[::1]:9469", &ss, &salen, &e), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(de_metrics_server_start("0.0.0.0:0", &s, &e), -EINVAL);

	assert_int_equal(de_metrics_server_start("127.0.0.1:0", &s, &e), 0);
	assert_true(de_metrics_server_port(s) > 0);
	r = http(de_metrics_server_port(s), "GET", "/metrics");
	assert_non_null(strstr(r, " 503 "));
	free(r);
	const char *text = "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n";
	assert_int_equal(de_metrics_server_publish(s, text, strlen(text)), 0);
	r = http(de_metrics_server_port(s), "GET", "/metrics");
	assert_non_null(strstr(r, " 200 "));
	assert_non_null(strstr(r, "text/plain; version=0.0.4"));
	assert_non_null(strstr(r, "\r\n\r\n# HELP a_total A.\n"));
	free(r);
	r = http(de_metrics_server_port(s), "GET", "/");
	assert_non_null(strstr(r, " 404 "));
	free(r);
	r = http(de_metrics_server_port(s), "DELETE", "/metrics");
	assert_non_null(strstr(r, " 405 "));
	free(r);
	de_metrics_server_stop(s);
	de_metrics_server_stop(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register_refuses), cmocka_unit_test(test_render_golden),
		cmocka_unit_test(test_series_cap),	 cmocka_unit_test(test_textfile_promtool),
		cmocka_unit_test(test_http_listener),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
