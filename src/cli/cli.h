/*
 * cli.h — what the daemoneye-cli command files share: the command table
 * entry type, the global options, and small helpers.  One file per command
 * group (cmd_config.c, ...); main.c parses global options and dispatches.
 *
 * A command returns a sysexits(3) status.  It prints results on stdout and
 * errors on stderr as "daemoneye-cli: <message>".
 */
#ifndef DAEMONEYE_CLI_H
#define DAEMONEYE_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "daemoneye/config.h"
#include "daemoneye/error.h"
#include "daemoneye/store.h"

struct cli_ctx {
	struct de_config *cfg; /* the effective configuration (owned by main) */
	bool color;	       /* colour allowed on stdout (NO_COLOR, TERM=dumb) */
};

struct cli_command {
	const char *name;    /* first word on the command line */
	const char *summary; /* one line for --help */
	/* argv[0] is the command name; getopt state is reset before the call */
	int (*run)(struct cli_ctx *ctx, int argc, char **argv);
};

/* Print "daemoneye-cli: <fmt>" on stderr. */
void cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Report a library error and return its sysexits code (never 0). */
int cli_fail(const struct de_error *err);

/*
 * Open the event store read-only where the agent keeps it
 * (de_config_store_path).  0, or a sysexits status after printing the
 * reason (66 when there is no store yet).  (common.c)
 */
int cli_open_store(struct cli_ctx *ctx, struct de_store **out);

struct de_validator;
struct de_engine;
/* A read-only detection engine on the event store (missing store: IoError ENOENT).  (common.c) */
int cli_open_engine(struct cli_ctx *ctx, struct de_validator *v, struct de_engine **out,
		    struct de_error *err);

/* Command groups (one file each). */
int cmd_config(struct cli_ctx *ctx, int argc, char **argv);
int cmd_processes(struct cli_ctx *ctx, int argc, char **argv);
int cmd_stats(struct cli_ctx *ctx, int argc, char **argv);
int cmd_query(struct cli_ctx *ctx, int argc, char **argv);
int cmd_rules(struct cli_ctx *ctx, int argc, char **argv);
int cmd_audit(struct cli_ctx *ctx, int argc, char **argv);  /* cmd_audit.c */
int cmd_keygen(struct cli_ctx *ctx, int argc, char **argv); /* cmd_audit.c */
int cmd_alerts(struct cli_ctx *ctx, int argc, char **argv); /* cmd_alerts.c */

/* `rules convert --from sigma FILE` and `rules import --sigma PATH...` (rules_sigma.c). */
int rules_sigma_convert(struct cli_ctx *ctx, const char *file);
int rules_sigma_import(struct cli_ctx *ctx, int n, char **paths, const char *min_status);

#endif
