//! The one time axis shared by the queue, the exports and the shutdown timeline: seconds
//! since the session's record began (the report's `*_ms` fields divided by 1000), or for
//! the user's app, since the app started (the probe report's).

use eframe::egui::Id;
use egui_plot::{Plot, PlotResponse};

use crate::record::probe::ProbeReport;
use crate::session::live::{RunnerState, Snapshot};

/// Seconds of history shown while traffic runs.
pub const LIVE_WINDOW_S: f64 = 30.0;

/// The x range every time plot shows this frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeWindow {
    pub start_s: f64,
    pub end_s: f64,
    pub now_s: f64,
}

impl TimeWindow {
    /// Live: the last 30 s. During and after a shutdown: from a few seconds before
    /// SIGTERM to the grace period's end (or the exit), so the whole sequence fits.
    pub fn for_snapshot(snapshot: &Snapshot) -> TimeWindow {
        let now_s = snapshot.report.duration_ms / 1000.0;
        let grace_s = snapshot.report.settings.shutdown.grace_ms as f64 / 1000.0;
        match (&snapshot.phase, &snapshot.last_shutdown) {
            (RunnerState::ShuttingDown { sigterm_ms }, _) => {
                let sigterm_s = sigterm_ms / 1000.0;
                TimeWindow::around(sigterm_s, (sigterm_s + grace_s).max(now_s), now_s)
            }
            (RunnerState::Ended, Some(shutdown)) => {
                let sigterm_s = shutdown.sigterm_ms / 1000.0;
                let end_ms = shutdown
                    .sigkill_ms
                    .or(shutdown.exit_ms)
                    .unwrap_or(snapshot.report.duration_ms);
                let end_s = (end_ms / 1000.0).max(sigterm_s + shutdown.grace_ms as f64 / 1000.0);
                TimeWindow::around(sigterm_s, end_s, now_s)
            }
            _ => TimeWindow::live(now_s),
        }
    }

    /// The user's app on its own clock (seconds since it started), chosen as for the
    /// simulated runner: the last 30 s while it runs, then the shutdown.
    pub fn for_app(report: &ProbeReport) -> TimeWindow {
        let p = &report.probe;
        let last_s = report.timeline.last().map_or(0.0, |s| s.t_ms) / 1000.0;
        let now_s = last_s.max(p.exit_ms.unwrap_or(0.0) / 1000.0);
        match p.sigterm_ms {
            Some(sigterm_ms) => {
                let sigterm_s = sigterm_ms / 1000.0;
                let deadline_s = sigterm_s + p.grace_ms as f64 / 1000.0;
                TimeWindow::around(sigterm_s, deadline_s.max(now_s), now_s)
            }
            None => TimeWindow::live(now_s),
        }
    }

    /// From a few seconds before SIGTERM to just past `end_s`.
    fn around(sigterm_s: f64, end_s: f64, now_s: f64) -> TimeWindow {
        TimeWindow {
            start_s: (sigterm_s - 8.0).max(0.0),
            end_s: end_s + 0.5,
            now_s,
        }
    }

    /// The last 30 s; the first 30 s fill the window from the left, then it scrolls.
    fn live(now_s: f64) -> TimeWindow {
        TimeWindow {
            start_s: (now_s - LIVE_WINDOW_S).max(0.0),
            end_s: now_s.max(LIVE_WINDOW_S),
            now_s,
        }
    }

    pub fn contains(&self, t_s: f64) -> bool {
        (self.start_s..=self.end_s).contains(&t_s)
    }
}

/// The x range the user picked by zooming or panning a time plot, as in a trace viewer:
/// while it is set, every time plot shows that range and stops following the data;
/// double-clicking a plot (or "Follow live") clears it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Zoom {
    pub pinned: Option<(f64, f64)>,
}

impl Zoom {
    /// The window to draw: the pinned range, or the one that follows the data.
    pub fn apply(&self, follow: TimeWindow) -> TimeWindow {
        match self.pinned {
            Some((start_s, end_s)) => TimeWindow {
                start_s,
                end_s,
                now_s: follow.now_s,
            },
            None => follow,
        }
    }

    /// After a plot was drawn with `drawn`'s x range: if the user dragged, scrolled or
    /// zoomed it (egui_plot applies that after our bounds), pin the new range for every
    /// time plot; a double click goes back to following.
    pub fn follow_user<R>(&mut self, response: &PlotResponse<R>, drawn: &TimeWindow) {
        if response.response.double_clicked() {
            self.pinned = None;
            return;
        }
        let bounds = response.transform.bounds();
        let (start_s, end_s) = (bounds.min()[0], bounds.max()[0]);
        let tolerance = (drawn.end_s - drawn.start_s).abs() * 1e-9;
        if (start_s - drawn.start_s).abs() > tolerance || (end_s - drawn.end_s).abs() > tolerance {
            self.pinned = Some((start_s, end_s));
        }
    }
}

/// A time plot with the shared settings: x range set in `show` (from [`Zoom::apply`]),
/// dragging, scrolling and ctrl+wheel zooming along x only (picked up by
/// [`Zoom::follow_user`]), x axis in seconds, cursor linked across plots.
pub fn plot(id: &str, height: f32) -> Plot<'static> {
    Plot::new(id)
        .height(height)
        .allow_zoom([true, false])
        .allow_drag([true, false])
        .allow_scroll([true, false])
        .allow_boxed_zoom(false)
        .allow_double_click_reset(false)
        .link_cursor(Id::unique("gracetrace-time"), [true, false])
        .y_axis_min_width(48.0)
        .x_axis_formatter(|mark, _| format!("{:.0} s", mark.value))
}

/// Three or four round marks (1, 2 or 5 times a power of ten) on a short plot's y axis,
/// where egui_plot's default (powers of ten) often leaves only the 0 labelled.
pub fn round_y_marks(input: egui_plot::GridInput) -> Vec<egui_plot::GridMark> {
    let spacer = egui_plot::uniform_grid_spacer(|input: egui_plot::GridInput| {
        let step = round_step((input.bounds.1 - input.bounds.0) / 3.5);
        [step, step * 2.0, step * 10.0]
    });
    spacer(input)
}

/// The smallest of 1, 2 or 5 times a power of ten at least `rough`.
fn round_step(rough: f64) -> f64 {
    if !(rough.is_finite() && rough > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&s| s >= rough);
    step.unwrap_or(10.0 * power)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_steps_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(round_step(0.3), 0.5);
        assert_eq!(round_step(1.0), 1.0);
        assert_eq!(round_step(13.0), 20.0);
        assert_eq!(round_step(23.4), 50.0);
        assert_eq!(round_step(51.0), 100.0);
        assert_eq!(round_step(0.0), 1.0);
    }
}
