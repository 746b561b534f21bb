/*
 * ctl.h — the control channel between daemoneye-agent's privileged parent
 * and its unprivileged worker (docs/process-model.md), in the manner of
 * OpenSSH's monitor and OpenBSD's imsg: a small set of messages, each
 * length-checked exactly before use, and a dispatch table saying which
 * message may travel in which direction and in which state of the
 * receiver.  Anything else is a protocol violation: the parent kills the
 * worker (and restarts it), the worker exits.
 *
 * Transport: an AF_UNIX SOCK_SEQPACKET socketpair, one message per packet
 * (so the kernel keeps the boundaries and a short read is a truncated
 * message), descriptors passed alongside with SCM_RIGHTS: the worker's end
 * of a new procmond socketpair, the configuration files the parent opened.
 *
 * A message is an 8-byte header — type (u16), version (u16), payload
 * length (u32), big-endian — and a payload whose layout is fixed per type
 * (integers big-endian, text as a u16 length and bytes without NUL).  The
 * decoder checks, in order: the packet size against DE_CTL_MAX_MSG, the
 * header's length against the packet, the version, that the type is known
 * and travels in this direction, the payload size and every field's range,
 * and that exactly the expected number of descriptors came with it.
 *
 * Ownership: a received message owns its descriptors until the receiver
 * takes them (sets the slot to -1) or calls de_ctl_msg_close_fds().  A sent
 * message's descriptors stay the sender's (the kernel duplicates them).
 */
#ifndef DAEMONEYE_CTL_H
#define DAEMONEYE_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemoneye/error.h"

#define DE_CTL_VERSION	     1
#define DE_CTL_HEADER	     8
#define DE_CTL_MAX_MSG	     8192 /* bytes of one message, header included */
#define DE_CTL_MAX_FDS	     2
#define DE_CTL_TEXT_MAX	     1024 /* status lines, reload messages */
#define DE_CTL_STATUS_MAX    256  /* HEARTBEAT's status text */
#define DE_CTL_PATH_MAX	     1024 /* a configuration file's name */
#define DE_CTL_NOTE_BODY_MAX 512  /* a checkpoint note's body (three lines) */
#define DE_CTL_ORIGIN_MAX    255
#define DE_CTL_PUBKEY_LEN    32
#define DE_CTL_SIG_LEN	     64

enum de_ctl_type {
	/* worker -> parent */
	DE_CTL_READY = 1,	 /* setup done; pid */
	DE_CTL_HEARTBEAT,	 /* alive; scan_id and a status line (sd_notify STATUS) */
	DE_CTL_RESTART_PROCMOND, /* kill procmond of `generation` and start another; reason */
	DE_CTL_RELOAD_DONE,	 /* the reload of `generation`: ok, or why not in text */
	DE_CTL_KEY_REQUEST,	 /* the checkpoint signing key's public half, please */
	DE_CTL_SIGN_REQUEST,	 /* sign the checkpoint note body in text; id */
	/* parent -> worker */
	DE_CTL_CONFIG,	   /* the configuration files (fds) of `generation`, or why none */
	DE_CTL_PROCMOND,   /* a new procmond: pid, start time, the worker's end (fd) */
	DE_CTL_SUPERVISOR, /* the parent's view: pids, uptimes, restarts, CPU, memory */
	DE_CTL_KEY_REPLY,  /* status; the public key when there is one */
	DE_CTL_SIGN_REPLY, /* status and signature for request id */
	DE_CTL_TYPE_MAX
};

/* Which way a message travels. */
enum de_ctl_dir { DE_CTL_TO_PARENT = 0, DE_CTL_TO_WORKER, DE_CTL_DIR_MAX };

/*
 * The receiver's state: the parent's view of its worker, or the worker's
 * own.  STARTING: spawned, not READY (the worker: no configuration yet);
 * RUNNING; RELOADING: a CONFIG sent, its RELOAD_DONE not yet received;
 * STOPPING: SIGTERM sent (the worker: draining).
 */
enum de_ctl_state {
	DE_CTL_STARTING = 0,
	DE_CTL_RUNNING,
	DE_CTL_RELOADING,
	DE_CTL_STOPPING,
	DE_CTL_STATE_MAX
};

/* Why a supervised process was (re)started; counted per process and reason. */
enum de_ctl_reason {
	DE_CTL_REASON_CRASH = 0,    /* exited or was killed without being asked */
	DE_CTL_REASON_HUNG,	    /* the worker sent nothing for watchdog.worker_timeout_ms */
	DE_CTL_REASON_CPU,	    /* over its CPU limit for watchdog.strikes samples */
	DE_CTL_REASON_MEMORY,	    /* over its memory limit for watchdog.strikes samples */
	DE_CTL_REASON_SCAN_TIMEOUT, /* procmond did not answer a scan within app.scan_timeout_ms */
	DE_CTL_REASON_PROTOCOL,	    /* a malformed or unexpected message */
	DE_CTL_REASON_RELOAD,	    /* collection settings changed on reload */
	DE_CTL_REASON_WITH_WORKER,  /* procmond's channel died with the worker */
	DE_CTL_REASON_MAX
};

/* One supervised process as the parent sees it. */
struct de_ctl_child {
	uint32_t pid;			      /* 0: not running */
	int64_t started_ms;		      /* wall clock of its start; 0: never */
	uint32_t restarts[DE_CTL_REASON_MAX]; /* restarts since the parent started */
	int32_t last_exit;		      /* wait status of its last exit; -1: none */
	int64_t last_exit_ms;		      /* wall clock of it; 0: none */
	uint64_t cpu_ms;		      /* user + system CPU of this instance */
	uint64_t rss_bytes;		      /* resident memory of this instance */
	int64_t restart_in_ms;		      /* a restart is due in this long; -1: none */
};

struct de_ctl_supervisor {
	uint32_t pid;	    /* the parent's */
	int64_t started_ms; /* the parent's start, wall clock */
	uint64_t rss_bytes; /* the parent's resident memory */
	uint64_t cpu_ms;    /* the parent's CPU */
	bool privileged;    /* the parent runs as root */
	bool signing;	    /* a checkpoint signing key is loaded */
	struct de_ctl_child procmond;
	struct de_ctl_child worker;
};

struct de_ctl_msg {
	enum de_ctl_type type;
	uint32_t generation;		/* CONFIG, PROCMOND, RESTART_PROCMOND, RELOAD_DONE */
	uint32_t pid;			/* READY, PROCMOND */
	int64_t time_ms;		/* PROCMOND: when it started (wall clock) */
	int64_t scan_id;		/* HEARTBEAT: the last scan */
	enum de_ctl_reason reason;	/* RESTART_PROCMOND */
	bool ok;			/* RELOAD_DONE */
	uint32_t id;			/* SIGN_REQUEST, SIGN_REPLY */
	int32_t status;			/* KEY_REPLY, SIGN_REPLY: 0 or -errno */
	bool has_key;			/* KEY_REPLY */
	uint8_t key[DE_CTL_PUBKEY_LEN]; /* KEY_REPLY: raw Ed25519 public key */
	uint8_t sig[DE_CTL_SIG_LEN];	/* SIGN_REPLY: Ed25519 signature */
	/* HEARTBEAT status, RELOAD_DONE message, CONFIG error, SIGN_REQUEST body;
	   NUL-terminated, text_len bytes, no NUL inside */
	char text[DE_CTL_TEXT_MAX + 1];
	size_t text_len;
	size_t nfiles;					 /* CONFIG: files sent (fds) */
	char paths[DE_CTL_MAX_FDS][DE_CTL_PATH_MAX + 1]; /* CONFIG: each file's name */
	struct de_ctl_supervisor sup;			 /* SUPERVISOR */
	int fds[DE_CTL_MAX_FDS];			 /* descriptors carried; -1 when none */
	size_t nfds;
};

/* "READY", "reload" ... for messages and logs (never NULL). */
const char *de_ctl_type_name(enum de_ctl_type t);
const char *de_ctl_reason_name(enum de_ctl_reason r);

/* A message of type t with every descriptor slot at -1. */
void de_ctl_msg_init(struct de_ctl_msg *m, enum de_ctl_type t);

/* Whether type t may be received in state s (the dispatch table). */
bool de_ctl_allowed(enum de_ctl_type t, enum de_ctl_state s);

/*
 * Encode m into buf (cap bytes, DE_CTL_MAX_MSG always suffices); *len the
 * size.  Descriptors are not part of the bytes (de_ctl_send passes them).
 * -EINVAL when a field is out of range (text too long, reason unknown).
 */
int de_ctl_encode(const struct de_ctl_msg *m, uint8_t *buf, size_t cap, size_t *len,
		  struct de_error *err);

/*
 * Decode one whole message (buf[0..len), a packet) that came with nfds
 * descriptors and travels in direction dir, as the header comment says.
 * 0 with *out filled (its fds slots at -1: the caller places the
 * descriptors), or -EBADMSG with err (DE_ERR_VALIDATION) naming what is
 * wrong; *out is then untouched.
 */
int de_ctl_decode(const uint8_t *buf, size_t len, size_t nfds, enum de_ctl_dir dir,
		  struct de_ctl_msg *out, struct de_error *err);

/*
 * Send m (and its m->nfds descriptors) as one packet.  With nonblock a
 * full socket is -EAGAIN instead of a wait.  0 or -errno (DE_ERR_IO).
 */
int de_ctl_send(int fd, const struct de_ctl_msg *m, bool nonblock, struct de_error *err);

/*
 * Receive one message travelling in direction dir without blocking.
 * Descriptors arrive close-on-exec.  0 with *out filled; -EAGAIN when
 * nothing is waiting; -EPIPE when the peer closed; -EBADMSG for a message
 * the decoder refuses or that was truncated (every descriptor that came
 * with it is closed); -errno.
 */
int de_ctl_recv(int fd, enum de_ctl_dir dir, struct de_ctl_msg *out, struct de_error *err);

/* Close the descriptors m still holds and mark them -1. */
void de_ctl_msg_close_fds(struct de_ctl_msg *m);

/* A checkpoint note's body (see checkpoint.h on the audit-crypto branch). */
struct de_ctl_note {
	char origin[DE_CTL_ORIGIN_MAX + 1];
	uint64_t size;
	uint8_t root[32];
};

/*
 * Check that body[0..len) is exactly a C2SP checkpoint body as the audit
 * ledger writes it — an origin line (1..255 printable ASCII bytes, no
 * leading or trailing space), the tree size in canonical decimal, the root
 * as canonical base64 of 32 bytes, each ending in "\n", nothing more — and
 * at most DE_CTL_NOTE_BODY_MAX bytes.  0 with *out (may be NULL) filled, or
 * -EBADMSG (DE_ERR_VALIDATION) naming the first thing wrong.
 */
int de_ctl_check_note_body(const char *body, size_t len, struct de_ctl_note *out,
			   struct de_error *err);

#endif
