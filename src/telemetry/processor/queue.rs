//! The processor's span queue, in the shape each rule book's full queue needs.
//!
//! rust and js refuse the NEW span at a full queue: a lock-free `ArrayQueue`, whose `push`
//! only reads when the queue is full, so producers at a full queue do not contend.
//!
//! python evicts the OLDEST span (`deque(maxlen)`), so at a full queue every span ended
//! moves both ends of the queue. `ArrayQueue::force_push` does that with a compare-and-swap
//! on the head that all producers and the worker race for, and a loser spins (exponential
//! `pause` backoff, no yield) until the winner has moved the tail: `perf` put 40 % of
//! `force_push`'s samples in that spin under the throughput probe, and a standalone test
//! of eight producers on two cores found it 2.6 times the CPU per span of a deque under a
//! mutex. So python's queue is what CPython's is, a deque whose every operation is one short
//! critical section (CPython's is the GIL): a producer holds the lock for one
//! `pop_front` and `push_back`, the worker for taking out one batch of pointers; nobody
//! holds it while exporting or freeing a span.

use std::collections::VecDeque;
use std::sync::Mutex;

use crossbeam_queue::ArrayQueue;

use super::lock;
use crate::telemetry::rules::FullQueue;

/// Oldest first. Spans (`T`: `SpanData`) are boxed so a slot costs a pointer: both shapes
/// allocate every slot up front, and a `SpanData` is several hundred bytes.
// `ArrayQueue` pads its head and tail to cache lines (384 bytes); there is one queue per
// processor, and boxing it would add a pointer hop to every span ended.
#[allow(clippy::large_enum_variant)]
pub(super) enum SpanQueue<T> {
    /// rust, js: a full queue refuses the new span.
    RejectNewest(ArrayQueue<Box<T>>),
    /// python: a full queue evicts its oldest span.
    EvictOldest {
        deque: Mutex<VecDeque<Box<T>>>,
        capacity: usize,
    },
}

impl<T> SpanQueue<T> {
    pub(super) fn new(full: FullQueue, capacity: usize) -> SpanQueue<T> {
        // The knob's lower bound is 1; `ArrayQueue::new(0)` would panic.
        let capacity = capacity.max(1);
        match full {
            FullQueue::RejectNewest => SpanQueue::RejectNewest(ArrayQueue::new(capacity)),
            FullQueue::EvictOldest => SpanQueue::EvictOldest {
                deque: Mutex::new(VecDeque::with_capacity(capacity)),
                capacity,
            },
        }
    }

    /// Appends `span` unless the queue is full; a full queue gives it back.
    pub(super) fn push_or_refuse(&self, span: T) -> Result<(), Box<T>> {
        match self {
            SpanQueue::RejectNewest(queue) => queue.push(Box::new(span)),
            SpanQueue::EvictOldest { deque, capacity } => {
                let span = Box::new(span);
                let mut deque = lock(deque);
                if deque.len() >= *capacity {
                    return Err(span);
                }
                deque.push_back(span);
                Ok(())
            }
        }
    }

    /// Appends `span`; a full queue hands back its oldest span, evicted in the same step
    /// (two threads at a full queue evict two different spans, never one twice). Also
    /// returns the length right after, for the caller's wake-up rule.
    ///
    /// The evicted span is freed by the caller, after the lock is released.
    pub(super) fn push_evicting(&self, span: Box<T>) -> (Option<Box<T>>, usize) {
        match self {
            SpanQueue::RejectNewest(queue) => {
                let evicted = queue.force_push(span);
                (evicted, queue.len())
            }
            SpanQueue::EvictOldest { deque, capacity } => {
                let mut deque = lock(deque);
                let evicted = if deque.len() >= *capacity {
                    deque.pop_front()
                } else {
                    None
                };
                deque.push_back(span);
                let len = deque.len();
                drop(deque);
                (evicted, len)
            }
        }
    }

    /// Takes up to `count` spans from the front, oldest first. The deque's lock is held
    /// only while the pointers move; the spans are unboxed after.
    pub(super) fn take(&self, count: usize) -> Vec<T> {
        match self {
            SpanQueue::RejectNewest(queue) => {
                let mut batch = Vec::with_capacity(count.min(queue.len()));
                while batch.len() < count {
                    match queue.pop() {
                        Some(span) => batch.push(*span),
                        None => break,
                    }
                }
                batch
            }
            SpanQueue::EvictOldest { deque, .. } => {
                // Allocated before the lock is taken: nothing waits on a `malloc`.
                let mut boxed = Vec::with_capacity(count.min(self.len()));
                {
                    let mut deque = lock(deque);
                    let count = count.min(deque.len());
                    boxed.extend(deque.drain(..count));
                }
                boxed.into_iter().map(|span| *span).collect()
            }
        }
    }

    /// Empties the queue and returns how many spans it held.
    pub(super) fn clear(&self) -> u64 {
        match self {
            SpanQueue::RejectNewest(queue) => {
                let mut cleared = 0;
                while queue.pop().is_some() {
                    cleared += 1;
                }
                cleared
            }
            SpanQueue::EvictOldest { deque, .. } => {
                let spans = std::mem::take(&mut *lock(deque));
                spans.len() as u64
            }
        }
    }

    /// Spans waiting right now.
    pub(super) fn len(&self) -> usize {
        match self {
            SpanQueue::RejectNewest(queue) => queue.len(),
            SpanQueue::EvictOldest { deque, .. } => lock(deque).len(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes_keep_the_same_spans_at_a_full_queue() {
        for full in [FullQueue::EvictOldest, FullQueue::RejectNewest] {
            let queue = SpanQueue::new(full, 2);
            assert!(queue.push_or_refuse("a").is_ok());
            assert!(queue.push_or_refuse("b").is_ok());
            assert_eq!(queue.push_or_refuse("c"), Err(Box::new("c")));
            let (evicted, len) = queue.push_evicting(Box::new("d"));
            assert_eq!((evicted, len), (Some(Box::new("a")), 2));
            assert_eq!(queue.take(1), ["b"]);
            let (evicted, len) = queue.push_evicting(Box::new("e"));
            assert_eq!((evicted, len), (None, 2));
            assert_eq!(queue.take(5), ["d", "e"]);
            assert!(queue.is_empty());
            queue.push_evicting(Box::new("f"));
            assert_eq!(queue.clear(), 1);
            assert_eq!(queue.len(), 0);
        }
    }
}
