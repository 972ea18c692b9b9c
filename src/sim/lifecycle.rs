//! The platform's shutdown in virtual time, step for step as `lifecycle/mod.rs`:
//! SIGTERM -> handle_exit -> drain -> teardown/force_flush -> provider shutdown -> exit,
//! or SIGKILL at `sigterm + grace` with the losses split into queued and in flight. A
//! run without `shutdown.at_s` ends cleanly: traffic ends, the provider shuts down.

use std::time::Duration;

use super::flush::{FlushError, Flusher};
use super::{Event, Sim};
use crate::config::{HandleExit, Waiting};
use crate::record::{KillLosses, ShutdownReport};
use crate::telemetry::rules::Leftover;

/// Where the runner's main thread is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Main {
    #[default]
    Serving,
    Draining,
    Flushing,
    ShuttingDown,
    Exited,
}

#[derive(Debug, Default)]
pub(super) struct Life {
    pub(super) main: Main,
    pub(super) killed: bool,
    /// Invalidates a scheduled timeout of a wait that has already ended.
    epoch: u64,
    /// How long the flush waits at most (rust, js).
    flush_wait: Duration,
    report: Option<ShutdownReport>,
}

fn ms(at: Duration) -> f64 {
    at.as_secs_f64() * 1000.0
}

impl Sim<'_> {
    pub(super) fn sigterm(&mut self) {
        let s = &self.settings.shutdown;
        self.life.report = Some(ShutdownReport {
            platform: s.platform.name().into(),
            grace_ms: s.grace_ms,
            handle_exit: s.handle_exit.name().into(),
            waiting: s.waiting.name().into(),
            sigterm_ms: ms(self.now),
            handle_exit_ms: ms(self.now),
            ..ShutdownReport::default()
        });
        self.life.main = Main::Draining;
        let routing_ends = self.now + Duration::from_millis(s.routing_lag_ms);
        self.traffic.routing_ends = Some(routing_ends);
        if s.waiting == Waiting::Return {
            self.traffic.only_to_a_free_slot = true;
            self.traffic.requests.returned += self.traffic.waiting.len() as u64;
            self.traffic.waiting.clear();
        }
        if s.handle_exit == HandleExit::Cancel {
            self.cancel_in_flight();
        }
        self.at(self.now + Duration::from_millis(s.grace_ms), Event::Sigkill);
        if routing_ends <= self.now {
            self.routing_end();
        } else {
            self.at(routing_ends, Event::RoutingEnd);
        }
    }

    pub(super) fn routing_end(&mut self) {
        if let Some(report) = &mut self.life.report {
            report.routing_end_ms = Some(ms(self.now));
        }
        self.close_line();
    }

    /// Called whenever a slot frees or the line closes: once nothing is waiting or
    /// running, teardown's force_flush (after SIGTERM) or the clean shutdown begins.
    pub(super) fn check_drained(&mut self) {
        if !self.drained() {
            return;
        }
        match self.life.main {
            Main::Serving if self.settings.shutdown.at_s.is_none() => self.begin_shutdown(),
            Main::Draining => {
                let now = ms(self.now);
                if let Some(r) = &mut self.life.report {
                    r.drain_end_ms = Some(now);
                    r.teardown_start_ms = Some(now);
                    r.flush_start_ms = Some(now);
                }
                self.life.main = Main::Flushing;
                self.life.epoch += 1;
                let timeout = Duration::from_millis(self.settings.shutdown.flush_timeout_ms);
                if let Some(wait) = self.flush_wait(timeout) {
                    self.life.flush_wait = wait;
                    let epoch = self.life.epoch;
                    self.at(self.now + wait, Event::MainTimeout { epoch });
                }
                self.processor_flush(Flusher::Teardown);
            }
            _ => {}
        }
    }

    /// teardown()'s `force_flush` returned.
    pub(super) fn teardown_flush_done(&mut self, result: Result<(), FlushError>) {
        if self.life.main != Main::Flushing {
            return; // rust: the flush's answer came after its wait ran out
        }
        let now = ms(self.now);
        if let Some(r) = &mut self.life.report {
            r.flush_end_ms = Some(now);
            r.flush_result = Some(result.map_or_else(|e| e.to_string(), |()| "ok".into()));
        }
        self.begin_shutdown();
    }

    fn begin_shutdown(&mut self) {
        self.life.main = Main::ShuttingDown;
        self.life.epoch += 1;
        let epoch = self.life.epoch;
        let wait = self.processor.rules().shutdown_wait();
        self.at(self.now + wait, Event::MainTimeout { epoch });
        self.processor_shutdown();
    }

    /// The processor's worker has finished its last drain.
    pub(super) fn worker_done(&mut self) {
        if self.life.main == Main::ShuttingDown {
            self.exit();
        }
    }

    pub(super) fn main_timeout(&mut self, epoch: u64) {
        if epoch != self.life.epoch {
            return;
        }
        match self.life.main {
            // Only the rust and js rules bound the wait (`FlushWait::AtMost`).
            Main::Flushing => {
                self.teardown_flush_done(Err(FlushError::TimedOut(self.life.flush_wait)));
            }
            Main::ShuttingDown => {
                self.processor_give_up();
                self.exit();
            }
            _ => {}
        }
    }

    /// The real run stops waiting here (`session::run`): what the runner still holds is
    /// reported as queued, requests still running never end their spans.
    pub(super) fn run_deadline(&mut self) {
        if self.life.main != Main::Exited {
            self.processor_give_up();
            self.traffic.gone = true;
            self.finish();
        }
    }

    /// The provider's shutdown returned, drained or not. The stock processor's private
    /// drop count is settled now (`telemetry::stock::settle_drops` runs whatever the
    /// shutdown returned): what its channel still held is counted as dropped.
    fn exit(&mut self) {
        if self.processor.rules().leftover_at_shutdown() == Leftover::DroppedQueueFull {
            self.settle_leftover();
        }
        self.life.main = Main::Exited;
        self.traffic.gone = true;
        if let Some(r) = &mut self.life.report {
            r.exit_ms = Some(ms(self.now));
            r.verdict = format!(
                "Exited {:.2} s after SIGTERM: nothing lost at shutdown.",
                (r.exit_ms.unwrap_or(r.sigterm_ms) - r.sigterm_ms) / 1000.0
            );
        }
        self.finish();
    }

    pub(super) fn sigkill(&mut self) {
        if self.life.main == Main::Exited {
            return;
        }
        self.life.killed = true;
        self.traffic.gone = true;
        let p = &mut self.processor;
        let losses = KillLosses {
            queued: p.queue,
            in_flight_export: p.in_export,
            in_flight_but_delivered: 0,
        };
        p.queue = 0;
        p.in_export = 0;
        self.export_cut_off();
        self.spans.lost_at_kill += losses.queued + losses.in_flight_export;
        let (cut_off, never_ended) = self.cut_off();
        let now = ms(self.now);
        if let Some(r) = &mut self.life.report {
            r.sigkill_ms = Some(now);
            r.killed = true;
            r.lost_at_kill = losses;
            r.requests_cut_off = cut_off;
            r.spans_never_ended = never_ended;
            r.verdict = format!(
                "{} spans lost at SIGKILL: {} in the queue, {} in an export that never finished",
                losses.queued + losses.in_flight_export,
                losses.queued,
                losses.in_flight_export
            );
        }
        self.out.killed = true;
        self.finish();
    }

    pub(super) fn finish(&mut self) {
        self.finished = true;
        self.spans.queued = self.processor.queue + self.processor.in_export;
        let t = &self.traffic.requests;
        if let Some(mut r) = self.life.report.take() {
            r.requests_refused = t.refused;
            r.requests_returned = t.returned;
            self.out.shutdown = Some(r);
        }
    }
}
