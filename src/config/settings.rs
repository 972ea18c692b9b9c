//! The typed settings and their defaults. The defaults are the seed's: the values fal's
//! guide passes to `BatchSpanProcessor`, which are also both SDKs' defaults.

use serde::{Deserialize, Serialize};

use super::{Faults, Limits};

/// Which SDK's batch processor (and exporter retry rules) to imitate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Semantics {
    /// opentelemetry-sdk 1.41 (Python): what fal users run in production.
    Python,
    /// opentelemetry_sdk 0.33 (Rust), reimplemented here so it can be observed.
    Rust,
    /// @opentelemetry/sdk-trace 2.12 with the OTLP/HTTP exporter 0.223 (Node.js),
    /// reimplemented here.
    Js,
    /// The stock `opentelemetry_sdk::trace::BatchSpanProcessor`, unmodified.
    Sdk,
}

impl Semantics {
    pub const ALL: [Semantics; 4] = [
        Semantics::Python,
        Semantics::Rust,
        Semantics::Js,
        Semantics::Sdk,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Semantics::Python => "python",
            Semantics::Rust => "rust",
            Semantics::Js => "js",
            Semantics::Sdk => "sdk",
        }
    }
}

/// What generates the requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    /// Requests whose inference is a sleep of `inference_ms`: fast and exact, for tests
    /// and for rates far beyond what a model could serve.
    Synthetic,
    /// Requests served by the glyph diffusion model (`workload::model`): real inference on
    /// the wgpu adapter (or the CPU backend), one request at a time.
    Model,
}

impl WorkloadKind {
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Synthetic => "synthetic",
            WorkloadKind::Model => "model",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TracingSettings {
    /// `ENABLE_TRACING` in the seed; off means no provider at all (a no-op tracer).
    pub enabled: bool,
    /// Root sampling ratio of `ParentBased(TraceIdRatioBased(rate))`.
    pub sample_rate: f64,
    pub semantics: Semantics,
    pub service_name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchSettings {
    pub max_queue_size: usize,
    pub max_export_batch_size: usize,
    pub schedule_delay_ms: u64,
    /// Stored and shown, never enforced: neither SDK's thread processor uses it (Python's
    /// `BatchProcessor` stores `_export_timeout_millis` and never reads it, opentelemetry-sdk
    /// 1.41.0 `opentelemetry/sdk/_shared_internal/__init__.py`; Rust's `BatchConfig` marks
    /// `max_export_timeout` `#[allow(dead_code)]`, opentelemetry_sdk 0.33.1
    /// `src/trace/span_processor.rs`).
    pub export_timeout_ms: u64,
}

impl BatchSettings {
    /// Both SDKs reject `max_export_batch_size > max_queue_size`. When the queue is shrunk
    /// under the batch (a slider), the batch follows it down; returns the note that says
    /// so, or `None` when nothing had to change.
    pub fn fit_batch_to_queue(&mut self) -> Option<String> {
        let queue = self.max_queue_size.max(1);
        if self.max_export_batch_size <= queue {
            return None;
        }
        self.max_export_batch_size = queue;
        Some(format!(
            "max_export_batch_size lowered to {queue}: it may not exceed max_queue_size"
        ))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExporterSettings {
    /// Where spans go. `None`: the embedded collector on 127.0.0.1.
    pub endpoint: Option<String>,
    /// Per export call (Python: the deadline across all tries; Rust: per HTTP request).
    pub timeout_ms: u64,
    /// Sent with every export (`OTEL_EXPORTER_OTLP_HEADERS`); values are secrets.
    #[serde(default)]
    pub headers: super::Headers,
    /// A PEM file of CA certificates trusted besides the system's, for an https endpoint.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkloadSettings {
    pub kind: WorkloadKind,
    /// How long traffic runs, in seconds.
    pub duration_s: f64,
    /// Mean arrival rate of the open-loop Poisson process, requests per second.
    pub rate_per_s: f64,
    /// Requests served at once by the runner.
    pub concurrency: usize,
    /// Requests allowed to wait for a free slot; arrivals beyond it are rejected (counted).
    pub max_waiting: usize,
    /// Time in the `inference` span, milliseconds, spent in `steps` equal steps; a
    /// cancelled request stops at the next step boundary.
    pub inference_ms: f64,
    /// Denoising steps per request (`num_inference_steps`).
    pub steps: usize,
    /// Time in the `upload` span, milliseconds.
    pub upload_ms: f64,
    /// Extra child spans per request, beyond the seed's `inference` and `upload`.
    pub extra_spans: usize,
    /// Call `force_flush()` at the end of every request: the anti-pattern the seed warns
    /// against ("Per-request flushing adds latency on every call"), here so its cost shows.
    pub flush_every_request: bool,
    /// Every `burst_every_s` seconds, `burst_size` requests arrive at once (0: no bursts).
    pub burst_every_s: f64,
    pub burst_size: usize,
    /// Seed of the arrival process, so a scenario replays the same traffic.
    pub seed: u64,
    /// `model` kind: where the network runs (auto: wgpu if any adapter, else the CPU).
    pub device: DeviceChoice,
    /// `model` kind: one span event per denoising step on the `inference` span.
    pub step_events: bool,
}

/// The shortest interval between bursts: a millisecond. A shorter one (1e-10 s) is a typo,
/// not a workload, and would make a run that never ends.
pub const MIN_BURST_EVERY_S: f64 = 0.001;
/// The most arrivals one run may schedule: 200 million, about 10 s of the simulator on
/// one core with the seed's three spans a request, and far past what one real runner can
/// serve in the longest traffic (an hour). A schedule past it is refused before it starts.
pub const MAX_ARRIVALS: f64 = 200_000_000.0;

impl WorkloadSettings {
    /// The arrivals the schedule will make, on average: the Poisson traffic's, plus one
    /// burst per whole interval (bursts come at `burst_every_s`, `2 x burst_every_s`, ...).
    pub fn expected_arrivals(&self) -> f64 {
        let steady = self.duration_s * self.rate_per_s;
        let bursts = if self.burst_every_s > 0.0 && self.burst_size > 0 {
            (self.duration_s / self.burst_every_s).ceil() * self.burst_size as f64
        } else {
            0.0
        };
        steady + bursts
    }
}

/// Which device the caller asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// wgpu if it finds any adapter (GPU or software), else the CPU backend.
    #[default]
    Auto,
    /// wgpu only: an error when it finds no adapter.
    Wgpu,
    /// burn's CPU backend (`flex`), without touching wgpu.
    Cpu,
}

impl DeviceChoice {
    pub const ALL: [DeviceChoice; 3] = [DeviceChoice::Auto, DeviceChoice::Wgpu, DeviceChoice::Cpu];

    pub fn name(self) -> &'static str {
        match self {
            DeviceChoice::Auto => "auto",
            DeviceChoice::Wgpu => "wgpu",
            DeviceChoice::Cpu => "cpu",
        }
    }
}

/// The platform whose shutdown is simulated: it fixes the signal that starts the shutdown,
/// the grace period before SIGKILL and how long requests keep arriving, as each platform
/// documents them:
/// - fal: SIGTERM, 5 s (`termination_grace_period_seconds` on the App);
/// - Fly.io: **SIGINT** by default (`kill_signal`), 5 s (`kill_timeout`), fly.io/docs/reference/configuration/
///   ("kill_signal ... default SIGINT", "kill_timeout ... default 5");
/// - AWS ECS: SIGTERM, 30 s (`stopTimeout`; the agent's `ECS_CONTAINER_STOP_TIMEOUT`
///   default), docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html;
/// - Heroku: SIGTERM to every process of the dyno, SIGKILL 30 s later,
///   devcenter.heroku.com/articles/dynos#shutdown;
/// - Modal: 30 s for the container's exit handlers ("given a grace period of 30 seconds
///   to finish", modal.com/docs/guide/lifecycle-functions); the page does not name the
///   signal, so SIGTERM, as for a container stop;
/// - Cloud Run: SIGTERM, 10 s, cloud.google.com/run/docs/container-contract#instance-shutdown;
/// - AWS Lambda: SIGTERM reaches the runtime only when an extension is registered, and the
///   whole shutdown phase has 2 s with one (500 ms with internal ones only),
///   docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html#runtimes-lifecycle-shutdown;
/// - Kubernetes: SIGTERM, 30 s (`terminationGracePeriodSeconds` default), with routing
///   continuing while endpoints are removed (see [`Platform::routing_lag_ms`]),
///   kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination;
/// - Replicate (cog): SIGTERM, 10 s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Platform {
    Fal,
    Fly,
    Ecs,
    Heroku,
    CloudRun,
    Kubernetes,
    Lambda,
    Modal,
    Replicate,
    /// A grace period set by hand.
    Custom,
}

impl Platform {
    pub const ALL: [Platform; 10] = [
        Platform::Fal,
        Platform::Fly,
        Platform::Ecs,
        Platform::Heroku,
        Platform::CloudRun,
        Platform::Kubernetes,
        Platform::Lambda,
        Platform::Modal,
        Platform::Replicate,
        Platform::Custom,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Platform::Fal => "fal",
            Platform::Fly => "fly",
            Platform::Ecs => "ecs",
            Platform::Heroku => "heroku",
            Platform::CloudRun => "cloud-run",
            Platform::Kubernetes => "kubernetes",
            Platform::Lambda => "lambda",
            Platform::Modal => "modal",
            Platform::Replicate => "replicate",
            Platform::Custom => "custom",
        }
    }

    /// The grace period, milliseconds; `None` for a custom one.
    pub fn grace_ms(self) -> Option<u64> {
        match self {
            Platform::Fal => Some(5_000),
            Platform::Fly => Some(5_000),
            Platform::Ecs => Some(30_000),
            Platform::Heroku => Some(30_000),
            Platform::CloudRun => Some(10_000),
            Platform::Kubernetes => Some(30_000),
            Platform::Lambda => Some(2_000),
            Platform::Modal => Some(30_000),
            Platform::Replicate => Some(10_000),
            Platform::Custom => None,
        }
    }

    /// The signal that starts the shutdown; `None` for a custom one (which keeps its own).
    pub fn stop_signal(self) -> Option<StopSignal> {
        match self {
            Platform::Fly => Some(StopSignal::Sigint),
            Platform::Custom => None,
            _ => Some(StopSignal::Sigterm),
        }
    }

    /// How long the platform keeps routing new requests to a runner after SIGTERM,
    /// milliseconds. Kubernetes removes a pod from its Service's endpoints at the same
    /// time as it signals the pod, and kube-proxy and ingress controllers learn of it
    /// later, so requests keep arriving for a while (the reason for the common
    /// `preStop: sleep` hook); the serverless platforms stop routing first.
    pub fn routing_lag_ms(self) -> u64 {
        match self {
            Platform::Kubernetes => 2_000,
            _ => 0,
        }
    }
}

/// The signal the platform sends to start the shutdown. Most send SIGTERM; Fly.io sends
/// SIGINT unless `kill_signal` says otherwise, which an app that handles only SIGTERM
/// meets as Python's `KeyboardInterrupt` or Node's default exit, without its handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StopSignal {
    Sigterm,
    Sigint,
}

impl StopSignal {
    pub const ALL: [StopSignal; 2] = [StopSignal::Sigterm, StopSignal::Sigint];

    /// The value's name in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Sigterm => "sigterm",
            StopSignal::Sigint => "sigint",
        }
    }

    /// The signal's name as `kill -l` prints it, for reports.
    pub fn signal_name(self) -> &'static str {
        match self {
            StopSignal::Sigterm => "SIGTERM",
            StopSignal::Sigint => "SIGINT",
        }
    }
}

/// What happens at SIGTERM to requests waiting for a serving slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Waiting {
    /// The platform's router holds the queue (fal, Cloud Run, Modal, ...): requests not
    /// yet started go back to it and on to another runner; this runner only finishes
    /// what it is serving.
    Return,
    /// The runner holds its own backlog (a plain server) and serves it before exiting.
    Serve,
}

impl Waiting {
    pub const ALL: [Waiting; 2] = [Waiting::Return, Waiting::Serve];

    /// The value's name in scenario files and the report.
    pub fn name(self) -> &'static str {
        match self {
            Waiting::Return => "return",
            Waiting::Serve => "serve",
        }
    }
}

/// What the app's `handle_exit()` does with requests still running at SIGTERM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HandleExit {
    /// Nothing: in-flight requests run to the end, eating the grace period.
    None,
    /// Tell in-flight requests to stop at their next step (the seed's advice).
    Cancel,
}

impl HandleExit {
    /// The value's name in scenario files and the report.
    pub fn name(self) -> &'static str {
        match self {
            HandleExit::None => "none",
            HandleExit::Cancel => "cancel",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShutdownSettings {
    /// When SIGTERM arrives, seconds after traffic starts; `None`: the run ends cleanly.
    pub at_s: Option<f64>,
    pub platform: Platform,
    /// The signal that starts the shutdown (the platform's; a real app under `probe` gets
    /// it, the in-process runner treats both alike). The reports call it SIGTERM.
    pub signal: StopSignal,
    /// SIGTERM to SIGKILL, milliseconds: the shared budget of handle_exit, the drain,
    /// teardown and its force_flush.
    pub grace_ms: u64,
    /// The seed's `force_flush(timeout_millis=4000)`; python ignores it, rust has no such
    /// argument and waits a fixed 5 s (Python: `BatchProcessor.force_flush` ignores
    /// `timeout_millis`, opentelemetry-sdk 1.41.0
    /// `opentelemetry/sdk/_shared_internal/__init__.py`, upstream issue 4568; Rust:
    /// `forceflush_timeout: Duration::from_secs(5)` in `BatchSpanProcessor::new`,
    /// opentelemetry_sdk 0.33.1 `src/trace/span_processor.rs`).
    pub flush_timeout_ms: u64,
    pub handle_exit: HandleExit,
    /// Requests waiting for a slot at SIGTERM: handed back to the platform, or served.
    pub waiting: Waiting,
    /// New requests keep arriving this long after SIGTERM, milliseconds.
    pub routing_lag_ms: u64,
}

impl ShutdownSettings {
    /// Chooses a platform: its grace period and routing lag come with it (a custom one
    /// keeps the values set by hand).
    pub fn set_platform(&mut self, platform: Platform) {
        self.platform = platform;
        if let Some(grace) = platform.grace_ms() {
            self.grace_ms = grace;
            self.routing_lag_ms = platform.routing_lag_ms();
        }
        if let Some(signal) = platform.stop_signal() {
            self.signal = signal;
        }
    }
}

/// Every knob of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// A short name for reports and the window title.
    pub name: String,
    pub tracing: TracingSettings,
    pub batch: BatchSettings,
    pub exporter: ExporterSettings,
    pub workload: WorkloadSettings,
    /// Faults injected into the embedded collector.
    pub collector: Faults,
    /// What the embedded collector keeps and serves (the `collector.max_*` knobs).
    #[serde(default)]
    pub collector_limits: Limits,
    /// Where the embedded collector passes accepted batches on (`collector.forward`); `None`
    /// keeps them. Not a fault: forwarding never changes what the app is answered.
    #[serde(default)]
    pub collector_forward: Option<String>,
    /// Sent with every forwarded batch (`collector.forward_headers`); values are secrets.
    #[serde(default)]
    pub collector_forward_headers: super::Headers,
    /// A PEM file of CA certificates trusted besides the system's, for an https forward.
    #[serde(default)]
    pub collector_forward_ca_file: Option<std::path::PathBuf>,
    pub shutdown: ShutdownSettings,
    /// The replicas serving the traffic and how a deploy replaces them (virtual time only).
    #[serde(default)]
    pub fleet: super::FleetSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            name: "defaults".into(),
            tracing: TracingSettings {
                enabled: true,
                sample_rate: 1.0,
                semantics: Semantics::Python,
                service_name: "text-to-image".into(),
            },
            batch: BatchSettings {
                max_queue_size: 2048,
                max_export_batch_size: 512,
                schedule_delay_ms: 5000,
                export_timeout_ms: 30_000,
            },
            exporter: ExporterSettings {
                endpoint: None,
                timeout_ms: 10_000,
                headers: super::Headers::default(),
                ca_file: None,
            },
            workload: WorkloadSettings {
                kind: WorkloadKind::Synthetic,
                duration_s: 5.0,
                rate_per_s: 20.0,
                concurrency: 4,
                max_waiting: 1000,
                inference_ms: 50.0,
                steps: 20,
                upload_ms: 5.0,
                extra_spans: 0,
                flush_every_request: false,
                burst_every_s: 0.0,
                burst_size: 0,
                seed: 1,
                device: DeviceChoice::Auto,
                step_events: true,
            },
            collector: Faults::default(),
            collector_limits: Limits::default(),
            collector_forward: None,
            collector_forward_headers: super::Headers::default(),
            collector_forward_ca_file: None,
            shutdown: ShutdownSettings {
                at_s: None,
                platform: Platform::Fal,
                signal: StopSignal::Sigterm,
                grace_ms: 5_000,
                flush_timeout_ms: 4_000,
                handle_exit: HandleExit::None,
                waiting: Waiting::Return,
                routing_lag_ms: Platform::Fal.routing_lag_ms(),
            },
            fleet: super::FleetSettings::default(),
        }
    }
}
