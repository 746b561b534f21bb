/*
 * bpfevents.c — the kernel sensor's user-space half (see bpfevents.h): load
 * src/bpf/sensor.bpf.c (embedded through bpftool's skeleton, or an object
 * file named by the caller), attach its raw tracepoints, and turn the
 * records of its ring buffer (src/bpf/sensor.h) into de_process_events.
 *
 * libbpf writes its diagnostics through a print callback; while loading we
 * keep them in a buffer so that a refusal can be explained in one
 * sentence (the last line of the verifier's log says what it rejected),
 * and the library itself never prints.  Records are parsed with every
 * length checked against the record's size before use: the ring buffer is
 * written by our program, but a parser that trusts nothing is what the
 * fuzz target checks.
 *
 * The loading runs in a child forked for it (de_bpfevents_open): the
 * kernel's BTF that libbpf parses for CO-RE is several MiB of heap, which
 * would otherwise stay in the caller's peak resident size for its life.
 * The child passes the ring buffer's map, the .bss map and the links back
 * with SCM_RIGHTS and exits; a link's descriptor is the attachment, so the
 * programs stay attached as long as the caller holds them.
 */
#include "daemoneye/bpfevents.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "daemoneye/clock.h"

#include <linux/types.h>

#include "../bpf/sensor.h"

#ifdef DE_HAVE_BPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "sensor.skel.h"
#endif

void de_bpfevents_options_default(struct de_bpfevents_options *o)
{
	memset(o, 0, sizeof(*o));
	o->argv_max = 32768;
	o->ringbuf_kb = 1024;
	o->wake_gap_us = DE_BPFEVENTS_WAKE_GAP_US;
	o->tcp = true;
}

bool de_bpfevents_built(void)
{
#ifdef DE_HAVE_BPF
	return true;
#else
	return false;
#endif
}

int de_bpfevents_busy_poll_ms(const struct de_bpfevents *ev)
{
	uint32_t us = de_bpfevents_wake_gap_us(ev);

	return (int)((us ? us : DE_BPFEVENTS_WAKE_GAP_US) / 1000) + 1;
}

int de_cpu_sample_parse(const char *text, struct de_cpu_sample *s)
{
	const char *p = text + 4;
	uint64_t v[8];

	/* "cpu" and at least the eight fields every kernel since 2.6.11 has */
	if (strncmp(text, "cpu ", 4) != 0)
		return -EBADMSG;
	for (int i = 0; i < 8; i++) {
		char *end;
		while (*p == ' ')
			p++;
		if (*p < '0' || *p > '9')
			return -EBADMSG;
		errno = 0;
		v[i] = strtoull(p, &end, 10);
		if (errno || (*end != ' ' && *end != '\n' && *end != '\0'))
			return -EBADMSG;
		p = end;
	}
	s->idle = v[3] + v[4];
	s->total = 0;
	for (int i = 0; i < 8; i++)
		s->total += v[i];
	return 0;
}

int de_cpu_sample_read(struct de_cpu_sample *s)
{
	char buf[512];
	int fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1); /* the first line is all it takes */
	int e = errno;
	close(fd);
	if (n < 0)
		return -e;
	buf[n] = '\0';
	return de_cpu_sample_parse(buf, s);
}

uint32_t de_bpfevents_gap_for_cpu(uint32_t current_us, const struct de_cpu_sample *prev,
				  const struct de_cpu_sample *cur)
{
	if (cur->total <= prev->total || cur->idle < prev->idle)
		return current_us; /* no time passed, or counters that went back */
	uint64_t idle = (cur->idle - prev->idle) * 1000 / (cur->total - prev->total);
	if (idle >= DE_BPFEVENTS_IDLE_LONG_PERMILLE)
		return DE_BPFEVENTS_WAKE_GAP_IDLE_US;
	if (idle < DE_BPFEVENTS_IDLE_SHORT_PERMILLE)
		return DE_BPFEVENTS_WAKE_GAP_US;
	return current_us;
}

void de_bpf_clock_now(struct de_bpf_clock *c)
{
	struct timespec rt, bt;

	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_BOOTTIME, &bt);
	c->boot_to_epoch_ns = ((int64_t)rt.tv_sec - (int64_t)bt.tv_sec) * 1000000000 +
			      ((int64_t)rt.tv_nsec - (int64_t)bt.tv_nsec);
	c->clk_tck = sysconf(_SC_CLK_TCK);
	/* the collector's start times use /proc/stat's btime: the same here,
	   so an instance's (pid, start_time) is the one a scan gives it */
	c->btime_ms = c->boot_to_epoch_ns / 1000000000 * 1000;
	int64_t boot = de_boot_time_ms(-1);
	if (boot)
		c->btime_ms = boot;
}

/* ---- parsing ------------------------------------------------------------- */

/* ns after boot as ms since the epoch, as the collector computes start times */
static int64_t start_ms(const struct de_bpf_clock *clk, uint64_t ns, int64_t *ticks)
{
	long hz = clk->clk_tck > 0 ? clk->clk_tck : 100;

	*ticks = (int64_t)(ns / (1000000000ull / (uint64_t)hz));
	return clk->btime_ms + *ticks * 1000 / hz;
}

/*
 * Join path components stored leaf first ("c\0b\0a\0") into "/a/b/c" at
 * out (cap bytes).  An empty list is the root.  Returns the text or NULL
 * when the components are malformed or do not fit.
 */
static const char *join_path(const char *comp, size_t n, char *out, size_t cap)
{
	size_t ends[DE_BPF_PATH_DEPTH + 1], starts[DE_BPF_PATH_DEPTH + 1], k = 0, o = 0;

	for (size_t at = 0; at < n;) {
		const char *nul = memchr(comp + at, '\0', n - at);
		if (!nul || k == DE_BPF_PATH_DEPTH + 1)
			return NULL;
		starts[k] = at;
		ends[k++] = (size_t)(nul - comp);
		at = ends[k - 1] + 1;
	}
	if (k == 0) {
		if (cap < 2)
			return NULL;
		out[0] = '/';
		out[1] = '\0';
		return out;
	}
	while (k--) {
		size_t l = ends[k] - starts[k];
		if (o + 1 + l + 1 > cap)
			return NULL;
		out[o++] = '/';
		memcpy(out + o, comp + starts[k], l);
		o += l;
	}
	out[o] = '\0';
	return out;
}

int de_bpfevents_parse(const void *rec, size_t n, const struct de_bpf_clock *clk,
		       struct de_process_event *e, struct de_kernel_exec *k, char *scratch,
		       size_t cap)
{
	struct de_bpf_hdr h;
	int64_t ticks;

	memset(e, 0, sizeof(*e));
	if (n < sizeof(h))
		return -EBADMSG;
	memcpy(&h, rec, sizeof(h));
	e->pid = h.pid;
	e->timestamp_ns = h.ktime_ns;
	e->time_ms = (int64_t)(h.ktime_ns / 1000000) + clk->boot_to_epoch_ns / 1000000;
	switch (h.kind) {
	case DE_BPF_FORK: {
		struct de_bpf_fork f;
		if (n < sizeof(f))
			return -EBADMSG;
		memcpy(&f, rec, sizeof(f));
		e->kind = DE_PROCESS_FORK;
		e->ppid = f.ppid;
		e->start_time = start_ms(clk, f.start_ns, &ticks);
		return 0;
	}
	case DE_BPF_EXIT: {
		struct de_bpf_exit x;
		if (n < sizeof(x))
			return -EBADMSG;
		memcpy(&x, rec, sizeof(x));
		e->kind = DE_PROCESS_EXIT;
		e->has_exit_code = true;
		e->exit_code = (int32_t)x.exit_code;
		e->start_time = start_ms(clk, x.start_ns, &ticks);
		return 0;
	}
	case DE_BPF_TCP: {
		struct de_bpf_tcp t;
		struct de_connection *c = &e->conn;
		if (n < sizeof(t))
			return -EBADMSG;
		memcpy(&t, rec, sizeof(t));
		e->kind = DE_PROCESS_TCP;
		e->has_conn = true;
		switch (t.op) {
		case DE_BPF_TCP_CONNECT:
			c->kind = DE_CONN_CONNECT;
			break;
		case DE_BPF_TCP_CONNECT_FAILED:
			c->kind = DE_CONN_CONNECT_FAILED;
			break;
		case DE_BPF_TCP_LISTEN:
			c->kind = DE_CONN_LISTEN;
			break;
		case DE_BPF_TCP_ACCEPT:
			c->kind = DE_CONN_ACCEPT;
			break;
		default:
			return -EBADMSG;
		}
		if (t.family == 2)
			c->family = 4;
		else if (t.family == 10)
			c->family = 6;
		else
			return -EBADMSG;
		c->pid = h.pid;
		c->start_time = e->start_time = start_ms(clk, t.start_ns, &ticks);
		memcpy(c->laddr, t.laddr, 16);
		memcpy(c->raddr, t.raddr, 16);
		if (c->family == 4) {
			memset(c->laddr + 4, 0, 12);
			memset(c->raddr + 4, 0, 12);
		}
		c->lport = t.lport;
		c->rport = t.rport;
		c->inode = t.inode;
		c->time_ms = e->time_ms;
		return 0;
	}
	case DE_BPF_EXEC:
		break;
	default:
		return -EBADMSG;
	}

	struct de_bpf_exec x;
	const char *data = (const char *)rec + sizeof(x);
	size_t dn, at = 0, o = 0;

	if (n < sizeof(x))
		return -EBADMSG;
	memcpy(&x, rec, sizeof(x));
	dn = n - sizeof(x);
	if ((uint64_t)x.exe_len + x.cwd_len + x.cg_len + x.argv_len + x.env_len > dn ||
	    x.argv_len > DE_BPF_ARGV_MAX || x.env_len > DE_BPF_ENV_MAX ||
	    cap < (size_t)3 * DE_BPF_PATH_TEXT)
		return -EBADMSG;
	memset(k, 0, sizeof(*k));
	e->kind = DE_PROCESS_EXEC;
	e->ppid = x.ppid;
	e->kexec = k;
	k->pid = h.pid;
	k->ppid = x.ppid;
	k->uid = x.uid;
	k->gid = x.gid;
	k->euid = x.euid;
	k->egid = x.egid;
	k->pgrp = x.pgrp;
	k->session = x.session;
	k->tty_nr = x.flags & DE_BPF_F_TTY ? x.tty_nr : 0;
	k->nice = x.nice;
	k->threads = x.threads;
	e->start_time = start_ms(clk, x.start_ns, &k->start_ticks);
	{
		long hz = clk->clk_tck > 0 ? clk->clk_tck : 100;
		k->utime_ticks = (int64_t)(x.utime_ns / (1000000000ull / (uint64_t)hz));
		k->stime_ticks = (int64_t)(x.stime_ns / (1000000000ull / (uint64_t)hz));
	}
	k->exe_ino = x.exe_ino;
	k->exe_dev = makedev(x.exe_dev >> 20, x.exe_dev & 0xfffff);
	k->pid_ns = x.pid_ns;
	k->mnt_ns = x.mnt_ns;
	k->net_ns = x.net_ns;
	k->user_ns = x.user_ns;
	memcpy(k->comm, x.comm, sizeof(k->comm));
	k->comm[sizeof(k->comm) - 1] = '\0';
	if (!(x.flags & DE_BPF_F_NO_EXE)) {
		if (!(k->exe = join_path(data, x.exe_len, scratch + o, DE_BPF_PATH_TEXT)))
			return -EBADMSG;
		o += DE_BPF_PATH_TEXT;
	}
	at += x.exe_len;
	if (!(x.flags & DE_BPF_F_NO_CWD)) {
		if (!(k->cwd = join_path(data + at, x.cwd_len, scratch + o, DE_BPF_PATH_TEXT)))
			return -EBADMSG;
		o += DE_BPF_PATH_TEXT;
	}
	at += x.cwd_len;
	if (!(k->cgroup = join_path(data + at, x.cg_len, scratch + o, DE_BPF_PATH_TEXT)))
		return -EBADMSG;
	at += x.cg_len;
	k->argv = data + at;
	k->argv_len = x.argv_len;
	at += x.argv_len;
	k->has_env = x.flags & DE_BPF_F_ENV;
	k->env_cut = x.flags & DE_BPF_F_ENV_CUT;
	k->env = data + at;
	k->env_len = x.env_len;
	k->has_exe_stat = (x.flags & DE_BPF_F_EXE_STAT) && !(x.flags & DE_BPF_F_NO_EXE);
	if (k->has_exe_stat) {
		k->exe_unlinked = x.flags & DE_BPF_F_EXE_GONE;
		k->exe_mode = x.exe_mode;
		k->exe_nlink = x.exe_nlink;
		k->exe_size = (int64_t)x.exe_size;
		k->exe_mtime_ns = x.exe_mtime_ns;
		k->exe_ctime_ns = x.exe_ctime_ns;
	}
	k->exe_cut = x.flags & DE_BPF_F_EXE_CUT;
	k->cwd_cut = x.flags & DE_BPF_F_CWD_CUT;
	k->cgroup_cut = x.flags & DE_BPF_F_CG_CUT;
	k->argv_cut = (x.flags & DE_BPF_F_ARGV_CUT) || x.argv_total > x.argv_len;
	return 0;
}

/* ---- loading ------------------------------------------------------------- */

#ifdef DE_HAVE_BPF

struct de_bpfevents {
	int map_fd;	 /* the ring buffer's map */
	int link_fds[8]; /* the attached programs: closing one detaches it */
	size_t nlinks;
	struct ring_buffer *rb;
	volatile struct de_bpf_counters *counters; /* the .bss, mmap'd shared */
	size_t counters_len;			   /* the length of that mapping */
	uint64_t dropped_seen;			   /* drops already reported as LOST */
	uint32_t load_gap_us;			   /* the wake gap set at load */
	struct de_bpf_clock clk;
	/* the read in progress */
	int (*fn)(void *ctx, struct de_process_event *e);
	void *ctx;
	int fn_rc;
	uint64_t bad; /* malformed records (never expected) */
	char scratch[3 * DE_BPF_PATH_TEXT];
};

/* libbpf's diagnostics while loading (one loader at a time). */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_buf[16384];
static size_t log_len;

/* (libbpf's printf-like callback: fmt is libbpf's own format) */
__attribute__((format(printf, 2, 0))) static int capture_print(enum libbpf_print_level level,
							       const char *fmt, va_list ap)
{
	char small[512], *text = small;
	va_list aq;
	size_t n;
	int len;

	if (level == LIBBPF_DEBUG)
		return 0;
	/* the verifier's log comes in one call and can be megabytes: format
	   it whole, keep its tail */
	va_copy(aq, ap);
	len = vsnprintf(small, sizeof(small), fmt, aq);
	va_end(aq);
	if (len < 0)
		return 0;
	if ((size_t)len >= sizeof(small)) {
		if (!(text = malloc((size_t)len + 1)))
			return 0;
		vsnprintf(text, (size_t)len + 1, fmt, ap);
	}
	n = (size_t)len;
	if (n >= sizeof(log_buf) - 1) {
		memcpy(log_buf, text + n - (sizeof(log_buf) - 1), sizeof(log_buf) - 1);
		log_len = sizeof(log_buf) - 1;
	} else {
		if (log_len + n >= sizeof(log_buf)) {
			size_t drop = log_len + n - (sizeof(log_buf) - 1);
			memmove(log_buf, log_buf + drop, log_len - drop);
			log_len -= drop;
		}
		memcpy(log_buf + log_len, text, n);
		log_len += n;
	}
	log_buf[log_len] = '\0';
	if (text != small)
		free(text);
	return 0;
}

/*
 * The verifier's reason from the captured log: the last line of the
 * program's load log that is not its statistics.  Empty when none.
 */
static void verifier_reason(char *out, size_t size)
{
	char *end = strstr(log_buf, "-- END PROG LOAD LOG --"), *p;

	out[0] = '\0';
	if (!end)
		return;
	/* back from the end marker, skipping the statistics lines (the log's
	   start may have been dropped to keep its tail) */
	*end = '\0';
	while ((p = strrchr(log_buf, '\n'))) {
		char *line = p + 1;
		if (*line && strncmp(line, "processed ", 10) != 0 &&
		    strncmp(line, "verification time", 17) != 0 &&
		    strncmp(line, "stack depth", 11) != 0 && strncmp(line, "-- ", 3) != 0) {
			snprintf(out, size, "%s", line);
			return;
		}
		*p = '\0';
	}
}

/* The map whose name ends with suffix (".rodata", ".bss"), or NULL. */
static struct bpf_map *map_ending(struct bpf_object *obj, const char *suffix)
{
	struct bpf_map *m;
	size_t sl = strlen(suffix);

	bpf_object__for_each_map(m, obj)
	{
		const char *name = bpf_map__name(m);
		size_t l = strlen(name);
		if (l >= sl && strcmp(name + l - sl, suffix) == 0)
			return m;
	}
	return NULL;
}

static int on_sample(void *ctx, void *data, size_t size)
{
	struct de_bpfevents *ev = ctx;
	struct de_process_event e;
	struct de_kernel_exec k;

	if (ev->fn_rc < 0)
		return ev->fn_rc;
	if (de_bpfevents_parse(data, size, &ev->clk, &e, &k, ev->scratch, sizeof(ev->scratch)) <
	    0) {
		ev->bad++;
		return 0;
	}
	ev->fn_rc = ev->fn(ev->ctx, &e);
	return ev->fn_rc < 0 ? ev->fn_rc : 0;
}

static const char *const tcp_programs[] = {"on_sock_state", "on_sys_exit"};

/*
 * What the loader child sends back, in one datagram: the result and, on
 * success, in SCM_RIGHTS the ring buffer's map, the .bss map and each
 * link, in that order.
 */
struct loaded {
	int32_t rc;	  /* 0 or -errno */
	int32_t category; /* enum de_error_category when rc < 0 */
	uint32_t nlinks;
	uint32_t unused;
	uint64_t bss_size; /* the .bss value's size */
	char message[DE_ERROR_MSG_MAX];
};
#define LOADED_FDS_MAX (2 + 8)

/* The wake gap an open with o loads (us). */
static uint32_t load_gap_us(const struct de_bpfevents_options *o)
{
	return o->wake_gap_us ? o->wake_gap_us : DE_BPFEVENTS_WAKE_GAP_US;
}

/*
 * The program's settings from o: the wake gap, the argv bound and the
 * environment variables to look for, unless they do not fit (more than
 * DE_BPF_ENV_NAMES, or a name too long): then none, and user space reads
 * the environment from /proc as the record says.
 */
static void set_settings(const struct de_bpfevents_options *o, struct de_bpf_settings *s)
{
	bool fit = o->nenv_names <= DE_BPF_ENV_NAMES;

	memset(s, 0, sizeof(*s));
	s->wake_gap_ns = (uint64_t)load_gap_us(o) * 1000;
	s->argv_max = o->argv_max;
	for (size_t i = 0; fit && i < o->nenv_names; i++)
		fit = strlen(o->env_names[i]) < DE_BPF_ENV_NAME && o->env_names[i][0];
	for (size_t i = 0; fit && i < o->nenv_names; i++) {
		s->env_name_len[i] = (uint32_t)strlen(o->env_names[i]);
		memcpy(s->env_names[i], o->env_names[i], s->env_name_len[i]);
	}
	s->env_nnames = fit ? (uint32_t)o->nenv_names : 0;
}

/*
 * The loading itself (in the loader child): open the object, size its
 * maps, load and attach.  On success *obj and links[0 .. *nlinks) hold it
 * and *bss_size the counters' size; the child exits without freeing them.
 * Called with log_lock held.
 */
static int load(const struct de_bpfevents_options *o, struct bpf_object **objp,
		struct bpf_link **links, size_t *nlinks, uint64_t *bss_size, struct de_error *err)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .object_name = "de_sensor");
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct bpf_map *m;
	char why[512];
	int rc, ncpu;
	size_t sz;

	oo.btf_custom_path = o->btf_path;
	libbpf_set_print(capture_print);
	if (o->object_path) {
		obj = bpf_object__open_file(o->object_path, &oo);
	} else {
		const void *elf = sensor_bpf__elf_bytes(&sz);
		obj = bpf_object__open_mem(elf, sz, &oo);
	}
	if (!obj) {
		rc = errno ? errno : EINVAL;
		return de_error_set(err, DE_ERR_IO, rc, "cannot open the eBPF object%s%s: %s",
				    o->object_path ? " " : "", o->object_path ? o->object_path : "",
				    strerror(rc));
	}
	*objp = obj;
	/* settings before loading: the argv bound (the object's only
	   constant), the ring buffer's size, a scratch slot per CPU */
	if (!(m = map_ending(obj, ".rodata")) || !bpf_map__initial_value(m, &sz) ||
	    sz != sizeof(struct de_bpf_settings) || !bpf_object__find_map_by_name(obj, "events") ||
	    !bpf_object__find_map_by_name(obj, "exec_buf") || !map_ending(obj, ".bss"))
		return de_error_set(err, DE_ERR_IO, EINVAL,
				    "the eBPF object is not daemoneye's sensor (its maps differ)");
	set_settings(o, (struct de_bpf_settings *)bpf_map__initial_value(m, &sz));
	ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0 ||
	    bpf_map__set_max_entries(bpf_object__find_map_by_name(obj, "events"),
				     o->ringbuf_kb * 1024u) < 0 ||
	    bpf_map__set_max_entries(bpf_object__find_map_by_name(obj, "exec_buf"),
				     (uint32_t)ncpu) < 0)
		return de_error_set(err, DE_ERR_IO, EINVAL, "cannot size the eBPF maps");
	for (size_t i = 0; !o->tcp && i < sizeof(tcp_programs) / sizeof(tcp_programs[0]); i++)
		if ((prog = bpf_object__find_program_by_name(obj, tcp_programs[i])))
			bpf_program__set_autoload(prog, false);
	if ((rc = bpf_object__load(obj)) < 0) {
		char reason[256];
		verifier_reason(reason, sizeof(reason));
		if (reason[0]) {
			snprintf(why, sizeof(why),
				 "an eBPF program failed the kernel's verification: %s", reason);
			return de_error_set(err, DE_ERR_IO, EINVAL, "%s", why);
		}
		if (rc == -EPERM || rc == -EACCES)
			return de_error_set(err, DE_ERR_IO, -rc,
					    "the kernel refused to load eBPF programs (%s): it "
					    "needs CAP_BPF and CAP_PERFMON (root), no lockdown and "
					    "no seccomp filter denying bpf(2)",
					    strerror(-rc));
		return de_error_set(err, DE_ERR_IO, -rc, "cannot load the eBPF programs: %s",
				    strerror(-rc));
	}
	bpf_object__for_each_program(prog, obj)
	{
		struct bpf_link *l;
		if (!bpf_program__autoload(prog))
			continue;
		if (*nlinks == LOADED_FDS_MAX - 2 || !(l = bpf_program__attach(prog))) {
			rc = errno ? errno : EINVAL;
			return de_error_set(err, DE_ERR_IO, rc, "cannot attach eBPF program %s: %s",
					    bpf_program__name(prog), strerror(rc));
		}
		links[(*nlinks)++] = l;
	}
	*bss_size = bpf_map__value_size(map_ending(obj, ".bss"));
	if (*bss_size < sizeof(struct de_bpf_counters))
		return de_error_set(err, DE_ERR_IO, EINVAL,
				    "the eBPF object is not daemoneye's sensor (no counters)");
	return 0;
}

/* The loader child: load, send the result and the descriptors on sock, exit. */
static _Noreturn void loader_child(const struct de_bpfevents_options *o, int sock)
{
	struct loaded msg = {0};
	struct de_error err = {0};
	struct bpf_object *obj = NULL;
	struct bpf_link *links[LOADED_FDS_MAX - 2];
	size_t nlinks = 0, nfds = 0;
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * LOADED_FDS_MAX)];
	} c;
	int fds[LOADED_FDS_MAX];
	struct iovec iov = {&msg, sizeof(msg)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	msg.rc = load(o, &obj, links, &nlinks, &msg.bss_size, &err);
	if (msg.rc < 0) {
		msg.category = (int32_t)err.category;
		snprintf(msg.message, sizeof(msg.message), "%s", err.message);
	} else {
		fds[nfds++] = bpf_map__fd(bpf_object__find_map_by_name(obj, "events"));
		fds[nfds++] = bpf_map__fd(map_ending(obj, ".bss"));
		for (size_t i = 0; i < nlinks; i++)
			fds[nfds++] = bpf_link__fd(links[i]);
		msg.nlinks = (uint32_t)nlinks;
		memset(&c, 0, sizeof(c));
		mh.msg_control = c.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *ch = CMSG_FIRSTHDR(&mh);
		ch->cmsg_level = SOL_SOCKET;
		ch->cmsg_type = SCM_RIGHTS;
		ch->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(ch), fds, sizeof(int) * nfds);
	}
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	/* nothing freed: everything the load allocated dies with us, and the
	   parent's copies of the descriptors keep the programs attached */
	_exit(n == (ssize_t)sizeof(msg) ? 0 : 1);
}

/*
 * The parent's side: the child's datagram and descriptors (fds, *nfds), or
 * an error saying what became of the child.  Reaps the child.
 */
static int loader_result(pid_t pid, int sock, struct loaded *msg, int *fds, size_t *nfds,
			 struct de_error *err)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * LOADED_FDS_MAX)];
	} c;
	struct iovec iov = {msg, sizeof(*msg)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = c.b,
			    .msg_controllen = sizeof(c.b)};
	bool extra = false;
	ssize_t n;
	int st = 0, rc;

	*nfds = 0;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	rc = n < 0 ? errno : 0;
	for (struct cmsghdr *ch = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL; ch;
	     ch = CMSG_NXTHDR(&mh, ch)) {
		size_t k = ch->cmsg_level == SOL_SOCKET && ch->cmsg_type == SCM_RIGHTS
				   ? (ch->cmsg_len - CMSG_LEN(0)) / sizeof(int)
				   : 0;
		for (size_t i = 0; i < k; i++) {
			int d;
			memcpy(&d, CMSG_DATA(ch) + i * sizeof(int), sizeof(int));
			if (*nfds < LOADED_FDS_MAX)
				fds[(*nfds)++] = d;
			else {
				close(d);
				extra = true;
			}
		}
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (n == (ssize_t)sizeof(*msg) && !extra && !(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) &&
	    msg->rc <= 0 && (msg->rc < 0 || *nfds == 2 + (size_t)msg->nlinks)) {
		msg->message[sizeof(msg->message) - 1] = '\0';
		return 0;
	}
	for (size_t i = 0; i < *nfds; i++)
		close(fds[i]);
	*nfds = 0;
	if (n < 0)
		return de_error_set(err, DE_ERR_IO, rc, "the eBPF loader's channel: %s",
				    strerror(rc));
	if (WIFSIGNALED(st))
		return de_error_set(err, DE_ERR_IO, EIO,
				    "the process loading the eBPF sensor died (signal %d)",
				    WTERMSIG(st));
	return de_error_set(err, DE_ERR_IO, EIO,
			    "the process loading the eBPF sensor sent no valid answer");
}

/*
 * Loading runs in a child forked for it: libbpf parses the kernel's whole
 * BTF (several MiB on a distribution kernel) to relocate the programs,
 * and the heap that takes would stay in the caller's peak resident size
 * (its high-water mark) for its life.  The child loads and attaches,
 * passes the maps' and links' descriptors back over a socketpair and
 * exits; we map the ring buffer and the counters from those descriptors.
 * The child inherits the caller's privileges and seccomp filter, so what
 * it may do is what the caller may.
 */
int de_bpfevents_open(const struct de_bpfevents_options *o, struct de_bpfevents **out,
		      struct de_error *err)
{
	struct de_bpfevents *ev;
	const char *btf = o->btf_path;
	struct loaded msg;
	int fds[LOADED_FDS_MAX], sv[2], rc;
	size_t nfds = 0;
	uint32_t rb = o->ringbuf_kb;
	pid_t pid;

	*out = NULL;
	if (o->argv_max < 256 || o->argv_max > DE_BPF_ARGV_MAX)
		return de_error_set(err, DE_ERR_CONFIGURATION, EINVAL,
				    "the eBPF argv bound must be 256 .. %d bytes", DE_BPF_ARGV_MAX);
	if (rb < 4 || (rb & (rb - 1)) || rb > (1u << 20))
		return de_error_set(err, DE_ERR_CONFIGURATION, EINVAL,
				    "the eBPF ring buffer must be a power of two from 4 to "
				    "1048576 KiB, not %u",
				    rb);
	/* CO-RE needs the kernel's types: say so plainly rather than through
	   libbpf's relocation errors */
	if (access(btf ? btf : "/sys/kernel/btf/vmlinux", R_OK) < 0)
		return de_error_set(err, DE_ERR_IO, ENOENT,
				    "no BTF type information for the kernel (%s: %s); the eBPF "
				    "sensor needs a kernel built with CONFIG_DEBUG_INFO_BTF",
				    btf ? btf : "/sys/kernel/btf/vmlinux", strerror(errno));
	if (!(ev = calloc(1, sizeof(*ev))))
		return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	ev->map_fd = -1;
	ev->load_gap_us = load_gap_us(o);
	de_bpf_clock_now(&ev->clk);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		rc = de_error_set(err, DE_ERR_IO, errno, "cannot load the eBPF sensor: %s",
				  strerror(errno));
		free(ev);
		return rc;
	}
	/* the child logs into log_buf: held across the fork, it is the
	   child's alone (its one thread holds it) */
	pthread_mutex_lock(&log_lock);
	log_len = 0;
	log_buf[0] = '\0';
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		loader_child(o, sv[1]);
	}
	pthread_mutex_unlock(&log_lock);
	close(sv[1]);
	if (pid < 0) {
		rc = de_error_set(err, DE_ERR_IO, errno, "cannot load the eBPF sensor: fork: %s",
				  strerror(errno));
		close(sv[0]);
		free(ev);
		return rc;
	}
	rc = loader_result(pid, sv[0], &msg, fds, &nfds, err);
	close(sv[0]);
	if (rc < 0) {
		free(ev);
		return rc;
	}
	if (msg.rc < 0) {
		enum de_error_category cat =
			msg.category > DE_ERR_NONE && msg.category < DE_ERR_CATEGORY_MAX
				? (enum de_error_category)msg.category
				: DE_ERR_IO;
		free(ev);
		return de_error_set(err, cat, -msg.rc, "%s", msg.message);
	}
	ev->map_fd = fds[0];
	ev->nlinks = msg.nlinks;
	memcpy(ev->link_fds, fds + 2, sizeof(int) * ev->nlinks);
	/* the program's .bss, mapped shared: read with no system call, and
	   written for the wake gap (de_bpfevents_set_wake_gap) */
	ev->counters_len =
		((size_t)msg.bss_size + (size_t)getpagesize() - 1) & ~((size_t)getpagesize() - 1);
	void *bss = mmap(NULL, ev->counters_len, PROT_READ | PROT_WRITE, MAP_SHARED, fds[1], 0);
	close(fds[1]); /* the mapping keeps the map */
	if (bss == MAP_FAILED) {
		rc = de_error_set(err, DE_ERR_IO, errno, "cannot map the eBPF counters: %s",
				  strerror(errno));
		goto fail;
	}
	ev->counters = bss;
	ev->rb = ring_buffer__new(ev->map_fd, on_sample, ev, NULL);
	if (!ev->rb) {
		rc = errno ? errno : EINVAL;
		rc = de_error_set(err, DE_ERR_IO, rc, "cannot map the eBPF ring buffer: %s",
				  strerror(rc));
		goto fail;
	}
	*out = ev;
	return 0;
fail:
	de_bpfevents_close(ev);
	return rc;
}

void de_bpfevents_close(struct de_bpfevents *ev)
{
	if (!ev)
		return;
	ring_buffer__free(ev->rb);
	if (ev->counters)
		munmap((void *)ev->counters, ev->counters_len);
	for (size_t i = 0; i < ev->nlinks; i++)
		close(ev->link_fds[i]);
	if (ev->map_fd >= 0)
		close(ev->map_fd);
	free(ev);
}

int de_bpfevents_fd(const struct de_bpfevents *ev)
{
	return ring_buffer__epoll_fd(ev->rb);
}

void de_bpfevents_set_wake_gap(struct de_bpfevents *ev, uint32_t us)
{
	if (ev)
		ev->counters->wake_gap_ns = (uint64_t)us * 1000;
}

uint32_t de_bpfevents_wake_gap_us(const struct de_bpfevents *ev)
{
	if (!ev)
		return 0;
	uint64_t ns = ev->counters->wake_gap_ns;
	return ns ? (uint32_t)(ns / 1000) : ev->load_gap_us;
}

uint64_t de_bpfevents_delivered(const struct de_bpfevents *ev)
{
	return ev ? ev->counters->events : 0;
}

uint64_t de_bpfevents_dropped(const struct de_bpfevents *ev)
{
	return ev ? ev->counters->dropped : 0;
}

uint64_t de_bpfevents_fill_wakes(const struct de_bpfevents *ev)
{
	return ev ? ev->counters->fill_wakes : 0;
}

int de_bpfevents_read(struct de_bpfevents *ev, int (*fn)(void *ctx, struct de_process_event *e),
		      void *ctx, struct de_error *err)
{
	uint64_t dropped;
	int rc;

	ev->fn = fn;
	ev->ctx = ctx;
	ev->fn_rc = 0;
	rc = ring_buffer__consume(ev->rb);
	if (ev->fn_rc < 0)
		return ev->fn_rc;
	if (rc < 0)
		return de_error_set(err, DE_ERR_IO, -rc, "eBPF ring buffer: %s", strerror(-rc));
	/* what the kernel could not write: said once per read, then reconciled */
	dropped = ev->counters->dropped;
	if (dropped != ev->dropped_seen) {
		struct de_process_event e = {.kind = DE_PROCESS_LOST,
					     .time_ms = de_now_ms(),
					     .lost = dropped - ev->dropped_seen};
		ev->dropped_seen = dropped;
		return fn(ctx, &e);
	}
	return 0;
}

#else /* !DE_HAVE_BPF */

struct de_bpfevents {
	int unused;
};

int de_bpfevents_open(const struct de_bpfevents_options *o, struct de_bpfevents **out,
		      struct de_error *err)
{
	(void)o;
	(void)out;
	return de_error_set(err, DE_ERR_IO, ENOTSUP,
			    "this daemoneye was built without the eBPF sensor (no libbpf, "
			    "bpftool or clang at build time)");
}

void de_bpfevents_close(struct de_bpfevents *ev)
{
	(void)ev;
}

int de_bpfevents_fd(const struct de_bpfevents *ev)
{
	(void)ev;
	return -1;
}

void de_bpfevents_set_wake_gap(struct de_bpfevents *ev, uint32_t us)
{
	(void)ev;
	(void)us;
}

uint32_t de_bpfevents_wake_gap_us(const struct de_bpfevents *ev)
{
	(void)ev;
	return 0;
}

uint64_t de_bpfevents_delivered(const struct de_bpfevents *ev)
{
	(void)ev;
	return 0;
}

uint64_t de_bpfevents_dropped(const struct de_bpfevents *ev)
{
	(void)ev;
	return 0;
}

uint64_t de_bpfevents_fill_wakes(const struct de_bpfevents *ev)
{
	(void)ev;
	return 0;
}

int de_bpfevents_read(struct de_bpfevents *ev, int (*fn)(void *ctx, struct de_process_event *e),
		      void *ctx, struct de_error *err)
{
	(void)ev;
	(void)fn;
	(void)ctx;
	return de_error_set(err, DE_ERR_IO, ENOTSUP, "built without the eBPF sensor");
}

#endif
