//! The record: one log of what happened, which the JSON report and the UI both read.
//!
//! Per-span facts (ended, sampled out, enqueued, dropped) happen up to hundreds of
//! thousands of times a second, so they are exact atomic counters, and a sampler thread
//! turns the counters into a time series every [`SAMPLE_EVERY`]. Rare events (export
//! batches, configuration changes) are kept one by one in bounded rings. Memory therefore
//! stays bounded however long a run lasts.

mod collector_stats;
pub mod compare;
mod exit;
pub mod fleet;
mod latency;
pub mod load;
pub mod load_timeline;
mod model;
pub mod probe;
pub mod rates;
pub mod report;
mod requests;
mod shutdown;
pub mod wire;

pub use collector_stats::CollectorStats;
pub use exit::{ExitProgress, ExitReport};
pub use latency::{LatencyHistogram, ServiceTimes};
pub use model::{DeviceInfo, LastImage, ModelStatus, SharedModelStatus};
pub use probe::{AppResource, Orphans, TraceTally};
pub use shutdown::{KillLosses, ShutdownPhase, ShutdownReport};

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How often the counters are sampled into the time series.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// Export batches kept one by one; older ones survive only in the counters.
pub const MAX_EXPORT_EVENTS: usize = 100_000;
/// Time-series samples kept: one hour at 10 Hz.
pub const MAX_SAMPLES: usize = 36_000;

/// Exact counts. Every span that ends is in `created` and, at any quiet moment, in
/// exactly one of the other span buckets (see [`SpanCounts`]).
#[derive(Debug, Default)]
pub struct Counters {
    /// Spans that ended (a span that never ends never reaches any SDK).
    pub created: AtomicU64,
    pub not_sampled: AtomicU64,
    /// Spans held by a batch processor, waiting for export.
    pub queued: AtomicI64,
    /// Spans handed to the exporter whose export has not finished.
    pub in_export: AtomicI64,
    pub exported: AtomicU64,
    pub export_failed: AtomicU64,
    /// Evicted to make room (python: `deque(maxlen)` drops the oldest).
    pub dropped_oldest: AtomicU64,
    /// Refused at the door (rust: `try_send` on a full channel drops the newest).
    pub dropped_newest: AtomicU64,
    /// Ended after their processor was shut down; both SDKs discard those.
    pub dropped_after_shutdown: AtomicU64,
    pub lost_at_kill: AtomicU64,

    pub requests_sent: AtomicU64,
    pub requests_completed: AtomicU64,
    /// Arrivals turned away because the waiting line was full.
    pub requests_rejected: AtomicU64,
    pub requests_cancelled: AtomicU64,
    /// Arrivals after SIGTERM: the platform routes them elsewhere.
    pub requests_refused: AtomicU64,
    /// Waiting for a slot at SIGTERM and handed back to the platform's router.
    pub requests_returned: AtomicU64,
    /// Requests being served right now, and waiting for a slot.
    pub requests_in_flight: AtomicI64,
    pub requests_waiting: AtomicI64,
    /// Requests (running or waiting) that SIGKILL cut off.
    pub requests_cut_off: AtomicU64,
    /// Requests whose inference failed (the model could not run); their spans say why.
    pub requests_failed: AtomicU64,
    /// Spans started and not yet ended; at SIGKILL they become `spans_never_ended`.
    pub open_spans: AtomicI64,
    /// Spans of requests that SIGKILL cut off: never ended, so never created as far as
    /// any SDK knows (shown apart from the accounting identity).
    pub spans_never_ended: AtomicU64,

    /// HTTP attempts the exporter made (retries included) and their body bytes.
    pub http_attempts: AtomicU64,
    /// While the exporter waits to retry: when it will (record ms, as `f64` bits); 0
    /// otherwise. For the progress line at the end of a run.
    pub retry_at_ms: AtomicU64,
    pub http_bytes: AtomicU64,
}

/// A consistent-enough copy of the span counters, as the report and the UI show them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanCounts {
    pub created: u64,
    pub sampled: u64,
    pub not_sampled: u64,
    pub exported: u64,
    /// Filled in from the collector by whoever owns it.
    pub received: u64,
    pub dropped_queue_full: u64,
    pub dropped_oldest: u64,
    pub dropped_newest: u64,
    pub dropped_after_shutdown: u64,
    pub export_failed: u64,
    pub lost_at_kill: u64,
    /// In a processor's queue or in an export that has not finished.
    pub queued: u64,
}

impl SpanCounts {
    /// `created = not_sampled + exported + dropped_queue_full + export_failed +
    /// lost_at_kill + queued` (+ spans ended after shutdown, which both SDKs discard).
    /// Returns the difference, so a failing test can print it.
    pub fn unaccounted(&self) -> i64 {
        self.created as i64
            - (self.not_sampled
                + self.exported
                + self.dropped_queue_full
                + self.dropped_after_shutdown
                + self.export_failed
                + self.lost_at_kill
                + self.queued) as i64
    }
    /// Adds `other`'s counts (a fleet's totals).
    pub fn add(&mut self, other: &SpanCounts) {
        self.created += other.created;
        self.sampled += other.sampled;
        self.not_sampled += other.not_sampled;
        self.exported += other.exported;
        self.received += other.received;
        self.dropped_queue_full += other.dropped_queue_full;
        self.dropped_oldest += other.dropped_oldest;
        self.dropped_newest += other.dropped_newest;
        self.dropped_after_shutdown += other.dropped_after_shutdown;
        self.export_failed += other.export_failed;
        self.lost_at_kill += other.lost_at_kill;
        self.queued += other.queued;
    }

    /// Sampled spans that never reached the backend: dropped (queue full or ended after
    /// shutdown), failed to export, or lost at SIGKILL.
    pub fn lost(&self) -> u64 {
        self.dropped_queue_full
            + self.dropped_after_shutdown
            + self.export_failed
            + self.lost_at_kill
    }
}

/// How one export batch ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    InFlight,
    Ok,
    Failed,
    LostAtKill,
}

/// One call of `SpanExporter::export`: one batch, possibly several HTTP attempts.
#[derive(Clone, Debug, Serialize)]
pub struct ExportEvent {
    pub id: u64,
    /// Which processor generation sent it (a live reconfiguration starts a new one).
    pub generation: u64,
    pub start_ms: f64,
    pub end_ms: Option<f64>,
    pub spans: u64,
    /// Request bytes put on the wire over all attempts.
    pub bytes: u64,
    pub attempts: u32,
    /// Status of the last HTTP answer; `None` when no answer came (refused, timed out).
    pub last_status: Option<u16>,
    pub outcome: Outcome,
    /// Why it failed, in the exporter's words.
    pub error: Option<String>,
    /// The id of every HTTP attempt (`x-gracetrace-request-id`), so a SIGKILL can ask the
    /// collector whether an answer it never read had in fact been accepted.
    #[serde(skip)]
    pub request_ids: Vec<String>,
}

/// A change of settings while running, or a shutdown phase.
#[derive(Clone, Debug, Serialize)]
pub struct Marker {
    pub at_ms: f64,
    /// In words; a shutdown phase is its [`ShutdownPhase::name`].
    pub what: String,
}

impl Marker {
    /// The shutdown phase this marker records, if it records one.
    pub fn phase(&self) -> Option<ShutdownPhase> {
        ShutdownPhase::ALL
            .into_iter()
            .find(|p| p.name() == self.what)
    }
}

/// One row of the time series.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Sample {
    pub t_ms: f64,
    pub created: u64,
    pub queued: i64,
    pub exported: u64,
    pub dropped: u64,
    pub received: u64,
    pub requests_completed: u64,
}

#[derive(Debug, Default)]
struct Rings {
    exports: VecDeque<ExportEvent>,
    /// Exports that fell out of the ring (the report says so).
    exports_forgotten: u64,
    next_export_id: u64,
    markers: Vec<Marker>,
    samples: VecDeque<Sample>,
}

/// The shared log of one session (possibly several runners and reconfigurations).
#[derive(Debug)]
pub struct Record {
    start: Instant,
    pub counters: Counters,
    pub latency: Mutex<LatencyHistogram>,
    /// Serving time of completed requests (from taking a slot to the end, waiting in line
    /// excluded), apart for requests served with tracing on and off: the cost of tracing,
    /// and of flushing in every request, without the noise of the queue in front.
    pub service: Mutex<ServiceTimes>,
    rings: Mutex<Rings>,
    model: Mutex<Option<SharedModelStatus>>,
    last_image: Mutex<Option<LastImage>>,
}

impl Default for Record {
    fn default() -> Self {
        Self::new()
    }
}

impl Record {
    pub fn new() -> Self {
        Record {
            start: Instant::now(),
            counters: Counters::default(),
            latency: Mutex::new(LatencyHistogram::default()),
            service: Mutex::new(ServiceTimes::default()),
            rings: Mutex::new(Rings::default()),
            model: Mutex::new(None),
            last_image: Mutex::new(None),
        }
    }

    /// Connects the model service's status to this record (the `model` workload does it
    /// when its traffic starts).
    pub fn attach_model(&self, status: SharedModelStatus) {
        *self.model.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
    }

    /// The model's device and warm-up progress; `None` when no model serves this record.
    pub fn model_status(&self) -> Option<ModelStatus> {
        let shared = self
            .model
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        let status = shared.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Some(status)
    }

    /// Keeps the picture a request just produced (replacing the previous one).
    pub fn set_last_image(&self, image: LastImage) {
        *self.last_image.lock().unwrap_or_else(|e| e.into_inner()) = Some(image);
    }

    /// The last picture a request produced, if any.
    pub fn last_image(&self) -> Option<LastImage> {
        self.last_image
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Milliseconds since the record began: the one time axis of every view.
    pub fn now_ms(&self) -> f64 {
        self.ms_at(Instant::now())
    }

    pub fn ms_at(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.start).as_secs_f64() * 1000.0
    }

    fn rings(&self) -> MutexGuard<'_, Rings> {
        // A panic elsewhere while holding the lock leaves plain data behind; keep going.
        self.rings.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn span_counts(&self) -> SpanCounts {
        let c = &self.counters;
        // Read the buckets a span moves INTO before the ones it moves out of, so a span
        // in transit is counted twice rather than missed; at quiet moments it is exact.
        let exported = c.exported.load(Relaxed);
        let export_failed = c.export_failed.load(Relaxed);
        let lost_at_kill = c.lost_at_kill.load(Relaxed);
        let dropped_oldest = c.dropped_oldest.load(Relaxed);
        let dropped_newest = c.dropped_newest.load(Relaxed);
        let in_export = c.in_export.load(Relaxed).max(0) as u64;
        let queued = c.queued.load(Relaxed).max(0) as u64;
        let dropped_after_shutdown = c.dropped_after_shutdown.load(Relaxed);
        let not_sampled = c.not_sampled.load(Relaxed);
        let created = c.created.load(Relaxed);
        SpanCounts {
            created,
            sampled: created.saturating_sub(not_sampled),
            not_sampled,
            exported,
            received: 0,
            dropped_queue_full: dropped_oldest + dropped_newest,
            dropped_oldest,
            dropped_newest,
            dropped_after_shutdown,
            export_failed,
            lost_at_kill,
            queued: queued + in_export,
        }
    }

    /// Opens an export event; the returned id closes it with [`Record::export_finished`].
    pub fn export_started(&self, generation: u64, spans: u64) -> u64 {
        self.counters.queued.fetch_sub(spans as i64, Relaxed);
        self.counters.in_export.fetch_add(spans as i64, Relaxed);
        let start_ms = self.now_ms();
        let mut rings = self.rings();
        let id = rings.next_export_id;
        rings.next_export_id += 1;
        if rings.exports.len() == MAX_EXPORT_EVENTS {
            rings.exports.pop_front();
            rings.exports_forgotten += 1;
        }
        rings.exports.push_back(ExportEvent {
            id,
            generation,
            start_ms,
            end_ms: None,
            spans,
            bytes: 0,
            attempts: 0,
            last_status: None,
            outcome: Outcome::InFlight,
            error: None,
            request_ids: Vec::new(),
        });
        id
    }

    /// Notes that an HTTP attempt of an export is about to be sent.
    pub fn attempt_started(&self, id: u64, request_id: &str) {
        self.with_export(id, |e| e.request_ids.push(request_id.to_string()));
    }

    /// SIGKILL: settles every export still in flight. One whose request the backend had
    /// already accepted (`acknowledged` says so) counts as exported, since the spans did
    /// arrive; the rest are lost. Returns (spans lost, spans saved).
    pub fn settle_exports_at_kill(&self, acknowledged: &dyn Fn(&str) -> bool) -> (u64, u64) {
        let end_ms = self.now_ms();
        let (mut lost, mut saved) = (0, 0);
        let mut rings = self.rings();
        for e in rings
            .exports
            .iter_mut()
            .filter(|e| e.outcome == Outcome::InFlight)
        {
            e.end_ms = Some(end_ms);
            if e.request_ids.iter().any(|id| acknowledged(id)) {
                e.outcome = Outcome::Ok;
                saved += e.spans;
            } else {
                e.outcome = Outcome::LostAtKill;
                e.error = Some("cut off by SIGKILL".into());
                lost += e.spans;
            }
        }
        drop(rings);
        let c = &self.counters;
        c.in_export.fetch_sub((lost + saved) as i64, Relaxed);
        c.lost_at_kill.fetch_add(lost, Relaxed);
        c.exported.fetch_add(saved, Relaxed);
        (lost, saved)
    }

    /// The end of a run: settles the exports in flight whose request the backend had
    /// accepted (`acknowledged` says so) as exported, since the spans did arrive, and
    /// leaves the others in flight, still counted in `queued`. Returns the spans saved.
    pub fn settle_delivered_exports(&self, acknowledged: &dyn Fn(&str) -> bool) -> u64 {
        let end_ms = self.now_ms();
        let mut saved = 0;
        let mut rings = self.rings();
        for e in rings.exports.iter_mut().filter(|e| {
            e.outcome == Outcome::InFlight && e.request_ids.iter().any(|id| acknowledged(id))
        }) {
            e.end_ms = Some(end_ms);
            e.outcome = Outcome::Ok;
            saved += e.spans;
        }
        drop(rings);
        self.counters.in_export.fetch_sub(saved as i64, Relaxed);
        self.counters.exported.fetch_add(saved, Relaxed);
        saved
    }

    /// The HTTP attempts started so far by the oldest export still in flight (the one
    /// under way included), if one is.
    pub fn oldest_export_attempts(&self) -> Option<u32> {
        let rings = self.rings();
        rings
            .exports
            .iter()
            .find(|e| e.outcome == Outcome::InFlight)
            .map(|e| e.attempts.max(e.request_ids.len() as u32))
    }

    /// Notes that the exporter waits `wait` before its next retry (`None`: it stopped).
    pub fn retry_waits(&self, wait: Option<Duration>) {
        let at = wait.map_or(0, |w| (self.now_ms() + w.as_secs_f64() * 1000.0).to_bits());
        self.counters.retry_at_ms.store(at, Relaxed);
    }

    /// Seconds until the exporter's next retry, while it waits for one.
    pub fn next_retry_in_s(&self) -> Option<f64> {
        let at = self.counters.retry_at_ms.load(Relaxed);
        (at != 0).then(|| ((f64::from_bits(at) - self.now_ms()) / 1000.0).max(0.0))
    }

    /// Notes one HTTP attempt of an export in flight.
    pub fn export_attempt(&self, id: u64, bytes: u64, status: Option<u16>) {
        self.counters.http_attempts.fetch_add(1, Relaxed);
        self.counters.http_bytes.fetch_add(bytes, Relaxed);
        self.with_export(id, |e| {
            e.attempts += 1;
            e.bytes += bytes;
            e.last_status = status;
        });
    }

    /// Closes an export event and moves its spans to their final bucket: exported, or
    /// export_failed when `failure` says why it failed (in the exporter's words).
    pub fn export_finished(&self, id: u64, failure: Option<String>) {
        let end_ms = self.now_ms();
        let failed = failure.is_some();
        let mut spans = 0;
        let finished = self.with_export(id, |e| {
            if e.outcome != Outcome::InFlight {
                return false; // already settled (a kill got there first)
            }
            spans = e.spans;
            e.end_ms = Some(end_ms);
            e.outcome = if failed { Outcome::Failed } else { Outcome::Ok };
            e.error = failure;
            true
        });
        if finished == Some(true) {
            self.counters.in_export.fetch_sub(spans as i64, Relaxed);
            let bucket = if failed {
                &self.counters.export_failed
            } else {
                &self.counters.exported
            };
            bucket.fetch_add(spans, Relaxed);
        }
    }

    fn with_export<T>(&self, id: u64, f: impl FnOnce(&mut ExportEvent) -> T) -> Option<T> {
        let mut rings = self.rings();
        let first = rings.exports.front()?.id;
        let index = id.checked_sub(first)? as usize;
        rings.exports.get_mut(index).map(f)
    }

    /// Notes a step of the shutdown at the instant it happened (the same instant the
    /// shutdown report gives it, so the timeline and the JSON agree); [`Marker::phase`]
    /// reads it back.
    pub fn mark_phase(&self, phase: ShutdownPhase, at: Instant) {
        self.push_marker(self.ms_at(at), phase.name().into());
    }

    /// Notes a change of settings or another event, in words, now.
    pub fn mark(&self, what: impl Into<String>) {
        self.push_marker(self.now_ms(), what.into());
    }

    fn push_marker(&self, at_ms: f64, what: String) {
        self.rings().markers.push(Marker { at_ms, what });
    }

    /// Appends one row to the time series; `received` comes from the collector.
    pub fn sample(&self, received: u64) {
        let counts = self.span_counts();
        let sample = Sample {
            t_ms: self.now_ms(),
            created: counts.created,
            queued: counts.queued as i64,
            exported: counts.exported,
            dropped: counts.dropped_queue_full,
            received,
            requests_completed: self.counters.requests_completed.load(Relaxed),
        };
        let mut rings = self.rings();
        if rings.samples.len() == MAX_SAMPLES {
            rings.samples.pop_front();
        }
        rings.samples.push_back(sample);
    }

    pub fn exports(&self) -> (Vec<ExportEvent>, u64) {
        let rings = self.rings();
        (
            rings.exports.iter().cloned().collect(),
            rings.exports_forgotten,
        )
    }

    pub fn markers(&self) -> Vec<Marker> {
        self.rings().markers.clone()
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.rings().samples.iter().copied().collect()
    }
}
