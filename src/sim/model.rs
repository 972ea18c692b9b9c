//! The model workload's one model in virtual time, as `workload/model/service.rs` serves
//! it: one request at a time, the others holding their serving slot while they wait, and
//! every denoising step's and upload's time drawn from the real ones a calibration
//! measured ([`ModelTimes`]).
//!
//! Each step is drawn on its own, with replacement, from every step measured (not whole
//! requests): a step is the unit a request is made of (one guided forward pass and its
//! device sync), so a request of any `workload.steps` can be drawn, and a cancelled
//! request stops at a step boundary the draws give. The draws have their own seeded
//! generator, so a virtual run is reproducible and the arrivals and the faults' draws do
//! not move with them.

use std::collections::VecDeque;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::record::report::ModelTimes;

pub(super) struct ModelLine {
    step_ms: Vec<f64>,
    upload_ms: Vec<f64>,
    rng: StdRng,
    /// The slot whose request has the model now.
    holder: Option<usize>,
    /// Slots whose request waits for the model, in the order they asked. The real
    /// requests poll a `try_lock` and take the model in no set order; first come, first
    /// served keeps the same number served and the same wait on average.
    waiting: VecDeque<usize>,
}

impl ModelLine {
    pub(super) fn new(times: &ModelTimes, seed: u64) -> ModelLine {
        ModelLine {
            step_ms: times.step_ms.clone(),
            upload_ms: times.upload_ms.clone(),
            rng: StdRng::seed_from_u64(seed ^ 0x6d6f_6465_6c5f_7469),
            holder: None,
            waiting: VecDeque::new(),
        }
    }

    /// One denoising step's time, drawn from the measured ones.
    pub(super) fn step(&mut self) -> Duration {
        draw(&mut self.rng, &self.step_ms)
    }

    /// One upload's (PNG encoding's) time, drawn from the measured ones.
    pub(super) fn upload(&mut self) -> Duration {
        draw(&mut self.rng, &self.upload_ms)
    }

    /// `slot`'s request asks for the model: true when it has it now, else it waits.
    pub(super) fn take(&mut self, slot: usize) -> bool {
        if self.holder.is_none() {
            self.holder = Some(slot);
            return true;
        }
        self.waiting.push_back(slot);
        false
    }

    /// `slot`'s request is done with the model; the slot that has it next, if any.
    pub(super) fn release(&mut self, slot: usize) -> Option<usize> {
        if self.holder == Some(slot) {
            self.holder = self.waiting.pop_front();
            return self.holder;
        }
        None
    }

    /// Every slot waiting for the model, which stop waiting (a cancel).
    pub(super) fn take_waiting(&mut self) -> Vec<usize> {
        self.waiting.drain(..).collect()
    }

    /// SIGKILL: nobody has the model, nobody waits.
    pub(super) fn clear(&mut self) {
        self.holder = None;
        self.waiting.clear();
    }
}

/// One of `measured` (milliseconds), drawn uniformly; zero when nothing was measured
/// (`sim::run` refuses such a calibration before any draw).
fn draw(rng: &mut StdRng, measured: &[f64]) -> Duration {
    if measured.is_empty() {
        return Duration::ZERO;
    }
    let ms = measured[rng.random_range(0..measured.len())];
    Duration::from_secs_f64(ms.max(0.0) / 1000.0)
}
