//! The platform's shutdown of a runner: SIGTERM -> handle_exit -> drain -> teardown
//! (force_flush) -> exit, or SIGKILL when the grace period runs out first.
//!
//! This is fal's sequence (the seed: "the 5-second grace period is a shared budget across
//! handle_exit(), remaining in-flight requests, teardown(), and force_flush()"). The
//! runner's own steps run on a "runner main" thread, exactly as they would in the app;
//! this module only watches the clock, the way the platform does. If the runner has not
//! exited by `sigterm + grace`, it is killed (simulated in-process, see
//! [`crate::telemetry::Pipeline::kill`]) and its main thread is abandoned.

pub mod probe;
pub mod process;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use crate::config::{HandleExit, ShutdownSettings};
use crate::record::wire::KillWitness;
use crate::record::{Record, ShutdownPhase, ShutdownReport};
use crate::telemetry::{FlushError, Pipeline};
use crate::workload::Traffic;

/// A step the runner's main thread reports as it goes: which phase began, and when.
#[derive(Debug)]
pub struct Step {
    pub phase: ShutdownPhase,
    pub at: Instant,
    /// What `force_flush` returned (on [`ShutdownPhase::FlushEnd`] only).
    pub flush_result: Option<Result<(), FlushError>>,
}

impl Step {
    fn now(phase: ShutdownPhase) -> Step {
        Step {
            phase,
            at: Instant::now(),
            flush_result: None,
        }
    }
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
    if !step(Step::now(ShutdownPhase::DrainEnd)) || !step(Step::now(ShutdownPhase::Teardown)) {
        return;
    }
    let generation = pipeline.tracer();
    if !step(Step::now(ShutdownPhase::FlushStart)) {
        return;
    }
    let result = generation
        .as_ref()
        .map_or(Ok(()), |g| g.force_flush(flush_timeout));
    drop(generation);
    let flushed = Step {
        flush_result: Some(result),
        ..Step::now(ShutdownPhase::FlushEnd)
    };
    if !step(flushed) {
        return;
    }
    pipeline.shutdown();
    step(Step::now(ShutdownPhase::Exit));
}

/// Runs the shutdown now and returns when the runner has exited or been killed.
pub fn shutdown<W: KillWitness>(
    pipeline: &Arc<Pipeline>,
    mut traffic: Traffic,
    backend: Option<&W>,
    settings: &ShutdownSettings,
) -> ShutdownReport {
    let record: &Record = pipeline.record();
    let sigterm = Instant::now();
    let deadline = sigterm + Duration::from_millis(settings.grace_ms);
    let mut report = ShutdownReport {
        platform: settings.platform.name().into(),
        grace_ms: settings.grace_ms,
        handle_exit: settings.handle_exit.name().into(),
        waiting: settings.waiting.name().into(),
        sigterm_ms: record.ms_at(sigterm),
        ..ShutdownReport::default()
    };
    record.mark_phase(ShutdownPhase::Sigterm, sigterm);
    let returned_before = record.counters.requests_returned.load(Relaxed);
    traffic.begin_drain(sigterm, settings);
    let arrivals = traffic.detach_arrivals();

    // handle_exit() runs first, on the signal.
    if settings.handle_exit == HandleExit::Cancel {
        traffic.cancel_in_flight();
    }
    let handle_exit = Instant::now();
    report.handle_exit_ms = record.ms_at(handle_exit);
    record.mark_phase(ShutdownPhase::HandleExit, handle_exit);

    let flush_timeout = Duration::from_millis(settings.flush_timeout_ms);
    let Some(watch) = start_runner_main(pipeline, traffic, flush_timeout) else {
        arrivals.stop();
        report.verdict = "could not start the runner's main thread".into();
        return report;
    };
    watch_until_exit_or_kill(pipeline, backend, &watch, deadline, &mut report);
    arrivals.stop();
    report.requests_refused = record.counters.requests_refused.load(Relaxed);
    report.requests_returned = record.counters.requests_returned.load(Relaxed) - returned_before;
    report.routing_end_ms = record
        .markers()
        .iter()
        .rev()
        .take_while(|m| m.phase() != Some(ShutdownPhase::Sigterm))
        .find(|m| m.phase() == Some(ShutdownPhase::RoutingEnd))
        .map(|m| m.at_ms);
    report.verdict = verdict(&report, record);
    report
}

/// Starts the runner's main thread, which reports its steps on the returned channel until
/// it exits or the runner is killed.
fn start_runner_main(
    pipeline: &Arc<Pipeline>,
    traffic: Traffic,
    flush_timeout: Duration,
) -> Option<Receiver<Step>> {
    let (steps, watch) = channel();
    let runner = pipeline.clone();
    std::thread::Builder::new()
        .name("gracetrace-runner-main".into())
        .spawn(move || {
            runner_main(&runner, traffic, flush_timeout, &|step| {
                !runner.life().is_killed() && steps.send(step).is_ok()
            })
        })
        .ok()
        .map(|_| watch)
}

/// The platform's side: writes each step into the report and the record as it comes,
/// and kills the runner if it has not exited by `deadline`.
fn watch_until_exit_or_kill<W: KillWitness>(
    pipeline: &Pipeline,
    backend: Option<&W>,
    watch: &Receiver<Step>,
    deadline: Instant,
    report: &mut ShutdownReport,
) {
    let record = pipeline.record();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match watch.recv_timeout(left) {
            Ok(step) => {
                let at_ms = record.ms_at(step.at);
                record.mark_phase(step.phase, step.at);
                match step.phase {
                    ShutdownPhase::DrainEnd => report.drain_end_ms = Some(at_ms),
                    ShutdownPhase::Teardown => report.teardown_start_ms = Some(at_ms),
                    ShutdownPhase::FlushStart => report.flush_start_ms = Some(at_ms),
                    ShutdownPhase::FlushEnd => {
                        report.flush_end_ms = Some(at_ms);
                        report.flush_result = step.flush_result.map(|r| match r {
                            Ok(()) => "ok".into(),
                            Err(e) => e.to_string(),
                        });
                    }
                    ShutdownPhase::Exit => {
                        report.exit_ms = Some(at_ms);
                        return;
                    }
                    // The platform's own phases; the runner never reports them.
                    ShutdownPhase::Sigterm
                    | ShutdownPhase::HandleExit
                    | ShutdownPhase::RoutingEnd
                    | ShutdownPhase::Sigkill => {}
                }
            }
            Err(RecvTimeoutError::Timeout) => break,
            Err(RecvTimeoutError::Disconnected) => {
                // The main thread ended without exiting: only a kill ends it now.
                std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                break;
            }
        }
    }
    kill(pipeline, backend, record, report);
}

fn kill<W: KillWitness>(
    pipeline: &Pipeline,
    backend: Option<&W>,
    record: &Record,
    report: &mut ShutdownReport,
) {
    let at = Instant::now();
    let losses = pipeline.kill(backend);
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
    record.mark_phase(ShutdownPhase::Sigkill, at);
}

fn verdict(report: &ShutdownReport, record: &Record) -> String {
    let returned = match report.requests_returned {
        0 => String::new(),
        1 => " 1 waiting request went back to the platform.".into(),
        n => format!(" {n} waiting requests went back to the platform."),
    };
    killed_or_exited(report, record) + &returned
}

fn killed_or_exited(report: &ShutdownReport, record: &Record) -> String {
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
