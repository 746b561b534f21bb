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

/* name, summary for --help, function, and the words that follow it for shell
   completion (cmd_completion.c: subcommands, --options, --option=value|value) */
static const struct cli_command commands[] = {
	{"config", "show [--format yaml|json] [--origins] | validate", cmd_config,
	 "show validate --format=yaml|json --origins"},
	{"processes", "[--pid N] [--name S] [--since T] [--until T] [--limit N] [--format F]",
	 cmd_processes,
	 "--pid --name --since --until --limit --offset --scan --live "
	 "--format=table|json|ndjson|csv"},
	{"connections", "[--pid N] [--since T] [--open] [--limit N] [--format F]", cmd_connections,
	 "--pid --since --open --limit --format=table|json|ndjson"},
	{"stats", "[--format table|json]  rows, sizes and time span of the event store", cmd_stats,
	 "--format=table|json"},
	{"query", "[--format F] [--param K=V]... [--limit N] [--timeout MS] SQL", cmd_query,
	 "--param --limit --timeout --format=table|json|ndjson|csv"},
	{"rules",
	 "list|show ID|validate FILE...|test FILE|ID|import FILE|export [ID]|enable ID|disable "
	 "ID|schema",
	 cmd_rules,
	 "list show validate test import export enable disable schema --format=table|text|json"},
	{"alerts",
	 "list [--since T] [--severity S] [--rule ID] [--status S] [--suppressed] | show ID | dlq "
	 "list|retry|purge | test --sink NAME",
	 cmd_alerts,
	 "list show dlq test retry purge --since --severity=low|medium|high|critical --rule "
	 "--status=open|resolved --suppressed --limit --all --before --sink --timeout "
	 "--format=table|json|ndjson|csv"},
	{"audit", "verify|log|checkpoint|prove SEQ|consistency OLD NEW  the ledger", cmd_audit,
	 "verify log checkpoint prove consistency --checkpoint --pubkey --since --actor --action "
	 "--limit --sign --export --size --format=table|text|json|ndjson"},
	{"keygen", "--out DIR  an Ed25519 key pair for signing audit checkpoints", cmd_keygen,
	 "--out"},
	{"health", "[--format table|json]  the agent's components and their status", cmd_health,
	 "--format=table|json"},
	{"fleet",
	 "id|init|status|show KIND|alerts|hosts|verify HOST|query  the fleet (NATS JetStream)",
	 cmd_fleet,
	 "id init status show alerts hosts verify query --host --limit --ledger --pubkey --key "
	 "--hosts --all --timeout --format=text|json|ndjson"},
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

int cli_table_or_json(const char *cmd, const char *arg, bool *json)
{
	if (strcmp(arg, "json") == 0 || strcmp(arg, "table") == 0) {
		*json = arg[0] == 'j';
		return 0;
	}
	cli_errorf("%s: unknown format '%s' (table or json)", cmd, arg);
	return EX_USAGE;
}

int cli_no_operands(const char *cmd, int argc, char **argv)
{
	if (optind >= argc)
		return 0;
	cli_errorf("%s: unexpected argument '%s'", cmd, argv[optind]);
	return EX_USAGE;
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
	/* hidden: the build makes the shell completion scripts with it */
	if (strcmp(argv[optind], "completion") == 0) {
		free(sets);
		return cmd_completion(commands, NCOMMANDS, argc - optind, argv + optind);
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
