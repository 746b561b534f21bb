#!/usr/bin/env python3
"""bench_fleet_agents.py BINDIR URL — the fleet's two end-to-end budgets
(issue 16), through the real programs against the nats-server that
bench_fleet.sh started at URL:

1. exec -> alert in a consumer on the stream (p99 <= 50 ms on loopback):
   one daemoneye-agent (as root, so that procmond has the kernel's process
   events) with fleet on, a `nats` alert sink and one rule matching a
   marker in the command line, scans every ten minutes (only the event
   path can raise the alerts in time); the consumer is `daemoneye-cli
   fleet alerts --follow` (an ordered JetStream consumer printing each
   alert as ndjson as it arrives).  N processes living 10 ms
   (`sh -c "sleep 0.01; exit 0" MARKER-i`) are started one at a time, each
   reaped by its pid; the latency is from just before the spawn to the
   moment the consumer's line naming that pid is read.  A first marked
   exec, waited for, is the readiness signal of the whole path (agent,
   sink, stream, consumer) and is not counted.  Skipped when not root, as
   bench_exec.py is.

2. a query fanned out to five agents (p99 <= 200 ms): five agents on this
   machine, each with its own state directory and host id, answering
   queries signed by an operator key (daemoneye-cli keygen); Q times
   `daemoneye-cli fleet query --all --format ndjson`, the time from the
   command's start to the line that completes the rows of all five hosts
   (stdout line-buffered with stdbuf); the command is then stopped, as
   --all would wait its --timeout out for hosts it cannot know of.  Each
   run must return rows from all five within that --timeout (5 s).

Every child is reaped by its pid; the temporary directory is removed.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import marker_rule, percentile, ratio  # noqa: E402

N_EXEC = 200
N_QUERY = 30
N_AGENTS = 5
E2E_BUDGET_MS = 50.0
QUERY_BUDGET_MS = 200.0
QUERY_TIMEOUT_MS = 5000  # --all's wait for answers (stopped once all five are in)


def wait_log(path, needles, proc, seconds=60):
    """Wait until the file at path holds every string of needles; False
    when proc exits first or after seconds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with open(path, errors="replace") as f:
            text = f.read()
        if all(n in text for n in needles):
            return True
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    with open(path, errors="replace") as f:
        sys.stderr.write(f"bench_fleet: {path} did not show {needles}:\n{f.read()}")
    return False


class Run:
    """The children started here, stopped and reaped by pid at the end."""

    def __init__(self, bindir, url):
        self.bindir, self.url = bindir, url
        self.tmp = tempfile.mkdtemp(prefix="de-bench-fleet-agents-")
        os.chmod(self.tmp, 0o755)  # agents drop to nobody and must reach their state
        self.procs = []
        self.logs = []

    def spawn(self, argv, **kw):
        p = subprocess.Popen(argv, **kw)
        self.procs.append(p)
        return p

    def conf(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
        return path

    def agent(self, name, conf, *extra):
        state = os.path.join(self.tmp, name)
        log = os.path.join(self.tmp, name + ".log")
        with open(log, "w") as lf:
            p = self.spawn([f"{self.bindir}/daemoneye-agent", "-c", conf,
                            "--set", f"app.state_dir={state}",
                            "--set", f"fleet.host_id={name}",
                            "--set", "app.scan_interval_ms=600000", *extra],
                           stdout=subprocess.DEVNULL, stderr=lf)
        return p, log

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        status = 0
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                status = 1
        shutil.rmtree(self.tmp, ignore_errors=True)
        return status


def exec_to_consumer(run):
    """Budget 1: exec -> alert read by a consumer on the stream."""
    if os.geteuid() != 0:
        print("exec -> alert in a stream consumer: skipped: the kernel's process events "
              "need root; run make bench as root")
        return 0
    marker = f"de-bench-fleet-{os.getpid()}"
    host = "bench-e2e"
    rules = os.path.join(run.tmp, "e2e-rules.yaml")
    marker_rule(rules, "bench-fleet-marker", marker)
    conf = run.conf("e2e.yaml", f"""detection: {{ builtin_rules: false, rules_dirs: [] }}
alerting:
  deduplication: {{ enabled: false }}
  sinks:
    - {{ name: fleet, type: nats }}
fleet:
  enabled: true
  servers: ["{run.url}"]
""")
    cli = [f"{run.bindir}/daemoneye-cli", "-c", conf,
           "--set", f"app.state_dir={run.tmp}/e2e-cli"]
    if subprocess.run(cli + ["fleet", "init"], stdout=subprocess.DEVNULL).returncode != 0:
        print("exec -> alert in a stream consumer: fleet init failed", file=sys.stderr)
        return 1
    agent, log = run.agent(host, conf, "--rules", rules)
    if not wait_log(log, ["scan 1:"], agent):
        return 1
    with open(log) as f:
        text = f.read()
    source = "ebpf" if "events: ebpf)" in text else "netlink" if "events: netlink" in text \
        else None
    if not source:
        print("exec -> alert in a stream consumer: procmond has no real-time events here",
              file=sys.stderr)
        return 1
    follower = run.spawn(cli + ["fleet", "alerts", "--host", host, "--follow"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    seen = {}  # pid -> monotonic time the consumer's line naming it was read
    lock = threading.Lock()
    arrived = threading.Condition(lock)

    def reader():
        for line in follower.stdout:
            t = time.monotonic()
            try:
                a = json.loads(line)["data"]
            except (ValueError, KeyError, TypeError):
                continue
            if a.get("rule_id") != "bench-fleet-marker":
                continue
            with lock:
                for p in a.get("affected_processes", []):
                    seen.setdefault(p, t)
                arrived.notify_all()

    th = threading.Thread(target=reader, daemon=True)
    th.start()

    def marked(tag):
        t0 = time.monotonic()
        # the shell keeps its marked argv while it waits the 10 ms out
        p = subprocess.Popen(["/bin/sh", "-c", "sleep 0.01; exit 0", f"{marker}-{tag}"])
        p.wait()  # reaped by its pid
        return p.pid, t0

    # readiness of the whole path: a first marked exec, its alert consumed
    wpid, _ = marked("warm")
    with lock:
        if not arrived.wait_for(lambda: wpid in seen, timeout=60):
            print("exec -> alert in a stream consumer: the first alert never reached "
                  "the consumer", file=sys.stderr)
            return 1
    started = {}
    for i in range(N_EXEC):
        pid, t0 = marked(i)
        started[pid] = t0
        time.sleep(0.02)
    with lock:
        arrived.wait_for(lambda: all(p in seen for p in started), timeout=5)
        lat = sorted((seen[p] - t0) * 1000 for p, t0 in started.items() if p in seen)
    got = len(lat)
    lat += [float("inf")] * (N_EXEC - got)  # a missed alert is infinitely late
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    print("exec -> alert in a stream consumer: slowest (ms): " +
          " ".join(f"{x:.0f}" for x in lat[-8:]))
    print(f"exec -> alert in a stream consumer ({source}, nats sink, fleet alerts --follow): "
          f"{got} of {N_EXEC} alerts arrived; p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    ratio(f"exec -> stream consumer ({source}), p99 (ms)",
          p99 if p99 != float("inf") else 1e9, E2E_BUDGET_MS, "<=", 1.0)
    ratio("execs whose alert reached the consumer (%)", 100.0 * got / N_EXEC, 100.0,
          ">=", 0.99)
    # stopped here, not at the end: the query budget needs the cores
    for p in (follower, agent):
        p.terminate()
        p.wait()
    th.join(timeout=5)
    return 0


def query_fanout(run):
    """Budget 2: a signed query to five agents, answers merged."""
    keys = os.path.join(run.tmp, "op")
    os.mkdir(keys)
    subprocess.run([f"{run.bindir}/daemoneye-cli", "keygen", "--out", keys], check=True,
                   stdout=subprocess.DEVNULL)
    os.chmod(keys, 0o755)  # the agents (nobody) read the public key
    conf = run.conf("query.yaml", f"""detection: {{ builtin_rules: false, rules_dirs: [] }}
alerting:
  sinks:
    - {{ name: fleet, type: nats }}
fleet:
  enabled: true
  servers: ["{run.url}"]
  operator_public_key: {keys}/audit.pub
""")
    hosts = [f"bench-q{i}" for i in range(1, N_AGENTS + 1)]
    agents = [run.agent(h, conf) for h in hosts]
    for p, log in agents:
        if not wait_log(log, ["answering queries signed by", "scan 1:"], p):
            return 1
    cli = ["stdbuf", "-oL", f"{run.bindir}/daemoneye-cli", "-c", conf,
           "--set", f"app.state_dir={run.tmp}/q-cli", "fleet", "query",
           "--key", f"{keys}/audit.key", "--all", "--timeout", str(QUERY_TIMEOUT_MS),
           "--format", "ndjson", "SELECT count(*) AS n FROM processes"]
    lat, complete = [], 0
    errpath = os.path.join(run.tmp, "query.err")
    for _ in range(N_QUERY):
        t0 = time.monotonic()
        with open(errpath, "w") as errf:
            p = run.spawn(cli, stdout=subprocess.PIPE, stderr=errf, text=True)
        answered, t_all = set(), None
        for line in p.stdout:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if row.get("host") in hosts and row.get("n", 0) > 0:
                answered.add(row["host"])
            if len(answered) == N_AGENTS:
                t_all = time.monotonic()
                break
        if t_all is not None:
            # all five merged: --all would wait its --timeout out for more
            p.terminate()
            complete += 1
            lat.append((t_all - t0) * 1000)
        else:
            lat.append(float("inf"))
        rc = p.wait()
        p.stdout.close()
        if t_all is None:
            with open(errpath) as errf:
                sys.stderr.write(f"fleet query --all: {len(answered)} of {N_AGENTS} hosts "
                                 f"answered within {QUERY_TIMEOUT_MS} ms (rc {rc}): "
                                 f"{errf.read()}")
    if os.environ.get("DE_BENCH_DEBUG"):
        print("query latencies in order (ms): " + " ".join(f"{x:.0f}" for x in lat))
    lat.sort()
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    print("fleet query --all: slowest (ms): " + " ".join(f"{x:.0f}" for x in lat[-8:]))
    print(f"fleet query --all to {N_AGENTS} agents: {complete} of {N_QUERY} runs returned rows "
          f"from all {N_AGENTS} hosts; command start -> all "
          f"{N_AGENTS} answers: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    ratio(f"query to {N_AGENTS} agents, all answers, p99 (ms)",
          p99 if p99 != float("inf") else 1e9, QUERY_BUDGET_MS, "<=", 1.0)
    ratio(f"queries answered by all {N_AGENTS} hosts (%)", 100.0 * complete / N_QUERY, 100.0,
          ">=", 1.0)
    return 0


def main():
    bindir, url = sys.argv[1], sys.argv[2]
    # a SIGTERM (the shell's trap, a timeout) still stops and reaps the children
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    run = Run(bindir, url)
    status = 1
    try:
        status = exec_to_consumer(run) or query_fanout(run)
    finally:
        status = run.close() or status
    return status


if __name__ == "__main__":
    sys.exit(main())
