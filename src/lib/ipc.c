/*
 * ipc.c — frame encoder and decoder for procmond <-> agent (see ipc.h).
 *
 * The payload is a protobuf-c Frame; everything protobuf-c hands back is
 * checked again before it becomes a de_ipc_msg: strings without embedded
 * NULs, a 16-byte id, a 64-hex-digit hash, a decimal user id, facts
 * whose grouped fields come together (and a one-letter state), and
 * platform_data that parses as a JSON object.  Records with collector
 * facts (all of procmond's) travel without jansson on either side: the
 * facts are protobuf fields, and platform_data_json is only there for
 * extra members.  protobuf-c's own allocations are bounded by the payload
 * size, which DE_IPC_MAX_FRAME bounds.
 */
#include "daemoneye/ipc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "daemoneye/buf.h"
#include "daemoneye_ipc.pb-c.h"
#include "fields.h"

typedef Daemoneye__Ipc__Process PbProcess;
typedef Daemoneye__Ipc__Facts PbFacts;

void de_ipc_msg_clear(struct de_ipc_msg *m)
{
	if (!m)
		return;
	free(m->capabilities);
	de_process_record_clear(&m->record);
	memset(m, 0, sizeof(*m));
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t crc(const uint8_t *p, size_t n)
{
	return (uint32_t)crc32(crc32(0L, Z_NULL, 0), p, (uInt)n);
}

/* ---- encoding -------------------------------------------------------------- */

static ProtobufCBinaryData bin(const char *s)
{
	ProtobufCBinaryData b = {s ? strlen(s) : 0, (uint8_t *)(uintptr_t)s};
	return b;
}

static void facts_to_pb(const struct de_linux_facts *f, PbFacts *p)
{
	daemoneye__ipc__facts__init(p);
	p->has_euid = p->has_egid = f->has_ids;
	p->euid = f->euid;
	p->egid = f->egid;
	p->has_uid = p->has_gid = f->has_real_ids;
	p->uid = f->uid;
	p->gid = f->gid;
	p->has_cgroup = f->cgroup != NULL;
	p->cgroup = bin(f->cgroup);
	p->has_exe_deleted = p->has_exe_replaced = f->has_exe;
	p->exe_deleted = f->exe_deleted;
	p->exe_replaced = f->exe_replaced;
	p->has_exe_inode = p->has_exe_device = p->has_exe_size = f->has_exe && f->has_image;
	p->exe_inode = f->exe_inode;
	p->exe_device = f->exe_device;
	p->exe_size = f->exe_size;
	p->has_hash_error = f->has_exe && f->hash_error;
	p->hash_error = bin(f->hash_error);
	p->state.len = 1;
	p->state.data = (uint8_t *)(uintptr_t)&f->state;
	p->threads = f->threads;
	p->pgrp = f->pgrp;
	p->session = f->session;
	p->tty_nr = f->tty_nr;
	p->nice = f->nice;
	p->kernel_thread = f->kernel_thread;
	p->utime_ticks = f->utime_ticks;
	p->stime_ticks = f->stime_ticks;
	p->start_ticks = f->start_ticks;
	p->has_cmdline_truncated = p->cmdline_truncated = f->cmdline_truncated;
	p->has_cmdline_masked = f->cmdline_masked > 0;
	p->cmdline_masked = f->cmdline_masked;
}

/* Fill p (and *facts, which p points to) from r; *pd gets the
   platform_data text to free, argv the array. */
static int record_to_pb(const struct de_process_record *r, PbProcess *p, PbFacts *facts, char **pd,
			ProtobufCBinaryData **argv)
{
	daemoneye__ipc__process__init(p);
	p->id.len = sizeof(r->id.bytes);
	p->id.data = (uint8_t *)(uintptr_t)r->id.bytes;
	p->scan_id = r->scan_id;
	p->collection_time = r->collection_time;
	p->pid = r->pid;
	p->has_ppid = r->has_ppid;
	p->ppid = r->ppid;
	p->name = bin(r->name ? r->name : "");
	p->has_executable_path = r->executable_path != NULL;
	p->executable_path = bin(r->executable_path);
	*argv = calloc(r->command_line_len ? r->command_line_len : 1, sizeof(**argv));
	if (!*argv)
		return -ENOMEM;
	for (size_t i = 0; i < r->command_line_len; i++)
		(*argv)[i] = bin(r->command_line[i]);
	p->n_command_line = r->command_line_len;
	p->command_line = *argv;
	p->has_start_time = r->has_start_time;
	p->start_time = r->start_time;
	p->has_cpu_usage = r->has_cpu_usage;
	p->cpu_usage = r->cpu_usage;
	p->has_memory_usage = r->has_memory_usage;
	p->memory_usage = r->memory_usage;
	p->executable_hash = r->executable_hash;
	p->hash_algorithm = r->hash_algorithm;
	p->user_id = r->user_id;
	p->accessible = r->accessible;
	p->file_exists = r->file_exists;
	*pd = NULL;
	if (r->platform_data && !(*pd = de_json_dumps(r->platform_data, JSON_COMPACT)))
		return -ENOMEM; /* the caller frees *argv */
	p->platform_data_json = *pd;
	if (r->facts.present) {
		facts_to_pb(&r->facts, facts);
		p->facts = facts;
	}
	return 0;
}

int de_ipc_encode(const struct de_ipc_msg *m, uint8_t **out, size_t *len, struct de_error *err)
{
	Daemoneye__Ipc__Frame f = DAEMONEYE__IPC__FRAME__INIT;
	Daemoneye__Ipc__Hello hello = DAEMONEYE__IPC__HELLO__INIT;
	Daemoneye__Ipc__ScanRequest req = DAEMONEYE__IPC__SCAN_REQUEST__INIT;
	Daemoneye__Ipc__ScanDone done = DAEMONEYE__IPC__SCAN_DONE__INIT;
	Daemoneye__Ipc__ProcessEvent ev = DAEMONEYE__IPC__PROCESS_EVENT__INIT;
	PbProcess proc;
	PbFacts facts;
	ProtobufCBinaryData *argv = NULL;
	char *pd = NULL;
	uint8_t *buf;
	size_t n;

	switch (m->kind) {
	case DE_IPC_HELLO:
		hello.version = m->version;
		hello.pid = m->pid;
		hello.capabilities = m->capabilities ? m->capabilities : (char *)"";
		hello.events = m->events;
		f.body_case = DAEMONEYE__IPC__FRAME__BODY_HELLO;
		f.hello = &hello;
		break;
	case DE_IPC_SCAN_REQUEST:
		req.scan_id = m->scan_id;
		f.body_case = DAEMONEYE__IPC__FRAME__BODY_SCAN_REQUEST;
		f.scan_request = &req;
		break;
	case DE_IPC_PROCESS:
		if (record_to_pb(&m->record, &proc, &facts, &pd, &argv) < 0)
			goto nomem;
		f.body_case = DAEMONEYE__IPC__FRAME__BODY_PROCESS;
		f.process = &proc;
		break;
	case DE_IPC_SCAN_DONE:
		done.scan_id = m->scan_id;
		done.seen = m->stats.seen;
		done.recorded = m->stats.recorded;
		done.vanished = m->stats.vanished;
		done.inaccessible = m->stats.inaccessible;
		done.hashed_bytes = m->stats.hashed_bytes;
		done.events_lost = m->events_lost;
		f.body_case = DAEMONEYE__IPC__FRAME__BODY_SCAN_DONE;
		f.scan_done = &done;
		break;
	case DE_IPC_EVENT:
		ev.kind = m->event == DE_IPC_EVENT_EXIT ? DAEMONEYE__IPC__PROCESS_EVENT__KIND__EXIT
							: DAEMONEYE__IPC__PROCESS_EVENT__KIND__EXEC;
		ev.pid = m->pid;
		ev.time_ms = m->time_ms;
		ev.has_exit_code = m->has_exit_code;
		ev.exit_code = m->exit_code;
		if (m->has_record) {
			if (record_to_pb(&m->record, &proc, &facts, &pd, &argv) < 0)
				goto nomem;
			ev.process = &proc;
		}
		f.body_case = DAEMONEYE__IPC__FRAME__BODY_EVENT;
		f.event = &ev;
		break;
	default:
		return de_error_set(err, DE_ERR_VALIDATION, EINVAL, "unknown IPC message kind %d",
				    (int)m->kind);
	}
	n = daemoneye__ipc__frame__get_packed_size(&f);
	if (n > DE_IPC_MAX_FRAME) {
		free(argv);
		free(pd);
		return de_error_set(err, DE_ERR_VALIDATION, EMSGSIZE,
				    "IPC message of %zu bytes exceeds the %u-byte frame limit", n,
				    DE_IPC_MAX_FRAME);
	}
	if (!(buf = malloc(DE_IPC_HEADER + n)))
		goto nomem;
	daemoneye__ipc__frame__pack(&f, buf + DE_IPC_HEADER);
	put_be32(buf, (uint32_t)n);
	put_be32(buf + 4, crc(buf + DE_IPC_HEADER, n));
	free(argv);
	free(pd);
	*out = buf;
	*len = DE_IPC_HEADER + n;
	return 0;
nomem:
	free(argv);
	free(pd);
	return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
}

/* ---- decoding -------------------------------------------------------------- */

/* A NUL-terminated copy of b, or NULL if it holds a NUL (or ENOMEM). */
static char *cstr(const ProtobufCBinaryData *b, bool *bad)
{
	char *s;
	if (b->len && memchr(b->data, 0, b->len)) {
		*bad = true;
		return NULL;
	}
	if (!(s = malloc(b->len + 1)))
		return NULL;
	if (b->len)
		memcpy(s, b->data, b->len);
	s[b->len] = '\0';
	return s;
}

static bool all_of(const char *s, const char *set, size_t want_len)
{
	size_t n = strlen(s);
	if (n == 0 || (want_len && n != want_len))
		return false;
	return strspn(s, set) == n;
}

/* Is k the JSON name of a fact (an extra member may not shadow one)? */
static bool fact_name(const char *k)
{
	static const char *const names[] = {"euid",
					    "egid",
					    "uid",
					    "gid",
					    "cgroup",
					    "cgroup_raw",
					    "exe_deleted",
					    "exe_replaced",
					    "exe_inode",
					    "exe_device",
					    "exe_size",
					    "hash_error",
					    "state",
					    "threads",
					    "pgrp",
					    "session",
					    "tty_nr",
					    "nice",
					    "kernel_thread",
					    "utime_ticks",
					    "stime_ticks",
					    "start_ticks",
					    "cmdline_truncated",
					    "cmdline_masked"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(k, names[i]) == 0)
			return true;
	return false;
}

/* Validate and copy facts; NULL, or why they are malformed (*nomem set on
   ENOMEM). */
static const char *pb_to_facts(const PbFacts *p, struct de_linux_facts *f, bool *nomem)
{
	bool bad = false;
	unsigned char st;

	if (p->has_euid != p->has_egid || p->has_uid != p->has_gid)
		return "facts: a uid without its gid";
	if (p->has_exe_deleted != p->has_exe_replaced)
		return "facts: exe_deleted without exe_replaced";
	if (p->has_exe_inode != p->has_exe_device || p->has_exe_inode != p->has_exe_size)
		return "facts: incomplete executable image";
	if ((p->has_exe_inode || p->has_hash_error) && !p->has_exe_deleted)
		return "facts: executable image or hash error without an executable";
	if (p->state.len != 1)
		return "facts: state is not one letter";
	st = p->state.data[0];
	if (!((st >= 'A' && st <= 'Z') || (st >= 'a' && st <= 'z')))
		return "facts: state is not one letter";
	if (p->threads < 0 || p->utime_ticks < 0 || p->stime_ticks < 0 || p->start_ticks < 0)
		return "facts: negative count";
	if (p->has_cmdline_masked && p->cmdline_masked <= 0)
		return "facts: cmdline_masked is not positive";
	if (p->has_cmdline_truncated && !p->cmdline_truncated)
		return "facts: cmdline_truncated sent as false";
	f->present = true;
	f->has_ids = p->has_euid;
	f->euid = p->euid;
	f->egid = p->egid;
	f->has_real_ids = p->has_uid;
	f->uid = p->uid;
	f->gid = p->gid;
	f->has_exe = p->has_exe_deleted;
	f->exe_deleted = p->exe_deleted;
	f->exe_replaced = p->exe_replaced;
	f->has_image = p->has_exe_inode;
	f->exe_inode = p->exe_inode;
	f->exe_device = p->exe_device;
	f->exe_size = p->exe_size;
	f->state = (char)st;
	f->threads = p->threads;
	f->pgrp = p->pgrp;
	f->session = p->session;
	f->tty_nr = p->tty_nr;
	f->nice = p->nice;
	f->kernel_thread = p->kernel_thread;
	f->utime_ticks = p->utime_ticks;
	f->stime_ticks = p->stime_ticks;
	f->start_ticks = p->start_ticks;
	f->cmdline_truncated = p->has_cmdline_truncated && p->cmdline_truncated;
	f->cmdline_masked = p->has_cmdline_masked ? p->cmdline_masked : 0;
	if (p->has_cgroup && !(f->cgroup = cstr(&p->cgroup, &bad)))
		goto fail;
	if (p->has_hash_error && !(f->hash_error = cstr(&p->hash_error, &bad)))
		goto fail;
	return NULL;
fail:
	if (bad)
		return "facts: text field holds a NUL byte";
	*nomem = true;
	return "out of memory";
}

/* Convert and validate; -EBADMSG with err, or -ENOMEM. */
static int pb_to_record(const PbProcess *p, struct de_process_record *r, struct de_error *err)
{
	const char *why = NULL;
	bool bad = false;

	memset(r, 0, sizeof(*r));
	if (p->id.len != sizeof(r->id.bytes)) {
		why = "process id is not 16 bytes";
		goto bad;
	}
	memcpy(r->id.bytes, p->id.data, sizeof(r->id.bytes));
	r->scan_id = p->scan_id;
	r->collection_time = p->collection_time;
	r->pid = p->pid;
	r->has_ppid = p->has_ppid;
	r->ppid = p->ppid;
	if (!(r->name = cstr(&p->name, &bad)))
		goto fail;
	if (p->has_executable_path && !(r->executable_path = cstr(&p->executable_path, &bad)))
		goto fail;
	if (!(r->command_line = calloc(p->n_command_line ? p->n_command_line : 1, sizeof(char *))))
		goto fail;
	for (size_t i = 0; i < p->n_command_line; i++) {
		if (!(r->command_line[i] = cstr(&p->command_line[i], &bad)))
			goto fail;
		r->command_line_len++;
	}
	r->has_start_time = p->has_start_time;
	r->start_time = p->start_time;
	r->has_cpu_usage = p->has_cpu_usage;
	r->cpu_usage = p->cpu_usage;
	if (r->has_cpu_usage && !(r->cpu_usage >= 0.0 && r->cpu_usage < 1e9)) {
		why = "cpu_usage out of range";
		goto bad;
	}
	r->has_memory_usage = p->has_memory_usage;
	r->memory_usage = p->memory_usage;
	if (p->executable_hash) {
		if (!all_of(p->executable_hash, "0123456789abcdef", 64)) {
			why = "executable_hash is not 64 lower-case hex digits";
			goto bad;
		}
		if (!p->hash_algorithm || strcmp(p->hash_algorithm, "sha256") != 0) {
			why = "hash_algorithm is not sha256";
			goto bad;
		}
		if (!(r->executable_hash = strdup(p->executable_hash)) ||
		    !(r->hash_algorithm = strdup(p->hash_algorithm)))
			goto fail;
	} else if (p->hash_algorithm) {
		why = "hash_algorithm without a hash";
		goto bad;
	}
	if (p->user_id) {
		if (!all_of(p->user_id, "0123456789", 0) || strlen(p->user_id) > 10) {
			why = "user_id is not a decimal uid";
			goto bad;
		}
		if (!(r->user_id = strdup(p->user_id)))
			goto fail;
	}
	r->accessible = p->accessible;
	r->file_exists = p->file_exists;
	if (p->facts) {
		bool nomem = false;
		if ((why = pb_to_facts(p->facts, &r->facts, &nomem))) {
			if (nomem)
				goto fail;
			goto bad;
		}
	}
	if (p->platform_data_json) {
		json_error_t je;
		const char *k;
		json_t *v;
		if (de_json_loadb(p->platform_data_json, strlen(p->platform_data_json),
				  JSON_REJECT_DUPLICATES, &r->platform_data, &je) == -ENOMEM)
			goto fail;
		if (!json_is_object(r->platform_data)) {
			why = "platform_data is not a JSON object";
			goto bad;
		}
		if (r->facts.present)
			json_object_foreach (r->platform_data, k, v)
				if (fact_name(k)) {
					why = "platform_data repeats a fact beside the facts";
					goto bad;
				}
	}
	return 0;
fail:
	if (bad) {
		why = "text field holds a NUL byte";
		goto bad;
	}
	de_process_record_clear(r);
	return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
bad:
	de_process_record_clear(r);
	return de_error_set(err, DE_ERR_VALIDATION, EBADMSG, "malformed IPC frame: %s", why);
}

/* protobuf-c's allocations, noting a failure: an unpack that ran out of
   memory is not a malformed frame */
static void *pb_alloc(void *nomem, size_t size)
{
	void *p = malloc(size);

	if (!p)
		*(bool *)nomem = true;
	return p;
}

static void pb_free(void *nomem, void *p)
{
	(void)nomem;
	free(p);
}

int de_ipc_decode(const uint8_t *buf, size_t len, size_t *consumed, struct de_ipc_msg *out,
		  struct de_error *err)
{
	Daemoneye__Ipc__Frame *f;
	struct de_ipc_msg m = {0};
	bool nomem = false;
	ProtobufCAllocator alloc = {pb_alloc, pb_free, &nomem};
	uint32_t n;
	int rc = 0;

	if (len < DE_IPC_HEADER)
		return -EAGAIN;
	n = get_be32(buf);
	if (n > DE_IPC_MAX_FRAME)
		return de_error_set(err, DE_ERR_VALIDATION, EMSGSIZE,
				    "oversized IPC frame: %u bytes (limit %u)", n,
				    DE_IPC_MAX_FRAME);
	if (len - DE_IPC_HEADER < n)
		return -EAGAIN;
	if (crc(buf + DE_IPC_HEADER, n) != get_be32(buf + 4))
		return de_error_set(err, DE_ERR_VALIDATION, EBADMSG, "IPC frame fails its CRC32");
	f = daemoneye__ipc__frame__unpack(&alloc, n, buf + DE_IPC_HEADER);
	if (!f && nomem)
		return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	if (!f)
		return de_error_set(err, DE_ERR_VALIDATION, EBADMSG,
				    "malformed IPC frame: not a valid Frame message");
	switch (f->body_case) {
	case DAEMONEYE__IPC__FRAME__BODY_HELLO:
		m.kind = DE_IPC_HELLO;
		m.version = f->hello->version;
		m.pid = f->hello->pid;
		m.events = f->hello->events;
		if (!(m.capabilities = strdup(f->hello->capabilities)))
			rc = de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
		break;
	case DAEMONEYE__IPC__FRAME__BODY_SCAN_REQUEST:
		m.kind = DE_IPC_SCAN_REQUEST;
		m.scan_id = f->scan_request->scan_id;
		break;
	case DAEMONEYE__IPC__FRAME__BODY_PROCESS:
		m.kind = DE_IPC_PROCESS;
		m.has_record = true;
		rc = pb_to_record(f->process, &m.record, err);
		break;
	case DAEMONEYE__IPC__FRAME__BODY_SCAN_DONE:
		m.kind = DE_IPC_SCAN_DONE;
		m.scan_id = f->scan_done->scan_id;
		m.stats.seen = (size_t)f->scan_done->seen;
		m.stats.recorded = (size_t)f->scan_done->recorded;
		m.stats.vanished = (size_t)f->scan_done->vanished;
		m.stats.inaccessible = (size_t)f->scan_done->inaccessible;
		m.stats.hashed_bytes = f->scan_done->hashed_bytes;
		m.events_lost = f->scan_done->events_lost;
		break;
	case DAEMONEYE__IPC__FRAME__BODY_EVENT:
		m.kind = DE_IPC_EVENT;
		m.event = f->event->kind == DAEMONEYE__IPC__PROCESS_EVENT__KIND__EXIT
				  ? DE_IPC_EVENT_EXIT
				  : DE_IPC_EVENT_EXEC;
		m.pid = f->event->pid;
		m.time_ms = f->event->time_ms;
		m.has_exit_code = f->event->has_exit_code;
		m.exit_code = f->event->exit_code;
		if (f->event->process) {
			m.has_record = true;
			rc = pb_to_record(f->event->process, &m.record, err);
		}
		break;
	default:
		rc = de_error_set(err, DE_ERR_VALIDATION, EBADMSG,
				  "unknown IPC frame: no known message kind");
		break;
	}
	daemoneye__ipc__frame__free_unpacked(f, &alloc);
	if (rc < 0) {
		de_ipc_msg_clear(&m);
		return rc;
	}
	*out = m;
	*consumed = DE_IPC_HEADER + n;
	return 0;
}

/* ---- descriptors ----------------------------------------------------------- */

int de_ipc_write_all(int fd, const uint8_t *buf, size_t len, struct de_error *err)
{
	size_t off = 0;

	while (off < len) {
		ssize_t w = write(fd, buf + off, len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return de_error_set(err, DE_ERR_IO, errno, "IPC write: %s",
					    strerror(errno));
		}
		off += (size_t)w;
	}
	return 0;
}

int de_ipc_send(int fd, const struct de_ipc_msg *m, struct de_error *err)
{
	uint8_t *buf;
	size_t len;
	int rc;

	if ((rc = de_ipc_encode(m, &buf, &len, err)) < 0)
		return rc;
	rc = de_ipc_write_all(fd, buf, len, err);
	free(buf);
	return rc;
}

struct de_ipc_reader {
	int fd;
	struct de_buf in; /* bytes read, at most one whole frame and its header */
};

#define READ_CHUNK ((size_t)64 * 1024) /* what one read(2) asks for at least */

int de_ipc_reader_new(int fd, struct de_ipc_reader **out, struct de_error *err)
{
	struct de_ipc_reader *r = calloc(1, sizeof(*r));

	if (!r)
		return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	r->fd = fd;
	r->in = (struct de_buf)DE_BUF_INIT(READ_CHUNK + DE_IPC_HEADER + DE_IPC_MAX_FRAME);
	if (de_buf_reserve(&r->in, READ_CHUNK) < 0) {
		free(r);
		return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	}
	*out = r;
	return 0;
}

void de_ipc_reader_free(struct de_ipc_reader *r)
{
	if (!r)
		return;
	de_buf_free(&r->in);
	free(r);
}

bool de_ipc_reader_pending(const struct de_ipc_reader *r)
{
	return r->in.len >= DE_IPC_HEADER &&
	       r->in.len - DE_IPC_HEADER >= get_be32((const uint8_t *)r->in.p);
}

int de_ipc_recv(struct de_ipc_reader *r, struct de_ipc_msg *out, struct de_error *err)
{
	struct de_buf *b = &r->in;

	for (;;) {
		size_t used = 0;
		int rc = de_ipc_decode((const uint8_t *)b->p, b->len, &used, out, err);
		ssize_t n;

		if (rc == 0) {
			memmove(b->p, b->p + used, b->len - used);
			b->len -= used;
			return 0;
		}
		if (rc != -EAGAIN)
			return rc;
		/* room for the whole frame (decode has checked its length by now),
		   and at least a chunk to read into */
		size_t want = b->len >= DE_IPC_HEADER
				      ? DE_IPC_HEADER + get_be32((const uint8_t *)b->p)
				      : DE_IPC_HEADER;
		if ((rc = de_buf_reserve(b, want > b->len ? want - b->len : 0)) < 0 ||
		    (b->cap - 1 == b->len && (rc = de_buf_reserve(b, READ_CHUNK)) < 0))
			return de_error_set(err, DE_ERR_IO, -rc, "IPC read: %s", strerror(-rc));
		n = read(r->fd, b->p + b->len, b->cap - 1 - b->len);
		if (n < 0) {
			if (errno == EINTR)
				return -EINTR;
			return de_error_set(err, DE_ERR_IO, errno, "IPC read: %s", strerror(errno));
		}
		if (n == 0) {
			if (b->len == 0)
				return de_error_set(err, DE_ERR_IO, EPIPE,
						    "IPC peer closed the channel");
			return de_error_set(err, DE_ERR_IO, EPROTO,
					    "truncated IPC frame: peer closed after %zu bytes",
					    b->len);
		}
		b->len += (size_t)n;
	}
}
