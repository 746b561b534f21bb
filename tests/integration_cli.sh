#!/bin/bash
# integration_cli.sh BINDIR — daemoneye-cli config show/validate and procmond
# standalone: output, layers visible with --origins, exit codes.
set -u
. "$(dirname "$0")/lib.sh"
bin=$1
tmp=$(mktemp -d /tmp/de-it-cli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
hermetic "$tmp"

cli=$bin/daemoneye-cli
"$cli" config show >"$tmp/show"; rc=$?
check "config show exits 0 (rc=$rc)" test "$rc" = 0
check "config show prints the default interval" grep -q '^  scan_interval_ms: 30000$' "$tmp/show"
printf 'app:\n  scan_interval_ms: 20000\n' >"$tmp/c.yaml"
DAEMONEYE_DATABASE__RETENTION_DAYS=9 "$cli" -c "$tmp/c.yaml" --set logging.level=debug config show --origins >"$tmp/show"
rc=$?
check "config show --origins exits 0 (rc=$rc)" test "$rc" = 0
check "file layer with origin" grep -q "scan_interval_ms: 20000  # $tmp/c.yaml:2:21" "$tmp/show"
check "env layer with origin" grep -q "retention_days: 9  # environment DAEMONEYE_DATABASE__RETENTION_DAYS" "$tmp/show"
check "--set layer with origin" grep -q 'level: "debug"  # --set logging.level' "$tmp/show"
"$cli" config show --format json >"$tmp/j"
rc=$?
check "config show --format json exits 0 (rc=$rc)" test "$rc" = 0
check "config show --format json is JSON" python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["app"]["scan_interval_ms"]==30000' "$tmp/j"
"$cli" config validate >/dev/null; rc=$?
check "config validate exits 0 (rc=$rc)" test "$rc" = 0
"$cli" --set database.wal_mode=perhaps config validate 2>"$tmp/e"; rc=$?
check "config validate on a bad value exits 78 (rc=$rc)" test "$rc" = 78
check "the message names the key" grep -q "database.wal_mode" "$tmp/e"
"$cli" config show --format xml 2>/dev/null; rc=$?
check "unknown format exits 64 (rc=$rc)" test "$rc" = 64
"$cli" frobnicate 2>/dev/null; rc=$?
check "unknown command exits 64 (rc=$rc)" test "$rc" = 64
"$cli" 2>/dev/null; rc=$?
check "no command exits 64 (rc=$rc)" test "$rc" = 64
for c in stats processes connections "config validate"; do
	# shellcheck disable=SC2086 # "config validate" is two words on purpose
	"$cli" $c stray 2>"$tmp/e"; rc=$?
	check "$c with a stray operand exits 64 (rc=$rc)" test "$rc" = 64
	check "$c names the stray operand" grep -q "${c%% *}: unexpected argument 'stray'" "$tmp/e"
done
check "cli --help" "$cli" --help

# procmond standalone
"$bin/procmond" --once --output json >"$tmp/p" 2>"$tmp/pe"; rc=$?
check "procmond --once exits 0 (rc=$rc)" test "$rc" = 0
check "procmond prints parseable ProcessRecords including itself" python3 - "$tmp/p" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert len(recs) > 1
assert any(r["name"] == "procmond" for r in recs)
for r in recs:
    for k in ("id", "scan_id", "collection_time", "pid", "name", "command_line", "accessible", "file_exists"):
        assert k in r, k
PY
"$bin/procmond" --once --output text >"$tmp/pt"; rc=$?
check "procmond --once --output text exits 0 (rc=$rc)" test "$rc" = 0
check "procmond text output" test -s "$tmp/pt"
"$bin/procmond" --output yaml 2>/dev/null; rc=$?
check "procmond unknown output exits 64 (rc=$rc)" test "$rc" = 64

# health: the summaries are as of the report's writing, and the table says
# when that was (a report written 7 s ago, by hand: no agent here)
mkdir -p "$tmp/hs"
python3 - "$tmp/hs/health.json" <<'PY'
import json, sys, time
now = int(time.time() * 1000)
json.dump({"version": 1, "updated_at": now - 7000, "stale_after_ms": 120000, "status": "ok",
           "components": [{"name": "parent", "status": "ok", "summary": "pid 1, up 0 s",
                           "details": {}}]}, open(sys.argv[1], "w"))
PY
"$cli" --set app.state_dir="$tmp/hs" health >"$tmp/h"; rc=$?
check "health on a report of 7 s ago exits 0 (rc=$rc)" test "$rc" = 0
check "health says the report's age on its last line" \
	bash -c "tail -n 1 '$tmp/h' | grep -Eq '^report +written ([7-9]|[1-5][0-9]) s ago\$'"
check "  after the components and the overall status" \
	bash -c "grep -q '^parent .*pid 1, up 0 s' '$tmp/h' && grep -q '^overall  *ok' '$tmp/h'"

echo "integration_cli: $fails failed"
[ "$fails" = 0 ]
