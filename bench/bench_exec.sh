#!/bin/sh
# bench_exec.sh BINDIR — exec -> alert through the real agent and procmond
# in event mode (DESIGN.md: p99 <= 10 ms with eBPF), on a quiet host and
# with /bin/true spawned at 1,000 per second beside; see bench_exec.py.
set -eu
python3 "$(dirname "$0")/bench_exec.py" "${1:-build/bin}"
exec python3 "$(dirname "$0")/bench_exec.py" "${1:-build/bin}" --under-load
