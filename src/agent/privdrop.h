/*
 * privdrop.h — the agent's switch from root to an unprivileged user.
 */
#ifndef AGENT_PRIVDROP_H
#define AGENT_PRIVDROP_H

#include "daemoneye/error.h"

/*
 * Give state (a directory) and db's files to user (or nobody), then become
 * that user for good.  0, or an error naming what to change.
 */
int agent_drop_privileges(const char *user, const char *state, const char *db,
			  struct de_error *err);

#endif
