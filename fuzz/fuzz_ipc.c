/*
 * fuzz_ipc.c — arbitrary bytes as a stream of IPC frames.  The decoder must
 * either reject a frame or return a message that encodes and decodes back
 * to the same thing; it must never crash or read out of bounds.
 *
 * Each input is decoded twice: as it is (so that the header and the CRC32
 * check themselves are fuzzed), and with the CRC32 of every whole frame set
 * right (zlib's crc32, not ours), so that mutated payloads get past the
 * checksum and reach the protobuf decoder and the record validation behind
 * it.  Random bytes almost never carry a valid CRC: without the second
 * pass the fuzzer would spend its time in crc32().  The fixed bytes also
 * go through the buffered reader, which must hand out the same frames.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "daemoneye/ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Decode frames from data until one is refused; check each round trip. */
static void decode_stream(const uint8_t *data, size_t size)
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
}

/* How many frames decode_stream takes from data before one is refused. */
static size_t count_frames(const uint8_t *data, size_t size)
{
	size_t off = 0, n = 0;

	while (off < size) {
		struct de_ipc_msg m = {0};
		size_t used = 0;
		if (de_ipc_decode(data + off, size - off, &used, &m, NULL) < 0)
			break;
		de_ipc_msg_clear(&m);
		off += used;
		n++;
	}
	return n;
}

/*
 * The same bytes through the buffered reader (de_ipc_reader over a
 * socketpair whose writer has closed, read with de_ipc_reader_fill and
 * de_ipc_recv_until as the agent does): it must hand out exactly the frames
 * decode_stream takes, in the same number, then end with an error.  Inputs
 * larger than a socket buffer are left out (nothing drains the writer).
 */
static void reader_stream(const uint8_t *data, size_t size)
{
	struct de_ipc_reader *r = NULL;
	size_t want = count_frames(data, size), got = 0;
	int sv[2];

	if (size > 65536 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	if (write(sv[1], data, size) != (ssize_t)size || de_ipc_reader_new(sv[0], &r, NULL) < 0)
		goto out;
	close(sv[1]);
	sv[1] = -1;
	for (;;) {
		struct de_ipc_msg m = {0};
		if (!de_ipc_reader_pending(r) && !de_ipc_reader_drained(r)) {
			int rc = de_ipc_reader_fill(r, NULL);
			if (rc < 0 && !de_ipc_reader_pending(r))
				break;
			continue;
		}
		if (de_ipc_recv_until(r, &m, 0, NULL) < 0)
			break;
		de_ipc_msg_clear(&m);
		got++;
	}
	if (got != want)
		abort();
out:
	de_ipc_reader_free(r);
	close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
}

/* A copy of data with the CRC32 of each whole frame (header + payload) set
   right; a partial or oversized last frame is left as it is.  NULL when out
   of memory. */
static uint8_t *with_valid_crcs(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size ? size : 1);
	size_t off = 0;

	if (!copy)
		return NULL;
	memcpy(copy, data, size);
	while (size - off >= DE_IPC_HEADER) {
		uint32_t n = be32(copy + off);
		if (n > DE_IPC_MAX_FRAME || size - off - DE_IPC_HEADER < n)
			break;
		uint32_t c = (uint32_t)crc32(crc32(0L, Z_NULL, 0), copy + off + DE_IPC_HEADER, n);
		copy[off + 4] = (uint8_t)(c >> 24);
		copy[off + 5] = (uint8_t)(c >> 16);
		copy[off + 6] = (uint8_t)(c >> 8);
		copy[off + 7] = (uint8_t)c;
		off += DE_IPC_HEADER + n;
	}
	return copy;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *fixed;

	decode_stream(data, size);
	if ((fixed = with_valid_crcs(data, size))) {
		decode_stream(fixed, size);
		reader_stream(fixed, size);
		free(fixed);
	}
	return 0;
}
