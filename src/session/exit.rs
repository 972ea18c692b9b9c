//! The end of a run without a platform shutdown. When traffic ends, the requests still
//! running finish and the provider shuts down, bounded by the semantics' own provider
//! shutdown timeout (python 30 s, rust and sdk 5 s, see [`telemetry::shutdown_timeout`])
//! counted from the last arrival. Past it the run ends as the process would: from that
//! instant nothing more of the runner reaches the collector, and what it still held is
//! reported as `queued` (in the queue, or in an export that never got an answer). Until
//! then the caller is told every second what the end is waiting for.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use super::Session;
use crate::config::Settings;
use crate::record::{ExitProgress, ExitReport, Record};
use crate::telemetry::{self, Pipeline};
use crate::workload::Traffic;

/// How often the caller hears what the end is waiting for.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// The longest the counts are given to come to rest once the runner is stopped: only
/// threads caught between two counters move them after the stop.
const SETTLE: Duration = Duration::from_secs(2);

/// Waits for arrivals to end, then for the requests and the provider's shutdown, at most
/// the SDK's shutdown timeout; returns how it ended.
pub(super) fn end_of_traffic(
    session: &Session,
    mut traffic: Traffic,
    settings: &Settings,
    progress: &dyn Fn(&ExitProgress),
) -> ExitReport {
    traffic.wait_arrivals();
    let record = &session.record;
    let ended = Instant::now();
    record.mark("traffic ended");
    let timeout = telemetry::shutdown_timeout(settings.tracing.semantics);
    let mut report = ExitReport {
        traffic_end_ms: record.ms_at(ended),
        shutdown_timeout_ms: timeout.as_millis() as u64,
        ..ExitReport::default()
    };
    let finished = match drain_in_background(session.pipeline.clone(), traffic) {
        Some(done) => wait_with_progress(record, &done, ended, timeout, progress),
        None => false,
    };
    if finished {
        report.verdict = format!(
            "the provider shut down {:.2} s after traffic ended",
            ended.elapsed().as_secs_f64()
        );
    } else {
        stop_runner(session, &mut report);
    }
    report.end_ms = record.now_ms();
    report
}

/// The requests still running finish, then the provider shuts down (draining its queue),
/// on a thread of its own; the receiver hears when both are done.
fn drain_in_background(pipeline: Arc<Pipeline>, mut traffic: Traffic) -> Option<Receiver<()>> {
    let (done, finished) = channel();
    std::thread::Builder::new()
        .name("gracetrace-end".into())
        .spawn(move || {
            traffic.wait_drained();
            pipeline.shutdown();
            let _ = done.send(());
        })
        .ok()
        .map(|_| finished)
}

/// True when the drain finished within `timeout` of `ended`; says every second what it
/// is waiting for.
fn wait_with_progress(
    record: &Record,
    done: &Receiver<()>,
    ended: Instant,
    timeout: Duration,
    progress: &dyn Fn(&ExitProgress),
) -> bool {
    let deadline = ended + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        match done.recv_timeout(left.min(PROGRESS_EVERY)) {
            Ok(()) => return true,
            // The thread died without finishing (a panic, already reported): only the
            // timeout ends the wait now, as it would for a process that hangs.
            Err(RecvTimeoutError::Disconnected) => {
                std::thread::sleep(left);
                return false;
            }
            Err(RecvTimeoutError::Timeout) => progress(&now_waiting(record, ended, timeout)),
        }
    }
}

fn now_waiting(record: &Record, ended: Instant, timeout: Duration) -> ExitProgress {
    let c = &record.counters;
    ExitProgress {
        waited_s: ended.elapsed().as_secs_f64(),
        timeout_s: timeout.as_secs_f64(),
        spans_queued: c.queued.load(Relaxed).max(0) as u64,
        spans_in_export: c.in_export.load(Relaxed).max(0) as u64,
        requests_running: (c.requests_in_flight.load(Relaxed).max(0)
            + c.requests_waiting.load(Relaxed).max(0)) as u64,
        export_attempt: record.oldest_export_attempts(),
        next_retry_in_s: record.next_retry_in_s(),
    }
}

/// The timeout ran out: the runner stops as an exiting process does. The collector is told
/// first, so a request it has not counted yet never will be; exports it had accepted count
/// as exported; the rest of what the runner held stays `queued`, and spans of requests
/// still running never ended.
fn stop_runner(session: &Session, report: &mut ExitReport) {
    let record = &session.record;
    let life = session.pipeline.life();
    if let Some(collector) = &session.collector {
        collector.runner_killed(life.id);
    }
    life.kill();
    if let Some(collector) = &session.collector {
        record.settle_delivered_exports(&|id| collector.was_acknowledged(id).is_some());
    }
    settle(record);
    let c = &record.counters;
    report.timed_out = true;
    report.spans_queued = c.queued.load(Relaxed).max(0) as u64;
    report.spans_in_export = c.in_export.load(Relaxed).max(0) as u64;
    report.requests_unfinished = (c.requests_in_flight.load(Relaxed).max(0)
        + c.requests_waiting.load(Relaxed).max(0)) as u64;
    let never_ended = c.open_spans.swap(0, Relaxed).max(0) as u64;
    c.spans_never_ended.fetch_add(never_ended, Relaxed);
    report.spans_never_ended = never_ended;
    report.verdict = format!(
        "the provider did not shut down within its {:.0} s timeout after traffic ended; the run \
         ended with {} spans still queued and {} in an export without an answer (counted as \
         queued), {} requests still running",
        report.shutdown_timeout_ms as f64 / 1000.0,
        report.spans_queued,
        report.spans_in_export,
        report.requests_unfinished
    );
}

/// Waits (at most [`SETTLE`]) until the span counts are the same twice in a row and every
/// span is accounted for: after the stop, only a thread caught between two counters (a
/// span counted as created, not yet as queued) still moves them.
fn settle(record: &Record) {
    let until = Instant::now() + SETTLE;
    let mut last = record.span_counts();
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
        let now = record.span_counts();
        if now == last && now.unaccounted() == 0 {
            return;
        }
        last = now;
    }
}
