"""benchlib.py — what the Python benchmarks share: a budget printed as a
ratio against its anchor (the line bench/run.sh collects), a process's
CPU time from /proc, a percentile, and the rule that matches a marker in
the command line (the exec -> alert benchmarks), and /bin/true spawned at a
paced rate (bench_sensor, bench_exec --under-load), in this process or in
a process of its own (flood_start)."""
import os
import select
import subprocess
import sys
import time


def ratio(what, value, anchor, rule, budget):
    """Print VALUE against ANCHOR as a ratio and whether it keeps the budget
    (rule "<=" or ">=")."""
    r = value / anchor if anchor else 0.0
    good = r <= budget if rule == "<=" else r >= budget
    print(f"{what:<44} {value:10.2f} vs {anchor:10.2f}  ratio {r:5.2f}  "
          f"budget {rule} {budget:.2f}  {'ok' if good else 'OVER BUDGET'}", flush=True)


def cpu_s(pid):
    """The CPU time (user + system) process pid has used, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(sorted_values, p):
    """The p-th percentile (nearest rank) of sorted_values, not empty."""
    n = len(sorted_values)
    return sorted_values[min(n - 1, max(0, (n * p + 99) // 100 - 1))]


def marker_rule(path, rule_id, marker):
    """Write at path (mode 644: the agent reads it as nobody) a rules file
    whose rule rule_id matches every process whose command line carries
    "MARKER-"; each such exec is its own alert (its command line is the
    deduplication key)."""
    with open(path, "w") as f:
        f.write(f"""rules:
  - id: {rule_id}
    name: benchmark marker {rule_id}
    description: a process whose command line carries the benchmark's marker
    version: 1
    severity: low
    category: execution
    tags: [attack.t1059.004]
    author: bench
    # each exec is its own thing: its command line (marker-i) is the key, so
    # deduplication folds none of them into another
    dedupe_key_fields: [command_line]
    sql: |
      SELECT pid, name, executable_path, command_line FROM processes
      WHERE command_line LIKE '%{marker}-%'
""")
    os.chmod(path, 0o644)


def spawn_paced(rate, done, argv=("/bin/true", "x"), inflight=64):
    """Spawn argv at rate per second until done() says so, each child reaped
    by its pid as it goes, never more than inflight alive or unreaped at once
    (a machine slower than rate runs as fast as it can, never behind by more
    than that); returns how many were spawned, all reaped."""
    kids, spawned, t0 = [], 0, time.monotonic()
    while not done():
        due = int((time.monotonic() - t0) * rate)
        while spawned < due and len(kids) < inflight and not done():
            kids.append(os.posix_spawn(argv[0], list(argv), {}))
            spawned += 1
        kids = [k for k in kids if os.waitpid(k, os.WNOHANG)[0] == 0]
        time.sleep(0.001)
    for k in kids:
        os.waitpid(k, 0)
    return spawned


def start_quiet_agent(bindir, state_dir, err, extra=()):
    """The agent as bench_sensor and bench_store_walframes run it: no rule
    directory, a full scan every ten minutes, no alert on standard output,
    and the arguments extra; its log on the open file err.  The caller
    waits for its first scan and stops it."""
    return subprocess.Popen(
        [f"{bindir}/daemoneye-agent", "--set", f"app.state_dir={state_dir}",
         "--set", "detection.rules_dirs=[]", "--set", "app.scan_interval_ms=600000",
         "--set", "alerting.stdout.enabled=false"] + list(extra),
        stdout=subprocess.DEVNULL, stderr=err)


# the sensor's wake gap fixed at 4 ms (collection.ebpf_wake_gap_ms): what the
# default (following the host's CPU: 6 ms while it has idle time) saves in
# CPU at 1,000 execs/s, and what it costs in exec -> alert while execs
# stream; bench_sensor and bench_exec report both, measured in one run
GAP4 = ("--set", "collection.ebpf_wake_gap_ms=4")


def flood_start(rate):
    """A process of its own spawning /bin/true at rate per second
    (spawn_paced) until flood_stop: a flood run in a thread of the
    benchmark would hold the interpreter's lock while the benchmark's own
    threads wait to take their time stamps."""
    return subprocess.Popen([sys.executable, os.path.abspath(__file__), "flood", str(rate)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def flood_stop(p):
    """Stop the flood p (its standard input closed) and return how many
    execs it made, all reaped."""
    p.stdin.close()
    out = p.stdout.read()
    p.wait()
    return int(out.strip() or 0)


if __name__ == "__main__" and sys.argv[1:2] == ["flood"]:
    # until the benchmark closes our standard input (readable at end of file)
    print(spawn_paced(int(sys.argv[2]), lambda: bool(select.select([sys.stdin], [], [], 0)[0])),
          flush=True)
