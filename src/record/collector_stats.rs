//! The collector's counters as the record and the report carry them. The collector
//! (`crate::collector`) fills them; they live here so the report, which sits below the
//! collector, can hold them.

use std::collections::BTreeMap;

/// The collector's counters. Exact: `spans_received` is the sum of the spans of all requests
/// accepted. Every export (OTLP/HTTP or gRPC) ends up in exactly one of
/// `requests_accepted`, `requests_rejected`, `requests_dropped_killed_runner`,
/// `requests_abandoned`, or is still counted in `requests_in_flight`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct CollectorStats {
    /// Spans in requests answered 2xx, duplicates included: what the backend ingested.
    pub spans_received: u64,
    /// Every export that reached the handler: `POST /v1/traces`, and gRPC's `Export`.
    pub requests: u64,
    /// Of those, the ones that came by OTLP/gRPC.
    pub requests_grpc: u64,
    /// Answered 2xx.
    pub requests_accepted: u64,
    /// Answered 4xx/5xx for a reason in `rejected_by_reason` (not killed-runner drops).
    pub requests_rejected: u64,
    /// Requests of a killed runner that had not been counted at the kill (answered 503).
    pub requests_dropped_killed_runner: u64,
    /// Spans in those requests (0 for a body that could not be decoded).
    pub spans_dropped_killed_runner: u64,
    /// Spans whose (trace id, span id) was already received, within the last
    /// `DUPLICATE_WINDOW` (1,000,000) span ids: retries of requests that did arrive.
    pub duplicates: u64,
    /// Body bytes as sent on the wire (before gunzip), of every request.
    pub bytes_received: u64,
    /// Distinct trace ids among accepted spans, within the last `TRACE_WINDOW` trace ids.
    pub traces_seen: u64,
    /// Rejections by reason: `undecodable`, `too_large`, `empty`, `bad_gzip`, `bad_id`,
    /// `bad_header`, `body_read_error`, `method_not_allowed`, `unsupported_content_type`,
    /// `unsupported_content_encoding`, `rate_limited`, `timed_out`, `memory_limited`,
    /// `injected_<status>`.
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Spans in decodable requests that were rejected (injected error, rate limit): what the
    /// exporter will retry or lose.
    pub spans_rejected: u64,
    /// Requests whose connection closed before an answer (client timeout on a black hole or
    /// latency, outage start, shutdown): neither counted nor answered.
    pub requests_abandoned: u64,
    /// Requests being read, held by a fault, or decided right now.
    pub requests_in_flight: u64,
    /// Spans of accepted requests that the recent-trace store did not keep (its byte
    /// budget spent by the request, a trace's span limit reached, a span larger than the
    /// budget). They are counted in `spans_received` like every other.
    pub spans_not_stored: u64,
    /// Attributes not stored past `max_attributes_per_span`, on stored spans and on
    /// their stored events and links.
    pub attributes_not_stored: u64,
    /// Events not stored past `max_events_per_span`, on stored spans.
    pub events_not_stored: u64,
    /// Links not stored past `max_links_per_span`, on stored spans.
    pub links_not_stored: u64,
    /// Stored texts (attribute values, keys, names) cut at 4096 bytes.
    pub texts_cut: u64,
    /// Bytes the recent-trace store holds now (at most `max_stored_bytes`).
    pub stored_bytes: u64,
    /// Requests whose body did not arrive whole within `body_read_timeout_ms`: answered
    /// 408 (DEADLINE_EXCEEDED over gRPC), also under `timed_out` in `rejected_by_reason`.
    pub requests_timed_out: u64,
    /// Requests refused because the bodies in flight held `max_inflight_body_bytes`:
    /// answered 503 with `Retry-After: 1` (RESOURCE_EXHAUSTED with `RetryInfo` over gRPC),
    /// also under `memory_limited` in `rejected_by_reason`.
    pub requests_refused_memory: u64,
    /// Bytes of request bodies held now, read and not yet decided (at most
    /// `max_inflight_body_bytes`).
    pub body_bytes_in_flight: u64,
    /// Connections open now (at most `max_connections`).
    pub connections_open: u64,
    /// Connections closed to make room for a new one at `max_connections`: the oldest
    /// that had no request in progress (idle, or still sending its headers).
    pub connections_replaced: u64,
    /// New connections closed at once because every open one had a request in progress.
    pub connections_refused: u64,
    /// Connections closed because their headers did not arrive within
    /// `header_read_timeout_ms`.
    pub connections_timed_out: u64,
    /// Connections closed at `max_connections` to make room for a new one because their
    /// request's body was arriving slower than 32 KiB/s (a client sending a byte now and
    /// then); their request counts as abandoned.
    pub connections_slow_closed: u64,
    /// Where accepted batches are forwarded (`collector.forward`); absent when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward_url: Option<String>,
    /// Forwarded batches the backend answered 2xx, and their spans.
    pub forward_accepted: u64,
    pub forward_spans_accepted: u64,
    /// Forwarded batches the backend answered with an error status.
    pub forward_refused: u64,
    /// Forwards with no answer: refused connection, reset, or no answer in 10 s.
    pub forward_failed: u64,
    /// Forward attempts repeated after a retryable failure (no connection, 429, 502, 503,
    /// 504), up to 3 per batch; a batch is counted once, by its last attempt.
    pub forward_retries: u64,
    /// Accepted batches not forwarded because the queue was full (a backend far slower
    /// than the app). Every accepted batch is accepted, refused, failed, dropped or pending.
    pub forward_dropped: u64,
    /// Batches queued or being sent now.
    pub forward_pending: u64,
    /// What became of the last batch that was refused or failed: the backend's status
    /// (`refused: 401 Unauthorized`) or the cause (`...: invalid peer certificate:
    /// UnknownIssuer`). Never a header value. Absent until one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_last_error: Option<String>,
}
