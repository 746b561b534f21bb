/*
 * fuzz_sqltok.c — arbitrary text as a rule's SQL, as rule files hold it:
 * the tokenizer's verdict on its shape (sqltok.h), whose offsets must stay
 * inside the text; when the rule is a plain filter, the detection engine
 * runs it over a batch twice (the second time through the prefilter, which
 * copies its expression into a larger statement) on an empty schema, under
 * a short timeout.  The lists of literals after IN it finds in any text
 * must lie inside it, in order.  Must never crash or leak; refusals are
 * expected.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/detect.h"
#include "daemoneye/sqltok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct de_sql_filter f;
	struct de_validator *v = NULL;
	struct de_engine *e = NULL;
	struct de_error err = {0};
	char *sql = malloc(size + 1);

	if (!sql)
		return 0;
	memcpy(sql, data, size);
	sql[size] = '\0';
	/* the literal lists of any text: in order, inside it, each a ')' */
	struct de_sql_inlist in[8];
	size_t k = de_sqltok_in_lists(sql, size, in, 8);
	for (size_t i = 0; i < k && i < 8; i++)
		if (in[i].first_off + in[i].first_len > in[i].close_off ||
		    in[i].close_off >= size || sql[in[i].close_off] != ')' ||
		    (i && in[i].first_off <= in[i - 1].close_off))
			abort();
	if (de_sqltok_filter(sql, size, &f) == 0) {
		if (f.alias_off + f.alias_len > size || f.expr_off + f.expr_len > size ||
		    !f.expr_len)
			abort();
		if ((v = de_validator_new()))
			de_validator_with_timeout(v, 50);
		if (v && de_engine_open(NULL, v, &e, &err) == 0) {
			struct de_rule r = {.id = (char *)"fuzz",
					    .name = (char *)"fuzz",
					    .sql_query = sql,
					    .enabled = true};
			uint32_t pids[] = {1, 2};
			for (int round = 0; round < 2; round++) {
				struct de_alert_list alerts = {0};
				struct de_rule_result res;
				de_engine_run_pids(e, &r, 1, pids, 2, 1, &alerts, &res);
				de_alert_list_clear(&alerts);
			}
		}
	}
	de_engine_close(e);
	de_validator_free(v);
	free(sql);
	return 0;
}
