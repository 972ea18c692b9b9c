//! The batch processors' and exporters' decisions as pure functions (state in, action
//! out), one file per SDK: the threaded processor (`processor/`) drives them with real
//! time and the simulator (`crate::sim`) with virtual time, so the two cannot drift.
//!
//! One more SDK is one more file here implementing [`BatchRules`], plus its exporter's
//! retry schedule. `stock.rs` is the book of the stock Rust processor (`sdk`), which the
//! threaded pipeline runs unmodified and only the simulator follows by the book.

pub mod js;
pub mod python;
pub mod retry;
pub mod rust;
pub mod stock;

use std::time::Duration;

use crate::config::Semantics;

/// Which rule book a processor follows: the SDK whose batch processor it imitates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    Python,
    Rust,
    Js,
}

/// Which span a full queue drops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FullQueue {
    /// The oldest queued span makes room (python's `deque(maxlen)`).
    EvictOldest,
    /// The span being ended is refused (rust's `try_send` on a full channel, js's
    /// `_addToBuffer` on a full array).
    RejectNewest,
}

/// What a caller of `force_flush` waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushWait {
    /// Until everything queued is exported, whatever the timeout (python).
    Everything,
    /// For the worker's answer, at most this long (rust: a fixed 5 s; js: the timeout).
    AtMost(Duration),
}

/// What the spans a processor still held when its shutdown returned are counted as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leftover {
    /// Ended after the last drain: the processor's own "after shutdown" count.
    DroppedAfterShutdown,
    /// With the drops to a full queue (the stock processor, whose count is private).
    DroppedQueueFull,
}

/// The decisions every SDK's batch processor makes, whatever clock drives it.
pub trait BatchRules: Sync {
    /// Which span a full queue drops.
    fn full_queue(&self) -> FullQueue;
    /// Whether the span just counted must wake the worker: `counted` spans are waiting
    /// for export (python: the queue; rust: `current_batch_size`), `signalled` says a
    /// wake-up is already pending.
    fn wakes_worker(&self, counted: usize, batch_size: usize, signalled: bool) -> bool;
    /// What `force_flush(timeout)` waits for.
    fn flush_wait(&self, timeout: Duration) -> FlushWait;
    /// How long the provider's shutdown waits for the processor's final drain.
    fn shutdown_wait(&self) -> Duration;
    /// What the spans still held when the shutdown returned are counted as.
    fn leftover_at_shutdown(&self) -> Leftover {
        Leftover::DroppedAfterShutdown
    }
}

impl Profile {
    /// The rule book a `tracing.semantics` names; `None` for the stock processor (`sdk`),
    /// which follows no book of ours.
    pub fn of(semantics: Semantics) -> Option<Profile> {
        match semantics {
            Semantics::Python => Some(Profile::Python),
            Semantics::Rust => Some(Profile::Rust),
            Semantics::Js => Some(Profile::Js),
            Semantics::Sdk => None,
        }
    }
}

/// The rule book a `tracing.semantics` follows: its profile's, or for the stock
/// processor (`sdk`) the stock book, which the simulator follows with the rust worker.
pub fn book(semantics: Semantics) -> &'static dyn BatchRules {
    match Profile::of(semantics) {
        Some(profile) => rules(profile),
        None => &stock::Stock,
    }
}

/// The rule book of a profile.
pub fn rules(profile: Profile) -> &'static dyn BatchRules {
    match profile {
        Profile::Python => &python::Python,
        Profile::Rust => &rust::Rust,
        Profile::Js => &js::Js,
    }
}
