//! The model as the runner serves it: loaded once per process, warmed up in the background,
//! one request at a time.
//!
//! Loading the weights is quick (a 3.7 MB file read on the CPU) and happens on the caller's
//! thread, so a missing or corrupt file is an error at start-up naming the path. Choosing the
//! wgpu device and compiling its shaders can take tens of seconds on llvmpipe (a first
//! autotuned 512x512 matmul took 22.6 s, a first 3x3 conv2d 5.0 s, on burn 0.22.1; measured
//! on this project's 2-core machine, 2026-11-24), so
//! that runs on a thread of its own and reports its progress in a [`SharedModelStatus`] that
//! the record, the report and a UI read; nothing waits for it except requests, which queue
//! behind it as they would behind a cold GPU.
//!
//! There is one network and, on a software adapter, not enough compute to share: requests
//! are served one at a time, in the order they get the lock, whatever the runner's
//! `concurrency` (extra slots then only hold requests that wait for the model, which is what
//! a single-model server behind a concurrency limit does). While waiting, a request keeps
//! checking its stop condition, so `handle_exit` and SIGKILL are not held up by a queue.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use burn::tensor::Device;

use super::{DeviceChoice, Image, Model, ModelConfig, ModelError, weights};
use crate::record::{ModelStatus, SharedModelStatus};

/// What the warm-up thread has made of the model.
enum State {
    WarmingUp,
    Ready(Box<Model>),
    Failed(String),
}

/// A loaded model, its warm-up and the lock that serialises requests.
pub struct ModelService {
    weights: PathBuf,
    device: DeviceChoice,
    state: Mutex<State>,
    changed: Condvar,
    status: SharedModelStatus,
}

/// How long a waiting request sleeps between looks at its stop condition.
const POLL: Duration = Duration::from_millis(20);

/// Every service this process has started, by (weights, device): a runner that restarts, or
/// a second run in the same process, reuses the warm model instead of compiling again.
static SERVICES: Mutex<Vec<Arc<ModelService>>> = Mutex::new(Vec::new());

/// The service for `config`, started (weights loaded, warm-up begun in the background) on
/// first use. Errors: the weights cannot be loaded (the message names the path).
pub fn shared(config: &ModelConfig) -> Result<Arc<ModelService>, ModelError> {
    let mut services = SERVICES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(service) = services
        .iter()
        .find(|s| s.weights == config.weights && s.device == config.device)
    {
        return Ok(service.clone());
    }
    let service = ModelService::start(config)?;
    services.push(service.clone());
    Ok(service)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data behind these locks stays consistent even if a holder panicked.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl ModelService {
    /// Loads the weights now and warms up on a background thread.
    pub fn start(config: &ModelConfig) -> Result<Arc<ModelService>, ModelError> {
        let net = weights::load(&config.weights, &Device::flex())?;
        let status: SharedModelStatus = Arc::new(Mutex::new(ModelStatus {
            warm_up_stage: "choosing the device".into(),
            ..ModelStatus::default()
        }));
        let service = Arc::new(ModelService {
            weights: config.weights.clone(),
            device: config.device,
            state: Mutex::new(State::WarmingUp),
            changed: Condvar::new(),
            status,
        });
        let warming = service.clone();
        let config = config.clone();
        let spawned = std::thread::Builder::new()
            .name("gracetrace-model-warm-up".into())
            .spawn(move || warming.warm_up(net, &config));
        if let Err(error) = spawned {
            service.fail(format!("cannot start the warm-up thread: {error}"));
        }
        Ok(service)
    }

    fn warm_up(&self, net: super::unet::Denoiser, config: &ModelConfig) {
        let model = match Model::on_device(net, config) {
            Ok(model) => model,
            Err(error) => return self.fail(error.to_string()),
        };
        lock(&self.status).device = Some(model.device().clone());
        let took = model.warm_up(&|fraction, stage| {
            let mut status = lock(&self.status);
            status.warm_up_fraction = fraction;
            status.warm_up_stage = stage.to_owned();
        });
        match took {
            Ok(took) => {
                {
                    let mut status = lock(&self.status);
                    status.warm_up_s = Some(took.as_secs_f64());
                    status.warm_up_fraction = 1.0;
                    status.ready = true;
                }
                *lock(&self.state) = State::Ready(Box::new(model));
                self.changed.notify_all();
            }
            Err(error) => self.fail(format!("warm-up failed: {error}")),
        }
    }

    fn fail(&self, error: String) {
        {
            let mut status = lock(&self.status);
            status.warm_up_stage = "failed".into();
            status.error = Some(error.clone());
        }
        *lock(&self.state) = State::Failed(error);
        self.changed.notify_all();
    }

    /// The status the warm-up thread keeps up to date (attach it to a record).
    pub fn status(&self) -> SharedModelStatus {
        self.status.clone()
    }

    /// Blocks until the warm-up has finished (successfully or not) or `timeout` passes;
    /// returns the status then.
    pub fn wait_ready(&self, timeout: Duration) -> ModelStatus {
        let deadline = Instant::now() + timeout;
        let mut state = lock(&self.state);
        while matches!(*state, State::WarmingUp) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = match self.changed.wait_timeout(state, left.min(POLL)) {
                Ok((state, _)) => state,
                Err(e) => e.into_inner().0,
            };
        }
        drop(state);
        lock(&self.status).clone()
    }

    /// Serves one request: waits for the warm-up and for the requests ahead of it (checking
    /// `stop` every few milliseconds), then runs [`Model::generate`] with the model to itself.
    /// `Ok(None)`: stopped, while waiting or between steps.
    pub fn generate(
        &self,
        prompt: &str,
        steps: usize,
        seed: u64,
        stop: &dyn Fn() -> bool,
        on_step: &mut dyn FnMut(usize) -> bool,
    ) -> Result<Option<Image>, ModelError> {
        let state = loop {
            if stop() {
                return Ok(None);
            }
            // try_lock, not lock: a request waiting behind a 20-step request must still
            // notice a cancellation or a kill promptly.
            let state = match self.state.try_lock() {
                Ok(state) => state,
                Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {
                    std::thread::sleep(POLL / 4);
                    continue;
                }
            };
            match &*state {
                State::WarmingUp => {
                    // Waits on the condvar, which releases the lock for the warm-up thread.
                    let _ = self.changed.wait_timeout(state, POLL);
                }
                State::Failed(error) => return Err(ModelError::Execution(error.clone())),
                State::Ready(_) => break state,
            }
        };
        match &*state {
            State::Ready(model) => model.generate(prompt, steps, seed, on_step),
            // Unreachable: the loop above only breaks on Ready; an error keeps it a value.
            _ => Err(ModelError::Execution("the model is not ready".into())),
        }
    }
}
