'use strict';
/**
 * A traced HTTP inference server in the seed's shape, for `gracetrace probe --url` tests
 * (tests/engine/probe_node.rs): the Node twin of tests/apps/server_app.py. Node's own
 * `http` server, the tracer of runner.js (NodeTracerProvider, ParentBased(TraceIdRatioBased
 * (OTEL_SAMPLE_RATE)), a BatchSpanProcessor over the OTLP/HTTP protobuf exporter, its
 * settings from the OTEL_BSP_* and OTEL_EXPORTER_OTLP_* variables the probe sets), and
 * fal's lifecycle at SIGTERM: stop accepting, let the requests in flight finish,
 * forceFlush({timeoutMillis: 4000}) in teardown, the provider's shutdown, exit.
 *
 * Each request continues the caller's trace from its W3C `traceparent` header (extracted
 * by hand with @opentelemetry/core's W3CTraceContextPropagator, no auto-instrumentation)
 * and makes the seed's span tree: a SERVER span `text-to-image` with the children
 * `inference` and `upload`. The answer is written after the root span ended, so an
 * answered request's spans are all in the batch processor's buffer. GET /health answers
 * 200 without a span.
 *
 * Usage: node server.js PORT [SERVICE_MS]   (SERVICE_MS, default 20: each request's time,
 * 4/5 in `inference`, 1/5 in `upload`; also read from the SERVICE_MS variable)
 */

const http = require('node:http');
const { ROOT_CONTEXT, SpanKind, defaultTextMapGetter, trace } = require('@opentelemetry/api');
const { W3CTraceContextPropagator } = require('@opentelemetry/core');
const { setupTracer } = require('./runner.js');

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

function main() {
  const port = Number(process.argv[2]);
  const serviceMs = Number(process.argv[3] ?? process.env.SERVICE_MS ?? '20');
  const provider = setupTracer('server-app');
  const tracer = trace.getTracer('server-app');
  const propagator = new W3CTraceContextPropagator();
  let ended = 0;

  async function serve(req, body) {
    const parent = propagator.extract(ROOT_CONTEXT, req.headers, defaultTextMapGetter);
    const root = tracer.startSpan('text-to-image', { kind: SpanKind.SERVER }, parent);
    root.setAttribute('prompt.length', body.length);
    const inRoot = trace.setSpan(parent, root);
    const inference = tracer.startSpan('inference', {}, inRoot);
    await sleep(serviceMs * 0.8);
    inference.end();
    const upload = tracer.startSpan('upload', {}, inRoot);
    await sleep(serviceMs * 0.2);
    upload.end();
    const recording = root.isRecording();
    root.end();
    if (recording) {
      ended += 3;
    }
  }

  function answer(res, text) {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': text.length });
    res.end(text);
  }

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', chunk => chunks.push(chunk));
    req.on('end', () => {
      if (req.url === '/health') {
        return answer(res, 'ok\n');
      }
      serve(req, Buffer.concat(chunks)).then(
        () => answer(res, 'done\n'),
        e => {
          res.writeHead(500);
          res.end(`${e}\n`);
        }
      );
    });
  });
  server.listen(port, '127.0.0.1', () => console.log(`serving on ${port}`));

  process.on('SIGTERM', () => {
    console.log('got SIGTERM');
    // No new connection is accepted; idle keep-alive connections close, and the callback
    // runs once the requests in flight have been answered.
    server.close(async () => {
      console.log(`spans ended: ${ended}`);
      if (provider !== null) {
        await provider
          .forceFlush({ timeoutMillis: 4000 })
          .catch(e => console.log(`forceFlush failed: ${e}`));
        await provider.shutdown().catch(e => console.log(`shutdown failed: ${e}`));
      }
      console.log('teardown done');
      process.exit(0);
    });
  });
}

main();
