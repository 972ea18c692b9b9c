//! Time per denoising step and per 20-step request of the inference model, on the device
//! `Model::load` finds (`GRACETRACE_BENCH_DEVICE=auto|wgpu|cpu`, default auto), after
//! warm-up, with tracing off, at sample rate 0.1 and at 1.0.
//!
//! `cargo bench --bench model`. A request is the runner's: `model_request` makes the seed's
//! span tree (root, `inference` with one event per step, `upload` = PNG encoding) under an
//! SDK tracer whose batch processor hands spans to an exporter that drops them, so the cost
//! measured is the application's (creating, recording, queueing spans), not the network's.
//! `request_without_model` isolates what tracing adds (see `tracing_alone`).
//! Criterion's own warm-up is not enough on a software adapter (compiling shaders takes tens
//! of seconds), so the model's warm-up runs first, with its progress on stderr.

use std::hint::black_box;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use gracetrace::workload::model::{DeviceChoice, Model, ModelConfig, default_weights_path};
use gracetrace::workload::request::{Generate, ModelReply, ModelRequest, model_request};
use opentelemetry::trace::{TracerProvider as _, noop::NoopTracer};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider, SpanData,
};

const STEPS: usize = 20;
const PROMPT: &str = "a lighthouse at dusk";

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

/// Accepts every batch and drops it.
#[derive(Debug)]
struct Discard;

impl opentelemetry_sdk::trace::SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        black_box(batch.len());
        Ok(())
    }
}

/// Tracing off (the no-op tracer), or an SDK provider at a sample rate.
enum Tracing {
    Off,
    On(SdkTracerProvider, SdkTracer),
}

impl Tracing {
    /// `None` is off.
    fn at(rate: Option<f64>) -> Tracing {
        let Some(rate) = rate else {
            return Tracing::Off;
        };
        let provider = SdkTracerProvider::builder()
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                rate,
            ))))
            .with_span_processor(BatchSpanProcessor::builder(Discard).build())
            .build();
        let tracer = provider.tracer("bench");
        Tracing::On(provider, tracer)
    }

    /// `model_request` as the runner calls it, for the bench's prompt, with `seed`.
    fn serve(&self, seed: u64, generate: &mut Generate<'_>) -> ModelReply {
        let request = ModelRequest {
            prompt: PROMPT,
            steps: STEPS,
            seed,
            step_events: true,
        };
        let cancel = AtomicBool::new(false);
        match self {
            Tracing::Off => {
                model_request(&NoopTracer::new(), request, None, &cancel, None, generate)
            }
            Tracing::On(_, tracer) => model_request(tracer, request, None, &cancel, None, generate),
        }
    }

    fn shutdown(self) {
        if let Tracing::On(provider, _) = self {
            let _ = provider.shutdown();
        }
    }
}

/// One request of `STEPS` steps through the model.
fn request(model: &Model, tracing: &Tracing, seed: u64) -> ModelReply {
    tracing.serve(seed, &mut |_stop, on_step| {
        model.generate(PROMPT, STEPS, seed, on_step)
    })
}

/// Tracing off (the no-op tracer), and the SDK at two sample rates.
const RATES: [(Option<f64>, &str); 3] = [
    (None, "off"),
    (Some(0.1), "sample_0.1"),
    (Some(1.0), "sample_1.0"),
];

fn bench(c: &mut Criterion) {
    let Some(model) = load() else {
        return;
    };
    let info = model.device().clone();
    let mut group = c.benchmark_group(format!("model/{}", info.backend));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    for (rate, name) in RATES {
        let tracing = Tracing::at(rate);
        // A whole request: 20 steps, the spans, the PNG encoding.
        group.bench_function(format!("request_{STEPS}_steps/{name}"), |b| {
            let mut seed = 0;
            b.iter(|| {
                seed += 1;
                black_box(request(&model, &tracing, seed).png.map(|png| png.len()))
            })
        });
        // One denoising step, as the request's own clock between `on_step` calls sees it
        // (network forward on a batch of 2, the DDIM update, a device sync, a span event).
        group.bench_function(format!("step/{name}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut measured = 0u64;
                let mut seed = 1000;
                while measured < iters {
                    seed += 1;
                    let reply = request(&model, &tracing, seed);
                    for ms in reply.step_ms.iter().take((iters - measured) as usize) {
                        total += Duration::from_secs_f64(ms / 1000.0);
                        measured += 1;
                    }
                    if reply.step_ms.is_empty() {
                        break; // the request failed: do not spin
                    }
                }
                total
            })
        });
        tracing.shutdown();
    }
    group.finish();
    tracing_alone(c, &model, &info.backend);
    eprintln!(
        "model bench device: {} on {} ({})",
        info.backend, info.adapter, info.device_type
    );
}

/// What tracing adds to a request, measured without the model's noise: the same request
/// with the 20 steps replaced by handing back a picture the model made beforehand, so what
/// remains is the spans, the 20 step events and the PNG encoding. `sample_1.0` minus `off`
/// is tracing's cost per request, to a fraction of a microsecond; the request benchmark
/// above cannot resolve it, since its run-to-run spread is milliseconds.
fn tracing_alone(c: &mut Criterion, model: &Model, backend: &str) {
    let picture = match model.generate(PROMPT, STEPS, 1, &mut |_| true) {
        Ok(Some(picture)) => picture,
        other => {
            eprintln!("tracing-alone bench skipped: the model gave {other:?}");
            return;
        }
    };
    let mut group = c.benchmark_group(format!("model/{backend}/request_without_model"));
    for (rate, name) in RATES {
        let tracing = Tracing::at(rate);
        group.bench_function(name, |b| {
            b.iter(|| {
                let reply = tracing.serve(1, &mut |_stop, on_step| {
                    for step in 0..STEPS {
                        if !on_step(step) {
                            return Ok(None);
                        }
                    }
                    Ok(Some(picture.clone()))
                });
                black_box(reply.png.map(|png| png.len()))
            })
        });
        tracing.shutdown();
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
