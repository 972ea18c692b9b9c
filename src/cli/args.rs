//! What several commands share: the scenario arguments (`--scenario`, `--set`) and the
//! one error type every command returns, which decides the exit code.

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Settings;

/// The settings a command runs with: defaults, then the environment, then the scenario
/// file, then each `--set` (the last word wins).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ScenarioArgs {
    /// Scenario TOML (see assets/scenarios/); without it, defaults and environment.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Override one knob, `key=value` (repeatable); wins over the file and environment.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

impl ScenarioArgs {
    /// The settings, with `first` applied before the user's own `--set`s (a command's
    /// shorthand flags, such as probe's `--platform`); a bad one is bad input.
    pub fn settings_with(&self, first: &[String]) -> Result<Settings, CliError> {
        let overrides: Vec<String> = first.iter().chain(&self.overrides).cloned().collect();
        let settings = Settings::load_from_process(self.scenario.as_deref(), &overrides)
            .map_err(CliError::input)?;
        crate::config::features::check(&settings).map_err(CliError::input)?;
        Ok(settings)
    }

    /// The settings.
    pub fn settings(&self) -> Result<Settings, CliError> {
        self.settings_with(&[])
    }
}

type Cause = Box<dyn Error + Send + Sync>;

/// Why a command stopped. The cause keeps its own type (each names its input: the flag,
/// variable or `file:line`, the value and what is allowed); this only says which exit
/// code it earns.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad input, refused before any work: exit 2, as clap's own errors.
    #[error("{0}")]
    Input(Cause),
    /// The work itself failed (a port taken, a calibration that could not run, a report
    /// that could not be written): exit 1.
    #[error("{0}")]
    Failed(Cause),
}

impl CliError {
    /// Bad input.
    pub fn input(cause: impl Into<Cause>) -> CliError {
        CliError::Input(cause.into())
    }

    /// A failure while working.
    pub fn failed(cause: impl Into<Cause>) -> CliError {
        CliError::Failed(cause.into())
    }

    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Input(_) => ExitCode::from(2),
            CliError::Failed(_) => ExitCode::FAILURE,
        }
    }
}

/// A flag out of range: "--steps 0 is out of range (allowed 1..=1000)".
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{flag} {value} is out of range (allowed {allowed})")]
pub struct RangeError {
    pub flag: &'static str,
    pub value: String,
    /// The allowed values, in words.
    pub allowed: String,
}

/// `value` of `flag` within `low..=high`, or the error naming both.
pub fn in_range(
    flag: &'static str,
    value: usize,
    low: usize,
    high: usize,
) -> Result<(), RangeError> {
    if (low..=high).contains(&value) {
        Ok(())
    } else {
        Err(RangeError {
            flag,
            value: value.to_string(),
            allowed: format!("{low}..={high}"),
        })
    }
}
