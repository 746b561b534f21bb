/*
 * cmd_config.c — `daemoneye-cli config show|validate`.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "cli.h"
#include "daemoneye/alertmgr.h"

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

int cmd_config(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"format", required_argument, NULL, 'f'},
		{"origins", no_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	bool json = false, origins = false;
	int c;

	if (argc < 2) {
		cli_errorf("config: expected 'show' or 'validate'");
		return EX_USAGE;
	}
	const char *sub = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "f:o", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (strcmp(optarg, "json") == 0) {
				json = true;
			} else if (strcmp(optarg, "yaml") != 0) {
				cli_errorf("unknown format '%s' (yaml or json)", optarg);
				return EX_USAGE;
			}
			break;
		case 'o':
			origins = true;
			break;
		default:
			return EX_USAGE;
		}
	}
	if (cli_no_operands("config", argc, argv) != 0)
		return EX_USAGE;
	if (strcmp(sub, "validate") == 0) {
		/* the alerting section's sinks and exceptions are checked as the agent will */
		struct de_alertmgr_config *ac = NULL;
		struct de_error err = {0};
		if (de_alertmgr_config_load(ctx->cfg, &ac, &err) < 0)
			return cli_fail(&err);
		de_alertmgr_config_free(ac);
		printf("configuration OK\n");
		return 0;
	}
	if (strcmp(sub, "show") != 0) {
		cli_errorf("config: unknown subcommand '%s'", sub);
		return EX_USAGE;
	}
	if (json) {
		char *s = json_dumps(de_config_tree(ctx->cfg), JSON_INDENT(2) | JSON_ENSURE_ASCII);
		printf("%s\n", s ? s : "{}");
		free(s);
	} else {
		print_yaml(de_config_tree(ctx->cfg), ctx->cfg, "", 0, origins);
	}
	return 0;
}
