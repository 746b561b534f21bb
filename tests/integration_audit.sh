#!/bin/bash
# integration_audit.sh BINDIR — the audit ledger end to end through the CLI:
# keygen, a ledger written by tests/audit_fill (as the agent will), audit
# verify/log/checkpoint/prove/consistency, the exported checkpoint checked
# with openssl alone (docs/audit.md's commands), and each tamper done with
# the sqlite3 tool as an attacker would (DROP TRIGGER first) caught by
# `audit verify` with exit 65; unreadable things exit 66/74/77 instead.
set -u
bin=$1
tmp=$(mktemp -d /tmp/de-it-audit-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/lib.sh"
hermetic "$tmp/home"
export LC_ALL=C

cli=$bin/daemoneye-cli
keys=$tmp/keys
ledger=$tmp/audit.sqlite
run() { "$cli" --set "audit.path=$ledger" --set "audit.public_key_path=$keys/audit.pub" "$@"; }

# ---- keys ---------------------------------------------------------------------
"$cli" keygen --out "$keys" >/dev/null; rc=$?
check "keygen exits 0" test "$rc" = 0
check "keygen: private key is 0600" test "$(stat -c %a "$keys/audit.key")" = 600
check "keygen: PKCS#8 PEM private key" grep -q '^-----BEGIN PRIVATE KEY-----$' "$keys/audit.key"
check "keygen: SPKI PEM public key" grep -q '^-----BEGIN PUBLIC KEY-----$' "$keys/audit.pub"
check "keygen: openssl reads it as ED25519" sh -c "openssl pkey -in '$keys/audit.key' -noout -text | grep -q ED25519"
"$cli" keygen --out "$keys" >/dev/null 2>&1; rc=$?
check "keygen never overwrites (rc=$rc)" test "$rc" != 0
"$cli" keygen --out "$tmp/other" >/dev/null

# ---- a ledger ------------------------------------------------------------------
"$bin/audit_fill" "$ledger" 250 "$keys/audit.key" 50
check "the ledger is 0600" test "$(stat -c %a "$ledger")" = 600
run audit verify >"$tmp/out"; rc=$?
check "verify: intact exits 0 (rc=$rc)" test "$rc" = 0
check "verify: reports 250 entries" grep -q '^entries      250$' "$tmp/out"
check "verify: signatures verified" grep -q 'signatures verified' "$tmp/out"
run audit verify --format json >"$tmp/j"
check "verify --format json" python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["result"]=="intact" and d["entries"]==250' "$tmp/j"
run audit log --limit 3 >"$tmp/log"
check "log: a header and 3 rows" test "$(wc -l <"$tmp/log")" = 4
run audit log --actor cli:uid=0 --action scan --format ndjson >"$tmp/log"
check "log: filters (odd multiples of 5 up to 250: 25)" test "$(wc -l <"$tmp/log")" = 25
check "log --format ndjson rows are JSON" python3 -c '
import json,sys
for l in open(sys.argv[1]):
    d = json.loads(l); assert d["actor"] == "cli:uid=0" and d["action"] == "scan" and "i" in d["payload"]' "$tmp/log"
run audit log --format json --since 2000-01-01 >"$tmp/j"
check "log --format json --since" python3 -c 'import json,sys; assert len(json.load(open(sys.argv[1])))==250' "$tmp/j"
run audit prove 17 >"$tmp/p"; rc=$?
check "prove 17 exits 0" test "$rc" = 0
check "prove prints the proof" grep -q 'inclusion proof (8 hashes' "$tmp/p"
run audit prove 17 --size 100 --format json >"$tmp/p"
check "prove --size --format json" python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["tree_size"]==100 and len(d["proof"])==7' "$tmp/p"
run audit prove 251 2>/dev/null; rc=$?
check "prove past the end exits 65 (rc=$rc)" test "$rc" = 65
run audit consistency 100 250 >"$tmp/p"; rc=$?
check "consistency 100 250 exits 0" test "$rc" = 0
run audit consistency 0 250 2>/dev/null; rc=$?
check "consistency from 0 is refused (rc=$rc)" test "$rc" = 65
run audit prove x 2>/dev/null; rc=$?
check "prove x is a usage error (rc=$rc)" test "$rc" = 64

# ---- the exported checkpoint, checked with openssl alone -----------------------
run audit checkpoint --export "$tmp/cp.note"; rc=$?
check "checkpoint --export exits 0" test "$rc" = 0
check "the note: origin, size, root, blank, signature" python3 - "$tmp/cp.note" <<'PY'
import base64, sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
assert lines[0] == "test.host/daemoneye/audit" and lines[1] == "250", lines
assert len(base64.b64decode(lines[2], validate=True)) == 32
assert lines[3] == "" and lines[4].startswith("\u2014 test.host/daemoneye/audit ") and lines[5] == ""
assert len(base64.b64decode(lines[4].split(" ")[2], validate=True)) == 68
PY
# docs/audit.md: the body is everything before the blank line; the signature
# is the last field of the signature line, base64, after a 4-byte key id.
sed '/^$/,$d' "$tmp/cp.note" >"$tmp/cp.body"
sed -n 's/^\xe2\x80\x94 [^ ]* //p' "$tmp/cp.note" | head -n 1 | base64 -d | tail -c 64 >"$tmp/cp.sig"
check "openssl pkeyutl verifies the exported checkpoint" \
	openssl pkeyutl -verify -pubin -inkey "$keys/audit.pub" -rawin -in "$tmp/cp.body" -sigfile "$tmp/cp.sig"
check "... and not with another key" sh -c "! openssl pkeyutl -verify -pubin -inkey '$tmp/other/audit.pub' -rawin -in '$tmp/cp.body' -sigfile '$tmp/cp.sig' >/dev/null 2>&1"
sed 's/^250$/249/' "$tmp/cp.body" >"$tmp/cp.body2"
check "... and not once the note is altered" sh -c "! openssl pkeyutl -verify -pubin -inkey '$keys/audit.pub' -rawin -in '$tmp/cp.body2' -sigfile '$tmp/cp.sig' >/dev/null 2>&1"
run audit verify --checkpoint "$tmp/cp.note" >/dev/null; rc=$?
check "verify --checkpoint (intact) exits 0" test "$rc" = 0

# ---- tampering with the sqlite3 tool ----------------------------------------------
drop="DROP TRIGGER entries_no_update; DROP TRIGGER entries_no_delete; DROP TRIGGER entries_in_sequence;
DROP TRIGGER checkpoints_no_delete; DROP TRIGGER merkle_nodes_no_delete; PRAGMA ignore_check_constraints=ON;"
# tamper NAME SQL [VERIFY-ARGS...]: a copy tampered with; expects exit 65 naming entry/problem
tamper() {
	local name=$1 sql=$2 want=$3; shift 3
	cp "$ledger" "$tmp/$name.sqlite"
	sqlite3 "$tmp/$name.sqlite" "$drop $sql" || { bad "$name: sqlite3 failed"; return; }
	"$cli" --set "audit.path=$tmp/$name.sqlite" --set "audit.public_key_path=$keys/audit.pub" \
		audit verify "$@" >/dev/null 2>"$tmp/err"; local rc=$?
	check "$name: verify exits 65 (rc=$rc)" test "$rc" = 65
	check "$name: the message says '$want'" grep -q -- "$want" "$tmp/err"
}
tamper edited-payload "UPDATE entries SET payload='{\"i\":0}' WHERE seq=42" "entry 42: its payload"
tamper edited-hash "UPDATE entries SET entry_hash=randomblob(32) WHERE seq=7" "entry 7: its fields"
tamper deleted "DELETE FROM entries WHERE seq=100" "entry 100 is missing"
tamper inserted "UPDATE entries SET seq=-(seq+1) WHERE seq>=60; UPDATE entries SET seq=-seq WHERE seq<0;
INSERT INTO entries SELECT 60, ts_ms, actor, action, payload, payload_hash, previous_hash, entry_hash FROM entries WHERE seq=59" \
	"entry 60 was written as entry 59"
tamper swapped "UPDATE entries SET seq=-1 WHERE seq=120; UPDATE entries SET seq=120 WHERE seq=121; UPDATE entries SET seq=121 WHERE seq=-1" \
	"entry 120 was written as entry 121"
tamper truncated "DELETE FROM entries WHERE seq>230" "tail truncated"
tamper truncated-hidden "DELETE FROM entries WHERE seq>230; DELETE FROM checkpoints WHERE size>230" \
	"the given checkpoint attests 250" --checkpoint "$tmp/cp.note"
# the whole history rewritten with every hash recomputed (the attacker's own
# tooling = our code, without the key): only the exported checkpoint tells
rm -f "$tmp/forged.sqlite"
"$bin/audit_fill" "$tmp/forged.sqlite" 251
"$cli" --set "audit.path=$tmp/forged.sqlite" audit verify >/dev/null 2>&1; rc=$?
check "rewritten: self-consistent on its own (rc=$rc)" test "$rc" = 0
"$cli" --set "audit.path=$tmp/forged.sqlite" audit verify --checkpoint "$tmp/cp.note" >/dev/null 2>"$tmp/err"; rc=$?
check "rewritten: caught by the exported checkpoint (rc=$rc)" test "$rc" = 65
check "rewritten: through the consistency proof" grep -q "not consistent with the ledger's 251 entries: history rewritten" "$tmp/err"
# checkpoints: another key, altered after signing
run audit verify --pubkey "$tmp/other/audit.pub" >/dev/null 2>"$tmp/err"; rc=$?
check "another key: exits 65 (rc=$rc)" test "$rc" = 65
check "another key: says so" grep -q "another key" "$tmp/err"
sed 's/^250$/249/' "$tmp/cp.note" >"$tmp/altered.note"
run audit verify --checkpoint "$tmp/altered.note" >/dev/null 2>"$tmp/err"; rc=$?
check "altered note: exits 65 (rc=$rc)" test "$rc" = 65
check "altered note: says so" grep -q "altered after signing" "$tmp/err"
printf 'garbage\n' >"$tmp/bad.note"
run audit verify --checkpoint "$tmp/bad.note" >/dev/null 2>"$tmp/err"; rc=$?
check "malformed note: exits 65 (rc=$rc)" test "$rc" = 65
check "malformed note: names the line" grep -q "malformed checkpoint: line" "$tmp/err"

# ---- cannot read: distinct exit codes, nothing touched ------------------------------
"$cli" --set "audit.path=$tmp/none.sqlite" audit verify >/dev/null 2>&1; rc=$?
check "no ledger: exits 66 (rc=$rc)" test "$rc" = 66
check "no ledger: none created" test ! -e "$tmp/none.sqlite"
head -c 8192 /dev/urandom >"$tmp/corrupt.sqlite"
sum=$(sha256sum <"$tmp/corrupt.sqlite")
"$cli" --set "audit.path=$tmp/corrupt.sqlite" audit verify >/dev/null 2>"$tmp/err"; rc=$?
check "corrupt file: exits 65 or 74, not 0 (rc=$rc)" test "$rc" = 74 -o "$rc" = 65
check "corrupt file: untouched" test "$(sha256sum <"$tmp/corrupt.sqlite")" = "$sum"
run audit verify --checkpoint "$tmp/missing.note" >/dev/null 2>&1; rc=$?
check "missing checkpoint file: exits 66 (rc=$rc)" test "$rc" = 66
cp "$keys/audit.key" "$tmp/loose.key"; chmod 644 "$tmp/loose.key"
sum=$(sha256sum <"$ledger")
"$cli" --set "audit.path=$ledger" --set "audit.private_key_path=$tmp/loose.key" audit checkpoint --sign >/dev/null 2>"$tmp/err"; rc=$?
check "loose key permissions: refused (rc=$rc)" test "$rc" = 65
check "loose key permissions: says so" grep -q "looser than 0600" "$tmp/err"
check "loose key permissions: ledger untouched" test "$(sha256sum <"$ledger")" = "$sum"
"$cli" --set "audit.path=$ledger" --set "audit.private_key_path=$keys/audit.key" audit checkpoint --sign >"$tmp/new.note"; rc=$?
check "checkpoint --sign with the right key (rc=$rc)" test "$rc" = 0 -a -s "$tmp/new.note"
if [ "$(id -u)" = 0 ]; then
	# the same as a normal user, in a directory of its own
	nb=$(mktemp -d /tmp/de-it-audit-nobody-XXXXXX)
	trap 'rm -rf "$tmp" "$nb"' EXIT
	chown nobody "$nb"
	as_nobody() { HOME=$nb setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
	as_nobody "$cli" keygen --out "$nb/keys" >/dev/null; rc=$?
	check "as nobody: keygen (rc=$rc)" test "$rc" = 0
	as_nobody "$bin/audit_fill" "$nb/a.sqlite" 30 "$nb/keys/audit.key" 10; rc=$?
	check "as nobody: a signed ledger (rc=$rc)" test "$rc" = 0
	as_nobody "$cli" --set "audit.path=$nb/a.sqlite" --set "audit.public_key_path=$nb/keys/audit.pub" \
		audit verify >"$tmp/out" 2>&1; rc=$?
	check "as nobody: verify intact (rc=$rc)" test "$rc" = 0
	check "as nobody: signatures verified" grep -q 'signatures verified' "$tmp/out"
	as_nobody "$bin/audit_fill" "$nb/b.sqlite" 3 "$keys/audit.key" 2>"$tmp/err"; rc=$?
	check "as nobody: root's key cannot be read (rc=$rc)" test "$rc" != 0
	check "as nobody: and no ledger was made" test ! -e "$nb/b.sqlite"
	chmod 600 "$ledger"
	HOME=/ setpriv --reuid=nobody --regid=nogroup --clear-groups "$cli" --set "audit.path=$ledger" audit verify >/dev/null 2>&1; rc=$?
	check "unreadable ledger (another user): exits 77 (rc=$rc)" test "$rc" = 77
fi

echo "integration_audit: $fails failed"
[ "$fails" = 0 ]
