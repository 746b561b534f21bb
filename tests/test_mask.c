/*
 * test_mask.c — every form of every masked flag, the -p programs, the
 * things that must stay untouched, and a custom flag list.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemoneye/mask.h"

#define M DE_MASK_STRING

/* Mask a NULL-terminated argv and compare with want; return the count. */
static int check(const char *const *in, const char *const *want, const char *const *flags,
		 size_t nflags)
{
	size_t n = 0;
	while (in[n])
		n++;
	char **v = calloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		v[i] = strdup(in[i]);
	int rc = de_mask_argv(v, n, flags, nflags);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(want[i]);
		assert_string_equal(v[i], want[i]);
		free(v[i]);
	}
	assert_null(want[n]);
	free(v);
	return rc;
}

static void test_every_default_flag_every_form(void **state)
{
	(void)state;
	static const char *const flags[] = {"password", "passwd", "token", "api-key", "secret"};
	for (size_t f = 0; f < 5; f++) {
		char sep[64], eq[64], kv[64], kvu[64], masked_eq[64], masked_kv[64], masked_kvu[64];
		snprintf(sep, sizeof(sep), "--%s", flags[f]);
		snprintf(eq, sizeof(eq), "--%s=hunter2", flags[f]);
		snprintf(kv, sizeof(kv), "%s=hunter2", flags[f]);
		/* upper case, and '_' for '-': PASSWORD=, API_KEY= */
		snprintf(kvu, sizeof(kvu), "%s=hunter2", flags[f]);
		for (char *p = kvu; *p != '='; p++)
			*p = *p == '-' ? '_' : (char)(*p - 'a' + 'A');
		snprintf(masked_eq, sizeof(masked_eq), "--%s=" M, flags[f]);
		snprintf(masked_kv, sizeof(masked_kv), "%s=" M, flags[f]);
		snprintf(masked_kvu, sizeof(masked_kvu), "%.*s=" M, (int)(strchr(kvu, '=') - kvu),
			 kvu);
		const char *in[] = {"prog", sep, "hunter2", eq, kv, kvu, "keep", NULL};
		const char *want[] = {"prog",	 sep,	     M,	     masked_eq,
				      masked_kv, masked_kvu, "keep", NULL};
		assert_int_equal(check(in, want, NULL, 0), 4);
	}
}

static void test_untouched(void **state)
{
	(void)state;
	const char *in[] = {"--password",  "--passwordx=1", "-password=2", "--tok=3",
			    "passwords=4", "x=password",    "--password",  NULL};
	/* argv[0] is never masked; a trailing flag has no value to mask */
	const char *want[] = {"--password",  "--passwordx=1", "-password=2", "--tok=3",
			      "passwords=4", "x=password",    "--password",  NULL};
	assert_int_equal(check(in, want, NULL, 0), 0);
	const char *ssh[] = {"ssh", "-p", "2222", "host", NULL};
	assert_int_equal(check(ssh, ssh, NULL, 0), 0);
	const char *empty[] = {NULL};
	assert_int_equal(check(empty, empty, NULL, 0), 0);
}

static void test_dash_p_where_documented(void **state)
{
	(void)state;
	const char *my[] = {"/usr/bin/mysql", "-uroot", "-psecretpw", "-p", "db", NULL};
	const char *myw[] = {"/usr/bin/mysql", "-uroot", "-p" M, "-p", "db", NULL};
	assert_int_equal(check(my, myw, NULL, 0), 1);
	const char *md[] = {"mysqldump", "--password=x", "-pY", NULL};
	const char *mdw[] = {"mysqldump", "--password=" M, "-p" M, NULL};
	assert_int_equal(check(md, mdw, NULL, 0), 2);
	const char *sp[] = {"sshpass", "-p", "pw", "ssh", "-p", "22", "h", NULL};
	const char *spw[] = {"sshpass", "-p", M, "ssh", "-p", M, "h", NULL};
	/* sshpass masks every -p it sees, the ssh port included: over-masking
	 * is the safe side */
	assert_int_equal(check(sp, spw, NULL, 0), 2);
	const char *sp2[] = {"sshpass", "-ppw", NULL};
	const char *sp2w[] = {"sshpass", "-p" M, NULL};
	assert_int_equal(check(sp2, sp2w, NULL, 0), 1);
}

static void test_custom_list(void **state)
{
	(void)state;
	const char *const flags[] = {"--pin", "-k"};
	const char *in[] = {"x", "--pin", "1234", "--password", "p", "-k", "v", "pin=9", NULL};
	const char *want[] = {"x", "--pin", M, "--password", "p", "-k", M, "pin=" M, NULL};
	assert_int_equal(check(in, want, flags, 2), 3);
	/* a flag configured without dashes still matches the argument itself */
	const char *const bare[] = {"login"};
	const char *in2[] = {"x", "login", "secret", "other", NULL};
	const char *want2[] = {"x", "login", M, "other", NULL};
	assert_int_equal(check(in2, want2, bare, 1), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_default_flag_every_form),
		cmocka_unit_test(test_untouched),
		cmocka_unit_test(test_dash_p_where_documented),
		cmocka_unit_test(test_custom_list),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
