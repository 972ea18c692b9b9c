//! `gracetrace train` and `gracetrace infer`: the model's command-line entry points.
//!
//! Bad input gets one line naming the flag, the value and the allowed range, and exit
//! code 2, as the rest of the CLI does; a failure while running gets the error and exit 1.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use super::train::{TrainConfig, train};
use super::{DEFAULT_WEIGHTS, DeviceChoice, MAX_STEPS, Model, ModelConfig, default_weights_path};

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
    pub fn validate(&self) -> Result<(), ArgError> {
        range("--steps", self.steps, 1, 1_000_000)?;
        range("--batch-size", self.batch_size, 1, 1024)?;
        range("--log-every", self.log_every, 1, 1_000_000)?;
        range("--sample-seeds", self.sample_seeds, 0, 16)?;
        if !(self.lr > 0.0 && self.lr <= 1.0) {
            return Err(ArgError {
                flag: "--lr",
                value: self.lr.to_string(),
                allowed: "0 < lr <= 1".into(),
            });
        }
        Ok(())
    }
}

/// Generate one image from a prompt and write it as PNG.
#[derive(Clone, Debug, clap::Args)]
pub struct InferArgs {
    /// The prompt; its first letter or digit is the glyph drawn.
    #[arg(long)]
    pub prompt: String,
    /// Denoising steps (1..=1000).
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// PNG file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Where to run: wgpu if any adapter exists, else CPU (auto); wgpu only; CPU only.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    /// Seed of the starting noise (any u64).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Weights file [default: assets/model/glyph-diffusion.bpk]
    #[arg(long)]
    pub weights: Option<PathBuf>,
}

impl InferArgs {
    /// Checks the flags' ranges, naming the flag in the message.
    pub fn validate(&self) -> Result<(), ArgError> {
        range("--steps", self.steps, 1, MAX_STEPS)
    }
}

/// A flag out of range: "--steps 0 is out of range (allowed 1..=1000)".
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{flag} {value} is out of range (allowed {allowed})")]
pub struct ArgError {
    pub flag: &'static str,
    pub value: String,
    /// The allowed values, in words.
    pub allowed: String,
}

fn range(flag: &'static str, value: usize, low: usize, high: usize) -> Result<(), ArgError> {
    if (low..=high).contains(&value) {
        Ok(())
    } else {
        Err(ArgError {
            flag,
            value: value.to_string(),
            allowed: format!("{low}..={high}"),
        })
    }
}

/// `gracetrace train`: prints the loss curve as it goes, writes the weights, a sample sheet
/// and a JSON report beside them.
pub fn train_command(args: TrainArgs) -> ExitCode {
    if let Err(error) = args.validate() {
        eprintln!("gracetrace train: {error}");
        return ExitCode::from(2);
    }
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
    match train(&config, &mut |line| println!("{line}")) {
        Ok(report) => {
            println!(
                "final loss {:.5} after {} steps in {:.0} s",
                report.final_loss, report.steps, report.wall_s
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("gracetrace train: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `gracetrace infer`: prints the device, the warm-up time, every step's time and the total,
/// and writes the image.
pub fn infer_command(args: InferArgs) -> ExitCode {
    if let Err(error) = args.validate() {
        eprintln!("gracetrace infer: {error}");
        return ExitCode::from(2);
    }
    let config = ModelConfig {
        weights: args.weights.clone().unwrap_or_else(default_weights_path),
        device: args.device,
        seed: args.seed,
    };
    match infer(&args, &config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gracetrace infer: {error}");
            ExitCode::FAILURE
        }
    }
}

fn infer(args: &InferArgs, config: &ModelConfig) -> Result<(), super::ModelError> {
    use opentelemetry::trace::TracerProvider as _;

    use crate::workload::request::{ModelRequest, Outcome, model_request};

    let loading = Instant::now();
    let model = Model::load(config)?;
    let info = model.device();
    println!(
        "device: {} on {} ({}), loaded in {:.0} ms",
        info.backend,
        info.adapter,
        info.device_type,
        loading.elapsed().as_secs_f64() * 1000.0
    );
    if let Some(reason) = &info.fallback_reason {
        println!("note: {reason}");
    }
    let warm = model.warm_up(&|fraction, stage| {
        eprintln!("warm-up {:>3.0}%  {stage}", fraction * 100.0);
    })?;
    println!("warm-up: {:.2} s", warm.as_secs_f64());
    // A real SDK provider (no exporter: this command serves one request and exits) so the
    // request gets a real trace id, made by the same code as the runner's requests.
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let tracer = provider.tracer("gracetrace-infer");
    let started = Instant::now();
    let reply = model_request(
        &tracer,
        ModelRequest {
            prompt: &args.prompt,
            steps: args.steps,
            seed: args.seed,
            step_events: true,
        },
        None,
        &std::sync::atomic::AtomicBool::new(false),
        None,
        &mut |_stop, on_step| model.generate(&args.prompt, args.steps, args.seed, on_step),
    );
    let total = started.elapsed();
    if let Some(error) = reply.error {
        return Err(error);
    }
    let (Outcome::Completed(_), Some(png)) = (reply.outcome, reply.png) else {
        return Err(super::ModelError::Execution(format!(
            "the request did not complete: {:?}",
            reply.outcome
        )));
    };
    for (i, ms) in reply.step_ms.iter().enumerate() {
        println!("step {:>4}/{}: {ms:8.2} ms", i + 1, args.steps);
    }
    std::fs::write(&args.out, &png).map_err(|e| super::ModelError::Write {
        path: args.out.clone(),
        reason: e.to_string(),
    })?;
    let mean = reply.step_ms.iter().sum::<f64>() / reply.step_ms.len().max(1) as f64;
    println!(
        "inference: {:.1} ms for {} steps (mean {mean:.2} ms/step); upload (PNG): {:.2} ms; \
         request: {:.1} ms",
        reply.inference_ms,
        args.steps,
        reply.upload_ms,
        total.as_secs_f64() * 1000.0
    );
    println!("wrote {} ({} bytes)", args.out.display(), png.len());
    println!("trace_id: {}", reply.trace_id);
    Ok(())
}
