//! The window, driven as a person would: egui_kittest clicks, drags sliders and presses
//! Shutdown on a headless harness over a live session (real SDK, exporter, collector),
//! and reads the answers from what the window shows. The image snapshots render a FIXED
//! finished run through wgpu, so they are the same on every run.

mod common;
mod window;

use std::sync::Arc;

use eframe::egui::accesskit::Role;
use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::{Harness, SnapshotOptions};

use gracetrace::collector::{CollectorStats, StoredSpan, StoredTrace};
use gracetrace::config::{HandleExit, Platform, Settings, WorkloadKind};
use gracetrace::record::KillLosses;
use gracetrace::record::ShutdownReport;
use gracetrace::record::compare::CompareRow;
use gracetrace::record::load::{self as load_record, LoadLatency, LoadRequest, LoadSection};
use gracetrace::record::load_timeline::Timeline;
use gracetrace::record::probe::{
    PredictedSpans, Prediction, PredictionInputs, ProbeReport, ProbeSample, ProbeSection, Sdk,
};
use gracetrace::record::report::{DeviceReport, Report};
use gracetrace::record::{ExportEvent, LastImage, Marker, Outcome, Record, Sample};
use gracetrace::session::live::{RunnerState, Snapshot};
use gracetrace::session::whatif::{self, SweepResult};
use gracetrace::session::your_app::{AppPhase, AppStart, AppView, LogLine, Stream};
use gracetrace::session::your_app_compare::{CompareView, ComparedRun};
use gracetrace::ui::GraceApp;
use gracetrace::ui::whatif as whatif_form;
use gracetrace::ui::window::Centre;
use gracetrace::workload::model::DeviceChoice;

use common::{PATIENCE, python_ready, seed_app};
use window::{SIZE, live, running, swept, wait_for, wait_for_snapshot, wait_for_sweep};

/// Quick traffic: 200 requests/s of 3 spans, short inference, exports every 200 ms.
fn quick() -> Settings {
    let mut s = Settings {
        name: "ui-test".into(),
        ..Settings::default()
    };
    s.workload.rate_per_s = 200.0;
    s.workload.inference_ms = 2.0;
    s.workload.steps = 2;
    s.workload.upload_ms = 0.0;
    s.workload.concurrency = 16;
    s.batch.schedule_delay_ms = 200;
    s.shutdown.platform = Platform::Lambda;
    s.shutdown.grace_ms = 2_000;
    s
}

fn created_per_s(h: &Harness<'_, GraceApp>) -> f64 {
    h.state().snapshot().report.rates.created_per_s
}

#[test]
fn tracing_off_takes_the_span_rate_to_zero() {
    let mut h = live(quick());
    wait_for(&mut h, "traffic to make spans", |h| {
        created_per_s(h) > 100.0
    });
    assert!(created_per_s(&h) > 100.0, "traffic makes spans");
    h.get_by_label("tracing on").click_accesskit();
    h.step();
    wait_for(&mut h, "the span rate to reach zero", |h| {
        created_per_s(h) == 0.0
    });
    assert_eq!(created_per_s(&h), 0.0, "no provider, no spans");
    // The window says so, in the rates panel.
    assert!(h.query_all_by_label("created/s").next().is_some());
}

#[test]
fn sample_rate_slider_sets_the_sampled_fraction() {
    let mut h = live(quick());
    wait_for_snapshot(&mut h, "the session to run", running);
    h.get_by_role_and_label(Role::Slider, "sample rate")
        .set_value_accesskit(0.1);
    h.step();
    assert!((h.state().edited.tracing.sample_rate - 0.1).abs() < 1e-9);
    wait_for_snapshot(&mut h, "the engine to apply the rate", |s| {
        (s.report.settings.tracing.sample_rate - 0.1).abs() < 1e-9
    });
    // Counted from the snapshot that shows the new rate: the few requests in flight at the
    // change (2 ms each) have ended by then.
    let before = h.state().snapshot().report.spans.counts;
    // About 1,800 spans at 200 requests/s of 3 spans; the statistics need the count, not
    // the seconds.
    wait_for_snapshot(&mut h, "1,500 spans at the new rate", |s| {
        s.report.spans.counts.created >= before.created + 1_500
    });
    let after = h.state().snapshot().report.spans.counts;
    let created = (after.created - before.created) as f64;
    let sampled = (after.sampled - before.sampled) as f64;
    let fraction = sampled / created;
    assert!(created > 500.0, "enough spans to judge: {created}");
    assert!(
        (0.04..=0.18).contains(&fraction),
        "sampled fraction {fraction} should be near 0.1"
    );
}

#[test]
fn shrinking_the_queue_under_a_burst_drops_spans() {
    let mut s = quick();
    s.workload.rate_per_s = 20.0;
    s.workload.burst_every_s = 0.5;
    s.workload.burst_size = 200;
    s.workload.concurrency = 64;
    s.collector.latency_ms = 300; // slow exports, so a burst has to wait in the queue
    let mut h = live(s);
    wait_for_snapshot(&mut h, "two bursts' spans", |s| {
        s.report.spans.counts.created >= 1_200
    });
    assert_eq!(
        h.state().snapshot().report.spans.counts.dropped_queue_full,
        0,
        "2048 holds a 600-span burst"
    );
    h.get_by_role_and_label(Role::Slider, "max_queue_size")
        .set_value_accesskit(64.0);
    h.step();
    let app = h.state();
    assert_eq!(app.edited.batch.max_queue_size, 64);
    assert_eq!(
        app.edited.batch.max_export_batch_size, 64,
        "the batch follows the queue down instead of becoming invalid"
    );
    wait_for_snapshot(&mut h, "drops in the shrunken queue", |s| {
        s.report.spans.counts.dropped_queue_full > 0
    });
    // The 10 Hz series catches up and the window redraws.
    wait_for(&mut h, "the drops in the window", |h| {
        h.query_by_label_contains("dropped (queue full) in view")
            .is_some()
    });
    let report = &h.state().snapshot().report;
    assert!(report.spans.counts.dropped_queue_full > 0, "drops appear");
    assert_eq!(
        report.settings.batch.max_queue_size, 64,
        "the engine applied it"
    );
    assert!(
        h.query_by_label_contains("dropped (queue full) in view")
            .is_some()
    );
}

#[test]
fn flushing_in_every_request_shows_in_the_serving_time() {
    let mut s = quick();
    s.workload.rate_per_s = 50.0;
    s.collector.latency_ms = 80; // every export takes at least 80 ms
    let mut h = live(s);
    wait_for_snapshot(&mut h, "50 requests served", |s| {
        s.report.requests.service_ms.tracing_on.count >= 50
    });
    let before = h.state().snapshot().report.requests.service_ms.tracing_on;
    let p99_before = before.p99.expect("requests served");
    // No flush: inference only. How long that takes depends on the machine's load, so the
    // figure is printed, not bounded.
    eprintln!("serving time without the flush: {before:?}");
    assert!(p99_before.is_finite() && p99_before > 0.0, "{before:?}");
    h.get_by_label("flush in every request (anti-pattern)")
        .click_accesskit();
    h.step();
    assert!(h.state().edited.workload.flush_every_request);
    // Each request now waits for an export (80 ms or more), which the p99 shows.
    wait_for_snapshot(&mut h, "the flush's wait in the serving time", |s| {
        let served = s.report.requests.service_ms.tracing_on;
        served.count >= before.count + 25 && served.p99.is_some_and(|p99| p99 >= 80.0)
    });
    let after = h.state().snapshot().report.requests.service_ms.tracing_on;
    eprintln!("serving time with the flush: {after:?}");
    assert!(
        after.p99.is_some_and(|p99| p99 >= 80.0),
        "the flush's wait shows: {before:?} -> {after:?}"
    );
    assert!(h.query_by_label("serving time").is_some());
    assert_eq!(h.state().snapshot().report.spans.unaccounted, 0);
}

/// `quick` slowed to what the model serves: 4 requests/s of 4 steps, on burn's CPU backend.
fn for_the_model() -> Settings {
    let mut s = quick();
    s.workload.rate_per_s = 4.0;
    s.workload.steps = 4;
    s.workload.device = DeviceChoice::Cpu;
    s
}

/// Real inference in the window: the model serves the traffic (on burn's CPU backend, so
/// the test needs no GPU and no shader warm-up), and the window shows the device, the
/// picture and the trace id the request returned.
#[test]
fn choosing_the_model_shows_the_device_and_the_picture_with_its_trace_id() {
    let mut h = live(for_the_model());
    wait_for_snapshot(&mut h, "the session to run", running);
    let inference_enabled = |h: &Harness<'_, GraceApp>| {
        !h.get_by_role_and_label(Role::Slider, "inference")
            .accesskit_node()
            .is_disabled()
    };
    assert!(inference_enabled(&h), "the synthetic workload's sleep");
    h.get_by_label("model (real inference)").click_accesskit();
    h.step();
    assert_eq!(h.state().edited.workload.kind, WorkloadKind::Model);
    assert!(
        !inference_enabled(&h),
        "the model takes as long as it takes: the slider would do nothing"
    );
    wait_for_snapshot(&mut h, "a picture from the model", |s| {
        s.last_image.is_some()
    });
    h.step();
    let snapshot = h.state().snapshot();
    assert_eq!(snapshot.report.device.workload, "model");
    assert_eq!(snapshot.report.device.backend.as_deref(), Some("flex"));
    let image = snapshot.last_image.clone().expect("a picture within 30 s");
    assert_eq!(image.trace_id.len(), 32);
    assert!(image.trace_id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(image.trace_id, "0".repeat(32), "tracing is on");
    assert!(
        h.query_by_label(&format!("trace {}", image.trace_id))
            .is_some()
    );
    assert_eq!(snapshot.report.spans.unaccounted, 0);
}

fn press_shutdown(h: &mut Harness<'_, GraceApp>) -> Snapshot {
    h.get_by_label("Shutdown (SIGTERM)").click_accesskit();
    h.step();
    wait_for_snapshot(h, "the shutdown to start", |s| {
        s.phase != RunnerState::Running
    });
    assert!(matches!(
        h.state().snapshot().phase,
        RunnerState::ShuttingDown { .. } | RunnerState::Ended
    ));
    wait_for_snapshot(h, "the shutdown to end", |s| s.phase == RunnerState::Ended);
    let ended = h.state().snapshot();
    wait_for(h, "one more snapshot, counters at rest", |h| {
        !Arc::ptr_eq(&ended, &h.state().snapshot())
    });
    (*h.state().snapshot()).clone()
}

fn marker(s: &Snapshot, what: &str) -> bool {
    s.report.markers.iter().any(|m| m.what == what)
}

#[test]
fn shutdown_exits_within_grace_and_the_counts_add_up() {
    let mut s = quick();
    s.shutdown.handle_exit = HandleExit::Cancel;
    let mut h = live(s);
    wait_for_snapshot(&mut h, "traffic to make spans", |s| {
        s.report.spans.counts.created >= 100
    });
    let done = press_shutdown(&mut h);
    assert_eq!(done.phase, RunnerState::Ended);
    let shutdown = done.last_shutdown.as_ref().expect("a shutdown report");
    for step in ["sigterm", "handle_exit", "flush_start", "flush_end", "exit"] {
        assert!(marker(&done, step), "timeline has {step}");
    }
    assert!(!shutdown.killed, "{}", shutdown.verdict);
    assert_eq!(
        done.report.spans.unaccounted, 0,
        "created = the sum of the rest"
    );
    assert_eq!(
        done.report.spans.counts.queued, 0,
        "the flush emptied the queue"
    );
    assert!(
        h.query_by_label(&shutdown.verdict).is_some(),
        "verdict shown"
    );
    assert!(h.query_by_label_contains("the identity closes").is_some());

    h.get_by_label("Start new runner").click_accesskit();
    h.step();
    wait_for_snapshot(&mut h, "runner 2 to run", |s| {
        s.phase == RunnerState::Running && s.runner_id == 2
    });
    assert_eq!(h.state().snapshot().runner_id, 2);
}

#[test]
fn shutdown_against_a_slow_backend_ends_in_sigkill_with_losses_in_red() {
    let mut s = quick();
    // Connections refused: python's exporter retries one batch for up to 10 s and
    // force_flush waits behind it, past Lambda's 2 s grace.
    s.collector.outage = true;
    let mut h = live(s);
    wait_for_snapshot(&mut h, "traffic to make spans", |s| {
        s.report.spans.counts.created >= 100
    });
    let done = press_shutdown(&mut h);
    let shutdown = done.last_shutdown.as_ref().expect("a shutdown report");
    assert!(shutdown.killed, "{}", shutdown.verdict);
    assert!(marker(&done, "sigterm") && marker(&done, "sigkill"));
    let c = done.report.spans.counts;
    assert!(c.lost_at_kill > 0, "spans lost at SIGKILL: {c:?}");
    assert_eq!(done.report.spans.unaccounted, 0, "{c:?}");
    assert!(h.query_by_label_contains("Lost at SIGKILL").is_some());
}

// ---- image snapshots of a fixed, finished run ----

/// A made-up but self-consistent run: 20 s of traffic at 1,000 spans/s, a burst that
/// overflows the queue at 6 s, SIGTERM at 15 s on Lambda (2 s), a flush cut off by SIGKILL.
fn finished_run() -> Snapshot {
    let mut settings = quick();
    settings.name = "fixture".into();
    settings.workload.kind = WorkloadKind::Model;
    settings.batch.schedule_delay_ms = 1000;
    let mut report = Report::build(&Record::new(), &settings, None);
    report.device = DeviceReport {
        workload: "model",
        name: "llvmpipe (LLVM 15.0.6, 256 bits)".into(),
        backend: Some("wgpu/Vulkan".into()),
        device_type: Some("software (CPU)".into()),
        fallback_reason: Some("no GPU: Mesa's software Vulkan runs on the CPU".into()),
        warm_up_fraction: Some(1.0),
        warm_up_stage: Some("ready".into()),
        warm_up_s: Some(31.5),
        error: None,
    };
    let mut series = Vec::new();
    let (mut created, mut exported, mut dropped) = (0u64, 0u64, 0u64);
    for i in 0..=170 {
        let t_ms = i as f64 * 100.0;
        created += 100;
        if (60..64).contains(&i) {
            created += 800;
            dropped += 300;
        }
        let queued = if i >= 150 {
            900
        } else {
            (i % 10) * 100 + if (60..70).contains(&i) { 1600 } else { 0 }
        };
        if i < 150 {
            exported = created - dropped - queued as u64;
        }
        series.push(Sample {
            t_ms,
            created,
            queued: queued as i64,
            exported,
            dropped,
            received: exported,
            requests_completed: created / 3,
        });
    }
    report.series = series;
    report.exports = (0..17)
        .map(|i| ExportEvent {
            id: i,
            generation: 1,
            start_ms: i as f64 * 1000.0 + 950.0,
            end_ms: if i < 15 {
                Some(i as f64 * 1000.0 + 1040.0)
            } else {
                None
            },
            spans: if (6..8).contains(&i) { 512 } else { 100 },
            bytes: 40_000,
            attempts: 1,
            last_status: (i < 15).then_some(200),
            outcome: if i < 15 {
                Outcome::Ok
            } else {
                Outcome::LostAtKill
            },
            error: None,
            request_ids: Vec::new(),
        })
        .map(|mut e| {
            if let Some(end) = e.end_ms {
                e.end_ms = Some(end.min(17_000.0));
            }
            if e.outcome == Outcome::LostAtKill {
                e.end_ms = Some(17_000.0);
            }
            e
        })
        .collect();
    report.markers = [
        (15_000.0, "sigterm"),
        (15_001.0, "handle_exit"),
        (15_400.0, "drain_end"),
        (15_401.0, "teardown"),
        (15_402.0, "flush_start"),
        (17_000.0, "sigkill"),
    ]
    .into_iter()
    .map(|(at_ms, what)| Marker {
        at_ms,
        what: what.into(),
    })
    .collect();
    report.duration_ms = 17_000.0;
    let counts = &mut report.spans.counts;
    counts.created = created;
    counts.sampled = created;
    counts.exported = exported;
    counts.received = exported;
    counts.dropped_queue_full = dropped;
    counts.dropped_oldest = dropped;
    counts.lost_at_kill = created - exported - dropped;
    report.spans.unaccounted = counts.unaccounted();
    report.requests.sent = created / 3;
    report.requests.completed = created / 3;
    report.requests.latency_ms.count = created / 3;
    report.requests.latency_ms.p50 = Some(9.4);
    report.requests.latency_ms.p99 = Some(17.8);
    report.collector = Some(CollectorStats {
        spans_received: exported,
        bytes_received: exported * 390,
        ..CollectorStats::default()
    });
    // As `Report::build` computes them, from the fixture's own series and counts.
    report.rates = gracetrace::record::rates::RateReport::of(
        &report.series,
        &report.spans.counts,
        report.collector.as_ref(),
    );
    let lost = report.spans.counts.lost_at_kill;
    let shutdown = ShutdownReport {
        platform: "lambda".into(),
        grace_ms: 2000,
        handle_exit: "none".into(),
        sigterm_ms: 15_000.0,
        handle_exit_ms: 15_001.0,
        drain_end_ms: Some(15_400.0),
        teardown_start_ms: Some(15_401.0),
        flush_start_ms: Some(15_402.0),
        sigkill_ms: Some(17_000.0),
        killed: true,
        lost_at_kill: KillLosses {
            queued: lost - 200,
            in_flight_export: 200,
            in_flight_but_delivered: 0,
        },
        verdict: format!(
            "{lost} spans lost at SIGKILL: {} queued, 200 in an export in flight",
            lost - 200
        ),
        ..ShutdownReport::default()
    };
    report.shutdown = Some(shutdown.clone());
    let span = |id: &str, parent: Option<&str>, name: &str, from_ms: u64, to_ms: u64| StoredSpan {
        span_id: id.into(),
        parent_span_id: parent.map(Into::into),
        name: name.into(),
        start_unix_nano: from_ms * 1_000_000,
        end_unix_nano: to_ms * 1_000_000,
        ..StoredSpan::default()
    };
    Snapshot {
        report,
        phase: RunnerState::Ended,
        last_shutdown: Some(shutdown),
        runner_id: 1,
        collector_addr: Some("127.0.0.1:4318".into()),
        recent_trace: Some(StoredTrace {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            spans: vec![
                span("a", None, "text-to-image", 0, 62),
                span("b", Some("a"), "inference", 1, 52),
                span("c", Some("a"), "upload", 53, 60),
            ],
        }),
        file_message: None,
        opened: 0,
        rejected: 0,
        last_error: None,
        last_image: Some(fixture_image()),
        what_if: Default::default(),
        served_by_app: false,
        app: None,
        compare: None,
    }
}

/// A 32x32 ring, standing in for a generated glyph.
fn fixture_image() -> LastImage {
    let mut rgba = Vec::with_capacity(32 * 32 * 4);
    for y in 0..32 {
        for x in 0..32 {
            let r2 = (x - 16i32).pow(2) + (y - 16i32).pow(2);
            let on = (64..=144).contains(&r2);
            rgba.extend_from_slice(if on {
                &[240, 200, 60, 255]
            } else {
                &[20, 30, 60, 255]
            });
        }
    }
    LastImage {
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        prompt: "O".into(),
        width: 32,
        height: 32,
        rgba,
        png: Vec::new(),
    }
}

fn fixed_window(app: GraceApp) -> Harness<'static, GraceApp> {
    fixed_window_of(app, SIZE)
}

fn fixed_window_of(app: GraceApp, size: [f32; 2]) -> Harness<'static, GraceApp> {
    let mut h = Harness::builder()
        .with_size(size)
        .wgpu()
        .build_ui_state(|ui, app: &mut GraceApp| app.show(ui), app);
    h.run();
    h
}

/// Fonts and plots are drawn by llvmpipe; allow a few pixels of rasteriser drift.
fn snapshot_options() -> SnapshotOptions {
    SnapshotOptions::new().threshold(2.0).max_failed_pixels(200)
}

#[test]
fn snapshot_of_a_finished_run_killed_at_sigkill() {
    let mut app = GraceApp::fixed(finished_run());
    app.show_frame_time = false;
    let mut h = fixed_window(app);
    h.snapshot_options("finished_run_sigkill", &snapshot_options());
}

/// Zoomed in on the grace period as in a trace viewer: every time plot shows the same
/// range, and "Follow live" goes back to following the data.
#[test]
fn zooming_pins_every_time_plot_until_follow_live() {
    let mut app = GraceApp::fixed(finished_run());
    app.show_frame_time = false;
    app.zoom.pinned = Some((14.5, 17.5));
    let mut h = fixed_window(app);
    h.snapshot_options("shutdown_zoomed", &snapshot_options());
    assert!(h.query_by_label("Showing 14.5 s to 17.5 s.").is_some());
    h.get_by_label("Follow live").click_accesskit();
    h.run();
    assert_eq!(h.state().zoom.pinned, None);
}

/// The value a slider shows, as accessibility reads it.
fn slider_value(h: &Harness<'_, GraceApp>, label: &str) -> Option<f64> {
    h.get_by_role_and_label(Role::Slider, label)
        .accesskit_node()
        .numeric_value()
}

#[test]
fn an_opened_scenario_runs_and_shows_exactly_its_values() {
    // Values past the window's old slider ends (100,000, 5,000 ms, 100 steps), which it
    // used to clamp without a word.
    let dir = std::env::temp_dir().join(format!("gracetrace-ui-open-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("wide.toml");
    std::fs::write(
        &path,
        "name = \"wide\"\n[batch]\nmax_queue_size = 2000000\n\
         [workload]\nrate_per_s = 1.0\ninference_ms = 8000.0\nsteps = 400\n",
    )
    .expect("write the scenario");
    let mut h = live(quick());
    wait_for_snapshot(&mut h, "the session to run", running);
    h.get_by_label("file").focus();
    h.get_by_label("file")
        .type_text(&path.display().to_string());
    h.step();
    h.get_by_label("Open").click();
    wait_for_snapshot(&mut h, "the engine to open the scenario", |s| s.opened == 1);
    let snapshot = h.state().snapshot();
    let applied = &snapshot.report.settings;
    assert_eq!(snapshot.last_error, None);
    assert_eq!(applied.name, "wide");
    assert_eq!(applied.batch.max_queue_size, 2_000_000);
    assert_eq!(applied.workload.inference_ms, 8_000.0);
    assert_eq!(applied.workload.steps, 400);
    let edited = &h.state().edited;
    assert_eq!(edited.batch.max_queue_size, 2_000_000);
    assert_eq!(edited.workload.inference_ms, 8_000.0);
    assert_eq!(edited.workload.steps, 400);
    assert_eq!(slider_value(&h, "max_queue_size"), Some(2_000_000.0));
    assert_eq!(slider_value(&h, "inference"), Some(8_000.0));
    assert_eq!(slider_value(&h, "steps"), Some(400.0));
    // A few more frames: nothing drifts back to a slider's end.
    for _ in 0..5 {
        h.step();
    }
    assert_eq!(h.state().edited.batch.max_queue_size, 2_000_000);
    assert_eq!(h.state().edited.workload.steps, 400);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A change the engine refuses (here sent by another client, past the window's own
/// checks) leaves the settings in force on screen, with the reason next to the controls.
#[test]
fn a_refused_change_leaves_the_settings_in_force_on_screen() {
    let mut h = live(quick());
    wait_for_snapshot(&mut h, "the session to run", running);
    let in_force = h.state().snapshot().report.settings.clone();
    let mut refused = in_force.clone();
    refused.batch.max_export_batch_size = refused.batch.max_queue_size + 1;
    h.state()
        .engine()
        .expect("a live window drives an engine")
        .send(gracetrace::session::live::Command::Apply(Box::new(refused)));
    wait_for_snapshot(&mut h, "the engine to refuse the change", |s| {
        s.rejected == 1
    });
    let snapshot = h.state().snapshot();
    assert_eq!(snapshot.report.settings, in_force, "nothing was applied");
    assert!(snapshot.last_error.is_some());
    assert_eq!(h.state().edited, in_force, "the controls show what runs");
    assert!(
        h.query_by_label_contains("not applied:").is_some(),
        "the reason is shown next to the controls"
    );
    for _ in 0..5 {
        h.step();
    }
    assert_eq!(h.state().edited, in_force, "and nothing drifts afterwards");
    assert!(h.query_by_label_contains("not applied:").is_some());
}

// ---- the What-if view ----

/// Bursts of 200 requests every 0.5 s against a slow backend: a small queue drops.
fn bursty() -> Settings {
    let mut s = quick();
    s.workload.rate_per_s = 20.0;
    s.workload.burst_every_s = 0.5;
    s.workload.burst_size = 200;
    s.workload.concurrency = 64;
    s.collector.latency_ms = 300;
    s
}

/// A live window on `bursty` traffic, running, with the What-if tab open.
fn what_if_on_bursty() -> Harness<'static, GraceApp> {
    let mut h = live(bursty());
    wait_for_snapshot(&mut h, "the session to run", running);
    h.get_by_label("What if (virtual time)").click_accesskit();
    h.step();
    h
}

/// After a what-if cell with queue 64 (on `bursty`) was applied: waits for the live
/// runner to take it (`taken` holds for its settings in force), checks that the batch
/// followed the queue down and the rest stayed, then waits for the sweep to run again on
/// the new settings by itself, and returns that sweep.
fn taken_and_swept_again(
    h: &mut Harness<'_, GraceApp>,
    what: &str,
    taken: impl Fn(&Settings) -> bool,
) -> Arc<SweepResult> {
    wait_for_snapshot(h, what, |s| taken(&s.report.settings));
    let applied = h.state().snapshot().report.settings.clone();
    assert_eq!(
        applied.batch.max_export_batch_size, 64,
        "the batch followed"
    );
    assert_eq!(applied.workload.burst_size, 200, "the rest stayed");
    wait_for_sweep(h, "the sweep again on the new settings", |s| {
        swept(s).is_some_and(|r| r.base == s.report.settings)
    });
    assert!(!h.state().snapshot().what_if.sweep.stale);
    swept(&h.state().snapshot()).expect("a sweep")
}

#[test]
fn what_if_sweeps_the_queue_in_virtual_time_and_a_cell_applies_live() {
    let mut h = what_if_on_bursty();
    assert_eq!(h.state().centre, Centre::WhatIf);
    // The range the person types: 16 to 4096, 9 values (geometric: it spans decades).
    let form = &mut h.state_mut().what_if.first;
    assert_eq!(form.key, "batch.max_queue_size");
    (form.from, form.to, form.steps) = (16.0, 4096.0, 9);
    h.get_by_label("Sweep").click_accesskit();
    h.step();
    wait_for_sweep(&mut h, "the sweep's results", |s| {
        swept(s).is_some_and(|r| r.points.len() == 9) && s.what_if.sweep.running.is_none()
    });
    let result = swept(&h.state().snapshot()).expect("a sweep");
    assert_eq!(h.state().snapshot().what_if.sweep.error, None);
    // The sweep ran on the engine's worker: the frames drawn meanwhile are printed (their
    // build time depends on the machine's load, so it is not bounded here).
    eprintln!(
        "frame build time (median, p99 ms) while sweeping: {:?}",
        h.state().frame_stats()
    );
    let values: Vec<&str> = result.points.iter().map(|p| p.value.as_str()).collect();
    assert_eq!(
        values,
        [
            "16", "32", "64", "128", "256", "512", "1024", "2048", "4096"
        ]
    );
    assert_eq!(
        result.current,
        Some(2048.0),
        "the setting in force is marked"
    );
    let (small, big) = (&result.points[0], &result.points[8]);
    assert!(
        small.dropped_queue_full > 0,
        "16 spans cannot hold a burst: {small:?}"
    );
    assert_eq!(big.dropped_queue_full, 0, "4096 holds it: {big:?}");
    assert!(small.created > 0 && small.lost >= small.dropped_queue_full);
    // The chart and its rows are drawn; no SIGTERM in a steady state, so no SIGKILL line.
    for label in ["lost in all", "lost/s", "Apply 16", "Apply 4096"] {
        assert!(h.query_by_label(label).is_some(), "{label} is shown");
    }
    assert!(h.query_by_label("lost at SIGKILL").is_none());
    assert!(small.steady.is_some_and(|s| s.dropped_per_s > 0.0));
    // Apply a cell: the live runner takes it.
    h.get_by_label("Apply 64").click_accesskit();
    h.step();
    assert_eq!(h.state().edited.batch.max_queue_size, 64);
    let again = taken_and_swept_again(&mut h, "the runner to take queue 64", |s| {
        s.batch.max_queue_size == 64
    });
    assert_eq!(again.current, Some(64.0), "now marking 64");
}

/// With the model serving (on burn's CPU backend, as above), What if sweeps in virtual time
/// at the model's measured step times, and says where they come from; a clicked cell
/// reaches the runner, which still serves with the model.
#[test]
fn what_if_sweeps_with_the_model_and_a_cell_applies_live() {
    let mut h = live(for_the_model());
    wait_for_snapshot(&mut h, "the session to run", running);
    h.get_by_label("model (real inference)").click_accesskit();
    h.step();
    wait_for_snapshot(&mut h, "the runner to serve with the model", |s| {
        s.report.settings.workload.kind == WorkloadKind::Model
    });
    h.get_by_label("What if (virtual time)").click_accesskit();
    h.step();
    let form = &mut h.state_mut().what_if.first;
    assert_eq!(form.key, "batch.max_queue_size");
    (form.from, form.to, form.steps) = (16.0, 4096.0, 3);
    h.get_by_label("Sweep").click_accesskit();
    h.step();
    wait_for_sweep(&mut h, "the sweep with the model", |s| {
        s.what_if.sweep.running.is_none() && (s.what_if.sweep.error.is_some() || swept(s).is_some())
    });
    let snapshot = h.state().snapshot();
    assert_eq!(snapshot.what_if.sweep.error, None);
    let result = swept(&snapshot).expect("a sweep");
    assert_eq!(result.base.workload.kind, WorkloadKind::Model);
    let model = result
        .costs
        .model
        .as_ref()
        .expect("the model's measured times");
    assert_eq!(model.device_choice, DeviceChoice::Cpu);
    assert_eq!(model.step_ms.len() as u64, model.requests * 4);
    assert!(model.step_ms.iter().all(|&ms| ms > 0.0), "{model:?}");
    assert_eq!(model.device.backend, "flex", "{:?}", model.device);
    assert!(
        result.points.iter().all(|p| p.created > 0),
        "{:?}",
        result.points
    );
    let source = format!("the model's steps and uploads drawn from {}", model.source);
    assert!(h.query_by_label_contains(&source).is_some(), "{source}");
    h.get_by_label("Apply 16").click_accesskit();
    h.step();
    wait_for_snapshot(&mut h, "the runner to take queue 16", |s| {
        s.report.settings.batch.max_queue_size == 16
    });
    let applied = h.state().snapshot().report.settings.clone();
    assert_eq!(
        applied.workload.kind,
        WorkloadKind::Model,
        "still the model"
    );
    assert_eq!(
        applied.batch.max_export_batch_size, 16,
        "the batch followed"
    );
}

/// The queue from 16 to 4096, 9 values (geometric: it spans decades).
fn queue_axis() -> whatif::Axis {
    whatif::Axis {
        key: "batch.max_queue_size",
        from: 16.0,
        to: 4096.0,
        steps: 9,
    }
}

#[test]
fn what_if_draws_a_heatmap_of_two_knobs_and_a_clicked_cell_applies_both_live() {
    let mut h = what_if_on_bursty();
    // The "and" knob, chosen as a person does: open its list and pick the sample rate.
    h.get_by_label("and").click();
    h.run();
    h.get_by_label("tracing.sample_rate").click();
    h.run();
    let form = &mut h.state_mut().what_if;
    let second = form.second.as_mut().expect("a second knob is chosen");
    assert_eq!(second.key, "tracing.sample_rate");
    (second.from, second.to, second.steps) = (0.25, 1.0, 4);
    let first = &mut form.first;
    (first.from, first.to, first.steps) = (16.0, 4096.0, 9);
    h.get_by_label("Sweep").click_accesskit();
    h.step();
    wait_for_sweep(&mut h, "the heatmap's results", |s| {
        swept(s).is_some_and(|r| r.request.second.is_some()) && s.what_if.sweep.running.is_none()
    });
    assert_eq!(h.state().snapshot().what_if.sweep.error, None);
    // Measured, not bounded: the build time depends on the machine's load.
    eprintln!(
        "frame build time (median, p99 ms) while sweeping two knobs: {:?}",
        h.state().frame_stats()
    );
    let result = swept(&h.state().snapshot()).expect("a sweep");
    assert_eq!(result.columns.len(), 9);
    assert_eq!(result.rows, ["0.25", "0.5", "0.75", "1"]);
    assert_eq!(result.points.len(), 36);
    // The settings in force (2048, 1) are a cell, outlined.
    let at = |queue: &str, rate: &str| {
        let column = result.columns.iter().position(|v| v == queue).expect(queue);
        let row = result.rows.iter().position(|v| v == rate).expect(rate);
        result.index(column, row).expect("a cell")
    };
    assert_eq!(result.current_cell(), Some((at("2048", "1"), true)));
    // A small queue drops more of a full sample than of a quarter of it.
    let (quarter, full) = (
        &result.points[at("16", "0.25")],
        &result.points[at("16", "1")],
    );
    assert!(
        full.dropped_queue_full > quarter.dropped_queue_full,
        "{quarter:?} {full:?}"
    );
    // The heatmap and its legend are drawn, a widget per cell named by its values.
    assert!(h.query_by_label("top half: dropped, queue full").is_some());
    assert!(h.query_by_label("lost in all").is_none(), "no line chart");
    let cells = h
        .query_all_by_label_contains("max_queue_size ")
        .filter(|n| n.accesskit_node().role() == Role::Button)
        .count();
    assert_eq!(cells, 36, "a widget per cell");
    let cell = &result.points[at("64", "0.5")];
    let label = format!("max_queue_size 64, sample_rate 0.5: {} lost", cell.lost);
    h.get_by_label(&label).click();
    h.step();
    assert_eq!(h.state().edited.batch.max_queue_size, 64);
    assert_eq!(h.state().edited.tracing.sample_rate, 0.5);
    let what = "the runner to take queue 64 and rate 0.5";
    let again = taken_and_swept_again(&mut h, what, |s| {
        s.batch.max_queue_size == 64 && s.tracing.sample_rate == 0.5
    });
    assert_eq!(
        again.current_cell(),
        Some((at("64", "0.5"), true)),
        "now outlining the clicked cell"
    );
}

/// Export costs fixed for image snapshots (the window measures them).
fn fixed_costs() -> gracetrace::sim::Calibration {
    gracetrace::sim::Calibration {
        exports_measured: 40,
        bytes_per_span: 390.0,
        per_batch_ms: 1.5,
        per_span_ms: 0.004,
        model: None,
    }
}

/// The What-if tab of a fixed finished run, its form holding `request` and showing
/// `sweep` (and `advice`), with no frame time so the picture is the same on every run.
fn what_if_window(
    request: &whatif::Request,
    sweep: SweepResult,
    advice: Option<whatif::AdviceResult>,
) -> Harness<'static, GraceApp> {
    fixed_window(what_if_app(request, sweep, advice))
}

fn what_if_app(
    request: &whatif::Request,
    sweep: SweepResult,
    advice: Option<whatif::AdviceResult>,
) -> GraceApp {
    let mut snapshot = finished_run();
    snapshot.what_if.sweep.last = Some(Arc::new(sweep));
    snapshot.what_if.advice.last = advice.map(Arc::new);
    let mut app = GraceApp::fixed(snapshot);
    app.show_frame_time = false;
    app.centre = Centre::WhatIf;
    app.what_if = whatif_form::Form::for_request(request);
    app
}

/// The heatmap of the queue against the grace period, simulated here with fixed export
/// costs so the picture is the same on every run: small queues drop to a full queue
/// (amber), short graces lose what is queued at SIGKILL (red).
#[test]
fn snapshot_of_the_what_if_heatmap() {
    let grace = whatif::Axis {
        key: "shutdown.grace_ms",
        from: 0.0,
        to: 2000.0,
        steps: 5,
    };
    let request = whatif::Request {
        first: queue_axis(),
        second: Some(grace),
    };
    let sweep = whatif::sweep(&request, &bursty(), fixed_costs(), &|_, _| {});
    let sweep = sweep.expect("the sweep runs");
    assert!(sweep.points.iter().any(|p| p.dropped_queue_full > 0));
    assert!(sweep.points.iter().any(|p| p.lost_at_kill > 0));
    let mut h = what_if_window(&request, sweep, None);
    h.snapshot_options("whatif_heatmap", &snapshot_options());
    assert!(
        h.query_by_label_contains("max_queue_size 2048, grace_ms 2000: ")
            .is_some()
    );
}

/// The What-if view of a finished sweep and advice, both simulated here with fixed export
/// costs (the window measures them), so the picture is the same on every run.
#[test]
fn snapshot_of_the_what_if_view() {
    let costs = fixed_costs();
    let request = whatif::Request::one(queue_axis());
    let on = bursty();
    let sweep = whatif::sweep(&request, &on, costs.clone(), &|_, _| {}).expect("the sweep runs");
    let advice = whatif::advise(&on, costs, Some(0.30)).expect("the advisor runs");
    assert!(!advice.recommendations.is_empty(), "{}", advice.text);
    let mut h = what_if_window(&request, sweep, Some(advice));
    h.snapshot_options("whatif_sweep", &snapshot_options());
    assert!(h.query_by_label("Apply 2048").is_some());
    let advised = h.query_all_by_label_contains("Apply batch.").count();
    assert!(advised >= 1, "a button per recommendation");
}

/// The What-if's fleet view: a fleet of 12 replicas on `bursty` traffic, a rolling
/// deploy of 3 waves and a 300 ms grace that SIGKILLs some, simulated here with fixed export costs; the queue swept over one
/// knob. Replicas are rows, the waves dashed, the spans each lost at the right, and
/// hovering a row names its replica and its replacement.
#[test]
fn snapshot_of_the_what_if_fleet_view_and_its_hover_names_the_replica() {
    let mut on = bursty();
    for (key, value) in [
        ("shutdown.at_s", "1"),
        ("fleet.replicas", "12"),
        ("fleet.rollout", "waves"),
        ("fleet.max_unavailable", "4"),
        ("fleet.wave_interval_s", "0.4"),
        ("fleet.startup_s", "0.3"),
        ("shutdown.grace_ms", "300"),
    ] {
        on.set(key, value, gracetrace::config::Source::CommandLine)
            .unwrap();
    }
    let request = whatif::Request::one(queue_axis());
    let sweep = whatif::sweep(&request, &on, fixed_costs(), &|_, _| {}).expect("the sweep runs");
    let fleet = sweep.fleet.clone().expect("a fleet's cell");
    assert_eq!((fleet.report.rows.len(), fleet.report.waves), (24, 3));
    assert!(
        fleet.report.totals.spans.lost_at_kill > 0,
        "a short grace loses spans"
    );
    // Taller than the others: the fleet's rows come under the chart and its cells.
    let mut h = fixed_window_of(what_if_app(&request, sweep, None), [1500.0, 1500.0]);
    h.snapshot_options("whatif_fleet", &snapshot_options());
    let row = &fleet.report.rows[5];
    let name = format!("replica 5: {} spans lost", row.lost);
    assert!(h.query_by_label("replica 5").is_none(), "no hover yet");
    h.get_by_label_contains(&name).hover();
    h.run();
    for named in ["replica 5", "replica 5 (replacement)"] {
        assert!(h.query_by_label(named).is_some(), "the hover names {named}");
    }
    assert_eq!(
        h.query_all_by_label_contains("took traffic from").count(),
        2
    );
}

#[test]
fn the_advisor_in_the_window_recommends_a_queue_and_its_apply_reaches_the_runner() {
    let mut h = what_if_on_bursty();
    h.get_by_label("Advise").click_accesskit();
    h.step();
    wait_for_snapshot(&mut h, "the advice", |s| {
        s.what_if.advice.last.is_some() && s.what_if.advice.running.is_none()
    });
    let snapshot = h.state().snapshot();
    assert_eq!(snapshot.what_if.advice.error, None);
    let advice = snapshot.what_if.advice.last.clone().expect("advice");
    assert!(advice.text.starts_with("advise ui-test"), "{}", advice.text);
    let queue = advice
        .recommendations
        .iter()
        .find(|r| r.change.len() == 1 && r.change[0].0 == "batch.max_queue_size")
        .expect("a queue that drops nothing")
        .change[0]
        .1
        .clone();
    let label = format!("Apply batch.max_queue_size={queue}");
    h.get_by_label(&label).click_accesskit();
    h.step();
    let wanted: usize = queue.parse().expect("a whole number");
    wait_for_snapshot(&mut h, "the runner to take the advised queue", |s| {
        s.report.settings.batch.max_queue_size == wanted
    });
    assert!(
        h.state().snapshot().what_if.advice.stale,
        "advice on the old settings"
    );
}

// ---- your app ----

/// The app's report in a snapshot, once there is one.
fn app_report(s: &Snapshot) -> Option<&ProbeReport> {
    s.app.as_ref()?.report.as_deref()
}

fn app_phase(s: &Snapshot) -> Option<AppPhase> {
    s.app.as_ref().map(|a| a.phase.clone())
}

/// The python3 that PATH finds (the virtual environment's, in CI), by its full path, as
/// a person would type it into the window.
fn python_on_path() -> String {
    let paths = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&paths)
        .map(|dir| dir.join("python3"))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
        .expect("python3 on PATH (python_ready found it)")
}

/// Chooses "served by your app", types `line` into the command field and presses Start.
fn start_app(h: &mut Harness<'_, GraceApp>, line: &str) {
    h.get_by_label("your app").click_accesskit();
    h.step();
    assert!(h.state().panel.your_app);
    h.step(); // the frame that draws the app's controls
    h.get_by_label("command").focus();
    h.get_by_label("command").type_text(line);
    h.step();
    h.get_by_label("Start").click_accesskit();
    h.step();
}

/// The seed-shaped Python app under a real SIGTERM from the window: its spans reach the
/// collector count while it runs, and after Shutdown the window shows its exit and a
/// collector count equal to what the app says it ended.
#[test]
fn your_app_exits_on_sigterm_and_the_window_counts_what_it_ended() {
    if !python_ready() {
        return;
    }
    let mut s = quick();
    // A grace far longer than the seed app's flush needs, even on a loaded machine.
    s.shutdown.platform = Platform::Custom;
    s.shutdown.grace_ms = 60_000;
    let mut h = live(s);
    wait_for_snapshot(&mut h, "the session to run", running);
    let line = shlex::try_join([python_on_path().as_str(), seed_app().as_str()])
        .expect("a path without NUL bytes");
    start_app(&mut h, &line);
    wait_for_snapshot(&mut h, "spans from the app at the collector", |s| {
        app_report(s).is_some_and(|r| r.collector.spans_received > 0)
    });
    assert!(h.query_by_label_contains("collector received").is_some());
    let running = h.state().snapshot();
    assert_eq!(app_phase(&running), Some(AppPhase::Running));
    assert!(running.served_by_app && marker(&running, "traffic paused: your app serves"));
    h.get_by_label("Shutdown (SIGTERM)").click_accesskit();
    h.step();
    wait_for_snapshot(&mut h, "the app's final counts", |s| {
        matches!(app_phase(s), Some(AppPhase::Estimating | AppPhase::Ended))
    });
    let snapshot = h.state().snapshot();
    let r = app_report(&snapshot).expect("a report");
    let p = &r.probe;
    let ended = p.spans_ended.expect("the seed app prints `spans ended: N`");
    assert!(ended > 0);
    assert_eq!(
        r.collector.spans_received, ended,
        "a clean exit loses nothing: {p:#?}"
    );
    assert_eq!((p.exit_code, p.killed), (Some(0), false), "{p:#?}");
    assert!(p.exit_ms > p.sigterm_ms && p.sigterm_ms.is_some(), "{p:#?}");
    assert!(
        p.spans_after_sigterm > 0,
        "teardown's flush exported after SIGTERM"
    );
    // The window says all of it.
    assert!(
        h.query_by_label_contains("your app exited with code 0")
            .is_some()
    );
    assert!(
        h.query_by_label(&format!("collector received {ended} spans"))
            .is_some()
    );
    assert!(
        h.query_by_label(&format!("your app says it ended {ended} spans"))
            .is_some()
    );
    assert!(
        h.query_by_label("got SIGTERM").is_some(),
        "the app's own output, in its log"
    );
    assert!(h.query_by_label(&format!("spans ended: {ended}")).is_some());
}

/// Bad input in the window: a command that does not exist, an empty line, an app that
/// exits at once and one that ignores SIGTERM. Each says what happened next to the
/// command field or on the timeline, leaves no process behind, and Start works again.
#[test]
fn your_app_bad_input_is_said_and_start_works_again() {
    let mut s = quick();
    s.shutdown.platform = Platform::Custom;
    s.shutdown.grace_ms = 500;
    let mut h = live(s);
    wait_for_snapshot(&mut h, "the session to run", running);
    start_app(&mut h, "/no/such/gracetrace-app --flag");
    wait_for_snapshot(&mut h, "the start to fail", |s| {
        matches!(app_phase(s), Some(AppPhase::Failed(_)))
    });
    let why = failure(&h.state().snapshot());
    assert!(
        why.starts_with("cannot start \"/no/such/gracetrace-app\""),
        "{why}"
    );
    assert!(h.query_by_label(&why).is_some(), "said next to the field");

    h.state_mut().panel.app.line.clear();
    h.get_by_label("Start").click_accesskit();
    wait_for_snapshot(&mut h, "the empty line to be refused", |s| {
        s.app.as_ref().is_some_and(|a| a.run == 2)
    });
    let why = failure(&h.state().snapshot());
    assert!(
        why.starts_with("no command: type your app's command line"),
        "{why}"
    );
    assert!(h.query_by_label(&why).is_some(), "said next to the field");

    start_again(&mut h, "sh -c 'echo bye; exit 3'");
    wait_for_snapshot(&mut h, "the app to end by itself", |s| {
        app_report(s).is_some_and(|r| r.probe.exit_ms.is_some())
    });
    assert_eq!(
        app_report(&h.state().snapshot()).and_then(|r| r.probe.exit_code),
        Some(3)
    );
    wait_for(&mut h, "its exit and its output in the window", |h| {
        h.query_by_label_contains("exited with code 3").is_some()
            && h.query_by_label("bye").is_some()
    });
    assert!(h.query_by_label_contains("before any SIGTERM").is_some());

    // Ignores SIGTERM, and so does the child it started: both are SIGKILLed at the deadline.
    start_again(
        &mut h,
        "sh -c 'trap \"\" TERM; sleep 600 & echo child $!; wait'",
    );
    wait_for_snapshot(&mut h, "the app to run", |s| {
        app_phase(s) == Some(AppPhase::Running) && s.app.as_ref().is_some_and(|a| !a.log.is_empty())
    });
    let child: u32 = h
        .state()
        .snapshot()
        .app
        .as_ref()
        .and_then(|a| {
            a.log
                .iter()
                .find_map(|l| l.text.strip_prefix("child ")?.trim().parse().ok())
        })
        .expect("the app printed its child's pid");
    h.get_by_label("Shutdown (SIGTERM)").click_accesskit();
    wait_for_snapshot(&mut h, "the SIGKILL at the deadline", |s| {
        app_report(s).is_some_and(|r| r.probe.exit_ms.is_some())
    });
    assert!(app_report(&h.state().snapshot()).is_some_and(|r| r.probe.killed));
    wait_for(&mut h, "the kill in the window", |h| {
        h.query_by_label_contains("your app was SIGKILLed")
            .is_some()
    });
    common::wait_until("the app's child to be gone", PATIENCE, || {
        !std::path::Path::new(&format!("/proc/{child}")).exists()
    });
}

/// Why the app's last Start failed.
fn failure(s: &Snapshot) -> String {
    match app_phase(s) {
        Some(AppPhase::Failed(why)) => why,
        other => panic!("not a failed start: {other:?}"),
    }
}

/// Types a new command line over the old one and presses Start.
fn start_again(h: &mut Harness<'_, GraceApp>, line: &str) {
    h.state_mut().panel.app.line = line.to_owned();
    h.step();
    h.get_by_label("Start").click_accesskit();
    h.step();
}

/// A made-up but self-consistent run of the seed app: 512-span exports about every 0.85 s,
/// SIGTERM at 6 s on fal (5 s), teardown's flush delivering the last 320 spans, an exit
/// 40 ms after SIGTERM, and the estimate beside it.
fn your_app_run() -> Arc<AppView> {
    let mut timeline = Vec::new();
    let (mut spans, mut requests) = (0u64, 0u64);
    for i in 0..=62u64 {
        if [12, 20, 29, 37, 46, 54].contains(&i) {
            (spans, requests) = (spans + 512, requests + 1);
        }
        if i == 61 {
            (spans, requests) = (spans + 320, requests + 1);
        }
        timeline.push(ProbeSample {
            t_ms: i as f64 * 100.0,
            spans_received: spans,
            requests_accepted: requests,
            requests,
        });
    }
    let probe = ProbeSection {
        command: vec!["python3".into(), "tests/apps/seed_app.py".into()],
        pid: 4242,
        exit_code: Some(0),
        sigterm_ms: Some(6_000.0),
        exit_ms: Some(6_040.0),
        grace_ms: 5_000,
        spans_after_sigterm: 320,
        requests_after_sigterm: 1,
        service_name: Some("seed-app".into()),
        sdk: Sdk {
            language: Some("python".into()),
            version: Some("1.41.0".into()),
        },
        rules: Some("python".into()),
        spans_ended: Some(spans),
        ..ProbeSection::default()
    };
    let collector = CollectorStats {
        spans_received: spans,
        requests,
        requests_accepted: requests,
        traces_seen: spans / 3,
        ..CollectorStats::default()
    };
    let mut report = ProbeReport::new(collector, probe, timeline);
    report.prediction = Some(Prediction {
        kind: "estimate",
        inputs: PredictionInputs {
            spans_per_s: 600.0,
            spans_per_trace: 3.0,
            batch_spans_mean: 512.0,
            semantics: "python".into(),
            semantics_from: "resource",
            max_queue_size: 2048,
            max_export_batch_size: 512,
            schedule_delay_ms: 5000,
            grace_ms: 5000,
            ..PredictionInputs::default()
        },
        predicted: PredictedSpans {
            ended: spans,
            received: spans,
            peak_queue: 512,
            ..PredictedSpans::default()
        },
        observed_missing: Some(0),
        caveats: vec!["an estimate: the app's queue is inside the app".into()],
    });
    let log = [
        "serving",
        "got SIGTERM",
        &format!("spans ended: {spans}"),
        "teardown done",
    ]
    .into_iter()
    .map(|text| LogLine {
        stream: Stream::Stdout,
        text: text.to_owned(),
    })
    .collect();
    Arc::new(AppView {
        run: 1,
        command: report.probe.command.clone(),
        url: None,
        phase: AppPhase::Ended,
        report: Some(Arc::new(report)),
        collector_addr: Some("127.0.0.1:40111".into()),
        recent_trace: finished_run().recent_trace.map(Arc::new),
        log,
    })
}

/// The window in "your app" mode after a clean shutdown of the seed app.
#[test]
fn snapshot_of_your_app_after_a_clean_shutdown() {
    let mut snapshot = finished_run();
    snapshot.served_by_app = true;
    snapshot.app = Some(your_app_run());
    let mut app = GraceApp::fixed(snapshot);
    app.show_frame_time = false;
    app.panel.your_app = true;
    app.panel.app.line = "python3 tests/apps/seed_app.py".into();
    let mut h = fixed_window(app);
    h.snapshot_options("your_app_clean_exit", &snapshot_options());
    assert!(h.query_by_label("collector received 3392 spans").is_some());
    assert!(
        h.query_by_label("your app says it ended 3392 spans")
            .is_some()
    );
    assert!(
        h.query_by_label_contains("your app exited with code 0 at 6040 ms")
            .is_some()
    );
    assert!(
        h.query_by_label_contains("predicted 0 lost at SIGKILL")
            .is_some()
    );
}

/// "Copy as code" for Node.js runs as pasted with the real SDK (tests/apps/node's
/// packages): the provider it builds has the batch settings, exporter timeout, sampler
/// and service name on screen, and its spans reach the endpoint it names.
#[test]
fn the_node_snippet_runs_and_has_the_settings() {
    use gracetrace::collector::{Collector, CollectorConfig};
    use gracetrace::config::Source;
    if !common::node_ready() {
        return;
    }
    let collector = Collector::start(CollectorConfig::default()).expect("collector");
    let mut settings = Settings::default();
    let endpoint = collector.traces_endpoint();
    for (key, value) in [
        ("batch.max_queue_size", "4096"),
        ("batch.max_export_batch_size", "256"),
        ("batch.schedule_delay_ms", "1234"),
        ("batch.export_timeout_ms", "20000"),
        ("exporter.timeout_ms", "7000"),
        ("tracing.sample_rate", "0.25"),
        ("tracing.service_name", "snippet 'app'"),
        ("exporter.endpoint", endpoint.as_str()),
    ] {
        settings
            .set(key, value, Source::CommandLine)
            .unwrap_or_else(|e| panic!("{key}: {e}"));
    }
    let code = gracetrace::ui::copy_as_code::node(&settings);
    let file = std::env::temp_dir().join(format!("gracetrace-snippet-{}.js", std::process::id()));
    std::fs::write(&file, &code).expect("write the snippet");
    let driver = r#"
const { trace } = require('@opentelemetry/api');
const provider = require(process.argv[1]).setupTracer();
const bsp = provider._activeSpanProcessor._spanProcessors[0];
const tracer = trace.getTracer('snippet');
let sampled = 0;
for (let i = 0; i < 400; i += 1) {
  const span = tracer.startSpan('request');
  if (span.isRecording()) sampled += 1;
  span.end();
}
provider.forceFlush({ timeoutMillis: 10000 }).then(() => {
  console.log(JSON.stringify({
    queue: bsp._maxQueueSize,
    batch: bsp._maxExportBatchSize,
    delay: bsp._scheduledDelayMillis,
    export_timeout: bsp._exportTimeoutMillis,
    timeout: bsp._exporter._delegate._timeout,
    sampler: provider._tracerOptions.sampler.toString(),
    service: provider._resource.attributes['service.name'],
    language: provider._resource.attributes['telemetry.sdk.language'],
    sampled,
  }));
  process.exit(0);
});
"#;
    let out = std::process::Command::new("node")
        .env("NODE_PATH", common::node_dir().join("node_modules"))
        .args(["-e", driver])
        .arg(&file)
        .output()
        .expect("run node");
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "{}\n{code}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the driver's JSON line");
    assert_eq!(seen["queue"], 4096, "{seen}");
    assert_eq!(seen["batch"], 256);
    assert_eq!(seen["delay"], 1234);
    assert_eq!(seen["export_timeout"], 20000);
    assert_eq!(seen["timeout"], 7000);
    let sampler = seen["sampler"].as_str().expect("sampler");
    assert!(
        sampler.starts_with("ParentBased{root=TraceIdRatioBased{0.25}"),
        "{sampler}"
    );
    assert_eq!(seen["service"], "snippet 'app'");
    assert_eq!(seen["language"], "nodejs");
    let sampled = seen["sampled"].as_u64().expect("sampled");
    assert!(sampled > 0 && sampled < 400, "{seen}");
    common::wait_until("the snippet's spans to arrive", common::PATIENCE, || {
        collector.stats().spans_received == sampled
    });
}

// ---- your app with a URL ----

/// A made-up run of a server under the probe's traffic, against a backend slower than the
/// grace: 40 requests/s from 1 s, SIGTERM at 6 s (refused from then on: the server stopped
/// accepting), SIGKILL at 11 s cutting two requests still out, and three answered requests
/// before SIGTERM whose traces were in the app's queue. The sections are counted by
/// `record` from the rows, as the probe counts them. `ended`: the final report; else the
/// report while the traffic runs (no SIGTERM yet, the section so far, no `traces`).
fn load_run(ended: bool) -> Arc<AppView> {
    let mut rows = Vec::new();
    for i in 0..240u64 {
        let scheduled_ms = 1_000.0 + i as f64 * 25.0;
        let (sent, end, outcome) = match i {
            0..200 => {
                let latency = 20.0 + (i % 7) as f64 * 3.0 + if i > 150 { 30.0 } else { 0.0 };
                (true, scheduled_ms + latency, load_record::Outcome::Answered)
            }
            200..220 => (true, scheduled_ms + 1.0, load_record::Outcome::Refused),
            _ => (false, 0.0, load_record::Outcome::NotSent),
        };
        let lost = [183, 191, 197].contains(&i);
        rows.push(LoadRequest {
            index: i,
            scheduled_ms,
            sent_ms: sent.then_some(scheduled_ms + 0.3),
            ended_ms: sent.then_some(end),
            outcome: Some(outcome),
            status: (outcome == load_record::Outcome::Answered).then_some(200),
            latency_ms: (outcome == load_record::Outcome::Answered).then_some(end - scheduled_ms),
            after_sigterm: scheduled_ms >= 6_000.0,
            trace_id: format!("{:032x}", 0x4bf9_2f35_0000_u128 + u128::from(i)),
            sampled: sent,
            spans_received: if lost {
                u64::from(i == 197) * 2
            } else {
                3 * u64::from(sent)
            },
            root: sent && !lost,
        });
    }
    for (index, ended_ms) in [(240, 11_000.0), (241, 11_000.0)] {
        rows.push(LoadRequest {
            index,
            scheduled_ms: 5_990.0,
            sent_ms: Some(5_990.3),
            ended_ms: Some(ended_ms),
            outcome: Some(load_record::Outcome::InFlightAtEnd),
            trace_id: format!("{index:032x}"),
            sampled: true,
            ..LoadRequest::default()
        });
    }
    let header = LoadSection {
        url: "http://127.0.0.1:8000/generate".into(),
        method: "GET".into(),
        ready_ms: 950.0,
        traffic_start_ms: 1_000.0,
        ..LoadSection::default()
    };
    let mut app = (*your_app_run()).clone();
    let mut report = (**app.report.as_ref().expect("a report")).clone();
    report.prediction = None;
    report.probe.command = vec!["python3".into(), "server.py".into(), "8000".into()];
    if ended {
        let p = &mut report.probe;
        (p.sigterm_ms, p.sigkill_ms, p.exit_ms) = (Some(6_000.0), Some(11_000.0), Some(11_001.0));
        (p.killed, p.exit_code, p.signal, p.grace_ms) = (true, None, Some(9), 5_000);
        report.timeline = (0..=111)
            .map(|i| ProbeSample {
                t_ms: i as f64 * 100.0,
                ..report.timeline[(i as usize).min(report.timeline.len() - 1)]
            })
            .collect();
        let mut load = LoadSection {
            routing_end_ms: Some(6_000.0),
            timeline: Timeline::of(&rows),
            requests: rows,
            ..header
        };
        let traces = load_record::tally(&mut load, Some(6_000.0), false);
        (report.load, report.traces) = (Some(load), Some(traces));
    } else {
        // At 4.5 s: what had been sent and what had ended by then, as the probe's live
        // section counts it.
        let now_ms = 4_500.0;
        let mut so_far = Timeline::default();
        for r in rows
            .iter()
            .filter(|r| r.sent_ms.is_some_and(|t| t < now_ms))
        {
            so_far.sent(r.sent_ms.unwrap_or_default());
            if let (Some(end), Some(outcome)) = (r.ended_ms.filter(|&t| t < now_ms), r.outcome) {
                so_far.ended(end, outcome, r.latency_ms);
            }
        }
        report.probe = ProbeSection {
            pid: 4242,
            ..ProbeSection::default()
        };
        report.timeline.truncate(46);
        report.load = Some(so_far.so_far(header, now_ms));
    }
    app.url = Some("http://127.0.0.1:8000/generate".into());
    app.phase = if ended {
        AppPhase::Ended
    } else {
        AppPhase::Running
    };
    app.command = report.probe.command.clone();
    app.report = Some(Arc::new(report));
    Arc::new(app)
}

/// The window in "your app" mode showing `app` (and `compare`), with its command line and
/// URL typed.
fn load_window(app: Arc<AppView>, centre: Centre, compare: Option<CompareView>) -> GraceApp {
    let mut snapshot = finished_run();
    snapshot.served_by_app = true;
    snapshot.app = Some(app);
    snapshot.compare = compare.map(Arc::new);
    let mut window = GraceApp::fixed(snapshot);
    window.show_frame_time = false;
    window.panel.your_app = true;
    window.panel.app = AppStart {
        line: "python3 server.py 8000".into(),
        url: "http://127.0.0.1:8000/generate".into(),
        ready_path: "/health".into(),
    };
    window.centre = centre;
    window
}

/// After the shutdown: the requests by outcome, the latency with SIGTERM and SIGKILL, the
/// lost traces named one by one, every figure from the report's sections.
#[test]
fn snapshot_of_your_app_under_load_with_lost_traces() {
    let app = load_run(true);
    let report = app.report.clone().expect("a report");
    let (load, traces) = (
        report.load.as_ref().unwrap(),
        report.traces.as_ref().unwrap(),
    );
    assert_eq!(
        (load.answered, load.failed.refused, load.in_flight_at_end),
        (200, 20, 2)
    );
    assert_eq!(traces.lost, 3);
    let mut h = fixed_window(load_window(app, Centre::Timeline, None));
    h.snapshot_options("your_app_under_load", &snapshot_options());
    assert!(
        h.query_by_label("Requests to your app per 100 ms")
            .is_some()
    );
    assert!(
        h.query_by_label("[refused]").is_some(),
        "a key for each outcome seen"
    );
    assert!(
        h.query_by_label("[reset]").is_none(),
        "none for one that did not happen"
    );
    assert!(
        h.query_by_label_contains(
            "242 scheduled: 222 sent to GET http://127.0.0.1:8000/generate, 200 answered, \
             failed: 20 refused, 2 in flight at the app's end; 20 not sent (routing had \
             ended). The shutdown cost 22 requests."
        )
        .is_some()
    );
    assert!(h.query_by_label("Latency of your app").is_some());
    assert!(h.query_by_label_contains("Before SIGTERM: p50 ").is_some());
    assert!(
        h.query_by_label(
            "3 of 200 answered sampled requests lost their trace: 3 before SIGTERM, 0 after."
        )
        .is_some(),
        "{traces:#?}"
    );
    assert!(
        h.query_by_label(&traces.lost_requests[2].trace_id)
            .is_some()
    );
    assert!(h.query_by_label("2 spans, no root").is_some());
}

/// While the traffic runs: the counts so far, and the lost traces said to come at the end.
#[test]
fn while_the_load_runs_its_counts_so_far_and_lost_traces_at_the_end() {
    let app = load_run(false);
    let load = app.report.as_ref().and_then(|r| r.load.clone()).unwrap();
    assert!(
        load.answered > 100 && load.sent > load.answered,
        "{load:#?}"
    );
    let h = fixed_window(load_window(app, Centre::Timeline, None));
    let so_far = format!(
        "So far: {} sent to GET http://127.0.0.1:8000/generate, {} answered, none failed.",
        load.sent, load.answered
    );
    assert!(h.query_by_label(&so_far).is_some(), "{so_far}");
    assert!(h.query_by_label_contains("known at the end").is_some());
    assert!(h.query_by_label("pid 4242: running").is_some());
}

/// The compare panel: a row per value, figures for the runs that ended, the one under way.
#[test]
fn the_compare_table_draws_its_rows_as_runs_end() {
    let row = CompareRow {
        latency_ms_before_sigterm: Some(LoadLatency {
            count: 180,
            p50: Some(21.5),
            p90: Some(27.25),
            p99: Some(40.0),
            max: Some(52.0),
        }),
        answered_per_s_before_sigterm: Some(39.5),
        cpu_before_sigterm_ms: Some(812.0),
        cpu_ms_per_request: Some(4.511),
        spans_received: 540,
        lost_traces: Some(0),
        failed_after_sigterm: Some(3),
        ending: "exited with code 0".into(),
        ..CompareRow::default()
    };
    let view = CompareView {
        key: "tracing.enabled".into(),
        values: vec!["false".into(), "true".into()],
        runs: vec![ComparedRun {
            value: "false".into(),
            row,
        }],
        running: Some(1),
        ..CompareView::default()
    };
    let mut h = fixed_window(load_window(load_run(true), Centre::Compare, Some(view)));
    h.snapshot_options("your_app_compare", &snapshot_options());
    for heading in [
        "tracing.enabled",
        "p50 ms",
        "answered/s",
        "CPU/req",
        "the app",
    ] {
        assert!(h.query_by_label(heading).is_some(), "{heading}");
    }
    for cell in [
        "21.50", "27.25", "40.00", "52.0", "39.5", "812", "4.511", "540",
    ] {
        assert!(h.query_by_label(cell).is_some(), "{cell}");
    }
    assert!(h.query_by_label("exited with code 0").is_some());
    assert!(h.query_by_label("running...").is_some());
    assert!(
        h.query_by_label("run 2 of 2: tracing.enabled=true, under way...")
            .is_some()
    );
    assert!(
        h.get_by_label("Run").accesskit_node().is_disabled(),
        "one comparison at a time"
    );
}

/// A compare text the probe cannot run says why under the field, and Run stays off; a
/// good one turns it on.
#[test]
fn a_bad_compare_text_shows_its_error() {
    let mut window = load_window(load_run(true), Centre::Compare, None);
    window.compare.text = "nope.knob=1,2".into();
    let mut h = fixed_window(window);
    let error =
        "--compare \"nope.knob=1,2\": unknown knob \"nope.knob\" (`gracetrace knobs` lists them)";
    assert!(h.query_by_label(error).is_some());
    assert!(h.get_by_label("Run").accesskit_node().is_disabled());
    h.state_mut().compare.text = "tracing.sample_rate=0.5".into();
    h.run();
    assert!(
        h.query_by_label_contains("1 values; expected from 2 to 10")
            .is_some()
    );
    h.state_mut().compare.text = "tracing.sample_rate=0.1,1".into();
    h.run();
    assert!(!h.get_by_label("Run").accesskit_node().is_disabled());
    h.state_mut().panel.app.url.clear();
    h.run();
    assert!(
        h.query_by_label("--ready-path: needs --url (the load it describes is sent only to a URL)")
            .is_some()
    );
    h.state_mut().panel.app.ready_path.clear();
    h.run();
    assert!(
        h.query_by_label_contains("needs --sigterm-at or shutdown.at_s")
            .is_some(),
        "without a URL every run needs a SIGTERM time"
    );
}
