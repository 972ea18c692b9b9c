//! `gracetrace sweep merge PART...`: reads the parts that `sweep --shard K/N --json PART`
//! wrote, refuses (exit code 2, one line naming the file or the shard) parts of different
//! sweeps or calibrations, a missing or doubled shard and a file that is no part, then
//! writes the table, JSON and CSV that one unsharded run of the sweep writes.

use std::path::PathBuf;
use std::process::ExitCode;

use super::CliError;
use super::output::{Output, one_stdout, print_beside};
use crate::session::sweep::{self, Part, output};

/// Join the parts of a sharded sweep.
#[derive(Clone, Debug, clap::Args)]
pub struct MergeArgs {
    /// The parts, one per shard 0..N-1, in any order.
    #[arg(required = true, value_name = "PART")]
    pub parts: Vec<PathBuf>,
    /// Write the sweep as JSON here (`-` for stdout).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write one CSV row per cell here (`-` for stdout).
    #[arg(long)]
    pub csv: Option<PathBuf>,
}

/// A part that cannot be read at all.
#[derive(Debug, thiserror::Error)]
#[error("{file}: cannot read it: {error}")]
struct Unreadable {
    file: String,
    error: std::io::Error,
}

pub fn merge(args: MergeArgs) -> Result<ExitCode, CliError> {
    let json = Output::optional("--json", args.json.as_deref())?;
    let csv = Output::optional("--csv", args.csv.as_deref())?;
    one_stdout(("--json", &json), ("--csv", &csv))?;
    let mut parts = Vec::with_capacity(args.parts.len());
    for path in &args.parts {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| {
            CliError::input(Unreadable {
                file: file.clone(),
                error,
            })
        })?;
        let part = Part::read(&file, &text).map_err(CliError::input)?;
        parts.push((file, part));
    }
    let swept = sweep::merge(parts).map_err(CliError::input)?;
    print_beside(&output::table(&swept), &[&json, &csv]);
    if let Some(out) = json {
        out.write_json(&output::json(&swept))?;
    }
    if let Some(out) = csv {
        out.write(&output::csv(&swept))?;
    }
    Ok(ExitCode::SUCCESS)
}
