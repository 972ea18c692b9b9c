//! The HTTP routes: `POST /v1/traces` (the OTLP receiver, protobuf or JSON), `GET /stats`,
//! `GET /traces`, and the export path every protocol shares (`intake`).
//!
//! An export (`/v1/traces`, or gRPC's `Export`) goes through, in order: head checks,
//! reading the body (bounded), black hole, latency, then one locked decision in
//! `Store::decide` (killed runner, bad input, injected error, ingestion limit, count). The body is read before the waits so that the
//! bytes are on our side when a fault holds the answer back, as with a real slow backend,
//! and so that hyper notices a client that gives up (it watches for EOF only once the body
//! has been read) and drops the waiting request.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::{any, get};
use bytes::{Bytes, BytesMut};
use http::{HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;

use super::Shared;
use super::decode::{self, Decoded, Reason, Rejection, RequestMeta};
use super::forward::Batch;
use super::store::{Counters, Verdict, sorted};
use super::stored::StoredTrace;

/// After a body passes `max_body_bytes`, this much more is read and thrown away before the
/// connection is closed. Closing a socket with unread data makes the kernel send RST, and the
/// client then often loses our 413 before reading it; draining lets it see the reason.
const DRAIN_LIMIT_BYTES: usize = 64 << 20;
/// Upper bound on time spent draining an oversize body, for the same reason.
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// Builds the router with the collector's shared state.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/traces", any(traces))
        .route("/stats", get(stats))
        .route("/traces", get(recent_traces))
        .with_state(shared)
}

/// Counts a request as in flight while it lives; if the handler future is dropped before it
/// answered (client gave up, outage or shutdown closed the connection), it counts as
/// abandoned. This keeps `requests = accepted + rejected + dropped + abandoned + in flight`.
struct InFlight<'a> {
    counters: &'a Counters,
    answered: bool,
}

impl<'a> InFlight<'a> {
    fn enter(counters: &'a Counters) -> Self {
        counters
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        counters
            .requests_in_flight
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        InFlight {
            counters,
            answered: false,
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        self.counters.requests_in_flight.fetch_sub(1, Relaxed);
        if !self.answered {
            self.counters.requests_abandoned.fetch_add(1, Relaxed);
        }
    }
}

async fn traces(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let (meta, head_problem) = decode::check_head(&parts);
    let verdict = intake(&shared, &meta, head_problem, body, |bytes| {
        // The raw body is forwarded as it arrived (a reference count, not a copy).
        let header = |name| parts.headers.get(name).cloned();
        let batch = Batch {
            body: bytes.clone(),
            content_type: header(header::CONTENT_TYPE),
            content_encoding: header(header::CONTENT_ENCODING),
            spans: 0,
        };
        decode::decode(bytes, &meta, shared.max_body_bytes, &shared.caps).map(|d| (d, batch))
    })
    .await;
    respond(verdict, meta.json)
}

/// One export, whichever protocol brought it (`/v1/traces` here, gRPC in `grpc`), from
/// its parsed head to the verdict: reading the body (bounded, and even when the head is
/// already bad: see DRAIN_LIMIT_BYTES), the fault waits, `open` (the body to a request
/// and the batch to forward), the decision, and the forward of an accepted batch. Counted
/// in flight until it returns; dropped before (the client gave up), it is abandoned.
pub(crate) async fn intake(
    shared: &Shared,
    meta: &RequestMeta,
    head_problem: Option<Rejection>,
    body: Body,
    open: impl FnOnce(Bytes) -> Result<(Decoded, Batch), Rejection>,
) -> Verdict {
    let mut guard = InFlight::enter(&shared.store.counters);
    let body = read_body(shared, body).await;

    wait_for_faults(shared, meta.runner).await;

    let opened = match head_problem {
        Some(problem) => Err(problem),
        None => body.and_then(open),
    };
    let (input, batch) = match opened {
        Err(problem) => (Err(problem), None),
        Ok((decoded, batch)) => {
            let spans = decoded.spans;
            (Ok(decoded), Some(Batch { spans, ..batch }))
        }
    };
    // Read the faults at decision time: a change made during the latency applies.
    let faults = shared.faults.borrow().clone();
    let verdict = shared.store.decide(meta, input, &faults, &shared.draws);
    if let (Verdict::Accepted, Some(forward), Some(batch)) = (&verdict, &shared.forward, batch) {
        forward.offer(batch);
    }
    guard.answered = true;
    verdict
}

/// Reads the body up to `max_body_bytes`, counting every byte that arrives.
async fn read_body(shared: &Shared, mut body: Body) -> Result<Bytes, Rejection> {
    let max = shared.max_body_bytes;
    let counters = &shared.store.counters;
    let mut buf = BytesMut::new();
    let mut total: usize = 0;
    let mut draining_until = None;
    loop {
        let frame = match draining_until {
            None => body.frame().await,
            Some(deadline) => match tokio::time::timeout_at(deadline, body.frame()).await {
                Ok(frame) => frame,
                Err(_) => break,
            },
        };
        let data = match frame {
            None => break,
            Some(Err(e)) => {
                return Err(Rejection::new(
                    StatusCode::BAD_REQUEST,
                    Reason::BodyReadError,
                    format!("error while reading the body: {e}"),
                ));
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_trailers) => continue,
            },
        };
        counters.add_bytes(data.len());
        total = total.saturating_add(data.len());
        if draining_until.is_none() {
            if total > max {
                buf = BytesMut::new();
                draining_until = Some(tokio::time::Instant::now() + DRAIN_TIME);
            } else {
                buf.extend_from_slice(&data);
            }
        }
        if draining_until.is_some() && total - max > DRAIN_LIMIT_BYTES {
            break;
        }
    }
    if draining_until.is_some() {
        return Err(Rejection::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Reason::TooLarge,
            format!("body exceeds the limit of {max} bytes"),
        ));
    }
    Ok(buf.freeze())
}

/// Holds the request while the black hole is on, then for the injected latency. Returns
/// early if the request's runner is killed: its answer no longer matters, and answering at
/// once frees the connection.
async fn wait_for_faults(shared: &Shared, runner: Option<u64>) {
    let killed = wait_killed(shared, runner);
    tokio::pin!(killed);
    tokio::select! {
        _ = wait_black_hole_off(shared) => {}
        _ = &mut killed => return,
    }
    let jitter = shared.draws.jitter.next();
    let delay = shared.faults.borrow().delay_for(jitter);
    if !delay.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = &mut killed => {}
        }
    }
}

async fn wait_black_hole_off(shared: &Shared) {
    let mut rx = shared.faults.subscribe();
    loop {
        let black_hole = rx.borrow_and_update().black_hole;
        if !black_hole {
            return;
        }
        if rx.changed().await.is_err() {
            // The sender lives as long as `shared`; this is unreachable, but never spin.
            std::future::pending::<()>().await;
        }
    }
}

async fn wait_killed(shared: &Shared, runner: Option<u64>) {
    let Some(runner) = runner else {
        return std::future::pending().await;
    };
    // Subscribe before checking, so a kill between the check and the wait is not missed.
    let mut rx = shared.kill_epoch.subscribe();
    loop {
        if shared.store.is_killed(runner) {
            return;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The answer, a success in the request's own encoding (OTLP/HTTP asks for the same
/// Content-Type back).
fn respond(verdict: Verdict, json: bool) -> Response {
    match verdict {
        Verdict::Accepted if json => {
            let mut resp = Response::new(Body::from("{}"));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        Verdict::Accepted => {
            let mut resp = Response::new(Body::from(accepted_message()));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-protobuf"),
            );
            resp
        }
        Verdict::DroppedKilledRunner(runner) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("runner {runner} was killed; request dropped uncounted"),
            None,
        ),
        Verdict::Rejected(r) => text(r.status, r.text, r.retry_after_s),
    }
}

/// The `ExportTraceServiceResponse` of an accepted export, over OTLP/HTTP and gRPC: with
/// no `partial_success`, since every span of an accepted request is counted.
pub(crate) fn accepted_message() -> Vec<u8> {
    ExportTraceServiceResponse::default().encode_to_vec()
}

/// A plain-text answer, with `Retry-After` when given.
pub(crate) fn text(status: StatusCode, message: String, retry_after_s: Option<u64>) -> Response {
    let mut resp = Response::new(Body::from(message + "\n"));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Some(s) = retry_after_s {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    resp
}

fn json<T: serde::Serialize>(value: &T) -> Response {
    match serde_json::to_vec_pretty(value) {
        Ok(body) => {
            let mut resp = Response::new(Body::from(body));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot serialize: {e}"),
            None,
        ),
    }
}

/// `GET /stats`: the counters, for the stand-alone collector and for scripts.
async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    json(&shared.stats())
}

/// `GET /traces`: the recent-trace store, newest trace first, so the stand-alone
/// collector's traces can be seen. Streamed one trace at a time from a snapshot of shared
/// pointers: the answer never holds more than one trace's JSON beyond the store itself.
async fn recent_traces(State(shared): State<Arc<Shared>>) -> Response {
    let body = TracesBody {
        traces: shared.store.snapshot().into_iter(),
        started: false,
        done: false,
    };
    let mut resp = Response::new(Body::new(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A JSON array written one trace per frame.
struct TracesBody {
    traces: std::vec::IntoIter<Arc<StoredTrace>>,
    started: bool,
    done: bool,
}

impl hyper::body::Body for TracesBody {
    type Data = Bytes;
    type Error = serde_json::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        use std::task::Poll;
        if self.done {
            return Poll::Ready(None);
        }
        let mut chunk = Vec::new();
        match self.traces.next() {
            Some(trace) => {
                chunk.extend_from_slice(if self.started { b",\n" } else { b"[\n" });
                self.started = true;
                if let Err(e) = serde_json::to_writer(&mut chunk, &sorted(&trace)) {
                    self.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
            None => {
                chunk.extend_from_slice(if self.started { b"\n]\n" } else { b"[]\n" });
                self.done = true;
            }
        }
        Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::from(chunk)))))
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}
