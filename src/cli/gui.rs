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
    /// Open with "served by your app" chosen and this command line typed, e.g.
    /// `--app 'python3 server.py 8000'` (split as a shell would, without one).
    #[arg(long, value_name = "CMD")]
    pub app: Option<String>,
    /// Your app's URL, for the traffic the window sends it (as `probe --url`).
    #[arg(long, requires = "app")]
    pub url: Option<String>,
    /// Your app is ready when GET of this path answers 2xx (as `probe --ready-path`).
    #[arg(long, requires = "app")]
    pub ready_path: Option<String>,
    /// Start your app as soon as the window opens.
    #[arg(long, requires = "app")]
    pub start: bool,
}

/// Blocks until the window is closed. A bad scenario is bad input; a window that cannot
/// open (no display) is a failure.
#[cfg(feature = "gui")]
pub fn gui(args: GuiArgs) -> Result<ExitCode, CliError> {
    let your_app = args.app.map(|line| crate::session::your_app::AppStart {
        line,
        url: args.url.unwrap_or_default(),
        ready_path: args.ready_path.unwrap_or_default(),
    });
    match crate::ui::run_gui(args.scenario.as_deref(), your_app, args.start) {
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
