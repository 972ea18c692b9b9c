//! The user's app's exports as the collector received them, on the app's time axis: a bar
//! for each 100 ms in which export requests arrived (height = spans, number = requests),
//! and under it the spans received so far. The batches themselves are inside the app.

use eframe::egui::{self, RichText};
use egui_plot::{Bar, BarChart, Line, PlotPoint, PlotPoints, Text};

use crate::record::probe::{ProbeArrival, ProbeReport};
use crate::ui::theme;
use crate::ui::time_axis::{self, TimeWindow, Zoom};

/// Labels are drawn only when few bars are in view, or they would pile up.
const MAX_LABELS: usize = 40;
/// The bars' width: the timeline's sampling interval, seconds.
const SAMPLE_S: f64 = 0.1;

pub fn show(ui: &mut egui::Ui, report: Option<&ProbeReport>, window: &TimeWindow, zoom: &mut Zoom) {
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new("Exports from your app").strong().size(15.0));
        ui.label("one bar per 100 ms in which export requests arrived: height = spans, number = requests;");
        ui.label(RichText::new("[before SIGTERM]").color(theme::OK));
        ui.label(RichText::new("[after SIGTERM]").color(theme::SIGTERM));
    });
    let Some(report) = report else {
        ui.label("Nothing has arrived: press Start (left) to run your app.");
        return;
    };
    let response = arrivals_plot(ui, &report.arrivals, window);
    zoom.follow_user(&response, window);
    ui.label(RichText::new("Spans received by the collector").strong());
    let response = received_plot(ui, report, window);
    zoom.follow_user(&response, window);
}

/// One bar per arrival in view, coloured by whether it came after SIGTERM.
fn arrivals_plot(
    ui: &mut egui::Ui,
    arrivals: &[ProbeArrival],
    window: &TimeWindow,
) -> egui_plot::PlotResponse<()> {
    let visible: Vec<&ProbeArrival> = arrivals
        .iter()
        .filter(|a| window.contains(a.t_ms / 1000.0))
        .collect();
    let top = visible.iter().map(|a| a.spans as f64).fold(1.0, f64::max);
    let (start, end) = (window.start_s, window.end_s);
    time_axis::plot("app-exports", 110.0)
        .show_grid([true, false])
        .show(ui, |plot| {
            for (after, name) in [(false, "before SIGTERM"), (true, "after SIGTERM")] {
                let colour = if after { theme::SIGTERM } else { theme::OK };
                let bars: Vec<Bar> = visible
                    .iter()
                    .filter(|a| a.after_sigterm == after)
                    .map(|a| {
                        Bar::new(a.t_ms / 1000.0 - SAMPLE_S / 2.0, a.spans as f64)
                            .width(SAMPLE_S * 0.9)
                            .name(format!("{} spans in {} requests", a.spans, a.requests))
                            .fill(colour)
                    })
                    .collect();
                plot.bar_chart(BarChart::new(name, bars).color(colour));
            }
            if visible.len() <= MAX_LABELS {
                for a in &visible {
                    let at = PlotPoint::new(a.t_ms / 1000.0 - SAMPLE_S / 2.0, a.spans as f64);
                    plot.text(
                        Text::new("", at, a.requests.to_string())
                            .anchor(egui::Align2::CENTER_BOTTOM)
                            .color(egui::Color32::WHITE),
                    );
                }
            }
            plot.set_plot_bounds_x(start..=end);
            plot.set_plot_bounds_y(0.0..=top * 1.25);
        })
}

/// The collector's running count of spans received, sample by sample.
fn received_plot(
    ui: &mut egui::Ui,
    report: &ProbeReport,
    window: &TimeWindow,
) -> egui_plot::PlotResponse<()> {
    let points: PlotPoints = report
        .timeline
        .iter()
        .map(|s| [s.t_ms / 1000.0, s.spans_received as f64])
        .collect();
    let top = (report.collector.spans_received as f64).max(1.0);
    let (start, end) = (window.start_s, window.end_s);
    time_axis::plot("app-received", 100.0).show(ui, |plot| {
        plot.line(
            Line::new("spans received", points)
                .color(theme::RECEIVED)
                .width(2.0),
        );
        plot.set_plot_bounds_x(start..=end);
        plot.set_plot_bounds_y(0.0..=top * 1.15);
    })
}
