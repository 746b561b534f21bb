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
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

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
	/* for shell completion: subcommands, --options, --option=v1|v2 (may be NULL) */
	const char *complete;
};

/* Print "daemoneye-cli: <fmt>" on stderr. */
void cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* ms since the epoch as "YYYY-MM-DD HH:MM:SS" (UTC), "-" for 0 or less.  (common.c) */
void cli_fmt_time(int64_t ms, char buf[32]);
/*
 * The index in names (NULL-terminated) of a --format value, or -1 after
 * saying "<cmd>: unknown format '<arg>' (a, b or c)" on stderr.  (common.c)
 */
int cli_format_arg(const char *cmd, const char *arg, const char *const *names);
/*
 * An option's whole number from 0 to max into *out: 0, or -1 after saying
 * "<cmd>: <opt> wants a number up to <max>, not '<s>'".  (common.c)
 */
int cli_u64_arg(const char *cmd, const char *opt, const char *s, uint64_t max, uint64_t *out);
/*
 * An option's time (de_time_parse, relative to now) into *out: 0, or -1
 * after saying "<cmd>: <opt>: cannot read time '<s>' (...)".  (common.c)
 */
int cli_time_arg(const char *cmd, const char *opt, const char *s, int64_t now, int64_t *out);
/* Report a library error and return its sysexits code (never 0). */
int cli_fail(const struct de_error *err);
/* --format's argument, table or json: 0 (*json set), or EX_USAGE after saying why. */
int cli_table_or_json(const char *cmd, const char *arg, bool *json);
/*
 * After getopt: 0 when no operand is left (optind == argc), or EX_USAGE
 * after saying "<cmd>: unexpected argument '<first>'".  (main.c)
 */
int cli_no_operands(const char *cmd, int argc, char **argv);

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

/*
 * Recording an operator's state change in the audit ledger (common.c):
 * open before the change, record after it.  What cannot be recorded is not
 * done: cli_audit_open returns a sysexits status (after saying why) when
 * audit.enabled and the ledger cannot be opened for writing (created
 * beside the event store when missing), and the caller changes nothing;
 * *out is NULL when auditing is off.  cli_audit_record appends one entry
 * (actor "cli:uid=N", action, payload taken: a JSON object), commits it
 * and closes a (NULL: nothing to do): 0, or a status after saying the
 * change was made but not recorded.  The agent's next checkpoint covers it.
 */
struct de_audit;
int cli_audit_open(struct cli_ctx *ctx, struct de_audit **out);
int cli_audit_record(struct de_audit *a, const char *action, json_t *payload);
/* Close an audit ledger opened for a change that was not made (NULL accepted). */
void cli_audit_abandon(struct de_audit *a);
/* Record `action` with payload (a JSON object, taken) if the ledger can be
   written, else say on stderr that it is not recorded: for what is refused
   anyway (a query the sandbox refuses), which the ledger cannot stop. */
void cli_audit_note(struct cli_ctx *ctx, const char *action, json_t *payload);

/* Command groups (one file each). */
int cmd_config(struct cli_ctx *ctx, int argc, char **argv);
int cmd_processes(struct cli_ctx *ctx, int argc, char **argv);
int cmd_stats(struct cli_ctx *ctx, int argc, char **argv);
int cmd_query(struct cli_ctx *ctx, int argc, char **argv);
int cmd_rules(struct cli_ctx *ctx, int argc, char **argv);
int cmd_audit(struct cli_ctx *ctx, int argc, char **argv);  /* cmd_audit.c */
int cmd_keygen(struct cli_ctx *ctx, int argc, char **argv); /* cmd_audit.c */
int cmd_alerts(struct cli_ctx *ctx, int argc, char **argv); /* cmd_alerts.c */
int cmd_health(struct cli_ctx *ctx, int argc, char **argv);
/* `completion bash|zsh|fish`: a script from the command table (cmd_completion.c). */
int cmd_completion(const struct cli_command *cmds, size_t n, int argc, char **argv);
int cmd_connections(struct cli_ctx *ctx, int argc, char **argv);
int cmd_fleet(struct cli_ctx *ctx, int argc, char **argv); /* cmd_fleet.c */

/* `rules convert --from sigma FILE` and `rules import --sigma PATH...` (rules_sigma.c). */
int rules_sigma_convert(struct cli_ctx *ctx, const char *file);
int rules_sigma_import(struct cli_ctx *ctx, int n, char **paths, const char *min_status);

#endif
