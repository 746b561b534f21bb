#!/bin/bash
# integration_store.sh BINDIR — the event store end to end with the real
# programs: `daemoneye-cli processes` and `stats` after `daemoneye-agent
# --once` (formats, filters, exit codes), twenty scans of a quiet host
# growing the store by kilobytes, a second agent refused while the CLI
# reads, and, as root, a scan on a full disk (small tmpfs) and on a file
# system that turns read-only under the running agent (ext4 on a loop
# device with errors=remount-ro): the scan fails, the agent keeps running,
# earlier data stays intact, and it recovers when the disk has room again.
set -u
bin=$1
tmp=$(mktemp -d /tmp/de-it-store-XXXXXX)
# started as root the agent drops to app.run_as_user (nobody here): it must
# reach its state directory below this one
chmod 755 "$tmp"
pids=()
mounts=()
loopdev=
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[$i]}" 2>/dev/null; done
	[ -n "$loopdev" ] && losetup -d "$loopdev" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"

hermetic "$tmp/home"
unset NO_COLOR COLUMNS
cli() { "$bin/daemoneye-cli" --set app.state_dir="$tmp/state" "$@"; }
db=$tmp/state/events.sqlite

# 1. The CLI before any agent ran: no store, exit 66, nothing created.
cli processes >/dev/null 2>"$tmp/e"; rc=$?
check "processes without a store exits 66 (rc=$rc)" test "$rc" = 66
check "and says to run the agent" grep -q "run daemoneye-agent first" "$tmp/e"
check "and creates nothing" test ! -e "$tmp/state"

# 2. After one agent cycle.
"$bin/daemoneye-agent" --once --set app.state_dir="$tmp/state" >/dev/null 2>"$tmp/agent.err"
check "agent --once exits 0" test $? = 0
cli processes --pid 1 >"$tmp/p1" 2>"$tmp/e"; rc=$?
check "processes --pid 1 exits 0 (rc=$rc)" test "$rc" = 0
check "table header" grep -q "^ *PID *PPID USER" "$tmp/p1"
check "pid 1 row" grep -Eq "^ +1 +[0-9-]+ " "$tmp/p1"
check "exactly one row for pid 1" test "$(wc -l <"$tmp/p1")" = 2
cli processes --pid 1 --format json >"$tmp/j"
check "json is an array with pid 1 alive" python3 -c '
import json,sys; a=json.load(open(sys.argv[1])); assert len(a)==1 and a[0]["pid"]==1 and a[0]["alive"] and isinstance(a[0]["argv"], list)' "$tmp/j"
cli processes --format ndjson >"$tmp/nd"
n=$(sqlite3 -readonly "$db" "SELECT count(*) FROM processes")
check "ndjson: one valid line per live process ($n)" python3 -c '
import json,sys; rows=[json.loads(l) for l in open(sys.argv[1])]; assert len(rows)==int(sys.argv[2]), len(rows)' "$tmp/nd" "$n"
cli processes --format csv --limit 3 >"$tmp/csv"
check "csv: header and 3 rows" python3 -c '
import csv,sys; r=list(csv.reader(open(sys.argv[1], newline=""))); assert r[0][:2]==["instance_id","pid"] and len(r)==4' "$tmp/csv"
cli processes --name daemoneye-agent --since -1h --until now --format ndjson >"$tmp/self"
check "--name exact and a relative time range find the agent" grep -q '"name":"daemoneye-agent"' "$tmp/self"
cli processes --name 'daemoneye-ag*' --format ndjson --since 2000-01-01T00:00:00Z >"$tmp/self2"
check "--name glob and RFC 3339 --since" grep -q '"name":"daemoneye-agent"' "$tmp/self2"
cli processes --until 2000-01-01 --format ndjson >"$tmp/none"
check "--until before everything matches nothing" test ! -s "$tmp/none"
cli processes --since 2000-01-01T00:00:00.5+02:00 --until now --format ndjson >/dev/null; rc=$?
check "RFC 3339 with fraction and offset (rc=$rc)" test "$rc" = 0
cli processes --since 2026-02-31 >/dev/null 2>&1; rc=$?
check "an impossible date exits 64 (rc=$rc)" test "$rc" = 64
cli processes --since -1h --until -2h >/dev/null 2>&1; rc=$?
check "--since after --until exits 64 (rc=$rc)" test "$rc" = 64
cli processes --since yesterday >/dev/null 2>"$tmp/e"; rc=$?
check "unknown --since format exits 64 (rc=$rc)" test "$rc" = 64
check "and names the value" grep -q "cannot read time 'yesterday'" "$tmp/e"
cli processes --format xml >/dev/null 2>&1; rc=$?
check "unknown --format exits 64 (rc=$rc)" test "$rc" = 64
cli processes --pid abc >/dev/null 2>&1; rc=$?
check "bad --pid exits 64 (rc=$rc)" test "$rc" = 64
cli processes --limit -1 >/dev/null 2>&1; rc=$?
check "negative --limit exits 64 (rc=$rc)" test "$rc" = 64

# Table width, colour and hostile bytes.
long=$(printf 'x%.0s' $(seq 300))
# a shell that blocks opening a FIFO, with hostile arguments
cp /bin/dash "$tmp/evil-sh"
mkfifo "$tmp/fifo"
"$tmp/evil-sh" -c 'read x <"$0"' "$tmp/fifo" $'\033[31mred\nline' "$long" &
victim=$!
pids+=("$victim")
sleep 0.2
"$bin/daemoneye-agent" --once --set app.state_dir="$tmp/state" >/dev/null 2>&1
COLUMNS=70 cli processes --pid "$victim" >"$tmp/w"
check "COLUMNS=70: no line wider than 70" test "$(awk '{ if (length($0) > m) m = length($0) } END { print m }' "$tmp/w")" -le 70
cli processes --pid "$victim" >"$tmp/w2"
check "not a terminal and no COLUMNS: the whole line" grep -q "$long" "$tmp/w2"
check "escape bytes are escaped, not sent" grep -q 'fifo \\x1b\[31mred\\nline' "$tmp/w2"
check "no raw ESC in the table" bash -c "! grep -q $'\033' '$tmp/w2'"
check "json keeps the exact argument" python3 -c '
import json,sys; r=json.loads(open(sys.argv[1]).readline()); assert r["argv"][4]=="\x1b[31mred\nline", r["argv"][:5]' <(cli processes --pid "$victim" --format ndjson)
kill "$victim"; wait "$victim" 2>/dev/null
"$bin/daemoneye-agent" --once --set app.state_dir="$tmp/state" >/dev/null 2>&1
cli processes --pid "$victim" --format ndjson >"$tmp/gone"
check "an exited process stays in history with its exit time" python3 -c '
import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; assert len(r)==1 and not r[0]["alive"] and r[0]["exited_at"]' "$tmp/gone"
# On a terminal: its width, and colour unless NO_COLOR or TERM=dumb.
if command -v script >/dev/null; then
	clicmd="$bin/daemoneye-cli --set app.state_dir=$tmp/state processes --limit 5"
	TERM=xterm script -qec "stty cols 50; $clicmd" /dev/null >"$tmp/tty" 2>&1
	check "a 50-column terminal gets lines of at most 50" test "$(tr -d '\r' <"$tmp/tty" | sed 's/\x1b\[[0-9;]*m//g' | awk '{ if (length($0) > m) m = length($0) } END { print m }')" -le 50
	check "colour on a terminal" grep -q $'\033\[1m' "$tmp/tty"
	NO_COLOR=1 TERM=xterm script -qec "$clicmd" /dev/null >"$tmp/tty2" 2>&1
	check "NO_COLOR: no colour" bash -c "! grep -q $'\033\\[' '$tmp/tty2'"
	TERM=dumb script -qec "$clicmd" /dev/null >"$tmp/tty3" 2>&1
	check "TERM=dumb: no colour" bash -c "! grep -q $'\033\\[' '$tmp/tty3'"
else
	echo "ok - # SKIP terminal tests: no script(1)"
fi
cli stats >"$tmp/stats"; rc=$?
check "stats exits 0" test "$rc" = 0
check "stats shows schema, instances and scans" grep -q "^process instances" "$tmp/stats"
cli stats --format json | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["schema_version"]==6 and s["scans"]==3' 
check "stats json" test $? = 0

# 3. Twenty scans of a quiet host grow the store by kilobytes.
sqlite3 "$db" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
before=$(stat -c %s "$db")
payload_before=$(sqlite3 -readonly "$db" "SELECT sum(payload) FROM dbstat")
inst_before=$(sqlite3 -readonly "$db" "SELECT count(*) FROM process_instances")
# (rules off: alerts are the alerting issue's growth, not the process history's)
for i in $(seq 20); do "$bin/daemoneye-agent" --once --set app.state_dir="$tmp/state" --set detection.builtin_rules=false >/dev/null 2>&1; done
sqlite3 "$db" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
after=$(stat -c %s "$db")
payload_after=$(sqlite3 -readonly "$db" "SELECT sum(payload) FROM dbstat")
grown=$((after - before))
inst_after=$(sqlite3 -readonly "$db" "SELECT count(*) FROM process_instances")
live=$(sqlite3 -readonly "$db" "SELECT count(*) FROM processes")
# a shared machine is not quiet (other tests, builds): what its new processes
# add is history, not scan overhead.  The row bytes (dbstat payload) say what
# was written; the file grows in whole pages (16 KiB for a new store), a few
# per b-tree that a new process touches.
new=$((inst_after - inst_before))
wrote=$((payload_after - payload_before))
check "20 scans wrote $wrote bytes of rows: kilobytes (< 32 KiB + 2 KiB x $new new processes)" \
	test "$wrote" -lt $((32768 + 2048 * new))
check "20 scans grew the file by $grown bytes (< 256 KiB + 16 KiB x $new new processes)" \
	test "$grown" -lt $((262144 + 16384 * new))
check "history grew by the new processes only ($((inst_after - inst_before)) instances, $live live)" \
	test $((inst_after - inst_before)) -lt $((live * 2))

# 4. One writer; readers read while it writes.
"$bin/daemoneye-agent" --set app.state_dir="$tmp/state" --set app.scan_interval_ms=1000 >/dev/null 2>"$tmp/loop.err" &
agent=$!
pids+=("$agent")
for _ in $(seq 100); do grep -q "started" "$tmp/loop.err" && break; sleep 0.05; done
sleep 0.5
"$bin/daemoneye-agent" --once --set app.state_dir="$tmp/state" >/dev/null 2>"$tmp/e"; rc=$?
check "a second agent is refused (rc=$rc)" test "$rc" != 0
check "with a clear message naming the first" grep -q "already open for writing by another process (pid $agent" "$tmp/e"
okreads=0
for _ in $(seq 10); do cli processes --live --format ndjson >/dev/null 2>&1 && okreads=$((okreads + 1)); sleep 0.1; done
check "the CLI reads while the agent writes ($okreads/10)" test "$okreads" = 10
kill "$agent"; wait "$agent"
check "the lock is released on exit" "$bin/daemoneye-agent" --once --set app.state_dir="$tmp/state"

# 5. Faults on real file systems (root only).
if [ "$(id -u)" != 0 ]; then
	echo "ok - # SKIP disk-full and read-only tests: need root to mount (running as $(id -un))"
	echo "integration_store: $fails failed"
	[ "$fails" = 0 ]
	exit
fi

# 5a. Disk full: a 4 MiB tmpfs, filled while the agent runs, then freed.
mkdir -p "$tmp/full"
mount -t tmpfs -o size=4m tmpfs "$tmp/full" && mounts+=("$tmp/full")
"$bin/daemoneye-agent" --set app.state_dir="$tmp/full/state" --set app.scan_interval_ms=1000 >/dev/null 2>"$tmp/full.err" &
agent=$!
pids+=("$agent")
fdb=$tmp/full/state/events.sqlite
for _ in $(seq 100); do
	n=$(sqlite3 -readonly "$fdb" "SELECT count(*) FROM scans WHERE status='ok'" 2>/dev/null)
	[ "${n:-0}" -ge 2 ] && break
	sleep 0.1
done
check "agent on a small tmpfs ran ok scans ($n)" test "${n:-0}" -ge 2
[ "${n:-0}" -ge 2 ] || sed "s/^/#   /" "$tmp/full.err" | head -n 20
ok_before=$(sqlite3 -readonly "$fdb" "SELECT count(*) FROM scans WHERE status='ok'")
inst_before=$(sqlite3 -readonly "$fdb" "SELECT count(*) FROM process_instances")
dd if=/dev/zero of="$tmp/full/filler" bs=64k 2>/dev/null
# churn that needs room: 150 processes with 4 KiB of arguments each
zeros=$(printf ' 0%.0s' $(seq 2000))
churn=()
for i in $(seq 150); do sleep 300 $zeros & churn+=($!); pids+=($!); done
for _ in $(seq 100); do grep -q "failed" "$tmp/full.err" && break; sleep 0.1; done
check "a scan on the full disk is reported failed" grep -q "scan.* failed: .*disk is full" "$tmp/full.err"
sleep 1.5
check "the agent keeps running" kill -0 "$agent"
for p in "${churn[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
rm -f "$tmp/full/filler"
for _ in $(seq 100); do
	n=$(sqlite3 -readonly "$fdb" "SELECT count(*) FROM scans WHERE status='ok'" 2>/dev/null)
	[ "${n:-0}" -gt "$ok_before" ] && break
	sleep 0.1
done
check "with room again the next scan succeeds ($n > $ok_before ok scans)" test "${n:-0}" -gt "$ok_before"
kill "$agent"; wait "$agent"
check "after the full disk: integrity ok" test "$(sqlite3 -readonly "$fdb" "PRAGMA integrity_check")" = ok
check "earlier history intact" test "$(sqlite3 -readonly "$fdb" "SELECT count(*) FROM process_instances")" -ge "$inst_before"

# 5b. Read-only: ext4 on a loop device turns read-only under the agent.
truncate -s 32M "$tmp/ext4.img"
if ! mkfs.ext4 -q -F "$tmp/ext4.img" 2>/dev/null || ! loopdev=$(losetup -f --show "$tmp/ext4.img" 2>/dev/null); then
	echo "ok - # SKIP read-only test: no loop device or mkfs.ext4 here"
else
	mkdir -p "$tmp/ro"
	mount -o errors=remount-ro "$loopdev" "$tmp/ro" && mounts+=("$tmp/ro")
	"$bin/daemoneye-agent" --set app.state_dir="$tmp/ro/state" --set app.scan_interval_ms=1000 >/dev/null 2>"$tmp/ro.err" &
	agent=$!
	pids+=("$agent")
	rdb=$tmp/ro/state/events.sqlite
	for _ in $(seq 100); do
		n=$(sqlite3 -readonly "$rdb" "SELECT count(*) FROM scans WHERE status='ok'" 2>/dev/null)
		[ "${n:-0}" -ge 2 ] && break
		sleep 0.1
	done
	check "agent on ext4 ran ok scans ($n)" test "${n:-0}" -ge 2
	# what reached the disk must survive (synchronous=NORMAL: commits since
	# the last checkpoint or sync may be lost in a crash, never corrupted)
	sync -f "$tmp/ro/state"
	# the kernel's own error path: ext4 remounts itself read-only
	echo 1 >"/sys/fs/ext4/$(basename "$loopdev")/trigger_fs_error"
	for _ in $(seq 100); do [ "$(grep -c "failed" "$tmp/ro.err")" -ge 2 ] && break; sleep 0.1; done
	check "scans on the read-only file system are reported failed" grep -qE "scan.* failed: .*(Read-only file system|readonly|read-only|disk I/O error)" "$tmp/ro.err"
	grep -E "scan.* failed" "$tmp/ro.err" | head -n 3
	check "and retried each cycle ($(grep -c failed "$tmp/ro.err") failures)" test "$(grep -c "failed" "$tmp/ro.err")" -ge 2
	check "the agent keeps running" kill -0 "$agent"
	kill "$agent"; wait "$agent"
	umount "$tmp/ro"
	mount -o errors=remount-ro "$loopdev" "$tmp/ro"
	check "after the read-only episode: integrity ok" test "$(sqlite3 -readonly "$rdb" "PRAGMA integrity_check")" = ok
	n=$(sqlite3 -readonly "$rdb" "SELECT count(*) FROM scans WHERE status='ok'" 2>&1)
	check "the ok scans are still there ($n)" test "$n" -ge 2
	"$bin/daemoneye-agent" --once --set app.state_dir="$tmp/ro/state" >/dev/null 2>"$tmp/e"
	rc=$?
	check "writable again: the agent carries on with the same store (rc=$rc)" test $rc = 0
	[ "$rc" = 0 ] || sed 's/^/#   /' "$tmp/e"
fi

echo "integration_store: $fails failed"
[ "$fails" = 0 ]
