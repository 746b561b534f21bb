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
. "$(dirname "$0")/lib.sh"
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
rc=$?
check "agent --once exits 0 (rc=$rc)" test "$rc" = 0
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
# evil-sh has exec'd (its own image, the hostile argv in place)
evil_ready() {
	[ "$(readlink "/proc/$victim/exe")" = "$tmp/evil-sh" ] && grep -q "red" "/proc/$victim/cmdline"
}
check "the hostile shell is running" wait_for 30 evil_ready
"$bin/daemoneye-agent" --once --set app.state_dir="$tmp/state" >/dev/null 2>&1
rc=$?
check "agent --once over the hostile process exits 0 (rc=$rc)" test "$rc" = 0
COLUMNS=70 cli processes --pid "$victim" >"$tmp/w"; rc=$?
check "COLUMNS=70: processes exits 0 (rc=$rc) with the header and its row" test "$rc" = 0 -a "$(wc -l <"$tmp/w")" = 2
check "COLUMNS=70: no line wider than 70" test "$(awk '{ if (length($0) > m) m = length($0) } END { print m }' "$tmp/w")" -le 70
cli processes --pid "$victim" >"$tmp/w2"; rc=$?
check "processes --pid exits 0 (rc=$rc)" test "$rc" = 0
check "not a terminal and no COLUMNS: the whole line" grep -q "$long" "$tmp/w2"
check "escape bytes are escaped, not sent" grep -q 'fifo \\x1b\[31mred\\nline' "$tmp/w2"
check "no raw ESC in the table" bash -c "! grep -q $'\033' '$tmp/w2'"
check "json keeps the exact argument" python3 -c '
import json,sys; r=json.loads(open(sys.argv[1]).readline()); assert r["argv"][4]=="\x1b[31mred\nline", r["argv"][:5]' <(cli processes --pid "$victim" --format ndjson)
kill "$victim"; wait "$victim" 2>/dev/null
"$bin/daemoneye-agent" --once --set app.state_dir="$tmp/state" >/dev/null 2>&1
rc=$?
check "agent --once after its exit exits 0 (rc=$rc)" test "$rc" = 0
cli processes --pid "$victim" --format ndjson >"$tmp/gone"
check "an exited process stays in history with its exit time" python3 -c '
import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; assert len(r)==1 and not r[0]["alive"] and r[0]["exited_at"]' "$tmp/gone"
# On a terminal: its width, and colour unless NO_COLOR or TERM=dumb.
if command -v script >/dev/null; then
	clicmd="$bin/daemoneye-cli --set app.state_dir=$tmp/state processes --limit 5"
	TERM=xterm script -qec "stty cols 50; $clicmd" /dev/null >"$tmp/tty" 2>&1; rc=$?
	check "on a terminal: processes exits 0 (rc=$rc) with the header and five rows" \
		test "$rc" = 0 -a "$(grep -c . "$tmp/tty")" = 6
	check "a 50-column terminal gets lines of at most 50" test "$(tr -d '\r' <"$tmp/tty" | sed 's/\x1b\[[0-9;]*m//g' | awk '{ if (length($0) > m) m = length($0) } END { print m }')" -le 50
	check "colour on a terminal" grep -q $'\033\[1m' "$tmp/tty"
	NO_COLOR=1 TERM=xterm script -qec "$clicmd" /dev/null >"$tmp/tty2" 2>&1; rc=$?
	check "NO_COLOR: processes exits 0 (rc=$rc) with its rows" test "$rc" = 0 -a "$(grep -c . "$tmp/tty2")" = 6
	check "NO_COLOR: no colour" bash -c "! grep -q $'\033\\[' '$tmp/tty2'"
	TERM=dumb script -qec "$clicmd" /dev/null >"$tmp/tty3" 2>&1; rc=$?
	check "TERM=dumb: processes exits 0 (rc=$rc) with its rows" test "$rc" = 0 -a "$(grep -c . "$tmp/tty3")" = 6
	check "TERM=dumb: no colour" bash -c "! grep -q $'\033\\[' '$tmp/tty3'"
else
	echo "ok - # SKIP terminal tests: no script(1)"
fi
cli stats >"$tmp/stats"; rc=$?
check "stats exits 0" test "$rc" = 0
check "stats shows schema, instances and scans" grep -q "^process instances" "$tmp/stats"
cli stats --format json >"$tmp/stats.json"; rc=$?
check "stats --format json exits 0 (rc=$rc)" test "$rc" = 0
check "stats json" python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); assert s["schema_version"]>=7 and s["scans"]==3' "$tmp/stats.json"

# 3. Twenty scans of a quiet host grow the store by kilobytes.
# A shared machine is not quiet (other tests, builds): the rows of the
# processes first seen during the twenty scans are history, not scan
# overhead, and a compiler's argv alone can be 5 KB.  So the bytes of those
# rows (their text columns, plus a fixed allowance per row for its numbers,
# record header and index entries) are measured and set aside, and what the
# scans wrote beyond them is held to a fixed bound.  Rewriting a row that did
# not change writes the same bytes, which no byte count sees: three sleeping
# processes of ours, steady throughout, must keep the row the scan before
# the twenty wrote, with no history of their own.
steady=()
for i in 1 2 3; do sleep 300 & steady+=($!); pids+=($!); done
sleeping() { local p; for p in "${steady[@]}"; do [ "$(awk '{print $3}' "/proc/$p/stat")" = S ] && [ "$(readlink "/proc/$p/exe")" = "$(readlink -f /bin/sleep)" ] || return 1; done; }
check "three steady sleepers are asleep" wait_for 30 sleeping
"$bin/daemoneye-agent" --once --set app.state_dir="$tmp/state" --set detection.builtin_rules=false >/dev/null 2>&1
rc=$?
check "the scan before the twenty exits 0 (rc=$rc)" test "$rc" = 0
sqlite3 "$db" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
s0=$(sqlite3 -readonly "$db" "SELECT max(id) FROM scans")
steady_list=$(IFS=,; echo "${steady[*]}")
check "the sleepers are in the snapshot, written by scan $s0" \
	test "$(sqlite3 -readonly "$db" "SELECT count(*) FROM processes WHERE pid IN ($steady_list) AND scan_id = $s0")" = 3
before=$(stat -c %s "$db")
payload_before=$(sqlite3 -readonly "$db" "SELECT sum(payload) FROM dbstat")
inst_before=$(sqlite3 -readonly "$db" "SELECT count(*) FROM process_instances")
# (rules off: alerts are the alerting issue's growth, not the process history's)
failed=0
for i in $(seq 20); do
	"$bin/daemoneye-agent" --once --set app.state_dir="$tmp/state" --set detection.builtin_rules=false >/dev/null 2>&1 ||
		failed=$((failed + 1))
done
check "the twenty agent --once runs all exit 0 ($failed did not)" test "$failed" = 0
sqlite3 "$db" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
after=$(stat -c %s "$db")
payload_after=$(sqlite3 -readonly "$db" "SELECT sum(payload) FROM dbstat")
grown=$((after - before))
inst_after=$(sqlite3 -readonly "$db" "SELECT count(*) FROM process_instances")
live=$(sqlite3 -readonly "$db" "SELECT count(*) FROM processes")
new=$((inst_after - inst_before))
wrote=$((payload_after - payload_before))
# A row's bytes: its text columns, plus (measured on this schema, rounded
# up) what its numbers, record header and index entries take: ~70 bytes and
# the name again (indexed) for a snapshot row, ~90 and the name for an
# exited instance (three indexes), ~70 for a change row, ~40 for a sample.
tb='coalesce(length(CAST(%s AS BLOB)), 0)'
text="$(printf "$tb" name) + $(printf "$tb" executable_path) + $(printf "$tb" command_line) + \
$(printf "$tb" argv_json) + $(printf "$tb" platform_data) + $(printf "$tb" executable_hash) + \
$(printf "$tb" hash_algorithm) + $(printf "$tb" user_id)"
read -r n_new own <<<"$(sqlite3 -readonly -separator ' ' "$db" "
WITH new(inst) AS (SELECT instance_id FROM processes WHERE first_scan_id > $s0
                   UNION SELECT id FROM process_instances WHERE first_scan_id > $s0)
SELECT (SELECT count(*) FROM new),
  (SELECT coalesce(sum($text + $(printf "$tb" id) + $(printf "$tb" name) + 80), 0)
     FROM processes WHERE first_scan_id > $s0)
  + (SELECT coalesce(sum($text + $(printf "$tb" name) + 96), 0)
     FROM process_instances WHERE first_scan_id > $s0)
  + (SELECT coalesce(sum($text + 80), 0) FROM process_changes WHERE instance_id IN new)
  + (SELECT count(*) * 48 FROM process_samples WHERE instance_id IN new)
  -- an instance from before that exited: its snapshot row moved to history
  -- (about as long as it was; the new index entries)
  + (SELECT count(*) * 32 FROM process_instances WHERE first_scan_id <= $s0 AND exit_scan_id > $s0)")"
rest=$((wrote - own))
check "20 scans wrote $wrote bytes of rows, $own of them the $n_new new processes' own: the rest ($rest) < 32 KiB" \
	test "$rest" -lt 32768
check "20 scans grew the file by $grown bytes (< 256 KiB + 16 KiB x $new new processes)" \
	test "$grown" -lt $((262144 + 16384 * new))
# history gains an instance when it exits: none of those may still be
# running (the same pid with the same start time, read from /proc here)
sqlite3 -readonly -separator ' ' "$db" "SELECT pid, coalesce(start_time, -1) FROM process_instances
	WHERE exit_scan_id > $s0" >"$tmp/exited"
check "history grew by exited processes only ($((inst_after - inst_before)) instances, $live live): none still runs" \
	python3 - "$tmp/exited" <<'PY'
import os, sys
hz = os.sysconf("SC_CLK_TCK")
btime = next(int(l.split()[1]) for l in open("/proc/stat") if l.startswith("btime "))
for line in open(sys.argv[1]):
    pid, start = map(int, line.split())
    try:
        stat = open("/proc/%d/stat" % pid).read()
    except OSError:
        continue  # gone
    ticks = int(stat[stat.rindex(")") + 2:].split()[19])
    # the store's start_time: ms since the epoch, from the same tick count
    if start < 0 or abs(btime * 1000 + ticks * 1000 // hz - start) <= 1000 // hz + 1:
        sys.exit("pid %d is recorded exited but still runs (start %d)" % (pid, start))
PY
check "and each exit is recorded once" test "$(sqlite3 -readonly "$db" "SELECT count(*) - count(DISTINCT pid || ':' || start_time)
	FROM process_instances WHERE exit_scan_id > $s0")" = 0
check "a steady process's row is never rewritten (the sleepers' rows are still scan $s0's)" \
	test "$(sqlite3 -readonly "$db" "SELECT group_concat(scan_id) FROM processes WHERE pid IN ($steady_list)")" = "$s0,$s0,$s0"
check "and has no history of its own (changes, samples, a false exit)" \
	test "$(sqlite3 -readonly "$db" "SELECT (SELECT count(*) FROM process_changes WHERE instance_id IN
		(SELECT instance_id FROM processes WHERE pid IN ($steady_list)))
	  + (SELECT count(*) FROM process_samples WHERE instance_id IN
		(SELECT instance_id FROM processes WHERE pid IN ($steady_list)))
	  + (SELECT count(*) FROM process_instances WHERE pid IN ($steady_list))")" = 0
if [ "$rest" -ge 32768 ]; then
	echo "# rows added in the twenty scans, by table:"
	sqlite3 -readonly "$db" "SELECT 'process_changes', count(*) FROM process_changes WHERE scan_id > $s0
		UNION ALL SELECT 'process_samples', count(*) FROM process_samples WHERE scan_id > $s0
		UNION ALL SELECT 'scans', count(*) FROM scans WHERE id > $s0" | sed 's/^/#   /'
fi
for p in "${steady[@]}"; do kill "$p"; wait "$p" 2>/dev/null; done

# 4. One writer; readers read while it writes.
"$bin/daemoneye-agent" --set app.state_dir="$tmp/state" --set app.scan_interval_ms=1000 >/dev/null 2>"$tmp/loop.err" &
agent=$!
pids+=("$agent")
# the store is open (and locked) once the agent says it started
check "the agent starts" wait_for 60 grep -q "started" "$tmp/loop.err"
"$bin/daemoneye-agent" --once --set app.state_dir="$tmp/state" >/dev/null 2>"$tmp/e"; rc=$?
check "a second agent is refused with 74 (rc=$rc)" test "$rc" = 74
# the writer is the first agent's worker (docs/process-model.md)
worker=$(pgrep -P "$agent" -f '^daemoneye-worker' | head -n1)
check "with a clear message naming the first's worker" grep -q "already open for writing by another process (pid ${worker:-none}" "$tmp/e"
# read, again and again, until the agent has committed two more scans
finished_scans() {
	sqlite3 -readonly -cmd ".timeout 10000" "$db" "SELECT count(*) FROM scans WHERE source = 'poll' AND ended_at IS NOT NULL" 2>/dev/null
}
s1=$(finished_scans)
reads=0 okreads=0 s2=
while [ "$reads" -lt 2000 ]; do
	cli processes --live --format ndjson >/dev/null 2>&1 && okreads=$((okreads + 1))
	reads=$((reads + 1))
	s2=$(finished_scans)
	[ -n "$s1" ] && [ "${s2:-0}" -ge $((s1 + 2)) ] && break
done
check "the CLI reads while the agent writes two full scans ($okreads/$reads reads, scans $s1 -> $s2)" \
	test -n "$s1" -a "$okreads" = "$reads" -a "${s2:-0}" -ge $((${s1:-0} + 2))
stop "$agent"
rc=$?
check "the agent stops with 0 on SIGTERM (rc=$rc)" test "$rc" = 0
"$bin/daemoneye-agent" --once --set app.state_dir="$tmp/state" >/dev/null 2>"$tmp/e"
rc=$?
check "the lock is released on exit (rc=$rc)" test "$rc" = 0

# 5. Faults on real file systems (root only).
if [ "$(id -u)" != 0 ]; then
	echo "ok - # SKIP disk-full and read-only tests: need root to mount (running as $(id -un))"
	echo "integration_store: $fails failed"
	[ "$fails" = 0 ]
	exit
fi

# ok_scans DB: the number of scans with status ok (0 before the file exists)
ok_scans() { local n; n=$(sqlite3 -readonly "$1" "SELECT count(*) FROM scans WHERE status='ok'" 2>/dev/null); echo "${n:-0}"; }
ok_scans_over() { [ "$(ok_scans "$1")" -gt "$2" ]; }
failures_at_least() { [ "$(grep -c "scan.* failed" "$1")" -ge "$2" ]; }

# 5a. Disk full: a 4 MiB tmpfs, filled while the agent runs, then freed.
# Only on that tmpfs: when it cannot be mounted (or is not what was asked
# for) the test skips rather than fill the file system under $tmp, and the
# filler is bounded by the tmpfs's size whatever happens.
mkdir -p "$tmp/full"
full_ok=
if ! mount -t tmpfs -o size=4m de-test-full "$tmp/full" 2>"$tmp/mount.err"; then
	echo "ok - # SKIP disk-full test: cannot mount a 4 MiB tmpfs ($(head -c 200 "$tmp/mount.err"))"
else
	mounts+=("$tmp/full")
	if [ "$(stat -f -c %T "$tmp/full")" = tmpfs ] && [ $(($(stat -f -c '%b * %S' "$tmp/full"))) -le $((4 << 20)) ]; then
		full_ok=1
	else
		bad "disk-full test: $tmp/full is not the 4 MiB tmpfs just mounted ($(stat -f -c '%T, %b blocks of %S' "$tmp/full")); not filling it"
	fi
fi
if [ -n "$full_ok" ]; then
	"$bin/daemoneye-agent" --set app.state_dir="$tmp/full/state" --set app.scan_interval_ms=1000 >/dev/null 2>"$tmp/full.err" &
	agent=$!
	pids+=("$agent")
	fdb=$tmp/full/state/events.sqlite
	check "agent on a small tmpfs ran ok scans" wait_for 60 ok_scans_over "$fdb" 1
	[ "$(ok_scans "$fdb")" -ge 2 ] || sed "s/^/#   /" "$tmp/full.err" | head -n 20
	ok_before=$(ok_scans "$fdb")
	inst_before=$(sqlite3 -readonly "$fdb" "SELECT count(*) FROM process_instances")
	# the agent gives back what a failed commit's WAL held (that is the
	# point), so what it frees after the filler stopped is filled again
	fill_up() {
		dd if=/dev/zero of="$tmp/full/filler" bs=64k count=64 oflag=append conv=notrunc 2>/dev/null
		[ "$(stat -f -c %a "$tmp/full")" = 0 ]
	}
	check "the tmpfs is full" wait_for 30 fill_up
	# churn that needs room: 150 processes with 4 KiB of arguments each
	zeros=$(printf ' 0%.0s' $(seq 2000))
	churn=()
	for i in $(seq 150); do sleep 300 $zeros & churn+=($!); pids+=($!); done
	check "a scan on the full disk is reported failed" wait_for 60 grep -q "scan.* failed: .*disk is full" "$tmp/full.err"
	# the next cycle comes and fails too: the agent lived through the first
	check "the agent keeps running, and scanning" wait_for 60 failures_at_least "$tmp/full.err" 2
	check "(it is still there)" kill -0 "$agent"
	for p in "${churn[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	rm -f "$tmp/full/filler"
	check "with room again the next scan succeeds (more than $ok_before ok scans)" \
		wait_for 60 ok_scans_over "$fdb" "$ok_before"
	ok_scans_over "$fdb" "$ok_before" || { df "$tmp/full"; ls -la "$tmp/full" "$tmp/full/state"; tail -n 5 "$tmp/full.err"; } | sed 's/^/#   /'
	stop "$agent"
	rc=$?
	check "the agent stops with 0 on SIGTERM (rc=$rc)" test "$rc" = 0
	check "after the full disk: integrity ok" test "$(sqlite3 -readonly "$fdb" "PRAGMA integrity_check")" = ok
	check "earlier history intact" test "$(sqlite3 -readonly "$fdb" "SELECT count(*) FROM process_instances")" -ge "$inst_before"
fi

# 5b. Read-only: ext4 on a loop device turns read-only under the agent.
truncate -s 32M "$tmp/ext4.img"
mkdir -p "$tmp/ro"
if ! mkfs.ext4 -q -F "$tmp/ext4.img" 2>/dev/null || ! loopdev=$(losetup -f --show "$tmp/ext4.img" 2>/dev/null); then
	echo "ok - # SKIP read-only test: no loop device or mkfs.ext4 here"
elif ! mount -o errors=remount-ro "$loopdev" "$tmp/ro" 2>"$tmp/mount.err"; then
	echo "ok - # SKIP read-only test: cannot mount ext4 from $loopdev ($(head -c 200 "$tmp/mount.err"))"
else
	mounts+=("$tmp/ro")
	"$bin/daemoneye-agent" --set app.state_dir="$tmp/ro/state" --set app.scan_interval_ms=1000 >/dev/null 2>"$tmp/ro.err" &
	agent=$!
	pids+=("$agent")
	rdb=$tmp/ro/state/events.sqlite
	check "agent on ext4 ran ok scans" wait_for 60 ok_scans_over "$rdb" 1
	# what reached the disk must survive (synchronous=NORMAL: commits since
	# the last checkpoint or sync may be lost in a crash, never corrupted)
	sync -f "$tmp/ro/state"
	# the kernel's own error path: ext4 remounts itself read-only
	echo 1 >"/sys/fs/ext4/$(basename "$loopdev")/trigger_fs_error"
	wait_for 60 failures_at_least "$tmp/ro.err" 2
	check "scans on the read-only file system are reported failed" grep -qE "scan.* failed: .*(Read-only file system|readonly|read-only|disk I/O error)" "$tmp/ro.err"
	grep -E "scan.* failed" "$tmp/ro.err" | head -n 3
	check "and retried each cycle ($(grep -c "scan.* failed" "$tmp/ro.err") failures)" failures_at_least "$tmp/ro.err" 2
	check "the agent keeps running" kill -0 "$agent"
	stop "$agent"
	rc=$?
	check "the agent stops with 0 on SIGTERM (rc=$rc)" test "$rc" = 0
	umount "$tmp/ro"
	check "ext4 mounts again" mount -o errors=remount-ro "$loopdev" "$tmp/ro"
	check "after the read-only episode: integrity ok" test "$(sqlite3 -readonly "$rdb" "PRAGMA integrity_check")" = ok
	n=$(sqlite3 -readonly "$rdb" "SELECT count(*) FROM scans WHERE status='ok'" 2>&1)
	check "the ok scans are still there ($n)" test "$n" -ge 2
	"$bin/daemoneye-agent" --once --set app.state_dir="$tmp/ro/state" >/dev/null 2>"$tmp/e"
	rc=$?
	check "writable again: the agent carries on with the same store (rc=$rc)" test "$rc" = 0
	[ "$rc" = 0 ] || sed 's/^/#   /' "$tmp/e"
fi

echo "integration_store: $fails failed"
[ "$fails" = 0 ]
