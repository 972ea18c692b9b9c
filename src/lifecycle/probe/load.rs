//! The probe's load: waits until the user's server is ready, then sends the scenario's
//! arrival schedule to it open loop, each request carrying a W3C `traceparent` whose
//! trace id is gracetrace's own for that arrival, and asks for SIGTERM at its time.
//!
//! Open loop, as wrk2 measures: each request leaves at its scheduled time on a task of its
//! own, whatever earlier ones are doing, and its latency counts from the scheduled time, so
//! a server that stalls is charged for every request that waited behind the stall (no
//! coordinated omission). Each request has a connection of its own: a failure then belongs
//! to that request alone (refused, reset, cut mid-response), never to a pooled connection
//! an earlier request left behind, and a platform's router opens one per request too when
//! an instance is new.
//!
//! SIGTERM comes at the plan's time, or sooner when asked through [`EarlySigterm`] (the
//! window's Shutdown button); routing goes on for the routing lag after whichever came.
//! What has been sent and what has ended is published as it happens ([`LoadNews`]) for a
//! live view.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use tokio::sync::{Notify, watch};

use super::target::LoadTarget;
use crate::config::{Settings, WorkloadSettings};
use crate::record::load::Outcome;
use crate::record::wire::probe_parent_span_id;
use crate::telemetry::sampler::RatioFormula;
use crate::workload::arrival::{Schedule, trace_id};

/// How often readiness is tried, and how long one try may take.
const READY_EVERY: Duration = Duration::from_millis(20);
const READY_TRY: Duration = Duration::from_secs(1);

/// Why the load could not run; each names what was waited for or what failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the app ended before {url} was ready (waited for {what})")]
    AppEnded { url: String, what: String },
    #[error("{url} was not ready within {timeout_s} s (waited for {what})")]
    NotReady {
        url: String,
        what: String,
        timeout_s: f64,
    },
    #[error("cannot start the load's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("the load's thread failed")]
    Panicked,
}

/// How the `traceparent`'s sampled flag is decided: as the app's `ParentBased(
/// TraceIdRatioBased(rate))` root would decide on the same id, so the app traces exactly
/// the requests the probe expects.
#[derive(Clone, Copy, Debug)]
pub struct Sampling {
    pub enabled: bool,
    pub rate: f64,
    pub formula: RatioFormula,
}

impl Sampling {
    pub fn of(settings: &Settings) -> Sampling {
        Sampling {
            enabled: settings.tracing.enabled,
            rate: settings.tracing.sample_rate,
            formula: RatioFormula::of(settings.tracing.semantics),
        }
    }

    pub fn sampled(&self, trace_id: u128) -> bool {
        self.enabled && self.formula.decide(self.rate, trace_id)
    }
}

/// What the load sends, and when SIGTERM comes.
#[derive(Clone, Debug)]
pub struct LoadPlan {
    pub target: LoadTarget,
    pub workload: WorkloadSettings,
    /// SIGTERM this long after the traffic starts.
    pub sigterm_after: Duration,
    /// Requests are still routed this long after SIGTERM (`shutdown.routing_lag_ms`).
    pub routing_lag: Duration,
    pub sampling: Sampling,
    /// Asks for SIGTERM before `sigterm_after` (shared by every clone of the plan).
    pub early: EarlySigterm,
}

/// A request for SIGTERM sooner than the plan's time: the window's Shutdown button. Asked
/// before the traffic starts, SIGTERM comes as soon as it starts.
#[derive(Clone, Debug, Default)]
pub struct EarlySigterm(Arc<Notify>);

impl EarlySigterm {
    /// SIGTERM now (once; a second ask changes nothing).
    pub fn ask(&self) {
        self.0.notify_one();
    }
}

impl LoadPlan {
    /// SIGTERM at `sigterm_after` if given, else at `shutdown.at_s`, else when the
    /// traffic ends (`workload.duration_s`).
    pub fn new(settings: &Settings, target: LoadTarget, sigterm_after: Option<Duration>) -> Self {
        let at_s = settings
            .shutdown
            .at_s
            .unwrap_or(settings.workload.duration_s);
        LoadPlan {
            target,
            workload: settings.workload.clone(),
            sigterm_after: sigterm_after
                .unwrap_or_else(|| Duration::try_from_secs_f64(at_s).unwrap_or(Duration::ZERO)),
            routing_lag: Duration::from_millis(settings.shutdown.routing_lag_ms),
            sampling: Sampling::of(settings),
            early: EarlySigterm::default(),
        }
    }
}

/// The W3C `traceparent` of a request (W3C Trace Context, section 3.2: version `00`,
/// 32 hex digits of trace id, 16 of parent id, the flags with bit 0 `sampled`).
pub fn traceparent(trace_id: u128, sampled: bool) -> String {
    let parent = probe_parent_span_id(trace_id);
    format!("00-{trace_id:032x}-{parent:016x}-{:02x}", u8::from(sampled))
}

/// One request of the schedule, as the load saw it.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub index: u64,
    pub scheduled: Instant,
    /// When its connection was opened; `None` when it was never sent.
    pub sent: Option<Instant>,
    /// When its answer or failure came.
    pub ended: Option<Instant>,
    pub outcome: Outcome,
    pub status: Option<u16>,
}

/// What the load did, for the report.
#[derive(Clone, Debug)]
pub struct Sent {
    pub ready_at: Instant,
    pub start: Instant,
    /// When SIGTERM was asked for; `None` when the app ended first.
    pub sigterm_at: Option<Instant>,
    pub routing_end: Option<Instant>,
    /// Every arrival of the schedule, by index.
    pub attempts: Vec<Attempt>,
}

/// What the load did since its feed was last taken ([`LoadFeed::take`]), for a live view;
/// the report is built from [`Sent`] at the end, not from this.
#[derive(Clone, Debug, Default)]
pub struct LoadNews {
    /// When the app was ready, and when the traffic started; `None` while waiting.
    pub traffic: Option<(Instant, Instant)>,
    /// When SIGTERM was asked for.
    pub sigterm_at: Option<Instant>,
    /// When each request sent since left.
    pub sent: Vec<Instant>,
    /// The requests that ended since.
    pub ended: Vec<Attempt>,
}

/// Where the load's tasks publish [`LoadNews`] and a live view takes it; `None` inside when
/// nobody reads it (the CLI), so that nothing piles up.
#[derive(Clone, Debug, Default)]
pub struct LoadFeed(Option<Arc<Mutex<LoadNews>>>);

impl LoadFeed {
    fn with(&self, change: impl FnOnce(&mut LoadNews)) {
        if let Some(news) = &self.0 {
            change(&mut news.lock().unwrap_or_else(|e| e.into_inner()));
        }
    }

    /// What happened since the last call; always empty for a load not started `live`.
    pub fn take(&self) -> LoadNews {
        let mut taken = LoadNews::default();
        self.with(|news| {
            taken = LoadNews {
                traffic: news.traffic,
                sigterm_at: news.sigterm_at,
                sent: std::mem::take(&mut news.sent),
                ended: std::mem::take(&mut news.ended),
            };
        });
        taken
    }
}

/// The load, running on a thread of its own with its own runtime.
pub struct Load {
    app_ended: watch::Sender<bool>,
    gave_up: Arc<AtomicBool>,
    feed: LoadFeed,
    thread: JoinHandle<Result<Sent, LoadError>>,
}

impl Load {
    /// Starts waiting for readiness at once; `sigterm` gets a message at SIGTERM's time.
    /// With `live`, what it sends and what ends is kept for its [`Load::feed`].
    pub fn start(plan: LoadPlan, sigterm: Sender<()>, live: bool) -> Result<Load, LoadError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("gracetrace-load")
            .enable_all()
            .build()
            .map_err(LoadError::Runtime)?;
        let (app_ended, ended) = watch::channel(false);
        let gave_up = Arc::new(AtomicBool::new(false));
        let giving_up = gave_up.clone();
        let feed = LoadFeed(live.then(Arc::default));
        let publish = feed.clone();
        let thread = std::thread::Builder::new()
            .name("gracetrace-load-main".into())
            .spawn(move || {
                // `drive` runs on this thread, not on a worker: its waits for a request's
                // exact time (`wait_until`) block only this thread.
                let sent = runtime.block_on(drive(plan, ended, sigterm, publish));
                giving_up.store(sent.is_err(), Relaxed);
                // Connection tasks of requests the app never answered are not waited for.
                runtime.shutdown_background();
                sent
            })
            .map_err(LoadError::Runtime)?;
        Ok(Load {
            app_ended,
            gave_up,
            feed,
            thread,
        })
    }

    /// Where its news is taken from (also once the load is finished).
    pub fn feed(&self) -> LoadFeed {
        self.feed.clone()
    }

    /// True once the load has given up (the app never became ready): the app is killed.
    pub fn gave_up(&self) -> bool {
        self.gave_up.load(Relaxed)
    }

    /// Tells the load the app has ended and waits for the requests still out to end
    /// (each within the request timeout).
    pub fn finish(self) -> Result<Sent, LoadError> {
        self.app_ended.send_replace(true);
        self.thread.join().map_err(|_| LoadError::Panicked)?
    }
}

/// Readiness, then the schedule, then the requests still out.
async fn drive(
    plan: LoadPlan,
    ended: watch::Receiver<bool>,
    sigterm: Sender<()>,
    feed: LoadFeed,
) -> Result<Sent, LoadError> {
    let target = Arc::new(plan.target.clone());
    let ready_at = wait_ready(&target, &ended).await?;
    let start = tokio::time::Instant::now();
    feed.with(|news| news.traffic = Some((ready_at, start.into_std())));
    let mut gate = Gate {
        ended: ended.clone(),
        asked: Arc::default(),
        planned_sigterm: start + plan.sigterm_after,
        routing_lag: plan.routing_lag,
    };
    let signal = tokio::spawn(ask_sigterm(
        gate.planned_sigterm,
        plan.early.clone(),
        ended,
        gate.asked.clone(),
        (sigterm, feed.clone()),
    ));
    let mut out = Vec::new();
    for due in Schedule::new(&plan.workload) {
        let at = start + due.at;
        let routed = gate.routed(at).await;
        for index in due.first..due.first + due.count as u64 {
            let request = Request {
                target: target.clone(),
                sampling: plan.sampling,
                seed: plan.workload.seed,
                index,
                scheduled: at.into_std(),
                feed: feed.clone(),
            };
            out.push(match routed {
                true => Pending::Out(index, tokio::spawn(request.send())),
                false => Pending::NotSent(index, at.into_std()),
            });
        }
    }
    let asked = signal.await.unwrap_or(false);
    let mut attempts = Vec::with_capacity(out.len());
    for pending in out {
        attempts.push(pending.resolve().await);
    }
    let sigterm_at = gate.asked().filter(|_| asked);
    Ok(Sent {
        ready_at,
        start: start.into_std(),
        sigterm_at: sigterm_at.map(tokio::time::Instant::into_std),
        routing_end: sigterm_at.map(|at| (at + plan.routing_lag).into_std()),
        attempts,
    })
}

/// Whether an arrival is routed to the app: as on the platform, until
/// `shutdown.routing_lag_ms` after SIGTERM (to an app that already exited too: those are
/// refused, as a lagging router's are), and not at all once the app ended before SIGTERM.
struct Gate {
    ended: watch::Receiver<bool>,
    /// When SIGTERM was asked for, once it was (at the plan's time or sooner).
    asked: Arc<Mutex<Option<tokio::time::Instant>>>,
    /// The plan's SIGTERM time: routing ends at the latest the lag after it.
    planned_sigterm: tokio::time::Instant,
    routing_lag: Duration,
}

impl Gate {
    fn asked(&self) -> Option<tokio::time::Instant> {
        *self.asked.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn routing_end(&self) -> tokio::time::Instant {
        self.asked().unwrap_or(self.planned_sigterm) + self.routing_lag
    }

    fn gone_early(&self) -> bool {
        *self.ended.borrow() && self.asked().is_none()
    }

    /// Waits until `at` and says whether the arrival is sent; returns at once when not.
    async fn routed(&mut self, at: tokio::time::Instant) -> bool {
        if at >= self.routing_end() || self.gone_early() {
            return false;
        }
        let before_sigterm = self.asked().is_none();
        let near = at.checked_sub(TIMER_EARLY).unwrap_or(at);
        tokio::select! {
            () = tokio::time::sleep_until(near) => {}
            () = wait_ended(&mut self.ended), if before_sigterm => {}
        }
        if self.gone_early() {
            return false;
        }
        wait_until(at.into_std());
        // Decided at `at`, as when the timer alone waited: an app that ended in the last
        // stretch is not sent to, and an early SIGTERM during the wait may have ended the
        // routing before `at`.
        !self.gone_early() && at < self.routing_end()
    }
}

/// tokio's timer fires on whole milliseconds, rounded up, and then wakes the load's
/// thread from a worker: requests sent when it fired left 1 ms late at the median and
/// 1.9 to 4.8 ms at p99 (README, Load generator accuracy). So the timer only brings the
/// load to within this much of a request's time, and [`wait_until`] does the rest.
const TIMER_EARLY: Duration = Duration::from_millis(2);

/// A thread's sleep ends its timer slack (50 µs by default on Linux) late, plus the
/// wake-up itself: about 80 µs on the 2-core machine. The last stretch is spun
/// instead. Not yielded: on a busy machine a yield hands the core to another process for
/// a whole time slice, milliseconds.
const SLEEP_EARLY: Duration = Duration::from_micros(100);

/// Blocks the calling thread until `at`: sleeps until [`SLEEP_EARLY`] before it, then
/// spins. Called only from [`drive`], which is `block_on`'s future on the load's own
/// thread and never a runtime worker's task: blocking it holds up no request in flight,
/// only the next send, which is not due before `at` anyway.
fn wait_until(at: Instant) {
    if let Some(sleep) = at
        .saturating_duration_since(Instant::now())
        .checked_sub(SLEEP_EARLY)
    {
        std::thread::sleep(sleep);
    }
    while Instant::now() < at {
        std::hint::spin_loop();
    }
}

/// A request of the schedule, sent or not.
enum Pending {
    Out(u64, tokio::task::JoinHandle<Attempt>),
    NotSent(u64, Instant),
}

impl Pending {
    async fn resolve(self) -> Attempt {
        let (index, scheduled, outcome) = match self {
            Pending::Out(index, task) => match task.await {
                Ok(attempt) => return attempt,
                // A request's task cannot panic short of a bug; it is still counted.
                Err(_) => (index, Instant::now(), Outcome::OtherError),
            },
            Pending::NotSent(index, at) => (index, at, Outcome::NotSent),
        };
        Attempt {
            index,
            scheduled,
            sent: None,
            ended: None,
            outcome,
            status: None,
        }
    }
}

/// Resolves once the app has ended (never, if the sender is dropped without saying so).
async fn wait_ended(ended: &mut watch::Receiver<bool>) {
    if ended.wait_for(|gone| *gone).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Asks for SIGTERM at `at`, or sooner when `early` asks, unless the app ends first;
/// true when it asked. The moment goes to `asked` (the gate's routing end) and the feed.
async fn ask_sigterm(
    at: tokio::time::Instant,
    early: EarlySigterm,
    mut ended: watch::Receiver<bool>,
    asked: Arc<Mutex<Option<tokio::time::Instant>>>,
    (sigterm, feed): (Sender<()>, LoadFeed),
) -> bool {
    // At the plan's time, the time is the plan's (the schedule's own clock, as the
    // arrivals'); asked early, it is the moment of asking.
    let when = tokio::select! {
        () = tokio::time::sleep_until(at) => at,
        () = early.0.notified() => tokio::time::Instant::now(),
        () = wait_ended(&mut ended) => return false,
    };
    *asked.lock().unwrap_or_else(|e| e.into_inner()) = Some(when);
    feed.with(|news| news.sigterm_at = Some(when.into_std()));
    sigterm.send(()).is_ok()
}

/// What was waited for, in words.
fn waited_for(target: &LoadTarget) -> String {
    match &target.ready_path {
        None => format!("a TCP connection to {}", target.url.authority()),
        Some(path) => format!("2xx from GET {path} on {}", target.url.authority()),
    }
}

/// Tries every 20 ms until the server is ready, the app ends, or the timeout.
async fn wait_ready(
    target: &LoadTarget,
    ended: &watch::Receiver<bool>,
) -> Result<Instant, LoadError> {
    let deadline = Instant::now() + target.ready_timeout;
    loop {
        if *ended.borrow() {
            return Err(LoadError::AppEnded {
                url: target.url.text.clone(),
                what: waited_for(target),
            });
        }
        if tokio::time::timeout(READY_TRY, ready_once(target)).await == Ok(true) {
            return Ok(Instant::now());
        }
        if Instant::now() >= deadline {
            return Err(LoadError::NotReady {
                url: target.url.text.clone(),
                what: waited_for(target),
                timeout_s: target.ready_timeout.as_secs_f64(),
            });
        }
        tokio::time::sleep(READY_EVERY).await;
    }
}

/// One readiness try. The check's `traceparent` is not sampled, so an app with a
/// `ParentBased` sampler makes no trace of it.
async fn ready_once(target: &LoadTarget) -> bool {
    let Ok(stream) = connect(target).await else {
        return false;
    };
    let Some(path) = &target.ready_path else {
        return true;
    };
    let get = LoadTarget {
        method: http::Method::GET,
        body: bytes::Bytes::new(),
        ..target.clone()
    };
    let unsampled = traceparent(trace_id(u64::MAX, 0), false);
    matches!(exchange(stream, &get, path, &unsampled).await, Ok((status, _)) if (200..300).contains(&status))
}

async fn connect(target: &LoadTarget) -> std::io::Result<tokio::net::TcpStream> {
    let stream =
        tokio::net::TcpStream::connect((target.url.host.as_str(), target.url.port)).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// One request of the schedule, ready to leave at its time.
struct Request {
    target: Arc<LoadTarget>,
    sampling: Sampling,
    seed: u64,
    index: u64,
    scheduled: Instant,
    feed: LoadFeed,
}

impl Request {
    /// Sends it (now: the caller waited for its time) and says how it ended.
    async fn send(self) -> Attempt {
        let id = trace_id(self.seed, self.index);
        let header = traceparent(id, self.sampling.sampled(id));
        let target = &self.target;
        let sent = Instant::now();
        self.feed.with(|news| news.sent.push(sent));
        let exchange = async {
            let stream = connect(target).await.map_err(|e| io_failure(&e))?;
            exchange(stream, target, &target.url.path, &header).await
        };
        let (outcome, status) = match tokio::time::timeout(target.request_timeout, exchange).await {
            Err(_) => (Outcome::Timeout, None),
            Ok(Err(failure)) => (failure, None),
            Ok(Ok((status, _))) => (status_outcome(status), Some(status)),
        };
        let attempt = Attempt {
            index: self.index,
            scheduled: self.scheduled,
            sent: Some(sent),
            ended: Some(Instant::now()),
            outcome,
            status,
        };
        self.feed.with(|news| news.ended.push(attempt.clone()));
        attempt
    }
}

/// A whole response's outcome, by its status.
fn status_outcome(status: u16) -> Outcome {
    match status {
        429 => Outcome::Status429,
        500..=599 => Outcome::Status5xx,
        400..=499 => Outcome::OtherStatus,
        _ => Outcome::Answered,
    }
}

/// One HTTP/1.1 exchange on `stream`: the status and the body's length, or the failure.
async fn exchange(
    stream: tokio::net::TcpStream,
    target: &LoadTarget,
    path: &str,
    traceparent: &str,
) -> Result<(u16, usize), Outcome> {
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| hyper_failure(&e))?;
    // Drives the connection; its errors reach `send_request` and the body, where they
    // are classified.
    tokio::spawn(connection);
    let mut request = http::Request::builder()
        .method(target.method.clone())
        .uri(path)
        .header(http::header::HOST, target.url.authority())
        .header("traceparent", traceparent);
    for (name, value) in &target.headers {
        request = request.header(name, value);
    }
    let request = request
        .body(Full::new(target.body.clone()))
        .map_err(|_| Outcome::OtherError)?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| hyper_failure(&e))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|_| Outcome::CutMidResponse)?;
    Ok((status, body.to_bytes().len()))
}

/// A connection error's kind: refused, reset (or aborted, or a broken pipe: the server
/// closed it under us), or another.
fn io_failure(error: &std::io::Error) -> Outcome {
    use std::io::ErrorKind::*;
    match error.kind() {
        ConnectionRefused => Outcome::Refused,
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => Outcome::Reset,
        _ => Outcome::OtherError,
    }
}

/// hyper's error before a response head arrived: closed early or reset is `reset`; an
/// I/O error underneath by its kind; a response that could not be parsed is another error.
fn hyper_failure(error: &hyper::Error) -> Outcome {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return io_failure(io);
        }
        source = e.source();
    }
    match error.is_incomplete_message() || error.is_closed() || error.is_canceled() {
        true => Outcome::Reset,
        false => Outcome::OtherError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// W3C Trace Context's example shape, and the parent the collector recognises.
    #[test]
    fn traceparent_follows_w3c_trace_context() {
        let id = 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128;
        let header = traceparent(id, true);
        let parts: Vec<&str> = header.split('-').collect();
        assert_eq!(parts[0], "00");
        assert_eq!(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parts[2], format!("{:016x}", probe_parent_span_id(id)));
        assert_ne!(parts[2], "0000000000000000");
        assert_eq!(parts[3], "01");
        assert!(traceparent(id, false).ends_with("-00"));
    }

    /// The sampled flag is the SDK's own decision on the request's trace id.
    #[test]
    fn the_sampled_flag_is_the_ratio_samplers_decision() {
        let sampling = Sampling {
            enabled: true,
            rate: 0.25,
            formula: RatioFormula::Python,
        };
        let ids: Vec<u128> = (0..4000).map(|i| trace_id(7, i)).collect();
        let kept = ids.iter().filter(|id| sampling.sampled(**id)).count();
        assert!((800..1200).contains(&kept), "{kept}");
        assert!(ids.iter().all(
            |id| sampling.sampled(*id) == crate::telemetry::sampler::python_decision(0.25, *id)
        ));
        let off = Sampling {
            enabled: false,
            ..sampling
        };
        assert!(!ids.iter().any(|id| off.sampled(*id)));
    }
}
