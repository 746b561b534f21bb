#!/bin/bash
# integration_fleet_cluster.sh BINDIR — the fleet against a three-node
# nats-server cluster (JetStream, file storage in this test's temporary
# directory, client and route ports on loopback the kernel picked), started
# by the test and stopped by pid:
#   1. the three nodes form a cluster; `fleet init` with stream_replicas 3
#      makes the stream on it;
#   2. a burst of 10,000 alerts published pipelined (tests/fleet_pub.c:
#      de_fleet_publish_many, what the nats sink does), re-sending what was
#      not acknowledged with the same ids as the outbox would, while the node
#      the publisher is connected to (found by name on the nodes' monitoring
#      ports) is killed with SIGKILL in the middle of it;
#   3. afterwards the stream, read from the two nodes left, holds every alert
#      exactly once (the duplicate window dropped the re-sends).
set -u
bin=$1
tmp=$(mktemp -d /tmp/de-it-fleetc-XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"
hermetic "$tmp/home"
PY=/usr/bin/python3

if ! command -v nats-server >/dev/null 2>&1; then
	echo "ok - # SKIP integration_fleet_cluster: nats-server is not installed (make deps)"
	exit 0
fi
read -r P1 P2 P3 C1 C2 C3 M1 M2 M3 <<<"$(free_ports 9)"
routes="nats://127.0.0.1:$C1,nats://127.0.0.1:$C2,nats://127.0.0.1:$C3"
node_pid=()
for i in 1 2 3; do
	p=P$i c=C$i m=M$i
	mkdir -p "$tmp/n$i"
	check "node n$i starts (client ${!p}, route ${!c})" server_start "n$i" \
		"grep -q 'Server is ready' '$tmp/n$i.log'" \
		nats-server -js -sd "$tmp/n$i" -a 127.0.0.1 -p "${!p}" -m "${!m}" -n "n$i" \
		--cluster_name de-it --cluster "nats://127.0.0.1:${!c}" --routes "$routes"
	node_pid[$i]=$server_pid
done
servers="[\"nats://127.0.0.1:$P1\",\"nats://127.0.0.1:$P2\",\"nats://127.0.0.1:$P3\"]"
cli() { "$bin/daemoneye-cli" --set app.state_dir="$tmp/state" --set "fleet.servers=$servers" \
	--set fleet.stream_replicas=3 --set fleet.subject_prefix=clu --set fleet.stream=CLU \
	--set fleet.host_id=burst "$@"; }
# read from the nodes still up (the victim's port refuses)
left() { local l= i; for i in 1 2 3; do [ "$i" = "${victim:-0}" ] && continue; p=P$i
	l="$l${l:+,}\"nats://127.0.0.1:${!p}\""; done; echo "[$l]"; }
# (JetStream elects its meta leader after the routes are up: fleet init works once it has)
init_ok() { cli fleet init >"$tmp/init.out" 2>&1 && grep -q '3 replicas' "$tmp/init.out"; }
check "the cluster makes the stream with 3 replicas" wait_for 60 init_ok
sed 's/^/#   /' "$tmp/init.out"

N=10000
# the publisher stops once, halfway, for the kill (a line on fd 3 lets it go on)
mkfifo "$tmp/go"
exec 3<>"$tmp/go"
DE_FLEET_PUB_PAUSE_AT=$((N / 2)) "$bin/fleet_pub" \
	"nats://127.0.0.1:$P1,nats://127.0.0.1:$P2,nats://127.0.0.1:$P3" clu CLU burst \
	b "$N" 256 1024 0 300 <&3 >"$tmp/pub.out" 2>&1 &
pub=$!
pids+=("$pub")
check "the burst is under way (half of it published)" wait_for 120 grep -q PAUSE "$tmp/pub.out"
# the node the publisher is connected to (its monitoring port lists it by name)
victim=
for i in 1 2 3; do
	m=M$i
	$PY -c '
import json, sys, urllib.request
c = json.load(urllib.request.urlopen("http://127.0.0.1:%s/connz" % sys.argv[1], timeout=10))
sys.exit(0 if any(x.get("name") == "daemoneye burst" for x in c.get("connections") or []) else 1)
' "${!m}" && victim=$i && break
done
check "the publisher's node is found (n${victim:-?})" test -n "$victim"
stop "${node_pid[${victim:-1}]}" KILL
rc=$?
check "the publisher's node killed with SIGKILL in the middle of the burst (rc=$rc)" test "$rc" = 137
echo go >&3
wait "$pub"
rc=$?
check "every alert was acknowledged in the end, re-sending what was not (rc=$rc)" sh -c \
	"[ $rc = 0 ] && grep -q '^acked $N ' '$tmp/pub.out'"
sed 's/^/#   /' "$tmp/pub.out"
# (the cluster answers reads again once the stream and its consumers have new leaders)
read_all() { cli --set "fleet.servers=$(left)" fleet show alerts --host burst \
	>"$tmp/stream.ndjson" 2>"$tmp/show.err"; }
check "the stream is readable from the nodes left" wait_for 120 read_all
sed "s/^/#   /" "$tmp/show.err"
check "the stream holds every alert exactly once" $PY -c '
import json, sys
ids = [json.loads(l)["msg_id"] for l in open(sys.argv[1])]
n = int(sys.argv[2])
assert len(ids) == n, (len(ids), n)
assert sorted(set(ids)) == sorted("b-%d" % i for i in range(n)), "missing or duplicated"
' "$tmp/stream.ndjson" "$N"

echo "integration_fleet_cluster: $fails failed"
[ "$fails" = 0 ]
