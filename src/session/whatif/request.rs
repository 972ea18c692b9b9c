//! What a what-if asks for: the knobs it can vary, one knob's range ([`Axis`]) or two
//! ([`Request`]), the limits on their size and why a request is refused, and the
//! settings a cell's values make ([`with_change`]).

use crate::config::knobs::{self, Bounds};
use crate::config::{ConfigError, Settings, Source};

/// The most values one what-if range may have.
pub const MAX_STEPS: usize = 60;
/// The most cells one what-if may have (`gracetrace sweep` allows far more): a 20 x 20
/// heatmap still reads cell by cell, and its 1,200 simulated runs of a short scenario
/// take seconds, not minutes.
pub const MAX_CELLS: usize = 400;

/// One knob and the range the window asks to sweep it over.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub key: &'static str,
    pub from: f64,
    pub to: f64,
    /// How many values from `from` to `to`, both included.
    pub steps: usize,
}

impl Axis {
    /// A range spanning a decade or more is stepped geometrically, else arithmetically.
    pub fn geometric(&self) -> bool {
        self.from > 0.0 && self.to >= 10.0 * self.from
    }

    /// The `--vary` argument of `gracetrace sweep` that runs the same values.
    pub fn vary_arg(&self) -> String {
        let steps = self.steps.clamp(1, MAX_STEPS);
        if steps == 1 || self.from == self.to {
            return format!("{}={}", self.key, self.from);
        }
        let gaps = (steps - 1) as f64;
        if self.geometric() {
            let factor = (self.to / self.from).powf(1.0 / gaps);
            format!("{}={}..{}x{factor}", self.key, self.from, self.to)
        } else {
            let step = (self.to - self.from) / gaps;
            format!("{}={}..{}+{step}", self.key, self.from, self.to)
        }
    }
}

/// What the window asks to sweep: one knob (a line chart), or two (a heatmap).
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// Along the chart's x axis, the heatmap's columns.
    pub first: Axis,
    /// The heatmap's rows, when a second knob is chosen.
    pub second: Option<Axis>,
}

impl Request {
    /// A sweep of one knob.
    pub fn one(first: Axis) -> Request {
        Request {
            first,
            second: None,
        }
    }

    /// The knobs swept, the first first.
    pub fn axes(&self) -> impl Iterator<Item = &Axis> {
        std::iter::once(&self.first).chain(&self.second)
    }

    /// The `--vary` arguments of `gracetrace sweep` that run the same cells.
    pub fn vary_args(&self) -> Vec<String> {
        self.axes().map(Axis::vary_arg).collect()
    }

    /// Why the window does not sweep this (said next to its Sweep button), if it does not:
    /// one knob twice, a range upside down, or more cells than [`MAX_CELLS`].
    pub fn refused(&self) -> Option<String> {
        if let Some(second) = self.second.as_ref().filter(|s| s.key == self.first.key) {
            return Some(format!("{} is chosen twice: pick another", second.key));
        }
        if let Some(axis) = self.axes().find(|a| a.from > a.to) {
            return Some(format!("{}: from must not be above to", axis.key));
        }
        let steps: Vec<usize> = self.axes().map(|a| a.steps.clamp(1, MAX_STEPS)).collect();
        let cells: usize = steps.iter().product();
        (cells > MAX_CELLS).then(|| {
            let product = steps.iter().map(usize::to_string).collect::<Vec<_>>();
            format!(
                "{} = {cells} cells: at most {MAX_CELLS} (fewer values, or \
                 `gracetrace sweep` for more)",
                product.join(" x ")
            )
        })
    }
}

/// A knob's name without its section (`max_queue_size`), for captions and cells.
pub fn short_name(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

/// The knobs a what-if can vary: every numeric knob of the knob table.
pub fn knobs() -> Vec<&'static str> {
    knobs::KNOBS
        .iter()
        .filter(|k| k.bounds.numeric().is_some())
        .map(|k| k.key)
        .collect()
}

/// The knob's value in `settings`, when it has a number (an optional knob may be "none").
pub fn current(key: &str, settings: &Settings) -> Option<f64> {
    let knob = knobs::find(key)?;
    (knob.get)(settings).parse::<f64>().ok()
}

/// A first range for `key`: an eighth to eight times its value in `settings`, within the
/// knob's bounds (from its minimum when the value is 0 or none).
pub fn default_range(key: &str, settings: &Settings) -> Option<(f64, f64)> {
    let knob = knobs::find(key)?;
    let (min, max) = knob.bounds.numeric()?;
    let whole = matches!(knob.bounds, Bounds::Int { .. } | Bounds::OptionalInt { .. });
    let round = |v: f64| if whole { v.round() } else { v };
    match current(key, settings).filter(|v| *v > 0.0) {
        Some(now) => Some((
            round((now / 8.0).max(min)).max(min),
            round((now * 8.0).min(max)),
        )),
        None => Some((min, round(min + (max - min) / 10.0))),
    }
}

/// `on` with `change` set, the export batch following the queue down unless the change
/// sets it (as the sweep and the controls do), checked as a live change.
pub fn with_change(
    on: &Settings,
    change: &[(&'static str, String)],
) -> Result<Settings, ConfigError> {
    let mut settings = on.clone();
    for (key, value) in change {
        settings.set(key, value, Source::Live)?;
    }
    if !change
        .iter()
        .any(|(k, _)| *k == "batch.max_export_batch_size")
    {
        settings.batch.fit_batch_to_queue();
    }
    settings.validate(Source::Live)?;
    Ok(settings)
}
