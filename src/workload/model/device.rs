//! Choosing where the model runs: a wgpu adapter (a real GPU, or Mesa's software Vulkan,
//! llvmpipe, when there is none), or burn's pure-Rust CPU backend `flex` when wgpu finds no
//! adapter at all. The choice is reported, with the reason whenever it is not a GPU.

use std::sync::{Arc, OnceLock};

use super::ModelError;
use super::error::WgpuError;
pub use crate::config::DeviceChoice;
pub use crate::record::DeviceInfo;
use burn::tensor::Device;
use burn::tensor::wgpu::wgpu::{AdapterInfo, DeviceType};

/// The wgpu device of this process and its adapter, set up once.
///
/// burn registers one wgpu runtime per selector and process, and a second
/// `Device::wgpu_options().init()` for the same selector is an error
/// (burn-tensor 0.22.1 `src/wgpu.rs`, `init_with_setup`: "Returns an error if the runtime ...
/// has already been initialized"), so every `Model` shares this one; the outcome of the
/// first attempt, failure included, is kept so that a machine without an adapter is probed
/// only once.
struct Wgpu {
    device: Device,
    info: AdapterInfo,
}

static WGPU: OnceLock<Result<Wgpu, WgpuError>> = OnceLock::new();

fn wgpu() -> &'static Result<Wgpu, WgpuError> {
    WGPU.get_or_init(|| {
        // `init_with_setup` returns adapter and request failures as errors; the unwind guard
        // is for driver-level surprises (a broken ICD can panic inside wgpu), which must
        // become a CPU fallback, not a crash.
        let attempt = std::panic::catch_unwind(|| Device::wgpu_options().init_with_setup());
        match attempt {
            Ok(Ok((device, setup))) => Ok(Wgpu {
                device,
                info: setup.adapter.get_info(),
            }),
            Ok(Err(error)) => Err(WgpuError::Init(Arc::new(error))),
            Err(panic) => {
                // `panic!` with arguments carries a String, one with a literal a &str.
                let text = panic.downcast_ref::<&str>().map(|m| m.to_string());
                let message = panic.downcast_ref::<String>().cloned().or(text);
                Err(WgpuError::Panicked { message })
            }
        }
    })
}

fn device_type_name(device_type: DeviceType) -> &'static str {
    match device_type {
        DeviceType::DiscreteGpu => "discrete GPU",
        DeviceType::IntegratedGpu => "integrated GPU",
        DeviceType::VirtualGpu => "virtual GPU",
        DeviceType::Cpu => "software (CPU)",
        DeviceType::Other => "other",
    }
}

fn wgpu_info(info: &AdapterInfo) -> DeviceInfo {
    let software = info.device_type == DeviceType::Cpu;
    DeviceInfo {
        backend: format!("wgpu/{:?}", info.backend),
        adapter: info.name.clone(),
        device_type: device_type_name(info.device_type).to_owned(),
        fallback_reason: software.then(|| {
            format!(
                "no GPU adapter: wgpu runs on {} through {:?}, a software rasterizer on the \
                 CPU, about 10x slower than the CPU backend once warm, with seconds of shader \
                 compilation per kernel during warm-up",
                info.name, info.backend
            )
        }),
    }
}

/// burn's CPU backend, described.
pub(crate) fn cpu() -> (Device, DeviceInfo) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    (
        Device::flex(),
        DeviceInfo {
            backend: "flex".to_owned(),
            adapter: format!("CPU, {threads} threads"),
            device_type: "CPU".to_owned(),
            fallback_reason: None,
        },
    )
}

/// The device for `choice`, and what it is.
pub(crate) fn select(choice: DeviceChoice) -> Result<(Device, DeviceInfo), ModelError> {
    match choice {
        DeviceChoice::Cpu => Ok(cpu()),
        DeviceChoice::Wgpu => match wgpu() {
            Ok(wgpu) => Ok((wgpu.device.clone(), wgpu_info(&wgpu.info))),
            Err(error) => Err(ModelError::NoWgpu(error.clone())),
        },
        DeviceChoice::Auto => match wgpu() {
            Ok(wgpu) => Ok((wgpu.device.clone(), wgpu_info(&wgpu.info))),
            Err(error) => {
                let (device, mut info) = cpu();
                info.fallback_reason = Some(format!(
                    "no wgpu adapter ({error}); running on burn's CPU backend (flex)"
                ));
                Ok((device, info))
            }
        },
    }
}
