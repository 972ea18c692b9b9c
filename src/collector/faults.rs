//! The backend misbehaviours a user can switch on, and the ingestion token bucket.
//!
//! Faults live in a `tokio::sync::watch` channel owned by the collector so that a change made
//! from the UI thread is seen by the very next request (and, for `outage`, by the accept loop
//! at once) without any request having to poll for it.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Largest injected latency or jitter: ten minutes is longer than any exporter timeout, so
/// nothing useful lies beyond it, and the bound keeps a typo from parking requests for days.
pub const MAX_LATENCY_MS: u64 = 600_000;
/// Largest `Retry-After`: one day. Exporters cap their own waits far below this.
pub const MAX_RETRY_AFTER_S: u64 = 86_400;
/// Largest ingestion limit: far above what one process can export, so it never binds by accident.
pub const MAX_INGEST_LIMIT: u64 = 1_000_000_000;

/// What the simulated backend does wrong. Every field is independent, and all of them can be
/// changed while a run is going (see `Collector::set_faults`), because the interesting question
/// is what the exporter does when the backend turns bad in the middle of a burst.
///
/// `#[serde(default)]` lets a scenario file name only the faults it uses; unknown keys are
/// rejected so that a misspelt fault is an error instead of silently healthy backend.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added before answering, because a slow backend is what makes batches pile up.
    pub latency_ms: u64,
    /// Uniform extra latency in `0..=jitter_ms`, so retries do not all line up.
    pub jitter_ms: u64,
    /// Fraction of requests answered with `error_status`, to exercise the retry rules.
    pub error_rate: f64,
    /// Status of injected errors; the SDKs retry some statuses and not others (429!).
    pub error_status: u16,
    /// `Retry-After` sent with injected 429 and 503, which the Rust exporter honours.
    pub retry_after_s: Option<u64>,
    /// Refuse connections outright (the listening socket is closed), like a backend that is down.
    pub outage: bool,
    /// Accept requests and never answer, like a backend behind a broken load balancer:
    /// only the exporter's own timeout gets it out.
    pub black_hole: bool,
    /// Spans per second the backend ingests before answering 429, like a vendor quota.
    pub ingest_limit_spans_per_s: Option<u64>,
}

impl Default for Faults {
    /// A healthy backend: the baseline every scenario is compared against.
    fn default() -> Self {
        Faults {
            latency_ms: 0,
            jitter_ms: 0,
            error_rate: 0.0,
            error_status: 503,
            retry_after_s: None,
            outage: false,
            black_hole: false,
            ingest_limit_spans_per_s: None,
        }
    }
}

impl Faults {
    /// Checks every field, so that a slider, a scenario file or a CLI flag out of range is
    /// refused with a message naming the field, the value and the allowed range, instead of
    /// producing a backend that behaves in some unexplained way.
    pub fn validate(&self) -> Result<(), String> {
        if self.latency_ms > MAX_LATENCY_MS {
            return Err(format!(
                "latency_ms = {} is out of range (allowed 0..={MAX_LATENCY_MS})",
                self.latency_ms
            ));
        }
        if self.jitter_ms > MAX_LATENCY_MS {
            return Err(format!(
                "jitter_ms = {} is out of range (allowed 0..={MAX_LATENCY_MS})",
                self.jitter_ms
            ));
        }
        if !(self.error_rate.is_finite() && (0.0..=1.0).contains(&self.error_rate)) {
            return Err(format!(
                "error_rate = {} is out of range (allowed 0.0..=1.0)",
                self.error_rate
            ));
        }
        if !(400..=599).contains(&self.error_status) {
            return Err(format!(
                "error_status = {} is out of range (allowed 400..=599)",
                self.error_status
            ));
        }
        if let Some(s) = self.retry_after_s
            && s > MAX_RETRY_AFTER_S
        {
            return Err(format!(
                "retry_after_s = {s} is out of range (allowed 0..={MAX_RETRY_AFTER_S})"
            ));
        }
        if let Some(l) = self.ingest_limit_spans_per_s
            && !(1..=MAX_INGEST_LIMIT).contains(&l)
        {
            return Err(format!(
                "ingest_limit_spans_per_s = {l} is out of range (allowed 1..={MAX_INGEST_LIMIT}, or none)"
            ));
        }
        Ok(())
    }

    /// The delay for one request: drawn per request so that jitter spreads retries apart.
    pub(crate) fn draw_delay(&self) -> Duration {
        let jitter = if self.jitter_ms > 0 {
            rand::Rng::random_range(&mut rand::rng(), 0..=self.jitter_ms)
        } else {
            0
        };
        Duration::from_millis(self.latency_ms.saturating_add(jitter))
    }

    /// Whether this request gets an injected error. `random::<f64>()` is in `[0, 1)`, so a
    /// rate of 1.0 always fires and 0.0 never does.
    pub(crate) fn draw_error(&self) -> bool {
        self.error_rate > 0.0 && rand::Rng::random::<f64>(&mut rand::rng()) < self.error_rate
    }

    /// `Retry-After` only goes with the two statuses whose meaning includes "come back later".
    pub(crate) fn retry_after_for_injected(&self) -> Option<u64> {
        match self.error_status {
            429 | 503 => self.retry_after_s,
            _ => None,
        }
    }
}

/// A token bucket holding one second of the configured rate.
///
/// It models a vendor's ingestion quota: bursts up to one second's worth pass, sustained
/// traffic above the rate gets 429. A request larger than the whole bucket is let through when
/// the bucket is full (leaving a debt) so that a limit below the batch size still lets data
/// trickle in instead of rejecting every batch forever.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    /// The limit the bucket was filled for; a changed limit restarts it full.
    limit: Option<u64>,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new() -> Self {
        TokenBucket {
            limit: None,
            tokens: 0.0,
            last: Instant::now(),
        }
    }

    /// Takes `spans` tokens if the current `limit` allows it.
    pub(crate) fn try_take(&mut self, limit: Option<u64>, spans: u64, now: Instant) -> bool {
        let Some(rate) = limit else {
            self.limit = None;
            return true;
        };
        let capacity = rate as f64;
        if self.limit != limit {
            // A new limit is a new quota: start it full rather than carry over a debt.
            self.limit = limit;
            self.tokens = capacity;
            self.last = now;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * capacity).min(capacity);
        self.last = now;
        let needed = (spans as f64).min(capacity);
        if self.tokens >= needed {
            self.tokens -= spans as f64;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_ranges_are_named() {
        assert_eq!(Faults::default().validate(), Ok(()));
        let bad = Faults {
            error_rate: 1.5,
            ..Faults::default()
        };
        let msg = bad.validate().unwrap_err();
        assert!(msg.contains("error_rate") && msg.contains("1.5") && msg.contains("0.0..=1.0"));
        let bad = Faults {
            error_status: 200,
            ..Faults::default()
        };
        assert!(bad.validate().unwrap_err().contains("400..=599"));
        let bad = Faults {
            error_rate: f64::NAN,
            ..Faults::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn bucket_limits_bursts_and_refills() {
        let mut b = TokenBucket::new();
        let t0 = Instant::now();
        assert!(b.try_take(Some(10), 8, t0));
        assert!(!b.try_take(Some(10), 8, t0));
        assert!(b.try_take(Some(10), 8, t0 + Duration::from_secs(1)));
        // Larger than the bucket: passes only when full.
        let mut b = TokenBucket::new();
        assert!(b.try_take(Some(10), 50, t0));
        assert!(!b.try_take(Some(10), 1, t0 + Duration::from_secs(1)));
        assert!(b.try_take(None, 1_000, t0));
    }
}
