//! `gracetrace sweep`: reads the scenario and the grid, refuses bad input (exit code 2,
//! one line naming it) before the calibration's real run, then sweeps and writes.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{Grid, Vary, output};
use crate::config::{Settings, env};
use crate::session::virtual_clock::calibrate;

/// Run one scenario in virtual time for every combination of knob values.
#[derive(Clone, Debug, clap::Args)]
pub struct SweepArgs {
    /// Scenario TOML (see assets/scenarios/); without it, defaults and environment.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Override one knob for every cell, `key=value` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
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

/// Loads the scenario and parses the grid; the error line names the input.
fn prepare(args: &SweepArgs) -> Result<(Settings, Grid), String> {
    let base = Settings::load(&env::process_env, args.scenario.as_deref(), &args.overrides)
        .map_err(|e| e.to_string())?;
    let varies = args
        .vary
        .iter()
        .map(|arg| Vary::parse(arg))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let grid = Grid::new(varies).map_err(|e| e.to_string())?;
    super::check(&base, &grid).map_err(|e| e.to_string())?;
    Ok((base, grid))
}

pub fn sweep_command(args: SweepArgs) -> ExitCode {
    let (base, grid) = match prepare(&args) {
        Ok(ready) => ready,
        Err(line) => {
            eprintln!("gracetrace: {line}");
            return ExitCode::from(2);
        }
    };
    eprintln!("sweep: calibrating the virtual clock (a 1.5 s real run)");
    let costs = match calibrate() {
        Ok(costs) => costs,
        Err(error) => {
            eprintln!("gracetrace: {error}");
            return ExitCode::FAILURE;
        }
    };
    let repeats = usize::from(args.repeats);
    let sweep = match super::run(&base, &grid, repeats, costs, &progress_line) {
        Ok(sweep) => sweep,
        Err(error) => {
            eprintln!("gracetrace: {error}");
            return ExitCode::from(2);
        }
    };
    let to_stdout = |p: &Option<PathBuf>| p.as_ref().is_some_and(|p| p.as_os_str() == "-");
    if to_stdout(&args.json) || to_stdout(&args.csv) {
        // stdout is the JSON or CSV a program reads; the table goes beside it.
        eprint!("{}", output::table(&sweep));
    } else {
        print!("{}", output::table(&sweep));
    }
    let mut code = ExitCode::SUCCESS;
    if let Some(path) = &args.json {
        match serde_json::to_string_pretty(&output::json(&sweep)) {
            Ok(text) => code = write_out(path, &(text + "\n")).unwrap_or(code),
            Err(error) => {
                eprintln!("gracetrace: cannot encode the sweep: {error}");
                code = ExitCode::FAILURE;
            }
        }
    }
    if let Some(path) = &args.csv {
        code = write_out(path, &output::csv(&sweep)).unwrap_or(code);
    }
    code
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

/// Writes `text` to `path` (`-`: stdout); the failure's exit code, naming the file.
pub fn write_out(path: &Path, text: &str) -> Option<ExitCode> {
    if path.as_os_str() == "-" {
        print!("{text}");
        return None;
    }
    match std::fs::write(path, text) {
        Ok(()) => None,
        Err(error) => {
            eprintln!("gracetrace: cannot write {}: {error}", path.display());
            Some(ExitCode::FAILURE)
        }
    }
}
