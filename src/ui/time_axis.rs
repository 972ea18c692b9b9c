//! The one time axis shared by the queue, the exports and the shutdown timeline: seconds
//! since the session's record began (the report's `*_ms` fields divided by 1000).

use eframe::egui::Id;
use egui_plot::Plot;

use super::engine::{Phase, Snapshot};

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
        let around = |sigterm_s: f64, end_s: f64| TimeWindow {
            start_s: (sigterm_s - 8.0).max(0.0),
            end_s: end_s + 0.5,
            now_s,
        };
        match (&snapshot.phase, &snapshot.last_shutdown) {
            (Phase::ShuttingDown { sigterm_ms }, _) => {
                let sigterm_s = sigterm_ms / 1000.0;
                around(sigterm_s, (sigterm_s + grace_s).max(now_s))
            }
            (Phase::Ended, Some(shutdown)) => {
                let sigterm_s = shutdown.sigterm_ms / 1000.0;
                let end_ms = shutdown
                    .sigkill_ms
                    .or(shutdown.exit_ms)
                    .unwrap_or(snapshot.report.duration_ms);
                around(
                    sigterm_s,
                    (end_ms / 1000.0).max(sigterm_s + shutdown.grace_ms as f64 / 1000.0),
                )
            }
            _ => TimeWindow {
                start_s: (now_s - LIVE_WINDOW_S).max(0.0),
                // The first 30 s fill the window from the left, then it scrolls.
                end_s: now_s.max(LIVE_WINDOW_S),
                now_s,
            },
        }
    }

    pub fn contains(&self, t_s: f64) -> bool {
        (self.start_s..=self.end_s).contains(&t_s)
    }
}

/// A time plot with the shared settings: fixed x range (set in `show`), no zooming or
/// dragging (the window follows the data), x axis in seconds, cursor linked across plots.
pub fn plot(id: &str, height: f32) -> Plot<'static> {
    Plot::new(id)
        .height(height)
        .allow_zoom(false)
        .allow_drag(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .allow_double_click_reset(false)
        .link_cursor(Id::unique("gracetrace-time"), [true, false])
        .y_axis_min_width(48.0)
        .x_axis_formatter(|mark, _| format!("{:.0} s", mark.value))
}
