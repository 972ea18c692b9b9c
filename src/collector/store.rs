//! Exact counts, the duplicate window, the recent-trace store and the acknowledgement map.
//!
//! The one rule here: whether a request is counted is decided under a single lock, together
//! with the killed-runner check, so a request is either counted before a kill or not at all,
//! and `was_acknowledged` agrees with `spans_received` at every instant. Counters are atomics
//! written under that lock, so `stats()` can read them from the UI thread without the lock.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use http::StatusCode;

use super::CollectorStats;
use super::decode::{Decoded, Reason, Rejection, RequestMeta};
use super::faults::{Draws, Faults, TokenBucket};
use super::otlp::hex;
use super::stored::{StoredSpan, StoredTrace};
use super::window::{FifoMap, FifoSet};
use crate::record::{AppResource, Orphans, TraceTally};

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

/// The counters behind `CollectorStats`.
#[derive(Debug)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub requests_grpc: AtomicU64,
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
    pub spans_not_stored: AtomicU64,
    pub attributes_not_stored: AtomicU64,
    pub events_not_stored: AtomicU64,
    pub links_not_stored: AtomicU64,
    pub texts_cut: AtomicU64,
    /// The recent-trace store's size now (a gauge, written under the lock).
    pub stored_bytes: AtomicU64,
    pub connections_open: AtomicU64,
    pub connections_replaced: AtomicU64,
    pub connections_refused: AtomicU64,
    pub connections_timed_out: AtomicU64,
    pub connections_slow_closed: AtomicU64,
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
            requests_grpc: AtomicU64::new(0),
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
            spans_not_stored: AtomicU64::new(0),
            attributes_not_stored: AtomicU64::new(0),
            events_not_stored: AtomicU64::new(0),
            links_not_stored: AtomicU64::new(0),
            texts_cut: AtomicU64::new(0),
            stored_bytes: AtomicU64::new(0),
            connections_open: AtomicU64::new(0),
            connections_replaced: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            connections_timed_out: AtomicU64::new(0),
            connections_slow_closed: AtomicU64::new(0),
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

    /// Requests rejected for `reason`, one of `Reason::FIXED`.
    fn rejected_for(&self, reason: Reason) -> u64 {
        Reason::FIXED
            .iter()
            .position(|r| *r == reason)
            .and_then(|i| self.fixed_reasons.get(i))
            .map_or(0, get)
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

/// The recent traces, by first arrival, within a byte budget and a number of traces:
/// the oldest go first. Each trace sits behind an `Arc`, so that a snapshot (`GET
/// /traces`, the window) copies pointers under the lock and serializes outside it, and
/// a trace that grows while a snapshot holds it is copied, not the whole store.
#[derive(Debug)]
struct TraceStore {
    traces: HashMap<[u8; 16], (Arc<StoredTrace>, u64)>,
    order: VecDeque<[u8; 16]>,
    bytes: u64,
    budget: u64,
    max_traces: usize,
}

impl TraceStore {
    fn new(max_traces: usize, budget: u64) -> Self {
        TraceStore {
            traces: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            budget,
            max_traces,
        }
    }

    /// Stores a span of `size` bytes; false when it was not stored (larger than the
    /// whole budget, no traces kept at all, or its trace is full).
    fn add(&mut self, trace_id: [u8; 16], span: StoredSpan, size: u64) -> bool {
        if size > self.budget || self.max_traces == 0 {
            return false;
        }
        match self.traces.get_mut(&trace_id) {
            Some((trace, _)) if trace.spans.len() >= MAX_SPANS_PER_STORED_TRACE => return false,
            Some((trace, bytes)) => {
                Arc::make_mut(trace).spans.push(span);
                *bytes += size;
            }
            None => {
                let trace = StoredTrace {
                    trace_id: hex(&trace_id),
                    spans: vec![span],
                };
                self.traces.insert(trace_id, (Arc::new(trace), size));
                self.order.push_back(trace_id);
            }
        }
        self.bytes += size;
        while self.bytes > self.budget || self.order.len() > self.max_traces {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some((_, bytes)) = self.traces.remove(&oldest) {
                self.bytes -= bytes;
            }
        }
        true
    }
}

/// Everything that must change together with the counts.
#[derive(Debug)]
struct Ledger {
    killed: HashSet<u64>,
    span_ids: FifoSet<[u8; 24]>,
    /// Every trace seen (within `TRACE_WINDOW`), with its span count and whether its root
    /// arrived: `traces_seen` counts new keys, `orphans` reads the rest.
    trace_ids: FifoMap<[u8; 16], TraceTally>,
    acks: FifoMap<String, u64>,
    traces: TraceStore,
    bucket: TokenBucket,
    /// The resource of the latest accepted request that carried one.
    resource: Option<AppResource>,
}

/// The collector's memory of what arrived.
#[derive(Debug)]
pub(crate) struct Store {
    pub counters: Counters,
    ledger: Mutex<Ledger>,
}

impl Store {
    pub(crate) fn new(recent_traces: usize, max_stored_bytes: u64) -> Self {
        Store {
            counters: Counters::new(),
            ledger: Mutex::new(Ledger {
                killed: HashSet::new(),
                span_ids: FifoSet::new(DUPLICATE_WINDOW),
                trace_ids: FifoMap::new(TRACE_WINDOW),
                acks: FifoMap::new(ACK_WINDOW),
                traces: TraceStore::new(recent_traces, max_stored_bytes),
                bucket: TokenBucket::new(),
                resource: None,
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
        draws: &Draws,
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

        if faults.injects_error(draws.error.next()) {
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
        let (mut duplicates, mut new_traces) = (0, 0);
        for key in &decoded.read.ids {
            let new_span = ledger.span_ids.insert(*key);
            if !new_span {
                duplicates += 1;
            }
            let mut trace_id = [0u8; 16];
            trace_id.copy_from_slice(&key[..16]);
            let (tally, new_trace) = ledger.trace_ids.get_or_default(trace_id);
            tally.spans += u64::from(new_span);
            new_traces += u64::from(new_trace);
        }
        for trace_id in &decoded.read.roots {
            ledger.trace_ids.get_or_default(*trace_id).0.root = true;
        }
        if let Some(resource) = decoded.read.resource {
            ledger.resource = Some(resource);
        }
        let mut not_stored = decoded.read.not_stored;
        for (trace_id, span, size) in decoded.read.kept {
            if !ledger.traces.add(trace_id, span, size) {
                not_stored.spans += 1;
            }
        }
        add(&c.spans_received, decoded.spans);
        add(&c.duplicates, duplicates);
        add(&c.traces_seen, new_traces);
        add(&c.requests_accepted, 1);
        add(&c.spans_not_stored, not_stored.spans);
        add(&c.attributes_not_stored, not_stored.attributes);
        add(&c.events_not_stored, not_stored.events);
        add(&c.links_not_stored, not_stored.links);
        add(&c.texts_cut, not_stored.texts_cut);
        c.stored_bytes.store(ledger.traces.bytes, Ordering::Relaxed);
        if let Some(id) = &meta.request_id {
            ledger.acks.insert(id.clone(), decoded.spans);
        }
    }

    pub(crate) fn stats(&self) -> CollectorStats {
        let c = &self.counters;
        CollectorStats {
            spans_received: get(&c.spans_received),
            requests: get(&c.requests),
            requests_grpc: get(&c.requests_grpc),
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
            spans_not_stored: get(&c.spans_not_stored),
            attributes_not_stored: get(&c.attributes_not_stored),
            events_not_stored: get(&c.events_not_stored),
            links_not_stored: get(&c.links_not_stored),
            texts_cut: get(&c.texts_cut),
            stored_bytes: get(&c.stored_bytes),
            connections_open: get(&c.connections_open),
            connections_replaced: get(&c.connections_replaced),
            connections_refused: get(&c.connections_refused),
            connections_timed_out: get(&c.connections_timed_out),
            connections_slow_closed: get(&c.connections_slow_closed),
            requests_timed_out: c.rejected_for(Reason::TimedOut),
            requests_refused_memory: c.rejected_for(Reason::MemoryLimited),
            // Filled in by the forwarder, which keeps its own counters, and by `Shared`
            // (the bodies in flight).
            ..CollectorStats::default()
        }
    }

    /// Traces (within `TRACE_WINDOW`) whose spans arrived but whose root did not, and how
    /// many spans they hold. One pass over the window under the lock: for the end of a
    /// probe, not for every frame.
    pub(crate) fn orphans(&self) -> Orphans {
        let ledger = self.lock();
        let mut orphans = Orphans::default();
        for tally in ledger.trace_ids.values().filter(|t| !t.root) {
            orphans.traces += 1;
            orphans.spans += tally.spans;
        }
        orphans
    }

    /// What arrived of each of `trace_ids` (`None`: nothing, or forgotten: see
    /// [`super::Collector::trace_tallies`]), under one lock.
    pub(crate) fn tallies(&self, trace_ids: &[u128]) -> Vec<Option<TraceTally>> {
        let ledger = self.lock();
        let tally = |id: &u128| ledger.trace_ids.get(&id.to_be_bytes()).copied();
        trace_ids.iter().map(tally).collect()
    }

    /// What the app says about itself in its latest resource, if any arrived.
    pub(crate) fn resource(&self) -> Option<AppResource> {
        self.lock().resource.clone()
    }

    /// The stored traces, newest first, as shared pointers: copied under the lock, read
    /// outside it.
    pub(crate) fn snapshot(&self) -> Vec<Arc<StoredTrace>> {
        let ledger = self.lock();
        let traces = &ledger.traces;
        traces
            .order
            .iter()
            .rev()
            .filter_map(|id| traces.traces.get(id).map(|(t, _)| t.clone()))
            .collect()
    }

    /// Newest trace first, spans ordered by start.
    pub(crate) fn recent_traces(&self) -> Vec<StoredTrace> {
        self.snapshot().iter().map(|t| sorted(t)).collect()
    }
}

/// A copy of `trace` with its spans ordered by start, as a waterfall draws them.
pub(crate) fn sorted(trace: &StoredTrace) -> StoredTrace {
    let mut trace = trace.clone();
    trace.spans.sort_by_key(|s| s.start_unix_nano);
    trace
}
