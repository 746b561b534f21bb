#!/bin/sh
# bench_fleet.sh BINDIR — the fleet's publishing budget (issue 16): a
# nats-server with JetStream (file storage in a temporary directory, a
# loopback port) started here and stopped by pid, and bench_fleet against
# it: alerts/s published with acknowledgements, re-sends, and bare round
# trips as the anchor; then, against the same server, real agents
# (bench_fleet_agents.py): exec -> alert in a consumer on the stream, and a
# signed query fanned out to five agents.
set -eu
bin=${1:-build/bin}
command -v nats-server >/dev/null || { echo "bench_fleet: nats-server missing (make deps)"; exit 1; }
tmp=$(mktemp -d /tmp/de-bench-fleet-XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nats-server -js -sd "$tmp/js" -a 127.0.0.1 -p "$port" >"$tmp/nats.log" 2>&1 &
pid=$!
# (nats-server exits 1 on SIGTERM: set -e must not stop the clean-up)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 400); do grep -q "Server is ready" "$tmp/nats.log" && break; sleep 0.05; done
"$bin/bench_fleet" "nats://127.0.0.1:$port" "${BENCH_FLEET_N:-20000}"
python3 "$(dirname "$0")/bench_fleet_agents.py" "$bin" "nats://127.0.0.1:$port"
