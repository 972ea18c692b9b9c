//! `gracetrace run`: one scenario, headless, on the real clock (the threaded pipeline) or
//! the virtual one (the simulator, calibrated by a short real run); the summary on stderr
//! and the JSON report where `--json` says.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use super::output::Output;
use super::{CliError, ScenarioArgs};
use crate::config::Settings;
use crate::record::ExitProgress;
use crate::record::report::Report;
use crate::session::virtual_clock::{calibrate_for, model_workload, run_virtual};

/// Run a scenario through the real SDK, exporter and collector; report every span.
#[derive(Clone, Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Write the JSON report here (`-` for stdout).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// `real`: the threaded pipeline in real time; `virtual`: the simulator, its
    /// per-export costs measured by a short real run first.
    #[arg(long, value_enum, default_value_t = Clock::Real)]
    pub clock: Clock,
}

/// Which engine `run` drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Clock {
    Real,
    Virtual,
}

pub fn run(args: RunArgs) -> Result<ExitCode, CliError> {
    let settings = args.scenario.settings()?;
    let out = Output::optional("--json", args.json.as_deref())?;
    let report = report_on(&settings, args.clock)?;
    if report.exit.as_ref().is_some_and(|e| e.timed_out) && std::io::stderr().is_terminal() {
        eprintln!(); // ends the progress line
    }
    eprintln!("{}", report.summary());
    if let Some(out) = out {
        out.write_json(&report)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The report of one run on `clock`. A scenario the simulator cannot follow is refused
/// before the calibration's real run, as bad input naming the setting.
fn report_on(settings: &Settings, clock: Clock) -> Result<Report, CliError> {
    match clock {
        Clock::Real => {
            (settings.fleet)
                .check_real_time()
                .map_err(CliError::input)?;
            crate::session::run_with_progress(settings, &progress_line).map_err(CliError::failed)
        }
        Clock::Virtual => {
            crate::sim::check(settings).map_err(CliError::input)?;
            let model = model_workload(settings);
            let calibration = calibrate_for(model).map_err(CliError::failed)?;
            run_virtual(settings, &calibration).map_err(CliError::input)
        }
    }
}

/// What the end of the run waits for: redrawn in place every second on a terminal, a line
/// every 5 s otherwise (a log keeps the story without a line a second).
fn progress_line(progress: &ExitProgress) {
    if std::io::stderr().is_terminal() {
        eprint!("\r{progress}\x1b[K");
    } else if (progress.waited_s as u64).is_multiple_of(5) {
        eprintln!("{progress}");
    }
}
