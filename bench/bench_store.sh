#!/bin/sh
# bench_store.sh BINDIR — the event store against DESIGN.md's budgets and the
# naive baseline (bench/bench_store.c), then the exec path's event batches
# (bench/bench_store_events.c).  Synthetic records only: spawns no
# processes.  The database files go to a scratch directory under
# ${TMPDIR:-/tmp} (say which file system that is, since fsync costs differ).
set -eu
bindir=${1:-build/bin}
dir=$(mktemp -d "${TMPDIR:-/tmp}/de-bench-store-XXXXXX")
trap 'rm -rf "$dir"' EXIT
echo "file system: $(df -PT "$dir" | awk 'NR==2 {print $2}')"
"$bindir/bench_store" "$dir"
"$bindir/bench_store_events" "$dir"
