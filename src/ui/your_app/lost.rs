//! The answered requests whose trace was lost (the report's `traces` section): known once
//! the app has ended and every request has been followed to its trace, then counted
//! (complete, partial, missing, before and after SIGTERM) and listed request by request.

use eframe::egui::{self, RichText};

use crate::record::load::{LostTrace, TraceSection};
use crate::record::probe::ProbeReport;
use crate::ui::theme;

/// The list's height, in points.
const HEIGHT: f32 = 110.0;

pub fn show(ui: &mut egui::Ui, report: &ProbeReport) {
    ui.label(RichText::new("Lost traces").strong().size(15.0));
    let Some(traces) = report.traces.as_ref() else {
        ui.weak(
            "Answered requests whose trace never arrived, or arrived without its root: \
             known at the end, when the app has exited or been SIGKILLed and every request \
             is followed to its trace in the collector.",
        );
        return;
    };
    headline(ui, traces);
    if traces.lost_requests.is_empty() {
        return;
    }
    egui::ScrollArea::vertical()
        .id_salt("lost-traces")
        .max_height(HEIGHT)
        .show(ui, |ui| {
            egui::Grid::new("lost-trace-rows")
                .num_columns(4)
                .striped(true)
                .spacing([12.0, 2.0])
                .show(ui, |ui| {
                    for heading in ["request", "trace id", "scheduled", "what arrived"] {
                        ui.label(RichText::new(heading).strong());
                    }
                    ui.end_row();
                    for lost in &traces.lost_requests {
                        row(ui, lost);
                    }
                });
        });
}

/// The counts in one coloured line and one plain one.
fn headline(ui: &mut egui::Ui, t: &TraceSection) {
    if t.traceparent_ignored {
        // Nothing can be counted as lost: say why, in the colour of a problem.
        ui.label(
            RichText::new(format!(
                "Your app's spans carry none of the probe's trace ids: it does not continue \
                 the W3C traceparent (set a propagator, or instrument its HTTP server), so \
                 the traces of {} answered sampled requests cannot be found.",
                t.unknown
            ))
            .strong()
            .color(theme::LOST),
        );
        return;
    }
    let colour = if t.lost > 0 { theme::LOST } else { theme::OK };
    ui.label(
        RichText::new(format!(
            "{} of {} answered sampled requests lost their trace: {} before SIGTERM, {} after.",
            t.lost, t.answered_sampled, t.lost_before_sigterm, t.lost_after_sigterm
        ))
        .strong()
        .color(colour),
    );
    let unknown = match t.unknown {
        0 => String::new(),
        n => format!("; {n} unknown (the collector forgot older traces)"),
    };
    ui.label(format!(
        "{} sampled; {} complete, {} partial (no root), {} missing{unknown}.",
        t.sampled, t.complete, t.partial, t.missing
    ));
}

fn row(ui: &mut egui::Ui, lost: &LostTrace) {
    ui.label(format!("#{}", lost.index));
    ui.label(RichText::new(&lost.trace_id).monospace());
    ui.label(match lost.after_sigterm {
        true => "after SIGTERM",
        false => "before SIGTERM",
    });
    ui.label(match lost.spans_received {
        0 => "nothing".to_owned(),
        n => format!("{n} spans, no root"),
    });
    ui.end_row();
}
