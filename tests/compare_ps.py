#!/usr/bin/env python3
"""compare_ps.py PS1 PS2 PROCMOND_JSON — the processes ps saw both before and
after procmond ran (same pid, ppid, uid and name both times) must all be in
procmond's output with the same ppid, name, uid and argv, and exe must equal
readlink(/proc/PID/exe) where it is still readable.  Prints a summary."""
import json, os, sys

def load_ps(path):
    out = {}
    for line in open(path, encoding="utf-8", errors="surrogateescape"):
        f = line.rstrip("\n").split(None, 4)
        if len(f) < 4:
            continue
        pid, ppid, uid, comm = int(f[0]), int(f[1]), f[2], f[3]
        out[pid] = (ppid, uid, comm, f[4] if len(f) > 4 else "")
    return out

ps1, ps2 = load_ps(sys.argv[1]), load_ps(sys.argv[2])
pm = {}
for line in open(sys.argv[3], encoding="utf-8"):
    r = json.loads(line)
    pm[r["pid"]] = r
stable = [p for p in ps1 if p in ps2 and ps1[p][:3] == ps2[p][:3]]
bad = []
checked_args = 0
for p in stable:
    ppid, uid, comm, args = ps1[p]
    r = pm.get(p)
    if r is None:
        bad.append(f"{p}: missing from procmond")
        continue
    if (r["ppid"] or 0) != ppid:
        bad.append(f"{p}: ppid {r['ppid']} != {ppid}")
    if r["user_id"] != uid:
        bad.append(f"{p}: uid {r['user_id']} != {uid}")
    # ps shows comm with non-printables as '?'; compare printable names only
    # ps cuts comm at 15 bytes; kernel workqueue names are longer in stat
    # a kworker renames itself after the work item it runs ("-events",
    # "-cgroup_destroy"...), even between two ps runs: compare the worker
    name = r["name"]
    if comm.startswith("kworker/") and name.startswith("kworker/"):
        comm, name = comm.split("-", 1)[0], name.split("-", 1)[0]
    if comm.isprintable() and name[:len(comm)] != comm and "name_raw" not in r:
        bad.append(f"{p}: name {r['name']!r} != {comm!r}")
    argv = r["command_line"]
    # ps shows control characters as spaces or '?': compare printable argv only
    if argv and all(a.isprintable() for a in argv) and args.isprintable() and "command_line_raw" not in r and ps1[p][3] == ps2[p][3]:
        checked_args += 1
        if " ".join(argv) != args:
            bad.append(f"{p}: argv {argv!r} != {args!r}")
    try:
        exe = os.readlink(f"/proc/{p}/exe")
        if exe.endswith(" (deleted)") and r["platform_data"].get("exe_deleted"):
            exe = exe[: -len(" (deleted)")]
        if r["executable_path"] != exe:
            bad.append(f"{p}: exe {r['executable_path']!r} != {exe!r}")
    except OSError:
        pass
for b in bad:
    print(b)
print(f"{len(stable)} stable processes compared, {checked_args} command lines, {len(bad)} differences")
sys.exit(1 if bad or not stable else 0)
