//! Integration tests of the embedded collector through its public API and real sockets.
//!
//! The HTTP client is a few lines over `std::net::TcpStream`, so that the tests see exactly
//! what goes over the wire (status, headers, refused connects) with no client library
//! retrying or pooling behind their back. Its helpers (requests, spans, gzip) serve the
//! gRPC tests too (`collector_grpc`).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Instant;

use crate::common::{PATIENCE, wait_until};
use gracetrace::collector::{Collector, CollectorConfig, Faults, Limits};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

pub(crate) struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), read to EOF.
pub(crate) fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Resp> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(PATIENCE))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse(&raw)
}

fn parse(raw: &[u8]) -> io::Result<Resp> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_owned());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of head"))?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| bad("head not utf-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("no status line"))?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(Resp {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    })
}

/// Reads one response off a keep-alive connection: the head, then `Content-Length` bytes.
fn read_response(s: &mut TcpStream) -> io::Result<Resp> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = parse(&raw[..split + 4])?;
            let length: usize = head
                .header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if raw.len() >= split + 4 + length {
                return parse(&raw);
            }
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

pub(crate) const PROTO: (&str, &str) = ("Content-Type", "application/x-protobuf");

pub(crate) fn post(addr: SocketAddr, extra: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut headers = vec![PROTO];
    headers.extend_from_slice(extra);
    http(addr, "POST", "/v1/traces", &headers, body).expect("request")
}

pub(crate) fn span(trace: u8, id: u8, parent: Option<u8>, name: &str) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: name.to_owned(),
        start_time_unix_nano: 1_000 + u64::from(id),
        end_time_unix_nano: 2_000,
        attributes: vec![KeyValue {
            key: "model".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("resnet".into())),
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub(crate) fn request(spans: Vec<Span>) -> Vec<u8> {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// 3 spans over 2 traces.
pub(crate) fn three_spans() -> Vec<u8> {
    request(vec![
        span(1, 1, None, "root"),
        span(1, 2, Some(1), "child"),
        span(2, 3, None, "other"),
    ])
}

/// `n` spans, each its own trace, ids derived from `seed` so calls do not collide.
pub(crate) fn n_spans(n: u8, seed: u8) -> Vec<u8> {
    request(
        (0..n)
            .map(|i| {
                let mut s = span(seed, i, None, "s");
                s.trace_id[0] = i;
                s
            })
            .collect(),
    )
}

pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

pub(crate) fn start(config: CollectorConfig) -> Collector {
    Collector::start(config).expect("collector starts")
}

#[test]
fn bad_input_gets_a_reason_and_valid_input_is_still_counted() {
    let c = start(CollectorConfig {
        limits: Limits {
            max_body_bytes: 4096,
            ..Limits::default()
        },
        ..Default::default()
    });
    let a = c.addr();

    let r = post(a, &[], &[0xff; 64]);
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("not an ExportTraceServiceRequest"),
        "{}",
        r.text()
    );

    let r = post(a, &[], &vec![7u8; 10_000]);
    assert_eq!(r.status, 413);
    assert!(r.text().contains("4096"), "{}", r.text());

    let valid = three_spans();
    let r = post(a, &[], &valid[..valid.len() - 5]);
    assert_eq!(r.status, 400, "truncated protobuf: {}", r.text());

    let r = post(a, &[], b"");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("empty body"), "{}", r.text());

    let r = post(a, &[("Content-Encoding", "gzip")], &gzip(&[0xff; 64]));
    assert_eq!(r.status, 400, "{}", r.text());

    let r = post(a, &[("Content-Encoding", "gzip")], b"not gzip at all");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("gzip"), "{}", r.text());

    // A gzip bomb: small on the wire, over the limit once unpacked.
    let r = post(a, &[("Content-Encoding", "gzip")], &gzip(&[0u8; 100_000]));
    assert_eq!(r.status, 413, "{}", r.text());

    let r = http(
        a,
        "POST",
        "/v1/traces",
        &[("Content-Type", "text/plain")],
        b"{}",
    )
    .unwrap();
    assert_eq!(r.status, 415);
    assert!(r.text().contains("application/x-protobuf"), "{}", r.text());
    assert!(r.text().contains("application/json"), "{}", r.text());

    let r = http(a, "GET", "/v1/traces", &[], b"").unwrap();
    assert_eq!(r.status, 405);

    let mut bad_id = span(1, 9, None, "x");
    bad_id.trace_id.truncate(5);
    let r = post(a, &[], &request(vec![bad_id]));
    assert_eq!(r.status, 400);
    assert!(r.text().contains("trace_id of 5 bytes"), "{}", r.text());

    let s = c.stats();
    assert_eq!(s.spans_received, 0);
    assert_eq!(s.requests_rejected, 10);
    assert_eq!(s.rejected_by_reason.get("undecodable"), Some(&3));
    assert_eq!(s.rejected_by_reason.get("too_large"), Some(&2));
    assert_eq!(s.rejected_by_reason.get("empty"), Some(&1));
    assert_eq!(s.rejected_by_reason.get("bad_gzip"), Some(&1));
    assert_eq!(
        s.rejected_by_reason.get("unsupported_content_type"),
        Some(&1)
    );
    assert_eq!(s.rejected_by_reason.get("method_not_allowed"), Some(&1));
    assert_eq!(s.rejected_by_reason.get("bad_id"), Some(&1));

    let r = post(a, &[], &valid);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/x-protobuf"));
    let s = c.stats();
    assert_eq!(s.spans_received, 3);
    assert_eq!(s.traces_seen, 2);
    assert_eq!(s.duplicates, 0);
    assert_eq!(s.requests_accepted, 1);

    let r = post(a, &[], &valid);
    assert_eq!(r.status, 200);
    let s = c.stats();
    assert_eq!(s.spans_received, 6);
    assert_eq!(s.duplicates, 3);
    assert_eq!(s.traces_seen, 2);
    assert_eq!(s.requests, 12);
    assert_eq!(s.requests_in_flight, 0);
    assert_eq!(s.requests_abandoned, 0);
    assert!(s.bytes_received > 10_000);
    c.shutdown();
}

#[test]
fn gzip_body_is_accepted_and_counted() {
    let c = start(CollectorConfig::default());
    let r = post(
        c.addr(),
        &[("Content-Encoding", "gzip")],
        &gzip(&three_spans()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let s = c.stats();
    assert_eq!(s.spans_received, 3);
    assert_eq!(s.bytes_received, gzip(&three_spans()).len() as u64);
    c.shutdown();
}

#[test]
fn injected_429_carries_retry_after_and_clears() {
    let c = start(CollectorConfig::default());
    c.set_faults(Faults {
        error_rate: 1.0,
        error_status: 429,
        retry_after_s: Some(3),
        ..Faults::default()
    })
    .unwrap();
    let r = post(c.addr(), &[], &three_spans());
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("3"));
    let s = c.stats();
    assert_eq!(s.spans_received, 0);
    assert_eq!(s.spans_rejected, 3);
    assert_eq!(s.rejected_by_reason.get("injected_429"), Some(&1));

    c.set_faults(Faults::default()).unwrap();
    assert_eq!(post(c.addr(), &[], &three_spans()).status, 200);
    assert_eq!(c.stats().spans_received, 3);

    // Invalid faults are refused and the old ones stay.
    let err = c
        .set_faults(Faults {
            error_status: 200,
            ..Faults::default()
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("error_status") && err.contains("200"), "{err}");
    assert_eq!(c.faults(), Faults::default());
    c.shutdown();
}

#[test]
fn outage_refuses_connections_and_the_port_comes_back() {
    let c = start(CollectorConfig::default());
    let a = c.addr();
    // A keep-alive connection open before the outage is closed by it. One answered request
    // on it shows the server has accepted it, and leaves it idle.
    let mut idle = TcpStream::connect(a).unwrap();
    idle.set_read_timeout(Some(PATIENCE)).unwrap();
    idle.write_all(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut idle).unwrap().status, 200);

    c.set_faults(Faults {
        outage: true,
        ..Faults::default()
    })
    .unwrap();
    wait_until(
        "connections refused during the outage",
        PATIENCE,
        || matches!(TcpStream::connect(a), Err(e) if e.kind() == io::ErrorKind::ConnectionRefused),
    );
    let mut buf = [0u8; 16];
    match idle.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
        other => panic!("open connection not closed by the outage: {other:?}"),
    }

    c.set_faults(Faults::default()).unwrap();
    let mut answer = None;
    wait_until("the port to come back after the outage", PATIENCE, || {
        answer = http(a, "POST", "/v1/traces", &[PROTO], &three_spans()).ok();
        answer.is_some()
    });
    let r = answer.expect("an answer");
    assert_eq!(r.status, 200);
    assert_eq!(c.addr(), a);
    assert_eq!(c.stats().spans_received, 3);
    c.shutdown();
}

#[test]
fn killed_runner_is_not_counted_from_the_kill_instant() {
    let c = start(CollectorConfig {
        faults: Faults {
            // Ten minutes, far longer than the test waits for anything (`PATIENCE`): an
            // answer at all means it came at the kill, not after the latency.
            latency_ms: 600_000,
            ..Faults::default()
        },
        ..Default::default()
    });
    let a = c.addr();
    let body = n_spans(5, 7);
    let sender = thread::spawn(move || {
        post(
            a,
            &[
                ("x-gracetrace-runner", "7"),
                ("x-gracetrace-request-id", "r7-1"),
            ],
            &body,
        )
    });
    wait_until("the runner's request to arrive", PATIENCE, || {
        c.stats().requests_in_flight == 1
    });
    let killed_at = Instant::now();
    c.runner_killed(7);
    let r = sender.join().unwrap();
    assert_eq!(r.status, 503);
    eprintln!(
        "a killed runner's waiting request was answered {:?} after the kill",
        killed_at.elapsed()
    );
    assert!(
        killed_at.elapsed() < PATIENCE,
        "a killed runner's waiting request is answered at the kill, not after the latency"
    );
    let s = c.stats();
    assert_eq!(s.spans_received, 0);
    assert_eq!(s.requests_dropped_killed_runner, 1);
    assert_eq!(s.spans_dropped_killed_runner, 5);
    assert_eq!(c.was_acknowledged("r7-1"), None);

    // A later request of the killed runner is dropped too; another runner is counted.
    c.set_faults(Faults::default()).unwrap();
    let r = post(a, &[("x-gracetrace-runner", "7")], &n_spans(2, 9));
    assert_eq!(r.status, 503);
    let r = post(
        a,
        &[
            ("x-gracetrace-runner", "8"),
            ("x-gracetrace-request-id", "r8-1"),
        ],
        &n_spans(4, 8),
    );
    assert_eq!(r.status, 200);
    let s = c.stats();
    assert_eq!(s.spans_received, 4);
    assert_eq!(s.spans_dropped_killed_runner, 7);
    assert_eq!(c.was_acknowledged("r8-1"), Some(4));
    assert_eq!(c.was_acknowledged("never-sent"), None);
    c.shutdown();
}

#[test]
fn ingestion_limit_answers_429() {
    let c = start(CollectorConfig {
        faults: Faults {
            ingest_limit_spans_per_s: Some(10),
            ..Faults::default()
        },
        ..Default::default()
    });
    let statuses: Vec<u16> = (0..3)
        .map(|i| post(c.addr(), &[], &n_spans(8, 20 + i)).status)
        .collect();
    assert_eq!(statuses[0], 200);
    assert!(statuses.contains(&429), "{statuses:?}");
    let accepted = statuses.iter().filter(|s| **s == 200).count() as u64;
    let s = c.stats();
    assert_eq!(s.spans_received, 8 * accepted);
    assert_eq!(
        s.rejected_by_reason.get("rate_limited"),
        Some(&(3 - accepted))
    );
    // Rate-limit answers always say when to come back.
    let r = post(c.addr(), &[], &n_spans(8, 30));
    if r.status == 429 {
        assert_eq!(r.header("retry-after"), Some("1"));
    }
    c.shutdown();
}

#[test]
fn stats_endpoint_returns_json() {
    let c = start(CollectorConfig::default());
    assert_eq!(post(c.addr(), &[], &three_spans()).status, 200);
    let r = http(c.addr(), "GET", "/stats", &[], b"").unwrap();
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["spans_received"], 3);
    assert_eq!(v["traces_seen"], 2);
    // /stats is not an OTLP request.
    assert_eq!(c.stats().requests, 1);
    c.shutdown();
}

#[test]
fn recent_traces_keep_the_waterfall() {
    let c = start(CollectorConfig::default());
    assert_eq!(post(c.addr(), &[], &three_spans()).status, 200);
    let traces = c.recent_traces();
    assert_eq!(traces.len(), 2);
    assert_eq!(traces[0].trace_id, "02".repeat(16), "newest first");
    let t1 = &traces[1];
    assert_eq!(t1.trace_id, "01".repeat(16));
    assert_eq!(t1.spans.len(), 2);
    assert_eq!(t1.spans[0].name, "root");
    assert_eq!(t1.spans[0].parent_span_id, None);
    assert_eq!(
        t1.spans[1].parent_span_id.as_deref(),
        Some("0101010101010101")
    );
    assert_eq!(
        t1.spans[0].attributes,
        vec![("model".to_owned(), "resnet".to_owned())]
    );
    c.shutdown();
}

#[test]
fn black_hole_holds_requests_until_switched_off_and_shutdown_never_hangs() {
    let c = start(CollectorConfig {
        faults: Faults {
            black_hole: true,
            ..Faults::default()
        },
        ..Default::default()
    });
    let a = c.addr();
    let sender = thread::spawn(move || post(a, &[], &three_spans()));
    wait_until("the request to be held", PATIENCE, || {
        c.stats().requests_in_flight == 1
    });
    assert_eq!(c.stats().spans_received, 0);
    c.set_faults(Faults::default()).unwrap();
    assert_eq!(sender.join().unwrap().status, 200);
    assert_eq!(c.stats().spans_received, 3);

    // A client that gives up leaves an abandoned request, not a counted one.
    c.set_faults(Faults {
        black_hole: true,
        ..Faults::default()
    })
    .unwrap();
    {
        let mut s = TcpStream::connect(a).unwrap();
        let body = three_spans();
        let head = format!(
            "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(&body).unwrap();
        wait_until("the request to be held", PATIENCE, || {
            c.stats().requests_in_flight == 1
        });
    }
    wait_until("the request to be abandoned", PATIENCE, || {
        c.stats().requests_abandoned >= 1
    });
    assert_eq!(c.stats().requests_abandoned, 1);

    // One more held request, then shutdown: bounded.
    let _held = thread::spawn(move || http(a, "POST", "/v1/traces", &[PROTO], &three_spans()));
    wait_until("the request to be held", PATIENCE, || {
        c.stats().requests_in_flight == 1
    });
    let t = Instant::now();
    c.shutdown();
    eprintln!("shutdown with a held request took {:?}", t.elapsed());
    assert!(t.elapsed() < PATIENCE, "{:?}", t.elapsed());
    assert!(TcpStream::connect(a).is_err(), "port released");
}

#[test]
fn start_errors_name_the_problem() {
    let c = start(CollectorConfig::default());
    let err = Collector::start(CollectorConfig {
        listen: c.addr(),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains(&c.addr().to_string()), "{err}");
    let err = Collector::start(CollectorConfig {
        faults: Faults {
            latency_ms: 10_000_000,
            ..Faults::default()
        },
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("latency_ms"), "{err}");
    assert_eq!(
        c.traces_endpoint(),
        format!("http://127.0.0.1:{}/v1/traces", c.addr().port())
    );
    c.shutdown();
}

#[test]
fn counts_are_exact_under_concurrent_faulty_traffic() {
    let c = start(CollectorConfig {
        faults: Faults {
            jitter_ms: 5,
            error_rate: 0.3,
            ..Faults::default()
        },
        ..Default::default()
    });
    let a = c.addr();
    let workers: Vec<_> = (0..4u8)
        .map(|w| {
            thread::spawn(move || {
                let mut accepted_spans = 0u64;
                for i in 0..40u8 {
                    let mut spans = Vec::new();
                    for k in 0..10u8 {
                        let mut s = span(w, k, None, "s");
                        s.trace_id[1] = i;
                        spans.push(s);
                    }
                    let r = post(a, &[], &request(spans));
                    match r.status {
                        200 => accepted_spans += 10,
                        503 => {}
                        other => panic!("unexpected status {other}: {}", r.text()),
                    }
                }
                accepted_spans
            })
        })
        .collect();
    let client_accepted: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let s = c.stats();
    assert_eq!(s.spans_received, client_accepted);
    assert_eq!(s.requests, 160);
    assert_eq!(s.requests_accepted + s.requests_rejected, 160);
    assert_eq!(s.spans_rejected, 1600 - client_accepted);
    assert_eq!(s.duplicates, 0);
    assert_eq!(s.traces_seen, client_accepted / 10);
    assert!(s.requests_rejected > 0 && s.requests_accepted > 0, "{s:?}");
    c.shutdown();
}

/// The collector runs on its own runtime, so it can be started and stopped from async code.
#[tokio::test]
async fn starts_and_stops_inside_another_runtime() {
    let c = start(CollectorConfig::default());
    let a = c.addr();
    let r = tokio::task::spawn_blocking(move || post(a, &[], &three_spans()))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    c.shutdown();
    let err = Collector::start(CollectorConfig {
        listen: "192.0.2.1:9".parse().unwrap(),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("192.0.2.1:9"), "{err}");
}

/// A resource naming the app and its SDK, as every OpenTelemetry SDK sends one.
pub(crate) fn with_resource(spans: Vec<Span>, language: &str) -> Vec<u8> {
    use opentelemetry_proto::tonic::resource::v1::Resource;
    let attr = |key: &str, value: &str| KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    attr("service.name", "my-app"),
                    attr("telemetry.sdk.language", language),
                    attr("telemetry.sdk.version", "1.41.0"),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// The probe's view: a trace whose children arrive without their root is an orphan until
/// the root arrives, a duplicate child does not count twice, and the app's resource is kept.
#[test]
fn orphans_and_the_apps_resource() {
    let c = start(CollectorConfig::default());
    assert_eq!(c.app_resource(), None);
    let children = vec![span(7, 2, Some(1), "child"), span(7, 3, Some(1), "child")];
    assert_eq!(
        post(c.addr(), &[], &with_resource(children, "python")).status,
        200
    );
    assert_eq!(post(c.addr(), &[], &three_spans()).status, 200);
    // A retry of one child: a duplicate, not a third orphan span.
    assert_eq!(
        post(c.addr(), &[], &request(vec![span(7, 2, Some(1), "child")])).status,
        200
    );
    let orphans = c.orphans();
    assert_eq!((orphans.traces, orphans.spans), (1, 2));
    let resource = c.app_resource().expect("a resource arrived");
    assert_eq!(resource.service_name.as_deref(), Some("my-app"));
    assert_eq!(resource.rules(), Some("python"));
    assert_eq!(
        resource.describe(),
        "opentelemetry-python 1.41.0, so the python rules apply"
    );
    // The root arrives late: no orphan left.
    assert_eq!(
        post(c.addr(), &[], &request(vec![span(7, 1, None, "root")])).status,
        200
    );
    assert_eq!(c.orphans(), gracetrace::record::Orphans::default());
}

/// A body that ends before its Content-Length (the sender was killed mid-write) is counted
/// as `body_read_error`, and its spans are not.
#[test]
fn a_body_cut_off_midway_is_counted_apart() {
    let c = start(CollectorConfig::default());
    let body = three_spans();
    let mut s = TcpStream::connect(c.addr()).expect("connect");
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("head");
    s.write_all(&body[..body.len() / 2]).expect("half a body");
    drop(s);
    wait_until("the cut-off request to be decided", PATIENCE, || {
        c.stats().rejected_by_reason.get("body_read_error") == Some(&1)
    });
    assert_eq!(c.stats().spans_received, 0);
}

pub(crate) const JSON: (&str, &str) = ("Content-Type", "application/json");

/// An OTLP/JSON request as the specification writes one (hex ids, nanoseconds as
/// strings, camelCase names): a root and its child in one trace.
const SPEC_JSON: &str = r#"{"resourceSpans":[{"resource":{"attributes":[
  {"key":"service.name","value":{"stringValue":"json-app"}},
  {"key":"telemetry.sdk.language","value":{"stringValue":"nodejs"}}]},
 "scopeSpans":[{"scope":{"name":"t"},"spans":[
  {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
   "name":"root","kind":2,"startTimeUnixNano":"1544712660000000000",
   "endTimeUnixNano":"1544712661000000000",
   "attributes":[{"key":"n","value":{"intValue":"42"}}]},
  {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b173",
   "parentSpanId":"eee19b7ec3c1b174","name":"child","kind":1,
   "startTimeUnixNano":"1544712660100000000","endTimeUnixNano":"1544712660900000000"}
 ]}]}]}"#;

/// OTLP/HTTP with JSON bodies: the same spans sent as protobuf, as JSON and as gzipped JSON
/// give identical counts and stored spans; the specification's own shape is read; a
/// malformed or too deep body is a 400 and the collector counts on.
#[test]
fn json_bodies_count_as_protobuf_does() {
    let proto = start(CollectorConfig::default());
    let json = start(CollectorConfig::default());
    let spans = vec![
        span(1, 1, None, "root"),
        span(1, 2, Some(1), "child"),
        span(2, 3, None, "other"),
    ];
    let message = ExportTraceServiceRequest::decode(request(spans).as_slice()).unwrap();
    let text = serde_json::to_vec(&message).expect("the request as OTLP/JSON");
    assert_eq!(
        post(proto.addr(), &[], &message.encode_to_vec()).status,
        200
    );
    let r = http(json.addr(), "POST", "/v1/traces", &[JSON], &text).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    // Everything but the bytes on the wire (JSON is larger) and the connection still open.
    let counts = |c: &Collector| gracetrace::collector::CollectorStats {
        bytes_received: 0,
        connections_open: 0,
        ..c.stats()
    };
    assert_eq!(counts(&proto), counts(&json));
    assert_eq!(proto.recent_traces(), json.recent_traces());
    // Gzipped JSON: the same spans again, all duplicates.
    let zipped = gzip(&text);
    let headers = [JSON, ("Content-Encoding", "gzip")];
    let r = http(json.addr(), "POST", "/v1/traces", &headers, &zipped).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(json.stats().spans_received, 6);
    assert_eq!(json.stats().duplicates, 3);

    let spec = start(CollectorConfig::default());
    let r = http(
        spec.addr(),
        "POST",
        "/v1/traces",
        &[JSON],
        SPEC_JSON.as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(spec.stats().spans_received, 2);
    assert_eq!(spec.orphans(), gracetrace::record::Orphans::default());
    let trace = &spec.recent_traces()[0];
    assert_eq!(trace.trace_id, "5b8efff798038103d269b633813fc60c");
    assert_eq!(
        trace.spans[0].attributes,
        [("n".to_owned(), "42".to_owned())]
    );
    let resource = spec.app_resource().expect("resource");
    assert_eq!(resource.service_name.as_deref(), Some("json-app"));

    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    for bad in [
        &b"{not json"[..],
        b"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"zz\"}]}]}]}",
        deep.as_bytes(),
    ] {
        let r = http(spec.addr(), "POST", "/v1/traces", &[JSON], bad).unwrap();
        assert_eq!(r.status, 400, "{}", r.text());
    }
    assert_eq!(spec.stats().rejected_by_reason.get("undecodable"), Some(&3));
    let r = http(
        spec.addr(),
        "POST",
        "/v1/traces",
        &[JSON],
        SPEC_JSON.as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(spec.stats().spans_received, 4);
}

/// Forwarding (`collector.forward`): a second embedded collector as the backend receives
/// exactly what the first accepted, protobuf, gzip and JSON alike, and nothing of what a
/// fault on the first refused.
#[test]
fn forwarding_passes_on_exactly_what_was_accepted() {
    let backend = start(CollectorConfig::default());
    let front = start(CollectorConfig {
        forward: Some(backend.traces_endpoint()),
        ..Default::default()
    });
    for seed in 0..5 {
        assert_eq!(post(front.addr(), &[], &n_spans(8, seed)).status, 200);
    }
    let gzipped = post(
        front.addr(),
        &[("Content-Encoding", "gzip")],
        &gzip(&n_spans(4, 9)),
    );
    assert_eq!(gzipped.status, 200, "{}", gzipped.text());
    // A fault on the first collector: these are refused and must not reach the backend.
    front
        .set_faults(Faults {
            error_rate: 1.0,
            ..Faults::default()
        })
        .unwrap();
    for seed in 10..13 {
        assert_eq!(post(front.addr(), &[], &n_spans(8, seed)).status, 503);
    }
    front.set_faults(Faults::default()).unwrap();
    let json = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"j"}]}]}]}"#;
    let answer = http(
        front.addr(),
        "POST",
        "/v1/traces",
        &[("Content-Type", "application/json")],
        json.as_bytes(),
    )
    .expect("request");
    assert_eq!(answer.status, 200, "{}", answer.text());

    assert!(front.wait_forwarded(PATIENCE), "forwards still pending");
    let (f, b) = (front.stats(), backend.stats());
    assert_eq!(f.spans_received, 5 * 8 + 4 + 1);
    assert_eq!(f.requests_rejected, 3);
    assert_eq!(
        b.spans_received, f.spans_received,
        "backend got what was accepted"
    );
    assert_eq!(b.requests_accepted, f.requests_accepted);
    assert_eq!(b.requests_rejected, 0);
    assert_eq!(f.forward_accepted, f.requests_accepted);
    assert_eq!(f.forward_spans_accepted, f.spans_received);
    assert_eq!(
        (
            f.forward_refused,
            f.forward_failed,
            f.forward_dropped,
            f.forward_pending
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(f.forward_url, Some(backend.traces_endpoint()));
}

/// A backend that is down (nothing listens) or refuses everything: the app is answered and
/// counted as without forwarding, and each batch is counted failed or refused.
#[test]
fn a_backend_down_or_refusing_never_changes_the_intake_counts() {
    // A port that was free a moment ago and now has no listener: connections are refused.
    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let refusing = start(CollectorConfig {
        faults: Faults {
            error_rate: 1.0,
            error_status: 500,
            ..Faults::default()
        },
        ..Default::default()
    });
    for (url, failed, refused) in [
        (format!("http://{down}/v1/traces"), 4, 0),
        (refusing.traces_endpoint(), 0, 4),
    ] {
        let front = start(CollectorConfig {
            forward: Some(url.clone()),
            ..Default::default()
        });
        for seed in 0..4 {
            assert_eq!(
                post(front.addr(), &[], &n_spans(5, seed)).status,
                200,
                "{url}"
            );
        }
        assert!(
            front.wait_forwarded(PATIENCE),
            "{url}: forwards still pending"
        );
        let f = front.stats();
        assert_eq!((f.spans_received, f.requests_accepted), (20, 4), "{url}");
        assert_eq!(
            (f.forward_failed, f.forward_refused),
            (failed, refused),
            "{url}"
        );
        assert_eq!((f.forward_accepted, f.forward_dropped), (0, 0), "{url}");
        // No connection is retried (3 times a batch); a 500 is not.
        assert_eq!(f.forward_retries, failed * 3, "{url}");
    }
    assert_eq!(refusing.stats().spans_received, 0);
    assert_eq!(refusing.stats().spans_rejected, 20);
}

/// A backend that answers 503 with `Retry-After` for a moment: the forward is retried
/// after the delay it asked for, and the batch reaches it once it takes batches again;
/// the intake's counts never notice.
#[test]
fn a_forward_refused_for_a_moment_is_retried() {
    let backend = start(CollectorConfig {
        faults: Faults {
            error_rate: 1.0,
            error_status: 503,
            retry_after_s: Some(2),
            ..Faults::default()
        },
        ..Default::default()
    });
    let front = start(CollectorConfig {
        forward: Some(backend.traces_endpoint()),
        ..Default::default()
    });
    assert_eq!(post(front.addr(), &[], &n_spans(5, 1)).status, 200);
    wait_until("the backend to refuse the first attempt", PATIENCE, || {
        backend.stats().requests_rejected >= 1
    });
    backend.set_faults(Faults::default()).unwrap();
    assert!(front.wait_forwarded(PATIENCE), "forwards still pending");
    let f = front.stats();
    assert_eq!(
        (f.forward_accepted, f.forward_spans_accepted),
        (1, 5),
        "{f:?}"
    );
    assert_eq!((f.forward_refused, f.forward_failed), (0, 0), "{f:?}");
    assert_eq!(f.forward_retries, backend.stats().requests_rejected);
    assert!(f.forward_retries >= 1);
    assert_eq!(backend.stats().spans_received, 5);
    assert_eq!((f.spans_received, f.requests_accepted), (5, 1));
}

/// `run` waits (bounded) for batches still on their way to the forward backend before it
/// reports. The backend takes 1.5 s per batch, so the batch of the provider's shutdown
/// was still being forwarded when the run ended; the report counts it forwarded.
#[test]
fn a_run_waits_for_pending_forwards() {
    let backend = start(CollectorConfig {
        faults: Faults {
            latency_ms: 1500,
            ..Faults::default()
        },
        ..Default::default()
    });
    let forward = format!("collector.forward={}", backend.traces_endpoint());
    let settings = crate::common::scenario(
        "seed-defaults",
        &["workload.duration_s=1", "workload.rate_per_s=20", &forward],
    );
    let report = gracetrace::session::run(&settings).expect("run");
    let c = report.collector.expect("the embedded collector's stats");
    assert!(c.requests_accepted > 0, "{c:?}");
    assert_eq!(c.forward_pending, 0, "{c:?}");
    assert_eq!(c.forward_accepted, c.requests_accepted, "{c:?}");
    assert_eq!(c.forward_spans_accepted, c.spans_received, "{c:?}");
    assert_eq!(backend.stats().spans_received, c.spans_received);
}
