"""benchlib.py — what the Python benchmarks share: a budget printed as a
ratio against its anchor (the line bench/run.sh collects), and a process's
CPU time from /proc."""
import os


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
