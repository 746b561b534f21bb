#!/bin/bash
# integration_rulecache.sh BINDIR — the full cycle leaves out the rules whose
# tables did not change since they ran (src/agent/rulecache.c) without
# changing what is alerted.  In a PID namespace of its own (a quiet host:
# the agent and one marker process, process events off), a marker rule
# alerts once; while only the values of running processes change, the
# cycles leave the identity rules out (the log says so) and the alert stays
# open (nothing resolved, nothing raised again); when the marker exits, the
# rule runs again and its alert is resolved (the alert manager's count in
# the debug log: resolved alerts go only to sinks that ask for them).  As root (unshare --pid);
# skipped otherwise.
set -u
bin=$1
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d /tmp/de-it-rulecache-XXXXXX)
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
hermetic "$tmp/home"
if [ "$(id -u)" != 0 ] || ! unshare --pid --fork --mount-proc true 2>/dev/null; then
	ok "the rule cache # SKIP needs root and unshare --pid"
	echo "integration_rulecache: 0 failed"
	exit 0
fi
mark="de-it-rulecache-$$"
marker_rule "$tmp/mark.yaml" it-rulecache-mark "$mark"
set=(--set "app.state_dir=$tmp/state" --set collection.events=false --set logging.level=debug
	--set app.scan_interval_ms=1000 --set alerting.stdout.format=json)
cli=("$bin/daemoneye-cli" "${set[@]}")

# inside the namespace only the marker and the agent run (the waiting is
# done from outside: a test polling in there would be new processes each
# cycle); the agent and the marker are found from here by their command lines
unshare --pid --fork --mount-proc bash -c '
	bash -c "exec -a \"\$0\" sleep 600" "$1-target" &
	m=$!
	shift
	"$@"
	kill "$m" 2>/dev/null
	wait' inner "$mark" "$bin/daemoneye-agent" --rules "$tmp/mark.yaml" "${set[@]}" \
	>"$tmp/alerts.json" 2>"$tmp/agent.err" &
ns=$!
left() { [ "$(grep -c 'rules left out' "$tmp/agent.err" 2>/dev/null)" -ge 3 ]; }
check "inside the namespace the rules are left out (3 cycles)" wait_for 120 left ||
	grep -v debug "$tmp/agent.err" | sed 's/^/#   /' | head -20
grep -c 'rules left out' "$tmp/agent.err" >"$tmp/left.before"
pkill -f "^$mark-target" # ours: only this test's marker has this name
# (the alert manager's count: a resolved alert is sent only to sinks that ask)
resolved() { grep -q 'debug: alerts: 0 from the rules, .* [1-9][0-9]* resolved' "$tmp/agent.err"; }
check "the marker gone: its rule runs and resolves its alert" wait_for 120 resolved
agent=$(pgrep -f "^$bin/daemoneye-agent --rules $tmp/mark.yaml" | head -n1)
[ -n "$agent" ] && kill -TERM "$agent"
wait "$ns"
check "the identity rules were left out while nothing came or went ($(cat "$tmp/left.before") cycles)" \
	test "$(cat "$tmp/left.before")" -ge 3
"${cli[@]}" audit log --action alert.raised --format ndjson >"$tmp/raised.ndjson"
check "the marker alerted once (the left-out cycles raised nothing again)" python3 - "$tmp/raised.ndjson" <<'PY'
import json, sys
es = [json.loads(l)["payload"] for l in open(sys.argv[1])]
kinds = [e["kind"] for e in es if e["rule_id"] == "it-rulecache-mark"]
assert kinds == ["alert"], kinds
PY
check "  resolved once" test "$(grep -c 'debug: alerts: .* [1-9][0-9]* resolved' "$tmp/agent.err")" = 1
check "  stdout had the one alert" test "$(grep -c '"rule_id":"it-rulecache-mark"' "$tmp/alerts.json")" = 1

echo "integration_rulecache: $fails failed"
[ "$fails" = 0 ]
