//! The user's own app in the controls: its command line, the URL its traffic goes to (for
//! a server), its Start button, and what became of the last Start (running where, or why
//! it could not start).

use eframe::egui::{self, RichText};

use crate::session::your_app::{AppPhase, AppStart, AppView};
use crate::ui::theme;

/// What Start does, for its tooltip.
const START_HELP: &str = "Starts the command (split into words as a shell would, without a \
     shell: quotes group words, nothing is expanded) in a process group of its own, with \
     OTEL_EXPORTER_OTLP_* pointing at a fresh collector and ENABLE_TRACING, OTEL_SAMPLE_RATE \
     and OTEL_BSP_* from these settings, as `gracetrace probe` does. Settings changed later \
     reach the app at its next Start. With a URL, once the app answers there (a TCP \
     connection, or 2xx on the ready path) the scenario's traffic is sent to it open loop, \
     each request with a traceparent, as `gracetrace probe --url` does.";

/// What the URL is for, for its tooltip.
const URL_HELP: &str = "Optional: http://host:port/path of your server. The probe sends it \
     the traffic of the Traffic sliders (rate, bursts, duration, seed), follows each request \
     to its trace, and sends SIGTERM when the traffic ends (or at shutdown.at_s, or at \
     Shutdown). Empty: your app makes its own traffic.";

/// The section's title, the command line, and for a server its URL and ready path.
pub fn field(ui: &mut egui::Ui, start: &mut AppStart) {
    ui.add_space(6.0);
    ui.label(RichText::new("Your app").strong().size(15.0));
    egui::Grid::new("your-app-fields")
        .num_columns(2)
        .spacing([6.0, 4.0])
        .show(ui, |ui| {
            let fields = [
                ("command", &mut start.line, "python3 app.py", None),
                (
                    "URL",
                    &mut start.url,
                    "http://127.0.0.1:8000/generate (optional)",
                    Some(URL_HELP),
                ),
                (
                    "ready path",
                    &mut start.ready_path,
                    "/health (optional: else a TCP connect)",
                    None,
                ),
            ];
            for (name, text, hint, help) in fields {
                let label = ui.label(name);
                let edit = ui
                    .add(
                        egui::TextEdit::singleline(text)
                            .hint_text(hint)
                            .desired_width(230.0),
                    )
                    .labelled_by(label.id);
                if let Some(help) = help {
                    edit.on_hover_text(help);
                }
                ui.end_row();
            }
        });
}

/// The Start button, enabled unless the app started last is still alive; true when pressed.
pub fn start_button(ui: &mut egui::Ui, app: Option<&AppView>) -> bool {
    let alive = app.is_some_and(|a| {
        matches!(
            a.phase,
            AppPhase::Starting | AppPhase::Running | AppPhase::ShuttingDown
        )
    });
    ui.add_enabled(!alive, egui::Button::new(RichText::new("Start").strong()))
        .on_hover_text(START_HELP)
        .clicked()
}

/// One line under the buttons: where the app runs, or why it could not start.
pub fn status(ui: &mut egui::Ui, app: Option<&AppView>) {
    let Some(app) = app else {
        ui.weak("Type your app's command line and press Start.");
        return;
    };
    if let AppPhase::Failed(why) = &app.phase {
        ui.label(RichText::new(why).color(theme::LOST));
        return;
    }
    let waiting = app
        .url
        .as_ref()
        .filter(|_| app.phase == AppPhase::Running)
        .filter(|_| app.report.as_ref().is_some_and(|r| r.load.is_none()));
    let words = match waiting {
        Some(url) => format!("running; waiting for {url} to answer"),
        None => app.phase.words(),
    };
    match app.report.as_ref().map(|r| r.probe.pid) {
        Some(pid) => ui.label(format!("pid {pid}: {words}")),
        None => ui.label(words),
    };
}
