#!/bin/bash
# integration_alerting.sh BINDIR — alert delivery to real receivers this test
# starts on loopback ports the kernel picks, and cleans up by pid:
#   rsyslogd in the foreground (imuxsock on a private socket, imudp, imtcp,
#   imtcp with TLS through OpenSSL), an HTTP(S) webhook receiver
#   (tests/receivers/http_receiver.py: /ok, /flaky 500 twice then 200,
#   /bad 400, /hang), an SMTP server (tests/receivers/smtp_receiver.py on
#   python3-aiosmtpd, with and without STARTTLS).
#   1. every sink type through `daemoneye-cli alerts test`, and the
#      outcomes: transient, permanent, TLS verification;
#   2. bad sink configuration: exit 78 naming the sink, the key and
#      FILE:LINE:COL;
#   3. the agent (when the store has the outbox): one alert from a harmless
#      simulation reaches rsyslog, the webhook, SMTP and a file once each;
#      injection; outage and the dead-letter queue; kill -9; loop mode.
set -u
bin=$1
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d /tmp/de-it-alerting-XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"
hermetic "$tmp/home"
PY=/usr/bin/python3 # Debian's, which has aiosmtpd (a pyenv python may not)

# ---- certificates: a CA, a server certificate for 127.0.0.1, a stranger CA ----
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
check "test certificates made" test -s "$tmp/pki/srv.pem"

# start_receiver NAME CMD...: start it, wait for its "READY PORT" line, set $port
start_receiver() {
	local name=$1
	shift
	port=
	server_start "$name" "grep -q '^READY' '$tmp/$name.log'" "$@" || return 1
	port=$(awk '/^READY/ {print $2; exit}' "$tmp/$name.log")
}
# wait_lines FILE N: until FILE has at least N lines (or give up after ~20 s)
wait_lines() {
	for _ in $(seq 400); do
		[ "$(wc -l <"$1" 2>/dev/null || echo 0)" -ge "$2" ] && return 0
		sleep 0.05
	done
	return 1
}

# ---- the receivers ---------------------------------------------------------------
start_receiver http $PY "$src/tests/receivers/http_receiver.py" "$tmp/http.jsonl"
check "webhook receiver (http) listening on $port" test -n "$port"
HTTP=$port
start_receiver https $PY "$src/tests/receivers/http_receiver.py" "$tmp/https.jsonl" \
	--cert "$tmp/pki/srv.pem" --key "$tmp/pki/srv.key"
check "webhook receiver (https) listening on $port" test -n "$port"
HTTPS=$port
start_receiver smtp $PY "$src/tests/receivers/smtp_receiver.py" "$tmp/smtp.jsonl"
check "SMTP receiver listening on $port" test -n "$port"
SMTP=$port
start_receiver smtptls $PY "$src/tests/receivers/smtp_receiver.py" "$tmp/smtptls.jsonl" \
	--cert "$tmp/pki/srv.pem" --key "$tmp/pki/srv.key" --require-starttls
check "SMTP receiver with STARTTLS listening on $port" test -n "$port"
SMTPTLS=$port
start_receiver smtp451 $PY "$src/tests/receivers/smtp_receiver.py" "$tmp/smtp451.jsonl" \
	--reject 451
SMTP451=$port
start_receiver smtp550 $PY "$src/tests/receivers/smtp_receiver.py" "$tmp/smtp550.jsonl" \
	--reject 550
SMTP550=$port

read -r UDP TCP TLS < <(free_ports 3)
mkdir -p "$tmp/rsyslog"
cat >"$tmp/rsyslog.conf" <<EOF
global(workDirectory="$tmp/rsyslog"
       DefaultNetstreamDriverCAFile="$tmp/pki/ca.pem"
       DefaultNetstreamDriverCertFile="$tmp/pki/srv.pem"
       DefaultNetstreamDriverKeyFile="$tmp/pki/srv.key")
module(load="imuxsock" SysSock.Use="off")
module(load="imudp")
module(load="imtcp" StreamDriver.Name="ossl" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")
# one record per line: the message id, the structured data, the message
template(name="rec" type="string" string="%msgid%|%structured-data%|%msg%\n")
ruleset(name="local") { action(type="omfile" file="$tmp/syslog-local.log" template="rec") }
ruleset(name="udp") { action(type="omfile" file="$tmp/syslog-udp.log" template="rec") }
ruleset(name="tcp") { action(type="omfile" file="$tmp/syslog-tcp.log" template="rec") }
ruleset(name="tls") { action(type="omfile" file="$tmp/syslog-tls.log" template="rec") }
input(type="imuxsock" Socket="$tmp/log.sock" ruleset="local")
input(type="imudp" address="127.0.0.1" port="$UDP" ruleset="udp")
input(type="imtcp" address="127.0.0.1" port="$TCP" ruleset="tcp" StreamDriver.Mode="0")
input(type="imtcp" address="127.0.0.1" port="$TLS" ruleset="tls")
EOF
rsyslog_up() {
	[ -S "$tmp/log.sock" ] && (exec 3<>"/dev/tcp/127.0.0.1/$TCP") 2>/dev/null &&
		(exec 3<>"/dev/tcp/127.0.0.1/$TLS") 2>/dev/null
}
check "rsyslogd listening (unix socket, udp $UDP, tcp $TCP, tls $TLS)" \
	server_start rsyslog rsyslog_up rsyslogd -n -f "$tmp/rsyslog.conf" -i "$tmp/rsyslog.pid"

# ---- 1. every sink through `alerts test` ----------------------------------------
cat >"$tmp/sinks.yaml" <<EOF
alerting:
  sinks:
    - { name: file, type: file, path: "$tmp/out/alerts.jsonl", format: ecs }
    - { name: local, type: syslog, socket: "$tmp/log.sock", format: cef }
    - { name: udp, type: syslog, transport: udp, host: 127.0.0.1, port: $UDP, format: cef }
    - { name: tcp, type: syslog, transport: tcp, host: 127.0.0.1, port: $TCP, format: json }
    - { name: tls, type: syslog, transport: tls, host: 127.0.0.1, port: $TLS, ca_file: "$tmp/pki/ca.pem", format: ocsf }
    - { name: tls-stranger, type: syslog, transport: tls, host: 127.0.0.1, port: $TLS, ca_file: "$tmp/pki/other.pem" }
    - { name: hook, type: webhook, url: "http://127.0.0.1:$HTTP/ok?token=\${HOOK_TOKEN}", headers: { Authorization: "Bearer \${HOOK_TOKEN}", X-Team: soc }, format: ecs }
    - { name: hook-tls, type: webhook, url: "https://127.0.0.1:$HTTPS/ok", ca_file: "$tmp/pki/ca.pem" }
    - { name: hook-untrusted, type: webhook, url: "https://127.0.0.1:$HTTPS/ok" }
    - { name: hook-bad, type: webhook, url: "http://127.0.0.1:$HTTP/bad" }
    - { name: hook-flaky, type: webhook, url: "http://127.0.0.1:$HTTP/flaky" }
    - { name: hook-hang, type: webhook, url: "http://127.0.0.1:$HTTP/hang", timeout_ms: 500 }
    - { name: hook-down, type: webhook, url: "http://127.0.0.1:$(free_ports 1)/ok" }
    - { name: mail, type: email, smtp_url: "smtp://127.0.0.1:$SMTP", from: daemoneye@test.invalid, to: [soc@test.invalid, oncall@test.invalid] }
    - { name: mail-tls, type: email, smtp_url: "smtp://127.0.0.1:$SMTPTLS", from: daemoneye@test.invalid, to: [soc@test.invalid], starttls: required, ca_file: "$tmp/pki/ca.pem" }
    - { name: mail-451, type: email, smtp_url: "smtp://127.0.0.1:$SMTP451", from: daemoneye@test.invalid, to: [soc@test.invalid] }
    - { name: mail-550, type: email, smtp_url: "smtp://127.0.0.1:$SMTP550", from: daemoneye@test.invalid, to: [soc@test.invalid] }
EOF
export HOOK_TOKEN=s3cr3t-token-value
t() { # t SINK: alerts test through SINK, output in $tmp/t.SINK, status in $st
	"$bin/daemoneye-cli" -c "$tmp/sinks.yaml" alerts test --sink "$1" >"$tmp/t.$1" 2>&1
	st=$?
}
for s in file local udp tcp tls hook hook-tls mail mail-tls; do
	t "$s"
	check "alerts test --sink $s: delivered (rc=$st: $(head -c 200 "$tmp/t.$s"))" \
		grep -q "test alert delivered" "$tmp/t.$s"
done
check "file sink: one ECS record, created 0640" \
	sh -c "[ \$(wc -l <'$tmp/out/alerts.jsonl') = 1 ] && [ \$(stat -c %a '$tmp/out/alerts.jsonl') = 640 ]"
check "file sink: ECS event.kind alert, kind test" $PY -c '
import json, sys
a = json.loads(open(sys.argv[1]).read())
assert a["event"]["kind"] == "alert" and a["daemoneye"]["kind"] == "test", a' "$tmp/out/alerts.jsonl"
for l in local udp tcp tls; do
	wait_lines "$tmp/syslog-$l.log" 1
	check "rsyslog ($l) received exactly one record" test "$(wc -l <"$tmp/syslog-$l.log")" = 1
done
check "rsyslog (udp): RFC 5424 MSGID and structured data with the alert id" \
	grep -q '^test|\[daemoneye@32473 alert_id="[0-9a-f-]\{36\}" rule_id="daemoneye-test" severity="low" kind="test"\]|CEF:0|DaemonEye|daemoneye|' "$tmp/syslog-udp.log"
check "rsyslog (local): the CEF record" grep -q 'CEF:0|DaemonEye|daemoneye|.*|daemoneye-test|' "$tmp/syslog-local.log"
check "rsyslog (tls): an OCSF Detection Finding" grep -q '"class_uid":2004' "$tmp/syslog-tls.log"
t tls-stranger
check "TLS to a server the CA does not vouch for: permanent (rc=$st)" \
	sh -c "[ $st = 69 ] && grep -q 'NOT delivered (permanent).*certificate verification failed' '$tmp/t.tls-stranger'"
check "webhook: Idempotency-Key, the operator's headers, the secret expanded" $PY -c '
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
ok = [x for x in r if x["path"] == "/ok"]
assert len(ok) == 1, r
h = ok[0]["headers"]
a = json.loads(ok[0]["body"])
assert h["Idempotency-Key"] == a["event"]["id"], h
assert h["Authorization"] == "Bearer s3cr3t-token-value" and h["X-Team"] == "soc", h
assert h["Content-Type"] == "application/json", h' "$tmp/http.jsonl"
check "webhook over TLS (ca_file) delivered once" test "$(grep -c '"/ok"' "$tmp/https.jsonl")" = 1
! grep -rq s3cr3t "$tmp"/t.* && ok "the webhook secret appears in no output" || bad "the webhook secret leaked into output"
t hook-untrusted
check "webhook TLS without the CA: permanent (rc=$st)" grep -q "NOT delivered (permanent)" "$tmp/t.hook-untrusted"
t hook-bad
check "webhook HTTP 400: permanent (rc=$st)" grep -q "NOT delivered (permanent).*HTTP 400" "$tmp/t.hook-bad"
t hook-flaky
check "webhook HTTP 500: transient (rc=$st)" grep -q "NOT delivered (transient).*HTTP 500" "$tmp/t.hook-flaky"
t hook-hang
check "webhook that hangs: transient timeout (rc=$st)" grep -q "NOT delivered (transient).*[Tt]imeout\|timed out" "$tmp/t.hook-hang"
t hook-down
check "webhook receiver down: transient (rc=$st)" grep -q "NOT delivered (transient).*onnect" "$tmp/t.hook-down"
wait_lines "$tmp/smtp.jsonl" 1
check "email: one message to both recipients, subject and alert id" $PY -c '
import json, sys, email
r = [json.loads(l) for l in open(sys.argv[1])]
assert len(r) == 1 and r[0]["to"] == ["soc@test.invalid", "oncall@test.invalid"], r
m = email.message_from_string(r[0]["data"])
assert m["Subject"].startswith("[daemoneye] test LOW: daemoneye test alert"), m["Subject"]
assert m["X-DaemonEye-Alert-Id"] in m["Message-ID"]
assert "Rule:          daemoneye-test" in m.get_payload(), m.get_payload()' "$tmp/smtp.jsonl"
check "email over STARTTLS (required) delivered with TLS" $PY -c '
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
assert len(r) == 1 and r[0]["tls"], r' "$tmp/smtptls.jsonl"
t mail-451
check "SMTP 451: transient (rc=$st)" grep -q "NOT delivered (transient)" "$tmp/t.mail-451"
t mail-550
check "SMTP 550: permanent (rc=$st)" grep -q "NOT delivered (permanent)" "$tmp/t.mail-550"

# the same as an ordinary user: the sinks need no privilege
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	mkdir -p "$tmp/nobody"
	chown nobody "$tmp/nobody"
	printf 'alerting:\n  sinks: [{ name: f, type: file, path: "%s/nobody/a.jsonl" }, { name: t, type: syslog, transport: tcp, host: 127.0.0.1, port: %s }]\n' "$tmp" "$TCP" >"$tmp/nobody.yaml"
	chmod 644 "$tmp/nobody.yaml"
	for s in f t; do
		setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$tmp/nobody" \
			"$bin/daemoneye-cli" -c "$tmp/nobody.yaml" alerts test --sink "$s" >"$tmp/nb.$s" 2>&1
		check "as nobody: alerts test --sink $s delivered" grep -q "test alert delivered" "$tmp/nb.$s"
	done
else
	ok "# SKIP the run as nobody: not root"
fi

# ---- 2. bad configuration: exit 78 naming the sink, the key, FILE:LINE:COL ------------
bad_config() { # bad_config WHAT YAML-LINE PATTERN
	printf 'alerting:\n  sinks:\n%s\n' "$2" >"$tmp/bad.yaml"
	"$bin/daemoneye-agent" -c "$tmp/bad.yaml" --check-config >"$tmp/bad.out" 2>&1
	local rc=$?
	if [ "$rc" = 78 ] && grep -q -- "$3" "$tmp/bad.out"; then
		ok "$1: exit 78 naming the sink, the key and FILE:LINE:COL"
	else
		bad "$1: rc=$rc, wanted 78 and /$3/ in: $(head -c 300 "$tmp/bad.out")"
	fi
}
bad_config "unknown sink type" "    - { name: x, type: pager }" \
	"bad.yaml:3:.*sink 'x' (alerting.sinks\[0\]): type: unknown sink type 'pager'"
bad_config "unknown format" "    - { name: x, type: file, path: /tmp/x, format: xml }" \
	"bad.yaml:3:.*sink 'x' (alerting.sinks\[0\]): format: unknown format 'xml'"
bad_config "malformed URL" "    - { name: h, type: webhook, url: 'http//nohost' }" \
	"bad.yaml:3:.*sink 'h' (alerting.sinks\[0\]): url: not a valid URL"
bad_config "missing key" "    - { name: m, type: email, from: a@b.c, to: [d@e.f] }" \
	"bad.yaml:3:.*sink 'm' (alerting.sinks\[0\]): smtp_url: missing"
bad_config "unreadable CA file" "    - { name: s, type: syslog, transport: tls, host: 127.0.0.1, ca_file: $tmp/none.pem }" \
	"bad.yaml:3:.*sink 's' (alerting.sinks\[0\]): ca_file: cannot read $tmp/none.pem"
bad_config "unknown key" "    - { name: f, type: file, path: /tmp/x, pth: /tmp/y }" \
	"bad.yaml:3:.*sink 'f' (alerting.sinks\[0\]): pth: unknown key for a file sink"
bad_config "duplicate name" "    - { name: f, type: stdout }
    - { name: f, type: stdout }" "bad.yaml:4:.*sink 'f' (alerting.sinks\[1\]): name: already used"
bad_config "unset secret" "    - { name: h, type: webhook, url: 'https://x.invalid/', headers: { A: '\${DE_NOT_SET_EVER}' } }" \
	"sink 'h' (alerting.sinks\[0\]): headers.A: environment variable DE_NOT_SET_EVER is not set"
printf 'alerting:\n  suppress:\n    - { rule: x, proces_name: y }\n' >"$tmp/bad.yaml"
"$bin/daemoneye-agent" -c "$tmp/bad.yaml" --check-config >"$tmp/bad.out" 2>&1
rc=$?
check "exception with an unknown field: exit 78 (rc=$rc) at bad.yaml:3" \
	sh -c "[ $rc = 78 ] && grep -q \"bad.yaml:3:.*exception alerting.suppress\[0\]: unknown field 'proces_name'\" '$tmp/bad.out'"
printf 'rules:\n  - id: r1\n    name: R\n    severity: low\n    sql: SELECT pid, name FROM processes\n    exceptions:\n      - { process_name: a, colour: red }\n' >"$tmp/rule.yaml"
"$bin/daemoneye-cli" rules validate "$tmp/rule.yaml" >"$tmp/rv.out" 2>&1
rc=$?
check "rules validate: an exception with an unknown field (rc=$rc) at rule.yaml:7:" \
	sh -c "[ $rc = 65 ] && grep -q \"rule.yaml:7:.*exception rule r1 exceptions\[0\]: unknown field 'colour'\" '$tmp/rv.out'"

# ---- 3. the agent: a harmless simulation, one record at every receiver ---------------
# The agent (as root it drops to nobody) gets its own output directory.
mkdir -p "$tmp/agentout"
[ "$(id -u)" = 0 ] && chown nobody "$tmp/agentout"
marker="de-it-alerting-$$"
cat >"$tmp/marker.yaml" <<EOF
rules:
  - id: it-alerting-marker
    name: alerting test marker
    description: a process whose command line carries the alerting test's marker
    severity: high
    category: execution
    tags: [attack.t1059.004]
    sql: |
      SELECT pid, name, executable_path, command_line FROM processes
      WHERE command_line LIKE '%$marker%'
EOF
chmod 644 "$tmp/marker.yaml"
sleeper() { # sleeper TAG: a shell whose command line carries "$marker-TAG", in $sp
	setsid sh -c 'sleep 300; :' "$marker-$1" </dev/null >/dev/null 2>&1 &
	sp=$!
	pids+=("$sp")
	for _ in $(seq 200); do
		tr '\0' ' ' <"/proc/$sp/cmdline" 2>/dev/null | grep -q "$marker-$1" && return 0
		sleep 0.05
	done
	return 1
}
agent_conf() { # agent_conf FILE HOOKPATH [SUPPRESS-LIST]
	cat >"$1" <<EOF
detection: { builtin_rules: false, rules_dirs: [] }
alerting:
  suppress: ${3:-[]}
  retry: { max_attempts: 2, initial_delay_ms: 10, max_delay_ms: 20 }
  sinks:
    - { name: file, type: file, path: "$tmp/agentout/alerts.jsonl", format: ecs }
    - { name: local, type: syslog, socket: "$tmp/log.sock", format: human }
    - { name: udp, type: syslog, transport: udp, host: 127.0.0.1, port: $UDP, format: json }
    - { name: tcp, type: syslog, transport: tcp, host: 127.0.0.1, port: $TCP, format: cef }
    - { name: tls, type: syslog, transport: tls, host: 127.0.0.1, port: $TLS, ca_file: "$tmp/pki/ca.pem", format: ocsf }
    - { name: hook, type: webhook, url: "http://127.0.0.1:$HTTP$2", format: json, timeout_ms: 2000 }
    - { name: mail, type: email, smtp_url: "smtp://127.0.0.1:$SMTP", from: daemoneye@test.invalid, to: [soc@test.invalid] }
EOF
}
agent() { # agent CONF [args...]: one cycle, its own state
	"$bin/daemoneye-agent" -c "$1" --once --rules "$tmp/marker.yaml" \
		--set app.state_dir="$tmp/astate" "${@:2}"
}
# a process whose name and command line hold what formats must escape:
# newline, |, =, ], ", backslash and invalid UTF-8
# (a copy of dash under that name, waiting on a sleep it started)
evil="$tmp/"$'e|v=i]l"\\\n\xff'
cp /bin/dash "$evil"
setsid "$evil" -c 'sleep 300; :' $'arg|=]"\\\nline2\xfe' "$marker" </dev/null >/dev/null 2>&1 &
sim=$!
pids+=("$sim")
for _ in $(seq 200); do tr '\0' ' ' <"/proc/$sim/cmdline" 2>/dev/null | grep -q "$marker" && break; sleep 0.05; done
check "the hostile process runs" kill -0 "$sim"
agent_conf "$tmp/agent.yaml" /ok
agent "$tmp/agent.yaml" >"$tmp/a1.out" 2>"$tmp/a1.err"
rc=$?
check "agent --once with every sink exits 0 (rc=$rc)" test "$rc" = 0
[ "$rc" = 0 ] || sed 's/^/#   /' "$tmp/a1.err"
db="$tmp/astate/events.sqlite"
aid=$(sqlite3 -readonly "$db" "SELECT id FROM alerts WHERE rule_id = 'it-alerting-marker'")
check "one alert raised for the simulation ($aid)" test "$(echo "$aid" | grep -c .)" = 1
check "--once returned with every delivery final (7 delivered)" \
	test "$(sqlite3 -readonly "$db" "SELECT count(*) FROM alert_deliveries WHERE alert_id = '$aid' AND status = 'delivered'")" = 7
for l in local udp tcp tls; do wait_lines "$tmp/syslog-$l.log" 2; done
wait_lines "$tmp/smtp.jsonl" 2
# every receiver: exactly one record of it, parsed by the receiving side and
# compared with the exact text (invalid bytes as U+FFFD)
check "injection: exactly one correctly escaped record at every receiver" $PY - "$tmp" "$aid" "$sim" <<'EOF'
import json, sys, email, email.header, re
tmp, aid, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
name = 'e|v=i]l"\\\n\ufffd'              # comm: the file name (15 bytes max), lossy
cmdtail = 'arg|=]"\\\nline2\ufffd'          # the hostile argument
def one(lines, what):
    hits = [l for l in lines if aid in l]
    assert len(hits) == 1, (what, len(hits), lines[-3:])
    return hits[0]
# file (ECS JSON line)
rec = json.loads(one(open(tmp + "/agentout/alerts.jsonl").read().splitlines(), "file"))
assert rec["process"]["name"] == name, rec["process"]
assert cmdtail in rec["process"]["command_line"], rec["process"]
# webhook (JSON body)
reqs = [json.loads(l) for l in open(tmp + "/http.jsonl")]
hook = [r for r in reqs if r["path"] == "/ok" and r["headers"].get("Idempotency-Key") == aid]
assert len(hook) == 1, hook
body = json.loads(hook[0]["body"])
assert body["context"]["processes"][0]["name"] == name
# syslog tcp: CEF; unescape the extension and compare
line = one(open(tmp + "/syslog-tcp.log").read().splitlines(), "tcp")
cef = line.split("|", 2)[2]
assert cef.startswith("CEF:0|")
# the header has 7 unescaped pipes; the extension follows
pos, pipes = 0, 0
while pipes < 7:
    if cef[pos] == "\\": pos += 2; continue
    if cef[pos] == "|": pipes += 1
    pos += 1
ext = cef[pos:]
m = re.search(r"(?:^| )dproc=((?:\\.|[^\\])*?)(?= \w+=|$)", ext)
val = re.sub(r"\\(.)", lambda g: {"n": "\n", "r": "\r"}.get(g.group(1), g.group(1)), m.group(1))
assert val == name, (val, name)
m = re.search(r"(?:^| )cs2=((?:\\.|[^\\])*?)(?= \w+=|$)", ext)
val = re.sub(r"\\(.)", lambda g: {"n": "\n", "r": "\r"}.get(g.group(1), g.group(1)), m.group(1))
assert cmdtail in val, (val,)
# syslog udp: RFC 5424 with JSON; tls: OCSF JSON; local: human text, escaped
u = one(open(tmp + "/syslog-udp.log").read().splitlines(), "udp").split("|", 2)
assert u[0] == "alert" and ('alert_id="%s"' % aid) in u[1], u[:2]
assert json.loads(u[2])["context"]["processes"][0]["name"] == name
t = one(open(tmp + "/syslog-tls.log").read().splitlines(), "tls").split("|", 2)
assert json.loads(t[2])["evidences"][0]["process"]["name"] == name
loc = [l for l in open(tmp + "/syslog-local.log").read().splitlines() if "it-alerting-marker" in l]
assert len(loc) == 1, loc
assert '\\n' in loc[0] and '\\xff' in loc[0], loc[0]
# email: one message; the subject decodes to one line, the body escapes
msgs = [json.loads(l) for l in open(tmp + "/smtp.jsonl")]
mine = [m for m in msgs if aid in m["data"]]
assert len(mine) == 1, len(mine)
m = email.message_from_string(mine[0]["data"])
raw = re.sub(r"\r?\n[ \t]", " ", m["Subject"])  # RFC 5322 unfolding
subj = str(email.header.make_header(email.header.decode_header(raw)))
assert "\n" not in subj and "HIGH" in subj, (raw, subj)
assert 'e|v=i]l"\\\\\\n' in subj, subj  # escaped, on one line
assert 'Process:       e|v=i]l"\\\\\\n\ufffd\r\n' in m.get_payload(), m.get_payload()
EOF

# ---- 4. one alert per real event: the same instance again raises nothing ------------
agent "$tmp/agent.yaml" >/dev/null 2>&1
check "a second run: still one alert for the simulated instance" \
	test "$(sqlite3 -readonly "$db" "SELECT count(*) FROM alerts WHERE rule_id = 'it-alerting-marker' AND kind IS NULL")" = 1
"$bin/daemoneye-cli" --set app.state_dir="$tmp/astate" alerts list --format json >"$tmp/list.json"
check "alerts list: the alert, open" $PY -c '
import json, sys
a = [x for x in json.load(open(sys.argv[1])) if x["rule_id"] == "it-alerting-marker"]
assert len(a) == 1 and a[0]["status"] == "open", a' "$tmp/list.json"
"$bin/daemoneye-cli" --set app.state_dir="$tmp/astate" alerts show "$aid" >"$tmp/show"
check "alerts show: the alert and each sink's delivery record" \
	sh -c "grep -q '\"id\": \"$aid\"' '$tmp/show' && [ \$(grep -c ' delivered  *attempts 1 ' '$tmp/show') = 7 ]"
kill "$sim"; wait "$sim" 2>/dev/null
agent "$tmp/agent.yaml" >/dev/null 2>&1
"$bin/daemoneye-cli" --set app.state_dir="$tmp/astate" alerts list --status resolved --format csv >"$tmp/list.csv"
check "the process exited: its alert is resolved" grep -q "^$aid,.*,resolved,alert,it-alerting-marker," "$tmp/list.csv"

# ---- 5. exceptions: suppressed, stored with the exception, listed ---------------------
sleeper quiet
quiet=$sp
agent_conf "$tmp/agent-sup.yaml" /ok '[{ rule: "it-alerting-*", command_line_contains: "-quiet", reason: "known quiet sleeper" }]'
agent "$tmp/agent-sup.yaml" >/dev/null 2>"$tmp/sup.err"
"$bin/daemoneye-cli" --set app.state_dir="$tmp/astate" alerts list --suppressed >"$tmp/sup"
check "alerts list --suppressed: the match, its exception and reason" \
	grep -q "it-alerting-marker *exception *$quiet .*alerting.suppress\[0\] at .*agent-sup.yaml:[0-9]*:[0-9]*: known quiet sleeper" "$tmp/sup"
check "no alert for the suppressed process" \
	test "$(sqlite3 -readonly "$db" "SELECT count(*) FROM alerts WHERE affected_processes = '[$quiet]'")" = 0
kill "$quiet"; wait "$quiet" 2>/dev/null

# ---- 6. outage: the webhook receiver down for the whole run, then back --------------
read -r DOWN < <(free_ports 1)
sleeper outage
out=$sp
agent_conf "$tmp/agent-down.yaml" /ok
sed -i "s|url: \"http://127.0.0.1:$HTTP/ok\"|url: \"http://127.0.0.1:$DOWN/ok\"|" "$tmp/agent-down.yaml"
agent "$tmp/agent-down.yaml" >/dev/null 2>"$tmp/down.err"
rc=$?
oid=$(sqlite3 -readonly "$db" "SELECT id FROM alerts WHERE affected_processes = '[$out]'")
check "outage: --once returns (rc=$rc) with the webhook delivery dead-lettered" \
	test "$(sqlite3 -readonly "$db" "SELECT status || ' ' || attempts FROM alert_deliveries WHERE alert_id = '$oid' AND sink = 'hook'")" = "dead 2"
check "outage: the other sinks delivered it" \
	test "$(sqlite3 -readonly "$db" "SELECT count(*) FROM alert_deliveries WHERE alert_id = '$oid' AND status = 'delivered'")" = 6
"$bin/daemoneye-cli" --set app.state_dir="$tmp/astate" alerts dlq list >"$tmp/dlq"
check "alerts dlq list shows it with the reason" grep -q "$oid *hook *2 .*gave up after 2 attempts: .*127.0.0.1" "$tmp/dlq"
start_receiver http2 $PY "$src/tests/receivers/http_receiver.py" "$tmp/http2.jsonl" --port "$DOWN"
"$bin/daemoneye-cli" --set app.state_dir="$tmp/astate" alerts dlq retry --all >"$tmp/retry" 2>&1
check "alerts dlq retry --all: pending again ($(cat "$tmp/retry"))" grep -q "^1 dead delivery is pending again" "$tmp/retry"
agent "$tmp/agent-down.yaml" >/dev/null 2>&1
check "back up: the dead-lettered alert is delivered, once" \
	test "$(grep -c "\"Idempotency-Key\": \"$oid\"" "$tmp/http2.jsonl")" = 1
check "and recorded delivered" \
	test "$(sqlite3 -readonly "$db" "SELECT status FROM alert_deliveries WHERE alert_id = '$oid' AND sink = 'hook'")" = delivered
kill "$out"; wait "$out" 2>/dev/null

# ---- 7. kill -9 with deliveries in flight, then a restart: nothing lost -------------
# hook_alert DB PID STATUS: the id of PID's alert once its webhook delivery
# has STATUS (waits ~20 s; empty if it never does)
hook_alert() {
	local id
	for _ in $(seq 400); do
		id=$(sqlite3 -readonly "$1" "SELECT a.id FROM alerts a JOIN alert_deliveries d ON d.alert_id = a.id WHERE a.affected_processes = '[$2]' AND d.sink = 'hook' AND d.status = '$3'" 2>/dev/null)
		[ -n "$id" ] && break
		sleep 0.05
	done
	echo "$id"
}
sleeper kill
kv=$sp
agent_conf "$tmp/agent-hang.yaml" /hang
"$bin/daemoneye-agent" -c "$tmp/agent-hang.yaml" --rules "$tmp/marker.yaml" \
	--set app.state_dir="$tmp/astate" --set app.scan_interval_ms=600000 >/dev/null 2>"$tmp/hang.err" &
ag=$!
pids+=("$ag")
kid=$(hook_alert "$db" "$kv" pending)
check "kill -9: the alert and its pending delivery were committed first ($kid)" test -n "$kid"
kill -9 "$ag"; wait "$ag" 2>/dev/null
# restarted at once: the killed worker may still be going, its store lock held
agent "$tmp/agent.yaml" >/dev/null 2>"$tmp/restart.err"
rc=$?
check "after kill -9 and a restart (rc=$rc) every sink has it delivered" \
	test "$(sqlite3 -readonly "$db" "SELECT count(*) FROM alert_deliveries WHERE alert_id = '$kid' AND status = 'delivered'")" = 7 ||
	sed 's/^/#   /' "$tmp/restart.err"
check "the webhook got it with its idempotency key" grep -q "\"Idempotency-Key\": \"$kid\"" "$tmp/http.jsonl"
check "and no second alert was raised for it" \
	test "$(sqlite3 -readonly "$db" "SELECT count(*) FROM alerts WHERE affected_processes = '[$kv]'")" = 1
kill "$kv"; wait "$kv" 2>/dev/null

# ---- 8. loop mode: a persistent process, one alert, not one per cycle ----------------
sleeper loop
lp=$sp
"$bin/daemoneye-agent" -c "$tmp/agent.yaml" --rules "$tmp/marker.yaml" \
	--set app.state_dir="$tmp/astate" --set app.scan_interval_ms=1000 >/dev/null 2>"$tmp/loop.err" &
ag=$!
pids+=("$ag")
first=$(grep -c "scan [0-9]*:" "$tmp/loop.err")
for _ in $(seq 400); do [ "$(grep -c "scan [0-9]*:" "$tmp/loop.err")" -ge $((first + 4)) ] && break; sleep 0.05; done
kill "$ag"; wait "$ag" 2>/dev/null
check "loop mode: four cycles ran ($(grep -c "scan [0-9]*:" "$tmp/loop.err"))" test "$(grep -c "scan [0-9]*:" "$tmp/loop.err")" -ge 4 ||
	sed 's/^/#   /' "$tmp/loop.err"
check "loop mode: one alert for the persistent process, not one per cycle" \
	test "$(grep -c "\"pid\":$lp," "$tmp/agentout/alerts.jsonl")" = 1
kill "$lp"; wait "$lp" 2>/dev/null

# ---- 9. a webhook added by a reload: libcurl starts then, in a running worker ---------
# The worker starts libcurl only when a webhook or email sink opens; here
# the first one comes with SIGHUP, while the worker's other threads run.
cat >"$tmp/nohook.yaml" <<EOF
detection: { builtin_rules: false, rules_dirs: [] }
alerting:
  sinks:
    - { name: file, type: file, path: "$tmp/agentout/alerts.jsonl", format: ecs }
EOF
cp "$tmp/nohook.yaml" "$tmp/reload.yaml"
"$bin/daemoneye-agent" -c "$tmp/reload.yaml" --rules "$tmp/marker.yaml" \
	--set app.state_dir="$tmp/rstate" --set app.scan_interval_ms=1000 >/dev/null 2>"$tmp/reload.err" &
ag=$!
pids+=("$ag")
wait_for 20 grep -q "scan [0-9]*:" "$tmp/reload.err"
w=$(pgrep -P "$ag" daemoneye-worke)
{
	cat "$tmp/nohook.yaml"
	echo "    - { name: hook, type: webhook, url: \"http://127.0.0.1:$HTTP/ok\", format: json, timeout_ms: 2000 }"
} >"$tmp/reload.yaml"
kill -HUP "$ag"
check "reload: the webhook sink is added" wait_for 20 grep -q "configuration reloaded" "$tmp/reload.err"
sleeper reload
rp=$sp
rid=$(hook_alert "$tmp/rstate/events.sqlite" "$rp" delivered)
check "reload: the new webhook delivered the alert ($rid)" test -n "$rid"
check "  from the same worker" test "$(pgrep -P "$ag" daemoneye-worke)" = "$w"
check "  the receiver has it" grep -q "\"Idempotency-Key\": \"$rid\"" "$tmp/http.jsonl"
kill "$ag"
wait "$ag" 2>/dev/null
kill "$rp"
wait "$rp" 2>/dev/null

echo "integration_alerting: $fails failed"
[ "$fails" = 0 ]
