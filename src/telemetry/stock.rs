//! The stock `opentelemetry_sdk` `BatchSpanProcessor`, untouched, with a thin counter in
//! front so its spans enter the same accounting as the project's own processor.
//!
//! The stock processor keeps its drop count private (opentelemetry_sdk 0.33.1
//! `src/trace/span_processor.rs`: `BatchSpanProcessor::dropped_spans_count` is a private
//! field, only logged as `BatchSpanProcessor.SpanDroppingStarted` at the first drop and
//! `BatchSpanProcessor.SpansDropped` at shutdown). What it accepted minus
//! what reached its exporter is therefore "queued or dropped" while it runs, and exactly
//! "dropped" once it has shut down (its shutdown drains everything it counted).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchSpanProcessor, Span, SpanData, SpanProcessor};

use crate::record::Record;
use crate::telemetry::wire::RunnerLife;

#[derive(Debug)]
pub struct CountedStockProcessor {
    inner: BatchSpanProcessor,
    record: Arc<Record>,
    life: Arc<RunnerLife>,
    pub accepted: Arc<AtomicU64>,
}

impl CountedStockProcessor {
    pub fn new(inner: BatchSpanProcessor, record: Arc<Record>, life: Arc<RunnerLife>) -> Self {
        CountedStockProcessor {
            inner,
            record,
            life,
            accepted: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl SpanProcessor for CountedStockProcessor {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if self.life.is_killed() {
            return; // left open at the kill, dropped now: see GraceBatchProcessor::on_end
        }
        if span.span_context.is_sampled() {
            self.accepted.fetch_add(1, Relaxed);
            self.record.counters.queued.fetch_add(1, Relaxed);
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// After the stock processor shut down: what it accepted but never exported was
/// dropped, and the stock processor drops the newest (`try_send` on a full channel).
pub fn settle_drops(record: &Record, accepted: u64, handed: u64) {
    let dropped = accepted.saturating_sub(handed);
    record.counters.queued.fetch_sub(dropped as i64, Relaxed);
    record.counters.dropped_newest.fetch_add(dropped, Relaxed);
}
