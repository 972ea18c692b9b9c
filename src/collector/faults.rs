//! How the collector acts on the backend faults (the settings themselves are
//! [`crate::config::Faults`]), and the ingestion token bucket.
//!
//! Faults live in a `tokio::sync::watch` channel owned by the collector so that a change made
//! from the UI thread is seen by the very next request (and, for `outage`, by the accept loop
//! at once) without any request having to poll for it.

use std::time::{Duration, Instant};

pub use crate::config::Faults;
use crate::config::IngestBucket;
use crate::config::draws::{Sequence, Stream};

impl Faults {
    /// The delay for a request whose jitter draw is `u`: drawn per request so that jitter
    /// spreads retries apart.
    pub(crate) fn delay_for(&self, u: f64) -> Duration {
        Duration::from_millis(self.latency_ms.saturating_add(self.jitter_for(u)))
    }

    /// `Retry-After` only goes with the two statuses whose meaning includes "come back later".
    pub(crate) fn retry_after_for_injected(&self) -> Option<u64> {
        match self.error_status {
            429 | 503 => self.retry_after_s,
            _ => None,
        }
    }
}

/// The collector's fault draws, in the order requests reach each decision: the
/// `n`-th request answered gets the `n`-th jitter draw, the `n`-th decoded one the `n`-th
/// error draw. Seeded with the scenario's seed, the same sequences the virtual clock
/// draws (`sim::exporter`), so both inject the same errors in the same order.
#[derive(Debug)]
pub(crate) struct Draws {
    pub(crate) jitter: Sequence,
    pub(crate) error: Sequence,
}

impl Draws {
    pub(crate) fn new(seed: u64) -> Draws {
        Draws {
            jitter: Sequence::new(seed, Stream::Jitter),
            error: Sequence::new(seed, Stream::InjectedError),
        }
    }
}

/// The ingestion quota on the collector's clock: [`IngestBucket`] (shared with the
/// simulator) over the time since this bucket was made.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    origin: Instant,
    bucket: IngestBucket,
}

impl TokenBucket {
    pub(crate) fn new() -> Self {
        TokenBucket {
            origin: Instant::now(),
            bucket: IngestBucket::default(),
        }
    }

    /// Takes `spans` tokens if the current `limit` allows it.
    pub(crate) fn try_take(&mut self, limit: Option<u64>, spans: u64, now: Instant) -> bool {
        let since = now.saturating_duration_since(self.origin);
        self.bucket.try_take(limit, spans, since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
