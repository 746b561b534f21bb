/*
 * sensor.h — the records the kernel sensor (sensor.bpf.c) writes into its
 * BPF ring buffer, shared by the BPF program and its reader (bpfevents.c).
 * Both sides include their own definitions of __u8.. __u64 first (the BPF
 * side vmlinux.h, user space <linux/types.h>).  Every record starts with
 * struct de_bpf_hdr; its kind says which record it is and its size is
 * checked by the reader before anything else is read.
 *
 * An exec record is followed by its variable part, data[]: the executable's
 * path, the working directory and the cgroup path as components leaf first,
 * each ended by a NUL (the reader joins them root first with '/'), then
 * argv exactly as the new image's memory holds it (NUL-separated), then
 * the environment strings whose names user space asked for (struct
 * de_bpf_settings), each NUL-ended, in the image's order.  The lengths of
 * the five parts are in the record; a part cut at its bound has its bit in
 * flags.
 *
 * The image's identity and times (exe_size, exe_mtime_ns, ...) are those
 * stat(2) of /proc/PID/exe gives, read from the inode of mm->exe_file; with
 * the environment they spare user space every read of /proc for an exec.
 */
#ifndef DE_BPF_SENSOR_H
#define DE_BPF_SENSOR_H

#define DE_BPF_COMM_LEN	  16
#define DE_BPF_PATH_MAX	  4096	/* bytes of one path's components */
#define DE_BPF_PATH_DEPTH 48	/* components of one path */
#define DE_BPF_CG_MAX	  1024	/* bytes of the cgroup path's components */
#define DE_BPF_ARGV_MAX	  65536 /* the largest argv bound (collection.ebpf_argv_max) */
#define DE_BPF_ENV_NAMES  8	/* environment variables the kernel looks for, at most */
#define DE_BPF_ENV_NAME	  64	/* bytes of one name, its NUL included */
#define DE_BPF_ENV_CHUNK                                                                           \
	4224 /* bytes of one kept string: a 63-byte name, '=', 4,096                               \
		bytes of value and more, so a longer value shows as such */
#define DE_BPF_ENV_MAX (4 * DE_BPF_ENV_CHUNK) /* bytes of kept strings in one record */

enum de_bpf_kind {
	DE_BPF_EXEC = 1,
	DE_BPF_FORK = 2,
	DE_BPF_EXIT = 3,
	DE_BPF_TCP = 4,
};

/* flags of an exec record */
#define DE_BPF_F_ARGV_CUT 0x1 /* argv longer than the bound */
#define DE_BPF_F_EXE_CUT  0x2 /* path deeper or longer than the bounds */
#define DE_BPF_F_CWD_CUT  0x4
#define DE_BPF_F_CG_CUT	  0x8
#define DE_BPF_F_NO_EXE	  0x10 /* no executable file (mm without exe_file) */
#define DE_BPF_F_NO_CWD	  0x20
#define DE_BPF_F_TTY	  0x40 /* has a controlling terminal (tty_nr valid) */
#define DE_BPF_F_EXE_STAT 0x80 /* exe_size .. exe_nlink are valid */
#define DE_BPF_F_EXE_GONE                                                                          \
	0x100		   /* its path may not name the image in the task's mount                  \
			      namespace (unlinked, a pseudo file, another namespace's) */
#define DE_BPF_F_ENV 0x200 /* the environment was searched (settings.env_nnames > 0) */
#define DE_BPF_F_ENV_CUT                                                                           \
	0x400 /* ... but not to its end (too many or too long strings,                             \
		 or more kept than DE_BPF_ENV_MAX) */

/* what a TCP record reports */
enum de_bpf_tcp_op {
	DE_BPF_TCP_CONNECT = 1,	       /* an outbound connection was established */
	DE_BPF_TCP_CONNECT_FAILED = 2, /* an outbound attempt ended before it was */
	DE_BPF_TCP_LISTEN = 3,
	DE_BPF_TCP_ACCEPT = 4,
};

struct de_bpf_hdr {
	__u32 kind;	/* enum de_bpf_kind */
	__u32 pid;	/* thread-group id */
	__u64 ktime_ns; /* bpf_ktime_get_boot_ns() of the event */
};

struct de_bpf_exec {
	struct de_bpf_hdr h;
	__u32 ppid; /* the real parent's thread-group id */
	__u32 uid, gid, euid, egid;
	__u32 pgrp, session, tty_nr;
	__s32 nice;
	__u32 threads;
	__u64 start_ns; /* the group leader's start_boottime */
	__u64 utime_ns, stime_ns;
	__u64 cgroup_id; /* of the cgroup v2 hierarchy */
	__u64 exe_ino;
	__u32 exe_dev;			       /* the kernel's dev_t of the image's super block */
	__u32 flags;			       /* DE_BPF_F_* */
	__u32 pid_ns, mnt_ns, net_ns, user_ns; /* namespace inode numbers */
	__u32 exe_len, cwd_len, cg_len, argv_len; /* bytes of each part of data[] */
	__u32 argv_total;			  /* argv bytes in the image */
	__u32 env_len;				  /* bytes of kept environment strings */
	__u32 exe_mode, exe_nlink;		  /* the image's inode: i_mode, i_nlink */
	__u32 pad;
	__u64 exe_size;			  /* i_size */
	__s64 exe_mtime_ns, exe_ctime_ns; /* since the epoch */
	char comm[DE_BPF_COMM_LEN];
	/* data[] follows: exe_len + cwd_len + cg_len + argv_len + env_len bytes */
};

/* What user space sets in the program's .rodata before loading. */
struct de_bpf_settings {
	__u64 wake_gap_ns; /* a record wakes the reader at most this often (sensor.bpf.c) */
	__u32 argv_max;	   /* collection.ebpf_argv_max */
	__u32 env_nnames;  /* names to look for (0: none) */
	__u32 env_name_len[DE_BPF_ENV_NAMES];		   /* bytes of each, without NUL */
	char env_names[DE_BPF_ENV_NAMES][DE_BPF_ENV_NAME]; /* collection.env_capture */
};

struct de_bpf_fork {
	struct de_bpf_hdr h;
	__u32 ppid; /* the parent's thread-group id */
	__u32 pad;
	__u64 start_ns; /* the child's start_boottime */
};

struct de_bpf_exit {
	struct de_bpf_hdr h;
	__u32 exit_code; /* the wait(2) status */
	__u32 pad;
	__u64 start_ns;
};

struct de_bpf_tcp {
	struct de_bpf_hdr h;
	__u32 op;     /* enum de_bpf_tcp_op */
	__u16 family; /* AF_INET or AF_INET6 */
	__u16 lport;  /* host order */
	__u16 rport;  /* host order */
	__u16 pad;
	__u32 pad2;
	__u64 start_ns; /* the process's start_boottime */
	__u64 inode;	/* the socket's inode (0: none yet) */
	__u8 laddr[16]; /* IPv4 in the first 4 bytes */
	__u8 raddr[16];
};

/* What the program counts in its .bss (read by user space through the map's mmap). */
struct de_bpf_counters {
	__u64 events;	    /* records written */
	__u64 dropped;	    /* records the ring buffer had no room for */
	__u64 last_wake_ns; /* the program's own: when a record last woke the reader */
	__u64 fill_wakes;   /* wake-ups a ring buffer a quarter full made before the gap */
	__u64 wake_gap_ns;  /* user space's, while running: the gap (0: settings.wake_gap_ns) */
};

#endif
