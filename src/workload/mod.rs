//! The traffic: an open-loop request generator and the runner that serves it.
//!
//! Arrivals are a Poisson process (plus optional bursts) that does not slow down when the
//! runner falls behind, as real users don't: requests wait in a bounded line for one of
//! `concurrency` serving slots, and arrivals that find the line full are rejected and
//! counted. Each request makes the seed's spans (see [`request`]).
//!
//! Shutdown hooks: [`Traffic::begin_drain`] is the platform's SIGTERM (no more requests
//! are routed here; later arrivals are counted as refused), [`Traffic::cancel_in_flight`]
//! is `handle_exit()` telling requests to stop at their next step, and a killed runner's
//! threads notice [`crate::telemetry::wire::RunnerLife`] and vanish without ending spans.

pub mod model;
pub mod request;

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::{WorkloadKind, WorkloadSettings};
use crate::record::Record;
use crate::telemetry::wire::RunnerLife;
use crate::telemetry::{Generation, Pipeline};
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
    /// SIGTERM: stop routing requests to this runner.
    pub draining: AtomicBool,
    /// `handle_exit()` with the cancel policy.
    pub cancel: AtomicBool,
    /// The runner is gone (exited or killed): no more arrivals, not even refused ones.
    pub gone: AtomicBool,
}

/// A running stream of traffic.
pub struct Traffic {
    control: Arc<TrafficControl>,
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
        // The waiting line; a zero-capacity channel means "only if a slot is free now".
        let (line, served) = sync_channel::<Instant>(settings.max_waiting);
        let served = Arc::new(Mutex::new(served));
        let workers = (0..settings.concurrency)
            .filter_map(|i| {
                let served = served.clone();
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
        let dispatcher = {
            let control = control.clone();
            let settings = settings.clone();
            std::thread::Builder::new()
                .name("gracetrace-arrivals".into())
                .spawn(move || arrivals(&settings, line, &control, &pipeline))
                .ok()
        };
        Traffic {
            control,
            dispatcher,
            workers,
        }
    }

    /// SIGTERM: the platform stops routing here. Requests already accepted (running or
    /// waiting) are still served; later arrivals are counted as refused.
    pub fn begin_drain(&self) {
        self.control.draining.store(true, Relaxed);
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

/// One serving slot: takes waiting requests until the line closes.
fn serve(
    line: &Mutex<Receiver<Instant>>,
    pipeline: &Pipeline,
    settings: &WorkloadSettings,
    control: &TrafficControl,
    server: &Server,
) {
    let record = pipeline.record();
    let counters = &record.counters;
    let life = pipeline.life();
    while let Some(arrived) = take_waiting(line, life) {
        counters.requests_waiting.fetch_sub(1, Relaxed);
        if control.cancel.load(Relaxed) {
            counters.requests_cancelled.fetch_add(1, Relaxed);
            continue; // handle_exit cancelled it before it started: no spans
        }
        counters.requests_in_flight.fetch_add(1, Relaxed);
        let generation = pipeline.tracer();
        let timing = Timing {
            arrived,
            started: Instant::now(),
            traced: generation.is_some(),
        };
        let outcome = server.run_request(generation.as_deref(), settings, record, control, life);
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
/// and the line is empty, or the runner was killed.
fn take_waiting(line: &Mutex<Receiver<Instant>>, life: &RunnerLife) -> Option<Instant> {
    let arrived = loop {
        let waiting = line.lock().unwrap_or_else(|e| e.into_inner());
        // Wake now and then: a dead runner's threads must stop taking work.
        match waiting.recv_timeout(Duration::from_millis(50)) {
            Ok(arrived) => break arrived,
            Err(RecvTimeoutError::Timeout) if !life.is_killed() => continue,
            Err(_) => return None, // arrivals ended and the line is empty, or SIGKILL
        }
    };
    if life.is_killed() {
        return None; // counted as cut off by the kill, from the gauges
    }
    Some(arrived)
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
        settings: &WorkloadSettings,
        record: &Record,
        control: &TrafficControl,
        life: &RunnerLife,
    ) -> request::Outcome {
        match self {
            Server::Synthetic => request::serve_synthetic(
                generation,
                settings,
                &record.counters,
                &control.cancel,
                life,
            ),
            Server::Model(service, requests) => {
                let index = requests.fetch_add(1, Relaxed);
                request::serve_model(
                    generation,
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

/// The open-loop arrival process: exponential gaps at `rate_per_s`, plus a burst of
/// `burst_size` every `burst_every_s`. Arrivals due at once are sent together, so rates
/// beyond what `sleep` can pace are still honoured on average.
fn arrivals(
    settings: &WorkloadSettings,
    line: SyncSender<Instant>,
    control: &TrafficControl,
    pipeline: &Pipeline,
) {
    let counters = &pipeline.record().counters;
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(settings.duration_s);
    let gap = |rng: &mut StdRng| {
        if settings.rate_per_s <= 0.0 {
            Duration::MAX
        } else {
            // Inverse transform of Exp(rate); 1 - u is in (0, 1], so ln is finite.
            let u: f64 = rng.random();
            Duration::from_secs_f64(-(1.0 - u).ln() / settings.rate_per_s)
        }
    };
    let mut next_arrival = start.checked_add(gap(&mut rng)).unwrap_or(end);
    let burst_every = (settings.burst_every_s > 0.0 && settings.burst_size > 0)
        .then(|| Duration::from_secs_f64(settings.burst_every_s));
    let mut next_burst = burst_every.map(|every| start + every);
    // Closed (dropped) at SIGTERM, so the serving slots finish once the line is empty.
    let mut line = Some(line);
    let offer = |arrived: Instant, line: &Option<SyncSender<Instant>>| {
        counters.requests_sent.fetch_add(1, Relaxed);
        let Some(line) = line else {
            counters.requests_refused.fetch_add(1, Relaxed);
            return;
        };
        // Counted as waiting before it can be taken, so the gauge never dips below 0.
        counters.requests_waiting.fetch_add(1, Relaxed);
        match line.try_send(arrived) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                counters.requests_waiting.fetch_sub(1, Relaxed);
                counters.requests_rejected.fetch_add(1, Relaxed);
            }
        }
    };
    loop {
        if pipeline.life().is_killed() || control.gone.load(Relaxed) {
            return;
        }
        if control.draining.load(Relaxed) {
            line = None;
        }
        let now = Instant::now();
        if now >= end {
            return;
        }
        while next_arrival <= now {
            offer(next_arrival, &line);
            next_arrival = next_arrival.checked_add(gap(&mut rng)).unwrap_or(end);
        }
        if let (Some(burst_at), Some(every)) = (next_burst, burst_every)
            && burst_at <= now
        {
            for _ in 0..settings.burst_size {
                offer(burst_at, &line);
            }
            next_burst = Some(burst_at + every);
        }
        let wake = [Some(next_arrival), next_burst, Some(end)]
            .into_iter()
            .flatten()
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
