#!/usr/bin/env python3
"""ipc_client.py PROCMOND [badcrc|oversized|unknown|truncated] — an
independent client of procmond's IPC frames (length + CRC32 + protobuf),
written from proto/daemoneye_ipc.proto without the C code.  Without a mode:
expect HELLO, ask for one scan, expect PROCESS frames then SCAN_DONE whose
recorded count matches (EVENT frames may come between any two) and whose
records carry their Linux facts as protobuf fields; then, when
HELLO says events are on, start a process and expect its exec EVENT, with
the process and its command line, and its exit EVENT.  With a mode: send that malformed frame and expect
procmond to close the channel, exit 76 (EX_PROTOCOL) and log why."""
import os, socket, struct, subprocess, sys, zlib

def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])

def read_varint(buf, i):
    shift = n = 0
    while True:
        b = buf[i]; i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i

def fields(buf):
    i = 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(buf, i)
        elif wt == 2:
            l, i = read_varint(buf, i)
            v = buf[i:i + l]; i += l
        elif wt == 1:
            v = buf[i:i + 8]; i += 8
        elif wt == 5:
            v = buf[i:i + 4]; i += 4
        else:
            raise ValueError("wire type %d" % wt)
        yield f, v

def frame(payload):
    return struct.pack(">II", len(payload), zlib.crc32(payload)) + payload

def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b

def recv_frame(s):
    n, crc = struct.unpack(">II", recv_exact(s, 8))
    p = recv_exact(s, n)
    assert zlib.crc32(p) == crc, "bad CRC from procmond"
    (kind, body), = list(fields(p))
    return kind, body

mode = sys.argv[2] if len(sys.argv) > 2 else None
a, b = socket.socketpair()
proc = subprocess.Popen([sys.argv[1], "--ipc-fd", str(b.fileno())], pass_fds=[b.fileno()],
                        stderr=subprocess.PIPE)
b.close()
kind, body = recv_frame(a)
assert kind == 1, "first frame is not HELLO"
hello = dict(fields(body))
assert hello[1] == 1 and hello[2] == proc.pid, hello
scan_req = frame(bytes([0x12]) + varint(2) + bytes([0x08, 0x05]))  # ScanRequest{scan_id=5}
if mode is None:
    a.sendall(scan_req)
    n = 0
    while True:
        kind, body = recv_frame(a)
        if kind == 3:
            rec = dict(fields(body))
            assert rec[2] == 5 and len(rec[1]) == 16 and 4 in rec, rec
            # the Linux facts (Process.facts, a Facts message): a one-letter
            # state and every required count; platform_data_json only for
            # members beyond them (procmond sends none)
            facts = dict(fields(rec[18]))
            assert len(facts[12]) == 1 and facts[12].isalpha(), facts
            assert all(f in facts for f in range(13, 22)), facts
            assert (1 in facts) == (2 in facts) and (6 in facts) == (7 in facts), facts
            assert 17 not in rec, rec
            n += 1
        elif kind == 4:
            done = dict(fields(body))
            assert done[1] == 5 and done[3] == n, (done, n)
            break
        elif kind == 5:
            pass  # an exec or exit on the host meanwhile
        else:
            raise AssertionError("unexpected kind %d" % kind)
    if hello.get(4) == 1:
        marker = b"de-ipc-client-%d" % os.getpid()
        child = subprocess.Popen(["/bin/sh", "-c", "sleep 0.05; exit 3", marker])
        child.wait()
        a.settimeout(10)
        seen = set()
        while seen != {"exec", "exit"}:
            kind, body = recv_frame(a)
            assert kind == 5, "unexpected kind %d between scans" % kind
            ev = {}
            for f, v in fields(body):
                ev.setdefault(f, v)
            if ev[2] != child.pid:
                continue
            if ev[1] == 1 and 5 in ev:
                proc_fields = list(fields(ev[5]))
                argv = [v for f, v in proc_fields if f == 8]
                assert marker in argv, argv
                seen.add("exec")
            elif ev[1] == 2:
                assert ev[4] == 3 << 8, ev  # wait(2) status of exit(3)
                seen.add("exit")
        print("events: exec with its command line and exit of pid %d" % child.pid)
        # procmond's main thread waits for requests only: the frames its
        # event thread writes, drained here as they come, do not wake it
        # (a read blocked on the socket was woken by every drain)
        def wakeups():
            with open(f"/proc/{proc.pid}/task/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        return int(line.split()[1])
        w0, frames = wakeups(), 0
        for _ in range(200):
            c = subprocess.Popen(["/bin/true", marker])
            c.wait()
            while True:  # what procmond sent, up to this child's exit
                kind, body = recv_frame(a)
                assert kind == 5, "unexpected kind %d between scans" % kind
                frames += 1
                ev = {}
                for f, v in fields(body):
                    ev.setdefault(f, v)
                if ev[2] == c.pid and ev[1] == 2:
                    break
        woken = wakeups() - w0
        assert frames >= 400 and woken < 20, (frames, woken)
        print("events: %d frames of 200 children drained, procmond's main thread woken %d "
              "times" % (frames, woken))
    a.close()
    rc = proc.wait(timeout=60)
    assert rc == 0, rc
    print(f"scan of {n} processes")
    sys.exit(0)
if mode == "badcrc":
    bad = bytearray(scan_req); bad[-1] ^= 1; a.sendall(bytes(bad)); want = "CRC32"
elif mode == "oversized":
    a.sendall(struct.pack(">II", 0x7FFFFFFF, 0)); want = "oversized"
elif mode == "unknown":
    a.sendall(frame(bytes([0x7A, 0x00]))); want = "unknown IPC frame"
elif mode == "truncated":
    a.sendall(scan_req[:6]); a.shutdown(socket.SHUT_WR); want = "truncated"
rc = proc.wait(timeout=60)
err = proc.stderr.read().decode(errors="replace")
assert rc == 76, (rc, err)
assert "closing the channel" in err and want in err, err
print(err.strip())
