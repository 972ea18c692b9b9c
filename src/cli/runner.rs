//! `gracetrace runner`: the child process of the real-process check
//! (`lifecycle::process`). Its stdout is the protocol its parent reads, not a terminal.

use std::process::ExitCode;

use super::{CliError, ScenarioArgs};
use crate::lifecycle::process::serve_as_runner;

/// Serve a scenario's traffic as a real runner process exporting to ENDPOINT until SIGTERM.
#[derive(Clone, Debug, clap::Args)]
pub struct RunnerArgs {
    /// The full OTLP/HTTP traces URL to export to.
    #[arg(long)]
    pub endpoint: String,
    /// The runner's number, sent with every export so the parent's collector can tell
    /// runners apart.
    #[arg(long, default_value_t = 1)]
    pub runner_id: u64,
    #[command(flatten)]
    pub scenario: ScenarioArgs,
}

pub fn runner(args: RunnerArgs) -> Result<ExitCode, CliError> {
    // The parent's endpoint wins over everything, the user's `--set`s included.
    let mut scenario = args.scenario.clone();
    scenario
        .overrides
        .push(format!("exporter.endpoint={}", args.endpoint));
    let settings = scenario.settings()?;
    serve_as_runner(
        &settings,
        args.endpoint,
        args.runner_id,
        &mut std::io::stdout(),
    )
    .map_err(CliError::failed)?;
    Ok(ExitCode::SUCCESS)
}
