//! The Rust rules: opentelemetry_sdk 0.33.1, `src/trace/span_processor.rs`,
//! `BatchSpanProcessor` (line numbers below are of that file).

use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use super::{
    GraceBatchProcessor, Message, Shared, export_batch, lock, shutdown_exporter, wait_until,
};

pub use crate::telemetry::rules::rust::FORCE_FLUSH_WAIT;
use crate::telemetry::rules::rust::{MESSAGE_CAPACITY, Rust, next_chunk, next_wait};
use crate::telemetry::rules::{BatchRules, FullQueue};

/// `on_end` (l. 812-880): count first, then `try_send`; a full channel rejects the NEW
/// span. Reaching a batch sends one `ExportSpan` message until the worker takes it.
pub(super) fn on_end<E>(shared: &Shared<E>, span: SpanData) {
    let counters = &shared.record.counters;
    if shared.shutdown.load(SeqCst) {
        // TrySendError::Disconnected: the worker is gone.
        counters.dropped_after_shutdown.fetch_add(1, Relaxed);
        return;
    }
    let previous_batch_size = shared.pending.fetch_add(1, SeqCst);
    debug_assert_eq!(Rust.full_queue(), FullQueue::RejectNewest);
    if shared.queue.push_or_refuse(span).is_err() {
        // TrySendError::Full: the count is reverted and the span dropped.
        shared.pending.fetch_sub(1, SeqCst);
        counters.dropped_newest.fetch_add(1, Relaxed);
        return;
    }
    counters.queued.fetch_add(1, Relaxed);
    // l. 833-843: the flag is read before it is swapped, so spans arriving while a
    // message is pending only read a cached flag.
    let batch_size = shared.config.max_export_batch_size;
    let sent = shared.export_message_sent.load(SeqCst);
    if Rust.wakes_worker(previous_batch_size + 1, batch_size, sent)
        && !shared.export_message_sent.swap(true, SeqCst)
    {
        let mut messages = lock(&shared.messages);
        if messages.len() < MESSAGE_CAPACITY {
            messages.push_back(Message::ExportSpan);
            drop(messages);
            shared.wake.notify_all();
        } else {
            shared.export_message_sent.store(false, SeqCst);
        }
    }
}

/// The worker loop (l. 583-680): `recv_timeout(scheduled_delay - since last export)`.
pub(super) fn worker<E: SpanExporter>(shared: &Shared<E>) {
    let delay = shared.config.schedule_delay;
    let mut last_export_time = Instant::now();
    loop {
        let remaining = next_wait(delay, last_export_time.elapsed());
        let message = {
            let mut messages = wait_until(shared, Instant::now() + remaining, |s, m| {
                !m.is_empty() || s.killed.load(SeqCst)
            });
            if shared.killed.load(SeqCst) {
                return;
            }
            let message = messages.pop_front();
            if matches!(message, Some(Message::ExportSpan)) {
                shared.export_message_sent.store(false, SeqCst);
            }
            message
        };
        match message {
            None | Some(Message::ExportSpan) => {
                let _ = get_spans_and_export(shared, &mut last_export_time);
            }
            Some(Message::ForceFlush(reply)) => {
                let result = get_spans_and_export(shared, &mut last_export_time);
                let _ = reply.send(result);
            }
            Some(Message::Shutdown(reply)) => {
                let result = get_spans_and_export(shared, &mut last_export_time);
                shutdown_exporter(shared);
                close_channel(shared);
                let _ = reply.send(result);
                return;
            }
        }
    }
}

/// When the worker returns, the receiver is dropped: spans that were `try_send`-ed after
/// the shutdown drain vanish uncounted upstream. Here they are counted.
fn close_channel<E>(shared: &Shared<E>) {
    shared.shutdown.store(true, SeqCst);
    let left = shared.clear_queue();
    let counters = &shared.record.counters;
    counters.queued.fetch_sub(left as i64, Relaxed);
    counters.dropped_after_shutdown.fetch_add(left, Relaxed);
}

/// `get_spans_and_export` (l. 721-766): export what was counted at the start, in chunks
/// of the batch size; `last_export_time` is reset at the start of each export.
fn get_spans_and_export<E: SpanExporter>(
    shared: &Shared<E>,
    last_export_time: &mut Instant,
) -> OTelSdkResult {
    let target = shared.pending.load(SeqCst);
    let mut result = Ok(());
    let mut total = 0;
    while let Some(limit) = next_chunk(shared.config.max_export_batch_size, target, total) {
        if shared.killed.load(SeqCst) {
            return result;
        }
        let batch: Vec<SpanData> = shared.take_batch(limit);
        let count = batch.len();
        if count == 0 {
            break;
        }
        total += count;
        *last_export_time = Instant::now();
        result = export_batch(shared, batch);
        shared.pending.fetch_sub(count, SeqCst);
    }
    result
}

fn send<E>(shared: &Shared<E>, message: Message) -> Result<(), OTelSdkError> {
    let mut messages = lock(&shared.messages);
    if shared.shutdown.load(SeqCst) {
        return Err(OTelSdkError::AlreadyShutdown);
    }
    if messages.len() >= MESSAGE_CAPACITY {
        return Err(OTelSdkError::InternalFailure(
            "control channel is full".into(),
        ));
    }
    messages.push_back(message);
    drop(messages);
    shared.wake.notify_all();
    Ok(())
}

/// `force_flush` (l. 892-925): no timeout argument; waits a fixed 5 s for the worker.
pub(super) fn force_flush<E>(shared: &Shared<E>) -> OTelSdkResult {
    let (reply, answer) = sync_channel(1);
    send(shared, Message::ForceFlush(reply))?;
    answer
        .recv_timeout(FORCE_FLUSH_WAIT)
        .map_err(|_| OTelSdkError::Timeout(FORCE_FLUSH_WAIT))?
}

/// `shutdown_with_timeout` (l. 929-990): `Timeout` if the worker has not answered in
/// time, but the worker carries on with its drain; `Ok` even when the last export
/// failed (the reply is only waited for, l. 947-953).
pub(super) fn shutdown<E: SpanExporter + 'static>(
    processor: &GraceBatchProcessor<E>,
    timeout: Duration,
) -> OTelSdkResult {
    let shared = &processor.shared;
    let (reply, answer) = sync_channel(1);
    send(shared, Message::Shutdown(reply))?;
    let _last_export_result = answer
        .recv_timeout(timeout)
        .map_err(|_| OTelSdkError::Timeout(timeout))?;
    processor.join_worker(Duration::from_secs(1));
    Ok(())
}
