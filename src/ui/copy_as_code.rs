//! "Copy as code": the settings on screen as the seed's Python `setup_tracer()` with its
//! `BatchSpanProcessor(...)`, as its Node.js twin (`NodeTracerProvider`), or as environment
//! variables (names from the knob table).

use std::fmt::Write as _;

use eframe::egui::{self, RichText};

use crate::config::{Settings, knobs};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeKind {
    Python,
    Node,
    Env,
}

fn py_bool(v: bool) -> &'static str {
    if v { "True" } else { "False" }
}

/// The seed's tracer setup with these settings (opentelemetry-sdk 1.41, OTLP/HTTP).
pub fn python(settings: &Settings) -> String {
    let b = &settings.batch;
    let t = &settings.tracing;
    let endpoint = settings
        .exporter
        .endpoint
        .clone()
        .unwrap_or_else(|| "http://127.0.0.1:4318/v1/traces".into());
    format!(
        r#"from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

ENABLE_TRACING = {enabled}
SAMPLE_RATE = {rate}


def setup_tracer():
    if not ENABLE_TRACING:
        return None
    provider = TracerProvider(
        resource=Resource.create({{"service.name": "{service}"}}),
        sampler=ParentBased(TraceIdRatioBased(SAMPLE_RATE)),
    )
    provider.add_span_processor(
        BatchSpanProcessor(
            OTLPSpanExporter(endpoint="{endpoint}", timeout={timeout_s}),
            max_queue_size={queue},
            max_export_batch_size={batch},
            schedule_delay_millis={delay},
            export_timeout_millis={export_timeout},  # stored, never enforced (1.41)
        )
    )
    trace.set_tracer_provider(provider)
    return provider


# teardown(): python ignores this timeout and exports everything it holds,
# however long; budget it inside the platform's {grace_s} s grace period.
# provider.force_flush(timeout_millis={flush})
"#,
        enabled = py_bool(t.enabled),
        rate = t.sample_rate,
        service = t.service_name,
        timeout_s = settings.exporter.timeout_ms as f64 / 1000.0,
        queue = b.max_queue_size,
        batch = b.max_export_batch_size,
        delay = b.schedule_delay_ms,
        export_timeout = b.export_timeout_ms,
        grace_s = settings.shutdown.grace_ms as f64 / 1000.0,
        flush = settings.shutdown.flush_timeout_ms,
    )
}

/// The same tracer for Node.js (@opentelemetry/sdk-trace-node 2.12.1, the OTLP/HTTP
/// protobuf exporter 0.223.1): a CommonJS module exporting `setupTracer()`, which runs as
/// pasted once those packages are installed.
pub fn node(settings: &Settings) -> String {
    let b = &settings.batch;
    let t = &settings.tracing;
    let endpoint = settings
        .exporter
        .endpoint
        .clone()
        .unwrap_or_else(|| "http://127.0.0.1:4318/v1/traces".into());
    format!(
        r#"// npm install @opentelemetry/api@1.9.1 @opentelemetry/sdk-trace-node@2.12.1 //   @opentelemetry/exporter-trace-otlp-proto@0.223.1 @opentelemetry/resources@2.12.1
const {{
  BatchSpanProcessor,
  NodeTracerProvider,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
}} = require('@opentelemetry/sdk-trace-node');
const {{ OTLPTraceExporter }} = require('@opentelemetry/exporter-trace-otlp-proto');
const {{ defaultResource, resourceFromAttributes }} = require('@opentelemetry/resources');

const ENABLE_TRACING = {enabled};
const SAMPLE_RATE = {rate};

function setupTracer() {{
  if (!ENABLE_TRACING) {{
    return null;
  }}
  const provider = new NodeTracerProvider({{
    // defaultResource() names the SDK (telemetry.sdk.language = nodejs)
    resource: defaultResource().merge(resourceFromAttributes({{ 'service.name': {service} }})),
    sampler: new ParentBasedSampler({{ root: new TraceIdRatioBasedSampler(SAMPLE_RATE) }}),
    spanProcessors: [
      new BatchSpanProcessor(
        new OTLPTraceExporter({{ url: {endpoint}, timeoutMillis: {timeout} }}),
        {{
          maxQueueSize: {queue},
          maxExportBatchSize: {batch},
          scheduledDelayMillis: {delay},
          exportTimeoutMillis: {export_timeout}, // stops the waiting, not the export
        }}
      ),
    ],
  }});
  provider.register();
  return provider;
}}

// teardown(): forceFlush sends every queued batch at once and waits at most this long;
// budget it inside the platform's {grace_s} s grace period, then shut the provider down.
// await provider.forceFlush({{ timeoutMillis: {flush} }});
// await provider.shutdown();

module.exports = {{ setupTracer }};
"#,
        enabled = t.enabled,
        rate = t.sample_rate,
        service = js_string(&t.service_name),
        endpoint = js_string(&endpoint),
        timeout = settings.exporter.timeout_ms,
        queue = b.max_queue_size,
        batch = b.max_export_batch_size,
        delay = b.schedule_delay_ms,
        export_timeout = b.export_timeout_ms,
        grace_s = settings.shutdown.grace_ms as f64 / 1000.0,
        flush = settings.shutdown.flush_timeout_ms,
    )
}

/// A JavaScript string literal (JSON's escaping is valid JavaScript).
fn js_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// Every knob that has an environment variable, as `NAME=value` lines.
pub fn env_vars(settings: &Settings) -> String {
    let mut out = String::new();
    for knob in knobs::KNOBS {
        if let Some(env) = knob.env {
            let value = (knob.get)(settings);
            if env == "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" && settings.exporter.endpoint.is_none() {
                continue; // the embedded collector's port is chosen at run time
            }
            let _ = writeln!(out, "{env}={value}");
        }
    }
    out
}

pub fn show(ui: &mut egui::Ui, settings: &Settings, kind: &mut CodeKind) {
    ui.label(RichText::new("Copy as code").strong().size(15.0));
    // Wrapped: the choices must not widen the panel they sit in.
    ui.horizontal_wrapped(|ui| {
        ui.selectable_value(kind, CodeKind::Python, "Python setup_tracer()");
        ui.selectable_value(kind, CodeKind::Node, "Node.js setupTracer()");
        ui.selectable_value(kind, CodeKind::Env, "env vars");
    });
    let text = match kind {
        CodeKind::Python => python(settings),
        CodeKind::Node => node(settings),
        CodeKind::Env => env_vars(settings),
    };
    if ui.button("Copy to clipboard").clicked() {
        ui.ctx().copy_text(text.clone());
    }
    egui::CollapsingHeader::new("show code")
        .default_open(false)
        .show(ui, |ui| {
            ui.label(RichText::new(text).monospace().small());
        });
}
