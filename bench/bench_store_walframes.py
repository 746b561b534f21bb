#!/usr/bin/env python3
"""bench_store_walframes.py BINDIR [N] -- what the real agent's exec-path
commits write, frame by frame (root; spawns N /bin/true at 1,000 per second,
3,000 by default, reaped by pid).

The agent runs as bench_sensor.py runs it.  Its background checkpointer
starts the WAL over every few hundred ms at this rate, so the WAL is read
every 10 ms while the execs run, each generation of it (its salt) kept as
far as it was seen (a generation stays readable until it is written over
from the start).  Each frame is named by its own
content (b-tree page type and the column count of its first row: processes
28, process_instances 27, scans 11; an index leaf by its columns and whether
the first is text), not through dbstat, which names a page by its last owner
and so misnames pages freed and reused during the run.  Prints frames per
commit by kind, for all commits and split into those that wrote history
(exit batches) and the others.  No budget is judged: a tool for finding what
a commit writes (docs/perf.md, stop 23).
"""
import collections
import os
import shutil
import struct
import sys
import tempfile
import threading
import time

import benchlib


def varint(b, i):
    v = 0
    for k in range(9):
        c = b[i + k]
        if k == 8:
            return (v << 8) | c, i + 9
        v = (v << 7) | (c & 0x7F)
        if c < 0x80:
            return v, i + k + 1
    return v, i + 9


def classify(pg, d):
    """What a page is, from its content."""
    if pg == 1:
        return "page 1 (header, sqlite_schema)"
    if pg == 2:
        return "pointer map (page 2)"
    t = d[0]
    if t not in (2, 5, 10, 13):
        return "free list, pointer map or overflow"
    if t == 5:
        return "table interior"
    ncell = struct.unpack(">H", d[3:5])[0]
    hdr = 8 if t in (10, 13) else 12
    kind = {13: "table leaf", 10: "index leaf", 2: "index interior"}[t]
    if ncell == 0:
        return kind + " (empty)"
    i = struct.unpack(">H", d[hdr:hdr + 2])[0]
    if t == 2:
        i += 4
    _, i = varint(d, i)
    if t == 13:
        _, i = varint(d, i)
    hs, j = varint(d, i)
    cols = []
    while j < i + hs and len(cols) < 40:
        st, j = varint(d, j)
        cols.append(st)
    if t == 13:
        name = {28: "processes", 27: "process_instances", 11: "scans"}.get(len(cols))
        return f"{kind}: {name}" if name else f"{kind}, {len(cols)} columns"
    first = "text" if cols and cols[0] >= 13 and cols[0] % 2 else "integer"
    return f"{kind}, {len(cols)} columns, first {first}"


def read_wal(w):
    """The commits of the log's current generation in w (its bytes): a list
    of frame kinds each, and the generation's salt."""
    if len(w) < 32:
        return None, []
    ps = struct.unpack(">I", w[8:12])[0]
    salt = w[16:24]
    commits, cur, off = [], [], 32
    while off + 24 + ps <= len(w):
        pg, commit = struct.unpack(">II", w[off:off + 8])
        if w[off + 8:off + 16] != salt:
            break
        try:
            kind = classify(pg, w[off + 24:off + 24 + ps])
        except (IndexError, KeyError, struct.error):
            # read while the writer wrote it: its checksum would not match,
            # and the next read of the log (every 10 ms) sees it whole
            break
        cur.append(kind)
        if commit:
            commits.append(cur)
            cur = []
        off += 24 + ps
    return salt, commits


def spawn(n):
    """/bin/true about n times at 1,000 per second, each reaped (benchlib)."""
    t0 = time.monotonic()
    benchlib.spawn_paced(1000, lambda: time.monotonic() - t0 >= n / 1000)


def report(title, commits):
    if not commits:
        return
    n = len(commits)
    kinds = collections.Counter(k for c in commits for k in c)
    print(f"{title}: {n} commits, {sum(map(len, commits)) / n:.2f} frames per commit")
    for k, v in kinds.most_common():
        print(f"  {v / n:6.2f}  {k}")


def main():
    bindir = sys.argv[1] if len(sys.argv) > 1 else "build/bin"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    if os.geteuid() != 0:
        print("walframes: skipped: the agent's eBPF sensor needs root")
        return 0
    tmp = tempfile.mkdtemp(prefix="de-walframes-")
    gens = {}
    os.chmod(tmp, 0o755)
    log = open(f"{tmp}/agent.err", "w")
    ag = benchlib.start_quiet_agent(bindir, f"{tmp}/state", log)
    try:
        for _ in range(300):
            if " processes, " in open(f"{tmp}/agent.err").read():
                break
            time.sleep(0.1)
        time.sleep(1)
        dbp = f"{tmp}/state/events.sqlite"
        # the log is started over every few hundred ms: read it every 10 ms
        # while the execs run, each generation (salt) as far as it got
        th = threading.Thread(target=spawn, args=(n,))
        th.start()
        while th.is_alive():
            with open(dbp + "-wal", "rb") as f:
                salt, commits = read_wal(f.read())
            if salt and len(commits) >= len(gens.get(salt, [])):
                gens[salt] = commits
            time.sleep(0.01)
        th.join()
    finally:
        ag.terminate()
        ag.wait()
    shutil.rmtree(tmp)
    # the first and last generations were read in part (before and after the execs)
    commits = [c for g in list(gens.values())[1:-1] for c in g]
    print(f"walframes: {n} execs at 1,000/s; {len(commits)} commits read back from "
          f"{max(len(gens) - 2, 0)} generations of the log")
    report("all", commits)
    hist = [c for c in commits if "table leaf: process_instances" in c]
    report("with history (exit batches)", hist)
    report("without", [c for c in commits if "table leaf: process_instances" not in c])
    return 0


if __name__ == "__main__":
    sys.exit(main())
