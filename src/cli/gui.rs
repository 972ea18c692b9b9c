//! `gracetrace` and `gracetrace gui`: the window.

use std::path::PathBuf;
use std::process::ExitCode;

use super::CliError;

/// Open the window.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct GuiArgs {
    /// Scenario TOML to start from; without it, the settings of the last session.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
}

/// Blocks until the window is closed. A bad scenario is bad input; a window that cannot
/// open (no display) is a failure.
#[cfg(feature = "gui")]
pub fn gui(args: GuiArgs) -> Result<ExitCode, CliError> {
    match crate::ui::run_gui(args.scenario.as_deref()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error @ crate::ui::GuiError::Settings(_)) => Err(CliError::input(error)),
        Err(error) => Err(CliError::failed(error)),
    }
}

/// A build without the window (`--no-default-features`): says so and names the feature.
#[cfg(not(feature = "gui"))]
pub fn gui(_args: GuiArgs) -> Result<ExitCode, CliError> {
    Err(CliError::input(crate::config::NotBuilt {
        what: "the window (`gracetrace` or `gracetrace gui`)",
        feature: "gui",
    }))
}
