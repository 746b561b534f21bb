/*
 * fuzz_ipc.c — arbitrary bytes as a stream of IPC frames.  The decoder must
 * either reject a frame or return a message that encodes and decodes back
 * to the same thing; it must never crash or read out of bounds.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "daemoneye/ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	while (off < size) {
		struct de_ipc_msg m = {0}, b = {0};
		size_t used = 0, len, used2 = 0;
		uint8_t *buf;

		if (de_ipc_decode(data + off, size - off, &used, &m, NULL) < 0)
			break; /* the channel would be closed here */
		off += used;
		if (de_ipc_encode(&m, &buf, &len, NULL) == 0) {
			if (de_ipc_decode(buf, len, &used2, &b, NULL) != 0 || used2 != len ||
			    b.kind != m.kind ||
			    (m.has_record && !de_process_record_equal(&m.record, &b.record)))
				abort();
			free(buf);
		}
		de_ipc_msg_clear(&b);
		de_ipc_msg_clear(&m);
	}
	return 0;
}
