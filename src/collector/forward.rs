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
    pending: AtomicU64,
    pending_bytes: AtomicU64,
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
    counters: std::sync::Arc<Counters>,
}

/// Why forwarding could not be set up (the HTTP client could not be built).
#[derive(Debug, thiserror::Error)]
#[error("cannot forward to {url}: {source}")]
pub struct ForwardError {
    pub url: String,
    #[source]
    pub source: reqwest::Error,
}

/// A forwarder and the worker that sends its queue (spawn `Worker::run` on a runtime).
pub(crate) fn start(url: &str) -> Result<(Forwarder, Worker), ForwardError> {
    let client = reqwest::Client::builder()
        .timeout(SEND_TIMEOUT)
        .build()
        .map_err(|source| ForwardError {
            url: url.to_owned(),
            source,
        })?;
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
        stats.forward_pending = c.pending.load(Relaxed);
    }
}

impl Worker {
    /// Sends the queue in order, one batch at a time, until every forwarder is gone. No
    /// retries: the app's exporter already retried what the collector refused, and a
    /// batch the backend refuses is what this proxy is there to count.
    pub(crate) async fn run(mut self) {
        while let Some(batch) = self.rx.recv().await {
            let bytes = batch.body.len() as u64;
            let spans = batch.spans;
            let c = &self.counters;
            match self.send(batch).await {
                Ok(status) if status.is_success() => {
                    c.accepted.fetch_add(1, Relaxed);
                    c.spans_accepted.fetch_add(spans, Relaxed);
                }
                Ok(_) => {
                    c.refused.fetch_add(1, Relaxed);
                }
                Err(_) => {
                    c.failed.fetch_add(1, Relaxed);
                }
            }
            c.pending_bytes.fetch_sub(bytes, Relaxed);
            c.pending.fetch_sub(1, Relaxed);
        }
    }

    /// One POST; the answer's body is read so that the connection can be used again.
    async fn send(&self, batch: Batch) -> Result<http::StatusCode, reqwest::Error> {
        let mut request = self.client.post(&self.url).body(batch.body);
        if let Some(ct) = batch.content_type {
            request = request.header(http::header::CONTENT_TYPE, ct);
        }
        if let Some(ce) = batch.content_encoding {
            request = request.header(http::header::CONTENT_ENCODING, ce);
        }
        let response = request.send().await?;
        let status = response.status();
        response.bytes().await?;
        Ok(status)
    }
}
