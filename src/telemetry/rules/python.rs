//! The Python rules: opentelemetry-sdk 1.41, `opentelemetry/sdk/_shared_internal/__init__.py`,
//! class `BatchProcessor` (line numbers below are of that file).

use std::time::Duration;

use super::{BatchRules, FlushWait, FullQueue};

/// The python rule book.
pub struct Python;

/// `BatchProcessor.shutdown(timeout_millis=30000)` default (l. 224).
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(30);

impl BatchRules for Python {
    /// `emit` (l. 216-220): `appendleft` on a full `deque(maxlen)` drops the old end.
    fn full_queue(&self) -> FullQueue {
        FullQueue::EvictOldest
    }

    /// `emit` (l. 221-222): a queue of at least one batch sets `_worker_awaken`; setting
    /// an Event that is already set does nothing.
    fn wakes_worker(&self, counted: usize, batch_size: usize, signalled: bool) -> bool {
        counted >= batch_size && !signalled
    }

    /// `force_flush` (l. 251-257) ignores `timeout_millis` (upstream issue 4568).
    fn flush_wait(&self, _timeout: Duration) -> FlushWait {
        FlushWait::Everything
    }

    fn shutdown_wait(&self) -> Duration {
        SHUTDOWN_WAIT
    }
}

/// `BatchExportStrategy`, names kept as upstream spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)]
pub enum Strategy {
    ExportAll,
    ExportWhileBatchExceedsThreshold,
    ExportAtLeastOneBatch,
}

/// `worker` (l. 168-175): a wait cut short by `_worker_awaken` exports only full
/// batches; a wait that ran out exports at least one batch.
pub fn strategy_after_wait(interrupted: bool) -> Strategy {
    if interrupted {
        Strategy::ExportWhileBatchExceedsThreshold
    } else {
        Strategy::ExportAtLeastOneBatch
    }
}

/// `_should_export_batch` (l. 137-149): whether `_export`'s loop takes another batch,
/// after `iterations` batches, with `queued` spans in the queue.
pub fn should_export_batch(
    queued: usize,
    batch_size: usize,
    timeout_exceeded: bool,
    strategy: Strategy,
    iterations: usize,
) -> bool {
    if queued == 0 || timeout_exceeded {
        return false;
    }
    if queued >= batch_size {
        return true;
    }
    match strategy {
        Strategy::ExportAll => true,
        Strategy::ExportAtLeastOneBatch => iterations == 0,
        Strategy::ExportWhileBatchExceedsThreshold => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timed_out_wait_sends_one_partial_batch_an_awakened_one_none() {
        let at_least_one = strategy_after_wait(false);
        assert!(should_export_batch(3, 512, false, at_least_one, 0));
        assert!(!should_export_batch(3, 512, false, at_least_one, 1));
        let awakened = strategy_after_wait(true);
        assert!(!should_export_batch(3, 512, false, awakened, 0));
        assert!(should_export_batch(512, 512, false, awakened, 7));
        assert!(should_export_batch(1, 512, false, Strategy::ExportAll, 9));
        assert!(!should_export_batch(600, 512, true, Strategy::ExportAll, 0));
        assert!(!should_export_batch(0, 512, false, Strategy::ExportAll, 0));
        assert!(Python.wakes_worker(512, 512, false));
        assert!(!Python.wakes_worker(512, 512, true));
        assert!(!Python.wakes_worker(511, 512, false));
    }
}
