//! The model workload in a build without the `model` feature (`--no-default-features`):
//! the same names as `model/`, so the traffic, the request spans and the runner compile
//! unchanged, but no value of [`Image`] or [`service::ModelService`] can exist and
//! [`service::shared`] says the model is not built in. The command line refuses
//! `workload.kind = "model"` before that (exit 2, naming the feature); this is what the
//! window's engine or a library caller meets instead.

pub mod error {
    //! The model's error in this build: only that it is not built in (the full build's
    //! `model/error.rs` names burn's wgpu errors, which this build has no crate for).

    /// An error from the model: here, always that the feature is missing.
    #[derive(Debug, thiserror::Error)]
    pub enum ModelError {
        /// This binary was built without the `model` feature (`--no-default-features`).
        #[error(transparent)]
        NotBuilt(#[from] crate::config::NotBuilt),
    }
}

use std::convert::Infallible;
use std::path::PathBuf;

pub use crate::config::DeviceChoice;
pub use error::ModelError;

/// The shipped weights' path: kept so that settings and messages read the same in both
/// builds.
pub const DEFAULT_WEIGHTS: &str = "assets/model/glyph-diffusion.bpk";

/// [`DEFAULT_WEIGHTS`]; nothing is read from it in this build.
pub fn default_weights_path() -> PathBuf {
    PathBuf::from(DEFAULT_WEIGHTS)
}

/// How the model would be loaded.
#[derive(Clone, Debug)]
pub struct ModelConfig {
    pub weights: PathBuf,
    pub device: DeviceChoice,
    pub seed: u64,
}

/// A generated picture: none can be made without the model.
#[derive(Clone, Debug)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    never: Infallible,
}

impl Image {
    pub fn to_png(&self) -> Result<Vec<u8>, ModelError> {
        match self.never {}
    }

    pub fn to_rgba(&self) -> Vec<u8> {
        match self.never {}
    }
}

pub mod service {
    //! The model service that cannot be started in this build.

    use std::sync::Arc;

    use super::{Image, ModelConfig, ModelError};
    use crate::record::SharedModelStatus;

    /// Uninhabited: [`shared`] never returns one.
    pub enum ModelService {}

    /// Always the error that names the missing feature.
    pub fn shared(_config: &ModelConfig) -> Result<Arc<ModelService>, ModelError> {
        Err(crate::config::NotBuilt::MODEL_WORKLOAD.into())
    }

    impl ModelService {
        pub fn status(&self) -> SharedModelStatus {
            match *self {}
        }

        pub fn wait_ready(&self, _timeout: std::time::Duration) -> crate::record::ModelStatus {
            match *self {}
        }

        pub fn generate(
            &self,
            _prompt: &str,
            _steps: usize,
            _seed: u64,
            _stop: &dyn Fn() -> bool,
            _on_step: &mut dyn FnMut(usize) -> bool,
        ) -> Result<Option<Image>, ModelError> {
            match *self {}
        }
    }
}
