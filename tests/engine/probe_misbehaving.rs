//! `gracetrace probe --url` against servers that misbehave (tests/apps/misbehaving_server.py,
//! standard-library Python, no tracing): one that answers every request 500, one that never
//! answers, and one that ignores SIGTERM and forks a child out of its process group. Each
//! gets a clear verdict, every request the probe sent is accounted for, and no process the
//! app started outlives the probe. (A URL nobody listens on and an app that exits before
//! it is ready are in `probe_load`.)

use std::path::Path;

use crate::common::{PATIENCE, wait_until};
use crate::probe::{HTTP, probe_in, read_report, report_path, stderr, stdout, u};
use crate::probe_load::{assert_requests_accounted, free_port};

fn misbehaving_server() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/apps/misbehaving_server.py")
        .display()
        .to_string()
}

/// 2 s of 20 requests a second, SIGTERM when the traffic ends, a 1 s grace.
const TRAFFIC: [&str; 8] = [
    "--set",
    "workload.rate_per_s=20",
    "--set",
    "workload.duration_s=2",
    "--set",
    "workload.burst_every_s=0",
    "--grace-ms",
    "1000",
];

/// Runs the server in `mode` under the probe with `flags`; its output and report.
fn probe_mode(mode: &str, flags: &[&str]) -> (std::process::Output, serde_json::Value) {
    let json = report_path(&format!("misbehaving-{mode}"));
    let port = free_port().to_string();
    let url = format!("http://127.0.0.1:{port}/generate");
    let mut args = vec![
        "--url",
        &url,
        "--ready-path",
        "/health",
        "--json",
        json.to_str().unwrap(),
    ];
    args.extend(TRAFFIC);
    args.extend(flags);
    let app = misbehaving_server();
    let out = probe_in(HTTP, &args, &["python3", &app, mode, &port]);
    let report = read_report(&json);
    (out, report)
}

/// The pids the app printed (`pid N`), each gone within the test's patience.
fn assert_all_gone(out: &std::process::Output) -> usize {
    let pids: Vec<u32> = stdout(out)
        .lines()
        .filter_map(|l| l.strip_prefix("pid ")?.trim().parse().ok())
        .collect();
    for pid in &pids {
        wait_until(&format!("process {pid} to be gone"), PATIENCE, || {
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z "))
        });
    }
    pids.len()
}

/// Every request answered 500: all sent requests failed as 5xx, none is answered, so no
/// trace can be lost; `--fail-if failed_requests>0` names the condition and exits 3.
#[test]
fn a_server_that_answers_500_fails_every_request() {
    let (out, r) = probe_mode("500", &["--fail-if", "failed_requests>0"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let load = &r["load"];
    assert_requests_accounted(load);
    assert!(u(&load["sent"]) > 0, "{load:#}");
    assert_eq!(u(&load["failed"]["status_5xx"]), u(&load["sent"]));
    assert_eq!(u(&load["answered"]), 0);
    assert_eq!(
        u(&r["traces"]["lost"]),
        0,
        "a failed request has no trace to lose"
    );
    assert!(
        stderr(&out).contains("failed_requests>0"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains(" 5xx"), "{}", stderr(&out));
    assert_all_gone(&out);
}

/// A server that reads requests and never answers: each one times out (`--timeout-s`) or
/// is still waiting when the app is gone; none is answered, and the probe ends.
#[test]
fn a_server_that_never_answers_times_out_every_request() {
    let (out, r) = probe_mode("silent", &["--timeout-s", "0.5"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let load = &r["load"];
    assert_requests_accounted(load);
    assert_eq!(u(&load["answered"]), 0, "{load:#}");
    assert!(u(&load["failed"]["timeout"]) > 0, "{load:#}");
    assert_eq!(
        u(&load["failed"]["timeout"]) + u(&load["in_flight_at_end"]),
        u(&load["sent"]),
        "{load:#}"
    );
    assert!(stderr(&out).contains("timeout"), "{}", stderr(&out));
    assert_all_gone(&out);
}

/// A server that ignores SIGTERM and forks a child out of its group: SIGKILL comes at the
/// end of the grace, the verdict says so, and the child, which the group's SIGKILL cannot
/// reach, is gone too.
#[test]
fn a_server_that_ignores_sigterm_and_forks_is_killed_whole() {
    let (out, r) = probe_mode("stubborn", &["--fail-if", "killed"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(r["probe"]["killed"], true, "{:#}", r["probe"]);
    assert!(stderr(&out).contains("was SIGKILLed"), "{}", stderr(&out));
    let load = &r["load"];
    assert_requests_accounted(load);
    assert!(u(&load["answered"]) > 0, "{load:#}");
    assert_eq!(
        assert_all_gone(&out),
        2,
        "the server and its child: {}",
        stdout(&out)
    );
}

/// Fly.io's preset sends SIGINT, not SIGTERM (the grace here is the test's 1 s, not Fly's
/// 5 s): a server that ignores both is SIGKILLed at its end, and the report names the
/// signal it got.
#[test]
fn the_fly_preset_sends_sigint() {
    let (out, r) = probe_mode("stubborn", &["--platform", "fly"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(r["probe"]["stop_signal"], "SIGINT", "{:#}", r["probe"]);
    assert!(stderr(&out).contains("SIGINT at"), "{}", stderr(&out));
    assert_all_gone(&out);
}
