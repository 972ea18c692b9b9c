//! The window's test helpers, shared by the window's test binaries: a live window on a
//! harness, and waits that poll it (never a fixed sleep).
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use egui_kittest::Harness;

use gracetrace::config::Settings;
use gracetrace::session::live::{RunnerState, Snapshot};
use gracetrace::session::whatif::SweepResult;
use gracetrace::ui::GraceApp;

use crate::common::PATIENCE;

pub const SIZE: [f32; 2] = [1500.0, 920.0];

/// A window over a live session on `settings`.
pub fn live(settings: Settings) -> Harness<'static, GraceApp> {
    Harness::builder().with_size(SIZE).build_ui_state(
        |ui, app: &mut GraceApp| app.show(ui),
        GraceApp::live(settings, Box::new(|| {})),
    )
}

/// Keeps the window drawing (as it would on screen) until `done` holds, checking every
/// 20 ms, then draws once more so the window shows what `done` saw. Panics naming `what`
/// after `PATIENCE`: no test waits a fixed time and hopes.
pub fn wait_for(
    h: &mut Harness<'_, GraceApp>,
    what: &str,
    done: impl Fn(&Harness<'_, GraceApp>) -> bool,
) {
    wait_within(h, what, PATIENCE, done);
}

/// How long a What-if sweep may take: a steady-state sweep simulates 2.5 minutes of
/// traffic a run, and 27 runs of it took over 30 s of this debug build on a 2-core
/// machine busy with other builds.
pub const SWEEP_PATIENCE: Duration = Duration::from_secs(180);

/// [`wait_for`] on the newest snapshot, giving up after [`SWEEP_PATIENCE`].
pub fn wait_for_sweep(h: &mut Harness<'_, GraceApp>, what: &str, done: impl Fn(&Snapshot) -> bool) {
    wait_within(h, what, SWEEP_PATIENCE, |h| done(&h.state().snapshot()));
}

/// [`wait_for`], giving up after `patience`.
fn wait_within(
    h: &mut Harness<'_, GraceApp>,
    what: &str,
    patience: Duration,
    done: impl Fn(&Harness<'_, GraceApp>) -> bool,
) {
    let start = Instant::now();
    loop {
        h.step();
        if done(h) {
            break;
        }
        assert!(
            start.elapsed() < patience,
            "gave up after {patience:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    h.step();
}

/// `wait_for` on the newest snapshot the engine published.
pub fn wait_for_snapshot(
    h: &mut Harness<'_, GraceApp>,
    what: &str,
    done: impl Fn(&Snapshot) -> bool,
) {
    wait_for(h, what, |h| done(&h.state().snapshot()));
}

pub fn running(s: &Snapshot) -> bool {
    s.phase == RunnerState::Running
}

/// The last sweep the window's What if finished.
pub fn swept(s: &Snapshot) -> Option<Arc<SweepResult>> {
    s.what_if.sweep.last.clone()
}
