//! The window's "What if" and advisor, run by the live engine: one knob swept over a range,
//! or two knobs over the grid of their ranges ([`super::sweep`]), or the advisor
//! ([`super::advise`]), all in virtual time on a worker thread, on the settings in force.
//! The virtual clock is calibrated once per window (a 1.5 s real run). The engine
//! publishes progress and results in its snapshot ([`View`]); the window only draws them
//! and sends commands.
//!
//! - `request.rs`: what to sweep: the knobs, their ranges, the limits ([`Request`]);
//! - `run.rs`: the sweep and the advisor in virtual time, and why they fail
//!   ([`WhatIfError`]);
//! - `result.rs`: what they found, as the window draws and applies it ([`SweepResult`],
//!   [`AdviceResult`]);
//! - `job.rs`: a job on a thread of its own: calibration once, progress, the result or
//!   a [`JobError`];
//! - `worker.rs`: the engine's sweep and advice jobs, and when the sweep runs again
//!   ([`Worker`]).

mod job;
mod request;
mod result;
mod run;
mod worker;

#[cfg(test)]
mod tests;

pub use job::{JobError, JobFailure, JobView, Progress};
pub use request::{
    Axis, MAX_CELLS, MAX_STEPS, Request, current, default_range, knobs, short_name, with_change,
};
pub use result::{AdviceResult, FleetCell, Point, Recommendation, SweepResult, recommendations};
pub use run::{REPEATS, WhatIfError, advise, sweep};
pub use worker::{RESWEEP_AFTER, View, Worker};
