//! The embedded OTLP collector: the backend every exported span is counted against.
//!
//! It receives `POST /v1/traces` (protobuf or OTLP/JSON, optionally gzip) on loopback, and
//! OTLP/gRPC's `Export` on a second listener when asked, counts every span of every
//! request it accepts exactly once, whatever the protocol, and can misbehave on demand
//! (latency, errors, refused connections, a black hole, an ingestion quota) so that the
//! exporter's retry and drop behaviour can be watched. It runs on its own tokio runtime on
//! background threads, so the SDK's blocking exporter, the workload and the UI never share
//! an executor with it, and a stalled backend can never stall them.
//!
//! Files: `faults` (what can go wrong), `decode` (body to request or reason), `otlp` (the
//! protobuf read field by field, keeping only what is stored), `stored` (the stored spans'
//! types), `store` (counts, duplicates, recent traces, acknowledgements), `routes` (HTTP
//! handlers, the export path every protocol shares and the fault waits), `grpc` (gRPC
//! framing and statuses), `server` (accept loops, HTTP/1 and HTTP/2, outage), `window`
//! (bounded FIFO sets), `forward` (accepted batches passed on to a real backend),
//! `budget` (the bytes of bodies in flight), `framing` (a body's protobuf framing checked
//! as it arrives).

mod budget;
mod decode;
mod faults;
mod forward;
mod framing;
mod grpc;
mod otlp;
mod routes;
mod server;
mod store;
mod stored;
mod window;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::watch;

pub use crate::config::{Faults, Limits, MAX_INGEST_LIMIT, MAX_LATENCY_MS, MAX_RETRY_AFTER_S};
pub use crate::record::CollectorStats;
pub use crate::record::wire::{KillWitness, REQUEST_ID_HEADER, RUNNER_HEADER};
pub use decode::MAX_REQUEST_ID_LEN;
pub use grpc::EXPORT_PATH as GRPC_EXPORT_PATH;
pub use otlp::MAX_TEXT;
pub use store::{ACK_WINDOW, DUPLICATE_WINDOW, MAX_SPANS_PER_STORED_TRACE, TRACE_WINDOW};
pub use stored::{StoredEvent, StoredLink, StoredSpan, StoredTrace};

/// Default size of the recent-trace store: enough for the waterfall view to pick from.
pub const DEFAULT_RECENT_TRACES: usize = 200;
/// How long `shutdown` lets tasks finish before dropping them: bounded, so it never hangs.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// How long `collect`, `run` and `probe` wait at their end for batches still queued for
/// the forward backend (`wait_forwarded`), so their counts say what became of them.
pub const FORWARD_DRAIN: Duration = Duration::from_secs(5);

/// How to start a collector.
#[derive(Clone, Debug)]
pub struct CollectorConfig {
    /// Where to listen; port 0 (the default) picks a free port so runs and tests never clash.
    pub listen: SocketAddr,
    /// Where to take OTLP/gRPC (HTTP/2 in plaintext), if anywhere; port 0 picks a free one.
    pub grpc_listen: Option<SocketAddr>,
    /// Faults in force from the first request.
    pub faults: Faults,
    /// How many traces the recent-trace store keeps (0 keeps none).
    pub recent_traces: usize,
    /// What the store keeps, and how many connections are served (the `collector.max_*`
    /// knobs).
    pub limits: Limits,
    /// Where accepted batches are passed on (`collector.forward`, already checked with
    /// `config::knobs::forward_url`); `None` keeps them.
    pub forward: Option<String>,
    /// Sent with every forwarded batch (`collector.forward_headers`); values are secrets.
    pub forward_headers: crate::config::Headers,
    /// CA certificates trusted for an https forward besides the system's
    /// (`collector.forward_ca_file`, already checked readable).
    pub forward_ca_file: Option<std::path::PathBuf>,
    /// Seeds the jitter and injected-error draws: a run's embedded collector takes the
    /// scenario's seed, so the virtual clock can draw the same faults in the same order.
    pub fault_seed: u64,
}

impl Default for CollectorConfig {
    /// Loopback, a free port, a healthy backend.
    fn default() -> Self {
        CollectorConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            grpc_listen: None,
            faults: Faults::default(),
            recent_traces: DEFAULT_RECENT_TRACES,
            limits: Limits::default(),
            forward: None,
            forward_headers: crate::config::Headers::default(),
            forward_ca_file: None,
            // A standalone collector (`gracetrace collect`) draws a new sequence each time.
            fault_seed: rand::random(),
        }
    }
}

impl CollectorConfig {
    /// The embedded collector a run's settings describe: their faults, limits and forward
    /// target, on a free loopback port.
    pub fn for_settings(settings: &crate::config::Settings) -> Self {
        CollectorConfig {
            faults: settings.collector.clone(),
            limits: settings.collector_limits.clone(),
            forward: settings.collector_forward.clone(),
            forward_headers: settings.collector_forward_headers.clone(),
            forward_ca_file: settings.collector_forward_ca_file.clone(),
            fault_seed: settings.workload.seed,
            ..CollectorConfig::default()
        }
    }
}

/// Why a collector could not start; each message names what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    /// The address is taken or not ours; the address is named so the user can pick another.
    #[error("collector cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said (address in use, permission denied, ...).
        #[source]
        source: std::io::Error,
    },
    /// Threads could not be created (resource exhaustion).
    #[error("collector cannot start its runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// A fault or limit setting out of range (the knob table's bounds).
    #[error("collector settings: {0}")]
    InvalidFaults(#[from] crate::config::FaultError),
    /// The forwarding client could not be built; the URL is named.
    #[error(transparent)]
    Forward(#[from] forward::ForwardError),
}

/// State shared by the accept loop, the handlers and the `Collector` handle.
pub(crate) struct Shared {
    max_body_bytes: usize,
    /// How much of each request the store keeps.
    caps: otlp::Caps,
    limits: Limits,
    /// A watch, so the accept loop and waiting requests wake on a change instead of polling.
    faults: watch::Sender<Faults>,
    /// Bumped on every `runner_killed`, to wake requests of that runner waiting in a fault.
    kill_epoch: watch::Sender<u64>,
    shutdown: watch::Sender<bool>,
    store: store::Store,
    forward: Option<forward::Forwarder>,
    /// The jitter and injected-error draws, seeded by `CollectorConfig::fault_seed`.
    draws: faults::Draws,
    /// The bytes of bodies being read, over both listeners.
    bodies: budget::Budget,
}

impl Shared {
    /// The state a collector of `config` starts with, `forward` its forwarder if any.
    fn new(config: &CollectorConfig, forward: Option<forward::Forwarder>) -> Self {
        let limits = &config.limits;
        let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        Shared {
            max_body_bytes: count(limits.max_body_bytes),
            caps: otlp::Caps {
                bytes: limits.max_stored_bytes,
                attributes: count(limits.max_attributes_per_span),
                events: count(limits.max_events_per_span),
                links: count(limits.max_links_per_span),
            },
            limits: limits.clone(),
            faults: watch::Sender::new(config.faults.clone()),
            kill_epoch: watch::Sender::new(0),
            shutdown: watch::Sender::new(false),
            store: store::Store::new(config.recent_traces, limits.max_stored_bytes),
            forward,
            draws: faults::Draws::new(config.fault_seed),
            bodies: budget::Budget::new(limits.max_inflight_body_bytes),
        }
    }

    /// The store's counters and the forwarder's, in one snapshot.
    fn stats(&self) -> CollectorStats {
        let mut stats = self.store.stats();
        stats.body_bytes_in_flight = self.bodies.used();
        if let Some(forward) = &self.forward {
            forward.fill(&mut stats);
        }
        stats
    }
}

/// The bound sockets, with their real addresses.
struct Bound {
    http: (tokio::net::TcpListener, SocketAddr),
    grpc: Option<(tokio::net::TcpListener, SocketAddr)>,
}

impl Bound {
    /// Each socket with what it serves.
    fn listeners(self, shared: &Arc<Shared>) -> Vec<server::Listener> {
        let listener = |(tcp, addr): (tokio::net::TcpListener, SocketAddr), protocol, router| {
            server::Listener {
                tcp,
                addr,
                protocol,
                router,
            }
        };
        let mut all = vec![listener(
            self.http,
            server::Protocol::Http1,
            routes::router(shared.clone()),
        )];
        if let Some(grpc) = self.grpc {
            all.push(listener(
                grpc,
                server::Protocol::Grpc,
                grpc::router(shared.clone()),
            ));
        }
        all
    }
}

/// Binds the listeners inside `runtime` (tokio sockets need its reactor); an error names
/// the address that could not be bound.
fn bind_all(
    runtime: &tokio::runtime::Runtime,
    config: &CollectorConfig,
) -> Result<Bound, CollectorError> {
    let _guard = runtime.enter();
    let one = |addr: SocketAddr| {
        let bound = server::bind(addr).and_then(|l| {
            let real = l.local_addr()?;
            Ok((l, real))
        });
        bound.map_err(|source| CollectorError::Bind { addr, source })
    };
    Ok(Bound {
        http: one(config.listen)?,
        grpc: config.grpc_listen.map(one).transpose()?,
    })
}

/// Stops a runtime that never served, handing back the error that stopped it. Not a
/// plain drop: dropping a runtime inside the caller's async context would panic.
fn stop_runtime(runtime: tokio::runtime::Runtime, error: CollectorError) -> CollectorError {
    runtime.shutdown_background();
    error
}

/// A running collector. Dropping it shuts it down, like `shutdown`.
pub struct Collector {
    addr: SocketAddr,
    grpc_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Collector {
    /// Binds `config.listen` (and `config.grpc_listen`) and starts serving on a private
    /// runtime (2 worker threads), driven by a thread of its own so that it can be started
    /// and stopped from anywhere, including from inside another tokio runtime.
    pub fn start(config: CollectorConfig) -> Result<Collector, CollectorError> {
        config.faults.validate()?;
        config.limits.validate()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("gracetrace-collector")
            .enable_io()
            .enable_time()
            .build()
            .map_err(CollectorError::Runtime)?;
        let bound = bind_all(&runtime, &config);
        let forward = config
            .forward
            .as_deref()
            .map(|url| forward::start(url, &config))
            .transpose();
        let (bound, forward) = match (bound, forward) {
            (Ok(bound), Ok(forward)) => (bound, forward),
            (Err(e), _) => return Err(stop_runtime(runtime, e)),
            (_, Err(e)) => return Err(stop_runtime(runtime, e.into())),
        };
        let (forward, worker) = forward.unzip();
        let shared = Arc::new(Shared::new(&config, forward));
        if let Some(worker) = worker {
            runtime.spawn(worker.run());
        }
        let addr = bound.http.1;
        let grpc_addr = bound.grpc.as_ref().map(|(_, a)| *a);
        let listeners = bound.listeners(&shared);
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name("gracetrace-collector-main".into())
            .spawn(move || {
                runtime.block_on(server::serve(listeners, serving));
                // Drops connection tasks, black-holed requests included, after a bounded wait.
                runtime.shutdown_timeout(SHUTDOWN_GRACE);
            })
            .map_err(CollectorError::Runtime)?;
        Ok(Collector {
            addr,
            grpc_addr,
            shared,
            thread: Some(thread),
        })
    }

    /// The bound address, with the real port when port 0 was asked for.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to give the OTLP exporter; it is used as is, so it includes `/v1/traces`.
    pub fn traces_endpoint(&self) -> String {
        format!("http://{}/v1/traces", self.addr)
    }

    /// The gRPC listener's bound address, when `grpc_listen` asked for one.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc_addr
    }

    /// The endpoint to give an OTLP/gRPC exporter (`http://` for plaintext; gRPC
    /// exporters take no path), when there is a gRPC listener.
    pub fn grpc_endpoint(&self) -> Option<String> {
        self.grpc_addr.map(|addr| format!("http://{addr}"))
    }

    /// A snapshot of the counters. Reads atomics only, so the UI can call it every frame.
    /// Fields are read one by one: while requests are being decided, two fields may be one
    /// request apart; once traffic stops, the snapshot is exact.
    pub fn stats(&self) -> CollectorStats {
        self.shared.stats()
    }

    /// Waits, at most `limit`, until every accepted batch has been forwarded (or refused,
    /// failed or dropped); true when none is left pending. True at once without forwarding.
    pub fn wait_forwarded(&self, limit: Duration) -> bool {
        let Some(forward) = &self.shared.forward else {
            return true;
        };
        let deadline = std::time::Instant::now() + limit;
        while forward.pending() > 0 {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// The faults in force now.
    pub fn faults(&self) -> Faults {
        self.shared.faults.borrow().clone()
    }

    /// Changes the faults live. Requests decide with the faults in force at their decision;
    /// an outage starts or ends at once. Invalid faults are refused and the old ones stay.
    pub fn set_faults(&self, faults: Faults) -> Result<(), CollectorError> {
        faults.validate()?;
        self.shared.faults.send_replace(faults);
        Ok(())
    }

    /// The most recent traces (by first arrival), newest first, spans ordered by start.
    pub fn recent_traces(&self) -> Vec<StoredTrace> {
        self.shared.store.recent_traces()
    }

    /// Models SIGKILL of a runner: from now on nothing of it is counted, including requests
    /// already sent and waiting in a fault. Runner ids are never revived, so give a restarted
    /// runner a new id.
    pub fn runner_killed(&self, runner_id: u64) {
        self.shared.store.kill(runner_id);
        self.shared
            .kill_epoch
            .send_modify(|e| *e = e.wrapping_add(1));
    }

    /// Traces whose spans arrived without their root (see `record::Orphans`); one pass
    /// over the last `TRACE_WINDOW` traces, so for the end of a run, not every frame.
    pub fn orphans(&self) -> crate::record::Orphans {
        self.shared.store.orphans()
    }

    /// What arrived of each trace of `trace_ids` (in that order): its distinct spans and
    /// whether its root did, the root being a span without a parent or the app's top span
    /// under `gracetrace probe`'s load. The tallies are the ones `orphans` reads, kept for
    /// the last `TRACE_WINDOW` trace ids seen (about 64 bytes each); `None` is a trace
    /// none of whose spans arrived, or, once more than `TRACE_WINDOW` traces were seen
    /// (`stats().traces_seen`), one that may have been forgotten.
    pub fn trace_tallies(&self, trace_ids: &[u128]) -> Vec<Option<crate::record::TraceTally>> {
        self.shared.store.tallies(trace_ids)
    }

    /// What the app says about itself in its latest resource (service name, SDK).
    pub fn app_resource(&self) -> Option<crate::record::AppResource> {
        self.shared.store.resource()
    }

    /// Whether the request with this `x-gracetrace-request-id` was counted, and with how many
    /// spans: at a kill, this tells an export in flight that arrived from one that did not.
    /// Remembers the last `ACK_WINDOW` (100,000) acknowledged ids.
    pub fn was_acknowledged(&self, request_id: &str) -> Option<u64> {
        self.shared.store.was_acknowledged(request_id)
    }

    /// Stops serving and joins the collector's threads. Bounded: requests held by a fault are
    /// dropped, not waited for. Blocks the calling thread up to about a second.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.shutdown.send_replace(true);
        if let Some(thread) = self.thread.take() {
            // A panic in the serving thread has already been reported by the panic hook.
            let _ = thread.join();
        }
    }
}

impl Drop for Collector {
    /// A collector forgotten in a test or on an error path must not keep its port and threads.
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector")
            .field("addr", &self.addr)
            .field("grpc_addr", &self.grpc_addr)
            .finish()
    }
}

/// What a simulated SIGKILL asks of the backend (see [`KillWitness`]).
impl KillWitness for Collector {
    fn runner_killed(&self, runner_id: u64) {
        Collector::runner_killed(self, runner_id);
    }

    fn acknowledged(&self, request_id: &str) -> bool {
        self.was_acknowledged(request_id).is_some()
    }
}
