#!/bin/bash
# integration_fleet.sh BINDIR — the fleet on a real nats-server (JetStream,
# file storage in this test's temporary directory, loopback ports the
# kernel picks), started by the test and stopped by pid:
#   1. the host id: the keyed hash of the machine-id, computed independently
#      with openssl; `fleet init` makes the stream;
#   2. bad configuration: unreadable TLS files, a certificate without its
#      key, a bad subject prefix: exit 78 naming the key;
#   3. agent --once with a `nats` sink: the alert is in the stream once,
#      with its id as Nats-Msg-Id, the scan summary beside it;
#   4. a forced re-send (the delivery made pending again, as after a crash
#      before it was recorded): published again, stored once;
#   5. the server down: alerts wait in the outbox, scan summaries in the
#      spool, bounded, the overflow counted; back up: every alert arrives
#      once, the summaries in order, one of them reporting the overflow;
#   6. TLS: a server that requires it, the right CA, a stranger's CA, a
#      missing CA: clear errors (69) or success;
#   7. off-host anchoring: the ledger's checkpoints are published; `fleet
#      verify` agrees with the real ledger and catches a rewritten one;
#   8. signed queries: two agents answer one, five answer --all, rows
#      merged; the sandbox's refusal, another key, an unsigned and a
#      replayed query (sent with tests/nats_raw.py, an independent client)
#      are refused and logged;
#   9. `fleet hosts`: every host's latest scan summary, version, health;
#  5b. `fleet alerts` --severity, --since, --durable (resumes), --follow
#      (prints a new alert as it arrives, ends on SIGINT with 0);
#  8b. signed rule bundles pushed to two agents: installed and in use
#      (an alert from a bundle's rule), and refused when tampered,
#      signed by another key, stale, or holding a rule the validator
#      refuses, the previous rules kept, each recorded in the ledger;
#  10. the same bundles offline (rules import --bundle) and each refusal;
#  4b. pipelined publishing (tests/fleet_pub.c): nothing reported stored
#      without its ack, a bound on acks awaited, re-sends stored once;
#  11. SIGTERM while the server hangs (SIGSTOP): the worker stops by
#      itself within the parent's grace, the whole agent within 2 s.
set -u
bin=$1
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d /tmp/de-it-fleet-XXXXXX)
chmod 755 "$tmp"
pids=()
groups=() # process groups of the sleepers (their leaders are in pids too)
cleanup() {
	for g in "${groups[@]}"; do kill -- "-$g" 2>/dev/null; done
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"
hermetic "$tmp/home"
PY=/usr/bin/python3

if ! command -v nats-server >/dev/null 2>&1; then
	echo "ok - # SKIP integration_fleet: nats-server is not installed (make deps)"
	exit 0
fi
read -r PORT MPORT TPORT <<<"$(free_ports 3)"
# start_nats NAME PORT ARGS...: a JetStream server storing in $tmp/NAME; sets $nats_pid
start_nats() {
	local name=$1 port=$2
	shift 2
	mkdir -p "$tmp/$name"
	server_start "$name" "grep -q 'Server is ready' '$tmp/$name.log'" \
		nats-server -js -sd "$tmp/$name" -a 127.0.0.1 -p "$port" "$@" || return 1
	nats_pid=$server_pid
}
check "nats-server with JetStream starts on 127.0.0.1:$PORT" start_nats js "$PORT" -m "$MPORT"
main_nats=$nats_pid

cli() { "$bin/daemoneye-cli" -c "$tmp/agent.yaml" --set app.state_dir="$tmp/astate" \
	--set fleet.publish_timeout_ms=2000 "$@"; }
marker="de-it-fleet-$$"
cat >"$tmp/marker.yaml" <<EOF
rules:
  - id: it-fleet-marker
    name: fleet test marker
    description: a process whose command line carries the fleet test's marker
    severity: high
    category: execution
    tags: [attack.t1059.004]
    sql: |
      SELECT pid, name, executable_path, command_line FROM processes
      WHERE command_line LIKE '%$marker%'
EOF
# a sink that never gives up while the server is away, with a breaker that
# lets a probe through soon after it is back
cat >"$tmp/agent.yaml" <<EOF
detection: { builtin_rules: false, rules_dirs: [] }
alerting:
  deduplication: { enabled: false }
  retry: { max_attempts: 100, initial_delay_ms: 20, max_delay_ms: 200 }
  circuit_breaker: { failure_threshold: 1000, reset_timeout_ms: 200 }
  sinks:
    - { name: fleet, type: nats }
fleet:
  enabled: true
  servers: ["nats://127.0.0.1:$PORT"]
EOF
chmod 644 "$tmp/marker.yaml" "$tmp/agent.yaml"
sleeper() { # sleeper TAG: a process group whose command line carries "$marker-TAG", in $sp
	setsid sh -c 'sleep 300; :' "$marker-$1" </dev/null >/dev/null 2>&1 &
	sp=$!
	pids+=("$sp")
	groups+=("$sp")
	for _ in $(seq 200); do
		tr '\0' ' ' <"/proc/$sp/cmdline" 2>/dev/null | grep -q "$marker-$1" && return 0
		sleep 0.05
	done
	return 1
}
agent_once() {
	"$bin/daemoneye-agent" -c "$tmp/agent.yaml" --once --rules "$tmp/marker.yaml" \
		--set app.state_dir="$tmp/astate" "$@"
}
db="$tmp/astate/events.sqlite"
q() { sqlite3 -readonly "$db" "$1"; }

# ---- 1. host id, stream --------------------------------------------------------------
hid=$(cli fleet id)
rc=$?
want=$(printf %s "$(tr -d ' \n' </etc/machine-id | tr A-F a-f)" |
	openssl dgst -sha256 -mac HMAC -macopt key:"daemoneye fleet host id" | sed 's/.*= //' | cut -c1-32)
check "fleet id is HMAC-SHA256(machine-id) as openssl computes it (rc=$rc, $hid)" \
	test "$rc" = 0 -a "$hid" = "$want"
check "the raw machine-id is not the host id" test "$hid" != "$(tr -d ' \n' </etc/machine-id)"
hid2=$(cli --set fleet.host_id=web-01 fleet id)
check "fleet.host_id overrides it" test "$hid2" = web-01
cli fleet init >"$tmp/init.out" 2>&1
rc=$?
check "fleet init creates the stream (rc=$rc)" \
	sh -c "[ $rc = 0 ] && grep -q 'stream DAEMONEYE created' '$tmp/init.out'"
cli fleet init >"$tmp/init2.out" 2>&1
rc=$?
check "fleet init again: it exists, unchanged (rc=$rc)" \
	sh -c "[ $rc = 0 ] && grep -q 'stream DAEMONEYE exists: 0 messages' '$tmp/init2.out'"

# ---- 2. configuration errors --------------------------------------------------------
bad_conf() { # bad_conf WHAT YAML PATTERN
	printf '%s\n' "$2" >"$tmp/bad.yaml"
	"$bin/daemoneye-agent" -c "$tmp/bad.yaml" --check-config >"$tmp/bad.out" 2>&1
	local rc=$?
	check "$1: exit 78 (rc=$rc) naming it" sh -c "[ $rc = 78 ] && grep -q \"$3\" '$tmp/bad.out'"
	[ "$rc" = 78 ] || sed 's/^/#   /' "$tmp/bad.out"
}
bad_conf "a CA file that is not there" \
	"fleet: { enabled: true, servers: [\"tls://127.0.0.1:$PORT\"], tls: { ca_file: $tmp/none.pem } }" \
	"bad.yaml:1:.*fleet.tls.ca_file: cannot read $tmp/none.pem"
bad_conf "a client certificate without its key" \
	"fleet: { enabled: true, servers: [\"tls://127.0.0.1:$PORT\"], tls: { cert_file: $tmp/agent.yaml } }" \
	"fleet.tls.key_file: a client certificate needs both"
bad_conf "a subject prefix with a wildcard" "fleet: { subject_prefix: \"de.*\" }" \
	"fleet.subject_prefix: must be 1-64"
bad_conf "fleet on without servers" "fleet: { enabled: true }" \
	"fleet.servers: fleet is enabled but no server"

# ---- 3. one alert, once -------------------------------------------------------------
mkdir -p "$tmp/astate"
check "a process carrying the marker runs" sleeper one
agent_once >"$tmp/a1.out" 2>"$tmp/a1.err"
rc=$?
check "agent --once publishing to the fleet exits 0 (rc=$rc)" test "$rc" = 0
[ "$rc" = 0 ] || sed 's/^/#   /' "$tmp/a1.err"
aid=$(q "SELECT id FROM alerts WHERE rule_id = 'it-fleet-marker'")
check "the alert was delivered to the nats sink" \
	test "$(q "SELECT status || ' ' || attempts FROM alert_deliveries WHERE alert_id = '$aid' AND sink = 'fleet'")" = "delivered 1"
cli fleet alerts --host "$hid" >"$tmp/alerts1.ndjson" 2>"$tmp/alerts1.err"
rc=$?
check "fleet alerts reads the stream (rc=$rc)" test "$rc" = 0
# stream_ids FILE ID: how many messages of FILE have Nats-Msg-Id ID
stream_ids() { $PY -c '
import json, sys
print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["msg_id"] == sys.argv[2]))' "$1" "$2"; }
check "the alert is in the stream once, its id as Nats-Msg-Id" \
	test "$(stream_ids "$tmp/alerts1.ndjson" "$aid")" = 1
check "the message is the alert (JSON), on <prefix>.<host>.alerts" $PY -c '
import json, sys
m = [json.loads(l) for l in open(sys.argv[1])]
m = [x for x in m if x["msg_id"] == sys.argv[2]][0]
assert m["subject"] == "daemoneye." + sys.argv[3] + ".alerts", m["subject"]
assert m["data"]["id"] == sys.argv[2] and m["data"]["rule_id"] == "it-fleet-marker", m["data"]
' "$tmp/alerts1.ndjson" "$aid" "$hid"
cli fleet show scans --host "$hid" >"$tmp/scans1.ndjson"
check "the scan summary is in the stream" $PY -c '
import json, sys
m = [json.loads(l) for l in open(sys.argv[1])]
assert len(m) == 1 and m[0]["data"]["processes"] > 0 and m[0]["data"]["alerts"] == 1, m
assert m[0]["msg_id"].startswith("scan-" + sys.argv[2] + "-"), m[0]["msg_id"]
' "$tmp/scans1.ndjson" "$hid"

# ---- 4. a forced re-send is stored once ---------------------------------------------
sqlite3 "$db" "UPDATE alert_deliveries SET status = 'pending', attempts = 0, next_attempt_at = 0,
	delivered_at = NULL WHERE alert_id = '$aid' AND sink = 'fleet'"
agent_once >/dev/null 2>"$tmp/a2.err"
rc=$?
check "the agent re-sends the pending delivery (rc=$rc)" \
	test "$rc" = 0 -a "$(q "SELECT status || ' ' || attempts FROM alert_deliveries WHERE alert_id = '$aid' AND sink = 'fleet'")" = "delivered 1"
cli fleet alerts --host "$hid" >"$tmp/alerts2.ndjson"
check "after the re-send the alert is in the stream still once" \
	test "$(stream_ids "$tmp/alerts2.ndjson" "$aid")" = 1
check "and the stream holds no other alert" test "$(wc -l <"$tmp/alerts2.ndjson")" = 1

# ---- 4b. pipelined publishing: stored only when acknowledged ---------------------------
# (fleet_pub: de_fleet_publish_many, what the nats sink's deliver_batch does,
# on a stream of its own so the alerts above are not disturbed)
fpub() { "$bin/fleet_pub" "nats://127.0.0.1:$PORT" pipe PIPE pipe-host "$@"; }
fpub t1 300 300 1024 0 >"$tmp/pipe0.out" 2>&1
check "pipelined to a stream that does not exist (not created): none reported stored" \
	sh -c "head -1 '$tmp/pipe0.out' | grep -qx 'acked 0 duplicate 0 failed 300'"
[ "$(head -1 "$tmp/pipe0.out")" = "acked 0 duplicate 0 failed 300" ] || sed 's/^/#   /' "$tmp/pipe0.out"
fpub t1 1000 256 8 1 >"$tmp/pipe1.out" 2>&1
check "pipelined, 1000 in batches of 256, at most 8 awaiting acks: each acknowledged" \
	grep -qx 'acked 1000 duplicate 0 failed 0' "$tmp/pipe1.out"
fpub t1 1000 1000 1024 1 >"$tmp/pipe2.out" 2>&1
check "the same ids again, all at once: each acknowledged as a duplicate" \
	grep -qx 'acked 1000 duplicate 1000 failed 0' "$tmp/pipe2.out"
cli --set fleet.subject_prefix=pipe --set fleet.stream=PIPE fleet show alerts --host pipe-host \
	>"$tmp/pipe.ndjson" 2>"$tmp/pipe.err"
check "the stream holds each of them once, in the order published" $PY -c '
import json, sys
got = [json.loads(l)["msg_id"] for l in open(sys.argv[1])]
assert got == ["t1-%d" % i for i in range(1000)], (len(got), got[:3])
' "$tmp/pipe.ndjson"

# ---- 5. the server away -------------------------------------------------------------
stop "$main_nats"
rc=$?
# (nats-server exits 1 after a clean shutdown on SIGTERM)
check "nats-server stopped (rc=$rc)" sh -c "[ $rc = 1 ] && grep -q 'Server Exiting' '$tmp/js.log'"
# the spool's bound: two messages; each --once run adds its scan summary
for i in 1 2 3; do
	agent_once --set fleet.spool_max_rows=2 >/dev/null 2>"$tmp/down$i.err"
done
cli fleet status --format json >"$tmp/status.json"
check "server down: scan summaries wait in the spool, the overflow is counted" $PY -c '
import json, sys
s = json.load(open(sys.argv[1]))
assert s["spool"]["rows"] == 2 and s["spool"]["dropped"] >= 1, s
assert s["connected"] is False, s
' "$tmp/status.json"
check "the agent said it was not connected" grep -q "fleet: not connected to nats://127.0.0.1:$PORT" "$tmp/down1.err"
check "and that the spool was full" grep -q "fleet: the spool is full" "$tmp/down3.err"
# alerts raised while it is away: the agent in loop mode, three markers in turn
"$bin/daemoneye-agent" -c "$tmp/agent.yaml" --rules "$tmp/marker.yaml" \
	--set app.state_dir="$tmp/astate" --set app.scan_interval_ms=1000 >"$tmp/loop.out" 2>"$tmp/loop.err" &
agent=$!
pids+=("$agent")
for t in two three four; do
	n=$(q "SELECT count(*) FROM alerts WHERE rule_id = 'it-fleet-marker'")
	sleeper "$t"
	# raised before the next one starts: the order they were raised in is known
	wait_for 60 sh -c "[ \$(sqlite3 -readonly '$db' \"SELECT count(*) FROM alerts WHERE rule_id = 'it-fleet-marker'\") -gt $n ]"
done
# (with process events, the exec of setsid and of the shell it becomes may raise one each)
nalerts=$(q "SELECT count(*) FROM alerts WHERE rule_id = 'it-fleet-marker'")
check "alerts raised while the server is away ($((nalerts - 1)))" test "$nalerts" -ge 4
check "they wait in the outbox, retried" wait_for 60 sh -c \
	"[ \$(sqlite3 -readonly '$db' \"SELECT count(*) FROM alert_deliveries WHERE sink = 'fleet' AND status = 'pending' AND attempts >= 2\") -ge $((nalerts - 1)) ]"
check "nats-server started again on the same port and store" start_nats js "$PORT" -m "$MPORT"
js_nats=$nats_pid
check "every alert delivered once it is back" wait_for 120 sh -c \
	"[ \$(sqlite3 -readonly '$db' \"SELECT count(*) FROM alert_deliveries WHERE sink = 'fleet' AND status != 'delivered'\") = 0 ]"
spool_empty() { cli fleet status --format json 2>/dev/null |
	$PY -c 'import json, sys; sys.exit(json.load(sys.stdin)["spool"]["rows"] != 0)'; }
check "and the spool emptied" wait_for 60 spool_empty
stop "$agent"
rc=$?
check "the agent stops on SIGTERM (rc=$rc)" test "$rc" = 0
cli fleet alerts --host "$hid" >"$tmp/alerts3.ndjson"
q "SELECT d.alert_id FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id
	WHERE d.sink = 'fleet' ORDER BY a.alert_time, a.rowid" >"$tmp/ids"
check "as many as were raised" test "$(wc -l <"$tmp/ids")" -ge "$nalerts"
check "each alert is in the stream exactly once" $PY -c '
import json, sys
got = [json.loads(l)["msg_id"] for l in open(sys.argv[1])]
want = open(sys.argv[2]).read().split()
assert sorted(got) == sorted(want), (got, want)
' "$tmp/alerts3.ndjson" "$tmp/ids"
check "and in the order they were raised, across the outage" $PY -c '
import json, sys
got = [json.loads(l)["msg_id"] for l in open(sys.argv[1])]
want = open(sys.argv[2]).read().split()
assert got == want, (got, want)
' "$tmp/alerts3.ndjson" "$tmp/ids"
cli fleet show scans --host "$hid" >"$tmp/scans3.ndjson"
check "scan summaries arrive in order across the outage, one reporting the overflow" $PY -c '
import json, sys
m = [json.loads(l)["data"] for l in open(sys.argv[1])]
ids = [x["scan_id"] for x in m]
assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
assert any(x["spool_dropped"] >= 1 for x in m), m
' "$tmp/scans3.ndjson"
if [ "$(id -u)" = 0 ]; then
	cli fleet show events --host "$hid" >"$tmp/events.ndjson"
	check "process exec events are in the stream (the markers' execs among them)" $PY -c '
import json, sys
m = [json.loads(l)["data"] for l in open(sys.argv[1])]
ex = [x for x in m if x["kind"] == "exec" and
      sys.argv[2] in " ".join(x.get("process", {}).get("command_line", []))]
assert ex, len(m)
' "$tmp/events.ndjson" "$marker"
else
	echo "ok - # SKIP process events: procmond reads the kernel's events as root only"
fi

# ---- 5b. fleet alerts: --severity, --since, --durable, --follow ---------------------------
nall=$(wc -l <"$tmp/alerts3.ndjson")
cli fleet alerts --host "$hid" --severity high >"$tmp/sev-high.ndjson" 2>&1
cli fleet alerts --host "$hid" --severity critical >"$tmp/sev-crit.ndjson" 2>&1
check "--severity high keeps the (high) alerts, --severity critical none" sh -c \
	"[ \$(wc -l <'$tmp/sev-high.ndjson') = $nall ] && [ \$(wc -l <'$tmp/sev-crit.ndjson') = 0 ]"
cli fleet alerts --host "$hid" --severity bogus >/dev/null 2>&1
rc=$?
check "--severity bogus: 64 (rc=$rc)" test "$rc" = 64
cli fleet alerts --host "$hid" --since 2000-01-01 >"$tmp/since-old.ndjson" 2>&1
cli fleet alerts --host "$hid" --since 2100-01-01 >"$tmp/since-future.ndjson" 2>&1
check "--since a past date: all of them; a future one: none" sh -c \
	"[ \$(wc -l <'$tmp/since-old.ndjson') = $nall ] && [ \$(wc -l <'$tmp/since-future.ndjson') = 0 ]"
cli fleet alerts --host "$hid" --durable itd >"$tmp/dur1.ndjson" 2>&1
cli fleet alerts --host "$hid" --durable itd >"$tmp/dur2.ndjson" 2>&1
check "--durable: the first read gets every alert, the next resumes after them (none new)" sh -c \
	"[ \$(wc -l <'$tmp/dur1.ndjson') = $nall ] && [ \$(wc -l <'$tmp/dur2.ndjson') = 0 ]"
# (the program itself in the background, not the cli function's subshell: the signal is for it)
"$bin/daemoneye-cli" -c "$tmp/agent.yaml" --set app.state_dir="$tmp/astate" fleet alerts \
	--host "$hid" --follow >"$tmp/follow.ndjson" 2>"$tmp/follow.err" &
follower=$!
pids+=("$follower")
check "--follow prints what the stream holds" wait_for 60 sh -c "[ \$(wc -l <'$tmp/follow.ndjson') -ge $nall ]"
check "a process carrying the marker runs (for a new alert)" sleeper follow
agent_once >/dev/null 2>"$tmp/a-follow.err"
check "--follow prints the new alert as it arrives" wait_for 60 sh -c "[ \$(wc -l <'$tmp/follow.ndjson') -gt $nall ]"
stop "$follower" INT
rc=$?
check "--follow ends on SIGINT with 0 (rc=$rc)" test "$rc" = 0
cli fleet alerts --host "$hid" --durable itd >"$tmp/dur3.ndjson" 2>&1
check "--durable again: only what came since its last read" sh -c \
	"[ \$(wc -l <'$tmp/dur3.ndjson') -ge 1 ] && [ \$(wc -l <'$tmp/dur3.ndjson') -lt \$(wc -l <'$tmp/follow.ndjson') ]"

# ---- 6. TLS ---------------------------------------------------------------------------
mkdir -p "$tmp/pki"
(
	cd "$tmp/pki" || exit 1
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
		-out ca.pem -days 2 -subj /CN=daemoneye-test-ca
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key \
		-out other.pem -days 2 -subj /CN=stranger-ca
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key \
		-out srv.csr -subj /CN=localhost
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >ext
	openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem \
		-days 2 -extfile ext
) >/dev/null 2>&1
check "nats-server with TLS starts on 127.0.0.1:$TPORT" \
	start_nats jstls "$TPORT" --tls --tlscert "$tmp/pki/srv.pem" --tlskey "$tmp/pki/srv.key"
tls_init() { # tls_init URL [CA]
	"$bin/daemoneye-cli" --set "fleet.servers=[\"$1\"]" ${2:+--set fleet.tls.ca_file="$2"} \
		--set app.state_dir="$tmp/tstate" fleet init >"$tmp/tls.out" 2>&1
}
tls_init "tls://127.0.0.1:$TPORT" "$tmp/pki/ca.pem"
rc=$?
check "TLS with the server's CA: fleet init works (rc=$rc)" test "$rc" = 0
tls_init "tls://127.0.0.1:$TPORT" "$tmp/pki/other.pem"
rc=$?
check "TLS with a stranger's CA: 69 and why (rc=$rc)" sh -c \
	"[ $rc = 69 ] && grep -q 'SSL handshake error.*check fleet.tls.ca_file' '$tmp/tls.out'"
tls_init "nats://127.0.0.1:$TPORT"
rc=$?
check "no CA against a TLS server: 69 and why (rc=$rc)" sh -c \
	"[ $rc = 69 ] && grep -q 'fleet.tls' '$tmp/tls.out'"
tls_init "nats://127.0.0.1:$TPORT" "$tmp/pki/ca.key"
rc=$?
check "a CA file that holds no certificate: 78 and why (rc=$rc)" sh -c \
	"[ $rc = 78 ] && grep -q 'no certificate' '$tmp/tls.out'"
tls_init "nats://127.0.0.1:$(free_ports 1)"
rc=$?
check "no server there: 69, saying so (rc=$rc)" sh -c \
	"[ $rc = 69 ] && grep -q 'no server in fleet.servers answered' '$tmp/tls.out'"

# ---- 7. off-host anchoring ------------------------------------------------------------
"$bin/daemoneye-cli" keygen --out "$tmp/pki" >/dev/null 2>&1
ledger="$tmp/astate/audit.sqlite"
"$bin/audit_fill" "$ledger" 50 "$tmp/pki/audit.key" 20
[ "$(id -u)" = 0 ] && chown nobody "$ledger"
agent_once >/dev/null 2>"$tmp/v1.err"
"$bin/audit_fill" "$ledger" 30 "$tmp/pki/audit.key" 20
agent_once >/dev/null 2>"$tmp/v2.err"
cli fleet show checkpoints --host "$hid" >"$tmp/ckpts.ndjson"
# (the agent records its own entries too: start, rules, scans, stop)
check "the ledger's latest checkpoints were published (after 50, then 30 more entries)" $PY -c '
import json, sys
m = [int(json.loads(l)["data"].split("\n")[1]) for l in open(sys.argv[1])]
assert len(m) == 2 and m[0] >= 50 and m[1] >= m[0] + 30, m
' "$tmp/ckpts.ndjson"
last_size=$($PY -c 'import json,sys; print(max(int(json.loads(l)["data"].split("\n")[1]) for l in open(sys.argv[1])))' "$tmp/ckpts.ndjson" 2>/dev/null || echo 80)
cli fleet verify "$hid" --pubkey "$tmp/pki/audit.pub" >"$tmp/verify.out" 2>&1
rc=$?
check "fleet verify: the ledger agrees with both published checkpoints (rc=$rc)" sh -c \
	"[ $rc = 0 ] && grep -q 'agrees with 2 of 2 checkpoints' '$tmp/verify.out'"
# the attacker's copy: a whole new history with the host's own key
"$bin/audit_fill" "$tmp/forged.sqlite" $((last_size + 20)) "$tmp/pki/audit.key" 20
cli fleet verify "$hid" --ledger "$tmp/forged.sqlite" --pubkey "$tmp/pki/audit.pub" >"$tmp/verify2.out" 2>&1
rc=$?
check "fleet verify: a rewritten history is caught (rc=$rc)" sh -c \
	"[ $rc = 65 ] && grep -q 'CONTRADICTS.*rewritten' '$tmp/verify2.out'"
"$bin/audit_fill" "$tmp/short.sqlite" 10 "$tmp/pki/audit.key" 20
cli fleet verify web-99 --ledger "$tmp/short.sqlite" >"$tmp/verify3.out" 2>&1
rc=$?
check "fleet verify: a host with no checkpoints in the stream: 66 (rc=$rc)" sh -c \
	"[ $rc = 66 ] && grep -q 'no checkpoint of host web-99' '$tmp/verify3.out'"
# a checkpoint signed while the server is away reaches the stream once it is back
stop "$js_nats"
"$bin/audit_fill" "$ledger" 25 "$tmp/pki/audit.key" 20
[ "$(id -u)" = 0 ] && chown nobody "$ledger"
agent_once >/dev/null 2>"$tmp/v3.err"
away_size=$(sqlite3 -readonly "$ledger" "SELECT max(size) FROM checkpoints")
away_scan=$(q "SELECT max(id) FROM scans")
check "server down: the ledger signed a checkpoint past the last published ($away_size > $last_size)" \
	test "${away_size:-0}" -gt "$last_size"
check "nats-server started again for the anchoring check" start_nats js "$PORT" -m "$MPORT"
js_nats=$nats_pid
agent_once >/dev/null 2>"$tmp/v4.err"
cli fleet show checkpoints --host "$hid" >"$tmp/ckpts2.ndjson"
check "once it is back, that checkpoint is in the stream" $PY -c '
import json, sys
m = [int(json.loads(l)["data"].split("\n")[1]) for l in open(sys.argv[1])]
assert max(m) >= int(sys.argv[2]), (m, sys.argv[2])
' "$tmp/ckpts2.ndjson" "${away_size:-0}" || sed 's/^/# v4: /' "$tmp/v4.err"
cli fleet show scans --host "$hid" >"$tmp/scans4.ndjson"
check "the checkpoint went ahead of what waited in the spool (the scan summary of the run while away)" $PY -c '
import json, sys
c = [json.loads(l) for l in open(sys.argv[1])]
late = min(x["seq"] for x in c if int(x["data"].split("\n")[1]) >= int(sys.argv[3]))
s = [json.loads(l) for l in open(sys.argv[2])]
away = [x["seq"] for x in s if x["data"]["scan_id"] == int(sys.argv[4])]
assert len(away) == 1 and late < away[0], (late, away)
' "$tmp/ckpts2.ndjson" "$tmp/scans4.ndjson" "${away_size:-0}" "${away_scan:-0}"
cli fleet verify "$hid" --pubkey "$tmp/pki/audit.pub" >"$tmp/verify4.out" 2>&1
rc=$?
check "fleet verify agrees with every published checkpoint, the late one too (rc=$rc)" sh -c \
	"[ $rc = 0 ] && grep -q 'agrees with 3 of 3 checkpoints' '$tmp/verify4.out'"

# ---- 8. signed queries -----------------------------------------------------------------
mkdir -p "$tmp/op" "$tmp/op2"
"$bin/daemoneye-cli" keygen --out "$tmp/op" >/dev/null 2>&1
"$bin/daemoneye-cli" keygen --out "$tmp/op2" >/dev/null 2>&1
chmod 755 "$tmp/op"
qagents=()
# five agents answer --all (h-c, h-d and h-e only that query, then stopped)
qhosts=(h-a h-b h-c h-d h-e)
for h in "${qhosts[@]}"; do
	mkdir -p "$tmp/q-$h"
	"$bin/daemoneye-agent" -c "$tmp/agent.yaml" --set app.state_dir="$tmp/q-$h" \
		--set fleet.host_id="$h" --set fleet.operator_public_key="$tmp/op/audit.pub" \
		--set app.scan_interval_ms=2000 >/dev/null 2>"$tmp/q-$h.err" &
	qagents+=($!)
	pids+=($!)
done
for h in "${qhosts[@]}"; do
	check "agent $h answers queries signed by the operator's key" wait_for 60 \
		sh -c "grep -q 'answering queries signed by' '$tmp/q-$h.err' && grep -q 'scan 1:' '$tmp/q-$h.err'"
done
query() { cli fleet query --timeout 10000 "$@"; }
query --key "$tmp/op/audit.key" --hosts h-a,h-b "SELECT count(*) AS n FROM processes" \
	>"$tmp/q1.json" 2>"$tmp/q1.err"
rc=$?
check "a query to two hosts: both answer, rows merged with a host column (rc=$rc)" $PY -c '
import json, sys
rows = json.load(open(sys.argv[1]))
assert sorted(r["host"] for r in rows) == ["h-a", "h-b"], rows
assert all(r["n"] > 0 for r in rows), rows
assert sys.argv[2] == "0"
' "$tmp/q1.json" "$rc"
[ "$rc" = 0 ] || sed 's/^/#   /' "$tmp/q1.err"
query --key "$tmp/op/audit.key" --all --timeout 3000 --format ndjson \
	"SELECT count(*) AS n FROM processes" >"$tmp/q2.ndjson" 2>"$tmp/q2.err"
rc=$?
check "--all reaches all five agents, rows from each, merged (rc=$rc)" $PY -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert sorted(r["host"] for r in rows) == ["h-a", "h-b", "h-c", "h-d", "h-e"], rows
assert all(r["n"] > 0 for r in rows), rows
assert sys.argv[2] == "0"
' "$tmp/q2.ndjson" "$rc"
check "and says that five hosts answered" grep -q "fleet query: 5 hosts answered" "$tmp/q2.err"
[ "$rc" = 0 ] || sed 's/^/#   /' "$tmp/q2.err"
for k in 2 3 4; do
	stop "${qagents[$k]}"
	rc=$?
	check "query agent ${qhosts[$k]} stops on SIGTERM (rc=$rc)" test "$rc" = 0
done
qagents=("${qagents[@]:0:2}") # h-a and h-b go on
query --key "$tmp/op/audit.key" --hosts h-a "DELETE FROM processes" >/dev/null 2>"$tmp/q3.err"
rc=$?
check "SQL the sandbox refuses: 65, the host says why (rc=$rc)" sh -c \
	"[ $rc = 65 ] && grep -q 'host h-a:' '$tmp/q3.err'"
query --key "$tmp/op2/audit.key" --hosts h-a --timeout 2000 "SELECT 1 AS one" >/dev/null 2>"$tmp/q4.err"
rc=$?
check "signed by another key: no answer (69), the agent refuses it" sh -c \
	"[ $rc = 69 ] && grep -q 'host h-a did not answer' '$tmp/q4.err'"
check "and logs why" wait_for 30 grep -q "query refused: .*not signed by the operator's key" "$tmp/q-h-a.err"
$PY "$src/tests/nats_raw.py" "$PORT" pub daemoneye.h-b.query '{"v":1,"sql":"SELECT * FROM processes"}'
check "an unsigned query is refused and logged" wait_for 30 grep -q "query refused: malformed" "$tmp/q-h-b.err"
$PY "$src/tests/nats_raw.py" "$PORT" replay daemoneye.h-b.query >"$tmp/replay.out" 2>&1 &
rp=$!
pids+=("$rp")
wait_for 30 grep -q READY "$tmp/replay.out"
query --key "$tmp/op/audit.key" --hosts h-b "SELECT 2 AS two" >"$tmp/q5.json" 2>"$tmp/q5.err"
rc=$?
wait "$rp"
check "a replayed query (the same signed message again) is run once (rc=$rc)" sh -c \
	"[ $rc = 0 ] && grep -q REPLAYED '$tmp/replay.out'"
check "the replay is refused and logged" wait_for 30 grep -q "refused: already run (a replay)" "$tmp/q-h-b.err"
check "the query run is logged with its SQL" grep -q "fleet: query .* run (1 rows): SELECT 2 AS two" "$tmp/q-h-b.err"
# ---- 8b. signed rule bundles through the fleet ----------------------------------------
mkdir -p "$tmp/b1" "$tmp/b5" "$tmp/bbad"
marker_rule "$tmp/b1/one.yaml" bundle-one "$marker-b1"
marker_rule "$tmp/b5/five.yaml" bundle-five "$marker-b5"
marker_rule "$tmp/b5/five-more.yml" bundle-five-more "$marker-b5more"
marker_rule "$tmp/bbad/bad.yaml" bundle-bad "$marker-bad"
sed -i 's/^    sql: |$/    sql: DELETE FROM processes/; /^      /d' "$tmp/bbad/bad.yaml"
push() { cli fleet rules push "$@"; }
push --key "$tmp/op/audit.key" --version 1 "$tmp/b1" >"$tmp/push1.out" 2>&1
rc=$?
check "fleet rules push: version 1 pushed (rc=$rc)" sh -c "[ $rc = 0 ] && grep -q 'version 1 (1 files) pushed' '$tmp/push1.out'"
for h in h-a h-b; do
	check "agent $h installs bundle version 1 and puts it in use" wait_for 60 \
		grep -q "rule bundle version 1 installed and in use (1 rules of it" "$tmp/q-$h.err"
done
check "its rules are in one file headed by the version" sh -c \
	"head -1 '$tmp/q-h-a/rules.d/fleet-bundle.yaml' | grep -q 'version 1 ' && grep -q 'id: bundle-one' '$tmp/q-h-a/rules.d/fleet-bundle.yaml'"
ledger_has() { # ledger_has HOST ACTION PYEXPR(p): an entry of ACTION whose payload p satisfies it
	"$bin/daemoneye-cli" -c "$tmp/agent.yaml" --set app.state_dir="$tmp/q-$1" audit log \
		--action "$2" --format ndjson 2>/dev/null | $PY -c '
import json, sys
ps = [json.loads(l)["payload"] for l in sys.stdin if l.strip()]
sys.exit(0 if any(eval(sys.argv[1], {"p": p}) for p in ps) else 1)' "$3"
}
check "the install is in the host's audit ledger" wait_for 60 ledger_has h-a rules.bundle 'p["version"] == 1 and p["in_use"]'
check "a query run is in the host's audit ledger" wait_for 60 ledger_has h-b fleet.query 'p["sql"] == "SELECT 2 AS two" and p["rows"] == 1'
check "so is the replay it refused" wait_for 60 ledger_has h-b fleet.query_refused '"replay" in p["error"]'
check "and the SQL its sandbox refused, with why" ledger_has h-a fleet.query 'p["sql"] == "DELETE FROM processes" and p.get("error")'
# tampered: a signed bundle whose rule was changed afterwards, put straight into the bucket
push --key "$tmp/op/audit.key" --version 2 --out "$tmp/b2.json" "$tmp/b1" >/dev/null 2>&1
$PY -c 'import sys; t = open(sys.argv[1]).read(); print(t.replace("bundle-one", "bundle-evil"), end="")' \
	"$tmp/b2.json" >"$tmp/b2-tampered.json"
$PY "$src/tests/nats_raw.py" "$PORT" pub '$KV.DAEMONEYE_RULES.bundle' "$(cat "$tmp/b2-tampered.json")"
check "a tampered bundle is refused and logged" wait_for 60 \
	grep -q "rule bundle (revision [0-9]*) refused, the rules in use are kept: rule bundle version 2 refused: not signed by the operator's key" "$tmp/q-h-a.err"
check "and recorded in the ledger" wait_for 60 ledger_has h-a rules.bundle_refused '"not signed" in p["error"]'
push --key "$tmp/op2/audit.key" --version 3 "$tmp/b1" >/dev/null 2>&1
check "a bundle signed by another key is refused" wait_for 60 \
	grep -q "refused, the rules in use are kept: rule bundle version 3 refused: not signed" "$tmp/q-h-b.err"
check "after the refusals bundle version 1 is still installed" sh -c "head -1 '$tmp/q-h-a/rules.d/fleet-bundle.yaml' | grep -q 'version 1 '"
push --key "$tmp/op/audit.key" --version 5 "$tmp/b5" >/dev/null 2>&1
check "a newer bundle (version 5, two files) replaces it" wait_for 60 \
	grep -q "rule bundle version 5 installed and in use (2 rules of it" "$tmp/q-h-a.err"
check "its rules replaced the old ones in the file" sh -c \
	"grep -q 'id: bundle-five-more' '$tmp/q-h-a/rules.d/fleet-bundle.yaml' && ! grep -q 'id: bundle-one' '$tmp/q-h-a/rules.d/fleet-bundle.yaml'"
check "a process matching a rule of the bundle runs" sleeper b5more-x
check "the agent raises the bundle's rule's alert" wait_for 60 sh -c \
	"[ \$(sqlite3 -readonly '$tmp/q-h-a/events.sqlite' \"SELECT count(*) FROM alerts WHERE rule_id = 'bundle-five-more'\") -ge 1 ]"
push --key "$tmp/op/audit.key" --version 4 "$tmp/b1" >/dev/null 2>&1
check "an older version (stale) is refused" wait_for 60 \
	grep -q "rule bundle version 4 refused: not newer than the installed version 5" "$tmp/q-h-a.err"
push --key "$tmp/op/audit.key" --version 6 "$tmp/bbad" >"$tmp/pushbad.out" 2>&1
rc=$?
check "a bundle with a rule the validator refuses is not pushed (rc=$rc)" sh -c \
	"[ $rc = 65 ] && grep -q 'not pushed' '$tmp/pushbad.out'"
push --version 7 "$tmp/b1" >/dev/null 2>&1
rc=$?
check "push without --key: 64 (rc=$rc)" test "$rc" = 64
for p in "${qagents[@]}"; do
	stop "$p"
	rc=$?
	check "query agent stops on SIGTERM (rc=$rc)" test "$rc" = 0
done

# ---- 9. hosts -----------------------------------------------------------------------------
cli fleet hosts --format json >"$tmp/hosts.ndjson" 2>"$tmp/hosts.err"
rc=$?
check "fleet hosts: every host's latest scan, version and health, once each (rc=$rc)" $PY -c '
import json, sys
m = [json.loads(l) for l in open(sys.argv[1])]
hosts = sorted(x["host"] for x in m)
assert hosts == sorted([sys.argv[2], "h-a", "h-b", "h-c", "h-d", "h-e"]), hosts
assert all(x["scan"]["processes"] > 0 and x["last_seen"].endswith("Z") for x in m), m
assert all(x["version"] == sys.argv[4] for x in m), m
looping = [x for x in m if x["host"] in ("h-a", "h-b")]
assert all(x["health"] in ("ok", "warning", "critical") for x in looping), looping
assert sys.argv[3] == "0"
' "$tmp/hosts.ndjson" "$hid" "$rc" "$("$bin/daemoneye-cli" --version | awk '{print $NF}')"
cli fleet hosts >"$tmp/hosts.txt" 2>&1
rc=$?
check "fleet hosts as a table (rc=$rc)" sh -c "[ $rc = 0 ] && head -1 '$tmp/hosts.txt' | grep -q '^HOST ' && grep -q '^h-a ' '$tmp/hosts.txt'"

# ---- 10. signed rule bundles offline: rules import --bundle ------------------------------
ocli() { "$bin/daemoneye-cli" -c "$tmp/agent.yaml" --set app.state_dir="$tmp/off" "$@"; }
mkdir -p "$tmp/off"
push --key "$tmp/op/audit.key" --version 10 --out "$tmp/o10.json" "$tmp/b5" >"$tmp/o10.out" 2>&1
rc=$?
check "fleet rules push --out writes a signed bundle (rc=$rc)" sh -c "[ $rc = 0 ] && grep -q 'version 10 (2 files) written' '$tmp/o10.out'"
ocli rules import --bundle "$tmp/o10.json" --pubkey "$tmp/op/audit.pub" >"$tmp/i10.out" 2>&1
rc=$?
check "rules import --bundle installs it (rc=$rc)" sh -c \
	"[ $rc = 0 ] && grep -q 'installed rule bundle version 10 (2 rules from 2 files)' '$tmp/i10.out'"
ocli rules list >"$tmp/olist.out" 2>&1
check "rules list shows its rules" grep -q bundle-five-more "$tmp/olist.out"
check "the import is in the audit ledger" sh -c \
	"'$bin/daemoneye-cli' -c '$tmp/agent.yaml' --set app.state_dir='$tmp/off' audit log --action rules.bundle --format ndjson | grep -q '\"version\":10'"
refuse() { # refuse WHAT FILE PATTERN [ARGS]
	local what=$1 f=$2 pat=$3
	shift 3
	ocli rules import --bundle "$f" "$@" >"$tmp/ir.out" 2>&1
	local rc=$?
	check "rules import --bundle refuses $what: 65 (rc=$rc)" sh -c "[ $rc = 65 ] && grep -q \"$pat\" '$tmp/ir.out'"
	[ "$rc" = 65 ] || sed 's/^/#   /' "$tmp/ir.out"
}
refuse "the same version again (stale)" "$tmp/o10.json" "not newer than the installed version 10" --pubkey "$tmp/op/audit.pub"
push --key "$tmp/op/audit.key" --version 11 --out "$tmp/o11.json" "$tmp/b1" >/dev/null 2>&1
$PY -c 'import sys; t = open(sys.argv[1]).read(); print(t.replace("bundle-one", "bundle-evil"), end="")' \
	"$tmp/o11.json" >"$tmp/o11-tampered.json"
refuse "a tampered bundle" "$tmp/o11-tampered.json" "not signed by the operator's key" --pubkey "$tmp/op/audit.pub"
refuse "a bundle signed by another key" "$tmp/o11.json" "not signed by the operator's key" --pubkey "$tmp/op2/audit.pub"
$PY -c 'import json, sys; o = json.load(open(sys.argv[1])); del o["sig"]; print(json.dumps(o))' \
	"$tmp/o11.json" >"$tmp/o11-unsigned.json"
refuse "an unsigned bundle" "$tmp/o11-unsigned.json" "it is not signed" --pubkey "$tmp/op/audit.pub"
printf '{"v":1,"version":' >"$tmp/o-trunc.json"
refuse "a malformed bundle" "$tmp/o-trunc.json" "malformed rule bundle" --pubkey "$tmp/op/audit.pub"
check "after the refusals version 10 is still installed" sh -c "head -1 '$tmp/off/rules.d/fleet-bundle.yaml' | grep -q 'version 10 '"
ocli rules import --bundle "$tmp/o11.json" >/dev/null 2>"$tmp/inokey.err"
rc=$?
check "no key to check against: 64 (rc=$rc)" sh -c "[ $rc = 64 ] && grep -q 'pubkey' '$tmp/inokey.err'"
ocli --set fleet.operator_public_key="$tmp/op/audit.pub" rules import --bundle "$tmp/o11.json" >/dev/null 2>&1
rc=$?
check "fleet.operator_public_key is the default key; a newer version goes in (rc=$rc)" sh -c \
	"[ $rc = 0 ] && head -1 '$tmp/off/rules.d/fleet-bundle.yaml' | grep -q 'version 11 '"

# ---- 11. SIGTERM while the server hangs ---------------------------------------------------
# A server that keeps its connection open but answers nothing (SIGSTOP) must
# not hold the agent past its 2 s: the worker stops by itself (its publishes
# wait no longer than their flush's second, its last flush a quarter of one),
# and the parent never has to kill it.
read -r HPORT <<<"$(free_ports 1)"
check "a second nats-server starts on 127.0.0.1:$HPORT" start_nats hang "$HPORT"
hang_nats=$nats_pid
sed "s|nats://127.0.0.1:$PORT|nats://127.0.0.1:$HPORT|" "$tmp/agent.yaml" >"$tmp/hang.yaml"
"$bin/daemoneye-agent" -c "$tmp/hang.yaml" --set app.state_dir="$tmp/hstate" \
	--set app.scan_interval_ms=60000 >/dev/null 2>"$tmp/hang.err" &
agent=$!
pids+=("$agent")
check "the agent publishes to it" wait_for 60 grep -q "fleet: publishing to stream .*, connected" "$tmp/hang.err"
check "  and has scanned" wait_for 60 grep -q "scan 1:" "$tmp/hang.err"
kill -STOP "$hang_nats"
# what the loop's flushes publish (its exec events, the ledger's checkpoint)
# goes to a server that never answers: a publish times out (and the next
# may be waiting when SIGTERM comes; no cycle is, the next is a minute away)
# (or, when the stop came before the stream was made, making it times out)
timed_out='fleet: (publish|cannot (create|read) the fleet stream).*Timeout; will retry'
check "  a publish to the stopped server times out" wait_for 60 grep -Eq "$timed_out" "$tmp/hang.err"
# hang_stop ERR: SIGTERM to $agent with the server stopped; it exits 0 within
# 2 s and the parent never kills its worker
hang_stop() {
	local t0 rc ms
	t0=$EPOCHREALTIME
	kill -TERM "$agent"
	wait "$agent"
	rc=$?
	ms=$($PY -c "print(int(($EPOCHREALTIME - $t0) * 1000))")
	kill -CONT "$hang_nats"
	check "SIGTERM with the server stopped: exit 0 in ${ms} ms (<= 2000)" test "$rc" = 0 -a "$ms" -le 2000
	# (the worker alone: procmond has nothing to finish, and under ASan
	# its exit's leak scan on a loaded host may outlast its 300 ms)
	check "  the worker stopped by itself (the parent did not kill it)" \
		bash -c "! grep -q 'worker pid .* did not stop within its grace time' '$1'" ||
		sed 's/^/#   /' "$1"
}
hang_stop "$tmp/hang.err"
# the same with the server stopped before the stream exists: making it (on
# the first publish) must wait no longer than a publish would, not the
# JetStream context's 5 s, or the worker's last flush outlasts its grace
"$bin/daemoneye-agent" -c "$tmp/hang.yaml" --set app.state_dir="$tmp/h2state" \
	--set fleet.stream=DE_HANG2 --set fleet.subject_prefix=dehang2 \
	--set app.scan_interval_ms=60000 >/dev/null 2>"$tmp/hang2.err" &
agent=$!
pids+=("$agent")
wait_for 60 grep -q "fleet: publishing to stream DE_HANG2 .*, connected" "$tmp/hang2.err"
kill -STOP "$hang_nats"
check "a new stream on a server that stopped answering: its making times out" \
	wait_for 60 grep -Eq "$timed_out" "$tmp/hang2.err"
hang_stop "$tmp/hang2.err"
stop "$hang_nats"

echo "integration_fleet: $fails failed"
[ "$fails" = 0 ]
