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
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
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
                            let Some(slot) = connections.admit(&shared) else {
                                // Every open connection has a request in progress: close
                                // this one now rather than go past the limit.
                                continue;
                            };
                            // Small requests and answers: do not let Nagle add 40 ms.
                            let _ = stream.set_nodelay(true);
                            tokio::spawn(serve_connection(
                                stream,
                                protocol,
                                router.clone(),
                                shared.clone(),
                                slot,
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

/// The open connections, oldest first, for `max_connections`. A connection that has no
/// request in progress (idle between requests, or still sending its headers, as a slow
/// or hostile client does) can be closed to make room for a new one: so a flood of slow
/// clients never keeps `/stats` or an exporter out, and the limit always holds.
#[derive(Default)]
struct Connections {
    table: Mutex<ConnTable>,
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

    /// A slot for a new connection: at the limit, the oldest connection without a request
    /// in progress is closed for it; `None` (counted) when every one has one.
    fn admit(self: &Arc<Self>, shared: &Shared) -> Option<Slot> {
        let counters = &shared.store.counters;
        let limit = usize::try_from(shared.limits.max_connections).unwrap_or(usize::MAX);
        let mut table = self.lock();
        if table.open.len() >= limit {
            let idle = table
                .open
                .iter()
                .find(|(_, c)| c.busy.load(Relaxed) == 0)
                .map(|(id, _)| *id);
            let Some(id) = idle else {
                counters.connections_refused.fetch_add(1, Relaxed);
                return None;
            };
            if let Some(old) = table.open.remove(&id) {
                // `notify_one` keeps the signal if the connection is not waiting yet.
                old.close.notify_one();
                counters.connections_replaced.fetch_add(1, Relaxed);
            }
        }
        let slot = Slot {
            id: table.next_id,
            conn: Conn {
                busy: Arc::new(AtomicU64::new(0)),
                begun: Arc::new(AtomicU64::new(0)),
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
/// its complete headers to its answer's headers), and every request begun.
struct Tracked<S> {
    inner: S,
    busy: Arc<AtomicU64>,
    begun: Arc<AtomicU64>,
}

/// Counts one request in progress until dropped, answered or abandoned alike.
struct Busy(Arc<AtomicU64>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

impl<S, R> hyper::service::Service<R> for Tracked<S>
where
    S: hyper::service::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn call(&self, req: R) -> Self::Future {
        self.begun.fetch_add(1, Relaxed);
        self.busy.fetch_add(1, Relaxed);
        let busy = Busy(self.busy.clone());
        let answer = self.inner.call(req);
        Box::pin(async move {
            let answered = answer.await;
            drop(busy);
            answered
        })
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
