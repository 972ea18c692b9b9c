//! Live reconfiguration: settings change while traffic runs, and no span the old
//! settings accepted is lost.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use crate::common::{PATIENCE, assert_accounted, scenario, wait_until};
use gracetrace::config::{Semantics, Settings};
use gracetrace::session::Session;
use gracetrace::workload::Traffic;

/// One live edit of the settings, as a slider would make it.
type Change = Box<dyn Fn(&mut Settings)>;

#[test]
fn every_live_change_keeps_every_span() {
    let mut settings = scenario(
        "seed-defaults",
        &[
            "workload.duration_s=4",
            "workload.rate_per_s=300",
            "workload.concurrency=8",
            "workload.inference_ms=5",
            "workload.upload_ms=0",
            "batch.schedule_delay_ms=300",
        ],
    );
    let session = Session::start(&settings).expect("session");
    let traffic = Traffic::start(&settings.workload, session.pipeline.clone());
    let changes: Vec<Change> = vec![
        Box::new(|s| {
            s.batch.max_queue_size = 512;
            s.batch.max_export_batch_size = 128;
        }),
        Box::new(|s| s.tracing.semantics = Semantics::Rust),
        Box::new(|s| s.tracing.sample_rate = 0.1),
        Box::new(|s| s.tracing.semantics = Semantics::Sdk),
        Box::new(|s| s.tracing.enabled = false),
        Box::new(|s| s.tracing.enabled = true),
        Box::new(|s| {
            s.tracing.semantics = Semantics::Python;
            s.tracing.sample_rate = 1.0;
            s.batch.max_queue_size = 64;
            s.batch.max_export_batch_size = 64;
        }),
    ];
    let counters = &session.record.counters;
    for change in &changes {
        std::thread::sleep(Duration::from_millis(400));
        change(&mut settings);
        session
            .pipeline
            .reconfigure(&settings)
            .expect("reconfigure");
        if !settings.tracing.enabled {
            // Requests that began before the switch still end their spans; after that,
            // tracing off makes no spans at all.
            wait_until("the spans begun before the switch to end", PATIENCE, || {
                counters.open_spans.load(Relaxed) == 0
            });
            let before = counters.created.load(Relaxed);
            std::thread::sleep(Duration::from_millis(200));
            assert_eq!(
                counters.created.load(Relaxed),
                before,
                "tracing off makes no spans"
            );
            assert!(session.pipeline.tracer().is_none());
        }
    }
    traffic.wait();
    session.pipeline.shutdown();
    let report = session.finish(&settings);
    let spans = report.spans.counts;
    assert_accounted(&spans);
    assert_eq!(
        spans.dropped_after_shutdown, 0,
        "no span ended on a shut-down processor"
    );
    assert_eq!(spans.queued, 0);
    assert_eq!(spans.received, spans.exported, "healthy backend");
    assert!(
        spans.not_sampled > 0,
        "the 0.1 sample rate was applied live"
    );
    let generations: std::collections::BTreeSet<u64> =
        report.exports.iter().map(|e| e.generation).collect();
    assert!(generations.len() >= 4, "{generations:?}");
    assert_eq!(
        report.markers.len(),
        changes.len() + 1,
        "{:?}",
        report.markers
    );
}
