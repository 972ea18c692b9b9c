//! The span queue over time (the record's 10 Hz `queued` series) against the
//! max_queue_size line, with the moments spans were dropped for a full queue marked.

use eframe::egui::{self, RichText};
use egui_plot::{HLine, Legend, Line, MarkerShape, PlotPoints, Points};

use super::theme;
use super::time_axis::{self, TimeWindow, Zoom};
use crate::record::Sample;
use crate::session::live::Snapshot;

pub fn show(ui: &mut egui::Ui, snapshot: &Snapshot, window: &TimeWindow, zoom: &mut Zoom) {
    let report = &snapshot.report;
    let limit = report.settings.batch.max_queue_size as f64;
    let series: Vec<&Sample> = report
        .series
        .iter()
        .filter(|s| window.contains(s.t_ms / 1000.0))
        .collect();
    let dropped_in_window = match (series.first(), series.last()) {
        (Some(first), Some(last)) => last.dropped.saturating_sub(first.dropped),
        _ => 0,
    };
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new("Span queue").strong().size(15.0));
        ui.label(format!(
            "spans waiting in the BatchSpanProcessor (incl. the batch being exported); \
             line = max_queue_size {}",
            report.settings.batch.max_queue_size
        ));
        if dropped_in_window > 0 {
            ui.label(
                RichText::new(format!("{dropped_in_window} dropped (queue full) in view"))
                    .color(theme::LOST)
                    .strong(),
            );
        }
    });
    let queue: PlotPoints = series
        .iter()
        .map(|s| [s.t_ms / 1000.0, s.queued as f64])
        .collect();
    // A drop mark wherever the dropped counter rose between two samples.
    let drops: PlotPoints = series
        .windows(2)
        .filter(|w| w[1].dropped > w[0].dropped)
        .map(|w| [w[1].t_ms / 1000.0, w[1].queued as f64])
        .collect();
    // The series counts the batch being exported too, so it can rise above the limit.
    let top = series.iter().map(|s| s.queued as f64).fold(limit, f64::max);
    let (start, end) = (window.start_s, window.end_s);
    let response = time_axis::plot("queue", 170.0)
        .legend(Legend::default())
        .show(ui, |plot| {
            plot.line(Line::new("queued", queue).color(theme::QUEUE).width(2.0));
            plot.hline(
                HLine::new("max_queue_size", limit)
                    .color(theme::LIMIT)
                    .width(1.5),
            );
            plot.points(
                Points::new("dropped (queue full)", drops)
                    .shape(MarkerShape::Cross)
                    .radius(5.0)
                    .color(theme::LOST),
            );
            plot.set_plot_bounds_x(start..=end);
            plot.set_plot_bounds_y(0.0..=top * 1.15);
        });
    zoom.follow_user(&response, window);
}
