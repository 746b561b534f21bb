/*
 * mask.h — hide secrets that people put on command lines.
 *
 * For each flag in the list (default: --password --passwd --token --api-key
 * --secret) the value is replaced by DE_MASK_STRING in every form:
 *
 *   --password VALUE        the next argument
 *   --password=VALUE        after the first '='
 *   password=VALUE          key=value (the flag without leading dashes,
 *                           ASCII case ignored, '-' and '_' alike), which
 *                           also covers PASSWORD=... and api_key=...
 *
 * `-p` is ambiguous (a port for ssh, a path elsewhere), so it is masked only
 * for the programs that document it as a password: the MySQL/MariaDB
 * clients (mysql, mysqldump, mysqladmin, mysqlimport, mysqlshow, mariadb,
 * mariadb-dump, mariadb-admin), where only the attached form -pVALUE
 * carries one (a bare -p prompts), and sshpass, where both -p VALUE and
 * -pVALUE do.  argv[0] is never masked.
 *
 * Ownership: argv's strings are malloc'd and owned by the caller; a masked
 * one is freed and replaced by a new malloc'd string.
 */
#ifndef DAEMONEYE_MASK_H
#define DAEMONEYE_MASK_H

#include <stddef.h>

#define DE_MASK_STRING "********"

/* The default flag list, NULL-terminated. */
extern const char *const de_mask_default_flags[];

/*
 * Mask argv[0..argc) in place against flags[0..nflags) (NULL: the
 * defaults).  Returns the number of values masked, or -ENOMEM (argv is then
 * still valid, possibly partly masked).
 */
int de_mask_argv(char **argv, size_t argc, const char *const *flags, size_t nflags);

#endif
