'use strict';
/**
 * A Node.js app in the seed's shape, for gracetrace's fidelity tests of the js rules
 * (tests/engine/node_fidelity.rs): the Node twin of tests/apps/seed_app.py.
 *
 * setupTracer() builds a NodeTracerProvider with ParentBased(TraceIdRatioBased) and a
 * BatchSpanProcessor (from sdk-trace-base, which reads the OTEL_BSP_* variables) over the
 * OTLP/HTTP protobuf exporter (which reads OTEL_EXPORTER_OTLP_ENDPOINT). The app makes its
 * own open-loop traffic: REQUESTS_PER_S requests a second, evenly spaced, plus
 * GRACETRACE_BURST_SIZE requests at once every GRACETRACE_BURST_EVERY_S seconds, each
 * request one root and two child spans, the second child lasting GRACETRACE_INFERENCE_MS.
 * On SIGTERM it stops taking requests, lets those in flight finish, prints `spans ended: N`,
 * and tears down: forceFlush({timeoutMillis: GRACETRACE_FLUSH_TIMEOUT_MS}) (4000, as the
 * seed's force_flush(4000)), then the provider's shutdown, then exit.
 *
 * Usage: node runner.js [REQUESTS_PER_S]
 */

const { trace } = require('@opentelemetry/api');
const {
  BatchSpanProcessor,
  NodeTracerProvider,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
} = require('@opentelemetry/sdk-trace-node');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
const { defaultResource, resourceFromAttributes } = require('@opentelemetry/resources');

const ENABLE_TRACING = ['1', 'true', 'yes'].includes(
  (process.env.ENABLE_TRACING ?? 'true').toLowerCase()
);
const SAMPLE_RATE = Number(process.env.OTEL_SAMPLE_RATE ?? '1.0');

function number(name, fallback) {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value < 0) {
    throw new Error(`${name}=${process.env[name]}: not a number of 0 or more`);
  }
  return value;
}

function setupTracer(serviceName = 'seed-app') {
  if (!ENABLE_TRACING) {
    return null;
  }
  const provider = new NodeTracerProvider({
    // The default resource names the SDK (telemetry.sdk.language = nodejs), which is how
    // `gracetrace probe` knows the js rules apply; a resource given alone replaces it.
    resource: defaultResource().merge(resourceFromAttributes({ 'service.name': serviceName })),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(SAMPLE_RATE) }),
    // The endpoint and the batch settings come from the environment.
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  provider.register();
  return provider;
}

function main() {
  const rate = Number(process.argv[2] ?? '200');
  const inferenceMs = number('GRACETRACE_INFERENCE_MS', '1');
  const burstEveryS = number('GRACETRACE_BURST_EVERY_S', '0');
  const burstSize = number('GRACETRACE_BURST_SIZE', '0');
  const flushTimeoutMs = number('GRACETRACE_FLUSH_TIMEOUT_MS', '4000');
  const provider = setupTracer();
  const tracer = trace.getTracer('seed-app');
  let ended = 0;
  let inFlight = 0;
  let stopping = false;

  function request() {
    inFlight += 1;
    tracer.startActiveSpan('request', root => {
      tracer.startActiveSpan('preprocess', span => span.end());
      tracer.startActiveSpan('inference', inference => {
        setTimeout(() => {
          inference.end();
          root.end();
          ended += 3;
          inFlight -= 1;
          if (stopping && inFlight === 0) {
            teardown();
          }
        }, inferenceMs);
      });
    });
  }

  // Open loop: every millisecond, start the requests that are due since the start.
  const start = performance.now();
  let started = 0;
  let bursts = 0;
  const arrivals = setInterval(() => {
    const elapsedS = (performance.now() - start) / 1000;
    const due = Math.floor(elapsedS * rate);
    for (; started < due; started += 1) {
      request();
    }
    const burstsDue = burstEveryS > 0 ? Math.floor(elapsedS / burstEveryS) : 0;
    for (; bursts < burstsDue; bursts += 1) {
      for (let i = 0; i < burstSize; i += 1) {
        request();
      }
    }
  }, 1);
  console.log('serving');

  let tornDown = false;
  async function teardown() {
    if (tornDown) {
      return;
    }
    tornDown = true;
    console.log(`spans ended: ${ended}`);
    if (provider !== null) {
      try {
        await provider.forceFlush({ timeoutMillis: flushTimeoutMs });
      } catch (e) {
        console.log(`forceFlush failed: ${e}`);
      }
      // What a Node app's exit does to its telemetry: the provider's shutdown sends what
      // is left and waits for every export in flight.
      await provider.shutdown().catch(e => console.log(`shutdown failed: ${e}`));
    }
    console.log('teardown done');
    process.exit(0);
  }

  process.on('SIGTERM', () => {
    console.log('got SIGTERM');
    stopping = true;
    clearInterval(arrivals);
    if (inFlight === 0) {
      teardown();
    }
  });
}

// server.js shares the tracer setup, as server_app.py imports seed_app's setup_tracer().
if (require.main === module) {
  main();
}

module.exports = { setupTracer };
