/*
 * watch.c — procmond --events: process events as they happen.
 *
 * With the eBPF sensor each exec carries what the kernel read at the exec
 * (argv, image, parent...; completed from /proc when the process is still
 * there), and fork, exit and TCP connect/listen/accept are reported too;
 * with the netlink process connector each exec is read from /proc at once
 * (so a process that lives 10 ms is still seen with its command line,
 * mostly) and each exit is reported with its status.  Every interval a
 * full scan reconciles: an instance nobody reported is announced as an
 * exec with source "scan", one that vanished unreported as an exit; when
 * the kernel says events were lost, the reconciling scan runs at once.
 * Without a source (not root) the scans alone drive the stream.
 *
 * Events have their own thread and their own collector, so that a full
 * scan (which may take a while on a big host) never delays the read of a
 * fresh exec: the process would be gone by then.  One mutex guards the
 * shared instance set and standard output.  Output: one JSON
 * object per line, {"event": "exec"|"exit"|"fork"|"tcp"|"lost", "time",
 * "pid", "source", and "process" (exec), "exit_code" (exit), "ppid" (fork),
 * "connection" (tcp) or "count" (lost)}.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "daemoneye/log.h"
#include "daemoneye/netconn.h"
#include "daemoneye/clock.h"
#include "procmond.h"

/* An instance: (pid, start_time). */
struct key {
	uint32_t pid;
	int64_t start;
};

struct keyset {
	struct key *v;
	size_t n, cap;
};

static int key_cmp(const void *a, const void *b)
{
	const struct key *x = a, *y = b;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return (x->start > y->start) - (x->start < y->start);
}

static int keyset_add(struct keyset *s, struct key k)
{
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 1024;
		struct key *nv = realloc(s->v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		s->v = nv;
		s->cap = nc;
	}
	s->v[s->n++] = k;
	return 0;
}

static bool keyset_has(const struct keyset *s, struct key k)
{
	return s->n && bsearch(&k, s->v, s->n, sizeof(k), key_cmp) != NULL;
}

static void keyset_drop_pid(struct keyset *s, uint32_t pid)
{
	size_t k = 0;
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].pid != pid)
			s->v[k++] = s->v[i];
	s->n = k;
}

struct watch {
	struct de_collector *col;  /* the scan thread's */
	struct de_collector *ecol; /* the event thread's */
	struct procmond_source *src;
	const char *source;   /* the source's name for the output */
	pthread_mutex_t lock; /* guards known, exited, counters and stdout */
	struct keyset known;  /* sorted: instances announced and not yet gone */
	struct keyset seen;   /* this scan's instances (scan thread only) */
	struct keyset exited; /* pids reported exited during this scan */
	bool baseline;	      /* the first scan announces nothing */
	uint64_t execs, exits, lost;
	volatile sig_atomic_t reconcile_now; /* events were lost: scan at once */
	int event_rc;			     /* why the event thread stopped */
};

/* One JSON line on standard output. */
static int print_line(json_t *j)
{
	char *s;
	int rc;

	if (!j)
		return -ENOMEM;
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!s)
		return -ENOMEM;
	rc = printf("%s\n", s);
	free(s);
	if (rc < 0 || fflush(stdout) != 0)
		return -EIO;
	return 0;
}

/* A connection as JSON (also procmond --once --connections). */
static json_t *conn_json(const struct de_connection *c)
{
	char la[64], ra[64];

	return json_pack("{s:s, s:I, s:I, s:i, s:s, s:i, s:s, s:i, s:I}", "kind",
			 de_conn_kind_name(c->kind), "pid", (json_int_t)c->pid, "start_time",
			 (json_int_t)c->start_time, "family", c->family, "local_address",
			 de_netconn_addr_text(c->family, c->laddr, la, sizeof(la)), "local_port",
			 c->lport, "remote_address",
			 de_netconn_addr_text(c->family, c->raddr, ra, sizeof(ra)), "remote_port",
			 c->rport, "inode", (json_int_t)c->inode);
}

static int print_event(const char *what, uint32_t pid, const char *source,
		       const struct de_process_record *r, bool has_code, int32_t code)
{
	json_t *j = json_pack("{s:s, s:I, s:I, s:s}", "event", what, "time",
			      (json_int_t)de_now_ms(), "pid", (json_int_t)pid, "source", source);

	if (!j)
		return -ENOMEM;
	if (r)
		json_object_set_new(j, "process", de_process_record_to_json(r));
	else if (!has_code)
		json_object_set_new(j, "process", json_null());
	if (has_code)
		json_object_set_new(j, "exit_code", json_integer(code));
	return print_line(j);
}

static int on_exec(struct watch *w, const struct de_process_event *ev)
{
	struct de_process_record r = {0};
	struct de_error err = {0};
	uint32_t pid = ev->pid;
	int rc = ev->kexec ? de_collector_exec(w->ecol, ev->kexec, 0, &r, &err)
			   : de_collector_read(w->ecol, (pid_t)pid, 0, &r, &err);

	pthread_mutex_lock(&w->lock);
	w->execs++;
	if (rc == -ESRCH) { /* gone before we could look: still an exec */
		rc = print_event("exec", pid, w->source, NULL, false, 0);
		goto out;
	}
	if (rc < 0)
		goto out;
	keyset_drop_pid(&w->known, pid); /* the pre-exec image of this pid */
	rc = keyset_add(&w->known, (struct key){pid, r.start_time});
	if (rc == 0) {
		qsort(w->known.v, w->known.n, sizeof(struct key), key_cmp);
		rc = print_event("exec", pid, w->source, &r, false, 0);
	}
out:
	pthread_mutex_unlock(&w->lock);
	de_process_record_clear(&r);
	return rc;
}

static int on_scan_record(void *ctx, struct de_process_record *r)
{
	struct watch *w = ctx;
	struct key k = {r->pid, r->start_time};

	int rc = 0;

	if (keyset_add(&w->seen, k) < 0)
		return -ENOMEM;
	pthread_mutex_lock(&w->lock);
	if (!w->baseline && !keyset_has(&w->known, k)) {
		w->execs++;
		rc = print_event("exec", r->pid, "scan", r, false, 0);
	}
	pthread_mutex_unlock(&w->lock);
	return rc;
}

static int reconcile(struct watch *w, int64_t scan_id)
{
	struct de_error err = {0};
	int rc;

	w->seen.n = 0;
	rc = de_collector_scan_each(w->col, scan_id, on_scan_record, w, NULL, &err);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&w->lock);
	/* what exited (by event) while we scanned is not alive any more */
	for (size_t i = 0; i < w->exited.n; i++)
		keyset_drop_pid(&w->seen, w->exited.v[i].pid);
	w->exited.n = 0;
	qsort(w->seen.v, w->seen.n, sizeof(struct key), key_cmp);
	for (size_t i = 0; i < w->known.n && !w->baseline && rc == 0; i++)
		if (!keyset_has(&w->seen, w->known.v[i])) {
			w->exits++;
			rc = print_event("exit", w->known.v[i].pid, "scan", NULL, false, 0);
		}
	/* known := seen */
	struct keyset t = w->known;
	w->known = w->seen;
	w->seen = t;
	w->baseline = false;
	pthread_mutex_unlock(&w->lock);
	return rc;
}

/* One event for --events: an exec is read at once, an exit recorded. */
static int watch_event(void *ctx, struct de_process_event *e)
{
	struct watch *w = ctx;
	json_t *j;
	int rc;

	switch (e->kind) {
	case DE_PROCESS_EXEC:
		return on_exec(w, e);
	case DE_PROCESS_EXIT:
		pthread_mutex_lock(&w->lock);
		w->exits++;
		keyset_drop_pid(&w->known, e->pid);
		rc = keyset_add(&w->exited, (struct key){e->pid, 0});
		if (rc == 0)
			rc = print_event("exit", e->pid, w->source, NULL, true, e->exit_code);
		pthread_mutex_unlock(&w->lock);
		return rc;
	case DE_PROCESS_FORK:
		j = json_pack("{s:s, s:I, s:I, s:s, s:I, s:I}", "event", "fork", "time",
			      (json_int_t)e->time_ms, "pid", (json_int_t)e->pid, "source",
			      w->source, "ppid", (json_int_t)e->ppid, "start_time",
			      (json_int_t)e->start_time);
		break;
	case DE_PROCESS_TCP:
		j = json_pack("{s:s, s:I, s:I, s:s, s:o}", "event", "tcp", "time",
			      (json_int_t)e->time_ms, "pid", (json_int_t)e->pid, "source",
			      w->source, "connection", conn_json(&e->conn));
		break;
	case DE_PROCESS_LOST:
		w->reconcile_now = 1;
		pthread_mutex_lock(&w->lock);
		w->lost += e->lost;
		pthread_mutex_unlock(&w->lock);
		de_log_warnx("the kernel lost %llu events (ring buffer full): reconciling with a "
			     "full scan",
			     (unsigned long long)e->lost);
		j = json_pack("{s:s, s:I, s:s, s:I}", "event", "lost", "time",
			      (json_int_t)e->time_ms, "source", w->source, "count",
			      (json_int_t)e->lost);
		break;
	default:
		return 0;
	}
	pthread_mutex_lock(&w->lock);
	rc = print_line(j);
	pthread_mutex_unlock(&w->lock);
	return rc;
}

/* The event thread: read the connector, report at once. */
static void *event_thread(void *arg)
{
	struct watch *w = arg;

	w->event_rc = procmond_follow_events(w->src, watch_event, NULL, w);
	procmond_stop = 1; /* a broken event stream ends the run */
	return NULL;
}

int procmond_watch(struct de_collector *col, struct procmond_source *src, unsigned long interval_ms)
{
	bool ev = procmond_source_on(src);
	struct watch w = {.col = col, .src = src, .source = src->name, .baseline = true};
	struct de_error err = {0};
	pthread_t th;
	bool threaded = false;
	int64_t scan_id = 1;
	int rc = 0;

	pthread_mutex_init(&w.lock, NULL);
	if (ev) {
		if (de_collector_open(NULL, &w.ecol, &err) < 0 ||
		    de_collector_configure(w.ecol, de_collector_options(col), &err) < 0) {
			de_log_err(&err);
			rc = -ENOMEM;
			goto out;
		}
		if ((rc = -pthread_create(&th, NULL, event_thread, &w)) < 0)
			goto out;
		threaded = true;
		de_log_info("watching process events (%s); full scan every %lu ms", src->name,
			    interval_ms);
	} else {
		de_log_warnx("polling every %lu ms instead of real-time events", interval_ms);
	}
	while (!procmond_stop) {
		int64_t next;
		w.reconcile_now = 0;
		if ((rc = reconcile(&w, scan_id++)) < 0)
			break;
		next = de_now_ms() + (int64_t)interval_ms;
		while (!procmond_stop && !w.reconcile_now && de_now_ms() < next) {
			int64_t left = next - de_now_ms();
			if (left > 100)
				left = 100;
			struct timespec ts = {(time_t)(left / 1000),
					      (long)(left % 1000) * 1000000L};
			nanosleep(&ts, NULL);
		}
	}
out:
	procmond_request_stop(); /* the event thread too, at once */
	if (threaded)
		pthread_join(th, NULL);
	if (rc == 0)
		rc = w.event_rc;
	de_log_info("events (%s): %llu exec, %llu exit, %llu lost", src->name,
		    (unsigned long long)w.execs, (unsigned long long)w.exits,
		    (unsigned long long)procmond_source_lost(src));
	de_collector_close(w.ecol);
	free(w.known.v);
	free(w.seen.v);
	free(w.exited.v);
	pthread_mutex_destroy(&w.lock);
	if (rc == -EIO) {
		de_log_warnx("cannot write to standard output");
		return EX_IOERR;
	}
	return rc < 0 ? EX_OSERR : 0;
}

static int print_conn(void *ctx, const struct de_connection *c)
{
	(void)ctx;
	return print_line(conn_json(c));
}

int procmond_print_connections(struct de_collector *col)
{
	struct de_error err = {0};
	int rc;

	(void)col;
	rc = de_netconn_scan(NULL, de_now_ms(), print_conn, NULL, NULL, &err);
	if (rc == -EIO) {
		de_log_warnx("cannot write to standard output");
		return EX_IOERR;
	}
	if (rc < 0) {
		de_log_err(&err);
		return de_error_exit_code(&err);
	}
	return 0;
}
