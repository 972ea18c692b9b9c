//! Request latency percentiles in bounded memory: a log-bucketed histogram whose buckets
//! are 1% wide, so p50/p99 are within 1% however many requests an hour brings.

use serde::{Deserialize, Deserializer, Serialize};

/// Bucket i holds latencies in [MIN_MS * GROWTH^i, MIN_MS * GROWTH^(i+1)).
const MIN_MS: f64 = 0.001;
const GROWTH: f64 = 1.01;
/// 1 us .. ~ 10^4 s.
const BUCKETS: usize = 2400;

#[derive(Clone, Debug)]
pub struct LatencyHistogram {
    counts: Vec<u64>,
    total: u64,
    max_ms: f64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max_ms: 0.0,
        }
    }
}

/// Serving times split by whether the request ran with tracing on.
#[derive(Clone, Debug, Default)]
pub struct ServiceTimes {
    pub tracing_on: LatencyHistogram,
    pub tracing_off: LatencyHistogram,
}

impl ServiceTimes {
    pub fn add(&mut self, traced: bool, ms: f64) {
        match traced {
            true => self.tracing_on.add(ms),
            false => self.tracing_off.add(ms),
        }
    }

    /// Adds `other`'s times, as if they had been added here.
    pub fn merge(&mut self, other: &ServiceTimes) {
        self.tracing_on.merge(&other.tracing_on);
        self.tracing_off.merge(&other.tracing_off);
    }

    pub fn summary(&self) -> ServiceSummary {
        ServiceSummary {
            tracing_on: self.tracing_on.summary(),
            tracing_off: self.tracing_off.summary(),
            measured_with: MEASURED_WITH,
        }
    }
}

/// Whose span cost the serving times carry: the requests run in gracetrace's own process,
/// so every profile's spans cost what the Rust SDK's cost, however the profile batches and
/// drops them. A Python app's per-span cost is far higher; `probe --compare
/// tracing.enabled=false,true` measures it in the app itself.
pub const MEASURED_WITH: &str = "the Rust SDK (opentelemetry_sdk 0.33) in gracetrace's process";

/// The report's `requests.service_ms`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ServiceSummary {
    pub tracing_on: LatencySummary,
    pub tracing_off: LatencySummary,
    /// Whose span cost these times carry ([`MEASURED_WITH`]), whatever `tracing.semantics`.
    pub measured_with: &'static str,
}

/// Read back (a sweep's part): this build measures only one way, so `measured_with` must
/// be [`MEASURED_WITH`] (or empty, the default of a run that served nothing); anything
/// else was measured by something else. By hand, because a derived `Deserialize` of a
/// `&'static str` field would borrow from input that lives for ever.
impl<'de> Deserialize<'de> for ServiceSummary {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Read {
            tracing_on: LatencySummary,
            tracing_off: LatencySummary,
            measured_with: String,
        }
        let read = Read::deserialize(deserializer)?;
        let measured_with = match read.measured_with.as_str() {
            MEASURED_WITH => MEASURED_WITH,
            "" => "",
            other => {
                return Err(serde::de::Error::custom(format!(
                    "measured_with {other:?}: expected {MEASURED_WITH:?}"
                )));
            }
        };
        Ok(ServiceSummary {
            tracing_on: read.tracing_on,
            tracing_off: read.tracing_off,
            measured_with,
        })
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

impl LatencyHistogram {
    pub fn add(&mut self, ms: f64) {
        let index = if ms <= MIN_MS {
            0
        } else {
            ((ms / MIN_MS).ln() / GROWTH.ln()) as usize
        };
        self.counts[index.min(BUCKETS - 1)] += 1;
        self.total += 1;
        self.max_ms = self.max_ms.max(ms);
    }

    /// Adds `other`'s latencies, as if they had been added here (a fleet's replicas).
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max_ms = self.max_ms.max(other.max_ms);
    }

    /// The latency below which a fraction `q` of requests fall (bucket midpoint).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let mid = MIN_MS * GROWTH.powf(i as f64 + 0.5);
                return Some(mid.min(self.max_ms));
            }
        }
        Some(self.max_ms)
    }

    pub fn summary(&self) -> LatencySummary {
        LatencySummary {
            count: self.total,
            p50: self.quantile(0.5),
            p99: self.quantile(0.99),
            max: (self.total > 0).then_some(self.max_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_within_one_percent() {
        let mut h = LatencyHistogram::default();
        for i in 1..=1000 {
            h.add(i as f64);
        }
        let p50 = h.quantile(0.5).unwrap();
        let p99 = h.quantile(0.99).unwrap();
        assert!((p50 - 500.0).abs() / 500.0 < 0.01, "{p50}");
        assert!((p99 - 990.0).abs() / 990.0 < 0.01, "{p99}");
        assert_eq!(h.summary().max, Some(1000.0));
    }
}
