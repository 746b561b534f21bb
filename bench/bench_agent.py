#!/usr/bin/env python3
"""bench_agent.py BINDIR [N] — the whole service at N idle processes (default
10,000): DESIGN.md's "CPU at 10,000 processes, 30 s interval <= 1% of one
core" and "RSS agent <= 40 MB, procmond <= 16 MB", and issue 13's "the
parent <= 4 MB", with the metrics (textfile and loopback listener), the
health report and the audit ledger on, as a service runs in the default
configuration (checkpoints unsigned: with a signing key the parent loads
libcrypto, measured by bench_exec); and issue 12's "a scan pays <= 1 ms for the ledger's
appends at 10,000 processes", from the worker's own measure of each cycle's
ledger time (daemoneye_audit_scan_cost_seconds: its entries and their
commit), the largest of the measured cycles.

Spawns N idle children (/bin/sleep, each reaped by its pid afterwards), runs
daemoneye-agent with the budget's 30 s scan interval, lets it finish its
first scan and one rescan (the start-up cost is not steady state), then
counts the CPU time (user + system, from /proc/PID/stat) that the three
processes — the privileged parent, the worker and procmond — use over the
next CYCLES cycles, divided by the wall time they took: the share of one
core, with everything that runs between cycles (the worker's heartbeats
and metrics, the parent's watchdog samples) counted as it happens.  RSS is
each process's peak (VmHWM).
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import ratio, cpu_s  # noqa: E402

CYCLES = 2
INTERVAL_MS = 30000


def hwm_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        m = re.search(r"VmHWM:\s+(\d+) kB", f.read())
    return int(m.group(1)) / 1024.0


def ledger_cost_ms(prom):
    with open(prom) as f:
        m = re.search(r"^daemoneye_audit_scan_cost_seconds (\S+)$", f.read(), re.M)
    return 1000.0 * float(m.group(1)) if m else float("nan")


def events_received(prom):
    """The process events the worker received so far (every source), from the textfile."""
    try:
        with open(prom) as f:
            return sum(float(v) for v in re.findall(
                r"^daemoneye_events_received_total(?:\{[^}]*\})? (\S+)$", f.read(), re.M))
    except OSError:
        return 0.0


def scans_done(log):
    with open(log) as f:
        return len(re.findall(r"info: scan \d+: \d+ processes", f.read()))


def main():
    bindir = sys.argv[1] if len(sys.argv) > 1 else "build/bin"
    n = min(int(sys.argv[2]) if len(sys.argv) > 2 else 10000, 10000)  # shared pid budget
    tmp = tempfile.mkdtemp(prefix="de-bench-agent-")
    os.chmod(tmp, 0o755)
    kids = []
    agent = None
    status = 0
    try:
        for _ in range(n):
            try:
                kids.append(os.posix_spawn("/bin/sleep", ["sleep", "3600"], os.environ))
            except OSError as e:
                print(f"spawn: {e} after {len(kids)} children", file=sys.stderr)
                break
        print(f"-- {len(kids)} idle children; agent scanning every {INTERVAL_MS} ms")
        log = os.path.join(tmp, "agent.log")
        agent = subprocess.Popen(
            [f"{bindir}/daemoneye-agent", "--set", f"app.state_dir={tmp}/state",
             "--set", "detection.rules_dirs=[]",
             "--set", f"app.scan_interval_ms={INTERVAL_MS}",
             "--set", "metrics.listen=127.0.0.1:0",
             "--set", "alerting.stdout.format=json",
             "--set", "audit.enabled=true"] + sys.argv[3:],
            stdout=subprocess.DEVNULL, stderr=open(log, "w"))

        def wait_scans(k):
            deadline = time.monotonic() + 2 * INTERVAL_MS / 1000 + 120
            while scans_done(log) < k:
                if agent.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the agent stopped or stalled:\n" + open(log).read())
                time.sleep(0.02)

        wait_scans(2)
        text = open(log).read()
        m = re.search(r"started: worker pid (\d+) \(.*\), procmond pid (\d+)", text)
        worker = int(m.group(1))
        pm = int(re.findall(r"procmond pid (\d+) started", text)[-1])
        procs = {"parent": agent.pid, "worker": worker, "procmond": pm}
        c0, t0 = {k: cpu_s(p) for k, p in procs.items()}, time.monotonic()
        prom = os.path.join(tmp, "state", "daemoneye.prom")
        ev0 = events_received(prom)
        ledger = []
        for k in range(CYCLES):
            wait_scans(3 + k)
            time.sleep(1.5)  # the textfile is written at most once a second
            ledger.append(ledger_cost_ms(prom))
        c1, t1 = {k: cpu_s(p) for k, p in procs.items()}, time.monotonic()
        per = {k: (c1[k] - c0[k]) / CYCLES for k in procs}
        # the host's own activity: every exec and exit anywhere is an event the
        # worker stores and runs the rules on, on top of the idle children
        # (--set collection.events=false after N measures the scans alone)
        ev = events_received(prom) - ev0
        print(f"process events from the host during the measure: {ev:.0f} "
              f"({ev / (t1 - t0):.1f}/s; a quiet host has about none)")
        print(f"steady cycle at {len(kids)} processes: " +
              " + ".join(f"{k} {1000 * v:.0f} ms" for k, v in per.items()) +
              f" CPU per cycle ({CYCLES} cycles in {t1 - t0:.1f} s)")
        ratio("CPU at a 30 s interval (% of one core)",
              100.0 * CYCLES * sum(per.values()) / (t1 - t0), 1.0, "<=", 1.0)
        ratio("worker peak RSS (MB)", hwm_mb(worker), 40.0, "<=", 1.0)
        ratio("procmond peak RSS (MB)", hwm_mb(pm), 16.0, "<=", 1.0)
        ratio("privileged parent peak RSS (MB)", hwm_mb(agent.pid), 4.0, "<=", 1.0)
        print("audit ledger per cycle: " + ", ".join(f"{v:.3f} ms" for v in ledger))
        ratio("audit ledger's cost per scan (ms)", max(ledger), 1.0, "<=", 1.0)
    except RuntimeError as e:
        print(f"bench_agent: {e}", file=sys.stderr)
        status = 1
    finally:
        if agent:
            agent.terminate()
            agent.wait()
        for k in kids:
            os.kill(k, signal.SIGTERM)
        for k in kids:
            os.waitpid(k, 0)
        subprocess.run(["rm", "-rf", tmp])
    return status


if __name__ == "__main__":
    sys.exit(main())
