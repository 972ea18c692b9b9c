//! The user's own app in the controls: its command line, its Start button, and what
//! became of the last Start (running where, or why it could not start).

use eframe::egui::{self, RichText};

use crate::session::your_app::{AppPhase, AppView};
use crate::ui::theme;

/// What Start does, for its tooltip.
const START_HELP: &str = "Starts the command (split into words as a shell would, without a \
     shell: quotes group words, nothing is expanded) in a process group of its own, with \
     OTEL_EXPORTER_OTLP_* pointing at a fresh collector and ENABLE_TRACING, OTEL_SAMPLE_RATE \
     and OTEL_BSP_* from these settings, as `gracetrace probe` does. Settings changed later \
     reach the app at its next Start.";

/// The section's title and the command line field.
pub fn field(ui: &mut egui::Ui, line: &mut String) {
    ui.add_space(6.0);
    ui.label(RichText::new("Your app").strong().size(15.0));
    ui.horizontal(|ui| {
        let label = ui.label("command");
        ui.add(
            egui::TextEdit::singleline(line)
                .hint_text("python3 app.py")
                .desired_width(230.0),
        )
        .labelled_by(label.id);
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
    match app.report.as_ref().map(|r| r.probe.pid) {
        Some(pid) => ui.label(format!("pid {pid}: {}", app.phase.words())),
        None => ui.label(app.phase.words()),
    };
}
