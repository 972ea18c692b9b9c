//! Follows each request of the probe's load to its trace: joins what the load saw of a
//! request (sent, answered or how it failed) with what the collector received of the
//! trace whose id the request carried, into the report's `load` and `traces` sections.

use std::time::Instant;

use super::load::{Attempt, LoadPlan, Sent};
use crate::collector::{Collector, TRACE_WINDOW};
use crate::record::TraceTally;
use crate::record::load::{LoadRequest, LoadSection, Outcome, TraceSection, tally};
use crate::record::load_timeline::Timeline;
use crate::workload::arrival::trace_id;

/// The `load` and `traces` sections. `started` is the app's start (the report's time 0);
/// `app_end_ms` when it was SIGKILLed or seen to exit (whichever came first): a request
/// sent before it whose connection failed at or after it was in flight at the end.
pub fn sections(
    sent: &Sent,
    plan: &LoadPlan,
    collector: &Collector,
    started: Instant,
    app_end_ms: Option<f64>,
) -> (LoadSection, TraceSection) {
    let ms = |at: Instant| at.saturating_duration_since(started).as_secs_f64() * 1000.0;
    let seed = plan.workload.seed;
    let ids: Vec<u128> = sent
        .attempts
        .iter()
        .map(|a| trace_id(seed, a.index))
        .collect();
    let tallies = collector.trace_tallies(&ids);
    // Spans arrived, and not one under a trace id the load sent: the app starts traces of
    // its own instead of continuing the `traceparent` (no propagator, or no
    // instrumentation reading it), so no request can be followed to its trace.
    let ignored = collector.stats().spans_received > 0 && tallies.iter().all(Option::is_none);
    let sigterm_ms = sent.sigterm_at.map(ms);
    let requests = sent
        .attempts
        .iter()
        .zip(ids.iter().zip(tallies))
        .map(|(attempt, (id, tally))| {
            let mut r = request(attempt, &ms, app_end_ms, sigterm_ms);
            r.trace_id = format!("{id:032x}");
            r.sampled = attempt.sent.is_some() && plan.sampling.sampled(*id);
            let tally = tally.unwrap_or(TraceTally::default());
            (r.spans_received, r.root) = (tally.spans, tally.root);
            r
        })
        .collect::<Vec<_>>();
    let mut load = LoadSection {
        timeline: Timeline::of(&requests),
        url: plan.target.url.text.clone(),
        method: plan.target.method.to_string(),
        ready_ms: ms(sent.ready_at),
        traffic_start_ms: ms(sent.start),
        traffic_end_ms: ms(sent.start) + plan.workload.duration_s * 1000.0,
        routing_end_ms: sent.routing_end.map(ms),
        requests,
        ..LoadSection::default()
    };
    // Past its window the collector may have forgotten a trace that did arrive; an app
    // that ignores the `traceparent` sends its traces under ids nobody can match. Either
    // way a trace that was not found is unknown, not lost.
    let forgotten = collector.stats().traces_seen > TRACE_WINDOW as u64;
    let mut traces = tally(&mut load, sigterm_ms, forgotten || ignored);
    traces.traceparent_ignored = ignored;
    (load, traces)
}

/// How much later than its sockets closed the app's end may be seen: the watch loop polls
/// every millisecond, and a loaded machine delays it a few more.
const END_SEEN_LATE_MS: f64 = 20.0;

/// One request's row, times in ms since the app started, without its trace yet.
pub(super) fn request(
    a: &Attempt,
    ms: &dyn Fn(Instant) -> f64,
    app_end_ms: Option<f64>,
    sigterm_ms: Option<f64>,
) -> LoadRequest {
    let (scheduled_ms, sent_ms, ended_ms) = (ms(a.scheduled), a.sent.map(ms), a.ended.map(ms));
    // The app's end is seen when the watch loop reaps it, a little after the kernel closed
    // its sockets (and the load saw its connections reset): a failure that close before
    // the end is the end.
    let cut_by_end = match (sent_ms, ended_ms, app_end_ms) {
        (Some(sent), Some(ended), Some(end)) => sent < end && ended >= end - END_SEEN_LATE_MS,
        _ => false,
    };
    let outcome = match a.outcome {
        // Its connection died with the app: it was still waiting for its answer.
        Outcome::Reset | Outcome::CutMidResponse | Outcome::Refused | Outcome::OtherError
            if cut_by_end =>
        {
            Outcome::InFlightAtEnd
        }
        other => other,
    };
    let whole = a.status.is_some();
    LoadRequest {
        index: a.index,
        scheduled_ms,
        sent_ms,
        ended_ms,
        outcome: Some(outcome),
        status: a.status,
        latency_ms: ended_ms.filter(|_| whole).map(|end| end - scheduled_ms),
        after_sigterm: sigterm_ms.is_some_and(|t| scheduled_ms >= t),
        ..LoadRequest::default()
    }
}
