//! The js rules: @opentelemetry/sdk-trace 2.12.1, `BatchSpanProcessorBase` (line numbers
//! below are of `packages/sdk-trace/src/export/BatchSpanProcessorBase.ts` at opentelemetry-js
//! v2.10.0, whose logic the 2.12.1 build ships unchanged).
//!
//! Node runs the processor on its one event-loop thread. Here spans end on the request
//! threads, a worker thread stands for the timer's callbacks, and each export runs on a
//! thread of its own (kept for the next export, `export_pool.rs`), as each is a promise
//! upstream: `forceFlush` sends every batch at once, and an export the processor stopped
//! waiting for carries on beside the next.

use std::sync::Arc;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use super::{GraceBatchProcessor, Shared, export_batch, lock, shutdown_exporter, wait_until};
use crate::telemetry::rules::js::{
    Js, Start, flush_all_batches, flush_gives_up_after, maybe_start_timer,
};
use crate::telemetry::rules::{BatchRules, FullQueue};

/// The provider's `forceFlushTimeoutMillis` default (`sdk-trace/src/TracerProvider.ts`
/// l. 45): what a `forceFlush()` without a timeout waits.
pub(super) const PROVIDER_FLUSH_WAIT: Duration = Duration::from_secs(30);

/// How long the worker sleeps with no timer running: a wake-up always comes first.
const IDLE: Duration = Duration::from_secs(3600);

/// `onEnd` (l. 82-92) and `_addToBuffer` (l. 113-136): after shutdown a span is dropped
/// without a word; a full buffer drops the NEW span; then `_maybeStartTimer`.
pub(super) fn on_end<E>(shared: &Shared<E>, span: SpanData) {
    let counters = &shared.record.counters;
    if shared.shutdown.load(SeqCst) {
        counters.dropped_after_shutdown.fetch_add(1, Relaxed);
        return;
    }
    debug_assert_eq!(Js.full_queue(), FullQueue::RejectNewest);
    if shared.queue.push_or_refuse(span).is_err() {
        counters.dropped_newest.fetch_add(1, Relaxed);
        return;
    }
    counters.queued.fetch_add(1, Relaxed);
    start_timer(shared);
}

/// `_maybeStartTimer` (l. 223-251): export now, start the timer, or nothing. A producer
/// only reads flags here while an export is in flight or the timer runs.
fn start_timer<E>(shared: &Shared<E>) {
    let start = maybe_start_timer(
        shared.exporting.load(SeqCst),
        shared.queue.len(),
        shared.config.max_export_batch_size,
        shared.timer_at.load(SeqCst) != 0,
    );
    match start {
        Start::Nothing => {}
        Start::ExportNow => {
            if !shared.awaken.load(SeqCst) && !shared.awaken.swap(true, SeqCst) {
                shared.notify_worker();
            }
        }
        Start::Timer => {
            let at = shared.born.elapsed() + shared.config.schedule_delay;
            let at = u64::try_from(at.as_nanos()).unwrap_or(u64::MAX).max(1);
            if shared
                .timer_at
                .compare_exchange(0, at, SeqCst, SeqCst)
                .is_ok()
            {
                shared.notify_worker();
            }
        }
    }
}

/// The timer's callbacks: an export when the timer fires or a batch is buffered, until
/// shutdown or SIGKILL.
pub(super) fn worker<E: SpanExporter + 'static>(shared: &Arc<Shared<E>>) {
    while wait_for_trigger(shared) {
        timer_export(shared);
    }
}

/// Waits until a batch is buffered (`awaken`) or the timer fires; false once the processor
/// has shut down or the runner is killed.
fn wait_for_trigger<E>(shared: &Shared<E>) -> bool {
    let mut state = lock(&shared.messages);
    loop {
        if shared.killed.load(SeqCst) || shared.shutdown.load(SeqCst) {
            return false;
        }
        if shared.awaken.load(SeqCst) {
            return true;
        }
        let at = shared.timer_at.load(SeqCst);
        let now = u64::try_from(shared.born.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let wait = match at {
            0 => IDLE,
            at if now >= at => return true,
            at => Duration::from_nanos(at - now),
        };
        state = shared
            .wake
            .wait_timeout(state, wait)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// The timer's `flush` (l. 225-239): one batch, waited for at most the export timeout
/// (l. 167-170: the export goes on, the processor no longer waits); then, with spans
/// left, `_maybeStartTimer` again, so the next delay counts from the end of this export.
fn timer_export<E: SpanExporter + 'static>(shared: &Arc<Shared<E>>) {
    shared.exporting.store(true, SeqCst);
    shared.awaken.store(false, SeqCst);
    shared.timer_at.store(0, SeqCst); // `_flushOneBatch` l. 162: `_clearTimer`
    let batch = shared.take_batch(shared.config.max_export_batch_size);
    if !batch.is_empty() {
        let (done, answer) = channel();
        spawn_export(shared, batch, done);
        let _ = answer.recv_timeout(shared.config.export_timeout);
    }
    shared.exporting.store(false, SeqCst);
    if !shared.queue.is_empty() {
        shared.timer_at.store(0, SeqCst);
        start_timer(shared);
    }
}

/// One export on a thread of its own (a pooled one, `export_pool.rs`); its result goes to
/// `done`. Should no thread start (the OS refused one), the batch goes with it and its
/// spans stay counted queued.
fn spawn_export<E: SpanExporter + 'static>(
    shared: &Arc<Shared<E>>,
    batch: Vec<SpanData>,
    done: Sender<OTelSdkResult>,
) {
    shared.in_flight.fetch_add(1, SeqCst);
    let for_export = shared.clone();
    let started = shared.export_threads.run(move || {
        let result = export_batch(&for_export, batch);
        for_export.in_flight.fetch_sub(1, SeqCst);
        for_export.notify_worker();
        let _ = done.send(result);
    });
    if !started {
        shared.in_flight.fetch_sub(1, SeqCst);
    }
}

/// `_flushAll` (l. 143-159): every buffered batch taken out now and sent at once; returns
/// where their answers come and how many were sent.
fn flush_all<E: SpanExporter + 'static>(
    shared: &Arc<Shared<E>>,
) -> (Receiver<OTelSdkResult>, usize) {
    let (done, answers) = channel();
    let size = shared.config.max_export_batch_size;
    let mut sent = 0;
    for _ in 0..flush_all_batches(shared.queue.len(), size) {
        shared.timer_at.store(0, SeqCst); // l. 162
        let batch = shared.take_batch(size);
        if batch.is_empty() {
            break;
        }
        spawn_export(shared, batch, done.clone());
        sent += 1;
    }
    (answers, sent)
}

/// `forceFlush` (l. 72-77) under the provider's `forceFlush({timeoutMillis})`: every batch
/// at once; done when all are answered, at the first failure or export timeout
/// (`Promise.all`), or when the provider stops waiting. A timer export already in flight is
/// not waited for.
pub(super) fn force_flush<E: SpanExporter + 'static>(
    shared: &Arc<Shared<E>>,
    timeout: Duration,
) -> OTelSdkResult {
    if shared.shutdown.load(SeqCst) {
        return Err(OTelSdkError::AlreadyShutdown);
    }
    let deadline = Instant::now() + flush_gives_up_after(timeout, shared.config.export_timeout);
    let (answers, sent) = flush_all(shared);
    for _ in 0..sent {
        match answers.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(OTelSdkError::Timeout(timeout)),
        }
    }
    Ok(())
}

/// `_shutdown` (l. 98-110): spans are refused from now on (`onEnd` l. 83), the last
/// `_flushAll`, then the exporter's shutdown, which awaits every export in flight, the
/// timer's included. Upstream has no timeout; gracetrace waits at most `timeout`.
pub(super) fn shutdown<E: SpanExporter + 'static>(
    processor: &GraceBatchProcessor<E>,
    timeout: Duration,
) -> OTelSdkResult {
    let shared = &processor.shared;
    if shared.shutdown.swap(true, SeqCst) {
        return Ok(());
    }
    let deadline = Instant::now() + timeout;
    shared.notify_worker();
    let _ = flush_all(shared);
    drop(wait_until(shared, deadline, |s, _| {
        s.in_flight.load(SeqCst) == 0 || s.killed.load(SeqCst)
    }));
    let drained = shared.in_flight.load(SeqCst) == 0;
    shutdown_exporter(shared);
    let left = deadline.saturating_duration_since(Instant::now());
    if drained && processor.join_worker(left) {
        Ok(())
    } else {
        Err(OTelSdkError::Timeout(timeout))
    }
}
