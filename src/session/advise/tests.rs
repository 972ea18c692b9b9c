//! The advisor against the simulator itself: what it recommends loses nothing, the value
//! next to it does, and a shutdown's options are each backed by their runs.

use super::*;
use crate::sim::{TEST_COSTS as COSTS, test_settings as settings};

#[test]
fn the_recommended_queue_drops_nothing_and_one_less_drops() {
    let base = settings(&[
        ("workload.duration_s", "3"),
        ("workload.rate_per_s", "200"),
        ("collector.latency_ms", "500"),
        ("batch.max_queue_size", "64"),
        ("batch.max_export_batch_size", "32"),
    ]);
    let advisor = Advisor::new(&base, COSTS, 3).unwrap();
    let advice = advisor.run().unwrap();
    assert!(advice.baseline.worst.dropped_queue_full > 0);
    let q: u64 = advice.queue.found.as_deref().unwrap().parse().unwrap();
    assert!(q > 64, "{q}");
    let at = |q: u64| {
        advisor
            .probe_on(&base, &[("batch.max_queue_size", q.to_string())])
            .unwrap()
            .worst
    };
    assert_eq!(at(q).dropped_queue_full, 0);
    assert!(at(q - 1).dropped_queue_full > 0);
    // The search's own probe of q is the one it cites, with every seed's run.
    let cited = advice.queue.chosen().unwrap();
    assert_eq!(cited.runs.len(), 3 * COST_SCALES.len());
    assert_eq!(cited.worst.dropped_queue_full, 0);
}

#[test]
fn a_killed_shutdown_gets_options_and_cancel_stops_it() {
    let base = settings(&[
        ("workload.inference_ms", "8000"),
        ("workload.rate_per_s", "2"),
        ("workload.duration_s", "12"),
        ("shutdown.waiting", "serve"),
        ("shutdown.at_s", "9"),
        ("batch.schedule_delay_ms", "30000"),
    ]);
    let advice = Advisor::new(&base, COSTS, 2).unwrap().run().unwrap();
    let shutdown = &advice.shutdown;
    assert!(!shutdown.assumed && shutdown.baseline.worst.killed);
    assert!(shutdown.baseline.worst.lost_at_kill > 0);
    let whats: Vec<&str> = shutdown.options.iter().map(|o| o.what).collect();
    assert_eq!(
        whats,
        [
            "lower schedule_delay_ms",
            "handle_exit = cancel",
            "shorter exporter timeout_ms",
            "lower sample_rate"
        ]
    );
    let cancel = &shutdown.options[1];
    assert!(cancel.stops_it());
    assert_eq!(cancel.probe().unwrap().worst.lost_at_kill, 0);
    // Whatever is cheapest stops the losses, by its own runs.
    let cheapest = shutdown.cheapest().unwrap();
    assert_eq!(cheapest.probe().unwrap().worst.lost_at_kill, 0);
    for option in &shutdown.options {
        assert!(!option.search.probes.is_empty(), "{}", option.what);
    }
}
