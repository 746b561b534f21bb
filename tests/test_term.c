/*
 * test_term.c — the colour policy and the width to fit, each on a real
 * pseudo-terminal (ctest's stdout is never a terminal, so a test on stdout
 * could not tell a broken policy from a pipe) and on a file.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemoneye/term.h"

/* A new pseudo-terminal's replica side as a FILE, sized cols x 24. */
static FILE *open_pty(int *master, unsigned short cols)
{
	struct winsize ws = {.ws_row = 24, .ws_col = cols};
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC), s;
	char *name;

	assert_true(m >= 0);
	assert_int_equal(grantpt(m), 0);
	assert_int_equal(unlockpt(m), 0);
	assert_non_null(name = ptsname(m));
	s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	assert_true(s >= 0);
	assert_int_equal(ioctl(s, TIOCSWINSZ, &ws), 0);
	*master = m;
	return fdopen(s, "w");
}

static void test_color_policy(void **state)
{
	(void)state;
	int m;
	FILE *tty = open_pty(&m, 80), *file = tmpfile();

	assert_non_null(tty);
	assert_non_null(file);
	setenv("TERM", "xterm", 1);
	unsetenv("NO_COLOR");
	assert_true(de_use_color(tty)); /* a terminal, nothing says no */
	assert_false(de_use_color(file));
	setenv("NO_COLOR", "1", 1);
	assert_false(de_use_color(tty));
	setenv("NO_COLOR", "", 1); /* no-color.org: only a non-empty value counts */
	assert_true(de_use_color(tty));
	unsetenv("NO_COLOR");
	setenv("TERM", "dumb", 1);
	assert_false(de_use_color(tty));
	unsetenv("TERM");
	assert_false(de_use_color(tty));
	fclose(tty);
	fclose(file);
	close(m);
}

static void test_width(void **state)
{
	(void)state;
	int m;
	FILE *tty = open_pty(&m, 132), *file = tmpfile();

	unsetenv("COLUMNS");
	assert_int_equal(de_term_width(fileno(tty)), 132);
	assert_int_equal(de_term_width(fileno(file)), 0); /* not a terminal: no cut */
	setenv("COLUMNS", "100", 1);			  /* the user's word wins */
	assert_int_equal(de_term_width(fileno(tty)), 100);
	assert_int_equal(de_term_width(fileno(file)), 100);
	setenv("COLUMNS", "5", 1); /* nonsense is ignored */
	assert_int_equal(de_term_width(fileno(tty)), 132);
	setenv("COLUMNS", "80x", 1);
	assert_int_equal(de_term_width(fileno(file)), 0);
	unsetenv("COLUMNS");
	fclose(tty);
	fclose(file);
	close(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_color_policy),
		cmocka_unit_test(test_width),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
