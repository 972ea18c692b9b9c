//! The virtual-time engine: one runner's traffic, sampler, batch processor, exporter,
//! backend faults and shutdown replayed as discrete events, so a scenario of an hour
//! takes well under a second. Spans are counted, never materialised.
//!
//! It follows the same rule book as the threaded pipeline (`telemetry::rules`, the
//! sampler's decision functions, `workload::arrival`), so the two cannot drift apart;
//! what only the real pipeline knows (bytes per span, the cost of one export) comes in as
//! [`Calibration`], measured from a real run, and for the model workload the model's own
//! step and upload times, measured by a real warm-up and serving run (see `model`).
//!
//! A fleet (`fleet.replicas` above 1, `fleet.rs`) is many of these runners in one loop,
//! each reading its arrivals from a router (`route.rs`) instead of its own schedule.

mod arrivals;
mod exporter;
mod fleet;
mod flush;
mod js;
mod lifecycle;
mod model;
mod processor;
mod route;
mod steady;
mod traffic;

pub use steady::{Steady, SteadyState};

use std::cell::RefCell;
use std::collections::BinaryHeap;
use std::rc::Rc;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::config::{Settings, WorkloadKind};
use crate::record::fleet::FleetReport;
use crate::record::report::RequestReport;
use crate::record::{ShutdownReport, SpanCounts};
use crate::workload::arrival::Schedule;
use arrivals::Arrivals;

pub use fleet::{replica_seed, run_fleet, run_share};

/// What a real run measured and the simulator charges per export.
pub use crate::record::report::Calibration;

/// Why a scenario cannot be simulated.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{key} = {value} cannot run in virtual time: {why}")]
    Unsupported {
        key: &'static str,
        value: String,
        why: &'static str,
    },
    /// The model workload, with a calibration that measured no model.
    #[error(
        "workload.kind = model cannot run in virtual time without the model's measured \
         times: this calibration has none (a calibration made for a scenario with the model \
         measures them)"
    )]
    NoModelTimes,
    /// The model's times were measured on another device than the one asked for.
    #[error(
        "workload.device = {asked}: the model's times in this calibration were measured \
         with workload.device = {measured}"
    )]
    ModelDevice {
        asked: &'static str,
        measured: &'static str,
    },
}

/// The outcome of one simulated run: the report's counts, and what the queue did.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SimOutcome {
    pub spans: SpanCounts,
    /// The report's own request section: counts, latency from arrival and service time.
    pub requests: RequestReport,
    pub shutdown: Option<ShutdownReport>,
    pub killed: bool,
    /// The most spans the processor's queue held at once.
    pub peak_queue: u64,
    pub http_attempts: u64,
    pub http_bytes: u64,
    /// Attempts answered 429 by an ingestion limit (the collector's, or the backend a
    /// fleet shares), each retried or given up by the SDK's rules.
    #[serde(default)]
    pub http_throttled: u64,
    /// Attempts after an export's first: its retries.
    #[serde(default)]
    pub http_retries: u64,
    /// Virtual milliseconds from the start of traffic to the end of the run.
    pub duration_ms: f64,
    /// A fleet's replicas and totals (`fleet.replicas` above 1); the counts above are
    /// then the fleet's totals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetReport>,
    /// A steady-state run's measured window ([`run_steady`]); `null` otherwise.
    #[serde(default)]
    pub steady: Option<SteadyState>,
}

/// Export costs for unit tests here and in the session's sweep, what-if and advisor:
/// round numbers, so what a test expects does not hang on a calibration run. Real runs
/// use measured costs.
#[cfg(test)]
pub(crate) const TEST_COSTS: Calibration = Calibration {
    exports_measured: 0,
    bytes_per_span: 100.0,
    per_batch_ms: 1.0,
    per_span_ms: 0.01,
    model: None,
};

/// Settings from `key=value` pairs, checked as the command line checks them, for unit
/// tests; a bad pair is the test's own typo, so it panics.
#[cfg(test)]
pub(crate) fn test_settings(pairs: &[(&str, &str)]) -> Settings {
    let mut s = Settings::default();
    for (k, v) in pairs {
        s.set(k, v, crate::config::Source::CommandLine).unwrap();
    }
    s.validate(crate::config::Source::CommandLine).unwrap();
    s
}

/// Simulates `settings` in virtual time: one runner, or a fleet of `fleet.replicas`.
pub fn run(settings: &Settings, costs: &Calibration) -> Result<SimOutcome, SimError> {
    run_window(settings, costs, None)
}

/// Simulates `settings` as [`Steady::settings`] plays them, reporting the counts' growth
/// over the window (`SimOutcome::steady`) and stopping at its end.
pub fn run_steady(
    settings: &Settings,
    costs: &Calibration,
    steady: Steady,
) -> Result<SimOutcome, SimError> {
    run_window(&steady.settings(settings), costs, Some(steady))
}

/// [`run`], or [`run_steady`] on settings already made steady when `steady` is given.
pub fn run_window(
    settings: &Settings,
    costs: &Calibration,
    steady: Option<Steady>,
) -> Result<SimOutcome, SimError> {
    if settings.fleet.replicas > 1 {
        if steady.is_some() {
            // A fleet is simulated through its deploy; its replicas' windows would each
            // open at their own start, which no single rate describes.
            return Err(SimError::Unsupported {
                key: "fleet.replicas",
                value: settings.fleet.replicas.to_string(),
                why: "a fleet's steady state is not simulated: set shutdown.at_s for its deploy",
            });
        }
        return run_fleet(settings, costs);
    }
    let part = Part::lone(Arrivals::Own(Schedule::new(&settings.workload)), settings);
    run_part(settings, costs, part, steady)
}

/// One runner, lone or taking its share of the arrivals, to its end (or to the end of
/// its steady-state window).
fn run_part(
    settings: &Settings,
    costs: &Calibration,
    part: Part,
    steady: Option<Steady>,
) -> Result<SimOutcome, SimError> {
    check(settings)?;
    check_model_times(settings, costs)?;
    let mut sim = Sim::new(settings, costs, part);
    sim.start();
    if let Some(steady) = steady {
        sim.steady_start(steady);
    }
    while sim.step() {}
    Ok(sim.outcome())
}

/// Refuses, naming the setting, what the simulator cannot follow; [`run`] calls it first,
/// and a sweep calls it for every cell before running any.
pub fn check(settings: &Settings) -> Result<(), SimError> {
    let unsupported = |key, value: &str, why| {
        Err(SimError::Unsupported {
            key,
            value: value.into(),
            why,
        })
    };
    if settings.exporter.endpoint.is_some() {
        return unsupported(
            "exporter.endpoint",
            "set",
            "only the embedded collector's faults are known",
        );
    }
    Ok(())
}

/// Refuses the model workload when `costs` has no model times for its device: a request's
/// inference takes the model's measured time on the device the run asks for, or none.
pub fn check_model_times(settings: &Settings, costs: &Calibration) -> Result<(), SimError> {
    if settings.workload.kind != WorkloadKind::Model {
        return Ok(());
    }
    let times = costs.model.as_ref().filter(|t| !t.step_ms.is_empty());
    let times = times.ok_or(SimError::NoModelTimes)?;
    if times.device_choice != settings.workload.device {
        return Err(SimError::ModelDevice {
            asked: settings.workload.device.name(),
            measured: times.device_choice.name(),
        });
    }
    Ok(())
}

/// The discrete events, ordered by time and then by when they were scheduled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    Arrivals,
    /// A serving slot's request reaches the end of its phase (valid if `at` matches).
    SlotStep {
        slot: usize,
    },
    /// The processor's worker wakes from its wait (valid if `epoch` matches).
    WorkerWake {
        epoch: u64,
    },
    /// An export in flight gets an answer or ends its retry wait (valid if `epoch` is
    /// still that export's).
    Exporter {
        export: u64,
        epoch: u64,
    },
    /// Js: the processor's export timeout for this export runs out.
    ExportWait {
        export: u64,
    },
    Sigterm,
    RoutingEnd,
    Sigkill,
    /// A wait of the runner's main thread runs out (flush or shutdown).
    MainTimeout {
        epoch: u64,
    },
    /// The request in `slot` stops waiting for its `flush`-th per-request flush.
    RequestFlushWait {
        slot: usize,
        flush: u64,
    },
    /// A run without a shutdown has waited its SDK's provider-shutdown timeout since the
    /// traffic ended, as `session::run` waits at most that long.
    RunDeadline,
    /// A steady-state run's measured window opens (after the warm-up) and closes.
    WindowOpens,
    WindowCloses,
}

/// An event in the queue, ordered by `key` alone: virtual nanoseconds in the high 64 bits,
/// the order of scheduling in the low 64, so events due at one instant run in the order
/// they were scheduled. One `u128` compare per heap step: the heap is most of the
/// simulator's time (42% of an hour's run before, as `(Duration, u64, Event)` tuples).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Scheduled {
    key: u128,
    event: Event,
}

impl Ord for Scheduled {
    /// Reversed: `BinaryHeap` pops the greatest, and the earliest must come first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.key.cmp(&self.key)
    }
}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The shared backend of a fleet: one ingestion quota for every replica's exports.
struct Backend {
    limit: u64,
    bucket: crate::config::IngestBucket,
}

/// What makes one runner a fleet's replica rather than a lone runner.
struct Part {
    arrivals: Arrivals,
    /// Seeds the backend's and the exporter's draws; a lone runner's is its workload seed
    /// (the trace ids always come from the workload seed).
    draw_seed: u64,
    /// When it starts (a replacement starts late).
    start: Duration,
    backend: Option<Rc<RefCell<Backend>>>,
}

impl Part {
    fn lone(arrivals: Arrivals, settings: &Settings) -> Part {
        Part {
            arrivals,
            draw_seed: settings.workload.seed,
            start: Duration::ZERO,
            backend: None,
        }
    }
}

/// The whole simulated runner. Its parts live in the sibling files, each an `impl Sim`.
struct Sim<'a> {
    settings: &'a Settings,
    costs: &'a Calibration,
    rng: StdRng,
    now: Duration,
    seq: u64,
    events: BinaryHeap<Scheduled>,
    finished: bool,
    spans: SpanCounts,
    traffic: traffic::Traffic,
    processor: processor::Processor,
    exporter: exporter::Exporter,
    life: lifecycle::Life,
    steady: Option<steady::Window>,
    backend: Option<Rc<RefCell<Backend>>>,
    out: SimOutcome,
}

impl<'a> Sim<'a> {
    fn new(settings: &'a Settings, costs: &'a Calibration, part: Part) -> Sim<'a> {
        let mut processor = processor::Processor::new(settings);
        processor.started_at(part.start);
        // A replica's model draws are its own, as its faults' are (a fleet of one draws
        // the lone runner's).
        let model = (settings.workload.kind == WorkloadKind::Model)
            .then_some(costs.model.as_ref())
            .flatten()
            .map(|times| model::ModelLine::new(times, part.draw_seed));
        Sim {
            settings,
            costs,
            // Not the arrival seed: the faults' draws must not shift the arrival times,
            // which must be the real workload's.
            rng: StdRng::seed_from_u64(part.draw_seed ^ 0x9e37_79b9_7f4a_7c15),
            now: part.start,
            seq: 0,
            events: BinaryHeap::new(),
            finished: false,
            spans: SpanCounts::default(),
            traffic: traffic::Traffic::new(settings, part.arrivals, model),
            processor,
            exporter: exporter::Exporter::new(part.draw_seed),
            life: lifecycle::Life::default(),
            steady: None,
            backend: part.backend,
            out: SimOutcome::default(),
        }
    }

    /// When the next event is due, in virtual nanoseconds, and its order of scheduling.
    fn next_key(&self) -> Option<u128> {
        self.events.peek().map(|next| next.key)
    }

    /// Handles the next event; false once the run is over.
    fn step(&mut self) -> bool {
        let Some(next) = self.events.pop() else {
            return false;
        };
        if self.finished {
            return false;
        }
        self.now = Duration::from_nanos((next.key >> 64) as u64);
        self.handle(next.event);
        true
    }

    fn at(&mut self, at: Duration, event: Event) {
        self.seq += 1;
        let nanos = u64::try_from(at.as_nanos()).unwrap_or(u64::MAX);
        self.events.push(Scheduled {
            key: u128::from(nanos) << 64 | u128::from(self.seq),
            event,
        });
    }

    fn start(&mut self) {
        self.processor_start();
        self.traffic_start();
        if let Some(at_s) = self.settings.shutdown.at_s {
            let at = Duration::try_from_secs_f64(at_s).unwrap_or(Duration::ZERO);
            self.at(at, Event::Sigterm);
        } else {
            let traffic = Duration::try_from_secs_f64(self.settings.workload.duration_s)
                .unwrap_or(Duration::ZERO);
            let wait = self.processor.rules().shutdown_wait();
            self.at(traffic + wait, Event::RunDeadline);
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Arrivals => self.arrivals(),
            Event::SlotStep { slot } => self.slot_step(slot),
            Event::WorkerWake { epoch } => self.worker_wake(epoch),
            Event::Exporter { export, epoch } => self.exporter_event(export, epoch),
            Event::ExportWait { export } => self.js_export_wait_over(export),
            Event::Sigterm => self.sigterm(),
            Event::RoutingEnd => self.routing_end(),
            Event::Sigkill => self.sigkill(),
            Event::MainTimeout { epoch } => self.main_timeout(epoch),
            Event::RequestFlushWait { slot, flush } => self.request_flush_wait_over(slot, flush),
            Event::RunDeadline => self.run_deadline(),
            Event::WindowOpens => self.window_opens(),
            Event::WindowCloses => self.window_closes(),
        }
    }

    /// `n` spans of one trace end now: counted as created, and handed to the processor
    /// when sampled (both SDKs' processors skip unsampled spans).
    fn end_spans(&mut self, n: u64, sampled: bool) {
        self.spans.created += n;
        if sampled {
            self.spans.sampled += n;
            for _ in 0..n {
                self.processor_on_end();
            }
        } else {
            self.spans.not_sampled += n;
        }
    }

    fn outcome(mut self) -> SimOutcome {
        self.out.spans = self.spans;
        self.out.spans.dropped_queue_full = self.spans.dropped_oldest + self.spans.dropped_newest;
        self.out.requests = self.traffic.report();
        self.out.duration_ms = self.now.as_secs_f64() * 1000.0;
        self.out
    }
}

#[cfg(test)]
mod tests;
