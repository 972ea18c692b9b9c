//! Export batches as bars on the shared time axis (length = how long the export took,
//! colour = outcome, label = spans in it), under them the span rates.

use eframe::egui::{self, RichText};
use egui_plot::{Bar, BarChart, Legend, Line, PlotPoint, PlotPoints, PlotResponse, Text};

use super::theme;
use super::time_axis::{self, TimeWindow, Zoom};
use crate::record::rates::per_second;
use crate::record::{ExportEvent, Outcome, Sample};
use crate::session::live::Snapshot;

/// Labels are drawn only when few bars are in view, or they would pile up.
const MAX_LABELS: usize = 40;

/// The outcomes in legend and drawing order.
const OUTCOMES: [Outcome; 4] = [
    Outcome::Ok,
    Outcome::Failed,
    Outcome::InFlight,
    Outcome::LostAtKill,
];

/// Bars for the exports in the window; overlapping exports go to separate lanes.
fn bars(exports: &[ExportEvent], window: &TimeWindow) -> (Vec<(Outcome, Bar)>, Vec<Text>) {
    let now_ms = window.now_s * 1000.0;
    let mut lane_ends: Vec<f64> = Vec::new();
    let mut bars = Vec::new();
    let visible: Vec<&ExportEvent> = exports
        .iter()
        .filter(|e| {
            let end = e.end_ms.unwrap_or(now_ms) / 1000.0;
            end >= window.start_s && e.start_ms / 1000.0 <= window.end_s
        })
        .collect();
    let mut labels = Vec::new();
    for e in &visible {
        let start = e.start_ms / 1000.0;
        let end = (e.end_ms.unwrap_or(now_ms) / 1000.0).max(start + 0.01);
        let lane = match lane_ends.iter().position(|&t| t <= start) {
            Some(lane) => lane,
            None => {
                lane_ends.push(0.0);
                lane_ends.len() - 1
            }
        };
        lane_ends[lane] = end;
        let y = lane as f64;
        bars.push((
            e.outcome.clone(),
            Bar::new(y, end - start)
                .base_offset(start)
                .width(0.8)
                .name(format!(
                    "{} spans, {}, {} attempt(s){}",
                    e.spans,
                    theme::outcome_name(&e.outcome),
                    e.attempts,
                    e.last_status
                        .map_or(String::new(), |s| format!(", HTTP {s}"))
                ))
                .horizontal(),
        ));
        if visible.len() <= MAX_LABELS {
            labels.push(
                Text::new("", PlotPoint::new(start, y), e.spans.to_string())
                    .anchor(egui::Align2::LEFT_CENTER)
                    .color(egui::Color32::WHITE),
            );
        }
    }
    (bars, labels)
}

/// The exports panel: the legend, the export bars, then the span rates, on the time axis.
pub fn show(ui: &mut egui::Ui, snapshot: &Snapshot, window: &TimeWindow, zoom: &mut Zoom) {
    let report = &snapshot.report;
    legend(ui);
    let response = export_plot(ui, &report.exports, window);
    zoom.follow_user(&response, window);

    ui.label(RichText::new("Spans per second").strong());
    let response = rates_plot(ui, &report.series, window);
    zoom.follow_user(&response, window);
}

/// The title line: what a bar means and one coloured tag per outcome.
fn legend(ui: &mut egui::Ui) {
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new("Exports").strong().size(15.0));
        ui.label("one bar per batch: length = export time, number = spans;");
        for outcome in OUTCOMES {
            ui.label(
                RichText::new(format!("[{}]", theme::outcome_name(&outcome)))
                    .color(theme::outcome(&outcome)),
            );
        }
    });
}

/// The export bars in the window, one chart per outcome, with their span counts.
fn export_plot(
    ui: &mut egui::Ui,
    exports: &[ExportEvent],
    window: &TimeWindow,
) -> PlotResponse<()> {
    let (bars, labels) = bars(exports, window);
    let lanes = bars.iter().map(|(_, b)| b.argument).fold(0.0f64, f64::max);
    let (start, end) = (window.start_s, window.end_s);
    time_axis::plot("exports", 90.0)
        .show_axes([true, false])
        .show_grid([true, false])
        .show(ui, |plot| {
            for outcome in OUTCOMES {
                let these: Vec<Bar> = bars
                    .iter()
                    .filter(|(o, _)| *o == outcome)
                    .map(|(_, b)| b.clone().fill(theme::outcome(&outcome)))
                    .collect();
                if !these.is_empty() {
                    plot.bar_chart(
                        BarChart::new(theme::outcome_name(&outcome), these)
                            .color(theme::outcome(&outcome)),
                    );
                }
            }
            for label in labels {
                plot.text(label);
            }
            plot.set_plot_bounds_x(start..=end);
            plot.set_plot_bounds_y(-0.6..=lanes.max(1.0) + 0.6);
        })
}

/// The created, exported, received and dropped rates per second, with a legend.
fn rates_plot(ui: &mut egui::Ui, series: &[Sample], window: &TimeWindow) -> PlotResponse<()> {
    let series: Vec<Sample> = series
        .iter()
        .filter(|s| s.t_ms / 1000.0 >= window.start_s - 1.5)
        .copied()
        .collect();
    let created = per_second(&series, |s| s.created);
    let exported = per_second(&series, |s| s.exported);
    let received = per_second(&series, |s| s.received);
    let dropped = per_second(&series, |s| s.dropped);
    let top = [&created, &exported, &received, &dropped]
        .iter()
        .flat_map(|r| r.iter().filter(|p| window.contains(p[0])).map(|p| p[1]))
        .fold(1.0f64, f64::max);
    let (start, end) = (window.start_s, window.end_s);
    time_axis::plot("rates", 120.0)
        .legend(Legend::default())
        .show(ui, |plot| {
            plot.line(Line::new("created/s", PlotPoints::from(created)).color(theme::NOT_SAMPLED));
            plot.line(
                Line::new("exported/s", PlotPoints::from(exported))
                    .color(theme::OK)
                    .width(2.0),
            );
            plot.line(Line::new("received/s", PlotPoints::from(received)).color(theme::RECEIVED));
            plot.line(Line::new("dropped/s", PlotPoints::from(dropped)).color(theme::LOST));
            plot.set_plot_bounds_x(start..=end);
            plot.set_plot_bounds_y(0.0..=top * 1.15);
        })
}
