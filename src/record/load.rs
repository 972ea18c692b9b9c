//! What `gracetrace probe --url` sent and what became of each request's trace: the types
//! of the report's `load` and `traces` sections, and the counts built from the requests.
//! Times are milliseconds since the app was started, as in the rest of the probe report.
//!
//! Every request the schedule gave is in exactly one bucket:
//! `scheduled = sent + not_sent_after_routing_end` and
//! `sent = answered + failed (every kind) + in_flight_at_end`.

use serde::Serialize;

use super::LatencyHistogram;

/// The most rows `load.requests` keeps: 100,000 rows are about 30 MB of JSON, and a run of
/// a million requests would otherwise write a report nobody opens.
pub const MAX_REQUEST_ROWS: usize = 100_000;

/// What became of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// A whole response with a status below 400.
    #[serde(rename = "answered")]
    Answered,
    /// The connection was refused (nothing listened on the port).
    #[serde(rename = "refused")]
    Refused,
    /// The connection was reset or closed before any response arrived.
    #[serde(rename = "reset")]
    Reset,
    /// No whole response within the request timeout.
    #[serde(rename = "timeout")]
    Timeout,
    /// The response began, and its body ended early.
    #[serde(rename = "cut_mid_response")]
    CutMidResponse,
    /// A whole response with a 5xx status.
    #[serde(rename = "status_5xx")]
    Status5xx,
    /// A whole response with status 429.
    #[serde(rename = "status_429")]
    Status429,
    /// A whole response with another status of 400 or more.
    #[serde(rename = "other_status")]
    OtherStatus,
    /// Any other client-side failure (a malformed response, a name that did not resolve).
    #[serde(rename = "other_error")]
    OtherError,
    /// Unanswered when the app ended (SIGKILLed, or exited): its connection died with it.
    #[serde(rename = "in_flight_at_end")]
    InFlightAtEnd,
    /// Scheduled after the platform stopped routing (`shutdown.routing_lag_ms` after
    /// SIGTERM), or after the app had ended: never sent.
    #[serde(rename = "not_sent_after_routing_end")]
    NotSent,
}

/// Failed requests, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FailedCounts {
    pub refused: u64,
    pub reset: u64,
    pub timeout: u64,
    pub cut_mid_response: u64,
    pub status_5xx: u64,
    pub status_429: u64,
    pub other_status: u64,
    pub other_error: u64,
}

impl FailedCounts {
    /// Counts `outcome` if it is a failure; false (nothing counted) otherwise.
    pub fn add(&mut self, outcome: Outcome) -> bool {
        let slot = match outcome {
            Outcome::Refused => &mut self.refused,
            Outcome::Reset => &mut self.reset,
            Outcome::Timeout => &mut self.timeout,
            Outcome::CutMidResponse => &mut self.cut_mid_response,
            Outcome::Status5xx => &mut self.status_5xx,
            Outcome::Status429 => &mut self.status_429,
            Outcome::OtherStatus => &mut self.other_status,
            Outcome::OtherError => &mut self.other_error,
            Outcome::Answered | Outcome::InFlightAtEnd | Outcome::NotSent => return false,
        };
        *slot += 1;
        true
    }

    /// The kinds with at least one failure, in words: "3 refused", "2 5xx", ... (what the
    /// command's summary and the window both say).
    pub fn in_words(&self) -> Vec<String> {
        [
            ("refused", self.refused),
            ("reset", self.reset),
            ("timeout", self.timeout),
            ("cut mid-response", self.cut_mid_response),
            ("5xx", self.status_5xx),
            ("429", self.status_429),
            ("other 4xx", self.other_status),
            ("other error", self.other_error),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(kind, n)| format!("{n} {kind}"))
        .collect()
    }

    /// Every failed request, whatever its kind.
    pub fn total(&self) -> u64 {
        self.refused
            + self.reset
            + self.timeout
            + self.cut_mid_response
            + self.status_5xx
            + self.status_429
            + self.other_status
            + self.other_error
    }
}

/// One request of the schedule, followed to its trace.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LoadRequest {
    /// The arrival index in the schedule (`workload::arrival`), from 0.
    pub index: u64,
    pub scheduled_ms: f64,
    /// When its connection was opened; `None` if it was never sent.
    pub sent_ms: Option<f64>,
    /// When its answer or its failure came.
    pub ended_ms: Option<f64>,
    pub outcome: Option<Outcome>,
    /// The response's status, when one arrived.
    pub status: Option<u16>,
    /// From the scheduled time (not the send time: no coordinated omission) to the end of
    /// the response; `None` without a whole response.
    pub latency_ms: Option<f64>,
    /// Scheduled at or after SIGTERM.
    pub after_sigterm: bool,
    /// The `traceparent`'s trace id, 32 hex digits.
    pub trace_id: String,
    /// The `traceparent`'s sampled flag.
    pub sampled: bool,
    /// Distinct spans of its trace the collector received.
    pub spans_received: u64,
    /// Whether the trace's root (the app's top span) arrived.
    pub root: bool,
}

/// Latency percentiles of a set of requests (within 1%: `LatencyHistogram`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LoadLatency {
    pub count: u64,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

impl LoadLatency {
    pub fn of(values: impl Iterator<Item = f64>) -> LoadLatency {
        let mut histogram = LatencyHistogram::default();
        for ms in values {
            histogram.add(ms);
        }
        let summary = histogram.summary();
        LoadLatency {
            count: summary.count,
            p50: summary.p50,
            p90: histogram.quantile(0.9),
            p99: summary.p99,
            max: summary.max,
        }
    }
}

/// Latencies of the requests with a whole response, by when they were scheduled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencySplit {
    pub before_sigterm: LoadLatency,
    pub after_sigterm: LoadLatency,
}

/// The report's `load` section.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LoadSection {
    pub url: String,
    pub method: String,
    /// When the URL first answered (a TCP connection, or 2xx on the ready path).
    pub ready_ms: f64,
    /// When the schedule's time 0 was: the traffic started as soon as the app was ready.
    pub traffic_start_ms: f64,
    /// When the schedule ends: `workload.duration_s` after its start.
    pub traffic_end_ms: f64,
    /// When the platform stopped routing: `shutdown.routing_lag_ms` after SIGTERM.
    pub routing_end_ms: Option<f64>,
    pub scheduled: u64,
    pub sent: u64,
    pub not_sent_after_routing_end: u64,
    pub answered: u64,
    /// Of the answered, those scheduled before SIGTERM (the serving throughput's count).
    pub answered_before_sigterm: u64,
    pub failed: FailedCounts,
    pub in_flight_at_end: u64,
    /// Of the failed and the in flight at the end, those that failed after SIGTERM: the
    /// requests the shutdown cost.
    pub failed_after_sigterm: u64,
    pub latency_ms: LatencySplit,
    /// How late each request left against its schedule (the load generator's accuracy).
    pub send_lag_ms: LoadLatency,
    /// One row per request, at most [`MAX_REQUEST_ROWS`]: past that, the rows worth
    /// reading first (failed, not sent, answered with a lost trace), then the others in
    /// schedule order; the totals above count every request.
    pub requests: Vec<LoadRequest>,
    /// Requests left out of `requests` by that cap.
    pub requests_omitted: u64,
    /// The requests by when they ended, 100 ms a bucket (`load_timeline`): what the
    /// window's request and latency charts draw. Every request that ended is in one
    /// bucket, until the cap of [`super::load_timeline::MAX_BUCKETS`].
    pub timeline: Vec<LoadBucket>,
}

/// 100 ms of the load ([`super::load_timeline::BUCKET_MS`]): the requests that ended in
/// it, by outcome, their latencies, and those still out at its end.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LoadBucket {
    /// The bucket's start, ms since the app started.
    pub t_ms: f64,
    pub answered: u64,
    pub failed: FailedCounts,
    /// Cut when the app ended (`in_flight_at_end`), at the moment their connection died.
    pub in_flight_at_end: u64,
    /// Sent and not yet ended at the bucket's end.
    pub in_flight: u64,
    /// Of the requests with a whole response that ended in the bucket (nearest rank).
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
}

impl LoadSection {
    /// Requests sent that got no answer: failed, of any kind, or in flight at the end.
    pub fn failed_requests(&self) -> u64 {
        self.failed.total() + self.in_flight_at_end
    }
}

/// One answered, sampled request whose trace is lost.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LostTrace {
    pub index: u64,
    pub trace_id: String,
    pub after_sigterm: bool,
    /// Spans that did arrive (0: the trace never arrived; more: its root did not).
    pub spans_received: u64,
}

/// The report's `traces` section: what arrived of the traces of the answered requests.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TraceSection {
    /// Requests sent with the sampled flag.
    pub sampled: u64,
    /// Of those, the answered ones: each should have a whole trace.
    pub answered_sampled: u64,
    /// Their root arrived.
    pub complete: u64,
    /// Spans arrived, the root did not.
    pub partial: u64,
    /// Nothing arrived.
    pub missing: u64,
    /// `partial + missing`: the headline, answered requests whose trace is lost.
    pub lost: u64,
    pub lost_before_sigterm: u64,
    pub lost_after_sigterm: u64,
    /// Traces that were not found but may have arrived: the collector may have forgotten
    /// them (more than its trace window arrived), or the app ignores the `traceparent`
    /// (`traceparent_ignored`). Counted here, not as lost.
    pub unknown: u64,
    /// Spans arrived, none under a trace id the probe sent: the app does not continue the
    /// W3C `traceparent` (no propagator reads it), so its requests cannot be followed.
    pub traceparent_ignored: bool,
    /// The lost ones, by request.
    pub lost_requests: Vec<LostTrace>,
}

/// The counts of `requests` (each already followed to its trace): the `load` section's
/// totals and latencies, and the `traces` section. `sigterm_ms` is when SIGTERM was
/// asked for, if it was; `forgotten` says whether a trace that did not arrive may have
/// been forgotten by the collector (it saw more traces than it keeps), in which case it
/// is `unknown`, not lost.
pub fn tally(section: &mut LoadSection, sigterm_ms: Option<f64>, forgotten: bool) -> TraceSection {
    let mut traces = TraceSection::default();
    let (mut before, mut after, mut lag) = (Vec::new(), Vec::new(), Vec::new());
    for r in &section.requests {
        let Some(outcome) = r.outcome else { continue };
        if outcome == Outcome::NotSent {
            section.not_sent_after_routing_end += 1;
            continue;
        }
        section.sent += 1;
        if let Some(sent) = r.sent_ms {
            lag.push((sent - r.scheduled_ms).max(0.0));
        }
        if let Some(ms) = r.latency_ms {
            match r.after_sigterm {
                false => before.push(ms),
                true => after.push(ms),
            }
        }
        traces.sampled += u64::from(r.sampled);
        match outcome {
            Outcome::Answered => {
                section.answered += 1;
                section.answered_before_sigterm += u64::from(!r.after_sigterm);
                if r.sampled {
                    follow(r, forgotten, &mut traces);
                }
            }
            Outcome::InFlightAtEnd => section.in_flight_at_end += 1,
            failure => {
                section.failed.add(failure);
            }
        }
        let failed_at = r.ended_ms.filter(|_| outcome != Outcome::Answered);
        if failed_at.zip(sigterm_ms).is_some_and(|(at, t)| at >= t) {
            section.failed_after_sigterm += 1;
        }
    }
    section.scheduled = section.requests.len() as u64;
    section.latency_ms = LatencySplit {
        before_sigterm: LoadLatency::of(before.into_iter()),
        after_sigterm: LoadLatency::of(after.into_iter()),
    };
    section.send_lag_ms = LoadLatency::of(lag.into_iter());
    keep_rows(section, MAX_REQUEST_ROWS);
    traces.lost_requests.truncate(MAX_REQUEST_ROWS);
    traces
}

/// Keeps at most `cap` request rows: first those worth reading (not answered, or answered
/// with a sampled trace whose root did not arrive), then the others, each in schedule order.
fn keep_rows(section: &mut LoadSection, cap: usize) {
    let all = section.requests.len();
    if all <= cap {
        return;
    }
    let notable = |r: &LoadRequest| r.outcome != Some(Outcome::Answered) || (r.sampled && !r.root);
    let notable_count = section.requests.iter().filter(|r| notable(r)).count();
    let (mut room_notable, mut room_plain) = (cap, cap.saturating_sub(notable_count));
    section.requests.retain(|r| {
        let room = match notable(r) {
            true => &mut room_notable,
            false => &mut room_plain,
        };
        let keep = *room > 0;
        *room = room.saturating_sub(1);
        keep
    });
    section.requests_omitted = (all - section.requests.len()) as u64;
}

/// Counts one answered, sampled request's trace as complete, partial, missing or unknown.
fn follow(r: &LoadRequest, forgotten: bool, traces: &mut TraceSection) {
    traces.answered_sampled += 1;
    if r.root {
        traces.complete += 1;
        return;
    }
    if r.spans_received == 0 && forgotten {
        traces.unknown += 1;
        return;
    }
    match r.spans_received {
        0 => traces.missing += 1,
        _ => traces.partial += 1,
    }
    traces.lost += 1;
    match r.after_sigterm {
        false => traces.lost_before_sigterm += 1,
        true => traces.lost_after_sigterm += 1,
    }
    traces.lost_requests.push(LostTrace {
        index: r.index,
        trace_id: r.trace_id.clone(),
        after_sigterm: r.after_sigterm,
        spans_received: r.spans_received,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(index: u64, outcome: Outcome, sampled: bool, spans: u64, root: bool) -> LoadRequest {
        let sent = outcome != Outcome::NotSent;
        LoadRequest {
            index,
            scheduled_ms: index as f64,
            sent_ms: sent.then_some(index as f64 + 0.5),
            ended_ms: sent.then_some(index as f64 + 2.0),
            outcome: Some(outcome),
            latency_ms: (outcome == Outcome::Answered).then_some(10.0 + index as f64),
            after_sigterm: index >= 5,
            trace_id: format!("{index:032x}"),
            sampled,
            spans_received: spans,
            root,
            ..LoadRequest::default()
        }
    }

    /// Every request lands in one bucket, and the lost traces are exactly the answered,
    /// sampled requests without a root; failed or unsampled ones never count as lost.
    #[test]
    fn every_request_in_one_bucket_and_lost_traces_are_answered_ones() {
        let mut section = LoadSection {
            requests: vec![
                request(0, Outcome::Answered, true, 3, true),
                request(1, Outcome::Answered, true, 2, false),
                request(2, Outcome::Answered, false, 0, false),
                request(3, Outcome::Status5xx, true, 0, false),
                request(4, Outcome::Refused, true, 0, false),
                request(5, Outcome::Answered, true, 0, false),
                request(6, Outcome::InFlightAtEnd, true, 0, false),
                request(7, Outcome::NotSent, true, 0, false),
            ],
            ..LoadSection::default()
        };
        let traces = tally(&mut section, Some(5.5), false);
        assert_eq!(
            (
                section.scheduled,
                section.sent,
                section.not_sent_after_routing_end
            ),
            (8, 7, 1)
        );
        assert_eq!(
            section.sent,
            section.answered + section.failed.total() + section.in_flight_at_end
        );
        assert_eq!((section.answered, section.failed_requests()), (4, 3));
        // Requests 4 (refused, ended at 6 ms) and 6 failed after SIGTERM at 5.5 ms; 3 before.
        assert_eq!(section.failed_after_sigterm, 2);
        assert_eq!((section.failed.status_5xx, section.failed.refused), (1, 1));
        assert_eq!(section.latency_ms.before_sigterm.count, 3);
        assert_eq!(section.latency_ms.after_sigterm.count, 1);
        assert_eq!(
            (
                traces.answered_sampled,
                traces.complete,
                traces.partial,
                traces.missing
            ),
            (3, 1, 1, 1)
        );
        assert_eq!(
            (
                traces.lost,
                traces.lost_before_sigterm,
                traces.lost_after_sigterm
            ),
            (2, 1, 1)
        );
        let lost: Vec<u64> = traces.lost_requests.iter().map(|l| l.index).collect();
        assert_eq!(lost, [1, 5]);
        // A collector that forgot traces cannot say a missing one was lost.
        let mut again = LoadSection {
            requests: section.requests.clone(),
            ..LoadSection::default()
        };
        let unsure = tally(&mut again, Some(5.5), true);
        assert_eq!((unsure.lost, unsure.unknown), (1, 1));
    }

    /// Past the cap the failed and lost rows stay, the plain answered ones fill what is
    /// left in schedule order, and the omitted are counted.
    #[test]
    fn the_rows_are_capped_keeping_the_ones_worth_reading() {
        let mut section = LoadSection {
            requests: vec![
                request(0, Outcome::Answered, true, 3, true),
                request(1, Outcome::Answered, true, 3, true),
                request(2, Outcome::Refused, true, 0, false),
                request(3, Outcome::Answered, true, 3, true),
                request(4, Outcome::Answered, true, 1, false),
            ],
            ..LoadSection::default()
        };
        keep_rows(&mut section, 3);
        let kept: Vec<u64> = section.requests.iter().map(|r| r.index).collect();
        assert_eq!(kept, [0, 2, 4]);
        assert_eq!(section.requests_omitted, 2);
        keep_rows(&mut section, 3);
        assert_eq!(section.requests_omitted, 2, "under the cap nothing changes");
    }
}
