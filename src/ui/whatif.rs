//! The "What if" view: pick a knob and a range, optionally a second knob and its range,
//! and the engine (`session::whatif`) sweeps them in virtual time on the settings in force.
//! With one knob the chart shows each value's spans lost (to a full queue and at SIGKILL,
//! coloured apart) with the current setting marked, and a click on a point or an "Apply"
//! button applies that value live; with two, a heatmap ([`super::heatmap`]) whose cells
//! apply their pair of values. Under it, the advisor's answer with a button per
//! recommendation. Every number drawn is one the engine sent.

use eframe::egui::{self, Color32, ProgressBar, RichText};
use egui_plot::{Legend, Line, MarkerShape, Plot, PlotPoints, Points, VLine};

use super::{heatmap, theme, whatif_fleet};
use crate::config::knobs;
use crate::config::{ConfigError, Settings};
use crate::session::live::Snapshot;
use crate::session::whatif::{
    self, AdviceResult, Axis, JobView, MAX_STEPS, Point, Progress, Request, SweepResult,
};

/// What the user chose, kept between frames.
#[derive(Debug)]
pub struct Form {
    pub first: Axis,
    /// The "and" knob, none by default: with one, the sweep draws a heatmap.
    pub second: Option<Axis>,
    /// The knob each axis's `from` and `to` were last set for (a new knob gets its own
    /// range).
    ranged_for: [Option<&'static str>; 2],
    /// Why the last "Apply" could not be applied.
    pub message: Option<String>,
}

/// Values of the "and" knob when it is chosen: with the first knob's 10, a 50-cell map.
const SECOND_STEPS: usize = 5;

/// `key` with `steps` values, its range to be filled from the settings in force.
fn unranged(key: &'static str, steps: usize) -> Axis {
    Axis {
        key,
        from: 0.0,
        to: 0.0,
        steps,
    }
}

impl Default for Form {
    fn default() -> Self {
        Form {
            first: unranged("batch.max_queue_size", 10),
            second: None,
            ranged_for: [None, None],
            message: None,
        }
    }
}

impl Form {
    /// A form holding `request` (as after the user typed it).
    pub fn for_request(request: &Request) -> Form {
        Form {
            first: request.first.clone(),
            second: request.second.clone(),
            ranged_for: [
                Some(request.first.key),
                request.second.as_ref().map(|a| a.key),
            ],
            message: None,
        }
    }

    /// The sweep the form asks for.
    pub fn request(&self) -> Request {
        Request {
            first: self.first.clone(),
            second: self.second.clone(),
        }
    }

    /// A knob chosen anew gets a first range around its value in force.
    fn range_new_knobs(&mut self, in_force: &Settings) {
        let axes = [Some(&mut self.first), self.second.as_mut()];
        for (axis, ranged_for) in axes.into_iter().zip(&mut self.ranged_for) {
            let Some(axis) = axis.filter(|a| *ranged_for != Some(a.key)) else {
                continue;
            };
            if let Some((from, to)) = whatif::default_range(axis.key, in_force) {
                (axis.from, axis.to) = (from, to);
            }
            *ranged_for = Some(axis.key);
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
    if let Some(result) = &view.sweep.last {
        caption(ui, result);
        let clicked = match result.request.second {
            Some(_) => heatmap::show(ui, result),
            None => chart(ui, result).or(cells(ui, result)),
        };
        if let Some(index) = clicked {
            action = apply(form, result.cell_settings(index, edited));
        }
        if let Some(fleet) = &result.fleet {
            ui.separator();
            whatif_fleet::show(ui, result, fleet);
        }
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

/// The first knob and its range; under it the "and" knob, its range and the Sweep
/// button, with the reason when the engine would refuse the sweep.
fn form_row(ui: &mut egui::Ui, form: &mut Form, in_force: &Settings) -> Option<Action> {
    form.range_new_knobs(in_force);
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new("What if").strong().size(15.0));
        let mut first = Some(form.first.key);
        knob_choice(ui, "whatif-knob", &mut first, None);
        form.first.key = first.unwrap_or(form.first.key);
        range_fields(ui, &mut form.first);
    });
    let mut pressed = None;
    ui.horizontal_wrapped(|ui| {
        let label = ui.label("and").id;
        let mut second = form.second.as_ref().map(|s| s.key);
        knob_choice(ui, "whatif-second-knob", &mut second, Some(form.first.key)).labelled_by(label);
        if second != form.second.as_ref().map(|s| s.key) {
            form.second = second.map(|key| unranged(key, SECOND_STEPS));
            form.ranged_for[1] = None;
            form.range_new_knobs(in_force);
        }
        if let Some(axis) = &mut form.second {
            range_fields(ui, axis);
        }
        let request = form.request();
        let refused = request.refused();
        if ui
            .add_enabled(refused.is_none(), egui::Button::new("Sweep"))
            .clicked()
        {
            pressed = Some(Action::Sweep(request));
        }
        if let Some(why) = refused {
            ui.label(RichText::new(why).color(theme::LIMIT));
        }
    });
    pressed
}

/// A numeric knob to sweep; with `none_but` the list starts with "none" and leaves that
/// knob out (it is the other axis).
fn knob_choice(
    ui: &mut egui::Ui,
    id: &str,
    chosen: &mut Option<&'static str>,
    none_but: Option<&'static str>,
) -> egui::Response {
    let shown = chosen.unwrap_or("none");
    egui::ComboBox::from_id_salt(id)
        .selected_text(shown)
        .height(400.0)
        .show_ui(ui, |ui| {
            if none_but.is_some() {
                ui.selectable_value(chosen, None, "none");
            }
            for key in whatif::knobs().into_iter().filter(|k| Some(*k) != none_but) {
                ui.selectable_value(chosen, Some(key), key);
            }
        })
        .response
        .on_hover_text(super::controls::tip(shown))
}

/// From, to and how many values of one knob.
fn range_fields(ui: &mut egui::Ui, axis: &mut Axis) {
    let bounds = knobs::find(axis.key).map(|k| &k.bounds);
    let (min, max) = bounds.and_then(|b| b.numeric()).unwrap_or((0.0, 1.0));
    let whole = matches!(
        bounds,
        Some(knobs::Bounds::Int { .. } | knobs::Bounds::OptionalInt { .. })
    );
    let label = ui.label("from").id;
    ui.add(field(&mut axis.from, min, max, whole))
        .labelled_by(label);
    let label = ui.label("to").id;
    ui.add(field(&mut axis.to, min, max, whole))
        .labelled_by(label);
    let label = ui.label("values").id;
    ui.add(egui::DragValue::new(&mut axis.steps).range(2..=MAX_STEPS))
        .labelled_by(label);
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
            ui.add(ProgressBar::new(0.0).animate(true).text(
                "calibrating the virtual clock (a 1.5 s real run of the collector; \
                         with the model, its warm-up and a few requests too)",
            ));
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
    if result.request.first.geometric() {
        value.max(f64::MIN_POSITIVE).log10()
    } else {
        value
    }
}

/// The three series and the current setting; returns the cell whose point was clicked.
fn chart(ui: &mut egui::Ui, result: &SweepResult) -> Option<usize> {
    let geometric = result.request.first.geometric();
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
    // A steady state has no SIGTERM, so nothing is lost at SIGKILL: no line for it.
    let shown = if result.steady.is_some() { 2 } else { 3 };
    let lines = lines.into_iter().take(shown);
    let key = result.request.first.key;
    let response = Plot::new("whatif")
        .height(230.0)
        .legend(Legend::default())
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .include_y(0.0)
        .x_axis_label(key)
        .y_axis_label(if result.steady.is_some() {
            "spans lost in the measured window"
        } else {
            "spans lost"
        })
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

/// What was swept and how, and the `gracetrace sweep` command that runs the same cells.
fn caption(ui: &mut egui::Ui, result: &SweepResult) {
    let sigterm = if let Some(steady) = &result.steady {
        format!(
            "{}: what the live runner does while it runs (counts of the {} s measured, rates \
             per second in the rows)",
            steady.describe(),
            steady.measured_s
        )
    } else if result.sigterm_assumed {
        format!(
            "SIGTERM at {} s, the end of the traffic (the settings have none)",
            result.sigterm_at_s
        )
    } else {
        format!("SIGTERM at {} s", result.sigterm_at_s)
    };
    let (swept, per, click) = match &result.request.second {
        None => (
            result.request.first.key.to_string(),
            "value",
            "Click a point or \"Apply\" to run that value live.",
        ),
        Some(second) => (
            format!("{} x {}", result.request.first.key, second.key),
            "pair of values",
            "Click a cell to run its values live.",
        ),
    };
    ui.label(format!(
        "{swept}: spans lost per {per}, the median of {} arrival seeds, \"{}\" in virtual \
         time, {sigterm}. {click}",
        result.repeats, result.base.name
    ));
    let vary: Vec<String> = result
        .request
        .vary_args()
        .iter()
        .map(|arg| format!("--vary {arg}"))
        .collect();
    ui.weak(format!(
        "the same cells as `gracetrace sweep {} --repeats {}`; exports charged {:.2} ms \
         + {:.4} ms/span, measured from {} real exports",
        vary.join(" "),
        result.repeats,
        result.costs.per_batch_ms,
        result.costs.per_span_ms,
        result.costs.exports_measured
    ));
    if let Some(model) = &result.costs.model {
        ui.weak(format!(
            "the model's steps and uploads drawn from {} ({} steps measured)",
            model.source,
            model.step_ms.len()
        ));
    }
}

/// One row per cell with its counts (a steady state's: its rates per second in the
/// measured window, as the live runner's rates panel shows them) and an Apply button;
/// returns the cell pressed.
fn cells(ui: &mut egui::Ui, result: &SweepResult) -> Option<usize> {
    let mut pressed = None;
    let key = whatif::short_name(result.request.first.key);
    let heads: &[&str] = match result.steady {
        Some(_) => &[
            key,
            "created/s",
            "exported/s",
            "dropped/s",
            "lost/s",
            "worst lost",
        ],
        None => &[
            key,
            "created",
            "dropped (full)",
            "lost at kill",
            "lost",
            "worst lost",
            "end",
        ],
    };
    egui::Grid::new("whatif-cells")
        .striped(true)
        .spacing([14.0, 2.0])
        .show(ui, |ui| {
            for &head in heads.iter().chain(&[""]) {
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
                match &p.steady {
                    Some(s) => {
                        ui.label(format!("{:.1}", s.created_per_s));
                        ui.label(format!("{:.1}", s.exported_per_s));
                        ui.label(rate(s.dropped_per_s, theme::LIMIT));
                        ui.label(rate(s.lost_per_s, theme::LOST));
                        ui.label(counted(p.worst_lost, theme::LOST));
                    }
                    None => {
                        ui.label(p.created.to_string());
                        ui.label(counted(p.dropped_queue_full, theme::LIMIT));
                        ui.label(counted(p.lost_at_kill, theme::LOST));
                        ui.label(counted(p.lost, theme::LOST));
                        ui.label(counted(p.worst_lost, theme::LOST));
                        ui.label(if p.killed { "SIGKILL" } else { "exit" });
                    }
                }
                if ui.small_button(format!("Apply {}", p.value)).clicked() {
                    pressed = Some(index);
                }
                ui.end_row();
            }
        });
    pressed
}

/// A rate per second, coloured when it is not zero.
fn rate(per_s: f64, colour: Color32) -> RichText {
    let text = RichText::new(format!("{per_s:.1}"));
    if per_s > 0.0 {
        text.color(colour)
    } else {
        text
    }
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
