//! Everything that can go wrong loading or running the model, as values (no panics).

use std::path::PathBuf;
use std::sync::Arc;

use burn::tensor::wgpu::WgpuInitError;

/// An error from the model: loading weights, choosing a device, running, encoding.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The weights file is missing, unreadable, corrupt or for another network.
    #[error("model weights {}: {reason}", path.display())]
    Weights { path: PathBuf, reason: String },
    /// Writing a file (weights, sample sheet, output image) failed.
    #[error("cannot write {}: {reason}", path.display())]
    Write { path: PathBuf, reason: String },
    /// wgpu was asked for (`--device wgpu`) and gave no device.
    #[error("device: wgpu was requested but found no usable adapter: {0}")]
    NoWgpu(#[source] WgpuError),
    /// A caller's argument is out of range (the message names it and the range).
    #[error("{0}")]
    InvalidArgument(String),
    /// The backend failed while running the network.
    #[error("inference failed: {0}")]
    Execution(String),
    /// PNG encoding or decoding failed.
    #[error("PNG: {0}")]
    Png(String),
    /// This binary was built without the `model` feature (`--no-default-features`).
    #[error(transparent)]
    NotBuilt(#[from] crate::config::NotBuilt),
}

/// Why wgpu gave this process no device. It is kept for the life of the process (an
/// adapter is probed once) and handed out by copy, hence `Clone` and the `Arc`.
#[derive(Clone, Debug, thiserror::Error)]
pub enum WgpuError {
    /// burn refused: no adapter matches, the configuration is invalid, or the graphics
    /// API is not in this build.
    #[error(transparent)]
    Init(Arc<WgpuInitError>),
    /// The driver panicked inside wgpu while an adapter was opened (a broken ICD).
    #[error("wgpu panicked while opening an adapter{}", detail(.message))]
    Panicked { message: Option<String> },
}

/// `: message` after the panic's description, when the panic had one.
fn detail(message: &Option<String>) -> String {
    message
        .as_ref()
        .map_or_else(String::new, |m| format!(": {m}"))
}
