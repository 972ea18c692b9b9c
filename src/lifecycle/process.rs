//! The real-process check: the same runner as a child process (`gracetrace runner`),
//! sent a real SIGTERM and, at the grace deadline, a real SIGKILL by its parent, so the
//! in-process simulation is not trusted blindly (tests/engine/real_process.rs compares them).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::runner_main;
use crate::collector::{Collector, CollectorConfig};
use crate::config::{HandleExit, Settings};
use crate::record::Record;
use crate::telemetry::Pipeline;
use crate::workload::Traffic;

/// The line the child prints once its traffic runs, so the parent starts its clock.
const READY: &str = "gracetrace-runner ready";

/// `gracetrace runner`: serve the scenario's traffic, exporting to `endpoint`, until
/// SIGTERM; then run the shutdown steps and exit. Whoever sent SIGTERM sends SIGKILL.
pub fn runner_command(settings: &Settings, endpoint: String, runner_id: u64) -> ExitCode {
    if settings.workload.kind == crate::config::WorkloadKind::Model
        && let Err(error) = crate::workload::model_service(&settings.workload)
    {
        eprintln!("gracetrace runner: {error}");
        return ExitCode::FAILURE;
    }
    let record = Arc::new(Record::new());
    let pipeline = match Pipeline::start(settings, endpoint, record, runner_id) {
        Ok(pipeline) => Arc::new(pipeline),
        Err(error) => {
            eprintln!("gracetrace runner: {error}");
            return ExitCode::FAILURE;
        }
    };
    let sigterm = match wait_for_sigterm() {
        Ok(sigterm) => sigterm,
        Err(error) => {
            eprintln!("gracetrace runner: cannot watch for SIGTERM: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut traffic = Traffic::start(&settings.workload, pipeline.clone());
    println!("{READY}");
    let _ = std::io::stdout().flush();

    let traffic_ends = Duration::from_secs_f64(settings.workload.duration_s);
    match sigterm.recv_timeout(traffic_ends + Duration::from_secs(3600)) {
        Ok(()) => {}
        Err(_) => {
            traffic.wait();
            pipeline.shutdown();
            return ExitCode::SUCCESS;
        }
    }
    let sigterm_at = std::time::Instant::now();
    println!("sigterm +0 ms");
    traffic.begin_drain();
    if settings.shutdown.handle_exit == HandleExit::Cancel {
        traffic.cancel_in_flight();
    }
    let arrivals = traffic.detach_arrivals();
    let flush_timeout = Duration::from_millis(settings.shutdown.flush_timeout_ms);
    runner_main(&pipeline, traffic, flush_timeout, &|step| {
        let (name, at) = step.describe();
        let ms = at.saturating_duration_since(sigterm_at).as_secs_f64() * 1000.0;
        println!("{name} +{ms:.1} ms");
        let _ = std::io::stdout().flush();
        true
    });
    arrivals.stop();
    ExitCode::SUCCESS
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

/// Runs `bin runner` against a fresh collector, SIGTERMs it at `shutdown.at_s` after it
/// reports ready, and SIGKILLs it at the grace deadline if it has not exited.
/// `scenario_args` are the `--scenario`/`--set` arguments that give the child `settings`.
pub fn run_child(
    bin: &Path,
    scenario_args: &[String],
    settings: &Settings,
) -> Result<ChildRun, String> {
    const RUNNER_ID: u64 = 2;
    let at_s = settings
        .shutdown
        .at_s
        .ok_or("the scenario sets no shutdown.at_s")?;
    let collector = Collector::start(CollectorConfig {
        faults: settings.collector.clone(),
        ..CollectorConfig::default()
    })
    .map_err(|e| format!("cannot start the collector: {e}"))?;
    let mut child = Command::new(bin)
        .arg("runner")
        .args(["--endpoint", &collector.traces_endpoint()])
        .args(["--runner-id", &RUNNER_ID.to_string()])
        .args(scenario_args)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout from the child")?;
    let (lines, printed) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    match printed.recv_timeout(Duration::from_secs(60)) {
        Ok(line) if line == READY => {}
        other => {
            let _ = child.kill();
            return Err(format!("the child runner did not get ready: {other:?}"));
        }
    }
    std::thread::sleep(Duration::from_secs_f64(at_s));

    let sigterm = Instant::now();
    // SAFETY: kill(2) on the pid of a child we own and have not reaped; no memory involved.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    if sent != 0 {
        let _ = child.kill();
        return Err(format!(
            "cannot send SIGTERM: {}",
            std::io::Error::last_os_error()
        ));
    }
    let deadline = sigterm + Duration::from_millis(settings.shutdown.grace_ms);
    let mut killed = false;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            _ => {
                // As the platform does: tell the backend's side first (see Collector), then
                // the real SIGKILL.
                collector.runner_killed(RUNNER_ID);
                let _ = child.kill();
                let _ = child.wait();
                killed = true;
                break;
            }
        }
    }
    let sigterm_to_end_ms = sigterm.elapsed().as_secs_f64() * 1000.0;
    let mut steps = Vec::new();
    // The child's last lines may still be in the pipe: read until it falls silent.
    while let Ok(line) = printed.recv_timeout(Duration::from_millis(200)) {
        steps.push(line);
    }
    let spans_received = collector.stats().spans_received;
    collector.shutdown();
    Ok(ChildRun {
        spans_received,
        killed,
        sigterm_to_end_ms,
        steps,
    })
}
