//! The traffic: an open-loop request generator and the runner that serves it.
//!
//! Arrivals are a Poisson process (plus optional bursts) that does not slow down when the
//! runner falls behind, as real users don't: requests wait in a bounded line for one of
//! `concurrency` serving slots, and arrivals that find the line full are rejected and
//! counted. Each request makes the seed's spans (see [`request`]).

pub mod request;

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::WorkloadSettings;
use crate::telemetry::Pipeline;

/// A running stream of traffic.
pub struct Traffic {
    stop: Arc<AtomicBool>,
    dispatcher: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
}

impl Traffic {
    /// Starts arrivals now; they stop by themselves after `duration_s`.
    pub fn start(settings: &WorkloadSettings, pipeline: Arc<Pipeline>) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        // The waiting line; a zero-capacity channel means "only if a slot is free now".
        let (line, served) = sync_channel::<Instant>(settings.max_waiting);
        let served = Arc::new(Mutex::new(served));
        let workers = (0..settings.concurrency)
            .filter_map(|i| {
                let served = served.clone();
                let pipeline = pipeline.clone();
                let settings = settings.clone();
                std::thread::Builder::new()
                    .name(format!("gracetrace-runner-{i}"))
                    .spawn(move || serve(&served, &pipeline, &settings))
                    .ok()
            })
            .collect();
        let dispatcher = {
            let stop = stop.clone();
            let settings = settings.clone();
            std::thread::Builder::new()
                .name("gracetrace-arrivals".into())
                .spawn(move || arrivals(&settings, &line, &stop, &pipeline))
                .ok()
        };
        Traffic {
            stop,
            dispatcher,
            workers,
        }
    }

    /// Ends arrivals early (the platform stopped routing to this runner).
    pub fn stop_arrivals(&self) {
        self.stop.store(true, Relaxed);
    }

    /// Waits for arrivals to end and every accepted request to finish.
    pub fn wait(mut self) {
        if let Some(dispatcher) = self.dispatcher.take() {
            let _ = dispatcher.join();
        }
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// One serving slot: takes waiting requests until the line closes.
fn serve(line: &Mutex<Receiver<Instant>>, pipeline: &Pipeline, settings: &WorkloadSettings) {
    let record = pipeline.record();
    loop {
        let arrived = {
            let line = line.lock().unwrap_or_else(|e| e.into_inner());
            match line.recv() {
                Ok(arrived) => arrived,
                Err(_) => return, // arrivals ended and the line is empty
            }
        };
        let generation = pipeline.tracer();
        request::serve_synthetic(generation.as_deref(), settings, &record.counters);
        drop(generation); // lets a retired generation shut down
        let latency_ms = arrived.elapsed().as_secs_f64() * 1000.0;
        record
            .latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(latency_ms);
        record.counters.requests_completed.fetch_add(1, Relaxed);
    }
}

/// The open-loop arrival process: exponential gaps at `rate_per_s`, plus a burst of
/// `burst_size` every `burst_every_s`. Arrivals due at once are sent together, so rates
/// beyond what `sleep` can pace are still honoured on average.
fn arrivals(
    settings: &WorkloadSettings,
    line: &SyncSender<Instant>,
    stop: &AtomicBool,
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
    let offer = |arrived: Instant| {
        counters.requests_sent.fetch_add(1, Relaxed);
        match line.try_send(arrived) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                counters.requests_rejected.fetch_add(1, Relaxed);
            }
        }
    };
    loop {
        if stop.load(Relaxed) {
            return;
        }
        let now = Instant::now();
        if now >= end {
            return;
        }
        while next_arrival <= now {
            offer(next_arrival);
            next_arrival = next_arrival.checked_add(gap(&mut rng)).unwrap_or(end);
        }
        if let (Some(burst_at), Some(every)) = (next_burst, burst_every)
            && burst_at <= now
        {
            for _ in 0..settings.burst_size {
                offer(burst_at);
            }
            next_burst = Some(burst_at + every);
        }
        let wake = [Some(next_arrival), next_burst, Some(end)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(end);
        // Short naps so `stop` is honoured promptly.
        let nap = wake
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(20));
        if !nap.is_zero() {
            std::thread::sleep(nap);
        }
    }
}
