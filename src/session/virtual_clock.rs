//! `--clock virtual`: a scenario through the simulator (`crate::sim`), written as the
//! same report as a real run, with the costs it charged measured from a short real run
//! of the embedded collector ([`calibrate`]), and for the model workload the model's
//! times measured by a real warm-up and serving run ([`calibrate_for`]).

use crate::config::{Settings, Source, WorkloadKind, WorkloadSettings};
use crate::record::report::{Calibration, Report, SpanReport};
use crate::record::{ModelStatus, Outcome, Record};
use crate::sim::{self, SimError, SimOutcome};

use super::SessionError;

/// The real run the costs are measured from: 1,000 spans/s (200 requests x 5 spans) for
/// 1.5 s against the healthy embedded collector, batches leaving every 5 ms (a few spans
/// each, as on a tiny queue) and a burst of 500 spans every half second (batches of
/// hundreds), so the fit sees the sizes it is used for at both ends. With batches of
/// about 100 spans only, the fitted cost of a one-span export was two to four times what
/// a one-span export really took, and scenarios with tiny queues exported too little.
const CALIBRATION_RUN: [(&str, &str); 9] = [
    ("workload.duration_s", "1.5"),
    ("workload.rate_per_s", "200"),
    ("workload.extra_spans", "2"),
    ("workload.inference_ms", "1"),
    ("workload.upload_ms", "0"),
    ("workload.burst_every_s", "0.5"),
    ("workload.burst_size", "100"),
    ("batch.schedule_delay_ms", "5"),
    ("tracing.sample_rate", "1"),
];

/// Runs the calibration scenario in real time and fits `per_batch + per_span * spans`
/// to its exports' durations (least squares), and bytes per span to their bodies.
pub fn calibrate() -> Result<Calibration, SessionError> {
    let mut settings = Settings::default();
    for (key, value) in CALIBRATION_RUN {
        // The table above is in range; a failure here is a programming error, reported
        // as the session error it would cause rather than a panic.
        settings
            .set(key, value, Source::Default)
            .map_err(|e| SessionError::Calibration(e.to_string()))?;
    }
    let report = super::run(&settings)?;
    let points: Vec<(f64, f64, u64)> = report
        .exports
        .iter()
        .filter(|e| e.outcome == Outcome::Ok && e.attempts == 1)
        .filter_map(|e| Some((e.spans as f64, e.end_ms? - e.start_ms, e.bytes)))
        .collect();
    fit(&points).ok_or_else(|| {
        SessionError::Calibration(format!(
            "the calibration run exported {} batches; at least 2 are needed",
            points.len()
        ))
    })
}

/// [`calibrate`], and the model's times (`super::model_times`) when `model` is the
/// workload of a run that serves with the model.
pub fn calibrate_for(model: Option<&WorkloadSettings>) -> Result<Calibration, SessionError> {
    let mut costs = calibrate()?;
    if let Some(workload) = model {
        costs.model = Some(super::model_times::measure(workload)?);
    }
    Ok(costs)
}

/// The workload of `settings` when it serves with the model: what [`calibrate_for`]
/// measures the model's times for.
pub fn model_workload(settings: &Settings) -> Option<&WorkloadSettings> {
    (settings.workload.kind == WorkloadKind::Model).then_some(&settings.workload)
}

/// Theil-Sen line of duration on spans: the median of the slopes between every two
/// exports of different sizes, and the median intercept under it. Medians, because a
/// few exports of a real run are preempted and take ten times the rest, which pulled a
/// least-squares line wherever they fell. A negative slope (noise) counts as 0.
fn fit(points: &[(f64, f64, u64)]) -> Option<Calibration> {
    let spans: f64 = points.iter().map(|p| p.0).sum();
    if points.len() < 2 || spans <= 0.0 {
        return None;
    }
    let mut slopes: Vec<f64> = Vec::new();
    for (i, a) in points.iter().enumerate() {
        for b in &points[i + 1..] {
            if a.0 != b.0 {
                slopes.push((b.1 - a.1) / (b.0 - a.0));
            }
        }
    }
    let slope = median(&mut slopes).unwrap_or(0.0).max(0.0);
    let mut intercepts: Vec<f64> = points.iter().map(|p| p.1 - slope * p.0).collect();
    let intercept = median(&mut intercepts)?;
    let bytes: u64 = points.iter().map(|p| p.2).sum();
    Some(Calibration {
        bytes_per_span: bytes as f64 / spans,
        per_batch_ms: intercept.max(0.0),
        per_span_ms: slope,
        exports_measured: points.len() as u64,
        model: None,
    })
}

fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// A simulated run's spans as the report writes them (`sweep` writes them so too).
pub fn span_report(outcome: &SimOutcome) -> SpanReport {
    SpanReport {
        counts: outcome.spans,
        unaccounted: outcome.spans.unaccounted(),
        never_ended: outcome.shutdown.as_ref().map_or(0, |s| s.spans_never_ended),
    }
}

/// Runs `settings` in virtual time and builds the report a real run would write; a
/// fleet's adds its replicas' rows, its counts being the fleet's totals.
pub fn run_virtual(settings: &Settings, costs: &Calibration) -> Result<Report, SimError> {
    let outcome = sim::run(settings, costs)?;
    let record = Record::new();
    if let Some(times) = costs
        .model
        .as_ref()
        .filter(|_| model_workload(settings).is_some())
    {
        // The device the model's times were measured on is the one this run served on.
        record.attach_model(std::sync::Arc::new(std::sync::Mutex::new(ModelStatus {
            device: Some(times.device.clone()),
            warm_up_fraction: 1.0,
            warm_up_stage: "ready".into(),
            warm_up_s: Some(times.warm_up_s),
            ready: true,
            error: None,
        })));
    }
    let mut report = Report::build(&record, settings, None);
    report.clock = "virtual";
    report.calibration = Some(costs.clone());
    report.spans = span_report(&outcome);
    report.requests = outcome.requests;
    report.http.attempts = outcome.http_attempts;
    report.http.bytes = outcome.http_bytes;
    report.shutdown = outcome.shutdown;
    report.duration_ms = outcome.duration_ms;
    report.fleet = outcome.fleet;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fit_recovers_a_line_and_refuses_too_few_points() {
        let points = [
            (100.0, 3.0, 10_000),
            (500.0, 7.0, 50_000),
            (300.0, 5.0, 30_000),
        ];
        let c = fit(&points).unwrap();
        assert!((c.per_span_ms - 0.01).abs() < 1e-9 && (c.per_batch_ms - 2.0).abs() < 1e-9);
        assert_eq!(c.bytes_per_span, 100.0);
        assert!(fit(&points[..1]).is_none());
    }

    #[test]
    fn a_preempted_export_does_not_move_the_fit() {
        let mut points: Vec<(f64, f64, u64)> = (1..=20)
            .map(|n| (n as f64 * 10.0, 0.5 + 0.01 * n as f64 * 10.0, 1_000))
            .collect();
        points.push((10.0, 40.0, 1_000)); // a thread that waited for a core
        let c = fit(&points).unwrap();
        assert!((c.per_batch_ms - 0.5).abs() < 1e-9, "{c:?}");
        assert!((c.per_span_ms - 0.01).abs() < 1e-9, "{c:?}");
    }
}
