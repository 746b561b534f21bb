#!/bin/bash
# integration_service.sh BINDIR — the service an operator runs for months
# (issue 13, docs/process-model.md), end to end with the real programs:
#
#   1. kill -9 of procmond: a new one comes back within the backoff with its
#      capabilities and events, and an attack started after the kill is
#      detected; the restart is counted in health and metrics;
#   2. procmond stopped (SIGSTOP): killed and restarted after
#      app.scan_timeout_ms;
#   3. SIGTERM while procmond is stopped: the whole tree exits within 2 s;
#   4. SIGHUP with a broken configuration: still running on the old one
#      (and the audit ledger says so, then names the good one by its hash),
#      saying why in the log, health and metrics; a good one is applied, and
#      new collection settings restart procmond;
#   5. the wall clock stepped back an hour (an LD_PRELOAD shim, the host's
#      clock untouched): the next scans still come on time;
#   6. kill -9 of the worker in the middle of writing, 50 times, and of the
#      whole service 5 times: each start recovers, the stores pass
#      integrity_check, no committed alert is lost;
#   7. health as a user who may read the state directory, its exit codes
#      and colour; a stopped service is critical;
#   8. metrics: promtool on the textfile and on the loopback listener; a
#      listener address that is not loopback is refused;
#   9. a rule over its time budget is disabled with an alert, shown in
#      health, and back after `rules enable`;
#  10. (root) an exec whose batch the store refused (disk full) is stored
#      and evaluated once the store has room again;
#  11. sd_notify, read from a socket of our own: READY, STATUS, WATCHDOG,
#      RELOADING, STOPPING, from the parent alone;
#  12. audit checkpoints signed by the parent, whose key the worker cannot
#      read, verify with the public key; a key file looser than 0600 is
#      refused;
#  13. the free-disk watermark (reloaded above the free space there is):
#      history is pruned and then no longer written, the snapshot and
#      alerts still are; an alert, health (critical) and the metrics say
#      so; back below it, history is written again.
# As root the agent's worker runs as nobody and procmond as root; the
# restart test runs again with the whole tree as nobody.  Every process
# started here is reaped by its pid.
set -u
. "$(dirname "$0")/lib.sh"
bin=$1
tmp=$(mktemp -d /tmp/de-it-service-XXXXXX)
chmod 755 "$tmp" # the root agent's worker (nobody) must reach its state
agents=()
kids=()
mounted=
cleanup() {
	for p in "${agents[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${agents[@]}"; do wait "$p" 2>/dev/null; done
	for p in "${kids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	for p in "${kids[@]}"; do wait "$p" 2>/dev/null; done
	[ -n "$mounted" ] && umount "$mounted" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
hermetic "$tmp/home"
root=false
[ "$(id -u)" = 0 ] && root=true
# the sanitizer build is slower to start and to stop (LeakSanitizer at exit)
slow=false
"$bin/procmond" --version | grep -q "no seccomp" && slow=true

mark="de-it-service-$$"
marker_rule "$tmp/mark.yaml" it-service-marker "$mark"

# ---- helpers ----------------------------------------------------------------

procmond_of() { pgrep -P "$1" -x procmond | head -n1; }
worker_of() { pgrep -P "$1" -f '^daemoneye-worker' | head -n1; }
status_of() { grep "^$2:" "/proc/$1/status" 2>/dev/null | awk '{print $2}'; }
# not_boosted NAME PID: the log says the boost was refused, and PID runs at nice 0
not_boosted() { logged "$1" "app.priority_boost 4: the agent cannot raise its priority" && [ "$(nice_of "$2")" = 0 ]; }
# sched_of nice|slice PID: that value of every thread of PID (sched_getattr: the nice value,
# the EEVDF slice in us), sorted, unique, one a line; with no PID, the slice this kernel
# reads back after a process of its own asks for 100 us (0: no per-thread slices, before
# Linux 6.12)
sched_of() {
	python3 -c '
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
def attr(tid):
    b = ctypes.create_string_buffer(48)
    if libc.syscall(315, tid, b, 48, 0):  # sched_getattr
        return None
    f = struct.unpack("IIQiIQQQ", b.raw)
    return {"nice": f[3], "slice": f[5] // 1000}
if len(sys.argv) < 3:
    a = struct.pack("IIQiIQQQ", 48, 0, 0, os.getpriority(os.PRIO_PROCESS, 0), 0, 100000, 0, 0)
    libc.syscall(314, 0, ctypes.create_string_buffer(a), 0)  # sched_setattr
    print(attr(0)["slice"])
else:
    p = sys.argv[2]
    print("\n".join(map(str, sorted({(attr(int(t)) or {}).get(sys.argv[1], -1)
                                      for t in os.listdir(f"/proc/{p}/task")}))))' "$@" 2>/dev/null
}
nice_of() { sched_of nice "$1"; }
slice_of() { sched_of slice "$1"; }
slices=$(sched_of slice)
# sliced WHO PARENT WORKER PROCMOND: app.scheduler_slice_us (100) on every thread of the three
sliced() {
	if [ "$slices" != 100 ]; then
		echo "ok - # SKIP $1: app.scheduler_slice_us: this kernel has no per-thread slices (Linux 6.12 and later; a slice set reads back as $slices)"
		return
	fi
	check "$1: app.scheduler_slice_us: every thread of the parent, the worker and procmond at a 100 us slice ($(slice_of "$2") / $(slice_of "$3") / $(slice_of "$4"))" \
		test "$(slice_of "$2")/$(slice_of "$3")/$(slice_of "$4")" = 100/100/100
}
# until TRIES CMD...: CMD succeeds within TRIES tenths of a second
until_() {
	local tries=$1
	shift
	for _ in $(seq "$tries"); do "$@" && return 0; sleep 0.1; done
	return 1
}
scans() { grep -c "info: scan [0-9]*: [0-9]* processes" "$tmp/$1.err"; }
more_scans() { [ "$(scans "$1")" -ge "$2" ]; }
logged() { grep -q -- "$2" "$tmp/$1.err"; }
not_logged() { ! logged "$@"; }
# start NAME [ARGS...]: an agent in the background; state $tmp/NAME,
# stdout NAME.out, stderr NAME.err; waits for its first scan; sets $agent
start() {
	local name=$1
	shift
	"${run_as[@]}" "$bin/daemoneye-agent" --rules "$tmp/mark.yaml" \
		--set app.state_dir="$tmp/$name" --set 'detection.rules_dirs=[]' \
		--set alerting.stdout.format=json --set watchdog.restart_delay_ms=300 "$@" \
		>"$tmp/$name.out" 2>"$tmp/$name.err" &
	agent=$!
	agents+=("$agent")
	if until_ 600 more_scans "$name" 1; then return 0; fi
	echo "# $name: no first scan:"
	sed 's/^/#   /' "$tmp/$name.err" | tail -20
	return 1
}
stop() {
	kill -TERM "$1" 2>/dev/null
	wait "$1"
}
# alerted NAME RULE PID: NAME.out has an alert of RULE naming PID
alerted() {
	python3 - "$tmp/$1.out" "$2" "$3" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    if line.startswith("{"):
        a = json.loads(line)
        if a["rule_id"] == sys.argv[2] and (sys.argv[3] == "-" or int(sys.argv[3]) in a["affected_processes"]):
            sys.exit(0)
sys.exit(1)
PY
}
# metric NAME SERIES: the value of that exact series in NAME's textfile
metric() { awk -v m="$2" '$1 == m { print $2; exit }' "$tmp/$1/daemoneye.prom" 2>/dev/null; }
metric_is() { [ "$(metric "$1" "$2")" = "$3" ]; }
health_json() { "$bin/daemoneye-cli" --set app.state_dir="$tmp/$1" health --format json; }
# component NAME COMPONENT FIELD: a field of one component of the health report
component() {
	health_json "$1" 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
for c in d["components"]:
    if c["name"] == sys.argv[1]:
        v = c
        for k in sys.argv[2].split("."):
            v = v[k]
        print(v)
        break' "$2" "$3"
}
component_is() { [ "$(component "$1" "$2" "$3")" = "$4" ]; }
# slow_listed NAME RULE: health lists RULE as disabled by the watchdog (on a slow machine
# another rule may be listed beside it: with a 1 ms budget the marker rule can be too)
slow_listed() {
	health_json "$1" 2>/dev/null | python3 -c '
import json, sys
try:
    c = [c for c in json.load(sys.stdin)["components"] if c["name"] == "rules"][0]
    ids = [r["id"] for r in c["details"]["disabled_by_watchdog"]]
except Exception:
    sys.exit(2)
sys.exit(0 if sys.argv[1] in ids else 1)' "$2"
}
# slow_gone NAME RULE: a health report that does not list it (no report is not enough)
slow_gone() {
	slow_listed "$@"
	[ $? = 1 ]
}
source_known() { case "$(component "$1" procmond details.event_source)" in ebpf | netlink) return 0 ;; esac; return 1; }
new_procmond() { local p; p=$(procmond_of "$1"); [ -n "$p" ] && [ "$p" != "$2" ]; }
new_worker() { local p; p=$(worker_of "$1"); [ -n "$p" ] && [ "$p" != "$2" ]; }
gone() { ! kill -0 "$1" 2>/dev/null; }
# (a new worker recovering the WAL holds it for a moment: busy is not corrupt)
integrity() { [ "$(sqlite3 -readonly -cmd ".timeout 10000" "$1" "PRAGMA integrity_check")" = ok ]; }

run_as=()

# ---- 1. kill -9 procmond --------------------------------------------------------

restart_test() {
	local who=$1 a
	start "pm$who" --set app.scan_interval_ms=2000 || return
	a=$agent
	local pm1 pm2 attack
	pm1=$(procmond_of "$a")
	check "$who: procmond runs under the parent (pid ${pm1:-none})" test -n "$pm1"
	kill -KILL "$pm1"
	# an attack right after the kill, while no procmond watches
	sh -c 'sleep 60' "$mark-attack" &
	attack=$!
	kids+=("$attack")
	check "$who: a new procmond comes back after kill -9" until_ 300 new_procmond "$a" "$pm1"
	pm2=$(procmond_of "$a")
	check "$who: the parent logs the restart with its reason" logged "pm$who" "procmond pid $pm1 was killed by signal 9 (crash): starting it again in 300 ms"
	check "$who: the worker takes the new channel" until_ 100 logged "pm$who" "procmond pid $pm2 started"
	if [ "$who" = root ]; then
		# app.priority_boost (4): the parent before it started anything,
		# inherited by its children and their threads, a restarted one too
		local w
		w=$(worker_of "$a")
		check "$who: app.priority_boost: every thread of the parent, the worker and procmond at nice -4 ($(nice_of "$a" | tr '\n' ' ')/ $(nice_of "$w" | tr '\n' ' ')/ $(nice_of "$pm2" | tr '\n' ' '))" \
			test "$(nice_of "$a")$(nice_of "$w")$(nice_of "$pm2")" = -4-4-4
		check "$who: the new procmond has its capabilities again" test "$(status_of "$pm2" CapEff)" = 0000000000080004
		check "$who: and its events" logged "pm$who" "procmond pid $pm2 started (capabilities: dac_read_search, sys_ptrace; events: "
		check "$who: health names the event source (ebpf or netlink)" until_ 150 source_known "pm$who"
	else
		check "$who: the new procmond runs as $(id -un "$(status_of "$pm2" Uid)" 2>/dev/null), no capability" test "$(status_of "$pm2" CapEff)" = 0000000000000000
		check "$who: app.priority_boost without CAP_SYS_NICE: said, and nice stays 0 ($(nice_of "$a" | tr '\n' ' '))" \
			not_boosted "pm$who" "$a"
	fi
	# app.scheduler_slice_us (100): set by the parent, inherited as the nice value is,
	# with no privilege needed
	sliced "$who" "$a" "$(worker_of "$a")" "$pm2"
	check "$who: the attack started after the kill is detected (pid $attack)" until_ 300 alerted "pm$who" it-service-marker "$attack"
	check "$who: health counts the restart" until_ 150 component_is "pm$who" procmond details.restarts.crash 1
	check "$who: health says procmond restarted (warning)" component_is "pm$who" procmond status warning
	check "$who: so do the metrics" until_ 150 metric_is "pm$who" 'daemoneye_restarts_total{component="procmond",reason="crash"}' 1
	kill -KILL "$attack"
	wait "$attack" 2>/dev/null
	stop "$a"
	check "$who: the service stops with 0 after it all" test $? = 0
}
restart_test "$(id -un)"
if $root; then
	mkdir -p "$tmp/nobody" "$tmp/pmnobody"
	chown nobody "$tmp/nobody" "$tmp/pmnobody"
	run_as=(setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$tmp/nobody")
	restart_test nobody
	run_as=()
fi

# ---- 2 and 3. a stopped procmond ----------------------------------------------------

# 5 s: long enough that a scan slowed by other work on the host is not a stall
start stall --set app.scan_interval_ms=1000 --set app.scan_timeout_ms=5000 || exit 1
a=$agent
pm1=$(procmond_of "$a")
kill -STOP "$pm1"
check "a stopped procmond is replaced after the scan timeout" until_ 300 new_procmond "$a" "$pm1"
check "  the worker says why" logged stall "procmond pid $pm1 did not finish the scan within app.scan_timeout_ms (5000 ms)"
check "  the stopped one is gone (killed and reaped)" until_ 50 gone "$pm1"
check "  counted as scan_timeout" until_ 150 metric_is stall 'daemoneye_restarts_total{component="procmond",reason="scan_timeout"}' 1
n=$(scans stall)
check "  and scans go on" until_ 300 more_scans stall $((n + 2))
# SIGTERM while procmond is stopped: all three gone within 2 s
pm2=$(procmond_of "$a")
w=$(worker_of "$a")
kill -STOP "$pm2"
sleep 1.5 # a scan is waiting on it now (or about to)
t0=$EPOCHREALTIME
kill -TERM "$a"
wait "$a"
rc=$?
ms=$(python3 -c "print(int(($EPOCHREALTIME - $t0) * 1000))")
limit=2000
$slow && limit=5000 # LeakSanitizer's exit scans; the deadlines are the same
check "SIGTERM with procmond stopped: exit 0 in ${ms} ms (<= $limit)" test "$rc" = 0 -a "$ms" -le "$limit"
check "  procmond and the worker are gone too" bash -c "! kill -0 $pm2 2>/dev/null && ! kill -0 $w 2>/dev/null"
# (under ASan the exit's leak scan may outlast the parent's grace)
$slow || check "  the worker stopped by itself (the parent did not kill it)" \
	not_logged stall "worker pid .* did not stop within its grace time"

# ---- 4. SIGHUP -----------------------------------------------------------------------

cat >"$tmp/c.yaml" <<YAML
app:
  scan_interval_ms: 1000
YAML
start hup -c "$tmp/c.yaml" || exit 1
a=$agent
w=$(worker_of "$a")
pm=$(procmond_of "$a")
printf 'app:\n  scan_interval_ms: [\n' >"$tmp/c.yaml"
kill -HUP "$a"
check "SIGHUP with a broken file: refused, and the log says why" until_ 100 logged hup "reload refused, still running on the previous configuration: $tmp/c.yaml:3:"
n=$(scans hup)
check "  still running: the same worker" test "$(worker_of "$a")" = "$w"
check "  still scanning on the old configuration" until_ 100 more_scans hup $((n + 2))
check "  health says so (config: warning, naming the file)" until_ 100 component_is hup config status warning
reason_named() { component hup config details.reload_error | grep -q "c.yaml:3:"; }
check "  with the reason" reason_named
check "  and the metrics" until_ 150 metric_is hup daemoneye_config_last_reload_successful 0
cat >"$tmp/c.yaml" <<YAML
app:
  scan_interval_ms: 1000
collection:
  hash_executables: false
YAML
kill -HUP "$a"
check "a good file is applied" until_ 100 logged hup "configuration reloaded"
check "  health: config ok again" until_ 100 component_is hup config status ok
check "  new collection settings start a new procmond (reload)" until_ 100 new_procmond "$a" "$pm"
check "  counted as reload" until_ 150 metric_is hup 'daemoneye_restarts_total{component="procmond",reason="reload"}' 1
check "  the same worker all along" test "$(worker_of "$a")" = "$w"
stop "$a"
check "  the audit ledger: the refused reload, then the new configuration's hash and rule set" \
	python3 - <("$bin/daemoneye-cli" --set app.state_dir="$tmp/hup" audit log --format ndjson) <<'PY'
import json, sys
es = [json.loads(l) for l in open(sys.argv[1])]
start = [e["payload"] for e in es if e["action"] == "start"][0]
rel = [(i, e["payload"]) for i, e in enumerate(es) if e["action"] == "config.reload"]
assert len(rel) == 2, rel
(i1, bad), (i2, good) = rel
assert not bad["ok"] and "c.yaml:3:" in bad["error"], bad
assert bad["config_blake3"] == start["config_blake3"], (bad, start)  # the old one kept
assert good["ok"] and good["config_blake3"] != start["config_blake3"], (good, start)
loads = [i for i, e in enumerate(es) if e["action"] == "rules.load" and e["payload"]["reason"] == "reload"]
assert loads and loads[0] > i2 and not [i for i in loads if i1 < i < i2], (loads, i1, i2)
PY

# ---- 5. the wall clock stepped back an hour --------------------------------------------

echo 0 >"$tmp/shift"
shim=(env DE_CLOCKSHIFT_FILE="$tmp/shift" LD_PRELOAD="$bin/libclockshift.so" ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0")
run_as=("${shim[@]}")
start clock --set app.scan_interval_ms=1000 || exit 1
run_as=()
a=$agent
until_ 100 more_scans clock 2
echo -3600 >"$tmp/shift"
n=$(scans clock)
# a wall-clock schedule would wait an hour; the monotonic one a second
check "clock stepped back 1 h: three more scans come on time" until_ 150 more_scans clock $((n + 3))
last=$(sqlite3 -readonly "$tmp/clock/events.sqlite" "SELECT started_at FROM scans WHERE source = 'poll' ORDER BY id DESC LIMIT 1")
now=$(date +%s%3N)
check "  (the agent's wall clock really is an hour behind: $(((now - last) / 1000)) s)" test $((now - last)) -ge 3000000
stop "$a"

# ---- 6. kill -9 in the middle of writing ---------------------------------------------

start crash --set app.scan_interval_ms=1000 --set watchdog.restart_delay_ms=50 \
	--set watchdog.restart_delay_max_ms=200 || exit 1
a=$agent
# churn: a short process with the marker every 50 ms, each an exec event,
# a store write and an alert
(for i in $(seq 100000); do sh -c ':' "$mark-churn-$i"; sleep 0.05; done) &
churn=$!
kids+=("$churn")
db=$tmp/crash/events.sqlite
: >"$tmp/alerts.seen"
lost=0
bad=0
slowstart=0
for i in $(seq 50); do
	w=$(worker_of "$a")
	# commit happens all the time: what is in the store now must survive
	sqlite3 -readonly "$db" "SELECT id FROM alerts" 2>/dev/null | sort -u >"$tmp/alerts.now"
	sort -u "$tmp/alerts.seen" "$tmp/alerts.now" >"$tmp/alerts.all"
	mv "$tmp/alerts.all" "$tmp/alerts.seen"
	sleep "0.$((RANDOM % 5))$((RANDOM % 10))"
	kill -KILL "$w" 2>/dev/null
	until_ 300 new_worker "$a" "$w" || slowstart=$((slowstart + 1))
	integrity "$db" || bad=$((bad + 1))
done
check "50 kills of the worker: each time a new one starts ($slowstart did not)" test "$slowstart" = 0
check "  the store passed integrity_check each time ($bad failed)" test "$bad" = 0
n=$(scans crash)
check "  and the last one works: it scans" until_ 300 more_scans crash $((n + 1))
{ kill -KILL "$churn" && wait "$churn"; } 2>/dev/null
sqlite3 -readonly "$db" "SELECT id FROM alerts" | sort -u >"$tmp/alerts.now"
lost=$(comm -23 "$tmp/alerts.seen" "$tmp/alerts.now" | wc -l)
check "  no committed alert was lost ($(wc -l <"$tmp/alerts.seen") seen, $lost lost)" test "$lost" = 0 -a -s "$tmp/alerts.seen"
check "  50 restarts counted (crash)" until_ 150 metric_is crash 'daemoneye_restarts_total{component="worker",reason="crash"}' 50
stop "$a"
# the whole service killed (the parent first: its children follow it)
bad=0
for i in $(seq 5); do
	start crash --set app.scan_interval_ms=1000 >/dev/null || break
	a=$agent
	w=$(worker_of "$a")
	pm=$(procmond_of "$a")
	sleep "0.$((RANDOM % 5))"
	kill -KILL "$a"
	wait "$a" 2>/dev/null
	until_ 100 gone "$w" || bad=$((bad + 1))
	until_ 100 gone "$pm" || bad=$((bad + 1))
	integrity "$db" || bad=$((bad + 1))
done
check "kill -9 of the whole service 5 times: the children went with it, the store is intact ($bad)" test "$bad" = 0
start crash --set app.scan_interval_ms=1000 || true
check "  and it starts again" test -n "$(worker_of "$agent")" || tail -n 20 "$tmp/crash.err" | sed 's/^/#   /'
sqlite3 -readonly "$db" "SELECT id FROM alerts" | sort -u >"$tmp/alerts.now"
check "  every alert ever committed is still there" test "$(comm -23 "$tmp/alerts.seen" "$tmp/alerts.now" | wc -l)" = 0
for f in "$tmp/crash"/events.sqlite "$tmp/crash"/audit.sqlite; do
	check "  $(basename "$f") passes integrity_check" integrity "$f"
done
check "  and the audit ledger's chain is intact" bash -c "'$bin/daemoneye-cli' --set app.state_dir='$tmp/crash' audit verify >/dev/null"

# ---- 7. health ---------------------------------------------------------------------------

a=$agent
bad=0
cli=("$bin/daemoneye-cli" --set app.state_dir="$tmp/crash")
"${cli[@]}" health >"$tmp/h.txt"
rc=$?
check "health: exit status = the worst status (rc=$rc)" test "$rc" -le 2
check "health: a table of every component" grep -q "^procmond .*\(ok\|warning\)" "$tmp/h.txt"
for c in parent procmond worker store rules sink:stdout audit scan config overall; do
	grep -q "^$c " "$tmp/h.txt" || bad=$((bad + 1))
done
check "health: parent, procmond, worker, store, rules, sink, audit, scan, config" test "$bad" = 0
check "health: the report's age on the last line" \
	bash -c "tail -n 1 '$tmp/h.txt' | grep -Eq '^report +written [0-9]+ (s|min) ago\$'"
"${cli[@]}" health --format json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["status"] in ("ok","warning") and d["version"] == 1'
check "health --format json" test $? = 0
if command -v script >/dev/null; then
	TERM=xterm script -qec "${cli[*]} health" /dev/null >"$tmp/htty" 2>&1
	check "health: colour on a terminal" grep -q $'\033\[3[23]m' "$tmp/htty"
	NO_COLOR=1 TERM=xterm script -qec "${cli[*]} health" /dev/null >"$tmp/htty2" 2>&1
	check "health: NO_COLOR honoured" bash -c "! grep -q $'\033\\[' '$tmp/htty2'"
fi
if $root; then
	setpriv --reuid=nobody --regid=nogroup --clear-groups "${cli[@]}" health >/dev/null
	rc=$?
	check "health as nobody, who may read the state directory (rc=$rc)" test "$rc" -le 2
	setpriv --reuid=12345 --regid=12345 --clear-groups "${cli[@]}" health >/dev/null 2>"$tmp/e"
	rc=$?
	check "health as a user who may not: 77 (rc=$rc)" test "$rc" = 77
fi
stop "$a"
"${cli[@]}" health >"$tmp/h2.txt"
rc=$?
check "health after a stop: critical, exit 2 (rc=$rc)" test "$rc" = 2
check "  saying the service is not running" grep -q "^agent .*critical.*not running" "$tmp/h2.txt"
"$bin/daemoneye-cli" --set app.state_dir="$tmp/never" health >/dev/null 2>"$tmp/e"
rc=$?
check "health with no report: 69 (rc=$rc)" test "$rc" = 69
check "  and says what to do" grep -q "is daemoneye-agent running" "$tmp/e"

# ---- 8. metrics ----------------------------------------------------------------------------

start metrics --set app.scan_interval_ms=1000 --set metrics.listen=127.0.0.1:0 || exit 1
a=$agent
until_ 100 logged metrics "metrics on http://127.0.0.1:0/metrics (port"
port=$(sed -n 's/.*metrics on http.*(port \([0-9]*\)).*/\1/p' "$tmp/metrics.err" | head -n1)
until_ 100 more_scans metrics 2
check "promtool check metrics: the textfile" bash -c "promtool check metrics <'$tmp/metrics/daemoneye.prom' >'$tmp/pt1' 2>&1 && ! test -s '$tmp/pt1'"
sed 's/^/#   /' "$tmp/pt1" | head
python3 -c "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:$port/metrics').read().decode())" >"$tmp/scrape"
check "the loopback listener serves the same families (port $port)" grep -q "^daemoneye_scans_total" "$tmp/scrape"
check "promtool check metrics: the scrape" bash -c "promtool check metrics <'$tmp/scrape' >'$tmp/pt2' 2>&1 && ! test -s '$tmp/pt2'"
bad=0
for m in daemoneye_build_info daemoneye_scans_total daemoneye_scan_duration_seconds_bucket \
	daemoneye_processes daemoneye_events_received_total daemoneye_events_lost_total \
	daemoneye_hash_cache_hits_total daemoneye_hash_cache_misses_total daemoneye_hashed_bytes_total \
	daemoneye_rule_duration_seconds_bucket daemoneye_alerts_total daemoneye_deliveries_total \
	daemoneye_queue_depth daemoneye_dead_letters daemoneye_sink_circuit_state \
	daemoneye_store_size_bytes daemoneye_store_write_duration_seconds_bucket \
	daemoneye_audit_entries_total daemoneye_process_cpu_seconds_total \
	daemoneye_process_resident_memory_bytes daemoneye_alerts_suppressed_total \
	daemoneye_alerts_folded_total daemoneye_rule_matches_total \
	daemoneye_exec_detection_seconds_bucket; do
	grep -q "^$m[ {]" "$tmp/scrape" || { echo "# missing: $m"; bad=$((bad + 1)); }
done
check "every metric family of the issue is there" test "$bad" = 0
stop "$a"
"$bin/daemoneye-agent" --once --set app.state_dir="$tmp/m2" --set metrics.listen=0.0.0.0:9469 >/dev/null 2>"$tmp/e"
rc=$?
check "metrics.listen on 0.0.0.0 is refused: 78 (rc=$rc)" test "$rc" = 78
check "  because it is not loopback" grep -q "not a loopback address" "$tmp/e"

# ---- 8b. the watchdog's memory limit -----------------------------------------------------------
# a worker over watchdog.worker_memory_mb for `strikes` samples in a row is
# restarted, and procmond with it (1 MiB: every worker is over it, in the
# sanitizer build too, which scales the limit by 4)
"$bin/daemoneye-agent" --rules "$tmp/mark.yaml" --set app.state_dir="$tmp/mem" \
	--set 'detection.rules_dirs=[]' --set watchdog.interval_ms=200 --set watchdog.strikes=2 \
	--set watchdog.worker_memory_mb=1 --set watchdog.restart_delay_ms=300 \
	>"$tmp/mem.out" 2>"$tmp/mem.err" &
a=$!
agents+=("$a")
check "watchdog: a worker over its memory limit for 2 samples in a row is restarted" until_ 300 \
	logged mem "watchdog: worker pid [0-9]* used too much memory for 2 samples in a row (limit [14] MiB resident): restarting it"
check "  with the reason" until_ 300 logged mem "worker pid [0-9]* .*(memory): starting it again in"
check "  and procmond goes with it" until_ 300 logged mem "procmond pid [0-9]* .*(with_worker)"
first=$(sed -n 's/.*watchdog: worker pid \([0-9]*\) used too much memory.*/\1/p' "$tmp/mem.err" | head -n1)
check "  a new worker runs after the old one ($first)" until_ 300 bash -c \
	"w=\$(pgrep -P $a -f '^daemoneye-worker' | head -n1); [ -n \"\$w\" ] && [ \"\$w\" != '$first' ]"
stop "$a"
rc=$?
check "  and the agent still stops cleanly (rc=$rc)" test "$rc" = 0

# ---- 9. a rule over its time budget ----------------------------------------------------------

cat >"$tmp/slow.yaml" <<'YAML'
rules:
  - id: it-slow-rule
    name: a slow rule
    description: counts to a million before it answers nothing
    version: 1
    severity: low
    category: execution
    tags: [attack.t1059]
    author: tests
    sql: |
      SELECT pid, name, executable_path FROM processes
      WHERE pid = -(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000) SELECT count(*) FROM c)
YAML
mkdir -p "$tmp/slowrules"
mv "$tmp/slow.yaml" "$tmp/slowrules/"
chmod -R a+rX "$tmp/slowrules"
printf 'detection:\n  rule_budget_ms: 1\n  rule_budget_strikes: 2\n' >"$tmp/budget.yaml"
chmod 644 "$tmp/budget.yaml"
start budget -c "$tmp/budget.yaml" --set "detection.rules_dirs=[$tmp/slowrules]" --set detection.builtin_rules=false \
	--set app.scan_interval_ms=1000 || exit 1
a=$agent
check "a rule over its budget twice in a row: an alert says it is disabled" until_ 300 alerted budget daemoneye-rule-watchdog -
check "  the log says how to turn it back on" logged budget "daemoneye-cli rules enable it-slow-rule"
check "  health lists it" until_ 150 slow_listed budget it-slow-rule
check "  the override is recorded" grep -q '"it-slow-rule": *false' "$tmp/budget/rules-state.json"
# no budget from now on, then the operator turns it back on
printf 'detection:\n  rule_budget_ms: 0\n' >"$tmp/budget.yaml"
kill -HUP "$a"
check "  a reload turns the budget off" until_ 300 logged budget "configuration reloaded"
check "  a reload keeps it disabled and listed" slow_listed budget it-slow-rule
"$bin/daemoneye-cli" --set app.state_dir="$tmp/budget" --set "detection.rules_dirs=[$tmp/slowrules]" \
	rules enable it-slow-rule >/dev/null
check "rules enable: health no longer lists it" until_ 300 slow_gone budget it-slow-rule ||
	{ tail -n 15 "$tmp/budget.err"; "$bin/daemoneye-cli" --set app.state_dir="$tmp/budget" health; } | sed 's/^/#   /'
stop "$a"

# ---- 10. a refused batch is retried (root: a full tmpfs) ---------------------------------------

if $root && command -v mount >/dev/null; then
	mkdir -p "$tmp/full"
	if mount -t tmpfs -o size=64m tmpfs "$tmp/full" 2>/dev/null; then
		mounted=$tmp/full
		chmod 755 "$tmp/full"
		# (a rollback journal: a busy host's event batches would fill a small
		# disk with write-ahead log before the test does)
		start fullrun --set app.state_dir="$tmp/full/state" --set app.scan_interval_ms=600000 \
			--set database.wal_mode=false || exit 1
		a=$agent
		# fill the disk, leaving nothing for the store
		dd if=/dev/zero of="$tmp/full/filler" bs=64k 2>/dev/null
		sh -c 'sleep 0.05' "$mark-while-full" &
		short=$!
		wait "$short"
		check "disk full: the exec's batch is refused" until_ 100 logged fullrun "applying process events: "
		check "  and nothing raised yet" bash -c "! grep -q '$mark-while-full' '$tmp/fullrun.out'"
		rm -f "$tmp/full/filler"
		check "  room again: the short process that came and went is stored and evaluated (pid $short)" until_ 300 alerted fullrun it-service-marker "$short"
		stop "$a"
		umount "$tmp/full" && mounted=
	else
		echo "ok - # SKIP disk-full retry: cannot mount a tmpfs here"
	fi
else
	echo "ok - # SKIP disk-full retry: needs root to mount a tmpfs"
fi

# ---- 11. sd_notify ------------------------------------------------------------------------------

python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
open(sys.argv[2], "w").close()
while True:
    d = s.recv(4096).decode()
    with open(sys.argv[2], "a") as f:
        f.write(d.replace("\n", " | ") + "\n")
' "$tmp/notify.sock" "$tmp/notify.log" &
listener=$!
kids+=("$listener")
until_ 100 test -e "$tmp/notify.log"
run_as=(env NOTIFY_SOCKET="$tmp/notify.sock" WATCHDOG_USEC=2000000)
start notify --set app.scan_interval_ms=1000 || exit 1
run_as=()
a=$agent
notified() { grep -q -- "$1" "$tmp/notify.log"; }
check "sd_notify: READY=1" until_ 100 notified "READY=1"
check "sd_notify: STATUS= with the last scan" until_ 100 notified "STATUS=scan [0-9]*: [0-9]* processes"
check "sd_notify: WATCHDOG=1 (WatchdogSec 2 s)" until_ 100 notified "WATCHDOG=1"
w=$(worker_of "$a")
check "sd_notify: the worker does not have the socket" bash -c "! tr '\\0' '\\n' </proc/$w/environ | grep -q NOTIFY_SOCKET"
kill -HUP "$a"
check "sd_notify: RELOADING=1 on SIGHUP, with MONOTONIC_USEC" until_ 100 notified "RELOADING=1 | MONOTONIC_USEC="
stop "$a"
check "sd_notify: STOPPING=1" notified "STOPPING=1"
kill "$listener"

# ---- 12. checkpoints signed by the parent ------------------------------------------------------

mkdir -p "$tmp/keys"
"$bin/daemoneye-cli" keygen --out "$tmp/keys" >/dev/null
start signing --set app.scan_interval_ms=1000 --set audit.enable_signatures=true \
	--set audit.private_key_path="$tmp/keys/audit.key" --set audit.checkpoint_every_entries=1 || exit 1
a=$agent
if $root; then
	w=$(worker_of "$a")
	check "signing: the worker cannot read the key" \
		bash -c "! setpriv --reuid=$(status_of "$w" Uid) --regid=nogroup --clear-groups cat '$tmp/keys/audit.key' >/dev/null 2>&1"
fi
kill -HUP "$a" # a reload is an entry, so a checkpoint
check "signing: reloaded" until_ 100 logged signing "configuration reloaded"
check "signing: health shows the last signed checkpoint" until_ 150 bash -c "'$bin/daemoneye-cli' --set app.state_dir='$tmp/signing' health | grep -q '^audit .*last signed checkpoint'"
check "signing: the metrics count the ledger's entries" until_ 150 bash -c "awk '\$1 == \"daemoneye_audit_entries_total\" && \$2 >= 2 { ok = 1 } END { exit !ok }' '$tmp/signing/daemoneye.prom'"
stop "$a"
"$bin/daemoneye-cli" --set app.state_dir="$tmp/signing" audit verify --pubkey "$tmp/keys/audit.pub" >"$tmp/v" 2>&1
rc=$?
check "signing: audit verify with the public key: intact (rc=$rc)" test "$rc" = 0
check "  with checkpoints whose signatures were checked" grep -q "checkpoints  *[1-9][0-9]* (signatures verified)" "$tmp/v"
"$bin/daemoneye-cli" --set app.state_dir="$tmp/signing" audit checkpoint --export "$tmp/cp.txt" >/dev/null
check "  the exported checkpoint names this ledger" bash -c "head -n1 '$tmp/cp.txt' | grep -q '/daemoneye/audit$'"
chmod 0640 "$tmp/keys/audit.key"
"$bin/daemoneye-agent" --once --set app.state_dir="$tmp/loose" --set audit.enable_signatures=true \
	--set audit.private_key_path="$tmp/keys/audit.key" >/dev/null 2>"$tmp/e"
rc=$?
check "signing: a key file looser than 0600 is refused (rc=$rc)" test "$rc" != 0
check "  saying so" grep -q "0600" "$tmp/e"

# ---- 13. the free-disk watermark -----------------------------------------------------------------

printf 'database:\n  min_free_disk_mb: 0\n' >"$tmp/disk.yaml"
chmod 644 "$tmp/disk.yaml"
start disk -c "$tmp/disk.yaml" --set app.scan_interval_ms=1000 || exit 1
a=$agent
db="$tmp/disk/events.sqlite"
sq() { sqlite3 -readonly -cmd ".timeout 10000" "$db" "$1" 2>/dev/null; }
# short-lived processes that a scan sees, so that their exits become history
shortlived() { for _ in 1 2 3 4 5 6 7 8; do sleep 1.2 & kids+=($!); done; }
instances() { sq "SELECT count(*) FROM process_instances"; }
has_history() { [ "$(instances)" -gt 0 ]; }
shortlived
check "disk: exited processes go into history" until_ 100 has_history
check "  health: store ok" component_is disk store status ok
printf 'database:\n  min_free_disk_mb: 16777216\n' >"$tmp/disk.yaml"
kill -HUP "$a"
check "disk: a watermark above the free space there is: an alert says so" until_ 150 alerted disk daemoneye-store-disk -
check "  the log too" logged disk "below database.min_free_disk_mb"
check "  the history is pruned" until_ 100 test "$(instances)" = 0
check "  health: store critical, history not written" until_ 150 component_is disk store details.history_written False
check "    status critical" component_is disk store status critical
health_json disk >/dev/null 2>&1
rc=$?
check "    daemoneye-cli health exits 2 (rc=$rc)" test "$rc" = 2
check "  metrics: daemoneye_store_history_written 0" until_ 150 metric_is disk daemoneye_store_history_written 0
n=$(scans disk)
shortlived
check "  new exits are not written while it lasts" until_ 150 more_scans disk $((n + 4))
check "    (none)" test "$(instances)" = 0
check "  the snapshot still is" test "$(sq "SELECT count(*) FROM processes")" -gt 0
check "  and the alert too" test "$(sq "SELECT count(*) FROM alerts WHERE rule_id = 'daemoneye-store-disk'")" -ge 1
printf 'database:\n  min_free_disk_mb: 0\n' >"$tmp/disk.yaml"
kill -HUP "$a"
check "disk: watermark off again: the log says history is written" until_ 150 logged disk "history is written"
check "  health: store ok" until_ 150 component_is disk store status ok
check "  metrics: daemoneye_store_history_written 1" until_ 150 metric_is disk daemoneye_store_history_written 1
shortlived
check "  exits go into history again" until_ 100 has_history
stop "$a"

echo "integration_service: $fails failed"
[ "$fails" = 0 ]
