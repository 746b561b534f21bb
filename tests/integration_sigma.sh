#!/bin/bash
# integration_sigma.sh BINDIR — Sigma rules end to end through the real
# programs:
#   1. `daemoneye-cli rules import --sigma` over SigmaHQ's 124 Linux
#      process_creation rules (tests/sigma/sigmahq): at least 118 converted
#      (and 2 of its 5 network_connection rules)
#      and installed under STATE/rules.d, each refusal naming the field,
#      a summary line, exit 65 because some were refused; importing again
#      replaces (same ids); `rules list` shows them; --min-status skips;
#      `rules convert --from sigma` prints the rule and its SQL; bad input
#      (malformed YAML, unknown modifier, missing selection, a regular
#      expression PCRE2 rejects) is refused with file:line:column; the
#      import works as an unprivileged user too;
#   2. harmless simulations of thirteen rules — copies of /bin/sleep named
#      as the rule's Image expects, started (exec -a) with an argv[0]
#      carrying the command line the rule looks for, nothing they name ever
#      runs; and bash holding a TCP connection to a listener of ours on
#      127.0.0.2 for the network rule —
#      must each raise the imported rule's alert for exactly the simulated
#      pid through one `daemoneye-agent --once`, the alert crediting the
#      Sigma rule's authors;
#   3. as root, the exec path: an agent in event mode alerts on a 50 ms
#      simulation through a Sigma rule, from an event scan; with the eBPF
#      sensor, a connection bash makes raises the network rule's alert from
#      an event scan too.
# Every simulation runs in its own process group (setsid) and is killed as
# a group and reaped by pid.
set -u
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
rules=$here/sigma/sigmahq/linux-process_creation
tmp=$(mktemp -d /tmp/de-it-sigma-XXXXXX)
chmod 755 "$tmp" # the root agent drops to nobody and must reach its state
pids=()
agent_pid=
stop_all() {
	for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	pids=()
}
cleanup() {
	[ -n "$agent_pid" ] && kill -TERM "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
	stop_all
	rm -rf "$tmp"
}
trap cleanup EXIT
. "$here/lib.sh"
hermetic "$tmp/home"

cli() { "$bin/daemoneye-cli" --set app.state_dir="$tmp/state" "$@"; }

# ---- 1. import, convert, refusals --------------------------------------------
cli rules import --sigma "$rules" >"$tmp/import.out" 2>"$tmp/import.err"
rc=$?
converted=$(grep -c '^converted' "$tmp/import.out")
check "import exits 65 since some rules are refused (rc=$rc)" test "$rc" = 65
check "at least 118 of 124 rules converted ($converted)" test "$converted" -ge 118
check "summary line" grep -q "^sigma: $converted converted and imported into $tmp/state/rules.d, .* refused, 0 skipped, 0 failed (of 124 files)" "$tmp/import.out"
check "installed one file per converted rule" test "$(ls "$tmp/state/rules.d" | grep -c '^sigma-.*\.yaml$')" = "$converted"
check "every refusal names what daemoneye lacks" test -z "$(grep '^refused' "$tmp/import.out" | grep -v "field '[A-Za-z]*' is not available")"
check "refusals name file:line:column" grep -q "^refused   $rules/proc_creation_lnx_omigod_scx_runasprovider_executescript.yml:29:18: field 'LogonId'" "$tmp/import.out"
cli rules import --sigma "$rules" >"$tmp/again.out" 2>&1
check "importing again replaces the same ids" test "$(grep -c 'replaced the earlier import' "$tmp/again.out")" = "$converted"
cli rules list >"$tmp/list.out" 2>"$tmp/list.err"
check "rules list shows the imported rules" test "$(grep -c '^sigma-' "$tmp/list.out")" = "$converted"
check "and they load without problems" test ! -s "$tmp/list.err"
mkdir -p "$tmp/mixed"
for f in at_command clear_logs auditctl_clear_rules apt_shell_execution; do # 2 stable, 1 experimental, 1 test
	cp "$rules/proc_creation_lnx_$f.yml" "$tmp/mixed/"
done
cli --set app.state_dir="$tmp/stable" rules import --sigma --min-status stable "$tmp/mixed" >"$tmp/stable.out" 2>&1
check "--min-status stable skips test and experimental rules" grep -q "^sigma: 2 converted.* 0 refused, 2 skipped" "$tmp/stable.out"
cli --set app.state_dir="$tmp/test" rules import --sigma --min-status test "$tmp/mixed" >"$tmp/test.out" 2>&1
check "--min-status test skips experimental rules" grep -q "^sigma: 3 converted.* 0 refused, 1 skipped" "$tmp/test.out"
cli rules convert --from sigma "$rules/proc_creation_lnx_cap_setuid.yml" >"$tmp/convert.out"
rc=$?
check "convert exits 0 (rc=$rc)" test "$rc" = 0
check "convert prints the rule" grep -q "^- id: sigma-ed447910-bc30-4575-a598-3a2e49516a7a$" "$tmp/convert.out"
check "and its SQL" grep -qF "regexp('(?si)/setcap\z', c.executable_path) AND regexp('(?si)cap_setuid', c.command_line)" "$tmp/convert.out"
check "and credits the authors" grep -q "^# Author: Luc Génaux" "$tmp/convert.out"
cli rules convert "$rules/proc_creation_lnx_cap_setuid.yml" >/dev/null 2>&1
check "convert without --from sigma is a usage error" test $? = 64
bad() { # bad NAME DETECTION-LINES...: a rule file with that detection
	local f=$tmp/bad/$1.yml
	shift
	mkdir -p "$tmp/bad"
	printf 'title: bad\nid: 0b7e1f3a-1111-4a4a-9c9c-00000000000%d\nlogsource:\n    product: linux\n    category: process_creation\ndetection:\n' "${#f}" >"$f"
	printf '%s\n' "$@" >>"$f"
}
bad unknown-modifier '    sel:' '        CommandLine|contians: x' '    condition: sel'
bad missing-selection '    sel:' '        CommandLine: x' '    condition: sel and not filter'
bad pcre '    sel:' "        CommandLine|re: 'a(b'" '    condition: sel'
printf 'title: x\nid: [\n' >"$tmp/bad/malformed.yml"
cli rules import --sigma "$tmp/bad" >"$tmp/bad.out" 2>&1
rc=$?
check "bad input: refused (rc=$rc)" test "$rc" = 65
check "malformed YAML refused with file:line:col" grep -q "^refused   $tmp/bad/malformed.yml:3:1: invalid YAML" "$tmp/bad.out"
check "unknown modifier refused with file:line:col" grep -q "^refused   $tmp/bad/unknown-modifier.yml:8:31: 'CommandLine|contians': unknown modifier 'contians'" "$tmp/bad.out"
check "missing selection refused with file:line:col" grep -q "^refused   $tmp/bad/missing-selection.yml:9:16: condition 'sel and not filter', at character 13: 'filter' is not a search identifier" "$tmp/bad.out"
check "regular expression PCRE2 rejects refused with file:line:col" grep -q "^refused   $tmp/bad/pcre.yml:8:25: 'CommandLine|re': PCRE2 rejects the pattern at offset 3" "$tmp/bad.out"
check "nothing of the bad files installed" test "$(ls "$tmp/state/rules.d" | grep -c .)" = "$converted"
if [ "$(id -u)" = 0 ]; then
	mkdir -p "$tmp/nobody"
	chown nobody "$tmp/nobody"
	setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$tmp/nobody" \
		"$bin/daemoneye-cli" --set app.state_dir="$tmp/nobody/state" rules import --sigma \
		"$rules/proc_creation_lnx_cap_setuid.yml" >"$tmp/nobody.out" 2>&1
	rc=$?
	check "as nobody: import works (rc=$rc)" test "$rc" = 0
	check "as nobody: the rule is installed" test -s "$tmp/nobody/state/rules.d/$(ls "$tmp/state/rules.d" | grep -m1 -F "$(sed -n 's/^- id: //p' "$tmp/convert.out")")"
fi

# SigmaHQ's 5 linux/network_connection rules: the 3 that name host names
# are refused (daemoneye records addresses)
netrules=$here/sigma/sigmahq/linux-network_connection
cli rules import --sigma "$netrules" >"$tmp/net.out" 2>&1
rc=$?
check "network rules: import exits 65, some being refused (rc=$rc)" test "$rc" = 65
check "network rules: 2 of 5 converted" grep -q "^sigma: 2 converted and imported into $tmp/state/rules.d, 3 refused, 0 skipped, 0 failed (of 5 files)" "$tmp/net.out"
check "network rules: each refusal is for DestinationHostname" \
	test "$(grep '^refused' "$tmp/net.out" | grep -c "field 'DestinationHostname' is not available")" = 3
converted=$((converted + 2))

# ---- 2. simulations through the agent ------------------------------------------
wait_exec() { # wait_exec PID TEXT EXE: PID runs EXE with TEXT in its command line
	local pid=$1 text=$2 want=$3 exe
	for _ in $(seq 200); do
		exe=$(readlink "/proc/$pid/exe" 2>/dev/null)
		if [ "${exe% (deleted)}" = "$want" ] &&
			tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$text"; then
			return 0
		fi
		sleep 0.05
	done
	echo "# pid $pid never became '$want' with '$text'"
	return 1
}
id_of() { sed -n 's/^id: *//p' "$rules/$1.yml" | tr 'A-Z' 'a-z'; }
declare -A expect # rule id -> pid
mkdir -p "$tmp/bin"
sim() { # sim RULEFILE NAME ARGV0: a copy of sleep named NAME, argv[0] = ARGV0
	local rule=$1 name=$2 argv0=$3 path=$tmp/bin/$2
	cp /bin/sleep "$path"
	setsid bash -c 'exec -a "$0" "$1" 300' "$argv0" "$path" </dev/null >/dev/null 2>&1 &
	pids+=($!)
	expect[sigma-$(id_of "$rule")]=$!
	wait_exec "$!" "$argv0" "$path"
}
sim proc_creation_lnx_cap_setuid setcap "setcap cap_setuid+ep /tmp/de-none"
sim proc_creation_lnx_crontab_enumeration crontab "crontab -l"
sim proc_creation_lnx_chattr_immutable_removal chattr "chattr -i /etc/de-none"
sim proc_creation_lnx_mkfifo_named_pipe_creation_susp_location mkfifo "mkfifo /tmp/de-none"
sim proc_creation_lnx_ssm_agent_abuse amazon-ssm-agent "amazon-ssm-agent -register -code X -id Y -region Z"
sim proc_creation_lnx_capa_discovery getcap "getcap -r /"
sim proc_creation_lnx_esxcli_vm_kill esxcli "esxcli vm process kill --type=soft --world-id=1"
sim proc_creation_lnx_susp_curl_useragent curl "curl -A de-test http://192.0.2.1/"
sim proc_creation_lnx_mount_hidepid mount "mount -o remount,hidepid=2 /proc"
sim proc_creation_lnx_python_http_server_execution python3 "python3 -m http.server 8000"
sim proc_creation_lnx_nohup_susp_execution nohup "nohup /tmp/de-none"
sim proc_creation_lnx_groupdel groupdel "groupdel de-none"
# net_connection_lnx_back_connect_shell_dev: bash holding a TCP connection
# (bash's /dev/tcp) to a listener of ours on 127.0.0.2, which the rule does
# not exempt (only 127.0.0.1 and 0.0.0.0); the agent's full scan finds it
# shell_connection WHAT: a listener of ours on 127.0.0.2, and bash connected
# to it (bash's /dev/tcp) in $shell; each in its own group in pids
shell_connection() {
	: >"$tmp/port"
	setsid python3 -c '
import socket
s = socket.socket()
s.bind(("127.0.0.2", 0))
s.listen(1)
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
c.recv(1)
' >"$tmp/port" </dev/null 2>/dev/null &
	pids+=($!)
	check "$1: the listener is up" wait_for 30 has_port
	setsid bash -c 'exec 3<>"/dev/tcp/127.0.0.2/$0"; read -r -u 3 x' "$(cat "$tmp/port")" </dev/null >/dev/null 2>&1 &
	pids+=($!)
	shell=$!
	check "$1: bash holds its connection (pid $shell)" wait_for 30 holds_socket
}
has_port() { [ -s "$tmp/port" ]; }
holds_socket() { ls -l "/proc/$shell/fd/" 2>/dev/null | grep -q 'socket:'; }
shell_connection "network simulation"
expect[sigma-$(sed -n 's/^id: *//p' "$netrules/net_connection_lnx_back_connect_shell_dev.yml" | tr 'A-Z' 'a-z')]=$shell
agent() {
	"$bin/daemoneye-agent" --once --set app.state_dir="$tmp/state" \
		--set 'detection.rules_dirs=[]' --set alerting.stdout.format=json "$@"
}
agent >"$tmp/sim.out" 2>"$tmp/sim.err"
rc=$?
check "agent --once exits 0 (rc=$rc)" test "$rc" = 0
nbuiltin=$(grep -c '^  - id:' "$here/../rules/builtin.yaml")
check "the agent loaded the imported rules" grep -q "$((nbuiltin + converted)) detection rules loaded" "$tmp/sim.err"
check "no rule problem or failure" test -z "$(grep -i 'rule .*: \|problem' "$tmp/sim.err" | grep -v 'rules loaded')"
alert_pairs "$tmp/sim.out" >"$tmp/sim.pairs"
for rule in $(printf '%s\n' "${!expect[@]}" | sort); do
	check "Sigma rule $rule raises its alert for its simulation (pid ${expect[$rule]})" \
		grep -qx "$rule ${expect[$rule]}" "$tmp/sim.pairs"
done
n=$(printf '%s\n' "${!expect[@]}" | wc -l)
check "at least ten Sigma rules simulated ($n)" test "$n" -ge 10
check "the alert credits the Sigma rule's authors" grep -q "Sigma rule $(id_of proc_creation_lnx_groupdel) by Tuan Le (NCSGroup)" "$tmp/sim.out"
stop_all
agent >"$tmp/after.out" 2>/dev/null
alert_pairs "$tmp/after.out" >"$tmp/after.pairs"
left=$(for rule in "${!expect[@]}"; do grep -x "$rule ${expect[$rule]}" "$tmp/after.pairs"; done)
check "no alert for the simulations after they exit (${left:-none})" test -z "$left"

# ---- 3. the exec path ----------------------------------------------------------
if [ "$(id -u)" = 0 ]; then
	"$bin/daemoneye-agent" --set app.state_dir="$tmp/state" --set 'detection.rules_dirs=[]' \
		--set app.scan_interval_ms=600000 --set alerting.stdout.format=json \
		--set logging.level=debug >"$tmp/ev.out" 2>"$tmp/ev.err" &
	agent_pid=$!
	for _ in $(seq 600); do
		grep -q "scan [0-9]*: [0-9]* processes" "$tmp/ev.err" && break
		sleep 0.05
	done
	check "event-mode agent: events on" grep -qE "events: (ebpf|netlink)" "$tmp/ev.err"
	bash -c 'exec -a "groupdel de-short" "$0" 0.05' "$tmp/bin/groupdel" &
	short=$!
	wait "$short"
	rule=sigma-$(id_of proc_creation_lnx_groupdel)
	for _ in $(seq 600); do # the agent's alert line, then which scan raised it
		grep -q "\"rule_id\": *\"$rule\"" "$tmp/ev.out" && break
		sleep 0.05
	done
	found=$(alert_scan "$tmp/ev.out" "$rule" "$short")
	check "a 50 ms process raises a Sigma rule's alert on the exec path (pid $short)" test -n "$found"
	src=$(sqlite3 -readonly "$tmp/state/events.sqlite" "SELECT source FROM scans WHERE id = ${found:-0}")
	check "from an event scan ($src)" test "$src" = event
	# a connection the sensor reports raises a Sigma network rule at once
	if grep -q "events: ebpf" "$tmp/ev.err"; then
		shell_connection "exec path"
		conn=$shell
		rule=sigma-$(sed -n 's/^id: *//p' "$netrules/net_connection_lnx_back_connect_shell_dev.yml" | tr 'A-Z' 'a-z')
		net_alert() { alert_scan "$tmp/ev.out" "$rule" "$conn"; }
		alerted() { net_alert >/dev/null; }
		check "a connection raises a Sigma network rule's alert on the event path (pid $conn)" wait_for 60 alerted
		found=$(net_alert)
		src=$(sqlite3 -readonly "$tmp/state/events.sqlite" "SELECT source FROM scans WHERE id = ${found:-0}")
		check "from an event scan ($src)" test "$src" = event
		stop_all
	else
		echo "ok - # SKIP a connection through a Sigma network rule on the event path: the eBPF sensor is not in use ($(grep -o 'events: [^)]*' "$tmp/ev.err" | head -1))"
	fi
	kill -TERM "$agent_pid"
	wait "$agent_pid"
	agent_pid=
else
	echo "# not root: the exec path needs the process connector (CAP_NET_ADMIN); skipped"
fi
[ "$fails" = 0 ] || sed 's/^/#   /' "$tmp"/*.err | tail -40

echo "integration_sigma: $fails failed"
[ "$fails" = 0 ]
