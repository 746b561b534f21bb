/*
 * test_sink_syslog.c — the RFC 5424 message the syslog sink sends: header
 * fields, PRI, the structured data with the alert id (SD-PARAM escaping of
 * '"', '\' and ']' per RFC 5424 6.3.3, invalid UTF-8 and control
 * characters), header fields restricted to PRINTUSASCII, the severity map.
 * (Delivery over each transport is tested against rsyslogd in
 * integration_alerting.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemoneye/sink.h"

static void test_sd_escape(void **state)
{
	(void)state;
	struct de_buf b = DE_BUF_INIT(4096);
	const char in[] = "a\"b\\c]d\ne\xff=|";

	assert_int_equal(de_syslog_sd_escape(&b, in, sizeof(in) - 1), 0);
	assert_string_equal(b.p, "a\\\"b\\\\c\\]d e\xef\xbf\xbd=|");
	de_buf_free(&b);
}

static void test_5424(void **state)
{
	(void)state;
	struct de_buf b = DE_BUF_INIT(4096);
	struct de_syslog_hdr h = {
		.facility = 16,
		.severity = de_syslog_severity(DE_SEV_CRITICAL),
		.time_ms = 1764060360123,
		.hostname = "host one", /* a space is not PRINTUSASCII */
		.app_name = "daemoneye",
		.procid = 42,
		.msgid = "alert",
		.alert_id = "0b8f7a52-6a3c-4d2e-9a55-3f1d2c4b5a69",
		.rule_id = "r\"]1",
		.severity_name = "critical",
		.kind = "alert",
	};

	assert_int_equal(de_syslog_5424(&b, &h, "CEF:0|x", 7), 0);
	assert_string_equal(b.p,
			    "<130>1 2025-11-25T08:46:00.123Z host_one daemoneye 42 alert "
			    "[daemoneye@32473 alert_id=\"0b8f7a52-6a3c-4d2e-9a55-3f1d2c4b5a69\" "
			    "rule_id=\"r\\\"\\]1\" severity=\"critical\" kind=\"alert\"] CEF:0|x");
	de_buf_free(&b);
	h.hostname = NULL; /* nil values are "-" */
	h.msgid = "";
	assert_int_equal(de_syslog_5424(&b, &h, "m", 1), 0);
	assert_non_null(strstr(b.p, "Z - daemoneye 42 - [daemoneye@32473"));
	de_buf_free(&b);
	assert_int_equal(de_syslog_severity(DE_SEV_LOW), 5);
	assert_int_equal(de_syslog_severity(DE_SEV_MEDIUM), 4);
	assert_int_equal(de_syslog_severity(DE_SEV_HIGH), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sd_escape),
		cmocka_unit_test(test_5424),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
