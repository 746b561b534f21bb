# lib.sh — sourced by tests/integration_*.sh: the "ok - / not ok -" reporting
# and a hermetic environment for the real programs.
#
#   check WHAT COMMAND...   run COMMAND; report WHAT as ok or not ok
#   hermetic HOME_DIR       fresh $HOME (no user config), no DAEMONEYE_* from outside
#   marker_rule FILE ID MARK  a rules file (mode 644) whose rule ID matches the
#                           processes whose command line carries "MARK-"
#
# Read the store with `sqlite3 -readonly`: a plain sqlite3 creates the file
# when it is not there yet, racing the agent that is about to.
#
# A script ends with: echo "integration_X: $fails failed"; [ "$fails" = 0 ]
fails=0
ok() { echo "ok - $*"; }
bad() { echo "not ok - $*"; fails=$((fails + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
marker_rule() {
	cat >"$1" <<YAML
rules:
  - id: $2
    name: test marker $2
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
hermetic() {
	export HOME=$1
	mkdir -p "$HOME"
	local v
	for v in $(env | grep -o '^DAEMONEYE_[A-Za-z0-9_]*'); do unset "$v"; done
}
