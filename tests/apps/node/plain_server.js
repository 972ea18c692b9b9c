/*
 * A Node http server as many are written, for `gracetrace probe --url` tests
 * (tests/engine/probe_node.rs): the SDK's defaults (NodeTracerProvider with its default
 * sampler, a BatchSpanProcessor over the OTLP/HTTP protobuf exporter, both configured by
 * the environment), one span per request, and neither a propagator reading the incoming
 * `traceparent` nor a SIGTERM handler. Its traces start afresh, so the probe cannot follow
 * its requests to them, and must say so rather than call them lost.
 *
 * Usage: node plain_server.js PORT
 */

const http = require('node:http');
const { trace } = require('@opentelemetry/api');
const { BatchSpanProcessor, NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');

const provider = new NodeTracerProvider({
  spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
});
provider.register();
const tracer = trace.getTracer('plain-server');

http
  .createServer((req, res) => {
    tracer.startActiveSpan('handle', span => {
      setTimeout(() => {
        span.end();
        res.end('ok\n');
      }, 5);
    });
  })
  .listen(Number(process.argv[2]), '127.0.0.1');
