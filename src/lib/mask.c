/*
 * mask.c — command-line secret masking (see mask.h for the forms).
 *
 * Matching is byte-wise on the argument as the kernel holds it; a flag that
 * is itself not ASCII simply never matches.  The mask string is fixed so
 * that masked records compare equal across scans and reveal no length.
 */
#include "daemoneye/mask.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

const char *const de_mask_default_flags[] = {"--password", "--passwd", "--token",
					     "--api-key",  "--secret", NULL};

static const char *const mysql_like[] = {"mysql",	 "mysqldump",	  "mysqladmin",
					 "mysqlimport",	 "mysqlshow",	  "mariadb",
					 "mariadb-dump", "mariadb-admin", NULL};

static int lower(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c + ('a' - 'A');
	if (c == '_')
		return '-';
	return c;
}

/* Does s start with key (case and -/_ folded), followed by '='? */
static bool key_eq(const char *s, const char *key)
{
	size_t i = 0;
	for (; key[i]; i++)
		if (!s[i] || lower((unsigned char)s[i]) != lower((unsigned char)key[i]))
			return false;
	return s[i] == '=';
}

static int replace(char **slot, size_t keep)
{
	size_t ml = sizeof(DE_MASK_STRING) - 1;
	char *n = malloc(keep + ml + 1);

	if (!n)
		return -ENOMEM;
	memcpy(n, *slot, keep);
	memcpy(n + keep, DE_MASK_STRING, ml + 1);
	free(*slot);
	*slot = n;
	return 1;
}

static const char *base_name(const char *s)
{
	const char *b = strrchr(s, '/');
	return b ? b + 1 : s;
}

static bool in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

int de_mask_argv(char **argv, size_t argc, const char *const *flags, size_t nflags)
{
	bool mysql = false, sshpass = false, bare = false;
	int masked = 0, rc;

	if (!flags) {
		flags = de_mask_default_flags;
		for (nflags = 0; flags[nflags]; nflags++)
			;
	}
	/* a flag configured without a leading '-' can match any argument */
	for (size_t f = 0; f < nflags && !bare; f++)
		bare = flags[f][0] != '-';
	if (argc > 0) {
		const char *b = base_name(argv[0]);
		mysql = in_list(b, mysql_like);
		sshpass = strcmp(b, "sshpass") == 0;
	}
	for (size_t i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool done = false;

		if ((mysql || sshpass) && a[0] == '-' && a[1] == 'p') {
			if (a[2] != '\0') {
				if ((rc = replace(&argv[i], 2)) < 0)
					return rc;
				masked++;
				continue;
			}
			if (sshpass && i + 1 < argc) {
				if ((rc = replace(&argv[++i], 0)) < 0)
					return rc;
				masked++;
				continue;
			}
		}
		/* every form below starts with '-' or holds '=' (or a bare
		   flag is configured): most arguments are neither */
		if (!bare && a[0] != '-' && !strchr(a, '='))
			continue;
		for (size_t f = 0; f < nflags && !done; f++) {
			const char *flag = flags[f], *key = flag;
			size_t fl = strlen(flag);

			if (fl == 0)
				continue;
			while (*key == '-')
				key++;
			if (strcmp(a, flag) == 0) {
				if (i + 1 < argc) {
					if ((rc = replace(&argv[++i], 0)) < 0)
						return rc;
					masked++;
				}
				done = true;
			} else if (strncmp(a, flag, fl) == 0 && a[fl] == '=') {
				if ((rc = replace(&argv[i], fl + 1)) < 0)
					return rc;
				masked++;
				done = true;
			} else if (*key && a[0] != '-' && key_eq(a, key)) {
				if ((rc = replace(&argv[i], strlen(key) + 1)) < 0)
					return rc;
				masked++;
				done = true;
			}
		}
	}
	return masked;
}
