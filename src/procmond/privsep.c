/*
 * privsep.c — procmond gives up what it does not need.
 *
 * Started as root, procmond keeps (libcap-ng; bounding set cleared too):
 *   CAP_SYS_PTRACE      read /proc/PID/exe, environ-free details and the
 *                       image of every process, whoever owns it;
 *   CAP_DAC_READ_SEARCH open executables for hashing that root as a mere
 *                       owner could not read (mode 0711 binaries of other
 *                       users, files under 0700 directories); without it
 *                       those hashes would be missing;
 *   CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN
 *                       only until the event source is loaded
 *                       (procmond_drop_event_caps): creating the eBPF
 *                       sensor's maps and programs and attaching its raw
 *                       tracepoints, or subscribing to the process
 *                       connector.  Once attached, nothing needs them: the
 *                       ring buffer and the sensor's counters are memory
 *                       maps, read without bpf(2).
 * It stays uid 0 (root-owned /proc files stay readable) but holds no other
 * capability, cannot regain any (no_new_privs, empty bounding set), and
 * runs under a seccomp allowlist: the syscalls for reading /proc and files,
 * memory, time, signals, threads and its two sockets (socketpair, netlink);
 * the eBPF sensor's ring buffer is polled through its epoll descriptor, so
 * bpf(2) itself is not allowed (it is loaded before the filter).
 * Anything else (socket, connect, execve, ptrace, open for writing is still
 * a plain openat...) fails with EPERM.  Started as another user nothing is
 * dropped (there is nothing to drop) but the sandbox is the same.
 */
#include <errno.h>
#include <linux/capability.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cap-ng.h>

#include "daemoneye/log.h"
#include "procmond.h"

static int apply(bool event_caps)
{
	capng_clear(CAPNG_SELECT_BOTH);
	if (capng_updatev(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, CAP_SYS_PTRACE,
			  CAP_DAC_READ_SEARCH, -1) < 0)
		return -EINVAL;
	if (event_caps && capng_updatev(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, CAP_NET_ADMIN,
					CAP_BPF, CAP_PERFMON, -1) < 0)
		return -EINVAL;
	if (capng_apply(CAPNG_SELECT_BOTH) < 0)
		return -EPERM;
	return 0;
}

int procmond_drop_caps(bool keep_event_caps)
{
	if (geteuid() != 0)
		return 0;
	return apply(keep_event_caps);
}

int procmond_drop_event_caps(void)
{
	if (geteuid() != 0)
		return 0;
	capng_get_caps_process();
	if (capng_updatev(CAPNG_DROP, CAPNG_EFFECTIVE | CAPNG_PERMITTED, CAP_NET_ADMIN, CAP_BPF,
			  CAP_PERFMON, -1) < 0 ||
	    capng_apply(CAPNG_SELECT_CAPS) < 0)
		return -EPERM;
	return 0;
}

void procmond_caps_text(char *buf, size_t size)
{
	char *t;

	capng_get_caps_process();
	t = capng_have_capabilities(CAPNG_SELECT_CAPS) == CAPNG_NONE
		    ? NULL
		    : capng_print_caps_text(CAPNG_PRINT_BUFFER, CAPNG_EFFECTIVE);
	snprintf(buf, size, "%s", t ? t : "");
	free(t);
}

static const char *const allowed[] = {
	"read",
	"write",
	"readv",
	"writev",
	"pread64",
	"pwrite64",
	"openat",
	"open",
	"close",
	"fstat",
	"newfstatat",
	"statx",
	"stat",
	"lstat",
	"lseek",
	"readlink",
	"readlinkat",
	"getdents64",
	"fcntl",
	"ioctl",
	"fadvise64",
	"access",
	"faccessat",
	"faccessat2",
	/* memory */
	"mmap",
	"munmap",
	"mremap",
	"mprotect",
	"brk",
	"madvise",
	/* time, signals */
	"clock_gettime",
	"clock_nanosleep",
	"nanosleep",
	"gettimeofday",
	"rt_sigaction",
	"rt_sigprocmask",
	"rt_sigreturn",
	"sigaltstack",
	"restart_syscall",
	"tgkill",
	/* threads (the event thread), identity */
	"clone",
	"clone3",
	"futex",
	"set_robust_list",
	"rseq",
	"sched_yield",
	"gettid",
	"getpid",
	"getuid",
	"geteuid",
	"getgid",
	"getegid",
	"prlimit64",
	"getrandom",
	/* the socketpair, the netlink socket, the eBPF ring buffer */
	"poll",
	"ppoll",
	"recvfrom",
	"recvmsg",
	"sendto",
	"sendmsg",
	"shutdown",
	"exit",
	"exit_group",
};

int procmond_sandbox(void)
{
	scmp_filter_ctx ctx;
	int rc;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
#ifdef DE_SANITIZE_BUILD
	return 0; /* LeakSanitizer needs ptrace, clone and more: no filter here */
#endif
	if (!(ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM))))
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		int nr = seccomp_syscall_resolve_name(allowed[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture */
		if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0)) < 0)
			goto out;
	}
	rc = seccomp_load(ctx);
out:
	seccomp_release(ctx);
	return rc;
}
