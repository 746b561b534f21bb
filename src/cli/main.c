/*
 * daemoneye-cli — the operator's tool.  Read-only against the stores.
 *
 *   daemoneye-cli [-c FILE] [--set KEY=VALUE]... COMMAND [ARGS]
 *
 * Commands: config show [--format yaml|json] [--origins], config validate.
 * Exit status follows sysexits(3): 64 usage, 78 configuration.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "daemoneye/config.h"
#include "daemoneye/log.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: daemoneye-cli [-c FILE] [--set KEY=VALUE]... COMMAND [ARGS]\n"
		   "\n"
		   "Commands:\n"
		   "  config show [--format yaml|json] [--origins]\n"
		   "                        print the effective configuration (with --origins,\n"
		   "                        where each value came from)\n"
		   "  config validate       check the configuration; exit 0 or 78\n"
		   "\n"
		   "Options:\n"
		   "  -c, --config FILE     read FILE instead of the standard configuration files\n"
		   "  -s, --set KEY=VALUE   override one setting (repeatable)\n"
		   "  -h, --help            show this help\n"
		   "  -V, --version         show the version\n"
		   "See daemoneye-cli(1).\n");
}

/* YAML for people: keys plain, strings JSON-quoted (valid YAML). */
static void print_yaml(const json_t *node, const struct de_config *cfg, const char *path,
		       int indent, bool origins)
{
	const char *k;
	json_t *v;

	json_object_foreach ((json_t *)node, k, v) {
		char sub[1024];
		snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", k);
		if (json_is_object(v)) {
			printf("%*s%s:\n", indent, "", k);
			print_yaml(v, cfg, sub, indent + 2, origins);
			continue;
		}
		char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
		printf("%*s%s: %s", indent, "", k, s ? s : "?");
		if (origins)
			printf("  # %s", de_config_origin(cfg, sub));
		printf("\n");
		free(s);
	}
}

static int cmd_config(struct de_config *cfg, int argc, char **argv)
{
	static const struct option opts[] = {
		{"format", required_argument, NULL, 'f'},
		{"origins", no_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool json = false, origins = false;
	int c;

	if (argc < 2) {
		fprintf(stderr, "daemoneye-cli: config: expected 'show' or 'validate'\n");
		return EX_USAGE;
	}
	const char *sub = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "f:oh", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (strcmp(optarg, "json") == 0)
				json = true;
			else if (strcmp(optarg, "yaml") != 0) {
				fprintf(stderr,
					"daemoneye-cli: unknown format '%s' (yaml or json)\n",
					optarg);
				return EX_USAGE;
			}
			break;
		case 'o':
			origins = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return EX_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "daemoneye-cli: unexpected argument '%s'\n", argv[optind]);
		return EX_USAGE;
	}
	if (strcmp(sub, "validate") == 0) {
		printf("configuration OK\n");
		return 0;
	}
	if (strcmp(sub, "show") != 0) {
		fprintf(stderr, "daemoneye-cli: config: unknown subcommand '%s'\n", sub);
		return EX_USAGE;
	}
	if (json) {
		char *s = json_dumps(de_config_tree(cfg), JSON_INDENT(2) | JSON_ENSURE_ASCII);
		printf("%s\n", s ? s : "{}");
		free(s);
	} else {
		print_yaml(de_config_tree(cfg), cfg, "", 0, origins);
	}
	return 0;
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
	struct de_config *cfg = NULL;
	struct de_error err = {0};
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
	src.sets = sets;
	de_log_init("daemoneye-cli", DE_LOG_WARN, DE_LOG_TEXT, NULL);
	const char *cmd = argv[optind];
	if (strcmp(cmd, "config") != 0) {
		fprintf(stderr, "daemoneye-cli: unknown command '%s'\n", cmd);
		usage(stderr);
		free(sets);
		return EX_USAGE;
	}
	if (de_config_load(&src, &cfg, &err) < 0) {
		fprintf(stderr, "daemoneye-cli: %s\n", err.message);
		free(sets);
		return de_error_exit_code(&err);
	}
	status = cmd_config(cfg, argc - optind, argv + optind);
	de_config_free(cfg);
	free(sets);
	return status;
}
