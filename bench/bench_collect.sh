#!/bin/sh
# bench_collect.sh BINDIR — procmond's budgets (DESIGN.md) as ratios, at
# 1,000 and 10,000 idle children (bench_collect.c reaps each by its pid).
# Hashing and events run once, with the 1,000.
set -eu
bindir=${1:-build/bin}
"$bindir/bench_collect" "$bindir" 1000 full
sync
sleep 5 # the 1,000 just reaped and the hashing's reads settle first
"$bindir/bench_collect" "$bindir" 10000
