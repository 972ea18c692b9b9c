//! The collector's OTLP/gRPC intake through real HTTP/2 connections: the same spans count
//! alike by gRPC, OTLP/HTTP protobuf and OTLP/HTTP JSON; malformed calls get an error
//! status and the collector lives on; faults and limits reach gRPC as gRPC statuses.
//!
//! The client is hyper's HTTP/2 client (prior knowledge, plaintext, as an insecure gRPC
//! channel connects), with the gRPC framing written out by hand, so that the tests see
//! exactly what goes over the wire: malformed frames included, which no gRPC library
//! would send.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use crate::collector::{JSON, gzip, http, post, request, span, start, with_resource};
use crate::common::{PATIENCE, wait_until};
use gracetrace::collector::{
    Collector, CollectorConfig, CollectorStats, Faults, GRPC_EXPORT_PATH, Limits, RUNNER_HEADER,
};

/// gRPC status codes the tests expect.
const OK: u32 = 0;
const UNKNOWN: u32 = 2;
const INVALID_ARGUMENT: u32 = 3;
const RESOURCE_EXHAUSTED: u32 = 8;
const UNIMPLEMENTED: u32 = 12;
const UNAVAILABLE: u32 = 14;

/// What came back from one call.
#[derive(Debug)]
pub(crate) struct Answer {
    http_status: u16,
    headers: HeaderMap,
    body: Bytes,
    trailers: HeaderMap,
}

impl Answer {
    /// `grpc-status`, from the trailers or, for a trailers-only answer, the headers.
    pub fn code(&self) -> Option<u32> {
        let value = self
            .trailers
            .get("grpc-status")
            .or_else(|| self.headers.get("grpc-status"))?;
        value.to_str().ok()?.parse().ok()
    }

    fn message(&self) -> String {
        let value = self
            .trailers
            .get("grpc-message")
            .or_else(|| self.headers.get("grpc-message"));
        value.map_or_else(String::new, |v| v.to_str().unwrap_or("").to_owned())
    }

    fn metadata(&self, name: &str) -> Option<&str> {
        self.trailers
            .get(name)
            .or_else(|| self.headers.get(name))
            .and_then(|v| v.to_str().ok())
    }
}

/// One HTTP/2 connection to a gRPC listener; calls go one after another on it.
pub(crate) struct Client {
    runtime: tokio::runtime::Runtime,
    sender: hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    addr: SocketAddr,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let sender = runtime.block_on(async {
            let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let (sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                    .await
                    .expect("HTTP/2 handshake");
            tokio::spawn(conn);
            sender
        });
        Client {
            runtime,
            sender,
            addr,
        }
    }

    /// A POST to `path` with `body` as it is (framed or not) and these headers, with
    /// gRPC's Content-Type unless they name another.
    fn call_raw(&mut self, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
        let req = call(self.addr, path, headers, body);
        let sender = &mut self.sender;
        self.runtime.block_on(async {
            let resp = sender.send_request(req).await.expect("an answer");
            let (parts, body) = resp.into_parts();
            let collected = body.collect().await.expect("the whole answer");
            Answer {
                http_status: parts.status.as_u16(),
                headers: parts.headers,
                trailers: collected.trailers().cloned().unwrap_or_default(),
                body: collected.to_bytes(),
            }
        })
    }

    /// An `Export` call carrying `message`, framed (gzipped when `gzip`).
    pub fn export(&mut self, headers: &[(&str, &str)], message: &[u8], gzip_it: bool) -> Answer {
        let mut headers = headers.to_vec();
        if gzip_it {
            headers.push(("grpc-encoding", "gzip"));
        }
        let body = if gzip_it {
            frame(1, &gzip(message))
        } else {
            frame(0, message)
        };
        self.call_raw(GRPC_EXPORT_PATH, &headers, body)
    }
}

/// A gRPC call's request, as `Client::call_raw` sends it.
fn call(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> http::Request<Full<Bytes>> {
    let mut req = http::Request::post(format!("http://{addr}{path}")).header("te", "trailers");
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        req = req.header("content-type", "application/grpc");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(Full::new(Bytes::from(body))).expect("request")
}

/// Headers besides gRPC's own, name and value.
type Headers<'a> = &'a [(&'a str, &'a str)];

/// gRPC's length-prefixed message.
fn frame(flag: u8, message: &[u8]) -> Vec<u8> {
    let mut v = vec![flag];
    v.extend_from_slice(&(message.len() as u32).to_be_bytes());
    v.extend_from_slice(message);
    v
}

fn grpc_collector(config: CollectorConfig) -> (Collector, SocketAddr) {
    let c = start(CollectorConfig {
        grpc_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..config
    });
    let addr = c.grpc_addr().expect("a gRPC listener");
    (c, addr)
}

/// Everything but the bytes on the wire (each encoding has its own size), the
/// connections still open and the protocol.
fn counts(c: &Collector) -> CollectorStats {
    CollectorStats {
        bytes_received: 0,
        connections_open: 0,
        requests_grpc: 0,
        ..c.stats()
    }
}

/// The same requests (a trace with its root, an orphan, a resource, a resend of one of
/// them) by gRPC, gzipped gRPC, OTLP/HTTP protobuf and OTLP/HTTP JSON: identical counts,
/// duplicates, orphans, resource and stored spans; the gRPC answer is a framed
/// `ExportTraceServiceResponse` with status OK in the trailers.
#[test]
fn grpc_and_http_protobuf_and_json_count_alike() {
    let requests = [
        with_resource(
            vec![span(1, 1, None, "root"), span(1, 2, Some(1), "child")],
            "python",
        ),
        request(vec![
            span(2, 3, Some(9), "orphan"),
            span(3, 4, None, "other"),
        ]),
        request(vec![span(1, 2, Some(1), "child")]),
    ];
    let (grpc, grpc_addr) = grpc_collector(CollectorConfig::default());
    let (grpc_gz, grpc_gz_addr) = grpc_collector(CollectorConfig::default());
    let proto = start(CollectorConfig::default());
    let json = start(CollectorConfig::default());
    let (mut plain, mut zipped) = (Client::connect(grpc_addr), Client::connect(grpc_gz_addr));
    for message in &requests {
        let answer = plain.export(&[], message, false);
        assert_eq!(answer.http_status, 200);
        assert_eq!(answer.code(), Some(OK), "{answer:?}");
        assert_eq!(
            answer.headers.get("content-type").unwrap(),
            "application/grpc"
        );
        // The response message: an empty ExportTraceServiceResponse, framed.
        assert_eq!(&answer.body[..], &[0, 0, 0, 0, 0]);
        assert_eq!(zipped.export(&[], message, true).code(), Some(OK));
        assert_eq!(post(proto.addr(), &[], message).status, 200);
        let decoded = ExportTraceServiceRequest::decode(message.as_slice()).unwrap();
        let text = serde_json::to_vec(&decoded).expect("OTLP/JSON");
        let r = http(json.addr(), "POST", "/v1/traces", &[JSON], &text).unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let expected = counts(&proto);
    assert_eq!(
        (
            expected.spans_received,
            expected.duplicates,
            expected.traces_seen
        ),
        (5, 1, 3)
    );
    for (name, c) in [("grpc", &grpc), ("grpc gzip", &grpc_gz), ("json", &json)] {
        assert_eq!(counts(c), expected, "{name}");
        assert_eq!(c.recent_traces(), proto.recent_traces(), "{name}");
        assert_eq!(c.orphans(), proto.orphans(), "{name}");
        assert_eq!(c.app_resource(), proto.app_resource(), "{name}");
    }
    assert_eq!(grpc.orphans().traces, 1);
    assert_eq!(
        (grpc.stats().requests_grpc, proto.stats().requests_grpc),
        (3, 0)
    );
    assert!(grpc.stats().bytes_received > 0);
}

/// Malformed calls, each on the same connection: a frame cut short, bytes past the
/// message, a compressed message with no encoding, garbage protobuf, bad gzip, an unknown
/// encoding, no message, a bad id, a wrong Content-Type, an unknown method. Each gets its
/// status and reason; then a valid call on that connection, and a new one after garbage
/// that is not HTTP/2 at all, are counted.
#[test]
fn malformed_grpc_gets_an_error_status_and_the_collector_lives_on() {
    let (c, addr) = grpc_collector(CollectorConfig::default());
    let mut client = Client::connect(addr);
    let valid = request(vec![span(1, 1, None, "root")]);
    let mut bad_id = span(4, 9, None, "x");
    bad_id.span_id.truncate(3);
    let cut = frame(0, &valid)[..8].to_vec();
    let mut extra = frame(0, &valid);
    extra.extend_from_slice(&[1, 2, 3]);
    let no_encoding = frame(1, &gzip(&valid));
    let gzipped: Headers = &[("grpc-encoding", "gzip")];
    let snappy: Headers = &[("grpc-encoding", "snappy")];
    // Extra headers, body, the status and what its message says.
    let cases: Vec<(Headers, Vec<u8>, u32, &str)> = vec![
        (&[], cut, INVALID_ARGUMENT, "cut off"),
        (&[], extra, INVALID_ARGUMENT, "3 bytes after"),
        (&[], no_encoding, INVALID_ARGUMENT, "grpc-encoding"),
        (
            &[],
            frame(0, &[0xff; 64]),
            INVALID_ARGUMENT,
            "not an ExportTraceServiceRequest",
        ),
        (gzipped, frame(1, b"not gzip"), INVALID_ARGUMENT, "gzip"),
        (snappy, frame(0, &valid), UNIMPLEMENTED, "snappy"),
        (&[], Vec::new(), INVALID_ARGUMENT, "no message"),
        (
            &[],
            frame(0, &request(vec![bad_id])),
            INVALID_ARGUMENT,
            "span_id of 3 bytes",
        ),
    ];
    for (headers, body, code, says) in cases {
        let answer = client.call_raw(GRPC_EXPORT_PATH, headers, body);
        assert_eq!(answer.http_status, 200, "{says}");
        assert_eq!(answer.code(), Some(code), "{says}: {answer:?}");
        assert!(
            answer.message().contains(says),
            "{says}: {}",
            answer.message()
        );
        assert!(answer.body.is_empty(), "trailers-only: {answer:?}");
    }
    let answer = client.call_raw(
        GRPC_EXPORT_PATH,
        &[("content-type", "application/json")],
        frame(0, &valid),
    );
    assert_eq!(answer.http_status, 415, "not gRPC at all: plain HTTP");
    let answer = client.call_raw("/some.Service/Method", &[], frame(0, &valid));
    assert_eq!(answer.code(), Some(UNIMPLEMENTED));
    assert!(answer.message().contains(GRPC_EXPORT_PATH), "{answer:?}");

    assert_eq!(client.export(&[], &valid, false).code(), Some(OK));
    // Not HTTP/2: the connection is closed, the listener serves on.
    let mut garbage = TcpStream::connect(addr).expect("connect");
    garbage.set_read_timeout(Some(PATIENCE)).unwrap();
    garbage
        .write_all(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff")
        .expect("write");
    let mut rest = Vec::new();
    let _ = garbage.read_to_end(&mut rest);
    let answer = Client::connect(addr).export(&[], &request(vec![span(5, 5, None, "r")]), false);
    assert_eq!(answer.code(), Some(OK));

    let s = c.stats();
    assert_eq!((s.spans_received, s.requests_accepted), (2, 2));
    assert_eq!(s.requests, 11, "the unknown method is not an export: {s:?}");
    assert_eq!(s.requests_grpc, 11);
    assert_eq!(s.requests_rejected, 9);
    let reasons: Vec<(&str, u64)> = s
        .rejected_by_reason
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        reasons,
        [
            ("bad_gzip", 1),
            ("bad_id", 1),
            ("empty", 1),
            ("undecodable", 4),
            ("unsupported_content_encoding", 1),
            ("unsupported_content_type", 1),
        ]
    );
}

/// Injected errors, the ingestion quota, a body over the limit and a killed runner
/// answer gRPC codes the Python exporter retries or not as it does their HTTP
/// statuses, with the delay of `Retry-After` as `RetryInfo`; an outage refuses gRPC
/// connections too.
#[test]
fn faults_reach_grpc_as_grpc_statuses() {
    let (c, addr) = grpc_collector(CollectorConfig {
        limits: Limits {
            max_body_bytes: 4096,
            ..Limits::default()
        },
        ..Default::default()
    });
    let mut client = Client::connect(addr);
    let message = request(vec![span(1, 1, None, "root")]);
    let injected = |status: u16, retry_after_s: Option<u64>| Faults {
        error_rate: 1.0,
        error_status: status,
        retry_after_s,
        ..Faults::default()
    };
    c.set_faults(injected(503, Some(2))).unwrap();
    let answer = client.export(&[], &message, false);
    assert_eq!(answer.code(), Some(UNAVAILABLE), "{answer:?}");
    // RetryInfo { retry_delay: Duration { seconds: 2 } }, base64 without padding.
    assert_eq!(answer.metadata("google.rpc.retryinfo-bin"), Some("CgIIAg"));
    assert!(answer.metadata("grpc-status-details-bin").is_some());
    c.set_faults(injected(500, None)).unwrap();
    let answer = client.export(&[], &message, false);
    assert_eq!(answer.code(), Some(UNKNOWN));
    assert_eq!(answer.metadata("google.rpc.retryinfo-bin"), None);

    c.set_faults(Faults {
        ingest_limit_spans_per_s: Some(1),
        ..Faults::default()
    })
    .unwrap();
    assert_eq!(client.export(&[], &message, false).code(), Some(OK));
    let answer = client.export(&[], &request(vec![span(2, 2, None, "r")]), false);
    assert_eq!(answer.code(), Some(RESOURCE_EXHAUSTED), "{answer:?}");
    assert_eq!(answer.metadata("google.rpc.retryinfo-bin"), Some("CgIIAQ"));
    c.set_faults(Faults::default()).unwrap();

    let big = request((0..100).map(|i| span(3, i, None, "s")).collect());
    let answer = client.export(&[], &big, false);
    assert_eq!(answer.code(), Some(RESOURCE_EXHAUSTED), "{answer:?}");
    assert!(answer.message().contains("4096"), "{}", answer.message());

    c.runner_killed(7);
    let answer = client.export(&[(RUNNER_HEADER, "7")], &message, false);
    assert_eq!(answer.code(), Some(UNAVAILABLE));
    let s = c.stats();
    assert_eq!(s.requests_dropped_killed_runner, 1);
    assert_eq!(s.spans_received, 1);
    assert_eq!(s.rejected_by_reason.get("injected_503"), Some(&1));
    assert_eq!(s.rejected_by_reason.get("injected_500"), Some(&1));
    assert_eq!(s.rejected_by_reason.get("rate_limited"), Some(&1));
    assert_eq!(s.rejected_by_reason.get("too_large"), Some(&1));

    c.set_faults(Faults {
        outage: true,
        ..Faults::default()
    })
    .unwrap();
    wait_until("the gRPC port to refuse", PATIENCE, || {
        TcpStream::connect(addr).is_err()
    });
    c.set_faults(Faults::default()).unwrap();
    wait_until("the gRPC port to come back", PATIENCE, || {
        TcpStream::connect(addr).is_ok()
    });
    let answer = Client::connect(addr).export(&[], &request(vec![span(8, 8, None, "r")]), false);
    assert_eq!(answer.code(), Some(OK));
}

/// A black hole never answers a gRPC call: it is held until the fault is switched off,
/// then answered and counted; a call whose client goes away is abandoned, not counted.
#[test]
fn a_black_hole_holds_grpc_calls() {
    let (c, addr) = grpc_collector(CollectorConfig {
        faults: Faults {
            black_hole: true,
            ..Faults::default()
        },
        ..Default::default()
    });
    let message = request(vec![span(1, 1, None, "root")]);
    let sent = message.clone();
    let caller = thread::spawn(move || Client::connect(addr).export(&[], &sent, false));
    wait_until("the call to be held", PATIENCE, || {
        c.stats().requests_in_flight == 1
    });
    assert_eq!(c.stats().spans_received, 0);
    c.set_faults(Faults::default()).unwrap();
    assert_eq!(caller.join().unwrap().code(), Some(OK));
    assert_eq!(c.stats().spans_received, 1);

    c.set_faults(Faults {
        black_hole: true,
        ..Faults::default()
    })
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let gone = thread::spawn(move || {
        let mut client = Client::connect(addr);
        let again = frame(0, &request(vec![span(2, 2, None, "held")]));
        let held = client
            .sender
            .send_request(call(addr, GRPC_EXPORT_PATH, &[], again));
        // Drives the connection until the test says go; then the client (its runtime and
        // connection) is dropped with the call still unanswered.
        client.runtime.block_on(async {
            tokio::select! {
                _ = held => panic!("a black hole answered"),
                _ = stopped => {}
            }
        });
    });
    wait_until("the second call to be held", PATIENCE, || {
        c.stats().requests_in_flight == 1
    });
    let _ = stop.send(());
    gone.join().expect("the client thread");
    wait_until("the call to be abandoned", PATIENCE, || {
        c.stats().requests_abandoned == 1
    });
    assert_eq!(c.stats().spans_received, 1);
}

/// A gRPC connection that never sends its preface, or sits idle, is closed after the
/// header timeout, as an HTTP/1 one is.
#[test]
fn an_idle_grpc_connection_is_closed_by_the_header_timeout() {
    let (c, addr) = grpc_collector(CollectorConfig {
        limits: Limits {
            header_read_timeout_ms: 200,
            ..Limits::default()
        },
        ..Default::default()
    });
    let mut silent = TcpStream::connect(addr).expect("connect");
    silent.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut rest = Vec::new();
    // The server's SETTINGS, then EOF once it closes the connection.
    let _ = silent.read_to_end(&mut rest);
    wait_until("the timeout to be counted", PATIENCE, || {
        c.stats().connections_timed_out >= 1
    });
    let mut client = Client::connect(addr);
    let message = request(vec![span(1, 1, None, "root")]);
    assert_eq!(client.export(&[], &message, false).code(), Some(OK));
    wait_until("the idle channel to be closed", PATIENCE, || {
        c.stats().connections_timed_out >= 2
    });
    assert_eq!(
        Client::connect(addr).export(&[], &message, false).code(),
        Some(OK)
    );
    assert_eq!(c.stats().spans_received, 2);
}

/// Forwarding from the gRPC intake: the backend gets each accepted message over OTLP/HTTP,
/// gzipped ones as `Content-Encoding: gzip`.
#[test]
fn grpc_batches_are_forwarded_over_http() {
    let backend = start(CollectorConfig::default());
    let (front, addr) = grpc_collector(CollectorConfig {
        forward: Some(backend.traces_endpoint()),
        ..Default::default()
    });
    let mut client = Client::connect(addr);
    let first = request(vec![span(1, 1, None, "a"), span(1, 2, Some(1), "b")]);
    assert_eq!(client.export(&[], &first, false).code(), Some(OK));
    let second = request(vec![span(2, 3, None, "c")]);
    assert_eq!(client.export(&[], &second, true).code(), Some(OK));
    assert!(front.wait_forwarded(PATIENCE), "forwards still pending");
    let (f, b) = (front.stats(), backend.stats());
    assert_eq!((f.forward_accepted, f.forward_spans_accepted), (2, 3));
    assert_eq!((b.spans_received, b.requests_accepted), (3, 2));
    assert_eq!(backend.recent_traces(), front.recent_traces());
}
