# lib.sh — sourced by tests/integration_*.sh: the "ok - / not ok -" reporting
# and a hermetic environment for the real programs.
#
#   check WHAT COMMAND...   run COMMAND; report WHAT as ok or not ok
#   hermetic HOME_DIR       fresh $HOME (no user config), no DAEMONEYE_* from outside
#   alert_pairs FILE        "RULE PID" for every affected pid of every JSON alert line
#
# Read the store with `sqlite3 -readonly`: a plain sqlite3 creates the file
# when it is not there yet, racing the agent that is about to.
#
# A script ends with: echo "integration_X: $fails failed"; [ "$fails" = 0 ]
fails=0
ok() { echo "ok - $*"; }
bad() { echo "not ok - $*"; fails=$((fails + 1)); }
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
