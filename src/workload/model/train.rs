//! The project's own training code: v-prediction diffusion training of the U-Net on rendered
//! glyphs, with burn's autodiff over the CPU backend `flex`, deterministic from a seed.
//!
//! Every batch is drawn from one `StdRng` seeded with the run's seed (classes, placements,
//! colours, noise levels and noise), and the network's initial weights come from the
//! device RNG seeded with it too, so two runs with the same seed, steps and batch size on
//! the same machine produce the same loss curve and the same weights.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, grad_clipping::GradientClippingConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::image::Image;
use super::sampler::{self, IMAGE_VALUES};
use super::schedule::coefficients;
use super::unet::{CHANNELS, Denoiser, IMAGE_SIZE, NULL_CLASS, NUM_CLASSES};
use super::{ModelError, glyphs, weights};

/// Share of training samples whose label is replaced by the null class, so the one network
/// also learns the unconditional prediction that classifier-free guidance needs.
const P_UNCONDITIONAL: f64 = 0.1;

/// What to train and where to put it.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// Optimiser steps.
    pub steps: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Peak learning rate (Adam), reached after a linear warm-up and then decayed along a
    /// cosine to 5% of it at the last step.
    pub learning_rate: f64,
    /// Seed of everything random in the run.
    pub seed: u64,
    /// Weights file to write (burnpack).
    pub out: PathBuf,
    /// Print the loss every this many steps.
    pub log_every: usize,
    /// After training, sample one image per class and seed (this many seeds), write them as a
    /// sheet next to the weights and count how many show their glyph. 0 skips it.
    pub sample_seeds: usize,
    /// Denoising steps for those samples.
    pub sample_steps: usize,
}

/// One point of the loss curve: the mean loss over the `log_every` steps ending at `step`.
#[derive(Clone, Debug, Serialize)]
pub struct LossPoint {
    pub step: usize,
    pub loss: f64,
    pub learning_rate: f64,
    pub elapsed_s: f64,
}

/// How well the trained model draws its glyphs.
#[derive(Clone, Debug, Serialize)]
pub struct SampleReport {
    pub denoising_steps: usize,
    /// Images whose best-matching glyph (see `glyphs::classify`) is the one asked for.
    pub recognised: usize,
    pub total: usize,
    pub sheet: PathBuf,
}

/// What a training run did; also written as JSON next to the weights.
#[derive(Clone, Debug, Serialize)]
pub struct TrainReport {
    pub steps: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub seed: u64,
    pub parameters: usize,
    pub threads: usize,
    pub loss_curve: Vec<LossPoint>,
    /// Mean loss over the last logged window.
    pub final_loss: f64,
    pub wall_s: f64,
    pub weights: PathBuf,
    pub samples: Option<SampleReport>,
}

/// The learning rate at `step` (0-based): linear warm-up over the first 5% (at most 200
/// steps), then a cosine from `peak` down to 5% of it.
fn learning_rate(step: usize, steps: usize, peak: f64) -> f64 {
    let warmup = (steps / 20).clamp(1, 200);
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let progress = (step - warmup) as f64 / (steps - warmup).max(1) as f64;
    let floor = 0.05 * peak;
    floor + (peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// One training batch: noisy images, noise levels, labels, and the `v` targets.
struct Batch {
    noisy: Vec<f32>,
    times: Vec<f32>,
    labels: Vec<i64>,
    targets: Vec<f32>,
}

/// Draws a batch of `size` glyphs at random noise levels, each unlabelled with probability
/// `P_UNCONDITIONAL`; everything comes from `rng`, so batches replay from the seed.
fn batch(rng: &mut StdRng, size: usize) -> Batch {
    let mut b = Batch {
        noisy: Vec::with_capacity(size * IMAGE_VALUES),
        times: Vec::with_capacity(size),
        labels: Vec::with_capacity(size),
        targets: Vec::with_capacity(size * IMAGE_VALUES),
    };
    for _ in 0..size {
        let class = rng.random_range(0..NUM_CLASSES);
        let x0 = glyphs::render(class, rng);
        let eps = sampler::gaussian(rng, IMAGE_VALUES);
        let t: f64 = rng.random();
        let (a, s) = coefficients(t);
        for (x, e) in x0.iter().zip(&eps) {
            b.noisy.push(a * x + s * e);
            b.targets.push(a * e - s * x);
        }
        b.times.push(t as f32);
        let unconditional = rng.random_bool(P_UNCONDITIONAL);
        b.labels
            .push(if unconditional { NULL_CLASS } else { class } as i64);
    }
    b
}

/// A [`Batch`] moved onto the training device, shaped as the network takes it.
struct BatchTensors {
    noisy: Tensor<4>,
    times: Tensor<1>,
    labels: Tensor<1, Int>,
    targets: Tensor<4>,
}

impl Batch {
    /// The batch's tensors on `device`; `size` is its number of images.
    fn into_tensors(self, size: usize, device: &Device) -> BatchTensors {
        let shape = [size, CHANNELS, IMAGE_SIZE, IMAGE_SIZE];
        let noisy = Tensor::<4>::from_data(TensorData::new(self.noisy, shape), device);
        let targets = Tensor::<4>::from_data(TensorData::new(self.targets, shape), device);
        let times = Tensor::<1>::from_data(TensorData::new(self.times, [size]), device);
        let labels = Tensor::<1, Int>::from_data(TensorData::new(self.labels, [size]), device);
        BatchTensors {
            noisy,
            times,
            labels,
            targets,
        }
    }
}

/// Trains a fresh network and writes it to `config.out`, calling `log` with each line of the
/// loss curve. Returns the report (also written to `<out>.training.json`).
pub fn train(config: &TrainConfig, log: &mut dyn FnMut(&str)) -> Result<TrainReport, ModelError> {
    check_config(config)?;
    let started = Instant::now();
    let device = Device::flex().autodiff();
    // Seeded before the network is built: its initial weights come from the device RNG.
    device.seed(config.seed);
    let net = Denoiser::new(&device);
    let parameters = net.num_params();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    log(&format!(
        "training {parameters} parameters on flex (CPU, {threads} threads): {} steps of {} \
         images, lr {}, seed {}",
        config.steps, config.batch_size, config.learning_rate, config.seed
    ));
    let mut curve = LossCurve::new(started);
    let net = optimise(config, net, &device, &mut curve, log)?;
    weights::save(net.valid(), &config.out)?;
    let wall = started.elapsed();
    log(&format!(
        "wrote {} after {:.0} s",
        config.out.display(),
        wall.as_secs_f64()
    ));
    let samples = if config.sample_seeds > 0 {
        Some(sample_sheet(config, log)?)
    } else {
        None
    };
    let report = TrainReport {
        steps: config.steps,
        batch_size: config.batch_size,
        learning_rate: config.learning_rate,
        seed: config.seed,
        parameters,
        threads,
        final_loss: curve.points.last().map_or(f64::NAN, |p| p.loss),
        loss_curve: curve.points,
        wall_s: wall.as_secs_f64(),
        weights: config.out.clone(),
        samples,
    };
    write_report(config, &report)?;
    Ok(report)
}

/// Rejects zeros before any work: 0 steps would write untrained weights, a batch of 0 has
/// no loss, and a log interval of 0 would divide by zero in the loss curve.
fn check_config(config: &TrainConfig) -> Result<(), ModelError> {
    if config.steps == 0 || config.batch_size == 0 || config.log_every == 0 {
        return Err(ModelError::InvalidArgument(
            "steps, batch size and log interval must be at least 1".into(),
        ));
    }
    Ok(())
}

/// The training loop: `config.steps` Adam steps (gradients clipped to norm 1) of the MSE
/// between the predicted and the true `v`, on batches drawn from one RNG seeded with
/// `config.seed`, so the run is reproducible. Returns the trained network.
fn optimise(
    config: &TrainConfig,
    mut net: Denoiser,
    device: &Device,
    curve: &mut LossCurve,
    log: &mut dyn FnMut(&str),
) -> Result<Denoiser, ModelError> {
    let mut optimizer = AdamConfig::new()
        .with_grad_clipping(Some(GradientClippingConfig::Norm(1.0)))
        .init();
    let mut rng = StdRng::seed_from_u64(config.seed);
    for step in 0..config.steps {
        let b = batch(&mut rng, config.batch_size).into_tensors(config.batch_size, device);
        let loss = (net.forward(b.noisy, b.times, b.labels) - b.targets)
            .square()
            .mean();
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        let loss = finite_loss(loss, step)?;
        let lr = learning_rate(step, config.steps, config.learning_rate);
        net = optimizer.step(lr, net, grads);
        curve.add(config, step, loss, lr, log);
    }
    Ok(net)
}

/// The loss of a step as a number; an error naming the step when it is not finite, as a
/// diverged run must stop before it writes weights that are NaN.
fn finite_loss(loss: Tensor<1>, step: usize) -> Result<f32, ModelError> {
    let loss = loss
        .try_into_vec_as::<f32>()
        .map_err(|e| ModelError::Execution(e.to_string()))?
        .first()
        .copied()
        .unwrap_or(f32::NAN);
    if !loss.is_finite() {
        return Err(ModelError::Execution(format!(
            "the loss diverged at step {} ({loss})",
            step + 1
        )));
    }
    Ok(loss)
}

/// The loss curve being built: each step's loss adds to a window, and every `log_every`
/// steps (and at the last step) the window's mean becomes a point and a log line.
struct LossCurve {
    started: Instant,
    window: f64,
    points: Vec<LossPoint>,
}

impl LossCurve {
    fn new(started: Instant) -> Self {
        LossCurve {
            started,
            window: 0.0,
            points: Vec::new(),
        }
    }

    /// Adds the loss of `step` (0-based), trained at learning rate `lr`; logs a point with
    /// an estimate of the time left when a window closes.
    fn add(
        &mut self,
        config: &TrainConfig,
        step: usize,
        loss: f32,
        lr: f64,
        log: &mut dyn FnMut(&str),
    ) {
        self.window += f64::from(loss);
        let done = step + 1;
        if !done.is_multiple_of(config.log_every) && done != config.steps {
            return;
        }
        // The last window is shorter when `log_every` does not divide `steps`.
        let n = match done % config.log_every {
            0 => config.log_every,
            rest => rest,
        };
        let point = LossPoint {
            step: done,
            loss: self.window / n as f64,
            learning_rate: lr,
            elapsed_s: self.started.elapsed().as_secs_f64(),
        };
        let eta = point.elapsed_s / done as f64 * (config.steps - done) as f64;
        log(&format!(
            "step {done:>6}/{}  loss {:.5}  lr {:.2e}  {:>6.0} s  eta {:>5.0} s",
            config.steps, point.loss, lr, point.elapsed_s, eta
        ));
        self.points.push(point);
        self.window = 0.0;
    }
}

/// Writes the report next to the weights, as `<stem>.training.json` and its loss curve as
/// `<stem>.loss.csv`. The JSON is made first, so that nothing is written if it cannot be.
fn write_report(config: &TrainConfig, report: &TrainReport) -> Result<(), ModelError> {
    let json =
        serde_json::to_string_pretty(report).map_err(|e| ModelError::Execution(e.to_string()))?;
    // The loss curve again as CSV, for plotting and for diffs between retrainings.
    write_file(
        &sibling(&config.out, "loss.csv"),
        loss_csv(&report.loss_curve),
    )?;
    write_file(&sibling(&config.out, "training.json"), json)
}

/// The loss curve as CSV, one row per point, with a header.
fn loss_csv(curve: &[LossPoint]) -> String {
    let mut csv = String::from("step,loss,learning_rate,elapsed_s\n");
    for p in curve {
        csv.push_str(&format!(
            "{},{:.6},{:.6e},{:.1}\n",
            p.step, p.loss, p.learning_rate, p.elapsed_s
        ));
    }
    csv
}

/// Writes `contents` to `path`, an error naming the file if it cannot.
fn write_file(path: &Path, contents: impl AsRef<[u8]>) -> Result<(), ModelError> {
    std::fs::write(path, contents).map_err(|e| ModelError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// `<dir>/<stem>.<suffix>` for the weights file `<dir>/<stem>.bpk`.
pub fn sibling(weights: &Path, suffix: &str) -> PathBuf {
    weights.with_extension(suffix)
}

/// Reloads the written weights (which checks the file) and samples every class for
/// `sample_seeds` seeds on the CPU, writing them as one sheet (a row per seed).
fn sample_sheet(
    config: &TrainConfig,
    log: &mut dyn FnMut(&str),
) -> Result<SampleReport, ModelError> {
    let device = Device::flex();
    let net = weights::load(&config.out, &device)?;
    let mut images = Vec::new();
    let mut recognised = 0;
    for row in 0..config.sample_seeds {
        let classes: Vec<usize> = (0..NUM_CLASSES).collect();
        let seeds: Vec<u64> = classes
            .iter()
            .map(|&c| (row * NUM_CLASSES + c) as u64)
            .collect();
        let values = sampler::sample(
            &net,
            &device,
            &classes,
            &seeds,
            config.sample_steps,
            sampler::GUIDANCE,
            &mut |_| true,
        )?
        .unwrap_or_default();
        let size = IMAGE_SIZE as u32;
        for (class, planes) in values.chunks_exact(IMAGE_VALUES).enumerate() {
            let image = Image::from_planes(size, size, planes)?;
            if glyphs::classify(&image.rgb) == class {
                recognised += 1;
            }
            images.push(image);
        }
    }
    let total = images.len();
    let sheet = sibling(&config.out, "samples.png");
    let png = Image::sheet(&images, NUM_CLASSES / 2, 2).to_png()?;
    write_file(&sheet, png)?;
    log(&format!(
        "samples ({} steps): {recognised}/{total} recognised as their glyph; sheet {}",
        config.sample_steps,
        sheet.display()
    ));
    Ok(SampleReport {
        denoising_steps: config.sample_steps,
        recognised,
        total,
        sheet,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learning_rate_warms_up_then_decays_to_five_percent() {
        let steps = 1000;
        assert!(learning_rate(0, steps, 1.0) < 0.03);
        assert!((learning_rate(49, steps, 1.0) - 1.0).abs() < 1e-9);
        assert!((learning_rate(999, steps, 1.0) - 0.05).abs() < 1e-3);
    }
}
