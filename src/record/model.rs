//! The inference model as the record keeps it: the device it runs on, its warm-up
//! progress, and the last picture a request produced. The model service (in `workload`)
//! writes these; the report and the window read them.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// What the model runs on, for people and for the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// `wgpu/Vulkan`, `wgpu/Metal`, ..., or `flex` (burn's CPU backend).
    pub backend: String,
    /// The adapter's name as the driver reports it (`llvmpipe (LLVM 15.0.6, 256 bits)`,
    /// `NVIDIA GeForce RTX 4090`), or the CPU thread count for `flex`.
    pub adapter: String,
    /// `discrete GPU`, `integrated GPU`, `virtual GPU`, `software (CPU)`, `other` or `CPU`.
    pub device_type: String,
    /// Why this is not a GPU, when it is not: no adapter, or a software adapter.
    pub fallback_reason: Option<String>,
}

/// The inference model's state as a UI or the report shows it: the device it runs on and
/// how far its warm-up (shader compilation, tens of seconds on llvmpipe) has got.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ModelStatus {
    /// Known once the device has been chosen.
    pub device: Option<DeviceInfo>,
    /// 0 to 1.
    pub warm_up_fraction: f32,
    /// What the warm-up is doing now, in words.
    pub warm_up_stage: String,
    /// How long the warm-up took, once it has finished.
    pub warm_up_s: Option<f64>,
    /// Requests are served from now on.
    pub ready: bool,
    /// Why the model cannot serve (device or warm-up failure).
    pub error: Option<String>,
}

/// Where the model's status lives: shared by the model service (which writes it from its
/// warm-up thread) and every record that serves with it (which read it).
pub type SharedModelStatus = Arc<Mutex<ModelStatus>>;

/// The last picture a request produced, for the UI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastImage {
    /// The request's trace id, 32 hex digits (all zeros when tracing is off).
    pub trace_id: String,
    pub prompt: String,
    pub width: u32,
    pub height: u32,
    /// 8-bit RGBA, row-major (what an egui texture takes).
    pub rgba: Vec<u8>,
    /// The same image as the PNG the request "uploaded".
    pub png: Vec<u8>,
}
