//! The stock `opentelemetry_sdk` `BatchSpanProcessor`, untouched, with a thin counter in
//! front so its spans enter the same accounting as the project's own processor.
//!
//! The stock processor keeps its drop count private (opentelemetry_sdk 0.33.1
//! `src/trace/span_processor.rs`: `BatchSpanProcessor::dropped_spans_count` is a private
//! field, only logged as `BatchSpanProcessor.SpanDroppingStarted` at the first drop and
//! `BatchSpanProcessor.SpansDropped` at shutdown). What it holds is bounded, though: its
//! spans wait in `sync_channel::<SpanData>(max_queue_size)` (l. 520) until the worker
//! takes a batch out and hands it to the exporter at once (`get_spans_and_export`,
//! l. 721-763), and `on_end` drops the span that finds the channel full (`try_send`,
//! l. 818-877). So a span ended while `max_queue_size` spans are accepted and not yet
//! handed to the exporter is dropped, and is booked so at once; the count is made exact
//! when the processor has shut down (its shutdown drains everything it kept), since a
//! batch the worker has taken out but not yet handed over is still counted as held.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchSpanProcessor, Span, SpanData, SpanProcessor};

use super::exporter::Handed;
use crate::record::Record;
use crate::telemetry::wire::RunnerLife;

#[derive(Debug)]
pub struct CountedStockProcessor {
    inner: BatchSpanProcessor,
    record: Arc<Record>,
    life: Arc<RunnerLife>,
    /// The channel's capacity: `max_queue_size`.
    capacity: u64,
    pub counts: StockCounts,
}

/// What the wrapper knows of the stock processor: spans it was given, spans it booked as
/// held, spans its exporter was handed, and the drops booked so far.
#[derive(Clone, Debug, Default)]
pub struct StockCounts {
    pub accepted: Arc<AtomicU64>,
    /// Spans booked as held (`queued`) rather than dropped; `taken - handed` is what the
    /// wrapper believes the channel holds.
    pub taken: Arc<AtomicU64>,
    pub handed: Arc<Handed>,
    pub dropped: Arc<AtomicU64>,
}

impl CountedStockProcessor {
    /// Wraps `inner`, built with `max_queue_size`, whose exporter counts into `handed`.
    pub fn new(
        inner: BatchSpanProcessor,
        max_queue_size: usize,
        handed: Arc<Handed>,
        record: Arc<Record>,
        life: Arc<RunnerLife>,
    ) -> Self {
        CountedStockProcessor {
            inner,
            record,
            life,
            capacity: max_queue_size as u64,
            counts: StockCounts {
                handed,
                ..StockCounts::default()
            },
        }
    }
}

impl StockCounts {
    /// Books one more span as held when fewer than `capacity` are held, as `try_send` on
    /// the channel accepts it. A compare-and-swap, so that two request threads cannot both
    /// take the last slot: with a load and an add, a thread preempted between them booked
    /// a span as held beside one that had already filled the queue (seen under load: more
    /// than `max_queue_size` queued).
    fn take_a_slot(&self, capacity: u64) -> bool {
        let mut taken = self.taken.load(Relaxed);
        loop {
            // Read `handed` after `taken`: a stale, smaller `handed` only errs toward a
            // drop, never toward holding more than the channel can.
            let held = taken.saturating_sub(self.handed.count());
            if held >= capacity {
                return false;
            }
            match self
                .taken
                .compare_exchange_weak(taken, taken + 1, Relaxed, Relaxed)
            {
                Ok(_) => return true,
                Err(now) => taken = now,
            }
        }
    }
}

impl SpanProcessor for CountedStockProcessor {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if self.life.is_killed() {
            return; // left open at the kill, dropped now: see GraceBatchProcessor::on_end
        }
        if span.span_context.is_sampled() {
            self.counts.accepted.fetch_add(1, Relaxed);
            if self.counts.take_a_slot(self.capacity) {
                self.record.counters.queued.fetch_add(1, Relaxed);
            } else {
                self.counts.dropped.fetch_add(1, Relaxed);
                self.record.counters.dropped_newest.fetch_add(1, Relaxed);
            }
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// After the stock processor shut down: what it accepted but never exported was
/// dropped, and the stock processor drops the newest (`try_send` on a full channel). The
/// drops booked while it ran are corrected to that exact count. The exporter takes no
/// batch after this (`Handed::close`): a worker whose shutdown gave up would otherwise
/// export spans counted here as dropped.
pub fn settle_drops(record: &Record, counts: &StockCounts) {
    let truth = counts
        .accepted
        .load(Relaxed)
        .saturating_sub(counts.handed.close());
    let booked = counts.dropped.swap(truth, Relaxed);
    let more = truth as i64 - booked as i64;
    record.counters.queued.fetch_sub(more, Relaxed);
    if more >= 0 {
        record
            .counters
            .dropped_newest
            .fetch_add(more as u64, Relaxed);
    } else {
        record
            .counters
            .dropped_newest
            .fetch_sub(more.unsigned_abs(), Relaxed);
    }
}

/// SIGKILL: what the stock processor held (accepted, not handed over, not booked as
/// dropped) dies with the process. Returns the count.
pub fn kill(record: &Record, counts: &StockCounts) -> u64 {
    let held = counts
        .accepted
        .load(Relaxed)
        .saturating_sub(counts.handed.count())
        .saturating_sub(counts.dropped.load(Relaxed));
    record.counters.queued.fetch_sub(held as i64, Relaxed);
    record.counters.lost_at_kill.fetch_add(held, Relaxed);
    held
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many request threads racing for the last slots of a queue that nobody drains take
    /// exactly `capacity` of them, never one more.
    #[test]
    fn racing_threads_never_hold_more_than_the_queue() {
        let counts = StockCounts::default();
        let capacity = 64;
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let counts = counts.clone();
                std::thread::spawn(move || {
                    (0..5_000).filter(|_| counts.take_a_slot(capacity)).count() as u64
                })
            })
            .collect();
        let held: u64 = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
        assert_eq!(held, capacity);
        assert_eq!(counts.taken.load(Relaxed), capacity);
    }

    /// A batch the worker hands over after the settle is refused: each span counts once,
    /// dropped, and the exporter's count stays what the settle read.
    #[test]
    fn nothing_is_handed_over_after_the_settle() {
        let record = Record::default();
        let counts = StockCounts::default();
        for _ in 0..10 {
            assert!(counts.take_a_slot(100));
            counts.accepted.fetch_add(1, Relaxed);
            record.counters.queued.fetch_add(1, Relaxed);
        }
        assert!(counts.handed.hand(4));
        record.counters.queued.fetch_sub(4, Relaxed);
        settle_drops(&record, &counts);
        assert_eq!(counts.dropped.load(Relaxed), 6);
        assert!(
            !counts.handed.hand(3),
            "a batch handed over after the settle"
        );
        assert_eq!(counts.handed.count(), 4);
        assert_eq!(record.counters.dropped_newest.load(Relaxed), 6);
        assert_eq!(record.counters.queued.load(Relaxed), 0);
    }
}
