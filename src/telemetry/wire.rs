//! The exporter's HTTP client: every attempt recorded, SIGKILL able to cut it off, and,
//! for the python profile, the Python exporter's retry rules.
//!
//! `opentelemetry-otlp` builds the OTLP/HTTP protobuf request and hands it to an
//! `HttpClient`; this is that client. For the rust and sdk profiles it makes exactly one
//! attempt and the exporter's own `RetryPolicy::recommended()` retries around it, as
//! stock. For the python profile the exporter's retries are disabled and this client
//! reproduces `opentelemetry-exporter-otlp-proto-http` 1.41
//! (`trace_exporter/__init__.py`, `OTLPSpanExporter.export` and `_export`), because that
//! loop is what keeps one batch busy for ~7 s against a failing backend: tries at about 0,
//! 1, 3 and 7 s (backoff `2**retry_num * random.uniform(0.8, 1.2)`), then it gives up
//! because the next 8 s wait would pass the 10 s `deadline_sec` (`OTLPSpanExporter.export`).
//! For the js profile it runs the retrying transport of `@opentelemetry/otlp-exporter-base`
//! 0.223.1 (`rules::js::JsRetry`): 429/502/503/504, timeouts and refused connections,
//! five retries at most, 1 s x 1.5 capped at 5 s with a 20% jitter, `Retry-After`
//! honoured, all within one deadline.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use http::{Request, Response};
use opentelemetry_http::{HttpClient, HttpError};

use crate::record::Record;
use crate::record::wire::{REQUEST_ID_HEADER, RUNNER_HEADER};

thread_local! {
    /// The export this thread is sending: the batch processors call `export` and block
    /// on it on one thread (`futures_executor::block_on`), and the client is called on
    /// that same thread, so each attempt is attributed to its own export even when the js
    /// rules send several batches at once, each from a thread of its own.
    static CURRENT_EXPORT: Cell<u64> = const { Cell::new(0) };
}

/// Marks the export this thread sends from now on (see `CURRENT_EXPORT`).
pub fn set_current_export(id: u64) {
    CURRENT_EXPORT.with(|c| c.set(id));
}

/// State shared by one exporter and its client: how many attempts were made and whether
/// the exporter is shutting down.
#[derive(Debug, Default)]
pub struct ExportProbe {
    /// Numbers every HTTP attempt, so each request id is unique.
    pub attempts: AtomicU64,
    /// Python's `_shutdown_in_progress`: aborts a retry wait.
    pub shutdown: AtomicBool,
}

/// A runner's life: SIGKILL flips it, and from then on nothing of the runner goes out.
///
/// The kill decides the account, never the race between threads: the exporter opens and
/// closes its export events only through [`RunnerLife::while_alive`], under the same
/// gate the kill flips the flag under. So an export is either booked by the exporter
/// before the kill, or left in flight for the kill to settle; never both, never neither,
/// however the threads are scheduled on a loaded machine.
///
/// Ending a span has a gate of its own, without a lock (producers must never wait): a
/// request thread counts a span as created and hands it to the processor only inside
/// [`RunnerLife::enter_end`], and the kill waits for the threads inside before it empties
/// the queues. So a span is either in the queue when the kill sweeps it (lost at kill), or
/// never ended (shown apart); never left "queued" in a dead process.
#[derive(Debug)]
pub struct RunnerLife {
    pub id: u64,
    killed: tokio::sync::watch::Sender<bool>,
    gate: std::sync::Mutex<()>,
    /// Threads between "counted as created" and "handed to the processor".
    ending: AtomicU64,
    /// The kill, for the span-end gate (SeqCst with `ending`: each side sees the other).
    dead: AtomicBool,
}

/// Held while a span is counted and handed to its processor; see [`RunnerLife`].
pub struct EndPass<'a>(Option<&'a RunnerLife>);

impl Drop for EndPass<'_> {
    fn drop(&mut self) {
        if let Some(life) = self.0 {
            life.ending.fetch_sub(1, SeqCst);
        }
    }
}

impl RunnerLife {
    pub fn new(id: u64) -> Self {
        RunnerLife {
            id,
            killed: tokio::sync::watch::Sender::new(false),
            gate: std::sync::Mutex::new(()),
            ending: AtomicU64::new(0),
            dead: AtomicBool::new(false),
        }
    }

    /// SIGKILL: once this returns, no export of this runner is opened or closed by the
    /// exporter any more (what is in flight belongs to the kill), and no span is being
    /// handed to a processor or will be.
    pub fn kill(&self) {
        {
            let _gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
            self.killed.send_replace(true);
        }
        self.dead.store(true, SeqCst);
        // A thread inside only counts a span and pushes it onto a lock-free queue: this
        // wait is microseconds, unless the thread was preempted there.
        while self.ending.load(SeqCst) > 0 {
            std::thread::yield_now();
        }
    }

    /// Permission to end a span (count it, hand it to the processor); `None` once the
    /// runner is killed: the span then stays open, as in a process that is gone. `life`
    /// is `None` outside a runner (`gracetrace infer`), where nothing can kill it.
    pub fn enter_end(life: Option<&RunnerLife>) -> Option<EndPass<'_>> {
        let Some(life) = life else {
            return Some(EndPass(None));
        };
        life.ending.fetch_add(1, SeqCst);
        let pass = EndPass(Some(life));
        (!life.dead.load(SeqCst)).then_some(pass)
    }

    /// Runs `book` unless the runner has been killed, atomically with respect to
    /// [`RunnerLife::kill`]. `book` must be quick: the kill waits for it.
    pub fn while_alive<T>(&self, book: impl FnOnce() -> T) -> Option<T> {
        let _gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        (!*self.killed.borrow()).then(book)
    }

    pub fn is_killed(&self) -> bool {
        *self.killed.borrow()
    }
}

/// Which retry loop this client runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryRules {
    /// One attempt per call; the OTLP exporter's `RetryPolicy` retries (rust, sdk).
    Single,
    /// `OTLPSpanExporter.export` of opentelemetry-exporter-otlp-proto-http 1.41.
    Python,
    /// `RetryingTransport.send` of @opentelemetry/otlp-exporter-base 0.223.1.
    Js,
}

use super::rules::js::JsRetry;
use super::rules::retry::{
    Answer, Next, PYTHON_MAX_TRIES, python_backoff, python_backoff_factor, python_next,
};
use crate::config::draws::Sequence;

#[derive(Debug)]
pub struct WireClient {
    pub http: reqwest::Client,
    /// `exporter.headers`: put on every attempt after the exporter's own, so they win over
    /// what opentelemetry-otlp read from `OTEL_EXPORTER_OTLP_HEADERS` by itself.
    pub headers: http::HeaderMap,
    pub runtime: tokio::runtime::Handle,
    pub rules: RetryRules,
    /// Python and js: the deadline of one `export()` across all tries; single: per attempt.
    pub timeout: Duration,
    pub record: Arc<Record>,
    pub probe: Arc<ExportProbe>,
    pub life: Arc<RunnerLife>,
    /// The python backoff draws, seeded by the scenario: the n-th failed try backs off by
    /// the n-th draw, as in the simulator (`config::draws`).
    pub backoff: Sequence,
}

/// How one attempt ended when no HTTP answer came.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("runner was killed (SIGKILL): the request was cut off")]
    Killed,
    #[error("connection error: {0}")]
    Connection(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

impl WireClient {
    /// One HTTP request, recorded, abandoned at once if the runner is killed.
    async fn attempt(
        &self,
        export_id: u64,
        request: &Request<Bytes>,
        timeout: Duration,
    ) -> Result<Response<Bytes>, AttemptError> {
        let mut killed = self.life.killed.subscribe();
        if *killed.borrow_and_update() {
            return Err(AttemptError::Killed);
        }
        let attempt = self.probe.attempts.fetch_add(1, Relaxed);
        let request_id = format!("{}-{export_id}-{attempt}", self.life.id);
        self.record.attempt_started(export_id, &request_id);
        let body = request.body().clone();
        let bytes = body.len() as u64;
        let send = self
            .http
            .request(request.method().clone(), request.uri().to_string())
            .headers(request.headers().clone())
            .headers(self.headers.clone())
            .header(RUNNER_HEADER, self.life.id)
            .header(REQUEST_ID_HEADER, request_id)
            .timeout(timeout)
            .body(body)
            .send();
        let answer = async {
            let response = send.await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, headers, body))
        };
        let result = tokio::select! {
            result = answer => result,
            _ = killed.wait_for(|k| *k) => return Err(AttemptError::Killed),
        };
        match result {
            Ok((status, headers, body)) => {
                self.record
                    .export_attempt(export_id, bytes, Some(status.as_u16()));
                let mut response = Response::new(body);
                *response.status_mut() = status;
                *response.headers_mut() = headers;
                Ok(response)
            }
            Err(error) => {
                self.record.export_attempt(export_id, bytes, None);
                if error.is_timeout() {
                    Err(AttemptError::Timeout(timeout))
                } else {
                    Err(AttemptError::Connection(crate::config::tls::error_text(
                        &error,
                    )))
                }
            }
        }
    }

    /// `OTLPSpanExporter.export` (l. 174-224) with `_export` (l. 137-172).
    async fn send_python(
        &self,
        export_id: u64,
        request: &Request<Bytes>,
    ) -> Result<Response<Bytes>, HttpError> {
        let deadline = Instant::now() + self.timeout;
        for retry_num in 0..PYTHON_MAX_TRIES {
            let remaining = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            let mut result = self.attempt(export_id, request, remaining).await;
            if matches!(result, Err(AttemptError::Connection(_))) {
                // l. 156-172: a ConnectionError is retried once at once, same timeout.
                result = self.attempt(export_id, request, remaining).await;
            }
            let answer = match &result {
                Ok(response) if response.status().is_success() => return ok(result),
                Ok(response) => Answer::Status(response.status().as_u16(), None),
                Err(AttemptError::Connection(_)) => Answer::Connection,
                Err(AttemptError::Timeout(_) | AttemptError::Killed) => Answer::Timeout,
            };
            // l. 183: backoff_seconds = 2**retry_num * random.uniform(0.8, 1.2). Drawn
            // here, once per failed try, so the draws line up with the simulator's.
            let backoff = python_backoff(retry_num, python_backoff_factor(self.backoff.next()));
            let left = deadline.saturating_duration_since(Instant::now());
            let shutting_down = self.probe.shutdown.load(Relaxed);
            // l. 201-214, the one rule book the simulator follows too.
            let Next::RetryAfter(wait) =
                python_next(retry_num, answer, backoff, left, shutting_down)
            else {
                return ok(result);
            };
            // l. 220: self._shutdown_in_progress.wait(backoff_seconds)
            self.record.retry_waits(Some(wait));
            let stopped = self.wait_unless_stopped(wait, true).await;
            self.record.retry_waits(None);
            if stopped {
                return ok(result);
            }
        }
        Err("export failed after all retries".into())
    }

    /// `RetryingTransport.send` (`retrying-transport.ts` l. 42-73): the deadline is taken
    /// at the first attempt; each retry's own timeout is what was left of it before its
    /// wait (l. 61, l. 72). The exporter's shutdown does not cut a wait short: it awaits
    /// every export in flight (`otlp-export-delegate.ts` `shutdown`).
    async fn send_js(
        &self,
        export_id: u64,
        request: &Request<Bytes>,
    ) -> Result<Response<Bytes>, HttpError> {
        let deadline = Instant::now() + self.timeout;
        let mut retry = JsRetry::default();
        let mut timeout = self.timeout;
        loop {
            let result = self.attempt(export_id, request, timeout).await;
            let answer = match &result {
                Ok(response) if response.status().is_success() => return ok(result),
                Ok(response) => Answer::Status(
                    response.status().as_u16(),
                    retry_after_seconds(response.headers()),
                ),
                Err(AttemptError::Connection(_)) => Answer::Connection,
                Err(AttemptError::Timeout(_)) => Answer::Timeout,
                Err(AttemptError::Killed) => return ok(result),
            };
            let left = deadline.saturating_duration_since(Instant::now());
            // One draw per failed attempt, as the simulator draws (`sim/exporter.rs`).
            let Next::RetryAfter(wait) = retry.after_failure(answer, left, self.backoff.next())
            else {
                return ok(result);
            };
            self.record.retry_waits(Some(wait));
            let stopped = self.wait_unless_stopped(wait, false).await;
            self.record.retry_waits(None);
            if stopped {
                return ok(result);
            }
            timeout = left.max(Duration::from_millis(1));
        }
    }

    /// Sleeps, but returns `true` early if the runner dies, or, where `on_shutdown` says
    /// so, the exporter shuts down (python's `_shutdown_in_progress`).
    async fn wait_unless_stopped(&self, wait: Duration, on_shutdown: bool) -> bool {
        let until = Instant::now() + wait;
        loop {
            if (on_shutdown && self.probe.shutdown.load(Relaxed)) || self.life.is_killed() {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            tokio::time::sleep(left.min(Duration::from_millis(10))).await;
        }
    }
}

/// `Retry-After` in whole seconds, as `parseRetryAfterToMills` reads it
/// (`is-export-retryable.ts` l. 15-24); a date is left to the backoff.
fn retry_after_seconds(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A non-2xx response is still a response: the OTLP exporter turns it into an error.
fn ok(result: Result<Response<Bytes>, AttemptError>) -> Result<Response<Bytes>, HttpError> {
    result.map_err(|e| Box::new(e) as HttpError)
}

#[async_trait]
impl HttpClient for WireClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        // The batch processors call `export` on plain threads through
        // `futures_executor::block_on`; reqwest needs a Tokio reactor, so the work is run
        // on this client's runtime and the calling thread blocks, as it does upstream.
        let export_id = CURRENT_EXPORT.with(Cell::get);
        let work = async {
            match self.rules {
                RetryRules::Single => ok(self.attempt(export_id, &request, self.timeout).await),
                RetryRules::Python => self.send_python(export_id, &request).await,
                RetryRules::Js => self.send_js(export_id, &request).await,
            }
        };
        self.runtime.block_on(work)
    }
}
