/*
 * seccomp_deny_bpf.c — a test helper (not installed): run a command under a
 * seccomp filter that refuses bpf(2) with EPERM and allows everything
 * else, as a container runtime's default profile does.  integration_sensor
 * runs procmond under it to show the sensor's refusal falls back cleanly.
 *
 *   seccomp_deny_bpf PROGRAM [ARG]...
 */
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	scmp_filter_ctx ctx;

	if (argc < 2) {
		fprintf(stderr, "usage: seccomp_deny_bpf PROGRAM [ARG]...\n");
		return 64;
	}
	if (!(ctx = seccomp_init(SCMP_ACT_ALLOW)) ||
	    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), seccomp_syscall_resolve_name("bpf"), 0) <
		    0 ||
	    seccomp_load(ctx) < 0) {
		fprintf(stderr, "seccomp_deny_bpf: cannot load the filter\n");
		return 71;
	}
	seccomp_release(ctx);
	execv(argv[1], argv + 1);
	fprintf(stderr, "seccomp_deny_bpf: %s: %s\n", argv[1], strerror(errno));
	return 127;
}
