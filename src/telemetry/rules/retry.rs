//! Each exporter's retry schedule as pure decisions: given how an attempt was answered
//! and how much time is left, retry after a wait or give up. The python schedule is the
//! one `telemetry/wire.rs` runs for real; the rust one is transcribed from
//! opentelemetry-otlp 0.33.1 `src/retry.rs` (`retry_with_backoff`) and
//! `src/retry_classification.rs` (`classify_http_error`), which run for real inside the
//! exporter, so the simulator can follow them in virtual time.

use std::time::Duration;

/// How one HTTP attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A 2xx response.
    Accepted,
    /// Another status, with its `Retry-After` seconds if it had one.
    Status(u16, Option<u64>),
    /// The connection was refused or reset.
    Connection,
    /// No answer within the attempt's timeout.
    Timeout,
}

/// What the exporter does after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// The export has failed: its spans are lost as `export_failed`.
    GiveUp,
    /// Try again after this wait.
    RetryAfter(Duration),
}

/// opentelemetry-exporter-otlp-proto-http 1.41 `_MAX_RETRYS = 6` (l. 67).
pub const PYTHON_MAX_TRIES: i32 = 6;

/// `OTLPSpanExporter.export` l. 183: `2**retry_num * random.uniform(0.8, 1.2)`; `factor`
/// is that uniform draw.
pub fn python_backoff(retry_num: i32, factor: f64) -> Duration {
    Duration::from_secs_f64(2f64.powi(retry_num) * factor)
}

/// `random.uniform(0.8, 1.2)` from a draw `u` in `[0, 1)` (`config::draws`): the threaded
/// exporter and the simulator take the n-th failed attempt's factor from the same draw.
pub fn python_backoff_factor(u: f64) -> f64 {
    0.8 + 0.4 * u
}

/// `_is_retryable` (`_common/__init__.py` l. 26-31): 408 and 5xx, not 429; a
/// `ConnectionError` is retried, a read timeout is not (`export` l. 188-191).
pub fn python_retryable(answer: Answer) -> bool {
    match answer {
        Answer::Accepted | Answer::Timeout => false,
        Answer::Status(status, _) => status == 408 || (500..=599).contains(&status),
        Answer::Connection => true,
    }
}

/// `OTLPSpanExporter.export` l. 201-214: after try `retry_num` failed with `answer`,
/// with `left` before the deadline, retry after `backoff` or give up.
pub fn python_next(
    retry_num: i32,
    answer: Answer,
    backoff: Duration,
    left: Duration,
    shutting_down: bool,
) -> Next {
    if !python_retryable(answer)
        || retry_num + 1 == PYTHON_MAX_TRIES
        || backoff > left
        || shutting_down
    {
        Next::GiveUp
    } else {
        Next::RetryAfter(backoff)
    }
}

/// opentelemetry-otlp 0.33.1 `RetryPolicy::recommended()` (`src/retry_policy.rs`).
pub const RUST_MAX_RETRIES: u32 = 3;
const RUST_INITIAL_DELAY: Duration = Duration::from_millis(100);
const RUST_MAX_DELAY: Duration = Duration::from_millis(1600);
/// `max_jitter`: the jitter is drawn in `0..=100` ms.
pub const RUST_MAX_JITTER_MS: u64 = 100;
/// `MAX_THROTTLE_DURATION` (`src/retry.rs`).
const RUST_MAX_THROTTLE: Duration = Duration::from_secs(30);

/// The state `retry_with_backoff` keeps across attempts of one export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RustRetry {
    attempt: u32,
    delay: Duration,
    delay_cap: Duration,
}

impl Default for RustRetry {
    fn default() -> Self {
        RustRetry {
            attempt: 0,
            delay: RUST_INITIAL_DELAY,
            delay_cap: RUST_MAX_DELAY,
        }
    }
}

/// `classify_http_error`: 429 and 503 with a `Retry-After` are throttled; 429, 503, 502,
/// 504 and failures without a response (status 0: refused, timed out) are retryable.
enum Class {
    NonRetryable,
    Retryable,
    Throttled(Duration),
}

fn classify(answer: Answer) -> Class {
    match answer {
        Answer::Status(429 | 503, Some(s)) => Class::Throttled(Duration::from_secs(s)),
        Answer::Status(429 | 503 | 502 | 504, _) | Answer::Connection | Answer::Timeout => {
            Class::Retryable
        }
        Answer::Status(..) | Answer::Accepted => Class::NonRetryable,
    }
}

impl RustRetry {
    /// `retry_with_backoff`'s `Err` arm: `elapsed` since the export began, `deadline` the
    /// exporter's timeout, `jitter` the draw in `0..=RUST_MAX_JITTER_MS` ms.
    pub fn after_failure(
        &mut self,
        answer: Answer,
        elapsed: Duration,
        deadline: Duration,
        jitter: Duration,
    ) -> Next {
        if elapsed >= deadline || self.attempt >= RUST_MAX_RETRIES {
            return Next::GiveUp;
        }
        match classify(answer) {
            Class::NonRetryable => return Next::GiveUp,
            Class::Retryable => {}
            Class::Throttled(server) => {
                let server = server.min(RUST_MAX_THROTTLE);
                if server > self.delay_cap {
                    self.delay_cap = RUST_MAX_THROTTLE;
                }
                if !server.is_zero() {
                    self.delay = self.delay.max(server);
                }
            }
        }
        self.attempt += 1;
        let sleep = self.delay.saturating_add(jitter).min(self.delay_cap);
        if sleep >= deadline.saturating_sub(elapsed) {
            return Next::GiveUp;
        }
        self.delay = self.delay.saturating_mul(2).min(self.delay_cap);
        Next::RetryAfter(sleep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_tries_at_about_0_1_3_7_s_then_gives_up_before_its_deadline() {
        let mut at = Duration::ZERO;
        let deadline = Duration::from_secs(10);
        let mut tries = vec![at];
        for retry_num in 0..PYTHON_MAX_TRIES {
            let backoff = python_backoff(retry_num, 1.0);
            match python_next(retry_num, Answer::Connection, backoff, deadline - at, false) {
                Next::RetryAfter(wait) => at += wait,
                Next::GiveUp => break,
            }
            tries.push(at);
        }
        let secs: Vec<u64> = tries.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [0, 1, 3, 7]);
        assert_eq!(
            python_next(
                0,
                Answer::Status(429, Some(1)),
                Duration::ZERO,
                deadline,
                false
            ),
            Next::GiveUp
        );
        assert_eq!(
            python_next(0, Answer::Timeout, Duration::ZERO, deadline, false),
            Next::GiveUp
        );
    }

    #[test]
    fn rust_backs_off_100_200_400_ms_and_honours_retry_after() {
        let mut r = RustRetry::default();
        let deadline = Duration::from_secs(10);
        let waits: Vec<Next> = (0..4)
            .map(|_| {
                r.after_failure(
                    Answer::Status(502, None),
                    Duration::ZERO,
                    deadline,
                    Duration::ZERO,
                )
            })
            .collect();
        let ms = |m| Next::RetryAfter(Duration::from_millis(m));
        assert_eq!(waits, [ms(100), ms(200), ms(400), Next::GiveUp]);
        let mut r = RustRetry::default();
        let throttled = Answer::Status(429, Some(5));
        assert_eq!(
            r.after_failure(throttled, Duration::ZERO, deadline, Duration::ZERO),
            ms(5000)
        );
        let mut r = RustRetry::default();
        // A wait that would pass the deadline fails the export now.
        assert_eq!(
            r.after_failure(throttled, Duration::from_secs(6), deadline, Duration::ZERO),
            Next::GiveUp
        );
        let mut r = RustRetry::default();
        assert_eq!(
            r.after_failure(
                Answer::Status(400, None),
                Duration::ZERO,
                deadline,
                Duration::ZERO
            ),
            Next::GiveUp
        );
    }
}
