//! The What-if heatmap of two knobs: one cell per pair of values, its top half amber by
//! the spans dropped to a full queue and its bottom half red by those lost at SIGKILL (one
//! scale for both, up to the most any cell lost), with the count lost written on it and
//! the settings in force outlined. Each cell is a widget: hover for its counts, click to
//! apply its values, and named (for screen readers and tests) by its values and spans
//! lost. It draws the numbers the engine sent and computes none.

use std::ops::RangeInclusive;

use eframe::egui::{
    self, Align2, Color32, FontId, Rect, RichText, Sense, Shape, Stroke, StrokeKind, Vec2,
    WidgetInfo, pos2, vec2,
};

use super::theme;
use crate::session::whatif::{Point, SweepResult, short_name};

/// A cell's width: room for a five-digit count, and narrow enough that 20 columns fit
/// the centre column.
const CELL_WIDTH: RangeInclusive<f32> = 34.0..=90.0;
const CELL_HEIGHT: f32 = 26.0;
/// The strip left of the grid for the second knob's values.
const ROW_LABELS: f32 = 60.0;
/// The line above the grid (the second knob's name) and each of the two below it.
const LINE: f32 = 16.0;
/// The faintest fill of a half that lost any span, so that one lost span still shows.
const FAINTEST: f32 = 0.22;
/// The fill of a cell that lost nothing.
const NOTHING_LOST: f32 = 0.45;
const AXIS_FONT: f32 = 11.0;

/// Draws the heatmap of a two-knob sweep; returns the cell clicked.
pub fn show(ui: &mut egui::Ui, result: &SweepResult) -> Option<usize> {
    let most = result.most_lost();
    legend(ui, most);
    let layout = Layout::new(ui.available_width(), result);
    let (whole, _) = ui.allocate_exact_size(layout.size(), Sense::hover());
    axes(ui, result, &layout, whole);
    let current = result.current_cell();
    let mut clicked = None;
    for column in 0..layout.columns {
        for row in 0..layout.rows {
            let Some(index) = result.index(column, row) else {
                continue;
            };
            let now = current
                .filter(|(at, _)| *at == index)
                .map(|(_, exact)| exact);
            let rect = layout.cell(whole, column, row);
            if cell(ui, result, index, rect, Look { most, now }) {
                clicked = Some(index);
            }
        }
    }
    clicked
}

/// Where the cells go: the first knob's values left to right, the second's bottom to top
/// (as on a chart's axes).
struct Layout {
    cell: Vec2,
    columns: usize,
    rows: usize,
}

impl Layout {
    fn new(width: f32, result: &SweepResult) -> Layout {
        let columns = result.columns.len().max(1);
        let rows = result.rows.len().max(1);
        let cell_width =
            ((width - ROW_LABELS) / columns as f32).clamp(*CELL_WIDTH.start(), *CELL_WIDTH.end());
        Layout {
            cell: vec2(cell_width, CELL_HEIGHT),
            columns,
            rows,
        }
    }

    fn size(&self) -> Vec2 {
        vec2(
            ROW_LABELS + self.cell.x * self.columns as f32,
            self.cell.y * self.rows as f32 + 3.0 * LINE,
        )
    }

    fn grid(&self, whole: Rect) -> Rect {
        let min = whole.min + vec2(ROW_LABELS, LINE);
        Rect::from_min_size(
            min,
            vec2(
                self.cell.x * self.columns as f32,
                self.cell.y * self.rows as f32,
            ),
        )
    }

    fn cell(&self, whole: Rect, column: usize, row: usize) -> Rect {
        let grid = self.grid(whole);
        let from_top = (self.rows - 1 - row) as f32;
        let min = grid.min + vec2(self.cell.x * column as f32, self.cell.y * from_top);
        Rect::from_min_size(min, self.cell).shrink(1.0)
    }
}

/// The knobs' names and values along the grid's edges. Column values that would overlap
/// are thinned to every second (third, ...) one.
fn axes(ui: &egui::Ui, result: &SweepResult, layout: &Layout, whole: Rect) {
    let painter = ui.painter();
    let colour = ui.visuals().text_color();
    let font = FontId::proportional(AXIS_FONT);
    let grid = layout.grid(whole);
    let (first, second) = (&result.request.first, result.request.second.as_ref());
    if let Some(second) = second {
        let at = pos2(whole.left(), whole.top());
        painter.text(at, Align2::LEFT_TOP, second.key, font.clone(), colour);
    }
    for (row, value) in result.rows.iter().enumerate() {
        let y = layout.cell(whole, 0, row).center().y;
        let at = pos2(grid.left() - 6.0, y);
        painter.text(at, Align2::RIGHT_CENTER, value, font.clone(), colour);
    }
    let widest = result.columns.iter().map(String::len).max().unwrap_or(1);
    let stride = ((widest as f32 * AXIS_FONT * 0.6 + 8.0) / layout.cell.x).ceil() as usize;
    for (column, value) in result.columns.iter().enumerate() {
        if column % stride.max(1) != 0 {
            continue;
        }
        let x = layout.cell(whole, column, 0).center().x;
        let at = pos2(x, grid.bottom() + 2.0);
        painter.text(at, Align2::CENTER_TOP, value, font.clone(), colour);
    }
    let at = pos2(grid.center().x, grid.bottom() + LINE + 2.0);
    painter.text(at, Align2::CENTER_TOP, first.key, font, colour);
}

/// How a cell is drawn besides its own counts.
#[derive(Clone, Copy)]
struct Look {
    /// The most spans any cell lost: a half of that many is filled full.
    most: u64,
    /// Whether it is the settings in force: exactly (`true`) or the nearest cell.
    now: Option<bool>,
}

/// One cell as a widget; true when it was clicked.
fn cell(ui: &egui::Ui, result: &SweepResult, index: usize, rect: Rect, look: Look) -> bool {
    let point = &result.points[index];
    let response = ui.interact(
        rect,
        ui.scope_id().with(("whatif-cell", index)),
        Sense::click(),
    );
    response.widget_info(|| WidgetInfo::labeled(egui::Role::Button, true, label(result, point)));
    paint(ui, rect, point, look, response.hovered());
    let clicked = response.clicked();
    response.on_hover_ui(|ui| hover(ui, result, point));
    clicked
}

/// "max_queue_size 512, sample_rate 0.25": the cell's values.
fn values(result: &SweepResult, point: &Point) -> String {
    let change = result.change(point);
    let named: Vec<String> = change
        .iter()
        .map(|(key, value)| format!("{} {value}", short_name(key)))
        .collect();
    named.join(", ")
}

/// The cell's name: its values and the spans it lost.
fn label(result: &SweepResult, point: &Point) -> String {
    format!("{}: {} lost", values(result, point), point.lost)
}

/// How strongly a half is filled: not at all for no span, else from [`FAINTEST`] (one
/// span) to full (`most` spans), in proportion.
fn strength(spans: u64, most: u64) -> f32 {
    if spans == 0 || most == 0 {
        return 0.0;
    }
    FAINTEST + (1.0 - FAINTEST) * (spans as f32 / most as f32).min(1.0)
}

fn paint(ui: &egui::Ui, rect: Rect, point: &Point, look: Look, hovered: bool) {
    let painter = ui.painter();
    painter.rect_filled(rect, 2.0, ui.visuals().extreme_bg_color);
    if point.lost == 0 {
        painter.rect_filled(rect, 2.0, theme::OK.gamma_multiply(NOTHING_LOST));
    }
    let (top, bottom) = rect.split_top_bottom_at_fraction(0.5);
    let queue = strength(point.dropped_queue_full, look.most);
    let kill = strength(point.lost_at_kill, look.most);
    painter.rect_filled(top, 2.0, theme::LIMIT.gamma_multiply(queue));
    painter.rect_filled(bottom, 2.0, theme::LOST.gamma_multiply(kill));
    // A dark shadow under light text reads on every fill, amber and red alike.
    let text = point.lost.to_string();
    let font = FontId::proportional(12.0);
    let shadow = Color32::from_black_alpha(220);
    painter.text(
        rect.center() + vec2(1.0, 1.0),
        Align2::CENTER_CENTER,
        &text,
        font.clone(),
        shadow,
    );
    painter.text(
        rect.center(),
        Align2::CENTER_CENTER,
        text,
        font,
        Color32::WHITE,
    );
    outline(ui, rect, look.now, hovered);
}

/// The settings in force: a solid blue frame, dashed when it is only the nearest cell.
/// A hovered cell gets a thin light frame.
fn outline(ui: &egui::Ui, rect: Rect, now: Option<bool>, hovered: bool) {
    let painter = ui.painter();
    let blue = Stroke::new(2.5, theme::QUEUE);
    match now {
        Some(true) => {
            painter.rect_stroke(rect, 2.0, blue, StrokeKind::Outside);
        }
        Some(false) => {
            let r = rect.expand(1.0);
            let corners = [
                r.left_top(),
                r.right_top(),
                r.right_bottom(),
                r.left_bottom(),
                r.left_top(),
            ];
            painter.extend(Shape::dashed_line(&corners, blue, 4.0, 3.0));
        }
        None => {}
    }
    if hovered {
        let light = Stroke::new(1.5, ui.visuals().strong_text_color());
        painter.rect_stroke(rect, 2.0, light, StrokeKind::Inside);
    }
}

/// A cell's counts, as the one-knob table has them.
fn hover(ui: &mut egui::Ui, result: &SweepResult, point: &Point) {
    ui.label(RichText::new(values(result, point)).strong());
    let rows = [
        ("created", point.created, None),
        ("sampled", point.sampled, None),
        (
            "dropped (queue full)",
            point.dropped_queue_full,
            Some(theme::LIMIT),
        ),
        ("lost at SIGKILL", point.lost_at_kill, Some(theme::LOST)),
        ("lost in all", point.lost, Some(theme::LOST)),
        ("worst of the seeds", point.worst_lost, Some(theme::LOST)),
    ];
    egui::Grid::new("whatif-cell-counts").show(ui, |ui| {
        for (name, count, colour) in rows {
            ui.label(name);
            let text = RichText::new(count.to_string());
            ui.label(match colour.filter(|_| count > 0) {
                Some(colour) => text.color(colour),
                None => text,
            });
            ui.end_row();
        }
    });
    ui.label(if point.killed {
        "the median run ended at SIGKILL"
    } else {
        "the median run exited before SIGKILL"
    });
    ui.weak("click to run these settings live");
}

/// What the colours and the outline mean.
fn legend(ui: &mut egui::Ui, most: u64) {
    ui.horizontal_wrapped(|ui| {
        swatch(ui, theme::LIMIT, None);
        ui.label("top half: dropped, queue full");
        swatch(ui, theme::LOST, None);
        ui.label("bottom half: lost at SIGKILL");
        swatch(ui, theme::OK.gamma_multiply(NOTHING_LOST), None);
        ui.label("nothing lost");
        swatch(ui, Color32::TRANSPARENT, Some(theme::QUEUE));
        ui.label("settings in force (dashed: the nearest cell)");
    });
    ui.weak(format!(
        "The number in a cell is every span it lost; the stronger a half, the more spans \
         (full: {most}). Hover a cell for its counts."
    ));
}

fn swatch(ui: &mut egui::Ui, fill: Color32, frame: Option<Color32>) {
    let (rect, _) = ui.allocate_exact_size(vec2(14.0, 14.0), Sense::hover());
    ui.painter().rect_filled(rect, 2.0, fill);
    if let Some(colour) = frame {
        let stroke = Stroke::new(2.0, colour);
        ui.painter()
            .rect_stroke(rect.shrink(1.0), 2.0, stroke, StrokeKind::Inside);
    }
}
