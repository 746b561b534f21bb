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
 * In a forked child: empty the bounding set, drop supplementary groups,
 * become u for good, check that root cannot be regained, and set
 * no_new_privs.  Only system calls (safe after fork).  0 or -errno.
 */
int agent_become(const struct agent_user *u);

#endif
