//! The Rust rules: opentelemetry_sdk 0.33.1, `src/trace/span_processor.rs`,
//! `BatchSpanProcessor` (line numbers below are of that file).

use std::time::Duration;

use super::{BatchRules, FlushWait, FullQueue};

/// The rust rule book.
pub struct Rust;

/// The fixed wait of `force_flush` (l. 693: `forceflush_timeout: Duration::from_secs(5)`).
pub const FORCE_FLUSH_WAIT: Duration = Duration::from_secs(5);
/// `SdkTracerProvider::shutdown()` waits 5 s.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);
/// The worker's control channel holds this many messages (`sync_channel::<BatchMessage>(64)`
/// in `BatchSpanProcessor::new`): a span that would be the 65th "export now" message is
/// still queued, but wakes nobody; a `force_flush` that finds it full fails at once.
pub const MESSAGE_CAPACITY: usize = 64;

impl BatchRules for Rust {
    /// `on_end` (l. 812-880): `try_send` on a full channel rejects the NEW span.
    fn full_queue(&self) -> FullQueue {
        FullQueue::RejectNewest
    }

    /// `on_end`: reaching a batch sends one `ExportSpan` message until the worker takes
    /// it (`export_span_message_sent`).
    fn wakes_worker(&self, counted: usize, batch_size: usize, signalled: bool) -> bool {
        counted >= batch_size && !signalled
    }

    /// `force_flush` (l. 892-925) has no timeout argument: a fixed 5 s.
    fn flush_wait(&self, _timeout: Duration) -> FlushWait {
        FlushWait::AtMost(FORCE_FLUSH_WAIT)
    }

    fn shutdown_wait(&self) -> Duration {
        SHUTDOWN_WAIT
    }
}

/// The worker's `recv_timeout` (l. 583-600): `scheduled_delay - last_export_time.elapsed()`,
/// and the full delay again when that has already passed (`checked_sub(..).unwrap_or`).
pub fn next_wait(delay: Duration, since_last_export: Duration) -> Duration {
    delay.checked_sub(since_last_export).unwrap_or(delay)
}

/// `get_spans_and_export` (l. 721-766): the size of the next chunk when `total` of the
/// `target` spans counted at the start have been exported; `None` when done.
pub fn next_chunk(batch_size: usize, target: usize, total: usize) -> Option<usize> {
    (target > 0 && total < target).then(|| batch_size.min(target - total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_restarts_in_full_once_overdue_and_chunks_stop_at_the_target() {
        let d = Duration::from_millis(100);
        assert_eq!(
            next_wait(d, Duration::from_millis(30)),
            Duration::from_millis(70)
        );
        assert_eq!(next_wait(d, Duration::from_millis(130)), d);
        assert_eq!(next_chunk(512, 1000, 0), Some(512));
        assert_eq!(next_chunk(512, 1000, 512), Some(488));
        assert_eq!(next_chunk(512, 1000, 1000), None);
        assert_eq!(next_chunk(512, 0, 0), None);
    }
}
