//! `gracetrace sweep`: reads the scenario, the grid and where the results go, refuses bad
//! input (exit code 2, one line naming it) before the calibration's real run, then sweeps
//! every cell in virtual time (or, with `--shard K/N`, one machine's share of them) and
//! writes the table, the JSON (or the part) and the CSV. `sweep merge` is `sweep_merge`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use super::output::{Output, one_stdout, print_beside};
use super::sweep_merge::MergeArgs;
use super::{CliError, ScenarioArgs};
use crate::config::Settings;
use crate::session::sweep::part::{self, Part};
use crate::session::sweep::{self, Grid, Shard, Vary, output};
use crate::session::virtual_clock::calibrate_for;
use crate::sim::{Calibration, Steady};

/// Run one scenario in virtual time for every combination of knob values.
#[derive(Clone, Debug, clap::Args)]
// `sweep merge PART...` beside `sweep --vary ...`: a subcommand lifts `--vary`'s
// requirement and takes none of the sweep's own flags.
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SweepArgs {
    #[command(subcommand)]
    pub command: Option<SweepCommand>,
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// A knob and its values: `key=a,b,c`, `key=FROM..TOxN` (geometric) or
    /// `key=FROM..TO+N` (arithmetic). Repeatable; the cells are every combination.
    #[arg(long, value_name = "KEY=VALUES", required = true)]
    pub vary: Vec<String>,
    /// Arrival seeds per cell (`workload.seed`, +1, ...); the table shows the median and
    /// the worst run.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub repeats: u16,
    /// Without `shutdown.at_s` (in the scenario or a --vary), each run measures the steady
    /// state of the traffic this many minutes, after a 30 s warm-up left out, and the table
    /// gives rates per second beside the counts.
    #[arg(long, value_name = "MINUTES", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=60))]
    pub steady_minutes: u16,
    /// Run only the cells whose index i has i % N == K (0 <= K < N) and write them, with
    /// what the sweep was, to --json as a part; `sweep merge` joins the N parts.
    #[arg(long, value_name = "K/N", allow_hyphen_values = true)]
    pub shard: Option<String>,
    /// Charge the export costs measured by an earlier sweep (its --json, or a part)
    /// instead of calibrating: shards merge only with one calibration.
    #[arg(long, value_name = "FILE")]
    pub calibration: Option<PathBuf>,
    /// Write the sweep as JSON here (`-` for stdout); with --shard, the part.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write one CSV row per cell here (`-` for stdout); with --shard, the shard's cells.
    #[arg(long)]
    pub csv: Option<PathBuf>,
}

#[derive(Clone, Debug, clap::Subcommand)]
pub enum SweepCommand {
    /// Join the parts of a sharded sweep (`sweep --shard K/N --json PART`) into the table,
    /// JSON and CSV of one unsharded run.
    Merge(MergeArgs),
}

/// Flags of `sweep` that make no sense together, or a file that cannot be read.
#[derive(Debug, thiserror::Error)]
enum FlagError {
    #[error("--shard {shard} needs --json FILE: the part it writes is what `sweep merge` joins")]
    ShardWithoutJson { shard: Shard },
    #[error("--calibration {file}: cannot read it: {error}")]
    Unreadable { file: String, error: std::io::Error },
}

/// Everything a sweep needs, checked.
struct Prepared {
    base: Settings,
    grid: Grid,
    shard: Option<Shard>,
    steady: Option<Steady>,
    calibration: Option<Calibration>,
    json: Option<Output>,
    csv: Option<Output>,
}

/// Loads the scenario, parses the grid, the shard and the calibration file, and checks
/// both outputs; the error names the input.
fn prepare(args: &SweepArgs) -> Result<Prepared, CliError> {
    let base = args.scenario.settings()?;
    let varies = args
        .vary
        .iter()
        .map(|arg| Vary::parse(arg))
        .collect::<Result<Vec<_>, _>>()
        .map_err(CliError::input)?;
    let grid = Grid::new(varies).map_err(CliError::input)?;
    let window = Steady {
        measured_s: f64::from(args.steady_minutes) * 60.0,
        ..Steady::default()
    };
    let steady = sweep::steady_for(&base, &grid, window);
    let base = steady.map_or(base.clone(), |s| s.settings(&base));
    let shard = args.shard.as_deref().map(Shard::parse).transpose();
    let shard = shard.map_err(CliError::input)?;
    if let (Some(shard), None) = (shard, &args.json) {
        return Err(CliError::input(FlagError::ShardWithoutJson { shard }));
    }
    let calibration = args.calibration.as_deref().map(read_calibration);
    let calibration = calibration.transpose()?;
    sweep::check(&base, &grid, calibration.as_ref()).map_err(CliError::input)?;
    let repeats = usize::from(args.repeats);
    let work = sweep::check_work(&base, &grid, repeats, shard.unwrap_or(Shard::WHOLE));
    work.map_err(CliError::input)?;
    let json = Output::optional("--json", args.json.as_deref())?;
    let csv = Output::optional("--csv", args.csv.as_deref())?;
    one_stdout(("--json", &json), ("--csv", &csv))?;
    Ok(Prepared {
        base,
        grid,
        shard,
        steady,
        calibration,
        json,
        csv,
    })
}

/// The calibration in `path` (a sweep's JSON or a part); bad input if there is none.
fn read_calibration(path: &std::path::Path) -> Result<Calibration, CliError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| {
        CliError::input(FlagError::Unreadable {
            file: file.clone(),
            error,
        })
    })?;
    part::read_calibration(&file, &text).map_err(CliError::input)
}

pub fn sweep(args: SweepArgs) -> Result<ExitCode, CliError> {
    let prepared = prepare(&args)?;
    let costs = match prepared.calibration {
        Some(costs) => costs,
        None => {
            let model = sweep::model_workload(&prepared.base, &prepared.grid);
            let model = model.map_err(CliError::input)?;
            eprintln!("sweep: calibrating the virtual clock (a 1.5 s real run)");
            if model.is_some() {
                eprintln!("sweep: measuring the model's times (its warm-up and a few requests)");
            }
            calibrate_for(model.as_ref()).map_err(CliError::failed)?
        }
    };
    let repeats = usize::from(args.repeats);
    let Prepared {
        base,
        grid,
        shard,
        steady,
        json,
        csv,
        ..
    } = prepared;
    let swept = sweep::run_shard(
        &base,
        &grid,
        repeats,
        &costs,
        steady,
        shard.unwrap_or(Shard::WHOLE),
        &progress_line,
    )
    .map_err(CliError::input)?;
    let mut table = output::table(&swept);
    if let Some(shard) = shard {
        table += &format!(
            "shard {shard}: {} of the sweep's {} cells; `gracetrace sweep merge` joins the \
             parts.\n",
            swept.cells.len(),
            grid.len()
        );
    }
    print_beside(&table, &[&json, &csv]);
    if let Some(out) = json {
        match shard {
            Some(shard) => {
                let print = part::fingerprint(&base, &grid, repeats, &costs);
                let print = print.map_err(CliError::failed)?;
                out.write_json(&Part::new(&swept, shard, grid.len(), print))?;
            }
            None => out.write_json(&output::json(&swept))?,
        }
    }
    if let Some(out) = csv {
        out.write(&output::csv(&swept))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `done/total runs (p%)` on stderr: on a terminal one line rewritten at each whole
/// percent, elsewhere (a log, a test) a line every tenth, so a sweep of 100,000 runs
/// prints at most 101 updates.
fn progress_line(done: usize, total: usize) {
    let terminal = std::io::stderr().is_terminal();
    let step = if terminal { 100 } else { 10 };
    if done != total && done * step / total == (done - 1) * step / total {
        return;
    }
    let line = format!("sweep: {done}/{total} runs ({}%)", done * 100 / total);
    match (terminal, done == total) {
        (true, false) => eprint!("\r{line}"),
        (true, true) => eprintln!("\r{line}"),
        (false, _) => eprintln!("{line}"),
    }
}
