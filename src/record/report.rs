//! The JSON report of a headless run: the same numbers the UI shows, written down.
//!
//! Field names are a contract (CI and users' scripts read them): `scenario`,
//! `semantics`, `spans{..}`, `requests{..}`, `exports[..]`, `shutdown`, `device`.

use std::sync::atomic::Ordering::Relaxed;

use serde::{Deserialize, Serialize};

pub use super::requests::RequestReport;
use super::{CollectorStats, ExitReport, ShutdownReport};
use super::{ExportEvent, Marker, Record, Sample, SpanCounts};
use crate::config::Settings;

/// What a real run of the embedded collector measured, which the virtual clock charges
/// per export: see `session::calibrate`; and for the model workload, the model's own
/// service times ([`ModelTimes`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// OTLP/HTTP bytes per exported span.
    pub bytes_per_span: f64,
    /// One export against a backend without injected latency takes
    /// `per_batch_ms + per_span_ms * spans`.
    pub per_batch_ms: f64,
    pub per_span_ms: f64,
    /// How many real exports the fit was made from.
    pub exports_measured: u64,
    /// The model's measured inference and upload times, which a virtual run of the model
    /// workload draws each request's from; `null` when no model was measured.
    #[serde(default)]
    pub model: Option<ModelTimes>,
}

/// The model's service times as a real warm-up and serving run measured them on one
/// device: every denoising step's time (a step is one guided forward pass and its device
/// sync, the unit a request is made of, so any `workload.steps` can be drawn from it) and
/// every request's `upload` (the PNG encoding).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelTimes {
    /// Where the times come from, in words (the device, the requests and their steps).
    pub source: String,
    /// The device choice the times hold for (`workload.device`).
    pub device_choice: crate::config::DeviceChoice,
    /// The device the model ran on (as the report's `device` section names it).
    pub device: super::DeviceInfo,
    /// Seconds the warm-up before the measured requests took (0 when the model was
    /// already warm).
    pub warm_up_s: f64,
    /// Requests measured, each of `steps_per_request` steps.
    pub requests: u64,
    pub steps_per_request: usize,
    /// Every measured step's wall time, milliseconds, in the order they ran.
    pub step_ms: Vec<f64>,
    /// Every measured request's PNG encoding time, milliseconds.
    pub upload_ms: Vec<f64>,
}

/// Replicas a fleet's summary lists at most: those that lost most.
const FLEET_ROWS_SHOWN: usize = 20;

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// `real`: the threaded pipeline ran in real time; `virtual`: the simulator (`sim`).
    pub clock: &'static str,
    /// The measured costs a virtual run charged; `null` for a real run.
    pub calibration: Option<Calibration>,
    pub scenario: String,
    pub semantics: &'static str,
    pub spans: SpanReport,
    pub requests: RequestReport,
    pub exports: Vec<ExportEvent>,
    /// Export batches older than the record keeps one by one (still in the counters).
    pub exports_forgotten: u64,
    pub http: HttpReport,
    pub collector: Option<CollectorStats>,
    /// Filled by the shutdown lifecycle; `null` when the run ended without one.
    pub shutdown: Option<ShutdownReport>,
    /// How a run without a shutdown ended (`null` with one, and in the window).
    pub exit: Option<ExitReport>,
    pub device: DeviceReport,
    pub markers: Vec<Marker>,
    pub series: Vec<Sample>,
    /// The last second's rates and the wire size per span, as the window shows them.
    pub rates: super::rates::RateReport,
    pub duration_ms: f64,
    pub settings: Settings,
    /// A fleet's replicas and totals (virtual clock, `fleet.replicas` above 1); the
    /// counts above are then the fleet's totals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<super::fleet::FleetReport>,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct SpanReport {
    #[serde(flatten)]
    pub counts: SpanCounts,
    /// created - (every bucket): 0 when every span is accounted for.
    pub unaccounted: i64,
    /// Spans of requests SIGKILL cut off: they never ended, so no SDK ever had them.
    /// Not in `created`; shown apart.
    pub never_ended: u64,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct HttpReport {
    pub attempts: u64,
    pub bytes: u64,
}

/// What ran the requests.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceReport {
    /// `synthetic` or `model`.
    pub workload: &'static str,
    /// The adapter's name (`llvmpipe (LLVM 15.0.6, 256 bits)`, `NVIDIA H100 ...`), the CPU
    /// backend's description, or what the synthetic workload does instead of inference.
    pub name: String,
    /// `wgpu/Vulkan`, `flex`, ...; `null` for the synthetic workload or before the model's
    /// device is known.
    pub backend: Option<String>,
    /// `discrete GPU`, `integrated GPU`, `software (CPU)`, `CPU`, ...
    pub device_type: Option<String>,
    /// Why this is not a GPU, when it is not.
    pub fallback_reason: Option<String>,
    /// How far the model's warm-up has got, 0 to 1 (1 once it is done); `null` without a
    /// model.
    pub warm_up_fraction: Option<f32>,
    /// What the warm-up is doing (`compiled block1`, `ready`, `failed`); `null` without a
    /// model.
    pub warm_up_stage: Option<String>,
    /// Seconds the model's warm-up took; `null` while it runs or without a model.
    pub warm_up_s: Option<f64>,
    /// Why the model could not serve, if it could not.
    pub error: Option<String>,
}

impl DeviceReport {
    /// The record's model device, or the synthetic workload's stand-in.
    pub fn of(record: &Record) -> DeviceReport {
        let Some(status) = record.model_status() else {
            return DeviceReport {
                workload: "synthetic",
                name: "none: inference is a timed sleep".into(),
                backend: None,
                device_type: None,
                fallback_reason: None,
                warm_up_fraction: None,
                warm_up_stage: None,
                warm_up_s: None,
                error: None,
            };
        };
        let device = status.device.as_ref();
        DeviceReport {
            workload: "model",
            name: device.map_or_else(|| "not chosen yet".into(), |d| d.adapter.clone()),
            backend: device.map(|d| d.backend.clone()),
            device_type: device.map(|d| d.device_type.clone()),
            fallback_reason: device.and_then(|d| d.fallback_reason.clone()),
            warm_up_fraction: Some(status.warm_up_fraction),
            warm_up_stage: Some(status.warm_up_stage),
            warm_up_s: status.warm_up_s,
            error: status.error,
        }
    }
}

impl Report {
    /// Builds the report from the record and, when embedded, the collector's counts.
    pub fn build(
        record: &Record,
        settings: &Settings,
        collector: Option<CollectorStats>,
    ) -> Report {
        let c = &record.counters;
        let mut counts = record.span_counts();
        counts.received = collector.as_ref().map_or(0, |c| c.spans_received);
        let (exports, exports_forgotten) = record.exports();
        let series = record.samples();
        let rates = super::rates::RateReport::of(&series, &counts, collector.as_ref());
        Report {
            clock: "real",
            calibration: None,
            scenario: settings.name.clone(),
            semantics: settings.tracing.semantics.name(),
            spans: SpanReport {
                counts,
                unaccounted: counts.unaccounted(),
                never_ended: c.spans_never_ended.load(Relaxed),
            },
            requests: RequestReport {
                sent: c.requests_sent.load(Relaxed),
                completed: c.requests_completed.load(Relaxed),
                rejected: c.requests_rejected.load(Relaxed),
                cancelled: c.requests_cancelled.load(Relaxed),
                refused: c.requests_refused.load(Relaxed),
                returned: c.requests_returned.load(Relaxed),
                cut_off: c.requests_cut_off.load(Relaxed),
                failed: c.requests_failed.load(Relaxed),
                latency_ms: record
                    .latency
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .summary(),
                service_ms: record
                    .service
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .summary(),
            },
            exports,
            exports_forgotten,
            http: HttpReport {
                attempts: c.http_attempts.load(Relaxed),
                bytes: c.http_bytes.load(Relaxed),
            },
            collector,
            shutdown: None,
            exit: None,
            device: DeviceReport::of(record),
            markers: record.markers(),
            series,
            rates,
            duration_ms: record.now_ms(),
            settings: settings.clone(),
            fleet: None,
        }
    }

    /// A few lines for a person at a terminal.
    pub fn summary(&self) -> String {
        let verdict = self
            .shutdown
            .as_ref()
            .map_or(String::new(), |s| format!("\nshutdown: {}", s.verdict));
        let exit = self
            .exit
            .as_ref()
            .filter(|e| e.timed_out)
            .map_or(String::new(), |e| format!("\nend: {}", e.verdict));
        let fleet = self.fleet.as_ref().map_or(String::new(), |f| {
            format!("\n{}", f.summary(FLEET_ROWS_SHOWN))
        });
        self.counts_summary() + &verdict + &exit + &fleet
    }

    fn counts_summary(&self) -> String {
        let s = &self.spans.counts;
        let r = &self.requests;
        let fmt_ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
        format!(
            "scenario {} ({} semantics), {:.1} s\n\
             requests: {} sent, {} completed, {} rejected{}; latency p50 {} ms, p99 {} ms\n\
             spans: {} created = {} not sampled + {} exported + {} dropped (queue full) \
             + {} ended after shutdown + {} export failed + {} lost at kill + {} queued\n\
             collector received {} spans in {} export batches",
            self.scenario,
            self.semantics,
            self.duration_ms / 1000.0,
            r.sent,
            r.completed,
            r.rejected,
            [
                (r.cancelled, "cancelled"),
                (r.refused, "refused after SIGTERM"),
                (r.returned, "handed back at SIGTERM"),
                (r.cut_off, "cut off by SIGKILL"),
                (r.failed, "failed"),
            ]
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!(", {n} {what}"))
            .collect::<String>(),
            fmt_ms(r.latency_ms.p50),
            fmt_ms(r.latency_ms.p99),
            s.created,
            s.not_sampled,
            s.exported,
            s.dropped_queue_full,
            s.dropped_after_shutdown,
            s.export_failed,
            s.lost_at_kill,
            s.queued,
            s.received,
            self.exports.len() as u64 + self.exports_forgotten,
        )
    }
}
