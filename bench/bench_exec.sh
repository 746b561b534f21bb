#!/bin/sh
# bench_exec.sh BINDIR — exec -> alert through the real agent and procmond
# in event mode (DESIGN.md: p99 <= 10 ms with eBPF), on a quiet host and
# with /bin/true spawned at 1,000 per second beside, and the same with the
# sensor's wake gap fixed at 4 ms (reported only); see bench_exec.py.
set -eu
python3 "$(dirname "$0")/bench_exec.py" "${1:-build/bin}"
python3 "$(dirname "$0")/bench_exec.py" "${1:-build/bin}" --under-load
# reported only: the sensor's wake gap fixed at 4 ms, the same flood
exec python3 "$(dirname "$0")/bench_exec.py" "${1:-build/bin}" --under-load --gap4
