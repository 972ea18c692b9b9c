//! The window's state and layout: which panel goes where, when edited settings are sent
//! to the engine, and the frame-time measurement.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eframe::egui;

use super::controls::{self, Action};
use super::time_axis::{TimeWindow, Zoom};
use super::your_app;
use super::{
    copy_as_code, counters, exports, inference, queue, shutdown_timeline, status_bar, trace, whatif,
};
use crate::config::{Settings, Source};
use crate::record::probe::ProbeReport;
use crate::session::live::{Command, Engine, RunnerState, Snapshot};
use crate::session::your_app::AppPhase;

/// Frames kept for the frame-time statistics.
const FRAME_HISTORY: usize = 600;
/// A dragged slider sends at most this often, so a drag does not rebuild the batch
/// processor sixty times a second; the change still lands well within a second.
const SEND_EVERY: Duration = Duration::from_millis(200);

/// What the centre column shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Centre {
    /// The queue, the exports and the shutdown on one time axis.
    Timeline,
    /// A knob swept in virtual time, and the advisor.
    WhatIf,
    /// The user's app run once per value of a knob (with "your app" only).
    Compare,
}

/// Where the window's numbers come from.
enum Feed {
    Live(Engine),
    /// A fixed snapshot (tests, snapshots of a finished run): nothing runs.
    Fixed(Arc<Snapshot>),
}

/// The whole window.
pub struct GraceApp {
    source: Feed,
    /// What the controls show and edit.
    pub edited: Settings,
    /// What was last sent to the engine.
    sent: Settings,
    last_send: Instant,
    /// The control panel's own state (file field, notes, why settings are invalid).
    pub panel: controls::Panel,
    /// How many scenarios the engine has opened; when its count moves, the controls
    /// take the opened settings.
    opened_seen: u64,
    rejected_seen: u64,
    /// The user's price per million ingested spans, for the monthly cost.
    pub price_per_million: f64,
    /// Write the settings to the config dir at exit (off in tests).
    pub remember_on_exit: bool,
    /// Which code the "Copy as code" box shows.
    pub code_kind: copy_as_code::CodeKind,
    /// The time range the user zoomed or panned to, shared by every time plot.
    pub zoom: Zoom,
    /// The centre column's view, and the What-if view's form.
    pub centre: Centre,
    pub what_if: whatif::Form,
    /// The compare panel's knob and values, as typed.
    pub compare: your_app::compare::Form,
    /// The last generated picture, as a texture.
    images: inference::ImageCache,
    /// Off for image snapshots, whose pixels must not depend on the machine's speed.
    pub show_frame_time: bool,
    frame_ms: VecDeque<f32>,
    whole_frame_ms: VecDeque<f32>,
    frames_logged: Instant,
}

impl GraceApp {
    /// A window driving a live session started with `settings`; `repaint` wakes the UI
    /// when the engine has published a new snapshot.
    pub fn live(settings: Settings, repaint: Box<dyn Fn() + Send>) -> GraceApp {
        let engine = Engine::start(settings.clone(), repaint);
        GraceApp::new(Feed::Live(engine), settings)
    }

    /// A window showing a fixed snapshot (for tests and documentation images).
    pub fn fixed(snapshot: Snapshot) -> GraceApp {
        let settings = snapshot.report.settings.clone();
        GraceApp::new(Feed::Fixed(Arc::new(snapshot)), settings)
    }

    fn new(source: Feed, settings: Settings) -> GraceApp {
        GraceApp {
            source,
            sent: settings.clone(),
            edited: settings,
            last_send: Instant::now(),
            panel: controls::Panel::default(),
            opened_seen: 0,
            rejected_seen: 0,
            price_per_million: 0.30,
            remember_on_exit: false,
            code_kind: copy_as_code::CodeKind::Python,
            show_frame_time: true,
            zoom: Zoom::default(),
            centre: Centre::Timeline,
            what_if: whatif::Form::default(),
            compare: your_app::compare::Form::default(),
            images: inference::ImageCache::default(),
            frame_ms: VecDeque::with_capacity(FRAME_HISTORY),
            whole_frame_ms: VecDeque::with_capacity(FRAME_HISTORY),
            frames_logged: Instant::now(),
        }
    }

    /// The newest snapshot the engine published.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        match &self.source {
            Feed::Live(engine) => engine.snapshot(),
            Feed::Fixed(snapshot) => snapshot.clone(),
        }
    }

    /// Median and 99th percentile of the recent frames' build time, milliseconds.
    pub fn frame_stats(&self) -> Option<(f32, f32)> {
        quantiles(&self.frame_ms)
    }
}

/// Median and 99th percentile, milliseconds.
fn quantiles(frames: &VecDeque<f32>) -> Option<(f32, f32)> {
    if frames.is_empty() {
        return None;
    }
    let mut sorted: Vec<f32> = frames.iter().copied().collect();
    sorted.sort_by(f32::total_cmp);
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    Some((at(0.5), at(0.99)))
}

impl GraceApp {
    fn send(&self, command: Command) {
        if let Feed::Live(engine) = &self.source {
            engine.send(command);
        }
    }

    /// Carries out what a button in the controls asked for: everything goes to the
    /// engine, which owns the session and the files.
    pub fn carry_out(&mut self, action: Action) {
        let command = match action {
            Action::Shutdown => Command::Shutdown,
            Action::NewRunner => Command::NewRunner,
            Action::Open(path) => Command::Open(path),
            Action::Save(path) => Command::Save(path, Box::new(self.edited.clone())),
            Action::ServeApp(on) => Command::ServeApp(on),
            Action::StartApp(start) => {
                // The app starts with the settings on screen: an edit still waiting for
                // its turn goes first.
                self.send_edits(true);
                Command::StartApp(start)
            }
        };
        self.send(command);
    }

    /// Carries out what a press in the What-if view asked for. A value to apply goes to
    /// the engine at once, and the controls show it.
    pub fn carry_out_what_if(&mut self, action: whatif::Action) {
        match action {
            whatif::Action::Sweep(request) => self.send(Command::WhatIf(request)),
            whatif::Action::Advise => self.send(Command::Advise(Some(self.price_per_million))),
            whatif::Action::Apply(settings) => {
                self.edited = (*settings).clone();
                self.sent = *settings;
                self.last_send = Instant::now();
                self.panel.refused = None;
                self.send(Command::Apply(Box::new(self.edited.clone())));
            }
        }
    }

    /// Takes what the engine has done: its file message, the settings of a scenario it
    /// has just opened, and after a refused change the settings still in force with the
    /// reason. Either way the controls show what now runs.
    fn adopt(&mut self, snapshot: &Snapshot) {
        self.panel.file_message = snapshot.file_message.clone();
        let opened = snapshot.opened != self.opened_seen;
        let refused = snapshot.rejected != self.rejected_seen;
        if refused {
            self.panel.refused = snapshot
                .last_error
                .as_ref()
                .map(|error| format!("not applied: {error}; these are the settings in force"));
        }
        if opened || refused {
            self.opened_seen = snapshot.opened;
            self.rejected_seen = snapshot.rejected;
            self.edited = snapshot.report.settings.clone();
            self.sent = self.edited.clone();
        }
    }

    /// The engine this window drives, when it drives one (not a fixed snapshot): for
    /// tests and tools that send it commands as another client would.
    pub fn engine(&self) -> Option<&Engine> {
        match &self.source {
            Feed::Live(engine) => Some(engine),
            Feed::Fixed(_) => None,
        }
    }

    /// Sends the edited settings if they changed, are valid, and the last send is not
    /// too recent.
    fn maybe_send(&mut self) {
        self.send_edits(false);
    }

    /// Sends the edited settings if they changed and are valid, and (unless `now`) the
    /// last send is not too recent.
    fn send_edits(&mut self, now: bool) {
        self.panel.invalid = self
            .edited
            .validate(Source::Live)
            .err()
            .map(|e| e.to_string());
        if self.edited == self.sent
            || self.panel.invalid.is_some()
            || (!now && self.last_send.elapsed() < SEND_EVERY)
        {
            return;
        }
        self.sent = self.edited.clone();
        self.last_send = Instant::now();
        self.panel.refused = None; // a new change: the old complaint no longer applies
        self.send(Command::Apply(Box::new(self.edited.clone())));
    }

    /// Draws the whole window into `ui` (the eframe root or a test harness).
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let started = Instant::now();
        let snapshot = self.snapshot();
        self.adopt(&snapshot);
        let window = self.zoom.apply(TimeWindow::for_snapshot(&snapshot));

        egui::Panel::bottom("status").show(ui, |ui| {
            let frame = self.frame_stats().filter(|_| self.show_frame_time);
            status_bar::show(ui, &snapshot, frame, self.panel.your_app);
        });
        egui::Panel::left("controls")
            .resizable(true)
            .default_size(300.0)
            .show(ui, |ui| {
                let pressed = egui::ScrollArea::vertical()
                    .show(ui, |ui| {
                        controls::show(ui, &mut self.edited, &mut self.panel, &snapshot)
                    })
                    .inner;
                if let Some(action) = pressed {
                    self.carry_out(action);
                }
            });
        egui::Panel::right("accounting")
            .resizable(true)
            .default_size(330.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| self.accounting(ui, &snapshot));
            });
        let your_app = self.panel.your_app;
        egui::CentralPanel::default().show(ui, |ui| {
            // Plots take the width they are given: keep it the panel's, never wider.
            ui.set_max_width(ui.available_width());
            if !your_app && self.centre == Centre::Compare {
                self.centre = Centre::Timeline;
            }
            ui.horizontal(|ui| {
                ui.selectable_value(&mut self.centre, Centre::Timeline, "Timeline");
                ui.selectable_value(&mut self.centre, Centre::WhatIf, "What if (virtual time)");
                if your_app {
                    ui.selectable_value(&mut self.centre, Centre::Compare, "Compare runs");
                }
            });
            egui::ScrollArea::vertical()
                .auto_shrink(false)
                .show(ui, |ui| match self.centre {
                    Centre::Timeline if your_app => self.your_app_timeline(ui, &snapshot),
                    Centre::Timeline => self.timeline(ui, &snapshot, &window),
                    Centre::WhatIf => {
                        let pressed = whatif::show(ui, &snapshot, &mut self.what_if, &self.edited);
                        if let Some(action) = pressed {
                            self.carry_out_what_if(action);
                        }
                    }
                    Centre::Compare => self.compare(ui, &snapshot),
                });
        });

        self.maybe_send();
        if let RunnerState::ShuttingDown { .. } = snapshot.phase {
            // The grace countdown moves every frame, not only on new snapshots.
            ui.ctx().request_repaint_after(Duration::from_millis(50));
        }
        self.record_frame(started.elapsed());
    }

    /// The right panel: the accounting (or the user's app's counts), the inference
    /// device, a recent trace, and the settings as code.
    fn accounting(&mut self, ui: &mut egui::Ui, snapshot: &Snapshot) {
        if self.panel.your_app {
            let app = snapshot.app.as_deref();
            your_app::counters::show(ui, app);
            ui.separator();
            trace::show(ui, app.and_then(|a| a.recent_trace.as_deref()));
        } else {
            counters::show(ui, snapshot, &mut self.price_per_million);
            ui.separator();
            inference::show(ui, snapshot, &mut self.images);
            ui.separator();
            trace::show(ui, snapshot.recent_trace.as_ref());
        }
        ui.separator();
        copy_as_code::show(ui, &self.edited, &mut self.code_kind);
    }

    /// The queue, the exports and the shutdown timeline on one time axis.
    fn timeline(&mut self, ui: &mut egui::Ui, snapshot: &Snapshot, window: &TimeWindow) {
        ui.label(
            egui::RichText::new(
                "Spans wait in the queue, leave in export batches, and arrive at the \
                 backend. Red is lost. One time axis (seconds) for all three.",
            )
            .italics(),
        );
        self.zoom_line(ui);
        queue::show(ui, snapshot, window, &mut self.zoom);
        exports::show(ui, snapshot, window, &mut self.zoom);
        shutdown_timeline::show(ui, snapshot, window, &mut self.zoom);
    }

    /// The same places for the user's app: its queue (an estimate), what arrived from it,
    /// its shutdown, on its own time axis (seconds since it started), and its output.
    fn your_app_timeline(&mut self, ui: &mut egui::Ui, snapshot: &Snapshot) {
        let app = snapshot.app.as_deref();
        ui.label(
            egui::RichText::new(
                "Your app, a real process: a real SIGTERM, a real SIGKILL at the grace \
                 period's end, and what its SDK delivered to gracetrace's collector. One \
                 time axis: seconds since the app started.",
            )
            .italics(),
        );
        self.zoom_line(ui);
        let report = app.and_then(|a| a.report.as_deref());
        let window = self.zoom.apply(report.map_or_else(
            || TimeWindow::for_app(&ProbeReport::default()),
            TimeWindow::for_app,
        ));
        if let Some(app) = app.filter(|a| a.url.is_some()) {
            your_app::requests::show(ui, app, &window, &mut self.zoom);
            if let Some(report) = report.filter(|r| r.load.is_some()) {
                your_app::latency::show(ui, report, &window, &mut self.zoom);
                your_app::lost::show(ui, report);
            }
            ui.separator();
        }
        your_app::queue::show(ui, app);
        your_app::exports::show(ui, report, &window, &mut self.zoom);
        your_app::timeline::show(ui, app, &window, &mut self.zoom);
        your_app::log::show(ui, app);
    }

    /// The compare panel: runs start with the settings on screen (an edit still waiting
    /// goes first), never beside your app or another comparison.
    fn compare(&mut self, ui: &mut egui::Ui, snapshot: &Snapshot) {
        let app_alive = snapshot.app.as_ref().is_some_and(|a| {
            matches!(
                a.phase,
                AppPhase::Starting | AppPhase::Running | AppPhase::ShuttingDown
            )
        });
        let comparing = snapshot.compare.as_ref().is_some_and(|c| !c.done);
        let busy = match (app_alive, comparing) {
            (true, _) => Some("Your app is running: shut it down first (its port is taken)."),
            (false, true) => Some("Wait for the comparison's last run to end."),
            (false, false) => None,
        };
        let given = (&self.edited, &self.panel.app);
        let view = snapshot.compare.as_deref();
        if let Some(text) = your_app::compare::show(ui, &mut self.compare, view, given, busy) {
            self.send_edits(true);
            self.send(Command::Compare(self.panel.app.clone(), text));
        }
    }

    /// Where the time plots are (a pinned range, or following the data), and how to move.
    fn zoom_line(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| match self.zoom.pinned {
            Some((from, to)) => {
                ui.label(format!("Showing {from:.1} s to {to:.1} s."));
                if ui.button("Follow live").clicked() {
                    self.zoom.pinned = None;
                }
            }
            None => {
                ui.weak(
                    "Drag a plot to pan, ctrl+wheel to zoom; double-click to follow live again.",
                );
            }
        });
    }

    fn record_frame(&mut self, took: Duration) {
        if self.frame_ms.len() == FRAME_HISTORY {
            self.frame_ms.pop_front();
        }
        self.frame_ms.push_back(took.as_secs_f32() * 1000.0);
        // GRACETRACE_FRAME_STATS=1 prints the statistics every 5 s, for measuring.
        if self.frames_logged.elapsed() >= Duration::from_secs(5)
            && std::env::var_os("GRACETRACE_FRAME_STATS").is_some()
            && let Some((p50, p99)) = self.frame_stats()
        {
            self.frames_logged = Instant::now();
            eprintln!(
                "gracetrace: frame build time over the last {} frames: median {p50:.2} ms, p99 {p99:.2} ms",
                self.frame_ms.len()
            );
            if let Some((w50, w99)) = quantiles(&self.whole_frame_ms) {
                eprintln!(
                    "gracetrace: eframe cpu_usage per frame: median {w50:.2} ms, p99 {w99:.2} ms"
                );
            }
        }
    }
}

impl eframe::App for GraceApp {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        // eframe's own measure of the previous frame: building the UI plus tessellating
        // and handing it to the GPU (not waiting for vsync).
        if let Some(cpu) = frame.info().cpu_usage {
            if self.whole_frame_ms.len() == FRAME_HISTORY {
                self.whole_frame_ms.pop_front();
            }
            self.whole_frame_ms.push_back(cpu * 1000.0);
        }
        self.show(ui);
    }

    fn on_exit(&mut self) {
        if self.remember_on_exit
            && let Err(error) = crate::session::live::remember(&self.edited)
        {
            eprintln!("gracetrace: {error}");
        }
    }
}
