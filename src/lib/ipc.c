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
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "daemoneye/buf.h"
#include "daemoneye/clock.h"
#include "daemoneye_ipc.pb-c.h"
#include "fields.h"

typedef Daemoneye__Ipc__Process PbProcess;
typedef Daemoneye__Ipc__Facts PbFacts;

void de_ipc_msg_clear(struct de_ipc_msg *m)
{
	if (!m)
		return;
	free(m->capabilities);
	free(m->event_source);
	free(m->event_reason);
	de_process_record_clear(&m->record);
	de_process_event_clear(&m->event);
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

/*
 * The facts list (facts.h) mapped onto the Facts message.  A fact of group
 * `always` whose type is a plain number, bool or letter is a required
 * field; every other fact is optional (its has_ flag says whether it is
 * there).  test_ipc checks the .proto against the list field by field.
 */
#define PBCLASS_always	 REQ
#define PBCLASS_ids	 OPT
#define PBCLASS_real_ids OPT
#define PBCLASS_exe	 OPT
#define PBCLASS_image	 OPT
#define PBCLASS_ns	 OPT

#define ENC_NUM_REQ(n, in) p->n = f->n;
#define ENC_NUM_OPT(n, in)                                                                         \
	p->has_##n = (in);                                                                         \
	p->n = f->n;
#define ENC_U32_REQ  ENC_NUM_REQ
#define ENC_U32_OPT  ENC_NUM_OPT
#define ENC_I64_REQ  ENC_NUM_REQ
#define ENC_I64_OPT  ENC_NUM_OPT
#define ENC_NN64_REQ ENC_NUM_REQ
#define ENC_NN64_OPT ENC_NUM_OPT
#define ENC_SI64_REQ ENC_NUM_REQ
#define ENC_SI64_OPT ENC_NUM_OPT
#define ENC_BOOL_REQ ENC_NUM_REQ
#define ENC_BOOL_OPT ENC_NUM_OPT
#define ENC_CHAR_REQ(n, in)                                                                        \
	p->n.len = 1;                                                                              \
	p->n.data = (uint8_t *)(uintptr_t)&f->n;
#define ENC_TEXT_ANY(n, in)                                                                        \
	p->has_##n = (in) && f->n != NULL;                                                         \
	p->n = bin(f->n);
#define ENC_TEXT_REQ	    ENC_TEXT_ANY
#define ENC_TEXT_OPT	    ENC_TEXT_ANY
#define ENC_TEXT_RAW_REQ    ENC_TEXT_ANY
#define ENC_TEXT_RAW_OPT    ENC_TEXT_ANY
#define ENC_FLAG_ANY(n, in) p->has_##n = p->n = (in) && f->n;
#define ENC_FLAG_REQ	    ENC_FLAG_ANY
#define ENC_FLAG_OPT	    ENC_FLAG_ANY
#define ENC_COUNT_ANY(n, in)                                                                       \
	p->has_##n = (in) && f->n > 0;                                                             \
	p->n = f->n;
#define ENC_COUNT_REQ ENC_COUNT_ANY
#define ENC_COUNT_OPT ENC_COUNT_ANY

#define ENC_(n, type, cls, in)	ENC__(n, type, cls, in)
#define ENC__(n, type, cls, in) ENC_##type##_##cls(n, in)

static void facts_to_pb(const struct de_linux_facts *f, PbFacts *p)
{
	daemoneye__ipc__facts__init(p);
#define FACT_ENC_(name, type, group, kind, no, doc)                                                \
	ENC_(name, type, PBCLASS_##group, DE_FACT_IN_##group(f))
	DE_LINUX_FACTS(FACT_ENC_)
#undef FACT_ENC_
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

/* A connection onto its message (addresses point into c). */
static void conn_to_pb(const struct de_connection *c, Daemoneye__Ipc__Connection *p)
{
	daemoneye__ipc__connection__init(p);
	p->kind = (Daemoneye__Ipc__Connection__Kind)c->kind;
	p->pid = c->pid;
	p->has_start_time = c->start_time != 0;
	p->start_time = c->start_time;
	p->family = c->family;
	p->local_address.len = p->remote_address.len = c->family == 6 ? 16 : 4;
	p->local_address.data = (uint8_t *)(uintptr_t)c->laddr;
	p->remote_address.data = (uint8_t *)(uintptr_t)c->raddr;
	p->local_port = c->lport;
	p->remote_port = c->rport;
	p->has_inode = c->inode != 0;
	p->inode = c->inode;
	p->time_ms = c->time_ms;
	p->from_scan = c->from_scan;
}

int de_ipc_encode(const struct de_ipc_msg *m, uint8_t **out, size_t *len, struct de_error *err)
{
	Daemoneye__Ipc__Connection conn;
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
		hello.event_source = m->event_source;
		hello.event_source_reason = m->event_reason;
		f.body_case = DAEMONEYE__IPC__FRAME__BODY_HELLO;
		f.hello = &hello;
		break;
	case DE_IPC_SCAN_REQUEST:
		req.scan_id = m->scan_id;
		req.has_connections = m->connections;
		req.connections = m->connections;
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
		done.has_hashed_files = done.has_hash_hits = done.has_event_restarts = true;
		done.hashed_files = m->stats.hashed_files;
		done.hash_hits = m->hash_hits;
		done.event_restarts = m->event_restarts;
		f.body_case = DAEMONEYE__IPC__FRAME__BODY_SCAN_DONE;
		f.scan_done = &done;
		break;
	case DE_IPC_EVENT:
		if (!de_process_event_kind_name(m->event.kind) ||
		    (m->event.kind == DE_PROCESS_TCP &&
		     (!m->event.has_conn || !de_conn_kind_name(m->event.conn.kind))))
			return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
					    "unknown process event kind %d", (int)m->event.kind);
		/* the enum's numbers are the kinds' (the .proto says so) */
		ev.kind = (Daemoneye__Ipc__ProcessEvent__Kind)m->event.kind;
		ev.pid = m->event.pid;
		ev.time_ms = m->event.time_ms;
		ev.has_exit_code = m->event.has_exit_code;
		ev.exit_code = m->event.exit_code;
		ev.has_ppid = m->event.ppid != 0;
		ev.ppid = m->event.ppid;
		ev.has_start_time = m->event.start_time != 0;
		ev.start_time = m->event.start_time;
		ev.has_lost = m->event.kind == DE_PROCESS_LOST;
		ev.lost = m->event.lost;
		if (m->event.kind == DE_PROCESS_TCP) {
			conn_to_pb(&m->event.conn, &conn);
			ev.connection = &conn;
		}
		if (m->event.has_record) {
			if (record_to_pb(&m->event.record, &proc, &facts, &pd, &argv) < 0)
				goto nomem;
			ev.process = &proc;
		}
		f.body_case = DAEMONEYE__IPC__FRAME__BODY_EVENT;
		f.event = &ev;
		break;
	case DE_IPC_CONNECTION:
		if (!de_conn_kind_name(m->conn.kind))
			return de_error_set(err, DE_ERR_VALIDATION, EINVAL,
					    "unknown connection kind %d", (int)m->conn.kind);
		conn_to_pb(&m->conn, &conn);
		f.body_case = DAEMONEYE__IPC__FRAME__BODY_CONNECTION;
		f.connection = &conn;
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

/* Is k the JSON name of a fact or its _raw twin (an extra member may not shadow one)? */
static bool fact_name(const char *k)
{
	size_t n = strlen(k);

	return de_fact_lookup(k, n) >= 0 || de_fact_raw_of(k, n) >= 0;
}

/* The groups of the facts list, `always` first. */
enum fact_group {
	G_always,
#define GROUP_ENUM_(g, parent, doc, part) G_##g,
	DE_LINUX_FACT_GROUPS(GROUP_ENUM_)
#undef GROUP_ENUM_
		G_MAX
};

/*
 * Per type and class: a required member of a group (numbers, bools,
 * letters, which come all or none with their group), whether the field was
 * sent, its own checks, and the copy into the facts.
 */
#define SENT_REQ(n)		true
#define SENT_OPT(n)		p->has_##n
#define MEMBER_U32		1
#define MEMBER_I64		1
#define MEMBER_NN64		1
#define MEMBER_SI64		1
#define MEMBER_BOOL		1
#define MEMBER_CHAR		1
#define MEMBER_TEXT		0
#define MEMBER_TEXT_RAW		0
#define MEMBER_FLAG		0
#define MEMBER_COUNT		0
#define SENT_(cls, n)		SENT__(cls, n)
#define SENT__(cls, n)		SENT_##cls(n)
#define SENTK_U32		M
#define SENTK_I64		M
#define SENTK_NN64		M
#define SENTK_SI64		M
#define SENTK_BOOL		M
#define SENTK_CHAR		M
#define SENTK_TEXT		O
#define SENTK_TEXT_RAW		O
#define SENTK_FLAG		O
#define SENTK_COUNT		O
#define SENTX_M(cls, n)		SENT_(cls, n)
#define SENTX_O(cls, n)		p->has_##n
#define SENTX_(k, cls, n)	SENTX__(k, cls, n)
#define SENTX__(k, cls, n)	SENTX_##k(cls, n)
#define SENT_ANY_(type, cls, n) SENTX_(SENTK_##type, cls, n)

#define CHECK_U32(n)	  NULL
#define CHECK_I64(n)	  NULL
#define CHECK_SI64(n)	  NULL
#define CHECK_BOOL(n)	  NULL
#define CHECK_NN64(n)	  (p->n < 0 ? "facts: " #n " is a negative count" : NULL)
#define CHECK_CHAR(n)	  (!one_letter(&p->n) ? "facts: " #n " is not one letter" : NULL)
#define CHECK_TEXT(n)	  NULL
#define CHECK_TEXT_RAW(n) NULL
#define CHECK_FLAG(n)	  (p->has_##n && !p->n ? "facts: " #n " sent as false" : NULL)
#define CHECK_COUNT(n)	  (p->has_##n && p->n <= 0 ? "facts: " #n " is not positive" : NULL)

#define COPY_NUM(n)   f->n = p->n;
#define COPY_U32      COPY_NUM
#define COPY_I64      COPY_NUM
#define COPY_NN64     COPY_NUM
#define COPY_SI64     COPY_NUM
#define COPY_BOOL     COPY_NUM
#define COPY_CHAR(n)  f->n = (char)p->n.data[0];
#define COPY_FLAG(n)  f->n = p->has_##n && p->n;
#define COPY_COUNT(n) f->n = p->has_##n ? p->n : 0;
#define COPY_TEXT(n)                                                                               \
	if (p->has_##n && !(f->n = cstr(&p->n, &bad)))                                             \
		goto fail;
#define COPY_TEXT_RAW COPY_TEXT

static bool one_letter(const ProtobufCBinaryData *b)
{
	return b->len == 1 && ((b->data[0] >= 'A' && b->data[0] <= 'Z') ||
			       (b->data[0] >= 'a' && b->data[0] <= 'z'));
}

/* Validate and copy facts; NULL, or why they are malformed (*nomem set on
   ENOMEM, when f may hold some text to clear; the text of why may be in buf). */
static const char *pb_to_facts(const PbFacts *p, struct de_linux_facts *f, bool *nomem,
			       char buf[256])
{
	static const char *const group_doc[G_MAX] = {"the process",
#define GROUP_DOC_(g, par, doc, part) doc,
						     DE_LINUX_FACT_GROUPS(GROUP_DOC_)
#undef GROUP_DOC_
	};
	static const char *const group_part[G_MAX] = {"",
#define GROUP_PART_(g, par, doc, part) part " (group " #g " sent in part)",
						      DE_LINUX_FACT_GROUPS(GROUP_PART_)
#undef GROUP_PART_
	};
	static const enum fact_group parent[G_MAX] = {G_always,
#define GROUP_PARENT_(g, par, doc, part) G_##par,
						      DE_LINUX_FACT_GROUPS(GROUP_PARENT_)
#undef GROUP_PARENT_
	};
	bool any[G_MAX] = {false}, all[G_MAX], bad = false;
	const char *why;

	for (int g = 0; g < G_MAX; g++)
		all[g] = true;
		/* a group's members come all or none */
#define GROUP_SEEN_(name, type, group, kind, no, doc)                                              \
	if (MEMBER_##type) {                                                                       \
		any[G_##group] |= SENT_(PBCLASS_##group, name);                                    \
		all[G_##group] &= SENT_(PBCLASS_##group, name);                                    \
	}
	DE_LINUX_FACTS(GROUP_SEEN_)
#undef GROUP_SEEN_
	any[G_always] = all[G_always] = true;
	for (int g = 0; g < G_MAX; g++) {
		if (any[g] != all[g]) {
			snprintf(buf, 256, "facts: %s", group_part[g]);
			return buf;
		}
		if (any[g] && !any[parent[g]]) {
			snprintf(buf, 256, "facts: %s without %s", group_doc[g],
				 group_doc[parent[g]]);
			return buf;
		}
	}
	/* the optional members of a group only with it; each value's own checks */
#define FACT_CHECK_(name, type, group, kind, no, doc)                                              \
	if (SENT_ANY_(type, PBCLASS_##group, name) && !any[G_##group]) {                           \
		snprintf(buf, 256, "facts: %s without %s", #name, group_doc[G_##group]);           \
		return buf;                                                                        \
	}                                                                                          \
	if (SENT_ANY_(type, PBCLASS_##group, name) && (why = CHECK_##type(name)))                  \
		return why;
	DE_LINUX_FACTS(FACT_CHECK_)
#undef FACT_CHECK_
	f->present = true;
#define GROUP_SET_(g, par, doc, part) f->has_##g = any[G_##g];
	DE_LINUX_FACT_GROUPS(GROUP_SET_)
#undef GROUP_SET_
#define FACT_COPY_(name, type, group, kind, no, doc) COPY_##type(name)
	DE_LINUX_FACTS(FACT_COPY_)
#undef FACT_COPY_
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
	char whybuf[256];
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
		if ((why = pb_to_facts(p->facts, &r->facts, &nomem, whybuf))) {
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

/* Validate and copy a connection; NULL, or why it is malformed. */
static const char *pb_to_conn(const Daemoneye__Ipc__Connection *p, struct de_connection *c)
{
	size_t al;

	memset(c, 0, sizeof(*c));
	if (!de_conn_kind_name((enum de_conn_kind)p->kind))
		return "connection of an unknown kind";
	if (p->family != 4 && p->family != 6)
		return "connection family is neither 4 nor 6";
	al = p->family == 6 ? 16 : 4;
	if (p->local_address.len != al || p->remote_address.len != al)
		return "connection address of the wrong length";
	if (p->local_port > 65535 || p->remote_port > 65535)
		return "connection port out of range";
	c->kind = (enum de_conn_kind)p->kind;
	c->pid = p->pid;
	c->start_time = p->has_start_time ? p->start_time : 0;
	c->family = (uint8_t)p->family;
	memcpy(c->laddr, p->local_address.data, al);
	memcpy(c->raddr, p->remote_address.data, al);
	c->lport = (uint16_t)p->local_port;
	c->rport = (uint16_t)p->remote_port;
	c->inode = p->has_inode ? p->inode : 0;
	c->time_ms = p->time_ms;
	c->from_scan = p->from_scan;
	return NULL;
}

/* The optional string s as an owned copy (NULL stays NULL); false on ENOMEM. */
static bool dup_opt(const char *s, char **out)
{
	*out = s ? strdup(s) : NULL;
	return !s || *out;
}

/*
 * protobuf-c's allocations during one unpack, carved from an arena: a block
 * on the decoder's stack, then blocks from malloc chained behind it (an
 * allocation larger than a block gets one of its own).  Nothing is freed
 * one by one: the decoder copies what it keeps out of the unpacked Frame
 * and releases the arena whole.  The total stays bounded by the payload
 * (DE_IPC_MAX_FRAME), as protobuf-c's own allocations are; a failure is
 * noted, since an unpack that ran out of memory is not a malformed frame.
 */
#define ARENA_STACK 8192
#define ARENA_BLOCK 16384
#define ARENA_ALIGN 16

struct arena {
	char *p;	  /* the block being carved */
	size_t used, cap; /* of p */
	void **chain;	  /* malloc'd blocks: each starts with the previous one's address */
	bool nomem;	  /* an allocation failed */
};

static void *arena_alloc(void *ap, size_t size)
{
	struct arena *a = ap;
	size_t bs;
	void **b;

	/* no more than protobuf-c could ask of a frame within the limit (8
	   bytes of array a 2-byte element at most): no overflow below */
	if (size > DE_IPC_MAX_FRAME * (size_t)16) {
		a->nomem = true;
		return NULL;
	}
	size = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (size <= a->cap - a->used) {
		void *p = a->p + a->used;
		a->used += size;
		return p;
	}
	bs = size > ARENA_BLOCK ? size : ARENA_BLOCK;
	if (!(b = malloc(ARENA_ALIGN + bs))) {
		a->nomem = true;
		return NULL;
	}
	b[0] = a->chain;
	a->chain = b;
	if (bs == ARENA_BLOCK) {
		a->p = (char *)b + ARENA_ALIGN;
		a->cap = bs;
		a->used = size;
	}
	return (char *)b + ARENA_ALIGN;
}

static void arena_free(void *ap, void *p)
{
	(void)ap;
	(void)p; /* released with the arena */
}

static void arena_release(struct arena *a)
{
	while (a->chain) {
		void **next = a->chain[0];
		free(a->chain);
		a->chain = next;
	}
}

int de_ipc_decode(const uint8_t *buf, size_t len, size_t *consumed, struct de_ipc_msg *out,
		  struct de_error *err)
{
	const char *why;
	Daemoneye__Ipc__Frame *f;
	struct de_ipc_msg m = {0};
	_Alignas(ARENA_ALIGN) char stack[ARENA_STACK];
	struct arena arena = {stack, 0, sizeof(stack), NULL, false};
	ProtobufCAllocator alloc = {arena_alloc, arena_free, &arena};
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
	if (!f) {
		bool nomem = arena.nomem;
		arena_release(&arena);
		if (nomem)
			return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
		return de_error_set(err, DE_ERR_VALIDATION, EBADMSG,
				    "malformed IPC frame: not a valid Frame message");
	}
	switch (f->body_case) {
	case DAEMONEYE__IPC__FRAME__BODY_HELLO:
		m.kind = DE_IPC_HELLO;
		m.version = f->hello->version;
		m.pid = f->hello->pid;
		m.events = f->hello->events;
		if (!(m.capabilities = strdup(f->hello->capabilities)) ||
		    !dup_opt(f->hello->event_source, &m.event_source) ||
		    !dup_opt(f->hello->event_source_reason, &m.event_reason))
			rc = de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
		break;
	case DAEMONEYE__IPC__FRAME__BODY_SCAN_REQUEST:
		m.kind = DE_IPC_SCAN_REQUEST;
		m.scan_id = f->scan_request->scan_id;
		m.connections = f->scan_request->has_connections && f->scan_request->connections;
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
		m.stats.hashed_files = (size_t)f->scan_done->hashed_files;
		m.hash_hits = f->scan_done->hash_hits;
		m.event_restarts = f->scan_done->event_restarts;
		break;
	case DAEMONEYE__IPC__FRAME__BODY_EVENT:
		m.kind = DE_IPC_EVENT;
		m.event.kind = (enum de_process_event_kind)f->event->kind;
		m.event.pid = f->event->pid;
		m.event.time_ms = f->event->time_ms;
		m.event.has_exit_code = f->event->has_exit_code;
		m.event.exit_code = f->event->exit_code;
		m.event.ppid = f->event->has_ppid ? f->event->ppid : 0;
		m.event.start_time = f->event->has_start_time ? f->event->start_time : 0;
		m.event.lost = f->event->has_lost ? f->event->lost : 0;
		if (!de_process_event_kind_name(m.event.kind)) {
			rc = de_error_set(err, DE_ERR_VALIDATION, EBADMSG,
					  "malformed IPC frame: unknown event kind");
			break;
		}
		if ((m.event.kind == DE_PROCESS_TCP) != (f->event->connection != NULL) ||
		    (f->event->process && m.event.kind != DE_PROCESS_EXEC)) {
			rc = de_error_set(err, DE_ERR_VALIDATION, EBADMSG,
					  "malformed IPC frame: event fields of another kind");
			break;
		}
		if (f->event->connection) {
			if ((why = pb_to_conn(f->event->connection, &m.event.conn))) {
				rc = de_error_set(err, DE_ERR_VALIDATION, EBADMSG,
						  "malformed IPC frame: %s", why);
				break;
			}
			m.event.has_conn = true;
		}
		if (f->event->process) {
			m.event.has_record = true;
			rc = pb_to_record(f->event->process, &m.event.record, err);
		}
		break;
	case DAEMONEYE__IPC__FRAME__BODY_CONNECTION:
		m.kind = DE_IPC_CONNECTION;
		if ((why = pb_to_conn(f->connection, &m.conn)))
			rc = de_error_set(err, DE_ERR_VALIDATION, EBADMSG,
					  "malformed IPC frame: %s", why);
		break;
	default:
		rc = de_error_set(err, DE_ERR_VALIDATION, EBADMSG,
				  "unknown IPC frame: no known message kind");
		break;
	}
	arena_release(&arena); /* f and all it points to */
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
	/* bytes read: in.p[off..in.len) are not decoded yet (whole frames, then
	   at most the start of one); what is before off is compacted away
	   only before the next read, not after each frame */
	struct de_buf in;
	size_t off;
	bool drained;	       /* the last read stopped short of the room it had */
	size_t last, last_len; /* the frame decoded last: in.p[last..last + last_len) */
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

/* The bytes read and not decoded yet. */
static size_t unread(const struct de_ipc_reader *r)
{
	return r->in.len - r->off;
}

bool de_ipc_reader_pending(const struct de_ipc_reader *r)
{
	return unread(r) >= DE_IPC_HEADER &&
	       unread(r) - DE_IPC_HEADER >= get_be32((const uint8_t *)r->in.p + r->off);
}

const uint8_t *de_ipc_reader_last(const struct de_ipc_reader *r, size_t *len)
{
	*len = r->last_len;
	return (const uint8_t *)r->in.p + r->last;
}

bool de_ipc_reader_drained(const struct de_ipc_reader *r)
{
	return r->drained && !de_ipc_reader_pending(r);
}

/* The error for a channel the peer closed with n bytes of a frame read. */
static int peer_closed(size_t n, struct de_error *err)
{
	if (n == 0)
		return de_error_set(err, DE_ERR_IO, EPIPE, "IPC peer closed the channel");
	return de_error_set(err, DE_ERR_IO, EPROTO,
			    "truncated IPC frame: peer closed after %zu bytes", n);
}

/*
 * Before a read: the bytes not decoded moved to the front, and room for the
 * whole frame they start (its length is checked against the limit by
 * decode first) and at least a chunk to read into.  An empty buffer that a
 * large frame grew goes back to a chunk.
 */
static int make_room(struct de_ipc_reader *r, struct de_error *err)
{
	struct de_buf *b = &r->in;
	size_t n = unread(r), want;
	int rc;

	r->last_len = 0;
	if (r->off) {
		memmove(b->p, b->p + r->off, n);
		b->len = n;
		r->off = 0;
	}
	if (n == 0 && b->cap > 4 * READ_CHUNK) {
		de_buf_free(b); /* max kept */
		if ((rc = de_buf_reserve(b, READ_CHUNK)) < 0)
			return de_error_set(err, DE_ERR_IO, -rc, "IPC read: %s", strerror(-rc));
	}
	want = n >= DE_IPC_HEADER ? DE_IPC_HEADER + get_be32((const uint8_t *)b->p) : DE_IPC_HEADER;
	if ((rc = de_buf_reserve(b, want > n ? want - n : 0)) < 0 ||
	    (b->cap - 1 - b->len < READ_CHUNK && (rc = de_buf_reserve(b, READ_CHUNK)) < 0))
		return de_error_set(err, DE_ERR_IO, -rc, "IPC read: %s", strerror(-rc));
	return 0;
}

/* Count n bytes read into the room make_room left. */
static void got_bytes(struct de_ipc_reader *r, size_t n)
{
	r->drained = n < r->in.cap - 1 - r->in.len;
	r->in.len += n;
}

int de_ipc_reader_fill(struct de_ipc_reader *r, struct de_error *err)
{
	ssize_t n;
	int rc;

	if ((rc = make_room(r, err)) < 0)
		return rc;
	n = recv(r->fd, r->in.p + r->in.len, r->in.cap - 1 - r->in.len, MSG_DONTWAIT);
	if (n > 0) {
		got_bytes(r, (size_t)n);
		return n > INT32_MAX ? INT32_MAX : (int)n;
	}
	if (n == 0)
		return peer_closed(unread(r), err);
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		r->drained = true;
		return 0;
	}
	if (errno == EINTR)
		return -EINTR;
	return de_error_set(err, DE_ERR_IO, errno, "IPC read: %s", strerror(errno));
}

/* The next frame; before each read, wait until deadline_ms (monotonic) unless it is < 0. */
static int recv_frame(struct de_ipc_reader *r, struct de_ipc_msg *out, int64_t deadline_ms,
		      struct de_error *err)
{
	struct de_buf *b = &r->in;

	for (;;) {
		size_t used = 0;
		int rc = de_ipc_decode((const uint8_t *)b->p + r->off, unread(r), &used, out, err);
		ssize_t n;

		if (rc == 0) {
			r->last = r->off;
			r->last_len = used;
			r->off += used;
			if (r->off == b->len)
				b->len = r->off = 0; /* the bytes stay until the next read */
			return 0;
		}
		if (rc != -EAGAIN)
			return rc;
		if ((rc = make_room(r, err)) < 0)
			return rc;
		/* what is there already needs no poll (the frames of a batch
		   arrive together); a descriptor that is not a socket polls */
		n = deadline_ms >= 0 ? recv(r->fd, b->p + b->len, b->cap - 1 - b->len, MSG_DONTWAIT)
				     : -1;
		if (n > 0) {
			got_bytes(r, (size_t)n);
			continue;
		}
		if (deadline_ms >= 0 && n < 0 && errno == EINTR)
			return -EINTR;
		if (deadline_ms >= 0 && n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != ENOTSOCK)
			return de_error_set(err, DE_ERR_IO, errno, "IPC read: %s", strerror(errno));
		if (deadline_ms >= 0 && n == 0)
			return peer_closed(unread(r), err);
		if (deadline_ms >= 0) {
			int64_t left = deadline_ms - de_mono_ms();
			struct pollfd p = {r->fd, POLLIN, 0};
			int pr = left > 0 ? poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left)
					  : 0;
			if (pr < 0 && errno == EINTR)
				return -EINTR;
			if (pr < 0)
				return de_error_set(err, DE_ERR_IO, errno, "IPC poll: %s",
						    strerror(errno));
			if (pr == 0)
				return de_error_set(err, DE_ERR_IO, ETIMEDOUT,
						    "IPC read: no answer in time");
		}
		n = read(r->fd, b->p + b->len, b->cap - 1 - b->len);
		if (n < 0) {
			if (errno == EINTR)
				return -EINTR;
			return de_error_set(err, DE_ERR_IO, errno, "IPC read: %s", strerror(errno));
		}
		if (n == 0)
			return peer_closed(unread(r), err);
		got_bytes(r, (size_t)n);
	}
}

int de_ipc_recv(struct de_ipc_reader *r, struct de_ipc_msg *out, struct de_error *err)
{
	return recv_frame(r, out, -1, err);
}

int de_ipc_recv_until(struct de_ipc_reader *r, struct de_ipc_msg *out, int64_t deadline_ms,
		      struct de_error *err)
{
	return recv_frame(r, out, deadline_ms < 0 ? 0 : deadline_ms, err);
}
