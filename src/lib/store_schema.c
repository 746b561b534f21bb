/*
 * store_schema.c — the event store's schema: its one description and the
 * migrations that produce it.
 *
 * The description (the tables below, each with its columns, their declared
 * types and a line on each) is the schema as the last migration leaves it.
 * The rule-visible tables are what de_relations() returns: the validator's
 * authorizer admits reads of exactly these columns, its schema-only
 * database is made of them, and `daemoneye-cli rules schema` prints them.
 * The other tables are described too, so tests/test_store_schema.c can
 * check the migrated file against the description in both directions:
 * every described column exists with its type, every column of every table
 * is described.  To add a column: append a migration, then describe it here.
 *
 * Migrations run forward inside one transaction, keyed by PRAGMA
 * user_version; a released one is never edited.  Schema history: 1 the
 * foundation; 2 history that grows with churn (instances, changes,
 * samples, scan status, deliveries); 3 alerts.incomplete; 4 an instance's
 * history row written when it leaves the snapshot; 5 alerting (state,
 * suppressed matches, deduplication windows, the outbox); 6 full identity
 * (user_name, group_name, cwd) and network_connections; 7 the outbox's
 * status check without an IN list, an index on resolved states; 8 the
 * fleet's spool; 9 the due index without deliveries in a worker's hands.
 */
#include "store_int.h"

#include <errno.h>
#include <stdio.h>

/* ---- the description ------------------------------------------------------ */

#define NCOLS(a) (sizeof(a) / sizeof((a)[0]))

static const struct de_column processes_cols[] = {
	{"pid", "INTEGER", "process ID"},
	{"id", "TEXT", "UUID of this process record"},
	{"scan_id", "INTEGER", "scan that recorded it"},
	{"collection_time", "INTEGER", "when it was read, ms since the epoch"},
	{"ppid", "INTEGER", "parent process ID (NULL if unknown)"},
	{"name", "TEXT",
	 "process name: the executable's full name when comm (platform_data.comm, 15 bytes) "
	 "cuts it"},
	{"executable_path", "TEXT", "path of the running executable (NULL if unknown)"},
	{"command_line", "TEXT", "arguments joined by single spaces"},
	{"argv_json", "TEXT", "arguments as a JSON array of strings"},
	{"start_time", "INTEGER", "process start, ms since the epoch"},
	{"cpu_usage", "REAL", "percent of one core since the last sample"},
	{"memory_usage", "INTEGER", "resident bytes"},
	{"executable_hash", "TEXT", "SHA-256 of the executable (hex)"},
	{"hash_algorithm", "TEXT", "'sha256' when hashed"},
	{"user_id", "TEXT", "effective uid (as ps), decimal"},
	{"accessible", "INTEGER", "1 if its details could be read"},
	{"file_exists", "INTEGER", "1 if executable_path exists on disk"},
	{"exe_deleted", "INTEGER", "1 if the running image was deleted"},
	{"exe_replaced", "INTEGER", "1 if executable_path now names another file"},
	{"platform_data", "TEXT", "Linux facts as JSON (state, euid, kernel_thread, ...)"},
	{"instance_id", "INTEGER",
	 "id of this process instance (process_instances.id once exited)"},
	{"identity_hash", "INTEGER", "store-internal hash of the identity fields"},
	{"value_hash", "INTEGER", "store-internal hash of the changing values"},
	{"first_seen", "INTEGER", "when this instance was first stored, ms since the epoch"},
	{"first_scan_id", "INTEGER", "scan that first saw this instance"},
	{"user_name", "TEXT", "name of the effective uid (NULL when it has none)"},
	{"group_name", "TEXT", "name of the effective gid (NULL when it has none)"},
	{"cwd", "TEXT", "working directory (NULL if unknown)"},
};

/*
 * History: one row per process instance (pid, start_time) that has left the
 * snapshot (event store schema 4; live instances are the processes rows).
 */
static const struct de_column instances_cols[] = {
	{"id", "INTEGER", "instance id (processes.instance_id)"},
	{"pid", "INTEGER", "process ID"},
	{"start_time", "INTEGER", "process start, ms since the epoch"},
	{"ppid", "INTEGER", "parent process ID as last stored"},
	{"name", "TEXT", "process name"},
	{"executable_path", "TEXT", "path of the executable"},
	{"command_line", "TEXT", "arguments joined by single spaces"},
	{"argv_json", "TEXT", "arguments as a JSON array"},
	{"executable_hash", "TEXT", "SHA-256 of the executable (hex)"},
	{"hash_algorithm", "TEXT", "'sha256' when hashed"},
	{"user_id", "TEXT", "effective uid (as ps), decimal"},
	{"accessible", "INTEGER", "1 if its details could be read"},
	{"file_exists", "INTEGER", "1 if executable_path existed"},
	{"exe_deleted", "INTEGER", "1 if the running image was deleted"},
	{"exe_replaced", "INTEGER", "1 if executable_path named another file"},
	{"platform_data", "TEXT", "Linux facts as JSON"},
	{"cpu_usage", "REAL", "last observed cpu percent"},
	{"memory_usage", "INTEGER", "last observed resident bytes"},
	{"first_seen", "INTEGER", "ms since the epoch"},
	{"last_seen", "INTEGER", "ms since the epoch"},
	{"exited_at", "INTEGER", "when it was seen gone"},
	{"first_scan_id", "INTEGER", "scan that first saw it"},
	{"last_scan_id", "INTEGER", "scan that last saw it"},
	{"exit_scan_id", "INTEGER", "scan that saw it gone"},
	{"user_name", "TEXT", "name of the effective uid"},
	{"group_name", "TEXT", "name of the effective gid"},
	{"cwd", "TEXT", "working directory"},
	{"exit_code", "INTEGER", "its exit status (0-255) when an exit event saw it exit"},
	{"exit_signal", "INTEGER", "the signal that killed it, when an exit event saw that"},
};

/* Identity changes of a live instance (exec, reparenting, deletion): old values. */
static const struct de_column changes_cols[] = {
	{"id", "INTEGER", "change id"},
	{"instance_id", "INTEGER", "process_instances.id"},
	{"changed_at", "INTEGER", "ms since the epoch"},
	{"scan_id", "INTEGER", "scan that saw the change"},
	{"ppid", "INTEGER", "parent before the change"},
	{"name", "TEXT", "name before the change"},
	{"executable_path", "TEXT", "executable before the change"},
	{"command_line", "TEXT", "arguments before the change"},
	{"argv_json", "TEXT", "arguments as JSON before the change"},
	{"executable_hash", "TEXT", "hash before the change"},
	{"hash_algorithm", "TEXT", "'sha256' when hashed"},
	{"user_id", "TEXT", "uid before the change"},
	{"accessible", "INTEGER", "1 if readable"},
	{"file_exists", "INTEGER", "1 if the executable existed"},
	{"exe_deleted", "INTEGER", "1 if the image was deleted"},
	{"exe_replaced", "INTEGER", "1 if the path named another file"},
	{"platform_data", "TEXT", "Linux facts as JSON"},
	{"user_name", "TEXT", "user name before the change"},
	{"group_name", "TEXT", "group name before the change"},
	{"cwd", "TEXT", "working directory before the change"},
};

/* TCP connections of process instances (schema 6): the eBPF sensor's
 * connect/listen/accept and what full scans find open. */
static const struct de_column connections_cols[] = {
	{"id", "INTEGER", "connection id"},
	{"pid", "INTEGER", "the process"},
	{"start_time", "INTEGER", "its start, ms since the epoch (with pid: the instance)"},
	{"kind", "TEXT", "'connect' (outbound), 'accept' (inbound), 'listen' or 'connect_failed'"},
	{"family", "INTEGER", "4 or 6"},
	{"local_address", "TEXT", "local address ('127.0.0.1', '::1', ...)"},
	{"local_port", "INTEGER", "local port"},
	{"remote_address", "TEXT", "remote address ('0.0.0.0' or '::' for a listener)"},
	{"remote_port", "INTEGER", "remote port (0 for a listener)"},
	{"inode", "INTEGER", "the socket's inode (NULL if unknown)"},
	{"first_seen", "INTEGER", "when it was first reported, ms since the epoch"},
	{"last_seen", "INTEGER", "when it was last reported or found open"},
	{"closed_at", "INTEGER",
	 "when a full scan no longer found it (NULL: open, as far as known)"},
	{"source", "TEXT", "'ebpf' (reported as it happened) or 'scan' (found open by a scan)"},
};

/* Sampled cpu and memory of instances (database.sample_interval_s). */
static const struct de_column samples_cols[] = {
	{"id", "INTEGER", "sample id"},
	{"instance_id", "INTEGER", "process_instances.id"},
	{"t", "INTEGER", "ms since the epoch"},
	{"scan_id", "INTEGER", "scan of the sample"},
	{"cpu_usage", "REAL", "percent of one core"},
	{"memory_usage", "INTEGER", "resident bytes"},
};

static const struct de_column scans_cols[] = {
	{"id", "INTEGER", "scan id"},
	{"started_at", "INTEGER", "ms since the epoch"},
	{"ended_at", "INTEGER", "ms since the epoch (NULL while running)"},
	{"process_count", "INTEGER", "processes recorded"},
	{"duration_ms", "INTEGER", "how long the scan took"},
	{"source", "TEXT", "what triggered it ('poll', ...)"},
	{"status", "TEXT", "'running', 'ok' or 'failed'"},
	{"error", "TEXT", "why a failed scan failed"},
	{"new_count", "INTEGER", "new process instances stored"},
	{"changed_count", "INTEGER", "snapshot rows changed"},
	{"exited_count", "INTEGER", "instances seen gone"},
};

/* The tables rules may read (de_relations()), in the order `rules schema` lists them. */
static const struct de_relation rule_visible[] = {
	{"processes", "the current snapshot: one row per live process", processes_cols,
	 NCOLS(processes_cols)},
	{"scans", "one row per collection scan", scans_cols, NCOLS(scans_cols)},
	{"process_instances", "history: one row per exited process instance (pid, start_time)",
	 instances_cols, NCOLS(instances_cols)},
	{"process_changes", "history: identity changes of live instances (old values)",
	 changes_cols, NCOLS(changes_cols)},
	{"process_samples", "history: sampled cpu and memory", samples_cols, NCOLS(samples_cols)},
	{"network_connections", "TCP connections of process instances (join on pid, start_time)",
	 connections_cols, NCOLS(connections_cols)},
};

/* Alerts raised by rules (DESIGN.md: the seed's Alert). */
static const struct de_column alerts_cols[] = {
	{"id", "TEXT", "alert UUID"},
	{"alert_time", "INTEGER", "when it was raised, ms since the epoch"},
	{"rule_id", "TEXT", "the rule that raised it"},
	{"title", "TEXT", "the rule's name"},
	{"description", "TEXT", "what the rule detects"},
	{"severity", "TEXT", "'low', 'medium', 'high' or 'critical'"},
	{"scan_id", "INTEGER", "scan the rule ran over (NULL for the exec path)"},
	{"affected_processes", "TEXT", "the processes as a JSON array"},
	{"process_count", "INTEGER", "how many processes the rule returned"},
	{"alert_data", "TEXT", "the rule's rows as JSON"},
	{"rule_execution_time_ms", "INTEGER", "how long the rule ran"},
	{"dedupe_key", "TEXT", "what identifies a repeat of this alert"},
	{"incomplete", "INTEGER", "1 if the rule was cut short by a limit"},
	{"kind", "TEXT", "'alert', 'summary' (a closed deduplication window) or 'test'"},
	{"context", "TEXT", "the process, its parent and the host as JSON, for the sinks"},
};

/* One row per (alert, sink): what became of its delivery. */
static const struct de_column deliveries_cols[] = {
	{"id", "INTEGER", "delivery id"},
	{"alert_id", "TEXT", "alerts.id"},
	{"sink", "TEXT", "the sink's name"},
	{"status", "TEXT", "'pending', 'delivered' or 'dead' (the dead-letter state)"},
	{"attempts", "INTEGER", "attempts made"},
	{"next_attempt_at", "INTEGER",
	 "when a pending delivery is due, ms since the epoch (NULL: handed to its sink's worker)"},
	{"last_attempt_at", "INTEGER", "ms since the epoch"},
	{"delivered_at", "INTEGER", "ms since the epoch (NULL until delivered)"},
	{"error", "TEXT", "why the last attempt failed"},
};

/* One row per (rule, subject) an alert was raised for: alerts are state. */
static const struct de_column alert_state_cols[] = {
	{"id", "INTEGER", "state id"},
	{"rule_id", "TEXT", "the rule"},
	{"subject", "TEXT", "'i:<instance id>' for a process instance, 'k:<dedupe key>' else"},
	{"pid", "INTEGER", "the process"},
	{"start_time", "INTEGER", "its start, ms since the epoch"},
	{"instance_id", "INTEGER", "processes.instance_id"},
	{"alert_id", "TEXT", "the alert raised (NULL when folded into a window)"},
	{"status", "TEXT", "'open' or 'resolved'"},
	{"opened_at", "INTEGER", "ms since the epoch"},
	{"last_seen", "INTEGER", "when the rule last matched it"},
	{"resolved_at", "INTEGER", "ms since the epoch"},
	{"resolution", "TEXT", "'exited' or 'no longer matches'"},
};

/* Matches that raised nothing: an exception applied, or folded by deduplication. */
static const struct de_column suppressed_cols[] = {
	{"id", "INTEGER", "row id"},
	{"t", "INTEGER", "ms since the epoch"},
	{"rule_id", "TEXT", "the rule"},
	{"kind", "TEXT", "'exception' or 'folded'"},
	{"exception", "TEXT", "the exception's label"},
	{"exception_origin", "TEXT", "where the exception was written (file:line:col)"},
	{"reason", "TEXT", "the exception's reason"},
	{"folded_into", "TEXT", "the window's alert id"},
	{"pid", "INTEGER", "the process"},
	{"start_time", "INTEGER", "its start"},
	{"instance_id", "INTEGER", "processes.instance_id"},
	{"process_name", "TEXT", "its name"},
	{"executable_path", "TEXT", "its executable"},
	{"command_line", "TEXT", "its command line"},
};

/* The live deduplication windows. */
static const struct de_column dedup_cols[] = {
	{"key", "TEXT", "the dedupe key"},
	{"alert_id", "TEXT", "the window's first alert"},
	{"start_ms", "INTEGER", "when the window opened"},
	{"end_ms", "INTEGER", "when it closes"},
	{"folded", "INTEGER", "repeats folded into it"},
	{"last_ms", "INTEGER", "the last repeat"},
};

/* Messages for the fleet's stream waiting to be published (fleet.h), oldest first. */
static const struct de_column spool_cols[] = {
	{"id", "INTEGER", "order of publication"},	 {"kind", "TEXT", "'events' or 'scans'"},
	{"msg_id", "TEXT", "its Nats-Msg-Id"},		 {"payload", "TEXT", "the message (JSON)"},
	{"created_at", "INTEGER", "ms since the epoch"},
};

/* The store's own bookkeeping. */
static const struct de_column state_cols[] = {
	{"key", "TEXT", "'snapshot_time', 'snapshot_scan', 'sample_time' or 'fleet_spool_dropped'"},
	{"value", "INTEGER", "ms since the epoch, a scan id, or a count"},
};

/* The tables rules may not read: the store's and the CLI's only. */
static const struct de_relation store_only[] = {
	{"alerts", "alerts raised by rules", alerts_cols, NCOLS(alerts_cols)},
	{"alert_deliveries", "one row per (alert, sink) delivery", deliveries_cols,
	 NCOLS(deliveries_cols)},
	{"store_state", "key/value bookkeeping of the snapshot", state_cols, NCOLS(state_cols)},
	{"alert_state", "alerts as state: one row per (rule, subject)", alert_state_cols,
	 NCOLS(alert_state_cols)},
	{"alert_suppressed", "matches an exception suppressed or deduplication folded",
	 suppressed_cols, NCOLS(suppressed_cols)},
	{"dedup_windows", "live deduplication windows", dedup_cols, NCOLS(dedup_cols)},
	{"fleet_spool", "messages waiting for the fleet's stream", spool_cols, NCOLS(spool_cols)},
};

const struct de_relation *de_relations(size_t *n)
{
	*n = NCOLS(rule_visible);
	return rule_visible;
}

const struct de_relation *store_schema_private(size_t *n)
{
	*n = NCOLS(store_only);
	return store_only;
}

/* ---- the migrations ------------------------------------------------------- */

static const char *const migrations[] = {
	/* 1: the foundation schema */
	"CREATE TABLE scans ("
	"  id INTEGER PRIMARY KEY,"
	"  started_at INTEGER NOT NULL,"
	"  ended_at INTEGER,"
	"  process_count INTEGER,"
	"  duration_ms INTEGER,"
	"  source TEXT NOT NULL);"
	"CREATE TABLE processes ("
	"  pid INTEGER PRIMARY KEY,"
	"  id TEXT NOT NULL,"
	"  scan_id INTEGER NOT NULL,"
	"  collection_time INTEGER NOT NULL,"
	"  ppid INTEGER,"
	"  name TEXT NOT NULL,"
	"  executable_path TEXT,"
	"  command_line TEXT NOT NULL,"
	"  argv_json TEXT NOT NULL,"
	"  start_time INTEGER,"
	"  cpu_usage REAL,"
	"  memory_usage INTEGER,"
	"  executable_hash TEXT,"
	"  hash_algorithm TEXT,"
	"  user_id TEXT,"
	"  accessible INTEGER NOT NULL,"
	"  file_exists INTEGER NOT NULL,"
	"  exe_deleted INTEGER NOT NULL DEFAULT 0,"
	"  exe_replaced INTEGER NOT NULL DEFAULT 0,"
	"  platform_data TEXT);"
	"CREATE INDEX processes_ppid ON processes(ppid);"
	"CREATE TABLE alerts ("
	"  id TEXT PRIMARY KEY,"
	"  alert_time INTEGER NOT NULL,"
	"  rule_id TEXT NOT NULL,"
	"  title TEXT NOT NULL,"
	"  description TEXT NOT NULL,"
	"  severity TEXT NOT NULL,"
	"  scan_id INTEGER,"
	"  affected_processes TEXT NOT NULL,"
	"  process_count INTEGER NOT NULL,"
	"  alert_data TEXT NOT NULL,"
	"  rule_execution_time_ms INTEGER,"
	"  dedupe_key TEXT NOT NULL);"
	"CREATE INDEX alerts_time ON alerts(alert_time);",

	/* 2: history that grows with churn, samples, scan status, deliveries */
	"ALTER TABLE processes ADD COLUMN instance_id INTEGER;"
	"ALTER TABLE processes ADD COLUMN identity_hash INTEGER;"
	"ALTER TABLE processes ADD COLUMN value_hash INTEGER;"
	"CREATE INDEX processes_name ON processes(name);"
	"CREATE TABLE process_instances ("
	"  id INTEGER PRIMARY KEY,"
	"  pid INTEGER NOT NULL,"
	"  start_time INTEGER,"
	"  ppid INTEGER,"
	"  name TEXT NOT NULL,"
	"  executable_path TEXT,"
	"  command_line TEXT NOT NULL,"
	"  argv_json TEXT NOT NULL,"
	"  executable_hash TEXT,"
	"  hash_algorithm TEXT,"
	"  user_id TEXT,"
	"  accessible INTEGER NOT NULL,"
	"  file_exists INTEGER NOT NULL,"
	"  exe_deleted INTEGER NOT NULL DEFAULT 0,"
	"  exe_replaced INTEGER NOT NULL DEFAULT 0,"
	"  platform_data TEXT,"
	"  cpu_usage REAL," /* first observed */
	"  memory_usage INTEGER,"
	"  first_seen INTEGER NOT NULL,"
	"  last_seen INTEGER NOT NULL," /* maintained at exit; live: the snapshot time */
	"  exited_at INTEGER,"		/* when the store saw it gone */
	"  first_scan_id INTEGER,"
	"  last_scan_id INTEGER,"
	"  exit_scan_id INTEGER);"
	"CREATE INDEX process_instances_pid ON process_instances(pid, start_time);"
	"CREATE INDEX process_instances_name ON process_instances(name);"
	"CREATE INDEX process_instances_exited ON process_instances(exited_at)"
	"  WHERE exited_at IS NOT NULL;"
	"CREATE TABLE process_changes ("
	"  id INTEGER PRIMARY KEY,"
	"  instance_id INTEGER NOT NULL,"
	"  changed_at INTEGER NOT NULL,"
	"  scan_id INTEGER,"
	"  ppid INTEGER,"
	"  name TEXT NOT NULL,"
	"  executable_path TEXT,"
	"  command_line TEXT NOT NULL,"
	"  argv_json TEXT NOT NULL,"
	"  executable_hash TEXT,"
	"  hash_algorithm TEXT,"
	"  user_id TEXT,"
	"  accessible INTEGER NOT NULL,"
	"  file_exists INTEGER NOT NULL,"
	"  exe_deleted INTEGER NOT NULL,"
	"  exe_replaced INTEGER NOT NULL,"
	"  platform_data TEXT);"
	"CREATE INDEX process_changes_instance ON process_changes(instance_id);"
	"CREATE TABLE process_samples ("
	"  id INTEGER PRIMARY KEY,"
	"  instance_id INTEGER NOT NULL,"
	"  t INTEGER NOT NULL,"
	"  scan_id INTEGER,"
	"  cpu_usage REAL,"
	"  memory_usage INTEGER);"
	"CREATE INDEX process_samples_instance ON process_samples(instance_id);"
	"ALTER TABLE scans ADD COLUMN status TEXT NOT NULL DEFAULT 'ok';"
	"ALTER TABLE scans ADD COLUMN error TEXT;"
	"ALTER TABLE scans ADD COLUMN new_count INTEGER;"
	"ALTER TABLE scans ADD COLUMN changed_count INTEGER;"
	"ALTER TABLE scans ADD COLUMN exited_count INTEGER;"
	"UPDATE scans SET status = 'failed', error = 'unfinished before schema 2'"
	"  WHERE ended_at IS NULL;"
	"CREATE TABLE alert_deliveries ("
	"  id INTEGER PRIMARY KEY,"
	"  alert_id TEXT NOT NULL,"
	"  sink TEXT NOT NULL,"
	"  status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  last_attempt_at INTEGER,"
	"  delivered_at INTEGER,"
	"  error TEXT,"
	"  UNIQUE (alert_id, sink));"
	"CREATE TABLE store_state (key TEXT PRIMARY KEY, value INTEGER) WITHOUT ROWID;"
	/* the v1 snapshot becomes the first instances */
	"INSERT INTO process_instances(pid, start_time, ppid, name, executable_path,"
	"  command_line, argv_json, executable_hash, hash_algorithm, user_id, accessible,"
	"  file_exists, exe_deleted, exe_replaced, platform_data, cpu_usage, memory_usage,"
	"  first_seen, last_seen, first_scan_id, last_scan_id)"
	"  SELECT pid, start_time, ppid, name, executable_path, command_line, argv_json,"
	"  executable_hash, hash_algorithm, user_id, accessible, file_exists, exe_deleted,"
	"  exe_replaced, platform_data, cpu_usage, memory_usage, collection_time,"
	"  collection_time, scan_id, scan_id FROM processes ORDER BY pid;"
	"UPDATE processes SET instance_id ="
	"  (SELECT i.id FROM process_instances i WHERE i.pid = processes.pid);"
	"INSERT INTO store_state(key, value)"
	"  SELECT 'snapshot_time', max(collection_time) FROM processes HAVING count(*) > 0;"
	"INSERT INTO store_state(key, value)"
	"  SELECT 'snapshot_scan', max(scan_id) FROM processes HAVING count(*) > 0;",

	/* 3: alerts cut short (a rule stopped by its time or memory limit) */
	"ALTER TABLE alerts ADD COLUMN incomplete INTEGER NOT NULL DEFAULT 0;",

	/*
	 * 4: a live instance is its snapshot row alone; its process_instances
	 * row is written when it leaves the snapshot (one row per new process,
	 * not two), holding its last values.  processes.ppid loses its index:
	 * parent/child joins go child to parent through the pid (the rowid),
	 * and the builtin rules measured no slower without it, while every new
	 * process paid for its entry.
	 */
	"ALTER TABLE processes ADD COLUMN first_seen INTEGER;"
	"ALTER TABLE processes ADD COLUMN first_scan_id INTEGER;"
	"UPDATE processes SET (first_seen, first_scan_id) = (SELECT i.first_seen,"
	"  i.first_scan_id FROM process_instances i WHERE i.id = processes.instance_id);"
	"UPDATE processes SET first_seen = collection_time WHERE first_seen IS NULL;"
	"UPDATE process_instances SET (cpu_usage, memory_usage) = (SELECT sm.cpu_usage,"
	"  sm.memory_usage FROM process_samples sm WHERE sm.instance_id = process_instances.id"
	"  ORDER BY sm.id DESC LIMIT 1) WHERE exited_at IS NOT NULL AND EXISTS (SELECT 1"
	"  FROM process_samples sm WHERE sm.instance_id = process_instances.id);"
	"DELETE FROM process_instances WHERE exited_at IS NULL"
	"  AND id IN (SELECT instance_id FROM processes);"
	"DROP INDEX processes_ppid;",

	/* 5: alerting (outbox.h): alert state per (rule, subject), suppressed and
	 * folded matches, deduplication windows, the outbox; a failed delivery
	 * is now 'dead' (the dead-letter state) */
	"ALTER TABLE alerts ADD COLUMN kind TEXT;"
	"ALTER TABLE alerts ADD COLUMN context TEXT;"
	"CREATE TABLE alert_deliveries_v5 ("
	"  id INTEGER PRIMARY KEY,"
	"  alert_id TEXT NOT NULL,"
	"  sink TEXT NOT NULL,"
	"  status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  next_attempt_at INTEGER,"
	"  last_attempt_at INTEGER,"
	"  delivered_at INTEGER,"
	"  error TEXT,"
	"  UNIQUE (alert_id, sink));"
	"INSERT INTO alert_deliveries_v5(id, alert_id, sink, status, attempts, last_attempt_at,"
	"  delivered_at, error) SELECT id, alert_id, sink, CASE status WHEN 'failed' THEN 'dead'"
	"  ELSE status END, attempts, last_attempt_at, delivered_at, error FROM alert_deliveries;"
	"DROP TABLE alert_deliveries;"
	"ALTER TABLE alert_deliveries_v5 RENAME TO alert_deliveries;"
	"UPDATE alert_deliveries SET next_attempt_at = coalesce(last_attempt_at, 0)"
	"  WHERE status = 'pending';"
	"CREATE INDEX alert_deliveries_due ON alert_deliveries(sink, next_attempt_at)"
	"  WHERE status = 'pending';"
	"CREATE INDEX alert_deliveries_dead ON alert_deliveries(last_attempt_at)"
	"  WHERE status = 'dead';"
	"CREATE TABLE alert_state ("
	"  id INTEGER PRIMARY KEY,"
	"  rule_id TEXT NOT NULL,"
	"  subject TEXT NOT NULL,"
	"  pid INTEGER,"
	"  start_time INTEGER,"
	"  instance_id INTEGER,"
	"  alert_id TEXT,"
	"  status TEXT NOT NULL CHECK (status IN ('open', 'resolved')),"
	"  opened_at INTEGER NOT NULL,"
	"  last_seen INTEGER NOT NULL,"
	"  resolved_at INTEGER,"
	"  resolution TEXT);"
	"CREATE UNIQUE INDEX alert_state_open ON alert_state(rule_id, subject)"
	"  WHERE status = 'open';"
	"CREATE INDEX alert_state_alert ON alert_state(alert_id);"
	"CREATE TABLE alert_suppressed ("
	"  id INTEGER PRIMARY KEY,"
	"  t INTEGER NOT NULL,"
	"  rule_id TEXT NOT NULL,"
	"  kind TEXT NOT NULL CHECK (kind IN ('exception', 'folded')),"
	"  exception TEXT,"
	"  exception_origin TEXT,"
	"  reason TEXT,"
	"  folded_into TEXT,"
	"  pid INTEGER,"
	"  start_time INTEGER,"
	"  instance_id INTEGER,"
	"  process_name TEXT,"
	"  executable_path TEXT,"
	"  command_line TEXT);"
	"CREATE INDEX alert_suppressed_t ON alert_suppressed(t);"
	"CREATE TABLE dedup_windows ("
	"  key TEXT PRIMARY KEY,"
	"  alert_id TEXT,"
	"  start_ms INTEGER NOT NULL,"
	"  end_ms INTEGER NOT NULL,"
	"  folded INTEGER NOT NULL DEFAULT 0,"
	"  last_ms INTEGER) WITHOUT ROWID;",

	/* 6: full identity (names resolved by the agent, the working directory)
	 * and TCP connections per process instance; a connection is one row
	 * per (instance, endpoints), reported again or found again by a scan
	 * it only moves last_seen */
	"ALTER TABLE processes ADD COLUMN user_name TEXT;"
	"ALTER TABLE processes ADD COLUMN group_name TEXT;"
	"ALTER TABLE processes ADD COLUMN cwd TEXT;"
	"ALTER TABLE process_instances ADD COLUMN user_name TEXT;"
	"ALTER TABLE process_instances ADD COLUMN group_name TEXT;"
	"ALTER TABLE process_instances ADD COLUMN cwd TEXT;"
	"ALTER TABLE process_changes ADD COLUMN user_name TEXT;"
	"ALTER TABLE process_changes ADD COLUMN group_name TEXT;"
	"ALTER TABLE process_changes ADD COLUMN cwd TEXT;"
	"CREATE TABLE network_connections ("
	"  id INTEGER PRIMARY KEY,"
	"  pid INTEGER NOT NULL,"
	"  start_time INTEGER NOT NULL DEFAULT 0,"
	"  kind TEXT NOT NULL CHECK (kind IN ('connect', 'connect_failed', 'listen', 'accept')),"
	"  family INTEGER NOT NULL CHECK (family IN (4, 6)),"
	"  local_address TEXT NOT NULL,"
	"  local_port INTEGER NOT NULL,"
	"  remote_address TEXT NOT NULL,"
	"  remote_port INTEGER NOT NULL,"
	"  inode INTEGER,"
	"  first_seen INTEGER NOT NULL,"
	"  last_seen INTEGER NOT NULL,"
	"  closed_at INTEGER,"
	"  source TEXT NOT NULL CHECK (source IN ('ebpf', 'scan')));"
	"CREATE UNIQUE INDEX network_connections_key ON network_connections(pid, start_time,"
	"  family, local_address, local_port, remote_address, remote_port);"
	"CREATE INDEX network_connections_seen ON network_connections(last_seen);",

	/*
	 * 7: the outbox's status check written as comparisons: SQLite checks
	 * an IN list of three or more values through a temporary b-tree built
	 * anew by every INSERT and UPDATE of a delivery, which cost more than
	 * the row itself.  Resolved states are indexed by when they were
	 * resolved, for retention.
	 */
	"CREATE TABLE alert_deliveries_v7 ("
	"  id INTEGER PRIMARY KEY,"
	"  alert_id TEXT NOT NULL,"
	"  sink TEXT NOT NULL,"
	"  status TEXT NOT NULL"
	"    CHECK (status = 'pending' OR status = 'delivered' OR status = 'dead'),"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  next_attempt_at INTEGER,"
	"  last_attempt_at INTEGER,"
	"  delivered_at INTEGER,"
	"  error TEXT,"
	"  UNIQUE (alert_id, sink));"
	"INSERT INTO alert_deliveries_v7(id, alert_id, sink, status, attempts, next_attempt_at,"
	"  last_attempt_at, delivered_at, error) SELECT id, alert_id, sink, status, attempts,"
	"  next_attempt_at, last_attempt_at, delivered_at, error FROM alert_deliveries;"
	"DROP TABLE alert_deliveries;"
	"ALTER TABLE alert_deliveries_v7 RENAME TO alert_deliveries;"
	"CREATE INDEX alert_deliveries_due ON alert_deliveries(sink, next_attempt_at)"
	"  WHERE status = 'pending';"
	"CREATE INDEX alert_deliveries_dead ON alert_deliveries(last_attempt_at)"
	"  WHERE status = 'dead';"
	"CREATE INDEX alert_state_resolved ON alert_state(resolved_at)"
	"  WHERE status = 'resolved';",

	/* 8: the fleet's spool (fleet.h): events and scan summaries waiting
	 * for the stream, published in id order */
	"CREATE TABLE fleet_spool ("
	"  id INTEGER PRIMARY KEY,"
	"  kind TEXT NOT NULL CHECK (kind IN ('events', 'scans')),"
	"  msg_id TEXT NOT NULL,"
	"  payload TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL);",

	/*
	 * 9: a delivery enters the due index only once it waits in the store
	 * (a retry, or what a worker could not take at once): a new row is
	 * written with next_attempt_at NULL and the agent hands it to its
	 * sink's worker straight away, so the insert and the delivered UPDATE
	 * no longer add and remove an index entry each.  Rows a run left with
	 * NULL (killed before their outcome was recorded) are made due when
	 * the next run starts (de_outbox_recover).  Every pending row of an
	 * older file has its next_attempt_at and stays in the index.
	 */
	"DROP INDEX alert_deliveries_due;"
	"CREATE INDEX alert_deliveries_due ON alert_deliveries(sink, next_attempt_at)"
	"  WHERE status = 'pending' AND next_attempt_at IS NOT NULL;",

	/*
	 * 10: raising an alert no longer writes index entries for the state
	 * it opens (each cost about 3,000 to 3,600 instructions, a twentieth of
	 * an alert through the manager; SQLite rebalances an index's 16 KiB
	 * pages about seven times per page filled by appends).  A state enters
	 * the index by alert id once it is resolved (the CLI's list finds the
	 * open ones' alerts with one scan of the open states); the unique index
	 * of the open states by (rule_id, subject) goes: the outbox keeps every
	 * open state's key and id in memory, loaded with one scan when first
	 * needed, and looks each key up there before it opens a state
	 * (store_outbox.c, open_cache), a rule's open states included.
	 */
	"DROP INDEX alert_state_alert;"
	"CREATE INDEX alert_state_alert ON alert_state(alert_id) WHERE status = 'resolved';"
	"DROP INDEX alert_state_open;",

	/*
	 * 11: how an instance ended, when an exit event said so (the kernel's
	 * wait status, decoded): exit_code when it exited, exit_signal when a
	 * signal killed it; both NULL when a scan found it gone.
	 */
	"ALTER TABLE process_instances ADD COLUMN exit_code INTEGER;"
	"ALTER TABLE process_instances ADD COLUMN exit_signal INTEGER;",
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))
_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == DE_STORE_SCHEMA_VERSION,
	       "store.h's DE_STORE_SCHEMA_VERSION is the number of migrations");

int store_read_version(sqlite3 *db, int *out)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int(st, 0);
	rc = sqlite3_finalize(st);
	return rc == SQLITE_OK ? 0 : -1;
}

int store_migrate(struct de_store *s, struct de_error *err)
{
	sqlite3_stmt *st;
	int version = 0, rc;

	if (store_read_version(s->db, &version) < 0)
		return store_db_err(s, err,
				    "not a daemoneye event store (cannot read its version)");
	if (version > NMIGRATIONS)
		return de_error_set(
			err, DE_ERR_DATABASE, EPROTO,
			"%s: schema version %d is newer than this daemoneye understands "
			"(%d); upgrade daemoneye or point database.path elsewhere",
			s->path, version, NMIGRATIONS);
	if (version == NMIGRATIONS)
		return 0;
	if (version == 0) {
		/* a version-0 file must be empty: anything else is not ours */
		if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM sqlite_schema", -1, &st,
				       NULL) != SQLITE_OK)
			return store_db_err(s, err, "not a SQLite database");
		if (sqlite3_step(st) != SQLITE_ROW) {
			rc = store_db_err(s, err, "cannot read the schema");
			sqlite3_finalize(st);
			return rc;
		}
		int tables = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
		if (tables != 0)
			return de_error_set(err, DE_ERR_DATABASE, EPROTO,
					    "%s: is a SQLite database but not a daemoneye event "
					    "store; refusing to modify it",
					    s->path);
		/*
		 * A new file: 16 KiB pages (a first scan then has a quarter of the
		 * pages to allocate, fill, balance and log that 4 KiB would give);
		 * let retention hand freed pages back to the file system.
		 */
		if (sqlite3_exec(s->db, "PRAGMA page_size=16384", NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(s->db, "PRAGMA auto_vacuum=INCREMENTAL", NULL, NULL, NULL) !=
			    SQLITE_OK)
			return store_db_err(s, err, "cannot set the page size or auto_vacuum");
	}
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return store_db_err(s, err, "cannot start migration");
	for (int v = version; v < NMIGRATIONS; v++) {
		char pragma[64];
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%d", v + 1);
		if (sqlite3_exec(s->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(s->db, pragma, NULL, NULL, NULL) != SQLITE_OK) {
			char what[64];
			snprintf(what, sizeof(what), "migration to schema version %d failed",
				 v + 1);
			rc = store_db_err(s, err, what);
			if (!sqlite3_get_autocommit(s->db))
				sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
			return rc;
		}
	}
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		rc = store_db_err(s, err, "cannot commit migration");
		if (!sqlite3_get_autocommit(s->db))
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	return 0;
}
