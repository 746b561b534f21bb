/*
 * sensor.bpf.c — the kernel sensor: exec, fork and exit of processes and
 * TCP connect, listen and accept, written to one BPF ring buffer as the
 * records of sensor.h (read by src/lib/bpfevents.c).
 *
 * Raw tracepoints only (BPF_PROG_TYPE_RAW_TRACEPOINT): they need neither
 * tracefs nor BPF trampolines (fentry), nor kprobes, and every hook here
 * has one on the kernels we run on:
 *   sched_process_exec   the exec is done, the new image is mapped: argv is
 *                        read from its memory (mm->arg_start..arg_end), the
 *                        image's path from mm->exe_file, the credentials,
 *                        parent, cgroup and namespaces from the task;
 *   sched_process_fork   a new process (threads are skipped);
 *   sched_process_exit   the last thread of a process (group_dead);
 *   inet_sock_set_state  CLOSE -> SYN_SENT remembers which process connects
 *                        (in process context, before the source port is
 *                        chosen), SYN_SENT -> ESTABLISHED or CLOSE reports
 *                        the connection with its ports; CLOSE -> LISTEN is
 *                        a listen (process context);
 *   sys_exit             accept(2) and accept4(2) returning a descriptor:
 *                        the new socket is found in the caller's descriptor
 *                        table (there is no tracepoint on the accept path
 *                        itself and this kernel has no kprobes).
 * Everything is read with CO-RE (BPF_CORE_READ), so one object loads on
 * any kernel whose BTF has these fields.
 *
 * A record that does not fit into the ring buffer is counted in
 * counters.dropped (.bss, which user space reads through the map's mmap);
 * user space reports it and reconciles with a full scan.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "sensor.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by user space before loading (collection.ebpf_argv_max and
   collection.env_capture); the object's only constant data. */
const volatile struct de_bpf_settings settings = {.wake_gap_ns = 4000000, .argv_max = 32768};

struct de_bpf_counters counters;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* user space sets collection.ebpf_ringbuf_kb */
} events SEC(".maps");

/* The exec record is built here, one slot per CPU (user space sets
 * max_entries to the number of possible CPUs; a per-CPU array cannot hold
 * values this big): it is too big for the stack and its size is only
 * known at the end.  Tracepoints run with preemption off, and no other
 * program uses these slots, so one CPU's slot has one writer at a time. */
#define DATA_PATHS 16384 /* exe + cwd + cgroup components, at most */
#define PATHS_MASK (DATA_PATHS - 1)
struct exec_scratch {
	struct de_bpf_exec e;
	/* see the argv read; the environment's strings follow argv, one
	   whole chunk past the kept ones at most */
	char data[DATA_PATHS + 2 * DE_BPF_ARGV_MAX + DE_BPF_ENV_MAX + DE_BPF_ENV_CHUNK];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_scratch);
} exec_buf SEC(".maps");

/* Outbound connections between SYN_SENT and their outcome: who made them. */
struct connecting {
	__u32 tgid;
	__u32 pad;
	__u64 start_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct connecting);
} connects SEC(".maps");

/* The inode's times as older kernels lay them out: timespec64 fields
   (up to 6.5), ctime renamed __i_ctime (6.6), mtime __i_mtime (6.7 ..
   6.10); since 6.11 seconds and nanoseconds are separate fields. */
struct inode___v65 {
	struct timespec64 i_mtime, i_ctime;
};
struct inode___v66 {
	struct timespec64 i_mtime, __i_ctime;
};
struct inode___v67 {
	struct timespec64 __i_mtime, __i_ctime;
};

/* kernfs_node's parent was renamed __parent (6.15). */
struct kernfs_node___old {
	struct kernfs_node *parent;
};

#define TCP_ESTABLISHED_ 1
#define TCP_SYN_SENT_	 2
#define TCP_CLOSE_	 7
#define TCP_LISTEN_	 10
#define AF_INET_	 2
#define AF_INET6_	 10
#define IPPROTO_TCP_	 6
#define NAME_CHUNK	 256 /* one component, NUL included (NAME_MAX + 1) */

/*
 * Wake-ups: a reader woken for every record would pay a poll and a
 * context switch for each of the fork, exec and exit of every process.
 * A record wakes the reader only when the wake gap (counters.wake_gap_ns
 * as procmond sets it, else settings.wake_gap_ns: bpfevents.h) has passed
 * since the last that did (so the first after a quiet spell goes at once),
 * and a fork never does (the exec that follows it within microseconds does;
 * user space forwards no fork alone).  The others wait for the next
 * wake-up, or for the reader's own short poll timeout while records come
 * (bpfevents.h: de_bpfevents_busy_poll_ms), so a record waits a few
 * milliseconds at most; the agent counts that wait against its own batch
 * wait (execwait.c), so it adds little to an exec's way to its alert.  A
 * ring buffer a quarter full wakes the reader whatever the gap, so that a
 * burst never fills it between two wake-ups.  last_wake_ns is shared by
 * every CPU without a lock: a race costs one wake-up more.
 */
static __always_inline void count_output(void *rec, __u64 size, bool may_wake)
{
	__u64 now = bpf_ktime_get_ns(), flags = BPF_RB_NO_WAKEUP;
	__u64 gap_ns = counters.wake_gap_ns ? counters.wake_gap_ns : settings.wake_gap_ns;
	bool gap = now - counters.last_wake_ns >= gap_ns;

	if (may_wake && !gap &&
	    bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >=
		    bpf_ringbuf_query(&events, BPF_RB_RING_SIZE) / 4) {
		gap = true;
		__sync_fetch_and_add(&counters.fill_wakes, 1);
	}
	if (may_wake && gap) {
		counters.last_wake_ns = now;
		flags = BPF_RB_FORCE_WAKEUP;
	}
	if (bpf_ringbuf_output(&events, rec, size, flags) == 0)
		__sync_fetch_and_add(&counters.events, 1);
	else
		__sync_fetch_and_add(&counters.dropped, 1);
}

/*
 * Path walks run under bpf_loop(), whose callback the verifier checks
 * once, rather than as an unrolled or bounded loop whose every iteration
 * it would have to follow.  A walk writes the components of a path into
 * data from off on, leaf first, each ended by a NUL, at most max bytes;
 * cut is set when the path was too deep or too long.
 */
struct walk {
	char *data;
	__u32 off, len, max;
	bool cut;
	struct dentry *dentry; /* dentry walks */
	struct vfsmount *vfsmnt;
	struct mount *mnt;
	struct kernfs_node *kn; /* cgroup walks */
};

static long walk_path_step(__u32 i, void *arg)
{
	/* locals, not w->...: a CO-RE read relocates its whole expression */
	struct walk *w = arg;
	struct dentry *dentry = w->dentry;
	struct vfsmount *vfsmnt = w->vfsmnt;
	struct mount *mnt = w->mnt;
	struct dentry *mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
	struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
	const unsigned char *name;
	long n;

	if (dentry == mnt_root) {
		struct mount *up = BPF_CORE_READ(mnt, mnt_parent);
		if (up == mnt || !up)
			return 1; /* the root of the mount tree */
		w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = up;
		w->vfsmnt = (void *)up + bpf_core_field_offset(struct mount, mnt);
		return 0;
	}
	/* the root of a detached tree ends the walk; when it is the file
	   itself, a pseudo file (a memfd, an anonymous inode), its name is its
	   whole path, as d_path gives it ("/memfd:NAME (deleted)") */
	bool detached = dentry == parent || !parent;
	if (detached && (i > 0 || !parent))
		return 1;
	if (w->len + NAME_CHUNK > w->max) {
		w->cut = true;
		return 1;
	}
	name = BPF_CORE_READ(dentry, d_name.name);
	n = bpf_probe_read_kernel_str(&w->data[(w->off + w->len) & PATHS_MASK], NAME_CHUNK, name);
	if (n <= 0) {
		w->cut = true;
		return 1;
	}
	w->len += (__u32)n;
	if (detached)
		return 1;
	w->dentry = parent;
	if (i == DE_BPF_PATH_DEPTH - 1)
		w->cut = true; /* deeper than we follow */
	return 0;
}

/* The path p: see struct walk.  Returns the bytes written, bit 31 when cut. */
static __always_inline __u32 walk_path(char *data, __u32 off, const struct path *p, __u32 max)
{
	struct walk w = {.data = data, .off = off, .max = max};

	w.dentry = BPF_CORE_READ(p, dentry);
	w.vfsmnt = BPF_CORE_READ(p, mnt);
	w.mnt = (void *)w.vfsmnt - bpf_core_field_offset(struct mount, mnt);
	bpf_loop(DE_BPF_PATH_DEPTH, walk_path_step, &w, 0);
	return w.len | (w.cut ? 0x80000000u : 0);
}

static long walk_cgroup_step(__u32 i, void *arg)
{
	struct walk *w = arg;
	struct kernfs_node *kn = w->kn, *parent;
	const char *name;
	long n;

	if (!kn)
		return 1;
	if (bpf_core_field_exists(kn->__parent))
		parent = BPF_CORE_READ(kn, __parent);
	else
		parent = BPF_CORE_READ((struct kernfs_node___old *)kn, parent);
	if (!parent)
		return 1; /* the root: no name of its own */
	if (w->len + NAME_CHUNK > w->max) {
		w->cut = true;
		return 1;
	}
	name = BPF_CORE_READ(kn, name);
	n = bpf_probe_read_kernel_str(&w->data[(w->off + w->len) & PATHS_MASK], NAME_CHUNK, name);
	if (n <= 0) {
		w->cut = true;
		return 1;
	}
	w->len += (__u32)n;
	w->kn = parent;
	if (i == DE_BPF_PATH_DEPTH - 1)
		w->cut = true;
	return 0;
}

/* The cgroup v2 path of task, leaf first (see struct walk). */
static __always_inline __u32 walk_cgroup(char *data, __u32 off, struct task_struct *task)
{
	struct walk w = {.data = data, .off = off, .max = DE_BPF_CG_MAX};

	w.kn = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn);
	bpf_loop(DE_BPF_PATH_DEPTH, walk_cgroup_step, &w, 0);
	return w.len | (w.cut ? 0x80000000u : 0);
}

/* The proc(5) encoding of a tty's device number (new_encode_dev). */
static __always_inline __u32 tty_devnum(struct tty_struct *tty)
{
	__u32 major = (__u32)BPF_CORE_READ(tty, driver, major);
	__u32 minor =
		(__u32)BPF_CORE_READ(tty, driver, minor_start) + (__u32)BPF_CORE_READ(tty, index);

	return (minor & 0xff) | (major << 8) | ((minor & ~0xffu) << 12);
}

/*
 * What stat(2) of /proc/PID/exe says of the image (its inode), and whether
 * its path may not name it in the task's mount namespace: its dentry is
 * unhashed (unlinked, what makes /proc/PID/exe end in " (deleted)", or a
 * pseudo file such as a memfd), or its mount is not one of that namespace
 * (an image opened elsewhere and run with fexecve).  Sets
 * DE_BPF_F_EXE_STAT when this kernel's inode has times we know.
 */
/* ms, mn, cs, cn from the timespec64 fields m and c of the inode o */
#define TIMESPEC_TIMES(o, m, c)                                                                    \
	do {                                                                                       \
		ms = BPF_CORE_READ(o, m.tv_sec);                                                   \
		mn = BPF_CORE_READ(o, m.tv_nsec);                                                  \
		cs = BPF_CORE_READ(o, c.tv_sec);                                                   \
		cn = BPF_CORE_READ(o, c.tv_nsec);                                                  \
	} while (0)

static __always_inline void exe_stat(struct de_bpf_exec *e, struct task_struct *task,
				     struct file *exe)
{
	struct vfsmount *vm = BPF_CORE_READ(exe, f_path.mnt);
	struct mount *mnt = (void *)vm - bpf_core_field_offset(struct mount, mnt);
	struct inode *ino = BPF_CORE_READ(exe, f_inode);
	struct dentry *d = BPF_CORE_READ(exe, f_path.dentry);
	__s64 ms, mn, cs, cn;

	e->exe_mode = BPF_CORE_READ(ino, i_mode);
	e->exe_nlink = BPF_CORE_READ(ino, __i_nlink);
	e->exe_size = BPF_CORE_READ(ino, i_size);
	if (bpf_core_field_exists(ino->i_mtime_sec)) {
		ms = BPF_CORE_READ(ino, i_mtime_sec);
		mn = BPF_CORE_READ(ino, i_mtime_nsec);
		cs = BPF_CORE_READ(ino, i_ctime_sec);
		cn = BPF_CORE_READ(ino, i_ctime_nsec);
	} else if (bpf_core_field_exists(((struct inode___v67 *)ino)->__i_mtime)) {
		TIMESPEC_TIMES((struct inode___v67 *)ino, __i_mtime, __i_ctime);
	} else if (bpf_core_field_exists(((struct inode___v66 *)ino)->__i_ctime)) {
		TIMESPEC_TIMES((struct inode___v66 *)ino, i_mtime, __i_ctime);
	} else if (bpf_core_field_exists(((struct inode___v65 *)ino)->i_ctime)) {
		TIMESPEC_TIMES((struct inode___v65 *)ino, i_mtime, i_ctime);
	} else {
		return;
	}
	/* nanoseconds fit in 30 bits; since 6.13 the kernel keeps a flag in
	   bit 31 of the ctime's (I_CTIME_QUERIED, multigrain times) */
	e->exe_mtime_ns = ms * 1000000000 + (mn & 0x3fffffff);
	e->exe_ctime_ns = cs * 1000000000 + (cn & 0x3fffffff);
	e->flags |= DE_BPF_F_EXE_STAT;
	if (!BPF_CORE_READ(d, d_hash.pprev) ||
	    BPF_CORE_READ(mnt, mnt_ns) != BPF_CORE_READ(task, nsproxy, mnt_ns))
		e->flags |= DE_BPF_F_EXE_GONE;
}

/*
 * The environment walk, also under bpf_loop(): each step reads one string
 * (or the next DE_BPF_ENV_CHUNK - 1 bytes of a longer one) to the end of
 * the kept ones, and keeps it (advances len) when it is NAME=... for a
 * name in settings.  A read that fills the chunk may have cut the string:
 * the next step goes on from its last byte (the forced NUL's place) and,
 * being a continuation, is never kept itself.
 */
struct env_walk {
	char *data;
	__u32 base, len;
	unsigned long pos, end;
	bool cont, cut;
};

/* Is the string at s (n bytes with its NUL) NAME=... for a name we look for? */
static __always_inline bool env_wanted(const char *s, long n)
{
	for (__u32 j = 0; j < DE_BPF_ENV_NAMES; j++) {
		__u32 l;
		bool same = true;

		if (j >= settings.env_nnames)
			break;
		l = settings.env_name_len[j] & (DE_BPF_ENV_NAME - 1);
		if (!l || n < (long)l + 2 || s[l] != '=')
			continue;
		for (__u32 i = 0; i < DE_BPF_ENV_NAME - 1; i++) {
			if (i >= l)
				break;
			if (s[i] != settings.env_names[j][i]) {
				same = false;
				break;
			}
		}
		if (same)
			return true;
	}
	return false;
}

static long env_step(__u32 i, void *arg)
{
	struct env_walk *w = arg;
	__u32 at;
	char *dst;
	bool cont;
	long n;

	if (w->pos >= w->end)
		return 1;
	if (w->len + DE_BPF_ENV_CHUNK > DE_BPF_ENV_MAX) {
		w->cut = true;
		return 1;
	}
	at = (w->base + w->len) & 0x3ffff;
	if (at > DATA_PATHS + 2 * DE_BPF_ARGV_MAX + DE_BPF_ENV_MAX) {
		w->cut = true; /* never: base and len are bounded */
		return 1;
	}
	dst = &w->data[at];
	n = bpf_probe_read_user_str(dst, DE_BPF_ENV_CHUNK, (const void *)w->pos);
	if (n <= 0) {
		w->cut = true;
		return 1;
	}
	cont = w->cont;
	w->cont = n == DE_BPF_ENV_CHUNK;
	w->pos += w->cont ? DE_BPF_ENV_CHUNK - 1 : (unsigned long)n;
	if (!cont && env_wanted(dst, n))
		w->len += (__u32)n;
	return 0;
}

#define ENV_STEPS 4096 /* strings (or chunks of long ones) looked at */

SEC("raw_tracepoint/sched_process_exec")
int on_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	struct exec_scratch *s;
	struct de_bpf_exec *e;
	struct mm_struct *mm;
	struct file *exe;
	struct tty_struct *tty;
	struct fs_struct *fs;
	struct pid *tp;
	unsigned int level;
	__u32 cpu = bpf_get_smp_processor_id(), off = 0, r, argv_len;
	unsigned long a0, a1;
	__u64 size;

	s = bpf_map_lookup_elem(&exec_buf, &cpu);
	if (!s)
		return 0;
	e = &s->e;
	e->h.kind = DE_BPF_EXEC;
	e->h.pid = BPF_CORE_READ(task, tgid);
	e->h.ktime_ns = bpf_ktime_get_boot_ns();
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = BPF_CORE_READ(task, real_cred, uid.val);
	e->gid = BPF_CORE_READ(task, real_cred, gid.val);
	e->euid = BPF_CORE_READ(task, real_cred, euid.val);
	e->egid = BPF_CORE_READ(task, real_cred, egid.val);
	e->pgrp = BPF_CORE_READ(task, signal, pids[PIDTYPE_PGID], numbers[0].nr);
	e->session = BPF_CORE_READ(task, signal, pids[PIDTYPE_SID], numbers[0].nr);
	e->nice = BPF_CORE_READ(task, static_prio) - 120;
	e->threads = (__u32)BPF_CORE_READ(task, signal, nr_threads);
	e->start_ns = BPF_CORE_READ(task, start_boottime);
	e->utime_ns = BPF_CORE_READ(task, utime);
	e->stime_ns = BPF_CORE_READ(task, stime);
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->flags = 0;
	tty = BPF_CORE_READ(task, signal, tty);
	e->tty_nr = 0;
	if (tty) {
		e->tty_nr = tty_devnum(tty);
		e->flags |= DE_BPF_F_TTY;
	}
	tp = BPF_CORE_READ(task, thread_pid);
	level = BPF_CORE_READ(tp, level);
	e->pid_ns = BPF_CORE_READ(tp, numbers[level & 31].ns, ns.inum);
	e->mnt_ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	e->net_ns = BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
	e->user_ns = BPF_CORE_READ(task, real_cred, user_ns, ns.inum);
	bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), task->comm);

	/* the image, as /proc/PID/exe names it */
	mm = BPF_CORE_READ(task, mm);
	exe = BPF_CORE_READ(mm, exe_file);
	e->exe_ino = 0;
	e->exe_dev = 0;
	e->exe_len = 0;
	e->exe_mode = e->exe_nlink = 0;
	e->exe_size = 0;
	e->exe_mtime_ns = e->exe_ctime_ns = 0;
	if (exe) {
		e->exe_ino = BPF_CORE_READ(exe, f_inode, i_ino);
		e->exe_dev = BPF_CORE_READ(exe, f_inode, i_sb, s_dev);
		exe_stat(e, task, exe);
		r = walk_path(s->data, off, &exe->f_path, DE_BPF_PATH_MAX);
		if (r & 0x80000000u)
			e->flags |= DE_BPF_F_EXE_CUT;
		e->exe_len = r & 0xffff;
		off += e->exe_len;
	} else {
		e->flags |= DE_BPF_F_NO_EXE;
	}
	/* the working directory */
	e->cwd_len = 0;
	fs = BPF_CORE_READ(task, fs);
	if (fs) {
		r = walk_path(s->data, off, &fs->pwd, DE_BPF_PATH_MAX);
		if (r & 0x80000000u)
			e->flags |= DE_BPF_F_CWD_CUT;
		e->cwd_len = r & 0xffff;
		off += e->cwd_len;
	} else {
		e->flags |= DE_BPF_F_NO_CWD;
	}
	/* the cgroup v2 path */
	r = walk_cgroup(s->data, off, task);
	if (r & 0x80000000u)
		e->flags |= DE_BPF_F_CG_CUT;
	e->cg_len = r & 0xffff;
	off += e->cg_len;
	off &= PATHS_MASK;

	/* argv from the new image's memory */
	a0 = BPF_CORE_READ(mm, arg_start);
	a1 = BPF_CORE_READ(mm, arg_end);
	e->argv_total = a1 > a0 ? (__u32)(a1 - a0) : 0;
	argv_len = e->argv_total;
	if (argv_len > settings.argv_max) {
		argv_len = settings.argv_max;
		e->flags |= DE_BPF_F_ARGV_CUT;
	}
	if (argv_len > DE_BPF_ARGV_MAX) {
		argv_len = DE_BPF_ARGV_MAX;
		e->flags |= DE_BPF_F_ARGV_CUT;
	}
	/* the verifier must see the bound on the very register passed: clang
	   may keep the clamped value in another one */
	asm volatile("%0 &= 0x1ffff" : "+r"(argv_len));
	if (argv_len && bpf_probe_read_user(&s->data[off], argv_len, (void *)a0) < 0)
		argv_len = 0;
	e->argv_len = argv_len;

	/* the environment variables asked for, from the same memory */
	e->env_len = 0;
	if (settings.env_nnames) {
		struct env_walk w = {.data = s->data, .base = off + argv_len};

		w.pos = BPF_CORE_READ(mm, env_start);
		w.end = BPF_CORE_READ(mm, env_end);
		bpf_loop(ENV_STEPS, env_step, &w, 0);
		e->flags |= DE_BPF_F_ENV;
		if (w.cut || w.pos < w.end)
			e->flags |= DE_BPF_F_ENV_CUT;
		e->env_len = w.len;
	}
	size = sizeof(*e) + off + argv_len + e->env_len;
	if (size > sizeof(*s))
		return 0;
	count_output(s, size, true);
	return 0;
}

SEC("raw_tracepoint/sched_process_fork")
int on_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	struct de_bpf_fork f = {};

	f.h.pid = BPF_CORE_READ(child, pid);
	if (f.h.pid != BPF_CORE_READ(child, tgid))
		return 0; /* a thread */
	f.h.kind = DE_BPF_FORK;
	f.h.ktime_ns = bpf_ktime_get_boot_ns();
#ifdef DE_BPF_BROKEN
	/* tests only (tests/CMakeLists.txt): a read through a number, which
	   the verifier refuses, to prove a refused program falls back cleanly */
	f.pad = *(volatile __u32 *)(unsigned long)f.h.pid;
#endif
	f.ppid = BPF_CORE_READ(child, real_parent, tgid);
	f.start_ns = BPF_CORE_READ(child, start_boottime);
	count_output(&f, sizeof(f), false);
	return 0;
}

SEC("raw_tracepoint/sched_process_exit")
int on_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	struct de_bpf_exit x = {};

	/* the last thread of the process (the tracepoint's group_dead) */
	if (!ctx->args[1])
		return 0;
	x.h.kind = DE_BPF_EXIT;
	x.h.pid = BPF_CORE_READ(task, tgid);
	x.h.ktime_ns = bpf_ktime_get_boot_ns();
	x.exit_code = (__u32)BPF_CORE_READ(task, exit_code);
	if (BPF_CORE_READ(task, signal, flags) & 0x4 /* SIGNAL_GROUP_EXIT */)
		x.exit_code = (__u32)BPF_CORE_READ(task, signal, group_exit_code);
	x.start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
	count_output(&x, sizeof(x), true);
	return 0;
}

/* Addresses, ports and family of sk into t. */
static __always_inline void tcp_addrs(const struct sock *sk, struct de_bpf_tcp *t)
{
	t->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	t->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	t->rport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (t->family == AF_INET6_) {
		BPF_CORE_READ_INTO(&t->laddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&t->raddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	} else {
		BPF_CORE_READ_INTO((__u32 *)t->laddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)t->raddr, sk, __sk_common.skc_daddr);
	}
	t->inode = BPF_CORE_READ(sk, sk_socket, file, f_inode, i_ino);
}

static __always_inline __u64 current_start_ns(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return BPF_CORE_READ(task, group_leader, start_boottime);
}

SEC("raw_tracepoint/inet_sock_set_state")
int on_sock_state(struct bpf_raw_tracepoint_args *ctx)
{
	const struct sock *sk = (const struct sock *)ctx->args[0];
	int old = (int)ctx->args[1], new = (int)ctx->args[2];
	__u64 key = (__u64)sk;
	struct de_bpf_tcp t = {};
	struct connecting *c;

	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP_)
		return 0;
	if (old == TCP_CLOSE_ && new == TCP_SYN_SENT_) {
		struct connecting v = {.tgid = bpf_get_current_pid_tgid() >> 32,
				       .start_ns = current_start_ns()};
		bpf_map_update_elem(&connects, &key, &v, BPF_ANY);
		return 0;
	}
	if (old == TCP_SYN_SENT_ && (new == TCP_ESTABLISHED_ || new == TCP_CLOSE_)) {
		c = bpf_map_lookup_elem(&connects, &key);
		if (!c)
			return 0; /* began before we were loaded */
		t.h.pid = c->tgid;
		t.start_ns = c->start_ns;
		bpf_map_delete_elem(&connects, &key);
		t.op = new == TCP_ESTABLISHED_ ? DE_BPF_TCP_CONNECT : DE_BPF_TCP_CONNECT_FAILED;
	} else if (new == TCP_LISTEN_) {
		t.h.pid = bpf_get_current_pid_tgid() >> 32;
		t.start_ns = current_start_ns();
		t.op = DE_BPF_TCP_LISTEN;
	} else {
		return 0;
	}
	t.h.kind = DE_BPF_TCP;
	t.h.ktime_ns = bpf_ktime_get_boot_ns();
	tcp_addrs(sk, &t);
	count_output(&t, sizeof(t), true);
	return 0;
}

#if defined(__TARGET_ARCH_x86)
#define NR_ACCEPT  43
#define NR_ACCEPT4 288
#elif defined(__TARGET_ARCH_arm64)
#define NR_ACCEPT  202
#define NR_ACCEPT4 242
#endif

SEC("raw_tracepoint/sys_exit")
int on_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
#ifdef NR_ACCEPT
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	long ret = (long)ctx->args[1];
	struct task_struct *task;
	struct file **fds, *file;
	struct socket *sock;
	struct sock *sk;
	struct de_bpf_tcp t = {};
	long nr;

	if (ret < 0)
		return 0;
#if defined(__TARGET_ARCH_x86)
	nr = BPF_CORE_READ(regs, orig_ax);
#else
	nr = BPF_CORE_READ(regs, syscallno);
#endif
	if (nr != NR_ACCEPT && nr != NR_ACCEPT4)
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	if ((unsigned long)ret >= BPF_CORE_READ(task, files, fdt, max_fds))
		return 0;
	fds = BPF_CORE_READ(task, files, fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[ret]) < 0 || !file)
		return 0;
	sock = BPF_CORE_READ(file, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP_)
		return 0;
	t.h.kind = DE_BPF_TCP;
	t.h.pid = bpf_get_current_pid_tgid() >> 32;
	t.h.ktime_ns = bpf_ktime_get_boot_ns();
	t.op = DE_BPF_TCP_ACCEPT;
	t.start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
	tcp_addrs(sk, &t);
	count_output(&t, sizeof(t), true);
#endif
	return 0;
}
