//! The SIGTERM line, and the exit or SIGKILL line, on your app's plots of values over time
//! (requests, latency), each named at the plot's top; while the grace period runs, where
//! SIGKILL is due (dashed).

use eframe::egui::{self, Color32};
use egui_plot::{LineStyle, PlotPoint, PlotUi, Text, VLine};

use crate::record::probe::ProbeSection;
use crate::ui::theme;

/// Draws the lines of `p`'s signals, their names at `top` (the plot's upper y bound).
pub fn lines(plot: &mut PlotUi<'_>, p: &ProbeSection, top: f64) {
    let s = |ms: f64| ms / 1000.0;
    let Some(sigterm_ms) = p.sigterm_ms else {
        return;
    };
    let left = egui::Align2::RIGHT_TOP;
    named(
        plot,
        "SIGTERM",
        s(sigterm_ms),
        top,
        (theme::SIGTERM, 2.0),
        left,
    );
    match (p.sigkill_ms, p.exit_ms) {
        (Some(kill), _) => {
            named(plot, "SIGKILL", s(kill), top, (theme::LOST, 2.5), left);
        }
        (None, Some(exit)) => {
            let right = egui::Align2::LEFT_TOP;
            named(plot, "exit", s(exit), top, (theme::EXIT, 2.0), right);
        }
        (None, None) => {
            let due = s(sigterm_ms + p.grace_ms as f64);
            plot.vline(
                VLine::new("SIGKILL due", due)
                    .color(theme::LOST)
                    .style(LineStyle::dashed_loose()),
            );
        }
    }
}

/// A vertical line at `x` with its name at the top, on the `anchor` side.
fn named(
    plot: &mut PlotUi<'_>,
    name: &str,
    x: f64,
    top: f64,
    (colour, width): (Color32, f32),
    anchor: egui::Align2,
) {
    plot.vline(VLine::new(name, x).color(colour).width(width));
    plot.text(
        Text::new("", PlotPoint::new(x, top), name)
            .anchor(anchor)
            .color(colour),
    );
}
