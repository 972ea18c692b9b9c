//! The "What if" view: pick a knob and a range, and the engine (`session::whatif`) sweeps
//! it in virtual time on the settings in force; the chart shows each value's spans lost
//! (to a full queue and at SIGKILL, coloured apart) with the current setting marked, and a
//! click on a point or an "Apply" button applies that value live. Under it, the advisor's
//! answer with a button per recommendation. Every number drawn is one the engine sent.

use eframe::egui::{self, Color32, ProgressBar, RichText};
use egui_plot::{Legend, Line, MarkerShape, Plot, PlotPoints, Points, VLine};

use super::theme;
use crate::config::knobs;
use crate::config::{ConfigError, Settings};
use crate::session::live::Snapshot;
use crate::session::whatif::{
    self, AdviceResult, JobView, MAX_STEPS, Point, Progress, Request, SweepResult,
};

/// What the user chose, kept between frames.
#[derive(Debug)]
pub struct Form {
    pub key: &'static str,
    pub from: f64,
    pub to: f64,
    pub steps: usize,
    /// The knob `from` and `to` were last set for (a new knob gets its own range).
    ranged_for: Option<&'static str>,
    /// Why the last "Apply" could not be applied.
    pub message: Option<String>,
}

impl Default for Form {
    fn default() -> Self {
        Form {
            key: "batch.max_queue_size",
            from: 0.0,
            to: 0.0,
            steps: 10,
            ranged_for: None,
            message: None,
        }
    }
}

impl Form {
    /// A form holding `request` (as after the user typed it).
    pub fn for_request(request: &Request) -> Form {
        Form {
            key: request.key,
            from: request.from,
            to: request.to,
            steps: request.steps,
            ranged_for: Some(request.key),
            message: None,
        }
    }
}

/// What a press in the view asks the app to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Sweep(Request),
    Advise,
    /// These settings, to be applied live (the window's own with one change).
    Apply(Box<Settings>),
}

/// Draws the view; `edited` is what the controls hold, on which a chosen value applies.
pub fn show(
    ui: &mut egui::Ui,
    snapshot: &Snapshot,
    form: &mut Form,
    edited: &Settings,
) -> Option<Action> {
    let view = &snapshot.what_if;
    let mut action = form_row(ui, form, &snapshot.report.settings);
    status(ui, &view.sweep, "sweeping");
    if let Some(result) = &view.sweep.last
        && let Some(index) = chart(ui, result).or(cells(ui, result))
    {
        action = apply(form, result.cell_settings(index, edited));
    }
    ui.separator();
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new("Advisor").strong().size(15.0));
        if ui.button("Advise").clicked() {
            action = Some(Action::Advise);
        }
        ui.weak(
            "the smallest queue and largest delay that drop nothing, and what stops a loss \
             at SIGKILL, on the settings in force (as `gracetrace advise`)",
        );
    });
    status(ui, &view.advice, "advising");
    if let Some(advice) = &view.advice.last
        && let Some(index) = advice_view(ui, advice)
    {
        let change = &advice.recommendations[index].change;
        action = apply(form, Some(whatif::with_change(edited, change)));
    }
    if let Some(message) = &form.message {
        ui.label(RichText::new(message).color(theme::LOST));
    }
    action
}

/// The settings to apply, or why not (said under the view).
fn apply(form: &mut Form, settings: Option<Result<Settings, ConfigError>>) -> Option<Action> {
    match settings? {
        Ok(settings) => {
            form.message = None;
            Some(Action::Apply(Box::new(settings)))
        }
        Err(error) => {
            form.message = Some(format!("not applied: {error}"));
            None
        }
    }
}

/// Knob, from, to, steps and the Sweep button.
fn form_row(ui: &mut egui::Ui, form: &mut Form, in_force: &Settings) -> Option<Action> {
    if form.ranged_for != Some(form.key) {
        if let Some((from, to)) = whatif::default_range(form.key, in_force) {
            (form.from, form.to) = (from, to);
        }
        form.ranged_for = Some(form.key);
    }
    let bounds = knobs::find(form.key).map(|k| &k.bounds);
    let (min, max) = bounds.and_then(|b| b.numeric()).unwrap_or((0.0, 1.0));
    let whole = matches!(
        bounds,
        Some(knobs::Bounds::Int { .. } | knobs::Bounds::OptionalInt { .. })
    );
    let mut pressed = None;
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new("What if").strong().size(15.0));
        egui::ComboBox::from_id_salt("whatif-knob")
            .selected_text(form.key)
            .height(400.0)
            .show_ui(ui, |ui| {
                for key in whatif::knobs() {
                    ui.selectable_value(&mut form.key, key, key);
                }
            })
            .response
            .on_hover_text(super::controls::tip(form.key));
        let label = ui.label("from").id;
        ui.add(field(&mut form.from, min, max, whole))
            .labelled_by(label);
        let label = ui.label("to").id;
        ui.add(field(&mut form.to, min, max, whole))
            .labelled_by(label);
        let label = ui.label("values").id;
        ui.add(egui::DragValue::new(&mut form.steps).range(2..=MAX_STEPS))
            .labelled_by(label);
        let ordered = form.from <= form.to;
        if ui
            .add_enabled(ordered, egui::Button::new("Sweep"))
            .on_disabled_hover_text("from must not be above to")
            .clicked()
        {
            pressed = Some(Action::Sweep(Request {
                key: form.key,
                from: form.from,
                to: form.to,
                steps: form.steps,
            }));
        }
    });
    pressed
}

/// A number field over the knob's bounds, whole numbers for whole-number knobs.
fn field(value: &mut f64, min: f64, max: f64, whole: bool) -> egui::DragValue<'_> {
    let speed = (*value * 0.01).abs().max(if whole { 1.0 } else { 0.001 });
    egui::DragValue::new(value)
        .range(min..=max)
        .speed(speed)
        .max_decimals(if whole { 0 } else { 3 })
}

/// A running job's progress, a failure, or that the result is out of date.
fn status<T>(ui: &mut egui::Ui, job: &JobView<T>, doing: &str) {
    match &job.running {
        Some(Progress {
            calibrating: true, ..
        }) => {
            ui.add(
                ProgressBar::new(0.0)
                    .animate(true)
                    .text("calibrating the virtual clock (a 1.5 s real run of the collector)"),
            );
        }
        Some(p) => {
            let fraction = if p.total == 0 {
                0.0
            } else {
                p.done as f32 / p.total as f32
            };
            let text = if p.total == 0 {
                format!("{doing}...")
            } else {
                format!("{doing}: {}/{} simulated runs", p.done, p.total)
            };
            ui.add(ProgressBar::new(fraction).text(text));
        }
        None => {}
    }
    if let Some(error) = &job.error {
        ui.label(RichText::new(format!("failed: {error}")).color(theme::LOST));
    }
    if job.stale && job.last.is_some() {
        ui.label(
            RichText::new("stale: the settings in force changed since these runs")
                .color(theme::LIMIT),
        );
    }
}

/// Where a value goes on the x axis: log10 for a geometric range.
fn x_of(result: &SweepResult, value: f64) -> f64 {
    if result.request.geometric() {
        value.max(f64::MIN_POSITIVE).log10()
    } else {
        value
    }
}

/// The three series and the current setting; returns the cell whose point was clicked.
fn chart(ui: &mut egui::Ui, result: &SweepResult) -> Option<usize> {
    caption(ui, result);
    let geometric = result.request.geometric();
    let series = |f: fn(&Point) -> u64| -> Vec<[f64; 2]> {
        let xy = result
            .points
            .iter()
            .map(|p| [x_of(result, p.x), f(p) as f64]);
        xy.collect()
    };
    let lines = [
        ("lost in all", series(|p| p.lost), theme::IN_FLIGHT),
        (
            "dropped (queue full)",
            series(|p| p.dropped_queue_full),
            theme::LIMIT,
        ),
        ("lost at SIGKILL", series(|p| p.lost_at_kill), theme::LOST),
    ];
    let key = result.request.key;
    let response = Plot::new("whatif")
        .height(230.0)
        .legend(Legend::default())
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .include_y(0.0)
        .x_axis_label(key)
        .y_axis_label("spans lost")
        .x_axis_formatter(move |mark, _| match geometric {
            true => number(10f64.powf(mark.value)),
            false => number(mark.value),
        })
        .show(ui, |plot| {
            for (name, points, colour) in lines {
                plot.line(Line::new(name, points.clone()).color(colour).width(2.0));
                plot.points(
                    Points::new(name, PlotPoints::from(points))
                        .shape(MarkerShape::Circle)
                        .radius(3.5)
                        .color(colour),
                );
            }
            // On a log axis a value of 0 has no place: then the table's blue row alone marks it.
            if let Some(now) = result.current.filter(|&now| now > 0.0 || !geometric) {
                let name = format!("now: {}", number(now));
                plot.vline(VLine::new(name, x_of(result, now)).color(theme::QUEUE));
            }
            let clicked = plot.response().clicked();
            clicked.then(|| plot.pointer_coordinate()).flatten()
        });
    let at = response.inner?;
    nearest(result, at.x)
}

/// The cell whose value is nearest `x` on the chart.
fn nearest(result: &SweepResult, x: f64) -> Option<usize> {
    let distance = |p: &Point| (x_of(result, p.x) - x).abs();
    (0..result.points.len())
        .min_by(|&a, &b| distance(&result.points[a]).total_cmp(&distance(&result.points[b])))
}

/// A value as a person reads it: whole numbers without decimals.
fn number(v: f64) -> String {
    if v.fract() == 0.0 || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{}", (v * 1000.0).round() / 1000.0)
    }
}

fn caption(ui: &mut egui::Ui, result: &SweepResult) {
    let sigterm = if result.sigterm_assumed {
        format!(
            "SIGTERM at {} s, the end of the traffic (the settings have none)",
            result.sigterm_at_s
        )
    } else {
        format!("SIGTERM at {} s", result.sigterm_at_s)
    };
    ui.label(format!(
        "{}: spans lost per value, the median of {} arrival seeds, \"{}\" in virtual time, \
         {sigterm}. Click a point or \"Apply\" to run that value live.",
        result.request.key, result.repeats, result.base.name
    ));
    ui.weak(format!(
        "the same cells as `gracetrace sweep --vary {} --repeats {}`; exports charged {:.2} ms \
         + {:.4} ms/span, measured from {} real exports",
        result.request.vary_arg(),
        result.repeats,
        result.costs.per_batch_ms,
        result.costs.per_span_ms,
        result.costs.exports_measured
    ));
}

/// One row per cell with its counts and an Apply button; returns the cell pressed.
fn cells(ui: &mut egui::Ui, result: &SweepResult) -> Option<usize> {
    let mut pressed = None;
    let key = result
        .request
        .key
        .rsplit('.')
        .next()
        .unwrap_or(result.request.key);
    egui::Grid::new("whatif-cells")
        .striped(true)
        .spacing([14.0, 2.0])
        .show(ui, |ui| {
            for head in [
                key,
                "created",
                "dropped (full)",
                "lost at kill",
                "lost",
                "worst lost",
                "end",
                "",
            ] {
                ui.label(RichText::new(head).strong());
            }
            ui.end_row();
            for (index, p) in result.points.iter().enumerate() {
                let now = result.current.is_some_and(|c| c == p.x);
                let value = RichText::new(&p.value);
                ui.label(if now {
                    value.color(theme::QUEUE).strong()
                } else {
                    value
                });
                ui.label(p.created.to_string());
                ui.label(counted(p.dropped_queue_full, theme::LIMIT));
                ui.label(counted(p.lost_at_kill, theme::LOST));
                ui.label(counted(p.lost, theme::LOST));
                ui.label(counted(p.worst_lost, theme::LOST));
                ui.label(if p.killed { "SIGKILL" } else { "exit" });
                if ui.small_button(format!("Apply {}", p.value)).clicked() {
                    pressed = Some(index);
                }
                ui.end_row();
            }
        });
    pressed
}

/// A count, coloured when it is not zero.
fn counted(n: u64, colour: Color32) -> RichText {
    let text = RichText::new(n.to_string());
    if n > 0 { text.color(colour) } else { text }
}

/// The advisor's text as the CLI prints it, and a button per recommendation.
fn advice_view(ui: &mut egui::Ui, advice: &AdviceResult) -> Option<usize> {
    let mut pressed = None;
    for (index, r) in advice.recommendations.iter().enumerate() {
        let change: Vec<String> = r.change.iter().map(|(k, v)| format!("{k}={v}")).collect();
        ui.horizontal(|ui| {
            if ui.button(format!("Apply {}", change.join(" "))).clicked() {
                pressed = Some(index);
            }
            ui.label(&r.what);
        });
    }
    egui::ScrollArea::vertical()
        .id_salt("advice-text")
        .max_height(220.0)
        .show(ui, |ui| {
            ui.label(RichText::new(&advice.text).monospace().size(11.5));
        });
    pressed
}
