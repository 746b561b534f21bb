#!/bin/sh
# bench_sensor.sh BINDIR — the kernel sensor: short-lived processes on
# saturated CPUs, and CPU at 1,000 execs/s; see bench_sensor.py.
set -eu
exec python3 "$(dirname "$0")/bench_sensor.py" "${1:-build/bin}"
