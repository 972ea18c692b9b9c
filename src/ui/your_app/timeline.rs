//! Your app's shutdown on its own time axis: the real SIGTERM, the app's exit or the real
//! SIGKILL at the end of the grace period, and the exports that arrived around them; under
//! the chart, what the collector saw of it (arrivals after SIGTERM, requests cut off).
//! Drawn from the probe's report, live while the app runs.

use eframe::egui::{self, Color32, RichText};
use egui_plot::{Bar, BarChart, PlotPoint, Text};

use crate::record::probe::{ProbeReport, ProbeSection};
use crate::session::your_app::{AppPhase, AppView};
use crate::ui::gantt::Lanes;
use crate::ui::theme;
use crate::ui::time_axis::{self, TimeWindow, Zoom};

/// Rows from top to bottom.
const LANES: Lanes = Lanes(&["your app", "after SIGTERM", "exports"]);
/// An arrival's bar: the timeline's sampling interval, seconds.
const SAMPLE_S: f64 = 0.1;

pub fn show(ui: &mut egui::Ui, app: Option<&AppView>, window: &TimeWindow, zoom: &mut Zoom) {
    ui.label(
        RichText::new("Shutdown timeline (your app)")
            .strong()
            .size(15.0),
    );
    let Some((app, report)) = app.and_then(|a| Some((a, a.report.as_deref()?))) else {
        ui.label(
            "Start your app, then press Shutdown: the real SIGTERM, its exit or the real \
             SIGKILL at the end of the grace period, and what arrived after SIGTERM unfold \
             here.",
        );
        return;
    };
    let p = &report.probe;
    let mut bars = Vec::new();
    let mut labels = Vec::new();
    life_bars(&mut bars, &mut labels, p, window.now_s);
    for a in report
        .arrivals
        .iter()
        .filter(|a| window.contains(a.t_ms / 1000.0))
    {
        let colour = if a.after_sigterm {
            theme::SIGTERM
        } else {
            theme::OK
        };
        let from = a.t_ms / 1000.0 - SAMPLE_S;
        let name = format!("{} spans in {} requests", a.spans, a.requests);
        bars.push((colour, bar("exports", from, a.t_ms / 1000.0, &name)));
        if a.after_sigterm {
            // Right of the bar: an exit or SIGKILL line just before it would cover it.
            labels.push(label(
                a.t_ms / 1000.0,
                "exports",
                a.spans.to_string(),
                Color32::WHITE,
            ));
        }
    }
    let (start, end) = (window.start_s, window.end_s);
    let deadline = p.sigterm_ms.map(|t| (t + p.grace_ms as f64) / 1000.0);
    let response = time_axis::plot("app-shutdown", 120.0)
        .show_grid([true, false])
        .y_axis_formatter(|mark, _| LANES.label(mark.value))
        .y_axis_min_width(90.0)
        .show(ui, |plot| {
            for (colour, bar) in bars {
                plot.bar_chart(BarChart::new("app", vec![bar.fill(colour)]).color(colour));
            }
            for text in labels {
                plot.text(text);
            }
            if let Some(sigterm_ms) = p.sigterm_ms {
                LANES.sigterm_line(plot, sigterm_ms / 1000.0);
            }
            let ended = (
                p.sigkill_ms.map(|t| t / 1000.0),
                p.exit_ms.map(|t| t / 1000.0),
            );
            if let Some(deadline) = deadline.or(ended.1) {
                LANES.end_lines(plot, ended, deadline, window.now_s);
            }
            plot.set_plot_bounds_x(start..=end);
            plot.set_plot_bounds_y(LANES.bounds());
        });
    zoom.follow_user(&response, window);
    verdict(ui, app, report);
}

/// A bar on `lane` from `from` to `to` seconds.
fn bar(lane: &str, from: f64, to: f64, name: &str) -> Bar {
    Bar::new(LANES.y(lane), (to - from).max(0.02))
        .base_offset(from)
        .width(0.6)
        .name(name)
        .horizontal()
}

fn label(x: f64, lane: &str, text: String, colour: Color32) -> Text {
    Text::new("", PlotPoint::new(x, LANES.y(lane)), text)
        .anchor(egui::Align2::LEFT_CENTER)
        .color(colour)
}

/// The app's life from its start, and its shutdown from SIGTERM: to its exit, or red
/// ("cut off") to the SIGKILL that ended it, or to now while it lasts.
fn life_bars(bars: &mut Vec<(Color32, Bar)>, labels: &mut Vec<Text>, p: &ProbeSection, now_s: f64) {
    let end_s = p.exit_ms.map_or(now_s, |t| t / 1000.0);
    let life = format!("pid {}", p.pid);
    bars.push((theme::QUEUE, bar("your app", 0.0, end_s, &life)));
    let Some(sigterm_ms) = p.sigterm_ms else {
        return;
    };
    let from = sigterm_ms / 1000.0;
    let colour = if p.killed {
        theme::LOST
    } else {
        theme::SIGTERM
    };
    bars.push((colour, bar("after SIGTERM", from, end_s, "its shutdown")));
    if p.killed {
        let cut = Text::new(
            "",
            PlotPoint::new(end_s, LANES.y("after SIGTERM")),
            "cut off by SIGKILL",
        )
        .anchor(egui::Align2::RIGHT_CENTER)
        .color(Color32::WHITE);
        labels.push(cut);
    }
}

/// Under the chart, in words: how the app ended, and what arrived after SIGTERM.
fn verdict(ui: &mut egui::Ui, app: &AppView, report: &ProbeReport) {
    let p = &report.probe;
    let (text, colour) = match (p.sigterm_ms, p.exit_ms) {
        (None, None) => (
            "Running: press Shutdown (left) to send your app a real SIGTERM.".to_owned(),
            ui.visuals().text_color(),
        ),
        (None, Some(exit_ms)) => (
            format!(
                "Your app {} at {exit_ms:.0} ms, before any SIGTERM: no shutdown was probed.",
                p.ending()
            ),
            theme::FAILED,
        ),
        (Some(sigterm_ms), None) => (
            format!(
                "SIGTERM sent at {sigterm_ms:.0} ms; SIGKILL at the end of the {} ms grace \
                 period unless your app exits first.",
                p.grace_ms
            ),
            theme::SIGTERM,
        ),
        (Some(sigterm_ms), Some(exit_ms)) => (
            format!(
                "SIGTERM at {sigterm_ms:.0} ms (grace {} ms); your app {} at {exit_ms:.0} ms.",
                p.grace_ms,
                p.ending()
            ),
            if p.killed { theme::LOST } else { theme::EXIT },
        ),
    };
    ui.label(RichText::new(text).size(15.0).strong().color(colour));
    if p.sigterm_ms.is_some() {
        ui.label(format!(
            "After SIGTERM the collector accepted {} spans in {} requests; {} requests were \
             cut off mid-body, {} sent whole and never answered.",
            p.spans_after_sigterm,
            p.requests_after_sigterm,
            p.requests_cut_off,
            p.requests_abandoned
        ));
    }
    if matches!(app.phase, AppPhase::Estimating | AppPhase::Ended) {
        ui.label(format!(
            "{} spans in {} traces arrived without their root (it never came).",
            p.orphan_spans, p.orphan_traces
        ));
    }
}
