//! `train` and `infer` in a build without the `model` feature: the commands stay in the
//! help, so that someone following the README finds them, and each says which feature
//! it needs (exit 2) instead of clap's "unrecognized subcommand".

use std::process::ExitCode;

use super::CliError;
use crate::config::NotBuilt;

/// Whatever arguments were given: they are not read, the command cannot run here.
#[derive(Clone, Debug, clap::Args)]
pub struct NotBuiltArgs {
    /// (This build has no model: rebuild with `--features model`.)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub ignored: Vec<String>,
}

pub type TrainArgs = NotBuiltArgs;
pub type InferArgs = NotBuiltArgs;

/// `gracetrace train` without the model.
pub fn train(_args: TrainArgs) -> Result<ExitCode, CliError> {
    Err(CliError::input(NotBuilt {
        what: "gracetrace train",
        feature: "model",
    }))
}

/// `gracetrace infer` without the model.
pub fn infer(_args: InferArgs) -> Result<ExitCode, CliError> {
    Err(CliError::input(NotBuilt {
        what: "gracetrace infer",
        feature: "model",
    }))
}
