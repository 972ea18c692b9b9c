//! The simulator on its own: the accounting identity, each rule book's drop, and the
//! shutdown's verdict, on scenarios small enough to reason about.

use super::*;
use super::{TEST_COSTS as COSTS, test_settings as settings};
use crate::config::HandleExit;

fn assert_identity(o: &SimOutcome) {
    let s = &o.spans;
    assert_eq!(
        s.created,
        s.not_sampled
            + s.exported
            + s.dropped_queue_full
            + s.dropped_after_shutdown
            + s.export_failed
            + s.lost_at_kill
            + s.queued,
        "{s:?}"
    );
}

#[test]
fn a_healthy_run_exports_every_span_and_the_same_seed_gives_the_same_run() {
    let s = settings(&[("workload.duration_s", "3"), ("workload.rate_per_s", "40")]);
    let a = run(&s, &COSTS).unwrap();
    assert_identity(&a);
    assert!(a.spans.created > 0);
    assert_eq!(a.spans.exported, a.spans.created);
    assert_eq!(a.spans.received, a.spans.exported);
    let b = run(&s, &COSTS).unwrap();
    assert_eq!(format!("{:?}", a.spans), format!("{:?}", b.spans));
}

#[test]
fn a_full_queue_drops_in_every_rule_book() {
    for semantics in ["python", "rust", "js"] {
        let s = settings(&[
            ("tracing.semantics", semantics),
            ("batch.max_queue_size", "64"),
            ("batch.max_export_batch_size", "32"),
            ("collector.latency_ms", "500"),
            ("workload.rate_per_s", "200"),
            ("workload.duration_s", "3"),
        ]);
        let o = run(&s, &COSTS).unwrap();
        assert_identity(&o);
        assert!(o.spans.dropped_queue_full > 0, "{semantics}: {:?}", o.spans);
        let (oldest, newest) = (o.spans.dropped_oldest, o.spans.dropped_newest);
        match semantics {
            "python" => assert!(oldest > 0 && newest == 0),
            _ => assert!(newest > 0 && oldest == 0),
        }
        assert!(o.peak_queue <= 64);
    }
}

#[test]
fn an_outage_fails_every_export_and_sampling_halves_the_traced_spans() {
    let s = settings(&[("collector.outage", "true"), ("workload.duration_s", "2")]);
    let o = run(&s, &COSTS).unwrap();
    assert_identity(&o);
    assert_eq!(o.spans.exported, 0);
    assert_eq!(o.spans.export_failed, o.spans.created);
    let s = settings(&[
        ("tracing.sample_rate", "0.5"),
        ("workload.rate_per_s", "400"),
    ]);
    let o = run(&s, &COSTS).unwrap();
    let share = o.spans.not_sampled as f64 / o.spans.created as f64;
    assert!((0.4..0.6).contains(&share), "{share}");
}

#[test]
fn long_requests_are_killed_unless_handle_exit_cancels_them() {
    let mut s = settings(&[
        ("workload.inference_ms", "8000"),
        ("workload.rate_per_s", "2"),
        ("workload.duration_s", "12"),
        ("shutdown.waiting", "serve"),
        ("batch.schedule_delay_ms", "30000"),
    ]);
    s.shutdown.at_s = Some(9.0);
    let killed = run(&s, &COSTS).unwrap();
    assert_identity(&killed);
    assert!(killed.killed);
    assert!(killed.spans.lost_at_kill > 0, "{:?}", killed.spans);
    let r = killed.shutdown.as_ref().unwrap();
    assert_eq!(
        r.lost_at_kill.queued + r.lost_at_kill.in_flight_export,
        killed.spans.lost_at_kill
    );
    s.shutdown.handle_exit = HandleExit::Cancel;
    let saved = run(&s, &COSTS).unwrap();
    assert_identity(&saved);
    assert!(!saved.killed, "{:?}", saved.shutdown);
    assert_eq!(saved.spans.lost_at_kill, 0);
    assert!(saved.requests.cancelled > 0);
}

/// Four batches queued at SIGTERM and a backend slower than the grace allows for one at a
/// time: js sends them at once and exits; python sends them one after another and is
/// killed before the last.
#[test]
fn js_flushes_four_batches_in_parallel_where_python_is_killed() {
    let run_with = |semantics| {
        let mut s = settings(&[
            ("tracing.semantics", semantics),
            ("collector.latency_ms", "1500"),
            ("workload.rate_per_s", "300"),
            ("workload.duration_s", "12"),
            ("workload.inference_ms", "1"),
            ("workload.upload_ms", "1"),
            ("shutdown.grace_ms", "5000"),
        ]);
        s.shutdown.at_s = Some(5.0);
        let o = run(&s, &COSTS).unwrap();
        assert_identity(&o);
        o
    };
    let js = run_with("js");
    assert!(!js.killed, "{:?}", js.shutdown);
    assert_eq!(js.spans.lost_at_kill, 0);
    assert!(js.spans.dropped_newest > 0, "{:?}", js.spans);
    let python = run_with("python");
    assert!(python.killed, "{:?}", python.shutdown);
    assert!(python.spans.lost_at_kill > 0, "{:?}", python.spans);
}

/// Model times as a calibration would hold them for `workload.device = cpu`: steps of 8
/// or 12 ms (10 on average), uploads of 1 ms.
fn model_costs() -> Calibration {
    Calibration {
        model: Some(crate::record::report::ModelTimes {
            source: "test".into(),
            device_choice: crate::config::DeviceChoice::Cpu,
            device: crate::record::DeviceInfo {
                backend: "flex".into(),
                adapter: "test".into(),
                device_type: "CPU".into(),
                fallback_reason: None,
            },
            warm_up_s: 0.0,
            requests: 2,
            steps_per_request: 2,
            step_ms: vec![8.0, 12.0, 12.0, 8.0],
            upload_ms: vec![1.0, 1.0],
        }),
        ..COSTS
    }
}

#[test]
fn the_model_workload_needs_the_models_times_for_its_device() {
    let s = settings(&[("workload.kind", "model"), ("workload.device", "cpu")]);
    let e = run(&s, &COSTS).unwrap_err().to_string();
    assert!(e.starts_with("workload.kind = model"), "{e}");
    let auto = settings(&[("workload.kind", "model"), ("workload.device", "auto")]);
    let e = run(&auto, &model_costs()).unwrap_err().to_string();
    assert!(e.starts_with("workload.device = auto"), "{e}");
    assert!(run(&s, &model_costs()).is_ok());
}

/// One model serves one request at a time whatever the slots: 4 steps of 10 ms on
/// average make 40 ms a request, so 5 s of requests arriving faster than that serve
/// about 125; each completed one makes the model's three spans (no `extra` spans), and
/// the three other slots' requests wait for the model, their service time with them.
#[test]
fn the_model_serves_one_request_at_a_time_at_its_measured_steps() {
    let s = settings(&[
        ("workload.kind", "model"),
        ("workload.device", "cpu"),
        ("workload.steps", "4"),
        ("workload.concurrency", "4"),
        ("workload.max_waiting", "0"),
        ("workload.rate_per_s", "100"),
        ("workload.extra_spans", "3"),
        ("workload.duration_s", "5"),
    ]);
    let costs = model_costs();
    let o = run(&s, &costs).unwrap();
    assert_identity(&o);
    let r = &o.requests;
    assert!((110..=140).contains(&r.completed), "{r:?}");
    assert_eq!(o.spans.created, 3 * r.completed, "{:?}", o.spans);
    let p50 = o.requests.service_ms.tracing_on.p50.unwrap_or(0.0);
    assert!(
        p50 > 100.0,
        "a request waits for the model in its slot: {p50}"
    );
    let again = run(&s, &costs).unwrap();
    assert_eq!(
        format!("{o:?}"),
        format!("{again:?}"),
        "the draws are seeded"
    );
}

/// `handle_exit = cancel` with the model: the request waiting for the model stops at
/// once, the one running stops at its next step; both end their `inference` and root
/// (a request that takes a slot after the cancel makes no span at all).
#[test]
fn a_cancel_stops_the_models_requests_at_a_step_or_while_they_wait() {
    let s = settings(&[
        ("workload.kind", "model"),
        ("workload.device", "cpu"),
        ("workload.steps", "20"),
        ("workload.concurrency", "3"),
        ("workload.max_waiting", "0"),
        ("workload.rate_per_s", "50"),
        ("workload.duration_s", "5"),
        ("shutdown.at_s", "2.01"),
        ("shutdown.handle_exit", "cancel"),
        ("shutdown.grace_ms", "3000"),
    ]);
    let o = run(&s, &model_costs()).unwrap();
    assert_identity(&o);
    let r = &o.requests;
    let cancelled_spans = o.spans.created - 3 * r.completed;
    assert_eq!(cancelled_spans % 2, 0, "{:?} {r:?}", o.spans);
    assert!(cancelled_spans >= 2 * 3, "all three slots' requests: {r:?}");
    assert!(cancelled_spans <= 2 * r.cancelled, "{r:?}");
    assert!(!o.killed);
}

/// The stock processor runs the rust worker by its own book, whose decisions are rust's:
/// with a burst that overflows the queue and a shutdown, the same spans are exported,
/// dropped and lost.
#[test]
fn the_stock_processor_loses_what_the_rust_profile_loses() {
    let run_with = |semantics| {
        let mut s = settings(&[
            ("tracing.semantics", semantics),
            ("batch.max_queue_size", "64"),
            ("batch.max_export_batch_size", "32"),
            ("collector.latency_ms", "500"),
            ("workload.rate_per_s", "200"),
            ("workload.duration_s", "3"),
            ("shutdown.grace_ms", "700"),
        ]);
        s.shutdown.at_s = Some(2.0);
        let o = run(&s, &COSTS).unwrap();
        assert_identity(&o);
        o
    };
    let (sdk, rust) = (run_with("sdk"), run_with("rust"));
    assert!(sdk.spans.dropped_newest > 0, "{:?}", sdk.spans);
    assert_eq!(format!("{:?}", sdk.spans), format!("{:?}", rust.spans));
    assert_eq!(sdk.killed, rust.killed);
}

/// A flush in every request: the request waits for its own spans' export, so its latency
/// grows by at least the backend's latency, and batches leave per request, not per
/// schedule delay; nothing is left behind.
#[test]
fn a_flush_in_every_request_costs_latency_and_exports_in_every_profile() {
    for semantics in ["python", "rust", "sdk", "js"] {
        let run_with = |flush: &str| {
            let s = settings(&[
                ("tracing.semantics", semantics),
                ("workload.flush_every_request", flush),
                ("collector.latency_ms", "20"),
                ("workload.rate_per_s", "20"),
                ("workload.burst_every_s", "0"),
                ("workload.duration_s", "3"),
            ]);
            let o = run(&s, &COSTS).unwrap();
            assert_identity(&o);
            o
        };
        let (plain, flushed) = (run_with("false"), run_with("true"));
        let p50 = |o: &SimOutcome| o.requests.latency_ms.p50.unwrap_or(0.0);
        assert!(
            p50(&flushed) >= p50(&plain) + 20.0,
            "{semantics}: {} vs {}",
            p50(&flushed),
            p50(&plain)
        );
        // Nearly one export per request (a flush that waited behind another may find its
        // spans already sent), against a few on the schedule delay without.
        let requests = flushed.requests.completed;
        assert!(flushed.http_attempts * 4 >= requests * 3, "{semantics}");
        assert!(plain.http_attempts < requests / 2, "{semantics}");
        assert_eq!(flushed.spans.exported, flushed.spans.created, "{semantics}");
    }
}

/// Behind a black hole a request's flush waits as its SDK waits: rust and the stock
/// processor give up after their fixed 5 s, python until its export has given up.
#[test]
fn a_flush_in_a_request_waits_as_long_as_its_sdk_waits() {
    let latency = |semantics| {
        let s = settings(&[
            ("tracing.semantics", semantics),
            ("workload.flush_every_request", "true"),
            ("collector.black_hole", "true"),
            ("exporter.timeout_ms", "8000"),
            ("workload.rate_per_s", "2"),
            ("workload.duration_s", "2"),
        ]);
        let o = run(&s, &COSTS).unwrap();
        assert_identity(&o);
        o.requests.latency_ms.max.unwrap_or(0.0)
    };
    for semantics in ["rust", "sdk"] {
        let ms = latency(semantics);
        // The histogram's buckets are 1% wide.
        assert!((4950.0..5150.0).contains(&ms), "{semantics}: {ms}");
    }
    let ms = latency("python");
    assert!((7900.0..8200.0).contains(&ms), "python: {ms}");
}
