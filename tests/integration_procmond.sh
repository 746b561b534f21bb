#!/bin/bash
# integration_procmond.sh BINDIR — procmond as a program: --once JSON
# against ps (pids, ppid, name, exe, uid, argv), a hostile process stored
# exactly, the IPC channel driven by an independent Python client (frames,
# CRC32, a full scan) and malformed frames closing it with a logged reason.
set -u
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/de-it-procmond-XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
ok() { echo "ok - $*"; }
bad() { echo "not ok - $*"; fails=$((fails + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
export HOME=$tmp/home
mkdir -p "$HOME"
for v in $(env | grep -o '^DAEMONEYE_[A-Za-z0-9_]*'); do unset "$v"; done

# 1. The live process set against ps, read before and after procmond.
ps -eww -o pid=,ppid=,uid=,comm=,args= >"$tmp/ps1"
"$bin/procmond" --once --output json --set collection.mask_command_line=false >"$tmp/pm.json" 2>"$tmp/pm.err"
rc=$?
ps -eww -o pid=,ppid=,uid=,comm=,args= >"$tmp/ps2"
check "procmond --once exits 0 (rc=$rc)" test "$rc" = 0
check "procmond --once prints nothing on stderr" test ! -s "$tmp/pm.err"
python3 "$here/compare_ps.py" "$tmp/ps1" "$tmp/ps2" "$tmp/pm.json" >"$tmp/cmp" 2>&1
rc=$?
check "procmond agrees with ps on pid, ppid, name, exe, uid, argv ($(tail -n1 "$tmp/cmp"))" test "$rc" = 0
[ "$rc" = 0 ] || cat "$tmp/cmp"

# 2. A hostile process: newline, quote, backslash, control bytes, invalid
# UTF-8 in argv, a path with spaces; exact bytes come back via *_raw.
mkdir -p "$tmp/dir with space"
cp /bin/sh "$tmp/dir with space/sl (deleted)"
# `read x` on a FIFO we hold open: the shell waits with no child of its own
mkfifo "$tmp/fifo"
exec 7<>"$tmp/fifo"
"$tmp/dir with space/sl (deleted)" -c "read x" "$(printf 'a\nb')" 'q"b\s' "$(printf '\001\033[31m')" "$(printf '\377\376')" --token hunter2 <"$tmp/fifo" >/dev/null 2>&1 &
victim=$!
pids+=("$victim")
for _ in $(seq 200); do [ "$(readlink /proc/$victim/exe)" = "$tmp/dir with space/sl (deleted)" ] && break; sleep 0.02; done
"$bin/procmond" --once --output json >"$tmp/pm2.json" 2>/dev/null
check "hostile process recorded exactly" python3 - "$tmp/pm2.json" "$victim" "$tmp/dir with space/sl (deleted)" <<'PY'
import json, sys, base64
path, pid, exe = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for line in open(path, encoding="utf-8"):
    r = json.loads(line)
    if r["pid"] != pid:
        continue
    raw = r.get("command_line_raw")
    argv = [base64.b64decode(a) for a in raw] if raw else [a.encode() for a in r["command_line"]]
    want = [exe.encode(), b"-c", b"read x", b"a\nb", b'q"b\\s', b"\x01\x1b[31m", b"\xff\xfe", b"--token", b"********"]
    assert argv == want, argv
    assert r["executable_path"] == exe and r["file_exists"], r
    assert r["platform_data"]["exe_deleted"] is False
    assert len(r["executable_hash"]) == 64 and r["hash_algorithm"] == "sha256"
    sys.exit(0)
sys.exit("pid not found")
PY
kill "$victim"; wait "$victim" 2>/dev/null
exec 7>&-

# 3. The IPC channel, driven by an independent client.
python3 "$here/ipc_client.py" "$bin/procmond" >"$tmp/ipc" 2>&1
rc=$?
check "IPC: HELLO, a full scan of PROCESS frames and SCAN_DONE, CRCs right" test "$rc" = 0
[ "$rc" = 0 ] || cat "$tmp/ipc"
for kind in badcrc oversized unknown truncated; do
	python3 "$here/ipc_client.py" "$bin/procmond" "$kind" >"$tmp/ipc.$kind" 2>&1
	rc=$?
	check "IPC: a $kind frame closes the channel with a logged reason" test "$rc" = 0
	[ "$rc" = 0 ] || cat "$tmp/ipc.$kind"
done

# 4. Usage errors.
"$bin/procmond" --output xml >/dev/null 2>&1; rc=$?
check "unknown output exits 64 (rc=$rc)" test "$rc" = 64
"$bin/procmond" --ipc-fd 999 >/dev/null 2>&1; rc=$?
check "--ipc-fd on a closed descriptor exits 64 (rc=$rc)" test "$rc" = 64
"$bin/procmond" --once --set collection.max_hash_size_mb=lots >/dev/null 2>"$tmp/e"; rc=$?
check "bad collection setting exits 78 (rc=$rc)" test "$rc" = 78

echo "integration_procmond: $fails failed"
[ "$fails" = 0 ]
