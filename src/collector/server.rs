//! The accept loop: our own instead of `axum::serve`, because an outage must REFUSE
//! connections (connect() fails with ECONNREFUSED, as against a crashed backend), which only
//! closing the listening socket does, and because open keep-alive connections must be cut
//! when an outage begins.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;

use super::Shared;
use super::faults::Faults;

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

/// Serves until shutdown. `addr` is the bound address (with the real port), used to rebind.
pub(crate) async fn serve(
    listener: TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
    router: Router,
) {
    let mut faults = shared.faults.subscribe();
    let mut shutdown = shared.shutdown.subscribe();
    let mut listener = Some(listener);
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
                            tokio::spawn(serve_connection(
                                stream,
                                router.clone(),
                                shared.faults.subscribe(),
                                shared.shutdown.subscribe(),
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

/// Serves one connection until it ends, an outage begins, or the collector shuts down; in
/// the last two cases the connection is dropped, which closes the socket and drops any
/// request still waiting in a fault (it then counts as abandoned).
async fn serve_connection(
    stream: tokio::net::TcpStream,
    router: Router,
    faults: watch::Receiver<Faults>,
    shutdown: watch::Receiver<bool>,
) {
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        // hyper's default 30 s header timeout also runs while a keep-alive connection is
        // idle, and closing idle connections races with the exporter's pool reusing them:
        // spurious connection errors that would be counted as backend failures. Peers are
        // local; outage and shutdown close connections anyway.
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(router));
    tokio::select! {
        // A connection error is the peer's business (reset, garbage); nothing to count.
        _ = conn => {}
        _ = outage_or_shutdown(faults, shutdown) => {}
    }
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
