//! The live engine's what-if jobs ([`Worker`]): one sweep and one advice at a time, each
//! on its own thread (`job.rs`), and the last sweep run again once the settings in
//! force have changed and then been still for [`RESWEEP_AFTER`]. [`View`] is what the
//! engine's snapshot carries of them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::job::{JobView, Slot};
use super::request::Request;
use super::result::{AdviceResult, SweepResult};
use super::run::{advise, sweep};
use crate::config::Settings;
use crate::session::virtual_clock::model_workload;
use crate::sim::Calibration;

/// After the settings in force change, a finished sweep is run again once they have been
/// still this long, so a dragged slider starts one sweep, not one per step.
pub const RESWEEP_AFTER: Duration = Duration::from_millis(800);

/// What the snapshot carries for the window.
#[derive(Clone, Debug, Default)]
pub struct View {
    pub sweep: JobView<SweepResult>,
    pub advice: JobView<AdviceResult>,
}

/// The engine's what-if jobs.
#[derive(Default)]
pub struct Worker {
    costs: Arc<Mutex<Option<Calibration>>>,
    sweep: Slot<SweepResult>,
    advice: Slot<AdviceResult>,
    /// The last sweep asked for, run again when the settings in force change.
    request: Option<Request>,
    /// Asked for while a sweep ran: started when it ends.
    pending: bool,
    /// When the settings in force last changed.
    changed_at: Option<Instant>,
    /// The settings the last sweep started on.
    swept_on: Option<Settings>,
}

impl Worker {
    /// Sweeps `request` on `applied` (after the running sweep, if one runs).
    pub fn sweep(&mut self, request: Request, applied: &Settings) {
        self.request = Some(request);
        self.pending = true;
        self.start_pending(applied);
    }

    fn start_pending(&mut self, applied: &Settings) {
        let Some(request) = self.request.clone().filter(|_| self.pending) else {
            return;
        };
        if self.sweep.is_running() {
            return;
        }
        self.pending = false;
        self.swept_on = Some(applied.clone());
        let settings = applied.clone();
        let model = model_workload(applied).cloned();
        self.sweep.start(
            &self.costs,
            model,
            "gracetrace-whatif",
            move |costs, progress| sweep(&request, &settings, costs, progress),
        );
    }

    /// Runs the advisor on `applied`; `price` per million spans for the costs it prints.
    pub fn advise(&mut self, applied: &Settings, price: Option<f64>) {
        let settings = applied.clone();
        let model = model_workload(applied).cloned();
        self.advice
            .start(&self.costs, model, "gracetrace-advise", move |costs, _| {
                advise(&settings, costs, price)
            });
    }

    /// The settings in force changed: the last sweep runs again once they are still.
    pub fn settings_changed(&mut self) {
        self.changed_at = Some(Instant::now());
    }

    /// Takes finished results and starts the sweep again when the settings in force have
    /// moved away from those of the last sweep and been still for [`RESWEEP_AFTER`].
    pub fn tick(&mut self, applied: &Settings) {
        self.sweep.poll();
        self.advice.poll();
        let settled = self
            .changed_at
            .is_none_or(|at| at.elapsed() >= RESWEEP_AFTER);
        let moved = self.swept_on.as_ref().is_some_and(|s| s != applied);
        if settled && moved && !self.sweep.is_running() {
            self.pending = true;
        }
        if settled {
            self.start_pending(applied);
        }
    }

    /// The jobs as the window sees them, each result stale once `applied` differs from the
    /// settings it ran on.
    pub fn view(&self, applied: &Settings) -> View {
        let stale = |base: Option<&Settings>| base.is_some_and(|b| b != applied);
        View {
            sweep: self.sweep.view(stale(self.sweep.last().map(|l| &l.base))),
            advice: self.advice.view(stale(self.advice.last().map(|l| &l.base))),
        }
    }
}
