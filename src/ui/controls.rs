//! The left panel: every knob a person tunes, applied live. Each control's tooltip names
//! its environment variable, range and meaning from the knob table, so the window teaches
//! the same names a deployment uses.

use std::path::PathBuf;

use eframe::egui::{self, Color32, RichText, Slider, SliderClamping, emath};

use super::your_app;
use crate::config::knobs;
use crate::config::{
    Faults, HandleExit, Platform, Semantics, Settings, ShutdownSettings, Waiting, WorkloadKind,
    WorkloadSettings,
};
use crate::session::live::{RunnerState, Snapshot};
use crate::session::your_app::{AppPhase, AppStart, AppView};

/// What a press in the panel asks the app to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// The platform's SIGTERM now.
    Shutdown,
    /// A fresh runner after the last one ended.
    NewRunner,
    /// Load this scenario file and apply it.
    Open(PathBuf),
    /// Write the edited settings to this scenario file.
    Save(PathBuf),
    /// Who serves: the user's app (true) or the simulated runner.
    ServeApp(bool),
    /// Start the user's app with this command line (and traffic to its URL, if any).
    StartApp(AppStart),
}

/// The panel's own state, besides the settings it edits.
#[derive(Debug, Default)]
pub struct Panel {
    /// The scenario file field of the Open/Save row.
    pub scenario_path: String,
    /// Why the edited settings cannot be applied, shown under the controls.
    pub invalid: Option<String>,
    /// A note about a value the controls corrected (e.g. batch lowered with the queue).
    pub note: Option<String>,
    /// What the last Open or Save did.
    pub file_message: Option<String>,
    /// Why the engine refused the last change: the controls went back to the settings
    /// in force, and say so here until the next change is applied.
    pub refused: Option<String>,
    /// "served by your app": the user's own app serves, and the views show it.
    pub your_app: bool,
    /// The app's command line, URL and ready path, as typed.
    pub app: AppStart,
}

/// The tooltip of a knob: its environment variable, its range and its help line.
pub fn tip(key: &str) -> String {
    match knobs::find(key) {
        Some(knob) => format!(
            "{}\nenv: {}\nrange: {}\n{}",
            knob.key,
            knob.env.unwrap_or("(none: scenario TOML or --set only)"),
            knob.range(),
            knob.help
        ),
        None => key.to_string(),
    }
}

/// A slider over the knob's whole range from the knob table, logarithmic where the range
/// spans decades, so that any value the knob accepts (a loaded scenario's, a typed one)
/// is shown and run as it is: nothing is clamped behind the user's back.
fn knob_slider<'a, N: emath::Numeric>(value: &'a mut N, key: &str) -> Slider<'a> {
    let bounds = knobs::find(key).map(|k| &k.bounds);
    let (mut min, max) = bounds.and_then(|b| b.numeric()).unwrap_or((0.0, 1.0));
    // An optional knob's "none" shows as 0 on its slider (e.g. no ingestion limit).
    if matches!(
        bounds,
        Some(knobs::Bounds::OptionalInt { .. } | knobs::Bounds::OptionalFloat { .. })
    ) {
        min = 0.0;
    }
    let smallest = if N::INTEGRAL { 1.0 } else { 0.001 };
    Slider::new(value, N::from_f64(min)..=N::from_f64(max))
        .logarithmic(max / min.max(smallest) >= 100.0)
        .clamping(SliderClamping::Never)
}

fn section(ui: &mut egui::Ui, title: &str) {
    ui.add_space(6.0);
    ui.label(RichText::new(title).strong().size(15.0));
}

/// Draws every control, editing `edited` in place; returns what a pressed button asks for.
pub fn show(
    ui: &mut egui::Ui,
    edited: &mut Settings,
    panel: &mut Panel,
    snapshot: &Snapshot,
) -> Option<Action> {
    ui.spacing_mut().slider_width = 140.0;
    // The buttons, the file row and any complaint first: always in view, however long
    // the panel below them.
    let app = snapshot.app.as_deref();
    let buttons = match panel.your_app {
        true => app_buttons(ui, panel, app),
        false => shutdown_buttons(ui, &snapshot.phase),
    };
    let pressed = buttons.or(scenario(ui, panel));
    for complaint in [&panel.invalid, &panel.refused].into_iter().flatten() {
        ui.label(RichText::new(complaint).color(Color32::from_rgb(230, 80, 80)));
    }
    tracing(ui, edited);
    batch(ui, edited, panel);
    let served = traffic(ui, &mut edited.workload, panel);
    faults(ui, &mut edited.collector);
    shutdown(ui, &mut edited.shutdown);
    pressed.or(served)
}

fn tracing(ui: &mut egui::Ui, s: &mut Settings) {
    section(ui, "Tracing");
    ui.checkbox(&mut s.tracing.enabled, "tracing on")
        .on_hover_text(tip("tracing.enabled"));
    ui.add_enabled(
        s.tracing.enabled,
        knob_slider(&mut s.tracing.sample_rate, "tracing.sample_rate")
            .smallest_positive(0.001)
            .max_decimals(3)
            .text("sample rate"),
    )
    .on_hover_text(tip("tracing.sample_rate"));
    egui::ComboBox::from_label("semantics")
        .selected_text(s.tracing.semantics.name())
        .show_ui(ui, |ui| {
            for semantics in Semantics::ALL {
                ui.selectable_value(&mut s.tracing.semantics, semantics, semantics.name());
            }
        })
        .response
        .on_hover_text(tip("tracing.semantics"));
}

fn batch(ui: &mut egui::Ui, s: &mut Settings, panel: &mut Panel) {
    section(ui, "BatchSpanProcessor");
    ui.add(knob_slider(&mut s.batch.max_queue_size, "batch.max_queue_size").text("max_queue_size"))
        .on_hover_text(tip("batch.max_queue_size"));
    // Both SDKs reject batch > queue; the slider cannot go there, and a queue shrunk
    // under the batch pulls the batch down with it (said so below).
    panel.note = s.batch.fit_batch_to_queue();
    let queue = s.batch.max_queue_size.max(1);
    ui.add(
        Slider::new(&mut s.batch.max_export_batch_size, 1..=queue)
            .logarithmic(true)
            .text("max_export_batch_size"),
    )
    .on_hover_text(tip("batch.max_export_batch_size"));
    ui.add(
        knob_slider(&mut s.batch.schedule_delay_ms, "batch.schedule_delay_ms")
            .suffix(" ms")
            .text("schedule_delay"),
    )
    .on_hover_text(tip("batch.schedule_delay_ms"));
    ui.add(
        knob_slider(&mut s.batch.export_timeout_ms, "batch.export_timeout_ms")
            .suffix(" ms")
            .text("export_timeout"),
    )
    .on_hover_text(tip("batch.export_timeout_ms"));
    if let Some(note) = &panel.note {
        ui.label(RichText::new(note).color(Color32::from_rgb(230, 160, 40)));
    }
}

/// The "served by" choice: the two simulated kinds, or the user's own app. Returns the
/// change of who serves, when there was one.
fn served_by(ui: &mut egui::Ui, w: &mut WorkloadSettings, your_app: bool) -> Option<Action> {
    let mut chose = None;
    ui.horizontal_wrapped(|ui| {
        ui.label("served by").on_hover_text(tip("workload.kind"));
        let kinds = [
            (
                WorkloadKind::Synthetic,
                "synthetic",
                "a sleep per step: fast and exact, for high rates",
            ),
            (
                WorkloadKind::Model,
                "model (real inference)",
                "the glyph diffusion model on the device shown at the right",
            ),
        ];
        for (kind, name, help) in kinds {
            if ui
                .radio(!your_app && w.kind == kind, name)
                .on_hover_text(help)
                .clicked()
            {
                w.kind = kind;
                chose = Some(Action::ServeApp(false));
            }
        }
        let help = "your own app, started from a command line under the platform's SIGTERM \
                    and SIGKILL, exporting to gracetrace's collector";
        if ui.radio(your_app, "your app").on_hover_text(help).clicked() {
            chose = Some(Action::ServeApp(true));
        }
    });
    chose.filter(|choice| *choice != Action::ServeApp(your_app))
}

fn traffic(ui: &mut egui::Ui, w: &mut WorkloadSettings, panel: &mut Panel) -> Option<Action> {
    section(ui, "Traffic");
    let served = served_by(ui, w, panel.your_app);
    if let Some(Action::ServeApp(on)) = served {
        panel.your_app = on;
    }
    // With a URL the probe sends these arrivals to your app, as `probe --url` does.
    let to_url = !panel.app.url.trim().is_empty();
    if panel.your_app {
        ui.weak(match to_url {
            true => {
                "Your app's command line, URL, Start and Shutdown are at the top of this \
                 panel. The sliders below shape the traffic sent to its URL (SIGTERM at \
                 `shutdown.at_s`, else when it ends, or at Shutdown); they reach it at its \
                 next Start."
            }
            false => {
                "Your app's command line, Start and Shutdown are at the top of this panel. \
                 The sliders below shape only the simulated traffic, paused while your app \
                 serves; give your app a URL to send it this traffic."
            }
        });
    }
    ui.add_enabled_ui(!panel.your_app || to_url, |ui| simulated_traffic(ui, w));
    served
}

fn simulated_traffic(ui: &mut egui::Ui, w: &mut WorkloadSettings) {
    ui.add(
        knob_slider(&mut w.rate_per_s, "workload.rate_per_s")
            .max_decimals(1)
            .suffix(" req/s")
            .text("rate"),
    )
    .on_hover_text(tip("workload.rate_per_s"));
    ui.add(
        knob_slider(&mut w.burst_every_s, "workload.burst_every_s")
            .max_decimals(1)
            .suffix(" s")
            .text("burst every"),
    )
    .on_hover_text(tip("workload.burst_every_s"));
    ui.add(knob_slider(&mut w.burst_size, "workload.burst_size").text("burst size"))
        .on_hover_text(tip("workload.burst_size"));
    ui.add(knob_slider(&mut w.concurrency, "workload.concurrency").text("concurrency"))
        .on_hover_text(tip("workload.concurrency"));
    // The synthetic request sleeps this long; the model's request takes as long as the
    // model does, so the slider would do nothing there.
    let synthetic = w.kind == WorkloadKind::Synthetic;
    ui.add_enabled(
        synthetic,
        knob_slider(&mut w.inference_ms, "workload.inference_ms")
            .max_decimals(0)
            .suffix(" ms")
            .text("inference"),
    )
    .on_hover_text(tip("workload.inference_ms"))
    .on_disabled_hover_text(
        "the model serves: a request takes as long as its inference steps do on the device",
    );
    ui.add(knob_slider(&mut w.steps, "workload.steps").text("steps"))
        .on_hover_text(tip("workload.steps"));
    ui.add(knob_slider(&mut w.extra_spans, "workload.extra_spans").text("extra spans"))
        .on_hover_text(tip("workload.extra_spans"));
    ui.checkbox(
        &mut w.flush_every_request,
        "flush in every request (anti-pattern)",
    )
    .on_hover_text(tip("workload.flush_every_request"));
}

fn faults(ui: &mut egui::Ui, f: &mut Faults) {
    section(ui, "Backend faults");
    ui.add(
        knob_slider(&mut f.latency_ms, "collector.latency_ms")
            .suffix(" ms")
            .text("latency"),
    )
    .on_hover_text(tip("collector.latency_ms"));
    ui.add(
        knob_slider(&mut f.jitter_ms, "collector.jitter_ms")
            .suffix(" ms")
            .text("jitter"),
    )
    .on_hover_text(tip("collector.jitter_ms"));
    ui.add(
        knob_slider(&mut f.error_rate, "collector.error_rate")
            .logarithmic(false)
            .max_decimals(2)
            .text("error rate"),
    )
    .on_hover_text(tip("collector.error_rate"));
    egui::ComboBox::from_label("error status")
        .selected_text(f.error_status.to_string())
        .show_ui(ui, |ui| {
            for status in [429u16, 500, 502, 503, 504] {
                ui.selectable_value(&mut f.error_status, status, status.to_string());
            }
        })
        .response
        .on_hover_text(tip("collector.error_status"));
    ui.checkbox(&mut f.outage, "outage (connection refused)")
        .on_hover_text(tip("collector.outage"));
    ui.checkbox(&mut f.black_hole, "black hole (never answers)")
        .on_hover_text(tip("collector.black_hole"));
    let mut limit = f.ingest_limit_spans_per_s.unwrap_or(0);
    ui.add(
        knob_slider(&mut limit, "collector.ingest_limit_spans_per_s")
            .suffix(" spans/s")
            .text("ingestion limit (0: none)"),
    )
    .on_hover_text(tip("collector.ingest_limit_spans_per_s"));
    f.ingest_limit_spans_per_s = (limit > 0).then_some(limit);
}

fn shutdown(ui: &mut egui::Ui, s: &mut ShutdownSettings) {
    section(ui, "Shutdown");
    platform(ui, s);
    let custom = s.platform == Platform::Custom;
    ui.add_enabled(
        custom,
        knob_slider(&mut s.grace_ms, "shutdown.grace_ms")
            .suffix(" ms")
            .text("grace"),
    )
    .on_hover_text(tip("shutdown.grace_ms"));
    ui.add(
        knob_slider(&mut s.flush_timeout_ms, "shutdown.flush_timeout_ms")
            .suffix(" ms")
            .text("force_flush timeout"),
    )
    .on_hover_text(tip("shutdown.flush_timeout_ms"));
    handle_exit(ui, &mut s.handle_exit);
    waiting(ui, &mut s.waiting);
    ui.add(
        knob_slider(&mut s.routing_lag_ms, "shutdown.routing_lag_ms")
            .suffix(" ms")
            .text("routing lag"),
    )
    .on_hover_text(tip("shutdown.routing_lag_ms"));
}

/// What SIGTERM does with requests waiting for a slot.
fn waiting(ui: &mut egui::Ui, waiting: &mut Waiting) {
    const RETURN: &str = "return: the platform takes them back";
    const SERVE: &str = "serve: the runner drains its backlog";
    egui::ComboBox::from_label("waiting")
        .selected_text(match waiting {
            Waiting::Return => RETURN,
            Waiting::Serve => SERVE,
        })
        .show_ui(ui, |ui| {
            ui.selectable_value(waiting, Waiting::Return, RETURN);
            ui.selectable_value(waiting, Waiting::Serve, SERVE);
        })
        .response
        .on_hover_text(tip("shutdown.waiting"));
}

/// The platform preset; choosing one sets its grace period and routing lag, as the
/// `shutdown.platform` knob does.
fn platform(ui: &mut egui::Ui, s: &mut ShutdownSettings) {
    let before = s.platform;
    egui::ComboBox::from_label("platform")
        .selected_text(s.platform.name())
        .show_ui(ui, |ui| {
            for platform in Platform::ALL {
                let label = match platform.grace_ms() {
                    Some(ms) => format!("{} ({} s)", platform.name(), ms / 1000),
                    None => "custom".to_string(),
                };
                ui.selectable_value(&mut s.platform, platform, label);
            }
        })
        .response
        .on_hover_text(tip("shutdown.platform"));
    if s.platform != before {
        let chosen = s.platform;
        s.platform = before;
        s.set_platform(chosen);
    }
}

fn handle_exit(ui: &mut egui::Ui, handle_exit: &mut HandleExit) {
    const NONE: &str = "none: let requests finish";
    const CANCEL: &str = "cancel in-flight requests";
    egui::ComboBox::from_label("handle_exit")
        .selected_text(match handle_exit {
            HandleExit::None => NONE,
            HandleExit::Cancel => CANCEL,
        })
        .show_ui(ui, |ui| {
            ui.selectable_value(handle_exit, HandleExit::None, NONE);
            ui.selectable_value(handle_exit, HandleExit::Cancel, CANCEL);
        })
        .response
        .on_hover_text(tip("shutdown.handle_exit"));
}

/// The user's app's rows: its command line, Start, the same Shutdown button, its status.
fn app_buttons(ui: &mut egui::Ui, panel: &mut Panel, app: Option<&AppView>) -> Option<Action> {
    your_app::command::field(ui, &mut panel.app);
    let running = app.is_some_and(|a| a.phase == AppPhase::Running);
    let mut pressed = None;
    ui.horizontal(|ui| {
        if your_app::command::start_button(ui, app) {
            pressed = Some(Action::StartApp(panel.app.clone()));
        }
        let help = "Sends your app a real SIGTERM now; a real SIGKILL to its whole process \
                    group follows after the grace period unless it exits first.";
        if shutdown_button(ui, running, help) {
            pressed = Some(Action::Shutdown);
        }
    });
    your_app::command::status(ui, app);
    pressed
}

/// The red Shutdown button, the same for the simulated runner and the user's app; true
/// when pressed.
fn shutdown_button(ui: &mut egui::Ui, enabled: bool, help: &str) -> bool {
    let button = egui::Button::new(RichText::new("Shutdown (SIGTERM)").strong())
        .fill(Color32::from_rgb(120, 40, 40));
    ui.add_enabled(enabled, button)
        .on_hover_text(help)
        .clicked()
}

fn shutdown_buttons(ui: &mut egui::Ui, phase: &RunnerState) -> Option<Action> {
    let mut pressed = None;
    ui.horizontal(|ui| {
        let help = "Sends the platform's SIGTERM now; SIGKILL follows after the grace period \
                    unless the runner exits first.";
        if shutdown_button(ui, *phase == RunnerState::Running, help) {
            pressed = Some(Action::Shutdown);
        }
        if ui
            .add_enabled(
                *phase == RunnerState::Ended,
                egui::Button::new("Start new runner"),
            )
            .on_hover_text("A fresh runner (new id) on the same collector and time axis.")
            .clicked()
        {
            pressed = Some(Action::NewRunner);
        }
    });
    pressed
}

fn scenario(ui: &mut egui::Ui, panel: &mut Panel) -> Option<Action> {
    section(ui, "Scenario");
    ui.horizontal(|ui| {
        let label = ui.label("file");
        ui.add(
            egui::TextEdit::singleline(&mut panel.scenario_path)
                .hint_text("assets/scenarios/burst-overflow.toml")
                .desired_width(230.0),
        )
        .labelled_by(label.id);
    });
    let path = PathBuf::from(panel.scenario_path.trim());
    let pressed = ui
        .horizontal(|ui| {
            if ui.button("Open").clicked() {
                return Some(Action::Open(path.clone()));
            }
            ui.button("Save")
                .clicked()
                .then(|| Action::Save(path.clone()))
        })
        .inner;
    if let Some(message) = &panel.file_message {
        ui.label(message);
    }
    pressed
}
