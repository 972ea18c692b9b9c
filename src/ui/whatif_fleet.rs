//! The What-if's fleet view (`fleet.replicas` above 1, virtual time only): one row per
//! replica on a time axis, its bar from the start of traffic to its end, the SIGTERM of
//! its wave and its SIGKILL ticked on it, its replacement's bar from when it took traffic,
//! the deploy's waves as dashed lines, and the spans each lost written at the right. Each
//! row is a widget named by its replica and what it lost; hover for its counts. It draws
//! the numbers of one cell's fleet report and computes none.

use eframe::egui::{
    self, Align2, Color32, FontId, Rect, RichText, Sense, Stroke, WidgetInfo, pos2, vec2,
};

use super::theme;
use crate::record::fleet::{FleetReport, ReplicaRow};
use crate::session::whatif::{FleetCell, SweepResult};

/// A row's height: a hundred replicas fit the scrolled area at a glance.
const ROW: f32 = 9.0;
/// The strip left of the bars for the replicas' names, and right of them for the counts.
const NAMES: f32 = 84.0;
const COUNTS: f32 = 96.0;
/// The line above the rows (the waves) and below them (the time axis).
const LINE: f32 = 16.0;
const MAX_HEIGHT: f32 = 320.0;
const FONT: f32 = 10.0;

/// Draws the fleet of `cell`, one cell of `result`.
pub fn show(ui: &mut egui::Ui, result: &SweepResult, cell: &FleetCell) {
    let f = &cell.report;
    let t = &f.totals;
    ui.label(RichText::new("Fleet").strong().size(15.0));
    let which = result.points.get(cell.index).map_or(String::new(), |p| {
        let values: Vec<String> = (result.change(p).iter())
            .map(|(key, value)| format!("{key} = {value}"))
            .collect();
        values.join(", ")
    });
    ui.weak(format!(
        "{} replicas, {} ({} per wave, {} waves), {}; the median run of {which}: {} spans \
         lost, {} at SIGKILL, {} answered 429, {} of {} replicas killed",
        f.replicas,
        f.rollout,
        f.per_wave,
        f.waves,
        f.clock,
        t.lost,
        t.spans.lost_at_kill,
        t.http_throttled,
        t.replicas_killed,
        f.rows.len(),
    ));
    let end_ms = f.rows.iter().map(|r| r.end_ms).fold(1.0, f64::max);
    egui::ScrollArea::vertical()
        .max_height(MAX_HEIGHT)
        .id_salt("whatif-fleet")
        .show(ui, |ui| rows(ui, f, end_ms));
}

/// The first replicas of each slot, and its replacement if any. One pass over the rows,
/// as this runs every frame and a fleet may have 10,000 replicas.
fn slots(f: &FleetReport) -> Vec<(&ReplicaRow, Option<&ReplicaRow>)> {
    let mut replacement_of: Vec<Option<&ReplicaRow>> = vec![None; f.replicas];
    for r in f.rows.iter().filter(|r| r.replacement) {
        if let Some(at) = replacement_of.get_mut(r.slot)
            && at.is_none()
        {
            *at = Some(r);
        }
    }
    let first = f.rows.iter().filter(|r| !r.replacement);
    first
        .map(|r| (r, replacement_of.get(r.slot).copied().flatten()))
        .collect()
}

fn rows(ui: &mut egui::Ui, f: &FleetReport, end_ms: f64) {
    let slots = slots(f);
    let width = ui.available_width().max(NAMES + COUNTS + 100.0);
    let height = ROW * slots.len() as f32 + 2.0 * LINE;
    let (whole, _) = ui.allocate_exact_size(vec2(width, height), Sense::hover());
    let bars = Rect::from_min_max(
        whole.min + vec2(NAMES, LINE),
        pos2(whole.right() - COUNTS, whole.bottom() - LINE),
    );
    let x = |ms: f64| bars.left() + bars.width() * (ms / end_ms) as f32;
    waves(ui, f, bars, &x);
    for (i, (first, next)) in slots.iter().enumerate() {
        let rect = Rect::from_min_size(
            pos2(whole.left(), bars.top() + ROW * i as f32),
            vec2(width, ROW),
        );
        row(ui, rect, (first, *next), &x);
    }
    let painter = ui.painter();
    let colour = ui.visuals().weak_text_color();
    let font = FontId::proportional(FONT);
    for (at, align) in [(0.0, Align2::LEFT_TOP), (end_ms, Align2::RIGHT_TOP)] {
        let text = format!("{:.0} s", at / 1000.0);
        painter.text(
            pos2(x(at), bars.bottom() + 2.0),
            align,
            text,
            font.clone(),
            colour,
        );
    }
    let lost = pos2(bars.right() + 4.0, whole.top());
    painter.text(lost, Align2::LEFT_TOP, "spans lost", font, colour);
}

/// A dashed line at each wave's SIGTERM, named above the rows.
fn waves(ui: &egui::Ui, f: &FleetReport, bars: Rect, x: &dyn Fn(f64) -> f32) {
    let painter = ui.painter();
    let stroke = Stroke::new(1.0, theme::SIGTERM.gamma_multiply(0.6));
    let font = FontId::proportional(FONT);
    // Each wave's SIGTERM, from the first row of it, in one pass over the rows.
    let mut sigterm_of: Vec<Option<f64>> = vec![None; f.waves];
    for r in &f.rows {
        if let Some(at) = r.wave.and_then(|w| sigterm_of.get_mut(w))
            && at.is_none()
        {
            *at = r.sigterm_ms;
        }
    }
    for (wave, at) in sigterm_of.into_iter().enumerate() {
        let Some(at) = at else {
            continue;
        };
        let top = pos2(x(at), bars.top());
        let line = [top, pos2(top.x, bars.bottom())];
        painter.extend(egui::Shape::dashed_line(&line, stroke, 3.0, 3.0));
        if f.waves <= 12 || wave % (f.waves / 12 + 1) == 0 {
            let name = format!("wave {wave}");
            let at = top - vec2(0.0, 2.0);
            painter.text(
                at,
                Align2::CENTER_BOTTOM,
                name,
                font.clone(),
                theme::SIGTERM,
            );
        }
    }
}

/// One slot's row as a widget: its replica's bar and ticks, its replacement's, the spans
/// each lost.
fn row(
    ui: &egui::Ui,
    rect: Rect,
    (first, next): (&ReplicaRow, Option<&ReplicaRow>),
    x: &dyn Fn(f64) -> f32,
) {
    let response = ui.interact(
        rect,
        ui.scope_id().with(("fleet-row", first.slot)),
        Sense::hover(),
    );
    let name = label(first, next);
    response.widget_info(|| WidgetInfo::labeled(egui::Role::Label, true, &name));
    let painter = ui.painter();
    if response.hovered() {
        painter.rect_filled(rect, 0.0, ui.visuals().faint_bg_color);
    }
    let mid = rect.center().y;
    for replica in [Some(first), next].into_iter().flatten() {
        bar(ui, replica, mid, x);
    }
    let font = FontId::proportional(FONT);
    if first.slot.is_multiple_of(5) {
        let colour = ui.visuals().weak_text_color();
        let at = pos2(rect.left() + 2.0, mid);
        painter.text(
            at,
            Align2::LEFT_CENTER,
            &first.replica,
            font.clone(),
            colour,
        );
    }
    let lost = match next {
        Some(n) => format!("{} + {}", first.lost, n.lost),
        None => first.lost.to_string(),
    };
    let colour = match first.lost + next.map_or(0, |n| n.lost) {
        0 => theme::OK,
        _ => theme::LOST,
    };
    let at = pos2(rect.right() - COUNTS + 4.0, mid);
    painter.text(at, Align2::LEFT_CENTER, lost, font, colour);
    response.on_hover_ui(|ui| {
        for replica in [Some(first), next].into_iter().flatten() {
            hover(ui, replica);
        }
    });
}

/// A replica's bar from when it took traffic to its end, red if it was killed, with its
/// SIGTERM and SIGKILL ticked.
fn bar(ui: &egui::Ui, r: &ReplicaRow, mid: f32, x: &dyn Fn(f64) -> f32) {
    if r.never_started {
        return;
    }
    let painter = ui.painter();
    let colour = match (r.killed, r.replacement) {
        (true, _) => theme::LOST,
        (false, true) => theme::OK,
        (false, false) => theme::QUEUE,
    };
    let line = [pos2(x(r.ready_ms), mid), pos2(x(r.end_ms), mid)];
    painter.line_segment(line, Stroke::new(3.0, colour.gamma_multiply(0.8)));
    let tick = |ms: f64, colour: Color32| {
        let at = x(ms);
        let line = [
            pos2(at, mid - ROW / 2.0 + 1.0),
            pos2(at, mid + ROW / 2.0 - 1.0),
        ];
        painter.line_segment(line, Stroke::new(2.0, colour));
    };
    if let Some(ms) = r.sigterm_ms {
        tick(ms, theme::SIGTERM);
    }
    if let Some(ms) = r.sigkill_ms {
        tick(ms, theme::LOST);
    }
}

/// The row's name: its replica and the spans lost by it and by its replacement.
fn label(first: &ReplicaRow, next: Option<&ReplicaRow>) -> String {
    let mut name = format!("{}: {} spans lost", first.replica, first.lost);
    if let Some(n) = next {
        name += &format!(", {}: {} spans lost", n.replica, n.lost);
    }
    name
}

fn hover(ui: &mut egui::Ui, r: &ReplicaRow) {
    ui.label(RichText::new(&r.replica).strong());
    let s = |ms: Option<f64>| ms.map_or("-".into(), |ms| format!("{:.1} s", ms / 1000.0));
    let wave = r.wave.map_or("-".into(), |w| w.to_string());
    let started = match r.never_started {
        true => "never started (traffic had ended)".to_string(),
        false => format!("took traffic from {}", s(Some(r.ready_ms))),
    };
    ui.label(format!(
        "{started}; wave {wave}, SIGTERM {}, SIGKILL {}, ended {}",
        s(r.sigterm_ms),
        s(r.sigkill_ms),
        s(Some(r.end_ms))
    ));
    let c = &r.spans;
    ui.label(format!(
        "{} spans created, {} exported, {} lost: {} dropped (queue full), {} after shutdown, \
         {} export failed, {} at SIGKILL; {} requests completed; {} attempts, {} answered \
         429, {} retries",
        c.created,
        c.exported,
        r.lost,
        c.dropped_queue_full,
        c.dropped_after_shutdown,
        c.export_failed,
        c.lost_at_kill,
        r.requests.completed,
        r.http_attempts,
        r.http_throttled,
        r.http_retries
    ));
}
