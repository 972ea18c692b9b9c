//! `gracetrace sweep`: one scenario simulated (`crate::sim`) for every cell of a grid of
//! knob values, each cell with one or more arrival seeds, the runs in parallel on every
//! core. [`grid`] parses the grid, [`output`] renders the table, JSON and CSV (the
//! command in `cli::sweep` prints and writes them); [`shard`] picks one machine's share
//! of the cells, [`part`] writes that share down and [`mod@merge`] joins the shares again.

pub mod grid;
pub mod merge;
pub mod output;
pub mod part;
pub mod shard;

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::sim::{self, Calibration, SimError, SimOutcome, Steady};

pub use grid::{Grid, MAX_CELLS, Vary, VaryError};
pub use merge::{MergeError, merge};
pub use part::{Part, PartError};
pub use shard::{Shard, ShardError};

/// Why a sweep cannot run; each names the input or the cell.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Vary(#[from] VaryError),
    /// A cell the simulator cannot follow (the model workload, an external endpoint).
    #[error("cell {cell}: {error}")]
    Unsupported { cell: String, error: SimError },
    /// More runs than a sweep holds in memory.
    #[error(
        "{cells} cells x {repeats} repeats = {runs} runs; a sweep has at most {MAX_RUNS} \
         (fewer values in --vary, or fewer --repeats)"
    )]
    TooManyRuns { cells: u64, repeats: u64, runs: u64 },
    /// More simulated arrivals than a sweep should take (tens of minutes of every core).
    #[error(
        "{cells} cells x {repeats} repeats x their arrivals (up to {most:.3e} a cell) = \
         {total:.3e} arrivals to simulate; a sweep has at most {MAX_ARRIVALS_SWEPT:.0e} \
         on one machine (fewer values or --repeats, or --shard K/N over N machines)"
    )]
    TooMuchWork {
        cells: u64,
        repeats: u64,
        most: f64,
        total: f64,
    },
}

/// The most runs (cells x repeats) a sweep keeps: each run's outcome stays in memory for
/// the table, about a kilobyte each.
pub const MAX_RUNS: u64 = 1_000_000;
/// The most arrivals a sweep simulates in all: at about 20 million spans a second on each
/// core and three spans an arrival, some minutes of a two-core machine.
pub const MAX_ARRIVALS_SWEPT: f64 = 5e9;

/// Bounds the sweep's total work before any run starts: runs (memory, the whole sweep's,
/// since `merge` holds every shard's) and arrivals (time, only `shard`'s cells, since the
/// other shards run elsewhere), naming the product that is too large.
pub fn check_work(
    base: &Settings,
    grid: &Grid,
    repeats: usize,
    shard: Shard,
) -> Result<(), SweepError> {
    let (cells, repeats) = (grid.len() as u64, repeats as u64);
    let runs = cells.saturating_mul(repeats);
    if runs > MAX_RUNS {
        return Err(SweepError::TooManyRuns {
            cells,
            repeats,
            runs,
        });
    }
    let mut total = 0.0;
    let mut most: f64 = 0.0;
    for index in shard.cells(grid.len()) {
        let arrivals = grid.settings(base, index)?.workload.expected_arrivals();
        most = most.max(arrivals);
        total += arrivals * repeats as f64;
    }
    if total > MAX_ARRIVALS_SWEPT {
        return Err(SweepError::TooMuchWork {
            cells,
            repeats,
            most,
            total,
        });
    }
    Ok(())
}

/// One simulated run of a cell.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Run {
    /// The arrival seed (`workload.seed`) it ran with.
    pub seed: u64,
    pub outcome: SimOutcome,
}

impl Run {
    /// Sampled spans that never reached the collector: dropped (queue full or ended after
    /// shutdown), failed to export, or lost at SIGKILL.
    pub fn lost(&self) -> u64 {
        self.outcome.spans.lost()
    }

    /// [`Run::lost`] as a percentage of the sampled spans (0 when none were sampled).
    pub fn loss_pct(&self) -> f64 {
        let sampled = self.outcome.spans.sampled;
        if sampled == 0 {
            0.0
        } else {
            self.lost() as f64 * 100.0 / sampled as f64
        }
    }
}

/// One cell: its values and its runs, ordered by spans lost (then seed).
#[derive(Clone, Debug)]
pub struct Cell {
    /// Its place in the grid (see [`Grid::values`]).
    pub index: usize,
    pub values: Vec<(&'static str, String)>,
    /// The export batch size it ran with (lower than the scenario's when the queue was
    /// varied below it).
    pub batch_size: usize,
    pub runs: Vec<Run>,
}

impl Sweep {
    /// The steady-state window its runs measured, if they did.
    pub fn steady(&self) -> Option<Steady> {
        let outcome = &self.cells.first()?.runs.first()?.outcome;
        let s = outcome.steady.as_ref()?;
        Some(Steady {
            warm_up_s: s.warm_up_s,
            measured_s: s.measured_s,
        })
    }
}

impl Cell {
    /// The median run by spans lost (the lower middle one of an even count).
    pub fn median(&self) -> &Run {
        &self.runs[(self.runs.len() - 1) / 2]
    }

    /// The run that lost the most spans.
    pub fn worst(&self) -> &Run {
        &self.runs[self.runs.len() - 1]
    }
}

/// Whether a sweep of `base` over `grid` measures the steady state: the scenario has no
/// `shutdown.at_s` and no cell sets one, so it is a runner that is never shut down, as
/// the window's live runner is. `steady` is the window to measure then.
pub fn steady_for(base: &Settings, grid: &Grid, steady: Steady) -> Option<Steady> {
    let sigterm = base.shutdown.at_s.is_some() || grid.keys().contains(&"shutdown.at_s");
    (!sigterm).then_some(steady)
}

/// A finished sweep.
#[derive(Clone, Debug)]
pub struct Sweep {
    pub scenario: String,
    pub semantics: &'static str,
    pub varied: Vec<&'static str>,
    /// Runs per cell: arrival seeds `seed`, `seed + 1`, ...
    pub repeats: usize,
    /// What each run charged per export and per span (bytes per span on the wire).
    pub costs: Calibration,
    pub cells: Vec<Cell>,
}

/// Builds every cell's settings and asks the simulator whether it can follow them, so a
/// bad cell is refused, naming it, before any run starts; with `costs`, also whether they
/// hold the model's times for every cell that serves with the model.
pub fn check(base: &Settings, grid: &Grid, costs: Option<&Calibration>) -> Result<(), SweepError> {
    for index in 0..grid.len() {
        let settings = grid.settings(base, index)?;
        let checked = sim::check(&settings)
            .and_then(|()| costs.map_or(Ok(()), |c| sim::check_model_times(&settings, c)));
        checked.map_err(|error| SweepError::Unsupported {
            cell: grid::describe(&grid.values(index)),
            error,
        })?;
    }
    Ok(())
}

/// The workload of the first cell that serves with the model, whose times the
/// calibration must then measure (`virtual_clock::calibrate_for`).
pub fn model_workload(
    base: &Settings,
    grid: &Grid,
) -> Result<Option<crate::config::WorkloadSettings>, SweepError> {
    for index in 0..grid.len() {
        let settings = grid.settings(base, index)?;
        if settings.workload.kind == crate::config::WorkloadKind::Model {
            return Ok(Some(settings.workload));
        }
    }
    Ok(None)
}

/// Runs every cell `repeats` times (arrival seeds `seed..seed + repeats`) in virtual time,
/// in parallel; `progress(done, total)` is called after each run, from the worker that
/// finished it.
pub fn run(
    base: &Settings,
    grid: &Grid,
    repeats: usize,
    costs: &Calibration,
    steady: Option<Steady>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Sweep, SweepError> {
    run_shard(base, grid, repeats, costs, steady, Shard::WHOLE, progress)
}

/// [`run`] for `shard`'s cells only; each cell's runs are what [`run`] gives it, so the
/// shards of a sweep together are the sweep. With `steady`, each run is a steady-state
/// run of its cell ([`sim::run_steady`]).
pub fn run_shard(
    base: &Settings,
    grid: &Grid,
    repeats: usize,
    costs: &Calibration,
    steady: Option<Steady>,
    shard: Shard,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Sweep, SweepError> {
    check(base, grid, Some(costs))?;
    let repeats = repeats.max(1);
    let indices: Vec<usize> = shard.cells(grid.len()).collect();
    let total = indices.len() * repeats;
    let done = AtomicUsize::new(0);
    let runs: Vec<Run> = (0..total)
        .into_par_iter()
        .map(|job| {
            let index = indices[job / repeats];
            let mut settings = grid.settings(base, index)?;
            let seed = settings.workload.seed.wrapping_add((job % repeats) as u64);
            settings.workload.seed = seed;
            let outcome = match steady {
                Some(steady) => sim::run_steady(&settings, costs, steady),
                None => sim::run(&settings, costs),
            };
            let outcome = outcome.map_err(|error| SweepError::Unsupported {
                cell: grid::describe(&grid.values(index)),
                error,
            })?;
            progress(done.fetch_add(1, Relaxed) + 1, total);
            Ok(Run { seed, outcome })
        })
        .collect::<Result<_, SweepError>>()?;
    let cells = runs
        .chunks(repeats)
        .zip(&indices)
        .map(|(runs, &index)| {
            let mut runs = runs.to_vec();
            runs.sort_by_key(|r| (r.lost(), r.seed));
            Ok(Cell {
                index,
                values: owned(grid.values(index)),
                batch_size: grid.settings(base, index)?.batch.max_export_batch_size,
                runs,
            })
        })
        .collect::<Result<_, SweepError>>()?;
    Ok(Sweep {
        scenario: base.name.clone(),
        semantics: base.tracing.semantics.name(),
        varied: grid.keys(),
        repeats,
        costs: costs.clone(),
        cells,
    })
}

fn owned(values: Vec<(&'static str, &str)>) -> Vec<(&'static str, String)> {
    values
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::sim::TEST_COSTS as COSTS;

    fn base() -> Settings {
        let mut s = Settings::default();
        for (k, v) in [
            ("workload.duration_s", "3"),
            ("workload.rate_per_s", "200"),
            ("collector.latency_ms", "500"),
            ("batch.max_export_batch_size", "32"),
        ] {
            s.set(k, v, crate::config::Source::CommandLine).unwrap();
        }
        s
    }

    #[test]
    fn a_bigger_queue_drops_fewer_spans_and_cells_keep_their_order() {
        let grid = Grid::new(vec![
            Vary::parse("batch.max_queue_size=64,256,100000").unwrap(),
        ])
        .unwrap();
        let calls = AtomicUsize::new(0);
        let sweep = run(&base(), &grid, 3, &COSTS, None, &|_, total| {
            assert_eq!(total, 9);
            calls.fetch_add(1, Relaxed);
        })
        .unwrap();
        assert_eq!(calls.load(Relaxed), 9);
        let queues: Vec<&str> = sweep.cells.iter().map(|c| c.values[0].1.as_str()).collect();
        assert_eq!(queues, ["64", "256", "100000"]);
        let dropped: Vec<u64> = sweep
            .cells
            .iter()
            .map(|c| c.median().outcome.spans.dropped_queue_full)
            .collect();
        assert!(dropped[0] > dropped[1] && dropped[1] > 0, "{dropped:?}");
        assert_eq!(dropped[2], 0);
        for cell in &sweep.cells {
            let seeds: std::collections::BTreeSet<u64> = cell.runs.iter().map(|r| r.seed).collect();
            assert_eq!(seeds.len(), 3);
            assert!(cell.median().lost() <= cell.worst().lost());
        }
    }

    #[test]
    fn a_cell_the_simulator_cannot_follow_is_named_before_any_run() {
        let grid = Grid::new(vec![Vary::parse("workload.kind=synthetic,model").unwrap()]).unwrap();
        let e = run(&base(), &grid, 1, &COSTS, None, &|_, _| {
            panic!("no run may start")
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("cell workload.kind=model: workload.kind = model"),
            "{e}"
        );
    }
}
