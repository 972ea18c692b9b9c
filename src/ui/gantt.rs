//! What the two shutdown charts (the simulated runner's and the user's app's) share: named
//! lanes on the y axis, top to bottom, and labelled vertical lines for SIGTERM, exit and
//! SIGKILL above them.

use eframe::egui::{self, Color32};
use egui_plot::{LineStyle, PlotPoint, PlotUi, Text, VLine};

use super::theme;

/// Lane names from top to bottom (the plot's y grows upwards, so they are placed reversed).
#[derive(Clone, Copy)]
pub struct Lanes(pub &'static [&'static str]);

impl Lanes {
    /// The y of a lane (the bottom lane's for an unknown name).
    pub fn y(self, name: &str) -> f64 {
        let index = self.0.iter().position(|l| *l == name).unwrap_or(0);
        (self.0.len() - 1 - index) as f64
    }

    /// The lane's name at a y-axis mark, empty between lanes.
    pub fn label(self, value: f64) -> String {
        let index = self.0.len() as f64 - 1.0 - value;
        if (index - index.round()).abs() < 1e-6 && (0.0..self.0.len() as f64).contains(&index) {
            self.0[index.round() as usize].to_string()
        } else {
            String::new()
        }
    }

    /// The y range that shows every lane, with room above for the lines' names.
    pub fn bounds(self) -> std::ops::RangeInclusive<f64> {
        -0.6..=self.0.len() as f64 - 0.1
    }

    /// A vertical line at `x` with its name written above the lanes, on the `anchor` side.
    pub fn labelled_line(
        self,
        plot: &mut PlotUi<'_>,
        name: &str,
        x: f64,
        (color, width): (Color32, f32),
        anchor: egui::Align2,
    ) {
        plot.vline(VLine::new(name, x).color(color).width(width));
        plot.text(
            Text::new("", PlotPoint::new(x, self.0.len() as f64 - 0.45), name)
                .anchor(anchor)
                .color(color),
        );
    }

    /// The SIGTERM line, labelled above the lanes on its left, so that an exit right after
    /// it (labelled on its right) stays readable.
    pub fn sigterm_line(self, plot: &mut PlotUi<'_>, sigterm: f64) {
        let left_of_it = egui::Align2::RIGHT_BOTTOM;
        self.labelled_line(plot, "SIGTERM", sigterm, (theme::SIGTERM, 2.0), left_of_it);
    }

    /// The SIGKILL or the exit line (when each came, if it did); while the grace
    /// period runs, SIGKILL due (dashed) and now.
    pub fn end_lines(
        self,
        plot: &mut PlotUi<'_>,
        (sigkill, exit): (Option<f64>, Option<f64>),
        deadline: f64,
        now_s: f64,
    ) {
        match (sigkill, exit) {
            (Some(kill), _) => {
                let right = egui::Align2::RIGHT_BOTTOM;
                self.labelled_line(plot, "SIGKILL", kill, (theme::LOST, 2.5), right);
            }
            (None, Some(exit)) => {
                let left = egui::Align2::LEFT_BOTTOM;
                self.labelled_line(plot, "exit", exit, (theme::EXIT, 2.0), left);
            }
            (None, None) => {
                plot.vline(
                    VLine::new("SIGKILL due", deadline)
                        .color(theme::LOST)
                        .style(LineStyle::dashed_loose()),
                );
                plot.vline(VLine::new("now", now_s).color(Color32::GRAY));
            }
        }
    }
}
