#!/bin/bash
# integration_ledger.sh BINDIR — what the running service records in the
# audit ledger (docs/audit.md "What is recorded"), end to end through the
# real programs: `daemoneye-agent --once` with audit on and checkpoints
# signed by the privileged parent, then `daemoneye-cli audit verify` (with
# and without --pubkey) and the entries themselves: start with the
# configuration's hash, the rule set with each rule's SQL hash (checked
# against b3sum, an independent BLAKE3), the rule the sandbox refused, the
# scan, the alert on a marker process, its delivery, stop; an operator's
# `rules disable` recorded by the CLI and covered by the next run's signed
# checkpoint; each component's privileges, the scan's batch hash, a rule
# stopped by the sandbox, queries the CLI's sandbox refused, a secret on a
# command line masked; the CLI refusing a change it cannot record; a row tampered
# with the sqlite3 tool caught naming its sequence; a ledger at an
# audit.path of its own first made by root's CLI, still written by the
# worker.  As root and as nobody.
set -u
bin=$1
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d /tmp/de-it-ledger-XXXXXX)
chmod 755 "$tmp"
marker=
secretp=
cleanup() {
	[ -n "$marker" ] && stop "$marker" 2>/dev/null
	[ -n "$secretp" ] && stop "$secretp" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
hermetic "$tmp/home"
export LC_ALL=C

cli=$bin/daemoneye-cli
mark="de-it-ledger-$$"
marker_rule "$tmp/mark.yaml" it-ledger-mark "$mark"
# the SQL of the marker rule as its YAML block gives it (lib.sh's marker_rule)
printf "SELECT pid, name, executable_path, command_line FROM processes\nWHERE command_line LIKE '%%%s-%%'\n" \
	"$mark" >"$tmp/mark.sql"
cat >"$tmp/bad.yaml" <<'YAML'
rules:
  - id: it-ledger-writes
    name: a rule that writes
    description: the sandbox refuses it
    version: 1
    severity: low
    sql: DELETE FROM processes
YAML
chmod 644 "$tmp/bad.yaml"
# a rule the sandbox stops at run time (detection.rule_timeout_ms)
cat >"$tmp/slow.yaml" <<'YAML'
rules:
  - id: it-ledger-slow
    name: a rule that never ends
    description: the sandbox stops it
    version: 1
    severity: low
    sql: |
      SELECT pid, name FROM processes
      WHERE pid = -(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c)
YAML
chmod 644 "$tmp/slow.yaml"
# (exec -a: the marker in the command line of the very process that sleeps)
bash -c 'exec -a "$0" sleep 600' "$mark-target" &
marker=$!
# a marked process with a secret on its command line: masked in the ledger
secret="hunter2-$$"
python3 -c 'import time; time.sleep(600)' "$mark-secret" --password "$secret" &
secretp=$!

# ledger_run WHO DIR [RUN-AS...]: keys, one --once run and the checks on what it recorded
ledger_run() {
	local who=$1 dir=$2
	shift 2
	local run=("$@")
	local st=$dir/state set=(--set "app.state_dir=$dir/state" --set "detection.rules_dirs=[]")
	"${run[@]}" "$cli" keygen --out "$dir/keys" >/dev/null
	local agent=("$bin/daemoneye-agent" --once --rules "$tmp/mark.yaml" --rules "$tmp/bad.yaml"
		--rules "$tmp/slow.yaml" --set detection.rule_timeout_ms=300
		"${set[@]}" --set audit.enable_signatures=true
		--set "audit.private_key_path=$dir/keys/audit.key" --set alerting.stdout.format=json)
	"${run[@]}" "${agent[@]}" >"$dir/once.out" 2>"$dir/once.err"
	local rc=$?
	check "$who: agent --once with the ledger and signed checkpoints exits 0 (rc=$rc)" test "$rc" = 0 ||
		sed 's/^/#   /' "$dir/once.err"
	check "$who: the marker alert went to stdout" grep -q '"rule_id":"it-ledger-mark"' "$dir/once.out"
	"${run[@]}" "$cli" "${set[@]}" audit verify >"$dir/v" 2>&1
	rc=$?
	check "$who: audit verify exits 0 (rc=$rc)" test "$rc" = 0
	"${run[@]}" "$cli" "${set[@]}" audit verify --pubkey "$dir/keys/audit.pub" >"$dir/v" 2>&1
	rc=$?
	check "$who: audit verify --pubkey exits 0 (rc=$rc)" test "$rc" = 0
	check "$who: a checkpoint, its signature verified" grep -q '^checkpoints  [1-9][0-9]* (signatures verified)' "$dir/v"
	"${run[@]}" "$cli" "${set[@]}" audit log --format ndjson >"$dir/log.ndjson"
	local ids
	ids=$("${run[@]}" id -u)
	check "$who: the entries (start, rules, refused, alert, delivery, scan, privileges, stop)" \
		python3 - "$dir/log.ndjson" "$marker" "$(b3sum --raw "$tmp/mark.sql" | base64)" "$secretp" "$secret" "$ids" <<'PY'
import json, sys
es = [json.loads(l) for l in open(sys.argv[1])]
marker, sql_hash = int(sys.argv[2]), sys.argv[3]
secretp, secret, uid = int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
acts = [e["action"] for e in es]
def one(action, pred=lambda p: True):
    m = [e for e in es if e["action"] == action and pred(e["payload"])]
    assert m, f"no {action} entry matching in {acts}"
    return m[0]
assert all(e["actor"] == "agent" for e in es), [e["actor"] for e in es]
assert acts[0] == "start" and acts[-1] == "stop", acts
assert len(one("start")["payload"]["config_blake3"]) == 44
rules = [r for e in es if e["action"] == "rules.load" for r in e["payload"]["rules"]]
mine = [r for r in rules if r["id"] == "it-ledger-mark"]
assert mine and mine[0]["sql_blake3"] == sql_hash and mine[0]["enabled"], (mine, sql_hash)
assert not [r for r in rules if r["id"] == "it-ledger-writes"]
one("rule.refused", lambda p: "bad.yaml" in p["problem"] and "it-ledger-writes" in p["problem"])
scan = one("scan", lambda p: p["ok"])
assert scan["payload"]["processes"] > 0 and scan["payload"]["stored"]["added"] > 0, scan
alert = one("alert.raised", lambda p: p["rule_id"] == "it-ledger-mark" and
            marker in [s["pid"] for s in p["subjects"]])["payload"]
assert alert["severity"] == "low" and alert["scan_id"] == scan["payload"]["scan_id"], alert
d = one("alert.delivery", lambda p: p["alert_id"] == alert["id"])["payload"]
assert d["sink"] == "stdout" and d["outcome"] == "delivered" and d["attempts"] == 1, d
# the scan entry comes after the alerts its rules raised, in one batch
assert acts.index("scan") > acts.index("alert.raised")
# the scan's batch hash (BLAKE3, base64)
assert len(scan["payload"]["batch_blake3"]) == 44, scan
# the command line of an alert's subject, masked as the collector masks it
subj = [s for e in es if e["action"] == "alert.raised" for s in e["payload"]["subjects"] if s["pid"] == secretp]
assert subj and "--password ********" in subj[0]["command_line"], subj
assert secret not in json.dumps(es), "the secret is in the ledger"
# each component's privileges once dropped
priv = {e["payload"]["component"]: e["payload"] for e in es if e["action"] == "privileges"}
assert set(priv) == {"parent", "worker", "procmond"}, priv
w = priv["worker"]
assert w["cap_effective"] == w["cap_permitted"] == "0000000000000000", w
assert w["uid"] == (65534 if uid == 0 else uid), w
if uid == 0:
    assert w["cap_bounding"] == "0000000000000000" and w["no_new_privs"] == 1, w
    assert priv["parent"]["uid"] == 0 and priv["parent"]["cap_effective"] == "000000c0000811e4", priv
    assert priv["procmond"]["uid"] == 0 and priv["procmond"]["cap_effective"] == "0000000000080004", priv
    assert priv["procmond"]["cap_bounding"] == "0000000000000000", priv
else:
    assert all(p["cap_effective"] == "0000000000000000" for p in priv.values()), priv
# the rule the sandbox stopped at run time
stopped = one("rule.sql_refused", lambda p: p["rule_id"] == "it-ledger-slow")["payload"]
assert stopped["by"] == "timeout" and stopped["scan_id"] == scan["payload"]["scan_id"], stopped
PY
	check "$who: the secret is nowhere in the ledger's files" bash -c "! grep -qa -- '$secret' '$st'/audit.sqlite*"

	# SQL that daemoneye-cli query's sandbox refuses, before and while it runs
	"${run[@]}" "$cli" "${set[@]}" query "DELETE FROM processes" >/dev/null 2>"$dir/q.err"
	rc=$?
	check "$who: query DELETE refused (rc=$rc)" test "$rc" = 65
	"${run[@]}" "$cli" "${set[@]}" query --timeout 300 \
		"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c" >/dev/null 2>>"$dir/q.err"
	rc=$?
	check "$who: query stopped by its timeout (rc=$rc)" test "$rc" != 0
	check "$who: ... both recorded (no note that they are not)" bash -c "! grep -q 'not recorded' '$dir/q.err'"
	"${run[@]}" "$cli" "${set[@]}" audit log --action query.refused --format ndjson >"$dir/q.ndjson"
	check "$who: ... as query.refused by cli:uid=$ids, with the SQL and its hash" python3 - "$dir/q.ndjson" "$ids" "$(printf 'DELETE FROM processes' | b3sum --raw | base64)" <<'PY'
import json, sys
es = [json.loads(l) for l in open(sys.argv[1])]
assert [e["actor"] for e in es] == ["cli:uid=" + sys.argv[2]] * 2, es
p, r = es[0]["payload"], es[1]["payload"]
assert p["sql"] == "DELETE FROM processes" and p["sql_blake3"] == sys.argv[3] and p["stage"] == "prepare", p
assert r["stage"] == "run" and r["sql"].startswith("WITH RECURSIVE") and not r["sql_truncated"], r
PY

	# an operator's change, recorded by the CLI itself
	"${run[@]}" "$cli" "${set[@]}" rules disable deleted-executable >/dev/null
	rc=$?
	check "$who: rules disable exits 0 (rc=$rc)" test "$rc" = 0
	"${run[@]}" "$cli" "${set[@]}" audit log --action rule.disable --format ndjson >"$dir/cli.ndjson"
	check "$who: ... recorded as rule.disable by cli:uid=$("${run[@]}" id -u)" python3 - "$dir/cli.ndjson" "$("${run[@]}" id -u)" <<'PY'
import json, sys
es = [json.loads(l) for l in open(sys.argv[1])]
assert len(es) == 1 and es[0]["actor"] == "cli:uid=" + sys.argv[2], es
assert es[0]["payload"] == {"rule_id": "deleted-executable"}, es
PY
	# the next run's last checkpoint covers it, signed
	"${run[@]}" "${agent[@]}" >/dev/null 2>"$dir/once2.err"
	rc=$?
	check "$who: a second run exits 0 (rc=$rc)" test "$rc" = 0
	"${run[@]}" "$cli" "${set[@]}" audit checkpoint --export "$dir/cp.note" >/dev/null
	"${run[@]}" "$cli" "${set[@]}" audit verify --pubkey "$dir/keys/audit.pub" --checkpoint "$dir/cp.note" >"$dir/v" 2>&1
	rc=$?
	check "$who: verify against the exported checkpoint exits 0 (rc=$rc)" test "$rc" = 0
	local n
	n=$("${run[@]}" "$cli" "${set[@]}" audit log --format ndjson | wc -l)
	check "$who: the latest checkpoint attests every entry, the CLI's too ($n)" test "$(sed -n 2p "$dir/cp.note")" = "$n"
	check "$who: the second run's rule set shows the rule disabled" python3 -c '
import json, sys
es = [json.loads(l) for l in open(sys.argv[1])]
loads = [e for e in es if e["action"] == "rules.load"]
r = [r for r in loads[-1]["payload"]["rules"] if r["id"] == "deleted-executable"]
assert r and r[0]["enabled"] is False, r
' <("${run[@]}" "$cli" "${set[@]}" audit log --format ndjson)

	# a row tampered with: verify names it
	local seq
	seq=$(python3 -c '
import json, sys
print([json.loads(l)["seq"] for l in open(sys.argv[1]) if json.loads(l)["action"] == "scan"][0])' "$dir/log.ndjson")
	cp "$st/audit.sqlite" "$dir/t.sqlite"
	sqlite3 "$dir/t.sqlite" "DROP TRIGGER entries_no_update; UPDATE entries SET payload=replace(payload, '\"ok\":true', '\"ok\":false') WHERE seq=$seq"
	"$cli" --set "audit.path=$dir/t.sqlite" audit verify >/dev/null 2>"$dir/err"
	rc=$?
	check "$who: the scan entry edited: verify exits 65 (rc=$rc)" test "$rc" = 65
	check "$who: ... naming entry $seq" grep -q "entry $seq: its payload" "$dir/err"
}

root=false
[ "$(id -u)" = 0 ] && root=true
mkdir -p "$tmp/me"
ledger_run "$(id -un)" "$tmp/me"
if $root; then
	# what cannot be recorded is not done
	mkdir -p "$tmp/nb"
	chown nobody "$tmp/nb"
	cp -r "$tmp/me/state" "$tmp/nb/state"
	chown -R nobody "$tmp/nb/state"
	chown root "$tmp/nb/state/audit.sqlite"
	chmod 600 "$tmp/nb/state/audit.sqlite"
	sum=$(sha256sum <"$tmp/nb/state/rules-state.json")
	setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$tmp/nb" "$cli" \
		--set "app.state_dir=$tmp/nb/state" --set "detection.rules_dirs=[]" rules enable deleted-executable \
		>/dev/null 2>"$tmp/err"
	rc=$?
	check "a ledger the CLI cannot write: rules enable refused (rc=$rc)" test "$rc" = 77
	check "  saying nothing changed" grep -q "nothing changed: the audit ledger cannot record it" "$tmp/err"
	check "  and nothing changed" test "$(sha256sum <"$tmp/nb/state/rules-state.json")" = "$sum"
	rm -rf "$tmp/nb"
	mkdir -p "$tmp/nb"
	chown nobody "$tmp/nb"
	ledger_run nobody "$tmp/nb" setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$tmp/nb"
fi

# the parent signs without mapping libcrypto (a child per signature): a
# running service with a key signs checkpoints that verify, and its parent
# has no libcrypto in its maps
mkdir -p "$tmp/sig"
"$cli" keygen --out "$tmp/sig/keys" >/dev/null
"$bin/daemoneye-agent" --set "app.state_dir=$tmp/sig/state" --set "detection.rules_dirs=[]" \
	--set app.scan_interval_ms=600000 --set audit.enable_signatures=true \
	--set "audit.private_key_path=$tmp/sig/keys/audit.key" --set audit.checkpoint_every_entries=1 \
	>/dev/null 2>"$tmp/sig/agent.err" &
sigagent=$!
check "signing service: the first scan" wait_for 60 grep -q "info: scan 1:" "$tmp/sig/agent.err"
if ldd "$bin/daemoneye-agent" | grep -q libcrypto; then
	ok "signing service: the parent has no libcrypto mapped # SKIP this build links every library (sanitizers)"
else
	check "signing service: the parent has no libcrypto mapped" bash -c "! grep -q libcrypto /proc/$sigagent/maps"
fi
check "signing service: the parent holds no key file open" bash -c "! ls -l /proc/$sigagent/fd | grep -q audit.key"
stop "$sigagent"
"$cli" --set "app.state_dir=$tmp/sig/state" audit verify --pubkey "$tmp/sig/keys/audit.pub" >"$tmp/sig/v" 2>&1
rc=$?
check "signing service: verify --pubkey exits 0 (rc=$rc)" test "$rc" = 0
check "signing service: its checkpoints, signatures verified" grep -q '^checkpoints  [1-9][0-9]* (signatures verified)' "$tmp/sig/v"

# retention (audit.retention_days): a run two days later (its wall clock
# shifted by tests/clockshift.c) prunes what the first run's signed
# checkpoint covers; verify still holds and says what was pruned
mkdir -p "$tmp/ret"
"$cli" keygen --out "$tmp/ret/keys" >/dev/null
echo 0 >"$tmp/ret/shift"
retset=(--set "app.state_dir=$tmp/ret/state" --set "detection.rules_dirs=[]" --set audit.enable_signatures=true
	--set "audit.private_key_path=$tmp/ret/keys/audit.key" --set audit.retention_days=1)
"$bin/daemoneye-agent" --once "${retset[@]}" >/dev/null 2>"$tmp/ret/1.err"
rc=$?
check "retention: a first run (rc=$rc)" test "$rc" = 0
first=$("$cli" "${retset[@]}" audit log --format ndjson | wc -l)
"$cli" "${retset[@]}" audit checkpoint --export "$tmp/ret/cp1.note" >/dev/null
echo $((2 * 86400)) >"$tmp/ret/shift"
env DE_CLOCKSHIFT_FILE="$tmp/ret/shift" LD_PRELOAD="$bin/libclockshift.so" ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
	"$bin/daemoneye-agent" --once "${retset[@]}" >/dev/null 2>"$tmp/ret/2.err"
rc=$?
check "retention: a run two days later (rc=$rc)" test "$rc" = 0 || sed 's/^/#   /' "$tmp/ret/2.err"
"$cli" "${retset[@]}" audit log --format ndjson >"$tmp/ret/log.ndjson"
check "retention: the first run's entries are gone ($first of them), the second's kept" python3 - "$tmp/ret/log.ndjson" "$first" <<'PY'
import json, sys
es = [json.loads(l) for l in open(sys.argv[1])]
first = int(sys.argv[2])
assert es and es[0]["seq"] == first + 1 and es[0]["action"] == "start", (first, es[:2])
PY
"$cli" "${retset[@]}" audit verify --pubkey "$tmp/ret/keys/audit.pub" --checkpoint "$tmp/ret/cp1.note" >"$tmp/ret/v" 2>&1
rc=$?
check "retention: verify --pubkey against the first run's exported checkpoint exits 0 (rc=$rc)" test "$rc" = 0 || sed 's/^/#   /' "$tmp/ret/v"
check "  and says what was pruned" grep -q '^pruned       entries 1\.\.' "$tmp/ret/v"

# a ledger at an audit.path of its own, first made by an operator's
# daemoneye-cli (as root: root's 0600 file): the service's worker still
# writes it (the parent gives it the ledger and its directory); a
# directory shared with other files is refused at start, naming it
custom_ledger() {
	local who=$1 dir=$2
	shift 2
	local run=("$@")
	local set=(--set "app.state_dir=$dir/state" --set "detection.rules_dirs=[]"
		--set "audit.path=$dir/audit/ledger.sqlite")
	"${run[@]}" "$cli" "${set[@]}" rules disable deleted-executable >/dev/null 2>"$dir/cli.err"
	local rc=$?
	check "$who, custom audit.path: the CLI makes the ledger (rc=$rc)" test "$rc" = 0 -a -s "$dir/audit/ledger.sqlite"
	"${run[@]}" "$bin/daemoneye-agent" --once "${set[@]}" >/dev/null 2>"$dir/once.err"
	rc=$?
	check "$who, custom audit.path: agent --once exits 0 (rc=$rc)" test "$rc" = 0 || sed 's/^/#   /' "$dir/once.err"
	check "$who, custom audit.path: the worker opened it" grep -q "audit ledger $dir/audit/ledger.sqlite" "$dir/once.err"
	"${run[@]}" "$cli" "${set[@]}" audit log --format ndjson >"$dir/log.ndjson"
	check "$who, custom audit.path: the CLI's entry, then the agent's start, scan and stop" python3 - "$dir/log.ndjson" <<'PY'
import json, sys
acts = [(e["actor"].split(":")[0], e["action"]) for e in map(json.loads, open(sys.argv[1]))]
assert acts[0] == ("cli", "rule.disable"), acts
for a in ("start", "scan", "stop"):
    assert ("agent", a) in acts, (a, acts)
PY
	"${run[@]}" "$cli" "${set[@]}" audit verify >/dev/null 2>&1
	rc=$?
	check "$who, custom audit.path: verify exits 0 (rc=$rc)" test "$rc" = 0
}
mkdir -p "$tmp/cust"
custom_ledger "$(id -un)" "$tmp/cust"
if $root; then
	check "root, custom audit.path: the ledger is the worker's (nobody)" test "$(stat -c %U "$tmp/cust/audit/ledger.sqlite")" = nobody
	check "  and so is its directory" test "$(stat -c %U "$tmp/cust/audit")" = nobody
	check "  still writable only by its owner" test "$(stat -c %a "$tmp/cust/audit/ledger.sqlite")" = 600
	# a directory the ledger shares with other files is never given away
	mkdir -p "$tmp/shared"
	chmod 755 "$tmp/shared"
	touch "$tmp/shared/other"
	"$bin/daemoneye-agent" --once --set "app.state_dir=$tmp/shared/state" --set "detection.rules_dirs=[]" \
		--set "audit.path=$tmp/shared/ledger.sqlite" >/dev/null 2>"$tmp/shared.err"
	rc=$?
	check "root, audit.path in a shared root-owned directory: refused with 78 (rc=$rc)" test "$rc" = 78
	check "  naming the directory" grep -q "its directory $tmp/shared holds other files" "$tmp/shared.err"
	check "  which stays root's" test "$(stat -c %U "$tmp/shared")" = root
	mkdir -p "$tmp/ncust"
	chown nobody "$tmp/ncust"
	custom_ledger nobody "$tmp/ncust" setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$tmp/ncust"
fi

echo "integration_ledger: $fails failed"
[ "$fails" = 0 ]
