//! The shutdown as a Gantt chart on the shared time axis: SIGTERM, handle_exit, the
//! drain of in-flight requests, teardown, force_flush, the exports during it, and exit
//! or SIGKILL, with what was lost in red and the report's verdict under it. Drawn live
//! from the record's lifecycle markers while the grace period runs, and from the
//! shutdown report once it is over.

use eframe::egui::{self, Color32, RichText};
use egui_plot::{Bar, BarChart, PlotPoint, PlotResponse, Text};

use super::gantt::Lanes;
use super::theme;
use super::time_axis::{self, TimeWindow, Zoom};
use crate::record::{ExportEvent, ShutdownReport};
use crate::record::{Marker, ShutdownPhase};
use crate::session::live::{RunnerState, Snapshot};

/// Rows from top to bottom.
const LANES: Lanes = Lanes(&[
    "routing",
    "requests",
    "handle_exit",
    "teardown",
    "force_flush",
    "exports",
]);

/// The lifecycle markers of the latest shutdown, in seconds.
struct Steps {
    sigterm: f64,
    handle_exit: Option<f64>,
    routing_end: Option<f64>,
    drain_end: Option<f64>,
    teardown: Option<f64>,
    flush_start: Option<f64>,
    flush_end: Option<f64>,
    exit: Option<f64>,
    sigkill: Option<f64>,
}

fn steps(markers: &[Marker]) -> Option<Steps> {
    let start = markers
        .iter()
        .rposition(|m| m.phase() == Some(ShutdownPhase::Sigterm))?;
    let after = &markers[start..];
    let at = |phase: ShutdownPhase| {
        after
            .iter()
            .find(|m| m.phase() == Some(phase))
            .map(|m| m.at_ms / 1000.0)
    };
    Some(Steps {
        sigterm: markers[start].at_ms / 1000.0,
        handle_exit: at(ShutdownPhase::HandleExit),
        routing_end: at(ShutdownPhase::RoutingEnd),
        drain_end: at(ShutdownPhase::DrainEnd),
        teardown: at(ShutdownPhase::Teardown),
        flush_start: at(ShutdownPhase::FlushStart),
        flush_end: at(ShutdownPhase::FlushEnd),
        exit: at(ShutdownPhase::Exit),
        sigkill: at(ShutdownPhase::Sigkill),
    })
}

impl Steps {
    /// A phase's end (its marker, else the kill, the exit or now) and whether SIGKILL cut it.
    fn cut(&self, end: Option<f64>, now_s: f64) -> (f64, bool) {
        let open_end = self.sigkill.or(self.exit).unwrap_or(now_s);
        (
            end.unwrap_or(open_end),
            end.is_none() && self.sigkill.is_some(),
        )
    }
}

/// The horizontal bars of the chart, with their fill colour, and the labels on them.
#[derive(Default)]
struct Chart {
    bars: Vec<(Color32, Bar)>,
    labels: Vec<Text>,
}

impl Chart {
    /// One phase's bar on its lane, red with "cut off by SIGKILL" when the kill ended it.
    fn phase_bar(&mut self, lane: &str, from: f64, to: (f64, bool), ok: Color32, what: &str) {
        let (to, killed) = to;
        let colour = if killed { theme::LOST } else { ok };
        let y = LANES.y(lane);
        self.bars.push((
            colour,
            Bar::new(y, (to - from).max(0.02))
                .base_offset(from)
                .width(0.6)
                .name(what)
                .horizontal(),
        ));
        if killed {
            self.labels.push(
                Text::new("", PlotPoint::new(to, y), "cut off by SIGKILL")
                    .anchor(egui::Align2::RIGHT_CENTER)
                    .color(Color32::WHITE),
            );
        }
    }
}

/// The shutdown panel: the title, the Gantt chart, then the countdown or the verdict.
pub fn show(ui: &mut egui::Ui, snapshot: &Snapshot, window: &TimeWindow, zoom: &mut Zoom) {
    let report = &snapshot.report;
    ui.label(RichText::new("Shutdown timeline").strong().size(15.0));
    let Some(steps) = steps(&report.markers) else {
        empty_state(ui);
        return;
    };
    let in_progress = matches!(snapshot.phase, RunnerState::ShuttingDown { .. });
    let grace_s = match (&snapshot.last_shutdown, in_progress) {
        (Some(done), false) => done.grace_ms as f64 / 1000.0,
        _ => report.settings.shutdown.grace_ms as f64 / 1000.0,
    };
    let deadline = steps.sigterm + grace_s;

    let returned = match (&snapshot.last_shutdown, in_progress) {
        (Some(done), false) => done.requests_returned,
        _ => report.requests.returned,
    };
    let mut chart = Chart::default();
    routing_bar(&mut chart, &steps, returned, window.now_s);
    phase_bars(&mut chart, &steps, window.now_s);
    export_bars(&mut chart, &report.exports, &steps, window.now_s);
    let response = gantt(ui, chart, &steps, deadline, window);
    zoom.follow_user(&response, window);

    if in_progress {
        grace_countdown(ui, snapshot, &steps, deadline, window.now_s);
    } else if let Some(done) = &snapshot.last_shutdown {
        verdict(ui, done);
    }
}

/// The text shown before any shutdown: what pressing Shutdown will draw here.
fn empty_state(ui: &mut egui::Ui) {
    ui.label(
        "Press Shutdown (left) to send the platform's SIGTERM: the drain, teardown, \
         force_flush and exports unfold here on the same time axis, up to exit or \
         SIGKILL at the end of the grace period.",
    );
}

/// The routing lane: how long the platform kept sending new requests after SIGTERM (the
/// routing lag), and how many waiting requests it took back at SIGTERM.
fn routing_bar(chart: &mut Chart, steps: &Steps, returned: u64, now_s: f64) {
    let y = LANES.y("routing");
    // Without its marker, routing still goes on while the runner lives; once the runner
    // is gone without one, traffic had ended before routing did, and there is no bar.
    let still_running = steps.exit.is_none() && steps.sigkill.is_none();
    let end = steps
        .routing_end
        .or(still_running.then_some(now_s))
        .unwrap_or(steps.sigterm);
    if end - steps.sigterm > 0.001 {
        chart.phase_bar(
            "routing",
            steps.sigterm,
            (end, false),
            theme::QUEUE,
            "new requests still routed here",
        );
    }
    if returned > 0 {
        chart.labels.push(
            Text::new(
                "",
                PlotPoint::new(steps.sigterm, y),
                format!("{returned} waiting handed back"),
            )
            .anchor(egui::Align2::LEFT_CENTER)
            .color(theme::SIGTERM),
        );
    }
}

/// The bars of the phases: requests finishing, handle_exit, teardown and force_flush.
fn phase_bars(chart: &mut Chart, steps: &Steps, now_s: f64) {
    chart.phase_bar(
        "requests",
        steps.sigterm,
        steps.cut(steps.drain_end, now_s),
        theme::QUEUE,
        "in-flight requests finishing",
    );
    if let Some(at) = steps.handle_exit {
        chart.phase_bar(
            "handle_exit",
            at,
            (at + 0.03, false),
            theme::SIGTERM,
            "handle_exit()",
        );
    }
    if let Some(from) = steps.teardown {
        chart.phase_bar(
            "teardown",
            from,
            steps.cut(steps.flush_start.or(steps.exit), now_s),
            theme::NOT_SAMPLED,
            "teardown()",
        );
    }
    if let Some(from) = steps.flush_start {
        chart.phase_bar(
            "force_flush",
            from,
            steps.cut(steps.flush_end, now_s),
            theme::OK,
            "force_flush()",
        );
    }
}

/// The export batches since SIGTERM on the exports lane, by outcome, with their span count.
fn export_bars(chart: &mut Chart, exports: &[ExportEvent], steps: &Steps, now_s: f64) {
    let now_ms = now_s * 1000.0;
    for e in exports
        .iter()
        .filter(|e| e.end_ms.unwrap_or(now_ms) / 1000.0 >= steps.sigterm)
    {
        let from = e.start_ms / 1000.0;
        let to = e.end_ms.unwrap_or(now_ms) / 1000.0;
        chart.bars.push((
            theme::outcome(&e.outcome),
            Bar::new(LANES.y("exports"), (to - from).max(0.02))
                .base_offset(from)
                .width(0.6)
                .name(format!(
                    "{} spans, {}",
                    e.spans,
                    theme::outcome_name(&e.outcome)
                ))
                .horizontal(),
        ));
        chart.labels.push(
            Text::new(
                "",
                PlotPoint::new(from, LANES.y("exports")),
                e.spans.to_string(),
            )
            .anchor(egui::Align2::LEFT_CENTER)
            .color(Color32::WHITE),
        );
    }
}

/// The Gantt plot on the shared time axis: the bars, their labels and the vertical lines.
fn gantt(
    ui: &mut egui::Ui,
    chart: Chart,
    steps: &Steps,
    deadline: f64,
    window: &TimeWindow,
) -> PlotResponse<()> {
    let (start, end) = (window.start_s, window.end_s);
    time_axis::plot("shutdown", 170.0)
        .show_grid([true, false])
        .y_axis_formatter(|mark, _| LANES.label(mark.value))
        .y_axis_min_width(80.0)
        .show(ui, |plot| {
            for (colour, bar) in chart.bars {
                plot.bar_chart(BarChart::new("phase", vec![bar.fill(colour)]).color(colour));
            }
            for label in chart.labels {
                plot.text(label);
            }
            LANES.sigterm_line(plot, steps.sigterm);
            LANES.end_lines(plot, (steps.sigkill, steps.exit), deadline, window.now_s);
            plot.set_plot_bounds_x(start..=end);
            plot.set_plot_bounds_y(LANES.bounds());
        })
}

/// The grace countdown: time since SIGTERM, time left to SIGKILL, spans still in memory.
fn grace_countdown(
    ui: &mut egui::Ui,
    snapshot: &Snapshot,
    steps: &Steps,
    deadline: f64,
    now_s: f64,
) {
    let left = (deadline - now_s).max(0.0);
    ui.label(
        RichText::new(format!(
            "SIGTERM sent {:.1} s ago; SIGKILL in {left:.1} s unless the runner exits. \
             {} spans still in memory.",
            now_s - steps.sigterm,
            snapshot.report.spans.counts.queued
        ))
        .size(15.0)
        .color(theme::SIGTERM),
    );
}

/// The shutdown report's verdict (red when SIGKILL lost spans) and what SIGKILL destroyed.
fn verdict(ui: &mut egui::Ui, done: &ShutdownReport) {
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
