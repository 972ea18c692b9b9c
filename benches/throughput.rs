//! Spans per second through the whole real path: SDK -> batch processor (the project's,
//! with the python and the rust rules, and the stock one) -> instrumented OTLP/HTTP
//! exporter -> the embedded collector on 127.0.0.1, counted where they arrive.
//!
//! Each semantics runs in its own `Session` (collector + pipeline, exactly as a run starts
//! them), all three in ONE criterion group so their rates come from the same run.
//!
//! One iteration makes `SPANS_PER_ITER` spans as fast as two producer threads can, then
//! waits until the collector has acknowledged them. The batch processors leave a partial
//! batch (fewer than `max_export_batch_size` spans) for their timer, so waiting for the
//! very last span would add up to one `schedule_delay` per iteration and measure the timer,
//! not the pipeline. The wait therefore ends once all but that partial batch has arrived;
//! the leftover is exported at the start of the next iteration and counted there, so over
//! the run every span is accounted for and the error is below one batch per iteration
//! (0.5% of 100,000).
//!
//! The queue is sized so that nothing can drop (an iteration never has more than
//! `SPANS_PER_ITER + 511` spans waiting), and the bench asserts at the end of each
//! semantics that nothing did and that the collector received every span produced: a rate
//! bought with drops would be meaningless.

use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, Tracer};
use opentelemetry_sdk::trace::SdkTracer;

use gracetrace::collector::Collector;
use gracetrace::config::{Semantics, Settings};
use gracetrace::session::Session;

const SPANS_PER_ITER: u64 = 100_000;
/// Two producers: the machine has two cores, and a server ends spans on several threads.
const PRODUCERS: u64 = 2;
const MAX_EXPORT_BATCH_SIZE: usize = 512;
/// Holds a whole iteration plus the previous iteration's partial batch, so nothing drops.
const MAX_QUEUE_SIZE: usize = 1 << 17;
const SCHEDULE_DELAY_MS: u64 = 100;
/// A healthy loopback collector drains 100,000 spans in well under a second; a wait this
/// long means the pipeline is stuck, and the bench stops with the counts.
const WAIT_LIMIT: Duration = Duration::from_secs(60);
/// How often the waiting thread reads the collector's counters: short against an
/// iteration (~0.3 s), long enough not to steal a core from the pipeline.
const POLL_EVERY: Duration = Duration::from_micros(500);

fn settings(semantics: Semantics) -> Settings {
    let mut settings = Settings {
        name: format!("bench-throughput-{}", semantics.name()),
        ..Settings::default()
    };
    settings.tracing.semantics = semantics;
    settings.tracing.sample_rate = 1.0;
    settings.batch.max_queue_size = MAX_QUEUE_SIZE;
    settings.batch.max_export_batch_size = MAX_EXPORT_BATCH_SIZE;
    settings.batch.schedule_delay_ms = SCHEDULE_DELAY_MS;
    settings
}

/// The same span as `benches/span_cost.rs`: the seed's root span shape.
fn one_span(tracer: &SdkTracer) {
    let mut span = tracer.start("span");
    span.set_attribute(KeyValue::new("model.name", "stable-diffusion-xl-base-1.0"));
    span.set_attribute(KeyValue::new("prompt.length", 20_i64));
    span.set_attribute(KeyValue::new("num_inference_steps", 20_i64));
    span.end();
}

fn produce(tracer: &SdkTracer, spans: u64) {
    std::thread::scope(|scope| {
        for _ in 0..PRODUCERS {
            scope.spawn(|| {
                for _ in 0..spans / PRODUCERS {
                    one_span(tracer);
                }
            });
        }
    });
}

/// Blocks until the collector has received at least `target` spans.
fn wait_received(collector: &Collector, target: u64, session: &Session) {
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        let received = collector.stats().spans_received;
        if received >= target {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the collector received {received} of {target} spans in {WAIT_LIMIT:?}; \
             record: {:?}",
            session.record.span_counts()
        );
        std::thread::sleep(POLL_EVERY);
    }
}

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("throughput");
    group
        .throughput(Throughput::Elements(SPANS_PER_ITER))
        // One iteration takes a third of a second: flat sampling keeps criterion from
        // growing the iteration count sample after sample.
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));

    for semantics in Semantics::ALL {
        let settings = settings(semantics);
        let session = Session::start(&settings).expect("starting the collector and pipeline");
        let collector = session
            .collector
            .clone()
            .expect("no endpoint is configured, so the session runs the embedded collector");
        let generation = session
            .pipeline
            .tracer()
            .expect("tracing is enabled, so there is a generation");
        let mut produced = 0_u64;
        group.bench_function(semantics.name(), |b| {
            b.iter_custom(|iters| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    produce(&generation.tracer, SPANS_PER_ITER);
                    produced += SPANS_PER_ITER;
                    let target = produced - (MAX_EXPORT_BATCH_SIZE as u64 - 1);
                    wait_received(&collector, target, &session);
                    elapsed += start.elapsed();
                }
                elapsed
            })
        });

        // The pipeline retires a generation only once nobody holds it: let go first.
        drop(generation);
        session.pipeline.shutdown();
        let received = collector.stats().spans_received;
        let counts = session.record.span_counts();
        eprintln!(
            "{}: {produced} spans made, {} exported, {received} received by the collector, \
             {} dropped for a full queue, {} export failed",
            semantics.name(),
            counts.exported,
            counts.dropped_queue_full,
            counts.export_failed,
        );
        assert_eq!(
            counts.dropped_queue_full,
            0,
            "{}: spans dropped; the queue must hold a whole iteration",
            semantics.name()
        );
        assert_eq!(
            received,
            produced,
            "{}: the collector must receive every span made",
            semantics.name()
        );
        // `finish` shuts the collector down only if it holds the last handle.
        drop(collector);
        let _report = session.finish(&settings);
    }
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
