//! The probe's own load generator (`lifecycle::probe::load::Load`, what `probe --url`
//! runs) at one rate against the bench server, and its send lag and latency percentiles
//! read from the attempts it records.

use std::time::Duration;

use gracetrace::config::Settings;
use gracetrace::lifecycle::probe::load::{Load, LoadPlan, Sent};
use gracetrace::lifecycle::probe::target::{LoadTarget, TargetText};
use gracetrace::record::load::Outcome;

/// How long past the schedule's end the load may take to ask for SIGTERM before the
/// bench gives up: readiness is one TCP connect to a server already listening.
const SLACK: Duration = Duration::from_secs(30);

/// The probe's figures for one run.
pub struct ProbeFigures {
    pub answered: u64,
    pub failed: u64,
    pub lag_p50: Duration,
    pub lag_p99: Duration,
    pub lag_max: Duration,
    pub p50: Duration,
    pub p99: Duration,
}

/// When the requests of a run are due.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The probe's own schedule: Poisson arrivals at the rate (`workload.rate_per_s`).
    Poisson,
    /// oha's, as it sends them: `-q` due times `i / rate`, released by tokio's 1 ms timer,
    /// so above 1,000 requests/s `rate / 1000` at once every millisecond, and below it one
    /// every `1 / rate` (`workload.burst_every_s` and `burst_size`).
    Ticks,
}

impl Shape {
    pub fn name(self) -> &'static str {
        match self {
            Shape::Poisson => "poisson",
            Shape::Ticks => "1ms-ticks",
        }
    }
}

/// Runs `shape` at `rate` for `duration`.
pub fn run(port: u16, shape: Shape, rate: f64, duration: Duration) -> Result<ProbeFigures, String> {
    let mut settings = Settings::default();
    settings.workload.duration_s = duration.as_secs_f64();
    (
        settings.workload.rate_per_s,
        settings.workload.burst_every_s,
        settings.workload.burst_size,
    ) = match shape {
        Shape::Poisson => (rate, 0.0, 0),
        Shape::Ticks if rate > 1000.0 => (0.0, 0.001, (rate / 1000.0).round() as usize),
        Shape::Ticks => (0.0, 1.0 / rate, 1),
    };
    settings.shutdown.at_s = None;
    let url = format!("http://127.0.0.1:{port}/");
    let target = LoadTarget::from_text(&TargetText {
        url: &url,
        ..TargetText::default()
    })
    .map_err(|e| e.to_string())?;
    // SIGTERM is asked for when the traffic ends; there is no app to send it to, but the
    // load must be told the "app" ended only after that, or it stops routing at once.
    let plan = LoadPlan::new(&settings, target, None);
    let (sigterm, asked) = std::sync::mpsc::channel();
    let load = Load::start(plan, sigterm, false).map_err(|e| e.to_string())?;
    asked
        .recv_timeout(duration + SLACK)
        .map_err(|_| format!("the load never reached its end ({url})"))?;
    let sent = load.finish().map_err(|e| e.to_string())?;
    Ok(figures(&sent))
}

fn figures(sent: &Sent) -> ProbeFigures {
    let mut lags = Vec::new();
    let mut latencies = Vec::new();
    let mut failed = 0;
    for attempt in &sent.attempts {
        if let Some(at) = attempt.sent {
            lags.push(at.saturating_duration_since(attempt.scheduled));
        }
        match (attempt.outcome, attempt.ended) {
            (Outcome::Answered, Some(end)) => {
                latencies.push(end.saturating_duration_since(attempt.scheduled));
            }
            _ => failed += 1,
        }
    }
    lags.sort_unstable();
    latencies.sort_unstable();
    ProbeFigures {
        answered: latencies.len() as u64,
        failed,
        lag_p50: percentile(&lags, 0.50),
        lag_p99: percentile(&lags, 0.99),
        lag_max: lags.last().copied().unwrap_or_default(),
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
    }
}

/// The value at `floor(p * n)` of sorted values, oha's definition, so the two agree on
/// what p99 of the same latencies is.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((p * sorted.len() as f64) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(i).copied().unwrap_or_default()
}
