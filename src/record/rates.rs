//! Rates the report gives over the recent past: per second over the last second of the
//! series, and the sizes the collector saw. The window shows these numbers as they are.

use serde::Serialize;

use super::{CollectorStats, Sample, SpanCounts};

/// What the last second looked like, and what a span costs on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct RateReport {
    pub created_per_s: f64,
    pub exported_per_s: f64,
    pub received_per_s: f64,
    /// Dropped for a full queue.
    pub dropped_per_s: f64,
    /// OTLP/HTTP bytes the collector received per span, over the whole run; `null`
    /// before the first span arrives (or without the embedded collector).
    pub bytes_per_span: Option<f64>,
    /// Sampled spans over created ones, 0 to 1; `null` before the first span.
    pub sampled_fraction: Option<f64>,
}

impl RateReport {
    pub fn of(series: &[Sample], counts: &SpanCounts, collector: Option<&CollectorStats>) -> Self {
        RateReport {
            created_per_s: latest(series, |s| s.created),
            exported_per_s: latest(series, |s| s.exported),
            received_per_s: latest(series, |s| s.received),
            dropped_per_s: latest(series, |s| s.dropped),
            bytes_per_span: collector
                .filter(|c| c.spans_received > 0)
                .map(|c| c.bytes_received as f64 / c.spans_received as f64),
            sampled_fraction: (counts.created > 0)
                .then(|| counts.sampled as f64 / counts.created as f64),
        }
    }
}

/// Per-second rates between samples about one second apart, `[t_s, per_s]`: the series
/// differentiated, nothing else.
pub fn per_second(series: &[Sample], field: fn(&Sample) -> u64) -> Vec<[f64; 2]> {
    let mut out = Vec::new();
    let mut j = 0;
    for (i, s) in series.iter().enumerate() {
        while j < i && s.t_ms - series[j].t_ms > 1000.0 {
            j += 1;
        }
        if j < i {
            let dt = (s.t_ms - series[j].t_ms) / 1000.0;
            if dt > 0.0 {
                let dv = field(s).saturating_sub(field(&series[j])) as f64;
                out.push([s.t_ms / 1000.0, dv / dt]);
            }
        }
    }
    out
}

/// The latest per-second rate of one field: the last second of the series.
fn latest(series: &[Sample], field: fn(&Sample) -> u64) -> f64 {
    let from = series.len().saturating_sub(16);
    per_second(&series[from..], field)
        .last()
        .map_or(0.0, |r| r[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t_ms: f64, created: u64) -> Sample {
        Sample {
            t_ms,
            created,
            ..Sample::default()
        }
    }

    #[test]
    fn the_latest_rate_is_the_last_second_differentiated() {
        let series: Vec<Sample> = (0..=20).map(|i| sample(i as f64 * 100.0, i * 50)).collect();
        // 50 spans every 100 ms: 500 per second.
        assert_eq!(latest(&series, |s| s.created), 500.0);
        assert_eq!(latest(&[], |s| s.created), 0.0);
    }
}
