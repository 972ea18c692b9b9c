//! The probe's prediction beside its observation: the simulator (`--clock virtual`) run
//! with the settings the probe used and the traffic the collector saw before SIGTERM, so
//! that `gracetrace probe` can say "predicted N lost at SIGKILL, observed M missing".
//!
//! It lives here, above both `lifecycle` (the probe) and `sim`, which share a layer; the
//! probe's command takes it as a function so that neither names the other.

use crate::config::{Semantics, Settings, Source};
use crate::record::probe::{
    BeforeSigterm, PredictedSpans, Prediction, PredictionInputs, ProbeReport,
};
use crate::sim::SimError;

use super::SessionError;
use super::virtual_clock::calibrate;

/// The simulated request's own spans (root, inference, upload): fewer per trace cannot be
/// simulated, so the request rate is lowered to keep spans per second as measured.
const MIN_SPANS_PER_REQUEST: u64 = 3;
/// How long a simulated request lasts. The app's request durations cannot be seen from
/// the collector, so requests are kept short: their spans end almost as they begin.
const REQUEST_MS: f64 = 1.0;

/// Why no prediction was made; each names what was missing.
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    #[error("no SIGTERM was sent, so there is no shutdown to predict")]
    NoSigterm,
    #[error("no span arrived before SIGTERM, so the app's traffic is unknown")]
    NothingArrived,
    #[error("the measured traffic does not fit the simulator: {0}")]
    Setting(String),
    #[error("cannot measure the exporter's costs: {0}")]
    Calibration(#[from] SessionError),
    #[error("the simulation failed: {0}")]
    Sim(#[from] SimError),
}

/// The prediction for a finished probe run with `settings` (those the probe used).
/// Runs a 1.5 s real calibration first (see `virtual_clock::calibrate`).
pub fn predict(settings: &Settings, report: &ProbeReport) -> Result<Prediction, PredictError> {
    let (sim_settings, inputs) = simulated(settings, report)?;
    let costs = calibrate()?;
    let run = crate::sim::run(&sim_settings, &costs)?;
    let counts = run.spans;
    let lost = run.shutdown.as_ref().map(|s| &s.lost_at_kill);
    let predicted = PredictedSpans {
        ended: counts.sampled,
        received: counts.received,
        lost_at_kill: counts.lost_at_kill,
        dropped_queue_full: counts.dropped_queue_full,
        export_failed: counts.export_failed,
        killed: run.shutdown.as_ref().is_some_and(|s| s.killed),
        peak_queue: run.peak_queue,
        lost_queued: lost.map_or(0, |l| l.queued),
        lost_in_export: lost.map_or(0, |l| l.in_flight_export),
    };
    let p = &report.probe;
    let observed_missing = p
        .spans_ended
        .map(|ended| ended.saturating_sub(report.collector.spans_received));
    Ok(Prediction {
        kind: "estimate",
        caveats: caveats(&inputs, p.spans_ended.is_some()),
        inputs,
        predicted,
        observed_missing,
    })
}

/// The simulator's settings: the probe's (batch, grace, faults), the rules named by the
/// app's resource, and synthetic traffic at the measured spans per second.
fn simulated(
    settings: &Settings,
    report: &ProbeReport,
) -> Result<(Settings, PredictionInputs), PredictError> {
    let p = &report.probe;
    let sigterm_ms = p.sigterm_ms.ok_or(PredictError::NoSigterm)?;
    let before = p.before_sigterm.as_ref().ok_or(PredictError::NoSigterm)?;
    if before.spans == 0 {
        return Err(PredictError::NothingArrived);
    }
    let (spans_per_s, rate_measured) = measured_rate(before, sigterm_ms);
    // The app's traffic began about when the first arrival's spans began to end (an app
    // takes a while to start): the simulation starts there, not at the app's start.
    let from_arrival = before.first_arrival_ms.map_or(0.0, |first| {
        (first - before.spans_at_first_arrival as f64 / spans_per_s * 1000.0).clamp(0.0, first)
    });
    let traffic_start_ms = before
        .first_span_start_ms
        .filter(|ms| (0.0..sigterm_ms).contains(ms))
        .unwrap_or(from_arrival);
    let spans_per_trace = before.spans as f64 / before.traces.max(1) as f64;
    let spans_per_request = (spans_per_trace.round() as u64).max(MIN_SPANS_PER_REQUEST);
    let requests_per_s = spans_per_s / spans_per_request as f64;
    let from_resource = p
        .rules
        .as_deref()
        .and_then(|rules| Semantics::ALL.into_iter().find(|s| s.name() == rules));
    let (semantics, semantics_from) = match from_resource {
        Some(semantics) => (semantics, "resource"),
        None => (settings.tracing.semantics, "settings"),
    };
    let mut s = settings.clone();
    s.tracing.semantics = semantics;
    s.exporter.endpoint = None;
    s.collector_forward = None;
    let sigterm_s = ((sigterm_ms - traffic_start_ms) / 1000.0).max(0.0);
    let grace_s = settings.shutdown.grace_ms as f64 / 1000.0;
    // Enough slots that the measured rate is never held back by them.
    let concurrency = (requests_per_s * REQUEST_MS / 1000.0 * 4.0).ceil().max(1.0) + 1.0;
    let knobs = [
        ("tracing.sample_rate", "1".to_owned()),
        ("workload.kind", "synthetic".to_owned()),
        ("workload.rate_per_s", requests_per_s.to_string()),
        ("workload.extra_spans", (spans_per_request - 3).to_string()),
        ("workload.inference_ms", REQUEST_MS.to_string()),
        ("workload.steps", "1".to_owned()),
        ("workload.upload_ms", "0".to_owned()),
        ("workload.concurrency", concurrency.min(1024.0).to_string()),
        ("workload.burst_size", "0".to_owned()),
        (
            "workload.duration_s",
            (sigterm_s + grace_s + 1.0).to_string(),
        ),
        ("shutdown.at_s", sigterm_s.to_string()),
    ];
    for (key, value) in knobs {
        s.set(key, &value, Source::Default)
            .map_err(|e| PredictError::Setting(e.to_string()))?;
    }
    let inputs = PredictionInputs {
        spans_per_s,
        spans_per_trace,
        batch_spans_mean: before.spans as f64 / before.requests.max(1) as f64,
        rate_measured,
        semantics: semantics.name().to_owned(),
        semantics_from,
        requests_per_s,
        spans_per_request,
        traffic_start_ms,
        sigterm_s,
        grace_ms: settings.shutdown.grace_ms,
        max_queue_size: settings.batch.max_queue_size,
        max_export_batch_size: settings.batch.max_export_batch_size,
        schedule_delay_ms: settings.batch.schedule_delay_ms,
    };
    Ok((s, inputs))
}

/// The app's spans per second before SIGTERM, and how it was measured: from the spans'
/// own end times when the collector has them, else between the first and last export,
/// else over the whole time before SIGTERM (a lower bound).
fn measured_rate(before: &BeforeSigterm, sigterm_ms: f64) -> (f64, &'static str) {
    let arrivals = (before.first_arrival_ms, before.last_arrival_ms);
    match (before.ended_per_s, arrivals) {
        (Some(rate), _) if rate.is_finite() && rate > 0.0 => (
            rate,
            "from the end times of the spans received before SIGTERM",
        ),
        (_, (Some(first), Some(last))) if last > first => (
            (before.spans - before.spans_at_first_arrival) as f64 / ((last - first) / 1000.0),
            "between the first and the last export before SIGTERM",
        ),
        _ => (
            before.spans as f64 / (sigterm_ms / 1000.0).max(0.001),
            "over the whole time before SIGTERM (one export arrived): a lower bound",
        ),
    }
}

/// What the estimate cannot know, for the report.
fn caveats(inputs: &PredictionInputs, app_counted: bool) -> Vec<String> {
    let mut out = vec![
        "an estimate: the app's queue is inside the app; the simulator rebuilds it from the \
         spans per second that arrived, the probe's batch settings and the SDK's rules"
            .to_owned(),
        format!(
            "request durations are not visible to the collector: simulated requests last \
             {REQUEST_MS} ms, so spans of requests still running at SIGTERM are not predicted"
        ),
        "the exporter's costs are gracetrace's own (Rust) exporter's, measured just now".to_owned(),
    ];
    if inputs.semantics_from == "settings" {
        out.push(format!(
            "the app's SDK has no rule book here; the {} rules were applied",
            inputs.semantics
        ));
    }
    if !app_counted {
        out.push(
            "the app printed no `spans ended: N`, so only what the collector received is \
             observed"
                .to_owned(),
        );
    }
    out
}
