//! What the exporter and the collector agree on, beyond OTLP itself: two headers that
//! name the runner and the HTTP attempt, and the questions a simulated SIGKILL asks the
//! backend. Both `telemetry` (the sender) and `collector` (the receiver) use these; they
//! live below both so that neither has to know the other.

/// Header carrying the id of the runner (simulated process) that sent the request, so that
/// requests of a SIGKILLed runner can be cut off at the kill instant.
pub const RUNNER_HEADER: &str = "x-gracetrace-runner";
/// Header carrying the exporter's id for one export attempt, so that the caller can ask
/// afterwards whether that attempt reached the backend.
pub const REQUEST_ID_HEADER: &str = "x-gracetrace-request-id";

/// The backend as a simulated SIGKILL sees it. A real SIGKILL needs no such thing: the
/// process is simply gone. In-process, the kill must tell the backend to ignore the
/// runner's late requests, and must ask which of the requests in flight the backend had
/// already accepted (those spans did arrive, however the exporter's thread sees it).
pub trait KillWitness {
    /// From now on, refuse (and do not count) every request of runner `runner_id`.
    fn runner_killed(&self, runner_id: u64);
    /// Whether the attempt with this `x-gracetrace-request-id` was answered 2xx.
    fn acknowledged(&self, request_id: &str) -> bool;
}

/// The parent span id `gracetrace probe` puts in the W3C `traceparent` of the request
/// whose trace id is `trace_id`: a pure function of the id, so the collector recognises
/// the app's top span (the one whose parent is this id) as that trace's root without
/// being told which requests the probe sent, and keeps no memory for it. Never 0, which
/// W3C Trace Context (section 3.2.2.4, parent-id) forbids. An app's own span whose
/// parent happens to equal it is a 2^-64 coincidence.
pub fn probe_parent_span_id(trace_id: u128) -> u64 {
    use crate::config::draws::splitmix64;
    let (high, low) = ((trace_id >> 64) as u64, trace_id as u64);
    splitmix64(high ^ splitmix64(low ^ 0x7072_6f62_6500_0000)).max(1)
}
