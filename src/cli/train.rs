//! `gracetrace train`: trains the glyph diffusion model on the CPU and writes its weights,
//! a sample sheet and a JSON report; the loss is printed as it goes.

use std::path::PathBuf;
use std::process::ExitCode;

use super::CliError;
use super::args::{RangeError, in_range};
use crate::workload::model::DEFAULT_WEIGHTS;
use crate::workload::model::train::{TrainConfig, train as run_training};

/// Train the glyph diffusion model on the CPU and write its weights.
#[derive(Clone, Debug, clap::Args)]
pub struct TrainArgs {
    /// Optimiser steps (1..=1000000). 1000 steps of 32 images take about 10 minutes on
    /// two CPU cores and draw every glyph recognisably.
    #[arg(long, default_value_t = 1000)]
    pub steps: usize,
    /// Seed of the run: initial weights, data and noise (any u64).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Weights file to write (burnpack); a sample sheet and a JSON report go beside it.
    #[arg(long, default_value = DEFAULT_WEIGHTS)]
    pub out: PathBuf,
    /// Images per step (1..=1024).
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Peak learning rate (0 < lr <= 1).
    #[arg(long, default_value_t = 2e-3)]
    pub lr: f64,
    /// Print the loss every this many steps (1..=1000000).
    #[arg(long, default_value_t = 50)]
    pub log_every: usize,
    /// Seeds per class for the sample sheet written after training (0..=16; 0 skips it).
    #[arg(long, default_value_t = 2)]
    pub sample_seeds: usize,
}

impl TrainArgs {
    /// Checks the flags' ranges, naming the flag in the message.
    pub fn validate(&self) -> Result<(), RangeError> {
        in_range("--steps", self.steps, 1, 1_000_000)?;
        in_range("--batch-size", self.batch_size, 1, 1024)?;
        in_range("--log-every", self.log_every, 1, 1_000_000)?;
        in_range("--sample-seeds", self.sample_seeds, 0, 16)?;
        if !(self.lr > 0.0 && self.lr <= 1.0) {
            return Err(RangeError {
                flag: "--lr",
                value: self.lr.to_string(),
                allowed: "0 < lr <= 1".into(),
            });
        }
        Ok(())
    }
}

/// `gracetrace train`: prints the loss curve as it goes, writes the weights, a sample sheet
/// and a JSON report beside them.
pub fn train(args: TrainArgs) -> Result<ExitCode, CliError> {
    args.validate().map_err(CliError::input)?;
    let config = TrainConfig {
        steps: args.steps,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        seed: args.seed,
        out: args.out,
        log_every: args.log_every,
        sample_seeds: args.sample_seeds,
        sample_steps: 20,
    };
    let report = run_training(&config, &mut |line| println!("{line}")).map_err(CliError::failed)?;
    println!(
        "final loss {:.5} after {} steps in {:.0} s",
        report.final_loss, report.steps, report.wall_s
    );
    Ok(ExitCode::SUCCESS)
}
