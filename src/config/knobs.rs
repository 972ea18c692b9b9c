//! The knob table: one row per setting, with its TOML key, its environment variable, a
//! line of help, and a setter that parses and range-checks raw text.
//!
//! The UI (tooltips), the README table, `--set`, the environment and scenario files all
//! read this one table, so a range is written down exactly once.

use super::{HandleExit, Platform, Semantics, Settings, WorkloadKind};
use crate::workload::model::DeviceChoice;

pub struct Knob {
    /// Scenario-TOML key, `section.name`; also the `--set` key.
    pub key: &'static str,
    /// The environment variable that sets it, if any (see `env.rs` for the special ones).
    pub env: Option<&'static str>,
    pub help: &'static str,
    /// The allowed values, in words, for `--help` and tooltips.
    pub range: &'static str,
    pub set: fn(&mut Settings, &str) -> Result<(), String>,
    pub get: fn(&Settings) -> String,
}

pub fn find(key: &str) -> Option<&'static Knob> {
    KNOBS.iter().find(|k| k.key == key)
}

fn float(raw: &str, min: f64, max: f64) -> Result<f64, String> {
    let value: f64 = raw
        .replace('_', "")
        .parse()
        .map_err(|_| format!("expected a number from {min} to {max}"))?;
    if !(min..=max).contains(&value) {
        return Err(format!("expected a number from {min} to {max}"));
    }
    Ok(value)
}

fn int(raw: &str, min: u64, max: u64) -> Result<u64, String> {
    let value: u64 = raw
        .replace('_', "")
        .parse()
        .map_err(|_| format!("expected a whole number from {min} to {max}"))?;
    if !(min..=max).contains(&value) {
        return Err(format!("expected a whole number from {min} to {max}"));
    }
    Ok(value)
}

pub(super) fn boolean(raw: &str) -> Result<bool, String> {
    match raw.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

fn semantics(raw: &str) -> Result<Semantics, String> {
    Semantics::ALL
        .into_iter()
        .find(|s| s.name() == raw.to_ascii_lowercase())
        .ok_or_else(|| "expected python, rust or sdk".into())
}

fn endpoint(raw: &str) -> Result<Option<String>, String> {
    if raw.is_empty() || raw == "embedded" {
        return Ok(None);
    }
    if !raw.starts_with("http://") {
        return Err(
            "expected an http:// URL ending in /v1/traces, or \"embedded\" (https is not built in)"
                .into(),
        );
    }
    Ok(Some(raw.to_string()))
}

const MAX_QUEUE: u64 = 10_000_000;
const MAX_MS: u64 = 3_600_000;

pub static KNOBS: &[Knob] = &[
    Knob {
        key: "name",
        env: None,
        help: "A short name for the scenario, shown in reports.",
        range: "any text",
        set: |s, v| {
            s.name = v.to_string();
            Ok(())
        },
        get: |s| s.name.clone(),
    },
    Knob {
        key: "tracing.enabled",
        env: Some("ENABLE_TRACING"),
        help: "Off: no tracer provider at all, so spans are no-ops and no export thread runs.",
        range: "true or false",
        set: |s, v| {
            s.tracing.enabled = boolean(v)?;
            Ok(())
        },
        get: |s| s.tracing.enabled.to_string(),
    },
    Knob {
        key: "tracing.sample_rate",
        env: Some("OTEL_SAMPLE_RATE"),
        help: "Fraction of new root spans sampled: ParentBased(TraceIdRatioBased(rate)).",
        range: "0 to 1",
        set: |s, v| {
            s.tracing.sample_rate = float(v, 0.0, 1.0)?;
            Ok(())
        },
        get: |s| s.tracing.sample_rate.to_string(),
    },
    Knob {
        key: "tracing.semantics",
        env: Some("GRACETRACE_SEMANTICS"),
        help: "Whose batch processor and exporter to imitate: python (opentelemetry-sdk 1.41), \
               rust (opentelemetry_sdk 0.33, reimplemented) or sdk (the stock Rust processor).",
        range: "python, rust or sdk",
        set: |s, v| {
            s.tracing.semantics = semantics(v)?;
            Ok(())
        },
        get: |s| s.tracing.semantics.name().into(),
    },
    Knob {
        key: "tracing.service_name",
        env: Some("OTEL_SERVICE_NAME"),
        help: "The service.name resource attribute.",
        range: "non-empty text",
        set: |s, v| {
            if v.is_empty() {
                return Err("expected a non-empty name".into());
            }
            s.tracing.service_name = v.to_string();
            Ok(())
        },
        get: |s| s.tracing.service_name.clone(),
    },
    Knob {
        key: "batch.max_queue_size",
        env: Some("OTEL_BSP_MAX_QUEUE_SIZE"),
        help: "Spans the batch processor holds in memory; beyond it spans are dropped \
               (python: the oldest, rust: the newest).",
        range: "1 to 10000000",
        set: |s, v| {
            s.batch.max_queue_size = int(v, 1, MAX_QUEUE)? as usize;
            Ok(())
        },
        get: |s| s.batch.max_queue_size.to_string(),
    },
    Knob {
        key: "batch.max_export_batch_size",
        env: Some("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"),
        help: "Spans per HTTP request to the collector; reaching it also wakes the exporter early.",
        range: "1 to max_queue_size",
        set: |s, v| {
            s.batch.max_export_batch_size = int(v, 1, MAX_QUEUE)? as usize;
            Ok(())
        },
        get: |s| s.batch.max_export_batch_size.to_string(),
    },
    Knob {
        key: "batch.schedule_delay_ms",
        env: Some("OTEL_BSP_SCHEDULE_DELAY"),
        help: "How often the processor exports on its own, milliseconds.",
        range: "1 to 3600000",
        set: |s, v| {
            s.batch.schedule_delay_ms = int(v, 1, MAX_MS)?;
            Ok(())
        },
        get: |s| s.batch.schedule_delay_ms.to_string(),
    },
    Knob {
        key: "batch.export_timeout_ms",
        env: Some("OTEL_BSP_EXPORT_TIMEOUT"),
        help: "Stored but never enforced by either SDK's thread processor (FACTS.md).",
        range: "0 to 3600000",
        set: |s, v| {
            s.batch.export_timeout_ms = int(v, 0, MAX_MS)?;
            Ok(())
        },
        get: |s| s.batch.export_timeout_ms.to_string(),
    },
    Knob {
        key: "exporter.endpoint",
        env: Some("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        help: "Where spans are sent; \"embedded\" is the collector gracetrace runs on 127.0.0.1.",
        range: "\"embedded\" or http://host:port/v1/traces",
        set: |s, v| {
            s.exporter.endpoint = endpoint(v)?;
            Ok(())
        },
        get: |s| {
            s.exporter
                .endpoint
                .clone()
                .unwrap_or_else(|| "embedded".into())
        },
    },
    Knob {
        key: "exporter.timeout_ms",
        env: Some("OTEL_EXPORTER_OTLP_TIMEOUT"),
        help: "Export deadline: python spends it across all retries, rust per HTTP request.",
        range: "1 to 3600000",
        set: |s, v| {
            s.exporter.timeout_ms = int(v, 1, MAX_MS)?;
            Ok(())
        },
        get: |s| s.exporter.timeout_ms.to_string(),
    },
    Knob {
        key: "workload.kind",
        env: Some("GRACETRACE_WORKLOAD"),
        help: "What serves requests: synthetic (a sleep per step, for high rates and tests) \
               or model (the glyph diffusion model, one request at a time).",
        range: "synthetic, model",
        set: |s, v| {
            s.workload.kind = match v.to_ascii_lowercase().as_str() {
                "synthetic" => WorkloadKind::Synthetic,
                "model" => WorkloadKind::Model,
                _ => return Err("expected synthetic or model".into()),
            };
            Ok(())
        },
        get: |s| s.workload.kind.name().into(),
    },
    Knob {
        key: "workload.device",
        env: Some("GRACETRACE_DEVICE"),
        help: "Where the model runs: auto (wgpu if it finds any adapter, else the CPU \
               backend), wgpu (an error without an adapter) or cpu (burn's flex).",
        range: "auto, wgpu, cpu",
        set: |s, v| {
            s.workload.device = match v.to_ascii_lowercase().as_str() {
                "auto" => DeviceChoice::Auto,
                "wgpu" => DeviceChoice::Wgpu,
                "cpu" => DeviceChoice::Cpu,
                _ => return Err("expected auto, wgpu or cpu".into()),
            };
            Ok(())
        },
        get: |s| s.workload.device.name().into(),
    },
    Knob {
        key: "workload.step_events",
        env: None,
        help: "Model kind: one span event per denoising step on the inference span.",
        range: "true, false",
        set: |s, v| {
            s.workload.step_events = boolean(v)?;
            Ok(())
        },
        get: |s| s.workload.step_events.to_string(),
    },
    Knob {
        key: "workload.duration_s",
        env: None,
        help: "How long traffic runs, seconds.",
        range: "0.1 to 3600",
        set: |s, v| {
            s.workload.duration_s = float(v, 0.1, 3600.0)?;
            Ok(())
        },
        get: |s| s.workload.duration_s.to_string(),
    },
    Knob {
        key: "workload.rate_per_s",
        env: None,
        help: "Mean request arrival rate (open-loop Poisson), requests per second.",
        range: "0 to 1000000",
        set: |s, v| {
            s.workload.rate_per_s = float(v, 0.0, 1e6)?;
            Ok(())
        },
        get: |s| s.workload.rate_per_s.to_string(),
    },
    Knob {
        key: "workload.concurrency",
        env: None,
        help: "Requests the runner serves at once.",
        range: "1 to 1024",
        set: |s, v| {
            s.workload.concurrency = int(v, 1, 1024)? as usize;
            Ok(())
        },
        get: |s| s.workload.concurrency.to_string(),
    },
    Knob {
        key: "workload.max_waiting",
        env: None,
        help: "Requests allowed to wait for a free slot; more arrivals are rejected and counted.",
        range: "0 to 10000000",
        set: |s, v| {
            s.workload.max_waiting = int(v, 0, MAX_QUEUE)? as usize;
            Ok(())
        },
        get: |s| s.workload.max_waiting.to_string(),
    },
    Knob {
        key: "workload.inference_ms",
        env: None,
        help: "Time spent in the inference span, milliseconds.",
        range: "0 to 3600000",
        set: |s, v| {
            s.workload.inference_ms = float(v, 0.0, MAX_MS as f64)?;
            Ok(())
        },
        get: |s| s.workload.inference_ms.to_string(),
    },
    Knob {
        key: "workload.steps",
        env: None,
        help: "Denoising steps per request (num_inference_steps); cancellation is checked between steps.",
        range: "1 to 1000",
        set: |s, v| {
            s.workload.steps = int(v, 1, 1000)? as usize;
            Ok(())
        },
        get: |s| s.workload.steps.to_string(),
    },
    Knob {
        key: "workload.upload_ms",
        env: None,
        help: "Time spent in the upload span, milliseconds.",
        range: "0 to 3600000",
        set: |s, v| {
            s.workload.upload_ms = float(v, 0.0, MAX_MS as f64)?;
            Ok(())
        },
        get: |s| s.workload.upload_ms.to_string(),
    },
    Knob {
        key: "workload.extra_spans",
        env: None,
        help: "Extra child spans per request beyond inference and upload.",
        range: "0 to 10000",
        set: |s, v| {
            s.workload.extra_spans = int(v, 0, 10_000)? as usize;
            Ok(())
        },
        get: |s| s.workload.extra_spans.to_string(),
    },
    Knob {
        key: "workload.flush_every_request",
        env: None,
        help: "force_flush() at the end of every request, the anti-pattern the seed warns \
               against; the request waits for its own export, so its latency shows the cost.",
        range: "true or false",
        set: |s, v| {
            s.workload.flush_every_request = boolean(v)?;
            Ok(())
        },
        get: |s| s.workload.flush_every_request.to_string(),
    },
    Knob {
        key: "workload.burst_every_s",
        env: None,
        help: "Seconds between bursts; 0 turns bursts off.",
        range: "0 to 3600",
        set: |s, v| {
            s.workload.burst_every_s = float(v, 0.0, 3600.0)?;
            Ok(())
        },
        get: |s| s.workload.burst_every_s.to_string(),
    },
    Knob {
        key: "workload.burst_size",
        env: None,
        help: "Requests that arrive at once in each burst.",
        range: "0 to 1000000",
        set: |s, v| {
            s.workload.burst_size = int(v, 0, 1_000_000)? as usize;
            Ok(())
        },
        get: |s| s.workload.burst_size.to_string(),
    },
    Knob {
        key: "workload.seed",
        env: None,
        help: "Seed of the arrival process and trace ids' randomness source.",
        range: "0 to 18446744073709551615",
        set: |s, v| {
            s.workload.seed = int(v, 0, u64::MAX)?;
            Ok(())
        },
        get: |s| s.workload.seed.to_string(),
    },
    Knob {
        key: "collector.latency_ms",
        env: None,
        help: "Injected: added before the collector answers, milliseconds.",
        range: "0 to 600000",
        set: |s, v| {
            s.collector.latency_ms = int(v, 0, 600_000)?;
            Ok(())
        },
        get: |s| s.collector.latency_ms.to_string(),
    },
    Knob {
        key: "collector.jitter_ms",
        env: None,
        help: "Injected: uniform extra latency from 0 to this, milliseconds.",
        range: "0 to 600000",
        set: |s, v| {
            s.collector.jitter_ms = int(v, 0, 600_000)?;
            Ok(())
        },
        get: |s| s.collector.jitter_ms.to_string(),
    },
    Knob {
        key: "collector.error_rate",
        env: None,
        help: "Injected: fraction of requests answered with error_status.",
        range: "0 to 1",
        set: |s, v| {
            s.collector.error_rate = float(v, 0.0, 1.0)?;
            Ok(())
        },
        get: |s| s.collector.error_rate.to_string(),
    },
    Knob {
        key: "collector.error_status",
        env: None,
        help: "Injected: the status of failed requests (503, 429, 500, ...).",
        range: "400 to 599",
        set: |s, v| {
            s.collector.error_status = int(v, 400, 599)? as u16;
            Ok(())
        },
        get: |s| s.collector.error_status.to_string(),
    },
    Knob {
        key: "collector.retry_after_s",
        env: None,
        help: "Injected: Retry-After seconds on 429 and 503 (-1: none).",
        range: "-1 to 3600",
        set: |s, v| {
            s.collector.retry_after_s = match v {
                "-1" => None,
                _ => Some(int(v, 0, 3600)?),
            };
            Ok(())
        },
        get: |s| {
            s.collector
                .retry_after_s
                .map_or_else(|| "-1".into(), |r| r.to_string())
        },
    },
    Knob {
        key: "collector.outage",
        env: None,
        help: "Injected: the collector refuses connections.",
        range: "true or false",
        set: |s, v| {
            s.collector.outage = boolean(v)?;
            Ok(())
        },
        get: |s| s.collector.outage.to_string(),
    },
    Knob {
        key: "collector.black_hole",
        env: None,
        help: "Injected: the collector accepts requests and never answers.",
        range: "true or false",
        set: |s, v| {
            s.collector.black_hole = boolean(v)?;
            Ok(())
        },
        get: |s| s.collector.black_hole.to_string(),
    },
    Knob {
        key: "collector.ingest_limit_spans_per_s",
        env: None,
        help: "Injected: spans per second the backend ingests before answering 429 (0: no limit).",
        range: "0 to 100000000",
        set: |s, v| {
            s.collector.ingest_limit_spans_per_s = match int(v, 0, 100_000_000)? {
                0 => None,
                n => Some(n),
            };
            Ok(())
        },
        get: |s| {
            s.collector
                .ingest_limit_spans_per_s
                .unwrap_or(0)
                .to_string()
        },
    },
    Knob {
        key: "shutdown.at_s",
        env: None,
        help: "When SIGTERM arrives, seconds after traffic starts (-1: no shutdown, the run ends cleanly).",
        range: "-1, or 0 to 3600",
        set: |s, v| {
            s.shutdown.at_s = match v {
                "-1" => None,
                _ => Some(float(v, 0.0, 3600.0)?),
            };
            Ok(())
        },
        get: |s| {
            s.shutdown
                .at_s
                .map_or_else(|| "-1".into(), |t| t.to_string())
        },
    },
    Knob {
        key: "shutdown.platform",
        env: None,
        help: "Whose shutdown: sets the grace period (fal 5 s, cloud-run 10 s, kubernetes 30 s, \
               lambda 2 s, modal 30 s, replicate 10 s).",
        range: "fal, cloud-run, kubernetes, lambda, modal, replicate or custom",
        set: |s, v| {
            let platform = Platform::ALL
                .into_iter()
                .find(|p| p.name() == v.to_ascii_lowercase())
                .ok_or("expected fal, cloud-run, kubernetes, lambda, modal, replicate or custom")?;
            s.shutdown.platform = platform;
            if let Some(grace) = platform.grace_ms() {
                s.shutdown.grace_ms = grace;
            }
            Ok(())
        },
        get: |s| s.shutdown.platform.name().into(),
    },
    Knob {
        key: "shutdown.grace_ms",
        env: None,
        help: "SIGTERM to SIGKILL, milliseconds; a value other than the platform's makes it custom.",
        range: "0 to 3600000",
        set: |s, v| {
            s.shutdown.grace_ms = int(v, 0, MAX_MS)?;
            if s.shutdown.platform.grace_ms() != Some(s.shutdown.grace_ms) {
                s.shutdown.platform = Platform::Custom;
            }
            Ok(())
        },
        get: |s| s.shutdown.grace_ms.to_string(),
    },
    Knob {
        key: "shutdown.flush_timeout_ms",
        env: None,
        help: "The timeout teardown() passes to force_flush (the seed's 4000); python ignores it.",
        range: "0 to 3600000",
        set: |s, v| {
            s.shutdown.flush_timeout_ms = int(v, 0, MAX_MS)?;
            Ok(())
        },
        get: |s| s.shutdown.flush_timeout_ms.to_string(),
    },
    Knob {
        key: "shutdown.handle_exit",
        env: None,
        help: "What handle_exit() does with requests in flight: none (they run on) or cancel \
               (they stop at the next step).",
        range: "none or cancel",
        set: |s, v| {
            s.shutdown.handle_exit = match v.to_ascii_lowercase().as_str() {
                "none" => HandleExit::None,
                "cancel" => HandleExit::Cancel,
                _ => return Err("expected none or cancel".into()),
            };
            Ok(())
        },
        get: |s| match s.shutdown.handle_exit {
            HandleExit::None => "none".into(),
            HandleExit::Cancel => "cancel".into(),
        },
    },
];
