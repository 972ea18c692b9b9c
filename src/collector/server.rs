//! The accept loops: our own instead of `axum::serve`, because an outage must REFUSE
//! connections (connect() fails with ECONNREFUSED, as against a crashed backend), which only
//! closing the listening socket does, and because open keep-alive connections must be cut
//! when an outage begins. One loop per listener: OTLP/HTTP on HTTP/1.1, and OTLP/gRPC on
//! HTTP/2 (h2c) when asked; they share one connection table and its limit.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use http::Request;
use hyper::body::{Body as _, Incoming};
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Notify, watch};

use super::Shared;
use super::faults::Faults;

/// What a listener's connections speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// HTTP/1.1: OTLP/HTTP, `/stats`, `/traces`.
    Http1,
    /// HTTP/2 with prior knowledge, in plaintext (h2c): OTLP/gRPC.
    Grpc,
}

/// One bound listener and what it serves.
pub(crate) struct Listener {
    pub tcp: TcpListener,
    /// The bound address (with the real port), used to bind again after an outage.
    pub addr: SocketAddr,
    pub protocol: Protocol,
    pub router: Router,
}

/// Backlog of the listening socket: bursts of new connections from many exporters must not
/// be refused when no outage is on.
const BACKLOG: u32 = 1024;
/// Pause before retrying a failed rebind after an outage (someone else may hold the port for
/// a moment) or a failed accept (out of file descriptors).
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Binds with SO_REUSEADDR so that the same port can be bound again right after an outage,
/// even while connections from before the outage sit in TIME_WAIT.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Serves every listener until shutdown, sharing one connection table, so that
/// `max_connections` bounds them together.
pub(crate) async fn serve(listeners: Vec<Listener>, shared: Arc<Shared>) {
    let connections = Arc::new(Connections::default());
    let loops: Vec<_> = listeners
        .into_iter()
        .map(|l| tokio::spawn(accept_loop(l, shared.clone(), connections.clone())))
        .collect();
    for accepting in loops {
        // A loop ends only at shutdown; a panic in one has been reported by the hook.
        let _ = accepting.await;
    }
}

/// Accepts on one listener until shutdown, closing it for an outage and binding it again
/// after.
async fn accept_loop(listener: Listener, shared: Arc<Shared>, connections: Arc<Connections>) {
    let Listener {
        tcp,
        addr,
        protocol,
        router,
    } = listener;
    let mut faults = shared.faults.subscribe();
    let mut shutdown = shared.shutdown.subscribe();
    let mut listener = Some(tcp);
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        let outage = faults.borrow_and_update().outage;
        match (outage, &listener) {
            (true, Some(_)) => {
                // Dropping the listener closes the socket: new connects are refused, and
                // connections waiting in the backlog are reset.
                listener = None;
            }
            (true, None) => {
                tokio::select! {
                    r = faults.changed() => if r.is_err() { return },
                    _ = shutdown.changed() => return,
                }
            }
            (false, None) => match bind(addr) {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    eprintln!(
                        "collector: cannot listen on {addr} again after the outage: {e}; retrying"
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY_PAUSE) => {}
                        _ = shutdown.changed() => return,
                    }
                }
            },
            (false, Some(l)) => {
                tokio::select! {
                    accepted = l.accept() => match accepted {
                        Ok((stream, _peer)) => {
                            // Small requests and answers: do not let Nagle add 40 ms.
                            let _ = stream.set_nodelay(true);
                            tokio::spawn(admit_and_serve(
                                stream,
                                protocol,
                                router.clone(),
                                shared.clone(),
                                connections.clone(),
                            ));
                        }
                        Err(_) => {
                            // Usually EMFILE; the peer sees nothing, and pausing lets
                            // connections close before the next try.
                            tokio::time::sleep(RETRY_PAUSE).await;
                        }
                    },
                    r = faults.changed() => if r.is_err() { return },
                    _ = shutdown.changed() => return,
                }
            }
        }
    }
}

/// A connection at the limit: served once a slot is free, or closed (counted refused)
/// after waiting as long as a client may take to send its headers.
async fn admit_and_serve(
    stream: tokio::net::TcpStream,
    protocol: Protocol,
    router: Router,
    shared: Arc<Shared>,
    connections: Arc<Connections>,
) {
    let wait = Duration::from_millis(shared.limits.header_read_timeout_ms);
    let admitted = tokio::select! {
        slot = connections.admit(&shared, wait) => slot,
        _ = outage_or_shutdown(shared.faults.subscribe(), shared.shutdown.subscribe()) => None,
    };
    if let Some(slot) = admitted {
        serve_connection(stream, protocol, router, shared, slot).await;
    }
}

/// The open connections, oldest first, for `max_connections`. A connection that has no
/// request in progress (idle between requests, or still sending its headers, as a slow
/// or hostile client does) can be closed to make room for a new one, and so can one whose
/// request's body arrives slower than `MIN_BODY_RATE` (headers sent whole, then a byte
/// now and then): so a flood of slow clients never keeps `/stats` or an exporter out,
/// and the limit always holds. A new connection that finds neither waits for one (at most
/// `MAX_WAITING` of them wait), rather than be closed while a slow body is still young.
#[derive(Default)]
struct Connections {
    table: Mutex<ConnTable>,
    waiting: AtomicUsize,
}

/// Slowest body rate, in bytes per second, at which a connection keeps its place at the
/// limit: 32 KiB/s, a slow 256 kbit/s uplink; an exporter on loopback or a LAN sends its
/// batch in milliseconds, the hostile client a byte every 5 s.
const MIN_BODY_RATE: u64 = 32 << 10;
/// How long a body is read before its rate is judged: a few round trips of a distant
/// client, and the longest a new connection waits for a slow one's place.
const SLOW_AFTER: Duration = Duration::from_millis(200);
/// How often a waiting connection looks for a place again: a slow body becomes
/// replaceable with time, not with an event.
const ADMIT_POLL: Duration = Duration::from_millis(20);
/// Most connections waiting for a place at once; past them, a new one is closed at once,
/// so that waiting never holds more descriptors than this.
const MAX_WAITING: usize = 64;

/// How far a connection's request bodies have come, for `MIN_BODY_RATE`.
#[derive(Default)]
struct BodyProgress {
    /// Bodies being read now (HTTP/2 may read several).
    reading: AtomicU64,
    /// When `reading` last went from 0 to 1, in ms since `epoch_ms`'s origin.
    since_ms: AtomicU64,
    /// Bytes read since then.
    bytes: AtomicU64,
}

impl BodyProgress {
    fn start(&self) {
        if self.reading.fetch_add(1, Relaxed) == 0 {
            self.bytes.store(0, Relaxed);
            self.since_ms.store(epoch_ms(), Relaxed);
        }
    }

    /// Whether every request in progress (`busy`) is a body arriving too slowly.
    fn too_slow(&self, busy: u64, now_ms: u64) -> bool {
        let reading = self.reading.load(Relaxed);
        let elapsed = now_ms.saturating_sub(self.since_ms.load(Relaxed));
        reading > 0
            && busy <= reading
            && u128::from(elapsed) >= SLOW_AFTER.as_millis()
            && self.bytes.load(Relaxed).saturating_mul(1000) < MIN_BODY_RATE.saturating_mul(elapsed)
    }
}

/// Milliseconds since the first call: a clock the connections' atomics can hold.
fn epoch_ms() -> u64 {
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    let epoch = EPOCH.get_or_init(std::time::Instant::now);
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[derive(Default)]
struct ConnTable {
    next_id: u64,
    /// By id, which is the order of acceptance.
    open: BTreeMap<u64, Conn>,
}

/// One open connection: its requests in progress, the requests it began, and the signal
/// that closes it.
#[derive(Clone)]
struct Conn {
    busy: Arc<AtomicU64>,
    begun: Arc<AtomicU64>,
    body: Arc<BodyProgress>,
    close: Arc<Notify>,
}

/// A connection's place in the table, held by its task, which leaves it when it ends.
struct Slot {
    id: u64,
    conn: Conn,
    table: Arc<Connections>,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, ConnTable> {
        // The table is consistent after every statement; a panic elsewhere cannot break it.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a new connection, waiting at most `wait` for one at the limit; `None`
    /// (counted refused) when none came free, or when too many wait already.
    async fn admit(self: &Arc<Self>, shared: &Shared, wait: Duration) -> Option<Slot> {
        if let Some(slot) = self.try_admit(shared) {
            return Some(slot);
        }
        let refused = || {
            let counters = &shared.store.counters;
            counters.connections_refused.fetch_add(1, Relaxed);
            None
        };
        if self.waiting.fetch_add(1, Relaxed) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Relaxed);
            return refused();
        }
        let deadline = tokio::time::Instant::now() + wait;
        let slot = loop {
            tokio::time::sleep(ADMIT_POLL).await;
            if let Some(slot) = self.try_admit(shared) {
                break Some(slot);
            }
            if tokio::time::Instant::now() >= deadline {
                break None;
            }
        };
        self.waiting.fetch_sub(1, Relaxed);
        slot.or_else(refused)
    }

    /// A slot for a new connection now: at the limit, the oldest connection without a
    /// request in progress is closed for it, else the oldest whose bodies arrive too
    /// slowly; `None` when neither is there.
    fn try_admit(self: &Arc<Self>, shared: &Shared) -> Option<Slot> {
        let counters = &shared.store.counters;
        let limit = usize::try_from(shared.limits.max_connections).unwrap_or(usize::MAX);
        let mut table = self.lock();
        if table.open.len() >= limit {
            let now = epoch_ms();
            let idle = || table.open.iter().find(|(_, c)| c.busy.load(Relaxed) == 0);
            let slow = || {
                let mut conns = table.open.iter();
                conns.find(|(_, c)| c.body.too_slow(c.busy.load(Relaxed), now))
            };
            let (id, counter) = match (idle(), slow()) {
                (Some((id, _)), _) => (*id, &counters.connections_replaced),
                (None, Some((id, _))) => (*id, &counters.connections_slow_closed),
                (None, None) => return None,
            };
            if let Some(old) = table.open.remove(&id) {
                // `notify_one` keeps the signal if the connection is not waiting yet.
                old.close.notify_one();
                counter.fetch_add(1, Relaxed);
            }
        }
        let slot = Slot {
            id: table.next_id,
            conn: Conn {
                busy: Arc::new(AtomicU64::new(0)),
                begun: Arc::new(AtomicU64::new(0)),
                body: Arc::new(BodyProgress::default()),
                close: Arc::new(Notify::new()),
            },
            table: self.clone(),
        };
        table.next_id += 1;
        table.open.insert(slot.id, slot.conn.clone());
        counters
            .connections_open
            .store(table.open.len() as u64, Relaxed);
        Some(slot)
    }

    fn remove(&self, id: u64, shared: &Shared) {
        let mut table = self.lock();
        table.open.remove(&id);
        shared
            .store
            .counters
            .connections_open
            .store(table.open.len() as u64, Relaxed);
    }
}

/// The router, counting the connection's requests in progress while each is handled (from
/// its complete headers to its answer's headers), every request begun, and how fast
/// their bodies arrive.
struct Tracked<S> {
    inner: S,
    busy: Arc<AtomicU64>,
    begun: Arc<AtomicU64>,
    body: Arc<BodyProgress>,
}

/// Counts one request in progress until dropped, answered or abandoned alike.
struct Busy(Arc<AtomicU64>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

impl<S> hyper::service::Service<Request<Incoming>> for Tracked<S>
where
    S: hyper::service::Service<Request<Watched>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        self.begun.fetch_add(1, Relaxed);
        self.busy.fetch_add(1, Relaxed);
        let busy = Busy(self.busy.clone());
        let (parts, incoming) = req.into_parts();
        let progress = (!incoming.is_end_stream()).then(|| {
            self.body.start();
            self.body.clone()
        });
        let watched = Watched {
            inner: incoming,
            progress,
        };
        let answer = self.inner.call(Request::from_parts(parts, watched));
        Box::pin(async move {
            let answered = answer.await;
            drop(busy);
            answered
        })
    }
}

/// A request body that counts its bytes into its connection's `BodyProgress`, and stops
/// counting as being read at its end, an error, or when dropped.
pub(crate) struct Watched {
    inner: Incoming,
    progress: Option<Arc<BodyProgress>>,
}

impl Watched {
    fn finish(&mut self) {
        if let Some(progress) = self.progress.take() {
            progress.reading.fetch_sub(1, Relaxed);
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.finish();
    }
}

impl hyper::body::Body for Watched {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(progress)) = (frame.data_ref(), &self.progress) {
                    progress.bytes.fetch_add(data.len() as u64, Relaxed);
                }
            }
            Poll::Ready(_) => self.finish(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Serves one connection until it ends, an outage begins, the collector shuts down, or it
/// is closed to make room at `max_connections`; in all but the first case the connection
/// is dropped, which closes the socket and drops any request still waiting in a fault (it
/// then counts as abandoned).
async fn serve_connection(
    stream: tokio::net::TcpStream,
    protocol: Protocol,
    router: Router,
    shared: Arc<Shared>,
    slot: Slot,
) {
    let timeout = Duration::from_millis(shared.limits.header_read_timeout_ms);
    let service = Tracked {
        inner: TowerToHyperService::new(router),
        busy: slot.conn.busy.clone(),
        begun: slot.conn.begun.clone(),
        body: slot.conn.body.clone(),
    };
    let io = TokioIo::new(stream);
    let served = async {
        match protocol {
            Protocol::Http1 => serve_http1(io, service, timeout).await,
            Protocol::Grpc => serve_h2(io, service, timeout).await,
        }
    };
    tokio::select! {
        timed_out = served => {
            if timed_out {
                shared.store.counters.connections_timed_out.fetch_add(1, Relaxed);
            }
        }
        _ = outage_or_shutdown(shared.faults.subscribe(), shared.shutdown.subscribe()) => {}
        _ = slot.conn.close.notified() => {}
    }
    slot.table.remove(slot.id, &shared);
}

type Service = Tracked<TowerToHyperService<Router>>;

/// HTTP/1.1 until the connection ends; true when it ended by the header timeout.
async fn serve_http1(
    io: TokioIo<tokio::net::TcpStream>,
    service: Service,
    timeout: Duration,
) -> bool {
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        // Also bounds how long a keep-alive connection may sit idle. The exporter's own
        // pool lets idle connections go sooner (`telemetry`), so it never sends a request
        // on a connection as this timeout closes it.
        .header_read_timeout(Some(timeout))
        .serve_connection(io, service);
    // Any other connection error is the peer's business (reset, garbage).
    conn.await.as_ref().is_err_and(hyper::Error::is_timeout)
}

/// HTTP/2 until the connection ends; true when it was closed for sitting idle. hyper's
/// HTTP/2 server has no header timeout, so the same limit is kept here: a connection
/// with no request in progress and none begun for a whole `timeout` (one that never
/// sent its preface, or a client's idle channel) is closed between one and two
/// timeouts after its last request ended. The close is graceful (GOAWAY): a call sent
/// as it happens is refused, not lost, and gRPC clients retry it on a new connection. A
/// client that does not take part in the graceful close (it answers no PING) is cut off
/// one more timeout later.
async fn serve_h2(io: TokioIo<tokio::net::TcpStream>, service: Service, timeout: Duration) -> bool {
    let (busy, begun) = (service.busy.clone(), service.begun.clone());
    let conn = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .serve_connection(io, service);
    tokio::pin!(conn);
    let mut begun_before = begun.load(Relaxed);
    loop {
        tokio::select! {
            _ = conn.as_mut() => return false,
            _ = tokio::time::sleep(timeout) => {
                let begun_now = begun.load(Relaxed);
                if busy.load(Relaxed) == 0 && begun_now == begun_before {
                    break;
                }
                begun_before = begun_now;
            }
        }
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(timeout, conn).await;
    true
}

async fn outage_or_shutdown(
    mut faults: watch::Receiver<Faults>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let outage = faults.borrow_and_update().outage;
        if outage || *shutdown.borrow_and_update() {
            return;
        }
        tokio::select! {
            r = faults.changed() => if r.is_err() { return },
            r = shutdown.changed() => if r.is_err() { return },
        }
    }
}
