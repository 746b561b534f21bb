#!/usr/bin/env python3
"""bench_agent.py BINDIR [N] — the whole agent at N idle processes (default
10,000): DESIGN.md's "CPU at 10,000 processes, 30 s interval <= 1% of one
core" and "RSS agent <= 40 MB, procmond <= 16 MB".

Spawns N idle children (/bin/sleep, each reaped by its pid afterwards), runs
daemoneye-agent with a 3 s scan interval, lets it finish its first scan and
one rescan (the start-up cost is not steady state), then counts the CPU time
(user + system, from /proc/PID/stat) that the agent and procmond use over
the next CYCLES cycles.  CPU per cycle over 30 s is the share of one core at
the budget's 30 s interval (the time between cycles is idle: the agent
waits in poll).  RSS is each program's peak (VmHWM).
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

CYCLES = 4
INTERVAL_MS = 3000


def hwm_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        m = re.search(r"VmHWM:\s+(\d+) kB", f.read())
    return int(m.group(1)) / 1024.0


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
             "--set", "alerting.stdout.format=json"] + sys.argv[3:],
            stdout=subprocess.DEVNULL, stderr=open(log, "w"))

        def wait_scans(k):
            deadline = time.monotonic() + 120
            while scans_done(log) < k:
                if agent.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the agent stopped or stalled:\n" + open(log).read())
                time.sleep(0.02)

        wait_scans(2)
        pm = int(re.search(r"procmond pid (\d+) started", open(log).read()).group(1))
        a0, p0, t0 = cpu_s(agent.pid), cpu_s(pm), time.monotonic()
        wait_scans(2 + CYCLES)
        a1, p1, t1 = cpu_s(agent.pid), cpu_s(pm), time.monotonic()
        per_cycle = ((a1 - a0) + (p1 - p0)) / CYCLES
        print(f"steady cycle at {len(kids)} processes: agent {1000 * (a1 - a0) / CYCLES:.0f} ms "
              f"+ procmond {1000 * (p1 - p0) / CYCLES:.0f} ms CPU per cycle "
              f"({CYCLES} cycles in {t1 - t0:.1f} s)")
        ratio("CPU at a 30 s interval (% of one core)", 100.0 * per_cycle / 30.0, 1.0,
              "<=", 1.0)
        ratio("agent peak RSS (MB)", hwm_mb(agent.pid), 40.0, "<=", 1.0)
        ratio("procmond peak RSS in the agent (MB)", hwm_mb(pm), 16.0, "<=", 1.0)
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
