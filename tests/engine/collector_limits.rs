//! The collector against hostile input (issues 11 and 20): its memory stays within the
//! store's byte budget whatever a request holds, and within the in-flight budget however
//! many large bodies arrive at once; a flood of slow connections, sending their headers or
//! their bodies a byte at a time, neither goes past the connection limit nor keeps
//! `/stats` and exports out.
//!
//! The memory test runs `gracetrace collect` as its own process, so that its resident
//! memory is the collector's alone, not this test binary's with every other test in it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::{PATIENCE, wait_until};
use gracetrace::collector::{Collector, CollectorConfig, CollectorStats, Limits};
use prost::encoding::encode_varint;

const BIN: &str = env!("CARGO_BIN_EXE_gracetrace");

/// A length-delimited field: key, length, bytes.
fn field(tag: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 12);
    encode_varint(u64::from(tag << 3 | 2), &mut out);
    encode_varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

/// A request of one span (trace id `trace`, span id `id`) with `attributes` empty
/// attributes, encoded by hand so that the test never builds them as messages either.
fn attribute_heavy(trace: u8, id: u8, attributes: usize) -> Vec<u8> {
    let mut span = field(1, &[trace; 16]);
    span.extend(field(2, &[id; 8]));
    span.extend(field(5, b"heavy"));
    // Field 9 (attributes), an empty KeyValue: two bytes each.
    for _ in 0..attributes {
        span.extend_from_slice(&[9 << 3 | 2, 0]);
    }
    field(1, &field(2, &field(2, &span)))
}

/// A request of `n` empty `ResourceSpans` and no span.
fn empty_resource_spans(n: usize) -> Vec<u8> {
    [1 << 3 | 2, 0].repeat(n)
}

/// One request on a fresh connection, read to EOF: (status, body).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(PATIENCE))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Content-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(std::io::ErrorKind::InvalidData)?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(std::io::ErrorKind::InvalidData)?;
    let body = &raw[split + 4..];
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Ok((
            status,
            dechunk(body).ok_or(std::io::ErrorKind::InvalidData)?,
        ));
    }
    Ok((status, body.to_vec()))
}

/// A chunked body's data (`GET /traces` streams its answer).
fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&raw[..line_end]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

fn stats_over_http(addr: SocketAddr) -> serde_json::Value {
    let (status, body) = http(addr, "GET", "/stats", b"").expect("GET /stats");
    assert_eq!(status, 200);
    serde_json::from_slice(&body).expect("stats JSON")
}

/// `VmHWM` (peak resident) and `VmRSS` of a process, in bytes.
fn memory_of(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
            * 1024
    };
    (kib("VmHWM:"), kib("VmRSS:"))
}

/// `gracetrace collect` on a free port, with `flags`; its address.
fn start_collect(flags: &[&str]) -> (Child, SocketAddr) {
    let mut child = Command::new(BIN)
        .args(["collect", "--listen", "127.0.0.1:0"])
        .args(flags)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gracetrace collect");
    let mut line = String::new();
    let stderr = child.stderr.take().expect("stderr");
    BufReader::new(stderr)
        .read_line(&mut line)
        .expect("listening line");
    let addr = line
        .trim()
        .trim_start_matches("collector listening on http://")
        .trim_end_matches("/v1/traces")
        .parse()
        .unwrap_or_else(|e| panic!("{line:?}: {e}"));
    (child, addr)
}

/// The store's budget, scaled down from the default 64 MB with the request (16 MB and 8.4
/// million attributes in the issue; 2 MB and a million here).
const BUDGET: u64 = 1 << 20;
/// What the collector may use beyond its store at its peak: one body being read and one
/// being decoded (2 MB each), their buffers' growth, the stack of the runtime's threads
/// and the allocator's slack. Before the fix, six such requests kept about 490 MB.
const MARGIN: u64 = 24 << 20;

#[test]
fn attribute_heavy_requests_stay_within_the_store_budget() {
    let budget = BUDGET.to_string();
    let (mut child, addr) = start_collect(&["--max-stored-bytes", &budget]);
    let (baseline_peak, _) = memory_of(child.id());
    let attributes = 1_000_000;
    for i in 0..6u8 {
        let (status, _) = http(
            addr,
            "POST",
            "/v1/traces",
            &attribute_heavy(1, i, attributes),
        )
        .expect("export");
        assert_eq!(status, 200);
    }
    let (status, _) =
        http(addr, "POST", "/v1/traces", &empty_resource_spans(1_000_000)).expect("export");
    assert_eq!(status, 200);
    let (status, traces) = http(addr, "GET", "/traces", b"").expect("GET /traces");
    assert_eq!(status, 200);
    let traces: serde_json::Value = serde_json::from_slice(&traces).expect("traces JSON");
    assert_eq!(traces[0]["spans"].as_array().map(Vec::len), Some(6));
    assert_eq!(
        traces[0]["spans"][0]["attributes"].as_array().map(Vec::len),
        Some(128)
    );

    let stats = stats_over_http(addr);
    let (peak, resident) = memory_of(child.id());
    child.kill().ok();
    child.wait().ok();
    println!(
        "collector memory: baseline peak {:.1} MB, peak {:.1} MB, resident {:.1} MB; \
         store {} bytes of {BUDGET}",
        baseline_peak as f64 / 1e6,
        peak as f64 / 1e6,
        resident as f64 / 1e6,
        stats["stored_bytes"]
    );
    assert_eq!(stats["spans_received"], 6);
    assert_eq!(stats["requests_accepted"], 7);
    assert_eq!(
        stats["attributes_not_stored"],
        6 * (attributes as u64 - 128)
    );
    assert_eq!(stats["spans_not_stored"], 0);
    assert!(
        stats["stored_bytes"]
            .as_u64()
            .is_some_and(|b| b > 0 && b <= BUDGET),
        "{stats}"
    );
    assert!(
        peak <= baseline_peak + BUDGET + MARGIN,
        "peak resident {peak} B over baseline {baseline_peak} B + budget + margin"
    );
}

/// An embedded collector with these limits.
fn with_limits(limits: Limits) -> Collector {
    Collector::start(CollectorConfig {
        limits,
        ..CollectorConfig::default()
    })
    .expect("collector")
}

/// Many spans, each small, more than the budget holds: the oldest traces go, what no
/// request could fit is counted, and the store never exceeds its budget.
#[test]
fn the_store_keeps_its_byte_budget_and_counts_what_it_did_not_store() {
    let limits = Limits {
        max_stored_bytes: 64 << 10,
        max_attributes_per_span: 2,
        ..Limits::default()
    };
    let c = Collector::start(CollectorConfig {
        limits,
        ..CollectorConfig::default()
    })
    .expect("collector");
    let mut spans = 0u64;
    for trace in 0..50u8 {
        let mut request = Vec::new();
        for id in 0..20u8 {
            let mut span = field(1, &[trace; 16]);
            span.extend(field(2, &[id, trace, 1, 1, 1, 1, 1, 1]));
            span.extend(field(5, &[b'x'; 200]));
            for _ in 0..5 {
                span.extend_from_slice(&[9 << 3 | 2, 0]);
            }
            request.extend(field(2, &span));
            spans += 1;
        }
        let body = field(1, &field(2, &request));
        assert_eq!(
            http(c.addr(), "POST", "/v1/traces", &body)
                .expect("export")
                .0,
            200
        );
        let stats = c.stats();
        assert!(stats.stored_bytes <= 64 << 10, "{stats:?}");
    }
    let stats: CollectorStats = c.stats();
    assert_eq!(stats.spans_received, spans);
    assert_eq!(stats.spans_not_stored, 0, "each request fits the budget");
    assert_eq!(stats.attributes_not_stored, spans * 3);
    let kept: usize = c.recent_traces().iter().map(|t| t.spans.len()).sum();
    assert!(
        kept > 0 && (kept as u64) < spans,
        "older traces went: kept {kept}"
    );
    assert_eq!(
        c.recent_traces()[0].trace_id,
        "31".repeat(16),
        "the newest first"
    );
}

/// Connections that send their headers a byte at a time, more than the limit: the limit
/// holds, `/stats` and a valid export are answered throughout, and the slow ones are
/// closed by the header timeout or replaced.
#[test]
fn a_flood_of_slow_connections_stays_within_the_limit() {
    let limit = 32;
    let c = with_limits(Limits {
        max_connections: limit,
        header_read_timeout_ms: 1_000,
        ..Limits::default()
    });
    let addr = c.addr();
    let mut slow: Vec<TcpStream> = (0..200)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    for s in &mut slow {
        let _ = s.write_all(b"POST /v1/traces HTTP/1.1\r\nHo");
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut answered = 0;
    while Instant::now() < deadline {
        // A byte more from every slow client that is still connected.
        slow.retain_mut(|s| s.write_all(b"s").is_ok());
        let stats = stats_over_http(addr);
        assert!(
            stats["connections_open"]
                .as_u64()
                .is_some_and(|n| n <= limit),
            "{stats}"
        );
        let (status, _) =
            http(addr, "POST", "/v1/traces", &attribute_heavy(7, answered, 1)).expect("export");
        assert_eq!(status, 200);
        answered += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_until("the slow connections' header timeout", PATIENCE, || {
        c.stats().connections_timed_out > 0
    });
    let stats = c.stats();
    println!(
        "flood: {answered} exports answered; {} connections replaced, {} refused, {} timed out",
        stats.connections_replaced, stats.connections_refused, stats.connections_timed_out
    );
    assert_eq!(stats.spans_received, u64::from(answered));
    // Every slow client was replaced at the limit, timed out, refused, or is still open.
    let slow = stats.connections_replaced
        + stats.connections_timed_out
        + stats.connections_refused
        + stats.connections_open;
    assert!(slow >= 200, "{stats:?}");
    assert!(
        stats.connections_replaced > 0,
        "the limit was reached: {stats:?}"
    );
    assert!(stats.connections_open <= limit);
}

/// The first bytes of a 100,000-byte body that is valid as far as it goes: a
/// `resource_spans` field of 99,996 bytes, then zeros inside it.
fn slow_body_prefix() -> Vec<u8> {
    let mut out = vec![1 << 3 | 2];
    encode_varint(99_996, &mut out);
    out.resize(64, 0);
    out
}

/// `what` on a fresh connection, tried until it is answered 200 (a reset or a refusal
/// is tried again) within `PATIENCE`; how long the answered try took, and the tries.
fn answered_within(what: impl Fn() -> std::io::Result<(u16, Vec<u8>)>) -> (Duration, u32) {
    let deadline = Instant::now() + PATIENCE;
    let mut tries = 0;
    loop {
        tries += 1;
        let start = Instant::now();
        if let Ok((200, _)) = what() {
            return (start.elapsed(), tries);
        }
        assert!(Instant::now() < deadline, "never answered in {tries} tries");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Issue 20, item 1: `max_connections` clients send whole POST headers and then a body
/// byte now and then. `/stats` and an honest export are still answered, each within a
/// second; the slow bodies are closed to make room or answered 408 at the body deadline.
#[test]
fn slow_bodies_cannot_keep_out_stats_or_an_export() {
    let limit = 8;
    let c = with_limits(Limits {
        max_connections: limit,
        header_read_timeout_ms: 2_000,
        body_read_timeout_ms: 1_500,
        ..Limits::default()
    });
    let addr = c.addr();
    let slow: Vec<TcpStream> = (0..limit)
        .map(|_| {
            let mut s = TcpStream::connect(addr).expect("connect");
            write!(
                s,
                "POST /v1/traces HTTP/1.1\r\nHost: x\r\n\
                 Content-Type: application/x-protobuf\r\nContent-Length: 100000\r\n\r\n"
            )
            .expect("headers");
            s
        })
        .collect();
    // A body byte from each slow client every 200 ms, until the test is done.
    let done = Arc::new(AtomicBool::new(false));
    let mut writers: Vec<TcpStream> = slow.iter().map(|s| s.try_clone().expect("clone")).collect();
    let trickle = {
        let done = done.clone();
        std::thread::spawn(move || {
            for byte in slow_body_prefix() {
                if done.load(Ordering::Relaxed) {
                    return;
                }
                for w in &mut writers {
                    let _ = w.write_all(&[byte]);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    // Every slow request begun, not only connected: a connection whose headers are not
    // parsed yet is idle, and the collector would rightly close it first (`replaced`),
    // which is not what this test is about.
    wait_until("the slow clients' bodies being read", PATIENCE, || {
        let s = c.stats();
        s.connections_open == limit && s.requests_in_flight == limit
    });

    let (stats_took, stats_tries) = answered_within(|| http(addr, "GET", "/stats", b""));
    let export = attribute_heavy(9, 1, 1);
    let (export_took, export_tries) = answered_within(|| http(addr, "POST", "/v1/traces", &export));
    wait_until("a slow body's deadline", PATIENCE, || {
        c.stats().requests_timed_out > 0
    });
    done.store(true, Ordering::Relaxed);
    let _ = trickle.join();
    let stats = c.stats();
    println!(
        "slow bodies: /stats answered in {stats_took:?} ({stats_tries} tries), an export in \
         {export_took:?} ({export_tries} tries); {} slow connections closed, {} timed out",
        stats.connections_slow_closed, stats.requests_timed_out
    );
    assert!(stats_took < Duration::from_secs(1), "{stats_took:?}");
    assert!(export_took < Duration::from_secs(1), "{export_took:?}");
    assert_eq!(
        stats.spans_received, 1,
        "the export counted once: {stats:?}"
    );
    assert!(stats.connections_slow_closed > 0, "{stats:?}");
    assert!(stats.connections_open <= limit);
    // A slow client still connected at the deadline reads its 408.
    let timed_out = slow.into_iter().any(|mut s| {
        let _ = s.set_read_timeout(Some(PATIENCE));
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        raw.starts_with(b"HTTP/1.1 408")
    });
    assert!(timed_out, "no slow client read a 408");
}

/// `body` POSTed by each of `clients` threads at once, on its own connection; the
/// statuses read back (a reset connection reads none).
fn post_at_once(addr: SocketAddr, clients: usize, body: &Arc<Vec<u8>>) -> Vec<Option<u16>> {
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let body = body.clone();
            std::thread::spawn(move || {
                http(addr, "POST", "/v1/traces", &body)
                    .ok()
                    .map(|(status, _)| status)
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().ok().flatten())
        .collect()
}

/// A valid request of `len` bytes and no span: one `ResourceSpans` holding an unknown
/// field of zeros, which the collector skips; it must read the whole body to know.
fn valid_request_of(len: usize) -> Vec<u8> {
    // Five bytes of the outer key and length, two of the inner key, four of its length.
    let inner_len = len - 5;
    let mut inner = Vec::with_capacity(inner_len);
    encode_varint(u64::from(1000u32 << 3 | 2), &mut inner);
    encode_varint((inner_len - 6) as u64, &mut inner);
    inner.resize(inner_len, 0);
    let body = field(1, &inner);
    assert_eq!(body.len(), len);
    body
}

/// The in-flight budget of the scaled test, four bodies of 16 MB; and what the collector
/// may hold beyond its bodies at its peak: hyper's read buffer of up to 400 KB on each
/// of 100 connections, the runtime's threads, the allocator's slack. Before the fix, 100
/// such bodies peaked at 1.56 GB (issue 20).
const INFLIGHT: u64 = 64 << 20;
const INFLIGHT_MARGIN: u64 = 96 << 20;

/// Issue 20, item 2: 100 bodies of 16 MB at once. Zero bytes are refused at their first
/// byte, valid-looking ones within the in-flight budget (the rest answered 503 to be
/// retried), so the peak stays under the budget, and memory goes back after the load.
#[test]
fn concurrent_large_bodies_stay_within_the_inflight_budget() {
    let (mut child, addr) = start_collect(&["--max-inflight-body-bytes", &INFLIGHT.to_string()]);
    let baseline = memory_of(child.id()).1;
    let zeros = Arc::new(vec![0u8; 16_000_000]);
    let refused = post_at_once(addr, 100, &zeros);
    let (peak_zeros, _) = memory_of(child.id());
    let valid = Arc::new(valid_request_of(16_000_000));
    let answers = post_at_once(addr, 100, &valid);
    let (peak, _) = memory_of(child.id());
    let stats = stats_over_http(addr);
    // Falls back once the load is over (the trim runs once no body is in flight).
    let mut after = u64::MAX;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        after = memory_of(child.id()).1;
        if after <= baseline + (32 << 20) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().ok();
    child.wait().ok();
    let mb = |b: u64| b as f64 / 1e6;
    let count = |s: u16| answers.iter().filter(|a| **a == Some(s)).count();
    println!(
        "100 x 16 MB: baseline {:.1} MB, peak after zero bodies {:.1} MB, peak {:.1} MB, \
         after {:.1} MB; valid bodies: {} accepted, {} refused 503, {} unanswered",
        mb(baseline),
        mb(peak_zeros),
        mb(peak),
        mb(after),
        count(200),
        count(503),
        answers.iter().filter(|a| a.is_none()).count()
    );
    assert_eq!(stats["rejected_by_reason"]["undecodable"], 100, "{stats}");
    assert!(
        refused.iter().all(|s| matches!(s, None | Some(400))),
        "{refused:?}"
    );
    assert!(
        peak_zeros <= baseline + INFLIGHT_MARGIN,
        "zeros peaked at {peak_zeros} B"
    );
    assert!(
        peak <= baseline + INFLIGHT + INFLIGHT_MARGIN,
        "peaked at {peak} B"
    );
    let accepted = stats["requests_accepted"].as_u64().unwrap_or(0);
    let refused_memory = stats["requests_refused_memory"].as_u64().unwrap_or(0);
    assert!(accepted > 0 && refused_memory > 0, "{stats}");
    assert_eq!(accepted + refused_memory, 100, "{stats}");
    assert_eq!(stats["body_bytes_in_flight"], 0, "{stats}");
    assert!(
        after <= baseline + (32 << 20),
        "resident {after} B after the load"
    );
}
