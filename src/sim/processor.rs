//! The batch processor in virtual time: the queue as a count, the python worker and its
//! export lock, the rust worker and its control messages (the js timer and its parallel
//! flushes are in `js.rs`), every decision taken from `telemetry::rules` (the same
//! functions the threaded processor calls).

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use super::flush::{FlushError, Flusher};
use super::{Event, Sim};
use crate::config::Settings;
use crate::telemetry::rules::python::{Strategy, should_export_batch, strategy_after_wait};
use crate::telemetry::rules::rust::{MESSAGE_CAPACITY, next_chunk, next_wait};
use crate::telemetry::rules::{self, BatchRules, FullQueue, Leftover, Profile};

/// Who runs python's `_export` loop under the export lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Worker,
    /// The worker's last `ExportAll` after shutdown (l. 177).
    WorkerFinal,
    /// A `force_flush` on the caller's thread: teardown's, or a request's.
    Flush(Flusher),
}

#[derive(Clone, Copy, Debug)]
struct Run {
    owner: Owner,
    strategy: Strategy,
    iterations: usize,
}

/// Rust's `BatchMessage`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Message {
    ExportSpan,
    /// Answered to the flusher that sent it, if it still waits.
    ForceFlush(Flusher),
    Shutdown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Worker {
    Waiting,
    Busy,
    Done,
}

pub(super) struct Processor {
    profile: Profile,
    rules: &'static dyn BatchRules,
    capacity: u64,
    batch: usize,
    delay: Duration,
    /// Spans in the queue, and taken out into the export in flight.
    pub(super) queue: u64,
    pub(super) in_export: u64,
    /// No span is accepted any more.
    shutdown: bool,
    worker: Worker,
    /// Invalidates a scheduled wake once the worker was woken another way.
    epoch: u64,
    // Python
    awaken: bool,
    timeout_exceeded: bool,
    active: Option<Run>,
    /// The runs waiting for the export lock, first come first served: the worker, and
    /// every thread in `force_flush` (each request's, with a flush per request).
    blocked: VecDeque<Run>,
    // Rust
    pending: u64,
    message_sent: bool,
    messages: VecDeque<Message>,
    last_export: Duration,
    /// Rust: the worker already took a zero wait at this instant without exporting.
    zero_wait_at: Option<Duration>,
    target: u64,
    total: u64,
    current: Option<Message>,
    // Js
    /// `_isExporting`: the timer's export is in flight and still waited for.
    pub(super) exporting: bool,
    /// `_timer` is set (its `WorkerWake` carries `epoch`).
    pub(super) timer_runs: bool,
    /// The id of the timer's export, while it is waited for.
    pub(super) timer_export: Option<u64>,
    /// Each waiting `forceFlush`'s batches not yet answered.
    pub(super) flushes: Vec<(Flusher, BTreeSet<u64>)>,
    /// Shutdown: waiting for every export in flight (the exporter's shutdown).
    pub(super) draining: bool,
    pub(super) export_timeout: Duration,
}

impl Processor {
    pub(super) fn new(settings: &Settings) -> Processor {
        // The stock processor (`sdk`) runs the rust worker by its own book: the rust
        // profile reimplements that processor line for line (`rules::stock`).
        let profile = Profile::of(settings.tracing.semantics).unwrap_or(Profile::Rust);
        Processor {
            profile,
            rules: rules::book(settings.tracing.semantics),
            capacity: settings.batch.max_queue_size.max(1) as u64,
            batch: settings.batch.max_export_batch_size.max(1),
            delay: Duration::from_millis(settings.batch.schedule_delay_ms),
            queue: 0,
            in_export: 0,
            shutdown: false,
            worker: Worker::Waiting,
            epoch: 0,
            awaken: false,
            timeout_exceeded: false,
            active: None,
            blocked: VecDeque::new(),
            pending: 0,
            message_sent: false,
            messages: VecDeque::new(),
            last_export: Duration::ZERO,
            zero_wait_at: None,
            target: 0,
            total: 0,
            current: None,
            exporting: false,
            timer_runs: false,
            timer_export: None,
            flushes: Vec::new(),
            draining: false,
            export_timeout: Duration::from_millis(settings.batch.export_timeout_ms),
        }
    }

    /// A runner that starts at `at` (a fleet's replacement): rust counts its first wait
    /// from there, as the worker it spawns at start-up does.
    pub(super) fn started_at(&mut self, at: Duration) {
        self.last_export = at;
    }

    pub(super) fn is_python(&self) -> bool {
        self.profile == Profile::Python
    }

    pub(super) fn profile(&self) -> Profile {
        self.profile
    }

    pub(super) fn batch(&self) -> usize {
        self.batch
    }

    pub(super) fn capacity(&self) -> u64 {
        self.capacity
    }

    pub(super) fn delay(&self) -> Duration {
        self.delay
    }

    pub(super) fn is_shut_down(&self) -> bool {
        self.shutdown
    }

    pub(super) fn shut_down(&mut self) {
        self.shutdown = true;
    }

    /// A new timer: the one scheduled before goes stale. Returns its epoch.
    pub(super) fn next_epoch(&mut self) -> u64 {
        self.epoch += 1;
        self.epoch
    }

    pub(super) fn epoch(&self) -> u64 {
        self.epoch
    }

    pub(super) fn rules(&self) -> &'static dyn BatchRules {
        self.rules
    }
}

impl Sim<'_> {
    pub(super) fn processor_start(&mut self) {
        // The js timer starts with the first span (`rules::js::maybe_start_timer`).
        if self.processor.profile != Profile::Js {
            self.worker_wait();
        }
    }

    /// `emit` (python) / `on_end` (rust, js) for one sampled span.
    pub(super) fn processor_on_end(&mut self) {
        if self.processor.profile == Profile::Js {
            return self.js_on_end();
        }
        let p = &mut self.processor;
        if p.shutdown {
            self.spans.dropped_after_shutdown += 1;
            return;
        }
        if !p.is_python() {
            p.pending += 1;
        }
        if p.queue >= p.capacity {
            match p.rules.full_queue() {
                FullQueue::EvictOldest => self.spans.dropped_oldest += 1,
                FullQueue::RejectNewest => {
                    p.pending -= 1;
                    self.spans.dropped_newest += 1;
                    return;
                }
            }
        } else {
            p.queue += 1;
        }
        self.out.peak_queue = self.out.peak_queue.max(p.queue);
        let batch = p.batch;
        if p.is_python() {
            if p.rules.wakes_worker(p.queue as usize, batch, p.awaken) {
                p.awaken = true;
                self.notify_worker();
            }
        } else if p
            .rules
            .wakes_worker(p.pending as usize, batch, p.message_sent)
        {
            p.message_sent = true;
            self.send(Message::ExportSpan);
        }
    }

    fn notify_worker(&mut self) {
        if self.processor.worker == Worker::Waiting {
            self.processor.epoch += 1;
            let epoch = self.processor.epoch;
            self.at(self.now, Event::WorkerWake { epoch });
        }
    }

    /// Rust's `try_send` on the control channel; false when it is full or closed.
    pub(super) fn send(&mut self, message: Message) -> bool {
        let p = &mut self.processor;
        if p.worker == Worker::Done || p.messages.len() >= MESSAGE_CAPACITY {
            if message == Message::ExportSpan {
                p.message_sent = false;
            }
            return false;
        }
        p.messages.push_back(message);
        self.notify_worker();
        true
    }

    /// The worker's wait: python the full `schedule_delay` (l. 168); rust what is left of
    /// it since the last export (`next_wait`), or at once with a message waiting.
    fn worker_wait(&mut self) {
        let p = &mut self.processor;
        if p.is_python() && p.shutdown {
            let run = Run {
                owner: Owner::WorkerFinal,
                strategy: Strategy::ExportAll,
                iterations: 0,
            };
            self.start_run(run);
            return;
        }
        p.worker = Worker::Waiting;
        p.epoch += 1;
        let epoch = p.epoch;
        let wait = if p.is_python() {
            p.delay
        } else if !p.messages.is_empty() {
            Duration::ZERO
        } else {
            // The real worker's `recv_timeout(0)` returns at once and its next look at
            // the clock finds the delay overdue, so it waits in full; virtual time does
            // not move between the two, so without this the worker would wake at this
            // same instant forever.
            let wait = next_wait(p.delay, self.now.saturating_sub(p.last_export));
            if wait.is_zero() && p.zero_wait_at == Some(self.now) {
                p.delay
            } else {
                if wait.is_zero() {
                    p.zero_wait_at = Some(self.now);
                }
                wait
            }
        };
        self.at(self.now + wait, Event::WorkerWake { epoch });
    }

    pub(super) fn worker_wake(&mut self, epoch: u64) {
        if self.processor.profile == Profile::Js {
            return self.js_timer_fires(epoch);
        }
        let p = &mut self.processor;
        if epoch != p.epoch || p.worker != Worker::Waiting || self.life.killed {
            return;
        }
        p.worker = Worker::Busy;
        if p.is_python() {
            if p.shutdown {
                p.worker = Worker::Waiting;
                self.worker_wait(); // l. 166: the loop ends; the final ExportAll
                return;
            }
            let run = Run {
                owner: Owner::Worker,
                strategy: strategy_after_wait(p.awaken),
                iterations: 0,
            };
            self.start_run(run);
            return;
        }
        let message = p.messages.pop_front();
        if message == Some(Message::ExportSpan) {
            p.message_sent = false;
        }
        p.current = message;
        p.target = p.pending;
        p.total = 0;
        self.rust_next_chunk();
    }

    /// Python `_export`: takes the export lock, or waits for it.
    fn start_run(&mut self, run: Run) {
        let p = &mut self.processor;
        if !matches!(run.owner, Owner::Flush(_)) {
            p.worker = Worker::Busy;
        }
        if p.active.is_some() {
            p.blocked.push_back(run);
            return;
        }
        p.active = Some(run);
        self.python_next_batch();
    }

    /// `_export`'s loop: the next batch, or the end of the loop.
    fn python_next_batch(&mut self) {
        let p = &mut self.processor;
        let Some(mut run) = p.active else { return };
        let go_on = should_export_batch(
            p.queue as usize,
            p.batch,
            p.timeout_exceeded,
            run.strategy,
            run.iterations,
        );
        if go_on && !self.life.killed {
            run.iterations += 1;
            p.active = Some(run);
            let n = p.queue.min(p.batch as u64);
            p.queue -= n;
            p.in_export += n;
            let _ = self.export_start(n);
            return;
        }
        p.active = None;
        self.end_run(run.owner);
        if let Some(blocked) = self.processor.blocked.pop_front() {
            self.start_run(blocked);
        }
    }

    fn end_run(&mut self, owner: Owner) {
        match owner {
            Owner::Worker => {
                self.processor.awaken = false; // l. 176
                self.worker_wait();
            }
            Owner::WorkerFinal => {
                self.processor.worker = Worker::Done;
                self.worker_done();
            }
            Owner::Flush(flusher) => self.flush_done(flusher, Ok(())),
        }
    }

    /// `get_spans_and_export`: the next chunk of what was counted at the start.
    fn rust_next_chunk(&mut self) {
        let p = &mut self.processor;
        if self.life.killed {
            return;
        }
        let chunk = next_chunk(p.batch, p.target as usize, p.total as usize);
        let n = chunk.map_or(0, |limit| p.queue.min(limit as u64));
        if n > 0 {
            p.total += n;
            p.last_export = self.now;
            p.queue -= n;
            p.in_export += n;
            let _ = self.export_start(n);
            return;
        }
        match p.current.take() {
            Some(Message::ForceFlush(flusher)) => self.flush_done(flusher, Ok(())),
            Some(Message::Shutdown) => {
                // The receiver is dropped: what was sent after the drain is lost.
                p.shutdown = true;
                p.worker = Worker::Done;
                p.pending -= p.queue;
                self.settle_leftover();
                self.worker_done();
                return;
            }
            _ => {}
        }
        self.worker_wait();
    }

    /// Export `id` is over (its spans already booked as exported or failed, `ok`).
    pub(super) fn export_done(&mut self, id: u64, spans: u64, ok: bool) {
        let p = &mut self.processor;
        p.in_export -= spans;
        if p.profile == Profile::Js {
            self.js_export_done(id, ok);
        } else if p.is_python() {
            self.python_next_batch();
        } else {
            p.pending -= spans;
            self.rust_next_chunk();
        }
    }

    /// `force_flush` on the `flusher`'s thread: teardown()'s, or a request's.
    pub(super) fn processor_flush(&mut self, flusher: Flusher) {
        if self.processor.profile == Profile::Js {
            return self.js_flush(flusher);
        }
        if self.processor.is_python() {
            if self.processor.shutdown {
                return self.flush_done(flusher, Err(FlushError::AlreadyShutDown));
            }
            let run = Run {
                owner: Owner::Flush(flusher),
                strategy: Strategy::ExportAll,
                iterations: 0,
            };
            return self.start_run(run);
        }
        if !self.send(Message::ForceFlush(flusher)) {
            self.flush_done(flusher, Err(FlushError::ChannelClosed));
        }
    }

    /// What the queue still holds once the processor is shut down, booked as its rule
    /// book counts it (`BatchRules::leftover_at_shutdown`).
    pub(super) fn settle_leftover(&mut self) {
        let p = &mut self.processor;
        match p.rules.leftover_at_shutdown() {
            Leftover::DroppedAfterShutdown => self.spans.dropped_after_shutdown += p.queue,
            Leftover::DroppedQueueFull => self.spans.dropped_newest += p.queue,
        }
        p.queue = 0;
    }

    /// The provider's shutdown: python stops accepting and wakes the worker for its last
    /// `ExportAll`; rust sends `Shutdown`.
    pub(super) fn processor_shutdown(&mut self) {
        if self.processor.profile == Profile::Js {
            return self.js_shutdown();
        }
        if self.processor.is_python() {
            self.processor.shutdown = true;
            self.processor.awaken = true;
            return self.notify_worker();
        }
        if !self.send(Message::Shutdown) {
            self.worker_done();
        }
    }

    /// Python's join ran out: no further batch leaves, the exporter is shut down.
    pub(super) fn processor_give_up(&mut self) {
        self.processor.timeout_exceeded = true;
        self.exporter.shutting_down = true;
    }
}
