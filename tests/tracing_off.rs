//! Tracing off is the seed's "no provider": zero spans and zero export threads.
//! (Its own test binary, so no other test's threads are in the process.)

mod common;

use std::sync::atomic::Ordering::Relaxed;

use common::{PATIENCE, scenario, wait_until};
use gracetrace::session::Session;
use gracetrace::workload::Traffic;

fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .map(|name| name.trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn tracing_off_makes_no_spans_and_no_export_thread() {
    let settings = scenario(
        "seed-defaults",
        &[
            "tracing.enabled=false",
            "workload.duration_s=1",
            "workload.rate_per_s=100",
        ],
    );
    let session = Session::start(&settings).expect("session");
    let traffic = Traffic::start(&settings.workload, session.pipeline.clone());
    // Requests are being served: the runner's threads run (and have named themselves).
    wait_until(
        "the runner's threads and a served request",
        PATIENCE,
        || {
            let names = thread_names();
            names.iter().any(|n| n.starts_with("gracetrace-runn"))
                && session.record.counters.requests_completed.load(Relaxed) > 0
        },
    );
    let names = thread_names();
    // Thread names are cut to 15 bytes: "OtelBatchSpanRe", "OpenTelemetry.T".
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("OtelBatch") || n.starts_with("OpenTelemetry")),
        "{names:?}"
    );
    traffic.wait();
    session.pipeline.shutdown();
    let report = session.finish(&settings);
    assert!(report.requests.completed > 50);
    assert_eq!(report.spans.counts.created, 0);
    assert!(report.exports.is_empty());
    assert_eq!(report.collector.expect("collector").requests, 0);

    // And the same check passes the other way: with tracing on, the thread exists.
    let on = scenario("seed-defaults", &["workload.duration_s=0.2"]);
    let session = Session::start(&on).expect("session");
    // A new thread names itself once it runs, so give it a moment.
    wait_until("the SDK's export thread", PATIENCE, || {
        thread_names().iter().any(|n| n.starts_with("OtelBatch"))
    });
    session.pipeline.shutdown();
    session.finish(&on);
}
