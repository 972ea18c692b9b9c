//! The inference workload: a small text-to-image diffusion model on burn.
//!
//! A prompt goes in; its first letter or digit picks one of 36 glyph classes (see
//! [`glyphs`]); a class-conditioned U-Net ([`unet`], 915 k parameters, 3.7 MB) trained by the
//! project's own code ([`train`]) on glyphs it renders itself runs `steps` deterministic DDIM
//! denoising steps ([`sampler`]); a 32x32 RGB picture of that glyph comes out, and is encoded
//! as PNG for the "upload". The network runs on a wgpu adapter when there is one (a GPU, or
//! Mesa's software Vulkan llvmpipe, which is reported as such) and on burn's CPU backend
//! `flex` when wgpu finds none ([`device`]).
//!
//! ```no_run
//! use gracetrace::workload::model::{Model, ModelConfig};
//! let model = Model::load(&ModelConfig::default())?;
//! println!("{:?}", model.device());
//! model.warm_up(&|fraction, stage| eprintln!("warm-up {:.0}% {stage}", fraction * 100.0))?;
//! let image = model.generate("a cat", 20, 42, &mut |_step| true)?;
//! # Ok::<(), gracetrace::workload::model::ModelError>(())
//! ```

pub mod device;
pub mod error;
pub mod glyphs;
pub mod image;
pub mod sampler;
pub mod schedule;
pub mod service;
pub mod train;
pub mod unet;
mod weights;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burn::tensor::{Device, Int, Tensor, TensorData};

pub use device::{DeviceChoice, DeviceInfo};
pub use error::ModelError;
pub use image::Image;
pub use sampler::MAX_STEPS;

use unet::{CHANNELS, Denoiser, IMAGE_SIZE, NULL_CLASS, STAGES};

/// The shipped weights, relative to the crate root.
pub const DEFAULT_WEIGHTS: &str = "assets/model/glyph-diffusion.bpk";

/// [`DEFAULT_WEIGHTS`] if it exists relative to the working directory, else the same path
/// under the crate root this binary was built from (so `cargo test` and `cargo run` work from
/// anywhere in the repository).
pub fn default_weights_path() -> PathBuf {
    let relative = Path::new(DEFAULT_WEIGHTS);
    if relative.exists() {
        relative.to_path_buf()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_WEIGHTS)
    }
}

/// How to load the model.
#[derive(Clone, Debug)]
pub struct ModelConfig {
    /// The burnpack weights file written by `gracetrace train`.
    pub weights: PathBuf,
    /// Where to run it.
    pub device: DeviceChoice,
    /// Seed of the warm-up request's noise.
    pub seed: u64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            weights: default_weights_path(),
            device: DeviceChoice::Auto,
            seed: 0,
        }
    }
}

/// The loaded model on its device. `Send + Sync`: requests may call [`Model::generate`]
/// from several threads at once (burn's devices queue work from any thread).
pub struct Model {
    net: Denoiser,
    device: Device,
    info: DeviceInfo,
    seed: u64,
}

// The serving path shares one `Model` between request threads; keep that a compile error
// to break.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Model>();
};

impl Model {
    /// Loads the weights and puts the network on the chosen device. A missing, unreadable or
    /// corrupt file, or one for another network, is a [`ModelError::Weights`] naming the path.
    pub fn load(config: &ModelConfig) -> Result<Model, ModelError> {
        // Load on the CPU first: the fresh network's random initialisation (overwritten by
        // the record) then costs no shader compilation on a wgpu device.
        let net = weights::load(&config.weights, &Device::flex())?;
        Model::on_device(net, config)
    }

    /// Puts a loaded network on the device `config` asks for.
    pub(crate) fn on_device(net: Denoiser, config: &ModelConfig) -> Result<Model, ModelError> {
        let (device, info) = device::select(config.device)?;
        let net = burn::module::Module::to_device(net, &device);
        Ok(Model {
            net,
            device,
            info,
            seed: config.seed,
        })
    }

    /// The device the model runs on.
    pub fn device(&self) -> &DeviceInfo {
        &self.info
    }

    /// Compiles and tunes every kernel a request needs, reporting `progress(fraction, stage)`
    /// from 0 to 1 on the calling thread as it goes (call it from a worker thread: on a
    /// software adapter this takes tens of seconds). Returns how long it took.
    ///
    /// First the network runs stage by stage with a device sync after each, so that the
    /// compilation inside each stage is reported as it finishes; then a real two-step request
    /// runs, which compiles what differs on the production path (batch and shapes of the
    /// guided step, the DDIM update, the readback).
    pub fn warm_up(&self, progress: &dyn Fn(f32, &str)) -> Result<Duration, ModelError> {
        let started = Instant::now();
        progress(0.0, "starting");
        let x = Tensor::<4>::from_data(
            TensorData::new(
                [sampler::noise(self.seed), sampler::noise(self.seed ^ 1)].concat(),
                [2, CHANNELS, IMAGE_SIZE, IMAGE_SIZE],
            ),
            &self.device,
        );
        let t = Tensor::<1>::from_data(TensorData::new(vec![1.0f32; 2], [2]), &self.device);
        let labels = Tensor::<1, Int>::from_data(
            TensorData::new(vec![0i64, NULL_CLASS as i64], [2]),
            &self.device,
        );
        let mut failure = None;
        let staged = 0.8;
        let out = self.net.forward_staged(x, t, labels, &mut |stage| {
            if let Err(e) = self.device.sync() {
                failure.get_or_insert(e.to_string());
            }
            let fraction = staged * (stage + 1) as f32 / (STAGES.len() - 1) as f32;
            progress(fraction.min(staged), &format!("compiled {}", STAGES[stage]));
        });
        if let Some(error) = failure {
            return Err(ModelError::Execution(error));
        }
        out.try_into_vec_as::<f32>()
            .map_err(|e| ModelError::Execution(e.to_string()))?;
        let steps = 2;
        sampler::sample(
            &self.net,
            &self.device,
            &[0],
            &[self.seed],
            steps,
            sampler::GUIDANCE,
            &mut |i| {
                let fraction = staged + (1.0 - staged) * i as f32 / steps as f32;
                progress(fraction, &format!("request step {}/{steps}", i + 1));
                true
            },
        )?;
        progress(1.0, "ready");
        Ok(started.elapsed())
    }

    /// Runs `steps` denoising steps (1..=[`MAX_STEPS`]) for `prompt` from the noise of
    /// `seed`. Calls `on_step(i)` before each step `i`; if it returns false, stops early
    /// (cancellation) and returns `Ok(None)`. The same prompt, steps and seed give the same
    /// image on the same backend.
    pub fn generate(
        &self,
        prompt: &str,
        steps: usize,
        seed: u64,
        on_step: &mut dyn FnMut(usize) -> bool,
    ) -> Result<Option<Image>, ModelError> {
        let class = glyphs::prompt_class(prompt);
        let Some(values) = sampler::sample(
            &self.net,
            &self.device,
            &[class],
            &[seed],
            steps,
            sampler::GUIDANCE,
            on_step,
        )?
        else {
            return Ok(None);
        };
        let size = IMAGE_SIZE as u32;
        Image::from_planes(size, size, &values).map(Some)
    }
}
