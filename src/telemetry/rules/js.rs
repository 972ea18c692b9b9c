//! The JavaScript rules: `@opentelemetry/sdk-trace` 2.12.1 (the `BatchSpanProcessor` that
//! `sdk-trace-base` and `sdk-trace-node` re-export) and `@opentelemetry/otlp-exporter-base`
//! 0.223.1 (what `exporter-trace-otlp-proto` sends through), the newest that run on Node 20.
//!
//! Line numbers are of the TypeScript sources of opentelemetry-js at tag v2.10.0
//! (experimental v0.221.0): `packages/sdk-trace/src/export/BatchSpanProcessorBase.ts`
//! ("BSP l."), `experimental/packages/otlp-exporter-base/src/` for the exporter. The
//! published 2.12.1 / 0.223.1 builds (`build/src/*.js`) have the same logic; where 2.12
//! differs (the provider's `forceFlush({timeoutMillis})`) the build file is cited.

use std::time::Duration;

use super::retry::{Answer, Next};
use super::{BatchRules, FlushWait, FullQueue};

/// The js rule book.
pub struct Js;

/// The provider's shutdown has no timeout (`sdk-trace/src/TracerProvider.ts` l. 146-147):
/// the processor's last `_flushAll` and the exporter's shutdown, which awaits every export
/// in flight (`otlp-export-delegate.ts` `shutdown`). Every export ends by its own 10 s
/// deadline, or its BSP wait (30 s) gives up; so gracetrace waits at most this long.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(30);

/// `concurrencyLimit: 30` (`configuration/shared-configuration.ts` l. 71): the exporter
/// refuses an export while this many are in flight (`otlp-export-delegate.ts` l. 68-74).
pub const EXPORT_CONCURRENCY: usize = 30;

impl BatchRules for Js {
    /// `_addToBuffer` (BSP l. 113-124): a full buffer drops the span being ended (the
    /// NEWEST), logged at debug level, then "Dropped N spans" once a later span gets in.
    fn full_queue(&self) -> FullQueue {
        FullQueue::RejectNewest
    }

    /// `_maybeStartTimer` (BSP l. 224, l. 241-243): a buffer of at least one batch exports
    /// at once, but only while no timer export is in flight; `signalled` is that export.
    fn wakes_worker(&self, counted: usize, batch_size: usize, signalled: bool) -> bool {
        counted >= batch_size && !signalled
    }

    /// `NodeTracerProvider.forceFlush({timeoutMillis})` (2.12.1 `build/src/TracerProvider.js`
    /// l. 67-68): it stops waiting after the timeout (30 s when none is given), and the
    /// exports go on.
    fn flush_wait(&self, timeout: Duration) -> FlushWait {
        FlushWait::AtMost(timeout)
    }

    fn shutdown_wait(&self) -> Duration {
        SHUTDOWN_WAIT
    }
}

/// What `_maybeStartTimer` (BSP l. 223-251) does after a span entered the buffer, or after
/// a timer export ended with spans left (l. 228-233).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// An export is in flight (l. 224), or the timer already runs (l. 244).
    Nothing,
    /// A batch is buffered: export now (l. 241-243).
    ExportNow,
    /// Start the timer: `scheduledDelayMillis` from now (l. 245). So the delay counts from
    /// the first span into an empty buffer, or from the end of the previous export.
    Timer,
}

/// `_maybeStartTimer`: `exporting` is `_isExporting` (set only by the timer's own export,
/// never by `forceFlush`), `timer_runs` whether `_timer` is set.
pub fn maybe_start_timer(
    exporting: bool,
    buffered: usize,
    batch_size: usize,
    timer_runs: bool,
) -> Start {
    if exporting {
        Start::Nothing
    } else if Js.wakes_worker(buffered, batch_size, false) {
        Start::ExportNow
    } else if timer_runs {
        Start::Nothing
    } else {
        Start::Timer
    }
}

/// `_flushAll` (BSP l. 143-159): `forceFlush` and `shutdown` take `ceil(n / batch)`
/// batches out at once and send them all in parallel (each `_flushOneBatch` splices its
/// batch synchronously, l. 177-182); the flush ends when all are answered, or at the first
/// that fails or times out (`Promise.all`).
pub fn flush_all_batches(buffered: usize, batch_size: usize) -> usize {
    buffered.div_ceil(batch_size.max(1))
}

/// `_flushOneBatch` (BSP l. 167-170): after `exportTimeoutMillis` the processor stops
/// waiting for an export ("don't wait anymore for export, this way the next batch can
/// start") without cancelling it, so exports can overlap.
pub fn stops_waiting(elapsed: Duration, export_timeout: Duration) -> bool {
    elapsed >= export_timeout
}

/// How long teardown's `forceFlush({timeoutMillis: timeout})` waits at most: the
/// provider's timeout, or sooner the export timeout of its batches, which all leave at
/// once (l. 167-170: each rejects then, and `Promise.all` with the first).
pub fn flush_gives_up_after(timeout: Duration, export_timeout: Duration) -> Duration {
    timeout.min(export_timeout)
}

/// `otlp-export-delegate.ts` l. 68-74: "Concurrent export limit reached", the batch
/// failed at once, with nothing sent.
pub fn refuses_export(in_flight: usize) -> bool {
    in_flight >= EXPORT_CONCURRENCY
}

/// `retrying-transport.ts` l. 10-14.
pub const MAX_RETRIES: u32 = 5;
const INITIAL_BACKOFF_MS: f64 = 1000.0;
const MAX_BACKOFF_MS: f64 = 5000.0;
const BACKOFF_MULTIPLIER: f64 = 1.5;
const JITTER: f64 = 0.2;

/// What the exporter retries: 429, 502, 503 and 504 (`is-export-retryable.ts` l. 6-13),
/// a request that timed out (`transport/http-transport-utils.ts` l. 138-144) and a
/// refused or reset connection (l. 196-209: ECONNREFUSED, ECONNRESET, EPIPE, ...).
pub fn retryable(answer: Answer) -> bool {
    match answer {
        Answer::Status(status, _) => matches!(status, 429 | 502 | 503 | 504),
        Answer::Timeout | Answer::Connection => true,
        Answer::Accepted => false,
    }
}

/// `parseRetryAfterToMills` (`is-export-retryable.ts` l. 15-33) for whole seconds: a
/// positive count is that many seconds; 0 gives -1, which `setTimeout` treats as 1 ms.
fn retry_after(seconds: u64) -> Duration {
    if seconds > 0 {
        Duration::from_secs(seconds)
    } else {
        Duration::from_millis(1)
    }
}

/// The state `RetryingTransport.send` (`retrying-transport.ts` l. 42-73) keeps across the
/// attempts of one export.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JsRetry {
    retries_left: u32,
    next_backoff_ms: f64,
}

impl Default for JsRetry {
    fn default() -> Self {
        JsRetry {
            retries_left: MAX_RETRIES,
            next_backoff_ms: INITIAL_BACKOFF_MS,
        }
    }
}

impl JsRetry {
    /// The loop's body after an attempt answered `answer`, with `left` before the export's
    /// deadline (`Date.now() + timeoutMillis` at the first attempt) and `u` a draw in
    /// `[0, 1)` for the jitter. The next attempt's own timeout is `left` (l. 61, l. 72),
    /// taken before the wait.
    pub fn after_failure(&mut self, answer: Answer, left: Duration, u: f64) -> Next {
        if !retryable(answer) || self.retries_left == 0 {
            return Next::GiveUp;
        }
        self.retries_left -= 1;
        // l. 52-57: min(next x (1 + jitter), 5 s), jitter uniform in [-0.2, 0.2).
        let jitter = u * 2.0 * JITTER - JITTER;
        let backoff_ms = (self.next_backoff_ms * (1.0 + jitter)).clamp(0.0, MAX_BACKOFF_MS);
        self.next_backoff_ms *= BACKOFF_MULTIPLIER;
        // l. 58: a Retry-After replaces the backoff.
        let wait = match answer {
            Answer::Status(_, Some(seconds)) => retry_after(seconds),
            _ => Duration::from_secs_f64(backoff_ms / 1000.0),
        };
        // l. 60-70: a wait that would end past the deadline ends the export now.
        if wait > left {
            return Next::GiveUp;
        }
        Next::RetryAfter(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_trigger_waits_for_the_export_in_flight_and_the_timer_starts_once() {
        assert_eq!(maybe_start_timer(false, 512, 512, true), Start::ExportNow);
        assert_eq!(maybe_start_timer(true, 2048, 512, false), Start::Nothing);
        assert_eq!(maybe_start_timer(false, 1, 512, false), Start::Timer);
        assert_eq!(maybe_start_timer(false, 2, 512, true), Start::Nothing);
        assert_eq!(flush_all_batches(2048, 512), 4);
        assert_eq!(flush_all_batches(2049, 512), 5);
        assert_eq!(flush_all_batches(0, 512), 0);
        assert!(refuses_export(30) && !refuses_export(29));
        assert_eq!(Js.full_queue(), FullQueue::RejectNewest);
    }

    #[test]
    fn backs_off_1_1_5_2_25_s_within_the_deadline_and_honours_retry_after() {
        let mut r = JsRetry::default();
        let mut waits = Vec::new();
        let mut left = Duration::from_secs(10);
        while let Next::RetryAfter(wait) = r.after_failure(Answer::Connection, left, 0.5) {
            waits.push(wait.as_millis());
            left = left.saturating_sub(wait);
        }
        // 1 + 1.5 + 2.25 + 3.375 = 8.125 s; the next 5 s wait would pass the deadline.
        assert_eq!(waits, [1000, 1500, 2250, 3375]);
        let mut r = JsRetry::default();
        let throttled = Answer::Status(429, Some(2));
        let ten = Duration::from_secs(10);
        assert_eq!(
            r.after_failure(throttled, ten, 0.0),
            Next::RetryAfter(Duration::from_secs(2))
        );
        assert_eq!(
            r.after_failure(throttled, Duration::from_secs(1), 0.0),
            Next::GiveUp
        );
        let mut r = JsRetry::default();
        assert_eq!(
            r.after_failure(Answer::Status(500, None), ten, 0.0),
            Next::GiveUp
        );
        // Five retries at most, however much time is left.
        let mut r = JsRetry::default();
        let hour = Duration::from_secs(3600);
        let tries = (0..10)
            .take_while(|_| r.after_failure(Answer::Timeout, hour, 0.0) != Next::GiveUp)
            .count();
        assert_eq!(tries, 5);
    }
}
