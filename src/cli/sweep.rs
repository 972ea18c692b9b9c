//! `gracetrace sweep`: reads the scenario, the grid and where the results go, refuses bad
//! input (exit code 2, one line naming it) before the calibration's real run, then sweeps
//! every cell in virtual time and writes the table, the JSON and the CSV.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use super::output::{Output, one_stdout};
use super::{CliError, ScenarioArgs};
use crate::config::Settings;
use crate::session::sweep::{self, Grid, Vary, output};
use crate::session::virtual_clock::calibrate;

/// Run one scenario in virtual time for every combination of knob values.
#[derive(Clone, Debug, clap::Args)]
pub struct SweepArgs {
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
    /// Write the sweep as JSON here (`-` for stdout).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write one CSV row per cell here (`-` for stdout).
    #[arg(long)]
    pub csv: Option<PathBuf>,
}

/// Everything a sweep needs, checked.
struct Prepared {
    base: Settings,
    grid: Grid,
    json: Option<Output>,
    csv: Option<Output>,
}

/// Loads the scenario, parses the grid and checks both outputs; the error names the input.
fn prepare(args: &SweepArgs) -> Result<Prepared, CliError> {
    let base = args.scenario.settings()?;
    let varies = args
        .vary
        .iter()
        .map(|arg| Vary::parse(arg))
        .collect::<Result<Vec<_>, _>>()
        .map_err(CliError::input)?;
    let grid = Grid::new(varies).map_err(CliError::input)?;
    sweep::check(&base, &grid).map_err(CliError::input)?;
    sweep::check_work(&base, &grid, usize::from(args.repeats)).map_err(CliError::input)?;
    let json = Output::optional("--json", args.json.as_deref())?;
    let csv = Output::optional("--csv", args.csv.as_deref())?;
    one_stdout(("--json", &json), ("--csv", &csv))?;
    Ok(Prepared {
        base,
        grid,
        json,
        csv,
    })
}

pub fn sweep(args: SweepArgs) -> Result<ExitCode, CliError> {
    let Prepared {
        base,
        grid,
        json,
        csv,
    } = prepare(&args)?;
    eprintln!("sweep: calibrating the virtual clock (a 1.5 s real run)");
    let calibration = calibrate().map_err(CliError::failed)?;
    let repeats = usize::from(args.repeats);
    let swept =
        sweep::run(&base, &grid, repeats, calibration, &progress_line).map_err(CliError::input)?;
    let to_stdout = [&json, &csv]
        .iter()
        .any(|o| matches!(o, Some(Output::Stdout)));
    if to_stdout {
        // stdout is the JSON or CSV a program reads; the table goes beside it.
        eprint!("{}", output::table(&swept));
    } else {
        print!("{}", output::table(&swept));
    }
    if let Some(out) = json {
        out.write_json(&output::json(&swept))?;
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
