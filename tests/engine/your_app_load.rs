//! The window's "your app" with a URL, through the engine's API rather than the window:
//! [`AppRun`] starts the traced server of tests/apps/ under the probe's traffic, the view's
//! `load` section grows while it serves, Shutdown (an early SIGTERM, long before the
//! traffic's end) is sent, routing goes on for the routing lag after it, and the final
//! report accounts for every request of the schedule.

use gracetrace::config::{Platform, Settings};
use gracetrace::record::load::LoadSection;
use gracetrace::record::probe::ProbeReport;
use gracetrace::session::your_app::{AppPhase, AppRun, AppStart};

use crate::common::{PATIENCE, python_ready, wait_until};
use crate::probe_load::{assert_requests_accounted, free_port, server_app};

/// The traffic lasts a minute: SIGTERM can only have come from Shutdown.
const TRAFFIC_S: f64 = 60.0;

fn settings() -> Settings {
    let mut s = Settings::default();
    s.workload.rate_per_s = 40.0;
    s.workload.duration_s = TRAFFIC_S;
    s.workload.burst_every_s = 1.0;
    s.workload.burst_size = 10;
    s.batch.schedule_delay_ms = 200;
    s.tracing.sample_rate = 1.0;
    s.shutdown.platform = Platform::Custom;
    // Far longer than the server's drain and flush, even on a loaded machine.
    s.shutdown.grace_ms = 60_000;
    s.shutdown.routing_lag_ms = 1_000;
    s
}

fn load_of(run: &AppRun) -> Option<LoadSection> {
    run.view().report.and_then(|r| r.load.clone())
}

#[test]
fn your_app_with_a_url_grows_its_timeline_and_shutdown_accounts_for_every_request() {
    if !python_ready() {
        return;
    }
    let port = free_port();
    let app = server_app();
    let start = AppStart {
        line: shlex::try_join(["python3", app.as_str(), &port.to_string(), "20"])
            .expect("a path without NUL bytes"),
        url: format!("http://127.0.0.1:{port}/generate"),
        ready_path: "/health".into(),
    };
    let run = AppRun::start(&settings(), &start, 1).expect("the app starts");
    assert_eq!(run.view().url.as_deref(), Some(start.url.as_str()));

    // While it serves, the section so far grows: more buckets, more answered.
    wait_until("answered requests in the live section", PATIENCE, || {
        load_of(&run).is_some_and(|l| l.answered > 0)
    });
    let early = load_of(&run).expect("a live section");
    assert!(run.view().report.is_some_and(|r| r.traces.is_none()));
    wait_until("the live timeline to grow", PATIENCE, || {
        load_of(&run).is_some_and(|l| {
            l.timeline.len() > early.timeline.len() + 5 && l.answered > early.answered + 20
        })
    });
    let live = load_of(&run).expect("a live section");
    let ended: u64 = live
        .timeline
        .iter()
        .map(|b| b.answered + b.failed.total() + b.in_flight_at_end)
        .sum();
    assert_eq!(ended, live.answered + live.failed.total());

    run.sigterm().expect("Shutdown while it serves");
    wait_until("the app's final report", PATIENCE, || {
        run.is_gone() && matches!(run.view().phase, AppPhase::Estimating | AppPhase::Ended)
    });
    let view = run.view();
    assert!(
        view.recent_trace.is_some(),
        "the waterfall finds a root whose parent is the probe's"
    );
    let report = view.report.expect("a final report");
    check_final(&report, &live);
}

/// The final report: SIGTERM long before the traffic's end, the routing lag after it,
/// every request of the schedule in one bucket, and nothing lost in a clean shutdown.
fn check_final(report: &ProbeReport, live: &LoadSection) {
    let p = &report.probe;
    let (load, traces) = (report.load.as_ref(), report.traces.as_ref());
    let (load, traces) = load.zip(traces).expect("the load and traces sections");
    let sigterm_ms = p.sigterm_ms.expect("SIGTERM was sent");
    assert!(
        sigterm_ms < load.traffic_start_ms + TRAFFIC_S * 1000.0 / 2.0,
        "Shutdown's SIGTERM, not the plan's: {p:#?}"
    );
    assert_eq!((p.exit_code, p.killed), (Some(0), false), "{p:#?}");
    // Routing ended the lag after SIGTERM was asked (the signal follows within the probe's
    // poll), and decided which arrivals were sent.
    let routing_end = load.routing_end_ms.expect("routing ended");
    assert!(routing_end > sigterm_ms && routing_end <= sigterm_ms + 1_000.0);
    for r in &load.requests {
        assert_eq!(
            r.sent_ms.is_some(),
            r.scheduled_ms < routing_end,
            "{r:#?} against routing's end at {routing_end} ms"
        );
    }
    assert!(
        load.not_sent_after_routing_end > 0,
        "the minute was cut short"
    );
    assert!(load.sent > live.sent && load.answered >= live.answered);
    let json = serde_json::to_value(load).expect("the section as JSON");
    assert_requests_accounted(&json);
    // Every request that was sent is in exactly one bucket of the timeline.
    let in_buckets: u64 = load
        .timeline
        .iter()
        .map(|b| b.answered + b.failed.total() + b.in_flight_at_end)
        .sum();
    assert_eq!(in_buckets, load.sent, "{:#?}", load.failed);
    assert_eq!(load.timeline.last().map(|b| b.in_flight), Some(0));
    assert_eq!(
        (traces.answered_sampled, traces.lost),
        (load.answered, 0),
        "a clean shutdown loses no trace: {traces:#?}"
    );
}
