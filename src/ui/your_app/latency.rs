//! Your app's latency over time under the probe's traffic: p50 and p99 of the requests
//! that ended in each 100 ms (the report's `load.timeline`, from the scheduled time: open
//! loop, a stall is charged to every request behind it), with SIGTERM and SIGKILL; under
//! it, at the end, the percentiles before and after SIGTERM (`load.latency_ms`).

use eframe::egui::{self, Color32, RichText};
use egui_plot::{Line, PlotPoints, Points};

use super::requests::{in_view, middle_s};
use super::signals;
use crate::record::load::{LoadBucket, LoadLatency, LoadSection};
use crate::record::probe::ProbeReport;
use crate::ui::time_axis::{self, TimeWindow, Zoom};

const P50: Color32 = Color32::from_rgb(90, 160, 255);
const P99: Color32 = Color32::from_rgb(240, 120, 60);

pub fn show(ui: &mut egui::Ui, report: &ProbeReport, window: &TimeWindow, zoom: &mut Zoom) {
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new("Latency of your app").strong().size(15.0));
        ui.label("of the requests that ended in each 100 ms, from their scheduled time:");
        ui.label(RichText::new("[p50]").color(P50));
        ui.label(RichText::new("[p99]").color(P99));
    });
    let Some(load) = report.load.as_ref() else {
        return;
    };
    let response = chart(ui, report, load, window);
    zoom.follow_user(&response, window);
    if report.traces.is_some() {
        let split = &load.latency_ms;
        ui.label(format!(
            "Before SIGTERM: {}. After SIGTERM: {}.",
            percentiles(&split.before_sigterm),
            percentiles(&split.after_sigterm)
        ));
    }
}

/// The two lines (with a dot per bucket, so a lone bucket shows) and the signals.
fn chart(
    ui: &mut egui::Ui,
    report: &ProbeReport,
    load: &LoadSection,
    window: &TimeWindow,
) -> egui_plot::PlotResponse<()> {
    let visible = in_view(load, window);
    let series = |pick: fn(&LoadBucket) -> Option<f64>| -> Vec<[f64; 2]> {
        visible
            .iter()
            .filter_map(|b| Some([middle_s(b), pick(b)?]))
            .collect()
    };
    let p50 = series(|b| b.latency_p50_ms);
    let p99 = series(|b| b.latency_p99_ms);
    let top = p99.iter().chain(&p50).map(|p| p[1]).fold(1.0, f64::max) * 1.2;
    let (start, end) = (window.start_s, window.end_s);
    time_axis::plot("app-latency", 130.0)
        .y_grid_spacer(time_axis::round_y_marks)
        .y_axis_formatter(|mark, _| format!("{:.0} ms", mark.value))
        .y_axis_min_width(56.0)
        .show(ui, |plot| {
            for (name, colour, points) in [("p50", P50, p50), ("p99", P99, p99)] {
                plot.line(
                    Line::new(name, PlotPoints::from(points.clone()))
                        .color(colour)
                        .width(1.5),
                );
                plot.points(Points::new(name, points).color(colour).radius(1.5));
            }
            signals::lines(plot, &report.probe, top);
            plot.set_plot_bounds_x(start..=end);
            plot.set_plot_bounds_y(0.0..=top);
        })
}

/// `p50 12 ms, p90 .., p99 .., max .. (n requests)`, or that none had a whole response.
fn percentiles(l: &LoadLatency) -> String {
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1} ms"));
    match l.count {
        0 => "no whole response".to_owned(),
        n => format!(
            "p50 {}, p90 {}, p99 {}, max {} ({n} requests)",
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.max)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_in_words() {
        assert_eq!(percentiles(&LoadLatency::default()), "no whole response");
        let l = LoadLatency {
            count: 3,
            p50: Some(12.0),
            p90: Some(20.25),
            p99: None,
            max: Some(31.0),
        };
        assert_eq!(
            percentiles(&l),
            "p50 12.0 ms, p90 20.2 ms, p99 -, max 31.0 ms (3 requests)"
        );
    }
}
