/*
 * parent.c — daemoneye-agent's privileged parent (docs/process-model.md),
 * in the manner of OpenSSH's monitor and OpenBSD's privsep daemons.
 *
 * It parses nothing a process or a peer controls: it reads the
 * configuration (root's own files), opens them for the worker, starts and
 * supervises two children, and signs checkpoint note bodies that pass a
 * strict check.  It keeps only the capabilities procmond needs and those to
 * start and stop its children (root), and holds the signing key.
 *
 *   - the worker: daemoneye-worker beside us (a fresh image, as OpenSSH
 *     executes sshd-session), as app.run_as_user, with the control channel
 *     (ctl.h) on descriptor 3; a program of its own, so that the parent
 *     maps none of the libraries only the worker needs (SQLite, the HTTP
 *     listener and its TLS stack) and stays within its 4 MB;
 *   - procmond: next to us, as root; its socketpair's other end goes to
 *     the worker over the control channel (SCM_RIGHTS), never read here.
 *
 * This file is the program: its command line, settings, start, loop,
 * signals and the worker's requests; supervise.c is the children.
 *
 * Either child that dies is started again with exactly its privileges,
 * after a backoff that doubles with quick failures; each restart is counted
 * by reason and reported to the worker (SUPERVISOR), which publishes it in
 * health and metrics.  A worker that stops talking (watchdog.
 * worker_timeout_ms) is killed; either child over its CPU or memory limit
 * for watchdog.strikes samples in a row is restarted (osquery's watchdog).
 * procmond's channel dies with the worker, so a new worker gets a new
 * procmond too.
 *
 * Signals arrive through a signalfd and everything else through poll with
 * CLOEXEC descriptors; every timer is CLOCK_MONOTONIC.  SIGTERM: the worker
 * gets SIGTERM and 1.5 s to drain, then procmond SIGCONT + SIGTERM and
 * 0.3 s, then SIGKILL for whoever is left: the whole tree is gone within
 * 2 s, a stopped procmond included.  SIGHUP: the configuration is read
 * again (our settings) and the files are passed to the worker, which
 * reloads atomically or keeps the old and says why.  sd_notify: READY
 * when the first worker is ready, RELOADING/READY around a reload,
 * STOPPING, STATUS (the worker's status line) and WATCHDOG.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include <cap-ng.h>
#include <jansson.h>
#include <systemd/sd-daemon.h>

#include "daemoneye/clock.h"
#include "daemoneye/config.h"
#include "daemoneye/ctl.h"
#include "daemoneye/fileio.h"
#include "daemoneye/log.h"
#include "parent_caps.h"
#include "parent_int.h"

/* ---- settings ------------------------------------------------------------------ */

/* The audit keys come with the audit ledger (branch audit-crypto); absent, no signing. */
static void audit_keys(const struct de_config *c, struct settings *s)
{
	s->signing = false;
	s->key_path = NULL;
	if (de_config_get_bool(c, "audit.enable_signatures", &s->signing, NULL) < 0 ||
	    de_config_get_str(c, "audit.private_key_path", &s->key_path, NULL) < 0 || !s->key_path)
		s->signing = false;
}

static int load_settings(const struct de_config *c, struct settings *s, struct de_error *err)
{
	int rc;

	if ((rc = de_config_get_u64(c, "app.scan_timeout_ms", &s->scan_timeout_ms, err)) < 0 ||
	    (rc = de_config_get_u64(c, "detection.rule_timeout_ms", &s->rule_timeout_ms, err)) <
		    0 ||
	    (rc = de_config_get_bool(c, "watchdog.enabled", &s->watchdog, err)) < 0 ||
	    (rc = de_config_get_u64(c, "watchdog.interval_ms", &s->interval_ms, err)) < 0 ||
	    (rc = de_config_get_u64(c, "watchdog.strikes", &s->strikes, err)) < 0 ||
	    (rc = de_config_get_u64(c, "watchdog.worker_cpu_percent", &s->cpu_percent[0], err)) <
		    0 ||
	    (rc = de_config_get_u64(c, "watchdog.procmond_cpu_percent", &s->cpu_percent[1], err)) <
		    0 ||
	    (rc = de_config_get_u64(c, "watchdog.worker_memory_mb", &s->memory_mb[0], err)) < 0 ||
	    (rc = de_config_get_u64(c, "watchdog.procmond_memory_mb", &s->memory_mb[1], err)) < 0 ||
	    (rc = de_config_get_u64(c, "watchdog.worker_timeout_ms", &s->worker_timeout_ms, err)) <
		    0 ||
	    (rc = de_config_get_u64(c, "watchdog.restart_delay_ms", &s->restart_delay_ms, err)) <
		    0 ||
	    (rc = de_config_get_u64(c, "watchdog.restart_delay_max_ms", &s->restart_delay_max_ms,
				    err)) < 0)
		return rc;
	uint64_t longest =
		s->scan_timeout_ms > s->rule_timeout_ms ? s->scan_timeout_ms : s->rule_timeout_ms;
	if (s->worker_timeout_ms < longest + 5000)
		return de_error_set(err, DE_ERR_CONFIGURATION, EINVAL,
				    "watchdog.worker_timeout_ms (%llu) must exceed "
				    "app.scan_timeout_ms and detection.rule_timeout_ms by at least "
				    "5000 ms (the worker cannot report while it waits that long)",
				    (unsigned long long)s->worker_timeout_ms);
	if (s->restart_delay_max_ms < s->restart_delay_ms)
		s->restart_delay_max_ms = s->restart_delay_ms;
#ifdef DE_SANITIZE_BUILD
	/* AddressSanitizer's shadow memory, redzones and quarantine are resident
	   too: a worker of the sanitizer build measured 58 MiB idle and 250 MiB
	   under a thousand executions a second, the release build's 33.  The
	   limits meant for the release build are scaled, so that the watchdog
	   restarts for what the code uses, not for what the checker holds. */
	for (int k = 0; k < NCHILD; k++)
		s->memory_mb[k] *= DE_SANITIZE_MEMORY_SCALE;
#endif
	audit_keys(c, s);
	return 0;
}

/* ---- the worker's requests: the dispatch ------------------------------------------- */

static void on_ready(struct parent *p, const struct de_ctl_msg *m)
{
	(void)m;
	p->wstate = DE_CTL_RUNNING;
	if (!p->ready_once)
		de_log_info("daemoneye-agent %s started: worker pid %d (%s), procmond pid %d",
			    DE_VERSION, (int)p->ch[W].pid, p->root ? p->user.name : "unprivileged",
			    (int)p->ch[P].pid);
	p->ready_once = true;
	if (!p->notified_ready) {
		sd_notify(0, "READY=1");
		p->notified_ready = true;
	}
	sup_send_supervisor(p);
	if (p->reload_pending) {
		/* a SIGHUP came while it was starting: the files may have changed since */
		p->reload_pending = false;
		sup_send_config(p);
	}
}

static void on_heartbeat(struct parent *p, const struct de_ctl_msg *m)
{
	if (m->text_len && strcmp(m->text, p->status) != 0) {
		snprintf(p->status, sizeof(p->status), "%s", m->text);
		sd_notifyf(0, "STATUS=%s", p->status);
	}
}

static void on_restart_procmond(struct parent *p, const struct de_ctl_msg *m)
{
	struct child *c = &p->ch[P];

	if (m->generation != c->gen)
		return; /* an older one: gone already */
	if (!c->pid) {
		/*
		 * Gone already: it saw the worker close its channel and exited
		 * cleanly before this message was read.  That was not a crash:
		 * count it under the worker's reason.
		 */
		if (c->last_exit == 0 && c->restarts[DE_CTL_REASON_CRASH]) {
			c->restarts[DE_CTL_REASON_CRASH]--;
			c->restarts[m->reason]++;
			sup_send_supervisor(p);
		}
		return;
	}
	de_log_warnx("the worker asks for a new procmond (%s): killing pid %d",
		     de_ctl_reason_name(m->reason), (int)c->pid);
	sup_kill(p, P, m->reason, 0);
}

static void on_reload_done(struct parent *p, const struct de_ctl_msg *m)
{
	if (m->generation == p->config_gen)
		p->wstate = DE_CTL_RUNNING;
	if (m->ok)
		de_log_info("configuration reloaded");
	else
		de_log_warnx("reload refused, still running on the previous configuration: %s",
			     m->text);
	sd_notify(0, "READY=1");
}

static void on_key_request(struct parent *p, const struct de_ctl_msg *m)
{
	struct de_ctl_msg r;

	(void)m;
	de_ctl_msg_init(&r, DE_CTL_KEY_REPLY);
	if (p->key) {
		r.has_key = true;
		agent_key_public(p->key, r.key);
	} else {
		r.status = -ENOKEY;
	}
	(void)sup_send_worker(p, &r);
}

static void on_sign_request(struct parent *p, const struct de_ctl_msg *m)
{
	struct de_ctl_msg r;
	struct de_error err = {0};

	de_ctl_msg_init(&r, DE_CTL_SIGN_REPLY);
	r.id = m->id;
	if (!p->key)
		r.status = -ENOKEY;
	else if ((r.status = agent_key_sign_note(p->key, m->text, m->text_len, r.sig, &err)) < 0)
		de_log_warnx("refusing to sign a checkpoint for the worker: %s", err.message);
	(void)sup_send_worker(p, &r);
}

/* What to do with each message the worker may send (the table says when). */
static void (*const handlers[DE_CTL_TYPE_MAX])(struct parent *, const struct de_ctl_msg *) = {
	[DE_CTL_READY] = on_ready,
	[DE_CTL_HEARTBEAT] = on_heartbeat,
	[DE_CTL_RESTART_PROCMOND] = on_restart_procmond,
	[DE_CTL_RELOAD_DONE] = on_reload_done,
	[DE_CTL_KEY_REQUEST] = on_key_request,
	[DE_CTL_SIGN_REQUEST] = on_sign_request,
};

static void read_ctl(struct parent *p)
{
	for (int i = 0; i < 64 && p->ctl >= 0; i++) {
		struct de_ctl_msg m;
		struct de_error err = {0};
		int rc = de_ctl_recv(p->ctl, DE_CTL_TO_PARENT, &m, &err);

		if (rc == -EAGAIN)
			return;
		if (rc == -EPIPE || rc == -ECONNRESET) {
			/* the worker is going: its exit is handled when it is reaped */
			close(p->ctl);
			p->ctl = -1;
			return;
		}
		if (rc == 0 && !de_ctl_allowed(m.type, p->wstate)) {
			rc = de_error_set(&err, DE_ERR_VALIDATION, EBADMSG,
					  "control message %s is not allowed now",
					  de_ctl_type_name(m.type));
			de_ctl_msg_close_fds(&m);
		}
		if (rc < 0) {
			de_log_warnx("worker pid %d broke the control protocol (%s): restarting it",
				     (int)p->ch[W].pid, err.message);
			sup_kill(p, W, DE_CTL_REASON_PROTOCOL, 0);
			close(p->ctl);
			p->ctl = -1;
			return;
		}
		p->heard = de_mono_ms();
		handlers[m.type](p, &m);
		de_ctl_msg_close_fds(&m);
	}
}

/* ---- signals, reload ---------------------------------------------------------------- */

static void reload(struct parent *p)
{
	struct de_config *cfg = NULL;
	struct settings set;
	struct de_error err = {0};
	const char *s;

	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
		   (unsigned long long)de_mono_ms() * 1000ULL);
	if (de_config_load(&p->o->src, &cfg, &err) < 0 || load_settings(cfg, &set, &err) < 0) {
		/* the worker reads the same files and says so in health */
		de_log_warnx("reload: %s (the parent keeps its settings)", err.message);
		de_config_free(cfg);
	} else {
		if (de_config_get_str(cfg, "logging.level", &s, NULL) == 0)
			de_log_set_level((enum de_log_level)de_log_level_parse(s));
		if (set.signing &&
		    (!p->set.key_path || strcmp(set.key_path, p->set.key_path) != 0 || !p->key)) {
			struct agent_key *k = NULL;
			if (agent_key_load(set.key_path, &k, &err) < 0) {
				de_log_warnx("reload: %s (keeping the signing key we have)",
					     err.message);
			} else {
				agent_key_free(p->key);
				p->key = k;
			}
		} else if (!set.signing) {
			agent_key_free(p->key);
			p->key = NULL;
		}
		de_config_free(p->cfg);
		p->cfg = cfg;
		p->set = set;
	}
	if (p->ch[W].pid && p->ctl >= 0 && p->wstate != DE_CTL_STARTING) {
		sup_send_config(p);
	} else {
		p->reload_pending = p->ch[W].pid != 0; /* sent once it is ready */
		sd_notify(0, "READY=1");
	}
}

static void on_signal(struct parent *p, int sig)
{
	switch (sig) {
	case SIGCHLD:
		sup_reap(p);
		break;
	case SIGTERM:
	case SIGINT:
		if (!p->stopping)
			de_log_info("stopping");
		sup_begin_stop(p, p->stopping ? p->exit_status : 0);
		break;
	case SIGHUP:
		if (!p->stopping)
			reload(p);
		break;
	default:
		break;
	}
}

/* ---- timers and the loop ---------------------------------------------------------------- */

static void timers(struct parent *p, int64_t now)
{
	for (int k = 0; k < NCHILD; k++) {
		struct child *c = &p->ch[k];
		if (c->pid && c->kill_at >= 0 && now >= c->kill_at) {
			de_log_warnx("%s pid %d did not stop within its grace time: killed",
				     k == W ? "worker" : "procmond", (int)c->pid);
			kill(c->pid, SIGKILL);
			c->kill_at = -1;
		}
	}
	if (p->stopping)
		return;
	if (!p->ch[W].pid && p->ch[W].due >= 0 && now >= p->ch[W].due && !p->ch[P].pid)
		sup_start_worker(p); /* (after the old procmond is reaped) */
	if (p->ch[W].pid && p->ctl >= 0 && !p->ch[P].pid && p->ch[P].due >= 0 &&
	    now >= p->ch[P].due)
		sup_start_procmond(p);
	if (p->ch[W].pid && p->ch[W].pending < 0) {
		int64_t limit = p->wstate == DE_CTL_STARTING ? WORKER_SETUP_MS
							     : (int64_t)p->set.worker_timeout_ms;
		if (now - p->heard > limit) {
			de_log_warnx("the worker (pid %d) has said nothing for %lld ms: killing it",
				     (int)p->ch[W].pid, (long long)(now - p->heard));
			sup_kill(p, W, DE_CTL_REASON_HUNG, 0);
		}
	}
	if (now >= p->next_sample) {
		sup_sample(p);
		p->next_sample = now + (int64_t)p->set.interval_ms;
	}
	if (p->wd_usec && now >= p->next_ping) {
		sd_notify(0, "WATCHDOG=1");
		p->next_ping = now + (int64_t)(p->wd_usec / 2000);
	}
}

static int64_t next_timer(const struct parent *p, int64_t now)
{
	int64_t t = now + 1000;

	for (int k = 0; k < NCHILD; k++) {
		if (p->ch[k].kill_at >= 0 && p->ch[k].kill_at < t)
			t = p->ch[k].kill_at;
		if (p->ch[k].due >= 0 && p->ch[k].due < t)
			t = p->ch[k].due;
	}
	if (p->next_sample < t)
		t = p->next_sample;
	if (p->wd_usec && p->next_ping < t)
		t = p->next_ping;
	return t;
}

static void loop(struct parent *p)
{
	while (!p->done) {
		int64_t now = de_mono_ms();
		struct pollfd fds[2] = {{p->sigfd, POLLIN, 0}, {p->ctl, POLLIN, 0}};
		int64_t wait;

		timers(p, now);
		if (p->done)
			break;
		wait = next_timer(p, now) - now;
		if (poll(fds, p->ctl >= 0 ? 2 : 1, wait < 0 ? 0 : (int)wait) < 0) {
			if (errno != EINTR)
				de_log_warn("poll");
			continue;
		}
		/* the worker's words first: a procmond it asked to replace may have
		   exited already, and its SIGCHLD must not read as a crash */
		if (p->ctl >= 0 && fds[1].fd == p->ctl &&
		    (fds[1].revents & (POLLIN | POLLHUP | POLLERR)))
			read_ctl(p);
		if (fds[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(p->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				on_signal(p, (int)si.ssi_signo);
		}
	}
}

/* ---- start ---------------------------------------------------------------------------- */

/* path = the program `name` beside our own executable, which must be there. */
static int beside_us(const char *name, char *path, size_t size, struct de_error *err)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n < 0)
		return de_error_set(err, DE_ERR_IO, errno, "cannot find our own executable: %s",
				    strerror(errno));
	self[n] = '\0';
	if (!(slash = strrchr(self, '/')))
		return de_error_set(err, DE_ERR_IO, ENOENT, "cannot locate %s", name);
	*slash = '\0';
	if ((size_t)snprintf(path, size, "%s/%s", self, name) >= size)
		return de_error_set(err, DE_ERR_IO, ENAMETOOLONG, "cannot locate %s", name);
	if (access(path, X_OK) < 0)
		return de_error_set(err, DE_ERR_IO, errno, "cannot run %s: %s", path,
				    strerror(errno));
	return 0;
}

/* procmond and the worker, installed beside us. */
static int find_programs(struct parent *p, struct de_error *err)
{
	int rc = beside_us("daemoneye-worker", p->exe, sizeof(p->exe), err);
	return rc < 0 ? rc : beside_us("procmond", p->procmond_exe, sizeof(p->procmond_exe), err);
}

/* As root: keep PARENT_CAPS_KEPT (parent_caps.h) and nothing else, bounding set
   too, so that nothing we execute can have more.  procmond, executed as root, gets
   this set and keeps its own part of it (src/procmond/privsep.c). */
static int drop_caps(void)
{
	capng_clear(CAPNG_SELECT_BOTH);
	if (capng_updatev(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET,
			  PARENT_CAPS_KEPT, -1) < 0 ||
	    capng_apply(CAPNG_SELECT_BOTH) < 0)
		return -EPERM;
	return 0;
}

/*
 * app.priority_boost, as auditd's: our nice value lowered by that much
 * (not below -20) before anything is started, while we still may
 * (CAP_SYS_NICE).  procmond and the worker inherit it, and so do their
 * threads: when something saturates the CPUs, the way from an exec to its
 * detection waits less for a core (docs/perf.md has the measurements).
 * This thread is the only one yet, and the value is per thread.  Without
 * the capability the refusal is said once and nothing else changes.
 */
static void boost_priority(const struct de_config *c)
{
	uint64_t boost;
	int now, want;

	if (de_config_get_u64(c, "app.priority_boost", &boost, NULL) < 0 || !boost)
		return;
	errno = 0;
	now = getpriority(PRIO_PROCESS, 0);
	if (now == -1 && errno)
		return;
	want = now - (int)boost < -20 ? -20 : now - (int)boost;
	if (setpriority(PRIO_PROCESS, 0, want) < 0)
		de_log_info("app.priority_boost %llu: the agent cannot raise its priority (%s): "
			    "it runs at nice %d",
			    (unsigned long long)boost, strerror(errno), now);
	else
		de_log_debug("app.priority_boost %llu: nice %d", (unsigned long long)boost, want);
}

/* the kernel's struct sched_attr, its first version (SCHED_ATTR_SIZE_VER0):
   glibc has no wrapper, and linux/sched/types.h clashes with sched.h */
struct slice_attr {
	uint32_t size, sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime, sched_deadline, sched_period;
};

/*
 * app.scheduler_slice_us: the time slice the kernel's EEVDF scheduler
 * (Linux 6.12 and later) gives this thread, set before anything is started
 * so that procmond, the worker and all their threads inherit it (across
 * fork, clone and exec).  A slice shorter than the default (0.75 ms times
 * 1 + log2 of the CPUs) gives a thread that wakes an earlier deadline, so
 * the exec path gets a core sooner when other work holds them all; it does
 * not give more CPU (the nice value's weight does).  Needs no privilege.
 * A policy other than the fair ones (set by the operator: SCHED_FIFO, RR,
 * DEADLINE) is left alone.  Older kernels take the call and ignore the
 * slice; it then reads back as 0, and the log says so once.
 */
static void set_slice(const struct de_config *c)
{
	struct slice_attr a = {0};
	uint64_t us;

	if (de_config_get_u64(c, "app.scheduler_slice_us", &us, NULL) < 0 || !us)
		return;
	if (syscall(SYS_sched_getattr, 0, &a, sizeof(a), 0) < 0) {
		de_log_info("app.scheduler_slice_us %llu: cannot read the scheduling policy (%s)",
			    (unsigned long long)us, strerror(errno));
		return;
	}
	if (a.sched_policy != SCHED_OTHER && a.sched_policy != SCHED_BATCH &&
	    a.sched_policy != SCHED_IDLE) {
		de_log_info("app.scheduler_slice_us %llu: left alone under scheduling policy %u",
			    (unsigned long long)us, a.sched_policy);
		return;
	}
	a.size = sizeof(a);
	a.sched_flags = 0;
	a.sched_runtime = us * 1000; /* the kernel keeps it within 0.1 .. 100 ms */
	if (syscall(SYS_sched_setattr, 0, &a, 0) < 0) {
		de_log_info("app.scheduler_slice_us %llu: the kernel refused it (%s)",
			    (unsigned long long)us, strerror(errno));
		return;
	}
	if (syscall(SYS_sched_getattr, 0, &a, sizeof(a), 0) == 0 && !a.sched_runtime)
		de_log_info("app.scheduler_slice_us %llu: this kernel has no per-thread slice "
			    "(Linux 6.12 and later): its default applies",
			    (unsigned long long)us);
	else
		de_log_debug("app.scheduler_slice_us %llu: slice %llu ns", (unsigned long long)us,
			     (unsigned long long)a.sched_runtime);
}

/* Root with no app.state_dir: pin the one chosen now, so that the worker uses it too. */
static int pin_state_dir(struct parent *p, struct de_error *err)
{
	json_t *js = json_string(p->state);
	char *quoted = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL; /* YAML reads JSON */
	int rc = 0;

	json_decref(js);
	if (!quoted || asprintf(&p->pin, "app.state_dir=%s", quoted) < 0) {
		p->pin = NULL;
		rc = de_error_set(err, DE_ERR_CONFIGURATION, ENOMEM, "out of memory");
	}
	free(quoted);
	return rc;
}

/* logging.file: the log of all three processes (they inherit descriptor 2). */
static int open_log(const struct de_config *c, struct de_error *err)
{
	const char *file = NULL;
	char *path = NULL;
	int fd, rc;

	if ((rc = de_config_get_str(c, "logging.file", &file, err)) < 0 || !file)
		return rc;
	if ((rc = de_expand_home(file, &path, err)) < 0)
		return rc;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	if (fd < 0) {
		rc = de_error_set(err, DE_ERR_IO, errno, "logging.file: cannot open %s: %s", path,
				  strerror(errno));
	} else {
		if (dup2(fd, STDERR_FILENO) < 0)
			rc = de_error_set(err, DE_ERR_IO, errno, "logging.file: %s",
					  strerror(errno));
		close(fd);
	}
	free(path);
	return rc;
}

/* audit.path of its own (root): the ledger's files and directory are the worker's. */
static int give_ledger(struct parent *p, struct de_error *err)
{
	bool on = false;
	const char *path = NULL;
	char *abs = NULL;
	int rc;

	if ((rc = de_config_get_bool(p->cfg, "audit.enabled", &on, err)) < 0 ||
	    (rc = de_config_get_str(p->cfg, "audit.path", &path, err)) < 0 || !on || !path ||
	    !*path || (rc = de_expand_home(path, &abs, err)) < 0)
		return rc;
	rc = agent_give_ledger(&p->user, abs, p->state, err);
	free(abs);
	return rc;
}

static int setup(struct parent *p, struct de_error *err)
{
	char *db = NULL;
	const char *user;
	sigset_t mask;
	int rc;

	if ((rc = open_log(p->cfg, err)) < 0)
		return rc;
	p->root = geteuid() == 0;
	p->started_wall = de_now_ms();
	if ((rc = load_settings(p->cfg, &p->set, err)) < 0 || (rc = find_programs(p, err)) < 0 ||
	    (rc = de_config_state_dir(p->cfg, &p->state, err)) < 0 ||
	    (rc = de_config_store_path(p->cfg, &db, err)) < 0)
		goto out;
	if ((rc = de_make_dirs(p->state, 0750)) < 0) {
		rc = de_error_set(err, DE_ERR_IO, -rc,
				  "cannot create state directory %s: %s "
				  "(set app.state_dir to a writable directory)",
				  p->state, strerror(-rc));
		goto out;
	}
	if (p->root) {
		if ((rc = pin_state_dir(p, err)) < 0 ||
		    (rc = de_config_get_str(p->cfg, "app.run_as_user", &user, err)) < 0 ||
		    (rc = agent_user_resolve(user, &p->user, err)) < 0)
			goto out;
		agent_give_state(&p->user, p->state, db);
		if ((rc = give_ledger(p, err)) < 0)
			goto out;
	}
	if (p->set.signing && (rc = agent_key_load(p->set.key_path, &p->key, err)) < 0)
		goto out;
	boost_priority(p->cfg);
	set_slice(p->cfg); /* after the boost: it writes the nice value it reads */
	if (p->root && drop_caps() < 0) {
		rc = de_error_set(err, DE_ERR_IO, EPERM, "cannot drop capabilities");
		goto out;
	}
	/* the key is ours alone: no core dumps, no ptrace by others of our uid */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (!(p->envp = sup_child_env())) {
		rc = de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
		goto out;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	(void)signal(SIGPIPE, SIG_IGN); /* cannot fail for a valid signal */
	if ((p->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
		rc = de_error_set(err, DE_ERR_IO, errno, "signalfd: %s", strerror(errno));
		goto out;
	}
	if (sd_watchdog_enabled(0, &p->wd_usec) <= 0)
		p->wd_usec = 0;
out:
	free(db);
	return rc;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: daemoneye-agent [-c FILE] [--set KEY=VALUE]... [--rules FILE]... [--once]\n"
		"                       [--check-config]\n"
		"\n"
		"  -c, --config FILE    read FILE instead of /etc/daemoneye/config.yaml and\n"
		"                       ~/.config/daemoneye/config.yaml\n"
		"  -s, --set KEY=VALUE  override one setting (repeatable), e.g.\n"
		"                       --set app.scan_interval_ms=15000\n"
		"  -r, --rules FILE     also load the detection rules of FILE (repeatable)\n"
		"  -1, --once           run one collection and detection cycle, then exit\n"
		"  -n, --check-config   validate the configuration and exit\n"
		"  -h, --help           show this help\n"
		"  -V, --version        show the version\n"
		"\n"
		"Environment: DAEMONEYE_SECTION__KEY=VALUE overrides a setting, e.g.\n"
		"DAEMONEYE_APP__SCAN_INTERVAL_MS=15000.  See daemoneye-agent(8).\n");
}

int parent_main(const struct agent_opts *o)
{
	struct parent p = {.o = o, .ctl = -1, .sigfd = -1, .exit_status = 0};
	struct de_error err = {0};
	int status;

	for (int k = 0; k < NCHILD; k++)
		p.ch[k] = (struct child){.due = -1, .pending = -1, .last_exit = -1, .kill_at = -1};
	if (de_config_load(&o->src, &p.cfg, &err) < 0 || setup(&p, &err) < 0) {
		de_log_err(&err);
		status = de_error_exit_code(&err);
		goto out;
	}
	p.next_sample = de_mono_ms() + (int64_t)p.set.interval_ms;
	p.next_ping = de_mono_ms();
	sup_start_worker(&p);
	if (!p.ch[W].pid) {
		de_log_errorx("cannot start the worker");
		status = EX_OSERR;
		goto out;
	}
	loop(&p);
	status = p.exit_status;
out:
	if (p.ctl >= 0)
		close(p.ctl);
	if (p.sigfd >= 0)
		close(p.sigfd);
	agent_key_free(p.key);
	de_config_free(p.cfg);
	free(p.state);
	free(p.pin);
	free(p.envp);
	return status;
}

/* ---- the command line ------------------------------------------------------------------ */

/* --check-config: the worker checks what only it reads (sinks, exceptions), as us. */
static int check_in_worker(const struct agent_opts *o)
{
	char path[PATH_MAX];
	const char **argv = calloc(4 + 2 * o->src.nsets, sizeof(char *));
	struct de_error err = {0};
	size_t k = 0;
	pid_t pid;
	int st;

	if (!argv || beside_us("daemoneye-worker", path, sizeof(path), &err) < 0) {
		free(argv);
		fprintf(stderr, "daemoneye-agent: %s\n", argv ? err.message : "out of memory");
		return argv ? de_error_exit_code(&err) : EX_OSERR;
	}
	argv[k++] = "daemoneye-worker";
	argv[k++] = "--check-config";
	if (o->src.file) {
		argv[k++] = "-c";
		argv[k++] = o->src.file;
	}
	for (size_t i = 0; i < o->src.nsets; i++) {
		argv[k++] = "--set";
		argv[k++] = o->src.sets[i];
	}
	if ((pid = fork()) == 0) {
		execv(path, (char *const *)argv);
		_exit(127);
	}
	free(argv);
	if (pid < 0)
		return EX_OSERR;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : EX_SOFTWARE;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'}, {"set", required_argument, NULL, 's'},
		{"rules", required_argument, NULL, 'r'},  {"once", no_argument, NULL, '1'},
		{"check-config", no_argument, NULL, 'n'}, {"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},	  {NULL, 0, NULL, 0},
	};
	const char **sets = calloc((size_t)argc + 1, sizeof(char *));
	const char **rule_files = calloc((size_t)argc + 1, sizeof(char *));
	struct agent_opts o = {.rule_files = rule_files};
	struct de_config *cfg = NULL;
	struct de_error err = {0};
	struct settings set;
	bool check = false;
	const char *s;
	int c, status = 0;

	if (!sets || !rule_files) {
		free(sets);
		free(rule_files);
		return EX_OSERR;
	}
	while ((c = getopt_long(argc, argv, "c:s:r:1nhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o.src.file = optarg;
			break;
		case 's':
			sets[o.src.nsets++] = optarg;
			break;
		case 'r':
			rule_files[o.nrule_files++] = optarg;
			break;
		case '1':
			o.once = true;
			break;
		case 'n':
			check = true;
			break;
		case 'h':
			usage(stdout);
			goto done;
		case 'V':
			printf("daemoneye-agent %s\n", DE_VERSION);
			goto done;
		default:
			usage(stderr);
			status = EX_USAGE;
			goto done;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "daemoneye-agent: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		status = EX_USAGE;
		goto done;
	}
	o.src.sets = sets;
	de_log_init("daemoneye-agent", DE_LOG_INFO, DE_LOG_TEXT, NULL);
	if (de_config_load(&o.src, &cfg, &err) < 0 || load_settings(cfg, &set, &err) < 0) {
		fprintf(stderr, "daemoneye-agent: %s\n", err.message);
		status = de_error_exit_code(&err);
		goto done;
	}
	if (de_config_get_str(cfg, "logging.level", &s, &err) == 0)
		de_log_set_level((enum de_log_level)de_log_level_parse(s));
	if (de_config_get_str(cfg, "logging.format", &s, &err) == 0)
		de_log_set_format((enum de_log_format)de_log_format_parse(s));
	if (check) {
		/* the alerting section is the worker's to read (its sinks link what we do not) */
		if ((status = check_in_worker(&o)) == 0)
			printf("configuration OK\n");
		goto done;
	}
	status = parent_main(&o);
done:
	de_config_free(cfg);
	free(sets);
	free(rule_files);
	return status;
}
