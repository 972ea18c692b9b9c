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
    /// opentelemetry-python, `rust` for opentelemetry-rust; `None` for an SDK gracetrace
    /// has no rule book for (its batch processor may behave otherwise).
    pub fn rules(&self) -> Option<&'static str> {
        match self.sdk_language.as_deref()? {
            "python" => Some("python"),
            "rust" => Some("rust"),
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
    /// When SIGTERM was sent; `None` if the app ended before it was due.
    pub sigterm_ms: Option<f64>,
    /// When the app ended (by itself or by SIGKILL).
    pub exit_ms: Option<f64>,
    /// When SIGKILL was sent, if it was.
    pub sigkill_ms: Option<f64>,
    /// The grace period SIGTERM began.
    pub grace_ms: u64,
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

/// The whole report of `gracetrace probe --json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ProbeReport {
    pub collector: CollectorStats,
    pub probe: ProbeSection,
    /// The collector's counts sampled every 100 ms, the last one at the end.
    pub timeline: Vec<ProbeSample>,
}
