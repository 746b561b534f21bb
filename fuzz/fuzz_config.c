/*
 * fuzz_config.c — arbitrary bytes as a configuration file, then as an
 * environment value and a --set assignment.  Must never crash or leak;
 * errors are expected.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct de_config_builder *b = de_config_builder_new();
	struct de_config *c = NULL;
	struct de_error err = {0};
	char *text = malloc(size + 1);
	uint64_t u;

	if (!b || !text)
		goto out;
	memcpy(text, data, size);
	text[size] = '\0';
	de_config_builder_add_embedded_defaults(b, &err);
	de_config_builder_add_yaml(b, text, size, "fuzz", &err);
	if (de_config_build(b, &c, &err) == 0) {
		de_config_get_u64(c, "app.scan_interval_ms", &u, &err);
		de_config_free(c);
		c = NULL;
	}
	de_config_builder_free(b);
	b = de_config_builder_new();
	if (!b)
		goto out;
	{
		char *env[2] = {NULL, NULL};
		char *set = NULL;
		if (asprintf(&env[0], "DAEMONEYE_APP__SCAN_INTERVAL_MS=%s", text) >= 0) {
			de_config_builder_add_environment(b, NULL, env, &err);
			free(env[0]);
		}
		if (asprintf(&set, "app.state_dir=%s", text) >= 0) {
			de_config_builder_add_set(b, set, &err);
			free(set);
		}
		de_config_builder_add_set(b, text, &err);
		if (de_config_build(b, &c, &err) == 0)
			de_config_free(c);
	}
out:
	de_config_builder_free(b);
	free(text);
	return 0;
}
