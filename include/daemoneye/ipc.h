/*
 * ipc.h — the framed messages between procmond and the agent.
 *
 * A frame is a 4-byte big-endian payload length, a 4-byte big-endian CRC32
 * of the payload, then the payload: a protobuf-c encoded Frame
 * (proto/daemoneye_ipc.proto).  The decoder checks, in order: the length
 * against DE_IPC_MAX_FRAME (oversized), that the whole frame is there
 * (truncated), the CRC (corrupt), that the payload decodes with every
 * required field (malformed), that the body is a known kind with valid
 * contents (unknown).  Any failure is an error that the caller answers by
 * closing the channel; nothing in a frame can crash the reader or make it
 * allocate more than the frame's own size allows.
 *
 * Flow: procmond sends HELLO once; the agent sends SCAN_REQUEST; procmond
 * answers with PROCESS messages (and, when asked, CONNECTION messages) and
 * a SCAN_DONE.  EVENT messages (exec, exit, fork, tcp, lost) may come
 * between any two frames.
 *
 * Ownership: a decoded message owns its strings and record; release with
 * de_ipc_msg_clear().  Encoded frames are malloc'd and the caller's.
 */
#ifndef DAEMONEYE_IPC_H
#define DAEMONEYE_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemoneye/collect.h"
#include "daemoneye/error.h"
#include "daemoneye/record.h"

#define DE_IPC_VERSION	 1
#define DE_IPC_HEADER	 8
#define DE_IPC_MAX_FRAME (16u << 20) /* payload bytes */

enum de_ipc_kind {
	DE_IPC_HELLO = 0,
	DE_IPC_SCAN_REQUEST,
	DE_IPC_PROCESS,
	DE_IPC_SCAN_DONE,
	DE_IPC_EVENT,
	DE_IPC_CONNECTION,
	DE_IPC_KIND_MAX
};

struct de_ipc_msg {
	enum de_ipc_kind kind;
	/* HELLO */
	uint32_t version;
	uint32_t pid;	    /* HELLO: procmond's pid */
	char *capabilities; /* HELLO, owned */
	bool events;	    /* HELLO: real-time events are on */
	char *event_source; /* HELLO: "ebpf", "netlink" or "none" (owned; NULL: not said) */
	char *event_reason; /* HELLO: why not eBPF (owned; NULL when eBPF) */
	/* SCAN_REQUEST, SCAN_DONE */
	int64_t scan_id;
	bool connections; /* SCAN_REQUEST: also the processes' TCP connections */
	struct de_collect_stats
		stats;	      /* SCAN_DONE: seen, recorded, vanished, inaccessible, hashed_bytes */
	uint64_t events_lost; /* SCAN_DONE: kernel overruns since procmond started */
	uint64_t hash_hits;   /* SCAN_DONE: hashes served by the cache */
	uint64_t event_restarts; /* SCAN_DONE: event reader restarts since procmond started */
	/* PROCESS */
	bool has_record;
	struct de_process_record record;
	/* EVENT: an exec (with the process, when procmond could read it) or an
	   exit; its record is owned by the message */
	struct de_process_event event;
	/* CONNECTION: one of a scan's connections */
	struct de_connection conn;
};

void de_ipc_msg_clear(struct de_ipc_msg *m);

/* Encode m as one frame into a new buffer.  0, -ENOMEM or -EMSGSIZE. */
int de_ipc_encode(const struct de_ipc_msg *m, uint8_t **out, size_t *len, struct de_error *err);

/*
 * Decode the frame at the start of buf[0..len).  Returns 0 with *out filled
 * (zeroed first) and *consumed the frame's size; -EAGAIN when more bytes are
 * needed (nothing consumed); -EMSGSIZE (oversized), -EBADMSG (bad CRC,
 * malformed or unknown) with err naming the reason.
 */
int de_ipc_decode(const uint8_t *buf, size_t len, size_t *consumed, struct de_ipc_msg *out,
		  struct de_error *err);

/* Write buf[0..len) to fd whole (blocking; EINTR retried).  0 or -errno. */
int de_ipc_write_all(int fd, const uint8_t *buf, size_t len, struct de_error *err);

/* Write one message to fd (blocking, whole frame).  0 or -errno. */
int de_ipc_send(int fd, const struct de_ipc_msg *m, struct de_error *err);

/* A buffered reader of frames from a descriptor. */
struct de_ipc_reader;
int de_ipc_reader_new(int fd, struct de_ipc_reader **out, struct de_error *err);
void de_ipc_reader_free(struct de_ipc_reader *r);
/*
 * Read the next message (blocking).  0 with *out filled; -EPIPE when the
 * peer closed between frames; -EPROTO when it closed inside one
 * (truncated); the decode errors above; -errno from read.
 */
int de_ipc_recv(struct de_ipc_reader *r, struct de_ipc_msg *out, struct de_error *err);
/*
 * The same with a deadline (CLOCK_MONOTONIC ms, as de_mono_ms()): before
 * each read it waits for data until then.  -ETIMEDOUT (IoError) once the
 * deadline has passed, -EINTR when a signal interrupts the wait; bytes of
 * a frame already read stay buffered for the next call.
 */
int de_ipc_recv_until(struct de_ipc_reader *r, struct de_ipc_msg *out, int64_t deadline_ms,
		      struct de_error *err);
/* True when a whole frame is already buffered (recv will not block). */
bool de_ipc_reader_pending(const struct de_ipc_reader *r);
/*
 * Read what the descriptor holds now, without waiting (one recv with
 * MSG_DONTWAIT into the reader's buffer, making room for the frame that is
 * started): the bytes read, 0 when there were none, -EPIPE/-EPROTO when
 * the peer closed (between frames / inside one), -EINTR, -errno.
 */
int de_ipc_reader_fill(struct de_ipc_reader *r, struct de_error *err);
/*
 * The bytes (header and payload) of the frame the last recv returned, in
 * the reader's buffer: borrowed, valid until the next call on the reader
 * that reads (recv, fill).  *len 0 when there is none.
 */
const uint8_t *de_ipc_reader_last(const struct de_ipc_reader *r, size_t *len);
/*
 * True when no whole frame is buffered and the last read found the
 * descriptor empty (it stopped short of the room it had): a reader that
 * drains what came need not ask again until poll says more is there.
 */
bool de_ipc_reader_drained(const struct de_ipc_reader *r);

#endif
