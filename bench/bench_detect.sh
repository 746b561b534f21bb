#!/bin/sh
# bench_detect.sh BINDIR — detection budgets (DESIGN.md): every builtin rule
# over a synthetic 10,000-process snapshot (<= 3 ms per rule, median), the
# validator's throughput, and the engine's exec path (p99 <= 100 ms).
set -eu
bindir=${1:-build/bin}
exec "$bindir/bench_detect"
