//! `gracetrace probe --url URL -- CMD`: the probe sends the scenario's traffic to a real
//! traced server (tests/apps/server_app.py: the Python SDK, its BatchSpanProcessor and
//! OTLP/HTTP exporter) and follows every request to its trace in the collector, through a
//! clean shutdown, a backend slower than the grace, and apps that never become ready.

use std::path::Path;

use crate::common::{PATIENCE, python_ready, wait_until};
use crate::probe::{HTTP, probe_in, read_report, report_path, spans_ended, stderr, stdout, u};

/// The traced server of tests/apps/.
pub(crate) fn server_app() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/apps/server_app.py")
        .display()
        .to_string()
}

/// A loopback port nothing listens on now (bound, then released).
pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// The settings every load test shares: 3 s of Poisson arrivals at 40/s with a burst of
/// 10 each second, exports every 200 ms, the python SDK's sampler arithmetic.
pub(crate) const TRAFFIC: [&str; 10] = [
    "--set",
    "workload.rate_per_s=40",
    "--set",
    "workload.duration_s=3",
    "--set",
    "workload.burst_every_s=1",
    "--set",
    "workload.burst_size=10",
    "--set",
    "batch.schedule_delay_ms=200",
];

/// Runs the server under `probe --url` with `flags`; the probe's output and its report.
fn probe_server(name: &str, flags: &[&str]) -> (std::process::Output, serde_json::Value) {
    let json = report_path(name);
    let port = free_port().to_string();
    let url = format!("http://127.0.0.1:{port}/generate");
    let mut args = vec!["--url", &url, "--json", json.to_str().unwrap()];
    args.extend(TRAFFIC);
    args.extend(flags);
    let app = server_app();
    let out = probe_in(HTTP, &args, &["python3", &app, &port, "20"]);
    let report = read_report(&json);
    (out, report)
}

/// The lost traces are exactly the answered, sampled requests whose root did not arrive:
/// there is at least one, the report lists them all and counts them; the request rows.
pub(crate) fn assert_lost_traces_listed<'a>(
    load: &'a serde_json::Value,
    traces: &serde_json::Value,
) -> &'a Vec<serde_json::Value> {
    let rows = load["requests"].as_array().unwrap();
    let lost_rows: Vec<u64> = rows
        .iter()
        .filter(|row| {
            row["outcome"] == "answered" && row["sampled"] == true && row["root"] == false
        })
        .map(|row| u(&row["index"]))
        .collect();
    let listed: Vec<u64> = traces["lost_requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| u(&l["index"]))
        .collect();
    assert!(!lost_rows.is_empty(), "{traces:#}");
    assert_eq!(listed, lost_rows);
    assert_eq!(u(&traces["lost"]), lost_rows.len() as u64);
    rows
}

/// Every scheduled request is in exactly one bucket, and the per-request rows add up to
/// the totals.
pub(crate) fn assert_requests_accounted(load: &serde_json::Value) {
    let f = &load["failed"];
    let failed: u64 = [
        "refused",
        "reset",
        "timeout",
        "cut_mid_response",
        "status_5xx",
        "status_429",
        "other_status",
        "other_error",
    ]
    .iter()
    .map(|k| u(&f[k]))
    .sum();
    assert_eq!(
        u(&load["scheduled"]),
        u(&load["sent"]) + u(&load["not_sent_after_routing_end"]),
        "{load:#}"
    );
    assert_eq!(
        u(&load["sent"]),
        u(&load["answered"]) + failed + u(&load["in_flight_at_end"]),
        "{f:#}"
    );
    let rows = load["requests"].as_array().expect("requests");
    assert_eq!(rows.len() as u64, u(&load["scheduled"]));
    let answered = rows.iter().filter(|r| r["outcome"] == "answered").count() as u64;
    assert_eq!(answered, u(&load["answered"]));
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(u(&r["index"]), i as u64, "rows are by arrival index");
    }
}

/// A clean shutdown at sample rate 0.5: every request is answered, the app traces exactly
/// the requests whose `traceparent` said sampled (the probe's decision is the Python
/// SDK's), each of their traces arrives whole with its root, none is an orphan, and the
/// collector's count is the app's own.
#[test]
fn clean_shutdown_every_sampled_trace_arrives_whole() {
    if !python_ready() {
        return;
    }
    let (out, r) = probe_server(
        "load-clean",
        // SIGTERM 1 s after the 3 s of traffic: every request has been answered by then.
        &[
            "--sigterm-at",
            "4",
            "--grace-ms",
            "60000",
            "--set",
            "tracing.sample_rate=0.5",
            "--fail-if",
            "lost_traces>0",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let (load, traces) = (&r["load"], &r["traces"]);
    assert_requests_accounted(load);
    assert!(u(&load["scheduled"]) > 100, "{load:#}");
    assert_eq!(
        u(&load["answered"]),
        u(&load["scheduled"]),
        "{}",
        stderr(&out)
    );
    let rows = load["requests"].as_array().unwrap();
    for row in rows {
        let spans = u(&row["spans_received"]);
        match row["sampled"].as_bool().unwrap() {
            true => assert!(spans == 3 && row["root"] == true, "{row:#}"),
            false => assert!(spans == 0 && row["root"] == false, "{row:#}"),
        }
    }
    let sampled = rows.iter().filter(|row| row["sampled"] == true).count() as u64;
    assert!(
        sampled > 0 && sampled < rows.len() as u64,
        "{sampled} of {}",
        rows.len()
    );
    assert_eq!(u(&traces["answered_sampled"]), sampled);
    assert_eq!(
        (u(&traces["complete"]), u(&traces["lost"])),
        (sampled, 0),
        "{traces:#}"
    );
    assert_eq!(u(&r["collector"]["spans_received"]), 3 * sampled);
    assert_eq!(spans_ended(&stdout(&out)), 3 * sampled);
    assert_eq!(
        u(&r["probe"]["orphan_spans"]),
        0,
        "the probe's parent makes the root"
    );
    assert_eq!(r["probe"]["exit_code"], 0);
    let before = &load["latency_ms"]["before_sigterm"];
    assert!(
        before["p50"].as_f64().unwrap() >= 20.0,
        "latency counts the 20 ms service time"
    );
    println!(
        "clean: {} requests sent, {} answered, {sampled} sampled, {} traces lost; latency p50 {} \
         p99 {} ms; send lag p99 {} ms",
        u(&load["sent"]),
        u(&load["answered"]),
        u(&traces["lost"]),
        before["p50"],
        before["p99"],
        load["send_lag_ms"]["p99"],
    );
}

/// A backend slower than the grace: exports take 1 s, the grace is 0.5 s, so the app is
/// SIGKILLed in its teardown flush and the traces still in its queue or in that export
/// are lost. The lost traces are exactly the answered sampled requests whose root did not
/// arrive, the report lists them, and `--fail-if lost_traces>0` exits 3 naming itself.
#[test]
fn slow_backend_lost_traces_are_named_and_fail_the_gate() {
    if !python_ready() {
        return;
    }
    let (out, r) = probe_server(
        "load-slow",
        &[
            "--grace-ms",
            "500",
            "--set",
            "collector.latency_ms=1000",
            "--fail-if",
            "failed_requests>1000",
            "--fail-if",
            "lost_traces>0",
        ],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("gracetrace probe: --fail-if lost_traces>0 held: "),
        "{err}"
    );
    assert_eq!(r["probe"]["killed"], true, "{:#}", r["probe"]);
    let (load, traces) = (&r["load"], &r["traces"]);
    assert_requests_accounted(load);
    let rows = assert_lost_traces_listed(load, traces);
    assert_eq!(
        u(&traces["lost"]),
        u(&traces["lost_before_sigterm"]) + u(&traces["lost_after_sigterm"])
    );
    for lost in traces["lost_requests"].as_array().unwrap() {
        let row = &rows[u(&lost["index"]) as usize];
        assert_eq!(lost["trace_id"], row["trace_id"]);
    }
    // What did arrive is the collector's whole count: every span received is of a request.
    let per_request: u64 = rows.iter().map(|row| u(&row["spans_received"])).sum();
    assert_eq!(per_request, u(&r["collector"]["spans_received"]));
    assert_eq!(
        u(&traces["complete"]) + u(&traces["lost"]),
        u(&traces["answered_sampled"])
    );
    println!(
        "slow backend: {} sent, {} answered, {} sampled and answered: {} complete, {} lost \
         ({} before SIGTERM, {} after)",
        u(&load["sent"]),
        u(&load["answered"]),
        u(&traces["answered_sampled"]),
        u(&traces["complete"]),
        u(&traces["lost"]),
        u(&traces["lost_before_sigterm"]),
        u(&traces["lost_after_sigterm"]),
    );
}

/// A URL nobody listens on: the probe waits `--ready-timeout-s`, says what it waited for
/// in one line, exits 1, and the app (which never listened) is gone with its group.
#[test]
fn a_url_nobody_listens_on_is_a_readiness_error() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/");
    let out = probe_in(
        HTTP,
        &["--url", &url, "--ready-timeout-s", "1"],
        &["sh", "-c", "echo pid $$; exec sleep 600"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    let waited =
        format!("{url} was not ready within 1 s (waited for a TCP connection to 127.0.0.1:{port})");
    assert!(err.contains(&waited), "{err}");
    let pid: u32 = stdout(&out)
        .lines()
        .find_map(|l| l.strip_prefix("pid "))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid in {}", stdout(&out)));
    wait_until("the app to be gone", PATIENCE, || {
        !Path::new(&format!("/proc/{pid}")).exists()
    });
}

/// A server that exits before it is ready: one line naming the URL and what was waited
/// for, exit 1, at once rather than after the readiness timeout.
#[test]
fn an_app_that_exits_before_it_is_ready() {
    let url = format!("http://127.0.0.1:{}/", free_port());
    let out = probe_in(
        HTTP,
        &[
            "--url",
            &url,
            "--ready-path",
            "/health",
            "--ready-timeout-s",
            "600",
        ],
        &["sh", "-c", "exit 3"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("the app ended before {url} was ready")),
        "{err}"
    );
    assert!(err.contains("2xx from GET /health"), "{err}");
}

/// Bad load flags name themselves and what is allowed, exit 2, before anything starts.
#[test]
fn bad_load_flags_are_named() {
    let url = "http://127.0.0.1:9/";
    for (args, named) in [
        (
            vec!["--url", "https://127.0.0.1:9/"],
            "--url https://127.0.0.1:9/: expected http://host:port/path",
        ),
        (
            vec!["--url", url, "--header", "no colon"],
            "--header \"no colon\": expected 'Name: value'",
        ),
        (
            vec!["--url", url, "--body", "/no/such/gracetrace-body"],
            "--body /no/such/gracetrace-body: cannot read it",
        ),
        (
            vec!["--url", url, "--method", "PUT"],
            "--method PUT: expected GET or POST",
        ),
        (
            vec!["--url", url, "--fail-if", "lost>0"],
            "--fail-if lost>0: expected lost_traces>N",
        ),
        (
            vec!["--fail-if", "lost_traces>0", "--sigterm-at", "1"],
            "--fail-if lost_traces>0: needs --url",
        ),
        (
            vec!["--method", "GET", "--sigterm-at", "1"],
            "--method: needs --url",
        ),
        (
            vec!["--url", url, "--compare", "exporter.timeout_ms=1,2"],
            "--compare exporter.timeout_ms: neither the app nor the probe uses it",
        ),
        (
            vec!["--url", url, "--compare", "tracing.sample_rate=0.5"],
            "1 values; expected from 2 to 10",
        ),
        (
            vec!["--compare", "tracing.enabled=false,true"],
            "--compare without --url needs --sigterm-at or shutdown.at_s",
        ),
    ] {
        let out = probe_in(HTTP, &args, &["true"]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(named), "{args:?}: {err}");
    }
}

/// `--compare tracing.enabled=false,true`: the app runs twice, fresh each time, with the
/// same schedule; the JSON has one report per value and a row each. Tracing off sends no
/// span and loses no trace; tracing on traces every request and loses none in a clean
/// shutdown; both answer every request, and each row's figures are its report's.
#[test]
fn compare_runs_the_app_once_per_value() {
    if !python_ready() {
        return;
    }
    let json = report_path("load-compare");
    let port = free_port().to_string();
    let url = format!("http://127.0.0.1:{port}/generate");
    let mut args = vec!["--url", &url, "--json", json.to_str().unwrap()];
    args.extend(TRAFFIC);
    args.extend([
        "--sigterm-at",
        "4",
        "--grace-ms",
        "60000",
        "--compare",
        "tracing.enabled=false,true",
    ]);
    let app = server_app();
    let out = probe_in(HTTP, &args, &["python3", &app, &port, "20"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = read_report(&json);
    assert_eq!(r["key"], "tracing.enabled");
    let runs = r["runs"].as_array().expect("runs");
    let values: Vec<&str> = runs
        .iter()
        .map(|run| run["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["false", "true"]);
    for run in runs {
        let (report, row) = (&run["report"], &run["row"]);
        let load = &report["load"];
        assert_requests_accounted(load);
        assert_eq!(
            u(&load["answered"]),
            u(&load["scheduled"]),
            "{}",
            stderr(&out)
        );
        assert_eq!(row["spans_received"], report["collector"]["spans_received"]);
        assert_eq!(u(&row["lost_traces"]), 0, "{row:#}");
        assert!(row["answered_per_s_before_sigterm"].as_f64().unwrap() > 0.0);
        assert!(
            row["cpu_before_sigterm_ms"].as_f64().unwrap() > 0.0,
            "{row:#}"
        );
        assert!(report["probe"]["cpu_total_ms"].as_f64().unwrap() > 0.0);
    }
    let spans = |i: usize| u(&runs[i]["row"]["spans_received"]);
    assert_eq!(spans(0), 0, "tracing off makes no span");
    assert_eq!(spans(1), 3 * u(&runs[1]["report"]["load"]["answered"]));
    let err = stderr(&out);
    assert!(err.contains("run 1 of 2: tracing.enabled=false"), "{err}");
    assert!(
        err.contains("tracing.enabled") && err.contains("CPU/req"),
        "{err}"
    );
    println!(
        "{}",
        err.lines().rev().take(4).collect::<Vec<_>>().join("\n")
    );
}
