#!/bin/bash
# integration_events.sh BINDIR — the exec path end to end: procmond forwards
# the kernel's exec/exit events over the socketpair, the agent applies each
# to the store at once (an "event" scan) and runs the single-process rules
# over the process that exec'd, without waiting for the next cycle.
#
# As root (events need CAP_NET_ADMIN): an agent with a ten-minute scan
# interval must, after its first scan,
#   1. alert on a process that lives 10 ms, naming its pid, from an event scan;
#   2. alert through a builtin rule (a hidden executable) the same way;
#   3. show a new long-lived process in the `processes` snapshot, and after
#      it is killed mark its instance exited and drop it from the snapshot;
#      alert on each of a burst of 40 execs (batched while they come);
#   4. have run no second full scan meanwhile;
#   5. with collection.events=false, raise nothing until the next cycle.
# As any user: started as nobody the agent runs; whether the kernel lets an
# unprivileged process subscribe depends on its version (Linux 6.6 opened
# the process connector to non-root); if it does not, procmond says why
# once and the agent runs on its scans (events: off).
# Every process started here is reaped by its pid.
set -u
. "$(dirname "$0")/lib.sh"
bin=$1
tmp=$(mktemp -d /tmp/de-it-events-XXXXXX)
chmod 755 "$tmp" # the root agent drops to nobody and must reach its state
pids=()
agent_pid=
cleanup() {
	[ -n "$agent_pid" ] && kill -TERM "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
	for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
hermetic "$tmp/home"

mark="de-it-events-$$"
marker_rule "$tmp/mark.yaml" it-events-marker "$mark"

first_scan_or_death() {
	grep -q "scan [0-9]*: [0-9]* processes" "$tmp/$1.err" || ! kill -0 "$agent_pid" 2>/dev/null
}
# start_agent NAME [--set ...]: background agent, stdout NAME.out, stderr NAME.err
# (deduplication off: each marked process must raise its own alert here,
# while by default a second "sh" of the same rule within the hour folds)
start_agent() {
	local name=$1
	shift
	"$bin/daemoneye-agent" --rules "$tmp/mark.yaml" --set app.state_dir="$tmp/$name" \
		--set 'detection.rules_dirs=[]' --set app.scan_interval_ms=600000 \
		--set alerting.stdout.format=json --set logging.level=debug \
		--set alerting.deduplication.enabled=false "$@" \
		>"$tmp/$name.out" 2>"$tmp/$name.err" &
	agent_pid=$!
	wait_for 60 first_scan_or_death "$name" && grep -q "scan [0-9]*: [0-9]* processes" "$tmp/$name.err" &&
		return 0
	echo "# the agent's first scan never finished:"
	sed 's/^/#   /' "$tmp/$name.err" | tail -20
	return 1
}
# stop_agent: SIGTERM, reap; its exit status
stop_agent() {
	stop "$agent_pid"
	local rc=$?
	agent_pid=
	return $rc
}
# alerted NAME RULE PID: wait for NAME.out's alert of RULE naming PID (60 s
# at most); print its scan id
alerted() {
	local f=$tmp/$1.out
	shift
	wait_for 60 alert_scan "$f" "$@" >/dev/null && alert_scan "$f" "$@"
}
# burst_alerted FILE PID...: every PID has its own alert of it-events-marker
# in FILE; prints from how many scans they came
burst_alerted() {
	python3 -c '
import json, sys
want = set(int(p) for p in sys.argv[2:])
scans = {}
for line in open(sys.argv[1]):
    if line.startswith("{"):
        a = json.loads(line)
        if a["rule_id"] == "it-events-marker":
            for p in set(a["affected_processes"]) & want:
                scans[p] = a["scan_id"]
print(len(set(scans.values())))
sys.exit(0 if len(scans) == len(want) else 1)
' "$@"
}
db() { sqlite3 -readonly "$tmp/$1/events.sqlite" "$2"; }
answers() { [ "$(db "$1" "$2")" = "$3" ]; }
# until_sql NAME SQL WANT: wait (60 s at most) for SQL to answer WANT
until_sql() {
	wait_for 60 answers "$@" && return 0
	echo "# '$2' answered '$(db "$1" "$2")', not '$3'"
	return 1
}

if [ "$(id -u)" = 0 ]; then
	check "agent (events on) finishes its first scan" start_agent ev
	check "agent starts with the eBPF sensor" grep -q "events: ebpf)" "$tmp/ev.err"

	# 1. a process that lives 10 ms
	sh -c 'sleep 0.01' "$mark-short" &
	short=$!
	wait "$short"
	scan=$(alerted ev it-events-marker "$short")
	check "a 10 ms process raises its alert from the event path (pid $short)" test -n "$scan"
	check "the alert names an event scan ($scan)" \
		test "$(db ev "SELECT source FROM scans WHERE id = ${scan:-0}")" = event
	check "its instance is recorded exited" until_sql ev \
		"SELECT count(*) FROM process_instances WHERE pid = $short AND exited_at IS NOT NULL" 1

	# 2. a builtin rule on an exec: a hidden executable
	cp /bin/sleep "$tmp/.de-hidden"
	"$tmp/.de-hidden" 0.05 &
	hidden=$!
	wait "$hidden"
	check "a builtin rule (hidden-executable) fires on the exec (pid $hidden)" \
		alerted ev hidden-executable "$hidden"

	# 3. a long-lived process enters the snapshot, then leaves it
	setsid sh -c 'sleep 300; :' "$mark-long" </dev/null >/dev/null 2>&1 &
	long=$!
	pids+=("$long")
	check "a new process is in the snapshot at once (pid $long)" \
		until_sql ev "SELECT count(*) FROM processes WHERE pid = $long" 1
	check "and alerted on" alerted ev it-events-marker "$long"
	kill -TERM -- "-$long"
	wait "$long"
	pids=()
	check "after its exit it leaves the snapshot" \
		until_sql ev "SELECT count(*) FROM processes WHERE pid = $long" 0
	check "and its instance is marked exited" until_sql ev \
		"SELECT count(*) FROM process_instances WHERE pid = $long AND exited_at IS NOT NULL" 1

	# 3b. a burst: while executions keep coming the exec path waits a few
	# ms for fuller batches (detection.exec_batch_wait_ms, default 4), and
	# every exec of the burst is still evaluated: each raises its own alert
	burst=()
	for i in $(seq 40); do
		/bin/true "$mark-burst-$i" &
		burst+=($!)
	done
	for p in "${burst[@]}"; do wait "$p"; done
	check "each of a burst of 40 execs raises its own alert" \
		wait_for 60 burst_alerted "$tmp/ev.out" "${burst[@]}"
	echo "# the burst's 40 alerts came from $(burst_alerted "$tmp/ev.out" "${burst[@]}") event scans"

	# 4. all of it without another full scan
	check "only one full scan ran" test "$(db ev "SELECT count(*) FROM scans WHERE source = 'poll'")" = 1
	check "event scans were recorded" test "$(db ev "SELECT count(*) FROM scans WHERE source = 'event' AND status = 'ok'")" -ge 1
	stop_agent
	rc=$?
	check "agent exits 0 on SIGTERM (rc=$rc)" test "$rc" = 0
	pm=$(sed -n 's/.*procmond pid \([0-9]*\) started.*/\1/p' "$tmp/ev.err" | head -1)
	check "procmond ($pm) is gone with it" test -n "$pm" -a ! -e "/proc/${pm:-0}"

	# 5. events off: nothing until the next cycle.  This agent scans every
	# second.  An event procmond sent would reach the agent before the frames
	# of the next scan (one channel, in order), and be applied before the
	# scan after that: once two more scans have finished after the short
	# process exited, whatever an event path would have raised is there.
	check "agent (events off) finishes its first scan" start_agent off --set collection.events=false --set app.scan_interval_ms=1000
	check "collection.events=false: events off, and why" \
		grep -q "events: none: collection.events is false" "$tmp/off.err"
	sh -c 'sleep 0.01' "$mark-off" &
	off=$!
	wait "$off"
	polls=$(db off "SELECT count(*) FROM scans WHERE source = 'poll' AND ended_at IS NOT NULL")
	check "two more cycles ran" until_sql off \
		"SELECT count(*) >= $((polls + 2)) FROM scans WHERE source = 'poll' AND ended_at IS NOT NULL" 1
	# (a cycle's scan may catch the 10 ms process by chance: such an alert
	# comes from a poll scan, which is the next cycle)
	scan=$(alert_scan "$tmp/off.out" it-events-marker "$off")
	check "no alert without events before the next cycle (${scan:+scan $scan: }$(db off "SELECT source FROM scans WHERE id = ${scan:-0}"))" \
		test -z "$scan" -o "$(db off "SELECT source FROM scans WHERE id = ${scan:-0}")" = poll
	check "no event scan" test "$(db off "SELECT count(*) FROM scans WHERE source = 'event'")" = 0
	stop_agent
	rc=$?
	check "agent with events off exits 0 on SIGTERM (rc=$rc)" test "$rc" = 0
else
	echo "# not root: the real-time part needs CAP_NET_ADMIN for the process connector; only the non-root part runs"
fi

# as nobody (from root) or as ourselves: the connector may be refused
nobody=()
state=$tmp/user
if [ "$(id -u)" = 0 ]; then
	mkdir -p "$tmp/nobody"
	chown nobody "$tmp/nobody"
	nobody=(setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$tmp/nobody")
	state=$tmp/nobody/state
fi
"${nobody[@]}" "$bin/daemoneye-agent" --once --set app.state_dir="$state" \
	--set 'detection.rules_dirs=[]' >"$tmp/user.out" 2>"$tmp/user.err"
rc=$?
check "unprivileged agent --once exits 0 (rc=$rc)" test "$rc" = 0
check "unprivileged: the eBPF sensor is refused, and the log says why" \
	grep -q "eBPF sensor not loaded: the kernel refused to load eBPF programs" "$tmp/user.err"
if grep -q "events: none" "$tmp/user.err"; then
	check "procmond says events need CAP_NET_ADMIN" grep -q "process events need CAP_NET_ADMIN" "$tmp/user.err"
else
	check "this kernel lets non-root subscribe: the netlink fallback, with the reason" \
		grep -q "events: netlink: eBPF sensor not loaded" "$tmp/user.err"
fi
[ "$fails" = 0 ] || sed 's/^/#   /' "$tmp"/*.err | tail -40

echo "integration_events: $fails failed"
[ "$fails" = 0 ]
