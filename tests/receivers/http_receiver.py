#!/usr/bin/python3
"""http_receiver.py OUT [--cert CERT --key KEY] [--port N] -- a webhook
receiver for the alerting tests, on 127.0.0.1 and a port the kernel picks
(or N).

Prints "READY <port>" on stdout once it listens (the tests wait for it).
Each request it answers is appended to OUT as one JSON line:
{"path", "status", "headers": {...}, "body": <text, or base64 when not UTF-8>}.

Behaviour by path:
  /ok      200
  /flaky   500 for the first two requests, then 200 (per server)
  /bad     400
  /hang    never answers (holds the connection until the client gives up)
  other    404
"""
import base64
import http.server
import json
import ssl
import sys
import threading

out_path = sys.argv[1]
cert = key = None
if "--cert" in sys.argv:
    cert = sys.argv[sys.argv.index("--cert") + 1]
    key = sys.argv[sys.argv.index("--key") + 1]
port = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv else 0
lock = threading.Lock()
flaky = [0]
hang = threading.Event()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        path = self.path.split("?")[0]
        if path == "/hang":
            hang.wait(600)
            return
        with lock:
            if path == "/ok":
                status = 200
            elif path == "/flaky":
                flaky[0] += 1
                status = 500 if flaky[0] <= 2 else 200
            elif path == "/bad":
                status = 400
            else:
                status = 404
            try:
                text = body.decode("utf-8")
                rec = {"path": path, "status": status, "headers": dict(self.headers),
                       "body": text}
            except UnicodeDecodeError:
                rec = {"path": path, "status": status, "headers": dict(self.headers),
                       "body_b64": base64.b64encode(body).decode()}
            with open(out_path, "a") as f:
                f.write(json.dumps(rec) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


http.server.ThreadingHTTPServer.allow_reuse_address = True
srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
srv.daemon_threads = True
if cert:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("READY", srv.server_address[1], flush=True)
srv.serve_forever()
