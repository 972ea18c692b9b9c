//! Every shipped scenario, run end to end through the real SDK, exporter and collector,
//! accounts for every span exactly.

use crate::common::{assert_accounted, scenario};
use gracetrace::record::report::Report;

fn run(name: &str, overrides: &[&str]) -> Report {
    let settings = scenario(name, overrides);
    let report = gracetrace::session::run(&settings).expect("run");
    let spans = &report.spans.counts;
    assert_accounted(spans);
    assert_eq!(report.spans.unaccounted, 0);
    assert_eq!(spans.queued, 0, "a clean shutdown drains everything");
    assert_eq!(spans.dropped_after_shutdown, 0);
    assert_eq!(spans.lost_at_kill, 0, "no SIGKILL in these runs");
    assert_eq!(
        report.requests.sent,
        report.requests.completed + report.requests.rejected + report.requests.cancelled
    );
    report
}

#[test]
fn seed_defaults_lose_nothing() {
    let report = run("seed-defaults", &[]);
    let spans = report.spans.counts;
    assert!(spans.created > 0);
    assert_eq!(spans.exported, spans.created);
    assert_eq!(spans.received, spans.exported, "healthy backend");
}

#[test]
fn burst_overflow_drops_the_oldest_under_python() {
    let report = run("burst-overflow", &[]);
    let spans = report.spans.counts;
    assert!(spans.dropped_oldest > 0, "{spans:#?}");
    assert_eq!(spans.dropped_newest, 0);
    assert_eq!(spans.received, spans.exported, "healthy backend");
}

#[test]
fn burst_overflow_drops_the_newest_under_rust_and_sdk() {
    for semantics in ["rust", "sdk"] {
        let set = format!("tracing.semantics={semantics}");
        let report = run("burst-overflow", &[&set]);
        let spans = report.spans.counts;
        assert!(spans.dropped_newest > 0, "{semantics}: {spans:#?}");
        assert_eq!(spans.dropped_oldest, 0);
        assert_eq!(spans.received, spans.exported, "healthy backend");
    }
}

#[test]
fn slow_backend_fills_the_queue() {
    let report = run("slow-backend", &[]);
    let spans = report.spans.counts;
    assert!(spans.dropped_queue_full > 0, "{spans:#?}");
    assert_eq!(spans.received, spans.exported, "slow but healthy backend");
}

#[test]
fn flaky_backend_is_retried_and_accounted() {
    let report = run("flaky-backend", &[]);
    let spans = report.spans.counts;
    // Every HTTP attempt reached the collector and got an answer: 2xx for exactly the
    // batches that count as exported, an injected 503 for every retried one.
    let collector = report.collector.expect("embedded collector");
    assert_eq!(spans.received, spans.exported);
    assert_eq!(report.http.attempts, collector.requests);
    let ok_batches = report
        .exports
        .iter()
        .filter(|e| e.outcome == gracetrace::record::Outcome::Ok)
        .count();
    assert_eq!(collector.requests_accepted, ok_batches as u64);
    assert_eq!(
        collector.requests_rejected,
        collector.rejected_by_reason.values().sum::<u64>()
    );
}

#[test]
fn outage_fails_every_export() {
    let report = run("outage", &[]);
    let spans = report.spans.counts;
    assert!(spans.created > 0);
    assert_eq!(spans.export_failed, spans.created);
    assert_eq!(spans.received, 0);
    // Python posts twice per try (l. 156-172) and tries at ~0, 1, 3 and 7 s.
    let export = &report.exports[0];
    assert!(export.attempts >= 6, "{export:?}");
    let busy_ms = export.end_ms.unwrap() - export.start_ms;
    assert!((5_000.0..10_000.0).contains(&busy_ms), "{busy_ms}");
}

/// The stock processor hides its drop count, so its drops used to be booked as `queued`
/// until it shut down, and forever when the shutdown timed out: 600 queued in a 64-span
/// queue against a backend that never answers. Now a span that finds the stock queue full
/// is `dropped_queue_full` at once, as the rust profile books it.
#[test]
fn the_stock_processor_books_its_drops_when_they_happen() {
    let settings = scenario(
        "seed-defaults",
        &[
            "tracing.semantics=sdk",
            "batch.max_queue_size=64",
            "batch.max_export_batch_size=32",
            "collector.black_hole=true",
            "workload.duration_s=1",
            "workload.rate_per_s=200",
        ],
    );
    let report = gracetrace::session::run(&settings).expect("run");
    let spans = &report.spans.counts;
    assert_accounted(spans);
    assert!(spans.dropped_newest > 0, "{spans:#?}");
    // `queued` is the queue (at most max_queue_size) and the one export in flight (at
    // most a batch), which the black hole never answers.
    assert!(
        spans.queued <= 64 + 32,
        "the queue holds at most max_queue_size: {spans:#?}"
    );
}
