/*
 * fuzz_rules.c — arbitrary bytes as a rule file: parsed (SQL checked by the
 * validator), then whatever loaded is exported as YAML and parsed again.
 * Must never crash or leak; problems are expected.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct de_validator *v = de_validator_new();
	struct de_rule_set set = {0}, back = {0};
	struct de_rule_problems pr = {0};
	struct de_error err = {0};
	char *buf = NULL;
	size_t len = 0;

	if (!v)
		return 0;
	de_rules_parse((const char *)data, size, "fuzz.yaml", DE_RULE_FILE, 0, v, &set, &pr, &err);
	if (set.len) {
		const struct de_rule **all = calloc(set.len, sizeof(*all));
		FILE *f = open_memstream(&buf, &len);
		for (size_t i = 0; all && i < set.len; i++)
			all[i] = &set.items[i];
		if (all && f && de_rules_write_yaml(f, all, set.len, &err) == 0 && fflush(f) == 0)
			de_rules_parse(buf, len, "export.yaml", DE_RULE_USER, 0, v, &back, &pr,
				       &err);
		if (f)
			fclose(f);
		free(all);
	}
	free(buf);
	de_rule_set_clear(&set);
	de_rule_set_clear(&back);
	de_rule_problems_clear(&pr);
	de_validator_free(v);
	sqlite3_hard_heap_limit64(0);
	return 0;
}
