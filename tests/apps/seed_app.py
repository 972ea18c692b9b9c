"""A small app in the seed's shape, for `gracetrace probe` tests (tests/engine/probe.rs).

setup_tracer() builds the provider as the seed does (BatchSpanProcessor over the OTLP
exporter; the BSP settings come from the OTEL_BSP_* variables the probe sets), the
app serves requests of one root and two child spans each until SIGTERM, and teardown()
calls force_flush(4000) before exiting. It prints, on stdout, a line when SIGTERM arrives
and the number of spans it ended, so a test can compare it with the collector's count.

The exporter is the one the SDK's auto-configuration picks for the protocol in the
environment: OTLP/gRPC for `grpc`, OTLP/HTTP protobuf otherwise (the probe sets
http/protobuf when the environment names none).

Usage: seed_app.py [REQUESTS_PER_S]
"""

import os
import signal
import sys
import threading
import time

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

ENABLE_TRACING = os.environ.get("ENABLE_TRACING", "true").lower() in ("1", "true", "yes")
SAMPLE_RATE = float(os.environ.get("OTEL_SAMPLE_RATE", "1.0"))


def otlp_exporter():
    """The exporter for OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL,
    as opentelemetry-sdk 1.41.0 chooses it (opentelemetry/sdk/_configuration/__init__.py,
    _EXPORTER_BY_OTLP_PROTOCOL at lines 86-89 and the lookup at lines 196-206)."""
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter()


def setup_tracer(service_name="seed-app"):
    if not ENABLE_TRACING:
        return None
    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}),
        sampler=ParentBased(TraceIdRatioBased(SAMPLE_RATE)),
    )
    # The endpoint and the BSP settings come from the environment the probe sets.
    provider.add_span_processor(BatchSpanProcessor(otlp_exporter()))
    trace.set_tracer_provider(provider)
    return provider


def serve(tracer, stop, ended):
    rate = float(sys.argv[1]) if len(sys.argv) > 1 else 200.0
    while not stop.is_set():
        with tracer.start_as_current_span("request"):
            with tracer.start_as_current_span("preprocess"):
                pass
            with tracer.start_as_current_span("inference"):
                time.sleep(1.0 / rate)
        ended[0] += 3


def teardown(provider):
    if provider is not None:
        provider.force_flush(4000)


def main():
    provider = setup_tracer()
    tracer = trace.get_tracer("seed-app")
    stop = threading.Event()

    def on_sigterm(signum, frame):
        print("got SIGTERM", flush=True)
        stop.set()

    signal.signal(signal.SIGTERM, on_sigterm)
    ended = [0]
    print("serving", flush=True)
    serve(tracer, stop, ended)
    print(f"spans ended: {ended[0]}", flush=True)
    teardown(provider)
    print("teardown done", flush=True)
    # As a platform's runner does after teardown: exit without the SDK's atexit shutdown,
    # so what was not flushed in teardown is lost, as it would be.
    os._exit(0)


if __name__ == "__main__":
    main()
