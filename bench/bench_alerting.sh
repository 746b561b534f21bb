#!/bin/sh
# bench_alerting.sh BINDIR — the alert manager's budgets (issue 11):
# alerts/s through the manager to a file sink and deduplication decisions/s
# at 100,000 live keys (bench_alerting), then exec -> alert through the real
# agent with a webhook sink whose receiver hangs (bench_exec.py
# --hanging-webhook): the stdout and file sinks must stay within the
# exec -> alert budget.
set -eu
bin=${1:-build/bin}
"$bin/bench_alerting" 50000
exec python3 "$(dirname "$0")/bench_exec.py" "$bin" --hanging-webhook
