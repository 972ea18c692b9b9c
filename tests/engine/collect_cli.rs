//! `gracetrace collect` as a user runs it: it listens, counts, and prints its stats as
//! JSON when it gets SIGTERM; a bad flag is one line and exit code 2.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_gracetrace");

/// Sends `collect` SIGTERM and returns the stats it prints as it exits, successfully.
fn stop(child: Child) -> serde_json::Value {
    // SAFETY: kill(2) takes two integers and touches no memory of ours; the pid is our own
    // child's, not yet reaped (`wait_with_output` below), so it cannot name another process.
    #[allow(unsafe_code)]
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(sent, 0, "SIGTERM sent");
    let output = child.wait_with_output().expect("exit");
    assert!(output.status.success());
    serde_json::from_slice(&output.stdout).expect("stats JSON")
}

#[test]
fn collect_serves_stats_and_prints_them_on_sigterm() {
    let mut child = Command::new(BIN)
        .args(["collect", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gracetrace collect");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("listening line");
    let url = line
        .trim()
        .strip_prefix("collector listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches("/v1/traces");

    // An empty body is refused with a reason, and the collector goes on.
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    let stats = stop(child);
    assert_eq!(stats["requests"], 1);
    assert_eq!(stats["requests_rejected"], 1);
    assert_eq!(stats["spans_received"], 0);
}

/// `--grpc-listen`: the collector takes OTLP/gRPC there besides OTLP/HTTP, says where,
/// and counts a gRPC export in the stats it prints.
#[test]
fn collect_takes_grpc_on_grpc_listen() {
    let mut child = Command::new(BIN)
        .args(["collect", "--listen", "127.0.0.1:0"])
        .args(["--grpc-listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gracetrace collect");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut lines = [String::new(), String::new()];
    for line in &mut lines {
        stderr.read_line(line).expect("a line");
    }
    assert!(
        lines[0].starts_with("collector listening on http://"),
        "{lines:?}"
    );
    let grpc: std::net::SocketAddr = lines[1]
        .trim()
        .strip_prefix("collector taking OTLP/gRPC on http://")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected second line {:?}", lines[1]));
    let message = crate::collector::request(vec![crate::collector::span(1, 1, None, "r")]);
    let answer = crate::collector_grpc::Client::connect(grpc).export(&[], &message, false);
    assert_eq!(answer.code(), Some(0), "{answer:?}");

    let stats = stop(child);
    assert_eq!(stats["requests_grpc"], 1);
    assert_eq!(stats["spans_received"], 1);
}

/// A `--grpc-listen` that is not an address, or is `--listen`'s own: exit code 2 naming
/// the flag, nothing started.
#[test]
fn collect_rejects_a_bad_grpc_listen_with_exit_code_2() {
    for (value, one_line) in [("nope", false), ("127.0.0.1:4318", true)] {
        let output = Command::new(BIN)
            .args([
                "collect",
                "--listen",
                "127.0.0.1:4318",
                "--grpc-listen",
                value,
            ])
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{value}: {stderr}");
        let first = stderr.lines().next().unwrap_or("");
        assert!(
            first.contains("--grpc-listen") && first.contains(value),
            "{stderr}"
        );
        if one_line {
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(stderr.contains("--listen's"), "{stderr}");
        }
    }
}

#[test]
fn collect_rejects_a_bad_flag_with_exit_code_2() {
    let output = Command::new(BIN)
        .args(["collect", "--listen", "127.0.0.1:0", "--error-rate", "1.5"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--error-rate") && stderr.contains("1.5"),
        "{stderr}"
    );
}

/// `--forward` with a URL that is not an http URL with a host and a port: one line naming
/// the flag and the value, exit code 2, nothing started.
#[test]
fn collect_rejects_a_bad_forward_url_with_exit_code_2() {
    for bad in ["localhost:4318", "https://:4318", "http://h:0", "http://:9"] {
        let output = Command::new(BIN)
            .args(["collect", "--listen", "127.0.0.1:0", "--forward", bad])
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{bad}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(&format!("--forward {bad} ")) && stderr.contains("http://"),
            "{stderr}"
        );
    }
}
