//! The bottom line: frame time, collector address, semantics, scenario, runner (or your
//! app), and the engine's last complaint.

use eframe::egui::{self, RichText};

use super::theme;
use crate::session::live::{RunnerState, Snapshot};

/// The bottom line; `your_app`: the user's app serves, so its phase and its collector.
pub fn show(ui: &mut egui::Ui, snapshot: &Snapshot, frame: Option<(f32, f32)>, your_app: bool) {
    let report = &snapshot.report;
    ui.horizontal(|ui| {
        let app = snapshot.app.as_deref().filter(|_| your_app);
        match app {
            Some(app) => {
                ui.label(format!(
                    "your app (start {}): {}",
                    app.run,
                    app.phase.words()
                ));
                ui.separator();
                let addr = app.collector_addr.as_deref().unwrap_or("starting");
                ui.label(format!("collector {addr}"));
            }
            None => runner(ui, snapshot),
        }
        ui.separator();
        ui.label(format!("semantics {}", report.semantics));
        ui.separator();
        ui.label(format!("scenario {}", report.scenario));
        ui.separator();
        ui.label(format!("{:.1} s", report.duration_ms / 1000.0));
        ui.separator();
        match frame {
            Some((p50, p99)) => ui.label(format!("frame {p50:.1} ms (p99 {p99:.1})")),
            None => ui.label("frame -"),
        };
        if let Some(error) = &snapshot.last_error {
            ui.separator();
            ui.label(RichText::new(error).color(theme::LOST));
        }
    });
}

/// The simulated runner's phase and the session's collector.
fn runner(ui: &mut egui::Ui, snapshot: &Snapshot) {
    let phase = match &snapshot.phase {
        RunnerState::Starting => "starting".to_string(),
        RunnerState::Running => "running".to_string(),
        RunnerState::ShuttingDown { .. } => "shutting down".to_string(),
        RunnerState::Ended => "gone (exited or killed)".to_string(),
        RunnerState::Failed(why) => format!("failed: {why}"),
    };
    ui.label(format!("runner {}: {phase}", snapshot.runner_id));
    ui.separator();
    ui.label(format!(
        "collector {}",
        snapshot.collector_addr.as_deref().unwrap_or("external")
    ));
}
