//! What `gracetrace probe` saw of a user's own app: the types of its report. The collector
//! fills [`AppResource`] and [`Orphans`]; `lifecycle::probe` fills the rest. They live here,
//! below both, so either can name them.

use serde::Serialize;

use super::CollectorStats;

/// What the app says about itself in its OTLP resource. Texts are as sent (cut at the
/// collector's `MAX_TEXT`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AppResource {
    /// `service.name`.
    pub service_name: Option<String>,
    /// `telemetry.sdk.language`, e.g. `python`.
    pub sdk_language: Option<String>,
    /// `telemetry.sdk.version`, e.g. `1.41.0`.
    pub sdk_version: Option<String>,
}

impl AppResource {
    /// Which of gracetrace's semantics profiles describes this SDK: `python` for
    /// opentelemetry-python, `rust` for opentelemetry-rust, `js` for opentelemetry-js
    /// (`nodejs`, what its `defaultResource()` says); `None` for an SDK gracetrace has no
    /// rule book for (its batch processor may behave otherwise).
    pub fn rules(&self) -> Option<&'static str> {
        match self.sdk_language.as_deref()? {
            "python" => Some("python"),
            "rust" => Some("rust"),
            "nodejs" => Some("js"),
            _ => None,
        }
    }

    /// One line for the summary: "opentelemetry-python 1.41.0, so the python rules apply".
    pub fn describe(&self) -> String {
        let language = self
            .sdk_language
            .as_deref()
            .unwrap_or("an unnamed language");
        let version = self.sdk_version.as_deref().unwrap_or("(no version)");
        let sdk = format!("opentelemetry-{language} {version}");
        match self.rules() {
            Some(rules) => format!("{sdk}, so the {rules} rules apply"),
            None => format!("{sdk}: gracetrace has no rule book for it"),
        }
    }
}

/// Traces that arrived without their root span: a child was exported, the root was lost
/// (it ends last, so it is the span still queued when the app is killed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Orphans {
    pub traces: u64,
    /// The spans of those traces that did arrive.
    pub spans: u64,
}

/// What the collector received of one trace: its distinct spans, and whether its root
/// was among them (a span without a parent, or the app's top span under the probe's load,
/// whose parent is the span id the probe sent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TraceTally {
    pub spans: u64,
    pub root: bool,
}

/// The SDK as the resource names it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Sdk {
    pub language: Option<String>,
    pub version: Option<String>,
}

/// The `probe` section of the report. Times are milliseconds since the app was started.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ProbeSection {
    /// The command line, as given after `--`.
    pub command: Vec<String>,
    pub pid: u32,
    /// The app's exit status; `None` when a signal ended it (SIGKILL or another).
    pub exit_code: Option<i32>,
    /// Whether the probe SIGKILLed it at the end of the grace period.
    pub killed: bool,
    /// The signal that ended the app, if one did.
    pub signal: Option<i32>,
    /// When the stop signal was sent; `None` if the app ended before it was due. The
    /// report calls it SIGTERM whichever signal the platform sends (`stop_signal`).
    pub sigterm_ms: Option<f64>,
    /// The signal sent at `sigterm_ms`: the platform's (`SIGINT` on Fly.io), else `SIGTERM`.
    pub stop_signal: String,
    /// When the app ended (by itself or by SIGKILL).
    pub exit_ms: Option<f64>,
    /// When SIGKILL was sent, if it was.
    pub sigkill_ms: Option<f64>,
    /// The grace period SIGTERM began.
    pub grace_ms: u64,
    /// The CPU time of the app's process group when SIGTERM was sent (user + system, with
    /// the children its processes waited for), ms, from `/proc`: what serving cost.
    pub cpu_before_sigterm_ms: Option<f64>,
    /// The app's CPU time when it ended (its own and the children it waited for), ms,
    /// from `wait4`; `None` while it runs.
    pub cpu_total_ms: Option<f64>,
    /// Spans and export requests the collector accepted after SIGTERM was sent.
    pub spans_after_sigterm: u64,
    pub requests_after_sigterm: u64,
    /// Export requests whose body ended early (the connection closed mid-body).
    pub requests_cut_off: u64,
    /// Export requests sent whole whose answer the app never waited for (it was killed
    /// or gave up while the collector held them): their spans were not counted.
    pub requests_abandoned: u64,
    /// Spans of traces whose root never arrived, and how many traces.
    pub orphan_spans: u64,
    pub orphan_traces: u64,
    pub sdk: Sdk,
    pub service_name: Option<String>,
    /// The semantics profile that describes the SDK (see [`AppResource::rules`]).
    pub rules: Option<String>,
    /// What the app says it ended, from a `spans ended: N` line on its stdout (the
    /// convention of the seed's test apps); `None` when it printed none.
    pub spans_ended: Option<u64>,
    /// The collector's counts when SIGTERM was sent; `None` without a SIGTERM.
    pub before_sigterm: Option<BeforeSigterm>,
}

impl ProbeSection {
    /// How the app ended, in words: "was SIGKILLed", "exited with code 0", "ended by
    /// signal 15" (meaningful once `exit_ms` is set).
    pub fn ending(&self) -> String {
        match (self.exit_code, self.killed, self.signal) {
            (_, true, _) => "was SIGKILLed".to_owned(),
            (Some(code), _, _) => format!("exited with code {code}"),
            (None, _, Some(sig)) => format!("ended by signal {sig}"),
            (None, _, None) => "ended".to_owned(),
        }
    }
}

/// What had arrived when SIGTERM was sent: the traffic the prediction is built from.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BeforeSigterm {
    pub spans: u64,
    pub requests: u64,
    /// Distinct trace ids among those spans.
    pub traces: u64,
    /// The first and the last timeline sample (100 ms apart) in which the span count grew
    /// before SIGTERM: exports arrive in batches, so the rate is measured between them.
    pub first_arrival_ms: Option<f64>,
    pub last_arrival_ms: Option<f64>,
    /// Spans counted at the first of those samples.
    pub spans_at_first_arrival: u64,
    /// The earliest start among the first spans to arrive (the app's clock), ms after the
    /// app was started: about when its traffic began.
    pub first_span_start_ms: Option<f64>,
    /// Spans ended per second, from the end times of the spans the collector kept (up to
    /// its 200 most recent traces), and how many end times that was.
    pub ended_per_s: Option<f64>,
    pub ends_measured: u64,
}

/// gracetrace's own prediction for the probed app: the simulator (`--clock virtual`) run
/// with the probe's settings and the traffic measured before SIGTERM. An estimate: it
/// cannot see inside the app (its queue, its request durations, how it handles SIGTERM).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Prediction {
    /// Always `"estimate"`, so that no reader takes it for a measurement.
    pub kind: &'static str,
    pub inputs: PredictionInputs,
    pub predicted: PredictedSpans,
    /// Spans the app ended minus spans received; `None` when the app did not say.
    pub observed_missing: Option<u64>,
    /// What the prediction could not know, in words.
    pub caveats: Vec<String>,
}

/// The measured traffic and the settings the simulation ran with.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PredictionInputs {
    pub spans_per_s: f64,
    pub spans_per_trace: f64,
    /// Mean spans per export request before SIGTERM.
    pub batch_spans_mean: f64,
    /// How the rate was measured: from the spans' end times, between the first and last
    /// arrivals, or (one arrival only) over the whole time before SIGTERM (a lower bound).
    pub rate_measured: &'static str,
    /// `python` or `rust`: the rules the simulator applied, from the app's resource.
    pub semantics: String,
    /// Where `semantics` came from: `resource`, or `settings` when the app's SDK has no
    /// rule book here (or sent no resource).
    pub semantics_from: &'static str,
    /// Simulated requests per second and spans each (at least 3: the simulated request's
    /// own root, inference and upload), so that spans per second is as measured.
    pub requests_per_s: f64,
    pub spans_per_request: u64,
    /// When the app's traffic began (the first span's start, or the first export less its
    /// spans over the rate): the simulation's traffic starts there.
    pub traffic_start_ms: f64,
    /// SIGTERM, seconds after `traffic_start_ms`.
    pub sigterm_s: f64,
    pub grace_ms: u64,
    pub max_queue_size: usize,
    pub max_export_batch_size: usize,
    pub schedule_delay_ms: u64,
}

/// What the simulator predicts for the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct PredictedSpans {
    pub ended: u64,
    pub received: u64,
    /// Queued or in an export with no answer when SIGKILL came.
    pub lost_at_kill: u64,
    pub dropped_queue_full: u64,
    pub export_failed: u64,
    pub killed: bool,
    /// The most spans the simulated queue held at once: the estimate of the app's queue,
    /// which no collector can see.
    pub peak_queue: u64,
    /// Of `lost_at_kill`: still in the queue, and in an export with no answer.
    pub lost_queued: u64,
    pub lost_in_export: u64,
}

/// The collector's counts at one moment of the probe.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ProbeSample {
    /// Milliseconds since the app was started.
    pub t_ms: f64,
    pub spans_received: u64,
    pub requests_accepted: u64,
    pub requests: u64,
}

/// Export requests that arrived between two timeline samples: what the window's exports
/// view draws, one bar each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ProbeArrival {
    /// The later sample's time: the requests were accepted in the 100 ms before it.
    pub t_ms: f64,
    pub spans: u64,
    pub requests: u64,
    /// Whether they were accepted after SIGTERM was sent (the whole interval after it).
    pub after_sigterm: bool,
}

/// The whole report of `gracetrace probe --json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ProbeReport {
    pub collector: CollectorStats,
    pub probe: ProbeSection,
    /// The collector's counts sampled every 100 ms, the last one at the end.
    pub timeline: Vec<ProbeSample>,
    /// The samples in which export requests were accepted, from `timeline`.
    pub arrivals: Vec<ProbeArrival>,
    /// gracetrace's estimate for the same settings and traffic; `None` when it could not
    /// be made (no SIGTERM, nothing arrived before it), with the reason in `prediction_error`.
    pub prediction: Option<Prediction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prediction_error: Option<String>,
    /// What `--url` sent and how each request ended; absent without `--url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<super::load::LoadSection>,
    /// What arrived of the answered requests' traces; absent without `--url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traces: Option<super::load::TraceSection>,
}

impl ProbeReport {
    /// A report without a prediction (the probe adds it once the app has ended), with the
    /// arrivals read from the timeline.
    pub fn new(collector: CollectorStats, probe: ProbeSection, timeline: Vec<ProbeSample>) -> Self {
        let arrivals = arrivals(&timeline, probe.sigterm_ms);
        ProbeReport {
            collector,
            probe,
            timeline,
            arrivals,
            prediction: None,
            prediction_error: None,
            load: None,
            traces: None,
        }
    }
}

/// One arrival per pair of samples between which the accepted requests grew.
fn arrivals(timeline: &[ProbeSample], sigterm_ms: Option<f64>) -> Vec<ProbeArrival> {
    timeline
        .windows(2)
        .filter(|pair| pair[1].requests_accepted > pair[0].requests_accepted)
        .map(|pair| ProbeArrival {
            t_ms: pair[1].t_ms,
            spans: pair[1]
                .spans_received
                .saturating_sub(pair[0].spans_received),
            requests: pair[1].requests_accepted - pair[0].requests_accepted,
            after_sigterm: sigterm_ms.is_some_and(|at| pair[0].t_ms >= at),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t_ms: f64, spans_received: u64, requests_accepted: u64) -> ProbeSample {
        ProbeSample {
            t_ms,
            spans_received,
            requests_accepted,
            requests: requests_accepted,
        }
    }

    /// Only the intervals in which requests were accepted are arrivals, with the spans
    /// and requests of that interval; those wholly after SIGTERM are marked.
    #[test]
    fn arrivals_are_the_intervals_in_which_requests_were_accepted() {
        let timeline = [
            at(0.0, 0, 0),
            at(100.0, 0, 0),
            at(200.0, 512, 1),
            at(300.0, 512, 1),
            at(400.0, 700, 3),
        ];
        let report = ProbeReport::new(
            CollectorStats::default(),
            ProbeSection {
                sigterm_ms: Some(310.0),
                ..ProbeSection::default()
            },
            timeline.to_vec(),
        );
        let got: Vec<(f64, u64, u64, bool)> = report
            .arrivals
            .iter()
            .map(|a| (a.t_ms, a.spans, a.requests, a.after_sigterm))
            .collect();
        assert_eq!(got, [(200.0, 512, 1, false), (400.0, 188, 2, false)]);
        let later = arrivals(&timeline, Some(300.0));
        assert!(later[1].after_sigterm && !later[0].after_sigterm);
    }
}
