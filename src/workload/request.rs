//! One request's spans, shaped as in the seed's `run` endpoint:
//!
//! ```text
//! text-to-image            model.name, prompt.length, num_inference_steps
//! ├── inference
//! ├── upload
//! └── extra.N              (optional, `extra_spans` of them)
//! ```
//!
//! Every span that ends is counted as created, and as not sampled when its sampled flag
//! is clear; the counting happens just before `end()` so that a span is never in a
//! processor's queue before it is in `created`.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use opentelemetry::trace::{Span, TraceContextExt, TraceId, Tracer, noop::NoopTracer};
use opentelemetry::{Context, KeyValue};

use crate::config::WorkloadSettings;
use crate::record::Counters;
use crate::telemetry::Generation;

/// The model the seed serves; the synthetic workload keeps its name on the spans.
pub const MODEL_NAME: &str = "stable-diffusion-xl-base-1.0";
/// Steps the synthetic request claims, as the seed's default `num_inference_steps`.
pub const SYNTHETIC_STEPS: i64 = 20;
const SYNTHETIC_PROMPT: &str = "a lighthouse at dusk";

/// Serves one synthetic request; returns its trace id (all zeros when tracing is off).
pub fn serve_synthetic(
    generation: Option<&Generation>,
    settings: &WorkloadSettings,
    counters: &Counters,
) -> TraceId {
    match generation {
        Some(generation) => traced(&generation.tracer, settings, Some(counters)),
        // Tracing off: the seed's `trace.get_tracer()` without a provider is a no-op
        // tracer; the same code runs and makes no spans.
        None => traced(&NoopTracer::new(), settings, None),
    }
}

fn traced<T>(tracer: &T, settings: &WorkloadSettings, counters: Option<&Counters>) -> TraceId
where
    T: Tracer,
    T::Span: Send + Sync + 'static,
{
    let mut root = tracer.start("text-to-image");
    root.set_attribute(KeyValue::new("model.name", MODEL_NAME));
    root.set_attribute(KeyValue::new(
        "prompt.length",
        SYNTHETIC_PROMPT.len() as i64,
    ));
    root.set_attribute(KeyValue::new("num_inference_steps", SYNTHETIC_STEPS));
    let trace_id = root.span_context().trace_id();
    let cx = Context::current_with_span(root);

    let mut inference = tracer.start_with_context("inference", &cx);
    pause(settings.inference_ms);
    end(&mut inference, counters);

    let mut upload = tracer.start_with_context("upload", &cx);
    pause(settings.upload_ms);
    end(&mut upload, counters);

    for index in 0..settings.extra_spans {
        let mut extra = tracer.start_with_context("extra", &cx);
        extra.set_attribute(KeyValue::new("extra.index", index as i64));
        end(&mut extra, counters);
    }

    let root = cx.span();
    count(root.span_context().is_sampled(), counters);
    root.end();
    trace_id
}

fn end<S: Span>(span: &mut S, counters: Option<&Counters>) {
    count(span.span_context().is_sampled(), counters);
    span.end();
}

fn count(sampled: bool, counters: Option<&Counters>) {
    if let Some(counters) = counters {
        counters.created.fetch_add(1, Relaxed);
        if !sampled {
            counters.not_sampled.fetch_add(1, Relaxed);
        }
    }
}

fn pause(ms: f64) {
    if ms > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(ms / 1000.0));
    }
}
