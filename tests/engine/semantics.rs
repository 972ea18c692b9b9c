//! The rule books of the project's batch processor, against each other and against the
//! stock `opentelemetry_sdk` processor, with an exporter the test holds shut.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use opentelemetry::InstrumentationScope;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SpanData, SpanEvents, SpanExporter, SpanLinks,
    SpanProcessor,
};

use crate::common::{PATIENCE, wait_until};
use gracetrace::record::Record;
use gracetrace::telemetry::exporter::InstrumentedExporter;
use gracetrace::telemetry::processor::{BatchConfig, GraceBatchProcessor};
use gracetrace::telemetry::rules::Profile;
use gracetrace::telemetry::stock::{CountedStockProcessor, settle_drops};
use gracetrace::telemetry::wire::{ExportProbe, RunnerLife};

/// Span `i` is named `i`, so the exported names say exactly which spans survived.
fn span(i: u64) -> SpanData {
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(i as u128 + 1),
            SpanId::from(i + 1),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: i.to_string().into(),
        start_time: SystemTime::now(),
        end_time: SystemTime::now(),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: InstrumentationScope::builder("test").build(),
    }
}

/// An exporter that lets a batch through only when the test grants a permit, and then
/// takes `delay` to "send" it.
#[derive(Clone, Debug, Default)]
struct GatedExporter {
    exported: Arc<Mutex<Vec<u64>>>,
    entered: Arc<AtomicUsize>,
    permits: Arc<(Mutex<usize>, Condvar)>,
    delay: Duration,
}

impl GatedExporter {
    fn open(delay: Duration) -> Self {
        let exporter = GatedExporter {
            delay,
            ..Default::default()
        };
        exporter.grant(usize::MAX / 2);
        exporter
    }

    fn grant(&self, n: usize) {
        let (lock, cv) = &*self.permits;
        *lock.lock().unwrap() += n;
        cv.notify_all();
    }

    fn wait_entered(&self, n: usize) {
        wait_until(&format!("export {n} to start"), PATIENCE, || {
            self.entered.load(SeqCst) >= n
        });
    }

    fn exported(&self) -> BTreeSet<u64> {
        self.exported.lock().unwrap().iter().copied().collect()
    }
}

impl SpanExporter for GatedExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.entered.fetch_add(1, SeqCst);
        let (lock, cv) = &*self.permits;
        let mut permits = lock.lock().unwrap();
        while *permits == 0 {
            permits = cv.wait(permits).unwrap();
        }
        *permits -= 1;
        drop(permits);
        std::thread::sleep(self.delay);
        let mut exported = self.exported.lock().unwrap();
        exported.extend(batch.iter().map(|s| s.name.parse::<u64>().unwrap()));
        Ok(())
    }
}

fn config(max_queue_size: usize, max_export_batch_size: usize) -> BatchConfig {
    BatchConfig {
        max_queue_size,
        max_export_batch_size,
        schedule_delay: Duration::from_secs(60),
        export_timeout: Duration::from_secs(30),
    }
}

/// The test exporter wrapped as the product wraps the real one, with a fresh record.
fn instrumented(exporter: &GatedExporter) -> (InstrumentedExporter<GatedExporter>, Arc<Record>) {
    let record = Arc::new(Record::new());
    let instrumented = InstrumentedExporter::new(
        exporter.clone(),
        record.clone(),
        1,
        Arc::new(ExportProbe::default()),
        Arc::new(RunnerLife::new(1)),
    );
    (instrumented, record)
}

fn own(
    profile: Profile,
    config: BatchConfig,
    exporter: &GatedExporter,
) -> (
    GraceBatchProcessor<InstrumentedExporter<GatedExporter>>,
    Arc<Record>,
) {
    let (instrumented, record) = instrumented(exporter);
    (
        GraceBatchProcessor::new(
            profile,
            config,
            instrumented,
            record.clone(),
            Arc::new(RunnerLife::new(1)),
        ),
        record,
    )
}

/// Feeds spans `from..to`.
fn emit(processor: &dyn SpanProcessor, from: u64, to: u64) {
    for i in from..to {
        processor.on_end(span(i));
    }
}

#[test]
fn under_overload_python_keeps_the_newest_and_rust_the_oldest() {
    let expectations = [
        // Python: deque(maxlen=10) keeps the 10 newest of 5..105.
        (
            Profile::Python,
            (0..5).chain(95..105).collect::<BTreeSet<u64>>(),
        ),
        // Rust: try_send on a full channel keeps the 10 oldest of 5..105.
        (Profile::Rust, (0..15).collect()),
        // Js: a full buffer drops the span being ended, so the 10 oldest stay too.
        (Profile::Js, (0..15).collect()),
    ];
    for (profile, expected) in expectations {
        let exporter = GatedExporter::default();
        let (processor, record) = own(profile, config(10, 5), &exporter);
        emit(&processor, 0, 5); // one batch: wakes the worker, which blocks in export
        exporter.wait_entered(1);
        emit(&processor, 5, 105); // 100 spans for 10 places
        exporter.grant(usize::MAX / 2);
        processor.shutdown().unwrap();
        assert_eq!(exporter.exported(), expected, "{profile:?}");
        let counts = record.span_counts();
        match profile {
            Profile::Python => assert_eq!((counts.dropped_oldest, counts.dropped_newest), (90, 0)),
            Profile::Rust | Profile::Js => {
                assert_eq!((counts.dropped_oldest, counts.dropped_newest), (0, 90))
            }
        }
        assert_eq!(counts.exported, 15);
        assert_eq!(counts.queued, 0);
    }
}

#[test]
fn rust_profile_agrees_with_the_stock_processor() {
    // Three rounds: a batch leaves and blocks, a burst arrives, the batch is let through.
    let rounds = [(0, 5, 105), (105, 110, 400), (400, 407, 1000)];
    let drive = |processor: &dyn SpanProcessor, exporter: &GatedExporter| {
        for (n, (start, batch_end, burst_end)) in rounds.into_iter().enumerate() {
            emit(processor, start, batch_end);
            exporter.wait_entered(n + 1);
            emit(processor, batch_end, burst_end);
            exporter.grant(1);
            // The worker takes its next batch out of the queue (making room) before the
            // next round's spans arrive; without this wait, which spans find room would
            // depend on how the threads are scheduled.
            exporter.wait_entered(n + 2);
        }
        exporter.grant(usize::MAX / 2);
        processor.shutdown().unwrap();
    };

    let own_exporter = GatedExporter::default();
    let (processor, own_record) = own(Profile::Rust, config(40, 5), &own_exporter);
    drive(&processor, &own_exporter);

    let stock_exporter = GatedExporter::default();
    let (stock_instrumented, stock_record) = instrumented(&stock_exporter);
    let handed = stock_instrumented.handed();
    let stock = BatchSpanProcessor::builder(stock_instrumented)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(40)
                .with_max_export_batch_size(5)
                .with_scheduled_delay(Duration::from_secs(60))
                .build(),
        )
        .build();
    let life = Arc::new(RunnerLife::new(1));
    let counted = CountedStockProcessor::new(stock, 40, handed, stock_record.clone(), life);
    let counts = counted.counts.clone();
    drive(&counted, &stock_exporter);
    // Booked as they happened, before the shutdown's settlement made them exact.
    let booked = stock_record.span_counts().dropped_newest;
    settle_drops(&stock_record, &counts);
    let settled = stock_record.span_counts().dropped_newest;
    assert!(
        booked > 0 && booked.abs_diff(settled) <= 5,
        "{booked} booked, {settled} settled"
    );

    assert_eq!(own_exporter.exported(), stock_exporter.exported());
    let (own_counts, stock_counts) = (own_record.span_counts(), stock_record.span_counts());
    assert_eq!(own_counts.exported, stock_counts.exported);
    assert_eq!(own_counts.dropped_newest, stock_counts.dropped_newest);
    assert!(own_counts.dropped_newest > 0);
    assert_eq!(own_counts.exported + own_counts.dropped_newest, 1000);
}

#[test]
fn python_force_flush_ignores_its_timeout() {
    let exporter = GatedExporter::open(Duration::from_millis(600));
    let (processor, record) = own(Profile::Python, config(100, 5), &exporter);
    emit(&processor, 0, 20); // four batches of 600 ms each
    let start = Instant::now();
    assert!(processor.force_flush_python(Duration::from_millis(1000)));
    let took = start.elapsed();
    // The timeout said 1 s; the flush ran until every span was out (upstream issue 4568).
    assert!(took > Duration::from_millis(1500), "{took:?}");
    assert_eq!(exporter.exported().len(), 20);
    assert_eq!(record.span_counts().exported, 20);
    processor.shutdown().unwrap();
}

/// Js's `forceFlush` sends every buffered batch at once: all four are in the exporter
/// before any is let through (python and rust send one at a time); while the timer's
/// export is in flight, a full buffer does not start another.
#[test]
fn js_force_flush_sends_every_batch_at_once() {
    let exporter = GatedExporter::default();
    let (processor, record) = own(Profile::Js, config(100, 5), &exporter);
    emit(&processor, 0, 5); // a full batch leaves at once, and is held
    exporter.wait_entered(1);
    emit(&processor, 5, 25); // four more batches wait: no export starts mid-export
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(exporter.entered.load(SeqCst), 1);
    let flusher = processor.clone();
    let flush = std::thread::spawn(move || flusher.force_flush_js(Duration::from_secs(60)));
    exporter.wait_entered(5); // the timer's batch and the flush's four, together
    exporter.grant(usize::MAX / 2);
    flush.join().unwrap().unwrap();
    processor.shutdown().unwrap();
    assert_eq!(exporter.exported().len(), 25);
    assert_eq!(record.span_counts().exported, 25);
}

#[test]
fn rust_force_flush_gives_up_after_five_seconds() {
    // The exporter holds the first of the four batches until the flush has given up, so
    // the outcome does not depend on how fast this machine runs.
    let exporter = GatedExporter::default();
    let (processor, record) = own(Profile::Rust, config(100, 5), &exporter);
    emit(&processor, 0, 20); // four batches, the first held in the exporter
    let start = Instant::now();
    let result = processor.force_flush();
    let took = start.elapsed();
    assert!(
        matches!(result, Err(OTelSdkError::Timeout(_))),
        "{result:?}"
    );
    eprintln!("rust force_flush gave up after {took:?}");
    // Its fixed 5 s wait, never less; no upper bound on a loaded machine's clock.
    assert!(took >= Duration::from_secs(5), "{took:?}");
    assert!(exporter.exported().len() < 20);
    // The worker carried on regardless: shutdown finds everything exported.
    exporter.grant(usize::MAX / 2);
    processor
        .shutdown_with_timeout(Duration::from_secs(10))
        .unwrap();
    assert_eq!(record.span_counts().exported, 20);
}
