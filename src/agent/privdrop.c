/*
 * privdrop.c — the worker's user (see privdrop.h).
 *
 * The user is app.run_as_user (default "daemoneye"), or "nobody" when that
 * user does not exist.  The parent gives the state directory and the event
 * store's files to it once at start; each worker it starts becomes that
 * user in the child, before execve, so no worker ever runs with any
 * privilege.  setuid(0) failing afterwards is checked, so a partial drop is
 * never mistaken for a full one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemoneye/fileio.h"
#include "daemoneye/log.h"
#include "privdrop.h"

static int lookup(const char *name, struct agent_user *out, struct de_error *err)
{
	struct passwd *pw = getpwnam(name);

	if (!pw) {
		de_log_info("user %s does not exist: the worker runs as nobody", name);
		name = "nobody";
		if (!(pw = getpwnam(name)))
			return de_error_set(err, DE_ERR_CONFIGURATION, ENOENT,
					    "app.run_as_user: neither that user nor nobody exists");
	}
	if (pw->pw_uid == 0)
		return de_error_set(err, DE_ERR_CONFIGURATION, EINVAL,
				    "app.run_as_user: %s is root; name an unprivileged user", name);
	snprintf(out->name, sizeof(out->name), "%s", name);
	out->uid = pw->pw_uid;
	out->gid = pw->pw_gid;
	return 0;
}

/*
 * The lookup runs in a child that exits at once: NSS may load modules
 * (libnss_systemd and libm, 0.6 MB resident) that the parent, which stays
 * for months within 4 MB, would otherwise keep mapped for nothing.
 */
int agent_user_resolve(const char *name, struct agent_user *out, struct de_error *err)
{
	struct {
		struct agent_user u;
		struct de_error e;
		int rc;
	} r;
	int fd[2], st;
	pid_t pid;
	ssize_t n = 0;

	if (pipe2(fd, O_CLOEXEC) < 0)
		return de_error_set(err, DE_ERR_IO, errno, "pipe: %s", strerror(errno));
	if ((pid = fork()) < 0) {
		close(fd[0]);
		close(fd[1]);
		return de_error_set(err, DE_ERR_IO, errno, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		close(fd[0]);
		memset(&r, 0, sizeof(r));
		r.rc = lookup(name, &r.u, &r.e);
		_exit(write(fd[1], &r, sizeof(r)) == (ssize_t)sizeof(r) ? 0 : 1);
	}
	close(fd[1]);
	while ((n = read(fd[0], &r, sizeof(r))) < 0 && errno == EINTR)
		;
	close(fd[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(r))
		return de_error_set(err, DE_ERR_IO, EIO, "cannot look up app.run_as_user %s", name);
	if (r.rc < 0) {
		if (err)
			*err = r.e;
		return r.rc;
	}
	*out = r.u;
	return 0;
}

static void give(const char *path, uid_t uid, gid_t gid)
{
	/* only what exists; never follow a symlink */
	(void)fchownat(AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW);
}

/* An SQLite file and the files beside it that SQLite makes (the store, the ledger). */
static const char *const sidecars[] = {"", "-wal", "-shm", "-journal", ".lock"};

static void give_db(const struct agent_user *u, const char *db)
{
	char buf[4096];

	for (size_t i = 0; i < sizeof(sidecars) / sizeof(sidecars[0]); i++) {
		snprintf(buf, sizeof(buf), "%s%s", db, sidecars[i]);
		give(buf, u->uid, u->gid);
	}
}

void agent_give_state(const struct agent_user *u, const char *state, const char *db)
{
	int fd = open(state, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;
	struct dirent *e;

	if (fd >= 0) {
		(void)fchown(fd, u->uid, u->gid);
		if ((d = fdopendir(fd))) {
			while ((e = readdir(d)))
				if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
					(void)fchownat(dirfd(d), e->d_name, u->uid, u->gid,
						       AT_SYMLINK_NOFOLLOW);
			closedir(d);
		} else {
			close(fd);
		}
	}
	if (db)
		give_db(u, db);
}

/* 1 when the directory holds nothing but the ledger's files, 0 when it holds
   others, -errno when it cannot be read. */
static int ledger_dir_own(const char *dir, const char *base)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = strlen(base);
	int own = 1;

	if (!d)
		return -errno;
	while (own && (e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		own = 0;
		for (size_t i = 0; i < sizeof(sidecars) / sizeof(sidecars[0]); i++)
			if (strncmp(e->d_name, base, n) == 0 &&
			    strcmp(e->d_name + n, sidecars[i]) == 0)
				own = 1;
	}
	closedir(d);
	return own;
}

int agent_give_ledger(const struct agent_user *u, const char *ledger, const char *state,
		      struct de_error *err)
{
	char dir[4096], base[256];
	const char *slash = strrchr(ledger, '/');
	struct stat st;
	int own, rc;

	if (!slash || (size_t)(slash - ledger) >= sizeof(dir) ||
	    strlen(slash + 1) >= sizeof(base) || !slash[1])
		return de_error_set(err, DE_ERR_CONFIGURATION, EINVAL,
				    "audit.path %s: name a file by its absolute path", ledger);
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - ledger), ledger);
	snprintf(base, sizeof(base), "%s", slash + 1);
	if (!*dir)
		snprintf(dir, sizeof(dir), "/");
	if (strcmp(dir, state) == 0)
		return 0; /* agent_give_state's */
	if (lstat(dir, &st) < 0 && errno == ENOENT) {
		/* ours to make: the worker's, like the state directory */
		if ((rc = de_make_dirs(dir, 0750)) < 0)
			return de_error_set(err, DE_ERR_IO, -rc,
					    "audit.path: cannot create the directory %s: %s", dir,
					    strerror(-rc));
		give(dir, u->uid, u->gid);
		return 0;
	}
	own = ledger_dir_own(dir, base);
	if (own == 1)
		give(dir, u->uid, u->gid);
	give_db(u, ledger);
	if (own == 1 || (lstat(dir, &st) == 0 && (st.st_uid == u->uid || (st.st_mode & S_IWOTH))))
		return 0;
	/* a directory shared with other files is never given away: SQLite
	   makes the ledger's -wal and -shm beside it, as the worker */
	return de_error_set(err, DE_ERR_CONFIGURATION, EACCES,
			    "audit.path %s: its directory %s holds other files and is not the "
			    "worker's (user %s), which could not write the ledger there: give the "
			    "ledger a directory of its own",
			    ledger, dir, u->name);
}

int agent_become(const struct agent_user *u)
{
	/* nothing the worker could ever execute may give it a capability back */
	for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			return -errno;
	if (setgroups(0, NULL) < 0 || setresgid(u->gid, u->gid, u->gid) < 0 ||
	    setresuid(u->uid, u->uid, u->uid) < 0)
		return -errno;
	if (setuid(0) == 0)
		return -EPERM;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return 0;
}
