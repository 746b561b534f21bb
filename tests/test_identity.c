/*
 * test_identity.c — full names (comm cut at 15 bytes), containers from the
 * cgroup paths each runtime writes, captured environment variables (order,
 * escaping, cuts, masking), and the user/group name cache against an
 * independent source (`id -nu` / `id -ng`, and getent's answer for an id
 * without a name).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemoneye/identity.h"
#include "daemoneye/mask.h"

static void test_full_name(void **state)
{
	(void)state;
	char *argv[] = {"/usr/bin/python3", "/opt/x/gnome-shell-calendar-server", NULL};

	/* the example: comm is the first 15 bytes of the image's name */
	assert_string_equal(de_identity_full_name("gnome-shell-cal",
						  "/usr/libexec/gnome-shell-calendar-server", NULL,
						  0),
			    "gnome-shell-calendar-server");
	/* a script run by its interpreter: argv[1] names it */
	assert_string_equal(
		de_identity_full_name("gnome-shell-cal", "/usr/bin/python3.11", argv, 2),
		"gnome-shell-calendar-server");
	/* shorter than 15 bytes: comm is whole, even if the image differs */
	assert_string_equal(de_identity_full_name("bash", "/usr/bin/bash-static", NULL, 0), "bash");
	/* 15 bytes, but no candidate starts with it: comm (a renamed thread) */
	assert_string_equal(de_identity_full_name("worker-thread-1", "/usr/bin/java", argv, 2),
			    "worker-thread-1");
	/* a candidate equal to comm is not longer: comm */
	assert_string_equal(
		de_identity_full_name("exactly15bytes!", "/bin/exactly15bytes!", NULL, 0),
		"exactly15bytes!");
	assert_string_equal(de_identity_full_name("kworker/0:1H-kb", NULL, NULL, 0),
			    "kworker/0:1H-kb");
}

static void test_containers(void **state)
{
	(void)state;
	static const char id[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	static const struct {
		const char *path;
		const char *runtime; /* NULL: not a container */
	} cases[] = {
		{"/system.slice/docker-%s.scope", "docker"},
		{"/docker/%s", "docker"},
		{"/system.slice/containerd.service/kubepods-burstable-podx.slice:cri-containerd:%s",
		 "containerd"},
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/"
		 "cri-containerd-%s.scope",
		 "containerd"},
		{"/kubepods/burstable/pod0f9a/%s", "containerd"},
		{"/kubepods.slice/kubepods-pod2.slice/crio-%s.scope", "cri-o"},
		{"/machine.slice/libpod-%s.scope", "podman"},
		{"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-%s.scope/"
		 "container",
		 "podman"},
		{"/system.slice/sshd.service", NULL},
		{"/user.slice/%s",
		 NULL}, /* a bare id outside kubepods/docker: no runtime to name */
		{"/", NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char path[512], got[DE_CONTAINER_ID_LEN + 1] = "";
		const char *rt = NULL, *at = strstr(cases[i].path, "%s");
		if (at)
			snprintf(path, sizeof(path), "%.*s%s%s", (int)(at - cases[i].path),
				 cases[i].path, id, at + 2);
		else
			snprintf(path, sizeof(path), "%s", cases[i].path);
		bool found = de_identity_container(path, got, &rt);
		if (found != (cases[i].runtime != NULL))
			fail_msg("%s: found %d", path, found);
		if (!found)
			continue;
		assert_string_equal(got, id);
		assert_string_equal(rt, cases[i].runtime);
	}
	/* an id of the wrong length or case is not one */
	char got[DE_CONTAINER_ID_LEN + 1];
	const char *rt;
	assert_false(de_identity_container("/system.slice/docker-0123.scope", got, &rt));
	assert_false(de_identity_container(
		"/docker/0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", got,
		&rt));
	assert_false(de_identity_container(NULL, got, &rt));
}

static void test_env(void **state)
{
	(void)state;
	static const char env[] = "HOME=/root\0LD_PRELOAD=/tmp/x.so\0PATH=/bin\0"
				  "LD_LIBRARY_PATH=/a\nb\\c\0PASSWORD=hunter2\0LD_PRELOADX=no";
	const char *names[] = {"LD_LIBRARY_PATH", "LD_PRELOAD", "NOT_SET", "PASSWORD"};
	char *out;
	bool cut;

	/* in the configured order, escaped, masked like a command line */
	assert_int_equal(de_identity_env(env, sizeof(env), names, 4, true, NULL, 0, &out, &cut), 0);
	assert_non_null(out);
	assert_string_equal(
		out, "LD_LIBRARY_PATH=/a\\nb\\\\c\nLD_PRELOAD=/tmp/x.so\nPASSWORD=" DE_MASK_STRING);
	assert_false(cut);
	free(out);
	/* unmasked when masking is off */
	assert_int_equal(
		de_identity_env(env, sizeof(env), names + 3, 1, false, NULL, 0, &out, &cut), 0);
	assert_string_equal(out, "PASSWORD=hunter2");
	free(out);
	/* nothing set: no text */
	assert_int_equal(de_identity_env(env, sizeof(env), names + 2, 1, true, NULL, 0, &out, &cut),
			 0);
	assert_null(out);
	/* a huge value is cut at DE_ENV_VALUE_MAX and says so */
	size_t n = 11 + 100000;
	char *big = malloc(n + 1);
	memcpy(big, "LD_PRELOAD=", 11);
	memset(big + 11, 'a', 100000);
	big[n] = '\0';
	assert_int_equal(de_identity_env(big, n, names + 1, 1, true, NULL, 0, &out, &cut), 0);
	assert_true(cut);
	assert_int_equal(strlen(out), 11 + DE_ENV_VALUE_MAX);
	free(out);
	free(big);
	/* an environment without a final NUL is still read whole */
	assert_int_equal(
		de_identity_env("LD_PRELOAD=/y", 13, names + 1, 1, true, NULL, 0, &out, &cut), 0);
	assert_string_equal(out, "LD_PRELOAD=/y");
	free(out);
}

/* The first line of a command's output (no newline), or "" when it fails. */
static void run(const char *cmd, char *buf, size_t size)
{
	FILE *p = popen(cmd, "r");

	buf[0] = '\0';
	if (!p)
		return;
	if (!fgets(buf, (int)size, p))
		buf[0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	pclose(p);
}

static void test_idcache(void **state)
{
	(void)state;
	struct de_idcache *c;
	char want[256], cmd[64];

	assert_int_equal(de_idcache_new(2, 60000, &c), 0);
	/* our own ids, as id(1) names them */
	run("id -nu", want, sizeof(want));
	assert_string_equal(de_idcache_user(c, (uint32_t)geteuid()), want);
	run("id -ng", want, sizeof(want));
	assert_string_equal(de_idcache_group(c, (uint32_t)getegid()), want);
	/* root and nobody, as getent names them */
	run("getent passwd 0 | cut -d: -f1", want, sizeof(want));
	assert_string_equal(de_idcache_user(c, 0), want);
	uint64_t misses = de_idcache_misses(c);
	assert_string_equal(de_idcache_user(c, 0), want); /* from the cache */
	assert_int_equal(de_idcache_misses(c), misses);
	/* an id nobody has: no name, and getent agrees */
	snprintf(cmd, sizeof(cmd), "getent passwd 3999999 | cut -d: -f1");
	run(cmd, want, sizeof(want));
	assert_string_equal(want, "");
	assert_null(de_idcache_user(c, 3999999));
	/* more ids than the cache holds: still right (it is emptied and refilled) */
	for (int round = 0; round < 3; round++)
		for (uint32_t id = 0; id < 5; id++) {
			snprintf(cmd, sizeof(cmd), "getent passwd %u | cut -d: -f1", id);
			run(cmd, want, sizeof(want));
			const char *got = de_idcache_user(c, id);
			assert_string_equal(got ? got : "", want);
		}
	de_idcache_free(c);
	de_idcache_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_name),
		cmocka_unit_test(test_containers),
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_idcache),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
