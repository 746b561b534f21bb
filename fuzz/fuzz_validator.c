/*
 * fuzz_validator.c — arbitrary text as rule SQL: validated against the
 * rule-visible schema, and when accepted, run over it (empty relations)
 * under a short timeout.  Must never crash, leak or write; rejections are
 * expected.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemoneye/validator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct de_validator *v = de_validator_new();
	struct de_error err = {0};
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char *sql = malloc(size + 1);

	if (!v || !sql)
		goto out;
	memcpy(sql, data, size);
	sql[size] = '\0';
	de_validator_with_timeout(v, 50);
	de_validator_validate_query(v, sql, &err);
	if (de_validator_open_db(v, NULL, &db, &err) == 0 &&
	    de_validator_prepare(v, db, sql, &st, &err) == 0) {
		struct de_guard g;
		int rc, rows = 0;
		de_validator_arm(v, db, &g);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW && rows++ < 1000)
			;
		de_validator_disarm(db, &g);
		if (rc != SQLITE_DONE && rc != SQLITE_ROW)
			de_validator_step_error(db, &g, rc, &err);
	}
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	de_validator_free(v);
	sqlite3_hard_heap_limit64(0);
	free(sql);
	return 0;
}
