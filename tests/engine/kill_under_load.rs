//! SIGKILL's account is decided by the kill, never by which thread gets there first: the
//! same shutdown, played again and again while busy threads load every core, loses the
//! same spans the same way each time, headless and through the window's engine.
//!
//! `shutdown-slow-backend`: the collector takes 2 s per export and the 2048-span queue is
//! full. The worker's exports leave about 0.3 s after start and then every 2 s, so with
//! fal's 5 s grace SIGKILL (at 7 s) finds one export of 512 in flight and 512 spans
//! queued; with a 1 s grace (at 3 s) it finds the second export of 512 in flight and 1536
//! queued. Both kills land at least 0.7 s away from an export's start or end, a margin no
//! load on this machine has come near; the split does not depend on how many spans the
//! loaded producers managed to make.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::JoinHandle;

use crate::common::{PATIENCE, assert_accounted, scenario, wait_until};
use gracetrace::config::Settings;
use gracetrace::record::KillLosses;
use gracetrace::record::report::Report;
use gracetrace::session::live::{Engine, RunnerState};

/// Plays of each variant on each path; `GRACETRACE_KILL_PLAYS` asks for more.
fn plays() -> usize {
    std::env::var("GRACETRACE_KILL_PLAYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

/// Two spinning threads per core until dropped: the machine the account must not
/// depend on.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    fn every_core() -> Load {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..cores * 2)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 1_u64;
                    while !stop.load(Relaxed) {
                        x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                    }
                })
            })
            .collect();
        Load { stop, threads }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The two shutdowns and the split each must give.
fn variants() -> [(Settings, KillLosses); 2] {
    let split = |queued, in_flight_export| KillLosses {
        queued,
        in_flight_export,
        in_flight_but_delivered: 0,
    };
    [
        (scenario("shutdown-slow-backend", &[]), split(512, 512)),
        (
            scenario("shutdown-slow-backend", &["shutdown.grace_ms=1000"]),
            split(1536, 512),
        ),
    ]
}

/// What every killed run must show besides the split: the identity, nothing left
/// queued in a dead process, nothing more arriving after the kill.
fn assert_killed_account(report: &Report, expected: KillLosses, path: &str) {
    let shutdown = report.shutdown.as_ref().expect("a shutdown ran");
    assert!(shutdown.killed, "{path}: {shutdown:#?}");
    assert_eq!(shutdown.lost_at_kill, expected, "{path}: {shutdown:#?}");
    let spans = report.spans.counts;
    assert_accounted(&spans);
    assert_eq!(report.spans.unaccounted, 0, "{path}");
    assert_eq!(
        spans.queued, 0,
        "{path}: nothing of a killed runner stays queued"
    );
    assert_eq!(
        spans.lost_at_kill,
        expected.queued + expected.in_flight_export,
        "{path}"
    );
    assert_eq!(spans.received, spans.exported, "{path}: {spans:#?}");
    assert!(shutdown.verdict.contains(&format!(
        "{} spans lost at SIGKILL",
        expected.queued + expected.in_flight_export
    )));
}

#[test]
fn the_kill_decides_its_account_under_load_headless() {
    let _load = Load::every_core();
    for play in 0..plays() {
        for (settings, expected) in variants() {
            let report = gracetrace::session::run(&settings).expect("run");
            assert_killed_account(&report, expected, &format!("headless play {play}"));
        }
    }
}

#[test]
fn the_kill_decides_its_account_under_load_in_the_window_engine() {
    let _load = Load::every_core();
    for play in 0..plays() {
        for (settings, expected) in variants() {
            let report = play_in_engine(&settings);
            assert_killed_account(&report, expected, &format!("engine play {play}"));
        }
    }
}

/// Runs the scenario in the window's engine, as opening it in the window does: the
/// engine replays the scenario's SIGTERM at `shutdown.at_s`. Returns the report once the
/// shutdown is over.
fn play_in_engine(settings: &Settings) -> Report {
    let engine = Engine::start(settings.clone(), Box::new(|| {}));
    wait_until("the shutdown to end", PATIENCE, || {
        let snapshot = engine.snapshot();
        snapshot.phase == RunnerState::Ended && snapshot.last_shutdown.is_some()
    });
    engine.snapshot().report.clone()
}
