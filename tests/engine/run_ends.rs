//! Every run ends (issue 11): with a flush in every request and a backend that never
//! answers, a run without a shutdown used to wait for every request's flush, 15 to 96 s
//! for a 1 s workload. Now it ends once the provider's shutdown timeout of its SDK has
//! passed after traffic ended, and reports what was still queued with the identity exact.

use std::time::{Duration, Instant};

use crate::common::{PATIENCE, assert_accounted, scenario};
use gracetrace::config::Semantics;
use gracetrace::telemetry::shutdown_timeout;

fn black_hole_flush_per_request(semantics: &str) {
    let settings = scenario(
        "seed-defaults",
        &[
            &format!("tracing.semantics={semantics}"),
            "workload.duration_s=1",
            "workload.rate_per_s=20",
            "workload.flush_every_request=true",
            "collector.black_hole=true",
            "exporter.timeout_ms=10000",
        ],
    );
    let timeout = shutdown_timeout(settings.tracing.semantics);
    let progress = std::sync::Mutex::new(Vec::new());
    let started = Instant::now();
    let report = gracetrace::session::run_with_progress(&settings, &|p| {
        progress.lock().unwrap().push(p.to_string());
    })
    .expect("run");
    let took = started.elapsed();
    let exit = report.exit.clone().expect("an exit report");
    let spans = report.spans.counts;
    println!(
        "{semantics}: ended {:.2} s after traffic ({:.0} s timeout), run {:.1} s; {}",
        (exit.end_ms - exit.traffic_end_ms) / 1000.0,
        timeout.as_secs_f64(),
        took.as_secs_f64(),
        exit.verdict
    );
    assert!(
        exit.timed_out,
        "a black hole never lets the provider shut down"
    );
    assert!(exit.end_ms - exit.traffic_end_ms >= timeout.as_millis() as f64);
    assert!(
        took < Duration::from_secs(1) + timeout + PATIENCE,
        "ended in bounded time: {took:?}"
    );
    assert_accounted(&spans);
    assert_eq!(report.spans.unaccounted, 0, "{spans:#?}");
    assert_eq!(spans.received, 0, "a black hole counts nothing");
    assert_eq!(spans.exported, 0);
    assert_eq!(spans.lost_at_kill, 0, "no SIGKILL: the run ended by itself");
    assert_eq!(spans.queued, exit.spans_queued + exit.spans_in_export);
    assert!(spans.created > 0 && spans.queued + spans.export_failed > 0);
    let lines = progress.lock().unwrap();
    assert!(
        lines.len() as u64 >= timeout.as_secs() - 1,
        "a progress line every second: {lines:?}"
    );
    assert!(lines[0].contains("spans queued"), "{}", lines[0]);
}

#[test]
fn black_hole_with_a_flush_in_every_request_ends_after_the_sdk_timeout() {
    let rust = std::thread::spawn(|| black_hole_flush_per_request("rust"));
    black_hole_flush_per_request("python");
    rust.join().expect("the rust run");
    assert_eq!(shutdown_timeout(Semantics::Python), Duration::from_secs(30));
    assert_eq!(shutdown_timeout(Semantics::Rust), Duration::from_secs(5));
}
