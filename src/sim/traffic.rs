//! The runner's traffic in virtual time: the seeded arrivals, the waiting line (with
//! `shutdown.waiting` and the routing lag), the serving slots, each request's steps and
//! spans, and `handle_exit` cancellation at the next step (as `workload/request.rs`).
//! With the model workload, inference waits for the one model ([`ModelLine`]) and goes
//! step by step at the measured steps' times.

use std::collections::VecDeque;
use std::time::Duration;

use super::arrivals::Arrivals;
use super::model::ModelLine;
use super::{Event, Sim};
use crate::config::Settings;
use crate::record::report::RequestReport;
use crate::record::{LatencyHistogram, ServiceTimes};
use crate::telemetry::sampler::RatioFormula;
use crate::workload::arrival;

/// Where a request being served is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Inference,
    Upload,
    /// Its spans have ended; it waits in `force_flush` (`workload.flush_every_request`),
    /// the run's `flush`-th.
    Flushing {
        flush: u64,
    },
}

#[derive(Clone, Copy, Debug)]
struct Serving {
    /// When the request arrived (its latency counts from here) and took its slot.
    arrived: Duration,
    started: Duration,
    phase: Stage,
    /// When the current phase ends; a `SlotStep` for another time is stale (a flush
    /// ends with the processor's answer: `Duration::MAX`).
    ends: Duration,
    sampled: bool,
    cancelled: bool,
    /// The model workload: denoising steps done so far.
    steps_done: usize,
}

pub(super) struct Traffic {
    arrivals: Arrivals,
    /// The batch of arrivals being offered (kept to reuse its memory).
    batch: Vec<u64>,
    slots: Vec<Option<Serving>>,
    /// The arrival indices and times of the requests waiting for a slot, oldest first:
    /// each one's trace id comes from its index, as in the real workload.
    pub(super) waiting: VecDeque<(u64, Duration)>,
    /// No more requests join (routing ended, or arrivals ended).
    pub(super) closed: bool,
    pub(super) only_to_a_free_slot: bool,
    pub(super) routing_ends: Option<Duration>,
    pub(super) cancel: bool,
    /// Exited or killed: no more arrivals, not even refused ones.
    pub(super) gone: bool,
    pub(super) requests: RequestReport,
    /// Completed requests' latency from arrival, and service time from their slot, as
    /// `workload::count_outcome` records them in real time.
    latency: LatencyHistogram,
    service: ServiceTimes,
    /// Per-request flushes begun so far.
    flushes: u64,
    /// The model workload's model; `None` for the synthetic workload.
    pub(super) model: Option<ModelLine>,
}

impl Traffic {
    pub(super) fn new(
        settings: &Settings,
        arrivals: Arrivals,
        model: Option<ModelLine>,
    ) -> Traffic {
        Traffic {
            arrivals,
            batch: Vec::new(),
            slots: vec![None; settings.workload.concurrency],
            waiting: VecDeque::new(),
            closed: false,
            only_to_a_free_slot: false,
            routing_ends: None,
            cancel: false,
            gone: false,
            requests: RequestReport::default(),
            latency: LatencyHistogram::default(),
            service: ServiceTimes::default(),
            flushes: 0,
            model,
        }
    }

    /// The report's request section: the counts, and the distributions summarised.
    pub(super) fn report(&self) -> RequestReport {
        RequestReport {
            latency_ms: self.latency.summary(),
            service_ms: self.service.summary(),
            ..self.requests
        }
    }

    /// Completed requests' latencies and service times, for a fleet's totals.
    pub(super) fn histograms(&self) -> (&LatencyHistogram, &ServiceTimes) {
        (&self.latency, &self.service)
    }

    pub(super) fn in_flight(&self) -> u64 {
        self.slots.iter().filter(|s| s.is_some()).count() as u64
    }

    fn idle_slot(&self) -> Option<usize> {
        self.slots.iter().position(Option::is_none)
    }
}

impl Sim<'_> {
    pub(super) fn traffic_start(&mut self) {
        match self.traffic.arrivals.next_at() {
            Some(at) => self.at(at, Event::Arrivals),
            None => self.at(self.traffic.arrivals.end(), Event::Arrivals),
        }
    }

    /// Offers the arrivals due now; at the end of traffic, closes the line.
    pub(super) fn arrivals(&mut self) {
        if self.traffic.gone {
            return;
        }
        if self.now >= self.traffic.arrivals.end() {
            self.close_line();
            return;
        }
        let mut batch = std::mem::take(&mut self.traffic.batch);
        batch.clear();
        self.traffic.arrivals.take(self.now, &mut batch);
        for &index in &batch {
            self.offer(index);
        }
        self.traffic.batch = batch;
        self.traffic_start();
    }

    /// `workload::offer`: refused after routing ends, handed back when it would have to
    /// wait under `waiting = "return"`, rejected when the line is full.
    fn offer(&mut self, index: u64) {
        let t = &mut self.traffic;
        t.requests.sent += 1;
        if t.routing_ends.is_some_and(|end| self.now >= end) || t.closed {
            t.requests.refused += 1;
            return;
        }
        if let Some(slot) = t.idle_slot() {
            self.begin(slot, index, self.now);
            return;
        }
        let capacity = if t.only_to_a_free_slot {
            0
        } else {
            self.settings.workload.max_waiting as u64
        };
        if t.waiting.len() as u64 >= capacity {
            if t.only_to_a_free_slot {
                t.requests.returned += 1;
            } else {
                t.requests.rejected += 1;
            }
            return;
        }
        t.waiting.push_back((index, self.now));
    }

    /// A slot takes the request that arrived `index`-th: cancelled at once after
    /// `handle_exit = cancel`, else its root and `inference` spans start.
    fn begin(&mut self, slot: usize, index: u64, arrived: Duration) {
        if self.traffic.cancel {
            self.traffic.requests.cancelled += 1;
            return;
        }
        let w = &self.settings.workload;
        let inference = Duration::from_secs_f64(w.inference_ms.max(0.0) / 1000.0);
        let sampled = self.settings.tracing.enabled && self.decide_sampled(index);
        let serving = Serving {
            arrived,
            started: self.now,
            phase: Stage::Inference,
            ends: self.now + inference,
            sampled,
            cancelled: false,
            steps_done: 0,
        };
        self.traffic.slots[slot] = Some(serving);
        match &mut self.traffic.model {
            Some(model) => {
                if model.take(slot) {
                    self.model_step(slot);
                } else {
                    self.hold(slot);
                }
            }
            None => self.at(serving.ends, Event::SlotStep { slot }),
        }
    }

    /// The request in `slot` waits for the model: no step is due until it has it.
    fn hold(&mut self, slot: usize) {
        if let Some(serving) = &mut self.traffic.slots[slot] {
            serving.ends = Duration::MAX;
        }
    }

    /// The request in `slot` has the model and runs its next step, for a drawn time.
    fn model_step(&mut self, slot: usize) {
        let Some(model) = &mut self.traffic.model else {
            return;
        };
        let step = model.step();
        if let Some(serving) = &mut self.traffic.slots[slot] {
            serving.ends = self.now + step;
            let ends = serving.ends;
            self.at(ends, Event::SlotStep { slot });
        }
    }

    /// A model request's step has ended: before the next one it stops if `handle_exit`
    /// cancelled it (`on_step` returns false); after the last, inference ends, the model
    /// goes to the next request and the upload (the PNG encoding) takes a drawn time.
    fn model_step_over(&mut self, slot: usize, mut serving: Serving) {
        serving.steps_done += 1;
        let steps = self.settings.workload.steps.max(1);
        let traced = self.settings.tracing.enabled;
        if serving.steps_done < steps && !self.traffic.cancel {
            self.traffic.slots[slot] = Some(serving);
            return self.model_step(slot);
        }
        self.model_released(slot);
        if serving.steps_done < steps {
            // The inference span ends with an error, then the root: two spans.
            if traced {
                self.end_spans(2, serving.sampled);
            }
            serving.cancelled = true;
            return self.request_returns(slot, serving);
        }
        if traced {
            self.end_spans(1, serving.sampled);
        }
        let upload = self
            .traffic
            .model
            .as_mut()
            .map_or(Duration::ZERO, ModelLine::upload);
        serving.phase = Stage::Upload;
        serving.ends = self.now + upload;
        self.traffic.slots[slot] = Some(serving);
        self.at(serving.ends, Event::SlotStep { slot });
    }

    /// The request in `slot` lets the model go; the next waiting request starts its steps.
    fn model_released(&mut self, slot: usize) {
        let next = self.traffic.model.as_mut().and_then(|m| m.release(slot));
        if let Some(next) = next {
            self.model_step(next);
        }
    }

    /// `ParentBased(TraceIdRatioBased)`: the root's decision, by the same function the
    /// live sampler calls, on the trace id the real workload gives the same arrival.
    fn decide_sampled(&self, index: u64) -> bool {
        let trace_id = arrival::trace_id(self.settings.workload.seed, index);
        let rate = self.settings.tracing.sample_rate;
        RatioFormula::of(self.settings.tracing.semantics).decide(rate, trace_id)
    }

    pub(super) fn slot_step(&mut self, slot: usize) {
        let Some(mut serving) = self.traffic.slots[slot].filter(|s| s.ends == self.now) else {
            return; // rescheduled by a cancel, or cut off by SIGKILL
        };
        if self.traffic.model.is_some() && serving.phase == Stage::Inference {
            return self.model_step_over(slot, serving);
        }
        let traced = self.settings.tracing.enabled;
        let w = &self.settings.workload;
        // The model's request tree has no `extra` spans (`request::model_request`).
        let extra = if self.traffic.model.is_some() {
            0
        } else {
            w.extra_spans as u64
        };
        match serving.phase {
            Stage::Inference if serving.cancelled => {
                // The inference span ends with an error, then the root: two spans.
                if traced {
                    self.end_spans(2, serving.sampled);
                }
                self.request_returns(slot, serving);
            }
            Stage::Inference => {
                if traced {
                    self.end_spans(1, serving.sampled);
                }
                serving.phase = Stage::Upload;
                serving.ends = self.now + Duration::from_secs_f64(w.upload_ms.max(0.0) / 1000.0);
                self.traffic.slots[slot] = Some(serving);
                self.at(serving.ends, Event::SlotStep { slot });
            }
            Stage::Upload => {
                // upload, the extra spans, then the root.
                if traced {
                    self.end_spans(2 + extra, serving.sampled);
                }
                self.request_returns(slot, serving);
            }
            Stage::Flushing { .. } => {} // ends with the flush's answer, never a step
        }
    }

    /// The request's spans have ended: with `workload.flush_every_request` (and tracing
    /// on, as `workload/request.rs` flushes only with a provider) it waits in
    /// `force_flush` first, else it is counted and its slot freed now.
    fn request_returns(&mut self, slot: usize, mut serving: Serving) {
        let w = &self.settings.workload;
        if !(w.flush_every_request && self.settings.tracing.enabled) {
            return self.request_counted(slot, serving);
        }
        self.traffic.flushes += 1;
        let flush = self.traffic.flushes;
        serving.phase = Stage::Flushing { flush };
        serving.ends = Duration::MAX;
        self.traffic.slots[slot] = Some(serving);
        self.request_flush(slot, flush);
    }

    /// The `flush`-th per-request flush is over for the request in `slot` (answered or
    /// given up); stale when that request has already stopped waiting.
    pub(super) fn request_flush_over(&mut self, slot: usize, flush: u64) {
        let waiting = self.traffic.slots.get(slot).copied().flatten();
        if let Some(serving) = waiting.filter(|s| s.phase == Stage::Flushing { flush }) {
            self.request_counted(slot, serving);
        }
    }

    /// `workload::count_outcome`: a cancelled request is counted; a completed one adds its
    /// latency from arrival and service time from its slot, its flush included.
    fn request_counted(&mut self, slot: usize, serving: Serving) {
        if serving.cancelled {
            self.traffic.requests.cancelled += 1;
        } else {
            self.traffic.requests.completed += 1;
            let ms = |since: Duration| self.now.saturating_sub(since).as_secs_f64() * 1000.0;
            let (latency, service) = (ms(serving.arrived), ms(serving.started));
            self.traffic.latency.add(latency);
            let traced = self.settings.tracing.enabled;
            self.traffic.service.add(traced, service);
        }
        self.finish_request(slot);
    }

    /// The slot is free: it takes the next waiting request, or the drain may be over.
    fn finish_request(&mut self, slot: usize) {
        self.traffic.slots[slot] = None;
        while self.traffic.slots[slot].is_none() {
            let Some((index, arrived)) = self.traffic.waiting.pop_front() else {
                break;
            };
            self.begin(slot, index, arrived);
        }
        self.check_drained();
    }

    /// `handle_exit = cancel`: each request in inference stops at its next step boundary
    /// (`for _ in 0..steps { if cancel { break } pause(step) }`); a request past its last
    /// step boundary, or uploading, runs to the end.
    pub(super) fn cancel_in_flight(&mut self) {
        self.traffic.cancel = true;
        if self.traffic.model.is_some() {
            return self.cancel_model_waits();
        }
        let w = &self.settings.workload;
        let steps = w.steps.max(1) as f64;
        let step = w.inference_ms.max(0.0) / 1000.0 / steps;
        for slot in 0..self.traffic.slots.len() {
            let Some(mut s) = self.traffic.slots[slot].filter(|s| s.phase == Stage::Inference)
            else {
                continue;
            };
            if w.steps == 0 || step <= 0.0 {
                continue;
            }
            let done = ((self.now - s.started).as_secs_f64() / step).floor() + 1.0;
            if done >= steps {
                continue;
            }
            s.cancelled = true;
            s.ends = s.started + Duration::from_secs_f64(done * step);
            self.traffic.slots[slot] = Some(s);
            self.at(s.ends, Event::SlotStep { slot });
        }
    }

    /// `handle_exit = cancel` with the model: a request waiting for the model stops
    /// waiting now (`ModelService::generate` checks its stop condition while it waits,
    /// every 5 ms: not modelled), its `inference` and root ending with an error; one
    /// running its steps stops at its next step boundary ([`Sim::model_step_over`]).
    fn cancel_model_waits(&mut self) {
        let waiting = self.traffic.model.as_mut().map(ModelLine::take_waiting);
        for slot in waiting.unwrap_or_default() {
            let Some(mut serving) = self.traffic.slots[slot] else {
                continue;
            };
            if self.settings.tracing.enabled {
                self.end_spans(2, serving.sampled);
            }
            serving.cancelled = true;
            self.request_returns(slot, serving);
        }
    }

    /// SIGKILL: requests running or waiting are cut off; their open spans (the root and
    /// the child in progress) never end, unless they were flushing (all ended then).
    pub(super) fn cut_off(&mut self) -> (u64, u64) {
        let cut_off = self.traffic.in_flight() + self.traffic.waiting.len() as u64;
        let running = (self.traffic.slots.iter().flatten())
            .filter(|s| !matches!(s.phase, Stage::Flushing { .. }))
            .count() as u64;
        let traced = if self.settings.tracing.enabled { 2 } else { 0 };
        self.traffic.slots.iter_mut().for_each(|s| *s = None);
        if let Some(model) = &mut self.traffic.model {
            model.clear();
        }
        self.traffic.waiting.clear();
        self.traffic.requests.cut_off += cut_off;
        (cut_off, running * traced)
    }

    pub(super) fn close_line(&mut self) {
        self.traffic.closed = true;
        self.check_drained();
    }

    pub(super) fn drained(&self) -> bool {
        self.traffic.closed && self.traffic.waiting.is_empty() && self.traffic.in_flight() == 0
    }
}
