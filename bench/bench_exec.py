#!/usr/bin/env python3
"""bench_exec.py BINDIR — the exec -> alert budget (DESIGN.md: p99 <= 10 ms
with the eBPF sensor, <= 100 ms with the netlink fallback), end to end
through the real programs, with the metrics (textfile and loopback
listener), the health report and the audit ledger on (issue 13).

Starts daemoneye-agent (as root, so that procmond subscribes to the kernel's
process events) with one extra rule that matches a marker in the command
line and a scan interval of ten minutes, so that only the event path can
raise the alerts in time.  Once the agent's first full scan is done it
starts N processes that live 10 ms (`sh -c "sleep 0.01; exit 0" MARKER-i`), one
every 20 ms, each reaped by its pid, and takes the time from just before
the spawn to the moment the agent's alert naming that pid is read from its
standard output.  Prints the p50 and p99 latency and the share of execs
that raised their alert, and the p99 as a ratio of the 100 ms budget.

With --under-load (bench_exec.sh runs it after the quiet run) the same
markers run while /bin/true is also spawned at 1,000 per second (each reaped
by its pid): the exec path then batches (detection.exec_batch_wait_ms), and
this is the latency that batching costs, at the rate issue 14's CPU budget
is measured at.  With --gap4 as well, the sensor's wake gap is fixed at
4 ms (collection.ebpf_wake_gap_ms; the default follows the host's CPU,
6 ms while it has idle time), reported only: what the CPU line's gap
costs in latency while execs stream (bench_sensor reports its CPU).

With --hanging-webhook (bench_alerting.sh) the agent also has a file sink
and a webhook sink whose receiver never answers
(tests/receivers/http_receiver.py /hang): the alerts read on standard output
must not wait for it (each sink delivers on its own worker).
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import GAP4, flood_start, flood_stop, marker_rule, percentile, ratio  # noqa: E402

N = 300
FLOOD_RATE = 1000  # /bin/true per second with --under-load
BUDGET_MS = {"ebpf": 10.0, "netlink": 100.0}


def detection(prom, suffix, report_only=False):
    """The agent's own daemoneye_exec_detection_seconds (written at its stop):
    from the kernel's time of each exec (the markers and, under load, the
    flood) to its rules having run, without the spawn before it nor the
    alert's way out after; p99 <= 10 ms is 99% within the 0.01 s bucket."""
    buckets = {}
    try:
        with open(prom) as f:
            for line in f:
                if line.startswith("daemoneye_exec_detection_seconds_bucket{le=\""):
                    le = line.split('"')[1]
                    buckets[float("inf") if le == "+Inf" else float(le)] = float(line.split()[-1])
    except OSError as e:
        print(f"exec -> detection: no metrics textfile ({e})")
        return
    n = buckets.get(float("inf"), 0)
    if not n:
        print("exec -> detection: the agent observed no exec")
        return
    p99 = next(le for le in sorted(buckets) if buckets[le] >= 0.99 * n)
    print(f"exec -> detection in the agent: {n:.0f} execs, {100 * buckets[0.01] / n:.1f}% "
          f"within 10 ms, p99 <= {p99 * 1000:g} ms (bucket bound)")
    if not report_only:
        ratio("execs detected within 10 ms of the exec (%)" + suffix, 100 * buckets[0.01] / n,
              100.0, ">=", 0.99)


def main():
    bindir = sys.argv[1] if len(sys.argv) > 1 else "build/bin"
    hanging = "--hanging-webhook" in sys.argv
    loaded = "--under-load" in sys.argv
    gap = list(GAP4) if "--gap4" in sys.argv else []
    if os.geteuid() != 0:
        print("exec -> alert: skipped: the kernel's process events need root "
              "(CAP_BPF, CAP_NET_ADMIN); run make bench as root")
        return 0
    tmp = tempfile.mkdtemp(prefix="de-bench-exec-")
    os.chmod(tmp, 0o755)  # the agent drops to nobody and must reach its state
    marker = f"de-bench-exec-{os.getpid()}"
    rules = os.path.join(tmp, "bench.yaml")
    marker_rule(rules, "bench-exec-marker", marker)
    log = open(os.path.join(tmp, "agent.log"), "w+")
    extra = []
    receiver = None
    if hanging:
        here = os.path.dirname(os.path.abspath(__file__))
        receiver = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(here, "..", "tests", "receivers",
                                              "http_receiver.py"), os.path.join(tmp, "http.jsonl")],
            stdout=subprocess.PIPE, text=True)
        port = receiver.stdout.readline().split()[1]  # "READY <port>"
        outdir = os.path.join(tmp, "out")
        os.mkdir(outdir)
        os.chmod(outdir, 0o777)  # the agent writes it as nobody
        conf = os.path.join(tmp, "sinks.yaml")
        with open(conf, "w") as f:
            f.write(f"""alerting:
  sinks:
    - {{ name: console, type: stdout, format: json }}
    - {{ name: file, type: file, path: "{outdir}/alerts.jsonl", format: ecs }}
    - {{ name: hang, type: webhook, url: "http://127.0.0.1:{port}/hang", timeout_ms: 30000 }}
""")
        os.chmod(conf, 0o644)
        extra = ["-c", conf]
    # the audit ledger with signed checkpoints, the parent holding the key
    keys = os.path.join(tmp, "keys")
    subprocess.run([f"{bindir}/daemoneye-cli", "keygen", "--out", keys], check=True,
                   stdout=subprocess.DEVNULL)
    extra += ["--set", "audit.enabled=true", "--set", "audit.enable_signatures=true",
              "--set", f"audit.private_key_path={keys}/audit.key",
              "--set", "audit.checkpoint_every_entries=1"]
    agent = subprocess.Popen(
        [f"{bindir}/daemoneye-agent", "--rules", rules] + extra +
        ["--set", f"app.state_dir={tmp}/state", "--set", "detection.rules_dirs=[]",
         "--set", "app.scan_interval_ms=600000", "--set", "alerting.stdout.format=json",
         # as a service runs: the metrics textfile (default) and the listener
         "--set", "metrics.listen=127.0.0.1:0"] + gap,
        stdout=subprocess.PIPE, stderr=log, text=True)
    seen = {}  # pid -> monotonic time its alert was read
    # pid -> how long after its alert was made (alert_time, the rule's match
    # on the agent's wall clock, in ms) it was read here (ms)
    after_made = {}
    lock = threading.Lock()

    def reader():
        for line in agent.stdout:
            t, wall = time.monotonic(), time.time()
            if not line.startswith("{"):
                continue
            a = json.loads(line)
            if a.get("rule_id") != "bench-exec-marker":
                continue
            with lock:
                for p in a.get("affected_processes", []):
                    seen.setdefault(p, t)
                    after_made.setdefault(p, wall * 1000 - a.get("alert_time", 0))

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    status = 0
    flooder = None
    try:
        # ready when the first full scan is logged
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            log.seek(0)
            text = log.read()
            if " processes, " in text and "scan " in text:
                break
            if agent.poll() is not None:
                print("exec -> alert: the agent stopped:\n" + text, file=sys.stderr)
                return 1
            time.sleep(0.05)
        source = "ebpf" if "events: ebpf)" in text else \
            "netlink" if "events: netlink" in text else None
        if not source:
            print("exec -> alert: procmond has no real-time events here:\n" + text,
                  file=sys.stderr)
            return 1
        if loaded:
            # paced: FLOOD_RATE per second, each reaped by its pid, in a
            # process of its own
            flooder = flood_start(FLOOD_RATE)
            time.sleep(1)  # the exec path is batching before the first marker
        started, execd = {}, {}
        t_start = time.monotonic()
        for i in range(N):
            t0 = time.monotonic()
            # the shell keeps its marked argv while it waits the 10 ms out
            p = subprocess.Popen(["/bin/sh", "-c", "sleep 0.01; exit 0", f"{marker}-{i}"])
            started[p.pid] = t0
            # Popen returns once the child's exec is done (its
            # close-on-exec pipe closed), and we are scheduled again
            execd[p.pid] = time.monotonic()
            p.wait()  # reaped by its pid
            time.sleep(0.02)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with lock:
                if all(p in seen for p in started):
                    break
            time.sleep(0.05)
        if flooder:
            rate = flood_stop(flooder) / max(time.monotonic() - t_start + 1, 1e-3)
            flooder = None
        with lock:
            lat = sorted((seen[p] - t0) * 1000 for p, t0 in started.items() if p in seen)
        missed = N - len(lat)
        # a missed alert counts as infinitely late for the p99
        lat += [float("inf")] * missed
        p50, p99 = percentile(lat, 50), percentile(lat, 99)
        print("exec -> alert: slowest (ms): " + " ".join(f"{x:.0f}" for x in lat[-8:]))
        # the budget line is timed from before the spawn: an upper bound,
        # with the spawn's own wait for a core when the CPUs are saturated;
        # from Popen's return it is a lower bound (the exec was before it)
        with lock:
            low = sorted((seen[p] - execd[p]) * 1000 for p in started if p in seen)
        spawn = sorted((execd[p] - t0) * 1000 for p, t0 in started.items())
        print(f"exec -> alert from the spawn's return (a lower bound): p50 "
              f"{percentile(low, 50):.1f} ms, p99 {percentile(low, 99):.1f} ms; the spawn "
              f"itself (fork to exec done): p50 {percentile(spawn, 50):.1f} ms, p99 "
              f"{percentile(spawn, 99):.1f} ms")
        # the way out: from the rule's match (the alert's alert_time) to this
        # reader (the outbox, the stdout sink's write, the pipe and this
        # thread's own wait for a core), to the millisecond of alert_time
        with lock:
            out = sorted(after_made[p] for p in started if p in after_made)
        if out:
            print(f"exec -> alert, from the rule's match to this reader: p50 "
                  f"{percentile(out, 50):.1f} ms, p99 {percentile(out, 99):.1f} ms "
                  f"(alert_time is in whole ms)")
        if os.environ.get("DE_BENCH_DEBUG"):
            order = list(started)
            print("slow (index:ms): " + " ".join(f"{i}:{(seen.get(p, 1e9) - started[p]) * 1000:.0f}" for i, p in enumerate(order) if seen.get(p, 1e9) - started[p] > 0.02))
        what = f" ({source}" + (", a hanging webhook configured" if hanging else "") + \
            (f", /bin/true at {rate:.0f}/s beside" if loaded else "") + \
            (", " + gap[1] if gap else "") + ")"
        print(f"exec -> alert{what}: {N - missed} of {N} execs of 10 ms processes raised "
              f"their alert; p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        if not gap:  # (the fixed gap's figures are reported only)
            ratio(f"exec -> alert ({source}), p99 (ms)" +
                  (", hanging webhook" if hanging else "") +
                  (", 1,000 execs/s" if loaded else ""),
                  p99 if p99 != float("inf") else 1e9, BUDGET_MS[source], "<=", 1.0)
            ratio("execs that raised their alert (%)", 100.0 * (N - missed) / N, 100.0,
                  ">=", 0.99)
        # the parent with the signing key loaded (libcrypto): bench_agent
        # checks its 4 MB in the default configuration, without a key
        with open(f"/proc/{agent.pid}/status") as f:
            hwm = int(f.read().split("VmHWM:")[1].split()[0]) / 1024.0
        print(f"privileged parent peak RSS with the signing key: {hwm:.2f} MB")
    finally:
        if flooder:
            flood_stop(flooder)
        agent.terminate()
        try:
            agent.wait(timeout=30)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
            status = 1
        th.join(timeout=5)
        if status == 0:
            detection(os.path.join(tmp, "state", "daemoneye.prom"),
                      (", hanging webhook" if hanging else "") +
                      (", 1,000 execs/s" if loaded else ""), report_only=bool(gap))
        if receiver:
            receiver.kill()
            receiver.wait()
        log.close()
        subprocess.run(["rm", "-rf", tmp])
    return status


if __name__ == "__main__":
    sys.exit(main())
