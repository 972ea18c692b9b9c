"""A traced HTTP inference server in the seed's shape, for `gracetrace probe --url` tests
(tests/engine/probe_load.rs): the Python standard library's ThreadingHTTPServer, the
seed's setup_tracer() from seed_app.py (ParentBased(TraceIdRatioBased(OTEL_SAMPLE_RATE)),
a BatchSpanProcessor over the OTLP exporter of the environment's protocol, OTLP/HTTP by
default, its settings from the OTEL_BSP_* variables the probe sets) and fal's lifecycle at SIGTERM: stop accepting, let the
requests in flight finish, force_flush(4000) in teardown, exit.

Each request continues the caller's trace from its W3C `traceparent` header
(opentelemetry.propagate.extract) and makes the seed's span tree: `text-to-image` with
the children `inference` and `upload`. The answer is written after the root span ended,
so an answered request's spans are all in the batch processor's queue. GET /health
answers 200 without a span.

Usage: server_app.py PORT [SERVICE_MS]   (SERVICE_MS, default 20: each request's time,
4/5 in `inference`, 1/5 in `upload`; also read from the SERVICE_MS variable)
"""

import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry import propagate, trace

# The seed's setup_tracer(), shared with the seed-shaped app beside this one: the exporter
# the environment's OTLP protocol names (the probe sets http/protobuf unless told).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seed_app import setup_tracer  # noqa: E402


class Server(ThreadingHTTPServer):
    # Request threads are joined by server_close(): the requests in flight at SIGTERM
    # finish before teardown (ThreadingHTTPServer's default daemon threads would not be).
    daemon_threads = False
    block_on_close = True
    # socketserver's default listen backlog is 5: a burst of 10 overflowed it, the kernel
    # dropped SYNs, and those requests waited for a retransmit (about 1 s) or were reset
    # when the listener closed at SIGTERM. A production server's backlog is far larger.
    request_queue_size = 128


def handler(tracer, service_s, ended, lock):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.serve(b"")

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            self.serve(self.rfile.read(length))

        def serve(self, body):
            if self.path == "/health":
                return self.answer(b"ok\n")
            context = propagate.extract(self.headers)
            with tracer.start_as_current_span(
                "text-to-image", context=context, kind=trace.SpanKind.SERVER
            ) as root:
                root.set_attribute("prompt.length", len(body))
                with tracer.start_as_current_span("inference"):
                    time.sleep(service_s * 0.8)
                with tracer.start_as_current_span("upload"):
                    time.sleep(service_s * 0.2)
                recording = root.is_recording()
            if recording:
                with lock:
                    ended[0] += 3
            self.answer(b"done\n")

        def answer(self, text):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, format, *args):
            pass

    return Handler


def main():
    port = int(sys.argv[1])
    service_ms = float(sys.argv[2] if len(sys.argv) > 2 else os.environ.get("SERVICE_MS", "20"))
    provider = setup_tracer("server-app")
    tracer = trace.get_tracer("server-app")
    ended, lock, stop = [0], threading.Lock(), threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    server = Server(("127.0.0.1", port), handler(tracer, service_ms / 1000.0, ended, lock))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"serving on {port}", flush=True)
    while not stop.wait(0.05):
        pass
    print("got SIGTERM", flush=True)
    server.shutdown()  # no new request is accepted
    server.server_close()  # the listener closes; the requests in flight finish
    print(f"spans ended: {ended[0]}", flush=True)
    if provider is not None:
        provider.force_flush(4000)
    print("teardown done", flush=True)
    # As a platform's runner does after teardown: exit without the SDK's atexit shutdown,
    # so what was not flushed in teardown is lost, as it would be.
    os._exit(0)


if __name__ == "__main__":
    main()
