#!/bin/sh
# bench_audit.sh BINDIR — the audit ledger's budgets (bench/bench_audit.c):
# batched appends/s, verify_chain over 1,000,000 entries, inclusion proofs
# at 1,000,000.  The ledgers go to a scratch directory under ${TMPDIR:-/tmp}
# (say which file system that is: fsync costs differ).
set -eu
bindir=${1:-build/bin}
dir=$(mktemp -d "${TMPDIR:-/tmp}/de-bench-audit-XXXXXX")
trap 'rm -rf "$dir"' EXIT
echo "file system: $(df -PT "$dir" | awk 'NR==2 {print $2}')"
"$bindir/bench_audit" "$dir"
