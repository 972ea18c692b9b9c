//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gracetrace::config::Settings;
use gracetrace::record::SpanCounts;

/// No environment: tests must not depend on the OTEL_* variables of the machine.
pub fn no_env(_: &str) -> Option<String> {
    None
}

pub fn scenario_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/scenarios")
        .join(format!("{name}.toml"))
}

/// Loads a shipped scenario with `--set`-style overrides.
pub fn scenario(name: &str, overrides: &[&str]) -> Settings {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    Settings::load(&no_env, Some(&scenario_path(name)), &overrides)
        .unwrap_or_else(|e| panic!("scenario {name}: {e}"))
}

/// The accounting identity, with every term printed when it fails.
pub fn assert_accounted(counts: &SpanCounts) {
    assert_eq!(
        counts.created,
        counts.not_sampled
            + counts.exported
            + counts.dropped_queue_full
            + counts.export_failed
            + counts.lost_at_kill
            + counts.queued
            + counts.dropped_after_shutdown,
        "every span must be accounted for: {counts:#?}"
    );
    assert_eq!(
        counts.dropped_queue_full,
        counts.dropped_oldest + counts.dropped_newest
    );
}

/// How long a test waits for something another thread does: generous, because a loaded CI
/// machine can be many times slower than a quiet one, and a wait that succeeds ends at once.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Checks `cond` every 10 ms until it holds; panics naming `what` once `limit` has passed.
/// Tests wait with this rather than with a fixed sleep before an assertion, which fails on
/// a slow machine and wastes time on a fast one.
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "gave up after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether python3 with the SDK and the OTLP/HTTP and OTLP/gRPC exporters is on PATH. CI installs them
/// (.ci/run); elsewhere the test says how to get them and, unless GRACETRACE_REQUIRE_PYTHON
/// is set, passes without checking.
pub fn python_ready() -> bool {
    let found = std::process::Command::new("python3")
        .args([
            "-c",
            "import opentelemetry.sdk.trace, opentelemetry.exporter.otlp.proto.http.trace_exporter, \
             opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
        ])
        .output();
    if matches!(found, Ok(ref out) if out.status.success()) {
        return true;
    }
    let message = "python3 with opentelemetry-sdk, opentelemetry-exporter-otlp-proto-http and \
                   opentelemetry-exporter-otlp-proto-grpc 1.41.0 is needed for this check \
                   (python3 -m venv .venv && .venv/bin/pip install opentelemetry-sdk==1.41.0 \
                   opentelemetry-exporter-otlp-proto-http==1.41.0 \
                   opentelemetry-exporter-otlp-proto-grpc==1.41.0, then put .venv/bin first on \
                   PATH)";
    assert!(
        std::env::var_os("GRACETRACE_REQUIRE_PYTHON").is_none(),
        "{message}"
    );
    eprintln!("SKIPPED: {message}");
    false
}

/// The seed-shaped Python app of tests/apps/.
pub fn seed_app() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/apps/seed_app.py")
        .display()
        .to_string()
}

/// The Node.js apps' folder, tests/apps/node.
pub fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps/node")
}

/// A Node.js app of tests/apps/node (`runner.js`, `server.js`).
pub fn node_app(name: &str) -> String {
    node_dir().join(name).display().to_string()
}

/// Whether `node` is on PATH and tests/apps/node has its packages (`npm ci` there). CI
/// installs them (.ci/run); elsewhere the test says how to get them and, unless
/// GRACETRACE_REQUIRE_NODE is set, passes without checking.
pub fn node_ready() -> bool {
    let found = std::process::Command::new("node")
        .current_dir(node_dir())
        .args([
            "-e",
            "require('@opentelemetry/sdk-trace-node'); \
             require('@opentelemetry/exporter-trace-otlp-proto')",
        ])
        .output();
    if matches!(found, Ok(ref out) if out.status.success()) {
        return true;
    }
    let message = "node (20 or newer) with the packages of tests/apps/node is needed for this \
                   check (cd tests/apps/node && npm ci)";
    assert!(
        std::env::var_os("GRACETRACE_REQUIRE_NODE").is_none(),
        "{message}"
    );
    eprintln!("SKIPPED: {message}");
    false
}
