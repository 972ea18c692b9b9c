//! The js batch processor in virtual time: @opentelemetry/sdk-trace 2.12.1
//! `BatchSpanProcessorBase` (line numbers of `packages/sdk-trace/src/export/
//! BatchSpanProcessorBase.ts` at opentelemetry-js v2.10.0, the same logic): a timer that
//! starts with the first span, a size trigger only while no export is in flight, and
//! `forceFlush`/`shutdown` sending every batch at once. Every decision is taken from
//! `telemetry::rules::js`, as the threaded processor takes it.

use std::collections::BTreeSet;

use super::flush::{FlushError, Flusher};
use super::{Event, Sim};
use crate::telemetry::rules::js::{Start, flush_all_batches, maybe_start_timer};

impl Sim<'_> {
    /// `onEnd` and `_addToBuffer` (l. 82-136): after shutdown a span is dropped silently;
    /// a full buffer drops the NEW span.
    pub(super) fn js_on_end(&mut self) {
        let p = &mut self.processor;
        if p.is_shut_down() {
            self.spans.dropped_after_shutdown += 1;
            return;
        }
        if p.queue >= p.capacity() {
            self.spans.dropped_newest += 1;
            return;
        }
        p.queue += 1;
        self.out.peak_queue = self.out.peak_queue.max(p.queue);
        self.js_maybe_start_timer();
    }

    /// `_maybeStartTimer` (l. 223-251).
    fn js_maybe_start_timer(&mut self) {
        let p = &self.processor;
        match maybe_start_timer(p.exporting, p.queue as usize, p.batch(), p.timer_runs) {
            Start::Nothing => {}
            Start::ExportNow => self.js_timer_export(),
            Start::Timer => {
                let p = &mut self.processor;
                p.timer_runs = true;
                let epoch = p.next_epoch();
                let at = self.now + p.delay();
                self.at(at, Event::WorkerWake { epoch });
            }
        }
    }

    /// `_clearTimer` (l. 253-258): the timer scheduled goes stale.
    fn js_clear_timer(&mut self) {
        let p = &mut self.processor;
        p.timer_runs = false;
        p.next_epoch();
    }

    pub(super) fn js_timer_fires(&mut self, epoch: u64) {
        let p = &self.processor;
        if epoch != p.epoch() || !p.timer_runs || self.life.killed {
            return;
        }
        self.js_timer_export();
    }

    /// The timer's `flush` (l. 225-239): one batch, waited for at most the export timeout.
    fn js_timer_export(&mut self) {
        self.js_clear_timer();
        let p = &mut self.processor;
        p.exporting = true;
        let n = p.queue.min(p.batch() as u64);
        if n == 0 {
            return self.js_timer_export_over();
        }
        p.queue -= n;
        p.in_export += n;
        let wait = p.export_timeout;
        let id = self.export_start(n);
        self.processor.timer_export = Some(id);
        self.at(self.now + wait, Event::ExportWait { export: id });
    }

    /// `_flushOneBatch` (l. 167-170): the export timeout of export `id` ran out; if the
    /// timer still waits for it, it stops waiting (the export goes on).
    pub(super) fn js_export_wait_over(&mut self, id: u64) {
        if self.processor.timer_export == Some(id) && !self.life.killed {
            self.js_timer_export_over();
        }
    }

    /// The `finally` of the timer's export (l. 228-233): with spans left, the timer
    /// starts again from now, or a full batch goes at once.
    fn js_timer_export_over(&mut self) {
        let p = &mut self.processor;
        p.timer_export = None;
        p.exporting = false;
        if p.queue > 0 {
            self.js_clear_timer();
            self.js_maybe_start_timer();
        }
    }

    /// Export `id` was answered (or failed at once): the timer's export ends, the flush
    /// that sent it counts its batch (`Promise.all`: done with all, or failed with the
    /// first failure), and a shutdown waiting for the exporter may end.
    pub(super) fn js_export_done(&mut self, id: u64, ok: bool) {
        if self.processor.timer_export == Some(id) {
            self.js_timer_export_over();
        }
        let flushes = &mut self.processor.flushes;
        if let Some(at) = flushes.iter().position(|(_, ids)| ids.contains(&id)) {
            flushes[at].1.remove(&id);
            if !ok || flushes[at].1.is_empty() {
                let (flusher, _) = flushes.remove(at);
                let result = if ok {
                    Ok(())
                } else {
                    Err(FlushError::ExportFailed)
                };
                self.flush_done(flusher, result);
            }
        }
        self.js_check_drained();
    }

    /// The flusher stopped waiting: its batches' answers end nothing any more.
    pub(super) fn js_forget_flush(&mut self, flusher: Flusher) {
        self.processor.flushes.retain(|(f, _)| *f != flusher);
    }

    /// `_flushAll` (l. 143-159): every buffered batch out at once; their export ids.
    fn js_flush_all(&mut self) -> BTreeSet<u64> {
        let batches = flush_all_batches(self.processor.queue as usize, self.processor.batch());
        let mut ids = BTreeSet::new();
        for _ in 0..batches {
            self.js_clear_timer(); // l. 162
            let p = &mut self.processor;
            let n = p.queue.min(p.batch() as u64);
            if n == 0 {
                break;
            }
            p.queue -= n;
            p.in_export += n;
            ids.insert(self.export_start(n));
        }
        ids
    }

    /// `forceFlush` (l. 72-77); the provider's timeout is the flusher's own wait.
    pub(super) fn js_flush(&mut self, flusher: Flusher) {
        if self.processor.is_shut_down() {
            return self.flush_done(flusher, Err(FlushError::AlreadyShutDown));
        }
        let ids = self.js_flush_all();
        if ids.is_empty() {
            return self.flush_done(flusher, Ok(()));
        }
        self.processor.flushes.push((flusher, ids));
    }

    /// `_shutdown` (l. 98-110): refuse spans, the last `_flushAll`, then the exporter's
    /// shutdown, which waits for every export in flight.
    pub(super) fn js_shutdown(&mut self) {
        self.processor.shut_down();
        let _ = self.js_flush_all();
        self.processor.draining = true;
        self.js_check_drained();
    }

    fn js_check_drained(&mut self) {
        if self.processor.draining && self.exporter.in_flight() == 0 {
            self.processor.draining = false;
            self.worker_done();
        }
    }
}
