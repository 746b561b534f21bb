/*
 * parent_int.h — what the privileged parent's two files share: its state
 * (parent.c: the program, its loop, signals and the worker's requests;
 * supervise.c: the children, their restarts, the watchdog and what is sent
 * to the worker).  Private to daemoneye-agent.
 */
#ifndef AGENT_PARENT_INT_H
#define AGENT_PARENT_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemoneye/config.h"
#include "daemoneye/ctl.h"
#include "keysign.h"
#include "parent.h"
#include "privdrop.h"

/* Grace periods of a stop (the whole tree within 2 s). */
#define WORKER_DRAIN_MS	 1500
#define PROCMOND_STOP_MS 300
/* A child that ran this long before dying starts its backoff afresh. */
#define STABLE_MS 60000
/* How long a new worker may take to send READY before it counts as hung. */
#define WORKER_SETUP_MS 120000

/* The sanitizer build's resident memory against the release build's, at
   most (the watchdog's memory limits are scaled by it in that build). */
#define DE_SANITIZE_MEMORY_SCALE 4

/* What the parent reads from the configuration (again on SIGHUP). */
struct settings {
	uint64_t scan_timeout_ms;
	uint64_t rule_timeout_ms;
	bool watchdog;
	uint64_t interval_ms;
	uint64_t strikes;
	uint64_t cpu_percent[2]; /* worker, procmond; 0: no limit */
	uint64_t memory_mb[2];
	uint64_t worker_timeout_ms;
	uint64_t restart_delay_ms;
	uint64_t restart_delay_max_ms;
	bool signing;	      /* audit.enable_signatures */
	const char *key_path; /* audit.private_key_path (borrowed from the config) */
};

enum { W = 0, P = 1, NCHILD }; /* the worker, procmond: index of struct parent's ch[] */

struct child {
	pid_t pid;	      /* 0: not running */
	uint32_t gen;	      /* generation of the current (or last) instance */
	int64_t started_mono; /* of the current instance */
	int64_t started_wall;
	uint32_t restarts[DE_CTL_REASON_MAX];
	unsigned quick;	   /* failures in a row without a stable run: the backoff's exponent */
	int64_t due;	   /* start it at this monotonic time; -1: not scheduled */
	int pending;	   /* why we are killing it (a de_ctl_reason), -1: we are not */
	int32_t last_exit; /* wait status, -1: none yet */
	int64_t last_exit_wall;
	int64_t kill_at; /* SIGKILL it at this monotonic time; -1: no */
	/* the watchdog's samples */
	uint64_t cpu_ms, rss_bytes, prev_cpu_ms;
	int64_t prev_sample;
	unsigned cpu_strikes, mem_strikes;
};

struct parent {
	const struct agent_opts *o;
	struct de_config *cfg;
	struct settings set;
	char exe[PATH_MAX];	     /* the worker's executable, beside ours */
	char procmond_exe[PATH_MAX]; /* procmond beside it */
	char *state;		     /* app.state_dir as resolved (pinned for the worker) */
	char *pin;		     /* "app.state_dir=<json string>" */
	bool root;
	struct agent_user user; /* the worker's, when root */
	char **envp;		/* our environment without systemd's notify variables */
	int sigfd;
	int ctl;		  /* our end of the worker's control channel; -1: none */
	enum de_ctl_state wstate; /* the worker's, as we see it */
	uint32_t config_gen;	  /* last CONFIG sent */
	bool ready_once;	  /* a worker has been READY */
	bool reload_pending;	  /* SIGHUP while the worker was starting */
	bool notified_ready;
	int64_t heard; /* last message from the worker (monotonic) */
	char status[DE_CTL_STATUS_MAX + 1];
	struct child ch[NCHILD];
	int64_t started_wall;
	int64_t next_sample; /* watchdog sampling (monotonic) */
	uint64_t wd_usec;    /* systemd's watchdog interval, 0: none */
	int64_t next_ping;
	uint64_t cpu_ms, rss_bytes; /* our own */
	bool stopping;
	int exit_status;
	bool done;
	struct agent_key *key; /* the checkpoint signing key, ours alone */
};

/* ---- supervise.c --------------------------------------------------------------- */

/* Our environment minus what systemd meant for us alone (NULL on ENOMEM). */
char **sup_child_env(void);
/* Start the worker (and procmond, if none) / procmond; on failure retry after the backoff. */
void sup_start_worker(struct parent *p);
void sup_start_procmond(struct parent *p);
/* Kill child k (SIGKILL now, or SIGTERM and SIGKILL after grace_ms) for reason. */
void sup_kill(struct parent *p, int k, enum de_ctl_reason reason, int grace_ms);
/* Reap whichever child exited, and decide what follows. */
void sup_reap(struct parent *p);
/* The stop sequence: the worker drains first, then procmond goes; status is ours. */
void sup_begin_stop(struct parent *p, int status);
/* Sample both children (and us) and restart one over its limits; then SUPERVISOR. */
void sup_sample(struct parent *p);
/* Send without blocking; a worker that does not read its channel is hung.  0 or -errno. */
int sup_send_worker(struct parent *p, const struct de_ctl_msg *m);
/* The supervision as the parent sees it (SUPERVISOR), the configuration files (CONFIG). */
void sup_send_supervisor(struct parent *p);
void sup_send_config(struct parent *p);

#endif
