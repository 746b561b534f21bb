/*
 * fuzz_record.c — arbitrary bytes as JSON ProcessRecord, Alert and
 * DetectionRule.  Whatever parses must serialise and parse back equal.
 */
#include <stdint.h>
#include <stdlib.h>

#include "daemoneye/alert.h"
#include "daemoneye/record.h"
#include "daemoneye/rule.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ROUNDTRIP(type, prefix)                                                                    \
	do {                                                                                       \
		type a = {0}, b = {0};                                                             \
		if (prefix##_from_json(j, &a, NULL) == 0) {                                        \
			json_t *k = prefix##_to_json(&a);                                          \
			if (k) {                                                                   \
				if (prefix##_from_json(k, &b, NULL) != 0 ||                        \
				    !prefix##_equal(&a, &b))                                       \
					abort();                                                   \
				json_decref(k);                                                    \
			}                                                                          \
			prefix##_clear(&b);                                                        \
			prefix##_clear(&a);                                                        \
		}                                                                                  \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t jerr;
	json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY, &jerr);

	if (!j)
		return 0;
	ROUNDTRIP(struct de_process_record, de_process_record);
	ROUNDTRIP(struct de_alert, de_alert);
	ROUNDTRIP(struct de_rule, de_rule);
	json_decref(j);
	return 0;
}
