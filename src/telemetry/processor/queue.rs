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
//! critical section (CPython's is the GIL): a producer holds the lock for one eviction and
//! one append, the worker for moving out `TAKE_CHUNK` spans at a time; nobody holds it
//! while exporting or freeing a span.
//!
//! Both shapes hold the spans themselves in slots that are allocated once and kept, as the
//! stock processor's `sync_channel::<SpanData>(max_queue_size)` does (opentelemetry_sdk
//! 0.33.1 `span_processor.rs` l. 520; std's bounded channel allocates its array up front,
//! and so does rust's and js's `ArrayQueue`; python's grows by blocks, `Ring`). A span
//! ended then costs no allocation. The first shape
//! held a `Box` per span instead: under the throughput probe (1,000,000 spans/s into a
//! 2,000,000-span queue) every span ended was a `malloc` on a request thread and a `free`
//! of another thread's box, and while the queue grew glibc grew its heaps with `mprotect`,
//! which stops every thread's page faults; the request p99 of python, rust and js was 10 to
//! 50 times the stock processor's (20 to 150 ms against 2 to 10 ms).

use std::sync::Mutex;

use crossbeam_queue::ArrayQueue;

use super::lock;
use crate::telemetry::rules::FullQueue;

/// Spans the worker moves out of python's deque per hold of its lock: a `SpanData` is
/// 352 bytes, so a chunk is about 22 KB of copying (a few microseconds) that a producer
/// can wait behind, where a whole 512-span batch would be 180 KB. CPython's `_export`
/// pops span by span too, and may switch threads between pops.
const TAKE_CHUNK: usize = 64;

/// Oldest first, each span in its own preallocated slot.
// `ArrayQueue` pads its head and tail to cache lines (384 bytes); there is one queue per
// processor, and boxing it would add a pointer hop to every span ended.
#[allow(clippy::large_enum_variant)]
pub(super) enum SpanQueue<T> {
    /// rust, js: a full queue refuses the new span.
    RejectNewest(ArrayQueue<T>),
    /// python: a full queue evicts its oldest span.
    EvictOldest(Mutex<Ring<T>>),
}

/// A bounded deque over slots that, once written, are kept: filling it again neither
/// allocates nor faults in fresh pages. Its slots come in blocks of `BLOCK` spans,
/// allocated as the queue first grows into them, so its memory follows the most it has
/// held, as CPython's deque grows by blocks, and not its limit: a window user dragging
/// `max_queue_size` to 10,000,000 does not allocate 3.5 GB for each value it passes.
///
/// A block is allocated and written (a few hundred microseconds for 1.4 MB) outside the
/// lock, one block ahead: the producer whose span first lands in the newest block makes
/// the next one after it has let go of the lock (`grow`), while the others go on filling
/// the newest. Allocating under the lock stalled every producer behind it: request p99
/// 26 and 36 ms in two of four throughput-probe runs against 2.2 to 5.7 ms in fifteen.
pub(super) struct Ring<T> {
    blocks: Vec<Box<[Option<T>]>>,
    capacity: usize,
    /// The oldest span's slot.
    head: usize,
    len: usize,
    /// A producer is making the next block.
    growing: bool,
}

/// Slots per block: 1.4 MB of spans.
const BLOCK: usize = 4096;

/// A block of `size` empty slots, every one written now.
fn block<T>(size: usize) -> Box<[Option<T>]> {
    (0..size).map(|_| None).collect()
}

impl<T> Ring<T> {
    fn new(capacity: usize) -> Ring<T> {
        let mut ring = Ring {
            blocks: Vec::new(),
            capacity,
            head: 0,
            len: 0,
            growing: false,
        };
        ring.blocks.push(block(ring.next_block_size()));
        ring
    }

    fn is_full(&self) -> bool {
        self.len == self.capacity
    }

    /// The slots of the block after the last one; 0 once the blocks cover the capacity.
    fn next_block_size(&self) -> usize {
        let covered = self.blocks.len() * BLOCK;
        BLOCK.min(self.capacity.saturating_sub(covered))
    }

    fn slot(&mut self, index: usize) -> &mut Option<T> {
        let (block_index, offset) = (index / BLOCK, index % BLOCK);
        if block_index == self.blocks.len() {
            // The queue outran the producer making this block: make it here. Slots are
            // reached in order, so the missing block is always the next one.
            let size = self.next_block_size();
            self.blocks.push(block(size));
        }
        &mut self.blocks[block_index][offset]
    }

    /// Appends `span`; the caller has checked that there is room. Returns the size of a
    /// block for the caller to make with [`block`] and hand to [`Ring::add_block`] once it
    /// has let go of the lock: when this span is the first in the newest block.
    fn push_back(&mut self, span: T) -> Option<usize> {
        debug_assert!(!self.is_full());
        let tail = (self.head + self.len) % self.capacity;
        *self.slot(tail) = Some(span);
        self.len += 1;
        let size = self.next_block_size();
        let first_in_newest = tail == (self.blocks.len() - 1) * BLOCK;
        if size > 0 && first_in_newest && !self.growing {
            self.growing = true;
            return Some(size);
        }
        None
    }

    /// Takes a block made by the producer `push_back` asked; returns it when the queue
    /// has made that block itself meanwhile, for the caller to free outside the lock.
    fn add_block(&mut self, made: Box<[Option<T>]>) -> Option<Box<[Option<T>]>> {
        self.growing = false;
        if made.len() == self.next_block_size() {
            self.blocks.push(made);
            return None;
        }
        Some(made)
    }

    fn pop_front(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let span = self.slot(self.head).take();
        self.head = (self.head + 1) % self.capacity;
        self.len -= 1;
        span
    }
}

/// The next block, made outside `ring`'s lock when `push_back` asked for one.
fn grow<T>(ring: &Mutex<Ring<T>>, size: Option<usize>) {
    if let Some(size) = size {
        let made = block(size);
        let unused = lock(ring).add_block(made);
        drop(unused);
    }
}

impl<T> SpanQueue<T> {
    pub(super) fn new(full: FullQueue, capacity: usize) -> SpanQueue<T> {
        // The knob's lower bound is 1; `ArrayQueue::new(0)` would panic.
        let capacity = capacity.max(1);
        match full {
            FullQueue::RejectNewest => SpanQueue::RejectNewest(ArrayQueue::new(capacity)),
            FullQueue::EvictOldest => SpanQueue::EvictOldest(Mutex::new(Ring::new(capacity))),
        }
    }

    /// Appends `span` unless the queue is full; a full queue gives it back.
    pub(super) fn push_or_refuse(&self, span: T) -> Result<(), T> {
        match self {
            SpanQueue::RejectNewest(queue) => queue.push(span),
            SpanQueue::EvictOldest(ring) => {
                let mut guard = lock(ring);
                if guard.is_full() {
                    return Err(span);
                }
                let grow_by = guard.push_back(span);
                drop(guard);
                grow(ring, grow_by);
                Ok(())
            }
        }
    }

    /// Appends `span`; a full queue hands back its oldest span, evicted in the same step
    /// (two threads at a full queue evict two different spans, never one twice). Also
    /// returns the length right after, for the caller's wake-up rule.
    ///
    /// The evicted span is freed by the caller, after the lock is released.
    pub(super) fn push_evicting(&self, span: T) -> (Option<T>, usize) {
        match self {
            SpanQueue::RejectNewest(queue) => {
                let evicted = queue.force_push(span);
                (evicted, queue.len())
            }
            SpanQueue::EvictOldest(ring) => {
                let mut guard = lock(ring);
                let evicted = if guard.is_full() {
                    guard.pop_front()
                } else {
                    None
                };
                let grow_by = guard.push_back(span);
                let len = guard.len;
                drop(guard);
                grow(ring, grow_by);
                (evicted, len)
            }
        }
    }

    /// Takes up to `count` spans from the front, oldest first.
    pub(super) fn take(&self, count: usize) -> Vec<T> {
        // Allocated before any lock is taken: nothing waits on a `malloc`.
        let mut batch = Vec::with_capacity(count.min(self.len()));
        match self {
            SpanQueue::RejectNewest(queue) => {
                while batch.len() < count {
                    match queue.pop() {
                        Some(span) => batch.push(span),
                        None => break,
                    }
                }
            }
            SpanQueue::EvictOldest(ring) => {
                while batch.len() < count {
                    let mut ring = lock(ring);
                    let chunk = TAKE_CHUNK.min(count - batch.len()).min(ring.len);
                    if chunk == 0 {
                        break;
                    }
                    batch.extend(std::iter::from_fn(|| ring.pop_front()).take(chunk));
                }
            }
        }
        batch
    }

    /// Empties the queue and returns how many spans it held. The spans are freed here,
    /// a chunk at a time, outside the lock.
    pub(super) fn clear(&self) -> u64 {
        let mut cleared = 0;
        loop {
            let chunk = self.take(TAKE_CHUNK);
            if chunk.is_empty() {
                return cleared;
            }
            cleared += chunk.len() as u64;
        }
    }

    /// Spans waiting right now.
    pub(super) fn len(&self) -> usize {
        match self {
            SpanQueue::RejectNewest(queue) => queue.len(),
            SpanQueue::EvictOldest(ring) => lock(ring).len,
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
            assert_eq!(queue.push_or_refuse("c"), Err("c"));
            let (evicted, len) = queue.push_evicting("d");
            assert_eq!((evicted, len), (Some("a"), 2));
            assert_eq!(queue.take(1), ["b"]);
            let (evicted, len) = queue.push_evicting("e");
            assert_eq!((evicted, len), (None, 2));
            assert_eq!(queue.take(5), ["d", "e"]);
            assert!(queue.is_empty());
            queue.push_evicting("f");
            assert_eq!(queue.clear(), 1);
            assert_eq!(queue.len(), 0);
        }
    }

    /// The ring wraps around its slots, and a take longer than a chunk keeps the order.
    #[test]
    fn a_long_take_across_the_wrap_keeps_the_oldest_first() {
        let size = TAKE_CHUNK * 3;
        let queue = SpanQueue::new(FullQueue::EvictOldest, size);
        for i in 0..size + 10 {
            queue.push_evicting(i);
        }
        let taken = queue.take(size + 100);
        assert_eq!(taken, (10..size + 10).collect::<Vec<_>>());
        assert!(queue.is_empty());
    }

    /// Blocks come as the queue first reaches them and are kept, through the wrap.
    #[test]
    fn blocks_follow_what_the_queue_has_held() {
        let big = SpanQueue::new(FullQueue::EvictOldest, 10_000_000);
        for i in 0..3 {
            big.push_evicting(i);
        }
        let SpanQueue::EvictOldest(ring) = &big else {
            unreachable!("an evicting queue")
        };
        // The first block, and the next one made ahead by the first span's producer.
        assert_eq!(lock(ring).blocks.len(), 2, "three spans take two blocks");
        let size = BLOCK * 2 + 5;
        let queue = SpanQueue::new(FullQueue::EvictOldest, size);
        for i in 0..size * 2 + 7 {
            queue.push_evicting(i);
        }
        assert_eq!(
            queue.take(size),
            (size + 7..size * 2 + 7).collect::<Vec<_>>()
        );
        let SpanQueue::EvictOldest(ring) = &queue else {
            unreachable!("an evicting queue")
        };
        assert_eq!(lock(ring).blocks.len(), 3);
    }
}
