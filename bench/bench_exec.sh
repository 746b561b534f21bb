#!/bin/sh
# bench_exec.sh BINDIR — exec -> alert through the real agent and procmond
# in event mode (DESIGN.md: p99 <= 100 ms); see bench_exec.py.
set -eu
exec python3 "$(dirname "$0")/bench_exec.py" "${1:-build/bin}"
