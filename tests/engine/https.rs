//! https and headers: the forward and the exporter against a local OTLP receiver over TLS
//! with a certificate from a private CA (tests/tls/, how it was made: tests/tls/README.md),
//! and the header values kept out of everything gracetrace writes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::collector::{n_spans, post, start};
use crate::common::{PATIENCE, scenario};
use gracetrace::collector::CollectorConfig;
use gracetrace::config::Headers;

const BIN: &str = env!("CARGO_BIN_EXE_gracetrace");
/// The header every test sends; its value must show up nowhere but on the wire.
const SECRET: &str = "hny-s3cr3t-9f8e7d";

fn tls_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tls")
        .join(name)
}

/// What the receiver was sent: each request's headers and body, and the TLS handshakes
/// that failed (a client that refused our certificate).
#[derive(Default)]
struct Received {
    requests: Mutex<Vec<(http::HeaderMap, Bytes)>>,
    failed_handshakes: AtomicU64,
}

/// An OTLP/HTTP receiver on 127.0.0.1 over TLS, answering every request with `status`.
struct Receiver {
    addr: SocketAddr,
    got: Arc<Received>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start(status: u16) -> Receiver {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(tls_file("server.pem"))
            .expect("server.pem")
            .collect::<Result<_, _>>()
            .expect("server.pem parses");
        let key = PrivateKeyDer::from_pem_file(tls_file("server.key")).expect("server.key");
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let got = Arc::new(Received::default());
        let received = got.clone();
        runtime.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(serve(acceptor.clone(), tcp, received.clone(), status));
            }
        });
        Receiver {
            addr,
            got,
            _runtime: runtime,
        }
    }

    /// `https://localhost:PORT/v1/traces`: the certificate names localhost.
    fn url(&self) -> String {
        format!("https://localhost:{}/v1/traces", self.addr.port())
    }

    fn requests(&self) -> Vec<(http::HeaderMap, Bytes)> {
        self.got.requests.lock().unwrap().clone()
    }
}

async fn serve(
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: tokio::net::TcpStream,
    got: Arc<Received>,
    status: u16,
) {
    let Ok(tls) = acceptor.accept(tcp).await else {
        got.failed_handshakes.fetch_add(1, Relaxed);
        return;
    };
    let service = hyper::service::service_fn(move |request: http::Request<_>| {
        let got = got.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = BodyExt::collect(body).await?.to_bytes();
            got.requests.lock().unwrap().push((parts.headers, body));
            let answer = http::Response::builder()
                .status(status)
                .body(Full::new(Bytes::new()))
                .expect("response");
            Ok::<_, hyper::Error>(answer)
        }
    });
    let io = hyper_util::rt::TokioIo::new(tls);
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .await;
}

fn secret_headers() -> Headers {
    Headers::parse(&format!("x-honeycomb-team={SECRET}")).expect("headers")
}

/// A collector forwarding to `receiver`, with the CA file or without it.
fn forwarding(receiver: &Receiver, ca: bool) -> gracetrace::collector::Collector {
    start(CollectorConfig {
        forward: Some(receiver.url()),
        forward_headers: secret_headers(),
        forward_ca_file: ca.then(|| tls_file("ca.pem")),
        ..Default::default()
    })
}

/// With the CA file every accepted batch arrives byte for byte with the header; without
/// it the forward fails on the certificate (not retried: the next try meets the same
/// one) and the intake is not affected; a 401 is counted refused with its status.
#[test]
fn forward_over_https_delivers_fails_on_the_certificate_and_counts_a_401() {
    let receiver = Receiver::start(200);
    let front = forwarding(&receiver, true);
    let bodies: Vec<Vec<u8>> = (0..4).map(|seed| n_spans(6, seed)).collect();
    for body in &bodies {
        assert_eq!(post(front.addr(), &[], body).status, 200);
    }
    assert!(front.wait_forwarded(PATIENCE), "forwards still pending");
    let f = front.stats();
    assert_eq!(
        (f.forward_accepted, f.forward_spans_accepted),
        (4, 24),
        "{f:?}"
    );
    let got = receiver.requests();
    let sent: Vec<&[u8]> = got.iter().map(|(_, body)| body.as_ref()).collect();
    assert_eq!(sent, bodies.iter().map(Vec::as_slice).collect::<Vec<_>>());
    for (headers, _) in &got {
        assert_eq!(headers["x-honeycomb-team"], SECRET);
    }

    let untrusted = Receiver::start(200);
    let front = forwarding(&untrusted, false);
    assert_eq!(post(front.addr(), &[], &n_spans(5, 9)).status, 200);
    assert!(front.wait_forwarded(PATIENCE), "forwards still pending");
    let f = front.stats();
    assert_eq!((f.spans_received, f.requests_accepted), (5, 1), "{f:?}");
    assert_eq!(
        (f.forward_failed, f.forward_accepted, f.forward_retries),
        (1, 0, 0)
    );
    let why = f.forward_last_error.clone().unwrap_or_default();
    assert!(why.contains("certificate"), "{why}");
    assert!(untrusted.requests().is_empty());
    assert!(untrusted.got.failed_handshakes.load(Relaxed) >= 1);

    let refusing = Receiver::start(401);
    let front = forwarding(&refusing, true);
    assert_eq!(post(front.addr(), &[], &n_spans(5, 3)).status, 200);
    assert!(front.wait_forwarded(PATIENCE), "forwards still pending");
    let f = front.stats();
    assert_eq!(
        (f.forward_refused, f.forward_failed, f.forward_retries),
        (1, 0, 0)
    );
    assert_eq!(
        f.forward_last_error.as_deref(),
        Some("refused: 401 Unauthorized")
    );
    let json = serde_json::to_string(&f).unwrap();
    assert!(!json.contains(SECRET), "{json}");
}

/// The exporter to an https endpoint: with the CA file every exported span arrives with
/// the header; without it every export fails and nothing arrives.
#[test]
fn exporter_over_https_with_and_without_the_ca_file() {
    let receiver = Receiver::start(200);
    let ca = tls_file("ca.pem");
    let endpoint = format!("exporter.endpoint={}", receiver.url());
    let headers = format!("exporter.headers=x-honeycomb-team={SECRET}");
    let ca_file = format!("exporter.ca_file={}", ca.display());
    let base = ["workload.duration_s=1", "workload.rate_per_s=20"];
    let settings = scenario(
        "seed-defaults",
        &[base[0], base[1], &endpoint, &headers, &ca_file],
    );
    let report = gracetrace::session::run(&settings).expect("run");
    let got = receiver.requests();
    let spans: usize = got
        .iter()
        .map(|(_, body)| {
            let request = ExportTraceServiceRequest::decode(body.as_ref()).expect("OTLP");
            request
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum::<usize>()
        })
        .sum();
    assert!(spans > 0);
    assert_eq!(
        report.spans.counts.exported, spans as u64,
        "{:?}",
        report.spans
    );
    assert!(got.iter().all(|(h, _)| h["x-honeycomb-team"] == SECRET));
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains(SECRET));
    assert!(json.contains("x-honeycomb-team"), "the names are shown");

    let untrusted = Receiver::start(200);
    let endpoint = format!("exporter.endpoint={}", untrusted.url());
    let settings = scenario("seed-defaults", &[base[0], base[1], &endpoint, &headers]);
    let report = gracetrace::session::run(&settings).expect("run");
    assert_eq!(report.spans.counts.exported, 0, "{:?}", report.spans);
    assert!(report.spans.counts.export_failed > 0, "{:?}", report.spans);
    assert!(untrusted.requests().is_empty());
}

fn gracetrace(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    for (var, _) in std::env::vars() {
        if var.starts_with("OTEL_") || var.starts_with("GRACETRACE_") {
            cmd.env_remove(var);
        }
    }
    cmd.args(args).envs(env.iter().copied());
    cmd.output().expect("run gracetrace")
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("gracetrace-https-{name}-{}", std::process::id()))
}

/// The header's value is in none of: `run`'s JSON report and stderr, `probe`'s `--json`,
/// a saved scenario (unless asked for), an error about a bad list.
#[test]
fn header_values_are_printed_nowhere() {
    let receiver = Receiver::start(200);
    let env = [(
        "OTEL_EXPORTER_OTLP_HEADERS",
        &*format!("x-honeycomb-team={SECRET}"),
    )];
    let forward_headers = format!("collector.forward_headers=authorization=Bearer%20{SECRET}");
    let forward = format!("collector.forward={}", receiver.url());
    let ca = format!("collector.forward_ca_file={}", tls_file("ca.pem").display());
    let json = temp("run.json");
    let args = [
        "run",
        "--scenario",
        "assets/scenarios/seed-defaults.toml",
        "--set",
        "workload.duration_s=1",
        "--set",
        &forward,
        "--set",
        &forward_headers,
        "--set",
        &ca,
        "--json",
        json.to_str().unwrap(),
    ];
    let out = gracetrace(&env, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report = std::fs::read_to_string(&json).expect("report");
    let _ = std::fs::remove_file(&json);
    for (what, text) in [("report", &*report), ("stderr", &*stderr)] {
        assert!(!text.contains(SECRET), "{what}: {text}");
    }
    assert!(report.contains("authorization"), "names are shown");
    assert!(
        receiver
            .requests()
            .iter()
            .all(|(h, _)| h["authorization"] == format!("Bearer {SECRET}"))
    );

    let probe_json = temp("probe.json");
    let out = gracetrace(
        &env,
        &[
            "probe",
            "--set",
            &forward,
            "--set",
            &forward_headers,
            "--sigterm-at",
            "600",
            "--json",
            probe_json.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "exit 0",
        ],
    );
    let probe = std::fs::read_to_string(&probe_json).expect("probe report");
    let _ = std::fs::remove_file(&probe_json);
    assert!(!probe.contains(SECRET), "{probe}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains(SECRET));

    let settings = scenario("seed-defaults", &[&forward_headers]);
    let saved = gracetrace::config::scenario_file::to_toml(&settings);
    assert!(!saved.contains(SECRET), "{saved}");
    assert!(saved.contains("authorization"), "{saved}");
    let kept = gracetrace::config::scenario_file::to_toml_with_secrets(&settings);
    assert!(kept.contains(SECRET), "asked for, the values are kept");
    assert!(!format!("{settings:?}").contains(SECRET));
}

/// A malformed header list, an unreadable CA file, `https://` with no host: exit 2, one
/// line naming the variable or key, and never the header text.
#[test]
fn bad_https_input_is_named_in_one_line() {
    let run = ["run", "--set", "workload.duration_s=0.1"];
    let bad_list = format!("x-honeycomb-team={SECRET},oops");
    for (env, set, named) in [
        (
            vec![("OTEL_EXPORTER_OTLP_HEADERS", bad_list.as_str())],
            None,
            "OTEL_EXPORTER_OTLP_HEADERS",
        ),
        (
            vec![],
            Some(format!("collector.forward_headers={bad_list}")),
            "collector.forward_headers",
        ),
        (
            vec![("OTEL_EXPORTER_OTLP_CERTIFICATE", "/no/such/ca.pem")],
            None,
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
        ),
        (
            vec![],
            Some("collector.forward_ca_file=/no/such/ca.pem".into()),
            "collector.forward_ca_file",
        ),
        (
            vec![],
            Some("exporter.endpoint=https://".into()),
            "exporter.endpoint",
        ),
        (
            vec![],
            Some("collector.forward=https:///v1/traces".into()),
            "collector.forward",
        ),
    ] {
        let mut args: Vec<&str> = run.to_vec();
        if let Some(set) = &set {
            args.extend(["--set", set]);
        }
        let out = gracetrace(&env, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{named}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(named), "{named}: {stderr}");
        assert!(!stderr.contains(SECRET), "{stderr}");
    }
}
