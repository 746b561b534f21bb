/*
 * identity.h — who a process is, beyond /proc's numbers: its full name
 * when the kernel's 15-byte comm cuts it, the container it runs in (from
 * its cgroup path), the environment variables an operator asked for, and
 * user and group names for its ids (a bounded cache, for the unprivileged
 * agent).  docs/collection.md describes each as a fact.
 *
 * Ownership: de_identity_full_name returns a pointer into its arguments;
 * de_identity_env's text is malloc'd and the caller's; the name cache owns
 * its entries and the names it returns stay valid until the next lookup
 * or de_idcache_free.
 */
#ifndef DAEMONEYE_IDENTITY_H
#define DAEMONEYE_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DE_COMM_MAX 15 /* the kernel's comm holds at most this many bytes */

/*
 * The process's full name: when comm is DE_COMM_MAX bytes long and the
 * base name of the executable, of argv[0] or of argv[1] (a script run by
 * its interpreter) is longer and starts with it, that base name; else
 * comm.  A pointer into comm, exe or argv (exe and argv may be NULL).
 */
const char *de_identity_full_name(const char *comm, const char *exe, char *const *argv,
				  size_t argc);

/* Container runtimes recognised in cgroup paths. */
#define DE_CONTAINER_ID_LEN 64

/*
 * The container of a cgroup v2 path: the last component that names one
 * (docker-<id>.scope, /docker/<id>, cri-containerd-<id>.scope,
 * <slice>:cri-containerd:<id> (and :crio:, :docker:, :libpod:),
 * crio-<id>.scope, libpod-<id>.scope, or a bare 64-hex-digit id under
 * kubepods), with its runtime ("docker", "containerd", "cri-o",
 * "podman").  true with id (64 hex digits and a NUL) and *runtime set
 * (a static string); false when the path names no container.
 */
bool de_identity_container(const char *cgroup, char id[DE_CONTAINER_ID_LEN + 1],
			   const char **runtime);

/* Longest value kept of one captured environment variable (bytes). */
#define DE_ENV_VALUE_MAX 4096

/*
 * The captured variables of an environment block env[0..n) (NUL-separated
 * NAME=VALUE, as /proc/PID/environ): for each name in names, in that
 * order, the line "NAME=VALUE" when the variable is set; lines are joined
 * by '\n', and a value's '\n' and '\\' are written "\n" and "\\" so lines
 * split exactly.  Values longer than DE_ENV_VALUE_MAX are cut (*truncated
 * set).  With mask, values are masked as command lines are (mask.h:
 * NAME=VALUE is its key=value form, so PASSWORD=... is masked; flags as
 * de_mask_argv).  *out is NULL when none is set.  0 or -ENOMEM.
 */
int de_identity_env(const char *env, size_t n, const char *const *names, size_t nnames, bool mask,
		    const char *const *flags, size_t nflags, char **out, bool *truncated);

/* ---- user and group names -------------------------------------------------- */

struct de_idcache;

/*
 * A cache of at most max user and max group names, each entry trusted for
 * ttl_ms (a user renamed or added is seen after it); when full, it is
 * emptied and refilled (lookups are cheap next to a scan).  0 or -ENOMEM.
 */
int de_idcache_new(size_t max, int64_t ttl_ms, struct de_idcache **out);
void de_idcache_free(struct de_idcache *c);

/*
 * The name of uid (gid) as getpwuid_r (getgrgid_r) says it, or NULL when
 * it has none; a miss is remembered too.  Valid until the next lookup
 * that fills the cache past max, or de_idcache_free.
 */
const char *de_idcache_user(struct de_idcache *c, uint32_t uid);
const char *de_idcache_group(struct de_idcache *c, uint32_t gid);

/* Lookups that had to ask the system (not answered from the cache). */
uint64_t de_idcache_misses(const struct de_idcache *c);

#endif
