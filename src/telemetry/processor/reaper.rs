//! Frees the spans python's full queue evicts, off the request threads.
//!
//! Python's rule evicts the oldest span when a span arrives at a full queue, on the thread
//! that ends the new one, and CPython frees it right there, cheaply (pymalloc, under the
//! GIL). Here that span was allocated by another thread seconds ago, and freeing it takes
//! that thread's allocator arena lock: at 20,000 requests/s x 50 spans (the
//! `assets/load/throughput-probe.toml` scenario, release build) request latency p99 was
//! 451 ms with the free on the request thread, 6.4 ms without it, 19 ms with the stock
//! processor, which rejects the span it was just handed instead. That cost is this
//! process's allocator, not python's rule, so the evicted span is buried here and freed by
//! one reaper thread within [`REAP_EVERY`]. Which span is dropped, and when it is counted,
//! do not change.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_queue::SegQueue;
use opentelemetry_sdk::trace::SpanData;

/// How long an evicted span may wait to be freed when the reaper finds nothing to do: the
/// memory it holds is at most this long's worth of evictions.
pub const REAP_EVERY: Duration = Duration::from_millis(5);

#[derive(Default)]
pub struct Reaper {
    graveyard: SegQueue<Box<SpanData>>,
}

impl Reaper {
    /// Starts the reaper thread; `None` if it cannot start (the caller then frees evicted
    /// spans itself). The thread ends once the processor has dropped its handle and the
    /// graveyard is empty.
    pub fn start() -> Option<Arc<Reaper>> {
        let reaper = Arc::new(Reaper::default());
        let own = reaper.clone();
        std::thread::Builder::new()
            .name("gracetrace-span-reaper".into())
            .spawn(move || own.run())
            .ok()
            .map(|_detached| reaper)
    }

    /// Hands an evicted span over to be freed. Lock-free.
    pub fn bury(&self, span: Box<SpanData>) {
        self.graveyard.push(span);
    }

    fn reap(&self) -> usize {
        let mut reaped = 0;
        while let Some(span) = self.graveyard.pop() {
            drop(span);
            reaped += 1;
        }
        reaped
    }

    fn run(self: Arc<Self>) {
        loop {
            if self.reap() > 0 {
                continue;
            }
            if Arc::strong_count(&self) == 1 {
                self.reap();
                return;
            }
            std::thread::park_timeout(REAP_EVERY);
        }
    }
}
