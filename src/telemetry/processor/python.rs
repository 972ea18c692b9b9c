//! The Python rules: opentelemetry-sdk 1.41, `opentelemetry/sdk/_shared_internal/__init__.py`,
//! class `BatchProcessor` (line numbers below are of that file).

use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::time::{Duration, Instant};

use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use super::{GraceBatchProcessor, Shared, export_batch, lock, shutdown_exporter, wait_until};
use crate::telemetry::rules::python::{Python, Strategy, should_export_batch, strategy_after_wait};
use crate::telemetry::rules::{BatchRules, FullQueue};

/// `emit` (l. 210-222): a full queue evicts its OLDEST span (`deque(maxlen)` with
/// `appendleft`), then a queue of at least one batch wakes the worker early.
///
/// `push_evicting` is one step under the deque's lock, as `appendleft` on a bounded deque
/// is under the GIL: two threads ending spans at a full queue evict two different spans,
/// never one twice.
pub(super) fn emit<E>(shared: &Shared<E>, span: SpanData) {
    let counters = &shared.record.counters;
    if shared.shutdown.load(SeqCst) {
        // l. 211: "Shutdown called, ignoring span."
        counters.dropped_after_shutdown.fetch_add(1, Relaxed);
        return;
    }
    debug_assert_eq!(Python.full_queue(), FullQueue::EvictOldest);
    let (evicted, len) = shared.queue.push_evicting(span);
    if evicted.is_some() {
        // l. 216-220: "Queue full, dropping span." -- the deque drops from the old end.
        counters.dropped_oldest.fetch_add(1, Relaxed);
    } else {
        counters.queued.fetch_add(1, Relaxed);
    }
    // l. 221-222: self._worker_awaken.set(). Setting an Event that is already set does
    // nothing, so only the span that sets it wakes the worker: while the worker exports,
    // the spans that keep arriving above the threshold must not each pay a futex wake.
    // Read the flag first: while the Event is set (the worker awake or exporting), the
    // spans that keep arriving only read a flag that stays in every core's cache.
    let batch_size = shared.config.max_export_batch_size;
    if !shared.awaken.load(SeqCst)
        && Python.wakes_worker(len, batch_size, false)
        && !shared.awaken.swap(true, SeqCst)
    {
        shared.notify_worker();
    }
    // The evicted span is freed here, on the thread that appended, as CPython frees what
    // the deque pushed out; never under the deque's lock.
    drop(evicted);
}

/// `worker` (l. 163-177). The wait is NOT shortened by the time exports take, and an
/// early wake that arrives during an export is cleared afterwards (l. 176).
pub(super) fn worker<E: SpanExporter>(shared: &Shared<E>) {
    let delay = shared.config.schedule_delay;
    loop {
        if shared.shutdown.load(SeqCst) {
            break;
        }
        // l. 168: sleep_interrupted = self._worker_awaken.wait(self._schedule_delay)
        let waited = wait_until(shared, Instant::now() + delay, |s, _| s.awaken.load(SeqCst));
        drop(waited);
        let interrupted = shared.awaken.load(SeqCst);
        if shared.shutdown.load(SeqCst) {
            break;
        }
        export(shared, strategy_after_wait(interrupted));
        shared.awaken.store(false, SeqCst);
    }
    if !shared.killed.load(SeqCst) {
        export(shared, Strategy::ExportAll); // l. 177
    }
}

/// `_export` (l. 179-208): under the export lock, batch after batch, oldest spans first.
fn export<E: SpanExporter>(shared: &Shared<E>, strategy: Strategy) {
    let _export_lock = lock(&shared.export_lock);
    let mut iterations = 0;
    loop {
        let go_on = should_export_batch(
            shared.queue.len(),
            shared.config.max_export_batch_size,
            shared.shutdown_timeout_exceeded.load(SeqCst),
            strategy,
            iterations,
        );
        if shared.killed.load(SeqCst) || !go_on {
            return;
        }
        iterations += 1;
        let batch: Vec<SpanData> = shared.take_batch(shared.config.max_export_batch_size);
        // l. 201-205: an exception is logged and the loop goes on with the next batch.
        let _ = export_batch(shared, batch);
    }
}

/// `force_flush` (l. 251-257): `timeout_millis` is ignored (upstream issue 4568); the
/// caller's thread exports everything, after waiting for the worker's export in flight.
pub(super) fn force_flush<E: SpanExporter>(shared: &Shared<E>) -> bool {
    if shared.shutdown.load(SeqCst) {
        return false;
    }
    export(shared, Strategy::ExportAll);
    true
}

/// `shutdown(timeout_millis=30000)` (l. 224-249): stop accepting, wake the worker, join
/// it for at most the timeout, stop further batches, shut the exporter down (which
/// aborts a retry wait in progress).
pub(super) fn shutdown<E: SpanExporter + 'static>(
    processor: &GraceBatchProcessor<E>,
    timeout: Duration,
) -> OTelSdkResult {
    let shared = &processor.shared;
    if shared.shutdown.swap(true, SeqCst) {
        return Ok(());
    }
    shared.awaken.store(true, SeqCst);
    shared.notify_worker();
    let joined = processor.join_worker(timeout);
    shared.shutdown_timeout_exceeded.store(true, SeqCst);
    shutdown_exporter(shared);
    if joined {
        Ok(())
    } else {
        Err(OTelSdkError::Timeout(timeout))
    }
}
