//! What a what-if found, as the window draws and applies it: a sweep's cells
//! ([`SweepResult`], [`Point`]) with the cell of the settings in force, and the advisor's
//! text with each recommendation as a change ([`AdviceResult`], [`Recommendation`]).

use super::request::{Axis, Request, with_change};
use crate::config::{ConfigError, Settings};
use crate::record::fleet::FleetReport;
use crate::session::advise::Advice;
use crate::sim::{Calibration, Steady, SteadyState};

/// One cell of a what-if: the knobs' values and what its median run lost.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// The first knob's value as the knob spells it (`gracetrace knobs`), and as a number
    /// for the chart.
    pub value: String,
    pub x: f64,
    /// The second knob's value, spelt and as a number, when two are swept.
    pub second: Option<String>,
    pub y: Option<f64>,
    pub created: u64,
    pub sampled: u64,
    pub dropped_queue_full: u64,
    pub lost_at_kill: u64,
    /// Every sampled span the collector did not get (dropped, failed, lost at kill).
    pub lost: u64,
    pub received: u64,
    pub killed: bool,
    /// The most spans any of the cell's runs lost.
    pub worst_lost: u64,
    /// A steady-state sweep's measured window of the median run, with its rates per
    /// second; the counts above are then the window's.
    pub steady: Option<SteadyState>,
}

/// A finished what-if sweep.
#[derive(Clone, Debug)]
pub struct SweepResult {
    pub request: Request,
    /// The settings in force it ran on (before the assumed SIGTERM).
    pub base: Settings,
    /// When SIGTERM came, and whether the what-if chose it (the settings have none); both
    /// meaningless with `steady`.
    pub sigterm_at_s: f64,
    pub sigterm_assumed: bool,
    /// The steady-state window measured, when the sweep measured one (no SIGTERM).
    pub steady: Option<Steady>,
    /// The first knob's value in `base`, and the second's.
    pub current: Option<f64>,
    pub current_second: Option<f64>,
    pub repeats: usize,
    pub costs: Calibration,
    /// The first knob's values as swept (a whole-number knob skips repeats): the
    /// heatmap's columns; and the second's, its rows (none with one knob).
    pub columns: Vec<String>,
    pub rows: Vec<String>,
    /// The cells, the second knob's value changing fastest (as `gracetrace sweep` has them).
    pub points: Vec<Point>,
    /// With `fleet.replicas` above 1: the fleet of one cell's median run (the cell of
    /// the settings in force, else the one that lost most), for the fleet view.
    pub fleet: Option<FleetCell>,
}

/// A cell's fleet: which cell, and its median run's replicas and totals.
#[derive(Clone, Debug)]
pub struct FleetCell {
    pub index: usize,
    pub report: FleetReport,
}

impl SweepResult {
    /// Cell `index`'s values on top of `on` (the window's settings now).
    pub fn cell_settings(
        &self,
        index: usize,
        on: &Settings,
    ) -> Option<Result<Settings, ConfigError>> {
        let point = self.points.get(index)?;
        Some(with_change(on, &self.change(point)))
    }

    /// `point`'s value of each knob swept, as a change to settings.
    pub fn change(&self, point: &Point) -> Vec<(&'static str, String)> {
        let mut change = vec![(self.request.first.key, point.value.clone())];
        if let (Some(axis), Some(value)) = (&self.request.second, &point.second) {
            change.push((axis.key, value.clone()));
        }
        change
    }

    /// The most spans any cell lost: the top of the heatmap's colour scale.
    pub fn most_lost(&self) -> u64 {
        self.points.iter().map(|p| p.lost).max().unwrap_or(0)
    }

    /// The cell in `column` and `row` (row 0 with one knob).
    pub fn index(&self, column: usize, row: usize) -> Option<usize> {
        let rows = self.rows.len().max(1);
        let index = column * rows + row;
        (column < self.columns.len() && row < rows && index < self.points.len()).then_some(index)
    }

    /// The cell of the settings in force, and whether its values are theirs exactly
    /// (else it is the nearest, the settings falling between swept values); none when
    /// they lie outside a knob's range.
    pub fn current_cell(&self) -> Option<(usize, bool)> {
        let (column, on_x) = nearest(&self.columns, self.current?, &self.request.first)?;
        let (row, on_y) = match &self.request.second {
            None => (0, true),
            Some(axis) => nearest(&self.rows, self.current_second?, axis)?,
        };
        Some((self.index(column, row)?, on_x && on_y))
    }
}

/// The index of the value nearest `now` (by ratio on a geometric axis) and whether it is
/// `now`; none when `now` lies outside the values.
fn nearest(values: &[String], now: f64, axis: &Axis) -> Option<(usize, bool)> {
    let numbers: Vec<f64> = values.iter().filter_map(|v| v.parse().ok()).collect();
    let lowest = numbers.iter().copied().reduce(f64::min)?;
    let highest = numbers.iter().copied().reduce(f64::max)?;
    if now < lowest || now > highest {
        return None;
    }
    let scale = |v: f64| if axis.geometric() { v.ln() } else { v };
    let distance = |i: usize| (scale(numbers[i]) - scale(now)).abs();
    let index = (0..numbers.len()).min_by(|&a, &b| distance(a).total_cmp(&distance(b)))?;
    Some((index, numbers[index] == now))
}

/// One recommendation of the advisor, as a change the window can apply.
#[derive(Clone, Debug, PartialEq)]
pub struct Recommendation {
    pub what: String,
    pub change: Vec<(&'static str, String)>,
}

/// A finished advice: its text (as `gracetrace advise` prints it) and each
/// recommendation as a change.
#[derive(Clone, Debug)]
pub struct AdviceResult {
    pub base: Settings,
    pub text: String,
    pub recommendations: Vec<Recommendation>,
}

/// The advisor's answers that are a setting: the queue and delay that drop nothing,
/// and each shutdown option that stops the loss at SIGKILL.
pub fn recommendations(advice: &Advice) -> Vec<Recommendation> {
    let mut out = Vec::new();
    let searches = [
        Some(&advice.queue),
        Some(&advice.delay_now),
        advice.delay_with_queue.as_ref(),
    ];
    for search in searches.into_iter().flatten() {
        let Some(found) = &search.found else { continue };
        let mut change: Vec<(&'static str, String)> = search.context.iter().cloned().collect();
        change.push((search.key, found.clone()));
        out.push(Recommendation {
            what: "drops nothing to a full queue".into(),
            change,
        });
    }
    for option in advice.shutdown.options.iter().filter(|o| o.stops_it()) {
        if let Some(probe) = option.probe() {
            out.push(Recommendation {
                what: format!("{}: loses nothing at SIGKILL", option.what),
                change: probe.change.clone(),
            });
        }
    }
    out
}
