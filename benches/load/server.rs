//! The trivial server both load generators are measured against: HTTP/1.1 on
//! 127.0.0.1, every request answered 200 with a two-byte body at once.
//!
//! It runs in a process of its own (this bench's executable again, told so by
//! [`SERVE_ENV`]), so that the probe, which runs inside the bench, and oha, a process of
//! its own, both talk to another process: a switch between threads of one process is
//! cheaper than between processes, which would favour the probe. One thread with a
//! current-thread runtime, pinned to the machine's last CPU where `taskset` exists
//! (unless `GRACETRACE_LOAD_BENCH_NO_PIN` is set), and both generators pinned to the
//! other CPUs ([`Pinning`]), so that neither shares the server's core: a generator whose
//! threads ran there more made the server slower for its requests (tcpdump on lo at
//! 5,000/s under load, same run: the server's request-to-response p50 0.236 ms under oha,
//! 0.143 ms under the probe; pinned, 0.040 ms for both).
//! `GRACETRACE_LOAD_BENCH_FREE_GENERATORS` leaves the generators where the scheduler puts
//! them; on 2 CPUs that measured worse, not better (README, "Load generator accuracy").

use std::convert::Infallible;
use std::io::{BufRead as _, Write as _};
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// Set in the server's environment: the bench's executable then serves instead.
pub const SERVE_ENV: &str = "GRACETRACE_LOAD_BENCH_SERVE";

/// Connections waiting to be accepted. Each request opens a connection, so at 5,000
/// requests/s a 10 ms pause of the server (another build took its core) is 50 of them;
/// a full backlog drops SYNs, and a dropped SYN is retried after a whole second.
const BACKLOG: u32 = 4096;

/// A running server process; dropping it kills it.
pub struct Server {
    pub port: u16,
    /// Where it was pinned, in words, for the report.
    pub pinned: String,
    child: Child,
}

impl Server {
    /// Starts the server process, pinned as `pinning` says, and reads its port and
    /// pinning from its first line.
    pub fn start(pinning: &Pinning) -> Server {
        let exe = std::env::current_exe()
            .unwrap_or_else(|e| panic!("bench server: cannot find this executable: {e}"));
        let mut child = Command::new(&exe)
            .env(
                SERVE_ENV,
                pinning.server.map_or("none".into(), |cpu| cpu.to_string()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("bench server: cannot start {}: {e}", exe.display()));
        let mut first = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = std::io::BufReader::new(out).read_line(&mut first);
        }
        let (port, pinned) = first.trim().split_once(' ').unwrap_or(("", ""));
        let Ok(port) = port.parse() else {
            let _ = child.kill();
            panic!("bench server: expected 'PORT PINNING' on its first line, got {first:?}");
        };
        Server {
            port,
            pinned: pinned.to_owned(),
            child,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server process's main: pins itself to the CPU [`SERVE_ENV`] names, listens, prints
/// `PORT PINNING`, serves until killed.
pub fn serve_here() {
    let cpu: Option<usize> = std::env::var(SERVE_ENV).ok().and_then(|v| v.parse().ok());
    let pinned = match cpu {
        Some(cpu) => pin(&std::process::id().to_string(), &cpu.to_string()),
        None => "not pinned".into(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("bench server: cannot build its runtime: {e}"));
    runtime.block_on(async {
        let listener = listen().unwrap_or_else(|e| panic!("bench server: cannot listen: {e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let mut out = std::io::stdout();
        let _ = writeln!(out, "{port} {pinned}").and_then(|()| out.flush());
        serve(listener).await;
    });
}

fn listen() -> std::io::Result<tokio::net::TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(([127, 0, 0, 1], 0).into())?;
    socket.listen(BACKLOG)
}

/// Accepts forever; each connection is served on a task of its own.
async fn serve(listener: tokio::net::TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors or a connection reset before it was accepted: the
            // generator sees that request fail and the bench counts it.
            continue;
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

/// Where the server and the generators run: the server on the machine's last CPU, and,
/// unless `GRACETRACE_LOAD_BENCH_FREE_GENERATORS` is set, both generators (the probe, in
/// this process, and oha) on the others. Nothing is pinned on one CPU, or when
/// `GRACETRACE_LOAD_BENCH_NO_PIN` is set, or without `taskset`.
pub struct Pinning {
    pub server: Option<usize>,
    /// The generators' CPUs in `taskset -c`'s words, e.g. `0-14`.
    pub generators: Option<String>,
}

impl Pinning {
    /// Decides, and pins this process (every thread it has, and so every thread it will
    /// start) to the generators' CPUs. Call before starting any thread of the load.
    pub fn here() -> Pinning {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let none = Pinning {
            server: None,
            generators: None,
        };
        if cpus < 2 || std::env::var_os("GRACETRACE_LOAD_BENCH_NO_PIN").is_some() {
            return none;
        }
        if std::env::var_os("GRACETRACE_LOAD_BENCH_FREE_GENERATORS").is_some() {
            // The server pins itself in its own process (`serve_here`), which says
            // whether `taskset` did it.
            return Pinning {
                server: Some(cpus - 1),
                generators: None,
            };
        }
        let generators = match cpus {
            2 => "0".to_string(),
            _ => format!("0-{}", cpus - 2),
        };
        let pid = std::process::id().to_string();
        match taskset(&["-a", "-p", "-c", &generators, &pid]) {
            true => Pinning {
                server: Some(cpus - 1),
                generators: Some(generators),
            },
            false => none,
        }
    }

    /// In words, for the report.
    pub fn describe(&self) -> String {
        match (&self.server, &self.generators) {
            (Some(server), Some(generators)) => {
                format!("server on CPU {server}, both generators on CPU {generators}")
            }
            (Some(server), None) => format!("server on CPU {server}, the generators free"),
            _ => "nothing pinned (one CPU, GRACETRACE_LOAD_BENCH_NO_PIN, or no taskset)".into(),
        }
    }
}

/// Pins process `id` to `cpus` with `taskset -p`; says what it did.
fn pin(id: &str, cpus: &str) -> String {
    match taskset(&["-p", "-c", cpus, id]) {
        true => format!("pinned to CPU {cpus}"),
        false => "not pinned (taskset failed)".into(),
    }
}

/// Runs `taskset` with `args`, quietly; whether it succeeded (false without `taskset`).
fn taskset(args: &[&str]) -> bool {
    Command::new("taskset")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}
