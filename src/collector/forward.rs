//! Forwarding (`collector.forward`, `collect --forward URL`): every batch the collector
//! accepted is passed on to a real backend over OTLP/HTTP, so gracetrace can sit between an
//! app and its backend as a counting, fault-injecting proxy.
//!
//! The raw body is sent as it arrived (same bytes, Content-Type and Content-Encoding): it
//! was already decoded once to be counted, and re-encoding it could only change it. The
//! intake never waits for the backend: an accepted batch is queued (bounded in batches and
//! in bytes) and a worker task sends the queue in order; a batch that does not fit is
//! dropped and counted. What the backend answers is counted apart (`forward_*` in `/stats`)
//! and never changes what the app was answered or `spans_received`.
//!
//! An https backend is reached with rustls and the system's roots, plus the CA file of
//! `collector.forward_ca_file`; `collector.forward_headers` go with every batch (how a
//! hosted backend knows who is sending). A certificate the backend shows and we cannot
//! verify is a failure that is not retried (the next try meets the same certificate),
//! and the last failure's cause is kept in `forward_last_error`.
//!
//! A failure that says "try again" (no connection, 429, 502, 503, 504: the statuses the
//! OTLP/HTTP specification calls retryable) is retried a few times with a doubling,
//! jittered backoff, or after the backend's `Retry-After` up to a cap, so that a backend
//! restarting or shedding load for a moment does not lose what the app was told had
//! arrived. The retries are bounded, so a dead backend holds the queue a few seconds per
//! batch, not forever.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use tokio::sync::mpsc;

use crate::record::CollectorStats;

/// Batches waiting to be forwarded; one more is dropped (a backend far slower than the app).
const QUEUE_BATCHES: usize = 1024;
/// Bytes waiting to be forwarded: bounds the memory a stalled backend can make us hold.
const QUEUE_BYTES: u64 = 256 << 20;
/// How long one forward may take, connect to answer, before it counts as failed: a backend
/// that never answers must not hold the queue forever.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per batch, the first included.
const MAX_ATTEMPTS: u32 = 4;
/// The wait before the first retry; it doubles for each one after (200, 400, 800 ms), each
/// drawn within ±20 %, the jitter of the Python exporters' own backoff (opentelemetry-
/// exporter-otlp-proto-grpc 1.41.0, exporter.py line 432). Shorter than theirs (1, 2, 4 s):
/// one batch's retries hold up the whole queue behind it.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The longest `Retry-After` honoured: a backend asking for more is retried after this, so
/// one batch never holds the queue (and `collect`'s drain at exit) much longer.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);

/// One accepted batch, as it arrived.
#[derive(Debug)]
pub(crate) struct Batch {
    pub body: Bytes,
    pub content_type: Option<HeaderValue>,
    pub content_encoding: Option<HeaderValue>,
    pub spans: u64,
}

/// What happened to forwarded batches. Every batch offered ends in exactly one of
/// accepted, refused, failed or dropped, or is still pending.
#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    spans_accepted: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    retries: AtomicU64,
    pending: AtomicU64,
    pending_bytes: AtomicU64,
    /// Why the last failed batch failed (never a header value: see `config::tls`).
    last_error: std::sync::Mutex<Option<String>>,
}

/// The intake's side of forwarding: offers batches to the worker without waiting.
#[derive(Debug)]
pub(crate) struct Forwarder {
    url: String,
    tx: mpsc::Sender<Batch>,
    counters: std::sync::Arc<Counters>,
}

/// The worker's side: the queue and the HTTP client.
pub(crate) struct Worker {
    url: String,
    rx: mpsc::Receiver<Batch>,
    client: reqwest::Client,
    /// `collector.forward_headers`, marked sensitive.
    headers: http::HeaderMap,
    counters: std::sync::Arc<Counters>,
}

/// Why forwarding could not be set up: the CA file, or the HTTP client.
#[derive(Debug, thiserror::Error)]
#[error("cannot forward to {url}: {source}")]
pub struct ForwardError {
    pub url: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// A forwarder and the worker that sends its queue (spawn `Worker::run` on a runtime).
pub(crate) fn start(
    url: &str,
    config: &super::CollectorConfig,
) -> Result<(Forwarder, Worker), ForwardError> {
    let failed = |source: Box<dyn std::error::Error + Send + Sync>| ForwardError {
        url: url.to_owned(),
        source,
    };
    let client = crate::config::tls::client_builder(config.forward_ca_file.as_deref())
        .map_err(|e| failed(e.into()))?
        .timeout(SEND_TIMEOUT)
        .build()
        .map_err(|e| failed(e.into()))?;
    let (tx, rx) = mpsc::channel(QUEUE_BATCHES);
    let counters = std::sync::Arc::new(Counters::default());
    let forwarder = Forwarder {
        url: url.to_owned(),
        tx,
        counters: counters.clone(),
    };
    let worker = Worker {
        url: url.to_owned(),
        rx,
        client,
        headers: config.forward_headers.to_header_map(),
        counters,
    };
    Ok((forwarder, worker))
}

impl Forwarder {
    /// Queues an accepted batch, or counts it dropped when the queue is full. Never waits.
    pub(crate) fn offer(&self, batch: Batch) {
        let c = &self.counters;
        let bytes = batch.body.len() as u64;
        if c.pending_bytes.load(Relaxed).saturating_add(bytes) > QUEUE_BYTES {
            c.dropped.fetch_add(1, Relaxed);
            return;
        }
        // Counted pending before it is sent, so the worker's decrement never comes first.
        c.pending.fetch_add(1, Relaxed);
        c.pending_bytes.fetch_add(bytes, Relaxed);
        if self.tx.try_send(batch).is_err() {
            c.pending.fetch_sub(1, Relaxed);
            c.pending_bytes.fetch_sub(bytes, Relaxed);
            c.dropped.fetch_add(1, Relaxed);
        }
    }

    /// Batches queued or being sent now.
    pub(crate) fn pending(&self) -> u64 {
        self.counters.pending.load(Relaxed)
    }

    /// Writes the `forward_*` counters into a stats snapshot.
    pub(crate) fn fill(&self, stats: &mut CollectorStats) {
        let c = &self.counters;
        stats.forward_url = Some(self.url.clone());
        stats.forward_accepted = c.accepted.load(Relaxed);
        stats.forward_spans_accepted = c.spans_accepted.load(Relaxed);
        stats.forward_refused = c.refused.load(Relaxed);
        stats.forward_failed = c.failed.load(Relaxed);
        stats.forward_dropped = c.dropped.load(Relaxed);
        stats.forward_retries = c.retries.load(Relaxed);
        stats.forward_pending = c.pending.load(Relaxed);
        stats.forward_last_error = c
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
    }
}

/// How one attempt ended.
#[derive(Debug)]
enum Attempt {
    /// The backend answered this status, with its `Retry-After` when it sent one.
    Answered(http::StatusCode, Option<Duration>),
    /// No answer; `retryable` when no connection was made (nothing can have arrived) and
    /// the next try may fare better (not a refused certificate); `why`, the cause.
    Failed { retryable: bool, why: String },
}

impl Attempt {
    /// Whether to try again, and after how long a `Retry-After` asked for (capped).
    fn retry(&self) -> Option<Option<Duration>> {
        match self {
            Attempt::Answered(status, after) => matches!(status.as_u16(), 429 | 502 | 503 | 504)
                .then(|| after.map(|a| a.min(MAX_RETRY_AFTER))),
            Attempt::Failed { retryable, .. } => retryable.then_some(None),
        }
    }
}

/// The wait before retry number `retry` (1 for the first): the backend's `Retry-After`
/// when it gave one, else [`FIRST_BACKOFF`] doubled per retry, within ±20 %.
fn backoff(retry: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(after) = retry_after {
        return after;
    }
    let base = FIRST_BACKOFF.saturating_mul(1 << retry.saturating_sub(1).min(16));
    base.mul_f64(rand::Rng::random_range(&mut rand::rng(), 0.8..=1.2))
}

/// `Retry-After` in seconds (an HTTP date is not honoured: the backoff applies).
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

impl Worker {
    /// Sends the queue in order, one batch at a time (retries included), until every
    /// forwarder is gone.
    pub(crate) async fn run(mut self) {
        while let Some(batch) = self.rx.recv().await {
            let bytes = batch.body.len() as u64;
            let spans = batch.spans;
            let c = &self.counters;
            match self.send_with_retries(batch).await {
                Attempt::Answered(status, _) if status.is_success() => {
                    c.accepted.fetch_add(1, Relaxed);
                    c.spans_accepted.fetch_add(spans, Relaxed);
                }
                Attempt::Answered(status, _) => {
                    c.refused.fetch_add(1, Relaxed);
                    *c.last_error.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(format!("refused: {status}"));
                }
                Attempt::Failed { why, .. } => {
                    c.failed.fetch_add(1, Relaxed);
                    *c.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
                }
            }
            c.pending_bytes.fetch_sub(bytes, Relaxed);
            c.pending.fetch_sub(1, Relaxed);
        }
    }

    /// Up to [`MAX_ATTEMPTS`] sends of one batch; the last attempt's outcome.
    async fn send_with_retries(&self, batch: Batch) -> Attempt {
        let mut attempt = 1;
        loop {
            let outcome = self.send(&batch).await;
            let retry = match outcome.retry() {
                Some(after) if attempt < MAX_ATTEMPTS => after,
                _ => return outcome,
            };
            tokio::time::sleep(backoff(attempt, retry)).await;
            self.counters.retries.fetch_add(1, Relaxed);
            attempt += 1;
        }
    }

    /// One POST; the answer's body is read so that the connection can be used again.
    async fn send(&self, batch: &Batch) -> Attempt {
        // A clone of `Bytes` shares the buffer: a retry sends the same bytes, not a copy.
        let mut request = self
            .client
            .post(&self.url)
            .headers(self.headers.clone())
            .body(batch.body.clone());
        if let Some(ct) = &batch.content_type {
            request = request.header(http::header::CONTENT_TYPE, ct);
        }
        if let Some(ce) = &batch.content_encoding {
            request = request.header(http::header::CONTENT_ENCODING, ce);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                let certificate = crate::config::tls::is_certificate_error(&e);
                return Attempt::Failed {
                    retryable: e.is_connect() && !certificate,
                    why: crate::config::tls::error_text(&e),
                };
            }
        };
        let (status, after) = (response.status(), retry_after(response.headers()));
        match response.bytes().await {
            Ok(_) => Attempt::Answered(status, after),
            // The answer was cut off: the batch may have been taken, so no retry.
            Err(e) => Attempt::Failed {
                retryable: false,
                why: crate::config::tls::error_text(&e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What is retried: no connection and the four "try again" statuses; a `Retry-After`
    /// is honoured up to the cap; without one the backoff doubles, jittered.
    #[test]
    fn retryable_failures_and_their_waits() {
        use http::StatusCode;
        let answered = |s: u16, after: Option<u64>| {
            let status = StatusCode::from_u16(s).unwrap();
            Attempt::Answered(status, after.map(Duration::from_secs)).retry()
        };
        for s in [429, 502, 503, 504] {
            assert_eq!(answered(s, None), Some(None), "{s}");
        }
        for s in [200, 400, 401, 404, 413, 500, 501] {
            assert_eq!(answered(s, Some(1)), None, "{s}");
        }
        assert_eq!(answered(503, Some(2)), Some(Some(Duration::from_secs(2))));
        assert_eq!(answered(429, Some(3600)), Some(Some(MAX_RETRY_AFTER)));
        let failed = |retryable| Attempt::Failed {
            retryable,
            why: String::new(),
        };
        assert_eq!(failed(true).retry(), Some(None));
        assert_eq!(failed(false).retry(), None);

        assert_eq!(
            backoff(3, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        for (retry, base_ms) in [(1, 200.0), (2, 400.0), (3, 800.0)] {
            let ms = backoff(retry, None).as_secs_f64() * 1000.0;
            assert!(
                (0.8 * base_ms..=1.2 * base_ms).contains(&ms),
                "{retry}: {ms}"
            );
        }
        let mut headers = http::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static(" 7 "));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            http::header::RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
