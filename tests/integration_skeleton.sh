#!/bin/bash
# integration_skeleton.sh BINDIR — the walking skeleton end to end with the
# real programs: agent --once on no config file, the event store it leaves,
# an alert for a process whose executable was deleted, the loop mode and its
# signals, a non-root run, and the exit codes for bad input.
set -u
. "$(dirname "$0")/lib.sh"
bin=$1
tmp=$(mktemp -d /tmp/de-it-skeleton-XXXXXX)
# started as root the agent runs as nobody after spawning procmond: its
# state directories below must be reachable by that user
chmod 755 "$tmp"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT

# Keep the test hermetic: no user config, no DAEMONEYE_* from outside.
hermetic "$tmp/home"

# 1. --once with no config file: exit 0 and an event store in state_dir.
"$bin/daemoneye-agent" --once --set app.state_dir="$tmp/state" >"$tmp/out1" 2>"$tmp/err1"
rc=$?
check "agent --once exits 0 (rc=$rc)" test "$rc" = 0
check "event store created" test -s "$tmp/state/events.sqlite"
n=$(sqlite3 -readonly "$tmp/state/events.sqlite" "SELECT count(*) FROM processes")
check "snapshot has processes ($n)" test "${n:-0}" -gt 0
n=$(sqlite3 -readonly "$tmp/state/events.sqlite" "SELECT count(*) FROM scans WHERE ended_at IS NOT NULL")
check "one finished scan recorded ($n)" test "$n" = 1
self=$(sqlite3 -readonly "$tmp/state/events.sqlite" "SELECT count(*) FROM processes WHERE name='daemoneye-agent'")
check "the agent sees itself" test "${self:-0}" -ge 1

# 2. A copy of sleep whose file is deleted while it runs raises an alert.
cp /bin/sleep "$tmp/sneaky-sleep"
"$tmp/sneaky-sleep" 300 &
victim=$!
pids+=("$victim")
running_image() { [ "$(readlink "/proc/$1/exe")" = "$2" ]; }
check "the victim runs its copy of sleep" wait_for 10 running_image "$victim" "$tmp/sneaky-sleep"
rm -f "$tmp/sneaky-sleep"
"$bin/daemoneye-agent" --once --set app.state_dir="$tmp/state" >"$tmp/out2" 2>"$tmp/err2"
rc=$?
check "agent --once with a deleted executable exits 0 (rc=$rc)" test "$rc" = 0
# stdout is not a terminal here: JSON lines
line=$(grep '"deleted-executable"' "$tmp/out2" | grep "\[$victim\]\|\[$victim,\|,$victim\]\|,$victim," | head -n1)
check "alert names the deleted executable's pid $victim" test -n "$line"
check "alert is one valid JSON object" python3 -c 'import json,sys; a=json.loads(sys.argv[1]); assert a["severity"]=="high" and a["process_count"]>=1 and a["scan_id"]==2' "$line"
check "alert stored in the event store" test "$(sqlite3 -readonly "$tmp/state/events.sqlite" "SELECT count(*) FROM alerts WHERE rule_id='deleted-executable' AND affected_processes LIKE '%$victim%'")" -ge 1
# the same process instance again: one alert per real event, not one per run
"$bin/daemoneye-agent" --once --set app.state_dir="$tmp/state" >"$tmp/out2b" 2>/dev/null
rc=$?
check "a second agent --once exits 0 (rc=$rc)" test "$rc" = 0
check "a second run raises no new alert for the same instance" \
	bash -c "! grep -q '\"deleted-executable\".*[\\[,]$victim[],]' '$tmp/out2b'"
# text format on request (a fresh state: the instance is new to it)
"$bin/daemoneye-agent" --once --set app.state_dir="$tmp/state-text" --set alerting.stdout.format=text >"$tmp/out3" 2>/dev/null
rc=$?
check "agent --once with text alerts exits 0 (rc=$rc)" test "$rc" = 0
check "text alert line" grep -q "HIGH.*Process running a deleted executable \[deleted-executable\] pid .*$victim.*sneaky-sleep" "$tmp/out3"
kill "$victim"; wait "$victim" 2>/dev/null

# 3. Loop mode: repeats every scan_interval_ms and stops cleanly on SIGTERM/SIGINT.
finished_scans_at_least() {
	local n
	n=$(sqlite3 -readonly "$1/events.sqlite" "SELECT count(*) FROM scans WHERE ended_at IS NOT NULL" 2>/dev/null)
	[ "${n:-0}" -ge "$2" ]
}
for sig in TERM INT; do
	"$bin/daemoneye-agent" --set app.state_dir="$tmp/loop$sig" --set app.scan_interval_ms=1000 >/dev/null 2>"$tmp/loop.err" &
	agent=$!
	pids+=("$agent")
	check "loop mode ran at least two scans (SIG$sig)" wait_for 60 finished_scans_at_least "$tmp/loop$sig" 2
	stop "$agent" "$sig"
	rc=$?
	check "agent exits 0 on SIG$sig (rc=$rc)" test "$rc" = 0
done

# 4. Bad input: clear message, sysexits code, nothing written.
"$bin/daemoneye-agent" --bogus >/dev/null 2>"$tmp/e"; rc=$?
check "unknown flag exits 64 (rc=$rc)" test "$rc" = 64
check "unknown flag is named" grep -q "bogus" "$tmp/e"
"$bin/daemoneye-agent" --once --set app.state_dir="$tmp/never" --set app.scan_interval_ms=soon >/dev/null 2>"$tmp/e"; rc=$?
check "wrong-type value exits 78 (rc=$rc)" test "$rc" = 78
check "wrong-type message names key and origin" grep -q "\-\-set app.scan_interval_ms: 'app.scan_interval_ms' must be a non-negative integer, not a string" "$tmp/e"
check "nothing written on config error" test ! -e "$tmp/never"
printf 'app:\n  scan_interval_ms: 2000\n   bad: [\n' >"$tmp/bad.yaml"
"$bin/daemoneye-agent" --once -c "$tmp/bad.yaml" --set app.state_dir="$tmp/never" >/dev/null 2>"$tmp/e"; rc=$?
check "malformed YAML exits 78 (rc=$rc)" test "$rc" = 78
check "malformed YAML names file:line:column" grep -q "bad.yaml:[0-9]*:[0-9]*:" "$tmp/e"
check "nothing written on malformed YAML" test ! -e "$tmp/never"
DAEMONEYE_LOGGING__LEVEL=loud "$bin/daemoneye-agent" --check-config >/dev/null 2>"$tmp/e"; rc=$?
check "bad env value exits 78 (rc=$rc)" test "$rc" = 78
check "bad env value names the variable" grep -q "environment DAEMONEYE_LOGGING__LEVEL" "$tmp/e"
"$bin/daemoneye-agent" --once -c "$tmp/absent.yaml" >/dev/null 2>"$tmp/e"; rc=$?
check "missing -c file exits 78 (rc=$rc)" test "$rc" = 78
"$bin/daemoneye-agent" --check-config >"$tmp/o" 2>&1; rc=$?
check "--check-config on defaults exits 0" test "$rc" = 0
"$bin/daemoneye-agent" --once extra >/dev/null 2>&1; rc=$?
check "stray argument exits 64 (rc=$rc)" test "$rc" = 64
printf 'not a database at all, just text that is long enough to be a header....\n%.0s' $(seq 100) >"$tmp/corrupt.sqlite"
sum=$(md5sum <"$tmp/corrupt.sqlite")
"$bin/daemoneye-agent" --once --set app.state_dir="$tmp" --set database.path="$tmp/corrupt.sqlite" >/dev/null 2>"$tmp/e"; rc=$?
check "corrupt store is refused with 74 (rc=$rc)" test "$rc" = 74
check "and says it is not an event store" grep -q "not a daemoneye event store" "$tmp/e"
check "corrupt store left untouched" test "$sum" = "$(md5sum <"$tmp/corrupt.sqlite")"
"$bin/daemoneye-agent" --help >"$tmp/o"; rc=$?
check "--help exits 0 (rc=$rc)" test "$rc" = 0
check "--help documents --set" grep -q -- "--set KEY=VALUE" "$tmp/o"
check "--version" "$bin/daemoneye-agent" --version

# 5. Non-root: the same run as an unprivileged user, state under its home.
if [ "$(id -u)" = 0 ]; then
	nobody_home=$tmp/nobody
	mkdir -p "$nobody_home"
	chown nobody "$nobody_home"
	chmod 755 "$tmp"
	HOME=$nobody_home setpriv --reuid=nobody --regid=nogroup --clear-groups \
		env -u XDG_STATE_HOME HOME="$nobody_home" "$bin/daemoneye-agent" --once >"$tmp/out5" 2>"$tmp/err5"
	rc=$?
	check "agent --once as nobody exits 0 (rc=$rc)" test "$rc" = 0
	check "non-root state dir is ~/.local/state/daemoneye" test -s "$nobody_home/.local/state/daemoneye/events.sqlite"
	n=$(sqlite3 -readonly "$nobody_home/.local/state/daemoneye/events.sqlite" "SELECT count(*) FROM processes WHERE accessible = 0")
	check "non-root run records others' processes as inaccessible, not skipped ($n)" test "${n:-0}" -ge 1
else
	"$bin/daemoneye-agent" --once --set app.state_dir="$tmp/user" >/dev/null 2>&1
	rc=$?
	check "agent --once as $(id -un) exits 0 (rc=$rc)" test "$rc" = 0
	check "agent --once as $(id -un) writes its store" test -s "$tmp/user/events.sqlite"
fi

# `make run` as root: no app.state_dir, so /var/lib/daemoneye; after the drop
# to nobody the agent must keep using it (and not look in root's home, which
# nobody cannot read).  It runs in a private mount namespace with an empty
# tmpfs over /var/lib: the fresh machine CI has, whatever this host keeps in
# its own /var/lib/daemoneye (never touched).
if [ "$(id -u)" = 0 ] && unshare --mount --propagation private -- \
	mount -t tmpfs -o size=1m de-test-probe /var/lib 2>"$tmp/unshare.err"; then
	mkdir -p "$tmp/roothome"
	chmod 700 "$tmp/roothome"
	unshare --mount --propagation private -- sh -c '
		mount -t tmpfs -o mode=755,size=256m de-test-varlib /var/lib || exit 200
		env -u XDG_STATE_HOME HOME="$1" "$2/daemoneye-agent" --once >"$3/out6" 2>"$3/err6"
		rc=$?
		stat -c %U /var/lib/daemoneye/events.sqlite >"$3/owner6" 2>&1
		sqlite3 -readonly /var/lib/daemoneye/events.sqlite \
			"SELECT count(*) FROM scans WHERE ended_at IS NOT NULL" >"$3/scans6" 2>&1
		exit "$rc"' sh "$tmp/roothome" "$bin" "$tmp"
	rc=$?
	check "root, default state dir: agent --once exits 0 (rc=$rc)" test "$rc" = 0
	check "root, default state dir: the store is /var/lib/daemoneye, written as nobody ($(cat "$tmp/owner6"))" \
		test "$(cat "$tmp/owner6")" = nobody
	check "root, default state dir: it holds the finished scan ($(cat "$tmp/scans6"))" \
		test "$(cat "$tmp/scans6")" = 1
	check "root, default state dir: nothing read from root's home" \
		test -z "$(grep "$tmp/roothome" "$tmp/err6")"
	[ "$rc" = 0 ] || sed 's/^/#   /' "$tmp/err6"
elif [ "$(id -u)" = 0 ]; then
	echo "ok - # SKIP root's default state dir: no private mount namespace with a tmpfs over /var/lib here ($(head -c 200 "$tmp/unshare.err"))"
else
	echo "ok - # SKIP root's default state dir: not root"
fi

echo "integration_skeleton: $fails failed"
[ "$fails" = 0 ]
