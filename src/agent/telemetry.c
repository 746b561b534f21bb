/*
 * telemetry.c — what the worker publishes about the service: Prometheus
 * metrics (the seed's Telemetry API, metrics.h) written atomically to
 * metrics.textfile for node_exporter and, when metrics.listen is set,
 * served on loopback; and the health report (health.h) that
 * `daemoneye-cli health` reads, in <state_dir>/health.json.  Both carry
 * what the privileged parent reports over the control channel (restarts,
 * CPU and memory of each process), since the parent writes no files.
 *
 * Counters here are the worker's own and restart at 0 with it (Prometheus
 * takes counter resets in its stride); restarts, which the parent counts,
 * survive a worker restart.  Files are written after each cycle and at
 * most every PUBLISH_MS otherwise, each one an atomic replace.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "agent.h"
#include "daemoneye/clock.h"
#include "daemoneye/health.h"
#include "daemoneye/log.h"

#define PUBLISH_MS 10000

/* ---- the families ------------------------------------------------------------------ */

static const double scan_buckets[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
static const double rule_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
				      0.05,   0.1,   0.25,   1,	    5,	  30};
/* a store write; an exec to its detection (the exec path's budget: 10 ms) */
static const double latency_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
					 0.1,	0.25,	0.5,   1,    5};

#define L(...)	((const char *const[]){__VA_ARGS__})
#define NL(...) (sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

static int families(struct agent_metrics *m, struct de_error *err)
{
	struct de_metrics *r = m->reg;
	int rc = 0;

#define COUNTER(f, name, help, ...)                                                                \
	if (rc == 0)                                                                               \
	rc = de_metrics_counter(r, name, help, L(__VA_ARGS__), NL(__VA_ARGS__) - 1, &m->f, err)
#define GAUGE(f, name, help, ...)                                                                  \
	if (rc == 0)                                                                               \
	rc = de_metrics_gauge(r, name, help, L(__VA_ARGS__), NL(__VA_ARGS__) - 1, &m->f, err)
#define HIST(f, name, help, b, ...)                                                                \
	if (rc == 0)                                                                               \
	rc = de_metrics_add(r, name, help, DE_METRIC_HISTOGRAM, L(__VA_ARGS__),                    \
			    NL(__VA_ARGS__) - 1, b, sizeof(b) / sizeof(b[0]), &m->f, err)
	/* each label list ends in NULL so that an empty one is still an array */
	GAUGE(build, "daemoneye_build_info", "daemoneye's version (always 1).", "version", NULL);
	COUNTER(scans, "daemoneye_scans_total", "Full scans, by result (ok or failed).", "result",
		NULL);
	HIST(scan_seconds, "daemoneye_scan_duration_seconds",
	     "Time of a full cycle's scan and store write.", scan_buckets, NULL);
	GAUGE(scan_time, "daemoneye_last_scan_timestamp_seconds",
	      "When the last full scan ended (Unix time).", NULL);
	GAUGE(processes, "daemoneye_processes", "Processes seen by the last full scan.", NULL);
	COUNTER(events, "daemoneye_events_received_total",
		"Real-time process events received from procmond, by source.", "source", NULL);
	COUNTER(events_lost, "daemoneye_events_lost_total",
		"Process events lost, by source: ebpf or netlink (the kernel could not deliver "
		"them) or queue (the "
		"agent's queue was full or a batch was given up); full scans reconcile them.",
		"source", NULL);
	COUNTER(hash_hits, "daemoneye_hash_cache_hits_total",
		"Executable hashes served by procmond's cache.", NULL);
	COUNTER(hash_misses, "daemoneye_hash_cache_misses_total",
		"Executables procmond had to read and hash.", NULL);
	COUNTER(hashed_bytes, "daemoneye_hashed_bytes_total", "Bytes of executables hashed.", NULL);
	HIST(rule_seconds, "daemoneye_rule_duration_seconds",
	     "Time of one rule's run over the snapshot (full cycles).", rule_buckets, "rule", NULL);
	COUNTER(rule_matches, "daemoneye_rule_matches_total", "Rows each rule matched.", "rule",
		NULL);
	COUNTER(rule_errors, "daemoneye_rule_errors_total",
		"Rule runs that failed (timeout, memory, SQL error).", "rule", NULL);
	GAUGE(rules_loaded, "daemoneye_rules", "Detection rules loaded, by state.", "state", NULL);
	GAUGE(rules_disabled, "daemoneye_rules_disabled_by_watchdog",
	      "Rules the watchdog disabled for exceeding detection.rule_budget_ms.", NULL);
	COUNTER(alerts, "daemoneye_alerts_total", "Alerts raised, by rule and severity.", "rule",
		"severity", NULL);
	COUNTER(alerts_suppressed, "daemoneye_alerts_suppressed_total",
		"Alerts not raised again because the same one is already open.", NULL);
	COUNTER(alerts_folded, "daemoneye_alerts_folded_total",
		"Alerts folded into an earlier one within the folding window.", NULL);
	COUNTER(deliveries, "daemoneye_deliveries_total",
		"Alert delivery attempts, by sink and outcome: delivered, failed (each failed "
		"attempt) or dead (given up: the dead-letter state).",
		"sink", "outcome", NULL);
	GAUGE(queue_depth, "daemoneye_queue_depth",
	      "Items waiting, by queue: events (process events to apply; event_bytes the "
	      "memory they hold) or sink:NAME (a sink's pending deliveries).",
	      "queue", NULL);
	GAUGE(dead_letters, "daemoneye_dead_letters", "Alerts a sink gave up on, by sink.", "sink",
	      NULL);
	GAUGE(circuit, "daemoneye_sink_circuit_state",
	      "Each sink's circuit breaker: 1 for its current state (closed, open, half_open).",
	      "sink", "state", NULL);
	GAUGE(store_bytes, "daemoneye_store_size_bytes",
	      "Size of the event store's files (database and write-ahead log).", NULL);
	GAUGE(store_free, "daemoneye_store_free_bytes",
	      "Free space for unprivileged users on the event store's file system.", NULL);
	GAUGE(store_min_free, "daemoneye_store_min_free_bytes",
	      "The free-disk watermark (database.min_free_disk_mb; 0: none).", NULL);
	GAUGE(store_history, "daemoneye_store_history_written",
	      "Whether process history is written (0: stopped below the free-disk watermark).",
	      NULL);
	HIST(store_write_seconds, "daemoneye_store_write_duration_seconds",
	     "Time of one write transaction of the event store (a scan or an event batch).",
	     latency_buckets, NULL);
	HIST(exec_detect_seconds, "daemoneye_exec_detection_seconds",
	     "From an exec (the kernel's time of it, to the millisecond) to the end of the run "
	     "of the rules that concern one process over it, on the exec path.",
	     latency_buckets, NULL);
	COUNTER(audit_entries, "daemoneye_audit_entries_total",
		"Entries appended to the audit ledger (0 while it is not enabled).", NULL);
	GAUGE(audit_checkpoint, "daemoneye_audit_last_checkpoint_timestamp_seconds",
	      "When the audit ledger's last checkpoint was made (Unix time; 0: never).", NULL);
	GAUGE(audit_cost, "daemoneye_audit_scan_cost_seconds",
	      "Time the last full cycle spent on the audit ledger (its entries and their commit).",
	      NULL);
	COUNTER(restarts, "daemoneye_restarts_total",
		"Restarts of a supervised process, by component and reason.", "component", "reason",
		NULL);
	COUNTER(cpu, "daemoneye_process_cpu_seconds_total",
		"CPU time (user and system) of each process of the service (its current "
		"instance).",
		"component", NULL);
	GAUGE(rss, "daemoneye_process_resident_memory_bytes",
	      "Resident memory of each process of the service.", "component", NULL);
	GAUGE(reload_ok, "daemoneye_config_last_reload_successful",
	      "Whether the last configuration reload worked (1) or was refused (0).", NULL);
	GAUGE(reload_time, "daemoneye_config_last_reload_timestamp_seconds",
	      "When the configuration in use was loaded (Unix time).", NULL);
#undef COUNTER
#undef GAUGE
#undef HIST
	return rc;
}

int telemetry_configure(struct agent *ag, const struct de_config *cfg, struct de_error *err)
{
	struct agent_metrics *m = &ag->m;
	const char *textfile = NULL, *listen = NULL;
	char *tf = NULL;
	int rc;

	if ((rc = de_config_get_str(cfg, "metrics.textfile", &textfile, err)) < 0 ||
	    (rc = de_config_get_str(cfg, "metrics.listen", &listen, err)) < 0)
		return rc;
	if (!textfile) {
		if (asprintf(&tf, "%s/daemoneye.prom", ag->state_dir) < 0)
			return de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
	} else if (*textfile && de_expand_home(textfile, &tf, err) < 0) {
		return -ENOMEM;
	}
	if (listen && !*listen)
		listen = NULL;
	/* the listener moves only when its address changes */
	if ((listen == NULL) != (m->listen == NULL) || (listen && strcmp(listen, m->listen) != 0)) {
		struct de_metrics_server *srv = NULL;
		char *copy = listen ? strdup(listen) : NULL;
		if (listen && (!copy || (rc = de_metrics_server_start(listen, &srv, err)) < 0)) {
			free(copy);
			free(tf);
			return copy ? rc : de_error_set(err, DE_ERR_IO, ENOMEM, "out of memory");
		}
		de_metrics_server_stop(m->http);
		free(m->listen);
		m->http = srv;
		m->listen = copy;
		if (srv)
			de_log_info("metrics on http://%s/metrics (port %u)", listen,
				    (unsigned)de_metrics_server_port(srv));
	}
	free(m->textfile);
	m->textfile = tf;
	return 0;
}

int telemetry_open(struct agent *ag, struct de_error *err)
{
	struct agent_metrics *m = &ag->m;
	int rc;

	if ((rc = de_metrics_new(&m->reg, err)) < 0 || (rc = families(m, err)) < 0 ||
	    (rc = telemetry_configure(ag, ag->cfg, err)) < 0)
		return rc;
	de_metric_set(m->build, L(DE_VERSION), 1);
	return 0;
}

void telemetry_close(struct agent *ag)
{
	de_metrics_server_stop(ag->m.http);
	de_metrics_free(ag->m.reg);
	free(ag->m.textfile);
	free(ag->m.listen);
	memset(&ag->m, 0, sizeof(ag->m));
}

/* ---- updates ------------------------------------------------------------------------- */

void telemetry_scan(struct agent *ag, bool ok, double seconds, size_t processes,
		    const struct de_collect_stats *st)
{
	struct agent_metrics *m = &ag->m;

	if (!m->reg)
		return;
	de_metric_inc(m->scans, L(ok ? "ok" : "failed"), 1);
	de_metric_set(m->scan_time, NULL, (double)de_now_ms() / 1000.0);
	if (!ok)
		return;
	de_metric_observe(m->scan_seconds, NULL, seconds);
	de_metric_set(m->processes, NULL, (double)processes);
	de_metric_inc(m->hash_misses, NULL, (double)st->hashed_files);
	de_metric_inc(m->hash_hits, NULL, (double)ag->pm.hash_hits);
	de_metric_inc(m->hashed_bytes, NULL, (double)st->hashed_bytes);
}

void telemetry_rules(struct agent *ag, const struct de_rule_result *results, size_t n, bool full)
{
	struct agent_metrics *m = &ag->m;

	if (!m->reg)
		return;
	for (size_t i = 0; i < n; i++) {
		const struct de_rule_result *r = &results[i];
		if (!r->ran)
			continue;
		if (full)
			de_metric_observe(m->rule_seconds, L(r->rule_id),
					  (double)r->elapsed_us / 1e6);
		if (r->rows)
			de_metric_inc(m->rule_matches, L(r->rule_id), (double)r->rows);
		if (r->status < 0)
			de_metric_inc(m->rule_errors, L(r->rule_id), 1);
	}
}

void telemetry_alerts(struct agent *ag, const struct de_alert_list *alerts)
{
	for (size_t i = 0; ag->m.reg && i < alerts->len; i++)
		de_metric_inc(
			ag->m.alerts,
			L(alerts->items[i].rule_id, de_severity_name(alerts->items[i].severity)),
			1);
}

void telemetry_alert_counts(struct agent *ag, const struct de_alertmgr_counts *c)
{
	if (!ag->m.reg)
		return;
	de_metric_inc(ag->m.alerts_suppressed, NULL, (double)c->suppressed);
	de_metric_inc(ag->m.alerts_folded, NULL, (double)c->folded);
}

void telemetry_store_write(struct agent *ag, double seconds)
{
	if (ag->m.reg)
		de_metric_observe(ag->m.store_write_seconds, NULL, seconds);
}

void telemetry_exec_detected(struct agent *ag, const struct de_process_event *ev, size_t n,
			     int64_t now_ms)
{
	if (!ag->m.reg)
		return;
	for (size_t i = 0; i < n; i++)
		if (ev[i].kind == DE_PROCESS_EXEC && ev[i].has_record && ev[i].time_ms > 0)
			de_metric_observe(ag->m.exec_detect_seconds, NULL,
					  now_ms > ev[i].time_ms
						  ? (double)(now_ms - ev[i].time_ms) / 1e3
						  : 0.0);
}

/* ---- gauges read when publishing ------------------------------------------------------- */

static uint64_t file_size(const char *path, const char *suffix)
{
	char p[4200];
	struct stat st;

	snprintf(p, sizeof(p), "%s%s", path, suffix);
	return stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Bytes free for an unprivileged user where the store is. */
static uint64_t free_bytes(const struct agent *ag)
{
	struct statvfs sv;

	if (ag->store_path && statvfs(ag->store_path, &sv) == 0)
		return (uint64_t)sv.f_bavail * sv.f_frsize;
	return statvfs(ag->state_dir, &sv) == 0 ? (uint64_t)sv.f_bavail * sv.f_frsize : 0;
}

static void self_usage(uint64_t *cpu_ms, uint64_t *rss)
{
	struct rusage ru;
	FILE *f;

	*cpu_ms = *rss = 0;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		*cpu_ms = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
			  (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
	if ((f = fopen("/proc/self/statm", "re"))) {
		char line[128];
		const char *sp;
		/* "size resident ...", in pages */
		if (fgets(line, sizeof(line), f) && (sp = strchr(line, ' ')))
			*rss = strtoull(sp + 1, NULL, 10) * (uint64_t)sysconf(_SC_PAGESIZE);
		(void)fclose(f); /* read only: nothing to lose */
	}
}

/* Prometheus-style label values for the breaker's states. */
static const char *breaker_label(int b)
{
	return b == DE_BREAKER_CLOSED ? "closed" : b == DE_BREAKER_OPEN ? "open" : "half_open";
}

static uint32_t restarts_of(const struct de_ctl_child *c)
{
	uint32_t n = 0;
	for (int r = 0; r < DE_CTL_REASON_MAX; r++)
		n += c->restarts[r];
	return n;
}

static void refresh_gauges(struct agent *ag, uint64_t store_bytes, uint64_t free_b)
{
	struct agent_metrics *m = &ag->m;
	struct procmond_chan *ch = &ag->pm;
	uint64_t cpu_ms, rss;
	size_t enabled = 0;

	/* the source procmond said it uses (ebpf or netlink) */
	const char *source = ch->event_source[0] && strcmp(ch->event_source, "none") != 0
				     ? ch->event_source
				     : "netlink";
	de_metric_set(m->events, L(source), (double)ch->events_seen);
	de_metric_set(m->events_lost, L(source), (double)(ch->lost_before + ch->events_lost));
	de_metric_set(m->events_lost, L("queue"), (double)ch->events_dropped);
	de_metric_set(m->queue_depth, L("events"), (double)agent_events_count(ch));
	de_metric_set(m->queue_depth, L("event_bytes"), (double)agent_events_bytes(ch));
	for (size_t i = 0; i < ag->det.rules.len; i++)
		enabled += ag->det.rules.items[i].enabled;
	de_metric_set(m->rules_loaded, L("enabled"), (double)enabled);
	de_metric_set(m->rules_loaded, L("disabled"), (double)(ag->det.rules.len - enabled));
	de_metric_set(m->rules_disabled, NULL, (double)ag->nslow);
	/* each sink: its outcomes, what waits for it, its circuit breaker */
	for (size_t i = 0; i < de_alertmgr_nsinks(ag->alerts); i++) {
		struct de_alertmgr_sink_status st;
		struct de_error err = {0};
		char q[128];
		if (de_alertmgr_sink_status(ag->alerts, i, &st, &err) < 0)
			continue;
		snprintf(q, sizeof(q), "sink:%s", st.name);
		de_metric_set(m->deliveries, L(st.name, "delivered"), (double)st.delivered);
		de_metric_set(m->deliveries, L(st.name, "failed"), (double)st.failed);
		de_metric_set(m->deliveries, L(st.name, "dead"), (double)st.dead);
		de_metric_set(m->queue_depth, L(q), (double)st.pending);
		de_metric_set(m->dead_letters, L(st.name), (double)st.dead_letters);
		for (int b = 0; b < DE_BREAKER_MAX; b++)
			de_metric_set(m->circuit, L(st.name, breaker_label(b)),
				      (int)st.circuit == b);
	}
	de_metric_set(m->store_bytes, NULL, (double)store_bytes);
	de_metric_set(m->store_free, NULL, (double)free_b);
	de_metric_set(m->store_min_free, NULL, (double)ag->min_free_bytes);
	de_metric_set(m->store_history, NULL, ag->history_off ? 0 : 1);
	de_metric_set(m->restarts, L("event_reader", "crash"),
		      (double)(ch->restarts_before + ch->event_restarts));
	self_usage(&cpu_ms, &rss);
	de_metric_set(m->cpu, L("worker"), (double)cpu_ms / 1000.0);
	de_metric_set(m->rss, L("worker"), (double)rss);
	if (ag->have_sup) {
		const struct de_ctl_supervisor *s = &ag->sup;
		for (int r = 0; r < DE_CTL_REASON_MAX; r++) {
			if (s->procmond.restarts[r])
				de_metric_set(m->restarts, L("procmond", de_ctl_reason_name(r)),
					      s->procmond.restarts[r]);
			if (s->worker.restarts[r])
				de_metric_set(m->restarts, L("worker", de_ctl_reason_name(r)),
					      s->worker.restarts[r]);
		}
		de_metric_set(m->cpu, L("parent"), (double)s->cpu_ms / 1000.0);
		de_metric_set(m->rss, L("parent"), (double)s->rss_bytes);
		if (s->procmond.pid) {
			de_metric_set(m->cpu, L("procmond"), (double)s->procmond.cpu_ms / 1000.0);
			de_metric_set(m->rss, L("procmond"), (double)s->procmond.rss_bytes);
		}
	}
	if (ag->audit) {
		de_metric_set(m->audit_entries, NULL, (double)de_audit_size(ag->audit));
		de_metric_set(m->audit_checkpoint, NULL,
			      (double)de_audit_last_checkpoint_ms(ag->audit) / 1000.0);
		if (ag->ledger_cycle_us >= 0)
			de_metric_set(m->audit_cost, NULL, (double)ag->ledger_cycle_us / 1e6);
	}
	de_metric_set(m->reload_ok, NULL, ag->reload_ok ? 1 : 0);
	de_metric_set(m->reload_time, NULL, (double)ag->reload_ms / 1000.0);
}

/* ---- the health report ------------------------------------------------------------------ */

static void ago(char *buf, size_t n, int64_t then_ms)
{
	de_duration_format(buf, n, de_now_ms() - then_ms);
}

static void add(json_t *doc, const char *name, enum de_health_status st, json_t *details,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void add(json_t *doc, const char *name, enum de_health_status st, json_t *details,
		const char *fmt, ...)
{
	char summary[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(summary, sizeof(summary), fmt, ap);
	va_end(ap);
	(void)de_health_add(doc, name, st, summary, details);
}

/* "3 restarts (last: crash, killed by signal 9, 4 min ago)" or "no restarts". */
static void restarts_text(char *buf, size_t n, const struct de_ctl_child *c)
{
	uint32_t total = restarts_of(c);
	char when[32];
	int worst = -1;

	if (!total) {
		snprintf(buf, n, "no restarts");
		return;
	}
	for (int r = 0; r < DE_CTL_REASON_MAX; r++)
		if (c->restarts[r] && (worst < 0 || c->restarts[r] > c->restarts[worst]))
			worst = r;
	ago(when, sizeof(when), c->last_exit_ms);
	snprintf(buf, n, "%u restart%s (mostly %s; last exit %s ago)", total, total == 1 ? "" : "s",
		 de_ctl_reason_name(worst), when);
}

static json_t *restarts_json(const struct de_ctl_child *c)
{
	json_t *o = json_object();
	for (int r = 0; o && r < DE_CTL_REASON_MAX; r++)
		if (c->restarts[r])
			json_object_set_new(o, de_ctl_reason_name(r), json_integer(c->restarts[r]));
	return o;
}

/* Restarted within the last hour: worth a look. */
static bool recent_exit(const struct de_ctl_child *c)
{
	return restarts_of(c) && de_now_ms() - c->last_exit_ms < (int64_t)3600 * 1000;
}

static void health_parent(struct agent *ag, json_t *doc)
{
	const struct de_ctl_supervisor *s = &ag->sup;
	char up[32];

	if (!ag->have_sup) {
		add(doc, "parent", DE_HEALTH_WARNING, NULL, "no report from the parent yet");
		return;
	}
	ago(up, sizeof(up), s->started_ms);
	add(doc, "parent", DE_HEALTH_OK,
	    json_pack("{s:i, s:I, s:b, s:b, s:I}", "pid", (int)s->pid, "started_at",
		      (json_int_t)s->started_ms, "privileged", s->privileged, "signing", s->signing,
		      "rss_bytes", (json_int_t)s->rss_bytes),
	    "pid %u, up %s, %s; checkpoint signing %s", s->pid, up,
	    s->privileged ? "root (keeps only procmond's capabilities)" : "unprivileged",
	    s->signing ? "on" : "off");
}

static void health_procmond(struct agent *ag, json_t *doc)
{
	const struct procmond_chan *ch = &ag->pm;
	const struct de_ctl_child *c = &ag->sup.procmond;
	bool want_events = false;
	char up[32], rs[128];
	enum de_health_status st = DE_HEALTH_OK;
	json_t *d;

	(void)de_config_get_bool(ag->cfg, "collection.events", &want_events, NULL);
	restarts_text(rs, sizeof(rs), c);
	const char *source = ch->event_source[0] ? ch->event_source
			     : ch->events	 ? "netlink"
						 : "none";
	d = json_pack("{s:i, s:I, s:s, s:s, s:s, s:I, s:I, s:o, s:I, s:I, s:I}", "pid",
		      (int)ch->pid, "started_at", (json_int_t)ch->started_ms, "event_source",
		      source, "event_source_reason", ch->event_reason, "capabilities", ch->caps,
		      "events_lost", (json_int_t)ch->lost_before + (json_int_t)ch->events_lost,
		      "event_reader_restarts",
		      (json_int_t)ch->restarts_before + (json_int_t)ch->event_restarts, "restarts",
		      restarts_json(c), "events_dropped", (json_int_t)ch->events_dropped,
		      "event_queue_bytes", (json_int_t)agent_events_bytes(ch),
		      "event_queue_max_bytes", (json_int_t)agent_events_max(ch));
	if (ch->fd < 0) {
		char due[64] = "";
		if (ag->have_sup && c->restart_in_ms >= 0)
			snprintf(due, sizeof(due), "; a new one starts in %lld ms",
				 (long long)c->restart_in_ms);
		add(doc, "procmond", DE_HEALTH_CRITICAL, d, "not running%s; %s", due, rs);
		return;
	}
	if (recent_exit(c) || ch->restarts_before + ch->event_restarts || ch->dropping)
		st = DE_HEALTH_WARNING;
	if (want_events && !ch->events && ag->sup.privileged)
		st = DE_HEALTH_WARNING;
	ago(up, sizeof(up), ch->started_ms);
	add(doc, "procmond", st, d, "pid %d, up %s, events: %s%s; %s", (int)ch->pid, up,
	    ch->events	  ? source
	    : want_events ? "off (polling only)"
			  : "off (polling, as configured)",
	    ch->dropping ? " (the agent's event queue is full: dropping)" : "", rs);
}

static void health_worker(struct agent *ag, json_t *doc)
{
	const struct de_ctl_child *c = &ag->sup.worker;
	char up[32], rs[128];
	uint64_t cpu, rss;

	self_usage(&cpu, &rss);
	restarts_text(rs, sizeof(rs), c);
	ago(up, sizeof(up), ag->started_ms);
	add(doc, "worker", recent_exit(c) ? DE_HEALTH_WARNING : DE_HEALTH_OK,
	    json_pack("{s:i, s:I, s:I, s:o}", "pid", (int)getpid(), "started_at",
		      (json_int_t)ag->started_ms, "rss_bytes", (json_int_t)rss, "restarts",
		      restarts_json(c)),
	    "pid %d, up %s, %.1f MiB resident; %s", (int)getpid(), up, (double)rss / 1048576.0, rs);
}

static void health_store(struct agent *ag, json_t *doc, uint64_t size, uint64_t free_b)
{
	const char *disk = ag->history_off ? "; below database.min_free_disk_mb with no history "
					     "left to prune: history is not written"
			   : ag->low_disk  ? "; below database.min_free_disk_mb: pruning history"
					   : "";

	add(doc, "store",
	    ag->history_off ? DE_HEALTH_CRITICAL
	    : ag->low_disk  ? DE_HEALTH_WARNING
			    : DE_HEALTH_OK,
	    json_pack("{s:s, s:I, s:I, s:I, s:b, s:b}", "path", ag->store_path, "size_bytes",
		      (json_int_t)size, "free_bytes", (json_int_t)free_b, "min_free_bytes",
		      (json_int_t)ag->min_free_bytes, "low_disk", ag->low_disk, "history_written",
		      !ag->history_off),
	    "%s: %.1f MiB, %.1f GiB free%s", ag->store_path, (double)size / 1048576.0,
	    (double)free_b / 1073741824.0, disk);
}

static void health_rules(struct agent *ag, json_t *doc)
{
	json_t *failing = json_array(), *slow = json_array();
	size_t enabled = 0;

	for (size_t i = 0; i < ag->det.rules.len; i++) {
		enabled += ag->det.rules.items[i].enabled;
		if (ag->det.results && ag->det.results[i].ran && ag->det.results[i].status < 0)
			json_array_append_new(failing, json_string(ag->det.rules.items[i].id));
	}
	for (size_t i = 0; i < ag->nslow; i++)
		json_array_append_new(slow, json_pack("{s:s, s:I, s:I}", "id", ag->slow[i].id, "at",
						      (json_int_t)ag->slow[i].at_ms, "last_run_ms",
						      (json_int_t)(ag->slow[i].last_us / 1000)));
	size_t nfail = json_array_size(failing);
	char extra[512] = "";
	size_t o = 0;
	if (nfail)
		o += (size_t)snprintf(extra + o, sizeof(extra) - o, "; %zu failing", nfail);
	if (ag->nslow && o < sizeof(extra)) {
		o += (size_t)snprintf(extra + o, sizeof(extra) - o, "; disabled by the watchdog:");
		for (size_t i = 0; i < ag->nslow && o < sizeof(extra); i++)
			o += (size_t)snprintf(extra + o, sizeof(extra) - o, " %s", ag->slow[i].id);
	}
	if (ag->det.problems && o < sizeof(extra))
		snprintf(extra + o, sizeof(extra) - o, "; %zu skipped as invalid",
			 ag->det.problems);
	add(doc, "rules", nfail || ag->nslow || ag->det.problems ? DE_HEALTH_WARNING : DE_HEALTH_OK,
	    json_pack("{s:I, s:I, s:o, s:o, s:I}", "loaded", (json_int_t)ag->det.rules.len,
		      "enabled", (json_int_t)enabled, "failing", failing, "disabled_by_watchdog",
		      slow, "skipped", (json_int_t)ag->det.problems),
	    "%zu loaded, %zu enabled%s", ag->det.rules.len, enabled, extra);
}

static void health_sinks(struct agent *ag, json_t *doc)
{
	size_t n = de_alertmgr_nsinks(ag->alerts);

	if (!n) {
		add(doc, "sinks", DE_HEALTH_WARNING, NULL, "no alert sink: alerts are only stored");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct de_alertmgr_sink_status st;
		struct de_error err = {0};
		char name[160];
		if (de_alertmgr_sink_status(ag->alerts, i, &st, &err) < 0) {
			snprintf(name, sizeof(name), "sink:%zu", i);
			add(doc, name, DE_HEALTH_WARNING, NULL, "cannot read its state: %s",
			    err.message);
			continue;
		}
		snprintf(name, sizeof(name), "sink:%s", st.name);
		/* open: alerts are not reaching it; dead letters: some never will */
		enum de_health_status s = st.circuit == DE_BREAKER_OPEN ? DE_HEALTH_CRITICAL
					  : st.circuit == DE_BREAKER_HALF_OPEN || st.dead_letters
						  ? DE_HEALTH_WARNING
						  : DE_HEALTH_OK;
		add(doc, name, s,
		    json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "circuit",
			      breaker_label(st.circuit), "pending", (json_int_t)st.pending,
			      "dead_letters", (json_int_t)st.dead_letters, "delivered",
			      (json_int_t)st.delivered, "failed", (json_int_t)st.failed, "dead",
			      (json_int_t)st.dead),
		    "circuit %s; %zu pending, %zu dead-lettered; %llu delivered, %llu failed "
		    "attempts since start",
		    de_breaker_state_name(st.circuit), st.pending, st.dead_letters,
		    (unsigned long long)st.delivered, (unsigned long long)st.failed);
	}
}

static void health_scan(struct agent *ag, json_t *doc)
{
	int64_t interval = (int64_t)ag->scan_interval_ms;
	char age[32];

	if (!ag->last_scan_ms) {
		add(doc, "scan", DE_HEALTH_OK, NULL, "waiting for the first scan");
		return;
	}
	int64_t since = de_now_ms() - ag->last_scan_ms;
	enum de_health_status st = DE_HEALTH_OK;
	if (ag->scan_failures >= 3 || since > 5 * interval + (int64_t)ag->pm.timeout_ms)
		st = DE_HEALTH_CRITICAL;
	else if (ag->scan_failures || since > 2 * interval + (int64_t)ag->pm.timeout_ms)
		st = DE_HEALTH_WARNING;
	ago(age, sizeof(age), ag->last_scan_ms);
	json_t *d = json_pack(
		"{s:I, s:I, s:b, s:I, s:I, s:i}", "scan_id", (json_int_t)ag->last_scan_id,
		"ended_at", (json_int_t)ag->last_scan_ms, "ok", ag->last_scan_ok, "duration_ms",
		(json_int_t)ag->last_scan_dur_ms, "processes", (json_int_t)ag->last_processes,
		"failures_in_a_row", (int)ag->scan_failures);
	if (ag->last_scan_ok)
		add(doc, "scan", st, d, "scan %lld %s ago: %zu processes in %llu ms",
		    (long long)ag->last_scan_id, age, ag->last_processes,
		    (unsigned long long)ag->last_scan_dur_ms);
	else
		add(doc, "scan", st, d, "scan %lld failed %s ago (%u in a row): %s",
		    (long long)ag->last_scan_id, age, ag->scan_failures, ag->last_scan_error);
}

static void health_config(struct agent *ag, json_t *doc)
{
	char when[32];

	ago(when, sizeof(when), ag->reload_ms);
	if (ag->reload_ok)
		add(doc, "config", DE_HEALTH_OK,
		    json_pack("{s:I}", "loaded_at", (json_int_t)ag->reload_ms), "loaded %s ago",
		    when);
	else
		add(doc, "config", DE_HEALTH_WARNING,
		    json_pack("{s:I, s:s}", "loaded_at", (json_int_t)ag->reload_ms, "reload_error",
			      ag->reload_error),
		    "reload refused, running on the configuration loaded %s ago: %s", when,
		    ag->reload_error);
}

static void health_audit(struct agent *ag, json_t *doc)
{
	char ago_s[32];

	if (!ag->audit) {
		add(doc, "audit", DE_HEALTH_OK, json_pack("{s:b}", "enabled", 0),
		    "the audit ledger is off (audit.enabled)");
		return;
	}
	int64_t cp = de_audit_last_checkpoint_ms(ag->audit);
	uint64_t size = de_audit_size(ag->audit);
	uint64_t interval = ag->audit_set.checkpoint_interval_s;
	json_t *d = json_pack("{s:b, s:s, s:I, s:I, s:b}", "enabled", 1, "path", ag->audit_set.path,
			      "entries", (json_int_t)size, "last_checkpoint_at", (json_int_t)cp,
			      "signed", ag->audit_set.enable_signatures);
	if (!ag->audit_set.enable_signatures) {
		add(doc, "audit", DE_HEALTH_OK, d, "%llu entries; checkpoints not signed",
		    (unsigned long long)size);
		return;
	}
	if (!cp) {
		add(doc, "audit", DE_HEALTH_OK, d, "%llu entries; no checkpoint yet",
		    (unsigned long long)size);
		return;
	}
	ago(ago_s, sizeof(ago_s), cp);
	/* overdue by two intervals while entries wait: signing is not happening */
	bool overdue = interval && size && de_now_ms() - cp > 2 * (int64_t)interval * 1000;
	add(doc, "audit", overdue ? DE_HEALTH_WARNING : DE_HEALTH_OK, d,
	    "%llu entries; last signed checkpoint %s ago", (unsigned long long)size, ago_s);
}

static void write_health(struct agent *ag, uint64_t store_bytes, uint64_t free_b)
{
	int64_t interval = (int64_t)ag->scan_interval_ms;
	int64_t stale =
		3 * (interval > PUBLISH_MS ? interval : PUBLISH_MS) + (int64_t)ag->pm.timeout_ms;
	json_t *doc = de_health_new(de_now_ms(), stale);
	char *path = NULL;
	struct de_error err = {0};

	if (!doc || asprintf(&path, "%s/%s", ag->state_dir, DE_HEALTH_FILE) < 0) {
		json_decref(doc);
		return;
	}
	if (ag->final_publish)
		add(doc, "agent", ag->opts->once ? DE_HEALTH_OK : DE_HEALTH_CRITICAL, NULL, "%s",
		    ag->opts->once ? "ran one cycle (--once) and exited"
				   : "stopped: the service is not running");
	health_parent(ag, doc);
	health_procmond(ag, doc);
	health_worker(ag, doc);
	health_store(ag, doc, store_bytes, free_b);
	health_rules(ag, doc);
	health_sinks(ag, doc);
	health_audit(ag, doc);
	health_scan(ag, doc);
	health_config(ag, doc);
	if (de_health_write(path, doc, &err) < 0)
		de_log_err(&err);
	free(path);
	json_decref(doc);
}

void telemetry_publish(struct agent *ag, bool force)
{
	struct agent_metrics *m = &ag->m;
	int64_t now = de_mono_ms();
	struct de_error err = {0};

	if (!m->reg || !ag->state_dir || (!force && now - m->last_publish < PUBLISH_MS))
		return;
	m->last_publish = now;
	uint64_t store_bytes = file_size(ag->store_path, "") + file_size(ag->store_path, "-wal");
	uint64_t free_b = free_bytes(ag);
	refresh_gauges(ag, store_bytes, free_b);
	if (m->textfile && de_metrics_write_textfile(m->reg, m->textfile, &err) < 0)
		de_log_err(&err);
	if (m->http) {
		struct de_buf b = DE_BUF_INIT(DE_METRIC_MAX_TEXT);
		if (de_metrics_render(m->reg, &b) == 0)
			(void)de_metrics_server_publish(m->http, b.p ? b.p : "", b.len);
		de_buf_free(&b);
	}
	write_health(ag, store_bytes, free_b);
}
