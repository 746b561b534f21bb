/*
 * daemoneye-cli — the operator's tool.  Read-only against the stores.
 *
 *   daemoneye-cli [-c FILE] [--set KEY=VALUE]... COMMAND [ARGS]
 *
 * main.c parses the global options, loads the configuration and dispatches
 * to the command table below; each command group lives in its own
 * cmd_<group>.c.  Exit status follows sysexits(3).
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "cli.h"
#include "daemoneye/alert.h"
#include "daemoneye/log.h"
#include "daemoneye/term.h"

static const struct cli_command commands[] = {
	{"config", "show [--format yaml|json] [--origins] | validate", cmd_config},
	{"processes", "[--pid N] [--name S] [--since T] [--until T] [--limit N] [--format F]",
	 cmd_processes},
	{"connections", "[--pid N] [--since T] [--open] [--limit N] [--format F]", cmd_connections},
	{"stats", "[--format table|json]  rows, sizes and time span of the event store", cmd_stats},
	{"query", "[--format F] [--param K=V]... [--limit N] [--timeout MS] SQL", cmd_query},
	{"rules",
	 "list|show ID|validate FILE...|test FILE|ID|import FILE|export [ID]|enable ID|disable "
	 "ID|schema",
	 cmd_rules},
	{"alerts",
	 "list [--since T] [--severity S] [--rule ID] [--status S] [--suppressed] | show ID | dlq "
	 "list|retry|purge | test --sink NAME",
	 cmd_alerts},
	{"audit", "verify|log|checkpoint|prove SEQ|consistency OLD NEW  the ledger", cmd_audit},
	{"keygen", "--out DIR  an Ed25519 key pair for signing audit checkpoints", cmd_keygen},
	{"fleet",
	 "id|init|status|show KIND|alerts|hosts|verify HOST|query  the fleet (NATS JetStream)",
	 cmd_fleet},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

void cli_errorf(const char *fmt, ...)
{
	va_list ap;
	fputs("daemoneye-cli: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_fail(const struct de_error *err)
{
	int code = de_error_exit_code(err);

	cli_errorf("%s", err->message[0] ? err->message : "internal error (no message)");
	return code ? code : EX_SOFTWARE; /* a failure never exits 0 */
}

static void usage(FILE *f)
{
	fprintf(f, "usage: daemoneye-cli [-c FILE] [--set KEY=VALUE]... COMMAND [ARGS]\n"
		   "\nCommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nOptions:\n"
		   "  -c, --config FILE     read FILE instead of the standard configuration files\n"
		   "  -s, --set KEY=VALUE   override one setting (repeatable)\n"
		   "  -h, --help            show this help\n"
		   "  -V, --version         show the version\n"
		   "See daemoneye-cli(1).\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"set", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct de_config_sources src = {0};
	const char **sets = calloc((size_t)argc + 1, sizeof(char *));
	struct cli_ctx ctx = {0};
	struct de_error err = {0};
	const struct cli_command *cmd = NULL;
	int c, status;

	if (!sets)
		return EX_OSERR;
	/* "+": stop at the command so its own options are left to it */
	while ((c = getopt_long(argc, argv, "+c:s:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			src.file = optarg;
			break;
		case 's':
			sets[src.nsets++] = optarg;
			break;
		case 'h':
			usage(stdout);
			free(sets);
			return 0;
		case 'V':
			printf("daemoneye-cli %s\n", DE_VERSION);
			free(sets);
			return 0;
		default:
			usage(stderr);
			free(sets);
			return EX_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		free(sets);
		return EX_USAGE;
	}
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(argv[optind], commands[i].name) == 0)
			cmd = &commands[i];
	if (!cmd) {
		cli_errorf("unknown command '%s'", argv[optind]);
		usage(stderr);
		free(sets);
		return EX_USAGE;
	}
	src.sets = sets;
	de_log_init("daemoneye-cli", DE_LOG_WARN, DE_LOG_TEXT, NULL);
	if (de_config_load(&src, &ctx.cfg, &err) < 0) {
		status = cli_fail(&err);
		free(sets);
		return status;
	}
	ctx.color = de_use_color(stdout);
	int cargc = argc - optind;
	char **cargv = argv + optind;
	optind = 1; /* commands parse their own options from cargv[1] */
	status = cmd->run(&ctx, cargc, cargv);
	/* every command's output, checked once (the commands print with stdio
	   and need not check each call) */
	if ((fflush(stdout) != 0 || ferror(stdout)) && status == 0) {
		cli_errorf("cannot write to standard output: %s", strerror(errno));
		status = EX_IOERR;
	}
	de_config_free(ctx.cfg);
	free(sets);
	return status;
}
