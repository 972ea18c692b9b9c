//! `gracetrace probe --compare KEY=A,B,...`: the app run once per value, each a fresh
//! process with the same schedule and seed, and the row of figures the side-by-side table
//! shows for each run (built here, so the CLI's table, the window's and the JSON agree).

use serde::Serialize;

use super::load::LoadLatency;
use super::probe::ProbeReport;

/// The whole `--compare` report: the knob, and one run per value in the order given.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CompareReport {
    pub key: String,
    pub runs: Vec<CompareRun>,
}

/// One value's run: its row and its whole probe report.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CompareRun {
    pub value: String,
    pub row: CompareRow,
    pub report: ProbeReport,
}

/// What the table shows for one run. Latency and throughput are of the traffic before
/// SIGTERM (what serving cost with these settings); the rest says what the shutdown lost.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CompareRow {
    /// Requests scheduled before SIGTERM with a whole response: count and percentiles.
    /// `None` without `--url`.
    pub latency_ms_before_sigterm: Option<LoadLatency>,
    /// Answered requests scheduled before SIGTERM, per second of the traffic before it
    /// (from its start to SIGTERM, or to its end when SIGTERM came later).
    pub answered_per_s_before_sigterm: Option<f64>,
    /// The app's CPU time when SIGTERM was sent, ms (its whole process group).
    pub cpu_before_sigterm_ms: Option<f64>,
    /// That CPU time per answered request before SIGTERM, ms.
    pub cpu_ms_per_request: Option<f64>,
    pub spans_received: u64,
    pub spans_after_sigterm: u64,
    /// Answered sampled requests whose trace never arrived or arrived without its root
    /// (`traces.lost`); `None` without `--url`.
    pub lost_traces: Option<u64>,
    /// Requests the shutdown cost: failed or cut after SIGTERM; `None` without `--url`.
    pub failed_after_sigterm: Option<u64>,
    /// How the app ended: "exited with code 0", "was SIGKILLed", ...
    pub ending: String,
    pub killed: bool,
}

/// The table's columns after the value's, as `probe --compare` prints them and the window
/// draws them; [`CompareRow::cells`] gives a row's, in this order.
pub const COLUMNS: [&str; 11] = [
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "max ms",
    "answered/s",
    "CPU ms",
    "CPU/req",
    "spans",
    "lost",
    "failed",
    "the app",
];

/// What the table says under itself.
pub const TABLE_NOTE: &str = "latency, answered/s and CPU are of the traffic before SIGTERM; \
     lost: answered requests whose trace never arrived whole; failed: requests the shutdown cost";

impl CompareRow {
    /// The row's figures as text, one per [`COLUMNS`] entry ("-" where there is none).
    pub fn cells(&self) -> [String; COLUMNS.len()] {
        let num = |v: Option<f64>, digits: usize| {
            v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
        };
        let count = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
        let latency = self.latency_ms_before_sigterm.unwrap_or_default();
        [
            num(latency.p50, 2),
            num(latency.p90, 2),
            num(latency.p99, 2),
            num(latency.max, 1),
            num(self.answered_per_s_before_sigterm, 1),
            num(self.cpu_before_sigterm_ms, 0),
            num(self.cpu_ms_per_request, 3),
            self.spans_received.to_string(),
            count(self.lost_traces),
            count(self.failed_after_sigterm),
            self.ending.clone(),
        ]
    }

    /// The row of one run's report.
    pub fn of(report: &ProbeReport) -> CompareRow {
        let p = &report.probe;
        let load = report.load.as_ref();
        // The traffic's time before SIGTERM: from its start to SIGTERM or its end.
        let traffic_s = load.zip(p.sigterm_ms).map(|(load, sigterm)| {
            (sigterm.min(load.traffic_end_ms) - load.traffic_start_ms).max(0.0) / 1000.0
        });
        let answered = load.map(|l| l.answered_before_sigterm);
        let per_s = answered
            .zip(traffic_s)
            .filter(|&(_, s)| s > 0.0)
            .map(|(n, s)| n as f64 / s);
        let per_request = p
            .cpu_before_sigterm_ms
            .zip(answered)
            .filter(|&(_, n)| n > 0)
            .map(|(cpu, n)| cpu / n as f64);
        CompareRow {
            latency_ms_before_sigterm: load.map(|l| l.latency_ms.before_sigterm),
            answered_per_s_before_sigterm: per_s,
            cpu_before_sigterm_ms: p.cpu_before_sigterm_ms,
            cpu_ms_per_request: per_request,
            spans_received: report.collector.spans_received,
            spans_after_sigterm: p.spans_after_sigterm,
            lost_traces: report.traces.as_ref().map(|t| t.lost),
            failed_after_sigterm: load.map(|l| l.failed_after_sigterm),
            ending: p.ending(),
            killed: p.killed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::load::{LoadSection, TraceSection};
    use crate::record::probe::ProbeSection;

    /// Throughput counts the answered requests before SIGTERM over the traffic's time
    /// before it; CPU per request divides the CPU at SIGTERM by the same count.
    #[test]
    fn a_row_reads_the_traffic_before_sigterm() {
        let mut report = ProbeReport {
            probe: ProbeSection {
                sigterm_ms: Some(2_500.0),
                cpu_before_sigterm_ms: Some(300.0),
                exit_code: Some(0),
                ..ProbeSection::default()
            },
            load: Some(LoadSection {
                traffic_start_ms: 500.0,
                traffic_end_ms: 10_500.0,
                answered_before_sigterm: 200,
                failed_after_sigterm: 3,
                ..LoadSection::default()
            }),
            traces: Some(TraceSection {
                lost: 7,
                ..TraceSection::default()
            }),
            ..ProbeReport::default()
        };
        report.collector.spans_received = 900;
        let row = CompareRow::of(&report);
        assert_eq!(row.answered_per_s_before_sigterm, Some(100.0));
        assert_eq!(row.cpu_ms_per_request, Some(1.5));
        assert_eq!(
            (row.lost_traces, row.failed_after_sigterm),
            (Some(7), Some(3))
        );
        assert_eq!(
            (row.spans_received, row.ending.as_str()),
            (900, "exited with code 0")
        );
        // Without a load there is neither latency nor throughput, and no division by zero.
        report.load = None;
        report.traces = None;
        let row = CompareRow::of(&report);
        assert_eq!(row.latency_ms_before_sigterm, None);
        assert_eq!(
            (row.answered_per_s_before_sigterm, row.cpu_ms_per_request),
            (None, None)
        );
    }
}
