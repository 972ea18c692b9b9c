//! Your app's span queue: inside the app's own process, where no collector can see it. In
//! its place, gracetrace's estimate (the report's `prediction`): the simulator run with the
//! app's batch settings, its SDK's rules and the traffic that arrived before SIGTERM.

use eframe::egui::{self, RichText};

use crate::record::probe::{Prediction, ProbeReport};
use crate::session::your_app::{AppPhase, AppView};
use crate::ui::theme;

pub fn show(ui: &mut egui::Ui, app: Option<&AppView>) {
    ui.horizontal_wrapped(|ui| {
        ui.label(
            RichText::new("Span queue (inside your app)")
                .strong()
                .size(15.0),
        );
        ui.label(
            "Your app's BatchSpanProcessor queue lives in its own process: no collector sees \
             it. Shown instead: gracetrace's estimate, the simulator with these batch \
             settings, your SDK's rules and the traffic that arrived before SIGTERM.",
        );
    });
    let report = app.and_then(|a| a.report.as_deref());
    let phase = app.map(|a| &a.phase);
    match (report, phase) {
        (
            Some(ProbeReport {
                prediction: Some(prediction),
                ..
            }),
            _,
        ) => estimate(ui, prediction),
        (
            Some(ProbeReport {
                prediction_error: Some(why),
                ..
            }),
            _,
        ) => {
            ui.label(RichText::new(format!("No estimate: {why}.")).color(theme::FAILED));
        }
        (_, Some(AppPhase::Counting | AppPhase::Estimating)) => {
            ui.label("Estimating: a 1.5 s calibration run, then the simulator...");
        }
        _ => {
            ui.weak("The estimate comes once your app has had its SIGTERM and ended.");
        }
    }
}

/// The estimate's numbers: the queue's peak against its limit, where the lost spans were,
/// and beside them what was observed.
fn estimate(ui: &mut egui::Ui, prediction: &Prediction) {
    let (i, n) = (&prediction.inputs, &prediction.predicted);
    let fill = n.peak_queue as f32 / i.max_queue_size.max(1) as f32;
    ui.add(
        egui::ProgressBar::new(fill.min(1.0))
            .text(format!(
                "estimated peak queue {} of max_queue_size {}",
                n.peak_queue, i.max_queue_size
            ))
            .fill(if n.dropped_queue_full > 0 {
                theme::LOST
            } else {
                theme::QUEUE
            }),
    );
    egui::Grid::new("app-estimate")
        .num_columns(2)
        .show(ui, |ui| {
            let rows = [
                (
                    "traffic measured",
                    format!(
                        "{:.0} spans/s, {:.1} spans/trace",
                        i.spans_per_s, i.spans_per_trace
                    ),
                ),
                (
                    "rules",
                    format!("{} (from the {})", i.semantics, i.semantics_from),
                ),
                ("dropped (queue full)", n.dropped_queue_full.to_string()),
                (
                    "lost at SIGKILL",
                    format!(
                        "{} ({} queued, {} in an export)",
                        n.lost_at_kill, n.lost_queued, n.lost_in_export
                    ),
                ),
                (
                    "received of ended",
                    format!("{} of {}", n.received, n.ended),
                ),
            ];
            for (name, value) in rows {
                ui.label(name);
                ui.label(RichText::new(value).monospace());
                ui.end_row();
            }
        });
    let observed = match prediction.observed_missing {
        Some(missing) => format!("observed: {missing} missing"),
        None => "observed: unknown (your app printed no `spans ended: N`)".to_owned(),
    };
    ui.label(
        RichText::new(format!(
            "predicted {} lost at SIGKILL, {observed}",
            n.lost_at_kill
        ))
        .strong(),
    );
    for caveat in &prediction.caveats {
        ui.weak(format!("- {caveat}"));
    }
}
