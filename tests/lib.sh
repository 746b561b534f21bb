# lib.sh — sourced by tests/integration_*.sh: the "ok - / not ok -" reporting
# and a hermetic environment for the real programs.  Source it first, before
# making a temporary directory: it may run the script again in a private
# mount namespace (below).
#
#   check WHAT COMMAND...       run COMMAND; report WHAT as ok or not ok
#   hermetic HOME_DIR           fresh $HOME (no user config), no DAEMONEYE_* from outside
#   wait_for TIMEOUT COMMAND... run COMMAND until it succeeds; false after TIMEOUT
#                               seconds (the timeout only bounds a hang: the wait
#                               ends as soon as COMMAND succeeds)
#   stop PID [SIGNAL]           send SIGNAL (TERM) to our child PID and reap it;
#                               returns its exit status (128+N for a signal death)
#   private_mounts              true when this script runs in its own mount namespace
#   marker_rule FILE ID MARK    a rules file (mode 644) whose rule ID matches the
#                               processes whose command line carries "MARK-"
#   free_ports N                N TCP ports free on 127.0.0.1 now, on one line
#   alert_pairs FILE            "RULE PID" for every affected pid of every JSON alert line
#   server_start NAME READY CMD...
#                               start CMD (a server the test talks to) in the background,
#                               its output in $tmp/NAME.log, its pid in $server_pid and
#                               appended to the caller's pids array (reap them by pid);
#                               wait until the shell command READY succeeds: false, with
#                               the log shown, when CMD exits first or after 30 s
#
# The host's /etc/daemoneye (config.yaml, rules.d) must never reach the
# programs under test: where it exists, the script runs again (as root) in a
# private mount namespace with an empty tmpfs over it, so the programs see
# what a fresh machine has there; as another user, which cannot hide it, the
# script skips and says why.
#
# Exit codes: compare with the exact code expected (`test "$rc" = 64`),
# never `!= 0`: a crash (128+N) must not pass for a refusal.
#
# Read the store with `sqlite3 -readonly`: a plain sqlite3 creates the file
# when it is not there yet, racing the agent that is about to.
#
# A script ends with: echo "integration_X: $fails failed"; [ "$fails" = 0 ]
if [ -e /etc/daemoneye ] && [ -z "${DE_TEST_PRIVATE_NS:-}" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "ok - # SKIP $(basename "$0"): /etc/daemoneye exists on this host and only root can hide it from the programs under test"
		exit 0
	fi
	# the mount is made inside the new namespace only (unshare runs sh there)
	exec unshare --mount --propagation private -- sh -c \
		'mount -t tmpfs -o mode=755,size=64k de-test-etc /etc/daemoneye && exec "$@"' sh \
		env DE_TEST_PRIVATE_NS=1 "$BASH" "$0" "$@"
fi

fails=0
ok() { echo "ok - $*"; }
bad() { echo "not ok - $*"; fails=$((fails + 1)); return 1; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
hermetic() {
	export HOME=$1
	mkdir -p "$HOME"
	local v
	for v in $(env | grep -o '^DAEMONEYE_[A-Za-z0-9_]*'); do unset "$v"; done
}
alert_pairs() {
	python3 -c '
import json, sys
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("{"): continue
    a = json.loads(line)
    for p in a["affected_processes"]: print(a["rule_id"], p)
' "$1"
}
# marker_rule FILE ID MARK: a rule file (readable by the agent's user) whose
# one rule ID alerts on every process whose command line holds "MARK-"
marker_rule() {
	cat >"$1" <<YAML
rules:
  - id: $2
    name: $2
    description: a process whose command line carries the test's marker
    version: 1
    severity: low
    category: execution
    tags: [attack.t1059.004]
    author: tests
    sql: |
      SELECT pid, name, executable_path, command_line FROM processes
      WHERE command_line LIKE '%$3-%'
YAML
	chmod 644 "$1"
}
# alert_scan FILE RULE PID: print the scan id of FILE's (an agent's JSON
# alerts) first alert of RULE naming PID; false when there is none (yet)
alert_scan() {
	python3 -c '
import json, sys
for line in open(sys.argv[1]):
    if line.startswith("{"):
        a = json.loads(line)
        if a["rule_id"] == sys.argv[2] and int(sys.argv[3]) in a["affected_processes"]:
            print(a["scan_id"])
            sys.exit(0)
sys.exit(1)
' "$@"
}
wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -le "$end" ] || return 1
		sleep 0.05
	done
}
stop() {
	kill -"${2:-TERM}" "$1" 2>/dev/null
	wait "$1"
}
private_mounts() {
	[ "$(readlink /proc/self/ns/mnt)" != "$(readlink /proc/1/ns/mnt 2>/dev/null)" ]
}
free_ports() {
	python3 -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])' "$1"
}
server_start() {
	local name=$1 ready=$2 end=$((SECONDS + 30))
	shift 2
	"$@" >"$tmp/$name.log" 2>&1 &
	server_pid=$!
	pids+=("$server_pid")
	until eval "$ready"; do
		if ! kill -0 "$server_pid" 2>/dev/null || [ "$SECONDS" -gt "$end" ]; then
			echo "# $name did not start:"
			sed 's/^/#   /' "$tmp/$name.log"
			return 1
		fi
		sleep 0.05
	done
}
