#!/usr/bin/python3
"""smtp_receiver.py OUT [--cert CERT --key KEY [--require-starttls]] [--reject CODE]
-- an SMTP server for the alerting tests (python3-aiosmtpd), on 127.0.0.1
and a free port.

Prints "READY <port>" on stdout once it accepts connections.  Each message
accepted is appended to OUT as one JSON line {"from", "to", "data", "tls"}.
With --cert/--key it offers STARTTLS (--require-starttls: refuses mail
without it); with --reject CODE it answers every RCPT with CODE.
"""
import json
import socket
import ssl
import sys
import threading

from aiosmtpd.controller import Controller

out_path = sys.argv[1]
args = sys.argv[2:]
cert = args[args.index("--cert") + 1] if "--cert" in args else None
key = args[args.index("--key") + 1] if "--key" in args else None
reject = args[args.index("--reject") + 1] if "--reject" in args else None
lock = threading.Lock()


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if reject:
            return "%s no thanks" % reject
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        rec = {"from": envelope.mail_from, "to": envelope.rcpt_tos,
               "data": envelope.original_content.decode("utf-8", "replace"),
               "tls": session.ssl is not None}
        with lock:
            with open(out_path, "a") as f:
                f.write(json.dumps(rec) + "\n")
        return "250 Message accepted"


s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
kw = {}
if cert:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    kw["tls_context"] = ctx
    kw["require_starttls"] = "--require-starttls" in args
ctl = Controller(Handler(), hostname="127.0.0.1", port=port, **kw)
ctl.start()
print("READY", port, flush=True)
threading.Event().wait()
