//! The producer side under load: how long one `span.end()` takes, and how many spans the
//! request threads can end per second, while the batch processor's worker is busy
//! exporting to a slow collector.
//!
//! This is the cost a request handler pays for tracing. A processor whose producers wait
//! for the worker (a lock held while a batch is taken out, or while it is exported) shows
//! it here as a long tail, long before it shows in a mean. So each variant reports the
//! median, p99 and p99.9 of single `end()` calls next to criterion's throughput.
//!
//! - `python`, `rust`: gracetrace's own processor with each rule book;
//! - `sdk`: the stock `BatchSpanProcessor`, as `telemetry::Pipeline` runs it.
//!
//! All three sit in ONE criterion group: their numbers come from the same run and can be
//! compared (the machine is a shared 2-core box; numbers from different runs drift).
//!
//! The setup is each semantics' real pipeline (`Session::start`): SDK -> processor ->
//! instrumented OTLP/HTTP exporter -> the embedded collector, which answers each export
//! after `COLLECTOR_LATENCY_MS`. With the SDK's default queue (2048) the queue fills and
//! spans drop, as they would in production behind a slow backend: a dropped span is still
//! an `end()` the request thread paid for. Eight producer threads on two cores, as a
//! server with eight request slots ends spans.
//!
//! What a full queue costs differs by rule, not by machinery: `rust` and `sdk` reject the
//! new span (freed where it was made, in a warm cache), `python` evicts the oldest one, so
//! its producer frees a span another thread allocated long ago, as CPython's
//! `deque(maxlen)` frees it on the thread that appends.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, Tracer};
use opentelemetry_sdk::trace::SdkTracer;

use gracetrace::config::{Semantics, Settings};
use gracetrace::session::Session;

/// Request threads ending spans at once.
const PRODUCERS: u64 = 8;
/// Each export waits this long at the collector: the worker is busy most of the time.
const COLLECTOR_LATENCY_MS: u64 = 50;

fn settings(semantics: Semantics) -> Settings {
    let mut settings = Settings {
        name: format!("bench-producer-{}", semantics.name()),
        ..Settings::default()
    };
    settings.tracing.semantics = semantics;
    settings.tracing.sample_rate = 1.0;
    settings.batch.max_queue_size = 2048;
    settings.batch.max_export_batch_size = 512;
    settings.batch.schedule_delay_ms = 100;
    settings.collector.latency_ms = COLLECTOR_LATENCY_MS;
    settings
}

/// One span shaped like the seed's root span; only `end()` is timed, in nanoseconds (a
/// `u32` holds 4 s, and keeps tens of millions of samples small).
fn timed_end(tracer: &SdkTracer) -> u32 {
    let mut span = tracer.start("span");
    span.set_attribute(KeyValue::new("model.name", "stable-diffusion-xl-base-1.0"));
    span.set_attribute(KeyValue::new("prompt.length", 20_i64));
    span.set_attribute(KeyValue::new("num_inference_steps", 20_i64));
    let start = Instant::now();
    span.end();
    u32::try_from(start.elapsed().as_nanos()).unwrap_or(u32::MAX)
}

/// `spans` spans ended by `PRODUCERS` threads; each thread's `end()` times are appended to
/// `samples`. Returns the wall time the whole batch took.
fn produce(tracer: &SdkTracer, spans: u64, samples: &Mutex<Vec<u32>>) -> Duration {
    let per_thread = spans.div_ceil(PRODUCERS);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..PRODUCERS {
            scope.spawn(|| {
                let mut mine = Vec::with_capacity(per_thread as usize);
                for _ in 0..per_thread {
                    mine.push(timed_end(tracer));
                }
                samples
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(mine);
            });
        }
    });
    start.elapsed()
}

fn quantile(sorted: &[u32], q: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    Duration::from_nanos(sorted.get(index).copied().unwrap_or_default().into())
}

fn print_tail(name: &str, samples: Vec<u32>, session: &Session) {
    let mut sorted = samples;
    sorted.sort_unstable();
    let counts = session.record.span_counts();
    eprintln!(
        "producer/{name}: {} end() calls: median {:?}, p99 {:?}, p99.9 {:?}, max {:?}; \
         {} exported, {} dropped for a full queue",
        sorted.len(),
        quantile(&sorted, 0.5),
        quantile(&sorted, 0.99),
        quantile(&sorted, 0.999),
        quantile(&sorted, 1.0),
        counts.exported,
        counts.dropped_queue_full,
    );
}

fn producer(c: &mut Criterion) {
    let mut group = c.benchmark_group("producer");
    group
        .throughput(Throughput::Elements(1))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));

    for semantics in Semantics::ALL {
        let settings = settings(semantics);
        let session = Session::start(&settings).expect("starting the collector and pipeline");
        let generation = session
            .pipeline
            .tracer()
            .expect("tracing is enabled, so there is a generation");
        let samples = Mutex::new(Vec::new());
        group.bench_function(semantics.name(), |b| {
            b.iter_custom(|iters| produce(&generation.tracer, iters, &samples))
        });
        let samples = samples.into_inner().unwrap_or_else(|e| e.into_inner());
        drop(generation);
        // After the shutdown: the stock processor's drops are only known once it has
        // drained (telemetry::stock).
        session.pipeline.shutdown();
        print_tail(semantics.name(), samples, &session);
        let _report = session.finish(&settings);
    }
    group.finish();
}

criterion_group!(benches, producer);
criterion_main!(benches);
