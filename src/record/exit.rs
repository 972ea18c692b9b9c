//! The end of a run without a platform shutdown: traffic ends, the provider shuts down
//! within its SDK's own timeout, and the run ends then whatever is still queued. The
//! session fills this; the report carries it and the terminal shows its progress.

use serde::Serialize;

/// How a run without a shutdown ended.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ExitReport {
    /// When arrivals ended (the scenario's `duration_s`), ms from the start of the run.
    pub traffic_end_ms: f64,
    /// The provider's shutdown timeout of the semantics (python 30 s, rust and sdk 5 s),
    /// counted from `traffic_end_ms`: requests still running, then the provider's drain.
    pub shutdown_timeout_ms: u64,
    /// When the run ended, ms from its start.
    pub end_ms: f64,
    /// True when the timeout ran out before the provider had shut down.
    pub timed_out: bool,
    /// Spans still in a processor's queue when the run ended (in `queued`).
    pub spans_queued: u64,
    /// Spans still in an export without an answer when the run ended (in `queued`).
    pub spans_in_export: u64,
    /// Requests still running when the run ended, and their spans that never ended.
    pub requests_unfinished: u64,
    pub spans_never_ended: u64,
    /// In words, for the terminal.
    pub verdict: String,
}

/// What the end of a run is waiting for, for the progress line on the terminal.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExitProgress {
    /// Seconds since traffic ended, and the timeout.
    pub waited_s: f64,
    pub timeout_s: f64,
    /// Spans in a processor's queue, and in exports without an answer.
    pub spans_queued: u64,
    pub spans_in_export: u64,
    /// Requests still running (a flush in every request blocks them).
    pub requests_running: u64,
    /// The HTTP attempts of the oldest export in flight so far, if one is.
    pub export_attempt: Option<u32>,
    /// Seconds until the exporter's next retry, while it waits for one.
    pub next_retry_in_s: Option<f64>,
}

impl std::fmt::Display for ExitProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ending: {:.0}/{:.0} s of the provider's shutdown timeout; {} spans queued, {} in \
             an export, {} requests running",
            self.waited_s,
            self.timeout_s,
            self.spans_queued,
            self.spans_in_export,
            self.requests_running
        )?;
        if let Some(attempt) = self.export_attempt {
            write!(f, "; export attempt {attempt}")?;
        }
        if let Some(next) = self.next_retry_in_s {
            write!(f, ", next retry in {next:.1} s")?;
        }
        Ok(())
    }
}
