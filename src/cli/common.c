/*
 * common.c — what the daemoneye-cli commands share (cli.h): finding and
 * opening the event store read-only the way the agent finds it, a
 * read-only detection engine on it, times as the tables show them, the
 * options several commands take (--format, numbers, times) read and refused
 * alike, and recording an operator's state change in the audit ledger.
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli.h"
#include "daemoneye/audit.h"
#include "daemoneye/fileio.h"
#include "daemoneye/clock.h"
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

/* ---- the audit ledger -------------------------------------------------------------- */

/* Open the ledger to append (NULL when auditing is off); the CLI's
   checkpoints are unsigned: the agent signs (through its parent), and an
   entry of ours is in the next one it makes. */
static int ledger_open(struct cli_ctx *ctx, struct de_audit **out, struct de_error *err)
{
	struct de_audit_settings s = {0};
	struct de_audit_config c;
	char *dir = NULL;
	int rc = 0, mk;

	*out = NULL;
	if ((rc = de_audit_settings_load(ctx->cfg, &s, err)) < 0 || !s.enabled)
		goto out;
	de_audit_settings_config(&s, false, &c);
	c.chain.enable_signatures = false;
	if (!(dir = strdup(s.path))) {
		rc = de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
		goto out;
	}
	if ((mk = de_make_dirs(dirname(dir), 0755)) < 0)
		rc = de_error_set(err, DE_ERR_IO, -mk, "cannot create the directory of %s: %s",
				  s.path, strerror(-mk));
	else
		rc = de_audit_open(&c, out, err);
out:
	free(dir);
	de_audit_settings_clear(&s);
	return rc;
}

int cli_audit_open(struct cli_ctx *ctx, struct de_audit **out)
{
	struct de_error err = {0};

	if (ledger_open(ctx, out, &err) == 0)
		return 0;
	if (err.category == DE_ERR_CONFIGURATION)
		return cli_fail(&err);
	cli_errorf("nothing changed: the audit ledger cannot record it (audit.enabled):");
	return cli_fail(&err);
}

/* Append one entry (actor "cli:uid=N"; payload taken), commit, close a. */
static int append_close(struct de_audit *a, const char *action, json_t *payload,
			struct de_error *err)
{
	struct de_audit_entry e = {.action = action};
	char actor[32], *text = NULL;
	int rc = 0;

	snprintf(actor, sizeof(actor), "cli:uid=%u", (unsigned)getuid());
	e.actor = actor;
	if (!payload || !(text = json_dumps(payload, JSON_COMPACT)))
		rc = de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	e.payload = text;
	if (rc == 0)
		rc = de_audit_append(a, &e, NULL, err);
	if (rc == 0)
		rc = de_audit_flush(a, err);
	if (de_audit_close(a, rc == 0 ? err : NULL) < 0 && rc == 0)
		rc = -1;
	free(text);
	json_decref(payload);
	return rc;
}

void cli_audit_note(struct cli_ctx *ctx, const char *action, json_t *payload)
{
	struct de_audit *a = NULL;
	struct de_error err = {0};
	int rc = ledger_open(ctx, &a, &err);

	if (rc == 0 && a)
		rc = append_close(a, action, payload, &err);
	else
		json_decref(payload);
	if (rc < 0)
		cli_errorf("note: %s is not recorded in the audit ledger: %s", action, err.message);
}

int cli_audit_record(struct de_audit *a, const char *action, json_t *payload)
{
	struct de_error err = {0};

	if (!a) {
		json_decref(payload);
		return 0;
	}
	if (append_close(a, action, payload, &err) < 0) {
		cli_errorf("done, but not recorded in the audit ledger (%s):", action);
		return cli_fail(&err);
	}
	return 0;
}

void cli_audit_abandon(struct de_audit *a)
{
	/* nothing was queued: closing writes nothing */
	(void)de_audit_close(a, NULL);
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

int cli_format_arg(const char *cmd, const char *arg, const char *const *names)
{
	char list[128] = "";
	size_t n = 0;

	for (; names[n]; n++)
		if (strcmp(arg, names[n]) == 0)
			return (int)n;
	for (size_t i = 0; i < n; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
			 i == 0	      ? ""
			 : i + 1 == n ? " or "
				      : ", ",
			 names[i]);
	cli_errorf("%s: unknown format '%s' (%s)", cmd, arg, list);
	return -1;
}

int cli_u64_arg(const char *cmd, const char *opt, const char *s, uint64_t max, uint64_t *out)
{
	char *end;

	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (!*s || *end || errno || s[0] == '-' || v > max) {
		cli_errorf("%s: %s wants a number up to %llu, not '%s'", cmd, opt,
			   (unsigned long long)max, s);
		return -1;
	}
	*out = v;
	return 0;
}

int cli_time_arg(const char *cmd, const char *opt, const char *s, int64_t now, int64_t *out)
{
	if (de_time_parse(s, now, out) == 0)
		return 0;
	cli_errorf("%s: %s: cannot read time '%s' (RFC 3339 like 2026-11-25T09:30:00Z, a date, "
		   "now, or relative like -1h)",
		   cmd, opt, s);
	return -1;
}
