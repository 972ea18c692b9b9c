//! `gracetrace knobs`: every knob's key, environment variable, default and range, from the
//! one table (`config::knobs`) that the scenario parser, `--set`, the environment and the
//! window's tooltips also read.

use std::process::ExitCode;

use super::CliError;
use crate::config::{Settings, knobs::KNOBS};

pub fn knobs() -> Result<ExitCode, CliError> {
    let defaults = Settings::default();
    println!(
        "{:<36} {:<34} {:<14} range",
        "key", "environment", "default"
    );
    for knob in KNOBS {
        println!(
            "{:<36} {:<34} {:<14} {}",
            knob.key,
            knob.env.unwrap_or("-"),
            (knob.get)(&defaults),
            knob.range()
        );
    }
    Ok(ExitCode::SUCCESS)
}
