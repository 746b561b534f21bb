/*
 * parent.h — what the two programs of daemoneye-agent share
 * (docs/process-model.md): the privileged parent, daemoneye-agent
 * (parent.c), which the user starts, and the worker, daemoneye-worker
 * (main.c), which the parent starts with the control channel on
 * descriptor 3 and its own --set, --rules and --once arguments.
 */
#ifndef AGENT_PARENT_H
#define AGENT_PARENT_H

#include <stdbool.h>
#include <stddef.h>

#include "daemoneye/config.h"

/* The worker's end of the control channel, as it finds it after execve. */
#define AGENT_CTL_FD 3

/* What the command line said. */
struct agent_opts {
	struct de_config_sources src; /* -c, --set (borrowed from argv) */
	const char **rule_files;      /* --rules FILE..., borrowed from argv */
	size_t nrule_files;
	bool once; /* --once: one cycle, then everyone exits */
};

/* The privileged parent: supervise procmond and the worker until stopped.  A sysexits status. */
int parent_main(const struct agent_opts *o);

/* The worker: configuration from the parent, then the cycle.  A sysexits status. */
int worker_main(const struct agent_opts *o);

#endif
