//! A `SpanExporter` wrapper that writes every export batch into the record.
//!
//! Neither SDK has a hook per export batch (opentelemetry_sdk 0.33.1
//! `src/trace/span_processor.rs`, `BatchSpanProcessor`; opentelemetry-sdk 1.41.0
//! `opentelemetry/sdk/_shared_internal/__init__.py`, `BatchProcessor._export`: both call
//! the exporter directly), so the wrapper sits between the
//! batch processor and the real exporter. It moves the batch's spans from `queued` to
//! "in export" when the batch leaves, and to `exported` or `export_failed` when the
//! exporter answers. It forwards `set_resource`, without which the OTLP exporter would
//! send every span without `service.name`. For the js profile it also refuses an export
//! while 30 are in flight, as the JavaScript OTLP exporter does (`rules::js`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::time::Duration;

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use super::rules::js::refuses_export;
use super::wire::{ExportProbe, RunnerLife};
use crate::record::Record;

#[derive(Debug)]
pub struct InstrumentedExporter<E> {
    inner: E,
    record: Arc<Record>,
    generation: u64,
    probe: Arc<ExportProbe>,
    life: Arc<RunnerLife>,
    /// Spans handed to this exporter so far (the stock processor's drops are what it
    /// accepted minus this, once it has shut down).
    handed: Arc<Handed>,
    /// Exports in flight now.
    in_flight: AtomicUsize,
    /// The js exporter's concurrency limit applies.
    limits_concurrency: bool,
}

impl<E> InstrumentedExporter<E> {
    pub fn new(
        inner: E,
        record: Arc<Record>,
        generation: u64,
        probe: Arc<ExportProbe>,
        life: Arc<RunnerLife>,
    ) -> Self {
        InstrumentedExporter {
            inner,
            record,
            generation,
            probe,
            life,
            handed: Arc::new(Handed::default()),
            in_flight: AtomicUsize::new(0),
            limits_concurrency: false,
        }
    }

    /// Refuses an export while 30 are in flight, as `@opentelemetry/otlp-exporter-base`
    /// does (`rules::js::refuses_export`).
    pub fn limiting_concurrency(mut self) -> Self {
        self.limits_concurrency = true;
        self
    }

    pub fn handed(&self) -> Arc<Handed> {
        self.handed.clone()
    }
}

/// The spans handed to an exporter, and whether it still takes any: one atomic, so that
/// closing it and a batch being handed over cannot interleave.
///
/// The stock processor's drops are settled as "accepted and never handed" when its
/// shutdown returns (`stock::settle_drops`). When that shutdown gives up (5 s,
/// opentelemetry_sdk 0.33.1 `span_processor.rs` l. 941-945), its worker goes on
/// exporting, in a real process until it exits; a batch handed over after the settle
/// would then count twice, dropped and exported (seen under the throughput probe: 13
/// batches). So the settle closes the exporter, and the process's exit is where it takes
/// nothing more.
#[derive(Debug, Default)]
pub struct Handed(AtomicU64);

/// The top bit of `Handed`: closed.
const CLOSED: u64 = 1 << 63;

impl Handed {
    /// Counts `spans` as handed over; false, counting nothing, once closed.
    pub fn hand(&self, spans: u64) -> bool {
        self.0
            .fetch_update(SeqCst, SeqCst, |n| (n & CLOSED == 0).then_some(n + spans))
            .is_ok()
    }

    /// Spans handed over so far.
    pub fn count(&self) -> u64 {
        self.0.load(SeqCst) & !CLOSED
    }

    /// Takes nothing more from now on; returns the final count.
    pub fn close(&self) -> u64 {
        self.0.fetch_or(CLOSED, SeqCst) & !CLOSED
    }
}

impl<E: SpanExporter> SpanExporter for InstrumentedExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len() as u64;
        let opened = self.life.while_alive(|| {
            self.handed
                .hand(spans)
                .then(|| self.record.export_started(self.generation, spans))
        });
        let id = match opened {
            Some(Some(id)) => id,
            // A dead process exports nothing and records nothing: SIGKILL has counted
            // this batch as lost with the spans still in the runner's memory.
            None => return Err(OTelSdkError::InternalFailure("runner was killed".into())),
            // The stock processor's shutdown gave up and its drops are settled (`Handed`).
            Some(None) => {
                return Err(OTelSdkError::InternalFailure(
                    "the processor's shutdown gave up; the process has exited".into(),
                ));
            }
        };
        let in_flight = self.in_flight.fetch_add(1, SeqCst);
        let result = if self.limits_concurrency && refuses_export(in_flight) {
            drop(batch);
            Err(OTelSdkError::InternalFailure(
                "Concurrent export limit reached".into(),
            ))
        } else {
            super::wire::set_current_export(id);
            self.inner.export(batch).await
        };
        self.in_flight.fetch_sub(1, SeqCst);
        // After a kill the export belongs to the kill (lost, or delivered if the backend
        // had accepted it), whatever this thread saw of the cut-off connection.
        self.life.while_alive(|| {
            self.record
                .export_finished(id, result.as_ref().err().map(|e| e.to_string()))
        });
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.probe.shutdown.store(true, Relaxed);
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
