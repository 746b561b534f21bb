#!/bin/bash
# integration_query.sh BINDIR — `daemoneye-cli query` and `daemoneye-cli
# rules` against a real event store left by `daemoneye-agent --once`:
# answers and formats, bound parameters, hostile SQL rejected (exit 65) or
# stopped by its limit without changing a byte of the store, escaped
# terminal output, and the rules subcommands with their persistent state.
set -u
. "$(dirname "$0")/lib.sh"
bin=$1
tmp=$(mktemp -d /tmp/de-it-query-XXXXXX)
# started as root the agent drops to app.run_as_user (nobody here): it must
# reach its state directory below this one
chmod 755 "$tmp"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
hermetic "$tmp/home"
S=(--set app.state_dir="$tmp/state" --set 'detection.rules_dirs=[]')
cli() { "$bin/daemoneye-cli" "${S[@]}" "$@"; }

# a process whose command line carries terminal escapes, then one cycle
setsid sh -c 'sleep 300; : "$0"' "$(printf 'de-esc-\033[31mred\033[0m')" </dev/null >/dev/null 2>&1 &
pids+=($!)
esc_shell=$!
# wait for the exec of sh itself (setsid's own command line shows the text first)
sh_running() {
	local exe
	exe=$(readlink "/proc/$esc_shell/exe" 2>/dev/null)
	[ -n "$exe" ] && [ "${exe##*/}" != setsid ] && [ "${exe##*/}" != bash ] &&
		grep -q de-esc "/proc/$esc_shell/cmdline" 2>/dev/null
}
check "the shell with escapes in its arguments runs" wait_for 30 sh_running
"$bin/daemoneye-agent" --once "${S[@]}" >/dev/null 2>&1
rc=$?
check "agent --once exits 0 (rc=$rc)" test "$rc" = 0
db=$tmp/state/events.sqlite
check "agent left an event store" test -s "$db"
sum=$(sha256sum <"$db")

# ---- query ----------------------------------------------------------------------
out=$(cli query "SELECT count(*) FROM processes"); rc=$?
check "query count(*) answers (rc=$rc)" test "$rc" = 0
n=$(sed -n 2p <<<"$out" | tr -d ' ')
check "it counts the snapshot ($n)" test "${n:-0}" -gt 0
cli query --format json "SELECT pid, name FROM processes ORDER BY pid" >"$tmp/j"
check "--format json is a JSON array of objects" python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); assert len(a)>0 and "pid" in a[0] and "name" in a[0]' "$tmp/j"
cli query --format ndjson --limit 3 "SELECT pid FROM processes" >"$tmp/nd"
check "--format ndjson --limit 3: three JSON lines" python3 -c 'import json,sys; l=open(sys.argv[1]).read().splitlines(); assert len(l)==3; [json.loads(x) for x in l]' "$tmp/nd"
cli query --format csv "SELECT pid, name, command_line FROM processes" >"$tmp/csv"
check "--format csv parses with a header" python3 -c 'import csv,sys; r=list(csv.reader(open(sys.argv[1]))); assert r[0]==["pid","name","command_line"] and len(r)>1' "$tmp/csv"
out=$(cli query --format ndjson "SELECT pid FROM processes WHERE pid = :p" --param p=1)
check "--param binds a value" test "$out" = '{"pid":1}'
out=$(cli query --format ndjson "SELECT pid FROM processes WHERE pid = ? AND 2 = ?2" --param 1=1 --param 2=2)
check "--param N=VALUE binds the Nth ? and ?N ($out)" test "$out" = '{"pid":1}'
out=$(cli query --format ndjson "SELECT count(*) AS n FROM processes WHERE name = :n" --param "n=x' OR '1'='1"); rc=$?
check "a hostile --param value is a value, not SQL ($out)" test "$out" = '{"n":0}'
cli query "SELECT :missing" >/dev/null 2>"$tmp/e"; rc=$?
check "an unbound parameter is a usage error (rc=$rc)" test "$rc" = 64
cli query >/dev/null 2>&1; rc=$?
check "no SQL is a usage error (rc=$rc)" test "$rc" = 64
cli query --format xml "SELECT 1" >/dev/null 2>&1; rc=$?
check "an unknown format is a usage error (rc=$rc)" test "$rc" = 64
cli query "SELECT pid, command_line FROM processes WHERE command_line LIKE '%de-esc-%' AND name = 'sh'" >"$tmp/t"; rc=$?
check "the query of the escaped command line exits 0 (rc=$rc)" test "$rc" = 0
check "table output escapes terminal control bytes" grep -qF 'de-esc-\x1b[31mred' "$tmp/t"
check "no raw escape byte reaches the terminal" test -z "$(grep -l $'\033' "$tmp/t")"
NO_COLOR=1 TERM=dumb cli rules list >"$tmp/l"; rc=$?
check "NO_COLOR/TERM=dumb: rules list exits 0 (rc=$rc) and lists the rules" test "$rc" = 0 -a "$(grep -c ' builtin ' "$tmp/l")" -gt 0
check "NO_COLOR/TERM=dumb: no colour codes" test -z "$(grep -l $'\033' "$tmp/l")"
COLUMNS=50 cli query "SELECT pid, name, executable_path, command_line FROM processes" >"$tmp/w"; rc=$?
check "COLUMNS=50: the query exits 0 (rc=$rc) with its rows" test "$rc" = 0 -a "$(wc -l <"$tmp/w")" -gt 2
check "table fits COLUMNS=50" test "$(awk '{ if (length($0) > m) m = length($0) } END { print m }' "$tmp/w")" -le 50

# hostile SQL: rejected with exit 65 and a message naming the construct
while IFS='|' read -r sql want; do
	[ -z "$sql" ] && continue
	cli query "$sql" >/dev/null 2>"$tmp/e"; rc=$?
	check "rejected (rc=$rc): $sql" test "$rc" = 65
	check "  message names it: $want" grep -qF -- "$want" "$tmp/e"
done <<'HOSTILE'
DELETE FROM processes|DELETE on processes is not allowed
UPDATE processes SET name = 'x'|UPDATE on processes is not allowed
INSERT INTO scans(source, started_at) VALUES('x', 1)|INSERT on scans is not allowed
DROP TABLE processes|changing the schema
CREATE TABLE x(a)|changing the schema
ATTACH DATABASE '/tmp/de-evil.db' AS evil|ATTACH is not allowed
PRAGMA writable_schema=1|PRAGMA is not allowed
SELECT * FROM pragma_table_info('processes')|table-valued functions
SELECT load_extension('/tmp/evil.so')|function load_extension() is not allowed
SELECT readfile('/etc/shadow')|no such function: readfile
SELECT randomblob(100000000)|function randomblob() is not allowed
SELECT zeroblob(100000000)|function zeroblob() is not allowed
SELECT 1; DELETE FROM processes|only one SQL statement
BEGIN|transaction
VACUUM|only SELECT statements
VACUUM INTO '/tmp/de-it-vacuum.db'|only SELECT statements
SELECT * FROM sqlite_master|table 'sqlite_master' is not visible
SELECT (SELECT (SELECT (SELECT 1)))|subqueries nest 4 deep
SELECT nosuch FROM processes|available: processes(pid
SELECT name FROM processes WHERE name GLOB 'x*'|function glob() is not allowed
HOSTILE
check "VACUUM INTO wrote nothing" test ! -e /tmp/de-it-vacuum.db
big=$(head -c 120000 /dev/zero | tr '\0' a)
cli query "SELECT '$big'" >/dev/null 2>"$tmp/e"; rc=$?
check "an enormous literal is rejected (rc=$rc)" test "$rc" = 65
deep="SELECT $(printf '(%.0s' $(seq 3000))1$(printf ')%.0s' $(seq 3000))"
cli query "$deep" >/dev/null 2>"$tmp/e"; rc=$?
check "deep nesting is rejected (rc=$rc)" test "$rc" = 65
# stopped by a limit, with a clear error
cli query --timeout 300 "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c" >/dev/null 2>"$tmp/e"; rc=$?
check "an endless recursive CTE is stopped (rc=$rc)" test "$rc" = 65
check "  by its timeout" grep -q "ran longer than its timeout of 300 ms" "$tmp/e"
cli query --timeout 300 "SELECT count(*) FROM processes a, processes b, processes c, processes d, processes e" >/dev/null 2>"$tmp/e"; rc=$?
check "a cartesian product of the snapshot is stopped (rc=$rc)" test "$rc" = 65
check "  by its timeout" grep -q "timeout of 300 ms" "$tmp/e"
cli --set detection.max_subquery_depth=5 query "SELECT (SELECT (SELECT (SELECT 1)))" >/dev/null 2>&1; rc=$?
check "detection.max_subquery_depth raises the nesting cap (rc=$rc)" test "$rc" = 0
cli --set detection.memory_limit_mb=4 query --timeout 60000 "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(DISTINCT x) FROM c" >/dev/null 2>"$tmp/e"; rc=$?
check "a memory-hungry query is stopped by detection.memory_limit_mb (rc=$rc)" test "$rc" = 65
check "  with a clear error" grep -q "its memory limit of 4 MiB (detection.memory_limit_mb)" "$tmp/e"
check "no query changed a byte of the store" test "$sum" = "$(sha256sum <"$db")"
check "the store is still whole" test "$(sqlite3 -readonly "$db" "SELECT count(*) FROM processes")" -gt 0

# ---- rules ----------------------------------------------------------------------
cli rules list >"$tmp/list"; rc=$?
check "rules list exits 0" test "$rc" = 0
check "rules list shows the library with ATT&CK tags" grep -q '^reverse-shell-dev-tcp .*attack.t1059.004' "$tmp/list"
check "rules list shows 28 builtin rules" test "$(grep -c ' builtin ' "$tmp/list")" = 28
cli rules list --format json >"$tmp/lj"
check "rules list --format json" python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); assert len(a)==28 and a[0]["source_type"]=="builtin"' "$tmp/lj"
cli rules show webserver-spawns-shell >"$tmp/show"; rc=$?
check "rules show prints the rule (rc=$rc)" grep -q 'JOIN processes p ON p.pid = c.ppid' "$tmp/show"
cli rules show nope >/dev/null 2>&1; rc=$?
check "rules show of an unknown id exits 66 (rc=$rc)" test "$rc" = 66
cli rules schema >"$tmp/schema"
check "rules schema lists processes columns and functions" grep -q '^  executable_path' "$tmp/schema"
check "  and the function allowlist" grep -q '^functions: count sum' "$tmp/schema"

cat >"$tmp/good.yaml" <<'YAML'
rules:
  - id: test-esc-shell
    name: Shell with an escape sequence in its arguments
    severity: medium
    tags: [attack.t1059.004]
    sql: SELECT pid, name, executable_path FROM processes WHERE command_line LIKE '%de-esc-%' AND name = 'sh'
YAML
cat >"$tmp/bad.yaml" <<'YAML'
- id: fine
  name: Fine
  severity: low
  sql: SELECT pid FROM processes
- id: writes
  name: Writes
  severity: low
  sql: DELETE FROM processes
YAML
cli rules validate "$tmp/good.yaml" >"$tmp/o" 2>&1; rc=$?
check "rules validate on a good file exits 0 (rc=$rc)" test "$rc" = 0
cli rules validate "$tmp/good.yaml" "$tmp/bad.yaml" >"$tmp/o" 2>&1; rc=$?
check "rules validate with a bad rule exits 65 (rc=$rc)" test "$rc" = 65
check "  naming file:line of the bad rule" grep -q "bad.yaml:8:8: rule 'writes': DELETE on processes" "$tmp/o"
check "  while the good one loads" grep -q "bad.yaml: 1 rule OK, 1 rejected" "$tmp/o"
cli rules test "$tmp/good.yaml" >"$tmp/o" 2>&1; rc=$?
check "rules test FILE runs over the snapshot (rc=$rc)" grep -q "rule test-esc-shell: 1 alert" "$tmp/o"
check "  and prints the alert with no raw escape byte" test -z "$(grep -l $'\033' "$tmp/o")"
cli rules test "$tmp/good.yaml" --format json >"$tmp/o" 2>&1; rc=$?
check "rules test FILE --format json (options after the argument)" python3 -c 'import json,sys; a=json.loads(open(sys.argv[1]).readline()); assert a["rule_id"]=="test-esc-shell"' "$tmp/o"
cli rules test deleted-executable >"$tmp/o" 2>&1; rc=$?
check "rules test ID (rc=$rc)" grep -q "rule deleted-executable: " "$tmp/o"
cli rules import "$tmp/bad.yaml" >/dev/null 2>"$tmp/e"; rc=$?
check "import of a file with a bad rule is refused (rc=$rc)" test "$rc" = 65
cli rules import "$tmp/good.yaml" >"$tmp/o"; rc=$?
check "import of a good file exits 0 (rc=$rc)" test "$rc" = 0
check "  and installs it" test -s "$tmp/state/rules.d/good.yaml"
check "  appears in the list as a user rule" grep -q '^test-esc-shell .* user ' <(cli rules list)
cli rules import "$tmp/good.yaml" >/dev/null 2>"$tmp/e"; rc=$?
check "importing it twice is refused with 65 (rc=$rc)" test "$rc" = 65
check "  naming the duplicate" grep -q "duplicate rule id 'test-esc-shell'" "$tmp/e"
cli rules disable exec-from-tmp >/dev/null; rc=$?
check "rules disable exits 0 (rc=$rc)" test "$rc" = 0
check "rules disable" grep -q '^exec-from-tmp .* no ' <(cli rules list)
cli rules enable exec-from-tmp >/dev/null; rc=$?
check "rules enable exits 0 (rc=$rc)" test "$rc" = 0
check "rules enable" grep -q '^exec-from-tmp .* yes ' <(cli rules list)
cli rules disable test-esc-shell >/dev/null; rc=$?
check "rules disable of an imported rule exits 0 (rc=$rc)" test "$rc" = 0
cli rules disable nope >/dev/null 2>&1; rc=$?
check "disable of an unknown id exits 66 (rc=$rc)" test "$rc" = 66
# (the run with the rule disabled must have run its cycle: exit 0, and the
# same run with it enabled, next, alerts)
"$bin/daemoneye-agent" --once "${S[@]}" --set alerting.stdout.format=json >"$tmp/a" 2>/dev/null
rc=$?
check "agent --once with a rule disabled exits 0 (rc=$rc)" test "$rc" = 0
check "the agent honours a disabled rule" test -z "$(grep '"test-esc-shell"' "$tmp/a")"
cli rules enable test-esc-shell >/dev/null; rc=$?
check "rules enable of an imported rule exits 0 (rc=$rc)" test "$rc" = 0
"$bin/daemoneye-agent" --once "${S[@]}" --set alerting.stdout.format=json >"$tmp/a" 2>/dev/null
rc=$?
check "agent --once with it enabled exits 0 (rc=$rc)" test "$rc" = 0
check "the agent runs an imported, enabled rule" grep -q '"rule_id": *"test-esc-shell"' "$tmp/a"
sed 's/test-esc-shell/test-cmdline-file/' "$tmp/good.yaml" >"$tmp/extra.yaml"
"$bin/daemoneye-agent" --once "${S[@]}" --rules "$tmp/extra.yaml" --set alerting.stdout.format=json >"$tmp/a" 2>/dev/null
rc=$?
check "agent --once --rules FILE exits 0 (rc=$rc)" test "$rc" = 0
check "agent --rules FILE loads and runs its rules" grep -q '"rule_id": *"test-cmdline-file"' "$tmp/a"
"$bin/daemoneye-agent" --once "${S[@]}" --rules "$tmp/absent.yaml" >/dev/null 2>"$tmp/e"; rc=$?
check "agent --rules with a missing file exits 66 (rc=$rc)" test "$rc" = 66
check "  naming the file" grep -q "absent.yaml" "$tmp/e"
cli rules export >"$tmp/all.yaml"; rc=$?
check "rules export exits 0 (rc=$rc)" test "$rc" = 0
cli rules validate "$tmp/all.yaml" >"$tmp/o" 2>&1; rc=$?
check "rules export loads back (rc=$rc)" grep -q "all.yaml: 29 rules OK, 0 rejected" "$tmp/o"
cli rules export reverse-shell-dev-tcp >"$tmp/one.yaml"; rc=$?
check "rules export ID exits 0 (rc=$rc)" test "$rc" = 0
check "rules export ID exports one" test "$(grep -c '^- id:' "$tmp/one.yaml")" = 1
cli rules frobnicate >/dev/null 2>&1; rc=$?
check "an unknown subcommand exits 64 (rc=$rc)" test "$rc" = 64

echo "integration_query: $fails failed"
[ "$fails" = 0 ]
