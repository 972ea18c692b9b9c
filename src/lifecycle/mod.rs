//! The platform's shutdown of a runner: SIGTERM -> handle_exit -> drain -> teardown
//! (force_flush) -> exit, or SIGKILL when the grace period runs out first.
//!
//! This is fal's sequence (the seed: "the 5-second grace period is a shared budget across
//! handle_exit(), remaining in-flight requests, teardown(), and force_flush()"). The
//! runner's own steps run on a "runner main" thread, exactly as they would in the app;
//! this module only watches the clock, the way the platform does. If the runner has not
//! exited by `sigterm + grace`, it is killed (simulated in-process, see
//! [`crate::telemetry::Pipeline::kill`]) and its main thread is abandoned.

pub mod process;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::collector::Collector;
use crate::config::{HandleExit, ShutdownSettings};
use crate::record::Record;
use crate::telemetry::{KillLosses, Pipeline};
use crate::workload::Traffic;

/// The timeline of one shutdown, in the record's milliseconds. Field names are the
/// report's contract.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ShutdownReport {
    pub platform: String,
    pub grace_ms: u64,
    pub handle_exit: String,
    pub sigterm_ms: f64,
    pub handle_exit_ms: f64,
    pub drain_end_ms: Option<f64>,
    pub teardown_start_ms: Option<f64>,
    pub flush_start_ms: Option<f64>,
    /// `null` if SIGKILL cut the flush off.
    pub flush_end_ms: Option<f64>,
    /// What force_flush returned, when it returned.
    pub flush_result: Option<String>,
    /// `null` if killed.
    pub exit_ms: Option<f64>,
    /// `null` if the runner exited in time.
    pub sigkill_ms: Option<f64>,
    pub killed: bool,
    pub lost_at_kill: KillLosses,
    /// Requests running or waiting when SIGKILL came.
    pub requests_cut_off: u64,
    /// Their spans, which never ended: no SDK ever saw them.
    pub spans_never_ended: u64,
    /// Arrivals after SIGTERM, routed elsewhere by the platform.
    pub requests_refused: u64,
    /// One sentence for a person.
    pub verdict: String,
}

/// Steps the runner's main thread reports as it goes.
#[derive(Debug)]
pub enum Step {
    DrainEnd(Instant),
    TeardownStart(Instant),
    FlushStart(Instant),
    FlushEnd(Instant, Result<(), String>),
    Exit(Instant),
}

/// The runner's side of the shutdown, after SIGTERM and handle_exit: in-flight requests
/// finish, teardown() flushes, the process exits (which shuts the provider down:
/// Python's atexit hook, Rust's drop). `step` reports progress and says whether to go on
/// (false once the runner is dead). The in-process simulation and the real child process
/// (`gracetrace runner`) both run exactly this.
pub fn runner_main(
    pipeline: &Pipeline,
    mut traffic: Traffic,
    flush_timeout: Duration,
    step: &dyn Fn(Step) -> bool,
) {
    traffic.wait_drained();
    if !step(Step::DrainEnd(Instant::now())) || !step(Step::TeardownStart(Instant::now())) {
        return;
    }
    let generation = pipeline.tracer();
    if !step(Step::FlushStart(Instant::now())) {
        return;
    }
    let result = generation
        .as_ref()
        .map_or(Ok(()), |g| g.force_flush(flush_timeout));
    drop(generation);
    if !step(Step::FlushEnd(Instant::now(), result)) {
        return;
    }
    pipeline.shutdown();
    step(Step::Exit(Instant::now()));
}

impl Step {
    /// The step's name in the report's words, and when it happened.
    pub fn describe(&self) -> (&'static str, Instant) {
        match self {
            Step::DrainEnd(at) => ("drain_end", *at),
            Step::TeardownStart(at) => ("teardown_start", *at),
            Step::FlushStart(at) => ("flush_start", *at),
            Step::FlushEnd(at, _) => ("flush_end", *at),
            Step::Exit(at) => ("exit", *at),
        }
    }
}

/// Runs the shutdown now and returns when the runner has exited or been killed.
pub fn shutdown(
    pipeline: &Arc<Pipeline>,
    mut traffic: Traffic,
    collector: Option<&Collector>,
    settings: &ShutdownSettings,
) -> ShutdownReport {
    let record: &Record = pipeline.record();
    let sigterm = Instant::now();
    let deadline = sigterm + Duration::from_millis(settings.grace_ms);
    let mut report = ShutdownReport {
        platform: settings.platform.name().into(),
        grace_ms: settings.grace_ms,
        handle_exit: format!("{:?}", settings.handle_exit).to_lowercase(),
        sigterm_ms: record.ms_at(sigterm),
        ..ShutdownReport::default()
    };
    record.mark("sigterm");
    traffic.begin_drain();
    let arrivals = traffic.detach_arrivals();

    // handle_exit() runs first, on the signal.
    if settings.handle_exit == HandleExit::Cancel {
        traffic.cancel_in_flight();
    }
    report.handle_exit_ms = record.now_ms();
    record.mark("handle_exit");

    let (steps, watch) = channel();
    let runner = pipeline.clone();
    let flush_timeout = Duration::from_millis(settings.flush_timeout_ms);
    let main = std::thread::Builder::new()
        .name("gracetrace-runner-main".into())
        .spawn(move || {
            runner_main(&runner, traffic, flush_timeout, &|step| {
                !runner.life().is_killed() && steps.send(step).is_ok()
            })
        });
    if main.is_err() {
        arrivals.stop();
        report.verdict = "could not start the runner's main thread".into();
        return report;
    }

    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match watch.recv_timeout(left) {
            Ok(Step::DrainEnd(at)) => {
                report.drain_end_ms = Some(record.ms_at(at));
                record.mark("drain_end");
            }
            Ok(Step::TeardownStart(at)) => {
                report.teardown_start_ms = Some(record.ms_at(at));
                record.mark("teardown");
            }
            Ok(Step::FlushStart(at)) => {
                report.flush_start_ms = Some(record.ms_at(at));
                record.mark("flush_start");
            }
            Ok(Step::FlushEnd(at, result)) => {
                report.flush_end_ms = Some(record.ms_at(at));
                report.flush_result = Some(match result {
                    Ok(()) => "ok".into(),
                    Err(e) => e,
                });
                record.mark("flush_end");
            }
            Ok(Step::Exit(at)) => {
                report.exit_ms = Some(record.ms_at(at));
                record.mark("exit");
                break;
            }
            Err(RecvTimeoutError::Timeout) => {
                kill(pipeline, collector, record, &mut report);
                break;
            }
            Err(RecvTimeoutError::Disconnected) => {
                // The main thread ended without exiting: only a kill ends it now.
                std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                kill(pipeline, collector, record, &mut report);
                break;
            }
        }
    }
    arrivals.stop();
    report.requests_refused = record.counters.requests_refused.load(Relaxed);
    report.verdict = verdict(&report, record);
    report
}

fn kill(
    pipeline: &Pipeline,
    collector: Option<&Collector>,
    record: &Record,
    report: &mut ShutdownReport,
) {
    let at = Instant::now();
    let losses = pipeline.kill(collector);
    report.sigkill_ms = Some(record.ms_at(at));
    report.killed = true;
    report.lost_at_kill = losses;
    let c = &record.counters;
    let cut_off =
        c.requests_in_flight.load(Relaxed).max(0) + c.requests_waiting.load(Relaxed).max(0);
    report.requests_cut_off = cut_off as u64;
    c.requests_cut_off.fetch_add(cut_off as u64, Relaxed);
    let never_ended = c.open_spans.swap(0, Relaxed).max(0) as u64;
    report.spans_never_ended = never_ended;
    c.spans_never_ended.fetch_add(never_ended, Relaxed);
    record.mark("sigkill");
}

fn verdict(report: &ShutdownReport, record: &Record) -> String {
    let grace = report.grace_ms as f64 / 1000.0;
    if !report.killed {
        let took = report.exit_ms.unwrap_or(report.sigterm_ms) - report.sigterm_ms;
        let counts = record.span_counts();
        let failed = if counts.export_failed > 0 {
            format!(", but {} spans failed to export", counts.export_failed)
        } else {
            String::new()
        };
        return format!(
            "Exited {:.2} s after SIGTERM, {:.2} s before SIGKILL: nothing lost at shutdown{failed}.",
            took / 1000.0,
            grace - took / 1000.0
        );
    }
    let losses = &report.lost_at_kill;
    let lost = losses.queued + losses.in_flight_export;
    let mut text = format!(
        "{lost} spans lost at SIGKILL ({grace:.0} s grace): {} in the queue, {} in an export that never finished",
        losses.queued, losses.in_flight_export
    );
    if report.requests_cut_off > 0 {
        text += &format!(
            "; {} requests cut off, their {} spans never ended",
            report.requests_cut_off, report.spans_never_ended
        );
    }
    let phase = match (
        report.drain_end_ms,
        report.flush_start_ms,
        report.flush_end_ms,
    ) {
        (None, _, _) => "still draining in-flight requests",
        (Some(_), None, _) => "in teardown",
        (Some(_), Some(_), None) => "still inside force_flush",
        (Some(_), Some(_), Some(_)) => "shutting the provider down after the flush",
    };
    text + &format!(". SIGKILL came {phase}.")
}
