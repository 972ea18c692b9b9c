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

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use opentelemetry::trace::{Span, Status, TraceContextExt, TraceId, Tracer, noop::NoopTracer};
use opentelemetry::{Context, KeyValue};

use crate::config::WorkloadSettings;
use crate::record::Counters;
use crate::telemetry::Generation;
use crate::telemetry::wire::RunnerLife;

/// The model the seed serves; the synthetic workload keeps its name on the spans.
pub const MODEL_NAME: &str = "stable-diffusion-xl-base-1.0";
const SYNTHETIC_PROMPT: &str = "a lighthouse at dusk";
/// `force_flush()`'s default timeout in both SDKs (Python: `timeout_millis=30000`).
const FLUSH_IN_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Completed(TraceId),
    /// `handle_exit()` asked it to stop; its spans still ended (and were counted).
    Cancelled(TraceId),
    /// SIGKILL: the process is gone mid-request; its spans never ended.
    Killed,
}

/// Serves one synthetic request. `trace_id` is all zeros when tracing is off.
pub fn serve_synthetic(
    generation: Option<&Generation>,
    settings: &WorkloadSettings,
    counters: &Counters,
    cancel: &AtomicBool,
    life: &RunnerLife,
) -> Outcome {
    let stop = Stop { cancel, life };
    match generation {
        Some(generation) => {
            let outcome = traced(&generation.tracer, settings, Some(counters), &stop);
            if settings.flush_every_request && outcome != Outcome::Killed {
                // The anti-pattern the seed warns against: the request waits until the
                // processor has exported everything queued, its own spans included.
                // A failed flush loses nothing by itself (the exporter counts each
                // batch's fate), so its error only ends the wait.
                let _ = generation.force_flush(FLUSH_IN_REQUEST_TIMEOUT);
            }
            outcome
        }
        // Tracing off: the seed's `trace.get_tracer()` without a provider is a no-op
        // tracer; the same code runs and makes no spans.
        None => traced(&NoopTracer::new(), settings, None, &stop),
    }
}

/// What can interrupt a request between steps.
struct Stop<'a> {
    cancel: &'a AtomicBool,
    life: &'a RunnerLife,
}

fn traced<T>(
    tracer: &T,
    settings: &WorkloadSettings,
    counters: Option<&Counters>,
    stop: &Stop<'_>,
) -> Outcome
where
    T: Tracer,
    T::Span: Send + Sync + 'static,
{
    let mut root = tracer.start("text-to-image");
    opened(counters);
    root.set_attribute(KeyValue::new("model.name", MODEL_NAME));
    root.set_attribute(KeyValue::new(
        "prompt.length",
        SYNTHETIC_PROMPT.len() as i64,
    ));
    root.set_attribute(KeyValue::new("num_inference_steps", settings.steps as i64));
    let trace_id = root.span_context().trace_id();
    let cx = Context::current_with_span(root);

    let mut inference = tracer.start_with_context("inference", &cx);
    opened(counters);
    let step_ms = settings.inference_ms / settings.steps.max(1) as f64;
    let mut cancelled = false;
    for _ in 0..settings.steps {
        if stop.life.is_killed() {
            return vanish(inference, cx);
        }
        if stop.cancel.load(Relaxed) {
            cancelled = true;
            break;
        }
        pause(step_ms);
    }
    if stop.life.is_killed() {
        return vanish(inference, cx);
    }
    if cancelled {
        inference.set_status(Status::error("cancelled by handle_exit"));
    }
    end(&mut inference, counters);

    if !cancelled {
        let mut upload = tracer.start_with_context("upload", &cx);
        opened(counters);
        pause(settings.upload_ms);
        if stop.life.is_killed() {
            return vanish(upload, cx);
        }
        end(&mut upload, counters);

        for index in 0..settings.extra_spans {
            let mut extra = tracer.start_with_context("extra", &cx);
            opened(counters);
            extra.set_attribute(KeyValue::new("extra.index", index as i64));
            end(&mut extra, counters);
        }
    }

    let root = cx.span();
    if cancelled {
        root.set_status(Status::error("cancelled by handle_exit"));
    }
    count_end(root.span_context().is_sampled(), counters);
    root.end();
    if cancelled {
        Outcome::Cancelled(trace_id)
    } else {
        Outcome::Completed(trace_id)
    }
}

/// SIGKILL mid-request: the spans are forgotten, not ended (ending, or dropping, an SDK
/// span would hand it to the processor, which a dead process cannot do).
fn vanish<S>(span: S, cx: Context) -> Outcome {
    std::mem::forget(span);
    std::mem::forget(cx);
    Outcome::Killed
}

fn end<S: Span>(span: &mut S, counters: Option<&Counters>) {
    count_end(span.span_context().is_sampled(), counters);
    span.end();
}

fn opened(counters: Option<&Counters>) {
    if let Some(counters) = counters {
        counters.open_spans.fetch_add(1, Relaxed);
    }
}

fn count_end(sampled: bool, counters: Option<&Counters>) {
    if let Some(counters) = counters {
        counters.open_spans.fetch_sub(1, Relaxed);
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
