#!/usr/bin/env python3
"""sigma_agree.py BINDIR [RULE_DIR...] -- proof of meaning for the Sigma
compiler: for every rule it converts, the SQL's verdict (run by
tests/sigma_oracle.c in the real sandbox over a real event store) must
equal the verdict of an independent evaluator of the Sigma specification
(tests/sigma_eval.py) on every generated process record.

Records are built from each rule's own values: exact, wildcards expanded
(with ordinary and hostile fillers), case-varied, with a parent for
Parent* fields, all selections of the rule together (so `not` filters are
exercised) and each alone; then near misses (one character changed,
removed or added, a value moved to the wrong field, the parent's values
given to the child), and hostile strings (quotes, %, _, \\, [, newlines,
tabs, non-ASCII, invalid UTF-8).  Every rule is evaluated over every record
of every rule, so each record is also a negative for the other rules.

Exit status 0 when the two agree everywhere and every rule has at least
one matching and one non-matching record; the summary line gives the
figures.  Deterministic (fixed seed).
"""

import glob
import ipaddress
import os
import random
import re
import re._constants as C
import re._parser as P
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sigma_eval as E  # noqa: E402

rng = random.Random(15)

# pieces of text that are hostile to a compiler of patterns into SQL
HOSTILE = [b"'", b'"', b"%", b"_", b"\\", b"\n", b"\t", b"*", b"?", b"[", b"]", b"''",
           b"\\%", b"%_", "\u00e9".encode(), "\u20ac".encode(), b"\xff", b"\xc3",
           b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\x80", b"\r\n", b"' OR 1=1 --",
           "\u2013".encode(), b"/", b"-", b"\x1b[31m"]
WORDS = [b"", b"x", b"/usr/bin", b" -v ", b"abc", b"0", b"--flag=1", b" ", b"A"]
ONE_CHARS = [b"a", b"Z", b"0", b" ", b"-", "\u00e9".encode(), "\u20ac".encode(),
             "\U0001f600".encode(), b"\xff", b"\x80", b"'", b"%", b"_", b"\\"]


def filler():
    r = rng.random()
    if r < 0.45:
        return rng.choice(WORDS)
    if r < 0.8:
        return rng.choice(HOSTILE)
    return rng.choice(WORDS) + rng.choice(HOSTILE) + rng.choice(WORDS)


def enc(s):
    return s.encode("utf-8", "surrogateescape")


def from_items(items):
    """A byte string matching a Sigma pattern (list of chars, STAR, ONE)."""
    out = []
    for x in items:
        if x is E.STAR:
            out.append(filler())
        elif x is E.ONE:
            out.append(rng.choice(ONE_CHARS))
        else:
            out.append(enc(x))
    return b"".join(out)


# ---- strings matching a regular expression -----------------------------------

CATS = {C.CATEGORY_SPACE: b" ", C.CATEGORY_NOT_SPACE: b"x", C.CATEGORY_DIGIT: b"7",
        C.CATEGORY_NOT_DIGIT: b"d", C.CATEGORY_WORD: b"w", C.CATEGORY_NOT_WORD: b"-"}


def _in_set(items):
    neg = items and items[0][0] == C.NEGATE
    if neg:
        pool = [b"x", b"Q", b"5", b" ", b"-", b"/", b"\xff"]
        rx_items = items[1:]
        for cand in pool:
            c = cand[0]
            hit = False
            for op, av in rx_items:
                if op == C.LITERAL and av == c:
                    hit = True
                elif op == C.RANGE and av[0] <= c <= av[1]:
                    hit = True
                elif op == C.CATEGORY and re.match(
                        {C.CATEGORY_SPACE: rb"\s", C.CATEGORY_DIGIT: rb"\d",
                         C.CATEGORY_WORD: rb"\w"}.get(av, rb"(?!)"), cand):
                    hit = True
            if not hit:
                return cand
        return b"~"
    op, av = rng.choice(items)
    if op == C.LITERAL:
        return bytes([av]) if av < 256 else enc(chr(av))
    if op == C.RANGE:
        return bytes([rng.randint(av[0], min(av[1], 255))])
    if op == C.CATEGORY:
        return CATS.get(av, b"a")
    return b"a"


def from_regex(nodes, groups):
    out = []
    for op, av in nodes:
        if op == C.LITERAL:
            out.append(bytes([av]) if av < 256 else enc(chr(av)))
        elif op == C.NOT_LITERAL:
            out.append(b"x" if av != ord("x") else b"y")
        elif op == C.ANY:
            out.append(b"a")
        elif op == C.IN:
            out.append(_in_set(av))
        elif op == C.BRANCH:
            out.append(from_regex(rng.choice(av[1]), groups))
        elif op == C.SUBPATTERN:
            g = from_regex(av[3], groups)
            if av[0]:
                groups[av[0]] = g
            out.append(g)
        elif op == C.ATOMIC_GROUP:
            out.append(from_regex(av, groups))
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
            lo, hi, sub = av
            n = lo if lo > 0 else rng.choice([0, 1])
            n = min(n if hi == C.MAXREPEAT else min(n, hi), 300)
            out.append(b"".join(from_regex(sub, groups) for _ in range(n)))
        elif op == C.CATEGORY:
            out.append(CATS.get(av, b"a"))
        elif op == C.GROUPREF:
            out.append(groups.get(av, b""))
        # AT (anchors), ASSERT, ASSERT_NOT: nothing to add
    return b"".join(out)


def regex_sample(pattern):
    try:
        return from_regex(P.parse(pattern), {})
    except Exception:
        return b"sample"


# ---- records ------------------------------------------------------------------

PARENT_OF = {"ParentImage": "Image", "ParentCommandLine": "CommandLine", "ParentUser": "User"}
NET = ("DestinationIp", "SourceIp", "DestinationPort", "SourcePort", "Initiated", "Protocol")
PORTS = ("DestinationPort", "SourcePort")
USERS = [b"root", b"daemon", b"www-data", b"user", None]
CWDS = [b"/", b"/tmp", b"/home/user", b"/var/www/html", None]


def addr_text(b):
    """The text daemoneye stores for an address (inet_ntop's form), or None
    when b is not an address this test can store as the same text."""
    try:
        a = ipaddress.ip_address(b.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    if a.version == 6 and (int(a) >> 32) in (0, 0xffff) and int(a) > 0xffff:
        return None  # IPv4-compatible or -mapped: glibc writes them dotted
    return str(a).encode()


def random_addr(v6=None):
    if v6 if v6 is not None else rng.random() < 0.3:
        return rng.choice([b"::1", b"2001:db8::7", b"fe80::1", b"fd00::5", b"2a00:1450::64"])
    return rng.choice([b"127.0.0.1", b"10.1.2.3", b"192.168.1.9", b"8.8.8.8", b"172.20.0.1",
                       b"0.0.0.0", b"93.184.216.34"])


def in_network(net):
    n = ipaddress.ip_network(net, strict=False)
    off = rng.choice([0, n.num_addresses - 1, rng.randrange(n.num_addresses)])
    return addr_text(str(n.network_address + off).encode()) or random_addr(n.version == 6)


def sample_test(t):
    """Bytes (or None) that the field test likely matches; None for no opinion."""
    if t.exists:
        return b"/usr/bin/x" if t.want else None
    groups = t.groups if t.all else [rng.choice(t.groups)]
    pieces = []
    for g in groups:
        kind, arg = rng.choice(g)
        if kind == "null":
            return None
        if kind == "cidr":
            pieces.append(in_network(arg))
            continue
        if kind == "re":
            pieces.append(filler() + regex_sample(arg.pattern.decode("utf-8", "replace"))
                          + filler())
        elif kind == "num":
            return ("num", arg, t.cmp)
        else:
            pieces.append(from_items(_items_of(arg[0].pattern)))
    return b" ".join(pieces)


def _items_of(rx):
    """Back from the evaluator's glob regex to items (to generate from)."""
    items, i = [], 0
    while i < len(rx):
        if rx.startswith(".*", i):
            items.append(E.STAR)
            i += 2
        elif rx[i] == ".":
            items.append(E.ONE)
            i += 1
        elif rx[i] == "\\":
            items.append(rx[i + 1])
            i += 2
        else:
            items.append(rx[i])
            i += 1
    return items


def assign(rule, maps):
    """Field values satisfying the given maps (merged; a field's pieces joined)."""
    fields = {}
    for m in maps:
        for t in m:
            v = sample_test(t)
            if isinstance(v, tuple) and t.field in PORTS:
                _, val, cmp = v
                fields[t.field] = val + {"gt": 1, "lt": -1}.get(cmp, 0)
                continue
            if isinstance(v, tuple):
                fields.setdefault("#num", []).append((t.field, v))
                continue
            if v is None and t.field in ("Image", "ParentImage"):
                fields[t.field] = None
                continue
            if v is None:
                continue
            old = fields.get(t.field)
            fields[t.field] = v if not old else old + b" " + v
    return fields


def case_vary(b):
    return bytes(c ^ 0x20 if (65 <= c <= 90 or 97 <= c <= 122) and rng.random() < 0.5 else c
                 for c in b)


def one_off(b):
    if not b:
        return b"x"
    i = rng.randrange(len(b))
    r = rng.random()
    if r < 0.4:
        c = b[i]
        nc = (c + 1) if c not in (0x7f, 0xff) else 0x41
        return b[:i] + bytes([nc]) + b[i + 1:]
    if r < 0.7:
        return b[:i] + b[i + 1:]
    return b[:i] + rng.choice(HOSTILE + [b"x", b" "]) + b[i:]


def wildcard_swaps(b):
    """Literal %, _, *, ?, [ replaced: what a LIKE/GLOB that forgot to escape would match."""
    out = []
    for ch, rep in ((b"_", b"Q"), (b"%", b"abc"), (b"*", b"zz"), (b"?", b"Y"), (b"[", b"(")):
        if ch in b:
            out.append(b.replace(ch, rep, 1))
    return out


def port(v):
    return v if isinstance(v, int) and 0 <= v <= 65535 else rng.choice([22, 443, 4444, 50501])


def make_conn(f):
    """One TCP connection from a rule's fields (defaults where it has none)."""
    v6 = None
    for k in ("DestinationIp", "SourceIp"):
        if isinstance(f.get(k), bytes) and addr_text(f[k]):
            v6 = b":" in f[k]
    raddr = addr_text(f["DestinationIp"]) if isinstance(f.get("DestinationIp"), bytes) else None
    laddr = addr_text(f["SourceIp"]) if isinstance(f.get("SourceIp"), bytes) else None
    raddr = raddr or random_addr(v6)
    v6 = b":" in raddr
    if not laddr or (b":" in laddr) != v6:
        laddr = random_addr(v6)
    initiated = f.get("Initiated", rng.choice([b"true", b"true", b"false"]))
    kind = "connect" if isinstance(initiated, bytes) and initiated.lower() == b"true" else "accept"
    return {"kind": kind, "family": 6 if v6 else 4, "laddr": laddr, "raddr": raddr,
            "lport": port(f.get("SourcePort")), "rport": port(f.get("DestinationPort"))}


class Records:
    def __init__(self):
        self.list = []  # dicts: pid, ppid, exe, cmd, user, cwd, conn
        self.next = 100

    def add(self, exe, cmd, ppid=None, user=None, cwd=None, conn=None):
        pid = self.next
        self.next += 1
        self.list.append({"pid": pid, "ppid": ppid, "exe": exe, "cmd": cmd if cmd else b"",
                          "user": user, "cwd": cwd, "conn": conn})
        return pid

    def add_fields(self, f, parent_mode="linked", net=False):
        ppid = None
        if any(k in f for k in PARENT_OF) or parent_mode == "stranger":
            pexe = f.get("ParentImage", b"/usr/bin/bash")
            pcmd = f.get("ParentCommandLine", b"bash")
            if parent_mode == "missing":
                ppid = 999999 + rng.randrange(1000)  # a pid with no record
            else:
                ppid = self.add(pexe, pcmd, rng.choice([None, 1]),
                                f.get("ParentUser", rng.choice(USERS)))
        elif rng.random() < 0.3:
            ppid = self.add(b"/usr/sbin/sshd", b"sshd: user [priv]", None, b"root", b"/")
        exe = f.get("Image", b"/usr/bin/" + rng.choice([b"true", b"env", b"sleep"]))
        cmd = f.get("CommandLine", (exe or b"kthread").split(b"/")[-1] + b" " + filler())
        conn = make_conn(f) if net or any(k in f for k in NET) else None
        return self.add(exe, cmd, ppid, f.get("User", rng.choice(USERS)),
                        f.get("CurrentDirectory", rng.choice(CWDS)), conn)


def polarity(node, neg, out):
    """Selections under an even (positive) or odd (negative) number of nots."""
    op, arg = node
    if op == "sel":
        out.setdefault(arg, set()).add(neg)
    elif op == "not":
        polarity(arg, not neg, out)
    else:
        for k in arg:
            polarity(k, neg, out)


def gen_rule_records(rule, recs):
    net = rule.category == "network_connection"
    real_add = recs.add_fields
    recs.add_fields = lambda f, mode="linked": real_add(f, mode, net)
    try:
        _gen_rule_records(rule, recs, net)
    finally:
        recs.add_fields = real_add


def _gen_rule_records(rule, recs, net):
    sels = list(rule.sels.values())
    pol = {}
    polarity(rule.tree, False, pol)
    positive = [rule.sels[n] for n in rule.sels if False in pol[n]]
    all_maps = [m for s in sels for m in s.tests]
    bases = []
    for s in sels:
        for m in s.tests:
            bases.append(assign(rule, [m]))
    for group in (positive, positive, positive, sels):
        pick = [rng.choice(s.tests) for s in group]
        bases.append(assign(rule, pick))
    if len(all_maps) > 1:
        bases.append(assign(rule, rng.sample(all_maps, min(3, len(all_maps)))))
    for f in bases:
        nums = f.pop("#num", [])
        recs.add_fields(f)
        cv = {k: case_vary(v) if isinstance(v, bytes) else v for k, v in f.items()}
        recs.add_fields(cv)
        if any(k.startswith("Parent") for k in f):
            recs.add_fields(f, "missing")
            # the parent's values given to the child instead
            swapped = {PARENT_OF.get(k, k): v for k, v in f.items()}
            recs.add_fields(swapped)
        keys = [k for k, v in f.items() if isinstance(v, bytes)]
        for _ in range(3):
            if not keys:
                break
            k = rng.choice(keys)
            g = dict(f)
            g[k] = one_off(f[k])
            recs.add_fields(g)
        for k in keys:
            for w in wildcard_swaps(f[k]):
                g = dict(f)
                g[k] = w
                recs.add_fields(g)
        if "Image" in f and "CommandLine" in f and f["Image"] is not None:
            g = dict(f)
            g["Image"], g["CommandLine"] = f["CommandLine"], f["Image"]
            recs.add_fields(g)
        if keys:
            k = rng.choice(keys)
            g = dict(f)
            pos = rng.randrange(len(f[k]) + 1)
            g[k] = f[k][:pos] + rng.choice(HOSTILE) + f[k][pos:]
            recs.add_fields(g)
            g = dict(f)
            g[k] = rng.choice(HOSTILE) + f[k] + rng.choice(HOSTILE)
            recs.add_fields(g)
        for field, (_, val, cmp) in nums:
            # ProcessId tests: records get the next pids; nothing to steer
            pass
        for k in PORTS:
            if isinstance(f.get(k), int):
                g = dict(f)
                g[k] = f[k] + 1
                recs.add_fields(g)
        if net:
            # the same connection as a listener and as a failed attempt:
            # neither is a connection for Sigma
            pid = recs.add_fields(f)
            for kind in ("listen", "connect_failed"):
                r = dict(recs.list[-1] if recs.list[-1]["pid"] == pid else {})
                if r.get("conn"):
                    r["conn"] = dict(r["conn"], kind=kind)
                    recs.add(r["exe"], r["cmd"], r["ppid"], r["user"], r["cwd"], r["conn"])


def global_records(recs):
    recs.add(None, b"", user=b"root")
    recs.add(b"/usr/bin/bash", b"bash -i", 1, b"root", b"/root",
             {"kind": "connect", "family": 4, "laddr": b"10.0.0.2", "lport": 40000,
              "raddr": b"10.0.0.1", "rport": 4444})
    recs.add(b"/usr/bin/nc", b"nc -l 4444", 1, b"user", b"/tmp",
             {"kind": "listen", "family": 6, "laddr": b"::", "lport": 4444,
              "raddr": b"::", "rport": 0})
    recs.add(None, b"[kworker/0:1]")
    recs.add(b"/usr/bin/bash", b"")
    recs.add(b"", b"")
    recs.add(b"/usr/bin/python3", b"A" * 5000)
    recs.add(b"/usr/bin/python3", b"\xff" * 64)
    for h in HOSTILE:
        recs.add(b"/tmp/" + h, h + b" " + h)
        recs.add(h, h)
    recs.add(b"/usr/bin/x", b"a\nb\r\nc\td")


def main():
    bindir = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    dirs = sys.argv[2:] or [os.path.join(here, "sigma")]
    files = sorted(f for d in dirs for f in glob.glob(os.path.join(d, "**", "*.yml"),
                                                       recursive=True))
    rules, unsupported = {}, []
    for f in files:
        try:
            rules[f] = E.Rule(open(f, encoding="utf-8").read())
        except (E.Unsupported, KeyError) as ex:
            unsupported.append((f, str(ex)))
    recs = Records()
    global_records(recs)
    for f in sorted(rules):
        gen_rule_records(rules[f], recs)
    with tempfile.TemporaryDirectory(prefix="de-sigma-agree-") as tmp:
        rpath = os.path.join(tmp, "records")
        with open(rpath, "w") as out:
            for r in recs.list:
                c = r["conn"]
                out.write("%d %s %s %s %s %s %s\n" % (
                    r["pid"], "-" if r["ppid"] is None else r["ppid"],
                    "-" if r["exe"] is None else "x" + r["exe"].hex(),
                    "x" + r["cmd"].hex(),
                    "-" if r["user"] is None else "x" + r["user"].hex(),
                    "-" if r["cwd"] is None else "x" + r["cwd"].hex(),
                    "-" if c is None else "%s,%d,%s,%d,%s,%d" % (
                        c["kind"], c["family"], c["laddr"].decode(), c["lport"],
                        c["raddr"].decode(), c["rport"])))
        proc = subprocess.run([os.path.join(bindir, "sigma_oracle"), tmp, rpath, "7"] + files,
                              capture_output=True)
    sys.stderr.write(proc.stderr.decode(errors="replace"))
    sql, refused, problems, summary = {}, {}, [], "no summary from sigma_oracle"
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        parts = line.split("\t")
        if parts[0] == "RULE" and parts[2] == "OK":
            sql[parts[1]] = set(int(p) for p in parts[4].split()) if parts[4] else set()
        elif parts[0] == "RULE":
            refused[parts[1]] = parts[3] if len(parts) > 3 else parts[2]
        elif parts[0] in ("EXECPATH",):
            problems.append(line)
        elif parts[0] == "SUMMARY":
            summary = line
    if proc.returncode not in (0, 1):
        print("not ok - sigma_oracle failed (%d)" % proc.returncode)
        return 1
    by_pid = {r["pid"]: r for r in recs.list}
    views = []
    for r in recs.list:
        p = by_pid.get(r["ppid"]) if r["ppid"] is not None else None
        view = {
            "Image": r["exe"], "CommandLine": r["cmd"], "ProcessId": r["pid"],
            "ParentProcessId": r["ppid"], "User": r["user"], "CurrentDirectory": r["cwd"],
            "ParentImage": p["exe"] if p else None,
            "ParentCommandLine": p["cmd"] if p else None,
            "ParentUser": p["user"] if p else None}
        c = r["conn"]
        if c and c["kind"] in ("connect", "accept"):
            # a connection for linux/network_connection (listeners and
            # failed attempts are not)
            view["#conn"] = True
            view.update({"DestinationIp": c["raddr"], "SourceIp": c["laddr"],
                         "DestinationPort": c["rport"], "SourcePort": c["lport"],
                         "Initiated": b"true" if c["kind"] == "connect" else b"false",
                         "Protocol": b"tcp"})
        views.append((r["pid"], view))
    fails = 0
    verdicts = 0
    weak = []
    for f in sorted(sql):
        if f not in rules:
            print("not ok - %s converted by daemoneye but not by the evaluator: %s"
                  % (f, dict(unsupported).get(f)))
            fails += 1
            continue
        rule, got = rules[f], sql[f]
        pos = 0
        net = rule.category == "network_connection"
        for pid, view in views:
            want = rule.matches(view) and (not net or "#conn" in view)
            pos += want
            verdicts += 1
            if want != (pid in got):
                fails += 1
                if fails <= 25:
                    print("not ok - %s: record pid %d: evaluator %s, SQL %s: %r" % (
                        os.path.basename(f), pid, want, pid in got,
                        {k: v for k, v in view.items() if v is not None}))
        if pos == 0 or pos == len(views):
            weak.append("%s (%d of %d match)" % (os.path.basename(f), pos, len(views)))
    for line in problems:
        print("not ok - exec path: " + line)
    for w in weak:
        print("not ok - no contrast for " + w)
    nrules = len(sql)
    print("# %d rules converted, %d refused; evaluator not run on: %s" % (
        nrules, len(refused), ", ".join(os.path.basename(f) for f, _ in unsupported) or "none"))
    print("# " + summary.replace("\t", " "))
    ok = fails == 0 and not problems and not weak and nrules > 0
    print("%s - sigma agreement: %d rules x %d records = %d verdicts, %d disagree" % (
        "ok" if ok else "not ok", nrules, len(views), verdicts, fails))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
