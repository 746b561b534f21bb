/*
 * common.c — what the daemoneye-cli commands share (cli.h): finding and
 * opening the event store read-only the way the agent finds it, and a
 * read-only detection engine on it.
 */
#include <errno.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

#include "cli.h"
#include "daemoneye/detect.h"
#include "daemoneye/store.h"

int cli_open_store(struct cli_ctx *ctx, struct de_store **out)
{
	struct de_store_config sc = {.read_only = true};
	struct de_error err = {0};
	char *path = NULL;
	struct stat st;
	int rc;

	if (de_config_store_path(ctx->cfg, &path, &err) < 0)
		return cli_fail(&err);
	if (stat(path, &st) < 0) {
		cli_errorf("no event store at %s: %s (run daemoneye-agent first, or set "
			   "database.path or app.state_dir)",
			   path, strerror(errno));
		free(path);
		return errno == EACCES ? EX_NOPERM : EX_NOINPUT;
	}
	sc.path = path;
	rc = de_store_open(&sc, out, &err);
	free(path);
	return rc < 0 ? cli_fail(&err) : 0;
}

int cli_open_engine(struct cli_ctx *ctx, struct de_validator *v, struct de_engine **out,
		    struct de_error *err)
{
	struct de_store_config sc = {.read_only = true};
	struct de_store *store = NULL;
	char *path = NULL;
	int rc;

	if ((rc = de_config_store_path(ctx->cfg, &path, err)) < 0)
		return rc;
	/* the store's own checks first: exists, is ours, a version we know */
	sc.path = path;
	if ((rc = de_store_open(&sc, &store, err)) < 0) {
		if (err->code == ENOENT)
			de_error_set(err, DE_ERR_IO, ENOENT,
				     "no event store at %s: run daemoneye-agent first, or set "
				     "database.path / app.state_dir",
				     path);
		goto out;
	}
	de_store_close(store);
	rc = de_engine_open(path, v, out, err);
out:
	free(path);
	return rc;
}

void cli_fmt_time(int64_t ms, char buf[32])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tmv;

	if (ms <= 0 || !gmtime_r(&t, &tmv)) {
		snprintf(buf, 32, "-");
		return;
	}
	strftime(buf, 32, "%Y-%m-%d %H:%M:%S", &tmv);
}
