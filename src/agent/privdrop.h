/*
 * privdrop.h — the worker's user: resolved and given the state directory by
 * the privileged parent, and become in the forked child just before it
 * executes the worker (privdrop.c).
 */
#ifndef AGENT_PRIVDROP_H
#define AGENT_PRIVDROP_H

#include <sys/types.h>

#include "daemoneye/error.h"

/* The user the worker runs as. */
struct agent_user {
	char name[64]; /* app.run_as_user, or "nobody" when that user does not exist */
	uid_t uid;
	gid_t gid;
};

/*
 * Resolve app.run_as_user (nobody when it does not exist; root refused).
 * 0, or a ConfigurationError naming what to change.
 */
int agent_user_resolve(const char *name, struct agent_user *out, struct de_error *err);

/*
 * Give the state directory (and the files directly in it, symlinks
 * untouched) and the event store's files (db, may be NULL) to u, so that
 * the worker can write them.  Failures are ignored: the worker says what
 * it cannot open.
 */
void agent_give_state(const struct agent_user *u, const char *state, const char *db);

/*
 * The audit ledger at `ledger` (audit.path, absolute) outside the state
 * directory: its directory is made (0750) and given to u when missing, or
 * given when it holds nothing but the ledger's files; the ledger and the
 * files SQLite keeps beside it are given to u (a root-run daemoneye-cli may
 * have made them root's).  0; or a ConfigurationError when the directory
 * is shared with other files and not u's (never given away: the worker
 * could not write the ledger's -wal there), or an IOError when it cannot be
 * made.
 */
int agent_give_ledger(const struct agent_user *u, const char *ledger, const char *state,
		      struct de_error *err);

/*
 * In a forked child: empty the bounding set, drop supplementary groups,
 * become u for good, check that root cannot be regained, and set
 * no_new_privs.  Only system calls (safe after fork).  0 or -errno.
 */
int agent_become(const struct agent_user *u);

#endif
