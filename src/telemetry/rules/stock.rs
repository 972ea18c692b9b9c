//! The stock processor's rules: opentelemetry_sdk 0.33.1, `src/trace/span_processor.rs`,
//! `BatchSpanProcessor` (line numbers below are of that file), which `tracing.semantics =
//! sdk` runs unmodified (`telemetry/stock.rs`) and the simulator follows with this book.
//!
//! The rust profile reimplements this very processor (`rules::rust` cites the same file),
//! so every decision below is read again from its line and is the rust book's; the
//! simulator runs the same worker for both (`sim/processor.rs`). What differs is what can
//! be seen of it from outside: its drop count is private (`dropped_spans_count`, l. 494),
//! so gracetrace settles every span it accepted and never handed to the exporter as
//! dropped to a full queue once its shutdown returns (`telemetry::stock::settle_drops`).

use std::time::Duration;

use super::rust::{FORCE_FLUSH_WAIT, SHUTDOWN_WAIT};
use super::{BatchRules, FlushWait, FullQueue, Leftover};

/// The stock processor's rule book. Its worker's control channel holds 64 messages
/// (`sync_channel::<BatchMessage>(64)`, l. 521): the rust book's `MESSAGE_CAPACITY`.
pub struct Stock;

impl BatchRules for Stock {
    /// `on_end` (l. 817-818): `try_send` on the span channel of `max_queue_size`
    /// (`sync_channel::<SpanData>`, l. 520); `Full` (l. 862-874) drops the NEW span.
    fn full_queue(&self) -> FullQueue {
        FullQueue::RejectNewest
    }

    /// `on_end` (l. 826-858): once `current_batch_size` (counted before the send, l. 817,
    /// and still counting the spans in an export, l. 763) reaches the batch size, one
    /// `ExportSpan` message, unless one is already sent (`export_span_message_sent`,
    /// cleared by the worker at l. 603 or when the message could not be sent, l. 854).
    fn wakes_worker(&self, counted: usize, batch_size: usize, signalled: bool) -> bool {
        counted >= batch_size && !signalled
    }

    /// `force_flush` (l. 892-899) takes no timeout: it waits `forceflush_timeout`, a fixed
    /// `Duration::from_secs(5)` (l. 693), for the worker's answer.
    fn flush_wait(&self, _timeout: Duration) -> FlushWait {
        FlushWait::AtMost(FORCE_FLUSH_WAIT)
    }

    /// `SdkTracerProvider::shutdown()` waits 5 s, as for the rust book; the worker's
    /// reply is waited for with `recv_timeout(timeout)` (l. 941-945).
    fn shutdown_wait(&self) -> Duration {
        SHUTDOWN_WAIT
    }

    /// Spans left in the channel when shutdown returns (sent after the worker's last drain
    /// took its count at l. 734, or never drained before the wait ran out) are gone with
    /// the channel's receiver (l. 651: the worker breaks out of its loop) and, the drop
    /// count being private, counted with the drops to a full queue.
    fn leftover_at_shutdown(&self) -> Leftover {
        Leftover::DroppedQueueFull
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::rules::rust::Rust;

    #[test]
    fn the_stock_book_decides_as_the_rust_book_and_settles_what_is_left_as_drops() {
        let d = Duration::from_secs(30);
        assert_eq!(Stock.full_queue(), Rust.full_queue());
        assert_eq!(Stock.flush_wait(d), Rust.flush_wait(d));
        assert_eq!(Stock.shutdown_wait(), Rust.shutdown_wait());
        for (counted, signalled) in [(511, false), (512, false), (512, true), (900, false)] {
            assert_eq!(
                Stock.wakes_worker(counted, 512, signalled),
                Rust.wakes_worker(counted, 512, signalled)
            );
        }
        assert_eq!(Stock.leftover_at_shutdown(), Leftover::DroppedQueueFull);
        assert_eq!(Rust.leftover_at_shutdown(), Leftover::DroppedAfterShutdown);
    }
}
