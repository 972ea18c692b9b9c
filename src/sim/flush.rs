//! Who waits for a `force_flush` in virtual time, and for how long: teardown() on the
//! runner's main thread, or, with `workload.flush_every_request`, each request in its
//! slot, which `workload/request.rs` flushes after its spans end and before it returns
//! (so its slot stays taken, and its latency and service time include the wait). The
//! processor answers each flusher apart, as each SDK does for concurrent callers: python
//! runs an `_export` under the export lock for each, rust and sdk send a `ForceFlush`
//! message each, js waits for a `Promise.all` of the batches its own call sent.

use std::time::Duration;

use super::{Event, Sim};
use crate::telemetry::rules::js::flush_gives_up_after;
use crate::telemetry::rules::{FlushWait, Profile};
use crate::workload::request::FLUSH_IN_REQUEST_TIMEOUT;

/// Why the simulated `force_flush` did not succeed, worded as the report's
/// `flush_result` has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum FlushError {
    /// python: the processor had already shut down.
    #[error("already shut down")]
    AlreadyShutDown,
    /// rust: the worker's control channel took no `ForceFlush` message.
    #[error("control channel is full or closed")]
    ChannelClosed,
    /// rust: the worker did not answer within `force_flush`'s fixed wait; js: the
    /// provider stopped waiting.
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
    /// js: one of the batches failed (`Promise.all` rejects with the first).
    #[error("an export failed")]
    ExportFailed,
}

/// A caller of `force_flush`, waiting for its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flusher {
    Teardown,
    /// The request in `slot`, in the run's `flush`-th per-request flush: an answer that
    /// comes after the request stopped waiting (rust's 5 s, js's timeout) must not end
    /// the flush of the next request in that slot.
    Request {
        slot: usize,
        flush: u64,
    },
}

impl Sim<'_> {
    /// How long `force_flush(timeout)` waits at most under the semantics; `None`: until
    /// everything is exported (python ignores the timeout). Js waits the timeout, or less
    /// the export timeout of its batches (`rules::js::flush_gives_up_after`).
    pub(super) fn flush_wait(&self, timeout: Duration) -> Option<Duration> {
        match self.processor.rules().flush_wait(timeout) {
            FlushWait::Everything => None,
            FlushWait::AtMost(wait) => Some(match self.processor.profile() {
                Profile::Js => flush_gives_up_after(wait, self.processor.export_timeout),
                _ => wait,
            }),
        }
    }

    /// The processor has answered `flusher` (or its call failed at once).
    pub(super) fn flush_done(&mut self, flusher: Flusher, result: Result<(), FlushError>) {
        match flusher {
            Flusher::Teardown => self.teardown_flush_done(result),
            // A failed flush loses nothing by itself: its error only ends the wait.
            Flusher::Request { slot, flush } => self.request_flush_over(slot, flush),
        }
    }

    /// The request in `slot` has ended its spans and calls `force_flush(30 s)`, the
    /// timeout `workload/request.rs` passes; the wait's end is a `RequestFlushWait`.
    pub(super) fn request_flush(&mut self, slot: usize, flush: u64) {
        if let Some(wait) = self.flush_wait(FLUSH_IN_REQUEST_TIMEOUT) {
            self.at(self.now + wait, Event::RequestFlushWait { slot, flush });
        }
        self.processor_flush(Flusher::Request { slot, flush });
    }

    /// The request's wait ran out before the processor answered; the flush itself goes
    /// on (rust's message stays in the channel, js's batches in flight).
    pub(super) fn request_flush_wait_over(&mut self, slot: usize, flush: u64) {
        if self.processor.profile() == Profile::Js {
            self.js_forget_flush(Flusher::Request { slot, flush });
        }
        self.request_flush_over(slot, flush);
    }
}
