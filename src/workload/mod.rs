//! The traffic: an open-loop request generator and the runner that serves it.
//!
//! Arrivals are a Poisson process (plus optional bursts) that does not slow down when the
//! runner falls behind, as real users don't: requests wait in a bounded line for one of
//! `concurrency` serving slots, and arrivals that find the line full are rejected and
//! counted. Each request makes the seed's spans (see [`request`]).
//!
//! Shutdown hooks: [`Traffic::begin_drain`] is the platform's SIGTERM (requests waiting
//! for a slot go back to the platform or stay to be served, per `shutdown.waiting`; new
//! requests stop being routed here after `shutdown.routing_lag_ms`, later arrivals are
//! counted as refused), [`Traffic::cancel_in_flight`] is `handle_exit()` telling requests
//! to stop at their next step, and a killed runner's threads notice
//! [`crate::telemetry::wire::RunnerLife`] and vanish without ending spans.

pub mod arrival;
pub mod line;
#[cfg(feature = "model")]
pub mod model;
// Without the `model` feature: the same names, and an error that names the feature.
#[cfg(not(feature = "model"))]
#[path = "absent_model.rs"]
pub mod model;
pub mod request;

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::{ShutdownSettings, Waiting, WorkloadKind, WorkloadSettings};
use crate::record::{Record, ShutdownPhase};
use crate::telemetry::wire::RunnerLife;
use crate::telemetry::{Generation, Pipeline};
use line::{Refusal, WaitingLine};
use model::service::ModelService;

/// What serves the requests of a traffic stream.
#[derive(Clone)]
enum Server {
    Synthetic,
    /// The shared model, and a count of model requests to pick prompts and seeds from.
    Model(Arc<ModelService>, Arc<std::sync::atomic::AtomicU64>),
    /// The `model` kind whose weights could not be loaded: every request fails (counted),
    /// and the record's markers say why.
    Unavailable,
}

/// The model service for these settings (started on first use: weights loaded now, warm-up
/// in the background). `gracetrace run` calls it before any traffic starts, so that missing
/// weights stop the run with an error naming the file.
pub fn model_service(settings: &WorkloadSettings) -> Result<Arc<ModelService>, model::ModelError> {
    model::service::shared(&model::ModelConfig {
        weights: model::default_weights_path(),
        device: settings.device,
        seed: settings.seed,
    })
}

/// What the lifecycle can tell the traffic while it runs.
#[derive(Debug, Default)]
pub struct TrafficControl {
    /// SIGTERM came; from then on a request joins only if a slot is free for it now
    /// (`shutdown.waiting = "return"`: the platform's router keeps the others).
    pub only_to_a_free_slot: AtomicBool,
    /// When the platform stops routing requests to this runner (SIGTERM plus the
    /// routing lag); set once, at SIGTERM.
    pub routing_ends: OnceLock<Instant>,
    /// Routing has ended and the line is closed (see [`end_routing`]).
    routing_ended: AtomicBool,
    /// `handle_exit()` with the cancel policy.
    pub cancel: AtomicBool,
    /// The runner is gone (exited or killed): no more arrivals, not even refused ones.
    pub gone: AtomicBool,
}

/// A running stream of traffic.
pub struct Traffic {
    control: Arc<TrafficControl>,
    line: Arc<WaitingLine<Arrival>>,
    record: Arc<Record>,
    dispatcher: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
}

impl Traffic {
    /// Starts arrivals now; they stop by themselves after `duration_s`.
    pub fn start(settings: &WorkloadSettings, pipeline: Arc<Pipeline>) -> Traffic {
        let control = Arc::new(TrafficControl::default());
        let server = match settings.kind {
            WorkloadKind::Synthetic => Server::Synthetic,
            WorkloadKind::Model => match model_service(settings) {
                Ok(service) => {
                    pipeline.record().attach_model(service.status());
                    Server::Model(service, Arc::default())
                }
                Err(error) => {
                    pipeline
                        .record()
                        .mark(format!("the model cannot serve: {error}"));
                    Server::Unavailable
                }
            },
        };
        // The waiting line; capacity 0 means "only if a slot is free now".
        let line = Arc::new(WaitingLine::new(settings.max_waiting));
        let workers = (0..settings.concurrency)
            .filter_map(|i| {
                let served = line.clone();
                let pipeline = pipeline.clone();
                let settings = settings.clone();
                let control = control.clone();
                let server = server.clone();
                std::thread::Builder::new()
                    .name(format!("gracetrace-runner-{i}"))
                    .spawn(move || serve(&served, &pipeline, &settings, &control, &server))
                    .ok()
            })
            .collect();
        let record = pipeline.record().clone();
        let dispatcher = {
            let control = control.clone();
            let settings = settings.clone();
            let line = line.clone();
            std::thread::Builder::new()
                .name("gracetrace-arrivals".into())
                .spawn(move || {
                    arrivals(&settings, &line, &control, &pipeline);
                    // Arrivals ended (or the runner is gone): the slots finish the line.
                    line.close();
                })
                .ok()
        };
        Traffic {
            control,
            line,
            record,
            dispatcher,
            workers,
        }
    }

    /// SIGTERM at `sigterm`. With `Waiting::Return` the requests waiting for a slot go
    /// back to the platform now (counted as returned, they make no spans), and until
    /// routing ends a new request joins only if a slot is free for it. With
    /// `Waiting::Serve` they stay and are served. New requests keep arriving for
    /// `routing_lag`; after that they are counted as refused. Returns how many requests
    /// went back.
    pub fn begin_drain(&self, sigterm: Instant, settings: &ShutdownSettings) -> u64 {
        let routing_ends = sigterm + Duration::from_millis(settings.routing_lag_ms);
        let _ = self.control.routing_ends.set(routing_ends);
        if routing_ends <= sigterm {
            // Nothing more will join: closing now lets idle slots stop at once instead of
            // at the arrival thread's next look at the clock.
            end_routing(&self.line, &self.control, &self.record, routing_ends);
        }
        if settings.waiting == Waiting::Serve {
            return 0;
        }
        self.control.only_to_a_free_slot.store(true, Relaxed);
        let returned = self.line.hand_back() as u64;
        let counters = &self.record.counters;
        counters
            .requests_waiting
            .fetch_sub(returned as i64, Relaxed);
        counters.requests_returned.fetch_add(returned, Relaxed);
        returned
    }

    /// `handle_exit()` with the cancel policy: running requests stop at their next step
    /// and waiting ones are not started.
    pub fn cancel_in_flight(&self) {
        self.control.cancel.store(true, Relaxed);
    }

    /// Takes the arrival thread out, so the shutdown can stop it when the runner is gone
    /// while the serving slots are handed to the runner's main thread.
    pub fn detach_arrivals(&mut self) -> Arrivals {
        Arrivals {
            control: self.control.clone(),
            dispatcher: self.dispatcher.take(),
        }
    }

    /// Waits until every accepted request has finished (arrivals may go on being
    /// refused in the background until the scenario's duration ends).
    pub fn wait_drained(&mut self) {
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }

    /// Waits for arrivals to end by themselves (the scenario's `duration_s`); requests
    /// accepted may still be running.
    pub fn wait_arrivals(&mut self) {
        if let Some(dispatcher) = self.dispatcher.take() {
            let _ = dispatcher.join();
        }
    }

    /// Waits for arrivals to end and every accepted request to finish.
    pub fn wait(mut self) {
        if let Some(dispatcher) = self.dispatcher.take() {
            let _ = dispatcher.join();
        }
        self.wait_drained();
    }
}

/// The arrival process of a runner that is shutting down.
pub struct Arrivals {
    control: Arc<TrafficControl>,
    dispatcher: Option<JoinHandle<()>>,
}

impl Arrivals {
    /// The runner is gone: arrivals stop (they were being refused since SIGTERM).
    pub fn stop(mut self) {
        self.control.gone.store(true, Relaxed);
        if let Some(dispatcher) = self.dispatcher.take() {
            let _ = dispatcher.join();
        }
    }
}

/// A request in the waiting line: when it arrived, and its arrival index, from which its
/// trace id is derived ([`arrival::trace_id`]) as the virtual-time engine derives it.
struct Arrival {
    at: Instant,
    index: u64,
}

/// One serving slot: takes waiting requests until the line closes.
fn serve(
    line: &WaitingLine<Arrival>,
    pipeline: &Pipeline,
    settings: &WorkloadSettings,
    control: &TrafficControl,
    server: &Server,
) {
    let record = pipeline.record();
    let counters = &record.counters;
    let life = pipeline.life();
    while let Some(arrival) = take_waiting(line, life) {
        counters.requests_waiting.fetch_sub(1, Relaxed);
        if control.cancel.load(Relaxed) {
            counters.requests_cancelled.fetch_add(1, Relaxed);
            continue; // handle_exit cancelled it before it started: no spans
        }
        counters.requests_in_flight.fetch_add(1, Relaxed);
        let generation = pipeline.tracer();
        let timing = Timing {
            arrived: arrival.at,
            started: Instant::now(),
            traced: generation.is_some(),
        };
        let trace_id = arrival::trace_id(settings.seed, arrival.index);
        let outcome = server.run_request(
            generation.as_deref(),
            trace_id,
            settings,
            record,
            control,
            life,
        );
        drop(generation); // lets a retired generation shut down
        if outcome == request::Outcome::Killed {
            // The process is dead: nothing more happens on this thread, no count moves.
            return;
        }
        count_outcome(record, outcome, &timing);
        counters.requests_in_flight.fetch_sub(1, Relaxed);
    }
}

/// The next waiting request's arrival time; `None` once the slot must stop: arrivals ended
/// and the line is empty, or the runner was killed (what was waiting is then counted as
/// cut off by the kill, from the gauges).
fn take_waiting(line: &WaitingLine<Arrival>, life: &RunnerLife) -> Option<Arrival> {
    // Wake now and then: a dead runner's threads must stop taking work.
    let arrived = line.take(Duration::from_millis(50), || life.is_killed())?;
    (!life.is_killed()).then_some(arrived)
}

/// When a request arrived and started being served, and whether it was traced: what its
/// latency and service time are recorded under.
struct Timing {
    arrived: Instant,
    started: Instant,
    traced: bool,
}

impl Server {
    /// Serves one request with this server, under `generation` (None when tracing is off).
    fn run_request(
        &self,
        generation: Option<&Generation>,
        trace_id: u128,
        settings: &WorkloadSettings,
        record: &Record,
        control: &TrafficControl,
        life: &RunnerLife,
    ) -> request::Outcome {
        match self {
            Server::Synthetic => request::serve_synthetic(
                generation,
                trace_id,
                settings,
                &record.counters,
                &control.cancel,
                life,
            ),
            Server::Model(service, requests) => {
                let index = requests.fetch_add(1, Relaxed);
                request::serve_model(
                    generation,
                    trace_id,
                    settings,
                    record,
                    service,
                    index,
                    &control.cancel,
                    life,
                )
            }
            Server::Unavailable => request::Outcome::Failed(opentelemetry::trace::TraceId::INVALID),
        }
    }
}

/// Counts how a request that was not killed ended; a completed one also adds its latency
/// (from arrival) and service time (from start) to the record's distributions.
fn count_outcome(record: &Record, outcome: request::Outcome, timing: &Timing) {
    let counters = &record.counters;
    match outcome {
        // The process is dead: no count moves (and the slot stops, see `serve`).
        request::Outcome::Killed => {}
        request::Outcome::Cancelled(_) => {
            counters.requests_cancelled.fetch_add(1, Relaxed);
        }
        request::Outcome::Failed(_) => {
            counters.requests_failed.fetch_add(1, Relaxed);
        }
        request::Outcome::Completed(_) => {
            let latency_ms = timing.arrived.elapsed().as_secs_f64() * 1000.0;
            record
                .latency
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .add(latency_ms);
            let service_ms = timing.started.elapsed().as_secs_f64() * 1000.0;
            record
                .service
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .add(timing.traced, service_ms);
            counters.requests_completed.fetch_add(1, Relaxed);
        }
    }
}

/// The open-loop arrival process of [`arrival::Schedule`], paced by the real clock.
/// Arrivals due at once are sent together, so rates beyond what `sleep` can pace are
/// still honoured on average.
fn arrivals(
    settings: &WorkloadSettings,
    line: &WaitingLine<Arrival>,
    control: &TrafficControl,
    pipeline: &Pipeline,
) {
    let record = pipeline.record();
    let mut schedule = arrival::Schedule::new(settings);
    let start = Instant::now();
    let end = start + schedule.end();
    loop {
        if pipeline.life().is_killed() || control.gone.load(Relaxed) {
            return;
        }
        let now = Instant::now();
        if now >= end {
            return;
        }
        let routing_ends = control.routing_ends.get().copied();
        if let Some(at) = routing_ends.filter(|at| *at <= now) {
            end_routing(line, control, record, at);
        }
        let offer = |arrived: Arrival| {
            let routed = routing_ends.is_none_or(|end| arrived.at < end);
            offer(line, arrived, routed, control, record)
        };
        while let Some(due) = schedule.peek().filter(|due| start + due.at <= now) {
            for index in due.first..due.first + due.count as u64 {
                offer(Arrival {
                    at: start + due.at,
                    index,
                });
            }
            schedule.advance();
        }
        let next_due = schedule.peek().map(|due| start + due.at);
        let wake = [next_due, Some(end), routing_ends]
            .into_iter()
            .flatten()
            .filter(|at| *at > now)
            .min()
            .unwrap_or(end);
        // Short naps so SIGTERM and SIGKILL are noticed promptly.
        let nap = wake
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(20));
        if !nap.is_zero() {
            std::thread::sleep(nap);
        }
    }
}

/// The platform stops routing here at `at`: the line closes (the slots finish what is
/// waiting) and the timeline gets its marker, once.
fn end_routing(
    line: &WaitingLine<Arrival>,
    control: &TrafficControl,
    record: &Record,
    at: Instant,
) {
    if !control.routing_ended.swap(true, Relaxed) {
        line.close();
        record.mark_phase(ShutdownPhase::RoutingEnd, at);
    }
}

/// One arrival: refused once routing has ended, handed back to the platform when it
/// would have to wait after SIGTERM under `shutdown.waiting = "return"`, rejected when
/// the line is full, and otherwise waiting for a slot.
fn offer(
    line: &WaitingLine<Arrival>,
    arrived: Arrival,
    routed_here: bool,
    control: &TrafficControl,
    record: &Record,
) {
    let counters = &record.counters;
    counters.requests_sent.fetch_add(1, Relaxed);
    if !routed_here {
        counters.requests_refused.fetch_add(1, Relaxed);
        return;
    }
    let only_to_a_free_slot = control.only_to_a_free_slot.load(Relaxed);
    // Counted as waiting before it can be taken, so the gauge never dips below 0.
    counters.requests_waiting.fetch_add(1, Relaxed);
    let Err(refusal) = line.offer(arrived, only_to_a_free_slot) else {
        return;
    };
    counters.requests_waiting.fetch_sub(1, Relaxed);
    let bucket = match refusal {
        Refusal::Full if only_to_a_free_slot => &counters.requests_returned,
        Refusal::Full => &counters.requests_rejected,
        Refusal::Closed => &counters.requests_refused,
    };
    bucket.fetch_add(1, Relaxed);
}
