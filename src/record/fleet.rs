//! A fleet's report (`fleet.replicas` above 1, virtual clock only): one row per replica,
//! the first ones and their replacements, with its wave, its times and its span counts,
//! and the fleet's totals, which hold the same identity as each row.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::SpanCounts;
use super::requests::RequestReport;

/// One replica: a process of the fleet, from its start to its exit or SIGKILL.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ReplicaRow {
    /// `replica 3`, and its replacement `replica 3 (replacement)`.
    pub replica: String,
    /// The place in the fleet it holds (its replacement holds the same).
    pub slot: usize,
    pub replacement: bool,
    /// The deploy's wave that SIGTERMed it, from 0; `None`: never SIGTERMed.
    pub wave: Option<usize>,
    /// Virtual milliseconds from the start of traffic: when it took traffic, got
    /// SIGTERM, stopped getting new requests, and ended (exit, SIGKILL or the run's end).
    pub ready_ms: f64,
    pub sigterm_ms: Option<f64>,
    pub routing_end_ms: Option<f64>,
    pub sigkill_ms: Option<f64>,
    pub end_ms: f64,
    /// It never took traffic: its start-up would end after traffic did.
    pub never_started: bool,
    pub killed: bool,
    pub spans: SpanCounts,
    /// `spans.lost()`: dropped, failed to export or lost at SIGKILL.
    pub lost: u64,
    pub unaccounted: i64,
    pub requests: RequestReport,
    pub peak_queue: u64,
    pub http_attempts: u64,
    pub http_bytes: u64,
    pub http_throttled: u64,
    pub http_retries: u64,
}

/// The fleet's totals: every row added up.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FleetTotals {
    pub spans: SpanCounts,
    pub lost: u64,
    pub unaccounted: i64,
    pub requests: RequestReport,
    /// Arrivals sent to a replica that had already exited or been killed, when no other
    /// was in service: nobody counted them sent.
    pub requests_unrouted: u64,
    pub replicas_killed: usize,
    pub http_attempts: u64,
    pub http_throttled: u64,
    pub http_retries: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FleetReport {
    /// Always `virtual time only`: a real run is one runner.
    pub clock: String,
    pub replicas: usize,
    pub rollout: String,
    /// As set (`5` or `25%`), and what it made: replicas per wave, and waves.
    pub max_unavailable: String,
    pub per_wave: usize,
    pub waves: usize,
    pub wave_interval_s: f64,
    pub startup_s: f64,
    pub backend_ingest_limit_spans_per_s: Option<u64>,
    pub rows: Vec<ReplicaRow>,
    pub totals: FleetTotals,
}

impl FleetReport {
    /// The fleet's lines for a terminal: its totals, then the rows that lost most (at most
    /// `max_rows`, the rest counted), in fleet order.
    pub fn summary(&self, max_rows: usize) -> String {
        let t = &self.totals;
        let mut out = format!(
            "fleet ({}): {} replicas, {} ({} per wave, {} waves, every {} s), replacements \
             after {} s\nfleet spans: {} created = {} not sampled + {} exported + {} dropped \
             (queue full) + {} ended after shutdown + {} export failed + {} lost at kill + {} \
             queued; {} lost\nfleet http: {} attempts, {} answered 429, {} retries; {} of \
             {} replicas killed; {} requests unrouted\n",
            self.clock,
            self.replicas,
            self.rollout,
            self.per_wave,
            self.waves,
            self.wave_interval_s,
            self.startup_s,
            t.spans.created,
            t.spans.not_sampled,
            t.spans.exported,
            t.spans.dropped_queue_full,
            t.spans.dropped_after_shutdown,
            t.spans.export_failed,
            t.spans.lost_at_kill,
            t.spans.queued,
            t.lost,
            t.http_attempts,
            t.http_throttled,
            t.http_retries,
            t.replicas_killed,
            self.rows.len(),
            t.requests_unrouted,
        );
        let mut shown: Vec<usize> = (0..self.rows.len()).collect();
        shown.sort_by_key(|&i| (std::cmp::Reverse(self.rows[i].lost), i));
        shown.truncate(max_rows);
        shown.sort_unstable();
        let _ = writeln!(
            out,
            "{:<28} {:>4} {:>9} {:>9} {:>9} {:>8} {:>9} {:>9}",
            "replica", "wave", "sigterm s", "created", "exported", "lost", "at kill", "429s"
        );
        for row in shown.iter().map(|&i| &self.rows[i]) {
            let wave = row.wave.map_or("-".into(), |w| w.to_string());
            let sigterm = row
                .sigterm_ms
                .map_or("-".into(), |ms| format!("{:.1}", ms / 1e3));
            let _ = writeln!(
                out,
                "{:<28} {:>4} {:>9} {:>9} {:>9} {:>8} {:>9} {:>9}",
                row.replica,
                wave,
                sigterm,
                row.spans.created,
                row.spans.exported,
                row.lost,
                row.spans.lost_at_kill,
                row.http_throttled
            );
        }
        let omitted = self.rows.len() - shown.len();
        if omitted > 0 {
            let _ = writeln!(out, "({omitted} replicas that lost less not shown)");
        }
        out.trim_end().to_string()
    }
}
