//! The traffic sent to your app's URL, per 100 ms by how each request ended (the report's
//! `load.timeline`): a stacked bar for each outcome, the requests still in flight as a
//! line, SIGTERM and SIGKILL, and under the chart the load's totals, each a field of the
//! `load` section.

use eframe::egui::{self, Color32, RichText};
use egui_plot::{Bar, BarChart, Line, PlotPoints};

use super::signals;
use crate::record::load::{LoadBucket, LoadSection};
use crate::record::load_timeline::BUCKET_MS;
use crate::record::probe::ProbeReport;
use crate::session::your_app::AppView;
use crate::ui::theme;
use crate::ui::time_axis::{self, TimeWindow, Zoom};

/// A bucket's length, seconds.
pub const BUCKET_S: f64 = BUCKET_MS / 1000.0;

/// The buckets whose middle is in view, each drawn at its middle.
pub fn in_view<'a>(load: &'a LoadSection, window: &TimeWindow) -> Vec<&'a LoadBucket> {
    load.timeline
        .iter()
        .filter(|b| window.contains(middle_s(b)))
        .collect()
}

/// Where a bucket is drawn: its middle, seconds since the app started.
pub fn middle_s(b: &LoadBucket) -> f64 {
    b.t_ms / 1000.0 + BUCKET_S / 2.0
}

/// How many requests of one outcome a bucket holds.
type Count = fn(&LoadBucket) -> u64;

/// Each outcome's name, colour and count in a bucket, stacked in this order from the
/// bottom: what was answered, then failures with a response, then without one, then
/// what the app's end cut.
pub const OUTCOMES: [(&str, Color32, Count); 10] = [
    ("answered", theme::OK, |b| b.answered),
    ("5xx", theme::FAILED, |b| b.failed.status_5xx),
    ("429", Color32::from_rgb(230, 200, 60), |b| {
        b.failed.status_429
    }),
    ("other 4xx", Color32::from_rgb(200, 150, 100), |b| {
        b.failed.other_status
    }),
    ("refused", Color32::from_rgb(150, 100, 220), |b| {
        b.failed.refused
    }),
    ("reset", Color32::from_rgb(230, 90, 160), |b| b.failed.reset),
    ("timeout", Color32::from_rgb(90, 120, 200), |b| {
        b.failed.timeout
    }),
    ("cut mid-response", Color32::from_rgb(200, 60, 200), |b| {
        b.failed.cut_mid_response
    }),
    ("other error", Color32::from_rgb(140, 100, 70), |b| {
        b.failed.other_error
    }),
    ("in flight at the app's end", theme::LOST, |b| {
        b.in_flight_at_end
    }),
];

pub fn show(ui: &mut egui::Ui, app: &AppView, window: &TimeWindow, zoom: &mut Zoom) {
    let report = app.report.as_deref();
    let load = report.and_then(|r| r.load.as_ref());
    ui.horizontal_wrapped(|ui| {
        ui.label(
            RichText::new("Requests to your app per 100 ms")
                .strong()
                .size(15.0),
        );
        ui.label("by when each ended, stacked by how:");
        let timeline = load.map_or(&[][..], |l| &l.timeline[..]);
        for (name, colour, count) in OUTCOMES {
            // Answered always, the others once one has happened.
            if name == "answered" || timeline.iter().any(|b| count(b) > 0) {
                ui.label(RichText::new(format!("[{name}]")).color(colour));
            }
        }
        ui.label(RichText::new("(line: in flight)").color(theme::IN_FLIGHT));
    });
    let (Some(report), Some(load)) = (report, load) else {
        let url = app.url.as_deref().unwrap_or("its URL");
        ui.label(format!(
            "Once your app answers at {url}, the scenario's traffic goes to it open loop \
             and every request shows here as it ends."
        ));
        return;
    };
    let response = chart(ui, report, load, window);
    zoom.follow_user(&response, window);
    totals(ui, load, report.traces.is_some());
}

/// The stacked bars of the buckets in view, the in-flight line and the signals.
fn chart(
    ui: &mut egui::Ui,
    report: &ProbeReport,
    load: &LoadSection,
    window: &TimeWindow,
) -> egui_plot::PlotResponse<()> {
    let visible = in_view(load, window);
    let mut charts: Vec<BarChart> = Vec::new();
    for (name, colour, count) in OUTCOMES {
        if !visible.iter().any(|b| count(b) > 0) {
            continue; // an outcome that did not happen in view draws nothing
        }
        let bars = visible
            .iter()
            .map(|b| {
                let n = count(b);
                Bar::new(middle_s(b), n as f64)
                    .width(BUCKET_S * 0.9)
                    .name(format!("{n} {name} at {:.1} s", b.t_ms / 1000.0))
                    .fill(colour)
            })
            .collect();
        let below: Vec<&BarChart> = charts.iter().collect();
        let chart = BarChart::new(name, bars).color(colour).stack_on(&below);
        charts.push(chart);
    }
    let in_flight: PlotPoints = visible
        .iter()
        .map(|b| [b.t_ms / 1000.0 + BUCKET_S, b.in_flight as f64])
        .collect();
    let ended_top = visible
        .iter()
        .map(|b| OUTCOMES.iter().map(|(_, _, n)| n(b)).sum::<u64>())
        .max()
        .unwrap_or(0);
    let flying_top = visible.iter().map(|b| b.in_flight).max().unwrap_or(0);
    let top = (ended_top.max(flying_top) as f64 * 1.25).max(4.0);
    let (start, end) = (window.start_s, window.end_s);
    time_axis::plot("app-requests", 130.0)
        .y_grid_spacer(time_axis::round_y_marks)
        .show(ui, |plot| {
            for chart in charts {
                plot.bar_chart(chart);
            }
            plot.line(
                Line::new("in flight", in_flight)
                    .color(theme::IN_FLIGHT)
                    .width(1.5),
            );
            signals::lines(plot, &report.probe, top);
            plot.set_plot_bounds_x(start..=end);
            plot.set_plot_bounds_y(0.0..=top);
        })
}

/// The load's counts in words: so far while the app runs, final at the end.
fn totals(ui: &mut egui::Ui, load: &LoadSection, ended: bool) {
    let failed = load.failed.in_words();
    let failed = match failed.is_empty() {
        true => "none failed".to_owned(),
        false => format!("failed: {}", failed.join(", ")),
    };
    let text = match ended {
        false => format!(
            "So far: {} sent to {} {}, {} answered, {failed}.",
            load.sent, load.method, load.url, load.answered
        ),
        true => format!(
            "{} scheduled: {} sent to {} {}, {} answered, {failed}, {} in flight at the \
             app's end; {} not sent (routing had ended). The shutdown cost {} requests.",
            load.scheduled,
            load.sent,
            load.method,
            load.url,
            load.answered,
            load.in_flight_at_end,
            load.not_sent_after_routing_end,
            load.failed_after_sigterm
        ),
    };
    ui.label(text);
}
