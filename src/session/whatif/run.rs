//! The what-if's two runs, in virtual time on the settings in force: [`sweep`] (one knob
//! or a grid of two, through [`crate::session::sweep`]) and [`advise`] (the advisor,
//! [`crate::session::advise`]), and why either fails ([`WhatIfError`]).

use super::request::{Request, current};
use std::cmp::Reverse;

use super::result::{AdviceResult, FleetCell, Point, SweepResult, recommendations};
use crate::config::Settings;
use crate::session::advise::{AdviseError, Advisor, render::render};
use crate::session::sweep::{self, Grid, SweepError, Vary, VaryError};
use crate::sim::{Calibration, Steady};

/// Arrival seeds per cell; the chart shows each cell's median run.
pub const REPEATS: usize = 3;
/// Arrival seeds per advisor probe (as `gracetrace advise --seeds 3`).
const ADVISE_SEEDS: usize = 3;

/// Why a sweep or the advisor gave no result; each names the input or the run at fault.
#[derive(Debug, thiserror::Error)]
pub enum WhatIfError {
    /// The request is not swept: the reason [`Request::refused`] gives, word for word, as
    /// the window shows it next to the Sweep button.
    #[error("{0}")]
    Refused(String),
    /// A range did not make a `--vary` that `gracetrace sweep` takes, or the grid is
    /// too big.
    #[error(transparent)]
    Range(#[from] VaryError),
    /// A cell could not be simulated.
    #[error(transparent)]
    Sweep(#[from] SweepError),
    /// The advisor could not run on the settings in force.
    #[error(transparent)]
    Advise(#[from] AdviseError),
}

/// The settings the simulator runs when a shutdown is swept: those in force, with SIGTERM
/// at the end of the traffic when they have none (as `gracetrace advise` assumes), so
/// that what the platform's shutdown loses shows.
fn with_shutdown(settings: &Settings) -> (Settings, f64, bool) {
    let mut on = settings.clone();
    let assumed = on.shutdown.at_s.is_none();
    let at_s = on.shutdown.at_s.unwrap_or(on.workload.duration_s);
    on.shutdown.at_s = Some(at_s);
    (on, at_s, assumed)
}

/// Whether the what-if measures the steady state of the live runner's traffic (the
/// settings in force have no SIGTERM and no `shutdown.*` knob is swept: the live runner is
/// never shut down unless the user presses Shutdown), and its window.
fn steady(request: &Request, settings: &Settings) -> Option<Steady> {
    let keys = std::iter::once(request.first.key).chain(request.second.as_ref().map(|a| a.key));
    let shutdown = keys.into_iter().any(|k| k.starts_with("shutdown."));
    (settings.shutdown.at_s.is_none() && !shutdown).then(Steady::default)
}

/// A cell as the chart draws it: its median run's counts (in a steady state, those of
/// the measured window, with its rates), and its worst run's loss.
fn point(cell: &sweep::Cell) -> Point {
    let (m, w) = (cell.median(), cell.worst());
    let value = |i: usize| cell.values.get(i).map(|v| v.1.clone());
    let first = value(0).unwrap_or_default();
    let second = value(1);
    let s = &m.outcome.spans;
    let mut point = Point {
        x: first.parse().unwrap_or(f64::NAN),
        value: first,
        y: second.as_ref().map(|v| v.parse().unwrap_or(f64::NAN)),
        second,
        created: s.created,
        sampled: s.sampled,
        dropped_queue_full: s.dropped_queue_full,
        lost_at_kill: s.lost_at_kill,
        lost: m.lost(),
        received: s.received,
        killed: m.outcome.killed,
        worst_lost: w.outcome.steady.map_or(w.lost(), |s| s.lost),
        steady: m.outcome.steady,
    };
    if let Some(st) = m.outcome.steady {
        (point.created, point.sampled) = (st.created, st.sampled);
        (point.dropped_queue_full, point.lost_at_kill) = (st.dropped_queue_full, 0);
        (point.lost, point.received) = (st.lost, st.received);
    }
    point
}

/// Sweeps `request` on `settings` in virtual time; `progress(done, total)` after each run.
pub fn sweep(
    request: &Request,
    settings: &Settings,
    costs: Calibration,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<SweepResult, WhatIfError> {
    if let Some(why) = request.refused() {
        return Err(WhatIfError::Refused(why));
    }
    let varies = request.vary_args().into_iter().map(|arg| Vary::parse(&arg));
    let grid = Grid::new(varies.collect::<Result<_, _>>()?)?;
    let steady = steady(request, settings);
    let (on, sigterm_at_s, sigterm_assumed) = match steady {
        Some(steady) => (steady.settings(settings), 0.0, false),
        None => with_shutdown(settings),
    };
    let swept = sweep::run(&on, &grid, REPEATS, &costs, steady, progress)?;
    let mut values = grid.varies.into_iter().map(|v| v.values);
    let mut result = SweepResult {
        request: request.clone(),
        base: settings.clone(),
        sigterm_at_s,
        sigterm_assumed,
        steady,
        current: current(request.first.key, settings),
        current_second: (request.second.as_ref()).and_then(|a| current(a.key, settings)),
        repeats: swept.repeats,
        costs,
        columns: values.next().unwrap_or_default(),
        rows: values.next().unwrap_or_default(),
        points: swept.cells.iter().map(point).collect(),
        fleet: None,
    };
    result.fleet = fleet_cell(&result, &swept.cells);
    Ok(result)
}

/// The fleet the fleet view draws: the median run's of the cell of the settings in
/// force, else of the cell that lost most; none for a lone runner.
fn fleet_cell(result: &SweepResult, cells: &[sweep::Cell]) -> Option<FleetCell> {
    let most_lost =
        || (0..result.points.len()).max_by_key(|&i| (result.points[i].lost, Reverse(i)));
    let index = result.current_cell().map(|(i, _)| i).or_else(most_lost)?;
    let report = cells.get(index)?.median().outcome.fleet.clone()?;
    Some(FleetCell { index, report })
}

/// Runs the advisor on `settings` in virtual time.
pub fn advise(
    settings: &Settings,
    costs: Calibration,
    price: Option<f64>,
) -> Result<AdviceResult, WhatIfError> {
    let advice = Advisor::new(settings, costs, ADVISE_SEEDS)?.run()?;
    Ok(AdviceResult {
        base: settings.clone(),
        text: render(&advice, price),
        recommendations: recommendations(&advice),
    })
}
