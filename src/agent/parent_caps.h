/*
 * parent_caps.h — the one list of the capabilities the privileged parent
 * keeps as root (parent.c drop_caps: effective, permitted and bounding
 * set), and of those it uses only at start, before that drop.
 *
 * The systemd unit's CapabilityBoundingSet is made from these two lines at
 * install (cmake/InstallUnit.cmake reads this file: keep each list on its
 * one #define line, names only); tests/integration_install.sh checks the
 * installed unit against a running parent's bounding set.
 *
 * Kept: SETUID and SETGID to become the worker's user, KILL to stop the
 * worker, SYS_PTRACE, DAC_READ_SEARCH, NET_ADMIN, BPF and PERFMON for
 * procmond (its eBPF sensor loads with the last three, then drops them),
 * SETPCAP so that procmond can empty its bounding set.  At start only:
 * CHOWN, to give the state directory and the audit ledger to the worker's
 * user.
 */
#ifndef AGENT_PARENT_CAPS_H
#define AGENT_PARENT_CAPS_H

#include <linux/capability.h>

#define PARENT_CAPS_KEPT                                                                           \
	CAP_SETUID, CAP_SETGID, CAP_KILL, CAP_SETPCAP, CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH,        \
		CAP_NET_ADMIN, CAP_BPF, CAP_PERFMON
#define PARENT_CAPS_SETUP CAP_CHOWN

#endif
