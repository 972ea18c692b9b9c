//! The shutdown as a Gantt chart on the shared time axis: SIGTERM, handle_exit, the
//! drain of in-flight requests, teardown, force_flush, the exports during it, and exit
//! or SIGKILL, with what was lost in red and the report's verdict under it. Drawn live
//! from the record's lifecycle markers while the grace period runs, and from the
//! shutdown report once it is over.

use eframe::egui::{self, Color32, RichText};
use egui_plot::{Bar, BarChart, LineStyle, PlotPoint, Text, VLine};

use super::engine::{Phase, Snapshot};
use super::theme;
use super::time_axis::{self, TimeWindow, Zoom};
use crate::record::Marker;

/// Rows from top to bottom (the plot's y grows upwards, so they are placed reversed).
const LANES: [&str; 5] = [
    "requests",
    "handle_exit",
    "teardown",
    "force_flush",
    "exports",
];

fn lane_y(name: &str) -> f64 {
    let index = LANES.iter().position(|l| *l == name).unwrap_or(0);
    (LANES.len() - 1 - index) as f64
}

/// The lifecycle markers of the latest shutdown, in seconds.
struct Steps {
    sigterm: f64,
    handle_exit: Option<f64>,
    drain_end: Option<f64>,
    teardown: Option<f64>,
    flush_start: Option<f64>,
    flush_end: Option<f64>,
    exit: Option<f64>,
    sigkill: Option<f64>,
}

fn steps(markers: &[Marker]) -> Option<Steps> {
    let start = markers.iter().rposition(|m| m.what == "sigterm")?;
    let after = &markers[start..];
    let at = |what: &str| {
        after
            .iter()
            .find(|m| m.what == what)
            .map(|m| m.at_ms / 1000.0)
    };
    Some(Steps {
        sigterm: markers[start].at_ms / 1000.0,
        handle_exit: at("handle_exit"),
        drain_end: at("drain_end"),
        teardown: at("teardown"),
        flush_start: at("flush_start"),
        flush_end: at("flush_end"),
        exit: at("exit"),
        sigkill: at("sigkill"),
    })
}

pub fn show(ui: &mut egui::Ui, snapshot: &Snapshot, window: &TimeWindow, zoom: &mut Zoom) {
    let report = &snapshot.report;
    ui.label(RichText::new("Shutdown timeline").strong().size(15.0));
    let Some(steps) = steps(&report.markers) else {
        ui.label(
            "Press Shutdown (left) to send the platform's SIGTERM: the drain, teardown, \
             force_flush and exports unfold here on the same time axis, up to exit or \
             SIGKILL at the end of the grace period.",
        );
        return;
    };
    let in_progress = matches!(snapshot.phase, Phase::ShuttingDown { .. });
    let grace_s = match (&snapshot.last_shutdown, in_progress) {
        (Some(done), false) => done.grace_ms as f64 / 1000.0,
        _ => report.settings.shutdown.grace_ms as f64 / 1000.0,
    };
    let deadline = steps.sigterm + grace_s;
    // Where an open phase ends for now: the kill, the exit, or the present moment.
    let open_end = steps.sigkill.or(steps.exit).unwrap_or(window.now_s);
    let cut = |end: Option<f64>| {
        (
            end.unwrap_or(open_end),
            end.is_none() && steps.sigkill.is_some(),
        )
    };

    let mut bars: Vec<(Color32, Bar)> = Vec::new();
    let mut labels: Vec<Text> = Vec::new();
    let mut phase_bar = |lane: &str, from: f64, to: (f64, bool), ok: Color32, what: &str| {
        let (to, killed) = to;
        let colour = if killed { theme::LOST } else { ok };
        let y = lane_y(lane);
        bars.push((
            colour,
            Bar::new(y, (to - from).max(0.02))
                .base_offset(from)
                .width(0.6)
                .name(what)
                .horizontal(),
        ));
        if killed {
            labels.push(
                Text::new("", PlotPoint::new(to, y), "cut off by SIGKILL")
                    .anchor(egui::Align2::RIGHT_CENTER)
                    .color(Color32::WHITE),
            );
        }
    };
    phase_bar(
        "requests",
        steps.sigterm,
        cut(steps.drain_end),
        theme::QUEUE,
        "in-flight requests finishing",
    );
    if let Some(at) = steps.handle_exit {
        phase_bar(
            "handle_exit",
            at,
            (at + 0.03, false),
            theme::SIGTERM,
            "handle_exit()",
        );
    }
    if let Some(from) = steps.teardown {
        phase_bar(
            "teardown",
            from,
            cut(steps.flush_start.or(steps.exit)),
            theme::NOT_SAMPLED,
            "teardown()",
        );
    }
    if let Some(from) = steps.flush_start {
        phase_bar(
            "force_flush",
            from,
            cut(steps.flush_end),
            theme::OK,
            "force_flush()",
        );
    }
    let now_ms = window.now_s * 1000.0;
    for e in report
        .exports
        .iter()
        .filter(|e| e.end_ms.unwrap_or(now_ms) / 1000.0 >= steps.sigterm)
    {
        let from = e.start_ms / 1000.0;
        let to = e.end_ms.unwrap_or(now_ms) / 1000.0;
        bars.push((
            theme::outcome(&e.outcome),
            Bar::new(lane_y("exports"), (to - from).max(0.02))
                .base_offset(from)
                .width(0.6)
                .name(format!(
                    "{} spans, {}",
                    e.spans,
                    theme::outcome_name(&e.outcome)
                ))
                .horizontal(),
        ));
        labels.push(
            Text::new(
                "",
                PlotPoint::new(from, lane_y("exports")),
                e.spans.to_string(),
            )
            .anchor(egui::Align2::LEFT_CENTER)
            .color(Color32::WHITE),
        );
    }

    let (start, end) = (window.start_s, window.end_s);
    let response = time_axis::plot("shutdown", 170.0)
        .show_grid([true, false])
        .y_axis_formatter(|mark, _| {
            let index = LANES.len() as f64 - 1.0 - mark.value;
            if (index - index.round()).abs() < 1e-6 && (0.0..LANES.len() as f64).contains(&index) {
                LANES[index.round() as usize].to_string()
            } else {
                String::new()
            }
        })
        .y_axis_min_width(80.0)
        .show(ui, |plot| {
            for (colour, bar) in bars {
                plot.bar_chart(BarChart::new("phase", vec![bar.fill(colour)]).color(colour));
            }
            for label in labels {
                plot.text(label);
            }
            plot.vline(
                VLine::new("SIGTERM", steps.sigterm)
                    .color(theme::SIGTERM)
                    .width(2.0),
            );
            plot.text(
                Text::new(
                    "",
                    PlotPoint::new(steps.sigterm, LANES.len() as f64 - 0.45),
                    "SIGTERM",
                )
                .anchor(egui::Align2::LEFT_BOTTOM)
                .color(theme::SIGTERM),
            );
            match (steps.sigkill, steps.exit) {
                (Some(kill), _) => {
                    plot.vline(VLine::new("SIGKILL", kill).color(theme::LOST).width(2.5));
                    plot.text(
                        Text::new(
                            "",
                            PlotPoint::new(kill, LANES.len() as f64 - 0.45),
                            "SIGKILL",
                        )
                        .anchor(egui::Align2::RIGHT_BOTTOM)
                        .color(theme::LOST),
                    );
                }
                (None, Some(exit)) => {
                    plot.vline(VLine::new("exit", exit).color(theme::EXIT).width(2.0));
                    plot.text(
                        Text::new("", PlotPoint::new(exit, LANES.len() as f64 - 0.45), "exit")
                            .anchor(egui::Align2::LEFT_BOTTOM)
                            .color(theme::EXIT),
                    );
                }
                (None, None) => {
                    plot.vline(
                        VLine::new("SIGKILL due", deadline)
                            .color(theme::LOST)
                            .style(LineStyle::dashed_loose()),
                    );
                    plot.vline(VLine::new("now", window.now_s).color(Color32::GRAY));
                }
            }
            plot.set_plot_bounds_x(start..=end);
            plot.set_plot_bounds_y(-0.6..=LANES.len() as f64 - 0.1);
        });
    zoom.follow_user(&response, window);

    if in_progress {
        let left = (deadline - window.now_s).max(0.0);
        ui.label(
            RichText::new(format!(
                "SIGTERM sent {:.1} s ago; SIGKILL in {left:.1} s unless the runner exits. \
                 {} spans still in memory.",
                window.now_s - steps.sigterm,
                report.spans.counts.queued
            ))
            .size(15.0)
            .color(theme::SIGTERM),
        );
    } else if let Some(done) = &snapshot.last_shutdown {
        let lost = done.lost_at_kill.queued + done.lost_at_kill.in_flight_export;
        let colour = if done.killed && (lost > 0 || done.spans_never_ended > 0) {
            theme::LOST
        } else {
            theme::EXIT
        };
        ui.label(
            RichText::new(&done.verdict)
                .size(15.0)
                .strong()
                .color(colour),
        );
        if done.killed {
            ui.label(
                RichText::new(format!(
                    "Lost at SIGKILL: {} queued + {} in an export in flight; {} spans of {} \
                     cut-off requests never ended.",
                    done.lost_at_kill.queued,
                    done.lost_at_kill.in_flight_export,
                    done.spans_never_ended,
                    done.requests_cut_off
                ))
                .color(theme::LOST),
            );
        }
    }
}
