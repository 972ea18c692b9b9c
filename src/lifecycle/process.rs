//! The real-process check: the same runner as a child process (`gracetrace runner`),
//! sent a real SIGTERM and, at the grace deadline, a real SIGKILL by its parent, so the
//! in-process simulation is not trusted blindly (tests/engine/real_process.rs compares them).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::runner_main;
use crate::collector::{Collector, CollectorConfig, CollectorError};
use crate::config::{HandleExit, Settings};
use crate::record::Record;
use crate::telemetry::Pipeline;
use crate::workload::Traffic;

/// The line the child prints once its traffic runs, so the parent starts its clock.
const READY: &str = "gracetrace-runner ready";

/// Why a runner process could not serve.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error(transparent)]
    Model(#[from] crate::workload::model::ModelError),
    #[error(transparent)]
    Pipeline(#[from] crate::telemetry::PipelineError),
    #[error("cannot watch for SIGTERM: {0}")]
    Signals(#[source] std::io::Error),
}

/// The child's side of the real-process check (`gracetrace runner`): serve the scenario's
/// traffic, exporting to `endpoint`, until SIGTERM; then run the shutdown steps and
/// return. Whoever sent SIGTERM sends SIGKILL. The lines the parent reads (`gracetrace-runner ready`, then
/// `sigterm +0 ms` and each step as `NAME +MS ms`) go to `out`, flushed at once: a SIGKILL
/// may come at any moment, and what was not flushed never happened for the parent.
pub fn serve_as_runner(
    settings: &Settings,
    endpoint: String,
    runner_id: u64,
    out: &mut dyn Write,
) -> Result<(), RunnerError> {
    if settings.workload.kind == crate::config::WorkloadKind::Model {
        crate::workload::model_service(&settings.workload)?;
    }
    let record = Arc::new(Record::new());
    let pipeline = Arc::new(Pipeline::start(settings, endpoint, record, runner_id)?);
    let sigterm = wait_for_sigterm().map_err(RunnerError::Signals)?;
    let mut traffic = Traffic::start(&settings.workload, pipeline.clone());
    // Behind a lock because the step callback is a shared `Fn`.
    let out = std::sync::Mutex::new(out);
    let say = |line: &str| {
        let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    say(READY);

    let traffic_ends = Duration::from_secs_f64(settings.workload.duration_s);
    if sigterm
        .recv_timeout(traffic_ends + Duration::from_secs(3600))
        .is_err()
    {
        traffic.wait();
        pipeline.shutdown();
        return Ok(());
    }
    let sigterm_at = std::time::Instant::now();
    say("sigterm +0 ms");
    traffic.begin_drain(sigterm_at, &settings.shutdown);
    if settings.shutdown.handle_exit == HandleExit::Cancel {
        traffic.cancel_in_flight();
    }
    let arrivals = traffic.detach_arrivals();
    let flush_timeout = Duration::from_millis(settings.shutdown.flush_timeout_ms);
    runner_main(&pipeline, traffic, flush_timeout, &|step| {
        let name = step.phase.name();
        let ms = step.at.saturating_duration_since(sigterm_at).as_secs_f64() * 1000.0;
        say(&format!("{name} +{ms:.1} ms"));
        true
    });
    arrivals.stop();
    Ok(())
}

/// A thread that waits for SIGTERM (through tokio's signal handling) and says so once.
fn wait_for_sigterm() -> std::io::Result<std::sync::mpsc::Receiver<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut signal = {
        let _guard = runtime.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?
    };
    let (sender, receiver) = channel();
    std::thread::Builder::new()
        .name("gracetrace-sigterm".into())
        .spawn(move || {
            runtime.block_on(signal.recv());
            let _ = sender.send(());
        })?;
    Ok(receiver)
}

/// What the parent saw of its child runner.
#[derive(Clone, Debug, Serialize)]
pub struct ChildRun {
    /// Spans the parent's collector counted from the child.
    pub spans_received: u64,
    pub killed: bool,
    /// SIGTERM to exit (or to SIGKILL), milliseconds.
    pub sigterm_to_end_ms: f64,
    /// What the child printed: its shutdown steps.
    pub steps: Vec<String>,
}

/// How long the child has to print [`READY`]: it loads the model (if the scenario serves
/// one) and starts its pipeline first.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the real-process check could not run; each message names what failed.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// The check SIGTERMs the child at `shutdown.at_s`, so a scenario without it can't run.
    #[error("the scenario sets no shutdown.at_s")]
    NoShutdownTime,
    /// The parent's collector, which receives the child's spans, could not start.
    #[error("cannot start the collector: {0}")]
    Collector(#[from] CollectorError),
    /// The binary could not be executed.
    #[error("cannot start {}: {source}", path.display())]
    Spawn {
        /// The binary asked for.
        path: PathBuf,
        /// What the OS said (not found, not executable, ...).
        #[source]
        source: std::io::Error,
    },
    /// The child's stdout, which carries its ready line and shutdown steps, was not piped.
    #[error("no stdout from the child")]
    NoStdout,
    /// The child's first line was not its ready line (it has been killed).
    #[error("the child runner did not get ready: {0}")]
    NotReady(NotReady),
    /// `kill(2)` failed (the child has been killed).
    #[error("cannot send {signal}: {source}")]
    Signal {
        /// The signal's name, e.g. `SIGTERM`.
        signal: &'static str,
        /// What `kill(2)` said.
        #[source]
        source: std::io::Error,
    },
}

/// What the child did instead of reporting ready.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    /// It printed another line first.
    #[error("it printed {0:?}")]
    Printed(String),
    /// It printed nothing within this time.
    #[error("it printed nothing within {0:?}")]
    Silent(Duration),
    /// Its stdout closed: it exited (its stderr, which is the parent's, says why).
    #[error("its stdout closed")]
    Exited,
}

/// Runs `bin runner` against a fresh collector, SIGTERMs it at `shutdown.at_s` after it
/// reports ready, and SIGKILLs it at the grace deadline if it has not exited.
/// `scenario_args` are the `--scenario`/`--set` arguments that give the child `settings`.
pub fn run_child(
    bin: &Path,
    scenario_args: &[String],
    settings: &Settings,
) -> Result<ChildRun, ChildError> {
    const RUNNER_ID: u64 = 2;
    let at_s = settings.shutdown.at_s.ok_or(ChildError::NoShutdownTime)?;
    let collector = Collector::start(CollectorConfig::for_settings(settings))?;
    let mut child = spawn_runner(bin, scenario_args, &collector.traces_endpoint(), RUNNER_ID)?;
    let stdout = child.stdout.take().ok_or(ChildError::NoStdout)?;
    let printed = forward_lines(stdout);
    wait_ready(&mut child, &printed)?;
    std::thread::sleep(Duration::from_secs_f64(at_s));

    let sigterm = Instant::now();
    send_sigterm(&mut child)?;
    let deadline = sigterm + Duration::from_millis(settings.shutdown.grace_ms);
    let killed = !exited_by(&mut child, deadline);
    if killed {
        // As the platform does: tell the backend's side first (see Collector), then
        // the real SIGKILL.
        collector.runner_killed(RUNNER_ID);
        let _ = child.kill();
        let _ = child.wait();
    }
    let sigterm_to_end_ms = sigterm.elapsed().as_secs_f64() * 1000.0;
    let steps = remaining_lines(&printed);
    let spans_received = collector.stats().spans_received;
    collector.shutdown();
    Ok(ChildRun {
        spans_received,
        killed,
        sigterm_to_end_ms,
        steps,
    })
}

/// Starts `bin runner`, exporting to `endpoint` as runner `runner_id`, with its stdout
/// piped so the parent can read its ready line and shutdown steps.
fn spawn_runner(
    bin: &Path,
    scenario_args: &[String],
    endpoint: &str,
    runner_id: u64,
) -> Result<Child, ChildError> {
    Command::new(bin)
        .arg("runner")
        .args(["--endpoint", endpoint])
        .args(["--runner-id", &runner_id.to_string()])
        .args(scenario_args)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|source| ChildError::Spawn {
            path: bin.to_path_buf(),
            source,
        })
}

/// Forwards the child's stdout line by line from a thread of its own, so the parent can
/// wait for a line with a timeout (a pipe read cannot time out).
fn forward_lines(stdout: ChildStdout) -> Receiver<String> {
    let (lines, printed) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    printed
}

/// Waits for the child's [`READY`] line, which starts the parent's clock; a child that
/// prints anything else first, or nothing in time, is killed.
fn wait_ready(child: &mut Child, printed: &Receiver<String>) -> Result<(), ChildError> {
    let not_ready = match printed.recv_timeout(READY_TIMEOUT) {
        Ok(line) if line == READY => return Ok(()),
        Ok(line) => NotReady::Printed(line),
        Err(RecvTimeoutError::Timeout) => NotReady::Silent(READY_TIMEOUT),
        Err(RecvTimeoutError::Disconnected) => NotReady::Exited,
    };
    let _ = child.kill();
    Err(ChildError::NotReady(not_ready))
}

/// Sends the child a real SIGTERM, as the platform does to begin a shutdown; if that fails
/// the child is killed, since nothing else would stop it.
fn send_sigterm(child: &mut Child) -> Result<(), ChildError> {
    // SAFETY: kill(2) takes two integers and touches no memory of ours; the pid is that of
    // a child we own and have not reaped (`try_wait`/`wait` below), so it cannot have been
    // recycled for another process.
    #[allow(unsafe_code)]
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    if sent != 0 {
        let source = std::io::Error::last_os_error();
        let _ = child.kill();
        return Err(ChildError::Signal {
            signal: "SIGTERM",
            source,
        });
    }
    Ok(())
}

/// Whether the child exited by `deadline`, polled every millisecond so the measured
/// SIGTERM-to-exit time is that precise. An error from `try_wait` counts as not exited:
/// the child is then killed like one that overran its grace.
fn exited_by(child: &mut Child, deadline: Instant) -> bool {
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            _ => return false,
        }
    }
}

/// The child's last lines: they may still be in the pipe, so read until it falls silent.
fn remaining_lines(printed: &Receiver<String>) -> Vec<String> {
    let mut steps = Vec::new();
    while let Ok(line) = printed.recv_timeout(Duration::from_millis(200)) {
        steps.push(line);
    }
    steps
}
