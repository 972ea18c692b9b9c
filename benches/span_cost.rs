//! Cost of one span on the producer's thread: `tracer.start("span")`, three
//! `set_attribute`, `end()`, as a request handler pays it.
//!
//! All variants sit in ONE criterion group so their medians come from the same run and can
//! be compared (the machine is a shared 2-core box; numbers from different runs drift).
//!
//! - `off`: no provider at all, the no-op tracer (tracing disabled);
//! - `sampled_out`: the SDK with gracetrace's live sampler at rate 0 and the project's
//!   processor attached (the processor never sees a dropped span, the sampler is the cost);
//! - `own_processor_python` / `own_processor_rust`: sampled, `GraceBatchProcessor`;
//! - `stock_processor`: sampled, the stock `BatchSpanProcessor` behind
//!   `CountedStockProcessor`, as the pipeline's `sdk` semantics runs it.
//!
//! The sampled variants export for real, to an exporter that drops the batch: the worker
//! thread really drains the queue (so it cannot grow without bound, and the producer pays
//! the lock or channel contention with a live worker), while the network is left out. The
//! exporter is wrapped in `InstrumentedExporter`, as the product wraps it, so the record's
//! per-batch bookkeeping is part of the cost. A producer that outruns the worker fills the
//! 2048-span queue and has spans dropped: that is a real per-span cost too, and each
//! variant reports how many of its spans were exported and how many dropped.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry::KeyValue;
use opentelemetry::trace::noop::NoopTracer;
use opentelemetry::trace::{Span as _, Tracer, TracerProvider as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter,
};

use gracetrace::record::Record;
use gracetrace::telemetry::exporter::InstrumentedExporter;
use gracetrace::telemetry::processor::{BatchConfig, GraceBatchProcessor};
use gracetrace::telemetry::rules::Profile;
use gracetrace::telemetry::sampler::{RatioFormula, SampleRate};
use gracetrace::telemetry::stock::{CountedStockProcessor, settle_drops};
use gracetrace::telemetry::wire::{ExportProbe, RunnerLife};

/// The batch settings of every sampled variant: the SDK defaults for queue and batch, a
/// short delay so a slow trickle is exported promptly too.
const MAX_QUEUE_SIZE: usize = 2048;
const MAX_EXPORT_BATCH_SIZE: usize = 512;
const SCHEDULE_DELAY: Duration = Duration::from_millis(100);

/// Long enough for the provider's shutdown to drain a full queue through a no-op exporter.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(30);

/// An exporter that costs (almost) nothing: it drops the batch and reports success, so the
/// benchmark measures the span path and the processor, not serialization or HTTP.
#[derive(Debug)]
struct DropExporter;

impl SpanExporter for DropExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        drop(batch);
        Ok(())
    }
}

type Exporter = InstrumentedExporter<DropExporter>;

fn drop_exporter(record: &Arc<Record>) -> Exporter {
    InstrumentedExporter::new(
        DropExporter,
        record.clone(),
        1,
        Arc::new(ExportProbe::default()),
        Arc::new(RunnerLife::new(1)),
    )
}

/// The unit of work: one span shaped like the seed's root span (three attributes).
/// `black_box` on the tracer keeps the compiler from specialising the loop body away.
fn one_span<T: Tracer>(tracer: &T) {
    let mut span = black_box(tracer).start("span");
    span.set_attribute(KeyValue::new("model.name", "stable-diffusion-xl-base-1.0"));
    span.set_attribute(KeyValue::new("prompt.length", 20_i64));
    span.set_attribute(KeyValue::new("num_inference_steps", 20_i64));
    span.end();
}

fn own_provider(profile: Profile, sample_rate: f64, record: &Arc<Record>) -> SdkTracerProvider {
    let config = BatchConfig {
        max_queue_size: MAX_QUEUE_SIZE,
        max_export_batch_size: MAX_EXPORT_BATCH_SIZE,
        schedule_delay: SCHEDULE_DELAY,
        export_timeout: Duration::from_secs(30),
    };
    let processor = GraceBatchProcessor::new(
        profile,
        config,
        drop_exporter(record),
        record.clone(),
        Arc::new(RunnerLife::new(1)),
    );
    SdkTracerProvider::builder()
        .with_sampler(SampleRate::new(sample_rate).parent_based(RatioFormula::Rust))
        .with_span_processor(processor)
        .build()
}

/// Prints where the spans of one sampled variant went, once its provider has shut down
/// (shutdown drains the queue, so nothing is left "queued").
fn report(name: &str, record: &Record) {
    let counts = record.span_counts();
    let exported = counts.exported;
    let dropped = counts.dropped_queue_full;
    let total = exported + dropped + counts.dropped_after_shutdown + counts.export_failed;
    eprintln!(
        "{name}: {total} sampled spans ended: {exported} exported, {dropped} dropped for a \
         full queue ({:.1}%), {} after shutdown, {} export failed, {} still queued",
        100.0 * dropped as f64 / total.max(1) as f64,
        counts.dropped_after_shutdown,
        counts.export_failed,
        counts.queued,
    );
}

fn span_cost(c: &mut Criterion) {
    let mut group = c.benchmark_group("span_cost");
    group.throughput(Throughput::Elements(1));

    // Tracing off: the product makes no provider and runs the same code on the no-op
    // tracer (`workload::request::serve_synthetic`).
    let noop = NoopTracer::new();
    group.bench_function("off", |b| b.iter(|| one_span(&noop)));

    // Sampled out: the SDK builds ids and asks the sampler, then hands back a
    // non-recording span. The processor is attached as in the product.
    {
        let record = Arc::new(Record::new());
        let provider = own_provider(Profile::Rust, 0.0, &record);
        let tracer = provider.tracer("bench");
        group.bench_function("sampled_out", |b| b.iter(|| one_span(&tracer)));
        provider
            .shutdown_with_timeout(SHUTDOWN_WAIT)
            .expect("shutting down the sampled_out provider");
        let counts = record.span_counts();
        assert_eq!(
            counts.exported + counts.dropped_queue_full,
            0,
            "rate 0 must sample nothing out to the processor"
        );
    }

    for (name, profile) in [
        ("own_processor_python", Profile::Python),
        ("own_processor_rust", Profile::Rust),
    ] {
        let record = Arc::new(Record::new());
        let provider = own_provider(profile, 1.0, &record);
        let tracer = provider.tracer("bench");
        group.bench_function(name, |b| b.iter(|| one_span(&tracer)));
        provider
            .shutdown_with_timeout(SHUTDOWN_WAIT)
            .expect("shutting down the own processor's provider");
        report(name, &record);
    }

    // The stock processor, fed exactly as `telemetry::Pipeline` feeds it for `sdk`.
    {
        let record = Arc::new(Record::new());
        let exporter = drop_exporter(&record);
        let handed = exporter.handed();
        let stock = BatchSpanProcessor::builder(exporter)
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_max_queue_size(MAX_QUEUE_SIZE)
                    .with_max_export_batch_size(MAX_EXPORT_BATCH_SIZE)
                    .with_scheduled_delay(SCHEDULE_DELAY)
                    .build(),
            )
            .build();
        let life = Arc::new(RunnerLife::new(1));
        let counted =
            CountedStockProcessor::new(stock, MAX_QUEUE_SIZE, handed, record.clone(), life);
        let counts = counted.counts.clone();
        let provider = SdkTracerProvider::builder()
            .with_sampler(SampleRate::new(1.0).parent_based(RatioFormula::Rust))
            .with_span_processor(counted)
            .build();
        let tracer = provider.tracer("bench");
        group.bench_function("stock_processor", |b| b.iter(|| one_span(&tracer)));
        provider
            .shutdown_with_timeout(SHUTDOWN_WAIT)
            .expect("shutting down the stock processor's provider");
        // The stock processor hides its drop count: after its draining shutdown, what it
        // accepted but never handed to the exporter was dropped (telemetry::stock).
        settle_drops(&record, &counts);
        report("stock_processor", &record);
    }

    group.finish();
}

criterion_group!(benches, span_cost);
criterion_main!(benches);
