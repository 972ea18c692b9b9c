//! The memory budget of request bodies in flight (`collector.max_inflight_body_bytes`),
//! over both listeners: a body reserves its bytes as they arrive and gives them back when
//! it has been decided (counted or refused). A body that would go past the budget is
//! refused with a retryable status, as the OpenTelemetry Collector's `memory_limiter`
//! refuses data, so many large bodies at once cost at most the budget, not their sum.
//!
//! Bytes are reserved as they arrive, not from Content-Length, so that a client that
//! announces 16 MB and sends a byte now and then holds one byte of the budget, not 16 MB.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// After this many bytes have been reserved since the last trim, the allocator is asked
/// to give free memory back to the system once no body is in flight.
const TRIM_AFTER_BYTES: u64 = 16 << 20;

/// The bytes of bodies in flight, against their limit.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: u64,
    used: AtomicU64,
    /// Bytes reserved since the last trim.
    since_trim: AtomicU64,
}

/// One body's share of the budget, given back when dropped.
#[derive(Debug)]
pub(crate) struct Reservation<'a> {
    budget: &'a Budget,
    bytes: u64,
}

impl Budget {
    pub(crate) fn new(limit: u64) -> Self {
        large_buffers_from_mmap();
        Budget {
            limit,
            used: AtomicU64::new(0),
            since_trim: AtomicU64::new(0),
        }
    }

    /// Bytes reserved now, for `/stats`.
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Relaxed)
    }

    /// An empty reservation, to grow as a body arrives.
    pub(crate) fn reserve(&self) -> Reservation<'_> {
        Reservation {
            budget: self,
            bytes: 0,
        }
    }
}

impl Reservation<'_> {
    /// Reserves `n` more bytes; false, reserving nothing, when the budget has not them.
    pub(crate) fn grow(&mut self, n: usize) -> bool {
        let n = n as u64;
        let budget = self.budget;
        let taken = budget.used.fetch_update(Relaxed, Relaxed, |used| {
            used.checked_add(n).filter(|after| *after <= budget.limit)
        });
        if taken.is_err() {
            return false;
        }
        budget.since_trim.fetch_add(n, Relaxed);
        self.bytes += n;
        true
    }

    /// Gives every reserved byte back (the body was refused and its buffer dropped).
    pub(crate) fn release(&mut self) {
        let bytes = std::mem::take(&mut self.bytes);
        if bytes == 0 {
            return;
        }
        let before = self.budget.used.fetch_sub(bytes, Relaxed);
        if before == bytes && self.budget.since_trim.load(Relaxed) >= TRIM_AFTER_BYTES {
            self.budget.since_trim.store(0, Relaxed);
            trim_soon();
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

/// Buffers of 1 MB and more (a body's) mapped on their own, so that freeing one gives its
/// pages back at once. glibc's default threshold is dynamic: after the first 16 MB body is
/// freed it rises past 16 MB, bodies then come from the arenas, and every page a body ever
/// touched stays resident: 100 bodies at once peaked at 387 MB under a 64 MB budget until
/// this was fixed. A fixed threshold turns the dynamic one off (mallopt(3)).
fn large_buffers_from_mmap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only sets a parameter of the allocator, under its lock.
            #[allow(unsafe_code)]
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
            }
        });
    }
}

/// Asks the allocator to return free memory once the last body is gone. glibc keeps
/// freed memory in its arenas: after a burst of large bodies, a collector otherwise stays
/// at its peak (0.87 GB after 100 bodies of 16 MB, issue 20). Freed large blocks are
/// returned only below its dynamic mmap threshold, which a burst of 16 MB bodies raises
/// past them. `malloc_trim` walks every arena, so it runs on a blocking thread, after
/// the request that ended the load has dropped its buffers.
fn trim_soon() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let trim = || {
            // SAFETY: malloc_trim only reads and rewrites the allocator's own state, under
            // its locks; it is safe to call from any thread at any time.
            #[allow(unsafe_code)]
            unsafe {
                libc::malloc_trim(0);
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    // Let the request that released the last bytes drop its buffers first.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    let _ = tokio::task::spawn_blocking(trim).await;
                });
            }
            Err(_) => trim(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_stay_within_the_limit_and_come_back() {
        let budget = Budget::new(100);
        let mut a = budget.reserve();
        let mut b = budget.reserve();
        assert!(a.grow(60));
        assert!(!b.grow(41), "past the limit");
        assert!(b.grow(40));
        assert_eq!(budget.used(), 100);
        drop(a);
        assert_eq!(budget.used(), 40);
        b.release();
        assert_eq!(budget.used(), 0);
    }
}
