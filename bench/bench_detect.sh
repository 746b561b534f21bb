#!/bin/sh
# bench_detect.sh BINDIR — detection budgets (DESIGN.md): every builtin rule
# over a synthetic 10,000-process snapshot (<= 3 ms per rule, median), the
# validator's throughput, and the engine's exec path (p99 <= 100 ms); then
# SigmaHQ's Linux process_creation rules (tests/sigma) converted: each one's
# median (<= 3 ms) and the exec path with all builtin and Sigma rules
# (p99 <= 10 ms, issue 15).
set -eu
bindir=${1:-build/bin}
here=$(dirname "$0")
exec "$bindir/bench_detect" "$here/../tests/sigma/sigmahq/linux-process_creation"
