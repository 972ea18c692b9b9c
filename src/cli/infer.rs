//! `gracetrace infer`: one image from a prompt with the trained model, served as a runner
//! serves a request (its spans, its trace id); prints the device, the warm-up, every
//! step's time and the total, and writes the PNG.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use opentelemetry::trace::TracerProvider as _;

use super::CliError;
use super::args::{RangeError, in_range};
use crate::config::DeviceChoice;
use crate::workload::model::{MAX_STEPS, Model, ModelConfig, ModelError, default_weights_path};
use crate::workload::request::{ModelRequest, Outcome, model_request};

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
    #[arg(long, default_value = "auto", value_parser = device)]
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
    pub fn validate(&self) -> Result<(), RangeError> {
        in_range("--steps", self.steps, 1, MAX_STEPS)
    }
}

/// `--device`: one of [`DeviceChoice::ALL`] by name.
fn device(raw: &str) -> Result<DeviceChoice, UnknownDevice> {
    DeviceChoice::ALL
        .into_iter()
        .find(|d| d.name() == raw)
        .ok_or_else(|| UnknownDevice(raw.to_owned()))
}

/// A `--device` that is none of the devices.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a device: expected auto, wgpu or cpu")]
pub struct UnknownDevice(String);

/// Validates the flags, loads the model and serves one request.
pub fn infer(args: InferArgs) -> Result<ExitCode, CliError> {
    args.validate().map_err(CliError::input)?;
    let config = ModelConfig {
        weights: args.weights.clone().unwrap_or_else(default_weights_path),
        device: args.device,
        seed: args.seed,
    };
    serve_one(&args, &config).map_err(CliError::failed)?;
    Ok(ExitCode::SUCCESS)
}

fn serve_one(args: &InferArgs, config: &ModelConfig) -> Result<(), ModelError> {
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
        return Err(ModelError::Execution(format!(
            "the request did not complete: {:?}",
            reply.outcome
        )));
    };
    for (i, ms) in reply.step_ms.iter().enumerate() {
        println!("step {:>4}/{}: {ms:8.2} ms", i + 1, args.steps);
    }
    std::fs::write(&args.out, &png).map_err(|e| ModelError::Write {
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
