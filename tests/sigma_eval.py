"""sigma_eval.py -- an evaluator of Sigma detection semantics, written from
the Sigma specification (sigma-rules-specification.md, "Detection" and
"Condition"; sigma-appendix-modifiers.md), independent of daemoneye's
compiler (src/lib/sigma*.c): it decides whether one process record matches
a rule by interpreting the rule, where the compiler turns the rule into SQL.
tests/sigma_agree.py checks that both agree on every generated record.

A record is a dict of Sigma field name -> value as daemoneye has it for one
process: Image and CommandLine are bytes (Image None when unknown),
ProcessId and ParentProcessId integers (ParentProcessId None when unknown),
User (the user's name) and CurrentDirectory bytes or None, and ParentImage
/ ParentCommandLine / ParentUser come from the parent's record, None when
the parent is not known.  For linux/network_connection a record is one TCP
connection of a process: those fields of the process, with DestinationIp /
SourceIp (address text), DestinationPort / SourcePort (integers),
Initiated ('true' for a connection the process opened, 'false' for one it
accepted) and Protocol ('tcp').  A field that is None is absent.

Meaning, as the specification states it and as docs/sigma.md fixes the
points it leaves open for bytes:
  * values are case-insensitive unless `cased`; case folding is of ASCII
    letters only;
  * `*` matches any sequence, `?` exactly one character; a character is a
    valid UTF-8 sequence, and each byte that is not part of one counts as a
    character of its own (Python's 'surrogateescape' decoding);
  * `\\` escapes `*`, `?` and `\\`; any other backslash is itself;
  * a map is AND, a list is OR (AND with `all`); null means the field is
    absent; `re` is a regular expression over the bytes, case-sensitive
    unless `i`;
  * conditions: or < and < not < "x of" < parentheses.
"""

import base64
import functools
import ipaddress
import re

import yaml

DASHES = ["-", "/", "\u2013", "\u2014", "\u2015"]
STAR, ONE = object(), object()


class Unsupported(Exception):
    """The rule uses something this evaluator (and daemoneye) does not run."""


# ---- YAML: every scalar a string, only null typed ---------------------------


class _TextLoader(yaml.SafeLoader):
    pass


_TextLoader.yaml_implicit_resolvers = {}
for _ch, _resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items():
    _keep = [(t, r) for (t, r) in _resolvers if t == "tag:yaml.org,2002:null"]
    if _keep:
        _TextLoader.yaml_implicit_resolvers[_ch] = _keep


def load(text):
    return yaml.load(text, Loader=_TextLoader)


# ---- values -----------------------------------------------------------------


def parse_value(s):
    """A Sigma string as a list of items: str characters, STAR and ONE."""
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s) and s[i + 1] in "*?\\":
            out.append(s[i + 1])
            i += 2
            continue
        out.append(STAR if c == "*" else ONE if c == "?" else c)
        i += 1
    return out


def plain(items):
    if any(x is STAR or x is ONE for x in items):
        raise ValueError("wildcard")
    return "".join(items)


def fold(s):
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in s)


def chars(b):
    """bytes -> str of characters (invalid bytes become lone surrogates)."""
    return b.decode("utf-8", "surrogateescape")


def b64_offsets(data):
    """The three forms `data` takes inside base64 text, by its offset mod 3:
    the characters that do not depend on what surrounds it (found by
    encoding it between all-zero and all-one bytes and keeping the
    characters that agree; padding is not part of either)."""
    out = []
    for i in range(3):
        lo = base64.b64encode(b"\x00" * i + data + b"\x00" * 3).decode().rstrip("=")
        hi = base64.b64encode(b"\xff" * i + data + b"\xff" * 3).decode().rstrip("=")
        keep = "".join(a for a, b in zip(lo, hi) if a == b)
        out.append(keep)
    return out


def windash(items):
    res = [[]]
    for x in items:
        if isinstance(x, str) and x in DASHES:
            res = [r + [d] for r in res for d in DASHES]
        else:
            res = [r + [x] for r in res]
    return res


class FieldTest:
    """One `Field|mod|mod: value(s)` of a selection."""

    NUMERIC = {"ProcessId", "ParentProcessId", "DestinationPort", "SourcePort"}
    TEXT = {"Image", "CommandLine", "ParentImage", "ParentCommandLine", "User", "ParentUser",
            "CurrentDirectory", "Initiated", "Protocol"}
    ADDRESS = {"DestinationIp", "SourceIp"}

    def __init__(self, key, value):
        parts = key.split("|")
        self.field, mods = parts[0], parts[1:]
        if self.field not in self.NUMERIC | self.TEXT | self.ADDRESS:
            raise Unsupported("field " + self.field)
        self.all = self.cased = self.exists = self.re = self.cidr = False
        self.re_flags, self.cmp, self.transforms = 0, None, []
        for m in mods:
            if m in ("contains", "startswith", "endswith", "base64", "base64offset",
                     "windash", "utf16le", "wide", "utf16be", "utf16"):
                self.transforms.append(m)
            elif m == "all":
                self.all = True
            elif m == "cased":
                self.cased = True
            elif m == "exists":
                self.exists = True
            elif m == "re":
                self.re = True
            elif m == "cidr" and self.field in self.ADDRESS:
                self.cidr = True
            elif self.re and m in ("i", "m", "s"):
                self.re_flags |= {"i": re.I, "m": re.M, "s": re.S}[m]
            elif m in ("gt", "gte", "lt", "lte"):
                self.cmp = m
            else:
                raise Unsupported("modifier " + m)
        values = value if isinstance(value, list) else [value]
        if self.exists:
            self.want = str(values[0]).lower() == "true"
            return
        # each value becomes a group of alternatives (bytes patterns or checks)
        self.groups = [self._alternatives(v) for v in values]

    def _alternatives(self, v):
        if v is None:
            return [("null", None)]
        if self.re:
            return [("re", re.compile(v.encode(), self.re_flags))]
        if self.cidr:
            return [("cidr", str(v))]
        if self.field in self.NUMERIC:
            return [("num", int(v))]
        alts = [parse_value(v)]
        for t in self.transforms:
            if t == "contains":
                alts = [([] if a[:1] == [STAR] else [STAR]) + a +
                        ([] if a[-1:] == [STAR] else [STAR]) for a in alts]
            elif t == "startswith":
                alts = [a + ([] if a[-1:] == [STAR] else [STAR]) for a in alts]
            elif t == "endswith":
                alts = [([] if a[:1] == [STAR] else [STAR]) + a for a in alts]
            elif t == "windash":
                alts = [w for a in alts for w in windash(a)]
            elif t == "base64":
                alts = [list(base64.b64encode(_enc(a)).decode()) for a in alts]
            elif t == "base64offset":
                alts = [list(x) for a in alts for x in b64_offsets(_enc(a))]
            elif t in ("utf16le", "wide"):
                alts = [_bytes_items(plain(a).encode("utf-16-le")) for a in alts]
            elif t == "utf16be":
                alts = [_bytes_items(plain(a).encode("utf-16-be")) for a in alts]
            elif t == "utf16":
                alts = [_bytes_items(b"\xff\xfe" + plain(a).encode("utf-16-le"))
                        for a in alts]
        return [("glob", _glob_regex(a, not self.cased)) for a in alts]

    def value_of(self, rec):
        return rec.get(self.field)

    def matches(self, rec):
        x = self.value_of(rec)
        if self.exists:
            return (x is not None) == self.want
        results = [any(_check(kind, arg, x, self.cmp) for kind, arg in g)
                   for g in self.groups]
        return all(results) if self.all else any(results)


def _enc(items):
    if isinstance(items, bytes):
        return items
    s = plain(items)
    return s.encode("utf-8", "surrogateescape")


def _bytes_items(b):
    """Encoded bytes as items; _enc() gives the same bytes back."""
    return list(b.decode("utf-8", "surrogateescape"))


def _glob_regex(items, ci):
    """A compiled Python regular expression over characters for the items."""
    out = []
    for x in items:
        if x is STAR:
            out.append(".*")
        elif x is ONE:
            out.append(".")
        else:
            out.append(re.escape(fold(x) if ci else x))
    return (re.compile("".join(out), re.S), ci)


@functools.lru_cache(maxsize=1 << 16)
def _texts(x):
    """A field's bytes as characters, and ASCII-folded."""
    t = chars(x)
    return t, fold(t)


def _check(kind, arg, x, cmp):
    if kind == "null":
        return x is None
    if x is None:
        return False
    if kind == "num":
        return {"gt": x > arg, "gte": x >= arg, "lt": x < arg, "lte": x <= arg,
                None: x == arg}[cmp]
    if kind == "re":
        return arg.search(x) is not None
    if kind == "cidr":
        return cidr_contains(arg, x)
    rx, ci = arg
    text, folded = _texts(x)
    return rx.fullmatch(folded if ci else text) is not None


# ---- selections and the condition -------------------------------------------


class Selection:
    def __init__(self, name, body):
        if isinstance(body, dict):
            self.maps = [body]
        elif isinstance(body, list) and body and all(isinstance(m, dict) for m in body):
            self.maps = body
        else:
            raise Unsupported("keyword selection " + name)
        self.tests = [[FieldTest(k, v) for k, v in m.items()] for m in self.maps]

    def matches(self, rec):
        return any(all(t.matches(rec) for t in m) for m in self.tests)


TOKEN = re.compile(r"\s*(\(|\)|[A-Za-z0-9_\-*.]+)")


class Condition:
    """or < and < not < x-of < parentheses; keywords case-insensitive."""

    def __init__(self, text, names):
        self.toks, pos = [], 0
        text = text.strip()
        while pos < len(text):
            m = TOKEN.match(text, pos)
            if not m:
                raise Unsupported("condition syntax at %d" % pos)
            self.toks.append(m.group(1))
            pos = m.end()
            while pos < len(text) and text[pos].isspace():
                pos += 1
        self.names, self.i = names, 0
        self.tree = self._or()
        if self.i != len(self.toks):
            raise Unsupported("condition trailing tokens")

    def _peek(self):
        return self.toks[self.i].lower() if self.i < len(self.toks) else None

    def _or(self):
        kids = [self._and()]
        while self._peek() == "or":
            self.i += 1
            kids.append(self._and())
        return ("or", kids)

    def _and(self):
        kids = [self._not()]
        while self._peek() == "and":
            self.i += 1
            kids.append(self._not())
        return ("and", kids)

    def _not(self):
        if self._peek() == "not":
            self.i += 1
            return ("not", self._not())
        return self._term()

    def _term(self):
        t = self._peek()
        if t == "(":
            self.i += 1
            e = self._or()
            if self._peek() != ")":
                raise Unsupported("unbalanced")
            self.i += 1
            return e
        if t in ("1", "any", "all"):
            self.i += 1
            if self._peek() != "of":
                raise Unsupported("expected of")
            self.i += 1
            target = self.toks[self.i]
            self.i += 1
            if target.lower() == "them":
                sel = [n for n in self.names if not n.startswith("_")]
            else:
                rx = re.compile("".join(".*" if c == "*" else re.escape(c) for c in target))
                sel = [n for n in self.names if rx.fullmatch(n)]
            if not sel:
                raise Unsupported("x of matches nothing")
            return ("and" if t == "all" else "or", [("sel", n) for n in sel])
        name = self.toks[self.i]
        self.i += 1
        if name not in self.names:
            raise Unsupported("unknown identifier " + name)
        return ("sel", name)


def _eval(node, sels, rec):
    op, arg = node
    if op == "sel":
        return sels[arg].matches(rec)
    if op == "not":
        return not _eval(arg, sels, rec)
    if op == "and":
        return all(_eval(k, sels, rec) for k in arg)
    return any(_eval(k, sels, rec) for k in arg)


class Rule:
    def __init__(self, text):
        doc = load(text)
        self.doc = doc
        self.id = doc["id"]
        self.status = doc.get("status")
        self.category = (doc.get("logsource") or {}).get("category")
        det = doc["detection"]
        names = [k for k in det if k != "condition"]
        conds = det["condition"]
        conds = conds if isinstance(conds, list) else [conds]
        trees = [Condition(c, names).tree for c in conds]
        self.tree = ("or", trees)
        used = set()

        def walk(n):
            if n[0] == "sel":
                used.add(n[1])
            elif n[0] == "not":
                walk(n[1])
            else:
                for k in n[1]:
                    walk(k)

        walk(self.tree)
        self.sels = {n: Selection(n, det[n]) for n in sorted(used)}

    def matches(self, rec):
        return _eval(self.tree, self.sels, rec)


def cidr_contains(net, text):
    """For the cidr modifier (address fields): the address text in the network."""
    try:
        return ipaddress.ip_address(chars(text)) in ipaddress.ip_network(net, strict=False)
    except ValueError:
        return False
