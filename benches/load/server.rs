//! The trivial server both load generators are measured against: HTTP/1.1 on
//! 127.0.0.1, every request answered 200 with a two-byte body at once, on a thread of its
//! own with a current-thread runtime, pinned to the machine's last CPU where `taskset`
//! exists (unless `GRACETRACE_LOAD_BENCH_NO_PIN` is set), so it never runs on the
//! generator's runtime and stays on one core.

use std::convert::Infallible;
use std::thread::JoinHandle;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

/// Connections waiting to be accepted. Each request opens a connection, so at 5,000
/// requests/s a 10 ms pause of the server (another build took its core) is 50 of them;
/// a full backlog drops SYNs, and a dropped SYN is retried after a whole second.
const BACKLOG: u32 = 4096;

/// A running server; dropping it stops it.
pub struct Server {
    pub port: u16,
    /// Where it was pinned, in words, for the report.
    pub pinned: String,
    /// Its thread's id, to read its CPU time.
    pub tid: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start() -> Server {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("bench server: cannot build its runtime: {e}"));
        let listener = runtime.block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.set_reuseaddr(true)?;
            socket.bind(([127, 0, 0, 1], 0).into())?;
            socket.listen(BACKLOG)
        });
        let listener =
            listener.unwrap_or_else(|e| panic!("bench server: cannot listen on 127.0.0.1: {e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let (stop, stopped) = oneshot::channel();
        let (pinned_tx, pinned_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("bench-server".into())
            .spawn(move || {
                let tid = thread_id();
                let _ = pinned_tx.send((pin(&tid), tid));
                runtime.block_on(serve(listener, stopped));
            })
            .unwrap_or_else(|e| panic!("bench server: cannot start its thread: {e}"));
        let (pinned, tid) = pinned_rx
            .recv()
            .unwrap_or_else(|_| ("not pinned".into(), String::new()));
        Server {
            port,
            pinned,
            tid,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts until told to stop; each connection is served on a task of its own.
async fn serve(listener: tokio::net::TcpListener, mut stopped: oneshot::Receiver<()>) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of descriptors or a connection reset before it was accepted: the
                // generator sees that request fail and the bench counts it.
                Err(_) => continue,
            },
            _ = &mut stopped => return,
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let answer = service_fn(|_request| async {
                Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok"))))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), answer)
                .await;
        });
    }
}

/// The calling thread's id, from /proc/thread-self (a link to `PID/task/TID`), so no
/// unsafe call is needed; empty where there is none.
fn thread_id() -> String {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|link| link.file_name()?.to_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Pins thread `tid` to the last CPU with `taskset -p`; says what it did.
fn pin(tid: &str) -> String {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if std::env::var_os("GRACETRACE_LOAD_BENCH_NO_PIN").is_some() {
        return "not pinned (GRACETRACE_LOAD_BENCH_NO_PIN)".into();
    }
    if tid.is_empty() {
        return "not pinned (no /proc/thread-self)".into();
    }
    let cpu = (cpus - 1).to_string();
    let done = std::process::Command::new("taskset")
        .args(["-p", "-c", &cpu, tid])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    match done {
        Ok(status) if status.success() => format!("pinned to CPU {cpu} of {cpus}"),
        _ => "not pinned (taskset failed or is missing)".into(),
    }
}
