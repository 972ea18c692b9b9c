//! One request's spans, shaped as in the seed's `run` endpoint:
//!
//! ```text
//! text-to-image            model.name, prompt.length, num_inference_steps
//! ├── inference
//! ├── upload
//! └── extra.N              (optional, `extra_spans` of them)
//! ```
//!
//! The `model` workload makes the same tree around real inference ([`serve_model`]), with
//! one `denoising step` event per step on `inference` (switchable), and `upload` timing the
//! PNG encoding of the picture.
//!
//! Every span that ends is counted as created, and as not sampled when its sampled flag
//! is clear; the counting happens just before `end()` so that a span is never in a
//! processor's queue before it is in `created`.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use opentelemetry::trace::{Span, Status, TraceContextExt, TraceId, Tracer, noop::NoopTracer};
use opentelemetry::{Context, KeyValue};

use crate::config::WorkloadSettings;
use crate::record::{Counters, LastImage, Record};
use crate::telemetry::wire::RunnerLife;
use crate::telemetry::{Generation, ids};
use crate::workload::model::service::ModelService;
use crate::workload::model::{Image, ModelError};

/// The error status of a request, and of the span it was in, when `handle_exit = cancel`
/// stopped it.
const CANCELLED: &str = "cancelled by handle_exit";

/// The model the seed serves; the synthetic workload keeps its name on the spans.
pub const MODEL_NAME: &str = "stable-diffusion-xl-base-1.0";
const SYNTHETIC_PROMPT: &str = "a lighthouse at dusk";
/// `force_flush()`'s default timeout in both SDKs (Python: `timeout_millis=30000`).
pub const FLUSH_IN_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Completed(TraceId),
    /// `handle_exit()` asked it to stop; its spans still ended (and were counted).
    Cancelled(TraceId),
    /// The model could not run (its spans ended with an error status saying why).
    Failed(TraceId),
    /// SIGKILL: the process is gone mid-request; its spans never ended.
    Killed,
}

/// Serves one synthetic request whose root span gets `root_trace_id` (see
/// [`crate::telemetry::ids`]). The outcome's trace id is all zeros when tracing is off.
pub fn serve_synthetic(
    generation: Option<&Generation>,
    root_trace_id: u128,
    settings: &WorkloadSettings,
    counters: &Counters,
    cancel: &AtomicBool,
    life: &RunnerLife,
) -> Outcome {
    let stop = Stop { cancel, life };
    match generation {
        Some(generation) => {
            let book = Book {
                counters,
                life: Some(life),
            };
            let outcome = traced(
                &generation.tracer,
                root_trace_id,
                settings,
                Some(book),
                &stop,
            );
            flush_if_asked(generation, settings, outcome);
            outcome
        }
        // Tracing off: the seed's `trace.get_tracer()` without a provider is a no-op
        // tracer; the same code runs and makes no spans.
        None => traced(&NoopTracer::new(), root_trace_id, settings, None, &stop),
    }
}

/// What can interrupt a request between steps.
struct Stop<'a> {
    cancel: &'a AtomicBool,
    life: &'a RunnerLife,
}

fn traced<T>(
    tracer: &T,
    root_trace_id: u128,
    settings: &WorkloadSettings,
    counters: Option<Book<'_>>,
    stop: &Stop<'_>,
) -> Outcome
where
    T: Tracer,
    T::Span: Send + Sync + 'static,
{
    let mut root = ids::with_root_trace_id(root_trace_id, || tracer.start("text-to-image"));
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
    // Step k ends `k * step_ms` after the inference started, whatever the previous sleeps
    // overslept: each `sleep` wakes up to ~0.1 ms late (timer slack, scheduling), and
    // twenty relative sleeps made a 12 ms inference take 15 ms, so the runner served
    // fewer requests than its settings say (and than the virtual clock, which has no
    // slack, serves).
    let inference_start = Instant::now();
    for step in 1..=settings.steps {
        if stop.life.is_killed() {
            return vanish(inference, cx);
        }
        if stop.cancel.load(Relaxed) {
            cancelled = true;
            break;
        }
        pause_until(inference_start, step as f64 * step_ms);
    }
    if stop.life.is_killed() {
        return vanish(inference, cx);
    }
    if cancelled {
        inference.set_status(Status::error(CANCELLED));
    }
    end(&mut inference, counters);

    if !cancelled {
        let mut upload = tracer.start_with_context("upload", &cx);
        opened(counters);
        // From the inference's start too, so its last step's oversleep is not added again.
        pause_until(inference_start, settings.inference_ms + settings.upload_ms);
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

    end_root(&cx, cancelled.then_some(CANCELLED), counters);
    if cancelled {
        Outcome::Cancelled(trace_id)
    } else {
        Outcome::Completed(trace_id)
    }
}

/// `workload.flush_every_request`: the anti-pattern the seed warns against, a
/// `force_flush()` in the endpoint. The request waits until the processor has exported
/// everything queued, its own spans included. A failed flush loses nothing by itself (the
/// exporter counts each batch's fate), so its error only ends the wait.
fn flush_if_asked(generation: &Generation, settings: &WorkloadSettings, outcome: Outcome) {
    if settings.flush_every_request && outcome != Outcome::Killed {
        let _ = generation.force_flush(FLUSH_IN_REQUEST_TIMEOUT);
    }
}

/// SIGKILL mid-request: the spans are forgotten, not ended (ending, or dropping, an SDK
/// span would hand it to the processor, which a dead process cannot do).
fn vanish<S>(span: S, cx: Context) -> Outcome {
    std::mem::forget(span);
    std::mem::forget(cx);
    Outcome::Killed
}

/// Where a traced request counts its spans, and the runner whose kill stops it.
#[derive(Clone, Copy)]
struct Book<'a> {
    counters: &'a Counters,
    life: Option<&'a RunnerLife>,
}

/// Ends a span, counting it as created first. Once the runner is killed the span is
/// neither counted nor ended: it stays open, as in a process that is gone (the kill
/// counts it among the spans that never ended, and the processors ignore it if it is
/// dropped later).
fn end<S: Span>(span: &mut S, book: Option<Book<'_>>) {
    let Some(book) = book else {
        span.end(); // tracing off: nothing is counted
        return;
    };
    let Some(_pass) = RunnerLife::enter_end(book.life) else {
        return;
    };
    count_end(span.span_context().is_sampled(), Some(book));
    span.end();
}

fn opened(book: Option<Book<'_>>) {
    if let Some(book) = book {
        book.counters.open_spans.fetch_add(1, Relaxed);
    }
}

fn count_end(sampled: bool, book: Option<Book<'_>>) {
    if let Some(Book { counters, .. }) = book {
        counters.open_spans.fetch_sub(1, Relaxed);
        counters.created.fetch_add(1, Relaxed);
        if !sampled {
            counters.not_sampled.fetch_add(1, Relaxed);
        }
    }
}

/// Sleeps until `ms` after `start` (not at all when that is past).
fn pause_until(start: Instant, ms: f64) {
    let due = start + Duration::from_secs_f64(ms.max(0.0) / 1000.0);
    let left = due.saturating_duration_since(Instant::now());
    if !left.is_zero() {
        std::thread::sleep(left);
    }
}

/// `model.name` on the model workload's spans.
pub const GLYPH_MODEL_NAME: &str = "glyph-diffusion";

/// The prompts the model workload cycles through: different first letters (the glyph drawn,
/// see `model::glyphs`) and lengths.
pub const MODEL_PROMPTS: [&str; 8] = [
    "a lighthouse at dusk",
    "bear in the snow",
    "cat on a red mat",
    "7 wonders of the world",
    "zebra crossing",
    "quiet harbour at night",
    "green apple",
    "kite over the hills",
];

/// A trace id as the seed prints it: 32 lower-case hex digits.
pub fn trace_id_hex(trace_id: TraceId) -> String {
    format!("{trace_id:032x}")
}

/// One model request's input.
#[derive(Clone, Copy, Debug)]
pub struct ModelRequest<'a> {
    pub prompt: &'a str,
    pub steps: usize,
    /// Seed of the starting noise.
    pub seed: u64,
    /// One span event per denoising step on `inference`.
    pub step_events: bool,
}

/// What a model request gives back.
#[derive(Debug)]
pub struct ModelReply {
    pub outcome: Outcome,
    /// The root span's trace id, 32 hex digits (all zeros when tracing is off).
    pub trace_id: String,
    pub image: Option<Image>,
    /// The image as the PNG the `upload` span encoded.
    pub png: Option<Vec<u8>>,
    /// Wall time of every step that ran, milliseconds.
    pub step_ms: Vec<f64>,
    pub inference_ms: f64,
    pub upload_ms: f64,
    /// Why it failed, for `Outcome::Failed`.
    pub error: Option<ModelError>,
}

/// The network call a model request makes: `generate(stop, on_step)`, which must call
/// `on_step(i)` before step `i` and stop (returning `Ok(None)`) when it returns false, and
/// may poll `stop` while it waits for the model.
pub type Generate<'a> = dyn FnMut(&dyn Fn() -> bool, &mut dyn FnMut(usize) -> bool) -> Result<Option<Image>, ModelError>
    + 'a;

/// Runs one model request under `tracer`, making the seed's span tree around `generate`.
/// `life` is the runner's (None outside a runner, e.g. `gracetrace infer`): a kill between
/// steps makes the spans vanish without ending, as the synthetic workload's do.
pub fn model_request<T>(
    tracer: &T,
    request: ModelRequest<'_>,
    counters: Option<&Counters>,
    cancel: &AtomicBool,
    life: Option<&RunnerLife>,
    generate: &mut Generate<'_>,
) -> ModelReply
where
    T: Tracer,
    T::Span: Send + Sync + 'static,
{
    let counters = counters.map(|counters| Book { counters, life });
    let killed = || life.is_some_and(RunnerLife::is_killed);
    let (cx, trace_id) = start_model_root(tracer, &request, counters);
    let mut reply = ModelReply::pending(trace_id, request.steps);

    let mut inference = tracer.start_with_context("inference", &cx);
    opened(counters);
    let stop = || killed() || cancel.load(Relaxed);
    let result = run_inference(
        &mut inference,
        request.step_events,
        &stop,
        generate,
        &mut reply,
    );
    if killed() {
        vanish(inference, cx);
        return reply;
    }
    let image = match result {
        Ok(Some(image)) => image,
        Ok(None) => {
            end_with_error(&mut inference, &cx, CANCELLED, counters);
            reply.outcome = Outcome::Cancelled(trace_id);
            return reply;
        }
        Err(error) => {
            end_with_error(&mut inference, &cx, &error.to_string(), counters);
            reply.fail(trace_id, error);
            return reply;
        }
    };
    end(&mut inference, counters);

    upload(tracer, cx, trace_id, image, counters, &killed, &mut reply);
    reply
}

/// Starts the request's root span `text-to-image` with the seed's attributes, counted as
/// opened, and returns the context holding it (the parent of the other spans).
fn start_model_root<T>(
    tracer: &T,
    request: &ModelRequest<'_>,
    counters: Option<Book<'_>>,
) -> (Context, TraceId)
where
    T: Tracer,
    T::Span: Send + Sync + 'static,
{
    let mut root = tracer.start("text-to-image");
    opened(counters);
    root.set_attribute(KeyValue::new("model.name", GLYPH_MODEL_NAME));
    // The seed sets `len(prompt)`: Python counts characters, not bytes.
    root.set_attribute(KeyValue::new(
        "prompt.length",
        request.prompt.chars().count() as i64,
    ));
    root.set_attribute(KeyValue::new("num_inference_steps", request.steps as i64));
    let trace_id = root.span_context().trace_id();
    (Context::current_with_span(root), trace_id)
}

/// Calls `generate` while the `inference` span is open, timing each step that ran into
/// `reply.step_ms` (a step lasts from its `on_step` call to the next one, or to the end of
/// a generation that finished) and the whole call into `reply.inference_ms`. `stop` is
/// checked before every step; with `step_events`, each step that starts adds a
/// `denoising step` event to `inference`.
fn run_inference<S: Span>(
    inference: &mut S,
    step_events: bool,
    stop: &dyn Fn() -> bool,
    generate: &mut Generate<'_>,
    reply: &mut ModelReply,
) -> Result<Option<Image>, ModelError> {
    let started = Instant::now();
    let mut last = started;
    let result = generate(stop, &mut |step| {
        let now = Instant::now();
        if step > 0 {
            reply.step_ms.push(millis(now.duration_since(last)));
        }
        last = now;
        if stop() {
            return false;
        }
        if step_events {
            inference.add_event("denoising step", vec![KeyValue::new("step", step as i64)]);
        }
        true
    });
    let now = Instant::now();
    if matches!(result, Ok(Some(_))) {
        reply.step_ms.push(millis(now.duration_since(last)));
    }
    reply.inference_ms = millis(now.duration_since(started));
    result
}

/// The `upload` span, timing the PNG encoding of `image`: then it and the root end,
/// completing the request, or both fail with the encoder's error. A kill during the
/// encoding makes both vanish instead.
fn upload<T>(
    tracer: &T,
    cx: Context,
    trace_id: TraceId,
    image: Image,
    counters: Option<Book<'_>>,
    killed: &dyn Fn() -> bool,
    reply: &mut ModelReply,
) where
    T: Tracer,
    T::Span: Send + Sync + 'static,
{
    let mut upload = tracer.start_with_context("upload", &cx);
    opened(counters);
    let started = Instant::now();
    let png = image.to_png();
    reply.upload_ms = millis(started.elapsed());
    if killed() {
        vanish(upload, cx);
        return;
    }
    match png {
        Ok(png) => {
            upload.set_attribute(KeyValue::new("image.bytes", png.len() as i64));
            end(&mut upload, counters);
            reply.png = Some(png);
            reply.image = Some(image);
            reply.outcome = Outcome::Completed(trace_id);
            end_root(&cx, None, counters);
        }
        Err(error) => {
            end_with_error(&mut upload, &cx, &error.to_string(), counters);
            reply.fail(trace_id, error);
        }
    }
}

/// A duration in milliseconds, the unit of every time in a [`ModelReply`].
fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

impl ModelReply {
    /// The reply before anything happened: `Killed` is what a request that never gets to
    /// set its outcome (the runner died under it) must report.
    fn pending(trace_id: TraceId, steps: usize) -> Self {
        ModelReply {
            outcome: Outcome::Killed,
            trace_id: trace_id_hex(trace_id),
            image: None,
            png: None,
            step_ms: Vec::with_capacity(steps),
            inference_ms: 0.0,
            upload_ms: 0.0,
            error: None,
        }
    }

    /// Records that the request failed, and why.
    fn fail(&mut self, trace_id: TraceId, error: ModelError) {
        self.outcome = Outcome::Failed(trace_id);
        self.error = Some(error);
    }
}

/// Ends a child span and then the request's root span, both with `message` as their
/// error status: when one step of a request fails or is cancelled, the request does.
fn end_with_error<S: Span>(span: &mut S, cx: &Context, message: &str, counters: Option<Book<'_>>) {
    span.set_status(Status::error(message.to_owned()));
    end(span, counters);
    end_root(cx, Some(message), counters);
}

/// Ends the request's root span (held by `cx`), with an error status when given, counting
/// it first as every span is.
fn end_root(cx: &Context, error: Option<&str>, counters: Option<Book<'_>>) {
    let root = cx.span();
    if let Some(error) = error {
        root.set_status(Status::error(error.to_owned()));
    }
    let Some(_pass) = RunnerLife::enter_end(counters.and_then(|b| b.life)) else {
        return; // killed: see `end`
    };
    count_end(root.span_context().is_sampled(), counters);
    root.end();
}

/// Serves one request of the `model` workload with the shared model: prompt number `index`
/// of [`MODEL_PROMPTS`], noise seed `settings.seed + index`, its root span with trace id
/// `root_trace_id` (as a synthetic request's, so that both clocks sample the same
/// requests). A completed request's picture becomes the record's last image (moved there:
/// the runner only needs the outcome).
#[allow(clippy::too_many_arguments)] // the synthetic request's six, and the model's two
pub fn serve_model(
    generation: Option<&Generation>,
    root_trace_id: u128,
    settings: &WorkloadSettings,
    record: &Record,
    service: &ModelService,
    index: u64,
    cancel: &AtomicBool,
    life: &RunnerLife,
) -> Outcome {
    let prompt = MODEL_PROMPTS[(index % MODEL_PROMPTS.len() as u64) as usize];
    let request = ModelRequest {
        prompt,
        steps: settings.steps,
        seed: settings.seed.wrapping_add(index),
        step_events: settings.step_events,
    };
    let mut generate = |stop: &dyn Fn() -> bool, on_step: &mut dyn FnMut(usize) -> bool| {
        service.generate(request.prompt, request.steps, request.seed, stop, on_step)
    };
    let counters = Some(&record.counters);
    let reply = match generation {
        Some(generation) => ids::with_root_trace_id(root_trace_id, || {
            model_request(
                &generation.tracer,
                request,
                counters,
                cancel,
                Some(life),
                &mut generate,
            )
        }),
        None => model_request(
            &NoopTracer::new(),
            request,
            None,
            cancel,
            Some(life),
            &mut generate,
        ),
    };
    if let Some(generation) = generation {
        flush_if_asked(generation, settings, reply.outcome);
    }
    if let (Outcome::Completed(_), Some(image), Some(png)) = (reply.outcome, reply.image, reply.png)
    {
        record.set_last_image(LastImage {
            trace_id: reply.trace_id,
            prompt: prompt.to_owned(),
            width: image.width,
            height: image.height,
            rgba: image.to_rgba(),
            png,
        });
    }
    reply.outcome
}
