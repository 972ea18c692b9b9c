//! A waterfall of one recent sampled trace as the collector stored it: what a tracing
//! backend would show for one request.

use eframe::egui::{self, Color32, RichText, Sense, Stroke, pos2, vec2};

use super::theme;
use crate::collector::StoredTrace;

/// Rows drawn at most; a request with many extra spans is cut with a note.
const MAX_ROWS: usize = 14;

pub fn show(ui: &mut egui::Ui, trace: Option<&StoredTrace>) {
    ui.label(RichText::new("A recent trace").strong().size(15.0));
    let Some(trace) = trace else {
        ui.label("No sampled trace has reached the collector yet.");
        return;
    };
    let id: String = trace.trace_id.chars().take(16).collect();
    ui.label(RichText::new(format!("trace {id}...")).monospace().small());
    let start = trace
        .spans
        .iter()
        .map(|s| s.start_unix_nano)
        .min()
        .unwrap_or(0);
    let end = trace
        .spans
        .iter()
        .map(|s| s.end_unix_nano)
        .max()
        .unwrap_or(start);
    let total = (end.saturating_sub(start)).max(1) as f32;
    let name_w = 90.0;
    let width = ui.available_width().max(name_w + 60.0);
    let row_h = 16.0;
    let rows = trace.spans.len().min(MAX_ROWS);
    let (rect, _) = ui.allocate_exact_size(vec2(width, row_h * rows as f32), Sense::hover());
    let painter = ui.painter_at(rect);
    let bar_w = width - name_w - 50.0;
    for (i, span) in trace.spans.iter().take(rows).enumerate() {
        let y = rect.top() + i as f32 * row_h;
        let x0 = rect.left()
            + name_w
            + bar_w * (span.start_unix_nano.saturating_sub(start)) as f32 / total;
        let x1 = rect.left()
            + name_w
            + bar_w * (span.end_unix_nano.saturating_sub(start)) as f32 / total;
        // A child of a span in the trace is indented; a root is not, nor the app's top
        // span under the probe's load, whose parent (the probe's own) never arrives.
        let parent = span.parent_span_id.as_ref();
        let indent = match trace.spans.iter().any(|p| Some(&p.span_id) == parent) {
            true => 8.0,
            false => 0.0,
        };
        painter.text(
            pos2(rect.left() + indent, y + row_h / 2.0),
            egui::Align2::LEFT_CENTER,
            &span.name,
            egui::FontId::proportional(12.0),
            ui.visuals().text_color(),
        );
        painter.rect_filled(
            egui::Rect::from_min_max(pos2(x0, y + 3.0), pos2(x1.max(x0 + 2.0), y + row_h - 3.0)),
            2.0,
            theme::QUEUE,
        );
        let ms = (span.end_unix_nano.saturating_sub(span.start_unix_nano)) as f64 / 1e6;
        painter.text(
            pos2(x1.max(x0 + 2.0) + 4.0, y + row_h / 2.0),
            egui::Align2::LEFT_CENTER,
            format!("{ms:.1} ms"),
            egui::FontId::proportional(11.0),
            Color32::GRAY,
        );
    }
    painter.line_segment(
        [
            pos2(rect.left() + name_w, rect.top()),
            pos2(rect.left() + name_w, rect.bottom()),
        ],
        Stroke::new(1.0, Color32::DARK_GRAY),
    );
    if trace.spans.len() > rows {
        ui.label(format!("... and {} more spans", trace.spans.len() - rows));
    }
}
