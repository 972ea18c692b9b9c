//! Exact counts, the duplicate window, the recent-trace store and the acknowledgement map.
//!
//! The one rule here: whether a request is counted is decided under a single lock, together
//! with the killed-runner check, so a request is either counted before a kill or not at all,
//! and `was_acknowledged` agrees with `spans_received` at every instant. Counters are atomics
//! written under that lock, so `stats()` can read them from the UI thread without the lock.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use http::StatusCode;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use serde::Serialize;

use super::CollectorStats;
use super::decode::{Decoded, Reason, Rejection, RequestMeta};
use super::faults::{Faults, TokenBucket};
use super::window::{FifoMap, FifoSet};

/// How many (trace id, span id) pairs the duplicate check remembers. A span re-sent after
/// more than this many newer spans counts as new, not as a duplicate: exactness for any
/// realistic retry, bounded memory (about 80 MB when full) over an hour-long run.
pub const DUPLICATE_WINDOW: usize = 1_000_000;
/// How many trace ids `traces_seen` remembers; older trace ids seen again count as new.
pub const TRACE_WINDOW: usize = 1_000_000;
/// How many request ids `was_acknowledged` remembers: far more than can be in flight at a kill.
pub const ACK_WINDOW: usize = 100_000;
/// Spans kept per stored trace; more would not fit a waterfall anyway, and this bounds memory.
pub const MAX_SPANS_PER_STORED_TRACE: usize = 256;

/// One trace of the recent-trace store, for the UI's waterfall view.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredTrace {
    /// 32 lowercase hex digits, as the UI and every tracing backend show it.
    pub trace_id: String,
    /// Ordered by start time, so a waterfall can draw them top to bottom.
    pub spans: Vec<StoredSpan>,
}

/// One span of a stored trace, with everything a waterfall row needs and nothing more.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredSpan {
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// `None` for a root span, so the UI can find the roots without parsing ids.
    pub parent_span_id: Option<String>,
    /// The span's name, the label of its waterfall row.
    pub name: String,
    /// Start and end as sent (Unix nanoseconds): the bar's extent on the shared time axis.
    pub start_unix_nano: u64,
    /// See `start_unix_nano`.
    pub end_unix_nano: u64,
    /// Values rendered as text: the UI only displays them.
    pub attributes: Vec<(String, String)>,
}

/// The counters behind `CollectorStats`.
#[derive(Debug)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub requests_accepted: AtomicU64,
    pub requests_rejected: AtomicU64,
    pub requests_dropped_killed_runner: AtomicU64,
    pub requests_abandoned: AtomicU64,
    pub requests_in_flight: AtomicU64,
    pub spans_received: AtomicU64,
    pub spans_rejected: AtomicU64,
    pub spans_dropped_killed_runner: AtomicU64,
    pub duplicates: AtomicU64,
    pub bytes_received: AtomicU64,
    pub traces_seen: AtomicU64,
    fixed_reasons: [AtomicU64; Reason::FIXED.len()],
    /// Injected errors by status, index `status - 400` (statuses are validated to 400..=599).
    injected: [AtomicU64; 200],
}

/// Shorthand: every counter is a plain event count, so relaxed ordering is enough; the lock
/// around `decide` orders the writes that must agree with each other.
fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl Counters {
    fn new() -> Self {
        Counters {
            requests: AtomicU64::new(0),
            requests_accepted: AtomicU64::new(0),
            requests_rejected: AtomicU64::new(0),
            requests_dropped_killed_runner: AtomicU64::new(0),
            requests_abandoned: AtomicU64::new(0),
            requests_in_flight: AtomicU64::new(0),
            spans_received: AtomicU64::new(0),
            spans_rejected: AtomicU64::new(0),
            spans_dropped_killed_runner: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            traces_seen: AtomicU64::new(0),
            fixed_reasons: std::array::from_fn(|_| AtomicU64::new(0)),
            injected: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    pub(crate) fn add_bytes(&self, n: usize) {
        add(&self.bytes_received, n as u64);
    }

    fn reject(&self, reason: Reason, spans: u64) {
        add(&self.requests_rejected, 1);
        add(&self.spans_rejected, spans);
        let slot = match reason {
            Reason::Injected(status) => self.injected.get(usize::from(status).wrapping_sub(400)),
            fixed => Reason::FIXED
                .iter()
                .position(|r| *r == fixed)
                .and_then(|i| self.fixed_reasons.get(i)),
        };
        if let Some(c) = slot {
            add(c, 1);
        }
    }

    fn rejected_by_reason(&self) -> BTreeMap<String, u64> {
        let mut map = BTreeMap::new();
        for (reason, c) in Reason::FIXED.iter().zip(&self.fixed_reasons) {
            let n = get(c);
            if n > 0 {
                map.insert(reason.key().into_owned(), n);
            }
        }
        for (i, c) in self.injected.iter().enumerate() {
            let n = get(c);
            if n > 0 {
                let status = 400 + i as u16;
                map.insert(Reason::Injected(status).key().into_owned(), n);
            }
        }
        map
    }
}

/// What happens to a request.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Counted; answer 200.
    Accepted,
    /// Its runner was killed; answer 503, count nothing but the drop.
    DroppedKilledRunner(u64),
    Rejected(Rejection),
}

/// The recent traces, by first arrival. Spans are kept as received (behind `Arc`, so that a
/// snapshot copies pointers under the lock and converts to text outside it).
#[derive(Debug)]
struct TraceStore {
    traces: FifoMap<[u8; 16], Vec<Arc<Span>>>,
}

impl TraceStore {
    fn add(&mut self, trace_id: [u8; 16], span: Span) {
        if let Some(spans) = self.traces.get_mut(&trace_id) {
            if spans.len() < MAX_SPANS_PER_STORED_TRACE {
                spans.push(Arc::new(span));
            }
        } else {
            self.traces.insert(trace_id, vec![Arc::new(span)]);
        }
    }
}

/// Everything that must change together with the counts.
#[derive(Debug)]
struct Ledger {
    killed: HashSet<u64>,
    span_ids: FifoSet<[u8; 24]>,
    trace_ids: FifoSet<[u8; 16]>,
    acks: FifoMap<String, u64>,
    traces: TraceStore,
    bucket: TokenBucket,
}

/// The collector's memory of what arrived.
#[derive(Debug)]
pub(crate) struct Store {
    pub counters: Counters,
    ledger: Mutex<Ledger>,
}

impl Store {
    pub(crate) fn new(recent_traces: usize) -> Self {
        Store {
            counters: Counters::new(),
            ledger: Mutex::new(Ledger {
                killed: HashSet::new(),
                span_ids: FifoSet::new(DUPLICATE_WINDOW),
                trace_ids: FifoSet::new(TRACE_WINDOW),
                acks: FifoMap::new(ACK_WINDOW),
                traces: TraceStore {
                    traces: FifoMap::new(recent_traces),
                },
                bucket: TokenBucket::new(),
            }),
        }
    }

    /// A panic elsewhere while holding the lock must not stop the counting, and the ledger
    /// is consistent after every statement, so a poisoned lock is simply taken over.
    fn lock(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn kill(&self, runner: u64) {
        self.lock().killed.insert(runner);
    }

    pub(crate) fn is_killed(&self, runner: u64) -> bool {
        self.lock().killed.contains(&runner)
    }

    pub(crate) fn was_acknowledged(&self, request_id: &str) -> Option<u64> {
        self.lock().acks.get(request_id).copied()
    }

    /// Decides and counts one request, in the documented order: killed runner, bad input
    /// (4xx whatever the faults say), injected error, ingestion limit, count.
    pub(crate) fn decide(
        &self,
        meta: &RequestMeta,
        input: Result<Decoded, Rejection>,
        faults: &Faults,
    ) -> Verdict {
        let c = &self.counters;
        let mut ledger = self.lock();

        if let Some(runner) = meta.runner
            && ledger.killed.contains(&runner)
        {
            add(&c.requests_dropped_killed_runner, 1);
            let spans = input.as_ref().map_or(0, |d| d.spans);
            add(&c.spans_dropped_killed_runner, spans);
            return Verdict::DroppedKilledRunner(runner);
        }

        let decoded = match input {
            Ok(d) => d,
            Err(rejection) => {
                c.reject(rejection.reason, 0);
                return Verdict::Rejected(rejection);
            }
        };

        if faults.draw_error() {
            let status = faults.error_status;
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let mut r = Rejection::new(
                code,
                Reason::Injected(code.as_u16()),
                format!("injected error {status} (error_rate {})", faults.error_rate),
            );
            r.retry_after_s = faults.retry_after_for_injected();
            c.reject(r.reason, decoded.spans);
            return Verdict::Rejected(r);
        }

        let limit = faults.ingest_limit_spans_per_s;
        if !ledger.bucket.try_take(limit, decoded.spans, Instant::now()) {
            let mut r = Rejection::new(
                StatusCode::TOO_MANY_REQUESTS,
                Reason::RateLimited,
                format!(
                    "ingestion limit of {} spans/s exceeded",
                    limit.unwrap_or_default()
                ),
            );
            r.retry_after_s = Some(1);
            c.reject(r.reason, decoded.spans);
            return Verdict::Rejected(r);
        }

        self.count(&mut ledger, meta, decoded);
        Verdict::Accepted
    }

    fn count(&self, ledger: &mut Ledger, meta: &RequestMeta, decoded: Decoded) {
        let c = &self.counters;
        let spans = decoded
            .request
            .resource_spans
            .into_iter()
            .flat_map(|rs| rs.scope_spans)
            .flat_map(|ss| ss.spans);
        let (mut duplicates, mut new_traces) = (0, 0);
        for span in spans {
            // Lengths were checked in decode; the fallbacks are never taken.
            let trace_id: [u8; 16] = span.trace_id.as_slice().try_into().unwrap_or([0; 16]);
            let span_id: [u8; 8] = span.span_id.as_slice().try_into().unwrap_or([0; 8]);
            let mut key = [0u8; 24];
            key[..16].copy_from_slice(&trace_id);
            key[16..].copy_from_slice(&span_id);
            if !ledger.span_ids.insert(key) {
                duplicates += 1;
            }
            if ledger.trace_ids.insert(trace_id) {
                new_traces += 1;
            }
            ledger.traces.add(trace_id, span);
        }
        add(&c.spans_received, decoded.spans);
        add(&c.duplicates, duplicates);
        add(&c.traces_seen, new_traces);
        add(&c.requests_accepted, 1);
        if let Some(id) = &meta.request_id {
            ledger.acks.insert(id.clone(), decoded.spans);
        }
    }

    pub(crate) fn stats(&self) -> CollectorStats {
        let c = &self.counters;
        CollectorStats {
            spans_received: get(&c.spans_received),
            requests: get(&c.requests),
            requests_accepted: get(&c.requests_accepted),
            requests_rejected: get(&c.requests_rejected),
            requests_dropped_killed_runner: get(&c.requests_dropped_killed_runner),
            spans_dropped_killed_runner: get(&c.spans_dropped_killed_runner),
            duplicates: get(&c.duplicates),
            bytes_received: get(&c.bytes_received),
            traces_seen: get(&c.traces_seen),
            rejected_by_reason: c.rejected_by_reason(),
            spans_rejected: get(&c.spans_rejected),
            requests_abandoned: get(&c.requests_abandoned),
            requests_in_flight: get(&c.requests_in_flight),
        }
    }

    /// Newest trace first. Copies `Arc`s under the lock and renders text outside it, so the
    /// counting path is never held up by a UI refresh.
    pub(crate) fn recent_traces(&self) -> Vec<StoredTrace> {
        let snapshot: Vec<([u8; 16], Vec<Arc<Span>>)> = {
            let ledger = self.lock();
            ledger
                .traces
                .traces
                .iter_oldest_first()
                .map(|(id, spans)| (*id, spans.clone()))
                .collect()
        };
        snapshot
            .into_iter()
            .rev()
            .map(|(id, spans)| {
                let mut spans: Vec<StoredSpan> = spans.iter().map(|s| stored_span(s)).collect();
                spans.sort_by_key(|s| s.start_unix_nano);
                StoredTrace {
                    trace_id: hex(&id),
                    spans,
                }
            })
            .collect()
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn stored_span(span: &Span) -> StoredSpan {
    StoredSpan {
        span_id: hex(&span.span_id),
        parent_span_id: (!span.parent_span_id.is_empty()).then(|| hex(&span.parent_span_id)),
        name: span.name.clone(),
        start_unix_nano: span.start_time_unix_nano,
        end_unix_nano: span.end_time_unix_nano,
        attributes: span
            .attributes
            .iter()
            .map(|kv| (kv.key.clone(), any_to_text(kv.value.as_ref())))
            .collect(),
    }
}

/// Renders an attribute value for display. Nesting is bounded by prost's decode recursion
/// limit, so the recursion here is bounded too.
fn any_to_text(value: Option<&AnyValue>) -> String {
    use any_value::Value;
    match value.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BytesValue(b)) => hex(b),
        Some(Value::ArrayValue(a)) => {
            let items: Vec<String> = a.values.iter().map(|v| any_to_text(Some(v))).collect();
            format!("[{}]", items.join(", "))
        }
        Some(Value::KvlistValue(kv)) => {
            let items: Vec<String> = kv
                .values
                .iter()
                .map(|kv| format!("{}: {}", kv.key, any_to_text(kv.value.as_ref())))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Some(Value::StringValueStrindex(i)) => format!("(string table #{i})"),
    }
}
