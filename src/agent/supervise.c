/*
 * supervise.c — the privileged parent's children (docs/process-model.md):
 * starting the worker and procmond with exactly their privileges, what
 * happens when either exits (counted restarts with backoff, procmond going
 * with its worker, the stop sequence), the CPU and memory watchdog, and
 * the messages the parent sends the worker (CONFIG, PROCMOND, SUPERVISOR).
 * The parent's loop, signals and the worker's requests are in parent.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "daemoneye/clock.h"
#include "daemoneye/log.h"
#include "parent_int.h"

static const char *const child_name[NCHILD] = {"worker", "procmond"};

/* ---- small helpers ---------------------------------------------------------------- */

static int64_t backoff(const struct parent *p, unsigned quick)
{
	uint64_t d = p->set.restart_delay_ms;

	for (unsigned i = 0; i < quick && d < p->set.restart_delay_max_ms; i++)
		d *= 2;
	return (int64_t)(d < p->set.restart_delay_max_ms ? d : p->set.restart_delay_max_ms);
}

/* "exited with status 3", "was killed by signal 9". */
static void describe_exit(int st, char *buf, size_t n)
{
	if (WIFSIGNALED(st))
		snprintf(buf, n, "was killed by signal %d", WTERMSIG(st));
	else
		snprintf(buf, n, "exited with status %d", WEXITSTATUS(st));
}

/* Our environment minus what systemd meant for us alone. */
char **sup_child_env(void)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	if (!(env = calloc(n + 1, sizeof(char *))))
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "NOTIFY_SOCKET=", 14) != 0 &&
		    strncmp(environ[i], "WATCHDOG_", 9) != 0 &&
		    strncmp(environ[i], "LISTEN_", 7) != 0)
			env[k++] = environ[i];
	return env;
}

/* Field `nth` (0-based) of the space-separated numbers at s; 0 when it is not there. */
static unsigned long long nth_number(const char *s, int nth)
{
	for (; nth > 0 && s; nth--)
		if ((s = strchr(s, ' ')))
			s++;
	return s ? strtoull(s, NULL, 10) : 0;
}

/* CPU (ms) and resident memory (bytes) of pid from /proc; the comm field may hold anything. */
static void sample(pid_t pid, uint64_t *cpu_ms, uint64_t *rss)
{
	char path[64], buf[1024];
	unsigned long long ut = 0, stime = 0, pages = 0;
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			char *rp = strrchr(buf, ')'); /* after the last ')': fields 3.. */
			/* ") state ppid ... utime stime": fields 11 and 12 after ") " */
			if (rp && rp[1] == ' ') {
				ut = nth_number(rp + 2, 11);
				stime = nth_number(rp + 2, 12);
				*cpu_ms = (ut + stime) * 1000 /
					  (unsigned long long)sysconf(_SC_CLK_TCK);
			}
		}
	}
	snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			pages = nth_number(buf, 1); /* "size resident ...", in pages */
			*rss = pages * (unsigned long long)sysconf(_SC_PAGESIZE);
		}
	}
}

/* ---- talking to the worker --------------------------------------------------------- */

void sup_send_supervisor(struct parent *p)
{
	struct de_ctl_msg m;
	int64_t now = de_mono_ms();

	if (p->ctl < 0 || p->wstate == DE_CTL_STARTING)
		return;
	sample(getpid(), &p->cpu_ms, &p->rss_bytes);
	de_ctl_msg_init(&m, DE_CTL_SUPERVISOR);
	m.sup.pid = (uint32_t)getpid();
	m.sup.started_ms = p->started_wall;
	m.sup.rss_bytes = p->rss_bytes;
	m.sup.cpu_ms = p->cpu_ms;
	m.sup.privileged = p->root;
	m.sup.signing = p->key != NULL;
	for (int k = 0; k < NCHILD; k++) {
		const struct child *c = &p->ch[k];
		struct de_ctl_child *o = k == W ? &m.sup.worker : &m.sup.procmond;
		o->pid = (uint32_t)c->pid;
		o->started_ms = c->started_wall;
		memcpy(o->restarts, c->restarts, sizeof(o->restarts));
		o->last_exit = c->last_exit;
		o->last_exit_ms = c->last_exit_wall;
		o->cpu_ms = c->pid ? c->cpu_ms : 0;
		o->rss_bytes = c->pid ? c->rss_bytes : 0;
		o->restart_in_ms = c->due >= 0 ? (c->due > now ? c->due - now : 0) : -1;
	}
	(void)sup_send_worker(p, &m); /* a lost status is replaced by the next */
}

/* Open the configuration files for the worker and send them (or why not). */
void sup_send_config(struct parent *p)
{
	struct de_ctl_msg m;
	char *paths[2] = {NULL, NULL};
	bool optional[2];
	size_t n = 0;
	struct de_error err = {0};

	de_ctl_msg_init(&m, DE_CTL_CONFIG);
	m.generation = ++p->config_gen;
	if (de_config_files(&p->o->src, paths, optional, &n, &err) < 0) {
		m.text_len = (size_t)snprintf(m.text, sizeof(m.text), "%s", err.message);
		n = 0;
	}
	for (size_t i = 0; i < n; i++) {
		int fd = open(paths[i], O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0 && errno == ENOENT && optional[i])
			continue;
		if (fd < 0) {
			de_ctl_msg_close_fds(&m);
			m.nfiles = 0;
			m.text_len = (size_t)snprintf(m.text, sizeof(m.text),
						      "cannot open configuration file %s: %s",
						      paths[i], strerror(errno));
			break;
		}
		if (strlen(paths[i]) > DE_CTL_PATH_MAX) {
			close(fd);
			continue;
		}
		snprintf(m.paths[m.nfiles], sizeof(m.paths[0]), "%s", paths[i]);
		m.fds[m.nfds++] = fd;
		m.nfiles++;
	}
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	if (m.text_len > sizeof(m.text) - 1)
		m.text_len = sizeof(m.text) - 1;
	if (sup_send_worker(p, &m) == 0 && p->wstate != DE_CTL_STARTING)
		p->wstate = DE_CTL_RELOADING;
	de_ctl_msg_close_fds(&m); /* the worker has its own copies now */
}

/* ---- children ------------------------------------------------------------------------ */

/*
 * fork + execve path with fd3 as descriptor 3 (and nothing else open but
 * 0-2), signals reset, PDEATHSIG, and as `user` when given.  Only system
 * calls in the child (we have no threads, but keep it clean).
 */
static pid_t spawn(struct parent *p, const char *path, char *const argv[], int fd3,
		   const struct agent_user *user)
{
	pid_t parent = getpid(), pid = fork();
	sigset_t none;

	if (pid != 0)
		return pid;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	(void)signal(SIGPIPE, SIG_DFL);
	if (fd3 == 3) {
		if (fcntl(3, F_SETFD, 0) < 0)
			_exit(127);
	} else if (dup2(fd3, 3) < 0) {
		_exit(127);
	}
	if (user && agent_become(user) < 0) {
		static const char msg[] = "daemoneye-agent: cannot become the worker's user\n";
		(void)!write(2, msg, sizeof(msg) - 1);
		_exit(EX_OSERR);
	}
	/* the parent gone, we go too; and if it went already, now */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(EX_OSERR);
	execve(path, argv, p->envp);
	_exit(127);
}

static void child_started(struct parent *p, int k, pid_t pid)
{
	struct child *c = &p->ch[k];

	c->pid = pid;
	c->gen++;
	c->started_mono = de_mono_ms();
	c->started_wall = de_now_ms();
	c->due = -1;
	c->pending = -1;
	c->kill_at = -1;
	c->cpu_ms = c->rss_bytes = c->prev_cpu_ms = 0;
	c->prev_sample = c->started_mono;
	c->cpu_strikes = c->mem_strikes = 0;
}

/* Kill child k (SIGKILL now, or SIGTERM and SIGKILL after grace_ms) for reason. */
void sup_kill(struct parent *p, int k, enum de_ctl_reason reason, int grace_ms)
{
	struct child *c = &p->ch[k];

	if (!c->pid)
		return;
	if (c->pending < 0)
		c->pending = (int)reason;
	if (grace_ms > 0) {
		kill(c->pid, SIGCONT);
		kill(c->pid, SIGTERM);
		if (c->kill_at < 0)
			c->kill_at = de_mono_ms() + grace_ms;
	} else {
		kill(c->pid, SIGKILL);
	}
}

void sup_start_procmond(struct parent *p)
{
	struct de_ctl_msg m;
	struct de_error err = {0};
	const struct de_config_sources *src = &p->o->src;
	const char **argv = calloc(6 + 2 * src->nsets, sizeof(char *));
	int sv[2];
	size_t k = 0;
	pid_t pid;

	p->ch[P].due = -1;
	if (!argv || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		de_log_warn("cannot start procmond");
		free(argv);
		p->ch[P].due = de_mono_ms() + backoff(p, p->ch[P].quick++);
		return;
	}
	argv[k++] = "procmond";
	argv[k++] = "--ipc-fd";
	argv[k++] = "3";
	if (src->file) {
		argv[k++] = "-c";
		argv[k++] = src->file;
	}
	for (size_t i = 0; i < src->nsets; i++) {
		argv[k++] = "--set";
		argv[k++] = src->sets[i];
	}
	pid = spawn(p, p->procmond_exe, (char *const *)argv, sv[1], NULL);
	free(argv);
	close(sv[1]);
	if (pid < 0) {
		de_log_warn("cannot start procmond: fork");
		close(sv[0]);
		p->ch[P].due = de_mono_ms() + backoff(p, p->ch[P].quick++);
		return;
	}
	child_started(p, P, pid);
	de_ctl_msg_init(&m, DE_CTL_PROCMOND);
	m.generation = p->ch[P].gen;
	m.pid = (uint32_t)pid;
	m.time_ms = p->ch[P].started_wall;
	m.fds[0] = sv[0];
	m.nfds = 1;
	if (sup_send_worker(p, &m) < 0)
		de_log_err(&err);
	close(sv[0]); /* the worker's copy is the only one now */
	de_log_debug("procmond pid %d started (generation %u)", (int)pid, p->ch[P].gen);
}

void sup_start_worker(struct parent *p)
{
	const struct agent_opts *o = p->o;
	const char **argv = calloc(6 + 2 * (o->src.nsets + o->nrule_files), sizeof(char *));
	int sv[2];
	size_t k = 0;
	pid_t pid;

	p->ch[W].due = -1;
	if (!argv || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		de_log_warn("cannot start the worker");
		free(argv);
		p->ch[W].due = de_mono_ms() + backoff(p, p->ch[W].quick++);
		return;
	}
	argv[k++] = "daemoneye-worker";
	for (size_t i = 0; i < o->src.nsets; i++) {
		argv[k++] = "--set";
		argv[k++] = o->src.sets[i];
	}
	if (p->pin) {
		argv[k++] = "--set";
		argv[k++] = p->pin;
	}
	for (size_t i = 0; i < o->nrule_files; i++) {
		argv[k++] = "--rules";
		argv[k++] = o->rule_files[i];
	}
	if (o->once)
		argv[k++] = "--once";
	pid = spawn(p, p->exe, (char *const *)argv, sv[1], p->root ? &p->user : NULL);
	free(argv);
	close(sv[1]);
	if (pid < 0) {
		de_log_warn("cannot start the worker: fork");
		close(sv[0]);
		p->ch[W].due = de_mono_ms() + backoff(p, p->ch[W].quick++);
		return;
	}
	child_started(p, W, pid);
	p->ctl = sv[0];
	p->wstate = DE_CTL_STARTING;
	p->heard = de_mono_ms();
	de_log_debug("worker pid %d started", (int)pid);
	sup_send_config(p);
	/* procmond's channel died with the last worker: a new one for this */
	if (!p->ch[P].pid)
		sup_start_procmond(p);
}

int sup_send_worker(struct parent *p, const struct de_ctl_msg *m)
{
	struct de_error err = {0};
	int rc;

	if (p->ctl < 0)
		return -EPIPE;
	rc = de_ctl_send(p->ctl, m, true, &err);
	if (rc == -EAGAIN && m->type != DE_CTL_SUPERVISOR) {
		de_log_warnx("the worker does not read its control channel: restarting it");
		sup_kill(p, W, DE_CTL_REASON_HUNG, 0);
	} else if (rc < 0 && rc != -EAGAIN && rc != -EPIPE && rc != -ECONNRESET) {
		de_log_err(&err);
	}
	return rc;
}

/* The stop sequence: the worker drains first, then procmond goes. */
void sup_begin_stop(struct parent *p, int status)
{
	if (!p->stopping) {
		p->stopping = true;
		p->exit_status = status;
		sd_notify(0, "STOPPING=1");
	}
	p->ch[W].due = p->ch[P].due = -1;
	if (p->ch[W].pid) {
		p->wstate = DE_CTL_STOPPING;
		sup_kill(p, W, DE_CTL_REASON_CRASH, WORKER_DRAIN_MS);
	} else if (p->ch[P].pid) {
		sup_kill(p, P, DE_CTL_REASON_CRASH, PROCMOND_STOP_MS);
	} else {
		p->done = true;
	}
}

/* Child k exited with wait status st. */
static void child_exited(struct parent *p, int k, int st)
{
	struct child *c = &p->ch[k];
	int64_t now = de_mono_ms();
	char how[64];
	enum de_ctl_reason reason =
		c->pending >= 0 ? (enum de_ctl_reason)c->pending : DE_CTL_REASON_CRASH;
	pid_t pid = c->pid;

	describe_exit(st, how, sizeof(how));
	c->pid = 0;
	c->last_exit = st;
	c->last_exit_wall = de_now_ms();
	c->kill_at = -1;
	c->pending = -1;
	if (k == W) {
		if (p->ctl >= 0)
			close(p->ctl);
		p->ctl = -1;
	}
	if (p->stopping) {
		de_log_debug("%s pid %d stopped (%s)", child_name[k], (int)pid, how);
		sup_begin_stop(p, p->exit_status);
		return;
	}
	if (k == W && (p->o->once || !p->ready_once)) {
		/* --once is over; or the first worker could not start: nothing to retry */
		int status = WIFEXITED(st) ? WEXITSTATUS(st) : EX_SOFTWARE;
		if (!p->o->once || status != 0)
			de_log(status ? DE_LOG_ERROR : DE_LOG_INFO, "the worker %s%s", how,
			       p->ready_once ? "" : " before it was ready");
		sup_begin_stop(p, status);
		return;
	}
	if (now - c->started_mono >= STABLE_MS)
		c->quick = 0;
	c->restarts[reason]++;
	if (k == P && !p->ch[W].pid) {
		/* its channel went with the worker: a new one comes with the next worker */
		de_log(reason == DE_CTL_REASON_WITH_WORKER ? DE_LOG_INFO : DE_LOG_WARN,
		       "procmond pid %d %s (%s): a new one starts with the next worker", (int)pid,
		       how, de_ctl_reason_name(reason));
		sup_send_supervisor(p);
		return;
	}
	int64_t delay = reason == DE_CTL_REASON_RELOAD ? 0 : backoff(p, c->quick++);
	de_log(reason == DE_CTL_REASON_RELOAD ? DE_LOG_INFO : DE_LOG_WARN,
	       "%s pid %d %s (%s): starting it again in %lld ms", child_name[k], (int)pid, how,
	       de_ctl_reason_name(reason), (long long)delay);
	if (k == W) {
		c->due = now + delay;
		p->wstate = DE_CTL_STARTING;
		/* procmond talks to the worker alone: it goes with it */
		sup_kill(p, P, DE_CTL_REASON_WITH_WORKER, 0);
	} else {
		c->due = now + delay;
	}
	sup_send_supervisor(p);
}

void sup_reap(struct parent *p)
{
	for (int k = 0; k < NCHILD; k++) {
		int st;
		pid_t r;
		if (!p->ch[k].pid)
			continue;
		while ((r = waitpid(p->ch[k].pid, &st, WNOHANG)) < 0 && errno == EINTR)
			;
		if (r == p->ch[k].pid)
			child_exited(p, k, st);
	}
}

/* ---- the watchdog ------------------------------------------------------------------ */

void sup_sample(struct parent *p)
{
	int64_t now = de_mono_ms();

	for (int k = 0; k < NCHILD; k++) {
		struct child *c = &p->ch[k];
		int64_t dt = now - c->prev_sample;
		if (!c->pid || c->pending >= 0 || dt <= 0)
			continue;
		sample(c->pid, &c->cpu_ms, &c->rss_bytes);
		uint64_t used = c->cpu_ms > c->prev_cpu_ms ? c->cpu_ms - c->prev_cpu_ms : 0;
		uint64_t pct = used * 100 / (uint64_t)dt;
		c->prev_cpu_ms = c->cpu_ms;
		c->prev_sample = now;
		if (!p->set.watchdog)
			continue;
		c->cpu_strikes = p->set.cpu_percent[k] && pct > p->set.cpu_percent[k]
					 ? c->cpu_strikes + 1
					 : 0;
		c->mem_strikes = p->set.memory_mb[k] && c->rss_bytes > (p->set.memory_mb[k] << 20)
					 ? c->mem_strikes + 1
					 : 0;
		if (c->cpu_strikes >= p->set.strikes || c->mem_strikes >= p->set.strikes) {
			bool cpu = c->cpu_strikes >= p->set.strikes;
			de_log_warnx("watchdog: %s pid %d used %s for %llu samples in a row (limit "
				     "%llu%s): restarting it",
				     child_name[k], (int)c->pid,
				     cpu ? "too much CPU" : "too much memory",
				     (unsigned long long)p->set.strikes,
				     (unsigned long long)(cpu ? p->set.cpu_percent[k]
							      : p->set.memory_mb[k]),
				     cpu ? "% of one core" : " MiB resident");
			/* the worker may drain; procmond has nothing to keep */
			sup_kill(p, k, cpu ? DE_CTL_REASON_CPU : DE_CTL_REASON_MEMORY,
				 k == W ? WORKER_DRAIN_MS : 0);
		}
	}
	sup_send_supervisor(p);
}
