//! Turning noise into images: deterministic DDIM steps with classifier-free guidance.
//!
//! Every image of a batch starts from its own seeded Gaussian noise, drawn on the host so
//! that a seed gives the same start on every backend. Each step runs the network once on a
//! batch twice the size: every image with its class and again with the null class, and moves
//! along `v_null + GUIDANCE * (v_class - v_null)` (Ho & Salimans 2022), which makes the glyph
//! far more legible than the class-conditioned prediction alone.

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::ModelError;
use super::schedule::{coefficients, step_time};
use super::unet::{CHANNELS, Denoiser, IMAGE_SIZE, NULL_CLASS};

/// Classifier-free guidance scale (1 = no guidance).
pub const GUIDANCE: f32 = 2.0;

/// Most denoising steps a request may ask for.
pub const MAX_STEPS: usize = 1000;

/// Values per image.
pub const IMAGE_VALUES: usize = CHANNELS * IMAGE_SIZE * IMAGE_SIZE;

/// Standard normal noise for one image from `seed` (Box-Muller over `StdRng`, so it is the
/// same on every platform and backend).
pub fn noise(seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    gaussian(&mut rng, IMAGE_VALUES)
}

/// `n` standard normal values from `rng`.
pub fn gaussian(rng: &mut impl Rng, n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        // 1 - u is in (0, 1], so the logarithm is finite.
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random();
        let r = (-2.0 * u1.ln()).sqrt();
        let angle = std::f64::consts::TAU * u2;
        out.push((r * angle.cos()) as f32);
        out.push((r * angle.sin()) as f32);
    }
    out.truncate(n);
    out
}

/// Runs `steps` DDIM steps for a batch (`classes[i]` with noise `seeds[i]`) with guidance
/// scale `guidance` (normally [`GUIDANCE`]), calling
/// `on_step(i)` before step `i`; `Ok(None)` when it returns false. Returns the images as
/// channel-major values in `[-1, 1]`, `IMAGE_VALUES` per image.
///
/// The device is synchronised after every step, so that the time between two `on_step`
/// calls is the step's real cost and not just the time to queue it (wgpu runs asynchronously).
pub fn sample(
    net: &Denoiser,
    device: &Device,
    classes: &[usize],
    seeds: &[u64],
    steps: usize,
    guidance: f32,
    on_step: &mut dyn FnMut(usize) -> bool,
) -> Result<Option<Vec<f32>>, ModelError> {
    if !(1..=MAX_STEPS).contains(&steps) {
        return Err(ModelError::InvalidArgument(format!(
            "steps {steps} is out of range (allowed 1..={MAX_STEPS})"
        )));
    }
    let batch = classes.len();
    if batch == 0 || seeds.len() != batch {
        return Err(ModelError::InvalidArgument(format!(
            "{batch} classes and {} seeds: need one seed per image, at least one image",
            seeds.len()
        )));
    }
    let start: Vec<f32> = seeds.iter().flat_map(|&seed| noise(seed)).collect();
    let shape = [batch, CHANNELS, IMAGE_SIZE, IMAGE_SIZE];
    let mut x = Tensor::<4>::from_data(TensorData::new(start, shape), device);
    // Labels: the images' classes, then the null class for the unguided half.
    let labels: Vec<i64> = classes
        .iter()
        .map(|&c| c as i64)
        .chain(std::iter::repeat_n(NULL_CLASS as i64, batch))
        .collect();
    let labels = Tensor::<1, Int>::from_data(TensorData::new(labels, [2 * batch]), device);
    for i in 0..steps {
        if !on_step(i) {
            return Ok(None);
        }
        let t = step_time(i, steps);
        let (a, s) = coefficients(t);
        let (a_next, s_next) = coefficients(step_time(i + 1, steps));
        let times = Tensor::<1>::from_data(
            TensorData::new(vec![t as f32; 2 * batch], [2 * batch]),
            device,
        );
        let v = net.forward(
            Tensor::cat(vec![x.clone(), x.clone()], 0),
            times,
            labels.clone(),
        );
        let v_class = v.clone().narrow(0, 0, batch);
        let v_null = v.narrow(0, batch, batch);
        let v = v_null.clone() + (v_class - v_null) * guidance;
        // x0 is clamped to the data range, and eps recomputed from it, which keeps the
        // few-step sampler from overshooting; `s` is positive here because t >= 1/steps.
        let x0 = (x.clone() * a - v * s).clamp(-1.0, 1.0);
        let eps = (x - x0.clone() * a) / s;
        x = x0 * a_next + eps * s_next;
        device
            .sync()
            .map_err(|e| ModelError::Execution(e.to_string()))?;
    }
    x.try_into_vec_as::<f32>()
        .map(Some)
        .map_err(|e| ModelError::Execution(e.to_string()))
}
