"""HTTP servers that misbehave, for `gracetrace probe --url` tests
(tests/engine/probe_misbehaving.rs). Standard library only, no tracing: what is tested is
that the probe gives each a clear verdict, accounts for every request it sent and leaves
no process behind.

Usage: misbehaving_server.py MODE PORT
  500       answers every request (but GET /health) with 500
  silent    reads every request and never answers it
  stubborn  ignores SIGTERM and SIGINT, forks a child that leaves the process group
            (setsid) and ignores them too; both serve 200 until SIGKILLed
Prints `pid N` for each process it is, so a test can check none outlives the probe.
"""

import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def make_handler(mode):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/health":
                return self.answer(200)
            self.respond()

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.respond()

        def respond(self):
            if mode == "500":
                return self.answer(500)
            if mode == "silent":
                # Holds the connection open without a byte of answer, for good.
                threading.Event().wait()
            self.answer(200)

        def answer(self, status):
            body = b"ok\n" if status == 200 else b"failed on purpose\n"
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Handler


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode not in ("500", "silent", "stubborn"):
        sys.exit(f"unknown mode {mode!r}: expected 500, silent or stubborn")
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(mode))
    server.daemon_threads = True
    if mode == "stubborn":
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        if os.fork() == 0:
            # The child leaves the probe's process group: only the probe's mark finds it.
            os.setsid()
    print(f"pid {os.getpid()}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
