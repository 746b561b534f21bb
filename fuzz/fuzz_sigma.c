/*
 * fuzz_sigma.c — arbitrary bytes as a Sigma rule: converted (SQL checked
 * by the sandbox); a converted rule's file must load back through the rule
 * loader as exactly one valid rule, equal to it (abort() otherwise, so the
 * fuzzer reports it).  Also compiled once with the planned logsources and no
 * sandbox.  Must never crash or leak; refusals are expected.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/rules.h"
#include "daemoneye/sigma.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct de_validator *v = de_validator_new();
	struct de_sigma_rule r = {0};
	struct de_sigma_options planned = {.planned_logsources = true};
	struct de_error err = {0};

	if (!v)
		return 0;
	if (de_sigma_convert((const char *)data, size, "fuzz.yml", NULL, v, &r, &err) == 0) {
		struct de_rule_set set = {0};
		struct de_rule_problems pr = {0};
		char *text = NULL;
		size_t len = 0;
		if (de_sigma_rule_file(&r, &text, &len, &err) < 0 ||
		    de_rules_parse(text, len, "fuzz.yml", DE_RULE_USER, 0, v, &set, &pr, &err) <
			    0 ||
		    pr.len != 0 || set.len != 1 || !de_rule_equal(&set.items[0], &r.rule)) {
			fprintf(stderr, "fuzz_sigma: a converted rule does not load back: %s\n",
				pr.len ? pr.items[0] : err.message);
			abort();
		}
		free(text);
		de_rule_set_clear(&set);
		de_rule_problems_clear(&pr);
		de_sigma_rule_clear(&r);
	}
	if (de_sigma_convert((const char *)data, size, "fuzz.yml", &planned, NULL, &r, &err) == 0)
		de_sigma_rule_clear(&r);
	de_validator_free(v);
	sqlite3_hard_heap_limit64(0);
	return 0;
}
