//! Time per denoising step and per 20-step request of the inference model, on the device
//! `Model::load` finds (`GRACETRACE_BENCH_DEVICE=auto|wgpu|cpu`, default auto), after warm-up.
//!
//! `cargo bench --bench model`. Criterion's own warm-up is not enough on a software adapter
//! (compiling shaders takes tens of seconds), so the model's warm-up runs first, with its
//! progress on stderr.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use gracetrace::workload::model::{DeviceChoice, Model, ModelConfig, default_weights_path};

fn device_choice() -> DeviceChoice {
    match std::env::var("GRACETRACE_BENCH_DEVICE").as_deref() {
        Ok("cpu") => DeviceChoice::Cpu,
        Ok("wgpu") => DeviceChoice::Wgpu,
        _ => DeviceChoice::Auto,
    }
}

fn load() -> Option<Model> {
    let config = ModelConfig {
        weights: default_weights_path(),
        device: device_choice(),
        seed: 0,
    };
    let model = match Model::load(&config) {
        Ok(model) => model,
        Err(error) => {
            eprintln!("model bench skipped: {error}");
            return None;
        }
    };
    eprintln!("model bench device: {:?}", model.device());
    match model.warm_up(&|fraction, stage| eprintln!("warm-up {:>3.0}% {stage}", fraction * 100.0))
    {
        Ok(took) => eprintln!("warm-up took {:.2} s", took.as_secs_f64()),
        Err(error) => {
            eprintln!("model bench skipped, warm-up failed: {error}");
            return None;
        }
    }
    Some(model)
}

fn bench(c: &mut Criterion) {
    let Some(model) = load() else {
        return;
    };
    let backend = model.device().backend.clone();
    let mut group = c.benchmark_group(format!("model/{backend}"));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    // One step = one batch-of-2 forward (class + null for guidance), the DDIM update and a
    // device sync, plus the request's fixed costs (noise upload, readback), which the
    // difference to the 20-step request separates out.
    group.bench_function("request_1_step", |b| {
        b.iter(|| black_box(model.generate("a", 1, 0, &mut |_| true)))
    });
    group.bench_function("request_20_steps", |b| {
        b.iter(|| black_box(model.generate("a", 20, 0, &mut |_| true)))
    });
    group.bench_function("request_20_steps_and_png", |b| {
        b.iter(|| match model.generate("a", 20, 0, &mut |_| true) {
            Ok(Some(image)) => black_box(image.to_png().map(|png| png.len())).ok(),
            _ => None,
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
