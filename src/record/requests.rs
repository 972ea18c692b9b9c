//! The report's request section: what happened to each arrival, and the latency and
//! service-time summaries of those completed.

use serde::{Deserialize, Serialize};

use super::latency::{LatencySummary, ServiceSummary};

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct RequestReport {
    pub sent: u64,
    pub completed: u64,
    pub rejected: u64,
    pub cancelled: u64,
    /// Arrivals after SIGTERM (routed elsewhere).
    pub refused: u64,
    /// Waiting for a slot at SIGTERM, handed back to the platform (`shutdown.waiting =
    /// "return"`); never started here, so they made no spans.
    pub returned: u64,
    /// Running or waiting when SIGKILL came.
    pub cut_off: u64,
    /// The model could not run them (see `device.error`).
    pub failed: u64,
    /// From arrival to the end: waiting in line included.
    pub latency_ms: LatencySummary,
    /// From taking a serving slot to the end, with tracing on and off.
    pub service_ms: ServiceSummary,
}

impl RequestReport {
    /// Adds `other`'s counts, not its summaries (a fleet's totals).
    pub fn add_counts(&mut self, other: &RequestReport) {
        self.sent += other.sent;
        self.completed += other.completed;
        self.rejected += other.rejected;
        self.cancelled += other.cancelled;
        self.refused += other.refused;
        self.returned += other.returned;
        self.cut_off += other.cut_off;
        self.failed += other.failed;
    }
}
