//! The shutdown as the record keeps it: its phases (the markers the lifecycle writes and
//! the timeline draws), what SIGKILL destroyed, and the shutdown section of the report.
//! The lifecycle fills these; the report and the window read them.

use serde::{Deserialize, Serialize};

/// A step of fal's shutdown sequence, in the order it happens: SIGTERM -> handle_exit ->
/// drain -> teardown (force_flush) -> exit, or SIGKILL when the grace period runs out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShutdownPhase {
    /// The platform stops routing to the runner and signals it.
    Sigterm,
    /// The app's `handle_exit()` ran (cancelling in-flight requests, if it does).
    HandleExit,
    /// The platform stopped routing new requests here (`shutdown.routing_lag_ms` after
    /// SIGTERM; at SIGTERM itself when there is no lag).
    RoutingEnd,
    /// The last in-flight request finished.
    DrainEnd,
    /// The app's `teardown()` began.
    Teardown,
    /// teardown() called `force_flush`.
    FlushStart,
    /// `force_flush` returned.
    FlushEnd,
    /// The process exited (its provider shut down) before the grace period ran out.
    Exit,
    /// The platform killed the process at the end of the grace period.
    Sigkill,
}

impl ShutdownPhase {
    /// Every phase, in order.
    pub const ALL: [ShutdownPhase; 9] = [
        ShutdownPhase::Sigterm,
        ShutdownPhase::HandleExit,
        ShutdownPhase::RoutingEnd,
        ShutdownPhase::DrainEnd,
        ShutdownPhase::Teardown,
        ShutdownPhase::FlushStart,
        ShutdownPhase::FlushEnd,
        ShutdownPhase::Exit,
        ShutdownPhase::Sigkill,
    ];

    /// The phase's name in the report and in the record's markers.
    pub fn name(self) -> &'static str {
        match self {
            ShutdownPhase::Sigterm => "sigterm",
            ShutdownPhase::HandleExit => "handle_exit",
            ShutdownPhase::RoutingEnd => "routing_end",
            ShutdownPhase::DrainEnd => "drain_end",
            ShutdownPhase::Teardown => "teardown",
            ShutdownPhase::FlushStart => "flush_start",
            ShutdownPhase::FlushEnd => "flush_end",
            ShutdownPhase::Exit => "exit",
            ShutdownPhase::Sigkill => "sigkill",
        }
    }
}

/// What SIGKILL destroyed, for the shutdown report's verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillLosses {
    /// Spans waiting in a batch processor's queue.
    pub queued: u64,
    /// Spans in an export whose answer never came back.
    pub in_flight_export: u64,
    /// Spans in an export cut off at the kill that the backend had in fact accepted.
    pub in_flight_but_delivered: u64,
}

/// The timeline of one shutdown, in the record's milliseconds. Field names are the
/// report's contract.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ShutdownReport {
    pub platform: String,
    pub grace_ms: u64,
    pub handle_exit: String,
    pub sigterm_ms: f64,
    pub handle_exit_ms: f64,
    pub drain_end_ms: Option<f64>,
    pub teardown_start_ms: Option<f64>,
    pub flush_start_ms: Option<f64>,
    /// `null` if SIGKILL cut the flush off.
    pub flush_end_ms: Option<f64>,
    /// What force_flush returned, when it returned.
    pub flush_result: Option<String>,
    /// `null` if killed.
    pub exit_ms: Option<f64>,
    /// `null` if the runner exited in time.
    pub sigkill_ms: Option<f64>,
    pub killed: bool,
    pub lost_at_kill: KillLosses,
    /// Requests running or waiting when SIGKILL came.
    pub requests_cut_off: u64,
    /// Their spans, which never ended: no SDK ever saw them.
    pub spans_never_ended: u64,
    /// Arrivals after the platform stopped routing here, routed elsewhere.
    pub requests_refused: u64,
    /// `shutdown.waiting`: "return" or "serve".
    pub waiting: String,
    /// Requests waiting for a slot at SIGTERM that went back to the platform.
    pub requests_returned: u64,
    /// When new requests stopped arriving; `null` if the runner was gone first.
    pub routing_end_ms: Option<f64>,
    /// One sentence for a person.
    pub verdict: String,
}
