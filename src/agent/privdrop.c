/*
 * privdrop.c — the agent stops being root once procmond is running.
 *
 * The user is app.run_as_user (default "daemoneye"), or "nobody" when that
 * user does not exist.  Before switching, the state directory (and the
 * files directly in it, symlinks untouched) and the event store's files are
 * given to that user, so that the agent can still write them; afterwards
 * the state directory must be reachable, otherwise the agent stops with a
 * message that says what to change.  setuid(0) failing afterwards is
 * checked, so a partial drop is never mistaken for a full one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemoneye/log.h"
#include "privdrop.h"

static void give(const char *path, uid_t uid, gid_t gid)
{
	/* only what exists; never follow a symlink */
	(void)fchownat(AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW);
}

static void give_dir(const char *dir, uid_t uid, gid_t gid)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;
	struct dirent *e;

	if (fd < 0)
		return;
	(void)fchown(fd, uid, gid);
	if (!(d = fdopendir(fd))) {
		close(fd);
		return;
	}
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			(void)fchownat(dirfd(d), e->d_name, uid, gid, AT_SYMLINK_NOFOLLOW);
	closedir(d);
}

int agent_drop_privileges(const char *user, const char *state, const char *db, struct de_error *err)
{
	struct passwd *pw = getpwnam(user);
	char buf[4096];

	if (!pw) {
		de_log_info("user %s does not exist: running as nobody", user);
		user = "nobody";
		if (!(pw = getpwnam(user)))
			return de_error_set(err, DE_ERR_CONFIGURATION, ENOENT,
					    "app.run_as_user: neither %s nor nobody exists", user);
	}
	if (pw->pw_uid == 0)
		return de_error_set(err, DE_ERR_CONFIGURATION, EINVAL,
				    "app.run_as_user: %s is root; name an unprivileged user", user);
	give_dir(state, pw->pw_uid, pw->pw_gid);
	if (db) {
		static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
		for (size_t i = 0; i < 4; i++) {
			snprintf(buf, sizeof(buf), "%s%s", db, sfx[i]);
			give(buf, pw->pw_uid, pw->pw_gid);
		}
	}
	if (setgroups(0, NULL) < 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
		return de_error_set(err, DE_ERR_IO, errno, "cannot switch to user %s: %s", user,
				    strerror(errno));
	if (setuid(0) == 0)
		return de_error_set(err, DE_ERR_IO, EPERM,
				    "still able to become root after switching to %s", user);
	if (access(state, W_OK | X_OK) < 0)
		return de_error_set(err, DE_ERR_IO, EACCES,
				    "state directory %s is not writable by %s (its parents must be "
				    "searchable by that user; or set app.state_dir or "
				    "app.run_as_user)",
				    state, user);
	de_log_info("running as user %s (uid %u)", user, (unsigned)pw->pw_uid);
	return 0;
}
