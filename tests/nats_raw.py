#!/usr/bin/env python3
"""nats_raw.py — an independent NATS client for the fleet tests, speaking
the NATS text protocol (INFO, CONNECT, PUB, SUB, MSG, PING/PONG) on a plain
socket, so that the tests can send what daemoneye never would.

  nats_raw.py PORT pub SUBJECT TEXT      publish TEXT once, flushed
  nats_raw.py PORT replay SUBJECT        subscribe; print READY; wait for one
                                         message; publish it again on SUBJECT;
                                         print REPLAYED
"""
import socket
import sys


def connect(port):
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=60)
    f = s.makefile("rb")
    if not f.readline().startswith(b"INFO "):
        raise SystemExit("not a NATS server")
    s.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\n')
    return s, f


def flush(s, f):
    s.sendall(b"PING\r\n")
    while True:
        line = f.readline()
        if not line:
            raise SystemExit("connection closed")
        if line.startswith(b"PONG"):
            return
        if line.startswith(b"-ERR"):
            raise SystemExit(line.decode())


def pub(s, subject, data):
    s.sendall(b"PUB %s %d\r\n%s\r\n" % (subject.encode(), len(data), data))


def main():
    port, cmd, subject = sys.argv[1], sys.argv[2], sys.argv[3]
    s, f = connect(port)
    if cmd == "pub":
        pub(s, subject, sys.argv[4].encode())
        flush(s, f)
    elif cmd == "replay":
        s.sendall(b"SUB %s 1\r\n" % subject.encode())
        flush(s, f)
        print("READY", flush=True)
        while True:
            line = f.readline()
            if not line:
                raise SystemExit("connection closed")
            if line.startswith(b"PING"):
                s.sendall(b"PONG\r\n")
            elif line.startswith(b"MSG "):
                n = int(line.split()[-1])
                data = f.read(n + 2)[:n]
                pub(s, subject, data)
                flush(s, f)
                print("REPLAYED", flush=True)
                return
    else:
        raise SystemExit("usage: nats_raw.py PORT pub|replay SUBJECT [TEXT]")


main()
