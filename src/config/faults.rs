//! What the simulated backend does wrong: the fault settings a scenario, `--set`, the
//! window and `gracetrace collect` all share. The collector acts on them
//! (`collector/faults.rs`); here they are data (their ranges are the knob table's, checked
//! in `validate`), and the one rule both the
//! collector and the simulator apply to them: the ingestion quota's token bucket
//! ([`IngestBucket`]), so the two clocks cannot count a quota differently.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What the simulated backend does wrong. Every field is independent, and all of them can be
/// changed while a run is going (see `Collector::set_faults`), because the interesting question
/// is what the exporter does when the backend turns bad in the middle of a burst.
///
/// `#[serde(default)]` lets a scenario file name only the faults it uses; unknown keys are
/// rejected so that a misspelt fault is an error instead of silently healthy backend.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added before answering, because a slow backend is what makes batches pile up.
    pub latency_ms: u64,
    /// Uniform extra latency in `0..=jitter_ms`, so retries do not all line up.
    pub jitter_ms: u64,
    /// Fraction of requests answered with `error_status`, to exercise the retry rules.
    pub error_rate: f64,
    /// Status of injected errors; the SDKs retry some statuses and not others (429!).
    pub error_status: u16,
    /// `Retry-After` sent with injected 429 and 503, which the Rust exporter honours.
    pub retry_after_s: Option<u64>,
    /// Refuse connections outright (the listening socket is closed), like a backend that is down.
    pub outage: bool,
    /// Accept requests and never answer, like a backend behind a broken load balancer:
    /// only the exporter's own timeout gets it out.
    pub black_hole: bool,
    /// Spans per second the backend ingests before answering 429, like a vendor quota.
    pub ingest_limit_spans_per_s: Option<u64>,
}

impl Default for Faults {
    /// A healthy backend: the baseline every scenario is compared against.
    fn default() -> Self {
        Faults {
            latency_ms: 0,
            jitter_ms: 0,
            error_rate: 0.0,
            error_status: 503,
            retry_after_s: None,
            outage: false,
            black_hole: false,
            ingest_limit_spans_per_s: None,
        }
    }
}

impl Faults {
    /// The extra latency, in `0..=jitter_ms`, of a request whose jitter draw is `u` (in
    /// `[0, 1)`, from [`super::draws::unit`]).
    pub fn jitter_for(&self, u: f64) -> u64 {
        ((u * (self.jitter_ms as f64 + 1.0)) as u64).min(self.jitter_ms)
    }

    /// Whether a request whose error draw is `u` (in `[0, 1)`) gets the injected error:
    /// a rate of 1.0 always fires and 0.0 never does.
    pub fn injects_error(&self, u: f64) -> bool {
        self.error_rate > 0.0 && u < self.error_rate
    }
}

/// Default largest request body, on the wire and after gunzip: well above the SDK's
/// largest batch (512 spans is about 100 KB), far below what would hurt memory.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 16 << 20;
/// Default byte budget of the collector's recent-trace store: room for a few hundred
/// waterfall-sized traces, far below what would hurt a desktop.
pub const DEFAULT_MAX_STORED_BYTES: u64 = 64 << 20;
/// Default attributes, events and links kept per stored span: OpenTelemetry's default
/// span limits (`OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT` and the others are 128).
pub const DEFAULT_MAX_PER_SPAN: u64 = 128;
/// Default limit on open connections: far above the handful an exporter opens, and under
/// a process's usual file limit of 1024, so accept() never runs out of descriptors.
pub const DEFAULT_MAX_CONNECTIONS: u64 = 256;
/// Default time a client has to send a request's headers (and the longest a connection
/// may sit idle between requests): 30 s, hyper's own default.
pub const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = 30_000;

/// What the collector keeps and how many clients it serves: fixed when it starts (unlike
/// the faults), so that no input can take its memory or its descriptors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body, on the wire and after gunzip: one request cannot take the
    /// collector's memory (a gzip bomb included).
    pub max_body_bytes: u64,
    /// Bytes the recent-trace store may hold, counting names, attribute keys and values,
    /// events and links; the oldest traces go first. 0 keeps none.
    pub max_stored_bytes: u64,
    /// Attributes kept per stored span (and per event and link); the rest are counted in
    /// `/stats` and not stored.
    pub max_attributes_per_span: u64,
    /// Events kept per stored span.
    pub max_events_per_span: u64,
    /// Links kept per stored span.
    pub max_links_per_span: u64,
    /// Connections open at once. At the limit a new connection replaces the oldest one
    /// that has no request in progress; when every one has, the new one is closed.
    pub max_connections: u64,
    /// Time allowed to send a request's headers, and to sit idle between requests.
    pub header_read_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_stored_bytes: DEFAULT_MAX_STORED_BYTES,
            max_attributes_per_span: DEFAULT_MAX_PER_SPAN,
            max_events_per_span: DEFAULT_MAX_PER_SPAN,
            max_links_per_span: DEFAULT_MAX_PER_SPAN,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout_ms: DEFAULT_HEADER_READ_TIMEOUT_MS,
        }
    }
}

/// The ingestion quota (`collector.ingest_limit_spans_per_s`) as a token bucket: it holds
/// one second of the limit, refills at the limit per second, and a request of `spans` passes
/// when the bucket holds them (a request larger than the bucket passes only when it is
/// full, and leaves it in debt). Time is a [`Duration`] from any fixed origin, so the
/// collector runs it on real time and the simulator on virtual time.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct IngestBucket {
    /// The limit the bucket was filled for; a changed limit restarts it full.
    limit: Option<u64>,
    tokens: f64,
    last: Duration,
}

impl IngestBucket {
    /// Takes `spans` tokens if the quota `limit` allows it at `now`; `None` is no quota.
    pub fn try_take(&mut self, limit: Option<u64>, spans: u64, now: Duration) -> bool {
        let Some(rate) = limit else {
            self.limit = None;
            return true;
        };
        let capacity = rate as f64;
        if self.limit != limit {
            // A new limit is a new quota: start it full rather than carry over a debt.
            self.limit = limit;
            self.tokens = capacity;
            self.last = now;
        }
        let elapsed = now.saturating_sub(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * capacity).min(capacity);
        self.last = now;
        if self.tokens >= (spans as f64).min(capacity) {
            self.tokens -= spans as f64;
            true
        } else {
            false
        }
    }
}
