#!/bin/sh
# bench_agent.sh BINDIR — the whole agent's CPU share and both programs' RSS
# at 10,000 idle processes (DESIGN.md); see bench_agent.py.
set -eu
exec python3 "$(dirname "$0")/bench_agent.py" "${1:-build/bin}" 10000
