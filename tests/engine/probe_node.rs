//! `gracetrace probe --url URL -- node server.js`: the Node.js twin of `probe_load`'s
//! cases, against tests/apps/node/server.js (the real JavaScript SDK, its
//! BatchSpanProcessor and OTLP/HTTP protobuf exporter): a clean shutdown loses no trace, a
//! backend slower than the grace loses exactly the answered requests whose traces did not
//! arrive, and the report names the app's SDK (`nodejs`) and the js rules.

use crate::common::{node_app, node_ready};
use crate::probe::{HTTP, probe_in, read_report, report_path, spans_ended, stderr, stdout, u};
use crate::probe_load::{TRAFFIC, assert_lost_traces_listed, assert_requests_accounted, free_port};

/// With `probe_load`'s traffic, the js SDK's sampler arithmetic for the `traceparent` flags.
const JS_SAMPLER: [&str; 2] = ["--set", "tracing.semantics=js"];

/// Runs server.js under `probe --url` with `flags`; the probe's output and its report.
fn probe_node_server(name: &str, flags: &[&str]) -> (std::process::Output, serde_json::Value) {
    let json = report_path(name);
    let port = free_port().to_string();
    let url = format!("http://127.0.0.1:{port}/generate");
    let mut args = vec!["--url", &url, "--json", json.to_str().unwrap()];
    args.extend(TRAFFIC);
    args.extend(JS_SAMPLER);
    args.extend(flags);
    let app = node_app("server.js");
    let out = probe_in(HTTP, &args, &["node", &app, &port, "20"]);
    let report = read_report(&json);
    (out, report)
}

/// The report names the Node SDK, its version and the js rules.
fn assert_names_nodejs(r: &serde_json::Value, err: &str) {
    let p = &r["probe"];
    assert_eq!(p["sdk"]["language"], "nodejs", "{p:#}");
    assert_eq!(p["sdk"]["version"], "2.12.1", "{p:#}");
    assert_eq!(p["rules"], "js", "{p:#}");
    assert_eq!(p["service_name"], "server-app");
    assert!(
        err.contains("opentelemetry-nodejs 2.12.1, so the js rules apply"),
        "{err}"
    );
}

/// A clean shutdown at sample rate 0.5: every request answered, the app traces exactly
/// the requests whose `traceparent` said sampled, each trace arrives whole with its root,
/// and the collector's count is the app's own.
#[test]
fn node_clean_shutdown_every_sampled_trace_arrives_whole() {
    if !node_ready() {
        return;
    }
    let (out, r) = probe_node_server(
        "node-clean",
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
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_names_nodejs(&r, &err);
    let (load, traces) = (&r["load"], &r["traces"]);
    assert_requests_accounted(load);
    assert!(u(&load["scheduled"]) > 100, "{load:#}");
    assert_eq!(u(&load["answered"]), u(&load["scheduled"]), "{err}");
    let rows = load["requests"].as_array().unwrap();
    for row in rows {
        let spans = u(&row["spans_received"]);
        match row["sampled"].as_bool().unwrap() {
            true => assert!(spans == 3 && row["root"] == true, "{row:#}"),
            false => assert!(spans == 0 && row["root"] == false, "{row:#}"),
        }
    }
    let sampled = rows.iter().filter(|row| row["sampled"] == true).count() as u64;
    assert!(sampled > 0 && sampled < rows.len() as u64);
    assert_eq!(
        (u(&traces["complete"]), u(&traces["lost"])),
        (sampled, 0),
        "{traces:#}"
    );
    assert_eq!(u(&r["collector"]["spans_received"]), 3 * sampled);
    assert_eq!(spans_ended(&stdout(&out)), 3 * sampled);
    assert_eq!(u(&r["probe"]["orphan_spans"]), 0);
    assert_eq!(r["probe"]["exit_code"], 0);
    println!(
        "node clean: {} requests sent, {} answered, {sampled} sampled, 0 traces lost",
        u(&load["sent"]),
        u(&load["answered"]),
    );
}

/// A backend slower than the grace: exports take 1 s, the grace is 0.5 s, so the app is
/// SIGKILLed in its teardown flush, and the lost traces are exactly the answered sampled
/// requests whose root did not arrive.
#[test]
fn node_slow_backend_lost_traces_are_named() {
    if !node_ready() {
        return;
    }
    let (out, r) = probe_node_server(
        "node-slow",
        &[
            "--grace-ms",
            "500",
            "--set",
            "collector.latency_ms=1000",
            "--fail-if",
            "lost_traces>0",
        ],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_names_nodejs(&r, &err);
    assert_eq!(r["probe"]["killed"], true, "{:#}", r["probe"]);
    let (load, traces) = (&r["load"], &r["traces"]);
    assert_requests_accounted(load);
    let rows = assert_lost_traces_listed(load, traces);
    let per_request: u64 = rows.iter().map(|row| u(&row["spans_received"])).sum();
    assert_eq!(per_request, u(&r["collector"]["spans_received"]));
    assert_eq!(
        u(&traces["complete"]) + u(&traces["lost"]),
        u(&traces["answered_sampled"])
    );
    println!(
        "node slow backend: {} sent, {} answered, {} sampled and answered: {} complete, {} lost",
        u(&load["sent"]),
        u(&load["answered"]),
        u(&traces["answered_sampled"]),
        u(&traces["complete"]),
        u(&traces["lost"]),
    );
}

/// `--compare tracing.enabled=false,true` on the Node server: two fresh runs with the same
/// schedule; tracing off sends no span, tracing on traces every answered request whole,
/// neither loses a trace in a clean shutdown, and both rows carry the app's CPU time.
#[test]
fn node_compare_tracing_off_and_on() {
    if !node_ready() {
        return;
    }
    let (out, r) = probe_node_server(
        "node-compare",
        &[
            "--sigterm-at",
            "4",
            "--grace-ms",
            "60000",
            "--compare",
            "tracing.enabled=false,true",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let runs = r["runs"].as_array().expect("runs");
    assert_eq!(
        (runs[0]["value"].as_str(), runs[1]["value"].as_str()),
        (Some("false"), Some("true"))
    );
    for run in runs {
        let load = &run["report"]["load"];
        assert_requests_accounted(load);
        assert_eq!(
            u(&load["answered"]),
            u(&load["scheduled"]),
            "{}",
            stderr(&out)
        );
        assert_eq!(u(&run["row"]["lost_traces"]), 0, "{:#}", run["row"]);
        assert!(run["row"]["cpu_before_sigterm_ms"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(u(&runs[0]["row"]["spans_received"]), 0);
    let on = &runs[1]["report"];
    assert_eq!(
        u(&on["collector"]["spans_received"]),
        3 * u(&on["load"]["answered"])
    );
    assert_names_nodejs(on, &stderr(&out));
}

/// A server that ignores the `traceparent` (tests/apps/node/plain_server.js: the SDK's
/// defaults, no propagator): its spans arrive under trace ids of its own, so no request
/// can be followed. The report says so, counts the requests' traces as unknown, not lost,
/// and `--fail-if lost_traces>0` holds, naming why, instead of passing on 0 lost.
#[test]
fn node_server_that_ignores_traceparent_is_named_not_counted_as_lost() {
    if !node_ready() {
        return;
    }
    let json = report_path("node-plain");
    let port = free_port().to_string();
    let url = format!("http://127.0.0.1:{port}/");
    let mut args = vec!["--url", &url, "--json", json.to_str().unwrap()];
    args.extend(TRAFFIC);
    args.extend(["--fail-if", "lost_traces>0"]);
    let app = node_app("plain_server.js");
    let out = probe_in(HTTP, &args, &["node", &app, &port]);
    let r = read_report(&json);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("held: cannot count lost traces"), "{err}");
    assert!(
        err.contains("does not continue the W3C traceparent"),
        "{err}"
    );
    let traces = &r["traces"];
    assert_eq!(traces["traceparent_ignored"], true, "{traces:#}");
    assert!(
        u(&r["collector"]["spans_received"]) > 0,
        "{:#}",
        r["collector"]
    );
    assert_eq!(u(&traces["lost"]), 0, "{traces:#}");
    assert_eq!(u(&traces["unknown"]), u(&traces["answered_sampled"]));
    assert_requests_accounted(&r["load"]);
}
